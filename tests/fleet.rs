//! Several textback boxes behind Kamailio's dispatcher, with real processes: kamailio running the
//! shipped config/kamailio/dispatcher.cfg and two boxes (`textback run`), each in its own network
//! namespace with its own virtual modem and database (tests/common/fleet.rs builds the network).
//! SIPp diverts calls for two businesses through kamailio; one box is killed with SIGKILL
//! mid-run and started again. Every call a box answered as missed is recorded on exactly that
//! box and texted once; the failover time is measured and printed. The leads of both boxes go
//! to one webhook, each naming its box, and one Prometheus (the shipped
//! config/prometheus/prometheus.yml and its rules) scrapes both and tells them apart.
//!
//! Needs root (network namespaces), iproute2, kamailio, sip-tester and prometheus: scripts/test.sh
//! installs them, and a missing one fails the test with what to install.

mod common;

use std::collections::{BTreeMap, BTreeSet, HashMap};
use std::net::Ipv4Addr;
use std::time::{Duration, Instant, SystemTime};

use common::WAIT;
use common::fleet::{
    self, BoxSettings, DispatcherTimers, ELECTRIC, Kamailio, Net, PLUMBING, Prometheus, TextbackBox,
};
use common::servers::HttpRecorder;
use textback::leads::webhook;
use textback::modem::virtual_modem::Options;

/// The dispatcher's timers in this test: a box has 2 s to send 100 Trying (the shipped default:
/// a box on a busy machine can stall for a second, and being marked down then is no failure,
/// but both boxes at once would be), it is probed every second, and a call rings at most 10 s
/// at a box (the boxes end theirs after 5).
const TIMERS: DispatcherTimers = DispatcherTimers {
    fr_timer_ms: 2000,
    fr_inv_timer_ms: 10_000,
    ping_interval_s: 1,
};
/// SIPp's rate, calls a second (alternating businesses).
const RATE: u32 = 10;
/// How far behind the kill a loaded machine may be, s: a call the killed box answered this long
/// before it died may still have had its row uncommitted, and one sent to it this long before
/// may still have been waiting for its 100 Trying. (kamailio's log lines are timed when this
/// process reads them, 0.5 s late at most on such a machine.)
const SLACK: f64 = 2.0;

/// Which box recorded each SIP call: Call-ID → box index.
fn recorded(boxes: &[TextbackBox]) -> HashMap<String, Vec<usize>> {
    let mut all: HashMap<String, Vec<usize>> = HashMap::new();
    for (i, b) in boxes.iter().enumerate() {
        for key in b.query_strings("SELECT call_key FROM calls WHERE source = 'sip'") {
            all.entry(key).or_default().push(i);
        }
    }
    all
}

/// The (business, caller) of each SIP call recorded on `b`, by Call-ID.
fn calls_on(b: &TextbackBox) -> HashMap<String, (String, String, String)> {
    b.query_strings(
        "SELECT call_key || '|' || coalesce(called, '') || '|' || coalesce(caller, '') || '|' || decision FROM calls WHERE source = 'sip'",
    )
    .into_iter()
    .filter_map(|row| {
        let mut parts = row.splitn(4, '|');
        Some((
            parts.next()?.to_string(),
            (
                parts.next()?.to_string(),
                parts.next()?.to_string(),
                parts.next()?.to_string(),
            ),
        ))
    })
    .collect()
}

/// Waits until the boxes together have recorded at least `n` SIP calls.
async fn wait_recorded(boxes: &[TextbackBox], n: usize) -> usize {
    let deadline = tokio::time::Instant::now() + WAIT;
    loop {
        let got = recorded(boxes).len();
        if got >= n || tokio::time::Instant::now() > deadline {
            return got;
        }
        // Reading the boxes' databases; the wait ends as soon as the rows are there.
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
}

/// Waits until `b` has recorded at least `n` calls for `business`.
async fn wait_business_calls(b: &TextbackBox, business: &str, n: usize) {
    let deadline = tokio::time::Instant::now() + WAIT;
    loop {
        let got = calls_on(b)
            .values()
            .filter(|(called, _, _)| called == business)
            .count();
        if got >= n {
            return;
        }
        assert!(
            tokio::time::Instant::now() < deadline,
            "{} recorded {got} of {n} calls for {business}",
            b.name
        );
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn two_boxes_behind_kamailio_keep_each_business_on_one_box_and_fail_over_on_sigkill() {
    let dir = tempfile::tempdir().expect("temporary directory");
    let dir = dir.path();
    let net = Net::create(2);
    // One webhook for the whole fleet: the CRM, reached from the boxes through kamailio's
    // namespace.
    let crm = HttpRecorder::start_at(net.root_ip(), 0, Vec::new()).await;
    let settings = BoxSettings {
        webhook: Some(crm.url("/crm")),
        max_ring_seconds: 5,
    };
    let mut boxes = Vec::new();
    for i in 0..2 {
        let mut b = TextbackBox::prepare(&net, i, dir, &settings, Options::default()).await;
        b.start().await;
        boxes.push(b);
    }
    let kamailio = Kamailio::start(&net, dir, 2, &TIMERS).await;
    let prometheus = Prometheus::start(
        dir,
        &boxes.iter().map(TextbackBox::dashboard).collect::<Vec<_>>(),
    )
    .await;

    // 1. Both boxes up: each business's calls all go to one box, the two to different boxes.
    let first = fleet::calls(20, 0);
    let run = fleet::sipp(&net, dir, "fleet_call.xml", &first, RATE).await;
    assert_eq!(
        (run.status, run.failed, run.successful),
        (0, 0, 20),
        "{}\nkamailio:\n{}",
        run.errors,
        kamailio.log()
    );
    assert_eq!(wait_recorded(&boxes, 20).await, 20);
    let owner = |business: &str| -> BTreeSet<usize> {
        boxes
            .iter()
            .enumerate()
            .filter(|(_, b)| {
                calls_on(b)
                    .values()
                    .any(|(called, _, _)| called == business)
            })
            .map(|(i, _)| i)
            .collect()
    };
    let (plumbing, electric) = (owner(PLUMBING), owner(ELECTRIC));
    assert_eq!(
        plumbing.len(),
        1,
        "plumbing's calls on one box: {plumbing:?}"
    );
    assert_eq!(
        electric.len(),
        1,
        "electric's calls on one box: {electric:?}"
    );
    assert_ne!(
        plumbing, electric,
        "the two businesses hash to different boxes"
    );
    let x = *plumbing.first().expect("plumbing's box");
    let y = 1 - x;
    println!(
        "plumbing ({PLUMBING}) on {}, electric ({ELECTRIC}) on {}",
        boxes[x].name, boxes[y].name
    );

    // 2. Plumbing's box is killed (SIGKILL) once it has taken 10 calls of this run, and started
    //    again once the other box has taken 8 of plumbing's calls meanwhile.
    let second = fleet::calls(120, 1000);
    let plumbing_before = calls_on(&boxes[x]).len();
    let failover_before = calls_on(&boxes[y])
        .values()
        .filter(|(called, _, _)| called == PLUMBING)
        .count();
    let (run, (killed_at, restarted_at)) = {
        let (xs, ys) = if x == 0 {
            let (a, b) = boxes.split_at_mut(1);
            (&mut a[0], &b[0])
        } else {
            let (a, b) = boxes.split_at_mut(1);
            (&mut b[0], &a[0])
        };
        tokio::join!(
            fleet::sipp(&net, dir, "fleet_call.xml", &second, RATE),
            async {
                wait_business_calls(xs, PLUMBING, plumbing_before + 10).await;
                let killed_at = xs.kill().await;
                wait_business_calls(ys, PLUMBING, failover_before + 8).await;
                xs.start().await;
                (killed_at, SystemTime::now())
            }
        )
    };
    let killed = fleet::unix(killed_at);
    let restarted = fleet::unix(restarted_at);
    assert_eq!(
        (run.status, run.failed),
        (0, 0),
        "no call failed: {}\nkamailio:\n{}",
        run.errors,
        kamailio.log()
    );
    // The last rows trail the last 487s by a moment, and the log's last lines are read a
    // moment after they are written: wait for both (every answered call's row is committed
    // right after its final response, so the count stops short only by the kill's losses).
    let ended = kamailio.log().matches(" ended call ").count();
    let deadline = Instant::now() + Duration::from_secs(5);
    while (recorded(&boxes).len() < ended || kamailio.lines_behind()) && Instant::now() < deadline {
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    let lines = kamailio.lines();
    let (routed, marked_down) = fleet::routing(&lines);

    // Every call: where kamailio sent it, which box ended it, where it is recorded.
    let ips: Vec<Ipv4Addr> = boxes.iter().map(|b| b.ip).collect();
    let index = |ip: Ipv4Addr| ips.iter().position(|b| *b == ip).expect("a box's address");
    let on_box = recorded(&boxes);
    let mut twice = Vec::new();
    let mut wrong_box = Vec::new();
    let mut lost_after_answer = Vec::new();
    let mut ringing_at_kill = Vec::new();
    let mut answered = 0;
    for (call_id, route) in &routed {
        let boxes_with_row = on_box.get(call_id).cloned().unwrap_or_default();
        if boxes_with_row.len() > 1 {
            twice.push(call_id.clone());
        }
        match route.ended {
            Some((ip, status, at)) => {
                assert!(
                    [480, 486, 487, 603].contains(&status),
                    "{call_id}: a box ended it with {status}"
                );
                answered += 1;
                let by = index(ip);
                if boxes_with_row.is_empty() {
                    // Answered by the killed box in its last moment, before its row was
                    // committed: what a SIGKILL can take (README, "Several boxes").
                    assert!(
                        by == x && (killed - SLACK..=killed + 0.5).contains(&at),
                        "{call_id} ended by {} at {at:.3} (kill at {killed:.3}) but recorded nowhere",
                        boxes[by].name
                    );
                    lost_after_answer.push(call_id.clone());
                } else if boxes_with_row != [by] {
                    wrong_box.push((call_id.clone(), by, boxes_with_row));
                }
            }
            None => {
                // No box ended it: it rang at the killed box when it died (kamailio answered
                // the caller's CANCEL itself). Never recorded, by either box.
                let last = route.relayed.last().expect("relayed");
                assert_eq!(index(last.0), x, "{call_id}: {route:?}");
                assert!(
                    last.1 <= killed + 0.5,
                    "{call_id} sent to the dead box after the kill: {route:?}"
                );
                assert!(boxes_with_row.is_empty(), "{call_id}");
                ringing_at_kill.push(call_id.clone());
            }
        }
    }
    assert!(twice.is_empty(), "calls recorded on both boxes: {twice:?}");
    assert!(
        wrong_box.is_empty(),
        "calls recorded on another box: {wrong_box:?}"
    );
    assert_eq!(
        routed.len(),
        140,
        "kamailio relayed every call of both runs"
    );
    assert!(
        lost_after_answer.len() as f64 <= f64::from(RATE) / 2.0 * SLACK,
        "answered but not recorded: {lost_after_answer:?}"
    );
    // Every recorded call is one kamailio saw a box answer.
    for call_id in on_box.keys() {
        assert!(
            routed.get(call_id).is_some_and(|r| r.ended.is_some()),
            "{call_id} recorded but never answered through kamailio"
        );
    }

    // Each business stayed on its box while it was up: electric's calls never left its box,
    // plumbing's went to the other box only between the kill and the restart (plus the probe
    // that brings the box back).
    let business_of: HashMap<String, String> = boxes
        .iter()
        .flat_map(calls_on)
        .map(|(call_id, (called, _, _))| (call_id, called))
        .collect();
    let back_by = restarted + f64::from(TIMERS.ping_interval_s) + SLACK;
    let mut failed_over = Vec::new();
    for (call_id, route) in &routed {
        let Some((ip, _, _)) = route.ended else {
            continue;
        };
        match business_of.get(call_id).map(String::as_str) {
            Some(ELECTRIC) => assert_eq!(index(ip), y, "{call_id} (electric): {route:?}"),
            Some(PLUMBING) if index(ip) == y => {
                let first_try = route.relayed.first().map_or(0.0, |r| r.1);
                assert!(
                    first_try >= killed - SLACK && first_try <= back_by,
                    "{call_id} (plumbing) on the other box outside the outage: {route:?}"
                );
                failed_over.push((first_try, call_id.clone(), route.clone()));
            }
            _ => {}
        }
    }
    failed_over.sort_by(|a, b| a.0.total_cmp(&b.0));
    let back_on_x = routed
        .values()
        .filter(|r| {
            r.ended
                .is_some_and(|(ip, _, at)| index(ip) == x && at > restarted)
                && r.relayed.first().is_some_and(|first| first.1 > restarted)
        })
        .map(|r| r.relayed[0].1)
        .fold(f64::INFINITY, f64::min);
    assert!(
        back_on_x.is_finite(),
        "plumbing's calls went back to its box after the restart"
    );

    // Failover: from the SIGKILL to the first plumbing call ringing at the other box, and how
    // long that caller waited for its 180 (kamailio waited FR_TIMER for the dead box first).
    let (first_over_at, _, first_over) = failed_over.first().cloned().expect("a call failed over");
    let rerouted_at = first_over
        .relayed
        .iter()
        .find(|(ip, _)| index(*ip) == y)
        .map_or(first_over_at, |r| r.1);
    let marked = marked_down
        .iter()
        .filter(|(ip, at)| index(*ip) == x && *at >= killed)
        .map(|(_, at)| *at)
        .fold(f64::INFINITY, f64::min);
    println!(
        "failover: SIGKILL → first plumbing call ringing at {}: {:.0} ms (that call waited {:.0} ms for the dead box); box marked down after {:.0} ms; {} plumbing calls taken by {} during the outage; {} calls ringing at the dead box lost, {} answered and not yet recorded; back on {} {:.0} ms after its restart",
        boxes[y].name,
        (rerouted_at - killed) * 1000.0,
        (rerouted_at - first_over_at) * 1000.0,
        (marked - killed) * 1000.0,
        failed_over.len(),
        boxes[y].name,
        ringing_at_kill.len(),
        lost_after_answer.len(),
        boxes[x].name,
        (back_on_x - restarted) * 1000.0,
    );
    assert!(
        rerouted_at - killed < f64::from(TIMERS.fr_timer_ms) / 1000.0 + SLACK,
        "failover within FR_TIMER and a call's gap"
    );
    assert_eq!(answered + ringing_at_kill.len(), 140);

    // Every call texted once: each caller is new (fleet::calls), so each recorded call with a
    // text decision has exactly one first text to its caller, over both SIMs. A text the killed
    // box was sending at the instant it died is queued again at its restart (README: "the
    // caller may get it twice"): those are counted, not hidden.
    let interrupted = boxes[x].log().matches("queued again").count();
    let mut sent: BTreeMap<String, usize> = BTreeMap::new();
    for b in &boxes {
        for sms in b.modem.sent() {
            *sent.entry(sms.to).or_default() += 1;
        }
    }
    let texted: Vec<String> = boxes
        .iter()
        .flat_map(calls_on)
        .filter(|(_, (_, _, decision))| decision == "text")
        .map(|(_, (_, caller, _))| caller)
        .collect();
    assert_eq!(
        texted.len(),
        on_box.len(),
        "every recorded call is from a mobile and texted"
    );
    // The texts wait in the outbox for a moment after the rows; wait for the last ones.
    let deadline = Instant::now() + WAIT;
    loop {
        let total: usize = boxes.iter().map(|b| b.modem.sent().len()).sum();
        if total >= texted.len() || Instant::now() > deadline {
            break;
        }
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    sent.clear();
    for b in &boxes {
        for sms in b.modem.sent() {
            *sent.entry(sms.to).or_default() += 1;
        }
    }
    let twice_texted: Vec<&String> = texted
        .iter()
        .filter(|caller| sent.get(*caller).copied().unwrap_or(0) != 1)
        .collect();
    assert!(
        twice_texted.len() <= interrupted,
        "texted other than once: {twice_texted:?} ({interrupted} sends interrupted by the kill)"
    );
    println!(
        "{} calls recorded, each on one box; {} callers texted, {} more than once (sends cut by the kill: {interrupted})",
        on_box.len(),
        texted.len(),
        twice_texted.len()
    );

    // 3. Leads from both boxes reach one webhook (the CRM), each naming its box. A caller of
    //    each business from the first run answers the two questions by SMS.
    for (i, business) in [(x, PLUMBING), (y, ELECTRIC)] {
        let caller = fleet::calls(20, 0)
            .into_iter()
            .find(|call| call.business == business)
            .expect("a caller")
            .caller;
        boxes[i].modem.receive_sms(&caller, "Sarah Jones").await;
        let deadline = Instant::now() + WAIT;
        while boxes[i]
            .modem
            .sent()
            .iter()
            .filter(|s| s.to == caller)
            .count()
            < 2
        {
            assert!(
                Instant::now() < deadline,
                "{} asked no second question",
                boxes[i].name
            );
            tokio::time::sleep(Duration::from_millis(50)).await;
        }
        boxes[i].modem.receive_sms(&caller, "Boiler leaking").await;
    }
    let hooks = crm.wait_requests("/crm", 2).await;
    assert_eq!(hooks.len(), 2, "one lead from each box");
    let mut from: Vec<(String, String)> = Vec::new();
    for hook in &hooks {
        let timestamp: i64 = hook
            .header(webhook::TIMESTAMP_HEADER)
            .and_then(|t| t.parse().ok())
            .expect("a timestamp");
        assert!(webhook::verify(
            fleet::WEBHOOK_SECRET.as_bytes(),
            hook.header(webhook::SIGNATURE_HEADER).expect("a signature"),
            timestamp,
            &hook.body
        ));
        let body = hook.json();
        assert_eq!(body["event"], "lead");
        let key = hook
            .header(webhook::IDEMPOTENCY_HEADER)
            .expect("a key")
            .to_string();
        let box_name = body["box"].as_str().expect("the box").to_string();
        assert!(key.ends_with(&format!("@{box_name}")), "{key}");
        from.push((box_name, key));
    }
    from.sort();
    assert_eq!(
        from.iter().map(|(b, _)| b.as_str()).collect::<Vec<_>>(),
        ["box-a", "box-b"]
    );
    assert_ne!(
        from[0].1, from[1].1,
        "each lead its own key, though both are lead 1"
    );

    // 4. One Prometheus scrapes both boxes and tells them apart by box.name.
    let info = prometheus
        .wait_for("query", &[("query", "textback_box_info")], |data| {
            data["result"].as_array().is_some_and(|r| r.len() == 2)
        })
        .await;
    let mut named: Vec<(String, String)> = info["result"]
        .as_array()
        .expect("results")
        .iter()
        .map(|series| {
            (
                series["metric"]["box"].as_str().unwrap_or("").to_string(),
                series["metric"]["instance"]
                    .as_str()
                    .unwrap_or("")
                    .to_string(),
            )
        })
        .collect();
    named.sort();
    assert_eq!(
        named,
        [
            ("box-a".to_string(), boxes[0].dashboard().to_string()),
            ("box-b".to_string(), boxes[1].dashboard().to_string()),
        ]
    );
    prometheus
        .wait_for("query", &[("query", "up{job=\"textback\"} == 1")], |data| {
            data["result"].as_array().is_some_and(|r| r.len() == 2)
        })
        .await;
    // Electric's box loses the network: the shipped rule's alert, with that box's name.
    boxes[y].modem.set_network(false).await;
    let alerts = prometheus
        .wait_for("alerts", &[], |data| {
            data["alerts"].as_array().is_some_and(|alerts| {
                alerts
                    .iter()
                    .any(|a| a["labels"]["alertname"] == "TextbackModemDown")
            })
        })
        .await;
    let modem_down: Vec<&serde_json::Value> = alerts["alerts"]
        .as_array()
        .expect("alerts")
        .iter()
        .filter(|a| a["labels"]["alertname"] == "TextbackModemDown")
        .collect();
    assert_eq!(modem_down.len(), 1, "{alerts}");
    assert_eq!(modem_down[0]["labels"]["box"], boxes[y].name.as_str());
    assert_eq!(modem_down[0]["labels"]["modem"], "main");
    // Its `for: 5m` has not passed: pending.
    assert_eq!(modem_down[0]["state"], "pending");
    // The exposition itself passes promtool's checks.
    let exposition = reqwest::Client::new()
        .get(format!("http://{}/metrics", boxes[x].dashboard()))
        .bearer_auth(fleet::API_TOKEN)
        .send()
        .await
        .expect("scrape")
        .text()
        .await
        .expect("the exposition");
    let mut check = tokio::process::Command::new(fleet::tool(fleet::PROMTOOL, "prometheus"))
        .args(["check", "metrics"])
        .stdin(std::process::Stdio::piped())
        .stdout(std::process::Stdio::piped())
        .stderr(std::process::Stdio::piped())
        .spawn()
        .expect("run promtool");
    {
        use tokio::io::AsyncWriteExt;
        let mut stdin = check.stdin.take().expect("stdin");
        stdin
            .write_all(exposition.as_bytes())
            .await
            .expect("write the exposition");
    }
    let output = check.wait_with_output().await.expect("promtool");
    assert!(
        output.status.success(),
        "promtool check metrics: {}{}\n{exposition}",
        String::from_utf8_lossy(&output.stdout),
        String::from_utf8_lossy(&output.stderr)
    );

    // Both boxes stop cleanly.
    for b in &mut boxes {
        b.stop().await;
    }
}

/// The shipped alert rules are valid and their unit tests (config/prometheus/
/// textback.rules.test.yml: each alert fires for its box, with its name, after its `for`) pass.
#[test]
fn the_shipped_alert_rules_pass_promtool() {
    let promtool = fleet::tool(fleet::PROMTOOL, "prometheus");
    for args in [
        ["check", "rules", "textback.rules.yml"],
        ["test", "rules", "textback.rules.test.yml"],
    ] {
        let output = std::process::Command::new(&promtool)
            .current_dir(fleet::manifest("config/prometheus"))
            .args(args)
            .output()
            .expect("run promtool");
        assert!(
            output.status.success(),
            "promtool {}: {}{}",
            args.join(" "),
            String::from_utf8_lossy(&output.stdout),
            String::from_utf8_lossy(&output.stderr)
        );
    }
}

/// kamailio accepts the shipped config as it is (`kamailio -c`).
#[test]
fn the_shipped_dispatcher_config_is_valid_kamailio() {
    let output = std::process::Command::new(fleet::tool("/usr/sbin/kamailio", "kamailio"))
        .arg("-c")
        .arg("-f")
        .arg(fleet::manifest("config/kamailio/dispatcher.cfg"))
        .output()
        .expect("run kamailio -c");
    assert!(
        output.status.success(),
        "{}",
        String::from_utf8_lossy(&output.stderr)
    );
}
