//! The reason for the call: what is left of a reply once the other values are taken out, cut
//! into pieces, cleaned of the words that lead in and close off, and kept only where it describes
//! a job or a problem.

use crate::core::clauses::{Clause, Taken};
use crate::core::slots;

/// Words that make a clause a job or a problem ("boiler leaking", "need a quote", "ankle's gone
/// again"): what goes wrong with things, homes, cars, teeth, bodies and pets, and the work the
/// trades do.
const PROBLEM: &[&str] = &[
    // Things going wrong.
    "leak",
    "leaking",
    "leaks",
    "leaked",
    "leaky",
    "burst",
    "blocked",
    "blockage",
    "broken",
    "broke",
    "breaking",
    "snapped",
    "stuck",
    "jammed",
    "seized",
    "cracked",
    "crack",
    "damaged",
    "damage",
    "dripping",
    "drips",
    "flooding",
    "flooded",
    "flood",
    "water",
    "damp",
    "mould",
    "mouldy",
    "rot",
    "rotten",
    "rotting",
    "missing",
    "blown",
    "blew",
    "fallen",
    "fell",
    "falling",
    "loose",
    "wobbly",
    "sticking",
    "sticks",
    "stiff",
    "bent",
    "worn",
    "bald",
    "faulty",
    "fault",
    "wont",
    "won't",
    "doesnt",
    "doesn't",
    "isnt",
    "isn't",
    "cant",
    "can't",
    "not",
    "no",
    "stopped",
    "stopping",
    "keeps",
    "kept",
    "tripping",
    "trips",
    "tripped",
    "dead",
    "dying",
    "sparking",
    "sparks",
    "buzzing",
    "smoking",
    "smoke",
    "burning",
    "smell",
    "smells",
    "smelly",
    "noise",
    "noisy",
    "racket",
    "banging",
    "grinding",
    "knocking",
    "squeaking",
    "rattling",
    "rattle",
    "clicking",
    "clicks",
    "flickering",
    "flickers",
    "humming",
    "whistling",
    "overflowing",
    "overheating",
    "misted",
    "come",
    "coming",
    "steamed",
    "condensation",
    "draughty",
    "draught",
    "door",
    "cold",
    "freezing",
    "lukewarm",
    "collapsed",
    "collapsing",
    "sagging",
    "gone",
    "came",
    "off",
    "lost",
    "locked",
    "lockout",
    "problem",
    "problems",
    "issue",
    "issues",
    "playing",
    "acting",
    "died",
    "dodgy",
    "fell",
    "failed",
    "fail",
    "warning",
    "light",
    // Bodies and pets.
    "sick",
    "vomiting",
    "eaten",
    "ate",
    "eating",
    "drinking",
    "limping",
    "limp",
    "bleeding",
    "injured",
    "injury",
    "hurt",
    "hurts",
    "pain",
    "painful",
    "ache",
    "aching",
    "aches",
    "sore",
    "swollen",
    "swelling",
    "lump",
    "rash",
    "itchy",
    "itching",
    "scratching",
    "infection",
    "infected",
    "toothache",
    "chipped",
    "filling",
    "crown",
    "abscess",
    "pulled",
    "twisted",
    "sprained",
    "frozen",
    "trapped",
    "tight",
    "numb",
    "pooed",
    "diarrhoea",
    "coughing",
    "sneezing",
    "lethargic",
    "hiding",
    "wheezing",
    // Pests.
    "nest",
    "infestation",
    "rats",
    "rat",
    "mice",
    "mouse",
    "wasps",
    "bees",
    "pigeons",
    "squirrels",
    "moles",
    "ants",
    "fleas",
    "bedbugs",
    "cockroaches",
    "droppings",
    // Work the trades do.
    "need",
    "needs",
    "needed",
    "needing",
    "want",
    "wanted",
    "looking",
    "quote",
    "estimate",
    "install",
    "installed",
    "installing",
    "installation",
    "fit",
    "fitted",
    "fitting",
    "replace",
    "replacing",
    "replaced",
    "replacement",
    "repair",
    "repairs",
    "repaired",
    "fix",
    "fixed",
    "fixing",
    "service",
    "serviced",
    "servicing",
    "check",
    "checked",
    "checking",
    "checkup",
    "cert",
    "certificate",
    "inspection",
    "survey",
    "cancel",
    "book",
    "booking",
    "appointment",
    "new",
    "clean",
    "cleaning",
    "cleaned",
    "groom",
    "grooming",
    "cut",
    "colour",
    "trim",
    "dry",
    "highlights",
    "move",
    "moving",
    "removal",
    "treat",
    "treatment",
    "vaccination",
    "vaccinations",
    "booster",
    "boosters",
    "jabs",
    "build",
    "built",
    "building",
    "putting",
    "done",
    "doing",
    "sorted",
    "sorting",
    "mot",
    "tyres",
    "tyre",
    "brakes",
    "pads",
    "discs",
    "clutch",
    "exhaust",
    "battery",
    "whitening",
    "extraction",
    "rewire",
    "rewiring",
    "decking",
    "fence",
    "fencing",
    "shelves",
    "worktops",
    "wardrobes",
    "windows",
    "doors",
    "gutters",
    "gutter",
    "tiles",
    "slates",
    "roof",
    "chimney",
    "boiler",
    "radiator",
    "radiators",
    "tap",
    "toilet",
    "sink",
    "shower",
    "drain",
    "pipe",
    "socket",
    "sockets",
    "fuse",
    "lights",
    "charger",
    "lock",
    "locks",
    "key",
    "keys",
    "help",
];

pub(super) const GREETINGS: &[&str] = &[
    "hi",
    "hiya",
    "hello",
    "hey",
    "morning",
    "afternoon",
    "evening",
    "good",
    "ok",
    "okay",
    "thanks",
    "thank",
    "you",
    "cheers",
    "sorry",
    "yes",
    "no",
    "yeah",
    "please",
    "so",
];

/// Words that lead into what a caller says without saying anything ("hi", "ok so", "yeah").
pub(super) const LEAD_FILLER: &[&str] = &[
    "hi",
    "hiya",
    "hello",
    "hey",
    "heya",
    "ok",
    "okay",
    "yeah",
    "yes",
    "yep",
    "ye",
    "yh",
    "no",
    "nah",
    "nope",
    "so",
    "well",
    "oh",
    "sorry",
    "right",
    "and",
    "also",
    "um",
    "erm",
    "basically",
    "lol",
    "m8",
    "mate",
    "thanks",
    "thx",
    "cheers",
    "there",
    "calling",
    "ringing",
    "texting",
    "regarding",
    "re",
    "about",
    "whatever",
    "but",
    "k",
    "aye",
    "morning",
    "afternoon",
    "evening",
    "good",
    "again",
];

/// Words that close a clause without saying anything ("please", "thanks", "x").
pub(super) const TRAIL_FILLER: &[&str] = &[
    "please", "pls", "plz", "thanks", "thx", "ta", "cheers", "x", "xx", "xxx", "lol", "mate", "m8",
    "tbh", "btw", "thankyou", "thank", "you", "if", "poss", "possible", "can", "and", "so", "but",
    "or", "too", "as", "well", "really", "though", "tho", "then",
];

/// Words after which the rest of a clause is a sigh, not the job ("sink blocked again cba wiv it").
pub(super) const SIGHS: &[&str] = &["cba", "ffs", "ugh", "argh", "fml", "honestly", "sigh"];

/// Words that ask for the business without saying what for: "can I get an appointment" is
/// no reason.
pub(super) const GENERIC: &[&str] = &[
    "appointment",
    "appt",
    "booking",
    "book",
    "booked",
    "slot",
    "visit",
    "someone",
    "somebody",
    "come",
    "coming",
    "round",
    "over",
    "look",
    "help",
    "job",
    "call",
    "ring",
    "speak",
    "talk",
    "chat",
    "sort",
    "sorted",
    "available",
    "free",
    "get",
    "can",
    "could",
    "need",
    "want",
    "like",
    "would",
    "please",
    "you",
    "me",
    "i",
    "a",
    "an",
    "the",
    "in",
    "out",
    "do",
    "to",
    "for",
    "it",
    "some",
    "any",
    "is",
    "are",
    "be",
    "have",
    "got",
    "possible",
    "poss",
    "if",
    "one",
    "please",
    "anything",
    "something",
    "thing",
    "things",
    "there",
    "here",
    "and",
    "or",
    "with",
    "my",
    "us",
    "we",
    "our",
    "ok",
    "okay",
    "just",
    "still",
    "again",
    "soon",
    "now",
    "quote",
    "price",
    "estimate",
    "cost",
    "much",
    "how",
    "what",
    "when",
    "time",
    "date",
    "day",
    "bring",
    "pop",
    "in",
    "on",
    "at",
    "of",
    "that",
    "this",
    "yes",
    "no",
    "yeah",
    "not",
    "sure",
    "know",
    "dont",
    "don't",
    "idk",
    "dunno",
    "cant",
    "can't",
    "remember",
    "off",
    "hand",
];

/// Words of a piece that say something: not fillers, greetings, time words or the generic
/// words of asking for the business.
pub(super) fn content_words(piece: &str) -> usize {
    slots::words(piece)
        .iter()
        .filter(|w| {
            !GENERIC.contains(&w.as_str())
                && !GREETINGS.contains(&w.as_str())
                && !LEAD_FILLER.contains(&w.as_str())
                && !TRAIL_FILLER.contains(&w.as_str())
                && !crate::core::when::names_a_day_or_month(w)
                && w.chars().any(char::is_alphabetic)
        })
        .count()
}

/// What is left of each non-question clause once the values found are taken out, cleaned of
/// the words that lead in and close off; in the order written, with the sentence each is in.
pub(super) fn pieces(text: &str, clauses: &[Clause<'_>], taken: &Taken) -> Vec<String> {
    sentence_pieces(text, clauses, taken)
        .into_iter()
        .map(|piece| piece.text)
        .collect()
}

/// A piece of a clause that no value took.
struct Piece {
    text: String,
    /// The sentence it is in (pieces after a comma share one).
    sentence: usize,
    /// The whole clause: nothing in its middle was taken.
    whole: bool,
}

fn sentence_pieces(text: &str, clauses: &[Clause<'_>], taken: &Taken) -> Vec<Piece> {
    let mut out = Vec::new();
    let mut sentence = 0;
    let mut previous_end = 0;
    for clause in clauses {
        // A new sentence after . ! ? or a line break; a comma keeps the sentence.
        let between = &text[previous_end.min(clause.start)..clause.start];
        if between.contains(['.', '!', '?', '\n', ';']) {
            sentence += 1;
        }
        previous_end = clause.end;
        if clause.question || taken.covers(clause.start, clause.end) {
            continue;
        }
        let rest = taken.rest(clause.start, clause.end);
        let whole = rest.len() == 1;
        for (start, end) in rest {
            let (start, end) = strip_soft_edges(text, start, end, taken);
            if start >= end {
                continue;
            }
            let piece = clean_piece(&text[start..end]);
            if !piece.is_empty() {
                out.push(Piece {
                    text: piece,
                    sentence,
                    whole,
                });
            }
        }
    }
    out
}

/// Narrows `start..end` past time and how-soon phrases (and the fillers around them) at its
/// edges: "tomorrow would be good" -> "would be good"; "boiler leaking, asap" -> "boiler leaking".
fn strip_soft_edges(text: &str, start: usize, end: usize, taken: &Taken) -> (usize, usize) {
    let tokens = slots::tokens(&text[start..end]);
    let at = |i: usize| (start + tokens[i].start, start + tokens[i].end);
    let soft = |i: usize| {
        let (s, e) = at(i);
        taken.soft_at(s, e)
    };
    let filler = |i: usize| {
        let lower = tokens[i].lower();
        LEAD_FILLER.contains(&lower.as_str()) || TRAIL_FILLER.contains(&lower.as_str())
    };
    let mut first = 0;
    let mut last = tokens.len();
    // From the left: fillers, then a soft span, then fillers again (only when a soft span is
    // found; fillers alone are clean_piece's).
    let mut probe = first;
    while probe < last && (filler(probe) || soft(probe)) {
        probe += 1;
        if soft(probe - 1) {
            first = probe;
        }
    }
    let mut probe = last;
    while probe > first && (filler(probe - 1) || soft(probe - 1)) {
        probe -= 1;
        if soft(probe) {
            last = probe;
        }
    }
    if first >= last {
        return (end, end);
    }
    (at(first).0, at(last - 1).1)
}

/// A piece without the words that lead in ("hi", "ok so", "calling about", "I need to") and
/// close off ("please", "thanks", "x"), and without a sigh at its end ("cba wiv it").
fn clean_piece(piece: &str) -> String {
    let tokens = slots::tokens(piece);
    if tokens.is_empty() {
        return String::new();
    }
    let lower: Vec<String> = tokens.iter().map(slots::Token::lower).collect();
    let mut first = 0;
    loop {
        let word = lower.get(first).map(String::as_str).unwrap_or("");
        let next = lower.get(first + 1).map(String::as_str).unwrap_or("");
        let after = lower.get(first + 2).map(String::as_str).unwrap_or("");
        // "no hot water": a "no" that starts the description is part of it.
        let answer_word = matches!(word, "no" | "nah" | "nope");
        let stands_alone = piece[tokens[first].end..].starts_with([',', '.', '!']);
        if LEAD_FILLER.contains(&word) && (!answer_word || stands_alone) {
            first += 1;
        } else if word == "i" && matches!(next, "need" | "want" | "would" | "d" | "wanted" | "was")
        {
            // "I need my boiler serviced" -> "need my boiler serviced".
            first += 1;
        } else if matches!(
            word,
            "need" | "want" | "wanted" | "wanting" | "needing" | "like"
        ) && next == "to"
        {
            // "need to book my daughter in" -> "book my daughter in".
            first += 2;
        } else if matches!(
            (word, next),
            ("would", "like") | ("d", "like") | ("id", "like") | ("i'd", "like")
        ) {
            // "would like a quote for ..." -> "a quote for ...".
            first += 2;
            if lower.get(first).is_some_and(|w| w == "to") {
                first += 1;
            }
        } else if word == "was" && matches!(next, "wondering" | "hoping") {
            first += 2;
            if matches!(after, "if" | "whether") {
                first += 1;
            }
        } else {
            break;
        }
        if first >= tokens.len() {
            return String::new();
        }
    }
    let mut last = tokens.len();
    if let Some(sigh) = (first..last).find(|&i| SIGHS.contains(&lower[i].as_str())) {
        last = sigh;
    }
    while last > first && TRAIL_FILLER.contains(&lower[last - 1].as_str()) {
        last -= 1;
    }
    if first >= last {
        return String::new();
    }
    slots::clean_answer(
        piece[tokens[first].start..tokens[last - 1].end]
            .trim_matches(|c: char| !c.is_alphanumeric()),
    )
}

/// Words that say the text is not about a job at all: a wrong number, the job sorted, a remark
/// about texting, the answer to another question ("found it").
const NOT_A_REASON: &[&str] = &[
    "wrong number",
    "didnt call",
    "didn't call",
    "never called",
    "not me",
    "dont bother",
    "don't bother",
    "sorted it",
    "sorted now",
    "all sorted",
    "no longer need",
    "found someone",
    "not needed",
    "never mind",
    "nevermind",
    "found it",
    "here it is",
    "here you go",
    "got it",
    "english not good",
    "english not",
    "english is not",
    "english isnt",
    "english isn't",
    "my english",
    "not good with texting",
    "not good at texting",
    "cant text",
    "can't text",
    "explain when",
    "tell you when",
    "rather not say",
    "easier to explain",
    "easier if you",
    "hard to explain",
    "long story",
    "im home",
    "i'm home",
    "i'm around",
    "im around",
    "i'm free",
    "im free",
    "most days",
    "in most",
    "in all day",
    "home all day",
    "wont know",
    "won't know",
    "till im home",
    "when i get home",
    "phone is dying",
    "phone's dying",
    "phone playing up",
    "phones playing up",
    "phone's playing up",
    "phone is playing up",
    "sent twice",
    "sent three times",
];

/// Words that say the whole text is not about a job: a wrong number, the job called off.
const NOT_ABOUT_A_JOB: &[&str] = &[
    "wrong number",
    "didnt call",
    "didn't call",
    "never called",
    "dont bother",
    "don't bother",
    "sorted it",
    "all sorted",
    "no longer need",
    "found someone",
    "not interested",
];

/// The whole text says it is not about a job: "sorry wrong number", "all sorted now".
pub(crate) fn not_about_a_job(text: &str) -> bool {
    let all = slots::words(text);
    NOT_ABOUT_A_JOB.iter().any(|p| slots::has_phrase(&all, p))
}

/// A piece that says something other than the job: "sorry phone playing up", "wrong number",
/// "found it".
pub(crate) fn not_a_reason(piece: &str) -> bool {
    let words = slots::words(piece);
    words.len() <= 8 && NOT_A_REASON.iter().any(|p| slots::has_phrase(&words, p))
}

/// The reason for the call: the first piece that describes a job, with the short whole pieces
/// right after it in the same sentence ("the exhaust is blowing, really loud"). Asked for, the
/// first piece that says anything will do, unless the text answered something else; not asked,
/// only a piece with a problem or job in it.
pub(super) fn find(
    text: &str,
    clauses: &[Clause<'_>],
    taken: &Taken,
    asked: bool,
    answered_else: bool,
) -> Option<String> {
    if not_about_a_job(text) {
        return None;
    }
    let pieces: Vec<Piece> = sentence_pieces(text, clauses, taken)
        .into_iter()
        .filter(|p| !not_a_reason(&p.text) && !slots::is_not_known(&p.text))
        .collect();
    let job = |piece: &str| {
        let words = slots::words(piece);
        words.iter().any(|w| PROBLEM.contains(&w.as_str())) && content_words(piece) >= 1
    };
    let first = pieces.iter().position(|p| job(&p.text)).or_else(|| {
        if asked && !answered_else {
            pieces.iter().position(|p| content_words(&p.text) >= 1)
        } else if asked {
            // Something was answered in passing, yet a whole clause no value touched still says
            // what the job is ("repointing the front of the house": the house is the property).
            pieces
                .iter()
                .position(|p| p.whole && content_words(&p.text) >= 2)
        } else {
            None
        }
    })?;
    let start = &pieces[first];
    if !asked && slots::words(&start.text).len() < 2 {
        return None;
    }
    let mut parts = vec![start.text.clone()];
    if start.whole {
        for piece in &pieces[first + 1..] {
            if piece.sentence != start.sentence
                || !piece.whole
                || slots::words(&piece.text).len() > 3
            {
                break;
            }
            parts.push(piece.text.clone());
        }
    }
    let joined = slots::clean_answer(&parts.join(", "));
    (!slots::words(&joined).is_empty()).then_some(joined)
}
