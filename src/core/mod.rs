//! Decisions: typed values in, decisions out. Pure: no I/O, no clock, no tokio.

pub mod balance;
pub mod clauses;
pub mod conversation;
pub mod hours;
pub mod keywords;
pub mod lexicon;
pub mod loops;
pub mod morning;
pub mod names;
pub mod notice;
pub mod policy;
pub mod profile;
pub mod proposal;
pub mod reason;
pub mod refusal;
pub mod replay;
pub mod routing;
pub mod self_test;
pub mod slots;
pub mod staff;
pub mod template;
pub mod text;
pub mod understand;
pub mod urgency;
pub mod when;
pub mod yesno;
