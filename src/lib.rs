//! textback: an on-premise missed-call text-back gateway.
//!
//! # Code map
//!
//! Three layers. `codec/` (bytes ⇄ meaning: AT lines, SMS PDUs, GSM-7, phone numbers), `core/`
//! (decisions: who to text, what a reply says, what to ask next) and `domain/` (value types) are
//! pure: no I/O, no clock, no tokio, and they import only each other, as do the SIP message
//! modules of `sip/` (wire, framing, msg, digest, identity, transaction, endpoint, register,
//! guard). Around them the shell: one task per resource (each
//! modem, each SIP port, each outbox, the store's writer, the assistant, the dashboard), talking
//! by channels. `tests/architecture.rs` checks all of this.
//!
//! ## A missed call, end to end
//!
//! 1. **In.** A call diverted over SIP reaches `sip/transport.rs` (one task per socket), which
//!    hands whole messages to `sip/service.rs`, the SIP entry: it drives `sip/endpoint.rs` (the
//!    UAS core, which never answers: `180 Ringing`, then `487` when the caller gives up or `480`
//!    when the ring time runs out) and emits `Event::CallMissed` (`event.rs`). A call to the SIM itself
//!    enters at `modem/actor.rs`, the modem entry: it reads `RING`/`+CLIP` (framed by
//!    `codec/at.rs`) and emits the same event, wrapped in `ModemEvent::Input`, when the ringing
//!    stops.
//! 2. **Decide.** `daemon.rs` runs the event loop and hands each event to `flow/`: `flow/call.rs`
//!    routes the call to a business (`core/routing.rs`), asks `core/policy.rs` whether to text
//!    (opted out, withheld, already in a conversation, rate limits), picks the modem, and opens
//!    the conversation with `core/conversation.rs`, all in one store transaction
//!    (`store/tx.rs`); `flow/apply.rs` stores what the engine decided and queues the first SMS.
//!    A call that gets no text is told to the business as a call back (`flow/call_back.rs`).
//! 3. **Out.** `wake.rs` wakes the workers a stored step gave work to; `outbox.rs` (one worker
//!    per modem) takes the queued row, encodes it with
//!    `codec/pdu.rs` and `codec/gsm7.rs`, and asks the modem through `modem/handle.rs`; the actor
//!    writes `AT+CMGS`, reads `+CMGS: <ref>`, and the row is marked sent (delivered, later, from
//!    the status report, in `flow/reply.rs`). A refusal by the network is read by
//!    `core/refusal.rs`; the outbox holds a refused SIM's queue, moves texts to another SIM of
//!    the business (off the network, over the recipient cap), records each fault
//!    (`store/health.rs`) and tells the business through `alert.rs`. Where a SIM has a balance
//!    code, `balance.rs` dials it now and then (`AT+CUSD`, decoded by `codec/ussd.rs`), reads the
//!    credit with `core/balance.rs` and tells the business when it is low; `self_test.rs` texts
//!    each SIM's daily self-test (`core/self_test.rs`: its token, its time) and fails it when the
//!    text does not come back, which `flow/reply.rs` recognises before any caller logic.
//! 4. **The conversation.** A reply arrives as `+CMTI` → `AT+CMGR` → `Event::SmsReceived` →
//!    `flow/reply.rs` stores it (joining multipart texts, STOP/HELP/START, loops with machines
//!    per `core/loops.rs`) and moves the conversation on: `core/conversation.rs` reads the text
//!    with `core/understand.rs` (which cuts it into clauses, `core/clauses.rs`) and the readers
//!    beside it (`core/names.rs`, `core/when.rs`, `core/yesno.rs`, `core/urgency.rs`,
//!    `core/slots.rs`; what is left is read for the reason in `core/reason.rs`) and queues the
//!    next question. With a local model
//!    (`[profile.llm]`) the reply waits instead (`flow/waiting.rs`): `assistant.rs` asks
//!    `llm/client.rs`, and `core/proposal.rs` checks whatever the model proposes before it is
//!    used. Quiet callers, lost parts of a multipart text, retention: `flow/housekeeping.rs`.
//!    A text from a business's staff number (`profile.staff_numbers`) is a command, never a
//!    caller's reply: `core/staff.rs` reads it ("R 12 on my way", "W 12", "PA 2") and decides
//!    what it does; `flow/staff.rs` carries it out (the owner's reply to the caller, a lead's
//!    state, a pause) and forwards the caller's next texts to the owner who took over.
//! 5. **The lead.** Once every question is answered (or the caller goes quiet), `flow/lead.rs`
//!    writes a lead row with one delivery row per recipient and channel; `leads/deliver.rs`, where
//!    the lead leaves the box, takes each due row, renders `leads/summary.rs` with a link signed
//!    by `leads/token.rs`, and sends it through `leads/email.rs`, `leads/whatsapp.rs`,
//!    `leads/webhook.rs`, or the outbox (the owner's SMS), recording each outcome. What the
//!    owner is told that is not a lead (a caller to call back, a modem alert, worded by
//!    `core/notice.rs`; the morning summary, timed and worded by `core/morning.rs` and made by
//!    `notify/summary.rs`) is a `notices` row (`store/notices.rs`) for each email, WhatsApp and
//!    webhook channel, sent by `notify/deliver.rs` through the same channels.
//!    A conversation stays on the SIM it started on: `daemon.rs` records which SIM (ICCID) each
//!    modem holds when it is ready, and the store moves the SIM's conversations and queued texts
//!    to it (`store/health.rs`); the outbox sends none of another SIM's.
//!    Which port is which `[[modem]]` (its configured port, its USB serial's ports, or any port
//!    holding its IMEI or ICCID after a replug) is `modem/find.rs`, over `modem/usb.rs`'s sysfs
//!    reading.
//! 6. **Looking at it.** `web/` is the dashboard and API (`web/auth.rs` its login); `cli/` is
//!    the `textback` command, one module per command group (`cli/leads.rs`, `cli/notices.rs`,
//!    `cli/doctor.rs`, `cli/dialogue.rs`, `cli/demo.rs`, …). The config is read and checked in
//!    `config/`, each problem named by its key path.
//!
//! # Architecture invariants
//!
//! - The pure layers (above) import nothing of the shell and do no I/O.
//! - No import cycle between the files of `src/`.
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

pub mod alert;
pub mod assistant;
pub mod balance;
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
pub mod notify;
pub mod outbox;
pub mod self_test;
pub mod sip;
pub mod store;
pub mod time_text;
pub mod wake;
pub mod web;
