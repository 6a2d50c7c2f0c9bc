//! Calls through Kamailio's dispatcher (config/kamailio/dispatcher.cfg) to one textback box and
//! to two, and the failover time when a box is killed: the fleet of tests/fleet.rs (each box
//! `textback run` in its own network namespace with its own virtual modem and SQLite file;
//! tests/common/fleet.rs), with SIPp (`tests/sipp/fleet_call.xml`: INVITE → 100/180 → CANCEL
//! 300 ms after the 180 → 200/487 → ACK) diverting calls for two businesses in turn through
//! kamailio. The callers are landlines: every call is recorded, with the policy's decision, and
//! none texted, so the figures are the SIP path through the proxy and the call's row, not the
//! modems' SMS rate.
//!
//! For each fleet size (1 box, 2 boxes) and rate it prints SIPp's successful and failed calls,
//! the rate achieved, whether the boxes' calls tables together hold exactly one row per call,
//! and INVITE → 180 as SIPp saw it (p50/p99, through kamailio). Then, with two boxes at a steady
//! rate, one box is killed with SIGKILL: the failover time is from the kill to the first call of
//! that box's business ringing at the other box (kamailio gives a silent box FR_TIMER, 1 s here,
//! then marks it down), and the longest INVITE → 180 any caller saw meanwhile.
//!
//! `cargo bench --bench fleet` runs 100, 200, 400 and 600 calls/s for 5 s each (at least 500
//! calls), then the failover at 100 calls/s; `FLEET_RATES=300,500`, `FLEET_SECONDS=10` and
//! `FLEET_FAILOVER_RATE=50` pick others. Under `cargo test --all-targets` (no `--bench`) it runs 60 calls at 30 calls/s to each
//! fleet and the failover at 30 calls/s, to check that it still works. Needs root (network
//! namespaces), iproute2, kamailio and sip-tester, as tests/fleet.rs does.

#[path = "../tests/common/fleet.rs"]
mod fleet;

use std::path::Path;
use std::time::{Duration, Instant};

use fleet::{BoxSettings, Call, DispatcherTimers, ELECTRIC, Kamailio, Net, PLUMBING, TextbackBox};
use textback::modem::virtual_modem::Options;

/// The dispatcher's timers: a box has FR_TIMER to send 100 Trying (1 s in the bench, to measure
/// a short failover; the shipped 2 s in the smoke run under `cargo test`, where a busy machine
/// can stall a box for a second), it is probed every second, and a call rings at most 10 s.
fn timers(bench: bool) -> DispatcherTimers {
    DispatcherTimers {
        fr_timer_ms: if bench { 1000 } else { 2000 },
        fr_inv_timer_ms: 10_000,
        ping_interval_s: 1,
    }
}

/// `n` calls alternating between the two businesses, from a landline (recorded, not texted).
fn landline_calls(n: usize) -> Vec<Call> {
    (0..n)
        .map(|k| Call {
            business: if k % 2 == 0 { PLUMBING } else { ELECTRIC },
            caller: "+441134960000".to_string(),
        })
        .collect()
}

fn rows(boxes: &[TextbackBox]) -> (usize, usize) {
    let mut keys = Vec::new();
    for b in boxes {
        keys.extend(b.query_strings("SELECT call_key FROM calls WHERE source = 'sip'"));
    }
    let all = keys.len();
    keys.sort();
    keys.dedup();
    (all, keys.len())
}

/// INVITE → 180 samples (ms) from SIPp's response-time file in `dir`'s latest run.
fn invite_to_180(dir: &Path) -> Vec<f64> {
    let mut runs: Vec<_> = std::fs::read_dir(dir)
        .map(|entries| {
            entries
                .filter_map(|e| e.ok().map(|e| e.path()))
                .filter(|p| {
                    p.file_name()
                        .is_some_and(|n| n.to_string_lossy().starts_with("sipp-"))
                })
                .collect()
        })
        .unwrap_or_default();
    runs.sort_by_key(|p| {
        p.file_name()
            .and_then(|n| {
                n.to_string_lossy()
                    .trim_start_matches("sipp-")
                    .parse::<u64>()
                    .ok()
            })
            .unwrap_or(0)
    });
    let Some(last) = runs.last() else {
        return Vec::new();
    };
    let mut samples: Vec<f64> = std::fs::read_dir(last)
        .into_iter()
        .flatten()
        .filter_map(|e| e.ok().map(|e| e.path()))
        .filter(|p| p.to_string_lossy().ends_with("_rtt.csv"))
        .filter_map(|p| std::fs::read_to_string(p).ok())
        .flat_map(|text| {
            text.lines()
                .filter_map(|line| line.split(';').nth(1)?.trim().parse::<f64>().ok())
                .collect::<Vec<_>>()
        })
        .collect();
    samples.sort_by(f64::total_cmp);
    samples
}

fn at(sorted: &[f64], p: f64) -> f64 {
    let index = ((sorted.len() as f64 - 1.0) * p).round() as usize;
    sorted.get(index).copied().unwrap_or(f64::NAN)
}

struct Fleet {
    net: Net,
    boxes: Vec<TextbackBox>,
    kamailio: Kamailio,
    dir: tempfile::TempDir,
}

async fn fleet(size: usize, timers: &DispatcherTimers) -> Fleet {
    let dir = tempfile::tempdir().expect("temporary directory");
    let net = Net::create(size);
    let settings = BoxSettings {
        webhook: None,
        max_ring_seconds: 5,
    };
    let mut boxes = Vec::new();
    for i in 0..size {
        let mut b = TextbackBox::prepare(&net, i, dir.path(), &settings, Options::default()).await;
        b.start().await;
        boxes.push(b);
    }
    let kamailio = Kamailio::start(&net, dir.path(), size, timers).await;
    Fleet {
        net,
        boxes,
        kamailio,
        dir,
    }
}

impl Fleet {
    async fn stop(mut self) {
        for b in &mut self.boxes {
            b.stop().await;
        }
        drop(self.kamailio);
        drop(self.net);
    }
}

#[tokio::main(flavor = "multi_thread", worker_threads = 2)]
async fn main() {
    let bench = std::env::args().any(|arg| arg == "--bench");
    let timers = timers(bench);
    let rates: Vec<u32> = match std::env::var("FLEET_RATES") {
        Ok(list) => list
            .split(',')
            .filter_map(|r| r.trim().parse().ok())
            .collect(),
        Err(_) if bench => vec![100, 200, 400, 600],
        Err(_) => vec![30],
    };
    let seconds: u32 = std::env::var("FLEET_SECONDS")
        .ok()
        .and_then(|s| s.parse().ok())
        .unwrap_or(5);
    println!(
        "fleet: SIPp → kamailio (dispatcher.cfg) → textback boxes in network namespaces; landline callers (recorded, not texted)"
    );
    println!(
        "{:>5} {:>6} {:>6} {:>9} {:>7} {:>11} {:>10} {:>20}",
        "boxes",
        "rate",
        "calls",
        "achieved",
        "failed",
        "rows",
        "sipp exit",
        "INVITE→180 p50/p99 ms"
    );
    let mut best = [None, None];
    for size in [1usize, 2] {
        let fleet = fleet(size, &timers).await;
        for &rate in &rates {
            let calls = if bench {
                (rate * seconds).max(500) as usize
            } else {
                60
            };
            let before = rows(&fleet.boxes).0;
            let run = fleet::sipp(
                &fleet.net,
                fleet.dir.path(),
                "fleet_call.xml",
                &landline_calls(calls),
                rate,
            )
            .await;
            let deadline = Instant::now() + Duration::from_secs(30);
            let mut counted = rows(&fleet.boxes);
            while counted.0 - before < calls && Instant::now() < deadline {
                tokio::time::sleep(Duration::from_millis(50)).await;
                counted = rows(&fleet.boxes);
            }
            let samples = invite_to_180(fleet.dir.path());
            let achieved = calls as f64 / run.wall.as_secs_f64().max(0.001);
            let clean = run.status == 0
                && run.failed == 0
                && run.successful == calls as u64
                && counted.0 - before == calls
                && counted.0 == counted.1;
            println!(
                "{:>5} {:>6} {:>6} {:>9.0} {:>7} {:>11} {:>10} {:>9.1}/{:<9.1}",
                size,
                rate,
                calls,
                achieved,
                run.failed,
                format!("{}/{calls}", counted.0 - before),
                run.status,
                at(&samples, 0.5),
                at(&samples, 0.99),
            );
            if clean {
                let slot = &mut best[size - 1];
                if slot.is_none_or(|r| r < rate) {
                    *slot = Some(rate);
                }
            } else {
                // SIPp's first error says why; the rest repeat it.
                let first: String = run
                    .errors
                    .lines()
                    .skip(1)
                    .take(3)
                    .collect::<Vec<_>>()
                    .join(" | ");
                println!("  not clean: {first}");
                if !bench {
                    panic!("the smoke run must be clean:\n{}", fleet.kamailio.log());
                }
            }
        }
        fleet.stop().await;
    }
    println!(
        "highest clean rate through kamailio: 1 box {} calls/s, 2 boxes {} calls/s (0 failed, one row per call)",
        best[0].map_or("none".to_string(), |r| r.to_string()),
        best[1].map_or("none".to_string(), |r| r.to_string()),
    );

    // Failover: two boxes at a steady rate; plumbing's box is killed once it has taken a few
    // calls of the run.
    let rate: u32 = std::env::var("FLEET_FAILOVER_RATE")
        .ok()
        .and_then(|r| r.parse().ok())
        .unwrap_or(if bench { 100 } else { 30 });
    let calls = (rate * if bench { 10 } else { 5 }) as usize;
    let mut fleet = fleet(2, &timers).await;
    let plumbing_box = {
        // A first call of each business shows which box serves plumbing.
        let run = fleet::sipp(
            &fleet.net,
            fleet.dir.path(),
            "fleet_call.xml",
            &landline_calls(2),
            10,
        )
        .await;
        assert_eq!(run.status, 0, "{}", run.errors);
        let deadline = Instant::now() + Duration::from_secs(20);
        loop {
            let owner = fleet.boxes.iter().position(|b| {
                !b.query_strings(&format!(
                    "SELECT call_key FROM calls WHERE called = '{PLUMBING}'"
                ))
                .is_empty()
            });
            // Both first calls' rows, so that the steady run's count starts from them.
            if let Some(owner) = owner
                && rows(&fleet.boxes).0 >= 2
            {
                break owner;
            }
            assert!(
                Instant::now() < deadline,
                "plumbing's first call was not recorded"
            );
            tokio::time::sleep(Duration::from_millis(50)).await;
        }
    };
    let other = 1 - plumbing_box;
    let before = rows(&fleet.boxes).0;
    let steady = landline_calls(calls);
    let (run, killed) = {
        let (first, second) = fleet.boxes.split_at_mut(1);
        let dead = if plumbing_box == 0 {
            &mut first[0]
        } else {
            &mut second[0]
        };
        let taken = dead
            .query_strings("SELECT call_key FROM calls WHERE source = 'sip'")
            .len();
        tokio::join!(
            fleet::sipp(
                &fleet.net,
                fleet.dir.path(),
                "fleet_call.xml",
                &steady,
                rate,
            ),
            async {
                let deadline = Instant::now() + Duration::from_secs(20);
                while dead
                    .query_strings("SELECT call_key FROM calls WHERE source = 'sip'")
                    .len()
                    < taken + 10
                {
                    assert!(Instant::now() < deadline, "no calls reached the box");
                    tokio::time::sleep(Duration::from_millis(20)).await;
                }
                dead.kill().await
            }
        )
    };
    let killed = fleet::unix(killed);
    let samples = invite_to_180(fleet.dir.path());
    // Wait for the log's last lines.
    let deadline = Instant::now() + Duration::from_secs(5);
    while fleet.kamailio.lines_behind() && Instant::now() < deadline {
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    let (routed, down) = fleet::routing(&fleet.kamailio.lines());
    let other_ip = fleet.boxes[other].ip;
    let dead_ip = fleet.boxes[plumbing_box].ip;
    // The first call tried at the dead box after the kill and then sent on to the other box.
    let rerouted = routed
        .values()
        .filter(|r| {
            r.relayed.len() >= 2
                && r.relayed[0].0 == dead_ip
                && r.relayed
                    .iter()
                    .any(|(ip, at)| *ip == other_ip && *at >= killed)
        })
        .filter_map(|r| {
            r.relayed
                .iter()
                .find(|(ip, _)| *ip == other_ip)
                .map(|x| x.1)
        })
        .fold(f64::INFINITY, f64::min);
    let marked = down
        .iter()
        .filter(|(ip, at)| *ip == dead_ip && *at >= killed)
        .map(|(_, at)| *at)
        .fold(f64::INFINITY, f64::min);
    let lost = routed.values().filter(|r| r.ended.is_none()).count();
    let recorded = rows(&fleet.boxes).0 - before;
    println!(
        "failover at {rate} calls/s: SIGKILL → first call of the dead box's business ringing at the other box {:.0} ms; dead box marked down after {:.0} ms; longest INVITE→180 {:.0} ms (p99 {:.1}); SIPp {} ok / {} failed; {} calls ringing at the dead box lost, {recorded} of {calls} recorded",
        (rerouted - killed) * 1000.0,
        (marked - killed) * 1000.0,
        samples.last().copied().unwrap_or(f64::NAN),
        at(&samples, 0.99),
        run.successful,
        run.failed,
        lost,
    );
    if !bench {
        assert_eq!((run.status, run.failed), (0, 0), "{}", run.errors);
        assert!(rerouted.is_finite(), "a call failed over");
    }
    fleet.stop().await;
}
