//! What the commands share: the config argument every command takes, and loading the config
//! with its warnings printed.

use std::path::{Path, PathBuf};

use clap::Args;

use crate::config;

/// Where the config is when no --config or $TEXTBACK_CONFIG says otherwise.
pub const DEFAULT_CONFIG: &str = "/etc/textback/textback.toml";

#[derive(Debug, Args)]
pub struct ConfigArg {
    /// The config file.
    #[arg(long, short, env = "TEXTBACK_CONFIG", default_value = DEFAULT_CONFIG)]
    pub config: PathBuf,
}

/// Loads the config and prints its warnings to stderr.
pub fn load_config(path: &Path) -> anyhow::Result<config::Config> {
    let loaded = config::load(path)?;
    for warning in &loaded.warnings {
        eprintln!("warning: {warning}");
    }
    Ok(loaded.config)
}
