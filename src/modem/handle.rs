//! The public face of a modem task: `send_sms`, `delete`, `command`. Callers never see the channel.

use tokio::sync::{mpsc, oneshot, watch};

use super::{Error, ModemState, Storage};

/// What a delete did.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Deleted {
    Deleted,
    /// The slot held another message (or none): nothing was deleted.
    SlotChanged,
}
use crate::codec::pdu::SubmitPdu;
use crate::domain::ModemId;

pub(crate) type Responder<T> = oneshot::Sender<Result<T, Error>>;

/// What a modem task can be asked to do.
#[derive(Debug)]
pub(crate) enum Request {
    /// Send the parts of one SMS; answers with the message reference of each part.
    Send {
        pdus: Vec<SubmitPdu>,
        reply: Responder<Vec<u8>>,
    },
    /// Delete a stored message (after it is safely in the database), if the slot still holds
    /// that PDU: the SIM reuses a freed index for the next message.
    Delete {
        storage: Storage,
        pdu: String,
        reply: Responder<Deleted>,
    },
    /// Dial a USSD code (a balance code such as `*#10#`); answers with the network's reply, decoded.
    Ussd {
        code: String,
        reply: Responder<String>,
    },
    /// Run one raw AT command (the technician's console); answers with the response lines.
    Command {
        line: String,
        reply: Responder<Vec<String>>,
    },
}

/// How many requests may wait for a modem. Each is an SMS or a delete: the outbox worker sends one
/// SMS at a time, so the queue holds little more than deletes after a burst of replies.
pub(crate) const QUEUE: usize = 32;

/// A handle to one modem task. Cheap to clone.
#[derive(Clone)]
pub struct ModemHandle {
    id: ModemId,
    requests: mpsc::Sender<Request>,
    state: watch::Receiver<ModemState>,
}

impl ModemHandle {
    pub(crate) fn new(
        id: ModemId,
        requests: mpsc::Sender<Request>,
        state: watch::Receiver<ModemState>,
    ) -> Self {
        Self {
            id,
            requests,
            state,
        }
    }

    pub fn id(&self) -> &ModemId {
        &self.id
    }

    /// The modem's current state.
    pub fn state(&self) -> ModemState {
        self.state.borrow().clone()
    }

    /// Waits until the modem's state changes.
    pub async fn state_changed(&mut self) -> Result<ModemState, Error> {
        self.state.changed().await.map_err(|_| Error::Stopped)?;
        Ok(self.state.borrow().clone())
    }

    async fn ask<T>(&self, make: impl FnOnce(Responder<T>) -> Request) -> Result<T, Error> {
        let (reply, answer) = oneshot::channel();
        self.requests
            .send(make(reply))
            .await
            .map_err(|_| Error::Stopped)?;
        answer.await.map_err(|_| Error::Stopped)?
    }

    /// Sends one SMS (all its parts); returns each part's message reference.
    pub async fn send_sms(&self, pdus: Vec<SubmitPdu>) -> Result<Vec<u8>, Error> {
        self.ask(|reply| Request::Send { pdus, reply }).await
    }

    /// Deletes a message from the modem's memory if the slot still holds `pdu`.
    pub async fn delete(&self, storage: Storage, pdu: String) -> Result<Deleted, Error> {
        self.ask(|reply| Request::Delete {
            storage,
            pdu,
            reply,
        })
        .await
    }

    /// Dials a USSD code and returns the network's answer as text.
    pub async fn ussd(&self, code: &str) -> Result<String, Error> {
        let code = code.to_string();
        self.ask(|reply| Request::Ussd { code, reply }).await
    }

    /// Runs a raw AT command and returns its response lines.
    pub async fn command(&self, line: &str) -> Result<Vec<String>, Error> {
        let line = line.to_string();
        self.ask(|reply| Request::Command { line, reply }).await
    }
}
