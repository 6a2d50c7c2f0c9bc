//! The conversation engine: the state of a conversation with a caller plus a reply (or a
//! silence) gives the new state and what to do. Pure: no I/O, no clock; time is passed in.
//!
//! ```text
//!          open()           replies fill slots; ask what is missing (1-3 questions a message)
//!  (call) ───────> Open ─────────────────────────────────────────────────> Completed ─> lead
//!                   │ "just call me"                     ──> CallRequested ─> urgent lead
//!                   │ max turns, or silence              ──> TimedOut ─> incomplete lead
//!                   │ abuse                              ──> Closed ─> incomplete lead
//!                   └ STOP, QUIT, ... (the whole message) ──> OptedOut (one confirmation)
//! ```

use std::collections::BTreeMap;

use chrono::{DateTime, Utc};
use chrono_tz::Europe::London;
use serde::{Deserialize, Serialize};

use crate::codec::gsm7;
use crate::codec::phone::E164;
use crate::core::keywords::{self, keyword};
use crate::core::slots;
use crate::core::understand::{self, Context, Reading};

pub use crate::core::profile::{
    CannedAnswer, DialogueProfile, KIND_NAMES, KindError, PROPERTY_TYPES, ProfileError, Question,
    QuestionKind, Templates, defaults,
};

/// When the call was missed.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct CallTime(pub DateTime<Utc>);

/// Where a conversation stands.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Status {
    Open,
    /// Every question answered (or given up on); the lead went out.
    Completed,
    /// The caller asked for a call; an urgent lead went out with what there was.
    CallRequested,
    /// Too many turns or too long a silence; an incomplete lead went out.
    TimedOut,
    /// The caller was abusive; closed politely, an incomplete lead went out.
    Closed,
    OptedOut,
}

/// Where a slot value came from.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Source {
    /// The caller id of the missed call (the callback number before it is confirmed).
    CallerId,
    /// The caller's reply number `turn` (1-based), answering that question.
    Answered { turn: u32 },
    /// Read from reply `turn`, which was not asked for it.
    Volunteered { turn: u32 },
    /// Reply `turn` corrected an earlier value.
    Corrected { turn: u32 },
}

/// One value the conversation has.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Slot {
    /// For people: "Dave", "SW11 4AB", "Fri 13 Jun, after 3pm", "+447700900123".
    pub value: String,
    /// For machines, where there is one: "2025-06-13T15:00".
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub machine: Option<String>,
    pub source: Source,
    /// The caller said so (false for the caller id before it is confirmed).
    pub confirmed: bool,
    /// False when the text is kept as said because it could not be pinned down.
    pub pinned: bool,
}

/// A conversation's state: what is stored (as JSON) between messages.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct ConversationState {
    pub status: Status,
    pub caller: E164Text,
    pub slots: BTreeMap<String, Slot>,
    /// Ids of the questions the last text asked.
    pub asked: Vec<String>,
    /// Replies that left a question unanswered, by question id; after 2 it is not asked again.
    pub misses: BTreeMap<String, u32>,
    /// The caller said the callback number is wrong; the next text asks for the right one.
    pub awaiting_number: bool,
    /// Replies so far (keywords excluded).
    pub turns: u32,
    pub opened_at: DateTime<Utc>,
}

/// An E.164 number as stored in the state (kept as text so the state is plain JSON).
pub type E164Text = String;

/// What the shell must do after a step.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Outcome {
    /// Text the caller.
    Send(String),
    /// The business has a lead.
    Lead { complete: bool, urgent: bool },
    /// The caller asked not to be texted again.
    OptOut,
    /// The caller asked to be texted again.
    OptIn,
    /// The caller asked for help (the help text is in a `Send`).
    Help,
    /// For the transcript and journal only.
    Note(String),
}

/// Fills {business}, {name}, {number}, {time}, {contact}, {question}; a field with no value
/// becomes empty and the text is tidied ("Thanks , that's" -> "Thanks, that's").
pub fn render(template: &str, values: &[(&str, &str)]) -> String {
    let mut out = template.to_string();
    for (field, value) in values {
        out = out.replace(&format!("{{{field}}}"), value);
    }
    let folded = out.split_whitespace().collect::<Vec<_>>().join(" ");
    gsm7::to_plain(&folded.replace(" ,", ",").replace(" .", "."))
}

/// A closing with the caller's name, as one SMS: the name is written in GSM-7 (accents the
/// alphabet lacks dropped) by `render`; a name still too long for one SMS is shortened to its
/// first word, then left out.
fn render_with_name(template: &str, business: &str, name: &str) -> String {
    let first = name.split_whitespace().next().unwrap_or("");
    let mut text = String::new();
    for candidate in [name, first, ""] {
        text = render(template, &[("business", business), ("name", candidate)]);
        if fits_one_sms(&text) {
            break;
        }
    }
    text
}

fn fits_one_sms(text: &str) -> bool {
    crate::codec::pdu::segment(text).parts.len() == 1
}

/// Sends `parts` (answers to the caller's questions, a lead-in) and `last` (the question or the
/// closing) as one text when together they fit one SMS, else `parts` first and `last` alone.
fn send_parts(outcomes: &mut Vec<Outcome>, parts: Vec<String>, last: String) {
    if parts.is_empty() {
        outcomes.push(Outcome::Send(last));
        return;
    }
    let together = format!("{} {last}", parts.join(" "));
    if fits_one_sms(&together) {
        outcomes.push(Outcome::Send(together));
    } else {
        outcomes.push(Outcome::Send(parts.join(" ")));
        outcomes.push(Outcome::Send(last));
    }
}

impl ConversationState {
    /// The state of a conversation the retired in-order engine left open: its answers so far,
    /// in question order, and the index of the question it asked last. The callback answer,
    /// kept as the caller wrote it, becomes a number: another number given, or the caller's own
    /// (confirmed by a yes, else still to confirm).
    pub fn from_in_order(
        profile: &DialogueProfile,
        caller: &E164,
        answers: &[(String, String)],
        next_question: usize,
        opened_at: DateTime<Utc>,
    ) -> ConversationState {
        let mut slots = BTreeMap::new();
        for (turn, (id, value)) in answers.iter().enumerate() {
            let turn = u32::try_from(turn + 1).unwrap_or(u32::MAX);
            let slot = if id == "callback" {
                let (number, confirmed) = match slots::find_phone(value) {
                    Some((number, _, _)) => (number, true),
                    None => (caller.clone(), slots::yes_no(value) == Some(true)),
                };
                Slot {
                    value: number.as_str().to_string(),
                    machine: Some(number.as_str().to_string()),
                    source: Source::Answered { turn },
                    confirmed,
                    pinned: true,
                }
            } else {
                Slot {
                    value: slots::clean_answer(value),
                    machine: None,
                    source: Source::Answered { turn },
                    confirmed: true,
                    pinned: false,
                }
            };
            slots.insert(id.clone(), slot);
        }
        if profile.question("callback").is_some() && !slots.contains_key("callback") {
            slots.insert(
                "callback".to_string(),
                Slot {
                    value: caller.as_str().to_string(),
                    machine: Some(caller.as_str().to_string()),
                    source: Source::CallerId,
                    confirmed: false,
                    pinned: true,
                },
            );
        }
        let asked = profile
            .questions
            .get(next_question)
            .filter(|q| !slots.get(&q.id).is_some_and(|s| s.confirmed))
            .map(|q| vec![q.id.clone()])
            .unwrap_or_default();
        ConversationState {
            status: Status::Open,
            caller: caller.as_str().to_string(),
            slots,
            asked,
            misses: BTreeMap::new(),
            awaiting_number: false,
            turns: u32::try_from(answers.len()).unwrap_or(u32::MAX),
            opened_at,
        }
    }
}

pub struct Conversation;

impl Conversation {
    /// Starts a conversation after a missed call: the first text, with the first question.
    pub fn open(
        profile: &DialogueProfile,
        caller: &E164,
        call_time: &CallTime,
    ) -> (ConversationState, Vec<Outcome>) {
        let mut state = ConversationState {
            status: Status::Open,
            caller: caller.as_str().to_string(),
            slots: BTreeMap::new(),
            asked: Vec::new(),
            misses: BTreeMap::new(),
            awaiting_number: false,
            turns: 0,
            opened_at: call_time.0,
        };
        if profile.question("callback").is_some() {
            state.slots.insert(
                "callback".to_string(),
                Slot {
                    value: caller.as_str().to_string(),
                    machine: Some(caller.as_str().to_string()),
                    source: Source::CallerId,
                    confirmed: false,
                    pinned: true,
                },
            );
        }
        let (asked, question) = next_questions(profile, &state);
        state.asked = asked;
        let time = call_time
            .0
            .with_timezone(&London)
            .format("%H:%M")
            .to_string();
        let text = render(
            &profile.templates.first_message,
            &[
                ("business", &profile.business),
                ("time", &time),
                ("question", &question),
            ],
        );
        let mut outcomes = vec![Outcome::Send(text)];
        if !profile.templates.first_message.contains("{question}") && !question.is_empty() {
            outcomes.push(Outcome::Send(question));
        }
        (state, outcomes)
    }

    /// Takes the caller's reply, received at `now`.
    pub fn on_reply(
        profile: &DialogueProfile,
        state: &ConversationState,
        text: &str,
        now: DateTime<Utc>,
    ) -> (ConversationState, Vec<Outcome>) {
        let mut next = state.clone();
        let business = profile.business.as_str();
        let opted_out = state.status == Status::OptedOut;
        match keyword(text).and_then(|keyword| keywords::action(keyword, opted_out)) {
            Some(keywords::Action::OptOut) => {
                next.status = Status::OptedOut;
                let confirm = render(&profile.templates.opt_out, &[("business", business)]);
                return (next, vec![Outcome::Send(confirm), Outcome::OptOut]);
            }
            Some(keywords::Action::OptIn) => {
                next.status = Status::Closed;
                let confirm = render(&profile.templates.opt_in, &[("business", business)]);
                return (next, vec![Outcome::Send(confirm), Outcome::OptIn]);
            }
            Some(keywords::Action::Help) => {
                let help = render(
                    &profile.templates.help,
                    &[("business", business), ("contact", &profile.contact)],
                );
                return (next, vec![Outcome::Send(help), Outcome::Help]);
            }
            None => {}
        }
        if state.status != Status::Open {
            return (
                next,
                vec![Outcome::Note(
                    "reply after the conversation ended".to_string(),
                )],
            );
        }
        // A value kept as said (a reason read from a question, a time not pinned down) is open
        // to a clearer one.
        let filled =
            |id: &str| is_filled(state, id) && state.slots.get(id).is_none_or(|s| s.pinned);
        let earlier = |id: &str| {
            state.slots.get(id).map(|slot| crate::core::when::When {
                human: slot.value.clone(),
                machine: slot.machine.clone(),
            })
        };
        let context = Context {
            asked: &state.asked,
            filled: &filled,
            earlier: &earlier,
            now,
        };
        let reading = understand::read(profile, &context, text);
        let mut outcomes = Vec::new();
        if reading.machine {
            // An auto-reply or spam: no answer, no turn, and nothing sent back (an auto-reply
            // answered would answer again).
            return (
                next,
                vec![Outcome::Note(
                    "a text written by a machine (an auto-reply, a link); not an answer"
                        .to_string(),
                )],
            );
        }
        next.turns += 1;
        let turn = next.turns;

        if reading.abusive {
            next.status = Status::Closed;
            outcomes.push(Outcome::Note("abusive reply; closed".to_string()));
            outcomes.push(Outcome::Send(render(
                &profile.templates.abuse_closing,
                &[("business", business)],
            )));
            outcomes.push(Outcome::Lead {
                complete: false,
                urgent: false,
            });
            return (next, outcomes);
        }

        let learned = apply(profile, &mut next, &reading, turn);
        // The callback confirmation.
        let mut confirmed_callback = false;
        if state.asked.iter().any(|a| a == "callback") && !learned.iter().any(|id| id == "callback")
        {
            if state.awaiting_number {
                // Still no number: keep the caller id.
            } else if let Some(yes) = reading.yes_no {
                if yes {
                    if let Some(slot) = next.slots.get_mut("callback") {
                        slot.confirmed = true;
                        slot.source = Source::Answered { turn };
                        confirmed_callback = true;
                    }
                } else {
                    next.awaiting_number = true;
                }
            }
        }
        if learned.iter().any(|id| id == "callback") {
            next.awaiting_number = false;
        }
        // "yes this number" before the question came: the caller's own number, confirmed.
        if reading.this_number
            && !learned.iter().any(|id| id == "callback")
            && let Some(slot) = next.slots.get_mut("callback")
            && slot.source == Source::CallerId
        {
            slot.confirmed = true;
            slot.source = Source::Volunteered { turn };
            confirmed_callback = true;
        }
        for id in &state.asked {
            let answered = learned.contains(id)
                || (id == "callback" && (confirmed_callback || next.awaiting_number));
            if !answered
                && !reading.emoji_only
                && !reading.foreign
                && !greeting_only(text)
                && reading.questions.is_empty()
                && learned.is_empty()
            {
                *next.misses.entry(id.clone()).or_insert(0) += 1;
            }
        }
        // "not sure", "dont know it off hand": an optional or yes/no question is not asked
        // again (a required one is, later, in case it turns up).
        if reading.unsure && learned.is_empty() {
            for id in &state.asked {
                let let_go = profile
                    .question(id)
                    .is_some_and(|q| !q.required || q.kind == QuestionKind::YesNo);
                if let_go && id != "callback" {
                    next.misses.insert(id.clone(), 2);
                }
            }
        }
        if state.asked.iter().any(|a| a == "callback")
            && state.awaiting_number
            && !learned.iter().any(|id| id == "callback")
        {
            // Two tries at a different number are enough; keep the caller id.
            next.awaiting_number = false;
            if let Some(slot) = next.slots.get_mut("callback") {
                slot.confirmed = false;
            }
            next.misses.insert("callback".to_string(), 2);
        }
        for id in &learned {
            outcomes.push(Outcome::Note(format!(
                "{id} = {}",
                next.slots.get(id).map_or("", |s| s.value.as_str())
            )));
        }
        let name = next
            .slots
            .get("name")
            .map(|s| s.value.clone())
            .unwrap_or_default();
        let urgent_slot = next.slots.values().any(|s| s.value == "high")
            && profile.questions.iter().any(|q| {
                q.kind == QuestionKind::Urgency
                    && next.slots.get(&q.id).is_some_and(|s| s.value == "high")
            });

        if reading.call_me {
            next.status = Status::CallRequested;
            outcomes.push(Outcome::Send(render_with_name(
                &profile.templates.call_closing,
                business,
                &name,
            )));
            outcomes.push(Outcome::Lead {
                complete: is_complete(profile, &next),
                urgent: true,
            });
            return (next, outcomes);
        }

        let mut parts: Vec<String> = Vec::new();
        for question in &reading.questions {
            parts.push(answer_question(profile, question));
        }
        if reading.rude && parts.is_empty() {
            parts.push("Sorry we missed you.".to_string());
        }
        let corrected = learned.iter().any(|id| {
            matches!(
                next.slots.get(id).map(|s| s.source),
                Some(Source::Corrected { .. })
            )
        });
        if corrected {
            parts.push("Thanks, got it.".to_string());
        }

        let (asked, question) = next_questions(profile, &next);
        if asked.is_empty() || next.turns >= profile.max_turns {
            let complete = is_complete(profile, &next);
            let template = if complete || asked.is_empty() {
                next.status = Status::Completed;
                &profile.templates.closing
            } else {
                next.status = Status::TimedOut;
                &profile.templates.incomplete_closing
            };
            let closing = render_with_name(template, business, &name);
            send_parts(&mut outcomes, parts, closing);
            outcomes.push(Outcome::Lead {
                complete: complete && next.status == Status::Completed,
                urgent: urgent_slot,
            });
            next.asked = Vec::new();
            return (next, outcomes);
        }
        let repeated = asked == state.asked && learned.is_empty();
        let lead_in = if greeting_only(text) {
            "Hi!"
        } else if reading.foreign {
            "Sorry, we can only read texts in English."
        } else if reading.emoji_only && repeated {
            "No problem!"
        } else if repeated && reading.questions.is_empty() && !reading.rude {
            "Sorry, I didn't catch that."
        } else if !learned.is_empty() && !corrected {
            "Thanks."
        } else {
            ""
        };
        if !lead_in.is_empty() {
            parts.push(lead_in.to_string());
        }
        parts.push(question);
        next.asked = asked;
        let question = parts.pop().unwrap_or_default();
        send_parts(&mut outcomes, parts, question);
        (next, outcomes)
    }

    /// The caller has been silent for `minutes` since the last text: after the profile's
    /// silence limit the lead goes out with what there is.
    pub fn on_silence(
        profile: &DialogueProfile,
        state: &ConversationState,
        minutes: u32,
    ) -> (ConversationState, Vec<Outcome>) {
        let mut next = state.clone();
        if state.status != Status::Open || minutes < profile.silence_minutes {
            return (next, Vec::new());
        }
        next.status = Status::TimedOut;
        let urgent = profile.questions.iter().any(|q| {
            q.kind == QuestionKind::Urgency
                && state.slots.get(&q.id).is_some_and(|s| s.value == "high")
        });
        (
            next,
            vec![
                Outcome::Note(format!(
                    "silent for {minutes} minutes; lead sent with what we have"
                )),
                Outcome::Lead {
                    complete: is_complete(profile, state),
                    urgent,
                },
            ],
        )
    }
}

/// A reply of greetings only: "Hello?", "hi there".
fn greeting_only(text: &str) -> bool {
    let words = slots::words(text);
    !words.is_empty()
        && words.iter().all(|w| {
            matches!(
                w.as_str(),
                "hi" | "hiya"
                    | "hello"
                    | "hey"
                    | "heya"
                    | "morning"
                    | "afternoon"
                    | "evening"
                    | "good"
                    | "there"
            )
        })
}

fn is_filled(state: &ConversationState, id: &str) -> bool {
    match state.slots.get(id) {
        Some(slot) => id != "callback" || slot.confirmed,
        None => false,
    }
}

fn is_complete(profile: &DialogueProfile, state: &ConversationState) -> bool {
    profile
        .questions
        .iter()
        .filter(|q| q.required)
        .all(|q| state.slots.contains_key(&q.id))
}

/// Applies the reading's proposals; returns the ids that changed.
fn apply(
    profile: &DialogueProfile,
    state: &mut ConversationState,
    reading: &Reading,
    turn: u32,
) -> Vec<String> {
    let mut learned = Vec::new();
    for proposal in &reading.proposals {
        if profile.question(&proposal.id).is_none() || learned.contains(&proposal.id) {
            continue;
        }
        let existing = state.slots.get(&proposal.id);
        let asked = state.asked.contains(&proposal.id);
        let source = match existing {
            // A value kept as said gives way to one pinned down.
            Some(slot) if !slot.pinned && proposal.pinned && slot.source != Source::CallerId => {
                if asked {
                    Source::Answered { turn }
                } else {
                    Source::Volunteered { turn }
                }
            }
            Some(slot) if slot.source != Source::CallerId => {
                if !reading.correction || slot.value == proposal.value {
                    continue;
                }
                Source::Corrected { turn }
            }
            _ if asked => Source::Answered { turn },
            _ => Source::Volunteered { turn },
        };
        state.slots.insert(
            proposal.id.clone(),
            Slot {
                value: slots::clean_answer(&proposal.value),
                machine: proposal.machine.clone(),
                source,
                confirmed: true,
                pinned: proposal.pinned,
            },
        );
        state.misses.remove(&proposal.id);
        learned.push(proposal.id.clone());
    }
    learned
}

/// The questions to ask next, and their text joined naturally.
fn next_questions(profile: &DialogueProfile, state: &ConversationState) -> (Vec<String>, String) {
    if state.awaiting_number {
        return (
            vec!["callback".to_string()],
            "What number should we call you on?".to_string(),
        );
    }
    let limit = profile.max_questions_per_message.clamp(1, 3);
    let mut chosen: Vec<&Question> = Vec::new();
    for question in &profile.questions {
        if is_filled(state, &question.id) || state.misses.get(&question.id).is_some_and(|&m| m >= 2)
        {
            continue;
        }
        let alone = question.id == "callback";
        if alone && !chosen.is_empty() {
            break;
        }
        chosen.push(question);
        if alone || chosen.len() >= limit {
            break;
        }
    }
    let number = E164::parse(&state.caller)
        .map(|n| n.national())
        .unwrap_or_else(|_| state.caller.clone());
    let texts: Vec<String> = chosen
        .iter()
        .map(|q| {
            render(
                &q.ask,
                &[("number", &number), ("business", &profile.business)],
            )
        })
        .collect();
    (
        chosen.iter().map(|q| q.id.clone()).collect(),
        join_questions(&texts),
    )
}

/// "Who am I speaking to?" + "What's the postcode?" -> "Who am I speaking to, and what's the
/// postcode?"
pub fn join_questions(texts: &[String]) -> String {
    match texts {
        [] => String::new(),
        [one] => one.clone(),
        _ => {
            let mut out = String::new();
            for (index, text) in texts.iter().enumerate() {
                let body = text.trim().trim_end_matches('?');
                let body = if index > 0 {
                    body.strip_prefix("And ").unwrap_or(body)
                } else {
                    body
                };
                let body = if index == 0 {
                    body.to_string()
                } else {
                    lower_first(body)
                };
                if index == 0 {
                    out.push_str(&body);
                } else if index + 1 == texts.len() {
                    out.push_str(", and ");
                    out.push_str(&body);
                } else {
                    out.push_str(", ");
                    out.push_str(&body);
                }
            }
            out.push('?');
            out
        }
    }
}

fn lower_first(text: &str) -> String {
    let mut chars = text.chars();
    let Some(first) = chars.next() else {
        return String::new();
    };
    let second_upper = chars.clone().next().is_some_and(char::is_uppercase);
    if second_upper || text.starts_with("I ") {
        return text.to_string();
    }
    first.to_lowercase().chain(chars).collect()
}

/// The business's answer to a question back, or a polite deferral.
fn answer_question(profile: &DialogueProfile, question: &str) -> String {
    let words = slots::words(question);
    let lower = question.to_lowercase();
    if [
        "who is this",
        "who are you",
        "what company",
        "who's this",
        "whos this",
        "who is that",
    ]
    .iter()
    .any(|p| lower.contains(p))
    {
        return format!(
            "This is {}, texting back about a call we missed.",
            profile.business
        );
    }
    for canned in &profile.canned {
        let hit = canned.keywords.iter().any(|k| {
            let k = k.to_lowercase();
            if k.contains(' ') {
                slots::has_phrase(&words, &k) || lower.contains(&k)
            } else {
                words.iter().any(|w| w == &k || w.starts_with(&k))
            }
        });
        if hit {
            return gsm7::to_plain(&canned.answer);
        }
    }
    render(
        &profile.templates.deferral,
        &[("business", &profile.business)],
    )
}

#[cfg(test)]
pub(crate) mod tests {
    use super::*;
    use chrono::TimeZone;

    pub(crate) use crate::core::profile::tests::plumber;

    fn at() -> DateTime<Utc> {
        Utc.with_ymd_and_hms(2025, 6, 10, 13, 5, 0).unwrap()
    }

    fn caller() -> E164 {
        E164::parse("07700 900123").unwrap()
    }

    fn sent(outcomes: &[Outcome]) -> Vec<&str> {
        outcomes
            .iter()
            .filter_map(|o| match o {
                Outcome::Send(t) => Some(t.as_str()),
                _ => None,
            })
            .collect()
    }

    #[test]
    fn opens_asks_confirms_and_closes() {
        let profile = plumber();
        let (state, out) = Conversation::open(&profile, &caller(), &CallTime(at()));
        assert_eq!(
            sent(&out),
            vec![
                "Hi, it's Acme Plumbing. Sorry we missed your call at 14:05. Who am I speaking to? (Reply STOP to opt out)"
            ]
        );
        let (state, out) = Conversation::on_reply(
            &profile,
            &state,
            "Dave here, boiler leaking in SW11 4AB, pretty urgent",
            at(),
        );
        assert_eq!(
            sent(&out),
            vec!["Thanks. Is 07700 900123 the best number to call you on?"]
        );
        let (state, out) = Conversation::on_reply(&profile, &state, "yes", at());
        assert_eq!(state.status, Status::Completed);
        assert_eq!(
            out.last(),
            Some(&Outcome::Lead {
                complete: true,
                urgent: true
            })
        );
        assert!(sent(&out)[0].starts_with("Thanks Dave, that's everything"));
        // The state survives a restart as JSON.
        let json = serde_json::to_string(&state).unwrap();
        let back: ConversationState = serde_json::from_str(&json).unwrap();
        assert_eq!(back, state);
    }

    #[test]
    fn keywords_in_a_conversation() {
        let profile = plumber();
        let (state, _) = Conversation::open(&profile, &caller(), &CallTime(at()));
        let (next, out) = Conversation::on_reply(&profile, &state, "STOP", at());
        assert_eq!(next.status, Status::OptedOut);
        assert_eq!(out.last(), Some(&Outcome::OptOut));
        let (_, out) = Conversation::on_reply(&profile, &state, "HELP", at());
        assert!(sent(&out)[0].contains("Acme Plumbing") && sent(&out)[0].contains("020 7946 0018"));
    }

    #[test]
    fn question_back_gets_the_canned_answer_or_a_deferral() {
        let profile = plumber();
        let (state, _) = Conversation::open(&profile, &caller(), &CallTime(at()));
        let (_, out) = Conversation::on_reply(&profile, &state, "how much do you charge?", at());
        assert_eq!(sent(&out), vec!["Call-out is £65. Who am I speaking to?"]);
        let (_, out) = Conversation::on_reply(&profile, &state, "are you open saturday?", at());
        assert!(sent(&out)[0].starts_with("Good question - Acme Plumbing will answer"));
    }

    #[test]
    fn call_me_sends_an_urgent_lead_at_once() {
        let profile = plumber();
        let (state, _) = Conversation::open(&profile, &caller(), &CallTime(at()));
        let (state, out) = Conversation::on_reply(&profile, &state, "just ring me asap", at());
        assert_eq!(state.status, Status::CallRequested);
        assert_eq!(
            out.last(),
            Some(&Outcome::Lead {
                complete: false,
                urgent: true
            })
        );
    }

    #[test]
    fn silence_and_turns_close_incomplete() {
        let profile = plumber();
        let (state, _) = Conversation::open(&profile, &caller(), &CallTime(at()));
        let (same, out) = Conversation::on_silence(&profile, &state, 30);
        assert_eq!(same.status, Status::Open);
        assert!(out.is_empty());
        let (closed, out) = Conversation::on_silence(&profile, &state, 180);
        assert_eq!(closed.status, Status::TimedOut);
        assert!(out.contains(&Outcome::Lead {
            complete: false,
            urgent: false
        }));
        let mut state = state;
        for _ in 0..profile.max_turns {
            state = Conversation::on_reply(&profile, &state, "hmm", at()).0;
        }
        assert_ne!(state.status, Status::Open);
    }

    #[test]
    fn never_breaks_on_huge_or_odd_messages() {
        let profile = plumber();
        let (state, _) = Conversation::open(&profile, &caller(), &CallTime(at()));
        for text in [
            "x".repeat(2000),
            "Boiler ".repeat(300),
            "👍".repeat(700),
            String::new(),
            "🙂 ok".to_string(),
        ] {
            let (next, out) = Conversation::on_reply(&profile, &state, &text, at());
            assert!(
                next.slots
                    .values()
                    .all(|s| s.value.chars().count() <= slots::MAX_ANSWER)
            );
            assert!(!out.is_empty());
        }
    }

    #[test]
    fn a_name_outside_gsm7_keeps_the_closing_to_one_sms() {
        let mut profile = plumber();
        profile.business = "Acme Plumbing, Heating & Bathrooms of Greater Manchester".to_string();
        for name in [
            "Siobhán",
            "Łukasz Wójcik",
            "Gwenllïan",
            "Zoë",
            "Eóin Ó Briain",
        ] {
            let (state, _) = Conversation::open(&profile, &caller(), &CallTime(at()));
            let (mut state, _) = Conversation::on_reply(
                &profile,
                &state,
                "boiler leaking in SW11 4AB, urgent",
                at(),
            );
            state.slots.insert(
                "name".to_string(),
                Slot {
                    value: name.to_string(),
                    machine: None,
                    source: Source::Answered { turn: 1 },
                    confirmed: true,
                    pinned: true,
                },
            );
            let (state, out) = Conversation::on_reply(&profile, &state, "yes", at());
            assert_eq!(
                state.slots["name"].value, name,
                "the stored name keeps its accents"
            );
            let texts = sent(&out);
            assert_eq!(texts.len(), 1, "{texts:?}");
            assert_eq!(
                crate::codec::pdu::segment(texts[0]).parts.len(),
                1,
                "{name}: {}",
                texts[0]
            );
            assert!(gsm7::is_gsm7(texts[0]), "{}", texts[0]);
        }
    }

    #[test]
    fn a_conversation_of_the_retired_engine_carries_on_here() {
        let profile = plumber();
        let answers = vec![
            ("name".to_string(), "Sarah Jones".to_string()),
            ("reason".to_string(), "Boiler leaking".to_string()),
        ];
        let state = ConversationState::from_in_order(&profile, &caller(), &answers, 2, at());
        assert_eq!(state.asked, vec!["postcode".to_string()]);
        assert_eq!(state.slots["name"].value, "Sarah Jones");
        assert!(!state.slots["callback"].confirmed);
        // The reply answers the question the old engine asked; the engine goes on from there.
        let (state, out) = Conversation::on_reply(&profile, &state, "sw11 4ab", at());
        assert_eq!(state.slots["postcode"].value, "SW11 4AB");
        assert_eq!(sent(&out), vec!["Thanks. How urgent is it?"]);
        // A callback the old engine kept as words.
        let answers = vec![("callback".to_string(), "no ring 020 7946 0321".to_string())];
        let state = ConversationState::from_in_order(&profile, &caller(), &answers, 5, at());
        assert_eq!(state.slots["callback"].value, "+442079460321");
        assert!(state.asked.is_empty());
    }

    #[test]
    fn bad_input_gets_a_polite_reply_and_fills_nothing() {
        let profile = plumber();
        let (state, _) = Conversation::open(&profile, &caller(), &CallTime(at()));
        let rant = "honestly the thing is ".repeat(100);
        let emoji = "😀".repeat(50);
        for text in [
            rant.as_str(),
            emoji.as_str(),
            // Welsh and Polish.
            "Helo, dw i wedi cloi fy hun allan o'r tŷ, allwch chi helpu os gwelwch yn dda",
            "Dzień dobry, potrzebuję hydraulika, mam wyciek w łazience",
            // HTML.
            "<p>Hello</p><br><script>alert(1)</script>",
            // Only a number.
            "12",
        ] {
            let (next, out) = Conversation::on_reply(&profile, &state, text, at());
            let filled: Vec<&String> = next
                .slots
                .iter()
                .filter(|(_, s)| s.source != Source::CallerId)
                .map(|(id, _)| id)
                .collect();
            assert!(filled.is_empty(), "{text:.40}: filled {filled:?}");
            let texts = sent(&out);
            assert_eq!(texts.len(), 1, "{text:.40}: {texts:?}");
            assert!(
                texts[0].ends_with("Who am I speaking to?"),
                "{text:.40}: {texts:?}"
            );
            assert_eq!(crate::codec::pdu::segment(texts[0]).parts.len(), 1);
        }
        // An auto-reply or a link: nothing filled, nothing sent (an answer would be answered).
        for text in [
            "I'm driving with Do Not Disturb While Driving turned on. I'll see your message when I get where I'm going.",
            "Royal Mail: your parcel could not be delivered due to unpaid postage. Pay at https://example.com/x",
        ] {
            let (next, out) = Conversation::on_reply(&profile, &state, text, at());
            assert_eq!(next.slots, state.slots, "{text:.40}");
            assert!(sent(&out).is_empty(), "{text:.40}: {out:?}");
            assert_eq!(next.turns, state.turns, "no turn used");
        }
        // The same text three times: read once, then "Sorry, I didn't catch that" and no value
        // repeated into another question.
        let mut state = state;
        let mut replies = Vec::new();
        for _ in 0..3 {
            let (next, out) = Conversation::on_reply(&profile, &state, "Karen", at());
            state = next;
            replies.push(sent(&out).join(" "));
        }
        assert_eq!(state.slots["name"].value, "Karen");
        assert!(!state.slots.contains_key("reason"), "{:?}", state.slots);
        assert!(replies[1].contains("What's the problem?"), "{replies:?}");
    }

    #[test]
    fn joins_questions_naturally() {
        let texts = vec![
            "Who am I speaking to?".to_string(),
            "What's the postcode?".to_string(),
        ];
        assert_eq!(
            join_questions(&texts),
            "Who am I speaking to, and what's the postcode?"
        );
    }
}
