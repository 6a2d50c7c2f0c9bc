//! A fleet of textback boxes on one machine, for tests/fleet.rs and benches/fleet.rs: network
//! namespaces (`ip netns`, Debian package iproute2) joined by veth pairs, kamailio with the
//! shipped `config/kamailio/dispatcher.cfg` in one of them, and a textback box (`textback run`
//! as its own process, with its own virtual modem on a pseudo-terminal and its own database) in
//! each of the others. Only addresses of 198.18.0.0/15 (RFC 2544's benchmarking range) are used,
//! each run with a /24 of its own:
//!
//! ```text
//!  this process (SIPp, webhook receiver, Prometheus)  .1 ──veth── .2  kamailio (namespace -k)
//!                                                                 .5 ──veth── .6   box 0 (-b0)
//!                                                                 .9 ──veth── .10  box 1 (-b1)
//! ```
//!
//! The kamailio namespace routes between its links, and this process reaches the /24 through it.
//! Namespaces, links and the route go away when the [`Net`] is dropped, a failed test included.
#![allow(dead_code)]

use std::net::{Ipv4Addr, SocketAddr, SocketAddrV4};
use std::os::unix::process::CommandExt;
use std::path::{Path, PathBuf};
use std::process::Stdio;
use std::time::{Duration, Instant, SystemTime};

use textback::modem::virtual_modem::{Options, VirtualModem};

/// Generous: reached only when something is broken.
const READY_WAIT: Duration = Duration::from_secs(30);

const IP: &str = "/usr/sbin/ip";
const KAMAILIO: &str = "/usr/sbin/kamailio";
pub const SIPP: &str = "/usr/bin/sipp";
pub const PROMETHEUS: &str = "/usr/bin/prometheus";
pub const PROMTOOL: &str = "/usr/bin/promtool";

/// The business numbers of the fleet's two profiles. They hash (kamailio's algorithm 7 over the
/// number) to different boxes of two, so each box serves one business while both are up.
pub const PLUMBING: &str = "+441632960123";
pub const ELECTRIC: &str = "+441632960999";
/// The Request-URI user every box takes calls for (dispatcher.cfg's TEXTBACK_USER default).
pub const TEXTBACK_USER: &str = "textback";
/// The token every box's /metrics takes, as one Prometheus scrapes them all.
pub const API_TOKEN: &str = "fleet-test-token-0123456789abcdef0123456789abcdef";
pub const WEBHOOK_SECRET: &str = "fleet-webhook-secret-0123456789ab";

pub fn manifest(path: &str) -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join(path)
}

/// The path of a tool the fleet needs; a missing one fails the test with what to install.
pub fn tool(path: &str, package: &str) -> PathBuf {
    let path = PathBuf::from(path);
    assert!(
        path.exists(),
        "{} is not installed: run `apt-get install {package}` (scripts/test.sh does)",
        path.display()
    );
    path
}

/// Runs `ip` with `args`; panics with its error output when it fails.
fn ip(args: &[&str]) {
    let output = std::process::Command::new(tool(IP, "iproute2"))
        .args(args)
        .output()
        .expect("run ip");
    assert!(
        output.status.success(),
        "ip {}: {}",
        args.join(" "),
        String::from_utf8_lossy(&output.stderr)
    );
}

/// The namespaces, links and route of one fleet.
pub struct Net {
    /// Third octet of this fleet's 198.18.<n>.0/24.
    pub n: u8,
    /// `tbf<n>`: the prefix of every namespace and link of this fleet.
    pub prefix: String,
    pub boxes: usize,
}

impl Net {
    /// Makes the namespaces (kamailio's and one per box) and links them. Claims the first free
    /// /24 by creating its kamailio namespace (which fails if another run holds it).
    pub fn create(boxes: usize) -> Net {
        tool(IP, "iproute2");
        let taken = std::process::Command::new(IP)
            .args(["-4", "route", "show"])
            .output()
            .map(|o| String::from_utf8_lossy(&o.stdout).into_owned())
            .unwrap_or_default();
        for n in 1..=250u8 {
            let prefix = format!("tbf{n}");
            if taken.contains(&format!("198.18.{n}.0/24"))
                || Path::new(&format!("/run/netns/{prefix}-k")).exists()
            {
                continue;
            }
            let claimed = std::process::Command::new(IP)
                .args(["netns", "add", &format!("{prefix}-k")])
                .stderr(Stdio::null())
                .status()
                .is_ok_and(|s| s.success());
            if !claimed {
                continue;
            }
            let net = Net { n, prefix, boxes };
            net.link();
            return net;
        }
        panic!("no free 198.18.<n>.0/24 for a test fleet: delete stale namespaces (ip netns list)");
    }

    pub fn kamailio_ns(&self) -> String {
        format!("{}-k", self.prefix)
    }

    pub fn box_ns(&self, i: usize) -> String {
        format!("{}-b{i}", self.prefix)
    }

    /// This process's address on the fleet's network: the trunk, as the fleet sees it.
    pub fn root_ip(&self) -> Ipv4Addr {
        Ipv4Addr::new(198, 18, self.n, 1)
    }

    /// kamailio's address (towards this process; the boxes see it as their proxy).
    pub fn kamailio_ip(&self) -> Ipv4Addr {
        Ipv4Addr::new(198, 18, self.n, 2)
    }

    /// Box `i`'s address.
    pub fn box_ip(&self, i: usize) -> Ipv4Addr {
        Ipv4Addr::new(198, 18, self.n, 4 * i as u8 + 6)
    }

    fn link(&self) {
        let (p, n) = (&self.prefix, self.n);
        let k = self.kamailio_ns();
        ip(&["-n", &k, "link", "set", "lo", "up"]);
        let root = format!("{p}r");
        ip(&[
            "link", "add", &root, "type", "veth", "peer", "name", "up0", "netns", &k,
        ]);
        ip(&["addr", "add", &format!("198.18.{n}.1/30"), "dev", &root]);
        ip(&["link", "set", &root, "up"]);
        ip(&[
            "-n",
            &k,
            "addr",
            "add",
            &format!("198.18.{n}.2/30"),
            "dev",
            "up0",
        ]);
        ip(&["-n", &k, "link", "set", "up0", "up"]);
        ip(&[
            "route",
            "add",
            &format!("198.18.{n}.0/24"),
            "via",
            &format!("198.18.{n}.2"),
        ]);
        ip(&[
            "netns",
            "exec",
            &k,
            "sysctl",
            "-q",
            "-w",
            "net.ipv4.ip_forward=1",
        ]);
        for i in 0..self.boxes {
            let b = self.box_ns(i);
            ip(&["netns", "add", &b]);
            ip(&["-n", &b, "link", "set", "lo", "up"]);
            let inside = format!("b{i}");
            ip(&[
                "-n", &k, "link", "add", &inside, "type", "veth", "peer", "name", "eth0", "netns",
                &b,
            ]);
            let gateway = Ipv4Addr::new(198, 18, n, 4 * i as u8 + 5);
            ip(&[
                "-n",
                &k,
                "addr",
                "add",
                &format!("{gateway}/30"),
                "dev",
                &inside,
            ]);
            ip(&["-n", &k, "link", "set", &inside, "up"]);
            ip(&[
                "-n",
                &b,
                "addr",
                "add",
                &format!("{}/30", self.box_ip(i)),
                "dev",
                "eth0",
            ]);
            ip(&["-n", &b, "link", "set", "eth0", "up"]);
            ip(&[
                "-n",
                &b,
                "route",
                "add",
                "default",
                "via",
                &gateway.to_string(),
            ]);
        }
    }
}

impl Drop for Net {
    fn drop(&mut self) {
        // Deleting a namespace deletes the links in it, and with them their peers (the root
        // link's peer is in kamailio's namespace) and the route through it.
        for i in 0..self.boxes {
            let _ = std::process::Command::new(IP)
                .args(["netns", "del", &self.box_ns(i)])
                .status();
        }
        let _ = std::process::Command::new(IP)
            .args(["netns", "del", &self.kamailio_ns()])
            .status();
        let _ = std::process::Command::new(IP)
            .args(["link", "del", &format!("{}r", self.prefix)])
            .stderr(Stdio::null())
            .status();
    }
}

/// kamailio with config/kamailio/dispatcher.cfg in the fleet's kamailio namespace.
pub struct Kamailio {
    child: std::process::Child,
    pub address: SocketAddr,
    pub log: PathBuf,
    /// Each line of its log with when this process read it (Unix seconds; it is read every
    /// 10 ms, and kamailio writes its log unbuffered).
    lines: std::sync::Arc<std::sync::Mutex<Vec<(f64, String)>>>,
    tail: tokio::task::JoinHandle<()>,
}

/// How the test's kamailio differs from the shipped defaults.
pub struct DispatcherTimers {
    /// FR_TIMER, ms: how long a box has to send 100 Trying.
    pub fr_timer_ms: u32,
    /// FR_INV_TIMER, ms: how long a call may ring at a box.
    pub fr_inv_timer_ms: u32,
    /// PING_INTERVAL, s.
    pub ping_interval_s: u32,
}

impl Kamailio {
    /// Starts kamailio for the boxes `0..boxes` of `net` and waits until it answers.
    pub async fn start(net: &Net, dir: &Path, boxes: usize, timers: &DispatcherTimers) -> Kamailio {
        let list = dir.join("boxes.list");
        let lines: String = (0..boxes)
            .map(|i| format!("1 sip:{}:5060 0 0\n", net.box_ip(i)))
            .collect();
        std::fs::write(&list, lines).expect("write boxes.list");
        let runtime = dir.join("kamailio");
        std::fs::create_dir_all(&runtime).expect("kamailio runtime dir");
        let log = dir.join("kamailio.log");
        let address = SocketAddr::new(net.kamailio_ip().into(), 5060);
        let child = std::process::Command::new(tool(IP, "iproute2"))
            .args(["netns", "exec", &net.kamailio_ns()])
            .arg(tool(KAMAILIO, "kamailio"))
            .arg("-f")
            .arg(manifest("config/kamailio/dispatcher.cfg"))
            .arg("-A")
            .arg(format!("BOXES_LIST=\"{}\"", list.display()))
            .arg("-A")
            .arg(format!("TRUNKS=\"{}/32\"", net.root_ip()))
            .arg("-A")
            .arg(format!("FR_TIMER={}", timers.fr_timer_ms))
            .arg("-A")
            .arg(format!("FR_INV_TIMER={}", timers.fr_inv_timer_ms))
            .arg("-A")
            .arg(format!("PING_INTERVAL={}", timers.ping_interval_s))
            .args(["-l", &format!("udp:{address}")])
            .args(["-DD", "-E", "-m", "64", "-M", "8"])
            .arg("-Y")
            .arg(&runtime)
            .arg("-P")
            .arg(runtime.join("kamailio.pid"))
            .arg("-w")
            .arg(&runtime)
            .stdin(Stdio::null())
            .stdout(Stdio::null())
            .stderr(std::fs::File::create(&log).expect("kamailio log"))
            .process_group(0)
            .spawn()
            .expect("start kamailio");
        let lines = std::sync::Arc::new(std::sync::Mutex::new(Vec::new()));
        let tail = tokio::spawn(tail(log.clone(), lines.clone()));
        let kamailio = Kamailio {
            child,
            address,
            log,
            lines,
            tail,
        };
        // kamailio answers an OPTIONS without a user itself once it listens.
        let socket = tokio::net::UdpSocket::bind(SocketAddr::new(net.root_ip().into(), 0))
            .await
            .expect("bind");
        let deadline = Instant::now() + READY_WAIT;
        let mut buffer = vec![0u8; 65_536];
        for attempt in 0.. {
            let local = socket.local_addr().expect("local address");
            let probe = format!(
                "OPTIONS sip:{address} SIP/2.0\r\nVia: SIP/2.0/UDP {local};branch=z9hG4bK-ready-{attempt}\r\nFrom: <sip:test@{local}>;tag=ready\r\nTo: <sip:{address}>\r\nCall-ID: ready-{attempt}\r\nCSeq: 1 OPTIONS\r\nMax-Forwards: 70\r\nContent-Length: 0\r\n\r\n"
            );
            let _ = socket.send_to(probe.as_bytes(), address).await;
            // kamailio takes a few hundred ms to start its processes; each try waits for them.
            if let Ok(Ok((len, _))) =
                tokio::time::timeout(Duration::from_millis(200), socket.recv_from(&mut buffer))
                    .await
                && buffer[..len].starts_with(b"SIP/2.0 200")
            {
                return kamailio;
            }
            assert!(
                Instant::now() < deadline,
                "kamailio did not answer:\n{}",
                kamailio.log()
            );
        }
        unreachable!("the loop returns or panics")
    }

    pub fn log(&self) -> String {
        std::fs::read_to_string(&self.log).unwrap_or_default()
    }

    /// The log lines read so far, each with when it was read.
    pub fn lines(&self) -> Vec<(f64, String)> {
        self.lines.lock().map(|l| l.clone()).unwrap_or_default()
    }

    /// Whether the log has whole lines not read yet.
    pub fn lines_behind(&self) -> bool {
        let written = self.log().matches('\n').count();
        self.lines.lock().map(|l| l.len()).unwrap_or_default() < written
    }
}

/// Reads `path` as it grows, keeping each whole line with when it was read.
async fn tail(path: PathBuf, lines: std::sync::Arc<std::sync::Mutex<Vec<(f64, String)>>>) {
    let mut offset = 0usize;
    let mut partial = String::new();
    loop {
        if let Ok(bytes) = tokio::fs::read(&path).await
            && bytes.len() > offset
        {
            let now = unix(SystemTime::now());
            partial.push_str(&String::from_utf8_lossy(&bytes[offset..]));
            offset = bytes.len();
            while let Some(end) = partial.find('\n') {
                let line: String = partial.drain(..=end).collect();
                if let Ok(mut all) = lines.lock() {
                    all.push((now, line.trim_end().to_string()));
                }
            }
        }
        // Polling a file: 10 ms is the resolution of the times kept.
        tokio::time::sleep(Duration::from_millis(10)).await;
    }
}

impl Drop for Kamailio {
    fn drop(&mut self) {
        self.tail.abort();
        // Its own process group (process_group(0) above): the main process and its children.
        let group = nix::unistd::Pid::from_raw(self.child.id() as i32);
        let _ = nix::sys::signal::killpg(group, nix::sys::signal::Signal::SIGKILL);
        let _ = self.child.wait();
    }
}

/// One textback box: `textback run` in its namespace, its virtual modem, database and log.
pub struct TextbackBox {
    pub name: String,
    pub namespace: String,
    pub ip: Ipv4Addr,
    pub modem: VirtualModem,
    pub config: PathBuf,
    pub database: PathBuf,
    pub log: PathBuf,
    child: Option<tokio::process::Child>,
}

/// What every box's config says beyond its own name, address, modem and database.
pub struct BoxSettings {
    /// The address of the webhook every lead goes to (one CRM for the fleet), if any.
    pub webhook: Option<String>,
    /// `sip.max_ring_seconds`.
    pub max_ring_seconds: u32,
}

impl TextbackBox {
    /// Writes box `i`'s config and database (with the fleet's API token) in `dir`; does not
    /// start it.
    pub async fn prepare(
        net: &Net,
        i: usize,
        dir: &Path,
        settings: &BoxSettings,
        modem: Options,
    ) -> TextbackBox {
        let name = format!("box-{}", (b'a' + i as u8) as char);
        let modem = VirtualModem::start(modem).expect("virtual modem");
        let database = dir.join(format!("{name}.db"));
        let config = dir.join(format!("{name}.toml"));
        let log = dir.join(format!("{name}.log"));
        let ip = net.box_ip(i);
        let recipient = match &settings.webhook {
            Some(url) => format!("\n[[profile.recipient]]\nname = \"CRM\"\nwebhook = \"{url}\"\n"),
            None => String::new(),
        };
        let text = format!(
            r#"
[box]
name = "{name}"

[storage]
database = "{database}"

[dashboard]
listen = "{ip}:8080"

[limits]
texts_per_hour = 100000
texts_per_day = 100000

[notify.webhook]
secret = "{WEBHOOK_SECRET}"
timeout_seconds = 5

[[modem]]
id = "main"
port = "{port}"

[[profile]]
id = "plumbing"
name = "Brightwater Plumbing"
numbers = ["{PLUMBING}"]
default = true
texts_per_hour = 100000
texts_per_day = 100000
closing_message = "Thanks {{name}}, {{business}} will call you back."

[[profile.question]]
id = "name"
ask = "Who am I speaking to?"

[[profile.question]]
id = "reason"
ask = "What do you need help with?"
{recipient}
[[profile]]
id = "electric"
name = "Sparks Electrical"
numbers = ["{ELECTRIC}"]
texts_per_hour = 100000
texts_per_day = 100000
closing_message = "Thanks {{name}}, {{business}} will call you back."

[[profile.question]]
id = "name"
ask = "Who am I speaking to?"

[[profile.question]]
id = "reason"
ask = "What do you need help with?"
{recipient}
[[sip]]
name = "dispatcher"
registrar = "{kamailio}"
username = "textback"
password = "not-used-without-register"
register = false
listen = ["{ip}"]
local_port = 5060
contact_user = "{TEXTBACK_USER}"
max_ring_seconds = {ring}
"#,
            database = database.display(),
            port = modem.path().display(),
            kamailio = net.kamailio_ip(),
            ring = settings.max_ring_seconds,
        );
        std::fs::write(&config, text).expect("write the box's config");
        // The fleet's API token, as `textback dashboard api-token --stdin` sets it.
        let mut command = tokio::process::Command::new(env!("CARGO_BIN_EXE_textback"));
        command
            .args(["dashboard", "api-token", "--stdin", "--config"])
            .arg(&config)
            .env_remove("TEXTBACK_CONFIG")
            .stdin(Stdio::piped())
            .stdout(Stdio::piped())
            .stderr(Stdio::piped());
        let mut child = command.spawn().expect("run textback dashboard api-token");
        {
            use tokio::io::AsyncWriteExt;
            let mut stdin = child.stdin.take().expect("stdin");
            stdin
                .write_all(format!("{API_TOKEN}\n").as_bytes())
                .await
                .expect("write the token");
        }
        let output = child.wait_with_output().await.expect("api-token output");
        assert!(
            output.status.success(),
            "textback dashboard api-token --stdin: {}",
            String::from_utf8_lossy(&output.stderr)
        );
        TextbackBox {
            name,
            namespace: net.box_ns(i),
            ip,
            modem,
            config,
            database,
            log,
            child: None,
        }
    }

    pub fn dashboard(&self) -> SocketAddr {
        SocketAddr::V4(SocketAddrV4::new(self.ip, 8080))
    }

    pub fn sip(&self) -> SocketAddr {
        SocketAddr::V4(SocketAddrV4::new(self.ip, 5060))
    }

    /// Starts `textback run` in the box's namespace (its log appended to) and waits until its
    /// dashboard answers over the fleet's network (the SIP sockets are bound before it listens).
    pub async fn start(&mut self) {
        let log = std::fs::File::options()
            .create(true)
            .append(true)
            .open(&self.log)
            .expect("box log");
        // `ip netns exec` enters the namespace and execs textback: the child is textback.
        let child = tokio::process::Command::new(tool(IP, "iproute2"))
            .args(["netns", "exec", &self.namespace])
            .arg(env!("CARGO_BIN_EXE_textback"))
            .args(["run", "--log-format", "json", "--config"])
            .arg(&self.config)
            .env_remove("TEXTBACK_CONFIG")
            .env("RUST_LOG", "info")
            .stdin(Stdio::null())
            .stdout(Stdio::null())
            .stderr(log)
            .kill_on_drop(true)
            .spawn()
            .expect("start textback");
        self.child = Some(child);
        let http = reqwest::Client::new();
        let url = format!("http://{}/healthz", self.dashboard());
        let deadline = Instant::now() + READY_WAIT;
        loop {
            if let Ok(response) = http
                .get(&url)
                .timeout(Duration::from_millis(500))
                .send()
                .await
                && response.status().is_success()
            {
                return;
            }
            if let Some(child) = self.child.as_mut()
                && let Ok(Some(status)) = child.try_wait()
            {
                panic!("{} exited at start ({status}):\n{}", self.name, self.log());
            }
            assert!(
                Instant::now() < deadline,
                "{} did not start:\n{}",
                self.name,
                self.log()
            );
            // The daemon starts in well under a second; each poll is one HTTP request.
            tokio::time::sleep(Duration::from_millis(50)).await;
        }
    }

    /// SIGKILL: the box vanishes mid-run, as at a power cut. Returns when it is gone.
    pub async fn kill(&mut self) -> SystemTime {
        let mut child = self.child.take().expect("the box runs");
        child.start_kill().expect("SIGKILL");
        let at = SystemTime::now();
        child.wait().await.expect("the box's exit");
        at
    }

    /// SIGTERM, and waits for a clean exit.
    pub async fn stop(&mut self) {
        let Some(mut child) = self.child.take() else {
            return;
        };
        if let Some(pid) = child.id() {
            let _ = nix::sys::signal::kill(
                nix::unistd::Pid::from_raw(pid as i32),
                nix::sys::signal::Signal::SIGTERM,
            );
        }
        let status = tokio::time::timeout(Duration::from_secs(90), child.wait())
            .await
            .expect("the box stops")
            .expect("its exit status");
        assert!(
            status.success(),
            "{} exited {status}:\n{}",
            self.name,
            self.log()
        );
    }

    pub fn log(&self) -> String {
        std::fs::read_to_string(&self.log).unwrap_or_default()
    }

    /// Rows of a one-column query on the box's database (read-only; the box may be running).
    pub fn query_strings(&self, sql: &str) -> Vec<String> {
        let connection = textback::store::open_read_only(&self.database).expect("open database");
        let mut statement = connection.prepare(sql).expect(sql);
        statement
            .query_map([], |row| row.get::<_, String>(0))
            .expect(sql)
            .collect::<Result<_, _>>()
            .expect(sql)
    }
}

/// One call SIPp makes: the business it diverts from, and the caller.
pub struct Call {
    pub business: &'static str,
    pub caller: String,
}

/// `n` calls alternating between the two businesses, each from its own mobile number
/// (+447700900000 + `first` + k), so each caller is texted at most once.
pub fn calls(n: usize, first: usize) -> Vec<Call> {
    (0..n)
        .map(|k| Call {
            business: if k % 2 == 0 { PLUMBING } else { ELECTRIC },
            caller: format!("+4477009{:05}", first + k),
        })
        .collect()
}

/// What SIPp reported.
pub struct SippRun {
    pub status: i32,
    pub successful: u64,
    pub failed: u64,
    pub wall: Duration,
    pub errors: String,
}

/// Sends `calls` through kamailio from this process's fleet address at `rate` calls a second
/// with `scenario` (tests/sipp/).
pub async fn sipp(net: &Net, dir: &Path, scenario: &str, calls: &[Call], rate: u32) -> SippRun {
    static RUNS: std::sync::atomic::AtomicUsize = std::sync::atomic::AtomicUsize::new(0);
    let run = RUNS.fetch_add(1, std::sync::atomic::Ordering::Relaxed);
    let work = dir.join(format!("sipp-{run}"));
    std::fs::create_dir_all(&work).expect("sipp dir");
    let mut injection = String::from("SEQUENTIAL\n");
    for call in calls {
        injection.push_str(&format!("{};{}\n", call.business, call.caller));
    }
    let csv = work.join("calls.csv");
    std::fs::write(&csv, injection).expect("write calls.csv");
    let stats = work.join("stats.csv");
    let errors = work.join("errors.log");
    let kamailio = SocketAddr::new(net.kamailio_ip().into(), 5060);
    let started = Instant::now();
    let output = tokio::process::Command::new(tool(SIPP, "sip-tester"))
        .current_dir(&work)
        .arg(kamailio.to_string())
        .arg("-sf")
        .arg(manifest("tests/sipp").join(scenario))
        .arg("-inf")
        .arg(&csv)
        .args([
            "-s",
            TEXTBACK_USER,
            "-i",
            &net.root_ip().to_string(),
            "-p",
            "0",
        ])
        .args(["-r", &rate.to_string(), "-m", &calls.len().to_string()])
        .args(["-timeout", "120s", "-nostdin", "-trace_stat"])
        // INVITE → 180 of every call (the scenario's response time 1), for the bench.
        .args(["-trace_rtt", "-rtt_freq", "1"])
        .arg("-stf")
        .arg(&stats)
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
    SippRun {
        status: output.status.code().unwrap_or(-1),
        successful: number("SuccessfulCall(C)"),
        failed: number("FailedCall(C)"),
        wall,
        errors: format!(
            "{}{}",
            String::from_utf8_lossy(&output.stderr),
            std::fs::read_to_string(&errors)
                .unwrap_or_default()
                .chars()
                .take(4000)
                .collect::<String>()
        ),
    }
}

fn last_csv_row(path: &Path) -> std::collections::HashMap<String, String> {
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

/// What kamailio's log says about one call (config/kamailio/dispatcher.cfg's xlog lines).
#[derive(Debug, Clone, Default)]
pub struct Routed {
    /// Each box the call was relayed to, with when (Unix seconds), in order.
    pub relayed: Vec<(Ipv4Addr, f64)>,
    /// The box that ended it, its final status, and when.
    pub ended: Option<(Ipv4Addr, u16, f64)>,
}

/// Reads kamailio's log lines (as [`Kamailio::lines`]): per Call-ID, where each call went and
/// which box ended it, and when each box was marked down.
pub fn routing(
    lines: &[(f64, String)],
) -> (
    std::collections::HashMap<String, Routed>,
    Vec<(Ipv4Addr, f64)>,
) {
    let mut calls: std::collections::HashMap<String, Routed> = std::collections::HashMap::new();
    let mut down = Vec::new();
    let address = |text: &str| -> Option<Ipv4Addr> {
        let text = text.trim_start_matches("sip:");
        text.split(':').next()?.parse().ok()
    };
    for (time, line) in lines {
        let time = *time;
        // " 3(1234) INFO: <script>: call <id> for business <n> to box sip:<ip>:5060"
        let Some((_, message)) = line.split_once("<script>: ") else {
            continue;
        };
        let words: Vec<&str> = message.split_whitespace().collect();
        match words.as_slice() {
            ["call", id, "for", "business", _, "to", "box", uri, ..] => {
                if let Some(ip) = address(uri) {
                    calls
                        .entry(id.to_string())
                        .or_default()
                        .relayed
                        .push((ip, time));
                }
            }
            ["box", from, "ended", "call", id, "with", status, ..] => {
                if let (Some(ip), Ok(status)) = (address(from), status.parse()) {
                    calls.entry(id.to_string()).or_default().ended = Some((ip, status, time));
                }
            }
            ["box", uri, "did", "not", "answer", ..] => {
                if let Some(ip) = address(uri) {
                    down.push((ip, time));
                }
            }
            _ => {}
        }
    }
    (calls, down)
}

/// Seconds since the Unix epoch.
pub fn unix(at: SystemTime) -> f64 {
    at.duration_since(SystemTime::UNIX_EPOCH)
        .map(|d| d.as_secs_f64())
        .unwrap_or_default()
}

/// Prometheus (Debian package prometheus) in this process's namespace, scraping the boxes with
/// the shipped config/prometheus/prometheus.yml and its rules: the example targets replaced by
/// the boxes, the intervals shortened to 1 s, the fleet's token in textback.token.
pub struct Prometheus {
    child: tokio::process::Child,
    pub address: SocketAddr,
    pub log: PathBuf,
}

impl Prometheus {
    pub async fn start(dir: &Path, targets: &[SocketAddr]) -> Prometheus {
        let home = dir.join("prometheus");
        std::fs::create_dir_all(&home).expect("prometheus dir");
        let shipped = std::fs::read_to_string(manifest("config/prometheus/prometheus.yml"))
            .expect("config/prometheus/prometheus.yml");
        let example = "          - 192.0.2.11:8080\n          - 192.0.2.12:8080\n";
        assert!(
            shipped.contains(example),
            "the example targets moved:\n{shipped}"
        );
        assert!(shipped.contains("scrape_interval: 30s"));
        assert!(shipped.contains("evaluation_interval: 30s"));
        let ours: String = targets
            .iter()
            .map(|target| format!("          - {target}\n"))
            .collect();
        let config = shipped
            .replace(example, &ours)
            .replace("scrape_interval: 30s", "scrape_interval: 1s")
            .replace("evaluation_interval: 30s", "evaluation_interval: 1s");
        std::fs::write(home.join("prometheus.yml"), config).expect("write prometheus.yml");
        std::fs::copy(
            manifest("config/prometheus/textback.rules.yml"),
            home.join("textback.rules.yml"),
        )
        .expect("copy the rules");
        std::fs::write(home.join("textback.token"), API_TOKEN).expect("write the token");
        let port = std::net::TcpListener::bind("127.0.0.1:0")
            .and_then(|l| l.local_addr())
            .map(|a| a.port())
            .expect("a free port");
        let address = SocketAddr::from(([127, 0, 0, 1], port));
        let log = home.join("prometheus.log");
        let child = tokio::process::Command::new(tool(PROMETHEUS, "prometheus"))
            .current_dir(&home)
            .arg(format!(
                "--config.file={}",
                home.join("prometheus.yml").display()
            ))
            .arg(format!(
                "--storage.tsdb.path={}",
                home.join("data").display()
            ))
            .arg(format!("--web.listen-address={address}"))
            .stdin(Stdio::null())
            .stdout(Stdio::null())
            .stderr(std::fs::File::create(&log).expect("prometheus log"))
            .kill_on_drop(true)
            .spawn()
            .expect("start prometheus");
        let prometheus = Prometheus {
            child,
            address,
            log,
        };
        let http = reqwest::Client::new();
        let deadline = Instant::now() + READY_WAIT;
        loop {
            if let Ok(response) = http.get(format!("http://{address}/-/ready")).send().await
                && response.status().is_success()
            {
                return prometheus;
            }
            assert!(
                Instant::now() < deadline,
                "prometheus did not start:\n{}",
                prometheus.log()
            );
            // Prometheus opens its database in a second or two; each poll is one request.
            tokio::time::sleep(Duration::from_millis(100)).await;
        }
    }

    pub fn log(&self) -> String {
        std::fs::read_to_string(&self.log).unwrap_or_default()
    }

    /// `GET /api/v1/<path>` with `query` parameters: the answer's `data`.
    pub async fn api(&self, path: &str, query: &[(&str, &str)]) -> serde_json::Value {
        let answer: serde_json::Value = reqwest::Client::new()
            .get(format!("http://{}/api/v1/{path}", self.address))
            .query(query)
            .send()
            .await
            .expect("ask prometheus")
            .json()
            .await
            .expect("prometheus answers JSON");
        assert_eq!(answer["status"], "success", "{answer}");
        answer["data"].clone()
    }

    /// Polls `check` on the answer to `path` until it is true (or panics after the wait).
    pub async fn wait_for(
        &self,
        path: &str,
        query: &[(&str, &str)],
        check: impl Fn(&serde_json::Value) -> bool,
    ) -> serde_json::Value {
        let deadline = Instant::now() + READY_WAIT;
        loop {
            let data = self.api(path, query).await;
            if check(&data) {
                return data;
            }
            assert!(
                Instant::now() < deadline,
                "prometheus: {path} {query:?} never matched: {data}\n{}",
                self.log()
            );
            // Prometheus scrapes and evaluates every second here.
            tokio::time::sleep(Duration::from_millis(250)).await;
        }
    }
}

impl Drop for Prometheus {
    fn drop(&mut self) {
        let _ = self.child.start_kill();
    }
}
