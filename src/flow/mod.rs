//! What each event does: a missed call, an SMS in, a status report, each turned into store changes
//! through the core (policy, dialogue) inside one transaction, so a step is on disk whole or not
//! at all before anything is sent.

use crate::domain::{ConversationId, ModemId};

/// Replies after a lead told to its recipients, at most, in a day; the rest are only kept.
const MAX_LATE_REPLIES_TOLD_PER_DAY: i64 = 5;

mod apply;
mod call;
mod call_back;
mod housekeeping;
mod lead;
mod reply;
mod staff;
pub use staff::{OwnerReply, owner_reply};
mod waiting;

pub use crate::event::{InboundSms, MissedCall};
use apply::apply_engine;
pub use call::{missed_call, opening_dialogue};
use housekeeping::in_order_state;
pub use housekeeping::{
    adopt_in_order_conversations, expire_fragments, forget_old, quiet_conversations,
};
pub use lead::{StateChange, set_lead_state};
use lead::{create_lead, tell_late_reply};
pub use reply::{FRAGMENT_TIMEOUT_MS, sms_received, status_report};
use reply::{Inbound, keyword_outside_conversation, text_received};
pub use waiting::{ModelRead, WaitingReply, next_waiting, step_waiting};

/// What the daemon must do after a step is stored.
#[derive(Debug, Default, PartialEq, Eq)]
pub struct After {
    /// Modems with new rows in their outbox.
    pub wake: Vec<ModemId>,
    /// Conversations with a reply waiting for the assistant (see [`next_waiting`]).
    pub think: Vec<ConversationId>,
}
