//! The reply path with a local model, and the first text held back: the real daemon, the virtual
//! modem on a real pseudo-terminal, SQLite, and model servers on loopback that answer a fixed
//! proposal or never answer at all. (The real model, SmolLM2 on llama-cpp-python, is driven
//! through the daemon in tests/llm_local.rs.)

mod common;

use std::time::Duration;

use common::{CALLER, Harness};
use textback::modem::virtual_modem::Options;

/// The usual profile with `keys` added to it (before its questions).
fn with_profile_keys(keys: &str) -> impl Fn(String) -> String + '_ {
    move |text: String| text.replace("closing_message =", &format!("{keys}\nclosing_message ="))
}

/// `[profile.llm]` for a server at `url`.
fn llm_table(url: &str, timeout_ms: u64, phrasing: bool) -> String {
    format!(
        r#"
[profile.llm]
base_url = "{url}"
model = "test-model"
flavour = "llama_cpp_python"
timeout_ms = {timeout_ms}
phrasing = {phrasing}
"#
    )
}

/// The usual config with a model: `[profile.llm]` must come before `[[profile.question]]`.
fn harness_with_model(url: &str, timeout_ms: u64, phrasing: bool) -> Harness {
    let table = llm_table(url, timeout_ms, phrasing);
    Harness::with_edit(Options::default(), "", move |text: String| {
        text.replacen(
            "[[profile.question]]",
            &format!("{table}\n[[profile.question]]"),
            1,
        )
    })
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_first_text_can_be_held_and_a_reply_releases_it() {
    let harness = Harness::with_edit(
        Options::default(),
        "",
        with_profile_keys("first_text_delay_seconds = 2"),
    );
    let running = harness.start().await;
    harness.first_text_confirmed().await;
    // Sent no earlier than 2 s after the call was recorded (a lower bound: no timing flake).
    let held = harness.query_i64(
        "SELECT min(p.sent_ms) - (SELECT at_ms FROM calls WHERE id = 1) FROM message_parts p",
    );
    assert!(held >= 2000, "the first text went {held} ms after the call");
    let journal = harness.query_strings("SELECT detail FROM journal WHERE step = 'queued'");
    assert!(journal[0].contains("held for 2 s"), "{journal:?}");
    running.stop().await.unwrap();

    // Held for 10 minutes, but the caller texts first: the first text goes at once, then the
    // answer to the reply, in that order.
    let harness = Harness::with_edit(
        Options::default(),
        "",
        with_profile_keys("first_text_delay_seconds = 600"),
    );
    let running = harness.start().await;
    harness.modem.call(Some(common::CALLER_NATIONAL), 2).await;
    assert_eq!(
        harness.wait_count("SELECT count(*) FROM messages", 1).await,
        1
    );
    tokio::time::sleep(Duration::from_millis(300)).await;
    assert!(harness.modem.sent().is_empty(), "the first text was held");
    harness
        .modem
        .receive_sms(CALLER, "Hi, this is Sarah Jones")
        .await;
    let texts = harness.texts_to_caller(2).await;
    assert_eq!(texts.len(), 2, "{texts:?}");
    assert!(texts[0].contains("Sorry we missed your call"), "{texts:?}");
    assert!(
        texts[1].contains("What do you need help with?"),
        "{texts:?}"
    );
    running.stop().await.unwrap();
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_models_proposal_is_checked_before_any_of_it_is_used() {
    // The model reads the name right, invents a reason and a postcode the caller never wrote,
    // and words its thanks with a price in it the first time.
    let (url, requests) = common::llm::scripted_server(
        r#"{"slots": {"name": "Sarah Jones", "reason": "Burst pipe", "postcode": "SW1A 1AA"},
            "intent": "answer", "question_topic": null,
            "reply_to_caller": "Thanks Sarah, a visit costs £60."}"#,
    )
    .await;
    let harness = harness_with_model(&url, 3000, true);
    let running = harness.start().await;
    harness.first_text_confirmed().await;
    harness
        .modem
        .receive_sms(CALLER, "Hi it's Sarah Jones")
        .await;
    let texts = harness.texts_to_caller(2).await;
    assert_eq!(texts.len(), 2, "{texts:?}");
    // The engine asks for the reason next: the invented one was not used, nor the price.
    assert!(
        texts[1].contains("What do you need help with?"),
        "{texts:?}"
    );
    assert!(!texts[1].contains('£'), "{texts:?}");
    assert_eq!(requests.load(std::sync::atomic::Ordering::SeqCst), 1);
    let model = harness.query_strings("SELECT detail FROM journal WHERE step = 'model'");
    assert_eq!(model.len(), 1, "{model:?}");
    assert!(model[0].contains(r#"name="Sarah Jones""#), "{model:?}");
    assert!(
        model[0].contains(r#"reason="Burst pipe" (not in what the caller wrote)"#),
        "{model:?}"
    );
    assert!(model[0].contains(r#"postcode="SW1A 1AA""#), "{model:?}");
    // Nothing is left waiting; the reply is in the transcript as received.
    assert_eq!(
        harness.query_i64("SELECT count(*) FROM messages WHERE state = 'waiting'"),
        0
    );
    // The rest of the conversation: the lead has the caller's answers, not the model's.
    harness
        .modem
        .receive_sms(CALLER, "Boiler leaking in the loft")
        .await;
    harness.texts_to_caller(3).await;
    harness.modem.receive_sms(CALLER, "SW11 4AB").await;
    assert_eq!(harness.wait_count("SELECT count(*) FROM leads", 1).await, 1);
    let answers = harness.query_strings("SELECT answers FROM leads");
    assert!(
        answers[0].contains("Boiler leaking in the loft"),
        "{answers:?}"
    );
    assert!(answers[0].contains("SW11 4AB"), "{answers:?}");
    assert!(!answers[0].contains("SW1A"), "{answers:?}");
    running.stop().await.unwrap();
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_stalled_model_is_cut_off_and_two_replies_are_answered_in_order() {
    let url = common::llm::stalled_server().await;
    let harness = harness_with_model(&url, 1000, false);
    let running = harness.start().await;
    harness.first_text_confirmed().await;
    // Two replies back to back, while the model is still (never) thinking about the first, which
    // the engine cannot read as a name (so the model is asked); the second waits behind it.
    harness.modem.receive_sms(CALLER, "hang on").await;
    harness.modem.receive_sms(CALLER, "Sarah Jones").await;
    let texts = harness.texts_to_caller(3).await;
    assert_eq!(texts.len(), 3, "{texts:?}");
    assert!(texts[1].contains("Who am I speaking to?"), "{texts:?}");
    assert!(
        texts[2].contains("What do you need help with?"),
        "{texts:?}"
    );
    // The first reply waited for the bound, no longer (a generous upper margin: the point is
    // that a model that never answers does not hold the caller).
    let waited = harness.query_i64(
        "SELECT (SELECT created_ms FROM messages WHERE direction = 'out' AND id > r.id ORDER BY id LIMIT 1) - r.created_ms
         FROM messages r WHERE r.direction = 'in' ORDER BY r.id LIMIT 1",
    );
    assert!(
        (1000..5000).contains(&waited),
        "the caller waited {waited} ms"
    );
    let answers = harness.query_strings("SELECT engine_state FROM conversations WHERE id = 1");
    assert!(answers[0].contains("\"Sarah Jones\""), "{answers:?}");
    // The model was asked about the first reply only: the engine read the second whole, so
    // nothing the model could say would change its answer.
    let model =
        harness.query_strings("SELECT detail FROM journal WHERE step = 'model' ORDER BY id");
    assert_eq!(model.len(), 1, "{model:?}");
    assert!(model[0].contains("built-in engine answered"), "{model:?}");
    running.stop().await.unwrap();
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_reply_the_engine_reads_whole_does_not_wait_for_the_model() {
    let (url, requests) =
        common::llm::scripted_server(r#"{"slots": {"name": "Sarah Jones"}}"#).await;
    let harness = harness_with_model(&url, 5000, false);
    let running = harness.start().await;
    harness.first_text_confirmed().await;
    harness.modem.receive_sms(CALLER, "Sarah Jones").await;
    let texts = harness.texts_to_caller(2).await;
    assert!(
        texts[1].contains("What do you need help with?"),
        "{texts:?}"
    );
    assert_eq!(requests.load(std::sync::atomic::Ordering::SeqCst), 0);
    // An answer the engine cannot read is the model's to try.
    harness.modem.receive_sms(CALLER, "erm").await;
    let texts = harness.texts_to_caller(3).await;
    assert_eq!(texts.len(), 3, "{texts:?}");
    assert_eq!(requests.load(std::sync::atomic::Ordering::SeqCst), 1);
    running.stop().await.unwrap();
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_reply_waiting_for_the_model_at_shutdown_is_answered_after_the_restart() {
    let url = common::llm::stalled_server().await;
    let harness = harness_with_model(&url, 6000, false);
    let running = harness.start().await;
    harness.first_text_confirmed().await;
    harness.modem.receive_sms(CALLER, "hang on").await;
    assert_eq!(
        harness
            .wait_count("SELECT count(*) FROM messages WHERE state = 'waiting'", 1)
            .await,
        1
    );
    running.stop().await.unwrap();
    assert_eq!(
        harness.query_i64("SELECT count(*) FROM messages WHERE state = 'waiting'"),
        1,
        "the reply is still waiting, on disk"
    );
    assert_eq!(harness.texts_to_caller(1).await.len(), 1);

    // The model is still stuck: the next start asks it again, and the engine answers when the
    // reply has waited the bound (6 s from its arrival, not from the restart).
    let running = harness.start().await;
    let texts = harness.texts_to_caller(2).await;
    assert_eq!(texts.len(), 2, "{texts:?}");
    assert!(texts[1].contains("Who am I speaking to?"), "{texts:?}");
    assert_eq!(
        harness.query_i64("SELECT count(*) FROM messages WHERE state = 'waiting'"),
        0
    );
    running.stop().await.unwrap();
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn stop_overtakes_a_reply_waiting_for_the_model() {
    let url = common::llm::stalled_server().await;
    let harness = harness_with_model(&url, 1000, false);
    let running = harness.start().await;
    harness.first_text_confirmed().await;
    harness.modem.receive_sms(CALLER, "hang on").await;
    assert_eq!(
        harness
            .wait_count("SELECT count(*) FROM messages WHERE state = 'waiting'", 1)
            .await,
        1
    );
    harness.modem.receive_sms(CALLER, "STOP").await;
    let texts = harness.texts_to_caller(2).await;
    assert_eq!(texts.len(), 2, "{texts:?}");
    assert!(
        texts[1].contains("You won't get any more texts"),
        "{texts:?}"
    );
    // The model's bound passes for the reply that waited: it is not answered after the STOP.
    tokio::time::sleep(Duration::from_millis(1500)).await;
    running.stop().await.unwrap();
    assert_eq!(harness.texts_to_caller(2).await.len(), 2);
    assert_eq!(
        harness.query_i64(
            "SELECT count(*) FROM messages WHERE direction = 'out' AND state = 'queued'"
        ),
        0
    );
    let journal = harness.query_strings("SELECT detail FROM journal WHERE step = 'opt_out'");
    assert!(
        journal
            .iter()
            .any(|j| j.contains("1 earlier reply not answered")),
        "{journal:?}"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn stop_cancels_a_first_text_still_held() {
    let harness = Harness::with_edit(
        Options::default(),
        "",
        with_profile_keys("first_text_delay_seconds = 600"),
    );
    let running = harness.start().await;
    harness.modem.call(Some(common::CALLER_NATIONAL), 2).await;
    assert_eq!(
        harness.wait_count("SELECT count(*) FROM messages", 1).await,
        1
    );
    harness.modem.receive_sms(CALLER, "stop").await;
    let texts = harness.texts_to_caller(1).await;
    assert_eq!(texts.len(), 1, "{texts:?}");
    assert!(
        texts[0].contains("You won't get any more texts"),
        "{texts:?}"
    );
    running.stop().await.unwrap();
    assert_eq!(
        harness.query_strings(
            "SELECT CASE WHEN state = 'delivered' THEN 'sent' ELSE state END FROM messages WHERE direction = 'out' ORDER BY id"
        ),
        ["cancelled", "sent"]
    );
}
