//! Slot values: reads one kind of answer (a name, a postcode, a date, a choice ...) out of a
//! caller's text and normalises it. Pure functions on text; "now" is passed in.

use crate::codec::phone::E164;

pub use crate::core::text::{
    MAX_ANSWER, MAX_READ, Token, clause_spans, clean_answer, has_phrase, is_emoji_only, tokens,
    words,
};

// ---------------------------------------------------------------------------------------------
// Postcodes

/// A postcode found in a text, normalised ("SW11 4AB", or the outward code alone, "M14").
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct FoundPostcode {
    pub value: String,
    pub start: usize,
    pub end: usize,
}

/// The outward code: A9, A99, AA9, AA99, A9A, AA9A (Royal Mail's postcode format).
fn is_outward(code: &str) -> bool {
    let b = code.as_bytes();
    let a = |i: usize| b.get(i).is_some_and(u8::is_ascii_alphabetic);
    let d = |i: usize| b.get(i).is_some_and(u8::is_ascii_digit);
    let first_ok = b.first().is_some_and(|c| !matches!(c, b'Q' | b'V' | b'X'));
    first_ok
        && match b.len() {
            2 => a(0) && d(1),
            3 => a(0) && ((d(1) && (d(2) || a(2))) || (a(1) && d(2))),
            4 => a(0) && a(1) && d(2) && (d(3) || a(3)),
            _ => false,
        }
}

/// The inward code: 9AA.
fn is_inward(code: &str) -> bool {
    let b = code.as_bytes();
    b.len() == 3
        && b[0].is_ascii_digit()
        && b[1].is_ascii_alphabetic()
        && b[2].is_ascii_alphabetic()
}

/// Finds full postcodes in any case and spacing ("sw11 4ab", "SW114AB"). With `outward_alone`,
/// a text that is nothing but an outward code ("M14", "sw11") counts too.
pub fn find_postcodes(text: &str, outward_alone: bool) -> Vec<FoundPostcode> {
    let tokens = tokens(text);
    let mut found = Vec::new();
    let mut index = 0;
    while let Some(token) = tokens.get(index) {
        let upper = token.text.to_ascii_uppercase();
        if let Some(next) = tokens.get(index + 1) {
            let inward = next.text.to_ascii_uppercase();
            let gap = &text[token.end..next.start];
            if is_outward(&upper) && is_inward(&inward) && gap.trim().is_empty() {
                found.push(FoundPostcode {
                    value: format!("{upper} {inward}"),
                    start: token.start,
                    end: next.end,
                });
                index += 2;
                continue;
            }
        }
        if upper.len() >= 5 && upper.len() <= 7 && upper.is_ascii() {
            let (outward, inward) = upper.split_at(upper.len() - 3);
            if is_outward(outward) && is_inward(inward) {
                found.push(FoundPostcode {
                    value: format!("{outward} {inward}"),
                    start: token.start,
                    end: token.end,
                });
            }
        }
        index += 1;
    }
    if found.is_empty()
        && outward_alone
        && tokens.len() == 1
        && let Some(token) = tokens.first()
    {
        let upper = token.text.to_ascii_uppercase();
        if is_outward(&upper) {
            found.push(FoundPostcode {
                value: upper,
                start: token.start,
                end: token.end,
            });
        }
    }
    if found.is_empty() {
        // An outward code where a place is said: "we're in eh6", "from ls6 to ls16", "postcode
        // m14". It needs a digit and the words around it ("b4" alone is "before").
        for (index, token) in tokens.iter().enumerate() {
            let upper = token.text.to_ascii_uppercase();
            let previous = index
                .checked_sub(1)
                .map(|i| tokens[i].lower())
                .unwrap_or_default();
            let next = tokens.get(index + 1).map(Token::lower).unwrap_or_default();
            let placed = matches!(
                previous.as_str(),
                "in" | "at" | "near" | "postcode" | "from" | "to" | "area" | "round" | "is"
            );
            let ends_there = next.is_empty()
                || matches!(
                    next.as_str(),
                    "to" | "and" | "area" | "on" | "for" | "please" | "pls" | "thanks" | "x"
                )
                || text[token.end..]
                    .trim_start()
                    .starts_with([',', '.', '!', '?']);
            if upper.len() >= 3
                && upper.chars().any(|c| c.is_ascii_digit())
                && is_outward(&upper)
                && placed
                && ends_there
            {
                found.push(FoundPostcode {
                    value: upper,
                    start: token.start,
                    end: token.end,
                });
            }
        }
    }
    found
}

// ---------------------------------------------------------------------------------------------
// Vehicle registrations

/// A vehicle registration found in a text, in its standard form ("AB12 CDE"), with its span.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct FoundRegistration {
    pub value: String,
    pub start: usize,
    pub end: usize,
}

/// The standard form of a registration written without spaces ("AB12CDE"), by the DVLA's
/// formats: current (two letters, two digits, three letters: "AB12 CDE"), prefix (a letter, one
/// to three digits, three letters: "A123 BCD"), suffix (three letters, one to three digits, a
/// letter: "ABC 123D"). With `loose`, also the dateless and Northern Irish marks: one to three
/// letters and one to four digits either way round ("ABZ 1234", "1234 AB").
fn registration_form(compact: &str, loose: bool) -> Option<String> {
    let letters = |s: &str| !s.is_empty() && s.bytes().all(|b| b.is_ascii_uppercase());
    let digits = |s: &str| !s.is_empty() && s.bytes().all(|b| b.is_ascii_digit());
    if !compact.is_ascii() || !(2..=8).contains(&compact.len()) {
        return None;
    }
    // Split into runs of letters and digits: "AB12CDE" -> ["AB", "12", "CDE"].
    let mut runs: Vec<&str> = Vec::new();
    let mut start = 0;
    let bytes = compact.as_bytes();
    for index in 1..=bytes.len() {
        let boundary = index == bytes.len()
            || bytes[index].is_ascii_digit() != bytes[index - 1].is_ascii_digit();
        if boundary {
            runs.push(&compact[start..index]);
            start = index;
        }
    }
    match runs.as_slice() {
        [a, d, b] if letters(a) && digits(d) && letters(b) => match (a.len(), d.len(), b.len()) {
            (2, 2, 3) => Some(format!("{a}{d} {b}")),
            (1, 1..=3, 3) => Some(format!("{a}{d} {b}")),
            (3, 1..=3, 1) => Some(format!("{a} {d}{b}")),
            _ => None,
        },
        [a, d] if loose && letters(a) && digits(d) && a.len() <= 3 && d.len() <= 4 => {
            Some(format!("{a} {d}"))
        }
        [d, a] if loose && digits(d) && letters(a) && a.len() <= 3 && d.len() <= 4 => {
            Some(format!("{d} {a}"))
        }
        _ => None,
    }
}

/// Words that say a registration is near: "reg", "registration", "plate".
fn mentions_registration(words: &[String]) -> bool {
    words.iter().any(|w| {
        matches!(
            w.as_str(),
            "reg" | "registration" | "reg's" | "regs" | "plate" | "plates" | "numberplate"
        )
    })
}

/// Reads a UK vehicle registration in any case and spacing ("ab12cde", "AB12 CDE", "ab 12 cde",
/// "a123bcd"). A current-format mark counts anywhere; a prefix or suffix mark when `asked` or
/// when the text speaks of a registration; a dateless or Northern Irish mark ("ABZ 1234") only
/// when `asked` and it is the whole answer. Never a postcode ("SW11 4AB").
pub fn registration(text: &str, asked: bool) -> Option<FoundRegistration> {
    let tokens = tokens(text);
    let lower: Vec<String> = tokens.iter().map(Token::lower).collect();
    let cue = asked || mentions_registration(&lower);
    let postcodes = find_postcodes(text, false);
    let answer_words: Vec<&String> = lower
        .iter()
        .filter(|w| {
            !matches!(
                w.as_str(),
                "its"
                    | "it's"
                    | "it"
                    | "is"
                    | "the"
                    | "reg"
                    | "registration"
                    | "my"
                    | "car"
                    | "van"
                    | "plate"
                    | "number"
                    | "ok"
                    | "okay"
                    | "yes"
                    | "yeah"
                    | "sure"
                    | "here"
                    | "you"
                    | "go"
                    | "thanks"
                    | "cheers"
            )
        })
        .collect();
    let mut best: Option<(usize, FoundRegistration)> = None;
    for first in 0..tokens.len() {
        for count in 1..=3 {
            let Some(run) = tokens.get(first..first + count) else {
                break;
            };
            // Only spaces (or a hyphen) between the pieces.
            let joined = run.windows(2).all(|pair| {
                text[pair[0].end..pair[1].start]
                    .chars()
                    .all(|c| c == ' ' || c == '-')
            });
            if !joined {
                break;
            }
            let (start, end) = (run[0].start, run[count - 1].end);
            if postcodes.iter().any(|p| p.start < end && start < p.end) {
                continue;
            }
            let compact: String = text[start..end]
                .chars()
                .filter(char::is_ascii_alphanumeric)
                .map(|c| c.to_ascii_uppercase())
                .collect();
            let whole = asked && answer_words.len() == count;
            let Some(value) = registration_form(&compact, whole) else {
                continue;
            };
            let current = compact.len() == 7
                && compact.as_bytes()[..2].iter().all(u8::is_ascii_uppercase)
                && compact.as_bytes()[2..4].iter().all(u8::is_ascii_digit);
            if !(current || cue) {
                continue;
            }
            // Prefer the mark read from the most characters ("AB12 CDE" over "B12 CDE").
            if best.as_ref().is_none_or(|(len, _)| compact.len() > *len) {
                best = Some((compact.len(), FoundRegistration { value, start, end }));
            }
        }
    }
    best.map(|(_, found)| found)
}

// ---------------------------------------------------------------------------------------------
// Property types

/// Words for each kind of property, by the value stored (conversation::PROPERTY_TYPES).
const PROPERTY_WORDS: &[(&str, &[&str])] = &[
    ("Maisonette", &["maisonette", "maisonettes", "duplex"]),
    ("Bungalow", &["bungalow", "bungalows", "chalet"]),
    (
        "Flat",
        &[
            "flat",
            "flats",
            "apartment",
            "apartments",
            "apt",
            "studio",
            "bedsit",
            "penthouse",
            "tenement",
        ],
    ),
    (
        "House",
        &[
            "house",
            "houses",
            "hse",
            "semi",
            "semi-detached",
            "detached",
            "terrace",
            "terraced",
            "terraces",
            "end-terrace",
            "cottage",
            "townhouse",
            "farmhouse",
            "home",
            "villa",
            "mid-terrace",
            "new-build",
        ],
    ),
    (
        "Commercial",
        &[
            "shop",
            "shops",
            "office",
            "offices",
            "pub",
            "restaurant",
            "cafe",
            "café",
            "salon",
            "unit",
            "warehouse",
            "school",
            "church",
            "factory",
            "surgery",
            "hotel",
            "premises",
            "commercial",
            "business",
            "garage",
            "workshop",
            "takeaway",
            "bar",
            "clinic",
            "nursery",
            "gym",
            "store",
        ],
    ),
];

/// Words after "flat" or "office" that make them something else: "flat roof", "office number".
const NOT_PROPERTY_AFTER: &[&str] = &[
    "roof",
    "roofs",
    "tyre",
    "tyres",
    "battery",
    "rate",
    "fee",
    "pack",
    "out",
    "number",
    "phone",
    "hours",
    "line",
    "landline",
    "manager",
    "email",
    "screwdriver",
    "pack",
];
/// Words before that do the same: "battery is flat", "gone flat", "back home".
const NOT_PROPERTY_BEFORE: &[&str] = &[
    "is", "gone", "went", "go", "battery", "tyre", "tyres", "back", "at", "get", "got", "from",
    "run", "running", "working",
];

/// Reads the kind of property: "3 bed semi" -> House, "top floor flat" -> Flat, "it's for my
/// shop" -> Commercial. The first kind mentioned wins ("a flat above a shop" is a flat). Without
/// `asked`, only a word that plainly names the property counts ("my flat", "a 3 bed semi"); "home"
/// and the business words count only when asked.
pub fn property(text: &str, asked: bool) -> Option<&'static str> {
    let words = words(text);
    for (index, word) in words.iter().enumerate() {
        let next = words.get(index + 1).map(String::as_str).unwrap_or("");
        let previous = index
            .checked_sub(1)
            .and_then(|i| words.get(i))
            .map(String::as_str)
            .unwrap_or("");
        if NOT_PROPERTY_AFTER.contains(&next) || NOT_PROPERTY_BEFORE.contains(&previous) {
            continue;
        }
        for (value, names) in PROPERTY_WORDS {
            if !names.contains(&word.as_str()) {
                continue;
            }
            let weak = *value == "Commercial" || word == "home";
            let named = matches!(
                previous,
                "a" | "my"
                    | "our"
                    | "the"
                    | "its"
                    | "it's"
                    | "in"
                    | "bed"
                    | "bedroom"
                    | "storey"
                    | "floor"
                    | "detached"
                    | "terraced"
                    | "ground"
                    | "top"
                    | "first"
                    | "basement"
                    | "council"
                    | "rented"
                    | "new"
                    | "old"
                    | "victorian"
                    | "edwardian"
                    | "small"
                    | "big"
                    | "large"
                    | "this"
                    | "his"
                    | "her"
                    | "their"
                    | "mums"
                    | "mum's"
                    | "dads"
                    | "dad's"
            ) || previous.parse::<u32>().is_ok();
            if asked || (!weak && named) {
                return Some(value);
            }
        }
    }
    None
}

// ---------------------------------------------------------------------------------------------
// Phone numbers

/// The first phone number written in a text ("call 07700 900987", "on +44 20 7946 0321"), or
/// spelled out ("oh one six one, four nine six, oh seven seven two", "double seven"), with its
/// byte span.
pub fn find_phone(text: &str) -> Option<(E164, usize, usize)> {
    find_phone_in_digits(text).or_else(|| find_phone_in_words(text))
}

/// A phone number spelled out in words, digit by digit ("oh seven seven double oh ...").
fn find_phone_in_words(text: &str) -> Option<(E164, usize, usize)> {
    let tokens = tokens(text);
    let digit = |word: &str| -> Option<&'static str> {
        Some(match word {
            "zero" | "oh" | "o" | "nought" | "nil" => "0",
            "one" => "1",
            "two" => "2",
            "three" => "3",
            "four" => "4",
            "five" => "5",
            "six" => "6",
            "seven" => "7",
            "eight" => "8",
            "nine" => "9",
            _ => return None,
        })
    };
    let mut index = 0;
    while index < tokens.len() {
        let mut digits = String::new();
        let mut at = index;
        let mut last_end = None;
        while at < tokens.len() {
            let word = tokens[at].lower();
            let times = match word.as_str() {
                "double" => 2,
                "triple" | "treble" => 3,
                _ => 1,
            };
            let (token, value) = if times > 1 {
                match tokens.get(at + 1).map(Token::lower) {
                    Some(next) => match digit(&next) {
                        Some(d) => (at + 1, d.repeat(times)),
                        None => break,
                    },
                    None => break,
                }
            } else if let Some(d) = digit(&word) {
                (at, d.to_string())
            } else if word.chars().all(|c| c.is_ascii_digit()) && word.len() <= 5 {
                (at, word.clone())
            } else {
                break;
            };
            digits.push_str(&value);
            last_end = Some(tokens[token].end);
            at = token + 1;
        }
        if (10..=11).contains(&digits.len())
            && let (Some(end), Ok(number)) = (last_end, E164::parse(&digits))
        {
            return Some((number, tokens[index].start, end));
        }
        index = at.max(index + 1);
    }
    None
}

fn find_phone_in_digits(text: &str) -> Option<(E164, usize, usize)> {
    let bytes = text.as_bytes();
    let mut index = 0;
    while index < bytes.len() {
        let c = bytes[index];
        if c == b'+' || c.is_ascii_digit() || c == b'(' {
            let start = index;
            let mut end = index;
            let mut digits = 0;
            while end < bytes.len()
                && (bytes[end].is_ascii_digit()
                    || matches!(bytes[end], b' ' | b'-' | b'(' | b')' | b'.' | b'+'))
            {
                if bytes[end].is_ascii_digit() {
                    digits += 1;
                }
                end += 1;
            }
            if digits >= 10 {
                let run = text[start..end].trim_end_matches([' ', '-', '.', '(']);
                if let Ok(number) = E164::parse(run) {
                    return Some((number, start, start + run.len()));
                }
            }
            index = end.max(index + 1);
        } else {
            index += 1;
        }
    }
    None
}

// ---------------------------------------------------------------------------------------------
// Yes / no

const YES: &[&str] = &[
    "yes",
    "yeah",
    "yea",
    "yep",
    "yup",
    "y",
    "ye",
    "ya",
    "yh",
    "sure",
    "ok",
    "okay",
    "k",
    "correct",
    "aye",
    "absolutely",
    "definitely",
    "certainly",
    "affirmative",
    "yess",
    "yesss",
    "course",
];
const NO: &[&str] = &[
    "no", "nope", "nah", "n", "not", "never", "negative", "na", "nay",
];

/// Reads yes or no: "yes", "yeah", "yep", "sure", "ok", "👍" / "no", "nope", "nah", "not yet".
pub fn yes_no(text: &str) -> Option<bool> {
    let words = words(text);
    if words.is_empty() {
        if text.contains('👍') || text.contains('✅') {
            return Some(true);
        }
        if text.contains('👎') || text.contains('❌') {
            return Some(false);
        }
        return None;
    }
    if has_phrase(&words, "that's right") || has_phrase(&words, "thats right") {
        return Some(true);
    }
    // "dont think so" is a no, "i think so" a yes.
    if [
        "dont think so",
        "don't think so",
        "do not think so",
        "not really",
        "not at the moment",
        "not this time",
    ]
    .iter()
    .any(|p| has_phrase(&words, p))
    {
        return Some(false);
    }
    if ["think so", "believe so", "expect so", "i guess so"]
        .iter()
        .any(|p| has_phrase(&words, p))
    {
        return Some(true);
    }
    // Unsure is neither: "not sure", "dont know".
    if [
        "not sure",
        "dont know",
        "don't know",
        "no idea",
        "not certain",
    ]
    .iter()
    .any(|p| has_phrase(&words, p))
    {
        return None;
    }
    for word in &words {
        if YES.contains(&word.as_str()) {
            return Some(true);
        }
        if NO.contains(&word.as_str()) {
            return Some(false);
        }
    }
    None
}

// ---------------------------------------------------------------------------------------------
// Urgency

pub use crate::core::urgency::{Urgency, read as urgency};

// ---------------------------------------------------------------------------------------------
// Numbers

const NUMBER_WORDS: &[&str] = &[
    "zero",
    "one",
    "two",
    "three",
    "four",
    "five",
    "six",
    "seven",
    "eight",
    "nine",
    "ten",
    "eleven",
    "twelve",
    "thirteen",
    "fourteen",
    "fifteen",
    "sixteen",
    "seventeen",
    "eighteen",
    "nineteen",
    "twenty",
];

fn word_number(word: &str) -> Option<u32> {
    if let Ok(value) = word.parse::<u32>() {
        return Some(value);
    }
    match word {
        "a" | "an" | "single" => None,
        "couple" => Some(2),
        "both" => Some(2),
        _ => NUMBER_WORDS
            .iter()
            .position(|w| *w == word)
            .and_then(|p| u32::try_from(p).ok()),
    }
}

/// Reads a count: digits ("3", "4 in total") or words one to twenty ("two", "just the one").
pub fn number(text: &str) -> Option<u32> {
    words(text).iter().find_map(|word| word_number(word))
}

/// The count answering "How many <stem>...?": a number alone or before the thing counted ("3",
/// "3 bed", "about 9 or 10 windows"), not a number of something else ("20 tables" to "How many
/// bedrooms?", "number 12" for an address).
pub fn count_of(text: &str, stem: Option<&str>) -> Option<u32> {
    let words = words(text);
    // "sorry its 4 not 3", "actually make it 4": the number meant, not the one taken back.
    let correcting = words.iter().any(|w| {
        matches!(
            w.as_str(),
            "actually" | "sorry" | "meant" | "make" | "correction"
        )
    });
    if correcting {
        let kept: Vec<(usize, u32)> = words
            .iter()
            .enumerate()
            .filter_map(|(i, w)| Some((i, word_number(w)?)))
            .filter(|(i, _)| {
                !i.checked_sub(1)
                    .is_some_and(|p| matches!(words[p].as_str(), "not" | "than"))
            })
            .collect();
        if let Some(&(_, value)) = kept.last() {
            return Some(value);
        }
    }
    for (index, word) in words.iter().enumerate() {
        let Some(value) = word_number(word) else {
            continue;
        };
        let previous = index.checked_sub(1).map(|i| words[i].as_str());
        if matches!(previous, Some("number" | "no" | "flat" | "unit" | "house")) {
            continue;
        }
        let counted = words[index + 1..].iter().find(|w| {
            !matches!(
                w.as_str(),
                "or" | "maybe"
                    | "ish"
                    | "and"
                    | "in"
                    | "total"
                    | "altogether"
                    | "of"
                    | "them"
                    | "i"
                    | "think"
                    | "please"
                    | "pls"
                    | "thanks"
                    | "x"
                    | "to"
                    | "a"
                    | "about"
            ) && word_number(w).is_none()
        });
        match (counted, stem) {
            (Some(noun), Some(stem)) if noun.chars().all(char::is_alphabetic) => {
                // A noun next to it must be the thing counted.
                let adjacent = words.get(index + 1).is_some_and(|w| w == noun);
                if !adjacent || noun.starts_with(stem) || !crate::core::lexicon::common_word(noun) {
                    return Some(value);
                }
                if ["bed", "room", "win", "door", "flo"]
                    .iter()
                    .any(|s| noun.starts_with(s))
                    && stem.len() >= 3
                    && noun.starts_with(&stem[..3])
                {
                    return Some(value);
                }
            }
            _ => return Some(value),
        }
    }
    None
}

/// A count written just before a word starting with `stem` ("3 bed", "two windows").
pub fn number_before(text: &str, stem: &str) -> Option<u32> {
    let words = words(text);
    words.windows(2).find_map(|pair| {
        if pair[1].starts_with(stem) {
            word_number(&pair[0])
        } else {
            None
        }
    })
}

// ---------------------------------------------------------------------------------------------
// Choices

const FILLER: &[&str] = &[
    "and",
    "a",
    "an",
    "the",
    "&",
    "or",
    "of",
    "for",
    "to",
    "something",
    "else",
];

fn singular(word: &str) -> &str {
    let word = word.strip_suffix("'s").unwrap_or(word);
    if word.len() > 3 && word.ends_with('s') && !word.ends_with("ss") {
        &word[..word.len() - 1]
    } else {
        word
    }
}

/// Levenshtein distance, for close spellings ("servise").
fn distance(a: &str, b: &str) -> usize {
    let a: Vec<char> = a.chars().collect();
    let b: Vec<char> = b.chars().collect();
    let mut previous: Vec<usize> = (0..=b.len()).collect();
    for (i, ca) in a.iter().enumerate() {
        let mut current = vec![i + 1];
        for (j, cb) in b.iter().enumerate() {
            let cost = usize::from(ca != cb);
            let value = (previous[j] + cost)
                .min(previous[j + 1] + 1)
                .min(current[j] + 1);
            current.push(value);
        }
        previous = current;
    }
    previous.last().copied().unwrap_or(0)
}

fn word_matches(option: &str, said: &str, fuzzy: bool) -> bool {
    let (option, said) = (singular(option), singular(said));
    if option == said {
        return true;
    }
    if fuzzy && option.len() >= 5 {
        let allowed = if option.len() >= 8 { 2 } else { 1 };
        return distance(option, said) <= allowed;
    }
    false
}

/// True when the option is a catch-all ("Other", "Something else").
pub fn is_other(option: &str) -> bool {
    let lower = option.to_lowercase();
    lower.starts_with("other") || lower.starts_with("something else") || lower == "anything else"
}

/// Dog breeds people text (the common ones in the UK), for a choice of "Dog".
const DOG_BREEDS: &[&str] = &[
    "labrador",
    "lab",
    "retriever",
    "golden",
    "spaniel",
    "springer",
    "cocker",
    "cockapoo",
    "cavapoo",
    "cavachon",
    "cavalier",
    "collie",
    "sheepdog",
    "terrier",
    "jack russell",
    "staffie",
    "staffy",
    "staffordshire",
    "bulldog",
    "frenchie",
    "pug",
    "pugs",
    "poodle",
    "labradoodle",
    "goldendoodle",
    "dachshund",
    "sausage dog",
    "husky",
    "malamute",
    "alsatian",
    "german shepherd",
    "shepherd",
    "rottweiler",
    "doberman",
    "boxer",
    "beagle",
    "whippet",
    "lurcher",
    "greyhound",
    "chihuahua",
    "yorkie",
    "shih tzu",
    "shihtzu",
    "maltese",
    "bichon",
    "schnauzer",
    "westie",
    "border terrier",
    "pomeranian",
    "akita",
    "shiba",
    "samoyed",
    "dalmatian",
    "great dane",
    "mastiff",
    "newfoundland",
    "saint bernard",
    "weimaraner",
    "vizsla",
    "pointer",
    "setter",
    "corgi",
    "shar pei",
    "chow",
    "lhasa",
    "havanese",
    "papillon",
    "pointer",
    "puppy",
    "pup",
    "puppies",
    "dogs",
    "doggy",
    "mutt",
    "cross",
    "crossbreed",
];

/// Other words for options businesses offer, by the option's own words: what callers say for
/// "Fortnightly", "Repair", "Colour", "Nail clip" ... Longer phrases say more and win over a
/// single word ("every 2 weeks" is fortnightly, not weekly).
const OPTION_WORDS: &[(&str, &[&str])] = &[
    (
        "cat",
        &["kitten", "kittens", "kitty", "moggy", "tabby", "cats"],
    ),
    ("rabbit", &["bunny", "bunnies", "rabbits"]),
    (
        "weekly",
        &[
            "every week",
            "once a week",
            "each week",
            "every wk",
            "once a wk",
        ],
    ),
    (
        "fortnightly",
        &[
            "every 2 weeks",
            "every two weeks",
            "every other week",
            "biweekly",
            "bi-weekly",
            "twice a month",
            "every fortnight",
            "once a fortnight",
            "every 2 wks",
        ],
    ),
    (
        "monthly",
        &[
            "every month",
            "once a month",
            "every 4 weeks",
            "every four weeks",
        ],
    ),
    (
        "one off",
        &[
            "one off",
            "oneoff",
            "just once",
            "one time",
            "end of tenancy",
            "deep clean",
            "moving out",
            "move out",
            "spring clean",
            "just the once",
        ],
    ),
    (
        "repair",
        &[
            "fix",
            "broken",
            "brakes",
            "brake",
            "clutch",
            "wont start",
            "won't start",
            "noise",
            "grinding",
            "knocking",
            "warning light",
            "engine light",
            "exhaust",
            "leaking",
            "fault",
            "gearbox",
            "suspension",
            "starter",
            "alternator",
            "overheating",
            "rattling",
            "limp mode",
            "slipping",
            "squealing",
        ],
    ),
    (
        "service",
        &["servicing", "serviced", "oil change", "interim"],
    ),
    ("mot", &["m.o.t", "mot test"]),
    (
        "tyres",
        &["tyre", "tire", "tires", "puncture", "tread", "wheels"],
    ),
    (
        "colour",
        &[
            "highlights",
            "balayage",
            "dye",
            "tint",
            "roots",
            "lowlights",
            "toner",
            "bleach",
            "ombre",
            "foils",
            "color",
            "half head",
            "full head",
        ],
    ),
    ("cut", &["trim", "haircut", "fringe", "restyle"]),
    ("blow dry", &["blowdry", "blow-dry", "blowout", "blow out"]),
    ("nail clip", &["nails", "nail", "claws", "nail trim"]),
    (
        "bath and brush",
        &["bath", "wash", "bath n brush", "bath & brush"],
    ),
    ("puppy groom", &["puppy", "pup", "first groom"]),
    (
        "rats or mice",
        &["rats", "rat", "mice", "mouse", "rodents", "rodent"],
    ),
    ("wasps", &["wasp", "wasps nest", "hornets", "hornet"]),
    ("bed bugs", &["bedbugs", "bed bug", "bedbug"]),
];

/// Which option a text picks: the option's words ("cut and colour"), a close spelling
/// ("servise"), other words for it ("every 2 weeks", "highlights", "a collie", "3 bed semi"),
/// or, when `asked`, the option's number ("2") or the catch-all "Other" for an answer that names
/// none. Prefers the option that matches the most words.
pub fn choice(text: &str, options: &[String], asked: bool) -> Option<usize> {
    let said = words(text);
    if said.is_empty() {
        return None;
    }
    // Other words for the options, and breeds for a "Dog" option; the longest phrase wins.
    let mut named: Option<(usize, usize)> = None;
    for (index, option) in options.iter().enumerate() {
        let lower = option.to_lowercase().replace('-', " ");
        let mut phrases: Vec<&str> = OPTION_WORDS
            .iter()
            .filter(|(key, _)| lower == *key || lower.split(" or ").any(|alt| alt.trim() == *key))
            .flat_map(|(_, words)| words.iter().copied())
            .collect();
        if lower == "dog" || lower == "dogs" {
            phrases.extend(DOG_BREEDS);
        }
        for phrase in phrases {
            if has_phrase(&said, phrase) {
                let score = phrase.split(' ').count() + 1;
                if named.is_none_or(|(_, best)| score > best) {
                    named = Some((index, score));
                }
            }
        }
    }
    if let Some((index, score)) = named
        && score > 2
    {
        return Some(index);
    }
    if asked {
        let digits: Vec<u32> = said.iter().filter_map(|w| w.parse::<u32>().ok()).collect();
        let only_number = said
            .iter()
            .all(|w| w.parse::<u32>().is_ok() || matches!(w.as_str(), "option" | "no" | "number"));
        if only_number && digits.len() == 1 {
            let index = usize::try_from(digits[0]).ok()?.checked_sub(1)?;
            return (index < options.len()).then_some(index);
        }
    }
    let joined_said: Vec<String> = said.iter().map(|w| w.replace('-', "")).collect();
    let mut best: Option<(usize, usize)> = None;
    for (index, option) in options.iter().enumerate() {
        let lower = option.to_lowercase().replace('-', " ");
        for alternative in lower.split(" or ") {
            let parts: Vec<&str> = alternative
                .split_whitespace()
                .filter(|w| !FILLER.contains(w))
                .collect();
            if parts.is_empty() {
                continue;
            }
            let joined: String = parts.concat();
            let all = parts
                .iter()
                .all(|part| said.iter().any(|s| word_matches(part, s, asked)))
                || joined_said.iter().any(|s| word_matches(&joined, s, asked));
            if all && best.is_none_or(|(_, score)| parts.len() > score) {
                best = Some((index, parts.len()));
            }
        }
    }
    if let Some((index, _)) = best {
        return Some(index);
    }
    if let Some((index, _)) = named {
        return Some(index);
    }
    // Options that are kinds of property ("House", "Flat", "Shop or office"): the kind said.
    if let Some(kind) = property(text, asked) {
        let class = |option: &str| property(option, true);
        let found = options
            .iter()
            .position(|o| class(o) == Some(kind))
            .or_else(|| {
                // A bungalow is a house, a maisonette a flat, where the options do not name them.
                let near = match kind {
                    "Bungalow" => "House",
                    "Maisonette" => "Flat",
                    _ => return None,
                };
                options.iter().position(|o| class(o) == Some(near))
            });
        if found.is_some() {
            return found;
        }
    }
    if asked && said.iter().any(|w| w.chars().any(char::is_alphabetic)) {
        return options.iter().position(|o| is_other(o));
    }
    None
}

// ---------------------------------------------------------------------------------------------
// Dates and times

pub use crate::core::when::{When, read as when};

// ---------------------------------------------------------------------------------------------
// Names

pub use crate::core::names::{FoundName, name};

/// "dont know", "not sure", "no idea": an answer that is no value.
pub fn is_not_known(text: &str) -> bool {
    let words = words(text);
    [
        "dont know",
        "don't know",
        "not sure",
        "no idea",
        "idk",
        "dunno",
        "cant remember",
        "can't remember",
        "not yet",
    ]
    .iter()
    .any(|p| has_phrase(&words, p))
}

#[cfg(test)]
mod tests {
    use super::*;
    use chrono::{DateTime, TimeZone, Utc};

    fn now() -> DateTime<Utc> {
        // Tuesday 10 June 2025, 14:05 in London.
        Utc.with_ymd_and_hms(2025, 6, 10, 13, 5, 0).unwrap()
    }

    #[test]
    fn postcodes_in_any_case_and_spacing() {
        let found = |t: &str| find_postcodes(t, false).first().map(|f| f.value.clone());
        assert_eq!(found("sw11 4ab").as_deref(), Some("SW11 4AB"));
        assert_eq!(found("SW114AB").as_deref(), Some("SW11 4AB"));
        assert_eq!(
            found("boiler leaking in SW11 4AB, urgent").as_deref(),
            Some("SW11 4AB")
        );
        assert_eq!(found("EC1A 1BB").as_deref(), Some("EC1A 1BB"));
        assert_eq!(found("AB12 CDE"), None);
        assert_eq!(found("M14"), None);
        assert_eq!(find_postcodes("m14", true)[0].value, "M14");
        assert!(find_postcodes("3 bed house", true).is_empty());
    }

    #[test]
    fn phones_spelled_out() {
        let phone = |t: &str| find_phone(t).map(|(n, _, _)| n.as_str().to_string());
        assert_eq!(
            phone("ring the house phone, oh one six one four nine six oh seven seven two")
                .as_deref(),
            Some("+441614960772")
        );
        assert_eq!(
            phone("its oh seven seven double oh nine double oh one two three").as_deref(),
            Some("+447700900123")
        );
        assert_eq!(phone("one or two windows, maybe three"), None);
    }

    #[test]
    fn phones_in_text() {
        let (number, _, _) = find_phone("call my work phone 020 7946 0321").unwrap();
        assert_eq!(number.as_str(), "+442079460321");
        assert_eq!(
            find_phone("Call 07700 900 555 instead").unwrap().0.as_str(),
            "+447700900555"
        );
        assert_eq!(find_phone("SW11 4AB at 12/06"), None);
    }

    #[test]
    fn yes_and_no() {
        for y in [
            "yes",
            "Yeah",
            "yep!",
            "y",
            "sure",
            "ok",
            "👍",
            "prob yes, will claim",
        ] {
            assert_eq!(yes_no(y), Some(true), "{y}");
        }
        for n in ["no", "Nope", "nah not yet", "n", "no first time"] {
            assert_eq!(yes_no(n), Some(false), "{n}");
        }
        assert_eq!(yes_no("dunno"), None);
    }

    #[test]
    fn urgency_levels() {
        assert_eq!(urgency("pretty urgent", false), Some(Urgency::High));
        assert_eq!(
            urgency("not urgent really, whenever", true),
            Some(Urgency::Low)
        );
        assert_eq!(urgency("today if poss", true), Some(Urgency::High));
        assert_eq!(urgency("today if poss", false), None);
        assert_eq!(urgency("this week sometime", true), Some(Urgency::Medium));
        assert_eq!(
            urgency("as soon as possible please", true),
            Some(Urgency::High)
        );
        assert_eq!(urgency("no rush", false), Some(Urgency::Low));
    }

    #[test]
    fn numbers() {
        assert_eq!(number("two"), Some(2));
        assert_eq!(number("4 in total"), Some(4));
        assert_eq!(number("just the one"), Some(1));
        assert_eq!(number_before("a 3 bed house", "bed"), Some(3));
        assert_eq!(number_before("three new windows", "window"), None);
    }

    #[test]
    fn choices() {
        let options: Vec<String> = ["Cut", "Colour", "Cut and colour", "Blow dry"]
            .iter()
            .map(|s| s.to_string())
            .collect();
        assert_eq!(
            choice("cut and colour for saturday", &options, false),
            Some(2)
        );
        assert_eq!(choice("colour", &options, true), Some(1));
        assert_eq!(choice("2", &options, true), Some(1));
        assert_eq!(choice("just a blow dry", &options, true), Some(3));
        let pests: Vec<String> = ["Rats or mice", "Wasps", "Bed bugs", "Other"]
            .iter()
            .map(|s| s.to_string())
            .collect();
        assert_eq!(choice("bedbugs", &pests, true), Some(2));
        assert_eq!(choice("mice in the kitchen", &pests, true), Some(0));
        assert_eq!(choice("pigeons", &pests, true), Some(3));
        assert_eq!(choice("pigeons", &pests, false), None);
        let garage: Vec<String> = ["MOT", "Service"].iter().map(|s| s.to_string()).collect();
        assert_eq!(choice("servise", &garage, true), Some(1));
    }

    #[test]
    fn registrations_in_any_case_and_spacing() {
        let reg = |text: &str, asked: bool| registration(text, asked).map(|f| f.value);
        for (text, want) in [
            ("AB12 CDE", "AB12 CDE"),
            ("ab12cde", "AB12 CDE"),
            ("its ab 12 cde", "AB12 CDE"),
            ("ky19-xzt", "KY19 XZT"),
            ("a123bcd", "A123 BCD"),
            ("A1 BCD", "A1 BCD"),
            ("abc 123d", "ABC 123D"),
            ("reg is LR68 WKA thanks", "LR68 WKA"),
        ] {
            assert_eq!(reg(text, true).as_deref(), Some(want), "{text}");
        }
        // A current mark is plain enough to read unasked; older ones need the word.
        assert_eq!(
            reg("need an MOT for my golf ab12cde", false).as_deref(),
            Some("AB12 CDE")
        );
        assert_eq!(reg("golf a123bcd", false), None);
        assert_eq!(
            reg("the reg is a123bcd", false).as_deref(),
            Some("A123 BCD")
        );
        // Dateless and Northern Irish marks only as the whole answer to the question.
        assert_eq!(reg("ABZ 1234", true).as_deref(), Some("ABZ 1234"));
        assert_eq!(reg("ABZ 1234", false), None);
        assert_eq!(reg("done 12 miles", true), None);
        // Never a postcode, a time or words.
        for text in [
            "SW11 4AB",
            "e8 2ln x",
            "MOT and service",
            "dont know it off hand",
            "10am",
            "friday at 3",
            "07700 900123",
        ] {
            assert_eq!(reg(text, false), None, "{text}");
        }
        assert_eq!(reg("SW11 4AB", true), None);
    }

    #[test]
    fn property_types_in_words() {
        for (text, want) in [
            ("3 bed semi", "House"),
            ("its a flat, N7 6PL", "Flat"),
            ("top floor apartment", "Flat"),
            ("bungalow", "Bungalow"),
            ("a maisonette over 2 floors", "Maisonette"),
            ("it's for my shop", "Commercial"),
            ("office", "Commercial"),
            ("a flat above a shop", "Flat"),
            ("detached", "House"),
            ("victorian terrace", "House"),
        ] {
            assert_eq!(property(text, true), Some(want), "{text}");
        }
        assert_eq!(property("we live in a 3 bed semi", false), Some("House"));
        assert_eq!(property("my flat is in SE1", false), Some("Flat"));
        // Txt-speak for the kinds.
        assert_eq!(property("m14 5tr hse", true), Some("House"));
        assert_eq!(property("my apt has no heating", false), Some("Flat"));
        assert_eq!(property("2nd floor apt", true), Some("Flat"));
        for text in [
            "leak on the flat roof",
            "battery is flat",
            "call my office number",
            "my shop",
            "back home by 5",
        ] {
            assert_eq!(property(text, false), None, "{text}");
        }
        assert_eq!(property("flat roof leaking", true), None);
    }

    #[test]
    fn long_and_odd_text_is_safe() {
        let long = "a".repeat(2000);
        assert_eq!(clean_answer(&long).chars().count(), MAX_ANSWER);
        assert_eq!(clean_answer("👍\u{7}"), "👍");
        assert!(is_emoji_only("💇‍♀️💕"));
        assert!(!is_emoji_only("ok 👍"));
        let _ = when(&"9/9 ".repeat(500), now(), true);
        let _ = name(&"Dave ".repeat(400), true, &[]);
    }
}
