//! Text as the readers see it: words with where they are, phrases, clauses, and an answer as it
//! is kept. The one module every reader in `core` builds on; it imports none of them. Pure.

/// The longest answer kept, in characters: a caller's essay is cut here, with an ellipsis.
pub const MAX_ANSWER: usize = 500;

/// The most of a message that is read at all; the rest of a pasted essay is ignored.
pub const MAX_READ: usize = 2000;

/// An answer as kept: spaces folded, control characters dropped, cut at [`MAX_ANSWER`].
pub fn clean_answer(text: &str) -> String {
    let folded: String = text
        .split_whitespace()
        .collect::<Vec<_>>()
        .join(" ")
        .chars()
        .filter(|c| !c.is_control())
        .collect();
    if folded.chars().count() > MAX_ANSWER {
        let cut: String = folded.chars().take(MAX_ANSWER - 1).collect();
        format!("{cut}…")
    } else {
        folded
    }
}

/// A word of a text, with where it is (byte offsets), so callers can cut clauses around it.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Token<'a> {
    pub text: &'a str,
    pub start: usize,
    pub end: usize,
}

impl Token<'_> {
    /// Lower case, with a possessive "'s" and curly apostrophes folded: "Cat's" -> "cat's".
    pub fn lower(&self) -> String {
        self.text.replace('’', "'").to_lowercase()
    }
}

/// Words: runs of letters and digits, keeping an apostrophe or hyphen between letters
/// ("O'Neill", "Jean-Luc", "won't").
pub fn tokens(text: &str) -> Vec<Token<'_>> {
    let mut out = Vec::new();
    let mut start: Option<usize> = None;
    let chars: Vec<(usize, char)> = text.char_indices().collect();
    for (index, &(position, c)) in chars.iter().enumerate() {
        let joiner = matches!(c, '\'' | '’' | '-')
            && start.is_some()
            && chars
                .get(index + 1)
                .is_some_and(|&(_, next)| next.is_alphanumeric());
        if c.is_alphanumeric() || joiner {
            if start.is_none() {
                start = Some(position);
            }
        } else if let Some(from) = start.take() {
            out.push(Token {
                text: &text[from..position],
                start: from,
                end: position,
            });
        }
    }
    if let Some(from) = start {
        out.push(Token {
            text: &text[from..],
            start: from,
            end: text.len(),
        });
    }
    out
}

/// Lower-case words of a text.
pub fn words(text: &str) -> Vec<String> {
    tokens(text).iter().map(Token::lower).collect()
}

/// True when `phrase` (space-separated lower-case words) occurs as consecutive words.
pub fn has_phrase(words: &[String], phrase: &str) -> bool {
    let wanted: Vec<&str> = phrase.split(' ').collect();
    if wanted.is_empty() || wanted.len() > words.len() {
        return false;
    }
    words
        .windows(wanted.len())
        .any(|window| window.iter().zip(&wanted).all(|(a, b)| a == b))
}

/// True when the text holds no letter or digit: emoji, "??", "!!!".
pub fn is_emoji_only(text: &str) -> bool {
    !text.trim().is_empty() && !text.chars().any(char::is_alphanumeric)
}

/// Clause spans of a text: split at . ! ? ; , and line breaks (a '.' only when followed by a
/// space or the end, so "5.30" stays whole).
pub fn clause_spans(text: &str) -> Vec<(usize, usize)> {
    let mut spans = Vec::new();
    let mut start = 0;
    let bytes = text.as_bytes();
    for (index, c) in text.char_indices() {
        let splits = match c {
            '!' | '?' | ';' | ',' | '\n' => true,
            '.' => bytes.get(index + 1).is_none_or(|b| b.is_ascii_whitespace()),
            _ => false,
        };
        if splits {
            if text[start..index].trim().chars().any(char::is_alphanumeric) {
                spans.push(trimmed(text, start, index));
            }
            start = index + c.len_utf8();
        }
    }
    if text[start..].trim().chars().any(char::is_alphanumeric) {
        spans.push(trimmed(text, start, text.len()));
    }
    spans
}

fn trimmed(text: &str, start: usize, end: usize) -> (usize, usize) {
    let slice = &text[start..end];
    let lead = slice.len() - slice.trim_start().len();
    let trail = slice.len() - slice.trim_end().len();
    (start + lead, end - trail)
}
