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
        } else if !modem.port.exists() && modem.usb_serial.is_none() {
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
        if modem.recipient_cap == 0 {
            check.error(
                path("recipient_cap"),
                "0 would let this SIM text nobody; the default is 250 (UK networks bar a SIM past about 300 a day)",
            );
        } else if modem.recipient_cap > 300 {
            check.warn(
                path("recipient_cap"),
                format!(
                    "{} distinct numbers a day is over the ~300 at which UK networks (EE) bar a SIM's texts: 250 is safe",
                    modem.recipient_cap
                ),
            );
        }
        if !(1..=1440).contains(&modem.refused_recheck_minutes) {
            check.error(
                path("refused_recheck_minutes"),
                format!(
                    "{} is not 1 to 1440 (minutes, at most a day)",
                    modem.refused_recheck_minutes
                ),
            );
        }
        if modem.off_network_minutes > 120 {
            check.error(
                path("off_network_minutes"),
                format!(
                    "{} is over 120: a SIM off the network longer than two hours needs a person; 0 never cycles the radio",
                    modem.off_network_minutes
                ),
            );
        }
        let mut digits =
            |value: &Option<String>, key: &str, lengths: std::ops::RangeInclusive<usize>| {
                let value = value.as_ref()?;
                if lengths.contains(&value.len()) && value.chars().all(|c| c.is_ascii_digit()) {
                    Some(value.clone())
                } else {
                    check.error(
                        path(key),
                        format!(
                            "{value:?} is not {} digits: `textback modem info` prints the modem's",
                            if lengths.start() == lengths.end() {
                                lengths.start().to_string()
                            } else {
                                format!("{} to {}", lengths.start(), lengths.end())
                            }
                        ),
                    );
                    None
                }
            };
        let imei = digits(&modem.imei, "imei", 15..=15);
        let iccid = digits(&modem.iccid, "iccid", 18..=20);
        let profile = known.profile(check, path("profile"), &modem.profile);
        let balance = balance_check(check, &path, modem);
        let usb_serial = match &modem.usb_serial {
            Some(serial)
                if serial.is_empty()
                    || serial.len() > 64
                    || !serial.chars().all(|c| c.is_ascii_graphic()) =>
            {
                check.error(
                    path("usb_serial"),
                    format!(
                        "{serial:?} is not a USB serial (1 to 64 letters and digits): `textback modem list` prints each port's"
                    ),
                );
                None
            }
            other => other.clone(),
        };
        let self_test = modem
            .self_test
            .as_ref()
            .and_then(|raw| self_test(check, &path, raw));
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
                recipient_cap: modem.recipient_cap,
                refused_recheck: std::time::Duration::from_secs(
                    u64::from(modem.refused_recheck_minutes) * 60,
                ),
                off_network_cycle: (modem.off_network_minutes > 0).then(|| {
                    std::time::Duration::from_secs(u64::from(modem.off_network_minutes) * 60)
                }),
                imei,
                iccid,
                balance,
                self_test,
                usb_serial,
                search: PortSearch::default(),
                ussd_timeout: defaults::USSD_TIMEOUT,
            });
        }
    }

    modems
}

/// `modem.balance_ussd`, `modem.balance_low`, `modem.balance_check_hours`.
fn balance_check(
    check: &mut Checker,
    path: &dyn Fn(&str) -> String,
    modem: &RawModem,
) -> Option<BalanceCheck> {
    let Some(code) = &modem.balance_ussd else {
        if modem.balance_low.is_some() {
            check.error(
                path("balance_low"),
                "has no effect without modem.balance_ussd, the network's balance code (e.g. \"*#10#\")",
            );
        }
        return None;
    };
    let code = code.trim();
    let digits = code.trim_matches(['*', '#']);
    let is_code = (code.starts_with('*') || code.starts_with('#'))
        && code.ends_with('#')
        && !digits.is_empty()
        && code
            .chars()
            .all(|c| c.is_ascii_digit() || c == '*' || c == '#');
    if !is_code {
        check.error(
            path("balance_ussd"),
            format!(
                "{code:?} is not a USSD code: it starts with * or #, ends with #, and has digits between (e.g. \"*#10#\"; the network's site gives its balance code)"
            ),
        );
    }
    let low = modem.balance_low.unwrap_or(defaults::balance_low());
    if !low.is_finite() || !(0.0..=1000.0).contains(&low) {
        check.error(
            path("balance_low"),
            format!("{low} is not an amount in pounds from 0 to 1000 (e.g. 2.00)"),
        );
    }
    if !(1..=168).contains(&modem.balance_check_hours) {
        check.error(
            path("balance_check_hours"),
            format!(
                "{} is not 1 to 168 (hours, at most a week; 24 checks daily)",
                modem.balance_check_hours
            ),
        );
    }
    is_code.then(|| BalanceCheck {
        code: code.to_string(),
        low_pence: (low * 100.0).round() as i64,
        interval: std::time::Duration::from_secs(u64::from(modem.balance_check_hours) * 3600),
    })
}

/// `[modem.self_test]`: `to`, `at`, `timeout_minutes`.
fn self_test(
    check: &mut Checker,
    path: &dyn Fn(&str) -> String,
    raw: &RawSelfTest,
) -> Option<SelfTest> {
    let to = check.number(&path("self_test.to"), &raw.to);
    let at = match chrono::NaiveTime::parse_from_str(raw.at.trim(), "%H:%M") {
        Ok(at) => Some(at),
        Err(_) => {
            check.error(
                path("self_test.at"),
                format!(
                    "{:?} is not a time of day (HH:MM, UK time, e.g. \"04:00\")",
                    raw.at
                ),
            );
            None
        }
    };
    if !(1..=120).contains(&raw.timeout_minutes) {
        check.error(
            path("self_test.timeout_minutes"),
            format!(
                "{} is not 1 to 120 (minutes for the text to come back; UK networks take seconds)",
                raw.timeout_minutes
            ),
        );
        return None;
    }
    Some(SelfTest {
        to: to?,
        at: at?,
        timeout: std::time::Duration::from_secs(u64::from(raw.timeout_minutes) * 60),
    })
}
