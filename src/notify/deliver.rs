//! The notice worker: one task that takes each due `notices` row (done gathering, back-off over),
//! claims it, sends it by email, WhatsApp or webhook, and records what happened before it looks
//! at the next. A row is claimed (state `sending`) before the attempt, so a second look never
//! sends it again; after a crash mid-attempt the row is tried once more at start-up, and the
//! webhook's idempotency key and the email's Message-ID (both from the row's id) let the far end
//! drop the copy. A failure that may pass is retried with `leads::deliver::Backoff` until
//! `notify.give_up_after_hours`; one that cannot is recorded at once.

use std::sync::Arc;
use std::time::Duration;

use chrono::{DateTime, Utc};
use lettre::message::Mailbox;
use tokio_util::sync::CancellationToken;
use tracing::{Instrument, debug, info, info_span, warn};

use crate::clock::Clock;
use crate::config::Config;
use crate::domain::E164;
use crate::leads::deliver::Backoff;
use crate::leads::{DeliveryError, email, webhook, whatsapp};
use crate::store::{DueNotice, Store};
use crate::wake::Wakers;

/// Even with nothing due, look again this often (another process may have written a row).
const POLL: Duration = Duration::from_secs(5);
/// A channel with no settings is looked at again this often.
const UNCONFIGURED_RECHECK: Duration = Duration::from_secs(60 * 60);
/// How many due rows one pass takes.
const BATCH: u32 = 16;

/// What an attempt came to.
enum Outcome {
    Delivered {
        external_id: Option<String>,
    },
    /// The channel has no settings: nothing was tried.
    NotConfigured(String),
    Failed(DeliveryError),
}

pub struct Worker {
    store: Store,
    config: Arc<Config>,
    http: reqwest::Client,
    backoff: Backoff,
    /// Its own wake (a notice written).
    wakers: Wakers,
    clock: Clock,
}

impl Worker {
    pub fn new(
        store: Store,
        config: Arc<Config>,
        backoff: Backoff,
        wakers: Wakers,
        clock: Clock,
    ) -> Result<Worker, DeliveryError> {
        let http = crate::leads::http_client(config.notify.webhook.timeout)?;
        Ok(Worker {
            store,
            config,
            http,
            backoff,
            wakers,
            clock,
        })
    }

    /// Runs until `token` is cancelled; an attempt in flight is finished first (each has its own
    /// timeout), so nothing is left half-recorded.
    pub async fn run(self, token: CancellationToken) {
        let span = info_span!("notices");
        async move {
            let now = self.clock.now_ms();
            match self.store.run(move |tx| tx.restart_notices(now)).await {
                Ok(0) => {}
                Ok(n) => info!(notices = n, "notices waiting from before; trying them now"),
                Err(err) => warn!(error = %err, "could not read the notices"),
            }
            loop {
                if token.is_cancelled() {
                    return;
                }
                let now = self.clock.now_ms();
                let due = match self.store.run(move |tx| tx.due_notices(now, BATCH)).await {
                    Ok(due) => due,
                    Err(err) => {
                        warn!(error = %err, "could not read the notices");
                        Vec::new()
                    }
                };
                let busy = !due.is_empty();
                for notice in due {
                    if token.is_cancelled() {
                        return;
                    }
                    self.attempt(notice).await;
                }
                if busy {
                    continue;
                }
                let next = self
                    .store
                    .run(|tx| tx.next_notice_ms())
                    .await
                    .ok()
                    .flatten();
                let wait = next
                    .map(|at| Duration::from_millis((at - self.clock.now_ms()).max(0) as u64))
                    .unwrap_or(POLL)
                    .min(POLL);
                let woken = self.wakers.notices();
                tokio::select! {
                    _ = token.cancelled() => return,
                    _ = woken.notified() => {}
                    _ = tokio::time::sleep(wait) => {}
                }
            }
        }
        .instrument(span)
        .await
    }

    async fn attempt(&self, notice: DueNotice) {
        let span =
            info_span!("notice", id = notice.id, kind = %notice.kind, channel = %notice.channel);
        async {
            let id = notice.id;
            let now = self.clock.now_ms();
            let claimed = self.store.run(move |tx| tx.claim_notice(id, now)).await;
            if !matches!(claimed, Ok(true)) {
                return;
            }
            let outcome = self.send(&notice, self.clock.now()).await;
            self.record(&notice, outcome).await;
        }
        .instrument(span)
        .await
    }

    async fn send(&self, notice: &DueNotice, now: DateTime<Utc>) -> Outcome {
        match notice.channel.as_str() {
            "email" => self.email(notice, now).await,
            "webhook" => {
                let settings = &self.config.notify.webhook;
                let secret = settings.secret.as_ref().map(|s| s.expose().as_bytes());
                let body = webhook::body(notice.json.clone(), &self.config.box_name);
                match webhook::send(
                    &self.http,
                    &notice.target,
                    secret,
                    &notice.idempotency_key,
                    &body,
                    settings.timeout,
                )
                .await
                {
                    Ok(()) => Outcome::Delivered { external_id: None },
                    Err(err) => Outcome::Failed(err),
                }
            }
            "whatsapp" => self.whatsapp(notice).await,
            other => Outcome::Failed(DeliveryError::permanent(format!(
                "notice {} has channel {other:?}, which notices do not use (email, whatsapp, \
                 webhook); the owner's SMS goes through the outbox",
                notice.id
            ))),
        }
    }

    async fn email(&self, notice: &DueNotice, now: DateTime<Utc>) -> Outcome {
        let Some(settings) = &self.config.notify.email else {
            return Outcome::NotConfigured(
                "[notify.email] is not set: add notify.email.host and notify.email.from"
                    .to_string(),
            );
        };
        let from: Mailbox = match settings.from.parse() {
            Ok(from) => from,
            Err(err) => {
                return Outcome::Failed(DeliveryError::permanent(format!(
                    "notify.email.from {:?}: {err}",
                    settings.from
                )));
            }
        };
        let to: Mailbox = match notice.target.parse() {
            Ok(to) => to,
            Err(err) => {
                return Outcome::Failed(DeliveryError::permanent(format!(
                    "profile.recipient.email {:?}: {err}",
                    notice.target
                )));
            }
        };
        let message = match email::build_notice_message(
            &from,
            &to,
            &email::NoticeEmail {
                kind: &notice.kind,
                key: &notice.idempotency_key,
                subject: &notice.subject,
                text: &notice.text,
                html: notice.html.as_deref(),
            },
            now,
        ) {
            Ok(message) => message,
            Err(err) => return Outcome::Failed(err),
        };
        let smtp = email::SmtpSettings::from_config(settings, self.config.notify.webhook.timeout);
        match email::send(&smtp, &message).await {
            Ok(()) => Outcome::Delivered { external_id: None },
            Err(err) => Outcome::Failed(err),
        }
    }

    async fn whatsapp(&self, notice: &DueNotice) -> Outcome {
        let Some(settings) = &self.config.notify.whatsapp else {
            return Outcome::NotConfigured(
                "[notify.whatsapp] is not set: add notify.whatsapp.phone_number_id, token and template".to_string(),
            );
        };
        let to = match E164::parse(&notice.target) {
            Ok(to) => to,
            Err(err) => {
                return Outcome::Failed(DeliveryError::permanent(format!(
                    "profile.recipient.whatsapp: {err}"
                )));
            }
        };
        let settings = whatsapp::WhatsAppSettings {
            base_url: settings.base_url.clone(),
            api_version: settings.api_version.clone(),
            phone_number_id: settings.phone_number_id.clone(),
            token: settings.token.expose().to_string(),
            template: settings.template.clone(),
            language: settings.language.clone(),
            timeout: self.config.notify.webhook.timeout,
        };
        // As for leads: the box never knows a 24-hour window is open, so a template when there
        // is one, else free text.
        let window_open = settings.template.is_none();
        let message = match whatsapp::for_notice(
            &settings,
            &notice.subject,
            &notice.text,
            &self.config.dashboard.public_url,
            window_open,
        ) {
            Ok(message) => message,
            Err(err) => return Outcome::Failed(err),
        };
        match whatsapp::send(&self.http, &settings, &to, &message).await {
            Ok(id) => Outcome::Delivered {
                external_id: Some(id),
            },
            Err(err) => Outcome::Failed(err),
        }
    }

    async fn record(&self, notice: &DueNotice, outcome: Outcome) {
        let id = notice.id;
        let at = self.clock.now_ms();
        let gave_up_at = notice.created_ms + self.config.notify.give_up_after.as_millis() as i64;
        let recorded = match outcome {
            Outcome::Delivered { external_id } => {
                info!(recipient = %notice.recipient, "notice delivered");
                self.store
                    .run(move |tx| tx.notice_delivered(id, external_id.as_deref(), at))
                    .await
            }
            Outcome::NotConfigured(reason) => {
                debug!(reason, "channel not configured; the notice waits");
                let next = at + UNCONFIGURED_RECHECK.as_millis() as i64;
                self.store
                    .run(move |tx| tx.notice_retry(id, &reason, next, false, at))
                    .await
            }
            Outcome::Failed(err) if err.is_transient() && at < gave_up_at => {
                let wait = self.backoff.after(notice.attempts + 1);
                warn!(recipient = %notice.recipient, error = %err, retry_in_s = wait.as_secs_f32(), "notice not delivered yet; will try again");
                let next = at + wait.as_millis() as i64;
                let reason = err.reason().to_string();
                self.store
                    .run(move |tx| tx.notice_retry(id, &reason, next, true, at))
                    .await
            }
            Outcome::Failed(err) => {
                let reason = if err.is_transient() {
                    format!(
                        "gave up after {} hours (notify.give_up_after_hours): {}",
                        self.config.notify.give_up_after.as_secs() / 3600,
                        err.reason()
                    )
                } else {
                    err.reason().to_string()
                };
                warn!(recipient = %notice.recipient, error = %reason, "notice failed; fix what it says (`textback doctor` lists it)");
                self.store
                    .run(move |tx| tx.notice_failed(id, &reason, at))
                    .await
            }
        };
        if let Err(err) = recorded {
            warn!(error = %err, "could not record a notice's outcome");
        }
    }
}
