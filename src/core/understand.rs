//! Reads one reply into proposed slot values and intents (a call wanted, a question back, a
//! correction, abuse), without deciding anything: the engine in `conversation` does that.

use chrono::{DateTime, Utc};

use crate::core::clauses::{Clause, Taken, phrase_spans, split_run_ons, take_short_clauses};
use crate::core::lexicon;
use crate::core::profile::{DialogueProfile, Question, QuestionKind};
use crate::core::reason::{self, GENERIC, GREETINGS};
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
    "who is this",
    "whos this",
    "who's this",
    "who is that",
    "who are you",
    "who r u",
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

/// The sentences of a text: split after . ! ? or a line break ("5.30" and "e.g." stay whole
/// when no space follows).
fn sentences(text: &str) -> Vec<&str> {
    let mut out = Vec::new();
    let mut start = 0;
    let mut chars = text.char_indices().peekable();
    while let Some((i, c)) = chars.next() {
        let ends = match c {
            '\n' => true,
            '.' | '!' | '?' => chars.peek().is_none_or(|(_, next)| next.is_whitespace()),
            _ => false,
        };
        if ends {
            let end = i + c.len_utf8();
            if !text[start..end].trim().is_empty() {
                out.push(text[start..end].trim());
            }
            start = end;
        }
    }
    if !text[start..].trim().is_empty() {
        out.push(text[start..].trim());
    }
    out
}

/// The caller points at what they said or had before, or leaves it to the business, instead of
/// answering: "as I said", "same as last time", "the usual one", "the ones you had at
/// christmas", "whatever you think".
const POINTS_ELSEWHERE: &[&str] = &[
    "as i said",
    "like i said",
    "as i mentioned",
    "i already said",
    "said in my",
    "in my message",
    "in my first",
    "same as last",
    "same as before",
    "the usual",
    "whatever you think",
    "up to you",
    "last time",
    "you had",
    "you did",
    "you fixed",
    "you looked after",
];

/// A piece that tells what someone does rather than naming a thing: it starts with a person
/// doing something ("I go in first thing", "we're back on the 21st", "she sits them next
/// summer"). "he's a shih tzu" and "it's a Neff" name one.
fn is_remark(piece: &str) -> bool {
    let words: Vec<String> = slots::words(piece)
        .iter()
        .map(|w| w.chars().filter(|c| !matches!(c, '\'' | '’')).collect())
        .collect();
    let Some(first) = words.first() else {
        return false;
    };
    let naming = |next: Option<&String>| {
        next.is_some_and(|w| {
            matches!(
                w.as_str(),
                "a" | "an" | "the" | "my" | "our" | "his" | "her" | "their" | "some" | "two"
            ) || w.chars().all(|c| c.is_ascii_digit())
        })
    };
    match first.as_str() {
        "i" | "im" | "ive" | "id" | "ill" | "we" | "weve" | "wed" | "well" | "you" | "they"
        | "he" | "she" => true,
        // "we're", "they're": a person doing something, unless a thing is named next.
        "were" | "theyre" | "hes" | "shes" | "its" | "it" => !naming(words.get(1)),
        _ => false,
    }
}

/// Nothing in the text can be read as an answer: a keyword (STOP, HELP), machine text (an
/// auto-reply, a link, spam) or script.
pub(crate) fn unreadable(text: &str) -> bool {
    crate::core::keywords::keyword(text).is_some()
        || is_machine_text(&text.to_lowercase())
        || holds_code(text)
}

/// The text is a question the caller asks ("are you taking NHS patients", "how much is it?"),
/// read as the engine reads a clause.
pub(crate) fn asks(text: &str) -> bool {
    let words = slots::words(text);
    let first = words.first().map(String::as_str).unwrap_or("");
    words.len() >= 2
        && ((text.trim_end().ends_with('?') && QUESTION_STARTS.contains(&first))
            || STRONG_STARTS.iter().any(|s| {
                let parts: Vec<&str> = s.split(' ').collect();
                words.len() >= parts.len() && parts.iter().zip(&words).all(|(a, b)| a == b)
            }))
}

/// The text gives no free-text answer: the caller cannot say ("not sure of the make"), points
/// elsewhere ("as I said", "the usual one"), or is not about a job at all ("wrong number").
pub(crate) fn gives_no_answer(text: &str) -> bool {
    slots::is_not_known(text)
        || any_phrase(&slots::words(text), POINTS_ELSEWHERE)
        || reason::not_about_a_job(text)
}

fn any_phrase(words: &[String], phrases: &[&str]) -> bool {
    phrases.iter().any(|p| slots::has_phrase(words, p))
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
/// Script or query text pasted or injected ("<script>alert(1)</script>", "' or 1=1 --"): a text
/// holding one of these is read as holding nothing (the caller still gets a polite reply).
const CODE: &[&str] = &[
    "<script",
    "</script",
    "javascript:",
    "alert(",
    "onerror=",
    "onload=",
    "drop table",
    "' or 1=1",
    "\" or 1=1",
    "select * from",
];

/// Whether the text holds script or query code.
fn holds_code(text: &str) -> bool {
    let lower = text.to_lowercase();
    CODE.iter().any(|p| lower.contains(p))
}

fn strip_noise(text: &str) -> String {
    // Script or query text: nothing in it is an answer.
    if holds_code(text) {
        return String::new();
    }
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
    reading.unsure = slots::is_not_known(text)
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
    // Free text last: it is what no other reading took ("GCSE, she sits them next summer" to
    // "Which subject?" gives the level its option before the subject is read).
    let in_order = profile
        .questions
        .iter()
        .filter(|q| q.kind != QuestionKind::Text)
        .chain(
            profile
                .questions
                .iter()
                .filter(|q| q.kind == QuestionKind::Text),
        );
    for question in in_order {
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
                // "not sure of the make", "as I said in my message", "the usual lot": no answer.
                let no_answer = gives_no_answer(answer);
                let pieces = reason::pieces(text, &clauses, &taken);
                // The thing named first, with the short pieces that go on naming it ("its a
                // beko, fridge freezer"); a longer piece after it is the caller explaining
                // ("Reading and spelling mainly, the twins are in year 5 and ...").
                let named: Vec<String> = pieces
                    .into_iter()
                    .filter(|p| reason::content_words(p) > 0 && !is_remark(p))
                    .collect();
                let value = named
                    .iter()
                    .enumerate()
                    .take_while(|(i, p)| *i == 0 || slots::words(p).len() <= 2)
                    .map(|(_, p)| p.as_str())
                    .collect::<Vec<_>>()
                    .join(", ");
                let cleaned = slots::clean_answer(&value);
                (!no_answer && !cleaned.is_empty()).then_some((cleaned, None, true))
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
            // Only the sentences that speak of a time: "sometime in july, not sure yet", not the
            // "best to ring the office" that follows it.
            let timely_sentences: Vec<&str> = sentences(answer)
                .into_iter()
                .filter(|s| crate::core::when::mentions_time(s, context.now))
                .collect();
            let cleaned = if timely_sentences.is_empty() {
                slots::clean_answer(answer)
            } else {
                slots::clean_answer(&timely_sentences.join(" "))
            };
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
        if let Some(reason) = reason::find(text, &clauses, &taken, is_asked, answered_else) {
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

/// The stem of the thing a number question counts: "How many bedrooms?" -> "bed".
fn noun_stem(ask: &str) -> Option<String> {
    noun_stems(ask).into_iter().next()
}

/// Every thing a number question counts: "Roughly how many windows or doors?" -> "win", "doo".
pub(crate) fn noun_stems(ask: &str) -> Vec<String> {
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

    /// Reads `text` as the reply to the questions `asked` of `profile`, nothing known yet, on
    /// Tuesday 10 June 2025.
    fn read_for(profile: &DialogueProfile, text: &str, asked: &[&str]) -> Reading {
        let asked: Vec<String> = asked.iter().map(|s| s.to_string()).collect();
        let filled = |_: &str| false;
        let earlier = |_: &str| None;
        let context = Context {
            asked: &asked,
            filled: &filled,
            earlier: &earlier,
            now: Utc.with_ymd_and_hms(2025, 6, 10, 13, 5, 0).unwrap(),
        };
        read(profile, &context, text)
    }

    fn read_text(text: &str, asked: &[&str]) -> Reading {
        read_for(&plumber(), text, asked)
    }

    fn question(id: &str, ask: &str, kind: QuestionKind) -> crate::core::conversation::Question {
        crate::core::conversation::Question {
            id: id.to_string(),
            ask: ask.to_string(),
            kind,
            required: true,
        }
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

    /// A profile with a custom free-text question (`thing`) and a choice (`level`).
    fn custom_text(ask: &str) -> DialogueProfile {
        let q = question;
        DialogueProfile::new(
            "Acme",
            "",
            vec![
                q("name", "Who am I speaking to?", QuestionKind::Text),
                q("thing", ask, QuestionKind::Text),
                q(
                    "level",
                    "What level: primary, GCSE, A level or adult?",
                    QuestionKind::Choice(vec![
                        "Primary".to_string(),
                        "GCSE".to_string(),
                        "A level".to_string(),
                        "Adult".to_string(),
                    ]),
                ),
                q("when", "When suits you?", QuestionKind::DateTime),
            ],
        )
    }

    fn read_custom(ask: &str, text: &str) -> Option<String> {
        read_asked(ask, "thing", text)
    }

    fn read_asked(ask: &str, id: &str, text: &str) -> Option<String> {
        value(&read_for(&custom_text(ask), text, &[id]), id)
    }

    #[test]
    fn a_time_kept_as_said_is_only_the_sentences_that_speak_of_time() {
        for (text, wanted) in [
            (
                "sometime in july, not sure yet. best to ring the office on 0161 496 0733 not this mobile",
                "sometime in july, not sure yet.",
            ),
            (
                "sometime in august hopefully\nthe boiler is in the loft btw",
                "sometime in august hopefully",
            ),
            ("sometime in the summer hols", "sometime in the summer hols"),
        ] {
            let got = read_asked("What breed?", "when", text);
            assert_eq!(
                got.as_deref().map(slots::clean_answer),
                Some(slots::clean_answer(wanted)),
                "{text}"
            );
        }
    }

    #[test]
    fn a_free_text_answer_is_what_the_caller_names_not_a_remark_or_a_pointer() {
        // Answers, in several voices.
        for (ask, text, wanted) in [
            ("What breed is your dog?", "westie", "westie"),
            (
                "What make is the boiler?",
                "Worcester Bosch combi",
                "Worcester Bosch combi",
            ),
            (
                "What kind of pet is it?",
                "2 guinea pigs and a hamster",
                "2 guinea pigs and a hamster",
            ),
            ("Which subject is it for?", "mathss", "mathss"),
            (
                "Which appliance is it, and what make?",
                "hotpoint tumble dryer",
                "hotpoint tumble dryer",
            ),
        ] {
            assert_eq!(
                read_custom(ask, text).as_deref(),
                Some(wanted),
                "{ask} {text:?}"
            );
        }
        assert!(
            read_custom("What kind of pet is it?", "he's a shih tzu")
                .is_some_and(|v| v.contains("shih tzu"))
        );
        // The thing named first, with short pieces that go on naming it; not the explanation.
        for (ask, text, wanted) in [
            (
                "Which appliance is it, and what make?",
                "its a beko, fridge freezer",
                "its a beko, fridge freezer",
            ),
            (
                "Which appliance is it, and what make?",
                "Bosch washing machine, about 5 years old",
                "Bosch washing machine",
            ),
            (
                "Which subject is it for?",
                "Reading and spelling mainly, the twins are in year 5 and we'd like them up to speed",
                "Reading and spelling mainly",
            ),
        ] {
            assert_eq!(read_custom(ask, text).as_deref(), Some(wanted), "{text}");
        }
        // The caller cannot say, or points at what they said or had before: no value.
        for (ask, text) in [
            (
                "Which appliance is it, and what make?",
                "not sure of the make tbh, it came with the flat",
            ),
            (
                "Which appliance is it, and what make?",
                "the usual one lol, same as last time",
            ),
            (
                "What kind of pet is it?",
                "same as before, the usual lot 😊",
            ),
            ("What kind of pet is it?", "the ones you had at christmas!"),
            ("Which subject is it for?", "As I said in my message 🙂"),
            ("Which subject is it for?", "honestly whatever you think"),
            (
                "What make is the boiler?",
                "no idea sorry, my landlord would know",
            ),
            ("What breed is your dog?", "like i said before"),
        ] {
            assert_eq!(read_custom(ask, text), None, "{ask} {text:?}");
        }
        // What is left of a reply that answered something else is a remark, not the answer.
        for (ask, text) in [
            (
                "What kind of pet is it?",
                "Monday the 16th, I go in first thing",
            ),
            (
                "What kind of pet is it?",
                "From Saturday the 14th, we're back on the 21st",
            ),
            (
                "Which subject is it for?",
                "GCSE, she sits them next summer",
            ),
            (
                "What make is the car?",
                "friday, we need it back for the weekend",
            ),
        ] {
            assert_eq!(read_custom(ask, text), None, "{ask} {text:?}");
        }
        // Free text is read last: another question's option is that question's.
        assert_eq!(
            read_custom("Which subject is it for?", "maths, GCSE").as_deref(),
            Some("maths")
        );
    }

    #[test]
    fn a_job_naming_the_property_in_passing_is_still_the_reason() {
        let q = question;
        let profile = DialogueProfile::new(
            "Acme",
            "",
            vec![
                q("name", "Who am I speaking to?", QuestionKind::Text),
                q("reason", "What work do you need doing?", QuestionKind::Text),
                q("property", "What type of property?", QuestionKind::Property),
                q("postcode", "What's the postcode?", QuestionKind::Postcode),
            ],
        );
        let read_reason = |text: &str| value(&read_for(&profile, text, &["reason"]), "reason");
        for (text, wanted) in [
            (
                "repointing the front of the house",
                "repointing the front of the house",
            ),
            (
                "rendering the side of the bungalow",
                "rendering the side of the bungalow",
            ),
            (
                "new skirting boards throughout the flat",
                "new skirting boards throughout the flat",
            ),
        ] {
            assert_eq!(read_reason(text).as_deref(), Some(wanted), "{text}");
        }
        // Only other answers: no reason.
        for text in ["its a house, SW11 4AB", "flat, CF10 5AN"] {
            assert_eq!(read_reason(text), None, "{text}");
        }
    }

    #[test]
    fn injected_code_is_no_answer_and_questions_back_are_not_the_reason() {
        for text in [
            "<script>alert(\"hacked\")</script>",
            "<img src=x onerror=alert(1)>",
            "'; DROP TABLE leads; --",
            "' or 1=1 --",
        ] {
            let reading = read_text(text, &["reason"]);
            // Read as holding nothing (the caller still gets a polite reply), not as a machine.
            assert!(!reading.machine, "{text}");
            assert!(
                reading.proposals.is_empty(),
                "{text}: {:?}",
                reading.proposals
            );
        }
        // Words that only look like it.
        assert!(
            value(
                &read_text("alert the landlord, the alarm keeps going off", &["reason"]),
                "reason"
            )
            .is_some()
        );
        for text in ["who is this", "Who's this?", "who are you"] {
            assert_eq!(
                value(&read_text(text, &["reason"]), "reason"),
                None,
                "{text}"
            );
        }
        let reading = read_text(
            "english not so good. door is closed, keys inside",
            &["reason"],
        );
        assert!(
            value(&reading, "reason").is_some_and(|r| !r.contains("english")),
            "{:?}",
            value(&reading, "reason")
        );
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
