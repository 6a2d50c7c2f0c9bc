//! Reads the config's TOML into the raw types, collecting every type error, unknown key and
//! missing key with its key path and line, so that one run of `config check` reports them all.

use super::raw::RawConfig;
use super::{Problem, is_at_or_under};

/// The most type errors and unknown keys reported from one file; past it the file is not worth
/// reading further.
const MAX_READ_PROBLEMS: usize = 50;

/// The raw config as far as it could be read, with the problems found in reading it.
pub(super) struct Read {
    /// The config, with each bad value replaced (or unknown key dropped) so reading went on.
    pub(super) raw: RawConfig,
    /// Type errors, unknown keys and missing keys, in the order found.
    pub(super) problems: Vec<Problem>,
    /// The key paths whose values were replaced: value checks there would only repeat them.
    pub(super) replaced: Vec<String>,
}

/// Why the raw config could not be read at all.
pub(super) enum ReadFailure {
    /// Not TOML.
    Syntax(Problem),
    /// Problems that no replacement got past (listed all the same).
    Stuck(Vec<Problem>),
}

/// Reads the TOML into [`RawConfig`]. serde stops at the first type error or unknown key, so
/// each one is noted with its key path and line, the value at that path is replaced with one of
/// the right type (or the unknown key is dropped), and the file is read again: every such
/// problem comes out of one run.
pub(super) fn read_raw(text: &str) -> Result<Read, ReadFailure> {
    let line_of = |span: Option<std::ops::Range<usize>>| {
        span.map(|span| text[..span.start.min(text.len())].matches('\n').count() + 1)
    };
    let mut root = toml::de::DeTable::parse(text).map_err(|err| {
        ReadFailure::Syntax(Problem {
            path: match line_of(err.span()) {
                Some(line) => format!("line {line}"),
                None => "(file)".to_string(),
            },
            message: format!("TOML syntax: {}", err.message().trim()),
        })
    })?;
    let mut problems = Vec::new();
    let mut replaced: Vec<String> = Vec::new();
    loop {
        let failure = match attempt(&root) {
            Ok(raw) => {
                return Ok(Read {
                    raw,
                    problems,
                    replaced,
                });
            }
            Err(failure) => failure,
        };
        let ReadError {
            segments,
            path,
            message,
            span,
        } = failure;
        let mut shown = message.clone();
        if shown.starts_with("missing field") {
            shown.push_str(": add it");
        }
        if let Some(line) = line_of(span) {
            shown.push_str(&format!(" (line {line})"));
        }
        problems.push(Problem {
            path: if path.is_empty() {
                "(top level)".to_string()
            } else {
                path.clone()
            },
            message: shown,
        });
        // The key to repair: the unknown or mistyped one, or the missing one inside `path`.
        let (segments, key) = match missing_field(&message) {
            Some(field) => {
                let mut segments = segments;
                segments.push(Segment::Key(field.to_string()));
                let key = if path.is_empty() {
                    field.to_string()
                } else {
                    format!("{path}.{field}")
                };
                (segments, key)
            }
            None => (segments, path),
        };
        let repaired = if message.starts_with("unknown field") {
            remove(root.get_mut(), &segments)
        } else if replaced.contains(&key) || problems.len() >= MAX_READ_PROBLEMS {
            false
        } else {
            replaced.push(key.clone());
            replace(&mut root, &segments, &key)
        };
        if !repaired {
            return Err(ReadFailure::Stuck(problems));
        }
    }
}

/// One step of a key path.
#[derive(Debug, Clone, PartialEq, Eq)]
enum Segment {
    Key(String),
    Index(usize),
}

/// Where and why reading the raw config failed.
struct ReadError {
    segments: Vec<Segment>,
    /// `segments` written as in messages: `profile[0].numbers[1]`; empty at the top level.
    path: String,
    /// serde's message.
    message: String,
    span: Option<std::ops::Range<usize>>,
}

fn attempt(root: &toml::Spanned<toml::de::DeTable<'_>>) -> Result<RawConfig, ReadError> {
    let deserializer = toml::de::Deserializer::from(root.clone());
    serde_path_to_error::deserialize(deserializer).map_err(|err| {
        let segments: Vec<Segment> = err
            .path()
            .iter()
            .filter_map(|segment| match segment {
                serde_path_to_error::Segment::Seq { index } => Some(Segment::Index(*index)),
                serde_path_to_error::Segment::Map { key } => Some(Segment::Key(key.clone())),
                serde_path_to_error::Segment::Enum { variant } => {
                    Some(Segment::Key(variant.clone()))
                }
                serde_path_to_error::Segment::Unknown => None,
            })
            .collect();
        let path = err.path().to_string();
        let inner = err.into_inner();
        ReadError {
            segments,
            path: if path == "." { String::new() } else { path },
            message: inner.message().trim().to_string(),
            span: inner.span(),
        }
    })
}

/// The field named by serde's "missing field `name`".
fn missing_field(message: &str) -> Option<&str> {
    message
        .strip_prefix("missing field `")?
        .split('`')
        .next()
        .filter(|field| !field.is_empty())
}

/// The value at `segments`, if there is one.
fn value_at<'a, 'i>(
    table: &'a mut toml::de::DeTable<'i>,
    segments: &[Segment],
) -> Option<&'a mut toml::de::DeValue<'i>> {
    let (first, rest) = segments.split_first()?;
    let Segment::Key(key) = first else {
        return None;
    };
    let mut value = table.get_mut(key.as_str())?.get_mut();
    for segment in rest {
        value = match (segment, value) {
            (Segment::Key(key), toml::de::DeValue::Table(table)) => {
                table.get_mut(key.as_str())?.get_mut()
            }
            (Segment::Index(index), toml::de::DeValue::Array(array)) => {
                array.get_mut(*index)?.get_mut()
            }
            _ => return None,
        };
    }
    Some(value)
}

/// The table that holds the last key of `segments`, and that key.
fn parent_of<'a, 'i, 's>(
    root: &'a mut toml::de::DeTable<'i>,
    segments: &'s [Segment],
) -> Option<(&'a mut toml::de::DeTable<'i>, &'s str)> {
    let (last, parent) = segments.split_last()?;
    let Segment::Key(key) = last else {
        return None;
    };
    if parent.is_empty() {
        return Some((root, key));
    }
    match value_at(root, parent)? {
        toml::de::DeValue::Table(table) => Some((table, key)),
        _ => None,
    }
}

/// Drops the key at `segments`; false when there is none.
fn remove(root: &mut toml::de::DeTable<'_>, segments: &[Segment]) -> bool {
    parent_of(root, segments).is_some_and(|(table, key)| table.remove(key).is_some())
}

/// Puts a value at `segments` that reading gets past: an empty string, zero, false, an empty
/// list or an empty table, whichever the key takes; or, when none does, drops the key (an
/// optional one is then absent). False when nothing helped.
fn replace(
    root: &mut toml::Spanned<toml::de::DeTable<'_>>,
    segments: &[Segment],
    key: &str,
) -> bool {
    use toml::de::{DeArray, DeInteger, DeTable, DeValue};
    let candidates = [
        DeValue::String(std::borrow::Cow::Borrowed("")),
        DeValue::Integer(DeInteger::default()),
        DeValue::Boolean(false),
        DeValue::Array(DeArray::new()),
        DeValue::Table(DeTable::new()),
    ];
    let gets_past = |root: &toml::Spanned<DeTable<'_>>| match attempt(root) {
        Ok(_) => true,
        Err(failure) => {
            let at = match missing_field(&failure.message) {
                Some(field) if failure.path.is_empty() => field.to_string(),
                Some(field) => format!("{}.{field}", failure.path),
                None => failure.path,
            };
            !is_at_or_under(&at, key)
        }
    };
    for candidate in candidates {
        let Some((table, name)) = parent_of(root.get_mut(), segments) else {
            // An element of a list: replaced in place.
            let Some(value) = value_at(root.get_mut(), segments) else {
                return false;
            };
            *value = candidate;
            if gets_past(root) {
                return true;
            }
            continue;
        };
        let span = table.get(name).map(|value| value.span()).unwrap_or(0..0);
        table.insert(
            toml::Spanned::new(span.clone(), std::borrow::Cow::Owned(name.to_string())),
            toml::Spanned::new(span, candidate),
        );
        if gets_past(root) {
            return true;
        }
    }
    remove(root.get_mut(), segments) && gets_past(root)
}
