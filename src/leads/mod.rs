//! Telling a business about a lead: what the message says ([`summary`]), the signed link to the
//! lead's transcript ([`token`]), and the channels that carry it: [`email`] (SMTP), [`whatsapp`]
//! (Meta's WhatsApp Business Cloud API) and [`webhook`] (a signed JSON POST). SMS to the owner
//! goes through the outbox like any other text, with [`summary::LeadSummary::sms`] as its body.
//!
//! Every send returns a [`DeliveryError`] that says whether trying again later can help
//! ([`DeliveryError::Transient`]) or a person has to change something first
//! ([`DeliveryError::Permanent`]), and its message names the configuration key to look at.

pub mod deliver;
pub mod email;
pub mod summary;
pub mod token;
pub mod webhook;
pub mod whatsapp;

use std::time::Duration;

use thiserror::Error;

/// `User-Agent` of every HTTP request the lead channels make: "textback/<version>".
pub const USER_AGENT: &str = concat!("textback/", env!("CARGO_PKG_VERSION"));

/// Longest part of a server's answer kept in an error message.
const MAX_ANSWER_SHOWN: usize = 300;

/// Why a lead was not delivered on one channel.
#[derive(Debug, Clone, PartialEq, Eq, Error)]
pub enum DeliveryError {
    /// Worth trying again later with back-off: the network, a timeout, a server error (HTTP 5xx,
    /// SMTP 4xx), a rate limit (HTTP 429) or a request timeout (HTTP 408).
    #[error("{reason}")]
    Transient { reason: String },
    /// Trying again will fail the same way until a person changes something (a password, a
    /// token, an address, a template): HTTP 4xx other than 408 and 429, SMTP 5xx, a refused
    /// login, an address that is not one.
    #[error("{reason}")]
    Permanent { reason: String },
}

impl DeliveryError {
    pub fn transient(reason: impl Into<String>) -> DeliveryError {
        DeliveryError::Transient {
            reason: reason.into(),
        }
    }

    pub fn permanent(reason: impl Into<String>) -> DeliveryError {
        DeliveryError::Permanent {
            reason: reason.into(),
        }
    }

    /// True when the caller should try again later.
    pub fn is_transient(&self) -> bool {
        matches!(self, DeliveryError::Transient { .. })
    }

    /// The message, for `lead_deliveries.last_error` and the log.
    pub fn reason(&self) -> &str {
        match self {
            DeliveryError::Transient { reason } | DeliveryError::Permanent { reason } => reason,
        }
    }
}

/// The HTTP client for webhooks and WhatsApp: rustls with the Mozilla roots compiled in, the
/// textback `User-Agent`, a connect timeout, and no redirects (a redirected POST would be
/// replayed as a GET, so a redirect is reported instead; see [`webhook::send`]).
pub fn http_client(connect_timeout: Duration) -> Result<reqwest::Client, DeliveryError> {
    reqwest::Client::builder()
        .user_agent(USER_AGENT)
        .connect_timeout(connect_timeout)
        .redirect(reqwest::redirect::Policy::none())
        .build()
        .map_err(|error| {
            DeliveryError::permanent(format!(
                "could not set up the HTTP client for lead notifications: {error}"
            ))
        })
}

/// A URL as it may be shown in logs: no user name, password, query or fragment, which is where
/// secrets hide in URLs.
pub(crate) fn shown_url(url: &str) -> String {
    match reqwest::Url::parse(url) {
        Ok(mut parsed) => {
            let _ = parsed.set_username("");
            let _ = parsed.set_password(None);
            parsed.set_query(None);
            parsed.set_fragment(None);
            parsed.to_string()
        }
        Err(_) => shorten(url.split(['?', '#']).next().unwrap_or(url), 80),
    }
}

/// Maps an error reqwest raised before any HTTP status came back. `what` names the request
/// ("the webhook https://…"), `key` the config key holding its address.
pub(crate) fn http_request_error(error: &reqwest::Error, what: &str, key: &str) -> DeliveryError {
    if error.is_builder() {
        return DeliveryError::permanent(format!(
            "{what}: the address cannot be used ({error}); check {key}"
        ));
    }
    if error.is_timeout() {
        return DeliveryError::transient(format!(
            "{what} did not answer in time; will try again (if it keeps happening, check that \
             {key} is right and the server is up)"
        ));
    }
    if error.is_connect() {
        return DeliveryError::transient(format!(
            "could not connect to {what} ({}); will try again (check {key} and this box's \
             internet connection)",
            root_cause(error)
        ));
    }
    DeliveryError::transient(format!(
        "{what} failed before an answer came back ({}); will try again",
        root_cause(error)
    ))
}

/// The innermost error's message: reqwest's own Display hides why a connection failed.
fn root_cause(error: &(dyn std::error::Error + 'static)) -> String {
    let mut cause = error;
    while let Some(source) = cause.source() {
        cause = source;
    }
    shorten(&cause.to_string(), MAX_ANSWER_SHOWN)
}

/// Reads at most `limit` bytes of a response body, for error messages and small JSON answers.
pub(crate) async fn read_body_limited(mut response: reqwest::Response, limit: usize) -> Vec<u8> {
    let mut body = Vec::new();
    while let Ok(Some(chunk)) = response.chunk().await {
        let room = limit.saturating_sub(body.len());
        body.extend_from_slice(chunk.get(..room.min(chunk.len())).unwrap_or(&[]));
        if body.len() >= limit {
            break;
        }
    }
    body
}

/// A server's answer as it may be shown in an error message: one line, control characters
/// replaced, at most [`MAX_ANSWER_SHOWN`] characters.
pub(crate) fn shown_answer(body: &[u8]) -> String {
    let text = String::from_utf8_lossy(body);
    let one_line: String = text
        .chars()
        .map(|character| {
            if character.is_control() {
                ' '
            } else {
                character
            }
        })
        .collect();
    shorten(
        &one_line.split_whitespace().collect::<Vec<_>>().join(" "),
        MAX_ANSWER_SHOWN,
    )
}

/// At most `max` characters, the last of them '…' when cut.
pub(crate) fn shorten(text: &str, max: usize) -> String {
    if text.chars().count() <= max {
        return text.to_string();
    }
    let mut short: String = text.chars().take(max.saturating_sub(1)).collect();
    short.push('…');
    short
}

/// Lower-case hex of some bytes.
pub(crate) fn hex(bytes: &[u8]) -> String {
    use std::fmt::Write;
    let mut out = String::with_capacity(bytes.len() * 2);
    for byte in bytes {
        // Writing to a String cannot fail.
        let _ = write!(out, "{byte:02x}");
    }
    out
}

#[cfg(test)]
pub(crate) mod test_http {
    //! A one-request HTTP/1.1 server on 127.0.0.1 for the webhook and WhatsApp tests.

    use std::collections::HashMap;
    use std::time::Duration;

    use tokio::io::{AsyncReadExt, AsyncWriteExt};
    use tokio::net::TcpListener;
    use tokio::task::JoinHandle;

    /// What the server received.
    #[derive(Debug)]
    pub struct Request {
        pub method: String,
        pub path: String,
        /// Header names in lower case.
        pub headers: HashMap<String, String>,
        pub body: Vec<u8>,
    }

    impl Request {
        pub fn header(&self, name: &str) -> Option<&str> {
            self.headers
                .get(&name.to_ascii_lowercase())
                .map(String::as_str)
        }
    }

    /// What the server answers.
    pub struct Reply {
        pub status: u16,
        pub content_type: &'static str,
        pub body: String,
        /// Wait this long before answering (for timeout tests).
        pub delay: Duration,
    }

    impl Reply {
        pub fn json(status: u16, body: &str) -> Reply {
            Reply {
                status,
                content_type: "application/json",
                body: body.to_string(),
                delay: Duration::ZERO,
            }
        }
    }

    /// Serves one request with `reply`; returns the base URL ("http://127.0.0.1:port") and a
    /// handle that yields the request.
    pub async fn serve_once(reply: Reply) -> (String, JoinHandle<Request>) {
        let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
        let address = listener.local_addr().unwrap();
        let handle = tokio::spawn(async move {
            let (mut stream, _) = listener.accept().await.unwrap();
            let mut buffer = Vec::new();
            let mut chunk = [0u8; 4096];
            let head_end = loop {
                let read = stream.read(&mut chunk).await.unwrap();
                assert!(read > 0, "connection closed before the request head ended");
                buffer.extend_from_slice(&chunk[..read]);
                if let Some(position) = buffer.windows(4).position(|window| window == b"\r\n\r\n") {
                    break position;
                }
            };
            let head = String::from_utf8(buffer[..head_end].to_vec()).unwrap();
            let mut lines = head.split("\r\n");
            let request_line = lines.next().unwrap();
            let mut words = request_line.split(' ');
            let method = words.next().unwrap().to_string();
            let path = words.next().unwrap().to_string();
            let headers: HashMap<String, String> = lines
                .map(|line| {
                    let (name, value) = line.split_once(':').unwrap();
                    (name.trim().to_ascii_lowercase(), value.trim().to_string())
                })
                .collect();
            let length: usize = headers
                .get("content-length")
                .map_or(0, |value| value.parse().unwrap());
            let mut body = buffer[head_end + 4..].to_vec();
            while body.len() < length {
                let read = stream.read(&mut chunk).await.unwrap();
                assert!(read > 0, "connection closed before the body ended");
                body.extend_from_slice(&chunk[..read]);
            }
            tokio::time::sleep(reply.delay).await;
            let response = format!(
                "HTTP/1.1 {} Test\r\nContent-Type: {}\r\nContent-Length: {}\r\n\
                 Connection: close\r\n\r\n{}",
                reply.status,
                reply.content_type,
                reply.body.len(),
                reply.body
            );
            // The client may have given up already (timeout tests).
            let _ = stream.write_all(response.as_bytes()).await;
            let _ = stream.shutdown().await;
            Request {
                method,
                path,
                headers,
                body,
            }
        });
        (format!("http://{address}"), handle)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn error_kinds() {
        let transient = DeliveryError::transient("later");
        assert!(transient.is_transient());
        assert_eq!(transient.reason(), "later");
        assert_eq!(transient.to_string(), "later");
        let permanent = DeliveryError::permanent("never");
        assert!(!permanent.is_transient());
        assert_eq!(permanent.reason(), "never");
    }

    #[test]
    fn urls_are_shown_without_secrets() {
        assert_eq!(
            shown_url("https://user:pass@hooks.example.com/in?token=abc#x"),
            "https://hooks.example.com/in"
        );
        assert_eq!(shown_url("not a url?secret=1"), "not a url");
    }

    #[test]
    fn answers_are_shown_on_one_line() {
        assert_eq!(shown_answer(b"bad\r\n  request\t!"), "bad request !");
        assert_eq!(shown_answer(&[0xFF, b'a']), "\u{FFFD}a");
        assert_eq!(
            shown_answer("x".repeat(1000).as_bytes()).chars().count(),
            300
        );
    }

    #[test]
    fn shorten_cuts_at_a_character() {
        assert_eq!(shorten("héllo", 10), "héllo");
        assert_eq!(shorten("héllo wörld", 5), "héll…");
        assert_eq!(shorten("ab", 0), "…");
    }

    #[test]
    fn hex_digits() {
        assert_eq!(hex(&[0x00, 0x0F, 0xA5, 0xFF]), "000fa5ff");
    }

    #[test]
    fn client_builds() {
        assert!(http_client(Duration::from_secs(5)).is_ok());
    }
}
