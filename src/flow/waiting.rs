//! Replies that wait for the local model: which is next, and answering one with what the model
//! read.

use std::sync::Arc;

use chrono::{DateTime, Utc};

use crate::config::Config;
use crate::core::conversation::{self as engine};
use crate::domain::JournalStep;
use crate::domain::{ConversationId, MessageId};
use crate::domain::{ConversationState, Direction, MessageState};
use crate::store::{self, Store, Tx};

use super::*;

/// A reply waiting for the assistant, with what the model needs to read it.
#[derive(Debug, Clone)]
pub struct WaitingReply {
    pub conversation: ConversationId,
    pub message: MessageId,
    pub text: String,
    pub at: DateTime<Utc>,
    pub profile: crate::domain::ProfileId,
    /// The conversation before this reply, oldest first: (from the caller, text).
    pub so_far: Vec<(bool, String)>,
    /// Whether a model may help with it: the conversation is open with the engine's state, and
    /// the reply is not a keyword (STOP, HELP, START are the engine's alone).
    pub for_model: bool,
    /// The engine's state before this reply (for [`crate::core::proposal::model_can_help`]).
    pub state: Option<engine::ConversationState>,
}

/// The oldest reply of `conversation` waiting for the assistant.
pub async fn next_waiting(
    store: &Store,
    conversation: ConversationId,
) -> Result<Option<WaitingReply>, store::Error> {
    store
        .run(move |tx| {
            let Some((message, text, at_ms)) = tx.next_waiting(conversation)? else {
                return Ok(None);
            };
            let Some(row) = tx.conversation(conversation)? else {
                return Ok(None);
            };
            let so_far = tx
                .conversation_messages(conversation)?
                .into_iter()
                .filter(|m| m.id < message && m.state != MessageState::Cancelled)
                .map(|m| (m.direction == Direction::In, m.body))
                .collect();
            let state = tx
                .engine_state(conversation)?
                .and_then(|json| serde_json::from_str::<engine::ConversationState>(&json).ok());
            let for_model = row.state == ConversationState::Open
                && state.is_some()
                && crate::core::keywords::keyword(&text).is_none();
            Ok(Some(WaitingReply {
                conversation,
                message,
                text,
                at: DateTime::<Utc>::from_timestamp_millis(at_ms).unwrap_or_else(Utc::now),
                profile: row.profile,
                so_far,
                for_model,
                state,
            }))
        })
        .await
}

pub use crate::core::proposal::ModelRead;

/// Answers a waiting reply: the built-in engine, combined with the model's proposal once it has
/// passed the checks; then the reply is marked read, all in one transaction. A reply already
/// answered (stepped twice after a restart) is left alone.
pub async fn step_waiting(
    store: &Store,
    config: Arc<Config>,
    waiting: WaitingReply,
    read: ModelRead,
    now: DateTime<Utc>,
) -> Result<After, store::Error> {
    store
        .run(move |tx| step_waiting_tx(tx, &config, &waiting, read, now))
        .await
}

fn step_waiting_tx(
    tx: &Tx<'_>,
    config: &Config,
    waiting: &WaitingReply,
    read: ModelRead,
    now: DateTime<Utc>,
) -> Result<After, store::Error> {
    let now = now.timestamp_millis().max(waiting.at.timestamp_millis());
    if !tx.set_read(waiting.message, now)? {
        return Ok(After::default());
    }
    let Some(row) = tx.conversation(waiting.conversation)? else {
        return Ok(After::default());
    };
    let text = waiting.text.as_str();
    let profile = config.profile(&row.profile);
    let state = match tx.engine_state(row.id)? {
        Some(json) => serde_json::from_str::<engine::ConversationState>(&json).ok(),
        None => None,
    };
    let (Some(profile), Some(state), ConversationState::Open) = (profile, state, row.state) else {
        // Closed while the reply waited (an earlier reply finished it), or not the engine's: the
        // reply is handled as one after the end.
        return keyword_outside_conversation(
            tx,
            config,
            &Inbound {
                id: waiting.message,
                from: &row.caller,
                modem: &row.modem,
                text,
            },
            Some(&row),
            now,
        );
    };
    let options = profile
        .llm
        .as_ref()
        .map(|llm| llm.combine.clone())
        .unwrap_or_default();
    let earlier: Vec<&str> = waiting
        .so_far
        .iter()
        .filter(|(from_caller, _)| *from_caller)
        .map(|(_, text)| text.as_str())
        .collect();
    let crate::core::proposal::Decided { combined, note, .. } = crate::core::proposal::decide(
        &profile.dialogue,
        &state,
        text,
        &earlier,
        waiting.at,
        read,
        &options,
    );
    if let Some(note) = note {
        tx.journal(None, Some(row.id), JournalStep::Model, &note, now)?;
    }
    if combined.phrased {
        tx.journal(
            None,
            Some(row.id),
            JournalStep::Model,
            "the model's words were used before the next question",
            now,
        )?;
    }
    apply_engine(
        tx,
        profile,
        row.id,
        &row.caller,
        &row.modem,
        &combined.state,
        combined.outcomes,
        None,
        now,
        0,
    )?;
    Ok(After {
        wake: vec![row.modem],
        ..After::default()
    })
}
