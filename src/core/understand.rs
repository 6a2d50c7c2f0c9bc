//! Reads one reply into proposed slot values and intents (a call wanted, a question back, a
//! correction, abuse), without deciding anything: the engine in `conversation` does that.

use chrono::{DateTime, Utc};

use crate::core::conversation::{DialogueProfile, Question, QuestionKind};
use crate::core::slots::{self, Token};

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
}

/// What the engine knows when it reads a reply.
pub struct Context<'a> {
    /// Ids of the questions the last message asked.
    pub asked: &'a [String],
    /// Whether a question already has a value.
    pub filled: &'a dyn Fn(&str) -> bool,
    pub now: DateTime<Utc>,
}

const QUESTION_STARTS: &[&str] = &[
    "how", "do", "does", "are", "is", "what", "when", "where", "who", "which", "will", "would",
    "have", "any", "whats", "what's", "wheres", "hows", "can", "could",
];
const STRONG_STARTS: &[&str] = &[
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

/// Words that make a clause a job or a problem ("boiler leaking", "need a quote").
const PROBLEM: &[&str] = &[
    "leak",
    "leaking",
    "leaks",
    "leaky",
    "burst",
    "blocked",
    "broken",
    "broke",
    "snapped",
    "stuck",
    "cracked",
    "damaged",
    "damage",
    "dripping",
    "flooding",
    "flooded",
    "water",
    "damp",
    "missing",
    "blown",
    "fallen",
    "loose",
    "wont",
    "won't",
    "doesnt",
    "doesn't",
    "isnt",
    "isn't",
    "not",
    "no",
    "tripping",
    "trips",
    "dead",
    "sparking",
    "buzzing",
    "smell",
    "smells",
    "noise",
    "noisy",
    "racket",
    "locked",
    "lost",
    "need",
    "needs",
    "needed",
    "want",
    "wanted",
    "looking",
    "quote",
    "install",
    "installed",
    "fit",
    "fitted",
    "fitting",
    "replace",
    "replacing",
    "replaced",
    "repair",
    "fix",
    "fixed",
    "service",
    "cancel",
    "book",
    "booking",
    "appointment",
    "sick",
    "eaten",
    "ate",
    "limping",
    "bleeding",
    "injured",
    "hurt",
    "pain",
    "ache",
    "toothache",
    "chipped",
    "nest",
    "infestation",
    "misted",
    "steamed",
    "overflowing",
    "mould",
    "rot",
    "rotten",
    "collapsed",
    "problem",
    "issue",
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
    /// Used up by a value other than the reason (a name, a phone number, an urgency ...).
    used: bool,
}

/// Reads a reply. The text is cut at [`slots::MAX_READ`] characters first.
pub fn read(profile: &DialogueProfile, context: &Context<'_>, text: &str) -> Reading {
    let text: String = text.chars().take(slots::MAX_READ).collect();
    let text = text.as_str();
    let mut reading = Reading::default();
    let words = slots::words(text);
    if slots::is_emoji_only(text) {
        reading.emoji_only = true;
        reading.yes_no = slots::yes_no(text);
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

    let mut clauses: Vec<Clause<'_>> = slots::clause_spans(text)
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
                used: false,
            }
        })
        .collect();
    reading.questions = clauses
        .iter()
        .filter(|c| c.question)
        .map(|c| c.text.to_string())
        .collect();
    if reading.abusive {
        return reading;
    }
    // The text without question clauses: values are read from it.
    let mut answer = String::new();
    for clause in clauses.iter().filter(|c| !c.question) {
        if !answer.is_empty() {
            answer.push_str(", ");
        }
        answer.push_str(clause.text);
    }
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
    if let Some((number, start, end)) = phone {
        if profile.question("callback").is_some() {
            reading.proposals.push(Proposal {
                id: "callback".to_string(),
                value: number.as_str().to_string(),
                machine: Some(number.as_str().to_string()),
                pinned: true,
            });
        }
        mark_used(&mut clauses, start, end);
    }

    // Name.
    if profile.question("name").is_some() && open("name") {
        let from_answer = slots::name(&answer, asked("name"), &option_words);
        if let Some(found) = from_answer {
            let matched = &answer[found.start..found.end];
            if let Some(clause) = clauses
                .iter_mut()
                .find(|c| c.text.contains(matched) || matched.contains(c.text))
            {
                clause.used = true;
            }
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
    let postcodes = slots::find_postcodes(text, outward_alone);
    let mut postcode_spans = Vec::new();
    for (question, found) in postcode_questions.iter().zip(&postcodes) {
        reading.proposals.push(Proposal {
            id: question.id.clone(),
            value: found.value.clone(),
            machine: None,
            pinned: true,
        });
        postcode_spans.push((found.start, found.end));
    }
    for &(start, end) in &postcode_spans {
        for clause in clauses.iter_mut() {
            if clause.start <= start && end <= clause.end {
                let rest = format!("{}{}", &text[clause.start..start], &text[end..clause.end]);
                if strip_filler(&rest).is_empty() {
                    clause.used = true;
                }
            }
        }
    }

    let question_count = context.asked.len();
    let without_postcodes = {
        let mut rest = answer.clone();
        for found in slots::find_postcodes(&answer, false).iter().rev() {
            rest.replace_range(found.start..found.end, " ");
        }
        rest
    };
    let mut took_asked = false;
    for question in &profile.questions {
        if matches!(question.id.as_str(), "name" | "callback" | "reason") || !open(&question.id) {
            continue;
        }
        let is_asked = asked(&question.id);
        let proposal = match &question.kind {
            QuestionKind::Urgency => slots::urgency(&answer, is_asked).map(|u| {
                mark_short_clauses(&mut clauses, |c| slots::urgency(c, false).is_some());
                (u.as_str().to_string(), None, true)
            }),
            QuestionKind::YesNo if is_asked => slots::yes_no(&answer).map(|yes| {
                mark_short_clauses(&mut clauses, |c| slots::yes_no(c).is_some());
                (if yes { "yes" } else { "no" }.to_string(), None, true)
            }),
            QuestionKind::Number => {
                let value = if is_asked {
                    slots::number(&answer)
                } else {
                    noun_stem(&question.ask).and_then(|stem| slots::number_before(&answer, &stem))
                };
                value.map(|n| (n.to_string(), None, true))
            }
            QuestionKind::Choice(options) => {
                slots::choice(&answer, options, is_asked).and_then(|i| {
                    let option = options.get(i)?;
                    mark_short_clauses(&mut clauses, |c| {
                        slots::choice(c, options, false).is_some()
                    });
                    Some((option.clone(), None, true))
                })
            }
            QuestionKind::DateTime => slots::when(&without_postcodes, context.now, is_asked)
                .map(|w| (w.human, w.machine, true)),
            QuestionKind::Registration => slots::registration(&answer, is_asked).map(|found| {
                let matched = &answer[found.start..found.end];
                for clause in clauses.iter_mut() {
                    if clause.text.contains(matched) {
                        let rest = clause.text.replacen(matched, " ", 1);
                        if strip_filler(&rest).is_empty() || slots::words(&rest).len() <= 3 {
                            clause.used = true;
                        }
                    }
                }
                (found.value, None, true)
            }),
            QuestionKind::Property => slots::property(&answer, is_asked).map(|value| {
                mark_short_clauses(&mut clauses, |c| slots::property(c, true).is_some());
                (value.to_string(), None, true)
            }),
            QuestionKind::Text if is_asked && only_asked => {
                let cleaned = slots::clean_answer(&answer);
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
    // A date asked and not pinned down is kept as said, unless something else took the reply.
    for question in &profile.questions {
        if question.kind == QuestionKind::DateTime
            && asked(&question.id)
            && !reading.proposals.iter().any(|p| p.id == question.id)
            && !took_asked
            && postcode_spans.is_empty()
            && reading.questions.is_empty()
            && question_count <= 2
        {
            let cleaned = slots::clean_answer(&answer);
            let meaningful = slots::words(&cleaned)
                .iter()
                .any(|w| !GREETINGS.contains(&w.as_str()));
            let bare_yes_no =
                slots::yes_no(&cleaned).is_some() && slots::words(&cleaned).len() <= 2;
            if meaningful && !bare_yes_no {
                reading.proposals.push(Proposal {
                    id: question.id.clone(),
                    value: cleaned,
                    machine: None,
                    pinned: false,
                });
            }
        }
    }

    // Reason: what is left, when asked; a clause describing a problem, when not. Not from a
    // message that corrects an earlier answer ("sorry, it's Sarah not Sam, autocorrect!").
    let corrects = reading.correction
        && reading
            .proposals
            .iter()
            .any(|p| (context.filled)(&p.id) && p.id != "callback");
    if profile.question("reason").is_some() && !(context.filled)("reason") && !corrects {
        for clause in clauses.iter_mut() {
            let clause_words = slots::words(clause.text);
            if any_phrase(&clause_words, CALL_ME) {
                clause.used = true;
            }
        }
        let is_asked = asked("reason");
        let mut parts: Vec<String> = Vec::new();
        for clause in clauses.iter().filter(|c| !c.question && !c.used) {
            let mut piece = clause.text.to_string();
            for &(start, end) in &postcode_spans {
                if clause.start <= start && end <= clause.end {
                    piece = format!("{}{}", &text[clause.start..start], &text[end..clause.end]);
                }
            }
            let piece = strip_greeting(piece.trim());
            let piece = strip_trailing_filler(&piece);
            if piece.is_empty() {
                continue;
            }
            let piece_words = slots::words(&piece);
            if piece_words.iter().all(|w| GREETINGS.contains(&w.as_str())) {
                continue;
            }
            let problem = piece_words.iter().any(|w| PROBLEM.contains(&w.as_str()));
            if is_asked || problem {
                parts.push(piece);
            }
        }
        // "how much to change the locks" is a question and a job.
        if parts.is_empty() {
            for question in &reading.questions {
                let lower = question.to_lowercase();
                for prefix in [
                    "how much to ",
                    "how much would it cost to ",
                    "how much is it to ",
                    "how much for you to ",
                ] {
                    if let Some(rest) = lower.strip_prefix(prefix) {
                        // Lower-casing may change lengths outside ASCII: cut the lower-case text.
                        parts.push(rest.trim_end_matches('?').trim().to_string());
                    }
                }
            }
        }
        if !parts.is_empty() {
            let joined = slots::clean_answer(&parts.join(", "));
            let meaningful = !slots::words(&joined).is_empty();
            if meaningful && (is_asked || slots::words(&joined).len() >= 2) {
                reading.proposals.push(Proposal {
                    id: "reason".to_string(),
                    value: joined,
                    machine: None,
                    pinned: true,
                });
            }
        }
    }
    reading
}

fn mark_used(clauses: &mut [Clause<'_>], start: usize, end: usize) {
    for clause in clauses.iter_mut() {
        if clause.start <= start && end <= clause.end {
            clause.used = true;
        }
    }
}

/// Marks short clauses (four words or fewer) that `test` accepts as used.
fn mark_short_clauses(clauses: &mut [Clause<'_>], test: impl Fn(&str) -> bool) {
    for clause in clauses.iter_mut() {
        if slots::words(clause.text).len() <= 4 && test(clause.text) {
            clause.used = true;
        }
    }
}

/// A clause without the words that only lead up to a value ("im at", "the postcode is", "in").
fn strip_filler(text: &str) -> String {
    const FILLER: &[&str] = &[
        "im", "i'm", "at", "in", "its", "it's", "the", "postcode", "is", "we're", "were", "by",
        "way", "on", "and", "my", "address",
    ];
    slots::words(text)
        .into_iter()
        .filter(|w| !FILLER.contains(&w.as_str()))
        .collect::<Vec<_>>()
        .join(" ")
}

fn strip_greeting(text: &str) -> String {
    let tokens: Vec<Token<'_>> = slots::tokens(text);
    let mut start = 0;
    for token in &tokens {
        if matches!(
            token.lower().as_str(),
            "hi" | "hiya" | "hello" | "hey" | "sorry" | "ok" | "okay"
        ) {
            start = token.end;
        } else {
            break;
        }
    }
    text[start..]
        .trim_start_matches([',', ' ', '.', '!'])
        .to_string()
}

fn strip_trailing_filler(text: &str) -> String {
    let mut text = text.trim().trim_end_matches([',', ' ', '-']).to_string();
    loop {
        let lower = text.to_lowercase();
        let Some(last) = lower.rsplit(' ').next() else {
            break;
        };
        if matches!(
            last,
            "in" | "at" | "on" | "near" | "for" | "to" | "by" | "postcode" | "is"
        ) && lower.contains(' ')
        {
            let cut = text.len().saturating_sub(last.len());
            match text.get(..cut) {
                Some(kept) => text = kept.trim_end().to_string(),
                None => break,
            }
        } else {
            break;
        }
    }
    text
}

/// The stem of the thing a number question counts: "How many bedrooms?" -> "bed".
fn noun_stem(ask: &str) -> Option<String> {
    let words = slots::words(ask);
    let many = words.iter().position(|w| w == "many")?;
    let noun = words.get(many + 1)?;
    Some(noun.chars().take(3).collect())
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::core::conversation::tests::plumber;
    use chrono::TimeZone;

    fn read_text(text: &str, asked: &[&str]) -> Reading {
        let asked: Vec<String> = asked.iter().map(|s| s.to_string()).collect();
        let filled = |_: &str| false;
        let context = Context {
            asked: &asked,
            filled: &filled,
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
