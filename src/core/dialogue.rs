//! The conversation with a caller, as a pure state machine: which text to send first, what a reply
//! answered, what to ask next, and when the business has a lead.
//!
//! ```text
//!            open()                  reply answers the last question
//!   (call) ─────────> Open{asked: 0} ───────────────────────────────> Completed ─> lead
//!                       │   ^  reply answers question n: ask n+1
//!                       │   └──┘
//!                       └── STOP, QUIT, ... ──> OptedOut (one confirmation, then silence)
//! ```
//!
//! This engine asks the profile's questions in order and takes each reply as the answer to the
//! question asked. It never touches the clock: the caller's local time comes in as text.

use std::collections::HashMap;

use crate::config::Profile;

/// Where a conversation stands.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Status {
    Open,
    Completed,
    OptedOut,
}

/// A conversation's state: what is kept in the store between messages.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct State {
    pub status: Status,
    /// The question the caller's next reply answers (an index into the profile's questions).
    pub asked: usize,
    /// (question id, answer) in the order given.
    pub answers: Vec<(String, String)>,
}

/// What the shell must do after a step.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Outcome {
    /// Text the caller.
    Send(String),
    /// The business has a lead.
    Lead { complete: bool },
    /// The caller asked not to be texted again.
    OptOut,
}

/// When the call was missed, as the caller would say it (UK time).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct CallTime {
    /// "14:05"
    pub time: String,
    /// "Tuesday"
    pub day: String,
}

/// A keyword reply that is not an answer.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Keyword {
    /// STOP, STOPALL, UNSUBSCRIBE, CANCEL, END, QUIT: the caller opts out.
    Stop,
    /// START, UNSTOP: the caller opts back in.
    Start,
}

/// Recognises a keyword reply, in any case and with punctuation around it ("Stop.", " STOP!!").
pub fn keyword(text: &str) -> Option<Keyword> {
    let word: String = text
        .trim()
        .trim_matches(|c: char| !c.is_alphanumeric())
        .to_uppercase();
    match word.as_str() {
        "STOP" | "STOPALL" | "STOP ALL" | "UNSUBSCRIBE" | "CANCEL" | "END" | "QUIT" => {
            Some(Keyword::Stop)
        }
        "START" | "UNSTOP" => Some(Keyword::Start),
        _ => None,
    }
}

/// The longest answer kept, in characters: a caller's essay is cut here, with an ellipsis.
pub const MAX_ANSWER: usize = 500;

/// Starts a conversation: the first text (and the first question, when the template does not
/// carry it).
pub fn open(profile: &Profile, at: &CallTime) -> (State, Vec<Outcome>) {
    let first_question = profile
        .questions
        .first()
        .map(|q| q.ask.clone())
        .unwrap_or_default();
    let values = HashMap::from([
        ("business", profile.name.clone()),
        ("time", at.time.clone()),
        ("day", at.day.clone()),
        ("question", first_question.clone()),
    ]);
    let mut texts = vec![Outcome::Send(profile.first_message.render(&values))];
    if !profile.first_message.uses("question") && !first_question.is_empty() {
        texts.push(Outcome::Send(first_question));
    }
    let state = State {
        status: Status::Open,
        asked: 0,
        answers: Vec::new(),
    };
    (state, texts)
}

/// Takes the caller's reply to an open conversation.
pub fn on_reply(profile: &Profile, state: &State, text: &str) -> (State, Vec<Outcome>) {
    let mut next = state.clone();
    if state.status != Status::Open {
        // A reply to a finished conversation is kept in the transcript by the shell; nothing to say.
        return (next, Vec::new());
    }
    if keyword(text) == Some(Keyword::Stop) {
        next.status = Status::OptedOut;
        return (
            next,
            vec![
                Outcome::Send(business_message(profile, &profile.opt_out_message)),
                Outcome::OptOut,
            ],
        );
    }
    let Some(question) = profile.questions.get(state.asked) else {
        next.status = Status::Completed;
        return (next, vec![Outcome::Lead { complete: true }]);
    };
    next.answers
        .push((question.id.as_str().to_string(), clean_answer(text)));
    next.asked += 1;
    match profile.questions.get(next.asked) {
        Some(question) => (next, vec![Outcome::Send(question.ask.clone())]),
        None => {
            next.status = Status::Completed;
            let mut values: HashMap<&str, String> = next
                .answers
                .iter()
                .map(|(id, answer)| (id.as_str(), answer.clone()))
                .collect();
            values.insert("business", profile.name.clone());
            let closing = profile.closing_message.render(&values);
            (
                next,
                vec![Outcome::Send(closing), Outcome::Lead { complete: true }],
            )
        }
    }
}

/// The text for a message that may only use the business name.
pub fn business_message(profile: &Profile, template: &crate::core::template::Template) -> String {
    template.render(&HashMap::from([("business", profile.name.clone())]))
}

/// An answer as kept: spaces folded, control characters dropped, cut at [`MAX_ANSWER`].
pub fn clean_answer(text: &str) -> String {
    let folded: String = text
        .split_whitespace()
        .collect::<Vec<_>>()
        .join(" ")
        .chars()
        .filter(|c| !c.is_control())
        .collect();
    if folded.chars().count() > MAX_ANSWER {
        let cut: String = folded.chars().take(MAX_ANSWER - 1).collect();
        format!("{cut}…")
    } else {
        folded
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::path::Path;

    fn profile(extra: &str) -> Profile {
        let text = format!(
            r#"
[[modem]]
id = "main"
port = "/dev/null"

[[profile]]
id = "acme"
name = "Acme Plumbing"
{extra}
[[profile.question]]
id = "name"
ask = "Who am I speaking to?"
[[profile.question]]
id = "reason"
ask = "What can we help with?"
"#
        );
        crate::config::parse(&text, Path::new("t"))
            .unwrap()
            .config
            .profiles
            .remove(0)
    }

    fn at() -> CallTime {
        CallTime {
            time: "14:05".to_string(),
            day: "Tuesday".to_string(),
        }
    }

    #[test]
    fn asks_in_order_then_makes_a_lead() {
        let profile = profile("");
        let (state, out) = open(&profile, &at());
        assert_eq!(
            out,
            vec![Outcome::Send(
                "Hi, it's Acme Plumbing. Sorry we missed your call at 14:05. Who am I speaking to? (Reply STOP to opt out)"
                    .to_string()
            )]
        );
        let (state, out) = on_reply(&profile, &state, "  Dave\n Smith ");
        assert_eq!(
            out,
            vec![Outcome::Send("What can we help with?".to_string())]
        );
        assert_eq!(
            state.answers,
            vec![("name".to_string(), "Dave Smith".to_string())]
        );
        let (state, out) = on_reply(&profile, &state, "Boiler leaking");
        assert_eq!(state.status, Status::Completed);
        assert_eq!(out.len(), 2);
        assert_eq!(out[1], Outcome::Lead { complete: true });
        // A late reply changes nothing.
        let (late, out) = on_reply(&profile, &state, "thanks!");
        assert_eq!(late, state);
        assert!(out.is_empty());
    }

    #[test]
    fn a_template_without_the_question_sends_it_separately() {
        let profile = profile("first_message = \"Sorry we missed you - {business}\"");
        let (_, out) = open(&profile, &at());
        assert_eq!(
            out,
            vec![
                Outcome::Send("Sorry we missed you - Acme Plumbing".to_string()),
                Outcome::Send("Who am I speaking to?".to_string())
            ]
        );
    }

    #[test]
    fn stop_in_any_form_opts_out() {
        let profile = profile("");
        let (state, _) = open(&profile, &at());
        for text in ["STOP", "stop", " Stop. ", "QUIT!", "unsubscribe", "Cancel"] {
            let (next, out) = on_reply(&profile, &state, text);
            assert_eq!(next.status, Status::OptedOut, "{text}");
            assert_eq!(out.last(), Some(&Outcome::OptOut));
        }
        assert_eq!(keyword("please stop texting me"), None);
        assert_eq!(keyword("start"), Some(Keyword::Start));
    }

    #[test]
    fn long_and_odd_answers_are_kept_safely() {
        let long = "a".repeat(2000);
        assert_eq!(clean_answer(&long).chars().count(), MAX_ANSWER);
        assert_eq!(clean_answer("👍\u{7}"), "👍");
    }
}
