//! The SIP endpoint: textback as a SIP user agent that registers to a trunk or PBX, receives
//! diverted calls without answering them, and turns each into exactly one missed call.
//!
//! Message layer (pure functions over bytes and parsed messages, no I/O). rsip 0.4 parses and
//! builds messages; these modules close the gaps found in it:
//! - [`wire`]: datagram parsing with normalisation (compact names, folding, comma lists,
//!   keep-alives, size limits) and responses with RFC 3261 reason phrases;
//! - [`framing`]: cutting SIP messages out of a TCP byte stream (RFC 3261 §18.3);
//! - [`digest`]: Digest authentication challenges and answers (RFC 2617, RFC 7616, RFC 8760);
//! - [`identity`]: the caller and the called business number of an INVITE.
//!
//! User-agent core (sans-I/O: every entry point takes the current time as an
//! [`std::time::Instant`] and returns actions for the shell to perform):
//! - [`msg`]: lenient header-value helpers and RFC 3261 §8.2.6 response construction;
//! - [`transaction`]: RFC 3261 §17 server transactions and the client non-INVITE transaction;
//! - [`endpoint`]: the never-answering UAS core (ring, then reject; one missed call per call);
//! - [`guard`]: per-source rate limits (token buckets), scan and rejection counting, bans;
//! - [`register`]: the REGISTER client for one account (RFC 3261 §10, RFC 5626 keep-alive).
//!
//! Shell (tokio): [`transport`] owns the sockets of one local address and drives the core;
//! [`service`] starts one transport per local address from the config and hands missed calls to
//! the daemon.
//!
//! Driving the core: parse each datagram or frame with `wire`. Requests go to
//! [`endpoint::Endpoint::handle_request`]; requests with a method rsip cannot represent go to
//! [`endpoint::Endpoint::handle_unrecognized_method`]; responses go to the
//! [`register::Registration`] whose `matches_response` is true; a bare CRLF keep-alive is
//! answered or ignored. Perform the returned actions, then sleep until the earliest
//! `next_deadline()` and call `poll_timers` / `poll`.

pub mod digest;
pub mod endpoint;
pub mod framing;
pub mod guard;
pub mod identity;
pub mod msg;
pub mod register;
pub mod service;
pub mod transaction;
pub mod transport;
pub mod wire;

#[cfg(test)]
pub(crate) mod testutil;
