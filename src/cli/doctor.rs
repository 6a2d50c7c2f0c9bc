//! `textback doctor`: the installer's checks, one line each with what to do, and `--watch`, which
//! follows the next call through the journal as it happens and says where it stopped.

use std::path::Path;
use std::sync::Arc;
use std::time::Duration;

use anyhow::Context;

use crate::config::{self, Config};
use crate::domain::JournalStep;
use crate::modem::probe::Probe;
use crate::store::{self, Tx};
use crate::time_text::format_clock;

/// How a check came out.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Verdict {
    Ok,
    Warning,
    Failed,
}

/// One line of the report.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Check {
    pub verdict: Verdict,
    pub subject: String,
    pub detail: String,
}

impl Check {
    fn new(verdict: Verdict, subject: impl Into<String>, detail: impl Into<String>) -> Self {
        Self {
            verdict,
            subject: subject.into(),
            detail: detail.into(),
        }
    }

    fn print(&self) {
        let tag = match self.verdict {
            Verdict::Ok => "ok     ",
            Verdict::Warning => "warning",
            Verdict::Failed => "FAILED ",
        };
        println!("{tag}  {:<22} {}", self.subject, self.detail);
    }
}

/// Free disk below this fails the check: SQLite needs room to commit, and a full disk loses texts.
const DISK_FAILED: u64 = 100 * 1024 * 1024;
/// Free disk below this is a warning.
const DISK_WARNING: u64 = 1024 * 1024 * 1024;
/// How long a modem has to answer and be set up.
const MODEM_TIMEOUT: Duration = Duration::from_secs(30);

/// Runs the checks and prints them; with `watch`, then follows a call. Returns whether nothing failed.
pub fn run(config_path: &Path, watch: bool, watch_timeout: u64) -> anyhow::Result<bool> {
    let mut checks = Vec::new();
    let config = match config::load(config_path) {
        Ok(loaded) => {
            let c = &loaded.config;
            checks.push(Check::new(
                Verdict::Ok,
                "config",
                format!(
                    "{} ({} profile(s), {} modem(s))",
                    config_path.display(),
                    c.profiles.len(),
                    c.modems.len()
                ),
            ));
            for warning in &loaded.warnings {
                checks.push(Check::new(Verdict::Warning, "config", warning.to_string()));
            }
            Some(loaded.config)
        }
        Err(err) => {
            checks.push(Check::new(Verdict::Failed, "config", err.to_string()));
            None
        }
    };
    for check in &checks {
        check.print();
    }
    let Some(config) = config else {
        return Ok(false);
    };
    let mut all = checks;
    let mut more = vec![
        check_database(&config.storage.database),
        check_disk(&config.storage.database),
        check_clock(),
    ];
    for check in &more {
        check.print();
    }
    all.append(&mut more);
    let runtime = tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()
        .context("starting the async runtime")?;
    let config = Arc::new(config);
    for modem_config in &config.modems {
        let check = runtime.block_on(check_modem(modem_config.clone()));
        check.print();
        all.push(check);
    }
    for check in fault_checks(&config.storage.database) {
        check.print();
        all.push(check);
    }
    for check in notice_checks(&config.storage.database) {
        check.print();
        all.push(check);
    }
    for check in balance_checks(&config, &config.storage.database) {
        check.print();
        all.push(check);
    }
    for check in self_test_checks(&config, &config.storage.database) {
        check.print();
        all.push(check);
    }
    for (name, ok, what) in crate::cli::sip::doctor_lines(&config, &config.storage.database) {
        let verdict = if ok { Verdict::Ok } else { Verdict::Warning };
        let check = Check::new(verdict, name, what);
        check.print();
        all.push(check);
    }
    for profile in &config.profiles {
        if let Some(settings) = &profile.llm {
            let check = runtime.block_on(check_model(&profile.id, &profile.dialogue, settings));
            check.print();
            all.push(check);
        }
    }
    let healthy = all.iter().all(|c| c.verdict != Verdict::Failed);
    if !healthy {
        println!(
            "\nSome checks failed: fix them (each line says how), then run `textback doctor` again."
        );
    }
    if watch {
        let watched = runtime.block_on(watch_call(&config, Duration::from_secs(watch_timeout)))?;
        return Ok(healthy && watched);
    }
    Ok(healthy)
}

fn check_database(path: &Path) -> Check {
    let subject = "database";
    if !path.exists() {
        let parent = path
            .parent()
            .filter(|p| !p.as_os_str().is_empty())
            .unwrap_or(Path::new("."));
        return match writable(parent) {
            true => Check::new(
                Verdict::Ok,
                subject,
                format!(
                    "{} will be created when textback first starts",
                    path.display()
                ),
            ),
            false => Check::new(
                Verdict::Failed,
                subject,
                format!(
                    "{} does not exist and {} is not writable: create it for user textback (systemd's StateDirectory=textback does), or set storage.database",
                    path.display(),
                    parent.display()
                ),
            ),
        };
    }
    let connection = match store::open_read_only(path) {
        Ok(connection) => connection,
        Err(err) => return Check::new(Verdict::Failed, subject, err.to_string()),
    };
    let version = match store::schema_version(&connection) {
        Ok(version) => version,
        Err(err) => {
            return Check::new(
                Verdict::Failed,
                subject,
                format!(
                    "{} cannot be read: {err}. Restore a backup, or move it away to start afresh",
                    path.display()
                ),
            );
        }
    };
    let integrity = store::quick_check(&connection).unwrap_or_else(|err| err.to_string());
    if integrity != "ok" {
        return Check::new(
            Verdict::Failed,
            subject,
            format!(
                "{} is damaged ({integrity}). Restore a backup",
                path.display()
            ),
        );
    }
    if !writable(path) {
        return Check::new(
            Verdict::Failed,
            subject,
            format!(
                "{} is not writable by this user: chown textback: it",
                path.display()
            ),
        );
    }
    match version.cmp(&store::SCHEMA_VERSION) {
        std::cmp::Ordering::Equal => Check::new(
            Verdict::Ok,
            subject,
            format!("{} (schema {version}, current)", path.display()),
        ),
        std::cmp::Ordering::Less => Check::new(
            Verdict::Warning,
            subject,
            format!(
                "{} has schema {version}; textback brings it to {} at its next start",
                path.display(),
                store::SCHEMA_VERSION
            ),
        ),
        std::cmp::Ordering::Greater => Check::new(
            Verdict::Failed,
            subject,
            format!(
                "{} has schema {version}, newer than this textback ({}): install the newer textback again",
                path.display(),
                store::SCHEMA_VERSION
            ),
        ),
    }
}

/// What the daemon recorded about each modem's health: open faults (a refusing network, off the
/// network, a full store, the recipient cap), each with what to do, and how the last ones ended.
pub fn fault_checks(database: &Path) -> Vec<Check> {
    let Ok(connection) = store::open_read_only(database) else {
        return Vec::new();
    };
    let tx = store::Tx::reader(&connection);
    // An older schema has no faults table yet: nothing recorded.
    let (Ok(open), Ok(recent)) = (tx.open_faults(), tx.recent_faults(20)) else {
        return Vec::new();
    };
    let mut checks = Vec::new();
    for fault in &open {
        let verdict = match fault.kind {
            crate::domain::FaultKind::Refused
            | crate::domain::FaultKind::NotAnswering
            | crate::domain::FaultKind::DeliveryLow => Verdict::Failed,
            _ => Verdict::Warning,
        };
        let told = match fault.alerted_ms {
            Some(_) => "; the business was told",
            None => "",
        };
        checks.push(Check::new(
            verdict,
            format!("modem {} {}", fault.modem, fault.kind),
            format!(
                "since {} ({}): {}{told}",
                crate::time_text::format_time(fault.started_ms),
                fault.cause,
                fault.detail
            ),
        ));
    }
    for fault in recent.iter().filter(|f| f.cleared_ms.is_some()).take(5) {
        let lasted = fault.cleared_ms.unwrap_or(fault.started_ms) - fault.started_ms;
        checks.push(Check::new(
            Verdict::Ok,
            format!("modem {} {}", fault.modem, fault.kind),
            format!(
                "recovered at {} after {:.1} s ({})",
                crate::time_text::format_time(fault.cleared_ms.unwrap_or_default()),
                lasted as f64 / 1000.0,
                fault.cause
            ),
        ));
    }
    checks
}

/// Notices (call backs, alerts, summaries) that did not reach their recipient: failed ones fail
/// the check, ones still being retried are a warning; each with the channel's own error, which
/// names the key to fix.
pub fn notice_checks(database: &Path) -> Vec<Check> {
    let Ok(connection) = store::open_read_only(database) else {
        return Vec::new();
    };
    let tx = store::Tx::reader(&connection);
    // An older schema has no notices table yet: nothing recorded.
    let Ok(failing) = tx.failing_notices(10) else {
        return Vec::new();
    };
    failing
        .iter()
        .map(|notice| {
            let (verdict, state) = match (notice.state.as_str(), notice.attempts) {
                ("failed", n) => (Verdict::Failed, format!("failed after {n} attempt(s)")),
                (_, 0) => (Verdict::Warning, "waiting, nothing tried".to_string()),
                (_, n) => (
                    Verdict::Warning,
                    format!("not delivered yet after {n} attempt(s), retrying"),
                ),
            };
            Check::new(
                verdict,
                format!("notice {} {}", notice.id, notice.channel),
                format!(
                    "{} to {} ({}), {state}, since {}: {}",
                    notice.kind,
                    notice.recipient,
                    notice.subject,
                    crate::time_text::format_time(notice.created_ms),
                    notice.last_error.as_deref().unwrap_or("no error recorded")
                ),
            )
        })
        .collect()
}

/// Each SIM's credit, for the modems with a balance code (`modem.balance_ussd`), as the daemon
/// last read it.
pub fn balance_checks(config: &crate::config::Config, database: &Path) -> Vec<Check> {
    use crate::core::balance::format_pence;
    let rows = store::open_read_only(database)
        .ok()
        .and_then(|connection| store::Tx::reader(&connection).balances().ok())
        .unwrap_or_default();
    let mut checks = Vec::new();
    for modem in &config.modems {
        let Some(balance) = &modem.balance else {
            continue;
        };
        let name = format!("modem {} credit", modem.id);
        let row = rows.iter().find(|r| r.modem == modem.id.as_str());
        let check = match row {
            None => Check::new(
                Verdict::Warning,
                name,
                format!(
                    "not checked yet: the daemon dials {} once the modem is on the network",
                    balance.code
                ),
            ),
            Some(row) => {
                let last = match (&row.reply, &row.error) {
                    (_, Some(error)) => format!("; the last check failed: {error}"),
                    (Some(reply), None) if row.pence.is_none() => format!(
                        "; the last answer had no amount (\"{reply}\"): is modem.balance_ussd the balance code?"
                    ),
                    _ => String::new(),
                };
                match (row.known_pence, row.known_ms) {
                    (Some(pence), Some(at)) if pence < balance.low_pence => Check::new(
                        Verdict::Warning,
                        name,
                        format!(
                            "{} at {}, under modem.balance_low ({}): top up the SIM{last}",
                            format_pence(pence),
                            crate::time_text::format_time(at),
                            format_pence(balance.low_pence)
                        ),
                    ),
                    (Some(pence), Some(at)) => Check::new(
                        if last.is_empty() {
                            Verdict::Ok
                        } else {
                            Verdict::Warning
                        },
                        name,
                        format!(
                            "{} at {}{last}",
                            format_pence(pence),
                            crate::time_text::format_time(at)
                        ),
                    ),
                    _ => Check::new(
                        Verdict::Warning,
                        name,
                        format!(
                            "not known: checked at {}{last}",
                            crate::time_text::format_time(row.checked_ms)
                        ),
                    ),
                }
            }
        };
        checks.push(check);
    }
    checks
}

/// Each SIM's last daily self-test, for the modems with `[modem.self_test]`.
pub fn self_test_checks(config: &crate::config::Config, database: &Path) -> Vec<Check> {
    use crate::domain::SelfTestState;
    let rows = store::open_read_only(database)
        .ok()
        .and_then(|connection| store::Tx::reader(&connection).last_self_tests().ok())
        .unwrap_or_default();
    let mut checks = Vec::new();
    for modem in &config.modems {
        let Some(test) = &modem.self_test else {
            continue;
        };
        let name = format!("modem {} self-test", modem.id);
        let row = rows.iter().find(|r| r.modem == modem.id.as_str());
        checks.push(match row {
            None => Check::new(
                Verdict::Warning,
                name,
                format!(
                    "not run yet: the daemon texts {} daily at {} (UK time)",
                    test.to,
                    test.at.format("%H:%M")
                ),
            ),
            Some(row) => match row.state {
                SelfTestState::Passed => Check::new(
                    Verdict::Ok,
                    name,
                    format!(
                        "passed at {}: the text to {} came back on modem {} after {:.1} s",
                        crate::time_text::format_time(row.started_ms),
                        row.recipient,
                        row.received_on.as_deref().unwrap_or("?"),
                        (row.received_ms.unwrap_or(row.started_ms) - row.started_ms) as f64
                            / 1000.0
                    ),
                ),
                SelfTestState::Waiting => Check::new(
                    Verdict::Ok,
                    name,
                    format!(
                        "running since {}: waiting for the text to {} to come back",
                        crate::time_text::format_time(row.started_ms),
                        row.recipient
                    ),
                ),
                SelfTestState::Failed => Check::new(
                    Verdict::Failed,
                    name,
                    format!(
                        "failed at {}: {}",
                        crate::time_text::format_time(row.started_ms),
                        row.detail
                            .as_deref()
                            .unwrap_or("the text did not come back")
                    ),
                ),
            },
        });
    }
    checks
}

fn writable(path: &Path) -> bool {
    nix::unistd::access(path, nix::unistd::AccessFlags::W_OK).is_ok()
}

fn check_disk(database: &Path) -> Check {
    let mut dir = database.parent().unwrap_or(Path::new("/"));
    while !dir.exists() {
        match dir.parent() {
            Some(parent) => dir = parent,
            None => break,
        }
    }
    match nix::sys::statvfs::statvfs(dir) {
        Ok(stats) => {
            // The field types differ between 32- and 64-bit targets (a Raspberry Pi may be either).
            #[allow(clippy::unnecessary_cast)]
            let free = stats.blocks_available() as u64 * stats.fragment_size() as u64;
            let text = format!("{} MiB free on {}", free / (1024 * 1024), dir.display());
            if free < DISK_FAILED {
                Check::new(
                    Verdict::Failed,
                    "disk",
                    format!("{text}: free some space, or texts cannot be recorded"),
                )
            } else if free < DISK_WARNING {
                Check::new(
                    Verdict::Warning,
                    "disk",
                    format!("{text}: less than 1 GiB left"),
                )
            } else {
                Check::new(Verdict::Ok, "disk", text)
            }
        }
        Err(err) => Check::new(
            Verdict::Warning,
            "disk",
            format!("cannot read free space of {}: {err}", dir.display()),
        ),
    }
}

/// Whether the kernel's clock is synchronised (NTP), from adjtimex(2) without changing anything.
fn check_clock() -> Check {
    // SAFETY: adjtimex with modes = 0 only reads the kernel's clock state into the zeroed struct we
    // own; no pointer outlives the call.
    let (state, status) = unsafe {
        let mut timex: libc::timex = std::mem::zeroed();
        let state = libc::adjtimex(&mut timex);
        (state, timex.status)
    };
    let now = chrono::Utc::now()
        .with_timezone(&chrono_tz::Europe::London)
        .format("%Y-%m-%d %H:%M %Z")
        .to_string();
    if state == -1 {
        return Check::new(
            Verdict::Warning,
            "clock",
            format!("{now}; cannot tell whether it is synchronised"),
        );
    }
    if state == libc::TIME_ERROR || status & libc::STA_UNSYNC != 0 {
        Check::new(
            Verdict::Warning,
            "clock",
            format!(
                "{now}, not synchronised: business hours and time stamps depend on it. Run `timedatectl set-ntp true` (and check the box reaches an NTP server)"
            ),
        )
    } else {
        Check::new(Verdict::Ok, "clock", format!("{now}, synchronised"))
    }
}

async fn check_modem(config: crate::config::ModemConfig) -> Check {
    let subject = format!("modem {}", config.id);
    // A modem bound by USB serial is looked for under any name: its configured port may be absent.
    if !config.port.exists() && config.usb_serial.is_none() {
        return Check::new(
            Verdict::Failed,
            subject,
            format!(
                "no dongle at {}: plug the dongle in (the USB GSM stick, with its SIM) and wait a few seconds. `textback modem list` shows what is plugged in; the package's udev rules name a known dongle /dev/textback-modem, and another's port can be set as modem.port",
                config.port.display()
            ),
        );
    }
    let outcome = match Probe::open(config.clone(), MODEM_TIMEOUT).await {
        Ok(probe) => {
            let info = probe.info.clone();
            probe.close().await;
            Ok(info)
        }
        Err(reason) => Err(reason),
    };
    match outcome {
        Ok(info) => {
            let signal = match info.signal_dbm() {
                Some(dbm) => format!("signal {dbm} dBm"),
                None => "signal unknown".to_string(),
            };
            let full = matches!((info.sms_used, info.sms_capacity), (Some(used), Some(capacity)) if capacity > 0 && used >= capacity);
            let verdict =
                if full || info.smsc.is_empty() || info.signal_dbm().is_none_or(|dbm| dbm < -105) {
                    Verdict::Warning
                } else {
                    Verdict::Ok
                };
            let mut detail = format!(
                "{} {} on {}, {signal}, operator {}, SMSC {}",
                info.manufacturer,
                info.model,
                if info.port.is_empty() {
                    config.port.display().to_string()
                } else {
                    info.port.clone()
                },
                if info.operator.is_empty() {
                    "none"
                } else {
                    &info.operator
                },
                if info.smsc.is_empty() {
                    "none (set modem.smsc)"
                } else {
                    &info.smsc
                }
            );
            if info.signal_dbm().is_some_and(|dbm| dbm < -105) {
                detail.push_str(": weak signal, move the dongle or use a USB extension lead");
            }
            if full {
                detail.push_str(": the SIM's message store is full and new texts cannot arrive; the daemon empties it (or delete messages with `textback modem at AT+CMGD=<index>`)");
            }
            Check::new(verdict, subject, detail)
        }
        Err(reason)
            if reason.contains("in use")
                || reason.contains("busy")
                || reason.contains("exclusive lock") =>
        {
            Check::new(
                Verdict::Ok,
                subject,
                format!(
                    "{} is in use by the running daemon: `systemctl status textback`",
                    config.port.display()
                ),
            )
        }
        Err(reason) => Check::new(Verdict::Failed, subject, reason),
    }
}

/// The steps a call goes through, in order, with what to check when it stops before the next.
const STEPS: &[(JournalStep, &str)] = &[
    (
        JournalStep::Call,
        "no call reached textback: check the divert to the SIM's number (or the SIP trunk), and that `textback run` is running",
    ),
    (
        JournalStep::Profile,
        "the call was seen but no profile was chosen",
    ),
    (JournalStep::Policy, "no policy decision was recorded"),
    (
        JournalStep::Queued,
        "the policy decided to text but no SMS was queued",
    ),
    (
        JournalStep::Sending,
        "the SMS is queued but no modem took it: is the modem ready? (`textback doctor` above)",
    ),
    (
        JournalStep::Sent,
        "the modem was handed the SMS but the network has not accepted it yet",
    ),
    (
        JournalStep::Delivery,
        "the network accepted the SMS; no delivery report yet (some networks send none, or late)",
    ),
];

/// Follows the next call in the journal of the running daemon.
async fn watch_call(config: &Config, timeout: Duration) -> anyhow::Result<bool> {
    let database = &config.storage.database;
    if !database.exists() {
        println!(
            "\nFAILED   watch: no database at {}: start textback first (`systemctl start textback`)",
            database.display()
        );
        return Ok(false);
    }
    let connection = store::open_read_only(database)?;
    let mut last = Tx::reader(&connection).journal_head()?;
    let numbers: Vec<String> = config
        .profiles
        .iter()
        .flat_map(|p| p.numbers.iter().map(|n| n.national()))
        .collect();
    println!(
        "\nNow ring {} from a mobile and let it ring out. Waiting up to {}s for the call...",
        if numbers.is_empty() {
            "the business number".to_string()
        } else {
            numbers.join(" or ")
        },
        timeout.as_secs()
    );
    let deadline = tokio::time::Instant::now() + timeout;
    let mut reached: Option<usize> = None;
    let mut call_id: Option<i64> = None;
    let mut conversation: Option<i64> = None;
    loop {
        for row in Tx::reader(&connection).journal_since(last)? {
            last = row.id;
            // Follow the first call seen, and its conversation.
            if call_id.is_none() && row.step == JournalStep::Call {
                call_id = row.call_id;
            }
            if row.call_id.is_some() && row.call_id == call_id && row.conversation_id.is_some() {
                conversation = row.conversation_id;
            }
            let ours = (row.call_id.is_some() && row.call_id == call_id)
                || (row.conversation_id.is_some() && row.conversation_id == conversation);
            if !ours {
                continue;
            }
            println!(
                "  {}  {:<9} {}",
                format_clock(row.at_ms),
                row.step,
                row.detail
            );
            if let Some(index) = STEPS.iter().position(|(step, _)| *step == row.step) {
                reached = Some(reached.map_or(index, |r| r.max(index)));
            }
            if row.step == JournalStep::Skipped {
                println!(
                    "\nThe call reached textback and was deliberately not texted (above says why)."
                );
                return Ok(true);
            }
            if row.step == JournalStep::Failed {
                println!("\nFAILED: the SMS could not be sent (above says why).");
                return Ok(false);
            }
            if row.step == JournalStep::Delivery {
                println!("\nAll steps passed: the caller's phone has the text.");
                return Ok(true);
            }
        }
        if tokio::time::Instant::now() >= deadline {
            let next = reached.map_or(0, |r| r + 1);
            let hint = STEPS.get(next).map(|(_, hint)| *hint).unwrap_or("");
            let at = reached.map_or("nothing seen", |r| STEPS[r].0.as_str());
            println!("\nStopped after: {at}. {hint}");
            // A sent SMS without a delivery report is not a failure of the box.
            return Ok(reached.is_some_and(|r| r >= 5));
        }
        tokio::time::sleep(Duration::from_millis(200)).await;
    }
}

/// Asks a profile's local model to read one sample reply, as the daemon would. A model that does
/// not answer is a warning, not a failure: the built-in engine answers without it.
async fn check_model(
    profile: &crate::domain::ProfileId,
    dialogue: &crate::core::conversation::DialogueProfile,
    settings: &crate::llm::client::LlmSettings,
) -> Check {
    let subject = format!("model for {profile}");
    let client = match crate::llm::client::LlmClient::new(settings.clone()) {
        Ok(client) => client,
        Err(err) => return Check::new(Verdict::Warning, subject, err.to_string()),
    };
    // What the daemon asks the model about a first reply: the questions the opening text asks.
    let questions = match crate::domain::E164::parse("07700 900000") {
        Ok(caller) => {
            let (opened, _) = crate::core::conversation::Conversation::open(
                dialogue,
                &caller,
                &crate::core::conversation::CallTime(chrono::Utc::now()),
            );
            crate::core::proposal::questions_for_model(dialogue, &opened)
        }
        Err(_) => dialogue.questions.clone(),
    };
    match client
        .extract(&questions, &[], "Hi, it's Sam Smith, my boiler has stopped")
        .await
    {
        Ok(extraction) => Check::new(
            Verdict::Ok,
            subject,
            format!(
                "{} at {} answered a sample reply in {} ms (profile.llm.timeout_ms {})",
                settings.model,
                settings.base_url,
                extraction.elapsed.as_millis(),
                settings.timeout.as_millis()
            ),
        ),
        Err(err) => Check::new(
            Verdict::Warning,
            subject,
            format!("{err}; until it answers, the built-in engine reads replies alone"),
        ),
    }
}
