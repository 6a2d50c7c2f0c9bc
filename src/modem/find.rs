//! Which serial ports may be a `[[modem]]`: its configured port, or, when it is bound by USB serial
//! (`modem.usb_serial`), the ports of the USB device with that serial, or, when it is bound by IMEI
//! or ICCID, every USB serial port as well, since a replug or a reboot can bring it back under
//! another name (field notes: "identity"). The actor tries them in order and keeps the one whose
//! dongle and SIM are the configured ones.

use std::path::{Path, PathBuf};

use super::usb;
use crate::config::{ModemConfig, PortSearch};

/// Why no port could be tried.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum FindError {
    #[error(
        "no USB device with serial {serial} (modem.usb_serial) is plugged in: plug the dongle in; `textback modem list` shows each port's USB serial"
    )]
    NoSuchSerial { serial: String },
}

fn same(a: &Path, b: &Path) -> bool {
    a == b
        || std::fs::canonicalize(a)
            .ok()
            .zip(std::fs::canonicalize(b).ok())
            .is_some_and(|(a, b)| a == b)
}

/// The ports to try for `config`, in order: the configured port first (unless it is not the USB
/// device with `modem.usb_serial`), then, for a modem bound by identity, the other USB serial ports
/// that may be AT ports (a known model's AT port, or any port of an unknown device), known AT
/// ports first.
pub fn candidates(config: &ModemConfig, search: &PortSearch) -> Result<Vec<PathBuf>, FindError> {
    let mut ports = usb::ports_in(&search.sys, &search.dev);
    // A known model's AT port before its other ports; then by name.
    ports.sort_by_key(|port| (!port.is_at_port, port.device.clone()));
    if let Some(serial) = &config.usb_serial {
        let mut found: Vec<PathBuf> = ports
            .iter()
            .filter(|port| port.serial.as_deref() == Some(serial.as_str()))
            .map(|port| port.device.clone())
            .collect();
        if found.is_empty() {
            return Err(FindError::NoSuchSerial {
                serial: serial.clone(),
            });
        }
        // The configured port first, when it is one of them.
        if let Some(at) = found.iter().position(|p| same(p, &config.port)) {
            let configured = found.remove(at);
            found.insert(0, configured);
        }
        return Ok(found);
    }
    let mut found = vec![config.port.clone()];
    if config.imei.is_some() || config.iccid.is_some() {
        // A known model's other ports (NMEA, diagnostics) are never its AT port: not probed.
        found.extend(
            ports
                .into_iter()
                .filter(|port| port.model.is_none() || port.is_at_port)
                .map(|port| port.device)
                .filter(|device| !same(device, &config.port)),
        );
    }
    Ok(found)
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::os::unix::fs::symlink;

    fn write(path: &Path, text: &str) {
        std::fs::create_dir_all(path.parent().unwrap()).unwrap();
        std::fs::write(path, text).unwrap();
    }

    /// A fake sysfs and /dev: ttyUSB0..2 of an E3372 with serial AAA (AT port 0), ttyUSB5 of one
    /// with serial BBB.
    fn tree() -> tempfile::TempDir {
        let root = tempfile::tempdir().unwrap();
        let sys = root.path().join("sys");
        let dev = root.path().join("dev");
        std::fs::create_dir_all(&dev).unwrap();
        for (usb, serial, ttys) in [("1-1", "AAA", &[0, 1, 2][..]), ("1-2", "BBB", &[5][..])] {
            let device = sys.join("devices/usb1").join(usb);
            write(&device.join("idVendor"), "12d1\n");
            write(&device.join("idProduct"), "1506\n");
            write(&device.join("serial"), serial);
            for (interface, tty) in ttys.iter().enumerate() {
                let name = format!("ttyUSB{tty}");
                let dir = device.join(format!("{usb}:1.{interface}"));
                write(&dir.join("bInterfaceNumber"), &format!("{interface:02x}"));
                std::fs::create_dir_all(dir.join(&name)).unwrap();
                std::fs::create_dir_all(sys.join("class/tty").join(&name)).unwrap();
                symlink(
                    dir.join(&name),
                    sys.join("class/tty").join(&name).join("device"),
                )
                .unwrap();
                write(&dev.join(&name), "");
            }
        }
        root
    }

    fn config(keys: &str) -> ModemConfig {
        let mut config = ModemConfig::for_port(PathBuf::from("/dev/textback-modem"));
        match keys {
            "serial" => config.usb_serial = Some("BBB".to_string()),
            "missing" => config.usb_serial = Some("CCC".to_string()),
            "iccid" => config.iccid = Some("8944110068912345678".to_string()),
            _ => {}
        }
        config
    }

    #[test]
    fn a_modem_bound_by_usb_serial_is_found_under_any_name() {
        let root = tree();
        let search = PortSearch {
            sys: root.path().join("sys"),
            dev: root.path().join("dev"),
        };
        assert_eq!(
            candidates(&config("serial"), &search).unwrap(),
            vec![root.path().join("dev/ttyUSB5")]
        );
        let error = candidates(&config("missing"), &search).unwrap_err();
        assert!(error.to_string().contains("modem.usb_serial"), "{error}");
        // Bound by port only: that port, nothing else.
        assert_eq!(
            candidates(&config(""), &search).unwrap(),
            vec![PathBuf::from("/dev/textback-modem")]
        );
        // Bound by ICCID: the port, then every USB port that may be an AT port, AT ports first.
        let found = candidates(&config("iccid"), &search).unwrap();
        let names: Vec<String> = found
            .iter()
            .map(|p| p.file_name().unwrap().to_string_lossy().into_owned())
            .collect();
        assert_eq!(names, ["textback-modem", "ttyUSB0", "ttyUSB5"]);
    }
}
