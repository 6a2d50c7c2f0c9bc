//! `textback dialogue replay FILE`: runs conversations written as data (tests/dialogues/README.md
//! has the format) through the built-in engine, so that a business can check its questions
//! before going live. Prints one JSON object per case: the slots captured, the outcome, and
//! where they differ from what the case expects.
//!
//! `textback dialogue try --profile NAME`: the business owner plays the caller in the terminal,
//! against the profile in the config (its questions, answers, hours and local model), with the
//! same code the daemon runs; nothing is stored or sent.

use std::collections::BTreeMap;
use std::io::Write;
use std::path::{Path, PathBuf};
use std::process::ExitCode;

use anyhow::Context;
use clap::Subcommand;

use crate::core::conversation::DialogueProfile;
use crate::core::replay;

#[derive(Debug, Subcommand)]
pub enum DialogueCommand {
    /// Play the caller: prints the profile's first text, then answers each line you type as the
    /// daemon would answer that SMS. Type /slots for what it has, /quiet MINUTES to go silent,
    /// /quit (or Ctrl-D) to stop. Nothing is stored or sent.
    Try {
        #[command(flatten)]
        config: crate::cli::ConfigArg,
        /// The profile's id in the config.
        #[arg(long)]
        profile: String,
        /// The caller's number (default: one of Ofcom's numbers for drama).
        #[arg(long, default_value = "07700900123")]
        caller: String,
        /// The built-in engine alone, even when the profile has a local model.
        #[arg(long)]
        no_model: bool,
    },
    /// Replay the cases in a TOML file; exit 1 if any slot or outcome differs from the case's
    /// expectations.
    Replay {
        /// A file of [[case]] entries.
        file: PathBuf,
        /// Where the profiles the cases name are (default: `profiles/` beside the file).
        #[arg(long)]
        profiles: Option<PathBuf>,
    },
}

pub fn run(command: DialogueCommand) -> anyhow::Result<ExitCode> {
    match command {
        DialogueCommand::Try {
            config,
            profile,
            caller,
            no_model,
        } => {
            let config = crate::cli::load_config(&config.config)?;
            let stdin = std::io::stdin();
            let interactive = std::io::IsTerminal::is_terminal(&stdin);
            try_profile(
                &config,
                &profile,
                &caller,
                no_model,
                &mut stdin.lock(),
                &mut std::io::stdout().lock(),
                interactive,
            )?;
            Ok(ExitCode::SUCCESS)
        }
        DialogueCommand::Replay { file, profiles } => {
            let directory = profiles
                .unwrap_or_else(|| file.parent().unwrap_or(Path::new(".")).join("profiles"));
            let text = std::fs::read_to_string(&file)
                .with_context(|| format!("reading {}", file.display()))?;
            let cases = replay::parse_cases(&text, &file.display().to_string())?;
            let mut loaded: BTreeMap<String, DialogueProfile> = BTreeMap::new();
            let mut all_right = true;
            for case in cases {
                if !loaded.contains_key(&case.profile) {
                    let path = directory.join(format!("{}.toml", case.profile));
                    let text = std::fs::read_to_string(&path).with_context(|| {
                        format!(
                            "case {:?} names profile {:?}: reading {} (give --profiles DIR)",
                            case.name,
                            case.profile,
                            path.display()
                        )
                    })?;
                    let profile = replay::parse_profile(&text, &path.display().to_string())?;
                    if let Err(problems) = profile.check() {
                        let listed: Vec<String> =
                            problems.iter().map(|p| format!("{p:?}")).collect();
                        anyhow::bail!("{}: {}", path.display(), listed.join("; "));
                    }
                    loaded.insert(case.profile.clone(), profile);
                }
                let Some(profile) = loaded.get(&case.profile) else {
                    continue;
                };
                let result = replay::replay(&case, profile)?;
                let score = replay::score(&case, &result);
                all_right &= score.misses.is_empty();
                let transcript: Vec<serde_json::Value> = result
                    .transcript
                    .iter()
                    .map(|(who, text)| {
                        let who = match who {
                            replay::Who::Caller => "caller",
                            replay::Who::Business => "business",
                            replay::Who::Note => "note",
                        };
                        serde_json::json!({ "from": who, "text": text })
                    })
                    .collect();
                let misses: Vec<serde_json::Value> = score
                    .misses
                    .iter()
                    .map(|m| serde_json::json!({"what": m.what, "expected": m.expected, "got": m.actual}))
                    .collect();
                let line = serde_json::json!({
                        "case": case.name,
                        "slots": result.slots,
                        "outcome": format!("{:?}", result.outcome).to_lowercase(),
                        "as_expected": score.misses.is_empty(),
                        "misses": misses,
                        "transcript": transcript,
                });
                // A closed pipe (`| head`) ends the output quietly, as other CLI tools do.
                if writeln!(std::io::stdout().lock(), "{line}").is_err() {
                    return Ok(ExitCode::SUCCESS);
                }
            }
            Ok(if all_right {
                ExitCode::SUCCESS
            } else {
                ExitCode::from(1)
            })
        }
    }
}

/// The `dialogue try` loop, reading the caller's lines from `input`.
pub fn try_profile(
    config: &crate::config::Config,
    profile: &str,
    caller: &str,
    no_model: bool,
    input: &mut dyn std::io::BufRead,
    out: &mut dyn Write,
    prompt: bool,
) -> anyhow::Result<()> {
    use crate::core::conversation::{CallTime, Conversation, Status};
    use crate::core::proposal;

    let wanted = crate::domain::ProfileId::parse(profile)
        .map_err(|err| anyhow::anyhow!("--profile {profile:?}: {err}"))?;
    let Some(profile) = config.profile(&wanted) else {
        let known: Vec<&str> = config.profiles.iter().map(|p| p.id.as_str()).collect();
        anyhow::bail!(
            "no profile {:?} in the config; its profiles are: {}",
            wanted.as_str(),
            known.join(", ")
        );
    };
    let caller = crate::domain::E164::parse(caller)
        .map_err(|err| anyhow::anyhow!("--caller {caller:?}: {err}"))?;
    let model = match (&profile.llm, no_model) {
        (Some(settings), false) => Some((
            crate::llm::client::LlmClient::new(settings.clone())?,
            tokio::runtime::Builder::new_current_thread()
                .enable_all()
                .build()?,
        )),
        _ => None,
    };
    let now = chrono::Utc::now();
    let (opening, _) = crate::flow::opening_dialogue(profile, now);
    let (mut state, outcomes) = Conversation::open(&opening, &caller, &CallTime(now));
    writeln!(
        out,
        "A missed call from {} to {} ({}){}. You are the caller; /quit to stop.",
        caller.national(),
        profile.name,
        profile.id,
        if model.is_some() {
            ", with the local model"
        } else {
            ""
        }
    )?;
    show(out, &outcomes)?;
    let mut so_far: Vec<crate::llm::client::Turn> = outcomes
        .iter()
        .filter_map(|o| match o {
            crate::core::conversation::Outcome::Send(text) => Some(crate::llm::client::Turn {
                from: crate::llm::client::Speaker::Business,
                text: text.clone(),
            }),
            _ => None,
        })
        .collect();
    loop {
        if prompt {
            write!(out, "you> ")?;
            out.flush()?;
        }
        let mut line = String::new();
        if input.read_line(&mut line)? == 0 {
            break;
        }
        let reply = line.trim_end_matches(['\r', '\n']);
        let now = chrono::Utc::now();
        let (next, outcomes) = match reply.trim() {
            "/quit" | "/exit" => break,
            "" => continue,
            "/slots" => {
                writeln!(out, "{}", serde_json::to_string_pretty(&state.slots)?)?;
                continue;
            }
            command if command.starts_with("/quiet") => {
                let minutes = command
                    .trim_start_matches("/quiet")
                    .trim()
                    .parse::<u32>()
                    .unwrap_or(profile.dialogue.silence_minutes);
                writeln!(out, "(silent for {minutes} minutes)")?;
                Conversation::on_silence(&profile.dialogue, &state, minutes)
            }
            _ => match &model {
                Some((client, runtime))
                    if state.status == Status::Open
                        && crate::core::conversation::keyword(reply).is_none() =>
                {
                    let extraction = runtime.block_on(client.extract(
                        &profile.dialogue.questions,
                        &so_far,
                        reply,
                    ));
                    let read = match extraction {
                        Ok(extraction) => {
                            let checked = proposal::check_extraction(
                                &extraction.proposal,
                                reply,
                                &profile.dialogue.questions,
                                now,
                            );
                            for accepted in &checked.accepted {
                                writeln!(
                                    out,
                                    "  (model, {} ms: {} = {:?}, accepted)",
                                    extraction.elapsed.as_millis(),
                                    accepted.id,
                                    accepted.value
                                )?;
                            }
                            for rejected in &checked.rejected {
                                writeln!(
                                    out,
                                    "  (model: {} = {:?} rejected: {})",
                                    rejected.id, rejected.value, rejected.why
                                )?;
                            }
                            Some((extraction.proposal, checked))
                        }
                        Err(err) => {
                            writeln!(out, "  (model not used: {err})")?;
                            None
                        }
                    };
                    let options = profile
                        .llm
                        .as_ref()
                        .map(|llm| llm.combine.clone())
                        .unwrap_or_default();
                    let combined = proposal::combine(
                        &profile.dialogue,
                        &state,
                        reply,
                        now,
                        read.as_ref().map(|(p, c)| (p, c)),
                        &options,
                    );
                    (combined.state, combined.outcomes)
                }
                _ => Conversation::on_reply(&profile.dialogue, &state, reply, now),
            },
        };
        if !reply.starts_with('/') {
            so_far.push(crate::llm::client::Turn {
                from: crate::llm::client::Speaker::Caller,
                text: reply.to_string(),
            });
        }
        for outcome in &outcomes {
            if let crate::core::conversation::Outcome::Send(text) = outcome {
                so_far.push(crate::llm::client::Turn {
                    from: crate::llm::client::Speaker::Business,
                    text: text.clone(),
                });
            }
        }
        show(out, &outcomes)?;
        let was_open = state.status == Status::Open;
        state = next;
        if was_open && state.status != Status::Open {
            writeln!(
                out,
                "The conversation is over ({:?}). What the business gets:",
                state.status
            )?;
            for question in &profile.dialogue.questions {
                let value = state
                    .slots
                    .get(&question.id)
                    .map(|slot| slot.value.as_str())
                    .unwrap_or("(no answer)");
                writeln!(out, "  {}: {value}", question.id)?;
            }
            break;
        }
    }
    Ok(())
}

/// Prints what the engine decided: the texts as the caller would get them, and notes.
fn show(
    out: &mut dyn Write,
    outcomes: &[crate::core::conversation::Outcome],
) -> std::io::Result<()> {
    use crate::core::conversation::Outcome;
    for outcome in outcomes {
        match outcome {
            Outcome::Send(text) => {
                let segments = crate::codec::pdu::segment(text);
                let parts = segments.parts.len();
                writeln!(
                    out,
                    "business> {text}\n  ({parts} SMS part{})",
                    if parts == 1 { "" } else { "s" }
                )?;
            }
            Outcome::Lead { complete, urgent } => writeln!(
                out,
                "  (lead sent: {}{})",
                if *complete { "complete" } else { "incomplete" },
                if *urgent { ", urgent" } else { "" }
            )?,
            Outcome::OptOut => writeln!(out, "  (the caller opted out)")?,
            Outcome::OptIn => writeln!(out, "  (the caller opted back in)")?,
            Outcome::Help => writeln!(out, "  (the caller asked for HELP)")?,
            Outcome::Note(note) => writeln!(out, "  ({note})")?,
        }
    }
    Ok(())
}
