//! The GSM 7-bit default alphabet and its extension table (3GPP TS 23.038 §6.2.1, §6.2.1.1), and
//! the one transliterator that turns text into it: every text textback sends goes through
//! [`to_plain`] (characters with a plain GSM-7 form take it) or [`to_gsm7`] (and anything left
//! becomes '?'), so one SMS holds 160 characters instead of UCS-2's 70. Pure: no I/O.

/// Escape to the extension table (TS 23.038 §6.2.1, code 0x1B).
pub(crate) const ESCAPE: u8 = 0x1B;

/// The default alphabet by code. 0x1B is the escape, never produced from text.
pub(crate) const DEFAULT_ALPHABET: [char; 128] = [
    '@', '£', '$', '¥', 'è', 'é', 'ù', 'ì', 'ò', 'Ç', '\n', 'Ø', 'ø', '\r', 'Å', 'å', //
    'Δ', '_', 'Φ', 'Γ', 'Λ', 'Ω', 'Π', 'Ψ', 'Σ', 'Θ', 'Ξ', '\u{1B}', 'Æ', 'æ', 'ß', 'É', //
    ' ', '!', '"', '#', '¤', '%', '&', '\'', '(', ')', '*', '+', ',', '-', '.', '/', //
    '0', '1', '2', '3', '4', '5', '6', '7', '8', '9', ':', ';', '<', '=', '>', '?', //
    '¡', 'A', 'B', 'C', 'D', 'E', 'F', 'G', 'H', 'I', 'J', 'K', 'L', 'M', 'N', 'O', //
    'P', 'Q', 'R', 'S', 'T', 'U', 'V', 'W', 'X', 'Y', 'Z', 'Ä', 'Ö', 'Ñ', 'Ü', '§', //
    '¿', 'a', 'b', 'c', 'd', 'e', 'f', 'g', 'h', 'i', 'j', 'k', 'l', 'm', 'n', 'o', //
    'p', 'q', 'r', 's', 't', 'u', 'v', 'w', 'x', 'y', 'z', 'ä', 'ö', 'ñ', 'ü', 'à', //
];

/// The extension table (TS 23.038 §6.2.1.1): code after the escape, and its character.
pub(crate) const EXTENSION_TABLE: [(u8, char); 10] = [
    (0x0A, '\u{0C}'), // form feed
    (0x14, '^'),
    (0x28, '{'),
    (0x29, '}'),
    (0x2F, '\\'),
    (0x3C, '['),
    (0x3D, '~'),
    (0x3E, ']'),
    (0x40, '|'),
    (0x65, '€'),
];

/// Marks an ASCII character that has no default alphabet code.
const NO_CODE: u8 = 0xFF;

/// Default alphabet code of each ASCII character, or [`NO_CODE`].
const ASCII_TO_DEFAULT: [u8; 128] = {
    let mut table = [NO_CODE; 128];
    let mut code = 0;
    while code < 128 {
        let character = DEFAULT_ALPHABET[code] as u32;
        if character < 128 && code != ESCAPE as usize {
            table[character as usize] = code as u8;
        }
        code += 1;
    }
    table
};

/// How one character is written in GSM 7-bit.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Gsm7Code {
    Default(u8),
    Extension(u8),
}

pub(crate) fn code(character: char) -> Option<Gsm7Code> {
    let code = if character.is_ascii() {
        ASCII_TO_DEFAULT
            .get(character as usize)
            .copied()
            .filter(|&code| code != NO_CODE)
    } else {
        DEFAULT_ALPHABET
            .iter()
            .position(|&entry| entry == character)
            .and_then(|code| u8::try_from(code).ok())
    };
    match code {
        Some(code) => Some(Gsm7Code::Default(code)),
        None => EXTENSION_TABLE
            .iter()
            .find(|(_, entry)| *entry == character)
            .map(|&(code, _)| Gsm7Code::Extension(code)),
    }
}

/// Septets the character takes in GSM 7-bit: 2 for the extension table, else 1.
pub(crate) fn septets(character: char) -> usize {
    match code(character) {
        Some(Gsm7Code::Extension(_)) => 2,
        Some(Gsm7Code::Default(_)) | None => 1,
    }
}

/// True if the text can be sent in GSM-7 (default alphabet + extension table).
pub fn is_gsm7(text: &str) -> bool {
    text.chars().all(|character| code(character).is_some())
}

/// The septets of a text, or the first character that has none.
pub(crate) fn text_to_septets(text: &str) -> Result<Vec<u8>, char> {
    let mut septets = Vec::with_capacity(text.len());
    for character in text.chars() {
        match code(character) {
            Some(Gsm7Code::Default(code)) => septets.push(code),
            Some(Gsm7Code::Extension(code)) => {
                septets.push(ESCAPE);
                septets.push(code);
            }
            None => return Err(character),
        }
    }
    Ok(septets)
}

fn default_character(code: u8) -> char {
    DEFAULT_ALPHABET
        .get(usize::from(code & 0x7F))
        .copied()
        .unwrap_or(' ')
}

/// Septets to text. An escape followed by a code the extension table lacks gives the default
/// table's character for that code (TS 23.038 §6.2.1.1 note); an escape followed by another
/// escape (reserved for a further table) or ending the text gives a space (§6.2.1, 0x1B).
pub(crate) fn septets_to_text(septets: &[u8]) -> String {
    let mut text = String::with_capacity(septets.len());
    let mut rest = septets.iter().copied();
    while let Some(septet) = rest.next() {
        if septet != ESCAPE {
            text.push(default_character(septet));
            continue;
        }
        match rest.next() {
            None | Some(ESCAPE) => text.push(' '),
            Some(code) => text.push(
                EXTENSION_TABLE
                    .iter()
                    .find(|(entry, _)| *entry == code)
                    .map_or_else(|| default_character(code), |&(_, character)| character),
            ),
        }
    }
    text
}

/// The GSM-7 form of a character the alphabet lacks: typographic marks as their plain forms,
/// letters without the accent the alphabet lacks ("á" -> "a", "Ł" -> "L"), invisible spaces
/// dropped. `None` for anything with no plain form (emoji, other scripts).
fn plain_form(character: char) -> Option<&'static str> {
    Some(match character {
        '\u{2018}' | '\u{2019}' | '\u{201A}' | '\u{201B}' | '\u{2032}' | '`' | '\u{B4}' => "'",
        '\u{201C}' | '\u{201D}' | '\u{201E}' | '\u{201F}' | '\u{2033}' | '\u{AB}' | '\u{BB}' => {
            "\""
        }
        '\u{2010}' | '\u{2011}' | '\u{2012}' | '\u{2013}' | '\u{2014}' | '\u{2015}'
        | '\u{2212}' => "-",
        '\u{2026}' => "...",
        '\u{A0}' | '\u{2000}'..='\u{200A}' | '\u{202F}' | '\u{205F}' | '\u{3000}' => " ",
        '\u{200B}' | '\u{200C}' | '\u{200D}' | '\u{2060}' | '\u{FEFF}' => "",
        '\u{2022}' => "*",
        '\u{B7}' => ".",
        '\u{D7}' => "x",
        '\u{B0}' => " deg",
        '\u{2122}' => "TM",
        '\u{A9}' => "(c)",
        '\u{AE}' => "(R)",
        'á' | 'â' | 'ã' | 'ā' | 'ă' | 'ą' => "a",
        'Á' | 'À' | 'Â' | 'Ã' | 'Ā' | 'Ă' | 'Ą' => "A",
        'ç' | 'ć' | 'č' | 'ĉ' | 'ċ' => "c",
        'Ć' | 'Č' | 'Ĉ' | 'Ċ' => "C",
        'ď' | 'đ' => "d",
        'Ď' | 'Đ' => "D",
        'ê' | 'ë' | 'ē' | 'ę' | 'ě' | 'ė' => "e",
        'È' | 'Ê' | 'Ë' | 'Ē' | 'Ę' | 'Ě' | 'Ė' => "E",
        'ğ' | 'ģ' => "g",
        'Ğ' | 'Ģ' => "G",
        'í' | 'î' | 'ï' | 'ī' | 'į' | 'ı' => "i",
        'Í' | 'Ì' | 'Î' | 'Ï' | 'Ī' | 'Į' | 'İ' => "I",
        'ķ' => "k",
        'Ķ' => "K",
        'ł' | 'ľ' | 'ļ' | 'ĺ' => "l",
        'Ł' | 'Ľ' | 'Ļ' | 'Ĺ' => "L",
        'ń' | 'ň' | 'ņ' => "n",
        'Ń' | 'Ň' | 'Ņ' => "N",
        'ó' | 'ô' | 'õ' | 'ō' | 'ő' => "o",
        'Ó' | 'Ò' | 'Ô' | 'Õ' | 'Ō' | 'Ő' => "O",
        'œ' => "oe",
        'Œ' => "OE",
        'ř' | 'ŕ' => "r",
        'Ř' | 'Ŕ' => "R",
        'ś' | 'š' | 'ş' | 'ș' => "s",
        'Ś' | 'Š' | 'Ş' | 'Ș' => "S",
        'ť' | 'ţ' | 'ț' => "t",
        'Ť' | 'Ţ' | 'Ț' => "T",
        'ú' | 'û' | 'ū' | 'ů' | 'ű' | 'ų' => "u",
        'Ú' | 'Ù' | 'Û' | 'Ū' | 'Ů' | 'Ű' | 'Ų' => "U",
        'ŵ' => "w",
        'Ŵ' => "W",
        'ý' | 'ÿ' | 'ŷ' => "y",
        'Ý' | 'Ÿ' | 'Ŷ' => "Y",
        'ź' | 'ż' | 'ž' => "z",
        'Ź' | 'Ż' | 'Ž' => "Z",
        'ð' => "d",
        'Ð' => "D",
        'þ' => "th",
        'Þ' => "Th",
        _ => return None,
    })
}

/// The text with every character the alphabet lacks but has a plain form for replaced by it
/// ("Siobhán’s" -> "Siobhan's"); anything else (emoji, other scripts) is kept, so the result
/// may still need UCS-2. For texts whose meaning must not change silently.
pub fn to_plain(text: &str) -> String {
    let mut out = String::with_capacity(text.len());
    for character in text.chars() {
        if code(character).is_some() {
            out.push(character);
        } else {
            match plain_form(character) {
                Some(plain) => out.push_str(plain),
                None => out.push(character),
            }
        }
    }
    out
}

/// Text that always encodes in GSM-7: [`to_plain`], with control characters (and the escape) as
/// spaces and anything left without a form as '?'.
pub fn to_gsm7(text: &str) -> String {
    let mut out = String::with_capacity(text.len());
    for character in text.chars() {
        if character == '\u{1B}' || character.is_control() {
            out.push(' ');
        } else if code(character).is_some() {
            out.push(character);
        } else {
            out.push_str(plain_form(character).unwrap_or("?"));
        }
    }
    out
}

#[cfg(test)]
pub(crate) mod tests {
    use super::*;
    use proptest::prelude::*;

    /// Every character of the alphabet and its extension table.
    pub(crate) fn all_characters() -> Vec<char> {
        DEFAULT_ALPHABET
            .iter()
            .copied()
            .filter(|&character| character != '\u{1B}')
            .chain(EXTENSION_TABLE.iter().map(|&(_, character)| character))
            .collect()
    }

    #[test]
    fn alphabet_table_spot_checks() {
        // TS 23.038 §6.2.1.
        let expected = [
            (0x00, '@'),
            (0x01, '£'),
            (0x02, '$'),
            (0x03, '¥'),
            (0x09, 'Ç'),
            (0x10, 'Δ'),
            (0x11, '_'),
            (0x1A, 'Ξ'),
            (0x1C, 'Æ'),
            (0x1E, 'ß'),
            (0x1F, 'É'),
            (0x24, '¤'),
            (0x40, '¡'),
            (0x5B, 'Ä'),
            (0x5F, '§'),
            (0x60, '¿'),
            (0x7F, 'à'),
        ];
        for (code_point, character) in expected {
            assert_eq!(code(character), Some(Gsm7Code::Default(code_point)));
            assert_eq!(default_character(code_point), character);
        }
        assert_eq!(code('€'), Some(Gsm7Code::Extension(0x65)));
        assert_eq!(code('\u{0C}'), Some(Gsm7Code::Extension(0x0A)));
        for character in ['`', 'ç', 'Α', '\u{1B}', 'ê', '😀'] {
            assert_eq!(code(character), None, "{character:?}");
        }
        assert!(is_gsm7("Hello @ £5 {ok} €"));
        assert!(!is_gsm7("naïve"));
        assert!(is_gsm7(""));
    }

    #[test]
    fn unknown_escape_gives_default_character_and_double_escape_a_space() {
        // ESC + 0x41 ('A' in the default table, nothing in the extension table).
        assert_eq!(septets_to_text(&[0x1B, 0x41, 0x1B, 0x65]), "A€");
        assert_eq!(septets_to_text(&[0x1B, 0x1B, 0x41]), " A");
        assert_eq!(septets_to_text(&[0x41, 0x1B]), "A ");
    }

    #[test]
    fn names_and_typography_become_plain() {
        assert_eq!(
            to_plain("Thanks Siobhán, it’s booked – see you…"),
            "Thanks Siobhan, it's booked - see you..."
        );
        assert_eq!(to_plain("Łukasz Wójcik"), "Lukasz Wojcik");
        assert_eq!(
            to_plain("Gwenllïan, Zoë, Róisín, Siân"),
            "Gwenllian, Zoe, Roisin, Sian"
        );
        // Characters the alphabet has are kept: é, ü, ñ, ø, Ç.
        assert_eq!(to_plain("Renée Müller, Núñez"), "Renée Müller, Nuñez");
        // No plain form: kept by to_plain, '?' in to_gsm7.
        assert_eq!(to_plain("ok 👍"), "ok 👍");
        assert_eq!(to_gsm7("ok 👍"), "ok ?");
        assert_eq!(to_gsm7("• one\ttwo"), "* one two");
    }

    proptest! {
        /// Whatever comes in, to_gsm7's output encodes in GSM-7, and text that already does is
        /// left as it is.
        #[test]
        fn to_gsm7_always_encodes(text in "\\PC{0,200}") {
            let out = to_gsm7(&text);
            prop_assert!(is_gsm7(&out), "{:?} -> {:?}", text, out);
            if is_gsm7(&text) && !text.chars().any(char::is_control) {
                prop_assert_eq!(out, text);
            }
        }

        #[test]
        fn to_plain_keeps_what_encodes(text in proptest::collection::vec(proptest::sample::select(all_characters()), 0..200)) {
            let text: String = text.into_iter().collect();
            prop_assert_eq!(to_plain(&text), text);
        }
    }
}
