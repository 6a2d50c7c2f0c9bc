//! Keywords: STOP, START and HELP as callers write them, and what each does given whether the
//! number has opted out. The same rule inside a conversation (the engine) and outside one (a
//! text after it ended, or from a number never texted). Pure.

use crate::core::slots;

/// A keyword reply that is not an answer.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Keyword {
    /// STOP, STOPALL, UNSUBSCRIBE, CANCEL, END, QUIT: the caller opts out.
    Stop,
    /// START, UNSTOP: the caller opts back in.
    Start,
    /// HELP, INFO.
    Help,
}

/// Recognises a keyword reply: a message that is just the keyword, in any case and with
/// punctuation around it ("Stop.", " STOP!!"); a message whose last sentence is STOP ("sorted it
/// elsewhere now thanks, STOP"); or a plain request to stop ("please stop texting me", "remove
/// my number"). "cancel my booking" and "the tap won't stop" are not.
pub fn keyword(text: &str) -> Option<Keyword> {
    let whole: String = text
        .trim()
        .trim_matches(|c: char| !c.is_alphanumeric())
        .to_uppercase();
    let last_clause: String = slots::clause_spans(text)
        .last()
        .map(|&(start, end)| text[start..end].trim().to_uppercase())
        .unwrap_or_default();
    let words = slots::words(text);
    let asks_to_stop = [
        "stop texting",
        "stop messaging",
        "stop sending",
        "stop contacting",
        "dont text me",
        "don't text me",
        "do not text me",
        "dont message me",
        "don't message me",
        "remove my number",
        "take me off",
        "unsubscribe me",
        "opt me out",
        "no more texts",
        "no more messages",
    ]
    .iter()
    .any(|p| slots::has_phrase(&words, p));
    // "actually not interested anymore STOP": STOP in capitals to end a text is the keyword.
    let ends_with_stop = text
        .split_whitespace()
        .last()
        .is_some_and(|w| w.trim_matches(|c: char| !c.is_alphanumeric()) == "STOP");
    if asks_to_stop
        || (words.len() > 1 && ends_with_stop)
        || (words.len() > 1 && matches!(last_clause.as_str(), "STOP" | "STOPALL" | "UNSUBSCRIBE"))
    {
        return Some(Keyword::Stop);
    }
    match whole.as_str() {
        "STOP" | "STOPALL" | "STOP ALL" | "UNSUBSCRIBE" | "CANCEL" | "END" | "QUIT" => {
            Some(Keyword::Stop)
        }
        "START" | "UNSTOP" => Some(Keyword::Start),
        "HELP" | "INFO" => Some(Keyword::Help),
        _ => None,
    }
}

/// What a keyword does.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Action {
    /// Record the opt-out, cancel what is queued, confirm once.
    OptOut,
    /// Clear the opt-out and confirm.
    OptIn,
    /// Send the help text.
    Help,
}

/// What `keyword` does for a number that has (`opted_out`) or has not opted out; `None` when it
/// does nothing (STOP again, START from a number never opted out, HELP after STOP: an opted-out
/// number is sent nothing but the confirmation of START).
pub fn action(keyword: Keyword, opted_out: bool) -> Option<Action> {
    match (keyword, opted_out) {
        (Keyword::Stop, false) => Some(Action::OptOut),
        (Keyword::Start, true) => Some(Action::OptIn),
        (Keyword::Help, false) => Some(Action::Help),
        _ => None,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn keywords_only_when_alone() {
        for text in [
            "STOP",
            "stop",
            " Stop. ",
            "QUIT!",
            "unsubscribe",
            "Cancel",
            "END",
            "stopall",
        ] {
            assert_eq!(keyword(text), Some(Keyword::Stop), "{text}");
        }
        assert_eq!(keyword("cancel my booking"), None);
        assert_eq!(keyword("please stop texting me"), Some(Keyword::Stop));
        assert_eq!(
            keyword("sorted it elsewhere now thanks, STOP"),
            Some(Keyword::Stop)
        );
        assert_eq!(keyword("the tap won't stop dripping"), None);
        assert_eq!(keyword("stop the leak asap"), None);
        assert_eq!(keyword("start"), Some(Keyword::Start));
        assert_eq!(keyword("Help?"), Some(Keyword::Help));
    }

    #[test]
    fn an_opted_out_number_is_sent_nothing_but_the_confirmation_of_start() {
        assert_eq!(action(Keyword::Stop, false), Some(Action::OptOut));
        assert_eq!(action(Keyword::Stop, true), None);
        assert_eq!(action(Keyword::Start, true), Some(Action::OptIn));
        assert_eq!(action(Keyword::Start, false), None);
        assert_eq!(action(Keyword::Help, false), Some(Action::Help));
        assert_eq!(action(Keyword::Help, true), None);
    }
}
