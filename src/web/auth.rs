//! Who may read the dashboard: a password (argon2 hash in the database) opens a session held in a
//! cookie (HttpOnly, SameSite=Strict, Secure behind https); every form carries the session's CSRF
//! token; password checks are limited per address and for the whole box, and run one at a time
//! on one thread ([`PasswordChecker`]); a one-time link from the CLI opens a session without a
//! password; the JSON API takes a bearer token whose SHA-256 is in the database.

use std::collections::{HashMap, VecDeque};
use std::net::IpAddr;
use std::sync::Mutex;
use std::time::{Duration, Instant};

use argon2::Argon2;
use argon2::password_hash::{PasswordHash, PasswordHasher, SaltString};
use base64::Engine;
use sha2::{Digest, Sha256};

/// The `settings` rows.
pub const PASSWORD_SETTING: &str = "dashboard_password";
pub const API_TOKEN_SETTING: &str = "api_token_sha256";
/// The one login link open now: its expiry (ms since the epoch, 8 bytes big-endian) and the
/// SHA-256 of its token.
pub const LOGIN_LINK_SETTING: &str = "dashboard_login_link";

pub const SESSION_COOKIE: &str = "textback_session";
/// The login form's double-submit cookie: a login form posted from another site has no way to
/// know it.
pub const LOGIN_COOKIE: &str = "textback_login";

/// An idle session ends after this.
const SESSION_IDLE: Duration = Duration::from_secs(12 * 60 * 60);
/// Sessions held at once; the oldest goes first beyond this.
const MAX_SESSIONS: usize = 256;
/// Password checks allowed per address in [`CHECK_WINDOW`], counted before each check.
pub const CHECKS_PER_ADDRESS: usize = 5;
pub const CHECK_WINDOW: Duration = Duration::from_secs(10 * 60);
/// Password checks a minute for the whole box, from every address but the box's own: a spray of
/// addresses gets no more guesses than this, whatever the table below holds.
pub const CHECKS_PER_MINUTE: usize = 20;
const MINUTE: Duration = Duration::from_secs(60);
/// Addresses tracked at once. [`CHECKS_PER_MINUTE`] keeps fewer than this in the window (200 in
/// ten minutes); if it ever fills, new addresses are refused rather than forgotten ones let in.
const MAX_TRACKED: usize = 4096;
/// Password checks waiting for the checker thread; more at once are answered 503.
pub const CHECK_QUEUE: usize = 8;
/// The most memory a stored hash may ask for (KiB): a hash made by `set-password` asks for
/// 19 MiB (argon2's default); a larger one would let the database decide the daemon's size.
const MAX_CHECK_MEMORY_KIB: u32 = 64 * 1024;
/// How long a login link from the CLI works.
pub const LOGIN_LINK_VALID: Duration = Duration::from_secs(15 * 60);

/// Random bytes from the kernel, as URL-safe base64.
pub fn random_token(bytes: usize) -> std::io::Result<String> {
    use std::io::Read;
    let mut buffer = vec![0u8; bytes];
    std::fs::File::open("/dev/urandom")?.read_exact(&mut buffer)?;
    Ok(base64::engine::general_purpose::URL_SAFE_NO_PAD.encode(buffer))
}

/// The PHC string (argon2id, random salt) to store for a password.
pub fn hash_password(password: &str) -> Result<String, String> {
    let salt_bytes = random_token(16).map_err(|err| format!("reading /dev/urandom: {err}"))?;
    let salt = SaltString::encode_b64(salt_bytes.as_bytes()).map_err(|err| err.to_string())?;
    Argon2::default()
        .hash_password(password.as_bytes(), &salt)
        .map(|hash| hash.to_string())
        .map_err(|err| err.to_string())
}

/// Whether `password` matches a stored PHC string, computed in `memory` (grown to what the
/// hash asks for and kept, so repeated checks reuse it). A malformed stored value, or one that
/// asks for more than [`MAX_CHECK_MEMORY_KIB`], matches nothing.
pub fn verify_password_in(memory: &mut Vec<argon2::Block>, stored: &str, password: &str) -> bool {
    let Ok(hash) = PasswordHash::new(stored) else {
        return false;
    };
    let Ok(algorithm) = argon2::Algorithm::try_from(hash.algorithm) else {
        return false;
    };
    let version = match hash.version.map(argon2::Version::try_from).transpose() {
        Ok(version) => version.unwrap_or_default(),
        Err(_) => return false,
    };
    let Ok(params) = argon2::Params::try_from(&hash) else {
        return false;
    };
    let (Some(salt), Some(expected)) = (hash.salt, hash.hash) else {
        return false;
    };
    if params.m_cost() > MAX_CHECK_MEMORY_KIB {
        return false;
    }
    let mut salt_bytes = [0u8; 64];
    let Ok(salt) = salt.decode_b64(&mut salt_bytes) else {
        return false;
    };
    let blocks = params.block_count();
    if memory.len() < blocks {
        memory.resize(blocks, argon2::Block::default());
    }
    let Some(memory) = memory.get_mut(..blocks) else {
        return false;
    };
    let mut output = vec![0u8; expected.len()];
    Argon2::new(algorithm, version, params)
        .hash_password_into_with_memory(password.as_bytes(), salt, &mut output, memory)
        .is_ok()
        && same(&output, expected.as_bytes())
}

/// Whether `password` matches a stored PHC string (for the CLI and tests: memory is allocated
/// for this one check).
pub fn verify_password(stored: &str, password: &str) -> bool {
    verify_password_in(&mut Vec::new(), stored, password)
}

/// The SHA-256 of an API token or a login link's token, as stored (the token itself is shown
/// once and never kept).
pub fn token_digest(token: &str) -> Vec<u8> {
    Sha256::digest(token.as_bytes()).to_vec()
}

/// Compares in constant time.
pub fn same(a: &[u8], b: &[u8]) -> bool {
    a.len() == b.len() && a.iter().zip(b).fold(0u8, |acc, (x, y)| acc | (x ^ y)) == 0
}

/// Which password a session was opened under: the SHA-256 of the stored hash (empty when no
/// password is set). A session whose password has changed since is over.
pub fn password_fingerprint(stored: Option<&[u8]>) -> Vec<u8> {
    stored
        .map(|stored| Sha256::digest(stored).to_vec())
        .unwrap_or_default()
}

/// The setting value of a login link: expiry, then the token's digest.
pub fn login_link_value(token: &str, expires_ms: i64) -> Vec<u8> {
    let mut value = expires_ms.to_be_bytes().to_vec();
    value.extend(token_digest(token));
    value
}

/// Whether `token` is the login link stored as `value`, and it has not expired at `now_ms`.
pub fn login_link_matches(value: &[u8], token: &str, now_ms: i64) -> bool {
    let Some((expiry, digest)) = value.split_first_chunk::<8>() else {
        return false;
    };
    now_ms < i64::from_be_bytes(*expiry) && same(digest, &token_digest(token))
}

/// Runs password checks one at a time on a thread of its own that keeps its argon2 memory:
/// however many logins arrive, at most one check's memory (19 MiB) is in use, and it is the same
/// memory each time. At most [`CHECK_QUEUE`] checks wait; more are refused at once.
pub struct PasswordChecker {
    jobs: std::sync::mpsc::SyncSender<Check>,
}

struct Check {
    stored: String,
    password: String,
    reply: tokio::sync::oneshot::Sender<bool>,
}

/// The checker's queue is full (or its thread is gone): try again shortly.
#[derive(Debug, Clone, Copy, PartialEq, Eq, thiserror::Error)]
#[error("{CHECK_QUEUE} password checks are already waiting; try again in a few seconds")]
pub struct CheckerBusy;

impl PasswordChecker {
    /// Starts the checker thread; it ends when the checker is dropped.
    pub fn start() -> std::io::Result<PasswordChecker> {
        let (jobs, queue) = std::sync::mpsc::sync_channel::<Check>(CHECK_QUEUE);
        std::thread::Builder::new()
            .name("password-check".into())
            .spawn(move || {
                let mut memory = Vec::new();
                for check in queue {
                    let right = verify_password_in(&mut memory, &check.stored, &check.password);
                    // A login whose client went away no longer waits: nothing to do.
                    let _ = check.reply.send(right);
                }
            })?;
        Ok(PasswordChecker { jobs })
    }

    /// Queues a check; the answer comes on the returned receiver (a dropped sender means the
    /// thread is gone: treat it as a wrong password).
    pub fn check(
        &self,
        stored: String,
        password: String,
    ) -> Result<tokio::sync::oneshot::Receiver<bool>, CheckerBusy> {
        let (reply, answer) = tokio::sync::oneshot::channel();
        self.jobs
            .try_send(Check {
                stored,
                password,
                reply,
            })
            .map_err(|_| CheckerBusy)?;
        Ok(answer)
    }
}

#[derive(Debug, Clone)]
pub struct Session {
    pub csrf: String,
    last_seen: Instant,
    /// [`password_fingerprint`] when it was opened.
    password: Vec<u8>,
}

/// Why a password was not checked.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Refusal {
    /// This address had its [`CHECKS_PER_ADDRESS`] in the window; the oldest leaves the window
    /// after `retry_after`.
    Address { retry_after: Duration },
    /// The box had its [`CHECKS_PER_MINUTE`].
    Box { retry_after: Duration },
    /// The table of addresses is full of addresses still in their window.
    Full,
}

/// A check counted against an address, to give back if it could not run.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Counted {
    key: IpAddr,
    at: Instant,
    against_box: bool,
}

/// Password checks counted per address and for the box.
#[derive(Default)]
struct Checks {
    /// When each of the address's checks in the window began, oldest first.
    by_address: HashMap<IpAddr, VecDeque<Instant>>,
    /// When each check in the last minute began (the box's own excepted), oldest first.
    recent: VecDeque<Instant>,
}

/// The address a limit applies to: an IPv4 address (IPv4-mapped IPv6 included) as it is, and an
/// IPv6 address by its /64, since one host usually holds a whole /64.
fn limit_key(address: IpAddr) -> IpAddr {
    match address {
        IpAddr::V4(v4) => IpAddr::V4(v4),
        IpAddr::V6(v6) => match v6.to_ipv4_mapped() {
            Some(v4) => IpAddr::V4(v4),
            None => {
                let prefix = u128::from(v6) & !((1u128 << 64) - 1);
                IpAddr::V6(prefix.into())
            }
        },
    }
}

/// The box itself: the owner at its keyboard (or over SSH) is never held to the box's limit.
pub(crate) fn is_this_box(address: IpAddr) -> bool {
    match address {
        IpAddr::V4(v4) => v4.is_loopback(),
        IpAddr::V6(v6) => {
            v6.is_loopback() || v6.to_ipv4_mapped().is_some_and(|v4| v4.is_loopback())
        }
    }
}

/// Sessions and password checks, in memory: a restart logs everyone out.
#[derive(Default)]
pub struct Gate {
    sessions: Mutex<HashMap<String, Session>>,
    checks: Mutex<Checks>,
}

impl Gate {
    /// Opens a session under the password `password` ([`password_fingerprint`]); returns its
    /// id (the cookie value).
    pub fn open_session(&self, password: Vec<u8>) -> std::io::Result<String> {
        let id = random_token(32)?;
        let csrf = random_token(24)?;
        if let Ok(mut sessions) = self.sessions.lock() {
            let now = Instant::now();
            sessions.retain(|_, s| now.duration_since(s.last_seen) < SESSION_IDLE);
            if sessions.len() >= MAX_SESSIONS
                && let Some(oldest) = sessions
                    .iter()
                    .min_by_key(|(_, s)| s.last_seen)
                    .map(|(id, _)| id.clone())
            {
                sessions.remove(&oldest);
            }
            sessions.insert(
                id.clone(),
                Session {
                    csrf,
                    last_seen: now,
                    password,
                },
            );
        }
        Ok(id)
    }

    /// The session for a cookie value, if it is open and was opened under the password set now
    /// (`password`, a [`password_fingerprint`]); touching it keeps it open. A session opened
    /// before the password changed is closed.
    pub fn session(&self, id: &str, password: &[u8]) -> Option<Session> {
        let mut sessions = self.sessions.lock().ok()?;
        let now = Instant::now();
        let session = sessions.get_mut(id)?;
        if now.duration_since(session.last_seen) >= SESSION_IDLE
            || !same(&session.password, password)
        {
            sessions.remove(id);
            return None;
        }
        session.last_seen = now;
        Some(session.clone())
    }

    pub fn close_session(&self, id: &str) {
        if let Ok(mut sessions) = self.sessions.lock() {
            sessions.remove(id);
        }
    }

    /// Counts a password check for `client` at `now`, before it runs, or refuses it: at most
    /// [`CHECKS_PER_ADDRESS`] per address in any [`CHECK_WINDOW`], and [`CHECKS_PER_MINUTE`] for
    /// the box (the box's own address excepted). One lock covers the look and the count, so
    /// attempts at once cannot all see room.
    pub fn count_check(&self, client: IpAddr, now: Instant) -> Result<Counted, Refusal> {
        let mut checks = self.checks.lock().unwrap_or_else(|p| p.into_inner());
        let key = limit_key(client);
        let against_box = !is_this_box(client);
        if let Some(times) = checks.by_address.get_mut(&key) {
            while times
                .front()
                .is_some_and(|t| now.saturating_duration_since(*t) >= CHECK_WINDOW)
            {
                times.pop_front();
            }
            if times.len() >= CHECKS_PER_ADDRESS {
                let oldest = times.front().copied().unwrap_or(now);
                return Err(Refusal::Address {
                    retry_after: CHECK_WINDOW.saturating_sub(now.saturating_duration_since(oldest)),
                });
            }
        }
        if against_box {
            while checks
                .recent
                .front()
                .is_some_and(|t| now.saturating_duration_since(*t) >= MINUTE)
            {
                checks.recent.pop_front();
            }
            if checks.recent.len() >= CHECKS_PER_MINUTE {
                let oldest = checks.recent.front().copied().unwrap_or(now);
                return Err(Refusal::Box {
                    retry_after: MINUTE.saturating_sub(now.saturating_duration_since(oldest)),
                });
            }
        }
        if !checks.by_address.contains_key(&key) && checks.by_address.len() >= MAX_TRACKED {
            checks.by_address.retain(|_, times| {
                times
                    .back()
                    .is_some_and(|t| now.saturating_duration_since(*t) < CHECK_WINDOW)
            });
            if checks.by_address.len() >= MAX_TRACKED {
                return Err(Refusal::Full);
            }
        }
        checks.by_address.entry(key).or_default().push_back(now);
        if against_box {
            checks.recent.push_back(now);
        }
        Ok(Counted {
            key,
            at: now,
            against_box,
        })
    }

    /// Gives back a check that was counted but could not run (the checker was busy).
    pub fn uncount(&self, counted: Counted) {
        let mut checks = self.checks.lock().unwrap_or_else(|p| p.into_inner());
        if let Some(times) = checks.by_address.get_mut(&counted.key)
            && let Some(at) = times.iter().rposition(|t| *t == counted.at)
        {
            times.remove(at);
        }
        if counted.against_box
            && let Some(at) = checks.recent.iter().rposition(|t| *t == counted.at)
        {
            checks.recent.remove(at);
        }
    }

    /// The right password from `client`: its count starts again.
    pub fn succeeded(&self, client: IpAddr) {
        let mut checks = self.checks.lock().unwrap_or_else(|p| p.into_inner());
        checks.by_address.remove(&limit_key(client));
    }
}

/// A cookie's value from a `Cookie` request header.
pub fn cookie<'a>(header: &'a str, name: &str) -> Option<&'a str> {
    header.split(';').find_map(|pair| {
        let (key, value) = pair.trim().split_once('=')?;
        (key == name).then_some(value)
    })
}

/// The `Set-Cookie` value for a cookie the page scripts never see.
pub fn set_cookie(name: &str, value: &str, secure: bool, max_age: Option<u64>) -> String {
    let mut cookie = format!("{name}={value}; Path=/; HttpOnly; SameSite=Strict");
    if secure {
        cookie.push_str("; Secure");
    }
    if let Some(age) = max_age {
        cookie.push_str(&format!("; Max-Age={age}"));
    }
    cookie
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_password_verifies_against_its_hash_only() {
        let stored = hash_password("correct horse").unwrap();
        assert!(stored.starts_with("$argon2id$"));
        assert!(verify_password(&stored, "correct horse"));
        assert!(!verify_password(&stored, "Correct horse"));
        assert!(!verify_password("not a hash", "correct horse"));
    }

    #[test]
    fn checks_are_counted_per_address_before_they_run() {
        let gate = Gate::default();
        let one: IpAddr = "192.0.2.1".parse().unwrap();
        let other: IpAddr = "192.0.2.2".parse().unwrap();
        let start = Instant::now();
        for n in 0..CHECKS_PER_ADDRESS {
            assert!(
                gate.count_check(one, start + Duration::from_secs(n as u64))
                    .is_ok()
            );
        }
        // Spread out or at once, the sixth within ten minutes of the first is refused.
        let sixth = gate.count_check(one, start + Duration::from_secs(599));
        assert_eq!(
            sixth,
            Err(Refusal::Address {
                retry_after: Duration::from_secs(1)
            })
        );
        assert!(gate.count_check(other, start).is_ok());
        // Once the first leaves the window, one more.
        assert!(gate.count_check(one, start + CHECK_WINDOW).is_ok());
        assert!(gate.count_check(one, start + CHECK_WINDOW).is_err());
        // A right password starts the count again.
        gate.succeeded(one);
        assert!(gate.count_check(one, start + CHECK_WINDOW).is_ok());
    }

    #[test]
    fn an_ipv6_host_is_limited_by_its_64() {
        let gate = Gate::default();
        let now = Instant::now();
        for n in 0..CHECKS_PER_ADDRESS {
            let address: IpAddr = format!("2001:db8:1:2::{n:x}").parse().unwrap();
            assert!(gate.count_check(address, now).is_ok());
        }
        let next: IpAddr = "2001:db8:1:2:ffff::1".parse().unwrap();
        assert!(matches!(
            gate.count_check(next, now),
            Err(Refusal::Address { .. })
        ));
        let elsewhere: IpAddr = "2001:db8:1:3::1".parse().unwrap();
        assert!(gate.count_check(elsewhere, now).is_ok());
    }

    #[test]
    fn the_box_has_a_limit_a_minute_that_its_own_address_is_not_held_to() {
        let gate = Gate::default();
        let now = Instant::now();
        for n in 0..CHECKS_PER_MINUTE {
            let address: IpAddr = format!("198.51.100.{n}").parse().unwrap();
            assert!(gate.count_check(address, now).is_ok());
        }
        assert!(matches!(
            gate.count_check("203.0.113.1".parse().unwrap(), now),
            Err(Refusal::Box { .. })
        ));
        assert!(gate.count_check("127.0.0.1".parse().unwrap(), now).is_ok());
        assert!(gate.count_check("::1".parse().unwrap(), now).is_ok());
        assert!(
            gate.count_check("203.0.113.1".parse().unwrap(), now + MINUTE)
                .is_ok()
        );
    }

    #[test]
    fn a_check_that_could_not_run_is_given_back() {
        let gate = Gate::default();
        let one: IpAddr = "192.0.2.1".parse().unwrap();
        let now = Instant::now();
        for _ in 0..CHECKS_PER_ADDRESS - 1 {
            gate.count_check(one, now).unwrap();
        }
        let last = gate.count_check(one, now).unwrap();
        assert!(gate.count_check(one, now).is_err());
        gate.uncount(last);
        assert!(gate.count_check(one, now).is_ok());
    }

    #[test]
    fn a_full_table_refuses_new_addresses_and_forgets_no_locked_one() {
        let gate = Gate::default();
        let now = Instant::now();
        {
            let mut checks = gate.checks.lock().unwrap();
            for n in 0..MAX_TRACKED as u32 {
                let address = IpAddr::V4(std::net::Ipv4Addr::from(0x0a00_0000 + n));
                checks
                    .by_address
                    .insert(address, VecDeque::from(vec![now; CHECKS_PER_ADDRESS]));
            }
        }
        assert_eq!(
            gate.count_check("127.0.0.1".parse().unwrap(), now),
            Err(Refusal::Full)
        );
        assert!(matches!(
            gate.count_check("10.0.0.1".parse().unwrap(), now),
            Err(Refusal::Address { .. })
        ));
        // Once their window is over, room again.
        assert!(
            gate.count_check("127.0.0.1".parse().unwrap(), now + CHECK_WINDOW)
                .is_ok()
        );
    }

    #[test]
    fn the_checker_reuses_one_buffer() {
        let stored = hash_password("correct horse").unwrap();
        let mut memory = Vec::new();
        assert!(verify_password_in(&mut memory, &stored, "correct horse"));
        let size = memory.len();
        assert_eq!(size * 1024, 19 * 1024 * 1024);
        assert!(!verify_password_in(&mut memory, &stored, "wrong"));
        assert_eq!(memory.len(), size);
        let checker = PasswordChecker::start().unwrap();
        let answer = checker.check(stored, "correct horse".into()).unwrap();
        assert_eq!(answer.blocking_recv(), Ok(true));
    }

    #[test]
    fn login_links_match_once_and_expire() {
        let value = login_link_value("token", 1_000);
        assert!(login_link_matches(&value, "token", 999));
        assert!(!login_link_matches(&value, "token", 1_000));
        assert!(!login_link_matches(&value, "other", 999));
        assert!(!login_link_matches(b"short", "token", 0));
    }

    #[test]
    fn sessions_end_when_the_password_changes() {
        let gate = Gate::default();
        let old = password_fingerprint(Some(b"old hash"));
        let id = gate.open_session(old.clone()).unwrap();
        assert!(gate.session(&id, &old).is_some());
        let new = password_fingerprint(Some(b"new hash"));
        assert!(gate.session(&id, &new).is_none());
        assert!(gate.session(&id, &old).is_none(), "closed for good");
    }

    #[test]
    fn cookies_are_read_by_name() {
        let header = "a=1; textback_session=abc; b=2";
        assert_eq!(cookie(header, SESSION_COOKIE), Some("abc"));
        assert_eq!(cookie(header, "c"), None);
        assert_eq!(
            set_cookie("x", "y", true, Some(60)),
            "x=y; Path=/; HttpOnly; SameSite=Strict; Secure; Max-Age=60"
        );
    }
}
