//! A missed call that got no text (a landline, a number from abroad, opted out, over a cap, the
//! assistant paused, withheld) needs a call back: told to each of the profile's recipients on
//! every channel they have, gathered with the other such calls of the next few minutes
//! (`profile.recipient.call_back_gather`) into one message. The SMS is one text held in the
//! outbox and rewritten as calls join it; email, WhatsApp and webhook are one `notices` row each,
//! rewritten the same way, sent by `notify::deliver` once the gathering time is over.

use chrono::SecondsFormat;

use crate::codec::pdu;
use crate::config::{Channel, Config, Profile};
use crate::core::notice::{self, NoticeKind, UntextedCall};
use crate::domain::{E164, ModemId};
use crate::notify;
use crate::store::{self, Tx};

/// The `messages.author` of call-back notices (how one still gathering is found).
const CALL_BACK_AUTHOR: &str = "textback: call back";

/// A text still gathering is not made longer than this: a new one starts.
const MAX_GATHERED_SMS: usize = 400;

/// Tells `profile`'s recipients that `caller` (`None`: withheld) needs a call back, `why` in a
/// few words. Returns the modems to wake (the notice deliverer is woken after every step).
pub(super) fn notice(
    tx: &Tx<'_>,
    config: &Config,
    profile: &Profile,
    rang: Option<&ModemId>,
    caller: Option<&E164>,
    why: &str,
    now: i64,
) -> Result<Vec<ModemId>, store::Error> {
    let at = chrono::DateTime::from_timestamp_millis(now).unwrap_or_default();
    let call = UntextedCall {
        number: caller.map(|number| number.to_string()),
        shown: caller
            .map(|number| number.national())
            .unwrap_or_else(|| "a withheld number".to_string()),
        at: at.to_rfc3339_opts(SecondsFormat::Secs, true),
        local_time: at
            .with_timezone(&chrono_tz::Europe::London)
            .format("%H:%M")
            .to_string(),
        why: why.to_string(),
    };
    let modem = profile
        .modem
        .clone()
        .or_else(|| rang.cloned())
        .or_else(|| config.modems.first().map(|m| m.id.clone()));
    let mut woken = Vec::new();
    for recipient in &profile.recipients {
        let gather_until = now + recipient.call_back_gather.as_millis() as i64;
        for channel in &recipient.channels {
            match channel {
                Channel::Sms(to) => {
                    if let Some(modem) = &modem {
                        sms(tx, profile, modem, to, &call, gather_until, now)?;
                        woken.push(modem.clone());
                    }
                }
                Channel::Email(_) | Channel::WhatsApp(_) | Channel::Webhook(_) => {
                    let target = channel.target();
                    let gathering = tx.gathering_notice(
                        NoticeKind::CallBack,
                        profile.id.as_str(),
                        &recipient.name,
                        channel.kind(),
                        &target,
                        now,
                    )?;
                    if let Some((id, json)) = gathering {
                        let mut calls = notice::calls_of(&json);
                        calls.push(call.clone());
                        let rendered =
                            notice::call_back(profile.id.as_str(), &profile.name, &calls);
                        if tx.rewrite_notice(id, &rendered, now)? {
                            continue;
                        }
                    }
                    let rendered = notice::call_back(
                        profile.id.as_str(),
                        &profile.name,
                        std::slice::from_ref(&call),
                    );
                    let only = crate::config::Recipient {
                        channels: vec![channel.clone()],
                        ..recipient.clone()
                    };
                    notify::write_for(
                        tx,
                        &only,
                        &notify::Write {
                            profile: profile.id.as_str(),
                            kind: NoticeKind::CallBack,
                            rendered: &rendered,
                            fault: None,
                            gather_until_ms: gather_until,
                            box_name: &config.box_name,
                            at_ms: now,
                        },
                    )?;
                }
            }
        }
    }
    Ok(woken)
}

/// The SMS: one text held in `modem`'s outbox until `gather_until`, with a line per call.
fn sms(
    tx: &Tx<'_>,
    profile: &Profile,
    modem: &ModemId,
    to: &E164,
    call: &UntextedCall,
    gather_until: i64,
    now: i64,
) -> Result<(), store::Error> {
    let line = crate::codec::gsm7::to_gsm7(&call.line());
    match tx.held_text(to, modem, CALL_BACK_AUTHOR, now)? {
        Some((id, body)) if body.len() < MAX_GATHERED_SMS => {
            let body = format!("{body}\n{line}");
            let parts = pdu::segment(&body).parts.len();
            tx.rewrite_queued(id, &body, parts, now)?;
        }
        _ => {
            let body = format!(
                "{}: missed, not texted - please call back:\n{line}",
                crate::codec::gsm7::to_gsm7(&profile.dialogue.business)
            );
            let parts = pdu::segment(&body).parts.len();
            let id = tx.queue_sms_held(None, to, modem, &body, parts, now, gather_until)?;
            tx.set_author(id, CALL_BACK_AUTHOR)?;
        }
    }
    Ok(())
}
