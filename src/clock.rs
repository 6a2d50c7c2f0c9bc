//! The daemon's wall clock: the one place the shell reads the date and time of day.
//!
//! Business time (opening hours, a caller's silence, retention, when a held text or a lead retry
//! is due, "12 minutes ago") is read from a [`Clock`] handed to every task at start-up, never from
//! `Utc::now()` directly, so a test can run the whole daemon on a date of its choosing. Timers that
//! only measure how long something takes (`tokio::time`, `Instant`) stay on the monotonic clock.

use std::sync::Arc;
use std::sync::atomic::{AtomicI64, Ordering};

use chrono::{DateTime, Utc};

/// A wall clock: the system's, or one shifted to a date a test chose that then runs at real speed.
#[derive(Debug, Clone, Default)]
pub struct Clock {
    /// Milliseconds added to the system clock; `None` for the system clock itself.
    offset_ms: Option<Arc<AtomicI64>>,
}

impl Clock {
    /// The system clock.
    pub fn system() -> Clock {
        Clock::default()
    }

    /// A clock that reads `at` now and then runs at real speed.
    pub fn starting_at(at: DateTime<Utc>) -> Clock {
        let clock = Clock {
            offset_ms: Some(Arc::new(AtomicI64::new(0))),
        };
        clock.set(at);
        clock
    }

    /// Moves a clock made by [`Clock::starting_at`] (and every clone of it) so that it reads `at`
    /// now. The system clock cannot be moved: this does nothing to it.
    pub fn set(&self, at: DateTime<Utc>) {
        if let Some(offset) = &self.offset_ms {
            let offset_ms = at.timestamp_millis() - Utc::now().timestamp_millis();
            offset.store(offset_ms, Ordering::SeqCst);
        }
    }

    /// The time now.
    pub fn now(&self) -> DateTime<Utc> {
        let now = Utc::now();
        match &self.offset_ms {
            None => now,
            Some(offset) => now + chrono::Duration::milliseconds(offset.load(Ordering::SeqCst)),
        }
    }

    /// The time now in milliseconds since the Unix epoch, as the store keeps times.
    pub fn now_ms(&self) -> i64 {
        self.now().timestamp_millis()
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use chrono::TimeZone;

    #[test]
    fn a_set_clock_reads_its_date_and_runs_on() {
        let at = Utc.with_ymd_and_hms(2026, 11, 28, 13, 0, 0).unwrap();
        let clock = Clock::starting_at(at);
        let shared = clock.clone();
        let read = shared.now();
        assert!(
            read >= at && read - at < chrono::Duration::seconds(5),
            "{read}"
        );
        let later = Utc.with_ymd_and_hms(2031, 1, 1, 9, 0, 0).unwrap();
        clock.set(later);
        let read = shared.now();
        assert!(
            read >= later && read - later < chrono::Duration::seconds(5),
            "{read}"
        );
    }

    #[test]
    fn the_system_clock_is_not_moved() {
        let clock = Clock::system();
        clock.set(Utc.with_ymd_and_hms(2001, 1, 1, 0, 0, 0).unwrap());
        assert!((clock.now() - Utc::now()).num_seconds().abs() < 5);
    }
}
