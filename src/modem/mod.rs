//! The GSM modem: a task that owns the serial port and speaks AT to it ([`actor`]), the handle the
//! rest of the program uses ([`handle`]), and a virtual modem on a pseudo-terminal for the demo and
//! the tests ([`virtual_modem`]).

pub mod actor;
pub mod find;
pub mod handle;
pub mod models;
pub mod probe;
pub mod usb;
pub mod virtual_modem;

use std::path::PathBuf;
use std::time::Duration;

use crate::codec::at::{ErrorCode, Final};
use crate::domain::ModemId;
use crate::event::Event;

pub use actor::spawn;
pub use handle::ModemHandle;

/// Why a modem operation failed.
#[derive(Debug, Clone, thiserror::Error)]
pub enum Error {
    #[error("cannot open modem {}: {reason}{}", port.display(), open_hint(reason))]
    Open { port: PathBuf, reason: String },
    #[error("modem {} was disconnected (read returned end of file or an I/O error: {reason})", port.display())]
    Disconnected { port: PathBuf, reason: String },
    #[error("modem did not answer {command} within {}s", timeout.as_secs_f32())]
    Timeout { command: String, timeout: Duration },
    #[error("modem replied {} to {command}", result.describe())]
    Rejected { command: String, result: Final },
    #[error("modem sent no send prompt ('> ') after {command}; ESC sent to cancel")]
    NoPrompt { command: String },
    #[error(
        "modem did not confirm {command} after the PDU: the SMS may or may not have gone out, so it is not sent again by itself"
    )]
    OutcomeUnknown { command: String },
    #[error("{} of {parts} parts went out (references {references:?}), then: {cause}. Not sent again by itself: the caller would get the first parts twice", references.len())]
    PartlySent {
        references: Vec<u8>,
        parts: usize,
        cause: Box<Error>,
    },
    #[error("the SIM needs a PIN: set modem.pin in the config")]
    PinRequired,
    #[error(
        "the SIM refused modem.pin (+CME ERROR: 16). Check the PIN: two more wrong tries block the SIM (it then needs its PUK, in a phone)"
    )]
    WrongPin,
    #[error("the SIM is blocked ({state}): unblock it with its PUK in a phone, then put it back")]
    SimBlocked { state: String },
    #[error("modem replied {line:?} where {expected} was expected")]
    Unexpected {
        line: String,
        expected: &'static str,
    },
    #[error("the text cannot be encoded as SMS: {0}")]
    Encode(String),
    #[error(
        "the balance code {code} got no usable answer: {reason}. Check modem.balance_ussd (the network's balance code, e.g. *#10#) by dialling it from a phone with this SIM"
    )]
    Ussd { code: String, reason: String },
    #[error("{reason}")]
    NotFound { reason: String },
    #[error("modem is not ready ({reason}); the SMS stays queued")]
    NotReady { reason: String },
    #[error("the modem task has stopped")]
    Stopped,
    #[error(
        "{} leads to another {what} ({found}) than modem.{key} says ({expected}): ports renamed after a reboot, or a SIM moved? Not used, so no business texts from the wrong number. Fix modem.port (udev/99-textback.rules names ports by USB socket) or modem.{key}", port.display()
    )]
    WrongIdentity {
        port: PathBuf,
        what: &'static str,
        key: &'static str,
        expected: String,
        found: String,
    },
}

fn open_hint(reason: &str) -> &'static str {
    if reason.contains("ermission") {
        ". Add user textback to group dialout, or install udev/99-textback.rules"
    } else if reason.contains("No such file") || reason.contains("not found") {
        ". Is the dongle plugged in? `textback modem list` shows the ports found"
    } else if reason.contains("busy") || reason.contains("Resource") {
        ". Another program (ModemManager?) holds the port: `systemctl disable --now ModemManager`"
    } else {
        ""
    }
}

impl Error {
    /// Whether the SIM is missing or failed (TS 27.005 §3.2.5 310, 313; TS 27.007 10, 13).
    pub fn sim_missing(&self) -> bool {
        matches!(
            self,
            Error::Rejected {
                result: Final::Cms(ErrorCode::Number(310 | 313))
                    | Final::Cme(ErrorCode::Number(10 | 13)),
                ..
            }
        )
    }

    /// Whether the failure is the modem's, the SIM's or the network's rather than the message's:
    /// the message waits for them to come back and no try is used up.
    pub fn modem_unavailable(&self) -> bool {
        matches!(self, Error::NotReady { .. } | Error::Stopped)
            || self.sim_missing()
            || matches!(
                self,
                Error::Rejected {
                    // 314 SIM busy, 331 no network service, 332 network timeout; 30 no service.
                    result: Final::Cms(ErrorCode::Number(314 | 331 | 332))
                        | Final::Cme(ErrorCode::Number(14 | 30)),
                    ..
                }
            )
    }

    /// Whether only a person can fix this: retrying would use up SIM PIN tries, or cannot help.
    pub fn needs_a_person(&self) -> bool {
        matches!(
            self,
            Error::PinRequired | Error::WrongPin | Error::SimBlocked { .. }
        )
    }

    /// Whether trying again later may succeed. Permanent failures are recorded and not retried.
    pub fn is_transient(&self) -> bool {
        match self {
            Error::Open { .. }
            | Error::Disconnected { .. }
            | Error::Timeout { .. }
            | Error::NoPrompt { .. }
            | Error::NotReady { .. }
            | Error::Ussd { .. }
            | Error::NotFound { .. }
            | Error::Stopped => true,
            Error::Rejected { result, .. } => match result {
                // TS 27.005 §3.2.5: 500 unknown (often a send too soon after the last), network
                // and SIM busy conditions. 304 (invalid PDU) and 330 (no SMSC) need a fix, not a retry.
                Final::Cms(ErrorCode::Number(code)) => {
                    matches!(code, 38 | 41 | 42 | 47 | 314 | 331 | 332 | 500 | 512..=535)
                }
                Final::Cme(ErrorCode::Number(code)) => matches!(code, 14 | 30 | 31 | 100),
                Final::Error => true,
                _ => false,
            },
            Error::OutcomeUnknown { .. } | Error::PartlySent { .. } => false,
            Error::PinRequired
            | Error::WrongPin
            | Error::SimBlocked { .. }
            | Error::Unexpected { .. }
            | Error::WrongIdentity { .. }
            | Error::Encode(_) => false,
        }
    }
}

/// What the modem tells the rest of the program.
#[derive(Debug, Clone)]
pub enum ModemEvent {
    /// The modem is set up and serving.
    Ready { modem: ModemId, info: ModemInfo },
    /// The modem stopped answering or vanished; it is being reopened.
    Lost { modem: ModemId, reason: String },
    /// A call to the SIM rang out, an SMS or a delivery report came in: for the daemon.
    Input(Event),
}

pub use crate::event::Storage;

/// What the modem says about itself once set up.
#[derive(Debug, Clone, Default, PartialEq, Eq, serde::Serialize)]
pub struct ModemInfo {
    /// The port it answers on (the configured one, or where it was found by identity).
    pub port: String,
    pub manufacturer: String,
    pub model: String,
    pub imei: String,
    pub operator: String,
    /// AT+CSQ's RSSI: 0..=31, or 99 when unknown (TS 27.007 §8.5).
    pub rssi: Option<u8>,
    pub smsc: String,
    /// The SIM's subscriber identity (AT+CIMI).
    pub imsi: String,
    /// The SIM card's serial number.
    pub iccid: String,
    /// AT+CREG? <stat> (TS 27.007 §7.2): 1 home, 5 roaming, 2 searching, 3 denied, 0 not registered.
    pub registration: Option<u8>,
    /// The SIM's own number, when the SIM stores it (AT+CNUM).
    pub own_number: String,
    /// Messages in the SIM's store and how many it holds (AT+CPMS?).
    pub sms_used: Option<u32>,
    pub sms_capacity: Option<u32>,
}

impl ModemInfo {
    /// The registration state in words.
    pub fn registration_text(&self) -> &'static str {
        match self.registration {
            Some(1) => "registered (home network)",
            Some(5) => "registered (roaming)",
            Some(2) => "searching for a network",
            Some(3) => "registration denied: is the SIM active?",
            Some(0) => "not registered",
            Some(_) => "unknown",
            None => "unknown",
        }
    }

    /// Signal as bars out of 5, as a phone would show it.
    pub fn signal_bars(&self) -> Option<u8> {
        self.signal_dbm().map(|dbm| match dbm {
            i32::MIN..=-108 => 0,
            -107..=-100 => 1,
            -99..=-92 => 2,
            -91..=-84 => 3,
            -83..=-76 => 4,
            _ => 5,
        })
    }

    /// Signal strength in dBm from the RSSI (TS 27.007 §8.5: 0 is -113 dBm or less, 31 is -51 dBm
    /// or more, 2 dBm a step).
    pub fn signal_dbm(&self) -> Option<i32> {
        self.rssi
            .filter(|&r| r <= 31)
            .map(|r| -113 + 2 * i32::from(r))
    }
}

// One value per modem, held in its watch channel and cloned when read: its size is no cost.
#[allow(clippy::large_enum_variant)]
/// The modem's state, as the status page and `doctor` show it.
#[derive(Debug, Clone, PartialEq, Eq, serde::Serialize)]
#[serde(tag = "state", rename_all = "snake_case")]
pub enum ModemState {
    Starting,
    Ready { info: ModemInfo },
    Lost { reason: String },
}

impl ModemState {
    /// Set up and on the network (home or roaming): texts can go out now.
    pub fn is_usable(&self) -> bool {
        matches!(self, ModemState::Ready { info } if matches!(info.registration, Some(1 | 5)))
    }
}
