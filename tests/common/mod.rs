//! Shared set-up for the daemon tests: a virtual modem on a real pseudo-terminal, a config that
//! points at it, a database in a temporary directory, and helpers that read the database.
#![allow(dead_code)]

pub mod baresip;
pub mod fleet;
pub mod llm;
pub mod process;
pub mod servers;
pub mod terminal;
pub mod webdriver;

use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::time::Duration;

use textback::config::{self, Config};
use textback::daemon::{self, RunOptions, Running};
use textback::modem::virtual_modem::{Options, VirtualModem};
use textback::store::{self, Tx};

/// Generous: only reached when something is broken; waits end as soon as the event is seen.
pub const WAIT: Duration = Duration::from_secs(20);

pub const CALLER: &str = "+447700900123";
pub const CALLER_NATIONAL: &str = "07700900123";

pub fn config_text(port: &Path, database: &Path) -> String {
    format!(
        r#"
[storage]
database = "{database}"

[dashboard]
listen = "127.0.0.1:0"
public_url = "http://127.0.0.1:8080"

[[modem]]
id = "main"
port = "{port}"

[[profile]]
id = "plumbing"
name = "Brightwater Plumbing"
numbers = ["+441632960123"]
closing_message = "Thanks {{name}}, {{business}} will call you back."

[[profile.question]]
id = "name"
ask = "Who am I speaking to?"

[[profile.question]]
id = "reason"
ask = "What do you need help with?"

[[profile.question]]
id = "postcode"
ask = "And the postcode of the job?"

[[profile.recipient]]
name = "Owner"
email = "owner@brightwater.example"
sms = "+447700900456"
"#,
        database = database.display(),
        port = port.display()
    )
}

pub struct Harness {
    pub dir: tempfile::TempDir,
    pub modem: VirtualModem,
    pub config: Arc<Config>,
    /// TOML appended to the config (more keys for the recipient, [notify] sections).
    pub extra: String,
    /// The whole config file.
    pub text: String,
}

impl Harness {
    pub fn new() -> Harness {
        Self::with_options(Options::default())
    }

    pub fn with_options(options: Options) -> Harness {
        Self::with_extra(options, "")
    }

    /// The usual config with `extra` appended: keys there first go to the last recipient.
    pub fn with_extra(options: Options, extra: &str) -> Harness {
        Self::with_edit(options, extra, |text| text)
    }

    /// The usual config passed through `edit` (to add keys to the profile), then `extra`.
    pub fn with_edit(options: Options, extra: &str, edit: impl Fn(String) -> String) -> Harness {
        let dir = tempfile::tempdir().expect("temporary directory");
        let modem = VirtualModem::start(options).expect("virtual modem");
        let text = edit(config_text(modem.path(), &dir.path().join("textback.db"))) + extra;
        let config = config::parse(&text, Path::new("test.toml"))
            .expect("test config")
            .config;
        Harness {
            dir,
            modem,
            config: Arc::new(config),
            extra: extra.to_string(),
            text,
        }
    }

    /// Writes the harness's config to a file, for the tests that run the binary.
    pub fn write_config(&self) -> PathBuf {
        let path = self.dir.path().join("textback.toml");
        std::fs::write(&path, &self.text).expect("write config");
        path
    }

    pub fn database(&self) -> PathBuf {
        self.config.storage.database.clone()
    }

    pub async fn start(&self) -> Running {
        self.start_with(RunOptions::default()).await
    }

    pub async fn start_with(&self, options: RunOptions) -> Running {
        daemon::start(self.config.clone(), options)
            .await
            .expect("daemon starts")
    }

    /// A mobile rings the SIM, then answers every question: a lead.
    pub async fn lead_from_a_conversation(&self) {
        self.first_text_confirmed().await;
        for (n, reply) in ["Sarah Jones", "Boiler leaking in the loft", "SW11 4AB"]
            .iter()
            .enumerate()
        {
            self.modem.receive_sms(CALLER, reply).await;
            let texts_to_caller = n + 2;
            let deadline = tokio::time::Instant::now() + WAIT;
            while self.modem.sent().iter().filter(|s| s.to == CALLER).count() < texts_to_caller {
                assert!(
                    tokio::time::Instant::now() < deadline,
                    "the conversation stalled"
                );
                self.modem
                    .wait_sent(self.modem.sent().len() + 1, Duration::from_millis(200))
                    .await;
            }
        }
        assert_eq!(self.wait_count("SELECT count(*) FROM leads", 1).await, 1);
    }

    /// Runs `f` on a fresh read-only connection.
    pub fn read<T>(&self, f: impl FnOnce(&Tx<'_>) -> T) -> T {
        let connection = store::open_read_only(&self.database()).expect("open database");
        f(&Tx::reader(&connection))
    }

    pub fn query_i64(&self, sql: &str) -> i64 {
        let connection = store::open_read_only(&self.database()).expect("open database");
        connection.query_row(sql, [], |row| row.get(0)).expect(sql)
    }

    pub fn query_strings(&self, sql: &str) -> Vec<String> {
        let connection = store::open_read_only(&self.database()).expect("open database");
        let mut statement = connection.prepare(sql).expect(sql);
        statement
            .query_map([], |row| row.get::<_, String>(0))
            .expect(sql)
            .collect::<Result<_, _>>()
            .expect(sql)
    }

    /// Waits until `sql` (a count) reaches at least `n`.
    pub async fn wait_count(&self, sql: &str, n: i64) -> i64 {
        let deadline = tokio::time::Instant::now() + WAIT;
        loop {
            let got = if self.database().exists() {
                self.query_i64(sql)
            } else {
                0
            };
            if got >= n || tokio::time::Instant::now() > deadline {
                return got;
            }
            tokio::time::sleep(Duration::from_millis(25)).await;
        }
    }

    /// A mobile rings the SIM and rings out; waits until its first text is sent and confirmed by
    /// the network (the start of most conversation tests).
    pub async fn first_text_confirmed(&self) {
        self.modem.call(Some(CALLER_NATIONAL), 2).await;
        assert_eq!(
            self.modem.wait_sent(1, WAIT).await.len(),
            1,
            "the first text was sent"
        );
        assert_eq!(
            self.wait_count(
                "SELECT count(*) FROM messages WHERE state IN ('sent', 'delivered')",
                1
            )
            .await,
            1,
            "the network confirmed the first text"
        );
    }

    /// Waits until `to` has been sent at least `n` whole texts (multipart parts joined), or
    /// until `WAIT`, and returns them.
    pub async fn whole_texts_to(&self, to: &str, n: usize) -> Vec<String> {
        let deadline = tokio::time::Instant::now() + WAIT;
        loop {
            let mut texts: Vec<String> = Vec::new();
            let mut open: Option<(u16, String)> = None;
            for sms in self.modem.sent().into_iter().filter(|s| s.to == to) {
                match sms.part {
                    None => texts.push(sms.text),
                    Some((reference, total, sequence)) => {
                        let mut joined = match open.take() {
                            Some((r, so_far)) if r == reference => so_far,
                            _ => String::new(),
                        };
                        joined.push_str(&sms.text);
                        if sequence == total {
                            texts.push(joined);
                        } else {
                            open = Some((reference, joined));
                        }
                    }
                }
            }
            if texts.len() >= n || tokio::time::Instant::now() > deadline {
                return texts;
            }
            tokio::time::sleep(std::time::Duration::from_millis(25)).await;
        }
    }

    /// The texts sent to [`CALLER`] so far, once there are at least `n` (or [`WAIT`] passed).
    pub async fn texts_to_caller(&self, n: usize) -> Vec<String> {
        self.texts_to(CALLER, n).await
    }

    /// The texts sent to `to` (E.164) so far, once there are at least `n` (or [`WAIT`] passed).
    pub async fn texts_to(&self, to: &str, n: usize) -> Vec<String> {
        let deadline = tokio::time::Instant::now() + WAIT;
        loop {
            let texts: Vec<String> = self
                .modem
                .sent()
                .into_iter()
                .filter(|s| s.to == to)
                .map(|s| s.text)
                .collect();
            if texts.len() >= n || tokio::time::Instant::now() > deadline {
                return texts;
            }
            tokio::time::sleep(Duration::from_millis(25)).await;
        }
    }

    /// Waits until a journal row with `step` exists `n` times.
    pub async fn wait_journal(&self, step: &str, n: i64) -> i64 {
        self.wait_count(
            &format!("SELECT count(*) FROM journal WHERE step = '{step}'"),
            n,
        )
        .await
    }
}

/// A missed call reported over SIP (no modem rang), as the daemon's event.
pub fn sip_call(key: &str, number: &str) -> textback::event::Event {
    textback::event::Event::CallMissed(textback::event::MissedCall {
        key: textback::domain::CallId::new(key),
        source: textback::domain::CallSource::Sip,
        caller: textback::domain::CallerId::from_raw(number),
        caller_raw: number.to_string(),
        called: None,
        modem: None,
        sip_account: None,
        at: chrono::Utc::now(),
    })
}
