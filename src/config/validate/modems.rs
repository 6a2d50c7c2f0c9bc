//! `[[modem]]`.

use super::*;

pub(super) fn modems(
    check: &mut Checker,
    raw: &[RawModem],
    ids: &[Option<ModemId>],
    known: &Known<'_>,
) -> Vec<ModemConfig> {
    let mut modems = Vec::new();
    for (i, (modem, id)) in raw.iter().zip(ids).enumerate() {
        let path = |key: &str| format!("modem[{i}].{key}");
        if modem.hangup_after_rings == 1 {
            check.error(
                path("hangup_after_rings"),
                "1 hangs up before the caller's number arrives (+CLIP follows the first RING): use 0 (never) or 2 or more",
            );
        }
        if !modem.port.is_absolute() {
            check.error(
                path("port"),
                format!(
                    "{:?} is not an absolute path (e.g. /dev/textback-modem)",
                    modem.port
                ),
            );
        } else if !modem.port.exists() {
            check.warn(
                path("port"),
                format!(
                    "{} is not there now: plug the dongle in (the udev rules the package installs name a known dongle /dev/textback-modem as it appears)",
                    modem.port.display()
                ),
            );
        }
        let pin = match &modem.pin {
            Some(pin)
                if !(4..=8).contains(&pin.len()) || !pin.chars().all(|c| c.is_ascii_digit()) =>
            {
                check.error(path("pin"), "a SIM PIN is 4 to 8 digits");
                None
            }
            Some(pin) => Some(Secret::new(pin.clone())),
            None => None,
        };
        let smsc = modem
            .smsc
            .as_ref()
            .and_then(|smsc| check.number(&path("smsc"), smsc));
        const RATES: &[u32] = &[
            9600, 19_200, 38_400, 57_600, 115_200, 230_400, 460_800, 921_600,
        ];
        if !RATES.contains(&modem.baud) {
            check.error(
                path("baud"),
                format!(
                    "{} is not a serial rate; use one of {RATES:?} (115200 for USB dongles)",
                    modem.baud
                ),
            );
        }
        let profile = known.profile(check, path("profile"), &modem.profile);
        if let Some(id) = id {
            modems.push(ModemConfig {
                id: id.clone(),
                port: modem.port.clone(),
                pin,
                profile,
                smsc,
                baud: modem.baud,
                hangup_after_rings: modem.hangup_after_rings,
                status_reports: modem.status_reports,
            });
        }
    }

    modems
}
