//! The SIP endpoint against SIPp (Debian package `sip-tester`), a real SIP peer: diverted calls
//! over UDP and TCP, IPv4 and IPv6, withheld callers, History-Info, CANCEL before and after 180,
//! INVITE retransmissions, a ring-out, a stranger's INVITE and a burst of garbage. Each test runs
//! the whole daemon with a virtual modem and asserts the calls table and the texts sent.

mod common;

use std::net::{SocketAddr, UdpSocket};
use std::path::{Path, PathBuf};
use std::process::Stdio;
use std::sync::Arc;
use std::time::Duration;

use common::{Harness, WAIT};
use textback::config;
use textback::daemon::Running;
use textback::modem::virtual_modem::{Options, VirtualModem};

/// The business numbers of the test config's two profiles.
const PLUMBING: &str = "+441632960123";
const ELECTRIC: &str = "+441632960999";
const CONTACT_USER: &str = "tbtest7f3a";

/// A second profile, and a SIP trunk that does not register (IP authentication): its "registrar"
/// 127.0.0.1 is the only source allowed to call.
fn sip_config(extra: &str) -> String {
    format!(
        r#"
[[profile]]
id = "electric"
name = "Sparks Electrical"
numbers = ["{ELECTRIC}"]

[[sip]]
name = "trunk"
registrar = "127.0.0.1"
username = "441632960123"
password = "not-used-without-register"
register = false
listen = ["127.0.0.1", "::1"]
local_port = 0
contact_user = "{CONTACT_USER}"
max_ring_seconds = 2
{extra}
"#
    )
}

/// A harness whose config has the SIP trunk; the plumbing profile is the default. `extra` may
/// set max_ring_seconds (2 otherwise).
fn harness(extra: &str) -> Harness {
    harness_with_modem(extra, Options::default())
}

/// [`harness`] with a virtual modem of these options.
fn harness_with_modem(extra: &str, options: Options) -> Harness {
    let dir = tempfile::tempdir().expect("temporary directory");
    let modem = VirtualModem::start(options).expect("virtual modem");
    let mut sip = sip_config(extra);
    if extra.contains("max_ring_seconds") {
        sip = sip.replacen("max_ring_seconds = 2\n", "", 1);
    }
    let text = common::config_text(modem.path(), &dir.path().join("textback.db"))
        .replace("closing_message", "default = true\nclosing_message")
        + &sip;
    let config = config::parse(&text, Path::new("test.toml"))
        .expect("test config")
        .config;
    Harness {
        dir,
        modem,
        config: Arc::new(config),
        // write_config() is not used with this config (its profile is changed above).
        extra: String::new(),
        text,
    }
}

fn sipp_binary() -> PathBuf {
    let path = PathBuf::from("/usr/bin/sipp");
    assert!(
        path.exists(),
        "sipp is not installed: run `apt-get install sip-tester` (scripts/test.sh does)"
    );
    path
}

fn scenario(name: &str) -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR"))
        .join("tests/sipp")
        .join(name)
}

fn free_udp_port(ip: &str) -> u16 {
    UdpSocket::bind((ip, 0))
        .and_then(|socket| socket.local_addr())
        .map(|address| address.port())
        .expect("a free port")
}

/// How SIPp reaches textback.
struct Sipp<'a> {
    scenario: &'a str,
    target: SocketAddr,
    local_ip: &'a str,
    tcp: bool,
    calls: u32,
    rate: u32,
    /// More arguments (`-key NAME VALUE` for a scenario's own keywords).
    args: &'a [&'a str],
}

impl Sipp<'_> {
    /// Runs the scenario to the end; returns SIPp's exit status (0: every call succeeded) and
    /// its error log.
    async fn run(&self, dir: &Path) -> (i32, String) {
        let errors = dir.join(format!("{}-{}-errors.log", self.scenario, self.local_ip));
        let mut command = tokio::process::Command::new(sipp_binary());
        command
            .arg(self.target.to_string())
            .args(["-sf", scenario(self.scenario).to_str().expect("utf-8 path")])
            .args(["-s", CONTACT_USER])
            .args(["-i", self.local_ip])
            .args(["-p", &free_udp_port(self.local_ip).to_string()])
            .args(["-m", &self.calls.to_string()])
            .args(["-r", &self.rate.to_string()])
            .args(["-timeout", "20s", "-timeout_error", "-nostdin"])
            .args(["-trace_err", "-error_file", errors.to_str().expect("utf-8")])
            .stdin(Stdio::null())
            .stdout(Stdio::null())
            .stderr(Stdio::piped())
            .args(self.args)
            .kill_on_drop(true);
        if self.tcp {
            command.args(["-t", "t1"]);
        }
        let output = tokio::time::timeout(Duration::from_secs(40), command.output())
            .await
            .expect("sipp finishes within 40 s")
            .expect("run sipp");
        let log = std::fs::read_to_string(&errors).unwrap_or_default();
        (
            output.status.code().unwrap_or(-1),
            format!("{}{log}", String::from_utf8_lossy(&output.stderr)),
        )
    }
}

fn udp4(running: &Running) -> SocketAddr {
    *running
        .sip
        .iter()
        .find(|address| address.is_ipv4())
        .expect("the endpoint listens on 127.0.0.1")
}

fn udp6(running: &Running) -> SocketAddr {
    *running
        .sip
        .iter()
        .find(|address| address.is_ipv6())
        .expect("the endpoint listens on ::1")
}

async fn sipp(harness: &Harness, scenario: &str, target: SocketAddr) -> (i32, String) {
    let local_ip = if target.is_ipv4() { "127.0.0.1" } else { "::1" };
    Sipp {
        scenario,
        target,
        local_ip,
        tcp: false,
        calls: 1,
        rate: 10,
        args: &[],
    }
    .run(harness.dir.path())
    .await
}

fn sip_calls(harness: &Harness) -> Vec<String> {
    harness.query_strings(
        "SELECT coalesce(caller, '-') || ' ' || coalesce(called, '-') || ' ' || profile || ' ' || decision FROM calls WHERE source = 'sip' ORDER BY id",
    )
}

#[tokio::test]
async fn a_diverted_call_becomes_one_missed_call_and_one_text() {
    let harness = harness("");
    let running = harness.start().await;
    let (status, log) = sipp(&harness, "divert_cancel.xml", udp4(&running)).await;
    assert_eq!(status, 0, "SIPp's call failed: {log}");
    assert_eq!(
        harness
            .wait_count("SELECT count(*) FROM calls WHERE source = 'sip'", 1)
            .await,
        1
    );
    assert_eq!(
        sip_calls(&harness),
        [format!("+447700900123 {PLUMBING} plumbing text")],
        "caller from P-Asserted-Identity, called number from Diversion"
    );
    let sent = harness.modem.wait_sent(1, WAIT).await;
    assert_eq!(sent.len(), 1, "one text");
    assert_eq!(sent[0].to, "+447700900123");
    assert!(
        sent[0].text.contains("Brightwater Plumbing"),
        "{}",
        sent[0].text
    );
    // The call key is the SIP Call-ID, as SIPp made it.
    let keys = harness.query_strings("SELECT call_key FROM calls");
    assert!(keys[0].contains('@'), "{keys:?}");
    running.stop().await.expect("clean stop");
}

#[tokio::test]
async fn a_withheld_call_is_recorded_and_not_texted() {
    let harness = harness("");
    let running = harness.start().await;
    let (status, log) = sipp(&harness, "withheld.xml", udp4(&running)).await;
    assert_eq!(status, 0, "SIPp's call failed: {log}");
    harness
        .wait_count("SELECT count(*) FROM calls WHERE source = 'sip'", 1)
        .await;
    assert_eq!(sip_calls(&harness), [format!("- {PLUMBING} plumbing skip")]);
    // A good call afterwards is texted: so the withheld one was skipped, not merely slow.
    let (status, log) = sipp(&harness, "divert_cancel.xml", udp4(&running)).await;
    assert_eq!(status, 0, "{log}");
    let sent = harness.modem.wait_sent(1, WAIT).await;
    assert_eq!(sent.len(), 1);
    assert_eq!(sent[0].to, "+447700900123");
    running.stop().await.expect("clean stop");
}

#[tokio::test]
async fn history_info_picks_the_business_and_from_gives_the_caller() {
    let harness = harness("");
    let running = harness.start().await;
    let (status, log) = sipp(&harness, "history_info.xml", udp4(&running)).await;
    assert_eq!(status, 0, "SIPp's call failed: {log}");
    harness
        .wait_count("SELECT count(*) FROM calls WHERE source = 'sip'", 1)
        .await;
    assert_eq!(
        sip_calls(&harness),
        [format!("+447700900777 {ELECTRIC} electric text")]
    );
    let sent = harness.modem.wait_sent(1, WAIT).await;
    assert!(
        sent[0].text.contains("Sparks Electrical"),
        "{}",
        sent[0].text
    );
    running.stop().await.expect("clean stop");
}

#[tokio::test]
async fn cancel_before_180_and_retransmitted_invites_make_one_call_each() {
    let harness = harness("");
    let running = harness.start().await;
    let (status, log) = sipp(&harness, "cancel_before_180.xml", udp4(&running)).await;
    assert_eq!(status, 0, "CANCEL before 180: {log}");
    // The same INVITE three times over UDP, as a PBX sends it when our answers are lost, then
    // the CANCEL. (SIPp aborts a call on a repeated 180, so this peer is a plain socket.)
    let socket = tokio::net::UdpSocket::bind("127.0.0.1:0")
        .await
        .expect("bind");
    let target = udp4(&running);
    let local = socket.local_addr().expect("local address");
    let invite = raw_request("INVITE", target, local, "retransmitted-1");
    let mut answers = Vec::new();
    for _ in 0..3 {
        socket
            .send_to(invite.as_bytes(), target)
            .await
            .expect("send");
        // Each retransmission is answered with the last provisional response (RFC 3261 §17.2.1).
        answers.push(receive_until(&socket, "180 Ringing").await);
    }
    socket
        .send_to(
            raw_request("CANCEL", target, local, "retransmitted-1").as_bytes(),
            target,
        )
        .await
        .expect("send");
    let ended = receive_until(&socket, "487 Request Terminated").await;
    assert!(
        answers.iter().all(|a| a.contains("180 Ringing")),
        "{answers:?}"
    );
    assert!(ended.contains("CSeq: 1 INVITE"), "{ended}");
    assert_eq!(
        harness
            .wait_count("SELECT count(*) FROM calls WHERE source = 'sip'", 2)
            .await,
        2
    );
    // Both calls were the same caller: the second is within the first's conversation, so one
    // row per call and exactly two rows, however many INVITEs were sent.
    let keys = harness.query_strings("SELECT call_key FROM calls ORDER BY id");
    assert_eq!(keys.len(), 2);
    assert_ne!(keys[0], keys[1]);
    running.stop().await.expect("clean stop");
}

/// A minimal INVITE or CANCEL from `local` with a fixed branch and Call-ID.
fn raw_request(method: &str, target: SocketAddr, local: SocketAddr, call: &str) -> String {
    format!(
        "{method} sip:{CONTACT_USER}@{target} SIP/2.0\r\n\
         Via: SIP/2.0/UDP {local};branch=z9hG4bK-{call};rport\r\n\
         From: <sip:+447700900123@pbx.example>;tag=raw-{call}\r\n\
         To: <sip:{PLUMBING}@pbx.example>\r\n\
         Call-ID: {call}@pbx.example\r\n\
         CSeq: 1 {method}\r\n\
         Max-Forwards: 70\r\n\
         Content-Length: 0\r\n\r\n"
    )
}

/// Reads datagrams until one contains `wanted`, and returns every datagram read.
async fn receive_until(socket: &tokio::net::UdpSocket, wanted: &str) -> String {
    let mut seen = String::new();
    let mut buffer = vec![0u8; 65_536];
    let deadline = tokio::time::Instant::now() + WAIT;
    while !seen.contains(wanted) {
        let (len, _) = tokio::time::timeout_at(deadline, socket.recv_from(&mut buffer))
            .await
            .unwrap_or_else(|_| panic!("no {wanted:?} in: {seen}"))
            .expect("receive");
        seen.push_str(&String::from_utf8_lossy(&buffer[..len]));
    }
    seen
}

#[tokio::test]
async fn tcp_and_ipv6_calls_work() {
    let harness = harness("");
    let running = harness.start().await;
    let (status, log) = Sipp {
        scenario: "divert_cancel.xml",
        target: udp4(&running),
        local_ip: "127.0.0.1",
        tcp: true,
        calls: 1,
        rate: 10,
        args: &[],
    }
    .run(harness.dir.path())
    .await;
    assert_eq!(status, 0, "over TCP: {log}");
    let (status, log) = sipp(&harness, "withheld.xml", udp6(&running)).await;
    // ::1 is not the registrar's address (127.0.0.1) and not in sip.allow, so it is refused.
    assert_ne!(status, 0, "an IPv6 stranger must not get through: {log}");
    assert_eq!(
        harness
            .wait_count("SELECT count(*) FROM calls WHERE source = 'sip'", 1)
            .await,
        1
    );
    running.stop().await.expect("clean stop");

    // With ::1 allowed, the IPv6 call is taken.
    let harness = self::harness("allow = [\"::1\"]");
    let running = harness.start().await;
    let (status, log) = sipp(&harness, "divert_cancel.xml", udp6(&running)).await;
    assert_eq!(status, 0, "over IPv6: {log}");
    assert_eq!(
        harness
            .wait_count("SELECT count(*) FROM calls WHERE source = 'sip'", 1)
            .await,
        1
    );
    running.stop().await.expect("clean stop");
}

#[tokio::test]
async fn a_stranger_gets_403_and_no_call() {
    let harness = harness("");
    let running = harness.start().await;
    // 127.0.0.2 is loopback too, but it is not the trunk's address.
    let (status, log) = Sipp {
        scenario: "forbidden.xml",
        target: udp4(&running),
        local_ip: "127.0.0.2",
        tcp: false,
        calls: 1,
        rate: 10,
        args: &[],
    }
    .run(harness.dir.path())
    .await;
    assert_eq!(status, 0, "expected 403: {log}");
    // A good call from the trunk afterwards is recorded, and it is the only one.
    let (status, log) = sipp(&harness, "divert_cancel.xml", udp4(&running)).await;
    assert_eq!(status, 0, "{log}");
    harness
        .wait_count("SELECT count(*) FROM calls WHERE source = 'sip'", 1)
        .await;
    assert_eq!(sip_calls(&harness).len(), 1);
    running.stop().await.expect("clean stop");
}

#[tokio::test]
async fn a_call_nobody_ends_rings_out_with_480() {
    let harness = harness("");
    let running = harness.start().await;
    let (status, log) = sipp(&harness, "ring_timeout.xml", udp4(&running)).await;
    assert_eq!(status, 0, "expected 480 after max_ring_seconds: {log}");
    assert_eq!(
        harness
            .wait_count("SELECT count(*) FROM calls WHERE source = 'sip'", 1)
            .await,
        1
    );
    running.stop().await.expect("clean stop");
}

#[tokio::test]
async fn a_call_ringing_when_textback_stops_is_still_a_missed_call() {
    let harness = harness("max_ring_seconds = 60\nfinal_response = 486");
    let running = harness.start().await;
    let flag = harness.dir.path().join("ringing");
    let flag_text = flag.to_str().expect("utf-8 path").to_string();
    let args = ["-key", "ringing_file", flag_text.as_str()];
    let sipp = Sipp {
        scenario: "ring_until_shutdown.xml",
        target: udp4(&running),
        local_ip: "127.0.0.1",
        tcp: false,
        calls: 1,
        rate: 10,
        args: &args,
    };
    let ((status, log), (before, stopped)) = tokio::join!(sipp.run(harness.dir.path()), async {
        // SIPp makes the file once the 180 has come: the call rings.
        let deadline = tokio::time::Instant::now() + WAIT;
        while !flag.exists() {
            assert!(
                tokio::time::Instant::now() < deadline,
                "the call never rang"
            );
            tokio::time::sleep(Duration::from_millis(20)).await;
        }
        let before = harness.query_i64("SELECT count(*) FROM calls");
        (before, running.stop().await)
    });
    stopped.expect("clean stop");
    assert_eq!(before, 0, "no missed call while it rang");
    assert_eq!(
        status, 0,
        "SIPp got the configured 486 and acknowledged it: {log}"
    );
    // The store is closed: the row was committed before the daemon finished stopping.
    assert_eq!(
        sip_calls(&harness),
        [format!("+447700900123 {PLUMBING} plumbing text")]
    );
}

#[tokio::test]
async fn more_calls_ringing_at_shutdown_than_the_event_queue_holds_are_all_recorded() {
    // The daemon's event queue holds 256; the SIP forwarder waits for room while it drains.
    const CALLS: usize = 300;
    let harness = harness("max_ring_seconds = 60\nmax_ringing_calls = 300");
    let running = harness.start().await;
    let target = udp4(&running);
    let trunk = udp_from("127.0.0.1").await;
    let local = trunk.local_addr().expect("local address");
    let mut ringing = std::collections::BTreeSet::new();
    let mut buffer = vec![0u8; 65_536];
    // In batches, reading the answers in between, so that none overflows this socket's buffer.
    for batch in 0..CALLS / 50 {
        for n in batch * 50..(batch + 1) * 50 {
            let invite = raw_request("INVITE", target, local, &format!("ringing-{n}"));
            trunk
                .send_to(invite.as_bytes(), target)
                .await
                .expect("send");
        }
        while ringing.len() < (batch + 1) * 50 {
            let (len, _) = tokio::time::timeout(WAIT, trunk.recv_from(&mut buffer))
                .await
                .unwrap_or_else(|_| panic!("{} of {CALLS} rang", ringing.len()))
                .expect("receive");
            let message = String::from_utf8_lossy(&buffer[..len]).into_owned();
            if status_of(&message) == Some(180) {
                ringing.insert(call_id_of(&message));
            }
        }
    }
    // The 480s are read while the daemon stops, so that none overflows this socket's buffer.
    let (stopped, ended) = tokio::join!(running.stop(), async {
        let mut ended = std::collections::BTreeSet::new();
        let mut buffer = vec![0u8; 65_536];
        while ended.len() < CALLS {
            let Ok(received) = tokio::time::timeout(WAIT, trunk.recv_from(&mut buffer)).await
            else {
                break;
            };
            let (len, _) = received.expect("receive");
            let message = String::from_utf8_lossy(&buffer[..len]);
            if status_of(&message) == Some(480) {
                ended.insert(call_id_of(&message));
            }
        }
        ended
    });
    stopped.expect("clean stop");
    assert_eq!(ended, ringing, "each ringing call got its 480");
    assert_eq!(
        harness.query_i64("SELECT count(DISTINCT call_key) FROM calls WHERE source = 'sip'"),
        CALLS as i64
    );
}

/// The answer to the request `call` from `socket` within `within`, if any (100 skipped).
async fn answer_within(
    socket: &tokio::net::UdpSocket,
    call: &str,
    within: Duration,
) -> Option<u16> {
    let wanted = format!("{call}@pbx.example");
    let mut buffer = vec![0u8; 65_536];
    let deadline = tokio::time::Instant::now() + within;
    loop {
        let (len, _) = tokio::time::timeout_at(deadline, socket.recv_from(&mut buffer))
            .await
            .ok()?
            .ok()?;
        let message = String::from_utf8_lossy(&buffer[..len]);
        match status_of(&message) {
            Some(status) if status != 100 && call_id_of(&message) == wanted => {
                return Some(status);
            }
            _ => {}
        }
    }
}

#[tokio::test]
async fn while_textback_stops_options_and_invites_get_503_until_it_exits() {
    // The network takes 2 s to accept a text: a stop that comes meanwhile waits for it, and
    // that is the window in which a dispatcher must hear that this box is going away.
    let harness = harness_with_modem(
        "",
        Options {
            send_delay: Duration::from_secs(2),
            ..Options::default()
        },
    );
    let running = harness.start().await;
    let target = udp4(&running);
    // The trunk (127.0.0.1, the account's "registrar") probes as a dispatcher does: 200.
    let trunk = udp_from("127.0.0.1").await;
    let local = trunk.local_addr().expect("local address");
    let probe = raw_request("OPTIONS", target, local, "probe-up");
    trunk.send_to(probe.as_bytes(), target).await.expect("send");
    assert_eq!(
        answer_within(&trunk, "probe-up", WAIT).await,
        Some(200),
        "a running box answers its prober 200"
    );
    // A call is missed and its text handed to the modem, which takes 2 s to confirm it.
    let invite = raw_request("INVITE", target, local, "texted");
    trunk
        .send_to(invite.as_bytes(), target)
        .await
        .expect("send");
    assert_eq!(answer_to(&trunk, "texted").await, 180);
    hang_up(&trunk, target, "texted").await;
    assert!(
        harness
            .modem
            .wait_command(|c| c.starts_with("AT+CMGS="), WAIT)
            .await,
        "the text is being sent"
    );
    let stopping = tokio::spawn(running.stop());
    // From the moment intake stops until the daemon exits, a probe and a call get 503.
    let mut answers = Vec::new();
    for n in 0.. {
        let call = format!("probe-stopping-{n}");
        let probe = raw_request("OPTIONS", target, local, &call);
        trunk.send_to(probe.as_bytes(), target).await.expect("send");
        let answer = answer_within(&trunk, &call, Duration::from_millis(500)).await;
        answers.push(answer);
        if answer == Some(503) || stopping.is_finished() || n > 100 {
            break;
        }
    }
    assert_eq!(
        answers.last(),
        Some(&Some(503)),
        "a stopping box answers its prober 503: {answers:?}"
    );
    let invite = raw_request("INVITE", target, local, "while-stopping");
    trunk
        .send_to(invite.as_bytes(), target)
        .await
        .expect("send");
    assert_eq!(
        answer_within(&trunk, "while-stopping", WAIT).await,
        Some(503),
        "a call to a stopping box is turned away at once"
    );
    assert!(!stopping.is_finished(), "the text was still being sent");
    stopping
        .await
        .expect("stop task")
        .expect("clean stop, after the modem confirmed the text");
    // Gone: nothing answers any more.
    let probe = raw_request("OPTIONS", target, local, "probe-gone");
    let _ = trunk.send_to(probe.as_bytes(), target).await;
    assert_eq!(
        answer_within(&trunk, "probe-gone", Duration::from_millis(300)).await,
        None
    );
    assert_eq!(
        harness.query_strings(
            "SELECT CASE WHEN state IN ('sent', 'delivered') THEN 'confirmed' ELSE state END FROM messages WHERE direction = 'out'"
        ),
        ["confirmed"],
        "the text in flight was confirmed before the daemon exited"
    );
    assert_eq!(
        harness.query_i64("SELECT count(*) FROM calls WHERE source = 'sip'"),
        1,
        "the 503 call is no call"
    );
}

#[tokio::test]
async fn a_burst_of_garbage_does_not_stop_the_next_call() {
    let harness = harness("");
    let running = harness.start().await;
    let target = udp4(&running);
    let socket = UdpSocket::bind("127.0.0.1:0").expect("bind");
    let mut junk: Vec<Vec<u8>> = vec![
        b"".to_vec(),
        b"\r\n\r\n".to_vec(),
        b"INVITE".to_vec(),
        b"INVITE sip:x SIP/2.0\r\nVia: nonsense\r\n\r\n".to_vec(),
        b"SIP/2.0 200 OK\r\nCall-ID: nobody\r\n\r\n".to_vec(),
        b"FOO sip:tb@127.0.0.1 SIP/2.0\r\nVia: SIP/2.0/UDP 127.0.0.1:9;branch=z9hG4bK1\r\nFrom: <sip:a@b>;tag=1\r\nTo: <sip:b@c>\r\nCall-ID: ext\r\nCSeq: 1 FOO\r\nContent-Length: 0\r\n\r\n".to_vec(),
        format!("INVITE sip:{CONTACT_USER}@127.0.0.1 SIP/2.0\r\nContent-Length: 99999\r\n\r\n").into_bytes(),
        vec![0xff; 70_000],
    ];
    // Pseudo-random bytes, the same every run.
    let mut state = 0x2545_f491_4f6c_dd1d_u64;
    for length in [1, 17, 200, 1400, 9000] {
        let bytes = (0..length)
            .map(|_| {
                state ^= state << 13;
                state ^= state >> 7;
                state ^= state << 17;
                state as u8
            })
            .collect();
        junk.push(bytes);
    }
    for _ in 0..20 {
        for datagram in &junk {
            // A datagram too large for loopback is refused by the kernel; that is fine.
            let _ = socket.send_to(datagram, target);
        }
    }
    let (status, log) = sipp(&harness, "divert_cancel.xml", target).await;
    assert_eq!(status, 0, "a good call after the garbage: {log}");
    assert_eq!(
        harness
            .wait_count("SELECT count(*) FROM calls WHERE source = 'sip'", 1)
            .await,
        1
    );
    running.stop().await.expect("clean stop");
}

/// Every datagram waiting on `socket` now, without waiting for more.
fn waiting(socket: &tokio::net::UdpSocket) -> Vec<String> {
    let mut buffer = vec![0u8; 65_536];
    let mut seen = Vec::new();
    while let Ok((len, _)) = socket.try_recv_from(&mut buffer) {
        seen.push(String::from_utf8_lossy(&buffer[..len]).into_owned());
    }
    seen
}

fn status_of(message: &str) -> Option<u16> {
    message.strip_prefix("SIP/2.0 ")?.get(..3)?.parse().ok()
}

fn call_id_of(message: &str) -> String {
    message
        .lines()
        .find_map(|line| line.strip_prefix("Call-ID: "))
        .unwrap_or_default()
        .to_string()
}

/// The first answer other than 100 to the call `call` (earlier calls' datagrams are skipped).
async fn answer_to(socket: &tokio::net::UdpSocket, call: &str) -> u16 {
    let wanted = format!("{call}@pbx.example");
    let mut buffer = vec![0u8; 65_536];
    loop {
        let (len, _) = tokio::time::timeout(WAIT, socket.recv_from(&mut buffer))
            .await
            .unwrap_or_else(|_| panic!("no answer to {call}"))
            .expect("receive");
        let message = String::from_utf8_lossy(&buffer[..len]);
        match status_of(&message) {
            Some(status) if status != 100 && call_id_of(&message) == wanted => return status,
            _ => {}
        }
    }
}

/// The caller of the ringing call `call` hangs up: CANCEL, then the 487 is acknowledged.
async fn hang_up(socket: &tokio::net::UdpSocket, target: SocketAddr, call: &str) {
    let local = socket.local_addr().expect("local address");
    let cancel = raw_request("CANCEL", target, local, call);
    socket
        .send_to(cancel.as_bytes(), target)
        .await
        .expect("send");
    let wanted = format!("{call}@pbx.example");
    let mut buffer = vec![0u8; 65_536];
    loop {
        let (len, _) = tokio::time::timeout(WAIT, socket.recv_from(&mut buffer))
            .await
            .unwrap_or_else(|_| panic!("no 487 for {call}"))
            .expect("receive");
        let message = String::from_utf8_lossy(&buffer[..len]);
        if status_of(&message) == Some(487) && call_id_of(&message) == wanted {
            break;
        }
    }
    let ack = raw_request("ACK", target, local, call);
    socket.send_to(ack.as_bytes(), target).await.expect("send");
}

async fn udp_from(ip: &str) -> tokio::net::UdpSocket {
    tokio::net::UdpSocket::bind((ip, 0)).await.expect("bind")
}

/// Sends an OPTIONS from `marker` (127.0.0.3, a stranger with its own limits) and waits for its
/// 403: everything sent to the endpoint's socket before it has then been dealt with (one socket,
/// read in order), and every answer to it is waiting in its peer's socket.
async fn flush(marker: &tokio::net::UdpSocket, target: SocketAddr, n: u32) {
    let local = marker.local_addr().expect("local address");
    let options = raw_request("OPTIONS", target, local, &format!("marker-{n}"));
    marker
        .send_to(options.as_bytes(), target)
        .await
        .expect("send");
    receive_until(marker, &format!("marker-{n}")).await;
}

#[tokio::test]
async fn an_invite_flood_from_the_trunk_gets_503_beyond_the_limit_and_no_missed_calls() {
    const LIMIT: usize = 5;
    const SENT: usize = 40;
    let harness = harness(&format!("max_invites_per_second = {LIMIT}"));
    let running = harness.start().await;
    let target = udp4(&running);
    let trunk = udp_from("127.0.0.1").await;
    let local = trunk.local_addr().expect("local address");
    let started = std::time::Instant::now();
    for n in 0..SENT {
        let invite = raw_request("INVITE", target, local, &format!("flood-{n}"));
        trunk
            .send_to(invite.as_bytes(), target)
            .await
            .expect("send");
    }
    // Every INVITE is answered: 180 (it rings) or 503 with Retry-After (over the limit).
    let mut ringing = std::collections::BTreeSet::new();
    let mut limited = std::collections::BTreeSet::new();
    let mut buffer = vec![0u8; 65_536];
    while ringing.len() + limited.len() < SENT {
        let (len, _) = tokio::time::timeout(WAIT, trunk.recv_from(&mut buffer))
            .await
            .unwrap_or_else(|_| panic!("{} ringing, {} limited", ringing.len(), limited.len()))
            .expect("receive");
        let message = String::from_utf8_lossy(&buffer[..len]).into_owned();
        match status_of(&message) {
            Some(180) => {
                ringing.insert(call_id_of(&message));
            }
            Some(503) => {
                assert!(message.contains("\r\nRetry-After: "), "{message}");
                assert!(message.contains("CSeq: 1 INVITE"), "{message}");
                limited.insert(call_id_of(&message));
            }
            Some(100) => {}
            other => panic!("unexpected {other:?}: {message}"),
        }
    }
    // The bucket holds one second's worth and refills at the rate while the flood is read.
    let allowed = LIMIT + (started.elapsed().as_secs_f64() * LIMIT as f64).ceil() as usize;
    assert!(
        (LIMIT..=allowed).contains(&ringing.len()),
        "{} calls rang; at most {allowed} may",
        ringing.len()
    );
    assert!(ringing.is_disjoint(&limited));
    // The callers hang up; each call that rang is one missed call, the refused ones none.
    for call in &limited {
        let ack = raw_request("ACK", target, local, call.trim_end_matches("@pbx.example"));
        trunk.send_to(ack.as_bytes(), target).await.expect("send");
    }
    for call in &ringing {
        hang_up(&trunk, target, call.trim_end_matches("@pbx.example")).await;
    }
    let rows = harness
        .wait_count(
            "SELECT count(*) FROM calls WHERE source = 'sip'",
            ringing.len() as i64,
        )
        .await;
    assert_eq!(rows, ringing.len() as i64);

    // The trunk is held to the limit, never banned: once a token is due its next call rings.
    let deadline = tokio::time::Instant::now() + WAIT;
    let mut attempt = 0;
    loop {
        attempt += 1;
        let call = format!("after-{attempt}");
        let invite = raw_request("INVITE", target, local, &call);
        trunk
            .send_to(invite.as_bytes(), target)
            .await
            .expect("send");
        let status = answer_to(&trunk, &call).await;
        if status == 180 {
            hang_up(&trunk, target, &call).await;
            break;
        }
        assert_eq!(status, 503);
        let ack = raw_request("ACK", target, local, &call);
        trunk.send_to(ack.as_bytes(), target).await.expect("send");
        assert!(
            tokio::time::Instant::now() < deadline,
            "the trunk was banned"
        );
        // A token comes every 1/LIMIT s: look again a little later.
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    running.stop().await.expect("clean stop");
    assert_eq!(
        harness.query_i64("SELECT count(*) FROM calls WHERE source = 'sip'"),
        ringing.len() as i64 + 1,
        "one missed call per call that rang, none for the 503s"
    );
}

#[tokio::test]
async fn a_request_flood_is_cut_to_the_limit_and_a_flooding_stranger_is_banned() {
    const LIMIT: usize = 10;
    let harness = harness(&format!(
        "max_requests_per_second = {LIMIT}\nmax_invites_per_second = 5"
    ));
    let running = harness.start().await;
    let target = udp4(&running);
    let trunk = udp_from("127.0.0.1").await;
    let stranger = udp_from("127.0.0.2").await;
    let marker = udp_from("127.0.0.3").await;

    // The trunk floods OPTIONS: a second's worth is answered, the rest dropped unanswered.
    let started = std::time::Instant::now();
    let local = trunk.local_addr().expect("local address");
    for n in 0..3 * LIMIT {
        let options = raw_request("OPTIONS", target, local, &format!("trunk-{n}"));
        trunk
            .send_to(options.as_bytes(), target)
            .await
            .expect("send");
    }
    flush(&marker, target, 1).await;
    let allowed = LIMIT + (started.elapsed().as_secs_f64() * LIMIT as f64).ceil() as usize;
    let answered = waiting(&trunk);
    assert!(
        answered.iter().all(|m| status_of(m) == Some(200)),
        "{answered:?}"
    );
    assert!(
        (LIMIT..=allowed).contains(&answered.len()),
        "{} answered; {LIMIT}..={allowed} expected",
        answered.len()
    );

    // A stranger floods: 403s while it has tokens, then nothing; each request over the limit
    // counts towards its ban as each 403 does (20 by default).
    let started = std::time::Instant::now();
    let local = stranger.local_addr().expect("local address");
    for n in 0..3 * LIMIT {
        let options = raw_request("OPTIONS", target, local, &format!("stranger-{n}"));
        stranger
            .send_to(options.as_bytes(), target)
            .await
            .expect("send");
    }
    flush(&marker, target, 2).await;
    let allowed = LIMIT + (started.elapsed().as_secs_f64() * LIMIT as f64).ceil() as usize;
    let refused = waiting(&stranger);
    assert!(
        refused.iter().all(|m| status_of(m) == Some(403)),
        "{refused:?}"
    );
    assert!(
        (LIMIT..=allowed).contains(&refused.len()),
        "{} refused; {LIMIT}..={allowed} expected",
        refused.len()
    );
    // Its bucket refills (a token every 1/LIMIT s), but it is banned: no answer any more. The
    // trunk, over the same limit a moment ago, is answered.
    tokio::time::sleep(Duration::from_millis(300)).await;
    let options = raw_request("OPTIONS", target, local, "stranger-after");
    stranger
        .send_to(options.as_bytes(), target)
        .await
        .expect("send");
    let local = trunk.local_addr().expect("local address");
    let options = raw_request("OPTIONS", target, local, "trunk-after");
    trunk
        .send_to(options.as_bytes(), target)
        .await
        .expect("send");
    let answer = receive_until(&trunk, "trunk-after").await;
    assert_eq!(status_of(&answer), Some(200), "{answer}");
    assert_eq!(
        waiting(&stranger),
        Vec::<String>::new(),
        "the stranger is banned"
    );
    running.stop().await.expect("clean stop");
}

/// An INVITE from `local` as `raw_request` writes it, with `edit` applied to its text.
fn edited_invite(
    target: SocketAddr,
    local: SocketAddr,
    call: &str,
    edit: impl Fn(String) -> String,
) -> Vec<u8> {
    edit(raw_request("INVITE", target, local, call)).into_bytes()
}

/// RFC 3261 §7 and §20: one value for From, To, Call-ID, CSeq, Max-Forwards and Content-Length,
/// a header section that ends in a blank line, no control characters outside the body. Such an
/// INVITE, even from the trunk, used to ring and become a call (and a text); it gets 400 now.
#[tokio::test]
async fn invites_that_are_not_well_formed_get_400_and_are_never_calls() {
    let harness = harness("");
    let running = harness.start().await;
    let target = udp4(&running);
    let trunk = udp_from("127.0.0.1").await;
    let local = trunk.local_addr().expect("local address");
    let second = |name: &str, value: &str| {
        let header = format!("{name}: {value}\r\n");
        move |text: String| {
            text.replacen(
                "Max-Forwards: 70\r\n",
                &format!("Max-Forwards: 70\r\n{header}"),
                1,
            )
        }
    };
    let cases: Vec<(&str, Vec<u8>)> = vec![
        (
            "cut off mid-header",
            edited_invite(target, local, "cut", |text| {
                text.replace("Content-Length: 0\r\n\r\n", "Content-Len")
            }),
        ),
        (
            "no blank line",
            edited_invite(target, local, "noblank", |text| {
                text.replace("Content-Length: 0\r\n\r\n", "Content-Length: 0\r\n")
            }),
        ),
        (
            "NUL in the Request-URI",
            edited_invite(target, local, "nul", |text| {
                text.replacen(
                    &format!("sip:{CONTACT_USER}@"),
                    &format!("sip:{CONTACT_USER}\0@"),
                    1,
                )
            }),
        ),
        (
            "a control character in a header",
            edited_invite(target, local, "control", second("Subject", "call\x07me")),
        ),
        (
            "two Call-IDs",
            edited_invite(
                target,
                local,
                "callid",
                second("Call-ID", "other@pbx.example"),
            ),
        ),
        (
            "two CSeqs",
            edited_invite(target, local, "cseq", second("CSeq", "2 INVITE")),
        ),
        (
            "two Froms",
            edited_invite(
                target,
                local,
                "from",
                second("From", "<sip:+447700900999@pbx.example>;tag=x"),
            ),
        ),
        (
            "two Froms in one header",
            edited_invite(target, local, "fromlist", |text| {
                text.replace(
                    ";tag=raw-fromlist\r\n",
                    ";tag=raw-fromlist, <sip:+447700900999@pbx.example>\r\n",
                )
            }),
        ),
        (
            "two Tos",
            edited_invite(
                target,
                local,
                "to",
                second("To", "<sip:+441632960999@pbx.example>"),
            ),
        ),
        (
            "two Max-Forwards",
            edited_invite(target, local, "maxfwd", second("Max-Forwards", "69")),
        ),
        (
            "two Content-Lengths",
            edited_invite(target, local, "length", second("Content-Length", "0")),
        ),
    ];
    for (what, bytes) in &cases {
        trunk.send_to(bytes, target).await.expect("send");
        let mut buffer = vec![0u8; 65_536];
        let (len, _) = tokio::time::timeout(WAIT, trunk.recv_from(&mut buffer))
            .await
            .unwrap_or_else(|_| panic!("{what}: no answer"))
            .expect("receive");
        let answer = String::from_utf8_lossy(&buffer[..len]).into_owned();
        assert_eq!(status_of(&answer), Some(400), "{what}: {answer}");
        assert!(answer.contains("CSeq: 1 INVITE\r\n"), "{what}: {answer}");
    }
    // A good call after them is the only call.
    let call = "good";
    trunk
        .send_to(
            raw_request("INVITE", target, local, call).as_bytes(),
            target,
        )
        .await
        .expect("send");
    assert_eq!(answer_to(&trunk, call).await, 180);
    hang_up(&trunk, target, call).await;
    assert_eq!(
        harness
            .wait_count("SELECT count(*) FROM calls WHERE source = 'sip'", 1)
            .await,
        1
    );
    running.stop().await.expect("clean stop");
    assert_eq!(
        harness.query_strings("SELECT call_key FROM calls"),
        ["good@pbx.example"]
    );
}

/// Two P-Asserted-Identity values (a landline, then a mobile): the mobile is texted, and the
/// raw caller stored with the call is the value it came from, not the first one seen.
#[tokio::test]
async fn the_stored_caller_is_the_number_that_was_texted() {
    let harness = harness("");
    let running = harness.start().await;
    let target = udp4(&running);
    let trunk = udp_from("127.0.0.1").await;
    let local = trunk.local_addr().expect("local address");
    let invite = edited_invite(target, local, "pai", |text| {
        text.replacen(
            "Max-Forwards: 70\r\n",
            "Max-Forwards: 70\r\nP-Asserted-Identity: <sip:+441632960000@pbx.example>\r\nP-Asserted-Identity: <tel:+447700900555>\r\n",
            1,
        )
    });
    trunk.send_to(&invite, target).await.expect("send");
    assert_eq!(answer_to(&trunk, "pai").await, 180);
    hang_up(&trunk, target, "pai").await;
    let sent = harness.modem.wait_sent(1, WAIT).await;
    assert_eq!(sent[0].to, "+447700900555");
    running.stop().await.expect("clean stop");
    assert_eq!(
        harness.query_strings("SELECT caller || ' ' || caller_raw FROM calls"),
        ["+447700900555 <tel:+447700900555>"]
    );
}

/// A TCP connection to the endpoint from `ip` (a loopback address of this box).
async fn tcp_from(ip: &str, target: SocketAddr) -> std::io::Result<tokio::net::TcpStream> {
    let socket = tokio::net::TcpSocket::new_v4()?;
    socket.bind(SocketAddr::new(ip.parse().expect("an address"), 0))?;
    socket.connect(target).await
}

/// Whether the endpoint closed `stream` (end of stream or reset) within `within`.
async fn closed_within(stream: &mut tokio::net::TcpStream, within: Duration) -> bool {
    use tokio::io::AsyncReadExt;
    let mut buffer = [0u8; 1024];
    let deadline = tokio::time::Instant::now() + within;
    loop {
        match tokio::time::timeout_at(deadline, stream.read(&mut buffer)).await {
            Err(_) => return false,
            Ok(Ok(0)) | Ok(Err(_)) => return true,
            // An answer (none is expected): keep reading until the end.
            Ok(Ok(_)) => {}
        }
    }
}

/// 256 idle TCP connections from any address used to refuse every new one, the trunk's
/// included, for as long as the attacker liked (the allow list was not checked at accept, and
/// any byte reset the idle timer). Now: strangers are closed at accept, one address holds a
/// few connections at most, and the trunk's call gets through.
#[tokio::test]
async fn idle_tcp_connections_from_one_address_cannot_keep_the_trunk_out() {
    use tokio::io::AsyncWriteExt;
    // 127.0.0.2 may call (sip.allow), so only the per-address limit stops it.
    let harness = harness("allow = [\"127.0.0.2\"]");
    let running = harness.start().await;
    let target = udp4(&running);
    let mut held = Vec::new();
    for n in 0..300 {
        let Ok(mut stream) = tcp_from("127.0.0.2", target).await else {
            continue;
        };
        if n % 2 == 0 {
            // Half a message, never finished.
            let _ = stream
                .write_all(
                    b"INVITE sip:x@127.0.0.1 SIP/2.0\r\nVia: SIP/2.0/TCP 127.0.0.2;branch=z9hG4bK-",
                )
                .await;
        }
        held.push(stream);
    }
    // A stranger (127.0.0.3 is neither the trunk nor in sip.allow) is closed at once.
    let mut stranger = tcp_from("127.0.0.3", target).await.expect("connect");
    assert!(
        closed_within(&mut stranger, WAIT).await,
        "a stranger's connection stays open"
    );
    // The trunk calls over TCP while those are held open.
    let (status, log) = Sipp {
        scenario: "divert_cancel.xml",
        target,
        local_ip: "127.0.0.1",
        tcp: true,
        calls: 1,
        rate: 10,
        args: &[],
    }
    .run(harness.dir.path())
    .await;
    assert_eq!(status, 0, "the trunk's call over TCP: {log}");
    assert_eq!(
        harness
            .wait_count("SELECT count(*) FROM calls WHERE source = 'sip'", 1)
            .await,
        1
    );
    // Of the 300, only a few were kept; the rest were closed.
    let mut open = 0;
    for stream in &mut held {
        if !closed_within(stream, Duration::from_millis(50)).await {
            open += 1;
        }
    }
    assert!(open <= 16, "{open} connections from one address kept open");
    running.stop().await.expect("clean stop");
}

/// A message must be finished within a deadline of its first byte: a byte now and then used to
/// keep a connection open for ever (every byte reset the idle timer).
#[tokio::test]
async fn a_tcp_message_that_never_ends_is_cut_off_however_slowly_it_comes() {
    use tokio::io::AsyncWriteExt;
    let harness = harness("");
    let running = harness.start().await;
    let target = udp4(&running);
    let mut stream = tcp_from("127.0.0.1", target).await.expect("connect");
    stream
        .write_all(b"OPTIONS sip:x@127.0.0.1 SIP/2.0\r\nX-Slow: ")
        .await
        .expect("write");
    // One byte a second, well inside any idle timer, for up to a minute.
    let mut closed = false;
    for _ in 0..60 {
        if stream.write_all(b"y").await.is_err()
            || closed_within(&mut stream, Duration::from_secs(1)).await
        {
            closed = true;
            break;
        }
    }
    assert!(
        closed,
        "a message that never ends kept its connection open for a minute"
    );
    running.stop().await.expect("clean stop");
}

/// Sends `invites` INVITEs from `trunk` (Call-IDs `{prefix}-N`) in batches, reading the answers
/// in between; returns the Call-IDs that rang (180) and how many got 503.
async fn flood(
    trunk: &tokio::net::UdpSocket,
    target: SocketAddr,
    prefix: &str,
    invites: usize,
) -> (std::collections::BTreeSet<String>, usize) {
    // Small enough that the answers to a batch fit this socket's receive buffer.
    const BATCH: usize = 50;
    let local = trunk.local_addr().expect("local address");
    let mut ringing = std::collections::BTreeSet::new();
    let mut refused = std::collections::BTreeSet::new();
    let mut buffer = vec![0u8; 65_536];
    for start in (0..invites).step_by(BATCH) {
        let end = (start + BATCH).min(invites);
        for n in start..end {
            let invite = raw_request("INVITE", target, local, &format!("{prefix}-{n}"));
            trunk
                .send_to(invite.as_bytes(), target)
                .await
                .expect("send");
        }
        // Until every INVITE of the batch has its 180 or 503 (one lost in a full socket buffer
        // is given up on after a moment).
        while ringing.len() + refused.len() < end {
            let Ok(received) =
                tokio::time::timeout(Duration::from_secs(1), trunk.recv_from(&mut buffer)).await
            else {
                break;
            };
            let (len, _) = received.expect("receive");
            let message = String::from_utf8_lossy(&buffer[..len]);
            match status_of(&message) {
                Some(180) => {
                    ringing.insert(call_id_of(&message));
                }
                Some(503) => {
                    assert!(message.contains("\r\nRetry-After: "), "{message}");
                    refused.insert(call_id_of(&message));
                }
                _ => {}
            }
        }
    }
    (ringing, refused.len())
}

/// Each INVITE rang for up to 30 s and the default rate let 2000 a second through, so one
/// allowed source could hold about 60,000 calls at once (16 MB to 179 MB, and it stayed). Now
/// at most `sip.max_ringing_calls` (100 by default) ring at once; the rest get 503 with
/// Retry-After, and the daemon's memory stays within a few MB of where it started. (The bench,
/// `cargo bench --bench sip_flood`, sends 60,000.)
#[tokio::test]
async fn an_invite_flood_rings_at_most_the_configured_calls_and_memory_stays_bounded() {
    const INVITES: usize = 3_000;
    const DEFAULT_CAP: usize = 100;
    // No call rings out during the flood: every call that rang is ringing at its end.
    let harness = harness("max_ring_seconds = 600");
    let daemon = common::process::DaemonProcess::spawn(&harness.write_config()).await;
    let target = *daemon
        .sip
        .iter()
        .find(|address| address.is_ipv4())
        .expect("SIP on 127.0.0.1");
    let trunk = udp_from("127.0.0.1").await;
    let started = daemon.memory();
    let (ringing, refused) = flood(&trunk, target, "flood", INVITES).await;
    let peak = daemon.memory();
    eprintln!(
        "{INVITES} INVITEs: {} rang, {refused} got 503; daemon RSS {:.1} MiB (peak {:.1} MiB, {:.1} MiB at start)",
        ringing.len(),
        peak.rss_mib(),
        peak.peak_mib(),
        started.rss_mib()
    );
    assert!(
        (1..=DEFAULT_CAP).contains(&ringing.len()),
        "{} calls rang at once",
        ringing.len()
    );
    assert!(refused >= INVITES / 2, "{refused} refused");
    assert!(
        peak.peak_mib() < started.rss_mib() + 20.0,
        "peak {:.1} MiB from {:.1} MiB at start",
        peak.peak_mib(),
        started.rss_mib()
    );
    // The callers hang up: each call that rang is one missed call.
    for call in &ringing {
        hang_up(&trunk, target, call.trim_end_matches("@pbx.example")).await;
    }
    assert_eq!(
        harness
            .wait_count(
                "SELECT count(*) FROM calls WHERE source = 'sip'",
                ringing.len() as i64
            )
            .await,
        ringing.len() as i64
    );
    // Once they have ended, new calls ring again.
    let (again, _) = flood(&trunk, target, "after", 10).await;
    assert_eq!(again.len(), 10, "calls ring again after the flood");
    for call in &again {
        hang_up(&trunk, target, call.trim_end_matches("@pbx.example")).await;
    }
    let after = daemon.memory();
    eprintln!(
        "after the flood: daemon RSS {:.1} MiB (peak {:.1} MiB)",
        after.rss_mib(),
        after.peak_mib()
    );
    assert!(
        after.rss_mib() < started.rss_mib() + 20.0,
        "{:.1} MiB after, from {:.1} MiB at start",
        after.rss_mib(),
        started.rss_mib()
    );
    daemon.stop().await;
}

/// A call already answered as missed (487) used to be dropped when the daemon's queue was full
/// ("missed-call queue full: this call is not recorded"; 308 of 15,000 in one load run). Now a
/// new INVITE gets 503 with Retry-After while the queue has no place for it, so the trunk can
/// fail over, and every call answered 487 is recorded.
#[tokio::test]
async fn a_call_answered_as_missed_is_never_dropped_when_the_daemon_is_behind() {
    // The daemon's event queue holds 256, this port's missed-call queue 8 (4096 by default):
    // 320 calls while the daemon cannot write are more than both hold.
    const CALLS: usize = 320;
    let harness = harness("");
    let running = harness
        .start_with(textback::daemon::RunOptions {
            sip_missed_queue: Some(8),
            ..Default::default()
        })
        .await;
    let target = udp4(&running);
    let trunk = udp_from("127.0.0.1").await;
    let local = trunk.local_addr().expect("local address");
    // The daemon falls behind: another connection holds the database's write lock, so the
    // daemon's first missed call waits for it (its busy timeout is 5 s; the calls below take
    // well under that) and the queues behind it fill.
    let blocker = rusqlite::Connection::open(harness.database()).expect("open the database");
    blocker
        .execute_batch("BEGIN IMMEDIATE")
        .expect("take the write lock");
    let mut missed = Vec::new();
    let mut refused = 0;
    for n in 0..CALLS {
        let call = format!("behind-{n}");
        trunk
            .send_to(
                raw_request("INVITE", target, local, &call).as_bytes(),
                target,
            )
            .await
            .expect("send");
        match answer_to(&trunk, &call).await {
            180 => {
                hang_up(&trunk, target, &call).await;
                missed.push(call);
            }
            503 => {
                let ack = raw_request("ACK", target, local, &call);
                trunk.send_to(ack.as_bytes(), target).await.expect("send");
                refused += 1;
            }
            other => panic!("{call}: {other}"),
        }
    }
    eprintln!(
        "{CALLS} calls while the daemon could not write: {} answered 487, {refused} refused with 503",
        missed.len()
    );
    blocker.execute_batch("ROLLBACK").expect("release the lock");
    drop(blocker);
    let rows = harness
        .wait_count(
            "SELECT count(*) FROM calls WHERE source = 'sip'",
            missed.len() as i64,
        )
        .await;
    assert_eq!(
        rows,
        missed.len() as i64,
        "{} calls answered 487, {rows} recorded, {refused} refused with 503",
        missed.len()
    );
    assert!(
        refused > 0,
        "the queues never filled: the test proves nothing"
    );
    running.stop().await.expect("clean stop");
}
