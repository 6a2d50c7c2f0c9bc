//! `textback notices list | resend ID`: what the box told recipients that was not a lead (call
//! backs, modem alerts, morning summaries) on email, WhatsApp and webhook, and how each went,
//! read from the database the daemon writes.

use std::path::Path;
use std::process::ExitCode;

use anyhow::Context;

use crate::config::Config;
use crate::store::{self, NoticeRow, Tx};

/// The most recent notices, newest first, each with its state and last error.
pub fn list(config: &Config, limit: u32) -> anyhow::Result<()> {
    let database = &config.storage.database;
    if !database.exists() {
        anyhow::bail!(
            "no database at {} yet: it is created when `textback run` first starts",
            database.display()
        );
    }
    let connection = store::open_read_only(database)?;
    let notices = Tx::reader(&connection)
        .notices(limit)
        .context("reading the notices (a database from before notices: run the daemon once)")?;
    if notices.is_empty() {
        println!("no notices yet");
    }
    for notice in &notices {
        println!("{}", line(notice));
    }
    Ok(())
}

/// One notice as `list` prints it.
fn line(notice: &NoticeRow) -> String {
    let state = match (notice.state.as_str(), &notice.last_error) {
        ("failed", Some(error)) => format!(
            "FAILED after {} tr{}: {error}",
            notice.attempts,
            if notice.attempts == 1 { "y" } else { "ies" }
        ),
        ("pending", Some(error)) => format!("waiting to try again: {error}"),
        (state, _) => state.to_string(),
    };
    format!(
        "notice {}  {}  {}  {} to {} by {}: {}  [{}]",
        notice.id,
        crate::time_text::format_time(notice.created_ms),
        notice.profile,
        notice.kind,
        notice.recipient,
        notice.channel,
        notice.subject,
        state
    )
}

/// Sends a notice again from the start (a failed one once its cause is fixed, or a lost email).
pub fn resend(config: &Config, path: &Path, id: i64) -> anyhow::Result<ExitCode> {
    if !config.storage.database.exists() {
        anyhow::bail!(
            "no database at {} yet: it is created when `textback run` first starts",
            config.storage.database.display()
        );
    }
    let (store, closer) = store::Store::open(&config.storage.database)
        .with_context(|| format!("opening the database named in {}", path.display()))?;
    let runtime = tokio::runtime::Builder::new_current_thread()
        .build()
        .context("starting the async runtime")?;
    let at = crate::clock::Clock::system().now_ms();
    let reset = runtime.block_on(store.run(move |tx| tx.resend_notice(id, at)))?;
    drop(store);
    closer.wait();
    if !reset {
        eprintln!(
            "notice {id} cannot be sent again: there is no such notice, or it is still waiting to be sent (`textback notices list`)"
        );
        return Ok(ExitCode::from(1));
    }
    println!(
        "notice {id} queued again; the running daemon sends it within seconds (`textback notices list` follows it)"
    );
    Ok(ExitCode::SUCCESS)
}
