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
    let config_path = harness.write_config();
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
        .kill_on_drop(true)
        .spawn()
        .unwrap();

    let receive = |socket: &UnixDatagram| {
        let mut buf = [0u8; 256];
        let n = socket
            .recv(&mut buf)
            .expect("a notification within the wait");
        String::from_utf8_lossy(&buf[..n]).trim_end().to_string()
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
        if buf[..n].trim_ascii_end() == b"STOPPING=1" {
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

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn sigterm_stops_the_daemon_after_its_modem_vanished() {
    let harness = Harness::new();
    let config_path = harness.write_config();
    let mut child = tokio::process::Command::new(env!("CARGO_BIN_EXE_textback"))
        .args(["run", "--config", config_path.to_str().unwrap()])
        .stderr(Stdio::piped())
        .kill_on_drop(true)
        .spawn()
        .unwrap();
    assert!(
        harness.modem.wait_command(|c| c == "AT+CMGL=4", WAIT).await,
        "the daemon set the modem up"
    );
    // Read the daemon's log as it comes.
    let (lines_tx, mut lines_rx) = tokio::sync::mpsc::unbounded_channel::<String>();
    let stderr = child.stderr.take().unwrap();
    let reader = tokio::spawn(async move {
        use tokio::io::AsyncBufReadExt;
        let mut lines = tokio::io::BufReader::new(stderr).lines();
        while let Ok(Some(line)) = lines.next_line().await {
            let _ = lines_tx.send(line);
        }
    });
    let mut log = String::new();
    let mut wait_for = async |needle: &str, log: &mut String| {
        let deadline = tokio::time::Instant::now() + WAIT;
        while let Ok(Some(line)) = tokio::time::timeout_at(deadline, lines_rx.recv()).await {
            log.push_str(&line);
            log.push('\n');
            if line.contains(needle) {
                return true;
            }
        }
        false
    };
    // The dongle is pulled out: the pseudo-terminal goes away, and the daemon notices.
    harness.modem.stop().await;
    assert!(
        wait_for("modem lost", &mut log).await,
        "the daemon noticed the modem vanish:\n{log}"
    );
    let pid = nix::unistd::Pid::from_raw(child.id().unwrap() as i32);
    nix::sys::signal::kill(pid, nix::sys::signal::Signal::SIGTERM).unwrap();
    assert!(
        wait_for("stopped; database closed", &mut log).await,
        "clean stop:\n{log}"
    );
    let status = tokio::time::timeout(WAIT, child.wait())
        .await
        .unwrap()
        .unwrap();
    assert!(status.success(), "{log}");
    reader.abort();
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn kill_9_mid_conversation_loses_nothing_and_resends_nothing() {
    let harness = Harness::new();
    let config_path = harness.write_config();
    let start = || {
        tokio::process::Command::new(env!("CARGO_BIN_EXE_textback"))
            .args(["run", "--config", config_path.to_str().unwrap()])
            .stderr(Stdio::null())
            .kill_on_drop(true)
            .spawn()
            .unwrap()
    };
    let mut first = start();
    harness.modem.call(Some(common::CALLER_NATIONAL), 2).await;
    assert_eq!(harness.modem.wait_sent(1, WAIT).await.len(), 1);
    harness.modem.receive_sms(common::CALLER, "Priya").await;
    assert_eq!(harness.modem.wait_sent(2, WAIT).await.len(), 2);
    assert_eq!(
        harness.wait_count("SELECT count(*) FROM messages WHERE direction = 'out' AND state IN ('sent', 'delivered')", 2).await,
        2
    );
    // No shutdown at all: SIGKILL.
    first.start_kill().unwrap();
    first.wait().await.unwrap();

    // The caller replies while textback is down: the SMS waits on the SIM.
    harness
        .modem
        .receive_sms(common::CALLER, "Blocked drain")
        .await;
    let mut second = start();
    let sent = harness.modem.wait_sent(3, WAIT).await;
    assert_eq!(sent.len(), 3);
    assert_eq!(sent[2].text, "Thanks. And the postcode of the job?");
    harness.modem.receive_sms(common::CALLER, "N1 9GU").await;
    assert_eq!(harness.wait_count("SELECT count(*) FROM leads", 1).await, 1);
    let sent = harness.modem.wait_sent(4, WAIT).await;
    second.start_kill().unwrap();
    second.wait().await.unwrap();

    // The caller's texts (the owner's copy of the lead may have gone out too).
    assert!(sent.len() >= 4);
    let texts: Vec<String> = harness
        .modem
        .sent()
        .into_iter()
        .filter(|s| s.to == common::CALLER)
        .map(|s| s.text)
        .collect();
    assert_eq!(texts.len(), 4, "nothing sent twice: {texts:#?}");
    assert_eq!(texts[1], "Thanks. What do you need help with?");
    assert_eq!(
        texts[3],
        "Thanks Priya, Brightwater Plumbing will call you back."
    );
    assert_eq!(
        harness.query_i64("SELECT count(*) FROM messages WHERE direction = 'in'"),
        3
    );
    let answers = harness.query_strings("SELECT answers FROM leads");
    assert_eq!(
        answers,
        vec![r#"[["name","Priya"],["reason","Blocked drain"],["postcode","N1 9GU"]]"#.to_string()]
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_dongle_comes_back_under_another_name_and_the_outbox_resumes() {
    use textback::modem::virtual_modem::{Options, VirtualModem};
    let harness = Harness::new();
    // The config names a stable udev-style link; the kernel name behind it changes on replug.
    let link = harness.dir.path().join("textback-modem");
    std::os::unix::fs::symlink(harness.modem.path(), &link).unwrap();
    let text = common::config_text(&link, &harness.database());
    let config = textback::config::parse(&text, std::path::Path::new("t.toml"))
        .unwrap()
        .config;
    let running = textback::daemon::start(std::sync::Arc::new(config), Default::default())
        .await
        .unwrap();
    harness.first_text_confirmed().await;

    // Unplugged: the port vanishes and the daemon notices.
    let mut handle = running.modems[0].clone();
    let Harness { dir, modem, .. } = harness;
    modem.stop().await;
    let lost = tokio::time::timeout(WAIT, async {
        loop {
            if matches!(handle.state(), textback::modem::ModemState::Lost { .. }) {
                return;
            }
            let _ = handle.state_changed().await;
        }
    })
    .await;
    assert!(lost.is_ok(), "the daemon noticed the unplug");
    // A call comes in over SIP meanwhile: its text must wait in the outbox, not fail.
    running
        .events
        .send(common::sip_call("sip-while-unplugged", "07700900456"))
        .await
        .unwrap();

    // Plugged back in: a new pseudo-terminal, the link re-pointed as udev would.
    let back = VirtualModem::start(Options::default()).unwrap();
    std::fs::remove_file(&link).unwrap();
    std::os::unix::fs::symlink(back.path(), &link).unwrap();
    let sent = back.wait_sent(1, std::time::Duration::from_secs(30)).await;
    assert_eq!(
        sent.len(),
        1,
        "the queued text went out after the reconnect"
    );
    assert_eq!(sent[0].to, "+447700900456");
    running.stop().await.unwrap();
    assert_eq!(back.sent().len(), 1, "nothing sent twice");
    let database = dir.path().join("textback.db");
    let connection = textback::store::open_read_only(&database).unwrap();
    let failed: i64 = connection
        .query_row(
            "SELECT count(*) FROM messages WHERE state = 'failed'",
            [],
            |row| row.get(0),
        )
        .unwrap();
    assert_eq!(failed, 0);
}
