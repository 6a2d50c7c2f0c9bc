//! What the conversation engine knows about a business: its questions and their kinds, the
//! answers it gives to questions callers ask, its texts and limits. Plain data the config (or a
//! replay file) builds, with its own checks. Pure.

/// The kinds of answer a question takes.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum QuestionKind {
    /// Free text, kept as said (cleaned, at most 500 characters).
    Text,
    /// One of the options: by its words, a close spelling, or its number ("2").
    Choice(Vec<String>),
    /// Yes or no: stored "yes" / "no".
    YesNo,
    /// A UK postcode, full or outward code: stored "SW11 4AB" / "SW11".
    Postcode,
    /// A day and time, pinned down relative to the call where possible ("Fri 13 Jun, after 3pm").
    DateTime,
    /// A count: stored as digits.
    Number,
    /// How soon: stored "high" / "medium" / "low".
    Urgency,
    /// A UK vehicle registration in its standard form: "AB12 CDE", "A123 BCD", "ABC 123D".
    Registration,
    /// The kind of property: one of [`PROPERTY_TYPES`].
    Property,
}

/// What a `property` question stores.
pub const PROPERTY_TYPES: [&str; 5] = ["House", "Flat", "Bungalow", "Maisonette", "Commercial"];

/// The kinds as the config and the replay files name them.
pub const KIND_NAMES: [&str; 9] = [
    "text",
    "choice",
    "yes_no",
    "postcode",
    "datetime",
    "number",
    "urgency",
    "registration",
    "property",
];

/// Why a question's kind cannot be used.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum KindError {
    #[error("{0:?} is not a kind of question: use {names}", names = KIND_NAMES.join(", "))]
    Unknown(String),
    #[error("a choice needs at least 2 options: options = [\"boiler\", \"leak\", \"other\"]")]
    TooFewOptions,
    #[error("options are only for kind = \"choice\"")]
    OptionsNotChoice,
}

impl QuestionKind {
    /// The kind named `name` (one of [`KIND_NAMES`]), with the options a choice offers.
    pub fn from_name(name: &str, options: &[String]) -> Result<QuestionKind, KindError> {
        let kind = match name {
            "text" => QuestionKind::Text,
            "choice" if options.len() >= 2 => QuestionKind::Choice(options.to_vec()),
            "choice" => return Err(KindError::TooFewOptions),
            "yes_no" => QuestionKind::YesNo,
            "postcode" => QuestionKind::Postcode,
            "datetime" => QuestionKind::DateTime,
            "number" => QuestionKind::Number,
            "urgency" => QuestionKind::Urgency,
            "registration" => QuestionKind::Registration,
            "property" => QuestionKind::Property,
            other => return Err(KindError::Unknown(other.to_string())),
        };
        if !options.is_empty() && !matches!(kind, QuestionKind::Choice(_)) {
            return Err(KindError::OptionsNotChoice);
        }
        Ok(kind)
    }
}

/// One question of a profile. The ids "name", "callback" and "reason" are the built-in slots:
/// read by their own rules whatever the kind says. The callback question is a confirmation of
/// the caller's own number; its `ask` may use {number}.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Question {
    pub id: String,
    pub ask: String,
    pub kind: QuestionKind,
    /// A lead without an answer to a required question is incomplete.
    pub required: bool,
}

/// An answer the business has given to a question callers ask.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct CannedAnswer {
    /// Lower-case words or phrases; any one in the caller's question picks this answer.
    pub keywords: Vec<String>,
    pub answer: String,
}

/// The texts the engine sends, as templates with {business}, {name}, {number} and {time}.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Templates {
    /// The first text; {question} is the first question.
    pub first_message: String,
    pub closing: String,
    /// After "just call me".
    pub call_closing: String,
    /// After too many turns.
    pub incomplete_closing: String,
    /// After abuse: one polite line, then silence.
    pub abuse_closing: String,
    /// A question with no canned answer.
    pub deferral: String,
    pub opt_out: String,
    pub opt_in: String,
    pub help: String,
}

impl Default for Templates {
    fn default() -> Templates {
        Templates {
            first_message: "Hi, it's {business}. Sorry we missed your call at {time}. {question} (Reply STOP to opt out)".to_string(),
            closing: "Thanks {name}, that's everything we need. {business} will call you back soon.".to_string(),
            call_closing: "No problem {name}, {business} will call you as soon as possible.".to_string(),
            incomplete_closing: "Thanks {name}. {business} will call you back soon.".to_string(),
            abuse_closing: "Sorry to have bothered you. {business} won't text again about this call.".to_string(),
            deferral: "Good question - {business} will answer that when they call you back.".to_string(),
            opt_out: "You won't get any more texts from {business}. Reply START to opt back in.".to_string(),
            opt_in: "Thanks, texts from {business} are back on.".to_string(),
            help: "{business}: we text back calls we missed. {contact} Reply STOP to opt out.".to_string(),
        }
    }
}

/// What the engine needs to know about a business: plain data the integrator builds from config.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct DialogueProfile {
    pub business: String,
    /// How to reach the business, for HELP: "Call 020 7946 0018, Mon-Fri 8-6."
    pub contact: String,
    /// Asked in this order, skipping what is known.
    pub questions: Vec<Question>,
    /// 1 to 3 questions in one text.
    pub max_questions_per_message: usize,
    /// Replies after which the lead goes out with what there is.
    pub max_turns: u32,
    /// Minutes of silence after which the lead goes out with what there is.
    pub silence_minutes: u32,
    pub canned: Vec<CannedAnswer>,
    pub templates: Templates,
}

/// Defaults, in one place.
pub mod defaults {
    pub const MAX_QUESTIONS_PER_MESSAGE: usize = 1;
    pub const MAX_TURNS: u32 = 8;
    pub const SILENCE_MINUTES: u32 = 120;
    /// At most this many questions besides name, callback and reason.
    pub const MAX_CUSTOM_QUESTIONS: usize = 10;
}

/// A problem with a profile, naming the question it is about.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum ProfileError {
    #[error("question {id:?} appears twice; give each question its own id")]
    DuplicateId { id: String },
    #[error("{count} custom questions; at most 10 besides name, callback and reason")]
    TooManyQuestions { count: usize },
    #[error("question {id:?} is a choice with {count} options; give it at least 2")]
    TooFewOptions { id: String, count: usize },
    #[error("max_questions_per_message is {value}; use 1, 2 or 3")]
    QuestionsPerMessage { value: usize },
    #[error("question {id:?} is {length} characters; keep it under 160 so it fits one SMS")]
    TooLong { id: String, length: usize },
}

impl DialogueProfile {
    /// A profile with the default limits and texts.
    pub fn new(business: &str, contact: &str, questions: Vec<Question>) -> DialogueProfile {
        DialogueProfile {
            business: business.to_string(),
            contact: contact.to_string(),
            questions,
            max_questions_per_message: defaults::MAX_QUESTIONS_PER_MESSAGE,
            max_turns: defaults::MAX_TURNS,
            silence_minutes: defaults::SILENCE_MINUTES,
            canned: Vec::new(),
            templates: Templates::default(),
        }
    }

    pub fn question(&self, id: &str) -> Option<&Question> {
        self.questions.iter().find(|q| q.id == id)
    }

    /// Every problem at once.
    pub fn check(&self) -> Result<(), Vec<ProfileError>> {
        let mut problems = Vec::new();
        for (index, question) in self.questions.iter().enumerate() {
            if self.questions[..index].iter().any(|q| q.id == question.id) {
                problems.push(ProfileError::DuplicateId {
                    id: question.id.clone(),
                });
            }
            if let QuestionKind::Choice(options) = &question.kind
                && options.len() < 2
            {
                problems.push(ProfileError::TooFewOptions {
                    id: question.id.clone(),
                    count: options.len(),
                });
            }
            let length = question.ask.chars().count();
            if length > 160 {
                problems.push(ProfileError::TooLong {
                    id: question.id.clone(),
                    length,
                });
            }
        }
        let custom = self
            .questions
            .iter()
            .filter(|q| !matches!(q.id.as_str(), "name" | "callback" | "reason"))
            .count();
        if custom > defaults::MAX_CUSTOM_QUESTIONS {
            problems.push(ProfileError::TooManyQuestions { count: custom });
        }
        if !(1..=3).contains(&self.max_questions_per_message) {
            problems.push(ProfileError::QuestionsPerMessage {
                value: self.max_questions_per_message,
            });
        }
        if problems.is_empty() {
            Ok(())
        } else {
            Err(problems)
        }
    }
}

#[cfg(test)]
pub(crate) mod tests {
    use super::*;

    /// A plumber's profile: the engine's tests' business.
    pub(crate) fn plumber() -> DialogueProfile {
        let q = |id: &str, ask: &str, kind: QuestionKind| Question {
            id: id.to_string(),
            ask: ask.to_string(),
            kind,
            required: true,
        };
        let mut profile = DialogueProfile::new(
            "Acme Plumbing",
            "Call 020 7946 0018.",
            vec![
                q("name", "Who am I speaking to?", QuestionKind::Text),
                q("reason", "What's the problem?", QuestionKind::Text),
                q("postcode", "What's the postcode?", QuestionKind::Postcode),
                q("urgency", "How urgent is it?", QuestionKind::Urgency),
                q(
                    "callback",
                    "Is {number} the best number to call you on?",
                    QuestionKind::Text,
                ),
            ],
        );
        profile.canned.push(CannedAnswer {
            keywords: vec!["how much".to_string(), "price".to_string()],
            answer: "Call-out is £65.".to_string(),
        });
        profile
    }
}
