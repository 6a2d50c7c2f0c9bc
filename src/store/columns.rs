//! The stored enums (`domain/stored.rs`) as SQLite values: each is written as its word and read
//! back through `parse`, so a word no version of textback writes is an error naming the column's
//! type, never a silent default.

use rusqlite::types::{FromSql, FromSqlError, FromSqlResult, ToSql, ToSqlOutput, ValueRef};

use crate::domain::{
    CallDecision, CallSource, ChannelKind, ConversationState, DeliveryState, Direction, FaultKind,
    JournalStep, LeadState, MessageState, OptOutSource, PartStatus, RegistrationState,
    SelfTestState,
};

/// A word in a column that no variant of the enum has.
#[derive(Debug, thiserror::Error)]
#[error("{word:?} is not a {what} this version of textback knows")]
struct UnknownWord {
    what: &'static str,
    word: String,
}

macro_rules! column {
    ($($name:ident: $what:literal),+ $(,)?) => {
        $(
            impl ToSql for $name {
                fn to_sql(&self) -> rusqlite::Result<ToSqlOutput<'_>> {
                    Ok(ToSqlOutput::from(self.as_str()))
                }
            }

            impl FromSql for $name {
                fn column_result(value: ValueRef<'_>) -> FromSqlResult<Self> {
                    let word = value.as_str()?;
                    $name::parse(word).ok_or_else(|| {
                        FromSqlError::Other(Box::new(UnknownWord {
                            what: $what,
                            word: word.to_string(),
                        }))
                    })
                }
            }
        )+
    };
}

column! {
    CallSource: "call source",
    CallDecision: "call decision",
    ConversationState: "conversation state",
    Direction: "message direction",
    MessageState: "message state",
    PartStatus: "part status",
    ChannelKind: "channel",
    DeliveryState: "delivery state",
    OptOutSource: "opt-out source",
    RegistrationState: "registration state",
    JournalStep: "journal step",
    LeadState: "lead state",
    FaultKind: "modem fault kind",
    SelfTestState: "self-test state",
}

#[cfg(test)]
mod tests {
    use super::*;
    use rusqlite::Connection;

    /// The words the statements in `tx.rs` and `sip.rs` spell out in SQL (`state = 'queued'`)
    /// are words of the stored enums: a misspelt state in a query would match nothing, silently.
    #[test]
    fn every_word_the_queries_spell_out_is_a_stored_word() {
        let mut known: Vec<&str> = Vec::new();
        known.extend(CallSource::ALL.iter().map(|v| v.as_str()));
        known.extend(CallDecision::ALL.iter().map(|v| v.as_str()));
        known.extend(ConversationState::ALL.iter().map(|v| v.as_str()));
        known.extend(Direction::ALL.iter().map(|v| v.as_str()));
        known.extend(MessageState::ALL.iter().map(|v| v.as_str()));
        known.extend(PartStatus::ALL.iter().map(|v| v.as_str()));
        known.extend(ChannelKind::ALL.iter().map(|v| v.as_str()));
        known.extend(DeliveryState::ALL.iter().map(|v| v.as_str()));
        known.extend(OptOutSource::ALL.iter().map(|v| v.as_str()));
        known.extend(RegistrationState::ALL.iter().map(|v| v.as_str()));
        known.extend(JournalStep::ALL.iter().map(|v| v.as_str()));
        known.extend(LeadState::ALL.iter().map(|v| v.as_str()));
        known.extend(FaultKind::ALL.iter().map(|v| v.as_str()));
        known.extend(SelfTestState::ALL.iter().map(|v| v.as_str()));
        // Labels of /metrics rows, not stored values.
        let labels = [
            "calls",
            "sms_out",
            "sms_in",
            "leads",
            "deliveries",
            "notices",
            "complete",
            "incomplete",
        ];
        let mut unknown = Vec::new();
        for source in [
            include_str!("tx.rs"),
            include_str!("sip.rs"),
            include_str!("health.rs"),
            include_str!("notices.rs"),
        ] {
            for line in source.lines().filter(|l| !l.trim_start().starts_with("//")) {
                for (index, piece) in line.split('\'').enumerate() {
                    let word = index % 2 == 1
                        && !piece.is_empty()
                        && piece.chars().all(|c| c.is_ascii_lowercase() || c == '_')
                        && piece != "_";
                    if word && !known.contains(&piece) && !labels.contains(&piece) {
                        unknown.push(format!("{piece:?} in {}", line.trim()));
                    }
                }
            }
        }
        assert!(unknown.is_empty(), "words no stored enum has: {unknown:#?}");
        // The check reads the queries: it sees the states they name.
        assert!(include_str!("tx.rs").contains("state = 'queued'"));
    }

    #[test]
    fn written_as_the_word_and_read_back() {
        let connection = Connection::open_in_memory().unwrap();
        connection.execute("CREATE TABLE t (v TEXT)", []).unwrap();
        connection
            .execute("INSERT INTO t VALUES (?1)", [MessageState::Cancelled])
            .unwrap();
        let word: String = connection
            .query_row("SELECT v FROM t", [], |r| r.get(0))
            .unwrap();
        assert_eq!(word, "cancelled");
        let back: MessageState = connection
            .query_row("SELECT v FROM t", [], |r| r.get(0))
            .unwrap();
        assert_eq!(back, MessageState::Cancelled);
        connection
            .execute("UPDATE t SET v = 'exploded'", [])
            .unwrap();
        let error = connection
            .query_row("SELECT v FROM t", [], |r| r.get::<_, MessageState>(0))
            .unwrap_err();
        assert!(
            error
                .to_string()
                .contains("\"exploded\" is not a message state"),
            "{error}"
        );
    }
}
