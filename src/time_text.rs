//! Times as people read them, in UK local time: "14:05", "2026-11-24 14:05:00", "Tue 3 Jun
//! 2025 at 14:05 BST", "12 minutes ago". One module, so that the CLI, the dashboard and the lead
//! summaries say a time the same way.

use chrono::{DateTime, Utc};
use chrono_tz::Europe::London;

/// A store time as UK local time, for people.
pub fn format_time(ms: i64) -> String {
    format_london(ms, "%Y-%m-%d %H:%M:%S")
}

/// A store time as UK local time of day.
pub fn format_clock(ms: i64) -> String {
    format_london(ms, "%H:%M:%S")
}

fn format_london(ms: i64, format: &str) -> String {
    match DateTime::from_timestamp_millis(ms) {
        Some(time) => time.with_timezone(&London).format(format).to_string(),
        None => ms.to_string(),
    }
}

/// "Tue 3 Jun 2025 at 14:05 BST".
pub fn local_time(at: DateTime<Utc>) -> String {
    at.with_timezone(&London)
        .format("%a %-d %b %Y at %H:%M %Z")
        .to_string()
}

/// How long before `now` the call was, in UK local time: "just now", "1 minute ago",
/// "12 minutes ago", "2 hours ago" (same day), "yesterday at 14:05", "3 days ago" (within a
/// week), else "on 3 Jun 2025". A time after `now` (clock skew) is "just now".
pub fn ago(at: DateTime<Utc>, now: DateTime<Utc>) -> String {
    let minutes = now.signed_duration_since(at).num_minutes();
    if minutes < 1 {
        return "just now".to_string();
    }
    if minutes < 60 {
        return format!("{} ago", plural(minutes, "minute"));
    }
    let local = at.with_timezone(&London);
    let days = now
        .with_timezone(&London)
        .date_naive()
        .signed_duration_since(local.date_naive())
        .num_days();
    match days {
        ..=0 => format!("{} ago", plural(minutes / 60, "hour")),
        1 => format!("yesterday at {}", local.format("%H:%M")),
        2..=6 => format!("{days} days ago"),
        _ => format!("on {}", local.format("%-d %b %Y")),
    }
}

fn plural(count: i64, unit: &str) -> String {
    if count == 1 {
        format!("1 {unit}")
    } else {
        format!("{count} {unit}s")
    }
}
