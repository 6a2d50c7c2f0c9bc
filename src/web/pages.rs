//! The dashboard's HTML, written by hand: a handful of small pages, each escaped at the point a
//! value is written, with one inline stylesheet (no assets from the internet, no JavaScript; the
//! Content-Security-Policy allows that stylesheet by its hash, [`style_hash`]).
//! Also the JSON shapes of the API and the Prometheus text of /metrics.

use std::fmt::Write;

use crate::config::Config;
use crate::domain::{
    CallDecision, DeliveryState, Direction, LeadState, MessageState, ModemId, RegistrationState,
};
use crate::leads::summary::{ago, escape_html as e};
use crate::modem::ModemState;
use crate::store::{
    CallRow, DeliveryRow, HomeCounts, LeadDetail, LeadEventRow, LeadRow, MessageRow, OptOutRow,
    SipAccountRow,
};
use crate::time_text::{format_clock, format_time};

const STYLE: &str = "body{font:16px/1.45 system-ui,sans-serif;margin:0;color:#1b1b1b;background:#f6f6f4}\
header{background:#0f3d3e;color:#fff;padding:.6em 1em}header a{color:#fff;margin-right:.9em;text-decoration:none;white-space:nowrap;display:inline-block}\
header form{display:inline}header button{background:none;border:1px solid #fff;color:#fff;border-radius:4px}\
main{padding:1em;max-width:60em;margin:auto}table{border-collapse:collapse;width:100%;background:#fff}\
td,th{padding:.4em;border-bottom:1px solid #ddd;text-align:left;vertical-align:top}\
.in{background:#eef6ff}.out{background:#f4fff0}.bad{color:#a40000}.ok{color:#1b6e1b}.muted{color:#666}\
input,select,button{font:inherit;padding:.3em}pre{white-space:pre-wrap;background:#fff;padding:1em}\
.card{background:#fff;padding:1em;margin-bottom:1em;border-radius:6px}\
.stats td,.stats th{text-align:right}.stats th:first-child{text-align:left}\
.call{display:block;background:#1b6e1b;color:#fff;text-align:center;padding:.8em;border-radius:8px;font-size:1.2em;text-decoration:none;margin:.6em 0}\
.lead .who,.callback .who{font-size:1.15em;font-weight:600;margin:0}.reason{margin:.3em 0}\
.state{font-size:.8em;padding:.1em .5em;border-radius:1em;background:#e6e6e1;font-weight:normal}.state-won{background:#d7f0d2}.state-lost{background:#f3d9d9}\
.urgent{font-size:.8em;color:#fff;background:#a40000;padding:.1em .5em;border-radius:1em}\
.states button,.done,#send{padding:.6em 1em;margin:.2em 0}textarea{width:100%;box-sizing:border-box;font:inherit}\
#reply label{display:block;margin-bottom:.3em}\
@media(max-width:40em){.stats td,.stats th{display:table-cell;border-bottom:1px solid #ddd}.stats tr{display:table-row}td,th{display:block;border:0}tr{border-bottom:1px solid #ccc;display:block}tr.head{display:none}}";

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
            "<header><a href=\"/\">Home</a><a href=\"/leads\">Leads</a><a href=\"/calls\">Calls</a><a href=\"/status\">Status</a>\
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
    let mut body =
        String::from("<h1>Leads</h1><form method=\"get\" action=\"/leads\" class=\"card\">");
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
        ("new", "New"),
        ("called_back", "Called back"),
        ("won", "Won"),
        ("lost", "Lost"),
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
        body.push_str("<table id=\"leads\"><tr class=\"head\"><th>When</th><th>Caller</th><th>Number</th><th>Business</th><th>Answers</th><th>State</th></tr>");
        for lead in leads {
            let _ = write!(
                body,
                "<tr><td>{}</td><td><a href=\"/leads/{}\">{}</a></td><td>{}</td><td>{}</td><td>{}</td><td class=\"state-{}\">{}</td></tr>",
                e(&format_time(lead.created_ms)),
                lead.id,
                e(&lead_name(lead)),
                e(&national(&lead.caller)),
                e(&lead.profile),
                if lead.complete {
                    "complete"
                } else {
                    "incomplete"
                },
                lead.state.as_str(),
                e(lead.state.words())
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
    /// Every change of the lead's state, oldest first.
    pub events: Vec<LeadEventRow>,
    /// The caller replied STOP: no reply box.
    pub opted_out: bool,
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
    let _ = write!(
        body,
        "<p id=\"state\">State: <strong class=\"state-{}\">{}</strong>{}</p>",
        lead.state.as_str(),
        e(lead.state.words()),
        match (&lead.state_by, lead.state_ms) {
            (Some(by), Some(at)) => format!(
                " <span class=\"muted\">by {} {}</span>",
                e(by),
                e(&format_time(at))
            ),
            _ => String::new(),
        }
    );
    if let Some(csrf) = csrf {
        body.push_str(&state_buttons(csrf, lead));
    }
    let _ = write!(
        body,
        "<a class=\"call\" href=\"tel:{}\">Call {}</a>",
        e(&lead.caller),
        e(&national(&lead.caller))
    );
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
        let (class, who) = match (&message.direction, &message.author) {
            (Direction::In, _) => ("in", "Caller".to_string()),
            (_, Some(author)) => ("out owner", format!("Owner ({})", e(author))),
            _ => ("out", "textback".to_string()),
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
    body.push_str("</table>");
    if let Some(csrf) = csrf {
        body.push_str(&reply_box(csrf, lead, view.opted_out));
    }
    body.push_str("<h2>Notifications</h2><table id=\"deliveries\"><tr class=\"head\"><th>About</th><th>To</th><th>By</th><th>State</th></tr>");
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
        let about = match (delivery.event_id, delivery.reply_id) {
            (Some(event), _) => format!("state change {event}"),
            (None, None) => "lead".to_string(),
            (None, Some(reply)) => format!("<a href=\"#m{reply}\">reply {reply}</a>"),
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

/// One form per state the lead is not in: "Called back", "Won", "Lost" (and "New" to undo).
pub(crate) fn state_buttons(csrf: &str, lead: &LeadRow) -> String {
    let mut out = format!(
        "<form method=\"post\" action=\"/leads/{}/state\" class=\"states\"><input type=\"hidden\" name=\"csrf\" value=\"{}\">",
        lead.id,
        e(csrf)
    );
    for state in LeadState::ALL {
        if *state == lead.state {
            continue;
        }
        let label = match state {
            LeadState::New => "Mark new",
            LeadState::CalledBack => "Called back",
            LeadState::Won => "Won",
            LeadState::Lost => "Lost",
        };
        let _ = write!(
            out,
            "<button name=\"state\" value=\"{}\" id=\"state-{}\">{label}</button> ",
            state.as_str(),
            state.as_str()
        );
    }
    out.push_str("</form>");
    out
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

/// What the status page shows, as read from the modems and the store.
#[derive(Default)]
pub struct StatusFacts<'a> {
    pub modems: &'a [ModemStatus],
    pub sip: &'a [SipAccountRow],
    pub faults: &'a [crate::store::FaultRow],
    pub notices: &'a [crate::store::NoticeRow],
    pub balances: &'a [crate::store::BalanceRow],
    pub self_tests: &'a [crate::store::SelfTestRow],
}

pub fn status_page(csrf: &str, config: &Config, facts: &StatusFacts<'_>) -> String {
    let StatusFacts {
        modems,
        sip,
        faults,
        notices,
        balances,
        self_tests,
    } = *facts;
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
                if info.port.is_empty() {
                    format!("ready ({} {})", info.manufacturer, info.model)
                } else {
                    format!(
                        "ready ({} {}) on {}",
                        info.manufacturer, info.model, info.port
                    )
                },
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
    body.push_str(&faults_section(faults));
    body.push_str(&notices_section(notices));
    body.push_str(&balance_section(config, balances));
    body.push_str(&self_test_section(config, self_tests));
    layout("Status", Some(csrf), &body)
}

/// Notices (call backs, alerts, summaries) by email, WhatsApp and webhook that failed, or are
/// being retried after a failure, each with its channel's error (which names what to fix).
fn notices_section(notices: &[crate::store::NoticeRow]) -> String {
    let mut body = String::from("<h2>Notices not delivered</h2>");
    if notices.is_empty() {
        body.push_str(
            "<p class=\"muted\">None: every call-back notice, alert and summary by email, WhatsApp and webhook went, or is waiting its turn.</p>",
        );
        return body;
    }
    body.push_str("<table id=\"notices\"><tr class=\"head\"><th>Notice</th><th>To</th><th>State</th><th>Since</th><th>Error</th></tr>");
    for notice in notices {
        let (class, state) = if notice.state == "failed" {
            ("bad", "failed".to_string())
        } else {
            ("muted", format!("retrying ({} tries)", notice.attempts))
        };
        let _ = write!(
            body,
            "<tr><td>{} {}: {}</td><td>{} by {}</td><td class=\"{class}\">{}</td><td>{}</td><td>{}</td></tr>",
            notice.id,
            e(&notice.kind),
            e(&notice.subject),
            e(&notice.recipient),
            e(&notice.channel),
            e(&state),
            e(&format_time(notice.created_ms)),
            e(notice.last_error.as_deref().unwrap_or_default())
        );
    }
    body.push_str("</table><p class=\"muted\">Fix what the error says, then <code>textback notices resend ID</code>.</p>");
    body
}

/// Each SIM's credit, for the modems with a balance code: the last amount read, when, and the
/// last check's answer or error.
fn balance_section(config: &Config, balances: &[crate::store::BalanceRow]) -> String {
    use crate::core::balance::format_pence;
    let checked: Vec<_> = config
        .modems
        .iter()
        .filter_map(|m| m.balance.as_ref().map(|b| (m, b)))
        .collect();
    if checked.is_empty() {
        return String::new();
    }
    let mut body = String::from(
        "<h2>SIM credit</h2><table id=\"balances\"><tr class=\"head\"><th>Modem</th><th>Credit</th><th>Checked</th><th>Last answer</th></tr>",
    );
    for (modem, check) in checked {
        let row = balances.iter().find(|b| b.modem == modem.id.as_str());
        let (class, credit) = match row.and_then(|r| r.known_pence) {
            Some(pence) if pence < check.low_pence => (
                "bad",
                format!(
                    "{} (under {}: top up the SIM)",
                    format_pence(pence),
                    format_pence(check.low_pence)
                ),
            ),
            Some(pence) => ("ok", format_pence(pence)),
            None => ("muted", "not known yet".to_string()),
        };
        let checked_at = row.map(|r| format_time(r.checked_ms)).unwrap_or_default();
        let answer = row
            .map(|r| match (&r.reply, &r.error) {
                (_, Some(error)) => error.clone(),
                (Some(reply), None) => reply.clone(),
                (None, None) => String::new(),
            })
            .unwrap_or_default();
        let _ = write!(
            body,
            "<tr><td>{}</td><td class=\"{class}\">{}</td><td>{}</td><td>{}</td></tr>",
            e(modem.id.as_str()),
            e(&credit),
            e(&checked_at),
            e(&answer)
        );
    }
    body.push_str("</table>");
    body
}

/// Each SIM's last daily self-test, for the modems with `[modem.self_test]`.
fn self_test_section(config: &Config, self_tests: &[crate::store::SelfTestRow]) -> String {
    use crate::domain::SelfTestState;
    let tested: Vec<_> = config
        .modems
        .iter()
        .filter_map(|m| m.self_test.as_ref().map(|t| (m, t)))
        .collect();
    if tested.is_empty() {
        return String::new();
    }
    let mut body = String::from(
        "<h2>Daily self-test</h2><table id=\"self-tests\"><tr class=\"head\"><th>Modem</th><th>Texts</th><th>Last test</th><th>Result</th></tr>",
    );
    for (modem, test) in tested {
        let row = self_tests.iter().find(|t| t.modem == modem.id.as_str());
        let (class, result) = match row {
            None => (
                "muted",
                format!("not run yet (daily at {} UK time)", test.at.format("%H:%M")),
            ),
            Some(row) => match row.state {
                SelfTestState::Passed => (
                    "ok",
                    format!(
                        "passed: back on {} after {:.1} s",
                        row.received_on.as_deref().unwrap_or("?"),
                        (row.received_ms.unwrap_or(row.started_ms) - row.started_ms) as f64
                            / 1000.0
                    ),
                ),
                SelfTestState::Waiting => {
                    ("muted", "waiting for the text to come back".to_string())
                }
                SelfTestState::Failed => (
                    "bad",
                    format!(
                        "failed: {}",
                        row.detail
                            .as_deref()
                            .unwrap_or("the text did not come back")
                    ),
                ),
            },
        };
        let _ = write!(
            body,
            "<tr><td>{}</td><td>{}</td><td>{}</td><td class=\"{class}\">{}</td></tr>",
            e(modem.id.as_str()),
            e(test.to.as_str()),
            e(&row.map(|r| format_time(r.started_ms)).unwrap_or_default()),
            e(&result)
        );
    }
    body.push_str("</table>");
    body
}

/// `textback_self_tests_total{modem,state}`, `textback_self_test_passed{modem}` (the last test:
/// 1 passed, 0 failed, -1 running) and `textback_self_test_round_trip_seconds{modem}`.
pub fn self_test_metrics(
    last: &[crate::store::SelfTestRow],
    counts: &[(String, String, i64)],
) -> String {
    use crate::domain::SelfTestState;
    let mut out = String::new();
    if last.is_empty() {
        return out;
    }
    let _ = writeln!(
        out,
        "# HELP textback_self_tests_total Daily self-tests (a text to a number that comes back to the box), by modem and outcome.\n# TYPE textback_self_tests_total counter"
    );
    for (modem, state, count) in counts {
        let _ = writeln!(
            out,
            "textback_self_tests_total{{modem=\"{}\",state=\"{}\"}} {count}",
            label(modem),
            label(state)
        );
    }
    let _ = writeln!(
        out,
        "# HELP textback_self_test_passed The last self-test: 1 passed, 0 failed, -1 still running.\n# TYPE textback_self_test_passed gauge"
    );
    for row in last {
        let value = match row.state {
            SelfTestState::Passed => 1,
            SelfTestState::Failed => 0,
            SelfTestState::Waiting => -1,
        };
        let _ = writeln!(
            out,
            "textback_self_test_passed{{modem=\"{}\"}} {value}",
            label(&row.modem)
        );
    }
    let _ = writeln!(
        out,
        "# HELP textback_self_test_round_trip_seconds How long the last self-test text that came back took.\n# TYPE textback_self_test_round_trip_seconds gauge"
    );
    for row in last {
        if let Some(received) = row.received_ms {
            let _ = writeln!(
                out,
                "textback_self_test_round_trip_seconds{{modem=\"{}\"}} {:.3}",
                label(&row.modem),
                (received - row.started_ms) as f64 / 1000.0
            );
        }
    }
    out
}

/// `textback_modem_balance_pounds{modem}` (the last credit read) and
/// `textback_modem_balance_checked_timestamp_seconds{modem}` (the last check, read or not).
pub fn balance_metrics(balances: &[crate::store::BalanceRow]) -> String {
    let mut out = String::new();
    if balances.is_empty() {
        return out;
    }
    let _ = writeln!(
        out,
        "# HELP textback_modem_balance_pounds The SIM's credit as last read by USSD (modem.balance_ussd), in pounds.\n# TYPE textback_modem_balance_pounds gauge"
    );
    for row in balances {
        if let Some(pence) = row.known_pence {
            let _ = writeln!(
                out,
                "textback_modem_balance_pounds{{modem=\"{}\"}} {:.2}",
                label(&row.modem),
                pence as f64 / 100.0
            );
        }
    }
    let _ = writeln!(
        out,
        "# HELP textback_modem_balance_checked_timestamp_seconds When the SIM's credit was last checked (answered or not).\n# TYPE textback_modem_balance_checked_timestamp_seconds gauge"
    );
    for row in balances {
        let _ = writeln!(
            out,
            "textback_modem_balance_checked_timestamp_seconds{{modem=\"{}\"}} {}",
            label(&row.modem),
            row.checked_ms / 1000
        );
    }
    out
}

/// The modems' faults: open ones first (what is wrong and what to do), then how recent ones ended.
fn faults_section(faults: &[crate::store::FaultRow]) -> String {
    let mut body = String::from("<h2>Modem health</h2>");
    if faults.is_empty() {
        body.push_str(
            "<p class=\"muted\">Nothing recorded: every SIM has sent and received normally.</p>",
        );
        return body;
    }
    body.push_str("<table id=\"faults\"><tr class=\"head\"><th>Modem</th><th>What</th><th>Since</th><th>Ended</th><th>Detail</th></tr>");
    let mut ordered: Vec<&crate::store::FaultRow> = faults.iter().collect();
    ordered.sort_by_key(|f| (f.cleared_ms.is_some(), std::cmp::Reverse(f.started_ms)));
    for fault in ordered {
        let (class, ended) = match fault.cleared_ms {
            None => ("bad", "still open".to_string()),
            Some(at) => (
                "ok",
                format!(
                    "{} (after {:.1} s)",
                    format_time(at),
                    (at - fault.started_ms) as f64 / 1000.0
                ),
            ),
        };
        let told = if fault.alerted_ms.is_some() {
            " The business was told."
        } else {
            ""
        };
        let _ = write!(
            body,
            "<tr><td>{}</td><td class=\"{class}\">{} ({})</td><td>{}</td><td>{}</td><td>{}{told}</td></tr>",
            e(&fault.modem),
            e(fault.kind.as_str()),
            e(&fault.cause),
            e(&format_time(fault.started_ms)),
            e(&ended),
            e(&fault.detail)
        );
    }
    body.push_str("</table>");
    body
}

/// The health families of /metrics: faults by kind and cause (all time, and open now), alerts
/// sent, and each modem's registration state.
pub fn health_metrics(
    faults: &[crate::store::FaultCount],
    alerts: i64,
    modems: &[ModemStatus],
) -> String {
    let mut out = String::new();
    let family = |out: &mut String, name: &str, help: &str, kind: &str| {
        let _ = writeln!(out, "# HELP {name} {help}\n# TYPE {name} {kind}");
    };
    family(
        &mut out,
        "textback_modem_faults_total",
        "Modem and SIM faults recorded (refused by the network, off the network, storage full, recipient cap), by kind and cause.",
        "counter",
    );
    for (kind, cause, all, _) in faults {
        let _ = writeln!(
            out,
            "textback_modem_faults_total{{kind=\"{}\",cause=\"{}\"}} {all}",
            label(kind),
            label(cause)
        );
    }
    family(
        &mut out,
        "textback_modem_faults_open",
        "Modem and SIM faults still open, by kind and cause.",
        "gauge",
    );
    for (kind, cause, _, open) in faults {
        let _ = writeln!(
            out,
            "textback_modem_faults_open{{kind=\"{}\",cause=\"{}\"}} {open}",
            label(kind),
            label(cause)
        );
    }
    family(
        &mut out,
        "textback_alerts_total",
        "Alerts about modem health recorded for the business.",
        "counter",
    );
    let _ = writeln!(out, "textback_alerts_total {alerts}");
    family(
        &mut out,
        "textback_modem_registration",
        "The SIM's network registration (TS 27.007 +CREG <stat>: 0 none, 1 home, 2 searching, 3 denied, 5 roaming; -1 unknown).",
        "gauge",
    );
    for modem in modems {
        let stat = match &modem.state {
            ModemState::Ready { info } => info.registration.map_or(-1, i32::from),
            ModemState::Starting | ModemState::Lost { .. } => -1,
        };
        let _ = writeln!(
            out,
            "textback_modem_registration{{modem=\"{}\"}} {stat}",
            label(modem.id.as_str())
        );
    }
    out
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
        "state": lead.state,
        "state_by": lead.state_by,
        "state_ms": lead.state_ms,
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
    value["state_history"] = serde_json::json!(view.events);
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
    box_name: &str,
    counts: &[(String, String, i64)],
    latencies_ms: &[i64],
    modems: &[ModemStatus],
    sip: &[SipAccountRow],
) -> String {
    let mut out = String::new();
    let family = |out: &mut String, name: &str, help: &str, kind: &str| {
        let _ = writeln!(out, "# HELP {name} {help}\n# TYPE {name} {kind}");
    };
    // Which box this is (box.name), for a Prometheus that scrapes several: always 1, its labels
    // say it (joined onto any series with `* on(instance) group_left(box)`).
    family(
        &mut out,
        "textback_box_info",
        "This box: its name (box.name) and textback's version.",
        "gauge",
    );
    let _ = writeln!(
        out,
        "textback_box_info{{box=\"{}\",version=\"{}\"}} 1",
        label(box_name),
        label(env!("CARGO_PKG_VERSION"))
    );
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
        "textback_notices_total",
        "Notices that are not leads (call_back, alert, summary) by channel and outcome.",
        "counter",
    );
    for (_, key, n) in of(counts, "notices") {
        let mut parts = key.splitn(3, ':');
        let (kind, channel, state) = (
            parts.next().unwrap_or_default(),
            parts.next().unwrap_or_default(),
            parts.next().unwrap_or_default(),
        );
        let _ = writeln!(
            out,
            "textback_notices_total{{kind=\"{}\",channel=\"{}\",state=\"{}\"}} {n}",
            label(kind),
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
        "1 when the SIP account is registered (accounts that register only).",
        "gauge",
    );
    // An account with register = false (a trunk or a dispatcher that sends calls to a fixed
    // address) has no registration to lose: no series, so no alert.
    for account in sip
        .iter()
        .filter(|a| a.state != RegistrationState::NotRegistering)
    {
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

/// One period's counts on the home page.
pub struct Period {
    pub label: &'static str,
    pub counts: HomeCounts,
}

/// One day of the home page's chart: missed calls, and how many of them were texted.
pub struct ChartDay {
    /// "Mon 3", as the axis shows it.
    pub label: String,
    pub missed: i64,
    pub texted: i64,
}

/// Everything the home page shows.
pub struct HomeView {
    pub periods: Vec<Period>,
    pub days: Vec<ChartDay>,
    pub call_backs: Vec<CallRow>,
    pub leads: Vec<LeadRow>,
    /// Business names by profile id.
    pub businesses: Vec<(String, String)>,
    pub now: chrono::DateTime<chrono::Utc>,
}

fn seconds(ms: Option<i64>) -> String {
    match ms {
        None => "–".to_string(),
        Some(ms) if ms < 1000 => format!("{ms} ms"),
        Some(ms) if ms < 60_000 => format!("{:.1} s", ms as f64 / 1000.0),
        Some(ms) => format!("{} min", ms / 60_000),
    }
}

/// The missed calls of each day as bars (grey: missed, green: of them texted), drawn here as SVG
/// with presentation attributes only: no script, no style attribute, nothing fetched.
pub fn chart_svg(days: &[ChartDay]) -> String {
    let width = 600.0;
    let height = 200.0;
    let bottom = 165.0;
    let top = 10.0;
    let most = days.iter().map(|d| d.missed).max().unwrap_or(0).max(1) as f64;
    let slot = width / days.len().max(1) as f64;
    let bar = (slot * 0.7).max(1.0);
    let mut svg = format!(
        "<svg id=\"chart\" viewBox=\"0 0 {width} {height}\" width=\"100%\" role=\"img\" \
         aria-label=\"Missed calls and texts per day, last {} days\" xmlns=\"http://www.w3.org/2000/svg\">",
        days.len()
    );
    let _ = write!(
        svg,
        "<line x1=\"0\" y1=\"{bottom}\" x2=\"{width}\" y2=\"{bottom}\" stroke=\"#999\" stroke-width=\"1\"/>"
    );
    for (i, day) in days.iter().enumerate() {
        let x = i as f64 * slot + (slot - bar) / 2.0;
        let missed = (day.missed as f64 / most) * (bottom - top);
        let texted = (day.texted as f64 / most) * (bottom - top);
        let _ = write!(
            svg,
            "<g><title>{}: {} missed, {} texted</title>\
             <rect x=\"{x:.1}\" y=\"{:.1}\" width=\"{bar:.1}\" height=\"{missed:.1}\" fill=\"#c9c9c4\"/>\
             <rect x=\"{x:.1}\" y=\"{:.1}\" width=\"{bar:.1}\" height=\"{texted:.1}\" fill=\"#1b6e1b\"/></g>",
            e(&day.label),
            day.missed,
            day.texted,
            bottom - missed,
            bottom - texted
        );
        // A label a week, counted back from today (the last bar).
        if (days.len() - 1 - i).is_multiple_of(7) && i >= 3 {
            let _ = write!(
                svg,
                "<text x=\"{:.1}\" y=\"192\" font-size=\"18\" fill=\"#555\" text-anchor=\"end\">{}</text>",
                x + bar,
                e(&day.label)
            );
        }
    }
    svg.push_str("</svg>");
    svg
}

fn answer<'a>(lead: &'a LeadRow, question: &str) -> Option<&'a str> {
    lead.answers
        .iter()
        .find(|(q, _)| q == question)
        .map(|(_, a)| a.as_str())
}

/// A lead as a card: who, why, where, when, its state, and a large call button.
pub fn lead_card(lead: &LeadRow, business: &str, now: chrono::DateTime<chrono::Utc>) -> String {
    let when = chrono::DateTime::from_timestamp_millis(lead.created_ms)
        .map(|at| ago(at, now))
        .unwrap_or_default();
    let mut facts = Vec::new();
    if let Some(postcode) = answer(lead, "postcode") {
        facts.push(e(postcode));
    }
    facts.push(e(&format_time(lead.created_ms)));
    facts.push(e(&when));
    facts.push(e(business));
    format!(
        "<article class=\"lead card\" id=\"lead-{id}\"><p class=\"who\"><a href=\"/leads/{id}\">{name}</a>{urgent} \
         <span class=\"state state-{state}\">{words}</span></p><p class=\"reason\">{reason}</p>\
         <p class=\"muted\">{facts}</p><a class=\"call\" href=\"tel:{tel}\">Call {national}</a></article>",
        id = lead.id,
        name = e(&lead_name(lead)),
        urgent = if lead.urgent {
            " <span class=\"urgent\">urgent</span>"
        } else {
            ""
        },
        state = lead.state.as_str(),
        words = e(lead.state.words()),
        reason = e(answer(lead, "reason").unwrap_or("(no reason given)")),
        facts = facts.join(" · "),
        tel = e(&lead.caller),
        national = e(&national(&lead.caller)),
    )
}

/// One row of the home page's counts: the number shown for a period.
type Shown = fn(&HomeCounts) -> String;

/// The owner's home page: what was recovered, who to call back, the leads to act on.
pub fn home_page(csrf: &str, view: &HomeView) -> String {
    let business = |id: &str| {
        view.businesses
            .iter()
            .find(|(p, _)| p == id)
            .map(|(_, name)| name.clone())
            .unwrap_or_else(|| id.to_string())
    };
    let mut body =
        String::from("<h1>Missed calls</h1><table id=\"stats\" class=\"stats\"><tr><th></th>");
    for period in &view.periods {
        let _ = write!(body, "<th>{}</th>", e(period.label));
    }
    body.push_str("</tr>");
    let rows: [(&str, Shown); 6] = [
        ("Missed calls", |c| c.missed.to_string()),
        ("Texted", |c| c.texted.to_string()),
        ("Replied", |c| c.replied.to_string()),
        ("Leads", |c| c.leads.to_string()),
        ("Called back", |c| c.called_back.to_string()),
        ("Call to text (median)", |c| seconds(c.median_ms)),
    ];
    for (label, value) in rows {
        let _ = write!(body, "<tr><th>{label}</th>");
        for period in &view.periods {
            let _ = write!(body, "<td>{}</td>", e(&value(&period.counts)));
        }
        body.push_str("</tr>");
    }
    body.push_str("</table><div class=\"card\">");
    body.push_str(&chart_svg(&view.days));
    body.push_str(
        "<p class=\"muted\">Missed calls a day (grey), and those texted (green).</p></div>",
    );

    body.push_str("<h2>Call back</h2><section id=\"call-backs\">");
    if view.call_backs.is_empty() {
        body.push_str("<p class=\"muted\">Nobody is waiting for a call back.</p>");
    }
    for call in &view.call_backs {
        let number = call.caller.as_deref();
        let when = chrono::DateTime::from_timestamp_millis(call.at_ms)
            .map(|at| ago(at, view.now))
            .unwrap_or_default();
        let _ = write!(
            body,
            "<article class=\"card callback\" id=\"call-{id}\"><p class=\"who\">{who}</p>\
             <p class=\"muted\">{at} · {when} · {business}</p><p>Not texted: {reason}</p>{call_button}\
             <form method=\"post\" action=\"/calls/{id}/called-back\"><input type=\"hidden\" name=\"csrf\" value=\"{csrf}\">\
             <button class=\"done\">Called back</button></form></article>",
            id = call.id.0,
            who = e(&number
                .map(national)
                .unwrap_or_else(|| "Withheld number".to_string())),
            at = e(&format_time(call.at_ms)),
            when = e(&when),
            business = e(&business(&call.profile)),
            reason = e(call.reason.as_deref().unwrap_or("no reason recorded")),
            call_button = match number {
                Some(number) => format!(
                    "<a class=\"call\" href=\"tel:{}\">Call {}</a>",
                    e(number),
                    e(&national(number))
                ),
                None => String::new(),
            },
            csrf = e(csrf),
        );
    }
    body.push_str("</section><h2>Leads to act on</h2><section id=\"leads\">");
    if view.leads.is_empty() {
        body.push_str("<p class=\"muted\">No leads waiting.</p>");
    }
    for lead in &view.leads {
        body.push_str(&lead_card(lead, &business(&lead.profile), view.now));
    }
    body.push_str("</section><p><a href=\"/leads\">All leads</a></p>");
    layout("Home", Some(csrf), &body)
}

/// The reply box on a lead's page: a text from the business's SIM, or why none can be sent.
pub fn reply_box(csrf: &str, lead: &LeadRow, opted_out: bool) -> String {
    if opted_out {
        return format!(
            "<p class=\"bad\" id=\"reply-refused\">{} replied STOP: no texts can be sent to them. Call instead.</p>",
            e(&national(&lead.caller))
        );
    }
    format!(
        "<form method=\"post\" action=\"/leads/{}/reply\" class=\"card\" id=\"reply\">\
         <input type=\"hidden\" name=\"csrf\" value=\"{}\">\
         <label for=\"reply-text\">Reply from the business's number (the assistant then stays quiet)</label>\
         <textarea name=\"text\" id=\"reply-text\" rows=\"3\" maxlength=\"1000\"></textarea>\
         <button id=\"send\">Send</button></form>",
        lead.id,
        e(csrf)
    )
}

#[cfg(test)]
mod tests {
    use super::*;

    fn config() -> Config {
        let text = r#"
[[modem]]
id = "a"
port = "/dev/null"
balance_ussd = "*#10#"
self_test = { to = "+447700900999" }

[[modem]]
id = "b"
port = "/dev/zero"

[[profile]]
id = "acme"
name = "Acme Plumbing"
numbers = ["020 7946 0018"]

[[profile.question]]
id = "name"
ask = "Who am I speaking to?"
"#;
        crate::config::parse(text, std::path::Path::new("t.toml"))
            .unwrap()
            .config
    }

    #[test]
    fn the_status_page_shows_each_sims_credit_and_self_test() {
        let config = config();
        let balances = [crate::store::BalanceRow {
            modem: "a".to_string(),
            pence: Some(150),
            reply: Some("Your balance is £1.50".to_string()),
            error: None,
            checked_ms: 1_765_000_000_000,
            known_pence: Some(150),
            known_ms: Some(1_765_000_000_000),
        }];
        let tests = [crate::store::SelfTestRow {
            id: 1,
            modem: "a".to_string(),
            recipient: "+447700900999".to_string(),
            token: "7f3a9c21".to_string(),
            state: crate::domain::SelfTestState::Passed,
            started_ms: 1_765_000_000_000,
            deadline_ms: 1_765_000_600_000,
            received_ms: Some(1_765_000_004_000),
            received_on: Some("a".to_string()),
            detail: None,
        }];
        let page = status_page(
            "csrf",
            &config,
            &StatusFacts {
                balances: &balances,
                self_tests: &tests,
                ..StatusFacts::default()
            },
        );
        assert!(page.contains("<h2>SIM credit</h2>"), "{page}");
        assert!(
            page.contains("£1.50 (under £2.00: top up the SIM)"),
            "{page}"
        );
        assert!(page.contains("<h2>Daily self-test</h2>"), "{page}");
        assert!(page.contains("passed: back on a after 4.0 s"), "{page}");
        // Modem b has neither: no row for it.
        assert!(!page.contains("<td>b</td>"), "{page}");
        // With neither configured, neither section.
        let mut plain = config.clone();
        for modem in &mut plain.modems {
            modem.balance = None;
            modem.self_test = None;
        }
        let page = status_page("csrf", &plain, &StatusFacts::default());
        assert!(!page.contains("SIM credit") && !page.contains("self-test"));
    }

    #[test]
    fn metrics_name_each_sims_credit_and_self_test() {
        let balances = [crate::store::BalanceRow {
            modem: "a".to_string(),
            pence: None,
            reply: None,
            error: Some("no answer".to_string()),
            checked_ms: 1_765_000_000_000,
            known_pence: Some(-50),
            known_ms: Some(1_764_000_000_000),
        }];
        let text = balance_metrics(&balances);
        assert!(
            text.contains("textback_modem_balance_pounds{modem=\"a\"} -0.50"),
            "{text}"
        );
        assert!(
            text.contains(
                "textback_modem_balance_checked_timestamp_seconds{modem=\"a\"} 1765000000"
            )
        );
        assert!(balance_metrics(&[]).is_empty());
        assert!(self_test_metrics(&[], &[]).is_empty());
    }
}
