//! Telling the business that a SIM or modem needs a person, before a lead is lost: each fault
//! (`store::health`) is opened or cleared here and told once to the recipients of the businesses the modem serves, by SMS
//! through another modem of the pool that can send (a refused or unregistered SIM cannot carry
//! news of itself) and by email, WhatsApp and webhook as notices (which need no SIM at all), each
//! recorded in `alerts` with its channel; with nothing to carry it the alert is recorded and
//! logged, and `doctor` and the dashboard show it. Kept small on purpose: it writes ordinary rows
//! (the outbox's, the notices'), as a lead's delivery does.

use std::sync::Arc;
use std::time::Duration;

use tracing::{info, warn};

use crate::clock::Clock;
use crate::config::{Channel, Config, Recipient};
use crate::core::notice::{self, NoticeKind};
use crate::domain::{FaultKind, ModemId};
use crate::modem::ModemHandle;
use crate::notify;
use crate::store::{self, Store};
use crate::wake::Wakers;

/// At most one alert per modem and kind of fault in this time: a SIM that flaps on and off the
/// network must not text the owner every few minutes.
pub const ALERT_INTERVAL: Duration = Duration::from_secs(6 * 60 * 60);

/// What is needed to tell someone.
#[derive(Clone)]
pub struct Alerter {
    pub store: Store,
    pub config: Arc<Config>,
    /// Every modem of the pool, to find one that can carry the alert.
    pub pool: Vec<ModemHandle>,
    pub wakers: Wakers,
    pub clock: Clock,
}

/// One fault to tell.
pub struct Alert<'a> {
    pub fault: i64,
    pub modem: &'a ModemId,
    pub kind: FaultKind,
    /// What happened and what to do, in words, e.g. "the network refuses its texts (no credit).
    /// Top up the SIM".
    pub text: String,
}

impl Alerter {
    /// Tells the business about `alert`, unless a fault of the same kind on the same modem was
    /// told within [`ALERT_INTERVAL`]: by SMS through a modem that can send, and by email,
    /// WhatsApp and webhook as notices (`notify::deliver` sends them), each recorded in `alerts`
    /// with its channel. Returns how many SMS and notices were written.
    pub async fn raise(&self, alert: Alert<'_>) -> Result<usize, store::Error> {
        let now = self.clock.now_ms();
        let modem = alert.modem.clone();
        let kind = alert.kind;
        let last = self
            .store
            .run(move |tx| tx.last_alert_ms(&modem, kind))
            .await?;
        if last.is_some_and(|at| now - at < ALERT_INTERVAL.as_millis() as i64) {
            info!(modem = %alert.modem, kind = %alert.kind, "alert already sent recently; not repeated");
            return Ok(0);
        }
        let carrier = self.carrier(alert.modem, alert.kind);
        let business = self.business_name(alert.modem);
        let text = format!("textback ({business}): SIM {} {}", alert.modem, alert.text);
        let at = self.clock.now();
        let rendered = notice::alert(&notice::ModemAlert {
            business: &business,
            modem: alert.modem.as_str(),
            kind: alert.kind.as_str(),
            what: &alert.text,
            at: &at.to_rfc3339_opts(chrono::SecondsFormat::Secs, true),
            local_time: &crate::time_text::local_time(at),
        });
        let targets = self.targets(alert.modem);
        let others = self.notice_recipients(alert.modem);
        let fault = alert.fault;
        let carrier_id = carrier.clone();
        let box_name = self.config.box_name.clone();
        let (queued, noticed) = self
            .store
            .run(move |tx| {
                let mut queued = 0;
                if let Some(carrier) = &carrier_id {
                    for (name, number) in &targets {
                        let parts = crate::codec::pdu::segment(&text).parts.len();
                        let id = tx.queue_sms(None, number, carrier, &text, parts, now)?;
                        tx.insert_alert(fault, name, "sms", &text, Some(id), now)?;
                        queued += 1;
                    }
                }
                let mut noticed = 0;
                for (profile, recipient) in &others {
                    let written = notify::write_for(
                        tx,
                        recipient,
                        &notify::Write {
                            profile,
                            kind: NoticeKind::Alert,
                            rendered: &rendered,
                            fault: Some(fault),
                            gather_until_ms: now,
                            box_name: &box_name,
                            at_ms: now,
                        },
                    )?;
                    for (channel, _) in written {
                        tx.insert_alert(
                            fault,
                            &recipient.name,
                            channel.as_str(),
                            &text,
                            None,
                            now,
                        )?;
                        noticed += 1;
                    }
                }
                if queued + noticed == 0 {
                    tx.insert_alert(fault, "-", "log", &text, None, now)?;
                }
                tx.mark_alerted(fault, now)?;
                Ok((queued, noticed))
            })
            .await?;
        if noticed > 0 {
            self.wakers.notice();
        }
        match &carrier {
            Some(carrier) if queued > 0 => {
                info!(modem = %alert.modem, kind = %alert.kind, via = %carrier, recipients = queued, notices = noticed, "alert queued");
                self.wakers.outbox(carrier);
            }
            _ if noticed > 0 => {
                info!(modem = %alert.modem, kind = %alert.kind, notices = noticed, "alert written for email, WhatsApp and webhook (no SMS: no modem can carry it, or no recipient has an sms channel)")
            }
            _ => {
                warn!(modem = %alert.modem, kind = %alert.kind, "no modem can carry the alert and no recipient has another channel; recorded for doctor and the dashboard")
            }
        }
        Ok(queued + noticed)
    }

    /// Opens (or refreshes) a fault of `kind` on `modem` and, when `tell` and not told yet,
    /// tells the business. `detail` says what happened and what to do.
    pub async fn open_fault(
        &self,
        modem: &ModemId,
        kind: FaultKind,
        cause: &'static str,
        detail: String,
        tell: bool,
    ) {
        let now = self.clock.now_ms();
        let id = modem.clone();
        let stored_detail = detail.clone();
        let opened = self
            .store
            .run(move |tx| {
                let opened = tx.open_fault(&id, kind, cause, &stored_detail, now)?;
                let told = tx
                    .open_fault_of(&id, kind)?
                    .and_then(|f| f.alerted_ms)
                    .is_some();
                Ok((opened, told))
            })
            .await;
        let (opened, told) = match opened {
            Ok(result) => result,
            Err(err) => {
                warn!(error = %err, "recording a modem fault");
                return;
            }
        };
        if matches!(opened, store::Opened::New(_)) {
            warn!(modem = %modem, kind = %kind, cause, detail, "modem fault");
        }
        if tell && !told {
            let alert = Alert {
                fault: opened.id(),
                modem,
                kind,
                text: detail,
            };
            if let Err(err) = self.raise(alert).await {
                warn!(error = %err, "recording an alert");
            }
        }
    }

    /// Closes the open fault of `kind` on `modem`, if any, logging how long it lasted.
    pub async fn clear_fault(&self, modem: &ModemId, kind: FaultKind) {
        let now = self.clock.now_ms();
        let id = modem.clone();
        match self
            .store
            .run(move |tx| tx.clear_fault(&id, kind, now))
            .await
        {
            Ok(Some(fault)) => {
                let lasted_ms = now - fault.started_ms;
                info!(modem = %modem, kind = %kind, cause = fault.cause, lasted_ms, "modem fault cleared");
            }
            Ok(None) => {}
            Err(err) => warn!(error = %err, "clearing a modem fault"),
        }
    }

    /// A modem that can send now, other than the one at fault; the one at fault itself when its
    /// fault does not stop it sending (a full store, the recipient cap) and no other can.
    fn carrier(&self, failing: &ModemId, kind: FaultKind) -> Option<ModemId> {
        let usable = |handle: &&ModemHandle| handle.state().is_usable();
        let other = self
            .pool
            .iter()
            .filter(usable)
            .find(|handle| handle.id() != failing);
        let itself = match kind {
            FaultKind::StorageFull
            | FaultKind::RecipientCap
            | FaultKind::DeliveryLow
            | FaultKind::LowBalance
            | FaultKind::SelfTest => self.pool.iter().filter(usable).find(|h| h.id() == failing),
            FaultKind::Refused | FaultKind::OffNetwork | FaultKind::NotAnswering => None,
        };
        other.or(itself).map(|handle| handle.id().clone())
    }

    /// The businesses the modem serves: the profile it is pinned to or pins it, else every
    /// profile (a pool modem serves any business).
    fn served(&self, modem: &ModemId) -> Vec<&crate::config::Profile> {
        let own = self
            .config
            .modems
            .iter()
            .find(|m| &m.id == modem)
            .and_then(|m| m.profile.clone());
        let pinned: Vec<_> = self
            .config
            .profiles
            .iter()
            .filter(|p| p.modem.as_ref() == Some(modem) || own.as_ref() == Some(&p.id))
            .collect();
        if pinned.is_empty() {
            self.config.profiles.iter().collect()
        } else {
            pinned
        }
    }

    fn business_name(&self, modem: &ModemId) -> String {
        self.served(modem)
            .iter()
            .map(|p| p.name.clone())
            .collect::<Vec<_>>()
            .join(", ")
    }

    /// Each recipient with its email, WhatsApp and webhook channels (those not told already by
    /// an earlier recipient), with the profile it belongs to.
    fn notice_recipients(&self, modem: &ModemId) -> Vec<(String, Recipient)> {
        let mut seen: Vec<Channel> = Vec::new();
        let mut out = Vec::new();
        for profile in self.served(modem) {
            for recipient in &profile.recipients {
                let channels: Vec<Channel> = recipient
                    .channels
                    .iter()
                    .filter(|c| !matches!(c, Channel::Sms(_)) && !seen.contains(c))
                    .cloned()
                    .collect();
                if channels.is_empty() {
                    continue;
                }
                seen.extend(channels.iter().cloned());
                out.push((
                    profile.id.as_str().to_string(),
                    Recipient {
                        channels,
                        ..recipient.clone()
                    },
                ));
            }
        }
        out
    }

    /// Each recipient's SMS number, once.
    fn targets(&self, modem: &ModemId) -> Vec<(String, crate::domain::E164)> {
        let mut targets: Vec<(String, crate::domain::E164)> = Vec::new();
        for profile in self.served(modem) {
            for recipient in &profile.recipients {
                for channel in &recipient.channels {
                    if let Channel::Sms(number) = channel
                        && !targets.iter().any(|(_, n)| n == number)
                    {
                        targets.push((recipient.name.clone(), number.clone()));
                    }
                }
            }
        }
        targets
    }
}
