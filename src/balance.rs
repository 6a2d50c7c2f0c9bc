//! Each SIM's credit, checked by USSD where `modem.balance_ussd` is set: one task per such modem
//! dials the code every `modem.balance_check_hours` (and at once after a refusal that may mean no
//! credit), reads the amount from the network's answer (`core::balance`), records every check
//! (`store::health`), and opens a `low_balance` fault, told to the business, when the credit is
//! under `modem.balance_low`. Pay-as-you-go SIMs stop sending at zero with no clear error on some
//! networks (field notes: "credit"), so the owner hears of it before texts stop.

use std::sync::Arc;
use std::time::Duration;

use tokio::sync::Notify;
use tokio_util::sync::CancellationToken;
use tracing::{Instrument, info, info_span, warn};

use crate::alert::Alerter;
use crate::clock::Clock;
use crate::config::BalanceCheck;
use crate::core::balance::{format_pence, parse_pence};
use crate::domain::{FaultKind, ModemId};
use crate::modem::ModemHandle;
use crate::store::Store;

/// A failed check (no answer, the modem away) is tried again after this, or the interval if
/// that is shorter.
pub const RETRY_AFTER: Duration = Duration::from_secs(60 * 60);
/// The clock is looked at least this often while waiting: a test (or an administrator) that
/// moves it is noticed.
const LOOK: Duration = Duration::from_secs(60);

/// Asks a modem's balance task to check now (the outbox, after a refusal that may mean no
/// credit). Cheap to clone.
#[derive(Clone, Default)]
pub struct CheckNow(Arc<Notify>);

impl CheckNow {
    pub fn request(&self) {
        self.0.notify_one();
    }
}

/// What one balance task needs.
pub struct Checker {
    pub store: Store,
    pub modem: ModemHandle,
    pub check: BalanceCheck,
    pub alerter: Alerter,
    pub clock: Clock,
    pub now: CheckNow,
    /// [`RETRY_AFTER`], shorter in tests.
    pub retry_after: Duration,
}

/// Runs one modem's balance checks until `token` is cancelled.
pub async fn run(checker: Checker, token: CancellationToken) {
    let span = info_span!("balance", modem = %checker.modem.id());
    async move {
        let id = checker.modem.id().clone();
        let last = {
            let id = id.clone();
            checker
                .store
                .run(move |tx| tx.last_balance_check_ms(&id))
                .await
                .ok()
                .flatten()
        };
        // After a restart the last check's time counts: a daily check stays daily.
        let mut due_ms = last.map_or(checker.clock.now_ms(), |at| {
            at + checker.check.interval.as_millis() as i64
        });
        let mut unreadable_logged = false;
        loop {
            let now_ms = checker.clock.now_ms();
            if now_ms < due_ms {
                let wait = Duration::from_millis((due_ms - now_ms) as u64).min(LOOK);
                tokio::select! {
                    _ = token.cancelled() => return,
                    _ = tokio::time::sleep(wait) => continue,
                    _ = checker.now.0.notified() => {
                        info!("checking the credit now (a refusal that may mean no credit)");
                    }
                }
            }
            if !wait_usable(&checker.modem, &token).await {
                return;
            }
            let ok = check_once(&checker, &id, &mut unreadable_logged).await;
            let next = if ok {
                checker.check.interval
            } else {
                checker.retry_after.min(checker.check.interval)
            };
            due_ms = checker.clock.now_ms() + next.as_millis() as i64;
        }
    }
    .instrument(span)
    .await
}

/// Waits until the modem is set up and on the network (USSD needs the network); false on
/// shutdown.
async fn wait_usable(modem: &ModemHandle, token: &CancellationToken) -> bool {
    let mut modem = modem.clone();
    loop {
        if modem.state().is_usable() {
            return true;
        }
        tokio::select! {
            _ = token.cancelled() => return false,
            changed = modem.state_changed() => if changed.is_err() {
                token.cancelled().await;
                return false;
            },
        }
    }
}

/// One check: dial, read, record, and open or clear the low-credit fault. True when an amount
/// was read.
async fn check_once(checker: &Checker, id: &ModemId, unreadable_logged: &mut bool) -> bool {
    let answer = checker.modem.ussd(&checker.check.code).await;
    let now = checker.clock.now_ms();
    let (pence, reply, error) = match &answer {
        Ok(text) => (parse_pence(text), Some(text.clone()), None),
        Err(err) => (None, None, Some(err.to_string())),
    };
    let record_id = id.clone();
    let stored_reply = reply.clone();
    let stored_error = error.clone();
    if let Err(err) = checker
        .store
        .run(move |tx| {
            tx.record_balance(
                &record_id,
                pence,
                stored_reply.as_deref(),
                stored_error.as_deref(),
                now,
            )
        })
        .await
    {
        warn!(error = %err, "recording a credit check");
    }
    match (pence, &reply, &error) {
        (Some(pence), _, _) => {
            info!(
                balance = %format_pence(pence),
                low = %format_pence(checker.check.low_pence),
                "credit checked"
            );
            if pence < checker.check.low_pence {
                let detail = format!(
                    "has {} credit left, under modem.balance_low ({}): top up the SIM before texts to callers stop",
                    format_pence(pence),
                    format_pence(checker.check.low_pence)
                );
                checker
                    .alerter
                    .open_fault(id, FaultKind::LowBalance, "low", detail, true)
                    .await;
            } else {
                checker.alerter.clear_fault(id, FaultKind::LowBalance).await;
            }
            true
        }
        (None, Some(text), _) => {
            if !*unreadable_logged {
                *unreadable_logged = true;
                warn!(
                    reply = %text,
                    "the network's answer to the balance code has no amount in it: is modem.balance_ussd the balance code?"
                );
            }
            false
        }
        (None, None, error) => {
            warn!(
                error = error.as_deref().unwrap_or(""),
                "the credit check failed"
            );
            false
        }
    }
}
