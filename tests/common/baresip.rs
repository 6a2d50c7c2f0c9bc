//! baresip (Debian package `baresip`), a real SIP phone, run headless as a child process: its own
//! config directory, no audio device (a sine wave as the microphone, /dev/null as the speaker),
//! and driven through its `ctrl_tcp` module, which takes commands and reports call events as
//! JSON in netstrings (`12:{"a":"b"...},`).

use std::net::SocketAddr;
use std::os::unix::process::CommandExt;
use std::path::{Path, PathBuf};
use std::process::Stdio;
use std::time::Duration;

use serde_json::{Value, json};
use tokio::io::{AsyncReadExt, AsyncWriteExt, BufReader};
use tokio::net::TcpStream;

const BINARY: &str = "/usr/bin/baresip";

/// The phone's own loopback address: not the registrar's, so only kamailio relays its calls.
const PHONE_IP: &str = "127.0.0.3";

/// The account the phone registers with.
pub struct Account<'a> {
    pub user: &'a str,
    pub domain: &'a str,
    pub password: &'a str,
    /// The registrar and proxy every request goes through.
    pub proxy: SocketAddr,
}

/// A running baresip, stopped (with anything it started) on drop.
pub struct Phone {
    child: std::process::Child,
    control: BufReader<TcpStream>,
    log: PathBuf,
    /// Every event seen so far, for failure messages.
    pub events: Vec<Value>,
}

fn free_port(ip: &str, tcp: bool) -> u16 {
    let port = if tcp {
        std::net::TcpListener::bind((ip, 0)).and_then(|socket| socket.local_addr())
    } else {
        std::net::UdpSocket::bind((ip, 0)).and_then(|socket| socket.local_addr())
    };
    port.map(|address| address.port()).expect("a free port")
}

impl Phone {
    /// Starts baresip in `dir` with `account` and waits until its control socket answers.
    pub async fn start(dir: &Path, account: &Account<'_>) -> Phone {
        assert!(
            Path::new(BINARY).exists(),
            "{BINARY} is not installed: run `apt-get install baresip` (scripts/test.sh does)"
        );
        let sip_port = free_port(PHONE_IP, false);
        let control_port = free_port(PHONE_IP, true);
        std::fs::create_dir_all(dir).expect("baresip directory");
        // Only the modules a headless call needs: G.711, a sine source, the account loader, the
        // dial and hangup commands (menu) and the control socket.
        let config = format!(
            "poll_method epoll\n\
             sip_listen {PHONE_IP}:{sip_port}\n\
             call_local_timeout 20\n\
             audio_player aufile,/dev/null\n\
             audio_alert aufile,/dev/null\n\
             audio_source ausine,440\n\
             module_path /usr/lib/baresip/modules\n\
             module g711.so\n\
             module ausine.so\n\
             module_tmp account.so\n\
             module_app menu.so\n\
             module_app ctrl_tcp.so\n\
             ctrl_tcp_listen {PHONE_IP}:{control_port}\n"
        );
        std::fs::write(dir.join("config"), config).expect("baresip config");
        let accounts = format!(
            "<sip:{user}@{domain}>;auth_pass={password};outbound=\"sip:{proxy}\";regint=60\n",
            user = account.user,
            domain = account.domain,
            password = account.password,
            proxy = account.proxy,
        );
        std::fs::write(dir.join("accounts"), accounts).expect("baresip accounts");
        // Without a contacts file baresip writes a template with example contacts; none needed.
        std::fs::write(dir.join("contacts"), "").expect("baresip contacts");
        let log = dir.join("baresip.log");
        let output = std::fs::File::create(&log).expect("baresip log");
        let child = std::process::Command::new(BINARY)
            .arg("-f")
            .arg(dir)
            .stdin(Stdio::null())
            .stdout(output.try_clone().expect("log file"))
            .stderr(output)
            .process_group(0)
            .spawn()
            .expect("start baresip");
        let address = SocketAddr::new(PHONE_IP.parse().expect("address"), control_port);
        let deadline = tokio::time::Instant::now() + Duration::from_secs(10);
        let stream = loop {
            match TcpStream::connect(address).await {
                Ok(stream) => break stream,
                Err(error) => {
                    let log = std::fs::read_to_string(&log).unwrap_or_default();
                    assert!(
                        tokio::time::Instant::now() < deadline,
                        "baresip's control socket {address}: {error}\n{log}"
                    );
                }
            }
            // baresip starts in a few milliseconds; the wait ends when its socket listens.
            tokio::time::sleep(Duration::from_millis(20)).await;
        };
        Phone {
            child,
            control: BufReader::new(stream),
            log,
            events: Vec::new(),
        }
    }

    pub fn log(&self) -> String {
        std::fs::read_to_string(&self.log).unwrap_or_default()
    }

    /// Sends one command (`dial`, `hangup`, `reginfo`, `quit`) and returns the data of its
    /// response; events that come before it are kept.
    pub async fn command(&mut self, command: &str, params: &str) -> String {
        let token = format!("{command}-{}", self.events.len());
        let body = json!({"command": command, "params": params, "token": token}).to_string();
        let frame = format!("{}:{body},", body.len());
        self.control
            .get_mut()
            .write_all(frame.as_bytes())
            .await
            .expect("write to baresip");
        loop {
            let message = self.next_message().await;
            if message["response"] == true && message["token"] == token.as_str() {
                assert_eq!(message["ok"], true, "baresip refused {command}: {message}");
                return message["data"].as_str().unwrap_or_default().to_string();
            }
            self.events.push(message);
        }
    }

    /// Waits for the event `kind` (`CALL_RINGING`, `CALL_CLOSED`, ...) and returns it.
    pub async fn wait_event(&mut self, kind: &str, within: Duration) -> Value {
        if let Some(event) = self.events.iter().find(|event| event["type"] == kind) {
            return event.clone();
        }
        let deadline = tokio::time::Instant::now() + within;
        loop {
            let message = tokio::time::timeout_at(deadline, self.next_message())
                .await
                .unwrap_or_else(|_| {
                    panic!(
                        "no {kind} from baresip within {within:?}; events: {:?}\n{}",
                        self.events,
                        self.log()
                    )
                });
            self.events.push(message.clone());
            if message["type"] == kind {
                return message;
            }
        }
    }

    /// Polls `reginfo` until the account's registration is confirmed.
    pub async fn wait_registered(&mut self) {
        let deadline = tokio::time::Instant::now() + super::WAIT;
        loop {
            let info = self.command("reginfo", "").await;
            // "> sip:user@domain  OK  kamailio (...) Expires 60s" once the 200 came.
            if info.contains("OK") && info.contains("Expires") {
                return;
            }
            assert!(
                tokio::time::Instant::now() < deadline,
                "baresip did not register: {info}\n{}",
                self.log()
            );
            // REGISTER and its challenge take a few milliseconds on loopback.
            tokio::time::sleep(Duration::from_millis(50)).await;
        }
    }

    /// Quits (baresip removes its registration first) and waits for the process to end.
    pub async fn quit(mut self) {
        let _ = self.command("quit", "").await;
        let deadline = std::time::Instant::now() + Duration::from_secs(10);
        while self.child.try_wait().ok().flatten().is_none() {
            assert!(
                std::time::Instant::now() < deadline,
                "baresip did not quit\n{}",
                self.log()
            );
            // Waiting for the un-REGISTER and the exit; ends as soon as the process is gone.
            tokio::time::sleep(Duration::from_millis(20)).await;
        }
    }

    async fn next_message(&mut self) -> Value {
        let mut length = Vec::new();
        loop {
            let byte = self.control.read_u8().await.expect("read from baresip");
            if byte == b':' {
                break;
            }
            length.push(byte);
        }
        let length: usize = std::str::from_utf8(&length)
            .ok()
            .and_then(|text| text.parse().ok())
            .expect("netstring length");
        let mut body = vec![0; length + 1];
        self.control
            .read_exact(&mut body)
            .await
            .expect("netstring body");
        assert_eq!(body.pop(), Some(b','), "netstring ends with a comma");
        serde_json::from_slice(&body).expect("JSON from baresip")
    }
}

impl Drop for Phone {
    fn drop(&mut self) {
        if matches!(self.child.try_wait(), Ok(Some(_))) {
            return;
        }
        // The group is baresip's own (process_group(0) above).
        let group = nix::unistd::Pid::from_raw(self.child.id() as i32);
        let _ = nix::sys::signal::killpg(group, nix::sys::signal::Signal::SIGKILL);
        let _ = self.child.wait();
    }
}
