//! Load on the SIP endpoint: SIPp (Debian package `sip-tester`) sends diverted calls to the real
//! daemon (its SQLite file with synchronous=FULL, the virtual modem on a pseudo-terminal) at
//! increasing rates. Each call is INVITE → 100/180 → CANCEL → 200/487 → ACK
//! (`benches/sipp/load_cancel.xml`) from a landline caller: recorded, with the policy's decision,
//! but not texted, so the figures are the SIP path and the call's row, not the modem's SMS rate
//! or the `[limits]` caps. For each rate it prints:
//!
//! - SIPp's successful and failed calls and the rate it achieved, and whether the calls table
//!   has exactly one row per call (distinct Call-IDs);
//! - CANCEL → 487 as SIPp saw it (textback sends the 487 at the moment it raises the missed
//!   call, so this covers the socket, the queue to the SIP core and the core), in ms;
//! - missed call raised in the core → its row committed (the queues to the daemon loop and the
//!   store transaction), timed in this process from the daemon's tracing events;
//! - the deepest the daemon's event queue got (256 places: when full, missed calls wait in the SIP
//!   forwarder's queue of 4096), and resident memory (this process is the daemon plus a small
//!   table of timings).
//!
//! `cargo bench --bench sip_load` runs 100, 200, 400, 600, 800 and 1000 calls/s, each against a
//! fresh daemon and database for about five seconds (at least 1000 calls): long enough for the
//! queues to show, short enough that the whole run takes about a minute. `SIP_LOAD_RATES=300,500`
//! picks other rates and `SIP_LOAD_SECONDS=45` longer steps. Steps longer than 32 s matter: an
//! ended call and its CANCEL transaction stay in the endpoint's tables for 64*T1 (RFC 3261
//! §17.2.2, Timer J), and those tables hold 40,000 entries (`TransactionConfig`), beyond which
//! INVITEs get 503; so a rate held for longer than that is capped near 40,000 / 37 s ≈ 1,080
//! calls/s, whatever the SIP path and the store could do. Under `cargo test --all-targets` (no
//! `--bench` argument) it runs 100 calls at 50 calls/s, to check that it still works.

use std::collections::HashMap;
use std::path::{Path, PathBuf};
use std::process::Stdio;
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use textback::daemon::{self, RunOptions, Running};
use textback::modem::virtual_modem::{Options, VirtualModem};
use tracing::field::{Field, Visit};
use tracing::{Event, Level, Subscriber, span};
use tracing_subscriber::filter::Targets;
use tracing_subscriber::layer::{Context, Layer, SubscriberExt};
use tracing_subscriber::registry::LookupSpan;
use tracing_subscriber::util::SubscriberInitExt;

const CONTACT_USER: &str = "tbbench";

fn config(port: &Path, database: &Path) -> String {
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

[[profile.question]]
id = "name"
ask = "Who am I speaking to?"

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

/// What the tracing layer saw: when each call was raised in the SIP core, how long each took
/// from there to its committed row, and every warning.
#[derive(Default)]
struct Seen {
    raised: HashMap<String, Instant>,
    recorded: Vec<Duration>,
    warnings: Vec<String>,
}

/// A tracing layer that times "SIP call missed" (the SIP core, `sip_call` span) to "missed call
/// recorded" (the daemon, `call` span), matched by their `call_id`.
struct Timings(Arc<Mutex<Seen>>);

struct CallKey(String);

#[derive(Default)]
struct Fields {
    message: String,
    call_id: Option<String>,
}

impl Visit for Fields {
    fn record_debug(&mut self, field: &Field, value: &dyn std::fmt::Debug) {
        match field.name() {
            "message" => self.message = format!("{value:?}"),
            "call_id" => self.call_id = Some(format!("{value:?}")),
            _ => {}
        }
    }
}

impl<S> Layer<S> for Timings
where
    S: Subscriber + for<'a> LookupSpan<'a>,
{
    fn on_new_span(&self, attrs: &span::Attributes<'_>, id: &span::Id, ctx: Context<'_, S>) {
        let mut fields = Fields::default();
        attrs.record(&mut fields);
        if let (Some(call_id), Some(span)) = (fields.call_id, ctx.span(id)) {
            span.extensions_mut().insert(CallKey(call_id));
        }
    }

    fn on_event(&self, event: &Event<'_>, ctx: Context<'_, S>) {
        let now = Instant::now();
        let mut fields = Fields::default();
        event.record(&mut fields);
        let mut seen = self.0.lock().expect("timings");
        if *event.metadata().level() == Level::WARN {
            seen.warnings.push(fields.message);
            return;
        }
        let key = ctx.event_span(event).and_then(|span| {
            span.scope()
                .find_map(|span| span.extensions().get::<CallKey>().map(|key| key.0.clone()))
        });
        let Some(key) = key else { return };
        match fields.message.as_str() {
            "SIP call missed" => {
                seen.raised.insert(key, now);
            }
            "missed call recorded" => {
                if let Some(raised) = seen.raised.remove(&key) {
                    seen.recorded.push(now.duration_since(raised));
                }
            }
            _ => {}
        }
    }
}

fn percentile(sorted: &[Duration], p: f64) -> Duration {
    let index = ((sorted.len() as f64 - 1.0) * p).round() as usize;
    sorted.get(index).copied().unwrap_or_default()
}

fn status_kib(field: &str) -> u64 {
    std::fs::read_to_string("/proc/self/status")
        .unwrap_or_default()
        .lines()
        .find_map(|line| line.strip_prefix(field))
        .and_then(|rest| rest.trim().trim_end_matches("kB").trim().parse().ok())
        .unwrap_or(0)
}

fn calls_count(database: &Path) -> (i64, i64) {
    let connection = textback::store::open_read_only(database).expect("open database");
    connection
        .query_row(
            "SELECT count(*), count(DISTINCT call_key) FROM calls WHERE source = 'sip'",
            [],
            |row| Ok((row.get(0)?, row.get(1)?)),
        )
        .expect("count calls")
}

/// What SIPp reported for one run.
struct SippRun {
    status: i32,
    successful: u64,
    failed: u64,
    wall: Duration,
    /// CANCEL sent → 487 received, one sample per call, in ms as SIPp logs them.
    cancel_to_487: Vec<f64>,
    errors: String,
}

fn last_csv_row(path: &Path) -> HashMap<String, String> {
    let text = std::fs::read_to_string(path).unwrap_or_default();
    let mut lines = text.lines().filter(|line| !line.trim().is_empty());
    let header: Vec<&str> = lines.next().unwrap_or_default().split(';').collect();
    let last: Vec<&str> = lines.next_back().unwrap_or_default().split(';').collect();
    header
        .iter()
        .zip(last)
        .map(|(name, value)| (name.to_string(), value.to_string()))
        .collect()
}

fn free_udp_port() -> u16 {
    std::net::UdpSocket::bind("127.0.0.1:0")
        .and_then(|socket| socket.local_addr())
        .map(|address| address.port())
        .expect("a free port")
}

fn find_file(dir: &Path, suffix: &str) -> Option<PathBuf> {
    std::fs::read_dir(dir)
        .ok()?
        .filter_map(|entry| entry.ok().map(|entry| entry.path()))
        .find(|path| path.to_string_lossy().ends_with(suffix))
}

async fn sipp(target: std::net::SocketAddr, rate: u32, calls: u32) -> SippRun {
    let sipp = Path::new("/usr/bin/sipp");
    assert!(
        sipp.exists(),
        "sipp is not installed: run `apt-get install sip-tester` (scripts/test.sh does)"
    );
    let dir = tempfile::tempdir().expect("temporary directory");
    let scenario = Path::new(env!("CARGO_MANIFEST_DIR")).join("benches/sipp/load_cancel.xml");
    let stats = dir.path().join("stats.csv");
    let errors = dir.path().join("errors.log");
    let started = Instant::now();
    let output = tokio::process::Command::new(sipp)
        .current_dir(dir.path())
        .arg(target.to_string())
        .arg("-sf")
        .arg(&scenario)
        .args(["-s", CONTACT_USER, "-i", "127.0.0.1"])
        .args(["-p", &free_udp_port().to_string()])
        .args(["-r", &rate.to_string(), "-m", &calls.to_string()])
        .args(["-timeout", "120s", "-nostdin"])
        .arg("-trace_stat")
        .arg("-stf")
        .arg(&stats)
        .args(["-trace_rtt", "-rtt_freq", "100"])
        .arg("-trace_err")
        .arg("-error_file")
        .arg(&errors)
        .stdin(Stdio::null())
        .stdout(Stdio::null())
        .stderr(Stdio::piped())
        .kill_on_drop(true)
        .output()
        .await
        .expect("run sipp");
    let wall = started.elapsed();
    let row = last_csv_row(&stats);
    let number = |name: &str| {
        row.get(name)
            .and_then(|value| value.trim().parse().ok())
            .unwrap_or(0)
    };
    // Date_ms;response_time_ms;rtd_no
    let cancel_to_487 = find_file(dir.path(), "_rtt.csv")
        .and_then(|path| std::fs::read_to_string(path).ok())
        .unwrap_or_default()
        .lines()
        .filter_map(|line| line.split(';').nth(1)?.trim().parse().ok())
        .collect();
    SippRun {
        status: output.status.code().unwrap_or(-1),
        successful: number("SuccessfulCall(C)"),
        failed: number("FailedCall(C)"),
        wall,
        cancel_to_487,
        errors: format!(
            "{}{}",
            String::from_utf8_lossy(&output.stderr),
            std::fs::read_to_string(&errors)
                .unwrap_or_default()
                .chars()
                .take(2000)
                .collect::<String>()
        ),
    }
}

/// Samples the daemon's event queue and resident memory while `work` runs.
async fn sampled<T>(running: &Running, work: impl Future<Output = T>) -> (T, usize, u64) {
    let mut work = std::pin::pin!(work);
    let mut tick = tokio::time::interval(Duration::from_millis(20));
    let (mut depth, mut rss) = (0, 0);
    loop {
        tokio::select! {
            result = &mut work => return (result, depth, rss),
            _ = tick.tick() => {
                depth = depth.max(running.events.max_capacity() - running.events.capacity());
                rss = rss.max(status_kib("VmRSS:"));
            }
        }
    }
}

struct Step {
    rate: u32,
    calls: u32,
}

#[tokio::main(flavor = "multi_thread", worker_threads = 2)]
async fn main() {
    let bench = std::env::args().any(|arg| arg == "--bench");
    let rates: Vec<u32> = match std::env::var("SIP_LOAD_RATES") {
        Ok(list) => list
            .split(',')
            .filter_map(|rate| rate.trim().parse().ok())
            .collect(),
        Err(_) if bench => vec![100, 200, 400, 600, 800, 1000],
        Err(_) => vec![50],
    };
    let seconds: u32 = std::env::var("SIP_LOAD_SECONDS")
        .ok()
        .and_then(|text| text.parse().ok())
        .unwrap_or(5);
    let steps: Vec<Step> = rates
        .into_iter()
        .map(|rate| Step {
            rate,
            calls: if bench {
                (rate * seconds).max(1000)
            } else {
                100
            },
        })
        .collect();

    let seen = Arc::new(Mutex::new(Seen::default()));
    // Info everywhere, as the daemon logs in production, and the one debug line timed here.
    let filter = Targets::new()
        .with_default(Level::INFO)
        .with_target("textback::daemon", Level::DEBUG);
    tracing_subscriber::registry()
        .with(Timings(seen.clone()).with_filter(filter))
        .init();

    println!(
        "sip_load: SIPp → textback, landline callers (recorded, not texted), a fresh daemon and \
         database for each rate; idle VmRSS {} KiB",
        status_kib("VmRSS:")
    );
    println!(
        "{:>6} {:>6} {:>8} {:>6} {:>9} {:>11} {:>17} {:>21} {:>6} {:>9}",
        "rate",
        "calls",
        "achieved",
        "failed",
        "rows",
        "sipp exit",
        "CANCEL→487 p50/p99",
        "raised→row p50/p99",
        "queue",
        "VmRSS KiB"
    );
    let mut best = None;
    for level in &steps {
        let daemon = Daemon::start().await;
        let (running, database) = (&daemon.running, &daemon.database);
        let target = *running.sip.first().expect("the SIP endpoint listens");
        let before = 0;
        seen.lock().expect("timings").recorded.clear();
        let work = async {
            let run = sipp(target, level.rate, level.calls).await;
            // The rows may trail the last 487 by the queue's backlog: wait for them, at most 30 s.
            let deadline = Instant::now() + Duration::from_secs(30);
            let mut rows = calls_count(database);
            while rows.0 - before < i64::from(level.calls) && Instant::now() < deadline {
                tokio::time::sleep(Duration::from_millis(20)).await;
                rows = calls_count(database);
            }
            (run, rows)
        };
        let ((run, (rows, distinct)), depth, rss) = sampled(running, work).await;
        let rows = rows - before;
        let mut recorded = std::mem::take(&mut seen.lock().expect("timings").recorded);
        recorded.sort();
        let mut cancel = run.cancel_to_487.clone();
        cancel.sort_by(f64::total_cmp);
        let cancel_at = |p: f64| {
            let index = ((cancel.len() as f64 - 1.0) * p).round() as usize;
            cancel.get(index).copied().unwrap_or(f64::NAN)
        };
        // The calls take the rate's share of the wall time plus the 100 ms ring before CANCEL.
        let achieved = f64::from(level.calls) / run.wall.as_secs_f64().max(0.001);
        let clean = run.status == 0
            && run.failed == 0
            && run.successful == u64::from(level.calls)
            && rows == i64::from(level.calls)
            && distinct == rows + before;
        println!(
            "{:>6} {:>6} {:>8.0} {:>6} {:>9} {:>11} {:>8.1}/{:<8.1} {:>10.2?}/{:<10.2?} {:>6} {:>9}",
            level.rate,
            level.calls,
            achieved,
            run.failed,
            format!("{rows}/{}", level.calls),
            run.status,
            cancel_at(0.5),
            cancel_at(0.99),
            percentile(&recorded, 0.5),
            percentile(&recorded, 0.99),
            depth,
            rss,
        );
        if !clean {
            println!(
                "  not clean at {} calls/s: {}",
                level.rate,
                run.errors.trim()
            );
        } else if best.is_none_or(|rate| rate < level.rate) {
            best = Some(level.rate);
        }
        let (all, distinct) = calls_count(database);
        assert_eq!(all, distinct, "every row has its own Call-ID");
        if !bench {
            assert!(clean, "the smoke run must be clean: {}", run.errors);
        }
        daemon.stop().await;
    }
    let warnings = std::mem::take(&mut seen.lock().expect("timings").warnings);
    println!(
        "highest clean rate: {} calls/s; VmHWM {} KiB; {} warnings{}",
        best.map_or("none".to_string(), |rate| rate.to_string()),
        status_kib("VmHWM:"),
        warnings.len(),
        warnings
            .first()
            .map(|first| format!(" (first: {first})"))
            .unwrap_or_default()
    );
}

/// The daemon with its own virtual modem and database.
struct Daemon {
    running: Running,
    modem: VirtualModem,
    database: PathBuf,
    _dir: tempfile::TempDir,
}

impl Daemon {
    async fn start() -> Daemon {
        let dir = tempfile::tempdir().expect("temporary directory");
        let modem = VirtualModem::start(Options::default()).expect("virtual modem");
        let database = dir.path().join("bench.db");
        let text = config(modem.path(), &database);
        let config = textback::config::parse(&text, Path::new("bench.toml"))
            .expect("config")
            .config;
        let running = daemon::start(Arc::new(config), RunOptions::default())
            .await
            .expect("daemon");
        Daemon {
            running,
            modem,
            database,
            _dir: dir,
        }
    }

    async fn stop(self) {
        self.running.stop().await.expect("stop");
        self.modem.stop().await;
    }
}
