//! Each modem's faults (refused by the network, off the network, storage full, recipient cap,
//! not answering), the alerts sent about them, and the counts the per-SIM recipient cap needs.
//! Written by the outbox and the modem watcher; read by `doctor`, the dashboard and /metrics.

use rusqlite::{OptionalExtension, params};

use super::{Error, Tx};
use crate::domain::{E164, FaultKind, MessageId, ModemId, SelfTestState};

/// A fault as stored.
#[derive(Debug, Clone, PartialEq, Eq, serde::Serialize)]
pub struct FaultRow {
    pub id: i64,
    pub modem: String,
    pub kind: FaultKind,
    pub cause: String,
    pub detail: String,
    pub started_ms: i64,
    pub updated_ms: i64,
    pub cleared_ms: Option<i64>,
    pub alerted_ms: Option<i64>,
}

/// Whether [`Tx::open_fault`] opened a new fault or found it open already.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Opened {
    New(i64),
    Existing(i64),
}

impl Opened {
    pub fn id(self) -> i64 {
        match self {
            Opened::New(id) | Opened::Existing(id) => id,
        }
    }
}

/// The counts per kind and cause for /metrics: (kind, cause, all, open).
pub type FaultCount = (String, String, i64, i64);

const FAULT_COLUMNS: &str =
    "id, modem, kind, cause, detail, started_ms, updated_ms, cleared_ms, alerted_ms";

fn fault_row(row: &rusqlite::Row<'_>) -> rusqlite::Result<FaultRow> {
    Ok(FaultRow {
        id: row.get(0)?,
        modem: row.get(1)?,
        kind: row.get(2)?,
        cause: row.get(3)?,
        detail: row.get(4)?,
        started_ms: row.get(5)?,
        updated_ms: row.get(6)?,
        cleared_ms: row.get(7)?,
        alerted_ms: row.get(8)?,
    })
}

impl Tx<'_> {
    /// Opens a fault of `kind` on `modem`, or touches the one open: it keeps the cause and detail
    /// it was opened with (a radio cycle's passing "not registered" must not hide the "denied"
    /// that started it).
    pub fn open_fault(
        &self,
        modem: &ModemId,
        kind: FaultKind,
        cause: &str,
        detail: &str,
        at_ms: i64,
    ) -> Result<Opened, Error> {
        if let Some(open) = self.open_fault_of(modem, kind)? {
            self.connection.execute(
                "UPDATE modem_faults SET updated_ms = ?2 WHERE id = ?1",
                params![open.id, at_ms],
            )?;
            return Ok(Opened::Existing(open.id));
        }
        self.connection.execute(
            "INSERT INTO modem_faults (modem, kind, cause, detail, started_ms, updated_ms) VALUES (?1, ?2, ?3, ?4, ?5, ?5)",
            params![modem.as_str(), kind, cause, detail, at_ms],
        )?;
        Ok(Opened::New(self.connection.last_insert_rowid()))
    }

    /// Closes the open fault of `kind` on `modem`; returns it (with `cleared_ms` set) if there was one.
    pub fn clear_fault(
        &self,
        modem: &ModemId,
        kind: FaultKind,
        at_ms: i64,
    ) -> Result<Option<FaultRow>, Error> {
        let Some(mut open) = self.open_fault_of(modem, kind)? else {
            return Ok(None);
        };
        self.connection.execute(
            "UPDATE modem_faults SET cleared_ms = ?2, updated_ms = ?2 WHERE id = ?1",
            params![open.id, at_ms],
        )?;
        open.cleared_ms = Some(at_ms);
        open.updated_ms = at_ms;
        Ok(Some(open))
    }

    /// The open fault of `kind` on `modem`, if any.
    pub fn open_fault_of(
        &self,
        modem: &ModemId,
        kind: FaultKind,
    ) -> Result<Option<FaultRow>, Error> {
        Ok(self
            .connection
            .query_row(
                &format!(
                    "SELECT {FAULT_COLUMNS} FROM modem_faults WHERE modem = ?1 AND kind = ?2 AND cleared_ms IS NULL ORDER BY id DESC LIMIT 1"
                ),
                params![modem.as_str(), kind],
                fault_row,
            )
            .optional()?)
    }

    /// Every open fault, oldest first.
    pub fn open_faults(&self) -> Result<Vec<FaultRow>, Error> {
        let mut statement = self.connection.prepare(&format!(
            "SELECT {FAULT_COLUMNS} FROM modem_faults WHERE cleared_ms IS NULL ORDER BY id"
        ))?;
        let rows = statement.query_map([], fault_row)?;
        Ok(rows.collect::<Result<_, _>>()?)
    }

    /// The latest faults, open or cleared, newest first.
    pub fn recent_faults(&self, limit: u32) -> Result<Vec<FaultRow>, Error> {
        let mut statement = self.connection.prepare(&format!(
            "SELECT {FAULT_COLUMNS} FROM modem_faults ORDER BY id DESC LIMIT ?1"
        ))?;
        let rows = statement.query_map([limit], fault_row)?;
        Ok(rows.collect::<Result<_, _>>()?)
    }

    /// Faults per kind and cause, all time and open now, for /metrics.
    pub fn fault_counts(&self) -> Result<Vec<FaultCount>, Error> {
        let mut statement = self.connection.prepare(
            "SELECT kind, cause, count(*), sum(cleared_ms IS NULL) FROM modem_faults GROUP BY kind, cause ORDER BY kind, cause",
        )?;
        let rows = statement.query_map([], |row| {
            Ok((row.get(0)?, row.get(1)?, row.get(2)?, row.get(3)?))
        })?;
        Ok(rows.collect::<Result<_, _>>()?)
    }

    /// Records that the business was told of a fault.
    pub fn mark_alerted(&self, fault: i64, at_ms: i64) -> Result<(), Error> {
        self.connection.execute(
            "UPDATE modem_faults SET alerted_ms = ?2 WHERE id = ?1",
            params![fault, at_ms],
        )?;
        Ok(())
    }

    /// When the business was last told of a fault of `kind` on `modem`, if ever.
    pub fn last_alert_ms(&self, modem: &ModemId, kind: FaultKind) -> Result<Option<i64>, Error> {
        Ok(self.connection.query_row(
            "SELECT max(alerted_ms) FROM modem_faults WHERE modem = ?1 AND kind = ?2",
            params![modem.as_str(), kind],
            |row| row.get(0),
        )?)
    }

    /// Records one notice sent (or only logged) about a fault.
    pub fn insert_alert(
        &self,
        fault: i64,
        recipient: &str,
        channel: &str,
        text: &str,
        message: Option<MessageId>,
        at_ms: i64,
    ) -> Result<(), Error> {
        self.connection.execute(
            "INSERT INTO alerts (fault_id, recipient, channel, text, message_id, created_ms) VALUES (?1, ?2, ?3, ?4, ?5, ?6)",
            params![fault, recipient, channel, text, message.map(|m| m.0), at_ms],
        )?;
        Ok(())
    }

    /// How many alerts were recorded in all, for /metrics.
    pub fn alert_count(&self) -> Result<i64, Error> {
        Ok(self
            .connection
            .query_row("SELECT count(*) FROM alerts", [], |row| row.get(0))?)
    }

    /// Distinct numbers `modem` has texted (or is texting) since `since_ms`: what a network's cap
    /// on recipients per SIM per day counts.
    /// `except` is the text being decided on, left out of the count.
    pub fn distinct_recipients_since(
        &self,
        modem: &ModemId,
        since_ms: i64,
        except: Option<MessageId>,
    ) -> Result<i64, Error> {
        Ok(self.connection.query_row(
            "SELECT count(DISTINCT peer) FROM messages WHERE modem = ?1 AND direction = 'out' AND state IN ('sending', 'sent', 'delivered') AND updated_ms >= ?2 AND id != ?3",
            params![modem.as_str(), since_ms, except.map_or(0, |m| m.0)],
            |row| row.get(0),
        )?)
    }

    /// Whether `modem` has texted `peer` since `since_ms` (a known recipient does not count
    /// again against the cap).
    pub fn texted_since(
        &self,
        modem: &ModemId,
        peer: &E164,
        since_ms: i64,
        except: MessageId,
    ) -> Result<bool, Error> {
        Ok(self.connection.query_row(
            "SELECT EXISTS (SELECT 1 FROM messages WHERE modem = ?1 AND peer = ?2 AND direction = 'out' AND state IN ('sending', 'sent', 'delivered') AND updated_ms >= ?3 AND id != ?4)",
            params![modem.as_str(), peer.as_str(), since_ms, except.0],
            |row| row.get(0),
        )?)
    }

    /// Parts sent from `modem` since `since_ms` whose delivery report came back: (delivered,
    /// failed). Parts still waiting for a report do not count either way.
    pub fn delivery_counts(&self, modem: &ModemId, since_ms: i64) -> Result<(i64, i64), Error> {
        Ok(self.connection.query_row(
            "SELECT coalesce(sum(p.status = 'delivered'), 0), coalesce(sum(p.status = 'failed'), 0)
             FROM message_parts p JOIN messages m ON m.id = p.message_id
             WHERE m.modem = ?1 AND p.sent_ms >= ?2",
            params![modem.as_str(), since_ms],
            |row| Ok((row.get(0)?, row.get(1)?)),
        )?)
    }

    /// Moves every text queued for `from` to `to` (another SIM of the same business); returns
    /// how many moved.
    pub fn move_queued(
        &self,
        from: &ModemId,
        to: &ModemId,
        reason: &str,
        at_ms: i64,
    ) -> Result<usize, Error> {
        Ok(self.connection.execute(
            "UPDATE messages SET modem = ?2, error = ?3, updated_ms = ?4 WHERE modem = ?1 AND direction = 'out' AND state = 'queued'",
            params![from.as_str(), to.as_str(), reason, at_ms],
        )?)
    }

    /// Moves one queued text to another modem.
    pub fn move_message(
        &self,
        id: MessageId,
        to: &ModemId,
        reason: &str,
        at_ms: i64,
    ) -> Result<(), Error> {
        self.connection.execute(
            "UPDATE messages SET modem = ?2, state = 'queued', attempts = max(attempts - 1, 0), error = ?3, updated_ms = ?4 WHERE id = ?1",
            params![id.0, to.as_str(), reason, at_ms],
        )?;
        Ok(())
    }

    /// Holds one text until `until_ms` (it stays queued), recording why.
    pub fn hold_message(
        &self,
        id: MessageId,
        reason: &str,
        until_ms: i64,
        at_ms: i64,
    ) -> Result<(), Error> {
        self.connection.execute(
            "UPDATE messages SET state = 'queued', attempts = max(attempts - 1, 0), error = ?2, send_after_ms = ?3, updated_ms = ?4 WHERE id = ?1",
            params![id.0, reason, until_ms, at_ms],
        )?;
        Ok(())
    }

    /// Records one credit check: the amount read (if any), the network's words, or the error.
    pub fn record_balance(
        &self,
        modem: &ModemId,
        pence: Option<i64>,
        reply: Option<&str>,
        error: Option<&str>,
        at_ms: i64,
    ) -> Result<(), Error> {
        self.connection.execute(
            "INSERT INTO balance_checks (modem, pence, reply, error, checked_ms) VALUES (?1, ?2, ?3, ?4, ?5)",
            params![modem.as_str(), pence, reply, error, at_ms],
        )?;
        Ok(())
    }

    /// Each modem's last credit check, with the last amount read (which may be older), by modem.
    pub fn balances(&self) -> Result<Vec<BalanceRow>, Error> {
        let mut statement = self.connection.prepare(
            "SELECT b.modem, b.pence, b.reply, b.error, b.checked_ms,
                    (SELECT k.pence FROM balance_checks k WHERE k.modem = b.modem AND k.pence IS NOT NULL ORDER BY k.id DESC LIMIT 1),
                    (SELECT k.checked_ms FROM balance_checks k WHERE k.modem = b.modem AND k.pence IS NOT NULL ORDER BY k.id DESC LIMIT 1)
             FROM balance_checks b
             WHERE b.id IN (SELECT max(id) FROM balance_checks GROUP BY modem)
             ORDER BY b.modem",
        )?;
        let rows = statement.query_map([], |row| {
            Ok(BalanceRow {
                modem: row.get(0)?,
                pence: row.get(1)?,
                reply: row.get(2)?,
                error: row.get(3)?,
                checked_ms: row.get(4)?,
                known_pence: row.get(5)?,
                known_ms: row.get(6)?,
            })
        })?;
        Ok(rows.collect::<Result<_, _>>()?)
    }

    /// When `modem`'s credit was last checked, if ever.
    pub fn last_balance_check_ms(&self, modem: &ModemId) -> Result<Option<i64>, Error> {
        Ok(self.connection.query_row(
            "SELECT max(checked_ms) FROM balance_checks WHERE modem = ?1",
            params![modem.as_str()],
            |row| row.get(0),
        )?)
    }
}

/// A modem's last credit check.
#[derive(Debug, Clone, PartialEq, Eq, serde::Serialize)]
pub struct BalanceRow {
    pub modem: String,
    /// The amount this check read, in pence.
    pub pence: Option<i64>,
    pub reply: Option<String>,
    pub error: Option<String>,
    pub checked_ms: i64,
    /// The last amount any check read, and when.
    pub known_pence: Option<i64>,
    pub known_ms: Option<i64>,
}

/// A daily self-test as stored.
#[derive(Debug, Clone, PartialEq, Eq, serde::Serialize)]
pub struct SelfTestRow {
    pub id: i64,
    pub modem: String,
    pub recipient: String,
    pub token: String,
    pub state: SelfTestState,
    pub started_ms: i64,
    pub deadline_ms: i64,
    pub received_ms: Option<i64>,
    pub received_on: Option<String>,
    pub detail: Option<String>,
}

const SELF_TEST_COLUMNS: &str =
    "id, modem, recipient, token, state, started_ms, deadline_ms, received_ms, received_on, detail";

fn self_test_row(row: &rusqlite::Row<'_>) -> rusqlite::Result<SelfTestRow> {
    Ok(SelfTestRow {
        id: row.get(0)?,
        modem: row.get(1)?,
        recipient: row.get(2)?,
        token: row.get(3)?,
        state: row.get(4)?,
        started_ms: row.get(5)?,
        deadline_ms: row.get(6)?,
        received_ms: row.get(7)?,
        received_on: row.get(8)?,
        detail: row.get(9)?,
    })
}

/// A self-test to start: its row, then its text in the outbox, in one transaction.
pub struct NewSelfTest<'a> {
    pub modem: &'a ModemId,
    pub recipient: &'a E164,
    pub token: &'a str,
    pub text: &'a str,
    pub at_ms: i64,
    pub deadline_ms: i64,
}

impl Tx<'_> {
    /// Records a self-test as waiting, then queues its text; returns the test's id.
    pub fn start_self_test(&self, test: &NewSelfTest<'_>) -> Result<i64, Error> {
        self.connection.execute(
            "INSERT INTO self_tests (modem, recipient, token, state, started_ms, deadline_ms) VALUES (?1, ?2, ?3, ?4, ?5, ?6)",
            params![
                test.modem.as_str(),
                test.recipient.as_str(),
                test.token,
                SelfTestState::Waiting,
                test.at_ms,
                test.deadline_ms
            ],
        )?;
        let id = self.connection.last_insert_rowid();
        let parts = crate::codec::pdu::segment(test.text).parts.len();
        let message = self.queue_sms(
            None,
            test.recipient,
            test.modem,
            test.text,
            parts,
            test.at_ms,
        )?;
        self.connection.execute(
            "UPDATE self_tests SET message_id = ?2 WHERE id = ?1",
            params![id, message.0],
        )?;
        Ok(id)
    }

    /// The self-test with this token, if there is one.
    pub fn self_test_by_token(&self, token: &str) -> Result<Option<SelfTestRow>, Error> {
        Ok(self
            .connection
            .query_row(
                &format!("SELECT {SELF_TEST_COLUMNS} FROM self_tests WHERE token = ?1"),
                params![token],
                self_test_row,
            )
            .optional()?)
    }

    /// A self-test by id.
    pub fn self_test(&self, id: i64) -> Result<Option<SelfTestRow>, Error> {
        Ok(self
            .connection
            .query_row(
                &format!("SELECT {SELF_TEST_COLUMNS} FROM self_tests WHERE id = ?1"),
                params![id],
                self_test_row,
            )
            .optional()?)
    }

    /// A self-test's text came back on `modem`: passed if it was still waiting (a late one stays
    /// failed, with when it came). The first arrival counts.
    pub fn self_test_came_back(&self, id: i64, modem: &ModemId, at_ms: i64) -> Result<(), Error> {
        self.connection.execute(
            "UPDATE self_tests SET received_ms = ?2, received_on = ?3,
                 state = CASE WHEN state = 'waiting' THEN 'passed' ELSE state END
             WHERE id = ?1 AND received_ms IS NULL",
            params![id, at_ms, modem.as_str()],
        )?;
        Ok(())
    }

    /// A self-test that is still waiting fails, with why.
    pub fn fail_self_test(&self, id: i64, detail: &str) -> Result<(), Error> {
        self.connection.execute(
            "UPDATE self_tests SET state = 'failed', detail = ?2 WHERE id = ?1 AND state = 'waiting'",
            params![id, detail],
        )?;
        Ok(())
    }

    /// The last self-test `modem` started, if any.
    pub fn last_self_test(&self, modem: &ModemId) -> Result<Option<SelfTestRow>, Error> {
        Ok(self
            .connection
            .query_row(
                &format!(
                    "SELECT {SELF_TEST_COLUMNS} FROM self_tests WHERE modem = ?1 ORDER BY id DESC LIMIT 1"
                ),
                params![modem.as_str()],
                self_test_row,
            )
            .optional()?)
    }

    /// Each modem's last self-test, by modem.
    pub fn last_self_tests(&self) -> Result<Vec<SelfTestRow>, Error> {
        let mut statement = self.connection.prepare(&format!(
            "SELECT {SELF_TEST_COLUMNS} FROM self_tests WHERE id IN (SELECT max(id) FROM self_tests GROUP BY modem) ORDER BY modem"
        ))?;
        let rows = statement.query_map([], self_test_row)?;
        Ok(rows.collect::<Result<_, _>>()?)
    }

    /// Self-tests per modem and state, for /metrics: (modem, state, count).
    pub fn self_test_counts(&self) -> Result<Vec<(String, String, i64)>, Error> {
        let mut statement = self.connection.prepare(
            "SELECT modem, state, count(*) FROM self_tests GROUP BY modem, state ORDER BY modem, state",
        )?;
        let rows = statement.query_map([], |row| Ok((row.get(0)?, row.get(1)?, row.get(2)?)))?;
        Ok(rows.collect::<Result<_, _>>()?)
    }
}

impl Tx<'_> {
    /// `modem` reports SIM `iccid`: recorded as where that SIM is, and every conversation that
    /// started on it (under another modem id, or before ports swapped) follows it here with its
    /// queued texts. Conversations of this modem from before ICCIDs were recorded are taken to be
    /// on this SIM. Returns (conversations moved, texts moved).
    pub fn sim_seen(
        &self,
        modem: &ModemId,
        iccid: &str,
        at_ms: i64,
    ) -> Result<(usize, usize), Error> {
        if iccid.is_empty() {
            return Ok((0, 0));
        }
        self.connection.execute(
            "DELETE FROM modem_sims WHERE iccid = ?2 AND modem != ?1",
            params![modem.as_str(), iccid],
        )?;
        self.connection.execute(
            "INSERT INTO modem_sims (modem, iccid, seen_ms) VALUES (?1, ?2, ?3)
             ON CONFLICT(modem) DO UPDATE SET iccid = excluded.iccid, seen_ms = excluded.seen_ms",
            params![modem.as_str(), iccid, at_ms],
        )?;
        self.connection.execute(
            "UPDATE conversations SET iccid = ?2 WHERE modem = ?1 AND iccid IS NULL",
            params![modem.as_str(), iccid],
        )?;
        let conversations = self.connection.execute(
            "UPDATE conversations SET modem = ?1 WHERE iccid = ?2 AND modem != ?1",
            params![modem.as_str(), iccid],
        )?;
        let texts = self.connection.execute(
            "UPDATE messages SET modem = ?1
             WHERE direction = 'out' AND state = 'queued' AND modem != ?1
               AND conversation_id IN (SELECT id FROM conversations WHERE iccid = ?2)",
            params![modem.as_str(), iccid],
        )?;
        Ok((conversations, texts))
    }
}
