//! How soon the caller needs the business, as people say it: "urgent" and "asap" (high), "fairly
//! urgent but not an emergency" (medium), "no rush" (low); what is happening ("locked out",
//! "water coming through the ceiling", "can't sleep with the noise", "no heating with a newborn")
//! and, answering "How urgent is it?", a time ("today", "before the weekend", "next month").
//! Where a text says two things, the later wins when joined by "but" ("not urgent as such but
//! we'd like it sorted this week"). Pure functions on text.

use serde::{Deserialize, Serialize};

use crate::core::text::{has_phrase, words};

/// How soon the caller needs the business.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Urgency {
    High,
    Medium,
    Low,
}

impl Urgency {
    pub fn as_str(&self) -> &'static str {
        match self {
            Urgency::High => "high",
            Urgency::Medium => "medium",
            Urgency::Low => "low",
        }
    }
}

/// Said outright, in any context.
const LOW: &[&str] = &[
    "no rush",
    "no hurry",
    "not urgent",
    "not that urgent",
    "not too urgent",
    "not really urgent",
    "not an emergency",
    "whenever",
    "wenever",
    "not fussed",
    "in your own time",
    "when you can",
    "when convenient",
    "when its convenient",
    "no urgency",
    "not in a rush",
    "not in a hurry",
    "low priority",
];
const MEDIUM: &[&str] = &[
    "fairly urgent",
    "bit urgent",
    "a bit urgent",
    "slightly urgent",
    "semi urgent",
    "semi-urgent",
    "kind of urgent",
    "sort of urgent",
    "reasonably urgent",
    "moderately urgent",
    "soonish",
    "fairly soon",
    "quite soon",
    "reasonably soon",
];
const HIGH: &[&str] = &[
    "urgent",
    "urgently",
    "emergency",
    "asap",
    "as soon as possible",
    "as soon as you can",
    "soon as you can",
    "as soon as poss",
    "soon as poss",
    "soon as possible",
    "right away",
    "straight away",
    "immediately",
    "right now",
    "very urgent",
    "really urgent",
    "pretty urgent",
    "quite urgent",
    "super urgent",
    "extremely urgent",
    "desperate",
    "desperately",
];
/// What is happening that cannot wait, said in passing.
const SITUATIONS: &[&str] = &[
    "locked out",
    "cant get in",
    "can't get in",
    "cannot get in",
    "cant get out",
    "can't get out",
    "flooding",
    "flooded",
    "pouring",
    "water coming through",
    "coming through the ceiling",
    "burst pipe",
    "pipe burst",
    "smell gas",
    "smell of gas",
    "gas smell",
    "sparks",
    "sparking",
    "on fire",
    "smoke coming",
    "no power",
    "cant sleep",
    "can't sleep",
    "cannot sleep",
    "not breathing",
    "collapsed",
    "bleeding",
    "poisoned",
    "ate chocolate",
    "eaten chocolate",
    "dark chocolate",
    "swallowed",
    "cant lock",
    "can't lock",
    "wont lock",
    "won't lock",
    "broken into",
    "stranded",
    "environmental health",
    "really distressed",
    "in agony",
    "killing me",
];
/// Who makes no heating or hot water urgent.
const VULNERABLE: &[&str] = &[
    "baby",
    "newborn",
    "new born",
    "toddler",
    "pregnant",
    "elderly",
    "disabled",
    "poorly",
    "month old",
    "week old",
];
/// Answers to "How urgent is it?" given as a time.
const WHEN_HIGH: &[&str] = &[
    "today",
    "tonight",
    "now",
    "2day",
    "this morning",
    "this afternoon",
    "this evening",
    "very",
];
const WHEN_MEDIUM: &[&str] = &[
    "tomorrow",
    "tmrw",
    "tmr",
    "this week",
    "next few days",
    "few days",
    "couple of days",
    "couple days",
    "before the weekend",
    "by the weekend",
    "end of the week",
    "by friday",
    "before friday",
    "this weekend",
    "soon",
    "fairly",
    "quite",
    "within a week",
];
const WHEN_LOW: &[&str] = &[
    "any time",
    "anytime",
    "next week",
    "not really",
    "low",
    "later",
    "next month",
    "in a few weeks",
    "couple of weeks",
    "few weeks",
    "in a month",
    "no",
];

/// Whether the text says how soon in so many words ("asap", "no rush", "fairly urgent"), as
/// opposed to describing what is happening ("locked out"), which is also what the job is.
pub fn said_outright(text: &str) -> bool {
    let words = words(text);
    [LOW, MEDIUM, HIGH]
        .iter()
        .any(|phrases| first(&words, phrases).is_some())
}

/// The first position (word index) at which one of `phrases` occurs, if any.
fn first(words: &[String], phrases: &[&str]) -> Option<usize> {
    phrases
        .iter()
        .filter_map(|phrase| {
            let parts: Vec<&str> = phrase.split(' ').collect();
            if parts.len() > words.len() {
                return None;
            }
            (0..=words.len() - parts.len()).find(|&start| {
                parts
                    .iter()
                    .enumerate()
                    .all(|(k, p)| words[start + k] == *p)
            })
        })
        .min()
}

/// The last position at which one of `phrases` occurs.
fn last(words: &[String], phrases: &[&str]) -> Option<usize> {
    phrases
        .iter()
        .filter_map(|phrase| {
            let parts: Vec<&str> = phrase.split(' ').collect();
            if parts.len() > words.len() {
                return None;
            }
            (0..=words.len() - parts.len()).rev().find(|&start| {
                parts
                    .iter()
                    .enumerate()
                    .all(|(k, p)| words[start + k] == *p)
            })
        })
        .max()
}

/// Reads urgency. Outright words and situations always; with `asked` (the text answers "How
/// urgent is it?"), also a time ("today" high, "this week" medium, "next month" low).
pub fn read(text: &str, asked: bool) -> Option<Urgency> {
    let words = words(text);
    // Each kind of cue, where it last appears.
    let mut cues: Vec<(usize, Urgency)> = Vec::new();
    let medium = last(&words, MEDIUM);
    let low = last(&words, LOW);
    if let Some(at) = medium {
        cues.push((at, Urgency::Medium));
    }
    if let Some(at) = low {
        cues.push((at, Urgency::Low));
    }
    // "urgent" inside "not urgent" or "fairly urgent" is theirs, not a high on its own.
    let high = words.iter().enumerate().rev().find_map(|(at, _)| {
        let here = &words[at..];
        let is_high = HIGH.iter().any(|p| {
            let parts: Vec<&str> = p.split(' ').collect();
            parts.len() <= here.len() && parts.iter().enumerate().all(|(k, w)| here[k] == *w)
        });
        let qualified = at > 0
            && (MEDIUM.iter().chain(LOW).any(|p| {
                let parts: Vec<&str> = p.split(' ').collect();
                let n = parts.len();
                at + 1 >= n
                    && words[at + 1 - n..=at]
                        .iter()
                        .zip(&parts)
                        .all(|(a, b)| a == b)
            }) || matches!(
                words[at - 1].as_str(),
                "not" | "fairly" | "quite" | "bit" | "semi" | "slightly"
            ));
        (is_high && !qualified).then_some(at)
    });
    if let Some(at) = high {
        cues.push((at, Urgency::High));
    }
    if let Some(at) = first(&words, SITUATIONS) {
        cues.push((at, Urgency::High));
    }
    let cold = has_phrase(&words, "no heating")
        || has_phrase(&words, "no hot water")
        || has_phrase(&words, "heating not working")
        || has_phrase(&words, "boiler broke")
        || has_phrase(&words, "boiler broken");
    if cold && let Some(at) = first(&words, VULNERABLE) {
        cues.push((at, Urgency::High));
    }
    // A time says how soon when the text is about that: asked, or said beside an urgency word
    // ("not urgent as such but we'd like it sorted this week").
    if asked || !cues.is_empty() {
        if let Some(at) = last(&words, WHEN_HIGH) {
            cues.push((at, Urgency::High));
        }
        if let Some(at) = last(&words, WHEN_MEDIUM) {
            cues.push((at, Urgency::Medium));
        }
        // "no" alone says "not urgent" only as the whole answer.
        if let Some(at) = last(&words, WHEN_LOW)
            && asked
            && (words[at] != "no" || words.len() <= 2)
        {
            cues.push((at, Urgency::Low));
        }
    }
    if cues.is_empty() {
        return None;
    }
    // A turn ("but", "actually", "sorry I mean") makes the later cue the one meant; otherwise
    // the most urgent said wins, as a receptionist would note it.
    let turn = words.iter().any(|w| {
        matches!(
            w.as_str(),
            "but" | "actually" | "though" | "although" | "mean" | "meant" | "instead"
        )
    });
    cues.sort_by_key(|(at, _)| *at);
    let rank = |u: Urgency| match u {
        Urgency::High => 3,
        Urgency::Medium => 2,
        Urgency::Low => 1,
    };
    if turn {
        let (at, later) = *cues.last()?;
        // "fairly urgent but not an emergency": a hedge after something urgent tones it down,
        // it does not make it low.
        let hedge = [
            "not an emergency",
            "not that urgent",
            "not too urgent",
            "not life or death",
        ]
        .iter()
        .any(|p| first(&words[at..], &[p]) == Some(0));
        if later == Urgency::Low
            && hedge
            && cues.iter().any(|(_, u)| rank(*u) >= rank(Urgency::Medium))
        {
            return Some(Urgency::Medium);
        }
        return Some(later);
    }
    cues.iter().map(|(_, u)| *u).max_by_key(|u| rank(*u))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn said_outright_and_qualified() {
        for (text, want) in [
            ("pretty urgent", Urgency::High),
            ("asap please", Urgency::High),
            ("fairly urgent but not an emergency", Urgency::Medium),
            ("fairly urgent, hes not perching properly", Urgency::Medium),
            ("soonish", Urgency::Medium),
            ("no rush really", Urgency::Low),
            ("wenever no rush", Urgency::Low),
            (
                "its not urgent as such but wed like it sorted this week",
                Urgency::Medium,
            ),
        ] {
            assert_eq!(read(text, false), Some(want), "{text}");
            assert_eq!(read(text, true), Some(want), "{text} (asked)");
        }
    }

    #[test]
    fn situations_that_cannot_wait() {
        for text in [
            "locked out of my flat",
            "mice in the ceiling, can't sleep",
            "no heating and we've a 4 month old",
            "water coming through the light fitting",
            "hes eaten a whole bar of dark chocolate",
        ] {
            assert_eq!(read(text, false), Some(Urgency::High), "{text}");
        }
        assert_eq!(read("boiler needs a service", false), None);
    }

    #[test]
    fn a_time_as_the_answer() {
        for (text, want) in [
            ("today please", Urgency::High),
            ("can u come today", Urgency::High),
            ("tmrw wud b gd", Urgency::Medium),
            ("need it before the weekend", Urgency::Medium),
            ("sometime this week", Urgency::Medium),
            ("next month is fine", Urgency::Low),
            ("few days. sorry I mean today if you can", Urgency::High),
        ] {
            assert_eq!(read(text, true), Some(want), "{text}");
        }
        assert_eq!(read("tomorrow", false), None, "a time alone, unasked");
    }
}
