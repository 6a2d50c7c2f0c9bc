//! Notices that are not leads, through the daemon against real servers on loopback: a call-back
//! notice by email (aiosmtpd), WhatsApp (an HTTP recorder as the Cloud API), webhook (an HTTP
//! recorder that checks the signature) and SMS (the virtual modem), gathered per recipient; modem alerts on every channel; the morning summary on
//! a clock the test sets.

mod common;

use std::time::Duration;

use chrono::{DateTime, TimeZone, Utc};
use common::Harness;
use common::servers::{HttpRecorder, SmtpSink};
use textback::clock::Clock;
use textback::daemon::RunOptions;
use textback::leads::webhook;
use textback::modem::virtual_modem::Options;

const SECRET: &str = "0123456789abcdef0123456789abcdef";
const OWNER: &str = "+447700900456";
/// The WhatsApp Cloud API's answer to an accepted message.
const WHATSAPP_ACCEPTED: &str = r#"{"messaging_product":"whatsapp","contacts":[{"input":"447700900456","wa_id":"447700900456"}],"messages":[{"id":"wamid.HBgLNDQ3NzAwOTAwNDU2"}]}"#;

/// Keys for the harness's recipient (Owner: email and SMS), then `more`, then email and webhook
/// settings.
fn notify_config(smtp_port: u16, owner_keys: &str, more: &str) -> String {
    format!(
        r#"{owner_keys}
{more}

[notify.email]
host = "127.0.0.1"
port = {smtp_port}
security = "none"
from = "Brightwater leads <leads@brightwater.example>"

[notify.webhook]
secret = "{SECRET}"
timeout_seconds = 5
"#
    )
}

/// A missed call over SIP at a given time.
fn call_at(key: &str, number: &str, at: DateTime<Utc>) -> textback::event::Event {
    textback::event::Event::CallMissed(textback::event::MissedCall {
        key: textback::domain::CallId::new(key),
        source: textback::domain::CallSource::Sip,
        caller: textback::domain::CallerId::from_raw(number),
        caller_raw: number.to_string(),
        called: None,
        modem: None,
        sip_account: None,
        at,
    })
}

fn parse_email(raw: &[u8]) -> mail_parser::Message<'_> {
    mail_parser::MessageParser::default()
        .parse(raw)
        .expect("a parseable email")
}

fn signed(hook: &common::servers::Request) -> bool {
    let timestamp = hook
        .header(webhook::TIMESTAMP_HEADER)
        .and_then(|t| t.parse().ok())
        .unwrap_or_default();
    hook.header(webhook::SIGNATURE_HEADER)
        .is_some_and(|signature| {
            webhook::verify(SECRET.as_bytes(), signature, timestamp, &hook.body)
        })
}

fn notices(harness: &Harness) -> Vec<String> {
    harness.query_strings(
        "SELECT kind || ' ' || recipient || ' ' || channel || ' ' || state || ' ' || attempts FROM notices ORDER BY id",
    )
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_caller_to_call_back_reaches_every_channel_gathered_per_recipient() {
    let dir = tempfile::tempdir().unwrap();
    let smtp = SmtpSink::start(dir.path()).await;
    let http = HttpRecorder::start(Vec::new()).await;
    let cloud_api = HttpRecorder::start(vec![(200, WHATSAPP_ACCEPTED.to_string())]).await;
    // The owner (email, SMS, WhatsApp, webhook) gathers calls for 5 minutes (the default, said
    // here); the office wants each call at once, by webhook only.
    let harness = Harness::with_extra(
        Options::default(),
        &notify_config(
            smtp.port,
            &format!(
                "whatsapp = \"{OWNER}\"\nwebhook = \"{}\"\ncall_back_gather = \"5m\"",
                http.url("/hooks/owner")
            ),
            &format!(
                "[[profile.recipient]]\nname = \"Office\"\nwebhook = \"{}\"\ncall_back_gather = \"0s\"\n\n[notify.whatsapp]\nbase_url = \"{}\"\napi_version = \"v21.0\"\nphone_number_id = \"123456789012345\"\ntoken = \"test-token\"\ntemplate = \"new_lead\"",
                http.url("/hooks/office"),
                cloud_api.url("")
            ),
        ),
    );
    let start = Utc.with_ymd_and_hms(2026, 6, 3, 9, 0, 0).unwrap();
    let clock = Clock::starting_at(start);
    let running = harness
        .start_with(RunOptions {
            clock: clock.clone(),
            lead_retry: Some(Duration::from_millis(200)),
            ..Default::default()
        })
        .await;
    // A landline, and a withheld caller a minute later: neither can be texted.
    running
        .events
        .send(call_at("landline", "02079460001", clock.now()))
        .await
        .unwrap();
    clock.set(start + chrono::Duration::minutes(1));
    running
        .events
        .send(call_at("withheld", "anonymous", clock.now()))
        .await
        .unwrap();
    // The office hears of each call at once.
    let office = http.wait_requests("/hooks/office", 2).await;
    assert_eq!(office.len(), 2);
    for (hook, caller) in office.iter().zip(["+442079460001", ""]) {
        let body = hook.json();
        assert_eq!(body["event"], "call.missed_not_texted");
        assert_eq!(body["calls"].as_array().map(Vec::len), Some(1), "{body}");
        assert_eq!(body["calls"][0]["number"].as_str().unwrap_or(""), caller);
        assert!(signed(hook));
    }
    // The owner's are gathering: one row per channel, two calls in it, nothing sent.
    assert_eq!(
        harness.query_strings(
            "SELECT channel FROM notices WHERE recipient = 'Owner' AND state = 'pending' ORDER BY channel"
        ),
        ["email", "webhook", "whatsapp"]
    );
    assert!(cloud_api.requests().is_empty());
    assert!(http.requests().iter().all(|r| r.path != "/hooks/owner"));
    assert!(smtp.messages().is_empty());
    assert!(harness.modem.sent().iter().all(|s| s.to != OWNER));

    // Five minutes on, it goes on every channel as one message (the next call wakes the
    // workers: a mobile caller, who is texted and needs no call back).
    clock.set(start + chrono::Duration::minutes(6));
    running
        .events
        .send(call_at("mobile", "07700900123", clock.now()))
        .await
        .unwrap();
    let hooks = http.wait_requests("/hooks/owner", 1).await;
    assert_eq!(hooks.len(), 1, "one webhook for both calls");
    let body = hooks[0].json();
    assert_eq!(body["event"], "call.missed_not_texted");
    assert_eq!(body["profile"], "plumbing");
    assert_eq!(body["box"], harness.config.box_name.as_str());
    assert_eq!(body["calls"][0]["number"], "+442079460001");
    assert_eq!(body["calls"][0]["why"], "not mobile");
    assert_eq!(body["calls"][1]["number"], serde_json::Value::Null);
    assert_eq!(body["calls"][1]["local_time"], "10:01");
    assert!(signed(&hooks[0]));
    let key = hooks[0]
        .header("Idempotency-Key")
        .expect("an idempotency key")
        .to_string();
    assert!(
        key.starts_with("notice-") && key.ends_with(&format!("@{}", harness.config.box_name)),
        "{key}"
    );

    let messages = smtp.wait_messages(1).await;
    assert_eq!(messages.len(), 1, "one email for both calls");
    let email = parse_email(&messages[0]);
    assert_eq!(
        email.subject(),
        Some("Brightwater Plumbing: call back 2 missed callers")
    );
    assert_eq!(
        email.header("X-Textback-Notice").and_then(|h| h.as_text()),
        Some("call_back")
    );
    let text = email.body_text(0).expect("a text part").to_string();
    assert!(
        text.contains("020 7946 0001 at 10:00 (not mobile)"),
        "{text}"
    );
    assert!(
        text.contains("a withheld number at 10:01 (withheld)"),
        "{text}"
    );
    let html = email.body_html(0).expect("an HTML part").to_string();
    assert!(html.contains("href=\"tel:+442079460001\""), "{html}");

    // WhatsApp: the lead template, saying what the notice is about and where to look.
    let sent = cloud_api.wait_requests("/v21.0/", 1).await;
    assert_eq!(sent.len(), 1, "one WhatsApp message for both calls");
    let body = sent[0].json();
    assert_eq!(body["to"], "447700900456");
    assert_eq!(body["template"]["name"], "new_lead");
    let parameters = &body["template"]["components"][0]["parameters"];
    assert_eq!(
        parameters[2]["text"],
        "Brightwater Plumbing: call back 2 missed callers"
    );
    assert_eq!(parameters[3]["text"], "http://127.0.0.1:8080");

    let sms = harness.whole_texts_to(OWNER, 1).await;
    assert_eq!(sms.len(), 1, "one SMS for both calls");
    assert!(
        sms[0].contains("020 7946 0001 at 10:00 (not mobile)"),
        "{sms:?}"
    );
    assert!(
        sms[0].contains("a withheld number at 10:01 (withheld)"),
        "{sms:?}"
    );
    running.stop().await.unwrap();

    assert_eq!(
        notices(&harness),
        [
            "call_back Owner email delivered 1",
            "call_back Owner whatsapp delivered 1",
            "call_back Owner webhook delivered 1",
            "call_back Office webhook delivered 1",
            "call_back Office webhook delivered 1",
        ]
    );
    // A restart sends nothing again: everything delivered stays so.
    let running = harness
        .start_with(RunOptions {
            clock: clock.clone(),
            ..Default::default()
        })
        .await;
    running
        .events
        .send(call_at("mobile-2", "07700900124", clock.now()))
        .await
        .unwrap();
    assert_eq!(harness.texts_to("+447700900124", 1).await.len(), 1);
    running.stop().await.unwrap();
    assert_eq!(http.requests().len(), 3);
    assert_eq!(cloud_api.requests().len(), 1);
    assert_eq!(smtp.messages().len(), 1);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_notice_the_webhook_refuses_is_retried_then_shown_by_doctor() {
    // The owner's webhook answers 503 once, then 404 (a wrong address: no retry).
    let http = HttpRecorder::start(vec![(503, "{}".to_string()), (404, "{}".to_string())]).await;
    let harness = Harness::with_extra(
        Options::default(),
        &format!(
            "webhook = \"{}\"\ncall_back_gather = \"0s\"\n\n[notify.webhook]\nsecret = \"{SECRET}\"\n",
            http.url("/hooks/owner")
        ),
    );
    let running = harness
        .start_with(RunOptions {
            lead_retry: Some(Duration::from_millis(200)),
            ..Default::default()
        })
        .await;
    running
        .events
        .send(common::sip_call("landline", "02079460001"))
        .await
        .unwrap();
    assert_eq!(http.wait_requests("/hooks/owner", 2).await.len(), 2);
    assert_eq!(
        harness
            .wait_count(
                "SELECT count(*) FROM notices WHERE channel = 'webhook' AND state = 'failed'",
                1
            )
            .await,
        1,
        "{:?}",
        notices(&harness)
    );
    running.stop().await.unwrap();
    let checks = textback::cli::doctor::notice_checks(&harness.database());
    let webhook = checks
        .iter()
        .find(|c| c.subject.ends_with("webhook"))
        .expect("doctor lists the failed webhook notice");
    assert_eq!(webhook.verdict, textback::cli::doctor::Verdict::Failed);
    assert!(webhook.detail.contains("call_back to Owner"), "{webhook:?}");
    assert!(webhook.detail.contains("404"), "{webhook:?}");
    assert!(
        webhook.detail.contains("failed after 2 attempt(s)"),
        "{webhook:?}"
    );
    // The email waits for [notify.email]: a warning, saying what to add.
    let email = checks
        .iter()
        .find(|c| c.subject.ends_with("email"))
        .expect("doctor lists the waiting email notice");
    assert_eq!(email.verdict, textback::cli::doctor::Verdict::Warning);
    assert!(
        email.detail.contains("[notify.email] is not set"),
        "{email:?}"
    );
    assert!(email.detail.contains("waiting, nothing tried"), "{email:?}");

    // `textback notices list` tells the technician; `notices resend` tries again once the
    // address is fixed (the recorder now answers 200).
    let config = harness.write_config();
    let list = tokio::process::Command::new(env!("CARGO_BIN_EXE_textback"))
        .args(["notices", "list", "--config"])
        .arg(&config)
        .output()
        .await
        .unwrap();
    let listed = String::from_utf8_lossy(&list.stdout);
    assert!(list.status.success(), "{listed}");
    assert!(
        listed.contains("call_back to Owner by webhook: Brightwater Plumbing: call back 020 7946 0001  [FAILED after 2 tries:"),
        "{listed}"
    );
    assert!(
        listed.contains("by email: Brightwater Plumbing: call back 020 7946 0001  [waiting to try again: [notify.email] is not set"),
        "{listed}"
    );
    let id = harness.query_i64("SELECT id FROM notices WHERE channel = 'webhook'");
    let resend = tokio::process::Command::new(env!("CARGO_BIN_EXE_textback"))
        .args(["notices", "resend", &id.to_string(), "--config"])
        .arg(&config)
        .output()
        .await
        .unwrap();
    assert!(
        resend.status.success(),
        "{}",
        String::from_utf8_lossy(&resend.stderr)
    );
    let running = harness
        .start_with(RunOptions {
            lead_retry: Some(Duration::from_millis(200)),
            ..Default::default()
        })
        .await;
    assert_eq!(http.wait_requests("/hooks/owner", 3).await.len(), 3);
    assert_eq!(
        harness
            .wait_count(
                "SELECT count(*) FROM notices WHERE channel = 'webhook' AND state = 'delivered'",
                1
            )
            .await,
        1
    );
    running.stop().await.unwrap();
    // A notice still to send cannot be "resent".
    let email_id = harness.query_i64("SELECT id FROM notices WHERE channel = 'email'");
    let again = tokio::process::Command::new(env!("CARGO_BIN_EXE_textback"))
        .args(["notices", "resend", &email_id.to_string(), "--config"])
        .arg(&config)
        .output()
        .await
        .unwrap();
    assert_eq!(again.status.code(), Some(1));
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_sim_the_network_refuses_is_told_by_email_and_webhook_once() {
    let dir = tempfile::tempdir().unwrap();
    let smtp = SmtpSink::start(dir.path()).await;
    let http = HttpRecorder::start(Vec::new()).await;
    let harness = Harness::with_extra(
        Options::default(),
        &notify_config(
            smtp.port,
            &format!("webhook = \"{}\"", http.url("/hooks/owner")),
            "",
        ),
    );
    let running = harness
        .start_with(RunOptions {
            lead_retry: Some(Duration::from_millis(200)),
            modem_timing: Some(textback::daemon::ModemTiming {
                refused_recheck: Duration::from_secs(1),
                off_network_cycle: None,
                storage_tell_after: Duration::from_secs(1),
                delivery_check: Duration::from_secs(1),
                lost_tell_after: Duration::from_secs(1),
                ussd_timeout: Duration::from_secs(2),
                balance_retry: Duration::from_secs(1),
                balance_interval: None,
                self_test_timeout: None,
            }),
            ..Default::default()
        })
        .await;
    // RP cause 50: no SMS service on the SIM, or no credit. The only modem cannot carry an SMS
    // about itself; email and the webhook need no SIM.
    harness.modem.refuse_sends(Some(50)).await;
    harness.modem.call(Some(common::CALLER_NATIONAL), 2).await;
    let messages = smtp.wait_messages(1).await;
    assert_eq!(messages.len(), 1, "the alert by email");
    let email = parse_email(&messages[0]);
    assert_eq!(
        email.subject(),
        Some("textback (Brightwater Plumbing): SIM main needs attention")
    );
    assert_eq!(
        email.header("X-Textback-Notice").and_then(|h| h.as_text()),
        Some("alert")
    );
    let text = email.body_text(0).expect("a text part").to_string();
    assert!(text.contains("Top up the SIM"), "what to do: {text}");
    let hooks = http.wait_requests("/hooks/owner", 1).await;
    assert_eq!(hooks.len(), 1, "the alert by webhook");
    let body = hooks[0].json();
    assert_eq!(body["event"], "modem.alert");
    assert_eq!(body["modem"], "main");
    assert_eq!(body["kind"], "refused");
    assert!(
        body["text"]
            .as_str()
            .unwrap_or("")
            .contains("Top up the SIM"),
        "{body}"
    );
    assert!(signed(&hooks[0]));
    // /metrics counts the notices by kind, channel and outcome.
    assert_eq!(
        harness
            .wait_count("SELECT count(*) FROM notices WHERE state = 'delivered'", 2)
            .await,
        2
    );
    let token = tokio::process::Command::new(env!("CARGO_BIN_EXE_textback"))
        .args(["dashboard", "api-token", "--config"])
        .arg(harness.write_config())
        .output()
        .await
        .unwrap();
    assert!(token.status.success());
    let token = String::from_utf8_lossy(&token.stdout).trim().to_string();
    let metrics = reqwest::Client::new()
        .get(format!("http://{}/metrics", running.dashboard))
        .bearer_auth(&token)
        .send()
        .await
        .unwrap()
        .text()
        .await
        .unwrap();
    for expected in [
        "textback_notices_total{kind=\"alert\",channel=\"email\",state=\"delivered\"} 1",
        "textback_notices_total{kind=\"alert\",channel=\"webhook\",state=\"delivered\"} 1",
    ] {
        assert!(metrics.contains(expected), "{expected:?} in:\n{metrics}");
    }
    // The SIM is topped up: the held text goes. The refusals in between (one a second) were
    // not told again (one alert per modem and kind in six hours).
    harness.modem.refuse_sends(None).await;
    assert_eq!(harness.modem.wait_sent(1, common::WAIT).await.len(), 1);
    running.stop().await.unwrap();
    assert_eq!(smtp.messages().len(), 1);
    assert_eq!(http.requests().len(), 1);
    assert_eq!(
        harness.query_strings("SELECT channel || ' ' || recipient FROM alerts ORDER BY id"),
        ["email Owner", "webhook Owner"]
    );
    assert_eq!(
        harness.query_strings(
            "SELECT kind || ' ' || channel || ' ' || state FROM notices ORDER BY id"
        ),
        ["alert email delivered", "alert webhook delivered"]
    );
}

/// The emails the SMTP server holds whose `X-Textback-Notice` is `kind`.
fn emails_of(smtp: &SmtpSink, kind: &str) -> Vec<Vec<u8>> {
    smtp.messages()
        .into_iter()
        .filter(|raw| {
            parse_email(raw)
                .header("X-Textback-Notice")
                .and_then(|h| h.as_text())
                == Some(kind)
        })
        .collect()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_morning_summary_goes_once_at_its_uk_time() {
    let dir = tempfile::tempdir().unwrap();
    let smtp = SmtpSink::start(dir.path()).await;
    let harness = Harness::with_extra(
        Options::default(),
        &notify_config(
            smtp.port,
            "",
            "[profile.summary]\nat = \"07:30\"\nsms = true",
        ),
    );
    // Tuesday 2 June 2026, 10:00 in London (BST, 09:00 UTC). Monday had nothing to say: its
    // summary is recorded at start and nothing is sent.
    let tuesday = Utc.with_ymd_and_hms(2026, 6, 2, 9, 0, 0).unwrap();
    let clock = Clock::starting_at(tuesday);
    let options = || RunOptions {
        clock: clock.clone(),
        lead_retry: Some(Duration::from_millis(200)),
        ..Default::default()
    };
    let running = harness.start_with(options()).await;
    assert_eq!(
        harness
            .wait_count("SELECT count(*) FROM summaries", 1)
            .await,
        1
    );
    assert_eq!(
        harness.query_strings("SELECT day || ' ' || notices FROM summaries"),
        ["2026-06-01 0"]
    );
    // Tuesday: a landline caller (no text, to call back), and a mobile caller who becomes a lead.
    running
        .events
        .send(call_at("landline", "02079460001", clock.now()))
        .await
        .unwrap();
    harness.lead_from_a_conversation().await;
    running.stop().await.unwrap();

    // Wednesday 07:29 in London (06:29 UTC): not yet. (The daemon looks at start-up, before
    // it takes its first event: once stopped, it has looked.)
    clock.set(Utc.with_ymd_and_hms(2026, 6, 3, 6, 29, 0).unwrap());
    let running = harness.start_with(options()).await;
    running.stop().await.unwrap();
    assert_eq!(
        harness.query_i64("SELECT count(*) FROM summaries WHERE day = '2026-06-02'"),
        0
    );

    // 07:31: Tuesday's summary, by email and SMS.
    clock.set(Utc.with_ymd_and_hms(2026, 6, 3, 6, 31, 0).unwrap());
    let running = harness.start_with(options()).await;
    let deadline = tokio::time::Instant::now() + common::WAIT;
    while emails_of(&smtp, "summary").is_empty() && tokio::time::Instant::now() < deadline {
        smtp.wait_messages(smtp.messages().len() + 1).await;
    }
    let summaries = emails_of(&smtp, "summary");
    assert_eq!(summaries.len(), 1, "{:?}", notices(&harness));
    let email = parse_email(&summaries[0]);
    assert_eq!(
        email.subject(),
        Some("Brightwater Plumbing: Tuesday 2 June - 2 missed calls, 1 lead, 2 to call back")
    );
    let text = email.body_text(0).expect("a text part").to_string();
    for expected in [
        "10:00 020 7946 0001 - not texted: the caller's number is a",
        " 07700 900123 - texted",
        "lead 1 Sarah Jones (+447700900123): Boiler leaking in the loft",
        "Tue 2 Jun 10:00 020 7946 0001 - missed, not texted",
    ] {
        assert!(text.contains(expected), "{expected:?} in:\n{text}");
    }
    let texts = harness.whole_texts_to(OWNER, 3).await;
    let sms: Vec<&String> = texts
        .iter()
        .filter(|t| t.contains("to call back"))
        .collect();
    assert_eq!(sms.len(), 1, "{texts:?}");
    assert!(
        sms[0].starts_with("Brightwater Plumbing Tue 2 Jun: 2 missed calls, 1 lead, 2 to call back. Call back: lead 1 Sarah Jones; 020 7946 0001"),
        "{sms:?}"
    );
    running.stop().await.unwrap();

    // Once per day, across restarts.
    let running = harness.start_with(options()).await;
    running.stop().await.unwrap();
    assert_eq!(
        harness.query_strings("SELECT day || ' ' || notices FROM summaries ORDER BY day"),
        ["2026-06-01 0", "2026-06-02 2"]
    );
    assert_eq!(
        harness.query_i64("SELECT count(*) FROM notices WHERE kind = 'summary'"),
        1
    );
    assert_eq!(
        harness.query_i64(
            "SELECT count(*) FROM messages WHERE peer = '+447700900456' AND body LIKE '%to call back%'"
        ),
        1
    );
}
