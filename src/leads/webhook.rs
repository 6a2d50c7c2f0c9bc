//! Delivering a lead to a webhook: an HTTP POST of the lead's JSON
//! ([`crate::leads::summary::LeadSummary::json`]), signed so the receiver can tell it came from
//! this box.
//!
//! # Request
//!
//! ```text
//! POST <profile.recipient.webhook>
//! Content-Type: application/json
//! User-Agent: textback/<version>
//! X-Textback-Timestamp: 1750000000
//! X-Textback-Signature: v1=5d41402abc4b2a76b9719d911017c592...
//! Idempotency-Key: lead-42-dave-smith-1a2b3c4d@shop-1
//!
//! {"answers":[...],"box":"shop-1","caller":{...},"event":"lead","lead_id":42,...}
//! ```
//!
//! - `X-Textback-Timestamp`: when the request was made, in Unix seconds.
//! - `X-Textback-Signature`: `v1=` and the lower-case hex HMAC-SHA256, keyed with the recipient's
//!   webhook secret, of the timestamp, a '.', and the body bytes exactly as sent:
//!   `hex(hmac_sha256(secret, "{timestamp}.{body}"))`. Only sent when a secret is configured.
//!   A receiver recomputes it over the raw body (before parsing the JSON), compares in constant
//!   time (see [`verify`]), and should refuse a timestamp more than 5 minutes from its clock so
//!   a captured request cannot be replayed later.
//! - `Idempotency-Key`: `lead-<lead id>-<recipient slug>@<box>` ([`idempotency_key`]); the same
//!   for every retry of one lead to one recipient, so a receiver that saw it already can answer
//!   2xx and drop the duplicate. A retry happens whenever the outcome was unknown (a timeout
//!   after the request was sent, a 5xx). A reply after the lead has its own,
//!   `lead-<lead id>-reply-<reply id>-<recipient slug>@<box>` ([`reply_idempotency_key`]). Lead
//!   ids are counted by each box, so the box's name (`box.name`) is part of the key: leads
//!   from several boxes into one CRM never share one.
//!
//! # Answers
//!
//! Any 2xx is delivered. 408, 429 and 5xx are retried later with back-off, as are timeouts and
//! network errors. Redirects are not followed (a redirected POST may be replayed as a GET): a 3xx
//! is reported as permanent with where it pointed, so the configured URL can be corrected. Other
//! 4xx are permanent.
//!
//! # Body
//!
//! `event` tells what the POST is about, and `box` which box sent it (`box.name`, by default
//! the host name): with several boxes sending to one webhook (one CRM for a fleet), `box` and
//! `lead_id` together name a lead.
//!
//! A lead, `"event": "lead"`: `lead_id` (integer), `profile` (string), `caller` {`number`
//! (E.164), `national` (UK national form, or E.164 for foreign numbers), `name` (string or
//! null)}, `missed_at` (RFC 3339 UTC), `called_number` (E.164 or null), `reason` (string or
//! null), `answers` [{`question`, `answer`}] in the order asked, `complete` (bool), `urgent`
//! (bool), `transcript_url` (string).
//!
//! A text the caller sent after the lead went out, `"event": "lead.reply"`: `lead_id`,
//! `profile`, `caller` as above, `reply` {`id` (integer, the same for every retry), `text`
//! (string, as the caller sent it), `received_at` (RFC 3339 UTC)}, `transcript_url`.
//!
//! New fields and events may be added; existing ones keep their names and types.

use std::time::Duration;

use hmac::{Hmac, KeyInit, Mac};
use reqwest::StatusCode;
use reqwest::header::{CONTENT_TYPE, LOCATION, RETRY_AFTER};
use serde_json::Value;
use sha2::{Digest, Sha256};

use super::{DeliveryError, hex, http_request_error, read_body_limited, shown_answer, shown_url};

pub const TIMESTAMP_HEADER: &str = "X-Textback-Timestamp";
pub const SIGNATURE_HEADER: &str = "X-Textback-Signature";
pub const IDEMPOTENCY_HEADER: &str = "Idempotency-Key";
/// Signature scheme prefix in [`SIGNATURE_HEADER`].
const SCHEME: &str = "v1=";
/// Config key of the webhook URL, for error messages.
const URL_KEY: &str = "profile.recipient.webhook";
/// Config key of the webhook secret, for error messages.
const SECRET_KEY: &str = "profile.recipient.webhook_secret";
/// How much of an error answer is read.
const MAX_ERROR_BODY: usize = 4096;
/// Longest readable part of a recipient slug.
const MAX_SLUG_CHARS: usize = 32;

type HmacSha256 = Hmac<Sha256>;

/// The signature header value for a body sent at `timestamp`:
/// `v1=<hex hmac_sha256(secret, "{timestamp}.{body}")>`.
pub fn sign(secret: &[u8], timestamp: i64, body: &[u8]) -> String {
    match mac(secret, timestamp, body) {
        Some(mac) => format!("{SCHEME}{}", hex(&mac.finalize().into_bytes())),
        // Not reached: HMAC takes keys of any length.
        None => format!("{SCHEME}{}", "0".repeat(64)),
    }
}

/// For receivers and tests: true if `header` (the [`SIGNATURE_HEADER`] value) holds a `v1=`
/// signature of `body` at `timestamp` with `secret`. Several comma-separated signatures are
/// accepted (one per secret while a secret is being changed). Compares in constant time. Does
/// not check the timestamp's age: refuse one more than 5 minutes from your clock.
pub fn verify(secret: &[u8], header: &str, timestamp: i64, body: &[u8]) -> bool {
    header.split(',').any(|part| {
        let Some(hex_signature) = part.trim().strip_prefix(SCHEME) else {
            return false;
        };
        let Some(signature) = unhex(hex_signature) else {
            return false;
        };
        mac(secret, timestamp, body).is_some_and(|mac| mac.verify_slice(&signature).is_ok())
    })
}

/// `lead-<lead_id>-<slug>@<box>`: the slug is the recipient's name in lower-case ASCII letters and
/// digits joined by '-' (at most 32 characters), then '-' and 8 hex digits of the SHA-256 of the
/// exact name, so that two names with the same letters ("Zoë", "Zoé") still differ; `box` is the
/// box's name (`box.name`), since each box counts its own leads. Stable: the same lead,
/// recipient and box always give the same key.
pub fn idempotency_key(lead_id: i64, recipient: &str, box_name: &str) -> String {
    format!("lead-{lead_id}-{}@{box_name}", recipient_slug(recipient))
}

/// `lead-<lead_id>-reply-<reply_id>-<slug>@<box>`, the slug as in [`idempotency_key`]: one key
/// per reply and recipient, never the lead's.
pub fn reply_idempotency_key(
    lead_id: i64,
    reply_id: i64,
    recipient: &str,
    box_name: &str,
) -> String {
    format!(
        "lead-{lead_id}-reply-{reply_id}-{}@{box_name}",
        recipient_slug(recipient)
    )
}

/// The body as sent: a notice's JSON ([`crate::leads::summary::LeadSummary::json`],
/// [`crate::leads::summary::ReplySummary::json`]) with `box`, the sending box's name.
pub fn body(mut notice: Value, box_name: &str) -> Value {
    if let Value::Object(fields) = &mut notice {
        fields.insert("box".to_string(), Value::String(box_name.to_string()));
    }
    notice
}

/// `lead-<lead_id>-state-<event_id>-<slug>@<box>`: one key per state change and recipient.
pub fn state_idempotency_key(
    lead_id: i64,
    event_id: i64,
    recipient: &str,
    box_name: &str,
) -> String {
    format!(
        "lead-{lead_id}-state-{event_id}-{}@{box_name}",
        recipient_slug(recipient)
    )
}

/// The recipient's name as `<letters and digits>-<8 hex digits>`, or the hex digits alone.
fn recipient_slug(recipient: &str) -> String {
    let mut slug = String::new();
    for character in recipient.chars() {
        if character.is_ascii_alphanumeric() {
            if slug.len() == MAX_SLUG_CHARS {
                break;
            }
            slug.push(character.to_ascii_lowercase());
        } else if !slug.is_empty() && !slug.ends_with('-') && slug.len() < MAX_SLUG_CHARS {
            slug.push('-');
        }
    }
    let slug = slug.trim_end_matches('-');
    let digest = Sha256::digest(recipient.as_bytes());
    let tag = hex(digest.get(..4).unwrap_or_default());
    if slug.is_empty() {
        tag
    } else {
        format!("{slug}-{tag}")
    }
}

/// POSTs `body` to `url`, signed with `secret` when given, with the idempotency key and the
/// timestamp now; the whole request, answer included, must finish within `timeout`. Use a
/// client from [`crate::leads::http_client`] (it does not follow redirects).
pub async fn send(
    client: &reqwest::Client,
    url: &str,
    secret: Option<&[u8]>,
    idempotency_key: &str,
    body: &Value,
    timeout: Duration,
) -> Result<(), DeliveryError> {
    let what = format!("the webhook {}", shown_url(url));
    let bytes = serde_json::to_vec(body).map_err(|error| {
        DeliveryError::permanent(format!(
            "could not write the lead as JSON for {what}: {error}"
        ))
    })?;
    let timestamp = chrono::Utc::now().timestamp();
    let mut request = client
        .post(url)
        .timeout(timeout)
        .header(CONTENT_TYPE, "application/json")
        .header(reqwest::header::USER_AGENT, super::USER_AGENT)
        .header(TIMESTAMP_HEADER, timestamp.to_string())
        .header(IDEMPOTENCY_HEADER, idempotency_key);
    if let Some(secret) = secret {
        request = request.header(SIGNATURE_HEADER, sign(secret, timestamp, &bytes));
    }
    let response = request
        .body(bytes)
        .send()
        .await
        .map_err(|error| http_request_error(&error, &what, URL_KEY))?;
    let status = response.status();
    if status.is_success() {
        return Ok(());
    }
    let location = header_text(&response, LOCATION);
    let retry_after = header_text(&response, RETRY_AFTER);
    let answer = shown_answer(&read_body_limited(response, MAX_ERROR_BODY).await);
    Err(status_error(
        status,
        &what,
        &answer,
        location.as_deref(),
        retry_after.as_deref(),
        secret.is_some(),
    ))
}

fn header_text(response: &reqwest::Response, name: reqwest::header::HeaderName) -> Option<String> {
    response
        .headers()
        .get(name)
        .and_then(|value| value.to_str().ok())
        .map(|value| shown_answer(value.as_bytes()))
}

/// What a non-2xx answer means for delivery.
fn status_error(
    status: StatusCode,
    what: &str,
    answer: &str,
    location: Option<&str>,
    retry_after: Option<&str>,
    signed: bool,
) -> DeliveryError {
    let said = if answer.is_empty() {
        String::new()
    } else {
        format!(": {answer}")
    };
    let code = status.as_u16();
    if code == 408 || code == 429 || status.is_server_error() {
        let wait = retry_after
            .map(|value| format!(" (it asked to wait {value}s)"))
            .unwrap_or_default();
        return DeliveryError::transient(format!(
            "{what} answered HTTP {status}{said}; will try again{wait}"
        ));
    }
    if status.is_redirection() {
        let target = location
            .map(shown_url)
            .unwrap_or_else(|| "elsewhere".to_string());
        return DeliveryError::permanent(format!(
            "{what} answered HTTP {status}, a redirect to {target}: set {URL_KEY} to the \
             address the lead should be posted to"
        ));
    }
    let advice = match code {
        401 | 403 if signed => format!(
            "check that {SECRET_KEY} is the secret the receiver expects, and that the receiver \
             accepts requests from this box"
        ),
        401 | 403 => format!(
            "the receiver refused the request: if it expects a signature, set {SECRET_KEY} to \
             its secret"
        ),
        404 | 405 | 410 => format!("check {URL_KEY}: the receiver has no webhook at that address"),
        _ => format!("check {URL_KEY} and what the receiver expects"),
    };
    DeliveryError::permanent(format!(
        "{what} refused the lead with HTTP {status}{said}; {advice}"
    ))
}

fn mac(secret: &[u8], timestamp: i64, body: &[u8]) -> Option<HmacSha256> {
    let mut mac = HmacSha256::new_from_slice(secret).ok()?;
    mac.update(timestamp.to_string().as_bytes());
    mac.update(b".");
    mac.update(body);
    Some(mac)
}

fn unhex(text: &str) -> Option<Vec<u8>> {
    if !text.len().is_multiple_of(2) {
        return None;
    }
    text.as_bytes()
        .chunks(2)
        .map(|pair| {
            let high = char::from(*pair.first()?).to_digit(16)?;
            let low = char::from(*pair.get(1)?).to_digit(16)?;
            u8::try_from(high * 16 + low).ok()
        })
        .collect()
}

#[cfg(test)]
mod tests {
    use std::time::Duration;

    use super::*;
    use crate::leads::http_client;
    use crate::leads::summary::tests::dave;
    use crate::leads::test_http::{Reply, serve_once};

    const SECRET: &[u8] = b"whsec_test_secret";

    #[test]
    fn signature_known_answer() {
        // RFC 4231 test case 2: key "Jefe", data "what do ya want for nothing?".
        let expected = "5bdcc146bf60754e6a042426089575c75a003f089d2739839dec58b964ec3843";
        let mut mac = HmacSha256::new_from_slice(b"Jefe").unwrap();
        mac.update(b"what do ya want for nothing?");
        assert_eq!(hex(&mac.finalize().into_bytes()), expected);
        // Ours signs "{timestamp}.{body}".
        let mut mac = HmacSha256::new_from_slice(SECRET).unwrap();
        mac.update(b"1750000000.{\"a\":1}");
        assert_eq!(
            sign(SECRET, 1_750_000_000, b"{\"a\":1}"),
            format!("v1={}", hex(&mac.finalize().into_bytes()))
        );
    }

    #[test]
    fn verify_signatures() {
        let body = br#"{"lead_id":42}"#;
        let header = sign(SECRET, 1_750_000_000, body);
        assert!(header.starts_with("v1="));
        assert_eq!(header.len(), 3 + 64);
        assert!(verify(SECRET, &header, 1_750_000_000, body));
        assert!(!verify(SECRET, &header, 1_750_000_001, body));
        assert!(!verify(
            SECRET,
            &header,
            1_750_000_000,
            br#"{"lead_id":43}"#
        ));
        assert!(!verify(b"other", &header, 1_750_000_000, body));
        assert!(verify(
            SECRET,
            &format!("v1=00, {header}"),
            1_750_000_000,
            body
        ));
        assert!(verify(
            SECRET,
            &header.to_uppercase().replace("V1=", "v1="),
            1_750_000_000,
            body
        ));
        for bad in ["", "v1=", "v1=zz", "v1=abc", "v0=00", &header[3..], "v1=é"] {
            assert!(!verify(SECRET, bad, 1_750_000_000, body), "{bad:?}");
        }
    }

    #[test]
    fn idempotency_keys() {
        let key = idempotency_key(42, "Dave Smith", "shop-1");
        assert!(key.starts_with("lead-42-dave-smith-"), "{key}");
        assert!(key.ends_with("@shop-1"), "{key}");
        assert_eq!(key.len(), "lead-42-dave-smith-".len() + 8 + "@shop-1".len());
        assert_eq!(key, idempotency_key(42, "Dave Smith", "shop-1"));
        assert_ne!(key, idempotency_key(43, "Dave Smith", "shop-1"));
        // Each box counts its own leads: lead 42 of another box is another lead.
        assert_ne!(key, idempotency_key(42, "Dave Smith", "shop-2"));
        assert_ne!(
            idempotency_key(1, "Zoë", "b"),
            idempotency_key(1, "Zoé", "b")
        );
        assert!(idempotency_key(1, "  --  ", "b").starts_with("lead-1-"));
        assert_eq!(
            idempotency_key(1, "東京", "b").len(),
            "lead-1-".len() + 8 + "@b".len()
        );
        let long = idempotency_key(1, &"word ".repeat(50), "b");
        assert!(
            long.len() <= "lead-1-".len() + 32 + 9 + "@b".len(),
            "{long}"
        );
        assert!(!long.contains("--"));
        let reply = reply_idempotency_key(42, 57, "Dave Smith", "shop-1");
        assert_eq!(
            reply,
            key.replace("lead-42-", "lead-42-reply-57-"),
            "the lead's key with the reply in it"
        );
        assert_ne!(reply, reply_idempotency_key(42, 58, "Dave Smith", "shop-1"));
        assert_ne!(reply, reply_idempotency_key(42, 57, "Owner", "shop-1"));
        assert_ne!(reply, reply_idempotency_key(42, 57, "Dave Smith", "shop-2"));
        for key in [long, idempotency_key(7, "Ops / On-call (24h)", "b"), reply] {
            let (slug, box_name) = key.split_once('@').expect("the box after '@'");
            assert!(
                slug.chars()
                    .all(|c| c.is_ascii_lowercase() || c.is_ascii_digit() || c == '-'),
                "{key}"
            );
            assert!(!box_name.is_empty(), "{key}");
        }
    }

    #[test]
    fn the_body_names_the_box_that_sent_it() {
        let body = body(dave().json(), "shop-1");
        assert_eq!(body["box"], "shop-1");
        assert_eq!(body["event"], "lead");
        assert_eq!(body["lead_id"], 42);
    }

    #[tokio::test]
    async fn posts_signed_json() {
        let (base, request) = serve_once(Reply::json(204, "")).await;
        let client = http_client(Duration::from_secs(5)).unwrap();
        let body = dave().json();
        let key = idempotency_key(42, "Dave Smith", "shop-1");
        let url = format!("{base}/hooks/lead?x=1");
        send(
            &client,
            &url,
            Some(SECRET),
            &key,
            &body,
            Duration::from_secs(5),
        )
        .await
        .unwrap();
        let request = request.await.unwrap();
        assert_eq!(request.method, "POST");
        assert_eq!(request.path, "/hooks/lead?x=1");
        assert_eq!(request.header("content-type"), Some("application/json"));
        assert_eq!(request.header(IDEMPOTENCY_HEADER), Some(key.as_str()));
        let user_agent = request.header("user-agent").unwrap();
        assert!(user_agent.starts_with("textback/"), "{user_agent}");
        let timestamp: i64 = request.header(TIMESTAMP_HEADER).unwrap().parse().unwrap();
        assert!((chrono::Utc::now().timestamp() - timestamp).abs() < 60);
        let signature = request.header(SIGNATURE_HEADER).unwrap();
        assert!(verify(SECRET, signature, timestamp, &request.body));
        assert!(!verify(b"wrong", signature, timestamp, &request.body));
        let received: Value = serde_json::from_slice(&request.body).unwrap();
        assert_eq!(received, body);
    }

    #[tokio::test]
    async fn unsigned_without_a_secret() {
        let (base, request) = serve_once(Reply::json(200, "{}")).await;
        let client = http_client(Duration::from_secs(5)).unwrap();
        send(
            &client,
            &base,
            None,
            "lead-1-x",
            &dave().json(),
            Duration::from_secs(5),
        )
        .await
        .unwrap();
        let request = request.await.unwrap();
        assert_eq!(request.header(SIGNATURE_HEADER), None);
        assert!(request.header(TIMESTAMP_HEADER).is_some());
        assert_eq!(request.path, "/");
    }

    async fn answer_to(reply: Reply, secret: Option<&[u8]>) -> DeliveryError {
        let (base, request) = serve_once(reply).await;
        let client = http_client(Duration::from_secs(5)).unwrap();
        let error = send(
            &client,
            &base,
            secret,
            "lead-1-x",
            &dave().json(),
            Duration::from_secs(5),
        )
        .await
        .unwrap_err();
        request.await.unwrap();
        error
    }

    #[tokio::test]
    async fn server_errors_are_transient() {
        for status in [500, 502, 503, 408, 429] {
            let error = answer_to(Reply::json(status, "busy"), Some(SECRET)).await;
            assert!(error.is_transient(), "{status}: {error}");
            assert!(error.reason().contains(&status.to_string()), "{error}");
            assert!(error.reason().contains("busy"), "{error}");
        }
    }

    #[tokio::test]
    async fn client_errors_are_permanent() {
        let error = answer_to(
            Reply::json(401, "{\"error\":\"bad signature\"}"),
            Some(SECRET),
        )
        .await;
        assert!(!error.is_transient());
        assert!(
            error.reason().contains("profile.recipient.webhook_secret"),
            "{error}"
        );
        assert!(error.reason().contains("bad signature"), "{error}");
        let error = answer_to(Reply::json(404, ""), None).await;
        assert!(!error.is_transient());
        assert!(
            error.reason().contains("profile.recipient.webhook"),
            "{error}"
        );
        assert!(error.reason().contains("404"), "{error}");
    }

    #[tokio::test]
    async fn redirects_are_not_followed() {
        let (base, request) = serve_once(Reply::json(301, "")).await;
        let client = http_client(Duration::from_secs(5)).unwrap();
        let error = send(
            &client,
            &base,
            None,
            "k",
            &dave().json(),
            Duration::from_secs(5),
        )
        .await
        .unwrap_err();
        request.await.unwrap();
        assert!(!error.is_transient());
        assert!(error.reason().contains("redirect"), "{error}");
    }

    #[tokio::test]
    async fn timeouts_and_refused_connections_are_transient() {
        let reply = Reply {
            delay: Duration::from_secs(3),
            ..Reply::json(200, "{}")
        };
        let (base, _request) = serve_once(reply).await;
        let client = http_client(Duration::from_secs(5)).unwrap();
        let error = send(
            &client,
            &base,
            None,
            "k",
            &dave().json(),
            Duration::from_millis(200),
        )
        .await
        .unwrap_err();
        assert!(error.is_transient(), "{error}");
        assert!(error.reason().contains("did not answer in time"), "{error}");

        // A port nobody listens on: bind, note the port, close.
        let listener = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
        let port = listener.local_addr().unwrap().port();
        drop(listener);
        let error = send(
            &client,
            &format!("http://127.0.0.1:{port}/"),
            None,
            "k",
            &dave().json(),
            Duration::from_secs(5),
        )
        .await
        .unwrap_err();
        assert!(error.is_transient(), "{error}");
        assert!(error.reason().contains("could not connect"), "{error}");
    }

    #[tokio::test]
    async fn bad_urls_are_permanent() {
        let client = http_client(Duration::from_secs(5)).unwrap();
        let error = send(
            &client,
            "not a url",
            None,
            "k",
            &dave().json(),
            Duration::from_secs(1),
        )
        .await
        .unwrap_err();
        assert!(!error.is_transient(), "{error}");
        assert!(
            error.reason().contains("profile.recipient.webhook"),
            "{error}"
        );
    }
}
