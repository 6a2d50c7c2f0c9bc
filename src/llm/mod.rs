//! The optional local language model: a client for an OpenAI-compatible chat-completions server
//! on this machine. What it proposes is checked in `core::proposal` before anything is used.

pub mod client;
pub mod recording;
