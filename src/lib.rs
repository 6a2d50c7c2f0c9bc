//! textback: an on-premise missed-call text-back gateway.
//!
//! # Code map
//!
//! A missed call enters and its SMS leaves like this:
//!
//! `modem/actor.rs` reads `RING` and `+CLIP` from the serial port (framed and classified by
//! `codec/at.rs`) and emits `ModemEvent::CallMissed` once the ringing stops → `daemon.rs` loop
//! hands it to `flow.rs`, which in one store transaction asks `core/policy.rs` whether to text,
//! starts a conversation with `core/conversation.rs`, and queues the first SMS in the outbox (`store/`)
//! → `outbox.rs` takes the row, encodes it with `codec/pdu.rs` and calls `modem/handle.rs`
//! `send_sms` → the actor writes `AT+CMGS` and reads `+CMGS: <reference>` → the row is marked sent.
//! A reply arrives as `+CMTI` → `AT+CMGR` → `ModemEvent::SmsReceived` → `flow.rs` stores it, moves
//! the conversation on and queues the next question → and once every question is answered, a lead
//! row with one delivery row per recipient and channel → `leads/deliver.rs` takes each due row,
//! renders `leads/summary.rs` with a link signed by `leads/token.rs`, and sends it through
//! `leads/email.rs`, `leads/whatsapp.rs`, `leads/webhook.rs`, or the outbox (the owner's SMS),
//! recording each outcome; `cli/leads.rs` is `textback leads`.
//!
//! # Architecture invariants
//!
//! - Nothing in `codec/` or `core/` imports tokio, touches the clock or does I/O (`.ci/run` checks
//!   the imports with grep).
//! - Only `store/` contains SQL.
//! - Only the modem actor reads or writes a serial port.
//! - A row is written before the thing it describes is done: an SMS is in the outbox before the
//!   modem is asked to send it, and an SMS that came in is stored before it is deleted from the SIM.
//!
//! # Words
//!
//! AT: the modem command language (ITU-T V.250, 3GPP TS 27.007 and 27.005). URC: unsolicited result
//! code, a line the modem sends on its own. PDU: the binary form of an SMS (3GPP TS 23.040). SMSC:
//! the network's SMS service centre. E.164: the international phone number form (+447700900123).
//! SIP: the VoIP signalling protocol (RFC 3261).

pub mod assistant;
pub mod cli;
pub mod clock;
pub mod codec;
pub mod config;
pub mod core;
pub mod daemon;
pub mod domain;
pub mod event;
pub mod flow;
pub mod leads;
pub mod llm;
pub mod modem;
pub mod outbox;
pub mod sip;
pub mod store;
pub mod time_text;
pub mod web;
