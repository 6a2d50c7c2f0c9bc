//! `[profile.llm]`: the local model a profile may use, as written and as checked. Read by the
//! config; used by the model client (`llm::client`), which this module does not know.

use std::net::IpAddr;
use std::time::Duration;

use serde::Deserialize;

use crate::core::proposal::{CombineOptions, MessageRules};

/// A problem with `[profile.llm]`, naming its key.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("{key} {problem}")]
pub struct LlmConfigError {
    pub key: &'static str,
    pub problem: String,
}

/// Which server `profile.llm.base_url` points at.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Flavour {
    /// `python3 -m llama_cpp.server` (PyPI `llama-cpp-python[server]`).
    LlamaCppPython,
    /// llama.cpp's `llama-server`.
    LlamaServer,
    /// Ollama's OpenAI-compatible endpoint.
    Ollama,
}

impl Flavour {
    pub fn as_str(&self) -> &'static str {
        match self {
            Flavour::LlamaCppPython => "llama_cpp_python",
            Flavour::LlamaServer => "llama_server",
            Flavour::Ollama => "ollama",
        }
    }
}

/// Defaults for `[profile.llm]`, in one place.
pub mod defaults {
    /// The most the caller waits for the model before the built-in engine answers.
    pub const TIMEOUT_MS: u64 = 5000;
    pub const MAX_TOKENS: u32 = 200;
    pub const TEMPERATURE: f32 = 0.0;
    /// Lines of the conversation so far put in the prompt (the newest).
    pub const HISTORY_TURNS: usize = 6;
    /// Characters of one earlier message, and of the reply, put in the prompt.
    pub const HISTORY_CHARS: usize = 300;
    pub const REPLY_CHARS: usize = 1000;
    /// The most of a server's answer read, in bytes.
    pub const MAX_RESPONSE_BYTES: usize = 256 * 1024;
    /// The instructions: the slots only. Every token the model writes costs ~70 ms on a 2-core
    /// CPU, so the model is asked for nothing the daemon does not use.
    pub const SYSTEM_PROMPT: &str = "You read text messages that callers send to a small business \
that missed their call. Fill in the JSON you are asked for. For each question id, copy the \
caller's own words that answer it, exactly as written, or null if the reply does not answer it. \
Never guess or invent a value.";
    /// Added to [`SYSTEM_PROMPT`] when `phrasing` is on (the model words the thanks).
    pub const PHRASING_PROMPT: &str = " reply_to_caller is one short friendly sentence thanking \
them, with no question, price, time, date, link or promise, or null.";
}

/// `[profile.llm]` as written in the config file. Only `base_url`, `model` and `flavour` are
/// required.
#[derive(Debug, Clone, PartialEq, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct LlmConfig {
    pub base_url: String,
    pub model: String,
    pub flavour: Flavour,
    pub timeout_ms: Option<u64>,
    pub max_tokens: Option<u32>,
    pub temperature: Option<f32>,
    pub system_prompt: Option<String>,
    /// Let the model's text replace the engine's lead-in ("Thanks."); default false.
    pub phrasing: Option<bool>,
    /// SMS parts a model-phrased text may take; default 1.
    pub max_parts: Option<usize>,
    /// Default true: a model text with emoji or other non-GSM-7 characters is not sent.
    pub require_gsm7: Option<bool>,
    pub allow_prices: Option<bool>,
    pub allow_times: Option<bool>,
    pub allow_bookings: Option<bool>,
}

/// Checked settings for one profile's model.
#[derive(Debug, Clone, PartialEq)]
pub struct LlmSettings {
    /// "http://127.0.0.1:8080": without the `/v1/...` path.
    pub base_url: String,
    pub model: String,
    pub flavour: Flavour,
    /// The whole call, connect to last byte.
    pub timeout: Duration,
    pub max_tokens: u32,
    pub temperature: f32,
    pub system_prompt: String,
    pub combine: CombineOptions,
}

impl LlmSettings {
    /// Settings with the defaults for everything but the server.
    pub fn new(base_url: &str, model: &str, flavour: Flavour) -> LlmSettings {
        LlmSettings {
            base_url: base_url.trim_end_matches('/').to_string(),
            model: model.to_string(),
            flavour,
            timeout: Duration::from_millis(defaults::TIMEOUT_MS),
            max_tokens: defaults::MAX_TOKENS,
            temperature: defaults::TEMPERATURE,
            system_prompt: defaults::SYSTEM_PROMPT.to_string(),
            combine: CombineOptions::default(),
        }
    }

    /// Checks `[profile.llm]`; every problem names its key.
    pub fn from_config(config: &LlmConfig) -> Result<LlmSettings, LlmConfigError> {
        let base_url = local_base_url(&config.base_url)?;
        if config.model.trim().is_empty() {
            return Err(LlmConfigError {
                key: "profile.llm.model",
                problem: "is empty; give the model's name as the server knows it".to_string(),
            });
        }
        let timeout_ms = config.timeout_ms.unwrap_or(defaults::TIMEOUT_MS);
        if !(100..=30_000).contains(&timeout_ms) {
            return Err(LlmConfigError {
                key: "profile.llm.timeout_ms",
                problem: format!("is {timeout_ms}; use 100 to 30000 (the caller waits this long)"),
            });
        }
        let max_tokens = config.max_tokens.unwrap_or(defaults::MAX_TOKENS);
        if !(16..=2048).contains(&max_tokens) {
            return Err(LlmConfigError {
                key: "profile.llm.max_tokens",
                problem: format!("is {max_tokens}; use 16 to 2048"),
            });
        }
        let temperature = config.temperature.unwrap_or(defaults::TEMPERATURE);
        if !(0.0..=2.0).contains(&temperature) {
            return Err(LlmConfigError {
                key: "profile.llm.temperature",
                problem: format!("is {temperature}; use 0 to 2"),
            });
        }
        let max_parts = config.max_parts.unwrap_or(1);
        if !(1..=3).contains(&max_parts) {
            return Err(LlmConfigError {
                key: "profile.llm.max_parts",
                problem: format!("is {max_parts}; use 1, 2 or 3"),
            });
        }
        let system_prompt = match config.system_prompt.as_deref().map(str::trim) {
            Some("") => {
                return Err(LlmConfigError {
                    key: "profile.llm.system_prompt",
                    problem: "is empty; leave it out for the default".to_string(),
                });
            }
            Some(prompt) => prompt.to_string(),
            None if config.phrasing == Some(true) => {
                format!("{}{}", defaults::SYSTEM_PROMPT, defaults::PHRASING_PROMPT)
            }
            None => defaults::SYSTEM_PROMPT.to_string(),
        };
        Ok(LlmSettings {
            base_url,
            model: config.model.trim().to_string(),
            flavour: config.flavour,
            timeout: Duration::from_millis(timeout_ms),
            max_tokens,
            temperature,
            system_prompt,
            combine: CombineOptions {
                phrasing: config.phrasing.unwrap_or(false),
                rules: MessageRules {
                    max_parts,
                    require_gsm7: config.require_gsm7.unwrap_or(true),
                    allow_prices: config.allow_prices.unwrap_or(false),
                    allow_times: config.allow_times.unwrap_or(false),
                    allow_bookings: config.allow_bookings.unwrap_or(false),
                },
            },
        })
    }
}

/// The URL without a trailing slash, if it is http(s) on this machine.
fn local_base_url(raw: &str) -> Result<String, LlmConfigError> {
    let bad = |problem: String| LlmConfigError {
        key: "profile.llm.base_url",
        problem,
    };
    let url = reqwest::Url::parse(raw.trim()).map_err(|e| {
        bad(format!(
            "{raw:?} is not a URL ({e}); e.g. \"http://127.0.0.1:8080\""
        ))
    })?;
    if !matches!(url.scheme(), "http" | "https") {
        return Err(bad(format!("{raw:?} is not http:// or https://")));
    }
    let host = url.host_str().unwrap_or("");
    let loopback = host.eq_ignore_ascii_case("localhost")
        || host
            .trim_start_matches('[')
            .trim_end_matches(']')
            .parse::<IpAddr>()
            .is_ok_and(|ip| ip.is_loopback());
    if !loopback {
        return Err(bad(format!(
            "{raw:?} is not on this machine; use 127.0.0.1, [::1] or localhost (nothing leaves the box)"
        )));
    }
    if url.path().trim_matches('/').ends_with("chat/completions") || url.path().contains("/v1") {
        return Err(bad(format!(
            "{raw:?} has a path; give the server only, e.g. \"http://127.0.0.1:8080\" (/v1/chat/completions is added)"
        )));
    }
    Ok(url.as_str().trim_end_matches('/').to_string())
}
