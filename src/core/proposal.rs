//! What a local language model proposes, checked before anything of it is used. Pure: no I/O, no
//! clock (the time is passed in), no tokio.
//!
//! The model is never trusted. Its output is parsed leniently into a [`ModelProposal`]; then
//!
//! - [`check_extraction`] keeps a slot value only when it passes that question's reader in
//!   `slots` (postcode, phone, yes/no, number, choice, date/time, urgency, name) **and** is
//!   grounded in what the caller wrote: its words are the caller's words, or the engine's own
//!   reader, run on the reply, agrees with it. Everything else is rejected with a reason.
//! - [`check_message`] keeps a text for the caller only when it fits one SMS, is GSM-7 (after
//!   replacing curly quotes and dashes) where the rules want it, and holds no link, e-mail, phone
//!   number, price, time or booking the rules do not allow. It never trims: a text that fails is
//!   rejected and the engine's own text is sent.
//! - [`combine`] runs the built-in engine, then fills from the checked proposal only the slots
//!   the engine left empty (and re-runs the engine so it asks the right next question), and, only
//!   when phrasing is enabled, lets the model's text replace the engine's short lead-in ("Thanks.")
//!   in front of the engine's own next question. Keywords (STOP, HELP, START), abuse, a call
//!   request and a closed conversation are the engine's alone.

use std::collections::BTreeMap;
use std::fmt;

use chrono::{DateTime, Utc};
use serde::Deserialize;

use crate::codec::phone::E164;
use crate::codec::{gsm7, pdu};
use crate::core::conversation::{
    self, Conversation, ConversationState, DialogueProfile, Outcome, Question, QuestionKind, Slot,
    Source, Status,
};
use crate::core::{keywords, slots, understand};

// ---------------------------------------------------------------------------------------------
// What the model says

/// What the caller's reply is mostly doing, as the model sees it. Only ever a note: the engine
/// decides on STOP (exact keywords only) and "call me".
#[derive(Debug, Clone, Copy, PartialEq, Eq, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Intent {
    Answer,
    CallMe,
    Question,
    OffTopic,
    Stop,
}

impl Intent {
    pub const ALL: [&'static str; 5] = ["answer", "call_me", "question", "off_topic", "stop"];
}

/// The model's output, parsed but not yet checked.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct ModelProposal {
    /// Question id -> the value the model read, for the ids it gave a non-empty string (or
    /// number) for. Ids that are not questions of the profile are kept: the check rejects them.
    pub slots: BTreeMap<String, String>,
    /// `None` when missing or not one of [`Intent::ALL`].
    pub intent: Option<Intent>,
    pub question_topic: Option<String>,
    pub reply_to_caller: Option<String>,
}

/// Why the model's output could not be read at all.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum ParseError {
    #[error("no JSON object in the model's answer")]
    NoObject,
    #[error("the model's answer is not valid JSON: {0}")]
    Json(String),
    #[error("the model's JSON has no \"slots\" object")]
    NoSlots,
}

/// Values models write for "nothing".
fn is_nothing(value: &str) -> bool {
    let lower = value.trim().to_lowercase();
    lower.is_empty()
        || matches!(
            lower.as_str(),
            "null" | "none" | "n/a" | "na" | "unknown" | "-" | "not given" | "not provided" | "?"
        )
}

/// Reads the model's answer: a JSON object, possibly inside a code fence or with text around it.
/// Lenient about shapes (a number for a slot becomes text, an unknown intent becomes `None`),
/// strict about there being an object with a `slots` object.
pub fn parse_proposal(content: &str) -> Result<ModelProposal, ParseError> {
    let start = content.find('{').ok_or(ParseError::NoObject)?;
    let end = content
        .rfind('}')
        .filter(|&end| end > start)
        .ok_or(ParseError::NoObject)?;
    let body = content.get(start..=end).ok_or(ParseError::NoObject)?;
    let value: serde_json::Value =
        serde_json::from_str(body).map_err(|e| ParseError::Json(e.to_string()))?;
    let object = value.as_object().ok_or(ParseError::NoObject)?;
    let raw_slots = object
        .get("slots")
        .and_then(serde_json::Value::as_object)
        .ok_or(ParseError::NoSlots)?;
    let mut slots = BTreeMap::new();
    for (id, value) in raw_slots {
        let text = match value {
            serde_json::Value::String(s) => s.clone(),
            serde_json::Value::Number(n) => n.to_string(),
            serde_json::Value::Bool(b) => if *b { "yes" } else { "no" }.to_string(),
            _ => continue,
        };
        if !is_nothing(&text) {
            slots.insert(id.clone(), text.trim().to_string());
        }
    }
    let text_field = |key: &str| {
        object
            .get(key)
            .and_then(serde_json::Value::as_str)
            .filter(|s| !is_nothing(s))
            .map(|s| s.trim().to_string())
    };
    let intent = object
        .get("intent")
        .cloned()
        .and_then(|v| serde_json::from_value::<Intent>(v).ok());
    Ok(ModelProposal {
        slots,
        intent,
        question_topic: text_field("question_topic"),
        reply_to_caller: text_field("reply_to_caller"),
    })
}

// ---------------------------------------------------------------------------------------------
// Checking extracted values

/// A value the checks accepted, in the form the engine stores.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Accepted {
    pub id: String,
    pub value: String,
    /// Machine form where there is one (a date, an E.164 number).
    pub machine: Option<String>,
}

/// Why a proposed value was not used.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Rejection {
    /// The id is not a question of the profile.
    NoSuchQuestion,
    /// The value is not a valid answer of the question's kind.
    Invalid(&'static str),
    /// The value is not in what the caller wrote (or the engine reads the reply otherwise).
    NotInReply,
    /// Longer than an answer is kept.
    TooLong,
    /// Free text that is another question's value (the caller's name offered as the reason).
    OtherValue(String),
    /// A name the caller wrote for someone else ("Kerry normally does my hair").
    SomeoneElse,
    /// Free text that reads as another kind of answer (a day, a number to call, a postcode, a
    /// yes or no): "fri after 2" offered as the dog's breed.
    OtherKind(&'static str),
    /// Free text from a text that gives no answer: "not sure of the make", "as I said", "sorry
    /// wrong number", "HELP", an auto-reply; or a question the caller asks ("are you taking NHS
    /// patients"). The engine's own reading of such a text fills nothing.
    NoAnswer,
}

impl fmt::Display for Rejection {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Rejection::NoSuchQuestion => write!(f, "not a question of this profile"),
            Rejection::Invalid(what) => write!(f, "not a valid {what}"),
            Rejection::NotInReply => write!(f, "not in what the caller wrote"),
            Rejection::TooLong => write!(f, "longer than {} characters", slots::MAX_ANSWER),
            Rejection::OtherValue(id) => write!(f, "the value of {id}, not an answer to this"),
            Rejection::SomeoneElse => write!(f, "the name of someone the caller talks about"),
            Rejection::NoAnswer => write!(f, "from a text that gives no answer"),
            Rejection::OtherKind(what) => {
                write!(f, "a {what}, not an answer to this")
            }
        }
    }
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Rejected {
    pub id: String,
    pub value: String,
    pub why: Rejection,
}

/// The outcome of [`check_extraction`].
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Checked {
    pub accepted: Vec<Accepted>,
    pub rejected: Vec<Rejected>,
}

impl Checked {
    pub fn value(&self, id: &str) -> Option<&str> {
        self.accepted
            .iter()
            .find(|a| a.id == id)
            .map(|a| a.value.as_str())
    }
}

/// Lower-case words with apostrophes dropped and a plural "s" folded, for grounding.
fn ground_words(text: &str) -> Vec<String> {
    slots::words(text)
        .into_iter()
        .map(|w| {
            let w: String = w.chars().filter(|c| !matches!(c, '\'' | '’')).collect();
            match w.strip_suffix('s') {
                Some(stem) if stem.chars().count() >= 3 && !stem.ends_with('s') => stem.to_string(),
                _ => w,
            }
        })
        .collect()
}

/// Every word of `value` is a word of `reply` (case, apostrophes and plurals aside).
fn words_in_reply(value: &str, reply: &str) -> bool {
    let said = ground_words(reply);
    let wanted = ground_words(value);
    !wanted.is_empty() && wanted.iter().all(|w| said.contains(w))
}

/// Letters and digits only, upper case: "sw11 4ab" -> "SW114AB".
fn compact(text: &str) -> String {
    text.chars()
        .filter(|c| c.is_alphanumeric())
        .flat_map(char::to_uppercase)
        .collect()
}

/// Lower-case words of every option of every choice question: not names.
fn option_words(questions: &[Question]) -> Vec<String> {
    questions
        .iter()
        .filter_map(|q| match &q.kind {
            QuestionKind::Choice(options) => Some(options),
            _ => None,
        })
        .flatten()
        .flat_map(|o| slots::words(o))
        .collect()
}

/// Checks each value the model proposed against the question's reader and the caller's reply.
/// `now` is when the reply came (dates are read relative to it).
pub fn check_extraction(
    proposal: &ModelProposal,
    reply: &str,
    questions: &[Question],
    now: DateTime<Utc>,
) -> Checked {
    let reply: String = reply.chars().take(slots::MAX_READ).collect();
    let mut checked = Checked::default();
    for (id, value) in &proposal.slots {
        let Some(question) = questions.iter().find(|q| &q.id == id) else {
            checked.rejected.push(Rejected {
                id: id.clone(),
                value: value.clone(),
                why: Rejection::NoSuchQuestion,
            });
            continue;
        };
        match check_value(question, value, &reply, questions, now) {
            Ok((value, machine)) => checked.accepted.push(Accepted {
                id: id.clone(),
                value,
                machine,
            }),
            Err(why) => checked.rejected.push(Rejected {
                id: id.clone(),
                value: value.clone(),
                why,
            }),
        }
    }
    checked
}

/// As [`check_extraction`], knowing the conversation so far: free text (the reason, a text
/// question) that is another question's value, already known or proposed with it, is refused
/// (a model that copies the caller's name into the reason); and a text question whose wording
/// asks for a registration or a postcode takes only a value of that form.
///
/// `earlier` holds the caller's texts before this reply. Free text the reply does not hold may
/// come from one of them: a caller often answers a question before it is asked ("I've got a
/// cockapoo who needs a full groom", then "What breed is your dog?" - "saturday morning"), and
/// the engine, which knows no breeds, cannot tell which words were the answer. Such a value
/// must be words of one earlier text, must not hold another question's value ("needs a full
/// groom" when the service is "Full groom"), and must not read as another kind of answer (a day,
/// a phone number, a postcode, a yes or no). Answers with a form of their own (a postcode, a
/// date, a name) are never taken from earlier texts: the engine reads those wherever they are.
///
/// `engine` is the engine's own reading of the reply (its state after it): words it took as the
/// answer to one question are not the answer to another ("its making a horrible grinding noise"
/// is the fault, so "grinding noise" is not the appliance).
pub fn check_extraction_against(
    proposal: &ModelProposal,
    reply: &str,
    questions: &[Question],
    now: DateTime<Utc>,
    state: &ConversationState,
    earlier: &[&str],
    engine: &ConversationState,
) -> Checked {
    let mut checked = check_extraction(proposal, reply, questions, now);
    let free_text = |id: &str| {
        id == "reason"
            || questions.iter().any(|q| {
                q.id == id && q.kind == QuestionKind::Text && !matches!(id, "name" | "callback")
            })
    };
    // Free text not in the reply: from one earlier text of the caller's, if any holds it.
    let mut from_earlier: Vec<(String, &str)> = Vec::new();
    let mut still_rejected = Vec::new();
    for rejected in std::mem::take(&mut checked.rejected) {
        let earlier_value = (rejected.why == Rejection::NotInReply && free_text(&rejected.id))
            .then(|| {
                earlier.iter().find_map(|text| {
                    check_text(&rejected.value, text)
                        .ok()
                        .map(|(value, machine)| (value, machine, *text))
                })
            })
            .flatten();
        match earlier_value {
            Some((value, machine, source)) => {
                from_earlier.push((rejected.id.clone(), source));
                checked.accepted.push(Accepted {
                    id: rejected.id,
                    value,
                    machine,
                });
            }
            None => still_rejected.push(rejected),
        }
    }
    checked.rejected = still_rejected;
    let mut others: Vec<(String, String)> = state
        .slots
        .iter()
        .filter(|(id, slot)| *id != "callback" && slot.source != Source::CallerId)
        .map(|(id, slot)| (id.clone(), slot.value.clone()))
        .collect();
    others.extend(
        checked
            .accepted
            .iter()
            .map(|a| (a.id.clone(), a.value.clone())),
    );
    // What the engine read from this very reply.
    let read_now: Vec<(&String, &String)> = engine
        .slots
        .iter()
        .filter(|(id, slot)| {
            *id != "callback"
                && slot.source != Source::CallerId
                && state
                    .slots
                    .get(*id)
                    .is_none_or(|before| before.value != slot.value)
        })
        .map(|(id, slot)| (id, &slot.value))
        .collect();
    let mut kept = Vec::new();
    for accepted in std::mem::take(&mut checked.accepted) {
        let earlier_source = from_earlier
            .iter()
            .find(|(id, _)| *id == accepted.id)
            .map(|(_, source)| *source);
        // An earlier text's words may hold another answer whole: then they are that answer's
        // sentence, not this one's.
        let holds = |value: &str| {
            let held = ground_words(value);
            let words = ground_words(&accepted.value);
            !held.is_empty() && held.iter().all(|w| words.contains(w))
        };
        let within = |value: &str| {
            let words = ground_words(value);
            let mine = ground_words(&accepted.value);
            !mine.is_empty() && mine.iter().all(|w| words.contains(w))
        };
        // The same words (plurals aside: "GCSEs" is the level "GCSE"), or for a value from an
        // earlier text, words holding another answer whole.
        let same = others
            .iter()
            .find(|(id, value)| {
                *id != accepted.id
                    && (compact(value) == compact(&accepted.value)
                        || ground_words(value) == ground_words(&accepted.value)
                        || (earlier_source.is_some() && holds(value)))
            })
            .map(|(id, _)| id)
            .or_else(|| {
                // Words of this reply the engine took for another question.
                read_now
                    .iter()
                    .find(|(id, value)| {
                        **id != accepted.id && earlier_source.is_none() && within(value)
                    })
                    .map(|(id, _)| *id)
            });
        // A text that gives no answer gives none to the model either: the reply, or for a
        // value from an earlier text, the value itself and that text.
        // A question the caller asks, or a keyword or machine text, is no answer either.
        let gives_none = understand::asks(&accepted.value)
            || (accepted.id == "reason" && crate::core::reason::not_a_reason(&accepted.value))
            || match earlier_source {
                Some(source) => {
                    understand::gives_no_answer(&accepted.value)
                        || crate::core::reason::not_about_a_job(source)
                        || understand::unreadable(source)
                }
                None => understand::gives_no_answer(reply) || understand::unreadable(reply),
            };
        let implied = questions
            .iter()
            .find(|q| q.id == accepted.id && q.kind == QuestionKind::Text)
            .and_then(|q| implied_format(&q.ask));
        let wrong_form = match implied {
            Some(QuestionKind::Registration) => slots::registration(&accepted.value, true)
                .is_none_or(|f| compact(&f.value) != compact(&accepted.value)),
            Some(QuestionKind::Postcode) => slots::find_postcodes(&accepted.value, true)
                .first()
                .is_none_or(|p| compact(&p.value) != compact(&accepted.value)),
            _ => false,
        };
        let kind = other_kind(&accepted.value, now);
        if let (true, Some(id)) = (free_text(&accepted.id), same) {
            checked.rejected.push(Rejected {
                id: accepted.id.clone(),
                value: accepted.value.clone(),
                why: Rejection::OtherValue(id.clone()),
            });
        } else if free_text(&accepted.id) && gives_none {
            checked.rejected.push(Rejected {
                id: accepted.id.clone(),
                value: accepted.value.clone(),
                why: Rejection::NoAnswer,
            });
        } else if let (true, Some(what)) = (free_text(&accepted.id) && implied.is_none(), kind) {
            checked.rejected.push(Rejected {
                id: accepted.id.clone(),
                value: accepted.value.clone(),
                why: Rejection::OtherKind(what),
            });
        } else if wrong_form {
            checked.rejected.push(Rejected {
                id: accepted.id.clone(),
                value: accepted.value.clone(),
                why: Rejection::Invalid(match implied {
                    Some(QuestionKind::Registration) => "registration",
                    _ => "postcode",
                }),
            });
        } else {
            kept.push(accepted);
        }
    }
    checked.accepted = kept;
    checked
}

/// The kind of answer free text reads as, when it is one: a day, a number to call, a postcode
/// or a yes or no offered for a free-text question answered something else.
fn other_kind(value: &str, now: DateTime<Utc>) -> Option<&'static str> {
    if slots::when(value, now, true).is_some() {
        Some("day or time")
    } else if slots::find_phone(value).is_some() {
        Some("phone number")
    } else if !slots::find_postcodes(value, true).is_empty() {
        Some("postcode")
    } else if slots::yes_no(value).is_some() {
        Some("yes or no")
    } else {
        None
    }
}

/// The form a text question's wording asks for: "What's the car's registration?", "the
/// postcode?".
fn implied_format(ask: &str) -> Option<QuestionKind> {
    let words = slots::words(ask);
    if words
        .iter()
        .any(|w| matches!(w.as_str(), "registration" | "reg" | "numberplate"))
    {
        Some(QuestionKind::Registration)
    } else if words.iter().any(|w| w == "postcode") {
        Some(QuestionKind::Postcode)
    } else {
        None
    }
}

type Checking = Result<(String, Option<String>), Rejection>;

fn check_value(
    question: &Question,
    value: &str,
    reply: &str,
    questions: &[Question],
    now: DateTime<Utc>,
) -> Checking {
    if value.chars().count() > slots::MAX_ANSWER {
        return Err(Rejection::TooLong);
    }
    // The built-in ids are read by their own rules whatever the kind says (as in `understand`).
    match question.id.as_str() {
        "name" => return check_name(value, reply, questions),
        "callback" => return check_phone(value, reply),
        "reason" => return check_text(value, reply),
        _ => {}
    }
    match &question.kind {
        QuestionKind::Text => check_text(value, reply),
        QuestionKind::Postcode => check_postcode(value, reply),
        QuestionKind::YesNo => {
            let yes = slots::yes_no(value).ok_or(Rejection::Invalid("yes or no"))?;
            if slots::yes_no(reply) != Some(yes) {
                return Err(Rejection::NotInReply);
            }
            Ok((if yes { "yes" } else { "no" }.to_string(), None))
        }
        QuestionKind::Number => {
            let wanted = slots::number(value).ok_or(Rejection::Invalid("number"))?;
            // The value must be nothing but the number ("3", "three"), and the reply must say it.
            if slots::words(value).len() != 1 {
                return Err(Rejection::Invalid("number"));
            }
            let said = slots::words(reply)
                .iter()
                .any(|w| slots::number(w) == Some(wanted));
            if !said {
                return Err(Rejection::NotInReply);
            }
            // A number of something else ("2 fridges" to "How many bedrooms?") is not the count
            // asked for: where the question names what it counts, the reply must count that.
            let stems = crate::core::understand::noun_stems(&question.ask);
            if !stems.is_empty()
                && !stems
                    .iter()
                    .any(|stem| slots::count_of(reply, Some(stem)) == Some(wanted))
            {
                return Err(Rejection::Invalid("count of what the question asks"));
            }
            Ok((wanted.to_string(), None))
        }
        QuestionKind::Choice(options) => check_choice(value, reply, options),
        QuestionKind::DateTime => {
            let read = slots::when(value, now, true).ok_or(Rejection::Invalid("date or time"))?;
            let grounded = words_in_reply(value, reply)
                || (compact(value).chars().count() >= 3
                    && compact(reply).contains(&compact(value)));
            if !grounded {
                return Err(Rejection::NotInReply);
            }
            // "not friday, saturday": if the engine's reader pins the reply down, it must agree.
            if let Some(own) = slots::when(reply, now, true)
                && own.human != read.human
            {
                return Err(Rejection::NotInReply);
            }
            Ok((read.human, read.machine))
        }
        QuestionKind::Registration => {
            // Nothing but a registration in the value, and the same marks in the reply.
            let found =
                slots::registration(value, true).ok_or(Rejection::Invalid("registration"))?;
            if compact(&found.value) != compact(value) {
                return Err(Rejection::Invalid("registration"));
            }
            if !compact(reply).contains(&compact(value)) {
                return Err(Rejection::NotInReply);
            }
            Ok((found.value, None))
        }
        QuestionKind::Property => {
            let wanted = slots::property(value, true).ok_or(Rejection::Invalid("property type"))?;
            // A judgement, like urgency: the engine's reader must see the same kind in the reply.
            if slots::property(reply, true) != Some(wanted) {
                return Err(Rejection::NotInReply);
            }
            Ok((wanted.to_string(), None))
        }
        QuestionKind::Urgency => {
            let lower = value.trim().to_lowercase();
            let wanted = match lower.as_str() {
                "high" => slots::Urgency::High,
                "medium" => slots::Urgency::Medium,
                "low" => slots::Urgency::Low,
                _ => slots::urgency(value, true).ok_or(Rejection::Invalid("urgency"))?,
            };
            // A judgement, not a quote: grounded when the engine's reader, told the question was
            // asked, reads the same urgency in the reply.
            if slots::urgency(reply, true) != Some(wanted) {
                return Err(Rejection::NotInReply);
            }
            Ok((wanted.as_str().to_string(), None))
        }
    }
}

fn check_name(value: &str, reply: &str, questions: &[Question]) -> Checking {
    let found =
        slots::name(value, true, &option_words(questions)).ok_or(Rejection::Invalid("name"))?;
    // The reader must take the whole value as the name ("Dave", "Priya Patel"), not a piece of
    // a sentence the model returned.
    if compact(&found.name) != compact(value) {
        return Err(Rejection::Invalid("name"));
    }
    if !words_in_reply(value, reply) {
        return Err(Rejection::NotInReply);
    }
    if crate::core::names::someone_else(reply, &found.name) {
        return Err(Rejection::SomeoneElse);
    }
    Ok((found.name, None))
}

fn check_phone(value: &str, reply: &str) -> Checking {
    let (number, _, _) = slots::find_phone(value).ok_or(Rejection::Invalid("phone number"))?;
    match slots::find_phone(reply) {
        Some((said, _, _)) if said == number => Ok((
            number.as_str().to_string(),
            Some(number.as_str().to_string()),
        )),
        _ => Err(Rejection::NotInReply),
    }
}

fn check_postcode(value: &str, reply: &str) -> Checking {
    let found = slots::find_postcodes(value, true);
    let [postcode] = found.as_slice() else {
        return Err(Rejection::Invalid("postcode"));
    };
    // Nothing but the postcode in the value.
    if compact(&postcode.value) != compact(value) {
        return Err(Rejection::Invalid("postcode"));
    }
    let written = slots::find_postcodes(reply, true);
    // An outward code of a full postcode the caller wrote: the full one.
    if let Some(full) = written.iter().find(|p| {
        p.value.split(' ').next() == Some(postcode.value.as_str()) && p.value != postcode.value
    }) {
        return Ok((full.value.clone(), None));
    }
    let in_reply = written.iter().any(|p| p.value == postcode.value)
        // An outward code alone ("I'm in SW11 by the common") as a word of the reply.
        || (!postcode.value.contains(' ')
            && slots::tokens(reply)
                .iter()
                .any(|t| t.text.eq_ignore_ascii_case(&postcode.value)));
    if !in_reply {
        return Err(Rejection::NotInReply);
    }
    Ok((postcode.value.clone(), None))
}

fn check_text(value: &str, reply: &str) -> Checking {
    let cleaned = slots::clean_answer(value);
    if slots::words(&cleaned).is_empty() {
        return Err(Rejection::Invalid("answer"));
    }
    // Every word the caller's: the model may pick a span out, never add to it (an added "not"
    // would turn the meaning round).
    if !words_in_reply(&cleaned, reply) {
        return Err(Rejection::NotInReply);
    }
    Ok((cleaned, None))
}

/// Words of an option that say something ("cut", "colour"; not "and", "the").
fn significant(option: &str) -> Vec<String> {
    ground_words(option)
        .into_iter()
        .filter(|w| {
            w.chars().count() >= 3
                && !matches!(
                    w.as_str(),
                    "and" | "the" | "for" | "other" | "something" | "else" | "only" | "just"
                )
        })
        .collect()
}

fn check_choice(value: &str, reply: &str, options: &[String]) -> Checking {
    let index = options
        .iter()
        .position(|o| compact(o) == compact(value))
        .or_else(|| slots::choice(value, options, false))
        .ok_or(Rejection::Invalid("option"))?;
    let option = options.get(index).ok_or(Rejection::Invalid("option"))?;
    if slots::is_other(option) {
        // "Other" is never in what the caller wrote; the engine takes it when asked.
        return Err(Rejection::NotInReply);
    }
    let said = ground_words(reply);
    let by_reader = slots::choice(reply, options, false) == Some(index);
    let hits = |o: &String| significant(o).iter().any(|w| said.contains(w));
    // Or: a word of this option is in the reply, and no word of any other option is.
    let by_words = hits(option)
        && options
            .iter()
            .enumerate()
            .all(|(i, other)| i == index || !hits(other));
    if !(by_reader || by_words) {
        return Err(Rejection::NotInReply);
    }
    Ok((option.clone(), None))
}

// ---------------------------------------------------------------------------------------------
// Checking a message to the caller

/// What a text to the caller may hold. Links, e-mail addresses and phone numbers are never
/// allowed from the model.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct MessageRules {
    /// SMS parts the text may take: 1 means 160 GSM-7 characters (extension characters count 2)
    /// or 70 UCS-2 ones.
    pub max_parts: usize,
    /// Reject a text that is not GSM-7 after replacing curly quotes, dashes and the like (emoji).
    pub require_gsm7: bool,
    pub allow_prices: bool,
    /// Times and days: "at 3pm", "tomorrow", "within the hour".
    pub allow_times: bool,
    /// Promises of a visit or a booking: "booked", "appointment confirmed", "we'll be there".
    pub allow_bookings: bool,
}

impl Default for MessageRules {
    fn default() -> MessageRules {
        MessageRules {
            max_parts: 1,
            require_gsm7: true,
            allow_prices: false,
            allow_times: false,
            allow_bookings: false,
        }
    }
}

/// Why a text for the caller was not sent.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum Why {
    #[error("empty")]
    Empty,
    #[error("{parts} SMS parts; at most {max} allowed")]
    TooLong { parts: usize, max: usize },
    #[error("{0:?} is not in the GSM 7-bit alphabet")]
    NotGsm7(char),
    #[error("holds a link or e-mail address: {0:?}")]
    Link(String),
    #[error("holds a phone number")]
    PhoneNumber,
    #[error("mentions a price: {0:?}")]
    Price(String),
    #[error("mentions a time or day: {0:?}")]
    Time(String),
    #[error("promises a booking or visit: {0:?}")]
    Booking(String),
}

const TLDS: &[&str] = &[
    "com", "uk", "org", "net", "io", "ly", "me", "info", "biz", "app", "link", "xyz", "co", "ai",
    "site", "online", "shop", "store", "eu", "de", "fr", "us", "ru", "cn", "gl", "gg", "to", "tv",
];

const PRICE_WORDS: &[&str] = &[
    "pound", "pounds", "quid", "gbp", "usd", "eur", "euro", "euros", "dollar", "dollars", "pence",
    "free", "discount", "cheap", "cheapest",
];

const TIME_WORDS: &[&str] = &[
    "today",
    "tonight",
    "tomorrow",
    "tmrw",
    "monday",
    "tuesday",
    "wednesday",
    "thursday",
    "friday",
    "saturday",
    "sunday",
    "weekend",
    "noon",
    "midday",
    "midnight",
    "morning",
    "afternoon",
    "evening",
    "o'clock",
    "oclock",
    "am",
    "pm",
    "minutes",
    "mins",
    "hour",
    "hours",
    "hrs",
];

const BOOKING_PHRASES: &[&str] = &[
    "booked",
    "book you",
    "booking",
    "appointment",
    "confirmed",
    "reserved",
    "scheduled",
    "slot",
    "we'll be there",
    "we will be there",
    "be with you",
    "be round",
    "come round",
    "come out",
    "on our way",
    "on the way",
    "see you",
    "engineer will",
    "plumber will",
    "someone will be",
    "we'll send",
    "we will send",
    "guarantee",
    "guaranteed",
];

/// The text as it would be sent (spaces folded, curly quotes and dashes made plain) if it is not
/// empty, is GSM-7 where the rules want it and fits the parts allowed; nothing about content.
pub fn check_form(text: &str, rules: &MessageRules) -> Result<String, Why> {
    let folded = text.split_whitespace().collect::<Vec<_>>().join(" ");
    let text = gsm7::to_plain(&folded);
    if text.is_empty() {
        return Err(Why::Empty);
    }
    if rules.require_gsm7
        && let Some(bad) = text.chars().find(|c| !gsm7::is_gsm7(&c.to_string()))
    {
        return Err(Why::NotGsm7(bad));
    }
    let max = rules.max_parts.max(1);
    let segmented = pdu::segment(&text);
    let parts = segmented.parts.len();
    if parts > max {
        return Err(Why::TooLong { parts, max });
    }
    Ok(text)
}

/// Checks a text the model wrote for the caller; returns it as it would be sent (spaces folded,
/// curly quotes and dashes made plain). Rejects rather than trims.
pub fn check_message(text: &str, rules: &MessageRules) -> Result<String, Why> {
    let text = check_form(text, rules)?;
    let lower = text.to_lowercase();
    // Links and e-mail addresses.
    for marker in ["http://", "https://", "www.", "@"] {
        if lower.contains(marker) {
            return Err(Why::Link(marker.to_string()));
        }
    }
    for piece in lower.split_whitespace() {
        let piece = piece.trim_matches(|c: char| !c.is_alphanumeric());
        let labels: Vec<&str> = piece.split('.').collect();
        if labels.len() >= 2
            && labels.iter().all(|l| !l.is_empty())
            && labels
                .last()
                .is_some_and(|tld| TLDS.contains(tld) || (tld.len() >= 2 && piece.contains('/')))
        {
            return Err(Why::Link(piece.to_string()));
        }
    }
    if slots::find_phone(&text).is_some() {
        return Err(Why::PhoneNumber);
    }
    let words = slots::words(&text);
    if !rules.allow_prices {
        if let Some(symbol) = text.chars().find(|c| matches!(c, '£' | '$' | '€' | '¥')) {
            return Err(Why::Price(symbol.to_string()));
        }
        if let Some(word) = words.iter().find(|w| PRICE_WORDS.contains(&w.as_str())) {
            return Err(Why::Price(word.clone()));
        }
        // "50p", "45ph", "20k", "10%", "30 off".
        for (index, word) in words.iter().enumerate() {
            let digits = word.chars().take_while(char::is_ascii_digit).count();
            if digits == 0 {
                continue;
            }
            let rest = &word[digits..];
            let next = words.get(index + 1).map(String::as_str);
            if matches!(rest, "p" | "ph" | "k" | "gbp")
                || matches!(next, Some("p" | "off" | "per" | "an" | "a"))
            {
                return Err(Why::Price(word.clone()));
            }
        }
        if lower.contains('%') {
            return Err(Why::Price("%".to_string()));
        }
    }
    if !rules.allow_times {
        if let Some(word) = words.iter().find(|w| TIME_WORDS.contains(&w.as_str())) {
            return Err(Why::Time(word.clone()));
        }
        for (index, word) in words.iter().enumerate() {
            let digits = word.chars().take_while(char::is_ascii_digit).count();
            let rest = &word[digits..];
            let previous = index.checked_sub(1).and_then(|i| words.get(i));
            if digits > 0
                && (matches!(rest, "am" | "pm" | "h" | "hr" | "hrs" | "min" | "mins")
                    || previous.is_some_and(|p| matches!(p.as_str(), "at" | "by" | "within")))
            {
                return Err(Why::Time(word.clone()));
            }
        }
        // "3:30", "15.00".
        let bytes = text.as_bytes();
        for window in bytes.windows(3) {
            if window[0].is_ascii_digit()
                && matches!(window[1], b':' | b'.')
                && window[2].is_ascii_digit()
            {
                return Err(Why::Time(String::from_utf8_lossy(window).into_owned()));
            }
        }
        for phrase in [
            "next week",
            "this week",
            "within the hour",
            "in an hour",
            "right away",
        ] {
            if slots::has_phrase(&words, phrase) {
                return Err(Why::Time(phrase.to_string()));
            }
        }
    }
    if !rules.allow_bookings {
        for phrase in BOOKING_PHRASES {
            if slots::has_phrase(&words, phrase) {
                return Err(Why::Booking((*phrase).to_string()));
            }
        }
    }
    Ok(text)
}

// ---------------------------------------------------------------------------------------------
// Combining with the built-in engine

/// How much of the model's work a profile uses (`profile.llm.phrasing`).
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct CombineOptions {
    /// Let the model's `reply_to_caller` replace the engine's lead-in ("Thanks.") before the
    /// engine's own next question. Off by default: extraction only.
    pub phrasing: bool,
    pub rules: MessageRules,
}

/// What [`combine`] decided.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Combined {
    pub state: ConversationState,
    pub outcomes: Vec<Outcome>,
    /// Slot ids filled from the model (the engine had nothing for them).
    pub from_model: Vec<String>,
    /// The model's text was sent (as the lead-in).
    pub phrased: bool,
}

/// The lead-ins the engine puts before its next question, which the model's text may replace.
const LEAD_INS: &[&str] = &[
    "",
    "Thanks.",
    "Hi!",
    "No problem!",
    "Sorry, I didn't catch that.",
];

/// What came of asking the local model about a reply: the shell asks it (outside any
/// transaction, within its time bound); [`decide`] takes it from there.
#[derive(Debug, Clone)]
pub enum ModelRead {
    /// Not asked: no model for the profile, or a keyword, or a closed conversation.
    NotAsked,
    /// Asked, and nothing usable came back (timeout, error, unreadable): the engine answers.
    Failed(String),
    /// The model's proposal, not yet checked.
    Proposed {
        proposal: ModelProposal,
        elapsed_ms: u64,
    },
}

/// A reply answered with what the model read, and what the journal says of the model.
#[derive(Debug, Clone)]
pub struct Decided {
    pub combined: Combined,
    /// For the journal: the model not used and why, or what of its proposal passed the checks.
    pub note: Option<String>,
    /// The checks' verdict on the model's values, when it proposed any.
    pub checked: Option<Checked>,
}

/// Answers `reply` as the daemon does when the profile has a model: the model's proposal (if
/// it gave one) checked by [`check_extraction`], then [`combine`]d with the engine. The daemon
/// (`flow`) and `textback dialogue score --llm` both answer through this, so what is scored is
/// what runs. `earlier` is the caller's texts before this reply (see
/// [`check_extraction_against`]).
pub fn decide(
    profile: &DialogueProfile,
    state: &ConversationState,
    reply: &str,
    earlier: &[&str],
    at: DateTime<Utc>,
    read: ModelRead,
    options: &CombineOptions,
) -> Decided {
    let (model, note, checked) = match read {
        ModelRead::NotAsked => (None, None, None),
        ModelRead::Failed(why) => (
            None,
            Some(format!(
                "the local model was not used ({why}); the built-in engine answered"
            )),
            None,
        ),
        ModelRead::Proposed {
            proposal,
            elapsed_ms,
        } => {
            let (engine, _) = Conversation::on_reply(profile, state, reply, at);
            let checked = check_extraction_against(
                &proposal,
                reply,
                &profile.questions,
                at,
                state,
                earlier,
                &engine,
            );
            let accepted: Vec<String> = checked
                .accepted
                .iter()
                .map(|a| format!("{}={:?}", a.id, a.value))
                .collect();
            let rejected: Vec<String> = checked
                .rejected
                .iter()
                .map(|r| format!("{}={:?} ({})", r.id, r.value, r.why))
                .collect();
            let note = format!(
                "the local model answered in {elapsed_ms} ms; passed the checks: {}; rejected: {}",
                if accepted.is_empty() {
                    "nothing".to_string()
                } else {
                    accepted.join(", ")
                },
                if rejected.is_empty() {
                    "nothing".to_string()
                } else {
                    rejected.join(", ")
                },
            );
            (Some(proposal), Some(note), Some(checked))
        }
    };
    let combined = combine(
        profile,
        state,
        reply,
        at,
        model.as_ref().zip(checked.as_ref()),
        options,
    );
    Decided {
        combined,
        note,
        checked,
    }
}

/// Runs the built-in engine on the reply and combines its result with the model's checked
/// proposal (`None` when the model timed out, failed or is not configured: then this is exactly
/// `Conversation::on_reply`).
///
/// - Accepted values fill only slots the engine left empty, and only of the questions the last
///   text asked (a value for a question not asked yet would stop the caller being asked it; never
///   the callback, whose confirmation is the engine's); the engine is then run again on the same reply with those
///   slots already known, so its next question, closing and lead are right. Merged values are
///   noted in the outcomes with "(model)".
/// - Keywords, abuse, "call me", replies after the end: the engine's result, untouched.
/// - With `options.phrasing`, the model's `reply_to_caller`, if it passes [`check_message`] and
///   asks nothing, replaces the engine's lead-in, and the engine's next question follows it; the
///   whole text must pass [`check_message`] too. Otherwise the engine's text is sent.
pub fn combine(
    profile: &DialogueProfile,
    state: &ConversationState,
    reply: &str,
    now: DateTime<Utc>,
    model: Option<(&ModelProposal, &Checked)>,
    options: &CombineOptions,
) -> Combined {
    let (engine_state, engine_outcomes) = Conversation::on_reply(profile, state, reply, now);
    let untouched = |state: ConversationState, outcomes: Vec<Outcome>| Combined {
        state,
        outcomes,
        from_model: Vec::new(),
        phrased: false,
    };
    let Some((proposal, checked)) = model else {
        return untouched(engine_state, engine_outcomes);
    };
    if !model_may_change(reply, state, &engine_state) {
        return untouched(engine_state, engine_outcomes);
    }
    let fill: Vec<&Accepted> = checked
        .accepted
        .iter()
        .filter(|a| fillable(profile, state, &engine_state, &a.id))
        .collect();
    let (next, mut outcomes) = if fill.is_empty() {
        (engine_state, engine_outcomes)
    } else {
        let turn = state.turns + 1;
        let mut seeded = state.clone();
        for accepted in &fill {
            let source = Source::Answered { turn };
            seeded.slots.insert(
                accepted.id.clone(),
                Slot {
                    value: slots::clean_answer(&accepted.value),
                    machine: accepted.machine.clone(),
                    source,
                    confirmed: true,
                    pinned: true,
                },
            );
        }
        let (mut next, mut outcomes) = Conversation::on_reply(profile, &seeded, reply, now);
        for accepted in &fill {
            next.misses.remove(&accepted.id);
        }
        let notes: Vec<Outcome> = fill
            .iter()
            .map(|a| Outcome::Note(format!("{} = {} (model)", a.id, a.value)))
            .collect();
        let at = outcomes
            .iter()
            .position(|o| !matches!(o, Outcome::Note(_)))
            .unwrap_or(outcomes.len());
        outcomes.splice(at..at, notes);
        (next, outcomes)
    };
    let from_model: Vec<String> = fill.iter().map(|a| a.id.clone()).collect();

    let mut phrased = false;
    if options.phrasing
        && next.status == Status::Open
        && let Some(text) = proposal.reply_to_caller.as_deref()
        && let Some(replaced) = phrase(profile, &next, &outcomes, text, &options.rules)
    {
        outcomes = replaced;
        phrased = true;
    }
    if let Some(intent) = proposal.intent {
        outcomes.push(Outcome::Note(format!("model intent: {intent:?}")));
    }
    Combined {
        state: next,
        outcomes,
        from_model,
        phrased,
    }
}

/// Whether a model may change anything about this reply at all: not a keyword, not a
/// conversation that was over or that the engine ends (closed, opted out, a call asked for).
fn model_may_change(reply: &str, state: &ConversationState, engine: &ConversationState) -> bool {
    keywords::keyword(reply).is_none()
        && state.status == Status::Open
        && !matches!(
            engine.status,
            Status::Closed | Status::OptedOut | Status::CallRequested
        )
}

/// Whether a model's value for question `id` may fill it: only an answer to what the last text
/// asked (a value for a question not asked yet would stop that question being asked, and the
/// caller's own answer to it, which the engine reads well, would never come), that the engine
/// left empty, and never the callback (its confirmation is the engine's).
fn fillable(
    profile: &DialogueProfile,
    state: &ConversationState,
    engine: &ConversationState,
    id: &str,
) -> bool {
    id != "callback"
        && state.asked.iter().any(|asked| asked == id)
        && profile.question(id).is_some()
        && !engine.slots.contains_key(id)
}

/// Whether the model's answer to `reply` could change what is sent or kept: with phrasing on,
/// any reply [`combine`] would look at; otherwise only one that leaves a question the last text
/// asked unanswered by the engine. When it could not, the daemon and `dialogue score` do not ask
/// the model: the engine's answer goes at once instead of after seconds of the model's time, and
/// it is the very answer [`combine`] would give whatever the model said.
pub fn model_can_help(
    profile: &DialogueProfile,
    state: &ConversationState,
    reply: &str,
    at: DateTime<Utc>,
    options: &CombineOptions,
) -> bool {
    let (engine, _) = Conversation::on_reply(profile, state, reply, at);
    model_may_change(reply, state, &engine)
        && (options.phrasing
            || state
                .asked
                .iter()
                .any(|id| fillable(profile, state, &engine, id)))
}

/// How many questions the model is asked about at most: each costs ~8 tokens of its answer.
const MODEL_QUESTIONS: usize = 3;

/// The questions the model is asked about a reply: those the last text asked, which are the only
/// ones whose values [`combine`] may take (see `fillable`), less the callback (its confirmation
/// is the engine's); then, up to [`MODEL_QUESTIONS`], the next ones still open, so that an
/// answer to one of those ("fri after 2" to "What breed is your dog?") has a place of its own
/// and is not forced into the question asked. Every slot asked for costs time: on 2 cores
/// Qwen2.5-Coder-0.5B writes ~14 tokens a second.
pub fn questions_for_model(profile: &DialogueProfile, state: &ConversationState) -> Vec<Question> {
    let asked = state
        .asked
        .iter()
        .filter(|id| id.as_str() != "callback")
        .filter_map(|id| profile.question(id).cloned());
    let open = profile.questions.iter().filter(|q| {
        q.id != "callback" && !state.asked.contains(&q.id) && !state.slots.contains_key(&q.id)
    });
    asked
        .chain(open.cloned())
        .take(MODEL_QUESTIONS.max(state.asked.len()))
        .collect()
}

/// The engine's next question as it renders it (see `conversation::next_questions`).
fn question_text(profile: &DialogueProfile, state: &ConversationState) -> String {
    if state.awaiting_number {
        return "What number should we call you on?".to_string();
    }
    let number = E164::parse(&state.caller)
        .map(|n| n.national())
        .unwrap_or_else(|_| state.caller.clone());
    let texts: Vec<String> = state
        .asked
        .iter()
        .filter_map(|id| profile.question(id))
        .map(|q| {
            conversation::render(
                &q.ask,
                &[("number", &number), ("business", &profile.business)],
            )
        })
        .collect();
    conversation::join_questions(&texts)
}

/// The outcomes with the model's text in place of the engine's lead-in, or `None` to keep them.
fn phrase(
    profile: &DialogueProfile,
    next: &ConversationState,
    outcomes: &[Outcome],
    model_text: &str,
    rules: &MessageRules,
) -> Option<Vec<Outcome>> {
    let sends: Vec<usize> = outcomes
        .iter()
        .enumerate()
        .filter(|(_, o)| matches!(o, Outcome::Send(_)))
        .map(|(i, _)| i)
        .collect();
    let [index] = sends.as_slice() else {
        return None;
    };
    let Outcome::Send(engine_text) = outcomes.get(*index)? else {
        return None;
    };
    let question = question_text(profile, next);
    if question.is_empty() {
        return None;
    }
    let lead_in = engine_text.strip_suffix(&question)?.trim();
    if !LEAD_INS.contains(&lead_in) {
        // A canned answer, a deferral or a correction: the engine's words stand.
        return None;
    }
    let own = check_message(model_text, rules).ok()?;
    if own.contains('?') {
        return None;
    }
    // The question is the engine's (it may hold the caller's number): only its length counts.
    let whole = check_form(&format!("{own} {question}"), rules).ok()?;
    let mut replaced = outcomes.to_vec();
    replaced[*index] = Outcome::Send(whole);
    Some(replaced)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::core::conversation::{CallTime, Question};
    use crate::core::profile::tests::plumber;
    use chrono::TimeZone;

    fn now() -> DateTime<Utc> {
        Utc.with_ymd_and_hms(2025, 6, 10, 13, 5, 0).unwrap()
    }

    fn q(id: &str, kind: QuestionKind) -> Question {
        Question {
            id: id.to_string(),
            ask: format!("{id}?"),
            kind,
            required: true,
        }
    }

    /// Every kind of question.
    fn questions() -> Vec<Question> {
        vec![
            q("name", QuestionKind::Text),
            q("reason", QuestionKind::Text),
            q("postcode", QuestionKind::Postcode),
            q("urgency", QuestionKind::Urgency),
            q("callback", QuestionKind::Text),
            q("insured", QuestionKind::YesNo),
            q("bedrooms", QuestionKind::Number),
            q(
                "service",
                QuestionKind::Choice(vec![
                    "Cut and colour".to_string(),
                    "Blow dry".to_string(),
                    "Other".to_string(),
                ]),
            ),
            q("when", QuestionKind::DateTime),
        ]
    }

    fn proposal(slots: &[(&str, &str)]) -> ModelProposal {
        ModelProposal {
            slots: slots
                .iter()
                .map(|(k, v)| (k.to_string(), v.to_string()))
                .collect(),
            ..ModelProposal::default()
        }
    }

    fn check(slots: &[(&str, &str)], reply: &str) -> Checked {
        check_extraction(&proposal(slots), reply, &questions(), now())
    }

    fn why(checked: &Checked, id: &str) -> Option<Rejection> {
        checked
            .rejected
            .iter()
            .find(|r| r.id == id)
            .map(|r| r.why.clone())
    }

    const DAVE: &str = "Dave here, boiler leaking in SW11 4AB, pretty urgent";

    #[test]
    fn grounded_values_are_accepted_in_stored_form() {
        let checked = check(
            &[
                ("name", "dave"),
                ("reason", "boiler leaking"),
                ("postcode", "sw11 4ab"),
                ("urgency", "high"),
            ],
            DAVE,
        );
        assert!(checked.rejected.is_empty(), "{checked:?}");
        assert_eq!(checked.value("name"), Some("Dave"));
        assert_eq!(checked.value("reason"), Some("boiler leaking"));
        assert_eq!(checked.value("postcode"), Some("SW11 4AB"));
        assert_eq!(checked.value("urgency"), Some("high"));
    }

    #[test]
    fn a_number_of_something_else_is_not_the_count_asked() {
        let mut questions = questions();
        questions.push(Question {
            id: "rooms".to_string(),
            ask: "How many bedrooms are we moving?".to_string(),
            kind: QuestionKind::Number,
            required: false,
        });
        let check = |value: &str, reply: &str| {
            check_extraction(&proposal(&[("rooms", value)]), reply, &questions, now())
        };
        for reply in [
            "sunday 22nd june, about 20 tables and chairs, 2 fridges",
            "its a cafe, 2 floors of it",
        ] {
            assert_eq!(
                why(&check("2", reply), "rooms"),
                Some(Rejection::Invalid("count of what the question asks")),
                "{reply:?}"
            );
        }
        for reply in [
            "2",
            "2 bed",
            "its a 2 bedroom flat",
            "two bedrooms and a loft",
        ] {
            let value = if reply.starts_with("two") { "two" } else { "2" };
            assert_eq!(check(value, reply).value("rooms"), Some("2"), "{reply:?}");
        }
    }

    #[test]
    fn a_name_the_caller_gives_for_someone_else_is_refused() {
        let reply = "Hi! I'm a regular, Kerry normally does my hair, need a cut friday";
        let checked = check(&[("name", "Kerry")], reply);
        assert_eq!(why(&checked, "name"), Some(Rejection::SomeoneElse));
        let checked = check(&[("name", "Tom")], "its for my son Tom, I'm Sarah");
        assert_eq!(why(&checked, "name"), Some(Rejection::SomeoneElse));
        assert_eq!(
            check(&[("name", "Sarah")], "its for my son Tom, I'm Sarah").value("name"),
            Some("Sarah")
        );
    }

    /// Custom free-text questions of several trades, with the built-in ones.
    fn free_text_questions() -> Vec<Question> {
        let mut all = questions();
        for (id, ask) in [
            ("breed", "What breed is your dog?"),
            ("boiler", "What make is the boiler?"),
            ("car", "What make and model is the car?"),
            ("pet_name", "What's your pet's name?"),
            ("roof", "What sort of roof is it?"),
        ] {
            all.push(Question {
                id: id.to_string(),
                ask: ask.to_string(),
                kind: QuestionKind::Text,
                required: false,
            });
        }
        all
    }

    #[test]
    fn the_model_is_asked_about_the_questions_asked_and_the_next_open_ones() {
        let questions = free_text_questions();
        let profile = DialogueProfile::new("Acme", "", questions);
        let ids = |state: &ConversationState| -> Vec<String> {
            questions_for_model(&profile, state)
                .into_iter()
                .map(|q| q.id)
                .collect()
        };
        let (mut state, _) = Conversation::open(
            &profile,
            &E164::parse("07700 900123").unwrap(),
            &conversation::CallTime(now()),
        );
        state.asked = vec!["name".to_string()];
        assert_eq!(ids(&state), ["name", "reason", "postcode"]);
        // What is known is not asked about; the callback never is.
        for id in [
            "name", "reason", "postcode", "urgency", "insured", "bedrooms",
        ] {
            state.slots.insert(
                id.to_string(),
                Slot {
                    value: "x".to_string(),
                    machine: None,
                    source: Source::Answered { turn: 1 },
                    confirmed: true,
                    pinned: true,
                },
            );
        }
        state.asked = vec!["breed".to_string()];
        assert_eq!(ids(&state), ["breed", "service", "when"]);
        state.asked = vec!["callback".to_string()];
        assert_eq!(ids(&state), ["service", "when", "breed"]);
        // Every question the last text asked, however many.
        state.asked = ["service", "when", "breed", "boiler"]
            .map(String::from)
            .to_vec();
        assert_eq!(ids(&state), ["service", "when", "breed", "boiler"]);
    }

    #[test]
    fn free_text_answered_before_it_was_asked_is_taken_from_that_text() {
        let questions = free_text_questions();
        let (mut state, _) = Conversation::open(
            &DialogueProfile::new("Acme", "", questions.clone()),
            &E164::parse("07700 900123").unwrap(),
            &conversation::CallTime(now()),
        );
        for (id, value) in [("name", "Jade"), ("service", "Cut and colour")] {
            state.slots.insert(
                id.to_string(),
                Slot {
                    value: value.to_string(),
                    machine: None,
                    source: Source::Answered { turn: 1 },
                    confirmed: true,
                    pinned: true,
                },
            );
        }
        let check = |id: &str, value: &str, reply: &str, earlier: &[&str]| {
            check_extraction_against(
                &proposal(&[(id, value)]),
                reply,
                &questions,
                now(),
                &state,
                earlier,
                &state,
            )
        };
        // (question, the model's value, the reply, the caller's earlier texts, kept as)
        let taken: &[(&str, &str, &str, &[&str], &str)] = &[
            (
                "breed",
                "cockapoo",
                "saturday morning",
                &["Hi its Jade, I've got a cockapoo who needs a full groom"],
                "cockapoo",
            ),
            (
                "boiler",
                "Worcester Bosch combi",
                "no idea sorry",
                &[
                    "hiya",
                    "boilers packed in again, its a worcester bosch combi about 10 yrs old",
                ],
                "Worcester Bosch combi",
            ),
            (
                "car",
                "vauxhall corsa",
                "asap pls",
                &["hi m8 need a quote 4 my vauxhall corsa clutch slipping"],
                "vauxhall corsa",
            ),
            (
                "pet_name",
                "Mittens",
                "is that needed?",
                &["our cat Mittens has been sick twice today and wont eat"],
                "Mittens",
            ),
            // "As I said": the answer is in the text it points at.
            (
                "car",
                "Nissan Juke",
                "as i said in my first message lol",
                &["its Sam, my nissan juke needs new front tyres"],
                "Nissan Juke",
            ),
            (
                "roof",
                "flat roof on the extension",
                "👍",
                &["Its the flat roof on the extension, water coming through when it rains"],
                "flat roof on the extension",
            ),
        ];
        for (id, value, reply, earlier, kept) in taken {
            let checked = check(id, value, reply, earlier);
            assert_eq!(
                checked.value(id),
                Some(*kept),
                "{id} = {value:?} from {earlier:?}"
            );
        }
        // (question, the model's value, the reply, the caller's earlier texts, why refused)
        let refused: &[(&str, &str, &str, &[&str], Rejection)] = &[
            // Words of two texts joined: nothing the caller wrote.
            (
                "breed",
                "cockapoo full groom",
                "saturday morning",
                &["ive got a cockapoo", "she needs a full groom"],
                Rejection::NotInReply,
            ),
            // The business's words, not the caller's.
            (
                "breed",
                "dog breed",
                "not sure",
                &["hi can I book a groom"],
                Rejection::NotInReply,
            ),
            // Holding another question's value: that answer's sentence.
            (
                "breed",
                "want a cut and colour",
                "next week",
                &["hi want a cut and colour for my mum"],
                Rejection::OtherValue("service".to_string()),
            ),
            (
                "pet_name",
                "its Jade",
                "why",
                &["its Jade"],
                Rejection::OtherValue("name".to_string()),
            ),
            // Another kind of answer.
            (
                "car",
                "saturday morning",
                "dunno",
                &["saturday morning if poss"],
                Rejection::OtherKind("day or time"),
            ),
            (
                "boiler",
                "07700 900456",
                "not sure",
                &["ring me on 07700 900456"],
                Rejection::OtherKind("phone number"),
            ),
            (
                "roof",
                "yes",
                "hmm",
                &["yes"],
                Rejection::OtherKind("yes or no"),
            ),
            // A text that gives no answer gives the model none.
            (
                "reason",
                "Sorry wrong number, was trying to get my sister",
                "Sorry wrong number, was trying to get my sister",
                &[],
                Rejection::NoAnswer,
            ),
            (
                "boiler",
                "it came with the flat",
                "not sure of the make tbh, it came with the flat",
                &[],
                Rejection::NoAnswer,
            ),
            (
                "pet_name",
                "the usual one",
                "cant remember",
                &["same as last time, the usual one"],
                Rejection::NoAnswer,
            ),
            // A keyword, machine text, a question back, a remark about the phone: no answer.
            (
                "reason",
                "phone playing up",
                "sorry phone playing up. cat",
                &[],
                Rejection::NoAnswer,
            ),
            (
                "reason",
                "Help",
                "Dave here",
                &["HELP"],
                Rejection::NoAnswer,
            ),
            (
                "reason",
                "click here",
                "Harpreet",
                &["<b>Your parcel</b> could not be delivered, click here"],
                Rejection::NoAnswer,
            ),
            (
                "reason",
                "are you taking NHS patients",
                "Gwen",
                &["are you taking NHS patients"],
                Rejection::NoAnswer,
            ),
            // Another question's value, plurals aside.
            (
                "car",
                "cut and colours",
                "cut and colours pls",
                &[],
                Rejection::OtherValue("service".to_string()),
            ),
            // The reply's day offered as the breed.
            (
                "breed",
                "fri after 2",
                "fri after 2",
                &[],
                Rejection::OtherKind("day or time"),
            ),
            // Answers with a form of their own are the engine's to find in earlier texts.
            (
                "postcode",
                "LS8 2QT",
                "why do you need it",
                &["im at 14 carr lane LS8 2QT"],
                Rejection::NotInReply,
            ),
            (
                "name",
                "Priya",
                "is it open today",
                &["Priya here"],
                Rejection::NotInReply,
            ),
        ];
        for (id, value, reply, earlier, wanted) in refused {
            let checked = check(id, value, reply, earlier);
            assert_eq!(
                why(&checked, id).as_ref(),
                Some(wanted),
                "{id} = {value:?} from {earlier:?}"
            );
        }
    }

    #[test]
    fn words_the_engine_read_for_another_question_are_not_this_ones() {
        let questions = free_text_questions();
        let (state, _) = Conversation::open(
            &DialogueProfile::new("Acme", "", questions.clone()),
            &E164::parse("07700 900123").unwrap(),
            &conversation::CallTime(now()),
        );
        let reply = "its making a horrible grinding noise when it spins";
        let mut engine = state.clone();
        engine.slots.insert(
            "reason".to_string(),
            Slot {
                value: "making a horrible grinding noise when it spins".to_string(),
                machine: None,
                source: Source::Answered { turn: 2 },
                confirmed: true,
                pinned: true,
            },
        );
        let check = |value: &str, earlier: &[&str]| {
            check_extraction_against(
                &proposal(&[("boiler", value)]),
                reply,
                &questions,
                now(),
                &state,
                earlier,
                &engine,
            )
        };
        assert_eq!(
            why(&check("grinding noise", &[]), "boiler"),
            Some(Rejection::OtherValue("reason".to_string()))
        );
        // Words of an earlier text are not this reply's: the engine's reading of the reply does
        // not hold them.
        assert_eq!(
            check("ideal logic", &["its an ideal logic combi"]).value("boiler"),
            Some("ideal logic")
        );
        // Without the engine's reading, the same value would pass.
        let alone = check_extraction_against(
            &proposal(&[("boiler", "grinding noise")]),
            reply,
            &questions,
            now(),
            &state,
            &[],
            &state,
        );
        assert_eq!(alone.value("boiler"), Some("grinding noise"));
    }

    #[test]
    fn another_questions_value_or_the_wrong_form_is_refused() {
        let (state, _) = Conversation::open(
            &DialogueProfile::new("Acme", "", questions()),
            &E164::parse("07700 900123").unwrap(),
            &conversation::CallTime(now()),
        );
        // The model copies the caller's name into the reason.
        let checked = check_extraction_against(
            &proposal(&[("name", "Dave"), ("reason", "Dave")]),
            "Dave here",
            &questions(),
            now(),
            &state,
            &[],
            &state,
        );
        assert_eq!(checked.value("name"), Some("Dave"));
        assert_eq!(
            why(&checked, "reason"),
            Some(Rejection::OtherValue("name".to_string()))
        );
        // A text question worded for a registration takes only a registration.
        let mut with_reg = questions();
        with_reg.push(Question {
            id: "reg".to_string(),
            ask: "What's the car's registration?".to_string(),
            kind: QuestionKind::Text,
            required: false,
        });
        let reply = "MOT and service please, reg is ab12 cde";
        let checked = check_extraction_against(
            &proposal(&[("reg", "MOT and service")]),
            reply,
            &with_reg,
            now(),
            &state,
            &[],
            &state,
        );
        assert_eq!(
            why(&checked, "reg"),
            Some(Rejection::Invalid("registration"))
        );
        let checked = check_extraction_against(
            &proposal(&[("reg", "ab12 cde")]),
            reply,
            &with_reg,
            now(),
            &state,
            &[],
            &state,
        );
        assert_eq!(checked.value("reg"), Some("ab12 cde"));
    }

    #[test]
    fn hallucinated_names_are_rejected() {
        let checked = check(&[("name", "John Smith")], DAVE);
        assert_eq!(why(&checked, "name"), Some(Rejection::NotInReply));
        // A word of the reply that is not a name.
        let checked = check(&[("name", "Boiler")], DAVE);
        assert_eq!(why(&checked, "name"), Some(Rejection::Invalid("name")));
        // A sentence rather than a name.
        let checked = check(&[("name", "Dave here boiler")], DAVE);
        assert!(checked.accepted.is_empty());
        // The surname is invented.
        let checked = check(&[("name", "Dave Jones")], DAVE);
        assert_eq!(why(&checked, "name"), Some(Rejection::NotInReply));
    }

    #[test]
    fn invented_postcodes_are_rejected() {
        let checked = check(&[("postcode", "SW1A 1AA")], DAVE);
        assert_eq!(why(&checked, "postcode"), Some(Rejection::NotInReply));
        let checked = check(&[("postcode", "London")], DAVE);
        assert_eq!(
            why(&checked, "postcode"),
            Some(Rejection::Invalid("postcode"))
        );
        // The outward code of a full postcode written: the full one.
        let checked = check(&[("postcode", "SW11")], DAVE);
        assert_eq!(checked.value("postcode"), Some("SW11 4AB"));
        // An outward code alone in a sentence.
        let checked = check(&[("postcode", "sw11")], "im in SW11 near the common");
        assert_eq!(checked.value("postcode"), Some("SW11"));
        // Postcode plus more text.
        let checked = check(&[("postcode", "SW11 4AB London")], DAVE);
        assert_eq!(
            why(&checked, "postcode"),
            Some(Rejection::Invalid("postcode"))
        );
    }

    #[test]
    fn text_must_be_the_callers_words() {
        let checked = check(&[("reason", "boiler not leaking")], DAVE);
        assert_eq!(why(&checked, "reason"), Some(Rejection::NotInReply));
        let checked = check(&[("reason", "Needs a new boiler installed")], DAVE);
        assert_eq!(why(&checked, "reason"), Some(Rejection::NotInReply));
        let checked = check(&[("reason", "Boilers leaking!")], DAVE);
        assert_eq!(checked.value("reason"), Some("Boilers leaking!"));
        let long = "boiler ".repeat(100);
        let checked = check(&[("reason", &long)], DAVE);
        assert_eq!(why(&checked, "reason"), Some(Rejection::TooLong));
    }

    #[test]
    fn phone_numbers_must_be_the_one_written() {
        let reply = "call my work phone 020 7946 0321";
        let checked = check(&[("callback", "02079460321")], reply);
        assert_eq!(checked.value("callback"), Some("+442079460321"));
        let checked = check(&[("callback", "07700 900999")], reply);
        assert_eq!(why(&checked, "callback"), Some(Rejection::NotInReply));
        let checked = check(&[("callback", "my work phone")], reply);
        assert_eq!(
            why(&checked, "callback"),
            Some(Rejection::Invalid("phone number"))
        );
    }

    #[test]
    fn yes_no_number_urgency_must_agree_with_the_reply() {
        let checked = check(&[("insured", "yes")], "yeah we are");
        assert_eq!(checked.value("insured"), Some("yes"));
        let checked = check(&[("insured", "yes")], "nope");
        assert_eq!(why(&checked, "insured"), Some(Rejection::NotInReply));
        let checked = check(&[("insured", "maybe")], "nope");
        assert_eq!(
            why(&checked, "insured"),
            Some(Rejection::Invalid("yes or no"))
        );

        let checked = check(&[("bedrooms", "3")], "its a three bed semi");
        assert_eq!(checked.value("bedrooms"), Some("3"));
        let checked = check(&[("bedrooms", "4")], "its a three bed semi");
        assert_eq!(why(&checked, "bedrooms"), Some(Rejection::NotInReply));
        let checked = check(&[("bedrooms", "3 or 4")], "3 or 4 bed");
        assert_eq!(
            why(&checked, "bedrooms"),
            Some(Rejection::Invalid("number"))
        );

        let checked = check(&[("urgency", "low")], DAVE);
        assert_eq!(why(&checked, "urgency"), Some(Rejection::NotInReply));
        let checked = check(&[("urgency", "extremely")], DAVE);
        assert_eq!(
            why(&checked, "urgency"),
            Some(Rejection::Invalid("urgency"))
        );
    }

    #[test]
    fn choices_must_be_options_the_reply_names() {
        let checked = check(&[("service", "Blow dry")], "just a blow dry please");
        assert_eq!(checked.value("service"), Some("Blow dry"));
        // One word of the option is enough when no other option is named.
        let checked = check(&[("service", "Cut and colour")], "need my colour done");
        assert_eq!(checked.value("service"), Some("Cut and colour"));
        let checked = check(&[("service", "Blow dry")], "need my colour done");
        assert_eq!(why(&checked, "service"), Some(Rejection::NotInReply));
        let checked = check(&[("service", "Perm")], "a perm");
        assert_eq!(why(&checked, "service"), Some(Rejection::Invalid("option")));
        let checked = check(&[("service", "Other")], "nails");
        assert_eq!(why(&checked, "service"), Some(Rejection::NotInReply));
    }

    #[test]
    fn dates_must_be_written_and_agree() {
        let checked = check(&[("when", "friday after 3")], "friday after 3 is best");
        assert_eq!(checked.value("when"), Some("Fri 13 Jun, after 3pm"));
        let checked = check(&[("when", "tomorrow")], "friday after 3 is best");
        assert_eq!(why(&checked, "when"), Some(Rejection::NotInReply));
        let checked = check(&[("when", "banana")], "banana");
        assert_eq!(
            why(&checked, "when"),
            Some(Rejection::Invalid("date or time"))
        );
    }

    #[test]
    fn unknown_ids_are_rejected() {
        let checked = check(&[("credit_card", "4111")], "4111");
        assert_eq!(
            why(&checked, "credit_card"),
            Some(Rejection::NoSuchQuestion)
        );
    }

    #[test]
    fn parses_lenient_shapes_and_rejects_malformed_json() {
        let parsed = parse_proposal(
            "```json\n{\"slots\": {\"name\": \"Dave\", \"postcode\": null, \"bedrooms\": 3, \
             \"reason\": \"N/A\"}, \"intent\": \"answer\", \"question_topic\": null, \
             \"reply_to_caller\": \"Thanks Dave\"}\n```",
        )
        .unwrap();
        assert_eq!(parsed.slots.get("name").map(String::as_str), Some("Dave"));
        assert_eq!(parsed.slots.get("bedrooms").map(String::as_str), Some("3"));
        assert!(!parsed.slots.contains_key("postcode"));
        assert!(!parsed.slots.contains_key("reason"));
        assert_eq!(parsed.intent, Some(Intent::Answer));
        assert_eq!(parsed.reply_to_caller.as_deref(), Some("Thanks Dave"));

        let odd = parse_proposal("{\"slots\": {}, \"intent\": \"sing\"}").unwrap();
        assert_eq!(odd.intent, None);
        assert_eq!(parse_proposal("Sure! Dave."), Err(ParseError::NoObject));
        assert!(matches!(
            parse_proposal("{\"slots\": {\"name\": \"Dave\""),
            Err(ParseError::NoObject)
        ));
        assert!(matches!(
            parse_proposal("{\"slots\": {\"name\": Dave}}"),
            Err(ParseError::Json(_))
        ));
        assert_eq!(
            parse_proposal("{\"name\": \"Dave\"}"),
            Err(ParseError::NoSlots)
        );
        assert_eq!(parse_proposal("}{"), Err(ParseError::NoObject));
    }

    fn rules() -> MessageRules {
        MessageRules::default()
    }

    #[test]
    fn plain_messages_pass_with_quotes_made_plain() {
        assert_eq!(
            check_message("Thanks  Dave \u{2013} we\u{2019}ll pass that on.", &rules()),
            Ok("Thanks Dave - we'll pass that on.".to_string())
        );
        assert_eq!(check_message("   ", &rules()), Err(Why::Empty));
    }

    #[test]
    fn long_messages_are_rejected_not_trimmed() {
        let long = "Thanks for letting us know about that. ".repeat(13);
        assert!(long.chars().count() > 500);
        assert!(matches!(
            check_message(&long, &rules()),
            Err(Why::TooLong { .. })
        ));
        // 161 GSM-7 characters: two parts.
        let just_over = "a".repeat(161);
        assert!(matches!(
            check_message(&just_over, &rules()),
            Err(Why::TooLong { parts: 2, max: 1 })
        ));
        assert!(check_message(&"a".repeat(160), &rules()).is_ok());
        // Extension characters count twice: 80 "{" is 160 septets ... but "{" is fine GSM-7.
        assert!(check_message(&"€".repeat(81), &rules()).is_err());
        let two = MessageRules {
            max_parts: 2,
            ..rules()
        };
        assert!(check_message(&just_over, &two).is_ok());
    }

    #[test]
    fn emoji_are_rejected_when_gsm7_is_required() {
        assert_eq!(
            check_message("Thanks Dave 👍", &rules()),
            Err(Why::NotGsm7('👍'))
        );
        let lenient = MessageRules {
            require_gsm7: false,
            ..rules()
        };
        assert!(check_message("Thanks Dave 👍", &lenient).is_ok());
        // UCS-2: 70 characters a part.
        assert!(matches!(
            check_message(&format!("👍{}", "a".repeat(70)), &lenient),
            Err(Why::TooLong { .. })
        ));
    }

    #[test]
    fn links_and_contact_details_are_rejected() {
        for text in [
            "See https://acme.example for more",
            "Visit www.acme-plumbing.co.uk",
            "Book at acme.com",
            "Book at acme-plumbing.co.uk today",
            "Details: bit.ly/x1y2",
            "Email us at jobs@acme.test",
        ] {
            assert!(
                matches!(check_message(text, &rules()), Err(Why::Link(_))),
                "{text}"
            );
        }
        assert_eq!(
            check_message("Or call 07700 900555 instead", &rules()),
            Err(Why::PhoneNumber)
        );
        // A full stop between sentences is not a link.
        assert!(check_message("Thanks. We will call you back.", &rules()).is_ok());
    }

    #[test]
    fn prices_are_rejected_unless_allowed() {
        for text in [
            "Call-out is £65",
            "It's about 80 pounds",
            "Only 50 quid",
            "That's $100",
            "Parts are 99p each",
            "We charge 45 per hour",
            "10% off this month",
            "We do a free quote",
        ] {
            assert!(
                matches!(check_message(text, &rules()), Err(Why::Price(_))),
                "{text}"
            );
        }
        let allowed = MessageRules {
            allow_prices: true,
            ..rules()
        };
        assert!(check_message("Call-out is £65", &allowed).is_ok());
    }

    #[test]
    fn times_and_bookings_are_rejected_unless_allowed() {
        for text in [
            "We can come tomorrow",
            "See you at 3",
            "Someone will be there by 3pm",
            "We'll call at 15:30",
            "An engineer in 20 mins",
            "We'll be with you within the hour",
            "How about Friday?",
        ] {
            assert!(
                matches!(check_message(text, &rules()), Err(Why::Time(_))),
                "{text}"
            );
        }
        for text in [
            "You're booked in",
            "Appointment confirmed",
            "We'll be there soon",
            "Our engineer is on the way",
            "We have a slot for you",
        ] {
            assert!(
                matches!(check_message(text, &rules()), Err(Why::Booking(_))),
                "{text}"
            );
        }
        let allowed = MessageRules {
            allow_times: true,
            allow_bookings: true,
            ..rules()
        };
        assert!(check_message("You're booked in for tomorrow at 3pm", &allowed).is_ok());
    }

    // ---- combine

    fn caller() -> E164 {
        E164::parse("07700 900123").unwrap()
    }

    fn opened() -> ConversationState {
        Conversation::open(&plumber(), &caller(), &CallTime(now())).0
    }

    fn sent(outcomes: &[Outcome]) -> Vec<String> {
        outcomes
            .iter()
            .filter_map(|o| match o {
                Outcome::Send(t) => Some(t.clone()),
                _ => None,
            })
            .collect()
    }

    fn combined(
        state: &ConversationState,
        reply: &str,
        model: &ModelProposal,
        phrasing: bool,
    ) -> Combined {
        let profile = plumber();
        let checked = check_extraction(model, reply, &profile.questions, now());
        let options = CombineOptions {
            phrasing,
            rules: MessageRules::default(),
        };
        combine(
            &profile,
            state,
            reply,
            now(),
            Some((model, &checked)),
            &options,
        )
    }

    #[test]
    fn without_a_model_it_is_the_engine() {
        let profile = plumber();
        let state = opened();
        let reply = "Dave here, boiler leaking in SW11 4AB, pretty urgent";
        let engine = Conversation::on_reply(&profile, &state, reply, now());
        let out = combine(
            &profile,
            &state,
            reply,
            now(),
            None,
            &CombineOptions::default(),
        );
        assert_eq!((out.state, out.outcomes), engine);
    }

    #[test]
    fn accepted_values_fill_only_what_the_engine_left_empty() {
        // The caller gives name and reason; the engine asks the postcode. Then it reads no
        // postcode in "SW11" (an outward code alone, in a sentence); the model does, and the
        // engine asks the next question.
        let (state, _) =
            Conversation::on_reply(&plumber(), &opened(), "Dave, boiler leaking", now());
        assert_eq!(state.asked, vec!["postcode".to_string()]);
        let reply = "I'm in SW11 by the common";
        let model = proposal(&[
            ("name", "Dave Smith"),       // the engine has "Dave"; not replaced
            ("postcode", "SW11"),         // grounded, asked, the engine had nothing
            ("reason", "leaking boiler"), // the engine has a reason: not replaced
        ]);
        let out = combined(&state, reply, &model, false);
        assert_eq!(out.from_model, vec!["postcode".to_string()]);
        assert_eq!(out.state.slots["postcode"].value, "SW11");
        assert_eq!(out.state.slots["name"].value, "Dave");
        assert_eq!(out.state.slots["reason"].value, "boiler leaking");
        assert_eq!(out.state.asked, vec!["urgency".to_string()]);
        let texts = sent(&out.outcomes);
        assert!(
            texts.len() == 1 && texts[0].ends_with("How urgent is it?"),
            "{texts:?}"
        );
        assert!(
            out.outcomes
                .contains(&Outcome::Note("postcode = SW11 (model)".to_string()))
        );
    }

    /// What is sent and kept, without the notes.
    fn acts(state: &ConversationState, outcomes: &[Outcome]) -> (ConversationState, Vec<Outcome>) {
        let outcomes = outcomes
            .iter()
            .filter(|o| !matches!(o, Outcome::Note(_)))
            .cloned()
            .collect();
        (state.clone(), outcomes)
    }

    #[test]
    fn when_the_model_cannot_help_any_answer_of_it_gives_the_engines_result() {
        // Conversations in several voices, each reply answered with a model that "reads" a value
        // for every question (all passing the checks, the worst case): wherever model_can_help
        // says no, combining changes nothing the caller or the business sees; and somewhere it
        // says yes and the model's value is used.
        let profile = plumber();
        let conversations: &[&[&str]] = &[
            &[
                "Dave, boiler leaking",
                "im in SW11 by the common",
                "asap please",
            ],
            &[
                "hi its lucy",
                "tap drippin in the kitchen",
                "SW11 4AB",
                "no rush",
            ],
            &["Sarah Jones, boiler leaking in SW11 4AB, pretty urgent"],
            &["???", "dunno", "STOP"],
            &["can you just call me back"],
            &[
                "Hi, how much do you charge for a new radiator?",
                "Mark",
                "BS8 1TH",
                "whenever",
            ],
        ];
        let everything = |value: &str| Checked {
            accepted: profile
                .questions
                .iter()
                .map(|q| Accepted {
                    id: q.id.clone(),
                    value: value.to_string(),
                    machine: None,
                })
                .collect(),
            rejected: Vec::new(),
        };
        let options = CombineOptions::default();
        let (mut helped, mut not) = (0, 0);
        for replies in conversations {
            let mut state = opened();
            for reply in *replies {
                let checked = everything("model value");
                let model = ModelProposal::default();
                let with = combine(
                    &profile,
                    &state,
                    reply,
                    now(),
                    Some((&model, &checked)),
                    &options,
                );
                let (engine_state, engine_outcomes) =
                    Conversation::on_reply(&profile, &state, reply, now());
                if model_can_help(&profile, &state, reply, now(), &options) {
                    helped += 1;
                    assert!(!with.from_model.is_empty(), "{reply:?}");
                } else {
                    not += 1;
                    assert!(with.from_model.is_empty(), "{reply:?}");
                    assert_eq!(
                        acts(&with.state, &with.outcomes),
                        acts(&engine_state, &engine_outcomes),
                        "{reply:?}"
                    );
                }
                state = engine_state;
            }
        }
        assert!(helped > 0 && not > 0, "helped {helped}, not {not}");
        // With phrasing on, the model's words may be used on any open reply: it is asked.
        let phrasing = CombineOptions {
            phrasing: true,
            ..CombineOptions::default()
        };
        assert!(model_can_help(
            &profile,
            &opened(),
            "Sarah Jones",
            now(),
            &phrasing
        ));
        assert!(!model_can_help(
            &profile,
            &opened(),
            "STOP",
            now(),
            &phrasing
        ));
    }

    #[test]
    fn a_value_for_a_question_not_asked_yet_waits_for_the_callers_answer() {
        // The first text asks name and reason; the model also reads a postcode and an urgency
        // the caller never gave as such. Neither is used: both questions are still asked, and
        // the caller's own answers decide.
        let state = opened();
        assert!(!state.asked.contains(&"postcode".to_string()));
        let reply = "Dave, boiler leaking, I'm in SW11 by the common";
        let model = proposal(&[("postcode", "SW11"), ("urgency", "low")]);
        let out = combined(&state, reply, &model, false);
        assert!(out.from_model.is_empty(), "{:?}", out.from_model);
        assert!(!out.state.slots.contains_key("postcode"));
        assert!(!out.state.slots.contains_key("urgency"));
        let engine = Conversation::on_reply(&plumber(), &state, reply, now());
        assert_eq!(out.state, engine.0);
    }

    #[test]
    fn keywords_and_call_requests_are_the_engines() {
        let state = opened();
        let model = ModelProposal {
            reply_to_caller: Some("Sure thing".to_string()),
            ..proposal(&[("name", "Stop")])
        };
        let out = combined(&state, "STOP", &model, true);
        assert_eq!(out.state.status, Status::OptedOut);
        assert!(out.from_model.is_empty());
        let out = combined(
            &state,
            "just call me back, SW11",
            &proposal(&[("postcode", "SW11")]),
            true,
        );
        assert_eq!(out.state.status, Status::CallRequested);
        assert!(out.from_model.is_empty());
    }

    #[test]
    fn phrasing_replaces_only_the_lead_in_and_only_when_checked() {
        let state = opened();
        let reply = "Dave";
        let good = ModelProposal {
            reply_to_caller: Some("Thanks Dave, nice to hear from you.".to_string()),
            ..ModelProposal::default()
        };
        let out = combined(&state, reply, &good, true);
        assert!(out.phrased);
        assert_eq!(
            sent(&out.outcomes),
            vec!["Thanks Dave, nice to hear from you. What's the problem?"]
        );
        // Off by default.
        let out = combined(&state, reply, &good, false);
        assert!(!out.phrased);
        assert_eq!(sent(&out.outcomes), vec!["Thanks. What's the problem?"]);
        for bad in [
            "Thanks Dave, we'll be there at 3pm",
            "Thanks Dave, call-out is £65",
            "Thanks Dave! See www.acme.com",
            "Thanks Dave 😊",
            "What is your postcode?",
        ] {
            let model = ModelProposal {
                reply_to_caller: Some(bad.to_string()),
                ..ModelProposal::default()
            };
            let out = combined(&state, reply, &model, true);
            assert!(!out.phrased, "{bad}");
            assert_eq!(
                sent(&out.outcomes),
                vec!["Thanks. What's the problem?"],
                "{bad}"
            );
        }
    }

    #[test]
    fn canned_answers_are_never_rephrased() {
        let state = opened();
        let model = ModelProposal {
            reply_to_caller: Some("Thanks for asking.".to_string()),
            ..ModelProposal::default()
        };
        let out = combined(&state, "how much do you charge?", &model, true);
        assert!(!out.phrased);
        assert!(sent(&out.outcomes)[0].contains("£65"));
    }
}
