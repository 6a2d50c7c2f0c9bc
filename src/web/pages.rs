//! The dashboard's HTML, written by hand: a handful of small pages, each escaped at the point a
//! value is written, with one inline stylesheet (no assets from the internet, no JavaScript; the
//! Content-Security-Policy allows that stylesheet by its hash, [`style_hash`]).
//! Also the JSON shapes of the API and the Prometheus text of /metrics.

use std::fmt::Write;

use crate::config::Config;
use crate::domain::{
    CallDecision, DeliveryState, Direction, MessageState, ModemId, RegistrationState,
};
use crate::leads::summary::{ago, escape_html as e};
use crate::modem::ModemState;
use crate::store::{
    CallRow, DeliveryRow, LeadDetail, LeadRow, MessageRow, OptOutRow, SipAccountRow,
};
use crate::time_text::{format_clock, format_time};

const STYLE: &str = "body{font:16px/1.45 system-ui,sans-serif;margin:0;color:#1b1b1b;background:#f6f6f4}\
header{background:#0f3d3e;color:#fff;padding:.6em 1em}header a{color:#fff;margin-right:1em;text-decoration:none}\
header form{display:inline}header button{background:none;border:1px solid #fff;color:#fff;border-radius:4px}\
main{padding:1em;max-width:60em;margin:auto}table{border-collapse:collapse;width:100%;background:#fff}\
td,th{padding:.4em;border-bottom:1px solid #ddd;text-align:left;vertical-align:top}\
.in{background:#eef6ff}.out{background:#f4fff0}.bad{color:#a40000}.ok{color:#1b6e1b}.muted{color:#666}\
input,select,button{font:inherit;padding:.3em}pre{white-space:pre-wrap;background:#fff;padding:1em}\
.card{background:#fff;padding:1em;margin-bottom:1em;border-radius:6px}\
@media(max-width:40em){td,th{display:block;border:0}tr{border-bottom:1px solid #ccc;display:block}tr.head{display:none}}";

/// The stylesheet's CSP hash source (`sha256-<base64>`), so the policy allows this one inline
/// stylesheet and no other inline style.
pub(crate) fn style_hash() -> String {
    use base64::Engine;
    use sha2::Digest;
    let digest = sha2::Sha256::digest(STYLE.as_bytes());
    format!(
        "sha256-{}",
        base64::engine::general_purpose::STANDARD.encode(digest)
    )
}

fn layout(title: &str, csrf: Option<&str>, body: &str) -> String {
    let nav = match csrf {
        Some(csrf) => format!(
            "<header><a href=\"/\">Leads</a><a href=\"/calls\">Calls</a><a href=\"/status\">Status</a>\
             <a href=\"/opt-outs\">Opt-outs</a><a href=\"/config\">Config</a>\
             <form method=\"post\" action=\"/logout\"><input type=\"hidden\" name=\"csrf\" value=\"{}\">\
             <button>Log out</button></form></header>",
            e(csrf)
        ),
        None => "<header>textback</header>".to_string(),
    };
    format!(
        "<!doctype html><html lang=\"en-GB\"><head><meta charset=\"utf-8\">\
         <meta name=\"viewport\" content=\"width=device-width,initial-scale=1\">\
         <meta name=\"referrer\" content=\"no-referrer\"><title>{} · textback</title>\
         <style>{STYLE}</style></head><body>{nav}<main>{body}</main></body></html>",
        e(title)
    )
}

pub fn message_page(title: &str, text: &str) -> String {
    layout(
        title,
        None,
        &format!("<h1>{}</h1><p>{}</p>", e(title), e(text)),
    )
}

pub fn login_page(nonce: &str, has_password: bool, problem: Option<&str>) -> String {
    let problem = problem
        .map(|p| format!("<p class=\"bad\" id=\"problem\">{}</p>", e(p)))
        .unwrap_or_default();
    let body = if has_password {
        format!(
            "<h1>Log in</h1>{problem}<form method=\"post\" action=\"/login\" class=\"card\">\
             <input type=\"hidden\" name=\"csrf\" value=\"{}\">\
             <label>Password <input type=\"password\" name=\"password\" id=\"password\" autofocus></label> \
             <button id=\"login\">Log in</button></form>",
            e(nonce)
        )
    } else {
        "<h1>No password yet</h1><p>Set one on the box: <code>sudo -u textback textback dashboard set-password</code></p>".to_string()
    };
    layout("Log in", None, &body)
}

fn lead_name(lead: &LeadRow) -> String {
    lead.answers
        .iter()
        .find(|(q, _)| q == "name")
        .map(|(_, a)| a.clone())
        .unwrap_or_else(|| "(no name given)".to_string())
}

fn national(number: &str) -> String {
    crate::domain::E164::parse(number)
        .map(|n| n.national())
        .unwrap_or_else(|_| number.to_string())
}

pub fn leads_page(
    csrf: &str,
    leads: &[LeadRow],
    profiles: &[(String, String)],
    profile: Option<&str>,
    state: Option<&str>,
    search: Option<&str>,
) -> String {
    let mut body = String::from("<h1>Leads</h1><form method=\"get\" action=\"/\" class=\"card\">");
    body.push_str("<select name=\"profile\"><option value=\"\">All businesses</option>");
    for (id, name) in profiles {
        let selected = if profile == Some(id.as_str()) {
            " selected"
        } else {
            ""
        };
        let _ = write!(
            body,
            "<option value=\"{}\"{selected}>{}</option>",
            e(id),
            e(name)
        );
    }
    body.push_str("</select> <select name=\"state\">");
    for (value, label) in [
        ("", "Any"),
        ("complete", "Complete"),
        ("incomplete", "Incomplete"),
    ] {
        let selected = if state.unwrap_or("") == value {
            " selected"
        } else {
            ""
        };
        let _ = write!(body, "<option value=\"{value}\"{selected}>{label}</option>");
    }
    let _ = write!(
        body,
        "</select> <input name=\"q\" placeholder=\"Number or name\" value=\"{}\"> <button>Filter</button></form>",
        e(search.unwrap_or(""))
    );
    if leads.is_empty() {
        body.push_str("<p class=\"muted\">No leads match.</p>");
    } else {
        body.push_str("<table id=\"leads\"><tr class=\"head\"><th>When</th><th>Caller</th><th>Number</th><th>Business</th><th>State</th></tr>");
        for lead in leads {
            let _ = write!(
                body,
                "<tr><td>{}</td><td><a href=\"/leads/{}\">{}</a></td><td>{}</td><td>{}</td><td>{}</td></tr>",
                e(&format_time(lead.created_ms)),
                lead.id,
                e(&lead_name(lead)),
                e(&national(&lead.caller)),
                e(&lead.profile),
                if lead.complete {
                    "complete"
                } else {
                    "incomplete"
                }
            );
        }
        body.push_str("</table>");
    }
    layout("Leads", Some(csrf), &body)
}

/// A lead with everything its page shows.
pub struct LeadView {
    /// The business's name (the profile's, as callers know it).
    pub business: String,
    pub detail: LeadDetail,
    pub messages: Vec<MessageRow>,
    pub deliveries: Vec<DeliveryRow>,
    /// When the page is made, for "12 minutes ago".
    pub now: chrono::DateTime<chrono::Utc>,
}

/// The lead's page; without `csrf` it is the read-only view a transcript link opens.
pub fn lead_page(csrf: Option<&str>, view: &LeadView) -> String {
    let lead = &view.detail.lead;
    let mut body = format!(
        "<h1>Lead {}: {}</h1><div class=\"card\" id=\"summary\">",
        lead.id,
        e(&lead_name(lead))
    );
    let _ = write!(
        body,
        "<p>Number: <a href=\"tel:{}\">{}</a></p><p>Missed call: {} ({})</p><p>Business: {}</p>",
        e(&lead.caller),
        e(&national(&lead.caller)),
        e(&format_time(view.detail.missed_at_ms)),
        e(
            &chrono::DateTime::from_timestamp_millis(view.detail.missed_at_ms)
                .map(|at| ago(at, view.now))
                .unwrap_or_default()
        ),
        e(&view.business)
    );
    if let Some(called) = &view.detail.called {
        let _ = write!(body, "<p>Number called: {}</p>", e(&national(called)));
    }
    body.push_str("<table>");
    for (question, answer) in &lead.answers {
        let _ = write!(
            body,
            "<tr><th>{}</th><td>{}</td></tr>",
            e(question),
            e(answer)
        );
    }
    let _ = write!(
        body,
        "</table><p>{}</p></div>",
        if lead.complete {
            "Conversation complete"
        } else {
            "Incomplete: the caller stopped answering"
        }
    );
    body.push_str("<h2>Transcript</h2><table id=\"transcript\"><tr class=\"head\"><th>Time</th><th>From</th><th>Message</th><th>State</th></tr>");
    for message in &view.messages {
        let (class, who) = if message.direction == Direction::In {
            ("in", "Caller")
        } else {
            ("out", "textback")
        };
        let state = if message.direction == Direction::In {
            if message.state == MessageState::Waiting {
                "received; the assistant is reading it".to_string()
            } else {
                "received".to_string()
            }
        } else {
            match &message.error {
                Some(error) if message.state == MessageState::Failed => format!("failed: {error}"),
                _ => message.state.to_string(),
            }
        };
        // Inbound rows carry their id, for the notifications' "reply N" links below.
        let _ = write!(
            body,
            "<tr class=\"{class}\" id=\"m{}\"><td>{}</td><td>{who}</td><td>{}</td><td>{}</td></tr>",
            message.id,
            e(&format_clock(message.created_ms)),
            e(&message.body),
            e(&state)
        );
    }
    body.push_str("</table><h2>Notifications</h2><table id=\"deliveries\"><tr class=\"head\"><th>About</th><th>To</th><th>By</th><th>State</th></tr>");
    for delivery in &view.deliveries {
        let state = match (delivery.state, &delivery.last_error) {
            (DeliveryState::Delivered, _) => format!(
                "<span class=\"ok\">delivered {}</span>",
                e(&delivery.delivered_ms.map(format_time).unwrap_or_default())
            ),
            (DeliveryState::Failed, error) => format!(
                "<span class=\"bad\">failed after {} tries: {}</span>",
                delivery.attempts,
                e(error.as_deref().unwrap_or(""))
            ),
            (state, Some(error)) => format!("{} ({})", e(state.as_str()), e(error)),
            (state, None) => e(state.as_str()),
        };
        // The lead's summary, or a reply the caller sent after it (a row of the transcript).
        let about = match delivery.reply_id {
            None => "lead".to_string(),
            Some(reply) => format!("<a href=\"#m{reply}\">reply {reply}</a>"),
        };
        let _ = write!(
            body,
            "<tr><td>{about}</td><td>{}</td><td>{} {}</td><td>{state}</td></tr>",
            e(&delivery.recipient),
            e(delivery.channel.as_str()),
            e(&delivery.target)
        );
    }
    body.push_str("</table>");
    layout(&format!("Lead {}", lead.id), csrf, &body)
}

pub fn calls_page(csrf: &str, calls: &[CallRow]) -> String {
    let mut body = String::from(
        "<h1>Missed calls</h1><table id=\"calls\"><tr class=\"head\"><th>When</th><th>Caller</th><th>Via</th><th>What was done</th></tr>",
    );
    for call in calls {
        let caller = call
            .caller
            .as_deref()
            .map(national)
            .unwrap_or_else(|| "withheld".to_string());
        let done = if call.decision == CallDecision::Text {
            match call.conversation {
                Some(_) => "texted".to_string(),
                None => "texted".to_string(),
            }
        } else {
            format!(
                "not texted: {}",
                call.reason.as_deref().unwrap_or("no reason recorded")
            )
        };
        let _ = write!(
            body,
            "<tr><td>{}</td><td>{}</td><td>{}</td><td>{}</td></tr>",
            e(&format_time(call.at_ms)),
            e(&caller),
            e(call.source.as_str()),
            e(&done)
        );
    }
    body.push_str("</table>");
    layout("Calls", Some(csrf), &body)
}

/// A modem as the status page and the API show it.
pub struct ModemStatus {
    pub id: ModemId,
    pub state: ModemState,
    pub queued: i64,
}

pub fn status_page(
    csrf: &str,
    modems: &[ModemStatus],
    config: &Config,
    sip: &[SipAccountRow],
) -> String {
    let mut body = String::from(
        "<h1>Status</h1><h2>Modems</h2><table id=\"modems\"><tr class=\"head\"><th>Modem</th><th>State</th><th>Signal</th><th>SIM</th><th>Network</th><th>Queue</th></tr>",
    );
    for modem in modems {
        let (state, signal, sim, network) = match &modem.state {
            ModemState::Starting => (
                "starting".to_string(),
                String::new(),
                String::new(),
                String::new(),
            ),
            ModemState::Lost { reason } => (
                format!("lost: {reason}"),
                String::new(),
                String::new(),
                String::new(),
            ),
            ModemState::Ready { info } => (
                format!("ready ({} {})", info.manufacturer, info.model),
                match (info.signal_dbm(), info.signal_bars()) {
                    (Some(dbm), Some(bars)) => format!("{dbm} dBm, {bars}/5"),
                    _ => "unknown".to_string(),
                },
                format!(
                    "ICCID {}{}",
                    info.iccid,
                    match (info.sms_used, info.sms_capacity) {
                        (Some(used), Some(capacity)) => format!(", {used}/{capacity} messages"),
                        _ => String::new(),
                    }
                ),
                format!("{} {}", info.operator, info.registration_text()),
            ),
        };
        let _ = write!(
            body,
            "<tr><td>{}</td><td>{}</td><td>{}</td><td>{}</td><td>{}</td><td>{}</td></tr>",
            e(modem.id.as_str()),
            e(&state),
            e(&signal),
            e(&sim),
            e(&network),
            modem.queued
        );
    }
    body.push_str("</table><h2>SIP accounts</h2>");
    if config.sip_accounts.is_empty() {
        body.push_str("<p class=\"muted\">No SIP accounts configured.</p>");
    } else {
        body.push_str("<table id=\"sip\"><tr class=\"head\"><th>Account</th><th>Registrar</th><th>State</th><th>Next refresh</th><th>Last error</th></tr>");
        for account in &config.sip_accounts {
            let row = sip.iter().find(|row| row.name == account.name);
            let state = row.map(|r| r.state.as_str()).unwrap_or("not started");
            let class = match row.map(|r| r.state) {
                Some(RegistrationState::Registered) => "ok",
                Some(RegistrationState::Failed) => "bad",
                _ => "muted",
            };
            let refresh = row
                .and_then(|r| r.next_refresh_ms.or(r.retry_at_ms))
                .map(format_time)
                .unwrap_or_default();
            let error = row.and_then(|r| r.last_error.clone()).unwrap_or_default();
            let _ = write!(
                body,
                "<tr><td>{}</td><td>{}</td><td class=\"{class}\">{}</td><td>{}</td><td>{}</td></tr>",
                e(&account.name),
                e(&account.registrar),
                e(state),
                e(&refresh),
                e(&error)
            );
        }
        body.push_str("</table>");
    }
    layout("Status", Some(csrf), &body)
}

pub fn opt_outs_page(csrf: &str, rows: &[OptOutRow], problem: Option<&str>) -> String {
    let mut body = String::from("<h1>Opt-outs</h1><p>These numbers are never texted.</p>");
    if let Some(problem) = problem {
        let _ = write!(body, "<p class=\"bad\">{}</p>", e(problem));
    }
    let _ = write!(
        body,
        "<form method=\"post\" action=\"/opt-outs\" class=\"card\"><input type=\"hidden\" name=\"csrf\" value=\"{}\">\
         <input name=\"number\" placeholder=\"07700 900123\"> <button>Add</button></form>",
        e(csrf)
    );
    body.push_str(
        "<table id=\"opt-outs\"><tr class=\"head\"><th>Number</th><th>Since</th><th>How</th><th></th></tr>",
    );
    for row in rows {
        let _ = write!(
            body,
            "<tr><td>{}</td><td>{}</td><td>{}</td><td><form method=\"post\" action=\"/opt-outs/remove\">\
             <input type=\"hidden\" name=\"csrf\" value=\"{}\"><input type=\"hidden\" name=\"number\" value=\"{}\">\
             <button>Remove</button></form></td></tr>",
            e(&national(&row.number)),
            e(&format_time(row.at_ms)),
            e(row.source.as_str()),
            e(csrf),
            e(&row.number)
        );
    }
    body.push_str("</table>");
    layout("Opt-outs", Some(csrf), &body)
}

pub fn config_page(csrf: &str, config: &Config) -> String {
    // Debug of the validated config: secrets print as **REDACTED** (domain::Secret).
    let body = format!(
        "<h1>Configuration</h1><p class=\"muted\">Read-only; edit the config file on the box and restart.</p><pre id=\"config\">{}</pre>",
        e(&format!("{config:#?}"))
    );
    layout("Config", Some(csrf), &body)
}

// --- JSON --------------------------------------------------------------------------------------

pub fn lead_json(lead: &LeadRow) -> serde_json::Value {
    serde_json::json!({
        "id": lead.id.0,
        "profile": lead.profile,
        "caller": lead.caller,
        "answers": lead.answers.iter().map(|(q, a)| serde_json::json!({"question": q, "answer": a})).collect::<Vec<_>>(),
        "complete": lead.complete,
        "created_ms": lead.created_ms,
    })
}

pub fn lead_view_json(view: &LeadView) -> serde_json::Value {
    let mut value = lead_json(&view.detail.lead);
    value["missed_at_ms"] = serde_json::json!(view.detail.missed_at_ms);
    value["called"] = serde_json::json!(view.detail.called);
    value["transcript"] = view
        .messages
        .iter()
        .map(|m| serde_json::json!({"at_ms": m.created_ms, "direction": m.direction, "body": m.body, "state": m.state, "error": m.error}))
        .collect();
    value["deliveries"] = serde_json::json!(view.deliveries);
    value
}

pub fn call_json(call: &CallRow) -> serde_json::Value {
    serde_json::json!({
        "id": call.id.0,
        "source": call.source,
        "caller": call.caller,
        "profile": call.profile,
        "at_ms": call.at_ms,
        "decision": call.decision,
        "reason": call.reason,
        "conversation": call.conversation.map(|c| c.0),
    })
}

// --- metrics -----------------------------------------------------------------------------------

/// Buckets of the missed-call-to-SMS histogram, in seconds.
const LATENCY_BUCKETS: [f64; 9] = [0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0, 30.0];

fn label(value: &str) -> String {
    value
        .replace('\\', "\\\\")
        .replace('"', "\\\"")
        .replace('\n', "\\n")
}

/// Prometheus text exposition (format 0.0.4).
pub fn metrics_text(
    counts: &[(String, String, i64)],
    latencies_ms: &[i64],
    modems: &[ModemStatus],
    sip: &[SipAccountRow],
) -> String {
    let mut out = String::new();
    let family = |out: &mut String, name: &str, help: &str, kind: &str| {
        let _ = writeln!(out, "# HELP {name} {help}\n# TYPE {name} {kind}");
    };
    fn of<'a>(
        counts: &'a [(String, String, i64)],
        kind: &'a str,
    ) -> impl Iterator<Item = &'a (String, String, i64)> {
        counts.iter().filter(move |(k, _, _)| k == kind)
    }

    family(
        &mut out,
        "textback_missed_calls_total",
        "Missed calls, by what was done.",
        "counter",
    );
    for (_, decision, n) in of(counts, "calls") {
        let _ = writeln!(
            out,
            "textback_missed_calls_total{{decision=\"{}\"}} {n}",
            label(decision)
        );
    }
    family(
        &mut out,
        "textback_sms_sent_total",
        "Texts to callers and owners, by state.",
        "counter",
    );
    for (_, state, n) in of(counts, "sms_out") {
        let _ = writeln!(
            out,
            "textback_sms_sent_total{{state=\"{}\"}} {n}",
            label(state)
        );
    }
    family(
        &mut out,
        "textback_replies_total",
        "Texts received.",
        "counter",
    );
    let replies: i64 = of(counts, "sms_in").map(|(_, _, n)| n).sum();
    let _ = writeln!(out, "textback_replies_total {replies}");
    family(
        &mut out,
        "textback_leads_total",
        "Leads, complete or not.",
        "counter",
    );
    for (_, state, n) in of(counts, "leads") {
        let _ = writeln!(
            out,
            "textback_leads_total{{state=\"{}\"}} {n}",
            label(state)
        );
    }
    family(
        &mut out,
        "textback_lead_deliveries_total",
        "Lead deliveries by channel and outcome.",
        "counter",
    );
    for (_, key, n) in of(counts, "deliveries") {
        let (channel, state) = key.split_once(':').unwrap_or((key.as_str(), ""));
        let _ = writeln!(
            out,
            "textback_lead_deliveries_total{{channel=\"{}\",state=\"{}\"}} {n}",
            label(channel),
            label(state)
        );
    }
    family(
        &mut out,
        "textback_outbox_queued",
        "Texts waiting for each modem.",
        "gauge",
    );
    family(
        &mut out,
        "textback_modem_up",
        "1 when the modem is set up and on the network.",
        "gauge",
    );
    family(
        &mut out,
        "textback_modem_signal_dbm",
        "Signal strength.",
        "gauge",
    );
    for modem in modems {
        let id = label(modem.id.as_str());
        let _ = writeln!(
            out,
            "textback_outbox_queued{{modem=\"{id}\"}} {}",
            modem.queued
        );
        let _ = writeln!(
            out,
            "textback_modem_up{{modem=\"{id}\"}} {}",
            u8::from(modem.state.is_usable())
        );
        if let ModemState::Ready { info } = &modem.state
            && let Some(dbm) = info.signal_dbm()
        {
            let _ = writeln!(out, "textback_modem_signal_dbm{{modem=\"{id}\"}} {dbm}");
        }
    }
    family(
        &mut out,
        "textback_sip_registered",
        "1 when the SIP account is registered.",
        "gauge",
    );
    for account in sip {
        let _ = writeln!(
            out,
            "textback_sip_registered{{account=\"{}\"}} {}",
            label(&account.name),
            u8::from(account.state == RegistrationState::Registered)
        );
    }
    family(
        &mut out,
        "textback_missed_call_to_sms_seconds",
        "From the missed call to its first text accepted by the network.",
        "histogram",
    );
    let seconds: Vec<f64> = latencies_ms.iter().map(|ms| *ms as f64 / 1000.0).collect();
    for bucket in LATENCY_BUCKETS {
        let n = seconds.iter().filter(|s| **s <= bucket).count();
        let _ = writeln!(
            out,
            "textback_missed_call_to_sms_seconds_bucket{{le=\"{bucket}\"}} {n}"
        );
    }
    let _ = writeln!(
        out,
        "textback_missed_call_to_sms_seconds_bucket{{le=\"+Inf\"}} {}\ntextback_missed_call_to_sms_seconds_sum {}\ntextback_missed_call_to_sms_seconds_count {}",
        seconds.len(),
        seconds.iter().sum::<f64>(),
        seconds.len()
    );
    out
}
