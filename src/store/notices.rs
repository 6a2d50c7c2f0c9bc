//! Notices that are not leads (call-back notices, modem alerts, the morning summary) to
//! recipients by email, WhatsApp and webhook, and the row that says a day's summary was made.
//! Written by the call flow, the alerter and the summary task; sent by `notify::deliver`; read by
//! `doctor` and `textback notices`.

use rusqlite::{OptionalExtension, params};

use super::{Error, Tx};
use crate::core::notice::{NoticeKind, Rendered};
use crate::domain::ChannelKind;

/// A notice to write.
#[derive(Debug, Clone)]
pub struct NewNotice<'a> {
    pub profile: &'a str,
    pub recipient: &'a str,
    pub channel: ChannelKind,
    pub target: &'a str,
    pub kind: NoticeKind,
    pub rendered: &'a Rendered,
    /// The modem fault an alert is about.
    pub fault: Option<i64>,
    /// Not sent before this (a call-back notice gathering more calls); `at_ms` to send at once.
    pub gather_until_ms: i64,
    /// The box's name, in the idempotency key.
    pub box_name: &'a str,
    pub at_ms: i64,
}

/// A notice whose time has come.
#[derive(Debug, Clone, PartialEq)]
pub struct DueNotice {
    pub id: i64,
    pub profile: String,
    pub recipient: String,
    pub channel: String,
    pub target: String,
    pub kind: String,
    pub subject: String,
    pub text: String,
    pub html: Option<String>,
    pub json: serde_json::Value,
    pub idempotency_key: String,
    pub attempts: i64,
    pub created_ms: i64,
}

/// A notice as `doctor` and `textback notices` show it.
#[derive(Debug, Clone, PartialEq, Eq, serde::Serialize)]
pub struct NoticeRow {
    pub id: i64,
    pub profile: String,
    pub recipient: String,
    pub channel: String,
    pub kind: String,
    pub subject: String,
    pub state: String,
    pub attempts: i64,
    pub last_error: Option<String>,
    pub created_ms: i64,
    pub updated_ms: i64,
}

const NOTICE_ROW_COLUMNS: &str = "id, profile, recipient, channel, kind, subject, state, attempts, last_error, created_ms, updated_ms";

fn notice_row(row: &rusqlite::Row<'_>) -> rusqlite::Result<NoticeRow> {
    Ok(NoticeRow {
        id: row.get(0)?,
        profile: row.get(1)?,
        recipient: row.get(2)?,
        channel: row.get(3)?,
        kind: row.get(4)?,
        subject: row.get(5)?,
        state: row.get(6)?,
        attempts: row.get(7)?,
        last_error: row.get(8)?,
        created_ms: row.get(9)?,
        updated_ms: row.get(10)?,
    })
}

fn json_text(rendered: &Rendered) -> String {
    rendered.json.to_string()
}

impl Tx<'_> {
    /// Writes a notice, pending; its idempotency key is `notice-<id>@<box>`, stable across
    /// retries and restarts.
    pub fn insert_notice(&self, notice: &NewNotice<'_>) -> Result<i64, Error> {
        self.connection.execute(
            "INSERT INTO notices (profile, recipient, channel, target, kind, subject, text, html, json,
                                  idempotency_key, fault_id, state, gather_until_ms, next_attempt_ms,
                                  created_ms, updated_ms)
             VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8, ?9, '', ?10, 'pending', ?11, ?12, ?12, ?12)",
            params![
                notice.profile,
                notice.recipient,
                notice.channel.as_str(),
                notice.target,
                notice.kind.as_str(),
                notice.rendered.subject,
                notice.rendered.text,
                notice.rendered.html,
                json_text(notice.rendered),
                notice.fault,
                notice.gather_until_ms,
                notice.at_ms,
            ],
        )?;
        let id = self.connection.last_insert_rowid();
        self.connection.execute(
            "UPDATE notices SET idempotency_key = 'notice-' || id || '@' || ?2 WHERE id = ?1",
            params![id, notice.box_name],
        )?;
        Ok(id)
    }

    /// A notice of `kind` to this recipient on this channel still gathering at `at_ms` (not yet
    /// tried), with its JSON so far.
    pub fn gathering_notice(
        &self,
        kind: NoticeKind,
        profile: &str,
        recipient: &str,
        channel: ChannelKind,
        target: &str,
        at_ms: i64,
    ) -> Result<Option<(i64, serde_json::Value)>, Error> {
        let found: Option<(i64, String)> = self
            .connection
            .query_row(
                "SELECT id, json FROM notices WHERE kind = ?1 AND profile = ?2 AND recipient = ?3
                   AND channel = ?4 AND target = ?5 AND state = 'pending' AND attempts = 0
                   AND gather_until_ms > ?6 ORDER BY id DESC LIMIT 1",
                params![
                    kind.as_str(),
                    profile,
                    recipient,
                    channel.as_str(),
                    target,
                    at_ms
                ],
                |row| Ok((row.get(0)?, row.get(1)?)),
            )
            .optional()?;
        found
            .map(|(id, json)| {
                serde_json::from_str(&json)
                    .map(|json| (id, json))
                    .map_err(|err| Error::BadValue {
                        what: format!("notice {id}'s JSON: {err}"),
                    })
            })
            .transpose()
    }

    /// Rewrites a notice still gathering (another call joined it). False when it is no longer
    /// pending or was tried already.
    pub fn rewrite_notice(&self, id: i64, rendered: &Rendered, at_ms: i64) -> Result<bool, Error> {
        Ok(self.connection.execute(
            "UPDATE notices SET subject = ?2, text = ?3, html = ?4, json = ?5, updated_ms = ?6
             WHERE id = ?1 AND state = 'pending' AND attempts = 0",
            params![
                id,
                rendered.subject,
                rendered.text,
                rendered.html,
                json_text(rendered),
                at_ms
            ],
        )? == 1)
    }

    /// At start-up: an attempt in flight when the daemon stopped is made again, and a notice
    /// waiting out its back-off is tried now (a restart is often the fix). A notice still
    /// gathering keeps gathering.
    pub fn restart_notices(&self, at_ms: i64) -> Result<usize, Error> {
        Ok(self.connection.execute(
            "UPDATE notices SET state = 'pending', next_attempt_ms = min(next_attempt_ms, ?1), updated_ms = ?1
             WHERE state IN ('pending', 'sending')",
            [at_ms],
        )?)
    }

    /// Notices whose time has come (done gathering, back-off over), oldest first.
    pub fn due_notices(&self, at_ms: i64, limit: u32) -> Result<Vec<DueNotice>, Error> {
        let mut statement = self.connection.prepare(
            "SELECT id, profile, recipient, channel, target, kind, subject, text, html, json,
                    idempotency_key, attempts, created_ms
             FROM notices WHERE state = 'pending' AND next_attempt_ms <= ?1 AND gather_until_ms <= ?1
             ORDER BY next_attempt_ms, id LIMIT ?2",
        )?;
        let rows = statement.query_map(params![at_ms, limit], |row| {
            Ok((
                DueNotice {
                    id: row.get(0)?,
                    profile: row.get(1)?,
                    recipient: row.get(2)?,
                    channel: row.get(3)?,
                    target: row.get(4)?,
                    kind: row.get(5)?,
                    subject: row.get(6)?,
                    text: row.get(7)?,
                    html: row.get(8)?,
                    json: serde_json::Value::Null,
                    idempotency_key: row.get(10)?,
                    attempts: row.get(11)?,
                    created_ms: row.get(12)?,
                },
                row.get::<_, String>(9)?,
            ))
        })?;
        rows.map(|row| {
            let (mut notice, json) = row?;
            notice.json = serde_json::from_str(&json).map_err(|err| Error::BadValue {
                what: format!("notice {}'s JSON: {err}", notice.id),
            })?;
            Ok(notice)
        })
        .collect()
    }

    /// When the next pending notice is due (gathering and back-off both over).
    pub fn next_notice_ms(&self) -> Result<Option<i64>, Error> {
        Ok(self.connection.query_row(
            "SELECT min(max(next_attempt_ms, gather_until_ms)) FROM notices WHERE state = 'pending'",
            [],
            |row| row.get(0),
        )?)
    }

    /// Takes a due notice for an attempt: false when it is no longer pending.
    pub fn claim_notice(&self, id: i64, at_ms: i64) -> Result<bool, Error> {
        Ok(self.connection.execute(
            "UPDATE notices SET state = 'sending', attempts = attempts + 1, updated_ms = ?2
             WHERE id = ?1 AND state = 'pending'",
            params![id, at_ms],
        )? == 1)
    }

    pub fn notice_delivered(
        &self,
        id: i64,
        external_id: Option<&str>,
        at_ms: i64,
    ) -> Result<(), Error> {
        self.connection.execute(
            "UPDATE notices SET state = 'delivered', delivered_ms = ?3, external_id = ?2, last_error = NULL, updated_ms = ?3
             WHERE id = ?1",
            params![id, external_id, at_ms],
        )?;
        Ok(())
    }

    /// Back to pending until `next_ms`; `counted` false gives back the attempt (nothing was
    /// tried: the channel has no settings).
    pub fn notice_retry(
        &self,
        id: i64,
        error: &str,
        next_ms: i64,
        counted: bool,
        at_ms: i64,
    ) -> Result<(), Error> {
        self.connection.execute(
            "UPDATE notices SET state = 'pending', last_error = ?2, next_attempt_ms = ?3,
                    attempts = attempts - CASE WHEN ?4 THEN 0 ELSE 1 END, updated_ms = ?5
             WHERE id = ?1",
            params![id, error, next_ms, counted, at_ms],
        )?;
        Ok(())
    }

    pub fn notice_failed(&self, id: i64, error: &str, at_ms: i64) -> Result<(), Error> {
        self.connection.execute(
            "UPDATE notices SET state = 'failed', last_error = ?2, updated_ms = ?3 WHERE id = ?1",
            params![id, error, at_ms],
        )?;
        Ok(())
    }

    /// A notice failed or delivered goes again from the start (`textback notices resend`). False
    /// when there is no such notice or it is still to be sent.
    pub fn resend_notice(&self, id: i64, at_ms: i64) -> Result<bool, Error> {
        Ok(self.connection.execute(
            "UPDATE notices SET state = 'pending', attempts = 0, last_error = NULL, next_attempt_ms = ?2,
                    gather_until_ms = min(gather_until_ms, ?2), updated_ms = ?2
             WHERE id = ?1 AND state IN ('failed', 'delivered')",
            params![id, at_ms],
        )? == 1)
    }

    /// The newest notices, newest first.
    pub fn notices(&self, limit: u32) -> Result<Vec<NoticeRow>, Error> {
        let mut statement = self.connection.prepare(&format!(
            "SELECT {NOTICE_ROW_COLUMNS} FROM notices ORDER BY id DESC LIMIT ?1"
        ))?;
        let rows = statement.query_map([limit], notice_row)?;
        Ok(rows.collect::<Result<_, _>>()?)
    }

    /// Notices that failed, or are still pending after a failed attempt, newest first.
    pub fn failing_notices(&self, limit: u32) -> Result<Vec<NoticeRow>, Error> {
        let mut statement = self.connection.prepare(&format!(
            "SELECT {NOTICE_ROW_COLUMNS} FROM notices
             WHERE state = 'failed' OR (state = 'pending' AND last_error IS NOT NULL)
             ORDER BY id DESC LIMIT ?1"
        ))?;
        let rows = statement.query_map([limit], notice_row)?;
        Ok(rows.collect::<Result<_, _>>()?)
    }

    /// Whether the summary of `profile` for `day` (YYYY-MM-DD) was made.
    pub fn summary_made(&self, profile: &str, day: &str) -> Result<bool, Error> {
        Ok(self
            .connection
            .query_row(
                "SELECT 1 FROM summaries WHERE profile = ?1 AND day = ?2",
                params![profile, day],
                |_| Ok(()),
            )
            .optional()?
            .is_some())
    }

    /// Records that the summary of `profile` for `day` was made, with `notices` messages. False
    /// when it was recorded already (the caller's transaction then writes nothing else).
    pub fn record_summary(
        &self,
        profile: &str,
        day: &str,
        notices: usize,
        at_ms: i64,
    ) -> Result<bool, Error> {
        Ok(self.connection.execute(
            "INSERT OR IGNORE INTO summaries (profile, day, notices, created_ms) VALUES (?1, ?2, ?3, ?4)",
            params![profile, day, notices as i64, at_ms],
        )? == 1)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::core::notice::{UntextedCall, call_back};
    use crate::store::Store;

    fn call(n: u32) -> UntextedCall {
        UntextedCall {
            number: Some(format!("+44207946000{n}")),
            shown: format!("020 7946 000{n}"),
            at: "2026-06-03T09:00:00Z".to_string(),
            local_time: "10:00".to_string(),
            why: "not mobile".to_string(),
        }
    }

    #[tokio::test]
    async fn a_notice_gathers_then_is_claimed_once_and_survives_a_restart() {
        let dir = tempfile::tempdir().unwrap();
        let (store, _closer) = Store::open(&dir.path().join("t.db")).unwrap();
        let outcome = store
            .run(|tx| {
                let first = call_back("plumbing", "Brightwater", &[call(1)]);
                let notice = |rendered, at_ms| NewNotice {
                    profile: "plumbing",
                    recipient: "Owner",
                    channel: ChannelKind::Webhook,
                    target: "http://127.0.0.1:9/hook",
                    kind: NoticeKind::CallBack,
                    rendered,
                    fault: None,
                    gather_until_ms: 1_000 + 300_000,
                    box_name: "shop-1",
                    at_ms,
                };
                let id = tx.insert_notice(&notice(&first, 1_000))?;
                // Gathering: not due, found by the next call, which rewrites it.
                assert!(tx.due_notices(2_000, 10)?.is_empty());
                assert_eq!(tx.next_notice_ms()?, Some(301_000));
                let (found, json) = tx
                    .gathering_notice(
                        NoticeKind::CallBack,
                        "plumbing",
                        "Owner",
                        ChannelKind::Webhook,
                        "http://127.0.0.1:9/hook",
                        60_000,
                    )?
                    .expect("gathering");
                assert_eq!(found, id);
                let mut calls = crate::core::notice::calls_of(&json);
                calls.push(call(2));
                assert!(tx.rewrite_notice(
                    id,
                    &call_back("plumbing", "Brightwater", &calls),
                    60_000
                )?);
                // Another notice gathers apart (another recipient).
                let other = tx.insert_notice(&NewNotice {
                    recipient: "Office",
                    ..notice(&first, 1_000)
                })?;
                assert_ne!(other, id);
                // Due once the gathering time is over; the key is stable and unique.
                let due = tx.due_notices(301_000, 10)?;
                assert_eq!(due.len(), 2);
                assert_eq!(due[0].idempotency_key, format!("notice-{id}@shop-1"));
                assert_eq!(due[0].json["calls"].as_array().map(Vec::len), Some(2));
                // Claimed once: a second claim (another look) does not send it again, and a
                // gathering call no longer joins it.
                assert!(tx.claim_notice(id, 301_000)?);
                assert!(!tx.claim_notice(id, 301_000)?);
                assert!(!tx.rewrite_notice(id, &first, 301_000)?);
                assert_eq!(tx.due_notices(301_000, 10)?.len(), 1);
                // The daemon stopped mid-attempt: at start-up it is tried again.
                assert_eq!(tx.restart_notices(400_000)?, 2);
                assert_eq!(tx.due_notices(400_000, 10)?.len(), 2);
                // A failure that may pass waits; one that cannot is failed and shown.
                assert!(tx.claim_notice(id, 400_000)?);
                tx.notice_retry(id, "the webhook did not answer", 430_000, true, 400_000)?;
                assert_eq!(tx.due_notices(400_000, 10)?.len(), 1);
                assert_eq!(tx.failing_notices(10)?.len(), 1);
                assert!(tx.claim_notice(other, 400_000)?);
                tx.notice_failed(other, "HTTP 404", 400_000)?;
                assert!(tx.claim_notice(id, 430_000)?);
                tx.notice_delivered(id, None, 430_000)?;
                let failing = tx.failing_notices(10)?;
                let all = tx.notices(10)?;
                // Retention: a notice still to send is kept, however old; one done is forgotten
                // with the calls it told of.
                let third = tx.insert_notice(&notice(&first, 1_000))?;
                tx.forget_before(500_000)?;
                let kept: Vec<i64> = tx.notices(10)?.iter().map(|n| n.id).collect();
                assert_eq!(kept, [third]);
                Ok((failing, all))
            })
            .await
            .unwrap();
        let (failing, all) = outcome;
        assert_eq!(failing.len(), 1);
        assert_eq!(failing[0].state, "failed");
        assert_eq!(failing[0].last_error.as_deref(), Some("HTTP 404"));
        let states: Vec<(String, i64)> =
            all.iter().map(|n| (n.state.clone(), n.attempts)).collect();
        assert_eq!(
            states,
            [("failed".to_string(), 1), ("delivered".to_string(), 3)]
        );
    }

    #[tokio::test]
    async fn a_day_summary_is_recorded_once() {
        let dir = tempfile::tempdir().unwrap();
        let (store, _closer) = Store::open(&dir.path().join("t.db")).unwrap();
        let (made, first, second, other) = store
            .run(|tx| {
                let made = tx.summary_made("plumbing", "2026-03-29")?;
                let first = tx.record_summary("plumbing", "2026-03-29", 2, 1)?;
                let second = tx.record_summary("plumbing", "2026-03-29", 2, 2)?;
                let other = tx.record_summary("plumbing", "2026-03-30", 0, 3)?;
                Ok((made, first, second, other))
            })
            .await
            .unwrap();
        assert!(!made && first && !second && other);
    }
}
