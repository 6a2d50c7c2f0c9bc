//! Finds modems on USB through sysfs: each serial port with its USB ids, interface number and the
//! known model it belongs to, and known dongles in a mode with no AT port.

use std::path::{Path, PathBuf};

use super::models::{self, Model, UnusableMode};

/// A serial port of a USB device.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Port {
    /// /dev/ttyUSB2
    pub device: PathBuf,
    pub vendor: u16,
    pub product: u16,
    /// bInterfaceNumber of the port's USB interface.
    pub interface: Option<u8>,
    pub serial: Option<String>,
    pub product_name: Option<String>,
    /// The USB topology path, stable across replugs into the same socket: "1-1.3".
    pub usb_path: String,
    pub model: Option<&'static Model>,
    /// Whether this port is the model's AT port.
    pub is_at_port: bool,
}

/// A known dongle present in a mode with no AT port.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Stuck {
    pub usb_path: String,
    pub mode: &'static UnusableMode,
}

fn read(path: &Path) -> Option<String> {
    std::fs::read_to_string(path)
        .ok()
        .map(|s| s.trim().to_string())
        .filter(|s| !s.is_empty())
}

fn hex(path: &Path) -> Option<u16> {
    u16::from_str_radix(&read(path)?, 16).ok()
}

/// Lists USB serial ports (ttyUSB*, ttyACM*) under the sysfs root `sys` (normally /sys).
pub fn ports(sys: &Path) -> Vec<Port> {
    ports_in(sys, Path::new("/dev"))
}

/// As [`ports`], with each port's device named in `dev` (normally /dev; tests use a folder of
/// links to pseudo-terminals).
pub fn ports_in(sys: &Path, dev: &Path) -> Vec<Port> {
    let Ok(entries) = std::fs::read_dir(sys.join("class/tty")) else {
        return Vec::new();
    };
    let mut ports: Vec<Port> = entries
        .filter_map(Result::ok)
        .filter_map(|entry| {
            let name = entry.file_name().to_string_lossy().into_owned();
            if !(name.starts_with("ttyUSB") || name.starts_with("ttyACM")) {
                return None;
            }
            let device = std::fs::canonicalize(entry.path().join("device")).ok()?;
            // Walk up to the USB interface (it has bInterfaceNumber), then to the device.
            let interface_dir = device
                .ancestors()
                .find(|dir| dir.join("bInterfaceNumber").exists())?;
            let usb_dir = interface_dir.parent()?;
            let vendor = hex(&usb_dir.join("idVendor"))?;
            let product = hex(&usb_dir.join("idProduct"))?;
            let interface = read(&interface_dir.join("bInterfaceNumber"))
                .and_then(|n| u8::from_str_radix(&n, 16).ok());
            let model = models::by_usb_id(vendor, product);
            let is_at_port = match (model, interface) {
                (Some(model), Some(interface)) => {
                    models::is_at_interface(model, product, interface)
                }
                _ => false,
            };
            Some(Port {
                device: dev.join(&name),
                vendor,
                product,
                interface,
                serial: read(&usb_dir.join("serial")),
                product_name: read(&usb_dir.join("product")),
                usb_path: usb_dir.file_name()?.to_string_lossy().into_owned(),
                model,
                is_at_port,
            })
        })
        .collect();
    ports.sort_by(|a, b| a.device.cmp(&b.device));
    ports
}

/// Lists known dongles in storage or HiLink mode.
pub fn stuck(sys: &Path) -> Vec<Stuck> {
    let Ok(entries) = std::fs::read_dir(sys.join("bus/usb/devices")) else {
        return Vec::new();
    };
    let mut found: Vec<Stuck> = entries
        .filter_map(Result::ok)
        .filter_map(|entry| {
            let dir = entry.path();
            let mode = models::unusable(hex(&dir.join("idVendor"))?, hex(&dir.join("idProduct"))?)?;
            Some(Stuck {
                usb_path: entry.file_name().to_string_lossy().into_owned(),
                mode,
            })
        })
        .collect();
    found.sort_by(|a, b| a.usb_path.cmp(&b.usb_path));
    found
}

/// Why a USB reset of one dongle could not be done.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum ResetError {
    #[error("{} is not a USB serial port (no USB device under {}): nothing to reset", port.display(), sysfs.display())]
    NotUsb { port: PathBuf, sysfs: PathBuf },
    #[error("cannot write {}: {reason}. A USB reset needs write access to it: run textback as root, or give user textback the device (udev/99-textback.rules)", path.display())]
    Write { path: PathBuf, reason: String },
}

/// Resets the one USB device behind `port` (a /dev/ttyUSB* or a udev link to one) by switching
/// its sysfs `authorized` flag off and on, which makes the kernel drop and enumerate it again, as
/// a replug does; no other device on the bus is touched. Returns the device's USB path ("1-1.3").
pub fn reset(sys: &Path, port: &Path) -> Result<String, ResetError> {
    let not_usb = || ResetError::NotUsb {
        port: port.to_path_buf(),
        sysfs: sys.to_path_buf(),
    };
    let device = std::fs::canonicalize(port).unwrap_or_else(|_| port.to_path_buf());
    let name = device.file_name().ok_or_else(not_usb)?;
    let tty = std::fs::canonicalize(sys.join("class/tty").join(name).join("device"))
        .map_err(|_| not_usb())?;
    let interface_dir = tty
        .ancestors()
        .find(|dir| dir.join("bInterfaceNumber").exists())
        .ok_or_else(not_usb)?;
    let usb_dir = interface_dir.parent().ok_or_else(not_usb)?;
    let authorized = usb_dir.join("authorized");
    if !authorized.exists() {
        return Err(not_usb());
    }
    for value in ["0", "1"] {
        std::fs::write(&authorized, value).map_err(|err| ResetError::Write {
            path: authorized.clone(),
            reason: err.to_string(),
        })?;
    }
    Ok(usb_dir
        .file_name()
        .map(|name| name.to_string_lossy().into_owned())
        .unwrap_or_default())
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::os::unix::fs::symlink;

    fn write(path: &Path, text: &str) {
        std::fs::create_dir_all(path.parent().unwrap()).unwrap();
        std::fs::write(path, text).unwrap();
    }

    /// The reset writes 0 then 1 to the one device's `authorized`, found from the port's name,
    /// and touches nothing else; a port with no USB device behind it is refused by name.
    #[test]
    fn a_usb_reset_flips_only_that_devices_authorized_flag() {
        let root = tempfile::tempdir().unwrap();
        let sys = root.path();
        let device = sys.join("devices/pci0000:00/usb1/1-1/1-1.3");
        let interface = device.join("1-1.3:1.2");
        write(&device.join("authorized"), "1");
        write(&device.join("idVendor"), "12d1");
        write(&interface.join("bInterfaceNumber"), "02");
        let tty = interface.join("ttyUSB2");
        std::fs::create_dir_all(&tty).unwrap();
        std::fs::create_dir_all(sys.join("class/tty/ttyUSB2")).unwrap();
        symlink(&tty, sys.join("class/tty/ttyUSB2/device")).unwrap();
        let other = sys.join("devices/pci0000:00/usb1/1-1/1-1.4");
        write(&other.join("authorized"), "1");

        assert_eq!(reset(sys, Path::new("/dev/ttyUSB2")).unwrap(), "1-1.3");
        // The last write wins: 1, after a 0 (the file records only the last value here).
        assert_eq!(
            std::fs::read_to_string(device.join("authorized")).unwrap(),
            "1"
        );
        assert_eq!(
            std::fs::read_to_string(other.join("authorized")).unwrap(),
            "1"
        );
        let error = reset(sys, Path::new("/dev/pts/7")).unwrap_err();
        assert!(matches!(error, ResetError::NotUsb { .. }), "{error}");
        assert!(error.to_string().contains("not a USB serial port"));
    }

    /// A sysfs tree as Linux lays it out for an E3372 (usb-serial: option driver) with three
    /// ports, an ACM modem, and a HiLink stick.
    fn fake_sys() -> tempfile::TempDir {
        let root = tempfile::tempdir().unwrap();
        let sys = root.path();
        let e3372 = sys.join("devices/pci0000:00/usb1/1-1");
        write(&e3372.join("idVendor"), "12d1\n");
        write(&e3372.join("idProduct"), "1506\n");
        write(&e3372.join("serial"), "0123456789ABCDEF\n");
        write(&e3372.join("product"), "HUAWEI_MOBILE\n");
        std::fs::create_dir_all(sys.join("class/tty")).unwrap();
        for (interface, tty) in [(0, "ttyUSB0"), (1, "ttyUSB1"), (2, "ttyUSB2")] {
            let dir = e3372.join(format!("1-1:1.{interface}"));
            write(&dir.join("bInterfaceNumber"), &format!("{interface:02x}\n"));
            std::fs::create_dir_all(dir.join(tty)).unwrap();
            std::fs::create_dir_all(sys.join("class/tty").join(tty)).unwrap();
            symlink(
                dir.join(tty),
                sys.join("class/tty").join(tty).join("device"),
            )
            .unwrap();
        }
        let quectel = sys.join("devices/pci0000:00/usb1/1-2");
        write(&quectel.join("idVendor"), "2c7c\n");
        write(&quectel.join("idProduct"), "0125\n");
        let acm = quectel.join("1-2:1.2");
        write(&acm.join("bInterfaceNumber"), "02\n");
        std::fs::create_dir_all(sys.join("class/tty/ttyACM0")).unwrap();
        symlink(&acm, sys.join("class/tty/ttyACM0/device")).unwrap();
        // A console port that is not USB.
        std::fs::create_dir_all(sys.join("class/tty/ttyS0")).unwrap();
        let hilink = sys.join("bus/usb/devices/1-3");
        write(&hilink.join("idVendor"), "12d1\n");
        write(&hilink.join("idProduct"), "14dc\n");
        root
    }

    #[test]
    fn finds_ports_models_and_at_interfaces() {
        let root = fake_sys();
        let found = ports(root.path());
        let summary: Vec<(String, u8, bool)> = found
            .iter()
            .map(|p| {
                (
                    p.device.display().to_string(),
                    p.interface.unwrap(),
                    p.is_at_port,
                )
            })
            .collect();
        assert_eq!(
            summary,
            vec![
                ("/dev/ttyACM0".to_string(), 2, true),
                ("/dev/ttyUSB0".to_string(), 0, true),
                ("/dev/ttyUSB1".to_string(), 1, false),
                ("/dev/ttyUSB2".to_string(), 2, false),
            ]
        );
        let e3372 = &found[1];
        assert_eq!(e3372.model.unwrap().id, "huawei-e3372");
        assert_eq!(e3372.serial.as_deref(), Some("0123456789ABCDEF"));
        assert_eq!(e3372.usb_path, "1-1");
        assert_eq!(found[0].model.unwrap().id, "quectel-ec25");
    }

    #[test]
    fn finds_hilink_sticks() {
        let root = fake_sys();
        let found = stuck(root.path());
        assert_eq!(found.len(), 1);
        assert_eq!(found[0].usb_path, "1-3");
        assert!(found[0].mode.what.contains("HiLink"));
    }

    #[test]
    fn a_machine_without_sysfs_has_no_ports() {
        assert!(ports(Path::new("/nonexistent")).is_empty());
        assert!(stuck(Path::new("/nonexistent")).is_empty());
    }
}
