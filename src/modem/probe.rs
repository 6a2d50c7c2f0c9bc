//! A modem task started for one short job (doctor's check, `modem info`, `modem at`, the divert
//! guide): started, waited for until set up, used through its handle, and stopped.

use std::time::Duration;

use tokio::sync::mpsc;
use tokio_util::sync::CancellationToken;
use tokio_util::task::TaskTracker;

use super::{ModemEvent, ModemHandle, ModemInfo, ModemState};
use crate::config::ModemConfig;

/// A running modem task for a short job.
pub struct Probe {
    handle: ModemHandle,
    token: CancellationToken,
    tracker: TaskTracker,
    pub info: ModemInfo,
    /// Unsolicited events seen (SMS on the SIM, rings): shown, never acted on or deleted.
    pub events: mpsc::Receiver<ModemEvent>,
}

impl Probe {
    /// Starts a task on the modem and waits until it is set up, or says why not.
    pub async fn open(config: ModemConfig, timeout: Duration) -> Result<Probe, String> {
        let token = CancellationToken::new();
        let tracker = TaskTracker::new();
        let (events_tx, events) = mpsc::channel(64);
        let mut handle = super::spawn(
            config,
            events_tx,
            token.clone(),
            &tracker,
            crate::clock::Clock::system(),
        );
        let deadline = tokio::time::Instant::now() + timeout;
        let outcome = loop {
            match handle.state() {
                ModemState::Ready { info } => break Ok(info),
                ModemState::Lost { reason } => break Err(reason),
                ModemState::Starting => {}
            }
            match tokio::time::timeout_at(deadline, handle.state_changed()).await {
                Ok(Ok(_)) => {}
                Ok(Err(err)) => break Err(err.to_string()),
                Err(_) => {
                    break Err(format!(
                        "the modem did not answer within {}s",
                        timeout.as_secs()
                    ));
                }
            }
        };
        let probe = Probe {
            handle,
            token,
            tracker,
            info: ModemInfo::default(),
            events,
        };
        match outcome {
            Ok(info) => Ok(Probe { info, ..probe }),
            Err(reason) => {
                probe.close().await;
                Err(reason)
            }
        }
    }

    pub fn handle(&self) -> &ModemHandle {
        &self.handle
    }

    /// Stops the task (after any command in flight) and closes the port.
    pub async fn close(self) {
        let Probe {
            handle,
            token,
            tracker,
            events,
            ..
        } = self;
        token.cancel();
        drop(handle);
        drop(events);
        tracker.close();
        tracker.wait().await;
    }
}
