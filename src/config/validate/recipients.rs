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
        recipients.push(Recipient {
            name: recipient.name.clone(),
            channels,
            when,
            late_replies: notify.late_replies && recipient.late_replies.unwrap_or(true),
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
