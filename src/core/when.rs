//! Reads when a caller wants the business, relative to when the text came, in UK time:
//! "tomorrow morning", "Friday after 3", "sat am", "first thing thursday", "12/06", "the 20th",
//! "next week sometime", "asap", "any time", "2day if u can". Days in what already happened
//! ("the fence blew down on friday", "aching since saturday") and days ruled out ("any day
//! except wednesday") are not the time wanted. Also says where in the text the time words are,
//! so that other readers leave them alone ("tomorrow would be good" is not the reason for the
//! call). Pure functions on text; "now" is passed in.

use chrono::{DateTime, Datelike, Days, NaiveDate, Utc, Weekday};
use chrono_tz::Europe::London;
use serde::{Deserialize, Serialize};

/// A date or time as the caller put it, pinned down where possible.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct When {
    /// Short and human: "Fri 13 Jun, after 3pm", "week of Mon 16 Jun", "ASAP", "any time".
    pub human: String,
    /// For machines, when there is a date: "2025-06-13", "2025-06-13T15:00", "2025-W25".
    pub machine: Option<String>,
}

/// A word of the text, lower case with texting forms written out ("2day" -> "today"), and where
/// it is.
#[derive(Debug, Clone)]
struct Word {
    text: String,
    start: usize,
    end: usize,
}

/// Words, keeping "12/06", "5:30" and "5.30" whole, each with its byte span.
fn words(text: &str) -> Vec<Word> {
    let mut out = Vec::new();
    let mut current = String::new();
    let mut start = 0;
    let chars: Vec<(usize, char)> = text.char_indices().collect();
    for (index, &(position, c)) in chars.iter().enumerate() {
        let between_digits = matches!(c, '/' | ':' | '.')
            && current.chars().last().is_some_and(|p| p.is_ascii_digit())
            && chars
                .get(index + 1)
                .is_some_and(|(_, n)| n.is_ascii_digit());
        let apostrophe = matches!(c, '\'' | '’') && !current.is_empty();
        if c.is_alphanumeric() || between_digits || apostrophe {
            if current.is_empty() {
                start = position;
            }
            current.extend(c.to_lowercase());
        } else if !current.is_empty() {
            out.push(Word {
                text: normalise(&std::mem::take(&mut current)),
                start,
                end: position,
            });
        }
    }
    if !current.is_empty() {
        out.push(Word {
            text: normalise(&current),
            start,
            end: text.len(),
        });
    }
    out
}

/// Texting forms and misspellings of time words, written out.
fn normalise(word: &str) -> String {
    let word = word.trim_end_matches(['\'', '’']).replace('’', "'");
    match word.as_str() {
        "2day" | "tday" | "tdy" => "today",
        "2moro" | "2morrow" | "2morro" | "2mrw" | "tmrw" | "tmr" | "tmw" | "tomoz" | "tommorow"
        | "tomorow" | "tommorrow" | "tomorrw" | "tomrrow" | "tmoro" | "tomo" => "tomorrow",
        "2nite" | "2night" | "tonite" | "tnight" => "tonight",
        "wknd" | "wkend" | "w/e" => "weekend",
        "nxt" => "next",
        "b4" | "bfore" => "before",
        "aftr" => "after",
        "mornin" | "morn" | "mrng" => "morning",
        "arvo" | "aft" | "afto" => "afternoon",
        "eve" | "evng" | "evenin" => "evening",
        "wk" => "week",
        "wensday" | "wedensday" | "wednsday" | "wendsday" => "wednesday",
        "thurday" | "thrusday" | "thursady" => "thursday",
        "firday" | "fridy" => "friday",
        "saterday" | "satuday" => "saturday",
        "tuseday" | "teusday" | "tueday" => "tuesday",
        "monady" | "mondy" => "monday",
        "a.s.a.p" => "asap",
        other => other,
    }
    .to_string()
}

fn weekday(word: &str) -> Option<Weekday> {
    Some(match word {
        "mon" | "monday" | "mondays" => Weekday::Mon,
        "tue" | "tues" | "tuesday" | "tuesdays" => Weekday::Tue,
        "wed" | "weds" | "wednesday" | "wednesdays" => Weekday::Wed,
        "thu" | "thur" | "thurs" | "thursday" | "thursdays" => Weekday::Thu,
        "fri" | "friday" | "fridays" => Weekday::Fri,
        "sat" | "saturday" | "saturdays" => Weekday::Sat,
        "sun" | "sunday" | "sundays" => Weekday::Sun,
        _ => return None,
    })
}

/// Whether a (lower-case) word, texting forms included ("tmrw", "wknd"), names a day, a month or
/// a part of a week: never part of a person's name.
pub fn names_a_day_or_month(word: &str) -> bool {
    let word = normalise(word);
    weekday(&word).is_some()
        || month(&word).is_some()
        || matches!(
            word.as_str(),
            "today"
                | "tomorrow"
                | "tonight"
                | "weekend"
                | "week"
                | "morning"
                | "afternoon"
                | "evening"
        )
}

/// Short forms that are also ordinary words ("sat", "sun", "wed", "mon"): a day only where the
/// words around say so.
fn ambiguous_day(word: &str) -> bool {
    matches!(word, "sat" | "sun" | "wed" | "mon")
}

fn month(word: &str) -> Option<u32> {
    const FULL: [&str; 12] = [
        "january",
        "february",
        "march",
        "april",
        "may",
        "june",
        "july",
        "august",
        "september",
        "october",
        "november",
        "december",
    ];
    if word.len() < 3 {
        return None;
    }
    let index = FULL
        .iter()
        .position(|m| m.starts_with(word) || (word == "sept" && *m == "september"))?;
    // "mar", "may", "jun" alone are too often other words; the full names and clear short forms.
    if word.len() == 3 && matches!(word, "mar" | "may") {
        return None;
    }
    u32::try_from(index + 1).ok()
}

/// "1st", "22nd", "23rd", "20th": the suffix must fit the number ("4st" is not an ordinal).
fn ordinal(word: &str) -> Option<u32> {
    let split = word.find(|c: char| !c.is_ascii_digit())?;
    let (digits, suffix) = word.split_at(split);
    let day: u32 = digits.parse().ok()?;
    let fitting = match (day % 10, day % 100) {
        (_, 11..=13) => "th",
        (1, _) => "st",
        (2, _) => "nd",
        (3, _) => "rd",
        _ => "th",
    };
    ((1..=31).contains(&day) && suffix == fitting).then_some(day)
}

/// "3", "3pm", "10am", "5:30", "5.30pm" -> (hour 0-23, minute); hours without am/pm are read
/// as a working day's hours: 1-7 afternoon, 8-11 morning, 12 noon.
fn clock(word: &str, next: Option<&str>) -> Option<(u32, u32)> {
    let (body, suffix) = if let Some(body) = word.strip_suffix("pm") {
        (body, Some(true))
    } else if let Some(body) = word.strip_suffix("am") {
        (body, Some(false))
    } else {
        match next {
            Some("pm") | Some("p.m") => (word, Some(true)),
            Some("am") | Some("a.m") => (word, Some(false)),
            _ => (word, None),
        }
    };
    let body = body.trim_end_matches("ish");
    let (hour, minute) = match body.split_once([':', '.']) {
        Some((h, m)) => (h.parse::<u32>().ok()?, m.parse::<u32>().ok()?),
        None => (body.parse::<u32>().ok()?, 0),
    };
    if !(1..=12).contains(&hour) || minute > 59 {
        return None;
    }
    let hour = match suffix {
        Some(true) if hour < 12 => hour + 12,
        Some(false) if hour == 12 => 0,
        Some(_) => hour,
        None if hour <= 7 => hour + 12,
        None => hour,
    };
    Some((hour, minute))
}

fn show_clock(hour: u32, minute: u32) -> String {
    let (h, half) = match hour {
        0 => (12, "am"),
        1..=11 => (hour, "am"),
        12 => (12, "pm"),
        _ => (hour - 12, "pm"),
    };
    if minute == 0 {
        format!("{h}{half}")
    } else {
        format!("{h}:{minute:02}{half}")
    }
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Clock {
    At,
    After,
    Before,
}

fn clock_phrase(kind: Clock, hour: u32, minute: u32) -> String {
    let shown = show_clock(hour, minute);
    match kind {
        Clock::At => shown,
        Clock::After => format!("after {shown}"),
        Clock::Before => format!("before {shown}"),
    }
}

/// The date with this day and month on or after `today` (this year, else next year).
fn date_ahead(today: NaiveDate, month: u32, day: u32) -> Option<NaiveDate> {
    let this_year = NaiveDate::from_ymd_opt(today.year(), month, day)?;
    if this_year >= today {
        Some(this_year)
    } else {
        NaiveDate::from_ymd_opt(today.year() + 1, month, day)
    }
}

/// Verbs that tell of something that already happened: a day near them is when it happened.
const PAST_EVENT: &[&str] = &[
    "blew",
    "blown",
    "came",
    "went",
    "gone",
    "broke",
    "broken",
    "fell",
    "fallen",
    "failed",
    "happened",
    "started",
    "stopped",
    "died",
    "collapsed",
    "flooded",
    "burst",
    "hurt",
    "injured",
    "cracked",
    "snapped",
    "lost",
    "noticed",
    "began",
    "saw",
    "seen",
    "rang",
    "called",
    "tried",
    "texted",
    "emailed",
    "sprained",
    "twisted",
    "pulled",
    "chipped",
    "fitted",
    "installed",
    "moved",
    "arrived",
    "found",
    "spotted",
    "heard",
    "damaged",
    "leaked",
    "tripped",
    "bit",
    "ate",
    "eaten",
    "swallowed",
    "vomited",
    "had",
    "kicked",
    "stolen",
    "jammed",
    "dropped",
    "been",
];

/// Words after a past verb that turn to what is wanted now: "broke on sunday, need it today".
const REQUEST: &[&str] = &[
    "need",
    "needs",
    "want",
    "wants",
    "can",
    "could",
    "would",
    "please",
    "pls",
    "asap",
    "come",
    "visit",
    "book",
    "pop",
    "free",
    "available",
    "suit",
    "suits",
    "best",
    "ideally",
    "prefer",
    "like",
    "fix",
    "sort",
    "sorted",
    "next",
];

/// Words that rule the time after them out: "any day except friday", "not monday".
const EXCLUDE: &[&str] = &[
    "except",
    "not",
    "apart",
    "cant",
    "can't",
    "busy",
    "exc",
    "excluding",
];

/// Words that change an earlier time: "thursday, actually friday", "make it tuesday".
const CORRECTION: &[&str] = &[
    "actually", "instead", "rather", "change", "changed", "make", "sorry", "better", "scratch",
    "meant",
];

/// Words joined to time words in a phrase ("on friday", "any time after 3", "if poss").
const CONNECTORS: &[&str] = &[
    "except", "but", "not", "apart", "on", "for", "by", "this", "next", "any", "the", "in", "at",
    "after", "before", "from", "around", "about", "until", "till", "or", "either", "ideally", "if",
    "poss", "possible", "approx", "roughly", "of", "week", "thing", "first", "early", "late",
    "later", "a", "time", "day", "days", "so", "ish", "sometime", "some", "time", "o'clock",
    "oclock", "pm", "am", "and",
];

#[derive(Debug, Default)]
struct Found {
    /// Days named, with the word they came from, in order, and whether it was a weekday's
    /// name (which gives way to a date beside it: "sat 21st").
    days: Vec<(NaiveDate, usize, bool)>,
    week: Option<NaiveDate>,
    part: Option<&'static str>,
    time: Option<(Clock, u32, u32)>,
    asap: bool,
    any_time: bool,
    /// Something said that cannot be pinned to a day ("this week", "sometime in july").
    vague: bool,
    /// A time ruled out ("except friday"): the words are kept as said.
    excluded: bool,
    correction: bool,
    /// Two days offered ("wed or thurs").
    either: bool,
    /// Word indices that are part of a time phrase.
    used: Vec<usize>,
}

fn analyse(text: &str, now: DateTime<Utc>) -> (Found, Vec<Word>) {
    let today = now.with_timezone(&London).date_naive();
    let words = words(text);
    let mut found = Found::default();
    let n = words.len();
    let word = |i: usize| words.get(i).map(|w| w.text.as_str());
    // Clause index of each word: a new clause at . , ! ? ; and line breaks.
    let mut clause = vec![0usize; n];
    for i in 1..n {
        let between = &text[words[i - 1].end..words[i].start];
        let boundary = between.contains([',', '!', '?', ';', '\n', '(', ')'])
            || between.contains(". ")
            || between.trim_end().ends_with('.');
        clause[i] = clause[i - 1] + usize::from(boundary);
    }
    let past_at = |i: usize| -> bool {
        // "since saturday", "last friday", "saturday just gone".
        let back = i.saturating_sub(3);
        if (back..i).any(|k| matches!(word(k), Some("since" | "last" | "ago" | "yesterday"))) {
            return true;
        }
        if matches!(word(i + 1), Some("gone" | "ago" | "just")) {
            return true;
        }
        // A past verb (or "since") earlier in the clause with no turn to a request between.
        let mut past = false;
        for k in (0..i).rev() {
            if clause[k] != clause[i] {
                break;
            }
            let w = words[k].text.as_str();
            if REQUEST.contains(&w) {
                break;
            }
            if PAST_EVENT.contains(&w) || w == "since" {
                past = true;
                break;
            }
        }
        past
    };
    let excluded_at = |i: usize| -> bool {
        let back = i.saturating_sub(3);
        (back..i).any(|k| word(k).is_some_and(|w| EXCLUDE.contains(&w)))
            && !(back..i).any(|k| matches!(word(k), Some("or" | "and")))
    };
    for (i, current) in words.iter().enumerate() {
        let w = current.text.as_str();
        let previous = i.checked_sub(1).and_then(word);
        let next = word(i + 1);
        if CORRECTION.contains(&w) {
            found.correction = true;
        }
        // Time words in a past clause or ruled out are noted, not used.
        let mut day: Option<NaiveDate> = None;
        match w {
            "today" | "tonight" => day = Some(today),
            "tomorrow" => day = today.checked_add_days(Days::new(1)),
            _ => {}
        }
        if let Some(target) = weekday(w) {
            let clear = !ambiguous_day(w)
                || matches!(
                    previous,
                    Some(
                        "on" | "this"
                            | "next"
                            | "for"
                            | "by"
                            | "till"
                            | "until"
                            | "or"
                            | "and"
                            | "any"
                            | "from"
                            | "thing"
                            | "actually"
                            | "say"
                            | "maybe"
                            | "try"
                            | "then"
                            | "make"
                            | "its"
                            | "it's"
                            | "how"
                            | "about"
                    )
                )
                || matches!(
                    next,
                    Some(
                        "am" | "pm"
                            | "morning"
                            | "afternoon"
                            | "evening"
                            | "or"
                            | "at"
                            | "after"
                            | "before"
                            | "would"
                            | "wud"
                            | "is"
                            | "works"
                            | "suits"
                            | "then"
                            | "please"
                            | "pls"
                            | "ok"
                            | "if"
                            | "instead"
                            | "better"
                            | "good"
                            | "gd"
                            | "fine"
                    )
                )
                || i == 0
                || i + 1 == n;
            if clear {
                let ahead = (7 + target.num_days_from_monday()
                    - today.weekday().num_days_from_monday())
                    % 7;
                let ahead = if ahead == 0 { 7 } else { ahead };
                // "next friday" on a Monday still means this Friday to most people; "friday
                // week" a week later.
                let extra = if matches!(next, Some("week")) { 7 } else { 0 };
                day = today.checked_add_days(Days::new(u64::from(ahead + extra)));
            }
        }
        // "3rd floor", "2nd time", "1st year": an ordinal of something else, not a day.
        let counts_something = matches!(
            next,
            Some(
                "floor"
                    | "flr"
                    | "floors"
                    | "time"
                    | "times"
                    | "year"
                    | "yr"
                    | "attempt"
                    | "try"
                    | "party"
                    | "gear"
                    | "class"
                    | "place"
                    | "bedroom"
                    | "bed"
                    | "house"
                    | "door"
                    | "child"
                    | "kid"
                    | "baby"
                    | "visit"
                    | "opinion"
            )
        );
        if let Some(d) = ordinal(w).filter(|_| !counts_something).or_else(|| {
            // "20 june", "june 20": a bare number next to a month.
            let number: u32 = w.parse().ok()?;
            let by_month = next.and_then(month).or_else(|| previous.and_then(month));
            ((1..=31).contains(&number) && by_month.is_some()).then_some(number)
        }) {
            let named = next
                .and_then(month)
                .or_else(|| word(i + 2).filter(|_| next == Some("of")).and_then(month))
                .or_else(|| previous.and_then(month));
            day = match named {
                Some(m) => date_ahead(today, m, d),
                // No month: this month's if it is still to come, else next month's (not this
                // month's a year on: "the 3rd" on the 10th is the 3rd of next month).
                None => NaiveDate::from_ymd_opt(today.year(), today.month(), d)
                    .filter(|date| *date >= today)
                    .or_else(|| {
                        let later = today.checked_add_months(chrono::Months::new(1))?;
                        NaiveDate::from_ymd_opt(later.year(), later.month(), d)
                    }),
            };
            if let Some(m) = named
                && let Some(k) = [i + 1, i + 2, i.wrapping_sub(1)]
                    .into_iter()
                    .find(|&k| word(k).and_then(month) == Some(m))
            {
                found.used.push(k);
            }
        }
        if let Some((d, rest)) = w.split_once('/') {
            let m = rest.split('/').next().unwrap_or("");
            if let (Ok(d), Ok(m)) = (d.parse::<u32>(), m.parse::<u32>()) {
                day = date_ahead(today, m, d);
            }
        }
        if let Some(date) = day {
            if past_at(i) {
                continue;
            }
            if excluded_at(i) {
                found.excluded = true;
                found.used.push(i);
                continue;
            }
            if w == "tonight" {
                found.part = Some("evening");
            }
            found.days.push((date, i, weekday(w).is_some()));
            found.used.push(i);
            if matches!(previous, Some("or")) || matches!(next, Some("or")) {
                found.either = found.days.len() > 1 || matches!(next, Some("or"));
            }
            continue;
        }
        if month(w).is_some() && !found.used.contains(&i) {
            if !past_at(i) {
                found.vague = true;
                found.used.push(i);
            }
            continue;
        }
        let part_of_day = matches!(
            w,
            "morning"
                | "mornings"
                | "afternoon"
                | "afternoons"
                | "lunchtime"
                | "lunch"
                | "evening"
                | "evenings"
                | "night"
                | "nights"
        );
        // "last night", "since this morning": when it happened, not when it is wanted.
        if part_of_day && (past_at(i) || matches!(previous, Some("last" | "yesterday"))) {
            continue;
        }
        match w {
            "morning" | "mornings" => found.part = Some("morning"),
            "am" if previous
                .is_some_and(|p| weekday(p).is_some() || p == "tomorrow" || p == "today") =>
            {
                found.part = Some("morning")
            }
            "pm" if previous
                .is_some_and(|p| weekday(p).is_some() || p == "tomorrow" || p == "today") =>
            {
                found.part = Some("afternoon")
            }
            "afternoon" | "afternoons" | "lunchtime" | "lunch" => found.part = Some("afternoon"),
            "evening" | "evenings" | "night" | "nights" => found.part = Some("evening"),
            "first" if next == Some("thing") => found.part = Some("morning"),
            _ => {}
        }
        if matches!(
            w,
            "morning"
                | "mornings"
                | "afternoon"
                | "afternoons"
                | "lunchtime"
                | "evening"
                | "evenings"
                | "night"
                | "nights"
        ) || (w == "first" && next == Some("thing"))
            || (matches!(w, "am" | "pm") && found.part.is_some())
        {
            found.used.push(i);
            if w == "first" {
                found.used.push(i + 1);
            }
            continue;
        }
        // "the week after next": the Monday two weeks on.
        if w == "week" && next == Some("after") && word(i + 2) == Some("next") {
            if !past_at(i) {
                let monday_ahead = 7 - today.weekday().num_days_from_monday() + 7;
                found.week = today.checked_add_days(Days::new(u64::from(monday_ahead)));
                found.used.extend([i, i + 1, i + 2]);
            }
            continue;
        }
        if w == "next" && matches!(next, Some("week" | "wk")) {
            if !past_at(i) {
                let monday_ahead = 7 - today.weekday().num_days_from_monday();
                found.week = today.checked_add_days(Days::new(u64::from(monday_ahead)));
                found.used.extend([i, i + 1]);
            }
            continue;
        }
        if matches!(
            w,
            "week" | "weekend" | "weekends" | "weekday" | "weekdays" | "month" | "fortnight"
        ) && !found.used.contains(&i)
        {
            if !past_at(i) && !matches!(previous, Some("last")) {
                found.vague = true;
                found.used.push(i);
            }
            continue;
        }
        // Clock times said the British way: "half 3" (3:30), "half past 3", "quarter past 4",
        // "quarter to 5".
        let offset = match (w, next) {
            ("half", Some("past")) => Some((30, i + 2)),
            ("half", _) => Some((30, i + 1)),
            ("quarter", Some("past")) => Some((15, i + 2)),
            ("quarter", Some("to")) => Some((-15, i + 2)),
            _ => None,
        };
        if let Some((minutes, at)) = offset
            && let Some(hour_word) = word(at)
            && hour_word.chars().next().is_some_and(|c| c.is_ascii_digit())
            && let Some((h, 0)) = clock(hour_word, word(at + 1))
        {
            if past_at(i) {
                continue;
            }
            let (h, m) = if minutes < 0 {
                ((h + 23) % 24, 45)
            } else {
                (h, minutes as u32)
            };
            let kind = match previous {
                Some("after" | "from" | "past") => Clock::After,
                Some("before" | "by" | "until" | "till") => Clock::Before,
                _ => Clock::At,
            };
            found.time = Some((kind, h, m));
            found.used.extend(i..=at);
            if i > 0 && kind != Clock::At {
                found.used.push(i - 1);
            }
            if matches!(word(at + 1), Some("am" | "pm")) {
                found.used.push(at + 1);
            }
            continue;
        }
        // Clock times: "after 3", "at 2pm", "5:30", "3ish".
        let kind = match previous {
            Some("after" | "from" | "past") => Some(Clock::After),
            Some("before" | "by" | "until" | "till") => Some(Clock::Before),
            Some("at" | "about" | "around" | "for" | "approx" | "roughly") => Some(Clock::At),
            _ => None,
        };
        let written = w.ends_with("am")
            || w.ends_with("pm")
            || w.ends_with("ish")
            || w.contains(':')
            || (w.contains('.') && w.chars().next().is_some_and(|c| c.is_ascii_digit()))
            || matches!(next, Some("am" | "pm" | "o'clock" | "oclock" | "ish"));
        // "about 5 years old", "for 3 weeks": a length of time, not a clock time.
        let duration = matches!(
            next,
            Some(
                "year"
                    | "years"
                    | "yr"
                    | "yrs"
                    | "month"
                    | "months"
                    | "week"
                    | "weeks"
                    | "wk"
                    | "wks"
                    | "day"
                    | "days"
                    | "hour"
                    | "hours"
                    | "hr"
                    | "hrs"
                    | "min"
                    | "mins"
                    | "minute"
                    | "minutes"
            )
        );
        if (kind.is_some() || written)
            && !duration
            && !found.used.contains(&i)
            && w.chars().next().is_some_and(|c| c.is_ascii_digit())
            && !w.contains('/')
            && ordinal(w).is_none()
            && let Some((h, m)) = clock(w, next)
        {
            if past_at(i) {
                continue;
            }
            let mut kind = kind.unwrap_or(Clock::At);
            let rest: Vec<&str> = (i + 1..n.min(i + 4)).filter_map(word).collect();
            if rest
                .windows(2)
                .any(|p| p == ["or", "later"] || p == ["or", "after"])
                || rest.first() == Some(&"onwards")
            {
                kind = Clock::After;
            }
            found.time = Some((kind, h, m));
            found.used.push(i);
            if i > 0 && (kind != Clock::At || matches!(previous, Some("at" | "about" | "around"))) {
                found.used.push(i - 1);
            }
            if matches!(next, Some("am" | "pm" | "o'clock" | "oclock" | "ish")) {
                found.used.push(i + 1);
            }
            continue;
        }
        // ASAP and any time.
        let phrase = |p: &str| {
            let parts: Vec<&str> = p.split(' ').collect();
            parts
                .iter()
                .enumerate()
                .all(|(k, part)| word(i + k) == Some(*part))
                .then_some(parts.len())
        };
        for p in [
            "asap",
            "urgently",
            "immediately",
            "as soon as possible",
            "as soon as poss",
            "as soon as you can",
            "soon as poss",
            "soon as possible",
            "asap please",
            "right away",
            "straight away",
            "right now",
            "emergency",
        ] {
            if let Some(len) = phrase(p) {
                found.asap = true;
                found.used.extend(i..i + len);
            }
        }
        for p in [
            "any time",
            "anytime",
            "whenever",
            "any day",
            "flexible",
            "dont mind",
            "don't mind",
            "not fussed",
            "any",
        ] {
            if let Some(len) = phrase(p)
                && (p != "any"
                    || matches!(next, Some("weekday" | "morning" | "afternoon" | "evening")))
            {
                if p != "any" {
                    found.any_time = true;
                }
                found.used.extend(i..i + len);
            }
        }
        if matches!(w, "sometime" | "soon" | "soonish") {
            found.vague = true;
            found.used.push(i);
        }
        if w == "this" && matches!(next, Some("week" | "weekend")) {
            found.vague = true;
            found.used.extend([i, i + 1]);
        }
    }
    // A weekday's name beside a date is the date's ("sat 21st", "friday 1st august").
    let dated: Vec<usize> = found
        .days
        .iter()
        .filter(|(_, _, named)| !named)
        .map(|(_, i, _)| *i)
        .collect();
    found
        .days
        .retain(|(_, i, named)| !*named || !dated.iter().any(|d| d.abs_diff(*i) <= 2));
    // Connectors next to time words belong to the phrase ("on friday", "any time after 3").
    let mut used: Vec<usize> = found.used.clone();
    loop {
        let mut grew = false;
        for &i in &used.clone() {
            for k in [i.wrapping_sub(1), i + 1] {
                if k < n
                    && !used.contains(&k)
                    && clause[k] == clause[i]
                    && CONNECTORS.contains(&words[k].text.as_str())
                {
                    used.push(k);
                    grew = true;
                }
            }
        }
        if !grew {
            break;
        }
    }
    used.sort_unstable();
    used.dedup();
    found.used = used;
    (found, words)
}

/// Reads a date or time relative to `now`. `None` when there is nothing it can pin down (the
/// caller keeps the text as said). Not `asked`, only a clear day or week counts ("for
/// saturday"), never one in what already happened.
pub fn read(text: &str, now: DateTime<Utc>, asked: bool) -> Option<When> {
    read_with(text, now, asked, None)
}

/// As [`read`], knowing what the caller said before (`previous`): a correction that names only
/// a day of the month takes the earlier month ("sorry its the 19th not the 12th"), and "same
/// time" the earlier time.
pub fn read_with(
    text: &str,
    now: DateTime<Utc>,
    asked: bool,
    previous: Option<&When>,
) -> Option<When> {
    let (mut found, words) = analyse(text, now);
    let lower: Vec<&str> = words.iter().map(|w| w.text.as_str()).collect();
    let said = |p: &str| {
        let parts: Vec<&str> = p.split(' ').collect();
        lower.windows(parts.len()).any(|w| w == parts.as_slice())
    };
    // Unasked, a time counts when it is plainly a preference ("any time after 3 is good for me",
    // "asap"), or a day or week is named; not in a long rant.
    let preference = [
        "good",
        "suits",
        "suit",
        "works",
        "best",
        "free",
        "available",
        "ideally",
        "prefer",
        "ok",
        "fine",
    ]
    .iter()
    .any(|w| lower.contains(w))
        || found.asap
        || found.any_time && lower.len() <= 6;
    let pinned = !found.days.is_empty() || found.week.is_some();
    if !asked
        && (!(pinned || preference && (found.time.is_some() || found.asap || found.any_time))
            || words.len() > 80)
    {
        return None;
    }
    if let Some(previous) = previous.and_then(|p| p.machine.as_deref()) {
        let earlier = NaiveDate::parse_from_str(previous.get(..10).unwrap_or(""), "%Y-%m-%d").ok();
        // "the 19th" after "12th july": july.
        if let Some(earlier) = earlier
            && !lower.iter().any(|w| month(w).is_some())
        {
            for (day, index, named) in found.days.iter_mut() {
                let by_ordinal = !*named && lower.get(*index).is_some_and(|w| ordinal(w).is_some());
                if by_ordinal
                    && let Some(moved) =
                        NaiveDate::from_ymd_opt(earlier.year(), earlier.month(), day.day())
                    && moved >= now.with_timezone(&London).date_naive()
                {
                    *day = moved;
                }
            }
        }
        // "friday, same time": the earlier time.
        if said("same time")
            && found.time.is_none()
            && let Some((h, m)) = previous
                .get(11..16)
                .and_then(|t| t.split_once(':'))
                .and_then(|(h, m)| Some((h.parse().ok()?, m.parse().ok()?)))
        {
            found.time = Some((Clock::At, h, m));
        }
    }
    // "asap" with a deadline ("asap, need it for work tmrw") is ASAP; with a time of day it is
    // an appointment.
    // ...and "emergency appointment today" is today.
    let only_today = found
        .days
        .iter()
        .all(|(d, _, _)| *d == now.with_timezone(&London).date_naive());
    let deadline = found.days.iter().any(|(_, i, _)| {
        (i.saturating_sub(3)..*i).any(|k| {
            matches!(
                lower.get(k).copied(),
                Some("for" | "by" | "before" | "until" | "till" | "need")
            )
        })
    });
    if found.asap
        && found.time.is_none()
        && found.part.is_none()
        && (found.days.is_empty() || deadline || !only_today)
    {
        return Some(When {
            human: "ASAP".to_string(),
            machine: None,
        });
    }
    let distinct: Vec<NaiveDate> = {
        let mut days: Vec<NaiveDate> = found.days.iter().map(|(d, _, _)| *d).collect();
        days.dedup();
        days
    };
    let today = now.with_timezone(&London).date_naive();
    let day = match distinct.as_slice() {
        [] => None,
        [one] => Some(*one),
        [first, .., last] => {
            if found.correction {
                Some(*last)
            } else if found.either {
                let tomorrow = today.checked_add_days(Days::new(1));
                if distinct.len() == 2 && *first == today && Some(*last) == tomorrow {
                    return Some(When {
                        human: "ASAP".to_string(),
                        machine: None,
                    });
                }
                // "wed or thurs": both are kept, as said.
                return None;
            } else {
                Some(*first)
            }
        }
    };
    if let Some(date) = day {
        if found.excluded && found.days.len() > 1 {
            return None;
        }
        let mut human = date.format("%a %-d %b").to_string();
        let mut machine = date.format("%Y-%m-%d").to_string();
        if let Some((kind, h, m)) = found.time {
            human.push_str(", ");
            human.push_str(&clock_phrase(kind, h, m));
            if kind == Clock::At {
                machine.push_str(&format!("T{h:02}:{m:02}"));
            }
        } else if let Some(part) = found.part {
            human.push_str(", ");
            human.push_str(part);
        }
        return Some(When {
            human,
            machine: Some(machine),
        });
    }
    if let Some(monday) = found.week {
        return Some(When {
            human: format!("week of {}", monday.format("%a %-d %b")),
            machine: Some(monday.format("%G-W%V").to_string()),
        });
    }
    if found.excluded {
        return None;
    }
    if let Some((kind, h, m)) = found.time {
        return Some(When {
            human: clock_phrase(kind, h, m),
            machine: None,
        });
    }
    if found.asap {
        return Some(When {
            human: "ASAP".to_string(),
            machine: None,
        });
    }
    if found.vague {
        return None;
    }
    if found.any_time {
        return Some(When {
            human: "any time".to_string(),
            machine: None,
        });
    }
    found.part.map(|part| When {
        human: part.to_string(),
        machine: None,
    })
}

/// Whether the text speaks of a time at all, pinned down or not ("sometime in july", "after
/// the kids are back at school" does not).
pub fn mentions_time(text: &str, now: DateTime<Utc>) -> bool {
    let (found, words) = analyse(text, now);
    !found.used.is_empty()
        || words.iter().any(|w| {
            matches!(
                w.text.as_str(),
                "week"
                    | "weeks"
                    | "month"
                    | "months"
                    | "year"
                    | "summer"
                    | "spring"
                    | "autumn"
                    | "winter"
                    | "christmas"
                    | "easter"
                    | "holidays"
                    | "half"
                    | "term"
                    | "soon"
                    | "later"
                    | "day"
                    | "days"
                    | "date"
                    | "time"
                    | "when"
                    | "until"
                    | "after"
                    | "before"
            )
        })
}

/// Byte spans of the time phrases in the text that say when the caller wants the business
/// ("tomorrow after 3", "any time next week", "asap"), past days aside.
pub fn spans(text: &str, now: DateTime<Utc>) -> Vec<(usize, usize)> {
    let (found, words) = analyse(text, now);
    let mut spans: Vec<(usize, usize)> = Vec::new();
    for &i in &found.used {
        let Some(word) = words.get(i) else { continue };
        match spans.last_mut() {
            Some(last) if text[last.1..word.start].trim().is_empty() => last.1 = word.end,
            _ => spans.push((word.start, word.end)),
        }
    }
    spans
}

#[cfg(test)]
mod tests {
    use super::*;
    use chrono::TimeZone;

    /// Tuesday 10 June 2025, 14:05 in London.
    fn now() -> DateTime<Utc> {
        Utc.with_ymd_and_hms(2025, 6, 10, 13, 5, 0).unwrap()
    }

    fn human(text: &str) -> Option<String> {
        read(text, now(), true).map(|w| w.human)
    }

    #[test]
    fn dates_relative_to_now() {
        for (text, want) in [
            ("tomorrow morning", "Wed 11 Jun, morning"),
            ("Friday after 3", "Fri 13 Jun, after 3pm"),
            ("12/06", "Thu 12 Jun"),
            ("next week", "week of Mon 16 Jun"),
            ("next week sometime", "week of Mon 16 Jun"),
            ("any day next week except wednesday", "week of Mon 16 Jun"),
            ("asap", "ASAP"),
            ("any time", "any time"),
            ("the 20th", "Fri 20 Jun"),
            ("tomorrow at 2", "Wed 11 Jun, 2pm"),
            ("thurs about 4?", "Thu 12 Jun, 4pm"),
            ("after work, so 5:30 or later", "after 5:30pm"),
            ("sat am? n ye this no is fine", "Sat 14 Jun, morning"),
            ("first thing thursday", "Thu 12 Jun, morning"),
            ("2day if u can", "Tue 10 Jun"),
            ("today or tomorrow, cant lock it", "ASAP"),
            ("ANY TIME AFTER SCHOOL SO AFTER 3:30", "after 3:30pm"),
            ("tmrw after 5", "Wed 11 Jun, after 5pm"),
            (
                "thursday, actually friday at 10 is better",
                "Fri 13 Jun, 10am",
            ),
            ("19th july", "Sat 19 Jul"),
            ("sat 21st", "Sat 21 Jun"),
            ("friday 1st august, 4 bed", "Fri 1 Aug"),
            ("actually wed wud b better", "Wed 11 Jun"),
            ("blow dry 4 a wedding sat", "Sat 14 Jun"),
            ("asap need it for work tmrw", "ASAP"),
            ("monday afternoon", "Mon 16 Jun, afternoon"),
            // The week after next, and clock times said the British way.
            ("week after next", "week of Mon 23 Jun"),
            ("friday, its about 5 years old", "Fri 13 Jun"),
            ("monday, we've had it for 3 weeks", "Mon 16 Jun"),
            ("the 3rd, its on the 2nd floor", "Thu 3 Jul"),
            (
                "the week after next pls, away till then",
                "week of Mon 23 Jun",
            ),
            ("any time after half 3", "after 3:30pm"),
            ("thurs half 5?", "Thu 12 Jun, 5:30pm"),
            ("friday from half past 9", "Fri 13 Jun, after 9:30am"),
            ("tomorrow quarter past 4", "Wed 11 Jun, 4:15pm"),
            ("sat by quarter to 12", "Sat 14 Jun, before 11:45am"),
        ] {
            assert_eq!(human(text).as_deref(), Some(want), "{text}");
        }
        for text in [
            "sometime in july, not sure yet",
            "any day except friday",
            "wed or thurs",
            "this week sometime",
            "in a couple of weeks, no rush",
        ] {
            assert_eq!(human(text), None, "{text}");
        }
    }

    #[test]
    fn what_already_happened_is_not_when() {
        for (text, want) in [
            (
                "fence blew down on friday, saturday afternoon would be good",
                Some("Sat 14 Jun, afternoon"),
            ),
            (
                "lights went off on saturday, thursday morning please",
                Some("Thu 12 Jun, morning"),
            ),
            ("hurt my knee on saturday", None),
            ("my back tooth has been aching since saturday", None),
            ("failed its MOT on saturday, need it asap", Some("ASAP")),
            (
                "boiler broke down on sunday so need someone tomorrow",
                Some("Wed 11 Jun"),
            ),
        ] {
            assert_eq!(human(text).as_deref(), want, "{text}");
        }
        assert_eq!(
            read("damp patch since the rain on Sunday", now(), false),
            None
        );
    }

    #[test]
    fn corrections_read_against_what_was_said() {
        let earlier = When {
            human: "Sat 12 Jul".to_string(),
            machine: Some("2025-07-12".to_string()),
        };
        assert_eq!(
            read_with(
                "sorry its the 19th not the 12th",
                now(),
                false,
                Some(&earlier)
            )
            .map(|w| w.human)
            .as_deref(),
            Some("Sat 19 Jul")
        );
        let earlier = When {
            human: "Thu 12 Jun, 10am".to_string(),
            machine: Some("2025-06-12T10:00".to_string()),
        };
        assert_eq!(
            read_with(
                "actually friday is better, same time",
                now(),
                false,
                Some(&earlier)
            )
            .map(|w| w.human)
            .as_deref(),
            Some("Fri 13 Jun, 10am")
        );
        // Unasked, a time is taken only as a plain preference.
        assert_eq!(
            read("any time after 3 is good for me", now(), false)
                .map(|w| w.human)
                .as_deref(),
            Some("after 3pm")
        );
        assert_eq!(read("the boiler went after 3 days", now(), false), None);
    }

    #[test]
    fn spans_cover_the_time_phrase() {
        let text = "need a new socket, any time after 3 is good";
        let spans = spans(text, now());
        let covered: Vec<&str> = spans.iter().map(|&(s, e)| &text[s..e]).collect();
        assert_eq!(covered, vec!["any time after 3"]);
        let text = "tomorrow would be good";
        let covered: Vec<&str> = super::spans(text, now())
            .iter()
            .map(|&(s, e)| &text[s..e])
            .collect();
        assert_eq!(covered, vec!["tomorrow"]);
        let text = "boiler broke down on sunday";
        assert!(super::spans(text, now()).is_empty());
    }
}
