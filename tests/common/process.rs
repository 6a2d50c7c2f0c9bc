//! `textback run` as its own process, for the tests that measure the daemon's memory: its
//! resident set (VmRSS) and peak (VmHWM) are read from /proc, so nothing of the test's own
//! clients is counted.

use std::net::SocketAddr;
use std::path::Path;
use std::process::Stdio;
use std::sync::{Arc, Mutex};

use tokio::io::AsyncBufReadExt;

/// Generous: only reached when something is broken.
const WAIT: std::time::Duration = std::time::Duration::from_secs(20);

/// The daemon's memory, in KiB, as the kernel reports it.
#[derive(Debug, Clone, Copy)]
pub struct Memory {
    /// Resident now (VmRSS).
    pub rss_kib: u64,
    /// The most it has been resident (VmHWM).
    pub peak_kib: u64,
}

impl Memory {
    pub fn rss_mib(&self) -> f64 {
        self.rss_kib as f64 / 1024.0
    }

    pub fn peak_mib(&self) -> f64 {
        self.peak_kib as f64 / 1024.0
    }
}

/// A running `textback run --config FILE --log-format json`.
pub struct DaemonProcess {
    child: tokio::process::Child,
    pid: u32,
    /// Where the dashboard listens.
    pub dashboard: SocketAddr,
    /// Where SIP listens (UDP and TCP on each), if the config has accounts.
    pub sip: Vec<SocketAddr>,
    /// The log lines so far (stderr is read all along, so the daemon never blocks on it).
    pub log: Arc<Mutex<Vec<String>>>,
}

impl DaemonProcess {
    /// Starts the daemon and waits until it says it is running.
    pub async fn spawn(config: &Path) -> DaemonProcess {
        let mut child = tokio::process::Command::new(env!("CARGO_BIN_EXE_textback"))
            .args(["run", "--config"])
            .arg(config)
            .args(["--log-format", "json"])
            .env("RUST_LOG", "info")
            .stdin(Stdio::null())
            .stdout(Stdio::null())
            .stderr(Stdio::piped())
            .kill_on_drop(true)
            .spawn()
            .expect("run textback");
        let pid = child.id().expect("a pid");
        let stderr = child.stderr.take().expect("stderr");
        let log = Arc::new(Mutex::new(Vec::new()));
        let (ready_tx, ready_rx) = tokio::sync::oneshot::channel();
        let lines = log.clone();
        tokio::spawn(async move {
            let mut reader = tokio::io::BufReader::new(stderr).lines();
            let mut dashboard = None;
            let mut sip = Vec::new();
            let mut ready = Some(ready_tx);
            let mut running = false;
            while let Ok(Some(line)) = reader.next_line().await {
                if ready.is_some()
                    && let Ok(event) = serde_json::from_str::<serde_json::Value>(&line)
                {
                    match event["message"].as_str() {
                        Some("dashboard listening") => {
                            dashboard = event["address"].as_str().and_then(|a| a.parse().ok());
                        }
                        Some("SIP endpoint listening (UDP and TCP)") => {
                            sip = event["addresses"]
                                .as_str()
                                .unwrap_or_default()
                                .trim_matches(['[', ']'])
                                .split(", ")
                                .filter_map(|a| a.parse::<SocketAddr>().ok())
                                .collect();
                        }
                        Some("textback running") => running = true,
                        _ => {}
                    }
                    // The dashboard's task may say it listens just after "textback running".
                    if running
                        && let Some(address) = dashboard
                        && let Some(ready) = ready.take()
                    {
                        let _ = ready.send((address, std::mem::take(&mut sip)));
                    }
                }
                if let Ok(mut lines) = lines.lock() {
                    lines.push(line);
                }
            }
        });
        let (dashboard, sip) = tokio::time::timeout(WAIT, ready_rx)
            .await
            .unwrap_or_else(|_| panic!("textback did not start: {:?}", log.lock().unwrap()))
            .unwrap_or_else(|_| panic!("textback stopped: {:?}", log.lock().unwrap()));
        DaemonProcess {
            child,
            pid,
            dashboard,
            sip,
            log,
        }
    }

    /// VmRSS and VmHWM from /proc/PID/status.
    pub fn memory(&self) -> Memory {
        let status = std::fs::read_to_string(format!("/proc/{}/status", self.pid))
            .expect("the daemon's /proc status");
        let field = |name: &str| {
            status
                .lines()
                .find_map(|line| line.strip_prefix(name))
                .and_then(|rest| rest.trim().trim_end_matches("kB").trim().parse().ok())
                .unwrap_or_else(|| panic!("no {name} in {status}"))
        };
        Memory {
            rss_kib: field("VmRSS:"),
            peak_kib: field("VmHWM:"),
        }
    }

    /// SIGTERM, then waits for a clean exit.
    pub async fn stop(mut self) {
        let pid = nix::unistd::Pid::from_raw(self.pid as i32);
        let _ = nix::sys::signal::kill(pid, nix::sys::signal::Signal::SIGTERM);
        let status = tokio::time::timeout(WAIT * 4, self.child.wait())
            .await
            .expect("textback stops")
            .expect("textback's exit status");
        assert!(
            status.success(),
            "textback exited with {status:?}: {:?}",
            self.log.lock().map(|l| l.join("\n")).unwrap_or_default()
        );
    }
}
