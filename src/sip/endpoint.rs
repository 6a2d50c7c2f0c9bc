//! The UAS core of textback: receives diverted calls and never answers them (RFC 3261 §8.2,
//! §9.2, §13.3), sans-I/O.
//!
//! An INVITE for one of our users gets `100 Trying` at once and `180 Ringing` (after
//! [`EndpointConfig::ring_delay`], default immediately). The call then rings until the caller
//! gives up (CANCEL → `200` to the CANCEL, `487 Request Terminated` to the INVITE, §9.2) or until
//! [`EndpointConfig::max_ring`], when the configured final response is sent (480 by default,
//! 486 or 603; never 2xx, so no dialog is ever confirmed). Either way the call yields exactly one
//! [`Action::MissedCall`]; request retransmissions are absorbed by the transaction layer and never
//! reach this code.
//!
//! Other requests:
//! * OPTIONS → 200 with `Allow` and `Accept: application/sdp` (§11.2).
//! * BYE, and any request with a To tag → 481: we never establish dialogs (§12.2.2, §15.1.2).
//! * Methods rsip recognises but we do not support (REGISTER, INFO, MESSAGE, NOTIFY, PRACK,
//!   PUBLISH, REFER, SUBSCRIBE, UPDATE) → **405** with `Allow` (§8.2.1: "recognizes but does not
//!   support"). PRACK is among them because we never send reliable provisionals (RFC 3262).
//! * Extension methods rsip cannot represent never become an [`rsip::Request`]; the wire layer
//!   passes their headers to [`Endpoint::handle_unrecognized_method`] → **501** (§21.5.2: "does
//!   not recognize the request method").
//! * A `Require` naming any extension → 420 with `Unsupported` (§8.2.2.3).
//! * A missing or malformed Via/From/To/Call-ID/CSeq → 400 with the reason in the status line
//!   (dropped silently if even the Via is unusable, since no response could be routed).
//! * A request the wire layer found not well formed (cut off, control characters, a second From
//!   or Call-ID...) never becomes an [`rsip::Request`]; its headers, read leniently, go to
//!   [`Endpoint::handle_malformed`] → **400**, statelessly, and it is never a call.
//! * A source over its [`super::guard`] rate limits: any request is dropped; a new INVITE gets a
//!   stateless 503 with `Retry-After` (§21.5.4). Both count towards a ban unless the source is
//!   trusted, as do many distinct Request-URI users and methods from one source.
//! * A new INVITE while [`EndpointConfig::max_ringing`] calls ring, or while the shell has no
//!   room to hand on one more missed call ([`Endpoint::set_call_room`]) → a stateless 503 with
//!   `Retry-After`: memory stays bounded under a flood, and a call that rang is never dropped.
//! * After [`Endpoint::shutdown`] (which ends every ringing call): a new INVITE → 503.

use std::collections::HashMap;
use std::net::{IpAddr, SocketAddr};
use std::time::{Duration, Instant};

use rsip::headers::UntypedHeader;
use rsip::{Header, Headers, Method, Request, Response, SipMessage};

use super::guard::{Guard, GuardConfig, OverLimit, Verdict};
use super::msg::{self, MsgError, RequestInfo, ResponseBase};
use super::transaction::{
    Received, Termination, TimerQueue, TransactionConfig, TransactionKey, Transactions, TxEvent,
};
use super::wire::WireError;

/// Methods we implement, for `Allow` (RFC 3261 §20.5).
pub const ALLOW: &str = "INVITE, ACK, CANCEL, BYE, OPTIONS";

/// Default of [`EndpointConfig::max_ringing`] (`sip.max_ringing_calls`).
pub const DEFAULT_MAX_RINGING: usize = 100;

pub use crate::domain::FinalResponse;

/// Settings of the [`Endpoint`].
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct EndpointConfig {
    /// Request-URI users we take calls for (our registered contact users); others get 404. Empty
    /// accepts any user.
    pub users: Vec<String>,
    /// How long a call may ring before the final response (default 30 s).
    pub max_ring: Duration,
    /// Delay between `100 Trying` and `180 Ringing` (default zero: both at once).
    pub ring_delay: Duration,
    /// Final response after `max_ring` (default 480).
    pub final_response: FinalResponse,
    /// `Server` header value on every response; `None` (default) sends none, which tells
    /// scanners less.
    pub server_header: Option<String>,
    /// `Contact` URI for the dialog-creating 180 (§12.1.1); `None` reuses the Request-URI.
    pub contact: Option<String>,
    /// Transaction table settings; its `max_transactions` also caps concurrent calls.
    pub transactions: TransactionConfig,
    /// Per-source rejection counting / banning.
    pub guard: GuardConfig,
    /// Calls ringing at once, from all sources: beyond it a new INVITE gets a stateless 503
    /// with `Retry-After`, so a flood cannot grow the tables (default
    /// [`DEFAULT_MAX_RINGING`]).
    pub max_ringing: usize,
}

impl Default for EndpointConfig {
    fn default() -> Self {
        Self {
            users: Vec::new(),
            max_ring: Duration::from_secs(30),
            ring_delay: Duration::ZERO,
            final_response: FinalResponse::default(),
            server_header: None,
            contact: None,
            transactions: TransactionConfig::default(),
            guard: GuardConfig::default(),
            max_ringing: DEFAULT_MAX_RINGING,
        }
    }
}

/// The shell's verdict on a request's source, asked before any new request is processed.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Decision {
    /// Process normally; rejections still count towards a ban.
    Allow,
    /// Process normally and never ban this source (e.g. the registrar / trunk).
    Trusted,
    /// Answer `403 Forbidden` and report [`Action::Rejected`].
    Forbid,
    /// Ignore silently and report [`Action::Rejected`].
    Drop,
}

/// Source admission (allowlists) enforced by the shell.
pub trait Admission {
    /// Decides about a new (non-retransmitted, non-ACK) request from `source`. Also asked about
    /// a request refused for its source's rate or for scanning, to know whether that counts
    /// towards a ban ([`Decision::Trusted`] sources are never banned).
    fn check(&mut self, source: SocketAddr, request: &Request) -> Decision;
}

impl<F: FnMut(SocketAddr, &Request) -> Decision> Admission for F {
    fn check(&mut self, source: SocketAddr, request: &Request) -> Decision {
        self(source, request)
    }
}

/// Admits everything (the default).
#[derive(Debug, Clone, Copy, Default)]
pub struct AllowAll;

impl Admission for AllowAll {
    fn check(&mut self, _: SocketAddr, _: &Request) -> Decision {
        Decision::Allow
    }
}

/// How a call ended.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum CallEnd {
    /// The caller hung up: CANCEL received (→ 487).
    Cancelled,
    /// [`EndpointConfig::max_ring`] elapsed (→ the configured final response).
    RingTimeout,
    /// The INVITE transaction ended without either (safety net; not expected).
    Aborted,
    /// The endpoint shut down while it rang (→ the configured final response).
    Shutdown,
}

/// One missed call, reported once when the call has ended.
#[derive(Debug, Clone, PartialEq)]
pub struct MissedCall {
    /// `Call-ID` of the INVITE.
    pub call_id: String,
    /// The INVITE as first received (for caller / called number extraction).
    pub invite: Request,
    /// Where it came from.
    pub source: SocketAddr,
    /// When the INVITE arrived.
    pub started_at: Instant,
    /// When the call ended.
    pub ended_at: Instant,
    /// How it ended.
    pub how: CallEnd,
    /// Final status sent to the INVITE (487, 480, 486, 603; 500 if aborted).
    pub final_status: u16,
}

/// Why a request was refused (for rate-limited logging by the shell).
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum RejectReason {
    /// [`Decision::Forbid`]: answered 403.
    Forbidden,
    /// [`Decision::Drop`]: not answered.
    Dropped,
    /// INVITE for a user we do not serve: answered 404.
    UnknownUser(String),
    /// Mandatory header missing or malformed: answered 400 (or dropped without a usable Via).
    Malformed(MsgError),
    /// Not a well-formed message (RFC 3261 §7, §20, §25: cut off, control characters, a header
    /// that takes one value given twice): answered 400 (or dropped without a usable Via).
    NotWellFormed(WireError),
    /// The source is over one of its rate limits ([`GuardConfig::requests_per_second`]: dropped;
    /// [`GuardConfig::invites_per_second`]: answered 503 with `Retry-After`).
    RateLimited(RateLimit),
    /// A new call while the endpoint is full ([`Busy`]): answered 503 with `Retry-After`. Not
    /// the source's fault, so it never counts towards a ban.
    Busy(Busy),
    /// The source used more distinct Request-URI users and methods than
    /// [`GuardConfig::max_targets`] in the guard's window (the request itself is processed).
    Scanning {
        /// How many it used.
        distinct: u32,
    },
}

/// Why a new call was refused with 503 although its source is within its limits.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Busy {
    /// [`EndpointConfig::max_ringing`] calls are ringing.
    Ringing { limit: usize },
    /// The shell's queue to the daemon has room for only this many more missed calls, and as
    /// many are ringing ([`Endpoint::set_call_room`]).
    QueueFull { room: usize },
}

/// Which per-source rate limit a request exceeded.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum RateLimit {
    /// Requests of any kind.
    Requests,
    /// New INVITE transactions.
    Invites,
}

/// What the shell must do.
#[derive(Debug, Clone, PartialEq)]
pub enum Action {
    /// Send `message` to `to` (over UDP, or on the connection from `to` for TCP/TLS).
    Send {
        /// Destination (RFC 3261 §18.2.2 / RFC 3581).
        to: SocketAddr,
        /// The message.
        message: SipMessage,
    },
    /// An INVITE was accepted and is ringing (for dashboards).
    CallStarted {
        /// Its `Call-ID`.
        call_id: String,
        /// Where it came from.
        source: SocketAddr,
    },
    /// A call ended unanswered: exactly one per accepted INVITE.
    MissedCall(Box<MissedCall>),
    /// A request was refused.
    Rejected {
        /// Its source.
        source: SocketAddr,
        /// Why.
        reason: RejectReason,
    },
    /// `ip` reached the rejection threshold and is ignored until `until`.
    Banned {
        /// The banned address.
        ip: IpAddr,
        /// End of the ban.
        until: Instant,
    },
}

/// Counters for status displays.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct EndpointStats {
    /// INVITEs accepted (rang).
    pub calls: u64,
    /// Missed calls reported.
    pub missed_calls: u64,
    /// Requests refused ([`Action::Rejected`]).
    pub rejected: u64,
    /// Requests dropped because their source was banned.
    pub dropped_banned: u64,
    /// Requests refused because the tables were full.
    pub overloaded: u64,
    /// Requests refused because their source was over a rate limit.
    pub rate_limited: u64,
}

#[derive(Debug)]
struct Call {
    invite: Request,
    source: SocketAddr,
    started_at: Instant,
    /// 180 still to send at this time.
    ring_at: Option<Instant>,
    ring_deadline: Instant,
    ended_at: Option<Instant>,
    dialog: DialogId,
}

impl Call {
    fn deadline(&self, linger: Duration) -> Instant {
        match self.ended_at {
            Some(e) => e + linger,
            None => self.ring_at.unwrap_or(self.ring_deadline),
        }
    }
}

/// Call-ID, From tag, CSeq number: detects merged requests (§8.2.2.2).
type DialogId = (String, String, u32);

/// The UAS core. See the module documentation.
pub struct Endpoint {
    config: EndpointConfig,
    tx: Transactions,
    calls: HashMap<TransactionKey, Call>,
    by_dialog: HashMap<DialogId, TransactionKey>,
    call_timers: TimerQueue<TransactionKey>,
    admission: Box<dyn Admission + Send>,
    guard: Guard,
    next_purge: Option<Instant>,
    stats: EndpointStats,
    /// Set by [`Endpoint::shutdown`]: new INVITEs get 503.
    stopping: bool,
    /// Calls ringing now (accepted, not yet ended).
    ringing: usize,
    /// How many more missed calls the shell can take without waiting (see
    /// [`Endpoint::set_call_room`]); `None`: no limit.
    call_room: Option<Box<dyn Fn() -> usize + Send>>,
}

impl std::fmt::Debug for Endpoint {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Endpoint")
            .field("config", &self.config)
            .field("transactions", &self.tx.len())
            .field("calls", &self.calls.len())
            .field("stats", &self.stats)
            .finish_non_exhaustive()
    }
}

impl Endpoint {
    /// A UAS admitting every source ([`AllowAll`]). `max_ring` is kept below the transaction
    /// TU timeout by raising the latter if needed.
    pub fn new(mut config: EndpointConfig) -> Self {
        let t = &mut config.transactions;
        let need = config.max_ring + config.ring_delay + t.timers.t1x64();
        if t.tu_timeout < need {
            t.tu_timeout = need;
        }
        Self {
            tx: Transactions::new(config.transactions.clone()),
            guard: Guard::new(config.guard.clone()),
            config,
            calls: HashMap::new(),
            by_dialog: HashMap::new(),
            call_timers: TimerQueue::default(),
            admission: Box::new(AllowAll),
            next_purge: None,
            stats: EndpointStats::default(),
            stopping: false,
            ringing: 0,
            call_room: None,
        }
    }

    /// Replaces the admission hook.
    pub fn set_admission(&mut self, admission: impl Admission + Send + 'static) {
        self.admission = Box::new(admission);
    }

    /// The per-source limits in force.
    pub fn guard_config(&self) -> &GuardConfig {
        self.guard.config()
    }

    /// Counters.
    pub fn stats(&self) -> EndpointStats {
        self.stats
    }

    /// Calls ringing or recently ended (kept 64·T1 after the end to recognise stragglers).
    pub fn calls_len(&self) -> usize {
        self.calls.len()
    }

    /// Calls still ringing.
    pub fn ringing(&self) -> usize {
        self.ringing
    }

    /// Tells the endpoint how many more missed calls the shell can hand on without waiting (the
    /// free places in its queue to the daemon). A new INVITE is taken only while the calls
    /// ringing are fewer than that, so that every call that rings has its place when it ends:
    /// a call answered as missed is never dropped for a full queue. Beyond it, 503 with
    /// `Retry-After` (back-pressure the trunk can act on).
    pub fn set_call_room(&mut self, room: impl Fn() -> usize + Send + 'static) {
        self.call_room = Some(Box::new(room));
    }

    /// Live server transactions.
    pub fn transactions_len(&self) -> usize {
        self.tx.len()
    }

    /// Whether no call, transaction or timer is left.
    pub fn is_idle(&self) -> bool {
        self.calls.is_empty() && self.tx.is_empty() && self.next_deadline().is_none()
    }

    /// When [`Endpoint::poll_timers`] must next be called.
    pub fn next_deadline(&self) -> Option<Instant> {
        [self.tx.next_deadline(), self.call_timers.next()]
            .into_iter()
            .flatten()
            .min()
    }

    /// Processes one request received from `source` (`reliable`: over TCP/TLS).
    pub fn handle_request(
        &mut self,
        req: Request,
        source: SocketAddr,
        reliable: bool,
        now: Instant,
    ) -> Vec<Action> {
        let mut out = Vec::new();
        self.maybe_purge(now);
        if self.guard.is_banned(source.ip(), now) {
            self.stats.dropped_banned += 1;
            return out;
        }
        if self.guard.take_request(source.ip(), now).is_err() {
            // Dropped without an answer: answering a flood would double it, and a peer that
            // slows down retransmits (RFC 3261 §17.1.1.2, §17.1.2.2), so a legitimate request
            // is only delayed. ACKs and retransmissions count too: they cost as much to read.
            let trusted = self.admission.check(source, &req) == Decision::Trusted;
            self.stats.rate_limited += 1;
            let reason = RejectReason::RateLimited(RateLimit::Requests);
            self.reject(source, reason, trusted, now, &mut out);
            return out;
        }
        let info = match RequestInfo::from_request(&req) {
            Ok(info) => info,
            Err(e) => {
                self.malformed(&req, e, source, reliable, now, &mut out);
                return out;
            }
        };
        let mut ev = Vec::new();
        let key = match self.tx.receive(&req, &info, now, &mut ev) {
            Received::New(key) => key,
            Received::Retransmission(_) | Received::AckAbsorbed(_) | Received::StrayAck => {
                self.absorb(ev, now, &mut out);
                return out;
            }
        };
        let Ok(base) = ResponseBase::new(&req.headers, source, reliable) else {
            return out;
        };
        let decision = self.admission.check(source, &req);
        let trusted = decision == Decision::Trusted;
        if !trusted {
            let uri = req.uri.to_string();
            let user = msg::uri_user(&uri).unwrap_or("");
            let method = req.method.to_string();
            if let Some(distinct) = self.guard.record_target(source.ip(), &method, user, now) {
                self.reject(
                    source,
                    RejectReason::Scanning { distinct },
                    false,
                    now,
                    &mut out,
                );
            }
        }
        match decision {
            Decision::Drop => {
                self.reject(source, RejectReason::Dropped, trusted, now, &mut out);
                return out;
            }
            Decision::Forbid => {
                let resp = self.decorate(base.response(403));
                self.answer(key, &base, resp, reliable, now, &mut ev);
                self.absorb(ev, now, &mut out);
                self.reject(source, RejectReason::Forbidden, trusted, now, &mut out);
                return out;
            }
            Decision::Allow | Decision::Trusted => {}
        }
        // RFC 3261 §8.2: method inspection (§8.2.1), then Request-URI (§8.2.2.1), merged
        // requests (§8.2.2.2) and Require (§8.2.2.3), then method-specific processing.
        let unsupported = match req.method {
            Method::Cancel | Method::Ack => None,
            _ => required_extensions(&req.headers),
        };
        match req.method {
            Method::Register
            | Method::Info
            | Method::Message
            | Method::Notify
            | Method::PRack
            | Method::Publish
            | Method::Refer
            | Method::Subscribe
            | Method::Update => {
                let mut resp = self.decorate(base.response(405));
                msg::push_header(&mut resp, rsip::headers::Allow::new(ALLOW).into());
                self.answer(key, &base, resp, reliable, now, &mut ev);
            }
            // ACK never reaches here: the table classifies every ACK.
            Method::Ack => {}
            Method::Invite => self.on_invite(
                key,
                req,
                info,
                base,
                unsupported,
                source,
                reliable,
                trusted,
                now,
                &mut ev,
                &mut out,
            ),
            _ if unsupported.is_some() => {
                let resp = self.bad_extension(&base, unsupported);
                self.answer(key, &base, resp, reliable, now, &mut ev);
            }
            Method::Cancel => {
                self.on_cancel(key, &req, &info, &base, reliable, now, &mut ev, &mut out)
            }
            Method::Options => {
                let mut resp = self.decorate(base.response(200));
                msg::push_header(&mut resp, rsip::headers::Allow::new(ALLOW).into());
                msg::push_header(
                    &mut resp,
                    rsip::headers::Accept::new("application/sdp").into(),
                );
                self.answer(key, &base, resp, reliable, now, &mut ev);
            }
            Method::Bye => {
                let resp = self.decorate(base.response(481));
                self.answer(key, &base, resp, reliable, now, &mut ev);
            }
        }
        self.absorb(ev, now, &mut out);
        sends_first(out)
    }

    /// Answers a request whose method the wire parser could not represent (an extension method
    /// such as `FOO`) with `501 Not Implemented` (RFC 3261 §21.5.2), statelessly. `headers` are
    /// the request's headers; ACK is never answered.
    pub fn handle_unrecognized_method(
        &mut self,
        method: &str,
        headers: &Headers,
        source: SocketAddr,
        reliable: bool,
        now: Instant,
    ) -> Vec<Action> {
        let mut out = Vec::new();
        if method.eq_ignore_ascii_case("ACK") || self.guard.is_banned(source.ip(), now) {
            return out;
        }
        let over = self.guard.take_request(source.ip(), now).is_err();
        let scanning = if over {
            None
        } else {
            self.guard.record_target(source.ip(), method, "", now)
        };
        if over || scanning.is_some() {
            // The admission hook judges a request; this one has only its headers to show.
            let stand_in = Request {
                method: Method::Options,
                uri: rsip::Uri::default(),
                version: rsip::Version::V2,
                headers: headers.clone(),
                body: Vec::new(),
            };
            let trusted = self.admission.check(source, &stand_in) == Decision::Trusted;
            if over {
                self.stats.rate_limited += 1;
                let reason = RejectReason::RateLimited(RateLimit::Requests);
                self.reject(source, reason, trusted, now, &mut out);
                return out;
            }
            if let Some(distinct) = scanning.filter(|_| !trusted) {
                self.reject(
                    source,
                    RejectReason::Scanning { distinct },
                    false,
                    now,
                    &mut out,
                );
            }
        }
        if let Ok(base) = ResponseBase::new(headers, source, reliable) {
            let mut resp = self.decorate(base.response(501));
            msg::push_header(&mut resp, rsip::headers::Allow::new(ALLOW).into());
            out.push(Action::Send {
                to: base.destination,
                message: resp.into(),
            });
        }
        out
    }

    /// Answers a request that is not well formed ([`WireError`]) with `400 Bad Request` and the
    /// problem as its reason phrase, statelessly (RFC 3261 §8.2.6.1, §21.4.1): it never starts
    /// a transaction or a call. `headers` are what [`super::wire::reply_headers`] read of it;
    /// ACK is never answered. It counts towards a ban like any refusal (never the trunk's).
    pub fn handle_malformed(
        &mut self,
        method: &str,
        headers: &Headers,
        problem: WireError,
        source: SocketAddr,
        reliable: bool,
        now: Instant,
    ) -> Vec<Action> {
        let mut out = Vec::new();
        if self.guard.is_banned(source.ip(), now) {
            self.stats.dropped_banned += 1;
            return out;
        }
        // The admission hook judges a request; this one has only its headers to show.
        let stand_in = Request {
            method: Method::Options,
            uri: rsip::Uri::default(),
            version: rsip::Version::V2,
            headers: headers.clone(),
            body: Vec::new(),
        };
        let trusted = self.admission.check(source, &stand_in) == Decision::Trusted;
        if self.guard.take_request(source.ip(), now).is_err() {
            self.stats.rate_limited += 1;
            let reason = RejectReason::RateLimited(RateLimit::Requests);
            self.reject(source, reason, trusted, now, &mut out);
            return out;
        }
        if !method.eq_ignore_ascii_case("ACK")
            && let Ok(base) = ResponseBase::new(headers, source, reliable)
        {
            let reason: String = problem.to_string().chars().take(120).collect();
            let resp = self.decorate(base.response_with_reason(400, &reason));
            out.push(Action::Send {
                to: base.destination,
                message: resp.into(),
            });
        }
        self.reject(
            source,
            RejectReason::NotWellFormed(problem),
            trusted,
            now,
            &mut out,
        );
        out
    }

    /// Ends every call still ringing with the configured final response, as if it had rung out
    /// now: each yields its one [`Action::MissedCall`] (with [`CallEnd::Shutdown`]) after the
    /// response to send. For when the endpoint stops: a call must not be lost because the
    /// daemon stopped while it rang. Calls that already ended are left to their timers. From
    /// then on a new INVITE gets `503 Service Unavailable` (RFC 3261 §21.5.4), so that the
    /// trunk can take the call elsewhere instead of ringing a textback that is going away.
    pub fn shutdown(&mut self, now: Instant) -> Vec<Action> {
        self.stopping = true;
        let mut ringing: Vec<(Instant, TransactionKey)> = self
            .calls
            .iter()
            .filter(|(_, call)| call.ended_at.is_none())
            .map(|(key, call)| (call.started_at, key.clone()))
            .collect();
        ringing.sort_by_key(|(started, _)| *started);
        let code = self.config.final_response.code();
        let mut out = Vec::new();
        for (_, key) in ringing {
            let mut ev = Vec::new();
            self.end_call(&key, code, CallEnd::Shutdown, now, &mut ev, &mut out);
            self.absorb(ev, now, &mut out);
        }
        sends_first(out)
    }

    /// Fires due timers: transaction retransmissions/expiry, 180 after `ring_delay`, ring
    /// timeouts, removal of ended calls.
    pub fn poll_timers(&mut self, now: Instant) -> Vec<Action> {
        let mut out = Vec::new();
        let mut ev = Vec::new();
        self.tx.poll(now, &mut ev);
        self.absorb(ev, now, &mut out);
        let linger = self.config.transactions.timers.t1x64();
        while let Some(key) = self.call_timers.pop_due(now) {
            let Some(call) = self.calls.get_mut(&key) else {
                continue;
            };
            let mut ev = Vec::new();
            if call.ended_at.is_some() {
                if call.deadline(linger) <= now {
                    self.remove_call(&key);
                    continue;
                }
            } else if call.ring_at.is_some_and(|at| at <= now) {
                call.ring_at = None;
                let ringing = self.ringing_response(&key);
                if let Some(resp) = ringing {
                    let _ = self.tx.respond(&key, resp, now, &mut ev);
                }
            } else if call.ring_deadline <= now {
                let code = self.config.final_response.code();
                self.end_call(&key, code, CallEnd::RingTimeout, now, &mut ev, &mut out);
            }
            self.schedule_call(&key);
            self.absorb(ev, now, &mut out);
        }
        sends_first(out)
    }

    #[allow(clippy::too_many_arguments)]
    fn on_invite(
        &mut self,
        key: TransactionKey,
        req: Request,
        info: RequestInfo,
        base: ResponseBase,
        unsupported: Option<String>,
        source: SocketAddr,
        reliable: bool,
        trusted: bool,
        now: Instant,
        ev: &mut Vec<TxEvent>,
        out: &mut Vec<Action>,
    ) {
        let uri = req.uri.to_string();
        let user = msg::uri_user(&uri).unwrap_or("").to_string();
        if !self.config.users.is_empty() && !self.config.users.contains(&user) {
            let resp = self.decorate(base.response(404));
            self.answer(key, &base, resp, reliable, now, ev);
            self.reject(source, RejectReason::UnknownUser(user), trusted, now, out);
            return;
        }
        let dialog: DialogId = (
            info.call_id.clone(),
            info.from_tag.clone().unwrap_or_default(),
            info.cseq,
        );
        // §8.2.2.2: same Call-ID, From tag and CSeq as a call we hold, but another transaction
        // (forked copy, or a straggler after its transaction ended): 482, and no new call.
        if self.by_dialog.contains_key(&dialog) {
            let resp = self.decorate(base.response(482));
            self.answer(key, &base, resp, reliable, now, ev);
            return;
        }
        if unsupported.is_some() {
            let resp = self.bad_extension(&base, unsupported);
            self.answer(key, &base, resp, reliable, now, ev);
            return;
        }
        // A To tag means a request within a dialog; we never create one (§12.2.2).
        if info.to_tag.is_some() {
            let resp = self.decorate(base.response(481));
            self.answer(key, &base, resp, reliable, now, ev);
            return;
        }
        if self.stopping {
            let mut resp = self.decorate(base.response(503));
            msg::push_header(
                &mut resp,
                rsip::headers::RetryAfter::new(
                    self.config.transactions.retry_after_secs.to_string(),
                )
                .into(),
            );
            out.push(Action::Send {
                to: base.destination,
                message: resp.into(),
            });
            return;
        }
        if let Err(over) = self.guard.take_invite(source.ip(), now) {
            // Stateless, like the full-table 503 below: a flood must not fill the transaction
            // table. A retransmission of this INVITE is judged afresh; its ACK is a stray ACK.
            self.stats.rate_limited += 1;
            let resp = self.rate_limited_response(&base, over);
            out.push(Action::Send {
                to: base.destination,
                message: resp.into(),
            });
            let reason = RejectReason::RateLimited(RateLimit::Invites);
            self.reject(source, reason, trusted, now, out);
            return;
        }
        // Every ringing call must find room when it ends: at most `max_ringing` at once, and
        // no more than the shell can hand on (its queue to the daemon).
        let room = self.call_room.as_ref().map_or(usize::MAX, |room| room());
        if self.ringing >= self.config.max_ringing || self.ringing >= room {
            self.stats.overloaded += 1;
            let mut resp = self.decorate(base.response(503));
            msg::push_header(
                &mut resp,
                rsip::headers::RetryAfter::new(
                    self.config.transactions.retry_after_secs.to_string(),
                )
                .into(),
            );
            out.push(Action::Send {
                to: base.destination,
                message: resp.into(),
            });
            let reason = if self.ringing >= self.config.max_ringing {
                Busy::Ringing {
                    limit: self.config.max_ringing,
                }
            } else {
                Busy::QueueFull { room }
            };
            self.stats.rejected += 1;
            out.push(Action::Rejected {
                source,
                reason: RejectReason::Busy(reason),
            });
            return;
        }
        if self.calls.len() >= self.config.transactions.max_transactions {
            self.stats.overloaded += 1;
            let mut resp = self.decorate(base.response(503));
            msg::push_header(
                &mut resp,
                rsip::headers::RetryAfter::new(
                    self.config.transactions.retry_after_secs.to_string(),
                )
                .into(),
            );
            out.push(Action::Send {
                to: base.destination,
                message: resp.into(),
            });
            return;
        }
        if self
            .tx
            .open(key.clone(), base, reliable, true, now, ev)
            .is_err()
        {
            self.stats.overloaded += 1;
            return;
        }
        self.stats.calls += 1;
        out.push(Action::CallStarted {
            call_id: info.call_id.clone(),
            source,
        });
        let ring_now = self.config.ring_delay.is_zero();
        self.ringing += 1;
        self.by_dialog.insert(dialog.clone(), key.clone());
        self.calls.insert(
            key.clone(),
            Call {
                invite: req,
                source,
                started_at: now,
                ring_at: (!ring_now).then(|| now + self.config.ring_delay),
                ring_deadline: now + self.config.ring_delay + self.config.max_ring,
                ended_at: None,
                dialog,
            },
        );
        if ring_now && let Some(resp) = self.ringing_response(&key) {
            let _ = self.tx.respond(&key, resp, now, ev);
        }
        self.schedule_call(&key);
    }

    /// RFC 3261 §9.2.
    #[allow(clippy::too_many_arguments)]
    fn on_cancel(
        &mut self,
        key: TransactionKey,
        req: &Request,
        info: &RequestInfo,
        base: &ResponseBase,
        reliable: bool,
        now: Instant,
        ev: &mut Vec<TxEvent>,
        out: &mut Vec<Action>,
    ) {
        let invite_key = TransactionKey::for_cancelled_invite(req, info);
        let ringing = self
            .calls
            .get(&invite_key)
            .is_some_and(|c| c.ended_at.is_none());
        let code = if ringing || self.tx.state(&invite_key).is_some() {
            200
        } else {
            481
        };
        // The CANCEL's base derives the same To tag as the INVITE's (same Call-ID, From tag,
        // CSeq number and branch), as §9.2 asks.
        let resp = self.decorate(base.response(code));
        self.answer(key, base, resp, reliable, now, ev);
        if ringing {
            self.end_call(&invite_key, 487, CallEnd::Cancelled, now, ev, out);
        }
    }

    fn end_call(
        &mut self,
        key: &TransactionKey,
        code: u16,
        how: CallEnd,
        now: Instant,
        ev: &mut Vec<TxEvent>,
        out: &mut Vec<Action>,
    ) {
        let final_resp = self.tx.base(key).map(|b| self.decorate(b.response(code)));
        if let Some(resp) = final_resp {
            let _ = self.tx.respond(key, resp, now, ev);
        }
        let Some(call) = self.calls.get_mut(key) else {
            return;
        };
        if call.ended_at.is_some() {
            return;
        }
        self.ringing = self.ringing.saturating_sub(1);
        call.ended_at = Some(now);
        call.ring_at = None;
        self.stats.missed_calls += 1;
        out.push(Action::MissedCall(Box::new(MissedCall {
            call_id: call.dialog.0.clone(),
            invite: call.invite.clone(),
            source: call.source,
            started_at: call.started_at,
            ended_at: now,
            how,
            final_status: code,
        })));
        self.schedule_call(key);
    }

    fn ringing_response(&self, key: &TransactionKey) -> Option<Response> {
        let base = self.tx.base(key)?;
        let call = self.calls.get(key)?;
        let mut resp = self.decorate(base.response(180));
        let contact = match &self.config.contact {
            Some(c) => c.clone(),
            None => call.invite.uri.to_string(),
        };
        msg::push_header(
            &mut resp,
            rsip::headers::Contact::new(format!("<{contact}>")).into(),
        );
        Some(resp)
    }

    /// Sends a final response through a new transaction, or statelessly when the table is full.
    fn answer(
        &mut self,
        key: TransactionKey,
        base: &ResponseBase,
        resp: Response,
        reliable: bool,
        now: Instant,
        ev: &mut Vec<TxEvent>,
    ) {
        let invite = key.method() == "INVITE";
        match self
            .tx
            .open(key.clone(), base.clone(), reliable, false, now, ev)
        {
            Ok(()) => {
                let _ = self.tx.respond(&key, resp, now, ev);
            }
            // A full table already sent 503 to an INVITE.
            Err(_) if invite => self.stats.overloaded += 1,
            Err(_) => ev.push(TxEvent::Send {
                to: base.destination,
                message: resp.into(),
            }),
        }
    }

    fn malformed(
        &mut self,
        req: &Request,
        e: MsgError,
        source: SocketAddr,
        reliable: bool,
        now: Instant,
        out: &mut Vec<Action>,
    ) {
        if req.method == Method::Ack {
            return;
        }
        let trusted = self.admission.check(source, req) == Decision::Trusted;
        if let Ok(base) = ResponseBase::new(&req.headers, source, reliable) {
            let resp = self.decorate(base.response_with_reason(400, &e.to_string()));
            out.push(Action::Send {
                to: base.destination,
                message: resp.into(),
            });
        }
        self.reject(source, RejectReason::Malformed(e), trusted, now, out);
    }

    fn reject(
        &mut self,
        source: SocketAddr,
        reason: RejectReason,
        trusted: bool,
        now: Instant,
        out: &mut Vec<Action>,
    ) {
        self.stats.rejected += 1;
        out.push(Action::Rejected { source, reason });
        if !trusted
            && let Verdict::BanStarted(until) = self.guard.record_rejection(source.ip(), now)
        {
            out.push(Action::Banned {
                ip: source.ip(),
                until,
            });
        }
    }

    /// `503 Service Unavailable` with `Retry-After` (RFC 3261 §21.5.4, §20.33): when the
    /// source's next INVITE token is due, in whole seconds (at least one).
    fn rate_limited_response(&self, base: &ResponseBase, over: OverLimit) -> Response {
        let mut resp = self.decorate(base.response(503));
        let seconds = over
            .retry_in
            .as_secs()
            .saturating_add(u64::from(over.retry_in.subsec_nanos() > 0))
            .max(1);
        msg::push_header(
            &mut resp,
            rsip::headers::RetryAfter::new(seconds.to_string()).into(),
        );
        resp
    }

    /// `420 Bad Extension` listing the option tags we do not support (§8.2.2.3).
    fn bad_extension(&self, base: &ResponseBase, unsupported: Option<String>) -> Response {
        let mut resp = self.decorate(base.response(420));
        if let Some(tags) = unsupported {
            msg::push_header(&mut resp, rsip::headers::Unsupported::new(tags).into());
        }
        resp
    }

    fn decorate(&self, mut resp: Response) -> Response {
        if let Some(s) = &self.config.server_header {
            msg::push_header(&mut resp, rsip::headers::Server::new(s.clone()).into());
        }
        resp
    }

    /// Turns transaction events into actions and reacts to terminations.
    fn absorb(&mut self, ev: Vec<TxEvent>, now: Instant, out: &mut Vec<Action>) {
        for e in ev {
            match e {
                TxEvent::Send { to, message } => out.push(Action::Send { to, message }),
                TxEvent::Terminated { key, reason } => {
                    let ringing = self.calls.get(&key).is_some_and(|c| c.ended_at.is_none());
                    if ringing && reason == Termination::TuTimeout {
                        let mut ev = Vec::new();
                        self.end_call(&key, 500, CallEnd::Aborted, now, &mut ev, out);
                    }
                }
            }
        }
    }

    fn schedule_call(&mut self, key: &TransactionKey) {
        let linger = self.config.transactions.timers.t1x64();
        match self.calls.get(key) {
            Some(c) => self.call_timers.set(key.clone(), c.deadline(linger)),
            None => self.call_timers.remove(key),
        }
    }

    fn remove_call(&mut self, key: &TransactionKey) {
        self.call_timers.remove(key);
        if let Some(c) = self.calls.remove(key) {
            if c.ended_at.is_none() {
                self.ringing = self.ringing.saturating_sub(1);
            }
            self.by_dialog.remove(&c.dialog);
        }
    }

    fn maybe_purge(&mut self, now: Instant) {
        if self.next_purge.is_none_or(|t| t <= now) {
            self.guard.purge(now);
            self.next_purge = Some(now + self.config.guard.window);
        }
    }
}

/// Orders `Send` actions first (stable), so that the shell transmits before it logs.
fn sends_first(mut actions: Vec<Action>) -> Vec<Action> {
    actions.sort_by_key(|a| !matches!(a, Action::Send { .. }));
    actions
}

/// Option tags of `Require` headers, comma-joined, if any (RFC 3261 §20.32).
fn required_extensions(headers: &Headers) -> Option<String> {
    let tags: Vec<&str> = headers
        .iter()
        .filter_map(|h| match h {
            Header::Require(r) => Some(r.value()),
            _ => None,
        })
        .flat_map(msg::split_commas)
        .collect();
    (!tags.is_empty()).then(|| tags.join(", "))
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::sip::testutil::*;
    use proptest::prelude::*;

    fn endpoint() -> Endpoint {
        Endpoint::new(EndpointConfig {
            users: vec!["textback".into()],
            ..Default::default()
        })
    }

    fn responses(actions: &[Action]) -> Vec<&Response> {
        actions
            .iter()
            .filter_map(|a| match a {
                Action::Send {
                    message: SipMessage::Response(r),
                    ..
                } => Some(r),
                _ => None,
            })
            .collect()
    }

    fn codes(actions: &[Action]) -> Vec<u16> {
        responses(actions)
            .iter()
            .map(|r| r.status_code.code())
            .collect()
    }

    fn missed(actions: &[Action]) -> Vec<&MissedCall> {
        actions
            .iter()
            .filter_map(|a| match a {
                Action::MissedCall(m) => Some(&**m),
                _ => None,
            })
            .collect()
    }

    fn to_tag(r: &Response) -> Option<String> {
        msg::response_header(r, |h| match h {
            Header::To(t) => Some(t.value()),
            _ => None,
        })
        .and_then(msg::tag_of)
    }

    /// Polls every deadline until nothing is left (bounded), collecting actions.
    fn drain(ep: &mut Endpoint) -> Vec<Action> {
        let mut all = Vec::new();
        for _ in 0..10_000 {
            let Some(d) = ep.next_deadline() else { break };
            all.extend(ep.poll_timers(d));
        }
        assert!(ep.is_idle(), "{ep:?}");
        all
    }

    fn invite(branch: &str, call_id: &str) -> Request {
        request(Method::Invite, branch, call_id, 1)
    }

    #[test]
    fn invite_rings_then_times_out_with_480_and_timer_g_until_ack() {
        let mut ep = endpoint();
        let a = ep.handle_request(invite("z9hG4bK1", "c1"), PBX, false, t0());
        assert_eq!(codes(&a), vec![100, 180]);
        let r = responses(&a);
        assert_eq!(to_tag(r[0]), None, "100 Trying carries no tag");
        let tag = to_tag(r[1]).unwrap();
        let ringing = r[1].to_string();
        assert_eq!(
            header_value(&ringing, "Contact").as_deref(),
            Some("<sip:textback@192.0.2.20:5060>")
        );
        assert_eq!(
            header_value(&ringing, "Via").as_deref(),
            Some("SIP/2.0/UDP 192.0.2.10:5060;branch=z9hG4bK1;rport=5060;received=192.0.2.10")
        );
        assert!(header_value(&ringing, "Server").is_none());
        assert!(a.contains(&Action::CallStarted {
            call_id: "c1".into(),
            source: PBX
        }));
        assert_eq!(ep.next_deadline(), Some(t0() + ms(30_000)));
        assert!(ep.poll_timers(t0() + ms(29_999)).is_empty());

        let a = ep.poll_timers(t0() + ms(30_000));
        assert_eq!(codes(&a), vec![480]);
        assert_eq!(to_tag(responses(&a)[0]).as_deref(), Some(tag.as_str()));
        let m = missed(&a);
        assert_eq!(m.len(), 1);
        assert_eq!(m[0].how, CallEnd::RingTimeout);
        assert_eq!(m[0].final_status, 480);
        assert_eq!(m[0].call_id, "c1");
        assert_eq!(m[0].ended_at - m[0].started_at, ms(30_000));

        // Timer G: 0.5, 1, 2, 4, 4 s after the 480.
        let mut at = Vec::new();
        while let Some(d) = ep.next_deadline() {
            if d >= t0() + ms(42_000) {
                break;
            }
            let a = ep.poll_timers(d);
            assert_eq!(codes(&a), vec![480]);
            at.push(d - t0() - ms(30_000));
        }
        assert_eq!(at, [500, 1500, 3500, 7500, 11_500].map(ms).to_vec());
        let a = ep.handle_request(
            request(Method::Ack, "z9hG4bK1", "c1", 1),
            PBX,
            false,
            t0() + ms(42_000),
        );
        assert!(a.is_empty(), "ACK absorbed: {a:?}");
        let rest = drain(&mut ep);
        assert!(codes(&rest).is_empty(), "no retransmission after ACK");
        assert!(missed(&rest).is_empty());
    }

    #[test]
    fn five_retransmitted_invites_make_one_missed_call() {
        let mut ep = endpoint();
        let mut all = ep.handle_request(invite("z9hG4bKr", "cr"), PBX, false, t0());
        for i in 1..=5 {
            let a = ep.handle_request(invite("z9hG4bKr", "cr"), PBX, false, t0() + ms(500 * i));
            assert_eq!(
                codes(&a),
                vec![180],
                "retransmission re-sends the last provisional"
            );
            all.extend(a);
        }
        all.extend(ep.poll_timers(t0() + ms(30_000)));
        // Retransmissions after the final response re-send the final response.
        let a = ep.handle_request(invite("z9hG4bKr", "cr"), PBX, false, t0() + ms(30_100));
        assert_eq!(codes(&a), vec![480]);
        all.extend(a);
        all.extend(drain(&mut ep));
        assert_eq!(missed(&all).len(), 1);
        assert_eq!(
            all.iter()
                .filter(|a| matches!(a, Action::CallStarted { .. }))
                .count(),
            1
        );
        assert_eq!(ep.stats().missed_calls, 1);
    }

    #[test]
    fn cancel_after_180_gives_200_and_487_and_one_missed_call() {
        let mut ep = endpoint();
        let a = ep.handle_request(invite("z9hG4bKc", "cc"), PBX, false, t0());
        let tag = to_tag(responses(&a)[1]).unwrap();
        let cancel = request(Method::Cancel, "z9hG4bKc", "cc", 1);
        let a = ep.handle_request(cancel.clone(), PBX, false, t0() + ms(4000));
        assert_eq!(codes(&a), vec![200, 487]);
        for r in responses(&a) {
            assert_eq!(to_tag(r).as_deref(), Some(tag.as_str()), "§9.2 same To tag");
        }
        let cseq: Vec<_> = responses(&a)
            .iter()
            .map(|r| header_value(&r.to_string(), "CSeq").unwrap())
            .collect();
        assert_eq!(cseq, ["1 CANCEL", "1 INVITE"]);
        let m = missed(&a);
        assert_eq!(m.len(), 1);
        assert_eq!((m[0].how, m[0].final_status), (CallEnd::Cancelled, 487));
        assert_eq!(m[0].ended_at, t0() + ms(4000));
        // ACK for the 487 is absorbed; a retransmitted CANCEL gets its 200 again.
        let ack = request(Method::Ack, "z9hG4bKc", "cc", 1);
        assert!(
            ep.handle_request(ack, PBX, false, t0() + ms(4100))
                .is_empty()
        );
        let a = ep.handle_request(cancel, PBX, false, t0() + ms(4200));
        assert_eq!(codes(&a), vec![200]);
        let rest = drain(&mut ep);
        assert!(missed(&rest).is_empty());
        assert!(codes(&rest).is_empty(), "no ring-timeout 480 after CANCEL");
    }

    #[test]
    fn cancel_before_180() {
        let mut ep = Endpoint::new(EndpointConfig {
            ring_delay: ms(2000),
            ..Default::default()
        });
        let a = ep.handle_request(invite("z9hG4bKb", "cb"), PBX, false, t0());
        assert_eq!(codes(&a), vec![100]);
        assert_eq!(ep.next_deadline(), Some(t0() + ms(2000)));
        let a = ep.handle_request(
            request(Method::Cancel, "z9hG4bKb", "cb", 1),
            PBX,
            false,
            t0() + ms(1000),
        );
        assert_eq!(codes(&a), vec![200, 487]);
        assert_eq!(missed(&a).len(), 1);
        let rest = drain(&mut ep);
        assert!(!codes(&rest).contains(&180));
        assert!(missed(&rest).is_empty());
    }

    #[test]
    fn ring_delay_sends_180_later_and_extends_the_deadline() {
        let mut ep = Endpoint::new(EndpointConfig {
            ring_delay: ms(1000),
            max_ring: ms(5000),
            final_response: FinalResponse::Decline,
            ..Default::default()
        });
        ep.handle_request(invite("z9hG4bKd", "cd"), PBX, false, t0());
        assert_eq!(codes(&ep.poll_timers(t0() + ms(1000))), vec![180]);
        assert_eq!(ep.next_deadline(), Some(t0() + ms(6000)));
        let a = ep.poll_timers(t0() + ms(6000));
        assert_eq!(codes(&a), vec![603]);
        drain(&mut ep);
    }

    #[test]
    fn cancel_after_final_gets_200_and_no_second_missed_call() {
        let mut ep = endpoint();
        ep.handle_request(invite("z9hG4bKf", "cf"), PBX, false, t0());
        let a = ep.poll_timers(t0() + ms(30_000));
        assert_eq!(missed(&a).len(), 1);
        let a = ep.handle_request(
            request(Method::Cancel, "z9hG4bKf", "cf", 1),
            PBX,
            false,
            t0() + ms(30_200),
        );
        assert_eq!(codes(&a), vec![200]);
        assert!(missed(&a).is_empty());
        assert!(missed(&drain(&mut ep)).is_empty());
    }

    #[test]
    fn cancel_for_unknown_invite_is_481_and_drains() {
        let mut ep = endpoint();
        let a = ep.handle_request(
            request(Method::Cancel, "z9hG4bKu", "cu", 1),
            PBX,
            false,
            t0(),
        );
        assert_eq!(codes(&a), vec![481]);
        assert_eq!(ep.transactions_len(), 1);
        assert_eq!(ep.next_deadline(), Some(t0() + ms(32_000)), "Timer J");
        drain(&mut ep);
    }

    #[test]
    fn invite_without_ack_gives_up_at_32s_and_drains() {
        let mut ep = endpoint();
        ep.handle_request(invite("z9hG4bKn", "cn"), PBX, false, t0());
        let a = ep.poll_timers(t0() + ms(30_000));
        assert_eq!(missed(&a).len(), 1);
        let mut last_send = None;
        while let Some(d) = ep.next_deadline() {
            let a = ep.poll_timers(d);
            assert!(missed(&a).is_empty());
            if !codes(&a).is_empty() {
                last_send = Some(d);
            }
            if ep.transactions_len() == 0 {
                assert_eq!(d, t0() + ms(62_000), "Timer H = 64·T1 after the 480");
                break;
            }
        }
        assert_eq!(last_send, Some(t0() + ms(61_500)));
        drain(&mut ep);
    }

    #[test]
    fn reliable_transport_has_no_retransmissions() {
        let mut ep = endpoint();
        let src: SocketAddr = "192.0.2.10:40001".parse().unwrap();
        let a = ep.handle_request(invite("z9hG4bKt", "ct"), src, true, t0());
        assert!(a.iter().all(|a| match a {
            Action::Send { to, .. } => *to == src,
            _ => true,
        }));
        ep.poll_timers(t0() + ms(30_000));
        assert_eq!(ep.next_deadline(), Some(t0() + ms(62_000)));
        let a = ep.handle_request(
            request(Method::Ack, "z9hG4bKt", "ct", 1),
            src,
            true,
            t0() + ms(30_050),
        );
        assert!(a.is_empty());
        assert_eq!(ep.transactions_len(), 0, "Timer I is zero on TCP");
        drain(&mut ep);
    }

    #[test]
    fn responses_go_to_sent_by_port_without_rport() {
        let mut ep = endpoint();
        let mut inv = invite("z9hG4bKp", "cp");
        set_header(
            &mut inv,
            rsip::headers::Via::new("SIP/2.0/UDP pbx.example.com:5070;branch=z9hG4bKp").into(),
        );
        let src: SocketAddr = "192.0.2.10:33333".parse().unwrap();
        let a = ep.handle_request(inv, src, false, t0());
        let Some(Action::Send { to, message }) = a.first() else {
            panic!("{a:?}")
        };
        assert_eq!(*to, "192.0.2.10:5070".parse().unwrap());
        assert_eq!(
            header_value(&message.to_string(), "Via").as_deref(),
            Some("SIP/2.0/UDP pbx.example.com:5070;branch=z9hG4bKp;received=192.0.2.10")
        );
    }

    #[test]
    fn options_bye_and_unsupported_methods() {
        let mut ep = Endpoint::new(EndpointConfig {
            server_header: Some("textback".into()),
            ..Default::default()
        });
        let a = ep.handle_request(
            request(Method::Options, "z9hG4bKo", "o", 1),
            PBX,
            false,
            t0(),
        );
        assert_eq!(codes(&a), vec![200]);
        let text = responses(&a)[0].to_string();
        assert_eq!(header_value(&text, "Allow").as_deref(), Some(ALLOW));
        assert_eq!(
            header_value(&text, "Accept").as_deref(),
            Some("application/sdp")
        );
        assert_eq!(header_value(&text, "Server").as_deref(), Some("textback"));
        assert!(to_tag(responses(&a)[0]).is_some(), "§8.2.6.2 To tag");
        assert!(text.ends_with("Content-Length: 0\r\n\r\n"));

        let a = ep.handle_request(request(Method::Bye, "z9hG4bKb", "b", 2), PBX, false, t0());
        assert_eq!(codes(&a), vec![481]);
        for m in [
            Method::Info,
            Method::Message,
            Method::Subscribe,
            Method::Refer,
            Method::PRack,
            Method::Register,
        ] {
            let a = ep.handle_request(request(m, &format!("z9hG4bK{m}"), "x", 3), PBX, false, t0());
            assert_eq!(codes(&a), vec![405], "{m}");
            let text = responses(&a)[0].to_string();
            assert_eq!(header_value(&text, "Allow").as_deref(), Some(ALLOW));
        }
        let inv = invite("z9hG4bKx", "x");
        let a = ep.handle_unrecognized_method("FOO", &inv.headers, PBX, false, t0());
        assert_eq!(codes(&a), vec![501]);
        assert!(
            ep.handle_unrecognized_method("ACK", &inv.headers, PBX, false, t0())
                .is_empty()
        );
        drain(&mut ep);
    }

    #[test]
    fn unknown_user_404_require_420_in_dialog_481_merged_482() {
        let mut ep = endpoint();
        let mut inv = invite("z9hG4bK404", "c404");
        inv.uri = rsip::Uri::try_from("sip:someoneelse@192.0.2.20").unwrap();
        let a = ep.handle_request(inv, PBX, false, t0());
        assert_eq!(codes(&a), vec![404]);
        assert!(a.contains(&Action::Rejected {
            source: PBX,
            reason: RejectReason::UnknownUser("someoneelse".into())
        }));

        let mut inv = invite("z9hG4bK420", "c420");
        inv.headers
            .push(rsip::headers::Require::new("100rel, timer").into());
        let a = ep.handle_request(inv, PBX, false, t0());
        assert_eq!(codes(&a), vec![420]);
        assert_eq!(
            header_value(&responses(&a)[0].to_string(), "Unsupported").as_deref(),
            Some("100rel, timer")
        );

        let mut inv = invite("z9hG4bK481", "c481");
        set_header(
            &mut inv,
            rsip::headers::To::new("<sip:textback@192.0.2.20>;tag=abc").into(),
        );
        assert_eq!(codes(&ep.handle_request(inv, PBX, false, t0())), vec![481]);

        let a = ep.handle_request(invite("z9hG4bKm1", "merged"), PBX, false, t0());
        assert_eq!(codes(&a), vec![100, 180]);
        let a = ep.handle_request(invite("z9hG4bKm2", "merged"), PBX, false, t0());
        assert_eq!(codes(&a), vec![482]);
        let all = drain(&mut ep);
        assert_eq!(missed(&all).len(), 1);
    }

    #[test]
    fn admission_forbid_drop_and_trusted() {
        let mut ep = endpoint();
        let bad: SocketAddr = "203.0.113.5:5060".parse().unwrap();
        let trunk = PBX;
        ep.set_admission(move |src: SocketAddr, _: &Request| {
            if src == trunk {
                Decision::Trusted
            } else if src.port() == 5060 {
                Decision::Forbid
            } else {
                Decision::Drop
            }
        });
        let a = ep.handle_request(invite("z9hG4bKa", "ca"), bad, false, t0());
        assert_eq!(codes(&a), vec![403]);
        assert!(a.contains(&Action::Rejected {
            source: bad,
            reason: RejectReason::Forbidden
        }));
        // The 403'd INVITE's ACK and retransmissions are absorbed, not re-judged.
        let a = ep.handle_request(invite("z9hG4bKa", "ca"), bad, false, t0() + ms(10));
        assert_eq!(codes(&a), vec![403]);
        assert!(!a.iter().any(|a| matches!(a, Action::Rejected { .. })));
        let dropped: SocketAddr = "203.0.113.6:5099".parse().unwrap();
        let a = ep.handle_request(invite("z9hG4bKd", "cd"), dropped, false, t0());
        assert_eq!(
            a,
            vec![Action::Rejected {
                source: dropped,
                reason: RejectReason::Dropped
            }]
        );
        let a = ep.handle_request(invite("z9hG4bKt", "ct"), trunk, false, t0());
        assert_eq!(codes(&a), vec![100, 180]);
        drain(&mut ep);
    }

    #[test]
    fn repeated_rejections_ban_the_source_but_never_a_trusted_one() {
        let mut ep = Endpoint::new(EndpointConfig {
            users: vec!["textback".into()],
            guard: GuardConfig {
                max_rejections: 3,
                ..Default::default()
            },
            ..Default::default()
        });
        let scanner: SocketAddr = "203.0.113.9:5060".parse().unwrap();
        let mut banned = Vec::new();
        for i in 0..3 {
            let mut inv = invite(&format!("z9hG4bKs{i}"), &format!("s{i}"));
            inv.uri = rsip::Uri::try_from(format!("sip:{i}@192.0.2.20").as_str()).unwrap();
            let a = ep.handle_request(inv, scanner, false, t0() + ms(i));
            assert_eq!(codes(&a), vec![404]);
            banned.extend(a.into_iter().filter(|a| matches!(a, Action::Banned { .. })));
        }
        assert_eq!(
            banned,
            vec![Action::Banned {
                ip: scanner.ip(),
                until: t0() + ms(2) + Duration::from_secs(600)
            }]
        );
        let a = ep.handle_request(invite("z9hG4bKs9", "s9"), scanner, false, t0() + ms(10));
        assert!(a.is_empty());
        assert_eq!(ep.stats().dropped_banned, 1);

        ep.set_admission(|_: SocketAddr, _: &Request| Decision::Trusted);
        for i in 0..10 {
            let mut inv = invite(&format!("z9hG4bKp{i}"), &format!("p{i}"));
            inv.uri = rsip::Uri::try_from("sip:nobody@192.0.2.20").unwrap();
            let a = ep.handle_request(inv, PBX, false, t0());
            assert!(!a.iter().any(|a| matches!(a, Action::Banned { .. })));
        }
    }

    fn limited(requests: u32, invites: u32) -> Endpoint {
        Endpoint::new(EndpointConfig {
            users: vec!["textback".into()],
            guard: GuardConfig {
                requests_per_second: requests,
                invites_per_second: invites,
                max_rejections: 5,
                ..Default::default()
            },
            ..Default::default()
        })
    }

    fn rate_limited(actions: &[Action]) -> usize {
        actions
            .iter()
            .filter(|a| {
                matches!(
                    a,
                    Action::Rejected {
                        reason: RejectReason::RateLimited(_),
                        ..
                    }
                )
            })
            .count()
    }

    #[test]
    fn calls_ringing_at_once_are_capped_and_never_outnumber_the_room_to_hand_them_on() {
        let mut ep = Endpoint::new(EndpointConfig {
            users: vec!["textback".into()],
            max_ringing: 3,
            ..Default::default()
        });
        let room = std::sync::Arc::new(std::sync::atomic::AtomicUsize::new(usize::MAX));
        let shared = room.clone();
        ep.set_call_room(move || shared.load(std::sync::atomic::Ordering::Relaxed));
        let mut seen = Vec::new();
        for i in 0..5 {
            let a = ep.handle_request(
                invite(&format!("z9hG4bKc{i}"), &format!("c{i}")),
                PBX,
                false,
                t0(),
            );
            seen.push(codes(&a));
        }
        assert_eq!(
            seen,
            [
                vec![100, 180],
                vec![100, 180],
                vec![100, 180],
                vec![503],
                vec![503]
            ]
        );
        assert_eq!(ep.ringing(), 3);
        let refused = ep.handle_request(invite("z9hG4bKc9", "c9"), PBX, false, t0());
        let text = responses(&refused)[0].to_string();
        assert_eq!(header_value(&text, "Retry-After").as_deref(), Some("30"));
        assert!(refused.iter().any(|a| matches!(
            a,
            Action::Rejected {
                reason: RejectReason::Busy(Busy::Ringing { limit: 3 }),
                ..
            }
        )));
        // One ends: room for one more.
        let a = ep.handle_request(
            request(Method::Cancel, "z9hG4bKc0", "c0", 1),
            PBX,
            false,
            t0(),
        );
        assert_eq!(missed(&a).len(), 1);
        assert_eq!(ep.ringing(), 2);
        // The shell's queue has room for only the two ringing: the next call would have none.
        room.store(2, std::sync::atomic::Ordering::Relaxed);
        let a = ep.handle_request(invite("z9hG4bKc5", "c5"), PBX, false, t0());
        assert_eq!(codes(&a), vec![503]);
        assert!(a.iter().any(|a| matches!(
            a,
            Action::Rejected {
                reason: RejectReason::Busy(Busy::QueueFull { room: 2 }),
                ..
            }
        )));
        room.store(3, std::sync::atomic::Ordering::Relaxed);
        let a = ep.handle_request(invite("z9hG4bKc6", "c6"), PBX, false, t0());
        assert_eq!(codes(&a), vec![100, 180]);
        assert_eq!(ep.ringing(), 3);
    }

    #[test]
    fn invites_over_the_rate_get_a_stateless_503_with_retry_after() {
        let mut ep = limited(0, 3);
        ep.set_admission(|_: SocketAddr, _: &Request| Decision::Trusted);
        let mut codes_seen = Vec::new();
        for i in 0..10 {
            let a = ep.handle_request(
                invite(&format!("z9hG4bKf{i}"), &format!("f{i}")),
                PBX,
                false,
                t0(),
            );
            codes_seen.push(codes(&a));
            if i >= 3 {
                assert_eq!(rate_limited(&a), 1, "{a:?}");
                let text = responses(&a)[0].to_string();
                // The next token is 1/3 s away: a whole second.
                assert_eq!(header_value(&text, "Retry-After").as_deref(), Some("1"));
            }
        }
        assert_eq!(
            &codes_seen[..4],
            [vec![100, 180], vec![100, 180], vec![100, 180], vec![503]]
        );
        assert!(codes_seen[3..].iter().all(|c| c == &[503]));
        assert_eq!(ep.ringing(), 3);
        assert_eq!(ep.transactions_len(), 3, "503s hold no transaction");
        assert_eq!(ep.stats().rate_limited, 7);
        // The trusted trunk is limited, never banned: once a token is due its INVITE rings.
        assert!(!ep.guard.is_banned(PBX.ip(), t0()));
        let a = ep.handle_request(invite("z9hG4bKlater", "later"), PBX, false, t0() + ms(334));
        assert_eq!(codes(&a), vec![100, 180]);
        // CANCELs and ACKs of the admitted calls use no INVITE token.
        let a = ep.handle_request(
            request(Method::Cancel, "z9hG4bKf0", "f0", 1),
            PBX,
            false,
            t0() + ms(335),
        );
        assert_eq!(codes(&a), vec![200, 487]);
        let all = drain(&mut ep);
        assert_eq!(
            missed(&a).len() + missed(&all).len(),
            4,
            "one missed call per admitted INVITE"
        );
    }

    #[test]
    fn a_flooding_source_that_is_not_trusted_is_banned() {
        let mut ep = limited(4, 2);
        ep.set_admission(|_: SocketAddr, _: &Request| Decision::Allow);
        let flooder: SocketAddr = "198.51.100.7:5060".parse().unwrap();
        let mut banned = Vec::new();
        let mut answered = 0;
        for i in 0..20 {
            let a = ep.handle_request(
                request(
                    Method::Options,
                    &format!("z9hG4bKo{i}"),
                    &format!("o{i}"),
                    1,
                ),
                flooder,
                false,
                t0(),
            );
            answered += responses(&a).len();
            banned.extend(a.into_iter().filter(|a| matches!(a, Action::Banned { .. })));
        }
        // 4 requests answered; the next 5 dropped and counted; the fifth started the ban.
        assert_eq!(answered, 4);
        assert_eq!(
            banned,
            vec![Action::Banned {
                ip: flooder.ip(),
                until: t0() + Duration::from_secs(600)
            }]
        );
        assert_eq!(ep.stats().rate_limited, 5);
        assert_eq!(ep.stats().dropped_banned, 11);
        // Extension methods count against the same bucket.
        let other: SocketAddr = "198.51.100.8:5060".parse().unwrap();
        let inv = invite("z9hG4bKx", "x");
        let results: Vec<usize> = (0..6)
            .map(|_| {
                ep.handle_unrecognized_method("FOO", &inv.headers, other, false, t0())
                    .len()
            })
            .collect();
        assert_eq!(results[..4], [1, 1, 1, 1]);
        assert_eq!(
            ep.handle_unrecognized_method("FOO", &inv.headers, other, false, t0())
                .iter()
                .filter(|a| matches!(a, Action::Send { .. }))
                .count(),
            0
        );
    }

    #[test]
    fn a_scanner_walking_users_and_methods_is_banned_even_when_answered() {
        let mut ep = Endpoint::new(EndpointConfig {
            users: Vec::new(),
            guard: GuardConfig {
                max_targets: 4,
                max_rejections: 3,
                ..Default::default()
            },
            ..Default::default()
        });
        ep.set_admission(|_: SocketAddr, _: &Request| Decision::Allow);
        let scanner: SocketAddr = "198.51.100.9:5060".parse().unwrap();
        let mut banned_at = None;
        for i in 0..10u64 {
            let mut opt = request(
                Method::Options,
                &format!("z9hG4bKs{i}"),
                &format!("s{i}"),
                1,
            );
            opt.uri = rsip::Uri::try_from(format!("sip:{}@192.0.2.20", 100 + i).as_str()).unwrap();
            let a = ep.handle_request(opt, scanner, false, t0() + ms(i));
            if a.iter().any(|a| matches!(a, Action::Banned { .. })) {
                banned_at = Some(i);
            }
        }
        // OPTIONS + users 100, 101, 102 is four; 103, 104, 105 are the three over the limit.
        assert_eq!(banned_at, Some(5));
        // The same walk from the trusted trunk is never counted.
        let mut ep = Endpoint::new(EndpointConfig {
            guard: GuardConfig {
                max_targets: 4,
                max_rejections: 3,
                ..Default::default()
            },
            ..Default::default()
        });
        ep.set_admission(|_: SocketAddr, _: &Request| Decision::Trusted);
        for i in 0..10u64 {
            let mut opt = request(
                Method::Options,
                &format!("z9hG4bKt{i}"),
                &format!("t{i}"),
                1,
            );
            opt.uri = rsip::Uri::try_from(format!("sip:{}@192.0.2.20", 100 + i).as_str()).unwrap();
            let a = ep.handle_request(opt, PBX, false, t0());
            assert_eq!(codes(&a), vec![200]);
            assert!(!a.iter().any(|a| matches!(a, Action::Rejected { .. })));
        }
    }

    #[test]
    fn shutdown_ends_every_ringing_call_with_the_final_response_and_one_missed_call() {
        let mut ep = Endpoint::new(EndpointConfig {
            users: vec!["textback".into()],
            final_response: FinalResponse::BusyHere,
            ..Default::default()
        });
        for i in 0..3 {
            ep.handle_request(
                invite(&format!("z9hG4bKr{i}"), &format!("r{i}")),
                PBX,
                false,
                t0() + ms(i),
            );
        }
        // One of them already ended: the caller hung up.
        let a = ep.handle_request(
            request(Method::Cancel, "z9hG4bKr1", "r1", 1),
            PBX,
            false,
            t0() + ms(10),
        );
        assert_eq!(missed(&a).len(), 1);
        let a = ep.shutdown(t0() + ms(20));
        assert_eq!(codes(&a), vec![486, 486]);
        let m = missed(&a);
        assert_eq!(
            m.iter()
                .map(|m| (m.call_id.as_str(), m.how, m.final_status))
                .collect::<Vec<_>>(),
            [
                ("r0", CallEnd::Shutdown, 486),
                ("r2", CallEnd::Shutdown, 486)
            ]
        );
        assert_eq!(ep.ringing(), 0);
        assert!(ep.shutdown(t0() + ms(30)).is_empty(), "only once");
        // A call arriving now is turned away, not rung.
        let a = ep.handle_request(invite("z9hG4bKlate", "late"), PBX, false, t0() + ms(40));
        assert_eq!(codes(&a), vec![503]);
        assert_eq!(ep.ringing(), 0);
        let rest = drain(&mut ep);
        assert!(missed(&rest).is_empty());
    }

    #[test]
    fn malformed_requests_get_400_or_are_dropped() {
        let mut ep = endpoint();
        let mut inv = invite("z9hG4bKm", "cm");
        remove_headers(&mut inv, |h| matches!(h, Header::CallId(_)));
        let a = ep.handle_request(inv, PBX, false, t0());
        let r = responses(&a);
        assert_eq!(r.len(), 1);
        assert_eq!(
            r[0].status_code,
            rsip::StatusCode::Other(400, "Missing Call-ID header".into())
        );
        assert!(a.contains(&Action::Rejected {
            source: PBX,
            reason: RejectReason::Malformed(MsgError::Missing("Call-ID"))
        }));

        let mut inv = invite("z9hG4bKm", "cm");
        set_header(&mut inv, rsip::headers::CSeq::new("1 OPTIONS").into());
        let a = ep.handle_request(inv, PBX, false, t0());
        assert_eq!(codes(&a), vec![400]);

        let mut inv = invite("z9hG4bKm", "cm");
        remove_headers(&mut inv, |h| matches!(h, Header::Via(_)));
        let a = ep.handle_request(inv, PBX, false, t0());
        assert!(codes(&a).is_empty(), "no Via: nowhere to answer");
        assert_eq!(ep.stats().rejected, 3);
        assert!(ep.is_idle());
    }

    #[test]
    fn stays_bounded_under_100k_distinct_invites() {
        let cap = 1000;
        let mut ep = Endpoint::new(EndpointConfig {
            transactions: TransactionConfig {
                max_transactions: cap,
                ..Default::default()
            },
            // The table's cap is under test here, not the rate limits.
            guard: GuardConfig {
                requests_per_second: 0,
                invites_per_second: 0,
                ..Default::default()
            },
            ..Default::default()
        });
        let mut started = 0;
        let mut overloaded = 0;
        for i in 0..100_000u64 {
            let now = t0() + ms(i / 10);
            let a = ep.handle_request(
                invite(&format!("z9hG4bK{i}"), &format!("c{i}")),
                PBX,
                false,
                now,
            );
            started += a
                .iter()
                .filter(|a| matches!(a, Action::CallStarted { .. }))
                .count();
            if codes(&a) == [503] {
                overloaded += 1;
            }
            if i % 1000 == 0 {
                ep.poll_timers(now);
            }
            assert!(ep.transactions_len() <= cap && ep.calls_len() <= cap);
        }
        assert_eq!(started + overloaded, 100_000);
        let all = drain(&mut ep);
        assert_eq!(ep.stats().missed_calls as usize, started);
        assert!(missed(&all).len() <= started);
    }

    fn header_strategy() -> impl Strategy<Value = Option<String>> {
        prop_oneof![
            Just(None),
            ".{0,40}".prop_map(Some),
            "[ -~]{0,40}".prop_map(Some),
            "SIP ?/ ?2\\.0 ?/ ?(UDP|tcp|X) [a-z0-9.:\\[\\]]{0,16}(;[a-z]{0,6}(=[a-zA-Z0-9.:]{0,8})?){0,3}"
                .prop_map(Some),
            "[0-9]{0,11} (INVITE|ACK|CANCEL|BYE|OPTIONS|FOO)?".prop_map(Some),
            "(\"[^\"]{0,5}\" )?<?sips?:[a-z0-9@.;=<>]{0,16}>?(;tag=[a-z0-9]{0,4})?".prop_map(Some),
        ]
    }

    proptest! {
        #![proptest_config(ProptestConfig::with_cases(400))]
        #[test]
        fn garbage_requests_never_panic_and_everything_expires(
            method in 0usize..14,
            via in header_strategy(),
            via2 in header_strategy(),
            from in header_strategy(),
            to in header_strategy(),
            call_id in header_strategy(),
            cseq in header_strategy(),
            extra in header_strategy(),
            reliable in any::<bool>(),
            port in 1u16..,
        ) {
            let mut ep = endpoint();
            let m = Method::all()[method];
            let mut headers = Headers::default();
            if let Some(v) = via { headers.push(rsip::headers::Via::new(v).into()); }
            if let Some(v) = via2 { headers.push(rsip::headers::Via::new(v).into()); }
            if let Some(v) = from { headers.push(rsip::headers::From::new(v).into()); }
            if let Some(v) = to { headers.push(rsip::headers::To::new(v).into()); }
            if let Some(v) = call_id { headers.push(rsip::headers::CallId::new(v).into()); }
            if let Some(v) = cseq { headers.push(rsip::headers::CSeq::new(v).into()); }
            if let Some(v) = extra { headers.push(rsip::headers::Require::new(v).into()); }
            let req = Request {
                method: m,
                uri: rsip::Uri::try_from("sip:textback@192.0.2.20").unwrap(),
                version: rsip::Version::V2,
                headers: headers.clone(),
                body: Vec::new(),
            };
            let src = SocketAddr::new(PBX.ip(), port);
            let a = ep.handle_request(req.clone(), src, reliable, t0());
            let b = ep.handle_request(req, src, reliable, t0() + ms(100));
            let _ = ep.handle_unrecognized_method("FOO", &headers, src, reliable, t0());
            let later = drain(&mut ep);
            let n = missed(&a).len() + missed(&b).len() + missed(&later).len();
            prop_assert!(n <= 1);
        }
    }

    #[test]
    fn realistic_trunk_invite_with_sdp_and_ipv6_source() {
        let sdp = "v=0\r\no=- 1 1 IN IP6 2001:db8::10\r\ns=-\r\nc=IN IP6 2001:db8::10\r\nt=0 0\r\nm=audio 4000 RTP/AVP 0 8\r\n";
        let text = format!(
            "INVITE sip:textback@192.0.2.20:5060 SIP/2.0\r\n\
             Via: SIP/2.0/UDP [2001:db8::10]:5060;rport;branch=z9hG4bKPj6a1\r\n\
             Via: SIP/2.0/UDP 10.1.1.1:5080;branch=z9hG4bK0ld;received=10.1.1.1\r\n\
             Max-Forwards: 69\r\n\
             From: \"+1 555 123 4567\" <sip:+15551234567@trunk.example.net>;tag=8f1a\r\n\
             To: <sip:+15559876543@trunk.example.net>\r\n\
             Contact: <sip:+15551234567@[2001:db8::10]:5060>\r\n\
             Call-ID: 3c26700b-2b8d-4b0e@trunk\r\n\
             CSeq: 31862 INVITE\r\n\
             Allow: OPTIONS, INVITE, ACK, BYE, CANCEL, UPDATE, PRACK\r\n\
             Supported: 100rel, timer, replaces\r\n\
             Diversion: <sip:+15559876543@trunk.example.net>;reason=no-answer\r\n\
             Content-Type: application/sdp\r\n\
             Content-Length: {}\r\n\r\n{sdp}",
            sdp.len()
        );
        let req = Request::try_from(text.as_str()).unwrap();
        let src: SocketAddr = "[2001:db8::10]:5060".parse().unwrap();
        let mut ep = endpoint();
        let a = ep.handle_request(req.clone(), src, false, t0());
        assert_eq!(codes(&a), vec![100, 180]);
        let ringing = responses(&a)[1].to_string();
        let vias: Vec<&str> = ringing.lines().filter(|l| l.starts_with("Via:")).collect();
        assert_eq!(
            vias,
            [
                "Via: SIP/2.0/UDP [2001:db8::10]:5060;rport=5060;branch=z9hG4bKPj6a1;received=2001:db8::10",
                "Via: SIP/2.0/UDP 10.1.1.1:5080;branch=z9hG4bK0ld;received=10.1.1.1",
            ]
        );
        assert_eq!(
            header_value(&ringing, "From").as_deref(),
            Some("\"+1 555 123 4567\" <sip:+15551234567@trunk.example.net>;tag=8f1a")
        );
        assert_eq!(
            header_value(&ringing, "CSeq").as_deref(),
            Some("31862 INVITE")
        );
        let a = ep.poll_timers(t0() + ms(30_000));
        let m = missed(&a);
        assert_eq!(m[0].invite, req);
        assert_eq!(m[0].source, src);
        assert!(matches!(&a[0], Action::Send { to, .. } if *to == src));
    }

    #[test]
    fn straggler_invite_after_its_transaction_ended_is_482_not_a_new_call() {
        let mut ep = endpoint();
        ep.handle_request(invite("z9hG4bKs", "cs"), PBX, false, t0());
        let a = ep.poll_timers(t0() + ms(30_000));
        assert_eq!(missed(&a).len(), 1);
        let ack = request(Method::Ack, "z9hG4bKs", "cs", 1);
        ep.handle_request(ack, PBX, false, t0() + ms(30_100));
        ep.poll_timers(t0() + ms(35_100));
        assert_eq!(ep.transactions_len(), 0, "Timer I fired");
        let a = ep.handle_request(invite("z9hG4bKs", "cs"), PBX, false, t0() + ms(40_000));
        assert_eq!(codes(&a), vec![482]);
        let rest = drain(&mut ep);
        assert!(missed(&a).is_empty() && missed(&rest).is_empty());
        assert_eq!(ep.stats().calls, 1);
    }
}
