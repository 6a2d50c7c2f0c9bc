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
    assert!(textback::codec::gsm7::is_gsm7(&owner), "{owner}");
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

/// An SMS-DELIVER PDU from the caller, as the modem would hand it over: the same text with the
/// same service-centre time is the same SMS delivered again.
fn pdu_from_caller(text: &str, second: u8) -> String {
    let stamp = textback::codec::pdu::Timestamp {
        year: 2025,
        month: 6,
        day: 3,
        hour: 14,
        minute: 40,
        second,
        zone_quarter_hours: 4,
    };
    let parts = textback::codec::pdu::encode_deliver(common::CALLER, text, &stamp, 0).unwrap();
    assert_eq!(parts.len(), 1, "one part");
    parts[0].clone()
}

/// The caller's text reaches the daemon as the modem reports it.
async fn deliver_pdu(running: &textback::daemon::Running, pdu: &str) {
    running
        .events
        .send(textback::event::Event::SmsReceived(
            textback::event::InboundSms {
                modem: textback::domain::ModemId::parse("main").unwrap(),
                pdu: pdu.to_string(),
                storage: None,
                at: chrono::Utc::now(),
            },
        ))
        .await
        .unwrap();
}

fn header<'a>(email: &'a mail_parser::Message<'a>, name: &str) -> String {
    email
        .header_raw(name)
        .map(|value| value.trim().to_string())
        .unwrap_or_default()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_reply_after_the_lead_is_told_to_its_recipients_once() {
    const REPLY: &str = "Can you come after 3? The side gate is open";
    const LATER: &str = "Also the stopcock is under the sink";
    let dir = tempfile::tempdir().unwrap();
    let smtp = SmtpSink::start(dir.path()).await;
    let http = HttpRecorder::start(Vec::new()).await;
    // The owner (email, SMS, webhook) hears of replies; the office (email) only of leads.
    let harness = Harness::with_extra(
        Options::default(),
        &format!(
            r#"webhook = "{}"

[[profile.recipient]]
name = "Office"
email = "office@brightwater.example"
late_replies = false

[notify.email]
host = "127.0.0.1"
port = {}
security = "none"
from = "Brightwater leads <leads@brightwater.example>"

[notify.webhook]
secret = "{SECRET}"
timeout_seconds = 5
"#,
            http.url("/hooks/lead"),
            smtp.port
        ),
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
    assert_eq!(smtp.wait_messages(2).await.len(), 2, "the lead, to both");

    // The caller texts again; the modem hands the same SMS over twice (a re-read after a
    // restart, say); then another text.
    let reply = pdu_from_caller(REPLY, 1);
    deliver_pdu(&running, &reply).await;
    deliver_pdu(&running, &reply).await;
    deliver_pdu(&running, &pdu_from_caller(LATER, 2)).await;
    // Events are handled in order: once the later text's notices are out, the repeat was seen.
    assert_eq!(
        harness
            .wait_count(
                "SELECT count(*) FROM lead_deliveries WHERE reply_id != 0 AND state = 'delivered'",
                6
            )
            .await,
        6,
        "{:?}",
        harness.query_strings(
            "SELECT reply_id || ' ' || recipient || ' ' || channel || ' ' || state || ' ' || coalesce(last_error, '') FROM lead_deliveries ORDER BY id"
        )
    );
    let messages = smtp.wait_messages(4).await;
    let hooks = http.wait_requests("/hooks/lead", 3).await;

    // The dashboard page the notices link to shows the replies and what was sent about them.
    let key = link_key(&harness);
    let dashboard_page = {
        let now = chrono::Utc::now().timestamp();
        let token = TranscriptToken::issue(&key, 1, now + 3600);
        reqwest::get(format!("http://{}/t/{token}", running.dashboard))
            .await
            .unwrap()
            .text()
            .await
            .unwrap()
    };
    running.stop().await.unwrap();

    // Stored once each, in the lead's transcript; each told once per recipient and channel.
    let reply_ids = harness.query_strings(&format!(
        "SELECT CAST(m.id AS TEXT) FROM messages m JOIN leads l ON l.conversation_id = m.conversation_id WHERE m.direction = 'in' AND m.body IN ('{REPLY}', '{LATER}') ORDER BY m.id"
    ));
    assert_eq!(reply_ids.len(), 2, "the repeat was not stored again");
    let (first, second) = (&reply_ids[0], &reply_ids[1]);
    assert_eq!(
        harness.query_strings(
            "SELECT reply_id || ' ' || recipient || ' ' || channel FROM lead_deliveries WHERE reply_id != 0 ORDER BY reply_id, channel"
        ),
        [
            format!("{first} Owner email"),
            format!("{first} Owner sms"),
            format!("{first} Owner webhook"),
            format!("{second} Owner email"),
            format!("{second} Owner sms"),
            format!("{second} Owner webhook"),
        ],
        "nothing for the office (late_replies = false)"
    );
    let transcript = harness.read(|tx| {
        let lead = tx.lead(textback::domain::LeadId(1)).unwrap().unwrap();
        tx.conversation_messages(lead.lead.conversation).unwrap()
    });
    assert_eq!(
        transcript.iter().filter(|m| m.body == REPLY).count(),
        1,
        "{transcript:?}"
    );
    let journal = harness.query_strings("SELECT detail FROM journal WHERE step = 'late_reply'");
    assert_eq!(journal.len(), 2, "{journal:?}");
    assert!(
        journal[0].contains("Sarah Jones") && journal[0].contains("sent to 1 recipient"),
        "{journal:?}"
    );

    // Email: the lead to both, each reply to the owner only, in the lead's thread.
    assert_eq!(messages.len(), 4, "2 leads + 2 replies");
    let emails: Vec<mail_parser::Message> = messages
        .iter()
        .map(|raw| mail_parser::MessageParser::default().parse(raw).unwrap())
        .collect();
    let to_office: Vec<_> = emails
        .iter()
        .filter(|e| header(e, "To").contains("office@"))
        .collect();
    assert_eq!(to_office.len(), 1, "the office got the lead only");
    assert!(header(to_office[0], "X-Textback-Reply").is_empty());
    let lead_email = emails
        .iter()
        .find(|e| header(e, "To").contains("owner@") && header(e, "X-Textback-Reply").is_empty())
        .expect("the lead's email to the owner");
    let reply_email = emails
        .iter()
        .find(|e| header(e, "X-Textback-Reply") == *first)
        .expect("an email about the reply");
    assert!(header(reply_email, "To").contains("owner@"));
    let subject = reply_email.subject().unwrap_or_default();
    assert!(
        subject.starts_with("Lead 1: Sarah Jones replied again") && subject.contains(REPLY),
        "{subject}"
    );
    assert_eq!(header(reply_email, "X-Textback-Lead"), "1");
    assert_eq!(
        header(reply_email, "In-Reply-To"),
        header(lead_email, "Message-ID"),
        "threaded under the lead's email"
    );
    assert_ne!(
        header(reply_email, "Message-ID"),
        header(lead_email, "Message-ID")
    );
    let text = reply_email.body_text(0).unwrap().to_string();
    let html = reply_email.body_html(0).unwrap().to_string();
    for expected in ["Sarah Jones", "07700 900123", REPLY, "lead 1"] {
        assert!(text.contains(expected), "{expected:?} in:\n{text}");
        assert!(html.contains(expected), "{expected:?} in:\n{html}");
    }
    let link = text
        .split_whitespace()
        .find(|w| w.starts_with("http://127.0.0.1:8080/t/"))
        .expect("the transcript link");
    assert_eq!(
        TranscriptToken::verify(
            &key,
            link.trim_start_matches("http://127.0.0.1:8080/t/"),
            chrono::Utc::now().timestamp()
        ),
        Ok(1)
    );

    // Webhook: the lead, then each reply as event lead.reply, signed, each with its own key.
    assert_eq!(hooks.len(), 3, "one POST each");
    for hook in &hooks {
        let timestamp: i64 = hook
            .header(webhook::TIMESTAMP_HEADER)
            .and_then(|t| t.parse().ok())
            .unwrap();
        assert!(webhook::verify(
            SECRET.as_bytes(),
            hook.header(webhook::SIGNATURE_HEADER).unwrap(),
            timestamp,
            &hook.body
        ));
    }
    let events: Vec<String> = hooks
        .iter()
        .map(|h| h.json()["event"].as_str().unwrap_or("").to_string())
        .collect();
    assert_eq!(events, ["lead", "lead.reply", "lead.reply"]);
    let body = hooks[1].json();
    assert_eq!(body["lead_id"], 1);
    assert_eq!(body["reply"]["text"], REPLY);
    assert_eq!(body["reply"]["id"].to_string(), *first);
    assert_eq!(body["caller"]["name"], "Sarah Jones");
    assert!(body["reply"]["received_at"].as_str().is_some());
    let keys: Vec<&str> = hooks
        .iter()
        .map(|h| h.header(webhook::IDEMPOTENCY_HEADER).unwrap())
        .collect();
    assert!(keys[0].starts_with("lead-1-owner-"), "{keys:?}");
    assert!(
        keys[1].starts_with(&format!("lead-1-reply-{first}-owner-")),
        "{keys:?}"
    );
    assert_ne!(keys[1], keys[2]);

    // The owner's phone: a short GSM-7 text with each reply (parts joined in the order sent).
    let owner: String = harness
        .modem
        .sent()
        .iter()
        .filter(|s| s.to == OWNER)
        .map(|s| s.text.clone())
        .collect();
    assert_eq!(owner.matches(REPLY).count(), 1, "{owner}");
    assert_eq!(
        owner
            .matches("Lead 1: Sarah Jones 07700 900123 replied ")
            .count(),
        2,
        "{owner}"
    );
    assert!(textback::codec::gsm7::is_gsm7(&owner), "{owner}");

    // The dashboard's lead page: the reply in the transcript, the notices labelled.
    assert!(dashboard_page.contains(REPLY), "{dashboard_page}");
    assert!(
        dashboard_page.contains(&format!("reply {first}</a>")),
        "{dashboard_page}"
    );

    // `textback leads show`.
    let show = tokio::process::Command::new(env!("CARGO_BIN_EXE_textback"))
        .args(["leads", "show", "1", "--config"])
        .arg(harness.write_config())
        .output()
        .await
        .unwrap();
    let shown = String::from_utf8_lossy(&show.stdout);
    assert!(show.status.success(), "{shown}");
    let about = |what: &str| format!("  {what:<9} ");
    for expected in [
        format!("[reply {first}]  {REPLY}"),
        format!(
            "{}Owner by email to owner@brightwater.example: delivered",
            about(&format!("reply {first}"))
        ),
        format!("{}Owner by webhook", about(&format!("reply {second}"))),
        format!("{}Office by email", about("lead")),
    ] {
        assert!(shown.contains(&expected), "{expected:?} in:\n{shown}");
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn with_late_replies_off_a_reply_is_only_kept() {
    let harness = Harness::with_extra(Options::default(), "\n[notify]\nlate_replies = false\n");
    let running = harness.start().await;
    harness.lead_from_a_conversation().await;
    deliver_pdu(&running, &pdu_from_caller("One more thing", 1)).await;
    assert_eq!(harness.wait_journal("late_reply", 1).await, 1);
    running.stop().await.unwrap();
    let journal = harness.query_strings("SELECT detail FROM journal WHERE step = 'late_reply'");
    assert!(
        journal[0].contains("not told (notify.late_replies = false)"),
        "{journal:?}"
    );
    assert_eq!(
        harness.query_i64("SELECT count(*) FROM lead_deliveries WHERE reply_id != 0"),
        0
    );
    assert_eq!(
        harness.query_i64(
            "SELECT count(*) FROM messages WHERE direction = 'in' AND body = 'One more thing' AND conversation_id IS NOT NULL"
        ),
        1,
        "kept in the transcript"
    );
}

/// `[notify.email]` for a TLS server on loopback; `ca_file` when given.
fn tls_email_config(port: u16, security: &str, ca_file: Option<&std::path::Path>) -> String {
    let ca = ca_file
        .map(|path| format!("ca_file = \"{}\"\n", path.display()))
        .unwrap_or_default();
    format!(
        r#"
[notify.email]
host = "127.0.0.1"
port = {port}
security = "{security}"
from = "Brightwater leads <leads@brightwater.example>"
{ca}"#
    )
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn lead_email_goes_over_starttls_and_implicit_tls_to_a_relay_with_its_own_ca() {
    for (security, implicit) in [("starttls", false), ("tls", true)] {
        let dir = tempfile::tempdir().unwrap();
        let (smtp, ca) = SmtpSink::start_tls(dir.path(), implicit).await;
        let harness = Harness::with_extra(
            Options::default(),
            &tls_email_config(smtp.port, security, Some(&ca)),
        );
        let running = harness.start_with(quick_retries()).await;
        harness.lead_from_a_conversation().await;
        assert_eq!(
            harness
                .wait_count(
                    "SELECT count(*) FROM lead_deliveries WHERE channel = 'email' AND state = 'delivered'",
                    1
                )
                .await,
            1,
            "{security}: {:?}",
            harness.query_strings(
                "SELECT state || ' ' || coalesce(last_error, '') FROM lead_deliveries"
            )
        );
        running.stop().await.unwrap();
        let messages = smtp.wait_messages(1).await;
        let email = mail_parser::MessageParser::default()
            .parse(&messages[0])
            .expect("a parseable email");
        assert!(
            email.subject().unwrap_or_default().contains("Sarah Jones"),
            "{security}"
        );
    }

    // Without the CA the server's certificate is not trusted: the email fails at once, in words
    // that name the key to look at, and nothing reaches the server.
    let dir = tempfile::tempdir().unwrap();
    let (smtp, _ca) = SmtpSink::start_tls(dir.path(), true).await;
    let harness = Harness::with_extra(
        Options::default(),
        &tls_email_config(smtp.port, "tls", None),
    );
    let running = harness.start_with(quick_retries()).await;
    harness.lead_from_a_conversation().await;
    assert_eq!(
        harness
            .wait_count(
                "SELECT count(*) FROM lead_deliveries WHERE channel = 'email' AND state = 'failed'",
                1
            )
            .await,
        1,
        "{:?}",
        harness
            .query_strings("SELECT state || ' ' || coalesce(last_error, '') FROM lead_deliveries")
    );
    running.stop().await.unwrap();
    let error =
        harness.query_strings("SELECT last_error FROM lead_deliveries WHERE channel = 'email'");
    assert!(
        error[0].contains("TLS") && error[0].contains("notify.email"),
        "{error:?}"
    );
    assert!(smtp.messages().is_empty());
}
