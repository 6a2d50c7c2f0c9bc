//! The morning summary task: for each profile with `[profile.summary]`, once its time of day has
//! passed in UK local time, it reads yesterday (the UK-local day) from the store, and in one
//! transaction writes an email notice per recipient (and an SMS to each `sms` channel with
//! `sms = true`) and the `summaries` row for that profile and day. The row is how a day is
//! summarised once, across restarts; a day with nothing to say gets the row and no message.

use std::sync::Arc;
use std::time::Duration;

use chrono::{DateTime, NaiveDate, Utc};
use chrono_tz::Europe::London;
use tokio_util::sync::CancellationToken;
use tracing::{Instrument, info, info_span, warn};

use crate::clock::Clock;
use crate::config::{Channel, Config, Profile, Recipient};
use crate::core::morning::{self, DayCall, DayFacts, DayLead, Untexted};
use crate::core::notice::NoticeKind;
use crate::domain::{CallDecision, E164, ModemId};
use crate::store::{self, CallRow, LeadRow, Store, Tx};
use crate::wake::Wakers;

/// Look again at least this often: the daemon's clock may be moved (a test, an NTP step).
const CHECK_EVERY: Duration = Duration::from_secs(60);
/// At most this many of each list go in a summary.
const MAX_LISTED: u32 = 100;

/// What one check of one profile came to.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Made {
    /// Not yet time today, or made already.
    Nothing,
    /// The day had nothing to say: recorded, nothing sent.
    Quiet(NaiveDate),
    /// Written: this many notices and SMS.
    Sent(NaiveDate, usize, Vec<ModemId>),
}

pub struct Summaries {
    pub store: Store,
    pub config: Arc<Config>,
    pub wakers: Wakers,
    pub clock: Clock,
}

impl Summaries {
    /// Makes each profile's summary that is due now; the daemon awaits this once at start-up.
    pub async fn check(&self) {
        let now = self.clock.now();
        for profile in &self.config.profiles {
            let Some(settings) = profile.summary else {
                continue;
            };
            let Some(day) = morning::due_day(settings.at, now) else {
                continue;
            };
            let span = info_span!("summary", profile = %profile.id, day = %day);
            let config = self.config.clone();
            let id = profile.id.clone();
            let made = self
                .store
                .run(move |tx| {
                    let Some(profile) = config.profiles.iter().find(|p| p.id == id) else {
                        return Ok(Made::Nothing);
                    };
                    make(tx, &config, profile, settings.sms, day, now)
                })
                .instrument(span.clone())
                .await;
            span.in_scope(|| match &made {
                Ok(Made::Nothing) => {}
                Ok(Made::Quiet(day)) => {
                    info!(%day, "nothing to say for the day; no summary sent")
                }
                Ok(Made::Sent(day, n, modems)) => {
                    info!(%day, messages = n, "morning summary written");
                    self.wakers.notice();
                    for modem in modems {
                        self.wakers.outbox(modem);
                    }
                }
                Err(err) => {
                    warn!(error = %err, "could not make the morning summary; will try again")
                }
            });
        }
    }

    /// Runs until `token` is cancelled, checking when the next summary falls due (and at least
    /// every [`CHECK_EVERY`]).
    pub async fn run(self, token: CancellationToken) {
        loop {
            let now = self.clock.now();
            let next = self
                .config
                .profiles
                .iter()
                .filter_map(|p| p.summary)
                .filter_map(|s| morning::next_due(s.at, now))
                .min();
            let wait = next
                .and_then(|at| (at - now).to_std().ok())
                .unwrap_or(CHECK_EVERY)
                .clamp(Duration::from_secs(1), CHECK_EVERY);
            tokio::select! {
                _ = token.cancelled() => return,
                _ = tokio::time::sleep(wait) => {}
            }
            self.check().await;
        }
    }
}

/// In one transaction: nothing if the day was summarised; else the facts, the messages and the
/// `summaries` row.
fn make(
    tx: &Tx<'_>,
    config: &Config,
    profile: &Profile,
    sms: bool,
    day: NaiveDate,
    now: DateTime<Utc>,
) -> Result<Made, store::Error> {
    let key = day.format("%Y-%m-%d").to_string();
    let id = profile.id.as_str();
    if tx.summary_made(id, &key)? {
        return Ok(Made::Nothing);
    }
    let Some((start, end)) = morning::day_bounds(day) else {
        return Ok(Made::Nothing);
    };
    let at_ms = now.timestamp_millis();
    let facts = facts(tx, profile, day, start, end)?;
    if facts.is_empty() {
        tx.record_summary(id, &key, 0, at_ms)?;
        return Ok(Made::Quiet(day));
    }
    let rendered = facts.render();
    let mut made = 0;
    for recipient in &profile.recipients {
        let emails = Recipient {
            channels: recipient
                .channels
                .iter()
                .filter(|c| matches!(c, Channel::Email(_)))
                .cloned()
                .collect(),
            ..recipient.clone()
        };
        made += super::write_for(
            tx,
            &emails,
            &super::Write {
                profile: id,
                kind: NoticeKind::Summary,
                rendered: &rendered,
                fault: None,
                gather_until_ms: at_ms,
                box_name: &config.box_name,
                at_ms,
            },
        )?
        .len();
    }
    let mut modems = Vec::new();
    let modem = profile
        .modem
        .clone()
        .or_else(|| config.modems.first().map(|m| m.id.clone()));
    if let (true, Some(modem)) = (sms, modem) {
        let text = crate::codec::gsm7::to_gsm7(&facts.sms());
        let parts = crate::codec::pdu::segment(&text).parts.len();
        let numbers: Vec<&E164> = profile
            .recipients
            .iter()
            .flat_map(|r| r.channels.iter())
            .filter_map(|c| match c {
                Channel::Sms(number) => Some(number),
                _ => None,
            })
            .collect();
        for (n, number) in numbers.iter().enumerate() {
            if numbers[..n].contains(number) {
                continue;
            }
            tx.queue_sms(None, number, &modem, &text, parts, at_ms)?;
            made += 1;
        }
        if made > 0 {
            modems.push(modem);
        }
    }
    tx.record_summary(id, &key, made, at_ms)?;
    Ok(Made::Sent(day, made, modems))
}

/// What the store knows of `profile`'s `day` ([`start`, `end`)), and who still waits.
fn facts(
    tx: &Tx<'_>,
    profile: &Profile,
    day: NaiveDate,
    start: DateTime<Utc>,
    end: DateTime<Utc>,
) -> Result<DayFacts, store::Error> {
    let id = profile.id.as_str();
    let (from, to) = (start.timestamp_millis(), end.timestamp_millis());
    let calls = tx
        .calls_between(id, from, to)?
        .iter()
        .take(MAX_LISTED as usize)
        .map(|call| DayCall {
            shown: shown(call),
            time: local(call.at_ms, "%H:%M"),
            outcome: match call.decision {
                CallDecision::Text => "texted".to_string(),
                CallDecision::Skip => format!("not texted: {}", why(call)),
            },
        })
        .collect();
    let leads = tx
        .leads_between(id, from, to)?
        .iter()
        .take(MAX_LISTED as usize)
        .map(|lead| day_lead(lead, "%H:%M"))
        .collect();
    let leads_waiting = tx
        .leads_not_called_back(id, MAX_LISTED)?
        .iter()
        .map(|lead| day_lead(lead, "%a %-d %b %H:%M"))
        .collect();
    let untexted_waiting = tx
        .calls_to_call_back(crate::core::policy::NO_CALL_BACK_NEEDED, MAX_LISTED * 10)?
        .iter()
        .filter(|call| call.profile == id)
        .take(MAX_LISTED as usize)
        .map(|call| Untexted {
            shown: shown(call),
            when: local(call.at_ms, "%a %-d %b %H:%M"),
            why: why(call),
        })
        .collect();
    Ok(DayFacts {
        profile: id.to_string(),
        business: profile.name.clone(),
        day,
        calls,
        leads,
        leads_waiting,
        untexted_waiting,
    })
}

fn local(ms: i64, format: &str) -> String {
    DateTime::from_timestamp_millis(ms)
        .map(|at| at.with_timezone(&London).format(format).to_string())
        .unwrap_or_default()
}

fn shown(call: &CallRow) -> String {
    call.caller
        .as_deref()
        .and_then(|number| E164::parse(number).ok())
        .map(|number| number.national())
        .unwrap_or_else(|| "a withheld number".to_string())
}

/// Why a call got no text, short: the reason's words before any explanation after a colon.
fn why(call: &CallRow) -> String {
    call.reason
        .as_deref()
        .and_then(|reason| reason.split(':').next())
        .map(|reason| reason.trim().to_string())
        .unwrap_or_else(|| "no text".to_string())
}

fn day_lead(lead: &LeadRow, format: &str) -> DayLead {
    let answer = |id: &str| {
        lead.answers
            .iter()
            .find(|(question, _)| question.as_str() == id)
            .map(|(_, text)| text.clone())
    };
    let number = E164::parse(&lead.caller)
        .map(|n| n.national())
        .unwrap_or_else(|_| lead.caller.clone());
    DayLead {
        id: lead.id.0,
        who: answer("name").unwrap_or_else(|| number.clone()),
        number: lead.caller.clone(),
        reason: answer("reason"),
        when: local(lead.created_ms, format),
    }
}
