//! Codecs: bytes and text from the outside turned into typed values and back. Pure: no I/O, no
//! clock, no tokio.

pub mod at;
pub mod pdu;
pub mod phone;
