//! An INVITE flood from the trunk's own address (allowed to call, so only the endpoint's limits
//! stand in the way): the daemon's resident memory (VmRSS) at the start, its peak (VmHWM)
//! during the flood, and what it holds once every call has ended. `textback run` is a process
//! of its own (this binary is only the caller), with the virtual modem on a pseudo-terminal, a
//! fresh database and the default limits (`max_ring_seconds` 30, `max_invites_per_second`
//! 2000, `max_ringing_calls` 100).
//!
//! `cargo bench --bench sip_flood` sends 60,000 INVITEs at 2,000 a second (the default
//! `max_invites_per_second`: issue 17's flood, where about 60,000 calls could ring at once,
//! 16 MB to 179 MB), each from a landline caller (recorded, not texted), and no CANCEL: each
//! call that rang rings out after 30 s. It prints how many rang, got 503, or got no answer (lost
//! in a full socket buffer), then the memory at the peak and once the calls have ended (30 s of
//! ringing and 32 s of RFC 3261 timer J later). `SIP_FLOOD_INVITES=10000` and
//! `SIP_FLOOD_RATE=5000` pick other figures. Under `cargo test --all-targets` (no `--bench`
//! argument) it sends 300 and does not wait for the calls to end.

#[path = "../tests/common/process.rs"]
#[allow(dead_code)]
mod process;

use std::net::SocketAddr;
use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::{Duration, Instant};

use textback::modem::virtual_modem::{Options, VirtualModem};

const CONTACT_USER: &str = "tbflood";

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

[[sip]]
name = "trunk"
registrar = "127.0.0.1"
username = "441632960123"
password = "not-used-without-register"
register = false
listen = ["127.0.0.1"]
local_port = 0
contact_user = "{CONTACT_USER}"
"#,
        database = database.display(),
        port = port.display()
    )
}

fn invite(target: SocketAddr, local: SocketAddr, n: usize) -> String {
    format!(
        "INVITE sip:{CONTACT_USER}@{target} SIP/2.0\r\n\
         Via: SIP/2.0/UDP {local};branch=z9hG4bK-flood-{n};rport\r\n\
         From: <sip:+441632960777@pbx.example>;tag=flood-{n}\r\n\
         To: <sip:+441632960123@pbx.example>\r\n\
         Call-ID: flood-{n}@pbx.example\r\n\
         CSeq: 1 INVITE\r\n\
         Max-Forwards: 70\r\n\
         Content-Length: 0\r\n\r\n"
    )
}

#[derive(Default)]
struct Answers {
    ringing: AtomicU64,
    refused: AtomicU64,
}

#[tokio::main(flavor = "multi_thread", worker_threads = 2)]
async fn main() {
    let bench = std::env::args().any(|arg| arg == "--bench");
    let invites: usize = std::env::var("SIP_FLOOD_INVITES")
        .ok()
        .and_then(|text| text.parse().ok())
        .unwrap_or(if bench { 60_000 } else { 300 });
    let rate: usize = std::env::var("SIP_FLOOD_RATE")
        .ok()
        .and_then(|text| text.parse().ok())
        .unwrap_or(2_000);

    let dir = tempfile::tempdir().expect("temporary directory");
    let modem = VirtualModem::start(Options::default()).expect("virtual modem");
    let path = dir.path().join("textback.toml");
    let database = dir.path().join("textback.db");
    std::fs::write(&path, config(modem.path(), &database)).expect("write the config");
    let daemon = process::DaemonProcess::spawn(&path).await;
    let target = *daemon.sip.first().expect("SIP listens");
    let socket = Arc::new(
        tokio::net::UdpSocket::bind("127.0.0.1:0")
            .await
            .expect("bind"),
    );
    let local = socket.local_addr().expect("local address");
    let start = daemon.memory();
    println!(
        "sip_flood: {invites} INVITEs from the trunk's address at {rate}/s, no CANCEL; daemon VmRSS at start {:.1} MiB",
        start.rss_mib()
    );

    let answers = Arc::new(Answers::default());
    let reader = {
        let (socket, answers) = (socket.clone(), answers.clone());
        tokio::spawn(async move {
            let mut buffer = vec![0u8; 65_536];
            while let Ok((len, _)) = socket.recv_from(&mut buffer).await {
                let status = buffer
                    .get(8..11)
                    .and_then(|code| std::str::from_utf8(code).ok())
                    .and_then(|code| code.parse::<u16>().ok());
                match status {
                    Some(180) => {
                        answers.ringing.fetch_add(1, Ordering::Relaxed);
                    }
                    Some(503) => {
                        answers.refused.fetch_add(1, Ordering::Relaxed);
                    }
                    _ => {}
                }
                // 480 (rang out) is acknowledged, as a PBX would.
                if status == Some(480) {
                    let text = String::from_utf8_lossy(buffer.get(..len).unwrap_or_default());
                    let ack = text
                        .replacen(
                            "SIP/2.0 480 Temporarily Unavailable",
                            "ACK sip:x@127.0.0.1 SIP/2.0",
                            1,
                        )
                        .replace("CSeq: 1 INVITE", "CSeq: 1 ACK");
                    let _ = socket.send_to(ack.as_bytes(), target).await;
                }
            }
        })
    };
    // Paced at `rate` a second in ticks of 10 ms: a flood the daemon's socket takes in, not one
    // the kernel drops before the daemon sees it.
    let started = Instant::now();
    let mut tick = tokio::time::interval(Duration::from_millis(10));
    let per_tick = (rate / 100).max(1);
    for n in 0..invites {
        if n % per_tick == 0 {
            tick.tick().await;
        }
        let _ = socket
            .send_to(invite(target, local, n).as_bytes(), target)
            .await;
    }
    let sent_in = started.elapsed();
    // The answers still in flight arrive.
    tokio::time::sleep(Duration::from_secs(2)).await;
    let peak = daemon.memory();
    let rang = answers.ringing.load(Ordering::Relaxed);
    let refused = answers.refused.load(Ordering::Relaxed);
    println!(
        "sent in {:.1} s: {rang} rang, {refused} got 503, {} no answer; VmHWM {:.1} MiB, VmRSS {:.1} MiB",
        sent_in.as_secs_f64(),
        invites as u64 - rang.min(invites as u64) - refused.min(invites as u64),
        peak.peak_mib(),
        peak.rss_mib()
    );
    if bench {
        // Every call rings out (30 s) and leaves the tables (timer J, 32 s).
        tokio::time::sleep(Duration::from_secs(70)).await;
        let after = daemon.memory();
        let recorded: i64 = textback::store::open_read_only(&database)
            .expect("open database")
            .query_row(
                "SELECT count(*) FROM calls WHERE source = 'sip'",
                [],
                |row| row.get(0),
            )
            .expect("count calls");
        println!(
            "after the calls ended ({recorded} recorded): VmHWM {:.1} MiB, VmRSS {:.1} MiB",
            after.peak_mib(),
            after.rss_mib()
        );
    }
    reader.abort();
    daemon.stop().await;
}
