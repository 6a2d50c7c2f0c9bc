//! Loops with machines: an auto-responder answers every text with the same words, a sender
//! fires several texts within seconds, or one number has had a day's share of texts. Any of them
//! ends the conversation without a reply. Pure: the shell counts, this decides.

/// The same text this many times in one conversation is an auto-responder talking to us.
pub const SAME_TEXT: i64 = 3;
/// This many texts from one number within [`BURST_MS`] is a machine, not a person.
pub const BURST_TEXTS: i64 = 4;
pub const BURST_MS: i64 = 2_000;
/// No number is sent more texts than this in a day, whatever happens in the conversation.
pub const MAX_TEXTS_PER_NUMBER_PER_DAY: i64 = 15;

/// What the store counted for a text that just came in.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct Signs {
    /// Texts from the number within the last [`BURST_MS`], this one included.
    pub burst: i64,
    /// Times this conversation has had this very text, this one included.
    pub same_text: i64,
    /// Texts sent to the number in the last 24 hours.
    pub sent_today: i64,
}

/// Why the conversation must stop, in words for the journal; `None` to carry on.
pub fn stop(signs: &Signs) -> Option<String> {
    if signs.same_text >= SAME_TEXT {
        Some(format!(
            "the same text came {} times: an automatic reply",
            signs.same_text
        ))
    } else if signs.burst >= BURST_TEXTS {
        Some(format!(
            "{} texts within {} s: an automatic sender",
            signs.burst,
            BURST_MS / 1000
        ))
    } else if signs.sent_today >= MAX_TEXTS_PER_NUMBER_PER_DAY {
        Some(format!(
            "{} texts already sent to this number today",
            signs.sent_today
        ))
    } else {
        None
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_person_carries_on_a_machine_is_stopped() {
        let person = Signs {
            burst: 1,
            same_text: 2,
            sent_today: 6,
        };
        assert_eq!(stop(&person), None);
        let echo = Signs {
            same_text: 3,
            ..person
        };
        assert!(stop(&echo).is_some_and(|why| why.contains("the same text came 3 times")));
        let burst = Signs { burst: 4, ..person };
        assert!(stop(&burst).is_some_and(|why| why.contains("4 texts within 2 s")));
        let chatty = Signs {
            sent_today: 15,
            ..person
        };
        assert!(stop(&chatty).is_some_and(|why| why.contains("15 texts already sent")));
    }
}
