//! Per-source rejection counting with temporary bans, for scanners and password guessers.
//!
//! Each rejected request (forbidden by admission, unknown user, malformed) counts against its
//! source IP in a fixed window; reaching [`GuardConfig::max_rejections`] bans the IP for
//! [`GuardConfig::ban_for`], during which its requests are dropped without an answer (RFC 3261
//! does not require answering traffic a UAS has decided to ignore, and silence gives scanners
//! nothing). The map is bounded by [`GuardConfig::max_sources`]; entries expire.

use std::collections::HashMap;
use std::net::IpAddr;
use std::time::{Duration, Instant};

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
}

impl Default for GuardConfig {
    fn default() -> Self {
        Self {
            max_rejections: 20,
            window: Duration::from_secs(60),
            ban_for: Duration::from_secs(600),
            max_sources: 4096,
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

#[derive(Debug, Clone)]
struct Entry {
    window_start: Instant,
    count: u32,
    banned_until: Option<Instant>,
}

impl Entry {
    fn expired(&self, now: Instant, cfg: &GuardConfig) -> bool {
        let ban_over = self.banned_until.is_none_or(|u| u <= now);
        ban_over && now.saturating_duration_since(self.window_start) >= cfg.window
    }
}

/// Bounded per-IP rejection counter.
#[derive(Debug)]
pub struct Guard {
    config: GuardConfig,
    map: HashMap<IpAddr, Entry>,
}

impl Guard {
    /// An empty guard.
    pub fn new(config: GuardConfig) -> Self {
        Self {
            config,
            map: HashMap::new(),
        }
    }

    /// Whether `ip` is banned at `now`.
    pub fn is_banned(&self, ip: IpAddr, now: Instant) -> bool {
        self.map
            .get(&ip)
            .and_then(|e| e.banned_until)
            .is_some_and(|u| u > now)
    }

    /// Counts one rejection of a request from `ip`.
    pub fn record_rejection(&mut self, ip: IpAddr, now: Instant) -> Verdict {
        if self.config.max_rejections == 0 {
            return Verdict::Counted;
        }
        if !self.map.contains_key(&ip) && self.map.len() >= self.config.max_sources {
            self.purge(now);
            if self.map.len() >= self.config.max_sources {
                // Still full of live entries: forget the one whose window is oldest.
                let oldest = self
                    .map
                    .iter()
                    .filter(|(_, e)| e.banned_until.is_none_or(|u| u <= now))
                    .min_by_key(|(_, e)| e.window_start)
                    .map(|(ip, _)| *ip);
                match oldest {
                    Some(old) => {
                        self.map.remove(&old);
                    }
                    // Every slot holds an active ban: do not track more.
                    None => return Verdict::Counted,
                }
            }
        }
        let cfg = &self.config;
        let e = self.map.entry(ip).or_insert(Entry {
            window_start: now,
            count: 0,
            banned_until: None,
        });
        if e.banned_until.is_some_and(|u| u > now) {
            return Verdict::Counted;
        }
        if now.saturating_duration_since(e.window_start) >= cfg.window {
            e.window_start = now;
            e.count = 0;
            e.banned_until = None;
        }
        e.count += 1;
        if e.count >= cfg.max_rejections {
            let until = now + cfg.ban_for;
            e.banned_until = Some(until);
            e.count = 0;
            e.window_start = until;
            return Verdict::BanStarted(until);
        }
        Verdict::Counted
    }

    /// Drops entries whose window and ban are over.
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

    #[test]
    fn bans_after_n_rejections_in_window_and_expires() {
        let mut g = Guard::new(GuardConfig {
            max_rejections: 3,
            window: ms(10_000),
            ban_for: ms(60_000),
            max_sources: 8,
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
            g.record_rejection(ip(n), t0() + ms(u64::from(n)));
            assert!(g.len() <= 16);
        }
    }
}
