//! A text from one of a business's staff numbers: read as a command (`core/staff.rs`), decided
//! with what the store knows, carried out, and answered, all in the transaction that stored it.
//! And the other way: a caller's text in a conversation an owner took over, forwarded to them.

use tracing::info;

use crate::codec::pdu;
use crate::config::{Config, Profile};
use crate::core::staff::{self, Decision};
use crate::domain::{ChannelKind, ConversationId, E164, JournalStep, LeadId, ModemId};
use crate::store::{self, Tx};

use super::lead::{StateChange, change_lead_state};
use super::*;

/// The businesses `number` is a staff number of: first those served by the SIM it texted (the
/// one the staff member knows as the business's), then the others.
pub(super) fn staff_profiles<'c>(
    config: &'c Config,
    number: &E164,
    modem: &ModemId,
) -> Vec<&'c Profile> {
    let served = |p: &Profile| {
        p.modem.as_ref() == Some(modem)
            || config
                .modems
                .iter()
                .any(|m| &m.id == modem && m.profile.as_ref() == Some(&p.id))
    };
    let mut profiles: Vec<&Profile> = config
        .profiles
        .iter()
        .filter(|p| p.rules.staff.contains(number))
        .collect();
    profiles.sort_by_key(|p| !served(p));
    profiles
}

/// Reads one lead as the decision needs it.
fn lead_facts(tx: &Tx<'_>, lead: LeadId) -> Result<Option<staff::LeadFacts>, store::Error> {
    let Some(detail) = tx.lead(lead)? else {
        return Ok(None);
    };
    let Ok(caller) = E164::parse(&detail.lead.caller) else {
        return Ok(None);
    };
    Ok(Some(staff::LeadFacts {
        id: lead.0,
        profile: detail.lead.profile.clone(),
        opted_out: tx.is_opted_out(&caller)?,
        caller,
        caller_name: detail
            .lead
            .answers
            .iter()
            .find(|(question, _)| question == "name")
            .map(|(_, name)| name.clone()),
        state: detail.lead.state,
    }))
}

/// A staff text, stored as `inbound`: what it asks is done and the staff member is answered from
/// the SIM it came to.
pub(super) fn staff_text(
    tx: &Tx<'_>,
    config: &Config,
    inbound: &Inbound<'_>,
    profiles: &[&Profile],
    now: i64,
) -> Result<After, store::Error> {
    let from = inbound.from;
    let command = staff::parse(inbound.text);
    let named = match &command {
        staff::Command::Reply { lead: Some(id), .. }
        | staff::Command::Mark { lead: Some(id), .. }
        | staff::Command::Pause { lead: Some(id), .. }
        | staff::Command::Resume { lead: Some(id) } => lead_facts(tx, LeadId(*id))?,
        _ => None,
    };
    let recent = match tx.recent_lead_for(from, now - staff::PLAIN_REPLY_WINDOW_MS)? {
        Some(lead) => lead_facts(tx, lead)?,
        None => None,
    };
    let facts = staff::Facts {
        profiles: profiles.iter().map(|p| p.id.to_string()).collect(),
        named,
        recent,
    };
    let business = profiles
        .first()
        .map(|p| p.dialogue.business.as_str())
        .unwrap_or("textback");
    let decision = staff::decide(&command, &facts, business);
    let by = staff_author(from);
    let mut after = After::default();
    let conversation_of = |lead: &staff::LeadFacts| -> Result<_, store::Error> {
        Ok(tx
            .lead(LeadId(lead.id))?
            .map(|detail| (detail.lead.conversation, detail.modem)))
    };
    let (ack, detail, conversation) = match decision {
        Decision::Nothing => return Ok(After::default()),
        Decision::Refuse(why) => (why, "refused".to_string(), None),
        Decision::Help(text) => (text, "asked for HELP".to_string(), None),
        Decision::SendToCaller { lead, text, ack } => {
            let Some((conversation, modem)) = conversation_of(&lead)? else {
                return Ok(After::default());
            };
            let parts = pdu::segment(&text).parts.len();
            let id =
                tx.queue_authored_sms(conversation, &lead.caller, &modem, &text, parts, &by, now)?;
            tx.set_owner(conversation, from, now)?;
            tx.journal(
                None,
                Some(conversation),
                JournalStep::Owner,
                &format!(
                    "{} replied to the caller (lead {}), SMS {id} in {parts} part{} queued; the assistant is quiet from now on: {text}",
                    from.national(),
                    lead.id,
                    if parts == 1 { "" } else { "s" }
                ),
                now,
            )?;
            after.wake.push(modem);
            (
                ack,
                format!("reply to lead {}", lead.id),
                Some(conversation),
            )
        }
        Decision::SetState { lead, state, ack } => {
            match change_lead_state(tx, config, LeadId(lead.id), state, &by, now)? {
                StateChange::Changed { lead: row, .. } | StateChange::Unchanged(row) => (
                    ack,
                    format!("marked lead {} {}", lead.id, state.words()),
                    Some(row.conversation),
                ),
                StateChange::NoSuchLead => return Ok(After::default()),
            }
        }
        Decision::PauseConversation { lead, hours, ack } => {
            let Some((conversation, _)) = conversation_of(&lead)? else {
                return Ok(After::default());
            };
            let until = hours
                .map(|h| now + i64::from(h) * 60 * 60 * 1000)
                .unwrap_or(i64::MAX);
            tx.pause_conversation(conversation, Some(until))?;
            (
                ack,
                format!("paused the assistant for lead {}", lead.id),
                Some(conversation),
            )
        }
        Decision::ResumeConversation { lead, ack } => {
            let Some((conversation, _)) = conversation_of(&lead)? else {
                return Ok(After::default());
            };
            tx.pause_conversation(conversation, None)?;
            (
                ack,
                format!("resumed the assistant for lead {}", lead.id),
                Some(conversation),
            )
        }
        Decision::PauseProfile {
            profile,
            hours,
            ack,
        } => {
            let until = now + i64::from(hours) * 60 * 60 * 1000;
            tx.pause_profile(&profile, Some(until), &by, now)?;
            (
                ack,
                format!("paused the assistant for profile {profile} for {hours}h"),
                None,
            )
        }
        Decision::ResumeProfile { profile, ack } => {
            tx.pause_profile(&profile, None, &by, now)?;
            (
                ack,
                format!("resumed the assistant for profile {profile}"),
                None,
            )
        }
    };
    tx.journal(
        None,
        conversation,
        JournalStep::Staff,
        &format!("staff text from {}: {detail}", from.national()),
        now,
    )?;
    info!(conversation_id = ?conversation.map(|c| c.0), detail, "staff command");
    let parts = pdu::segment(&ack).parts.len();
    tx.queue_sms(None, from, inbound.modem, &ack, parts, now)?;
    after.wake.push(inbound.modem.clone());
    Ok(after)
}

/// How a staff member's text is signed in `messages.author` and `leads.state_by`:
/// "sms: 07700 900456".
const STAFF_AUTHOR: &str = "sms: ";

fn staff_author(from: &E164) -> String {
    format!("{STAFF_AUTHOR}{}", from.national())
}

/// The staff member who wrote a text signed by [`staff_author`].
fn staff_of_author(author: &str) -> Option<E164> {
    E164::parse(author.strip_prefix(STAFF_AUTHOR)?).ok()
}

/// A caller's text in a conversation staff took over: told to every staff member who replied in
/// it (`owner`, the last, among them), each as a delivery row like the lead's recipients' (so it
/// is retried and shown with the lead). A staff member who is also one of the business's
/// recipients hears of it on every channel that recipient has, whatever `late_replies` says (they
/// took the conversation over); one who is not, by SMS. Returns the journal's words.
pub(super) fn forward_to_owner(
    tx: &Tx<'_>,
    config: &Config,
    conversation: ConversationId,
    owner: &E164,
    inbound: &Inbound<'_>,
    now: i64,
) -> Result<String, store::Error> {
    let Some(lead) = tx.lead_of_conversation(conversation)? else {
        return Ok("no lead yet; kept".to_string());
    };
    let mut staff: Vec<E164> = tx
        .authors_in(conversation)?
        .iter()
        .filter_map(|author| staff_of_author(author))
        .collect();
    if !staff.contains(owner) {
        staff.push(owner.clone());
    }
    let profile = config
        .profiles
        .iter()
        .find(|p| p.id.as_str() == lead.profile);
    let mut told = Vec::new();
    for number in &staff {
        let recipient = profile.and_then(|profile| {
            profile.recipients.iter().find(|r| {
                r.channels
                    .iter()
                    .any(|c| c.kind() == ChannelKind::Sms && c.target() == number.as_str())
            })
        });
        match recipient {
            Some(recipient) => {
                for channel in &recipient.channels {
                    tx.insert_reply_delivery(
                        lead.id,
                        inbound.id,
                        &recipient.name,
                        channel.kind(),
                        &channel.target(),
                        now,
                    )?;
                }
                told.push(format!(
                    "{} ({}: {})",
                    number.national(),
                    recipient.name,
                    recipient
                        .channels
                        .iter()
                        .map(|c| c.kind().to_string())
                        .collect::<Vec<_>>()
                        .join(", ")
                ));
            }
            None => {
                tx.insert_reply_delivery(
                    lead.id,
                    inbound.id,
                    &format!("owner {}", number.national()),
                    ChannelKind::Sms,
                    number.as_str(),
                    now,
                )?;
                told.push(format!("{} (sms)", number.national()));
            }
        }
    }
    Ok(format!(
        "forwarded to the staff who took the conversation over: {}",
        told.join(", ")
    ))
}

/// What a reply written on the dashboard came to.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum OwnerReply {
    NoSuchLead,
    /// Nothing but white space.
    Empty,
    /// The caller sent STOP: nothing is sent.
    OptedOut,
    /// In the outbox of `modem`.
    Queued {
        modem: ModemId,
    },
}

/// A reply to a lead's caller written on the dashboard: queued from the SIM the conversation is
/// on, with its author, and the assistant paused in that conversation until resumed (the owner
/// is answering now). STOP is honoured.
pub async fn owner_reply(
    store: &crate::store::Store,
    lead: LeadId,
    text: String,
    author: String,
    now: i64,
) -> Result<OwnerReply, store::Error> {
    store
        .run(move |tx| {
            let text = text.trim();
            if text.is_empty() {
                return Ok(OwnerReply::Empty);
            }
            let Some(detail) = tx.lead(lead)? else {
                return Ok(OwnerReply::NoSuchLead);
            };
            let Ok(caller) = E164::parse(&detail.lead.caller) else {
                return Ok(OwnerReply::NoSuchLead);
            };
            let conversation = detail.lead.conversation;
            if tx.is_opted_out(&caller)? {
                tx.journal(
                    None,
                    Some(conversation),
                    JournalStep::Owner,
                    &format!("a reply from {author} was not sent: the caller opted out (STOP)"),
                    now,
                )?;
                return Ok(OwnerReply::OptedOut);
            }
            let parts = pdu::segment(text).parts.len();
            let id = tx.queue_authored_sms(
                conversation,
                &caller,
                &detail.modem,
                text,
                parts,
                &author,
                now,
            )?;
            tx.pause_conversation(conversation, Some(i64::MAX))?;
            tx.journal(
                None,
                Some(conversation),
                JournalStep::Owner,
                &format!(
                    "{author} replied to the caller (lead {lead}), SMS {id} queued; the assistant is paused in this conversation: {text}"
                ),
                now,
            )?;
            info!(conversation_id = %conversation, lead = %lead, "owner's reply queued");
            Ok(OwnerReply::Queued {
                modem: detail.modem,
            })
        })
        .await
}
