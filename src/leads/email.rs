//! Delivering a lead by email over SMTP (lettre).
//!
//! The message is multipart/alternative, plain text and HTML from
//! [`crate::leads::summary::LeadSummary`], with:
//!
//! - `Message-ID: <lead-{id}-{hash}@{domain of From}>`, the hash being 16 hex digits of the
//!   SHA-256 of the recipient's address in lower case: the same for every re-send of one lead to
//!   one recipient, so a copy sent again after an unknown outcome (a timeout after the message
//!   was handed over) is recognisable, and many mail systems drop it;
//! - `Auto-Submitted: auto-generated` (RFC 3834) and `X-Auto-Response-Suppress: OOF, AutoReply`
//!   (Microsoft's), so out-of-office replies do not come back to the box;
//! - `X-Textback-Lead: {id}`, for filters.
//!
//! A reply the caller sent after the lead ([`crate::leads::summary::ReplySummary`]) is an email of
//! its own with `Message-ID: <lead-{id}-reply-{reply id}-{hash}@…>` (one per reply and
//! recipient), `In-Reply-To` and `References` naming the lead's email so mail programs show it
//! in the lead's thread, `X-Textback-Lead: {id}` and `X-Textback-Reply: {reply id}`.
//!
//! Settings (`[notify.email]`): `host`, `port`, `security` (`starttls`, port 587 — `tls`,
//! implicit TLS, port 465 — `plain`, no encryption, only to a relay on this box), `username`,
//! `password`, `from`, `timeout`.

use std::fmt;
use std::time::{Duration, SystemTime};

use chrono::{DateTime, Utc};
use lettre::message::header::{HeaderName, HeaderValue};
use lettre::message::{Mailbox, MultiPart};
use lettre::transport::smtp::authentication::Credentials;
use lettre::transport::smtp::client::{Certificate, Tls, TlsParameters};
use lettre::{AsyncSmtpTransport, AsyncTransport, Message, Tokio1Executor};
use sha2::{Digest, Sha256};

use super::summary::{LeadSummary, ReplySummary};
use super::{DeliveryError, hex, shorten};

const AUTO_SUBMITTED: HeaderName = HeaderName::new_from_ascii_str("Auto-Submitted");
const SUPPRESS: HeaderName = HeaderName::new_from_ascii_str("X-Auto-Response-Suppress");
const LEAD_HEADER: HeaderName = HeaderName::new_from_ascii_str("X-Textback-Lead");
const REPLY_HEADER: HeaderName = HeaderName::new_from_ascii_str("X-Textback-Reply");
const NOTICE_HEADER: HeaderName = HeaderName::new_from_ascii_str("X-Textback-Notice");
/// The whole SMTP exchange may take this many times `SmtpSettings::timeout` (which bounds each
/// step) before it is abandoned.
const WHOLE_SEND_STEPS: u32 = 6;

/// How the connection to the SMTP server is protected (`notify.email.security`).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Security {
    /// Plain connection upgraded with STARTTLS, which must succeed (usually port 587).
    StartTls,
    /// TLS from the first byte, "implicit TLS" or SMTPS (usually port 465).
    Tls,
    /// No encryption: only for a mail relay on this box (port 25); refuses to send a password
    /// to any other host.
    Plain,
}

impl Security {
    /// The usual port: 587, 465, 25.
    pub fn default_port(self) -> u16 {
        match self {
            Security::StartTls => 587,
            Security::Tls => 465,
            Security::Plain => 25,
        }
    }
}

/// The `[notify.email]` connection settings.
#[derive(Clone)]
pub struct SmtpSettings {
    /// `notify.email.host`.
    pub host: String,
    /// `notify.email.port`.
    pub port: u16,
    /// `notify.email.security`.
    pub security: Security,
    /// `notify.email.username`; with `password`, or neither.
    pub username: Option<String>,
    /// `notify.email.password`.
    pub password: Option<String>,
    /// For connecting and for each SMTP step.
    pub timeout: Duration,
    /// `notify.email.ca_file`: PEM certificate authorities trusted besides the built-in roots.
    pub ca_file: Option<std::path::PathBuf>,
}

impl fmt::Debug for SmtpSettings {
    fn fmt(&self, formatter: &mut fmt::Formatter<'_>) -> fmt::Result {
        formatter
            .debug_struct("SmtpSettings")
            .field("host", &self.host)
            .field("port", &self.port)
            .field("security", &self.security)
            .field("username", &self.username)
            .field("password", &self.password.as_ref().map(|_| "<redacted>"))
            .field("timeout", &self.timeout)
            .finish()
    }
}

impl SmtpSettings {
    /// The connection settings of `[notify.email]`; `timeout` bounds each step.
    pub fn from_config(settings: &crate::config::EmailSettings, timeout: Duration) -> SmtpSettings {
        use crate::config::EmailSecurity;
        SmtpSettings {
            host: settings.host.clone(),
            port: settings.port,
            security: match settings.security {
                EmailSecurity::StartTls => Security::StartTls,
                EmailSecurity::Tls => Security::Tls,
                EmailSecurity::None => Security::Plain,
            },
            username: settings.username.clone(),
            password: settings.password.as_ref().map(|p| p.expose().to_string()),
            timeout,
            ca_file: settings.ca_file.clone(),
        }
    }
}

/// Sends a test email to `to` through `[notify.email]`, as `textback init` offers: the same
/// server, login and sender as lead emails.
pub async fn send_test(
    settings: &crate::config::EmailSettings,
    to: &str,
    business: &str,
    timeout: Duration,
) -> Result<(), DeliveryError> {
    let from: Mailbox = settings.from.parse().map_err(|error| {
        DeliveryError::permanent(format!("notify.email.from {:?}: {error}", settings.from))
    })?;
    let to: Mailbox = to.parse().map_err(|error| {
        DeliveryError::permanent(format!("profile.recipient.email {to:?}: {error}"))
    })?;
    let message = Message::builder()
        .from(from)
        .to(to)
        .subject(format!("textback test email for {business}"))
        .date(SystemTime::now())
        .raw_header(HeaderValue::new(
            AUTO_SUBMITTED,
            "auto-generated".to_string(),
        ))
        .body(format!(
            "This is a test email from textback, the missed-call text-back box of {business}.\n\n\
             Leads will arrive like this: from this sender, through {}:{}.\n",
            settings.host, settings.port
        ))
        .map_err(|error| {
            DeliveryError::permanent(format!(
                "could not put the test email together ({error}): check notify.email.from"
            ))
        })?;
    send(&SmtpSettings::from_config(settings, timeout), &message).await
}

/// The lead email from `from` to `to`, dated `now`.
pub fn build_message(
    from: &Mailbox,
    to: &Mailbox,
    summary: &LeadSummary,
    now: DateTime<Utc>,
) -> Result<Message, DeliveryError> {
    Message::builder()
        .from(from.clone())
        .to(to.clone())
        .subject(summary.subject())
        .date(SystemTime::from(now))
        .message_id(Some(message_id(summary.lead_id, from, to)))
        .raw_header(HeaderValue::new(
            AUTO_SUBMITTED,
            "auto-generated".to_string(),
        ))
        .raw_header(HeaderValue::new(SUPPRESS, "OOF, AutoReply".to_string()))
        .raw_header(HeaderValue::new(LEAD_HEADER, summary.lead_id.to_string()))
        .multipart(MultiPart::alternative_plain_html(
            summary.text(now),
            summary.html(now),
        ))
        .map_err(|error| {
            DeliveryError::permanent(format!(
                "could not put the lead email together ({error}): check notify.email.from and \
                 the recipient's profile.recipient.email"
            ))
        })
}

/// The email telling `to` of a reply the caller sent after the lead, dated `now`: its own
/// Message-ID, in the lead email's thread.
pub fn build_reply_message(
    from: &Mailbox,
    to: &Mailbox,
    reply: &ReplySummary,
    now: DateTime<Utc>,
) -> Result<Message, DeliveryError> {
    let lead_id = reply.lead.lead_id;
    let lead_email = message_id(lead_id, from, to);
    Message::builder()
        .from(from.clone())
        .to(to.clone())
        .subject(reply.subject())
        .date(SystemTime::from(now))
        .message_id(Some(reply_message_id(lead_id, reply.reply_id, from, to)))
        .in_reply_to(lead_email.clone())
        .references(lead_email)
        .raw_header(HeaderValue::new(
            AUTO_SUBMITTED,
            "auto-generated".to_string(),
        ))
        .raw_header(HeaderValue::new(SUPPRESS, "OOF, AutoReply".to_string()))
        .raw_header(HeaderValue::new(LEAD_HEADER, lead_id.to_string()))
        .raw_header(HeaderValue::new(REPLY_HEADER, reply.reply_id.to_string()))
        .multipart(MultiPart::alternative_plain_html(
            reply.text(now),
            reply.html(now),
        ))
        .map_err(|error| {
            DeliveryError::permanent(format!(
                "could not put the reply email together ({error}): check notify.email.from and \
                 the recipient's profile.recipient.email"
            ))
        })
}

/// A notice that is not a lead (a call back, an alert, the morning summary) from `from` to `to`,
/// dated `now`: `Message-ID: <{key}-{hash}@{domain of From}>` from the notice's idempotency key,
/// the same for every attempt, and `X-Textback-Notice: {kind}` for filters.
pub fn build_notice_message(
    from: &Mailbox,
    to: &Mailbox,
    notice: &NoticeEmail<'_>,
    now: DateTime<Utc>,
) -> Result<Message, DeliveryError> {
    let key: String = notice
        .key
        .chars()
        .map(|c| {
            if c.is_ascii_alphanumeric() || c == '-' {
                c
            } else {
                '-'
            }
        })
        .collect();
    let builder = Message::builder()
        .from(from.clone())
        .to(to.clone())
        .subject(notice.subject)
        .date(SystemTime::from(now))
        .message_id(Some(format!(
            "<{key}-{}@{}>",
            recipient_hash(to),
            from.email.domain()
        )))
        .raw_header(HeaderValue::new(
            AUTO_SUBMITTED,
            "auto-generated".to_string(),
        ))
        .raw_header(HeaderValue::new(SUPPRESS, "OOF, AutoReply".to_string()))
        .raw_header(HeaderValue::new(NOTICE_HEADER, notice.kind.to_string()));
    let built = match notice.html {
        Some(html) => builder.multipart(MultiPart::alternative_plain_html(
            notice.text.to_string(),
            html.to_string(),
        )),
        None => builder.body(notice.text.to_string()),
    };
    built.map_err(|error| {
        DeliveryError::permanent(format!(
            "could not put the {} email together ({error}): check notify.email.from and the \
             recipient's profile.recipient.email",
            notice.kind
        ))
    })
}

/// What a notice's email says.
#[derive(Debug, Clone, Copy)]
pub struct NoticeEmail<'a> {
    /// The notice's kind as stored ("call_back", "alert", "summary").
    pub kind: &'a str,
    /// The notice's idempotency key, made into the Message-ID.
    pub key: &'a str,
    pub subject: &'a str,
    pub text: &'a str,
    pub html: Option<&'a str>,
}

/// `<lead-{lead_id}-{16 hex digits of SHA-256(lower-case recipient address)}@{from's domain}>`.
pub fn message_id(lead_id: i64, from: &Mailbox, to: &Mailbox) -> String {
    format!(
        "<lead-{lead_id}-{}@{}>",
        recipient_hash(to),
        from.email.domain()
    )
}

/// `<lead-{lead_id}-reply-{reply_id}-{16 hex digits as in [`message_id`]}@{from's domain}>`.
pub fn reply_message_id(lead_id: i64, reply_id: i64, from: &Mailbox, to: &Mailbox) -> String {
    format!(
        "<lead-{lead_id}-reply-{reply_id}-{}@{}>",
        recipient_hash(to),
        from.email.domain()
    )
}

/// 16 hex digits of the SHA-256 of the recipient's address in lower case.
fn recipient_hash(to: &Mailbox) -> String {
    let recipient = to.email.to_string().to_lowercase();
    let digest = Sha256::digest(recipient.as_bytes());
    hex(digest.get(..8).unwrap_or_default())
}

/// Hands `message` to the SMTP server. Each step (connecting, each command) may take
/// `settings.timeout`.
pub async fn send(settings: &SmtpSettings, message: &Message) -> Result<(), DeliveryError> {
    let transport = transport(settings)?;
    let whole = settings.timeout.saturating_mul(WHOLE_SEND_STEPS);
    let outcome = tokio::time::timeout(
        whole,
        transport.send_raw(message.envelope(), &message.formatted()),
    )
    .await;
    match outcome {
        Ok(Ok(_)) => Ok(()),
        Ok(Err(error)) => Err(smtp_error(&error, settings)),
        Err(_) => Err(DeliveryError::transient(format!(
            "the SMTP server {} took longer than {}s to take the lead email; will try again (if \
             it keeps happening, check notify.email.port and notify.email.security)",
            server(settings),
            whole.as_secs()
        ))),
    }
}

fn server(settings: &SmtpSettings) -> String {
    format!("{}:{}", settings.host.trim(), settings.port)
}

fn transport(settings: &SmtpSettings) -> Result<AsyncSmtpTransport<Tokio1Executor>, DeliveryError> {
    let host = settings.host.trim();
    if host.is_empty() {
        return Err(DeliveryError::permanent(
            "notify.email.host is empty: set it to your mail provider's SMTP server",
        ));
    }
    let credentials = match (&settings.username, &settings.password) {
        (Some(username), Some(password)) => {
            Some(Credentials::new(username.clone(), password.clone()))
        }
        (None, None) => None,
        _ => {
            return Err(DeliveryError::permanent(
                "only one of notify.email.username and notify.email.password is set: set both, \
                 or neither for a server that needs no login",
            ));
        }
    };
    let builder = match settings.security {
        Security::Tls => AsyncSmtpTransport::<Tokio1Executor>::relay(host),
        Security::StartTls => AsyncSmtpTransport::<Tokio1Executor>::starttls_relay(host),
        Security::Plain => {
            if credentials.is_some() && !is_loopback(host) {
                return Err(DeliveryError::permanent(format!(
                    "notify.email.security is \"plain\", which would send the password for \
                     {host} unencrypted: use \"starttls\" (port 587) or \"tls\" (port 465), or \
                     remove notify.email.username and password for a relay on this box"
                )));
            }
            Ok(AsyncSmtpTransport::<Tokio1Executor>::builder_dangerous(
                host,
            ))
        }
    }
    .map_err(|error| {
        DeliveryError::permanent(format!(
            "notify.email.host {host:?} cannot be used with TLS ({error}): set it to the server's \
             name as its certificate gives it"
        ))
    })?;
    let builder = match (&settings.ca_file, settings.security) {
        (Some(path), Security::Tls | Security::StartTls) => {
            let pem = std::fs::read(path).map_err(|error| {
                DeliveryError::permanent(format!(
                    "cannot read notify.email.ca_file {}: {error}",
                    path.display()
                ))
            })?;
            let certificate = Certificate::from_pem(&pem).map_err(|error| {
                DeliveryError::permanent(format!(
                    "notify.email.ca_file {} is not a PEM certificate ({error})",
                    path.display()
                ))
            })?;
            let parameters = TlsParameters::builder(host.to_string())
                .add_root_certificate(certificate)
                .build()
                .map_err(|error| {
                    DeliveryError::permanent(format!(
                        "cannot set up TLS for {host} with notify.email.ca_file ({error})"
                    ))
                })?;
            builder.tls(match settings.security {
                Security::Tls => Tls::Wrapper(parameters),
                _ => Tls::Required(parameters),
            })
        }
        _ => builder,
    };
    let builder = builder.port(settings.port).timeout(Some(settings.timeout));
    let builder = match credentials {
        Some(credentials) => builder.credentials(credentials),
        None => builder,
    };
    Ok(builder.build())
}

fn is_loopback(host: &str) -> bool {
    host.eq_ignore_ascii_case("localhost")
        || host
            .trim_start_matches('[')
            .trim_end_matches(']')
            .parse::<std::net::IpAddr>()
            .is_ok_and(|address| address.is_loopback())
}

/// What an SMTP failure means for delivery.
fn smtp_error(error: &lettre::transport::smtp::Error, settings: &SmtpSettings) -> DeliveryError {
    let server = server(settings);
    let said = shorten(&error.to_string().replace(['\r', '\n'], " "), 300);
    if let Some(code) = error.status() {
        let code = u16::from(code);
        let user = settings.username.as_deref().unwrap_or("");
        return match code {
            535 | 534 | 538 => DeliveryError::permanent(format!(
                "the password for SMTP user {user:?} was refused by {server} ({said}): check \
                 notify.email.username and notify.email.password (some providers want an app \
                 password)"
            )),
            530 if settings.username.is_none() => DeliveryError::permanent(format!(
                "{server} wants a login before it takes mail ({said}): set \
                 notify.email.username and notify.email.password"
            )),
            530 => DeliveryError::permanent(format!(
                "{server} wants encryption or a login first ({said}): check \
                 notify.email.security"
            )),
            400..=499 => DeliveryError::transient(format!(
                "{server} asked to try the lead email later ({said}); will try again"
            )),
            _ => DeliveryError::permanent(format!(
                "{server} refused the lead email ({said}): check notify.email.from (servers \
                 refuse senders they do not host) and the recipient's profile.recipient.email"
            )),
        };
    }
    if error.is_timeout() {
        return DeliveryError::transient(format!(
            "the SMTP server {server} did not answer in time ({said}); will try again (if it \
             keeps happening, check notify.email.port and notify.email.security: port 465 needs \
             \"tls\", port 587 \"starttls\")"
        ));
    }
    // rustls's verdict on the server's certificate arrives as a connection error; it will not
    // change by itself, so it is not retried.
    if said.contains("invalid peer certificate")
        || said.contains("certificate") && said.contains("Unknown")
    {
        return DeliveryError::permanent(format!(
            "the TLS certificate of {server} is not trusted ({said}): check that notify.email.host \
             is the name on the server's certificate; for a relay with a private certificate \
             authority, give its PEM file as notify.email.ca_file"
        ));
    }
    if error.is_tls() {
        return DeliveryError::permanent(format!(
            "the TLS connection to {server} failed ({said}): check notify.email.security (port \
             465 needs \"tls\", port 587 \"starttls\") and that notify.email.host is the name on \
             the server's certificate"
        ));
    }
    if error.is_client() {
        return DeliveryError::permanent(format!(
            "could not send through {server} ({said}): check notify.email.security, \
             notify.email.username and notify.email.password (many servers offer a login only \
             after STARTTLS)"
        ));
    }
    if error.is_response() {
        return DeliveryError::permanent(format!(
            "{server} did not answer like an SMTP server ({said}): check notify.email.host, \
             notify.email.port and notify.email.security"
        ));
    }
    DeliveryError::transient(format!(
        "could not talk to the SMTP server {server} ({said}); will try again (check \
         notify.email.host, notify.email.port and this box's internet connection)"
    ))
}

#[cfg(test)]
mod tests {
    use tokio::io::{AsyncBufReadExt, AsyncWriteExt, BufReader};
    use tokio::net::TcpListener;
    use tokio::task::JoinHandle;

    use super::*;
    use crate::leads::summary::tests::{dave, now};

    fn mailbox(text: &str) -> Mailbox {
        text.parse().unwrap()
    }

    fn lead_email() -> Message {
        build_message(
            &mailbox("textback <leads@box.example>"),
            &mailbox("Dave Owner <Owner@Acme.example>"),
            &dave(),
            now(),
        )
        .unwrap()
    }

    /// What the test SMTP server got.
    #[derive(Debug, Default)]
    struct Received {
        mail_from: String,
        rcpt_to: Vec<String>,
        auth: Vec<String>,
        data: Vec<u8>,
    }

    /// Replies the test SMTP server gives.
    struct Script {
        /// Offer AUTH PLAIN LOGIN, and answer AUTH with this.
        auth: Option<&'static str>,
        mail: &'static str,
    }

    const ACCEPT: Script = Script {
        auth: None,
        mail: "250 2.1.0 OK",
    };

    /// Just enough SMTP (RFC 5321) for one session on 127.0.0.1.
    async fn smtp_server(script: Script) -> (u16, JoinHandle<Received>) {
        let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
        let port = listener.local_addr().unwrap().port();
        let handle = tokio::spawn(async move {
            let (stream, _) = listener.accept().await.unwrap();
            let (read, mut write) = stream.into_split();
            let mut lines = BufReader::new(read).lines();
            let mut received = Received::default();
            write
                .write_all(b"220 test.local ESMTP ready\r\n")
                .await
                .unwrap();
            while let Ok(Some(line)) = lines.next_line().await {
                let upper = line.to_ascii_uppercase();
                let reply = if upper.starts_with("EHLO") || upper.starts_with("HELO") {
                    let auth = if script.auth.is_some() {
                        "250-AUTH PLAIN LOGIN\r\n"
                    } else {
                        ""
                    };
                    format!("250-test.local\r\n{auth}250 8BITMIME")
                } else if upper.starts_with("AUTH") {
                    received.auth.push(line.clone());
                    script.auth.unwrap_or("502 5.5.1 no AUTH here").to_string()
                } else if upper.starts_with("MAIL FROM:") {
                    received.mail_from = line[10..].to_string();
                    script.mail.to_string()
                } else if upper.starts_with("RCPT TO:") {
                    received.rcpt_to.push(line[8..].to_string());
                    "250 2.1.5 OK".to_string()
                } else if upper == "DATA" {
                    write.write_all(b"354 go ahead\r\n").await.unwrap();
                    while let Ok(Some(data_line)) = lines.next_line().await {
                        if data_line == "." {
                            break;
                        }
                        let unstuffed = data_line.strip_prefix('.').unwrap_or(&data_line);
                        received.data.extend_from_slice(unstuffed.as_bytes());
                        received.data.extend_from_slice(b"\r\n");
                    }
                    "250 2.0.0 queued".to_string()
                } else if upper == "QUIT" {
                    write.write_all(b"221 2.0.0 bye\r\n").await.unwrap();
                    break;
                } else if upper == "RSET" || upper == "NOOP" {
                    "250 OK".to_string()
                } else {
                    "502 5.5.2 unknown command".to_string()
                };
                write
                    .write_all(format!("{reply}\r\n").as_bytes())
                    .await
                    .unwrap();
            }
            received
        });
        (port, handle)
    }

    fn local(port: u16) -> SmtpSettings {
        SmtpSettings {
            host: "127.0.0.1".to_string(),
            port,
            security: Security::Plain,
            username: None,
            password: None,
            timeout: Duration::from_secs(5),
            ca_file: None,
        }
    }

    #[test]
    fn message_headers() {
        let message = lead_email();
        let headers = message.headers();
        assert_eq!(headers.get_raw("Auto-Submitted"), Some("auto-generated"));
        assert_eq!(headers.get_raw("X-Textback-Lead"), Some("42"));
        let id = headers.get_raw("Message-ID").unwrap();
        assert!(id.starts_with("<lead-42-"), "{id}");
        assert!(id.ends_with("@box.example>"), "{id}");
        assert_eq!(id.len(), "<lead-42-".len() + 16 + "@box.example>".len());
    }

    #[test]
    fn message_ids_are_stable_per_lead_and_recipient() {
        let from = mailbox("leads@box.example");
        let owner = mailbox("Owner <owner@acme.example>");
        let id = message_id(42, &from, &owner);
        assert_eq!(id, message_id(42, &from, &mailbox("OWNER@acme.example")));
        assert_ne!(id, message_id(43, &from, &owner));
        assert_ne!(id, message_id(42, &from, &mailbox("other@acme.example")));
    }

    #[test]
    fn a_reply_is_its_own_email_in_the_lead_thread() {
        let from = mailbox("textback <leads@box.example>");
        let to = mailbox("Owner <owner@acme.example>");
        let reply = crate::leads::summary::tests::dave_replied();
        let message = build_reply_message(&from, &to, &reply, now()).unwrap();
        let headers = message.headers();
        let lead = message_id(42, &from, &to);
        let id = headers.get_raw("Message-ID").unwrap();
        assert_eq!(id, reply_message_id(42, 57, &from, &to));
        assert!(id.starts_with("<lead-42-reply-57-"), "{id}");
        assert_ne!(id, lead);
        assert_ne!(id, reply_message_id(42, 58, &from, &to));
        assert_eq!(headers.get_raw("In-Reply-To"), Some(lead.as_str()));
        assert_eq!(headers.get_raw("References"), Some(lead.as_str()));
        assert_eq!(headers.get_raw("X-Textback-Lead"), Some("42"));
        assert_eq!(headers.get_raw("X-Textback-Reply"), Some("57"));
        assert_eq!(headers.get_raw("Auto-Submitted"), Some("auto-generated"));
        let raw = message.formatted();
        let parsed = mail_parser::MessageParser::default().parse(&raw).unwrap();
        assert_eq!(
            parsed.subject(),
            Some("Lead 42: Dave Smith replied again — Can you come after 3? The side gate is open")
        );
        let text = parsed.body_text(0).unwrap();
        assert!(text.contains("Can you come after 3?"), "{text}");
        assert!(
            text.contains("Transcript: https://box.example/t/abc.def"),
            "{text}"
        );
    }

    #[test]
    fn a_notice_email_has_a_message_id_from_its_key() {
        let from = mailbox("textback <leads@box.example>");
        let to = mailbox("Owner <owner@acme.example>");
        let notice = NoticeEmail {
            kind: "call_back",
            key: "notice-7@shop-1",
            subject: "Acme: call back 020 7946 0001",
            text: "call back",
            html: Some("<p>call back</p>"),
        };
        let message = build_notice_message(&from, &to, &notice, now()).unwrap();
        let headers = message.headers();
        let id = headers.get_raw("Message-ID").unwrap();
        assert!(id.starts_with("<notice-7-shop-1-"), "{id}");
        assert!(id.ends_with("@box.example>"), "{id}");
        // The same for every attempt, another for another recipient.
        let again = build_notice_message(&from, &to, &notice, now()).unwrap();
        assert_eq!(again.headers().get_raw("Message-ID").unwrap(), id);
        let other =
            build_notice_message(&from, &mailbox("office@acme.example"), &notice, now()).unwrap();
        assert_ne!(other.headers().get_raw("Message-ID").unwrap(), id);
        assert_eq!(headers.get_raw("X-Textback-Notice"), Some("call_back"));
        assert_eq!(headers.get_raw("Auto-Submitted"), Some("auto-generated"));
        // Without HTML: plain text alone.
        let plain = build_notice_message(
            &from,
            &to,
            &NoticeEmail {
                html: None,
                ..notice
            },
            now(),
        )
        .unwrap();
        let formatted = String::from_utf8_lossy(&plain.formatted()).to_string();
        assert!(!formatted.contains("multipart"), "{formatted}");
    }

    #[test]
    fn settings_debug_hides_the_password() {
        let settings = SmtpSettings {
            username: Some("user".to_string()),
            password: Some("hunter2".to_string()),
            ..local(25)
        };
        let shown = format!("{settings:?}");
        assert!(!shown.contains("hunter2"), "{shown}");
        assert_eq!(Security::Tls.default_port(), 465);
        assert_eq!(Security::StartTls.default_port(), 587);
    }

    #[tokio::test]
    async fn delivers_to_an_smtp_server() {
        let (port, server) = smtp_server(ACCEPT).await;
        send(&local(port), &lead_email()).await.unwrap();
        let received = server.await.unwrap();
        assert_eq!(received.mail_from.trim(), "<leads@box.example>");
        assert_eq!(received.rcpt_to, vec!["<Owner@Acme.example>"]);
        assert!(received.auth.is_empty());

        let parsed = mail_parser::MessageParser::default()
            .parse(&received.data)
            .expect("the message parses");
        assert_eq!(
            parsed.subject(),
            Some("New lead: Dave Smith, 07700 900123 — boiler leaking")
        );
        assert_eq!(
            parsed.header_raw("X-Textback-Lead").map(str::trim),
            Some("42")
        );
        assert_eq!(
            parsed.header_raw("Auto-Submitted").map(str::trim),
            Some("auto-generated")
        );
        assert!(parsed.message_id().unwrap().starts_with("lead-42-"));
        let text = parsed.body_text(0).unwrap();
        assert!(text.contains("Caller: Dave Smith"), "{text}");
        assert!(text.contains("Call back: tel:+447700900123"), "{text}");
        assert!(
            text.contains("Transcript: https://box.example/t/abc.def"),
            "{text}"
        );
        let html = parsed.body_html(0).unwrap();
        assert!(html.contains("<a href=\"tel:+447700900123\""), "{html}");
        assert!(html.contains("https://box.example/t/abc.def"), "{html}");
        assert!(html.contains("New lead for Acme Plumbing"), "{html}");
        let raw = String::from_utf8_lossy(&received.data);
        assert!(raw.contains("multipart/alternative"), "{raw}");
        assert!(raw.contains("text/plain"), "{raw}");
        assert!(raw.contains("text/html"), "{raw}");
    }

    #[tokio::test]
    async fn refused_password_is_permanent() {
        let script = Script {
            auth: Some("535 5.7.8 Authentication credentials invalid"),
            ..ACCEPT
        };
        let (port, server) = smtp_server(script).await;
        let settings = SmtpSettings {
            username: Some("leads@box.example".to_string()),
            password: Some("wrong".to_string()),
            ..local(port)
        };
        let error = send(&settings, &lead_email()).await.unwrap_err();
        let received = server.await.unwrap();
        assert_eq!(received.auth.len(), 1, "{received:?}");
        assert!(!error.is_transient(), "{error}");
        let reason = error.reason();
        assert!(
            reason.contains("the password for SMTP user \"leads@box.example\" was refused"),
            "{reason}"
        );
        assert!(reason.contains("notify.email.password"), "{reason}");
        assert!(!reason.contains("wrong"), "{reason}");
    }

    #[tokio::test]
    async fn try_later_is_transient_and_refusal_permanent() {
        let script = Script {
            mail: "451 4.3.0 greylisted, try again later",
            ..ACCEPT
        };
        let (port, server) = smtp_server(script).await;
        let error = send(&local(port), &lead_email()).await.unwrap_err();
        server.await.unwrap();
        assert!(error.is_transient(), "{error}");
        assert!(error.reason().contains("451"), "{error}");

        let script = Script {
            mail: "550 5.7.1 sender not allowed",
            ..ACCEPT
        };
        let (port, server) = smtp_server(script).await;
        let error = send(&local(port), &lead_email()).await.unwrap_err();
        server.await.unwrap();
        assert!(!error.is_transient(), "{error}");
        assert!(error.reason().contains("notify.email.from"), "{error}");
        assert!(error.reason().contains("sender not allowed"), "{error}");
    }

    #[tokio::test]
    async fn unreachable_server_is_transient() {
        let listener = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
        let port = listener.local_addr().unwrap().port();
        drop(listener);
        let error = send(&local(port), &lead_email()).await.unwrap_err();
        assert!(error.is_transient(), "{error}");
        assert!(error.reason().contains("notify.email.host"), "{error}");
    }

    #[test]
    fn tls_transports_build() {
        for security in [Security::Tls, Security::StartTls] {
            let settings = SmtpSettings {
                host: "smtp.example.com".to_string(),
                port: security.default_port(),
                security,
                username: Some("user".to_string()),
                password: Some("secret".to_string()),
                timeout: Duration::from_secs(5),
                ca_file: None,
            };
            assert!(transport(&settings).is_ok(), "{security:?}");
        }
    }

    #[tokio::test]
    async fn settings_are_checked() {
        let plain_remote = SmtpSettings {
            host: "smtp.example.com".to_string(),
            username: Some("user".to_string()),
            password: Some("secret".to_string()),
            ..local(25)
        };
        let error = send(&plain_remote, &lead_email()).await.unwrap_err();
        assert!(!error.is_transient());
        assert!(error.reason().contains("unencrypted"), "{error}");

        let half = SmtpSettings {
            username: Some("user".to_string()),
            ..local(25)
        };
        let error = send(&half, &lead_email()).await.unwrap_err();
        assert!(error.reason().contains("notify.email.password"), "{error}");

        let empty = SmtpSettings {
            host: " ".to_string(),
            ..local(25)
        };
        let error = send(&empty, &lead_email()).await.unwrap_err();
        assert!(error.reason().contains("notify.email.host"), "{error}");
        assert!(is_loopback("localhost"));
        assert!(is_loopback("::1"));
        assert!(is_loopback("[::1]"));
        assert!(!is_loopback("10.0.0.1"));
    }
}
