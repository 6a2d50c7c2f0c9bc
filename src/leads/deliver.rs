//! The delivery worker: one task that takes each due (lead, recipient, channel) row from the
//! store, tries it, and records what happened before it looks at the next. Nothing is sent that is
//! not first a row; a row is marked delivered only after the channel accepted it; a failure that
//! may pass is tried again with back-off until `notify.give_up_after_hours`, one that cannot is
//! recorded at once. An owner's SMS is a text in the outbox, and its row follows that text.
//!
//! A row is the lead's summary, or a notice of a text the caller sent after the lead went out
//! (`reply_id`); both go the same way, with the same retries, each rendered for what it tells.

use std::sync::Arc;
use std::time::Duration;

use chrono::{DateTime, TimeZone, Utc};
use lettre::message::Mailbox;
use tokio_util::sync::CancellationToken;
use tracing::{Instrument, debug, info, info_span, warn};

use super::summary::{LeadSummary, ReplySummary};
use super::{DeliveryError, email, token, webhook, whatsapp};
use crate::clock::Clock;
use crate::codec::pdu;
use crate::config::Config;
use crate::domain::JournalStep;
use crate::domain::{E164, MessageId, ModemId};
use crate::store::{self, DueDelivery, LeadDetail, MessageRow, Store};
use crate::wake::Wakers;

/// The `settings` row holding the key that signs transcript links.
pub const LINK_KEY_SETTING: &str = "transcript_link_key";
/// Even with nothing due, look again this often: `textback leads resend` writes from another
/// process.
const POLL: Duration = Duration::from_secs(5);
/// Back-off doubles up to this.
const MAX_BACKOFF: Duration = Duration::from_secs(30 * 60);
/// A channel with no settings is looked at again this often (the config may be fixed and the
/// daemon restarted sooner; a restart tries every pending row at once).
const UNCONFIGURED_RECHECK: Duration = Duration::from_secs(60 * 60);
/// How many due rows one pass takes.
const BATCH: u32 = 16;

/// How long the first retry waits; each later one waits twice as long as the one before.
#[derive(Debug, Clone, Copy)]
pub struct Backoff {
    pub first: Duration,
}

impl Default for Backoff {
    fn default() -> Self {
        Self {
            first: Duration::from_secs(30),
        }
    }
}

impl Backoff {
    /// The wait after the `attempts`-th failed attempt (1 for the first).
    pub fn after(&self, attempts: i64) -> Duration {
        let doublings = attempts.clamp(1, 20) as u32 - 1;
        self.first
            .saturating_mul(2u32.saturating_pow(doublings))
            .min(MAX_BACKOFF.max(self.first))
    }
}

/// The key transcript links are signed with: made once per box, kept in the database so that the
/// dashboard (another task, or another process) checks links with the same key.
pub async fn link_key(store: &Store) -> Result<Vec<u8>, store::Error> {
    let mut candidate = [0u8; 32];
    fill_random(&mut candidate);
    store
        .run(move |tx| tx.setting_or_insert(LINK_KEY_SETTING, &candidate))
        .await
}

/// Random bytes from the kernel. A key made without them would be guessable, so failing to read
/// them is the one place a panic is right: the daemon must not start with a predictable key.
fn fill_random(buffer: &mut [u8]) {
    use std::io::Read;
    let read = std::fs::File::open("/dev/urandom").and_then(|mut f| f.read_exact(buffer));
    if let Err(err) = read {
        panic!("cannot read /dev/urandom for the transcript link key: {err}");
    }
}

/// What one delivery row tells its recipient.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Notice {
    /// The lead's summary.
    Lead(LeadSummary),
    /// A text the caller sent after the lead went out.
    Reply(ReplySummary),
}

impl Notice {
    fn lead_id(&self) -> i64 {
        match self {
            Notice::Lead(summary) => summary.lead_id,
            Notice::Reply(reply) => reply.lead.lead_id,
        }
    }

    /// The owner's SMS.
    pub fn sms(&self, now: DateTime<Utc>) -> String {
        match self {
            Notice::Lead(summary) => summary.sms(now),
            Notice::Reply(reply) => reply.sms(now),
        }
    }

    /// The webhook's JSON and its idempotency key for `recipient`.
    fn webhook(&self, recipient: &str) -> (serde_json::Value, String) {
        match self {
            Notice::Lead(summary) => (
                summary.json(),
                webhook::idempotency_key(summary.lead_id, recipient),
            ),
            Notice::Reply(reply) => (
                reply.json(),
                webhook::reply_idempotency_key(reply.lead.lead_id, reply.reply_id, recipient),
            ),
        }
    }
}

/// What an attempt came to.
enum Outcome {
    Delivered {
        external_id: Option<String>,
    },
    Queued(MessageId, ModemId),
    /// The channel has no settings: nothing was tried.
    NotConfigured(String),
    Failed(DeliveryError),
}

pub struct Worker {
    store: Store,
    config: Arc<Config>,
    http: reqwest::Client,
    link_key: Vec<u8>,
    backoff: Backoff,
    /// Its own wake (a lead recorded), and each modem's outbox (an owner's SMS queued).
    wakers: Wakers,
    clock: Clock,
}

impl Worker {
    pub fn new(
        store: Store,
        config: Arc<Config>,
        link_key: Vec<u8>,
        backoff: Backoff,
        wakers: Wakers,
        clock: Clock,
    ) -> Result<Worker, DeliveryError> {
        let http = super::http_client(config.notify.webhook.timeout)?;
        Ok(Worker {
            store,
            config,
            http,
            link_key,
            backoff,
            wakers,
            clock,
        })
    }

    /// Runs until `token` is cancelled; an attempt in flight is finished first (each has its own
    /// timeout), so nothing is left half-recorded.
    pub async fn run(self, token: CancellationToken) {
        let span = info_span!("leads");
        async move {
            let now = self.clock.now_ms();
            match self.store.run(move |tx| tx.restart_deliveries(now)).await {
                Ok(0) => {}
                Ok(n) => info!(
                    deliveries = n,
                    "lead deliveries waiting from before; trying them now"
                ),
                Err(err) => warn!(error = %err, "could not read the lead deliveries"),
            }
            loop {
                if token.is_cancelled() {
                    return;
                }
                let now = self.clock.now_ms();
                let due = match self
                    .store
                    .run(move |tx| tx.due_deliveries(now, BATCH))
                    .await
                {
                    Ok(due) => due,
                    Err(err) => {
                        warn!(error = %err, "could not read the lead deliveries");
                        Vec::new()
                    }
                };
                let busy = !due.is_empty();
                for delivery in due {
                    if token.is_cancelled() {
                        return;
                    }
                    self.attempt(delivery).await;
                }
                if busy {
                    continue;
                }
                let next = self
                    .store
                    .run(|tx| tx.next_delivery_ms())
                    .await
                    .ok()
                    .flatten();
                let wait = next
                    .map(|at| Duration::from_millis((at - self.clock.now_ms()).max(0) as u64))
                    .unwrap_or(POLL)
                    .min(POLL);
                let woken = self.wakers.leads();
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

    async fn attempt(&self, delivery: DueDelivery) {
        let span = info_span!("delivery", lead_id = delivery.lead.0, reply = delivery.reply.map(|r| r.0), channel = %delivery.channel);
        async {
            let id = delivery.id;
            let now = self.clock.now_ms();
            let claimed = self.store.run(move |tx| tx.claim_delivery(id, now)).await;
            if !matches!(claimed, Ok(true)) {
                return;
            }
            let lead = delivery.lead;
            let detail = match self.store.run(move |tx| tx.lead(lead)).await {
                Ok(Some(detail)) => detail,
                Ok(None) => {
                    self.record(
                        &delivery,
                        Outcome::Failed(DeliveryError::permanent(
                            "the lead is no longer in the database",
                        )),
                    )
                    .await;
                    return;
                }
                Err(err) => {
                    self.record(
                        &delivery,
                        Outcome::Failed(DeliveryError::transient(format!(
                            "reading the lead: {err}"
                        ))),
                    )
                    .await;
                    return;
                }
            };
            let notice = match delivery.reply {
                None => summarise(&self.config, &self.link_key, &detail).map(Notice::Lead),
                Some(reply) => match self.store.run(move |tx| tx.message(reply)).await {
                    Ok(Some(message)) => {
                        summarise_reply(&self.config, &self.link_key, &detail, &message)
                            .map(Notice::Reply)
                    }
                    Ok(None) => Err(DeliveryError::permanent(format!(
                        "the reply (SMS {reply}) is no longer in the database"
                    ))),
                    Err(err) => Err(DeliveryError::transient(format!(
                        "reading the reply: {err}"
                    ))),
                },
            };
            let now = self.clock.now();
            let outcome = match notice {
                Ok(notice) => self.send(&delivery, &detail, &notice, now).await,
                Err(err) => Outcome::Failed(err),
            };
            self.record(&delivery, outcome).await;
        }
        .instrument(span)
        .await
    }

    async fn send(
        &self,
        delivery: &DueDelivery,
        detail: &LeadDetail,
        notice: &Notice,
        now: DateTime<Utc>,
    ) -> Outcome {
        match delivery.channel.as_str() {
            "email" => self.email(delivery, notice, now).await,
            "webhook" => {
                let notify = &self.config.notify.webhook;
                let secret = notify.secret.as_ref().map(|s| s.expose().as_bytes());
                let (body, key) = notice.webhook(&delivery.recipient);
                match webhook::send(
                    &self.http,
                    &delivery.target,
                    secret,
                    &key,
                    &body,
                    notify.timeout,
                )
                .await
                {
                    Ok(()) => Outcome::Delivered { external_id: None },
                    Err(err) => Outcome::Failed(err),
                }
            }
            "whatsapp" => self.whatsapp(delivery, notice, now).await,
            "sms" => self.sms(delivery, detail, notice, now).await,
            other => Outcome::Failed(DeliveryError::permanent(format!(
                "unknown channel {other:?}"
            ))),
        }
    }

    async fn email(&self, delivery: &DueDelivery, notice: &Notice, now: DateTime<Utc>) -> Outcome {
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
        let to: Mailbox = match delivery.target.parse() {
            Ok(to) => to,
            Err(err) => {
                return Outcome::Failed(DeliveryError::permanent(format!(
                    "profile.recipient.email {:?}: {err}",
                    delivery.target
                )));
            }
        };
        let built = match notice {
            Notice::Lead(summary) => email::build_message(&from, &to, summary, now),
            Notice::Reply(reply) => email::build_reply_message(&from, &to, reply, now),
        };
        let message = match built {
            Ok(message) => message,
            Err(err) => return Outcome::Failed(err),
        };
        let smtp = email::SmtpSettings::from_config(settings, self.config.notify.webhook.timeout);
        match email::send(&smtp, &message).await {
            Ok(()) => Outcome::Delivered { external_id: None },
            Err(err) => Outcome::Failed(err),
        }
    }

    async fn whatsapp(
        &self,
        delivery: &DueDelivery,
        notice: &Notice,
        now: DateTime<Utc>,
    ) -> Outcome {
        let Some(settings) = &self.config.notify.whatsapp else {
            return Outcome::NotConfigured(
                "[notify.whatsapp] is not set: add notify.whatsapp.phone_number_id, token and template".to_string(),
            );
        };
        let to = match E164::parse(&delivery.target) {
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
        // The box hears nothing back from WhatsApp, so it never knows a 24-hour window is open:
        // a template when there is one, else free text.
        let window_open = settings.template.is_none();
        let message = match notice {
            Notice::Lead(summary) => {
                whatsapp::WhatsAppMessage::for_lead(&settings, summary, now, window_open)
            }
            Notice::Reply(reply) => {
                whatsapp::WhatsAppMessage::for_reply(&settings, reply, now, window_open)
            }
        };
        let message = match message {
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

    /// The owner's SMS: queued in the outbox of the modem the conversation was on (the owner
    /// knows that number), in the same transaction that marks the row queued.
    async fn sms(
        &self,
        delivery: &DueDelivery,
        detail: &LeadDetail,
        notice: &Notice,
        now: DateTime<Utc>,
    ) -> Outcome {
        let to = match E164::parse(&delivery.target) {
            Ok(to) => to,
            Err(err) => {
                return Outcome::Failed(DeliveryError::permanent(format!(
                    "profile.recipient.sms: {err}"
                )));
            }
        };
        let text = notice.sms(now);
        let parts = pdu::segment(&text).parts.len();
        let modem = detail.modem.clone();
        let id = delivery.id;
        let queued_on = modem.clone();
        let what = match delivery.reply {
            None => format!("lead {} summary", notice.lead_id()),
            Some(reply) => format!("lead {}: the reply SMS {reply}", notice.lead_id()),
        };
        let at = self.clock.now_ms();
        let queued = self
            .store
            .run(move |tx| {
                let message = tx.queue_sms(None, &to, &queued_on, &text, parts, at)?;
                tx.delivery_queued(id, message, at)?;
                tx.journal(
                    None,
                    None,
                    JournalStep::Lead,
                    &format!("{what} queued as SMS {message} to {}", to.redacted()),
                    at,
                )?;
                Ok(message)
            })
            .await;
        match queued {
            Ok(message) => Outcome::Queued(message, modem),
            Err(err) => {
                Outcome::Failed(DeliveryError::transient(format!("queueing the SMS: {err}")))
            }
        }
    }

    async fn record(&self, delivery: &DueDelivery, outcome: Outcome) {
        let id = delivery.id;
        let at = self.clock.now_ms();
        let gave_up_at = delivery.created_ms + self.config.notify.give_up_after.as_millis() as i64;
        let recorded = match outcome {
            Outcome::Delivered { external_id } => {
                info!(recipient = %delivery.recipient, "lead delivered");
                self.store
                    .run(move |tx| tx.delivery_delivered(id, external_id.as_deref(), at))
                    .await
            }
            Outcome::Queued(message, modem) => {
                info!(recipient = %delivery.recipient, sms = %message, "lead summary queued for the owner's phone");
                self.wakers.outbox(&modem);
                Ok(())
            }
            Outcome::NotConfigured(reason) => {
                debug!(reason, "channel not configured; the delivery waits");
                let next = at + UNCONFIGURED_RECHECK.as_millis() as i64;
                self.store
                    .run(move |tx| tx.delivery_retry(id, &reason, next, false, at))
                    .await
            }
            Outcome::Failed(err) if err.is_transient() && at < gave_up_at => {
                let wait = self.backoff.after(delivery.attempts + 1);
                warn!(recipient = %delivery.recipient, error = %err, retry_in_s = wait.as_secs_f32(), "lead not delivered yet; will try again");
                let next = at + wait.as_millis() as i64;
                let reason = err.reason().to_string();
                self.store
                    .run(move |tx| tx.delivery_retry(id, &reason, next, true, at))
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
                warn!(recipient = %delivery.recipient, error = %reason, "lead delivery failed; `textback leads resend` tries again");
                self.store
                    .run(move |tx| tx.delivery_failed(id, &reason, at))
                    .await
            }
        };
        if let Err(err) = recorded {
            warn!(error = %err, "could not record a lead delivery");
        }
    }
}

/// The lead as the notifications show it, with a transcript link signed with `link_key` that
/// works until `notify.link_valid_days` after the lead.
pub fn summarise(
    config: &Config,
    link_key: &[u8],
    detail: &LeadDetail,
) -> Result<LeadSummary, DeliveryError> {
    summarise_with_link_from(config, link_key, detail, detail.lead.created_ms)
}

/// A reply the caller sent after the lead (`message`, the inbound row), with the lead it belongs
/// to. The transcript link is the lead's, signed the same way, but works until
/// `notify.link_valid_days` after the reply: a reply weeks later still comes with a link that
/// opens.
pub fn summarise_reply(
    config: &Config,
    link_key: &[u8],
    detail: &LeadDetail,
    message: &MessageRow,
) -> Result<ReplySummary, DeliveryError> {
    let from = message.created_ms.max(detail.lead.created_ms);
    Ok(ReplySummary {
        lead: summarise_with_link_from(config, link_key, detail, from)?,
        reply_id: message.id.0,
        text: message.body.clone(),
        received_at: millis_to_time(message.created_ms),
    })
}

/// The lead's summary with a transcript link valid `notify.link_valid_days` after `link_from_ms`.
fn summarise_with_link_from(
    config: &Config,
    link_key: &[u8],
    detail: &LeadDetail,
    link_from_ms: i64,
) -> Result<LeadSummary, DeliveryError> {
    let lead = &detail.lead;
    let caller = E164::parse(&lead.caller).map_err(|err| {
        DeliveryError::permanent(format!(
            "the lead's caller {:?} is not a number: {err}",
            lead.caller
        ))
    })?;
    let profile = config
        .profiles
        .iter()
        .find(|p| p.id.as_str() == lead.profile);
    let answer = |id: &str| {
        lead.answers
            .iter()
            .find(|(question, _)| question.as_str() == id)
            .map(|(_, text)| text.clone())
    };
    let answers = lead
        .answers
        .iter()
        .filter(|(question, _)| !matches!(question.as_str(), "name" | "reason"))
        .map(|(question, text)| (label(question.as_str()), text.clone()))
        .collect();
    let expires = millis_to_time(link_from_ms) + config.notify.link_valid;
    let link = token::TranscriptToken::issue(link_key, lead.id.0, expires.timestamp());
    Ok(LeadSummary {
        lead_id: lead.id.0,
        profile: profile
            .map(|p| p.name.clone())
            .unwrap_or_else(|| lead.profile.clone()),
        caller,
        caller_name: answer("name"),
        missed_at: millis_to_time(detail.missed_at_ms),
        called_number: detail.called.as_deref().and_then(|n| E164::parse(n).ok()),
        reason: answer("reason"),
        answers,
        complete: lead.complete,
        urgent: false,
        transcript_url: token::transcript_url(&config.dashboard.public_url, &link),
    })
}

/// A question id as a label: "job_type" → "Job type".
fn label(id: &str) -> String {
    let spaced = id.replace(['_', '-'], " ");
    let mut chars = spaced.chars();
    match chars.next() {
        Some(first) => first.to_uppercase().chain(chars).collect(),
        None => String::new(),
    }
}

fn millis_to_time(ms: i64) -> DateTime<Utc> {
    Utc.timestamp_millis_opt(ms)
        .single()
        .unwrap_or_else(Utc::now)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn back_off_doubles_from_the_first_wait_up_to_the_cap() {
        let backoff = Backoff::default();
        let waits: Vec<u64> = (1..=9).map(|n| backoff.after(n).as_secs()).collect();
        assert_eq!(waits, [30, 60, 120, 240, 480, 960, 1800, 1800, 1800]);
        // A test's short first wait still doubles.
        let quick = Backoff {
            first: Duration::from_millis(100),
        };
        assert_eq!(quick.after(3), Duration::from_millis(400));
    }

    #[test]
    fn question_ids_read_as_labels() {
        assert_eq!(label("job_type"), "Job type");
        assert_eq!(label("postcode"), "Postcode");
        assert_eq!(label(""), "");
    }
}
