//! Real servers on loopback for the lead channels: an SMTP server (aiosmtpd, from Debian's
//! python3-aiosmtpd, writing each message to a Maildir) and an HTTP server that records every
//! request and answers from a script.

use std::collections::VecDeque;
use std::net::TcpListener as StdListener;
use std::path::PathBuf;
use std::process::{Child, Command, Stdio};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::TcpListener;
use tokio::sync::Notify;

use super::WAIT;

/// A port nothing listens on right now.
pub fn free_port() -> u16 {
    StdListener::bind("127.0.0.1:0")
        .and_then(|l| l.local_addr())
        .map(|a| a.port())
        .expect("a free loopback port")
}

/// aiosmtpd with its Maildir handler: each message it accepts becomes a file.
pub struct SmtpSink {
    pub port: u16,
    maildir: PathBuf,
    child: Child,
}

impl SmtpSink {
    pub async fn start(dir: &std::path::Path) -> SmtpSink {
        Self::start_with(dir, &[]).await
    }

    /// An SMTP server with TLS: STARTTLS required (`implicit` false) or TLS from the first byte
    /// (SMTPS), with a certificate for 127.0.0.1 and localhost signed by a private CA made for
    /// the test (openssl). Returns the server and the CA's PEM file.
    pub async fn start_tls(dir: &std::path::Path, implicit: bool) -> (SmtpSink, PathBuf) {
        let (ca, cert, key) = test_certificates(dir);
        let (cert, key) = (cert.display().to_string(), key.display().to_string());
        let args: [&str; 4] = if implicit {
            ["--smtpscert", &cert, "--smtpskey", &key]
        } else {
            ["--tlscert", &cert, "--tlskey", &key]
        };
        (Self::start_with(dir, &args).await, ca)
    }

    async fn start_with(dir: &std::path::Path, options: &[&str]) -> SmtpSink {
        let port = free_port();
        let maildir = dir.join("maildir");
        // Debian's python3-aiosmtpd lives in the system interpreter's packages.
        let child = Command::new("/usr/bin/python3")
            .args(["-m", "aiosmtpd", "-n", "-l"])
            .arg(format!("127.0.0.1:{port}"))
            .args(options)
            .args(["-c", "aiosmtpd.handlers.Mailbox"])
            .arg(&maildir)
            .stdout(Stdio::null())
            .stderr(Stdio::inherit())
            .spawn()
            .expect(
                "start aiosmtpd (Debian package python3-aiosmtpd; scripts/test.sh installs it)",
            );
        let deadline = tokio::time::Instant::now() + WAIT;
        while tokio::net::TcpStream::connect(("127.0.0.1", port))
            .await
            .is_err()
        {
            assert!(
                tokio::time::Instant::now() < deadline,
                "aiosmtpd did not listen on port {port}"
            );
            // A bounded poll: the server is another process starting up.
            tokio::time::sleep(Duration::from_millis(50)).await;
        }
        SmtpSink {
            port,
            maildir,
            child,
        }
    }

    /// The raw messages received so far.
    pub fn messages(&self) -> Vec<Vec<u8>> {
        let mut found = Vec::new();
        for sub in ["new", "cur"] {
            if let Ok(entries) = std::fs::read_dir(self.maildir.join(sub)) {
                for entry in entries.flatten() {
                    if let Ok(bytes) = std::fs::read(entry.path()) {
                        found.push(bytes);
                    }
                }
            }
        }
        found
    }

    /// Waits until `n` messages have arrived.
    pub async fn wait_messages(&self, n: usize) -> Vec<Vec<u8>> {
        let deadline = tokio::time::Instant::now() + WAIT;
        loop {
            let messages = self.messages();
            if messages.len() >= n || tokio::time::Instant::now() > deadline {
                return messages;
            }
            // A bounded poll of the Maildir another process writes.
            tokio::time::sleep(Duration::from_millis(50)).await;
        }
    }
}

impl Drop for SmtpSink {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

/// One HTTP request as received.
#[derive(Debug, Clone)]
pub struct Request {
    pub method: String,
    pub path: String,
    pub headers: Vec<(String, String)>,
    pub body: Vec<u8>,
}

impl Request {
    pub fn header(&self, name: &str) -> Option<&str> {
        self.headers
            .iter()
            .find(|(n, _)| n.eq_ignore_ascii_case(name))
            .map(|(_, v)| v.as_str())
    }

    pub fn json(&self) -> serde_json::Value {
        serde_json::from_slice(&self.body).expect("a JSON body")
    }
}

/// An HTTP/1.1 server on loopback that records requests and answers each with the next scripted
/// (status, JSON body), then 200 `{}` once the script is used up.
pub struct HttpRecorder {
    pub ip: std::net::Ipv4Addr,
    pub port: u16,
    requests: Arc<Mutex<Vec<Request>>>,
    arrived: Arc<Notify>,
    task: tokio::task::JoinHandle<()>,
}

impl HttpRecorder {
    pub async fn start(script: Vec<(u16, String)>) -> HttpRecorder {
        Self::start_on(0, script).await
    }

    pub async fn start_on(port: u16, script: Vec<(u16, String)>) -> HttpRecorder {
        Self::start_at(std::net::Ipv4Addr::LOCALHOST, port, script).await
    }

    /// On `ip` (an address of this machine), e.g. one a test fleet reaches (tests/fleet.rs).
    pub async fn start_at(
        ip: std::net::Ipv4Addr,
        port: u16,
        script: Vec<(u16, String)>,
    ) -> HttpRecorder {
        let listener = TcpListener::bind((ip, port))
            .await
            .expect("bind the HTTP recorder");
        let port = listener.local_addr().expect("address").port();
        let requests = Arc::new(Mutex::new(Vec::new()));
        let arrived = Arc::new(Notify::new());
        let script = Arc::new(Mutex::new(VecDeque::from(script)));
        let task = {
            let requests = requests.clone();
            let arrived = arrived.clone();
            tokio::spawn(async move {
                while let Ok((mut stream, _)) = listener.accept().await {
                    let Some(request) = read_request(&mut stream).await else {
                        continue;
                    };
                    let (status, body) = script
                        .lock()
                        .ok()
                        .and_then(|mut s| s.pop_front())
                        .unwrap_or((200, "{}".to_string()));
                    if let Ok(mut all) = requests.lock() {
                        all.push(request);
                    }
                    arrived.notify_waiters();
                    let reply = format!(
                        "HTTP/1.1 {status} X\r\nContent-Type: application/json\r\nContent-Length: {}\r\nConnection: close\r\n\r\n{body}",
                        body.len()
                    );
                    let _ = stream.write_all(reply.as_bytes()).await;
                    let _ = stream.shutdown().await;
                }
            })
        };
        HttpRecorder {
            ip,
            port,
            requests,
            arrived,
            task,
        }
    }

    pub fn url(&self, path: &str) -> String {
        format!("http://{}:{}{path}", self.ip, self.port)
    }

    pub fn requests(&self) -> Vec<Request> {
        self.requests.lock().map(|r| r.clone()).unwrap_or_default()
    }

    /// Waits until `n` requests whose path starts with `prefix` have arrived.
    pub async fn wait_requests(&self, prefix: &str, n: usize) -> Vec<Request> {
        let deadline = tokio::time::Instant::now() + WAIT;
        loop {
            let notified = self.arrived.notified();
            let matching: Vec<Request> = self
                .requests()
                .into_iter()
                .filter(|r| r.path.starts_with(prefix))
                .collect();
            if matching.len() >= n {
                return matching;
            }
            if tokio::time::timeout_at(deadline, notified).await.is_err() {
                return matching;
            }
        }
    }
}

impl Drop for HttpRecorder {
    fn drop(&mut self) {
        self.task.abort();
    }
}

async fn read_request(stream: &mut tokio::net::TcpStream) -> Option<Request> {
    let mut buffer = Vec::new();
    let mut chunk = [0u8; 4096];
    let head_end = loop {
        let n = tokio::time::timeout(WAIT, stream.read(&mut chunk))
            .await
            .ok()?
            .ok()?;
        if n == 0 {
            return None;
        }
        buffer.extend_from_slice(&chunk[..n]);
        if let Some(at) = buffer.windows(4).position(|w| w == b"\r\n\r\n") {
            break at;
        }
    };
    let head = String::from_utf8_lossy(&buffer[..head_end]).to_string();
    let mut lines = head.split("\r\n");
    let mut start = lines.next()?.split(' ');
    let method = start.next()?.to_string();
    let path = start.next()?.to_string();
    let headers: Vec<(String, String)> = lines
        .filter_map(|line| line.split_once(':'))
        .map(|(n, v)| (n.trim().to_string(), v.trim().to_string()))
        .collect();
    let length: usize = headers
        .iter()
        .find(|(n, _)| n.eq_ignore_ascii_case("content-length"))
        .and_then(|(_, v)| v.parse().ok())
        .unwrap_or(0);
    let mut body = buffer[head_end + 4..].to_vec();
    while body.len() < length {
        let n = stream.read(&mut chunk).await.ok()?;
        if n == 0 {
            break;
        }
        body.extend_from_slice(&chunk[..n]);
    }
    Some(Request {
        method,
        path,
        headers,
        body,
    })
}

/// A private CA and a server certificate it signed for 127.0.0.1 and localhost, made with the
/// openssl command (Debian package openssl): (CA PEM, server certificate PEM, server key PEM).
pub fn test_certificates(dir: &std::path::Path) -> (PathBuf, PathBuf, PathBuf) {
    let path = |name: &str| dir.join(name);
    let openssl = |args: &[&str]| {
        let out = std::process::Command::new("openssl")
            .args(args)
            .current_dir(dir)
            .output()
            .expect("run openssl (Debian package openssl; scripts/test.sh installs it)");
        assert!(
            out.status.success(),
            "openssl {args:?}: {}",
            String::from_utf8_lossy(&out.stderr)
        );
    };
    let ec = [
        "-newkey",
        "ec",
        "-pkeyopt",
        "ec_paramgen_curve:prime256v1",
        "-nodes",
    ];
    openssl(
        &[
            &["req", "-x509"][..],
            &ec[..],
            &[
                "-keyout",
                "ca.key",
                "-out",
                "ca.pem",
                "-days",
                "2",
                "-subj",
                "/CN=textback test CA",
            ][..],
        ]
        .concat(),
    );
    openssl(
        &[
            &["req"][..],
            &ec[..],
            &[
                "-keyout",
                "server.key",
                "-out",
                "server.csr",
                "-subj",
                "/CN=localhost",
            ][..],
        ]
        .concat(),
    );
    std::fs::write(
        path("san.ext"),
        "subjectAltName=DNS:localhost,IP:127.0.0.1\nbasicConstraints=CA:FALSE\nextendedKeyUsage=serverAuth\n",
    )
    .expect("write extensions");
    openssl(&[
        "x509",
        "-req",
        "-in",
        "server.csr",
        "-CA",
        "ca.pem",
        "-CAkey",
        "ca.key",
        "-CAcreateserial",
        "-out",
        "server.pem",
        "-days",
        "2",
        "-extfile",
        "san.ext",
    ]);
    (path("ca.pem"), path("server.pem"), path("server.key"))
}
