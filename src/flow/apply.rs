//! The engine's decision carried out: its state stored, its texts queued, an opt-out or a lead
//! recorded, each step journalled.

use crate::codec::pdu::{self};
use crate::config::Profile;
use crate::core::conversation::{self as engine};
use crate::domain::JournalStep;
use crate::domain::{CallRowId, ConversationId, E164, ModemId};
use crate::domain::{ConversationState, OptOutSource};
use crate::store::{self, Tx};

use super::*;

/// Stores the engine's state and carries out its outcomes: texts queued, an opt-out or opt-in
/// recorded, a lead created, notes in the journal.
#[allow(clippy::too_many_arguments)]
pub(super) fn apply_engine(
    tx: &Tx<'_>,
    profile: &Profile,
    conversation: ConversationId,
    caller: &E164,
    modem: &ModemId,
    state: &engine::ConversationState,
    outcomes: Vec<engine::Outcome>,
    call_row: Option<CallRowId>,
    now: i64,
    send_after: i64,
) -> Result<(), store::Error> {
    let db_state = match state.status {
        engine::Status::Open => ConversationState::Open,
        engine::Status::OptedOut => ConversationState::OptedOut,
        engine::Status::Completed
        | engine::Status::CallRequested
        | engine::Status::TimedOut
        | engine::Status::Closed => ConversationState::Completed,
    };
    // The answers in the order the profile asks, as leads and the dashboard show them.
    let answers: store::Answers = profile
        .dialogue
        .questions
        .iter()
        .filter_map(|q| {
            state
                .slots
                .get(&q.id)
                .map(|slot| (q.id.clone(), slot.value.clone()))
        })
        .collect();
    tx.update_conversation(conversation, db_state, state.turns as usize, &answers, now)?;
    let json = serde_json::to_string(state).map_err(|err| store::Error::BadValue {
        what: format!("conversation state: {err}"),
    })?;
    tx.set_engine_state(conversation, &json)?;
    if outcomes.contains(&engine::Outcome::OptOut) {
        // Nothing queued earlier (the next question, say) may follow the confirmation.
        tx.cancel_queued(caller, "the caller opted out (STOP)", now)?;
    }
    for outcome in outcomes {
        match outcome {
            engine::Outcome::Send(text) => {
                let parts = pdu::segment(&text).parts.len();
                let id = tx.queue_sms_held(
                    Some(conversation),
                    caller,
                    modem,
                    &text,
                    parts,
                    now,
                    send_after,
                )?;
                let held = if send_after > now {
                    format!(", held for {} s", (send_after - now + 999) / 1000)
                } else {
                    String::new()
                };
                tx.journal(
                    call_row,
                    Some(conversation),
                    JournalStep::Queued,
                    &format!(
                        "SMS {id} to {} queued ({parts} part{}{held}): {text}",
                        caller.national(),
                        if parts == 1 { "" } else { "s" }
                    ),
                    now,
                )?;
            }
            engine::Outcome::OptOut => {
                tx.set_opt_out(caller, OptOutSource::Sms, now)?;
                tx.journal(
                    call_row,
                    Some(conversation),
                    JournalStep::OptOut,
                    &format!("{} opted out", caller.national()),
                    now,
                )?;
            }
            engine::Outcome::OptIn => {
                tx.clear_opt_out(caller)?;
                tx.journal(
                    call_row,
                    Some(conversation),
                    JournalStep::OptIn,
                    &format!("{} opted back in", caller.national()),
                    now,
                )?;
            }
            engine::Outcome::Help => {
                tx.journal(
                    call_row,
                    Some(conversation),
                    JournalStep::Help,
                    "the caller asked for HELP",
                    now,
                )?;
            }
            engine::Outcome::Note(note) => {
                tx.journal(call_row, Some(conversation), JournalStep::Note, &note, now)?;
            }
            engine::Outcome::Lead { complete, urgent } => {
                let lead = create_lead(
                    tx,
                    profile,
                    conversation,
                    caller,
                    &answers,
                    complete,
                    call_row,
                    now,
                )?;
                if urgent {
                    tx.mark_lead_urgent(lead)?;
                    tx.journal(
                        call_row,
                        Some(conversation),
                        JournalStep::Urgent,
                        &format!("lead {lead} is urgent: the caller asked to be called, or said it is urgent"),
                        now,
                    )?;
                }
            }
        }
    }
    Ok(())
}
