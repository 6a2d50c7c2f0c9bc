//! Typed reads and writes inside one transaction. Every SQL statement of the program is here or in
//! the migrations.

use rusqlite::{Connection, OptionalExtension, Transaction, params};

use super::Error;
use crate::domain::{
    CallDecision, CallId, CallRowId, CallSource, ChannelKind, ConversationId, ConversationState,
    DeliveryState, Direction, E164, JournalStep, LeadId, LeadState, MessageId, MessageState,
    ModemId, OptOutSource, PartStatus, ProfileId,
};

/// How long after a part was sent a status report can still be about it: the outbox asks for a
/// 24-hour validity period, and SMSCs report the final outcome (delivered, or expired) within it;
/// two more days allow for an SMSC's slow reporting and a modem clock that is off.
pub const REPORT_WINDOW_MS: i64 = 3 * 24 * 60 * 60 * 1000;

/// One transaction on the writer's connection, or a read-only connection.
pub struct Tx<'a> {
    pub(super) connection: &'a Connection,
}

impl<'a> Tx<'a> {
    pub(super) fn new(transaction: &'a Transaction<'a>) -> Self {
        Self {
            connection: transaction,
        }
    }

    /// Reads through a read-only connection (CLI, doctor).
    pub fn reader(connection: &'a Connection) -> Self {
        Self { connection }
    }
}

/// A missed call to record.
#[derive(Debug, Clone)]
pub struct NewCall {
    pub key: CallId,
    pub source: CallSource,
    pub caller: Option<E164>,
    pub caller_raw: String,
    pub called: Option<E164>,
    pub profile: ProfileId,
    pub modem: Option<ModemId>,
    pub at_ms: i64,
    /// `None`: texted. `Some((code, words))`: not texted, and why.
    pub skipped: Option<(String, String)>,
}

/// Answers in the order they were given: (question id, answer).
pub type Answers = Vec<(String, String)>;

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ConversationRow {
    pub id: ConversationId,
    pub profile: ProfileId,
    pub caller: E164,
    pub modem: ModemId,
    pub state: ConversationState,
    pub next_question: usize,
    pub answers: Answers,
    pub started_ms: i64,
    pub updated_ms: i64,
}

/// An SMS waiting in the outbox.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct OutboundRow {
    pub id: MessageId,
    pub conversation: Option<ConversationId>,
    pub to: E164,
    pub modem: ModemId,
    pub body: String,
    pub attempts: u32,
}

/// The parts of one multipart SMS: same modem, sender, reference and part count.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct FragmentGroup {
    pub modem: ModemId,
    pub sender: String,
    pub reference: u16,
    pub total: u8,
}

/// One part of a multipart SMS that came in.
#[derive(Debug, Clone)]
pub struct Fragment<'a> {
    pub modem: &'a ModemId,
    pub sender: &'a str,
    /// The concatenation reference (TS 23.040 §9.2.3.24.1), 8 or 16 bits.
    pub reference: u16,
    pub total: u8,
    pub sequence: u8,
    pub body: &'a str,
    pub at_ms: i64,
}

/// An SMS that came in, to store once.
#[derive(Debug, Clone)]
pub struct NewInbound {
    pub conversation: Option<ConversationId>,
    /// The sender as the SMS gave it: E.164 for phones, a name for alphanumeric senders.
    pub from: String,
    pub modem: ModemId,
    pub body: String,
    /// Same sender, service-centre time and text: the same SMS delivered again.
    pub dedup_key: String,
    pub at_ms: i64,
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct JournalRow {
    pub id: i64,
    pub at_ms: i64,
    pub call_id: Option<i64>,
    pub conversation_id: Option<i64>,
    pub step: JournalStep,
    pub detail: String,
}

/// A message of a conversation, for transcripts.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct MessageRow {
    pub id: MessageId,
    pub direction: Direction,
    pub peer: String,
    pub body: String,
    pub state: MessageState,
    pub error: Option<String>,
    pub created_ms: i64,
    /// Who wrote an outgoing text a person wrote ("dashboard", "sms: 07700 900456").
    pub author: Option<String>,
}

/// The columns of a `leads` row [`RawLead::read`] reads, first and in this order.
const LEAD_COLUMNS: &str = "id, conversation_id, profile, caller, answers, complete, created_ms, state, state_by, state_ms, urgent";

/// A `leads` row as SQLite gives it ([`LEAD_COLUMNS`]), before its answers are parsed.
struct RawLead {
    id: i64,
    conversation: i64,
    profile: String,
    caller: String,
    answers: String,
    complete: bool,
    created_ms: i64,
    state: LeadState,
    state_by: Option<String>,
    state_ms: Option<i64>,
    urgent: bool,
}

impl LeadEventRow {
    fn read(row: &rusqlite::Row<'_>) -> rusqlite::Result<LeadEventRow> {
        Ok(LeadEventRow {
            id: row.get(0)?,
            lead_id: row.get(1)?,
            state: row.get(2)?,
            by: row.get(3)?,
            at_ms: row.get(4)?,
        })
    }
}

impl RawLead {
    fn read(row: &rusqlite::Row<'_>) -> rusqlite::Result<RawLead> {
        Ok(RawLead {
            id: row.get(0)?,
            conversation: row.get(1)?,
            profile: row.get(2)?,
            caller: row.get(3)?,
            answers: row.get(4)?,
            complete: row.get(5)?,
            created_ms: row.get(6)?,
            state: row.get(7)?,
            state_by: row.get(8)?,
            state_ms: row.get(9)?,
            urgent: row.get(10)?,
        })
    }

    fn parse(self) -> Result<LeadRow, Error> {
        Ok(LeadRow {
            id: LeadId(self.id),
            conversation: ConversationId(self.conversation),
            profile: self.profile,
            caller: self.caller,
            answers: answers_from_json(&self.answers)?,
            complete: self.complete,
            created_ms: self.created_ms,
            state: self.state,
            state_by: self.state_by,
            state_ms: self.state_ms,
            urgent: self.urgent,
        })
    }
}

/// Which leads the dashboard lists.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct LeadFilter {
    pub profile: Option<String>,
    pub complete: Option<bool>,
    /// Only leads in this state (new, called back, won, lost).
    pub lead_state: Option<LeadState>,
    pub search: Option<String>,
    pub limit: u32,
}

#[derive(Debug, Clone, PartialEq, Eq, serde::Serialize)]
pub struct OptOutRow {
    pub number: String,
    pub source: OptOutSource,
    pub at_ms: i64,
}

/// A lead with what its summary needs from the call and the conversation.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct LeadDetail {
    pub lead: LeadRow,
    /// The modem the conversation was on (the owner's SMS leaves from it).
    pub modem: ModemId,
    /// When the call was missed (the conversation's start when no call is recorded).
    pub missed_at_ms: i64,
    /// The business number the caller dialled, when known.
    pub called: Option<String>,
}

/// A delivery whose time has come.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct DueDelivery {
    pub id: i64,
    pub lead: LeadId,
    /// `None`: the lead's summary. `Some`: a notice of this reply (an inbound message) that came
    /// after the lead.
    pub reply: Option<MessageId>,
    pub recipient: String,
    pub channel: ChannelKind,
    pub target: String,
    pub attempts: i64,
    /// When what it tells of was recorded (the lead, the reply, the state change): retries stop
    /// `notify.give_up_after_hours` after this.
    pub created_ms: i64,
    /// `Some`: a notice of this change of the lead's state (a `lead_events` row).
    pub event: Option<i64>,
}

#[derive(Debug, Clone, PartialEq, Eq, serde::Serialize)]
pub struct DeliveryRow {
    pub id: i64,
    /// `None`: the lead's summary. `Some(id)`: a notice of the reply `messages.id` = id.
    pub reply_id: Option<i64>,
    /// `Some(id)`: a notice of the state change `lead_events.id` = id.
    pub event_id: Option<i64>,
    pub recipient: String,
    pub channel: ChannelKind,
    pub target: String,
    pub state: DeliveryState,
    pub attempts: i64,
    pub last_error: Option<String>,
    pub next_attempt_ms: i64,
    pub delivered_ms: Option<i64>,
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct LeadRow {
    pub id: LeadId,
    pub conversation: ConversationId,
    pub profile: String,
    pub caller: String,
    pub answers: Answers,
    pub complete: bool,
    pub created_ms: i64,
    /// Where the business is with it, who set that and when (`None`: nobody yet).
    pub state: LeadState,
    pub state_by: Option<String>,
    pub state_ms: Option<i64>,
    /// The caller asked to be called, or said it is urgent.
    pub urgent: bool,
}

/// Whether the assistant is quiet in a conversation, and why.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Quiet {
    /// A staff member took it over (replied to the caller).
    pub owner: Option<E164>,
    /// Paused in this conversation until then (`i64::MAX`: until resumed).
    pub paused_until_ms: Option<i64>,
    /// The whole business is paused until then.
    pub business_paused_until_ms: Option<i64>,
}

impl Quiet {
    pub fn is_quiet(&self) -> bool {
        self.owner.is_some()
            || self.paused_until_ms.is_some()
            || self.business_paused_until_ms.is_some()
    }
}

/// The home page's counts for one period.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, serde::Serialize)]
pub struct HomeCounts {
    pub missed: i64,
    pub texted: i64,
    /// Texted callers who replied.
    pub replied: i64,
    pub leads: i64,
    /// Leads marked called back, won or lost, and untexted calls marked called back.
    pub called_back: i64,
    /// The median time from a missed call to its first text accepted by the network.
    pub median_ms: Option<i64>,
}

/// One change of a lead's state.
#[derive(Debug, Clone, PartialEq, Eq, serde::Serialize)]
pub struct LeadEventRow {
    pub id: i64,
    pub lead_id: i64,
    pub state: LeadState,
    pub by: String,
    pub at_ms: i64,
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct CallRow {
    pub id: CallRowId,
    pub key: String,
    pub source: CallSource,
    pub caller: Option<String>,
    pub caller_raw: String,
    pub profile: String,
    pub at_ms: i64,
    pub decision: CallDecision,
    pub reason: Option<String>,
    pub conversation: Option<ConversationId>,
}

fn bad(what: String) -> Error {
    Error::BadValue { what }
}

fn number(value: String) -> Result<E164, Error> {
    E164::parse(&value).map_err(|_| bad(format!("phone number {value:?}")))
}

fn answers_from_json(value: &str) -> Result<Answers, Error> {
    serde_json::from_str(value).map_err(|err| bad(format!("answers {value:?}: {err}")))
}

fn answers_to_json(answers: &Answers) -> String {
    // Serialising a Vec of string pairs cannot fail.
    serde_json::to_string(answers).unwrap_or_else(|_| "[]".to_string())
}

impl Tx<'_> {
    /// Rows in a table, for tests and `doctor`. `table` is one of ours, never user input.
    pub fn count_rows(&self, table: &str) -> Result<i64, Error> {
        Ok(self
            .connection
            .query_row(&format!("SELECT count(*) FROM {table}"), [], |row| {
                row.get(0)
            })?)
    }

    // --- calls -------------------------------------------------------------------------------

    /// Records a call; `None` when a call with the same key is already recorded (a repeated
    /// report of the same call).
    pub fn insert_call(&self, call: &NewCall) -> Result<Option<CallRowId>, Error> {
        let (decision, code, words) = match &call.skipped {
            None => (CallDecision::Text, None, None),
            Some((code, words)) => (
                CallDecision::Skip,
                Some(code.as_str()),
                Some(words.as_str()),
            ),
        };
        let inserted = self.connection.execute(
            "INSERT OR IGNORE INTO calls (call_key, source, caller, caller_raw, called, profile, modem, at_ms, decision, reason_code, reason)
             VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8, ?9, ?10, ?11)",
            params![
                call.key.as_str(),
                call.source,
                call.caller.as_ref().map(E164::as_str),
                call.caller_raw,
                call.called.as_ref().map(E164::as_str),
                call.profile.as_str(),
                call.modem.as_ref().map(ModemId::as_str),
                call.at_ms,
                decision,
                code,
                words
            ],
        )?;
        Ok((inserted == 1).then(|| CallRowId(self.connection.last_insert_rowid())))
    }

    pub fn set_call_conversation(
        &self,
        call: CallRowId,
        conversation: ConversationId,
    ) -> Result<(), Error> {
        self.connection.execute(
            "UPDATE calls SET conversation_id = ?2 WHERE id = ?1",
            params![call.0, conversation.0],
        )?;
        Ok(())
    }

    pub fn recent_calls(&self, limit: u32) -> Result<Vec<CallRow>, Error> {
        let mut statement = self.connection.prepare(
            "SELECT id, call_key, source, caller, caller_raw, profile, at_ms, decision, reason, conversation_id
             FROM calls ORDER BY id DESC LIMIT ?1",
        )?;
        let rows = statement.query_map([limit], call_row)?;
        Ok(rows.collect::<Result<_, _>>()?)
    }

    // --- opt-outs ------------------------------------------------------------------------------

    pub fn is_opted_out(&self, number: &E164) -> Result<bool, Error> {
        Ok(self
            .connection
            .query_row(
                "SELECT 1 FROM opt_outs WHERE number = ?1",
                [number.as_str()],
                |_| Ok(()),
            )
            .optional()?
            .is_some())
    }

    pub fn set_opt_out(
        &self,
        number: &E164,
        source: OptOutSource,
        at_ms: i64,
    ) -> Result<(), Error> {
        self.connection.execute(
            "INSERT OR IGNORE INTO opt_outs (number, at_ms, source) VALUES (?1, ?2, ?3)",
            params![number.as_str(), at_ms, source],
        )?;
        Ok(())
    }

    pub fn clear_opt_out(&self, number: &E164) -> Result<bool, Error> {
        Ok(self
            .connection
            .execute("DELETE FROM opt_outs WHERE number = ?1", [number.as_str()])?
            == 1)
    }

    // --- conversations -------------------------------------------------------------------------

    fn conversation_query(
        &self,
        sql: &str,
        param: &dyn rusqlite::ToSql,
    ) -> Result<Option<ConversationRow>, Error> {
        /// The row as SQLite has it, before its values are checked.
        struct Raw {
            id: i64,
            profile: String,
            caller: String,
            modem: String,
            state: ConversationState,
            next_question: i64,
            answers: String,
            started_ms: i64,
            updated_ms: i64,
        }
        let found = self
            .connection
            .query_row(sql, [param], |row| {
                Ok(Raw {
                    id: row.get(0)?,
                    profile: row.get(1)?,
                    caller: row.get(2)?,
                    modem: row.get(3)?,
                    state: row.get(4)?,
                    next_question: row.get(5)?,
                    answers: row.get(6)?,
                    started_ms: row.get(7)?,
                    updated_ms: row.get(8)?,
                })
            })
            .optional()?;
        let Some(raw) = found else {
            return Ok(None);
        };
        Ok(Some(ConversationRow {
            id: ConversationId(raw.id),
            profile: ProfileId::parse(&raw.profile)
                .map_err(|_| bad(format!("profile id {:?}", raw.profile)))?,
            caller: number(raw.caller)?,
            modem: ModemId::parse(&raw.modem)
                .map_err(|_| bad(format!("modem id {:?}", raw.modem)))?,
            state: raw.state,
            next_question: usize::try_from(raw.next_question).unwrap_or(0),
            answers: answers_from_json(&raw.answers)?,
            started_ms: raw.started_ms,
            updated_ms: raw.updated_ms,
        }))
    }

    /// The caller's open conversation, if any (the newest, should there be several).
    pub fn open_conversation(&self, caller: &E164) -> Result<Option<ConversationRow>, Error> {
        self.conversation_query(
            "SELECT id, profile, caller, modem, state, next_question, answers, started_ms, updated_ms
             FROM conversations WHERE caller = ?1 AND state = 'open' ORDER BY id DESC LIMIT 1",
            &caller.as_str(),
        )
    }

    /// The caller's newest conversation in any state.
    pub fn latest_conversation(&self, caller: &E164) -> Result<Option<ConversationRow>, Error> {
        self.conversation_query(
            "SELECT id, profile, caller, modem, state, next_question, answers, started_ms, updated_ms
             FROM conversations WHERE caller = ?1 ORDER BY id DESC LIMIT 1",
            &caller.as_str(),
        )
    }

    pub fn conversation(&self, id: ConversationId) -> Result<Option<ConversationRow>, Error> {
        self.conversation_query(
            "SELECT id, profile, caller, modem, state, next_question, answers, started_ms, updated_ms
             FROM conversations WHERE id = ?1",
            &id.0,
        )
    }

    /// Open conversations with no engine state: those the retired in-order engine started.
    pub fn open_conversations_without_engine_state(&self) -> Result<Vec<ConversationRow>, Error> {
        let mut statement = self.connection.prepare(
            "SELECT id FROM conversations WHERE state = 'open' AND engine_state IS NULL ORDER BY id",
        )?;
        let ids = statement
            .query_map([], |row| row.get::<_, i64>(0))?
            .collect::<Result<Vec<_>, _>>()?;
        let mut rows = Vec::new();
        for id in ids {
            if let Some(row) = self.conversation(ConversationId(id))? {
                rows.push(row);
            }
        }
        Ok(rows)
    }

    /// The engine's state of a conversation, when the engine wrote one.
    pub fn engine_state(&self, conversation: ConversationId) -> Result<Option<String>, Error> {
        Ok(self
            .connection
            .query_row(
                "SELECT engine_state FROM conversations WHERE id = ?1",
                [conversation.0],
                |row| row.get::<_, Option<String>>(0),
            )
            .optional()?
            .flatten())
    }

    pub fn set_engine_state(&self, conversation: ConversationId, state: &str) -> Result<(), Error> {
        self.connection.execute(
            "UPDATE conversations SET engine_state = ?2 WHERE id = ?1",
            params![conversation.0, state],
        )?;
        Ok(())
    }

    /// Open conversations whose last step is older than `before_ms`, with their engine state.
    pub fn quiet_conversations(
        &self,
        before_ms: i64,
    ) -> Result<Vec<(ConversationId, String, i64)>, Error> {
        let mut statement = self.connection.prepare(
            "SELECT id, engine_state, updated_ms FROM conversations
             WHERE state = 'open' AND engine_state IS NOT NULL AND updated_ms < ?1",
        )?;
        let rows = statement.query_map([before_ms], |row| {
            Ok((ConversationId(row.get(0)?), row.get(1)?, row.get(2)?))
        })?;
        Ok(rows.collect::<Result<_, _>>()?)
    }

    pub fn mark_lead_urgent(&self, lead: LeadId) -> Result<(), Error> {
        self.connection
            .execute("UPDATE leads SET urgent = 1 WHERE id = ?1", [lead.0])?;
        Ok(())
    }

    /// Conversations started since `since_ms`, on the whole box or for one profile.
    pub fn conversations_started_since(
        &self,
        profile: Option<&ProfileId>,
        since_ms: i64,
    ) -> Result<u32, Error> {
        Ok(self.connection.query_row(
            "SELECT count(*) FROM conversations WHERE started_ms >= ?1 AND (?2 IS NULL OR profile = ?2)",
            params![since_ms, profile.map(ProfileId::as_str)],
            |row| row.get(0),
        )?)
    }

    pub fn insert_conversation(
        &self,
        profile: &ProfileId,
        caller: &E164,
        modem: &ModemId,
        at_ms: i64,
    ) -> Result<ConversationId, Error> {
        self.connection.execute(
            "INSERT INTO conversations (profile, caller, modem, state, started_ms, updated_ms, iccid)
             VALUES (?1, ?2, ?3, 'open', ?4, ?4, (SELECT iccid FROM modem_sims WHERE modem = ?3))",
            params![profile.as_str(), caller.as_str(), modem.as_str(), at_ms],
        )?;
        Ok(ConversationId(self.connection.last_insert_rowid()))
    }

    pub fn update_conversation(
        &self,
        id: ConversationId,
        state: ConversationState,
        next_question: usize,
        answers: &Answers,
        at_ms: i64,
    ) -> Result<(), Error> {
        self.connection.execute(
            "UPDATE conversations SET state = ?2, next_question = ?3, answers = ?4, updated_ms = ?5 WHERE id = ?1",
            params![id.0, state.as_str(), next_question as i64, answers_to_json(answers), at_ms],
        )?;
        Ok(())
    }

    // --- messages ------------------------------------------------------------------------------

    /// Marks the caller's open conversations abandoned (a new one starts); returns how many.
    pub fn abandon_open_conversations(&self, caller: &E164, at_ms: i64) -> Result<usize, Error> {
        Ok(self.connection.execute(
            "UPDATE conversations SET state = 'abandoned', updated_ms = ?2 WHERE caller = ?1 AND state = 'open'",
            params![caller.as_str(), at_ms],
        )?)
    }

    /// What a caller's recent texts look like, to stop loops with auto-responders: texts from
    /// them since `since_ms`, how many of this conversation's texts from them read exactly
    /// `body`, and texts sent to them since `day_ms`.
    pub fn loop_signs(
        &self,
        from: &E164,
        conversation: ConversationId,
        body: &str,
        since_ms: i64,
        day_ms: i64,
    ) -> Result<crate::core::loops::Signs, Error> {
        Ok(self.connection.query_row(
            "SELECT
                (SELECT count(*) FROM messages WHERE direction = 'in' AND peer = ?1 AND created_ms >= ?4),
                (SELECT count(*) FROM messages WHERE direction = 'in' AND conversation_id = ?2 AND body = ?3),
                (SELECT count(*) FROM messages WHERE direction = 'out' AND peer = ?1 AND created_ms >= ?5
                    AND state NOT IN ('cancelled', 'failed'))",
            params![from.as_str(), conversation.0, body, since_ms, day_ms],
            |row| {
                Ok(crate::core::loops::Signs {
                    burst: row.get(0)?,
                    same_text: row.get(1)?,
                    sent_today: row.get(2)?,
                })
            },
        )?)
    }

    /// Deletes what is older than `before_ms` (the retention period): leads and their deliveries,
    /// texts (but none still to be sent), the journal, calls, and finished conversations nothing
    /// refers to any more. Opt-outs are kept: a STOP must be honoured for good. Returns how many
    /// rows went.
    pub fn forget_before(&self, before_ms: i64) -> Result<usize, Error> {
        let statements = [
            "DELETE FROM lead_deliveries WHERE lead_id IN (SELECT id FROM leads WHERE created_ms < ?1)",
            "DELETE FROM lead_events WHERE lead_id IN (SELECT id FROM leads WHERE created_ms < ?1)",
            "DELETE FROM leads WHERE created_ms < ?1",
            "DELETE FROM lead_deliveries WHERE message_id IN (SELECT id FROM messages WHERE created_ms < ?1 AND state NOT IN ('queued', 'sending'))",
            "DELETE FROM message_parts WHERE message_id IN (SELECT id FROM messages WHERE created_ms < ?1 AND state NOT IN ('queued', 'sending'))",
            "DELETE FROM messages WHERE created_ms < ?1 AND state NOT IN ('queued', 'sending')",
            "DELETE FROM journal WHERE at_ms < ?1",
            "DELETE FROM notices WHERE created_ms < ?1 AND state NOT IN ('pending', 'sending')",
            "DELETE FROM calls WHERE at_ms < ?1",
            "DELETE FROM conversations WHERE updated_ms < ?1 AND state != 'open'
               AND id NOT IN (SELECT conversation_id FROM messages WHERE conversation_id IS NOT NULL)
               AND id NOT IN (SELECT conversation_id FROM leads)
               AND id NOT IN (SELECT conversation_id FROM calls WHERE conversation_id IS NOT NULL)
               AND id NOT IN (SELECT conversation_id FROM journal WHERE conversation_id IS NOT NULL)",
        ];
        let mut gone = 0;
        for statement in statements {
            gone += self.connection.execute(statement, [before_ms])?;
        }
        Ok(gone)
    }

    /// Ends one conversation without a lead (a loop, or a caller who cannot be helped).
    pub fn abandon_conversation(
        &self,
        conversation: ConversationId,
        at_ms: i64,
    ) -> Result<(), Error> {
        self.connection.execute(
            "UPDATE conversations SET state = 'abandoned', updated_ms = ?2 WHERE id = ?1",
            params![conversation.0, at_ms],
        )?;
        Ok(())
    }

    /// Cancels every SMS still queued for `peer` (after a STOP); returns how many.
    pub fn cancel_queued(&self, peer: &E164, reason: &str, at_ms: i64) -> Result<usize, Error> {
        Ok(self.connection.execute(
            "UPDATE messages SET state = 'cancelled', error = ?2, updated_ms = ?3 WHERE direction = 'out' AND state = 'queued' AND peer = ?1",
            params![peer.as_str(), reason, at_ms],
        )?)
    }

    /// Puts an SMS in the outbox. The row exists before any modem is asked to send it.
    /// Texts waiting for a modem (queued or being sent).
    pub fn queued_count(&self, modem: &ModemId) -> Result<i64, Error> {
        Ok(self.connection.query_row(
            "SELECT count(*) FROM messages WHERE modem = ?1 AND direction = 'out' AND state IN ('queued', 'sending')",
            [modem.as_str()],
            |row| row.get(0),
        )?)
    }

    pub fn queue_sms(
        &self,
        conversation: Option<ConversationId>,
        to: &E164,
        modem: &ModemId,
        body: &str,
        parts: usize,
        at_ms: i64,
    ) -> Result<MessageId, Error> {
        self.queue_sms_held(conversation, to, modem, body, parts, at_ms, 0)
    }

    /// Queues a text that the outbox takes only from `send_after_ms` on (0: at once).
    #[allow(clippy::too_many_arguments)]
    pub fn queue_sms_held(
        &self,
        conversation: Option<ConversationId>,
        to: &E164,
        modem: &ModemId,
        body: &str,
        parts: usize,
        at_ms: i64,
        send_after_ms: i64,
    ) -> Result<MessageId, Error> {
        self.connection.execute(
            "INSERT INTO messages (conversation_id, direction, peer, modem, body, state, parts, created_ms, updated_ms, send_after_ms)
             VALUES (?1, 'out', ?2, ?3, ?4, 'queued', ?5, ?6, ?6, ?7)",
            params![conversation.map(|c| c.0), to.as_str(), modem.as_str(), body, parts as i64, at_ms, send_after_ms],
        )?;
        Ok(MessageId(self.connection.last_insert_rowid()))
    }

    /// When the first text held for `modem` becomes due, if one is held past `at_ms`.
    pub fn next_held_ms(&self, modem: &ModemId, at_ms: i64) -> Result<Option<i64>, Error> {
        Ok(self.connection.query_row(
            "SELECT min(send_after_ms) FROM messages WHERE direction = 'out' AND state = 'queued' AND modem = ?1 AND send_after_ms > ?2",
            params![modem.as_str(), at_ms],
            |row| row.get(0),
        )?)
    }

    /// Lets a conversation's held texts go now (the caller wrote first: the order must hold).
    pub fn release_held(&self, conversation: ConversationId, at_ms: i64) -> Result<usize, Error> {
        Ok(self.connection.execute(
            "UPDATE messages SET send_after_ms = 0, updated_ms = ?2 WHERE conversation_id = ?1 AND direction = 'out' AND state = 'queued' AND send_after_ms > ?2",
            params![conversation.0, at_ms],
        )?)
    }

    /// Marks a stored reply as waiting for the assistant.
    pub fn set_waiting(&self, message: MessageId) -> Result<(), Error> {
        self.connection.execute(
            "UPDATE messages SET state = 'waiting' WHERE id = ?1 AND direction = 'in'",
            [message.0],
        )?;
        Ok(())
    }

    /// Whether a reply in this conversation is still waiting for the assistant.
    pub fn has_waiting(&self, conversation: ConversationId) -> Result<bool, Error> {
        Ok(self
            .connection
            .query_row(
                "SELECT 1 FROM messages WHERE direction = 'in' AND state = 'waiting' AND conversation_id = ?1 LIMIT 1",
                [conversation.0],
                |_| Ok(()),
            )
            .optional()?
            .is_some())
    }

    /// The oldest reply of the conversation waiting for the assistant: its id, text and time.
    pub fn next_waiting(
        &self,
        conversation: ConversationId,
    ) -> Result<Option<(MessageId, String, i64)>, Error> {
        Ok(self
            .connection
            .query_row(
                "SELECT id, body, created_ms FROM messages WHERE direction = 'in' AND state = 'waiting' AND conversation_id = ?1 ORDER BY id LIMIT 1",
                [conversation.0],
                |row| Ok((MessageId(row.get(0)?), row.get(1)?, row.get(2)?)),
            )
            .optional()?)
    }

    /// Conversations with replies waiting for the assistant (after a restart).
    pub fn waiting_conversations(&self) -> Result<Vec<ConversationId>, Error> {
        let mut statement = self.connection.prepare(
            "SELECT DISTINCT conversation_id FROM messages WHERE direction = 'in' AND state = 'waiting' AND conversation_id IS NOT NULL ORDER BY conversation_id",
        )?;
        let rows = statement.query_map([], |row| Ok(ConversationId(row.get(0)?)))?;
        Ok(rows.collect::<Result<_, _>>()?)
    }

    /// Marks every reply of the conversation still waiting for the assistant as read, without an
    /// answer (the caller sent STOP after them). Returns how many.
    pub fn skip_waiting(&self, conversation: ConversationId, at_ms: i64) -> Result<usize, Error> {
        Ok(self.connection.execute(
            "UPDATE messages SET state = 'received', updated_ms = ?2 WHERE direction = 'in' AND state = 'waiting' AND conversation_id = ?1",
            params![conversation.0, at_ms],
        )?)
    }

    /// A waiting reply has been read: false when it was not waiting (already stepped).
    pub fn set_read(&self, message: MessageId, at_ms: i64) -> Result<bool, Error> {
        Ok(self.connection.execute(
            "UPDATE messages SET state = 'received', updated_ms = ?2 WHERE id = ?1 AND direction = 'in' AND state = 'waiting'",
            params![message.0, at_ms],
        )? == 1)
    }

    /// The oldest SMS for `modem` that may go at `at_ms`.
    /// The next text `modem` may send now. With `sim` (the ICCID the modem holds now), a text of
    /// a conversation that started on another SIM is left for that SIM: the caller replies to the
    /// number they were texted from.
    pub fn next_outbound(
        &self,
        modem: &ModemId,
        sim: Option<&str>,
        at_ms: i64,
    ) -> Result<Option<OutboundRow>, Error> {
        let found = self
            .connection
            .query_row(
                "SELECT id, conversation_id, peer, body, attempts FROM messages m
                 WHERE direction = 'out' AND state = 'queued' AND modem = ?1 AND send_after_ms <= ?2
                   AND (?3 IS NULL OR conversation_id IS NULL OR NOT EXISTS (
                        SELECT 1 FROM conversations c
                        WHERE c.id = m.conversation_id AND c.iccid IS NOT NULL AND c.iccid != ?3))
                 ORDER BY id LIMIT 1",
                params![modem.as_str(), at_ms, sim],
                |row| {
                    Ok((
                        row.get::<_, i64>(0)?,
                        row.get::<_, Option<i64>>(1)?,
                        row.get::<_, String>(2)?,
                        row.get::<_, String>(3)?,
                        row.get::<_, i64>(4)?,
                    ))
                },
            )
            .optional()?;
        let Some((id, conversation, peer, body, attempts)) = found else {
            return Ok(None);
        };
        Ok(Some(OutboundRow {
            id: MessageId(id),
            conversation: conversation.map(ConversationId),
            to: number(peer)?,
            modem: modem.clone(),
            body,
            attempts: u32::try_from(attempts).unwrap_or(u32::MAX),
        }))
    }

    /// Marks an SMS as being handed to the modem, counting the attempt.
    pub fn mark_sending(&self, id: MessageId, at_ms: i64) -> Result<(), Error> {
        self.connection.execute(
            "UPDATE messages SET state = 'sending', attempts = attempts + 1, updated_ms = ?2 WHERE id = ?1",
            params![id.0, at_ms],
        )?;
        Ok(())
    }

    /// Marks an SMS as accepted by the network, with the reference of each part.
    pub fn mark_sent(&self, id: MessageId, references: &[u8], at_ms: i64) -> Result<(), Error> {
        self.connection.execute(
            "UPDATE messages SET state = 'sent', error = NULL, parts = ?2, updated_ms = ?3 WHERE id = ?1",
            params![id.0, references.len().max(1) as i64, at_ms],
        )?;
        // A lead summary texted to its owner is delivered once the network took it.
        self.connection.execute(
            "UPDATE lead_deliveries SET state = 'delivered', delivered_ms = ?2, last_error = NULL, updated_ms = ?2 WHERE message_id = ?1 AND state = 'queued'",
            params![id.0, at_ms],
        )?;
        for (part, reference) in references.iter().enumerate() {
            self.connection.execute(
                "INSERT OR REPLACE INTO message_parts (message_id, part, reference, status, updated_ms, sent_ms) VALUES (?1, ?2, ?3, 'sent', ?4, ?4)",
                params![id.0, part as i64 + 1, *reference as i64, at_ms],
            )?;
        }
        Ok(())
    }

    /// Puts an SMS back in the queue after a failed attempt that may succeed later.
    pub fn mark_retry(&self, id: MessageId, error: &str, at_ms: i64) -> Result<(), Error> {
        self.connection.execute(
            "UPDATE messages SET state = 'queued', error = ?2, updated_ms = ?3 WHERE id = ?1",
            params![id.0, error, at_ms],
        )?;
        Ok(())
    }

    /// Puts an SMS back in the queue without counting the attempt: the modem was not there to try.
    pub fn mark_waiting(&self, id: MessageId, reason: &str, at_ms: i64) -> Result<(), Error> {
        self.connection.execute(
            "UPDATE messages SET state = 'queued', attempts = max(attempts - 1, 0), error = ?2, updated_ms = ?3 WHERE id = ?1",
            params![id.0, reason, at_ms],
        )?;
        Ok(())
    }

    /// Records that an SMS will not be sent, and why.
    pub fn mark_failed(&self, id: MessageId, error: &str, at_ms: i64) -> Result<(), Error> {
        self.connection.execute(
            "UPDATE messages SET state = 'failed', error = ?2, updated_ms = ?3 WHERE id = ?1",
            params![id.0, error, at_ms],
        )?;
        self.connection.execute(
            "UPDATE lead_deliveries SET state = 'failed', last_error = ?2, updated_ms = ?3 WHERE message_id = ?1 AND state = 'queued'",
            params![id.0, format!("the SMS was not sent: {error}"), at_ms],
        )?;
        Ok(())
    }

    /// At start-up: SMS that were being handed to a modem when the daemon stopped go back to the
    /// queue. Returns them, so that each can be logged.
    pub fn requeue_interrupted(&self, at_ms: i64) -> Result<Vec<MessageId>, Error> {
        let mut statement = self
            .connection
            .prepare("SELECT id FROM messages WHERE direction = 'out' AND state = 'sending'")?;
        let ids: Vec<MessageId> = statement
            .query_map([], |row| row.get(0).map(MessageId))?
            .collect::<Result<_, _>>()?;
        self.connection.execute(
            "UPDATE messages SET state = 'queued', updated_ms = ?1 WHERE direction = 'out' AND state = 'sending'",
            [at_ms],
        )?;
        Ok(ids)
    }

    /// Stores an SMS that came in; `None` when the same SMS was stored before.
    pub fn insert_inbound(&self, message: &NewInbound) -> Result<Option<MessageId>, Error> {
        let inserted = self.connection.execute(
            "INSERT OR IGNORE INTO messages (conversation_id, direction, peer, modem, body, state, dedup_key, created_ms, updated_ms)
             VALUES (?1, 'in', ?2, ?3, ?4, 'received', ?5, ?6, ?6)",
            params![
                message.conversation.map(|c| c.0),
                message.from,
                message.modem.as_str(),
                message.body,
                message.dedup_key,
                message.at_ms
            ],
        )?;
        Ok((inserted == 1).then(|| MessageId(self.connection.last_insert_rowid())))
    }

    /// Applies a delivery report to the sent part it belongs to: the newest part with this
    /// reference sent to `recipient` from `modem`. Returns the message, if one matched.
    /// Matches a status report to the part it is about: same modem, recipient and TP-MR, sent
    /// within [`REPORT_WINDOW_MS`], preferring a part still waiting for its final report (TP-MR
    /// wraps at 256, so an older part to the same number can share the reference).
    pub fn apply_delivery_report(
        &self,
        modem: &ModemId,
        recipient: &E164,
        reference: u8,
        status: PartStatus,
        status_text: &str,
        at_ms: i64,
    ) -> Result<Option<(MessageId, Option<ConversationId>)>, Error> {
        let found = self
            .connection
            .query_row(
                "SELECT p.message_id, p.part, m.conversation_id, m.parts FROM message_parts p JOIN messages m ON m.id = p.message_id
                 WHERE p.reference = ?1 AND m.peer = ?2 AND m.modem = ?3 AND m.direction = 'out' AND p.sent_ms >= ?4
                 ORDER BY p.status IN ('sent', 'pending') DESC, p.sent_ms DESC, p.message_id DESC LIMIT 1",
                params![reference as i64, recipient.as_str(), modem.as_str(), at_ms - REPORT_WINDOW_MS],
                |row| Ok((row.get::<_, i64>(0)?, row.get::<_, i64>(1)?, row.get::<_, Option<i64>>(2)?)),
            )
            .optional()?;
        let Some((message, part, conversation)) = found else {
            return Ok(None);
        };
        self.connection.execute(
            "UPDATE message_parts SET status = ?3, status_text = ?4, updated_ms = ?5 WHERE message_id = ?1 AND part = ?2",
            params![message, part, status, status_text, at_ms],
        )?;
        // The message is delivered when every part is; failed as soon as one part failed.
        let (total, delivered, failed): (i64, i64, i64) = self.connection.query_row(
            "SELECT count(*), sum(status = 'delivered'), sum(status = 'failed') FROM message_parts WHERE message_id = ?1",
            [message],
            |row| Ok((row.get(0)?, row.get::<_, Option<i64>>(1)?.unwrap_or(0), row.get::<_, Option<i64>>(2)?.unwrap_or(0))),
        )?;
        let new_state = if failed > 0 {
            Some(MessageState::Failed)
        } else if delivered == total {
            Some(MessageState::Delivered)
        } else {
            None
        };
        if let Some(state) = new_state {
            self.connection.execute(
                "UPDATE messages SET state = ?2, error = CASE WHEN ?2 = 'failed' THEN ?3 ELSE error END, updated_ms = ?4 WHERE id = ?1",
                params![message, state, status_text, at_ms],
            )?;
        }
        Ok(Some((MessageId(message), conversation.map(ConversationId))))
    }

    pub fn conversation_messages(
        &self,
        conversation: ConversationId,
    ) -> Result<Vec<MessageRow>, Error> {
        let mut statement = self.connection.prepare(
            "SELECT id, direction, peer, body, state, error, created_ms, author FROM messages WHERE conversation_id = ?1 ORDER BY id",
        )?;
        let rows = statement.query_map([conversation.0], |row| {
            Ok(MessageRow {
                id: MessageId(row.get(0)?),
                direction: row.get(1)?,
                peer: row.get(2)?,
                body: row.get(3)?,
                state: row.get(4)?,
                error: row.get(5)?,
                created_ms: row.get(6)?,
                author: row.get(7)?,
            })
        })?;
        Ok(rows.collect::<Result<_, _>>()?)
    }

    /// Outbound messages by state, for tests and status.
    pub fn count_outbound(&self, state: MessageState) -> Result<i64, Error> {
        Ok(self.connection.query_row(
            "SELECT count(*) FROM messages WHERE direction = 'out' AND state = ?1",
            [state],
            |row| row.get(0),
        )?)
    }

    // --- leads ---------------------------------------------------------------------------------

    pub fn insert_lead(
        &self,
        conversation: ConversationId,
        profile: &ProfileId,
        caller: &E164,
        answers: &Answers,
        complete: bool,
        at_ms: i64,
    ) -> Result<LeadId, Error> {
        self.connection.execute(
            "INSERT INTO leads (conversation_id, profile, caller, answers, complete, created_ms) VALUES (?1, ?2, ?3, ?4, ?5, ?6)",
            params![conversation.0, profile.as_str(), caller.as_str(), answers_to_json(answers), complete, at_ms],
        )?;
        Ok(LeadId(self.connection.last_insert_rowid()))
    }

    /// Records the intent to tell one recipient of a lead on one channel.
    pub fn insert_delivery(
        &self,
        lead: LeadId,
        recipient: &str,
        channel: ChannelKind,
        target: &str,
        at_ms: i64,
    ) -> Result<(), Error> {
        self.connection.execute(
            "INSERT OR IGNORE INTO lead_deliveries (lead_id, recipient, channel, target, state, next_attempt_ms) VALUES (?1, ?2, ?3, ?4, 'pending', ?5)",
            params![lead.0, recipient, channel, target, at_ms],
        )?;
        Ok(())
    }

    /// Records the intent to tell one recipient of a lead, on one channel, of a reply that came
    /// after the lead (`reply`, the inbound message). False when that notice exists already.
    pub fn insert_reply_delivery(
        &self,
        lead: LeadId,
        reply: MessageId,
        recipient: &str,
        channel: ChannelKind,
        target: &str,
        at_ms: i64,
    ) -> Result<bool, Error> {
        Ok(self.connection.execute(
            "INSERT OR IGNORE INTO lead_deliveries (lead_id, recipient, channel, target, state, next_attempt_ms, updated_ms, reply_id)
             VALUES (?1, ?2, ?3, ?4, 'pending', ?5, ?5, ?6)",
            params![lead.0, recipient, channel, target, at_ms, reply.0],
        )? == 1)
    }

    /// How many replies of a lead were told to its recipients from `since_ms` on.
    pub fn late_replies_told_since(&self, lead: LeadId, since_ms: i64) -> Result<i64, Error> {
        Ok(self.connection.query_row(
            "SELECT count(DISTINCT d.reply_id) FROM lead_deliveries d JOIN messages m ON m.id = d.reply_id
             WHERE d.lead_id = ?1 AND d.reply_id != 0 AND m.created_ms >= ?2",
            params![lead.0, since_ms],
            |row| row.get(0),
        )?)
    }

    /// Who wrote the texts sent in a conversation by a person (`messages.author`), each once, in
    /// the order they first wrote.
    pub fn authors_in(&self, conversation: ConversationId) -> Result<Vec<String>, Error> {
        let mut statement = self.connection.prepare(
            "SELECT author FROM messages
             WHERE conversation_id = ?1 AND direction = 'out' AND author IS NOT NULL
             GROUP BY author ORDER BY min(id)",
        )?;
        let rows = statement.query_map([conversation.0], |row| row.get(0))?;
        Ok(rows.collect::<Result<_, _>>()?)
    }

    /// The lead a conversation produced, if it did.
    pub fn lead_of_conversation(
        &self,
        conversation: ConversationId,
    ) -> Result<Option<LeadRow>, Error> {
        self.connection
            .query_row(
                &format!("SELECT {LEAD_COLUMNS} FROM leads WHERE conversation_id = ?1"),
                [conversation.0],
                RawLead::read,
            )
            .optional()?
            .map(RawLead::parse)
            .transpose()
    }

    // --- the home page -------------------------------------------------------------------------

    /// What happened from `since_ms` on, for the home page's counts.
    pub fn home_counts(&self, since_ms: i64) -> Result<HomeCounts, Error> {
        let (missed, texted): (i64, i64) = self.connection.query_row(
            "SELECT count(*), coalesce(sum(decision = 'text'), 0) FROM calls WHERE at_ms >= ?1",
            [since_ms],
            |row| Ok((row.get(0)?, row.get(1)?)),
        )?;
        let replied: i64 = self.connection.query_row(
            "SELECT count(DISTINCT c.conversation_id) FROM calls c
             JOIN messages m ON m.conversation_id = c.conversation_id AND m.direction = 'in'
             WHERE c.at_ms >= ?1 AND c.decision = 'text'",
            [since_ms],
            |row| row.get(0),
        )?;
        let (leads, called_back): (i64, i64) = self.connection.query_row(
            "SELECT count(*), coalesce(sum(state != 'new'), 0) FROM leads WHERE created_ms >= ?1",
            [since_ms],
            |row| Ok((row.get(0)?, row.get(1)?)),
        )?;
        let calls_called_back: i64 = self.connection.query_row(
            "SELECT count(*) FROM calls WHERE at_ms >= ?1 AND called_back_ms IS NOT NULL",
            [since_ms],
            |row| row.get(0),
        )?;
        let mut statement = self.connection.prepare(
            "SELECT min(p.sent_ms) - c.at_ms FROM calls c
             JOIN messages m ON m.conversation_id = c.conversation_id AND m.direction = 'out'
             JOIN message_parts p ON p.message_id = m.id
             WHERE c.decision = 'text' AND c.at_ms >= ?1 AND p.sent_ms >= c.at_ms GROUP BY c.id",
        )?;
        let mut latencies: Vec<i64> = statement
            .query_map([since_ms], |row| row.get(0))?
            .collect::<Result<_, _>>()?;
        latencies.sort_unstable();
        let median_ms = match latencies.len() {
            0 => None,
            n if n % 2 == 1 => Some(latencies[n / 2]),
            n => Some((latencies[n / 2 - 1] + latencies[n / 2]) / 2),
        };
        Ok(HomeCounts {
            missed,
            texted,
            replied,
            leads,
            called_back: called_back + calls_called_back,
            median_ms,
        })
    }

    /// When each call from `since_ms` on came and whether it was texted, oldest first (the home
    /// page's chart).
    pub fn calls_since(&self, since_ms: i64) -> Result<Vec<(i64, CallDecision)>, Error> {
        let mut statement = self
            .connection
            .prepare("SELECT at_ms, decision FROM calls WHERE at_ms >= ?1 ORDER BY at_ms")?;
        let rows = statement.query_map([since_ms], |row| Ok((row.get(0)?, row.get(1)?)))?;
        Ok(rows.collect::<Result<_, _>>()?)
    }

    /// Missed calls that got no text and have not been called back, newest first: the callers
    /// the business has to ring. `not_for` are skip reasons that need no call back (the
    /// business's own staff, a caller already in a conversation).
    pub fn calls_to_call_back(&self, not_for: &[&str], limit: u32) -> Result<Vec<CallRow>, Error> {
        let excluded = serde_json::to_string(not_for).unwrap_or_else(|_| "[]".to_string());
        let mut statement = self.connection.prepare(
            "SELECT id, call_key, source, caller, caller_raw, profile, at_ms, decision, reason, conversation_id
             FROM calls WHERE decision = 'skip' AND called_back_ms IS NULL
               AND coalesce(reason_code, '') NOT IN (SELECT value FROM json_each(?1))
             ORDER BY at_ms DESC, id DESC LIMIT ?2",
        )?;
        let rows = statement.query_map(params![excluded, limit], call_row)?;
        Ok(rows.collect::<Result<_, _>>()?)
    }

    /// Someone called a missed caller back: the call leaves the home page's list. False when no
    /// such call waits for one.
    pub fn mark_call_called_back(
        &self,
        call: CallRowId,
        by: &str,
        at_ms: i64,
    ) -> Result<bool, Error> {
        Ok(self.connection.execute(
            "UPDATE calls SET called_back_ms = ?2, called_back_by = ?3 WHERE id = ?1 AND called_back_ms IS NULL",
            params![call.0, at_ms, by],
        )? == 1)
    }

    /// Leads still to act on (new or called back), newest first.
    pub fn open_leads(&self, limit: u32) -> Result<Vec<LeadRow>, Error> {
        let mut statement = self.connection.prepare(&format!(
            "SELECT {LEAD_COLUMNS} FROM leads WHERE state IN ('new', 'called_back') ORDER BY id DESC LIMIT ?1"
        ))?;
        let rows = statement.query_map([limit], RawLead::read)?;
        rows.map(|row| row.map_err(Error::from).and_then(RawLead::parse))
            .collect()
    }

    /// The leads of `profile` made in [`from_ms`, `to_ms`), oldest first (the morning summary's
    /// day).
    pub fn leads_between(
        &self,
        profile: &str,
        from_ms: i64,
        to_ms: i64,
    ) -> Result<Vec<LeadRow>, Error> {
        let mut statement = self.connection.prepare(&format!(
            "SELECT {LEAD_COLUMNS} FROM leads WHERE profile = ?1 AND created_ms >= ?2 AND created_ms < ?3 ORDER BY id"
        ))?;
        let rows = statement.query_map(params![profile, from_ms, to_ms], RawLead::read)?;
        rows.map(|row| row.map_err(Error::from).and_then(RawLead::parse))
            .collect()
    }

    /// The leads of `profile` nobody has called back yet (state new), oldest first.
    pub fn leads_not_called_back(&self, profile: &str, limit: u32) -> Result<Vec<LeadRow>, Error> {
        let mut statement = self.connection.prepare(&format!(
            "SELECT {LEAD_COLUMNS} FROM leads WHERE profile = ?1 AND state = 'new' ORDER BY id LIMIT ?2"
        ))?;
        let rows = statement.query_map(params![profile, limit], RawLead::read)?;
        rows.map(|row| row.map_err(Error::from).and_then(RawLead::parse))
            .collect()
    }

    /// The missed calls of `profile` in [`from_ms`, `to_ms`), oldest first.
    pub fn calls_between(
        &self,
        profile: &str,
        from_ms: i64,
        to_ms: i64,
    ) -> Result<Vec<CallRow>, Error> {
        let mut statement = self.connection.prepare(
            "SELECT id, call_key, source, caller, caller_raw, profile, at_ms, decision, reason, conversation_id
             FROM calls WHERE profile = ?1 AND at_ms >= ?2 AND at_ms < ?3 ORDER BY at_ms, id",
        )?;
        let rows = statement.query_map(params![profile, from_ms, to_ms], call_row)?;
        Ok(rows.collect::<Result<_, _>>()?)
    }

    // --- the owner in the loop ------------------------------------------------------------------

    /// A staff member (`owner`, E.164) took the conversation over: the assistant stays quiet in it.
    pub fn set_owner(
        &self,
        conversation: ConversationId,
        owner: &E164,
        at_ms: i64,
    ) -> Result<(), Error> {
        self.connection.execute(
            "UPDATE conversations SET owner = ?2, owner_ms = ?3 WHERE id = ?1",
            params![conversation.0, owner.as_str(), at_ms],
        )?;
        Ok(())
    }

    /// Pauses the assistant in one conversation until `until_ms` (`i64::MAX`: until resumed), or
    /// lets it answer again (`None`, which also ends an owner's take-over).
    pub fn pause_conversation(
        &self,
        conversation: ConversationId,
        until_ms: Option<i64>,
    ) -> Result<(), Error> {
        match until_ms {
            Some(until) => self.connection.execute(
                "UPDATE conversations SET paused_until_ms = ?2 WHERE id = ?1",
                params![conversation.0, until],
            )?,
            None => self.connection.execute(
                "UPDATE conversations SET paused_until_ms = NULL, owner = NULL, owner_ms = NULL WHERE id = ?1",
                [conversation.0],
            )?,
        };
        Ok(())
    }

    /// Whether the assistant is quiet in a conversation at `at_ms`, and for whom the caller's
    /// texts are: the owner who took it over, and until when it is paused (the conversation's
    /// own pause or its business's).
    pub fn quiet(&self, conversation: ConversationId, at_ms: i64) -> Result<Quiet, Error> {
        Ok(self
            .connection
            .query_row(
                "SELECT c.owner, c.paused_until_ms, p.until_ms FROM conversations c
                 LEFT JOIN profile_pauses p ON p.profile = c.profile AND p.until_ms > ?2
                 WHERE c.id = ?1",
                params![conversation.0, at_ms],
                |row| {
                    let owner: Option<String> = row.get(0)?;
                    let paused: Option<i64> = row.get(1)?;
                    let business: Option<i64> = row.get(2)?;
                    Ok(Quiet {
                        owner: owner.and_then(|o| E164::parse(&o).ok()),
                        paused_until_ms: paused.filter(|&until| until > at_ms),
                        business_paused_until_ms: business,
                    })
                },
            )
            .optional()?
            .unwrap_or_default())
    }

    /// Pauses (or with `None`, resumes) the assistant for a whole business.
    pub fn pause_profile(
        &self,
        profile: &str,
        until_ms: Option<i64>,
        by: &str,
        at_ms: i64,
    ) -> Result<(), Error> {
        match until_ms {
            Some(until) => self.connection.execute(
                "INSERT INTO profile_pauses (profile, until_ms, by, at_ms) VALUES (?1, ?2, ?3, ?4)
                 ON CONFLICT (profile) DO UPDATE SET until_ms = ?2, by = ?3, at_ms = ?4",
                params![profile, until, by, at_ms],
            )?,
            None => self
                .connection
                .execute("DELETE FROM profile_pauses WHERE profile = ?1", [profile])?,
        };
        Ok(())
    }

    /// Until when a business's assistant is paused, if it is at `at_ms`.
    pub fn profile_paused_until(&self, profile: &str, at_ms: i64) -> Result<Option<i64>, Error> {
        Ok(self
            .connection
            .query_row(
                "SELECT until_ms FROM profile_pauses WHERE profile = ?1 AND until_ms > ?2",
                params![profile, at_ms],
                |row| row.get(0),
            )
            .optional()?)
    }

    /// Queues a text a person wrote (an owner's reply), naming them as its author.
    #[allow(clippy::too_many_arguments)]
    pub fn queue_authored_sms(
        &self,
        conversation: ConversationId,
        to: &E164,
        modem: &ModemId,
        body: &str,
        parts: usize,
        author: &str,
        at_ms: i64,
    ) -> Result<MessageId, Error> {
        let id = self.queue_sms(Some(conversation), to, modem, body, parts, at_ms)?;
        self.connection.execute(
            "UPDATE messages SET author = ?2 WHERE id = ?1",
            params![id.0, author],
        )?;
        Ok(id)
    }

    /// A text to `to` still held back on `modem` with this `author` (a call-back notice still
    /// gathering calls), and what it says so far.
    pub fn held_text(
        &self,
        to: &E164,
        modem: &ModemId,
        author: &str,
        at_ms: i64,
    ) -> Result<Option<(MessageId, String)>, Error> {
        Ok(self
            .connection
            .query_row(
                "SELECT id, body FROM messages WHERE direction = 'out' AND state = 'queued' AND peer = ?1
                   AND modem = ?2 AND author = ?3 AND send_after_ms > ?4 ORDER BY id DESC LIMIT 1",
                params![to.as_str(), modem.as_str(), author, at_ms],
                |row| Ok((MessageId(row.get(0)?), row.get(1)?)),
            )
            .optional()?)
    }

    /// Rewrites a text still queued (a notice that gathered another call).
    pub fn rewrite_queued(
        &self,
        id: MessageId,
        body: &str,
        parts: usize,
        at_ms: i64,
    ) -> Result<bool, Error> {
        Ok(self.connection.execute(
            "UPDATE messages SET body = ?2, parts = ?3, updated_ms = ?4 WHERE id = ?1 AND state = 'queued'",
            params![id.0, body, parts as i64, at_ms],
        )? == 1)
    }

    /// Names who or what wrote a queued text.
    pub fn set_author(&self, id: MessageId, author: &str) -> Result<(), Error> {
        self.connection.execute(
            "UPDATE messages SET author = ?2 WHERE id = ?1",
            params![id.0, author],
        )?;
        Ok(())
    }

    /// The lead last put before this staff phone since `since_ms`: a lead or a caller's text
    /// sent to it by SMS, or a lead whose caller it replied to.
    pub fn recent_lead_for(&self, staff: &E164, since_ms: i64) -> Result<Option<LeadId>, Error> {
        Ok(self
            .connection
            .query_row(
                "SELECT lead_id FROM (
                     SELECT lead_id, updated_ms AS at_ms FROM lead_deliveries
                      WHERE channel = 'sms' AND target = ?1 AND state IN ('queued', 'delivered') AND updated_ms >= ?2
                     UNION ALL
                     SELECT l.id, c.owner_ms FROM conversations c JOIN leads l ON l.conversation_id = c.id
                      WHERE c.owner = ?1 AND c.owner_ms >= ?2)
                 ORDER BY at_ms DESC, lead_id DESC LIMIT 1",
                params![staff.as_str(), since_ms],
                |row| row.get(0),
            )
            .optional()?
            .map(LeadId))
    }

    /// Sets a lead's state and records the change; `None` when there is no such lead, or it
    /// is in that state already (nothing changes, nobody is told).
    pub fn set_lead_state(
        &self,
        lead: LeadId,
        state: LeadState,
        by: &str,
        at_ms: i64,
    ) -> Result<Option<LeadEventRow>, Error> {
        let changed = self.connection.execute(
            "UPDATE leads SET state = ?2, state_by = ?3, state_ms = ?4 WHERE id = ?1 AND state != ?2",
            params![lead.0, state, by, at_ms],
        )?;
        if changed == 0 {
            return Ok(None);
        }
        self.connection.execute(
            "INSERT INTO lead_events (lead_id, state, by, at_ms) VALUES (?1, ?2, ?3, ?4)",
            params![lead.0, state, by, at_ms],
        )?;
        Ok(Some(LeadEventRow {
            id: self.connection.last_insert_rowid(),
            lead_id: lead.0,
            state,
            by: by.to_string(),
            at_ms,
        }))
    }

    /// Every state change of a lead, oldest first.
    pub fn lead_events(&self, lead: LeadId) -> Result<Vec<LeadEventRow>, Error> {
        let mut statement = self.connection.prepare(
            "SELECT id, lead_id, state, by, at_ms FROM lead_events WHERE lead_id = ?1 ORDER BY id",
        )?;
        let rows = statement.query_map([lead.0], LeadEventRow::read)?;
        Ok(rows.collect::<Result<_, _>>()?)
    }

    /// One state change.
    pub fn lead_event(&self, id: i64) -> Result<Option<LeadEventRow>, Error> {
        Ok(self
            .connection
            .query_row(
                "SELECT id, lead_id, state, by, at_ms FROM lead_events WHERE id = ?1",
                [id],
                LeadEventRow::read,
            )
            .optional()?)
    }

    /// Records the intent to tell one recipient of a lead, on one channel, of a change of its
    /// state (`event`). False when that notice exists already.
    pub fn insert_event_delivery(
        &self,
        lead: LeadId,
        event: i64,
        recipient: &str,
        channel: ChannelKind,
        target: &str,
        at_ms: i64,
    ) -> Result<bool, Error> {
        Ok(self.connection.execute(
            "INSERT OR IGNORE INTO lead_deliveries (lead_id, recipient, channel, target, state, next_attempt_ms, updated_ms, event_id)
             VALUES (?1, ?2, ?3, ?4, 'pending', ?5, ?5, ?6)",
            params![lead.0, recipient, channel, target, at_ms, event],
        )? == 1)
    }

    /// One message, in or out.
    pub fn message(&self, id: MessageId) -> Result<Option<MessageRow>, Error> {
        Ok(self
            .connection
            .query_row(
                "SELECT id, direction, peer, body, state, error, created_ms, author FROM messages WHERE id = ?1",
                [id.0],
                |row| {
                    Ok(MessageRow {
                        id: MessageId(row.get(0)?),
                        direction: row.get(1)?,
                        peer: row.get(2)?,
                        body: row.get(3)?,
                        state: row.get(4)?,
                        error: row.get(5)?,
                        created_ms: row.get(6)?,
                        author: row.get(7)?,
                    })
                },
            )
            .optional()?)
    }

    /// The newest leads, all profiles.
    pub fn leads(&self, limit: u32) -> Result<Vec<LeadRow>, Error> {
        self.find_leads(&LeadFilter {
            limit,
            ..LeadFilter::default()
        })
    }

    pub fn lead(&self, id: LeadId) -> Result<Option<LeadDetail>, Error> {
        let found = self
            .connection
            .query_row(
                "SELECT l.id, l.conversation_id, l.profile, l.caller, l.answers, l.complete, l.created_ms,
                        l.state, l.state_by, l.state_ms, l.urgent, c.modem, c.started_ms, k.at_ms, k.called
                 FROM leads l JOIN conversations c ON c.id = l.conversation_id
                 LEFT JOIN calls k ON k.id = (SELECT min(id) FROM calls WHERE conversation_id = l.conversation_id)
                 WHERE l.id = ?1",
                [id.0],
                |row| {
                    Ok((
                        RawLead::read(row)?,
                        (
                            row.get::<_, String>(11)?,
                            row.get::<_, i64>(12)?,
                            row.get::<_, Option<i64>>(13)?,
                            row.get::<_, Option<String>>(14)?,
                        ),
                    ))
                },
            )
            .optional()?;
        let Some((lead, (modem, started_ms, called_at, called))) = found else {
            return Ok(None);
        };
        Ok(Some(LeadDetail {
            lead: lead.parse()?,
            modem: ModemId::parse(&modem).map_err(|_| Error::BadValue {
                what: format!("modem id {modem:?}"),
            })?,
            missed_at_ms: called_at.unwrap_or(started_ms),
            called,
        }))
    }

    // --- lead deliveries -----------------------------------------------------------------------

    /// A per-box setting, if it has been made.
    pub fn setting(&self, key: &str) -> Result<Option<Vec<u8>>, Error> {
        Ok(self
            .connection
            .query_row("SELECT value FROM settings WHERE key = ?1", [key], |row| {
                row.get(0)
            })
            .optional()?)
    }

    /// Sets a per-box setting, replacing what was there.
    pub fn set_setting(&self, key: &str, value: &[u8]) -> Result<(), Error> {
        self.connection.execute(
            "INSERT INTO settings (key, value) VALUES (?1, ?2) ON CONFLICT(key) DO UPDATE SET value = excluded.value",
            params![key, value],
        )?;
        Ok(())
    }

    /// Removes a per-box setting (a login link once used).
    pub fn delete_setting(&self, key: &str) -> Result<(), Error> {
        self.connection
            .execute("DELETE FROM settings WHERE key = ?1", [key])?;
        Ok(())
    }

    /// A per-box secret, created on first use from `candidate` (fresh random bytes).
    pub fn setting_or_insert(&self, key: &str, candidate: &[u8]) -> Result<Vec<u8>, Error> {
        self.connection.execute(
            "INSERT OR IGNORE INTO settings (key, value) VALUES (?1, ?2)",
            params![key, candidate],
        )?;
        Ok(self.connection.query_row(
            "SELECT value FROM settings WHERE key = ?1",
            [key],
            |row| row.get(0),
        )?)
    }

    /// At start-up: an attempt in flight when the daemon stopped is made again, and every pending
    /// delivery is tried now rather than at the end of its back-off (a restart is often the fix).
    pub fn restart_deliveries(&self, at_ms: i64) -> Result<usize, Error> {
        Ok(self.connection.execute(
            "UPDATE lead_deliveries SET state = 'pending', next_attempt_ms = min(next_attempt_ms, ?1), updated_ms = ?1 WHERE state IN ('pending', 'sending')",
            [at_ms],
        )?)
    }

    /// Deliveries whose time has come, oldest first.
    pub fn due_deliveries(&self, at_ms: i64, limit: u32) -> Result<Vec<DueDelivery>, Error> {
        let mut statement = self.connection.prepare(
            "SELECT d.id, d.lead_id, d.reply_id, d.recipient, d.channel, d.target, d.attempts,
                    CASE WHEN d.event_id != 0 THEN coalesce(e.at_ms, l.created_ms)
                         WHEN d.reply_id = 0 THEN l.created_ms ELSE coalesce(m.created_ms, l.created_ms) END,
                    d.event_id
             FROM lead_deliveries d JOIN leads l ON l.id = d.lead_id
             LEFT JOIN messages m ON d.reply_id != 0 AND m.id = d.reply_id
             LEFT JOIN lead_events e ON d.event_id != 0 AND e.id = d.event_id
             WHERE d.state = 'pending' AND d.next_attempt_ms <= ?1 ORDER BY d.next_attempt_ms, d.id LIMIT ?2",
        )?;
        let rows = statement.query_map(params![at_ms, limit], |row| {
            let reply: i64 = row.get(2)?;
            Ok(DueDelivery {
                id: row.get(0)?,
                lead: LeadId(row.get(1)?),
                reply: (reply != 0).then_some(MessageId(reply)),
                recipient: row.get(3)?,
                channel: row.get(4)?,
                target: row.get(5)?,
                attempts: row.get(6)?,
                created_ms: row.get(7)?,
                event: Some(row.get::<_, i64>(8)?).filter(|&event| event != 0),
            })
        })?;
        Ok(rows.collect::<Result<_, _>>()?)
    }

    /// When the next pending delivery is due.
    pub fn next_delivery_ms(&self) -> Result<Option<i64>, Error> {
        Ok(self.connection.query_row(
            "SELECT min(next_attempt_ms) FROM lead_deliveries WHERE state = 'pending'",
            [],
            |row| row.get(0),
        )?)
    }

    /// Takes a due delivery for an attempt: false when it is no longer pending.
    pub fn claim_delivery(&self, id: i64, at_ms: i64) -> Result<bool, Error> {
        Ok(self.connection.execute(
            "UPDATE lead_deliveries SET state = 'sending', attempts = attempts + 1, updated_ms = ?2 WHERE id = ?1 AND state = 'pending'",
            params![id, at_ms],
        )? == 1)
    }

    pub fn delivery_delivered(
        &self,
        id: i64,
        external_id: Option<&str>,
        at_ms: i64,
    ) -> Result<(), Error> {
        self.connection.execute(
            "UPDATE lead_deliveries SET state = 'delivered', delivered_ms = ?3, external_id = ?2, last_error = NULL, updated_ms = ?3 WHERE id = ?1",
            params![id, external_id, at_ms],
        )?;
        Ok(())
    }

    /// A failed attempt to try again at `next_ms`; `counted` false gives the attempt back (the
    /// channel is not configured: nothing was tried).
    pub fn delivery_retry(
        &self,
        id: i64,
        error: &str,
        next_ms: i64,
        counted: bool,
        at_ms: i64,
    ) -> Result<(), Error> {
        self.connection.execute(
            "UPDATE lead_deliveries SET state = 'pending', last_error = ?2, next_attempt_ms = ?3,
                    attempts = CASE WHEN ?4 THEN attempts ELSE max(attempts - 1, 0) END, updated_ms = ?5
             WHERE id = ?1",
            params![id, error, next_ms, counted, at_ms],
        )?;
        Ok(())
    }

    pub fn delivery_failed(&self, id: i64, error: &str, at_ms: i64) -> Result<(), Error> {
        self.connection.execute(
            "UPDATE lead_deliveries SET state = 'failed', last_error = ?2, updated_ms = ?3 WHERE id = ?1",
            params![id, error, at_ms],
        )?;
        Ok(())
    }

    /// The summary for the owner's phone is in the outbox as `message`; the delivery follows it.
    pub fn delivery_queued(&self, id: i64, message: MessageId, at_ms: i64) -> Result<(), Error> {
        self.connection.execute(
            "UPDATE lead_deliveries SET state = 'queued', message_id = ?2, updated_ms = ?3 WHERE id = ?1",
            params![id, message.0, at_ms],
        )?;
        Ok(())
    }

    /// Every delivery of a lead: its summary's, then the notices of later replies, each in the
    /// order recorded.
    pub fn deliveries(&self, lead: LeadId) -> Result<Vec<DeliveryRow>, Error> {
        let mut statement = self.connection.prepare(
            "SELECT id, reply_id, recipient, channel, target, state, attempts, last_error, next_attempt_ms, delivered_ms, event_id
             FROM lead_deliveries WHERE lead_id = ?1 ORDER BY event_id != 0, reply_id, id",
        )?;
        let rows = statement.query_map([lead.0], |row| {
            let reply: i64 = row.get(1)?;
            Ok(DeliveryRow {
                id: row.get(0)?,
                reply_id: (reply != 0).then_some(reply),
                event_id: Some(row.get::<_, i64>(10)?).filter(|&event| event != 0),
                recipient: row.get(2)?,
                channel: row.get(3)?,
                target: row.get(4)?,
                state: row.get(5)?,
                attempts: row.get(6)?,
                last_error: row.get(7)?,
                next_attempt_ms: row.get(8)?,
                delivered_ms: row.get(9)?,
            })
        })?;
        Ok(rows.collect::<Result<_, _>>()?)
    }

    /// Sends every delivery of a lead again from the start (`textback leads resend`): its summary
    /// and the notices of replies that came after it.
    pub fn resend_lead(&self, lead: LeadId, at_ms: i64) -> Result<usize, Error> {
        Ok(self.connection.execute(
            "UPDATE lead_deliveries SET state = 'pending', attempts = 0, last_error = NULL, next_attempt_ms = ?2,
                    delivered_ms = NULL, message_id = NULL, external_id = NULL, updated_ms = ?2
             WHERE lead_id = ?1",
            params![lead.0, at_ms],
        )?)
    }

    // --- dashboard ---------------------------------------------------------------------------

    /// Leads for the dashboard, newest first: of one profile, complete or not, and matching a
    /// search in the number or the answers (the caller's name among them).
    pub fn find_leads(&self, filter: &LeadFilter) -> Result<Vec<LeadRow>, Error> {
        let complete = match filter.complete {
            Some(true) => 1,
            Some(false) => 0,
            None => -1,
        };
        let search = filter
            .search
            .as_deref()
            .map(|s| format!("%{}%", s.replace(['%', '_'], "")));
        let mut statement = self.connection.prepare(&format!(
            "SELECT {LEAD_COLUMNS} FROM leads
             WHERE (?1 IS NULL OR profile = ?1) AND (?2 < 0 OR complete = ?2)
               AND (?3 IS NULL OR caller LIKE ?3 OR answers LIKE ?3)
               AND (?5 IS NULL OR state = ?5)
             ORDER BY id DESC LIMIT ?4"
        ))?;
        let rows = statement.query_map(
            params![
                filter.profile,
                complete,
                search,
                filter.limit,
                filter.lead_state
            ],
            RawLead::read,
        )?;
        rows.map(|row| row.map_err(Error::from).and_then(RawLead::parse))
            .collect()
    }

    /// Numbers that opted out, newest first.
    pub fn opt_outs(&self) -> Result<Vec<OptOutRow>, Error> {
        let mut statement = self
            .connection
            .prepare("SELECT number, source, at_ms FROM opt_outs ORDER BY at_ms DESC")?;
        let rows = statement.query_map([], |row| {
            Ok(OptOutRow {
                number: row.get(0)?,
                source: row.get(1)?,
                at_ms: row.get(2)?,
            })
        })?;
        Ok(rows.collect::<Result<_, _>>()?)
    }

    /// Counts for /metrics: (kind, label, count) rows, e.g. ("calls", "text", 3).
    pub fn metric_counts(&self) -> Result<Vec<(String, String, i64)>, Error> {
        let mut statement = self.connection.prepare(
            "SELECT 'calls', decision, count(*) FROM calls GROUP BY decision
             UNION ALL SELECT 'sms_out', state, count(*) FROM messages WHERE direction = 'out' GROUP BY state
             UNION ALL SELECT 'sms_in', 'received', count(*) FROM messages WHERE direction = 'in'
             UNION ALL SELECT 'leads', CASE complete WHEN 1 THEN 'complete' ELSE 'incomplete' END, count(*) FROM leads GROUP BY complete
             UNION ALL SELECT 'deliveries', channel || ':' || state, count(*) FROM lead_deliveries GROUP BY channel, state
             UNION ALL SELECT 'notices', kind || ':' || channel || ':' || state, count(*) FROM notices GROUP BY kind, channel, state
             UNION ALL SELECT 'queued', modem, count(*) FROM messages WHERE direction = 'out' AND state IN ('queued', 'sending') GROUP BY modem",
        )?;
        let rows = statement.query_map([], |row| Ok((row.get(0)?, row.get(1)?, row.get(2)?)))?;
        Ok(rows.collect::<Result<_, _>>()?)
    }

    /// For each texted call, milliseconds from the call to its first text being accepted by the
    /// network.
    pub fn first_text_latencies(&self) -> Result<Vec<i64>, Error> {
        let mut statement = self.connection.prepare(
            "SELECT min(p.sent_ms) - c.at_ms FROM calls c
             JOIN messages m ON m.conversation_id = c.conversation_id AND m.direction = 'out'
             JOIN message_parts p ON p.message_id = m.id
             WHERE c.decision = 'text' AND p.sent_ms >= c.at_ms GROUP BY c.id",
        )?;
        let rows = statement.query_map([], |row| row.get(0))?;
        Ok(rows.collect::<Result<_, _>>()?)
    }

    // --- multipart fragments -----------------------------------------------------------------

    /// Keeps one part of a multipart SMS (a repeated part is ignored), and returns every part of
    /// that message held so far, in order.
    pub fn add_fragment(&self, fragment: &Fragment<'_>) -> Result<Vec<(u8, String)>, Error> {
        self.connection.execute(
            "INSERT OR IGNORE INTO sms_fragments (modem, sender, reference, total, sequence, body, received_ms) VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7)",
            params![
                fragment.modem.as_str(),
                fragment.sender,
                fragment.reference as i64,
                fragment.total as i64,
                fragment.sequence as i64,
                fragment.body,
                fragment.at_ms
            ],
        )?;
        self.fragments(&FragmentGroup {
            modem: fragment.modem.clone(),
            sender: fragment.sender.to_string(),
            reference: fragment.reference,
            total: fragment.total,
        })
    }

    /// Multipart messages with a part older than `before_ms` still waiting for the others.
    pub fn stale_fragment_groups(&self, before_ms: i64) -> Result<Vec<FragmentGroup>, Error> {
        let mut statement = self.connection.prepare(
            "SELECT modem, sender, reference, total FROM sms_fragments GROUP BY modem, sender, reference, total HAVING min(received_ms) < ?1",
        )?;
        let rows = statement.query_map([before_ms], |row| {
            Ok((
                row.get::<_, String>(0)?,
                row.get::<_, String>(1)?,
                row.get::<_, u16>(2)?,
                row.get::<_, u8>(3)?,
            ))
        })?;
        let mut groups = Vec::new();
        for row in rows {
            let (modem, sender, reference, total) = row?;
            groups.push(FragmentGroup {
                modem: ModemId::parse(&modem).map_err(|_| bad(format!("modem id {modem:?}")))?,
                sender,
                reference,
                total,
            });
        }
        Ok(groups)
    }

    /// The parts held of one multipart message, in order.
    pub fn fragments(&self, group: &FragmentGroup) -> Result<Vec<(u8, String)>, Error> {
        let mut statement = self.connection.prepare(
            "SELECT sequence, body FROM sms_fragments WHERE modem = ?1 AND sender = ?2 AND reference = ?3 AND total = ?4 ORDER BY sequence",
        )?;
        let rows = statement.query_map(
            params![
                group.modem.as_str(),
                group.sender,
                group.reference as i64,
                group.total as i64
            ],
            |row| Ok((row.get::<_, u8>(0)?, row.get::<_, String>(1)?)),
        )?;
        Ok(rows.collect::<Result<_, _>>()?)
    }

    /// Forgets the parts of a message once it is whole and stored.
    pub fn remove_fragments(
        &self,
        modem: &ModemId,
        sender: &str,
        reference: u16,
        total: u8,
    ) -> Result<(), Error> {
        self.connection.execute(
            "DELETE FROM sms_fragments WHERE modem = ?1 AND sender = ?2 AND reference = ?3 AND total = ?4",
            params![modem.as_str(), sender, reference as i64, total as i64],
        )?;
        Ok(())
    }

    // --- journal -------------------------------------------------------------------------------

    /// Notes one step of a call's way through the system.
    pub fn journal(
        &self,
        call: Option<CallRowId>,
        conversation: Option<ConversationId>,
        step: JournalStep,
        detail: &str,
        at_ms: i64,
    ) -> Result<(), Error> {
        self.connection.execute(
            "INSERT INTO journal (at_ms, call_id, conversation_id, step, detail) VALUES (?1, ?2, ?3, ?4, ?5)",
            params![at_ms, call.map(|c| c.0), conversation.map(|c| c.0), step, detail],
        )?;
        Ok(())
    }

    /// Journal entries after `after_id`, oldest first.
    pub fn journal_since(&self, after_id: i64) -> Result<Vec<JournalRow>, Error> {
        let mut statement = self.connection.prepare(
            "SELECT id, at_ms, call_id, conversation_id, step, detail FROM journal WHERE id > ?1 ORDER BY id LIMIT 500",
        )?;
        let rows = statement.query_map([after_id], |row| {
            Ok(JournalRow {
                id: row.get(0)?,
                at_ms: row.get(1)?,
                call_id: row.get(2)?,
                conversation_id: row.get(3)?,
                step: row.get(4)?,
                detail: row.get(5)?,
            })
        })?;
        Ok(rows.collect::<Result<_, _>>()?)
    }

    /// The id of the newest journal entry (0 when empty).
    pub fn journal_head(&self) -> Result<i64, Error> {
        Ok(self
            .connection
            .query_row("SELECT coalesce(max(id), 0) FROM journal", [], |row| {
                row.get(0)
            })?)
    }
}

/// A `calls` row read in the column order `id, call_key, source, caller, caller_raw, profile,
/// at_ms, decision, reason, conversation_id`.
fn call_row(row: &rusqlite::Row<'_>) -> rusqlite::Result<CallRow> {
    Ok(CallRow {
        id: CallRowId(row.get(0)?),
        key: row.get(1)?,
        source: row.get(2)?,
        caller: row.get(3)?,
        caller_raw: row.get(4)?,
        profile: row.get(5)?,
        at_ms: row.get(6)?,
        decision: row.get(7)?,
        reason: row.get(8)?,
        conversation: row.get::<_, Option<i64>>(9)?.map(ConversationId),
    })
}
