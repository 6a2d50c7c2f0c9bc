//! The owner's commands by SMS: what a text from one of a business's staff numbers
//! (`profile.staff_numbers`) asks for ([`parse`]), and what it does given what the store knows
//! ([`decide`]). Texts from any other number are callers, whatever they say; the caller of this
//! module has already checked the sender.
//!
//! The syntax is for a phone keypad: a letter or a word, the lead's number, then the words.
//! Case, spaces after the letter, a `#` before the number and a `:` after it do not matter.
//!
//! ```text
//! R 12 I can be there at 3pm    reply to lead 12's caller from the business's SIM
//! I can be there at 3pm         (no command) reply to the lead last texted to this phone
//! C 12 / W 12 / L 12            mark lead 12 called back / won / lost (no number: the last lead)
//! P 12 / P 12 3                 pause the assistant in lead 12's conversation (for 3 hours)
//! PA 2                          pause the assistant for the whole business for 2 hours
//! GO 12 / GO                    resume lead 12's conversation / the whole business
//! HELP or ?                     this list
//! ```

use crate::core::keywords;
use crate::domain::{E164, LeadState};

/// How long a plain text (no command) after a lead's SMS to this phone goes to that lead's
/// caller: long enough to read the lead and type an answer, short enough that an unrelated text
/// hours later is not sent to a stranger.
pub const PLAIN_REPLY_WINDOW_MS: i64 = 15 * 60 * 1000;

/// `PA` with no hours pauses the business for this long.
pub const DEFAULT_PAUSE_HOURS: u32 = 2;

/// The longest pause asked for by SMS: a week.
pub const MAX_PAUSE_HOURS: u32 = 7 * 24;

/// What a staff text asks for. `lead: None` means "the lead last texted to this phone".
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Command {
    /// Send `text` to the lead's caller (`R 12 text`, or any text that is not a command).
    Reply {
        lead: Option<i64>,
        text: String,
    },
    /// Set the lead's state (`C`, `W`, `L`, `NEW`).
    Mark {
        lead: Option<i64>,
        state: LeadState,
    },
    /// Pause the assistant in one conversation, for `hours` or until resumed.
    Pause {
        lead: Option<i64>,
        hours: Option<u32>,
    },
    /// Pause the assistant for the whole business (new missed calls are not texted, open
    /// conversations are not answered) for `hours`.
    PauseAll {
        hours: u32,
    },
    /// Let the assistant answer in this conversation again.
    Resume {
        lead: Option<i64>,
    },
    /// Let the assistant answer for the whole business again.
    ResumeAll,
    Help,
    /// Nothing to do: an empty text.
    Empty,
}

/// Reads a staff text. Never fails: what is not a command is a reply to the caller.
pub fn parse(text: &str) -> Command {
    let trimmed = text.trim();
    if trimmed.is_empty() {
        return Command::Empty;
    }
    let (word, rest) = split_command(trimmed);
    let upper = word.to_ascii_uppercase();
    // A plain text that reads as STOP, START or HELP ("stop", "please stop texting me") is
    // never passed on to a caller: the staff member gets the list of commands instead.
    let plain = || {
        if keywords::keyword(trimmed).is_some() {
            Command::Help
        } else {
            Command::Reply {
                lead: None,
                text: trimmed.to_string(),
            }
        }
    };
    match upper.as_str() {
        "HELP" | "?" | "H" | "COMMANDS" => {
            if rest.is_empty() {
                Command::Help
            } else {
                plain()
            }
        }
        "R" | "REPLY" | "RE" => {
            let (lead, words) = lead_number(rest);
            let words = words.trim();
            if words.is_empty() {
                // "R 12" alone says nothing to send; "R" alone is a plain text.
                return match lead {
                    Some(_) => Command::Help,
                    None => plain(),
                };
            }
            Command::Reply {
                lead,
                text: words.to_string(),
            }
        }
        "C" | "CB" | "CALLED" | "CALLEDBACK" | "CALLED-BACK" | "W" | "WON" | "L" | "LOST"
        | "NEW" => {
            let state = match upper.as_str() {
                "W" | "WON" => LeadState::Won,
                "L" | "LOST" => LeadState::Lost,
                "NEW" => LeadState::New,
                _ => LeadState::CalledBack,
            };
            // "called back 12" as two words.
            let rest = if upper == "CALLED" {
                strip_word(rest, "BACK").unwrap_or(rest)
            } else {
                rest
            };
            match only_numbers(rest) {
                Some(numbers) if numbers.len() <= 1 => Command::Mark {
                    lead: numbers.first().copied().map(i64::from),
                    state,
                },
                // "Lost my keys", "C u at 3": words, so a reply.
                _ => plain(),
            }
        }
        "P" | "PAUSE" | "PA" | "PAUSEALL" => {
            let (all, rest) = match upper.as_str() {
                "PA" | "PAUSEALL" => (true, rest),
                _ => match strip_word(rest, "ALL") {
                    Some(rest) => (true, rest),
                    None => (false, rest),
                },
            };
            let rest = rest
                .trim_end()
                .trim_end_matches(|c: char| c.eq_ignore_ascii_case(&'h'));
            let rest = strip_suffix_word(rest, &["HOURS", "HOUR", "HRS", "HR"]);
            match only_numbers(rest) {
                Some(numbers) if all && numbers.len() <= 1 => Command::PauseAll {
                    hours: numbers
                        .first()
                        .copied()
                        .unwrap_or(DEFAULT_PAUSE_HOURS)
                        .min(MAX_PAUSE_HOURS),
                },
                Some(numbers) if !all && numbers.len() <= 2 => Command::Pause {
                    lead: numbers.first().copied().map(i64::from),
                    hours: numbers.get(1).copied().map(|h| h.min(MAX_PAUSE_HOURS)),
                },
                _ => plain(),
            }
        }
        "GO" | "RESUME" | "ON" => {
            let (all, rest) = match strip_word(rest, "ALL") {
                Some(rest) => (true, rest),
                None => (false, rest),
            };
            match only_numbers(rest) {
                Some(numbers) if numbers.is_empty() => {
                    let _ = all;
                    Command::ResumeAll
                }
                Some(numbers) if numbers.len() == 1 && !all => Command::Resume {
                    lead: Some(i64::from(numbers[0])),
                },
                _ => plain(),
            }
        }
        _ => plain(),
    }
}

/// The first word and the rest. A letter glued to a number ("R12 ok", "W12") splits there.
fn split_command(text: &str) -> (&str, &str) {
    let end = text
        .find(|c: char| c.is_whitespace() || c == ':' || c == '#' || c == ',')
        .unwrap_or(text.len());
    let first = &text[..end];
    // Letters then digits: "R12", "PA3", "GO12".
    if let Some(digit) = first.find(|c: char| c.is_ascii_digit()) {
        let (letters, _) = first.split_at(digit);
        if !letters.is_empty() && letters.chars().all(|c| c.is_ascii_alphabetic()) {
            return (letters, text[digit..].trim_start());
        }
    }
    let rest = text[end..].trim_start_matches([':', ',']).trim_start();
    (first, rest)
}

/// A lead number at the start of `rest` ("12 text", "#12: text", "12."), and what follows.
fn lead_number(rest: &str) -> (Option<i64>, &str) {
    let rest = rest.trim_start().trim_start_matches('#');
    let end = rest
        .find(|c: char| !c.is_ascii_digit())
        .unwrap_or(rest.len());
    if end == 0 || end > 9 {
        return (None, rest);
    }
    let after = &rest[end..];
    // A number glued to letters ("3pm works") is words, not a lead.
    match after.chars().next() {
        None => {}
        Some(c) if c.is_whitespace() || matches!(c, ':' | '.' | ',' | '-') => {}
        Some(_) => return (None, rest),
    }
    let lead = rest[..end].parse().ok();
    (
        lead,
        after.trim_start_matches([':', '.', ',', '-']).trim_start(),
    )
}

/// The rest without a leading `word` (any case).
fn strip_word<'a>(rest: &'a str, word: &str) -> Option<&'a str> {
    let trimmed = rest.trim_start();
    let head = trimmed.get(..word.len())?;
    let tail = &trimmed[word.len()..];
    if head.eq_ignore_ascii_case(word) && (tail.is_empty() || tail.starts_with(char::is_whitespace))
    {
        Some(tail.trim_start())
    } else {
        None
    }
}

fn strip_suffix_word<'a>(rest: &'a str, words: &[&str]) -> &'a str {
    let trimmed = rest.trim_end();
    for word in words {
        if trimmed.len() >= word.len() {
            let (head, tail) = trimmed.split_at(trimmed.len() - word.len());
            if tail.eq_ignore_ascii_case(word) {
                return head.trim_end();
            }
        }
    }
    trimmed
}

/// Every whitespace-separated piece as a number (a `#` before each allowed), or `None` when a
/// piece is a word.
fn only_numbers(rest: &str) -> Option<Vec<u32>> {
    rest.split(|c: char| c.is_whitespace() || c == ',')
        .filter(|piece| !piece.is_empty())
        .map(|piece| piece.trim_start_matches('#').parse::<u32>().ok())
        .collect()
}

/// The commands, as HELP sends them: at most two SMS parts, GSM-7.
pub fn help_text(business: &str) -> String {
    let text = format!(
        "{business} commands: R 12 msg = reply to lead 12. Any other text = reply to the last lead. \
         C 12/W 12/L 12 = called back/won/lost. P 12 = pause assistant. PA 2 = pause all 2h. GO 12/GO = resume"
    );
    text
}

/// A lead as the decision needs it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct LeadFacts {
    pub id: i64,
    /// The business it belongs to (profile id).
    pub profile: String,
    pub caller: E164,
    pub caller_name: Option<String>,
    /// The caller replied STOP and has not said START since.
    pub opted_out: bool,
    pub state: LeadState,
}

/// What the store knows when a staff text arrives.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Facts {
    /// The businesses (profile ids) this number is staff of, first the one whose SIM it texted.
    pub profiles: Vec<String>,
    /// The lead the command named, when it named one: `None` when there is no such lead.
    pub named: Option<LeadFacts>,
    /// The lead last texted to this phone within [`PLAIN_REPLY_WINDOW_MS`], for commands with no
    /// number.
    pub recent: Option<LeadFacts>,
}

/// What a staff text does. Every variant but [`Decision::Refuse`] and [`Decision::Help`] changes
/// something; every one answers the staff member with `ack`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Decision {
    SendToCaller {
        lead: LeadFacts,
        text: String,
        ack: String,
    },
    SetState {
        lead: LeadFacts,
        state: LeadState,
        ack: String,
    },
    PauseConversation {
        lead: LeadFacts,
        hours: Option<u32>,
        ack: String,
    },
    ResumeConversation {
        lead: LeadFacts,
        ack: String,
    },
    PauseProfile {
        profile: String,
        hours: u32,
        ack: String,
    },
    ResumeProfile {
        profile: String,
        ack: String,
    },
    /// Nothing changes; tell the staff member why.
    Refuse(String),
    Help(String),
    /// Nothing to do and nothing to say (an empty text).
    Nothing,
}

/// Which lead a command is about: the named one (which must be one of this staff member's
/// businesses'), or the one last texted to this phone.
fn which_lead(lead: Option<i64>, facts: &Facts, what: &str) -> Result<LeadFacts, String> {
    match lead {
        Some(id) => match &facts.named {
            Some(found) if facts.profiles.contains(&found.profile) => Ok(found.clone()),
            // Another business's lead is answered as if it did not exist: a staff number of
            // one business learns nothing of another's.
            _ => Err(format!(
                "No lead {id} for your business. Nothing was {what}. Text HELP for the commands."
            )),
        },
        None => match &facts.recent {
            Some(found) if facts.profiles.contains(&found.profile) => Ok(found.clone()),
            _ => Err(format!(
                "Which lead? No lead was texted to this phone in the last {} minutes. Start with the lead number, e.g. R 12 On my way. Nothing was {what}.",
                PLAIN_REPLY_WINDOW_MS / 60_000
            )),
        },
    }
}

fn who(lead: &LeadFacts) -> String {
    match &lead.caller_name {
        Some(name) => format!("{name} ({})", lead.caller.national()),
        None => lead.caller.national(),
    }
}

/// What a staff command does, given the facts.
pub fn decide(command: &Command, facts: &Facts, business: &str) -> Decision {
    let Some(own) = facts.profiles.first().cloned() else {
        return Decision::Refuse("This number is not a staff number of any business.".into());
    };
    match command {
        Command::Empty => Decision::Nothing,
        Command::Help => Decision::Help(help_text(business)),
        Command::Reply { lead, text } => match which_lead(*lead, facts, "sent") {
            Err(why) => Decision::Refuse(why),
            Ok(lead) if lead.opted_out => Decision::Refuse(format!(
                "Not sent: {} replied STOP to texts from this number, so we cannot text them. Call them instead.",
                who(&lead)
            )),
            Ok(lead) => Decision::SendToCaller {
                ack: format!(
                    "Sent to {} (lead {}). The assistant stays quiet; their replies come to you.",
                    who(&lead),
                    lead.id
                ),
                text: text.clone(),
                lead,
            },
        },
        Command::Mark { lead, state } => match which_lead(*lead, facts, "changed") {
            Err(why) => Decision::Refuse(why),
            Ok(lead) if lead.state == *state => Decision::Refuse(format!(
                "Lead {} ({}) is {} already.",
                lead.id,
                who(&lead),
                state.words()
            )),
            Ok(lead) => Decision::SetState {
                ack: format!(
                    "Lead {} ({}) marked {}.",
                    lead.id,
                    who(&lead),
                    state.words()
                ),
                state: *state,
                lead,
            },
        },
        Command::Pause { lead, hours } => match which_lead(*lead, facts, "paused") {
            Err(why) => Decision::Refuse(why),
            Ok(lead) => Decision::PauseConversation {
                ack: format!(
                    "Assistant paused for lead {} ({}){}. GO {} to resume.",
                    lead.id,
                    who(&lead),
                    match hours {
                        Some(h) => format!(" for {h}h"),
                        None => String::new(),
                    },
                    lead.id
                ),
                hours: *hours,
                lead,
            },
        },
        Command::Resume { lead } => match which_lead(*lead, facts, "resumed") {
            Err(why) => Decision::Refuse(why),
            Ok(lead) => Decision::ResumeConversation {
                ack: format!("Assistant back on for lead {} ({}).", lead.id, who(&lead)),
                lead,
            },
        },
        Command::PauseAll { hours } => Decision::PauseProfile {
            ack: format!(
                "Assistant paused for {business} for {hours}h: missed calls are not texted. GO to resume."
            ),
            profile: own,
            hours: *hours,
        },
        Command::ResumeAll => Decision::ResumeProfile {
            ack: format!("Assistant back on for {business}."),
            profile: own,
        },
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn reply(lead: Option<i64>, text: &str) -> Command {
        Command::Reply {
            lead,
            text: text.to_string(),
        }
    }

    #[test]
    fn replies_in_many_phrasings() {
        let cases = [
            (
                "R 12 I can be there at 3pm",
                reply(Some(12), "I can be there at 3pm"),
            ),
            (
                "r 12 I can be there at 3pm",
                reply(Some(12), "I can be there at 3pm"),
            ),
            (
                "R12 I can be there at 3pm",
                reply(Some(12), "I can be there at 3pm"),
            ),
            ("R #12: on my way", reply(Some(12), "on my way")),
            ("reply 12 on my way", reply(Some(12), "on my way")),
            ("Reply 12. On my way", reply(Some(12), "On my way")),
            ("  R   7   ok  ", reply(Some(7), "ok")),
            ("R: 7 ok", reply(Some(7), "ok")),
            // No number: the lead last texted to this phone.
            ("R on my way", reply(None, "on my way")),
            ("R 3pm works", reply(None, "3pm works")),
            // Not a command at all: a plain reply.
            (
                "I can be there at 3pm",
                reply(None, "I can be there at 3pm"),
            ),
            (
                "Running late, 20 mins",
                reply(None, "Running late, 20 mins"),
            ),
            ("Won't be long", reply(None, "Won't be long")),
            ("Lost my keys, sorry", reply(None, "Lost my keys, sorry")),
            ("C u at 3", reply(None, "C u at 3")),
            (
                "Go ahead and send photos",
                reply(None, "Go ahead and send photos"),
            ),
            ("Help is on the way", reply(None, "Help is on the way")),
            ("L8r", reply(None, "L8r")),
            ("Ring me", reply(None, "Ring me")),
        ];
        for (text, expected) in cases {
            assert_eq!(parse(text), expected, "{text:?}");
        }
    }

    #[test]
    fn states_in_many_phrasings() {
        let mark = |lead: Option<i64>, state| Command::Mark { lead, state };
        let cases = [
            ("C 12", mark(Some(12), LeadState::CalledBack)),
            ("c12", mark(Some(12), LeadState::CalledBack)),
            ("CB 12", mark(Some(12), LeadState::CalledBack)),
            ("called back 12", mark(Some(12), LeadState::CalledBack)),
            ("Called 12", mark(Some(12), LeadState::CalledBack)),
            ("C", mark(None, LeadState::CalledBack)),
            ("W 12", mark(Some(12), LeadState::Won)),
            ("won #12", mark(Some(12), LeadState::Won)),
            ("W", mark(None, LeadState::Won)),
            ("L 3", mark(Some(3), LeadState::Lost)),
            ("lost 3", mark(Some(3), LeadState::Lost)),
            ("NEW 3", mark(Some(3), LeadState::New)),
        ];
        for (text, expected) in cases {
            assert_eq!(parse(text), expected, "{text:?}");
        }
        // Two numbers is not a state command.
        assert_eq!(parse("W 12 13"), reply(None, "W 12 13"));
    }

    #[test]
    fn pauses_and_resumes() {
        let cases = [
            (
                "P 12",
                Command::Pause {
                    lead: Some(12),
                    hours: None,
                },
            ),
            (
                "p12",
                Command::Pause {
                    lead: Some(12),
                    hours: None,
                },
            ),
            (
                "P 12 3",
                Command::Pause {
                    lead: Some(12),
                    hours: Some(3),
                },
            ),
            (
                "pause 12 3h",
                Command::Pause {
                    lead: Some(12),
                    hours: Some(3),
                },
            ),
            (
                "P",
                Command::Pause {
                    lead: None,
                    hours: None,
                },
            ),
            ("PA 2", Command::PauseAll { hours: 2 }),
            ("pa2", Command::PauseAll { hours: 2 }),
            (
                "PA",
                Command::PauseAll {
                    hours: DEFAULT_PAUSE_HOURS,
                },
            ),
            ("pause all 4 hours", Command::PauseAll { hours: 4 }),
            (
                "PA 9999",
                Command::PauseAll {
                    hours: MAX_PAUSE_HOURS,
                },
            ),
            ("GO 12", Command::Resume { lead: Some(12) }),
            ("go12", Command::Resume { lead: Some(12) }),
            ("resume 12", Command::Resume { lead: Some(12) }),
            ("GO", Command::ResumeAll),
            ("go all", Command::ResumeAll),
            ("HELP", Command::Help),
            ("help", Command::Help),
            ("?", Command::Help),
            ("", Command::Empty),
            ("   ", Command::Empty),
        ];
        for (text, expected) in cases {
            assert_eq!(parse(text), expected, "{text:?}");
        }
        assert_eq!(parse("pause the music"), reply(None, "pause the music"));
        // What reads as STOP, START or HELP is never sent on to a caller.
        assert_eq!(parse("STOP"), Command::Help);
        assert_eq!(parse("please stop texting me"), Command::Help);
        assert_eq!(parse("START"), Command::Help);
        // Inside an explicit reply the words are the owner's.
        assert_eq!(parse("R 12 stop by at 3"), reply(Some(12), "stop by at 3"));
    }

    #[test]
    fn never_panics_on_odd_text() {
        for text in [
            "R",
            "R #",
            "R 99999999999999999999 hi",
            "P 1 2 3",
            "😀 R 1",
            "R😀",
            "#",
            "::",
        ] {
            let _ = parse(text);
        }
        assert_eq!(parse("R"), reply(None, "R"));
        assert_eq!(parse("R 12"), Command::Help);
    }

    fn lead(id: i64, profile: &str) -> LeadFacts {
        LeadFacts {
            id,
            profile: profile.to_string(),
            caller: E164::parse("+447700900123").unwrap(),
            caller_name: Some("Sarah Jones".to_string()),
            opted_out: false,
            state: LeadState::New,
        }
    }

    fn facts(named: Option<LeadFacts>, recent: Option<LeadFacts>) -> Facts {
        Facts {
            profiles: vec!["plumbing".to_string()],
            named,
            recent,
        }
    }

    #[test]
    fn a_reply_goes_to_the_named_or_recent_lead() {
        let command = parse("R 12 On my way");
        match decide(&command, &facts(Some(lead(12, "plumbing")), None), "Acme") {
            Decision::SendToCaller { lead, text, ack } => {
                assert_eq!(lead.id, 12);
                assert_eq!(text, "On my way");
                assert!(ack.contains("Sarah Jones"), "{ack}");
            }
            other => panic!("{other:?}"),
        }
        let plain = parse("On my way");
        assert!(matches!(
            decide(&plain, &facts(None, Some(lead(3, "plumbing"))), "Acme"),
            Decision::SendToCaller {
                lead: LeadFacts { id: 3, .. },
                ..
            }
        ));
    }

    #[test]
    fn bad_input_changes_nothing_and_says_why() {
        // No such lead.
        let Decision::Refuse(why) = decide(&parse("R 99 hi"), &facts(None, None), "Acme") else {
            panic!()
        };
        assert!(why.contains("No lead 99"), "{why}");
        // Another business's lead reads the same as no lead.
        let Decision::Refuse(other) =
            decide(&parse("W 5"), &facts(Some(lead(5, "salon")), None), "Acme")
        else {
            panic!()
        };
        assert!(other.contains("No lead 5"), "{other}");
        // A plain text with no recent lead.
        let Decision::Refuse(which) = decide(&parse("On my way"), &facts(None, None), "Acme")
        else {
            panic!()
        };
        assert!(which.starts_with("Which lead?"), "{which}");
        // A caller who said STOP.
        let mut stopped = lead(12, "plumbing");
        stopped.opted_out = true;
        let Decision::Refuse(stop) = decide(&parse("R 12 hi"), &facts(Some(stopped), None), "Acme")
        else {
            panic!()
        };
        assert!(stop.contains("replied STOP"), "{stop}");
        // Marking a lead in the state it is in.
        let mut won = lead(12, "plumbing");
        won.state = LeadState::Won;
        assert!(matches!(
            decide(&parse("W 12"), &facts(Some(won), None), "Acme"),
            Decision::Refuse(_)
        ));
    }

    #[test]
    fn help_fits_one_sms() {
        let text = help_text("Brightwater Plumbing");
        assert!(text.len() <= 160 * 2, "{}", text.len());
        assert!(crate::codec::gsm7::is_gsm7(&text));
        assert!(matches!(
            decide(&Command::Help, &facts(None, None), "Acme"),
            Decision::Help(_)
        ));
    }

    #[test]
    fn pausing_the_business_is_the_staff_member_s_own() {
        assert_eq!(
            decide(&parse("PA 3"), &facts(None, None), "Acme"),
            Decision::PauseProfile {
                profile: "plumbing".to_string(),
                hours: 3,
                ack: "Assistant paused for Acme for 3h: missed calls are not texted. GO to resume."
                    .to_string(),
            }
        );
    }
}
