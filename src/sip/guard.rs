//! Per-source limits against scanners, password guessers and floods, sans-I/O.
//!
//! For each source IP the [`Guard`] keeps:
//! * a count of rejected requests (forbidden by admission, unknown user, malformed, over a rate
//!   limit, scanning) in a fixed window; reaching [`GuardConfig::max_rejections`] bans the IP for
//!   [`GuardConfig::ban_for`], during which its requests are dropped without an answer (RFC 3261
//!   does not require answering traffic a UAS has decided to ignore, and silence gives scanners
//!   nothing);
//! * two token buckets, one for requests of any kind ([`GuardConfig::requests_per_second`]) and
//!   one for new INVITE transactions ([`GuardConfig::invites_per_second`]). Each holds one
//!   second's worth of tokens and refills continuously, so a source may burst up to its rate and
//!   then keep to it. The endpoint asks before it does any work; these limits apply to every
//!   source, the trusted trunk included (it is only never banned);
//! * the distinct Request-URI users and methods it used in the window: a scanner walks extension
//!   numbers and methods, a trunk uses a handful, so past [`GuardConfig::max_targets`] each new
//!   one counts as a rejection.
//!
//! The map is bounded by [`GuardConfig::max_sources`]; entries expire once their window and ban
//! are over and their buckets are full again.

use std::collections::HashMap;
use std::hash::{DefaultHasher, Hash, Hasher};
use std::net::IpAddr;
use std::time::{Duration, Instant};

pub use crate::domain::{DEFAULT_INVITES_PER_SECOND, DEFAULT_REQUESTS_PER_SECOND};

/// Default of [`GuardConfig::max_targets`]: a trunk uses INVITE, ACK, CANCEL, BYE and OPTIONS
/// (and a few more), for our contact users and none; a scanner uses many more.
pub const DEFAULT_MAX_TARGETS: u32 = 16;
/// A full map is purged at most this often; between purges a full map forgets one entry.
const PURGE_EVERY: Duration = Duration::from_secs(1);
/// How many entries a full map looks at for one to forget (a bounded look, not a scan of the
/// whole map on every new source of a spoofed flood).
const EVICTION_LOOK: usize = 64;

/// Thresholds of the [`Guard`].
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct GuardConfig {
    /// Rejections within `window` that trigger a ban; 0 disables banning.
    pub max_rejections: u32,
    /// Counting window.
    pub window: Duration,
    /// Ban length.
    pub ban_for: Duration,
    /// Most sources tracked at once.
    pub max_sources: usize,
    /// Requests of any kind (retransmissions and ACKs included) one source may send per second;
    /// 0: no limit.
    pub requests_per_second: u32,
    /// New INVITE transactions one source may start per second; 0: no limit.
    pub invites_per_second: u32,
    /// Distinct Request-URI users and methods one source may use within `window` before each
    /// new one counts as a rejection; 0: not counted.
    pub max_targets: u32,
}

impl Default for GuardConfig {
    fn default() -> Self {
        Self {
            max_rejections: 20,
            window: Duration::from_secs(60),
            ban_for: Duration::from_secs(600),
            max_sources: 4096,
            requests_per_second: DEFAULT_REQUESTS_PER_SECOND,
            invites_per_second: DEFAULT_INVITES_PER_SECOND,
            max_targets: DEFAULT_MAX_TARGETS,
        }
    }
}

/// Result of [`Guard::record_rejection`].
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Verdict {
    /// Counted; no ban.
    Counted,
    /// This rejection started a ban lasting until the given instant.
    BanStarted(Instant),
}

/// A source is over one of its rate limits.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct OverLimit {
    /// When its next token is due (for `Retry-After`).
    pub retry_in: Duration,
}

/// Millionths of a token: the buckets count in whole numbers, so refills are exact.
const MICRO: u64 = 1_000_000;

/// A token bucket holding one second's worth of tokens, refilled continuously.
#[derive(Debug, Clone, Copy)]
struct Bucket {
    micro_tokens: u64,
    at: Instant,
}

impl Bucket {
    fn full(rate: u32, now: Instant) -> Self {
        Self {
            micro_tokens: capacity(rate),
            at: now,
        }
    }

    /// Takes one token if there is one.
    fn take(&mut self, rate: u32, now: Instant) -> Result<(), OverLimit> {
        let rate = u64::from(rate.max(1));
        // `rate` tokens a second: `rate` millionths of a token every microsecond (1000 ns).
        let elapsed = now.saturating_duration_since(self.at).as_nanos();
        let refill = elapsed.saturating_mul(u128::from(rate)) / 1000;
        let filled = (u128::from(self.micro_tokens) + refill).min(u128::from(capacity_of(rate)));
        self.micro_tokens = u64::try_from(filled).unwrap_or(u64::MAX);
        self.at = self.at.max(now);
        if self.micro_tokens >= MICRO {
            self.micro_tokens -= MICRO;
            Ok(())
        } else {
            let missing = MICRO - self.micro_tokens;
            Err(OverLimit {
                retry_in: Duration::from_nanos(missing * 1000 / rate),
            })
        }
    }
}

/// One second's worth of tokens (at least one), in millionths.
fn capacity(rate: u32) -> u64 {
    capacity_of(u64::from(rate.max(1)))
}

fn capacity_of(rate: u64) -> u64 {
    rate.saturating_mul(MICRO)
}

#[derive(Debug, Clone)]
struct Entry {
    window_start: Instant,
    count: u32,
    banned_until: Option<Instant>,
    requests: Bucket,
    invites: Bucket,
    /// Hashes of the methods and Request-URI users used in this window (bounded).
    targets: Vec<u64>,
    last_seen: Instant,
}

impl Entry {
    fn new(cfg: &GuardConfig, now: Instant) -> Self {
        Self {
            window_start: now,
            count: 0,
            banned_until: None,
            requests: Bucket::full(cfg.requests_per_second, now),
            invites: Bucket::full(cfg.invites_per_second, now),
            targets: Vec::new(),
            last_seen: now,
        }
    }

    fn banned(&self, now: Instant) -> bool {
        self.banned_until.is_some_and(|u| u > now)
    }

    /// Starts a new window when the last one is over (and no ban runs).
    fn roll(&mut self, now: Instant, cfg: &GuardConfig) {
        if !self.banned(now) && now.saturating_duration_since(self.window_start) >= cfg.window {
            self.window_start = now;
            self.count = 0;
            self.banned_until = None;
            self.targets.clear();
        }
    }

    /// Nothing left to remember: window and ban over, and both buckets full again (they hold
    /// one second's worth, so a second without requests fills them).
    fn expired(&self, now: Instant, cfg: &GuardConfig) -> bool {
        !self.banned(now)
            && now.saturating_duration_since(self.window_start) >= cfg.window
            && now.saturating_duration_since(self.last_seen) >= Duration::from_secs(1)
    }
}

/// Bounded per-IP limits and rejection counter.
#[derive(Debug)]
pub struct Guard {
    config: GuardConfig,
    map: HashMap<IpAddr, Entry>,
    next_purge: Option<Instant>,
}

impl Guard {
    /// An empty guard.
    pub fn new(config: GuardConfig) -> Self {
        Self {
            config,
            map: HashMap::new(),
            next_purge: None,
        }
    }

    /// The thresholds in force.
    pub fn config(&self) -> &GuardConfig {
        &self.config
    }

    /// Whether `ip` is banned at `now`.
    pub fn is_banned(&self, ip: IpAddr, now: Instant) -> bool {
        self.map.get(&ip).is_some_and(|e| e.banned(now))
    }

    /// Takes a token for one request of any kind from `ip`.
    pub fn take_request(&mut self, ip: IpAddr, now: Instant) -> Result<(), OverLimit> {
        let rate = self.config.requests_per_second;
        if rate == 0 {
            return Ok(());
        }
        match self.entry(ip, now) {
            Some(entry) => entry.requests.take(rate, now),
            // Every slot holds an active ban: this source is not tracked (the endpoint's table
            // caps still bound what it can do).
            None => Ok(()),
        }
    }

    /// Takes a token for one new INVITE transaction from `ip`.
    pub fn take_invite(&mut self, ip: IpAddr, now: Instant) -> Result<(), OverLimit> {
        let rate = self.config.invites_per_second;
        if rate == 0 {
            return Ok(());
        }
        match self.entry(ip, now) {
            Some(entry) => entry.invites.take(rate, now),
            None => Ok(()),
        }
    }

    /// Notes that `ip` sent a new request with `method` to Request-URI user `user`. Returns how
    /// many distinct methods and users it used in this window when that is more than
    /// [`GuardConfig::max_targets`] and this one is new (or can no longer be told apart): the
    /// caller counts it as a rejection.
    pub fn record_target(
        &mut self,
        ip: IpAddr,
        method: &str,
        user: &str,
        now: Instant,
    ) -> Option<u32> {
        let limit = self.config.max_targets;
        if limit == 0 {
            return None;
        }
        // Remembered up to twice the limit; past that every request counts.
        let remembered = 2 * limit as usize;
        let entry = self.entry(ip, now)?;
        let mut new = 0;
        for (kind, value) in [("method", method), ("user", user)] {
            let mut hasher = DefaultHasher::new();
            (kind, value).hash(&mut hasher);
            let hash = hasher.finish();
            if entry.targets.contains(&hash) {
                continue;
            }
            new += 1;
            if entry.targets.len() < remembered {
                entry.targets.push(hash);
            }
        }
        let distinct = u32::try_from(entry.targets.len()).unwrap_or(u32::MAX);
        let unknown = entry.targets.len() >= remembered;
        ((new > 0 || unknown) && distinct > limit).then_some(distinct)
    }

    /// Counts one rejection of a request from `ip`.
    pub fn record_rejection(&mut self, ip: IpAddr, now: Instant) -> Verdict {
        if self.config.max_rejections == 0 {
            return Verdict::Counted;
        }
        let (max_rejections, ban_for) = (self.config.max_rejections, self.config.ban_for);
        let Some(e) = self.entry(ip, now) else {
            return Verdict::Counted;
        };
        if e.banned(now) {
            return Verdict::Counted;
        }
        e.count += 1;
        if e.count >= max_rejections {
            let until = now + ban_for;
            e.banned_until = Some(until);
            e.count = 0;
            e.targets.clear();
            e.window_start = until;
            return Verdict::BanStarted(until);
        }
        Verdict::Counted
    }

    /// The entry of `ip`, made if needed; `None` when the map is full of active bans.
    fn entry(&mut self, ip: IpAddr, now: Instant) -> Option<&mut Entry> {
        if !self.map.contains_key(&ip) && self.map.len() >= self.config.max_sources {
            if self.next_purge.is_none_or(|at| at <= now) {
                self.purge(now);
                self.next_purge = Some(now + PURGE_EVERY);
            }
            if self.map.len() >= self.config.max_sources {
                // Still full of live entries: forget one that is not banned.
                let victim = self
                    .map
                    .iter()
                    .take(EVICTION_LOOK)
                    .find(|(_, e)| !e.banned(now))
                    .map(|(ip, _)| *ip)?;
                self.map.remove(&victim);
            }
        }
        let cfg = &self.config;
        let entry = self.map.entry(ip).or_insert_with(|| Entry::new(cfg, now));
        entry.roll(now, cfg);
        entry.last_seen = entry.last_seen.max(now);
        Some(entry)
    }

    /// Drops entries with nothing left to remember.
    pub fn purge(&mut self, now: Instant) {
        let cfg = &self.config;
        self.map.retain(|_, e| !e.expired(now, cfg));
    }

    /// Number of tracked sources.
    pub fn len(&self) -> usize {
        self.map.len()
    }

    /// Whether no source is tracked.
    pub fn is_empty(&self) -> bool {
        self.map.is_empty()
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::sip::testutil::{ms, t0};

    fn ip(n: u32) -> IpAddr {
        IpAddr::V4(std::net::Ipv4Addr::from(0x0a00_0000 + n))
    }

    fn limits(requests: u32, invites: u32) -> GuardConfig {
        GuardConfig {
            requests_per_second: requests,
            invites_per_second: invites,
            ..Default::default()
        }
    }

    #[test]
    fn bans_after_n_rejections_in_window_and_expires() {
        let mut g = Guard::new(GuardConfig {
            max_rejections: 3,
            window: ms(10_000),
            ban_for: ms(60_000),
            max_sources: 8,
            ..Default::default()
        });
        assert_eq!(g.record_rejection(ip(1), t0()), Verdict::Counted);
        assert_eq!(g.record_rejection(ip(1), t0() + ms(1000)), Verdict::Counted);
        assert_eq!(
            g.record_rejection(ip(1), t0() + ms(2000)),
            Verdict::BanStarted(t0() + ms(62_000))
        );
        assert!(g.is_banned(ip(1), t0() + ms(61_999)));
        assert!(!g.is_banned(ip(1), t0() + ms(62_000)));
        assert!(!g.is_banned(ip(2), t0()));
        // Rejections spread wider than the window never ban.
        for i in 0..10 {
            assert_eq!(
                g.record_rejection(ip(2), t0() + ms(10_000 * i)),
                Verdict::Counted
            );
        }
        g.purge(t0() + ms(200_000));
        assert!(g.is_empty());
    }

    #[test]
    fn map_stays_bounded() {
        let mut g = Guard::new(GuardConfig {
            max_rejections: 2,
            max_sources: 16,
            ..Default::default()
        });
        for n in 0..10_000 {
            let now = t0() + ms(u64::from(n));
            g.record_rejection(ip(n), now);
            let _ = g.take_request(ip(n + 1), now);
            assert!(g.len() <= 16);
        }
    }

    #[test]
    fn invite_bucket_holds_a_second_and_refills_at_the_rate() {
        let mut g = Guard::new(limits(0, 5));
        for _ in 0..5 {
            assert_eq!(g.take_invite(ip(1), t0()), Ok(()));
        }
        let over = g.take_invite(ip(1), t0()).unwrap_err();
        assert_eq!(over.retry_in, ms(200), "one token every 1/5 s");
        // Another source has its own bucket.
        assert_eq!(g.take_invite(ip(2), t0()), Ok(()));
        // 200 ms later one more token, and only one.
        assert_eq!(g.take_invite(ip(1), t0() + ms(200)), Ok(()));
        assert!(g.take_invite(ip(1), t0() + ms(200)).is_err());
        // Held to the rate: 100 tries a second for 10 s get 5 a second through.
        let mut admitted = 0;
        for i in 1..=1000 {
            if g.take_invite(ip(1), t0() + ms(200 + 10 * i)).is_ok() {
                admitted += 1;
            }
        }
        assert_eq!(admitted, 50);
        // Idle for a second: a full burst again, never more.
        let later = t0() + ms(60_000);
        assert_eq!(
            (0..20)
                .filter(|_| g.take_invite(ip(1), later).is_ok())
                .count(),
            5
        );
        // Requests are not limited here (0), and a zero INVITE rate means none either.
        assert!((0..10_000).all(|_| g.take_request(ip(1), later).is_ok()));
        let mut open = Guard::new(limits(0, 0));
        assert!((0..10_000).all(|_| open.take_invite(ip(1), t0()).is_ok()));
        assert!(open.is_empty(), "nothing to track");
    }

    #[test]
    fn request_bucket_is_separate_from_the_invite_bucket() {
        let mut g = Guard::new(limits(3, 100));
        assert!((0..3).all(|_| g.take_request(ip(1), t0()).is_ok()));
        assert!(g.take_request(ip(1), t0()).is_err());
        assert!(g.take_invite(ip(1), t0()).is_ok());
        // Full again after a second, and forgotten once the window is over too.
        assert!(g.take_request(ip(1), t0() + ms(1000)).is_ok());
        g.purge(t0() + ms(61_000));
        assert!(g.is_empty());
    }

    #[test]
    fn many_distinct_users_and_methods_count_past_the_limit() {
        let mut g = Guard::new(GuardConfig {
            max_targets: 4,
            ..Default::default()
        });
        // A trunk: INVITE, CANCEL and OPTIONS to our user, four distinct things.
        for (method, user) in [
            ("INVITE", "tb1"),
            ("CANCEL", "tb1"),
            ("INVITE", "tb1"),
            ("OPTIONS", "tb1"),
        ] {
            assert_eq!(g.record_target(ip(1), method, user, t0()), None);
        }
        // A scanner walking extensions: every new user beyond the limit counts.
        let mut counted = Vec::new();
        for n in 100..110 {
            counted.push(g.record_target(ip(2), "INVITE", &n.to_string(), t0()));
        }
        assert_eq!(
            counted,
            [
                None,
                None,
                None,
                Some(5),
                Some(6),
                Some(7),
                Some(8),
                Some(8),
                Some(8),
                Some(8)
            ]
        );
        // The same target again is not new, until the memory (twice the limit) is full.
        let mut g = Guard::new(GuardConfig {
            max_targets: 4,
            ..Default::default()
        });
        for n in 0..4 {
            g.record_target(ip(3), "INVITE", &n.to_string(), t0());
        }
        assert_eq!(g.record_target(ip(3), "INVITE", "0", t0()), None);
        // A new window forgets.
        assert_eq!(
            g.record_target(ip(3), "OPTIONS", "x", t0() + ms(60_000)),
            None
        );
    }
}
