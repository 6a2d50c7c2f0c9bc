//! A text that came in: stored, then given to its conversation (or, outside one, read for STOP,
//! START and HELP, or told to the lead's recipients as a late reply); and delivery reports.

use std::sync::Arc;

use chrono::{DateTime, Utc};
use tracing::{info, warn};

use crate::codec::pdu::{self, Pdu, SmscField};
use crate::config::Config;
use crate::core::conversation::{self as engine, Conversation};
use crate::core::{keywords, loops};
use crate::domain::JournalStep;
use crate::domain::{ConversationState, OptOutSource, PartStatus};
use crate::domain::{E164, MessageId, ModemId};
use crate::store::{self, ConversationRow, NewInbound, Store, Tx};

use super::*;

/// Stores an SMS that came in and moves its conversation on. The caller deletes it from the SIM
/// once this returns `Ok`.
pub async fn sms_received(
    store: &Store,
    config: Arc<Config>,
    sms: InboundSms,
) -> Result<After, store::Error> {
    store
        .run(move |tx| sms_received_tx(tx, &config, &sms))
        .await
}

fn sms_received_tx(tx: &Tx<'_>, config: &Config, sms: &InboundSms) -> Result<After, store::Error> {
    let now = sms.at.timestamp_millis();
    let deliver = match pdu::decode(&sms.pdu, SmscField::Present) {
        Ok(Pdu::Deliver(deliver)) => deliver,
        Ok(other) => {
            warn!(modem = %sms.modem, kind = ?std::mem::discriminant(&other), "stored message is not an SMS-DELIVER; kept as it is");
            keep_undecodable(tx, sms, "not an SMS-DELIVER", now)?;
            return Ok(After::default());
        }
        Err(err) => {
            warn!(modem = %sms.modem, error = %err, "undecodable SMS; kept as it is");
            keep_undecodable(tx, sms, &err.to_string(), now)?;
            return Ok(After::default());
        }
    };
    if !deliver.oddities.is_empty() {
        // Kept, not refused: the odd field is named once here (field notes: odd PDUs).
        warn!(modem = %sms.modem, oddities = %pdu::describe_oddities(&deliver.oddities), "SMS read leniently");
    }
    let sender = deliver.sender.display();
    let timestamp = deliver.timestamp.to_rfc3339();
    let text = match deliver.concat {
        None => deliver.text.clone(),
        Some(concat) => {
            let parts = tx.add_fragment(&store::Fragment {
                modem: &sms.modem,
                sender: &sender,
                reference: concat.reference,
                total: concat.total,
                sequence: concat.sequence,
                body: &deliver.text,
                at_ms: now,
            })?;
            if parts.len() < usize::from(concat.total) {
                info!(modem = %sms.modem, have = parts.len(), of = concat.total, "part of a multipart SMS kept");
                return Ok(After::default());
            }
            tx.remove_fragments(&sms.modem, &sender, concat.reference, concat.total)?;
            parts.into_iter().map(|(_, body)| body).collect::<String>()
        }
    };
    let dedup_key = match deliver.concat {
        None => format!("{sender}|{timestamp}|{text}"),
        Some(concat) => format!("{sender}|{}|{}|{text}", concat.reference, concat.total),
    };
    text_received(tx, config, &sms.modem, &sender, &text, dedup_key, now)
}

/// A text from `sender` arrived (whole, or what arrived of a multipart one): store it once and
/// move its conversation on.
pub(super) fn text_received(
    tx: &Tx<'_>,
    config: &Config,
    modem: &ModemId,
    sender: &str,
    text: &str,
    dedup_key: String,
    now: i64,
) -> Result<After, store::Error> {
    let sender = sender.to_string();
    let text = text.to_string();
    let sms_modem = modem;
    let from = E164::parse(&sender).ok();
    // The box's own daily self-test coming back is never a caller: stored, and the test passed.
    if let Some(token) = crate::core::self_test::token_in(&text)
        && let Some(test) = tx.self_test_by_token(token)?
    {
        let inserted = tx.insert_inbound(&NewInbound {
            conversation: None,
            from: sender.clone(),
            modem: sms_modem.clone(),
            body: text.clone(),
            dedup_key,
            at_ms: now,
        })?;
        if inserted.is_some() {
            tx.self_test_came_back(test.id, sms_modem, now)?;
            let late = if now > test.deadline_ms {
                " (late)"
            } else {
                ""
            };
            info!(modem = %sms_modem, test = test.id, round_trip_ms = now - test.started_ms, "self-test text came back{late}");
            tx.journal(
                None,
                None,
                JournalStep::SelfTest,
                &format!(
                    "self-test {} from modem {} came back on modem {} after {:.1} s{late}",
                    test.id,
                    test.modem,
                    sms_modem,
                    (now - test.started_ms) as f64 / 1000.0
                ),
                now,
            )?;
        }
        return Ok(After::default());
    }
    // A business's own staff number is never a caller: its texts are commands.
    let staff_of = match &from {
        Some(number) => staff::staff_profiles(config, number, sms_modem),
        None => Vec::new(),
    };
    let conversation = match &from {
        Some(_) if !staff_of.is_empty() => None,
        Some(number) => match tx.open_conversation(number)? {
            Some(open) => Some(open),
            None => tx.latest_conversation(number)?,
        },
        None => None,
    };
    let inserted = tx.insert_inbound(&NewInbound {
        conversation: conversation.as_ref().map(|c| c.id),
        from: sender.clone(),
        modem: sms_modem.clone(),
        body: text.clone(),
        dedup_key,
        at_ms: now,
    })?;
    let Some(inbound) = inserted else {
        info!(modem = %sms_modem, "the same SMS delivered again; ignored");
        return Ok(After::default());
    };
    let Some(from) = from else {
        tx.journal(
            None,
            None,
            JournalStep::Reply,
            &format!("SMS from {sender} (not a phone number) kept: {text}"),
            now,
        )?;
        return Ok(After::default());
    };
    if !staff_of.is_empty() {
        return staff::staff_text(
            tx,
            config,
            &Inbound {
                id: inbound,
                from: &from,
                modem: sms_modem,
                text: &text,
            },
            &staff_of,
            now,
        );
    }
    let conversation_id = conversation.as_ref().map(|c| c.id);
    tx.journal(
        None,
        conversation_id,
        JournalStep::Reply,
        &format!("reply from {}: {text}", from.national()),
        now,
    )?;

    match conversation {
        Some(open) if open.state == ConversationState::Open => {
            let Some(profile) = config.profile(&open.profile) else {
                warn!(conversation_id = %open.id, profile = %open.profile, "conversation's profile is no longer in the config");
                return Ok(After::default());
            };
            // Loops: an auto-responder answers every text with the same words, or several texts
            // arrive within seconds; and no number gets more than a day's share of texts.
            let signs = tx.loop_signs(
                &from,
                open.id,
                &text,
                now - loops::BURST_MS,
                now - 24 * 60 * 60 * 1000,
            )?;
            if let Some(why) = loops::stop(&signs) {
                tx.abandon_conversation(open.id, now)?;
                tx.cancel_queued(&from, "the conversation was stopped (a loop)", now)?;
                tx.journal(
                    None,
                    Some(open.id),
                    JournalStep::Loop,
                    &format!("conversation stopped, no reply: {why}"),
                    now,
                )?;
                warn!(conversation_id = %open.id, why, "conversation stopped to break a loop");
                return Ok(After::default());
            }
            // An owner took the conversation over, or the assistant is paused: the text is kept
            // and told to the owner and the lead's recipients; STOP, START and HELP still work.
            let quiet = tx.quiet(open.id, now)?;
            if quiet.is_quiet() && keywords::keyword(&text).is_none() {
                let inbound = Inbound {
                    id: inbound,
                    from: &from,
                    modem: sms_modem,
                    text: &text,
                };
                let detail = match &quiet.owner {
                    Some(owner) => {
                        staff::forward_to_owner(tx, config, open.id, owner, &inbound, now)?
                    }
                    None => "the assistant is paused; kept in the transcript".to_string(),
                };
                let told = match tx.lead_of_conversation(open.id)? {
                    Some(lead) => tell_late_reply(tx, config, &lead, &inbound, now)?,
                    None => String::new(),
                };
                tx.journal(
                    None,
                    Some(open.id),
                    JournalStep::Owner,
                    &format!("the assistant is quiet: {detail}. {told}"),
                    now,
                )?;
                return Ok(After::default());
            }
            // The engine's state, as it left it after the last step. A conversation the retired
            // in-order engine left open (moved at start-up by `adopt_in_order_conversations`)
            // carries on from its answers.
            let state = match tx
                .engine_state(open.id)?
                .map(|json| serde_json::from_str::<engine::ConversationState>(&json))
            {
                Some(Ok(state)) => state,
                Some(Err(err)) => {
                    warn!(conversation_id = %open.id, error = %err, "the conversation's saved state cannot be read; carrying on from its answers");
                    in_order_state(profile, &open)
                }
                None => in_order_state(profile, &open),
            };
            let stop = keywords::keyword(&text) == Some(keywords::Keyword::Stop);
            if stop {
                // STOP overtakes everything: replies still waiting for the assistant are
                // not answered (their texts would follow the confirmation), and the
                // engine opts the caller out now, cancelling whatever is queued.
                let skipped = tx.skip_waiting(open.id, now)?;
                if skipped > 0 {
                    tx.journal(
                        None,
                        Some(open.id),
                        JournalStep::OptOut,
                        &format!(
                            "{skipped} earlier repl{} not answered: the caller sent STOP",
                            if skipped == 1 { "y" } else { "ies" }
                        ),
                        now,
                    )?;
                }
            } else {
                // The caller wrote: a first text still held back goes now, before the
                // answer.
                tx.release_held(open.id, now)?;
            }
            // With a local model the reply waits for the assistant, which asks the model
            // outside any transaction; a reply behind one still waiting waits too, so
            // replies are answered in the order they came.
            if !stop && (profile.llm.is_some() || tx.has_waiting(open.id)?) {
                tx.set_waiting(inbound)?;
                return Ok(After {
                    wake: vec![open.modem],
                    think: vec![open.id],
                });
            }
            let at = DateTime::<Utc>::from_timestamp_millis(now).unwrap_or_else(Utc::now);
            let (next, outcomes) = Conversation::on_reply(&profile.dialogue, &state, &text, at);
            apply_engine(
                tx,
                profile,
                open.id,
                &from,
                &open.modem,
                &next,
                outcomes,
                None,
                now,
                0,
            )?;
            Ok(After {
                wake: vec![open.modem],
                ..After::default()
            })
        }
        other => keyword_outside_conversation(
            tx,
            config,
            &Inbound {
                id: inbound,
                from: &from,
                modem: sms_modem,
                text: &text,
            },
            other.as_ref(),
            now,
        ),
    }
}

/// A text that came in and is stored, from a phone number.
pub(super) struct Inbound<'a> {
    /// Its `messages` row.
    pub(super) id: MessageId,
    pub(super) from: &'a E164,
    /// The modem it came to.
    pub(super) modem: &'a ModemId,
    pub(super) text: &'a str,
}

/// STOP, START and HELP from someone with no open conversation; anything else is kept in the
/// transcript and, when the conversation's lead went out, told to the lead's recipients.
pub(super) fn keyword_outside_conversation(
    tx: &Tx<'_>,
    config: &Config,
    inbound: &Inbound<'_>,
    latest: Option<&ConversationRow>,
    now: i64,
) -> Result<After, store::Error> {
    let (from, modem, text) = (inbound.from, inbound.modem, inbound.text);
    let profile = latest
        .and_then(|c| config.profile(&c.profile))
        .or_else(|| config.profile(&config.default_profile));
    let conversation = latest.map(|c| c.id);
    let Some(profile) = profile else {
        return Ok(After::default());
    };
    let business = |template: &str| {
        engine::render(
            template,
            &[("business", profile.dialogue.business.as_str())],
        )
    };
    let Some(keyword) = keywords::keyword(text) else {
        let lead = match conversation {
            Some(conversation) => tx.lead_of_conversation(conversation)?,
            None => None,
        };
        let detail = match lead {
            Some(lead) => {
                let told = tell_late_reply(tx, config, &lead, inbound, now)?;
                match tx.quiet(lead.conversation, now)?.owner {
                    Some(owner) => format!(
                        "{told}; {}",
                        staff::forward_to_owner(
                            tx,
                            config,
                            lead.conversation,
                            &owner,
                            inbound,
                            now
                        )?
                    ),
                    None => told,
                }
            }
            None => "reply after the conversation ended; kept in the transcript".to_string(),
        };
        tx.journal(None, conversation, JournalStep::LateReply, &detail, now)?;
        return Ok(After::default());
    };
    let reply = match keywords::action(keyword, tx.is_opted_out(from)?) {
        Some(keywords::Action::OptOut) => {
            tx.set_opt_out(from, OptOutSource::Sms, now)?;
            tx.cancel_queued(from, "the caller opted out (STOP)", now)?;
            tx.journal(
                None,
                conversation,
                JournalStep::OptOut,
                &format!("{} opted out", from.national()),
                now,
            )?;
            Some(business(&profile.dialogue.templates.opt_out))
        }
        Some(keywords::Action::Help) => {
            tx.journal(
                None,
                conversation,
                JournalStep::Help,
                "the caller asked for HELP",
                now,
            )?;
            Some(engine::render(
                &profile.dialogue.templates.help,
                &[
                    ("business", profile.dialogue.business.as_str()),
                    ("contact", profile.dialogue.contact.as_str()),
                ],
            ))
        }
        Some(keywords::Action::OptIn) => {
            tx.clear_opt_out(from)?;
            tx.journal(
                None,
                conversation,
                JournalStep::OptIn,
                &format!("{} opted back in", from.national()),
                now,
            )?;
            Some(business(&profile.dialogue.templates.opt_in))
        }
        // A keyword that does nothing (STOP from a number already opted out, say) is for us,
        // not the business.
        None => None,
    };
    let Some(reply) = reply else {
        return Ok(After::default());
    };
    let parts = pdu::segment(&reply).parts.len();
    let id = tx.queue_sms(conversation, from, modem, &reply, parts, now)?;
    tx.journal(
        None,
        conversation,
        JournalStep::Queued,
        &format!("SMS {id} to {} queued: {reply}", from.national()),
        now,
    )?;
    Ok(After {
        wake: vec![modem.clone()],
        ..After::default()
    })
}

fn keep_undecodable(
    tx: &Tx<'_>,
    sms: &InboundSms,
    why: &str,
    now: i64,
) -> Result<(), store::Error> {
    tx.insert_inbound(&NewInbound {
        conversation: None,
        from: "unknown".to_string(),
        modem: sms.modem.clone(),
        body: format!("[undecodable PDU, {why}] {}", sms.pdu),
        dedup_key: format!("pdu|{}", sms.pdu),
        at_ms: now,
    })?;
    Ok(())
}

/// How long the parts of a multipart SMS wait for the missing ones before what arrived is taken
/// as the message, marked incomplete: SMSCs deliver the parts of one message within seconds, and
/// a part missing after this is lost (field note 1).
pub const FRAGMENT_TIMEOUT_MS: i64 = 10 * 60 * 1000;

/// Applies a status report to the SMS it is about.
pub async fn status_report(store: &Store, report: InboundSms) -> Result<(), store::Error> {
    let InboundSms {
        modem,
        pdu: hex,
        at,
        ..
    } = report;
    store
        .run(move |tx| {
            let now = at.timestamp_millis();
            let report = match pdu::decode(&hex, SmscField::Present) {
                Ok(Pdu::StatusReport(report)) => report,
                Ok(_) => {
                    warn!(modem = %modem, "a +CDS that is not a status report; ignored");
                    return Ok(());
                }
                Err(err) => {
                    warn!(modem = %modem, error = %err, "a status report that cannot be read; ignored");
                    return Ok(());
                }
            };
            let Ok(recipient) = E164::parse(&report.recipient.display()) else {
                return Ok(());
            };
            let status = match report.outcome() {
                pdu::DeliveryOutcome::Delivered => PartStatus::Delivered,
                pdu::DeliveryOutcome::Pending => PartStatus::Pending,
                pdu::DeliveryOutcome::Failed => PartStatus::Failed,
            };
            let description = if report.oddities.is_empty() {
                report.describe()
            } else {
                // The report counts; the odd field is named with it (a time zone that is not two
                // decimal digits, as some SMSCs send).
                let oddities = pdu::describe_oddities(&report.oddities);
                warn!(modem = %modem, %oddities, "status report read leniently");
                format!("{} (read leniently: {oddities})", report.describe())
            };
            match tx.apply_delivery_report(&modem, &recipient, report.message_reference, status, &description, now)? {
                Some((message, conversation)) => {
                    tx.journal(
                        None,
                        conversation,
                        JournalStep::Delivery,
                        &format!("SMS {message} to {}: {description}", recipient.national()),
                        now,
                    )?;
                }
                None => info!(modem = %modem, reference = report.message_reference, "status report for no SMS we know"),
            }
            Ok(())
        })
        .await
}
