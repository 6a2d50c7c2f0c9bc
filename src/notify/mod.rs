//! Telling a business's recipients things that are not leads: a missed caller who got no text
//! (call back), a SIM or modem that needs a person (alert), and the morning summary. Each is a
//! `notices` row for every email, WhatsApp and webhook channel the recipient has before anything
//! is sent; [`deliver`] sends the rows through the lead channels (`leads::email`,
//! `leads::whatsapp`, `leads::webhook`) with the same retries. The owner's SMS copy goes through
//! the outbox as every text does. [`summary`] makes the morning summary once a day.

pub mod deliver;
pub mod summary;

use crate::config::{Channel, Recipient};
use crate::core::notice::{NoticeKind, Rendered};
use crate::domain::ChannelKind;
use crate::store::{self, NewNotice, Tx};

/// Who is told, and how a notice is written for them.
pub struct Write<'a> {
    pub profile: &'a str,
    pub kind: NoticeKind,
    pub rendered: &'a Rendered,
    pub fault: Option<i64>,
    pub gather_until_ms: i64,
    pub box_name: &'a str,
    pub at_ms: i64,
}

/// Writes one notice for each of `recipient`'s email, WhatsApp and webhook channels (SMS goes
/// through the outbox); returns each (channel, notice id).
pub fn write_for(
    tx: &Tx<'_>,
    recipient: &Recipient,
    write: &Write<'_>,
) -> Result<Vec<(ChannelKind, i64)>, store::Error> {
    let mut written = Vec::new();
    for channel in &recipient.channels {
        if matches!(channel, Channel::Sms(_)) {
            continue;
        }
        let target = channel.target();
        let id = tx.insert_notice(&NewNotice {
            profile: write.profile,
            recipient: &recipient.name,
            channel: channel.kind(),
            target: &target,
            kind: write.kind,
            rendered: write.rendered,
            fault: write.fault,
            gather_until_ms: write.gather_until_ms,
            box_name: write.box_name,
            at_ms: write.at_ms,
        })?;
        written.push((channel.kind(), id));
    }
    Ok(written)
}
