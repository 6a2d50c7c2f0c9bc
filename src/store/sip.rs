//! The SIP accounts' registration state, written by the daemon on each change and read by
//! `textback sip status` and `textback doctor`.

use rusqlite::params;

use super::{Error, Tx};
use crate::domain::RegistrationState;

/// One account's state as the daemon last wrote it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SipAccountRow {
    pub name: String,
    pub state: RegistrationState,
    pub registered_until_ms: Option<i64>,
    pub next_refresh_ms: Option<i64>,
    pub retry_at_ms: Option<i64>,
    pub last_error: Option<String>,
    /// Status code and reason of the registrar's last final response, e.g. "200 OK".
    pub last_response: Option<String>,
    /// The address the account registers from (what the registrar sends calls to).
    pub local_address: String,
    /// The daemon that wrote the row, so a reader can tell whether it still runs.
    pub daemon_pid: i64,
    pub updated_ms: i64,
}

impl Tx<'_> {
    /// Records an account's state, replacing what was there.
    pub fn upsert_sip_account(&self, row: &SipAccountRow) -> Result<(), Error> {
        self.connection.execute(
            "INSERT INTO sip_accounts (name, state, registered_until_ms, next_refresh_ms, retry_at_ms, last_error, last_response, local_address, daemon_pid, updated_ms)
             VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8, ?9, ?10)
             ON CONFLICT(name) DO UPDATE SET state = excluded.state,
                registered_until_ms = excluded.registered_until_ms,
                next_refresh_ms = excluded.next_refresh_ms, retry_at_ms = excluded.retry_at_ms,
                last_error = excluded.last_error, last_response = excluded.last_response,
                local_address = excluded.local_address, daemon_pid = excluded.daemon_pid,
                updated_ms = excluded.updated_ms",
            params![
                row.name,
                row.state,
                row.registered_until_ms,
                row.next_refresh_ms,
                row.retry_at_ms,
                row.last_error,
                row.last_response,
                row.local_address,
                row.daemon_pid,
                row.updated_ms
            ],
        )?;
        Ok(())
    }

    /// Every account's last known state, by name.
    pub fn sip_accounts(&self) -> Result<Vec<SipAccountRow>, Error> {
        let mut statement = self.connection.prepare(
            "SELECT name, state, registered_until_ms, next_refresh_ms, retry_at_ms, last_error, last_response, local_address, daemon_pid, updated_ms
             FROM sip_accounts ORDER BY name",
        )?;
        let rows = statement
            .query_map([], |row| {
                Ok(SipAccountRow {
                    name: row.get(0)?,
                    state: row.get(1)?,
                    registered_until_ms: row.get(2)?,
                    next_refresh_ms: row.get(3)?,
                    retry_at_ms: row.get(4)?,
                    last_error: row.get(5)?,
                    last_response: row.get(6)?,
                    local_address: row.get(7)?,
                    daemon_pid: row.get(8)?,
                    updated_ms: row.get(9)?,
                })
            })?
            .collect::<Result<_, _>>()?;
        Ok(rows)
    }

    /// One account's last known state.
    pub fn sip_account(&self, name: &str) -> Result<Option<SipAccountRow>, Error> {
        Ok(self
            .sip_accounts()?
            .into_iter()
            .find(|row| row.name == name))
    }
}
