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
