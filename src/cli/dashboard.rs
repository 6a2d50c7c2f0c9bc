//! `textback dashboard set-password | api-token | login-link`: the credentials of the dashboard,
//! kept in the database (a password as its argon2 hash, a token or a link as its SHA-256), so
//! that the running daemon sees a change at once.

use std::io::BufRead;
use std::process::ExitCode;

use anyhow::Context;
use clap::Subcommand;

use crate::cli::args::{ConfigArg, load_config};
use crate::store::Store;
use crate::web::auth;

#[derive(Debug, Subcommand)]
pub enum DashboardCommand {
    /// Set the password that opens the dashboard (asked twice; or one line on stdin with
    /// --stdin, for scripts).
    SetPassword {
        #[command(flatten)]
        config: ConfigArg,
        /// Read the password from the first line of standard input.
        #[arg(long)]
        stdin: bool,
    },
    /// Make a new token for the JSON API and /metrics (`Authorization: Bearer <token>`); the
    /// one before stops working.
    ApiToken {
        #[command(flatten)]
        config: ConfigArg,
    },
    /// Print a link that logs in once, within 15 minutes, without the password (for the owner
    /// on the box: locked out, or the password not to hand). A new link replaces the last.
    LoginLink {
        #[command(flatten)]
        config: ConfigArg,
    },
}

/// Passwords shorter than this are refused: the dashboard may face the LAN.
const MIN_PASSWORD: usize = 10;

pub fn run(command: DashboardCommand) -> anyhow::Result<ExitCode> {
    match command {
        DashboardCommand::SetPassword { config, stdin } => {
            let password = if stdin {
                let mut line = String::new();
                std::io::stdin()
                    .lock()
                    .read_line(&mut line)
                    .context("reading the password from stdin")?;
                line.trim_end_matches(['\r', '\n']).to_string()
            } else {
                let first = prompt("New dashboard password: ")?;
                let again = prompt("Again: ")?;
                if first != again {
                    eprintln!("the two passwords differ; nothing changed");
                    return Ok(ExitCode::from(1));
                }
                first
            };
            if password.chars().count() < MIN_PASSWORD {
                eprintln!(
                    "a dashboard password needs at least {MIN_PASSWORD} characters; nothing changed"
                );
                return Ok(ExitCode::from(2));
            }
            let hash = auth::hash_password(&password)
                .map_err(|err| anyhow::anyhow!("hashing the password: {err}"))?;
            store_setting(&config, auth::PASSWORD_SETTING, hash.into_bytes())?;
            println!("dashboard password set; every open session has ended");
            Ok(ExitCode::SUCCESS)
        }
        DashboardCommand::ApiToken { config } => {
            let token = auth::random_token(32).context("reading /dev/urandom")?;
            store_setting(&config, auth::API_TOKEN_SETTING, auth::token_digest(&token))?;
            println!("{token}");
            eprintln!(
                "keep it: it is not stored, only its hash. Use it as `Authorization: Bearer <token>` for /api/v1 and /metrics"
            );
            Ok(ExitCode::SUCCESS)
        }
        DashboardCommand::LoginLink { config: arg } => {
            let config = load_config(&arg.config)?;
            let token = auth::random_token(32).context("reading /dev/urandom")?;
            let valid = auth::LOGIN_LINK_VALID;
            let expires_ms = chrono::Utc::now().timestamp_millis()
                + i64::try_from(valid.as_millis()).unwrap_or(i64::MAX);
            store_setting(
                &arg,
                auth::LOGIN_LINK_SETTING,
                auth::login_link_value(&token, expires_ms),
            )?;
            println!("{}/login/link/{token}", config.dashboard.public_url);
            eprintln!(
                "open it within {} minutes: it logs in once, and a new link replaces it. If dashboard.public_url is not how you reach the dashboard, use the path after it with the right address",
                valid.as_secs() / 60
            );
            Ok(ExitCode::SUCCESS)
        }
    }
}

/// Stores a new one-time login link for the dashboard of the database at `database`, served at
/// `public_url`, and returns it (as `login-link` does; for `textback demo --serve`, inside its
/// runtime while the daemon runs).
pub(crate) async fn new_login_link(
    database: &std::path::Path,
    public_url: &str,
) -> anyhow::Result<String> {
    let token = auth::random_token(32).context("reading /dev/urandom")?;
    let expires_ms = chrono::Utc::now().timestamp_millis()
        + i64::try_from(auth::LOGIN_LINK_VALID.as_millis()).unwrap_or(i64::MAX);
    let value = auth::login_link_value(&token, expires_ms);
    let (store, closer) = Store::open(database)
        .with_context(|| format!("opening the database {}", database.display()))?;
    store
        .run(move |tx| tx.set_setting(auth::LOGIN_LINK_SETTING, &value))
        .await?;
    drop(store);
    tokio::task::spawn_blocking(move || closer.wait())
        .await
        .context("closing the database")?;
    Ok(format!("{public_url}/login/link/{token}"))
}

/// Reads a line from the terminal without echoing it.
fn prompt(question: &str) -> anyhow::Result<String> {
    use nix::sys::termios::{self, LocalFlags, SetArg};
    eprint!("{question}");
    let stdin = std::io::stdin();
    let saved = termios::tcgetattr(&stdin).ok();
    if let Some(saved) = &saved {
        let mut quiet = saved.clone();
        quiet.local_flags.remove(LocalFlags::ECHO);
        let _ = termios::tcsetattr(&stdin, SetArg::TCSANOW, &quiet);
    }
    let mut line = String::new();
    let read = stdin.lock().read_line(&mut line);
    if let Some(saved) = &saved {
        let _ = termios::tcsetattr(&stdin, SetArg::TCSANOW, saved);
    }
    eprintln!();
    read.context("reading the password")?;
    Ok(line.trim_end_matches(['\r', '\n']).to_string())
}

fn store_setting(config: &ConfigArg, key: &'static str, value: Vec<u8>) -> anyhow::Result<()> {
    let config = load_config(&config.config)?;
    let (store, closer) = Store::open(&config.storage.database).with_context(|| {
        format!(
            "opening the database {} (run as the textback user: sudo -u textback ...)",
            config.storage.database.display()
        )
    })?;
    let runtime = tokio::runtime::Builder::new_current_thread()
        .build()
        .context("starting the async runtime")?;
    runtime.block_on(store.run(move |tx| tx.set_setting(key, &value)))?;
    drop(store);
    closer.wait();
    Ok(())
}
