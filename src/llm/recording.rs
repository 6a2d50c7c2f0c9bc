//! A recording of a model's answers, for scoring a corpus again without asking the model again
//! (`textback dialogue score --llm FILE --llm-recording FILE`). Asking SmolLM2-135M about every
//! reply of tests/dialogues takes well over an hour on two cores; with the answers recorded, a
//! change to the checks or to how the answers are combined with the engine's is scored in
//! seconds, and only the requests that change (a conversation that went another way) are asked.
//!
//! One JSON object per line: the SHA-256 of the request body (model, prompts, schema,
//! temperature: anything that would change the answer changes the key), the model's raw answer
//! or why there was none, and how long it took. A line that cannot be read (a run killed
//! mid-write) is skipped and reported; it is asked again.

use std::collections::HashMap;
use std::fs::{File, OpenOptions};
use std::io::{BufRead, BufReader, Write};
use std::path::{Path, PathBuf};

use serde::{Deserialize, Serialize};
use serde_json::Value;
use sha2::{Digest, Sha256};

/// What the model did with one request.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Recorded {
    /// The model's answer, as it came (parsed again on replay).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub raw: Option<String>,
    /// Why there was no usable answer (a timeout, an error, an answer that is not JSON).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub error: Option<String>,
    pub elapsed_ms: u64,
}

#[derive(Serialize, Deserialize)]
struct Line {
    key: String,
    #[serde(flatten)]
    recorded: Recorded,
}

/// The answers read from a recording file, and the file, open for the new ones.
pub struct Recording {
    path: PathBuf,
    answers: HashMap<String, Recorded>,
    file: File,
    /// Lines that could not be read.
    pub skipped: usize,
}

/// Why a recording could not be used.
#[derive(Debug, thiserror::Error)]
pub enum RecordingError {
    #[error("{path}: {error}; check the path, or give a new file to start a recording")]
    Open {
        path: PathBuf,
        error: std::io::Error,
    },
    #[error("{path}: writing an answer: {error}; is the disk full?")]
    Write {
        path: PathBuf,
        error: std::io::Error,
    },
}

/// The key of a request: the SHA-256 of its JSON body, in hex.
pub fn key(body: &Value) -> String {
    let hash = Sha256::digest(body.to_string().as_bytes());
    hash.iter().map(|b| format!("{b:02x}")).collect()
}

impl Recording {
    /// Opens (or creates) the recording at `path` and reads the answers in it.
    pub fn open(path: &Path) -> Result<Recording, RecordingError> {
        let open_error = |error| RecordingError::Open {
            path: path.to_path_buf(),
            error,
        };
        let mut file = OpenOptions::new()
            .create(true)
            .append(true)
            .read(true)
            .open(path)
            .map_err(open_error)?;
        let mut answers = HashMap::new();
        let mut skipped = 0;
        for line in BufReader::new(File::open(path).map_err(open_error)?).lines() {
            let line = line.map_err(open_error)?;
            if line.trim().is_empty() {
                continue;
            }
            match serde_json::from_str::<Line>(&line) {
                Ok(line) => {
                    answers.insert(line.key, line.recorded);
                }
                Err(_) => skipped += 1,
            }
        }
        // A torn last line is ended, so that the next answer starts a line of its own.
        let content = std::fs::read(path).map_err(open_error)?;
        if content.last().is_some_and(|&b| b != b'\n') {
            file.write_all(b"\n").map_err(open_error)?;
        }
        Ok(Recording {
            path: path.to_path_buf(),
            answers,
            file,
            skipped,
        })
    }

    /// How many answers the recording holds.
    pub fn len(&self) -> usize {
        self.answers.len()
    }

    pub fn is_empty(&self) -> bool {
        self.answers.is_empty()
    }

    /// The recorded answer to the request with this key.
    pub fn get(&self, key: &str) -> Option<&Recorded> {
        self.answers.get(key)
    }

    /// Records an answer: appended to the file at once (a run stopped halfway keeps what it
    /// asked).
    pub fn put(&mut self, key: String, recorded: Recorded) -> Result<(), RecordingError> {
        let line = Line {
            key: key.clone(),
            recorded: recorded.clone(),
        };
        let mut text = serde_json::to_string(&line).unwrap_or_default();
        text.push('\n');
        self.file
            .write_all(text.as_bytes())
            .map_err(|error| RecordingError::Write {
                path: self.path.clone(),
                error,
            })?;
        self.answers.insert(key, recorded);
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    #[test]
    fn answers_are_kept_across_opens_and_a_torn_line_is_skipped() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("smol.jsonl");
        let body = json!({"model": "m", "messages": [{"role": "user", "content": "its lucy"}]});
        let other = json!({"model": "m", "messages": [{"role": "user", "content": "asap"}]});
        assert_ne!(key(&body), key(&other));
        {
            let mut recording = Recording::open(&path).unwrap();
            assert!(recording.is_empty());
            recording
                .put(
                    key(&body),
                    Recorded {
                        raw: Some(r#"{"slots":{"name":"Lucy"}}"#.to_string()),
                        error: None,
                        elapsed_ms: 4800,
                    },
                )
                .unwrap();
            recording
                .put(
                    key(&other),
                    Recorded {
                        raw: None,
                        error: Some("timed out after 8000 ms".to_string()),
                        elapsed_ms: 8000,
                    },
                )
                .unwrap();
        }
        // A run killed mid-write leaves half a line.
        std::fs::OpenOptions::new()
            .append(true)
            .open(&path)
            .unwrap()
            .write_all(b"{\"key\":\"ab")
            .unwrap();
        let mut recording = Recording::open(&path).unwrap();
        assert_eq!(recording.len(), 2);
        assert_eq!(recording.skipped, 1);
        // An answer recorded after the torn line is read back whole.
        let third = json!({"model": "m", "messages": [{"role": "user", "content": "no rush"}]});
        recording
            .put(
                key(&third),
                Recorded {
                    raw: Some("{}".to_string()),
                    error: None,
                    elapsed_ms: 1,
                },
            )
            .unwrap();
        let recording = Recording::open(&path).unwrap();
        assert_eq!(recording.len(), 3);
        assert_eq!(recording.skipped, 1);
        assert_eq!(
            recording.get(&key(&body)).and_then(|r| r.raw.as_deref()),
            Some(r#"{"slots":{"name":"Lucy"}}"#)
        );
        assert_eq!(recording.get(&key(&other)).unwrap().elapsed_ms, 8000);
        assert!(recording.get("0000").is_none());
    }

    #[test]
    fn an_unreadable_path_says_which() {
        let err = Recording::open(Path::new("/nonexistent-dir/x.jsonl"))
            .err()
            .unwrap();
        assert!(
            err.to_string().contains("/nonexistent-dir/x.jsonl"),
            "{err}"
        );
    }
}
