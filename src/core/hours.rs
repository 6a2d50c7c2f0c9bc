//! Business hours in UK time: whether a moment is inside them, and when the business next opens,
//! in words a caller reads ("by 9am tomorrow"). Pure: the moment is passed in; Europe/London
//! handles the clock change.

use chrono::{DateTime, Datelike, Duration, NaiveDate, NaiveTime, TimeZone, Utc, Weekday};
use chrono_tz::Europe::London;

/// Opening hours for each day of the week (Monday first), and the days closed all day.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Hours {
    /// `None`: closed that day.
    pub week: [Option<(NaiveTime, NaiveTime)>; 7],
    pub holidays: Vec<NaiveDate>,
}

/// Why a line of hours cannot be read.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("{0:?} is not opening hours: write \"08:00-18:00\", or \"closed\"")]
pub struct HoursError(pub String);

/// Reads "08:00-18:00" (or "8:00-17:30"), or "closed".
pub fn parse_day(text: &str) -> Result<Option<(NaiveTime, NaiveTime)>, HoursError> {
    let text = text.trim();
    if text.eq_ignore_ascii_case("closed") {
        return Ok(None);
    }
    let bad = || HoursError(text.to_string());
    let (open, close) = text.split_once('-').ok_or_else(bad)?;
    let open = NaiveTime::parse_from_str(open.trim(), "%H:%M").map_err(|_| bad())?;
    let close = NaiveTime::parse_from_str(close.trim(), "%H:%M").map_err(|_| bad())?;
    if close <= open {
        return Err(bad());
    }
    Ok(Some((open, close)))
}

impl Hours {
    fn day(&self, date: NaiveDate) -> Option<(NaiveTime, NaiveTime)> {
        if self.holidays.contains(&date) {
            return None;
        }
        self.week[date.weekday().num_days_from_monday() as usize]
    }

    /// Whether the business is open at `at`.
    pub fn is_open(&self, at: DateTime<Utc>) -> bool {
        let local = at.with_timezone(&London);
        self.day(local.date_naive())
            .is_some_and(|(open, close)| (open..close).contains(&local.time()))
    }

    /// When the business next opens after `at` (UK time), within the next five weeks.
    pub fn next_opening(&self, at: DateTime<Utc>) -> Option<DateTime<chrono_tz::Tz>> {
        let local = at.with_timezone(&London);
        for offset in 0..35 {
            let date = local.date_naive() + Duration::days(offset);
            let Some((open, _)) = self.day(date) else {
                continue;
            };
            if offset == 0 && local.time() >= open {
                continue;
            }
            if let Some(opening) = London.from_local_datetime(&date.and_time(open)).earliest() {
                return Some(opening);
            }
        }
        None
    }

    /// The promise for a caller who rang at `at` when the business was closed: "by 9am
    /// tomorrow", "by 8:30am on Monday", "by 9am on Tuesday 5 January", or "as soon as we're
    /// open" when no opening is known.
    pub fn callback_promise(&self, at: DateTime<Utc>) -> String {
        let Some(opening) = self.next_opening(at) else {
            return "as soon as we're open".to_string();
        };
        let today = at.with_timezone(&London).date_naive();
        let days = (opening.date_naive() - today).num_days();
        let time = clock(opening.time());
        match days {
            0 => format!("by {time} today"),
            1 => format!("by {time} tomorrow"),
            2..=6 => format!("by {time} on {}", weekday(opening.weekday())),
            _ => format!(
                "by {time} on {} {} {}",
                weekday(opening.weekday()),
                opening.day(),
                month(opening.month())
            ),
        }
    }
}

/// "9am", "8:30am", "12pm", "5:15pm".
fn clock(time: NaiveTime) -> String {
    use chrono::Timelike;
    let (pm, hour) = time.hour12();
    let suffix = if pm { "pm" } else { "am" };
    match time.minute() {
        0 => format!("{hour}{suffix}"),
        minute => format!("{hour}:{minute:02}{suffix}"),
    }
}

fn weekday(day: Weekday) -> &'static str {
    match day {
        Weekday::Mon => "Monday",
        Weekday::Tue => "Tuesday",
        Weekday::Wed => "Wednesday",
        Weekday::Thu => "Thursday",
        Weekday::Fri => "Friday",
        Weekday::Sat => "Saturday",
        Weekday::Sun => "Sunday",
    }
}

fn month(month: u32) -> &'static str {
    const MONTHS: [&str; 12] = [
        "January",
        "February",
        "March",
        "April",
        "May",
        "June",
        "July",
        "August",
        "September",
        "October",
        "November",
        "December",
    ];
    MONTHS
        .get(month.saturating_sub(1) as usize)
        .copied()
        .unwrap_or("")
}

#[cfg(test)]
mod tests {
    use super::*;

    fn weekdays_8_to_6() -> Hours {
        let day = parse_day("08:00-18:00").unwrap();
        Hours {
            week: [
                day,
                day,
                day,
                day,
                day,
                parse_day("09:00-12:30").unwrap(),
                None,
            ],
            holidays: vec![NaiveDate::from_ymd_opt(2026, 12, 25).unwrap()],
        }
    }

    fn london(y: i32, m: u32, d: u32, h: u32, min: u32) -> DateTime<Utc> {
        London
            .with_ymd_and_hms(y, m, d, h, min, 0)
            .single()
            .unwrap()
            .with_timezone(&Utc)
    }

    #[test]
    fn open_and_closed_in_uk_time_across_the_clock_change() {
        let hours = weekdays_8_to_6();
        // Tuesday 24 November 2026 (GMT), and Tuesday 2 June 2026 (BST): 08:30 local both.
        assert!(hours.is_open(london(2026, 11, 24, 8, 30)));
        assert!(hours.is_open(london(2026, 6, 2, 8, 30)));
        // 07:30 BST is 06:30 UTC: closed, though 07:30 UTC would be after 8 in London.
        assert!(!hours.is_open(london(2026, 6, 2, 7, 30)));
        assert!(!hours.is_open(london(2026, 11, 24, 18, 0)));
        assert!(!hours.is_open(london(2026, 11, 29, 11, 0)), "Sunday");
        assert!(!hours.is_open(london(2026, 12, 25, 11, 0)), "a holiday");
    }

    #[test]
    fn the_callback_promise_names_the_next_opening() {
        let hours = weekdays_8_to_6();
        assert_eq!(
            hours.callback_promise(london(2026, 11, 24, 7, 10)),
            "by 8am today"
        );
        assert_eq!(
            hours.callback_promise(london(2026, 11, 24, 19, 0)),
            "by 8am tomorrow"
        );
        // Friday evening → Saturday morning's short hours.
        assert_eq!(
            hours.callback_promise(london(2026, 11, 27, 19, 0)),
            "by 9am tomorrow"
        );
        // Saturday afternoon → Monday.
        assert_eq!(
            hours.callback_promise(london(2026, 11, 28, 13, 0)),
            "by 8am on Monday"
        );
        // Christmas Eve evening: Christmas Day is a holiday, Boxing Day a Saturday.
        assert_eq!(
            hours.callback_promise(london(2026, 12, 24, 19, 0)),
            "by 9am on Saturday"
        );
        let never = Hours::default();
        assert_eq!(
            never.callback_promise(london(2026, 11, 24, 19, 0)),
            "as soon as we're open"
        );
    }

    #[test]
    fn hours_are_read_or_refused_in_words() {
        assert_eq!(parse_day("closed").unwrap(), None);
        assert!(parse_day("8:30-17:30").unwrap().is_some());
        assert!(parse_day("18:00-08:00").is_err());
        assert!(parse_day("9 to 5").is_err());
        assert!(clock(NaiveTime::from_hms_opt(8, 30, 0).unwrap()) == "8:30am");
        assert!(clock(NaiveTime::from_hms_opt(12, 0, 0).unwrap()) == "12pm");
    }
}
