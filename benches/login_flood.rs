//! Wrong passwords at the dashboard's login, all at once from many addresses: the daemon's
//! resident memory (VmRSS) at the start, its peak (VmHWM) and what it holds after each round.
//! `textback run` is a process of its own (this binary is only the clients), with the virtual
//! modem on a pseudo-terminal and a fresh database; the password is set with
//! `textback dashboard set-password` as an installer would.
//!
//! `cargo bench --bench login_flood` sends 300 wrong passwords at once (the figure of issue 17,
//! which took the daemon to 3.7 GB), from 300 loopback addresses (127.0.1.1 ...), three rounds;
//! `LOGIN_FLOOD_CLIENTS=1000` and `LOGIN_FLOOD_ROUNDS=10` pick other figures. Each line gives
//! the answers (401: checked and wrong, 429: refused unchecked by a limit, 503: refused while the
//! password checker was busy), the clients whose connection was closed at once (over the
//! connection cap), the memory, and how long the round took. Under `cargo test --all-targets`
//! (no `--bench` argument) it runs one round of 20, to check that it still works.

#[path = "../tests/common/process.rs"]
#[allow(dead_code)]
mod process;

use std::collections::BTreeMap;
use std::io::Write;
use std::net::Ipv4Addr;
use std::process::{Command, Stdio};
use std::time::Instant;

use textback::modem::virtual_modem::{Options, VirtualModem};

const PASSWORD: &str = "correct horse battery";

fn config(port: &std::path::Path, database: &std::path::Path) -> String {
    format!(
        r#"
[storage]
database = "{database}"

[dashboard]
listen = "127.0.0.1:0"

[[modem]]
id = "main"
port = "{port}"

[[profile]]
id = "plumbing"
name = "Brightwater Plumbing"
numbers = ["+441632960123"]
"#,
        database = database.display(),
        port = port.display()
    )
}

fn client_from(address: Ipv4Addr) -> reqwest::Client {
    reqwest::Client::builder()
        .redirect(reqwest::redirect::Policy::none())
        .local_address(std::net::IpAddr::V4(address))
        .build()
        .expect("an HTTP client")
}

/// The login form's nonce (its cookie and hidden field carry the same value).
async fn nonce(http: &reqwest::Client, base: &str) -> Option<String> {
    let form = http.get(format!("{base}/login")).send().await.ok()?;
    form.headers()
        .get_all("set-cookie")
        .iter()
        .filter_map(|v| v.to_str().ok())
        .find_map(|v| v.strip_prefix("textback_login="))
        .and_then(|v| v.split(';').next())
        .map(str::to_string)
}

#[tokio::main(flavor = "multi_thread", worker_threads = 2)]
async fn main() {
    let bench = std::env::args().any(|arg| arg == "--bench");
    let clients: u32 = std::env::var("LOGIN_FLOOD_CLIENTS")
        .ok()
        .and_then(|text| text.parse().ok())
        .unwrap_or(if bench { 300 } else { 20 });
    let rounds: u32 = std::env::var("LOGIN_FLOOD_ROUNDS")
        .ok()
        .and_then(|text| text.parse().ok())
        .unwrap_or(if bench { 3 } else { 1 });

    let dir = tempfile::tempdir().expect("temporary directory");
    let modem = VirtualModem::start(Options::default()).expect("virtual modem");
    let path = dir.path().join("textback.toml");
    std::fs::write(&path, config(modem.path(), &dir.path().join("textback.db")))
        .expect("write the config");
    let mut set = Command::new(env!("CARGO_BIN_EXE_textback"))
        .args(["dashboard", "set-password", "--stdin", "--config"])
        .arg(&path)
        .stdin(Stdio::piped())
        .stdout(Stdio::null())
        .spawn()
        .expect("run textback dashboard set-password");
    if let Some(mut stdin) = set.stdin.take() {
        let _ = writeln!(stdin, "{PASSWORD}");
    }
    assert!(set.wait().expect("set-password").success());

    let daemon = process::DaemonProcess::spawn(&path).await;
    let base = format!("http://{}", daemon.dashboard);
    let start = daemon.memory();
    println!(
        "login_flood: {clients} wrong passwords at once from {clients} addresses, {rounds} round(s); daemon VmRSS at start {:.1} MiB",
        start.rss_mib()
    );
    for round in 1..=rounds {
        let mut prepared = Vec::new();
        for n in 0..clients {
            let address = Ipv4Addr::new(127, 0, 1 + (n / 250) as u8, 1 + (n % 250) as u8);
            let http = client_from(address);
            if let Some(nonce) = nonce(&http, &base).await {
                prepared.push((http, nonce));
            }
        }
        // A client whose connection the daemon closed at once (over its connection cap) has no
        // form to post.
        let unconnected = clients as usize - prepared.len();
        let barrier = std::sync::Arc::new(tokio::sync::Barrier::new(prepared.len()));
        let started = Instant::now();
        let mut attempts = tokio::task::JoinSet::new();
        for (http, nonce) in prepared {
            let (base, barrier) = (base.clone(), barrier.clone());
            attempts.spawn(async move {
                barrier.wait().await;
                http.post(format!("{base}/login"))
                    .header("cookie", format!("textback_login={nonce}"))
                    .form(&[("password", "a wrong guess"), ("csrf", nonce.as_str())])
                    .send()
                    .await
                    .map(|response| response.status().as_u16())
                    .unwrap_or(0)
            });
        }
        let mut answers = BTreeMap::new();
        while let Some(status) = attempts.join_next().await {
            *answers.entry(status.unwrap_or(0)).or_insert(0u32) += 1;
        }
        let memory = daemon.memory();
        println!(
            "round {round}: answers {answers:?} in {:.1} s ({unconnected} could not connect); VmHWM {:.1} MiB, VmRSS after {:.1} MiB",
            started.elapsed().as_secs_f64(),
            memory.peak_mib(),
            memory.rss_mib()
        );
    }
    daemon.stop().await;
}
