//! Decisions: typed values in, decisions out. Pure: no I/O, no clock, no tokio.

pub mod dialogue;
pub mod policy;
pub mod template;
