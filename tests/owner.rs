//! The owner in the loop, through the daemon with real parts: lead states set from the
//! dashboard (a real session and CSRF token), the API (a bearer token) and the CLI (the built
//! binary), each told to a real HTTP server on loopback as a signed `lead.state` webhook.

mod common;

use std::process::Stdio;

use common::Harness;
use common::servers::HttpRecorder;
use textback::leads::webhook;
use textback::modem::virtual_modem::Options;
use tokio::io::AsyncWriteExt;

const PASSWORD: &str = "correct horse battery";
const SECRET: &str = "0123456789abcdef0123456789abcdef";

/// Runs the binary with the harness's config; returns (exit code, stdout, stderr).
async fn textback(harness: &Harness, args: &[&str], stdin: Option<&str>) -> (i32, String, String) {
    let config = harness.write_config();
    let mut child = tokio::process::Command::new(env!("CARGO_BIN_EXE_textback"))
        .args(args)
        .arg("--config")
        .arg(&config)
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .expect("run textback");
    if let (Some(input), Some(mut pipe)) = (stdin, child.stdin.take()) {
        pipe.write_all(input.as_bytes()).await.unwrap();
    }
    let out = child.wait_with_output().await.unwrap();
    (
        out.status.code().unwrap_or(-1),
        String::from_utf8_lossy(&out.stdout).into_owned(),
        String::from_utf8_lossy(&out.stderr).into_owned(),
    )
}

fn client() -> reqwest::Client {
    reqwest::Client::builder()
        .redirect(reqwest::redirect::Policy::none())
        .build()
        .unwrap()
}

/// Logs in over HTTP; returns the session cookie header value.
async fn log_in(http: &reqwest::Client, base: &str) -> String {
    let form = http.get(format!("{base}/login")).send().await.unwrap();
    let nonce = form
        .headers()
        .get_all("set-cookie")
        .iter()
        .filter_map(|v| v.to_str().ok())
        .find_map(|v| v.strip_prefix("textback_login="))
        .and_then(|v| v.split(';').next())
        .expect("a login cookie")
        .to_string();
    let ok = http
        .post(format!("{base}/login"))
        .header("cookie", format!("textback_login={nonce}"))
        .form(&[("password", PASSWORD), ("csrf", nonce.as_str())])
        .send()
        .await
        .unwrap();
    assert_eq!(ok.status(), 303);
    let session = ok
        .headers()
        .get_all("set-cookie")
        .iter()
        .filter_map(|v| v.to_str().ok())
        .find_map(|v| v.strip_prefix("textback_session="))
        .and_then(|v| v.split(';').next())
        .expect("a session cookie")
        .to_string();
    format!("textback_session={session}")
}

/// A hidden `csrf` input's value in a page.
fn csrf_in(page: &str) -> String {
    let at = page.find("name=\"csrf\" value=\"").expect("a CSRF field") + 19;
    page[at..].split('"').next().unwrap_or("").to_string()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_lead_is_marked_from_the_dashboard_the_api_and_the_cli_and_the_crm_is_told_each_time() {
    let http_server = HttpRecorder::start(Vec::new()).await;
    let harness = Harness::with_extra(
        Options::default(),
        &format!(
            "webhook = \"{}\"\n\n[notify.webhook]\nsecret = \"{SECRET}\"\ntimeout_seconds = 5\n",
            http_server.url("/crm")
        ),
    );
    let running = harness.start().await;
    harness.lead_from_a_conversation().await;
    // The lead's own webhook first.
    assert_eq!(http_server.wait_requests("/crm", 1).await.len(), 1);
    let (code, _, stderr) = textback(
        &harness,
        &["dashboard", "set-password", "--stdin"],
        Some(&format!("{PASSWORD}\n")),
    )
    .await;
    assert_eq!(code, 0, "{stderr}");
    let (_, token, _) = textback(&harness, &["dashboard", "api-token"], None).await;
    let token = token.trim().to_string();
    let base = format!("http://{}", running.dashboard);
    let http = client();

    // New until someone acts on it.
    let (code, list, _) = textback(&harness, &["leads", "list"], None).await;
    assert_eq!(code, 0);
    assert!(list.lines().next().unwrap().ends_with("  new"), "{list}");

    // The dashboard: the lead page shows the state and a button per other state.
    let cookie = log_in(&http, &base).await;
    let page = http
        .get(format!("{base}/leads/1"))
        .header("cookie", &cookie)
        .send()
        .await
        .unwrap()
        .text()
        .await
        .unwrap();
    assert!(
        page.contains("State: <strong class=\"state-new\">new</strong>"),
        "{page}"
    );
    assert!(page.contains("id=\"state-called_back\""), "{page}");
    let csrf = csrf_in(&page);
    // Without the session's CSRF token, or without a session, nothing changes.
    let forged = http
        .post(format!("{base}/leads/1/state"))
        .header("cookie", &cookie)
        .form(&[("csrf", "forged"), ("state", "won")])
        .send()
        .await
        .unwrap();
    assert_eq!(forged.status(), 403);
    let anonymous = http
        .post(format!("{base}/leads/1/state"))
        .form(&[("csrf", csrf.as_str()), ("state", "won")])
        .send()
        .await
        .unwrap();
    assert_eq!(anonymous.status(), 303);
    assert_eq!(anonymous.headers()["location"], "/login");
    assert_eq!(harness.query_strings("SELECT state FROM leads"), ["new"]);
    let marked = http
        .post(format!("{base}/leads/1/state"))
        .header("cookie", &cookie)
        .form(&[("csrf", csrf.as_str()), ("state", "called_back")])
        .send()
        .await
        .unwrap();
    assert_eq!(marked.status(), 303);
    let page = http
        .get(format!("{base}/leads/1"))
        .header("cookie", &cookie)
        .send()
        .await
        .unwrap()
        .text()
        .await
        .unwrap();
    assert!(page.contains(">called back</strong>"), "{page}");
    assert!(page.contains("by dashboard"), "{page}");

    // The API, with the bearer token; a state that is not one is refused in words.
    let api = |state: &str, by: Option<&str>| {
        let mut body = serde_json::json!({ "state": state });
        if let Some(by) = by {
            body["by"] = serde_json::json!(by);
        }
        http.post(format!("{base}/api/v1/leads/1/state"))
            .bearer_auth(&token)
            .json(&body)
            .send()
    };
    let refused = api("sold", None).await.unwrap();
    assert_eq!(refused.status(), 400);
    let refused: serde_json::Value = refused.json().await.unwrap();
    assert!(
        refused["error"]
            .as_str()
            .unwrap()
            .contains("new, called_back, won or lost"),
        "{refused}"
    );
    let unauthorised = http
        .post(format!("{base}/api/v1/leads/1/state"))
        .json(&serde_json::json!({"state": "won"}))
        .send()
        .await
        .unwrap();
    assert_eq!(unauthorised.status(), 401);
    let missing = api("won", None).await.unwrap();
    assert_eq!(missing.status(), 200);
    let won: serde_json::Value = missing.json().await.unwrap();
    assert_eq!(won["changed"], true);
    assert_eq!(won["lead"]["state"], "won");
    assert_eq!(won["lead"]["state_by"], "api");
    let again: serde_json::Value = api("won", Some("Sam")).await.unwrap().json().await.unwrap();
    assert_eq!(
        again["changed"], false,
        "the same state twice is one change"
    );
    let no_lead = http
        .post(format!("{base}/api/v1/leads/99/state"))
        .bearer_auth(&token)
        .json(&serde_json::json!({"state": "won"}))
        .send()
        .await
        .unwrap();
    assert_eq!(no_lead.status(), 404);

    // The CLI.
    let (code, out, stderr) = textback(
        &harness,
        &["leads", "state", "1", "lost", "--by", "Sam"],
        None,
    )
    .await;
    assert_eq!(code, 0, "{stderr}");
    assert!(out.contains("lead 1: lost (by cli: Sam"), "{out}");
    let (code, _, stderr) = textback(&harness, &["leads", "state", "1", "sold"], None).await;
    assert_eq!(code, 2);
    assert!(stderr.contains("not a lead state"), "{stderr}");
    let (code, _, stderr) = textback(&harness, &["leads", "state", "42", "won"], None).await;
    assert_eq!(code, 1);
    assert!(stderr.contains("no lead 42"), "{stderr}");
    let (_, list, _) = textback(&harness, &["leads", "list"], None).await;
    assert!(
        list.lines().next().unwrap().contains("  lost (by cli: Sam"),
        "{list}"
    );

    // The CRM heard of each change once, in order, each signed, each with its own key.
    let hooks = http_server.wait_requests("/crm", 4).await;
    assert_eq!(hooks.len(), 4, "the lead and three changes");
    let changes: Vec<(String, String)> = hooks[1..]
        .iter()
        .map(|hook| {
            let body = hook.json();
            assert_eq!(body["event"], "lead.state");
            assert_eq!(body["lead_id"], 1);
            assert_eq!(body["caller"]["name"], "Sarah Jones");
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
            (
                body["state"]["state"].as_str().unwrap().to_string(),
                body["state"]["by"].as_str().unwrap().to_string(),
            )
        })
        .collect();
    assert_eq!(
        changes,
        [
            ("called_back".to_string(), "dashboard".to_string()),
            ("won".to_string(), "api".to_string()),
            ("lost".to_string(), "cli: Sam".to_string()),
        ]
    );
    let keys: Vec<&str> = hooks[1..]
        .iter()
        .map(|h| h.header(webhook::IDEMPOTENCY_HEADER).unwrap())
        .collect();
    assert!(keys[0].starts_with("lead-1-state-1-"), "{keys:?}");
    assert!(keys[2].starts_with("lead-1-state-3-"), "{keys:?}");
    // The API shows the history.
    let lead: serde_json::Value = http
        .get(format!("{base}/api/v1/leads/1"))
        .bearer_auth(&token)
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    assert_eq!(lead["state"], "lost");
    assert_eq!(lead["state_history"].as_array().unwrap().len(), 3);
    running.stop().await.unwrap();
}

const STAFF: &str = "+447700900789";
const STAFF_NATIONAL: &str = "07700900789";
const OTHER_STAFF: &str = "+447700900456";
const CALLER: &str = common::CALLER;

/// The usual harness with two staff numbers (STAFF, who is not one of the lead's recipients, and
/// OTHER_STAFF, the recipient "Owner" by SMS and email, who does not want late replies) and a
/// second business with its own staff number.
fn staff_harness() -> Harness {
    Harness::with_edit(
        Options::default(),
        r#"late_replies = false

[[profile]]
id = "salon"
name = "Salon Bella"
numbers = ["+441632960999"]
staff_numbers = ["+447700900111"]

[[profile.question]]
id = "name"
ask = "Who am I speaking to?"
"#,
        |text| {
            text.replacen(
                "numbers = [\"+441632960123\"]",
                &format!(
                    "numbers = [\"+441632960123\"]\ndefault = true\nstaff_numbers = [\"{STAFF}\", \"{OTHER_STAFF}\"]"
                ),
                1,
            )
        },
    )
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn staff_take_over_a_conversation_by_sms() {
    let harness = staff_harness();
    let running = harness.start().await;
    harness.lead_from_a_conversation().await;
    let to_caller = harness.texts_to_caller(4).await.len();
    assert_eq!(
        to_caller, 4,
        "first text, two questions and the closing text"
    );

    // HELP from a staff number lists the commands.
    harness.modem.receive_sms(STAFF_NATIONAL, "HELP").await;
    let help = harness.whole_texts_to(STAFF, 1).await;
    assert!(help[0].contains("R 12 msg"), "{help:?}");

    // A reply to lead 1 goes to the caller from the business's SIM; the staff member hears so.
    harness
        .modem
        .receive_sms(STAFF_NATIONAL, "R 1 I can be there at 3pm")
        .await;
    let texts = harness.whole_texts_to(CALLER, to_caller + 1).await;
    assert_eq!(texts[to_caller], "I can be there at 3pm");
    let acks = harness.whole_texts_to(STAFF, 2).await;
    assert!(acks[1].starts_with("Sent to Sarah Jones"), "{acks:?}");
    assert_eq!(
        harness.query_strings("SELECT author FROM messages WHERE author IS NOT NULL"),
        ["sms: 07700 900789"]
    );

    // Two staff reply at once: both go, in the order they came; the long one as a multipart text.
    let long = "Sorry, one more thing: could you send a photo of the boiler's label and of the \
                pipe under it? It tells me which parts to bring, so I can fix it on the first visit.";
    assert!(long.len() > 160);
    harness
        .modem
        .receive_sms("07700900456", "R1 Also bring the dog in")
        .await;
    harness
        .modem
        .receive_sms(STAFF_NATIONAL, &format!("R 1 {long}"))
        .await;
    let texts = harness.whole_texts_to(CALLER, to_caller + 3).await;
    assert_eq!(texts[to_caller + 1], "Also bring the dog in");
    assert_eq!(texts[to_caller + 2], long);
    assert!(
        harness
            .modem
            .sent()
            .iter()
            .filter(|s| s.to == CALLER && s.part.is_some())
            .count()
            >= 2,
        "the long reply went as a multipart SMS"
    );

    // The caller answers: the assistant stays quiet and the text goes to both staff members who
    // replied: STAFF by SMS, and OTHER_STAFF, who replied before and turned late replies off as
    // the lead's recipient, on every channel that recipient has (they took the conversation over).
    harness
        .modem
        .receive_sms(common::CALLER_NATIONAL, "3pm is fine, thanks")
        .await;
    let forwarded = harness.whole_texts_to(STAFF, 4).await;
    assert_eq!(
        forwarded
            .iter()
            .filter(|t| t.contains("3pm is fine, thanks"))
            .count(),
        1,
        "{forwarded:?}"
    );
    let colleague = harness.whole_texts_to(OTHER_STAFF, 3).await;
    assert!(colleague[0].starts_with("New lead"), "{colleague:?}");
    assert!(
        colleague[1].starts_with("Sent to Sarah Jones"),
        "{colleague:?}"
    );
    assert!(
        colleague[2].contains("3pm is fine, thanks"),
        "the colleague who replied hears the caller's answer too: {colleague:?}"
    );
    assert_eq!(
        harness
            .wait_count(
                "SELECT count(*) FROM lead_deliveries WHERE reply_id != 0 AND recipient = 'Owner'",
                2,
            )
            .await,
        2,
        "the caller's answer goes to the recipient's email as well as their SMS"
    );
    // Nothing more to the caller from the assistant.
    assert_eq!(harness.whole_texts_to(CALLER, 0).await.len(), to_caller + 3);

    // Marking the lead, by number and with no number (the last lead before this phone).
    harness.modem.receive_sms(STAFF_NATIONAL, "C 1").await;
    assert_eq!(
        harness
            .wait_count("SELECT count(*) FROM leads WHERE state = 'called_back'", 1)
            .await,
        1
    );
    harness.modem.receive_sms(STAFF_NATIONAL, "W").await;
    assert_eq!(
        harness
            .wait_count("SELECT count(*) FROM leads WHERE state = 'won'", 1)
            .await,
        1
    );
    assert_eq!(
        harness.query_strings("SELECT state_by FROM leads"),
        ["sms: 07700 900789"]
    );

    // Bad input: a lead that does not exist changes nothing and says so.
    // (The staff phone's texts so far: HELP, two "Sent", the caller's text, two marks.)
    harness.modem.receive_sms(STAFF_NATIONAL, "L 99").await;
    let replies = harness.whole_texts_to(STAFF, 7).await;
    assert!(replies[6].starts_with("No lead 99"), "{replies:?}");
    assert_eq!(harness.query_strings("SELECT state FROM leads"), ["won"]);
    // Another business's staff cannot touch this business's lead.
    harness
        .modem
        .receive_sms("07700900111", "R 1 hello from the salon")
        .await;
    let salon = harness.whole_texts_to("+447700900111", 1).await;
    assert!(salon[0].starts_with("No lead 1"), "{salon:?}");
    assert!(
        !harness
            .whole_texts_to(CALLER, 0)
            .await
            .iter()
            .any(|t| t.contains("salon")),
        "nothing went to the caller"
    );

    // A caller who said STOP is not texted, and the staff member is told why.
    harness
        .modem
        .receive_sms(common::CALLER_NATIONAL, "STOP")
        .await;
    harness.wait_count("SELECT count(*) FROM opt_outs", 1).await;
    // The opt-out's confirmation is the caller's last text.
    let to_caller = harness.whole_texts_to(CALLER, to_caller + 4).await.len();
    harness
        .modem
        .receive_sms(STAFF_NATIONAL, "R 1 are you still there?")
        .await;
    let replies = harness.whole_texts_to(STAFF, 8).await;
    assert!(replies[7].contains("replied STOP"), "{replies:?}");
    assert_eq!(harness.whole_texts_to(CALLER, 0).await.len(), to_caller);

    // A non-staff number that types a command is a caller: no lead is changed, no command runs.
    harness.modem.receive_sms("07700900333", "W 1").await;
    harness
        .wait_count(
            "SELECT count(*) FROM messages WHERE direction = 'in' AND peer = '+447700900333'",
            1,
        )
        .await;
    assert_eq!(harness.query_strings("SELECT state FROM leads"), ["won"]);
    running.stop().await.unwrap();
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_staff_pause_stops_the_assistant_for_the_business_until_go() {
    let harness = staff_harness();
    let running = harness.start().await;
    harness.modem.receive_sms(STAFF_NATIONAL, "PA 2").await;
    let acks = harness.whole_texts_to(STAFF, 1).await;
    assert!(acks[0].contains("paused"), "{acks:?}");
    // A missed call now gets no text, with the reason recorded.
    harness.modem.call(Some(common::CALLER_NATIONAL), 2).await;
    assert_eq!(
        harness
            .wait_count("SELECT count(*) FROM calls WHERE reason_code = 'paused'", 1)
            .await,
        1
    );
    assert_eq!(harness.whole_texts_to(CALLER, 0).await.len(), 0);
    // GO: the next call is texted.
    harness.modem.receive_sms(STAFF_NATIONAL, "GO").await;
    harness.whole_texts_to(STAFF, 2).await;
    harness.modem.call(Some("07700900124"), 2).await;
    assert_eq!(harness.whole_texts_to("+447700900124", 1).await.len(), 1);
    running.stop().await.unwrap();
}

/// Where screenshots are kept for people to look at: `$TEXTBACK_TEST_SHOTS`, or the test
/// target's temporary directory.
fn shot(name: &str, png: &[u8]) {
    assert!(png.starts_with(b"\x89PNG"));
    let dir = std::env::var_os("TEXTBACK_TEST_SHOTS")
        .map(std::path::PathBuf::from)
        .unwrap_or_else(|| std::path::PathBuf::from(env!("CARGO_TARGET_TMPDIR")));
    let _ = std::fs::create_dir_all(&dir);
    let _ = std::fs::write(dir.join(name), png);
}

/// A missed call over SIP at a given time.
fn call_at(key: &str, number: &str, at: chrono::DateTime<chrono::Utc>) -> textback::event::Event {
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

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_owner_works_from_the_home_page_on_a_phone_and_a_desktop() {
    let harness = Harness::new();
    // The daemon runs on a clock the test sets: Wednesday 3 June 2026, 10:00 in London, so the
    // counts for "today" and the chart's days mean the same whenever the suite runs.
    let wednesday = chrono::TimeZone::with_ymd_and_hms(&chrono::Utc, 2026, 6, 3, 9, 0, 0).unwrap();
    let clock = textback::clock::Clock::starting_at(wednesday);
    let running = harness
        .start_with(textback::daemon::RunOptions {
            clock: clock.clone(),
            ..Default::default()
        })
        .await;
    harness.lead_from_a_conversation().await;
    // Earlier calls (recorded now, dated on days of the last month): landlines, which get no
    // text.
    for (days, number) in [(20, "02079460011"), (9, "01632960044"), (2, "02079460022")] {
        running
            .events
            .send(call_at(
                &format!("old-{days}"),
                number,
                wednesday - chrono::Duration::days(days),
            ))
            .await
            .unwrap();
    }
    // Today's landline caller: not texted, so on the home page to call back.
    running
        .events
        .send(call_at("landline-today", "02079460001", clock.now()))
        .await
        .unwrap();
    assert_eq!(harness.wait_count("SELECT count(*) FROM calls", 5).await, 5);
    let (code, _, stderr) = textback(
        &harness,
        &["dashboard", "set-password", "--stdin"],
        Some(&format!("{PASSWORD}\n")),
    )
    .await;
    assert_eq!(code, 0, "{stderr}");
    let base = format!("http://{}", running.dashboard);

    let browser = common::webdriver::Browser::start().await;
    browser.set_window(390, 844).await;
    browser.goto(&format!("{base}/")).await;
    browser.wait_url(|u| u.ends_with("/login")).await;
    browser.type_into("#password", PASSWORD).await;
    browser.click("#login").await;
    let home = format!("{base}/");
    browser.wait_url(|u| u == home).await;

    // What was recovered: today, 7 and 30 days.
    let stats = browser.text("#stats").await;
    for expected in [
        "Today",
        "7 days",
        "30 days",
        "Missed calls",
        "Texted",
        "Replied",
        "Leads",
        "Called back",
        "Call to text (median)",
    ] {
        assert!(stats.contains(expected), "{expected:?} in {stats}");
    }
    // Today: two missed calls, one texted, which replied and made a lead; 30 days: five.
    assert!(stats.contains("Missed calls 2 3 5"), "{stats}");
    assert!(stats.contains("Texted 1 1 1"), "{stats}");
    assert!(stats.contains("Leads 1 1 1"), "{stats}");
    browser.find("#chart rect").await;
    // The landline callers wait for a call back, newest first, with a call button.
    let call_backs = browser.text("#call-backs").await;
    assert!(call_backs.starts_with("020 7946 0001"), "{call_backs}");
    assert!(call_backs.contains("not a UK mobile"), "{call_backs}");
    // The lead's card: name, reason, postcode, state and a large call button.
    let card = browser.text("#lead-1").await;
    for expected in [
        "Sarah Jones",
        "Boiler leaking in the loft",
        "SW11 4AB",
        "new",
        "Call 07700 900123",
    ] {
        assert!(card.contains(expected), "{expected:?} in {card}");
    }
    assert_eq!(
        browser.attribute("#lead-1 a.call", "href").await,
        "tel:+447700900123"
    );
    // Phone first: the call button spans the card and is a thumb's height.
    let (width, height) = browser.size("#lead-1 a.call").await;
    assert!(width > 300.0 && height >= 44.0, "{width} x {height}");
    shot("home-phone.png", &browser.screenshot().await);
    browser.goto(&format!("{base}/#call-backs")).await;
    shot("home-phone-cards.png", &browser.screenshot().await);

    // The lead's page: the conversation, the state buttons, the reply box.
    browser.click("#lead-1 .who a").await;
    let lead = format!("{base}/leads/1");
    browser.wait_url(|u| u == lead).await;
    shot("lead-phone.png", &browser.screenshot().await);
    browser
        .type_into(
            "#reply-text",
            "Hi Sarah, it's Dave the plumber. I can come at 3pm today.",
        )
        .await;
    browser.click("#send").await;
    browser.wait_url(|u| u.ends_with("#reply")).await;
    shot("lead-phone-reply.png", &browser.screenshot().await);
    let texts = harness.texts_to_caller(5).await;
    assert_eq!(
        texts.last().map(String::as_str),
        Some("Hi Sarah, it's Dave the plumber. I can come at 3pm today.")
    );
    let transcript = browser.text("#transcript").await;
    assert!(transcript.contains("Owner (dashboard)"), "{transcript}");
    // The assistant is quiet now: the caller's answer is kept, not answered.
    harness
        .modem
        .receive_sms(common::CALLER_NATIONAL, "Great, see you then")
        .await;
    harness.wait_journal("owner", 2).await;
    assert_eq!(harness.texts_to_caller(0).await.len(), 5);
    browser.click("#state-called_back").await;
    browser.wait_for(".state-called_back").await;
    assert!(browser.text("#state").await.contains("called back"));

    // Desktop.
    browser.set_window(1280, 900).await;
    browser.goto(&lead).await;
    shot("lead-desktop.png", &browser.screenshot().await);
    browser.goto(&home).await;
    shot("home-desktop.png", &browser.screenshot().await);
    // Called back: the landline caller leaves the list.
    browser.click("#call-backs .done").await;
    browser.wait_url(|u| u == home).await;
    let call_backs = browser.text("#call-backs").await;
    assert!(!call_backs.contains("020 7946 0001"), "{call_backs}");
    assert!(call_backs.contains("020 7946 0022"), "{call_backs}");

    // A dashboard reply needs the session and its CSRF token.
    let http = client();
    let refused = http
        .post(format!("{base}/leads/1/reply"))
        .form(&[("csrf", "x"), ("text", "hello")])
        .send()
        .await
        .unwrap();
    assert_eq!(refused.status(), 303, "no session: to the login page");
    let cookie = log_in(&http, &base).await;
    let forged = http
        .post(format!("{base}/leads/1/reply"))
        .header("cookie", &cookie)
        .form(&[("csrf", "forged"), ("text", "hello")])
        .send()
        .await
        .unwrap();
    assert_eq!(forged.status(), 403);
    // STOP is honoured: no reply box, and a reply posted anyway is not sent.
    harness
        .modem
        .receive_sms(common::CALLER_NATIONAL, "STOP")
        .await;
    harness.wait_count("SELECT count(*) FROM opt_outs", 1).await;
    browser.goto(&lead).await;
    assert!(
        browser
            .text("#reply-refused")
            .await
            .contains("replied STOP")
    );
    let page = http
        .get(&lead)
        .header("cookie", &cookie)
        .send()
        .await
        .unwrap()
        .text()
        .await
        .unwrap();
    let stopped = http
        .post(format!("{base}/leads/1/reply"))
        .header("cookie", &cookie)
        .form(&[("csrf", csrf_in(&page).as_str()), ("text", "hello?")])
        .send()
        .await
        .unwrap();
    assert_eq!(stopped.status(), 409);
    assert_eq!(
        harness.query_i64("SELECT count(*) FROM messages WHERE body = 'hello?'"),
        0
    );
    browser.quit().await;
    running.stop().await.unwrap();
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn missed_callers_who_got_no_text_reach_the_owner_as_one_call_back_notice() {
    let harness = Harness::new();
    let start = chrono::TimeZone::with_ymd_and_hms(&chrono::Utc, 2026, 6, 3, 9, 0, 0).unwrap();
    let clock = textback::clock::Clock::starting_at(start);
    let running = harness
        .start_with(textback::daemon::RunOptions {
            clock: clock.clone(),
            ..Default::default()
        })
        .await;
    const OWNER: &str = "+447700900456";
    // A landline, and a withheld caller, a minute apart: neither can be texted.
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
    assert_eq!(harness.wait_count("SELECT count(*) FROM calls", 2).await, 2);
    // Gathered into one text, held for a few minutes in the outbox.
    assert_eq!(
        harness.query_i64(
            "SELECT count(*) FROM messages WHERE peer = '+447700900456' AND state = 'queued'"
        ),
        1
    );
    assert!(harness.modem.sent().iter().all(|s| s.to != OWNER));
    // Five minutes later it goes (the next text the outbox sends wakes it: a mobile caller).
    clock.set(start + chrono::Duration::minutes(6));
    running
        .events
        .send(call_at("mobile", "07700900123", clock.now()))
        .await
        .unwrap();
    let notices = harness.whole_texts_to(OWNER, 1).await;
    assert_eq!(notices.len(), 1, "one notice for both calls");
    assert!(notices[0].contains("please call back"), "{notices:?}");
    assert!(
        notices[0].contains("020 7946 0001 at 10:00 (not mobile)"),
        "{notices:?}"
    );
    assert!(
        notices[0].contains("a withheld number at 10:01 (withheld)"),
        "{notices:?}"
    );
    running.stop().await.unwrap();
}
