//! Scores every conversation in tests/dialogues/*.toml with `textback dialogue score`, the command
//! a business runs on its own conversations, and holds the engine to the corpus's thresholds.
//! Every miss is printed; run with `-- --nocapture` to see them and the table.

mod common;

use std::path::Path;
use std::process::Command;

/// What the built-in engine must score on tests/dialogues. Raise these as the engine improves;
/// never lower them to let a change through.
const MIN_SLOTS_PERCENT: &str = "98";
const MIN_OUTCOMES_PERCENT: &str = "96";
const MAX_INVENTED: &str = "0";
const MAX_LONG_TEXTS: &str = "0";
const MIN_CASES: usize = 250;

fn textback() -> Command {
    Command::new(env!("CARGO_BIN_EXE_textback"))
}

#[test]
fn the_corpus_scores_above_its_thresholds() {
    let root = Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/dialogues");
    let output = textback()
        .args(["dialogue", "score", "--misses"])
        .arg(&root)
        .args(["--min-slots", MIN_SLOTS_PERCENT])
        .args(["--min-outcomes", MIN_OUTCOMES_PERCENT])
        .args(["--max-invented", MAX_INVENTED])
        .args(["--max-long-texts", MAX_LONG_TEXTS])
        .output()
        .expect("run textback dialogue score");
    let stdout = String::from_utf8_lossy(&output.stdout);
    println!("{stdout}");
    eprintln!("{}", String::from_utf8_lossy(&output.stderr));
    assert!(
        output.status.success(),
        "the corpus scored below its thresholds (see the table above)"
    );
    let json = textback()
        .args(["dialogue", "score", "--json"])
        .arg(&root)
        .output()
        .expect("run textback dialogue score --json");
    let value: serde_json::Value = serde_json::from_slice(&json.stdout).expect("score JSON");
    let cases = value["total"]["cases"].as_u64().unwrap_or(0) as usize;
    assert!(
        cases >= MIN_CASES,
        "{cases} cases; the corpus keeps at least {MIN_CASES}"
    );
}

#[test]
fn score_fails_below_a_threshold_and_says_which() {
    let root = Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/dialogues");
    let output = textback()
        .args(["dialogue", "score"])
        .arg(root.join("plumber.toml"))
        .args(["--min-slots", "100.1", "--max-p99-ms", "100000"])
        .output()
        .expect("run textback dialogue score");
    assert_eq!(output.status.code(), Some(1));
    let stdout = String::from_utf8_lossy(&output.stdout);
    assert!(
        stdout.contains("below threshold: slots right") && stdout.contains("--min-slots 100.1"),
        "{stdout}"
    );
    assert!(!stdout.contains("--max-p99-ms"), "{stdout}");
}

#[test]
fn score_names_a_missing_profile() {
    let dir = tempfile::tempdir().expect("temporary directory");
    let file = dir.path().join("cases.toml");
    std::fs::write(
        &file,
        r#"
[[case]]
name = "no such profile"
profile = "nowhere"
caller = "07700 900123"
messages = ["hi"]
[case.expect]
outcome = "open"
"#,
    )
    .expect("write cases");
    let output = textback()
        .args(["dialogue", "score"])
        .arg(&file)
        .output()
        .expect("run textback dialogue score");
    assert!(!output.status.success());
    let stderr = String::from_utf8_lossy(&output.stderr);
    assert!(
        stderr.contains("profile \"nowhere\"") && stderr.contains("--profiles"),
        "{stderr}"
    );
}

/// `dialogue score --llm`: the corpus answered as the daemon answers with a local model. This
/// one copies the caller's name into the reason and offers "MOT and service" as the
/// registration: both are refused by the checks, nothing is invented, and the engine's answers
/// stand.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn score_with_a_model_refuses_what_the_checks_refuse() {
    let (url, requests) = common::llm::scripted_server(
        r#"{"slots": {"name": "Dan", "reason": "Dan", "reg": "MOT and service"},
            "intent": "answer", "question_topic": null, "reply_to_caller": null}"#,
    )
    .await;
    let dir = tempfile::tempdir().expect("temporary directory");
    let llm = dir.path().join("llm.toml");
    std::fs::write(
        &llm,
        format!(
            "[llm]\nbase_url = \"{url}\"\nmodel = \"test\"\nflavour = \"llama_cpp_python\"\ntimeout_ms = 3000\n"
        ),
    )
    .expect("write llm.toml");
    let root = Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/dialogues");
    let output = tokio::task::spawn_blocking(move || {
        textback()
            .args(["dialogue", "score", "--json", "--llm"])
            .arg(&llm)
            .arg(root.join("garage.toml"))
            .output()
            .expect("run textback dialogue score --llm")
    })
    .await
    .expect("score");
    assert!(
        output.status.success(),
        "{}",
        String::from_utf8_lossy(&output.stderr)
    );
    let value: serde_json::Value = serde_json::from_slice(&output.stdout).expect("score JSON");
    let engine = &value["total"];
    let model = &value["total_with_model"];
    assert_eq!(model["cases"], engine["cases"]);
    assert_eq!(model["slots_right"], engine["slots_right"], "{value}");
    assert_eq!(model["invented"], 0);
    let row = value["corpora"]
        .as_array()
        .and_then(|rows| rows.iter().find(|r| r["with"] == "model"))
        .expect("a row with the model");
    let asked = row["model"]["asked"].as_u64().unwrap_or(0);
    assert!(asked > 0, "{row}");
    assert_eq!(
        requests.load(std::sync::atomic::Ordering::SeqCst) as u64,
        asked,
        "every reply went to the model once"
    );
    assert!(
        row["model"]["values_refused"].as_u64().unwrap_or(0) > 0,
        "{row}"
    );
}
