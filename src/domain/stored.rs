//! The states, kinds and steps the store keeps, as enums: each has one word in the database
//! (`as_str`, read back with `parse`), so no code compares a row's text with a literal or with a
//! sentence. The store converts them with rusqlite's `ToSql`/`FromSql` (`store/columns.rs`).

use std::fmt;

/// Defines a stored enum: its variants with their words, `ALL`, `as_str`, `parse`, `Display`
/// and `Serialize` (as the word, for the JSON API).
macro_rules! stored_enum {
    (
        $(#[$doc:meta])*
        $name:ident {
            $( $(#[$variant_doc:meta])* $variant:ident = $word:literal, )+
        }
    ) => {
        $(#[$doc])*
        #[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
        pub enum $name {
            $( $(#[$variant_doc])* $variant, )+
        }

        impl $name {
            /// Every variant, in declaration order.
            pub const ALL: &'static [$name] = &[$($name::$variant),+];

            /// The word stored in the database.
            pub fn as_str(self) -> &'static str {
                match self {
                    $( $name::$variant => $word, )+
                }
            }

            /// The variant stored as `word`; `None` for a word no version of textback writes.
            pub fn parse(word: &str) -> Option<Self> {
                match word {
                    $( $word => Some($name::$variant), )+
                    _ => None,
                }
            }
        }

        impl fmt::Display for $name {
            fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
                f.pad(self.as_str())
            }
        }

        impl serde::Serialize for $name {
            fn serialize<S: serde::Serializer>(&self, serializer: S) -> Result<S::Ok, S::Error> {
                serializer.serialize_str(self.as_str())
            }
        }
    };
}

stored_enum! {
    /// Where a missed call came from (`calls.source`).
    CallSource {
        Modem = "modem",
        Sip = "sip",
    }
}

stored_enum! {
    /// What was decided for a missed call (`calls.decision`).
    CallDecision {
        Text = "text",
        Skip = "skip",
    }
}

stored_enum! {
    /// Where a conversation stands (`conversations.state`).
    ConversationState {
        Open = "open",
        Completed = "completed",
        OptedOut = "opted_out",
        /// A newer call from the same caller started another conversation, or a loop with a
        /// machine stopped it.
        Abandoned = "abandoned",
    }
}

stored_enum! {
    /// Which way an SMS went (`messages.direction`).
    Direction {
        In = "in",
        Out = "out",
    }
}

stored_enum! {
    /// Where an SMS stands (`messages.state`). Outbound: queued → sending → sent → delivered, or
    /// failed, or cancelled before it left. Inbound: received, or waiting for the assistant.
    MessageState {
        Queued = "queued",
        Sending = "sending",
        Sent = "sent",
        Delivered = "delivered",
        Failed = "failed",
        Cancelled = "cancelled",
        Received = "received",
        Waiting = "waiting",
    }
}

stored_enum! {
    /// What the network said of one part of a sent SMS (`message_parts.status`).
    PartStatus {
        Sent = "sent",
        Pending = "pending",
        Delivered = "delivered",
        Failed = "failed",
    }
}

stored_enum! {
    /// How a lead or a notice reaches a recipient (`lead_deliveries.channel`).
    ChannelKind {
        Email = "email",
        Sms = "sms",
        WhatsApp = "whatsapp",
        Webhook = "webhook",
    }
}

stored_enum! {
    /// Where one delivery of a lead stands (`lead_deliveries.state`): pending (due at
    /// `next_attempt_ms`), sending, queued (an SMS in the outbox), delivered or failed.
    DeliveryState {
        Pending = "pending",
        Sending = "sending",
        Queued = "queued",
        Delivered = "delivered",
        Failed = "failed",
    }
}

stored_enum! {
    /// Where the business is with a lead (`leads.state`, `lead_events.state`): new until someone
    /// calls the caller back, then won or lost.
    LeadState {
        New = "new",
        CalledBack = "called_back",
        Won = "won",
        Lost = "lost",
    }
}

impl LeadState {
    /// The state as the owner reads it ("called back").
    pub fn words(self) -> &'static str {
        match self {
            LeadState::New => "new",
            LeadState::CalledBack => "called back",
            LeadState::Won => "won",
            LeadState::Lost => "lost",
        }
    }
}

stored_enum! {
    /// Who recorded an opt-out (`opt_outs.source`).
    OptOutSource {
        Sms = "sms",
        Dashboard = "dashboard",
        Cli = "cli",
    }
}

stored_enum! {
    /// A SIP account's registration as the daemon last wrote it (`sip_accounts.state`).
    RegistrationState {
        Unregistered = "unregistered",
        Registering = "registering",
        Registered = "registered",
        Failed = "failed",
        /// The account only receives calls (no `register`); nothing to do.
        NotRegistering = "not_registering",
    }
}

stored_enum! {
    /// One step in the journal of a call or a conversation (`journal.step`), as `doctor --watch`
    /// and the dashboard follow it.
    JournalStep {
        /// A missed call arrived.
        Call = "call",
        /// The business (profile) it belongs to.
        Profile = "profile",
        /// The policy chose to text, and from which modem.
        Policy = "policy",
        /// The policy chose not to text, and why.
        Skipped = "skipped",
        /// Out of hours: the first text promises a call back.
        Hours = "hours",
        /// An older open conversation with the caller was closed.
        Abandoned = "abandoned",
        /// An SMS was queued in the outbox.
        Queued = "queued",
        /// The outbox handed an SMS to the modem.
        Sending = "sending",
        /// The modem sent it.
        Sent = "sent",
        /// Sending failed and will be tried again.
        Retry = "retry",
        /// Sending failed for good.
        Failed = "failed",
        /// The network's delivery report.
        Delivery = "delivery",
        /// The caller replied.
        Reply = "reply",
        /// A reply after the conversation ended.
        LateReply = "late_reply",
        /// What the local model proposed and what of it was used.
        Model = "model",
        /// A conversation with a machine was stopped.
        Loop = "loop",
        /// The caller asked to be called at once.
        Urgent = "urgent",
        /// A note from the engine (an auto-reply seen, a question back).
        Note = "note",
        /// The caller opted out.
        OptOut = "opt_out",
        /// The caller opted back in.
        OptIn = "opt_in",
        /// The caller asked for HELP.
        Help = "help",
        /// A lead was written.
        Lead = "lead",
        /// The caller went quiet: an incomplete lead.
        Incomplete = "incomplete",
        /// Someone marked a lead called back, won or lost.
        LeadState = "lead_state",
        /// A text from a staff number: a command, and what it did.
        Staff = "staff",
        /// A staff member replied to the caller, or a caller's text went to them.
        Owner = "owner",
        /// A daily self-test: sent, came back, or failed.
        SelfTest = "self_test",
    }
}

stored_enum! {
    /// What went wrong with a modem or its SIM (`modem_faults.kind`).
    FaultKind {
        /// The network refuses this SIM's texts (+CMS ERROR: barred, not subscribed, no credit).
        Refused = "refused",
        /// Off the network: searching, or registration denied.
        OffNetwork = "off_network",
        /// The SIM's message store is full: new texts cannot arrive.
        StorageFull = "storage_full",
        /// The SIM has texted as many different numbers in 24 hours as it may.
        RecipientCap = "recipient_cap",
        /// The modem stopped answering AT commands.
        NotAnswering = "not_answering",
        /// Few of the SIM's texts are reported delivered: a network may be blocking it silently.
        DeliveryLow = "delivery_low",
        /// The SIM's credit, read by USSD, is under `modem.balance_low`.
        LowBalance = "low_balance",
        /// The daily self-test text did not come back in time.
        SelfTest = "self_test",
    }
}

stored_enum! {
    /// Where a daily self-test stands (`self_tests.state`).
    SelfTestState {
        /// Sent (or queued), its text not back yet.
        Waiting = "waiting",
        /// Its text came back in time.
        Passed = "passed",
        /// Its text did not come back in time (or could not be sent).
        Failed = "failed",
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn round_trips<T: Copy + PartialEq + fmt::Debug>(
        all: &[T],
        as_str: fn(T) -> &'static str,
        parse: fn(&str) -> Option<T>,
    ) {
        let mut words = std::collections::HashSet::new();
        for &value in all {
            let word = as_str(value);
            assert!(words.insert(word), "{word} used twice");
            assert_eq!(parse(word), Some(value));
            assert!(
                word.chars().all(|c| c.is_ascii_lowercase() || c == '_'),
                "{word}"
            );
        }
        assert_eq!(parse("no such word"), None);
    }

    #[test]
    fn every_word_reads_back_as_its_variant() {
        round_trips(CallSource::ALL, CallSource::as_str, CallSource::parse);
        round_trips(CallDecision::ALL, CallDecision::as_str, CallDecision::parse);
        round_trips(
            ConversationState::ALL,
            ConversationState::as_str,
            ConversationState::parse,
        );
        round_trips(Direction::ALL, Direction::as_str, Direction::parse);
        round_trips(MessageState::ALL, MessageState::as_str, MessageState::parse);
        round_trips(PartStatus::ALL, PartStatus::as_str, PartStatus::parse);
        round_trips(ChannelKind::ALL, ChannelKind::as_str, ChannelKind::parse);
        round_trips(
            DeliveryState::ALL,
            DeliveryState::as_str,
            DeliveryState::parse,
        );
        round_trips(LeadState::ALL, LeadState::as_str, LeadState::parse);
        round_trips(OptOutSource::ALL, OptOutSource::as_str, OptOutSource::parse);
        round_trips(
            RegistrationState::ALL,
            RegistrationState::as_str,
            RegistrationState::parse,
        );
        round_trips(JournalStep::ALL, JournalStep::as_str, JournalStep::parse);
        round_trips(FaultKind::ALL, FaultKind::as_str, FaultKind::parse);
        round_trips(
            SelfTestState::ALL,
            SelfTestState::as_str,
            SelfTestState::parse,
        );
    }

    #[test]
    fn serialised_as_their_word() {
        assert_eq!(
            serde_json::to_string(&DeliveryState::Delivered).unwrap(),
            "\"delivered\""
        );
        assert_eq!(ChannelKind::WhatsApp.to_string(), "whatsapp");
    }
}
