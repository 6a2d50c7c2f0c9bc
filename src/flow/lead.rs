//! A lead: its row and one delivery row per recipient and channel; a late reply told to them.

use tracing::{info, warn};

use crate::config::{Config, Profile};
use crate::domain::JournalStep;
use crate::domain::{CallRowId, ConversationId, E164, LeadId};
use crate::store::{self, Tx};

use super::*;

/// Records a lead and one delivery row per recipient and channel it goes to.
#[allow(clippy::too_many_arguments)]
pub(super) fn create_lead(
    tx: &Tx<'_>,
    profile: &Profile,
    conversation: ConversationId,
    caller: &E164,
    answers: &store::Answers,
    complete: bool,
    call_row: Option<CallRowId>,
    now: i64,
) -> Result<LeadId, store::Error> {
    let state_answers = answers;
    {
        {
            {
                let lead = tx.insert_lead(
                    conversation,
                    &profile.id,
                    caller,
                    state_answers,
                    complete,
                    now,
                )?;
                let mut channels = 0;
                // Routed recipients get the leads their rule matches; if that leaves nobody, every
                // recipient gets it rather than no one.
                for recipient in lead_recipients(profile, state_answers) {
                    for channel in &recipient.channels {
                        tx.insert_delivery(
                            lead,
                            &recipient.name,
                            channel.kind(),
                            &channel.target(),
                            now,
                        )?;
                        channels += 1;
                    }
                }
                let answers: Vec<String> = state_answers
                    .iter()
                    .map(|(q, a)| format!("{q}: {a}"))
                    .collect();
                tx.journal(
                    call_row,
                    Some(conversation),
                    JournalStep::Lead,
                    &format!(
                        "lead {lead} for {} ({}): {}; {channels} notification{} pending",
                        profile.name,
                        if complete { "complete" } else { "incomplete" },
                        answers.join("; "),
                        if channels == 1 { "" } else { "s" }
                    ),
                    now,
                )?;
                info!(conversation_id = %conversation, lead = %lead, "lead created");
                Ok(lead)
            }
        }
    }
}

/// A text from the caller after their lead went out: one notice per recipient of the lead (its
/// routing, as for the lead) that wants late replies, on each of its channels, each a delivery row
/// keyed by the reply so that the same text is never told twice. Returns the journal's words.
pub(super) fn tell_late_reply(
    tx: &Tx<'_>,
    config: &Config,
    lead: &store::LeadRow,
    inbound: &Inbound<'_>,
    now: i64,
) -> Result<String, store::Error> {
    let who = lead
        .answers
        .iter()
        .find(|(question, _)| question == "name")
        .map(|(_, name)| format!("{name} ({})", inbound.from.national()))
        .unwrap_or_else(|| inbound.from.national());
    let kept = format!(
        "late reply (SMS {}) from {who} after lead {} went out; kept in the transcript",
        inbound.id, lead.id
    );
    if !config.notify.late_replies {
        return Ok(format!(
            "{kept}; recipients are not told (notify.late_replies = false)"
        ));
    }
    let Some(profile) = config
        .profiles
        .iter()
        .find(|p| p.id.as_str() == lead.profile)
    else {
        warn!(lead = %lead.id, profile = %lead.profile, "a late reply's lead profile is no longer in the config; nobody told");
        return Ok(format!(
            "{kept}; nobody told: profile {} is no longer in the config",
            lead.profile
        ));
    };
    // A caller (or an auto-responder) that keeps texting does not flood the business.
    let told_today = tx.late_replies_told_since(lead.id, now - 24 * 60 * 60 * 1000)?;
    if told_today >= MAX_LATE_REPLIES_TOLD_PER_DAY {
        return Ok(format!(
            "{kept}; recipients not told: {told_today} late replies of this lead already told in the last 24 hours"
        ));
    }
    let mut recipients = 0;
    let mut notices = 0;
    for recipient in lead_recipients(profile, &lead.answers)
        .into_iter()
        .filter(|r| r.late_replies)
    {
        let mut told = false;
        for channel in &recipient.channels {
            if tx.insert_reply_delivery(
                lead.id,
                inbound.id,
                &recipient.name,
                channel.kind(),
                &channel.target(),
                now,
            )? {
                notices += 1;
                told = true;
            }
        }
        recipients += usize::from(told);
    }
    info!(lead = %lead.id, message = %inbound.id, recipients, notices, "late reply told to the lead's recipients");
    Ok(format!(
        "{kept}; sent to {recipients} recipient{} ({notices} notification{} pending)",
        if recipients == 1 { "" } else { "s" },
        if notices == 1 { "" } else { "s" }
    ))
}

/// The recipients a lead with these answers goes to: those whose routing matches, or every
/// recipient when that leaves nobody.
pub(super) fn lead_recipients<'a>(
    profile: &'a Profile,
    answers: &[(String, String)],
) -> Vec<&'a crate::config::Recipient> {
    let wanted: Vec<_> = profile
        .recipients
        .iter()
        .filter(|r| r.wants(answers))
        .collect();
    if wanted.is_empty() {
        profile.recipients.iter().collect()
    } else {
        wanted
    }
}
