//! Registration client for one account (RFC 3261 §10.2; digest per §22; keep-alive per
//! RFC 5626 §4.4), sans-I/O.
//!
//! [`Registration::start`] sends a REGISTER; [`Registration::handle_response`] feeds responses;
//! [`Registration::poll`] fires the retransmission (Timer E/F), refresh, back-off and keep-alive
//! timers, due at [`Registration::next_deadline`]. [`Registration::status`] is what the CLI and the
//! dashboard show.
//!
//! Behaviour:
//! * Call-ID and From tag stay constant for the life of the registration; CSeq increases by one
//!   per request (§10.2); every request has a fresh branch (§8.1.1.7).
//! * 401/407 → answer the challenge (Authorization / Proxy-Authorization), reusing a nonce with
//!   an incremented nonce-count on later refreshes. Credentials computed from a fresh challenge
//!   that are challenged again without `stale=true` mean a wrong password: the account fails with
//!   a message naming the user instead of looping.
//! * 423 → retry once with the registrar's `Min-Expires` (§10.2.8).
//! * 2xx → registered until the expiry granted for our Contact (else `Expires`); refreshed at
//!   `expiry - max(10 %, 30 s)`, never earlier than half the granted time.
//! * Timeouts and other failures → back-off 2 s doubling to 5 min with ±20 % jitter, or the
//!   server's `Retry-After` when given.
//! * While registered, a keep-alive (CRLFCRLF or OPTIONS) goes to the registrar every interval.
//! * [`Registration::shutdown`] removes our binding (our Contact with `expires=0`).

use std::net::SocketAddr;
use std::time::{Duration, Instant};

use rand::rngs::StdRng;
use rand::{RngExt, SeedableRng};
use rsip::headers::UntypedHeader;
use rsip::{Header, Headers, Method, Request, Response, Transport, Version};

use super::transaction::{ClientEvent, ClientTransaction, Timers};
use super::{digest, msg};

/// Keep-alive flavour (RFC 5626 §4.4.1 CRLF ping, or an OPTIONS request as many trunks expect).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum KeepAliveKind {
    /// Send `\r\n\r\n`.
    #[default]
    Crlf,
    /// Send an OPTIONS request to the registrar; a timeout triggers re-registration.
    Options,
}

/// Back-off after failures.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct Backoff {
    /// First delay.
    pub initial: Duration,
    /// Cap.
    pub max: Duration,
    /// Relative jitter, e.g. 0.2 for ±20 %.
    pub jitter: f64,
}

impl Default for Backoff {
    fn default() -> Self {
        Self {
            initial: Duration::from_secs(2),
            max: Duration::from_secs(300),
            jitter: 0.2,
        }
    }
}

/// One SIP account. Its `Debug` output hides the password.
#[derive(Clone, PartialEq)]
pub struct AccountConfig {
    /// Registrar URI, the Request-URI of REGISTER (e.g. `sip:sip.example.com`).
    pub registrar: String,
    /// Outbound proxy URI; when set, requests go there with a `Route: <proxy;lr>`.
    pub outbound_proxy: Option<String>,
    /// User part of the address-of-record.
    pub username: String,
    /// Digest user name, if different from `username`.
    pub auth_username: Option<String>,
    /// Digest password.
    pub password: String,
    /// Domain of the address-of-record.
    pub domain: String,
    /// User part of our Contact (the Request-URI user of incoming INVITEs).
    pub contact_user: String,
    /// Requested registration lifetime in seconds (default 300).
    pub expires: u32,
    /// Keep-alive interval while registered; `None` disables keep-alives.
    pub keepalive_interval: Option<Duration>,
    /// Keep-alive flavour.
    pub keepalive: KeepAliveKind,
    /// Transport to the registrar.
    pub transport: Transport,
    /// `User-Agent` header; `None` (default) sends none.
    pub user_agent: Option<String>,
    /// Transaction timers.
    pub timers: Timers,
    /// Failure back-off.
    pub backoff: Backoff,
}

impl std::fmt::Debug for AccountConfig {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("AccountConfig")
            .field("registrar", &self.registrar)
            .field("outbound_proxy", &self.outbound_proxy)
            .field("username", &self.username)
            .field("auth_username", &self.auth_username)
            .field("password", &"<redacted>")
            .field("domain", &self.domain)
            .field("contact_user", &self.contact_user)
            .field("expires", &self.expires)
            .field("keepalive_interval", &self.keepalive_interval)
            .field("keepalive", &self.keepalive)
            .field("transport", &self.transport)
            .field("user_agent", &self.user_agent)
            .field("timers", &self.timers)
            .field("backoff", &self.backoff)
            .finish()
    }
}

impl Default for AccountConfig {
    fn default() -> Self {
        Self {
            registrar: String::new(),
            outbound_proxy: None,
            username: String::new(),
            auth_username: None,
            password: String::new(),
            domain: String::new(),
            contact_user: String::new(),
            expires: 300,
            keepalive_interval: Some(Duration::from_secs(25)),
            keepalive: KeepAliveKind::Crlf,
            transport: Transport::Udp,
            user_agent: None,
            timers: Timers::default(),
            backoff: Backoff::default(),
        }
    }
}

/// A bad [`AccountConfig`].
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum ConfigError {
    /// A URI did not parse.
    #[error("invalid {field} URI {value:?}")]
    BadUri {
        /// Which setting.
        field: &'static str,
        /// Its value.
        value: String,
    },
    /// A required value is empty.
    #[error("{0} must not be empty")]
    Empty(&'static str),
}

/// Where to send: the shell resolves `host` (RFC 3263) and sends over `transport`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Destination {
    /// Host name or IP literal.
    pub host: String,
    /// Port, when the URI names one.
    pub port: Option<u16>,
    /// Transport.
    pub transport: Transport,
}

/// Registration state for display.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum RegState {
    /// Not registered and not trying (before start, after shutdown).
    Unregistered,
    /// A REGISTER is in flight and no binding is known to exist.
    Registering,
    /// The registrar holds our binding until `until`.
    Registered {
        /// Expiry of the binding.
        until: Instant,
    },
    /// The last attempt failed; the next one is at `retry_at`.
    Failed {
        /// Human-readable reason.
        error: String,
        /// Next attempt.
        retry_at: Instant,
    },
}

/// What the CLI / dashboard shows for one account.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct AccountStatus {
    /// Current state.
    pub state: RegState,
    /// The most recent error, kept after recovery.
    pub last_error: Option<String>,
    /// When the next refresh REGISTER is due, while registered.
    pub next_refresh: Option<Instant>,
    /// Status code and reason of the last final response.
    pub last_response: Option<(u16, String)>,
}

/// What the shell must do for this account.
#[derive(Debug, Clone, PartialEq)]
pub enum RegAction {
    /// Send a request.
    Send {
        /// Where.
        to: Destination,
        /// The request.
        request: Request,
    },
    /// Send a CRLFCRLF keep-alive (RFC 5626 §4.4.1) to the registrar / proxy.
    SendKeepAlive {
        /// Where.
        to: Destination,
    },
    /// [`Registration::status`] changed (state or error), for logging.
    StatusChanged(AccountStatus),
}

/// What registration needs from a digest challenge.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ChallengeInfo {
    /// `realm`.
    pub realm: String,
    /// `nonce`.
    pub nonce: String,
    /// `stale=true` (RFC 7616 §3.3): the nonce expired, the password was fine.
    pub stale: bool,
}

/// Digest authentication as the registration client uses it (RFC 3261 §22.4). The integrator
/// implements this over `sip::digest` (`Challenge::parse` and `respond`).
pub trait Authenticator {
    /// Parses one `WWW-Authenticate` / `Proxy-Authenticate` value; `None` when unusable.
    fn challenge(&self, header_value: &str) -> Option<ChallengeInfo>;

    /// The `Authorization` / `Proxy-Authorization` value answering `challenge` (the raw header
    /// value) for `method` on `uri`, with nonce-count `nc` and client nonce `cnonce`.
    #[allow(clippy::too_many_arguments)]
    fn authorization(
        &self,
        challenge: &str,
        username: &str,
        password: &str,
        method: &str,
        uri: &str,
        nc: u32,
        cnonce: &str,
    ) -> Option<String>;
}

/// Digest authentication over [`super::digest`]: MD5, MD5-sess, SHA-256(-sess) and
/// SHA-512-256(-sess), qop=auth with nc and cnonce, or the RFC 2069 form when no qop is offered.
#[derive(Debug, Clone, Copy, Default)]
pub struct SipDigest;

impl Authenticator for SipDigest {
    fn challenge(&self, header_value: &str) -> Option<ChallengeInfo> {
        let challenge = digest::Challenge::parse(header_value).ok()?;
        Some(ChallengeInfo {
            realm: challenge.realm,
            nonce: challenge.nonce,
            stale: challenge.stale,
        })
    }

    fn authorization(
        &self,
        challenge: &str,
        username: &str,
        password: &str,
        method: &str,
        uri: &str,
        nc: u32,
        cnonce: &str,
    ) -> Option<String> {
        let challenge = digest::Challenge::parse(challenge).ok()?;
        let credentials = digest::Credentials {
            username: username.to_string(),
            password: password.to_string(),
        };
        digest::respond(&challenge, &credentials, method, uri, nc, cnonce)
            .ok()
            .map(|answer| answer.to_string())
    }
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum AuthKind {
    /// 401 / WWW-Authenticate / Authorization.
    Www,
    /// 407 / Proxy-Authenticate / Proxy-Authorization.
    Proxy,
}

#[derive(Debug, Clone)]
struct AuthCache {
    challenge: String,
    nonce: String,
    nc: u32,
    /// Received in answer to the last request and not yet used.
    fresh: bool,
}

/// Credentials attached to the in-flight request.
#[derive(Debug, Clone)]
struct SentAuth {
    kind: AuthKind,
    nonce: String,
    fresh: bool,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Purpose {
    Register,
    Unregister,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Phase {
    Idle,
    /// A request is in flight (see `reg_tx`).
    InFlight,
    Registered {
        until: Instant,
        refresh_at: Instant,
    },
    Waiting {
        retry_at: Instant,
    },
    Stopped,
}

/// A connection lost this soon after a registration is treated as a failure (back-off).
const QUICK_LOSS: Duration = Duration::from_secs(5);
/// Most challenges answered in one attempt before giving up (loop guard).
const MAX_CHALLENGES: u32 = 4;
/// Earliest refresh margin (RFC 3261 §10.2.4 leaves the margin to the UA).
const REFRESH_MARGIN: Duration = Duration::from_secs(30);

/// The registration client of one account.
pub struct Registration {
    config: AccountConfig,
    request_uri: rsip::Uri,
    destination: Destination,
    route: Option<String>,
    local: SocketAddr,
    auth: Box<dyn Authenticator + Send>,
    rng: StdRng,
    call_id: String,
    from_tag: String,
    cseq: u32,
    expires: u32,
    phase: Phase,
    /// Binding known to exist until then (kept while refreshing).
    bound_until: Option<Instant>,
    reg_tx: Option<ClientTransaction>,
    purpose: Purpose,
    sent_auth: Vec<SentAuth>,
    www: Option<AuthCache>,
    proxy: Option<AuthCache>,
    challenges: u32,
    fresh_rejections: u32,
    failures: u32,
    next_keepalive: Option<Instant>,
    ka_tx: Option<ClientTransaction>,
    /// When the last binding was confirmed: a connection lost right after it is a failure.
    registered_at: Option<Instant>,
    ka_call_id: String,
    ka_cseq: u32,
    status: AccountStatus,
}

impl std::fmt::Debug for Registration {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Registration")
            .field("registrar", &self.config.registrar)
            .field("username", &self.config.username)
            .field("phase", &self.phase)
            .field("status", &self.status)
            .finish_non_exhaustive()
    }
}

impl Registration {
    /// A registration for `config`, whose Via and Contact carry `local` (the address the
    /// registrar can reach us at). `auth` answers digest challenges; `seed` starts the random
    /// generator of tags, Call-IDs, client nonces and back-off jitter (the shell draws it from
    /// the system, tests fix it).
    pub fn new(
        config: AccountConfig,
        local: SocketAddr,
        auth: Box<dyn Authenticator + Send>,
        seed: u64,
    ) -> Result<Self, ConfigError> {
        Self::with_rng(config, local, auth, StdRng::seed_from_u64(seed))
    }

    fn with_rng(
        config: AccountConfig,
        local: SocketAddr,
        auth: Box<dyn Authenticator + Send>,
        mut rng: StdRng,
    ) -> Result<Self, ConfigError> {
        for (name, v) in [
            ("registrar", &config.registrar),
            ("username", &config.username),
            ("domain", &config.domain),
            ("contact_user", &config.contact_user),
        ] {
            if v.trim().is_empty() {
                return Err(ConfigError::Empty(name));
            }
        }
        let parse = |field: &'static str, value: &str| {
            rsip::Uri::try_from(value).map_err(|_| ConfigError::BadUri {
                field,
                value: value.to_string(),
            })
        };
        let request_uri = parse("registrar", &config.registrar)?;
        let next_hop = match &config.outbound_proxy {
            Some(p) => parse("outbound_proxy", p)?,
            None => request_uri.clone(),
        };
        let destination = Destination {
            host: next_hop.host_with_port.host.to_string(),
            port: next_hop.host_with_port.port.as_ref().map(|p| *p.value()),
            transport: config.transport,
        };
        let route = config
            .outbound_proxy
            .as_ref()
            .map(|p| format!("<{};lr>", p.trim()));
        let call_id = format!("{}@textback", random_token(&mut rng, 20));
        let from_tag = random_token(&mut rng, 12);
        let ka_call_id = format!("{}@textback", random_token(&mut rng, 20));
        let expires = config.expires.max(1);
        Ok(Self {
            config,
            request_uri,
            destination,
            route,
            local,
            auth,
            rng,
            call_id,
            from_tag,
            cseq: 0,
            expires,
            phase: Phase::Idle,
            bound_until: None,
            reg_tx: None,
            purpose: Purpose::Register,
            sent_auth: Vec::new(),
            www: None,
            proxy: None,
            challenges: 0,
            fresh_rejections: 0,
            failures: 0,
            next_keepalive: None,
            ka_tx: None,
            registered_at: None,
            ka_call_id,
            ka_cseq: 0,
            status: AccountStatus {
                state: RegState::Unregistered,
                last_error: None,
                next_refresh: None,
                last_response: None,
            },
        })
    }

    /// The status for display.
    pub fn status(&self) -> &AccountStatus {
        &self.status
    }

    /// Where this account's requests go.
    pub fn destination(&self) -> &Destination {
        &self.destination
    }

    /// The registration's constant `Call-ID`.
    pub fn call_id(&self) -> &str {
        &self.call_id
    }

    /// Whether [`Registration::shutdown`] has finished (binding removed or given up).
    pub fn is_stopped(&self) -> bool {
        self.phase == Phase::Stopped
    }

    /// Sends the first REGISTER.
    pub fn start(&mut self, now: Instant) -> Vec<RegAction> {
        let mut out = Vec::new();
        if matches!(self.phase, Phase::Idle | Phase::Stopped) {
            self.challenges = 0;
            self.send_register(Purpose::Register, now, &mut out);
        }
        out
    }

    /// Changes the address put in Via/Contact (e.g. after a network change); re-registers at
    /// once when a binding exists or is being made.
    pub fn set_local_addr(&mut self, local: SocketAddr, now: Instant) -> Vec<RegAction> {
        let mut out = Vec::new();
        if local == self.local {
            return out;
        }
        self.local = local;
        if matches!(self.phase, Phase::Registered { .. } | Phase::InFlight)
            && self.purpose == Purpose::Register
        {
            self.challenges = 0;
            self.send_register(Purpose::Register, now, &mut out);
        }
        out
    }

    /// The connection to the registrar is gone (a TCP connection closed, or could not be
    /// opened; `error` says which). A request in flight fails at once, as a transport error
    /// does (RFC 3261 §8.1.3.1, §17.1.4), and is tried again after the back-off; an un-REGISTER
    /// in flight gives up. A binding that stood is refreshed at once over a new connection:
    /// the registrar reaches a TCP contact over the connection it registered on, which is gone.
    /// A connection that keeps failing therefore costs one attempt per back-off, never a loop.
    pub fn transport_lost(&mut self, error: &str, now: Instant) -> Vec<RegAction> {
        let mut out = Vec::new();
        self.ka_tx = None;
        if self.reg_tx.take().is_some() {
            if self.purpose == Purpose::Unregister {
                self.stop(now, &mut out);
            } else {
                self.fail(error.to_string(), None, now, &mut out);
            }
        } else if matches!(self.phase, Phase::Registered { .. }) {
            let just_registered = self
                .registered_at
                .is_some_and(|at| now.saturating_duration_since(at) < QUICK_LOSS);
            if just_registered {
                // A registrar that closes each connection right after its 200 would otherwise
                // be registered with again and again, as fast as it answers.
                self.fail(
                    format!(
                        "{error} within {} s of registering over TCP; registering again after the back-off",
                        QUICK_LOSS.as_secs()
                    ),
                    None,
                    now,
                    &mut out,
                );
            } else {
                self.challenges = 0;
                self.send_register(Purpose::Register, now, &mut out);
            }
        }
        out
    }

    /// Whether `resp` answers one of this account's requests (for routing among accounts).
    pub fn matches_response(&self, resp: &Response) -> bool {
        self.reg_tx.as_ref().is_some_and(|t| t.matches(resp))
            || self.ka_tx.as_ref().is_some_and(|t| t.matches(resp))
    }

    /// Feeds a response; unrelated responses are ignored.
    pub fn handle_response(&mut self, resp: &Response, now: Instant) -> Vec<RegAction> {
        let mut out = Vec::new();
        if let Some(tx) = self.reg_tx.as_mut().filter(|t| t.matches(resp)) {
            if !tx.on_response(resp, now) || resp.status_code.code() < 200 {
                return out;
            }
            self.reg_tx = None;
            self.on_final(resp, now, &mut out);
        } else if let Some(tx) = self.ka_tx.as_mut().filter(|t| t.matches(resp)) {
            // Any final answer shows the path is alive.
            if tx.on_response(resp, now) && resp.status_code.code() >= 200 {
                self.ka_tx = None;
            }
        }
        out
    }

    /// Fires due timers.
    pub fn poll(&mut self, now: Instant) -> Vec<RegAction> {
        let mut out = Vec::new();
        let mut timed_out = false;
        if let Some(tx) = self.reg_tx.as_mut() {
            while let Some(ev) = tx.poll(now) {
                match ev {
                    ClientEvent::Retransmit(r) => out.push(RegAction::Send {
                        to: self.destination.clone(),
                        request: *r,
                    }),
                    ClientEvent::Timeout => timed_out = true,
                }
            }
        }
        if timed_out {
            self.reg_tx = None;
            if self.purpose == Purpose::Unregister {
                self.stop(now, &mut out);
            } else {
                let err = format!(
                    "no response from registrar {} (timeout)",
                    self.destination.host
                );
                self.fail(err, None, now, &mut out);
            }
        }
        let mut ka_timeout = false;
        if let Some(tx) = self.ka_tx.as_mut() {
            while let Some(ev) = tx.poll(now) {
                match ev {
                    ClientEvent::Retransmit(r) => out.push(RegAction::Send {
                        to: self.destination.clone(),
                        request: *r,
                    }),
                    ClientEvent::Timeout => ka_timeout = true,
                }
            }
        }
        if ka_timeout {
            self.ka_tx = None;
            // The path (or a NAT binding) is gone: register again now.
            if matches!(self.phase, Phase::Registered { .. }) {
                self.challenges = 0;
                self.send_register(Purpose::Register, now, &mut out);
            }
        }
        match self.phase {
            Phase::Registered { refresh_at, .. } if refresh_at <= now => {
                self.challenges = 0;
                self.send_register(Purpose::Register, now, &mut out);
            }
            Phase::Waiting { retry_at } if retry_at <= now => {
                self.challenges = 0;
                self.fresh_rejections = 0;
                self.send_register(Purpose::Register, now, &mut out);
            }
            _ => {}
        }
        if let Some(at) = self.next_keepalive.filter(|at| *at <= now) {
            self.keepalive(at, now, &mut out);
        }
        out
    }

    /// When [`Registration::poll`] must next be called.
    pub fn next_deadline(&self) -> Option<Instant> {
        let phase = match self.phase {
            Phase::Registered { refresh_at, .. } => Some(refresh_at),
            Phase::Waiting { retry_at } => Some(retry_at),
            _ => None,
        };
        [
            self.reg_tx
                .as_ref()
                .and_then(ClientTransaction::next_deadline),
            self.ka_tx
                .as_ref()
                .and_then(ClientTransaction::next_deadline),
            phase,
            self.next_keepalive,
        ]
        .into_iter()
        .flatten()
        .min()
    }

    /// Removes our binding (REGISTER with our Contact and `expires=0`, §10.2.2); stops at once
    /// when nothing is registered. Poll until [`Registration::is_stopped`].
    pub fn shutdown(&mut self, now: Instant) -> Vec<RegAction> {
        let mut out = Vec::new();
        let bound = self.bound_until.is_some_and(|u| u > now)
            || (self.phase == Phase::InFlight && self.purpose == Purpose::Register);
        self.next_keepalive = None;
        self.ka_tx = None;
        if bound {
            self.challenges = 0;
            self.send_register(Purpose::Unregister, now, &mut out);
        } else {
            self.reg_tx = None;
            self.stop(now, &mut out);
        }
        out
    }

    fn keepalive(&mut self, due: Instant, now: Instant, out: &mut Vec<RegAction>) {
        let Some(interval) = self.config.keepalive_interval else {
            self.next_keepalive = None;
            return;
        };
        let next = due + interval;
        self.next_keepalive = Some(if next <= now { now + interval } else { next });
        let bound = self.bound_until.is_some_and(|u| u > now);
        if !bound || self.purpose != Purpose::Register {
            return;
        }
        match self.config.keepalive {
            KeepAliveKind::Crlf => out.push(RegAction::SendKeepAlive {
                to: self.destination.clone(),
            }),
            KeepAliveKind::Options => {
                if self.ka_tx.is_some() {
                    return;
                }
                self.ka_cseq += 1;
                let req = self.build_request(Method::Options, self.ka_cseq, None);
                if let Ok(tx) =
                    ClientTransaction::start(req.clone(), self.reliable(), self.config.timers, now)
                {
                    self.ka_tx = Some(tx);
                    out.push(RegAction::Send {
                        to: self.destination.clone(),
                        request: req,
                    });
                }
            }
        }
    }

    fn reliable(&self) -> bool {
        !matches!(self.config.transport, Transport::Udp)
    }

    fn send_register(&mut self, purpose: Purpose, now: Instant, out: &mut Vec<RegAction>) {
        self.purpose = purpose;
        self.cseq += 1;
        let expires = match purpose {
            Purpose::Register => self.expires,
            Purpose::Unregister => 0,
        };
        let req = self.build_request(Method::Register, self.cseq, Some(expires));
        match ClientTransaction::start(req.clone(), self.reliable(), self.config.timers, now) {
            Ok(tx) => self.reg_tx = Some(tx),
            Err(_) => return,
        }
        self.phase = Phase::InFlight;
        // While refreshing, the binding still stands: keep showing Registered.
        let state = match (purpose, self.bound_until) {
            (Purpose::Register, Some(until)) if until > now => RegState::Registered { until },
            (Purpose::Register, _) => RegState::Registering,
            (Purpose::Unregister, _) => RegState::Unregistered,
        };
        self.set_state(state, out);
        out.push(RegAction::Send {
            to: self.destination.clone(),
            request: req,
        });
    }

    fn aor(&self) -> String {
        format!("<sip:{}@{}>", self.config.username, self.config.domain)
    }

    fn contact_uri(&self) -> String {
        let transport = match self.config.transport {
            Transport::Udp => String::new(),
            t => format!(";transport={}", t.to_string().to_ascii_lowercase()),
        };
        format!("sip:{}@{}{transport}", self.config.contact_user, self.local)
    }

    fn build_request(&mut self, method: Method, cseq: u32, expires: Option<u32>) -> Request {
        let branch = format!("{}{}", msg::MAGIC_COOKIE, random_token(&mut self.rng, 16));
        let mut h = Headers::default();
        h.push(
            rsip::headers::Via::new(format!(
                "SIP/2.0/{} {};branch={branch};rport",
                self.config.transport, self.local
            ))
            .into(),
        );
        h.push(rsip::headers::MaxForwards::new("70").into());
        if let Some(r) = &self.route {
            h.push(rsip::headers::Route::new(r.clone()).into());
        }
        let register = method == Method::Register;
        let (call_id, from_tag) = if register {
            (self.call_id.clone(), self.from_tag.clone())
        } else {
            (self.ka_call_id.clone(), self.from_tag.clone())
        };
        h.push(rsip::headers::From::new(format!("{};tag={from_tag}", self.aor())).into());
        let to = if register {
            self.aor()
        } else {
            format!("<{}>", self.request_uri)
        };
        h.push(rsip::headers::To::new(to).into());
        h.push(rsip::headers::CallId::new(call_id).into());
        h.push(rsip::headers::CSeq::new(format!("{cseq} {method}")).into());
        if let Some(e) = expires {
            h.push(
                rsip::headers::Contact::new(format!("<{}>;expires={e}", self.contact_uri())).into(),
            );
            h.push(rsip::headers::Expires::new(e.to_string()).into());
        }
        self.sent_auth.clear();
        if register {
            let uri = self.request_uri.to_string();
            let user = self
                .config
                .auth_username
                .clone()
                .unwrap_or_else(|| self.config.username.clone());
            for kind in [AuthKind::Www, AuthKind::Proxy] {
                let cnonce = random_token(&mut self.rng, 16);
                let cache = match kind {
                    AuthKind::Www => self.www.as_mut(),
                    AuthKind::Proxy => self.proxy.as_mut(),
                };
                let Some(cache) = cache else { continue };
                cache.nc += 1;
                let Some(value) = self.auth.authorization(
                    &cache.challenge,
                    &user,
                    &self.config.password,
                    "REGISTER",
                    &uri,
                    cache.nc,
                    &cnonce,
                ) else {
                    continue;
                };
                self.sent_auth.push(SentAuth {
                    kind,
                    nonce: cache.nonce.clone(),
                    fresh: cache.fresh,
                });
                cache.fresh = false;
                h.push(match kind {
                    AuthKind::Www => rsip::headers::Authorization::new(value).into(),
                    AuthKind::Proxy => rsip::headers::ProxyAuthorization::new(value).into(),
                });
            }
        }
        if register {
            h.push(rsip::headers::Allow::new(super::endpoint::ALLOW).into());
        }
        if let Some(ua) = &self.config.user_agent {
            h.push(rsip::headers::UserAgent::new(ua.clone()).into());
        }
        h.push(rsip::headers::ContentLength::new("0").into());
        Request {
            method,
            uri: self.request_uri.clone(),
            version: Version::V2,
            headers: h,
            body: Vec::new(),
        }
    }

    fn on_final(&mut self, resp: &Response, now: Instant, out: &mut Vec<RegAction>) {
        let code = resp.status_code.code();
        self.status.last_response = Some((code, msg::reason_phrase(&resp.status_code)));
        let purpose = self.purpose;
        match code {
            200..=299 if purpose == Purpose::Unregister => self.stop(now, out),
            200..=299 => self.on_registered(resp, now, out),
            401 | 407 => {
                let kind = if code == 401 {
                    AuthKind::Www
                } else {
                    AuthKind::Proxy
                };
                self.on_challenge(kind, resp, now, out);
            }
            _ if purpose == Purpose::Unregister => self.stop(now, out),
            423 => {
                let min = msg::response_header(resp, |h| match h {
                    Header::MinExpires(m) => Some(m.value()),
                    _ => None,
                })
                .and_then(|v| v.trim().parse::<u32>().ok());
                match min {
                    Some(min) if min > self.expires => {
                        self.expires = min;
                        self.send_register(Purpose::Register, now, out);
                    }
                    _ => self.fail(
                        "registrar answered 423 Interval Too Brief without a usable Min-Expires"
                            .into(),
                        None,
                        now,
                        out,
                    ),
                }
            }
            _ => {
                let retry_after = msg::response_header(resp, |h| match h {
                    Header::RetryAfter(r) => Some(r.value()),
                    _ => None,
                })
                .and_then(parse_retry_after);
                let reason = msg::reason_phrase(&resp.status_code);
                let hint = match code {
                    403 => format!(
                        ": registrar forbids user {}: check sip.username / sip.domain",
                        self.config.username
                    ),
                    404 => format!(
                        ": registrar does not know user {}@{}",
                        self.config.username, self.config.domain
                    ),
                    _ => String::new(),
                };
                let err = format!("registrar answered {code} {reason}{hint}");
                self.fail(err, retry_after, now, out);
            }
        }
    }

    fn on_registered(&mut self, resp: &Response, now: Instant, out: &mut Vec<RegAction>) {
        let granted = self.granted_expiry(resp);
        if granted == 0 {
            self.fail(
                "registrar accepted the REGISTER but granted no lifetime to our Contact".into(),
                None,
                now,
                out,
            );
            return;
        }
        self.failures = 0;
        self.challenges = 0;
        self.fresh_rejections = 0;
        let lifetime = Duration::from_secs(u64::from(granted));
        let margin = (lifetime / 10).max(REFRESH_MARGIN);
        let delay = lifetime
            .saturating_sub(margin)
            .max(lifetime / 2)
            .max(Duration::from_secs(1));
        let until = now + lifetime;
        let refresh_at = now + delay;
        self.bound_until = Some(until);
        self.phase = Phase::Registered { until, refresh_at };
        self.registered_at = Some(now);
        self.status.next_refresh = Some(refresh_at);
        if self.next_keepalive.is_none() {
            self.next_keepalive = self.config.keepalive_interval.map(|i| now + i);
        }
        self.set_state(RegState::Registered { until }, out);
    }

    /// Lifetime granted to our binding (RFC 3261 §10.2.4): the `expires` parameter of our
    /// Contact in the 2xx, else the `Expires` header, else what we asked for.
    fn granted_expiry(&self, resp: &Response) -> u32 {
        let ours = contact_key(&self.contact_uri());
        let from_contact = resp
            .headers
            .iter()
            .filter_map(|h| match h {
                Header::Contact(c) => Some(c.value()),
                _ => None,
            })
            .flat_map(msg::split_commas)
            .filter(|c| msg::addr_uri(c).map(contact_key) == Some(ours.clone()))
            .find_map(|c| {
                msg::header_params(c)
                    .into_iter()
                    .find(|(n, _)| n.eq_ignore_ascii_case("expires"))
                    .and_then(|(_, v)| v?.trim().parse::<u32>().ok())
            });
        from_contact
            .or_else(|| {
                msg::response_header(resp, |h| match h {
                    Header::Expires(e) => Some(e.value()),
                    _ => None,
                })
                .and_then(|v| v.trim().parse().ok())
            })
            .unwrap_or(self.expires)
    }

    fn on_challenge(
        &mut self,
        kind: AuthKind,
        resp: &Response,
        now: Instant,
        out: &mut Vec<RegAction>,
    ) {
        let who = match kind {
            AuthKind::Www => "registrar",
            AuthKind::Proxy => "proxy",
        };
        let user = self
            .config
            .auth_username
            .clone()
            .unwrap_or_else(|| self.config.username.clone());
        let raw: Vec<String> = resp
            .headers
            .iter()
            .filter_map(|h| match (kind, h) {
                (AuthKind::Www, Header::WwwAuthenticate(v)) => Some(v.value().to_string()),
                (AuthKind::Proxy, Header::ProxyAuthenticate(v)) => Some(v.value().to_string()),
                _ => None,
            })
            .collect();
        let Some((challenge, info)) = raw
            .into_iter()
            .find_map(|r| self.auth.challenge(&r).map(|i| (r, i)))
        else {
            let err = format!(
                "{who} sent {} without a usable Digest challenge",
                resp.status_code.code()
            );
            self.fail(err, None, now, out);
            return;
        };
        let refused = || format!("{who} refused the password for user {user}: check sip.password");
        if let Some(prev) = self.sent_auth.iter().find(|s| s.kind == kind)
            && prev.fresh
            && !info.stale
        {
            self.fresh_rejections += 1;
            if prev.nonce == info.nonce || self.fresh_rejections >= 2 {
                let err = refused();
                self.drop_auth(kind);
                let max = self.config.backoff.max;
                self.fail(err, Some(max), now, out);
                return;
            }
        }
        self.challenges += 1;
        if self.challenges > MAX_CHALLENGES {
            let err = format!("{who} keeps challenging user {user}: giving up for now");
            self.drop_auth(kind);
            self.fail(err, None, now, out);
            return;
        }
        let cache = AuthCache {
            challenge,
            nonce: info.nonce,
            nc: 0,
            fresh: true,
        };
        match kind {
            AuthKind::Www => self.www = Some(cache),
            AuthKind::Proxy => self.proxy = Some(cache),
        }
        let purpose = self.purpose;
        self.send_register(purpose, now, out);
    }

    fn drop_auth(&mut self, kind: AuthKind) {
        match kind {
            AuthKind::Www => self.www = None,
            AuthKind::Proxy => self.proxy = None,
        }
    }

    fn fail(
        &mut self,
        error: String,
        retry_after: Option<Duration>,
        now: Instant,
        out: &mut Vec<RegAction>,
    ) {
        self.failures = self.failures.saturating_add(1);
        let delay = retry_after.unwrap_or_else(|| self.backoff_delay());
        let retry_at = now + delay;
        self.phase = Phase::Waiting { retry_at };
        self.next_keepalive = None;
        self.ka_tx = None;
        self.status.next_refresh = None;
        self.status.last_error = Some(error.clone());
        self.set_state(RegState::Failed { error, retry_at }, out);
    }

    /// `initial · 2^(failures-1)`, capped, times a uniform factor in `[1-jitter, 1+jitter]`.
    fn backoff_delay(&mut self) -> Duration {
        let b = self.config.backoff;
        let exp = self.failures.saturating_sub(1).min(20);
        let base = b.initial.saturating_mul(1 << exp).min(b.max);
        let j = b.jitter.clamp(0.0, 0.9);
        let factor = if j > 0.0 {
            self.rng.random_range(1.0 - j..=1.0 + j)
        } else {
            1.0
        };
        base.mul_f64(factor)
    }

    fn stop(&mut self, _now: Instant, out: &mut Vec<RegAction>) {
        self.phase = Phase::Stopped;
        self.bound_until = None;
        self.next_keepalive = None;
        self.ka_tx = None;
        self.status.next_refresh = None;
        self.set_state(RegState::Unregistered, out);
    }

    fn set_state(&mut self, state: RegState, out: &mut Vec<RegAction>) {
        if self.status.state != state {
            self.status.state = state;
            if !matches!(self.status.state, RegState::Registered { .. }) {
                self.status.next_refresh = None;
            }
            out.push(RegAction::StatusChanged(self.status.clone()));
        }
    }
}

/// `user@host:port` of a SIP URI, lower-cased, for comparing Contacts (RFC 3261 §19.1.4, loosely).
fn contact_key(uri: &str) -> String {
    let no_scheme = uri.split_once(':').map_or(uri, |(_, r)| r);
    no_scheme
        .split(';')
        .next()
        .unwrap_or("")
        .trim()
        .to_ascii_lowercase()
}

/// `Retry-After: 120 (comment);duration=3600` → 120 s (RFC 3261 §20.33).
fn parse_retry_after(v: &str) -> Option<Duration> {
    let secs: u64 = v
        .trim()
        .split(|c: char| !c.is_ascii_digit())
        .next()?
        .parse()
        .ok()?;
    Some(Duration::from_secs(secs.min(86_400)))
}

fn random_token(rng: &mut StdRng, len: usize) -> String {
    const ALPHABET: &[u8] = b"abcdefghijklmnopqrstuvwxyz0123456789";
    (0..len)
        .map(|_| char::from(ALPHABET[rng.random_range(0..ALPHABET.len())]))
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::sip::msg::ResponseBase;
    use crate::sip::testutil::*;

    const LOCAL: &str = "192.0.2.20:5060";

    fn config() -> AccountConfig {
        AccountConfig {
            registrar: "sip:pbx.example.com".into(),
            username: "alice".into(),
            password: "secret".into(),
            domain: "pbx.example.com".into(),
            contact_user: "textback".into(),
            ..Default::default()
        }
    }

    fn reg_with(config: AccountConfig) -> Registration {
        Registration::new(config, LOCAL.parse().unwrap(), Box::new(SipDigest), 7).unwrap()
    }

    fn sent(actions: &[RegAction]) -> Vec<Request> {
        actions
            .iter()
            .filter_map(|a| match a {
                RegAction::Send { request, .. } => Some(request.clone()),
                _ => None,
            })
            .collect()
    }

    fn only(actions: &[RegAction]) -> Request {
        let s = sent(actions);
        assert_eq!(s.len(), 1, "{actions:?}");
        s[0].clone()
    }

    fn hv(req: &Request, name: &str) -> Option<String> {
        header_value(&req.to_string(), name)
    }

    fn reply(req: &Request, code: u16, extra: &[Header]) -> Response {
        let src: SocketAddr = "203.0.113.1:5060".parse().unwrap();
        let mut r = ResponseBase::new(&req.headers, src, false)
            .unwrap()
            .response(code);
        for h in extra {
            msg::push_header(&mut r, h.clone());
        }
        r
    }

    fn www(value: &str) -> Header {
        rsip::headers::WwwAuthenticate::new(value).into()
    }

    fn state(r: &Registration) -> RegState {
        r.status().state.clone()
    }

    #[test]
    fn register_401_auth_200_then_keepalives_and_refresh() {
        let mut r = reg_with(config());
        let a = r.start(t0());
        let req = only(&a);
        assert_eq!(req.method, Method::Register);
        assert_eq!(req.uri.to_string(), "sip:pbx.example.com");
        assert_eq!(hv(&req, "CSeq").as_deref(), Some("1 REGISTER"));
        assert_eq!(hv(&req, "Call-ID").as_deref(), Some(r.call_id()));
        assert_eq!(
            hv(&req, "To").as_deref(),
            Some("<sip:alice@pbx.example.com>")
        );
        assert!(
            hv(&req, "From")
                .unwrap()
                .starts_with("<sip:alice@pbx.example.com>;tag=")
        );
        assert_eq!(
            hv(&req, "Contact").as_deref(),
            Some("<sip:textback@192.0.2.20:5060>;expires=300")
        );
        assert_eq!(hv(&req, "Expires").as_deref(), Some("300"));
        let via = msg::top_via(&req.headers).unwrap();
        assert!(via.branch().unwrap().starts_with("z9hG4bK"));
        assert_eq!(via.param("rport"), Some(None));
        assert!(hv(&req, "Authorization").is_none());
        assert_eq!(state(&r), RegState::Registering);
        assert_eq!(
            r.destination(),
            &Destination {
                host: "pbx.example.com".into(),
                port: None,
                transport: Transport::Udp
            }
        );

        let t1 = t0() + ms(80);
        let a = r.handle_response(
            &reply(
                &req,
                401,
                &[www(
                    "Digest realm=\"pbx\", nonce=\"n1\", qop=\"auth\", algorithm=MD5",
                )],
            ),
            t1,
        );
        let req2 = only(&a);
        assert_eq!(hv(&req2, "CSeq").as_deref(), Some("2 REGISTER"));
        assert_eq!(hv(&req2, "Call-ID"), hv(&req, "Call-ID"));
        assert_ne!(
            msg::top_via(&req2.headers).unwrap().branch(),
            msg::top_via(&req.headers).unwrap().branch()
        );
        let auth = hv(&req2, "Authorization").unwrap();
        assert!(auth.starts_with("Digest username=\"alice\", realm=\"pbx\", nonce=\"n1\", uri=\"sip:pbx.example.com\""), "{auth}");
        assert!(auth.contains("nc=00000001"), "{auth}");
        assert_eq!(r.status().last_response, Some((401, "Unauthorized".into())));

        let t2 = t0() + ms(150);
        let contact: Header = rsip::headers::Contact::new(
            "<sip:other@198.51.100.1>;expires=3600, <sip:textback@192.0.2.20:5060>;expires=120",
        )
        .into();
        r.handle_response(&reply(&req2, 200, &[contact]), t2);
        assert_eq!(
            state(&r),
            RegState::Registered {
                until: t2 + ms(120_000)
            }
        );
        // 120 s granted: refresh at 120 - max(12, 30) = 90 s.
        assert_eq!(r.status().next_refresh, Some(t2 + ms(90_000)));

        let mut keepalives = Vec::new();
        let refresh = loop {
            let d = r.next_deadline().unwrap();
            let a = r.poll(d);
            if a.iter()
                .any(|a| matches!(a, RegAction::SendKeepAlive { .. }))
            {
                keepalives.push(d - t2);
            }
            if let [req3] = &sent(&a)[..] {
                assert_eq!(d - t2, ms(90_000));
                break req3.clone();
            }
        };
        assert_eq!(keepalives, [25_000, 50_000, 75_000].map(ms).to_vec());
        assert_eq!(hv(&refresh, "CSeq").as_deref(), Some("3 REGISTER"));
        let auth = hv(&refresh, "Authorization").unwrap();
        assert!(
            auth.contains("nonce=\"n1\"") && auth.contains("nc=00000002"),
            "{auth}"
        );
        assert!(
            matches!(state(&r), RegState::Registered { .. }),
            "still bound while refreshing"
        );

        let t3 = t2 + ms(90_100);
        r.handle_response(
            &reply(&refresh, 200, &[rsip::headers::Expires::new("300").into()]),
            t3,
        );
        assert_eq!(
            state(&r),
            RegState::Registered {
                until: t3 + ms(300_000)
            }
        );
        assert_eq!(r.status().next_refresh, Some(t3 + ms(270_000)));
        assert_eq!(r.status().last_error, None);
    }

    #[test]
    fn proxy_407_answered_with_proxy_authorization() {
        let mut r = reg_with(AccountConfig {
            outbound_proxy: Some("sip:proxy.example.com:5070".into()),
            auth_username: Some("alice-auth".into()),
            ..config()
        });
        let req = only(&r.start(t0()));
        assert_eq!(
            hv(&req, "Route").as_deref(),
            Some("<sip:proxy.example.com:5070;lr>")
        );
        assert_eq!(r.destination().host, "proxy.example.com");
        assert_eq!(r.destination().port, Some(5070));
        let challenge: Header =
            rsip::headers::ProxyAuthenticate::new("Digest realm=\"proxy\", nonce=\"p1\"").into();
        let req2 = only(&r.handle_response(&reply(&req, 407, &[challenge]), t0()));
        assert!(hv(&req2, "Authorization").is_none());
        let pa = hv(&req2, "Proxy-Authorization").unwrap();
        assert!(
            pa.contains("username=\"alice-auth\"") && pa.contains("nonce=\"p1\""),
            "{pa}"
        );
        r.handle_response(&reply(&req2, 200, &[]), t0() + ms(10));
        assert_eq!(
            state(&r),
            RegState::Registered {
                until: t0() + ms(10) + ms(300_000)
            }
        );
    }

    #[test]
    fn interval_too_brief_retries_with_min_expires_once() {
        let mut r = reg_with(config());
        let req = only(&r.start(t0()));
        let min: Header = rsip::headers::MinExpires::new("600").into();
        let req2 = only(&r.handle_response(&reply(&req, 423, std::slice::from_ref(&min)), t0()));
        assert_eq!(
            hv(&req2, "Contact").as_deref(),
            Some("<sip:textback@192.0.2.20:5060>;expires=600")
        );
        assert_eq!(hv(&req2, "Expires").as_deref(), Some("600"));
        let a = r.handle_response(&reply(&req2, 423, &[min]), t0() + ms(5));
        assert!(sent(&a).is_empty(), "no loop on a repeated 423");
        assert!(matches!(state(&r), RegState::Failed { .. }));
    }

    #[test]
    fn wrong_password_fails_instead_of_looping() {
        let mut r = reg_with(config());
        let req = only(&r.start(t0()));
        let ch = www("Digest realm=\"pbx\", nonce=\"n1\"");
        let req2 = only(&r.handle_response(&reply(&req, 401, std::slice::from_ref(&ch)), t0()));
        let a = r.handle_response(&reply(&req2, 401, &[ch]), t0() + ms(50));
        assert!(sent(&a).is_empty());
        let err = "registrar refused the password for user alice: check sip.password";
        assert_eq!(
            state(&r),
            RegState::Failed {
                error: err.into(),
                retry_at: t0() + ms(50) + ms(300_000)
            }
        );
        assert_eq!(r.status().last_error.as_deref(), Some(err));
        assert!(a.contains(&RegAction::StatusChanged(r.status().clone())));

        // A registrar that issues a new nonce on every rejection is caught on the second one.
        let mut r = reg_with(config());
        let req = only(&r.start(t0()));
        let req2 = only(&r.handle_response(
            &reply(&req, 401, &[www("Digest realm=\"pbx\", nonce=\"a\"")]),
            t0(),
        ));
        let req3 = only(&r.handle_response(
            &reply(&req2, 401, &[www("Digest realm=\"pbx\", nonce=\"b\"")]),
            t0(),
        ));
        let a = r.handle_response(
            &reply(&req3, 401, &[www("Digest realm=\"pbx\", nonce=\"c\"")]),
            t0(),
        );
        assert!(sent(&a).is_empty());
        assert!(
            matches!(state(&r), RegState::Failed { error, .. } if error.contains("refused the password"))
        );
    }

    #[test]
    fn stale_nonce_is_retried() {
        let mut r = reg_with(config());
        let req = only(&r.start(t0()));
        let req2 = only(&r.handle_response(
            &reply(
                &req,
                401,
                &[www("Digest realm=\"pbx\", nonce=\"n1\", qop=\"auth\"")],
            ),
            t0(),
        ));
        let req3 = only(&r.handle_response(
            &reply(
                &req2,
                401,
                &[www(
                    "Digest realm=\"pbx\", nonce=\"n2\", qop=\"auth\", stale=true",
                )],
            ),
            t0(),
        ));
        let auth = hv(&req3, "Authorization").unwrap();
        assert!(
            auth.contains("nonce=\"n2\"") && auth.contains("nc=00000001"),
            "{auth}"
        );
        r.handle_response(&reply(&req3, 200, &[]), t0());
        assert!(matches!(state(&r), RegState::Registered { .. }));
        // At refresh the cached nonce is reused; a stale 401 then gets a fresh answer.
        let at = t0() + ms(270_000);
        let refresh = sent(&r.poll(at)).pop().unwrap();
        assert!(
            hv(&refresh, "Authorization")
                .unwrap()
                .contains("nc=00000002")
        );
        let again = only(&r.handle_response(
            &reply(
                &refresh,
                401,
                &[www("Digest realm=\"pbx\", nonce=\"n3\", stale=TRUE")],
            ),
            at,
        ));
        assert!(
            hv(&again, "Authorization")
                .unwrap()
                .contains("nonce=\"n3\"")
        );
    }

    #[test]
    fn cached_nonce_rejected_without_stale_gets_one_fresh_try() {
        let mut r = reg_with(config());
        let req = only(&r.start(t0()));
        let req2 = only(&r.handle_response(
            &reply(&req, 401, &[www("Digest realm=\"pbx\", nonce=\"n1\"")]),
            t0(),
        ));
        r.handle_response(&reply(&req2, 200, &[]), t0());
        let at = t0() + ms(270_000);
        let refresh = sent(&r.poll(at)).pop().unwrap();
        // Many registrars drop old nonces without saying stale=true.
        let again = only(&r.handle_response(
            &reply(&refresh, 401, &[www("Digest realm=\"pbx\", nonce=\"n9\"")]),
            at,
        ));
        assert!(
            hv(&again, "Authorization")
                .unwrap()
                .contains("nonce=\"n9\"")
        );
        r.handle_response(&reply(&again, 200, &[]), at);
        assert!(matches!(state(&r), RegState::Registered { .. }));
    }

    #[test]
    fn timeouts_back_off_exponentially_with_jitter() {
        let mut r = reg_with(config());
        let first = only(&r.start(t0()));
        let mut now = t0();
        let mut cseqs = vec![hv(&first, "CSeq").unwrap()];
        for n in 1..=10u32 {
            // Timer E retransmits the same request until Timer F (32 s).
            let started = now;
            let mut retransmits = 0;
            loop {
                let d = r.next_deadline().unwrap();
                let a = r.poll(d);
                now = d;
                if matches!(state(&r), RegState::Failed { .. }) {
                    assert_eq!(d - started, ms(32_000));
                    assert!(sent(&a).is_empty());
                    break;
                }
                retransmits += sent(&a).len();
            }
            assert_eq!(retransmits, 10);
            let RegState::Failed { error, retry_at } = state(&r) else {
                unreachable!()
            };
            assert_eq!(
                error,
                "no response from registrar pbx.example.com (timeout)"
            );
            let base = (2.0 * 2f64.powi(n as i32 - 1)).min(300.0);
            let delay = (retry_at - now).as_secs_f64();
            assert!(
                delay >= base * 0.8 - 1e-6 && delay <= base * 1.2 + 1e-6,
                "failure {n}: {delay} s not within ±20 % of {base}"
            );
            assert_eq!(r.next_deadline(), Some(retry_at));
            let a = r.poll(retry_at);
            now = retry_at;
            let req = only(&a);
            assert_eq!(hv(&req, "Call-ID"), hv(&first, "Call-ID"));
            cseqs.push(hv(&req, "CSeq").unwrap());
            assert_eq!(state(&r), RegState::Registering);
        }
        assert_eq!(cseqs.last().map(String::as_str), Some("11 REGISTER"));
    }

    #[test]
    fn retry_after_and_error_hints() {
        let mut r = reg_with(config());
        let req = only(&r.start(t0()));
        let ra: Header = rsip::headers::RetryAfter::new("120 (maintenance)").into();
        r.handle_response(&reply(&req, 503, &[ra]), t0());
        assert_eq!(
            state(&r),
            RegState::Failed {
                error: "registrar answered 503 Service Unavailable".into(),
                retry_at: t0() + ms(120_000)
            }
        );
        let req = only(&r.poll(t0() + ms(120_000)));
        r.handle_response(&reply(&req, 403, &[]), t0() + ms(120_000));
        let RegState::Failed { error, .. } = state(&r) else {
            panic!()
        };
        assert_eq!(
            error,
            "registrar answered 403 Forbidden: registrar forbids user alice: check sip.username / sip.domain"
        );
    }

    #[test]
    fn unregister_on_shutdown() {
        let mut r = reg_with(config());
        let req = only(&r.start(t0()));
        r.handle_response(&reply(&req, 200, &[]), t0());
        let a = r.shutdown(t0() + ms(1000));
        let un = only(&a);
        assert_eq!(
            hv(&un, "Contact").as_deref(),
            Some("<sip:textback@192.0.2.20:5060>;expires=0")
        );
        assert_eq!(hv(&un, "Expires").as_deref(), Some("0"));
        assert_eq!(hv(&un, "CSeq").as_deref(), Some("2 REGISTER"));
        assert_eq!(hv(&un, "Call-ID"), hv(&req, "Call-ID"));
        assert_eq!(state(&r), RegState::Unregistered);
        assert!(!r.is_stopped());
        // Challenged once, answered, then done.
        let un2 = only(&r.handle_response(
            &reply(&un, 401, &[www("Digest realm=\"pbx\", nonce=\"u\"")]),
            t0() + ms(1010),
        ));
        assert!(hv(&un2, "Contact").unwrap().ends_with(";expires=0"));
        assert!(
            r.handle_response(&reply(&un2, 200, &[]), t0() + ms(1020))
                .is_empty()
        );
        assert!(r.is_stopped());
        assert_eq!(r.next_deadline(), None);

        let mut idle = reg_with(config());
        assert!(sent(&idle.shutdown(t0())).is_empty());
        assert!(idle.is_stopped());
    }

    #[test]
    fn options_keepalive_and_reregister_on_timeout() {
        let mut r = reg_with(AccountConfig {
            keepalive: KeepAliveKind::Options,
            keepalive_interval: Some(ms(30_000)),
            transport: Transport::Tcp,
            ..config()
        });
        let req = only(&r.start(t0()));
        assert!(
            hv(&req, "Via")
                .unwrap()
                .starts_with("SIP/2.0/TCP 192.0.2.20:5060;")
        );
        assert_eq!(
            hv(&req, "Contact").as_deref(),
            Some("<sip:textback@192.0.2.20:5060;transport=tcp>;expires=300")
        );
        let contact: Header =
            rsip::headers::Contact::new("<sip:textback@192.0.2.20:5060;transport=tcp>;expires=200")
                .into();
        r.handle_response(&reply(&req, 200, &[contact]), t0());
        assert_eq!(
            state(&r),
            RegState::Registered {
                until: t0() + ms(200_000)
            }
        );
        let ping = only(&r.poll(t0() + ms(30_000)));
        assert_eq!(ping.method, Method::Options);
        assert_ne!(hv(&ping, "Call-ID"), hv(&req, "Call-ID"));
        assert!(r.matches_response(&reply(&ping, 200, &[])));
        r.handle_response(&reply(&ping, 200, &[]), t0() + ms(30_050));
        let ping2 = only(&r.poll(t0() + ms(60_000)));
        assert_eq!(hv(&ping2, "CSeq").as_deref(), Some("2 OPTIONS"));
        // No answer: over TCP no retransmission, Timer F after 32 s → REGISTER again.
        assert_eq!(r.next_deadline(), Some(t0() + ms(90_000)));
        let a = r.poll(t0() + ms(90_000));
        assert!(sent(&a).iter().all(|q| q.method == Method::Options));
        let a = r.poll(t0() + ms(92_000));
        let again = only(&a);
        assert_eq!(again.method, Method::Register);
    }

    #[test]
    fn a_lost_connection_re_registers_a_binding_and_fails_a_request_in_flight() {
        let mut r = reg_with(AccountConfig {
            transport: Transport::Tcp,
            ..config()
        });
        // Nothing going on: nothing to do.
        assert!(r.transport_lost("closed", t0()).is_empty());
        let req = only(&r.start(t0()));
        r.handle_response(&reply(&req, 200, &[]), t0());
        assert!(matches!(state(&r), RegState::Registered { .. }));
        // The binding stood: REGISTER again at once (over a new connection); it still shows as
        // registered meanwhile.
        let again = only(&r.transport_lost("the TCP connection closed", t0() + ms(10_000)));
        assert_eq!(again.method, Method::Register);
        assert_eq!(hv(&again, "CSeq").as_deref(), Some("2 REGISTER"));
        assert!(matches!(state(&r), RegState::Registered { .. }));
        // That one's connection fails too: no new request now, a retry after the back-off.
        let a = r.transport_lost("cannot connect: refused", t0() + ms(10_010));
        assert!(sent(&a).is_empty());
        let RegState::Failed { error, retry_at } = state(&r) else {
            panic!("{:?}", state(&r))
        };
        assert_eq!(error, "cannot connect: refused");
        let delay = retry_at - (t0() + ms(10_010));
        assert!(delay >= ms(1600) && delay <= ms(2400), "{delay:?}");
        assert_eq!(r.next_deadline(), Some(retry_at));
        // Lost again while waiting: still nothing before the retry.
        assert!(sent(&r.transport_lost("closed", t0() + ms(10_100))).is_empty());
        let retry = only(&r.poll(retry_at));
        r.handle_response(&reply(&retry, 200, &[]), retry_at);
        assert!(matches!(state(&r), RegState::Registered { .. }));
        // An un-REGISTER whose connection is lost gives up: the daemon is stopping anyway.
        only(&r.shutdown(retry_at + ms(10)));
        r.transport_lost("closed", retry_at + ms(20));
        assert!(r.is_stopped());
    }

    #[test]
    fn a_connection_lost_right_after_registering_backs_off() {
        let mut r = reg_with(AccountConfig {
            transport: Transport::Tcp,
            ..config()
        });
        let req = only(&r.start(t0()));
        r.handle_response(&reply(&req, 200, &[]), t0());
        // Closed 1 s after the 200: no REGISTER at once (a registrar that closes every
        // connection would get one as fast as it answers), a retry after the back-off.
        let a = r.transport_lost("the TCP connection closed", t0() + ms(1000));
        assert!(sent(&a).is_empty());
        let RegState::Failed { error, retry_at } = state(&r) else {
            panic!("{:?}", state(&r))
        };
        assert!(
            error.contains("within 5 s of registering over TCP"),
            "{error}"
        );
        assert!(retry_at > t0() + ms(1000));
    }

    #[test]
    fn debug_output_hides_the_password() {
        let shown = format!("{:?} {:?}", config(), reg_with(config()));
        assert!(!shown.contains("secret"), "{shown}");
    }

    #[test]
    fn zero_grant_and_bad_config() {
        let mut r = reg_with(config());
        let req = only(&r.start(t0()));
        r.handle_response(
            &reply(&req, 200, &[rsip::headers::Expires::new("0").into()]),
            t0(),
        );
        assert!(matches!(state(&r), RegState::Failed { .. }));
        let bad = Registration::new(
            AccountConfig {
                username: String::new(),
                ..config()
            },
            LOCAL.parse().unwrap(),
            Box::new(SipDigest),
            7,
        );
        assert_eq!(bad.err(), Some(ConfigError::Empty("username")));
    }

    proptest::proptest! {
        #![proptest_config(proptest::prelude::ProptestConfig::with_cases(200))]
        #[test]
        fn arbitrary_responses_never_panic_or_stall(
            script in proptest::collection::vec(
                (
                    proptest::sample::select(vec![100u16, 180, 200, 202, 302, 401, 403, 404, 407, 423, 480, 500, 503, 603]),
                    proptest::option::of("[ -~]{0,40}"),
                    proptest::option::of("[ -~]{0,40}"),
                    proptest::option::of("[0-9a-z ()]{0,12}"),
                    0u64..40_000,
                ),
                1..8,
            ),
        ) {
            let mut r = reg_with(config());
            let mut last = only(&r.start(t0()));
            let mut now = t0();
            for (code, challenge, contact, number, dt) in script {
                now += ms(dt);
                let mut extra: Vec<Header> = Vec::new();
                if let Some(c) = challenge {
                    extra.push(www(&c));
                    extra.push(rsip::headers::ProxyAuthenticate::new(c).into());
                }
                if let Some(c) = contact {
                    extra.push(rsip::headers::Contact::new(c).into());
                }
                if let Some(n) = number {
                    extra.push(rsip::headers::Expires::new(n.clone()).into());
                    extra.push(rsip::headers::MinExpires::new(n.clone()).into());
                    extra.push(rsip::headers::RetryAfter::new(n).into());
                }
                let mut actions = r.handle_response(&reply(&last, code, &extra), now);
                actions.extend(r.poll(now));
                if let Some(q) = sent(&actions).into_iter().rfind(|q| q.method == Method::Register) {
                    last = q;
                }
                // Never stuck: something is always scheduled.
                proptest::prop_assert!(r.next_deadline().is_some());
                if let Some(d) = r.next_deadline() {
                    proptest::prop_assert!(d >= now);
                }
            }
        }
    }
}
