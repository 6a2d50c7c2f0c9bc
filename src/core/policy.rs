//! Missed-call policy: given a caller and what the store knows of them, whether to text them, and
//! if not, why. Every "no" carries a reason that is recorded with the call.

use crate::domain::{CallerId, ConversationId, NumberKind, WithheldReason};

/// What the store knows about the caller when the call is missed.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Facts {
    /// The caller replied STOP (or similar) before and has not said START since.
    pub opted_out: bool,
    /// The caller already has an open conversation with this business.
    pub open_conversation: Option<ConversationId>,
}

/// The policy's answer.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Decision {
    /// Start a conversation and send the first text.
    Text,
    /// Send nothing, for this reason.
    Skip(SkipReason),
}

/// Why a missed call got no text.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum SkipReason {
    Withheld(WithheldReason),
    /// Only UK mobiles can receive our texts by default.
    NotMobile(NumberKind),
    OptedOut,
    /// The caller is already talking to us; the call joins that conversation.
    InConversation(ConversationId),
}

impl SkipReason {
    /// A short stable code for the store, the API and metrics.
    pub fn code(&self) -> &'static str {
        match self {
            SkipReason::Withheld(_) => "withheld",
            SkipReason::NotMobile(_) => "not_mobile",
            SkipReason::OptedOut => "opted_out",
            SkipReason::InConversation(_) => "in_conversation",
        }
    }

    /// The reason in words, for the calls page, the CLI and `doctor --watch`.
    pub fn describe(&self) -> String {
        match self {
            SkipReason::Withheld(WithheldReason::Empty) => {
                "the caller's number was withheld (no caller id)".to_string()
            }
            SkipReason::Withheld(WithheldReason::Anonymous) => {
                "the caller's number was withheld (anonymous)".to_string()
            }
            SkipReason::Withheld(WithheldReason::NonDiallable) => {
                "the caller id is a non-diallable number (Ofcom 08979 range)".to_string()
            }
            SkipReason::Withheld(WithheldReason::Unparseable) => {
                "the caller id is not a phone number".to_string()
            }
            SkipReason::NotMobile(kind) => {
                format!(
                    "the caller's number is a {}, not a UK mobile: texts go to UK mobiles only",
                    kind.describe()
                )
            }
            SkipReason::OptedOut => "the caller opted out of texts (replied STOP)".to_string(),
            SkipReason::InConversation(id) => {
                format!("the caller is already in conversation {id}; the call joins it")
            }
        }
    }
}

/// Decides whether a missed call gets a text.
pub fn decide(caller: &CallerId, facts: &Facts) -> Decision {
    let number = match caller {
        CallerId::Withheld(reason) => return Decision::Skip(SkipReason::Withheld(*reason)),
        CallerId::Number(number) => number,
    };
    let kind = number.kind();
    if kind != NumberKind::UkMobile {
        return Decision::Skip(SkipReason::NotMobile(kind));
    }
    if facts.opted_out {
        return Decision::Skip(SkipReason::OptedOut);
    }
    if let Some(conversation) = facts.open_conversation {
        return Decision::Skip(SkipReason::InConversation(conversation));
    }
    Decision::Text
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::domain::E164;

    fn number(text: &str) -> CallerId {
        CallerId::Number(E164::parse(text).unwrap())
    }

    #[test]
    fn mobiles_get_a_text() {
        assert_eq!(
            decide(&number("07700 900123"), &Facts::default()),
            Decision::Text
        );
    }

    #[test]
    fn withheld_landline_opted_out_and_busy_callers_do_not() {
        assert_eq!(
            decide(
                &CallerId::Withheld(WithheldReason::Empty),
                &Facts::default()
            ),
            Decision::Skip(SkipReason::Withheld(WithheldReason::Empty))
        );
        assert_eq!(
            decide(&number("020 7946 0018"), &Facts::default()),
            Decision::Skip(SkipReason::NotMobile(NumberKind::UkGeographic))
        );
        let opted_out = Facts {
            opted_out: true,
            ..Facts::default()
        };
        assert_eq!(
            decide(&number("07700 900123"), &opted_out),
            Decision::Skip(SkipReason::OptedOut)
        );
        let talking = Facts {
            open_conversation: Some(ConversationId(4)),
            ..Facts::default()
        };
        assert_eq!(
            decide(&number("07700 900123"), &talking),
            Decision::Skip(SkipReason::InConversation(ConversationId(4)))
        );
    }

    #[test]
    fn reasons_read_well() {
        let reason = SkipReason::NotMobile(NumberKind::UkGeographic);
        assert_eq!(reason.code(), "not_mobile");
        assert!(reason.describe().contains("not a UK mobile"));
    }
}
