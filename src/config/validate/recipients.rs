//! `[[profile.recipient]]`: who is told of a lead, on which channels, and when.

use super::*;

pub(super) fn recipients(
    check: &mut Checker,
    i: usize,
    profile: &RawProfile,
    questions: &[Question],
    notify: &Notify,
) -> Vec<Recipient> {
    let mut recipients = Vec::new();
    for (j, recipient) in profile.recipients.iter().enumerate() {
        let key = |k: &str| format!("profile[{i}].recipient[{j}].{k}");
        if recipient.name.trim().is_empty() {
            check.error(key("name"), "is empty");
        }
        let mut channels = Vec::new();
        if recipient.email.is_some() && notify.email.is_none() {
            check.warn(
                key("email"),
                "[notify.email] is not set, so emails to this recipient wait (pending): add [notify.email] with host and from (the SMTP server lead emails leave through; see textback.example.toml), or run `textback init` again to be asked for them",
            );
        }
        if recipient.whatsapp.is_some() && notify.whatsapp.is_none() {
            check.warn(
                key("whatsapp"),
                "[notify.whatsapp] is not set, so WhatsApp messages to this recipient wait (pending): add [notify.whatsapp] with phone_number_id, token and template (see textback.example.toml)",
            );
        }
        if let Some(email) = &recipient.email {
            if is_email(email) {
                channels.push(Channel::Email(email.trim().to_string()));
            } else {
                check.error(
                    key("email"),
                    format!("{email:?} is not an email address (name@example.com)"),
                );
            }
        }
        if let Some(number) = &recipient.sms {
            channels.extend(check.number(&key("sms"), number).map(Channel::Sms));
        }
        if let Some(number) = &recipient.whatsapp {
            channels.extend(
                check
                    .number(&key("whatsapp"), number)
                    .map(Channel::WhatsApp),
            );
        }
        if let Some(url) = &recipient.webhook {
            if url.starts_with("https://") || url.starts_with("http://") {
                channels.push(Channel::Webhook(url.clone()));
            } else {
                check.error(
                    key("webhook"),
                    format!("{url:?} must start with https:// (or http:// on the LAN)"),
                );
            }
        }
        if recipient.email.is_none()
            && recipient.sms.is_none()
            && recipient.whatsapp.is_none()
            && recipient.webhook.is_none()
        {
            check.error(
                format!("profile[{i}].recipient[{j}]"),
                "has no channel: give it at least one of email, sms, whatsapp, webhook",
            );
        }
        let when = recipient.when.as_ref().and_then(|route| {
            let question = questions
                .iter()
                .find(|q| q.id.as_str() == route.question)
                .map(|q| q.id.clone());
            if question.is_none() {
                check.error(
                    key("when.question"),
                    format!(
                        "{:?} is not one of this profile's questions ({})",
                        route.question,
                        quoted(&questions.iter().map(|q| q.id.as_str()).collect::<Vec<_>>())
                    ),
                );
            }
            let contains: Vec<String> = route
                .contains
                .iter()
                .map(|w| w.trim().to_string())
                .filter(|w| !w.is_empty())
                .collect();
            if contains.is_empty() {
                check.error(
                    key("when.contains"),
                    "is empty: list the words an answer must contain, e.g. [\"boiler\", \"heating\"]",
                );
            }
            question.map(|question| Route { question, contains })
        });
        if recipient.late_replies == Some(true) && !notify.late_replies {
            check.warn(
                key("late_replies"),
                "has no effect while notify.late_replies = false: nobody is told of replies after a lead",
            );
        }
        let call_back_gather = match gather(&recipient.call_back_gather) {
            Ok(gather) => gather,
            Err(problem) => {
                check.error(key("call_back_gather"), problem);
                std::time::Duration::ZERO
            }
        };
        recipients.push(Recipient {
            name: recipient.name.clone(),
            channels,
            when,
            late_replies: notify.late_replies && recipient.late_replies.unwrap_or(true),
            call_back_gather,
        });
    }
    if profile.recipients.is_empty() {
        check.warn(
            format!("profile[{i}].recipient"),
            "no recipients: leads are kept on the dashboard but nobody is told of them",
        );
    }

    recipients
}

/// `call_back_gather`: whole seconds, minutes or hours ("90s", "5m", "1h"; "0s" for each call at
/// once), at most an hour.
fn gather(text: &str) -> Result<std::time::Duration, String> {
    let trimmed = text.trim();
    let unit_at = trimmed
        .find(|c: char| !c.is_ascii_digit())
        .unwrap_or(trimmed.len());
    let (digits, unit) = trimmed.split_at(unit_at);
    let scale = match unit.trim() {
        "s" => 1,
        "m" => 60,
        "h" => 60 * 60,
        _ => 0,
    };
    let seconds = digits
        .parse::<u64>()
        .ok()
        .filter(|_| scale > 0)
        .and_then(|n| n.checked_mul(scale));
    match seconds {
        None => Err(format!(
            "{text:?} is not a time to wait: write seconds, minutes or hours such as \"90s\", \"5m\" or \"0s\" (each call at once)"
        )),
        Some(seconds) if seconds > defaults::MAX_CALL_BACK_GATHER_SECONDS => Err(format!(
            "{text:?} is longer than an hour: a call back gathered that long is late; use \"5m\" (the default) or less"
        )),
        Some(seconds) => Ok(std::time::Duration::from_secs(seconds)),
    }
}

#[cfg(test)]
mod tests {
    use super::gather;
    use std::time::Duration;

    #[test]
    fn gather_times_read_in_seconds_minutes_or_hours() {
        assert_eq!(gather("5m"), Ok(Duration::from_secs(300)));
        assert_eq!(gather(" 90s "), Ok(Duration::from_secs(90)));
        assert_eq!(gather("0s"), Ok(Duration::ZERO));
        assert_eq!(gather("1h"), Ok(Duration::from_secs(3600)));
        for bad in [
            "5",
            "m",
            "5 minutes",
            "-1m",
            "",
            "1.5m",
            "99999999999999999999h",
        ] {
            let problem = gather(bad).unwrap_err();
            assert!(problem.contains("\"5m\""), "{bad:?}: {problem}");
        }
        assert!(gather("2h").unwrap_err().contains("longer than an hour"));
    }
}
