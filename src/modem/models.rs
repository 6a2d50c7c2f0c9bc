//! The dongles we know: USB ids, which interface is the AT port, and the set-up each needs. The
//! table behind `textback modem list`, the driver's per-model init, and hardware/README.md.

/// One known dongle or module.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Model {
    /// The name used in config, logs and `modem list`.
    pub id: &'static str,
    pub title: &'static str,
    /// (vendor, product) USB ids in modem mode.
    pub usb_ids: &'static [(u16, u16)],
    /// The interface number of the AT port, per product id.
    pub at_interface: &'static [(u16, u8)],
    /// What the manufacturer answers to AT+CGMI (lower case), to recognise the model on any port.
    pub manufacturer: &'static str,
    /// Commands sent after the standard start-up; a refusal is not an error.
    pub init: &'static [&'static str],
    pub notes: &'static str,
}

/// A USB id that is a known dongle in a mode textback cannot use (yet).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct UnusableMode {
    pub usb_id: (u16, u16),
    pub what: &'static str,
    pub fix: &'static str,
}

/// Huawei sticks send ^RSSI, ^MODE, ^HCSQ ... unprompted until AT^CURC=0 (field note: the flood
/// that chan_dongle users report).
const HUAWEI_INIT: &[&str] = &["AT^CURC=0"];

pub const MODELS: &[Model] = &[
    Model {
        id: "huawei-e3372",
        title: "Huawei E3372h (stick firmware)",
        usb_ids: &[(0x12d1, 0x1506)],
        at_interface: &[(0x1506, 0)],
        manufacturer: "huawei",
        init: HUAWEI_INIT,
        notes: "^RSSI ^MODE ^BOOT ^SRVST ^SIMST ^HCSQ ^DSFLOWRPT ^NWTIME until AT^CURC=0",
    },
    Model {
        id: "huawei-e1550",
        title: "Huawei E1550",
        usb_ids: &[(0x12d1, 0x1001)],
        at_interface: &[(0x1001, 2)],
        manufacturer: "huawei",
        init: HUAWEI_INIT,
        notes: "voice on interface 1",
    },
    Model {
        id: "huawei-e173",
        title: "Huawei E173 / E1750",
        usb_ids: &[(0x12d1, 0x1436), (0x12d1, 0x140c)],
        at_interface: &[(0x1436, 4), (0x140c, 3)],
        manufacturer: "huawei",
        init: HUAWEI_INIT,
        notes: "voice is often disabled in firmware: calls to the SIM may raise no RING",
    },
    Model {
        id: "zte-mf190",
        title: "ZTE MF190",
        usb_ids: &[(0x19d2, 0x0117), (0x19d2, 0x0031)],
        at_interface: &[(0x0117, 2), (0x0031, 3)],
        manufacturer: "zte",
        init: &[],
        notes: "+ZUSIMR +ZDONR +ZPASR +ZPSTM +ZEND status lines",
    },
    Model {
        id: "simcom-sim7600",
        title: "SIMCom SIM7600",
        usb_ids: &[(0x1e0e, 0x9001), (0x1e0e, 0x9011)],
        at_interface: &[(0x9001, 2), (0x9011, 4)],
        manufacturer: "simcom",
        // Report calls with +CLCC as well as RING.
        init: &["AT+CLCC=1"],
        notes: "RDY, SMS DONE, PB DONE after power-up; MISSED_CALL: lines",
    },
    Model {
        id: "simcom-sim800",
        title: "SIMCom SIM800 (USB-serial adapter)",
        usb_ids: &[],
        at_interface: &[],
        manufacturer: "simcom",
        init: &[],
        notes: "a bare UART module: the port is the adapter's (ttyUSB via CP210x/CH340); 2G only",
    },
    Model {
        id: "quectel-ec25",
        title: "Quectel EC25 / EG25",
        usb_ids: &[(0x2c7c, 0x0125)],
        at_interface: &[(0x0125, 2)],
        manufacturer: "quectel",
        // URCs go to the USB AT port, not the UART or the modem port.
        init: &["AT+QURCCFG=\"urcport\",\"usbat\""],
        notes: "RDY, +QUSIM, +QIND: SMS DONE / PB DONE; delivery reports direct",
    },
    Model {
        id: "sierra-em7455",
        title: "Sierra Wireless MC7455 / EM7455 / EM7565",
        usb_ids: &[(0x1199, 0x9071), (0x1199, 0x9079), (0x1199, 0x9091)],
        at_interface: &[(0x9071, 3), (0x9079, 3), (0x9091, 3)],
        manufacturer: "sierra",
        init: &[],
        notes: "NMEA on interface 2, diagnostics on 0",
    },
];

pub const UNUSABLE: &[UnusableMode] = &[
    UnusableMode {
        usb_id: (0x12d1, 0x14fe),
        what: "Huawei E3372h in storage (CD-ROM) mode",
        fix: "install udev/99-textback.rules and usb-modeswitch, then replug: it becomes 12d1:1506",
    },
    UnusableMode {
        usb_id: (0x12d1, 0x1446),
        what: "Huawei stick in storage (CD-ROM) mode",
        fix: "install udev/99-textback.rules and usb-modeswitch, then replug",
    },
    UnusableMode {
        usb_id: (0x12d1, 0x1f01),
        what: "Huawei E3372 HiLink firmware in storage mode",
        fix: "HiLink firmware has no AT port: flash the stick (non-HiLink) firmware",
    },
    UnusableMode {
        usb_id: (0x12d1, 0x14db),
        what: "Huawei E3372 with HiLink firmware (a network card, no AT port)",
        fix: "flash the stick (non-HiLink) firmware, which shows as 12d1:1506",
    },
    UnusableMode {
        usb_id: (0x12d1, 0x14dc),
        what: "Huawei E3372 with HiLink firmware (a network card, no AT port)",
        fix: "flash the stick (non-HiLink) firmware, which shows as 12d1:1506",
    },
    UnusableMode {
        usb_id: (0x19d2, 0x2000),
        what: "ZTE stick in storage (CD-ROM) mode",
        fix: "install udev/99-textback.rules and usb-modeswitch, then replug",
    },
    UnusableMode {
        usb_id: (0x19d2, 0x1405),
        what: "ZTE MF823 (network card, no AT port by default)",
        fix: "use another dongle: this one needs vendor tools to expose an AT port",
    },
];

/// The known model with these USB ids.
pub fn by_usb_id(vendor: u16, product: u16) -> Option<&'static Model> {
    MODELS
        .iter()
        .find(|model| model.usb_ids.contains(&(vendor, product)))
}

/// A known dongle in a mode we cannot use, with what to do.
pub fn unusable(vendor: u16, product: u16) -> Option<&'static UnusableMode> {
    UNUSABLE
        .iter()
        .find(|mode| mode.usb_id == (vendor, product))
}

/// The model whose manufacturer answers AT+CGMI with `manufacturer` (for init on any port).
pub fn by_manufacturer(manufacturer: &str) -> Option<&'static Model> {
    let lower = manufacturer.to_ascii_lowercase();
    MODELS
        .iter()
        .find(|model| lower.contains(model.manufacturer))
}

/// How the modem writes GSM 7-bit USSD strings (the code it is sent and the network's answer):
/// Huawei sticks pack them as hex by default (`^USSDMODE` 1; ModemManager's Huawei plugin does
/// the same), every other modem we know writes them as text.
pub fn ussd_form(manufacturer: &str) -> crate::codec::ussd::Gsm7Form {
    if manufacturer.to_ascii_lowercase().contains("huawei") {
        crate::codec::ussd::Gsm7Form::Packed
    } else {
        crate::codec::ussd::Gsm7Form::Text
    }
}

/// Whether `interface` of `product` is the model's AT port.
pub fn is_at_interface(model: &Model, product: u16, interface: u8) -> bool {
    model
        .at_interface
        .iter()
        .any(|&(p, i)| p == product && i == interface)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn lookups() {
        let e3372 = by_usb_id(0x12d1, 0x1506).unwrap();
        assert_eq!(e3372.id, "huawei-e3372");
        assert!(is_at_interface(e3372, 0x1506, 0));
        assert!(!is_at_interface(e3372, 0x1506, 2));
        assert!(unusable(0x12d1, 0x14dc).unwrap().fix.contains("stick"));
        assert_eq!(by_manufacturer("Quectel").unwrap().id, "quectel-ec25");
        assert_eq!(by_manufacturer("huawei").unwrap().init, &["AT^CURC=0"]);
        assert!(by_manufacturer("Acme Modems").is_none());
    }

    #[test]
    fn the_udev_rules_cover_every_model_with_usb_ids() {
        let rules = include_str!("../../udev/99-textback.rules");
        for model in MODELS {
            for (vendor, product) in model.usb_ids {
                let vendor = format!("ATTRS{{idVendor}}==\"{vendor:04x}\"");
                let product = format!("{product:04x}");
                assert!(
                    rules.lines().any(|l| l.contains(&vendor)
                        && l.contains(&product)
                        && l.contains(model.id.split('-').next().unwrap_or(""))),
                    "udev rules lack {} {product}",
                    model.id
                );
            }
        }
    }
}
