//! The SIP endpoint's shell: for each local port of the `[[sip]]` accounts, one core task owns
//! the [`Endpoint`] and the accounts' [`Registration`]s, reads what the socket tasks
//! ([`super::transport`]) hand it, performs the actions, drives the timers, turns each
//! [`Action::MissedCall`] into an [`Event::CallMissed`], and writes each account's state
//! to the store. On shutdown it removes the registrations (un-REGISTER) before it ends.

use std::net::{IpAddr, SocketAddr};
use std::sync::atomic::Ordering;
use std::sync::{Arc, RwLock};
use std::time::{Duration, Instant};

use rsip::headers::UntypedHeader;
use rsip::{Header, Method, Request, SipMessage};
use tokio::sync::mpsc;
use tokio_util::sync::CancellationToken;
use tokio_util::task::TaskTracker;
use tracing::{debug, info, info_span, warn};

use super::endpoint::{
    Action, Busy, CallEnd, Decision, Endpoint, EndpointConfig, MissedCall as SipMissedCall,
    RateLimit, RejectReason,
};
use super::guard::GuardConfig;
use super::identity;
use super::register::{
    AccountConfig, AccountStatus, Destination, KeepAliveKind, RegAction, RegState, Registration,
    SipDigest,
};
use super::transport::{self, Connections, Inbound, Sockets};
use super::wire::{self, Incoming};
use crate::clock::Clock;
use crate::config::{Config, SipAccount, SipKeepAlive, SipTransport};
use crate::domain::CallId;
use crate::domain::Cidr;
use crate::domain::{CallSource, RegistrationState};
use crate::event::{Event, MissedCall};
use crate::store::{SipAccountRow, Store};

/// Missed calls waiting to enter the daemon's event queue, per local port. The core never waits
/// on the daemon: a burst of calls queues here, and the forwarder waits instead. The core takes
/// a new call only while it has a place here for every call ringing
/// ([`Endpoint::set_call_room`]), so a call answered as missed is never dropped.
pub const MISSED_QUEUE: usize = 4096;
/// Account state rows waiting for the store.
const STATUS_QUEUE: usize = 64;
/// How often registrar and proxy names are resolved again (their addresses are the allowlist).
const RESOLVE_EVERY: Duration = Duration::from_secs(300);
/// How soon a name that did not resolve is tried again.
const RESOLVE_RETRY: Duration = Duration::from_secs(30);
/// How long shutdown waits for the registrars to confirm the un-REGISTER.
const UNREGISTER_WAIT: Duration = Duration::from_secs(4);
/// At most one log line per kind of refused or unreadable packet in this time; the rest are
/// counted and the count is logged with the next line.
const LOG_EVERY: Duration = Duration::from_secs(10);

/// Starts the SIP endpoint for every local port in the config. Returns the bound addresses (by
/// port group, for tests and logs).
pub fn start(
    config: &Config,
    store: Store,
    events: mpsc::Sender<Event>,
    token: CancellationToken,
    tracker: &TaskTracker,
    clock: Clock,
    missed_queue: usize,
) -> Result<Vec<SocketAddr>, transport::BindError> {
    let mut groups: Vec<(u16, Vec<SipAccount>)> = Vec::new();
    for account in &config.sip_accounts {
        match groups
            .iter_mut()
            .find(|(port, _)| *port == account.local_port)
        {
            Some((_, accounts)) => accounts.push(account.clone()),
            None => groups.push((account.local_port, vec![account.clone()])),
        }
    }
    if groups.is_empty() {
        return Ok(Vec::new());
    }
    let (status_tx, status_rx) = mpsc::channel(STATUS_QUEUE);
    tracker.spawn(write_status(status_rx, store));
    let mut bound = Vec::new();
    // The sockets outlive the cancellation of `token`: while a core stops it still sends the
    // final responses of the calls that were ringing and reads the registrars' answers to its
    // un-REGISTER. Each core stops its own sockets when it is done (or if it fails).
    let transports = CancellationToken::new();
    for (port, accounts) in groups {
        let (inbound_tx, inbound_rx) = mpsc::channel(transport::INBOUND_QUEUE);
        // Each port's own queue of missed calls: its core is the only sender, so the room it
        // sees is its own.
        let (missed_tx, missed_rx) = mpsc::channel(missed_queue.max(1));
        tracker.spawn(forward_missed(missed_rx, events.clone()));
        let own = transports.child_token();
        let allow = Arc::new(RwLock::new(AllowList::for_accounts(&accounts)));
        let hook = allow.clone();
        // TCP connections are checked against the allow list as they are accepted.
        let admit: transport::Admit = Arc::new(move |ip: IpAddr| {
            // A poisoned lock only means a writer panicked mid-update; the list is still usable.
            hook.read()
                .unwrap_or_else(|poisoned| poisoned.into_inner())
                .admits(ip)
        });
        let sockets = match transport::bind(
            &accounts[0].listen,
            port,
            inbound_tx.clone(),
            admit,
            &own,
            tracker,
        ) {
            Ok(sockets) => sockets,
            Err(err) => {
                transports.cancel();
                return Err(err);
            }
        };
        info!(addresses = ?sockets.local, accounts = accounts.len(), "SIP endpoint listening (UDP and TCP)");
        bound.extend(sockets.local.iter().copied());
        let shell = Shell {
            inbound: inbound_tx,
            transports: own,
            tracker: tracker.clone(),
            clock: clock.clone(),
        };
        let core = Core::new(
            accounts,
            sockets,
            allow,
            missed_tx,
            status_tx.clone(),
            shell,
        );
        tracker.spawn(core.run(inbound_rx, token.child_token()));
    }
    Ok(bound)
}

/// What a core needs besides its sockets: to open connections of its own (they hand what they
/// read to `inbound`, like the socket tasks), and to stop its sockets when it has stopped.
struct Shell {
    inbound: mpsc::Sender<Inbound>,
    /// Cancels this port's socket and connection tasks.
    transports: CancellationToken,
    tracker: TaskTracker,
    /// The wall clock calls and registration times are dated by.
    clock: Clock,
}

/// How the core hands a missed call to the forwarder.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Delivery {
    /// Without waiting: intake must not stall on the daemon (a full queue loses the call, with
    /// a warning).
    Queue,
    /// Waiting for room: while stopping there is no intake left to protect.
    Wait,
}

async fn forward_missed(mut missed: mpsc::Receiver<MissedCall>, events: mpsc::Sender<Event>) {
    while let Some(call) = missed.recv().await {
        if events.send(Event::CallMissed(call)).await.is_err() {
            return;
        }
    }
}

async fn write_status(mut rows: mpsc::Receiver<SipAccountRow>, store: Store) {
    while let Some(row) = rows.recv().await {
        let name = row.name.clone();
        if let Err(err) = store.run(move |tx| tx.upsert_sip_account(&row)).await {
            warn!(account = %name, error = %err, "could not record the SIP account's state");
        }
    }
}

/// The addresses INVITEs are accepted from: the resolved registrars and proxies, and the
/// configured ranges. Shared between the core (which refreshes it) and the admission hook.
#[derive(Debug, Default)]
struct AllowList {
    resolved: Vec<Vec<IpAddr>>,
    ranges: Vec<Cidr>,
}

impl AllowList {
    /// The configured ranges of `accounts`; the registrars' and proxies' addresses are added as
    /// they resolve.
    fn for_accounts(accounts: &[SipAccount]) -> AllowList {
        AllowList {
            resolved: vec![Vec::new(); accounts.len()],
            ranges: accounts
                .iter()
                .flat_map(|a| a.allow.iter().copied())
                .collect(),
        }
    }

    fn admits(&self, ip: IpAddr) -> bool {
        let ip = match ip {
            IpAddr::V6(v6) => v6.to_ipv4_mapped().map(IpAddr::V4).unwrap_or(ip),
            v4 => v4,
        };
        self.resolved.iter().flatten().any(|a| *a == ip)
            || self.ranges.iter().any(|range| range.contains(ip))
    }
}

struct Account {
    config: SipAccount,
    registration: Option<Registration>,
    /// Resolved addresses of the registrar (or outbound proxy) for REGISTER, first one used.
    next_hop: Vec<SocketAddr>,
    /// Our address as the registrar sees it (Via and Contact), once known.
    local: Option<SocketAddr>,
    /// The TCP connection this account registers over (`transport = "tcp"`).
    outbound: Option<Outbound>,
    last_written: Option<String>,
}

/// A TCP connection the core opened to a registrar: REGISTERs and keep-alives go out on it, and
/// the registrar sends calls back on it.
struct Outbound {
    peer: SocketAddr,
    writer: mpsc::Sender<Vec<u8>>,
    /// Closes it.
    close: CancellationToken,
}

/// Rate-limited log lines, one counter per kind.
#[derive(Default)]
struct Quiet {
    last: std::collections::HashMap<&'static str, (Instant, u64)>,
}

impl Quiet {
    /// Returns how many were suppressed since the last line when a line is due now.
    fn due(&mut self, kind: &'static str, now: Instant) -> Option<u64> {
        let entry = self.last.entry(kind).or_insert((now - LOG_EVERY * 2, 0));
        if now.duration_since(entry.0) >= LOG_EVERY {
            let suppressed = entry.1;
            *entry = (now, 0);
            Some(suppressed)
        } else {
            entry.1 += 1;
            None
        }
    }
}

struct Core {
    endpoint: Endpoint,
    accounts: Vec<Account>,
    sockets: Sockets,
    connections: Connections,
    allow: Arc<RwLock<AllowList>>,
    missed: mpsc::Sender<MissedCall>,
    delivery: Delivery,
    status: mpsc::Sender<SipAccountRow>,
    shell: Shell,
    quiet: Quiet,
    dropped_seen: u64,
}

/// What the resolver tasks report.
struct Resolved {
    account: usize,
    /// Registrar (or proxy) addresses for REGISTER.
    next_hop: Vec<SocketAddr>,
    /// Every address of the registrar and the proxy, for the allowlist.
    trusted: Vec<IpAddr>,
    error: Option<String>,
}

impl Core {
    fn new(
        accounts: Vec<SipAccount>,
        sockets: Sockets,
        allow: Arc<RwLock<AllowList>>,
        missed: mpsc::Sender<MissedCall>,
        status: mpsc::Sender<SipAccountRow>,
        shell: Shell,
    ) -> Core {
        let first = &accounts[0];
        let config = EndpointConfig {
            users: accounts.iter().map(|a| a.contact_user.clone()).collect(),
            max_ring: first.max_ring,
            final_response: first.final_response,
            // config::check_ports makes the accounts on one port agree on these.
            guard: GuardConfig {
                requests_per_second: first.max_requests_per_second,
                invites_per_second: first.max_invites_per_second,
                ..GuardConfig::default()
            },
            max_ringing: first.max_ringing_calls,
            ..EndpointConfig::default()
        };
        let mut endpoint = Endpoint::new(config);
        // A call rings only while this port's missed-call queue has a place for it and for
        // every call ringing before it: back-pressure (503) instead of a lost call.
        let queue = missed.clone();
        endpoint.set_call_room(move || queue.capacity());
        let hook = allow.clone();
        endpoint.set_admission(move |source: SocketAddr, _request: &Request| {
            // A poisoned lock only means a writer panicked mid-update; the list is still usable.
            let list = hook.read().unwrap_or_else(|poisoned| poisoned.into_inner());
            if list.admits(source.ip()) {
                Decision::Trusted
            } else {
                Decision::Forbid
            }
        });
        Core {
            endpoint,
            accounts: accounts
                .into_iter()
                .map(|config| Account {
                    config,
                    registration: None,
                    next_hop: Vec::new(),
                    local: None,
                    outbound: None,
                    last_written: None,
                })
                .collect(),
            sockets,
            connections: Connections::default(),
            allow,
            missed,
            delivery: Delivery::Queue,
            status,
            shell,
            quiet: Quiet::default(),
            dropped_seen: 0,
        }
    }

    async fn run(mut self, mut inbound: mpsc::Receiver<Inbound>, token: CancellationToken) {
        // However this ends, this port's sockets stop with it.
        let _sockets = self.shell.transports.clone().drop_guard();
        let (resolved_tx, mut resolved) = mpsc::channel::<Resolved>(16);
        for index in 0..self.accounts.len() {
            self.shell.tracker.spawn(resolve_loop(
                index,
                self.accounts[index].config.clone(),
                resolved_tx.clone(),
                token.child_token(),
            ));
            self.write_status(index, Instant::now());
        }
        loop {
            let deadline = self.next_deadline();
            let sleep = async {
                match deadline {
                    Some(at) => tokio::time::sleep_until(at.into()).await,
                    None => std::future::pending().await,
                }
            };
            tokio::select! {
                _ = token.cancelled() => break,
                Some(message) = inbound.recv() => self.inbound(message).await,
                Some(update) = resolved.recv() => self.resolved(update).await,
                _ = sleep => self.poll(Instant::now()).await,
            }
        }
        self.shutdown(&mut inbound).await;
    }

    fn next_deadline(&self) -> Option<Instant> {
        self.accounts
            .iter()
            .filter_map(|a| a.registration.as_ref()?.next_deadline())
            .chain(self.endpoint.next_deadline())
            .min()
    }

    async fn poll(&mut self, now: Instant) {
        let actions = self.endpoint.poll_timers(now);
        self.perform(actions, now).await;
        for index in 0..self.accounts.len() {
            let due = self.accounts[index]
                .registration
                .as_ref()
                .and_then(Registration::next_deadline)
                .is_some_and(|at| at <= now);
            if due && let Some(registration) = self.accounts[index].registration.as_mut() {
                let actions = registration.poll(now);
                self.perform_registration(index, actions, now).await;
            }
        }
    }

    async fn inbound(&mut self, message: Inbound) {
        let now = Instant::now();
        let dropped = self.sockets.dropped.load(Ordering::Relaxed);
        if dropped > self.dropped_seen && self.quiet.due("overload", now).is_some() {
            warn!(
                dropped = dropped - self.dropped_seen,
                "SIP messages dropped: more arrived than the endpoint could take"
            );
            self.dropped_seen = dropped;
        }
        let (bytes, from, reliable) = match message {
            Inbound::Closed { from, connection } => {
                self.connections.closed(from, &connection);
                let error = format!("the TCP connection to the registrar at {from} closed");
                self.outbound_lost(&connection, &error, now).await;
                return;
            }
            Inbound::Unreachable {
                peer,
                connection,
                error,
            } => {
                let error = format!(
                    "cannot connect to the registrar at {peer} over TCP: {error}: check sip.registrar (and its port), and that it takes TCP, or set sip.transport = \"udp\""
                );
                self.outbound_lost(&connection, &error, now).await;
                return;
            }
            Inbound::Message {
                bytes,
                from,
                connection,
            } => {
                let reliable = connection.is_some();
                if let Some(writer) = connection {
                    self.connections.opened(from, writer);
                }
                (bytes, from, reliable)
            }
        };
        match wire::parse(&bytes) {
            Ok(Incoming::KeepAlive { .. }) => {}
            Ok(Incoming::Message(message)) => match *message {
                SipMessage::Request(request) => {
                    let span = info_span!("sip", call_id = %call_id_of(&request.headers));
                    let _entered = span.enter();
                    let actions = self.endpoint.handle_request(request, from, reliable, now);
                    drop(_entered);
                    self.perform(actions, now).await;
                }
                SipMessage::Response(response) => {
                    let index = self.accounts.iter().position(|a| {
                        a.registration
                            .as_ref()
                            .is_some_and(|r| r.matches_response(&response))
                    });
                    if let Some(index) = index
                        && let Some(registration) = self.accounts[index].registration.as_mut()
                    {
                        let actions = registration.handle_response(&response, now);
                        self.perform_registration(index, actions, now).await;
                    }
                }
            },
            Err(err) => {
                if let Some((method, headers)) = unrecognized_method(&bytes) {
                    let actions = self
                        .endpoint
                        .handle_unrecognized_method(&method, &headers, from, reliable, now);
                    self.perform(actions, now).await;
                } else if let Some((method, headers)) = wire::reply_headers(&bytes) {
                    // A request that is not well formed: 400, and never a call.
                    let span = info_span!("sip", call_id = %call_id_of(&headers));
                    let actions = span.in_scope(|| {
                        self.endpoint
                            .handle_malformed(&method, &headers, err, from, reliable, now)
                    });
                    self.perform(actions, now).await;
                } else if let Some(suppressed) = self.quiet.due("malformed", now) {
                    warn!(peer = %from, error = %err, suppressed, "unreadable SIP packet dropped");
                }
            }
        }
    }

    async fn send(&mut self, to: SocketAddr, bytes: Vec<u8>) {
        if self.connections.send(to, bytes.clone()) {
            return;
        }
        if let Err(err) = self.sockets.send_udp(&bytes, to).await
            && let Some(suppressed) = self.quiet.due("send", Instant::now())
        {
            warn!(peer = %to, error = %err, suppressed, "could not send a SIP message");
        }
    }

    async fn perform(&mut self, actions: Vec<Action>, now: Instant) {
        for action in actions {
            match action {
                Action::Send { to, message } => {
                    let bytes = match &message {
                        SipMessage::Response(response) => wire::response_bytes(response),
                        SipMessage::Request(request) => request.to_string().into_bytes(),
                    };
                    self.send(to, bytes).await;
                }
                Action::CallStarted { call_id, source } => {
                    info!(call_id = %call_id, peer = %source, "SIP call ringing");
                }
                Action::MissedCall(call) => {
                    let missed = self.missed_call(*call, now);
                    match self.delivery {
                        Delivery::Queue => {
                            if self.missed.try_send(missed).is_err() {
                                warn!("missed-call queue full: this call is not recorded");
                            }
                        }
                        Delivery::Wait => {
                            if self.missed.send(missed).await.is_err() {
                                warn!(
                                    "the daemon no longer takes missed calls: this call is not recorded"
                                );
                            }
                        }
                    }
                }
                Action::Rejected { source, reason } => self.log_rejection(source, reason, now),
                Action::Banned { ip, until } => {
                    warn!(peer = %ip, seconds = until.saturating_duration_since(now).as_secs(), "SIP source banned after repeated refusals");
                }
            }
        }
    }

    /// One log line per kind of refusal every [`LOG_EVERY`], with how many were not logged.
    fn log_rejection(&mut self, source: SocketAddr, reason: RejectReason, now: Instant) {
        let kind = match reason {
            RejectReason::Forbidden => "forbidden",
            RejectReason::Dropped => "dropped",
            RejectReason::UnknownUser(_) => "unknown_user",
            RejectReason::Malformed(_) => "malformed_request",
            RejectReason::NotWellFormed(_) => "not_well_formed",
            RejectReason::RateLimited(RateLimit::Requests) => "rate_limited_requests",
            RejectReason::RateLimited(RateLimit::Invites) => "rate_limited_invites",
            RejectReason::Scanning { .. } => "scanning",
            RejectReason::Busy(Busy::Ringing { .. }) => "busy_ringing",
            RejectReason::Busy(Busy::QueueFull { .. }) => "busy_queue",
        };
        let Some(suppressed) = self.quiet.due(kind, now) else {
            return;
        };
        match reason {
            RejectReason::RateLimited(RateLimit::Requests) => warn!(
                peer = %source,
                suppressed,
                limit = self.endpoint.guard_config().requests_per_second,
                "SIP requests dropped: the source sends more than sip.max_requests_per_second; raise it if this is your trunk"
            ),
            RejectReason::RateLimited(RateLimit::Invites) => warn!(
                peer = %source,
                suppressed,
                limit = self.endpoint.guard_config().invites_per_second,
                "SIP INVITEs answered 503: the source starts more calls a second than sip.max_invites_per_second; raise it if this is your trunk"
            ),
            RejectReason::Busy(Busy::Ringing { limit }) => warn!(
                peer = %source,
                suppressed,
                limit,
                "SIP INVITE answered 503: sip.max_ringing_calls calls are ringing already; raise it if your line has more at once"
            ),
            RejectReason::Busy(Busy::QueueFull { room }) => warn!(
                peer = %source,
                suppressed,
                room,
                "SIP INVITE answered 503: the daemon is behind with missed calls (its queue has room for only the calls ringing); the trunk may try again after Retry-After"
            ),
            RejectReason::Scanning { distinct } => warn!(
                peer = %source,
                suppressed,
                distinct,
                "SIP source tries many users and methods (a scanner); it counts towards a ban"
            ),
            reason => {
                warn!(peer = %source, reason = ?reason, suppressed, "SIP request refused (only the registrar, the proxy and sip.allow may call; INVITEs must be for sip.contact_user)")
            }
        }
    }

    /// Logs a missed call and makes the daemon's record of it.
    fn missed_call(&mut self, call: SipMissedCall, now: Instant) -> MissedCall {
        let (caller, caller_value) = identity::caller_with_value(&call.invite);
        let called = identity::called(&call.invite);
        let span = info_span!("sip_call", call_id = %call.call_id);
        let _entered = span.enter();
        let how = match call.how {
            CallEnd::Cancelled => "caller hung up",
            CallEnd::RingTimeout => "rang out",
            CallEnd::Aborted => "aborted",
            CallEnd::Shutdown => "rang while textback stopped",
        };
        // The Request-URI user is the contact user of the account the call came for (the
        // endpoint takes calls for those users only).
        let uri = call.invite.uri.to_string();
        let user = super::msg::uri_user(&uri).unwrap_or_default();
        let account = self
            .accounts
            .iter()
            .find(|account| account.config.contact_user == user)
            .map(|account| account.config.name.clone());
        info!(
            peer = %call.source,
            account = account.as_deref().unwrap_or("-"),
            caller_from = ?caller.source,
            called_from = ?called.source,
            status = call.final_status,
            how,
            "SIP call missed"
        );
        // The value the texted number was read from (cut to 200 characters for the table).
        let caller_raw: String = caller_value.chars().take(200).collect();
        let started = self.shell.clock.now()
            - chrono::Duration::from_std(now.saturating_duration_since(call.started_at))
                .unwrap_or_default();
        MissedCall {
            key: CallId::new(call.call_id.clone()),
            source: CallSource::Sip,
            caller: caller.id,
            caller_raw,
            called: called.number,
            modem: None,
            sip_account: account,
            at: started,
        }
    }

    async fn resolved(&mut self, update: Resolved) {
        let now = Instant::now();
        let index = update.account;
        {
            let mut list = self
                .allow
                .write()
                .unwrap_or_else(|poisoned| poisoned.into_inner());
            if let Some(slot) = list.resolved.get_mut(index)
                && !update.trusted.is_empty()
            {
                *slot = update.trusted.clone();
            }
        }
        let Some(account) = self.accounts.get_mut(index) else {
            return;
        };
        if let Some(error) = update.error {
            if account.registration.is_none() {
                warn!(account = %account.config.name, error = %error, "SIP registrar not found");
                let row = self.row(index, RegistrationState::Failed, Some(error), now);
                self.write_row(index, row);
            }
            return;
        }
        account.next_hop = update.next_hop;
        if !account.config.register {
            return;
        }
        let Some(peer) = account.next_hop.first().copied() else {
            return;
        };
        let Some(local) = local_address(&self.sockets, peer).await else {
            return;
        };
        let account = &mut self.accounts[index];
        account.local = Some(local);
        let actions = match account.registration.as_mut() {
            Some(registration) => registration.set_local_addr(local, now),
            None => {
                match Registration::new(
                    account_config(&account.config),
                    local,
                    Box::new(SipDigest),
                    rand::random(),
                ) {
                    Ok(registration) => {
                        let registration = account.registration.insert(registration);
                        registration.start(now)
                    }
                    Err(err) => {
                        let error = format!("{err}: check sip.registrar and sip.username");
                        let row = self.row(index, RegistrationState::Failed, Some(error), now);
                        self.write_row(index, row);
                        return;
                    }
                }
            }
        };
        self.perform_registration(index, actions, now).await;
        self.write_status(index, now);
    }

    async fn perform_registration(&mut self, index: usize, actions: Vec<RegAction>, now: Instant) {
        for action in actions {
            match action {
                RegAction::Send { to, request } => {
                    if let Some(peer) = self.peer_for(index, &to) {
                        self.send_for(index, peer, request.to_string().into_bytes())
                            .await;
                    }
                }
                RegAction::SendKeepAlive { to } => {
                    if let Some(peer) = self.peer_for(index, &to) {
                        self.send_for(index, peer, b"\r\n\r\n".to_vec()).await;
                    }
                }
                RegAction::StatusChanged(status) => {
                    log_status(&self.accounts[index].config.name, &status);
                    if matches!(status.state, RegState::Failed { .. })
                        && let Some(outbound) = self.accounts[index].outbound.take()
                    {
                        // The next attempt starts on a fresh connection: this one may be dead
                        // without having closed (a NAT that forgot it).
                        outbound.close.cancel();
                    }
                    self.write_status(index, now);
                }
            }
        }
    }

    /// Sends an account's own message (REGISTER, keep-alive) to `peer` over its transport.
    async fn send_for(&mut self, index: usize, peer: SocketAddr, bytes: Vec<u8>) {
        let Some(account) = self.accounts.get_mut(index) else {
            return;
        };
        if account.config.transport == SipTransport::Udp {
            // Over UDP even when a TCP connection from that address is open (another account's,
            // or the registrar's): the Via says UDP.
            if let Err(err) = self.sockets.send_udp(&bytes, peer).await
                && let Some(suppressed) = self.quiet.due("send", Instant::now())
            {
                warn!(peer = %peer, error = %err, suppressed, "could not send a SIP message");
            }
            return;
        }
        let usable = account
            .outbound
            .as_ref()
            .is_some_and(|o| o.peer == peer && !o.writer.is_closed());
        if !usable {
            if let Some(old) = account.outbound.take() {
                old.close.cancel();
            }
            info!(account = %account.config.name, peer = %peer, "SIP: connecting to the registrar over TCP");
            let close = self.shell.transports.child_token();
            let writer = transport::connect(
                peer,
                account.local,
                self.shell.inbound.clone(),
                self.sockets.dropped.clone(),
                close.clone(),
                &self.shell.tracker,
            );
            account.outbound = Some(Outbound {
                peer,
                writer,
                close,
            });
        }
        if let Some(outbound) = &account.outbound
            && outbound.writer.try_send(bytes).is_err()
            && let Some(suppressed) = self.quiet.due("send", Instant::now())
        {
            warn!(peer = %peer, suppressed, "SIP TCP connection to the registrar is not keeping up; message dropped");
        }
    }

    /// The connection `connection` closed or could not be made: if it was an account's own,
    /// the account's registration hears of it (and connects again).
    async fn outbound_lost(
        &mut self,
        connection: &mpsc::Sender<Vec<u8>>,
        error: &str,
        now: Instant,
    ) {
        let Some(index) = self.accounts.iter().position(|account| {
            account
                .outbound
                .as_ref()
                .is_some_and(|o| o.writer.same_channel(connection))
        }) else {
            return;
        };
        self.accounts[index].outbound = None;
        warn!(account = %self.accounts[index].config.name, error, "SIP registration connection lost");
        if let Some(registration) = self.accounts[index].registration.as_mut() {
            let actions = registration.transport_lost(error, now);
            self.perform_registration(index, actions, now).await;
        }
    }

    fn peer_for(&self, index: usize, _to: &Destination) -> Option<SocketAddr> {
        self.accounts.get(index)?.next_hop.first().copied()
    }

    fn write_status(&mut self, index: usize, now: Instant) {
        let Some(account) = self.accounts.get(index) else {
            return;
        };
        let row = match account.registration.as_ref() {
            None if !account.config.register => {
                self.row(index, RegistrationState::NotRegistering, None, now)
            }
            None => self.row(index, RegistrationState::Unregistered, None, now),
            Some(registration) => {
                let status = registration.status().clone();
                let state = match status.state {
                    RegState::Unregistered => RegistrationState::Unregistered,
                    RegState::Registering => RegistrationState::Registering,
                    RegState::Registered { .. } => RegistrationState::Registered,
                    RegState::Failed { .. } => RegistrationState::Failed,
                };
                let mut row = self.row(index, state, status.last_error.clone(), now);
                let wall = |at: Instant| {
                    let ms = if at >= now {
                        at.duration_since(now).as_millis() as i64
                    } else {
                        -(now.duration_since(at).as_millis() as i64)
                    };
                    self.shell.clock.now_ms() + ms
                };
                if let RegState::Registered { until } = status.state {
                    row.registered_until_ms = Some(wall(until));
                }
                if let RegState::Failed { retry_at, .. } = status.state {
                    row.retry_at_ms = Some(wall(retry_at));
                }
                row.next_refresh_ms = status.next_refresh.map(wall);
                row.last_response = status
                    .last_response
                    .map(|(code, reason)| format!("{code} {reason}"));
                row
            }
        };
        self.write_row(index, row);
    }

    fn row(
        &self,
        index: usize,
        state: RegistrationState,
        error: Option<String>,
        _now: Instant,
    ) -> SipAccountRow {
        let account = &self.accounts[index];
        let local = account
            .next_hop
            .first()
            .and_then(|peer| self.sockets.local_for(*peer))
            .or_else(|| self.sockets.local.first().copied())
            .map(|a| a.to_string())
            .unwrap_or_default();
        SipAccountRow {
            name: account.config.name.clone(),
            state,
            registered_until_ms: None,
            next_refresh_ms: None,
            retry_at_ms: None,
            last_error: error,
            last_response: None,
            local_address: match account.config.transport {
                SipTransport::Udp => {
                    format!("{local} (contact user {})", account.config.contact_user)
                }
                SipTransport::Tcp => format!(
                    "{local} over TCP (contact user {})",
                    account.config.contact_user
                ),
            },
            daemon_pid: i64::from(std::process::id()),
            updated_ms: self.shell.clock.now_ms(),
        }
    }

    fn write_row(&mut self, index: usize, row: SipAccountRow) {
        let key = format!(
            "{}|{:?}|{:?}|{:?}|{}",
            row.state, row.last_error, row.next_refresh_ms, row.last_response, row.local_address
        );
        if let Some(account) = self.accounts.get_mut(index) {
            if account.last_written.as_deref() == Some(key.as_str()) {
                return;
            }
            account.last_written = Some(key);
        }
        if self.status.try_send(row).is_err() {
            debug!("SIP status queue full; this state change is not recorded");
        }
    }

    /// Ends the calls still ringing (each one missed call, handed on before the core ends),
    /// removes every registration (bounded by [`UNREGISTER_WAIT`]), records the accounts as
    /// unregistered, then stops this port's sockets.
    async fn shutdown(mut self, inbound: &mut mpsc::Receiver<Inbound>) {
        let now = Instant::now();
        // A call ringing when textback stops is still a missed call, as a modem's is: it gets
        // the final response now, and the daemon records it before the store closes.
        self.delivery = Delivery::Wait;
        let actions = self.endpoint.shutdown(now);
        let ended = actions
            .iter()
            .filter(|action| matches!(action, Action::MissedCall(_)))
            .count();
        if ended > 0 {
            info!(
                calls = ended,
                "SIP calls still ringing were ended: textback is stopping"
            );
        }
        self.perform(actions, now).await;
        for index in 0..self.accounts.len() {
            if let Some(registration) = self.accounts[index].registration.as_mut() {
                let actions = registration.shutdown(now);
                self.perform_registration(index, actions, now).await;
            }
        }
        let deadline = tokio::time::Instant::now() + UNREGISTER_WAIT;
        while self
            .accounts
            .iter()
            .any(|a| a.registration.as_ref().is_some_and(|r| !r.is_stopped()))
        {
            let next = self.next_deadline().map(tokio::time::Instant::from_std);
            let wake = next.map_or(deadline, |at| at.min(deadline));
            tokio::select! {
                _ = tokio::time::sleep_until(deadline) => break,
                // The un-REGISTERs' answers, ACKs to the final responses just sent; a new
                // INVITE now gets 503 (the endpoint is stopping).
                Some(message) = inbound.recv() => self.inbound(message).await,
                _ = tokio::time::sleep_until(wake) => self.poll(Instant::now()).await,
            }
        }
        for index in 0..self.accounts.len() {
            let row = self.row(index, RegistrationState::Unregistered, None, Instant::now());
            self.write_row(index, row);
        }
        info!("SIP endpoint stopped");
    }
}

fn log_status(account: &str, status: &AccountStatus) {
    match &status.state {
        RegState::Registered { .. } => info!(account, "SIP account registered"),
        RegState::Failed { error, .. } => {
            warn!(account, error = %error, "SIP registration failed; retrying with back-off")
        }
        RegState::Registering => debug!(account, "SIP account registering"),
        RegState::Unregistered => info!(account, "SIP account unregistered"),
    }
}

/// The registration settings of an account.
pub fn account_config(account: &SipAccount) -> AccountConfig {
    let (keepalive, keepalive_interval) = match account.keepalive {
        SipKeepAlive::Crlf => (KeepAliveKind::Crlf, Some(account.keepalive_interval)),
        SipKeepAlive::Options => (KeepAliveKind::Options, Some(account.keepalive_interval)),
        SipKeepAlive::Off => (KeepAliveKind::Crlf, None),
    };
    let domain = account
        .domain
        .clone()
        .unwrap_or_else(|| host_of(&account.registrar).to_string());
    AccountConfig {
        registrar: format!("sip:{}", account.registrar.trim()),
        outbound_proxy: account
            .outbound_proxy
            .as_ref()
            .map(|proxy| format!("sip:{}", proxy.trim())),
        username: account.username.clone(),
        auth_username: account.auth_username.clone(),
        password: account.password.expose().to_string(),
        domain,
        contact_user: account.contact_user.clone(),
        expires: account.expires,
        keepalive_interval,
        keepalive,
        transport: match account.transport {
            SipTransport::Udp => rsip::Transport::Udp,
            SipTransport::Tcp => rsip::Transport::Tcp,
        },
        ..AccountConfig::default()
    }
}

/// The host of "host", "host:port", "[v6]" or "[v6]:port".
fn host_of(host_port: &str) -> &str {
    let text = host_port.trim();
    if let Some(rest) = text.strip_prefix('[') {
        return rest.split(']').next().unwrap_or(rest);
    }
    match text.rsplit_once(':') {
        Some((host, port)) if port.chars().all(|c| c.is_ascii_digit()) && !host.contains(':') => {
            host
        }
        _ => text,
    }
}

/// Resolves "host[:port]" (default port 5060; no SRV lookup).
pub(crate) async fn resolve(host_port: &str) -> Result<Vec<SocketAddr>, String> {
    let text = host_port.trim();
    let with_port = if text.starts_with('[') {
        if text.contains("]:") {
            text.to_string()
        } else {
            format!("{text}:5060")
        }
    } else if text.matches(':').count() == 1 {
        text.to_string()
    } else if text.contains(':') {
        format!("[{text}]:5060")
    } else {
        format!("{text}:5060")
    };
    match tokio::net::lookup_host(&with_port).await {
        Ok(addresses) => {
            let addresses: Vec<SocketAddr> = addresses.collect();
            if addresses.is_empty() {
                Err(format!("{host_port} has no address"))
            } else {
                Ok(addresses)
            }
        }
        Err(err) => Err(format!("cannot resolve {host_port}: {err}")),
    }
}

async fn resolve_loop(
    index: usize,
    account: SipAccount,
    resolved: mpsc::Sender<Resolved>,
    token: CancellationToken,
) {
    loop {
        let registrar = resolve(&account.registrar).await;
        let proxy = match &account.outbound_proxy {
            Some(proxy) => Some(resolve(proxy).await),
            None => None,
        };
        let (next_hop, error) = match (&proxy, &registrar) {
            (Some(Ok(proxy)), _) => (proxy.clone(), None),
            (Some(Err(err)), _) => (Vec::new(), Some(format!("{err}: check sip.outbound_proxy"))),
            (None, Ok(registrar)) => (registrar.clone(), None),
            (None, Err(err)) => (Vec::new(), Some(format!("{err}: check sip.registrar"))),
        };
        let mut trusted: Vec<IpAddr> = Vec::new();
        for list in [
            registrar.as_ref().ok(),
            proxy.as_ref().and_then(|p| p.as_ref().ok()),
        ]
        .into_iter()
        .flatten()
        {
            trusted.extend(list.iter().map(SocketAddr::ip));
        }
        let failed = error.is_some();
        let update = Resolved {
            account: index,
            next_hop,
            trusted,
            error,
        };
        if resolved.send(update).await.is_err() {
            return;
        }
        let wait = if failed { RESOLVE_RETRY } else { RESOLVE_EVERY };
        tokio::select! {
            _ = token.cancelled() => return,
            _ = tokio::time::sleep(wait) => {}
        }
    }
}

/// The address the registrar can reach us at: the local address the system routes `peer`
/// through (found by connecting a throw-away UDP socket; nothing is sent), with our port. A
/// specific listen address is used as it is.
async fn local_address(sockets: &Sockets, peer: SocketAddr) -> Option<SocketAddr> {
    let bound = sockets.local_for(peer)?;
    if !bound.ip().is_unspecified() {
        return Some(bound);
    }
    let ip = route_ip(peer).await?;
    Some(SocketAddr::new(ip, bound.port()))
}

/// The local address the system would send to `peer` from (a throw-away UDP socket is
/// connected to it; nothing is sent).
pub(crate) async fn route_ip(peer: SocketAddr) -> Option<IpAddr> {
    let probe_address: SocketAddr = if peer.is_ipv4() {
        SocketAddr::from(([0, 0, 0, 0], 0))
    } else {
        SocketAddr::from(([0u16; 8], 0))
    };
    let probe = tokio::net::UdpSocket::bind(probe_address).await.ok()?;
    probe.connect(peer).await.ok()?;
    Some(probe.local_addr().ok()?.ip())
}

fn call_id_of(headers: &rsip::Headers) -> String {
    headers
        .iter()
        .find_map(|header| match header {
            Header::CallId(call_id) => Some(call_id.value().chars().take(80).collect()),
            _ => None,
        })
        .unwrap_or_default()
}

/// A request whose method rsip cannot represent (an extension method): its method and headers,
/// read by parsing the same message with OPTIONS in its request line, for a 501.
fn unrecognized_method(bytes: &[u8]) -> Option<(String, rsip::Headers)> {
    let line_end = bytes.iter().position(|b| *b == b'\n')?;
    let line = std::str::from_utf8(bytes.get(..line_end)?).ok()?.trim_end();
    let mut parts = line.split(' ');
    let method = parts.next()?;
    let uri = parts.next()?;
    if parts.next()? != "SIP/2.0"
        || method.is_empty()
        || !method
            .bytes()
            .all(|b| b.is_ascii_alphanumeric() || b"-.!%*_+`'~".contains(&b))
        || method.parse::<Method>().is_ok()
    {
        return None;
    }
    // The CSeq names the method too; the 501 must echo the original (RFC 3261 §8.2.6.2).
    let rest = std::str::from_utf8(bytes.get(line_end + 1..)?).ok()?;
    let mut original_cseq = None;
    let mut rewritten = format!("OPTIONS {uri} SIP/2.0\r\n");
    for line in rest.split_inclusive('\n') {
        let name = line.split(':').next().unwrap_or_default().trim();
        if original_cseq.is_none() && name.eq_ignore_ascii_case("CSeq") {
            let value = line.split_once(':')?.1.trim().to_string();
            let number = value.split_whitespace().next()?.to_string();
            original_cseq = Some(value);
            rewritten.push_str(&format!("CSeq: {number} OPTIONS\r\n"));
        } else {
            rewritten.push_str(line);
        }
    }
    let original_cseq = original_cseq?;
    match wire::parse(rewritten.as_bytes()).ok()? {
        Incoming::Message(message) => match *message {
            SipMessage::Request(request) => {
                let headers = request
                    .headers
                    .into_iter()
                    .map(|header| match header {
                        Header::CSeq(_) => {
                            Header::CSeq(rsip::headers::CSeq::new(original_cseq.clone()))
                        }
                        other => other,
                    })
                    .collect::<Vec<_>>();
                Some((method.to_string(), rsip::Headers::from(headers)))
            }
            SipMessage::Response(_) => None,
        },
        Incoming::KeepAlive { .. } => None,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn host_of_strips_ports_and_brackets() {
        assert_eq!(host_of("sip.example.net"), "sip.example.net");
        assert_eq!(host_of("sip.example.net:5080"), "sip.example.net");
        assert_eq!(host_of("[2001:db8::1]:5060"), "2001:db8::1");
        assert_eq!(host_of("2001:db8::1"), "2001:db8::1");
    }

    #[test]
    fn extension_methods_are_read_for_a_501() {
        let message = b"FOO sip:tb@192.0.2.1 SIP/2.0\r\nVia: SIP/2.0/UDP 192.0.2.9;branch=z9hG4bK1\r\nFrom: <sip:a@b>;tag=1\r\nTo: <sip:tb@192.0.2.1>\r\nCall-ID: x\r\nCSeq: 1 FOO\r\nContent-Length: 0\r\n\r\n";
        let (method, headers) = unrecognized_method(message).expect("read");
        assert_eq!(method, "FOO");
        assert!(call_id_of(&headers) == "x");
        assert!(
            headers
                .iter()
                .any(|h| matches!(h, Header::CSeq(c) if c.value() == "1 FOO")),
            "{headers:?}"
        );
        assert!(unrecognized_method(b"garbage\r\n\r\n").is_none());
    }

    #[tokio::test]
    async fn names_resolve_with_the_default_port() {
        assert_eq!(
            resolve("127.0.0.1").await,
            Ok(vec!["127.0.0.1:5060".parse().unwrap()])
        );
        assert_eq!(
            resolve("[::1]:5080").await,
            Ok(vec!["[::1]:5080".parse().unwrap()])
        );
    }

    #[test]
    fn allow_list_admits_registrars_and_ranges() {
        let list = AllowList {
            resolved: vec![vec!["192.0.2.1".parse().unwrap()]],
            ranges: vec!["10.0.0.0/8".parse().unwrap()],
        };
        assert!(list.admits("192.0.2.1".parse().unwrap()));
        assert!(list.admits("::ffff:192.0.2.1".parse().unwrap()));
        assert!(list.admits("10.1.2.3".parse().unwrap()));
        assert!(!list.admits("203.0.113.5".parse().unwrap()));
    }
}
