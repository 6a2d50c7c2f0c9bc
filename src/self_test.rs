//! The daily self-test of each SIM with `[modem.self_test]`: at the configured UK time the box
//! texts a number that comes back to it (the SIM's own, or another modem's) a text with a unique
//! token, recorded before it is queued; `flow/reply.rs` marks it passed when it comes back (never
//! a caller's text), and here a test not back within its timeout fails, opening a `self_test`
//! fault told to the business. Only a round trip proves a modem still sends and receives (field
//! notes: "silent stop"). Times come from the injectable [`Clock`], so tests set the hour.

use std::time::Duration;

use tokio_util::sync::CancellationToken;
use tracing::{Instrument, info, info_span, warn};

use crate::alert::Alerter;
use crate::clock::Clock;
use crate::config::SelfTest;
use crate::core::self_test;
use crate::domain::{FaultKind, ModemId, SelfTestState};
use crate::store::{NewSelfTest, SelfTestRow, Store};
use crate::wake::Wakers;

/// How often the clock and a waiting test are looked at: a moved clock, or a text that came back,
/// is seen within this.
const LOOK: Duration = Duration::from_secs(1);

/// What one modem's self-test task needs.
pub struct Tester {
    pub store: Store,
    pub modem: ModemId,
    pub test: SelfTest,
    pub alerter: Alerter,
    pub wakers: Wakers,
    pub clock: Clock,
}

/// Runs one modem's daily self-tests until `token` is cancelled.
pub async fn run(tester: Tester, token: CancellationToken) {
    let span = info_span!("self_test", modem = %tester.modem);
    async move {
        let last = {
            let id = tester.modem.clone();
            tester.store.run(move |tx| tx.last_self_test(&id)).await
        };
        let mut last = match last {
            Ok(last) => last,
            Err(err) => {
                warn!(error = %err, "reading the last self-test; self-tests start from now");
                None
            }
        };
        loop {
            // A test from before a restart that is still waiting is seen through first.
            if let Some(waiting) = last.as_mut().filter(|t| t.state == SelfTestState::Waiting) {
                if !see_through(&tester, waiting.id, waiting.deadline_ms, &token).await {
                    return;
                }
                // Seen through: passed or failed, recorded either way.
                waiting.state = SelfTestState::Failed;
            }
            // The next test: the first configured time after the last test started (a test
            // missed while the box was off runs at once), or after now.
            let after = last
                .as_ref()
                .and_then(|t| chrono::DateTime::from_timestamp_millis(t.started_ms))
                .unwrap_or_else(|| tester.clock.now());
            let due = self_test::next_due(tester.test.at, after).timestamp_millis();
            loop {
                let now = tester.clock.now_ms();
                if now >= due {
                    break;
                }
                let wait = Duration::from_millis((due - now) as u64).min(LOOK);
                tokio::select! {
                    _ = token.cancelled() => return,
                    _ = tokio::time::sleep(wait) => {}
                }
            }
            match start(&tester).await {
                Some(started) => last = Some(started),
                None => {
                    // Not recorded (the database failed): try again at the next look.
                    tokio::select! {
                        _ = token.cancelled() => return,
                        _ = tokio::time::sleep(LOOK) => {}
                    }
                }
            }
        }
    }
    .instrument(span)
    .await
}

/// Records a test and queues its text; returns its row.
async fn start(tester: &Tester) -> Option<SelfTestRow> {
    let now = tester.clock.now_ms();
    let token = self_test::token(rand::random());
    let text = self_test::text(&token);
    let modem = tester.modem.clone();
    let to = tester.test.to.clone();
    let deadline_ms = now + tester.test.timeout.as_millis() as i64;
    let started = tester
        .store
        .run(move |tx| {
            let id = tx.start_self_test(&NewSelfTest {
                modem: &modem,
                recipient: &to,
                token: &token,
                text: &text,
                at_ms: now,
                deadline_ms,
            })?;
            tx.journal(
                None,
                None,
                crate::domain::JournalStep::SelfTest,
                &format!("self-test {id} texted from modem {modem} to {to}"),
                now,
            )?;
            tx.self_test(id)
        })
        .await;
    match started {
        Ok(row) => {
            info!(to = %tester.test.to.redacted(), "self-test text queued");
            tester.wakers.outbox(&tester.modem);
            row
        }
        Err(err) => {
            warn!(error = %err, "recording a self-test");
            None
        }
    }
}

/// Waits for test `id` to come back until its deadline; records the outcome. False on shutdown.
async fn see_through(
    tester: &Tester,
    id: i64,
    deadline_ms: i64,
    token: &CancellationToken,
) -> bool {
    loop {
        let row = tester.store.run(move |tx| tx.self_test(id)).await;
        let row = match row {
            Ok(Some(row)) => row,
            Ok(None) => return true,
            Err(err) => {
                warn!(error = %err, "reading a self-test");
                return true;
            }
        };
        if row.state == SelfTestState::Failed {
            return true;
        }
        if row.state == SelfTestState::Passed {
            let round_trip = row.received_ms.unwrap_or(row.started_ms) - row.started_ms;
            info!(round_trip_ms = round_trip, "self-test passed");
            tester
                .alerter
                .clear_fault(&tester.modem, FaultKind::SelfTest)
                .await;
            return true;
        }
        if tester.clock.now_ms() >= deadline_ms {
            let minutes = tester.test.timeout.as_secs().div_ceil(60);
            let detail = format!(
                "sent its daily self-test text to {} and it did not come back within {minutes} minutes: texts to or from this SIM may not be getting through. Text the SIM from a phone; if nothing arrives, unplug the dongle and plug it back in",
                tester.test.to
            );
            let stored = detail.clone();
            if let Err(err) = tester
                .store
                .run(move |tx| tx.fail_self_test(id, &stored))
                .await
            {
                warn!(error = %err, "recording a failed self-test");
            }
            tester
                .alerter
                .open_fault(
                    &tester.modem,
                    FaultKind::SelfTest,
                    "no_round_trip",
                    detail,
                    true,
                )
                .await;
            return true;
        }
        tokio::select! {
            _ = token.cancelled() => return false,
            _ = tokio::time::sleep(LOOK) => {}
        }
    }
}
