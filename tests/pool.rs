//! Several dongles: a new conversation goes to a modem that can send now, and stays on it.

mod common;

use std::path::Path;
use std::sync::Arc;
use std::time::Duration;

use common::WAIT;
use textback::config;
use textback::daemon::{self, RunOptions};
use textback::modem::ModemHandle;
use textback::modem::virtual_modem::{Options, VirtualModem};

fn pool_config(a: &Path, b: &Path, database: &Path, pin: Option<&str>) -> Arc<config::Config> {
    let pin = pin
        .map(|m| format!("modem = \"{m}\"\n"))
        .unwrap_or_default();
    let text = format!(
        r#"
[storage]
database = "{database}"

[dashboard]
listen = "127.0.0.1:0"
public_url = "http://127.0.0.1:8080"

[[modem]]
id = "a"
port = "{a}"

[[modem]]
id = "b"
port = "{b}"

[[profile]]
id = "plumbing"
name = "Brightwater Plumbing"
numbers = ["+441632960123"]
{pin}
[[profile.question]]
id = "name"
ask = "Who am I speaking to?"

[[profile.question]]
id = "reason"
ask = "What do you need help with?"
"#,
        database = database.display(),
        a = a.display(),
        b = b.display(),
    );
    Arc::new(
        config::parse(&text, Path::new("pool.toml"))
            .expect("pool config")
            .config,
    )
}

/// Waits until the modem's state satisfies `done`.
async fn wait_state(handle: &ModemHandle, done: impl Fn(&textback::modem::ModemState) -> bool) {
    let mut handle = handle.clone();
    let reached = tokio::time::timeout(WAIT, async {
        loop {
            if done(&handle.state()) {
                return;
            }
            let _ = handle.state_changed().await;
        }
    })
    .await;
    assert!(reached.is_ok(), "state now: {:?}", handle.state());
}

fn handle<'a>(running: &'a daemon::Running, id: &str) -> &'a ModemHandle {
    running
        .modems
        .iter()
        .find(|m| m.id().as_str() == id)
        .expect("modem in the pool")
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_new_conversation_goes_to_a_usable_modem_and_stays_there() {
    let dir = tempfile::tempdir().unwrap();
    let a = VirtualModem::start(Options::default()).unwrap();
    let b = VirtualModem::start(Options::default()).unwrap();
    // Modem a is off the network.
    a.set_network(false).await;
    let config = pool_config(a.path(), b.path(), &dir.path().join("t.db"), None);
    let running = daemon::start(config, RunOptions::default()).await.unwrap();
    wait_state(handle(&running, "a"), |s| {
        matches!(s, textback::modem::ModemState::Ready { .. }) && !s.is_usable()
    })
    .await;
    wait_state(handle(&running, "b"), |s| s.is_usable()).await;

    // The first caller is texted from b, the modem on the network.
    running
        .events
        .send(common::sip_call("sip-1", "07700900123"))
        .await
        .unwrap();
    let sent = b.wait_sent(1, WAIT).await;
    assert_eq!(sent.len(), 1);
    assert_eq!(sent[0].to, "+447700900123");

    // a is back: both usable and idle, so the next caller goes to the first in the config.
    a.set_network(true).await;
    wait_state(handle(&running, "a"), |s| s.is_usable()).await;
    running
        .events
        .send(common::sip_call("sip-2", "07700900456"))
        .await
        .unwrap();
    let sent_a = a.wait_sent(1, WAIT).await;
    assert_eq!(sent_a.len(), 1);
    assert_eq!(sent_a[0].to, "+447700900456");

    // The first caller answers on b's number: the conversation carries on from b, not a.
    b.receive_sms("+447700900123", "Dave").await;
    let sent = b.wait_sent(2, WAIT).await;
    assert_eq!(sent.len(), 2);
    assert!(
        sent[1].text.contains("What do you need help with?"),
        "{}",
        sent[1].text
    );
    running.stop().await.unwrap();
    assert_eq!(a.sent().len(), 1);
    let connection = textback::store::open_read_only(&dir.path().join("t.db")).unwrap();
    let by_modem: Vec<(String, String, i64)> = connection
        .prepare("SELECT c.caller, c.modem, count(m.id) FROM conversations c JOIN messages m ON m.conversation_id = c.id GROUP BY c.id ORDER BY c.id")
        .unwrap()
        .query_map([], |row| Ok((row.get(0)?, row.get(1)?, row.get(2)?)))
        .unwrap()
        .collect::<Result<_, _>>()
        .unwrap();
    assert_eq!(
        by_modem,
        [
            ("+447700900123".to_string(), "b".to_string(), 3),
            ("+447700900456".to_string(), "a".to_string(), 1)
        ]
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_profile_pinned_to_a_modem_waits_for_it() {
    let dir = tempfile::tempdir().unwrap();
    let a = VirtualModem::start(Options::default()).unwrap();
    let b = VirtualModem::start(Options::default()).unwrap();
    a.set_network(false).await;
    let config = pool_config(a.path(), b.path(), &dir.path().join("t.db"), Some("a"));
    let running = daemon::start(config, RunOptions::default()).await.unwrap();
    wait_state(handle(&running, "a"), |s| {
        matches!(s, textback::modem::ModemState::Ready { .. }) && !s.is_usable()
    })
    .await;
    wait_state(handle(&running, "b"), |s| s.is_usable()).await;
    running
        .events
        .send(common::sip_call("sip-1", "07700900123"))
        .await
        .unwrap();
    // The business wants its callers texted from a's number: the text waits for a.
    assert!(
        b.wait_sent(1, Duration::from_millis(500)).await.is_empty(),
        "nothing from b"
    );
    a.set_network(true).await;
    assert_eq!(a.wait_sent(1, WAIT).await.len(), 1);
    assert!(b.sent().is_empty());
    running.stop().await.unwrap();
}

/// The pool config with an owner who takes SMS (alerts go there) and extra keys per modem.
fn health_config(
    a: &Path,
    b: &Path,
    database: &Path,
    a_keys: &str,
    b_keys: &str,
) -> Arc<config::Config> {
    let text = format!(
        r#"
[storage]
database = "{database}"

[dashboard]
listen = "127.0.0.1:0"
public_url = "http://127.0.0.1:8080"

[[modem]]
id = "a"
port = "{a}"
{a_keys}

[[modem]]
id = "b"
port = "{b}"
{b_keys}

[[profile]]
id = "plumbing"
name = "Brightwater Plumbing"
numbers = ["+441632960123"]

[[profile.question]]
id = "name"
ask = "Who am I speaking to?"

[[profile.question]]
id = "reason"
ask = "What do you need help with?"

[[profile.recipient]]
name = "Owner"
sms = "+447700900456"
"#,
        database = database.display(),
        a = a.display(),
        b = b.display(),
    );
    Arc::new(
        config::parse(&text, Path::new("pool.toml"))
            .expect("pool config")
            .config,
    )
}

fn quick_health(cycle: Option<Duration>) -> RunOptions {
    RunOptions {
        modem_timing: Some(daemon::ModemTiming {
            refused_recheck: Duration::from_secs(2),
            off_network_cycle: cycle,
            storage_tell_after: Duration::from_secs(1),
            delivery_check: Duration::from_secs(1),
            lost_tell_after: Duration::from_secs(1),
            ussd_timeout: Duration::from_secs(2),
            balance_retry: Duration::from_secs(1),
            balance_interval: None,
            self_test_timeout: None,
        }),
        ..Default::default()
    }
}

fn query_strings(database: &Path, sql: &str) -> Vec<String> {
    let connection = textback::store::open_read_only(database).unwrap();
    let mut statement = connection.prepare(sql).unwrap();
    statement
        .query_map([], |row| row.get::<_, String>(0))
        .unwrap()
        .collect::<Result<_, _>>()
        .unwrap()
}

/// Waits until `sql` (a count) reaches `n`.
async fn wait_count(database: &Path, sql: &str, n: i64) -> i64 {
    let deadline = tokio::time::Instant::now() + WAIT;
    loop {
        let connection = textback::store::open_read_only(database).unwrap();
        let got: i64 = connection.query_row(sql, [], |row| row.get(0)).unwrap();
        if got >= n || tokio::time::Instant::now() > deadline {
            return got;
        }
        tokio::time::sleep(Duration::from_millis(25)).await;
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_sim_that_stays_off_the_network_hands_its_texts_to_another_and_the_owner_is_told() {
    let dir = tempfile::tempdir().unwrap();
    let database = dir.path().join("t.db");
    let a = VirtualModem::start(Options::default()).unwrap();
    let b = VirtualModem::start(Options::default()).unwrap();
    let config = health_config(a.path(), b.path(), &database, "", "");
    let running = daemon::start(config, quick_health(Some(Duration::from_secs(1))))
        .await
        .unwrap();
    wait_state(handle(&running, "a"), |s| s.is_usable()).await;
    wait_state(handle(&running, "b"), |s| s.is_usable()).await;
    // A caller texted from a, the first in the config.
    running
        .events
        .send(common::sip_call("sip-1", "07700900123"))
        .await
        .unwrap();
    assert_eq!(a.wait_sent(1, WAIT).await.len(), 1);

    // a loses the network and keeps searching, radio cycle or not.
    let lost = std::time::Instant::now();
    a.set_registration(2).await;
    wait_state(handle(&running, "a"), |s| !s.is_usable()).await;
    // The caller answers; the next question cannot wait for a: it goes from b.
    a.receive_sms("+447700900123", "Dave").await;
    let from_b = b.wait_sent(1, WAIT).await;
    assert!(
        from_b
            .iter()
            .any(|s| s.to == "+447700900123" && s.text.contains("What do you need help with?")),
        "{from_b:?}"
    );
    let moved = lost.elapsed();
    // The radio was cycled after the configured time, and when that did not help the owner was
    // told, through b.
    assert!(
        a.wait_command(|c| c == "AT+CFUN=0", WAIT).await,
        "AT+CFUN=0 sent"
    );
    assert!(a.wait_command(|c| c == "AT+CFUN=1", WAIT).await);
    let deadline = tokio::time::Instant::now() + WAIT;
    while !b.sent().iter().any(|s| s.to == "+447700900456") {
        assert!(
            tokio::time::Instant::now() < deadline,
            "no alert: {:?}",
            b.sent()
        );
        b.wait_sent(b.sent().len() + 1, Duration::from_millis(200))
            .await;
    }
    let alert = b
        .sent()
        .into_iter()
        .find(|s| s.to == "+447700900456")
        .unwrap();
    // What it says is the state when it was sent (searching, or "not registered" mid-cycle).
    assert!(
        alert.text.contains("is off the network (") && alert.text.contains("aerial"),
        "{}",
        alert.text
    );
    let told = lost.elapsed();
    // a is back: the fault closes with its length recorded.
    a.set_registration(1).await;
    assert_eq!(
        wait_count(
            &database,
            "SELECT count(*) FROM modem_faults WHERE kind = 'off_network' AND cleared_ms IS NOT NULL",
            1
        )
        .await,
        1
    );
    let back = lost.elapsed();
    running.stop().await.unwrap();
    assert_eq!(
        query_strings(
            &database,
            "SELECT cause FROM modem_faults WHERE kind = 'off_network'"
        ),
        vec!["searching".to_string()]
    );
    eprintln!(
        "recovery: off the network (searching): text moved to the other SIM after {} ms, owner told after {} ms, fault closed {} ms after the loss",
        moved.as_millis(),
        told.as_millis(),
        back.as_millis()
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn registration_denied_is_cured_by_switching_the_radio_off_and_on() {
    let dir = tempfile::tempdir().unwrap();
    let database = dir.path().join("t.db");
    let a = VirtualModem::start(Options {
        model: textback::modem::virtual_modem::Model::QuectelEc25,
        ..Options::default()
    })
    .unwrap();
    let b = VirtualModem::start(Options::default()).unwrap();
    let config = health_config(a.path(), b.path(), &database, "", "");
    let running = daemon::start(config, quick_health(Some(Duration::from_secs(1))))
        .await
        .unwrap();
    wait_state(handle(&running, "a"), |s| s.is_usable()).await;
    let lost = std::time::Instant::now();
    // +CREG: 3 and +CEREG: 3 (denied) until AT+CFUN=0, AT+CFUN=1.
    a.off_network_until_radio_cycle(3).await;
    wait_state(handle(&running, "a"), |s| !s.is_usable()).await;
    wait_state(handle(&running, "a"), |s| s.is_usable()).await;
    let back = lost.elapsed();
    assert!(a.commands().iter().any(|c| c == "AT+CFUN=0"));
    assert_eq!(
        wait_count(
            &database,
            "SELECT count(*) FROM modem_faults WHERE kind = 'off_network' AND cause = 'denied' AND cleared_ms IS NOT NULL",
            1
        )
        .await,
        1
    );
    running.stop().await.unwrap();
    // Back within the cycle time: nobody needed telling.
    assert!(b.sent().iter().all(|s| s.to != "+447700900456"));
    eprintln!(
        "recovery: registration denied, cured by AT+CFUN=0/1 after 1 s off: back in {} ms",
        back.as_millis()
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_text_over_one_sims_recipient_cap_goes_from_another() {
    let dir = tempfile::tempdir().unwrap();
    let database = dir.path().join("t.db");
    let a = VirtualModem::start(Options::default()).unwrap();
    let b = VirtualModem::start(Options::default()).unwrap();
    let config = health_config(
        a.path(),
        b.path(),
        &database,
        "recipient_cap = 1",
        "recipient_cap = 5",
    );
    let running = daemon::start(config, quick_health(None)).await.unwrap();
    wait_state(handle(&running, "a"), |s| s.is_usable()).await;
    wait_state(handle(&running, "b"), |s| s.is_usable()).await;
    running
        .events
        .send(common::sip_call("sip-1", "07700900123"))
        .await
        .unwrap();
    assert_eq!(a.wait_sent(1, WAIT).await.len(), 1);
    // A call rings a: its text would go from a, but a has texted its one number today.
    a.call(Some("07700900777"), 2).await;
    let deadline = tokio::time::Instant::now() + WAIT;
    while !b.sent().iter().any(|s| s.to == "+447700900777") {
        assert!(
            tokio::time::Instant::now() < deadline,
            "not moved: {:?}",
            b.sent()
        );
        b.wait_sent(b.sent().len() + 1, Duration::from_millis(200))
            .await;
    }
    running.stop().await.unwrap();
    assert!(a.sent().iter().all(|s| s.to != "+447700900777"));
    let why = query_strings(
        &database,
        "SELECT detail FROM journal WHERE detail LIKE '%recipient_cap%'",
    );
    assert!(
        why.iter().any(|d| d.contains("sent from b instead")),
        "{why:?}"
    );
}

/// Waits until b has texted the owner (an alert); returns that text.
async fn wait_alert(b: &VirtualModem) -> String {
    let deadline = tokio::time::Instant::now() + WAIT;
    loop {
        if let Some(alert) = b.sent().into_iter().find(|s| s.to == "+447700900456") {
            return alert.text;
        }
        assert!(
            tokio::time::Instant::now() < deadline,
            "no alert: {:?}",
            b.sent()
        );
        b.wait_sent(b.sent().len() + 1, Duration::from_millis(200))
            .await;
    }
}

/// A database with a dashboard API token, before the daemon opens it.
async fn with_api_token(database: &Path, token: &str) {
    let (store, closer) = textback::store::Store::open(database).unwrap();
    let digest = textback::web::auth::token_digest(token);
    store
        .run(move |tx| tx.set_setting(textback::web::auth::API_TOKEN_SETTING, &digest))
        .await
        .unwrap();
    drop(store);
    tokio::task::spawn_blocking(move || closer.wait())
        .await
        .unwrap();
}

const BALANCE_KEYS: &str = "balance_ussd = \"*#10#\"\nbalance_low = 2.00";

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_credit_is_read_by_ussd_in_each_models_style_and_low_credit_is_told() {
    use textback::modem::virtual_modem::Model;
    // Huawei packs the code and the answer as GSM 7-bit hex; Quectel and the SIM7600 answer in
    // UCS-2 (DCS 72); the others write both as text. Every model the virtual modem emulates.
    for &(_, model) in Model::ALL {
        let code_sent = match model {
            Model::HuaweiE3372 | Model::HuaweiE1550 | Model::HuaweiE173 => {
                "AT+CUSD=1,\"AA510C3602\",15"
            }
            _ => "AT+CUSD=1,\"*#10#\",15",
        };
        let dir = tempfile::tempdir().unwrap();
        let database = dir.path().join("t.db");
        let token = "balance-test-token-0123456789abcdef";
        with_api_token(&database, token).await;
        let a = VirtualModem::start(Options {
            model,
            balance_pence: 150,
            ..Options::default()
        })
        .unwrap();
        let b = VirtualModem::start(Options::default()).unwrap();
        let config = health_config(a.path(), b.path(), &database, BALANCE_KEYS, "");
        let started = std::time::Instant::now();
        let running = daemon::start(config.clone(), quick_health(None))
            .await
            .unwrap();
        // £1.50 is under balance_low (£2.00): the owner is told, through b, what to do.
        let alert = wait_alert(&b).await;
        let told = started.elapsed();
        assert!(
            alert.contains("£1.50") && alert.contains("top up the SIM"),
            "{model:?}: {alert}"
        );
        assert!(
            a.commands().iter().any(|c| c == code_sent),
            "{model:?}: {:?}",
            a.commands()
        );
        assert_eq!(
            query_strings(
                &database,
                "SELECT kind || ' ' || cause FROM modem_faults WHERE cleared_ms IS NULL"
            ),
            vec!["low_balance low".to_string()],
            "{model:?}"
        );
        // Shown in /api/v1/status and /metrics.
        let base = format!("http://{}", running.dashboard);
        let http = reqwest::Client::new();
        let status: serde_json::Value = http
            .get(format!("{base}/api/v1/status"))
            .bearer_auth(token)
            .send()
            .await
            .unwrap()
            .json()
            .await
            .unwrap();
        assert_eq!(status["balances"][0]["modem"], "a", "{status}");
        assert_eq!(status["balances"][0]["pence"], 150, "{status}");
        let metrics = http
            .get(format!("{base}/metrics"))
            .bearer_auth(token)
            .send()
            .await
            .unwrap()
            .text()
            .await
            .unwrap();
        assert!(
            metrics.contains("textback_modem_balance_pounds{modem=\"a\"} 1.50"),
            "{metrics}"
        );
        assert!(
            metrics.contains("textback_modem_faults_open{kind=\"low_balance\",cause=\"low\"} 1")
        );
        running.stop().await.unwrap();
        // And by doctor.
        let checks = textback::cli::doctor::balance_checks(&config, &database);
        assert_eq!(checks.len(), 1);
        assert!(
            checks[0].detail.starts_with("£1.50 at ")
                && checks[0].detail.contains("top up the SIM"),
            "{:?}",
            checks[0]
        );
        eprintln!(
            "detection: low credit ({model:?}) read and the owner told {} ms after start",
            told.as_millis()
        );
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_refusal_that_may_mean_no_credit_checks_the_credit_at_once() {
    let dir = tempfile::tempdir().unwrap();
    let database = dir.path().join("t.db");
    let a = VirtualModem::start(Options {
        balance_pence: 500,
        ..Options::default()
    })
    .unwrap();
    let b = VirtualModem::start(Options::default()).unwrap();
    let config = health_config(a.path(), b.path(), &database, BALANCE_KEYS, "");
    let running = daemon::start(config, quick_health(None)).await.unwrap();
    let checks = "SELECT count(*) FROM balance_checks WHERE pence IS NOT NULL";
    assert_eq!(wait_count(&database, checks, 1).await, 1);
    // £5.00: nothing to tell.
    assert!(query_strings(&database, "SELECT kind FROM modem_faults").is_empty());
    // The credit runs out: the network refuses a's texts (RP cause 50).
    a.set_balance(0).await;
    a.refuse_sends(Some(50)).await;
    let refused = std::time::Instant::now();
    wait_state(handle(&running, "b"), |s| s.is_usable()).await;
    running
        .events
        .send(common::sip_call("sip-1", "07700900123"))
        .await
        .unwrap();
    assert_eq!(wait_count(&database, checks, 2).await, 2);
    let checked = refused.elapsed();
    assert_eq!(
        wait_count(
            &database,
            "SELECT count(*) FROM modem_faults WHERE kind = 'low_balance' AND cleared_ms IS NULL",
            1
        )
        .await,
        1
    );
    running.stop().await.unwrap();
    assert_eq!(
        query_strings(
            &database,
            "SELECT CAST(pence AS TEXT) FROM balance_checks ORDER BY id"
        ),
        vec!["500", "0"]
    );
    eprintln!(
        "detection: a refusal for no credit (+CMS ERROR: 50) had the credit read {} ms later",
        checked.as_millis()
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn ussd_errors_silence_and_garbage_break_nothing() {
    use textback::modem::virtual_modem::UssdAnswer;
    let dir = tempfile::tempdir().unwrap();
    let database = dir.path().join("t.db");
    let a = VirtualModem::start(Options {
        model: textback::modem::virtual_modem::Model::SimcomSim7600,
        balance_pence: 100,
        ..Options::default()
    })
    .unwrap();
    let b = VirtualModem::start(Options::default()).unwrap();
    // The network says nothing to the first code; the check gives up after the USSD timeout
    // (2 s here) and tries again after balance_retry (1 s).
    a.ussd_answers(UssdAnswer::Silence).await;
    let config = health_config(a.path(), b.path(), &database, BALANCE_KEYS, "");
    let mut options = quick_health(None);
    if let Some(timing) = options.modem_timing.as_mut() {
        timing.balance_interval = Some(Duration::from_secs(1));
    }
    let running = daemon::start(config, options).await.unwrap();
    let failed = "SELECT count(*) FROM balance_checks WHERE error IS NOT NULL";
    assert_eq!(wait_count(&database, failed, 1).await, 1);
    // The session was ended.
    assert!(a.wait_command(|c| c == "AT+CUSD=2", WAIT).await);
    a.ussd_answers(UssdAnswer::Error).await;
    assert_eq!(wait_count(&database, failed, 2).await, 2);
    a.ussd_answers(UssdAnswer::NotSupported).await;
    assert_eq!(wait_count(&database, failed, 3).await, 3);
    // An answer with no amount in it is recorded with its words.
    a.ussd_answers(UssdAnswer::Words(
        "Service unavailable. Call 150.".to_string(),
    ))
    .await;
    let unread = "SELECT count(*) FROM balance_checks WHERE reply LIKE 'Service unavailable%' AND pence IS NULL";
    assert_eq!(wait_count(&database, unread, 1).await, 1);
    // A garbage +CUSD line, then the answer: read.
    a.ussd_answers(UssdAnswer::GarbageFirst).await;
    let read = "SELECT count(*) FROM balance_checks WHERE pence = 100";
    assert_eq!(wait_count(&database, read, 1).await, 1);
    let low = "SELECT count(*) FROM modem_faults WHERE kind = 'low_balance' AND cleared_ms IS NULL";
    assert_eq!(wait_count(&database, low, 1).await, 1);
    // Topped up: the next check (every second here) closes the fault.
    a.set_balance(900).await;
    let cleared =
        "SELECT count(*) FROM modem_faults WHERE kind = 'low_balance' AND cleared_ms IS NOT NULL";
    assert_eq!(wait_count(&database, cleared, 1).await, 1);
    // Meanwhile the modem serves callers as before.
    a.send_line("+CUSD: 0,\"5BZZ\",72").await;
    running
        .events
        .send(common::sip_call("sip-1", "07700900123"))
        .await
        .unwrap();
    assert_eq!(a.wait_sent(1, WAIT).await.len(), 1);
    running.stop().await.unwrap();
    let errors = query_strings(
        &database,
        "SELECT error FROM balance_checks WHERE error IS NOT NULL ORDER BY id",
    );
    assert!(
        errors[0].contains("no answer from the network within 2 s"),
        "{errors:?}"
    );
    assert!(errors[1].contains("the modem refused it"), "{errors:?}");
    assert!(errors[2].contains("does not support it"), "{errors:?}");
    assert!(
        errors.iter().all(|e| e.contains("modem.balance_ussd")),
        "{errors:?}"
    );
    // Only the low credit was a fault; the failed checks were not.
    assert_eq!(
        query_strings(&database, "SELECT kind FROM modem_faults"),
        vec!["low_balance".to_string()]
    );
}

/// Quick health timings on a clock set to `at`, with self-tests timing out after 2 s.
fn self_test_options(at: chrono::DateTime<chrono::Utc>) -> (RunOptions, textback::clock::Clock) {
    let clock = textback::clock::Clock::starting_at(at);
    let mut options = quick_health(None);
    options.clock = clock.clone();
    if let Some(timing) = options.modem_timing.as_mut() {
        timing.self_test_timeout = Some(Duration::from_secs(2));
    }
    (options, clock)
}

fn query_i64(database: &Path, sql: &str) -> i64 {
    let connection = textback::store::open_read_only(database).unwrap();
    connection.query_row(sql, [], |row| row.get(0)).unwrap()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_daily_self_test_texts_the_sim_itself_and_a_lost_text_is_told() {
    use chrono::TimeZone;
    let dir = tempfile::tempdir().unwrap();
    let database = dir.path().join("t.db");
    let token = "self-test-token-0123456789abcdef";
    with_api_token(&database, token).await;
    let a = VirtualModem::start(Options::default()).unwrap();
    let b = VirtualModem::start(Options {
        own_number: "+447700900888".to_string(),
        ..Options::default()
    })
    .unwrap();
    // a texts its own number at 04:00 UK time (GMT in December).
    let config = health_config(
        a.path(),
        b.path(),
        &database,
        "self_test = { to = \"+447700900999\", at = \"04:00\" }",
        "",
    );
    let (options, clock) = self_test_options(
        chrono::Utc
            .with_ymd_and_hms(2026, 12, 7, 3, 59, 58)
            .unwrap(),
    );
    let running = daemon::start(config.clone(), options).await.unwrap();
    let passed = "SELECT count(*) FROM self_tests WHERE state = 'passed'";
    assert_eq!(wait_count(&database, passed, 1).await, 1);
    let sent = a.sent();
    assert_eq!(sent.len(), 1, "{sent:?}");
    assert!(
        sent[0].text.starts_with("textback self-test "),
        "{}",
        sent[0].text
    );
    // Recorded before it went, at 04:00 by the set clock; it came back on a itself.
    assert_eq!(
        query_strings(
            &database,
            "SELECT modem || ' ' || recipient || ' ' || received_on || ' ' || strftime('%H:%M', started_ms / 1000, 'unixepoch') FROM self_tests"
        ),
        vec!["a +447700900999 a 04:00".to_string()]
    );
    let round_trip = query_i64(&database, "SELECT received_ms - started_ms FROM self_tests");
    // Never a caller: stored with no conversation, no reply, no lead.
    assert_eq!(
        query_i64(&database, "SELECT count(*) FROM conversations"),
        0
    );
    assert_eq!(
        query_i64(
            &database,
            "SELECT count(*) FROM messages WHERE direction = 'in' AND conversation_id IS NULL AND body LIKE 'textback self-test %'"
        ),
        1
    );
    let checks = textback::cli::doctor::self_test_checks(&config, &database);
    assert!(checks[0].detail.starts_with("passed at "), "{checks:?}");

    // The next day the network loses the text: after the timeout the test fails and the owner
    // is told, through b.
    a.drop_own_texts(true).await;
    clock.set(
        chrono::Utc
            .with_ymd_and_hms(2026, 12, 8, 3, 59, 59)
            .unwrap(),
    );
    let sent_at = std::time::Instant::now();
    let alert = wait_alert(&b).await;
    let told = sent_at.elapsed();
    assert!(
        alert.contains("self-test") && alert.contains("did not come back"),
        "{alert}"
    );
    assert_eq!(
        query_strings(&database, "SELECT state FROM self_tests ORDER BY id"),
        vec!["passed".to_string(), "failed".to_string()]
    );
    let base = format!("http://{}", running.dashboard);
    let metrics = reqwest::Client::new()
        .get(format!("{base}/metrics"))
        .bearer_auth(token)
        .send()
        .await
        .unwrap()
        .text()
        .await
        .unwrap();
    assert!(
        metrics.contains("textback_self_test_passed{modem=\"a\"} 0")
            && metrics.contains("textback_self_tests_total{modem=\"a\",state=\"failed\"} 1")
            && metrics.contains(
                "textback_modem_faults_open{kind=\"self_test\",cause=\"no_round_trip\"} 1"
            ),
        "{metrics}"
    );
    let checks = textback::cli::doctor::self_test_checks(&config, &database);
    assert!(
        checks[0].detail.starts_with("failed at ")
            && checks[0].detail.contains("unplug the dongle"),
        "{checks:?}"
    );

    // The day after, the text comes back again: passed, and the fault closes.
    a.drop_own_texts(false).await;
    clock.set(
        chrono::Utc
            .with_ymd_and_hms(2026, 12, 9, 3, 59, 59)
            .unwrap(),
    );
    assert_eq!(wait_count(&database, passed, 2).await, 2);
    assert_eq!(
        wait_count(
            &database,
            "SELECT count(*) FROM modem_faults WHERE kind = 'self_test' AND cleared_ms IS NOT NULL",
            1
        )
        .await,
        1
    );
    running.stop().await.unwrap();
    assert_eq!(
        query_i64(&database, "SELECT count(*) FROM conversations"),
        0
    );
    eprintln!(
        "detection: self-test round trip {round_trip} ms; a lost self-test text told {} ms after it was due (timeout 2 s)",
        told.as_millis()
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_self_test_to_another_modems_number_comes_back_on_that_modem() {
    use chrono::TimeZone;
    let dir = tempfile::tempdir().unwrap();
    let database = dir.path().join("t.db");
    let a = VirtualModem::start(Options::default()).unwrap();
    let b = VirtualModem::start(Options {
        own_number: "+447700900888".to_string(),
        ..Options::default()
    })
    .unwrap();
    let config = health_config(
        a.path(),
        b.path(),
        &database,
        "[modem.self_test]\nto = \"+447700900888\"\nat = \"06:30\"",
        "",
    );
    // 06:30 BST is 05:30 UTC in July.
    let (options, _clock) =
        self_test_options(chrono::Utc.with_ymd_and_hms(2026, 7, 1, 5, 29, 59).unwrap());
    let running = daemon::start(config, options).await.unwrap();
    let sent = a.wait_sent(1, WAIT).await;
    assert_eq!(sent[0].to, "+447700900888");
    // The network carries it to b's SIM.
    b.receive_sms("+447700900999", &sent[0].text).await;
    let passed = "SELECT count(*) FROM self_tests WHERE state = 'passed' AND received_on = 'b'";
    assert_eq!(wait_count(&database, passed, 1).await, 1);
    running.stop().await.unwrap();
    assert_eq!(
        query_i64(&database, "SELECT count(*) FROM conversations"),
        0
    );
    assert!(b.sent().is_empty(), "{:?}", b.sent());
}

/// A fake /sys and /dev in which USB serial ports (an E3372's AT interface) are links to virtual
/// modems' pseudo-terminals: a replug that brings a dongle back under another name is one link
/// removed and another made.
struct FakeUsb {
    root: tempfile::TempDir,
}

impl FakeUsb {
    fn new() -> FakeUsb {
        let root = tempfile::tempdir().unwrap();
        std::fs::create_dir_all(root.path().join("sys/class/tty")).unwrap();
        std::fs::create_dir_all(root.path().join("dev")).unwrap();
        FakeUsb { root }
    }

    fn search(&self) -> textback::config::PortSearch {
        textback::config::PortSearch {
            sys: self.root.path().join("sys"),
            dev: self.root.path().join("dev"),
        }
    }

    fn dev(&self, tty: &str) -> std::path::PathBuf {
        self.root.path().join("dev").join(tty)
    }

    /// Plugs a dongle in: USB device `usb` (with `serial`), its AT port named `tty`, which is `pty`.
    fn plug(&self, tty: &str, usb: &str, serial: Option<&str>, pty: &Path) {
        use std::os::unix::fs::symlink;
        let sys = self.root.path().join("sys");
        let device = sys.join("devices/usb1").join(usb);
        let interface = device.join(format!("{usb}:1.0"));
        std::fs::create_dir_all(interface.join(tty)).unwrap();
        std::fs::write(device.join("idVendor"), "12d1\n").unwrap();
        std::fs::write(device.join("idProduct"), "1506\n").unwrap();
        if let Some(serial) = serial {
            std::fs::write(device.join("serial"), format!("{serial}\n")).unwrap();
        }
        std::fs::write(interface.join("bInterfaceNumber"), "00\n").unwrap();
        std::fs::create_dir_all(sys.join("class/tty").join(tty)).unwrap();
        symlink(
            interface.join(tty),
            sys.join("class/tty").join(tty).join("device"),
        )
        .unwrap();
        symlink(pty, self.dev(tty)).unwrap();
    }

    /// Unplugs it: its port and USB device vanish.
    fn unplug(&self, tty: &str, usb: &str) {
        let sys = self.root.path().join("sys");
        std::fs::remove_dir_all(sys.join("class/tty").join(tty)).unwrap();
        std::fs::remove_dir_all(sys.join("devices/usb1").join(usb)).unwrap();
        std::fs::remove_file(self.dev(tty)).unwrap();
    }
}

/// A virtual dongle with this IMEI and SIM (ICCID).
fn dongle(imei: &str, iccid: &str) -> VirtualModem {
    VirtualModem::start(Options {
        imei: imei.to_string(),
        iccid: iccid.to_string(),
        ..Options::default()
    })
    .unwrap()
}

/// Waits until the modem is usable on the port named `tty`.
async fn wait_on_port(handle: &ModemHandle, port: &Path) {
    let port = port.display().to_string();
    wait_state(handle, |s| {
        s.is_usable()
            && matches!(s, textback::modem::ModemState::Ready { info } if info.port == port)
    })
    .await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_modem_bound_by_usb_serial_is_found_again_under_another_name_after_a_replug() {
    let dir = tempfile::tempdir().unwrap();
    let database = dir.path().join("t.db");
    let usb = FakeUsb::new();
    let a = dongle("867530012345601", "8944110068900000011");
    usb.plug("ttyUSB0", "1-1", Some("SERIALA0001"), a.path());
    let b = VirtualModem::start(Options {
        own_number: "+447700900888".to_string(),
        ..Options::default()
    })
    .unwrap();
    // a is named by its USB serial only; its configured port does not exist.
    let config = health_config(
        Path::new("/dev/textback-modem-nowhere"),
        b.path(),
        &database,
        "usb_serial = \"SERIALA0001\"",
        "",
    );
    let mut options = quick_health(None);
    options.port_search = Some(usb.search());
    let running = daemon::start(config, options).await.unwrap();
    wait_on_port(handle(&running, "a"), &usb.dev("ttyUSB0")).await;
    wait_state(handle(&running, "b"), |s| s.is_usable()).await;
    running
        .events
        .send(common::sip_call("sip-1", "07700900123"))
        .await
        .unwrap();
    assert_eq!(a.wait_sent(1, WAIT).await.len(), 1);

    // Replugged: the same dongle comes back as ttyUSB3 on another USB path.
    let replugged = std::time::Instant::now();
    a.stop().await;
    usb.unplug("ttyUSB0", "1-1");
    let a = dongle("867530012345601", "8944110068900000011");
    usb.plug("ttyUSB3", "1-4", Some("SERIALA0001"), a.path());
    wait_on_port(handle(&running, "a"), &usb.dev("ttyUSB3")).await;
    let back = replugged.elapsed();
    running
        .events
        .send(common::sip_call("sip-2", "07700900456"))
        .await
        .unwrap();
    assert_eq!(a.wait_sent(1, WAIT).await.len(), 1);
    running.stop().await.unwrap();
    assert!(b.sent().is_empty(), "{:?}", b.sent());
    eprintln!(
        "recovery: a dongle bound by USB serial, replugged under another name, ready again in {} ms",
        back.as_millis()
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_modem_bound_by_iccid_is_found_again_and_another_sim_is_not_used() {
    let dir = tempfile::tempdir().unwrap();
    let database = dir.path().join("t.db");
    let usb = FakeUsb::new();
    let a = dongle("867530012345601", "8944110068900000011");
    usb.plug("ttyUSB0", "1-1", None, a.path());
    // Another dongle with another SIM, not in the config, on ttyUSB1.
    let stranger = dongle("867530012345699", "8944110068900000099");
    usb.plug("ttyUSB1", "1-2", None, stranger.path());
    let b = VirtualModem::start(Options {
        own_number: "+447700900888".to_string(),
        ..Options::default()
    })
    .unwrap();
    let config = health_config(
        &usb.dev("ttyUSB0"),
        b.path(),
        &database,
        "iccid = \"8944110068900000011\"",
        "",
    );
    let mut options = quick_health(None);
    options.port_search = Some(usb.search());
    let running = daemon::start(config, options).await.unwrap();
    wait_on_port(handle(&running, "a"), &usb.dev("ttyUSB0")).await;

    // Replugged as ttyUSB5: ttyUSB0 is gone; ttyUSB1 answers but holds another SIM.
    let replugged = std::time::Instant::now();
    a.stop().await;
    usb.unplug("ttyUSB0", "1-1");
    let a = dongle("867530012345601", "8944110068900000011");
    usb.plug("ttyUSB5", "1-5", None, a.path());
    wait_on_port(handle(&running, "a"), &usb.dev("ttyUSB5")).await;
    let back = replugged.elapsed();
    running
        .events
        .send(common::sip_call("sip-1", "07700900123"))
        .await
        .unwrap();
    assert_eq!(a.wait_sent(1, WAIT).await.len(), 1);
    running.stop().await.unwrap();
    // The stranger was asked who it is, and nothing was sent from it.
    assert!(
        stranger.commands().iter().any(|c| c == "AT^ICCID?"),
        "{:?}",
        stranger.commands()
    );
    assert!(stranger.sent().is_empty());
    eprintln!(
        "recovery: a dongle bound by ICCID, replugged under another name (another SIM's port tried and passed over), ready again in {} ms",
        back.as_millis()
    );
}

/// The plumbing profile on two modems given as (id, port), with no identity keys.
fn two_modems(first: (&str, &Path), second: (&str, &Path), database: &Path) -> Arc<config::Config> {
    let text = format!(
        r#"
[storage]
database = "{database}"

[dashboard]
listen = "127.0.0.1:0"
public_url = "http://127.0.0.1:8080"

[[modem]]
id = "{first_id}"
port = "{first_port}"

[[modem]]
id = "{second_id}"
port = "{second_port}"

[[profile]]
id = "plumbing"
name = "Brightwater Plumbing"
numbers = ["+441632960123"]

[[profile.question]]
id = "name"
ask = "Who am I speaking to?"

[[profile.question]]
id = "reason"
ask = "What do you need help with?"
"#,
        database = database.display(),
        first_id = first.0,
        first_port = first.1.display(),
        second_id = second.0,
        second_port = second.1.display(),
    );
    Arc::new(
        config::parse(&text, Path::new("pool.toml"))
            .expect("pool config")
            .config,
    )
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_conversation_stays_on_its_sim_when_ports_swap_and_modems_are_renamed() {
    let dir = tempfile::tempdir().unwrap();
    let database = dir.path().join("t.db");
    // Two dongles, each with its own SIM and number.
    let x = VirtualModem::start(Options {
        iccid: "8944110068900000011".to_string(),
        imei: "867530012345601".to_string(),
        ..Options::default()
    })
    .unwrap();
    let y = VirtualModem::start(Options {
        iccid: "8944110068900000022".to_string(),
        imei: "867530012345602".to_string(),
        own_number: "+447700900888".to_string(),
        ..Options::default()
    })
    .unwrap();
    let caller = "+447700900123";
    let to_caller = |modem: &VirtualModem| {
        modem
            .sent()
            .into_iter()
            .filter(|s| s.to == caller)
            .map(|s| s.text)
            .collect::<Vec<_>>()
    };

    // 1. The conversation starts on modem a, SIM x.
    let config = two_modems(("a", x.path()), ("b", y.path()), &database);
    let running = daemon::start(config, RunOptions::default()).await.unwrap();
    wait_state(handle(&running, "a"), |s| s.is_usable()).await;
    wait_state(handle(&running, "b"), |s| s.is_usable()).await;
    running
        .events
        .send(common::sip_call("sip-1", "07700900123"))
        .await
        .unwrap();
    assert_eq!(x.wait_sent(1, WAIT).await.len(), 1);
    running.stop().await.unwrap();
    assert_eq!(
        query_strings(&database, "SELECT modem || ' ' || iccid FROM conversations"),
        vec!["a 8944110068900000011".to_string()]
    );

    // 2. After a reboot the ports swap: a is y's port now, b is x's. The caller replies to x's
    // number; the next question still goes from x (modem b now), never from y.
    let config = two_modems(("a", y.path()), ("b", x.path()), &database);
    let running = daemon::start(config, RunOptions::default()).await.unwrap();
    wait_state(handle(&running, "a"), |s| s.is_usable()).await;
    wait_state(handle(&running, "b"), |s| s.is_usable()).await;
    x.receive_sms(caller, "Dave").await;
    let sent = x.wait_sent(2, WAIT).await;
    assert!(
        sent.last()
            .is_some_and(|s| s.to == caller && s.text.contains("What do you need help with?")),
        "{sent:?}"
    );
    running.stop().await.unwrap();
    assert_eq!(
        query_strings(&database, "SELECT modem || ' ' || iccid FROM conversations"),
        vec!["b 8944110068900000011".to_string()]
    );

    // 3. The modems are renamed in the config: the SIM's new id carries the conversation on.
    let config = two_modems(("shop", x.path()), ("back", y.path()), &database);
    let running = daemon::start(config, RunOptions::default()).await.unwrap();
    wait_state(handle(&running, "shop"), |s| s.is_usable()).await;
    wait_state(handle(&running, "back"), |s| s.is_usable()).await;
    x.receive_sms(caller, "boiler leaking in the kitchen").await;
    assert_eq!(x.wait_sent(3, WAIT).await.len(), 3);
    running.stop().await.unwrap();
    assert_eq!(to_caller(&x).len(), 3, "{:?}", x.sent());
    assert!(to_caller(&y).is_empty(), "{:?}", y.sent());
    assert_eq!(
        query_strings(&database, "SELECT modem FROM conversations"),
        vec!["shop".to_string()]
    );
    assert_eq!(
        query_strings(
            &database,
            "SELECT DISTINCT modem FROM messages WHERE direction = 'out' ORDER BY modem"
        ),
        vec!["a".to_string(), "b".to_string(), "shop".to_string()]
    );
}
