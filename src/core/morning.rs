//! The morning summary: when it is due in UK local time (Europe/London, so 07:30 is 07:30 in
//! both GMT and BST), which instants bound the UK-local day it covers, and what it says
//! (yesterday's missed calls and leads, and who still waits for a call back) as an email, an SMS
//! and a webhook's JSON. Pure: `now` and the day's facts are passed in.

use chrono::{DateTime, Days, NaiveDate, NaiveDateTime, NaiveTime, TimeZone, Utc};
use chrono_tz::Europe::London;
use serde::Serialize;
use serde_json::json;

use super::notice::{Rendered, SUMMARY_EVENT, escape_html};

/// At most this many lines of each list in the SMS; the email lists all.
const SMS_LINES: usize = 3;

/// The UK-local day whose summary is due at `now` when it goes out at `at` each morning: the
/// day before today once today's `at` has passed, else none (yesterday's summary was due
/// yesterday; a box off all that day skips it).
pub fn due_day(at: NaiveTime, now: DateTime<Utc>) -> Option<NaiveDate> {
    let local = now.with_timezone(&London);
    if local.time() >= at {
        local.date_naive().checked_sub_days(Days::new(1))
    } else {
        None
    }
}

/// The next instant after `now` at which a summary at `at` falls due. A time the clocks skip
/// (01:30 on the last Sunday of March) falls due when they reach it, an hour on.
pub fn next_due(at: NaiveTime, now: DateTime<Utc>) -> Option<DateTime<Utc>> {
    let local = now.with_timezone(&London);
    let today = local.date_naive();
    let day = if local.time() < at {
        today
    } else {
        today.checked_add_days(Days::new(1))?
    };
    uk_instant(day.and_time(at))
}

/// The instants (UTC) at which UK-local `day` starts and ends: 24 hours, or 23 and 25 on the
/// days the clocks change.
pub fn day_bounds(day: NaiveDate) -> Option<(DateTime<Utc>, DateTime<Utc>)> {
    let start = uk_instant(day.and_time(NaiveTime::MIN))?;
    let end = uk_instant(day.checked_add_days(Days::new(1))?.and_time(NaiveTime::MIN))?;
    Some((start, end))
}

/// A UK wall-clock time as an instant: the first of two when the clocks go back, and an hour on
/// when the clocks skip it.
fn uk_instant(local: NaiveDateTime) -> Option<DateTime<Utc>> {
    London
        .from_local_datetime(&local)
        .earliest()
        .or_else(|| {
            London
                .from_local_datetime(&(local + chrono::Duration::hours(1)))
                .earliest()
        })
        .map(|at| at.with_timezone(&Utc))
}

/// A missed call of the day.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct DayCall {
    /// "07700 900123", or "a withheld number".
    pub shown: String,
    /// UK local time of day, "10:00".
    pub time: String,
    /// "texted", or why not ("not texted: not mobile").
    pub outcome: String,
}

/// A lead of the day, or one still waiting for a call back.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct DayLead {
    pub id: i64,
    /// The caller's name, else their number.
    pub who: String,
    pub number: String,
    pub reason: Option<String>,
    /// When, in words: "10:02" for the day's, "Tue 2 Jun 10:02" for older ones.
    pub when: String,
}

/// A missed caller who got no text and waits for a call back.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct Untexted {
    pub shown: String,
    pub when: String,
    pub why: String,
}

/// What the summary of one business's day says.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct DayFacts {
    pub profile: String,
    pub business: String,
    pub day: NaiveDate,
    pub calls: Vec<DayCall>,
    pub leads: Vec<DayLead>,
    /// Leads nobody has marked called back yet, any day.
    pub leads_waiting: Vec<DayLead>,
    /// Untexted missed callers nobody has called back yet, any day.
    pub untexted_waiting: Vec<Untexted>,
}

impl DayFacts {
    /// Nothing happened and nobody waits: no summary is sent for such a day.
    pub fn is_empty(&self) -> bool {
        self.calls.is_empty()
            && self.leads.is_empty()
            && self.leads_waiting.is_empty()
            && self.untexted_waiting.is_empty()
    }

    fn day_words(&self) -> String {
        self.day.format("%A %-d %B").to_string()
    }

    fn waiting(&self) -> usize {
        self.leads_waiting.len() + self.untexted_waiting.len()
    }

    /// "3 missed calls, 1 lead, 2 to call back".
    fn counts(&self) -> String {
        format!(
            "{}, {}, {} to call back",
            plural(self.calls.len(), "missed call", "missed calls"),
            plural(self.leads.len(), "lead", "leads"),
            self.waiting()
        )
    }

    /// The email and the webhook's JSON.
    pub fn render(&self) -> Rendered {
        let subject = format!(
            "{}: {} - {}",
            self.business,
            self.day_words(),
            self.counts()
        );
        let mut text = format!("{} - {}\n\n", self.business, self.day_words());
        text.push_str(&format!("Missed calls ({}):\n", self.calls.len()));
        if self.calls.is_empty() {
            text.push_str("  none\n");
        }
        for call in &self.calls {
            text.push_str(&format!(
                "  {} {} - {}\n",
                call.time, call.shown, call.outcome
            ));
        }
        text.push_str(&format!("\nLeads ({}):\n", self.leads.len()));
        if self.leads.is_empty() {
            text.push_str("  none\n");
        }
        for lead in &self.leads {
            text.push_str(&format!("  {}\n", lead_line(lead)));
        }
        text.push_str(&format!("\nStill to call back ({}):\n", self.waiting()));
        if self.waiting() == 0 {
            text.push_str("  nobody\n");
        }
        for lead in &self.leads_waiting {
            text.push_str(&format!("  {}\n", lead_line(lead)));
        }
        for caller in &self.untexted_waiting {
            text.push_str(&format!(
                "  {} {} - missed, not texted ({})\n",
                caller.when, caller.shown, caller.why
            ));
        }
        text.push_str(
            "\nMark a lead called back on the dashboard or by texting C and its number (C 12) to \
             the business's SIM.\n",
        );
        let mut html = format!(
            "<h2>{} &ndash; {}</h2>\n",
            escape_html(&self.business),
            escape_html(&self.day_words())
        );
        html.push_str(&format!(
            "<h3>Missed calls ({})</h3>\n<ul>\n",
            self.calls.len()
        ));
        for call in &self.calls {
            html.push_str(&format!(
                "<li>{} {} &ndash; {}</li>\n",
                escape_html(&call.time),
                escape_html(&call.shown),
                escape_html(&call.outcome)
            ));
        }
        html.push_str(&format!(
            "</ul>\n<h3>Leads ({})</h3>\n<ul>\n",
            self.leads.len()
        ));
        for lead in &self.leads {
            html.push_str(&format!("<li>{}</li>\n", escape_html(&lead_line(lead))));
        }
        html.push_str(&format!(
            "</ul>\n<h3>Still to call back ({})</h3>\n<ul>\n",
            self.waiting()
        ));
        for lead in &self.leads_waiting {
            html.push_str(&format!(
                "<li><a href=\"tel:{}\">{}</a></li>\n",
                escape_html(&lead.number),
                escape_html(&lead_line(lead))
            ));
        }
        for caller in &self.untexted_waiting {
            html.push_str(&format!(
                "<li>{} {} &ndash; missed, not texted ({})</li>\n",
                escape_html(&caller.when),
                escape_html(&caller.shown),
                escape_html(&caller.why)
            ));
        }
        html.push_str("</ul>\n");
        Rendered {
            subject,
            text,
            html: Some(html),
            json: json!({
                "event": SUMMARY_EVENT,
                "profile": self.profile,
                "business": self.business,
                "day": self.day.format("%Y-%m-%d").to_string(),
                "calls": self.calls,
                "leads": self.leads,
                "to_call_back": {
                    "leads": self.leads_waiting,
                    "untexted": self.untexted_waiting,
                },
            }),
        }
    }

    /// The owner's SMS: the counts and the first few to call back.
    pub fn sms(&self) -> String {
        let mut text = format!(
            "{} {}: {}",
            self.business,
            self.day.format("%a %-d %b"),
            self.counts()
        );
        let mut waiting: Vec<String> = self
            .leads_waiting
            .iter()
            .map(|lead| format!("lead {} {}", lead.id, lead.who))
            .chain(self.untexted_waiting.iter().map(|c| c.shown.clone()))
            .collect();
        if !waiting.is_empty() {
            let more = waiting.len().saturating_sub(SMS_LINES);
            waiting.truncate(SMS_LINES);
            text.push_str(&format!(". Call back: {}", waiting.join("; ")));
            if more > 0 {
                text.push_str(&format!(" and {more} more"));
            }
        }
        text
    }
}

fn lead_line(lead: &DayLead) -> String {
    let reason = lead
        .reason
        .as_deref()
        .map(|r| format!(": {r}"))
        .unwrap_or_default();
    format!(
        "{} lead {} {} ({}){reason}",
        lead.when, lead.id, lead.who, lead.number
    )
}

fn plural(n: usize, one: &str, many: &str) -> String {
    if n == 1 {
        format!("1 {one}")
    } else {
        format!("{n} {many}")
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn utc(y: i32, m: u32, d: u32, h: u32, min: u32) -> DateTime<Utc> {
        Utc.with_ymd_and_hms(y, m, d, h, min, 0).unwrap()
    }

    fn date(y: i32, m: u32, d: u32) -> NaiveDate {
        NaiveDate::from_ymd_opt(y, m, d).unwrap()
    }

    fn half_seven() -> NaiveTime {
        NaiveTime::from_hms_opt(7, 30, 0).unwrap()
    }

    #[test]
    fn the_summary_is_due_at_uk_local_time_in_winter_and_summer() {
        // GMT: 07:30 in London is 07:30 UTC.
        assert_eq!(due_day(half_seven(), utc(2026, 1, 14, 7, 29)), None);
        assert_eq!(
            due_day(half_seven(), utc(2026, 1, 14, 7, 30)),
            Some(date(2026, 1, 13))
        );
        // BST: 07:30 in London is 06:30 UTC.
        assert_eq!(due_day(half_seven(), utc(2026, 6, 3, 6, 29)), None);
        assert_eq!(
            due_day(half_seven(), utc(2026, 6, 3, 6, 30)),
            Some(date(2026, 6, 2))
        );
        // Late in the day (a box started after 07:30) it is still due, for yesterday.
        assert_eq!(
            due_day(half_seven(), utc(2026, 6, 3, 22, 0)),
            Some(date(2026, 6, 2))
        );
        // 23:30 UTC on 2 June is 00:30 on 3 June in London: 2 June's summary is not due yet.
        assert_eq!(due_day(half_seven(), utc(2026, 6, 2, 23, 30)), None);
    }

    #[test]
    fn next_due_crosses_the_clock_changes() {
        // Saturday 28 March 2026, 08:00 GMT: the next is Sunday 29 March 07:30 BST = 06:30 UTC.
        assert_eq!(
            next_due(half_seven(), utc(2026, 3, 28, 8, 0)),
            Some(utc(2026, 3, 29, 6, 30))
        );
        // Saturday 24 October 2026, 08:00 BST: the next is Sunday 25 October 07:30 GMT.
        assert_eq!(
            next_due(half_seven(), utc(2026, 10, 24, 7, 0)),
            Some(utc(2026, 10, 25, 7, 30))
        );
        // Before today's time: today's.
        assert_eq!(
            next_due(half_seven(), utc(2026, 6, 3, 5, 0)),
            Some(utc(2026, 6, 3, 6, 30))
        );
        // 01:30 does not exist on 29 March 2026 (01:00 GMT becomes 02:00 BST): due at 02:30 BST.
        let half_one = NaiveTime::from_hms_opt(1, 30, 0).unwrap();
        assert_eq!(
            next_due(half_one, utc(2026, 3, 28, 12, 0)),
            Some(utc(2026, 3, 29, 1, 30))
        );
        // 01:30 happens twice on 25 October 2026: the first, in BST (00:30 UTC).
        assert_eq!(
            next_due(half_one, utc(2026, 10, 24, 12, 0)),
            Some(utc(2026, 10, 25, 0, 30))
        );
    }

    #[test]
    fn a_uk_day_is_23_or_25_hours_when_the_clocks_change() {
        let (start, end) = day_bounds(date(2026, 3, 29)).unwrap();
        assert_eq!(start, utc(2026, 3, 29, 0, 0));
        assert_eq!(end, utc(2026, 3, 29, 23, 0));
        let (start, end) = day_bounds(date(2026, 10, 25)).unwrap();
        assert_eq!(start, utc(2026, 10, 24, 23, 0));
        assert_eq!(end, utc(2026, 10, 26, 0, 0));
        let (start, end) = day_bounds(date(2026, 6, 2)).unwrap();
        assert_eq!((end - start).num_hours(), 24);
        assert_eq!(start, utc(2026, 6, 1, 23, 0));
    }

    fn facts() -> DayFacts {
        DayFacts {
            profile: "plumbing".to_string(),
            business: "Brightwater <Plumbing>".to_string(),
            day: date(2026, 6, 2),
            calls: vec![
                DayCall {
                    shown: "07700 900123".to_string(),
                    time: "10:00".to_string(),
                    outcome: "texted".to_string(),
                },
                DayCall {
                    shown: "020 7946 0001".to_string(),
                    time: "11:15".to_string(),
                    outcome: "not texted: not mobile".to_string(),
                },
            ],
            leads: vec![DayLead {
                id: 1,
                who: "Sarah Jones".to_string(),
                number: "+447700900123".to_string(),
                reason: Some("Boiler leaking".to_string()),
                when: "10:05".to_string(),
            }],
            leads_waiting: vec![DayLead {
                id: 1,
                who: "Sarah Jones".to_string(),
                number: "+447700900123".to_string(),
                reason: Some("Boiler leaking".to_string()),
                when: "Tue 2 Jun 10:05".to_string(),
            }],
            untexted_waiting: vec![Untexted {
                shown: "020 7946 0001".to_string(),
                when: "Tue 2 Jun 11:15".to_string(),
                why: "not mobile".to_string(),
            }],
        }
    }

    #[test]
    fn the_summary_lists_calls_leads_and_who_waits() {
        let rendered = facts().render();
        assert_eq!(
            rendered.subject,
            "Brightwater <Plumbing>: Tuesday 2 June - 2 missed calls, 1 lead, 2 to call back"
        );
        let text = rendered.text;
        for line in [
            "Missed calls (2):\n  10:00 07700 900123 - texted\n  11:15 020 7946 0001 - not texted: not mobile\n",
            "Leads (1):\n  10:05 lead 1 Sarah Jones (+447700900123): Boiler leaking\n",
            "Still to call back (2):\n  Tue 2 Jun 10:05 lead 1 Sarah Jones (+447700900123): Boiler leaking\n  Tue 2 Jun 11:15 020 7946 0001 - missed, not texted (not mobile)\n",
        ] {
            assert!(text.contains(line), "{line:?} in\n{text}");
        }
        let html = rendered.html.unwrap();
        assert!(html.contains("Brightwater &lt;Plumbing&gt;"), "{html}");
        assert!(html.contains("href=\"tel:+447700900123\""), "{html}");
        assert_eq!(rendered.json["event"], SUMMARY_EVENT);
        assert_eq!(rendered.json["day"], "2026-06-02");
        assert_eq!(
            rendered.json["to_call_back"]["untexted"][0]["why"],
            "not mobile"
        );
    }

    #[test]
    fn the_sms_is_short_and_names_the_first_few_to_call_back() {
        assert_eq!(
            facts().sms(),
            "Brightwater <Plumbing> Tue 2 Jun: 2 missed calls, 1 lead, 2 to call back. Call back: lead 1 Sarah Jones; 020 7946 0001"
        );
        let mut many = facts();
        many.untexted_waiting = vec![many.untexted_waiting[0].clone(); 4];
        assert!(
            many.sms().ends_with("020 7946 0001 and 2 more"),
            "{}",
            many.sms()
        );
        let quiet = DayFacts {
            calls: Vec::new(),
            leads: Vec::new(),
            leads_waiting: Vec::new(),
            untexted_waiting: Vec::new(),
            ..facts()
        };
        assert!(quiet.is_empty());
        assert!(!facts().is_empty());
        assert_eq!(
            quiet.sms(),
            "Brightwater <Plumbing> Tue 2 Jun: 0 missed calls, 0 leads, 0 to call back"
        );
    }
}
