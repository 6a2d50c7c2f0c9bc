//! `textback run` as systemd runs it: a real process, a notify socket, SIGTERM.

mod common;

use std::os::unix::net::UnixDatagram;
use std::process::Stdio;
use std::time::Duration;

use common::{Harness, WAIT};
use tokio::io::AsyncReadExt;

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn run_notifies_systemd_pings_the_watchdog_logs_json_and_stops_cleanly_on_sigterm() {
    let harness = Harness::new();
    let config_path = harness.dir.path().join("textback.toml");
    std::fs::write(
        &config_path,
        common::config_text(harness.modem.path(), &harness.database()),
    )
    .unwrap();
    let socket_path = harness.dir.path().join("notify.sock");
    let socket = UnixDatagram::bind(&socket_path).unwrap();
    socket.set_read_timeout(Some(WAIT)).unwrap();

    let mut child = tokio::process::Command::new(env!("CARGO_BIN_EXE_textback"))
        .args([
            "run",
            "--config",
            config_path.to_str().unwrap(),
            "--log-format",
            "json",
        ])
        .env("NOTIFY_SOCKET", &socket_path)
        // 400 ms: the daemon pings every 200 ms.
        .env("WATCHDOG_USEC", "400000")
        .env_remove("WATCHDOG_PID")
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();

    let receive = |socket: &UnixDatagram| {
        let mut buf = [0u8; 256];
        let n = socket
            .recv(&mut buf)
            .expect("a notification within the wait");
        String::from_utf8_lossy(&buf[..n]).into_owned()
    };
    let socket = tokio::task::spawn_blocking(move || {
        assert_eq!(receive(&socket), "READY=1");
        assert_eq!(receive(&socket), "WATCHDOG=1");
        assert_eq!(receive(&socket), "WATCHDOG=1");
        socket
    })
    .await
    .unwrap();

    // The daemon works: a call gets its text.
    harness.modem.call(Some(common::CALLER_NATIONAL), 2).await;
    assert_eq!(harness.modem.wait_sent(1, WAIT).await.len(), 1);

    let pid = nix::unistd::Pid::from_raw(child.id().unwrap() as i32);
    nix::sys::signal::kill(pid, nix::sys::signal::Signal::SIGTERM).unwrap();
    let status = tokio::time::timeout(WAIT, child.wait())
        .await
        .unwrap()
        .unwrap();
    let mut stderr = String::new();
    child
        .stderr
        .take()
        .unwrap()
        .read_to_string(&mut stderr)
        .await
        .unwrap();
    assert!(status.success(), "exit {status:?}\n{stderr}");

    // STOPPING=1 was said on the way out (watchdog pings may come before it).
    socket
        .set_read_timeout(Some(Duration::from_secs(2)))
        .unwrap();
    let mut stopping = false;
    let mut buf = [0u8; 256];
    while let Ok(n) = socket.recv(&mut buf) {
        if &buf[..n] == b"STOPPING=1" {
            stopping = true;
            break;
        }
    }
    assert!(stopping, "STOPPING=1 sent");

    // Every log line is a JSON object; the last says the database was closed.
    let lines: Vec<serde_json::Value> = stderr
        .lines()
        .map(|line| serde_json::from_str(line).unwrap_or_else(|err| panic!("{err}: {line}")))
        .collect();
    let messages: Vec<&str> = lines.iter().filter_map(|l| l["message"].as_str()).collect();
    assert!(messages.contains(&"SIGTERM received"), "{messages:?}");
    assert!(messages.contains(&"modem ready"), "{messages:?}");
    assert_eq!(
        messages.last(),
        Some(&"stopped; database closed"),
        "{messages:?}"
    );
    // The call's log lines carry its id, so one call can be followed.
    assert!(
        lines
            .iter()
            .any(|l| l["message"] == "conversation started" && l["span"]["call_id"].is_string()),
        "{stderr}"
    );
    // Nothing was left half-sent.
    assert_eq!(
        harness.query_i64("SELECT count(*) FROM messages WHERE state = 'sending'"),
        0
    );
}
