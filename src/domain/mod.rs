//! Newtypes for the values that cross module boundaries, each checked when it is built.

use std::fmt;

mod cidr;
mod stored;

pub use crate::codec::phone::{CallerId, E164, NumberKind, WithheldReason};
pub use cidr::{Cidr, CidrError};
pub use stored::{
    CallDecision, CallSource, ChannelKind, ConversationState, DeliveryState, Direction, FaultKind,
    JournalStep, LeadState, MessageState, OptOutSource, PartStatus, RegistrationState,
    SelfTestState,
};

/// Why an identifier from the config was refused.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error(
    "{value:?} is not a valid id: use 1 to 32 of a-z, 0-9, '-' and '_', starting with a letter"
)]
pub struct IdError {
    pub value: String,
}

fn check_id(value: &str) -> Result<(), IdError> {
    let mut chars = value.chars();
    let first_ok = chars.next().is_some_and(|c| c.is_ascii_lowercase());
    let rest_ok =
        chars.all(|c| c.is_ascii_lowercase() || c.is_ascii_digit() || c == '-' || c == '_');
    if first_ok && rest_ok && value.len() <= 32 {
        Ok(())
    } else {
        Err(IdError {
            value: value.to_string(),
        })
    }
}

macro_rules! config_id {
    ($(#[$doc:meta])* $name:ident) => {
        $(#[$doc])*
        #[derive(Debug, Clone, PartialEq, Eq, Hash, PartialOrd, Ord)]
        pub struct $name(String);

        impl $name {
            pub fn parse(value: &str) -> Result<Self, IdError> {
                check_id(value)?;
                Ok(Self(value.to_string()))
            }
            pub fn as_str(&self) -> &str {
                &self.0
            }
        }

        impl fmt::Display for $name {
            fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
                f.write_str(&self.0)
            }
        }
    };
}

config_id!(
    /// The config name of one GSM modem (`[[modem]] id`), used in logs, the store and the CLI.
    ModemId
);
config_id!(
    /// The config name of one business profile (`[[profile]] id`).
    ProfileId
);
config_id!(
    /// The key of one question of a profile (`[[profile.question]] id`), under which its answer is kept.
    QuestionId
);

/// The unique key of one call as its source reports it: a SIP Call-ID, or one the modem driver makes
/// up for a ring on the SIM. A retransmitted or repeated report carries the same key, so the store
/// keeps one call for it.
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub struct CallId(String);

impl CallId {
    pub fn new(value: impl Into<String>) -> Self {
        Self(value.into())
    }
    pub fn as_str(&self) -> &str {
        &self.0
    }
}

impl fmt::Display for CallId {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.0)
    }
}

macro_rules! row_id {
    ($(#[$doc:meta])* $name:ident) => {
        $(#[$doc])*
        #[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
        pub struct $name(pub i64);

        impl fmt::Display for $name {
            fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
                write!(f, "{}", self.0)
            }
        }
    };
}

row_id!(
    /// A row of the `calls` table.
    CallRowId
);
row_id!(
    /// A row of the `conversations` table: one caller talking to one profile.
    ConversationId
);
row_id!(
    /// A row of the `messages` table: one SMS in or out.
    MessageId
);
row_id!(
    /// A row of the `leads` table.
    LeadId
);

/// TP-MR: the 8-bit reference the modem gives a sent SMS part (3GPP TS 23.040 §9.2.3.6). It wraps,
/// so a delivery report is matched on it together with the recipient and a time window.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub struct MessageReference(pub u8);

impl fmt::Display for MessageReference {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}", self.0)
    }
}

/// A secret from the config (SIM PIN, SIP or SMTP password, token). `Debug` and `Display` never
/// show it, so a config can be logged whole.
#[derive(Clone, PartialEq, Eq)]
pub struct Secret(String);

impl Secret {
    pub fn new(value: impl Into<String>) -> Self {
        Self(value.into())
    }
    /// The secret itself, for the one place that must send it.
    pub fn expose(&self) -> &str {
        &self.0
    }
}

impl fmt::Debug for Secret {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("**REDACTED**")
    }
}

impl fmt::Display for Secret {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("**REDACTED**")
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn ids_are_checked() {
        assert!(ModemId::parse("main").is_ok());
        assert!(ModemId::parse("dongle-2_b").is_ok());
        assert!(ModemId::parse("").is_err());
        assert!(ModemId::parse("2nd").is_err());
        assert!(ModemId::parse("Main").is_err());
        assert!(ProfileId::parse("a b").is_err());
        assert!(ProfileId::parse(&"a".repeat(33)).is_err());
    }

    #[test]
    fn secrets_never_print() {
        let secret = Secret::new("1234");
        assert_eq!(format!("{secret:?} {secret}"), "**REDACTED** **REDACTED**");
        assert_eq!(secret.expose(), "1234");
    }
}

/// The final response that ends a call which rang out.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum FinalResponse {
    /// `480 Temporarily Unavailable` (§21.4.18): the usual "no answer".
    #[default]
    TemporarilyUnavailable,
    /// `486 Busy Here` (§21.4.24).
    BusyHere,
    /// `603 Decline` (§21.6.2).
    Decline,
}

impl FinalResponse {
    /// The status code.
    pub fn code(self) -> u16 {
        match self {
            Self::TemporarilyUnavailable => 480,
            Self::BusyHere => 486,
            Self::Decline => 603,
        }
    }
}

/// Default of the SIP guard's requests per second: 10 000 requests a second from one address.
/// A call is three or four requests (INVITE, CANCEL, ACK, retransmissions), so this leaves room
/// for `DEFAULT_INVITES_PER_SECOND` calls a second; `benches/sip_load.rs` drives 1000.
pub const DEFAULT_REQUESTS_PER_SECOND: u32 = 10_000;
/// Default of the SIP guard's INVITEs per second: 2000 new calls a second from one address,
/// twice the load benchmark's highest rate, so the default only stops a runaway flood; a small
/// business's line is better served by a few dozen (`sip.max_invites_per_second`).
pub const DEFAULT_INVITES_PER_SECOND: u32 = 2_000;
