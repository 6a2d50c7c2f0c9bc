//! `textback modem list` and `textback divert-guide`: what is plugged in, and how to send a
//! business's unanswered calls to the dongle.

use std::path::Path;
use std::time::Duration;

use crate::config::Config;
use crate::domain::E164;
use crate::modem::probe::Probe;
use crate::modem::usb;

/// Prints the USB serial ports and known dongles found under `sys`; returns how many AT ports of
/// known models were found.
pub fn modem_list(sys: &Path, json: bool) -> usize {
    let ports = usb::ports(sys);
    let stuck = usb::stuck(sys);
    let at_ports = ports.iter().filter(|p| p.is_at_port).count();
    if json {
        let ports: Vec<serde_json::Value> = ports
            .iter()
            .map(|p| {
                serde_json::json!({
                    "device": p.device,
                    "usb_id": format!("{:04x}:{:04x}", p.vendor, p.product),
                    "interface": p.interface,
                    "serial": p.serial,
                    "usb_path": p.usb_path,
                    "model": p.model.map(|m| m.id),
                    "at_port": p.is_at_port,
                })
            })
            .collect();
        let stuck: Vec<serde_json::Value> = stuck
            .iter()
            .map(|s| serde_json::json!({"usb_path": s.usb_path, "usb_id": format!("{:04x}:{:04x}", s.mode.usb_id.0, s.mode.usb_id.1), "what": s.mode.what, "fix": s.mode.fix}))
            .collect();
        println!("{}", serde_json::json!({"ports": ports, "unusable": stuck}));
        return at_ports;
    }
    if ports.is_empty() && stuck.is_empty() {
        println!(
            "no USB serial ports found: is the dongle plugged in? (`lsusb` lists USB devices)"
        );
    }
    for port in &ports {
        let model = match port.model {
            Some(model) => model.title.to_string(),
            None => format!(
                "unknown model{}",
                port.product_name
                    .as_ref()
                    .map(|n| format!(" ({n})"))
                    .unwrap_or_default()
            ),
        };
        let role = match (port.model, port.is_at_port) {
            (Some(_), true) => "AT port: use this one",
            (Some(_), false) => "not the AT port",
            (None, _) => "try `textback modem at --port <device> AT`",
        };
        println!(
            "{:<14} {:04x}:{:04x} interface {}  {model}  usb {}{}  {role}",
            port.device.display(),
            port.vendor,
            port.product,
            port.interface
                .map(|i| i.to_string())
                .unwrap_or_else(|| "?".to_string()),
            port.usb_path,
            port.serial
                .as_ref()
                .map(|s| format!(" serial {s}"))
                .unwrap_or_default(),
        );
    }
    for device in &stuck {
        println!(
            "usb {}  {:04x}:{:04x}  {}: {}",
            device.usb_path,
            device.mode.usb_id.0,
            device.mode.usb_id.1,
            device.mode.what,
            device.mode.fix
        );
    }
    at_ports
}

/// How long a modem has to answer AT+CNUM for the guide.
const ASK_TIMEOUT: Duration = Duration::from_secs(30);

/// Asks the first modem for its own number (AT+CNUM); many SIMs do not store it.
pub async fn own_number(config: &Config) -> Result<Option<E164>, String> {
    let Some(modem_config) = config.modems.first() else {
        return Err("no modem in the config".to_string());
    };
    let probe = Probe::open(modem_config.clone(), ASK_TIMEOUT).await?;
    let number = probe.info.own_number.clone();
    probe.close().await;
    Ok(E164::parse(&number).ok())
}

/// The divert codes and notes for `number`, diverting after `seconds` of ringing.
pub fn divert_guide(number: Option<&E164>, seconds: u32) -> String {
    let seconds = (seconds.clamp(5, 30) / 5) * 5;
    let target = match number {
        Some(number) => number.to_string(),
        None => "<SIM number>".to_string(),
    };
    let mut out = String::new();
    match number {
        Some(number) => out.push_str(&format!("The dongle's SIM number is {} ({}).\n\n", number.national(), number)),
        None => out.push_str(
            "The SIM does not store its own number. Find it by texting or ringing another phone from the SIM\n\
             (the number on the SIM's packaging), then run again with --number.\n\n",
        ),
    }
    out.push_str(&format!(
        "On the business's UK mobile, dial (GSM codes, 3GPP TS 22.030; all UK networks accept them):\n\
         \x20 **61*{target}**{seconds}#   divert when unanswered after {seconds} s (5 to 30, in steps of 5)\n\
         \x20 **62*{target}#       divert when the phone is off or out of signal\n\
         \x20 **67*{target}#       divert when busy\n\
         \x20 *#61#                 check the no-answer divert\n\
         \x20 ##61#  ##62#  ##67#   undo each\n\n\
         On a BT (or similar) landline, Call Diversion on no reply: *61*{national}#, cancel with #61#\n\
         (the service may need switching on by the provider; each diverted call is charged as a call to a mobile).\n\n\
         On a PBX, send the extension's no-answer destination to the SIM's number:\n\
         \x20 FreePBX/Asterisk: Applications > Follow Me (or the extension's \"Optional Destinations\", No Answer)\n\
         \x20   > Misc Destination dialling {national} through your outbound route.\n\
         \x20 3CX: the extension's Forwarding Rules > \"If I do not answer calls within {seconds} seconds\" >\n\
         \x20   Forward to external number {national}.\n\n\
         Then test it: `textback doctor --watch`, ring the business number and let it ring out.\n",
        national = number.map(|n| n.national().replace(' ', "")).unwrap_or_else(|| "<SIM number>".to_string()),
    ));
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_guide_has_the_codes_for_the_number() {
        let number = E164::parse("07700 900999").unwrap();
        let guide = divert_guide(Some(&number), 22);
        assert!(guide.contains("**61*+447700900999**20#"), "{guide}");
        assert!(guide.contains("**62*+447700900999#"), "{guide}");
        assert!(guide.contains("**67*+447700900999#"), "{guide}");
        assert!(guide.contains("##61#"), "{guide}");
        assert!(guide.contains("*61*07700900999#"), "{guide}");
        let unknown = divert_guide(None, 60);
        assert!(unknown.contains("**61*<SIM number>**30#"), "{unknown}");
        assert!(unknown.contains("--number"), "{unknown}");
    }
}
