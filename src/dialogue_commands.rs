//! `textback dialogue replay FILE`: runs conversations written as data (tests/dialogues/README.md
//! has the format) through the built-in engine, so that a business can check its questions
//! before going live. Prints one JSON object per case: the slots captured, the outcome, and
//! where they differ from what the case expects.

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
