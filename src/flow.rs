//! What each event does: a missed call, an SMS in, a status report, each turned into store changes
//! through the core (policy, dialogue) inside one transaction, so a step is on disk whole or not
//! at all before anything is sent.

use std::sync::Arc;

use chrono::{DateTime, Utc};
use tracing::{info, warn};

use crate::codec::pdu::{self, Pdu, SmscField};
use crate::config::{Config, Profile};
use crate::core::conversation::{self as engine, Conversation};
use crate::core::policy::{self, Decision, Facts};
use crate::domain::{CallRowId, ConversationId, E164, LeadId, MessageId, ModemId};
use crate::store::{
    self, CallSource, ConversationRow, ConversationState, NewCall, NewInbound, Store, Tx,
};

/// The same text this many times in one conversation is an auto-responder talking to us.
const LOOP_SAME_TEXT: i64 = 3;
/// This many texts from one number within [`LOOP_BURST_MS`] is a machine, not a person.
const LOOP_BURST_TEXTS: i64 = 4;
const LOOP_BURST_MS: i64 = 2_000;
/// Replies after a lead told to its recipients, at most, in a day; the rest are only kept.
const MAX_LATE_REPLIES_TOLD_PER_DAY: i64 = 5;
/// No number is sent more texts than this in a day, whatever happens in the conversation.
const MAX_TEXTS_PER_NUMBER_PER_DAY: i64 = 15;

pub use crate::event::{InboundSms, MissedCall};

/// What the daemon must do after a step is stored.
#[derive(Debug, Default, PartialEq, Eq)]
pub struct After {
    /// Modems with new rows in their outbox.
    pub wake: Vec<ModemId>,
    /// Conversations with a reply waiting for the assistant (see [`next_waiting`]).
    pub think: Vec<ConversationId>,
}

/// Records a missed call, decides, and queues the first text. `usable` are the modems that are
/// set up and on the network now, from which a new conversation's modem is chosen.
pub async fn missed_call(
    store: &Store,
    config: Arc<Config>,
    call: MissedCall,
    usable: Vec<ModemId>,
) -> Result<After, store::Error> {
    store
        .run(move |tx| missed_call_tx(tx, &config, &call, &usable))
        .await
}

fn missed_call_tx(
    tx: &Tx<'_>,
    config: &Config,
    call: &MissedCall,
    usable: &[ModemId],
) -> Result<After, store::Error> {
    let now = call.at.timestamp_millis();
    // A SIM's calls belong to its modem's profile; a SIP call to the profile listing the number
    // called, else to its account's profile; anything else to the default profile.
    let listed = call
        .called
        .as_ref()
        .and_then(|number| config.profiles.iter().find(|p| p.numbers.contains(number)));
    let account_profile = || {
        let name = call.sip_account.as_ref()?;
        let account = config.sip_accounts.iter().find(|a| &a.name == name)?;
        config.profile(account.profile.as_ref()?)
    };
    let profile = call
        .modem
        .as_ref()
        .and_then(|modem| config.modem(modem))
        .and_then(|modem| modem.profile.as_ref())
        .and_then(|id| config.profile(id))
        .or(listed)
        .or_else(account_profile)
        .unwrap_or_else(|| config.profile_for_number(call.called.as_ref()));
    let mut facts = Facts::default();
    if let Some(number) = call.caller.number() {
        facts.opted_out = tx.is_opted_out(number)?;
        // Another call joins a recent conversation with the same business; after the window, or
        // for another business on the same box, the caller is texted afresh.
        let cooldown = profile.cooldown.as_millis() as i64;
        facts.open_conversation = tx
            .open_conversation(number)?
            .filter(|c| c.profile == profile.id && now - c.updated_ms < cooldown)
            .map(|c| c.id);
        const HOUR: i64 = 60 * 60 * 1000;
        facts.started = policy::Started {
            box_hour: tx.conversations_started_since(None, now - HOUR)?,
            box_day: tx.conversations_started_since(None, now - 24 * HOUR)?,
            profile_hour: tx.conversations_started_since(Some(&profile.id), now - HOUR)?,
            profile_day: tx.conversations_started_since(Some(&profile.id), now - 24 * HOUR)?,
        };
    }
    let decision = policy::decide(&call.caller, &facts, &profile.rules);
    let skipped = match &decision {
        Decision::Text => None,
        Decision::Skip(reason) => Some((reason.code().to_string(), reason.describe())),
    };
    let Some(call_row) = tx.insert_call(&NewCall {
        key: call.key.clone(),
        source: call.source,
        caller: call.caller.number().cloned(),
        caller_raw: call.caller_raw.clone(),
        called: call.called.clone(),
        profile: profile.id.clone(),
        modem: call.modem.clone(),
        at_ms: now,
        skipped,
    })?
    else {
        info!(call_id = %call.key, "the same call reported again; ignored");
        return Ok(After::default());
    };
    let from = match call.caller.number() {
        Some(number) => number.national(),
        None if call.caller_raw.is_empty() => "a withheld number".to_string(),
        None => format!("{:?} (withheld)", call.caller_raw),
    };
    let source = match (&call.source, &call.modem, &call.sip_account) {
        (CallSource::Modem, Some(modem), _) => format!("the SIM in modem {modem}"),
        (CallSource::Modem, None, _) => "a modem".to_string(),
        (CallSource::Sip, _, Some(account)) => format!("SIP account {account}"),
        (CallSource::Sip, _, None) => "SIP".to_string(),
    };
    tx.journal(
        Some(call_row),
        None,
        "call",
        &format!("missed call from {from} via {source}"),
        now,
    )?;
    tx.journal(
        Some(call_row),
        None,
        "profile",
        &format!("profile {} ({})", profile.id, profile.name),
        now,
    )?;
    let caller = match (&decision, call.caller.number()) {
        (Decision::Text, Some(caller)) => caller.clone(),
        (Decision::Skip(reason), _) => {
            info!(call_id = %call.key, reason = reason.code(), "no text for this call");
            if let policy::SkipReason::InConversation(conversation) = reason {
                tx.set_call_conversation(call_row, *conversation)?;
            }
            tx.journal(
                Some(call_row),
                None,
                "policy",
                &format!("no text: {}", reason.describe()),
                now,
            )?;
            return Ok(After::default());
        }
        (Decision::Text, None) => return Ok(After::default()), // decide() never texts a withheld caller
    };
    let modem = choose_modem(tx, config, profile, call.modem.as_ref(), usable)?;
    tx.journal(
        Some(call_row),
        None,
        "policy",
        &format!("text the caller from modem {modem}"),
        now,
    )?;
    if tx.abandon_open_conversations(&caller, now)? > 0 {
        tx.journal(
            Some(call_row),
            None,
            "abandoned",
            "an older open conversation with this caller was closed",
            now,
        )?;
    }
    let conversation = tx.insert_conversation(&profile.id, &caller, &modem, now)?;
    tx.set_call_conversation(call_row, conversation)?;
    let (dialogue, promise) = opening_dialogue(profile, call.at);
    if let Some(promise) = promise {
        tx.journal(
            Some(call_row),
            Some(conversation),
            "hours",
            &format!("out of hours: the first text promises a call back {promise}"),
            now,
        )?;
    }
    let (state, outcomes) = Conversation::open(&dialogue, &caller, &engine::CallTime(call.at));
    info!(call_id = %call.key, conversation_id = %conversation, "conversation started");
    apply_engine(
        tx,
        profile,
        conversation,
        &caller,
        &modem,
        &state,
        outcomes,
        Some(call_row),
        now,
        // Held only when the profile asks for it (0: the outbox takes it at once).
        if profile.first_text_delay.is_zero() {
            0
        } else {
            now + profile.first_text_delay.as_millis() as i64
        },
    )?;
    Ok(After {
        wake: vec![modem],
        ..After::default()
    })
}

/// The profile's dialogue with the first text for a call at `at`: the in-hours template, or out
/// of hours the out-of-hours one with its promise ("by 9am tomorrow"), which is also returned.
pub fn opening_dialogue(
    profile: &Profile,
    at: DateTime<Utc>,
) -> (engine::DialogueProfile, Option<String>) {
    let mut dialogue = profile.dialogue.clone();
    let (first, promise) = match (&profile.hours, &profile.out_of_hours_message) {
        (Some(hours), Some(template)) if !hours.is_open(at) => {
            let promise = hours.callback_promise(at);
            (
                template.source().replace("{callback}", &promise),
                Some(promise),
            )
        }
        _ => (dialogue.templates.first_message.clone(), None),
    };
    let day = at
        .with_timezone(&chrono_tz::Europe::London)
        .format("%A")
        .to_string();
    dialogue.templates.first_message = first.replace("{day}", &day);
    (dialogue, promise)
}

/// The modem a new conversation's texts leave from (its replies come back to that SIM, so the
/// conversation stays on it):
/// 1. the profile's own modem (`profile.modem`), whatever its state: the business wants its
///    callers texted from that number;
/// 2. the SIM the call rang, when it is usable: the caller dialled that number;
/// 3. a usable modem serving the profile (`modem.profile`), else any usable modem, the one with
///    the fewest texts waiting first;
/// 4. with none usable: the SIM that rang, else one serving the profile, else the first; the text
///    waits there for it to come back.
fn choose_modem(
    tx: &Tx<'_>,
    config: &Config,
    profile: &Profile,
    rang: Option<&ModemId>,
    usable: &[ModemId],
) -> Result<ModemId, store::Error> {
    if let Some(pinned) = &profile.modem {
        return Ok(pinned.clone());
    }
    if let Some(rang) = rang.filter(|rang| usable.contains(rang)) {
        return Ok(rang.clone());
    }
    let serves = |modem: &&crate::config::ModemConfig| modem.profile.as_ref() == Some(&profile.id);
    let usable_modems = || config.modems.iter().filter(|m| usable.contains(&m.id));
    let mut best: Option<(bool, i64, &ModemId)> = None;
    for modem in usable_modems() {
        // Serving the profile first, then the shortest queue; config order breaks ties.
        let key = (!serves(&modem), tx.queued_count(&modem.id)?, &modem.id);
        if best.as_ref().is_none_or(|b| (key.0, key.1) < (b.0, b.1)) {
            best = Some(key);
        }
    }
    if let Some((_, _, modem)) = best {
        return Ok(modem.clone());
    }
    Ok(rang
        .cloned()
        .or_else(|| config.modems.iter().find(serves).map(|m| m.id.clone()))
        .unwrap_or_else(|| config.modems[0].id.clone())) // validate() guarantees a modem
}

/// Records a lead and one delivery row per recipient and channel it goes to.
#[allow(clippy::too_many_arguments)]
fn create_lead(
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
                    "lead",
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

/// Stores the engine's state and carries out its outcomes: texts queued, an opt-out or opt-in
/// recorded, a lead created, notes in the journal.
#[allow(clippy::too_many_arguments)]
fn apply_engine(
    tx: &Tx<'_>,
    profile: &Profile,
    conversation: ConversationId,
    caller: &E164,
    modem: &ModemId,
    state: &engine::ConversationState,
    outcomes: Vec<engine::Outcome>,
    call_row: Option<CallRowId>,
    now: i64,
    send_after: i64,
) -> Result<(), store::Error> {
    let db_state = match state.status {
        engine::Status::Open => ConversationState::Open,
        engine::Status::OptedOut => ConversationState::OptedOut,
        engine::Status::Completed
        | engine::Status::CallRequested
        | engine::Status::TimedOut
        | engine::Status::Closed => ConversationState::Completed,
    };
    // The answers in the order the profile asks, as leads and the dashboard show them.
    let answers: store::Answers = profile
        .dialogue
        .questions
        .iter()
        .filter_map(|q| {
            state
                .slots
                .get(&q.id)
                .map(|slot| (q.id.clone(), slot.value.clone()))
        })
        .collect();
    tx.update_conversation(conversation, db_state, state.turns as usize, &answers, now)?;
    let json = serde_json::to_string(state).map_err(|err| store::Error::BadValue {
        what: format!("conversation state: {err}"),
    })?;
    tx.set_engine_state(conversation, &json)?;
    if outcomes.contains(&engine::Outcome::OptOut) {
        // Nothing queued earlier (the next question, say) may follow the confirmation.
        tx.cancel_queued(caller, "the caller opted out (STOP)", now)?;
    }
    for outcome in outcomes {
        match outcome {
            engine::Outcome::Send(text) => {
                let parts = pdu::segment(&text).parts.len();
                let id = tx.queue_sms_held(
                    Some(conversation),
                    caller,
                    modem,
                    &text,
                    parts,
                    now,
                    send_after,
                )?;
                let held = if send_after > now {
                    format!(", held for {} s", (send_after - now + 999) / 1000)
                } else {
                    String::new()
                };
                tx.journal(
                    call_row,
                    Some(conversation),
                    "queued",
                    &format!(
                        "SMS {id} to {} queued ({parts} part{}{held}): {text}",
                        caller.national(),
                        if parts == 1 { "" } else { "s" }
                    ),
                    now,
                )?;
            }
            engine::Outcome::OptOut => {
                tx.set_opt_out(caller, "sms", now)?;
                tx.journal(
                    call_row,
                    Some(conversation),
                    "opt_out",
                    &format!("{} opted out", caller.national()),
                    now,
                )?;
            }
            engine::Outcome::OptIn => {
                tx.clear_opt_out(caller)?;
                tx.journal(
                    call_row,
                    Some(conversation),
                    "opt_in",
                    &format!("{} opted back in", caller.national()),
                    now,
                )?;
            }
            engine::Outcome::Help => {
                tx.journal(
                    call_row,
                    Some(conversation),
                    "help",
                    "the caller asked for HELP",
                    now,
                )?;
            }
            engine::Outcome::Note(note) => {
                tx.journal(call_row, Some(conversation), "note", &note, now)?;
            }
            engine::Outcome::Lead { complete, urgent } => {
                let lead = create_lead(
                    tx,
                    profile,
                    conversation,
                    caller,
                    &answers,
                    complete,
                    call_row,
                    now,
                )?;
                if urgent {
                    tx.mark_lead_urgent(lead)?;
                    tx.journal(
                        call_row,
                        Some(conversation),
                        "urgent",
                        &format!("lead {lead} is urgent: the caller asked to be called, or said it is urgent"),
                        now,
                    )?;
                }
            }
        }
    }
    Ok(())
}

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
fn text_received(
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
    let conversation = match &from {
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
            "reply",
            &format!("SMS from {sender} (not a phone number) kept: {text}"),
            now,
        )?;
        return Ok(After::default());
    };
    let conversation_id = conversation.as_ref().map(|c| c.id);
    tx.journal(
        None,
        conversation_id,
        "reply",
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
            let (burst, same, sent_today) = tx.loop_signs(
                &from,
                open.id,
                &text,
                now - LOOP_BURST_MS,
                now - 24 * 60 * 60 * 1000,
            )?;
            let stop = if same >= LOOP_SAME_TEXT {
                Some(format!(
                    "the same text came {same} times: an automatic reply"
                ))
            } else if burst >= LOOP_BURST_TEXTS {
                Some(format!(
                    "{burst} texts within {} s: an automatic sender",
                    LOOP_BURST_MS / 1000
                ))
            } else if sent_today >= MAX_TEXTS_PER_NUMBER_PER_DAY {
                Some(format!(
                    "{sent_today} texts already sent to this number today"
                ))
            } else {
                None
            };
            if let Some(why) = stop {
                tx.abandon_conversation(open.id, now)?;
                tx.cancel_queued(&from, "the conversation was stopped (a loop)", now)?;
                tx.journal(
                    None,
                    Some(open.id),
                    "loop",
                    &format!("conversation stopped, no reply: {why}"),
                    now,
                )?;
                warn!(conversation_id = %open.id, why, "conversation stopped to break a loop");
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
            let stop = engine::keyword(&text) == Some(engine::Keyword::Stop);
            if stop {
                // STOP overtakes everything: replies still waiting for the assistant are
                // not answered (their texts would follow the confirmation), and the
                // engine opts the caller out now, cancelling whatever is queued.
                let skipped = tx.skip_waiting(open.id, now)?;
                if skipped > 0 {
                    tx.journal(
                        None,
                        Some(open.id),
                        "opt_out",
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
struct Inbound<'a> {
    /// Its `messages` row.
    id: MessageId,
    from: &'a E164,
    /// The modem it came to.
    modem: &'a ModemId,
    text: &'a str,
}

/// STOP, START and HELP from someone with no open conversation; anything else is kept in the
/// transcript and, when the conversation's lead went out, told to the lead's recipients.
fn keyword_outside_conversation(
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
    let keyword = engine::keyword(text);
    let business = |template: &str| {
        engine::render(
            template,
            &[("business", profile.dialogue.business.as_str())],
        )
    };
    let reply = match keyword {
        Some(engine::Keyword::Stop) if !tx.is_opted_out(from)? => {
            tx.set_opt_out(from, "sms", now)?;
            tx.cancel_queued(from, "the caller opted out (STOP)", now)?;
            tx.journal(
                None,
                conversation,
                "opt_out",
                &format!("{} opted out", from.national()),
                now,
            )?;
            Some(business(&profile.dialogue.templates.opt_out))
        }
        Some(engine::Keyword::Help) if !tx.is_opted_out(from)? => {
            tx.journal(None, conversation, "help", "the caller asked for HELP", now)?;
            Some(engine::render(
                &profile.dialogue.templates.help,
                &[
                    ("business", profile.dialogue.business.as_str()),
                    ("contact", profile.dialogue.contact.as_str()),
                ],
            ))
        }
        Some(engine::Keyword::Start) if tx.clear_opt_out(from)? => {
            tx.journal(
                None,
                conversation,
                "opt_in",
                &format!("{} opted back in", from.national()),
                now,
            )?;
            Some(business(&profile.dialogue.templates.opt_in))
        }
        // Any keyword (STOP from someone already opted out, say) is for us, not the business.
        Some(_) => None,
        _ => {
            let lead = match conversation {
                Some(conversation) => tx.lead_of_conversation(conversation)?,
                None => None,
            };
            let detail = match lead {
                Some(lead) => tell_late_reply(tx, config, &lead, inbound, now)?,
                None => "reply after the conversation ended; kept in the transcript".to_string(),
            };
            tx.journal(None, conversation, "late_reply", &detail, now)?;
            None
        }
    };
    let Some(reply) = reply else {
        return Ok(After::default());
    };
    let parts = pdu::segment(&reply).parts.len();
    let id = tx.queue_sms(conversation, from, modem, &reply, parts, now)?;
    tx.journal(
        None,
        conversation,
        "queued",
        &format!("SMS {id} to {} queued: {reply}", from.national()),
        now,
    )?;
    Ok(After {
        wake: vec![modem.clone()],
        ..After::default()
    })
}

/// A text from the caller after their lead went out: one notice per recipient of the lead (its
/// routing, as for the lead) that wants late replies, on each of its channels, each a delivery row
/// keyed by the reply so that the same text is never told twice. Returns the journal's words.
fn tell_late_reply(
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
fn lead_recipients<'a>(
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

/// The engine's state for a conversation the retired in-order engine started.
fn in_order_state(profile: &Profile, row: &ConversationRow) -> engine::ConversationState {
    let opened_at = DateTime::<Utc>::from_timestamp_millis(row.started_ms).unwrap_or_default();
    engine::ConversationState::from_in_order(
        &profile.dialogue,
        &row.caller,
        &row.answers,
        row.next_question,
        opened_at,
    )
}

/// Moves the conversations the retired in-order engine left open to the current engine: each
/// gets the engine's state built from its answers, so that replies, silence and leads go the one
/// way. Run once at start-up; a no-op when there are none. Returns how many were moved.
pub async fn adopt_in_order_conversations(
    store: &Store,
    config: Arc<Config>,
    now: DateTime<Utc>,
) -> Result<usize, store::Error> {
    store
        .run(move |tx| {
            let mut moved = 0;
            for row in tx.open_conversations_without_engine_state()? {
                let Some(profile) = config.profile(&row.profile) else {
                    warn!(conversation_id = %row.id, profile = %row.profile, "a conversation of the retired engine belongs to a profile no longer in the config; left as it is");
                    continue;
                };
                let state = in_order_state(profile, &row);
                let json = serde_json::to_string(&state).map_err(|err| store::Error::BadValue {
                    what: format!("conversation state: {err}"),
                })?;
                tx.set_engine_state(row.id, &json)?;
                tx.journal(
                    None,
                    Some(row.id),
                    "note",
                    "moved from the retired in-order engine to the conversation engine",
                    now.timestamp_millis(),
                )?;
                moved += 1;
            }
            Ok(moved)
        })
        .await
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

/// Deletes calls, transcripts and leads older than `storage.retention_days`.
pub async fn forget_old(
    store: &Store,
    config: Arc<Config>,
    at: DateTime<Utc>,
) -> Result<usize, store::Error> {
    let before = at.timestamp_millis() - config.storage.retention.as_millis() as i64;
    let gone = store.run(move |tx| tx.forget_before(before)).await?;
    if gone > 0 {
        info!(
            rows = gone,
            "deleted records older than storage.retention_days"
        );
    }
    Ok(gone)
}

/// Conversations the caller has gone quiet in for the profile's `silence_minutes`: the lead goes
/// out with what there is, marked incomplete.
pub async fn quiet_conversations(
    store: &Store,
    config: Arc<Config>,
    at: DateTime<Utc>,
) -> Result<After, store::Error> {
    store
        .run(move |tx| {
            let now = at.timestamp_millis();
            let Some(shortest) = config
                .profiles
                .iter()
                .map(|p| p.dialogue.silence_minutes)
                .min()
            else {
                return Ok(After::default());
            };
            let mut after = After::default();
            for (id, json, updated_ms) in tx.quiet_conversations(now - i64::from(shortest) * 60_000)? {
                // A reply waiting for the assistant: the caller is not quiet.
                if tx.has_waiting(id)? {
                    continue;
                }
                let Some(row) = tx.conversation(id)? else { continue };
                let Some(profile) = config.profile(&row.profile) else { continue };
                let minutes = ((now - updated_ms) / 60_000).max(0) as u32;
                if minutes < profile.dialogue.silence_minutes {
                    continue;
                }
                let Ok(state) = serde_json::from_str::<engine::ConversationState>(&json) else {
                    warn!(conversation_id = %id, "the conversation's saved state cannot be read; left as it is");
                    continue;
                };
                let (next, outcomes) = Conversation::on_silence(&profile.dialogue, &state, minutes);
                if next == state && outcomes.is_empty() {
                    continue;
                }
                info!(conversation_id = %id, minutes, "the caller went quiet; the lead goes out with what there is");
                apply_engine(
                    tx,
                    profile,
                    id,
                    &row.caller,
                    &row.modem,
                    &next,
                    outcomes,
                    None,
                    now,
                    0,
                )?;
                after.wake.push(row.modem.clone());
            }
            Ok(after)
        })
        .await
}

/// Delivers multipart SMS whose parts have waited longer than [`FRAGMENT_TIMEOUT_MS`] with the
/// parts that arrived, "[…]" marking each missing one.
pub async fn expire_fragments(
    store: &Store,
    config: Arc<Config>,
    now: DateTime<Utc>,
) -> Result<After, store::Error> {
    store
        .run(move |tx| {
            let now = now.timestamp_millis();
            let mut after = After::default();
            for group in tx.stale_fragment_groups(now - FRAGMENT_TIMEOUT_MS)? {
                let parts = tx.fragments(&group)?;
                let mut text = String::new();
                for sequence in 1..=group.total {
                    match parts.iter().find(|(s, _)| *s == sequence) {
                        Some((_, body)) => text.push_str(body),
                        None => text.push_str("[…]"),
                    }
                }
                let arrived: Vec<String> = parts.iter().map(|(s, _)| s.to_string()).collect();
                tx.remove_fragments(&group.modem, &group.sender, group.reference, group.total)?;
                warn!(modem = %group.modem, have = parts.len(), of = group.total, "multipart SMS incomplete after the wait; kept with what arrived");
                tx.journal(
                    None,
                    None,
                    "incomplete",
                    &format!(
                        "a {}-part SMS from {} lost parts: only part(s) {} arrived",
                        group.total,
                        group.sender,
                        arrived.join(", ")
                    ),
                    now,
                )?;
                let dedup_key = format!("{}|{}|{}|partial|{text}", group.sender, group.reference, group.total);
                let done = text_received(tx, &config, &group.modem, &group.sender, &text, dedup_key, now)?;
                after.wake.extend(done.wake);
                after.think.extend(done.think);
            }
            Ok(after)
        })
        .await
}

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
                Ok(_) | Err(_) => {
                    warn!(modem = %modem, "a status report that cannot be read; ignored");
                    return Ok(());
                }
            };
            let Ok(recipient) = E164::parse(&report.recipient.display()) else {
                return Ok(());
            };
            let status = match report.outcome() {
                pdu::DeliveryOutcome::Delivered => "delivered",
                pdu::DeliveryOutcome::Pending => "pending",
                pdu::DeliveryOutcome::Failed => "failed",
            };
            let description = report.describe();
            match tx.apply_delivery_report(&modem, &recipient, report.message_reference, status, &description, now)? {
                Some((message, conversation)) => {
                    tx.journal(
                        None,
                        conversation,
                        "delivery",
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

/// A reply waiting for the assistant, with what the model needs to read it.
#[derive(Debug, Clone)]
pub struct WaitingReply {
    pub conversation: ConversationId,
    pub message: MessageId,
    pub text: String,
    pub at: DateTime<Utc>,
    pub profile: crate::domain::ProfileId,
    /// The conversation before this reply, oldest first: (from the caller, text).
    pub so_far: Vec<(bool, String)>,
    /// Whether a model may help with it: the conversation is open with the engine's state, and
    /// the reply is not a keyword (STOP, HELP, START are the engine's alone).
    pub for_model: bool,
}

/// The oldest reply of `conversation` waiting for the assistant.
pub async fn next_waiting(
    store: &Store,
    conversation: ConversationId,
) -> Result<Option<WaitingReply>, store::Error> {
    store
        .run(move |tx| {
            let Some((message, text, at_ms)) = tx.next_waiting(conversation)? else {
                return Ok(None);
            };
            let Some(row) = tx.conversation(conversation)? else {
                return Ok(None);
            };
            let so_far = tx
                .conversation_messages(conversation)?
                .into_iter()
                .filter(|m| m.id < message && m.state != "cancelled")
                .map(|m| (m.direction == "in", m.body))
                .collect();
            let for_model = row.state == ConversationState::Open
                && tx.engine_state(conversation)?.is_some()
                && engine::keyword(&text).is_none();
            Ok(Some(WaitingReply {
                conversation,
                message,
                text,
                at: DateTime::<Utc>::from_timestamp_millis(at_ms).unwrap_or_else(Utc::now),
                profile: row.profile,
                so_far,
                for_model,
            }))
        })
        .await
}

pub use crate::core::proposal::ModelRead;

/// Answers a waiting reply: the built-in engine, combined with the model's proposal once it has
/// passed the checks; then the reply is marked read, all in one transaction. A reply already
/// answered (stepped twice after a restart) is left alone.
pub async fn step_waiting(
    store: &Store,
    config: Arc<Config>,
    waiting: WaitingReply,
    read: ModelRead,
    now: DateTime<Utc>,
) -> Result<After, store::Error> {
    store
        .run(move |tx| step_waiting_tx(tx, &config, &waiting, read, now))
        .await
}

fn step_waiting_tx(
    tx: &Tx<'_>,
    config: &Config,
    waiting: &WaitingReply,
    read: ModelRead,
    now: DateTime<Utc>,
) -> Result<After, store::Error> {
    let now = now.timestamp_millis().max(waiting.at.timestamp_millis());
    if !tx.set_read(waiting.message, now)? {
        return Ok(After::default());
    }
    let Some(row) = tx.conversation(waiting.conversation)? else {
        return Ok(After::default());
    };
    let text = waiting.text.as_str();
    let profile = config.profile(&row.profile);
    let state = match tx.engine_state(row.id)? {
        Some(json) => serde_json::from_str::<engine::ConversationState>(&json).ok(),
        None => None,
    };
    let (Some(profile), Some(state), ConversationState::Open) = (profile, state, row.state) else {
        // Closed while the reply waited (an earlier reply finished it), or not the engine's: the
        // reply is handled as one after the end.
        return keyword_outside_conversation(
            tx,
            config,
            &Inbound {
                id: waiting.message,
                from: &row.caller,
                modem: &row.modem,
                text,
            },
            Some(&row),
            now,
        );
    };
    let options = profile
        .llm
        .as_ref()
        .map(|llm| llm.combine.clone())
        .unwrap_or_default();
    let crate::core::proposal::Decided { combined, note, .. } =
        crate::core::proposal::decide(&profile.dialogue, &state, text, waiting.at, read, &options);
    if let Some(note) = note {
        tx.journal(None, Some(row.id), "model", &note, now)?;
    }
    if combined.phrased {
        tx.journal(
            None,
            Some(row.id),
            "model",
            "the model's words were used before the next question",
            now,
        )?;
    }
    apply_engine(
        tx,
        profile,
        row.id,
        &row.caller,
        &row.modem,
        &combined.state,
        combined.outcomes,
        None,
        now,
        0,
    )?;
    Ok(After {
        wake: vec![row.modem],
        ..After::default()
    })
}
