//! `textback leads list | show ID | resend ID`: the leads, each with its transcript and how its
//! deliveries went, read from the database the daemon writes.

use std::path::Path;

use anyhow::Context;

use crate::config::Config;
use crate::domain::{Direction, LeadId};
use crate::leads::deliver::{self, LINK_KEY_SETTING};
use crate::store::{self, Tx};

fn read_only(config: &Config) -> anyhow::Result<rusqlite::Connection> {
    let database = &config.storage.database;
    if !database.exists() {
        anyhow::bail!(
            "no database at {} yet: it is created when `textback run` first starts",
            database.display()
        );
    }
    Ok(store::open_read_only(database)?)
}

/// The most recent leads, each with its answers and the state of each delivery.
pub fn list(config: &Config, limit: u32) -> anyhow::Result<()> {
    let connection = read_only(config)?;
    let tx = Tx::reader(&connection);
    let leads = tx.leads(limit)?;
    if leads.is_empty() {
        println!("no leads yet");
    }
    for lead in leads {
        println!(
            "lead {}  {}  {}  {}  {}",
            lead.id,
            crate::time_text::format_time(lead.created_ms),
            lead.caller,
            lead.profile,
            if lead.complete {
                "complete"
            } else {
                "incomplete"
            }
        );
        for (question, answer) in &lead.answers {
            println!("    {question}: {answer}");
        }
        for delivery in tx.deliveries(lead.id)? {
            println!(
                "    → {} by {}{}: {}",
                delivery.recipient,
                delivery.channel,
                delivery
                    .reply_id
                    .map(|reply| format!(" (reply {reply})"))
                    .unwrap_or_default(),
                delivery_state(&delivery)
            );
        }
    }
    Ok(())
}

fn delivery_state(delivery: &store::DeliveryRow) -> String {
    let tries = match delivery.attempts {
        1 => "1 try".to_string(),
        n => format!("{n} tries"),
    };
    match (delivery.state.as_str(), &delivery.last_error) {
        ("delivered", _) => format!(
            "delivered {}",
            delivery
                .delivered_ms
                .map(crate::time_text::format_time)
                .unwrap_or_default()
        ),
        ("failed", Some(error)) => format!("FAILED after {tries}: {error}"),
        ("pending", Some(error)) => format!(
            "waiting ({tries}), next try {}: {error}",
            crate::time_text::format_clock(delivery.next_attempt_ms)
        ),
        ("queued", _) => "SMS in the outbox".to_string(),
        ("sending", _) => "being sent".to_string(),
        (state, _) => state.to_string(),
    }
}

/// One lead: the summary as recipients get it, the transcript, and each delivery.
pub fn show(config: &Config, id: i64) -> anyhow::Result<std::process::ExitCode> {
    let connection = read_only(config)?;
    let tx = Tx::reader(&connection);
    let Some(detail) = tx.lead(LeadId(id))? else {
        eprintln!("no lead {id}: `textback leads list` shows the recent ones");
        return Ok(std::process::ExitCode::from(1));
    };
    // Links shown here are signed with the box's key, as in the summaries; before the daemon has
    // made one there is no link to show.
    let key = tx.setting(LINK_KEY_SETTING)?;
    match key {
        Some(key) => {
            let summary = deliver::summarise(config, &key, &detail)
                .map_err(|err| anyhow::anyhow!("{err}"))?;
            println!("{}", summary.text(chrono::Utc::now()));
        }
        None => println!(
            "lead {id} from {} ({})",
            detail.lead.caller, detail.lead.profile
        ),
    }
    let deliveries = tx.deliveries(detail.lead.id)?;
    println!();
    println!("transcript");
    for message in tx.conversation_messages(detail.lead.conversation)? {
        let arrow = if message.direction == Direction::In {
            "caller"
        } else {
            "us    "
        };
        // A reply after the lead is marked with the id its notifications name below.
        let told = deliveries
            .iter()
            .any(|delivery| delivery.reply_id == Some(message.id.0));
        let arrow = if told {
            format!("{arrow}  [reply {}]", message.id)
        } else {
            arrow.to_string()
        };
        let state = if message.direction == Direction::In {
            String::new()
        } else {
            format!("  [{}]", message.state)
        };
        println!(
            "  {}  {arrow}  {}{state}",
            crate::time_text::format_clock(message.created_ms),
            message.body.replace('\n', " / ")
        );
    }
    println!();
    println!("deliveries");
    for delivery in &deliveries {
        let about = match delivery.reply_id {
            None => "lead".to_string(),
            Some(reply) => format!("reply {reply}"),
        };
        println!(
            "  {about:<9} {} by {} to {}: {}",
            delivery.recipient,
            delivery.channel,
            delivery.target,
            delivery_state(delivery)
        );
    }
    Ok(std::process::ExitCode::SUCCESS)
}

/// Sends every delivery of a lead again (its summary, and the notices of replies after it); the
/// running daemon picks them up within seconds.
pub fn resend(config: &Config, path: &Path, id: i64) -> anyhow::Result<std::process::ExitCode> {
    read_only(config)?;
    let (store, closer) = store::Store::open(&config.storage.database)
        .with_context(|| format!("opening the database named in {}", path.display()))?;
    let runtime = tokio::runtime::Builder::new_current_thread()
        .build()
        .context("starting the async runtime")?;
    let at = crate::clock::Clock::system().now_ms();
    let reset = runtime.block_on(store.run(move |tx| tx.resend_lead(LeadId(id), at)))?;
    drop(store);
    closer.wait();
    if reset == 0 {
        eprintln!("lead {id} has no deliveries (no such lead, or its profile has no recipients)");
        return Ok(std::process::ExitCode::from(1));
    }
    println!(
        "lead {id}: {reset} deliver{} queued again; the running daemon sends {} within seconds (`textback leads show {id}` follows them)",
        if reset == 1 { "y" } else { "ies" },
        if reset == 1 { "it" } else { "them" }
    );
    Ok(std::process::ExitCode::SUCCESS)
}
