//! The daily self-test's words and times: the text the box sends itself with its unique token,
//! how a text that came in is recognised as one (never a caller's), and when the next test is
//! due in UK time. Pure: the time comes in, nothing is read from a clock.

use chrono::{DateTime, Duration, NaiveTime, TimeZone, Utc};
use chrono_tz::Europe::London;

/// What every self-test text starts with.
const MARK: &str = "textback self-test ";
/// A token's length: 8 hex digits, unique per test.
pub const TOKEN_LENGTH: usize = 8;

/// The self-test text for `token`: one GSM-7 SMS that says what it is, should a person read it.
pub fn text(token: &str) -> String {
    format!("{MARK}{token}: checks this SIM sends and receives. No reply needed.")
}

/// A token from 32 random bits.
pub fn token(random: u32) -> String {
    format!("{random:08x}")
}

/// The token of a self-test text, if `text` is one.
pub fn token_in(text: &str) -> Option<&str> {
    let start = text.find(MARK)? + MARK.len();
    let token = text.get(start..start + TOKEN_LENGTH)?;
    token
        .bytes()
        .all(|b| b.is_ascii_hexdigit())
        .then_some(token)
}

/// The first moment after `after` at which UK clocks read `at`. A time the clocks skip (the
/// spring change) is taken an hour later.
pub fn next_due(at: NaiveTime, after: DateTime<Utc>) -> DateTime<Utc> {
    let local_date = after.with_timezone(&London).date_naive();
    for days in 0..3 {
        let date = local_date + Duration::days(days);
        let local = date.and_time(at);
        let moment = London
            .from_local_datetime(&local)
            .earliest()
            .or_else(|| {
                London
                    .from_local_datetime(&(local + Duration::hours(1)))
                    .earliest()
            })
            .map(|m| m.with_timezone(&Utc));
        if let Some(moment) = moment
            && moment > after
        {
            return moment;
        }
    }
    after + Duration::days(1)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_self_test_text_carries_its_token() {
        let text = text(&token(0x7f3a_9c21));
        assert_eq!(token_in(&text), Some("7f3a9c21"));
        assert!(crate::codec::gsm7::is_gsm7(&text) && text.chars().count() <= 160);
        assert_eq!(token_in("Hi, textback self-test zz: no"), None);
        assert_eq!(token_in("textback self-test 7f3a"), None);
        assert_eq!(token_in("Dave here, boiler leaking"), None);
    }

    #[test]
    fn due_at_the_next_uk_time() {
        let at = NaiveTime::from_hms_opt(4, 0, 0).unwrap();
        // Winter: UK time is UTC.
        let after = Utc.with_ymd_and_hms(2026, 12, 6, 3, 59, 0).unwrap();
        assert_eq!(
            next_due(at, after),
            Utc.with_ymd_and_hms(2026, 12, 6, 4, 0, 0).unwrap()
        );
        let after = Utc.with_ymd_and_hms(2026, 12, 6, 4, 0, 0).unwrap();
        assert_eq!(
            next_due(at, after),
            Utc.with_ymd_and_hms(2026, 12, 7, 4, 0, 0).unwrap()
        );
        // Summer: 04:00 BST is 03:00 UTC.
        let after = Utc.with_ymd_and_hms(2026, 7, 1, 12, 0, 0).unwrap();
        assert_eq!(
            next_due(at, after),
            Utc.with_ymd_and_hms(2026, 7, 2, 3, 0, 0).unwrap()
        );
        // 01:30 does not exist on the spring change (29 March 2026): 02:30 BST instead.
        let half_one = NaiveTime::from_hms_opt(1, 30, 0).unwrap();
        let after = Utc.with_ymd_and_hms(2026, 3, 28, 12, 0, 0).unwrap();
        assert_eq!(
            next_due(half_one, after),
            Utc.with_ymd_and_hms(2026, 3, 29, 1, 30, 0).unwrap()
        );
    }
}
