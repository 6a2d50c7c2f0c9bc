//! A reply cut into clauses, and the spans of it that values took: what the reader of a reply
//! ([`super::understand`]) works on, and what is left over for the reason ([`super::reason`]).

use crate::core::slots;

/// A clause of the reply and what reading it has found in it.
pub(super) struct Clause<'a> {
    pub(super) text: &'a str,
    pub(super) start: usize,
    pub(super) end: usize,
    pub(super) question: bool,
}

/// Byte spans of the text that other values used: what is left is read for the reason. Hard
/// spans (a name and its marker, a postcode, a phone number, a registration, a call asked for)
/// are taken wherever they are; soft ones (a time phrase, how soon) only at a clause's edges, as
/// in the middle they are part of what the caller describes ("need an emergency appointment").
#[derive(Debug, Default)]
pub(super) struct Taken {
    hard: Vec<(usize, usize)>,
    soft: Vec<(usize, usize)>,
}

impl Taken {
    pub(super) fn add(&mut self, start: usize, end: usize) {
        if start < end {
            self.hard.push((start, end));
        }
    }

    pub(super) fn add_soft(&mut self, start: usize, end: usize) {
        if start < end {
            self.soft.push((start, end));
        }
    }

    pub(super) fn covers(&self, start: usize, end: usize) -> bool {
        self.hard.iter().any(|&(s, e)| s <= start && end <= e)
    }

    pub(super) fn soft_at(&self, start: usize, end: usize) -> bool {
        self.soft.iter().any(|&(s, e)| s <= start && end <= e)
    }

    /// The parts of `start..end` that no hard span covers.
    pub(super) fn rest(&self, start: usize, end: usize) -> Vec<(usize, usize)> {
        let mut spans: Vec<(usize, usize)> = self
            .hard
            .iter()
            .filter(|&&(s, e)| s < end && start < e)
            .map(|&(s, e)| (s.max(start), e.min(end)))
            .collect();
        spans.sort_unstable();
        let mut out = Vec::new();
        let mut at = start;
        for (s, e) in spans {
            if s > at {
                out.push((at, s));
            }
            at = at.max(e);
        }
        if at < end {
            out.push((at, end));
        }
        out
    }
}

/// Where a run-on message (dictated, or typed without stops) starts a new statement: "its",
/// "theres", "can someone" after a few words.
const RUN_ON_STARTS: &[&str] = &[
    "its",
    "it's",
    "theres",
    "there's",
    "there is",
    "there are",
    "can someone",
    "can somebody",
    "can you",
    "can u",
    "could you",
    "could someone",
    "please can",
    "so can",
];

/// Splits long clauses of a run-on message where a new statement starts ("i need my boiler
/// serviced its a worcester bosch in a semi detached" -> two), unless what comes before is only
/// a topic ("calling about the boiler its making a banging noise" stays one).
pub(super) fn split_run_ons<'a>(text: &'a str, clauses: Vec<Clause<'a>>) -> Vec<Clause<'a>> {
    let mut out = Vec::new();
    for clause in clauses {
        let tokens = slots::tokens(clause.text);
        if clause.question || tokens.len() < 8 {
            out.push(clause);
            continue;
        }
        let lower: Vec<String> = tokens.iter().map(slots::Token::lower).collect();
        let mut cuts = Vec::new();
        let mut last_cut = 0;
        for index in 3..tokens.len().saturating_sub(1) {
            let starts = RUN_ON_STARTS.iter().any(|s| {
                let parts: Vec<&str> = s.split(' ').collect();
                parts
                    .iter()
                    .enumerate()
                    .all(|(k, p)| lower.get(index + k).is_some_and(|w| w == p))
            });
            if !starts || index - last_cut < 3 {
                continue;
            }
            let before: Vec<&str> = lower[last_cut..index].iter().map(String::as_str).collect();
            let topic_only = matches!(
                before.first(),
                Some(&("calling" | "ringing" | "texting" | "regarding" | "re"))
            ) || before.windows(2).any(|w| w == ["its", "about"])
                || matches!(before.first(), Some(&"about"));
            if topic_only {
                continue;
            }
            cuts.push(index);
            last_cut = index;
        }
        if cuts.is_empty() {
            out.push(clause);
            continue;
        }
        let mut start = 0;
        for cut in cuts.into_iter().chain(std::iter::once(tokens.len())) {
            let from = tokens[start].start;
            let to = tokens[cut - 1].end;
            out.push(Clause {
                text: &text[clause.start + from..clause.start + to],
                start: clause.start + from,
                end: clause.start + to,
                question: false,
            });
            start = cut;
        }
    }
    out
}

/// Spans of the phrases (lower-case words separated by spaces) wherever they occur as words.
pub(super) fn phrase_spans(text: &str, phrases: &[&str]) -> Vec<(usize, usize)> {
    let tokens = slots::tokens(text);
    let lower: Vec<String> = tokens.iter().map(slots::Token::lower).collect();
    let mut out = Vec::new();
    for phrase in phrases {
        let parts: Vec<&str> = phrase.split(' ').collect();
        if parts.len() > lower.len() {
            continue;
        }
        for start in 0..=lower.len() - parts.len() {
            if parts
                .iter()
                .enumerate()
                .all(|(k, p)| lower[start + k] == *p)
            {
                out.push((tokens[start].start, tokens[start + parts.len() - 1].end));
            }
        }
    }
    out
}

/// Marks short clauses (four words or fewer) that `test` accepts as taken.
pub(super) fn take_short_clauses(
    taken: &mut Taken,
    clauses: &[Clause<'_>],
    test: impl Fn(&str) -> bool,
) {
    for clause in clauses.iter().filter(|c| !c.question) {
        if slots::words(clause.text).len() <= 4 && test(clause.text) {
            taken.add(clause.start, clause.end);
        }
    }
}
