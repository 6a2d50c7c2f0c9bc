//! Missed-call policy: given a caller and what the store knows of them, whether to text them, and
//! if not, why. Every "no" carries a reason that is recorded with the call.

use crate::domain::{CallerId, ConversationId, E164, NumberKind, WithheldReason};

/// What the store knows about the caller when the call is missed.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Facts {
    /// The caller replied STOP (or similar) before and has not said START since.
    pub opted_out: bool,
    /// The caller already has an open conversation with this business, within the cooldown.
    pub open_conversation: Option<ConversationId>,
    /// First texts sent in the last hour and day: by the whole box, and for this business.
    pub started: Started,
    /// A staff member paused the assistant for this business (`PA` by SMS).
    pub paused: bool,
}

/// Conversations started (first texts sent) recently.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct Started {
    pub box_hour: u32,
    pub box_day: u32,
    pub profile_hour: u32,
    pub profile_day: u32,
}

/// The business's rules, from the config.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Rules {
    /// Kinds of number that get texts (default: UK mobiles only).
    pub kinds: Vec<NumberKind>,
    /// Numbers texted whatever their kind.
    pub allow: Vec<E164>,
    /// The business's own people: never texted.
    pub staff: Vec<E164>,
    /// Caps on first texts, against a flood of spoofed calls running up an SMS bill.
    pub caps: Caps,
}

impl Default for Rules {
    fn default() -> Self {
        Self {
            kinds: vec![NumberKind::UkMobile],
            allow: Vec::new(),
            staff: Vec::new(),
            caps: Caps::default(),
        }
    }
}

/// Most first texts per hour and per day; `None` is no cap.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct Caps {
    pub box_hour: Option<u32>,
    pub box_day: Option<u32>,
    pub profile_hour: Option<u32>,
    pub profile_day: Option<u32>,
}

/// Which cap a call met.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Cap {
    BoxHour(u32),
    BoxDay(u32),
    ProfileHour(u32),
    ProfileDay(u32),
}

/// The policy's answer.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Decision {
    /// Start a conversation and send the first text.
    Text,
    /// Send nothing, for this reason.
    Skip(SkipReason),
}

/// The [`SkipReason::code`]s whose caller needs no call back: the business's own staff, and a
/// caller already in a conversation (the call joined it).
pub const NO_CALL_BACK_NEEDED: &[&str] = &["staff", "in_conversation"];

/// Why a missed call got no text.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum SkipReason {
    Withheld(WithheldReason),
    /// Only UK mobiles can receive our texts by default; the profile can allow other kinds.
    NotMobile(NumberKind),
    /// One of the business's own people.
    Staff,
    OptedOut,
    /// Too many first texts already in the hour or the day.
    Capped(Cap),
    /// The caller is already talking to us; the call joins that conversation.
    InConversation(ConversationId),
    /// A staff member paused the assistant for the business: they are answering themselves.
    Paused,
}

impl SkipReason {
    /// A short stable code for the store, the API and metrics.
    pub fn code(&self) -> &'static str {
        match self {
            SkipReason::Withheld(_) => "withheld",
            SkipReason::NotMobile(_) => "not_mobile",
            SkipReason::Staff => "staff",
            SkipReason::OptedOut => "opted_out",
            SkipReason::Capped(_) => "capped",
            SkipReason::InConversation(_) => "in_conversation",
            SkipReason::Paused => "paused",
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
            SkipReason::Staff => {
                "the caller is one of the business's own numbers (profile.staff_numbers)"
                    .to_string()
            }
            SkipReason::OptedOut => "the caller opted out of texts (replied STOP)".to_string(),
            SkipReason::Capped(cap) => {
                let (what, limit, key) = match cap {
                    Cap::BoxHour(n) => ("this box sent", n, "limits.texts_per_hour"),
                    Cap::BoxDay(n) => ("this box sent", n, "limits.texts_per_day"),
                    Cap::ProfileHour(n) => ("this business sent", n, "profile.texts_per_hour"),
                    Cap::ProfileDay(n) => ("this business sent", n, "profile.texts_per_day"),
                };
                let window = if matches!(cap, Cap::BoxHour(_) | Cap::ProfileHour(_)) {
                    "hour"
                } else {
                    "day"
                };
                format!(
                    "{what} its {limit} first texts of the last {window} ({key}): a flood of calls is not texted, to keep the SMS bill in check"
                )
            }
            SkipReason::InConversation(id) => {
                format!("the caller is already in conversation {id}; the call joins it")
            }
            SkipReason::Paused => {
                "the assistant is paused for this business (a staff member texted PA; GO resumes it)"
                    .to_string()
            }
        }
    }
}

/// Decides whether a missed call gets a text. The order matters for the reason recorded: who the
/// caller is (withheld, kind, staff, opted out) before what is going on (a conversation, caps).
pub fn decide(caller: &CallerId, facts: &Facts, rules: &Rules) -> Decision {
    let number = match caller {
        CallerId::Withheld(reason) => return Decision::Skip(SkipReason::Withheld(*reason)),
        CallerId::Number(number) => number,
    };
    if rules.staff.contains(number) {
        return Decision::Skip(SkipReason::Staff);
    }
    let kind = number.kind();
    if !rules.kinds.contains(&kind) && !rules.allow.contains(number) {
        return Decision::Skip(SkipReason::NotMobile(kind));
    }
    if facts.opted_out {
        return Decision::Skip(SkipReason::OptedOut);
    }
    if let Some(conversation) = facts.open_conversation {
        return Decision::Skip(SkipReason::InConversation(conversation));
    }
    if facts.paused {
        return Decision::Skip(SkipReason::Paused);
    }
    let caps = [
        (
            rules.caps.box_hour,
            facts.started.box_hour,
            Cap::BoxHour as fn(u32) -> Cap,
        ),
        (rules.caps.box_day, facts.started.box_day, Cap::BoxDay),
        (
            rules.caps.profile_hour,
            facts.started.profile_hour,
            Cap::ProfileHour,
        ),
        (
            rules.caps.profile_day,
            facts.started.profile_day,
            Cap::ProfileDay,
        ),
    ];
    for (limit, started, cap) in caps {
        if let Some(limit) = limit
            && started >= limit
        {
            return Decision::Skip(SkipReason::Capped(cap(limit)));
        }
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
            decide(
                &number("07700 900123"),
                &Facts::default(),
                &Rules::default()
            ),
            Decision::Text
        );
    }

    #[test]
    fn withheld_landline_opted_out_and_busy_callers_do_not() {
        assert_eq!(
            decide(
                &CallerId::Withheld(WithheldReason::Empty),
                &Facts::default(),
                &Rules::default()
            ),
            Decision::Skip(SkipReason::Withheld(WithheldReason::Empty))
        );
        assert_eq!(
            decide(
                &number("020 7946 0018"),
                &Facts::default(),
                &Rules::default()
            ),
            Decision::Skip(SkipReason::NotMobile(NumberKind::UkGeographic))
        );
        let opted_out = Facts {
            opted_out: true,
            ..Facts::default()
        };
        assert_eq!(
            decide(&number("07700 900123"), &opted_out, &Rules::default()),
            Decision::Skip(SkipReason::OptedOut)
        );
        let talking = Facts {
            open_conversation: Some(ConversationId(4)),
            ..Facts::default()
        };
        assert_eq!(
            decide(&number("07700 900123"), &talking, &Rules::default()),
            Decision::Skip(SkipReason::InConversation(ConversationId(4)))
        );
    }

    #[test]
    fn kinds_allow_and_staff_lists_and_caps_are_the_business_s_rules() {
        let landline = number("020 7946 0018");
        let rules = Rules {
            kinds: vec![NumberKind::UkMobile, NumberKind::UkGeographic],
            ..Rules::default()
        };
        assert_eq!(decide(&landline, &Facts::default(), &rules), Decision::Text);
        // 070 is not a mobile, unless that one number is allowed.
        let personal = E164::parse("07000 123456").unwrap();
        let allowed = Rules {
            allow: vec![personal.clone()],
            ..Rules::default()
        };
        assert_eq!(
            decide(
                &CallerId::Number(personal.clone()),
                &Facts::default(),
                &Rules::default()
            ),
            Decision::Skip(SkipReason::NotMobile(NumberKind::UkPersonal))
        );
        assert_eq!(
            decide(&CallerId::Number(personal), &Facts::default(), &allowed),
            Decision::Text
        );
        let mobile = E164::parse("07700 900123").unwrap();
        let staff = Rules {
            staff: vec![mobile.clone()],
            ..Rules::default()
        };
        assert_eq!(
            decide(&CallerId::Number(mobile), &Facts::default(), &staff),
            Decision::Skip(SkipReason::Staff)
        );
        let capped = Rules {
            caps: Caps {
                box_day: Some(200),
                profile_hour: Some(10),
                ..Caps::default()
            },
            ..Rules::default()
        };
        let busy = |profile_hour, box_day| Facts {
            started: Started {
                profile_hour,
                box_day,
                ..Started::default()
            },
            ..Facts::default()
        };
        let caller = number("07700 900123");
        assert_eq!(decide(&caller, &busy(9, 199), &capped), Decision::Text);
        assert_eq!(
            decide(&caller, &busy(10, 0), &capped),
            Decision::Skip(SkipReason::Capped(Cap::ProfileHour(10)))
        );
        assert_eq!(
            decide(&caller, &busy(0, 200), &capped),
            Decision::Skip(SkipReason::Capped(Cap::BoxDay(200)))
        );
        assert!(
            SkipReason::Capped(Cap::BoxDay(200))
                .describe()
                .contains("limits.texts_per_day")
        );
    }

    #[test]
    fn reasons_read_well() {
        let reason = SkipReason::NotMobile(NumberKind::UkGeographic);
        assert_eq!(reason.code(), "not_mobile");
        assert!(reason.describe().contains("not a UK mobile"));
    }
}
