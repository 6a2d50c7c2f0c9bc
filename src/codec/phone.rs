//! UK phone numbering: parses a caller id in any of the forms people and networks write into E.164,
//! and says what kind of number it is, so the daemon can decide whether to text it back.
//!
//! The UK ranges come from Ofcom's National Telephone Numbering Plan (the table of number
//! designations): 01 and 02 geographic, 03 non-geographic at geographic rates, 05 corporate and
//! VoIP, 070 personal numbering, 071 to 075 and 077 to 079 mobile, 076 radiopaging (except 07624,
//! Isle of Man mobile), 08 special services, 09 premium rate. The test numbers are Ofcom's ranges
//! reserved for use in TV and radio drama, which are never given to real subscribers.

use std::fmt;
use std::str::FromStr;

use thiserror::Error;

/// "one too few", "2 too many": how a count of national digits differs from the 10 wanted.
fn how_far_from_ten(digits: usize) -> String {
    match digits {
        9 => "one too few".to_string(),
        11 => "one too many".to_string(),
        d if d < 10 => format!("{} too few", 10 - d),
        d => format!("{} too many", d - 10),
    }
}

/// Longest input kept in an error message; caller ids come from the network and may be anything.
const MAX_SHOWN: usize = 40;

/// Why some text is not a phone number. Each message names the input, says what is wrong and shows
/// what a right number looks like.
#[derive(Debug, Clone, PartialEq, Eq, Error)]
pub enum PhoneError {
    #[error("the phone number is empty; write a number such as 07700 900123 or +44 7700 900123")]
    Empty,
    #[error("{input:?} has no digits; write a number such as 07700 900123 or +44 7700 900123")]
    NoDigits { input: String },
    #[error(
        "{input:?} contains the letter {letter:?}; a phone number has only digits, spaces, \
         dashes, dots, brackets and a leading + (e.g. +44 7700 900123)"
    )]
    Letter { input: String, letter: char },
    #[error(
        "{input:?} contains {character:?}; a phone number has only digits, spaces, dashes, dots, \
         brackets and a leading + (e.g. +44 7700 900123)"
    )]
    UnexpectedCharacter { input: String, character: char },
    #[error(
        "{input:?} has a '+' after the start; '+' may only come first, before the country code \
         (e.g. +44 7700 900123)"
    )]
    PlusNotAtStart { input: String },
    #[error(
        "{input:?} has {digits} digits after the leading 0, {}; a UK number has 10 after the 0 \
         (e.g. 07700 900123)",
        how_far_from_ten(*digits)
    )]
    UkNationalLength {
        input: String,
        /// Digits after the trunk 0: the ones that count.
        digits: usize,
    },
    #[error(
        "{input:?} has {digits} digits after +44; a UK number has 10 digits after +44 \
         (e.g. +44 7700 900123)"
    )]
    UkInternationalLength { input: String, digits: usize },
    #[error(
        "{input:?} has a 0 after +44 and then {digits} digits; after +44 a UK number drops its \
         leading 0 and has 10 digits (e.g. +44 7700 900123)"
    )]
    UkTrunkZero { input: String, digits: usize },
    #[error(
        "{input:?} starts with neither 0 nor a country code; write a UK number with its leading \
         0 (e.g. 07700 900123) or any number with + and its country code (e.g. +44 7700 900123)"
    )]
    NoTrunkPrefix { input: String },
    #[error(
        "{input:?} has a country code starting with 0; country codes start with 1 to 9 \
         (e.g. +44 7700 900123, +1 212 555 0100)"
    )]
    CountryCodeZero { input: String },
    #[error(
        "{input:?} has {digits} digits after the +; an international number has 8 to 15 digits \
         including the country code (e.g. +1 212 555 0100)"
    )]
    InternationalTooShort { input: String, digits: usize },
    #[error(
        "{input:?} has {digits} digits after the +; E.164 allows at most 15 digits including the \
         country code (e.g. +353 87 123 4567)"
    )]
    InternationalTooLong { input: String, digits: usize },
    #[error(
        "{input:?} is a local number in the context {context:?}, whose trunk prefix is unknown; \
         only local numbers in +44 can be read, so write it with + and its country code \
         (e.g. tel:+12125550100)"
    )]
    ForeignPhoneContext { input: String, context: String },
}

/// A phone number in E.164 form: '+' then 8..=15 digits, country code first. Checked when built;
/// field private.
///
/// Besides the length, the check guarantees that the country code does not start with 0 and that
/// a +44 number has exactly 10 digits after the +44, the first of them not 0.
#[derive(Debug, Clone, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct E164(String);

impl E164 {
    /// Parses what people and networks write, assuming the UK when there is no country code:
    /// "+44 7700 900123", "07700 900123", "07700-900-123", "(020) 7946 0018", "447700900123" (a
    /// bare 44 followed by 10 digits that make a valid UK number), "0044 7700 900123",
    /// "+44 (0)7700 900123" (the "(0)" trunk prefix is dropped), "tel:+447700900123",
    /// "tel:07700900123;phone-context=+44", "00 1 212 555 0100" and "+1 212 555 0100"
    /// (international, kept as given), "+353 87 123 4567".
    ///
    /// Also read: "sip:+447700900123@host;user=phone" (the user part of a SIP URI), a tel: local
    /// number with a global context such as "tel:79460018;phone-context=+4420", and a stray trunk
    /// 0 after +44 ("+44 07700 900123"), which is dropped. Spaces, dashes, dots and brackets are
    /// separators.
    ///
    /// Rejects: empty, letters, too few or too many digits (UK: exactly 10 digits after the trunk
    /// 0; the few 9-digit legacy ranges are not read), a national number not starting with 0,
    /// '+' not at the start, E.164 longer than 15 digits.
    pub fn parse(input: &str) -> Result<E164, PhoneError> {
        let written = scan(input)?;
        build(written, input)
    }

    /// The E.164 form: "+447700900123".
    pub fn as_str(&self) -> &str {
        &self.0
    }

    /// Digits without the '+', as an SMS PDU address wants: "447700900123".
    pub fn digits(&self) -> &str {
        self.0.strip_prefix('+').unwrap_or(&self.0)
    }

    /// The country code, from the ITU-T E.164 assignments: "44", "1", "353".
    pub fn country_code(&self) -> &str {
        let digits = self.digits();
        digits.get(..country_code_length(digits)).unwrap_or(digits)
    }

    /// For logs: keep the country code and the last 3 digits, mask the rest: "+44*******123".
    pub fn redacted(&self) -> String {
        let digits = self.digits();
        let country = self.country_code();
        let masked = digits.len().saturating_sub(country.len() + 3);
        let last = digits.get(country.len() + masked..).unwrap_or("");
        format!("+{country}{}{last}", "*".repeat(masked))
    }

    /// UK national format for people: "07700 900123", "020 7946 0018", "0113 496 0000",
    /// "0800 123 4567"; for foreign numbers the E.164 string.
    ///
    /// Groups: 02 is 3-4-4; 011x, 01x1, 03, 08 and 09 are 4-3-4; the rest of 01, and 05 and 07,
    /// are 5-6; the unused 04 and 06 are 4-3-4.
    pub fn national(&self) -> String {
        let Some(significant) = self.uk_significant() else {
            return self.0.clone();
        };
        let national = format!("0{significant}");
        let groups: &[usize] = match significant.as_bytes() {
            [b'2', ..] => &[3, 4, 4],
            [b'1', b'1', ..] | [b'1', _, b'1', ..] => &[4, 3, 4],
            [b'1' | b'5' | b'7', ..] => &[5, 6],
            _ => &[4, 3, 4],
        };
        group(&national, groups)
    }

    /// What kind of number this is.
    pub fn kind(&self) -> NumberKind {
        match self.uk_significant() {
            Some(significant) => uk_kind(significant),
            None => NumberKind::International,
        }
    }

    /// True for a +44 number (including the Crown Dependencies, which share +44).
    pub fn is_uk(&self) -> bool {
        self.uk_significant().is_some()
    }

    /// True only for a UK mobile, which may get texts by default: the same as
    /// `kind() == NumberKind::UkMobile`.
    pub fn is_textable_by_default(&self) -> bool {
        self.kind().is_textable_by_default()
    }

    /// The 10 digits after +44, or `None` for a foreign number.
    fn uk_significant(&self) -> Option<&str> {
        self.0.strip_prefix("+44")
    }
}

impl fmt::Display for E164 {
    fn fmt(&self, formatter: &mut fmt::Formatter<'_>) -> fmt::Result {
        formatter.write_str(&self.0)
    }
}

impl FromStr for E164 {
    type Err = PhoneError;

    fn from_str(input: &str) -> Result<E164, PhoneError> {
        E164::parse(input)
    }
}

/// What kind of number this is (Ofcom National Telephone Numbering Plan), for deciding whether to
/// text it.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum NumberKind {
    /// 071 to 075 and 077 to 079 (mobile), and 07624 (Isle of Man mobile).
    UkMobile,
    /// 070, personal numbering: forwards to any phone, and may cost the texter more.
    UkPersonal,
    /// 076 except 07624, radiopaging.
    UkPager,
    /// 01 and 02, geographic landlines.
    UkGeographic,
    /// 03 (non-geographic, charged as geographic), 055 and 056 (corporate numbering and VoIP),
    /// 080 (freephone), 084 and 087 (special services).
    UkNonGeographic,
    /// 09, premium rate (090, 091 and 098 are designated; the rest of 09 is counted here too).
    UkPremium,
    /// A +44 number in a range the plan leaves unused or reserved: 04, 06, 05 other than 055 and
    /// 056, and 081, 082, 083, 085, 086, 088, 089 (which holds 08979, the non-diallable caller id
    /// range).
    UkOther,
    /// Any number outside +44.
    International,
}

impl NumberKind {
    /// For people and logs, after "a": "UK mobile", "UK landline (geographic)", ...
    pub fn describe(&self) -> &'static str {
        match self {
            NumberKind::UkMobile => "UK mobile",
            NumberKind::UkPersonal => "UK personal number (070)",
            NumberKind::UkPager => "UK pager (076)",
            NumberKind::UkGeographic => "UK landline (geographic)",
            NumberKind::UkNonGeographic => "UK non-geographic number (03, 05, 080, 084, 087)",
            NumberKind::UkPremium => "UK premium rate number (09)",
            NumberKind::UkOther => "UK number in an unused range",
            NumberKind::International => "non-UK number",
        }
    }

    /// True only for a number that is a UK mobile and may get texts by default (not 070, not 076
    /// except 07624).
    pub fn is_textable_by_default(&self) -> bool {
        *self == NumberKind::UkMobile
    }
}

/// A caller id as a modem (+CLIP) or a SIP header reports it: a number, or withheld.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum CallerId {
    Number(E164),
    Withheld(WithheldReason),
}

/// Why a caller id carries no number to text.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum WithheldReason {
    /// Nothing at all.
    Empty,
    /// A word instead of a number: "anonymous", "withheld", "private", "restricted",
    /// "unavailable" or "unknown", in any case, bare or as the user of a SIP URI
    /// ("sip:anonymous@anonymous.invalid").
    Anonymous,
    /// A number in 08979, the range Ofcom's National Telephone Numbering Plan sets aside for
    /// caller ids that cannot be dialled back (introduced with Ofcom's 2018 guidance on CLI).
    NonDiallable,
    /// Something that is not a phone number.
    Unparseable,
}

/// The words networks put in place of a withheld number.
const WITHHELD_WORDS: [&str; 6] = [
    "anonymous",
    "withheld",
    "private",
    "restricted",
    "unavailable",
    "unknown",
];

impl CallerId {
    /// Classifies a raw caller id string: "" → Withheld(Empty); the words above →
    /// Withheld(Anonymous); "+448979..."/"08979..." → Withheld(NonDiallable); else E164::parse,
    /// and a parse failure → Withheld(Unparseable).
    pub fn from_raw(raw: &str) -> CallerId {
        let trimmed = raw.trim();
        if trimmed.is_empty() {
            return CallerId::Withheld(WithheldReason::Empty);
        }
        let Ok((number, _context)) = split_uri(trimmed, raw) else {
            return CallerId::Withheld(WithheldReason::Unparseable);
        };
        let word = number.trim();
        if WITHHELD_WORDS
            .iter()
            .any(|known| word.eq_ignore_ascii_case(known))
        {
            return CallerId::Withheld(WithheldReason::Anonymous);
        }
        let Ok(written) = scan(raw) else {
            return CallerId::Withheld(WithheldReason::Unparseable);
        };
        if written.is_non_diallable() {
            return CallerId::Withheld(WithheldReason::NonDiallable);
        }
        match build(written, raw) {
            Ok(number) => CallerId::Number(number),
            Err(_) => CallerId::Withheld(WithheldReason::Unparseable),
        }
    }

    /// The number, unless withheld.
    pub fn number(&self) -> Option<&E164> {
        match self {
            CallerId::Number(number) => Some(number),
            CallerId::Withheld(_) => None,
        }
    }
}

/// The digits of a number and how they were written, before the lengths are checked.
#[derive(Debug, Clone, PartialEq, Eq)]
enum Written {
    /// After '+' or the "00" international prefix: country code first.
    International(String),
    /// Starting with the single trunk 0 of a UK national number.
    National(String),
    /// Neither: no '+', no leading 0.
    Bare(String),
}

impl Written {
    /// True for Ofcom's 08979 non-diallable caller id range, in national or +44 form.
    fn is_non_diallable(&self) -> bool {
        match self {
            Written::International(digits) | Written::Bare(digits) => digits.starts_with("448979"),
            Written::National(digits) => digits.starts_with("08979"),
        }
    }
}

/// The phone-context of a tel: URI local number (RFC 3966 §5.1.5).
#[derive(Debug, Clone, PartialEq, Eq)]
enum Context {
    /// A global number prefix such as "+44"; here without the '+' and separators.
    Global(String),
    /// A domain name; it says nothing about the country, so the UK is assumed.
    Domain,
}

/// A copy of the input for an error message, cut short if it is long.
fn shown(input: &str) -> String {
    let mut chars = input.chars();
    let mut shown: String = chars.by_ref().take(MAX_SHOWN).collect();
    if chars.next().is_some() {
        shown.push('…');
    }
    shown
}

/// Strips a tel:, sip: or sips: scheme, returning the number part and any tel: phone-context.
fn split_uri<'a>(text: &'a str, input: &str) -> Result<(&'a str, Option<Context>), PhoneError> {
    if let Some(rest) = strip_prefix_ignoring_case(text, "tel:") {
        let mut parts = rest.split(';');
        let number = parts.next().unwrap_or("");
        let mut context = None;
        for parameter in parts {
            let (name, value) = parameter.split_once('=').unwrap_or((parameter, ""));
            if name.trim().eq_ignore_ascii_case("phone-context") {
                context = Some(read_context(value.trim(), input)?);
            }
        }
        return Ok((number, context));
    }
    let sip = strip_prefix_ignoring_case(text, "sip:")
        .or_else(|| strip_prefix_ignoring_case(text, "sips:"));
    if let Some(rest) = sip {
        let user = rest.split_once('@').map_or(rest, |(user, _host)| user);
        let number = user
            .split_once(';')
            .map_or(user, |(number, _parameters)| number);
        return Ok((number, None));
    }
    Ok((text, None))
}

fn strip_prefix_ignoring_case<'a>(text: &'a str, prefix: &str) -> Option<&'a str> {
    let head = text.get(..prefix.len())?;
    if head.eq_ignore_ascii_case(prefix) {
        text.get(prefix.len()..)
    } else {
        None
    }
}

/// Reads a phone-context value: "+44" (separators allowed) or a domain name.
fn read_context(value: &str, input: &str) -> Result<Context, PhoneError> {
    let Some(prefix) = value.strip_prefix('+') else {
        return Ok(Context::Domain);
    };
    let mut digits = String::new();
    for character in prefix.chars() {
        match character {
            '0'..='9' => digits.push(character),
            '-' | '.' | '(' | ')' => {}
            _ => return Err(character_error(input, character)),
        }
    }
    if digits.is_empty() {
        return Err(PhoneError::NoDigits {
            input: shown(input),
        });
    }
    Ok(Context::Global(digits))
}

fn character_error(input: &str, character: char) -> PhoneError {
    if character.is_alphabetic() {
        PhoneError::Letter {
            input: shown(input),
            letter: character,
        }
    } else {
        PhoneError::UnexpectedCharacter {
            input: shown(input),
            character,
        }
    }
}

/// Reads the characters of the input into digits and the form they were written in.
fn scan(input: &str) -> Result<Written, PhoneError> {
    let trimmed = input.trim();
    if trimmed.is_empty() {
        return Err(PhoneError::Empty);
    }
    let (number, context) = split_uri(trimmed, input)?;

    // Keep digits, a leading '+' and brackets (to find a "(0)"); drop separators.
    let mut kept = String::new();
    let mut plus = false;
    for character in number.chars() {
        match character {
            '0'..='9' | '(' | ')' => kept.push(character),
            '+' if kept.is_empty() && !plus => plus = true,
            '+' => {
                return Err(PhoneError::PlusNotAtStart {
                    input: shown(input),
                });
            }
            '-' | '.' => {}
            _ if character.is_whitespace() => {}
            _ => return Err(character_error(input, character)),
        }
    }

    let mut digits: String = kept.chars().filter(char::is_ascii_digit).collect();
    let international = plus || digits.starts_with("00");
    if international {
        // "+44 (0)7700 900123": the bracketed 0 is the trunk prefix, dialled only within the
        // country, so it is dropped. Only after some digits, so "(0)" never stands for "00".
        if let Some(at) = kept.find("(0)").filter(|&at| at > 0) {
            let before = kept.get(..at).unwrap_or("");
            let after = kept.get(at + 3..).unwrap_or("");
            digits = format!("{before}{after}")
                .chars()
                .filter(char::is_ascii_digit)
                .collect();
        }
    }
    if digits.is_empty() {
        return Err(PhoneError::NoDigits {
            input: shown(input),
        });
    }

    let written = if plus {
        Written::International(digits)
    } else if let Some(rest) = digits.strip_prefix("00") {
        Written::International(rest.to_string())
    } else if digits.starts_with('0') {
        Written::National(digits)
    } else {
        Written::Bare(digits)
    };

    match (context, written) {
        (Some(Context::Global(prefix)), Written::National(digits)) => {
            if prefix == "44" {
                Ok(Written::National(digits))
            } else {
                Err(PhoneError::ForeignPhoneContext {
                    input: shown(input),
                    context: format!("+{prefix}"),
                })
            }
        }
        (Some(Context::Global(prefix)), Written::Bare(digits)) => {
            Ok(Written::International(format!("{prefix}{digits}")))
        }
        (_, written) => Ok(written),
    }
}

/// Checks the lengths and builds the E.164 number.
fn build(written: Written, input: &str) -> Result<E164, PhoneError> {
    match written {
        Written::International(digits) => {
            if digits.starts_with('0') {
                return Err(PhoneError::CountryCodeZero {
                    input: shown(input),
                });
            }
            if let Some(significant) = digits.strip_prefix("44") {
                return uk_from_international(significant, input);
            }
            match digits.len() {
                0..8 => Err(PhoneError::InternationalTooShort {
                    input: shown(input),
                    digits: digits.len(),
                }),
                8..=15 => Ok(E164(format!("+{digits}"))),
                _ => Err(PhoneError::InternationalTooLong {
                    input: shown(input),
                    digits: digits.len(),
                }),
            }
        }
        Written::National(digits) => {
            // The scan makes "00" international, so the digit after the trunk 0 is not 0.
            match digits.strip_prefix('0') {
                Some(significant) if significant.len() == 10 => {
                    Ok(E164(format!("+44{significant}")))
                }
                _ => Err(PhoneError::UkNationalLength {
                    input: shown(input),
                    digits: digits.strip_prefix('0').unwrap_or(&digits).len(),
                }),
            }
        }
        Written::Bare(digits) => match digits.strip_prefix("44") {
            Some(significant)
                if significant.len() == 10 && uk_kind(significant) != NumberKind::UkOther =>
            {
                Ok(E164(format!("+44{significant}")))
            }
            _ => Err(PhoneError::NoTrunkPrefix {
                input: shown(input),
            }),
        },
    }
}

/// The digits after +44: 10, not starting with 0; a stray trunk 0 ("+44 07700 900123") is
/// dropped.
fn uk_from_international(significant: &str, input: &str) -> Result<E164, PhoneError> {
    if let Some(rest) = significant.strip_prefix('0') {
        if rest.len() == 10 && !rest.starts_with('0') {
            return Ok(E164(format!("+44{rest}")));
        }
        return Err(PhoneError::UkTrunkZero {
            input: shown(input),
            digits: rest.len(),
        });
    }
    if significant.len() == 10 {
        Ok(E164(format!("+44{significant}")))
    } else {
        Err(PhoneError::UkInternationalLength {
            input: shown(input),
            digits: significant.len(),
        })
    }
}

/// The kind of a UK number from its digits after +44, per the designations in Ofcom's National
/// Telephone Numbering Plan.
fn uk_kind(significant: &str) -> NumberKind {
    match significant.as_bytes() {
        [b'1' | b'2', ..] => NumberKind::UkGeographic,
        [b'3', ..] => NumberKind::UkNonGeographic,
        [b'5', b'5' | b'6', ..] => NumberKind::UkNonGeographic,
        [b'7', b'0', ..] => NumberKind::UkPersonal,
        [b'7', b'6', b'2', b'4', ..] => NumberKind::UkMobile,
        [b'7', b'6', ..] => NumberKind::UkPager,
        [b'7', b'1'..=b'5' | b'7'..=b'9', ..] => NumberKind::UkMobile,
        [b'8', b'0' | b'4' | b'7', ..] => NumberKind::UkNonGeographic,
        [b'9', ..] => NumberKind::UkPremium,
        _ => NumberKind::UkOther,
    }
}

/// How many of the leading digits are the country code, from the structure of the ITU-T E.164
/// country code assignments: 1 (North America) and 7 (Russia, Kazakhstan) are one digit; in the
/// other zones some codes are two digits and the rest three.
fn country_code_length(digits: &str) -> usize {
    match digits.as_bytes() {
        [b'1' | b'7', ..] => 1,
        [b'2', b'0' | b'7', ..] => 2,
        [b'3', b'0'..=b'4' | b'6' | b'9', ..] => 2,
        [b'4', b'0' | b'1' | b'3'..=b'9', ..] => 2,
        [b'5', b'1'..=b'8', ..] => 2,
        [b'6', b'0'..=b'6', ..] => 2,
        [b'8', b'1' | b'2' | b'4' | b'6', ..] => 2,
        [b'9', b'0'..=b'5' | b'8', ..] => 2,
        _ => 3,
    }
}

/// Splits digits into groups of the given sizes, joined by spaces; any digits left over join the
/// last group.
fn group(digits: &str, sizes: &[usize]) -> String {
    let mut grouped = String::new();
    let mut rest = digits;
    for (index, &size) in sizes.iter().enumerate() {
        let last = index + 1 == sizes.len();
        let (head, tail) = if last {
            (rest, "")
        } else {
            rest.split_at_checked(size).unwrap_or((rest, ""))
        };
        if head.is_empty() {
            break;
        }
        if !grouped.is_empty() {
            grouped.push(' ');
        }
        grouped.push_str(head);
        rest = tail;
    }
    grouped
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    fn parsed(input: &str) -> E164 {
        match E164::parse(input) {
            Ok(number) => number,
            Err(error) => panic!("{input:?} should parse: {error}"),
        }
    }

    fn error(input: &str) -> PhoneError {
        match E164::parse(input) {
            Ok(number) => panic!("{input:?} should not parse, but gave {number}"),
            Err(error) => error,
        }
    }

    // Input forms.

    #[test]
    fn parses_every_uk_form_to_the_same_number() {
        let forms = [
            "+44 7700 900123",
            "+447700900123",
            "07700 900123",
            "07700900123",
            "07700-900-123",
            "07700.900.123",
            "(07700) 900123",
            "447700900123",
            "0044 7700 900123",
            "+44 (0)7700 900123",
            "+44(0)7700900123",
            "0044 (0) 7700 900123",
            "+44 07700 900123",
            "tel:+447700900123",
            "TEL:+44-7700-900123",
            "tel:07700900123;phone-context=+44",
            "tel:07700900123;phone-context=example.com",
            "tel:7700900123;phone-context=+44",
            "sip:+447700900123@example.com;user=phone",
            "sips:07700900123@example.com",
            "  07700 900123\t",
            "07700\u{a0}900123",
        ];
        for form in forms {
            assert_eq!(parsed(form).as_str(), "+447700900123", "{form:?}");
        }
    }

    #[test]
    fn parses_london_with_brackets() {
        assert_eq!(parsed("(020) 7946 0018").as_str(), "+442079460018");
        assert_eq!(parsed("(0)20 7946 0018").as_str(), "+442079460018");
        assert_eq!(
            parsed("tel:79460018;phone-context=+44-20").as_str(),
            "+442079460018"
        );
    }

    #[test]
    fn keeps_international_numbers_as_given() {
        assert_eq!(parsed("00 1 212 555 0100").as_str(), "+12125550100");
        assert_eq!(parsed("+1 212 555 0100").as_str(), "+12125550100");
        assert_eq!(parsed("+1 (212) 555-0100").as_str(), "+12125550100");
        assert_eq!(parsed("+353 87 123 4567").as_str(), "+353871234567");
        assert_eq!(parsed("tel:+33-1-23-45-67-89").as_str(), "+33123456789");
        assert_eq!(
            parsed("tel:2125550100;phone-context=+1").as_str(),
            "+12125550100"
        );
    }

    #[test]
    fn accessors() {
        let number = parsed("07700 900123");
        assert_eq!(number.as_str(), "+447700900123");
        assert_eq!(number.digits(), "447700900123");
        assert_eq!(number.to_string(), "+447700900123");
        assert_eq!("07700 900123".parse::<E164>(), Ok(number.clone()));
        assert_eq!(number.country_code(), "44");
        assert!(number.is_uk());
        assert!(!parsed("+1 212 555 0100").is_uk());
    }

    #[test]
    fn country_codes() {
        assert_eq!(parsed("+1 212 555 0100").country_code(), "1");
        assert_eq!(parsed("+7 495 123 4567").country_code(), "7");
        assert_eq!(parsed("+353 87 123 4567").country_code(), "353");
        assert_eq!(parsed("+49 30 1234567").country_code(), "49");
        assert_eq!(parsed("+420 212 345 678").country_code(), "420");
        assert_eq!(parsed("+852 2123 4567").country_code(), "852");
        assert_eq!(parsed("+971 4 123 4567").country_code(), "971");
    }

    // Rejections.

    #[test]
    fn rejects_bad_input() {
        let bad = [
            "",
            "   ",
            "()",
            "+",
            "tel:",
            "0800 FLOWERS",
            "07700 900123 ext 4",
            "07700#900123",
            "07700 90012",
            "07700 9001234",
            "7700 900123",
            "212 555 0100",
            "0770+0900123",
            "++447700900123",
            "+44 7700 90012",
            "+44 7700 9001234",
            "+44 0770 090012",
            "+0 123 456 789",
            "+1 212",
            "+1 212 555 0100 123 45",
            "0044 7700",
            "44 7700 900123 4",
            "444123456789",
            "tel:0612345678;phone-context=+33",
            "tel:07700900123;phone-context=+4x",
            "٠٧٧٠٠٩٠٠١٢٣",
        ];
        for input in bad {
            assert!(E164::parse(input).is_err(), "{input:?} should not parse");
        }
    }

    #[test]
    fn error_messages_say_what_is_wrong_and_what_is_right() {
        assert_eq!(
            error("07700 90012").to_string(),
            "\"07700 90012\" has 9 digits after the leading 0, one too few; a UK number has 10 \
             after the 0 (e.g. 07700 900123)"
        );
        assert_eq!(
            error("").to_string(),
            "the phone number is empty; write a number such as 07700 900123 or +44 7700 900123"
        );
        assert_eq!(
            error("0800 FLOWERS").to_string(),
            "\"0800 FLOWERS\" contains the letter 'F'; a phone number has only digits, spaces, \
             dashes, dots, brackets and a leading + (e.g. +44 7700 900123)"
        );
        assert_eq!(
            error("0770+0900123").to_string(),
            "\"0770+0900123\" has a '+' after the start; '+' may only come first, before the \
             country code (e.g. +44 7700 900123)"
        );
        assert_eq!(
            error("7700 900123").to_string(),
            "\"7700 900123\" starts with neither 0 nor a country code; write a UK number with its \
             leading 0 (e.g. 07700 900123) or any number with + and its country code \
             (e.g. +44 7700 900123)"
        );
        assert_eq!(
            error("+44 7700 90012").to_string(),
            "\"+44 7700 90012\" has 9 digits after +44; a UK number has 10 digits after +44 \
             (e.g. +44 7700 900123)"
        );
        assert_eq!(
            error("+1 212 555 0100 123 45").to_string(),
            "\"+1 212 555 0100 123 45\" has 16 digits after the +; E.164 allows at most 15 \
             digits including the country code (e.g. +353 87 123 4567)"
        );
        assert_eq!(
            error("+1 212").to_string(),
            "\"+1 212\" has 4 digits after the +; an international number has 8 to 15 digits \
             including the country code (e.g. +1 212 555 0100)"
        );
        assert_eq!(
            error("07700#900123").to_string(),
            "\"07700#900123\" contains '#'; a phone number has only digits, spaces, dashes, dots, \
             brackets and a leading + (e.g. +44 7700 900123)"
        );
    }

    #[test]
    fn error_variants() {
        assert_eq!(error("   "), PhoneError::Empty);
        assert!(matches!(error("()"), PhoneError::NoDigits { .. }));
        assert!(matches!(
            error("+0 123 456 789"),
            PhoneError::CountryCodeZero { .. }
        ));
        assert!(matches!(
            error("+44 0770 090012"),
            PhoneError::UkTrunkZero { digits: 9, .. }
        ));
        assert!(matches!(
            error("tel:0612345678;phone-context=+33"),
            PhoneError::ForeignPhoneContext { .. }
        ));
        assert!(matches!(
            error("07700 9001234"),
            PhoneError::UkNationalLength { digits: 11, .. }
        ));
    }

    #[test]
    fn long_input_is_cut_short_in_errors() {
        let long = "1".repeat(500);
        let message = error(&long).to_string();
        assert!(message.len() < 300, "{message}");
        assert!(message.contains('…'));
    }

    // Kinds, with Ofcom's drama ranges where there is one.

    #[test]
    fn kinds() {
        let cases = [
            ("07700 900123", NumberKind::UkMobile),
            ("07700 900999", NumberKind::UkMobile),
            ("07123 456789", NumberKind::UkMobile),
            ("07400 123456", NumberKind::UkMobile),
            ("07500 123456", NumberKind::UkMobile),
            ("07911 123456", NumberKind::UkMobile),
            ("07624 123456", NumberKind::UkMobile),
            ("07000 123456", NumberKind::UkPersonal),
            ("07600 123456", NumberKind::UkPager),
            ("07623 123456", NumberKind::UkPager),
            ("07625 123456", NumberKind::UkPager),
            ("020 7946 0018", NumberKind::UkGeographic),
            ("0113 496 0000", NumberKind::UkGeographic),
            ("0161 496 0000", NumberKind::UkGeographic),
            ("01632 960000", NumberKind::UkGeographic),
            ("028 9649 6000", NumberKind::UkGeographic),
            ("0300 123 4567", NumberKind::UkNonGeographic),
            ("0345 123 4567", NumberKind::UkNonGeographic),
            ("0808 157 0000", NumberKind::UkNonGeographic),
            ("0800 123 4567", NumberKind::UkNonGeographic),
            ("0845 123 4567", NumberKind::UkNonGeographic),
            ("0871 123 4567", NumberKind::UkNonGeographic),
            ("05601 234567", NumberKind::UkNonGeographic),
            ("05501 234567", NumberKind::UkNonGeographic),
            ("0909 879 0000", NumberKind::UkPremium),
            ("0906 123 4567", NumberKind::UkPremium),
            ("0400 123 4567", NumberKind::UkOther),
            ("0600 123 4567", NumberKind::UkOther),
            ("0500 123 4567", NumberKind::UkOther),
            ("0897 912 3456", NumberKind::UkOther),
            ("+1 212 555 0100", NumberKind::International),
            ("+353 87 123 4567", NumberKind::International),
        ];
        for (input, kind) in cases {
            let number = parsed(input);
            assert_eq!(number.kind(), kind, "{input:?}");
            assert_eq!(
                number.is_textable_by_default(),
                kind == NumberKind::UkMobile,
                "{input:?}"
            );
        }
    }

    #[test]
    fn only_mobiles_are_textable_by_default() {
        let kinds = [
            NumberKind::UkMobile,
            NumberKind::UkPersonal,
            NumberKind::UkPager,
            NumberKind::UkGeographic,
            NumberKind::UkNonGeographic,
            NumberKind::UkPremium,
            NumberKind::UkOther,
            NumberKind::International,
        ];
        for kind in kinds {
            assert_eq!(kind.is_textable_by_default(), kind == NumberKind::UkMobile);
            assert!(!kind.describe().is_empty());
        }
        assert_eq!(NumberKind::UkMobile.describe(), "UK mobile");
        assert_eq!(
            NumberKind::UkGeographic.describe(),
            "UK landline (geographic)"
        );
    }

    #[test]
    fn bare_44_needs_a_valid_uk_number() {
        assert_eq!(parsed("442079460018").as_str(), "+442079460018");
        assert!(matches!(
            error("444123456789"),
            PhoneError::NoTrunkPrefix { .. }
        ));
        assert!(matches!(
            error("44207946001"),
            PhoneError::NoTrunkPrefix { .. }
        ));
    }

    // Output formats.

    #[test]
    fn redacted() {
        assert_eq!(parsed("07700 900123").redacted(), "+44*******123");
        assert_eq!(parsed("+1 212 555 0100").redacted(), "+1*******100");
        assert_eq!(parsed("+353 87 123 4567").redacted(), "+353******567");
        assert_eq!(parsed("+35312345").redacted(), "+353**345");
    }

    #[test]
    fn national_formats() {
        let cases = [
            ("+447700900123", "07700 900123"),
            ("+442079460018", "020 7946 0018"),
            ("+441134960000", "0113 496 0000"),
            ("+441614960000", "0161 496 0000"),
            ("+441632960000", "01632 960000"),
            ("+448001234567", "0800 123 4567"),
            ("+448081570000", "0808 157 0000"),
            ("+449098790000", "0909 879 0000"),
            ("+443001234567", "0300 123 4567"),
            ("+447624123456", "07624 123456"),
            ("+445601234567", "05601 234567"),
            ("+12125550100", "+12125550100"),
            ("+353871234567", "+353871234567"),
        ];
        for (input, national) in cases {
            assert_eq!(parsed(input).national(), national, "{input:?}");
        }
    }

    #[test]
    fn group_keeps_every_digit() {
        assert_eq!(group("0123", &[3, 4, 4]), "012 3");
        assert_eq!(group("012345678901", &[5, 6]), "01234 5678901");
        assert_eq!(group("", &[5, 6]), "");
    }

    // Caller ids.

    #[test]
    fn caller_id_withheld_forms() {
        let cases = [
            ("", WithheldReason::Empty),
            ("  ", WithheldReason::Empty),
            ("anonymous", WithheldReason::Anonymous),
            ("Anonymous", WithheldReason::Anonymous),
            ("ANONYMOUS", WithheldReason::Anonymous),
            ("withheld", WithheldReason::Anonymous),
            ("Private", WithheldReason::Anonymous),
            ("restricted", WithheldReason::Anonymous),
            ("Unavailable", WithheldReason::Anonymous),
            ("unknown", WithheldReason::Anonymous),
            (" withheld ", WithheldReason::Anonymous),
            ("sip:anonymous@anonymous.invalid", WithheldReason::Anonymous),
            ("08979 123456", WithheldReason::NonDiallable),
            ("+44 8979 123456", WithheldReason::NonDiallable),
            ("+448979123456", WithheldReason::NonDiallable),
            ("08979", WithheldReason::NonDiallable),
            ("tel:+448979123456", WithheldReason::NonDiallable),
            ("garbage", WithheldReason::Unparseable),
            ("07700 90012", WithheldReason::Unparseable),
            ("+", WithheldReason::Unparseable),
        ];
        for (raw, reason) in cases {
            let caller = CallerId::from_raw(raw);
            assert_eq!(caller, CallerId::Withheld(reason), "{raw:?}");
            assert_eq!(caller.number(), None);
        }
    }

    #[test]
    fn caller_id_numbers() {
        let caller = CallerId::from_raw("07700900123");
        assert_eq!(caller, CallerId::Number(parsed("+447700900123")));
        assert_eq!(caller.number().map(E164::as_str), Some("+447700900123"));
        assert_eq!(
            CallerId::from_raw("+12125550100").number(),
            Some(&parsed("+1 212 555 0100"))
        );
        assert_eq!(
            CallerId::from_raw("08978 123456").number(),
            Some(&parsed("+448978123456"))
        );
    }

    // Properties.

    /// Valid numbers: UK ones by their 10 digits after +44, and foreign ones by any country code.
    fn valid_number() -> impl Strategy<Value = E164> {
        let uk = "[1-9][0-9]{9}".prop_map(|significant| E164(format!("+44{significant}")));
        let foreign = "[1-9][0-9]{7,14}"
            .prop_filter("+44 is UK", |digits: &String| !digits.starts_with("44"))
            .prop_map(|digits| E164(format!("+{digits}")));
        prop_oneof![uk, foreign]
    }

    proptest! {
        #[test]
        fn parse_never_panics(input in ".*") {
            let _ = E164::parse(&input);
            let _ = CallerId::from_raw(&input);
        }

        #[test]
        fn parse_never_panics_on_number_like_text(input in "[0-9+() tel:sip@;=.,#x-]{0,30}") {
            if let Ok(number) = E164::parse(&input) {
                prop_assert_eq!(E164::parse(number.as_str()), Ok(number.clone()));
            }
            let _ = CallerId::from_raw(&input);
        }

        #[test]
        fn valid_numbers_round_trip(number in valid_number()) {
            prop_assert_eq!(E164::parse(number.as_str()), Ok(number.clone()));
            prop_assert_eq!(E164::parse(&number.national()), Ok(number.clone()));
            prop_assert_eq!(number.digits().len() + 1, number.as_str().len());
            let redacted = number.redacted();
            prop_assert_eq!(redacted.len(), number.as_str().len());
            let country = format!("+{}", number.country_code());
            prop_assert!(redacted.starts_with(&country), "{} from {}", redacted, number);
            prop_assert_eq!(number.is_uk(), number.kind() != NumberKind::International);
        }
    }
}
