//! A missed call: the call's row, the policy's decision, and the first text of a new
//! conversation on the chosen modem.

use std::sync::Arc;

use chrono::{DateTime, Utc};
use tracing::info;

use crate::config::{Config, Profile};
use crate::core::conversation::{self as engine, Conversation};
use crate::core::policy::{self, Decision, Facts};
use crate::core::routing;
use crate::domain::CallSource;
use crate::domain::JournalStep;
use crate::domain::ModemId;
use crate::store::{self, NewCall, Store, Tx};

use super::*;

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
    let profile = route(config, call);
    let mut facts = Facts::default();
    if let Some(number) = call.caller.number() {
        facts.opted_out = tx.is_opted_out(number)?;
        facts.paused = tx.profile_paused_until(profile.id.as_str(), now)?.is_some();
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
        JournalStep::Call,
        &format!("missed call from {from} via {source}"),
        now,
    )?;
    tx.journal(
        Some(call_row),
        None,
        JournalStep::Profile,
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
            // A caller who got no text reaches the owner as a call-back notice (not the
            // business's own staff, nor a caller whose call joined a conversation).
            let wake = if matches!(
                reason,
                policy::SkipReason::Staff | policy::SkipReason::InConversation(_)
            ) {
                Vec::new()
            } else {
                super::call_back::notice(
                    tx,
                    config,
                    profile,
                    call.modem.as_ref(),
                    call.caller.number(),
                    &reason.code().replace('_', " "),
                    now,
                )?
            };
            tx.journal(
                Some(call_row),
                None,
                JournalStep::Skipped,
                &format!("no text: {}", reason.describe()),
                now,
            )?;
            return Ok(After {
                wake,
                ..After::default()
            });
        }
        (Decision::Text, None) => return Ok(After::default()), // decide() never texts a withheld caller
    };
    let modem = modem_for(tx, config, profile, call.modem.as_ref(), usable)?;
    tx.journal(
        Some(call_row),
        None,
        JournalStep::Policy,
        &format!("text the caller from modem {modem}"),
        now,
    )?;
    if tx.abandon_open_conversations(&caller, now)? > 0 {
        tx.journal(
            Some(call_row),
            None,
            JournalStep::Abandoned,
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
            JournalStep::Hours,
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

/// The profile a missed call belongs to (see [`routing::profile_for_call`]).
fn route<'c>(config: &'c Config, call: &MissedCall) -> &'c Profile {
    let modems: Vec<_> = config
        .modems
        .iter()
        .map(|m| (m.id.clone(), m.profile.clone()))
        .collect();
    let numbers: Vec<_> = config
        .profiles
        .iter()
        .flat_map(|p| p.numbers.iter().map(|n| (n.clone(), p.id.clone())))
        .collect();
    let accounts: Vec<_> = config
        .sip_accounts
        .iter()
        .map(|a| (a.name.clone(), a.profile.clone()))
        .collect();
    let directory = routing::Directory {
        modems: &modems,
        numbers: &numbers,
        accounts: &accounts,
        default: &config.default_profile,
    };
    let id = routing::profile_for_call(
        &directory,
        call.modem.as_ref(),
        call.called.as_ref(),
        call.sip_account.as_deref(),
    );
    config
        .profile(&id)
        .unwrap_or_else(|| config.profile_for_number(None))
}

/// The modem a new conversation's texts leave from (see [`routing::choose_modem`]), with each
/// modem's queue counted in the store.
fn modem_for(
    tx: &Tx<'_>,
    config: &Config,
    profile: &Profile,
    rang: Option<&ModemId>,
    usable: &[ModemId],
) -> Result<ModemId, store::Error> {
    let mut candidates = Vec::with_capacity(config.modems.len());
    for modem in &config.modems {
        let usable = usable.contains(&modem.id);
        candidates.push(routing::Candidate {
            id: modem.id.clone(),
            serves: modem.profile.as_ref() == Some(&profile.id),
            usable,
            // Only a usable modem's queue matters to the choice.
            queued: if usable {
                tx.queued_count(&modem.id)?
            } else {
                0
            },
        });
    }
    let chosen = routing::choose_modem(profile.modem.as_ref(), rang, &candidates);
    // validate() guarantees at least one modem.
    Ok(chosen.unwrap_or_else(|| config.modems[0].id.clone()))
}
