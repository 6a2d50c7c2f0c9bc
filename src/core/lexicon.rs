//! Word lists the readers consult: given names people in the UK and Ireland have, and the words
//! of everyday English (with texting forms and the trades' vocabulary). Both are data files
//! beside this one, written from general knowledge, not from any test corpus; they are compiled
//! in, so reading them does no I/O.

use std::collections::HashMap;
use std::collections::HashSet;
use std::sync::LazyLock;

/// How a word fits as a given name.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum NameFit {
    /// A given name and nothing else ("lucy", "siobhán").
    Name,
    /// A given name that is also an ordinary word ("will", "grace", "mark"): a name only where
    /// something else says so (a capital in a mixed-case text, "my name is").
    AlsoWord,
}

static GIVEN_NAMES: LazyLock<HashMap<String, NameFit>> = LazyLock::new(|| {
    include_str!("given_names.txt")
        .lines()
        .map(str::trim)
        .filter(|line| !line.is_empty() && !line.starts_with('#'))
        .map(|line| match line.strip_suffix('*') {
            Some(name) => (name.trim().to_string(), NameFit::AlsoWord),
            None => (line.to_string(), NameFit::Name),
        })
        .collect()
});

static COMMON_WORDS: LazyLock<HashSet<String>> = LazyLock::new(|| {
    include_str!("common_words.txt")
        .lines()
        .map(str::trim)
        .filter(|line| !line.is_empty() && !line.starts_with('#'))
        .map(str::to_string)
        .collect()
});

/// Lower case with curly apostrophes straightened, as the lists are written.
fn key(word: &str) -> String {
    word.replace('’', "'").to_lowercase()
}

/// Whether `word` (any case) is a given name, and how surely.
pub fn given_name(word: &str) -> Option<NameFit> {
    GIVEN_NAMES.get(&key(word)).copied()
}

/// Whether `word` (any case) is an everyday English word, a texting form or a trade's word.
pub fn common_word(word: &str) -> bool {
    let word = key(word);
    COMMON_WORDS.contains(&word) || COMMON_WORDS.contains(&word.replace('\'', ""))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_lists_load_and_answer() {
        assert!(GIVEN_NAMES.len() > 3000, "{}", GIVEN_NAMES.len());
        assert!(COMMON_WORDS.len() > 3000, "{}", COMMON_WORDS.len());
        assert_eq!(given_name("Siobhán"), Some(NameFit::Name));
        assert_eq!(given_name("siobhan"), Some(NameFit::Name));
        assert_eq!(given_name("will"), Some(NameFit::AlsoWord));
        assert_eq!(given_name("boiler"), None);
        assert!(common_word("boiler") && common_word("Leaking") && common_word("don’t"));
        assert!(!common_word("siobhan"));
    }
}
