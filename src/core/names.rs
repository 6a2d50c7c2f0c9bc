//! Reads the caller's name out of a text, the way people give it: "Dave here", "its lucy", "Ok.
//! Name is chantelle", "this is jo from number 12", "Mrs O'Neill", "Eoghan Ó Briain", a bare
//! first name inside an all-in-one message ("fuse box tripping, Tom, e8 3ps"), or the whole reply
//! to "Who am I speaking to?".
//!
//! A word is taken as a name on evidence: a marker before it ("my name is" is strong, "its" is
//! weak), a capital in a text written in mixed case, the list of given names (`lexicon`), and not
//! being an everyday word. The weaker the marker, the more evidence the word needs; a name the
//! caller was not asked for needs the most. Pure functions on text.

use crate::core::lexicon::{self, NameFit};
use crate::core::text::{Token, clause_spans, tokens};

/// A name read from text: the name, and the span from its marker ("my name is") to its end, so
/// that what is left of the text can be read for other things.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct FoundName {
    pub name: String,
    pub start: usize,
    pub end: usize,
}

const TITLES: &[&str] = &[
    "mr", "mrs", "ms", "miss", "dr", "mx", "prof", "rev", "sr", "fr",
];

/// Words inside a name that are not names themselves: "Eoghan Ó Briain", "Siobhán Nic Aodha",
/// "Ludwig van Beethoven", "Rhys ap Gwilym".
const PARTICLES: &[&str] = &[
    "o", "ó", "ni", "ní", "nic", "mac", "mc", "de", "da", "di", "du", "van", "von", "der", "den",
    "la", "le", "al", "el", "bin", "ap", "ab", "ua", "uí", "dos", "das", "del",
];

/// Words that are never a name, whatever their capitals and even after "my name is": greetings,
/// answers, pronouns, texting forms. (Everyday words in general are `lexicon::common_word`.)
const NOT_NAMES: &[&str] = &[
    "hi",
    "hiya",
    "hello",
    "hey",
    "heya",
    "yo",
    "morning",
    "afternoon",
    "evening",
    "good",
    "yes",
    "yeah",
    "yep",
    "yup",
    "ye",
    "yh",
    "yeh",
    "ya",
    "aye",
    "no",
    "nope",
    "nah",
    "ok",
    "okay",
    "k",
    "kk",
    "thanks",
    "thank",
    "thankyou",
    "thx",
    "ty",
    "cheers",
    "ta",
    "sorry",
    "please",
    "pls",
    "plz",
    "sure",
    "fine",
    "who",
    "what",
    "when",
    "where",
    "why",
    "how",
    "which",
    "is",
    "are",
    "was",
    "this",
    "that",
    "it",
    "its",
    "it's",
    "i",
    "im",
    "i'm",
    "ive",
    "i've",
    "id",
    "i'd",
    "ill",
    "i'll",
    "me",
    "my",
    "you",
    "u",
    "ur",
    "your",
    "we",
    "were",
    "we're",
    "our",
    "us",
    "they",
    "the",
    "a",
    "an",
    "and",
    "n",
    "or",
    "but",
    "so",
    "just",
    "here",
    "there",
    "not",
    "asap",
    "lol",
    "omg",
    "tbh",
    "idk",
    "cba",
    "btw",
    "fyi",
    "x",
    "xx",
    "xxx",
    "mate",
    "m8",
    "hun",
    "babe",
    "love",
    "luv",
    "sir",
    "madam",
    "hello?",
    "hmm",
    "erm",
    "um",
    "stop",
    "help",
    "start",
    "wrong",
    "number",
    "mr",
    "mrs",
    "ms",
    "miss",
    "dr",
    "mx",
];

/// Words that make "Fairview Road" a street, not a person.
const STREET_WORDS: &[&str] = &[
    "road",
    "rd",
    "street",
    "st",
    "lane",
    "ln",
    "avenue",
    "ave",
    "close",
    "drive",
    "way",
    "crescent",
    "cres",
    "place",
    "pl",
    "court",
    "ct",
    "gardens",
    "gdns",
    "grove",
    "terrace",
    "square",
    "sq",
    "mews",
    "walk",
    "row",
    "estate",
    "parade",
    "park",
    "view",
    "rise",
    "hill",
    "centre",
    "center",
    "retail",
    "industrial",
];

/// A marker before a name, and how much it says.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Marker {
    /// "my name is", "name's": the next word is a name unless it is plainly not one.
    Strong,
    /// "its", "this is", "i'm": the next word is a name only with more evidence.
    Weak,
}

const MARKERS: &[(&str, Marker)] = &[
    ("my name is", Marker::Strong),
    ("my names", Marker::Strong),
    ("my name's", Marker::Strong),
    ("the name's", Marker::Strong),
    ("the names", Marker::Strong),
    ("name is", Marker::Strong),
    ("name's", Marker::Strong),
    ("names", Marker::Strong),
    ("name", Marker::Strong),
    ("my name", Marker::Strong),
    ("you're speaking to", Marker::Strong),
    ("youre speaking to", Marker::Strong),
    ("speaking to", Marker::Strong),
    ("it's me", Marker::Strong),
    ("its me", Marker::Strong),
    ("this is", Marker::Weak),
    ("it's", Marker::Weak),
    ("its", Marker::Weak),
    ("it is", Marker::Weak),
    ("i'm", Marker::Weak),
    ("im", Marker::Weak),
    ("i am", Marker::Weak),
];

/// What is known about the text as a whole.
struct Text<'a> {
    text: &'a str,
    tokens: Vec<Token<'a>>,
    lower: Vec<String>,
    /// Written in mixed case, so a capital says something ("KEVIN HERE" and "kevin here" say
    /// nothing by their case).
    cased: bool,
    /// Words the profile uses for other things (its choices' options): never names.
    extra_stop: &'a [String],
}

/// How sure the context makes a name.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord)]
enum Context {
    /// A clause of a text the caller was not asked their name in.
    Volunteered,
    /// A clause alone, the name asked for.
    Clause,
    /// After a weak marker, or "... here".
    Weak,
    /// The whole reply to "Who am I speaking to?".
    WholeReply,
    /// After a strong marker.
    Strong,
}

impl<'a> Text<'a> {
    fn new(text: &'a str, extra_stop: &'a [String]) -> Text<'a> {
        let tokens = tokens(text);
        let lower = tokens.iter().map(Token::lower).collect();
        let upper = text.chars().filter(|c| c.is_uppercase()).count();
        let small = text.chars().filter(|c| c.is_lowercase()).count();
        Text {
            text,
            tokens,
            lower,
            cased: small > 0 && upper * 2 < small + upper,
            extra_stop,
        }
    }

    fn capitalised(&self, index: usize) -> bool {
        self.cased
            && self.tokens[index]
                .text
                .chars()
                .next()
                .is_some_and(char::is_uppercase)
    }

    /// A word that could be part of a name at all: letters (with ' and -), not a never-name.
    fn name_shaped(&self, index: usize) -> bool {
        let token = &self.tokens[index];
        let lower = &self.lower[index];
        token.text.chars().next().is_some_and(char::is_alphabetic)
            && token
                .text
                .chars()
                .all(|c| c.is_alphabetic() || matches!(c, '\'' | '’' | '-'))
            && token.text.chars().count() >= 2
            && !NOT_NAMES.contains(&lower.as_str())
            && !self.extra_stop.contains(lower)
            && !crate::core::when::names_a_day_or_month(lower)
    }

    /// Whether the word at `index` can start a name in this context.
    fn first_word(&self, index: usize, context: Context) -> bool {
        if !self.name_shaped(index) {
            return false;
        }
        let word = &self.lower[index];
        let fit = lexicon::given_name(word);
        let common = lexicon::common_word(word);
        let cap = self.capitalised(index);
        match context {
            Context::Strong | Context::WholeReply => fit.is_some() || !common,
            Context::Weak => fit == Some(NameFit::Name) || (cap && (fit.is_some() || !common)),
            Context::Clause => fit == Some(NameFit::Name) || (cap && (fit.is_some() || !common)),
            Context::Volunteered => {
                fit == Some(NameFit::Name) && (cap || !common)
                    || (cap && fit == Some(NameFit::AlsoWord))
            }
        }
    }

    /// Whether the word at `index` carries on a name begun with `first` (a surname, a second
    /// given name).
    fn next_word(&self, index: usize, first: usize, context: Context) -> bool {
        if !self.name_shaped(index) {
            return false;
        }
        let word = &self.lower[index];
        if self.capitalised(first) {
            // "Ruairí Byrne ive got ...": a capitalised name goes on in capitals only; a
            // capitalised word after a capitalised first name is a surname even when it is also
            // a word ("Tom Baker", "Jo Green"), unless it names a day or a month.
            return self.capitalised(index)
                && !crate::core::when::names_a_day_or_month(word)
                && !STREET_WORDS.contains(&word.as_str());
        }
        if self.cased && self.capitalised(index) {
            return false;
        }
        let fit = lexicon::given_name(word);
        let common = lexicon::common_word(word);
        // After a first name the list knows, a word that is no everyday word is a surname
        // ("its manpreet kaur i was referred").
        let known_first = lexicon::given_name(&self.lower[first]) == Some(NameFit::Name);
        match context {
            Context::Strong | Context::WholeReply => fit == Some(NameFit::Name) || !common,
            _ => fit == Some(NameFit::Name) || (known_first && !common && fit.is_none()),
        }
    }

    /// Whether only spaces lie between two tokens.
    fn adjacent(&self, left: usize, right: usize) -> bool {
        self.text[self.tokens[left].end..self.tokens[right].start]
            .trim()
            .is_empty()
    }

    /// The name starting at token `from` (a title may come first), with the index after it.
    fn take(&self, from: usize, context: Context) -> Option<(String, usize)> {
        let mut index = from;
        let mut parts: Vec<String> = Vec::new();
        if TITLES.contains(&self.lower.get(index)?.as_str()) {
            let next = index + 1;
            if next < self.tokens.len()
                && self.adjacent(index, next)
                && self.name_shaped(next)
                && (!lexicon::common_word(&self.lower[next]) || self.capitalised(next))
            {
                parts.push(capitalise(self.tokens[index].text));
                parts.push(capitalise(self.tokens[next].text));
                index = next + 1;
                return Some((parts.join(" "), index));
            }
            return None;
        }
        if !self.first_word(index, context) {
            return None;
        }
        let first = index;
        parts.push(capitalise(self.tokens[index].text));
        index += 1;
        let mut words = 1;
        while index < self.tokens.len() && words < 3 && self.adjacent(index - 1, index) {
            let lower = self.lower[index].as_str();
            let particle = PARTICLES.contains(&lower)
                && index + 1 < self.tokens.len()
                && self.adjacent(index, index + 1)
                && self.name_shaped(index + 1)
                && (self.capitalised(index + 1) || !self.cased)
                && !lexicon::common_word(&self.lower[index + 1]);
            if particle {
                parts.push(self.tokens[index].text.to_string());
                parts.push(capitalise(self.tokens[index + 1].text));
                index += 2;
                words += 1;
                continue;
            }
            if !self.next_word(index, first, context) {
                break;
            }
            parts.push(capitalise(self.tokens[index].text));
            index += 1;
            words += 1;
        }
        Some((parts.join(" "), index))
    }

    fn span(&self, from: usize, to: usize) -> (usize, usize) {
        let start = self.tokens[from].start;
        let end = self.tokens[to.saturating_sub(1).max(from)].end;
        (start, end)
    }
}

/// Words that only lead into what follows ("hi", "ok", "yeah", "so"): skipped before a name.
fn lead_in(word: &str) -> bool {
    matches!(
        word,
        "hi" | "hiya"
            | "hello"
            | "hey"
            | "heya"
            | "ok"
            | "okay"
            | "yeah"
            | "yes"
            | "yep"
            | "so"
            | "well"
            | "oh"
            | "sorry"
            | "right"
            | "morning"
            | "afternoon"
            | "evening"
            | "good"
            | "there"
            | "ya"
            | "ye"
            | "aye"
            | "k"
            | "and"
            | "um"
            | "erm"
            | "whatever"
    )
}

/// Words that may close a reply after a name ("Dave here", "dave x", "thanks").
fn lead_out(word: &str) -> bool {
    matches!(
        word,
        "here"
            | "speaking"
            | "x"
            | "xx"
            | "xxx"
            | "thanks"
            | "thx"
            | "cheers"
            | "ta"
            | "please"
            | "pls"
    )
}

/// Reads the caller's name. `asked`: the last text asked for it. `extra_stop`: lower-case words
/// the profile uses for other things (its options), never names.
pub fn name(text: &str, asked: bool, extra_stop: &[String]) -> Option<FoundName> {
    let t = Text::new(text, extra_stop);
    if t.tokens.is_empty() {
        return None;
    }
    // 1. After a marker: "my name is Priya Patel", "its lucy", "this is dorothy i need ...".
    for index in 0..t.tokens.len() {
        for (marker, strength) in MARKERS {
            let parts: Vec<&str> = marker.split(' ').collect();
            let matches = parts
                .iter()
                .enumerate()
                .all(|(k, p)| t.lower.get(index + k).is_some_and(|w| w == p));
            if !matches {
                continue;
            }
            let after = index + parts.len();
            if after >= t.tokens.len() || !t.adjacent(after - 1, after) {
                continue;
            }
            // "name" alone only where it plainly introduces one: at a clause's start.
            if *marker == "name" || *marker == "names" {
                let before = t.text[..t.tokens[index].start].trim_end();
                let starts_clause = index == 0
                    || before.ends_with(['.', ',', '!', '?', ';', ':', '-'])
                    || (index > 0 && lead_in(&t.lower[index - 1]));
                if !starts_clause {
                    continue;
                }
            }
            let context = match strength {
                Marker::Strong => Context::Strong,
                Marker::Weak if asked && short_reply(&t) => Context::WholeReply,
                Marker::Weak => Context::Weak,
            };
            if let Some((name, next)) = t.take(after, context) {
                let (_, end) = t.span(after, next);
                return Some(FoundName {
                    name,
                    start: t.tokens[index].start,
                    end,
                });
            }
        }
    }
    // 2. "Dave here", "Kate from the gym", "jo from number 12", "Hi Mark Davies here".
    let mut first = 0;
    while first < t.tokens.len() && lead_in(&t.lower[first]) {
        first += 1;
    }
    for (closer, context) in [
        ("here", Context::Weak),
        ("speaking", Context::Weak),
        ("from", Context::Weak),
    ] {
        if let Some((name, next)) = t.take(first, context)
            && t.lower.get(next).is_some_and(|w| w == closer)
            && t.adjacent(next - 1, next)
        {
            let (start, end) = t.span(first, next);
            return Some(FoundName { name, start, end });
        }
    }
    // 3. The whole reply, asked: "sam", "Tom Baker", "dave x", "hi its me sue".
    if asked && short_reply(&t) {
        let mut last = t.tokens.len();
        while last > first && lead_out(&t.lower[last - 1]) {
            last -= 1;
        }
        if last > first
            && let Some((name, next)) = t.take(first, Context::WholeReply)
            && next == last
        {
            let (start, end) = t.span(first, next);
            return Some(FoundName { name, start, end });
        }
    }
    // 4. A clause that is nothing but a name: "Grace.", "fuse box tripping, Tom, e8 3ps",
    //    "Zoë. I'm a patient already", "thanks, Dave".
    let context = if asked {
        Context::Clause
    } else {
        Context::Volunteered
    };
    let spans = clause_spans(text);
    for &(start, end) in &spans {
        let inside: Vec<usize> = (0..t.tokens.len())
            .filter(|&i| t.tokens[i].start >= start && t.tokens[i].end <= end)
            .collect();
        let Some(&from) = inside.first() else {
            continue;
        };
        let mut from = from;
        let mut last = inside.last().map_or(from, |l| l + 1);
        while from < last && (lead_in(&t.lower[from]) || lead_out(&t.lower[from])) {
            from += 1;
        }
        while last > from && lead_out(&t.lower[last - 1]) {
            last -= 1;
        }
        if from >= last || last - from > 4 {
            continue;
        }
        if let Some((name, next)) = t.take(from, context)
            && next == last
        {
            let (name_start, name_end) = t.span(from, next);
            return Some(FoundName {
                name,
                start: name_start,
                end: name_end,
            });
        }
    }
    None
}

/// Words after which a name is the caller's own: "I'm Dave", "its Nicola", "this is Jo", "name's
/// Sue", "call me Bex".
const SELF_BEFORE: &[&str] = &["im", "i'm", "its", "it's", "am", "me", "name's", "names"];

/// Words before "is" that make the name after it the caller's: "this is Jo", "name is Sue", "it
/// is Dave" (not "my stylist is Kerry").
const SELF_BEFORE_IS: &[&str] = &["this", "name", "it", "here"];

/// Words after which a name is someone else's: a relation ("my husband Dave", "our neighbour
/// Tom"), a possessive, or a preposition or verb that makes it the object ("book with Jess",
/// "a cut for Tom", "ask for Kerry", "saw Dave last time").
const OTHER_BEFORE: &[&str] = &[
    "my",
    "our",
    "your",
    "his",
    "her",
    "their",
    "with",
    "for",
    "to",
    "by",
    "ask",
    "asked",
    "book",
    "booked",
    "see",
    "saw",
    "seen",
    "husband",
    "wife",
    "partner",
    "hubby",
    "son",
    "daughter",
    "mum",
    "mom",
    "dad",
    "mother",
    "father",
    "friend",
    "neighbour",
    "neighbor",
    "boss",
    "colleague",
    "landlord",
    "landlady",
    "tenant",
    "brother",
    "sister",
    "nan",
    "gran",
    "grandad",
    "grandma",
    "grandpa",
    "uncle",
    "auntie",
    "aunt",
    "cousin",
    "stylist",
    "girlfriend",
    "boyfriend",
    "fiance",
    "fiancee",
    "mate",
    "lad",
    "engineer",
    "plumber",
    "electrician",
];

/// Words that say the caller is the one something is done to or for: "Kerry normally does my
/// hair", "Sarah gave me your number".
const ME: &[&str] = &["my", "me", "us", "our", "mine"];

/// Whether `name`, as it stands in `text`, is someone the caller talks about rather than the
/// caller: each place it is written is after a relation word, a possessive or a preposition
/// ("my son Tom", "book with Jess"), is itself possessive ("Kerry's my stylist"), or starts a
/// clause that goes on, after a word or more, to something done to the caller ("Kerry normally
/// does my hair"). A name after "I'm", "its", "this is" is the caller's, whatever follows. False
/// when the name is not in the text.
pub fn someone_else(text: &str, name: &str) -> bool {
    let Some(first) = name.split_whitespace().next() else {
        return false;
    };
    let first = first.replace('’', "'").to_lowercase();
    let words = tokens(text);
    let lower: Vec<String> = words.iter().map(Token::lower).collect();
    let spans = clause_spans(text);
    let clause_of = |index: usize| {
        spans
            .iter()
            .position(|&(start, end)| words[index].start >= start && words[index].end <= end)
    };
    let mut found = false;
    for (index, word) in lower.iter().enumerate() {
        let possessive = word
            .strip_suffix("'s")
            .is_some_and(|bare| bare == first && first != "it");
        if word != &first && !possessive {
            continue;
        }
        found = true;
        if possessive {
            continue;
        }
        let clause = clause_of(index);
        let before = index
            .checked_sub(1)
            .filter(|&b| clause_of(b) == clause)
            .map(|b| lower[b].as_str());
        let before_is = index
            .checked_sub(2)
            .filter(|&b| clause_of(b) == clause)
            .map(|b| lower[b].as_str());
        if before.is_some_and(|b| SELF_BEFORE.contains(&b))
            || (before == Some("is") && before_is.is_some_and(|b| SELF_BEFORE_IS.contains(&b)))
        {
            return false;
        }
        if before == Some("is") {
            continue;
        }
        if before.is_some_and(|b| OTHER_BEFORE.contains(&b)) {
            continue;
        }
        // The name opens its clause (after a greeting at most) and the clause goes on, past at
        // least one other word, to the caller as the one something is done to.
        let opens = before.is_none_or(|b| {
            matches!(
                b,
                "hi" | "hiya" | "hello" | "hey" | "well" | "so" | "and" | "but" | "oh"
            )
        });
        let rest: Vec<&str> = (index + 1..lower.len())
            .take_while(|&k| clause_of(k) == clause)
            .map(|k| lower[k].as_str())
            .collect();
        let to_me = rest.iter().skip(1).any(|w| ME.contains(w))
            && rest
                .first()
                .is_some_and(|w| !ME.contains(w) && !matches!(*w, "here" | "speaking" | "x"));
        if opens && to_me {
            continue;
        }
        return false;
    }
    found
}

/// A reply short enough to be just a name and a word or two around it.
fn short_reply(t: &Text<'_>) -> bool {
    let meaningful = t
        .lower
        .iter()
        .filter(|w| {
            !lead_in(w)
                && !lead_out(w)
                && !matches!(w.as_str(), "its" | "it's" | "me" | "im" | "i'm")
        })
        .count();
    meaningful <= 3 && t.tokens.len() <= 6
}

/// "dave" -> "Dave", "jean-luc" -> "Jean-Luc", "o'neill" -> "O'Neill"; words already holding a
/// capital are kept as written ("McDonald"); all-capital words are written as names ("KEVIN" ->
/// "Kevin").
pub fn capitalise(word: &str) -> String {
    let has_lower = word.chars().any(char::is_lowercase);
    if word.chars().any(char::is_uppercase) && has_lower {
        return word.to_string();
    }
    let mut out = String::new();
    let mut start = true;
    for c in word.chars() {
        if start {
            out.extend(c.to_uppercase());
        } else {
            out.extend(c.to_lowercase());
        }
        start = matches!(c, '-' | '\'' | '’');
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_name_the_caller_gives_for_someone_else() {
        for (text, name) in [
            (
                "Hi! I'm a regular, Kerry normally does my hair, need a cut friday",
                "Kerry",
            ),
            ("my husband Dave will be in to let you in", "Dave"),
            ("Sarah gave me your number, boiler's packed up", "Sarah"),
            ("can I book with Jess again please", "Jess"),
            ("its for my son Tom, he needs a filling", "Tom"),
            ("Kerry's my usual stylist", "Kerry"),
            ("my usual stylist is Kerry", "Kerry"),
            ("our neighbour Priya recommended you", "Priya"),
            ("need a cut for Liam, hes 6", "Liam"),
            (
                "Mark fitted our kitchen last year and we want the same",
                "Mark",
            ),
            ("is Dave available? he did my boiler", "Dave"),
        ] {
            assert!(someone_else(text, name), "{text:?}: {name} is someone else");
        }
        for (text, name) in [
            ("Hi it's Nicola, need a cut friday", "Nicola"),
            ("Dave here, boiler leaking in SW11 4AB", "Dave"),
            ("Dave my boilers leaking", "Dave"),
            ("Tom. my tap is dripping", "Tom"),
            ("I'm Priya and my boiler is leaking", "Priya"),
            ("this is Jo from number 12, my gate is broken", "Jo"),
            ("name is chantelle, need my nails done", "chantelle"),
            ("Sue", "Sue"),
            ("fuse box tripping, Tom, e8 3ps", "Tom"),
            ("my son Tom needs a filling, I'm Sarah", "Sarah"),
            ("Kerry normally does my hair but I'm Kerry too", "Kerry"),
            ("Zoë. I'm a patient already", "Zoë"),
        ] {
            assert!(!someone_else(text, name), "{text:?}: {name} is the caller");
        }
        // Not in the text at all: not said to be anyone's.
        assert!(!someone_else("need a cut friday", "Kerry"));
    }

    fn read(text: &str, asked: bool) -> Option<String> {
        name(text, asked, &[]).map(|found| found.name)
    }

    #[test]
    fn names_after_markers_in_any_case() {
        for (text, want) in [
            ("Dave here, boiler leaking", "Dave"),
            ("its lucy", "Lucy"),
            ("Ok. Name is chantelle", "Chantelle"),
            ("sorry. MOT please. Name Tomasz", "Tomasz"),
            (
                "hello yes this is dorothy i need some shelves putting up",
                "Dorothy",
            ),
            ("hi im kyle need outside lights put up pls", "Kyle"),
            (
                "my name is winston clarke i would like a quote",
                "Winston Clarke",
            ),
            (
                "hi my name is Ruairí Byrne ive got the engine light on",
                "Ruairí Byrne",
            ),
            ("this is Priya Patel, I'm a landlord", "Priya Patel"),
            ("Mrs O'Neill", "Mrs O'Neill"),
            ("its mrs ahmed", "Mrs Ahmed"),
            ("Eoghan Ó Briain", "Eoghan Ó Briain"),
            ("Siobhán Nic Aodha", "Siobhán Nic Aodha"),
            ("KEVIN HERE RATS IN THE LOFT", "Kevin"),
            ("its kate from the gym on Albert St", "Kate"),
            ("this is jo from number 12", "Jo"),
            ("eóin here, need a spare key cut", "Eóin"),
        ] {
            assert_eq!(read(text, true).as_deref(), Some(want), "{text}");
        }
    }

    #[test]
    fn names_inside_all_in_one_messages() {
        for (text, want) in [
            (
                "fuse box keeps tripping when the kettle goes on, Tom, e8 3ps, its a flat",
                "Tom",
            ),
            ("Zoë. I'm a patient already, my crown came off", "Zoë"),
            ("ok whatever. Grace. Need a door frame fixed", "Grace"),
            ("Hi. Niall. ankle gone again", "Niall"),
            ("hi its sinead, 3 bed semi in LS6 2AB", "Sinead"),
            (
                "locked out of my flat, keys inside, its lucy, n1 9gu",
                "Lucy",
            ),
        ] {
            assert_eq!(read(text, true).as_deref(), Some(want), "{text}");
            assert_eq!(
                read(text, false).as_deref(),
                Some(want),
                "{text} (not asked)"
            );
        }
    }

    #[test]
    fn whole_replies_asked_for() {
        for (text, want) in [
            ("sam", "Sam"),
            ("Tom Baker", "Tom Baker"),
            ("dave x", "Dave"),
            ("ruaridh", "Ruaridh"),
            ("KEVIN.", "Kevin"),
        ] {
            assert_eq!(read(text, true).as_deref(), Some(want), "{text}");
        }
    }

    #[test]
    fn never_words_that_are_not_names() {
        for text in [
            "Hi",
            "Yes",
            "Thanks",
            "Boiler",
            "border terrier",
            "its raining",
            "its a flat",
            "im locked out",
            "ye",
            "Ye thx",
            "wknd",
            "Hello?",
            "yes this number",
            "Fairview Road",
            "MOT please",
            "no rush",
            "12",
        ] {
            assert_eq!(read(text, true), None, "{text}");
        }
        // Not asked: a bare capitalised word that is not a given name is not taken.
        assert_eq!(read("do you cover Salford? Croydon", false), None);
        assert_eq!(read("will you come tomorrow", false), None);
    }
}
