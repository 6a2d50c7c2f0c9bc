//! The periodic jobs: callers gone quiet, multipart texts that lost a part, retention, and the
//! conversations the retired in-order engine left open.

use std::sync::Arc;

use chrono::{DateTime, Utc};
use tracing::{info, warn};

use crate::config::{Config, Profile};
use crate::core::conversation::{self as engine, Conversation};
use crate::domain::JournalStep;
use crate::store::{self, ConversationRow, Store};

use super::*;

/// The engine's state for a conversation the retired in-order engine started.
pub(super) fn in_order_state(
    profile: &Profile,
    row: &ConversationRow,
) -> engine::ConversationState {
    let opened_at = DateTime::<Utc>::from_timestamp_millis(row.started_ms).unwrap_or_default();
    engine::ConversationState::from_in_order(
        &profile.dialogue,
        &row.caller,
        &row.answers,
        row.next_question,
        opened_at,
    )
}

/// Moves the conversations the retired in-order engine left open to the current engine: each
/// gets the engine's state built from its answers, so that replies, silence and leads go the one
/// way. Run once at start-up; a no-op when there are none. Returns how many were moved.
pub async fn adopt_in_order_conversations(
    store: &Store,
    config: Arc<Config>,
    now: DateTime<Utc>,
) -> Result<usize, store::Error> {
    store
        .run(move |tx| {
            let mut moved = 0;
            for row in tx.open_conversations_without_engine_state()? {
                let Some(profile) = config.profile(&row.profile) else {
                    warn!(conversation_id = %row.id, profile = %row.profile, "a conversation of the retired engine belongs to a profile no longer in the config; left as it is");
                    continue;
                };
                let state = in_order_state(profile, &row);
                let json = serde_json::to_string(&state).map_err(|err| store::Error::BadValue {
                    what: format!("conversation state: {err}"),
                })?;
                tx.set_engine_state(row.id, &json)?;
                tx.journal(
                    None,
                    Some(row.id),
                    JournalStep::Note,
                    "moved from the retired in-order engine to the conversation engine",
                    now.timestamp_millis(),
                )?;
                moved += 1;
            }
            Ok(moved)
        })
        .await
}

/// Deletes calls, transcripts and leads older than `storage.retention_days`.
pub async fn forget_old(
    store: &Store,
    config: Arc<Config>,
    at: DateTime<Utc>,
) -> Result<usize, store::Error> {
    let before = at.timestamp_millis() - config.storage.retention.as_millis() as i64;
    let gone = store.run(move |tx| tx.forget_before(before)).await?;
    if gone > 0 {
        info!(
            rows = gone,
            "deleted records older than storage.retention_days"
        );
    }
    Ok(gone)
}

/// Conversations the caller has gone quiet in for the profile's `silence_minutes`: the lead goes
/// out with what there is, marked incomplete.
pub async fn quiet_conversations(
    store: &Store,
    config: Arc<Config>,
    at: DateTime<Utc>,
) -> Result<After, store::Error> {
    store
        .run(move |tx| {
            let now = at.timestamp_millis();
            let Some(shortest) = config
                .profiles
                .iter()
                .map(|p| p.dialogue.silence_minutes)
                .min()
            else {
                return Ok(After::default());
            };
            let mut after = After::default();
            for (id, json, updated_ms) in tx.quiet_conversations(now - i64::from(shortest) * 60_000)? {
                // A reply waiting for the assistant: the caller is not quiet.
                if tx.has_waiting(id)? {
                    continue;
                }
                let Some(row) = tx.conversation(id)? else { continue };
                let Some(profile) = config.profile(&row.profile) else { continue };
                let minutes = ((now - updated_ms) / 60_000).max(0) as u32;
                if minutes < profile.dialogue.silence_minutes {
                    continue;
                }
                let Ok(state) = serde_json::from_str::<engine::ConversationState>(&json) else {
                    warn!(conversation_id = %id, "the conversation's saved state cannot be read; left as it is");
                    continue;
                };
                let (next, outcomes) = Conversation::on_silence(&profile.dialogue, &state, minutes);
                if next == state && outcomes.is_empty() {
                    continue;
                }
                info!(conversation_id = %id, minutes, "the caller went quiet; the lead goes out with what there is");
                apply_engine(
                    tx,
                    profile,
                    id,
                    &row.caller,
                    &row.modem,
                    &next,
                    outcomes,
                    None,
                    now,
                    0,
                )?;
                after.wake.push(row.modem.clone());
            }
            Ok(after)
        })
        .await
}

/// Delivers multipart SMS whose parts have waited longer than [`FRAGMENT_TIMEOUT_MS`] with the
/// parts that arrived, "[…]" marking each missing one.
pub async fn expire_fragments(
    store: &Store,
    config: Arc<Config>,
    now: DateTime<Utc>,
) -> Result<After, store::Error> {
    store
        .run(move |tx| {
            let now = now.timestamp_millis();
            let mut after = After::default();
            for group in tx.stale_fragment_groups(now - FRAGMENT_TIMEOUT_MS)? {
                let parts = tx.fragments(&group)?;
                let mut text = String::new();
                for sequence in 1..=group.total {
                    match parts.iter().find(|(s, _)| *s == sequence) {
                        Some((_, body)) => text.push_str(body),
                        None => text.push_str("[…]"),
                    }
                }
                let arrived: Vec<String> = parts.iter().map(|(s, _)| s.to_string()).collect();
                tx.remove_fragments(&group.modem, &group.sender, group.reference, group.total)?;
                warn!(modem = %group.modem, have = parts.len(), of = group.total, "multipart SMS incomplete after the wait; kept with what arrived");
                tx.journal(
                    None,
                    None,
                    JournalStep::Incomplete,
                    &format!(
                        "a {}-part SMS from {} lost parts: only part(s) {} arrived",
                        group.total,
                        group.sender,
                        arrived.join(", ")
                    ),
                    now,
                )?;
                let dedup_key = format!("{}|{}|{}|partial|{text}", group.sender, group.reference, group.total);
                let done = text_received(tx, &config, &group.modem, &group.sender, &text, dedup_key, now)?;
                after.wake.extend(done.wake);
                after.think.extend(done.think);
            }
            Ok(after)
        })
        .await
}
