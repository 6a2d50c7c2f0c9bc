//! Who may read the dashboard: a password (argon2 hash in the database) opens a session held in a
//! cookie (HttpOnly, SameSite=Strict, Secure behind https); every form carries the session's CSRF
//! token; failed logins are limited per address; the JSON API takes a bearer token whose SHA-256
//! is in the database.

use std::collections::HashMap;
use std::net::IpAddr;
use std::sync::Mutex;
use std::time::{Duration, Instant};

use argon2::Argon2;
use argon2::password_hash::{PasswordHash, PasswordHasher, PasswordVerifier, SaltString};
use base64::Engine;
use sha2::{Digest, Sha256};

/// The `settings` rows.
pub const PASSWORD_SETTING: &str = "dashboard_password";
pub const API_TOKEN_SETTING: &str = "api_token_sha256";

pub const SESSION_COOKIE: &str = "textback_session";
/// The login form's double-submit cookie: a login form posted from another site has no way to
/// know it.
pub const LOGIN_COOKIE: &str = "textback_login";

/// An idle session ends after this.
const SESSION_IDLE: Duration = Duration::from_secs(12 * 60 * 60);
/// Sessions held at once; the oldest goes first beyond this.
const MAX_SESSIONS: usize = 256;
/// Failed logins allowed per address in [`FAILURE_WINDOW`].
const MAX_FAILURES: usize = 5;
const FAILURE_WINDOW: Duration = Duration::from_secs(10 * 60);
/// Addresses tracked for failed logins, to bound memory under a spray of addresses.
const MAX_TRACKED: usize = 4096;

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

/// Whether `password` matches a stored PHC string. A malformed stored value matches nothing.
pub fn verify_password(stored: &str, password: &str) -> bool {
    PasswordHash::new(stored).is_ok_and(|hash| {
        Argon2::default()
            .verify_password(password.as_bytes(), &hash)
            .is_ok()
    })
}

/// The SHA-256 of an API token, as stored (the token itself is shown once and never kept).
pub fn token_digest(token: &str) -> Vec<u8> {
    Sha256::digest(token.as_bytes()).to_vec()
}

/// Compares in constant time.
pub fn same(a: &[u8], b: &[u8]) -> bool {
    a.len() == b.len() && a.iter().zip(b).fold(0u8, |acc, (x, y)| acc | (x ^ y)) == 0
}

#[derive(Debug, Clone)]
pub struct Session {
    pub csrf: String,
    last_seen: Instant,
}

/// Sessions and login failures, in memory: a restart logs everyone out.
#[derive(Default)]
pub struct Gate {
    sessions: Mutex<HashMap<String, Session>>,
    failures: Mutex<HashMap<IpAddr, Vec<Instant>>>,
}

impl Gate {
    /// Opens a session; returns its id (the cookie value).
    pub fn open_session(&self) -> std::io::Result<String> {
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
                },
            );
        }
        Ok(id)
    }

    /// The session for a cookie value, if it is open; touching it keeps it open.
    pub fn session(&self, id: &str) -> Option<Session> {
        let mut sessions = self.sessions.lock().ok()?;
        let now = Instant::now();
        let session = sessions.get_mut(id)?;
        if now.duration_since(session.last_seen) >= SESSION_IDLE {
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

    /// Whether this address may try a password now: false after [`MAX_FAILURES`] failures in
    /// the window.
    pub fn may_try(&self, address: IpAddr) -> bool {
        let Ok(mut failures) = self.failures.lock() else {
            return false;
        };
        let now = Instant::now();
        match failures.get_mut(&address) {
            Some(times) => {
                times.retain(|t| now.duration_since(*t) < FAILURE_WINDOW);
                times.len() < MAX_FAILURES
            }
            None => true,
        }
    }

    pub fn failed(&self, address: IpAddr) {
        if let Ok(mut failures) = self.failures.lock() {
            let now = Instant::now();
            if failures.len() >= MAX_TRACKED {
                failures.retain(|_, times| {
                    times.retain(|t| now.duration_since(*t) < FAILURE_WINDOW);
                    !times.is_empty()
                });
            }
            if failures.len() < MAX_TRACKED || failures.contains_key(&address) {
                failures.entry(address).or_default().push(now);
            }
        }
    }

    pub fn succeeded(&self, address: IpAddr) {
        if let Ok(mut failures) = self.failures.lock() {
            failures.remove(&address);
        }
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
    fn failed_logins_are_limited_per_address() {
        let gate = Gate::default();
        let one: IpAddr = "192.0.2.1".parse().unwrap();
        let other: IpAddr = "192.0.2.2".parse().unwrap();
        for _ in 0..MAX_FAILURES {
            assert!(gate.may_try(one));
            gate.failed(one);
        }
        assert!(!gate.may_try(one));
        assert!(gate.may_try(other));
    }

    #[test]
    fn sessions_open_and_close() {
        let gate = Gate::default();
        let id = gate.open_session().unwrap();
        let session = gate.session(&id).unwrap();
        assert_eq!(session.csrf.len(), 32);
        assert!(gate.session("forged").is_none());
        gate.close_session(&id);
        assert!(gate.session(&id).is_none());
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
