//! Waking the workers that act on stored rows: one outbox per modem, the lead deliverer and the
//! notice deliverer (`notify::deliver`). A
//! step stores its rows first, then says which workers have work ([`After`]); [`Wakers`] is the
//! one way the daemon, the assistant and the lead deliverer tell them.

use std::collections::HashMap;
use std::sync::Arc;

use tokio::sync::Notify;

use crate::domain::ModemId;
use crate::flow::After;

/// Wakes one worker. A wake while the worker is busy is kept: its next wait returns at once.
#[derive(Clone, Default)]
pub struct Wake(Arc<Notify>);

impl Wake {
    pub fn wake(&self) {
        self.0.notify_one();
    }

    /// Returns when woken (at once if a wake came since the last wait).
    pub async fn notified(&self) {
        self.0.notified().await
    }
}

/// Every worker's [`Wake`]: each modem's outbox, the lead deliverer's and the notice
/// deliverer's.
#[derive(Clone, Default)]
pub struct Wakers {
    outboxes: HashMap<ModemId, Wake>,
    leads: Wake,
    notices: Wake,
}

impl Wakers {
    /// Adds a modem's outbox; returns the [`Wake`] its worker waits on.
    pub fn add_outbox(&mut self, modem: ModemId) -> Wake {
        self.outboxes.entry(modem).or_default().clone()
    }

    /// The [`Wake`] the lead deliverer waits on.
    pub fn leads(&self) -> Wake {
        self.leads.clone()
    }

    /// The [`Wake`] the notice deliverer waits on.
    pub fn notices(&self) -> Wake {
        self.notices.clone()
    }

    /// After a stored step: the outboxes with new rows, the lead deliverer (a step may have
    /// recorded a lead) and the notice deliverer (or a call-back notice); each look at what is
    /// due is one query.
    pub fn after(&self, after: &After) {
        for modem in &after.wake {
            self.outbox(modem);
        }
        self.leads.wake();
        self.notices.wake();
    }

    /// The notice deliverer: a notice was written outside a stored step (an alert, a summary).
    pub fn notice(&self) {
        self.notices.wake();
    }

    /// One modem's outbox: a row was queued for it, or the modem is back in service.
    pub fn outbox(&self, modem: &ModemId) {
        if let Some(wake) = self.outboxes.get(modem) {
            wake.wake();
        }
    }

    /// Every outbox: at start, for rows left queued.
    pub fn all_outboxes(&self) {
        for wake in self.outboxes.values() {
            wake.wake();
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::time::Duration;

    #[tokio::test]
    async fn a_step_wakes_the_outboxes_it_names_and_the_lead_deliverer() {
        let mut wakers = Wakers::default();
        let one = wakers.add_outbox(ModemId::parse("one").unwrap());
        let two = wakers.add_outbox(ModemId::parse("two").unwrap());
        let leads = wakers.leads();
        wakers.after(&After {
            wake: vec![ModemId::parse("two").unwrap()],
            ..After::default()
        });
        let woken = |wake: Wake| async move {
            tokio::time::timeout(Duration::from_millis(50), wake.notified())
                .await
                .is_ok()
        };
        assert!(woken(two).await);
        assert!(woken(leads).await);
        assert!(!woken(one.clone()).await);
        wakers.all_outboxes();
        assert!(woken(one).await);
    }
}
