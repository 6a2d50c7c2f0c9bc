//! What a lead notification says, in each form a channel needs: an email subject, plain text,
//! HTML, a two-part GSM-7 SMS and the webhook's JSON.
//!
//! Everything the caller typed (name, reason, answers) is untrusted: the renderers strip control
//! characters, the HTML escapes it, and the SMS transliterates it to GSM-7. Times are shown in UK
//! local time (Europe/London); renderers take `now` instead of reading the clock so that the same
//! lead renders the same way in tests.

use chrono::{DateTime, SecondsFormat, Utc};
use chrono_tz::Europe::London;
use serde_json::{Value, json};

use crate::codec::phone::E164;

/// Longest email subject, in characters.
pub const MAX_SUBJECT_CHARS: usize = 100;
/// Most SMS parts [`LeadSummary::sms`] may take.
pub const MAX_SMS_PARTS: usize = 2;

/// A lead, as the notifications show it. Plain data: the daemon fills it from the store.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct LeadSummary {
    pub lead_id: i64,
    /// The business (profile) name, as callers know it.
    pub profile: String,
    pub caller: E164,
    /// What the caller said their name is, when a question asked.
    pub caller_name: Option<String>,
    pub missed_at: DateTime<Utc>,
    /// The business number the caller dialled, when known.
    pub called_number: Option<E164>,
    /// Why they called, in their words, when a question asked.
    pub reason: Option<String>,
    /// (question label, answer) in the order asked.
    pub answers: Vec<(String, String)>,
    /// True when the caller answered every question.
    pub complete: bool,
    pub urgent: bool,
    /// The read-only transcript link ([`crate::leads::token::transcript_url`]).
    pub transcript_url: String,
}

impl LeadSummary {
    /// "New lead: Dave Smith, 07700 900123 — boiler leaking" ("Urgent lead: …" when urgent): one
    /// line, at most [`MAX_SUBJECT_CHARS`] characters, cut at a character with "…".
    pub fn subject(&self) -> String {
        let mut subject = String::from(if self.urgent {
            "Urgent lead: "
        } else {
            "New lead: "
        });
        if let Some(name) = self.name() {
            subject.push_str(&name);
            subject.push_str(", ");
        }
        subject.push_str(&self.caller.national());
        if let Some(reason) = self.reason_line() {
            subject.push_str(" — ");
            subject.push_str(&reason);
        }
        shorten(&subject, MAX_SUBJECT_CHARS, "…")
    }

    /// The plain text body: who called, their number (national and E.164) with a `tel:` link,
    /// when (UK time, and how long ago), the number they called, the reason, each answer,
    /// whether the conversation finished, and the transcript link.
    pub fn text(&self, now: DateTime<Utc>) -> String {
        let mut text = String::new();
        if self.urgent {
            text.push_str("URGENT\n");
        }
        text.push_str(&format!(
            "New lead for {}\n\n",
            one_line(&self.profile).unwrap_or_default()
        ));
        self.push_caller_lines(&mut text);
        text.push_str(&format!(
            "Missed call: {} ({})\n",
            local_time(self.missed_at),
            ago(self.missed_at, now)
        ));
        if let Some(called) = &self.called_number {
            text.push_str(&format!("Number called: {}\n", called.national()));
        }
        if let Some(reason) = self.reason.as_deref().and_then(multi_line) {
            text.push_str(&format!("Reason: {}\n", indent(&reason)));
        }
        if !self.answers.is_empty() {
            text.push_str("\nAnswers:\n");
            for (question, answer) in &self.answers {
                text.push_str(&format!(
                    "- {}\n  {}\n",
                    one_line(question).unwrap_or_else(|| "(question)".to_string()),
                    indent(&multi_line(answer).unwrap_or_else(|| NO_ANSWER.to_string()))
                ));
            }
        }
        text.push('\n');
        text.push_str(self.status());
        text.push_str("\n\n");
        text.push_str(&format!(
            "Transcript: {}\n",
            one_line(&self.transcript_url).unwrap_or_default()
        ));
        text
    }

    /// The HTML body: the same content as [`LeadSummary::text`], inline styles only, no images
    /// or other outside assets; every string not produced here is escaped.
    pub fn html(&self, now: DateTime<Utc>) -> String {
        let mut rows = Vec::new();
        let name = self.name();
        rows.push(row(
            "Caller",
            &escape_html(name.as_deref().unwrap_or(NO_NAME)),
        ));
        rows.push(row(
            "Number",
            &format!(
                "<a href=\"tel:{}\" style=\"color:#0b57d0\">{}</a> ({})",
                escape_html(self.caller.as_str()),
                escape_html(&self.caller.national()),
                escape_html(self.caller.as_str())
            ),
        ));
        rows.push(row(
            "Missed call",
            &escape_html(&format!(
                "{} ({})",
                local_time(self.missed_at),
                ago(self.missed_at, now)
            )),
        ));
        if let Some(called) = &self.called_number {
            rows.push(row("Number called", &escape_html(&called.national())));
        }
        if let Some(reason) = self.reason.as_deref().and_then(multi_line) {
            rows.push(row("Reason", &html_lines(&reason)));
        }

        let mut html = String::new();
        html.push_str("<!DOCTYPE html>\n<html lang=\"en\">\n<head>\n<meta charset=\"utf-8\">\n");
        html.push_str("<meta name=\"viewport\" content=\"width=device-width, initial-scale=1\">\n");
        html.push_str(&format!(
            "<title>{}</title>\n</head>\n",
            escape_html(&self.subject())
        ));
        html.push_str(
            "<body style=\"margin:0;padding:16px;background:#ffffff;color:#1f1f1f;\
             font-family:Arial,Helvetica,sans-serif;font-size:15px;line-height:1.45\">\n",
        );
        if self.urgent {
            html.push_str(
                "<p style=\"margin:0 0 12px;padding:6px 10px;background:#b3261e;color:#ffffff;\
                 font-weight:bold;display:inline-block\">URGENT</p>\n",
            );
        }
        html.push_str(&format!(
            "<h1 style=\"margin:0 0 12px;font-size:20px\">New lead for {}</h1>\n",
            escape_html(&one_line(&self.profile).unwrap_or_default())
        ));
        html.push_str(TABLE_OPEN);
        for line in rows {
            html.push_str(&line);
        }
        html.push_str("</table>\n");
        if !self.answers.is_empty() {
            html.push_str("<h2 style=\"margin:0 0 8px;font-size:17px\">Answers</h2>\n");
            html.push_str(TABLE_OPEN);
            for (question, answer) in &self.answers {
                html.push_str(&row(
                    &one_line(question).unwrap_or_else(|| "(question)".to_string()),
                    &html_lines(&multi_line(answer).unwrap_or_else(|| NO_ANSWER.to_string())),
                ));
            }
            html.push_str("</table>\n");
        }
        html.push_str(&format!(
            "<p style=\"margin:0 0 16px;font-weight:bold\">{}</p>\n",
            escape_html(self.status())
        ));
        html.push_str(&transcript_html(&self.transcript_url));
        html.push_str("</body>\n</html>\n");
        html
    }

    /// A compact text for the owner's phone: GSM-7 characters only, at most
    /// [`MAX_SMS_PARTS`] parts (306 septets, extension characters counting 2). Caller text is
    /// transliterated to GSM-7 (curly quotes, dashes, "…" → "...", accents dropped, the rest
    /// '?'); when it is too long, answers are cut with "..." and, if need be, left out
    /// ("more on the link"); the transcript link is kept whole.
    pub fn sms(&self, now: DateTime<Utc>) -> String {
        let lines = SmsLines::new(self, now);
        let full = lines.render(&SmsShortening::NONE);
        if fits_sms(&full) {
            return full;
        }
        let short_labels = SmsShortening {
            label_cap: Some(SMS_LABEL_CAP),
            ..SmsShortening::NONE
        };
        let labels_cut = lines.render(&short_labels);
        if fits_sms(&labels_cut) {
            return labels_cut;
        }
        // All answers, cut as little as needed; then fewer answers, from the last.
        for kept in (0..=lines.answers.len()).rev() {
            let shortening = SmsShortening {
                answers_kept: Some(kept),
                ..short_labels
            };
            if let Some(text) = lines.render_with_largest_cap(&shortening) {
                return text;
            }
        }
        // Only a very long business name, caller name or link gets here.
        let text = lines.render(&SmsShortening {
            value_cap: Some(SMS_MIN_VALUE_CAP),
            answers_kept: Some(0),
            head_cap: Some(SMS_HEAD_CAP),
            ..short_labels
        });
        if fits_sms(&text) {
            return text;
        }
        cut_to_fit(&text, &lines.url)
    }

    /// The webhook's JSON. Field names are stable (documented in `webhook.rs`):
    ///
    /// ```json
    /// {"event": "lead", "lead_id": 42, "profile": "Acme Plumbing",
    ///  "caller": {"number": "+447700900123", "national": "07700 900123", "name": "Dave Smith"},
    ///  "missed_at": "2025-06-03T13:05:00Z", "called_number": "+442079460018",
    ///  "reason": "boiler leaking",
    ///  "answers": [{"question": "What is your postcode?", "answer": "SW1A 1AA"}],
    ///  "complete": true, "urgent": false, "transcript_url": "https://box.example/t/…"}
    /// ```
    ///
    /// `caller.name`, `called_number` and `reason` are null when unknown; strings are as the
    /// caller sent them (JSON escapes them; nothing else is changed).
    pub fn json(&self) -> Value {
        json!({
            "event": "lead",
            "lead_id": self.lead_id,
            "profile": self.profile,
            "caller": {
                "number": self.caller.as_str(),
                "national": self.caller.national(),
                "name": self.caller_name,
            },
            "missed_at": self.missed_at.to_rfc3339_opts(SecondsFormat::Secs, true),
            "called_number": self.called_number.as_ref().map(E164::as_str),
            "reason": self.reason,
            "answers": self
                .answers
                .iter()
                .map(|(question, answer)| json!({"question": question, "answer": answer}))
                .collect::<Vec<_>>(),
            "complete": self.complete,
            "urgent": self.urgent,
            "transcript_url": self.transcript_url,
        })
    }

    /// The caller's name on one line, if they gave one.
    /// The caller's name, number (national and E.164) and a tel: link, a line each.
    fn push_caller_lines(&self, text: &mut String) {
        text.push_str(&format!(
            "Caller: {}\n",
            self.name().unwrap_or_else(|| NO_NAME.to_string())
        ));
        text.push_str(&format!(
            "Number: {} ({})\n",
            self.caller.national(),
            self.caller.as_str()
        ));
        text.push_str(&format!("Call back: tel:{}\n", self.caller.as_str()));
    }

    fn name(&self) -> Option<String> {
        self.caller_name.as_deref().and_then(one_line)
    }

    /// The reason on one line, if given.
    fn reason_line(&self) -> Option<String> {
        self.reason.as_deref().and_then(one_line)
    }

    fn status(&self) -> &'static str {
        if self.complete {
            "Conversation complete"
        } else {
            "Incomplete: the caller stopped answering"
        }
    }
}

/// A text the caller sent after their lead went out, as the notices to the lead's recipients show
/// it: who (name if they gave one, number), when, what they wrote, and the lead it belongs to with
/// its transcript link.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ReplySummary {
    /// The lead the reply is about (caller, name, business, transcript link).
    pub lead: LeadSummary,
    /// The reply's `messages` row: what the notice is keyed on.
    pub reply_id: i64,
    /// What the caller wrote, as received.
    pub text: String,
    pub received_at: DateTime<Utc>,
}

impl ReplySummary {
    /// "Lead 42: Dave Smith replied again — can you come after 3?": one line, at most
    /// [`MAX_SUBJECT_CHARS`] characters.
    pub fn subject(&self) -> String {
        let mut subject = format!("Lead {}: {} replied again", self.lead.lead_id, self.who());
        if let Some(text) = one_line(&self.text) {
            subject.push_str(" — ");
            subject.push_str(&text);
        }
        shorten(&subject, MAX_SUBJECT_CHARS, "…")
    }

    /// The plain text body: who replied and their number, when, the reply, the lead it belongs
    /// to, and the transcript link.
    pub fn text(&self, now: DateTime<Utc>) -> String {
        let lead = &self.lead;
        let mut text = format!(
            "{} replied again about lead {} for {}\n\n",
            self.who(),
            lead.lead_id,
            one_line(&lead.profile).unwrap_or_default()
        );
        lead.push_caller_lines(&mut text);
        text.push_str(&format!(
            "Received: {} ({})\n\n",
            local_time(self.received_at),
            ago(self.received_at, now)
        ));
        text.push_str("Their message:\n  ");
        text.push_str(&indent(
            &multi_line(&self.text).unwrap_or_else(|| NO_TEXT.to_string()),
        ));
        text.push_str("\n\n");
        text.push_str(&format!(
            "Lead {}: missed call {}",
            lead.lead_id,
            local_time(lead.missed_at)
        ));
        if let Some(reason) = lead.reason_line() {
            text.push_str(&format!(", {reason}"));
        }
        text.push('\n');
        text.push_str(&format!(
            "Transcript: {}\n",
            one_line(&lead.transcript_url).unwrap_or_default()
        ));
        text
    }

    /// The HTML body: the same content as [`ReplySummary::text`], inline styles only; every
    /// string not produced here is escaped.
    pub fn html(&self, now: DateTime<Utc>) -> String {
        let lead = &self.lead;
        let mut rows = vec![
            row(
                "Caller",
                &escape_html(lead.name().as_deref().unwrap_or(NO_NAME)),
            ),
            row(
                "Number",
                &format!(
                    "<a href=\"tel:{}\" style=\"color:#0b57d0\">{}</a> ({})",
                    escape_html(lead.caller.as_str()),
                    escape_html(&lead.caller.national()),
                    escape_html(lead.caller.as_str())
                ),
            ),
            row(
                "Received",
                &escape_html(&format!(
                    "{} ({})",
                    local_time(self.received_at),
                    ago(self.received_at, now)
                )),
            ),
        ];
        let mut about = format!("missed call {}", local_time(lead.missed_at));
        if let Some(reason) = lead.reason_line() {
            about.push_str(&format!(", {reason}"));
        }
        rows.push(row(&format!("Lead {}", lead.lead_id), &escape_html(&about)));

        let mut html = String::new();
        html.push_str("<!DOCTYPE html>\n<html lang=\"en\">\n<head>\n<meta charset=\"utf-8\">\n");
        html.push_str("<meta name=\"viewport\" content=\"width=device-width, initial-scale=1\">\n");
        html.push_str(&format!(
            "<title>{}</title>\n</head>\n",
            escape_html(&self.subject())
        ));
        html.push_str(
            "<body style=\"margin:0;padding:16px;background:#ffffff;color:#1f1f1f;\
             font-family:Arial,Helvetica,sans-serif;font-size:15px;line-height:1.45\">\n",
        );
        html.push_str(&format!(
            "<h1 style=\"margin:0 0 12px;font-size:20px\">{} replied again about lead {} for {}</h1>\n",
            escape_html(&self.who()),
            lead.lead_id,
            escape_html(&one_line(&lead.profile).unwrap_or_default())
        ));
        html.push_str(
            "<blockquote style=\"margin:0 0 16px;padding:8px 12px;border-left:4px solid #0b57d0;\
             background:#f1f4f9\">",
        );
        html.push_str(&html_lines(
            &multi_line(&self.text).unwrap_or_else(|| NO_TEXT.to_string()),
        ));
        html.push_str("</blockquote>\n");
        html.push_str(TABLE_OPEN);
        for line in rows {
            html.push_str(&line);
        }
        html.push_str("</table>\n");
        html.push_str(&transcript_html(&lead.transcript_url));
        html.push_str("</body>\n</html>\n");
        html
    }

    /// A short text for the owner's phone: GSM-7 only, at most [`MAX_SMS_PARTS`] parts. The
    /// reply is cut with "..." when it is too long; the transcript link is kept whole.
    pub fn sms(&self, now: DateTime<Utc>) -> String {
        let lead = &self.lead;
        let gsm = |text: &str| one_line(text).map(|line| to_gsm7(&line));
        let local = self.received_at.with_timezone(&London);
        let when = if local.date_naive() == now.with_timezone(&London).date_naive() {
            local.format("%H:%M").to_string()
        } else {
            local.format("%-d %b %H:%M").to_string()
        };
        let number = to_gsm7(&lead.caller.national());
        let who = |cap: Option<usize>| match lead.caller_name.as_deref().and_then(gsm) {
            Some(name) => format!(
                "{} {number}",
                cap.map_or(name.clone(), |cap| shorten(&name, cap, SMS_ELLIPSIS))
            ),
            None => number.clone(),
        };
        let body = gsm(&self.text).unwrap_or_else(|| NO_TEXT.to_string());
        let url = gsm(&lead.transcript_url).unwrap_or_default();
        let render = |name_cap: Option<usize>, body_cap: Option<usize>| {
            let body = body_cap.map_or(body.clone(), |cap| shorten(&body, cap, SMS_ELLIPSIS));
            let mut lines = vec![
                format!("Lead {}: {} replied {when}:", lead.lead_id, who(name_cap)),
                body,
            ];
            if !url.is_empty() {
                lines.push(url.clone());
            }
            lines.join("\n")
        };
        let full = render(None, None);
        if fits_sms(&full) {
            return full;
        }
        for name_cap in [None, Some(SMS_HEAD_CAP)] {
            // The longest cut of the reply that fits (a longer cut never fits where a shorter
            // one does not, except just below the reply's length, where "..." is added).
            let (mut low, mut high) = (1, body.chars().count());
            let mut best = None;
            while low <= high {
                let cap = low + (high - low) / 2;
                let text = render(name_cap, Some(cap));
                if fits_sms(&text) {
                    best = Some(text);
                    low = cap + 1;
                } else {
                    high = cap - 1;
                }
            }
            if let Some(text) = best {
                return text;
            }
        }
        cut_to_fit(&render(Some(SMS_HEAD_CAP), Some(1)), &url)
    }

    /// The webhook's JSON for a reply. Field names are stable (documented in `webhook.rs`):
    ///
    /// ```json
    /// {"event": "lead.reply", "lead_id": 42, "profile": "Acme Plumbing",
    ///  "caller": {"number": "+447700900123", "national": "07700 900123", "name": "Dave Smith"},
    ///  "reply": {"id": 57, "text": "Can you come after 3?", "received_at": "2025-06-03T13:40:00Z"},
    ///  "transcript_url": "https://box.example/t/…"}
    /// ```
    pub fn json(&self) -> Value {
        let lead = &self.lead;
        json!({
            "event": "lead.reply",
            "lead_id": lead.lead_id,
            "profile": lead.profile,
            "caller": {
                "number": lead.caller.as_str(),
                "national": lead.caller.national(),
                "name": lead.caller_name,
            },
            "reply": {
                "id": self.reply_id,
                "text": self.text,
                "received_at": self.received_at.to_rfc3339_opts(SecondsFormat::Secs, true),
            },
            "transcript_url": lead.transcript_url,
        })
    }

    /// "Dave Smith" when they gave a name, else their number.
    pub fn who(&self) -> String {
        self.lead
            .name()
            .unwrap_or_else(|| self.lead.caller.national())
    }
}

const NO_NAME: &str = "(name not given)";
/// A reply with nothing but white space in it.
const NO_TEXT: &str = "(an empty text)";
const NO_ANSWER: &str = "(no answer)";

const TABLE_OPEN: &str =
    "<table role=\"presentation\" style=\"border-collapse:collapse;margin:0 0 16px\">\n";

/// The transcript link as a button and a link to copy; only web links are made links.
fn transcript_html(transcript_url: &str) -> String {
    let url = one_line(transcript_url).unwrap_or_default();
    if is_web_link(&url) {
        format!(
            "<p style=\"margin:0 0 8px\"><a href=\"{0}\" style=\"display:inline-block;\
             padding:10px 16px;background:#0b57d0;color:#ffffff;text-decoration:none;\
             border-radius:4px\">Open the transcript</a></p>\n\
             <p style=\"margin:0;font-size:13px;color:#555555\">Or copy this link: \
             <a href=\"{0}\" style=\"color:#0b57d0\">{0}</a></p>\n",
            escape_html(&url)
        )
    } else {
        format!(
            "<p style=\"margin:0;font-size:13px;color:#555555\">Transcript: {}</p>\n",
            escape_html(&url)
        )
    }
}

fn row(label: &str, value_html: &str) -> String {
    format!(
        "<tr><th style=\"text-align:left;vertical-align:top;padding:4px 12px 4px 0;\
         color:#555555;font-weight:normal\">{}</th>\
         <td style=\"vertical-align:top;padding:4px 0\">{value_html}</td></tr>\n",
        escape_html(label)
    )
}

/// Escaped text with its line breaks as `<br>`.
fn html_lines(text: &str) -> String {
    text.lines()
        .map(escape_html)
        .collect::<Vec<_>>()
        .join("<br>\n")
}

/// Escapes text for HTML element content and quoted attribute values: & < > " '.
pub fn escape_html(text: &str) -> String {
    let mut escaped = String::with_capacity(text.len());
    for character in text.chars() {
        match character {
            '&' => escaped.push_str("&amp;"),
            '<' => escaped.push_str("&lt;"),
            '>' => escaped.push_str("&gt;"),
            '"' => escaped.push_str("&quot;"),
            '\'' => escaped.push_str("&#39;"),
            other => escaped.push(other),
        }
    }
    escaped
}

fn is_web_link(url: &str) -> bool {
    let lower = url.to_ascii_lowercase();
    (lower.starts_with("https://") || lower.starts_with("http://"))
        && !url.contains(char::is_whitespace)
}

/// Text on one line: control characters and line breaks become spaces, runs of white space one
/// space, trimmed. None when nothing is left.
fn one_line(text: &str) -> Option<String> {
    let joined = text
        .split(|character: char| character.is_whitespace() || character.is_control())
        .filter(|word| !word.is_empty())
        .collect::<Vec<_>>()
        .join(" ");
    (!joined.is_empty()).then_some(joined)
}

/// Text keeping its line breaks: each line as [`one_line`], blank lines dropped. None when
/// nothing is left.
fn multi_line(text: &str) -> Option<String> {
    let lines: Vec<String> = text.lines().filter_map(one_line).collect();
    (!lines.is_empty()).then(|| lines.join("\n"))
}

/// Continuation lines indented under a list item.
fn indent(text: &str) -> String {
    text.replace('\n', "\n  ")
}

/// At most `max` characters; when cut, the last characters are `ellipsis`.
fn shorten(text: &str, max: usize, ellipsis: &str) -> String {
    if text.chars().count() <= max {
        return text.to_string();
    }
    let keep = max.saturating_sub(ellipsis.chars().count());
    let mut short: String = text.chars().take(keep).collect();
    short.truncate(short.trim_end().len());
    short.push_str(ellipsis);
    short
}

pub use crate::time_text::{ago, local_time};

// ---------------------------------------------------------------------------------------------
// SMS

/// A question label is cut to this many characters when the SMS is too long.
const SMS_LABEL_CAP: usize = 20;
/// Answers are not cut shorter than this; past it they are left out.
const SMS_MIN_VALUE_CAP: usize = 12;
/// The business and caller names are cut to this as a last resort.
const SMS_HEAD_CAP: usize = 24;
/// Ellipsis in GSM-7 ("…" is not in the alphabet).
const SMS_ELLIPSIS: &str = "...";

/// The SMS content, already transliterated to GSM-7.
struct SmsLines {
    urgent: bool,
    profile: String,
    name: Option<String>,
    number: String,
    when: String,
    reason: Option<String>,
    answers: Vec<(String, String)>,
    complete: bool,
    url: String,
}

#[derive(Clone, Copy)]
struct SmsShortening {
    label_cap: Option<usize>,
    value_cap: Option<usize>,
    answers_kept: Option<usize>,
    head_cap: Option<usize>,
}

impl SmsShortening {
    const NONE: SmsShortening = SmsShortening {
        label_cap: None,
        value_cap: None,
        answers_kept: None,
        head_cap: None,
    };
}

impl SmsLines {
    fn new(summary: &LeadSummary, now: DateTime<Utc>) -> SmsLines {
        let gsm = |text: &str| one_line(text).map(|line| to_gsm7(&line));
        let local = summary.missed_at.with_timezone(&London);
        let same_day = local.date_naive() == now.with_timezone(&London).date_naive();
        let ago = ago(summary.missed_at, now);
        let when = if same_day {
            format!("{}, {ago}", local.format("%H:%M"))
        } else {
            ago
        };
        SmsLines {
            urgent: summary.urgent,
            profile: gsm(&summary.profile).unwrap_or_default(),
            name: summary.caller_name.as_deref().and_then(gsm),
            number: to_gsm7(&summary.caller.national()),
            when,
            reason: summary.reason.as_deref().and_then(gsm),
            answers: summary
                .answers
                .iter()
                .map(|(question, answer)| {
                    (
                        gsm(question).unwrap_or_default(),
                        gsm(answer).unwrap_or_else(|| "-".to_string()),
                    )
                })
                .collect(),
            complete: summary.complete,
            url: gsm(&summary.transcript_url).unwrap_or_default(),
        }
    }

    fn longest_value(&self) -> usize {
        self.answers
            .iter()
            .map(|(_, answer)| answer)
            .chain(&self.reason)
            .map(|text| text.chars().count())
            .max()
            .unwrap_or(0)
    }

    /// The render with the largest cap on the reason and answers (at least
    /// [`SMS_MIN_VALUE_CAP`]) that fits, if any does. Fitting is monotonic in the cap except
    /// just below a value's length, where the "..." makes it longer: the answer is checked.
    fn render_with_largest_cap(&self, shortening: &SmsShortening) -> Option<String> {
        let (mut low, mut high) = (
            SMS_MIN_VALUE_CAP,
            self.longest_value().max(SMS_MIN_VALUE_CAP),
        );
        let mut best = None;
        while low <= high {
            let cap = low + (high - low) / 2;
            let text = self.render(&SmsShortening {
                value_cap: Some(cap),
                ..*shortening
            });
            if fits_sms(&text) {
                best = Some(text);
                low = cap + 1;
            } else {
                high = cap - 1;
            }
        }
        best
    }

    fn render(&self, shortening: &SmsShortening) -> String {
        let cut = |text: &str, cap: Option<usize>| match cap {
            Some(cap) => shorten(text, cap, SMS_ELLIPSIS),
            None => text.to_string(),
        };
        let mut lines = Vec::new();
        let kind = if self.urgent {
            "URGENT lead"
        } else {
            "New lead"
        };
        lines.push(if self.profile.is_empty() {
            kind.to_string()
        } else {
            format!("{kind} for {}", cut(&self.profile, shortening.head_cap))
        });
        lines.push(match &self.name {
            Some(name) => format!("{} {}", cut(name, shortening.head_cap), self.number),
            None => self.number.clone(),
        });
        lines.push(format!("Missed {}", self.when));
        if let Some(reason) = &self.reason {
            lines.push(format!("Reason: {}", cut(reason, shortening.value_cap)));
        }
        let kept = shortening
            .answers_kept
            .unwrap_or(self.answers.len())
            .min(self.answers.len());
        for (question, answer) in self.answers.iter().take(kept) {
            let answer = cut(answer, shortening.value_cap);
            if question.is_empty() {
                lines.push(answer);
            } else {
                lines.push(format!("{}: {answer}", cut(question, shortening.label_cap)));
            }
        }
        match self.answers.len() - kept {
            0 => {}
            1 => lines.push("+1 more answer on the link".to_string()),
            left => lines.push(format!("+{left} more answers on the link")),
        }
        lines.push(
            if self.complete {
                "Complete"
            } else {
                "Incomplete"
            }
            .to_string(),
        );
        if !self.url.is_empty() {
            lines.push(self.url.clone());
        }
        lines.join("\n")
    }
}

fn fits_sms(text: &str) -> bool {
    gsm7::is_gsm7(text) && gsm7::part_count(text) <= MAX_SMS_PARTS
}

/// Last resort: the start of `text` and the link, cut so they fit.
fn cut_to_fit(text: &str, url: &str) -> String {
    let head = text.strip_suffix(url).unwrap_or(text);
    let mut chars: Vec<char> = head.chars().collect();
    while !chars.is_empty() {
        let candidate: String = chars.iter().collect::<String>() + url;
        if fits_sms(&candidate) {
            return candidate;
        }
        chars.pop();
    }
    let mut url_chars: Vec<char> = url.chars().collect();
    loop {
        let candidate: String = url_chars.iter().collect();
        if fits_sms(&candidate) {
            return candidate;
        }
        if url_chars.pop().is_none() {
            return String::new();
        }
    }
}

pub use crate::codec::gsm7::to_gsm7;

/// GSM 7-bit checks (3GPP TS 23.038 §6.2.1), from the SMS codec the outbox sends with.
mod gsm7 {
    pub use crate::codec::gsm7::is_gsm7;

    /// How many SMS parts the text takes, as the outbox will cut it.
    pub fn part_count(text: &str) -> usize {
        crate::codec::pdu::segment(text).parts.len()
    }
}

#[cfg(test)]
pub(crate) mod tests {
    use chrono::TimeZone;
    use proptest::prelude::*;

    use super::*;

    fn utc(year: i32, month: u32, day: u32, hour: u32, minute: u32) -> DateTime<Utc> {
        Utc.with_ymd_and_hms(year, month, day, hour, minute, 0)
            .unwrap()
    }

    fn number(text: &str) -> E164 {
        E164::parse(text).unwrap()
    }

    pub(crate) fn dave() -> LeadSummary {
        LeadSummary {
            lead_id: 42,
            profile: "Acme Plumbing".to_string(),
            caller: number("07700 900123"),
            caller_name: Some("Dave Smith".to_string()),
            // 14:05 BST.
            missed_at: utc(2025, 6, 3, 13, 5),
            called_number: Some(number("020 7946 0018")),
            reason: Some("boiler leaking".to_string()),
            answers: vec![
                ("What's your name?".to_string(), "Dave Smith".to_string()),
                (
                    "What's the problem?".to_string(),
                    "boiler leaking".to_string(),
                ),
                ("Postcode?".to_string(), "SW1A 1AA".to_string()),
            ],
            complete: true,
            urgent: false,
            transcript_url: "https://box.example/t/abc.def".to_string(),
        }
    }

    pub(crate) fn now() -> DateTime<Utc> {
        utc(2025, 6, 3, 13, 17)
    }

    /// Dave texts again after his lead went out, two minutes before [`now`].
    pub(crate) fn dave_replied() -> ReplySummary {
        ReplySummary {
            lead: dave(),
            reply_id: 57,
            text: "Can you come after 3?\nThe side gate is open".to_string(),
            received_at: utc(2025, 6, 3, 13, 15),
        }
    }

    #[test]
    fn reply_subject_and_text() {
        let reply = dave_replied();
        assert_eq!(
            reply.subject(),
            "Lead 42: Dave Smith replied again — Can you come after 3? The side gate is open"
        );
        let text = reply.text(now());
        let expected = "Dave Smith replied again about lead 42 for Acme Plumbing\n\
             \n\
             Caller: Dave Smith\n\
             Number: 07700 900123 (+447700900123)\n\
             Call back: tel:+447700900123\n\
             Received: Tue 3 Jun 2025 at 14:15 BST (2 minutes ago)\n\
             \n\
             Their message:\n  Can you come after 3?\n  The side gate is open\n\
             \n\
             Lead 42: missed call Tue 3 Jun 2025 at 14:05 BST, boiler leaking\n\
             Transcript: https://box.example/t/abc.def\n";
        assert_eq!(text, expected);
        let anonymous = ReplySummary {
            lead: LeadSummary {
                caller_name: None,
                ..dave()
            },
            text: "  ".to_string(),
            ..dave_replied()
        };
        assert_eq!(anonymous.subject(), "Lead 42: 07700 900123 replied again");
        assert!(anonymous.text(now()).contains("(an empty text)"));
    }

    #[test]
    fn reply_html_escapes_what_the_caller_wrote() {
        let reply = ReplySummary {
            text: "<script>alert(1)</script> & \"more\"".to_string(),
            ..dave_replied()
        };
        let html = reply.html(now());
        assert!(!html.contains("<script>"), "{html}");
        assert!(html.contains("&lt;script&gt;alert(1)&lt;/script&gt; &amp; &quot;more&quot;"));
        assert!(html.contains("Dave Smith replied again about lead 42 for Acme Plumbing"));
        assert!(html.contains("<a href=\"tel:+447700900123\""));
        assert!(html.contains("<a href=\"https://box.example/t/abc.def\""));
        let lines = dave_replied().html(now());
        assert!(
            lines.contains("Can you come after 3?<br>\nThe side gate is open"),
            "{lines}"
        );
    }

    #[test]
    fn reply_sms() {
        assert_eq!(
            dave_replied().sms(now()),
            "Lead 42: Dave Smith 07700 900123 replied 14:15:\n\
             Can you come after 3? The side gate is open\n\
             https://box.example/t/abc.def"
        );
        // Another day: the date too. Long and not GSM-7: cut to two parts, the link kept.
        let long = ReplySummary {
            text: "Zoë says “no” – ".repeat(40),
            received_at: utc(2025, 6, 1, 9, 0),
            ..dave_replied()
        };
        let sms = long.sms(now());
        assert!(fits_sms(&sms), "{sms}");
        assert!(
            sms.starts_with(
                "Lead 42: Dave Smith 07700 900123 replied 1 Jun 10:00:\nZoe says \"no\" - "
            ),
            "{sms}"
        );
        assert!(sms.ends_with("...\nhttps://box.example/t/abc.def"), "{sms}");
        assert_eq!(gsm7::part_count(&sms), 2);
    }

    #[test]
    fn reply_json_fields() {
        assert_eq!(
            dave_replied().json(),
            json!({
                "event": "lead.reply",
                "lead_id": 42,
                "profile": "Acme Plumbing",
                "caller": {"number": "+447700900123", "national": "07700 900123", "name": "Dave Smith"},
                "reply": {
                    "id": 57,
                    "text": "Can you come after 3?\nThe side gate is open",
                    "received_at": "2025-06-03T13:15:00Z"
                },
                "transcript_url": "https://box.example/t/abc.def"
            })
        );
    }

    #[test]
    fn subject() {
        assert_eq!(
            dave().subject(),
            "New lead: Dave Smith, 07700 900123 — boiler leaking"
        );
        let anonymous = LeadSummary {
            caller_name: None,
            reason: None,
            urgent: true,
            ..dave()
        };
        assert_eq!(anonymous.subject(), "Urgent lead: 07700 900123");
    }

    #[test]
    fn subject_is_one_short_line() {
        let long = LeadSummary {
            caller_name: Some("Dave\r\nBcc: victim@example.com".to_string()),
            reason: Some("é".repeat(300)),
            ..dave()
        };
        let subject = long.subject();
        assert!(!subject.contains(['\r', '\n']), "{subject}");
        assert!(subject.starts_with("New lead: Dave Bcc: victim@example.com, 07700 900123 — é"));
        assert_eq!(subject.chars().count(), MAX_SUBJECT_CHARS);
        assert!(subject.ends_with("é…"));
    }

    #[test]
    fn text() {
        let text = dave().text(now());
        let expected = "New lead for Acme Plumbing\n\
             \n\
             Caller: Dave Smith\n\
             Number: 07700 900123 (+447700900123)\n\
             Call back: tel:+447700900123\n\
             Missed call: Tue 3 Jun 2025 at 14:05 BST (12 minutes ago)\n\
             Number called: 020 7946 0018\n\
             Reason: boiler leaking\n\
             \n\
             Answers:\n\
             - What's your name?\n  Dave Smith\n\
             - What's the problem?\n  boiler leaking\n\
             - Postcode?\n  SW1A 1AA\n\
             \n\
             Conversation complete\n\
             \n\
             Transcript: https://box.example/t/abc.def\n";
        assert_eq!(text, expected);
    }

    #[test]
    fn text_incomplete_urgent_and_unknowns() {
        let lead = LeadSummary {
            caller_name: Some("  ".to_string()),
            called_number: None,
            reason: None,
            answers: vec![("Name?".to_string(), "line one\r\nline two\u{7}".to_string())],
            complete: false,
            urgent: true,
            ..dave()
        };
        let text = lead.text(now());
        assert!(
            text.starts_with("URGENT\nNew lead for Acme Plumbing\n"),
            "{text}"
        );
        assert!(text.contains("Caller: (name not given)\n"));
        assert!(!text.contains("Number called"));
        assert!(!text.contains("Reason"));
        assert!(text.contains("- Name?\n  line one\n  line two\n"), "{text}");
        assert!(text.contains("Incomplete: the caller stopped answering\n"));
        assert!(!text.contains('\u{7}'));
    }

    #[test]
    fn winter_time_is_gmt() {
        let lead = LeadSummary {
            missed_at: utc(2025, 1, 10, 9, 30),
            ..dave()
        };
        let text = lead.text(utc(2025, 1, 10, 11, 45));
        assert!(
            text.contains("Missed call: Fri 10 Jan 2025 at 09:30 GMT (2 hours ago)\n"),
            "{text}"
        );
    }

    #[test]
    fn how_long_ago() {
        let at = utc(2025, 6, 3, 13, 5); // 14:05 BST
        assert_eq!(ago(at, at), "just now");
        assert_eq!(ago(at, utc(2025, 6, 3, 13, 4)), "just now");
        assert_eq!(ago(at, at + chrono::Duration::seconds(59)), "just now");
        assert_eq!(ago(at, utc(2025, 6, 3, 13, 6)), "1 minute ago");
        assert_eq!(ago(at, utc(2025, 6, 3, 13, 17)), "12 minutes ago");
        assert_eq!(ago(at, utc(2025, 6, 3, 14, 5)), "1 hour ago");
        assert_eq!(ago(at, utc(2025, 6, 3, 15, 30)), "2 hours ago");
        // 00:30 BST next day: a different day in London although 10 hours later.
        assert_eq!(ago(at, utc(2025, 6, 3, 23, 30)), "yesterday at 14:05");
        assert_eq!(ago(at, utc(2025, 6, 4, 20, 0)), "yesterday at 14:05");
        assert_eq!(ago(at, utc(2025, 6, 6, 9, 0)), "3 days ago");
        assert_eq!(ago(at, utc(2025, 7, 1, 9, 0)), "on 3 Jun 2025");
    }

    #[test]
    fn html_escapes_caller_text() {
        let lead = LeadSummary {
            caller_name: Some("<script>alert('x')</script>".to_string()),
            reason: Some("\"quoted\" & <b>bold</b>".to_string()),
            answers: vec![(
                "Q<1>".to_string(),
                "a\"><img src=x onerror=alert(1)>".to_string(),
            )],
            ..dave()
        };
        let html = lead.html(now());
        assert!(!html.contains("<script>"));
        assert!(!html.contains("<img"));
        assert!(!html.contains("<b>"));
        assert!(html.contains("&lt;script&gt;alert(&#39;x&#39;)&lt;/script&gt;"));
        assert!(html.contains("&quot;quoted&quot; &amp; &lt;b&gt;bold&lt;/b&gt;"));
        assert!(html.contains("Q&lt;1&gt;"));
        assert!(html.contains("a&quot;&gt;&lt;img src=x onerror=alert(1)&gt;"));
    }

    #[test]
    fn html_content() {
        let html = dave().html(now());
        assert!(html.starts_with("<!DOCTYPE html>"));
        assert!(html.contains("<a href=\"tel:+447700900123\""));
        assert!(html.contains(">07700 900123</a> (+447700900123)"));
        assert!(html.contains("<a href=\"https://box.example/t/abc.def\""));
        assert!(html.contains("Tue 3 Jun 2025 at 14:05 BST (12 minutes ago)"));
        assert!(html.contains("020 7946 0018"));
        assert!(html.contains("boiler leaking"));
        assert!(html.contains("SW1A 1AA"));
        assert!(html.contains("Conversation complete"));
        assert!(!html.contains("URGENT"));
        assert!(!html.contains("<link"));
        assert!(!html.contains("<img"));
        assert!(!html.contains("<style"));
        assert!(!html.contains("src="));
    }

    #[test]
    fn html_links_only_web_transcripts() {
        let lead = LeadSummary {
            transcript_url: "javascript:alert(1)".to_string(),
            ..dave()
        };
        let html = lead.html(now());
        assert!(!html.contains("href=\"javascript"));
        assert!(html.contains("Transcript: javascript:alert(1)"));
    }

    #[test]
    fn escape() {
        assert_eq!(
            escape_html("<a href=\"x\">'&'</a>"),
            "&lt;a href=&quot;x&quot;&gt;&#39;&amp;&#39;&lt;/a&gt;"
        );
        assert_eq!(escape_html("plain £ text"), "plain £ text");
    }

    #[test]
    fn sms_short() {
        let sms = dave().sms(now());
        assert_eq!(
            sms,
            "New lead for Acme Plumbing\n\
             Dave Smith 07700 900123\n\
             Missed 14:05, 12 minutes ago\n\
             Reason: boiler leaking\n\
             What's your name?: Dave Smith\n\
             What's the problem?: boiler leaking\n\
             Postcode?: SW1A 1AA\n\
             Complete\n\
             https://box.example/t/abc.def"
        );
        assert!(fits_sms(&sms));
    }

    #[test]
    fn sms_transliterates() {
        let lead = LeadSummary {
            caller_name: Some("Zoë O’Brien".to_string()),
            reason: Some("“leak” – urgent… 😀 café".to_string()),
            answers: vec![],
            urgent: true,
            missed_at: utc(2025, 6, 2, 13, 5),
            ..dave()
        };
        let sms = lead.sms(now());
        assert!(gsm7::is_gsm7(&sms), "{sms}");
        assert!(sms.starts_with("URGENT lead for Acme Plumbing\n"));
        assert!(sms.contains("Zoe O'Brien 07700 900123\n"), "{sms}");
        assert!(sms.contains("Missed yesterday at 14:05\n"), "{sms}");
        assert!(
            sms.contains("Reason: \"leak\" - urgent... ? café\n"),
            "{sms}"
        );
    }

    #[test]
    fn long_sms_cuts_answers_and_keeps_the_link() {
        let lead = LeadSummary {
            reason: Some("The boiler in the loft is leaking ".repeat(5)),
            answers: (1..=4)
                .map(|index| {
                    (
                        format!("Question number {index} which is long"),
                        format!("answer {index} ").repeat(20),
                    )
                })
                .collect(),
            transcript_url: format!("https://box.example/t/{}", "x".repeat(67)),
            ..dave()
        };
        let sms = lead.sms(now());
        assert!(fits_sms(&sms), "{sms}");
        assert!(sms.ends_with(&lead.transcript_url), "{sms}");
        assert!(sms.contains("..."), "{sms}");
        assert!(!sms.contains('…'));
        assert!(sms.contains("Question number 1..."), "{sms}");
        assert!(sms.contains("Reason: The boiler"), "{sms}");
        assert!(sms.starts_with("New lead for Acme Plumbing\nDave Smith 07700 900123\n"));
    }

    #[test]
    fn very_many_answers_are_left_out() {
        let lead = LeadSummary {
            answers: (1..=30)
                .map(|index| (format!("Q{index}"), "x".repeat(50)))
                .collect(),
            ..dave()
        };
        let sms = lead.sms(now());
        assert!(fits_sms(&sms), "{sms}");
        assert!(sms.contains("more answers on the link"), "{sms}");
        assert!(sms.ends_with("https://box.example/t/abc.def"));
    }

    #[test]
    fn absurd_names_still_fit() {
        let lead = LeadSummary {
            profile: "P".repeat(400),
            caller_name: Some("N".repeat(400)),
            ..dave()
        };
        let sms = lead.sms(now());
        assert!(fits_sms(&sms), "{sms}");
        assert!(sms.ends_with("https://box.example/t/abc.def"));
        let huge_url = LeadSummary {
            transcript_url: format!("https://box.example/t/{}", "{".repeat(400)),
            ..dave()
        };
        assert!(fits_sms(&huge_url.sms(now())));
    }

    #[test]
    fn json_fields() {
        let value = dave().json();
        assert_eq!(
            value,
            json!({
                "event": "lead",
                "lead_id": 42,
                "profile": "Acme Plumbing",
                "caller": {"number": "+447700900123", "national": "07700 900123", "name": "Dave Smith"},
                "missed_at": "2025-06-03T13:05:00Z",
                "called_number": "+442079460018",
                "reason": "boiler leaking",
                "answers": [
                    {"question": "What's your name?", "answer": "Dave Smith"},
                    {"question": "What's the problem?", "answer": "boiler leaking"},
                    {"question": "Postcode?", "answer": "SW1A 1AA"}
                ],
                "complete": true,
                "urgent": false,
                "transcript_url": "https://box.example/t/abc.def"
            })
        );
        let bare = LeadSummary {
            caller_name: None,
            called_number: None,
            reason: None,
            answers: vec![],
            ..dave()
        };
        let value = bare.json();
        assert_eq!(value["caller"]["name"], Value::Null);
        assert_eq!(value["called_number"], Value::Null);
        assert_eq!(value["reason"], Value::Null);
        assert_eq!(value["answers"], json!([]));
    }

    proptest! {
        #[test]
        fn sms_always_fits_and_subject_is_one_line(
            name in proptest::option::of(".{0,200}"),
            reason in proptest::option::of(".{0,400}"),
            answers in proptest::collection::vec((".{0,60}", ".{0,300}"), 0..8),
            profile in ".{0,80}",
            minutes in 0i64..20_000,
        ) {
            let lead = LeadSummary {
                profile,
                caller_name: name,
                reason,
                answers,
                ..dave()
            };
            let now = lead.missed_at + chrono::Duration::minutes(minutes);
            let sms = lead.sms(now);
            prop_assert!(fits_sms(&sms), "{}", sms);
            prop_assert!(sms.ends_with("https://box.example/t/abc.def"), "{}", sms);
            let subject = lead.subject();
            prop_assert!(!subject.contains(|c: char| c.is_control()), "{:?}", subject);
            prop_assert!(subject.chars().count() <= MAX_SUBJECT_CHARS);
            let html = lead.html(now);
            prop_assert!(!html.contains("<script"));
            let _ = lead.text(now);
        }

        #[test]
        fn reply_sms_always_fits_and_keeps_the_link(
            name in proptest::option::of(".{0,200}"),
            text in ".{0,800}",
            minutes in 0i64..20_000,
        ) {
            let reply = ReplySummary {
                lead: LeadSummary { caller_name: name, ..dave() },
                text,
                ..dave_replied()
            };
            let now = reply.received_at + chrono::Duration::minutes(minutes);
            let sms = reply.sms(now);
            prop_assert!(fits_sms(&sms), "{}", sms);
            prop_assert!(sms.ends_with("https://box.example/t/abc.def"), "{}", sms);
            let subject = reply.subject();
            prop_assert!(!subject.contains(|c: char| c.is_control()), "{:?}", subject);
            prop_assert!(subject.chars().count() <= MAX_SUBJECT_CHARS);
            prop_assert!(!reply.html(now).contains("<script"));
        }
    }
}
