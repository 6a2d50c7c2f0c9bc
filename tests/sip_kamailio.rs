//! textback registers to kamailio (Debian package `kamailio`), a real registrar that asks for
//! digest authentication (qop=auth), and kamailio relays a SIPp caller's diverted call to it.
//! Shutdown removes the registration, so kamailio then has nobody to relay to. baresip, a real
//! phone registered there as another user, calls the business number and hangs up after 180.
//! An account registers over TCP, takes its call on that connection and connects again when
//! kamailio restarts; two accounts register at once and each takes its own calls.

mod common;

use std::net::{SocketAddr, UdpSocket};
use std::path::{Path, PathBuf};
use std::process::Stdio;
use std::sync::Arc;
use std::time::Duration;

use common::{Harness, WAIT};
use textback::config;
use textback::modem::virtual_modem::{Options, VirtualModem};

const PASSWORD: &str = "textback-test-secret";
const USERNAME: &str = "441632960123";

fn manifest(path: &str) -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join(path)
}

fn binary(path: &str, package: &str) -> PathBuf {
    let path = PathBuf::from(path);
    assert!(
        path.exists(),
        "{} is not installed: run `apt-get install {package}` (scripts/test.sh does)",
        path.display()
    );
    path
}

/// A port free for UDP, and for TCP too.
fn free_port() -> u16 {
    loop {
        let port = UdpSocket::bind("127.0.0.1:0")
            .and_then(|socket| socket.local_addr())
            .map(|address| address.port())
            .expect("a free port");
        if std::net::TcpListener::bind(("127.0.0.1", port)).is_ok() {
            return port;
        }
    }
}

/// kamailio in the foreground, in its own process group, stopped (with its children) on drop.
struct Kamailio {
    child: std::process::Child,
    address: SocketAddr,
    log: PathBuf,
}

/// What kamailio listens on.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Listen {
    Udp,
    UdpAndTcp,
}

impl Kamailio {
    /// kamailio on UDP, on a free port.
    fn start(dir: &Path) -> Kamailio {
        Self::start_on(dir, free_port(), Listen::Udp)
    }

    /// kamailio on `port` (again, after a restart: its log is appended to).
    fn start_on(dir: &Path, port: u16, listen: Listen) -> Kamailio {
        let runtime = dir.join("kamailio");
        std::fs::create_dir_all(&runtime).expect("runtime dir");
        let log = dir.join("kamailio.log");
        let mut command = std::process::Command::new(binary("/usr/sbin/kamailio", "kamailio"));
        command
            .arg("-f")
            .arg(manifest("tests/kamailio/kamailio.cfg"))
            .args(["-l", &format!("udp:127.0.0.1:{port}")]);
        if listen == Listen::UdpAndTcp {
            command.args(["-l", &format!("tcp:127.0.0.1:{port}")]);
        }
        let child = command
            .args(["-DD", "-E", "-m", "32", "-M", "8"])
            .arg("-Y")
            .arg(&runtime)
            .arg("-P")
            .arg(runtime.join("kamailio.pid"))
            .arg("-w")
            .arg(&runtime)
            .stdin(Stdio::null())
            .stdout(Stdio::null())
            .stderr(
                std::fs::File::options()
                    .create(true)
                    .append(true)
                    .open(&log)
                    .expect("log file"),
            )
            .process_group(0)
            .spawn()
            .expect("start kamailio");
        Kamailio {
            child,
            address: SocketAddr::from(([127, 0, 0, 1], port)),
            log,
        }
    }

    fn log(&self) -> String {
        std::fs::read_to_string(&self.log).unwrap_or_default()
    }
}

impl Drop for Kamailio {
    fn drop(&mut self) {
        // The group is kamailio's own (process_group(0) above): its main process and children.
        let group = nix::unistd::Pid::from_raw(self.child.id() as i32);
        let _ = nix::sys::signal::killpg(group, nix::sys::signal::Signal::SIGTERM);
        let _ = self.child.wait();
    }
}

use std::os::unix::process::CommandExt;

fn harness(registrar: SocketAddr, password: &str) -> Harness {
    harness_with(&account("pbx", registrar, USERNAME, password, ""))
}

/// One `[[sip]]` account registering to kamailio at `registrar`, with more keys in `extra` (which
/// may set local_port; 0 otherwise).
fn account(
    name: &str,
    registrar: SocketAddr,
    username: &str,
    password: &str,
    extra: &str,
) -> String {
    let text = format!(
        r#"
[[sip]]
name = "{name}"
registrar = "{registrar}"
domain = "textback.test"
username = "{username}"
password = "{password}"
listen = ["127.0.0.1"]
local_port = 0
expires = 120
{extra}
"#
    );
    if extra.contains("local_port") {
        text.replacen("local_port = 0\n", "", 1)
    } else {
        text
    }
}

/// The usual config with `accounts` appended (more profiles may come first: the plumbing profile
/// is then the default), also written to [`config_file`] for the commands.
fn harness_with(accounts: &str) -> Harness {
    let dir = tempfile::tempdir().expect("temporary directory");
    let modem = VirtualModem::start(Options::default()).expect("virtual modem");
    let extra = accounts.to_string();
    let mut text = common::config_text(modem.path(), &dir.path().join("textback.db"));
    if extra.contains("[[profile]]") {
        text = text.replacen("closing_message", "default = true\nclosing_message", 1);
    }
    text += &extra;
    std::fs::write(dir.path().join("textback.toml"), &text).expect("write config");
    let config = config::parse(&text, Path::new("test.toml"))
        .expect("test config")
        .config;
    Harness {
        dir,
        modem,
        config: Arc::new(config),
        extra,
        text,
    }
}

/// The config file of a [`harness_with`] harness.
fn config_file(harness: &Harness) -> PathBuf {
    harness.dir.path().join("textback.toml")
}

/// Waits until the account's row in sip_accounts has `state`; returns the row's state and error.
async fn wait_state(harness: &Harness, state: &str) -> (String, String) {
    wait_account(harness, "pbx", state).await
}

/// Waits until account `name`'s row in sip_accounts has `state`; returns its state and error.
async fn wait_account(harness: &Harness, name: &str, state: &str) -> (String, String) {
    let deadline = tokio::time::Instant::now() + WAIT;
    loop {
        let rows = if harness.database().exists() {
            harness.query_strings(&format!(
                "SELECT state || '|' || coalesce(last_error, '') FROM sip_accounts WHERE name = '{name}'"
            ))
        } else {
            Vec::new()
        };
        if let Some(row) = rows.first() {
            let (got, error) = row.split_once('|').unwrap_or((row, ""));
            if got == state || tokio::time::Instant::now() > deadline {
                return (got.to_string(), error.to_string());
            }
        } else if tokio::time::Instant::now() > deadline {
            return ("no row".to_string(), String::new());
        }
        // Polling the database the daemon writes; the wait ends as soon as the row changes.
        tokio::time::sleep(Duration::from_millis(25)).await;
    }
}

async fn sipp(dir: &Path, scenario: &str, kamailio: SocketAddr) -> (i32, String) {
    sipp_to(dir, scenario, kamailio, USERNAME).await
}

/// Runs one SIPp call through kamailio to SIP user `user` (the scenario's `[service]`).
async fn sipp_to(dir: &Path, scenario: &str, kamailio: SocketAddr, user: &str) -> (i32, String) {
    static RUNS: std::sync::atomic::AtomicUsize = std::sync::atomic::AtomicUsize::new(0);
    let run = RUNS.fetch_add(1, std::sync::atomic::Ordering::Relaxed);
    let errors = dir.join(format!("{scenario}-{user}-{run}.errors"));
    let output = tokio::process::Command::new(binary("/usr/bin/sipp", "sip-tester"))
        .arg(kamailio.to_string())
        .arg("-sf")
        .arg(manifest("tests/sipp").join(scenario))
        // The caller is not the registrar's address: only kamailio may reach textback.
        .args(["-s", user, "-i", "127.0.0.2", "-p", "0"])
        .args([
            "-m",
            "1",
            "-timeout",
            "20s",
            "-timeout_error",
            "-nostdin",
            "-trace_err",
        ])
        .arg("-error_file")
        .arg(&errors)
        .stdin(Stdio::null())
        .stdout(Stdio::null())
        .stderr(Stdio::piped())
        .kill_on_drop(true)
        .output();
    let output = tokio::time::timeout(Duration::from_secs(40), output)
        .await
        .expect("sipp finishes")
        .expect("run sipp");
    (
        output.status.code().unwrap_or(-1),
        format!(
            "{}{}",
            String::from_utf8_lossy(&output.stderr),
            std::fs::read_to_string(&errors).unwrap_or_default()
        ),
    )
}

#[tokio::test]
async fn registers_with_digest_takes_a_relayed_call_and_unregisters() {
    let scratch = tempfile::tempdir().expect("temporary directory");
    let kamailio = Kamailio::start(scratch.path());
    let harness = harness(kamailio.address, PASSWORD);
    let running = harness.start().await;
    let (state, error) = wait_state(&harness, "registered").await;
    assert_eq!(
        state,
        "registered",
        "{error}\nkamailio:\n{}",
        kamailio.log()
    );
    // The dashboard's API and /metrics say so too.
    {
        let (store, closer) = textback::store::Store::open(&harness.database()).unwrap();
        let digest = textback::web::auth::token_digest("test-token");
        store
            .run(move |tx| tx.set_setting(textback::web::auth::API_TOKEN_SETTING, &digest))
            .await
            .unwrap();
        drop(store);
        closer.wait();
    }
    let http = reqwest::Client::new();
    let status: serde_json::Value = http
        .get(format!("http://{}/api/v1/status", running.dashboard))
        .bearer_auth("test-token")
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    assert_eq!(status["sip_accounts"][0]["name"], "pbx");
    assert_eq!(status["sip_accounts"][0]["state"], "registered");
    assert!(status["sip_accounts"][0]["next_refresh_ms"].is_i64());
    let metrics = http
        .get(format!("http://{}/metrics", running.dashboard))
        .bearer_auth("test-token")
        .send()
        .await
        .unwrap()
        .text()
        .await
        .unwrap();
    assert!(
        metrics.contains("textback_sip_registered{account=\"pbx\"} 1"),
        "{metrics}"
    );

    let (status, log) = sipp(
        scratch.path(),
        "divert_cancel_proxied.xml",
        kamailio.address,
    )
    .await;
    assert_eq!(
        status,
        0,
        "call through kamailio: {log}\nkamailio:\n{}",
        kamailio.log()
    );
    assert_eq!(
        harness
            .wait_count("SELECT count(*) FROM calls WHERE source = 'sip'", 1)
            .await,
        1
    );
    assert_eq!(
        harness.query_strings("SELECT caller || ' ' || called || ' ' || profile FROM calls"),
        ["+447700900123 +441632960123 plumbing"]
    );
    let sent = harness.modem.wait_sent(1, WAIT).await;
    assert_eq!(sent.len(), 1);
    assert_eq!(sent[0].to, "+447700900123");

    running.stop().await.expect("clean stop");
    let (state, _) = wait_state(&harness, "unregistered").await;
    assert_eq!(state, "unregistered");
    // The binding is gone: kamailio has nobody to relay the next call to.
    let (status, log) = sipp(scratch.path(), "not_found.xml", kamailio.address).await;
    assert_eq!(status, 0, "expected 404 after un-REGISTER: {log}");
}

#[tokio::test]
async fn a_wrong_password_fails_with_a_message_naming_the_user() {
    let scratch = tempfile::tempdir().expect("temporary directory");
    let kamailio = Kamailio::start(scratch.path());
    let harness = harness(kamailio.address, "wrong-password");
    let running = harness.start().await;
    let (state, error) = wait_state(&harness, "failed").await;
    assert_eq!(state, "failed", "kamailio:\n{}", kamailio.log());
    assert!(error.contains(USERNAME), "{error}");
    running.stop().await.expect("clean stop");
}

#[tokio::test]
async fn a_real_phone_calls_through_kamailio_and_hangs_up_after_180() {
    const PHONE: &str = "07700900777";
    let scratch = tempfile::tempdir().expect("temporary directory");
    let kamailio = Kamailio::start(scratch.path());
    let harness = harness(kamailio.address, PASSWORD);
    let running = harness.start().await;
    let (state, error) = wait_state(&harness, "registered").await;
    assert_eq!(
        state,
        "registered",
        "{error}\nkamailio:\n{}",
        kamailio.log()
    );

    let mut phone = common::baresip::Phone::start(
        &scratch.path().join("baresip"),
        &common::baresip::Account {
            user: PHONE,
            domain: "textback.test",
            password: "phone-test-secret",
            proxy: kamailio.address,
        },
    )
    .await;
    phone.wait_registered().await;
    // The business's SIP user, as textback registered it; kamailio relays to its binding.
    phone
        .command("dial", &format!("sip:{USERNAME}@textback.test"))
        .await;
    let ringing = phone.wait_event("CALL_RINGING", WAIT).await;
    assert_eq!(ringing["direction"], "outgoing", "{ringing}");
    phone.command("hangup", "").await;
    let closed = phone.wait_event("CALL_CLOSED", WAIT).await;
    assert!(
        phone
            .events
            .iter()
            .all(|event| event["type"] != "CALL_ESTABLISHED"),
        "textback must never answer: {:?}",
        phone.events
    );

    assert_eq!(
        harness
            .wait_count("SELECT count(*) FROM calls WHERE source = 'sip'", 1)
            .await,
        1,
        "closed with {closed}\nkamailio:\n{}\nbaresip:\n{}",
        kamailio.log(),
        phone.log()
    );
    assert_eq!(
        harness.query_strings(
            "SELECT caller || ' ' || called || ' ' || profile || ' ' || decision FROM calls"
        ),
        ["+447700900777 +441632960123 plumbing text"],
        "the caller from the phone's From, the business from its To"
    );
    let sent = harness.modem.wait_sent(1, WAIT).await;
    assert_eq!(sent.len(), 1, "one text");
    assert_eq!(sent[0].to, "+447700900777");
    phone.quit().await;
    running.stop().await.expect("clean stop");
    // Still one call and one text after everything has settled.
    assert_eq!(harness.query_i64("SELECT count(*) FROM calls"), 1);
    assert_eq!(harness.modem.sent().len(), 1);
}

/// The established TCP connections of this host with `port` at one end, as (local port, remote
/// port) from /proc/net/tcp: a connection between two local programs is listed from both ends.
fn tcp_connections(port: u16) -> Vec<(u16, u16)> {
    let table = std::fs::read_to_string("/proc/net/tcp").expect("read /proc/net/tcp");
    let port_of = |field: &str| u16::from_str_radix(field.rsplit(':').next()?, 16).ok();
    let mut found: Vec<(u16, u16)> = table
        .lines()
        .skip(1)
        .filter_map(|line| {
            let fields: Vec<&str> = line.split_whitespace().collect();
            let local = port_of(fields.get(1)?)?;
            let remote = port_of(fields.get(2)?)?;
            // State 01 is ESTABLISHED.
            (*fields.get(3)? == "01" && (local == port || remote == port))
                .then_some((local, remote))
        })
        .collect();
    found.sort_unstable();
    found
}

#[tokio::test]
async fn registers_over_tcp_takes_the_call_on_that_connection_and_reconnects() {
    let scratch = tempfile::tempdir().expect("temporary directory");
    let port = free_port();
    let kamailio = Kamailio::start_on(scratch.path(), port, Listen::UdpAndTcp);
    let harness = harness_with(&account(
        "pbx",
        kamailio.address,
        USERNAME,
        PASSWORD,
        "transport = \"tcp\"",
    ));
    let running = harness.start().await;
    let (state, error) = wait_state(&harness, "registered").await;
    assert_eq!(
        state,
        "registered",
        "{error}\nkamailio:\n{}",
        kamailio.log()
    );
    let ours = running.sip[0].port();
    assert_eq!(
        harness.query_strings("SELECT local_address FROM sip_accounts"),
        [format!(
            "127.0.0.1:{ours} over TCP (contact user {})",
            harness.config.sip_accounts[0].contact_user
        )]
    );

    // SIPp calls kamailio over UDP; kamailio relays the call over TCP.
    let (status, log) = sipp(
        scratch.path(),
        "divert_cancel_proxied.xml",
        kamailio.address,
    )
    .await;
    assert_eq!(
        status,
        0,
        "call through kamailio: {log}\nkamailio:\n{}",
        kamailio.log()
    );
    assert_eq!(
        harness
            .wait_count("SELECT count(*) FROM calls WHERE source = 'sip'", 1)
            .await,
        1
    );
    // One connection, and it is the one textback opened from its SIP port: the registration
    // and the call both went over it (kamailio opened none to textback's listener).
    let mut expected = vec![(port, ours), (ours, port)];
    expected.sort_unstable();
    assert_eq!(
        tcp_connections(ours),
        expected,
        "kamailio:\n{}",
        kamailio.log()
    );

    // kamailio goes away: the connection closes, registering again fails (nobody listens) and
    // is retried after the back-off; kamailio comes back on the same port and textback
    // registers over a new connection.
    drop(kamailio);
    let (state, error) = wait_state(&harness, "failed").await;
    assert_eq!(state, "failed");
    assert!(error.contains("over TCP"), "{error}");
    let kamailio = Kamailio::start_on(scratch.path(), port, Listen::UdpAndTcp);
    let (state, error) = wait_state(&harness, "registered").await;
    assert_eq!(
        state,
        "registered",
        "{error}\nkamailio:\n{}",
        kamailio.log()
    );
    let (status, log) = sipp(
        scratch.path(),
        "divert_cancel_proxied.xml",
        kamailio.address,
    )
    .await;
    assert_eq!(
        status,
        0,
        "second call: {log}\nkamailio:\n{}",
        kamailio.log()
    );
    assert_eq!(
        harness
            .wait_count("SELECT count(*) FROM calls WHERE source = 'sip'", 2)
            .await,
        2
    );

    // Stopping removes the binding over the same connection.
    running.stop().await.expect("clean stop");
    let (state, _) = wait_state(&harness, "unregistered").await;
    assert_eq!(state, "unregistered");
    let (status, log) = sipp(scratch.path(), "not_found.xml", kamailio.address).await;
    assert_eq!(status, 0, "expected 404 after un-REGISTER: {log}");
}

#[tokio::test]
async fn sip_register_command_registers_over_the_accounts_transport() {
    let scratch = tempfile::tempdir().expect("temporary directory");
    let kamailio = Kamailio::start_on(scratch.path(), free_port(), Listen::UdpAndTcp);
    for transport in ["udp", "tcp"] {
        let harness = harness_with(&account(
            "pbx",
            kamailio.address,
            USERNAME,
            PASSWORD,
            &format!("transport = \"{transport}\""),
        ));
        let path = config_file(&harness);
        let output = tokio::process::Command::new(env!("CARGO_BIN_EXE_textback"))
            .args(["sip", "register", "--account", "pbx", "--trace", "--config"])
            .arg(&path)
            .env_remove("TEXTBACK_CONFIG")
            .output()
            .await
            .expect("run textback sip register");
        let stdout = String::from_utf8_lossy(&output.stdout);
        let stderr = String::from_utf8_lossy(&output.stderr);
        assert!(
            output.status.success(),
            "{transport}: {stdout}\n{stderr}\nkamailio:\n{}",
            kamailio.log()
        );
        assert!(
            stdout.contains(&format!("Via: SIP/2.0/{} ", transport.to_ascii_uppercase())),
            "{stdout}"
        );
        assert!(
            stdout.contains("ok: pbx registered for"),
            "{transport}: {stdout}"
        );
    }
}

#[tokio::test]
async fn two_accounts_register_at_once_and_each_call_is_the_right_accounts() {
    // Both on one port (they share its sockets and core), then each on its own.
    two_accounts(None).await;
    two_accounts(Some((free_port(), free_port()))).await;
}

async fn two_accounts(ports: Option<(u16, u16)>) {
    const SECOND: &str = "441632960999";
    let scratch = tempfile::tempdir().expect("temporary directory");
    let kamailio = Kamailio::start(scratch.path());
    let (first_port, second_port) = match ports {
        Some((first, second)) => (
            format!("local_port = {first}"),
            format!("local_port = {second}"),
        ),
        None => (String::new(), String::new()),
    };
    // Calls through the second account to a number no profile lists belong to its profile.
    let config = format!(
        r#"
[[profile]]
id = "electric"
name = "Sparks Electrical"
numbers = ["+441632960888"]
{}{}"#,
        account(
            "plumbing-line",
            kamailio.address,
            USERNAME,
            PASSWORD,
            &first_port
        ),
        account(
            "electric-line",
            kamailio.address,
            SECOND,
            PASSWORD,
            &format!("profile = \"electric\"\n{second_port}")
        ),
    );
    let harness = harness_with(&config);
    assert_eq!(harness.config.sip_accounts.len(), 2);
    let running = harness.start().await;
    assert_eq!(running.sip.len(), if ports.is_some() { 2 } else { 1 });
    for name in ["plumbing-line", "electric-line"] {
        let (state, error) = wait_account(&harness, name, "registered").await;
        assert_eq!(
            state,
            "registered",
            "{name} ({ports:?}): {error}\nkamailio:\n{}",
            kamailio.log()
        );
    }
    // `textback sip status` shows both registered, each with its own contact user.
    let path = config_file(&harness);
    let status = tokio::process::Command::new(env!("CARGO_BIN_EXE_textback"))
        .args(["sip", "status", "--config"])
        .arg(&path)
        .env_remove("TEXTBACK_CONFIG")
        .output()
        .await
        .expect("run textback sip status");
    let shown = String::from_utf8_lossy(&status.stdout);
    assert!(status.status.success(), "{shown}");
    for account in &harness.config.sip_accounts {
        assert!(
            shown.contains(&format!("{}: registered until ", account.name)),
            "{shown}"
        );
        assert!(
            shown.contains(&format!("(contact user {})", account.contact_user)),
            "{shown}"
        );
    }
    assert_ne!(
        harness.config.sip_accounts[0].contact_user,
        harness.config.sip_accounts[1].contact_user
    );

    // A caller rings each account's number through kamailio.
    for (n, user) in [USERNAME, SECOND].into_iter().enumerate() {
        let (status, log) = sipp_to(
            scratch.path(),
            "call_cancel_proxied.xml",
            kamailio.address,
            user,
        )
        .await;
        assert_eq!(
            status,
            0,
            "call to {user}: {log}\nkamailio:\n{}",
            kamailio.log()
        );
        assert_eq!(
            harness
                .wait_count(
                    "SELECT count(*) FROM calls WHERE source = 'sip'",
                    n as i64 + 1
                )
                .await,
            n as i64 + 1
        );
    }
    assert_eq!(
        harness.query_strings(
            "SELECT calls.called || ' ' || calls.profile || ' ' || journal.detail FROM calls JOIN journal ON journal.call_id = calls.id AND journal.step = 'call' ORDER BY calls.id"
        ),
        [
            "+441632960123 plumbing missed call from 07700 900123 via SIP account plumbing-line",
            "+441632960999 electric missed call from 07700 900123 via SIP account electric-line",
        ]
    );
    running.stop().await.expect("clean stop");
    for name in ["plumbing-line", "electric-line"] {
        let (state, _) = wait_account(&harness, name, "unregistered").await;
        assert_eq!(state, "unregistered", "{name}");
    }
}
