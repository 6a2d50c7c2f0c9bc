//! The store: one SQLite file, the single source of truth. Only this module contains SQL.
//!
//! One writer thread owns the read-write connection ([`Store`]); every change runs there inside a
//! transaction, so a step is either wholly on disk or not at all. Readers (CLI, doctor, dashboard)
//! open their own connection ([`open_read_only`]); WAL mode lets them read while the writer writes.

mod columns;
mod health;
mod notices;
mod sip;
mod tx;

use std::path::{Path, PathBuf};

use rusqlite::{Connection, OpenFlags, TransactionBehavior};
use tokio::sync::{mpsc, oneshot};

pub use health::*;
pub use notices::*;
pub use sip::*;
pub use tx::*;

/// Migrations in order; the database's `PRAGMA user_version` is how many have been applied.
/// Append only: an applied migration is never edited.
const MIGRATIONS: &[(&str, &str)] = &[
    ("0001_init", include_str!("migrations/0001_init.sql")),
    (
        "0002_part_sent_time",
        include_str!("migrations/0002_part_sent_time.sql"),
    ),
    (
        "0003_lead_delivery",
        include_str!("migrations/0003_lead_delivery.sql"),
    ),
    ("0004_sip", include_str!("migrations/0004_sip.sql")),
    (
        "0005_engine_state",
        include_str!("migrations/0005_engine_state.sql"),
    ),
    (
        "0006_held_and_waiting",
        include_str!("migrations/0006_held_and_waiting.sql"),
    ),
    (
        "0007_late_replies",
        include_str!("migrations/0007_late_replies.sql"),
    ),
    (
        "0008_skipped_step",
        include_str!("migrations/0008_skipped_step.sql"),
    ),
    (
        "0009_lead_states",
        include_str!("migrations/0009_lead_states.sql"),
    ),
    ("0010_owner", include_str!("migrations/0010_owner.sql")),
    (
        "0011_callbacks",
        include_str!("migrations/0011_callbacks.sql"),
    ),
    (
        "0012_modem_health",
        include_str!("migrations/0012_modem_health.sql"),
    ),
    ("0013_notices", include_str!("migrations/0013_notices.sql")),
    // Credit by USSD, the daily self-test, and the SIM (ICCID) each conversation started on.
    (
        "0014_sim_checks",
        include_str!("migrations/0014_sim_checks.sql"),
    ),
];

/// The schema version this build expects.
pub const SCHEMA_VERSION: i64 = MIGRATIONS.len() as i64;

/// How many store jobs may wait for the writer. The daemon's event loop waits on each job, so the
/// queue only fills when several tasks (outbox workers, event loop) write at once.
const QUEUE: usize = 64;

#[derive(Debug, thiserror::Error)]
pub enum Error {
    #[error("cannot open database {}: {source}. Check that the directory exists and user textback can write to it (systemd's StateDirectory=textback creates /var/lib/textback)", path.display())]
    Open {
        path: PathBuf,
        source: rusqlite::Error,
    },
    #[error("database {} has schema version {found}, newer than this textback ({expected}). Install the newer textback again, or restore a backup", path.display())]
    TooNew {
        path: PathBuf,
        found: i64,
        expected: i64,
    },
    #[error("applying migration {name}: {source}")]
    Migrate {
        name: &'static str,
        source: rusqlite::Error,
    },
    #[error("database: {0}")]
    Sqlite(#[from] rusqlite::Error),
    #[error("database holds a value it cannot read back: {what}")]
    BadValue { what: String },
    #[error("the store's writer thread has stopped")]
    Closed,
    #[error("a store job panicked (a bug); its changes were rolled back")]
    Panicked,
}

type Job = Box<dyn FnOnce(&mut Connection) + Send>;

/// The handle to the writer thread. Cheap to clone.
#[derive(Clone)]
pub struct Store {
    jobs: mpsc::Sender<Job>,
}

/// Waits for the writer thread to finish once every [`Store`] handle is dropped.
pub struct StoreCloser {
    writer: std::thread::JoinHandle<()>,
}

impl StoreCloser {
    /// Blocks until the writer has drained its queue and closed the database.
    pub fn wait(self) {
        if self.writer.join().is_err() {
            tracing::error!("the store writer thread panicked");
        }
    }
}

impl Store {
    /// Opens (creating if needed) the database, applies migrations, and starts the writer thread.
    pub fn open(path: &Path) -> Result<(Store, StoreCloser), Error> {
        let mut connection = open_read_write(path)?;
        migrate(&mut connection, path)?;
        let (jobs, mut receiver) = mpsc::channel::<Job>(QUEUE);
        let writer = std::thread::Builder::new()
            .name("store-writer".to_string())
            .spawn(move || {
                while let Some(job) = receiver.blocking_recv() {
                    job(&mut connection);
                }
                if let Err((_, err)) = connection.close() {
                    tracing::error!(error = %err, "closing the database");
                }
            })
            .map_err(|err| Error::Open {
                path: path.to_path_buf(),
                source: rusqlite::Error::ToSqlConversionFailure(Box::new(err)),
            })?;
        Ok((Store { jobs }, StoreCloser { writer }))
    }

    /// Runs `f` in one transaction on the writer thread and commits it if `f` returns `Ok`.
    pub async fn run<T, F>(&self, f: F) -> Result<T, Error>
    where
        T: Send + 'static,
        F: FnOnce(&Tx<'_>) -> Result<T, Error> + Send + 'static,
    {
        let (reply, answer) = oneshot::channel();
        // The job runs on the writer thread: carry the caller's span (call id, conversation id)
        // there, so its log lines can be followed with the rest of the call.
        let span = tracing::Span::current();
        let job: Job = Box::new(move |connection: &mut Connection| {
            let _entered = span.enter();
            // A bug that panics inside a job must not take the writer thread down with it: the
            // transaction is dropped (rolled back) and the caller gets an error.
            let result = std::panic::catch_unwind(std::panic::AssertUnwindSafe(|| {
                // IMMEDIATE: the write lock is taken at BEGIN, where SQLite waits for it (the
                // busy timeout) if another process holds it (the CLI setting a password). A
                // deferred transaction that read first would fail at its first write instead,
                // at once, and a missed call would be lost.
                let transaction =
                    connection.transaction_with_behavior(TransactionBehavior::Immediate)?;
                let value = f(&Tx::new(&transaction))?;
                transaction.commit()?;
                Ok(value)
            }))
            .unwrap_or_else(|_| Err(Error::Panicked));
            let _ = reply.send(result);
        });
        self.jobs.send(job).await.map_err(|_| Error::Closed)?;
        answer.await.map_err(|_| Error::Closed)?
    }
}

fn open_read_write(path: &Path) -> Result<Connection, Error> {
    let open_error = |source| Error::Open {
        path: path.to_path_buf(),
        source,
    };
    let connection = Connection::open(path).map_err(open_error)?;
    // WAL lets readers work beside the writer; synchronous=FULL makes each commit durable across
    // a power cut (NORMAL could lose the last commits, and a lost outbox row is a lost text).
    connection
        .pragma_update(None, "journal_mode", "WAL")
        .map_err(open_error)?;
    connection
        .pragma_update(None, "synchronous", "FULL")
        .map_err(open_error)?;
    connection
        .pragma_update(None, "foreign_keys", "ON")
        .map_err(open_error)?;
    connection
        .busy_timeout(std::time::Duration::from_secs(5))
        .map_err(open_error)?;
    Ok(connection)
}

/// Opens the database for reading only, for the CLI, `doctor` and the dashboard.
pub fn open_read_only(path: &Path) -> Result<Connection, Error> {
    let open_error = |source| Error::Open {
        path: path.to_path_buf(),
        source,
    };
    let connection = Connection::open_with_flags(
        path,
        OpenFlags::SQLITE_OPEN_READ_ONLY | OpenFlags::SQLITE_OPEN_NO_MUTEX,
    )
    .map_err(open_error)?;
    connection
        .busy_timeout(std::time::Duration::from_secs(5))
        .map_err(open_error)?;
    Ok(connection)
}

/// The schema version of an open database.
pub fn schema_version(connection: &Connection) -> Result<i64, Error> {
    Ok(connection.query_row("PRAGMA user_version", [], |row| row.get(0))?)
}

/// SQLite's own consistency check: "ok", or what is wrong.
pub fn quick_check(connection: &Connection) -> Result<String, Error> {
    Ok(connection.query_row("PRAGMA quick_check", [], |row| row.get(0))?)
}

fn migrate(connection: &mut Connection, path: &Path) -> Result<(), Error> {
    let found = schema_version(connection)?;
    if found > SCHEMA_VERSION {
        return Err(Error::TooNew {
            path: path.to_path_buf(),
            found,
            expected: SCHEMA_VERSION,
        });
    }
    for (version, (name, sql)) in MIGRATIONS.iter().enumerate().skip(found as usize) {
        let transaction = connection
            .transaction()
            .map_err(|source| Error::Migrate { name, source })?;
        transaction
            .execute_batch(sql)
            .map_err(|source| Error::Migrate { name, source })?;
        transaction
            .pragma_update(None, "user_version", version as i64 + 1)
            .map_err(|source| Error::Migrate { name, source })?;
        transaction
            .commit()
            .map_err(|source| Error::Migrate { name, source })?;
        tracing::info!(migration = name, "applied database migration");
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::domain::{ChannelKind, JournalStep, PartStatus};

    #[tokio::test]
    async fn opens_migrates_and_reopens() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("t.db");
        let (store, closer) = Store::open(&path).unwrap();
        let n: i64 = store.run(|tx| tx.count_rows("calls")).await.unwrap();
        assert_eq!(n, 0);
        drop(store);
        closer.wait();
        let connection = open_read_only(&path).unwrap();
        assert_eq!(schema_version(&connection).unwrap(), SCHEMA_VERSION);
        let mode: String = connection
            .query_row("PRAGMA journal_mode", [], |row| row.get(0))
            .unwrap();
        assert_eq!(mode, "wal");
        // Reopening applies nothing new.
        let (_store, _closer) = Store::open(&path).unwrap();
    }

    #[tokio::test]
    async fn a_status_report_finds_the_part_it_is_about() {
        use crate::domain::{E164, ModemId};
        let dir = tempfile::tempdir().unwrap();
        let (store, _closer) = Store::open(&dir.path().join("t.db")).unwrap();
        let to = E164::parse("+447700900123").unwrap();
        let modem = ModemId::parse("main").unwrap();
        let day = 24 * 60 * 60 * 1000;
        let states = store
            .run(move |tx| {
                let report = |at: i64, status: PartStatus| {
                    tx.apply_delivery_report(&modem, &to, 7, status, status.as_str(), at)
                        .map(|found| found.map(|(message, _)| message))
                };
                let send = |at: i64| -> Result<_, Error> {
                    let id = tx.queue_sms(None, &to, &modem, "hi", 1, at)?;
                    tx.mark_sent(id, &[7], at)?;
                    Ok(id)
                };
                // TP-MR 7 four days ago, never reported: outside the window.
                let old = send(0)?;
                let late = report(4 * day, PartStatus::Delivered)?;
                // TP-MR 7 again (the reference wrapped): the SMSC still trying, then delivered.
                let first = send(4 * day)?;
                let trying = report(4 * day + 1000, PartStatus::Pending)?;
                // Another text to the same number with TP-MR 7 before that report came.
                let second = send(4 * day + 2000)?;
                let delivered = report(4 * day + 3000, PartStatus::Delivered)?;
                // The second's report: the first is settled, so it goes to the second.
                let next = report(4 * day + 4000, PartStatus::Delivered)?;
                Ok((old, late, first, trying, second, delivered, next))
            })
            .await
            .unwrap();
        let (old, late, first, trying, second, delivered, next) = states;
        assert_eq!(late, None, "message {old:?} is outside the report window");
        assert_eq!(trying, Some(first));
        // Both wait for a final report; the newest takes the first one that comes.
        assert_eq!(delivered, Some(second));
        assert_eq!(next, Some(first));
    }

    #[tokio::test]
    async fn a_failed_job_rolls_back() {
        let dir = tempfile::tempdir().unwrap();
        let (store, _closer) = Store::open(&dir.path().join("t.db")).unwrap();
        let result: Result<(), Error> = store
            .run(|tx| {
                tx.set_opt_out(
                    &crate::domain::E164::parse("07700900123").unwrap(),
                    crate::domain::OptOutSource::Sms,
                    1,
                )?;
                Err(Error::BadValue {
                    what: "test".to_string(),
                })
            })
            .await;
        assert!(result.is_err());
        let n = store.run(|tx| tx.count_rows("opt_outs")).await.unwrap();
        assert_eq!(n, 0);
    }

    /// Every column of every delivery, as text, in id order.
    fn delivery_rows(connection: &Connection) -> Vec<String> {
        let mut statement = connection
            .prepare(
                "SELECT id || '|' || lead_id || '|' || recipient || '|' || channel || '|' || target || '|' || state
                        || '|' || attempts || '|' || quote(last_error) || '|' || next_attempt_ms || '|' || quote(delivered_ms)
                        || '|' || quote(message_id) || '|' || quote(external_id) || '|' || updated_ms
                 FROM lead_deliveries ORDER BY id",
            )
            .unwrap();
        statement
            .query_map([], |row| row.get(0))
            .unwrap()
            .collect::<Result<_, _>>()
            .unwrap()
    }

    #[tokio::test]
    async fn late_replies_migration_keeps_every_delivery() {
        use crate::domain::{LeadId, MessageId};
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("t.db");
        // A database as the last release left it (schema 5), with a lead delivered on some
        // channels, an owner's SMS in the outbox, and a retry waiting.
        let before = {
            let connection = open_read_write(&path).unwrap();
            for (_, sql) in &MIGRATIONS[..5] {
                connection.execute_batch(sql).unwrap();
            }
            connection.pragma_update(None, "user_version", 5).unwrap();
            connection
                .execute_batch(
                    "INSERT INTO conversations (id, profile, caller, modem, state, started_ms, updated_ms)
                         VALUES (1, 'acme', '+447700900123', 'main', 'completed', 1000, 2000);
                     INSERT INTO messages (id, conversation_id, direction, peer, modem, body, state, created_ms, updated_ms)
                         VALUES (1, 1, 'in', '+447700900123', 'main', 'Dave', 'received', 1500, 1500),
                                (2, NULL, 'out', '+447700900456', 'main', 'New lead', 'sent', 2100, 2200);
                     INSERT INTO leads (id, conversation_id, profile, caller, answers, complete, created_ms)
                         VALUES (1, 1, 'acme', '+447700900123', '[[\"name\",\"Dave\"]]', 1, 2000);
                     INSERT INTO lead_deliveries (id, lead_id, recipient, channel, target, state, attempts, last_error,
                                                  next_attempt_ms, delivered_ms, message_id, external_id, updated_ms)
                         VALUES (1, 1, 'Owner', 'email', 'owner@acme.example', 'delivered', 1, NULL, 2000, 2050, NULL, NULL, 2050),
                                (2, 1, 'Owner', 'sms', '+447700900456', 'delivered', 1, NULL, 2000, 2200, 2, NULL, 2200),
                                (3, 1, 'Owner', 'whatsapp', '+447700900456', 'delivered', 2, NULL, 2000, 2300, NULL, 'wamid.X', 2300),
                                (4, 1, 'Owner', 'webhook', 'https://crm.example/h', 'pending', 3, 'HTTP 503', 9000, NULL, NULL, NULL, 2400);",
                )
                .unwrap();
            delivery_rows(&connection)
        };
        assert_eq!(before.len(), 4);

        let (store, closer) = Store::open(&path).unwrap();
        let (inserted, again, due) = store
            .run(|tx| {
                // The unique key now has the reply in it: a notice of reply 1 on the same channel
                // as the lead goes in, once.
                let inserted = tx.insert_reply_delivery(
                    LeadId(1),
                    MessageId(1),
                    "Owner",
                    ChannelKind::Email,
                    "owner@acme.example",
                    5000,
                )?;
                let again = tx.insert_reply_delivery(
                    LeadId(1),
                    MessageId(1),
                    "Owner",
                    ChannelKind::Email,
                    "owner@acme.example",
                    6000,
                )?;
                // And the lead's own row is still one per recipient and channel.
                tx.insert_delivery(
                    LeadId(1),
                    "Owner",
                    ChannelKind::Email,
                    "owner@acme.example",
                    7000,
                )?;
                Ok((inserted, again, tx.due_deliveries(10_000, 10)?))
            })
            .await
            .unwrap();
        drop(store);
        closer.wait();
        assert!(inserted);
        assert!(!again, "the same reply is told once");
        // The retry waiting before the migration is still due, as the lead's; the notice too,
        // its give-up time counted from the reply.
        let due: Vec<(i64, Option<MessageId>, i64)> =
            due.iter().map(|d| (d.id, d.reply, d.created_ms)).collect();
        assert_eq!(due, [(5, Some(MessageId(1)), 1500), (4, None, 2000)]);

        let connection = open_read_only(&path).unwrap();
        assert_eq!(schema_version(&connection).unwrap(), SCHEMA_VERSION);
        let after = delivery_rows(&connection);
        assert_eq!(after[..4], before[..], "every row kept as it was");
        assert_eq!(after.len(), 5);
        let replies: Vec<i64> = connection
            .prepare("SELECT reply_id FROM lead_deliveries ORDER BY id")
            .unwrap()
            .query_map([], |row| row.get(0))
            .unwrap()
            .collect::<Result<_, _>>()
            .unwrap();
        assert_eq!(replies, [0, 0, 0, 0, 1]);
        let mut indexes: Vec<String> = connection
            .prepare("SELECT name FROM sqlite_master WHERE type = 'index' AND tbl_name = 'lead_deliveries' AND sql IS NOT NULL")
            .unwrap()
            .query_map([], |row| row.get(0))
            .unwrap()
            .collect::<Result<_, _>>()
            .unwrap();
        indexes.sort();
        assert_eq!(indexes, ["lead_deliveries_due", "lead_deliveries_message"]);
        let leftovers: i64 = connection
            .query_row(
                "SELECT count(*) FROM sqlite_master WHERE name = 'lead_deliveries_new'",
                [],
                |row| row.get(0),
            )
            .unwrap();
        assert_eq!(leftovers, 0);
        let broken: i64 = connection
            .query_row("SELECT count(*) FROM pragma_foreign_key_check", [], |row| {
                row.get(0)
            })
            .unwrap();
        assert_eq!(broken, 0);
        assert_eq!(quick_check(&connection).unwrap(), "ok");
        // The reply is shown with the lead's deliveries, after the lead's own rows.
        let rows = Tx::reader(&connection).deliveries(LeadId(1)).unwrap();
        let about: Vec<(ChannelKind, Option<i64>)> =
            rows.into_iter().map(|d| (d.channel, d.reply_id)).collect();
        assert_eq!(
            about,
            [
                (ChannelKind::Email, None),
                (ChannelKind::Sms, None),
                (ChannelKind::WhatsApp, None),
                (ChannelKind::Webhook, None),
                (ChannelKind::Email, Some(1)),
            ]
        );
    }

    #[test]
    fn a_skipped_call_gets_its_own_journal_step() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("t.db");
        {
            let connection = open_read_write(&path).unwrap();
            for (_, sql) in &MIGRATIONS[..7] {
                connection.execute_batch(sql).unwrap();
            }
            connection.pragma_update(None, "user_version", 7).unwrap();
            connection
                .execute_batch(
                    "INSERT INTO journal (at_ms, step, detail) VALUES
                         (1, 'policy', 'no text: the caller is withheld'),
                         (2, 'policy', 'text the caller from modem main');",
                )
                .unwrap();
        }
        let (store, closer) = Store::open(&path).unwrap();
        drop(store);
        closer.wait();
        let connection = open_read_only(&path).unwrap();
        let steps: Vec<JournalStep> = Tx::reader(&connection)
            .journal_since(0)
            .unwrap()
            .into_iter()
            .map(|row| row.step)
            .collect();
        assert_eq!(steps, [JournalStep::Skipped, JournalStep::Policy]);
    }

    #[test]
    fn refuses_a_newer_schema() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("t.db");
        {
            let connection = Connection::open(&path).unwrap();
            connection.pragma_update(None, "user_version", 99).unwrap();
        }
        match Store::open(&path) {
            Err(Error::TooNew { found: 99, .. }) => {}
            Err(other) => panic!("unexpected {other}"),
            Ok(_) => panic!("opened a newer schema"),
        }
    }
}
