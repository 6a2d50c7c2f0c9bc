//! Codecs: bytes and text from the outside turned into typed values and back. Pure: no I/O, no
//! clock, no tokio.

pub mod at;
pub mod fields;
pub mod gsm7;
pub mod pdu;
pub mod phone;
pub mod ussd;
