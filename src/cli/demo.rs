//! `textback demo`: the whole product on its built-in config, with a virtual modem on a real
//! pseudo-terminal and a simulated caller, printing each step from the journal as it happens.
//! With `--serve`, the dashboard then stays up with the demo's lead, calls and modem, until
//! Ctrl-C; everything lives in a temporary folder removed at the end.

use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::time::Duration;

use anyhow::{Context, bail};
use clap::Args;

use crate::config;
use crate::daemon::{self, RunOptions};
use crate::domain::{ChannelKind, DeliveryState, JournalStep};
use crate::modem::virtual_modem::{self, Model, VirtualModem};
use crate::store::{self, Tx};
use crate::time_text::format_clock;

/// The demo's config, built in so the demo needs no files.
pub const DEMO_CONFIG: &str = include_str!("../../config/demo.toml");

/// The caller in the demo: a number from Ofcom's range for drama (07700 900xxx).
const CALLER: &str = "07700900123";
/// The caller's replies, one per question of the demo profile.
const REPLIES: &[&str] = &[
    "Dave Smith",
    "The boiler is leaking under the kitchen sink, water everywhere 😬",
    "SW11 4AB",
];

/// How long any one step may take before the demo says where it stopped.
const STEP_TIMEOUT: Duration = Duration::from_secs(20);

#[derive(Debug, Args)]
pub struct DemoArgs {
    /// Keep the demo's database in this directory (default: a temporary one, removed at the end).
    #[arg(long)]
    keep: Option<PathBuf>,
    /// Which dongle the virtual modem behaves like: generic, huawei-e3372, huawei-e1550,
    /// huawei-e173, zte-mf190, simcom-sim7600, simcom-sim800 or quectel-ec25.
    #[arg(long, default_value = "huawei-e3372")]
    model: String,
    /// After the story, keep the dashboard up on a free local port with a one-time login link,
    /// until Ctrl-C.
    #[arg(long)]
    serve: bool,
}

pub async fn run(args: DemoArgs) -> anyhow::Result<std::process::ExitCode> {
    let Some(model) = Model::parse(&args.model) else {
        bail!(
            "unknown modem model {:?}: use one of {}",
            args.model,
            Model::names()
        );
    };
    let temporary = tempfile::tempdir().context("creating a temporary directory")?;
    let dir = args
        .keep
        .clone()
        .unwrap_or_else(|| temporary.path().to_path_buf());
    std::fs::create_dir_all(&dir).with_context(|| format!("creating {}", dir.display()))?;
    let database = dir.join("textback-demo.db");

    let modem = VirtualModem::start(virtual_modem::Options {
        model,
        ..virtual_modem::Options::default()
    })
    .context("starting the virtual modem")?;
    let mut config = config::parse(DEMO_CONFIG, Path::new("config/demo.toml"))?.config;
    config.storage.database = database.clone();
    // A free port for the dashboard, so that the links in the lead point at it.
    let port = std::net::TcpListener::bind("127.0.0.1:0")
        .and_then(|listener| listener.local_addr())
        .context("finding a free port for the dashboard")?
        .port();
    config.dashboard.listen = std::net::SocketAddr::from(([127, 0, 0, 1], port));
    config.dashboard.public_url = format!("http://127.0.0.1:{port}");
    for modem_config in &mut config.modems {
        modem_config.port = modem.path().to_path_buf();
    }
    let business = config.profiles[0].name.clone();
    println!(
        "textback demo: {business}, one virtual {} modem on {}",
        args.model,
        modem.path().display()
    );
    println!("database: {}\n", database.display());

    let config = Arc::new(config);
    let running = daemon::start(config.clone(), RunOptions::default()).await?;
    let result = script(&modem, &database, &config).await;
    if result.is_ok() && args.serve {
        let served = serve(&config, &database).await;
        running.stop().await?;
        modem.stop().await;
        served?;
        println!("\nDemo stopped{}.", deleted(&args, &database));
        return Ok(std::process::ExitCode::SUCCESS);
    }
    running.stop().await?;
    modem.stop().await;
    match result {
        Ok(()) => {
            println!(
                "\nDemo finished: one missed call became one lead; two calls that must not be texted were not."
            );
            if args.keep.is_some() {
                println!(
                    "The database is kept at {}: try `sqlite3 {} 'select * from journal'`",
                    database.display(),
                    database.display()
                );
            }
            println!(
                "To click through the lead, its transcript, the calls and the modem in the dashboard: textback demo --serve"
            );
            Ok(std::process::ExitCode::SUCCESS)
        }
        Err(err) => Err(err.context("the demo stopped before the end")),
    }
}

/// What happens to the demo's data at the end, for the last line.
fn deleted(args: &DemoArgs, database: &Path) -> String {
    match args.keep {
        Some(_) => format!("; its database is kept at {}", database.display()),
        None => " and its temporary folder is deleted".to_string(),
    }
}

/// Keeps the running daemon's dashboard up with a one-time login link until Ctrl-C (or SIGTERM).
async fn serve(config: &config::Config, database: &Path) -> anyhow::Result<()> {
    let base = &config.dashboard.public_url;
    let link = super::dashboard::new_login_link(database, base)
        .await
        .context("making a login link for the demo's dashboard")?;
    println!("\n== The dashboard, with this demo's lead, calls and modem");
    println!("Open this link in a browser on this machine; it logs in once, within 15 minutes:");
    println!("  {link}");
    println!(
        "Then: Leads (the lead and its transcript), Calls (the three calls and why two got no text), Status (the virtual modem)."
    );
    println!(
        "The transcript link in the lead above opens without logging in. Ctrl-C stops the demo."
    );
    super::wait_for_signal().await;
    Ok(())
}

async fn script(
    modem: &VirtualModem,
    database: &Path,
    config: &config::Config,
) -> anyhow::Result<()> {
    let mut journal = JournalTail::new(database)?;

    println!("== A caller rings the business's SIM and gives up after 3 rings");
    modem.call(Some(CALLER), 3).await;
    let mut expected = 1;
    wait_sent(modem, expected)
        .await
        .context("waiting for the first text to the caller")?;
    journal
        .wait_for(
            JournalStep::Delivery,
            "the delivery report of the first text",
        )
        .await?;

    for reply in REPLIES {
        println!("\n== The caller replies: {reply}");
        modem
            .receive_sms(&format!("+44{}", &CALLER[1..]), reply)
            .await;
        expected += 1;
        wait_sent(modem, expected)
            .await
            .context("waiting for textback's answer")?;
        journal
            .wait_for(JournalStep::Queued, "textback's next text")
            .await?;
    }
    journal.wait_for(JournalStep::Lead, "the lead").await?;

    println!("\n== A withheld number rings");
    modem.call(None, 2).await;
    journal
        .wait_for(
            JournalStep::Skipped,
            "the policy decision on the withheld call",
        )
        .await?;

    println!("\n== A landline rings (texts only go to mobiles)");
    modem.call(Some("02079460018"), 2).await;
    journal
        .wait_for(
            JournalStep::Skipped,
            "the policy decision on the landline call",
        )
        .await?;
    journal.drain()?;

    let connection = store::open_read_only(database)?;
    let leads = Tx::reader(&connection).leads(10)?;
    let Some(lead) = leads.first() else {
        bail!("no lead was recorded");
    };
    // The owner's SMS goes through the outbox like any text: wait until the network took it.
    let deadline = tokio::time::Instant::now() + STEP_TIMEOUT;
    let deliveries = loop {
        let deliveries = Tx::reader(&connection).deliveries(lead.id)?;
        let settled = deliveries
            .iter()
            .all(|d| d.channel != ChannelKind::Sms || d.state == DeliveryState::Delivered);
        if settled || tokio::time::Instant::now() > deadline {
            break deliveries;
        }
        // A bounded poll of the database the daemon writes.
        tokio::time::sleep(Duration::from_millis(50)).await;
    };
    let detail = Tx::reader(&connection)
        .lead(lead.id)?
        .context("the lead vanished")?;
    let key = Tx::reader(&connection)
        .setting(crate::leads::deliver::LINK_KEY_SETTING)?
        .context("no transcript link key")?;
    let summary = crate::leads::deliver::summarise(config, &key, &detail)
        .map_err(|err| anyhow::anyhow!("{err}"))?;
    println!("\n== The lead, as the business receives it by email");
    println!("Subject: {}\n", summary.subject());
    println!("{}", summary.text(chrono::Utc::now()));
    println!("\n== Its deliveries");
    for delivery in deliveries {
        println!(
            "{} by {} to {}: {}{}",
            delivery.recipient,
            delivery.channel,
            delivery.target,
            delivery.state,
            delivery
                .last_error
                .map(|e| format!(" ({e})"))
                .unwrap_or_default()
        );
    }
    Ok(())
}

async fn wait_sent(modem: &VirtualModem, count: usize) -> anyhow::Result<()> {
    let sent = modem.wait_sent(count, STEP_TIMEOUT).await;
    if sent.len() < count {
        bail!(
            "the modem was asked to send {} SMS, expected {count}",
            sent.len()
        );
    }
    Ok(())
}

/// Prints journal rows as they appear in the database.
struct JournalTail {
    connection: rusqlite::Connection,
    last: i64,
    /// Steps printed but not yet waited for: one batch of rows may hold several.
    unclaimed: Vec<JournalStep>,
}

impl JournalTail {
    fn new(database: &Path) -> anyhow::Result<Self> {
        let connection = store::open_read_only(database)?;
        Ok(Self {
            connection,
            last: 0,
            unclaimed: Vec::new(),
        })
    }

    /// Prints new rows; returns the steps seen.
    fn drain(&mut self) -> anyhow::Result<Vec<JournalStep>> {
        let rows = Tx::reader(&self.connection).journal_since(self.last)?;
        let mut steps = Vec::new();
        for row in rows {
            self.last = row.id;
            println!(
                "  {} {:<9} {}",
                format_clock(row.at_ms),
                row.step,
                row.detail
            );
            steps.push(row.step);
        }
        Ok(steps)
    }

    /// Prints rows until one with `step` has appeared that no earlier wait claimed.
    async fn wait_for(&mut self, step: JournalStep, what: &str) -> anyhow::Result<()> {
        let deadline = tokio::time::Instant::now() + STEP_TIMEOUT;
        loop {
            let seen = self.drain()?;
            self.unclaimed.extend(seen);
            if let Some(at) = self.unclaimed.iter().position(|s| *s == step) {
                self.unclaimed.drain(..=at);
                return Ok(());
            }
            if tokio::time::Instant::now() > deadline {
                bail!("{what} did not come within {}s", STEP_TIMEOUT.as_secs());
            }
            tokio::time::sleep(Duration::from_millis(50)).await;
        }
    }
}
