//! Newtypes for the values that cross module boundaries, each checked when it is built.

use std::fmt;

pub use crate::codec::phone::{CallerId, E164, NumberKind, WithheldReason};

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
