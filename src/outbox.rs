//! The outbox worker: one per modem, it takes queued SMS rows oldest first, hands each to the modem,
//! and records the outcome. The row is written before the modem is asked, and marked after.

use std::time::Duration;

use tokio_util::sync::CancellationToken;
use tracing::{Instrument, info, info_span, warn};

use crate::clock::Clock;
use crate::codec::pdu::{self, SubmitOptions};
use crate::domain::JournalStep;
use crate::domain::MessageId;
use crate::modem::{ModemHandle, ModemState};
use crate::store::{OutboundRow, Store};
use crate::wake::Wake;

/// A queued SMS is looked for at least this often, even with no wake-up: a row queued by another
/// process (`textback sms send`) or left by a retry is picked up within this time.
const POLL: Duration = Duration::from_secs(5);
/// Tries before a transient failure becomes a recorded failure.
pub const MAX_ATTEMPTS: u32 = 6;
/// How long to wait before trying again when the modem is away (unplugged, reconnecting).
const MODEM_AWAY_WAIT: Duration = Duration::from_secs(2);
/// SMS validity asked of the network: a text about a missed call is useless after a day.
const VALIDITY_MINUTES: u32 = 24 * 60;

/// Whether the modem can send now: set up, and on the network (home or roaming) as far as it has
/// said. Until then rows wait in the queue without using up tries.
fn serving(state: &ModemState) -> bool {
    match state {
        ModemState::Ready { info } => info.registration.is_none_or(|stat| stat == 1 || stat == 5),
        ModemState::Starting | ModemState::Lost { .. } => false,
    }
}

/// Runs one modem's outbox until `token` is cancelled.
pub async fn run(
    store: Store,
    mut modem: ModemHandle,
    status_reports: bool,
    wake: Wake,
    clock: Clock,
    token: CancellationToken,
) {
    let span = info_span!("outbox", modem = %modem.id());
    async move {
        loop {
            if token.is_cancelled() {
                return;
            }
            if !serving(&modem.state()) {
                // Rows wait in the queue until the modem is (back) in service.
                tokio::select! {
                    _ = token.cancelled() => return,
                    changed = modem.state_changed() => {
                        if changed.is_err() {
                            token.cancelled().await;
                            return;
                        }
                    }
                }
                continue;
            }
            let next = match take_next(&store, &modem, &clock).await {
                Ok(next) => next,
                Err(err) => {
                    warn!(error = %err, "reading the outbox");
                    None
                }
            };
            let Some(row) = next else {
                // A text held back (profile.first_text_delay_seconds) is due at its time.
                let modem_id = modem.id().clone();
                let now = clock.now_ms();
                let held = store
                    .run(move |tx| tx.next_held_ms(&modem_id, now))
                    .await
                    .ok()
                    .flatten();
                let wait = held
                    .map(|at| Duration::from_millis((at - now).max(0) as u64))
                    .unwrap_or(POLL)
                    .min(POLL);
                tokio::select! {
                    _ = token.cancelled() => return,
                    _ = wake.notified() => {}
                    _ = tokio::time::sleep(wait) => {}
                }
                continue;
            };
            if let Some(delay) = send(&store, &modem, status_reports, row, &clock).await {
                tokio::select! {
                    _ = token.cancelled() => return,
                    _ = tokio::time::sleep(delay) => {}
                }
            }
        }
    }
    .instrument(span)
    .await
}

async fn take_next(
    store: &Store,
    modem: &ModemHandle,
    clock: &Clock,
) -> Result<Option<OutboundRow>, crate::store::Error> {
    let modem_id = modem.id().clone();
    let now = clock.now_ms();
    store
        .run(move |tx| {
            let row = tx.next_outbound(&modem_id, now)?;
            if let Some(row) = &row {
                tx.mark_sending(row.id, now)?;
                tx.journal(
                    None,
                    row.conversation,
                    JournalStep::Sending,
                    &format!(
                        "SMS {} handed to modem {} (attempt {})",
                        row.id,
                        modem_id,
                        row.attempts + 1
                    ),
                    now,
                )?;
            }
            Ok(row)
        })
        .await
}

/// Sends one row; returns how long to wait before the next when the modem needs a rest.
async fn send(
    store: &Store,
    modem: &ModemHandle,
    status_reports: bool,
    row: OutboundRow,
    clock: &Clock,
) -> Option<Duration> {
    let id = row.id;
    let options = SubmitOptions {
        validity_minutes: Some(VALIDITY_MINUTES),
        status_report: status_reports,
        // The message id picks the concatenation reference, so parts of different messages to one
        // phone do not mix.
        concat_reference: (id.0 & 0xff) as u16,
        wide_reference: false,
    };
    let pdus = match pdu::encode_submit(row.to.as_str(), &row.body, &options) {
        Ok(pdus) => pdus,
        Err(err) => {
            record(
                store,
                clock,
                id,
                row.conversation,
                Outcome::Failed(format!("cannot encode: {err}")),
            )
            .await;
            return None;
        }
    };
    let attempt = row.attempts + 1;
    match modem.send_sms(pdus).await {
        Ok(references) => {
            info!(sms = %id, ?references, "SMS sent");
            record(
                store,
                clock,
                id,
                row.conversation,
                Outcome::Sent(references),
            )
            .await;
            None
        }
        Err(err) if err.modem_unavailable() => {
            // The modem, its SIM or the network was away: not the message's fault, so no try is
            // used up; it waits for them to come back.
            record(
                store,
                clock,
                id,
                row.conversation,
                Outcome::Waiting(err.to_string()),
            )
            .await;
            Some(MODEM_AWAY_WAIT)
        }
        Err(err) if err.is_transient() && attempt < MAX_ATTEMPTS => {
            let delay = Duration::from_secs(2u64.pow(attempt.min(6)));
            warn!(sms = %id, error = %err, attempt, retry_in = ?delay, "SMS not sent; will retry");
            record(
                store,
                clock,
                id,
                row.conversation,
                Outcome::Retry(err.to_string(), delay),
            )
            .await;
            Some(delay)
        }
        Err(err) => {
            warn!(sms = %id, error = %err, attempt, "SMS failed");
            record(
                store,
                clock,
                id,
                row.conversation,
                Outcome::Failed(err.to_string()),
            )
            .await;
            None
        }
    }
}

enum Outcome {
    Sent(Vec<u8>),
    Waiting(String),
    Retry(String, Duration),
    Failed(String),
}

async fn record(
    store: &Store,
    clock: &Clock,
    id: MessageId,
    conversation: Option<crate::domain::ConversationId>,
    outcome: Outcome,
) {
    let now = clock.now_ms();
    let result = store
        .run(move |tx| match outcome {
            Outcome::Sent(references) => {
                tx.mark_sent(id, &references, now)?;
                let references: Vec<String> = references.iter().map(u8::to_string).collect();
                tx.journal(
                    None,
                    conversation,
                    JournalStep::Sent,
                    &format!(
                        "SMS {id} accepted by the network (reference {})",
                        references.join(", ")
                    ),
                    now,
                )
            }
            Outcome::Waiting(reason) => tx.mark_waiting(id, &reason, now),
            Outcome::Retry(error, delay) => {
                tx.mark_retry(id, &error, now)?;
                tx.journal(
                    None,
                    conversation,
                    JournalStep::Retry,
                    &format!(
                        "SMS {id} not sent: {error}; trying again in {}s",
                        delay.as_secs()
                    ),
                    now,
                )
            }
            Outcome::Failed(error) => {
                tx.mark_failed(id, &error, now)?;
                tx.journal(
                    None,
                    conversation,
                    JournalStep::Failed,
                    &format!("SMS {id} failed: {error}"),
                    now,
                )
            }
        })
        .await;
    if let Err(err) = result {
        warn!(sms = %id, error = %err, "recording an SMS outcome");
    }
}
