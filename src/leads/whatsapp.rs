//! Delivering a lead by WhatsApp through Meta's WhatsApp Business Cloud API (Graph API).
//!
//! One request: `POST {base_url}/{api_version}/{phone_number_id}/messages` with
//! `Authorization: Bearer {token}` and a JSON body. The recipient (`to`) is the number's digits
//! with the country code and no '+' ("447700900123").
//!
//! WhatsApp accepts free text only within 24 hours of the recipient's last message to the
//! business number (the customer service window); any other time it takes only a message
//! template approved in WhatsApp Manager. A lead is sent as the template named by
//! `notify.whatsapp.template`, whose body must have exactly four text variables, filled by
//! [`template_parameters`]:
//!
//! | variable | value | example |
//! |----------|-------|---------|
//! | `{{1}}` | the caller's name, or "Unknown caller" | Dave Smith |
//! | `{{2}}` | the caller's number, UK national form | 07700 900123 |
//! | `{{3}}` | why they called, or "not given" | boiler leaking |
//! | `{{4}}` | the transcript link | https://box.example/t/… |
//!
//! for example (category Utility): "New lead from {{1}} ({{2}}): {{3}}. Transcript: {{4}}".
//! WhatsApp refuses a variable containing a new line, a tab or more than 4 spaces in a row, so
//! each is flattened to one line ([`sanitize_parameter`]).
//!
//! A reply the caller sent after the lead goes as the same template, so that it arrives outside
//! the 24-hour window too, with `{{3}}` saying it is a reply and what it says ("replied again
//! about lead 42: can you come after 3?"; [`reply_template_parameters`]); without a template, as
//! free text.
//!
//! A success answer is `{"messaging_product":"whatsapp","contacts":[{"input":"447700900123",
//! "wa_id":"447700900123"}],"messages":[{"id":"wamid.…"}]}`; [`send`] returns the `wamid`. An
//! error answer is `{"error":{"message":"(#131047) Re-engagement message","type":
//! "OAuthException","code":131047,"error_data":{"messaging_product":"whatsapp","details":"…"},
//! "error_subcode":…,"fbtrace_id":"…"}}`; Meta advises acting on `code` (and `details`), not on
//! the HTTP status or the message text, so [`send`] maps `code` to transient (rate limits, Meta's
//! own outages) or permanent (token, permissions, template, recipient), falling back on the HTTP
//! status for codes it does not know.

use std::fmt;
use std::time::Duration;

use chrono::{DateTime, Utc};
use serde::Deserialize;
use serde_json::{Value, json};

use super::summary::{LeadSummary, ReplySummary};
use super::{DeliveryError, http_request_error, read_body_limited, shorten, shown_answer};
use crate::codec::phone::E164;

/// Meta's Graph API.
pub const DEFAULT_BASE_URL: &str = "https://graph.facebook.com";
/// A Graph API version; Meta keeps each for about two years.
pub const DEFAULT_API_VERSION: &str = "v23.0";
/// Template language code, as registered with the template.
pub const DEFAULT_LANGUAGE: &str = "en_GB";
/// Variables the lead template's body must have.
pub const TEMPLATE_PARAMETERS: usize = 4;
/// Longest template variable sent, in characters.
const MAX_PARAMETER_CHARS: usize = 300;
/// Longest free text body WhatsApp accepts, in characters.
const MAX_TEXT_CHARS: usize = 4096;
/// How much of an answer is read.
const MAX_ANSWER_BYTES: usize = 16 * 1024;

/// The `[notify.whatsapp]` settings.
#[derive(Clone)]
pub struct WhatsAppSettings {
    /// `notify.whatsapp.base_url`, normally [`DEFAULT_BASE_URL`].
    pub base_url: String,
    /// `notify.whatsapp.api_version`, such as "v23.0".
    pub api_version: String,
    /// `notify.whatsapp.phone_number_id`: the Phone number ID (digits) that WhatsApp Manager
    /// shows for the sending number, not the number itself.
    pub phone_number_id: String,
    /// `notify.whatsapp.token`: a System User access token with the
    /// whatsapp_business_messaging permission.
    pub token: String,
    /// `notify.whatsapp.template`: the approved template's name.
    pub template: Option<String>,
    /// `notify.whatsapp.language`: the template's language code, such as "en_GB".
    pub language: String,
    /// For the whole request, answer included.
    pub timeout: Duration,
}

impl fmt::Debug for WhatsAppSettings {
    fn fmt(&self, formatter: &mut fmt::Formatter<'_>) -> fmt::Result {
        formatter
            .debug_struct("WhatsAppSettings")
            .field("base_url", &self.base_url)
            .field("api_version", &self.api_version)
            .field("phone_number_id", &self.phone_number_id)
            .field("token", &"<redacted>")
            .field("template", &self.template)
            .field("language", &self.language)
            .field("timeout", &self.timeout)
            .finish()
    }
}

/// What to send.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum WhatsAppMessage {
    /// An approved template with its body variables in order.
    Template {
        name: String,
        language: String,
        parameters: Vec<String>,
    },
    /// Free text: only delivered within 24 hours of the recipient's last message.
    Text { body: String },
}

impl WhatsAppMessage {
    /// The lead as free text when the recipient's 24-hour window is known to be open, else as
    /// the configured template. Permanent error when neither is possible.
    pub fn for_lead(
        settings: &WhatsAppSettings,
        summary: &LeadSummary,
        now: DateTime<Utc>,
        window_open: bool,
    ) -> Result<WhatsAppMessage, DeliveryError> {
        if window_open {
            return Ok(WhatsAppMessage::Text {
                body: shorten(&summary.text(now), MAX_TEXT_CHARS),
            });
        }
        match settings.template.as_deref().map(str::trim) {
            Some(name) if !name.is_empty() => Ok(WhatsAppMessage::Template {
                name: name.to_string(),
                language: settings.language.trim().to_string(),
                parameters: template_parameters(summary),
            }),
            _ => Err(DeliveryError::permanent(
                "WhatsApp only delivers a message the business starts as an approved template: \
                 create one in WhatsApp Manager with 4 body variables (name, number, reason, \
                 link) and set notify.whatsapp.template to its name",
            )),
        }
    }

    /// A reply the caller sent after the lead: free text when the window is known to be open,
    /// else the configured template with [`reply_template_parameters`].
    pub fn for_reply(
        settings: &WhatsAppSettings,
        reply: &ReplySummary,
        now: DateTime<Utc>,
        window_open: bool,
    ) -> Result<WhatsAppMessage, DeliveryError> {
        if window_open {
            return Ok(WhatsAppMessage::Text {
                body: shorten(&reply.text(now), MAX_TEXT_CHARS),
            });
        }
        match settings.template.as_deref().map(str::trim) {
            Some(name) if !name.is_empty() => Ok(WhatsAppMessage::Template {
                name: name.to_string(),
                language: settings.language.trim().to_string(),
                parameters: reply_template_parameters(reply),
            }),
            _ => Err(DeliveryError::permanent(
                "WhatsApp only delivers a message the business starts as an approved template: \
                 create one in WhatsApp Manager with 4 body variables (name, number, reason, \
                 link) and set notify.whatsapp.template to its name",
            )),
        }
    }
}

/// A notice that is not a lead (`subject`, `text`): free text when the window is known to be
/// open, else the lead template with its 4 variables filled as "textback", "-", the subject,
/// and `link` (the dashboard), so the recipient is told to look even where only the template
/// can reach them.
pub fn for_notice(
    settings: &WhatsAppSettings,
    subject: &str,
    text: &str,
    link: &str,
    window_open: bool,
) -> Result<WhatsAppMessage, DeliveryError> {
    if window_open {
        return Ok(WhatsAppMessage::Text {
            body: shorten(text, MAX_TEXT_CHARS),
        });
    }
    match settings.template.as_deref().map(str::trim) {
        Some(name) if !name.is_empty() => Ok(WhatsAppMessage::Template {
            name: name.to_string(),
            language: settings.language.trim().to_string(),
            parameters: vec![
                "textback".to_string(),
                "-".to_string(),
                shorten(&sanitize_parameter(subject), MAX_PARAMETER_CHARS),
                shorten(&sanitize_parameter(link), MAX_PARAMETER_CHARS),
            ],
        }),
        _ => Err(DeliveryError::permanent(
            "WhatsApp only delivers a message the business starts as an approved template: \
             create one in WhatsApp Manager with 4 body variables (name, number, reason, link) \
             and set notify.whatsapp.template to its name",
        )),
    }
}

/// The lead template's body variables for a reply the caller sent after the lead: caller name
/// ("Unknown caller"), caller number, "replied again about lead {id}: {text}", transcript link;
/// each flattened by [`sanitize_parameter`] and at most 300 characters.
pub fn reply_template_parameters(reply: &ReplySummary) -> Vec<String> {
    let mut parameters = template_parameters(&reply.lead);
    let said = format!(
        "replied again about lead {}: {}",
        reply.lead.lead_id,
        sanitize_parameter(&reply.text)
    );
    if let Some(third) = parameters.get_mut(2) {
        *third = shorten(&sanitize_parameter(&said), MAX_PARAMETER_CHARS);
    }
    parameters
}

/// The lead template's body variables, in order: caller name ("Unknown caller" if not given),
/// caller number (UK national form), reason ("not given"), transcript link. Each flattened by
/// [`sanitize_parameter`] and at most 300 characters.
pub fn template_parameters(summary: &LeadSummary) -> Vec<String> {
    let or = |value: Option<&str>, fallback: &str| {
        let clean = value.map(sanitize_parameter).unwrap_or_default();
        if clean.is_empty() {
            fallback.to_string()
        } else {
            shorten(&clean, MAX_PARAMETER_CHARS)
        }
    };
    vec![
        or(summary.caller_name.as_deref(), "Unknown caller"),
        summary.caller.national(),
        or(summary.reason.as_deref(), "not given"),
        or(Some(&summary.transcript_url), "-"),
    ]
}

/// A template variable WhatsApp accepts: no new lines, tabs or other control characters, no
/// run of more than 4 spaces (runs of white space become one space), trimmed.
pub fn sanitize_parameter(text: &str) -> String {
    text.split(|character: char| character.is_whitespace() || character.is_control())
        .filter(|word| !word.is_empty())
        .collect::<Vec<_>>()
        .join(" ")
}

/// `{base_url}/{api_version}/{phone_number_id}/messages`.
pub fn messages_url(settings: &WhatsAppSettings) -> String {
    format!(
        "{}/{}/{}/messages",
        settings.base_url.trim().trim_end_matches('/'),
        settings.api_version.trim().trim_matches('/'),
        settings.phone_number_id.trim()
    )
}

/// The JSON body for sending `message` to `to`.
pub fn request_body(to: &E164, message: &WhatsAppMessage) -> Value {
    match message {
        WhatsAppMessage::Template {
            name,
            language,
            parameters,
        } => {
            let template = if parameters.is_empty() {
                json!({"name": name, "language": {"code": language}})
            } else {
                let parameters: Vec<Value> = parameters
                    .iter()
                    .map(|text| json!({"type": "text", "text": text}))
                    .collect();
                json!({
                    "name": name,
                    "language": {"code": language},
                    "components": [{"type": "body", "parameters": parameters}],
                })
            };
            json!({
                "messaging_product": "whatsapp",
                "recipient_type": "individual",
                "to": to.digits(),
                "type": "template",
                "template": template,
            })
        }
        WhatsAppMessage::Text { body } => json!({
            "messaging_product": "whatsapp",
            "recipient_type": "individual",
            "to": to.digits(),
            "type": "text",
            "text": {"preview_url": false, "body": body},
        }),
    }
}

/// Sends `message` to `to`; returns WhatsApp's message id ("wamid.…"). Use a client from
/// [`crate::leads::http_client`].
pub async fn send(
    client: &reqwest::Client,
    settings: &WhatsAppSettings,
    to: &E164,
    message: &WhatsAppMessage,
) -> Result<String, DeliveryError> {
    check_settings(settings)?;
    let url = messages_url(settings);
    let what = format!("WhatsApp ({})", url_without_token(settings));
    let response = client
        .post(&url)
        .bearer_auth(settings.token.trim())
        .header(reqwest::header::USER_AGENT, super::USER_AGENT)
        .timeout(settings.timeout)
        .json(&request_body(to, message))
        .send()
        .await
        .map_err(|error| http_request_error(&error, &what, "notify.whatsapp.base_url"))?;
    let status = response.status();
    let body = read_body_limited(response, MAX_ANSWER_BYTES).await;
    if status.is_success() {
        return message_id(&body).ok_or_else(|| {
            DeliveryError::permanent(format!(
                "{what} answered HTTP {status} without a message id ({}); check \
                 notify.whatsapp.base_url points at Meta's Graph API",
                shown_answer(&body)
            ))
        });
    }
    let error = serde_json::from_slice::<GraphAnswer>(&body)
        .ok()
        .and_then(|answer| answer.error);
    Err(classify(status.as_u16(), error.as_ref(), &body, to))
}

fn check_settings(settings: &WhatsAppSettings) -> Result<(), DeliveryError> {
    let id = settings.phone_number_id.trim();
    if id.is_empty() || !id.bytes().all(|byte| byte.is_ascii_digit()) {
        return Err(DeliveryError::permanent(format!(
            "notify.whatsapp.phone_number_id is {:?}: set it to the Phone number ID (digits) \
             shown for the sending number in WhatsApp Manager, not the phone number",
            shorten(id, 40)
        )));
    }
    if settings.token.trim().is_empty() {
        return Err(DeliveryError::permanent(
            "notify.whatsapp.token is empty: create a System User access token with the \
             whatsapp_business_messaging permission in Meta Business Settings and put it there",
        ));
    }
    Ok(())
}

/// The request URL for messages: it holds no secret (the token is a header).
fn url_without_token(settings: &WhatsAppSettings) -> String {
    super::shown_url(&messages_url(settings))
}

#[derive(Deserialize)]
struct GraphAnswer {
    error: Option<GraphError>,
}

/// Graph API error object.
#[derive(Debug, Deserialize)]
struct GraphError {
    message: Option<String>,
    #[serde(rename = "type")]
    kind: Option<String>,
    code: Option<i64>,
    error_subcode: Option<i64>,
    error_data: Option<GraphErrorData>,
    fbtrace_id: Option<String>,
}

#[derive(Debug, Deserialize)]
struct GraphErrorData {
    details: Option<String>,
}

#[derive(Deserialize)]
struct SendAnswer {
    messages: Vec<SentMessage>,
}

#[derive(Deserialize)]
struct SentMessage {
    id: String,
}

fn message_id(body: &[u8]) -> Option<String> {
    let answer: SendAnswer = serde_json::from_slice(body).ok()?;
    answer
        .messages
        .into_iter()
        .next()
        .map(|message| message.id)
        .filter(|id| !id.is_empty())
}

/// What an error answer means for delivery, by Meta's error code, else the HTTP status.
fn classify(status: u16, error: Option<&GraphError>, body: &[u8], to: &E164) -> DeliveryError {
    let described = match error {
        Some(error) => describe(error),
        None => shown_answer(body),
    };
    let head = format!(
        "WhatsApp did not take the lead for {} (HTTP {status}{}{described})",
        to.redacted(),
        if described.is_empty() { "" } else { ": " }
    );
    let code = error.and_then(|error| error.code);
    if let Some(code) = code {
        if let Some(advice) = transient_advice(code) {
            return DeliveryError::transient(format!("{head}; {advice}; will try again"));
        }
        if let Some(advice) = permanent_advice(code) {
            return DeliveryError::permanent(format!("{head}; {advice}"));
        }
    }
    match status {
        408 | 429 | 500..=599 => DeliveryError::transient(format!("{head}; will try again")),
        401 => DeliveryError::permanent(format!("{head}; {TOKEN_ADVICE}")),
        _ => DeliveryError::permanent(format!(
            "{head}; check notify.whatsapp.base_url, api_version, phone_number_id and token"
        )),
    }
}

const TOKEN_ADVICE: &str = "the access token in notify.whatsapp.token was refused (expired or \
     revoked): create a System User token that does not expire, with the \
     whatsapp_business_messaging permission, in Meta Business Settings, and put it in \
     notify.whatsapp.token";

/// Codes worth retrying: rate limits and Meta's own trouble.
fn transient_advice(code: i64) -> Option<&'static str> {
    Some(match code {
        4 | 17 | 341 | 80007 | 130429 => "Meta's rate limit was reached",
        131048 | 131056 => {
            "too many messages went to this recipient (or were flagged as spam) recently"
        }
        1 | 2 | 131000 | 131016 | 133004 => "Meta's service had a problem",
        131049 => "Meta held the message back to protect the recipient's experience",
        131057 => "the WhatsApp Business account is in maintenance",
        _ => return None,
    })
}

/// Codes that need a person to change something.
fn permanent_advice(code: i64) -> Option<&'static str> {
    Some(match code {
        0 | 190 => TOKEN_ADVICE,
        3 | 10 | 200..=299 => {
            "the token in notify.whatsapp.token lacks permission for this number: give its \
             System User the whatsapp_business_messaging permission and access to the WhatsApp \
             Business account"
        }
        33 | 100 => {
            "Meta refused a parameter: check notify.whatsapp.phone_number_id (the Phone number \
             ID from WhatsApp Manager, not the number) and the recipient's \
             profile.recipient.whatsapp number"
        }
        131008 | 131009 => {
            "a required value was missing or not valid: check notify.whatsapp.template and \
             notify.whatsapp.language, and the recipient's profile.recipient.whatsapp number"
        }
        131021 => {
            "the recipient is the sending number itself: set profile.recipient.whatsapp to \
             another number"
        }
        131026 => {
            "WhatsApp could not deliver to this number: check that profile.recipient.whatsapp \
             has WhatsApp and its owner has accepted WhatsApp's latest terms, or use email or \
             SMS for this recipient"
        }
        131030 => {
            "the recipient is not on the test number's list of allowed recipients: add it in \
             the Meta app's WhatsApp settings, or send from a production number"
        }
        131031 | 368 => {
            "the WhatsApp Business account is restricted or locked: see Account quality in \
             WhatsApp Manager"
        }
        131042 => "a payment problem: check the payment method in WhatsApp Manager",
        131047 => {
            "more than 24 hours have passed since the recipient last wrote to the business \
             number, so WhatsApp only takes an approved template: set notify.whatsapp.template"
        }
        131051 => "WhatsApp does not support this message type",
        132000 => {
            "the template's number of variables does not match: the template named in \
             notify.whatsapp.template must have exactly 4 body variables ({{1}} name, {{2}} \
             number, {{3}} reason, {{4}} link)"
        }
        132001 => {
            "the template does not exist in that language or is not approved yet: check \
             notify.whatsapp.template and notify.whatsapp.language in WhatsApp Manager"
        }
        132005 => "the filled-in template is too long: shorten the template's text",
        132007 => "the template breaks WhatsApp's formatting policy: edit it in WhatsApp Manager",
        132012 => "the template's variables are not all text: its 4 body variables must be text",
        132015 | 132016 => {
            "the template is paused or disabled for low quality: edit it or set \
             notify.whatsapp.template to another approved template"
        }
        133010 => {
            "the sending number is not registered with the Cloud API: register the number \
             whose ID is in notify.whatsapp.phone_number_id"
        }
        _ => return None,
    })
}

/// "(#131047) Re-engagement message [code 131047, OAuthException, details: …, fbtrace_id …]".
fn describe(error: &GraphError) -> String {
    let mut parts = Vec::new();
    if let Some(code) = error.code {
        parts.push(format!("code {code}"));
    }
    if let Some(subcode) = error.error_subcode {
        parts.push(format!("subcode {subcode}"));
    }
    if let Some(kind) = &error.kind {
        parts.push(kind.clone());
    }
    if let Some(details) = error
        .error_data
        .as_ref()
        .and_then(|data| data.details.as_ref())
    {
        parts.push(format!("details: {details}"));
    }
    if let Some(trace) = &error.fbtrace_id {
        parts.push(format!("fbtrace_id {trace}"));
    }
    let message = error.message.as_deref().unwrap_or("error");
    shown_answer(format!("{message} [{}]", parts.join(", ")).as_bytes())
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::leads::http_client;
    use crate::leads::summary::tests::{dave, now};
    use crate::leads::test_http::{Reply, serve_once};

    const TOKEN: &str = "EAAG-secret-token";

    fn settings(base_url: &str) -> WhatsAppSettings {
        WhatsAppSettings {
            base_url: format!("{base_url}/"),
            api_version: DEFAULT_API_VERSION.to_string(),
            phone_number_id: "106540352242922".to_string(),
            token: TOKEN.to_string(),
            template: Some("new_lead".to_string()),
            language: DEFAULT_LANGUAGE.to_string(),
            timeout: Duration::from_secs(5),
        }
    }

    fn recipient() -> E164 {
        E164::parse("07700 900123").unwrap()
    }

    #[test]
    fn a_notice_goes_as_the_template_or_as_free_text() {
        let with_template = settings("https://graph.example");
        let message = for_notice(
            &with_template,
            "Acme: call back\n2 missed callers",
            "long text",
            "https://box.example",
            false,
        )
        .unwrap();
        assert_eq!(
            message,
            WhatsAppMessage::Template {
                name: "new_lead".to_string(),
                language: DEFAULT_LANGUAGE.to_string(),
                parameters: vec![
                    "textback".to_string(),
                    "-".to_string(),
                    "Acme: call back 2 missed callers".to_string(),
                    "https://box.example".to_string(),
                ],
            }
        );
        let free = for_notice(&with_template, "s", "the whole text", "l", true).unwrap();
        assert_eq!(
            free,
            WhatsAppMessage::Text {
                body: "the whole text".to_string()
            }
        );
        let none = WhatsAppSettings {
            template: None,
            ..with_template
        };
        let refused = for_notice(&none, "s", "t", "l", false).unwrap_err();
        assert!(!refused.is_transient());
        assert!(refused.reason().contains("notify.whatsapp.template"));
    }

    const SUCCESS: &str = r#"{"messaging_product":"whatsapp","contacts":[{"input":"447700900123","wa_id":"447700900123"}],"messages":[{"id":"wamid.HBgLMTY1MDM4Nzk0MzkVAgARGBJCOTY3NDc0"}]}"#;

    #[test]
    fn parameters_in_order() {
        assert_eq!(
            template_parameters(&dave()),
            vec![
                "Dave Smith",
                "07700 900123",
                "boiler leaking",
                "https://box.example/t/abc.def"
            ]
        );
        let bare = LeadSummary {
            caller_name: None,
            reason: Some(" \n\t ".to_string()),
            ..dave()
        };
        let parameters = template_parameters(&bare);
        assert_eq!(parameters[0], "Unknown caller");
        assert_eq!(parameters[2], "not given");
        assert_eq!(parameters.len(), TEMPLATE_PARAMETERS);
    }

    #[test]
    fn a_reply_fills_the_same_template() {
        let reply = crate::leads::summary::tests::dave_replied();
        let message = WhatsAppMessage::for_reply(&settings("x"), &reply, now(), false).unwrap();
        assert_eq!(
            message,
            WhatsAppMessage::Template {
                name: "new_lead".to_string(),
                language: "en_GB".to_string(),
                parameters: vec![
                    "Dave Smith".to_string(),
                    "07700 900123".to_string(),
                    "replied again about lead 42: Can you come after 3? The side gate is open"
                        .to_string(),
                    "https://box.example/t/abc.def".to_string(),
                ],
            }
        );
        let long = ReplySummary {
            text: "word\n".repeat(200),
            ..reply.clone()
        };
        let said = &reply_template_parameters(&long)[2];
        assert_eq!(said.chars().count(), 300);
        assert!(!said.contains('\n'));
        let free = WhatsAppMessage::for_reply(&settings("x"), &reply, now(), true).unwrap();
        assert_eq!(
            free,
            WhatsAppMessage::Text {
                body: reply.text(now())
            }
        );
    }

    #[test]
    fn parameters_are_one_line() {
        assert_eq!(
            sanitize_parameter("  leak\nin the\tloft      now\r\n"),
            "leak in the loft now"
        );
        let long = LeadSummary {
            reason: Some("word ".repeat(200)),
            ..dave()
        };
        let reason = &template_parameters(&long)[2];
        assert_eq!(reason.chars().count(), 300);
        assert!(!reason.contains("     "));
        assert!(!reason.contains(['\n', '\t']));
    }

    #[test]
    fn bodies_match_the_documented_format() {
        let message = WhatsAppMessage::for_lead(&settings("x"), &dave(), now(), false).unwrap();
        assert_eq!(
            request_body(&recipient(), &message),
            json!({
                "messaging_product": "whatsapp",
                "recipient_type": "individual",
                "to": "447700900123",
                "type": "template",
                "template": {
                    "name": "new_lead",
                    "language": {"code": "en_GB"},
                    "components": [{
                        "type": "body",
                        "parameters": [
                            {"type": "text", "text": "Dave Smith"},
                            {"type": "text", "text": "07700 900123"},
                            {"type": "text", "text": "boiler leaking"},
                            {"type": "text", "text": "https://box.example/t/abc.def"}
                        ]
                    }]
                }
            })
        );
        let text = WhatsAppMessage::Text {
            body: "hello".to_string(),
        };
        assert_eq!(
            request_body(&recipient(), &text),
            json!({
                "messaging_product": "whatsapp",
                "recipient_type": "individual",
                "to": "447700900123",
                "type": "text",
                "text": {"preview_url": false, "body": "hello"}
            })
        );
    }

    #[test]
    fn free_text_when_the_window_is_open() {
        let message = WhatsAppMessage::for_lead(&settings("x"), &dave(), now(), true).unwrap();
        let WhatsAppMessage::Text { body } = message else {
            panic!("expected text");
        };
        assert_eq!(body, dave().text(now()));
        let no_template = WhatsAppSettings {
            template: Some(" ".to_string()),
            ..settings("x")
        };
        let error = WhatsAppMessage::for_lead(&no_template, &dave(), now(), false).unwrap_err();
        assert!(!error.is_transient());
        assert!(
            error.reason().contains("notify.whatsapp.template"),
            "{error}"
        );
    }

    #[test]
    fn url() {
        assert_eq!(
            messages_url(&settings("https://graph.facebook.com")),
            "https://graph.facebook.com/v23.0/106540352242922/messages"
        );
    }

    #[test]
    fn debug_hides_the_token() {
        let shown = format!("{:?}", settings("x"));
        assert!(!shown.contains(TOKEN), "{shown}");
        assert!(shown.contains("redacted"));
    }

    #[tokio::test]
    async fn sends_a_template() {
        let (base, request) = serve_once(Reply::json(200, SUCCESS)).await;
        let client = http_client(Duration::from_secs(5)).unwrap();
        let settings = settings(&base);
        let message = WhatsAppMessage::for_lead(&settings, &dave(), now(), false).unwrap();
        let id = send(&client, &settings, &recipient(), &message)
            .await
            .unwrap();
        assert_eq!(id, "wamid.HBgLMTY1MDM4Nzk0MzkVAgARGBJCOTY3NDc0");
        let request = request.await.unwrap();
        assert_eq!(request.method, "POST");
        assert_eq!(request.path, "/v23.0/106540352242922/messages");
        assert_eq!(
            request.header("authorization"),
            Some(format!("Bearer {TOKEN}").as_str())
        );
        assert_eq!(request.header("content-type"), Some("application/json"));
        let body: Value = serde_json::from_slice(&request.body).unwrap();
        assert_eq!(body, request_body(&recipient(), &message));
        assert_eq!(body["to"], "447700900123");
        assert_eq!(
            body["template"]["components"][0]["parameters"][3]["text"],
            "https://box.example/t/abc.def"
        );
    }

    async fn error_for(status: u16, body: &str) -> DeliveryError {
        let (base, request) = serve_once(Reply::json(status, body)).await;
        let client = http_client(Duration::from_secs(5)).unwrap();
        let settings = settings(&base);
        let message = WhatsAppMessage::Text {
            body: "hello".to_string(),
        };
        let error = send(&client, &settings, &recipient(), &message)
            .await
            .unwrap_err();
        request.await.unwrap();
        assert!(!error.reason().contains(TOKEN), "{error}");
        assert!(
            !error.reason().contains("900123"),
            "number not redacted: {error}"
        );
        error
    }

    fn graph_error(code: i64, message: &str) -> String {
        json!({"error": {
            "message": message,
            "type": "OAuthException",
            "code": code,
            "error_data": {"messaging_product": "whatsapp", "details": "details here"},
            "error_subcode": 2494010,
            "fbtrace_id": "Az8or2yhqkZfEZ-_4Qn_Bam"
        }})
        .to_string()
    }

    #[tokio::test]
    async fn window_closed_is_permanent() {
        let error = error_for(400, &graph_error(131047, "(#131047) Re-engagement message")).await;
        assert!(!error.is_transient(), "{error}");
        let reason = error.reason();
        assert!(reason.contains("notify.whatsapp.template"), "{reason}");
        assert!(
            reason.contains("(#131047) Re-engagement message"),
            "{reason}"
        );
        assert!(reason.contains("code 131047"), "{reason}");
        assert!(reason.contains("details here"), "{reason}");
        assert!(
            reason.contains("fbtrace_id Az8or2yhqkZfEZ-_4Qn_Bam"),
            "{reason}"
        );
        assert!(reason.contains("+44*******123"), "{reason}");
    }

    #[tokio::test]
    async fn permanent_codes() {
        for (code, key) in [
            (132000, "4 body variables"),
            (132001, "notify.whatsapp.language"),
            (131026, "profile.recipient.whatsapp"),
            (100, "notify.whatsapp.phone_number_id"),
        ] {
            let error = error_for(400, &graph_error(code, "(#x) refused")).await;
            assert!(!error.is_transient(), "{code}: {error}");
            assert!(error.reason().contains(key), "{code}: {error}");
        }
        let error = error_for(401, &graph_error(190, "Error validating access token")).await;
        assert!(!error.is_transient());
        assert!(error.reason().contains("notify.whatsapp.token"), "{error}");
    }

    #[tokio::test]
    async fn rate_limits_are_transient() {
        for (status, code) in [(429, 130429), (400, 4), (400, 80007), (400, 131056)] {
            let error = error_for(status, &graph_error(code, "(#x) Rate limit hit")).await;
            assert!(error.is_transient(), "{code}: {error}");
        }
    }

    #[tokio::test]
    async fn unknown_answers_fall_back_on_the_status() {
        let error = error_for(503, "Service Unavailable").await;
        assert!(error.is_transient(), "{error}");
        assert!(error.reason().contains("503"), "{error}");
        assert!(error.reason().contains("Service Unavailable"), "{error}");
        let error = error_for(500, &graph_error(999_999, "new code")).await;
        assert!(error.is_transient(), "{error}");
        let error = error_for(404, "<html>Not Found</html>").await;
        assert!(!error.is_transient(), "{error}");
        assert!(
            error.reason().contains("notify.whatsapp.base_url"),
            "{error}"
        );
    }

    #[tokio::test]
    async fn success_without_an_id_is_permanent() {
        let (base, request) = serve_once(Reply::json(200, "{\"ok\":true}")).await;
        let client = http_client(Duration::from_secs(5)).unwrap();
        let settings = settings(&base);
        let message = WhatsAppMessage::Text {
            body: "hello".to_string(),
        };
        let error = send(&client, &settings, &recipient(), &message)
            .await
            .unwrap_err();
        request.await.unwrap();
        assert!(!error.is_transient());
        assert!(
            error.reason().contains("notify.whatsapp.base_url"),
            "{error}"
        );
    }

    #[tokio::test]
    async fn bad_settings_are_caught_before_sending() {
        let client = http_client(Duration::from_secs(5)).unwrap();
        let message = WhatsAppMessage::Text {
            body: "hello".to_string(),
        };
        let wrong_id = WhatsAppSettings {
            phone_number_id: "+44 7700 900123".to_string(),
            ..settings("http://127.0.0.1:9")
        };
        let error = send(&client, &wrong_id, &recipient(), &message)
            .await
            .unwrap_err();
        assert!(
            error.reason().contains("notify.whatsapp.phone_number_id"),
            "{error}"
        );
        let no_token = WhatsAppSettings {
            token: String::new(),
            ..settings("http://127.0.0.1:9")
        };
        let error = send(&client, &no_token, &recipient(), &message)
            .await
            .unwrap_err();
        assert!(error.reason().contains("notify.whatsapp.token"), "{error}");
    }
}
