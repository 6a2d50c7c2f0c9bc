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

/// A harness whose config has the SIP trunk; the plumbing profile is the default.
fn harness(extra: &str) -> Harness {
    let dir = tempfile::tempdir().expect("temporary directory");
    let modem = VirtualModem::start(Options::default()).expect("virtual modem");
    let text = common::config_text(modem.path(), &dir.path().join("textback.db"))
        .replace("closing_message", "default = true\nclosing_message")
        + &sip_config(extra);
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
