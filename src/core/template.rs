//! Message templates: `{field}` placeholders checked against the fields a message may use when the
//! config is loaded, and filled in when the message is sent.

use std::collections::HashMap;
use std::fmt;

/// Why a template was refused.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum TemplateError {
    #[error("unknown field {{{field}}}; this message can use {}", list(allowed))]
    UnknownField { field: String, allowed: Vec<String> },
    #[error("a '{{' at character {position} is never closed; write {{{{ for a literal brace")]
    Unclosed { position: usize },
    #[error("a '}}' at character {position} closes nothing; write }}}} for a literal brace")]
    StrayClose { position: usize },
    #[error("empty field {{}} at character {position}")]
    EmptyField { position: usize },
}

fn list(allowed: &[String]) -> String {
    allowed
        .iter()
        .map(|field| format!("{{{field}}}"))
        .collect::<Vec<_>>()
        .join(", ")
}

#[derive(Debug, Clone, PartialEq, Eq)]
enum Piece {
    Text(String),
    Field(String),
}

/// A parsed template. Only built by [`Template::parse`], so every field in it is one the message
/// may use.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Template {
    source: String,
    pieces: Vec<Piece>,
}

impl Template {
    /// Parses `source`, accepting only the `allowed` fields. `{{` and `}}` stand for braces.
    pub fn parse(source: &str, allowed: &[&str]) -> Result<Template, TemplateError> {
        let mut pieces = Vec::new();
        let mut text = String::new();
        let mut chars = source.char_indices().peekable();
        while let Some((position, c)) = chars.next() {
            match c {
                '{' if chars.peek().is_some_and(|&(_, next)| next == '{') => {
                    chars.next();
                    text.push('{');
                }
                '}' if chars.peek().is_some_and(|&(_, next)| next == '}') => {
                    chars.next();
                    text.push('}');
                }
                '}' => return Err(TemplateError::StrayClose { position }),
                '{' => {
                    let mut field = String::new();
                    let mut closed = false;
                    for (_, c) in chars.by_ref() {
                        if c == '}' {
                            closed = true;
                            break;
                        }
                        field.push(c);
                    }
                    if !closed {
                        return Err(TemplateError::Unclosed { position });
                    }
                    let field = field.trim().to_string();
                    if field.is_empty() {
                        return Err(TemplateError::EmptyField { position });
                    }
                    if !allowed.contains(&field.as_str()) {
                        return Err(TemplateError::UnknownField {
                            field,
                            allowed: allowed.iter().map(|a| a.to_string()).collect(),
                        });
                    }
                    if !text.is_empty() {
                        pieces.push(Piece::Text(std::mem::take(&mut text)));
                    }
                    pieces.push(Piece::Field(field));
                }
                c => text.push(c),
            }
        }
        if !text.is_empty() {
            pieces.push(Piece::Text(text));
        }
        Ok(Template {
            source: source.to_string(),
            pieces,
        })
    }

    /// Whether the template uses `field`.
    pub fn uses(&self, field: &str) -> bool {
        self.pieces
            .iter()
            .any(|piece| matches!(piece, Piece::Field(f) if f == field))
    }

    /// Fills in the fields; a field with no value becomes empty, and the spaces it leaves are
    /// folded so the text still reads well.
    pub fn render(&self, values: &HashMap<&str, String>) -> String {
        let mut out = String::new();
        for piece in &self.pieces {
            match piece {
                Piece::Text(text) => out.push_str(text),
                Piece::Field(field) => {
                    if let Some(value) = values.get(field.as_str()) {
                        out.push_str(value);
                    }
                }
            }
        }
        fold_spaces(&out)
    }

    pub fn source(&self) -> &str {
        &self.source
    }
}

impl fmt::Display for Template {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.source)
    }
}

/// Folds runs of spaces into one and trims the ends of each line.
fn fold_spaces(text: &str) -> String {
    text.lines()
        .map(|line| {
            line.split(' ')
                .filter(|w| !w.is_empty())
                .collect::<Vec<_>>()
                .join(" ")
        })
        .collect::<Vec<_>>()
        .join("\n")
        .trim()
        .to_string()
}

#[cfg(test)]
mod tests {
    use super::*;

    const FIELDS: &[&str] = &["business", "time"];

    #[test]
    fn renders_fields() {
        let template = Template::parse("Hi from {business} at {time}. {{ok}}", FIELDS).unwrap();
        let values = HashMap::from([
            ("business", "Acme".to_string()),
            ("time", "14:05".to_string()),
        ]);
        assert_eq!(template.render(&values), "Hi from Acme at 14:05. {ok}");
        assert!(template.uses("time"));
        assert!(!template.uses("caller"));
    }

    #[test]
    fn missing_values_leave_no_double_spaces() {
        let template = Template::parse("Thanks {time} for calling", FIELDS).unwrap();
        assert_eq!(template.render(&HashMap::new()), "Thanks for calling");
    }

    #[test]
    fn errors_say_what_is_wrong() {
        let err = Template::parse("Hi {nmae}", FIELDS).unwrap_err();
        assert_eq!(
            err.to_string(),
            "unknown field {nmae}; this message can use {business}, {time}"
        );
        assert_eq!(
            Template::parse("Hi {business", FIELDS).unwrap_err(),
            TemplateError::Unclosed { position: 3 }
        );
        assert_eq!(
            Template::parse("Hi }", FIELDS).unwrap_err(),
            TemplateError::StrayClose { position: 3 }
        );
        assert_eq!(
            Template::parse("Hi {}", FIELDS).unwrap_err(),
            TemplateError::EmptyField { position: 3 }
        );
    }
}
