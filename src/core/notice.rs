//! What a notice that is not a lead says: a missed caller who got no text (to call back,
//! gathered several calls to one notice) and a SIM or modem that needs a person, each as an
//! email's subject, text and HTML and a webhook's JSON. Pure: the times are passed in, already
//! in words.

use serde::{Deserialize, Serialize};
use serde_json::{Value, json};

/// The webhook event of a call-back notice.
pub const CALL_BACK_EVENT: &str = "call.missed_not_texted";
/// The webhook event of a modem alert.
pub const ALERT_EVENT: &str = "modem.alert";
/// The `event` of the morning summary's JSON, kept in its notice's row (the summary goes by email
/// and SMS only, so no webhook carries it yet).
pub const SUMMARY_EVENT: &str = "summary.daily";

/// What a notice is about, as the store keeps it.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum NoticeKind {
    CallBack,
    Alert,
    Summary,
}

impl NoticeKind {
    pub fn as_str(self) -> &'static str {
        match self {
            NoticeKind::CallBack => "call_back",
            NoticeKind::Alert => "alert",
            NoticeKind::Summary => "summary",
        }
    }

    pub fn parse(text: &str) -> Option<NoticeKind> {
        match text {
            "call_back" => Some(NoticeKind::CallBack),
            "alert" => Some(NoticeKind::Alert),
            "summary" => Some(NoticeKind::Summary),
            _ => None,
        }
    }
}

impl std::fmt::Display for NoticeKind {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(self.as_str())
    }
}

/// A notice as each channel shows it.
#[derive(Debug, Clone, PartialEq)]
pub struct Rendered {
    pub subject: String,
    pub text: String,
    pub html: Option<String>,
    /// The webhook's body (the shell adds the box's name).
    pub json: Value,
}

/// One missed call that got no text.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct UntextedCall {
    /// E.164, `None` when withheld.
    pub number: Option<String>,
    /// As the owner reads it: "020 7946 0001", or "a withheld number".
    pub shown: String,
    /// When, RFC 3339 in UTC.
    pub at: String,
    /// When, UK local time of day ("10:01").
    pub local_time: String,
    /// Why it got no text, in words ("not mobile").
    pub why: String,
}

impl UntextedCall {
    /// The line the SMS and the email give it: "020 7946 0001 at 10:00 (not mobile)".
    pub fn line(&self) -> String {
        format!("{} at {} ({})", self.shown, self.local_time, self.why)
    }
}

/// The call-back notice for `calls` (oldest first) to `business`'s recipient.
pub fn call_back(profile: &str, business: &str, calls: &[UntextedCall]) -> Rendered {
    let subject = match calls {
        [one] => format!("{business}: call back {}", one.shown),
        _ => format!("{business}: call back {} missed callers", calls.len()),
    };
    let mut text = format!(
        "{business}: missed, not texted - please call back:\n\n",
        business = business
    );
    for call in calls {
        text.push_str(&format!("  {}\n", call.line()));
    }
    text.push_str(
        "\nThese callers got no text from the box (a landline, a number from abroad, an \
         opted-out or withheld number, or over a limit), so only a call back reaches them. \
         Mark each one called back on the dashboard's home page.\n",
    );
    let mut html = format!(
        "<p><strong>{}</strong>: missed, not texted &ndash; please call back:</p>\n<ul>\n",
        escape_html(business)
    );
    for call in calls {
        let who = match &call.number {
            Some(number) => format!(
                "<a href=\"tel:{}\">{}</a>",
                escape_html(number),
                escape_html(&call.shown)
            ),
            None => escape_html(&call.shown),
        };
        html.push_str(&format!(
            "<li>{who} at {} ({})</li>\n",
            escape_html(&call.local_time),
            escape_html(&call.why)
        ));
    }
    html.push_str(
        "</ul>\n<p>These callers got no text from the box, so only a call back reaches them. \
         Mark each one called back on the dashboard's home page.</p>\n",
    );
    Rendered {
        subject,
        text,
        html: Some(html),
        json: json!({
            "event": CALL_BACK_EVENT,
            "profile": profile,
            "business": business,
            "calls": calls,
        }),
    }
}

/// The calls a call-back notice's JSON holds, to add another while it gathers.
pub fn calls_of(json: &Value) -> Vec<UntextedCall> {
    json.get("calls")
        .cloned()
        .and_then(|calls| serde_json::from_value(calls).ok())
        .unwrap_or_default()
}

/// One fault of a modem, to tell.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ModemAlert<'a> {
    /// The businesses the modem serves, by name.
    pub business: &'a str,
    pub modem: &'a str,
    /// The fault's kind as stored ("refused", "off_network", ...).
    pub kind: &'a str,
    /// What happened and what to do, e.g. "the network refuses its texts (no credit). Top up
    /// the SIM".
    pub what: &'a str,
    /// When, RFC 3339 in UTC.
    pub at: &'a str,
    /// When it was noticed (raised), in UK local words ("Wed 3 Jun 10:00").
    pub local_time: &'a str,
}

/// The alert as an email and a webhook's JSON.
pub fn alert(alert: &ModemAlert<'_>) -> Rendered {
    let subject = format!(
        "textback ({}): SIM {} needs attention",
        alert.business, alert.modem
    );
    let text = format!(
        "textback ({business}): SIM {modem} {what}\n\nNoticed {when}. Until it is fixed, texts \
         to callers may not go out from this SIM. `textback doctor` on the box shows every \
         open fault; the dashboard's status page shows it too.\n",
        business = alert.business,
        modem = alert.modem,
        what = alert.what,
        when = alert.local_time,
    );
    let html = format!(
        "<p><strong>textback ({})</strong>: SIM {} {}</p>\n<p>Noticed {}. Until it is fixed, \
         texts to callers may not go out from this SIM. <code>textback doctor</code> on the box \
         shows every open fault; the dashboard's status page shows it too.</p>\n",
        escape_html(alert.business),
        escape_html(alert.modem),
        escape_html(alert.what),
        escape_html(alert.local_time)
    );
    Rendered {
        subject,
        text,
        html: Some(html),
        json: json!({
            "event": ALERT_EVENT,
            "business": alert.business,
            "modem": alert.modem,
            "kind": alert.kind,
            "text": alert.what,
            "at": alert.at,
        }),
    }
}

/// `text` safe inside HTML text and attribute values.
pub fn escape_html(text: &str) -> String {
    let mut out = String::with_capacity(text.len());
    for character in text.chars() {
        match character {
            '&' => out.push_str("&amp;"),
            '<' => out.push_str("&lt;"),
            '>' => out.push_str("&gt;"),
            '"' => out.push_str("&quot;"),
            '\'' => out.push_str("&#39;"),
            other => out.push(other),
        }
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    fn landline() -> UntextedCall {
        UntextedCall {
            number: Some("+442079460001".to_string()),
            shown: "020 7946 0001".to_string(),
            at: "2026-06-03T09:00:00Z".to_string(),
            local_time: "10:00".to_string(),
            why: "not mobile".to_string(),
        }
    }

    fn withheld() -> UntextedCall {
        UntextedCall {
            number: None,
            shown: "a withheld number".to_string(),
            at: "2026-06-03T09:01:00Z".to_string(),
            local_time: "10:01".to_string(),
            why: "withheld".to_string(),
        }
    }

    #[test]
    fn one_call_back_names_the_caller() {
        let notice = call_back("plumbing", "Brightwater <Plumbing>", &[landline()]);
        assert_eq!(
            notice.subject,
            "Brightwater <Plumbing>: call back 020 7946 0001"
        );
        assert!(
            notice
                .text
                .contains("  020 7946 0001 at 10:00 (not mobile)\n"),
            "{}",
            notice.text
        );
        let html = notice.html.unwrap();
        assert!(html.contains("Brightwater &lt;Plumbing&gt;"), "{html}");
        assert!(
            html.contains("<a href=\"tel:+442079460001\">020 7946 0001</a>"),
            "{html}"
        );
        assert_eq!(notice.json["event"], CALL_BACK_EVENT);
        assert_eq!(notice.json["calls"][0]["number"], "+442079460001");
    }

    #[test]
    fn gathered_calls_read_back_from_the_json_and_render_as_one() {
        let first = call_back("plumbing", "Brightwater", &[landline()]);
        let mut calls = calls_of(&first.json);
        assert_eq!(calls, [landline()]);
        calls.push(withheld());
        let both = call_back("plumbing", "Brightwater", &calls);
        assert_eq!(both.subject, "Brightwater: call back 2 missed callers");
        let lines: Vec<&str> = both.text.lines().filter(|l| l.starts_with("  ")).collect();
        assert_eq!(
            lines,
            [
                "  020 7946 0001 at 10:00 (not mobile)",
                "  a withheld number at 10:01 (withheld)"
            ]
        );
        assert_eq!(both.json["calls"].as_array().map(Vec::len), Some(2));
        assert_eq!(both.json["calls"][1]["number"], Value::Null);
        // A body that is not a notice's reads as no calls, not a panic.
        assert!(calls_of(&json!({"calls": "no"})).is_empty());
    }

    #[test]
    fn an_alert_says_what_to_do() {
        let notice = alert(&ModemAlert {
            business: "Brightwater",
            modem: "main",
            kind: "refused",
            what: "the network refuses its texts (no credit). Top up the SIM",
            at: "2026-06-03T09:00:00Z",
            local_time: "Wed 3 Jun 10:00",
        });
        assert_eq!(
            notice.subject,
            "textback (Brightwater): SIM main needs attention"
        );
        assert!(notice.text.contains("Top up the SIM"), "{}", notice.text);
        assert!(notice.text.contains("textback doctor"), "{}", notice.text);
        assert_eq!(notice.json["event"], ALERT_EVENT);
        assert_eq!(notice.json["kind"], "refused");
        assert!(NoticeKind::parse("alert") == Some(NoticeKind::Alert));
        assert!(NoticeKind::parse("lead").is_none());
    }
}
