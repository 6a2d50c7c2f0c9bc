//! USSD requests and replies as a modem writes them: the `+CUSD: <m>[,"<str>"[,<dcs>]]` line
//! (3GPP TS 27.007 §7.15) and its string, decoded per its data coding scheme (the cell broadcast
//! scheme, TS 23.038 §5): GSM 7-bit (packed into octets and written as hex by Huawei sticks, as
//! plain text by most others), UCS-2 as hex (DCS 72, 0x48), or 8-bit. Pure: no I/O.

use super::gsm7;
use super::pdu::{pack_septets, unpack_septets};

/// How a modem writes GSM 7-bit USSD strings, both the code it is asked for and the reply.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Gsm7Form {
    /// As text in the modem's character set: `"*#10#"`, `"Your balance is 4.50"` (most modems).
    Text,
    /// Packed septets written as hex: `"AA180C3602"` for `*100#` (Huawei sticks, whose default
    /// `^USSDMODE` is 1; ModemManager's Huawei plugin encodes the same way).
    Packed,
}

/// One `+CUSD:` line, its fields as they came.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct UssdLine {
    /// <m>: 0 no further action, 1 further action required (a menu), 2 ended by the network,
    /// 3 answered by another local client, 4 not supported, 5 the network timed out.
    pub status: u8,
    /// <str> as written, still encoded.
    pub data: Option<String>,
    /// <dcs>, the cell broadcast data coding scheme (TS 23.038 §5); 15 when absent.
    pub dcs: Option<u8>,
}

/// Why a USSD string could not be decoded or encoded.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum UssdError {
    #[error("the USSD reply {data:?} is not hex, as its coding (DCS {dcs}) needs")]
    NotHex { data: String, dcs: u8 },
    #[error("the USSD reply's coding (DCS {dcs}) is not one textback reads")]
    UnknownCoding { dcs: u8 },
    #[error("the USSD code {code:?} has a character GSM 7-bit lacks ({character:?})")]
    NotGsm7 { code: String, character: char },
}

/// The alphabet a cell broadcast data coding scheme names (TS 23.038 §5).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Coding {
    Gsm7,
    /// GSM 7-bit whose first three characters say the language (DCS 0x10).
    Gsm7WithLanguage,
    EightBit,
    Ucs2,
    /// UCS-2 whose first two octets (GSM 7-bit packed) say the language (DCS 0x11).
    Ucs2WithLanguage,
}

fn coding(dcs: u8) -> Option<Coding> {
    match dcs {
        // 0000xxxx, 0010xxxx, 0011xxxx: a language, GSM 7-bit.
        0x00..=0x0F | 0x20..=0x3F => Some(Coding::Gsm7),
        0x10 => Some(Coding::Gsm7WithLanguage),
        0x11 => Some(Coding::Ucs2WithLanguage),
        // 01xxxxxx: general data coding, bits 3-2 the alphabet.
        0x40..=0x7F => match (dcs >> 2) & 0x03 {
            0 => Some(Coding::Gsm7),
            1 => Some(Coding::EightBit),
            2 => Some(Coding::Ucs2),
            _ => None,
        },
        // 1111xxxx: bit 2 the alphabet.
        0xF0..=0xFF => Some(if dcs & 0x04 == 0 {
            Coding::Gsm7
        } else {
            Coding::EightBit
        }),
        _ => None,
    }
}

/// Reads a `+CUSD:` line. `None` when it is not one or its fields make no sense (garbage).
pub fn parse_line(line: &str) -> Option<UssdLine> {
    let args = line.trim().strip_prefix("+CUSD:")?;
    let fields = super::fields::split_fields(args);
    let status: u8 = fields.first()?.parse().ok()?;
    if status > 5 {
        return None;
    }
    let data = fields.get(1).filter(|d| !d.is_empty()).cloned();
    let dcs = match fields.get(2) {
        None => None,
        Some(field) if field.is_empty() => None,
        Some(field) => Some(field.parse().ok()?),
    };
    if fields.len() > 3 {
        return None;
    }
    Some(UssdLine { status, data, dcs })
}

fn from_hex(data: &str, dcs: u8) -> Result<Vec<u8>, UssdError> {
    let not_hex = || UssdError::NotHex {
        data: data.to_string(),
        dcs,
    };
    if !data.len().is_multiple_of(2) || !data.bytes().all(|b| b.is_ascii_hexdigit()) {
        return Err(not_hex());
    }
    (0..data.len() / 2)
        .map(|i| {
            data.get(i * 2..i * 2 + 2)
                .and_then(|pair| u8::from_str_radix(pair, 16).ok())
                .ok_or_else(not_hex)
        })
        .collect()
}

/// GSM 7-bit septets packed in `octets`. Seven spare bits at the end would read as '@': TS
/// 23.038 §6.1.2.3.1 fills them with a carriage return, which is dropped (so is an '@' there).
fn unpack(octets: &[u8]) -> String {
    let count = octets.len() * 8 / 7;
    let mut septets = unpack_septets(octets, 0, count);
    if octets.len().is_multiple_of(7) && matches!(septets.last(), Some(0x0D | 0x00)) {
        septets.pop();
    }
    gsm7::septets_to_text(&septets)
}

fn ucs2(octets: &[u8]) -> String {
    let units: Vec<u16> = octets
        .chunks(2)
        .map(|pair| match pair {
            [high, low] => u16::from_be_bytes([*high, *low]),
            // An odd octet left over: dropped (a cut-off reply keeps its whole characters).
            _ => 0,
        })
        .filter(|&unit| unit != 0)
        .collect();
    String::from_utf16_lossy(&units)
}

/// Whether a string given as text looks like UCS-2 hex after all (a modem with AT+CSCS="UCS2"
/// writes every string so, whatever the DCS says): hex, whole characters, at least two, each
/// one printable.
fn looks_like_ucs2_hex(data: &str) -> bool {
    data.len() >= 8
        && data.len().is_multiple_of(4)
        && data.bytes().all(|b| b.is_ascii_hexdigit())
        && from_hex(data, 0).is_ok_and(|octets| {
            let text = ucs2(&octets);
            !text.is_empty()
                && text
                    .chars()
                    .all(|c| !c.is_control() || c == '\n' || c == '\r')
        })
}

/// Decodes a reply's string per its DCS (15, GSM 7-bit, when absent) and how the modem writes
/// GSM 7-bit strings.
pub fn decode(data: &str, dcs: Option<u8>, form: Gsm7Form) -> Result<String, UssdError> {
    let dcs = dcs.unwrap_or(15);
    let coding = coding(dcs).ok_or(UssdError::UnknownCoding { dcs })?;
    let text = match coding {
        Coding::Gsm7 | Coding::Gsm7WithLanguage => match form {
            // A modem that packs may still have been switched to text (AT^USSDMODE=0): a
            // string that is not hex is taken as it is.
            Gsm7Form::Packed if data.bytes().all(|b| b.is_ascii_hexdigit()) => {
                unpack(&from_hex(data, dcs)?)
            }
            Gsm7Form::Packed | Gsm7Form::Text => {
                if looks_like_ucs2_hex(data) {
                    ucs2(&from_hex(data, dcs)?)
                } else {
                    data.to_string()
                }
            }
        },
        Coding::EightBit => {
            let octets = from_hex(data, dcs)?;
            octets.iter().map(|&b| char::from(b)).collect()
        }
        Coding::Ucs2 => ucs2(&from_hex(data, dcs)?),
        Coding::Ucs2WithLanguage => {
            let octets = from_hex(data, dcs)?;
            ucs2(octets.get(2..).unwrap_or_default())
        }
    };
    let text = match coding {
        // The language comes first: two letters and a carriage return (TS 23.038 §5).
        Coding::Gsm7WithLanguage => text.get(3..).unwrap_or_default().to_string(),
        _ => text,
    };
    Ok(text.trim().to_string())
}

/// The `<str>` of `AT+CUSD=1,"<str>",15` for a code such as `*#10#`.
pub fn encode_request(code: &str, form: Gsm7Form) -> Result<String, UssdError> {
    match form {
        Gsm7Form::Text => {
            if let Some(character) = code.chars().find(|c| !c.is_ascii_graphic() || *c == '"') {
                return Err(UssdError::NotGsm7 {
                    code: code.to_string(),
                    character,
                });
            }
            Ok(code.to_string())
        }
        Gsm7Form::Packed => {
            let septets = gsm7::text_to_septets(code).map_err(|character| UssdError::NotGsm7 {
                code: code.to_string(),
                character,
            })?;
            let mut septets = septets;
            // Seven spare bits would read as '@': a carriage return fills them (§6.1.2.3.1).
            if septets.len() % 8 == 7 {
                septets.push(0x0D);
            }
            let mut octets = Vec::new();
            pack_septets(&septets, 0, &mut octets);
            Ok(octets.iter().map(|b| format!("{b:02X}")).collect())
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn huawei_packs_the_code_as_modem_manager_does() {
        // ModemManager's Huawei plugin test: "*100#" → "AA180C3602".
        assert_eq!(
            encode_request("*100#", Gsm7Form::Packed).unwrap(),
            "AA180C3602"
        );
        assert_eq!(
            encode_request("*#10#", Gsm7Form::Text).unwrap(),
            "*#10#".to_string()
        );
        assert!(encode_request("*1\"0#", Gsm7Form::Text).is_err());
        assert!(encode_request("*10€#", Gsm7Form::Text).is_err());
    }

    #[test]
    fn packed_replies_unpack() {
        let packed = encode_request("Your balance is £4.50", Gsm7Form::Packed).unwrap();
        assert_eq!(
            decode(&packed, Some(15), Gsm7Form::Packed).unwrap(),
            "Your balance is £4.50"
        );
        // Exactly 7 septets: the spare bits are filled with CR, not read as '@'.
        let seven = encode_request("Bal: 1p", Gsm7Form::Packed).unwrap();
        assert_eq!(seven.len(), 14);
        assert_eq!(
            decode(&seven, Some(15), Gsm7Form::Packed).unwrap(),
            "Bal: 1p"
        );
        // A Huawei switched to text mode: not hex, taken as it is.
        assert_eq!(
            decode("Bal: £0.32", Some(15), Gsm7Form::Packed).unwrap(),
            "Bal: £0.32"
        );
    }

    #[test]
    fn ucs2_replies_decode() {
        // "£4.50 left" in UCS-2: DCS 72 (0x48).
        let hex = "00A3".to_string() + "0034002E003500300020006C006500660074";
        assert_eq!(
            decode(&hex, Some(72), Gsm7Form::Text).unwrap(),
            "£4.50 left"
        );
        // A modem in AT+CSCS="UCS2" writes it so whatever the DCS says.
        assert_eq!(
            decode(&hex, Some(15), Gsm7Form::Text).unwrap(),
            "£4.50 left"
        );
        assert!(matches!(
            decode("00A3ZZ", Some(72), Gsm7Form::Text),
            Err(UssdError::NotHex { .. })
        ));
        // With a language: two octets, then the text.
        assert_eq!(
            decode(&format!("656E{hex}"), Some(0x11), Gsm7Form::Text).unwrap(),
            "£4.50 left"
        );
    }

    #[test]
    fn plain_text_stays_as_it_is() {
        assert_eq!(
            decode("You have 350p credit", Some(15), Gsm7Form::Text).unwrap(),
            "You have 350p credit"
        );
        // A short number-like reply is not taken for hex.
        assert_eq!(decode("1234", None, Gsm7Form::Text).unwrap(), "1234");
        assert_eq!(
            decode("en\rBalance 2.00", Some(0x10), Gsm7Form::Text).unwrap(),
            "Balance 2.00"
        );
        assert!(matches!(
            decode("x", Some(0x80), Gsm7Form::Text),
            Err(UssdError::UnknownCoding { dcs: 0x80 })
        ));
    }

    #[test]
    fn lines_parse_and_garbage_does_not() {
        assert_eq!(
            parse_line("+CUSD: 0,\"Your balance is £4.50, thanks\",15"),
            Some(UssdLine {
                status: 0,
                data: Some("Your balance is £4.50, thanks".to_string()),
                dcs: Some(15)
            })
        );
        assert_eq!(
            parse_line("+CUSD: 4"),
            Some(UssdLine {
                status: 4,
                data: None,
                dcs: None
            })
        );
        for garbage in [
            "+CUSD:",
            "+CUSD: x,\"a\",15",
            "+CUSD: 9,\"a\",15",
            "+CUSD: 0,\"a\",fifteen",
            "+CUSD: 0,\"a\",15,7",
            "+CUSD: 0,\"a\",999",
            "CUSD 0",
        ] {
            assert_eq!(parse_line(garbage), None, "{garbage}");
        }
    }

    proptest::proptest! {
        #[test]
        fn decoding_never_panics(data in "\\PC*", dcs in proptest::option::of(0u8..=255)) {
            let _ = decode(&data, dcs, Gsm7Form::Packed);
            let _ = decode(&data, dcs, Gsm7Form::Text);
            let _ = parse_line(&data);
        }

        #[test]
        fn packed_text_round_trips(text in "[A-Za-z0-9 .:£,]{0,120}") {
            let packed = encode_request(&text, Gsm7Form::Packed).unwrap();
            proptest::prop_assert_eq!(decode(&packed, Some(15), Gsm7Form::Packed).unwrap(), text.trim());
        }
    }
}
