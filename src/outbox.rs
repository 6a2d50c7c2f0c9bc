//! The outbox worker: one per modem, it takes queued SMS rows oldest first, hands each to the modem,
//! and records the outcome. The row is written before the modem is asked, and marked after.

use std::time::Duration;

use tokio::time::Instant;
use tokio_util::sync::CancellationToken;
use tracing::{Instrument, info, info_span, warn};

use crate::alert::Alerter;
use crate::balance::CheckNow;
use crate::clock::Clock;
use crate::codec::at::{ErrorCode, Final};
use crate::codec::pdu::{self, SubmitOptions};
use crate::config::ModemConfig;
use crate::core::refusal::{self, Cause, Remedy};
use crate::domain::JournalStep;
use crate::domain::{FaultKind, MessageId, ModemId};
use crate::modem::{Error as ModemError, ModemHandle, ModemState};
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

/// A day, for the recipient cap's window.
const DAY_MS: i64 = 24 * 60 * 60 * 1000;
/// How long a text over the recipient cap waits before it is looked at again, when no other SIM
/// of the business can take it.
const CAP_WAIT_MS: i64 = 60 * 60 * 1000;

/// Whether the modem is up but off the network (searching, denied, not registered): the state in
/// which texts move to another SIM and, after a while, the business is told.
fn off_network(state: &ModemState) -> Option<u8> {
    match state {
        ModemState::Ready { info } => info.registration.filter(|stat| !matches!(stat, 1 | 5)),
        ModemState::Starting | ModemState::Lost { .. } => None,
    }
}

/// The registration state in one word, for the fault's cause (TS 27.007 §7.2 <stat>).
fn registration_word(stat: u8) -> &'static str {
    match stat {
        0 => "not_registered",
        2 => "searching",
        3 => "denied",
        _ => "unknown",
    }
}

/// Reports needed in 24 hours before the delivered share means anything.
pub const DELIVERY_MIN_REPORTS: i64 = 10;
/// Below this share of texts reported delivered in 24 hours, the business is told: a network that
/// silently blocks a SIM (field notes: "silent stop") shows first as reports that say "failed".
pub const DELIVERY_ALERT_PERCENT: i64 = 50;
/// How often the delivered share is looked at.
pub const DELIVERY_CHECK: Duration = Duration::from_secs(60);

/// How long a modem stays lost (not answering, unplugged, the port gone) before the business is
/// told: the driver's ladder (ESC, ATZ, AT+CFUN=1,1, reopening, a USB reset) takes about a minute.
pub const LOST_TELL_AFTER: Duration = Duration::from_secs(10 * 60);

/// How long the SIM's message store stays full before the business is told: the driver reads and
/// deletes what is there within seconds, so a store full for this long will not empty by itself.
pub const STORAGE_TELL_AFTER: Duration = Duration::from_secs(10 * 60);

/// The modem's own settings and what the outbox needs of the rest of the pool.
#[derive(Clone)]
pub struct Settings {
    pub modem: ModemConfig,
    pub alerter: Alerter,
    /// [`STORAGE_TELL_AFTER`], shorter in tests.
    pub storage_tell_after: Duration,
    /// [`DELIVERY_CHECK`], shorter in tests.
    pub delivery_check: Duration,
    /// [`LOST_TELL_AFTER`], shorter in tests.
    pub lost_tell_after: Duration,
    /// The modem's credit check (`modem.balance_ussd`), asked to look after a refusal that may
    /// mean no credit.
    pub balance_now: Option<CheckNow>,
}

/// The SIM's message store as the modem last counted it: full, or not.
fn storage_full(state: &ModemState) -> Option<(u32, u32)> {
    match state {
        ModemState::Ready { info } => match (info.sms_used, info.sms_capacity) {
            (Some(used), Some(capacity)) if capacity > 0 && used >= capacity => {
                Some((used, capacity))
            }
            _ => None,
        },
        ModemState::Starting | ModemState::Lost { .. } => None,
    }
}

/// This outbox's view of a hold: the network refused the SIM, so its texts wait (or go from
/// another SIM of the business) until `until`, when one is tried again.
struct Hold {
    until: Instant,
    cause: Cause,
}

/// Runs one modem's outbox until `token` is cancelled.
pub async fn run(
    store: Store,
    mut modem: ModemHandle,
    settings: Settings,
    wake: Wake,
    clock: Clock,
    token: CancellationToken,
) {
    let span = info_span!("outbox", modem = %modem.id());
    let status_reports = settings.modem.status_reports;
    async move {
        let mut hold = resume_hold(&store, &modem, &settings).await;
        // A refusal is open (held now, or being tried again): the next text that goes clears it.
        let mut refused = hold.is_some();
        let mut off_since: Option<Instant> = None;
        let mut full_since: Option<Instant> = None;
        let mut delivery_checked: Option<Instant> = None;
        let mut lost_since: Option<Instant> = None;
        loop {
            if token.is_cancelled() {
                return;
            }
            if let Some(held) = &hold
                && Instant::now() < held.until
            {
                // Texts queued meanwhile go from another SIM of the business when there is one.
                move_to_sibling(&store, &modem, &settings, &clock, held.cause.meaning(), Move::Held)
                    .await;
                tokio::select! {
                    _ = token.cancelled() => return,
                    _ = tokio::time::sleep_until(held.until) => {}
                    _ = wake.notified() => {}
                }
                continue;
            }
            if delivery_checked.is_none_or(|at| at.elapsed() >= settings.delivery_check) {
                delivery_checked = Some(Instant::now());
                delivery_share(&store, modem.id(), &settings, &clock).await;
            }
            let state = modem.state();
            match &state {
                ModemState::Lost { reason } => {
                    let since = *lost_since.get_or_insert_with(Instant::now);
                    let detail = format!(
                        "stopped answering ({reason}); ESC, ATZ, AT+CFUN=1,1, reopening the port and a USB reset were tried. Unplug the dongle and plug it back in; if it stays lost, replace it. Texts wait on disk"
                    );
                    let tell = since.elapsed() >= settings.lost_tell_after;
                    if tell {
                        settings.alerter.open_fault(modem.id(), FaultKind::NotAnswering, "lost", detail, true).await;
                    }
                }
                ModemState::Ready { .. } => {
                    if let Some(since) = lost_since.take() {
                        info!(lost_for_ms = since.elapsed().as_millis() as u64, "the modem is back");
                        settings.alerter.clear_fault(modem.id(), FaultKind::NotAnswering).await;
                    }
                }
                ModemState::Starting => {}
            }
            match storage_full(&state) {
                Some((used, capacity)) => {
                    let since = *full_since.get_or_insert_with(Instant::now);
                    let detail = format!(
                        "has its message store full ({used} of {capacity}) and it does not empty: new texts come straight to the box where the modem allows it, else they are lost. Take the SIM out and delete its messages in a phone, or replace it"
                    );
                    let tell = since.elapsed() >= settings.storage_tell_after;
                    settings.alerter.open_fault(modem.id(), FaultKind::StorageFull, "full", detail, tell).await;
                }
                None => {
                    if full_since.take().is_some() {
                        settings.alerter.clear_fault(modem.id(), FaultKind::StorageFull).await;
                    }
                }
            }
            if let Some(stat) = off_network(&state) {
                let since = *off_since.get_or_insert_with(Instant::now);
                off_network_fault(&store, &modem, &settings, &clock, stat, since).await;
            } else if serving(&state)
                && let Some(since) = off_since.take()
            {
                info!(
                    off_for_ms = since.elapsed().as_millis() as u64,
                    "back on the network"
                );
                settings.alerter.clear_fault(modem.id(), FaultKind::OffNetwork).await;
            }
            if !serving(&state) {
                // Rows wait in the queue until the modem is (back) in service; off the network,
                // they move to another SIM of the business when there is one.
                tokio::select! {
                    _ = token.cancelled() => return,
                    changed = modem.state_changed() => {
                        if changed.is_err() {
                            token.cancelled().await;
                            return;
                        }
                    }
                    _ = tokio::time::sleep(POLL), if off_since.is_some() || lost_since.is_some() => {}
                    _ = wake.notified(), if off_since.is_some() => {}
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
                    // Off the network, lost, or the store full: seen at once, not at the next poll.
                    changed = modem.state_changed() => {
                        if changed.is_err() {
                            token.cancelled().await;
                            return;
                        }
                    }
                }
                continue;
            };
            if over_cap(&store, &modem, &settings, &clock, &row).await {
                continue;
            }
            // The hold's time is up: this send is the try that tells whether the refusal lasts.
            if hold.take().is_some() {
                info!("trying the held queue again");
            }
            match send(&store, &modem, status_reports, row, &clock).await {
                Sent::Rest(delay) => {
                    tokio::select! {
                        _ = token.cancelled() => return,
                        _ = tokio::time::sleep(delay) => {}
                    }
                }
                Sent::Done => {
                    if refused {
                        refused = false;
                        settings.alerter.clear_fault(modem.id(), FaultKind::Refused).await;
                    }
                }
                Sent::Refused(cause) => {
                    let until = Instant::now() + settings.modem.refused_recheck;
                    refused_fault(&store, &modem, &settings, &clock, cause).await;
                    hold = Some(Hold { until, cause });
                    refused = true;
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
    // The SIM in the modem now: a conversation's texts go only from the SIM it started on.
    let sim = match modem.state() {
        ModemState::Ready { info } if !info.iccid.is_empty() => Some(info.iccid),
        _ => None,
    };
    store
        .run(move |tx| {
            let row = tx.next_outbound(&modem_id, sim.as_deref(), now)?;
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

/// What came of one send.
enum Sent {
    /// Sent, or recorded failed: go on with the next.
    Done,
    /// The modem needs a rest (it was away, or a retry is due) before the next.
    Rest(Duration),
    /// The network refuses this SIM: the text went back to the queue with no try used; hold
    /// the queue.
    Refused(Cause),
}

/// The `+CMS ERROR` code of a send that the network or modem refused, if that is what happened.
fn cms_code(error: &ModemError) -> Option<u16> {
    match error {
        ModemError::Rejected {
            result: Final::Cms(ErrorCode::Number(code)),
            ..
        } => Some(*code),
        _ => None,
    }
}

/// Sends one row and records the outcome.
async fn send(
    store: &Store,
    modem: &ModemHandle,
    status_reports: bool,
    row: OutboundRow,
    clock: &Clock,
) -> Sent {
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
            return Sent::Done;
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
            Sent::Done
        }
        Err(err)
            if cms_code(&err)
                .is_some_and(|code| refusal::classify(code).1 == Remedy::HoldQueue) =>
        {
            let (cause, _) = refusal::classify(cms_code(&err).unwrap_or_default());
            warn!(sms = %id, error = %err, cause = cause.word(), "the network refuses this SIM's texts; holding its queue");
            record(
                store,
                clock,
                id,
                row.conversation,
                Outcome::Held(format!("{err}: {}", cause.meaning())),
            )
            .await;
            Sent::Refused(cause)
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
            Sent::Rest(MODEM_AWAY_WAIT)
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
            Sent::Rest(delay)
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
            Sent::Done
        }
    }
}

enum Outcome {
    Sent(Vec<u8>),
    Waiting(String),
    /// Back to the queue, no try used, the refusal recorded in the journal.
    Held(String),
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
            Outcome::Held(reason) => {
                tx.mark_waiting(id, &reason, now)?;
                tx.journal(
                    None,
                    conversation,
                    JournalStep::Retry,
                    &format!("SMS {id} held: {reason}"),
                    now,
                )
            }
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

/// An open refusal from before a restart holds the queue again until its recheck.
async fn resume_hold(store: &Store, modem: &ModemHandle, settings: &Settings) -> Option<Hold> {
    let id = modem.id().clone();
    let open = store
        .run(move |tx| tx.open_fault_of(&id, FaultKind::Refused))
        .await
        .ok()
        .flatten()?;
    info!(
        cause = open.cause,
        "the network refused this SIM before the restart; its queue stays held until the next try"
    );
    let cause = (0..=600u16)
        .map(Cause::from_code)
        .find(|cause| cause.word() == open.cause)
        .unwrap_or(Cause::Other);
    Some(Hold {
        until: Instant::now() + settings.modem.refused_recheck,
        cause,
    })
}

/// Records the refusal (one open fault per SIM), moves the queue to another SIM of the business
/// when there is one, and tells the business.
async fn refused_fault(
    store: &Store,
    modem: &ModemHandle,
    settings: &Settings,
    clock: &Clock,
    cause: Cause,
) {
    let detail = format!(
        "the network refuses its texts: {}. {}",
        cause.meaning(),
        cause.what_to_do()
    );
    if cause.may_mean_no_credit()
        && let Some(balance) = &settings.balance_now
    {
        balance.request();
    }
    settings
        .alerter
        .open_fault(modem.id(), FaultKind::Refused, cause.word(), detail, true)
        .await;
    move_to_sibling(store, modem, settings, clock, cause.meaning(), Move::Held).await;
}

/// Off the network: the fault is recorded at once and texts move to another SIM of the business;
/// the business is told when it stays off past twice the radio-cycle time (the cycle did not help).
async fn off_network_fault(
    store: &Store,
    modem: &ModemHandle,
    settings: &Settings,
    clock: &Clock,
    stat: u8,
    since: Instant,
) {
    let word = registration_word(stat);
    let advice = if stat == 3 {
        "registration denied: the SIM may be barred or unpaid; call the network, or try the SIM in a phone"
    } else {
        "no network found: check the aerial and the signal where the box is"
    };
    let detail = format!("is off the network ({word}): {advice}");
    let tell_after = settings
        .modem
        .off_network_cycle
        .map_or(Duration::from_secs(10 * 60), |cycle| cycle * 2);
    let tell = since.elapsed() >= tell_after;
    settings
        .alerter
        .open_fault(modem.id(), FaultKind::OffNetwork, word, detail, tell)
        .await;
    move_to_sibling(
        store,
        modem,
        settings,
        clock,
        "the SIM is off the network",
        Move::WhileOffNetwork,
    )
    .await;
}

/// The share of this SIM's texts reported delivered in 24 hours: a fault (and the business told)
/// when it is low over enough reports, cleared when it recovers.
async fn delivery_share(store: &Store, modem: &ModemId, settings: &Settings, clock: &Clock) {
    let since = clock.now_ms() - DAY_MS;
    let id = modem.clone();
    let (delivered, failed) = match store.run(move |tx| tx.delivery_counts(&id, since)).await {
        Ok(counts) => counts,
        Err(err) => {
            warn!(error = %err, "counting delivery reports");
            return;
        }
    };
    let reported = delivered + failed;
    if reported < DELIVERY_MIN_REPORTS {
        return;
    }
    let percent = delivered * 100 / reported;
    if percent >= DELIVERY_ALERT_PERCENT {
        settings
            .alerter
            .clear_fault(modem, FaultKind::DeliveryLow)
            .await;
        return;
    }
    let detail = format!(
        "had only {delivered} of {reported} texts reported delivered in 24 hours ({percent}%): the network may be blocking its texts. Text a phone from it (`textback sms send`) and call the network if it does not arrive"
    );
    settings
        .alerter
        .open_fault(modem, FaultKind::DeliveryLow, "low_share", detail, true)
        .await;
}

/// The modems a text queued for `modem` may move to: up and on the network, not held, and serving
/// the same business (the same `modem.profile`, or either serves any business).
fn siblings<'a>(modem: &ModemId, settings: &'a Settings) -> Vec<&'a ModemHandle> {
    let config = &settings.alerter.config;
    let profile_of = |id: &ModemId| {
        config
            .modems
            .iter()
            .find(|m| &m.id == id)
            .and_then(|m| m.profile.clone())
    };
    let own = profile_of(modem);
    let pinned = config
        .profiles
        .iter()
        .any(|p| p.modem.as_ref() == Some(modem));
    if pinned {
        // A profile pinned to this SIM texts only from it: its callers know that number.
        return Vec::new();
    }
    settings
        .alerter
        .pool
        .iter()
        .filter(|handle| handle.id() != modem && handle.state().is_usable())
        .filter(|handle| {
            let theirs = profile_of(handle.id());
            own.is_none() || theirs.is_none() || own == theirs
        })
        .collect()
}

/// Why a queue moves, which decides whether it still moves when the store gets to it.
#[derive(Clone, Copy, PartialEq, Eq)]
enum Move {
    /// The network refuses the SIM: its texts move whatever its state.
    Held,
    /// Off the network: only while it still is. The modem may have come back (and a new text
    /// been routed to it) since the outbox looked.
    WhileOffNetwork,
}

/// Moves what is queued for `modem` to a sibling that is not held, if there is one.
async fn move_to_sibling(
    store: &Store,
    modem: &ModemHandle,
    settings: &Settings,
    clock: &Clock,
    why: &str,
    kind: Move,
) {
    for sibling in siblings(modem.id(), settings) {
        let from = modem.id().clone();
        let to = sibling.id().clone();
        let now = clock.now_ms();
        let reason = format!("moved from {from}: {why}");
        let handle = modem.clone();
        let moved = store
            .run(move |tx| {
                // Looked at in the store's own turn, after any routing that came before it.
                if kind == Move::WhileOffNetwork && serving(&handle.state()) {
                    return Ok(0);
                }
                if tx.open_fault_of(&to, FaultKind::Refused)?.is_some() {
                    return Ok(0);
                }
                tx.move_queued(&from, &to, &reason, now)
            })
            .await;
        match moved {
            Ok(0) => continue,
            Ok(moved) => {
                info!(to = %sibling.id(), moved, why, "texts moved to another SIM of the business");
                settings.alerter.wakers.outbox(sibling.id());
                return;
            }
            Err(err) => {
                warn!(error = %err, "moving queued texts");
                return;
            }
        }
    }
}

/// The per-SIM cap on distinct recipients in any 24 hours (`modem.recipient_cap`): a text to a
/// new number over the cap moves to another SIM of the business under its own cap, or waits, and
/// the reason is recorded. Returns true when the row did not go from this modem now.
async fn over_cap(
    store: &Store,
    modem: &ModemHandle,
    settings: &Settings,
    clock: &Clock,
    row: &OutboundRow,
) -> bool {
    let cap = i64::from(settings.modem.recipient_cap);
    let now = clock.now_ms();
    let since = now - DAY_MS;
    let id = modem.id().clone();
    let to = row.to.clone();
    let message = row.id;
    let counted = store
        .run(move |tx| {
            if tx.texted_since(&id, &to, since, message)? {
                return Ok(None);
            }
            Ok(Some(tx.distinct_recipients_since(
                &id,
                since,
                Some(message),
            )?))
        })
        .await;
    let count = match counted {
        Ok(Some(count)) if count >= cap => count,
        Ok(Some(_)) => {
            settings
                .alerter
                .clear_fault(modem.id(), FaultKind::RecipientCap)
                .await;
            return false;
        }
        Ok(None) => return false,
        Err(err) => {
            warn!(error = %err, "counting recipients for the cap");
            return false;
        }
    };
    let mut moved_to = None;
    for sibling in siblings(modem.id(), settings) {
        let sibling_id = sibling.id().clone();
        let sibling_cap = settings
            .alerter
            .config
            .modems
            .iter()
            .find(|m| m.id == sibling_id)
            .map_or(0, |m| i64::from(m.recipient_cap));
        let under = store
            .run(move |tx| {
                Ok(tx.open_fault_of(&sibling_id, FaultKind::Refused)?.is_none()
                    && tx.distinct_recipients_since(&sibling_id, since, None)? < sibling_cap)
            })
            .await
            .unwrap_or(false);
        if under {
            moved_to = Some(sibling.id().clone());
            break;
        }
    }
    let conversation = row.conversation;
    let reason = match &moved_to {
        Some(to) => format!(
            "SIM {} has texted {count} different numbers in 24 hours (modem.recipient_cap {cap}); sent from {to} instead",
            modem.id()
        ),
        None => format!(
            "SIM {} has texted {count} different numbers in 24 hours (modem.recipient_cap {cap}) and no other SIM of the business can take it; held for an hour",
            modem.id()
        ),
    };
    let stored_reason = reason.clone();
    let target = moved_to.clone();
    let result = store
        .run(move |tx| {
            match &target {
                Some(to) => tx.move_message(message, to, &stored_reason, now)?,
                None => tx.hold_message(message, &stored_reason, now + CAP_WAIT_MS, now)?,
            }
            tx.journal(None, conversation, JournalStep::Retry, &stored_reason, now)
        })
        .await;
    if let Err(err) = result {
        warn!(error = %err, "recording a text over the recipient cap");
    }
    warn!(sms = %row.id, count, cap, moved_to = ?moved_to, "recipient cap reached");
    if let Some(to) = &moved_to {
        settings.alerter.wakers.outbox(to);
    }
    let detail = format!(
        "has texted {count} different numbers in 24 hours, its cap (modem.recipient_cap {cap}; UK networks bar a SIM past about 300). {}",
        if moved_to.is_some() {
            "New callers are texted from another SIM meanwhile."
        } else {
            "New callers wait: add a SIM to the pool for busy days."
        }
    );
    settings
        .alerter
        .open_fault(
            modem.id(),
            FaultKind::RecipientCap,
            "over_cap",
            detail,
            true,
        )
        .await;
    true
}
