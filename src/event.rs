//! What the adapters tell the daemon: a call nobody answered, an SMS that came in, a delivery
//! report. The SIP service and each modem task build these same values and send them; neither
//! adapter knows the daemon, and the daemon knows neither adapter's wire format. Plain data.

use chrono::{DateTime, Utc};

use crate::domain::CallSource;
use crate::domain::{CallId, CallerId, E164, ModemId};

/// A call that nobody answered, from whichever source saw it.
#[derive(Debug, Clone)]
pub struct MissedCall {
    pub key: CallId,
    pub source: CallSource,
    pub caller: CallerId,
    pub caller_raw: String,
    /// The business number that was called, when the source knows it (SIP).
    pub called: Option<E164>,
    /// The modem whose SIM rang, for calls to the SIM.
    pub modem: Option<ModemId>,
    /// The `[[sip]]` account (its `name`) the call came in on, for SIP calls.
    pub sip_account: Option<String>,
    pub at: DateTime<Utc>,
}

/// A slot in a modem's message memory.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Storage {
    /// "SM" (SIM), "ME" (modem), "MT" (both).
    pub memory: String,
    pub index: u32,
}

/// An SMS or a delivery report as a modem read it: the PDU (hex, with its SMSC field), and where
/// it sits on the SIM, to delete once it is stored.
#[derive(Debug, Clone)]
pub struct InboundSms {
    pub modem: ModemId,
    pub pdu: String,
    pub storage: Option<Storage>,
    pub at: DateTime<Utc>,
}

/// What the daemon reacts to.
#[derive(Debug, Clone)]
pub enum Event {
    CallMissed(MissedCall),
    SmsReceived(InboundSms),
    /// A delivery report (SMS-STATUS-REPORT) for a sent SMS.
    StatusReport(InboundSms),
    /// Time for the periodic jobs. Sent by the daemon's own timer; tests send it to run them at
    /// once.
    Housekeeping,
}
