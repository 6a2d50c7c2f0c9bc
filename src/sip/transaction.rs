//! RFC 3261 §17 transactions, sans-I/O.
//!
//! * [`Transactions`]: the table of server transactions (INVITE, §17.2.1; non-INVITE, §17.2.2),
//!   keyed per §17.2.3, with a hard cap on its size. It absorbs request retransmissions and
//!   ACKs, retransmits final responses (Timer G) and expires every entry (Timers H, I, J and a
//!   TU-timeout safety net), so the table always drains.
//! * [`ClientTransaction`]: one client non-INVITE transaction (§17.1.2: Timers E, F, K), used by
//!   the registration client for REGISTER and OPTIONS.
//!
//! Nothing here reads a clock: callers pass `now`, ask [`Transactions::next_deadline`] when to
//! call [`Transactions::poll`] again, and perform the returned [`TxEvent`]s.

use std::collections::{BTreeMap, HashMap};
use std::hash::Hash;
use std::net::SocketAddr;
use std::time::{Duration, Instant};

use rsip::headers::UntypedHeader;
use rsip::{Header, Method, Request, Response, SipMessage};

use super::msg::{self, MAGIC_COOKIE, MsgError, RequestInfo, ResponseBase};

/// RFC 3261 §17.1.1.1 timer base values (Table 4 of §A).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Timers {
    /// RTT estimate, default 500 ms.
    pub t1: Duration,
    /// Maximum retransmit interval for non-INVITE requests and INVITE responses, default 4 s.
    pub t2: Duration,
    /// Maximum time a message remains in the network, default 5 s.
    pub t4: Duration,
}

impl Default for Timers {
    fn default() -> Self {
        Self {
            t1: Duration::from_millis(500),
            t2: Duration::from_secs(4),
            t4: Duration::from_secs(5),
        }
    }
}

impl Timers {
    /// 64·T1: Timers B, F, H and J (32 s by default).
    pub fn t1x64(&self) -> Duration {
        self.t1 * 64
    }

    fn sane(self) -> Self {
        let min = Duration::from_millis(1);
        Self {
            t1: self.t1.max(min),
            t2: self.t2.max(self.t1.max(min)),
            t4: self.t4,
        }
    }
}

/// Settings of the server transaction table.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct TransactionConfig {
    /// Timer base values.
    pub timers: Timers,
    /// Hard cap on server transactions held (live, and finished ones kept for their timers);
    /// beyond it INVITEs get a stateless 503. A memory bound: each holds about 1.5 KB.
    pub max_transactions: usize,
    /// `Retry-After` seconds in that 503 (RFC 3261 §21.5.4, §20.33).
    pub retry_after_secs: u32,
    /// Safety net: a transaction whose TU never sends a final response is answered with 500 and
    /// removed after this long (RFC 3261 leaves this to the TU; the table must still drain).
    pub tu_timeout: Duration,
}

impl Default for TransactionConfig {
    fn default() -> Self {
        Self {
            timers: Timers::default(),
            // A call holds its INVITE and CANCEL transactions for up to 64·T1 (32 s) after it
            // ends: 40 000 sustains 500 calls/s with room to spare (about 60 MB at the cap).
            max_transactions: 40_000,
            retry_after_secs: 30,
            tu_timeout: Duration::from_secs(300),
        }
    }
}

/// Identifies a server transaction (RFC 3261 §17.2.3).
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub enum TransactionKey {
    /// Branch starts with the magic cookie `z9hG4bK`: branch + sent-by + method, where ACK
    /// counts as INVITE.
    Rfc3261 {
        /// Top `Via` branch.
        branch: String,
        /// Top `Via` sent-by, host lower-cased.
        sent_by: String,
        /// Method of the request that created the transaction.
        method: String,
    },
    /// RFC 2543 fallback (§17.2.3, second half): Request-URI, From tag, Call-ID, CSeq number and
    /// top `Via`. The To tag is left out (ours is the only one ever issued), so an ACK matches
    /// the INVITE it acknowledges.
    Rfc2543 {
        /// `Call-ID`.
        call_id: String,
        /// `From` tag (empty when absent).
        from_tag: String,
        /// `CSeq` number.
        cseq: u32,
        /// Top `Via`, normalised.
        via: String,
        /// Request-URI.
        request_uri: String,
        /// Method of the request that created the transaction.
        method: String,
    },
}

impl TransactionKey {
    /// The key of the server transaction `req` belongs to; an ACK maps to its INVITE's.
    pub fn for_request(req: &Request, info: &RequestInfo) -> Self {
        let method = match req.method {
            Method::Ack => "INVITE".to_string(),
            m => m.to_string(),
        };
        Self::build(req, info, method)
    }

    /// The key of the INVITE transaction a CANCEL targets (RFC 3261 §9.2: matched like §17.2.3
    /// but with method INVITE).
    pub fn for_cancelled_invite(cancel: &Request, info: &RequestInfo) -> Self {
        Self::build(cancel, info, "INVITE".to_string())
    }

    fn build(req: &Request, info: &RequestInfo, method: String) -> Self {
        match info.via.branch() {
            Some(b) if b.starts_with(MAGIC_COOKIE) => Self::Rfc3261 {
                branch: b.to_string(),
                sent_by: info.via.sent_by_key(),
                method,
            },
            _ => Self::Rfc2543 {
                call_id: info.call_id.clone(),
                from_tag: info.from_tag.clone().unwrap_or_default(),
                cseq: info.cseq,
                via: info.via.to_string(),
                request_uri: req.uri.to_string(),
                method,
            },
        }
    }

    /// The method of the request that created the transaction.
    pub fn method(&self) -> &str {
        match self {
            Self::Rfc3261 { method, .. } | Self::Rfc2543 { method, .. } => method,
        }
    }
}

/// Server transaction states (RFC 3261 Figures 7 and 8). Terminated transactions are removed.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ServerState {
    /// Non-INVITE, no response sent yet.
    Trying,
    /// A provisional response was sent (INVITE starts here).
    Proceeding,
    /// A final response was sent; retransmissions of the request get it again.
    Completed,
    /// INVITE only: ACK received, absorbing stragglers until Timer I.
    Confirmed,
}

/// Why a server transaction left the table.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Termination {
    /// Timer I or J fired (or a 2xx was sent), the normal end.
    Normal,
    /// Timer H fired: the final response to an INVITE was never acknowledged.
    NoAck,
    /// The TU never answered within [`TransactionConfig::tu_timeout`]; a 500 was sent.
    TuTimeout,
}

/// Output of the server transaction table.
#[derive(Debug, Clone, PartialEq)]
pub enum TxEvent {
    /// Send `message` to `to` (for reliable transports: on the connection from that peer).
    Send {
        /// Destination.
        to: SocketAddr,
        /// The message.
        message: SipMessage,
    },
    /// The transaction `key` was removed from the table.
    Terminated {
        /// Which transaction.
        key: TransactionKey,
        /// Why.
        reason: Termination,
    },
}

/// What the table made of an incoming request.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Received {
    /// No transaction matches: the TU decides, then calls [`Transactions::open`] (or answers
    /// statelessly).
    New(TransactionKey),
    /// A retransmission of the request of a live transaction: absorbed, the last response (if
    /// any) was re-sent. The TU must not see it (RFC 3261 §17.2.1, §17.2.2).
    Retransmission(TransactionKey),
    /// An ACK for a non-2xx final response of this INVITE transaction: absorbed (§17.2.1).
    AckAbsorbed(TransactionKey),
    /// An ACK matching no transaction (a 2xx ACK or a late one): to be ignored by a UAS that never
    /// sends 2xx.
    StrayAck,
}

/// Errors of [`Transactions::open`] and [`Transactions::respond`].
#[derive(Debug, Clone, Copy, PartialEq, Eq, thiserror::Error)]
pub enum TxError {
    /// The table holds [`TransactionConfig::max_transactions`] entries.
    #[error("transaction table is full")]
    Full,
    /// No live transaction has this key.
    #[error("no such transaction")]
    Unknown,
    /// A final response was already sent.
    #[error("transaction already completed")]
    Completed,
}

#[derive(Debug)]
struct ServerTx {
    invite: bool,
    state: ServerState,
    reliable: bool,
    base: ResponseBase,
    last: Option<Response>,
    /// Timer G: next firing and current interval.
    timer_g: Option<(Instant, Duration)>,
    /// Timer H.
    timer_h: Option<Instant>,
    /// Timer I / J, or the TU timeout while no final response was sent.
    expire: Option<Instant>,
}

impl ServerTx {
    fn deadline(&self) -> Option<Instant> {
        [self.timer_g.map(|g| g.0), self.timer_h, self.expire]
            .into_iter()
            .flatten()
            .min()
    }
}

/// The server transaction table (RFC 3261 §17.2).
#[derive(Debug)]
pub struct Transactions {
    config: TransactionConfig,
    map: HashMap<TransactionKey, ServerTx>,
    timers: TimerQueue<TransactionKey>,
    overloaded: u64,
}

impl Transactions {
    /// An empty table.
    pub fn new(mut config: TransactionConfig) -> Self {
        config.timers = config.timers.sane();
        Self {
            config,
            map: HashMap::new(),
            timers: TimerQueue::default(),
            overloaded: 0,
        }
    }

    /// The configuration in force.
    pub fn config(&self) -> &TransactionConfig {
        &self.config
    }

    /// Number of live transactions.
    pub fn len(&self) -> usize {
        self.map.len()
    }

    /// Whether no transaction is live.
    pub fn is_empty(&self) -> bool {
        self.map.is_empty()
    }

    /// Whether the table is at its cap.
    pub fn is_full(&self) -> bool {
        self.map.len() >= self.config.max_transactions
    }

    /// How many requests were refused because the table was full.
    pub fn overloaded_count(&self) -> u64 {
        self.overloaded
    }

    /// State of a live transaction.
    pub fn state(&self, key: &TransactionKey) -> Option<ServerState> {
        self.map.get(key).map(|t| t.state)
    }

    /// The response skeleton of a live transaction.
    pub fn base(&self, key: &TransactionKey) -> Option<&ResponseBase> {
        self.map.get(key).map(|t| &t.base)
    }

    /// Matches `req` against the table (RFC 3261 §17.2.3). Retransmissions and ACKs are handled
    /// here (re-sent responses go to `out`); only [`Received::New`] concerns the TU.
    pub fn receive(
        &mut self,
        req: &Request,
        info: &RequestInfo,
        now: Instant,
        out: &mut Vec<TxEvent>,
    ) -> Received {
        let key = TransactionKey::for_request(req, info);
        let is_ack = req.method == Method::Ack;
        let Some(tx) = self.map.get_mut(&key) else {
            return if is_ack {
                Received::StrayAck
            } else {
                Received::New(key)
            };
        };
        if is_ack {
            if tx.state == ServerState::Completed {
                // §17.2.1: ACK moves Completed → Confirmed; G and H stop; Timer I starts.
                tx.state = ServerState::Confirmed;
                tx.timer_g = None;
                tx.timer_h = None;
                if tx.reliable {
                    self.terminate(&key, Termination::Normal, out);
                    return Received::AckAbsorbed(key);
                }
                tx.expire = Some(now + self.config.timers.t4);
                self.reschedule(&key);
            }
            return Received::AckAbsorbed(key);
        }
        // A retransmission: in Trying nothing was sent yet; otherwise re-send the last response.
        if let Some(last) = &tx.last {
            out.push(TxEvent::Send {
                to: tx.base.destination,
                message: last.clone().into(),
            });
        }
        Received::Retransmission(key)
    }

    /// Creates the server transaction for a request that [`Transactions::receive`] reported as
    /// [`Received::New`]. For an INVITE with `send_trying`, a 100 (Trying) goes out at once
    /// (§17.2.1). When the table is full an INVITE is answered with a stateless
    /// `503 Service Unavailable` + `Retry-After` (RFC 3261 §21.5.4) and [`TxError::Full`] is
    /// returned; for other methods the TU answers statelessly.
    pub fn open(
        &mut self,
        key: TransactionKey,
        base: ResponseBase,
        reliable: bool,
        send_trying: bool,
        now: Instant,
        out: &mut Vec<TxEvent>,
    ) -> Result<(), TxError> {
        let invite = key.method() == "INVITE";
        if self.map.contains_key(&key) {
            return Ok(());
        }
        if self.is_full() {
            self.overloaded += 1;
            if invite {
                let mut resp = base.response(503);
                msg::push_header(
                    &mut resp,
                    rsip::headers::RetryAfter::new(self.config.retry_after_secs.to_string()).into(),
                );
                out.push(TxEvent::Send {
                    to: base.destination,
                    message: resp.into(),
                });
            }
            return Err(TxError::Full);
        }
        let tx = ServerTx {
            invite,
            state: if invite {
                ServerState::Proceeding
            } else {
                ServerState::Trying
            },
            reliable,
            base,
            last: None,
            timer_g: None,
            timer_h: None,
            expire: Some(now + self.config.tu_timeout),
        };
        let trying = (invite && send_trying).then(|| tx.base.response(100));
        self.map.insert(key.clone(), tx);
        self.reschedule(&key);
        if let Some(t) = trying {
            self.respond(&key, t, now, out)?;
        }
        Ok(())
    }

    /// Sends `resp` through the transaction `key` and advances its state machine (§17.2.1,
    /// §17.2.2): provisional → Proceeding; 2xx to INVITE → Terminated; other final → Completed
    /// with Timer G (unreliable) and H for INVITE, Timer J for non-INVITE.
    pub fn respond(
        &mut self,
        key: &TransactionKey,
        resp: Response,
        now: Instant,
        out: &mut Vec<TxEvent>,
    ) -> Result<(), TxError> {
        let timers = self.config.timers;
        let tx = self.map.get_mut(key).ok_or(TxError::Unknown)?;
        if matches!(tx.state, ServerState::Completed | ServerState::Confirmed) {
            return Err(TxError::Completed);
        }
        let code = resp.status_code.code();
        out.push(TxEvent::Send {
            to: tx.base.destination,
            message: resp.clone().into(),
        });
        let mut end = false;
        if code < 200 {
            tx.state = ServerState::Proceeding;
        } else if tx.invite && code < 300 {
            end = true;
        } else {
            tx.state = ServerState::Completed;
            if tx.invite {
                tx.timer_g = (!tx.reliable).then(|| (now + timers.t1, timers.t1));
                tx.timer_h = Some(now + timers.t1x64());
                tx.expire = None;
            } else if tx.reliable {
                end = true;
            } else {
                tx.expire = Some(now + timers.t1x64());
            }
        }
        tx.last = Some(resp);
        if end {
            self.terminate(key, Termination::Normal, out);
        } else {
            self.reschedule(key);
        }
        Ok(())
    }

    /// Fires every timer due at `now`.
    pub fn poll(&mut self, now: Instant, out: &mut Vec<TxEvent>) {
        let timers = self.config.timers;
        while let Some(key) = self.timers.pop_due(now) {
            let Some(tx) = self.map.get_mut(&key) else {
                continue;
            };
            let mut end = None;
            match tx.state {
                ServerState::Trying | ServerState::Proceeding => {
                    if tx.expire.is_some_and(|e| e <= now) {
                        let resp = tx.base.response(500);
                        out.push(TxEvent::Send {
                            to: tx.base.destination,
                            message: resp.into(),
                        });
                        end = Some(Termination::TuTimeout);
                    }
                }
                ServerState::Completed if tx.invite => {
                    if tx.timer_h.is_some_and(|h| h <= now) {
                        end = Some(Termination::NoAck);
                    } else if let Some((due, interval)) = tx.timer_g
                        && due <= now
                    {
                        if let Some(last) = &tx.last {
                            out.push(TxEvent::Send {
                                to: tx.base.destination,
                                message: last.clone().into(),
                            });
                        }
                        let next = (interval * 2).min(timers.t2);
                        tx.timer_g = Some((due + next, next));
                    }
                }
                ServerState::Completed | ServerState::Confirmed => {
                    if tx.expire.is_some_and(|e| e <= now) {
                        end = Some(Termination::Normal);
                    }
                }
            }
            match end {
                Some(reason) => self.terminate(&key, reason, out),
                None => self.reschedule(&key),
            }
        }
    }

    /// When [`Transactions::poll`] must next be called.
    pub fn next_deadline(&self) -> Option<Instant> {
        self.timers.next()
    }

    fn reschedule(&mut self, key: &TransactionKey) {
        match self.map.get(key).and_then(ServerTx::deadline) {
            Some(at) => self.timers.set(key.clone(), at),
            None => self.timers.remove(key),
        }
    }

    fn terminate(&mut self, key: &TransactionKey, reason: Termination, out: &mut Vec<TxEvent>) {
        self.timers.remove(key);
        if self.map.remove(key).is_some() {
            out.push(TxEvent::Terminated {
                key: key.clone(),
                reason,
            });
        }
    }
}

/// Client non-INVITE transaction states (RFC 3261 Figure 6).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ClientState {
    /// Request sent, nothing heard.
    Trying,
    /// A provisional response arrived.
    Proceeding,
    /// A final response arrived; absorbing its retransmissions until Timer K.
    Completed,
    /// Done.
    Terminated,
}

/// What [`ClientTransaction::poll`] asks of its owner.
#[derive(Debug, Clone, PartialEq)]
pub enum ClientEvent {
    /// Timer E: send the request again.
    Retransmit(Box<Request>),
    /// Timer F: no final response in 64·T1; the transaction is terminated.
    Timeout,
}

/// A client non-INVITE transaction (RFC 3261 §17.1.2), e.g. a REGISTER or an OPTIONS ping.
#[derive(Debug, Clone)]
pub struct ClientTransaction {
    request: Request,
    branch: String,
    method: String,
    reliable: bool,
    timers: Timers,
    state: ClientState,
    timer_e: Option<(Instant, Duration)>,
    timer_f: Option<Instant>,
    timer_k: Option<Instant>,
}

impl ClientTransaction {
    /// Starts the transaction for `request`, which the caller sends once now. Timer E (only over
    /// unreliable transports) starts at T1, Timer F at 64·T1. The request's top `Via` must carry
    /// a branch.
    pub fn start(
        request: Request,
        reliable: bool,
        timers: Timers,
        now: Instant,
    ) -> Result<Self, MsgError> {
        let timers = timers.sane();
        let branch = msg::top_via(&request.headers)?
            .branch()
            .map(str::to_string)
            .ok_or(MsgError::Malformed("Via"))?;
        Ok(Self {
            method: request.method.to_string(),
            request,
            branch,
            reliable,
            timers,
            state: ClientState::Trying,
            timer_e: (!reliable).then(|| (now + timers.t1, timers.t1)),
            timer_f: Some(now + timers.t1x64()),
            timer_k: None,
        })
    }

    /// The request this transaction carries.
    pub fn request(&self) -> &Request {
        &self.request
    }

    /// The branch of the request's top `Via`.
    pub fn branch(&self) -> &str {
        &self.branch
    }

    /// Current state.
    pub fn state(&self) -> ClientState {
        self.state
    }

    /// Whether the transaction has ended.
    pub fn is_terminated(&self) -> bool {
        self.state == ClientState::Terminated
    }

    /// RFC 3261 §17.1.3: a response matches when its top `Via` branch and its `CSeq` method
    /// equal the request's.
    pub fn matches(&self, resp: &Response) -> bool {
        let branch_ok = msg::top_via(&resp.headers)
            .ok()
            .is_some_and(|v| v.branch() == Some(self.branch.as_str()));
        let method_ok = msg::first(&resp.headers, |h| match h {
            Header::CSeq(c) => Some(c.value()),
            _ => None,
        })
        .and_then(|c| msg::parse_cseq(c).ok())
        .is_some_and(|(_, m)| m == self.method);
        branch_ok && method_ok
    }

    /// Feeds a matching response. Returns `true` when the transaction user should act on it
    /// (any provisional while waiting, the first final response); `false` for retransmitted
    /// finals absorbed in Completed.
    pub fn on_response(&mut self, resp: &Response, now: Instant) -> bool {
        let code = resp.status_code.code();
        match self.state {
            ClientState::Trying | ClientState::Proceeding if code < 200 => {
                self.state = ClientState::Proceeding;
                true
            }
            ClientState::Trying | ClientState::Proceeding => {
                self.timer_e = None;
                self.timer_f = None;
                if self.reliable {
                    self.state = ClientState::Terminated;
                } else {
                    self.state = ClientState::Completed;
                    self.timer_k = Some(now + self.timers.t4);
                }
                true
            }
            ClientState::Completed | ClientState::Terminated => false,
        }
    }

    /// Fires due timers; call repeatedly until `None` when several may be due.
    pub fn poll(&mut self, now: Instant) -> Option<ClientEvent> {
        match self.state {
            ClientState::Trying | ClientState::Proceeding => {
                if self.timer_f.is_some_and(|f| f <= now) {
                    self.state = ClientState::Terminated;
                    self.timer_e = None;
                    self.timer_f = None;
                    return Some(ClientEvent::Timeout);
                }
                let (due, interval) = self.timer_e?;
                if due > now {
                    return None;
                }
                // §17.1.2.2: doubling up to T2 in Trying, T2 in Proceeding.
                let next = if self.state == ClientState::Proceeding {
                    self.timers.t2
                } else {
                    (interval * 2).min(self.timers.t2)
                };
                self.timer_e = Some((due + next, next));
                Some(ClientEvent::Retransmit(Box::new(self.request.clone())))
            }
            ClientState::Completed => {
                if self.timer_k.is_some_and(|k| k <= now) {
                    self.state = ClientState::Terminated;
                    self.timer_k = None;
                }
                None
            }
            ClientState::Terminated => None,
        }
    }

    /// When [`ClientTransaction::poll`] must next be called.
    pub fn next_deadline(&self) -> Option<Instant> {
        match self.state {
            ClientState::Trying | ClientState::Proceeding => {
                [self.timer_e.map(|e| e.0), self.timer_f]
                    .into_iter()
                    .flatten()
                    .min()
            }
            ClientState::Completed => self.timer_k,
            ClientState::Terminated => None,
        }
    }
}

/// A deadline per key, ordered; O(log n) updates so that `next_deadline` stays cheap with
/// thousands of entries.
#[derive(Debug)]
pub(crate) struct TimerQueue<K> {
    at: HashMap<K, (Instant, u64)>,
    order: BTreeMap<(Instant, u64), K>,
    seq: u64,
}

impl<K> Default for TimerQueue<K> {
    fn default() -> Self {
        Self {
            at: HashMap::new(),
            order: BTreeMap::new(),
            seq: 0,
        }
    }
}

impl<K: Clone + Eq + Hash> TimerQueue<K> {
    pub(crate) fn set(&mut self, key: K, when: Instant) {
        self.seq += 1;
        if let Some(old) = self.at.insert(key.clone(), (when, self.seq)) {
            self.order.remove(&old);
        }
        self.order.insert((when, self.seq), key);
    }

    pub(crate) fn remove(&mut self, key: &K) {
        if let Some(old) = self.at.remove(key) {
            self.order.remove(&old);
        }
    }

    pub(crate) fn next(&self) -> Option<Instant> {
        self.order.keys().next().map(|(t, _)| *t)
    }

    pub(crate) fn pop_due(&mut self, now: Instant) -> Option<K> {
        let (&(t, s), _) = self.order.iter().next()?;
        if t > now {
            return None;
        }
        let key = self.order.remove(&(t, s))?;
        self.at.remove(&key);
        Some(key)
    }

    #[cfg(test)]
    pub(crate) fn len(&self) -> usize {
        self.at.len()
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::sip::testutil::*;

    fn setup(req: &Request) -> (RequestInfo, ResponseBase) {
        let info = RequestInfo::from_request(req).unwrap();
        let base = ResponseBase::new(&req.headers, PBX, false).unwrap();
        (info, base)
    }

    fn sent_codes(out: &[TxEvent]) -> Vec<u16> {
        out.iter()
            .filter_map(|e| match e {
                TxEvent::Send {
                    message: SipMessage::Response(r),
                    ..
                } => Some(r.status_code.code()),
                _ => None,
            })
            .collect()
    }

    /// Opens an INVITE transaction at `t0` and answers it with 480 at `t0`.
    fn invite_completed(table: &mut Transactions, reliable: bool) -> TransactionKey {
        let inv = request(Method::Invite, "z9hG4bKinv1", "call-1", 1);
        let (info, _) = setup(&inv);
        let base = ResponseBase::new(&inv.headers, PBX, reliable).unwrap();
        let mut out = Vec::new();
        let Received::New(key) = table.receive(&inv, &info, t0(), &mut out) else {
            panic!("expected new")
        };
        table
            .open(key.clone(), base.clone(), reliable, true, t0(), &mut out)
            .unwrap();
        table
            .respond(&key, base.response(480), t0(), &mut out)
            .unwrap();
        assert_eq!(sent_codes(&out), vec![100, 480]);
        key
    }

    #[test]
    fn keys_follow_17_2_3() {
        let inv = request(Method::Invite, "z9hG4bKabc", "c1", 1);
        let ack = request(Method::Ack, "z9hG4bKabc", "c1", 1);
        let cancel = request(Method::Cancel, "z9hG4bKabc", "c1", 1);
        let ki = TransactionKey::for_request(&inv, &setup(&inv).0);
        assert_eq!(TransactionKey::for_request(&ack, &setup(&ack).0), ki);
        let kc = TransactionKey::for_request(&cancel, &setup(&cancel).0);
        assert_ne!(kc, ki);
        assert_eq!(kc.method(), "CANCEL");
        assert_eq!(
            TransactionKey::for_cancelled_invite(&cancel, &setup(&cancel).0),
            ki
        );
        // sent-by compares case-insensitively; a different branch is a different transaction.
        let mut upper = inv.clone();
        set_header(
            &mut upper,
            rsip::headers::Via::new("SIP/2.0/UDP PBX.Example.com:5060;branch=z9hG4bKabc").into(),
        );
        let mut lower = inv.clone();
        set_header(
            &mut lower,
            rsip::headers::Via::new("SIP/2.0/UDP pbx.example.com:5060;branch=z9hG4bKabc").into(),
        );
        assert_eq!(
            TransactionKey::for_request(&upper, &setup(&upper).0),
            TransactionKey::for_request(&lower, &setup(&lower).0)
        );
        let other = request(Method::Invite, "z9hG4bKabd", "c1", 1);
        assert_ne!(TransactionKey::for_request(&other, &setup(&other).0), ki);
    }

    #[test]
    fn rfc2543_fallback_matches_retransmission_and_ack() {
        let inv = request(Method::Invite, "old1", "c2543", 7);
        let ack = request(Method::Ack, "old1", "c2543", 7);
        let k = TransactionKey::for_request(&inv, &setup(&inv).0);
        assert!(matches!(k, TransactionKey::Rfc2543 { cseq: 7, .. }));
        assert_eq!(TransactionKey::for_request(&ack, &setup(&ack).0), k);
        let next = request(Method::Invite, "old1", "c2543", 8);
        assert_ne!(TransactionKey::for_request(&next, &setup(&next).0), k);
    }

    #[test]
    fn invite_retransmissions_resend_last_response() {
        let mut table = Transactions::new(TransactionConfig::default());
        let inv = request(Method::Invite, "z9hG4bKr", "c", 1);
        let (info, base) = setup(&inv);
        let mut out = Vec::new();
        let Received::New(key) = table.receive(&inv, &info, t0(), &mut out) else {
            panic!()
        };
        table
            .open(key.clone(), base.clone(), false, true, t0(), &mut out)
            .unwrap();
        assert_eq!(sent_codes(&out), vec![100]);
        out.clear();
        assert_eq!(
            table.receive(&inv, &info, t0() + ms(100), &mut out),
            Received::Retransmission(key.clone())
        );
        assert_eq!(sent_codes(&out), vec![100]);
        table
            .respond(&key, base.response(180), t0(), &mut out)
            .unwrap();
        out.clear();
        table.receive(&inv, &info, t0() + ms(200), &mut out);
        assert_eq!(sent_codes(&out), vec![180]);
        table
            .respond(&key, base.response(486), t0(), &mut out)
            .unwrap();
        out.clear();
        table.receive(&inv, &info, t0() + ms(300), &mut out);
        assert_eq!(sent_codes(&out), vec![486]);
        assert_eq!(
            table.respond(&key, base.response(480), t0(), &mut out),
            Err(TxError::Completed)
        );
    }

    #[test]
    fn timer_g_doubles_to_t2_until_ack_then_timer_i() {
        let mut table = Transactions::new(TransactionConfig::default());
        let key = invite_completed(&mut table, false);
        let mut fired = Vec::new();
        while let Some(d) = table.next_deadline() {
            if d > t0() + ms(12_000) {
                break;
            }
            let mut out = Vec::new();
            table.poll(d, &mut out);
            assert_eq!(sent_codes(&out), vec![480]);
            fired.push(d - t0());
        }
        // Intervals 0.5, 1, 2, 4, 4 s.
        assert_eq!(fired, [500, 1500, 3500, 7500, 11_500].map(ms).to_vec());
        let ack = request(Method::Ack, "z9hG4bKinv1", "call-1", 1);
        let mut out = Vec::new();
        let at = t0() + ms(12_000);
        assert_eq!(
            table.receive(&ack, &setup(&ack).0, at, &mut out),
            Received::AckAbsorbed(key.clone())
        );
        assert_eq!(table.state(&key), Some(ServerState::Confirmed));
        // Timer I = T4 = 5 s, no more retransmissions meanwhile.
        assert_eq!(table.next_deadline(), Some(at + ms(5000)));
        table.poll(at + ms(4999), &mut out);
        assert!(out.is_empty());
        table.poll(at + ms(5000), &mut out);
        assert_eq!(
            out,
            vec![TxEvent::Terminated {
                key,
                reason: Termination::Normal
            }]
        );
        assert!(table.is_empty());
        assert_eq!(table.next_deadline(), None);
    }

    #[test]
    fn no_ack_gives_up_at_timer_h() {
        let mut table = Transactions::new(TransactionConfig::default());
        let key = invite_completed(&mut table, false);
        let mut out = Vec::new();
        let mut sends = 0;
        while let Some(d) = table.next_deadline() {
            table.poll(d, &mut out);
            if table.is_empty() {
                assert_eq!(d - t0(), ms(32_000));
            }
            sends = sent_codes(&out).len();
        }
        // G fires at 0.5, 1.5, 3.5, 7.5, 11.5 ... 31.5 s: 10 retransmissions.
        assert_eq!(sends, 10);
        assert_eq!(
            out.last(),
            Some(&TxEvent::Terminated {
                key,
                reason: Termination::NoAck
            })
        );
    }

    #[test]
    fn reliable_invite_has_no_timer_g_and_ends_on_ack() {
        let mut table = Transactions::new(TransactionConfig::default());
        let _key = invite_completed(&mut table, true);
        assert_eq!(table.next_deadline(), Some(t0() + ms(32_000)));
        let ack = request(Method::Ack, "z9hG4bKinv1", "call-1", 1);
        let mut out = Vec::new();
        table.receive(&ack, &setup(&ack).0, t0() + ms(10), &mut out);
        assert!(table.is_empty());
        assert!(matches!(out[..], [TxEvent::Terminated { .. }]));
    }

    #[test]
    fn non_invite_completed_lasts_timer_j() {
        for reliable in [false, true] {
            let mut table = Transactions::new(TransactionConfig::default());
            let opt = request(Method::Options, "z9hG4bKo", "o", 1);
            let (info, base) = setup(&opt);
            let mut out = Vec::new();
            let Received::New(key) = table.receive(&opt, &info, t0(), &mut out) else {
                panic!()
            };
            table
                .open(key.clone(), base.clone(), reliable, true, t0(), &mut out)
                .unwrap();
            assert!(out.is_empty(), "no 100 for non-INVITE");
            assert_eq!(table.state(&key), Some(ServerState::Trying));
            table.receive(&opt, &info, t0(), &mut out);
            assert!(out.is_empty(), "retransmission in Trying is silent");
            table
                .respond(&key, base.response(200), t0(), &mut out)
                .unwrap();
            if reliable {
                assert!(table.is_empty());
                continue;
            }
            out.clear();
            table.receive(&opt, &info, t0() + ms(1000), &mut out);
            assert_eq!(sent_codes(&out), vec![200]);
            assert_eq!(table.next_deadline(), Some(t0() + ms(32_000)));
            table.poll(t0() + ms(32_000), &mut out);
            assert!(table.is_empty());
        }
    }

    #[test]
    fn unanswered_transactions_expire_with_tu_timeout() {
        let mut table = Transactions::new(TransactionConfig::default());
        let inv = request(Method::Invite, "z9hG4bKq", "q", 1);
        let (info, base) = setup(&inv);
        let mut out = Vec::new();
        let Received::New(key) = table.receive(&inv, &info, t0(), &mut out) else {
            panic!()
        };
        table.open(key, base, false, false, t0(), &mut out).unwrap();
        assert!(out.is_empty());
        table.poll(t0() + Duration::from_secs(300), &mut out);
        assert_eq!(sent_codes(&out), vec![500]);
        assert!(table.is_empty());
    }

    #[test]
    fn full_table_answers_invite_503_statelessly() {
        let mut table = Transactions::new(TransactionConfig {
            max_transactions: 3,
            ..Default::default()
        });
        let mut out = Vec::new();
        for i in 0..5 {
            let inv = request(Method::Invite, &format!("z9hG4bK{i}"), &format!("c{i}"), 1);
            let (info, base) = setup(&inv);
            let Received::New(key) = table.receive(&inv, &info, t0(), &mut out) else {
                panic!()
            };
            let r = table.open(key, base, false, true, t0(), &mut out);
            assert_eq!(r.is_err(), i >= 3);
        }
        assert_eq!(table.len(), 3);
        assert_eq!(sent_codes(&out), vec![100, 100, 100, 503, 503]);
        let Some(TxEvent::Send {
            message: SipMessage::Response(r),
            ..
        }) = out.last()
        else {
            panic!()
        };
        assert!(r.to_string().contains("Retry-After: 30\r\n"));
        let opt = request(Method::Options, "z9hG4bKopt", "o", 1);
        let (info, base) = setup(&opt);
        let Received::New(key) = table.receive(&opt, &info, t0(), &mut out) else {
            panic!()
        };
        out.clear();
        assert_eq!(
            table.open(key, base, false, true, t0(), &mut out),
            Err(TxError::Full)
        );
        assert!(out.is_empty());
        assert_eq!(table.overloaded_count(), 3);
    }

    #[test]
    fn stays_bounded_under_100k_distinct_invites_and_drains() {
        let cap = 10_000;
        let mut table = Transactions::new(TransactionConfig {
            max_transactions: cap,
            ..Default::default()
        });
        let mut out = Vec::new();
        for i in 0..100_000u32 {
            let inv = request(Method::Invite, &format!("z9hG4bK{i}"), &format!("c{i}"), 1);
            let (info, base) = setup(&inv);
            if let Received::New(key) = table.receive(&inv, &info, t0(), &mut out) {
                let _ = table.open(key, base, false, true, t0(), &mut out);
            }
            out.clear();
            assert!(table.len() <= cap);
        }
        assert_eq!(table.len(), cap);
        assert_eq!(table.overloaded_count(), 90_000);
        table.poll(t0() + Duration::from_secs(301), &mut out);
        assert!(table.is_empty());
        assert_eq!(table.timers.len(), 0);
    }

    #[test]
    fn client_transaction_timers_e_f() {
        let req = request(Method::Register, "z9hG4bKreg", "r", 1);
        let mut tx = ClientTransaction::start(req, false, Timers::default(), t0()).unwrap();
        let mut retransmits = Vec::new();
        while let Some(d) = tx.next_deadline() {
            match tx.poll(d) {
                Some(ClientEvent::Retransmit(_)) => retransmits.push(d - t0()),
                Some(ClientEvent::Timeout) => {
                    assert_eq!(d - t0(), ms(32_000));
                    break;
                }
                None => {}
            }
        }
        assert_eq!(
            retransmits,
            [
                500, 1500, 3500, 7500, 11_500, 15_500, 19_500, 23_500, 27_500, 31_500
            ]
            .map(ms)
            .to_vec()
        );
        assert!(tx.is_terminated());
    }

    #[test]
    fn client_transaction_provisional_final_and_timer_k() {
        let req = request(Method::Register, "z9hG4bKreg", "r", 1);
        let mut tx = ClientTransaction::start(req.clone(), false, Timers::default(), t0()).unwrap();
        let trying = response_to(&req, 100);
        assert!(tx.matches(&trying));
        let mut foreign = response_to(&req, 200);
        set_header_resp(&mut foreign, rsip::headers::CSeq::new("1 OPTIONS").into());
        assert!(!tx.matches(&foreign));
        assert!(tx.on_response(&trying, t0() + ms(100)));
        assert_eq!(tx.state(), ClientState::Proceeding);
        assert_eq!(
            tx.poll(t0() + ms(500)),
            Some(ClientEvent::Retransmit(Box::new(req.clone())))
        );
        // In Proceeding Timer E is reset to T2.
        assert_eq!(tx.next_deadline(), Some(t0() + ms(4500)));
        let ok = response_to(&req, 200);
        assert!(tx.on_response(&ok, t0() + ms(1000)));
        assert!(
            !tx.on_response(&ok, t0() + ms(1100)),
            "retransmitted final absorbed"
        );
        assert_eq!(tx.next_deadline(), Some(t0() + ms(6000)));
        assert_eq!(tx.poll(t0() + ms(6000)), None);
        assert!(tx.is_terminated());

        let mut rel = ClientTransaction::start(req.clone(), true, Timers::default(), t0()).unwrap();
        assert_eq!(
            rel.next_deadline(),
            Some(t0() + ms(32_000)),
            "no Timer E on TCP"
        );
        assert!(rel.on_response(&ok, t0()));
        assert!(rel.is_terminated(), "Timer K is zero on TCP");
    }
}
