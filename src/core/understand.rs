//! Reads one reply into proposed slot values and intents (a call wanted, a question back, a
//! correction, abuse), without deciding anything: the engine in `conversation` does that.

use chrono::{DateTime, Utc};

use crate::core::lexicon;
use crate::core::profile::{DialogueProfile, Question, QuestionKind};
use crate::core::slots;
use crate::core::yesno;

/// A value the reply gives for one question.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Proposal {
    pub id: String,
    pub value: String,
    /// Machine form where there is one (a date, an E.164 number).
    pub machine: Option<String>,
    /// False when the text is kept as said because it could not be pinned down.
    pub pinned: bool,
}

/// What a reply says.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Reading {
    pub proposals: Vec<Proposal>,
    /// "just call me", "ring me asap": the caller wants a call now.
    pub call_me: bool,
    /// Question clauses the caller asked ("how much do you charge?").
    pub questions: Vec<String>,
    pub abusive: bool,
    pub rude: bool,
    /// Only emoji or punctuation.
    pub emoji_only: bool,
    /// The caller corrects something already given ("actually", "sorry, it's Sarah not Sam").
    pub correction: bool,
    /// A yes or no, for a confirmation question.
    pub yes_no: Option<bool>,
    /// Written by a machine (an auto-reply, spam, a link): nothing in it is an answer.
    pub machine: bool,
    /// In another language: nothing in it can be read.
    pub foreign: bool,
    /// "yes this number", "this no is fine": the caller's own number is the one to call,
    /// said before being asked.
    pub this_number: bool,
    /// "not sure", "dont know it off hand": the caller cannot answer now.
    pub unsure: bool,
}

/// What the engine knows when it reads a reply.
pub struct Context<'a> {
    /// Ids of the questions the last message asked.
    pub asked: &'a [String],
    /// Whether a question already has a value.
    pub filled: &'a dyn Fn(&str) -> bool,
    /// The date or time a question already has, to read a correction against ("the 19th not
    /// the 12th", "same time").
    pub earlier: &'a dyn Fn(&str) -> Option<crate::core::when::When>,
    pub now: DateTime<Utc>,
}

/// Questions that ask for a time to come in: a time in them is the time wanted.
const SLOT_QUESTIONS: &[&str] = &[
    "is there anything",
    "have you got anything",
    "have you anything",
    "got anything",
    "any chance",
    "are you free",
    "r u free",
    "are you available",
    "can you come",
    "could you come",
    "can u come",
    "can someone come",
    "can i come",
    "can i bring",
    "could i bring",
    "can i get",
    "could i get",
    "can i book",
    "any availability",
    "any slots",
    "any space",
    "do you have anything",
];

const QUESTION_STARTS: &[&str] = &[
    "how", "do", "does", "are", "is", "what", "when", "where", "who", "which", "will", "would",
    "have", "any", "whats", "what's", "wheres", "hows", "can", "could",
];
const STRONG_STARTS: &[&str] = &[
    "are u",
    "r u",
    "do u",
    "can u",
    "will u",
    "wud u",
    "would u",
    "how much",
    "how long",
    "how soon",
    "do you",
    "are you",
    "does it",
    "is there",
    "is it",
    "what",
    "whats",
    "what's",
    "when",
    "where",
    "who",
    "which",
    "will you",
    "would you",
];

const ABUSE: &[&str] = &[
    "fuck",
    "fucking",
    "fuckin",
    "fck",
    "cunt",
    "wanker",
    "twat",
    "dickhead",
    "bastard",
    "prick",
    "piss off",
    "f off",
    "sod off",
    "bugger off",
    "shut up",
    "scumbags",
    "tosser",
];
const INSULTS: &[&str] = &[
    "idiot", "idiots", "useless", "morons", "moron", "scum", "clowns",
];
const RUDE: &[&str] = &[
    "hell",
    "bloody",
    "rubbish",
    "ridiculous",
    "pathetic",
    "joke",
    "useless",
];

const CALL_ME: &[&str] = &[
    "call me",
    "ring me",
    "phone me",
    "give me a call",
    "give me a ring",
    "give me a bell",
    "call back",
    "ring back",
    "rather talk",
    "rather speak",
    "prefer to talk",
    "speak to someone",
    "talk to someone",
    "speak to a person",
];

const CORRECTION: &[&str] = &[
    "actually",
    "sorry",
    "meant",
    "correction",
    "wrong",
    "typo",
    "autocorrect",
    "mistake",
];

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

const GREETINGS: &[&str] = &[
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

fn any_phrase(words: &[String], phrases: &[&str]) -> bool {
    phrases.iter().any(|p| slots::has_phrase(words, p))
}

/// A clause of the reply and what reading it has found in it.
struct Clause<'a> {
    text: &'a str,
    start: usize,
    end: usize,
    question: bool,
}

/// Byte spans of the text that other values used: what is left is read for the reason. Hard
/// spans (a name and its marker, a postcode, a phone number, a registration, a call asked for)
/// are taken wherever they are; soft ones (a time phrase, how soon) only at a clause's edges, as
/// in the middle they are part of what the caller describes ("need an emergency appointment").
#[derive(Debug, Default)]
struct Taken {
    hard: Vec<(usize, usize)>,
    soft: Vec<(usize, usize)>,
}

impl Taken {
    fn add(&mut self, start: usize, end: usize) {
        if start < end {
            self.hard.push((start, end));
        }
    }

    fn add_soft(&mut self, start: usize, end: usize) {
        if start < end {
            self.soft.push((start, end));
        }
    }

    fn covers(&self, start: usize, end: usize) -> bool {
        self.hard.iter().any(|&(s, e)| s <= start && end <= e)
    }

    fn soft_at(&self, start: usize, end: usize) -> bool {
        self.soft.iter().any(|&(s, e)| s <= start && end <= e)
    }

    /// The parts of `start..end` that no hard span covers.
    fn rest(&self, start: usize, end: usize) -> Vec<(usize, usize)> {
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
fn split_run_ons<'a>(text: &'a str, clauses: Vec<Clause<'a>>) -> Vec<Clause<'a>> {
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

/// Widens a span to the left over the words that lead up to its value ("the postcode is", "in",
/// "reg is", "call me on").
fn absorb_left(text: &str, start: usize, lead: &[&str]) -> usize {
    let tokens = slots::tokens(&text[..start]);
    let mut from = start;
    for token in tokens.iter().rev() {
        if !text[token.end..from].trim().is_empty() && !text[token.end..from].trim().eq(",") {
            break;
        }
        if lead.contains(&token.lower().as_str()) {
            from = token.start;
        } else {
            break;
        }
    }
    from
}

const POSTCODE_LEAD: &[&str] = &[
    "in", "at", "near", "postcode", "post", "code", "is", "its", "it's", "the", "my", "were",
    "we're", "im", "i'm", "am", "by", "way", "address", "area", "round", "around", "based", "job",
    "property", "house", "from", "to", "moving",
];
const PHONE_LEAD: &[&str] = &[
    "on", "call", "ring", "phone", "me", "number", "is", "my", "its", "it's", "the", "use", "try",
    "mobile", "landline", "work", "at", "please", "pls", "no", "instead", "rather", "or",
];
const CALL_LEAD: &[&str] = &[
    "can", "could", "would", "will", "you", "u", "someone", "somebody", "anyone", "just", "pls",
    "please", "plz", "if", "easier", "rather", "prefer", "id", "i'd", "i", "be", "it", "its",
    "it's", "so", "and", "better", "best", "to", "or", "maybe", "no", "yes", "ok", "okay",
];
const REGISTRATION_LEAD: &[&str] = &[
    "reg",
    "registration",
    "is",
    "its",
    "it's",
    "the",
    "plate",
    "number",
    "my",
    "car",
    "van",
    "and",
];

/// Phrases that only say how soon: taken from the reason whichever question asked them.
const URGENCY_PHRASES: &[&str] = &[
    "no rush",
    "no hurry",
    "not urgent",
    "not that urgent",
    "not too urgent",
    "not really urgent",
    "not an emergency",
    "very urgent",
    "pretty urgent",
    "quite urgent",
    "fairly urgent",
    "bit urgent",
    "a bit urgent",
    "really urgent",
    "super urgent",
    "urgent",
    "urgently",
    "emergency",
    "asap",
    "as soon as possible",
    "in your own time",
    "whenever",
    "not fussed",
];

/// Words that lead into what a caller says without saying anything ("hi", "ok so", "yeah").
const LEAD_FILLER: &[&str] = &[
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
const TRAIL_FILLER: &[&str] = &[
    "please", "pls", "plz", "thanks", "thx", "ta", "cheers", "x", "xx", "xxx", "lol", "mate", "m8",
    "tbh", "btw", "thankyou", "thank", "you", "if", "poss", "possible", "can", "and", "so", "but",
    "or", "too", "as", "well", "really", "though", "tho", "then",
];

/// Words after which the rest of a clause is a sigh, not the job ("sink blocked again cba wiv it").
const SIGHS: &[&str] = &["cba", "ffs", "ugh", "argh", "fml", "honestly", "sigh"];

/// Words that ask for the business without saying what for: "can I get an appointment" is
/// no reason.
const GENERIC: &[&str] = &[
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

/// A message written by a machine, not the caller: an auto-reply, a signature on its own, spam.
fn is_machine_text(lower: &str) -> bool {
    const AUTO: &[&str] = &[
        "i'm driving",
        "im driving",
        "i am driving",
        "do not disturb",
        "driving with do not",
        "no longer in use",
        "no longer in service",
        "is not in service",
        "not recognised",
        "out of office",
        "out of the office",
        "on annual leave",
        "automatic reply",
        "auto-reply",
        "autoreply",
        "automated message",
        "do not reply",
        "can't talk right now",
        "cant talk right now",
        "can't talk now",
        "will get back to you",
        "i'll get back to you",
        "ill get back to you",
        "i'll call you back",
        "unpaid postage",
        "could not be delivered",
        "click here",
        "claim your",
        "you have won",
        "verify your account",
    ];
    AUTO.iter().any(|p| lower.contains(p))
        || lower.contains("http://")
        || lower.contains("https://")
        || lower.contains("www.")
        || lower.contains("bit.ly")
}

/// Takes out what is not the caller's words: HTML tags, signatures ("Sent from my iPhone"),
/// links. Each is replaced by spaces so nothing else moves.
fn strip_noise(text: &str) -> String {
    let mut out: Vec<char> = text.chars().collect();
    // HTML tags.
    let mut inside = false;
    for c in out.iter_mut() {
        if *c == '<' {
            inside = true;
        }
        if inside {
            let closing = *c == '>';
            *c = ' ';
            if closing {
                inside = false;
            }
        }
    }
    let mut out: String = out.into_iter().collect();
    let lower = out.to_lowercase();
    if lower.len() == out.len() {
        for signature in [
            "sent from my iphone",
            "sent from my ipad",
            "sent from my samsung",
            "sent from my galaxy",
            "sent from my android",
            "sent from my huawei",
            "sent from my mobile",
            "sent from my phone",
            "sent from outlook",
            "get outlook for",
        ] {
            while let Some(at) = out.to_lowercase().find(signature) {
                if out.to_lowercase().len() != out.len() {
                    break;
                }
                // To the end of the line.
                let end = out[at..].find('\n').map_or(out.len(), |e| at + e);
                let blank = " ".repeat(end - at);
                out.replace_range(at..end, &blank);
            }
        }
    }
    out
}

/// A text in another language: four or more words and hardly any of them English (names and
/// numbers aside).
fn looks_foreign(words: &[String]) -> bool {
    // Words of letters only: postcodes, registrations and numbers are no language.
    let letters: Vec<&String> = words
        .iter()
        .filter(|w| w.chars().all(char::is_alphabetic))
        .collect();
    if letters.len() < 4 {
        return false;
    }
    let english = letters
        .iter()
        .filter(|w| lexicon::common_word(w) || lexicon::given_name(w).is_some())
        .count();
    english * 4 < letters.len()
}

/// The job in a question asked about it: "how much to change the locks" -> "change the locks",
/// "do you do teeth whitening and how much is it" -> "teeth whitening", "can you fit kitchen
/// worktops" -> "fit kitchen worktops". Not a question about the business itself (areas, hours,
/// cards, "do you cover Croydon").
fn job_in_question(question: &str) -> Option<String> {
    let lower = question.to_lowercase();
    const STARTS: &[&str] = &[
        "how much would it cost to ",
        "how much would it cost for ",
        "how much would it be to ",
        "how much would it be for ",
        "how much does it cost to ",
        "how much does it cost for ",
        "how much do you charge to ",
        "how much do you charge for ",
        "how much do you charge ",
        "how much is it to ",
        "how much is it for ",
        "how much for you to ",
        "how much to ",
        "how much for ",
        "how much is a ",
        "how much is an ",
        "how much are ",
        "how much is ",
        "what do you charge for ",
        "what would it cost to ",
        "do you do ",
        "do you fit ",
        "do you install ",
        "do you repair ",
        "do you fix ",
        "do you service ",
        "do you treat ",
        "do you groom ",
        "do you clean ",
        "do you supply ",
        "do you offer ",
        "do you sell ",
        "can you fit ",
        "can you fix ",
        "can you repair ",
        "can you come and ",
        "can you ",
        "could you ",
        "are you able to ",
        "is it possible to ",
        "can i get ",
        "can i book ",
        "could i get ",
        "could i book ",
    ];
    let (prefix, rest) = STARTS
        .iter()
        .find_map(|p| lower.strip_prefix(p).map(|rest| (*p, rest)))?;
    // Cut at a second question: "... and how much is it", ", what's the price".
    let mut job = rest.trim_end_matches('?').trim().to_string();
    for cut in [
        " and how much",
        " and what",
        " and when",
        " and do you",
        " and are you",
        " and can you",
        " how much",
        " please",
        " pls",
        " thanks",
        " thx",
    ] {
        if let Some(at) = job.find(cut) {
            job.truncate(at);
        }
    }
    let job = job.trim().trim_end_matches([',', '.']).trim().to_string();
    let words = slots::words(&job);
    const ABOUT_US: &[&str] = &[
        "cover",
        "open",
        "work",
        "take",
        "accept",
        "charge",
        "do",
        "call",
        "ring",
        "text",
        "come",
        "call-out",
        "callout",
        "nhs",
        "weekends",
        "weekend",
        "saturdays",
        "sundays",
        "evenings",
        "cards",
        "card",
        "cash",
        "areas",
        "area",
        "it",
        "that",
        "this",
        "one",
        "there",
        "me",
        "tell",
        "let",
        "send",
        "give",
        "email",
    ];
    let first = words.first()?;
    if ABOUT_US.contains(&first.as_str())
        && !(prefix.starts_with("how much") && words.len() > 1 && first != "it")
    {
        return None;
    }
    let content = words
        .iter()
        .filter(|w| !GENERIC.contains(&w.as_str()) && !crate::core::when::names_a_day_or_month(w))
        .count();
    (content >= 1 && words.len() <= 12).then_some(job)
}

/// Reads a reply. The text is cut at [`slots::MAX_READ`] characters first.
pub fn read(profile: &DialogueProfile, context: &Context<'_>, text: &str) -> Reading {
    let text: String = text.chars().take(slots::MAX_READ).collect();
    let mut reading = Reading::default();
    if slots::is_emoji_only(&text) {
        reading.emoji_only = true;
        reading.yes_no = slots::yes_no(&text);
        // A thumbs up to a yes/no question just asked answers it.
        if let Some(yes) = reading.yes_no {
            for question in profile.questions.iter().filter(|q| {
                q.kind == QuestionKind::YesNo && context.asked.iter().any(|a| a == &q.id)
            }) {
                reading.proposals.push(Proposal {
                    id: question.id.clone(),
                    value: if yes { "yes" } else { "no" }.to_string(),
                    machine: None,
                    pinned: true,
                });
            }
        }
        return reading;
    }
    let lower = text.to_lowercase();
    if is_machine_text(&lower) {
        reading.machine = true;
        return reading;
    }
    let text = strip_noise(&text);
    let text = text.as_str();
    let words = slots::words(text);
    if words.is_empty() {
        reading.emoji_only = true;
        return reading;
    }
    if looks_foreign(&words) {
        reading.foreign = true;
        return reading;
    }
    reading.abusive = any_phrase(&words, ABUSE)
        || (any_phrase(&words, INSULTS) && words.iter().any(|w| w == "you" || w == "ur"));
    reading.rude = reading.abusive || any_phrase(&words, RUDE);
    let phone = slots::find_phone(text);
    reading.call_me = phone.is_none()
        && any_phrase(&words, CALL_ME)
        && !words
            .iter()
            .any(|w| matches!(w.as_str(), "didnt" | "didn't" | "never"));
    // "it's Sarah not Sam": "not" before a capitalised word.
    let all_tokens = slots::tokens(text);
    reading.correction = any_phrase(&words, CORRECTION)
        || all_tokens.windows(2).any(|pair| {
            pair[0].lower() == "not" && pair[1].text.chars().next().is_some_and(char::is_uppercase)
        });
    reading.yes_no = slots::yes_no(text);
    reading.this_number = this_number(&words);
    reading.unsure = is_not_known(text)
        || [
            "maybe",
            "might",
            "possibly",
            "waiting to hear",
            "will check",
            "find out",
        ]
        .iter()
        .any(|p| slots::has_phrase(&words, p));

    let clauses: Vec<Clause<'_>> = slots::clause_spans(text)
        .into_iter()
        .map(|(start, end)| {
            let clause = &text[start..end];
            let ends_with_question = text[end..].trim_start().starts_with('?');
            let clause_words = slots::words(clause);
            let first = clause_words.first().map(String::as_str).unwrap_or("");
            let question = clause_words.len() >= 2
                && !any_phrase(&clause_words, CALL_ME)
                && ((ends_with_question && QUESTION_STARTS.contains(&first))
                    || STRONG_STARTS.iter().any(|s| {
                        let parts: Vec<&str> = s.split(' ').collect();
                        parts.iter().zip(&clause_words).all(|(a, b)| a == b)
                            && clause_words.len() >= parts.len()
                    }));
            Clause {
                text: clause,
                start,
                end,
                question,
            }
        })
        .collect();
    let clauses = split_run_ons(text, clauses);
    reading.questions = clauses
        .iter()
        .filter(|c| c.question)
        .map(|c| c.text.to_string())
        .collect();
    if reading.abusive {
        return reading;
    }
    // The text with its question clauses blanked out: values are read from it, and every span
    // found in it is a span of `text`.
    let mut answer = text.to_string();
    for clause in clauses.iter().filter(|c| c.question) {
        answer.replace_range(
            clause.start..clause.end,
            &" ".repeat(clause.end - clause.start),
        );
    }
    let answer = answer.as_str();
    let mut taken = Taken::default();
    let asked = |id: &str| context.asked.iter().any(|a| a == id);
    let open = |id: &str| !(context.filled)(id) || reading.correction;
    let only_asked = context.asked.len() == 1;
    let option_words: Vec<String> = profile
        .questions
        .iter()
        .filter_map(|q| match &q.kind {
            QuestionKind::Choice(options) => Some(options),
            _ => None,
        })
        .flatten()
        .flat_map(|o| slots::words(o))
        .collect();

    // Phone number: a callback number wherever it appears.
    if let Some((number, start, end)) = slots::find_phone(answer) {
        if profile.question("callback").is_some() {
            reading.proposals.push(Proposal {
                id: "callback".to_string(),
                value: number.as_str().to_string(),
                machine: Some(number.as_str().to_string()),
                pinned: true,
            });
        }
        taken.add(absorb_left(text, start, PHONE_LEAD), end);
    }

    // Name.
    if profile.question("name").is_some()
        && let Some(found) = slots::name(answer, asked("name"), &option_words)
    {
        // "kate from the gym on Albert St", "Ben from Ben's Barbers": where they are from
        // goes with the name, to the end of the clause.
        let after = &answer[found.end..];
        let end = if slots::words(after).first().is_some_and(|w| w == "from") {
            clauses
                .iter()
                .find(|c| c.start <= found.end && found.end <= c.end)
                .map_or(found.end, |c| c.end)
        } else {
            found.end
        };
        taken.add(found.start, end);
        if open("name") {
            reading.proposals.push(Proposal {
                id: "name".to_string(),
                value: found.name,
                machine: None,
                pinned: true,
            });
        }
    }

    // Postcodes: in order, to the postcode questions still open (asked ones first).
    let mut postcode_questions: Vec<&Question> = profile
        .questions
        .iter()
        .filter(|q| q.kind == QuestionKind::Postcode && open(&q.id))
        .collect();
    postcode_questions.sort_by_key(|q| !asked(&q.id));
    let outward_alone = postcode_questions.first().is_some_and(|q| asked(&q.id));
    let postcodes = slots::find_postcodes(answer, outward_alone);
    for found in &postcodes {
        taken.add(absorb_left(text, found.start, POSTCODE_LEAD), found.end);
    }
    // Several postcode questions ("moving from", "moving to"): a postcode said with a direction
    // ("going to SE9 1AA, currently in SE18 3PH") goes to the question asking that way; the rest
    // in order.
    let mut unplaced: Vec<&slots::FoundPostcode> = postcodes.iter().collect();
    let mut open_questions = postcode_questions.clone();
    if postcode_questions.len() > 1 {
        for found in &postcodes {
            let Some(way) = direction_before(answer, found.start) else {
                continue;
            };
            if let Some(at) = open_questions
                .iter()
                .position(|q| direction_of_question(&q.ask) == Some(way))
            {
                let question = open_questions.remove(at);
                unplaced.retain(|p| !std::ptr::eq(*p, found));
                reading.proposals.push(Proposal {
                    id: question.id.clone(),
                    value: found.value.clone(),
                    machine: None,
                    pinned: true,
                });
            }
        }
    }
    for (question, found) in open_questions.iter().zip(unplaced) {
        reading.proposals.push(Proposal {
            id: question.id.clone(),
            value: found.value.clone(),
            machine: None,
            pinned: true,
        });
    }

    // Time phrases and how-soon words belong to no reason, whichever question took them.
    // A booking to cancel or move keeps its day: "cancel my booking for thursday".
    let about_a_booking = ["cancel", "reschedule", "move", "change", "rearrange"]
        .iter()
        .any(|w| words.iter().any(|x| x == w))
        && ["booking", "appointment", "appt"]
            .iter()
            .any(|w| words.iter().any(|x| x == w));
    if !about_a_booking {
        for (start, end) in crate::core::when::spans(answer, context.now) {
            taken.add_soft(start, end);
        }
    }
    for (start, end) in phrase_spans(answer, URGENCY_PHRASES) {
        taken.add_soft(start, end);
    }
    // A call asked for, or where to call: "can you just call me", "ring the kennels".
    for clause in clauses.iter().filter(|c| !c.question) {
        let clause_words = slots::words(clause.text);
        let instruction = clause_words
            .iter()
            .position(|w| matches!(w.as_str(), "call" | "ring" | "phone" | "text" | "try"))
            .is_some_and(|at| {
                clause_words.get(at + 1).is_some_and(|next| {
                    matches!(
                        next.as_str(),
                        "me" | "us" | "the" | "my" | "him" | "her" | "back" | "them" | "on"
                    )
                })
            });
        if !(any_phrase(&clause_words, CALL_ME) || instruction) {
            continue;
        }
        // From where the call is asked for ("can someone ring me", "call the shop") to the end
        // of the clause; what comes before is the caller's own words.
        let spans = phrase_spans(clause.text, CALL_ME);
        let at = spans.first().map(|&(s, _)| s).or_else(|| {
            slots::tokens(clause.text)
                .iter()
                .find(|t| {
                    matches!(
                        t.lower().as_str(),
                        "call" | "ring" | "phone" | "text" | "try"
                    )
                })
                .map(|t| t.start)
        });
        let start = at.map_or(clause.start, |at| {
            absorb_left(text, clause.start + at, CALL_LEAD)
        });
        taken.add(start, clause.end);
    }

    let question_count = context.asked.len();
    let mut took_asked = false;
    for question in &profile.questions {
        if matches!(question.id.as_str(), "name" | "callback" | "reason") || !open(&question.id) {
            continue;
        }
        let is_asked = asked(&question.id);
        let proposal = match &question.kind {
            QuestionKind::Urgency => slots::urgency(answer, is_asked)
                .or_else(|| someone_today(&words).then_some(slots::Urgency::High))
                .map(|u| {
                    take_short_clauses(&mut taken, &clauses, crate::core::urgency::said_outright);
                    (u.as_str().to_string(), None, true)
                }),
            QuestionKind::YesNo => {
                // In words ("I'm a patient already", "paying myself") whether asked or not; a
                // bare yes or no only to the question just asked.
                // A long text (an accidental paste) says nothing in passing.
                let in_words = (is_asked || words.len() <= 40)
                    .then(|| yesno::answer_in_words(&question.ask, answer, is_asked))
                    .flatten();
                let bare = if is_asked {
                    slots::yes_no(answer)
                } else {
                    None
                };
                in_words.or(bare).map(|yes| {
                    for clause in clauses.iter().filter(|c| !c.question) {
                        let short = slots::words(clause.text).len() <= 7;
                        let about_it = yesno::answer_in_words(&question.ask, clause.text, is_asked)
                            .is_some()
                            || slots::words(clause.text).len() <= 3
                                && slots::yes_no(clause.text).is_some();
                        if short && about_it {
                            taken.add(clause.start, clause.end);
                        }
                    }
                    (if yes { "yes" } else { "no" }.to_string(), None, true)
                })
            }
            QuestionKind::Number => {
                let stems = noun_stems(&question.ask);
                let value = if is_asked {
                    stems
                        .iter()
                        .find_map(|stem| slots::count_of(answer, Some(stem)))
                        .or_else(|| {
                            stems
                                .is_empty()
                                .then(|| slots::count_of(answer, None))
                                .flatten()
                        })
                } else {
                    // A count said with what it counts ("3 bed", "two windows"), in a question
                    // too ("how much roughly for a 2 bed move?").
                    noun_stem(&question.ask).and_then(|stem| slots::number_before(text, &stem))
                };
                value.map(|n| {
                    take_short_clauses(&mut taken, &clauses, |c| slots::number(c).is_some());
                    (n.to_string(), None, true)
                })
            }
            QuestionKind::Choice(options) => slots::choice(answer, options, is_asked)
                .or_else(|| {
                    // An option named in a question about it ("how much is an MOT?", "do you do
                    // puppy grooms?") is the one wanted.
                    clauses
                        .iter()
                        .filter(|c| c.question)
                        .find_map(|c| slots::choice(c.text, options, false))
                })
                .and_then(|i| {
                    let option = options.get(i)?;
                    take_short_clauses(&mut taken, &clauses, |c| {
                        slots::choice(c, options, false).is_some()
                    });
                    Some((option.clone(), None, true))
                }),
            QuestionKind::DateTime => {
                let earlier = (context.earlier)(&question.id);
                crate::core::when::read_with(answer, context.now, is_asked, earlier.as_ref())
                    .or_else(|| {
                        // A time in a question about coming in ("is there anything tomorrow
                        // afternoon?", "can you come after 5?") is the time wanted.
                        let asking_for_a_slot =
                            clauses.iter().filter(|c| c.question).find(|c| {
                                let w = slots::words(c.text);
                                SLOT_QUESTIONS.iter().any(|p| slots::has_phrase(&w, p))
                            })?;
                        crate::core::when::read(asking_for_a_slot.text, context.now, true)
                    })
                    .map(|w| (w.human, w.machine, true))
            }
            QuestionKind::Registration => slots::registration(answer, is_asked).map(|found| {
                taken.add(absorb_left(text, found.start, REGISTRATION_LEAD), found.end);
                (found.value, None, true)
            }),
            QuestionKind::Property => slots::property(answer, is_asked).map(|value| {
                take_short_clauses(&mut taken, &clauses, |c| slots::property(c, true).is_some());
                (value.to_string(), None, true)
            }),
            QuestionKind::Text if is_asked && only_asked => {
                let pieces = pieces(text, &clauses, &taken);
                let value = pieces
                    .into_iter()
                    .filter(|p| content_words(p) > 0)
                    .collect::<Vec<_>>()
                    .join(", ");
                let cleaned = slots::clean_answer(&value);
                (!cleaned.is_empty()).then_some((cleaned, None, true))
            }
            _ => None,
        };
        if let Some((value, machine, pinned)) = proposal {
            took_asked |= is_asked;
            reading.proposals.push(Proposal {
                id: question.id.clone(),
                value,
                machine,
                pinned,
            });
        }
    }
    // A property said in passing ("its a 3 bed semi") is no reason, asked for or not.
    if slots::property(answer, false).is_some() {
        take_short_clauses(&mut taken, &clauses, |c| {
            slots::property(c, false).is_some()
        });
    }
    // A date asked and not pinned down is kept as said, unless something else took the reply.
    for question in &profile.questions {
        if question.kind == QuestionKind::DateTime
            && asked(&question.id)
            && !reading.proposals.iter().any(|p| p.id == question.id)
            && !took_asked
            && postcodes.is_empty()
            && reading.questions.is_empty()
            && question_count <= 2
        {
            let cleaned = slots::clean_answer(answer);
            let meaningful = slots::words(&cleaned)
                .iter()
                .any(|w| !GREETINGS.contains(&w.as_str()));
            let bare_yes_no =
                slots::yes_no(&cleaned).is_some() && slots::words(&cleaned).len() <= 2;
            // Words kept as a date must speak of a time ("sometime in july, not sure yet"), not
            // "moving house" or "dont know yet".
            let timely = crate::core::when::mentions_time(&cleaned, context.now);
            if meaningful && !bare_yes_no && timely {
                reading.proposals.push(Proposal {
                    id: question.id.clone(),
                    value: cleaned,
                    machine: None,
                    pinned: false,
                });
                for clause in clauses.iter().filter(|c| !c.question) {
                    taken.add(clause.start, clause.end);
                }
            }
        }
    }

    // Reason: what no other value used, when asked; a clause describing a problem, when not. A
    // question about a job is the reason when nothing else is. Not from a message that corrects
    // an earlier answer ("sorry, it's Sarah not Sam, autocorrect!").
    let corrects = reading.correction
        && reading
            .proposals
            .iter()
            .any(|p| (context.filled)(&p.id) && p.id != "callback");
    if profile.question("reason").is_some() && !(context.filled)("reason") && !corrects {
        let is_asked = asked("reason");
        let answered_else = reading.proposals.iter().any(|p| p.id != "reason");
        if let Some(reason) = reason(text, &clauses, &taken, is_asked, answered_else) {
            reading.proposals.push(Proposal {
                id: "reason".to_string(),
                value: reason,
                machine: None,
                pinned: true,
            });
        } else if let Some(job) = reading.questions.iter().find_map(|q| job_in_question(q)) {
            // Provisional: a description the caller gives later replaces it.
            reading.proposals.push(Proposal {
                id: "reason".to_string(),
                value: slots::clean_answer(&job),
                machine: None,
                pinned: false,
            });
        }
    }
    reading
}

/// "yes this number", "this no is fine", "ring me on this one": the number texted is the one to
/// call. Not "not this number", nor with another number given (that one is read as the
/// callback).
fn this_number(words: &[String]) -> bool {
    const THIS: &[&str] = &[
        "this number",
        "this no",
        "this mobile",
        "this phone",
        "this one is fine",
        "this 1",
        "same number",
        "on here",
        "number is fine",
        "this is the best",
        "this is fine",
        "this is my mobile",
    ];
    const NEGATIONS: &[&str] = &[
        "not", "dont", "don't", "isnt", "isn't", "no", "never", "wont", "won't",
    ];
    words.iter().enumerate().any(|(at, _)| {
        THIS.iter().any(|p| {
            let parts: Vec<&str> = p.split(' ').collect();
            at + parts.len() <= words.len()
                && parts.iter().enumerate().all(|(k, w)| words[at + k] == *w)
                && !(at.saturating_sub(2)..at).any(|k| NEGATIONS.contains(&words[k].as_str()))
        })
    })
}

/// Someone asked to come today ("can u come today?", "can someone look at her today", "need
/// someone out tonight"): urgent, said in passing or in a question.
fn someone_today(words: &[String]) -> bool {
    const ASKING: &[&str] = &[
        "can you",
        "can u",
        "could you",
        "can someone",
        "could someone",
        "can somebody",
        "need someone",
        "need somebody",
        "please come",
        "come out",
        "anyone available",
        "is there anyone",
    ];
    const NOW: &[&str] = &[
        "today",
        "tonight",
        "2day",
        "now",
        "asap",
        "this morning",
        "this afternoon",
        "this evening",
    ];
    ASKING.iter().any(|p| slots::has_phrase(words, p))
        && NOW.iter().any(|p| slots::has_phrase(words, p))
}

/// Which way a postcode is said: "to", "going to", "moving into" (true) or "from", "currently
/// in", "leaving" (false), in the few words before it.
fn direction_before(text: &str, at: usize) -> Option<bool> {
    let words = slots::words(&text[..at]);
    let near = &words[words.len().saturating_sub(3)..];
    if near.iter().rev().take(2).any(|w| {
        matches!(
            w.as_str(),
            "from" | "frm" | "leaving" | "currently" | "current"
        )
    }) || near.windows(2).any(|w| w == ["out", "of"])
    {
        return Some(false);
    }
    if near
        .iter()
        .rev()
        .take(2)
        .any(|w| matches!(w.as_str(), "to" | "2" | "into" | "new"))
    {
        return Some(true);
    }
    None
}

/// Which way a postcode question asks: "...moving to?" (true), "...moving from?" (false).
fn direction_of_question(ask: &str) -> Option<bool> {
    let words = slots::words(ask);
    if words.iter().any(|w| w == "from") {
        Some(false)
    } else if words.iter().any(|w| w == "to" || w == "new") {
        Some(true)
    } else {
        None
    }
}

/// "dont know", "not sure", "no idea": an answer that is no value.
fn is_not_known(text: &str) -> bool {
    let words = slots::words(text);
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
    .any(|p| slots::has_phrase(&words, p))
}

/// Spans of the phrases (lower-case words separated by spaces) wherever they occur as words.
fn phrase_spans(text: &str, phrases: &[&str]) -> Vec<(usize, usize)> {
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
fn take_short_clauses(taken: &mut Taken, clauses: &[Clause<'_>], test: impl Fn(&str) -> bool) {
    for clause in clauses.iter().filter(|c| !c.question) {
        if slots::words(clause.text).len() <= 4 && test(clause.text) {
            taken.add(clause.start, clause.end);
        }
    }
}

/// Words of a piece that say something: not fillers, greetings, time words or the generic
/// words of asking for the business.
fn content_words(piece: &str) -> usize {
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
fn pieces(text: &str, clauses: &[Clause<'_>], taken: &Taken) -> Vec<String> {
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

fn not_a_reason(piece: &str) -> bool {
    let words = slots::words(piece);
    words.len() <= 8 && NOT_A_REASON.iter().any(|p| slots::has_phrase(&words, p))
}

/// The reason for the call: the first piece that describes a job, with the short whole pieces
/// right after it in the same sentence ("the exhaust is blowing, really loud"). Asked for, the
/// first piece that says anything will do, unless the text answered something else; not asked,
/// only a piece with a problem or job in it.
fn reason(
    text: &str,
    clauses: &[Clause<'_>],
    taken: &Taken,
    asked: bool,
    answered_else: bool,
) -> Option<String> {
    let all = slots::words(text);
    if NOT_ABOUT_A_JOB.iter().any(|p| slots::has_phrase(&all, p)) {
        return None;
    }
    let pieces: Vec<Piece> = sentence_pieces(text, clauses, taken)
        .into_iter()
        .filter(|p| !not_a_reason(&p.text) && !is_not_known(&p.text))
        .collect();
    let job = |piece: &str| {
        let words = slots::words(piece);
        words.iter().any(|w| PROBLEM.contains(&w.as_str())) && content_words(piece) >= 1
    };
    let first = pieces.iter().position(|p| job(&p.text)).or_else(|| {
        if asked && !answered_else {
            pieces.iter().position(|p| content_words(&p.text) >= 1)
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

/// The stem of the thing a number question counts: "How many bedrooms?" -> "bed".
fn noun_stem(ask: &str) -> Option<String> {
    noun_stems(ask).into_iter().next()
}

/// Every thing a number question counts: "Roughly how many windows or doors?" -> "win", "doo".
fn noun_stems(ask: &str) -> Vec<String> {
    let words = slots::words(ask);
    let Some(many) = words.iter().position(|w| w == "many") else {
        return Vec::new();
    };
    words[many + 1..]
        .iter()
        .filter(|w| {
            !matches!(
                w.as_str(),
                "or" | "and"
                    | "do"
                    | "you"
                    | "have"
                    | "are"
                    | "there"
                    | "is"
                    | "the"
                    | "in"
                    | "need"
            )
        })
        .take(3)
        .map(|w| w.chars().take(3).collect())
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::core::profile::tests::plumber;
    use chrono::TimeZone;

    fn read_text(text: &str, asked: &[&str]) -> Reading {
        let asked: Vec<String> = asked.iter().map(|s| s.to_string()).collect();
        let filled = |_: &str| false;
        let earlier = |_: &str| None;
        let context = Context {
            asked: &asked,
            filled: &filled,
            earlier: &earlier,
            now: Utc.with_ymd_and_hms(2025, 6, 10, 13, 5, 0).unwrap(),
        };
        read(&plumber(), &context, text)
    }

    fn value(reading: &Reading, id: &str) -> Option<String> {
        reading
            .proposals
            .iter()
            .find(|p| p.id == id)
            .map(|p| p.value.clone())
    }

    #[test]
    fn several_answers_in_one_message() {
        let reading = read_text(
            "Dave here, boiler leaking in SW11 4AB, pretty urgent",
            &["name"],
        );
        assert_eq!(value(&reading, "name").as_deref(), Some("Dave"));
        assert_eq!(value(&reading, "reason").as_deref(), Some("boiler leaking"));
        assert_eq!(value(&reading, "postcode").as_deref(), Some("SW11 4AB"));
        assert_eq!(value(&reading, "urgency").as_deref(), Some("high"));
    }

    #[test]
    fn odd_unicode_never_panics() {
        for text in [
            "İİİ how much to İstanbul?",
            "boiler leaking İn",
            "ǅave here",
            "ß 07700 900123 ẞ",
            "\u{0}\u{202e}hi",
        ] {
            let _ = read_text(text, &["name", "reason"]);
        }
    }

    #[test]
    fn intents() {
        assert!(read_text("just call me", &["name"]).call_me);
        assert!(!read_text("call me on 07700 900555", &["name"]).call_me);
        assert_eq!(
            read_text("how much do you charge?", &["name"])
                .questions
                .len(),
            1
        );
        assert!(read_text("piss off you idiots", &["name"]).abusive);
        assert!(read_text("👍", &["postcode"]).emoji_only);
        assert!(read_text("sorry, it's Sarah not Sam", &["reason"]).correction);
    }
}
