//! The command line: clap types, logging set-up, and one function per subcommand. Errors end here:
//! printed with their causes, and turned into the exit code (0 ok, 1 runtime failure, 2 bad config
//! or usage).

pub mod args;
pub mod dashboard;
pub mod demo;
pub mod dialogue;
pub mod doctor;
pub mod guide;
pub mod init;
pub mod leads;
pub mod notices;
pub mod sip;
pub mod sms;

use args::{ConfigArg, DEFAULT_CONFIG, load_config};
use std::io::IsTerminal;
use std::path::{Path, PathBuf};
use std::process::ExitCode;
use std::sync::Arc;

use anyhow::Context;
use clap::{Args, Parser, Subcommand, ValueEnum};
use tokio_util::sync::CancellationToken;

use crate::config;
use crate::domain::CallDecision;

/// Where the installed package keeps its config.
#[derive(Debug, Parser)]
#[command(
    name = "textback",
    version,
    about = "Texts back the callers a business missed, and turns the replies into leads",
    long_about = "textback turns missed phone calls into captured leads, on premises: it texts each \
                  caller from the business's own SIM, asks the business's questions by SMS, and \
                  hands the answers to the business."
)]
pub struct Cli {
    #[command(subcommand)]
    command: Command,
    /// Log format: human-readable, or one JSON object per line for log collectors.
    // display_order: in each command's help, after the command's own flags (clap puts a global
    // flag where its index falls, which in `init --help` was among the SMTP flags).
    #[arg(long, global = true, value_enum, default_value_t = LogFormat::Human, display_order = 100)]
    log_format: LogFormat,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, ValueEnum)]
enum LogFormat {
    Human,
    Json,
}

#[derive(Debug, Subcommand)]
enum Command {
    /// Run the daemon (what systemd starts).
    Run(ConfigArg),
    /// Run the whole product on its built-in demo config, with a virtual modem and a simulated
    /// caller: no hardware, no network.
    Demo(demo::DemoArgs),
    /// Check the config, the database, the clock and each modem; --watch follows a test call.
    Doctor(DoctorArgs),
    /// Write a first config by asking a few questions (or from flags, for scripted installs).
    Init(Box<init::InitArgs>),
    /// Config file commands.
    #[command(subcommand)]
    Config(ConfigCommand),
    /// The most recent calls, and what was done about each.
    Calls {
        #[command(flatten)]
        config: ConfigArg,
        /// How many calls to show.
        #[arg(long, default_value_t = 20)]
        limit: u32,
    },
    /// Leads.
    #[command(subcommand)]
    Leads(LeadsCommand),
    /// Notices that are not leads (call backs, modem alerts, morning summaries).
    #[command(subcommand)]
    Notices(NoticesCommand),
    /// The dashboard's password and API token.
    #[command(subcommand)]
    Dashboard(dashboard::DashboardCommand),
    /// Try the conversation engine on conversations written as data.
    #[command(subcommand)]
    Dialogue(dialogue::DialogueCommand),
    /// Modems.
    #[command(subcommand)]
    Modem(ModemCommand),
    /// SIP accounts: their registration state, and a test registration.
    #[command(subcommand)]
    Sip(SipCommand),
    /// SMS tools: decode a PDU from a modem log, show the PDUs a text becomes, send a test SMS.
    #[command(subcommand)]
    Sms(SmsCommand),
    /// How to divert the business's unanswered calls to the dongle's SIM.
    DivertGuide {
        #[command(flatten)]
        config: ConfigArg,
        /// The SIM's own number (default: asked of the first modem with AT+CNUM).
        #[arg(long)]
        number: Option<String>,
        /// Ring this many seconds before diverting (5 to 30).
        #[arg(long, default_value_t = 20)]
        seconds: u32,
    },
}

#[derive(Debug, Subcommand)]
enum SmsCommand {
    /// Decode an SMS-DELIVER, SMS-SUBMIT or SMS-STATUS-REPORT PDU as a modem prints it.
    Decode {
        /// The hex starts with the TPDU (no SMSC field), as in 3GPP examples.
        #[arg(long)]
        tpdu: bool,
        /// One JSON object, for scripts.
        #[arg(long)]
        json: bool,
        hex: String,
    },
    /// Show the PDUs (and AT+CMGS lengths) a text to NUMBER would be sent as.
    Encode {
        #[arg(long)]
        to: String,
        text: String,
    },
    /// Send a test SMS directly through a modem and wait for its delivery report. Stop the daemon
    /// first (`systemctl stop textback`): it holds the modem.
    Send {
        #[command(flatten)]
        modem: ModemArg,
        #[arg(long)]
        to: String,
        text: String,
        /// How long to wait for the delivery report, in seconds.
        #[arg(long, default_value_t = 60)]
        wait: u64,
    },
}

#[derive(Debug, Subcommand)]
enum SipCommand {
    /// Each account's registration as the daemon last recorded it (registered, last error, next
    /// refresh), and whether the daemon is running.
    Status(ConfigArg),
    /// Register one account once from here, print the outcome (and with --trace every message),
    /// then remove the registration again.
    Register {
        #[command(flatten)]
        config: ConfigArg,
        /// The account's `name` in the config.
        #[arg(long)]
        account: String,
        /// Print every SIP message sent and received.
        #[arg(long)]
        trace: bool,
    },
}

#[derive(Debug, Subcommand)]
enum ModemCommand {
    /// The USB serial ports present, their USB ids and interfaces, and which are known AT ports.
    List {
        /// One JSON object, for scripts.
        #[arg(long)]
        json: bool,
    },
    /// Everything the modem says about itself: model, IMEI, SIM, signal, network, SMSC.
    Info {
        #[command(flatten)]
        modem: ModemArg,
        /// One JSON object, for scripts.
        #[arg(long)]
        json: bool,
    },
    /// Send one AT command and print the reply; with no command, a console (one command a line).
    At {
        #[command(flatten)]
        modem: ModemArg,
        /// The command, e.g. AT+CSQ.
        command: Option<String>,
    },
}

#[derive(Debug, Args)]
struct ModemArg {
    /// The modem's AT port (default: the first modem of the config).
    #[arg(long)]
    port: Option<PathBuf>,
    /// The config file, for the modem's port and PIN.
    #[arg(long, short, env = "TEXTBACK_CONFIG", default_value = DEFAULT_CONFIG)]
    config: PathBuf,
}

impl ModemArg {
    fn modem(&self) -> anyhow::Result<config::ModemConfig> {
        if let Some(port) = &self.port {
            return Ok(config::ModemConfig::for_port(port.clone()));
        }
        let config = load_config(&self.config)?;
        config
            .modems
            .first()
            .cloned()
            .context("the config has no [[modem]]; name a port with --port")
    }
}

/// How long the technician's modem commands wait for the modem to be set up.
const PROBE_TIMEOUT: std::time::Duration = std::time::Duration::from_secs(30);

fn modem_info(modem: config::ModemConfig, json: bool) -> anyhow::Result<()> {
    let info = runtime()?.block_on(async {
        let probe = crate::modem::probe::Probe::open(modem.clone(), PROBE_TIMEOUT).await;
        match probe {
            Ok(probe) => {
                let info = probe.info.clone();
                probe.close().await;
                Ok(info)
            }
            Err(reason) => Err(anyhow::anyhow!(
                "modem on {}: {reason}",
                modem.port.display()
            )),
        }
    })?;
    if json {
        println!("{}", serde_json::to_string_pretty(&info)?);
        return Ok(());
    }
    let or_none = |value: &str| {
        if value.is_empty() {
            "(none)".to_string()
        } else {
            value.to_string()
        }
    };
    println!("port          {}", modem.port.display());
    println!("model         {} {}", info.manufacturer, info.model);
    println!("IMEI          {}", or_none(&info.imei));
    println!("IMSI          {}", or_none(&info.imsi));
    println!("ICCID         {}", or_none(&info.iccid));
    println!("own number    {}", or_none(&info.own_number));
    match (info.signal_dbm(), info.signal_bars()) {
        (Some(dbm), Some(bars)) => println!("signal        {dbm} dBm ({bars}/5 bars)"),
        _ => println!("signal        unknown (no network?)"),
    }
    println!("network       {}", info.registration_text());
    println!("operator      {}", or_none(&info.operator));
    println!("SMSC          {}", or_none(&info.smsc));
    match (info.sms_used, info.sms_capacity) {
        (Some(used), Some(capacity)) if capacity > 0 && used >= capacity => {
            println!("SIM messages  {used} of {capacity}: FULL, new texts cannot arrive")
        }
        (Some(used), Some(capacity)) => println!("SIM messages  {used} of {capacity}"),
        _ => println!("SIM messages  unknown"),
    }
    Ok(())
}

fn modem_at(modem: config::ModemConfig, command: Option<String>) -> anyhow::Result<ExitCode> {
    runtime()?.block_on(async {
        let mut probe = crate::modem::probe::Probe::open(modem.clone(), PROBE_TIMEOUT)
            .await
            .map_err(|reason| anyhow::anyhow!("modem on {}: {reason}", modem.port.display()))?;
        let mut failed = false;
        match command {
            Some(command) => failed = !run_at(&probe, &command).await,
            None => {
                use tokio::io::AsyncBufReadExt;
                eprintln!("AT console on {}: type commands, Ctrl-D to end. Unsolicited events show as they come.", modem.port.display());
                let mut lines = tokio::io::BufReader::new(tokio::io::stdin()).lines();
                loop {
                    tokio::select! {
                        line = lines.next_line() => match line {
                            Ok(Some(line)) if line.trim().is_empty() => {}
                            Ok(Some(line)) => { run_at(&probe, line.trim()).await; }
                            _ => break,
                        },
                        Some(event) = probe.events.recv() => println!("(unsolicited) {event:?}"),
                    }
                }
            }
        }
        probe.close().await;
        Ok(if failed { ExitCode::from(1) } else { ExitCode::SUCCESS })
    })
}

/// Runs one command and prints its reply; returns whether it ended in OK.
async fn run_at(probe: &crate::modem::probe::Probe, command: &str) -> bool {
    match probe.handle().command(command).await {
        Ok(lines) => {
            for line in lines {
                println!("{line}");
            }
            println!("OK");
            true
        }
        Err(err) => {
            println!("{err}");
            false
        }
    }
}

#[derive(Debug, Subcommand)]
enum ConfigCommand {
    /// Validate a config file and print every problem with its key path; exits 2 on errors.
    Check {
        /// The config file (default: $TEXTBACK_CONFIG, else /etc/textback/textback.toml).
        file: Option<PathBuf>,
    },
}

#[derive(Debug, Subcommand)]
enum NoticesCommand {
    /// The most recent notices, with how each went.
    List {
        #[command(flatten)]
        config: ConfigArg,
        #[arg(long, default_value_t = 20)]
        limit: u32,
    },
    /// Send a notice again (a failed one once its cause is fixed, or a lost email).
    Resend {
        #[command(flatten)]
        config: ConfigArg,
        /// The notice's number, as `notices list` shows it.
        id: i64,
    },
}

#[derive(Debug, Subcommand)]
enum LeadsCommand {
    /// The most recent leads, with how each delivery went.
    List {
        #[command(flatten)]
        config: ConfigArg,
        #[arg(long, default_value_t = 20)]
        limit: u32,
    },
    /// One lead: its summary as recipients get it, the transcript, and each delivery.
    Show {
        #[command(flatten)]
        config: ConfigArg,
        /// The lead's number, as `leads list` shows it.
        id: i64,
    },
    /// Send a lead to all its recipients again (a failed delivery, or a lost email).
    Resend {
        #[command(flatten)]
        config: ConfigArg,
        id: i64,
    },
    /// Mark a lead new, called_back, won or lost (webhook recipients are told).
    State {
        #[command(flatten)]
        config: ConfigArg,
        id: i64,
        /// new, called_back (or "called-back"), won or lost.
        state: String,
        /// Who did it, recorded with the change (default: the user running the command).
        #[arg(long)]
        by: Option<String>,
    },
}

#[derive(Debug, Args)]
pub struct DoctorArgs {
    #[command(flatten)]
    config: ConfigArg,
    /// After the checks, follow the next call through each step as it happens (the go-live test:
    /// ring the business number and let it ring out).
    #[arg(long)]
    watch: bool,
    /// How long --watch waits for a call, in seconds.
    #[arg(long, default_value_t = 300)]
    timeout: u64,
}

/// Parses the command line, runs the command, and returns the exit code.
pub fn main() -> ExitCode {
    let cli = Cli::parse();
    // The daemon logs at info; the other commands print their own output and log only warnings.
    init_logging(cli.log_format, matches!(cli.command, Command::Run(_)));
    match dispatch(cli.command) {
        Ok(code) => code,
        Err(err) => {
            eprintln!("error: {err:#}");
            if err
                .chain()
                .any(|cause| cause.downcast_ref::<config::Error>().is_some())
            {
                ExitCode::from(2)
            } else {
                ExitCode::from(1)
            }
        }
    }
}

fn init_logging(format: LogFormat, verbose: bool) {
    use tracing_subscriber::EnvFilter;
    let default = if verbose { "info" } else { "warn" };
    let filter = EnvFilter::try_from_default_env().unwrap_or_else(|_| EnvFilter::new(default));
    let builder = tracing_subscriber::fmt()
        .with_env_filter(filter)
        .with_writer(std::io::stderr);
    let _ = match format {
        LogFormat::Json => builder
            .json()
            .flatten_event(true)
            .with_current_span(true)
            .try_init(),
        LogFormat::Human => builder
            .with_ansi(std::io::stderr().is_terminal())
            .try_init(),
    };
}

fn runtime() -> anyhow::Result<tokio::runtime::Runtime> {
    tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()
        .context("starting the async runtime")
}

fn dispatch(command: Command) -> anyhow::Result<ExitCode> {
    match command {
        Command::Run(args) => {
            run(&args.config)?;
            Ok(ExitCode::SUCCESS)
        }
        Command::Demo(args) => runtime()?.block_on(demo::run(args)),
        Command::Doctor(args) => {
            let healthy = doctor::run(&args.config.config, args.watch, args.timeout)?;
            Ok(if healthy {
                ExitCode::SUCCESS
            } else {
                ExitCode::from(1)
            })
        }
        Command::Init(args) => {
            init::run(*args)?;
            Ok(ExitCode::SUCCESS)
        }
        Command::Config(ConfigCommand::Check { file }) => {
            let path = file
                .or_else(|| std::env::var_os("TEXTBACK_CONFIG").map(PathBuf::from))
                .unwrap_or_else(|| PathBuf::from(DEFAULT_CONFIG));
            config_check(&path)
        }
        Command::Calls { config, limit } => {
            calls(&config.config, limit)?;
            Ok(ExitCode::SUCCESS)
        }
        Command::Modem(ModemCommand::Info { modem, json }) => {
            modem_info(modem.modem()?, json)?;
            Ok(ExitCode::SUCCESS)
        }
        Command::Modem(ModemCommand::At { modem, command }) => modem_at(modem.modem()?, command),
        Command::Sip(SipCommand::Status(config)) => sip::status(&load_config(&config.config)?),
        Command::Sip(SipCommand::Register {
            config,
            account,
            trace,
        }) => sip::register(&load_config(&config.config)?, &account, trace),
        Command::Sms(SmsCommand::Decode { tpdu, json, hex }) => {
            let pdu = sms::decode(&hex, tpdu).map_err(|err| {
                anyhow::anyhow!(
                    "{err}{}",
                    if tpdu {
                        ""
                    } else {
                        " (if the hex has no SMSC field first, add --tpdu)"
                    }
                )
            })?;
            if json {
                println!("{}", serde_json::to_string_pretty(&sms::to_json(&pdu))?);
            } else {
                println!("{}", sms::describe(&pdu));
            }
            Ok(ExitCode::SUCCESS)
        }
        Command::Sms(SmsCommand::Encode { to, text }) => {
            let to = crate::domain::E164::parse(&to)?;
            print!("{}", sms::encode(to.as_str(), &text)?);
            Ok(ExitCode::SUCCESS)
        }
        Command::Sms(SmsCommand::Send {
            modem,
            to,
            text,
            wait,
        }) => {
            let to = crate::domain::E164::parse(&to)?;
            let modem = modem.modem()?;
            let ok = runtime()?.block_on(sms::send(
                modem,
                to.as_str(),
                &text,
                std::time::Duration::from_secs(wait),
            ))?;
            Ok(if ok {
                ExitCode::SUCCESS
            } else {
                ExitCode::from(1)
            })
        }
        Command::Modem(ModemCommand::List { json }) => {
            guide::modem_list(Path::new("/sys"), json);
            Ok(ExitCode::SUCCESS)
        }
        Command::DivertGuide {
            config,
            number,
            seconds,
        } => {
            let number = match number {
                Some(number) => Some(crate::domain::E164::parse(&number)?),
                None => {
                    let config = load_config(&config.config)?;
                    match runtime()?.block_on(guide::own_number(&config)) {
                        Ok(number) => number,
                        Err(reason) => {
                            eprintln!("warning: could not ask the modem for its number: {reason}");
                            None
                        }
                    }
                }
            };
            print!("{}", guide::divert_guide(number.as_ref(), seconds));
            Ok(ExitCode::SUCCESS)
        }
        Command::Leads(LeadsCommand::List { config, limit }) => {
            leads::list(&load_config(&config.config)?, limit)?;
            Ok(ExitCode::SUCCESS)
        }
        Command::Notices(NoticesCommand::List { config, limit }) => {
            notices::list(&load_config(&config.config)?, limit)?;
            Ok(ExitCode::SUCCESS)
        }
        Command::Notices(NoticesCommand::Resend { config, id }) => {
            notices::resend(&load_config(&config.config)?, &config.config, id)
        }
        Command::Dashboard(command) => dashboard::run(command),
        Command::Dialogue(command) => dialogue::run(command),
        Command::Leads(LeadsCommand::Show { config, id }) => {
            leads::show(&load_config(&config.config)?, id)
        }
        Command::Leads(LeadsCommand::Resend { config, id }) => {
            leads::resend(&load_config(&config.config)?, &config.config, id)
        }
        Command::Leads(LeadsCommand::State {
            config,
            id,
            state,
            by,
        }) => leads::set_state(
            Arc::new(load_config(&config.config)?),
            &config.config,
            id,
            &state,
            by,
        ),
    }
}

fn config_check(path: &Path) -> anyhow::Result<ExitCode> {
    match config::load(path) {
        Ok(loaded) => {
            for warning in &loaded.warnings {
                println!("warning: {warning}");
            }
            let config = loaded.config;
            println!(
                "{}: ok ({} profile{}, {} modem{}, {} SIP account{}{})",
                path.display(),
                config.profiles.len(),
                plural(config.profiles.len()),
                config.modems.len(),
                plural(config.modems.len()),
                config.sip_accounts.len(),
                plural(config.sip_accounts.len()),
                if loaded.warnings.is_empty() {
                    String::new()
                } else {
                    format!(
                        ", {} warning{}",
                        loaded.warnings.len(),
                        plural(loaded.warnings.len())
                    )
                }
            );
            Ok(ExitCode::SUCCESS)
        }
        Err(err) => {
            eprintln!("error: {err}");
            Ok(ExitCode::from(2))
        }
    }
}

fn plural(n: usize) -> &'static str {
    if n == 1 { "" } else { "s" }
}

fn run(path: &Path) -> anyhow::Result<()> {
    let loaded = config::load(path)?;
    // Through the log, so that --log-format json stays one JSON object a line.
    for warning in &loaded.warnings {
        tracing::warn!(key = %warning.path, "config: {}", warning.message);
    }
    let config = Arc::new(loaded.config);
    let runtime = runtime()?;
    runtime.block_on(async {
        let token = CancellationToken::new();
        let signals = token.clone();
        tokio::spawn(async move {
            wait_for_signal().await;
            signals.cancel();
        });
        let systemd = std::env::var_os("NOTIFY_SOCKET").is_some();
        crate::daemon::run(
            config,
            crate::daemon::RunOptions {
                systemd,
                ..Default::default()
            },
            token,
        )
        .await
    })
}

/// Waits for SIGTERM (systemd stop) or SIGINT (Ctrl-C).
async fn wait_for_signal() {
    use tokio::signal::unix::{SignalKind, signal};
    match (
        signal(SignalKind::terminate()),
        signal(SignalKind::interrupt()),
    ) {
        (Ok(mut term), Ok(mut int)) => {
            tokio::select! {
                _ = term.recv() => tracing::info!("SIGTERM received"),
                _ = int.recv() => tracing::info!("SIGINT received"),
            }
        }
        _ => {
            let _ = tokio::signal::ctrl_c().await;
        }
    }
}

fn open_database(path: &Path) -> anyhow::Result<rusqlite::Connection> {
    let config = load_config(path)?;
    let database = &config.storage.database;
    if !database.exists() {
        anyhow::bail!(
            "no database at {} yet: it is created when `textback run` first starts",
            database.display()
        );
    }
    Ok(crate::store::open_read_only(database)?)
}

fn calls(path: &Path, limit: u32) -> anyhow::Result<()> {
    let connection = open_database(path)?;
    let calls = crate::store::Tx::reader(&connection).recent_calls(limit)?;
    if calls.is_empty() {
        println!("no calls yet");
    }
    for call in calls {
        let when = crate::time_text::format_time(call.at_ms);
        let caller = call.caller.unwrap_or_else(|| "withheld".to_string());
        let what = match (call.decision, call.reason, call.conversation) {
            (CallDecision::Text, _, Some(conversation)) => {
                format!("texted (conversation {conversation})")
            }
            (_, Some(reason), _) => format!("not texted: {reason}"),
            (decision, None, _) => decision.to_string(),
        };
        println!(
            "{when}  {caller:<15} {:<6} {:<10} {what}",
            call.source, call.profile
        );
    }
    Ok(())
}
