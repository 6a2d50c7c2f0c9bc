//! The client for a local OpenAI-compatible chat-completions server (llama-cpp-python's server,
//! llama.cpp's llama-server, Ollama) that reads a caller's reply into a [`ModelProposal`]. Every
//! call is bounded by `profile.llm.timeout_ms` as a whole (connect, send, generate, read), the
//! server must be on this machine (loopback), and proxies are never used: nothing leaves the box.
//!
//! All three flavours are called at `POST {base_url}/v1/chat/completions`, so one request shape
//! and one response parser serve them; only the JSON-schema constraint differs:
//!
//! | flavour            | constraint in the request body                                           |
//! |--------------------|--------------------------------------------------------------------------|
//! | `llama_cpp_python` | `"response_format": {"type": "json_object", "schema": S}`                |
//! | `llama_server`     | `"response_format": {"type": "json_schema", "json_schema": {"name": N, "schema": S}}` |
//! | `ollama`           | `"response_format": {"type": "json_schema", "json_schema": {"name": N, "schema": S}}` |
//!
//! llama-server also takes the llama-cpp-python form and a top-level `json_schema`; it is given
//! the OpenAI form, which it turns into a grammar the same way (`oaicompat_chat_params_parse`).
//! Ollama (0.5 and later) honours `response_format` with a `json_schema` on its OpenAI-compatible
//! endpoint by grammar-constrained decoding, the same as `format` on its native `/api/chat`; the
//! OpenAI endpoint is used so that the answer has the same shape as the others
//! (`choices[0].message.content`) and `max_tokens` means the same.

use std::time::{Duration, Instant};

use serde_json::{Value, json};

use crate::core::conversation::{PROPERTY_TYPES, Question, QuestionKind};
use crate::core::proposal::{self, ModelProposal};

pub use crate::config::llm::{Flavour, LlmConfig, LlmSettings, defaults};

/// Where a server's chat completions are.
fn endpoint(settings: &LlmSettings) -> String {
    format!("{}/v1/chat/completions", settings.base_url)
}

/// Why the model gave nothing usable. Each one means: the built-in engine answers.
#[derive(Debug, thiserror::Error)]
pub enum LlmError {
    #[error("{0}")]
    Config(#[from] crate::config::llm::LlmConfigError),
    #[error(
        "the model server at {url} (profile.llm.base_url) did not answer within {ms} ms \
         (profile.llm.timeout_ms)"
    )]
    Timeout { url: String, ms: u128 },
    #[error(
        "could not reach the model server at {url} (profile.llm.base_url): {message}; is it running?"
    )]
    Connect { url: String, message: String },
    #[error(
        "the model server at {url} answered HTTP {status}: {body}; check that profile.llm.model \
         {model:?} is loaded there and profile.llm.flavour = \"{flavour}\" matches the server"
    )]
    Http {
        url: String,
        status: u16,
        body: String,
        model: String,
        flavour: &'static str,
    },
    #[error(
        "the model's answer is not the JSON asked for ({message}){hint}: {excerpt:?}; \
         profile.llm.model may be too small for it"
    )]
    Unparseable {
        message: String,
        excerpt: String,
        hint: &'static str,
    },
    #[error("the model refused to answer: {reason}")]
    Refused { reason: String },
    /// The last call timed out less than `profile.llm.timeout_ms` ago: the server is most likely
    /// still generating the abandoned answer (llama-cpp-python cannot cancel one), so this call
    /// is not made and the caller does not wait for nothing.
    #[error(
        "the model server at {url} (profile.llm.base_url) timed out {ago_ms} ms ago and is \
         probably still busy; not asked (profile.llm.timeout_ms)"
    )]
    Busy { url: String, ago_ms: u128 },
}

impl LlmError {
    /// The kind, for counters and logs: "timeout", "http", ...
    pub fn kind(&self) -> &'static str {
        match self {
            LlmError::Config(_) => "config",
            LlmError::Timeout { .. } => "timeout",
            LlmError::Connect { .. } => "connect",
            LlmError::Http { .. } => "http",
            LlmError::Unparseable { .. } => "unparseable",
            LlmError::Refused { .. } => "refused",
            LlmError::Busy { .. } => "busy",
        }
    }
}

/// Who said a line of the conversation so far.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Speaker {
    Business,
    Caller,
}

/// One line of the conversation so far.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Turn {
    pub from: Speaker,
    pub text: String,
}

/// The model's proposal with how long it took.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Extraction {
    pub proposal: ModelProposal,
    pub elapsed: Duration,
    /// The model's raw text, for the journal.
    pub raw: String,
}

/// A string of at most `max` characters, or null. Written as `anyOf` (not `"type": [..]`) so
/// every server's schema-to-grammar converter applies the length, which bounds the tokens the
/// model can spend on it.
fn nullable_string(max: usize) -> Value {
    json!({"anyOf": [{"type": "string", "maxLength": max}, {"type": "null"}]})
}

/// Characters a slot value may take in the model's answer.
const SLOT_CHARS: usize = 80;
/// Characters of `reply_to_caller`: one SMS.
const REPLY_TO_CALLER_CHARS: usize = 160;

/// The JSON schema the model's answer is constrained to: `{slots: {id: string|null, ...}}`, and
/// `reply_to_caller` with `phrasing`; a choice slot is one of its options or null. Nothing else
/// is asked for: on a 2-core CPU each token the model writes takes ~70 ms, and the slots of the
/// questions the caller is given (see `core::proposal::questions_for_model`: those asked and
/// the next open ones, three at most) are ~25 tokens where the older shape (every question, an
/// intent, a topic and a reply) was ~90: ~3 s against ~10 s per reply with
/// Qwen2.5-Coder-0.5B.
pub fn extraction_schema(questions: &[Question], phrasing: bool) -> Value {
    let mut slot_properties = serde_json::Map::new();
    for question in questions {
        let schema = match &question.kind {
            QuestionKind::Choice(options) => {
                let mut values: Vec<Value> = options.iter().map(|o| json!(o)).collect();
                values.push(Value::Null);
                json!({"enum": values})
            }
            QuestionKind::Property => {
                let mut values: Vec<Value> = PROPERTY_TYPES.iter().map(|o| json!(o)).collect();
                values.push(Value::Null);
                json!({"enum": values})
            }
            _ => nullable_string(SLOT_CHARS),
        };
        slot_properties.insert(question.id.clone(), schema);
    }
    let ids: Vec<&str> = questions.iter().map(|q| q.id.as_str()).collect();
    let mut properties = serde_json::Map::new();
    properties.insert(
        "slots".to_string(),
        json!({
            "type": "object",
            "properties": slot_properties,
            "required": ids,
            "additionalProperties": false
        }),
    );
    let mut required = vec!["slots"];
    if phrasing {
        properties.insert(
            "reply_to_caller".to_string(),
            nullable_string(REPLY_TO_CALLER_CHARS),
        );
        required.push("reply_to_caller");
    }
    json!({
        "type": "object",
        "properties": properties,
        "required": required,
        "additionalProperties": false
    })
}

fn kind_hint(kind: &QuestionKind) -> String {
    match kind {
        QuestionKind::Text => String::new(),
        QuestionKind::Choice(options) => format!(" (one of: {})", options.join(", ")),
        QuestionKind::YesNo => " (yes or no)".to_string(),
        QuestionKind::Postcode => " (a UK postcode)".to_string(),
        QuestionKind::DateTime => " (a day or time, in their words)".to_string(),
        QuestionKind::Number => " (a number)".to_string(),
        QuestionKind::Urgency => " (high, medium or low)".to_string(),
        QuestionKind::Registration => " (a UK vehicle registration, e.g. AB12 CDE)".to_string(),
        QuestionKind::Property => format!(" (one of: {})", PROPERTY_TYPES.join(", ")),
    }
}

fn cut(text: &str, chars: usize) -> String {
    text.chars().take(chars).collect()
}

/// The user message: the questions, the conversation so far (newest lines) and the reply.
pub fn user_prompt(questions: &[Question], so_far: &[Turn], reply: &str) -> String {
    let mut out = String::from("Questions (id: question):\n");
    for question in questions {
        let ask = question.ask.replace("{number}", "this number");
        out.push_str(&format!(
            "- {}: {}{}\n",
            question.id,
            ask,
            kind_hint(&question.kind)
        ));
    }
    let start = so_far.len().saturating_sub(defaults::HISTORY_TURNS);
    if let Some(recent) = so_far.get(start..)
        && !recent.is_empty()
    {
        out.push_str("\nConversation so far:\n");
        for turn in recent {
            let who = match turn.from {
                Speaker::Business => "Business",
                Speaker::Caller => "Caller",
            };
            out.push_str(&format!(
                "{who}: {}\n",
                cut(&turn.text, defaults::HISTORY_CHARS)
            ));
        }
    }
    out.push_str(&format!(
        "\nThe caller's new reply:\n{}\n\nAnswer with the JSON only.",
        cut(reply, defaults::REPLY_CHARS)
    ));
    out
}

/// The request body for the flavour.
pub fn request_body(
    settings: &LlmSettings,
    questions: &[Question],
    so_far: &[Turn],
    reply: &str,
) -> Value {
    let schema = extraction_schema(questions, settings.combine.phrasing);
    let mut body = json!({
        "model": settings.model,
        "messages": [
            {"role": "system", "content": settings.system_prompt},
            {"role": "user", "content": user_prompt(questions, so_far, reply)}
        ],
        "temperature": settings.temperature,
        "max_tokens": settings.max_tokens,
        "stream": false
    });
    let response_format = match settings.flavour {
        Flavour::LlamaCppPython => json!({"type": "json_object", "schema": schema}),
        Flavour::LlamaServer | Flavour::Ollama => json!({
            "type": "json_schema",
            "json_schema": {"name": "textback_reply", "schema": schema}
        }),
    };
    if let Some(object) = body.as_object_mut() {
        object.insert("response_format".to_string(), response_format);
    }
    body
}

/// A client for one profile's model server.
#[derive(Debug, Clone)]
pub struct LlmClient {
    settings: LlmSettings,
    http: reqwest::Client,
    /// When the last call timed out: calls within one timeout of it are not made.
    timed_out_at: std::sync::Arc<std::sync::Mutex<Option<Instant>>>,
}

impl LlmClient {
    pub fn new(settings: LlmSettings) -> Result<LlmClient, LlmError> {
        let http = reqwest::Client::builder()
            // Nothing leaves the box: HTTP_PROXY and friends are ignored.
            .no_proxy()
            .connect_timeout(settings.timeout)
            .timeout(settings.timeout)
            .build()
            .map_err(|e| LlmError::Connect {
                url: settings.base_url.clone(),
                message: e.to_string(),
            })?;
        Ok(LlmClient {
            settings,
            http,
            timed_out_at: Default::default(),
        })
    }

    pub fn settings(&self) -> &LlmSettings {
        &self.settings
    }

    /// Asks the model to read `reply`. Returns within `settings.timeout` whatever the server
    /// does; the proposal is unchecked (see `core::proposal::check_extraction`).
    pub async fn extract(
        &self,
        questions: &[Question],
        so_far: &[Turn],
        reply: &str,
    ) -> Result<Extraction, LlmError> {
        let started = Instant::now();
        let bound = self.settings.timeout;
        if let Some(at) = *self.last_timeout()
            && started.duration_since(at) < bound
        {
            return Err(LlmError::Busy {
                url: self.settings.base_url.clone(),
                ago_ms: started.duration_since(at).as_millis(),
            });
        }
        let body = request_body(&self.settings, questions, so_far, reply);
        let result = match tokio::time::timeout(bound, self.call(&body)).await {
            Ok(result) => result,
            Err(_) => Err(self.timeout()),
        };
        if matches!(result, Err(LlmError::Timeout { .. })) {
            *self.last_timeout() = Some(Instant::now());
        }
        let content = result?;
        let proposal = proposal::parse_proposal(&content).map_err(|e| LlmError::Unparseable {
            message: e.to_string(),
            excerpt: cut(&content, 200),
            hint: "",
        })?;
        Ok(Extraction {
            proposal,
            elapsed: started.elapsed(),
            raw: content,
        })
    }

    /// Forgets a timeout: the next call is made even within the bound of the last one. For
    /// replays, whose replies come microseconds apart where a caller's come minutes apart.
    pub fn forget_timeout(&self) {
        *self.last_timeout() = None;
    }

    fn last_timeout(&self) -> std::sync::MutexGuard<'_, Option<Instant>> {
        self.timed_out_at
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner)
    }

    fn timeout(&self) -> LlmError {
        LlmError::Timeout {
            url: self.settings.base_url.clone(),
            ms: self.settings.timeout.as_millis(),
        }
    }

    /// Posts the request and returns the message content.
    async fn call(&self, body: &Value) -> Result<String, LlmError> {
        let url = endpoint(&self.settings);
        let mut response = self
            .http
            .post(&url)
            .json(body)
            .send()
            .await
            .map_err(|e| self.transport(e))?;
        let status = response.status();
        let mut bytes = Vec::new();
        while let Some(chunk) = response.chunk().await.map_err(|e| self.transport(e))? {
            let room = defaults::MAX_RESPONSE_BYTES.saturating_sub(bytes.len());
            bytes.extend_from_slice(chunk.get(..room.min(chunk.len())).unwrap_or(&[]));
            if bytes.len() >= defaults::MAX_RESPONSE_BYTES {
                break;
            }
        }
        let text = String::from_utf8_lossy(&bytes);
        if !status.is_success() {
            return Err(LlmError::Http {
                url: self.settings.base_url.clone(),
                status: status.as_u16(),
                body: cut(text.trim(), 300),
                model: self.settings.model.clone(),
                flavour: self.settings.flavour.as_str(),
            });
        }
        message_content(&text)
    }

    fn transport(&self, error: reqwest::Error) -> LlmError {
        if error.is_timeout() {
            return self.timeout();
        }
        LlmError::Connect {
            url: self.settings.base_url.clone(),
            message: error.to_string(),
        }
    }
}

/// `choices[0].message.content` of a chat-completions answer, or why there is none.
pub fn message_content(body: &str) -> Result<String, LlmError> {
    let unparseable = |message: String, hint: &'static str| LlmError::Unparseable {
        message,
        excerpt: cut(body, 200),
        hint,
    };
    let value: Value = serde_json::from_str(body)
        .map_err(|e| unparseable(format!("the server's answer is not JSON: {e}"), ""))?;
    let choice = value
        .get("choices")
        .and_then(|c| c.get(0))
        .ok_or_else(|| unparseable("no choices in the server's answer".to_string(), ""))?;
    let message = choice.get("message");
    if let Some(refusal) = message
        .and_then(|m| m.get("refusal"))
        .and_then(Value::as_str)
        .filter(|r| !r.trim().is_empty())
    {
        return Err(LlmError::Refused {
            reason: cut(refusal, 200),
        });
    }
    let finish = choice.get("finish_reason").and_then(Value::as_str);
    if finish == Some("content_filter") {
        return Err(LlmError::Refused {
            reason: "finish_reason content_filter".to_string(),
        });
    }
    let content = message
        .and_then(|m| m.get("content"))
        .and_then(Value::as_str)
        .unwrap_or("");
    if content.trim().is_empty() {
        return Err(unparseable("empty message content".to_string(), ""));
    }
    if finish == Some("length") && proposal::parse_proposal(content).is_err() {
        return Err(unparseable(
            "cut off at max_tokens".to_string(),
            "; raise profile.llm.max_tokens",
        ));
    }
    Ok(content.to_string())
}

/// One call with fresh settings (builds a client each time; a daemon keeps an [`LlmClient`]).
pub async fn extract(
    settings: &LlmSettings,
    questions: &[Question],
    so_far: &[Turn],
    reply: &str,
) -> Result<Extraction, LlmError> {
    LlmClient::new(settings.clone())?
        .extract(questions, so_far, reply)
        .await
}
