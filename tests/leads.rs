//! Lead delivery against real servers on loopback: an SMTP server (aiosmtpd) whose Maildir the test
//! parses, an HTTP server that checks the webhook's signature and the WhatsApp Cloud API request,
//! and the owner's SMS through the virtual modem.

mod common;

use std::time::Duration;

use common::Harness;
use common::servers::{HttpRecorder, SmtpSink, free_port};
use textback::daemon::RunOptions;
use textback::leads::token::TranscriptToken;
use textback::leads::webhook;
use textback::modem::virtual_modem::Options;

const SECRET: &str = "0123456789abcdef0123456789abcdef";
const OWNER: &str = "+447700900456";
/// The Cloud API's answer to an accepted message.
const ACCEPTED: &str = r#"{"messaging_product":"whatsapp","contacts":[{"input":"447700900456","wa_id":"447700900456"}],"messages":[{"id":"wamid.HBgLNDQ3NzAwOTAwNDU2"}]}"#;

fn notify_config(smtp_port: u16, whatsapp: &str, webhook: &str) -> String {
    format!(
        r#"whatsapp = "{OWNER}"
webhook = "{webhook}"

[notify.email]
host = "127.0.0.1"
port = {smtp_port}
security = "none"
from = "Brightwater leads <leads@brightwater.example>"

[notify.whatsapp]
base_url = "{whatsapp}"
api_version = "v21.0"
phone_number_id = "123456789012345"
token = "test-token"
template = "new_lead"

[notify.webhook]
secret = "{SECRET}"
timeout_seconds = 5
"#
    )
}

fn quick_retries() -> RunOptions {
    RunOptions {
        lead_retry: Some(Duration::from_millis(200)),
        ..Default::default()
    }
}

fn link_key(harness: &Harness) -> Vec<u8> {
    let connection = textback::store::open_read_only(&harness.database()).unwrap();
    textback::store::Tx::reader(&connection)
        .setting(textback::leads::deliver::LINK_KEY_SETTING)
        .unwrap()
        .expect("the daemon made a link key")
}

fn deliveries(harness: &Harness) -> Vec<String> {
    harness.query_strings(
        "SELECT channel || ' ' || state || ' ' || attempts FROM lead_deliveries ORDER BY channel",
    )
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_lead_reaches_every_channel_once() {
    let dir = tempfile::tempdir().unwrap();
    let smtp = SmtpSink::start(dir.path()).await;
    // The worker takes a lead's deliveries in the order the recipient lists its channels (email,
    // sms, whatsapp, webhook): the WhatsApp request gets the Cloud API's answer, the webhook `{}`.
    let http = HttpRecorder::start(vec![(200, ACCEPTED.to_string())]).await;
    let harness = Harness::with_extra(
        Options::default(),
        &notify_config(smtp.port, &http.url(""), &http.url("/hooks/lead")),
    );
    let running = harness.start().await;
    harness.lead_from_a_conversation().await;
    assert_eq!(
        harness
            .wait_count(
                "SELECT count(*) FROM lead_deliveries WHERE state = 'delivered'",
                4
            )
            .await,
        4,
        "{:?}",
        deliveries(&harness)
    );
    let key = link_key(&harness);
    running.stop().await.unwrap();
    assert_eq!(
        deliveries(&harness),
        [
            "email delivered 1",
            "sms delivered 1",
            "webhook delivered 1",
            "whatsapp delivered 1"
        ]
    );

    // The email, as the SMTP server stored it.
    let messages = smtp.wait_messages(1).await;
    assert_eq!(messages.len(), 1, "one email");
    let email = mail_parser::MessageParser::default()
        .parse(&messages[0])
        .expect("a parseable email");
    let subject = email.subject().unwrap_or_default();
    assert!(subject.contains("Sarah Jones"), "{subject}");
    assert_eq!(
        email.header("X-Textback-Lead").and_then(|h| h.as_text()),
        Some("1")
    );
    assert_eq!(
        email.header("Auto-Submitted").and_then(|h| h.as_text()),
        Some("auto-generated")
    );
    let text = email.body_text(0).expect("a text part").to_string();
    let html = email.body_html(0).expect("an HTML part").to_string();
    for expected in [
        "Sarah Jones",
        "+447700900123",
        "07700 900123",
        "Boiler leaking in the loft",
        "SW11 4AB",
    ] {
        assert!(
            text.contains(expected),
            "{expected:?} in the text part:\n{text}"
        );
        assert!(
            html.contains(expected),
            "{expected:?} in the HTML part:\n{html}"
        );
    }
    assert!(html.contains("href=\"tel:+447700900123\""), "{html}");
    // The transcript link: signed for this lead with the box's key, and valid now.
    let link = text
        .split_whitespace()
        .find(|w| w.starts_with("http://127.0.0.1:8080/t/"))
        .expect("a transcript link in the text");
    let token = link.trim_start_matches("http://127.0.0.1:8080/t/");
    assert_eq!(
        TranscriptToken::verify(&key, token, chrono::Utc::now().timestamp()),
        Ok(1)
    );
    assert!(
        TranscriptToken::verify(b"another key", token, chrono::Utc::now().timestamp()).is_err()
    );

    // The webhook: signed over the timestamp and the body, with an idempotency key.
    let hooks = http.wait_requests("/hooks/lead", 1).await;
    assert_eq!(hooks.len(), 1);
    let hook = &hooks[0];
    assert_eq!(hook.method, "POST");
    let timestamp: i64 = hook
        .header(webhook::TIMESTAMP_HEADER)
        .and_then(|t| t.parse().ok())
        .expect("a timestamp header");
    let signature = hook.header(webhook::SIGNATURE_HEADER).expect("a signature");
    assert!(webhook::verify(
        SECRET.as_bytes(),
        signature,
        timestamp,
        &hook.body
    ));
    assert!(!webhook::verify(
        b"not the secret at all",
        signature,
        timestamp,
        &hook.body
    ));
    assert!(
        hook.header(webhook::IDEMPOTENCY_HEADER)
            .is_some_and(|k| k.starts_with("lead-1-"))
    );
    let body = hook.json();
    assert_eq!(body["lead_id"], 1);
    assert_eq!(body["caller"]["number"], "+447700900123");
    assert_eq!(body["caller"]["name"], "Sarah Jones");
    assert_eq!(body["complete"], true);
    assert_eq!(body["answers"][0]["answer"], "SW11 4AB");

    // WhatsApp: the Cloud API's documented request for a template message.
    let sent = http.wait_requests("/v21.0/", 1).await;
    assert_eq!(sent.len(), 1);
    let request = &sent[0];
    assert_eq!(request.method, "POST");
    assert_eq!(request.path, "/v21.0/123456789012345/messages");
    assert_eq!(request.header("Authorization"), Some("Bearer test-token"));
    let body = request.json();
    assert_eq!(body["messaging_product"], "whatsapp");
    assert_eq!(body["to"], "447700900456");
    assert_eq!(body["type"], "template");
    assert_eq!(body["template"]["name"], "new_lead");
    assert_eq!(body["template"]["language"]["code"], "en_GB");
    let parameters = body["template"]["components"][0]["parameters"]
        .as_array()
        .expect("body parameters");
    assert_eq!(body["template"]["components"][0]["type"], "body");
    assert_eq!(parameters.len(), 4);
    assert_eq!(parameters[0]["type"], "text");
    assert_eq!(parameters[0]["text"], "Sarah Jones");
    assert_eq!(parameters[1]["text"], "07700 900123");
    assert!(
        parameters[3]["text"]
            .as_str()
            .is_some_and(|t| t.starts_with("http://127.0.0.1:8080/t/"))
    );
    assert_eq!(
        harness.query_strings("SELECT external_id FROM lead_deliveries WHERE channel = 'whatsapp'"),
        ["wamid.HBgLNDQ3NzAwOTAwNDU2"]
    );

    // The owner's SMS, from the same SIM, GSM-7 only.
    let owner: String = harness
        .modem
        .sent()
        .iter()
        .filter(|s| s.to == OWNER)
        .map(|s| s.text.clone())
        .collect();
    assert!(owner.contains("Sarah Jones"), "{owner}");
    assert!(textback::codec::pdu::is_gsm7(&owner), "{owner}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_webhook_that_fails_for_now_is_retried_with_the_same_key_and_delivered_once() {
    let http = HttpRecorder::start(vec![(503, "{}".to_string()), (503, "{}".to_string())]).await;
    let harness = Harness::with_extra(
        Options::default(),
        &format!(
            "webhook = \"{}\"\n\n[notify.webhook]\nsecret = \"{SECRET}\"\n",
            http.url("/hooks/lead")
        ),
    );
    let running = harness.start_with(quick_retries()).await;
    harness.lead_from_a_conversation().await;
    let hooks = http.wait_requests("/hooks/lead", 3).await;
    assert_eq!(hooks.len(), 3, "two 503s, then accepted");
    assert_eq!(
        harness
            .wait_count(
                "SELECT count(*) FROM lead_deliveries WHERE channel = 'webhook' AND state = 'delivered'",
                1
            )
            .await,
        1
    );
    running.stop().await.unwrap();
    let keys: Vec<&str> = hooks
        .iter()
        .map(|h| h.header(webhook::IDEMPOTENCY_HEADER).unwrap())
        .collect();
    assert!(keys.iter().all(|k| *k == keys[0]), "{keys:?}");
    assert_eq!(hooks[0].body, hooks[2].body);
    assert_eq!(
        harness.query_strings("SELECT attempts || ' ' || coalesce(last_error, '') FROM lead_deliveries WHERE channel = 'webhook'"),
        ["3 "]
    );
    // Nothing more once delivered.
    assert_eq!(http.requests().len(), 3);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_restart_between_a_failure_and_its_retry_loses_nothing() {
    // The webhook's server is down: the first try fails (connection refused).
    let port = free_port();
    let harness = Harness::with_extra(
        Options::default(),
        &format!("webhook = \"http://127.0.0.1:{port}/hooks/lead\"\n"),
    );
    let running = harness.start().await;
    harness.lead_from_a_conversation().await;
    assert_eq!(
        harness
            .wait_count(
                "SELECT count(*) FROM lead_deliveries WHERE channel = 'webhook' AND attempts = 1 AND state = 'pending' AND last_error IS NOT NULL",
                1
            )
            .await,
        1
    );
    running.stop().await.unwrap();

    // The server comes up; the daemon starts again and delivers at once, not after its back-off.
    let http = HttpRecorder::start_on(port, Vec::new()).await;
    let running = harness.start().await;
    assert_eq!(http.wait_requests("/hooks/lead", 1).await.len(), 1);
    assert_eq!(
        harness
            .wait_count(
                "SELECT count(*) FROM lead_deliveries WHERE channel = 'webhook' AND state = 'delivered'",
                1
            )
            .await,
        1
    );
    running.stop().await.unwrap();
    assert_eq!(http.requests().len(), 1, "sent once");
    assert_eq!(harness.query_i64("SELECT count(*) FROM leads"), 1);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_permanent_refusal_is_recorded_and_resend_tries_again() {
    // WhatsApp refuses the template (parameter count mismatch): no use retrying.
    let http = HttpRecorder::start(vec![
        (
            400,
            r#"{"error":{"message":"(#132000) Number of parameters does not match the expected number of params","type":"OAuthException","code":132000,"fbtrace_id":"AbC"}}"#.to_string(),
        ),
        (200, ACCEPTED.to_string()),
    ])
    .await;
    let harness = Harness::with_extra(
        Options::default(),
        &format!(
            "whatsapp = \"{OWNER}\"\n\n[notify.whatsapp]\nbase_url = \"{}\"\nphone_number_id = \"123456789012345\"\ntoken = \"t\"\ntemplate = \"new_lead\"\n",
            http.url("")
        ),
    );
    let running = harness.start_with(quick_retries()).await;
    harness.lead_from_a_conversation().await;
    assert_eq!(
        harness
            .wait_count(
                "SELECT count(*) FROM lead_deliveries WHERE channel = 'whatsapp' AND state = 'failed'",
                1
            )
            .await,
        1
    );
    let error = harness.query_strings(
        "SELECT attempts || ' ' || last_error FROM lead_deliveries WHERE channel = 'whatsapp'",
    );
    assert!(error[0].starts_with("1 "), "tried once: {error:?}");
    assert!(error[0].contains("132000"), "{error:?}");

    // `textback leads show` tells the technician; `leads resend` tries again (the template is
    // fixed now: the server accepts).
    let config = harness.write_config();
    let show = tokio::process::Command::new(env!("CARGO_BIN_EXE_textback"))
        .args(["leads", "show", "1", "--config"])
        .arg(&config)
        .output()
        .await
        .unwrap();
    let shown = String::from_utf8_lossy(&show.stdout);
    assert!(show.status.success(), "{shown}");
    for expected in [
        "Sarah Jones",
        "transcript",
        "Boiler leaking in the loft",
        "by whatsapp to +447700900456: FAILED after 1 try",
        "132000",
    ] {
        assert!(shown.contains(expected), "{expected:?} in:\n{shown}");
    }
    let resend = tokio::process::Command::new(env!("CARGO_BIN_EXE_textback"))
        .args(["leads", "resend", "1", "--config"])
        .arg(&config)
        .output()
        .await
        .unwrap();
    assert!(
        resend.status.success(),
        "{}",
        String::from_utf8_lossy(&resend.stderr)
    );
    assert_eq!(http.wait_requests("/", 2).await.len(), 2);
    assert_eq!(
        harness
            .wait_count(
                "SELECT count(*) FROM lead_deliveries WHERE channel = 'whatsapp' AND state = 'delivered'",
                1
            )
            .await,
        1
    );
    running.stop().await.unwrap();
    // `resend` sends the lead again on every channel: the owner's SMS too.
    let owner_texts = harness
        .modem
        .sent()
        .iter()
        .filter(|s| s.to == OWNER && s.part.is_none_or(|(_, _, sequence)| sequence == 1))
        .count();
    assert_eq!(owner_texts, 2, "once for the lead, once for the resend");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_lead_is_routed_to_the_department_its_answer_names() {
    let harness = Harness::with_extra(
        Options::default(),
        r#"
[[profile.recipient]]
name = "Heating team"
sms = "+447700900777"
[profile.recipient.when]
question = "reason"
contains = ["boiler", "radiator"]

[[profile.recipient]]
name = "Drainage team"
sms = "+447700900888"
[profile.recipient.when]
question = "reason"
contains = ["drain", "toilet"]
"#,
    );
    let running = harness.start().await;
    // "Boiler leaking in the loft": the heating team, and the owner (who gets every lead).
    harness.lead_from_a_conversation().await;
    assert_eq!(
        harness
            .wait_count(
                "SELECT count(*) FROM lead_deliveries WHERE channel = 'sms' AND state = 'delivered'",
                2
            )
            .await,
        2
    );
    running.stop().await.unwrap();
    assert_eq!(
        harness
            .query_strings("SELECT recipient || ' ' || channel FROM lead_deliveries ORDER BY id"),
        ["Owner email", "Owner sms", "Heating team sms"]
    );
    let to: Vec<String> = harness
        .modem
        .sent()
        .into_iter()
        .filter(|s| s.to != common::CALLER)
        .map(|s| s.to)
        .collect();
    assert!(to.contains(&"+447700900777".to_string()), "{to:?}");
    assert!(!to.contains(&"+447700900888".to_string()), "{to:?}");
}
