//! Replays a conversation written as data (tests/dialogues/README.md describes the format)
//! through the engine, and scores the slots it filled against the expected ones.

use std::collections::BTreeMap;

use chrono::{DateTime, Duration, Utc};
use serde::Deserialize;

use crate::codec::pdu;
use crate::codec::phone::E164;
use crate::core::conversation::{
    CallTime, CannedAnswer, Conversation, ConversationState, DialogueProfile, Outcome, Question,
    QuestionKind, Status, Templates,
};

/// Minutes between two messages when the case does not say.
pub const DEFAULT_GAP_MINUTES: u32 = 2;

/// The call time when the case does not say: Tuesday 10 June 2025, 14:05 in London.
pub const DEFAULT_CALLED_AT: &str = "2025-06-10T13:05:00Z";

/// A file of cases.
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct CaseFile {
    #[serde(rename = "case")]
    pub cases: Vec<Case>,
}

/// One conversation written as data.
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Case {
    pub name: String,
    /// A profile file's name without ".toml", in the profiles folder.
    pub profile: String,
    /// The caller's number, in any form phone.rs reads.
    pub caller: String,
    /// RFC 3339; default [`DEFAULT_CALLED_AT`].
    #[serde(default)]
    pub called_at: Option<DateTime<Utc>>,
    pub messages: Vec<Message>,
    pub expect: Expect,
}

/// A caller's message, or a silence.
#[derive(Debug, Clone, Deserialize)]
#[serde(untagged)]
pub enum Message {
    Text(String),
    Timed { text: String, minutes_later: u32 },
    Silence { silence: u32 },
}

/// What should come out.
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Expect {
    pub outcome: ExpectedOutcome,
    /// Slot id -> expected value, or a list of acceptable values; "" means "must stay empty".
    #[serde(default)]
    pub slots: BTreeMap<String, Expected>,
}

#[derive(Debug, Clone, Deserialize)]
#[serde(untagged)]
pub enum Expected {
    One(String),
    Any(Vec<String>),
}

impl Expected {
    pub fn accepts(&self, actual: Option<&str>) -> bool {
        let ok = |wanted: &str| match actual {
            None => wanted.trim().is_empty(),
            Some(actual) => normalise(actual) == normalise(wanted),
        };
        match self {
            Expected::One(wanted) => ok(wanted),
            Expected::Any(list) => list.iter().any(|w| ok(w)),
        }
    }

    /// The case says the slot must stay empty.
    pub fn must_be_empty(&self) -> bool {
        match self {
            Expected::One(wanted) => wanted.trim().is_empty(),
            Expected::Any(list) => list.iter().all(|w| w.trim().is_empty()),
        }
    }

    pub fn shown(&self) -> String {
        match self {
            Expected::One(wanted) => format!("{wanted:?}"),
            Expected::Any(list) => format!("one of {list:?}"),
        }
    }
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum ExpectedOutcome {
    Complete,
    Incomplete,
    Urgent,
    OptedOut,
    /// The conversation is still going after the last message.
    Open,
}

/// Who said a line of the transcript.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Who {
    Caller,
    Business,
    Note,
}

/// What a replay produced.
#[derive(Debug, Clone)]
pub struct ReplayResult {
    pub slots: BTreeMap<String, String>,
    pub outcome: ExpectedOutcome,
    pub transcript: Vec<(Who, String)>,
}

/// Lower case, punctuation dropped (apostrophes removed, the rest as spaces), spaces folded.
pub fn normalise(text: &str) -> String {
    let mapped: String = text
        .chars()
        .filter(|c| !matches!(c, '\'' | '’'))
        .map(|c| {
            if c.is_alphanumeric() {
                c.to_ascii_lowercase()
            } else {
                ' '
            }
        })
        .collect();
    mapped.split_whitespace().collect::<Vec<_>>().join(" ")
}

/// Answers each of the caller's replies during a replay: the engine alone ([`EngineAlone`]), or
/// the shell's responder that asks a local model first and checks what it says, as the daemon
/// does.
pub trait Responder {
    /// The engine's next state and outcomes after `text`, received at `now`; `transcript` is the
    /// conversation so far, the reply included.
    fn reply(
        &mut self,
        profile: &DialogueProfile,
        state: &ConversationState,
        text: &str,
        now: DateTime<Utc>,
        transcript: &[(Who, String)],
    ) -> (ConversationState, Vec<Outcome>);
}

/// The built-in engine on its own.
pub struct EngineAlone;

impl Responder for EngineAlone {
    fn reply(
        &mut self,
        profile: &DialogueProfile,
        state: &ConversationState,
        text: &str,
        now: DateTime<Utc>,
        _transcript: &[(Who, String)],
    ) -> (ConversationState, Vec<Outcome>) {
        Conversation::on_reply(profile, state, text, now)
    }
}

/// Runs a case through the engine.
pub fn replay(case: &Case, profile: &DialogueProfile) -> Result<ReplayResult, ReplayError> {
    replay_with(case, profile, &mut EngineAlone)
}

/// Runs a case, each reply answered by `responder`.
pub fn replay_with(
    case: &Case,
    profile: &DialogueProfile,
    responder: &mut dyn Responder,
) -> Result<ReplayResult, ReplayError> {
    let caller = E164::parse(&case.caller).map_err(|error| ReplayError::Caller {
        case: case.name.clone(),
        message: error.to_string(),
    })?;
    let called_at = case
        .called_at
        .or_else(|| DEFAULT_CALLED_AT.parse().ok())
        .unwrap_or_default();
    let mut transcript = Vec::new();
    let mut outcome = None;
    let record = |outcomes: Vec<Outcome>,
                  transcript: &mut Vec<(Who, String)>,
                  outcome: &mut Option<ExpectedOutcome>,
                  status: Status| {
        for item in outcomes {
            match item {
                Outcome::Send(text) => transcript.push((Who::Business, text)),
                Outcome::Note(text) => transcript.push((Who::Note, text)),
                Outcome::Lead { complete, urgent } => {
                    transcript.push((
                        Who::Note,
                        format!("lead: complete={complete} urgent={urgent}"),
                    ));
                    *outcome = Some(if status == Status::CallRequested {
                        ExpectedOutcome::Urgent
                    } else if complete {
                        ExpectedOutcome::Complete
                    } else {
                        ExpectedOutcome::Incomplete
                    });
                }
                Outcome::OptOut => *outcome = Some(ExpectedOutcome::OptedOut),
                Outcome::OptIn | Outcome::Help => {}
            }
        }
    };
    let (mut state, out) = Conversation::open(profile, &caller, &CallTime(called_at));
    record(out, &mut transcript, &mut outcome, state.status);
    let mut now = called_at;
    for message in &case.messages {
        let (text, gap) = match message {
            Message::Text(text) => (text.as_str(), DEFAULT_GAP_MINUTES),
            Message::Timed {
                text,
                minutes_later,
            } => (text.as_str(), *minutes_later),
            Message::Silence { silence } => {
                let (next, out) = Conversation::on_silence(profile, &state, *silence);
                state = next;
                record(out, &mut transcript, &mut outcome, state.status);
                now += Duration::minutes(i64::from(*silence));
                continue;
            }
        };
        let (next, out) = Conversation::on_silence(profile, &state, gap);
        state = next;
        record(out, &mut transcript, &mut outcome, state.status);
        now += Duration::minutes(i64::from(gap));
        transcript.push((Who::Caller, text.to_string()));
        let (next, out) = responder.reply(profile, &state, text, now, &transcript);
        state = next;
        record(out, &mut transcript, &mut outcome, state.status);
    }
    let slots = state
        .slots
        .iter()
        .map(|(id, slot)| (id.clone(), slot.value.clone()))
        .collect();
    Ok(ReplayResult {
        slots,
        outcome: outcome.unwrap_or(ExpectedOutcome::Open),
        transcript,
    })
}

/// One wrong slot or outcome.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Miss {
    pub case: String,
    pub what: String,
    pub expected: String,
    pub actual: String,
}

/// Slot-by-slot score of a replay against its case.
#[derive(Debug, Clone, Default)]
pub struct Score {
    pub expected_slots: usize,
    pub correct_slots: usize,
    /// Slots the case says must stay empty that the engine filled: a value the caller never gave.
    pub invented: usize,
    pub outcome_right: bool,
    /// Texts to the caller that need more than one SMS.
    pub long_texts: usize,
    /// Expected and right, by the slot's kind ("name", "reason", "callback", "yes_no", ...).
    pub by_kind: BTreeMap<String, (usize, usize)>,
    pub misses: Vec<Miss>,
}

/// What a slot is scored as: the built-in ids by name, the rest by their question's kind.
pub fn kind_label(profile: &DialogueProfile, id: &str) -> String {
    if matches!(id, "name" | "reason" | "callback") {
        return id.to_string();
    }
    match profile.question(id).map(|q| &q.kind) {
        Some(QuestionKind::Text) => "text",
        Some(QuestionKind::Choice(_)) => "choice",
        Some(QuestionKind::YesNo) => "yes_no",
        Some(QuestionKind::Postcode) => "postcode",
        Some(QuestionKind::DateTime) => "datetime",
        Some(QuestionKind::Number) => "number",
        Some(QuestionKind::Urgency) => "urgency",
        Some(QuestionKind::Registration) => "registration",
        Some(QuestionKind::Property) => "property",
        None => "unknown",
    }
    .to_string()
}

pub fn score(case: &Case, result: &ReplayResult, profile: &DialogueProfile) -> Score {
    let mut score = Score {
        outcome_right: result.outcome == case.expect.outcome,
        ..Score::default()
    };
    if !score.outcome_right {
        score.misses.push(Miss {
            case: case.name.clone(),
            what: "outcome".to_string(),
            expected: format!("{:?}", case.expect.outcome),
            actual: format!("{:?}", result.outcome),
        });
    }
    for (id, expected) in &case.expect.slots {
        score.expected_slots += 1;
        let kind = score.by_kind.entry(kind_label(profile, id)).or_default();
        kind.0 += 1;
        let actual = result.slots.get(id).map(String::as_str);
        if expected.accepts(actual) {
            score.correct_slots += 1;
            kind.1 += 1;
        } else {
            if expected.must_be_empty() {
                score.invented += 1;
            }
            score.misses.push(Miss {
                case: case.name.clone(),
                what: id.clone(),
                expected: expected.shown(),
                actual: format!("{actual:?}"),
            });
        }
    }
    for (who, text) in &result.transcript {
        if *who == Who::Business && pdu::segment(text).parts.len() > 1 {
            score.long_texts += 1;
            score.misses.push(Miss {
                case: case.name.clone(),
                what: "one SMS".to_string(),
                expected: "a text that fits one SMS".to_string(),
                actual: format!("{} SMS: {text:?}", pdu::segment(text).parts.len()),
            });
        }
    }
    score
}

/// Scores added up over many cases.
#[derive(Debug, Clone, Default)]
pub struct Tally {
    pub cases: usize,
    pub expected_slots: usize,
    pub correct_slots: usize,
    pub invented: usize,
    pub outcomes_right: usize,
    pub long_texts: usize,
    pub by_kind: BTreeMap<String, (usize, usize)>,
}

impl Tally {
    pub fn add(&mut self, score: &Score) {
        self.cases += 1;
        self.expected_slots += score.expected_slots;
        self.correct_slots += score.correct_slots;
        self.invented += score.invented;
        self.outcomes_right += usize::from(score.outcome_right);
        self.long_texts += score.long_texts;
        for (kind, (expected, right)) in &score.by_kind {
            let entry = self.by_kind.entry(kind.clone()).or_default();
            entry.0 += expected;
            entry.1 += right;
        }
    }

    pub fn merge(&mut self, other: &Tally) {
        self.cases += other.cases;
        self.expected_slots += other.expected_slots;
        self.correct_slots += other.correct_slots;
        self.invented += other.invented;
        self.outcomes_right += other.outcomes_right;
        self.long_texts += other.long_texts;
        for (kind, (expected, right)) in &other.by_kind {
            let entry = self.by_kind.entry(kind.clone()).or_default();
            entry.0 += expected;
            entry.1 += right;
        }
    }

    /// Slots right, as a percentage (100 when nothing was expected).
    pub fn slots_percent(&self) -> f64 {
        percent(self.correct_slots, self.expected_slots)
    }

    /// Outcomes right, as a percentage.
    pub fn outcomes_percent(&self) -> f64 {
        percent(self.outcomes_right, self.cases)
    }
}

pub fn percent(part: usize, whole: usize) -> f64 {
    if whole == 0 {
        100.0
    } else {
        part as f64 * 100.0 / whole as f64
    }
}

/// Why a case or profile could not be used.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum ReplayError {
    #[error("case {case:?}: the caller number does not parse: {message}")]
    Caller { case: String, message: String },
    #[error("{file}: {message}")]
    Parse { file: String, message: String },
    #[error("{file}: question {id:?}: {message}")]
    Kind {
        file: String,
        id: String,
        message: String,
    },
}

/// A profile as written in a replay profile file.
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct ProfileFile {
    pub business: String,
    pub contact: String,
    pub max_questions_per_message: Option<usize>,
    pub max_turns: Option<u32>,
    pub silence_minutes: Option<u32>,
    #[serde(rename = "question")]
    pub questions: Vec<QuestionFile>,
    #[serde(default)]
    pub canned: Vec<CannedFile>,
    #[serde(default)]
    pub templates: BTreeMap<String, String>,
}

#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct QuestionFile {
    pub id: String,
    pub ask: String,
    #[serde(default = "text_kind")]
    pub kind: String,
    #[serde(default)]
    pub options: Vec<String>,
    #[serde(default = "yes")]
    pub required: bool,
}

fn text_kind() -> String {
    "text".to_string()
}

fn yes() -> bool {
    true
}

#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct CannedFile {
    pub keywords: Vec<String>,
    pub answer: String,
}

/// Reads a profile file (TOML) into the engine's profile.
pub fn parse_profile(text: &str, file: &str) -> Result<DialogueProfile, ReplayError> {
    let raw: ProfileFile = toml::from_str(text).map_err(|error| ReplayError::Parse {
        file: file.to_string(),
        message: error.to_string(),
    })?;
    let mut questions = Vec::new();
    for q in raw.questions {
        let kind =
            QuestionKind::from_name(&q.kind, &q.options).map_err(|error| ReplayError::Kind {
                file: file.to_string(),
                id: q.id.clone(),
                message: error.to_string(),
            })?;
        questions.push(Question {
            id: q.id,
            ask: q.ask,
            kind,
            required: q.required,
        });
    }
    let mut profile = DialogueProfile::new(&raw.business, &raw.contact, questions);
    if let Some(value) = raw.max_questions_per_message {
        profile.max_questions_per_message = value;
    }
    if let Some(value) = raw.max_turns {
        profile.max_turns = value;
    }
    if let Some(value) = raw.silence_minutes {
        profile.silence_minutes = value;
    }
    profile.canned = raw
        .canned
        .into_iter()
        .map(|c| CannedAnswer {
            keywords: c.keywords,
            answer: c.answer,
        })
        .collect();
    let mut templates = Templates::default();
    for (key, value) in raw.templates {
        let slot = match key.as_str() {
            "first_message" => &mut templates.first_message,
            "closing" => &mut templates.closing,
            "call_closing" => &mut templates.call_closing,
            "incomplete_closing" => &mut templates.incomplete_closing,
            "abuse_closing" => &mut templates.abuse_closing,
            "deferral" => &mut templates.deferral,
            "opt_out" => &mut templates.opt_out,
            "opt_in" => &mut templates.opt_in,
            "help" => &mut templates.help,
            other => {
                return Err(ReplayError::Parse {
                    file: file.to_string(),
                    message: format!("unknown template {other:?}"),
                });
            }
        };
        *slot = value;
    }
    profile.templates = templates;
    Ok(profile)
}

/// Reads a case file (TOML).
pub fn parse_cases(text: &str, file: &str) -> Result<Vec<Case>, ReplayError> {
    toml::from_str::<CaseFile>(text)
        .map(|f| f.cases)
        .map_err(|error| ReplayError::Parse {
            file: file.to_string(),
            message: error.to_string(),
        })
}
