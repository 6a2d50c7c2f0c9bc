//! TEMPORARY compile stub with the agreed API; replaced by the real codec.
#![allow(unused_variables, dead_code)]
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Encoding {
    Gsm7,
    Ucs2,
}
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum AddressKind {
    International,
    National,
    Alphanumeric,
    Unknown,
}
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Address {
    pub kind: AddressKind,
    pub value: String,
}
impl Address {
    pub fn international(digits: &str) -> Address {
        todo!()
    }
    pub fn display(&self) -> String {
        todo!()
    }
}
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Timestamp {
    pub year: u16,
    pub month: u8,
    pub day: u8,
    pub hour: u8,
    pub minute: u8,
    pub second: u8,
    pub zone_quarter_hours: i8,
}
impl Timestamp {
    pub fn to_rfc3339(&self) -> String {
        todo!()
    }
}
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Concat {
    pub reference: u16,
    pub total: u8,
    pub sequence: u8,
    pub wide_reference: bool,
}
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Segmentation {
    pub encoding: Encoding,
    pub parts: Vec<String>,
}
pub fn segment(text: &str) -> Segmentation {
    todo!()
}
pub fn is_gsm7(text: &str) -> bool {
    todo!()
}
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SubmitOptions {
    pub validity_minutes: Option<u32>,
    pub status_report: bool,
    pub concat_reference: u16,
    pub wide_reference: bool,
}
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SubmitPdu {
    pub hex: String,
    pub tpdu_length: usize,
}
#[derive(Debug, thiserror::Error)]
#[error("encode")]
pub struct EncodeError;
#[derive(Debug, thiserror::Error)]
#[error("decode")]
pub struct DecodeError;
pub fn encode_submit(
    recipient: &str,
    text: &str,
    options: &SubmitOptions,
) -> Result<Vec<SubmitPdu>, EncodeError> {
    todo!()
}
pub fn encode_deliver(
    sender: &str,
    text: &str,
    timestamp: &Timestamp,
    concat_reference: u8,
) -> Result<Vec<String>, EncodeError> {
    todo!()
}
pub fn encode_status_report(
    message_reference: u8,
    recipient: &str,
    submitted: &Timestamp,
    discharged: &Timestamp,
    status: u8,
) -> Result<String, EncodeError> {
    todo!()
}
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Deliver {
    pub smsc: Option<Address>,
    pub sender: Address,
    pub timestamp: Timestamp,
    pub encoding: Encoding,
    pub concat: Option<Concat>,
    pub text: String,
    pub protocol_identifier: u8,
    pub data_coding_scheme: u8,
}
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Submit {
    pub smsc: Option<Address>,
    pub message_reference: u8,
    pub recipient: Address,
    pub validity_minutes: Option<u32>,
    pub status_report: bool,
    pub encoding: Encoding,
    pub concat: Option<Concat>,
    pub text: String,
    pub data_coding_scheme: u8,
}
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct StatusReport {
    pub smsc: Option<Address>,
    pub message_reference: u8,
    pub recipient: Address,
    pub submitted: Timestamp,
    pub discharged: Timestamp,
    pub status: u8,
}
impl StatusReport {
    pub fn outcome(&self) -> DeliveryOutcome {
        todo!()
    }
    pub fn describe(&self) -> String {
        todo!()
    }
}
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum DeliveryOutcome {
    Delivered,
    Pending,
    Failed,
}
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Pdu {
    Deliver(Deliver),
    Submit(Submit),
    StatusReport(StatusReport),
}
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum SmscField {
    Present,
    Absent,
}
pub fn decode(hex: &str, smsc: SmscField) -> Result<Pdu, DecodeError> {
    todo!()
}
