//! `[notify]`: email, WhatsApp and webhook settings, and how long leads are tried.

use super::*;

pub(super) fn notify(check: &mut Checker, raw: RawNotify) -> Notify {
    const HOUR: u64 = 3600;
    if raw.link_valid_days == 0 || raw.link_valid_days > 3650 {
        check.error(
            "notify.link_valid_days",
            format!("{} is out of range: 1 to 3650 days", raw.link_valid_days),
        );
    }
    if raw.give_up_after_hours == 0 || raw.give_up_after_hours > 24 * 90 {
        check.error(
            "notify.give_up_after_hours",
            format!(
                "{} is out of range: 1 to 2160 hours (90 days)",
                raw.give_up_after_hours
            ),
        );
    }
    let email = raw.email.map(|email| {
        let security = match email.security.to_ascii_lowercase().as_str() {
            "starttls" => EmailSecurity::StartTls,
            "tls" | "ssl" => EmailSecurity::Tls,
            "none" => EmailSecurity::None,
            other => {
                check.error(
                    "notify.email.security",
                    format!("{other:?} is not one of \"starttls\" (port 587), \"tls\" (port 465), \"none\" (a relay on the box or the LAN)"),
                );
                EmailSecurity::StartTls
            }
        };
        let port = email.port.unwrap_or(match security {
            EmailSecurity::StartTls => defaults::smtp_port(),
            EmailSecurity::Tls => 465,
            EmailSecurity::None => 25,
        });
        if email.host.trim().is_empty() || email.host.contains(char::is_whitespace) {
            check.error(
                "notify.email.host",
                format!("{:?} is not a host name or address", email.host),
            );
        }
        let address = match (email.from.rfind('<'), email.from.rfind('>')) {
            (Some(open), Some(close)) if open < close => &email.from[open + 1..close],
            _ => email.from.as_str(),
        };
        if !is_email(address) {
            check.error(
                "notify.email.from",
                format!(
                    "{:?} is not an address: write \"leads@example.com\" or \"Acme leads <leads@example.com>\"",
                    email.from
                ),
            );
        }
        if email.username.is_some() != email.password.is_some() {
            check.error(
                "notify.email",
                "username and password go together: give both, or neither for a relay that needs no login",
            );
        }
        if security == EmailSecurity::None && email.password.is_some() {
            check.warn(
                "notify.email.security",
                "\"none\" with a password sends the password unencrypted: use \"starttls\" or \"tls\" unless the relay is on this box",
            );
        }
        if let Some(ca_file) = &email.ca_file {
            if !ca_file.is_absolute() {
                check.error(
                    "notify.email.ca_file",
                    format!(
                        "{} is relative: give the full path of the PEM file",
                        ca_file.display()
                    ),
                );
            } else if security == EmailSecurity::None {
                check.warn(
                    "notify.email.ca_file",
                    "is only used with security \"starttls\" or \"tls\"",
                );
            } else if !ca_file.exists() {
                check.warn(
                    "notify.email.ca_file",
                    format!(
                        "{} does not exist now: lead emails fail until it does",
                        ca_file.display()
                    ),
                );
            }
        }
        EmailSettings {
            host: email.host.trim().to_string(),
            port,
            security,
            username: email.username,
            password: email.password.map(Secret::new),
            from: email.from.trim().to_string(),
            ca_file: email.ca_file,
        }
    });
    let whatsapp = raw.whatsapp.map(|whatsapp| {
        if whatsapp.phone_number_id.is_empty()
            || !whatsapp.phone_number_id.chars().all(|c| c.is_ascii_digit())
        {
            check.error(
                "notify.whatsapp.phone_number_id",
                format!(
                    "{:?} is not a phone number id: the digits Meta's WhatsApp Manager shows under API setup (not the phone number)",
                    whatsapp.phone_number_id
                ),
            );
        }
        if whatsapp.token.trim().is_empty() {
            check.error("notify.whatsapp.token", "is empty: a system user's access token");
        }
        match whatsapp.template.as_deref().map(str::trim) {
            Some("") => check.error(
                "notify.whatsapp.template",
                "is empty: the name of an approved message template",
            ),
            Some(_) => {}
            None => check.warn(
                "notify.whatsapp.template",
                "not set: leads go as free text, which WhatsApp delivers only within 24 hours of the recipient's last message to the business number; an approved template with 4 body variables (name, number, reason, link) always arrives",
            ),
        }
        if !(whatsapp.base_url.starts_with("https://") || whatsapp.base_url.starts_with("http://")) {
            check.error(
                "notify.whatsapp.base_url",
                format!("{:?} must start with https://", whatsapp.base_url),
            );
        }
        WhatsAppSettings {
            base_url: whatsapp.base_url.trim_end_matches('/').to_string(),
            api_version: whatsapp.api_version.trim_matches('/').to_string(),
            phone_number_id: whatsapp.phone_number_id,
            token: Secret::new(whatsapp.token.trim()),
            template: whatsapp.template.map(|t| t.trim().to_string()),
            language: whatsapp.language,
        }
    });
    if raw.webhook.timeout_seconds == 0 || raw.webhook.timeout_seconds > 300 {
        check.error(
            "notify.webhook.timeout_seconds",
            format!("{} is out of range: 1 to 300", raw.webhook.timeout_seconds),
        );
    }
    if raw.webhook.secret.as_deref().is_some_and(|s| s.len() < 16) {
        check.error(
            "notify.webhook.secret",
            "is shorter than 16 characters: use a long random string (`openssl rand -hex 32`)",
        );
    }
    Notify {
        link_valid: std::time::Duration::from_secs(u64::from(raw.link_valid_days) * 24 * HOUR),
        give_up_after: std::time::Duration::from_secs(u64::from(raw.give_up_after_hours) * HOUR),
        late_replies: raw.late_replies,
        email,
        whatsapp,
        webhook: WebhookSettings {
            secret: raw.webhook.secret.map(Secret::new),
            timeout: std::time::Duration::from_secs(u64::from(raw.webhook.timeout_seconds)),
        },
    }
}
