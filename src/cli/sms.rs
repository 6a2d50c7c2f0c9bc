//! `textback sms decode | encode | send`: SMS PDUs in words, the PDUs a text would become, and a
//! test SMS through a modem with its delivery report. For technicians reading modem logs.

use std::time::Duration;

use crate::codec::pdu::{
    self, Address, AddressKind, Concat, Deliver, Pdu, SmscField, StatusReport, Submit,
    SubmitOptions, Timestamp,
};
use crate::config::ModemConfig;
use crate::modem::ModemEvent;
use crate::modem::probe::Probe;

fn address(address: &Address) -> String {
    let kind = match address.kind {
        AddressKind::International => "international",
        AddressKind::National => "national",
        AddressKind::Alphanumeric => "alphanumeric",
        AddressKind::Unknown => "unknown type",
    };
    format!("{} ({kind})", address.display())
}

fn concat(concat: &Option<Concat>) -> String {
    match concat {
        None => "single part".to_string(),
        Some(c) => format!(
            "part {} of {}, reference {} ({}-bit)",
            c.sequence,
            c.total,
            c.reference,
            if c.wide_reference { 16 } else { 8 }
        ),
    }
}

fn time(stamp: &Timestamp) -> String {
    stamp.to_rfc3339()
}

/// Every field of a PDU in words, one per line.
pub fn describe(pdu: &Pdu) -> String {
    let mut lines: Vec<String> = Vec::new();
    let smsc = |smsc: &Option<Address>| {
        smsc.as_ref()
            .map(address)
            .unwrap_or_else(|| "(not given)".to_string())
    };
    match pdu {
        Pdu::Deliver(Deliver {
            smsc: centre,
            sender,
            timestamp,
            encoding,
            concat: parts,
            text,
            protocol_identifier,
            data_coding_scheme,
        }) => {
            lines.push("type: SMS-DELIVER (a message received)".to_string());
            lines.push(format!("service centre: {}", smsc(centre)));
            lines.push(format!("sender: {}", address(sender)));
            lines.push(format!("sent at: {}", time(timestamp)));
            lines.push(format!("protocol identifier: {protocol_identifier:#04x}"));
            lines.push(format!(
                "data coding: {data_coding_scheme:#04x} ({encoding:?})"
            ));
            lines.push(format!("parts: {}", concat(parts)));
            lines.push(format!(
                "text ({} characters): {text}",
                text.chars().count()
            ));
        }
        Pdu::Submit(Submit {
            smsc: centre,
            message_reference,
            recipient,
            validity_minutes,
            status_report,
            encoding,
            concat: parts,
            text,
            data_coding_scheme,
        }) => {
            lines.push("type: SMS-SUBMIT (a message to send)".to_string());
            lines.push(format!("service centre: {}", smsc(centre)));
            lines.push(format!("message reference: {message_reference}"));
            lines.push(format!("recipient: {}", address(recipient)));
            lines.push(format!(
                "validity: {}",
                validity_minutes
                    .map(|m| format!("{m} minutes"))
                    .unwrap_or_else(|| "none given".to_string())
            ));
            lines.push(format!(
                "status report requested: {}",
                if *status_report { "yes" } else { "no" }
            ));
            lines.push(format!(
                "data coding: {data_coding_scheme:#04x} ({encoding:?})"
            ));
            lines.push(format!("parts: {}", concat(parts)));
            lines.push(format!(
                "text ({} characters): {text}",
                text.chars().count()
            ));
        }
        Pdu::StatusReport(
            report @ StatusReport {
                smsc: centre,
                message_reference,
                recipient,
                submitted,
                discharged,
                status,
            },
        ) => {
            lines.push("type: SMS-STATUS-REPORT (a delivery report)".to_string());
            lines.push(format!("service centre: {}", smsc(centre)));
            lines.push(format!("reports on message reference: {message_reference}"));
            lines.push(format!("recipient: {}", address(recipient)));
            lines.push(format!("submitted at: {}", time(submitted)));
            lines.push(format!("status at: {}", time(discharged)));
            lines.push(format!(
                "status: {status:#04x}: {} ({:?})",
                report.describe(),
                report.outcome()
            ));
        }
    }
    lines.join("\n")
}

/// The same as JSON, for scripts.
pub fn to_json(pdu: &Pdu) -> serde_json::Value {
    let address =
        |a: &Address| serde_json::json!({"number": a.display(), "kind": format!("{:?}", a.kind)});
    let parts = |c: &Option<Concat>| {
        c.map(|c| serde_json::json!({"reference": c.reference, "total": c.total, "sequence": c.sequence, "wide_reference": c.wide_reference}))
    };
    match pdu {
        Pdu::Deliver(d) => serde_json::json!({
            "type": "SMS-DELIVER", "smsc": d.smsc.as_ref().map(address), "sender": address(&d.sender),
            "timestamp": d.timestamp.to_rfc3339(), "encoding": format!("{:?}", d.encoding),
            "data_coding_scheme": d.data_coding_scheme, "protocol_identifier": d.protocol_identifier,
            "concat": parts(&d.concat), "text": d.text,
        }),
        Pdu::Submit(s) => serde_json::json!({
            "type": "SMS-SUBMIT", "smsc": s.smsc.as_ref().map(address), "message_reference": s.message_reference,
            "recipient": address(&s.recipient), "validity_minutes": s.validity_minutes,
            "status_report": s.status_report, "encoding": format!("{:?}", s.encoding),
            "data_coding_scheme": s.data_coding_scheme, "concat": parts(&s.concat), "text": s.text,
        }),
        Pdu::StatusReport(r) => serde_json::json!({
            "type": "SMS-STATUS-REPORT", "smsc": r.smsc.as_ref().map(address), "message_reference": r.message_reference,
            "recipient": address(&r.recipient), "submitted": r.submitted.to_rfc3339(),
            "discharged": r.discharged.to_rfc3339(), "status": r.status,
            "outcome": format!("{:?}", r.outcome()), "description": r.describe(),
        }),
    }
}

/// Decodes a PDU as a modem prints it (`tpdu`: without the SMSC field, as in 3GPP examples).
pub fn decode(hex: &str, tpdu: bool) -> Result<Pdu, pdu::DecodeError> {
    pdu::decode(
        hex,
        if tpdu {
            SmscField::Absent
        } else {
            SmscField::Present
        },
    )
}

/// The options `sms encode` and `sms send` use: the daemon's own.
fn options(status_report: bool) -> SubmitOptions {
    SubmitOptions {
        validity_minutes: Some(24 * 60),
        status_report,
        concat_reference: 1,
        wide_reference: false,
    }
}

/// What `sms encode` prints: the encoding, the parts, and each PDU with its AT+CMGS length.
pub fn encode(to: &str, text: &str) -> Result<String, pdu::EncodeError> {
    let segmentation = pdu::segment(text);
    let pdus = pdu::encode_submit(to, text, &options(true))?;
    let mut out = format!(
        "{:?}, {} part{}\n",
        segmentation.encoding,
        pdus.len(),
        if pdus.len() == 1 { "" } else { "s" }
    );
    for (i, pdu) in pdus.iter().enumerate() {
        let part = segmentation.parts.get(i).map(String::as_str).unwrap_or("");
        out.push_str(&format!(
            "part {}: {part}\n  AT+CMGS={}\n  {}\n",
            i + 1,
            pdu.tpdu_length,
            pdu.hex
        ));
    }
    Ok(out)
}

/// Sends one SMS through a modem directly and waits up to `wait` for its delivery report; returns
/// false when a report says it failed.
pub async fn send(
    modem: ModemConfig,
    to: &str,
    text: &str,
    wait: Duration,
) -> anyhow::Result<bool> {
    let pdus = pdu::encode_submit(to, text, &options(true))?;
    println!(
        "{} part{} to {to}",
        pdus.len(),
        if pdus.len() == 1 { "" } else { "s" }
    );
    let mut probe = Probe::open(modem.clone(), Duration::from_secs(30))
        .await
        .map_err(|reason| anyhow::anyhow!("modem on {}: {reason}", modem.port.display()))?;
    let references = match probe.handle().send_sms(pdus).await {
        Ok(references) => references,
        Err(err) => {
            probe.close().await;
            return Err(err.into());
        }
    };
    println!(
        "accepted by the network: reference{} {:?}",
        if references.len() == 1 { "" } else { "s" },
        references
    );
    println!(
        "waiting up to {}s for the delivery report...",
        wait.as_secs()
    );
    let deadline = tokio::time::Instant::now() + wait;
    let mut failed = false;
    let mut pending = references.clone();
    while !pending.is_empty() {
        let Ok(Some(event)) = tokio::time::timeout_at(deadline, probe.events.recv()).await else {
            println!("no delivery report yet for {pending:?} (some networks send none, or late)");
            break;
        };
        if let ModemEvent::Input(crate::event::Event::StatusReport(sms)) = event
            && let Ok(Pdu::StatusReport(report)) = pdu::decode(&sms.pdu, SmscField::Present)
            && pending.contains(&report.message_reference)
        {
            println!(
                "reference {}: {}",
                report.message_reference,
                report.describe()
            );
            pending.retain(|r| *r != report.message_reference);
            failed |= report.outcome() == pdu::DeliveryOutcome::Failed;
        }
    }
    probe.close().await;
    Ok(!failed)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn decodes_the_3gpp_example_in_words() {
        // The "hellohello" SMS-SUBMIT TPDU of the GSM 03.40 examples (as quoted by many PDU tools).
        let pdu = decode("0011000B916407281553F80000AA0AE8329BFD4697D9EC37", false).unwrap();
        let words = describe(&pdu);
        assert!(words.contains("type: SMS-SUBMIT"), "{words}");
        assert!(
            words.contains("recipient: +46708251358 (international)"),
            "{words}"
        );
        assert!(
            words.contains("text (10 characters): hellohello"),
            "{words}"
        );
        assert_eq!(to_json(&pdu)["text"], "hellohello");
    }

    #[test]
    fn a_malformed_pdu_says_where_it_breaks() {
        let err = decode("0011000B916407", false).unwrap_err().to_string();
        assert!(err.contains("octet"), "{err}");
    }

    #[test]
    fn encode_shows_parts_and_lengths() {
        let out = encode("+447700900123", &"a".repeat(200)).unwrap();
        assert!(out.starts_with("Gsm7, 2 parts\n"), "{out}");
        assert_eq!(out.matches("AT+CMGS=").count(), 2, "{out}");
        let emoji = encode("07700900123", "ok 👍").unwrap();
        assert!(emoji.starts_with("Ucs2, 1 part\n"), "{emoji}");
    }
}
