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
        config: crate::cli::args::ConfigArg,
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
    /// Score corpora of cases: slots right, values invented, outcomes right, texts over one
    /// SMS, time per reply; exit 1 below the thresholds given.
    Score(ScoreArgs),
}

pub fn run(command: DialogueCommand) -> anyhow::Result<ExitCode> {
    match command {
        DialogueCommand::Try {
            config,
            profile,
            caller,
            no_model,
        } => {
            let config = crate::cli::args::load_config(&config.config)?;
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
            let corpus = Corpus::load(&file, profiles.as_deref())?;
            let mut all_right = true;
            for (_, case) in corpus.cases() {
                let profile = corpus.profile(case)?;
                let result = replay::replay(case, profile)?;
                let score = replay::score(case, &result, profile);
                all_right &= score.misses.is_empty();
                let line = case_json(case, &result, &score);
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
        DialogueCommand::Score(args) => score(&args),
    }
}

/// One case's replay as the JSON line `dialogue replay` prints.
fn case_json(
    case: &replay::Case,
    result: &replay::ReplayResult,
    score: &replay::Score,
) -> serde_json::Value {
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
    serde_json::json!({
        "case": case.name,
        "slots": result.slots,
        "outcome": format!("{:?}", result.outcome).to_lowercase(),
        "as_expected": score.misses.is_empty(),
        "misses": misses,
        "transcript": transcript,
    })
}

/// Cases read from a file or a folder of files, with the profiles they name.
struct Corpus {
    /// Each case with the file it came from.
    cases: Vec<(PathBuf, replay::Case)>,
    profiles: BTreeMap<String, DialogueProfile>,
}

impl Corpus {
    /// Reads `path` (a case file, or a folder whose `*.toml` are case files); the profiles are
    /// read from `profiles`, by default `profiles/` beside the files.
    fn load(path: &Path, profiles: Option<&Path>) -> anyhow::Result<Corpus> {
        let (files, folder) = if path.is_dir() {
            let mut files: Vec<PathBuf> = std::fs::read_dir(path)
                .with_context(|| format!("reading the folder {}", path.display()))?
                .filter_map(|entry| entry.ok().map(|e| e.path()))
                .filter(|p| p.is_file() && p.extension().is_some_and(|e| e == "toml"))
                .collect();
            files.sort();
            if files.is_empty() {
                anyhow::bail!(
                    "{} holds no *.toml case files (tests/dialogues/README.md has the format)",
                    path.display()
                );
            }
            (files, path.to_path_buf())
        } else {
            let folder = path.parent().unwrap_or(Path::new(".")).to_path_buf();
            (vec![path.to_path_buf()], folder)
        };
        let directory = profiles
            .map(Path::to_path_buf)
            .unwrap_or_else(|| folder.join("profiles"));
        let mut cases = Vec::new();
        for file in &files {
            let text = std::fs::read_to_string(file)
                .with_context(|| format!("reading {}", file.display()))?;
            for case in replay::parse_cases(&text, &file.display().to_string())? {
                cases.push((file.clone(), case));
            }
        }
        let mut loaded = BTreeMap::new();
        for (_, case) in &cases {
            if loaded.contains_key(&case.profile) {
                continue;
            }
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
                let listed: Vec<String> = problems.iter().map(ToString::to_string).collect();
                anyhow::bail!("{}: {}", path.display(), listed.join("; "));
            }
            loaded.insert(case.profile.clone(), profile);
        }
        Ok(Corpus {
            cases,
            profiles: loaded,
        })
    }

    fn cases(&self) -> impl Iterator<Item = (&Path, &replay::Case)> {
        self.cases.iter().map(|(file, case)| (file.as_path(), case))
    }

    fn profile(&self, case: &replay::Case) -> anyhow::Result<&DialogueProfile> {
        self.profiles
            .get(&case.profile)
            .with_context(|| format!("case {:?}: no profile {:?}", case.name, case.profile))
    }
}

/// Thresholds and output of `dialogue score`.
#[derive(Debug, clap::Args)]
pub struct ScoreArgs {
    /// Case files, or folders of them; each is scored as one corpus.
    #[arg(required = true)]
    paths: Vec<PathBuf>,
    /// Where the profiles the cases name are (default: `profiles/` beside the files).
    #[arg(long)]
    profiles: Option<PathBuf>,
    /// Exit 1 when fewer slots than this (a percentage) are right, over all the corpora.
    #[arg(long, value_name = "PERCENT")]
    min_slots: Option<f64>,
    /// Exit 1 when fewer outcomes than this (a percentage) are right.
    #[arg(long, value_name = "PERCENT")]
    min_outcomes: Option<f64>,
    /// Exit 1 when more than this many values were invented (a slot the case says must stay
    /// empty was filled).
    #[arg(long, value_name = "N")]
    max_invented: Option<usize>,
    /// Exit 1 when more than this many texts to callers need more than one SMS.
    #[arg(long, value_name = "N")]
    max_long_texts: Option<usize>,
    /// Exit 1 when the 99th percentile of the time to answer one reply is above this.
    #[arg(long, value_name = "MS")]
    max_p99_ms: Option<f64>,
    /// Print every slot, outcome or text that differs from the case.
    #[arg(long)]
    misses: bool,
    /// Also score with a local model, exactly as the daemon uses one (same checks, same time
    /// bound, same fallback to the engine): a TOML file with an [llm] table holding the keys of
    /// a profile's [profile.llm] (base_url, model, flavour, timeout_ms, ...). Each corpus is
    /// then scored twice, engine alone and with the model, side by side.
    #[arg(long, value_name = "FILE")]
    llm: Option<PathBuf>,
    /// With --llm: keep the model's answers in this file (one JSON line per request, keyed by a
    /// SHA-256 of the request) and read them back from it, so that a change to the checks or to
    /// how answers are combined is scored again in seconds; only requests not in the file are
    /// asked of the model. The file is created if missing.
    #[arg(long, value_name = "FILE", requires = "llm")]
    llm_recording: Option<PathBuf>,
    /// One JSON object instead of the table.
    #[arg(long)]
    json: bool,
}

/// Times each reply its responder answers.
struct Timed<'a> {
    inner: &'a mut dyn replay::Responder,
    times: Vec<std::time::Duration>,
}

impl replay::Responder for Timed<'_> {
    fn reply(
        &mut self,
        profile: &DialogueProfile,
        state: &crate::core::conversation::ConversationState,
        text: &str,
        now: chrono::DateTime<chrono::Utc>,
        transcript: &[(replay::Who, String)],
    ) -> (
        crate::core::conversation::ConversationState,
        Vec<crate::core::conversation::Outcome>,
    ) {
        let started = std::time::Instant::now();
        let answer = self.inner.reply(profile, state, text, now, transcript);
        self.times.push(started.elapsed());
        answer
    }
}

/// What one corpus scored with one responder.
struct Scored {
    corpus: String,
    how: String,
    tally: replay::Tally,
    times: Vec<std::time::Duration>,
    misses: Vec<replay::Miss>,
    /// With a model: what it did.
    model: Option<ModelStats>,
}

impl Scored {
    fn percentile_ms(&self, p: f64) -> f64 {
        percentile_ms(&self.times, p)
    }
}

fn percentile_ms(times: &[std::time::Duration], p: f64) -> f64 {
    if times.is_empty() {
        return 0.0;
    }
    let mut sorted: Vec<f64> = times.iter().map(|t| t.as_secs_f64() * 1000.0).collect();
    sorted.sort_by(f64::total_cmp);
    let rank = ((p / 100.0) * sorted.len() as f64).ceil() as usize;
    sorted[rank.clamp(1, sorted.len()) - 1]
}

fn score_corpus(
    path: &Path,
    corpus: &Corpus,
    how: &str,
    responder: &mut dyn replay::Responder,
) -> anyhow::Result<Scored> {
    let mut timed = Timed {
        inner: responder,
        times: Vec::new(),
    };
    let mut tally = replay::Tally::default();
    let mut misses = Vec::new();
    for (file, case) in corpus.cases() {
        let profile = corpus.profile(case)?;
        let result = replay::replay_with(case, profile, &mut timed)?;
        let score = replay::score(case, &result, profile);
        tally.add(&score);
        let file = file
            .file_name()
            .map(|f| f.to_string_lossy())
            .unwrap_or_default();
        misses.extend(score.misses.into_iter().map(|mut miss| {
            miss.case = format!("{file}: {}", miss.case);
            miss
        }));
    }
    Ok(Scored {
        corpus: path.display().to_string(),
        how: how.to_string(),
        tally,
        times: timed.times,
        misses,
        model: None,
    })
}

/// The `[llm]` table of an `--llm` file.
#[derive(Debug, serde::Deserialize)]
#[serde(deny_unknown_fields)]
struct LlmFile {
    llm: crate::llm::client::LlmConfig,
}

/// Reads an `--llm` file into the settings the daemon would use.
fn llm_settings(path: &Path) -> anyhow::Result<crate::llm::client::LlmSettings> {
    let text =
        std::fs::read_to_string(path).with_context(|| format!("reading {}", path.display()))?;
    let file: LlmFile = toml::from_str(&text).map_err(|err| {
        anyhow::anyhow!(
            "{}: {err}; the file holds an [llm] table with the keys of [profile.llm]",
            path.display()
        )
    })?;
    crate::llm::client::LlmSettings::from_config(&file.llm)
        .map_err(|err| anyhow::anyhow!("{}: {err}", path.display()))
}

/// What the model did over a corpus.
#[derive(Debug, Default, Clone)]
struct ModelStats {
    asked: usize,
    /// Replies the engine answered whole: the model was not asked (as in the daemon).
    not_needed: usize,
    failed: usize,
    accepted: usize,
    rejected: usize,
    /// The model's reply times, answered or not.
    times: Vec<std::time::Duration>,
}

/// Answers each reply as the daemon does with a local model: asks it (within its time bound),
/// then [`crate::core::proposal::decide`].
struct ModelResponder {
    client: crate::llm::client::LlmClient,
    runtime: tokio::runtime::Runtime,
    options: crate::core::proposal::CombineOptions,
    stats: ModelStats,
    recording: Option<crate::llm::recording::Recording>,
}

impl ModelResponder {
    fn new(
        settings: crate::llm::client::LlmSettings,
        recording: Option<crate::llm::recording::Recording>,
    ) -> anyhow::Result<ModelResponder> {
        let options = settings.combine.clone();
        Ok(ModelResponder {
            recording,
            client: crate::llm::client::LlmClient::new(settings)?,
            runtime: tokio::runtime::Builder::new_current_thread()
                .enable_all()
                .build()?,
            options,
            stats: ModelStats::default(),
        })
    }
}

impl replay::Responder for ModelResponder {
    fn reply(
        &mut self,
        profile: &DialogueProfile,
        state: &crate::core::conversation::ConversationState,
        text: &str,
        now: chrono::DateTime<chrono::Utc>,
        transcript: &[(replay::Who, String)],
    ) -> (
        crate::core::conversation::ConversationState,
        Vec<crate::core::conversation::Outcome>,
    ) {
        use crate::core::proposal::ModelRead;
        use crate::llm::client::{Speaker, Turn};
        // As the daemon: never for keywords or a conversation that is over, nor when nothing the
        // model says could change the answer.
        let read = if crate::core::keywords::keyword(text).is_some()
            || state.status != crate::core::conversation::Status::Open
        {
            ModelRead::NotAsked
        } else if !crate::core::proposal::model_can_help(profile, state, text, now, &self.options) {
            self.stats.not_needed += 1;
            ModelRead::NotAsked
        } else {
            // The conversation before this reply.
            let before = transcript.len().saturating_sub(1);
            let turns: Vec<Turn> = transcript[..before]
                .iter()
                .filter_map(|(who, line)| match who {
                    replay::Who::Caller => Some(Turn {
                        from: Speaker::Caller,
                        text: line.clone(),
                    }),
                    replay::Who::Business => Some(Turn {
                        from: Speaker::Business,
                        text: line.clone(),
                    }),
                    replay::Who::Note => None,
                })
                .collect();
            self.stats.asked += 1;
            let questions = crate::core::proposal::questions_for_model(profile, state);
            let recorded = self.ask(&questions, &turns, text);
            self.stats
                .times
                .push(std::time::Duration::from_millis(recorded.elapsed_ms));
            // A recorded answer slower than this run's bound is a timeout, as in the daemon: a
            // recording made with a generous bound is scored again at the default one.
            let bound = self.client.settings().timeout.as_millis();
            let proposal = match (&recorded.raw, &recorded.error) {
                (Some(_), _) if u128::from(recorded.elapsed_ms) > bound => Err(format!(
                    "no answer within profile.llm.timeout_ms ({bound} ms): the model took {} ms",
                    recorded.elapsed_ms
                )),
                (Some(raw), _) => crate::core::proposal::parse_proposal(raw)
                    .map_err(|err| format!("the model's answer is not one: {err}")),
                (None, Some(error)) => Err(error.clone()),
                (None, None) => Err("no answer recorded".to_string()),
            };
            match proposal {
                Ok(proposal) => ModelRead::Proposed {
                    proposal,
                    elapsed_ms: recorded.elapsed_ms,
                },
                Err(err) => {
                    self.stats.failed += 1;
                    ModelRead::Failed(err)
                }
            }
        };
        let earlier: Vec<&str> = transcript[..transcript.len().saturating_sub(1)]
            .iter()
            .filter(|(who, _)| *who == replay::Who::Caller)
            .map(|(_, line)| line.as_str())
            .collect();
        let decided =
            crate::core::proposal::decide(profile, state, text, &earlier, now, read, &self.options);
        if let Some(checked) = &decided.checked {
            self.stats.accepted += checked.accepted.len();
            self.stats.rejected += checked.rejected.len();
        }
        (decided.combined.state, decided.combined.outcomes)
    }
}

impl ModelResponder {
    /// The model's answer to this reply: from the recording when it holds this very request,
    /// else asked of the model (and recorded).
    fn ask(
        &mut self,
        questions: &[crate::core::conversation::Question],
        turns: &[crate::llm::client::Turn],
        text: &str,
    ) -> crate::llm::recording::Recorded {
        use crate::llm::recording::{self, Recorded};
        let body = crate::llm::client::request_body(self.client.settings(), questions, turns, text);
        let key = recording::key(&body);
        if let Some(recorded) = self.recording.as_ref().and_then(|r| r.get(&key)) {
            return recorded.clone();
        }
        // A caller's replies come minutes apart, not microseconds: a timeout on the last reply
        // says nothing of this one.
        self.client.forget_timeout();
        let started = std::time::Instant::now();
        let result = self
            .runtime
            .block_on(self.client.extract(questions, turns, text));
        let recorded = match result {
            Ok(extraction) => Recorded {
                raw: Some(extraction.raw),
                error: None,
                elapsed_ms: extraction.elapsed.as_millis() as u64,
            },
            Err(err) => Recorded {
                raw: None,
                error: Some(err.to_string()),
                elapsed_ms: started.elapsed().as_millis() as u64,
            },
        };
        if let Some(recording) = self.recording.as_mut()
            && let Err(err) = recording.put(key, recorded.clone())
        {
            eprintln!("textback: {err}; this run goes on without recording");
            self.recording = None;
        }
        recorded
    }
}

/// `textback dialogue score`: scores corpora and checks the thresholds.
fn score(args: &ScoreArgs) -> anyhow::Result<ExitCode> {
    let mut rows = Vec::new();
    let mut model = match &args.llm {
        Some(path) => {
            let recording = match &args.llm_recording {
                Some(file) => {
                    let recording = crate::llm::recording::Recording::open(file)?;
                    if recording.skipped > 0 {
                        eprintln!(
                            "textback: {}: {} unreadable lines skipped (a run stopped mid-write?); those requests are asked again",
                            file.display(),
                            recording.skipped
                        );
                    }
                    Some(recording)
                }
                None => None,
            };
            Some(ModelResponder::new(llm_settings(path)?, recording)?)
        }
        None => None,
    };
    for path in &args.paths {
        let corpus = Corpus::load(path, args.profiles.as_deref())?;
        rows.push(score_corpus(
            path,
            &corpus,
            "engine",
            &mut replay::EngineAlone,
        )?);
        if let Some(model) = model.as_mut() {
            model.stats = ModelStats::default();
            let mut row = score_corpus(path, &corpus, "model", model)?;
            row.model = Some(model.stats.clone());
            rows.push(row);
        }
    }
    // One total per way of answering (the engine alone, with the model); each is held to the
    // thresholds.
    let mut totals: Vec<Total> = Vec::new();
    for row in &rows {
        let total = match totals.iter_mut().find(|t| t.how == row.how) {
            Some(total) => total,
            None => {
                totals.push(Total {
                    how: row.how.clone(),
                    ..Total::default()
                });
                totals.last_mut().expect("just pushed")
            }
        };
        total.tally.merge(&row.tally);
        total.times.extend(row.times.iter().copied());
    }
    let mut failed = Vec::new();
    for total in &totals {
        let with = if totals.len() > 1 {
            format!(" ({})", total.how)
        } else {
            String::new()
        };
        let tally = &total.tally;
        let p99 = percentile_ms(&total.times, 99.0);
        if let Some(min) = args.min_slots
            && tally.slots_percent() < min
        {
            failed.push(format!(
                "slots right{with} {:.1}% is under --min-slots {min}",
                tally.slots_percent()
            ));
        }
        if let Some(min) = args.min_outcomes
            && tally.outcomes_percent() < min
        {
            failed.push(format!(
                "outcomes right{with} {:.1}% is under --min-outcomes {min}",
                tally.outcomes_percent()
            ));
        }
        if let Some(max) = args.max_invented
            && tally.invented > max
        {
            failed.push(format!(
                "{} invented values{with} is over --max-invented {max}",
                tally.invented
            ));
        }
        if let Some(max) = args.max_long_texts
            && tally.long_texts > max
        {
            failed.push(format!(
                "{} texts over one SMS{with} is over --max-long-texts {max}",
                tally.long_texts
            ));
        }
        if let Some(max) = args.max_p99_ms
            && p99 > max
        {
            failed.push(format!(
                "time per reply p99{with} {p99:.3} ms is over --max-p99-ms {max}"
            ));
        }
    }
    let mut out = std::io::stdout().lock();
    if args.json {
        let corpora: Vec<serde_json::Value> = rows.iter().map(row_json).collect();
        let engine = totals.iter().find(|t| t.how == "engine");
        let model = totals.iter().find(|t| t.how == "model");
        let line = serde_json::json!({
            "corpora": corpora,
            "total": engine.map(Total::json),
            "total_with_model": model.map(Total::json),
            "failed": failed,
        });
        writeln!(out, "{line}")?;
    } else {
        if args.misses {
            for row in &rows {
                for miss in &row.misses {
                    writeln!(
                        out,
                        "miss [{}{}] {}: expected {}, got {}",
                        if row.how == "engine" {
                            ""
                        } else {
                            "with model: "
                        },
                        miss.case,
                        miss.what,
                        miss.expected,
                        miss.actual
                    )?;
                }
            }
        }
        writeln!(
            out,
            "{:<28} {:<7} {:>5}  {:>20}  {:>8}  {:>16}  {:>10}  {:>17}",
            "corpus",
            "with",
            "cases",
            "slots right",
            "invented",
            "outcomes right",
            "long texts",
            "reply p50/p99 ms"
        )?;
        for row in &rows {
            write_row(
                &mut out,
                &row.corpus,
                &row.how,
                &row.tally,
                row.percentile_ms(50.0),
                row.percentile_ms(99.0),
            )?;
        }
        if rows.len() > totals.len() {
            for total in &totals {
                write_row(
                    &mut out,
                    "total",
                    &total.how,
                    &total.tally,
                    percentile_ms(&total.times, 50.0),
                    percentile_ms(&total.times, 99.0),
                )?;
            }
        }
        for total in &totals {
            let kinds: Vec<String> = total
                .tally
                .by_kind
                .iter()
                .map(|(kind, (expected, right))| {
                    format!(
                        "{kind} {right}/{expected} ({:.1}%)",
                        replay::percent(*right, *expected)
                    )
                })
                .collect();
            writeln!(out, "by kind ({}): {}", total.how, kinds.join(", "))?;
        }
        for row in &rows {
            if let Some(model) = &row.model {
                writeln!(
                    out,
                    "model on {}: asked {} times ({} more replies the engine read whole, not asked), {} without a usable answer (timeout, error); values passing the checks {}, refused {}; model time p50/p99 {:.0}/{:.0} ms",
                    row.corpus,
                    model.asked,
                    model.not_needed,
                    model.failed,
                    model.accepted,
                    model.rejected,
                    percentile_ms(&model.times, 50.0),
                    percentile_ms(&model.times, 99.0)
                )?;
            }
        }
        for failure in &failed {
            writeln!(out, "below threshold: {failure}")?;
        }
    }
    Ok(if failed.is_empty() {
        ExitCode::SUCCESS
    } else {
        ExitCode::from(1)
    })
}

/// The scores of every corpus for one way of answering.
#[derive(Default)]
struct Total {
    how: String,
    tally: replay::Tally,
    times: Vec<std::time::Duration>,
}

impl Total {
    fn json(&self) -> serde_json::Value {
        tally_json(
            &self.tally,
            percentile_ms(&self.times, 50.0),
            percentile_ms(&self.times, 99.0),
        )
    }
}

fn write_row(
    out: &mut dyn Write,
    corpus: &str,
    how: &str,
    tally: &replay::Tally,
    p50: f64,
    p99: f64,
) -> std::io::Result<()> {
    writeln!(
        out,
        "{:<28} {:<7} {:>5}  {:>20}  {:>8}  {:>16}  {:>10}  {:>17}",
        corpus,
        how,
        tally.cases,
        format!(
            "{}/{} ({:.1}%)",
            tally.correct_slots,
            tally.expected_slots,
            tally.slots_percent()
        ),
        tally.invented,
        format!(
            "{}/{} ({:.1}%)",
            tally.outcomes_right,
            tally.cases,
            tally.outcomes_percent()
        ),
        tally.long_texts,
        format!("{p50:.3}/{p99:.3}"),
    )
}

fn tally_json(tally: &replay::Tally, p50: f64, p99: f64) -> serde_json::Value {
    let by_kind: serde_json::Map<String, serde_json::Value> = tally
        .by_kind
        .iter()
        .map(|(kind, (expected, right))| {
            (
                kind.clone(),
                serde_json::json!({"expected": expected, "right": right}),
            )
        })
        .collect();
    serde_json::json!({
        "cases": tally.cases,
        "slots_expected": tally.expected_slots,
        "slots_right": tally.correct_slots,
        "slots_percent": tally.slots_percent(),
        "invented": tally.invented,
        "outcomes_right": tally.outcomes_right,
        "outcomes_percent": tally.outcomes_percent(),
        "long_texts": tally.long_texts,
        "reply_ms_p50": p50,
        "reply_ms_p99": p99,
        "by_kind": by_kind,
    })
}

fn row_json(row: &Scored) -> serde_json::Value {
    let mut value = tally_json(&row.tally, row.percentile_ms(50.0), row.percentile_ms(99.0));
    if let Some(object) = value.as_object_mut() {
        object.insert("corpus".to_string(), serde_json::json!(row.corpus));
        object.insert("with".to_string(), serde_json::json!(row.how));
        if let Some(model) = &row.model {
            object.insert(
                "model".to_string(),
                serde_json::json!({
                    "asked": model.asked,
                    "not_needed": model.not_needed,
                    "failed": model.failed,
                    "values_accepted": model.accepted,
                    "values_refused": model.rejected,
                    "model_ms_p50": percentile_ms(&model.times, 50.0),
                    "model_ms_p99": percentile_ms(&model.times, 99.0),
                }),
            );
        }
    }
    value
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
                        && crate::core::keywords::keyword(reply).is_none() =>
                {
                    let questions = proposal::questions_for_model(&profile.dialogue, &state);
                    let extraction = runtime.block_on(client.extract(&questions, &so_far, reply));
                    let (read, elapsed) = match extraction {
                        Ok(extraction) => (
                            proposal::ModelRead::Proposed {
                                proposal: extraction.proposal,
                                elapsed_ms: extraction.elapsed.as_millis() as u64,
                            },
                            extraction.elapsed.as_millis(),
                        ),
                        Err(err) => {
                            writeln!(out, "  (model not used: {err})")?;
                            (proposal::ModelRead::Failed(err.to_string()), 0)
                        }
                    };
                    let options = profile
                        .llm
                        .as_ref()
                        .map(|llm| llm.combine.clone())
                        .unwrap_or_default();
                    // The daemon's way: the same checks, then the engine combined with what
                    // passed.
                    let earlier: Vec<&str> = so_far
                        .iter()
                        .filter(|turn| turn.from == crate::llm::client::Speaker::Caller)
                        .map(|turn| turn.text.as_str())
                        .collect();
                    let decided = proposal::decide(
                        &profile.dialogue,
                        &state,
                        reply,
                        &earlier,
                        now,
                        read,
                        &options,
                    );
                    if let Some(checked) = &decided.checked {
                        for accepted in &checked.accepted {
                            writeln!(
                                out,
                                "  (model, {elapsed} ms: {} = {:?}, accepted)",
                                accepted.id, accepted.value
                            )?;
                        }
                        for rejected in &checked.rejected {
                            writeln!(
                                out,
                                "  (model: {} = {:?} rejected: {})",
                                rejected.id, rejected.value, rejected.why
                            )?;
                        }
                    }
                    (decided.combined.state, decided.combined.outcomes)
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
