//! Yes or no, answered in words: "I'm a patient already" to "Are you already a patient with us?",
//! "nah 1st time" to "Have you been to us before?", "paying myself" to "Is this an insurance
//! claim?", "it's for my shop" to "Is it a domestic property?". The question's own words say what
//! it is about (coming before, insurance, owning, a business, parking ...); the answer's words
//! are read for that topic, with their negations. A statement like these is an answer even when
//! the question was not asked yet. Pure functions on text.

use crate::core::slots;

/// What a yes/no question is about, read from its words.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Topic {
    /// "Have you been to us before?", "Are you already a patient?", "Are you a regular?"
    Familiar,
    /// "Is this an insurance claim?"
    Insurance,
    /// "Do you own the property?"
    Owner,
    /// "Is it a business / commercial property?"
    Business,
    /// "Is it your home / a domestic property?"
    Home,
    /// "Is there parking?"
    Parking,
    /// Anything else: the answer is read for the question's own content words.
    Other,
}

fn topic(ask: &str) -> Topic {
    let words = slots::words(ask);
    let has = |w: &str| words.iter().any(|x| x == w);
    let phrase = |p: &str| slots::has_phrase(&words, p);
    if has("insurance") || has("claim") || has("insured") || has("insurer") {
        Topic::Insurance
    } else if has("before")
        || has("already")
        || has("previously")
        || has("existing")
        || has("regular")
        || has("registered")
        || phrase("with us")
        || phrase("been to us")
        || phrase("seen us")
    {
        Topic::Familiar
    } else if has("own") || has("owner") || has("homeowner") || has("tenant") || has("renting") {
        Topic::Owner
    } else if has("business") || has("commercial") || has("premises") {
        Topic::Business
    } else if has("domestic") || has("residential") || has("home") {
        Topic::Home
    } else if has("parking") || has("park") || has("driveway") {
        Topic::Parking
    } else {
        Topic::Other
    }
}

/// Phrases that answer, per topic: (yes phrases, no phrases). The no phrases are checked first:
/// "never been before" holds "been before".
fn phrases(topic: Topic) -> (&'static [&'static str], &'static [&'static str]) {
    match topic {
        Topic::Familiar => (
            &[
                "already",
                "existing",
                "regular",
                "registered",
                "been before",
                "been to you",
                "been here",
                "been coming",
                "been a few times",
                "been loads",
                "been lots",
                "been b4",
                "been several",
                "been twice",
                "been once",
                "came before",
                "come before",
                "been in before",
                "seen you",
                "seen us",
                "saw you",
                "last time",
                "last year",
                "as usual",
                "usual",
                "normally does",
                "usually does",
                "always does",
                "normally see",
                "usually see",
                "you did my",
                "youve done",
                "you've done",
                "done work for us",
                "a patient",
                "a customer",
                "a client",
                "patient of yours",
                "my dentist",
                "returning",
            ],
            &[
                "new",
                "first time",
                "1st time",
                "first visit",
                "never",
                "not been",
                "havent been",
                "haven't been",
                "not before",
                "not yet",
                "not registered",
                "not a patient",
                "not a regular",
                "not a customer",
                "didnt come",
                "havent used",
                "haven't used",
            ],
        ),
        Topic::Insurance => (
            &[
                "claim",
                "claiming",
                "insurance",
                "insurers",
                "insurer",
                "insured",
                "loss adjuster",
                "policy",
            ],
            &[
                "paying myself",
                "pay myself",
                "paying privately",
                "pay privately",
                "private",
                "privately",
                "self funded",
                "self-funded",
                "cash",
                "not claiming",
                "no claim",
                "not a claim",
                "not insured",
                "not through",
                "not going through",
                "not an insurance",
                "wont claim",
                "won't claim",
                "own pocket",
            ],
        ),
        Topic::Owner => (
            &[
                "own it",
                "i own",
                "we own",
                "homeowner",
                "owner",
                "my own",
                "landlord",
                "mortgage",
                "bought",
            ],
            &[
                "tenant",
                "renting",
                "rent",
                "rented",
                "council",
                "housing association",
                "letting agent",
                "lease",
                "my landlord",
            ],
        ),
        Topic::Business => (
            &[
                "shop",
                "office",
                "business",
                "commercial",
                "premises",
                "restaurant",
                "pub",
                "cafe",
                "salon",
                "unit",
                "warehouse",
                "school",
                "church",
                "surgery",
                "hotel",
                "factory",
                "workshop",
            ],
            &[
                "home",
                "house",
                "flat",
                "domestic",
                "residential",
                "where i live",
                "my place",
                "bungalow",
            ],
        ),
        Topic::Home => (
            &[
                "home",
                "house",
                "flat",
                "domestic",
                "residential",
                "where i live",
                "my place",
                "bungalow",
            ],
            &[
                "shop",
                "office",
                "business",
                "commercial",
                "premises",
                "restaurant",
                "pub",
                "cafe",
                "salon",
                "unit",
                "warehouse",
                "school",
                "church",
                "surgery",
                "hotel",
                "factory",
                "workshop",
            ],
        ),
        Topic::Parking => (
            &[
                "drive",
                "driveway",
                "on the road",
                "street parking",
                "car park",
                "plenty of",
                "space",
            ],
            &[
                "no parking",
                "permit",
                "double yellow",
                "nowhere to park",
                "no space",
            ],
        ),
        Topic::Other => (&[], &[]),
    }
}

/// Words that turn what follows round: "not a regular", "haven't claimed". ("no" and "nah"
/// answer rather than negate: "nah 1st time".)
const NEGATIONS: &[&str] = &[
    "not", "never", "isnt", "isn't", "aint", "ain't", "dont", "don't", "doesnt", "doesn't",
    "havent", "haven't", "wasnt", "wasn't", "wont", "won't",
];

/// Unsure: no answer either way.
const UNSURE: &[&str] = &[
    "not sure",
    "dont know",
    "don't know",
    "no idea",
    "maybe",
    "might",
    "possibly",
    "idk",
    "dunno",
    "not certain",
    "find out",
    "will check",
    "waiting to hear",
    "depends",
];

/// Whether `words` hold `phrase` (lower-case words) with no negation just before it; returns
/// where it starts.
fn affirmed(words: &[String], phrase: &str) -> Option<usize> {
    let parts: Vec<&str> = phrase.split(' ').collect();
    if parts.len() > words.len() {
        return None;
    }
    (0..=words.len() - parts.len()).find(|&start| {
        parts
            .iter()
            .enumerate()
            .all(|(k, p)| words[start + k] == *p)
            && !(start.saturating_sub(2)..start).any(|k| NEGATIONS.contains(&words[k].as_str()))
    })
}

/// Reads the answer to the yes/no question `ask` from `text` in words (not a bare "yes" or
/// "no": [`slots::yes_no`] reads those). `None` when the text says nothing about it, or says it
/// is not sure.
pub fn answer_in_words(ask: &str, text: &str, asked: bool) -> Option<bool> {
    let words = slots::words(text);
    if UNSURE.iter().any(|p| slots::has_phrase(&words, p)) {
        return None;
    }
    let topic = topic(ask);
    if topic == Topic::Other {
        // Echoing the question's words is an answer only to the question just asked.
        return if asked { echo(ask, &words) } else { None };
    }
    let (yes, no) = phrases(topic);
    // The no phrases first: they hold negations of the yes ones ("not a regular").
    if no.iter().any(|p| affirmed(&words, p).is_some()) {
        return Some(false);
    }
    if yes.iter().any(|p| affirmed(&words, p).is_some()) {
        return Some(true);
    }
    // A yes phrase negated: "I'm not a regular", "not through the insurance".
    if yes.iter().any(|p| slots::has_phrase(&words, p)) {
        return Some(false);
    }
    None
}

/// The answer repeats the question's own content words: "Is the boiler a combi?" - "its a
/// combi" (yes), "not a combi" (no).
fn echo(ask: &str, words: &[String]) -> Option<bool> {
    const SMALL: &[&str] = &[
        "is", "are", "do", "does", "did", "was", "were", "have", "has", "had", "can", "could",
        "will", "would", "should", "you", "your", "it", "its", "the", "a", "an", "this", "that",
        "there", "any", "of", "to", "for", "in", "on", "at", "with", "we", "us", "our", "be",
        "been", "or", "and", "if", "so", "what", "how", "who", "which", "when", "where", "yet",
    ];
    let content: Vec<String> = slots::words(ask)
        .into_iter()
        .filter(|w| !SMALL.contains(&w.as_str()) && w.chars().count() > 2)
        .collect();
    let hit = content.iter().find_map(|w| {
        let position = words.iter().position(|x| x == w)?;
        Some(position)
    })?;
    let negated = (hit.saturating_sub(2)..hit).any(|k| NEGATIONS.contains(&words[k].as_str()));
    Some(!negated)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn familiar_in_words() {
        let ask = "Are you already a patient with us?";
        for (text, want) in [
            ("I'm a patient already", Some(true)),
            ("Zoë. I'm a patient already, my crown came off", Some(true)),
            ("new patient", Some(false)),
            ("never been", Some(false)),
            ("yes been coming for years", Some(true)),
            ("not registered anywhere at the moment", Some(false)),
            ("not sure, maybe years ago", None),
            ("my crown came off", None),
        ] {
            assert_eq!(answer_in_words(ask, text, false), want, "{text}");
        }
        let ask = "Have you been to us before?";
        for (text, want) in [
            ("ye been loads", Some(true)),
            ("nah 1st time", Some(false)),
            ("Hi! I'm a regular, Kerry normally does my hair", Some(true)),
            ("i havent been to you before", Some(false)),
            ("not a regular but been once", Some(false)),
        ] {
            assert_eq!(answer_in_words(ask, text, false), want, "{text}");
        }
    }

    #[test]
    fn insurance_owning_and_premises() {
        let ask = "Is this an insurance claim?";
        assert_eq!(answer_in_words(ask, "paying myself", true), Some(false));
        assert_eq!(
            answer_in_words(ask, "ye its a claim, insurers want a quote", true),
            Some(true)
        );
        assert_eq!(answer_in_words(ask, "not sure yet", true), None);
        assert_eq!(
            answer_in_words(ask, "not through the insurance no", true),
            Some(false)
        );
        assert_eq!(
            answer_in_words("Do you own the property?", "we're renting", true),
            Some(false)
        );
        assert_eq!(
            answer_in_words("Is it a domestic property?", "it's for my shop", true),
            Some(false)
        );
        assert_eq!(
            answer_in_words("Is it a business?", "it's for my shop", true),
            Some(true)
        );
        assert_eq!(
            answer_in_words("Is the boiler a combi?", "its a combi i think", true),
            Some(true)
        );
        assert_eq!(
            answer_in_words("Is the boiler a combi?", "not a combi", true),
            Some(false)
        );
        assert_eq!(
            answer_in_words("Is the boiler a combi?", "no idea", true),
            None
        );
    }
}
