//! SMS PDU codec: turns a text into SMS-SUBMIT PDUs for `AT+CMGS`, and the hex PDUs a modem prints
//! (SMS-DELIVER, SMS-SUBMIT, SMS-STATUS-REPORT) back into typed values, per 3GPP TS 23.038
//! (alphabets, data coding scheme) and 3GPP TS 23.040 (transfer layer PDUs).
//!
//! Offsets in errors count octets from the start of the hex handed to [`decode`], 0 being the
//! first octet (the SMSC length octet when [`SmscField::Present`]).

use super::gsm7;
use std::fmt::Write as _;

// ---------------------------------------------------------------------------------------------
// Public types
// ---------------------------------------------------------------------------------------------

/// Text encoding chosen for a message (TS 23.038 §4).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Encoding {
    Gsm7,
    Ucs2,
}

/// The alphabet a data coding scheme names (TS 23.038 §4), including 8-bit data, which
/// [`Encoding`] leaves out because the codec never sends it.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Alphabet {
    Gsm7,
    EightBit,
    Ucs2,
}

/// Type of address (TS 23.040 §9.1.2.5).
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum AddressKind {
    International,
    National,
    Alphanumeric,
    Unknown,
}

/// An originating, destination, recipient or SMSC address.
///
/// `International` values hold digits without the leading '+', e.g. "447700900123";
/// `Alphanumeric` values hold the decoded text.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Address {
    pub kind: AddressKind,
    pub value: String,
}

impl Address {
    /// An international number; `digits` are given without '+' (a leading '+' is dropped).
    pub fn international(digits: &str) -> Address {
        Address {
            kind: AddressKind::International,
            value: digits.strip_prefix('+').unwrap_or(digits).to_string(),
        }
    }

    /// "+447700900123" for international, the digits for national/unknown, the text for
    /// alphanumeric.
    pub fn display(&self) -> String {
        match self.kind {
            AddressKind::International => format!("+{}", self.value),
            AddressKind::National | AddressKind::Alphanumeric | AddressKind::Unknown => {
                self.value.clone()
            }
        }
    }
}

/// Service centre time stamp (TS 23.040 §9.2.3.11): local time fields plus the zone in quarter
/// hours (signed).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Timestamp {
    /// Full year, 2000 + yy.
    pub year: u16,
    pub month: u8,
    pub day: u8,
    pub hour: u8,
    pub minute: u8,
    pub second: u8,
    /// Offset from UTC in quarter hours, negative west of Greenwich.
    pub zone_quarter_hours: i8,
}

impl Timestamp {
    /// The local time with its offset, e.g. "2026-11-24T10:15:00+01:00". Fields are printed as
    /// the PDU carried them (the decoder checks digits, not calendar ranges).
    pub fn to_rfc3339(&self) -> String {
        let offset_minutes = i32::from(self.zone_quarter_hours) * 15;
        let sign = if offset_minutes < 0 { '-' } else { '+' };
        let offset_minutes = offset_minutes.unsigned_abs();
        format!(
            "{:04}-{:02}-{:02}T{:02}:{:02}:{:02}{}{:02}:{:02}",
            self.year,
            self.month,
            self.day,
            self.hour,
            self.minute,
            self.second,
            sign,
            offset_minutes / 60,
            offset_minutes % 60
        )
    }
}

/// A field the decoder read leniently instead of refusing the PDU. Networks and modems send
/// these (a time-zone octet that is not two decimal semi-octets, a user data length that claims
/// more than follows); refusing them would lose a delivery report or a caller's text, so what is
/// there is decoded and the odd field is named here.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Oddity {
    /// A time stamp octet that is not two decimal semi-octets (TS 23.040 §9.2.3.11). It was read
    /// as tens × 10 + units of its two nibbles (the sign bit masked for the zone), the reading
    /// python-gsmmodem settled on for such zones (its issue #15: 0xC2 read as +8 hours).
    NotDecimal {
        offset: usize,
        field: &'static str,
        octet: u8,
        /// The value taken: tens × 10 + units (quarter hours for the zone).
        read_as: u8,
    },
    /// TP-UDL claims more user data than follows (TS 23.040 §9.2.3.16); what follows was decoded.
    UserDataShort {
        offset: usize,
        length: u8,
        unit: &'static str,
        needed: usize,
        available: usize,
    },
    /// UCS-2 text with an odd number of octets; the last, half a character, was left out.
    OddUcs2Length { offset: usize, length: usize },
}

impl std::fmt::Display for Oddity {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            Oddity::NotDecimal {
                offset,
                field,
                octet,
                read_as,
            } => write!(
                f,
                "the {field} has 0x{octet:02X} at octet {offset}, not two decimal semi-octets; read as {read_as}"
            ),
            Oddity::UserDataShort {
                offset,
                length,
                unit,
                needed,
                available,
            } => write!(
                f,
                "the user data length at octet {offset} says {length} {unit} ({needed} octets) but only {available} follow; what follows was decoded"
            ),
            Oddity::OddUcs2Length { offset, length } => write!(
                f,
                "the UCS-2 text at octet {offset} has an odd number of octets ({length}); the last one was left out"
            ),
        }
    }
}

/// The odd fields of a decoded PDU, joined for a log line or a journal entry ("" when none).
pub fn describe_oddities(oddities: &[Oddity]) -> String {
    oddities
        .iter()
        .map(Oddity::to_string)
        .collect::<Vec<_>>()
        .join("; ")
}

/// Concatenation information from the user data header (TS 23.040 §9.2.3.24.1 8-bit,
/// §9.2.3.24.8 16-bit).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Concat {
    pub reference: u16,
    pub total: u8,
    pub sequence: u8,
    pub wide_reference: bool,
}

/// How a text will be carried: the encoding and each part's text (one SMS per part).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Segmentation {
    pub encoding: Encoding,
    pub parts: Vec<String>,
}

/// Options for [`encode_submit`].
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SubmitOptions {
    /// TP-VP relative validity (§9.2.3.12.1) in minutes, rounded up to what the format can
    /// express (5 minutes up to 63 weeks; longer asks for 63 weeks); None = no TP-VP field.
    pub validity_minutes: Option<u32>,
    /// TP-SRR: ask for a status report.
    pub status_report: bool,
    /// Concatenation reference to use if the message needs several parts. With the 8-bit
    /// reference only the low 8 bits are used.
    pub concat_reference: u16,
    /// Use the 16-bit reference IE (0x08) instead of 8-bit (0x00). Its header is one octet
    /// longer, so each part then holds 152 septets / 66 UTF-16 units instead of 153 / 67.
    pub wide_reference: bool,
}

/// One PDU ready for AT+CMGS in PDU mode.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SubmitPdu {
    /// Upper-case hex of the whole PDU, starting with the SMSC field "00" (use the SIM's SMSC).
    pub hex: String,
    /// Octets in the TPDU, i.e. excluding the SMSC field: the number AT+CMGS=<n> needs.
    pub tpdu_length: usize,
}

/// A decoded SMS-DELIVER (TS 23.040 §9.2.2.1).
///
/// `encoding` is `Gsm7` or `Ucs2` for text. 8-bit data (see [`alphabet`]) is decoded as
/// Latin-1, one character U+0000..U+00FF per octet, so no octet is lost (each character's code
/// is the octet), and is reported as `Gsm7`: check `data_coding_scheme` with [`alphabet`] to
/// tell it apart.
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
    /// Fields read leniently (see [`Oddity`]); empty for a well-formed PDU.
    pub oddities: Vec<Oddity>,
}

/// A decoded SMS-SUBMIT (TS 23.040 §9.2.2.2), as a modem stores a sent message. Text decoding
/// as for [`Deliver`]. `validity_minutes` is None without TP-VP, for the absolute format, and
/// for enhanced formats that carry no duration.
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
    /// Fields read leniently (see [`Oddity`]); empty for a well-formed PDU.
    pub oddities: Vec<Oddity>,
}

/// A decoded SMS-STATUS-REPORT (TS 23.040 §9.2.2.3).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct StatusReport {
    pub smsc: Option<Address>,
    pub message_reference: u8,
    pub recipient: Address,
    pub submitted: Timestamp,
    pub discharged: Timestamp,
    pub status: u8,
    /// Fields read leniently (see [`Oddity`]); empty for a well-formed PDU.
    pub oddities: Vec<Oddity>,
}

/// What a status report says became of the message.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum DeliveryOutcome {
    Delivered,
    Pending,
    Failed,
}

impl StatusReport {
    /// TS 23.040 §9.2.3.15 TP-ST classes: 0x00-0x1F completed, 0x20-0x3F temporary error with
    /// the SMSC still trying, 0x40-0x5F permanent error, 0x60-0x7F temporary error with the
    /// SMSC no longer trying. Values with bit 7 set are reserved; they count as failed, since
    /// the SMSC says nothing usable about delivery.
    pub fn outcome(&self) -> DeliveryOutcome {
        match self.status {
            0x00..=0x1F => DeliveryOutcome::Delivered,
            0x20..=0x3F => DeliveryOutcome::Pending,
            _ => DeliveryOutcome::Failed,
        }
    }

    /// The status in words (TS 23.040 §9.2.3.15), e.g. "received by the recipient",
    /// "SMSC still trying: recipient busy", "permanent error: validity period expired".
    pub fn describe(&self) -> String {
        let status = self.status;
        let text = match status {
            0x00 => "received by the recipient",
            0x01 => "forwarded to the recipient, but the SMSC cannot confirm delivery",
            0x02 => "replaced by the SMSC",
            0x03..=0x0F => return format!("completed (reserved status 0x{status:02X})"),
            0x10..=0x1F => return format!("completed (SMSC-specific status 0x{status:02X})"),
            0x20 => "SMSC still trying: congestion",
            0x21 => "SMSC still trying: recipient busy",
            0x22 => "SMSC still trying: no response from the recipient",
            0x23 => "SMSC still trying: service rejected",
            0x24 => "SMSC still trying: quality of service not available",
            0x25 => "SMSC still trying: error in the recipient",
            0x26..=0x2F => {
                return format!("SMSC still trying (reserved status 0x{status:02X})");
            }
            0x30..=0x3F => {
                return format!("SMSC still trying (SMSC-specific status 0x{status:02X})");
            }
            0x40 => "permanent error: remote procedure error",
            0x41 => "permanent error: incompatible destination",
            0x42 => "permanent error: connection rejected by the recipient",
            0x43 => "permanent error: not obtainable",
            0x44 => "permanent error: quality of service not available",
            0x45 => "permanent error: no interworking available",
            0x46 => "permanent error: validity period expired",
            0x47 => "permanent error: deleted by the sender",
            0x48 => "permanent error: deleted by the SMSC administration",
            0x49 => "permanent error: message does not exist in the SMSC",
            0x4A..=0x4F => return format!("permanent error (reserved status 0x{status:02X})"),
            0x50..=0x5F => {
                return format!("permanent error (SMSC-specific status 0x{status:02X})");
            }
            0x60 => "SMSC gave up: congestion",
            0x61 => "SMSC gave up: recipient busy",
            0x62 => "SMSC gave up: no response from the recipient",
            0x63 => "SMSC gave up: service rejected",
            0x64 => "SMSC gave up: quality of service not available",
            0x65 => "SMSC gave up: error in the recipient",
            0x66..=0x6F => return format!("SMSC gave up (reserved status 0x{status:02X})"),
            0x70..=0x7F => return format!("SMSC gave up (SMSC-specific status 0x{status:02X})"),
            _ => return format!("reserved status 0x{status:02X}"),
        };
        text.to_string()
    }
}

/// Any PDU [`decode`] understands.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Pdu {
    Deliver(Deliver),
    Submit(Submit),
    StatusReport(StatusReport),
}

/// Whether the hex starts with the SMSC field (as modems print in +CMGR/+CMT/+CDS in PDU mode)
/// or is a bare TPDU (as in 3GPP examples).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum SmscField {
    Present,
    Absent,
}

/// Why a text or an address cannot be encoded.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum EncodeError {
    #[error("the {field} is empty")]
    EmptyAddress { field: &'static str },
    #[error(
        "the {field} has {character:?} at character {position}; only digits, after an optional leading '+', are allowed"
    )]
    NonDigitAddress {
        field: &'static str,
        position: usize,
        character: char,
    },
    #[error("the {field} has {digits} digits; an address holds at most 20 (TS 23.040 §9.1.2.5)")]
    AddressTooLong { field: &'static str, digits: usize },
    #[error(
        "the alphanumeric {field} {text:?} needs {septets} septets; at most 11 fit (TS 23.040 §9.1.2.5)"
    )]
    AlphanumericTooLong {
        field: &'static str,
        text: String,
        septets: usize,
    },
    #[error(
        "the alphanumeric {field} has {character:?}, which is not in the GSM 7-bit alphabet (TS 23.038 §6.2.1)"
    )]
    AlphanumericNotGsm7 {
        field: &'static str,
        character: char,
    },
    #[error(
        "the text needs {parts} parts; a concatenated message holds at most 255 (TS 23.040 §9.2.3.24.1)"
    )]
    TooManyParts { parts: usize },
    #[error("part {part} needs a user data length of {length} {unit}, more than one SMS holds")]
    PartTooLong {
        part: usize,
        length: usize,
        unit: &'static str,
    },
    #[error("the {timestamp} {field} is {value}, outside {range} (TS 23.040 §9.2.3.11)")]
    TimestampOutOfRange {
        timestamp: &'static str,
        field: &'static str,
        value: i32,
        range: &'static str,
    },
}

/// Why a hex PDU cannot be decoded; each variant says where.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum DecodeError {
    #[error("the PDU is empty")]
    Empty,
    #[error("character {position} of the hex, {character:?}, is not a hex digit")]
    NotHex { position: usize, character: char },
    #[error("the hex has an odd number of digits ({digits}), so its last octet is cut in half")]
    OddHexLength { digits: usize },
    #[error("PDU ends at octet {offset} inside the {field} (needs {needed} more octets)")]
    Truncated {
        offset: usize,
        field: &'static str,
        needed: usize,
    },
    #[error(
        "the first octet 0x{first_octet:02X} at octet {offset} has the reserved message type 3 (TP-MTI, TS 23.040 §9.2.3.1)"
    )]
    ReservedMessageType { offset: usize, first_octet: u8 },
    #[error(
        "the {field} has 0x{octet:02X} at octet {offset}, which is not two decimal semi-octets (TS 23.040 §9.2.3.11)"
    )]
    NotDecimal {
        offset: usize,
        field: &'static str,
        octet: u8,
    },
    #[error(
        "the data coding scheme 0x{dcs:02X} at octet {offset} marks the text as compressed, which this codec does not decode (TS 23.038 §4)"
    )]
    Compressed { offset: usize, dcs: u8 },
    #[error("{count} octets follow the end of the user data at octet {offset}")]
    TrailingOctets { offset: usize, count: usize },
    #[error(
        "the user data header at octet {offset} takes {header} octets but the user data holds {available}"
    )]
    HeaderTooLong {
        offset: usize,
        header: usize,
        available: usize,
    },
    #[error(
        "information element 0x{iei:02X} at octet {offset} needs {needed} octets but only {remaining} remain in the user data header"
    )]
    ElementOverrun {
        offset: usize,
        iei: u8,
        needed: usize,
        remaining: usize,
    },
    #[error(
        "concatenation element 0x{iei:02X} at octet {offset} has length {length}; it must be {expected} (TS 23.040 §9.2.3.24.1, §9.2.3.24.8)"
    )]
    ConcatLength {
        offset: usize,
        iei: u8,
        length: u8,
        expected: u8,
    },
}

/// Packs septets into `out`, the first one starting `fill_bits` into the first new octet
/// (TS 23.038 §6.1.2.1.1; fill bits after a user data header: TS 23.040 §9.2.3.24).
pub(crate) fn pack_septets(septets: &[u8], fill_bits: usize, out: &mut Vec<u8>) {
    let start = out.len();
    let total_bits = fill_bits + 7 * septets.len();
    out.resize(start + total_bits.div_ceil(8), 0);
    for (index, septet) in septets.iter().enumerate() {
        let bit = fill_bits + 7 * index;
        let [low, high] = (u16::from(septet & 0x7F) << (bit % 8)).to_le_bytes();
        let octet = start + bit / 8;
        if let Some(slot) = out.get_mut(octet) {
            *slot |= low;
        }
        if high != 0
            && let Some(slot) = out.get_mut(octet + 1)
        {
            *slot |= high;
        }
    }
}

/// Unpacks `count` septets starting at bit `start_bit` of `data` (TS 23.038 §6.1.2.1.1). Bits
/// past the end read as 0; callers check the length first.
pub(crate) fn unpack_septets(data: &[u8], start_bit: usize, count: usize) -> Vec<u8> {
    (0..count)
        .map(|index| {
            let bit = start_bit + 7 * index;
            let low = data.get(bit / 8).copied().unwrap_or(0);
            let high = data.get(bit / 8 + 1).copied().unwrap_or(0);
            let [value, _] = (u16::from_le_bytes([low, high]) >> (bit % 8)).to_le_bytes();
            value & 0x7F
        })
        .collect()
}

// ---------------------------------------------------------------------------------------------
// Segmentation (TS 23.040 §9.2.3.24.1 concatenation; sizes from §9.2.3.16 TP-UDL)
// ---------------------------------------------------------------------------------------------

/// Octets of user data one SMS holds (TS 23.040 §9.2.3.16).
const MAX_USER_DATA_OCTETS: usize = 140;
/// Septets in one GSM-7 SMS without a header (140 octets).
const GSM7_SINGLE: usize = 160;
/// UTF-16 units in one UCS-2 SMS without a header (140 octets).
const UCS2_SINGLE: usize = 70;
/// Septets per part with the 6-octet 8-bit concatenation header: (140 - 6) * 8 = 1072 bits,
/// 153 septets and a fill bit.
const GSM7_PART_NARROW: usize = 153;
/// UTF-16 units per part with the 6-octet 8-bit header ((140 - 6) / 2).
const UCS2_PART_NARROW: usize = 67;
/// Septets per part with the 7-octet 16-bit header: (140 - 7) * 8 = 1064 bits = 152 septets.
const GSM7_PART_WIDE: usize = 152;
/// UTF-16 units per part with the 7-octet 16-bit header ((140 - 7) / 2, rounded down).
const UCS2_PART_WIDE: usize = 66;

/// Splits a text into SMS parts: GSM-7 whenever every character is in the default alphabet or
/// its extension table (extension chars count 2 septets: € [ ] { } ~ \ ^ | and form feed), else
/// UCS-2. One part holds 160 septets GSM-7 / 70 UCS-2 characters; when more than one part is
/// needed, 153 septets / 67 UTF-16 units per part. Never splits an extension escape pair, and
/// never splits a UTF-16 surrogate pair (emoji) across parts. An empty text is one empty part.
pub fn segment(text: &str) -> Segmentation {
    segment_with(text, GSM7_PART_NARROW, UCS2_PART_NARROW)
}

fn segment_with(text: &str, gsm7_part: usize, ucs2_part: usize) -> Segmentation {
    if gsm7::is_gsm7(text) {
        let septets: usize = text.chars().map(gsm7::septets).sum();
        let parts = if septets <= GSM7_SINGLE {
            vec![text.to_string()]
        } else {
            split(text, gsm7_part, gsm7::septets)
        };
        Segmentation {
            encoding: Encoding::Gsm7,
            parts,
        }
    } else {
        let units = text.encode_utf16().count();
        let parts = if units <= UCS2_SINGLE {
            vec![text.to_string()]
        } else {
            split(text, ucs2_part, char::len_utf16)
        };
        Segmentation {
            encoding: Encoding::Ucs2,
            parts,
        }
    }
}

/// Cuts the text into parts of at most `capacity` by whole characters.
fn split(text: &str, capacity: usize, cost: fn(char) -> usize) -> Vec<String> {
    let mut parts = Vec::new();
    let mut current = String::new();
    let mut used = 0;
    for character in text.chars() {
        let needed = cost(character);
        if used + needed > capacity && !current.is_empty() {
            parts.push(std::mem::take(&mut current));
            used = 0;
        }
        current.push(character);
        used += needed;
    }
    if !current.is_empty() || parts.is_empty() {
        parts.push(current);
    }
    parts
}

// ---------------------------------------------------------------------------------------------
// Encoding
// ---------------------------------------------------------------------------------------------

/// TP-MTI values (TS 23.040 §9.2.3.1).
const MTI_DELIVER: u8 = 0b00;
const MTI_SUBMIT: u8 = 0b01;
const MTI_STATUS_REPORT: u8 = 0b10;
/// TP-MMS set: no more messages waiting (§9.2.3.2), in SMS-DELIVER and SMS-STATUS-REPORT.
const NO_MORE_MESSAGES: u8 = 0x04;
/// TP-VPF relative (§9.2.3.3), bits 4..3 = 10.
const VALIDITY_RELATIVE: u8 = 0x10;
/// TP-SRR (§9.2.3.5).
const STATUS_REPORT_REQUEST: u8 = 0x20;
/// TP-UDHI (§9.2.3.23).
const USER_DATA_HEADER: u8 = 0x40;

/// Type of address octets (§9.1.2.5): extension bit, TON, NPI (1 = ISDN/telephone).
const TYPE_INTERNATIONAL: u8 = 0x91;
const TYPE_NATIONAL: u8 = 0xA1;
const TYPE_UNKNOWN: u8 = 0x81;
const TYPE_ALPHANUMERIC: u8 = 0xD0;

/// TP-DCS general data coding, no class (TS 23.038 §4).
const DCS_GSM7: u8 = 0x00;
const DCS_UCS2: u8 = 0x08;

/// Information element identifiers (§9.2.3.24).
const IEI_CONCAT_8: u8 = 0x00;
const IEI_CONCAT_16: u8 = 0x08;

/// The SMSC an [`encode_deliver`] PDU names.
const VIRTUAL_SMSC: &str = "447785016005";

/// Most digits an address holds: 10 octets of semi-octets (§9.1.2.5).
const MAX_ADDRESS_DIGITS: usize = 20;
/// Most septets an alphanumeric address holds: 10 octets (§9.1.2.5).
const MAX_ALPHANUMERIC_SEPTETS: usize = 11;

/// Checks a phone number: a leading '+' makes it international, the rest must be digits.
fn parse_number<'a>(
    number: &'a str,
    field: &'static str,
    plain_type: u8,
) -> Result<(u8, &'a str), EncodeError> {
    let (type_of_address, digits, skipped) = match number.strip_prefix('+') {
        Some(rest) => (TYPE_INTERNATIONAL, rest, 1),
        None => (plain_type, number, 0),
    };
    if digits.is_empty() {
        return Err(EncodeError::EmptyAddress { field });
    }
    if let Some((position, character)) = digits
        .chars()
        .enumerate()
        .find(|(_, character)| !character.is_ascii_digit())
    {
        return Err(EncodeError::NonDigitAddress {
            field,
            position: position + skipped,
            character,
        });
    }
    if digits.len() > MAX_ADDRESS_DIGITS {
        return Err(EncodeError::AddressTooLong {
            field,
            digits: digits.len(),
        });
    }
    Ok((type_of_address, digits))
}

/// Writes ASCII digits as swapped semi-octets, 'F' filling an odd last one (§9.1.2.3).
fn push_semi_octets(digits: &str, out: &mut Vec<u8>) {
    let value = |digit: u8| digit.wrapping_sub(b'0') & 0x0F;
    for pair in digits.as_bytes().chunks(2) {
        match *pair {
            [first, second] => out.push(value(first) | (value(second) << 4)),
            [first] => out.push(value(first) | 0xF0),
            _ => {}
        }
    }
}

/// A TP address field (§9.1.2.5): digit count, type of address, semi-octets.
fn push_number_address(type_of_address: u8, digits: &str, out: &mut Vec<u8>) {
    // At most 20 digits, checked by parse_number.
    out.push(u8::try_from(digits.len()).unwrap_or(u8::MAX));
    out.push(type_of_address);
    push_semi_octets(digits, out);
}

/// An SMSC field (TS 24.011 §8.2.5.1 RP address as +CMGR prints it): octet count, type,
/// semi-octets.
fn push_smsc(digits: &str, out: &mut Vec<u8>) {
    out.push(u8::try_from(1 + digits.len().div_ceil(2)).unwrap_or(u8::MAX));
    out.push(TYPE_INTERNATIONAL);
    push_semi_octets(digits, out);
}

/// The originating address of an SMS-DELIVER: international, national digits, or
/// alphanumeric text packed in GSM 7-bit (§9.1.2.5).
fn push_sender(sender: &str, out: &mut Vec<u8>) -> Result<(), EncodeError> {
    const FIELD: &str = "sender";
    if sender.is_empty() {
        return Err(EncodeError::EmptyAddress { field: FIELD });
    }
    let digits_after_plus = sender
        .strip_prefix('+')
        .is_some_and(|rest| !rest.is_empty() && rest.bytes().all(|b| b.is_ascii_digit()));
    if digits_after_plus || sender.bytes().all(|b| b.is_ascii_digit()) {
        let (type_of_address, digits) = parse_number(sender, FIELD, TYPE_NATIONAL)?;
        push_number_address(type_of_address, digits, out);
        return Ok(());
    }
    let septets =
        gsm7::text_to_septets(sender).map_err(|character| EncodeError::AlphanumericNotGsm7 {
            field: FIELD,
            character,
        })?;
    if septets.len() > MAX_ALPHANUMERIC_SEPTETS {
        return Err(EncodeError::AlphanumericTooLong {
            field: FIELD,
            text: sender.to_string(),
            septets: septets.len(),
        });
    }
    // The length counts the semi-octets the packed septets fill (§9.1.2.5).
    out.push(u8::try_from((septets.len() * 7).div_ceil(4)).unwrap_or(u8::MAX));
    out.push(TYPE_ALPHANUMERIC);
    pack_septets(&septets, 0, out);
    Ok(())
}

/// Two decimal digits as a swapped semi-octet (§9.2.3.11).
fn decimal_octet(value: u8) -> u8 {
    (value / 10) | ((value % 10) << 4)
}

/// The 7 octets of a time stamp (§9.2.3.11), after checking each field's range.
fn push_timestamp(
    timestamp: &Timestamp,
    which: &'static str,
    out: &mut Vec<u8>,
) -> Result<(), EncodeError> {
    let check = |field: &'static str, value: i32, low: i32, high: i32, range: &'static str| {
        if (low..=high).contains(&value) {
            Ok(())
        } else {
            Err(EncodeError::TimestampOutOfRange {
                timestamp: which,
                field,
                value,
                range,
            })
        }
    };
    check("year", i32::from(timestamp.year), 2000, 2099, "2000..=2099")?;
    check("month", i32::from(timestamp.month), 1, 12, "1..=12")?;
    check("day", i32::from(timestamp.day), 1, 31, "1..=31")?;
    check("hour", i32::from(timestamp.hour), 0, 23, "0..=23")?;
    check("minute", i32::from(timestamp.minute), 0, 59, "0..=59")?;
    check("second", i32::from(timestamp.second), 0, 59, "0..=59")?;
    let zone = timestamp.zone_quarter_hours;
    check(
        "zone in quarter hours",
        i32::from(zone),
        -79,
        79,
        "-79..=79",
    )?;
    let year = u8::try_from(timestamp.year - 2000).unwrap_or(0);
    out.extend([
        decimal_octet(year),
        decimal_octet(timestamp.month),
        decimal_octet(timestamp.day),
        decimal_octet(timestamp.hour),
        decimal_octet(timestamp.minute),
        decimal_octet(timestamp.second),
    ]);
    // The zone's sign is bit 3 of the octet, the tens digit's top bit (§9.2.3.11).
    let sign = if zone < 0 { 0x08 } else { 0x00 };
    out.push(decimal_octet(zone.unsigned_abs()) | sign);
    Ok(())
}

/// TP-VP relative format (§9.2.3.12.1) for at least `minutes`, up to its 63-week maximum.
pub fn relative_validity_octet(minutes: u32) -> u8 {
    let octet = if minutes <= 12 * 60 {
        // 0..=143: (VP + 1) * 5 minutes.
        minutes.div_ceil(5).max(1) - 1
    } else if minutes <= 24 * 60 {
        // 144..=167: 12 hours + (VP - 143) * 30 minutes.
        143 + (minutes - 12 * 60).div_ceil(30)
    } else if minutes <= 30 * 24 * 60 {
        // 168..=196: (VP - 166) days.
        166 + minutes.div_ceil(24 * 60)
    } else {
        // 197..=255: (VP - 192) weeks.
        192 + minutes.div_ceil(7 * 24 * 60).min(63)
    };
    u8::try_from(octet).unwrap_or(u8::MAX)
}

/// Minutes a TP-VP relative octet stands for (§9.2.3.12.1).
pub fn relative_validity_minutes(octet: u8) -> u32 {
    let value = u32::from(octet);
    match octet {
        0..=143 => (value + 1) * 5,
        144..=167 => 12 * 60 + (value - 143) * 30,
        168..=196 => (value - 166) * 24 * 60,
        197..=255 => (value - 192) * 7 * 24 * 60,
    }
}

/// The user data header for a part of a concatenated message (§9.2.3.24.1, §9.2.3.24.8).
fn concat_header(concat: &Concat) -> Vec<u8> {
    let [high, low] = concat.reference.to_be_bytes();
    if concat.wide_reference {
        vec![
            6,
            IEI_CONCAT_16,
            4,
            high,
            low,
            concat.total,
            concat.sequence,
        ]
    } else {
        vec![5, IEI_CONCAT_8, 3, low, concat.total, concat.sequence]
    }
}

/// TP-UDL and TP-UD of one part (§9.2.3.16, §9.2.3.24): the header, then the text, GSM 7-bit
/// septet-aligned after the header by fill bits.
fn push_user_data(
    encoding: Encoding,
    text: &str,
    concat: Option<&Concat>,
    part: usize,
    out: &mut Vec<u8>,
) -> Result<(), EncodeError> {
    let mut user_data = concat.map(concat_header).unwrap_or_default();
    let (length, unit, limit) = match encoding {
        Encoding::Gsm7 => {
            // Only GSM-7 text reaches here (segment decided); a character without a code would
            // be left out.
            let mut septets = Vec::with_capacity(text.len());
            for code in text.chars().filter_map(gsm7::code) {
                match code {
                    gsm7::Gsm7Code::Default(code) => septets.push(code),
                    gsm7::Gsm7Code::Extension(code) => septets.extend([gsm7::ESCAPE, code]),
                }
            }
            let header_bits = user_data.len() * 8;
            let header_septets = header_bits.div_ceil(7);
            let fill_bits = header_septets * 7 - header_bits;
            pack_septets(&septets, fill_bits, &mut user_data);
            (header_septets + septets.len(), "septets", GSM7_SINGLE)
        }
        Encoding::Ucs2 => {
            for unit in text.encode_utf16() {
                user_data.extend(unit.to_be_bytes());
            }
            (user_data.len(), "octets", MAX_USER_DATA_OCTETS)
        }
    };
    let encoded_length = u8::try_from(length)
        .ok()
        .filter(|_| length <= limit)
        .ok_or(EncodeError::PartTooLong { part, length, unit })?;
    out.push(encoded_length);
    out.extend(user_data);
    Ok(())
}

fn to_hex(octets: &[u8], out: &mut String) {
    for octet in octets {
        // Writing to a String cannot fail.
        let _ = write!(out, "{octet:02X}");
    }
}

/// The concatenation headers for `parts` parts, or None for one part.
fn concat_for(
    parts: usize,
    index: usize,
    reference: u16,
    wide_reference: bool,
) -> Result<Option<Concat>, EncodeError> {
    if parts <= 1 {
        return Ok(None);
    }
    let too_many = EncodeError::TooManyParts { parts };
    let total = u8::try_from(parts).map_err(|_| too_many.clone())?;
    let sequence = u8::try_from(index + 1).map_err(|_| too_many)?;
    Ok(Some(Concat {
        reference: if wide_reference {
            reference
        } else {
            reference & 0xFF
        },
        total,
        sequence,
        wide_reference,
    }))
}

fn data_coding_scheme(encoding: Encoding) -> u8 {
    match encoding {
        Encoding::Gsm7 => DCS_GSM7,
        Encoding::Ucs2 => DCS_UCS2,
    }
}

/// Encodes an SMS-SUBMIT (§9.2.2.2) for each part. TP-MR = 0 (the modem assigns it). The
/// recipient is international ("+44...", type 0x91) or plain digits, sent with type of number
/// "unknown" (0x81) so the network reads them as dialled. Errors: empty recipient, non-digit
/// recipient, more than 20 digits, text that needs more than 255 parts.
pub fn encode_submit(
    recipient: &str,
    text: &str,
    options: &SubmitOptions,
) -> Result<Vec<SubmitPdu>, EncodeError> {
    let (type_of_address, digits) = parse_number(recipient, "recipient", TYPE_UNKNOWN)?;
    let segmentation = if options.wide_reference {
        segment_with(text, GSM7_PART_WIDE, UCS2_PART_WIDE)
    } else {
        segment(text)
    };
    let parts = segmentation.parts.len();
    if parts > 255 {
        return Err(EncodeError::TooManyParts { parts });
    }
    let mut pdus = Vec::with_capacity(parts);
    for (index, part) in segmentation.parts.iter().enumerate() {
        let concat = concat_for(
            parts,
            index,
            options.concat_reference,
            options.wide_reference,
        )?;
        // §9.2.2.2: first octet, TP-MR, TP-DA, TP-PID, TP-DCS, [TP-VP], TP-UDL, TP-UD.
        let mut first_octet = MTI_SUBMIT;
        if options.validity_minutes.is_some() {
            first_octet |= VALIDITY_RELATIVE;
        }
        if options.status_report {
            first_octet |= STATUS_REPORT_REQUEST;
        }
        if concat.is_some() {
            first_octet |= USER_DATA_HEADER;
        }
        let mut tpdu = Vec::with_capacity(MAX_USER_DATA_OCTETS + 24);
        tpdu.push(first_octet);
        tpdu.push(0); // TP-MR: the modem fills in its own.
        push_number_address(type_of_address, digits, &mut tpdu);
        tpdu.push(0); // TP-PID: plain short message (§9.2.3.9).
        tpdu.push(data_coding_scheme(segmentation.encoding));
        if let Some(minutes) = options.validity_minutes {
            tpdu.push(relative_validity_octet(minutes));
        }
        push_user_data(
            segmentation.encoding,
            part,
            concat.as_ref(),
            index + 1,
            &mut tpdu,
        )?;
        let mut hex = String::with_capacity(2 + tpdu.len() * 2);
        hex.push_str("00"); // Empty SMSC field: the modem uses the SIM's SMSC.
        to_hex(&tpdu, &mut hex);
        pdus.push(SubmitPdu {
            hex,
            tpdu_length: tpdu.len(),
        });
    }
    Ok(pdus)
}

/// Encodes an SMS-DELIVER (§9.2.2.1) as a modem would show it in +CMGR/+CMT, with the SMSC
/// field of "+447785016005". Used by a virtual modem and by tests. Sender: "+447..."
/// international, other digit strings national, anything else alphanumeric (GSM-7 packed, at
/// most 11 septets, §9.1.2.5). Returns one hex PDU per part, with a concatenation header
/// (8-bit reference) if several parts.
pub fn encode_deliver(
    sender: &str,
    text: &str,
    timestamp: &Timestamp,
    concat_reference: u8,
) -> Result<Vec<String>, EncodeError> {
    let mut sender_field = Vec::with_capacity(12);
    push_sender(sender, &mut sender_field)?;
    let mut time_stamp = Vec::with_capacity(7);
    push_timestamp(timestamp, "service centre time stamp", &mut time_stamp)?;
    let segmentation = segment(text);
    let parts = segmentation.parts.len();
    if parts > 255 {
        return Err(EncodeError::TooManyParts { parts });
    }
    let mut pdus = Vec::with_capacity(parts);
    for (index, part) in segmentation.parts.iter().enumerate() {
        let concat = concat_for(parts, index, u16::from(concat_reference), false)?;
        let mut pdu = Vec::with_capacity(MAX_USER_DATA_OCTETS + 40);
        push_smsc(VIRTUAL_SMSC, &mut pdu);
        // §9.2.2.1: first octet, TP-OA, TP-PID, TP-DCS, TP-SCTS, TP-UDL, TP-UD.
        let mut first_octet = MTI_DELIVER | NO_MORE_MESSAGES;
        if concat.is_some() {
            first_octet |= USER_DATA_HEADER;
        }
        pdu.push(first_octet);
        pdu.extend_from_slice(&sender_field);
        pdu.push(0); // TP-PID
        pdu.push(data_coding_scheme(segmentation.encoding));
        pdu.extend_from_slice(&time_stamp);
        push_user_data(
            segmentation.encoding,
            part,
            concat.as_ref(),
            index + 1,
            &mut pdu,
        )?;
        let mut hex = String::with_capacity(pdu.len() * 2);
        to_hex(&pdu, &mut hex);
        pdus.push(hex);
    }
    Ok(pdus)
}

/// Encodes an SMS-STATUS-REPORT (§9.2.2.3), with the SMSC field of "+447785016005" and no
/// TP-PI. `status` is TP-ST (0 = received by the recipient). The recipient is written as in
/// [`encode_submit`].
pub fn encode_status_report(
    message_reference: u8,
    recipient: &str,
    submitted: &Timestamp,
    discharged: &Timestamp,
    status: u8,
) -> Result<String, EncodeError> {
    let (type_of_address, digits) = parse_number(recipient, "recipient", TYPE_UNKNOWN)?;
    let mut pdu = Vec::with_capacity(40);
    push_smsc(VIRTUAL_SMSC, &mut pdu);
    // §9.2.2.3: first octet, TP-MR, TP-RA, TP-SCTS, TP-DT, TP-ST.
    pdu.push(MTI_STATUS_REPORT | NO_MORE_MESSAGES);
    pdu.push(message_reference);
    push_number_address(type_of_address, digits, &mut pdu);
    push_timestamp(submitted, "service centre time stamp", &mut pdu)?;
    push_timestamp(discharged, "discharge time", &mut pdu)?;
    pdu.push(status);
    let mut hex = String::with_capacity(pdu.len() * 2);
    to_hex(&pdu, &mut hex);
    Ok(hex)
}

// ---------------------------------------------------------------------------------------------
// Decoding
// ---------------------------------------------------------------------------------------------

/// Field names, as errors print them.
const FIELD_SMSC: &str = "SMSC address";
const FIELD_FIRST_OCTET: &str = "first octet";
const FIELD_MESSAGE_REFERENCE: &str = "message reference (TP-MR)";
const FIELD_SENDER: &str = "sender address (TP-OA)";
const FIELD_RECIPIENT: &str = "recipient address (TP-DA)";
const FIELD_REPORT_RECIPIENT: &str = "recipient address (TP-RA)";
const FIELD_PROTOCOL: &str = "protocol identifier (TP-PID)";
const FIELD_CODING: &str = "data coding scheme (TP-DCS)";
const FIELD_TIMESTAMP: &str = "service centre time stamp (TP-SCTS)";
const FIELD_DISCHARGE: &str = "discharge time (TP-DT)";
const FIELD_STATUS: &str = "status (TP-ST)";
const FIELD_PARAMETERS: &str = "parameter indicator (TP-PI)";
const FIELD_VALIDITY: &str = "validity period (TP-VP)";
const FIELD_USER_DATA_LENGTH: &str = "user data length (TP-UDL)";

/// Walks the octets, naming the field when they run out.
struct Reader<'a> {
    octets: &'a [u8],
    position: usize,
    /// Fields read leniently so far.
    oddities: Vec<Oddity>,
}

impl<'a> Reader<'a> {
    fn take(&mut self, count: usize, field: &'static str) -> Result<&'a [u8], DecodeError> {
        let end = self.position.saturating_add(count);
        match self.octets.get(self.position..end) {
            Some(slice) => {
                self.position = end;
                Ok(slice)
            }
            None => Err(DecodeError::Truncated {
                offset: self.octets.len(),
                field,
                needed: end.saturating_sub(self.octets.len()),
            }),
        }
    }

    fn octet(&mut self, field: &'static str) -> Result<u8, DecodeError> {
        match self.octets.get(self.position) {
            Some(&octet) => {
                self.position += 1;
                Ok(octet)
            }
            None => Err(DecodeError::Truncated {
                offset: self.octets.len(),
                field,
                needed: 1,
            }),
        }
    }

    fn rest(&mut self) -> &'a [u8] {
        let rest = self.octets.get(self.position..).unwrap_or_default();
        self.position = self.octets.len();
        rest
    }

    fn is_empty(&self) -> bool {
        self.position >= self.octets.len()
    }
}

fn hex_to_octets(hex: &str) -> Result<Vec<u8>, DecodeError> {
    let hex = hex.trim();
    let mut octets = Vec::with_capacity(hex.len() / 2);
    let mut high: Option<u8> = None;
    let mut digits = 0;
    for (position, character) in hex.chars().enumerate() {
        let nibble = character
            .to_digit(16)
            .and_then(|value| u8::try_from(value).ok())
            .ok_or(DecodeError::NotHex {
                position,
                character,
            })?;
        digits += 1;
        match high.take() {
            Some(high) => octets.push((high << 4) | nibble),
            None => high = Some(nibble),
        }
    }
    if high.is_some() {
        return Err(DecodeError::OddHexLength { digits });
    }
    Ok(octets)
}

/// Semi-octet digits (§9.1.2.3): 0-9, '*', '#', 'a', 'b', 'c'; the 'F' filler is skipped.
fn semi_octet_digits(octets: &[u8], count: usize) -> String {
    octets
        .iter()
        .flat_map(|octet| [octet & 0x0F, octet >> 4])
        .take(count)
        .filter_map(|nibble| match nibble {
            0..=9 => Some(char::from(b'0' + nibble)),
            0x0A => Some('*'),
            0x0B => Some('#'),
            0x0C => Some('a'),
            0x0D => Some('b'),
            0x0E => Some('c'),
            _ => None,
        })
        .collect()
}

/// An address from its type octet and value (§9.1.2.5). `semi_octets` is the address length:
/// digits, or for alphanumeric the semi-octets the packed septets fill.
fn address_from(type_of_address: u8, semi_octets: usize, octets: &[u8]) -> Address {
    // Type of number: bits 6..4 of the type of address.
    match (type_of_address >> 4) & 0x07 {
        0b101 => Address {
            kind: AddressKind::Alphanumeric,
            value: gsm7::septets_to_text(&unpack_septets(octets, 0, semi_octets * 4 / 7)),
        },
        ton => Address {
            kind: match ton {
                0b001 => AddressKind::International,
                0b010 => AddressKind::National,
                _ => AddressKind::Unknown,
            },
            value: semi_octet_digits(octets, semi_octets),
        },
    }
}

/// A TP address field (§9.1.2.5).
fn read_address(reader: &mut Reader<'_>, field: &'static str) -> Result<Address, DecodeError> {
    let semi_octets = usize::from(reader.octet(field)?);
    let type_of_address = reader.octet(field)?;
    let octets = reader.take(semi_octets.div_ceil(2), field)?;
    Ok(address_from(type_of_address, semi_octets, octets))
}

/// The SMSC field as modems print it (TS 27.005 §3.1 <pdu>; TS 24.011 §8.2.5.1): its length
/// counts octets including the type of address; 0 means none.
fn read_smsc(reader: &mut Reader<'_>) -> Result<Option<Address>, DecodeError> {
    let length = usize::from(reader.octet(FIELD_SMSC)?);
    if length == 0 {
        return Ok(None);
    }
    let type_of_address = reader.octet(FIELD_SMSC)?;
    let octets = reader.take(length - 1, FIELD_SMSC)?;
    Ok(Some(address_from(
        type_of_address,
        octets.len() * 2,
        octets,
    )))
}

/// A swapped decimal semi-octet pair (§9.2.3.11).
fn read_decimal(octet: u8, offset: usize, field: &'static str) -> Result<u8, DecodeError> {
    let (tens, units) = (octet & 0x0F, octet >> 4);
    if tens > 9 || units > 9 {
        return Err(DecodeError::NotDecimal {
            offset,
            field,
            octet,
        });
    }
    Ok(tens * 10 + units)
}

/// Tens × 10 + units of an octet's swapped nibbles, whatever they hold (at most 165).
fn lenient_decimal(octet: u8) -> u8 {
    (octet & 0x0F) * 10 + (octet >> 4)
}

/// A 7-octet time stamp (§9.2.3.11). Digits are checked; calendar ranges are not, so a
/// network's odd clock does not cost the message. An octet that is not two decimal semi-octets
/// is read leniently and named in the reader's oddities: a delivery report is worth more than
/// the time zone it carries.
fn read_timestamp(reader: &mut Reader<'_>, field: &'static str) -> Result<Timestamp, DecodeError> {
    let start = reader.position;
    let octets = reader.take(7, field)?;
    let mut fields = [0u8; 6];
    let mut oddities = Vec::new();
    for (index, (slot, &octet)) in fields.iter_mut().zip(octets).enumerate() {
        *slot = read_decimal(octet, start + index, field).unwrap_or_else(|_| {
            let read_as = lenient_decimal(octet);
            oddities.push(Oddity::NotDecimal {
                offset: start + index,
                field,
                octet,
                read_as,
            });
            read_as
        });
    }
    let zone_octet = octets.get(6).copied().unwrap_or(0);
    // Bit 3 is the sign; the rest of that semi-octet is the tens digit (§9.2.3.11).
    let magnitude = zone_octet & !0x08;
    let quarters = read_decimal(magnitude, start + 6, field).unwrap_or_else(|_| {
        let read_as = lenient_decimal(magnitude);
        oddities.push(Oddity::NotDecimal {
            offset: start + 6,
            field,
            octet: zone_octet,
            read_as,
        });
        read_as
    });
    reader.oddities.extend(oddities);
    // At most 7 × 10 + 15 = 85 quarters once the sign bit is masked, so this always fits.
    let quarters = i8::try_from(quarters).unwrap_or(i8::MAX);
    let [year, month, day, hour, minute, second] = fields;
    Ok(Timestamp {
        year: 2000 + u16::from(year),
        month,
        day,
        hour,
        minute,
        second,
        zone_quarter_hours: if zone_octet & 0x08 != 0 {
            -quarters
        } else {
            quarters
        },
    })
}

/// The alphabet a data coding scheme names (TS 23.038 §4), or None for compressed text.
/// Reserved codings count as GSM 7-bit, as §4 asks of a receiver.
pub fn alphabet(data_coding_scheme: u8) -> Option<Alphabet> {
    let character_set = |bits: u8| match bits & 0x03 {
        0b01 => Alphabet::EightBit,
        0b10 => Alphabet::Ucs2,
        _ => Alphabet::Gsm7,
    };
    match data_coding_scheme >> 4 {
        // 00xx general data coding, 01xx marked for automatic deletion: bit 5 compressed,
        // bits 3..2 the character set.
        0x0..=0x7 if data_coding_scheme & 0x20 != 0 => None,
        0x0..=0x7 => Some(character_set(data_coding_scheme >> 2)),
        // 1100 and 1101 message waiting (discard / store), GSM 7-bit; 1000..1011 reserved.
        0x8..=0xD => Some(Alphabet::Gsm7),
        // 1110 message waiting, store, UCS-2.
        0xE => Some(Alphabet::Ucs2),
        // 1111 data coding / message class: bit 2 chooses 8-bit data over GSM 7-bit.
        _ if data_coding_scheme & 0x04 != 0 => Some(Alphabet::EightBit),
        _ => Some(Alphabet::Gsm7),
    }
}

/// Text and concatenation from TP-UDL and TP-UD.
struct UserData {
    encoding: Encoding,
    concat: Option<Concat>,
    text: String,
}

/// The information elements of a user data header (§9.2.3.24); only concatenation is kept.
/// `offset` is where the elements start in the PDU.
fn read_header(elements: &[u8], offset: usize) -> Result<Option<Concat>, DecodeError> {
    let mut concat = None;
    let mut position = 0;
    while let Some(&iei) = elements.get(position) {
        let element_offset = offset + position;
        let remaining = elements.len() - position;
        let Some(&length) = elements.get(position + 1) else {
            return Err(DecodeError::ElementOverrun {
                offset: element_offset,
                iei,
                needed: 2,
                remaining,
            });
        };
        let end = position + 2 + usize::from(length);
        let Some(data) = elements.get(position + 2..end) else {
            return Err(DecodeError::ElementOverrun {
                offset: element_offset,
                iei,
                needed: 2 + usize::from(length),
                remaining,
            });
        };
        let element = match (iei, data) {
            (IEI_CONCAT_8, &[reference, total, sequence]) => {
                Some((u16::from(reference), total, sequence))
            }
            (IEI_CONCAT_16, &[high, low, total, sequence]) => {
                Some((u16::from_be_bytes([high, low]), total, sequence))
            }
            (IEI_CONCAT_8 | IEI_CONCAT_16, _) => {
                return Err(DecodeError::ConcatLength {
                    offset: element_offset,
                    iei,
                    length,
                    expected: if iei == IEI_CONCAT_8 { 3 } else { 4 },
                });
            }
            _ => None,
        };
        if let Some((reference, total, sequence)) = element {
            // §9.2.3.24.1: a zero total, or a sequence of zero or past the total, makes the
            // receiver ignore the element. A repeated element: the last one counts.
            concat = (total != 0 && sequence != 0 && sequence <= total).then_some(Concat {
                reference,
                total,
                sequence,
                wide_reference: iei == IEI_CONCAT_16,
            });
        }
        position = end;
    }
    Ok(concat)
}

/// Reads TP-UDL and TP-UD, which run to the end of the PDU (§9.2.3.16, §9.2.3.24); octets after
/// the user data are an error. The data coding scheme, read at `coding_offset`, picks the
/// alphabet; `header_present` is TP-UDHI.
fn read_user_data(
    reader: &mut Reader<'_>,
    header_present: bool,
    data_coding_scheme: u8,
    coding_offset: usize,
) -> Result<UserData, DecodeError> {
    let alphabet = alphabet(data_coding_scheme).ok_or(DecodeError::Compressed {
        offset: coding_offset,
        dcs: data_coding_scheme,
    })?;
    let length_offset = reader.position;
    let length = reader.octet(FIELD_USER_DATA_LENGTH)?;
    let count = usize::from(length);
    let (needed, unit) = match alphabet {
        Alphabet::Gsm7 => ((count * 7).div_ceil(8), "septets"),
        Alphabet::EightBit | Alphabet::Ucs2 => (count, "octets"),
    };
    let data_offset = reader.position;
    let data = reader.rest();
    // TP-UDL claims more than follows: decode what is there, cut to the octets that follow.
    let count = if data.len() < needed {
        reader.oddities.push(Oddity::UserDataShort {
            offset: length_offset,
            length,
            unit,
            needed,
            available: data.len(),
        });
        match alphabet {
            Alphabet::Gsm7 => data.len() * 8 / 7,
            Alphabet::EightBit | Alphabet::Ucs2 => data.len(),
        }
    } else {
        count
    };
    if data.len() > needed {
        return Err(DecodeError::TrailingOctets {
            offset: data_offset + needed,
            count: data.len() - needed,
        });
    }
    let (header_octets, concat) = if header_present {
        let header_length = usize::from(data.first().copied().unwrap_or(0));
        let header_octets = 1 + header_length;
        // For GSM 7-bit the header must fit within the TP-UDL septets.
        let available = match alphabet {
            Alphabet::Gsm7 => count * 7 / 8,
            Alphabet::EightBit | Alphabet::Ucs2 => count,
        };
        if header_octets > available {
            return Err(DecodeError::HeaderTooLong {
                offset: data_offset,
                header: header_octets,
                available,
            });
        }
        let elements = data.get(1..header_octets).unwrap_or_default();
        (header_octets, read_header(elements, data_offset + 1)?)
    } else {
        (0, None)
    };
    let text_offset = data_offset + header_octets;
    let body = data.get(header_octets..).unwrap_or_default();
    let (encoding, text) = match alphabet {
        Alphabet::Gsm7 => {
            // The text starts at the first septet boundary after the header (§9.2.3.24).
            let header_septets = (header_octets * 8).div_ceil(7);
            let septets = unpack_septets(
                data,
                header_septets * 7,
                count.saturating_sub(header_septets),
            );
            (Encoding::Gsm7, gsm7::septets_to_text(&septets))
        }
        Alphabet::EightBit => (
            Encoding::Gsm7,
            body.iter().copied().map(char::from).collect(),
        ),
        Alphabet::Ucs2 => {
            if body.len() % 2 != 0 {
                reader.oddities.push(Oddity::OddUcs2Length {
                    offset: text_offset,
                    length: body.len(),
                });
            }
            let units = body.chunks_exact(2).map(|pair| {
                u16::from_be_bytes([
                    pair.first().copied().unwrap_or(0),
                    pair.get(1).copied().unwrap_or(0),
                ])
            });
            // UTF-16 with surrogate pairs; a lone surrogate becomes U+FFFD.
            let text = char::decode_utf16(units)
                .map(|unit| unit.unwrap_or(char::REPLACEMENT_CHARACTER))
                .collect();
            (Encoding::Ucs2, text)
        }
    };
    Ok(UserData {
        encoding,
        concat,
        text,
    })
}

/// Decodes any SMS-DELIVER, SMS-SUBMIT or SMS-STATUS-REPORT from hex (upper or lower case;
/// surrounding whitespace ignored).
///
/// The message type comes from TP-MTI (§9.2.3.1) alone: 0 is read as SMS-DELIVER, 1 as
/// SMS-SUBMIT and 2 as SMS-STATUS-REPORT, the types a modem stores or forwards (the same
/// values mean DELIVER-REPORT, SUBMIT-REPORT and COMMAND in the other direction).
pub fn decode(hex: &str, smsc: SmscField) -> Result<Pdu, DecodeError> {
    let octets = hex_to_octets(hex)?;
    if octets.is_empty() {
        return Err(DecodeError::Empty);
    }
    let mut reader = Reader {
        octets: &octets,
        position: 0,
        oddities: Vec::new(),
    };
    let smsc = match smsc {
        SmscField::Present => read_smsc(&mut reader)?,
        SmscField::Absent => None,
    };
    let first_offset = reader.position;
    let first_octet = reader.octet(FIELD_FIRST_OCTET)?;
    match first_octet & 0x03 {
        MTI_DELIVER => decode_deliver(&mut reader, smsc, first_octet).map(Pdu::Deliver),
        MTI_SUBMIT => decode_submit(&mut reader, smsc, first_octet).map(Pdu::Submit),
        MTI_STATUS_REPORT => {
            decode_status_report(&mut reader, smsc, first_octet).map(Pdu::StatusReport)
        }
        _ => Err(DecodeError::ReservedMessageType {
            offset: first_offset,
            first_octet,
        }),
    }
}

/// SMS-DELIVER (§9.2.2.1): TP-OA, TP-PID, TP-DCS, TP-SCTS, TP-UDL, TP-UD.
fn decode_deliver(
    reader: &mut Reader<'_>,
    smsc: Option<Address>,
    first_octet: u8,
) -> Result<Deliver, DecodeError> {
    let sender = read_address(reader, FIELD_SENDER)?;
    let protocol_identifier = reader.octet(FIELD_PROTOCOL)?;
    let coding_offset = reader.position;
    let data_coding_scheme = reader.octet(FIELD_CODING)?;
    let timestamp = read_timestamp(reader, FIELD_TIMESTAMP)?;
    let user_data = read_user_data(
        reader,
        first_octet & USER_DATA_HEADER != 0,
        data_coding_scheme,
        coding_offset,
    )?;
    Ok(Deliver {
        smsc,
        sender,
        timestamp,
        encoding: user_data.encoding,
        concat: user_data.concat,
        text: user_data.text,
        protocol_identifier,
        data_coding_scheme,
        oddities: std::mem::take(&mut reader.oddities),
    })
}

/// Minutes of an enhanced validity period (§9.2.3.12.3), when it carries a duration.
fn enhanced_validity_minutes(octets: &[u8]) -> Option<u32> {
    let indicator = *octets.first()?;
    // Bit 7 set: another functionality indicator octet follows.
    let start = octets.iter().position(|octet| octet & 0x80 == 0)? + 1;
    let value = octets.get(start..)?;
    match indicator & 0x07 {
        0b001 => value.first().map(|&octet| relative_validity_minutes(octet)),
        0b010 => value
            .first()
            .map(|&seconds| u32::from(seconds).div_ceil(60)),
        0b011 => {
            let mut fields = [0u32; 3];
            for (slot, &octet) in fields.iter_mut().zip(value) {
                *slot = u32::from(read_decimal(octet, 0, FIELD_VALIDITY).ok()?);
            }
            let [hours, minutes, seconds] = fields;
            Some(hours * 60 + minutes + seconds.div_ceil(60))
        }
        _ => None,
    }
}

/// SMS-SUBMIT (§9.2.2.2): TP-MR, TP-DA, TP-PID, TP-DCS, TP-VP, TP-UDL, TP-UD.
fn decode_submit(
    reader: &mut Reader<'_>,
    smsc: Option<Address>,
    first_octet: u8,
) -> Result<Submit, DecodeError> {
    let message_reference = reader.octet(FIELD_MESSAGE_REFERENCE)?;
    let recipient = read_address(reader, FIELD_RECIPIENT)?;
    let _protocol_identifier = reader.octet(FIELD_PROTOCOL)?;
    let coding_offset = reader.position;
    let data_coding_scheme = reader.octet(FIELD_CODING)?;
    // TP-VPF, bits 4..3 (§9.2.3.3).
    let validity_minutes = match (first_octet >> 3) & 0x03 {
        0b10 => Some(relative_validity_minutes(reader.octet(FIELD_VALIDITY)?)),
        0b01 => enhanced_validity_minutes(reader.take(7, FIELD_VALIDITY)?),
        0b11 => {
            // Absolute (§9.2.3.12.2): a time stamp, not a duration.
            reader.take(7, FIELD_VALIDITY)?;
            None
        }
        _ => None,
    };
    let user_data = read_user_data(
        reader,
        first_octet & USER_DATA_HEADER != 0,
        data_coding_scheme,
        coding_offset,
    )?;
    Ok(Submit {
        smsc,
        message_reference,
        recipient,
        validity_minutes,
        status_report: first_octet & STATUS_REPORT_REQUEST != 0,
        encoding: user_data.encoding,
        concat: user_data.concat,
        text: user_data.text,
        data_coding_scheme,
        oddities: std::mem::take(&mut reader.oddities),
    })
}

/// SMS-STATUS-REPORT (§9.2.2.3): TP-MR, TP-RA, TP-SCTS, TP-DT, TP-ST, then optionally TP-PI and
/// the TP-PID, TP-DCS, TP-UDL/TP-UD it announces (§9.2.3.27). Those optional fields are checked
/// for length and dropped.
fn decode_status_report(
    reader: &mut Reader<'_>,
    smsc: Option<Address>,
    first_octet: u8,
) -> Result<StatusReport, DecodeError> {
    let message_reference = reader.octet(FIELD_MESSAGE_REFERENCE)?;
    let recipient = read_address(reader, FIELD_REPORT_RECIPIENT)?;
    let submitted = read_timestamp(reader, FIELD_TIMESTAMP)?;
    let discharged = read_timestamp(reader, FIELD_DISCHARGE)?;
    let status = reader.octet(FIELD_STATUS)?;
    if !reader.is_empty() {
        let parameters = reader.octet(FIELD_PARAMETERS)?;
        let mut extension = parameters;
        while extension & 0x80 != 0 {
            extension = reader.octet(FIELD_PARAMETERS)?;
        }
        // §9.2.3.27: a TP-PI with reserved bits 6..3 set is not to be acted upon; what
        // follows it is then not read.
        if parameters & 0x78 != 0 {
            reader.rest();
        } else {
            if parameters & 0x01 != 0 {
                reader.octet(FIELD_PROTOCOL)?;
            }
            let coding_offset = reader.position;
            let data_coding_scheme = if parameters & 0x02 != 0 {
                reader.octet(FIELD_CODING)?
            } else {
                DCS_GSM7
            };
            if parameters & 0x04 != 0 {
                read_user_data(
                    reader,
                    first_octet & USER_DATA_HEADER != 0,
                    data_coding_scheme,
                    coding_offset,
                )?;
            } else if !reader.is_empty() {
                let offset = reader.position;
                return Err(DecodeError::TrailingOctets {
                    offset,
                    count: reader.rest().len(),
                });
            }
        }
    }
    Ok(StatusReport {
        smsc,
        message_reference,
        recipient,
        submitted,
        discharged,
        status,
        oddities: std::mem::take(&mut reader.oddities),
    })
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    fn stamp(
        year: u16,
        month: u8,
        day: u8,
        hour: u8,
        minute: u8,
        second: u8,
        zone_quarter_hours: i8,
    ) -> Timestamp {
        Timestamp {
            year,
            month,
            day,
            hour,
            minute,
            second,
            zone_quarter_hours,
        }
    }

    fn deliver(hex: &str) -> Deliver {
        match decode(hex, SmscField::Present) {
            Ok(Pdu::Deliver(deliver)) => deliver,
            other => panic!("expected an SMS-DELIVER from {hex}, got {other:?}"),
        }
    }

    fn submit(hex: &str) -> Submit {
        match decode(hex, SmscField::Present) {
            Ok(Pdu::Submit(submit)) => submit,
            other => panic!("expected an SMS-SUBMIT from {hex}, got {other:?}"),
        }
    }

    fn status_report(hex: &str) -> StatusReport {
        match decode(hex, SmscField::Present) {
            Ok(Pdu::StatusReport(report)) => report,
            other => panic!("expected an SMS-STATUS-REPORT from {hex}, got {other:?}"),
        }
    }

    fn options(wide_reference: bool, concat_reference: u16) -> SubmitOptions {
        SubmitOptions {
            validity_minutes: None,
            status_report: false,
            concat_reference,
            wide_reference,
        }
    }

    fn international(digits: &str) -> Option<Address> {
        Some(Address::international(digits))
    }

    // ---- Third-party vectors ------------------------------------------------------------------
    // Expected values are the sources' own; the header fields were also decoded by hand (noted).

    /// python-gsmmodem test/test_pdu.py, TestSmsPdu.test_decode, first vector.
    /// By hand: SCTS 31 30 80 51 20 61 80 = 13-03-08 15:02:16, zone "08" = 8 quarters.
    #[test]
    fn python_gsmmodem_deliver_gsm7() {
        let message = deliver("06917228195339040B917228214365F700003130805120618005D4F29C2E03");
        assert_eq!(message.smsc, international("2782913593"));
        assert_eq!(message.sender.display(), "+27821234567");
        assert_eq!(message.timestamp, stamp(2013, 3, 8, 15, 2, 16, 8));
        assert_eq!(message.timestamp.to_rfc3339(), "2013-03-08T15:02:16+02:00");
        assert_eq!(message.text, "Test2");
        assert_eq!(message.encoding, Encoding::Gsm7);
        assert_eq!(message.protocol_identifier, 0);
        assert_eq!(message.concat, None);
    }

    /// python-gsmmodem test/test_pdu.py, TestSmsPdu.test_decode, second vector (+08:00).
    #[test]
    fn python_gsmmodem_deliver_gsm7_long() {
        let message = deliver(concat!(
            "07915892000000F0040B915892214365F700007040213252242331493A283D0795C3F33C88FE06C9CB",
            "6132885EC6D341EDF27C1E3E97E7207B3A0C0A5241E377BB1D7693E72E"
        ));
        assert_eq!(message.smsc, international("85290000000"));
        assert_eq!(message.sender, Address::international("85291234567"));
        assert_eq!(message.timestamp.to_rfc3339(), "2007-04-12T23:25:42+08:00");
        assert_eq!(
            message.text,
            "It is easy to read text messages via AT commands."
        );
    }

    /// python-gsmmodem test/test_pdu.py, TestSmsPdu.test_decode, third vector: extension table
    /// characters and é. By hand: UDL 0x0A = 10 septets = @ {{ t é s t }} ! with { } two each.
    #[test]
    fn python_gsmmodem_deliver_extension_characters() {
        let message =
            deliver("06917228195339040B917228214365F70000313062315352800A800D8A5E98D337A910");
        assert_eq!(message.sender.display(), "+27821234567");
        assert_eq!(message.text, "@{tést}!");
    }

    /// ModemManager src/tests/test-sms-part-3gpp.c, test_pdu1: extension characters, £, Greek
    /// capitals, § ¿, and a negative zone. By hand: zone octet 0x0A has bit 3 set (negative)
    /// and digits "20" = 20 quarters = 5 hours.
    #[test]
    fn modem_manager_deliver_negative_zone_and_extension() {
        let message = deliver(concat!(
            "07912104442961F4040B916171957291F800001120821105050A6AC8B2BC7C9A83C220F6DB7D2ECB41",
            "EDF27C1E3E97411BDE06754FD3D1A0F9BB5D0695F1F4B29B5C2683C6E8B03C3CA697E5F34D6AE303D1",
            "D1F2F7DD0D4ABB59A0797D8C0685E7A00028EC26832A960B28EC2683BE6050780EBA97D96C17"
        ));
        assert_eq!(message.smsc, international("12404492164"));
        assert_eq!(message.sender.display(), "+16175927198");
        assert_eq!(message.timestamp.zone_quarter_hours, -20);
        assert_eq!(message.timestamp.to_rfc3339(), "2011-02-28T11:50:50-05:00");
        assert_eq!(
            message.text,
            "Here's a longer message [{with some extended characters}] thrown in, such as £ and ΩΠΨ and §¿ as well."
        );
    }

    /// ModemManager src/tests/test-sms-part-3gpp.c, test_pdu2: alphanumeric sender, UCS-2.
    /// By hand: address length 0x14 = 20 semi-octets = 80 bits = 11 septets, type 0xD0.
    #[test]
    fn modem_manager_deliver_ucs2_alphanumeric_sender() {
        let message = deliver(
            "07919730071111F10414D04937BD2C7797E9D3E614000811309291024061080442043504410442",
        );
        assert_eq!(message.smsc, international("79037011111"));
        assert_eq!(message.sender.kind, AddressKind::Alphanumeric);
        assert_eq!(message.sender.display(), "InternetSMS");
        assert_eq!(message.timestamp.to_rfc3339(), "2011-03-29T19:20:04+04:00");
        assert_eq!(message.encoding, Encoding::Ucs2);
        assert_eq!(message.data_coding_scheme, 0x08);
        assert_eq!(message.text, "тест");
    }

    /// ModemManager src/tests/test-sms-part-3gpp.c, test_pdu_multipart: two parts with an 8-bit
    /// reference. By hand: UDH 05 00 03 4C 02 0n = reference 0x4C, 2 parts, part n.
    #[test]
    fn modem_manager_deliver_multipart() {
        let first = deliver(concat!(
            "07912160130320F5440B916171056429F5000021405291650569A00500034C0201A9E8F41C949E",
            "83C2207B599E07B1DFEE33885E9ED341E4F23C7D7697C920FA1B54C697E5E3F4BC0C6AD7D9F434",
            "081E96D341E3303C2C4EB3D3F4BC0B94A483E6E8779D4D06CDD1EF3BA80E0785E7A0B7BB0C6A97",
            "E7F3F0B9CC02B9DF7450780EA2DFDF2C50780EA2A3CBA0BA9B5C96B3F369F71954768FDFE4B4FB",
            "0C9297E1F2F2BCECA6CF41"
        ));
        let second = deliver(concat!(
            "07912160130320F6440B916171056429F5000021405291651569320500034C0202E9E8301D4447",
            "9741F0B09C3E0785E56590BCCC0ED3CB6410FD0D7ABBCBA0B0FB4D4797E52E10"
        ));
        assert_eq!(first.smsc, international("12063130025"));
        assert_eq!(second.smsc, international("12063130026"));
        assert_eq!(first.sender.display(), "+16175046925");
        assert_eq!(first.timestamp.to_rfc3339(), "2012-04-25T19:56:50-04:00");
        assert_eq!(second.timestamp.to_rfc3339(), "2012-04-25T19:56:51-04:00");
        let concat = |sequence| Concat {
            reference: 0x4C,
            total: 2,
            sequence,
            wide_reference: false,
        };
        assert_eq!(first.concat, Some(concat(1)));
        assert_eq!(second.concat, Some(concat(2)));
        assert_eq!(
            first.text,
            "This is a very long test designed to exercise multi part capability. It should show up as one message, not as two, as the underlying encoding represents "
        );
        assert_eq!(second.text, "that the parts are related to one another. ");
    }

    /// python-gsmmodem test/test_pdu.py, TestSmsPdu.test_decode, concatenation vector (a one-part
    /// "concatenated" message, reference 0xC3). By hand: sender type 0x81 = unknown, "2781188".
    #[test]
    fn python_gsmmodem_deliver_concat_header_unknown_sender() {
        let message = deliver(concat!(
            "0591721891F1400781721881F800003160526104848059050003C30101916536FB1DCABEEB2074D85E",
            "064941B19CAB060319A5C522289C96D3D3ED32286C0FA7D96131BBEC024941B19CAB0603DDD36C36A8",
            "8C87A7E565D0DB0D82C55EB0DB4B068BCD5C20"
        ));
        assert_eq!(message.smsc, international("2781191"));
        assert_eq!(message.sender.kind, AddressKind::Unknown);
        assert_eq!(message.sender.display(), "2781188");
        assert_eq!(
            message.concat,
            Some(Concat {
                reference: 0xC3,
                total: 1,
                sequence: 1,
                wide_reference: false
            })
        );
        assert_eq!(
            message.text,
            "Hello!You have R 19.50 FREE airtime available. R 19.50 will expire on 01/07/2013. "
        );
    }

    /// ModemManager src/tests/test-sms-part-3gpp.c, test_pdu_udhi (KPN welcome message): 16-bit
    /// reference. By hand: UDH 06 08 04 00 10 02 01 = reference 0x0010, 2 parts, part 1; sender
    /// type 0x85 (type of number unknown) "1002".
    #[test]
    fn modem_manager_deliver_sixteen_bit_reference() {
        let message = deliver(concat!(
            "07911356131313F64004850120390011609232239180A006080400100201D7327BFD6EB340E232",
            "1BF46E83EA7790F59D1E97DBE1341B442F83C465763D3DA797E56537C81D0ECB41AB59CC1693C1",
            "6031D96C064241E5656838AF03A96230982A269BCD462917C8FA4E8FCBED709A0D7ABBE9F6B0FB",
            "5C7683D27350984D4FABC9A0B33C4C4FCF5D20EBFB2D079DCB62793DBD06D9C36E50FB2D4E97D9",
            "A0B49B5E96BBCB"
        ));
        assert_eq!(message.smsc, international("31653131316"));
        assert_eq!(message.sender.display(), "1002");
        assert_eq!(message.timestamp.to_rfc3339(), "2011-06-29T23:32:19+02:00");
        assert_eq!(
            message.concat,
            Some(Concat {
                reference: 0x10,
                total: 2,
                sequence: 1,
                wide_reference: true
            })
        );
        assert_eq!(
            message.text,
            "Welkom, bel om uw Voicemail te beluisteren naar +31612001233 (PrePay: *100*1233#). Voicemail ontvangen is altijd gratis. Voor gebruik van mobiel interne"
        );
    }

    /// ModemManager src/tests/test-sms-part-3gpp.c, test_pdu_dcsf1: data coding group 0xF1.
    #[test]
    fn modem_manager_deliver_coding_group_f() {
        let message = deliver(concat!(
            "07913306091093F0040485810000F111604231805180A049B7F90D9A1AA5A01668F8769BD3E4B29B9E",
            "2EB359A03FC85D06A9C3ED707A0EA2CBC3EE79BB4CA7CBCBA05643617DA7C76990FD4D979741EE77DD",
            "5E0ED741ED371D442E83E0E1F9BC0CD281E677D9B84C06C1DF7539E85C9097E520FB9B2E2F83C6EF36",
            "9C5E064D8D52D0BC2E07DDEF77D7DC2C7799E5A0771D040FCB41F402BB0047BFDD6550B80ECAD966"
        ));
        assert_eq!(message.smsc, international("33609001390"));
        assert_eq!(message.sender.display(), "1800");
        assert_eq!(message.data_coding_scheme, 0xF1);
        assert_eq!(message.timestamp.to_rfc3339(), "2011-06-24T13:08:15+02:00");
        assert_eq!(
            message.text,
            "Info SFR - Confidentiel, à ne jamais transmettre -\r\nVoici votre nouveau mot de passe : sw2ced pour gérer votre compte SFR sur www.sfr.fr ou par téléphone au 963"
        );
    }

    /// The well-known "hellohello" SMS-SUBMIT (also in ModemManager test_pdu3 as a DELIVER).
    /// By hand: first octet 0x11 = SUBMIT with relative TP-VP; TP-VP 0xAA = 170 = 4 days.
    #[test]
    fn hellohello_submit_decodes_and_encodes() {
        let hex = "0011000B916407281553F80000AA0AE8329BFD4697D9EC37";
        let message = submit(hex);
        assert_eq!(message.smsc, None);
        assert_eq!(message.message_reference, 0);
        assert_eq!(message.recipient.display(), "+46708251358");
        assert_eq!(message.validity_minutes, Some(4 * 24 * 60));
        assert!(!message.status_report);
        assert_eq!(message.text, "hellohello");
        let options = SubmitOptions {
            validity_minutes: Some(4 * 24 * 60),
            ..options(false, 0)
        };
        let encoded = encode_submit("+46708251358", "hellohello", &options).unwrap();
        assert_eq!(
            encoded,
            vec![SubmitPdu {
                hex: hex.to_string(),
                tpdu_length: 23
            }]
        );
        // The same TPDU without the SMSC field.
        assert_eq!(
            decode(&hex[2..], SmscField::Absent).unwrap(),
            Pdu::Submit(message)
        );
    }

    /// ModemManager src/tests/test-sms-part-3gpp.c, test_pdu3 ("hellohello" as an SMS-DELIVER).
    #[test]
    fn modem_manager_deliver_hellohello() {
        let message =
            deliver("07912143658709F1040B918100551512F20000111010214365000AE8329BFD4697D9EC37");
        assert_eq!(message.smsc, international("12345678901"));
        assert_eq!(message.sender.display(), "+18005551212");
        assert_eq!(message.timestamp.to_rfc3339(), "2011-01-01T12:34:56+00:00");
        assert_eq!(message.text, "hellohello");
    }

    /// python-gsmmodem test/test_pdu.py, TestSmsPdu.test_encodeSmsSubmit, first vector: our
    /// encoder must give exactly these octets.
    #[test]
    fn python_gsmmodem_encode_submit_exact() {
        let encoded = encode_submit("+27820001111", "Hello World!", &options(false, 0)).unwrap();
        assert_eq!(
            encoded,
            vec![SubmitPdu {
                hex: "0001000B917228001011F100000CC8329BFD065DDF72363904".to_string(),
                tpdu_length: 24
            }]
        );
    }

    /// python-gsmmodem test/test_pdu.py, test_encodeSmsSubmit second vector (UCS-2, 52 weeks).
    /// Their PDU names SMSC +44000000000; ours leaves the SMSC field empty, so the TPDUs compare.
    /// By hand: TP-VP 0xF4 = 244 = 52 weeks.
    #[test]
    fn python_gsmmodem_ucs2_submit_with_validity_in_weeks() {
        let theirs = "07914400000000F01100099121436587F90008F40A4E16754C60A8597DFF01";
        let message = submit(theirs);
        assert_eq!(message.smsc, international("44000000000"));
        assert_eq!(message.recipient.display(), "+123456789");
        assert_eq!(message.validity_minutes, Some(52 * 7 * 24 * 60));
        assert_eq!(message.encoding, Encoding::Ucs2);
        assert_eq!(message.text, "世界您好！");
        let options = SubmitOptions {
            validity_minutes: Some(52 * 7 * 24 * 60),
            ..options(false, 0)
        };
        let ours = encode_submit("+123456789", "世界您好！", &options).unwrap();
        assert_eq!(ours.len(), 1);
        assert_eq!(ours[0].hex[2..], theirs[16..]);
    }

    /// python-gsmmodem test/test_pdu.py, TestSmsPdu.test_decode, "www.diafaan.com" SUBMIT.
    /// By hand: first octet 0x31 = relative TP-VP and TP-SRR; TP-MR 0x0D; TP-VP 0xA9 = 3 days.
    #[test]
    fn python_gsmmodem_submit_relative_validity() {
        let message =
            submit("07911326040000F0310D0B911326880736F40000A90FF7FBDD454E87CDE1B0DB357EB701");
        assert_eq!(message.smsc, international("31624000000"));
        assert_eq!(message.recipient.display(), "+31628870634");
        assert_eq!(message.message_reference, 13);
        assert!(message.status_report);
        assert_eq!(message.validity_minutes, Some(3 * 24 * 60));
        assert_eq!(message.text, "www.diafaan.com");
    }

    /// python-gsmmodem test/test_pdu.py, TestSmsPdu.test_decode, absolute validity vector.
    #[test]
    fn python_gsmmodem_submit_absolute_validity() {
        let message = submit(concat!(
            "0019000B917228001011F100003170013193008017D474BB3CA787DB70903DCC4E93D3F43C885E9E",
            "D301"
        ));
        assert_eq!(message.validity_minutes, None);
        assert_eq!(message.text, "Timestamp validity test");
    }

    /// python-gsmmodem test/test_pdu.py, TestSmsPdu.test_decode, 8-bit data vector.
    #[test]
    fn python_gsmmodem_submit_eight_bit_data() {
        let message = submit("0591721891F101000B917228214365F700040C48656C6C6F20776F726C6421");
        assert_eq!(message.smsc, international("2781191"));
        assert_eq!(message.recipient.display(), "+27821234567");
        assert_eq!(
            alphabet(message.data_coding_scheme),
            Some(Alphabet::EightBit)
        );
        assert_eq!(message.text, "Hello world!");
    }

    /// python-gsmmodem test/test_pdu.py, TestSmsPdu.test_decode, "Valid UCS-2 PDU".
    #[test]
    fn python_gsmmodem_submit_ucs2() {
        let message = submit("07914346466554F601000B914316565811F9000806304253F68449");
        assert_eq!(message.smsc, international("34646456456"));
        assert_eq!(message.recipient.display(), "+34616585119");
        assert_eq!(message.text, "あ叶葉");
    }

    /// python-gsmmodem test/test_pdu.py, test_encodeSmsSubmit_concatenated: three parts,
    /// reference 0. Their first octet 0x45 also sets TP-RD (reject duplicates), which we never
    /// send; otherwise our octets must match theirs exactly, fill bit included.
    #[test]
    fn python_gsmmodem_concatenated_submit() {
        let text = "Lorem ipsum dolor sit amet, consectetur adipisicing elit, sed do eiusmod tempor incididunt ut labore et dolore magna aliqua.Ut enim ad minim veniam, quinostrud exercitation ullamco laboris nisi ut aliquip ex ea commodo consequat.Duis aute irure dolor in reprehenderit in voluptate velit esse cillum doloe eu fugiat nulla pariatur.Excepteur sint occaecat cupidatat non proident, sunt in culpa qui officia deserunt mollit anim id est laborum";
        let theirs = [
            concat!(
                "0045000B915121551532F40000A0050003000301986F79B90D4AC3E7F53688FC66BFE5A0799A0E0A",
                "B7CB741668FC76CFCB637A995E9783C2E4343C3D4F8FD3EE33A8CC4ED359A079990C22BF41E5747D",
                "DE7E9341F4721BFE9683D2EE719A9C26D7DD74509D0E6287C56F791954A683C86FF65B5E06B5C367",
                "77181466A7E3F5B0AB4A0795DDE936284C06B5D3EE741B642FBBD3E1360B14AFA7DD"
            ),
            concat!(
                "0045000B915121551532F40000A0050003000302DE73BABC4E0695F165F9384D0FD3D36F37A8CE66",
                "87DBE337881D16BFE5E939C89D9EA741753A28CC4EC7EB6938A88C0795C3A0F1BBDD7E93DFA0F1DB",
                "3D2FC7EB61BA8B584FCF41E13ABD0C4ACBEBF23288FC66BFE5A0B41B242FC3E56574D94D2ECBD374",
                "50DA0DB2BFD975383D4C2F83EC65769A0E2ACFE765D038CD66D7DB20F29BFD2E83CA"
            ),
            concat!(
                "0045000B915121551532F400008C050003000303EA2073FD9C0ED341EE3A9B1D06C1C3F274985E97",
                "BB8AF871194E2FD7E5A079DA4D07BDC7E370791CA683C675789A1CA687E920F7DB0D82CBDF6972D9",
                "4D6781E675371D947683C675363C0C8AD7D3A0B7D99C1EA7C32072795E96D7DD7450FBCD66A7E9A0",
                "B03BDD06A5C9A0F29C0E6287C56F79BD0D"
            ),
        ];
        let decoded: Vec<Submit> = theirs.iter().map(|hex| submit(hex)).collect();
        for (index, part) in decoded.iter().enumerate() {
            assert_eq!(part.recipient.display(), "+15125551234");
            assert_eq!(
                part.concat,
                Some(Concat {
                    reference: 0,
                    total: 3,
                    sequence: index as u8 + 1,
                    wide_reference: false
                })
            );
        }
        let joined: String = decoded.iter().map(|part| part.text.as_str()).collect();
        assert_eq!(joined, text);
        let ours = encode_submit("+15125551234", text, &options(false, 0)).unwrap();
        assert_eq!(ours.len(), 3);
        for (ours, theirs) in ours.iter().zip(theirs) {
            let without_reject_duplicates = format!("0041{}", &theirs[4..]);
            assert_eq!(ours.hex, without_reject_duplicates);
        }
    }

    /// python-gsmmodem test/test_pdu.py, TestSmsPdu.test_decode, SMS-STATUS-REPORT vector.
    /// By hand: TP-MR 0xD6 = 214; SCTS 11 10 11 71 95 51 40 = 11-01-11 17:59:15, zone 4
    /// quarters; TP-DT two seconds later; TP-ST 0 = received.
    #[test]
    fn python_gsmmodem_status_report() {
        let report = status_report("0006D60B911326880736F4111011719551401110117195714000");
        assert_eq!(report.smsc, None);
        assert_eq!(report.message_reference, 214);
        assert_eq!(report.recipient.display(), "+31628870634");
        assert_eq!(report.submitted, stamp(2011, 1, 11, 17, 59, 15, 4));
        assert_eq!(report.discharged, stamp(2011, 1, 11, 17, 59, 17, 4));
        assert_eq!(report.status, 0);
        assert_eq!(report.outcome(), DeliveryOutcome::Delivered);
        assert_eq!(report.describe(), "received by the recipient");
    }

    /// ModemManager src/tests/test-sms-part-3gpp.c, test_pdu_not_stored (a status report).
    /// By hand: TP-MR 0x5A = 90; recipient type 0x81 "639337937"; TP-ST 0x30 = SMSC-specific
    /// temporary error with the SMSC still trying.
    #[test]
    fn modem_manager_status_report() {
        let report =
            status_report("07914356060013F1065A098136397339F7219011700463802190117004638030");
        assert_eq!(report.smsc, international("34656000311"));
        assert_eq!(report.message_reference, 90);
        assert_eq!(report.recipient.kind, AddressKind::Unknown);
        assert_eq!(report.recipient.display(), "639337937");
        assert_eq!(report.submitted.to_rfc3339(), "2012-09-11T07:40:36+02:00");
        assert_eq!(report.status, 0x30);
        assert_eq!(report.outcome(), DeliveryOutcome::Pending);
        assert_eq!(
            report.describe(),
            "SMSC still trying (SMSC-specific status 0x30)"
        );
    }

    /// ModemManager src/tests/test-sms-part-3gpp.c, test_pdu_insufficient_data: TP-UDL 11
    /// septets needs 10 octets, 9 follow. ModemManager refuses it; we decode the 10 septets the
    /// 9 octets hold and name the odd length.
    #[test]
    fn modem_manager_insufficient_data_decodes_what_is_there() {
        let message =
            deliver("07912143658709F1040B918100551512F20000111010214365000BE8329BFD4697D9EC37");
        assert_eq!(message.sender.display(), "+18005551212");
        assert_eq!(message.text, "hellohello");
        assert_eq!(
            message.oddities,
            vec![Oddity::UserDataShort {
                offset: 26,
                length: 11,
                unit: "septets",
                needed: 10,
                available: 9
            }]
        );
        assert_eq!(
            describe_oddities(&message.oddities),
            "the user data length at octet 26 says 11 septets (10 octets) but only 9 follow; what follows was decoded"
        );
    }

    /// python-gsmmodem test/test_pdu.py: "User data length is invalid in this PDU (too long)":
    /// UCS-2, TP-UDL 160 octets, 10 follow (a concatenation header and "はい"). python-gsmmodem
    /// yields the text; so do we, marked.
    #[test]
    fn python_gsmmodem_too_long_user_data_length_decodes() {
        let message = submit("0041010C910661345542F60008A0050003000301306F3044");
        assert_eq!(message.recipient.display(), "+60164355246");
        assert_eq!(message.text, "はい");
        assert_eq!(
            message.concat,
            Some(Concat {
                reference: 0,
                total: 3,
                sequence: 1,
                wide_reference: false
            })
        );
        assert!(
            matches!(
                message.oddities.as_slice(),
                [Oddity::UserDataShort {
                    length: 160,
                    unit: "octets",
                    needed: 160,
                    available: 10,
                    ..
                }]
            ),
            "{:?}",
            message.oddities
        );
    }

    /// Recorded from a network in python-gsmmodem's issue #15 (an Indonesian SMSC, 2016), kept in
    /// its test_modem.py as test_receiveSmsPduMode_zeroLengthSmscAndNonBCDTimeZoneValue: the
    /// service centre time stamp's zone octet is 0xC2, whose units semi-octet is 12. python-gsmmodem
    /// reads it as 2 × 10 + 12 = 32 quarters (+08:00); so do we, and the report is kept.
    #[test]
    fn status_report_with_a_zone_that_is_not_decimal() {
        let report = status_report("0006230E9126983575169498610103409544C26101034095448200");
        assert_eq!(report.smsc, None);
        assert_eq!(report.message_reference, 35);
        assert_eq!(report.recipient.display(), "+62895357614989");
        assert_eq!(report.submitted.to_rfc3339(), "2016-10-30T04:59:44+08:00");
        assert_eq!(report.discharged.to_rfc3339(), "2016-10-30T04:59:44+07:00");
        assert_eq!(report.outcome(), DeliveryOutcome::Delivered);
        assert_eq!(
            report.oddities,
            vec![Oddity::NotDecimal {
                offset: 18,
                field: FIELD_TIMESTAMP,
                octet: 0xC2,
                read_as: 32
            }]
        );
        assert_eq!(
            report.oddities[0].to_string(),
            "the service centre time stamp (TP-SCTS) has 0xC2 at octet 18, not two decimal semi-octets; read as 32"
        );
    }

    /// The same recorded report with odd zones put in by hand, one field at a time, each decoded
    /// and named: the sign bit (bit 3) is kept, the rest read as tens × 10 + units.
    #[test]
    fn status_reports_with_odd_zones_in_either_time_stamp() {
        let recorded = "0006230E9126983575169498610103409544C26101034095448200";
        // (discharge zone octet, its offset's field, zone in the report, read as)
        let cases = [
            ("82", None, "+07:00"),
            ("C2", Some(32), "+08:00"),
            ("AB", Some(40), "-10:00"),
            ("FF", Some(85), "-21:15"),
            ("F0", Some(15), "+03:45"),
            // Bit 3 set, the rest decimal: a well-formed western zone, not odd.
            ("0F", None, "-17:30"),
            ("8F", None, "-19:30"),
        ];
        for (zone, read_as, offset_text) in cases {
            let hex = format!("{}{zone}00", &recorded[..recorded.len() - 4]);
            let report = status_report(&hex);
            assert_eq!(report.message_reference, 35, "{zone}");
            assert_eq!(report.status, 0, "{zone}");
            assert!(
                report.discharged.to_rfc3339().ends_with(offset_text),
                "{zone}: {}",
                report.discharged.to_rfc3339()
            );
            let discharge_oddity = report
                .oddities
                .iter()
                .find(|odd| matches!(odd, Oddity::NotDecimal { offset: 25, .. }));
            match read_as {
                None => assert!(discharge_oddity.is_none(), "{zone}"),
                Some(value) => assert!(
                    matches!(
                        discharge_oddity,
                        Some(Oddity::NotDecimal { field: FIELD_DISCHARGE, read_as, .. }) if *read_as == value
                    ),
                    "{zone}: {:?}",
                    report.oddities
                ),
            }
        }
    }

    /// python-gsmmodem test/test_pdu.py: "Semi-invalid status report PDU captured from a ZTE
    /// modem": the recipient has a 0xB semi-octet ('#'); everything else is well-formed.
    #[test]
    fn python_gsmmodem_zte_status_report() {
        let report = status_report("0297F1061C0F910B487228297020F5317062419272803170624192138000");
        assert_eq!(report.message_reference, 28);
        assert_eq!(report.recipient.display(), "+#08427829207025");
        assert_eq!(report.submitted.to_rfc3339(), "2013-07-26T14:29:27+02:00");
        assert_eq!(report.discharged.to_rfc3339(), "2013-07-26T14:29:31+02:00");
        assert!(report.oddities.is_empty());
    }

    /// emilsedgh/pdu issue #7: a status report from a Russian network that a decoder misread as a
    /// DELIVER. Recipient of unknown type, zone 0x21 = 12 quarters.
    #[test]
    fn emilsedgh_pdu_status_report() {
        let report =
            status_report("07919740430900F302230B819720459403F7510172505535215101725055752100");
        assert_eq!(report.smsc, international("79043490003"));
        assert_eq!(report.message_reference, 35);
        assert_eq!(report.recipient.display(), "79025449307");
        assert_eq!(report.submitted.to_rfc3339(), "2015-10-27T05:55:53+03:00");
        assert_eq!(report.discharged.to_rfc3339(), "2015-10-27T05:55:57+03:00");
        assert_eq!(report.outcome(), DeliveryOutcome::Delivered);
        assert!(report.oddities.is_empty());
    }

    /// A caller's text with an odd zone (python-gsmmodem's "Test2" with its zone octet 0x80
    /// changed by hand to the recorded 0xC2) is kept, not refused; 0x8C (-12:00) is well-formed.
    #[test]
    fn deliver_with_an_odd_zone_keeps_the_text() {
        let message = deliver("06917228195339040B917228214365F70000313080512061C205D4F29C2E03");
        assert_eq!(message.text, "Test2");
        assert_eq!(message.sender.display(), "+27821234567");
        assert_eq!(message.timestamp.to_rfc3339(), "2013-03-08T15:02:16+08:00");
        assert_eq!(
            message.oddities,
            vec![Oddity::NotDecimal {
                offset: 24,
                field: FIELD_TIMESTAMP,
                octet: 0xC2,
                read_as: 32
            }]
        );
        let west = deliver("06917228195339040B917228214365F700003130805120618C05D4F29C2E03");
        assert_eq!(west.timestamp.to_rfc3339(), "2013-03-08T15:02:16-12:00");
        assert!(west.oddities.is_empty());
    }

    /// User data cut short in each alphabet: what follows is decoded, half a UCS-2 character is
    /// left out, and nothing at all is an empty text, never an error.
    #[test]
    fn short_user_data_in_each_alphabet() {
        // UCS-2, TP-UDL 4, three octets: "A" and half a character.
        let message = deliver("0004039121F300081111111111111104004100");
        assert_eq!(message.text, "A");
        assert!(matches!(
            message.oddities.as_slice(),
            [
                Oddity::UserDataShort {
                    length: 4,
                    available: 3,
                    ..
                },
                Oddity::OddUcs2Length {
                    offset: 16,
                    length: 3
                }
            ]
        ));
        // 8-bit data, TP-UDL 5, two octets.
        let message = deliver("0004039121F3000411111111111111054142");
        assert_eq!(message.text, "AB");
        assert_eq!(message.oddities.len(), 1);
        // GSM 7-bit, TP-UDL 5 septets, none follow.
        let message = deliver("0004039121F300001111111111111105");
        assert_eq!(message.text, "");
        assert_eq!(message.oddities.len(), 1);
    }

    // ---- Alphabet -----------------------------------------------------------------------------

    #[test]
    fn data_coding_scheme_groups() {
        // TS 23.038 §4.
        let cases = [
            (0x00, Some(Alphabet::Gsm7)),
            (0x04, Some(Alphabet::EightBit)),
            (0x08, Some(Alphabet::Ucs2)),
            (0x0C, Some(Alphabet::Gsm7)), // reserved character set
            (0x11, Some(Alphabet::Gsm7)), // class 1
            (0x16, Some(Alphabet::EightBit)),
            (0x18, Some(Alphabet::Ucs2)),
            (0x20, None),                 // compressed
            (0x48, Some(Alphabet::Ucs2)), // marked for automatic deletion
            (0x80, Some(Alphabet::Gsm7)), // reserved group
            (0xC8, Some(Alphabet::Gsm7)), // message waiting, discard
            (0xD0, Some(Alphabet::Gsm7)), // message waiting, store
            (0xE0, Some(Alphabet::Ucs2)), // message waiting, store, UCS-2
            (0xF0, Some(Alphabet::Gsm7)),
            (0xF4, Some(Alphabet::EightBit)),
        ];
        for (dcs, expected) in cases {
            assert_eq!(alphabet(dcs), expected, "0x{dcs:02X}");
        }
    }

    #[test]
    fn address_display() {
        assert_eq!(
            Address::international("+447700900123").value,
            "447700900123"
        );
        assert_eq!(
            Address::international("447700900123").display(),
            "+447700900123"
        );
        let national = Address {
            kind: AddressKind::National,
            value: "07700900123".to_string(),
        };
        assert_eq!(national.display(), "07700900123");
    }

    #[test]
    fn packing_round_trips_with_every_fill() {
        let septets: Vec<u8> = (0..=127).collect();
        for fill in 0..7 {
            let mut packed = vec![0xAA];
            pack_septets(&septets, fill, &mut packed);
            let unpacked = unpack_septets(&packed[1..], fill, septets.len());
            assert_eq!(unpacked, septets, "fill {fill}");
        }
    }

    // ---- Round trips ----------------------------------------------------------------------------

    /// Encodes, decodes every part, checks the parts and their headers, and returns the joined
    /// text.
    fn submit_round_trip(recipient: &str, text: &str, options: &SubmitOptions) -> String {
        let pdus = encode_submit(recipient, text, options).unwrap();
        let expected = if options.wide_reference {
            segment_with(text, GSM7_PART_WIDE, UCS2_PART_WIDE)
        } else {
            segment(text)
        };
        assert_eq!(pdus.len(), expected.parts.len());
        let mut joined = String::new();
        for (index, pdu) in pdus.iter().enumerate() {
            assert_eq!(pdu.hex.len(), 2 + 2 * pdu.tpdu_length);
            assert!(pdu.hex.starts_with("00"));
            let message = submit(&pdu.hex);
            assert_eq!(message.recipient.display(), recipient);
            assert_eq!(message.encoding, expected.encoding);
            assert_eq!(message.status_report, options.status_report);
            assert_eq!(message.text, expected.parts[index]);
            match message.concat {
                None => assert_eq!(pdus.len(), 1),
                Some(concat) => {
                    assert_eq!(usize::from(concat.total), pdus.len());
                    assert_eq!(usize::from(concat.sequence), index + 1);
                    assert_eq!(concat.wide_reference, options.wide_reference);
                    let reference = if options.wide_reference {
                        options.concat_reference
                    } else {
                        options.concat_reference & 0xFF
                    };
                    assert_eq!(concat.reference, reference);
                }
            }
            joined.push_str(&message.text);
        }
        joined
    }

    #[test]
    fn gsm7_round_trip_with_every_character() {
        let text: String = crate::codec::gsm7::tests::all_characters()
            .into_iter()
            .collect();
        assert!(gsm7::is_gsm7(&text));
        let joined = submit_round_trip("+447700900123", &text, &options(false, 7));
        assert_eq!(joined, text);
    }

    #[test]
    fn extension_characters_round_trip() {
        let text = "Price: €5 [approx] {x} ~y \\ ^ | \u{0C} end";
        let pdus = encode_submit("+447700900123", text, &options(false, 0)).unwrap();
        assert_eq!(pdus.len(), 1);
        assert_eq!(submit(&pdus[0].hex).text, text);
    }

    #[test]
    fn ucs2_round_trip_with_emoji() {
        let text = "Thanks 😀 — see you at 10 🙂👍🏽";
        let pdus = encode_submit("07700900123", text, &options(false, 0)).unwrap();
        assert_eq!(pdus.len(), 1);
        let message = submit(&pdus[0].hex);
        assert_eq!(message.encoding, Encoding::Ucs2);
        assert_eq!(message.data_coding_scheme, 0x08);
        assert_eq!(message.recipient.kind, AddressKind::Unknown);
        assert_eq!(message.recipient.display(), "07700900123");
        assert_eq!(message.text, text);
    }

    #[test]
    fn multipart_with_eight_and_sixteen_bit_references() {
        let gsm = "Thanks for calling Acme Plumbing. ".repeat(12);
        let ucs = "Merci d’avoir appelé 😀 ".repeat(12);
        for text in [&gsm, &ucs] {
            for (wide, reference) in [(false, 0x1234), (true, 0xBEEF)] {
                let options = SubmitOptions {
                    validity_minutes: Some(24 * 60),
                    status_report: true,
                    concat_reference: reference,
                    wide_reference: wide,
                };
                let joined = submit_round_trip("+447700900123", text, &options);
                assert_eq!(&joined, text);
            }
        }
        // The 16-bit header is one octet longer, so parts hold one unit less.
        let narrow = encode_submit("+447700900123", &"a".repeat(306), &options(false, 1)).unwrap();
        let wide = encode_submit("+447700900123", &"a".repeat(306), &options(true, 1)).unwrap();
        assert_eq!((narrow.len(), wide.len()), (2, 3));
        for pdu in narrow.iter().chain(&wide) {
            assert!(pdu.tpdu_length <= 140 + 16);
        }
    }

    #[test]
    fn deliver_round_trips_for_each_kind_of_sender() {
        let time = stamp(2026, 11, 24, 10, 15, 0, 4);
        let cases = [
            ("+447700900123", AddressKind::International),
            ("07700900123", AddressKind::National),
            ("Acme Ltd", AddressKind::Alphanumeric),
            ("Plumb@Hom€", AddressKind::Alphanumeric),
        ];
        for (sender, kind) in cases {
            let parts = encode_deliver(sender, "Yes please, tomorrow at 9", &time, 3).unwrap();
            assert_eq!(parts.len(), 1);
            let message = deliver(&parts[0]);
            assert_eq!(message.smsc, international("447785016005"));
            assert_eq!(message.sender.kind, kind);
            assert_eq!(message.sender.display(), sender);
            assert_eq!(message.timestamp, time);
            assert_eq!(message.timestamp.to_rfc3339(), "2026-11-24T10:15:00+01:00");
            assert_eq!(message.text, "Yes please, tomorrow at 9");
        }
        // Alphanumeric senders are limited to 11 septets; € takes two.
        assert!(encode_deliver("Plumb@Hom€x", "hi", &time, 0).is_err());
    }

    #[test]
    fn deliver_multipart_round_trip() {
        let text = "Ça va? Ünïcödé forces UCS-2 here, and it is long. ".repeat(4);
        let time = stamp(2025, 1, 2, 3, 4, 5, -14);
        let parts = encode_deliver("+15551234567", &text, &time, 200).unwrap();
        assert_eq!(parts.len(), segment(&text).parts.len());
        assert!(parts.len() > 1);
        let mut joined = String::new();
        for (index, hex) in parts.iter().enumerate() {
            let message = deliver(hex);
            assert_eq!(message.timestamp.to_rfc3339(), "2025-01-02T03:04:05-03:30");
            let concat = message.concat.unwrap();
            assert_eq!(
                (concat.reference, concat.total, concat.sequence),
                (200, parts.len() as u8, index as u8 + 1)
            );
            joined.push_str(&message.text);
        }
        assert_eq!(joined, text);
    }

    #[test]
    fn status_report_round_trip_and_outcomes() {
        let submitted = stamp(2026, 3, 1, 9, 0, 0, 0);
        let discharged = stamp(2026, 3, 1, 9, 0, 7, -20);
        let hex = encode_status_report(77, "+447700900123", &submitted, &discharged, 0x21).unwrap();
        let report = status_report(&hex);
        assert_eq!(report.message_reference, 77);
        assert_eq!(report.recipient.display(), "+447700900123");
        assert_eq!(report.submitted, submitted);
        assert_eq!(report.discharged, discharged);
        assert_eq!(report.outcome(), DeliveryOutcome::Pending);
        assert_eq!(report.describe(), "SMSC still trying: recipient busy");
        let with = |status| StatusReport {
            status,
            ..report.clone()
        };
        assert_eq!(with(0x02).outcome(), DeliveryOutcome::Delivered);
        assert_eq!(with(0x46).outcome(), DeliveryOutcome::Failed);
        assert_eq!(
            with(0x46).describe(),
            "permanent error: validity period expired"
        );
        assert_eq!(with(0x62).outcome(), DeliveryOutcome::Failed);
        assert_eq!(with(0x80).outcome(), DeliveryOutcome::Failed);
        for status in 0..=255 {
            assert!(!with(status).describe().is_empty());
        }
    }

    #[test]
    fn status_report_optional_parameters() {
        let base = "0006D60B911326880736F41110117195514011101171957140";
        // Status then TP-PI 0 (nothing follows).
        assert!(decode(&format!("{base}0000"), SmscField::Present).is_ok());
        // TP-PI announcing TP-PID, TP-DCS and an empty user data.
        assert!(decode(&format!("{base}0007000000"), SmscField::Present).is_ok());
        // TP-PI with reserved bits: what follows is not read.
        assert!(decode(&format!("{base}0078ABCD"), SmscField::Present).is_ok());
        // TP-PI 0 and then a stray octet.
        assert_eq!(
            decode(&format!("{base}0000FF"), SmscField::Present).unwrap_err(),
            DecodeError::TrailingOctets {
                offset: 27,
                count: 1
            }
        );
    }

    // ---- Segmentation -----------------------------------------------------------------------------

    fn part_lengths(text: &str) -> Vec<usize> {
        segment(text)
            .parts
            .iter()
            .map(|part| part.chars().count())
            .collect()
    }

    #[test]
    fn segment_boundaries() {
        assert_eq!(part_lengths(&"a".repeat(160)), vec![160]);
        assert_eq!(part_lengths(&"a".repeat(161)), vec![153, 8]);
        assert_eq!(part_lengths(&"a".repeat(306)), vec![153, 153]);
        assert_eq!(part_lengths(&"a".repeat(307)), vec![153, 153, 1]);
        assert_eq!(part_lengths(&"€".repeat(80)), vec![80]);
        assert_eq!(part_lengths(&"€".repeat(81)), vec![76, 5]);
        assert_eq!(segment(&"Ж".repeat(70)).encoding, Encoding::Ucs2);
        assert_eq!(part_lengths(&"Ж".repeat(70)), vec![70]);
        assert_eq!(part_lengths(&"Ж".repeat(71)), vec![67, 4]);
        assert_eq!(segment("").parts, vec![String::new()]);
        assert_eq!(segment("").encoding, Encoding::Gsm7);
    }

    #[test]
    fn extension_character_at_the_boundary_moves_whole() {
        let text = format!("{}€{}", "a".repeat(152), "b".repeat(10));
        let segmentation = segment(&text);
        assert_eq!(segmentation.encoding, Encoding::Gsm7);
        assert_eq!(segmentation.parts[0], "a".repeat(152));
        assert!(segmentation.parts[1].starts_with('€'));
        let pdus = encode_submit("+447700900123", &text, &options(false, 9)).unwrap();
        assert_eq!(submit(&pdus[1].hex).text, segmentation.parts[1]);
    }

    #[test]
    fn emoji_at_the_boundary_moves_whole() {
        let text = format!("{}😀{}", "Ж".repeat(66), "Ж".repeat(10));
        let segmentation = segment(&text);
        assert_eq!(segmentation.parts[0], "Ж".repeat(66));
        assert!(segmentation.parts[1].starts_with('😀'));
        let joined = submit_round_trip("+447700900123", &text, &options(false, 9));
        assert_eq!(joined, text);
    }

    #[test]
    fn two_thousand_characters() {
        let gsm: String = "0123456789".repeat(200);
        assert_eq!(segment(&gsm).parts.len(), 2000usize.div_ceil(153));
        assert_eq!(
            submit_round_trip("+447700900123", &gsm, &options(false, 5)),
            gsm
        );
        let ucs: String = "Привет, мир".chars().cycle().take(2000).collect();
        assert_eq!(segment(&ucs).parts.len(), 2000usize.div_ceil(67));
        assert_eq!(
            submit_round_trip("+447700900123", &ucs, &options(true, 5)),
            ucs
        );
    }

    #[test]
    fn too_many_parts() {
        assert_eq!(
            encode_submit("+447700900123", &"a".repeat(255 * 153), &options(false, 0))
                .unwrap()
                .len(),
            255
        );
        assert_eq!(
            encode_submit(
                "+447700900123",
                &"a".repeat(255 * 153 + 1),
                &options(false, 0)
            ),
            Err(EncodeError::TooManyParts { parts: 256 })
        );
    }

    // ---- Validity period --------------------------------------------------------------------------

    #[test]
    fn relative_validity_rounds_up() {
        for octet in 0..=255u8 {
            assert_eq!(
                relative_validity_octet(relative_validity_minutes(octet)),
                octet
            );
        }
        for minutes in (0..70_000).step_by(7).chain([635_040, 1_000_000]) {
            let octet = relative_validity_octet(minutes);
            assert!(
                relative_validity_minutes(octet) >= minutes.min(63 * 7 * 24 * 60),
                "{minutes} minutes gave {octet}"
            );
            if octet > 0 {
                assert!(relative_validity_minutes(octet - 1) < minutes, "{minutes}");
            }
        }
        assert_eq!(relative_validity_octet(0), 0);
        assert_eq!(relative_validity_octet(721), 144);
        assert_eq!(relative_validity_octet(u32::MAX), 255);
    }

    #[test]
    fn enhanced_validity_formats() {
        // SMS-SUBMIT with TP-VPF = 01 (enhanced, §9.2.3.12.3): first octet 0x09.
        let with = |validity: &str| {
            submit(&format!(
                "0009000B916407281553F80000{validity}0AE8329BFD4697D9EC37"
            ))
            .validity_minutes
        };
        assert_eq!(with("01AA0000000000"), Some(4 * 24 * 60));
        assert_eq!(with("025A0000000000"), Some(2));
        assert_eq!(with("03100300000000"), Some(90));
        assert_eq!(with("00000000000000"), None);
    }

    // ---- Errors -----------------------------------------------------------------------------------

    #[test]
    fn encode_errors() {
        let plain = options(false, 0);
        assert_eq!(
            encode_submit("", "hi", &plain),
            Err(EncodeError::EmptyAddress { field: "recipient" })
        );
        assert_eq!(
            encode_submit("+", "hi", &plain),
            Err(EncodeError::EmptyAddress { field: "recipient" })
        );
        let error = encode_submit("+44 7700", "hi", &plain).unwrap_err();
        assert_eq!(
            error,
            EncodeError::NonDigitAddress {
                field: "recipient",
                position: 3,
                character: ' '
            }
        );
        assert_eq!(
            error.to_string(),
            "the recipient has ' ' at character 3; only digits, after an optional leading '+', are allowed"
        );
        assert_eq!(
            encode_submit(&"1".repeat(21), "hi", &plain),
            Err(EncodeError::AddressTooLong {
                field: "recipient",
                digits: 21
            })
        );
        let time = stamp(1999, 1, 1, 0, 0, 0, 0);
        assert!(matches!(
            encode_deliver("+447700900123", "hi", &time, 0),
            Err(EncodeError::TimestampOutOfRange { field: "year", .. })
        ));
        let time = stamp(2026, 1, 1, 0, 0, 0, 80);
        assert!(matches!(
            encode_status_report(1, "+447700900123", &time, &time, 0),
            Err(EncodeError::TimestampOutOfRange { .. })
        ));
        assert_eq!(
            encode_deliver("", "hi", &stamp(2026, 1, 1, 0, 0, 0, 0), 0),
            Err(EncodeError::EmptyAddress { field: "sender" })
        );
        assert!(matches!(
            encode_deliver("Café Zoë", "hi", &stamp(2026, 1, 1, 0, 0, 0, 0), 0),
            Err(EncodeError::AlphanumericNotGsm7 {
                character: 'ë', ..
            })
        ));
    }

    #[test]
    fn decode_errors_name_the_place() {
        let deliver_hex =
            "07912143658709F1040B918100551512F20000111010214365000AE8329BFD4697D9EC37";
        // Cut inside the sender address: its 6 digit octets start at octet 11.
        let error = decode(&deliver_hex[..28], SmscField::Present).unwrap_err();
        assert_eq!(
            error.to_string(),
            "PDU ends at octet 14 inside the sender address (TP-OA) (needs 3 more octets)"
        );
        let error = decode(&deliver_hex[..44], SmscField::Present).unwrap_err();
        assert_eq!(
            error,
            DecodeError::Truncated {
                offset: 22,
                field: FIELD_TIMESTAMP,
                needed: 4
            }
        );
        assert_eq!(decode("  ", SmscField::Present), Err(DecodeError::Empty));
        assert_eq!(
            decode("00x1", SmscField::Present),
            Err(DecodeError::NotHex {
                position: 2,
                character: 'x'
            })
        );
        assert_eq!(
            decode("001", SmscField::Present),
            Err(DecodeError::OddHexLength { digits: 3 })
        );
        assert_eq!(
            decode("0003", SmscField::Present),
            Err(DecodeError::ReservedMessageType {
                offset: 1,
                first_octet: 3
            })
        );
        assert_eq!(
            decode(&format!("{deliver_hex}00"), SmscField::Present),
            Err(DecodeError::TrailingOctets {
                offset: 36,
                count: 1
            })
        );
        // Lower case and surrounding white space are fine.
        assert!(
            decode(
                &format!(" {}\r\n", deliver_hex.to_lowercase()),
                SmscField::Present
            )
            .is_ok()
        );
        // A time stamp digit 0xA.
        // A time stamp digit 0xA: read as 10 × 10 + 1, named, and the text kept.
        let bad_time = deliver_hex.replace("111010214365", "1A1010214365");
        let message = deliver(&bad_time);
        assert_eq!(message.timestamp.year, 2101);
        assert_eq!(
            message.oddities,
            vec![Oddity::NotDecimal {
                offset: 19,
                field: FIELD_TIMESTAMP,
                octet: 0x1A,
                read_as: 101
            }]
        );
        // Compressed text (TP-DCS 0x20).
        let compressed = deliver_hex.replace("F20000", "F20020");
        assert_eq!(
            decode(&compressed, SmscField::Present),
            Err(DecodeError::Compressed {
                offset: 18,
                dcs: 0x20
            })
        );
    }

    #[test]
    fn user_data_errors() {
        // SMS-DELIVER, UCS-2, with an odd octet count: the whole characters are kept.
        let odd = deliver("0004039121F300081111111111111103004100");
        assert_eq!(odd.text, "A");
        assert_eq!(
            odd.oddities,
            vec![Oddity::OddUcs2Length {
                offset: 16,
                length: 3
            }]
        );
        // UDHI set, header length 9 but TP-UDL of 4 octets (8-bit data).
        let header = "0044039121F30004111111111111110409000000";
        assert_eq!(
            decode(header, SmscField::Present),
            Err(DecodeError::HeaderTooLong {
                offset: 16,
                header: 10,
                available: 4
            })
        );
        // An element claiming 5 octets in a 3-octet header.
        let overrun = "0044039121F300041111111111111104030505FF";
        assert_eq!(
            decode(overrun, SmscField::Present),
            Err(DecodeError::ElementOverrun {
                offset: 17,
                iei: 0x05,
                needed: 7,
                remaining: 3
            })
        );
        // A concatenation element of the wrong length.
        let concat = "0044039121F3000411111111111111050400020102";
        assert_eq!(
            decode(concat, SmscField::Present),
            Err(DecodeError::ConcatLength {
                offset: 17,
                iei: 0x00,
                length: 2,
                expected: 3
            })
        );
        // Other elements are skipped; a concat element with sequence 0 is ignored.
        let skipped = "0044039121F30004111111111111110B0824010000030701004142";
        let message = deliver(skipped);
        assert_eq!(message.concat, None);
        assert_eq!(message.text, "AB");
    }

    // ---- Property tests ---------------------------------------------------------------------------

    fn gsm7_text() -> impl Strategy<Value = String> {
        proptest::collection::vec(
            proptest::sample::select(crate::codec::gsm7::tests::all_characters()),
            0..500,
        )
        .prop_map(String::from_iter)
    }

    fn any_text() -> impl Strategy<Value = String> {
        proptest::collection::vec(any::<char>(), 0..400).prop_map(String::from_iter)
    }

    fn any_timestamp() -> impl Strategy<Value = Timestamp> {
        (
            2000u16..=2099,
            1u8..=12,
            1u8..=31,
            0u8..=23,
            0u8..=59,
            0u8..=59,
            -79i8..=79,
        )
            .prop_map(|(year, month, day, hour, minute, second, zone)| {
                stamp(year, month, day, hour, minute, second, zone)
            })
    }

    fn any_sender() -> impl Strategy<Value = String> {
        prop_oneof![
            "\\+[1-9][0-9]{0,19}",
            "[0-9]{1,20}",
            "[A-Za-z][A-Za-z0-9 .]{0,10}",
        ]
    }

    proptest! {
        #[test]
        fn decode_never_panics_on_hex(hex in "[0-9A-Fa-f ]{0,400}") {
            let _ = decode(&hex, SmscField::Present);
            let _ = decode(&hex, SmscField::Absent);
        }

        #[test]
        fn decode_never_panics_on_octets(octets in proptest::collection::vec(any::<u8>(), 0..300)) {
            let mut hex = String::new();
            to_hex(&octets, &mut hex);
            let _ = decode(&hex, SmscField::Present);
            let _ = decode(&hex, SmscField::Absent);
        }

        #[test]
        fn decode_never_panics_on_damaged_pdus(
            index in 0usize..200,
            value in any::<u8>(),
            cut in 0usize..200,
        ) {
            let sources = [
                "07912160130320F6440B916171056429F5000021405291651569320500034C0202E9E8301D44479741F0B09C3E0785E56590BCCC0ED3CB6410FD0D7ABBCBA0B0FB4D4797E52E10",
                "07919730071111F10414D04937BD2C7797E9D3E614000811309291024061080442043504410442",
                "07914356060013F1065A098136397339F7219011700463802190117004638030",
                "0011000B916407281553F80000AA0AE8329BFD4697D9EC37",
            ];
            for source in sources {
                let mut octets = hex_to_octets(source).unwrap();
                let length = octets.len();
                octets[index % length] = value;
                octets.truncate(length - cut % length);
                let mut hex = String::new();
                to_hex(&octets, &mut hex);
                let _ = decode(&hex, SmscField::Present);
            }
        }

        /// Any octet in any of the 14 time stamp positions of a status report: the report still
        /// decodes with its reference, recipient and status, and an odd octet is named.
        #[test]
        fn status_report_survives_any_time_stamp_octet(position in 0usize..14, octet in any::<u8>()) {
            let recorded = "0006D60B911326880736F4111011719551401110117195714000";
            let mut octets = hex_to_octets(recorded).unwrap();
            // The time stamps start at octet 11 (after SMSC, first octet, TP-MR and TP-RA).
            octets[11 + position] = octet;
            let mut hex = String::new();
            to_hex(&octets, &mut hex);
            let report = status_report(&hex);
            prop_assert_eq!(report.message_reference, 214);
            prop_assert_eq!(report.recipient.display(), "+31628870634");
            prop_assert_eq!(report.status, 0);
            let zone = position % 7 == 6;
            let magnitude = if zone { octet & 0xF7 } else { octet };
            let decimal = (magnitude & 0x0F) <= 9 && (magnitude >> 4) <= 9;
            prop_assert_eq!(report.oddities.is_empty(), decimal);
        }

        /// Any user data length over a real message: the text decoded is never longer than the
        /// message's, and a length past the data is named.
        #[test]
        fn any_user_data_length_decodes(length in any::<u8>()) {
            let recorded = "07912143658709F1040B918100551512F20000111010214365000AE8329BFD4697D9EC37";
            let mut octets = hex_to_octets(recorded).unwrap();
            octets[26] = length;
            let mut hex = String::new();
            to_hex(&octets, &mut hex);
            match decode(&hex, SmscField::Present) {
                Ok(Pdu::Deliver(message)) => {
                    prop_assert!(message.text.chars().count() <= 10);
                    prop_assert_eq!(!message.oddities.is_empty(), length > 10);
                }
                Ok(other) => prop_assert!(false, "{:?}", other),
                // Fewer septets than the 9 octets hold: trailing octets.
                Err(err) => prop_assert!(matches!(err, DecodeError::TrailingOctets { .. }) && length < 10, "{}", err),
            }
        }

        #[test]
        fn submit_round_trip_gsm7(
            text in gsm7_text(),
            wide in any::<bool>(),
            reference in any::<u16>(),
        ) {
            prop_assert_eq!(segment(&text).encoding, Encoding::Gsm7);
            let joined = submit_round_trip("+447700900123", &text, &options(wide, reference));
            prop_assert_eq!(joined, text);
        }

        #[test]
        fn submit_round_trip_unicode(
            text in any_text(),
            wide in any::<bool>(),
            reference in any::<u16>(),
        ) {
            let joined = submit_round_trip("07700900123", &text, &options(wide, reference));
            prop_assert_eq!(joined, text);
        }

        #[test]
        fn deliver_round_trip(
            sender in any_sender(),
            text in prop_oneof![gsm7_text(), any_text()],
            time in any_timestamp(),
            reference in any::<u8>(),
        ) {
            let parts = encode_deliver(&sender, &text, &time, reference).unwrap();
            let expected = segment(&text);
            prop_assert_eq!(parts.len(), expected.parts.len());
            for (index, hex) in parts.iter().enumerate() {
                let message = deliver(hex);
                prop_assert_eq!(message.sender.display(), sender.clone());
                prop_assert_eq!(message.timestamp, time);
                prop_assert_eq!(&message.text, &expected.parts[index]);
                prop_assert_eq!(
                    message.concat.map(|concat| (concat.reference, concat.sequence)),
                    (parts.len() > 1).then_some((u16::from(reference), index as u8 + 1))
                );
            }
        }
    }
}
