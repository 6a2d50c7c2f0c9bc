//! Measures the send path end to end, with the real daemon and the virtual modem on a real
//! pseudo-terminal and a real SQLite file (synchronous=FULL, so every commit reaches the disk):
//!
//! 1. latency: a missed call enters the daemon → the first AT+CMGS reaches an idle modem. That
//!    covers the missed-call transaction (outbox row), the outbox worker's transaction and the
//!    PDU encoding: an upper bound on "outbox row → first byte of AT+CMGS". 50 calls, one at a
//!    time: enough for a p99 without making `cargo bench` slow.
//! 2. back to back: 20 texts queued at once (a burst of calls) go out one after another; the gap
//!    is from the modem confirming one (+CMGS, OK) to the next AT+CMGS arriving, i.e. the time
//!    textback adds beyond the modem's own replies (recording the outcome, taking the next row).
//!
//! Run with `cargo bench --bench outbox`. Not criterion: each sample is one real round trip
//! through processes' I/O, so a plain loop with percentiles says more than iteration timing.

use std::path::Path;
use std::sync::Arc;
use std::time::{Duration, Instant};

use textback::daemon::{self, RunOptions};
use textback::domain::CallSource;
use textback::domain::{CallId, CallerId, E164};
use textback::event::{Event, MissedCall};
use textback::modem::ModemState;
use textback::modem::virtual_modem::{Model, Moment, Options, VirtualModem};

const LATENCY_CALLS: usize = 50;
const BURST: usize = 20;

fn config(port: &Path, database: &Path) -> String {
    format!(
        // Caps far above the bench's 70 first texts, which would otherwise meet the default 30 an
        // hour; the dashboard on any free port.
        "[storage]\ndatabase = \"{}\"\n\n[dashboard]\nlisten = \"127.0.0.1:0\"\n\n[limits]\ntexts_per_hour = 100000\ntexts_per_day = 100000\n\n[[modem]]\nid = \"main\"\nport = \"{}\"\n\n[[profile]]\nid = \"acme\"\nname = \"Acme Plumbing\"\n",
        database.display(),
        port.display()
    )
}

fn call(n: usize) -> Event {
    let number = format!("+4477009{n:05}");
    let caller = E164::parse(&number)
        .map(CallerId::Number)
        .unwrap_or(CallerId::Withheld(
            textback::domain::WithheldReason::Unparseable,
        ));
    Event::CallMissed(MissedCall {
        key: CallId::new(format!("bench-{n}")),
        source: CallSource::Sip,
        caller,
        caller_raw: number,
        called: None,
        modem: None,
        sip_account: None,
        at: chrono::Utc::now(),
    })
}

fn command_times(modem: &VirtualModem) -> Vec<Instant> {
    modem
        .timeline()
        .into_iter()
        .filter_map(|(at, moment)| match moment {
            Moment::Command(line) if line.starts_with("AT+CMGS=") => Some(at),
            _ => None,
        })
        .collect()
}

fn percentile(sorted: &[Duration], p: f64) -> Duration {
    let index = ((sorted.len() as f64 - 1.0) * p).round() as usize;
    sorted.get(index).copied().unwrap_or_default()
}

fn report(name: &str, mut samples: Vec<Duration>) {
    samples.sort();
    println!(
        "{name}: n={} p50={:.2?} p90={:.2?} p99={:.2?} max={:.2?}",
        samples.len(),
        percentile(&samples, 0.5),
        percentile(&samples, 0.9),
        percentile(&samples, 0.99),
        samples.last().copied().unwrap_or_default()
    );
}

async fn wait_until(mut ready: impl FnMut() -> bool) {
    let deadline = Instant::now() + Duration::from_secs(30);
    while !ready() {
        assert!(Instant::now() < deadline, "the benchmark stalled");
        tokio::time::sleep(Duration::from_micros(200)).await;
    }
}

#[tokio::main(flavor = "multi_thread", worker_threads = 2)]
async fn main() {
    // The whole run takes about two seconds, so `cargo test --all-targets` runs it as it is.
    let (latency_calls, burst) = (LATENCY_CALLS, BURST);
    let dir = tempfile::tempdir().expect("temporary directory");
    let modem = VirtualModem::start(Options {
        model: Model::Generic,
        report_delay: Duration::from_secs(3600),
        ..Options::default()
    })
    .expect("virtual modem");
    let text = config(modem.path(), &dir.path().join("bench.db"));
    let config = textback::config::parse(&text, Path::new("bench.toml"))
        .expect("config")
        .config;
    let running = daemon::start(Arc::new(config), RunOptions::default())
        .await
        .expect("daemon");
    let handle = running.modems[0].clone();
    wait_until(|| matches!(handle.state(), ModemState::Ready { .. })).await;
    wait_until(|| modem.commands().iter().any(|c| c == "AT+CMGL=4")).await;

    let mut latencies = Vec::new();
    for n in 0..latency_calls {
        let before = command_times(&modem).len();
        let start = Instant::now();
        running.events.send(call(n)).await.expect("event");
        wait_until(|| command_times(&modem).len() > before).await;
        if let Some(at) = command_times(&modem).get(before) {
            latencies.push(at.duration_since(start));
        }
        wait_until(|| modem.sent().len() > n).await;
        // Let the outbox record the outcome, so the next call meets an idle modem.
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    report("missed call -> first AT+CMGS (idle modem)", latencies);

    let sent_before = modem.sent().len();
    let mark = modem.timeline().len();
    for n in 0..burst {
        running.events.send(call(1000 + n)).await.expect("event");
    }
    wait_until(|| modem.sent().len() >= sent_before + burst).await;
    let timeline: Vec<(Instant, Moment)> = modem.timeline().into_iter().skip(mark).collect();
    let mut gaps = Vec::new();
    let mut confirmed: Option<Instant> = None;
    for (at, moment) in timeline {
        match moment {
            Moment::SendConfirmed(_) => confirmed = Some(at),
            Moment::Command(line) if line.starts_with("AT+CMGS=") => {
                if let Some(previous) = confirmed.take() {
                    gaps.push(at.duration_since(previous));
                }
            }
            Moment::Command(_) => {}
        }
    }
    report(
        &format!("gap between back-to-back sends ({burst} queued)"),
        gaps,
    );
    running.stop().await.expect("stop");
    modem.stop().await;
}
