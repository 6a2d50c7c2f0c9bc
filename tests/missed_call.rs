//! The daemon in-process, driving a virtual modem over a real pseudo-terminal, with a real SQLite
//! file: a missed call becomes one SMS, replies move the conversation on, and a lead comes out.

mod common;

use common::{CALLER, CALLER_NATIONAL, Harness, WAIT};

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_missed_call_produces_exactly_one_sms_submit_to_the_caller() {
    let harness = Harness::new();
    let running = harness.start().await;
    harness.modem.call(Some(CALLER_NATIONAL), 3).await;

    let sent = harness.modem.wait_sent(1, WAIT).await;
    assert_eq!(sent.len(), 1, "one SMS-SUBMIT");
    let first = &sent[0];
    assert_eq!(first.to, CALLER);
    assert!(
        first
            .text
            .starts_with("Hi, it's Brightwater Plumbing. Sorry we missed your call at "),
        "{}",
        first.text
    );
    assert!(
        first.text.contains("Who am I speaking to?"),
        "{}",
        first.text
    );
    assert!(first.status_report, "a delivery report is asked for");
    assert_eq!(first.part, None, "the first text fits one SMS");

    // The delivery report comes back and is matched to the row.
    assert_eq!(
        harness
            .wait_count("SELECT count(*) FROM messages WHERE state = 'delivered'", 1)
            .await,
        1
    );
    running.stop().await.unwrap();
    assert_eq!(
        harness.modem.sent().len(),
        1,
        "still exactly one SMS after the call ended"
    );

    let calls = harness.read(|tx| tx.recent_calls(10).unwrap());
    assert_eq!(calls.len(), 1);
    assert_eq!(calls[0].caller.as_deref(), Some(CALLER));
    assert_eq!(calls[0].decision, textback::domain::CallDecision::Text);
    assert_eq!(calls[0].source, textback::domain::CallSource::Modem);
    assert_eq!(
        harness.query_i64(&format!(
            "SELECT reference FROM message_parts WHERE message_id = 1 AND part = 1 AND reference = {}",
            first.reference
        )),
        first.reference as i64
    );
    let steps = harness.query_strings("SELECT step FROM journal ORDER BY id");
    for step in [
        "call", "profile", "policy", "queued", "sending", "sent", "delivery",
    ] {
        assert!(
            steps.iter().any(|s| s == step),
            "journal lacks {step}: {steps:?}"
        );
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn replies_advance_the_conversation_to_a_lead() {
    let harness = Harness::new();
    let running = harness.start().await;
    harness.modem.call(Some(CALLER_NATIONAL), 2).await;
    assert_eq!(harness.modem.wait_sent(1, WAIT).await.len(), 1);

    harness.modem.receive_sms(CALLER, "Dave Smith").await;
    let sent = harness.modem.wait_sent(2, WAIT).await;
    assert_eq!(sent[1].text, "Thanks. What do you need help with?");

    // Emoji and a long reply: UCS-2 in, several parts in.
    let long = format!("Boiler leaking 😬 {}", "water everywhere, ".repeat(20));
    harness.modem.receive_sms(CALLER, &long).await;
    let sent = harness.modem.wait_sent(3, WAIT).await;
    assert_eq!(sent[2].text, "Thanks. And the postcode of the job?");

    harness.modem.receive_sms(CALLER, "SW11 4AB").await;
    let sent = harness.modem.wait_sent(4, WAIT).await;
    assert_eq!(
        sent[3].text,
        "Thanks Dave Smith, Brightwater Plumbing will call you back."
    );
    assert_eq!(harness.wait_count("SELECT count(*) FROM leads", 1).await, 1);
    // The owner's copy of the lead, texted from the same SIM in two parts.
    let sent = harness.modem.wait_sent(6, WAIT).await;
    assert_eq!(sent.len(), 6);
    assert_eq!(sent[4].to, "+447700900456");
    assert_eq!(sent[4].part.map(|(_, total, _)| total), Some(2));
    let owner = format!("{}{}", sent[4].text, sent[5].text);
    for expected in ["Dave Smith", "07700 900123", "Postcode: SW11 4AB", "/t/"] {
        assert!(owner.contains(expected), "{expected:?} in {owner}");
    }
    assert_eq!(
        harness
            .wait_count(
                "SELECT count(*) FROM lead_deliveries WHERE channel = 'sms' AND state = 'delivered'",
                1
            )
            .await,
        1
    );
    running.stop().await.unwrap();

    let leads = harness.read(|tx| tx.leads(10).unwrap());
    assert_eq!(leads.len(), 1);
    let lead = &leads[0];
    assert!(lead.complete);
    assert_eq!(lead.caller, CALLER);
    let answers: Vec<(&str, &str)> = lead
        .answers
        .iter()
        .map(|(q, a)| (q.as_str(), a.as_str()))
        .collect();
    assert_eq!(answers[0], ("name", "Dave Smith"));
    assert_eq!(answers[1].0, "reason");
    assert!(
        answers[1]
            .1
            .starts_with("Boiler leaking 😬 water everywhere"),
        "{}",
        answers[1].1
    );
    assert_eq!(answers[2], ("postcode", "SW11 4AB"));
    // One delivery row per recipient channel: the SMS went out; the email waits for an SMTP
    // server in the config, with the reason recorded and no attempt used up.
    assert_eq!(
        harness.query_strings(
            "SELECT channel || ' ' || state || ' ' || attempts || ' ' || coalesce(last_error, '') FROM lead_deliveries ORDER BY channel"
        ),
        [
            "email pending 0 [notify.email] is not set: add notify.email.host and notify.email.from",
            "sms delivered 1 "
        ]
    );
    // Every reply is stored once and deleted from the SIM after it was stored.
    assert_eq!(
        harness.query_i64("SELECT count(*) FROM messages WHERE direction = 'in'"),
        3
    );
    assert!(
        harness
            .modem
            .commands()
            .iter()
            .any(|c| c.starts_with("AT+CMGD="))
    );
    let sent = harness.modem.sent();
    assert_eq!(sent.len(), 6, "no text sent twice: {sent:#?}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_restart_mid_conversation_continues_from_the_database() {
    let harness = Harness::new();
    let running = harness.start().await;
    harness.modem.call(Some(CALLER_NATIONAL), 2).await;
    assert_eq!(harness.modem.wait_sent(1, WAIT).await.len(), 1);
    harness.modem.receive_sms(CALLER, "Sarah").await;
    assert_eq!(harness.modem.wait_sent(2, WAIT).await.len(), 2);
    assert_eq!(
        harness
            .wait_count("SELECT count(*) FROM messages WHERE state = 'delivered'", 2)
            .await,
        2
    );
    running.stop().await.unwrap();

    // A second daemon on the same database and the same modem.
    let running = harness.start().await;
    harness.modem.receive_sms(CALLER, "No hot water").await;
    let sent = harness.modem.wait_sent(3, WAIT).await;
    assert_eq!(sent.len(), 3);
    assert_eq!(sent[2].text, "Thanks. And the postcode of the job?");
    harness.modem.receive_sms(CALLER, "SE1 7PB").await;
    assert_eq!(harness.wait_count("SELECT count(*) FROM leads", 1).await, 1);
    // The caller's four texts and the owner's copy of the lead (two parts).
    assert_eq!(harness.modem.wait_sent(6, WAIT).await.len(), 6);
    running.stop().await.unwrap();

    let sent = harness.modem.sent();
    assert_eq!(
        sent.iter().filter(|s| s.to == CALLER).count(),
        4,
        "nothing re-sent after the restart: {sent:#?}"
    );
    let lead = harness.read(|tx| tx.leads(1).unwrap()).remove(0);
    let ids: Vec<&str> = lead.answers.iter().map(|(q, _)| q.as_str()).collect();
    assert_eq!(ids, vec!["name", "reason", "postcode"]);
    assert_eq!(lead.answers[0].1, "Sarah");
    assert_eq!(harness.query_i64("SELECT count(*) FROM conversations"), 1);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_conversation_of_the_retired_in_order_engine_moves_to_the_engine_at_start() {
    let harness = Harness::new();
    let running = harness.start().await;
    harness.modem.call(Some(CALLER_NATIONAL), 2).await;
    assert_eq!(harness.modem.wait_sent(1, WAIT).await.len(), 1);
    running.stop().await.unwrap();
    // As the in-order engine left it: the name answered, the reason asked, no engine state.
    {
        let connection = rusqlite::Connection::open(harness.database()).unwrap();
        connection
            .execute(
                "UPDATE conversations SET engine_state = NULL, next_question = 1, answers = '[[\"name\",\"Sarah\"]]'",
                [],
            )
            .unwrap();
    }
    let running = harness.start().await;
    assert_eq!(
        harness
            .wait_count(
                "SELECT count(*) FROM journal WHERE detail LIKE 'moved from the retired%'",
                1
            )
            .await,
        1
    );
    harness.modem.receive_sms(CALLER, "no hot water").await;
    let texts = harness.texts_to_caller(2).await;
    assert_eq!(texts[1], "Thanks. And the postcode of the job?");
    harness.modem.receive_sms(CALLER, "SE1 7PB").await;
    assert_eq!(harness.wait_count("SELECT count(*) FROM leads", 1).await, 1);
    running.stop().await.unwrap();
    let lead = harness.read(|tx| tx.leads(1).unwrap()).remove(0);
    assert_eq!(
        lead.answers,
        vec![
            ("name".to_string(), "Sarah".to_string()),
            ("reason".to_string(), "no hot water".to_string()),
            ("postcode".to_string(), "SE1 7PB".to_string()),
        ]
    );
    // A second start finds nothing more to move.
    let running = harness.start().await;
    running.stop().await.unwrap();
    assert_eq!(
        harness
            .query_i64("SELECT count(*) FROM journal WHERE detail LIKE 'moved from the retired%'"),
        1
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn withheld_and_landline_calls_get_no_sms_and_a_recorded_reason() {
    let harness = Harness::new();
    let running = harness.start().await;
    harness.modem.call(None, 2).await;
    assert_eq!(harness.wait_count("SELECT count(*) FROM calls", 1).await, 1);
    harness.modem.call(Some("02079460018"), 2).await;
    assert_eq!(harness.wait_count("SELECT count(*) FROM calls", 2).await, 2);
    // A mobile call afterwards proves the modem was serving, and that the two above sent nothing.
    harness.modem.call(Some(CALLER_NATIONAL), 2).await;
    assert_eq!(harness.modem.wait_sent(1, WAIT).await.len(), 1);
    running.stop().await.unwrap();

    assert_eq!(harness.modem.sent().len(), 1);
    assert_eq!(harness.modem.sent()[0].to, CALLER);
    let reasons = harness.query_strings("SELECT decision || ' ' || coalesce(reason_code, '-') || ' ' || coalesce(caller, 'withheld') FROM calls ORDER BY id");
    assert_eq!(
        reasons,
        vec![
            "skip withheld withheld".to_string(),
            "skip not_mobile +442079460018".to_string(),
            format!("text - {CALLER}"),
        ]
    );
    let words =
        harness.query_strings("SELECT reason FROM calls WHERE decision = 'skip' ORDER BY id");
    assert!(words[0].contains("withheld"), "{}", words[0]);
    assert!(words[1].contains("not a UK mobile"), "{}", words[1]);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn stop_opts_out_with_one_confirmation_and_no_more_texts() {
    let harness = Harness::new();
    let running = harness.start().await;
    harness.modem.call(Some(CALLER_NATIONAL), 2).await;
    assert_eq!(harness.modem.wait_sent(1, WAIT).await.len(), 1);
    harness.modem.receive_sms(CALLER, "Stop!").await;
    let sent = harness.modem.wait_sent(2, WAIT).await;
    assert!(
        sent[1]
            .text
            .starts_with("You won't get any more texts from Brightwater Plumbing"),
        "{}",
        sent[1].text
    );
    assert_eq!(
        harness.wait_count("SELECT count(*) FROM opt_outs", 1).await,
        1
    );
    // Another call from the same number: recorded, not texted.
    harness.modem.call(Some(CALLER_NATIONAL), 2).await;
    assert_eq!(harness.wait_count("SELECT count(*) FROM calls", 2).await, 2);
    running.stop().await.unwrap();
    assert_eq!(harness.modem.sent().len(), 2);
    assert_eq!(
        harness.query_strings("SELECT reason_code FROM calls WHERE decision = 'skip'"),
        vec!["opted_out".to_string()]
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_transient_send_error_is_retried_and_a_permanent_one_recorded() {
    let harness = Harness::new();
    let running = harness.start().await;
    harness.modem.fail_next_send(500).await;
    harness.modem.call(Some(CALLER_NATIONAL), 2).await;
    // The first attempt fails with +CMS ERROR: 500, the retry (after 2 s) goes through.
    assert_eq!(harness.modem.wait_sent(1, WAIT).await.len(), 1);
    assert_eq!(
        harness
            .wait_count(
                "SELECT count(*) FROM messages WHERE state IN ('sent', 'delivered')",
                1
            )
            .await,
        1
    );
    assert_eq!(
        harness.query_i64("SELECT attempts FROM messages WHERE id = 1"),
        2
    );
    assert_eq!(
        harness.query_i64("SELECT count(*) FROM journal WHERE step = 'retry'"),
        1
    );

    harness.modem.fail_next_send(304).await;
    harness.modem.receive_sms(CALLER, "Dave").await;
    assert_eq!(
        harness
            .wait_count("SELECT count(*) FROM messages WHERE state = 'failed'", 1)
            .await,
        1
    );
    running.stop().await.unwrap();
    let error = harness.query_strings("SELECT error FROM messages WHERE state = 'failed'");
    assert!(error[0].contains("+CMS ERROR: 304"), "{}", error[0]);
    assert_eq!(
        harness.query_i64("SELECT attempts FROM messages WHERE state = 'failed'"),
        1,
        "a bad PDU is not retried"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn sms_already_on_the_sim_are_read_at_start_stored_once_and_deleted() {
    let harness = Harness::new();
    // Delivered while textback is not running: it sits on the SIM.
    harness
        .modem
        .receive_sms("+447700900777", "Are you open on Saturday?")
        .await;
    let running = harness.start().await;
    assert_eq!(
        harness
            .wait_count("SELECT count(*) FROM messages WHERE direction = 'in'", 1)
            .await,
        1
    );
    assert!(
        harness
            .modem
            .wait_command(|c| c.starts_with("AT+CMGD="), WAIT)
            .await,
        "deleted from the SIM once stored"
    );
    running.stop().await.unwrap();
    let commands = harness.modem.commands();
    let listed = commands
        .iter()
        .position(|c| c == "AT+CMGL=4")
        .expect("listed at start");
    let deleted = commands
        .iter()
        .position(|c| c.starts_with("AT+CMGD="))
        .expect("deleted");
    assert!(listed < deleted);
    assert_eq!(
        harness.query_strings("SELECT body FROM messages WHERE direction = 'in'"),
        vec!["Are you open on Saturday?".to_string()]
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn stop_cancels_a_question_still_queued() {
    let harness = Harness::new();
    let running = harness.start().await;
    harness.modem.call(Some(CALLER_NATIONAL), 2).await;
    assert_eq!(harness.modem.wait_sent(1, WAIT).await.len(), 1);
    // The next question fails once with +CMS ERROR: 500 and waits in the queue for its retry...
    harness.modem.fail_next_send(500).await;
    harness.modem.receive_sms(CALLER, "Dave").await;
    assert_eq!(harness.wait_journal("retry", 1).await, 1);
    // ... when the caller says STOP.
    harness.modem.receive_sms(CALLER, "STOP").await;
    let sent = harness.modem.wait_sent(2, WAIT).await;
    assert!(
        sent[1].text.starts_with("You won't get any more texts"),
        "{}",
        sent[1].text
    );
    assert_eq!(
        harness
            .wait_count("SELECT count(*) FROM messages WHERE state = 'delivered'", 2)
            .await,
        2
    );
    running.stop().await.unwrap();
    assert_eq!(
        harness.modem.sent().len(),
        2,
        "the question was not sent after the STOP"
    );
    assert_eq!(
        harness.query_strings("SELECT body FROM messages WHERE state = 'cancelled'"),
        vec!["Thanks. What do you need help with?".to_string()]
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_call_after_a_stale_conversation_is_texted_again() {
    let harness = Harness::new();
    let running = harness.start().await;
    harness.modem.call(Some(CALLER_NATIONAL), 2).await;
    assert_eq!(harness.modem.wait_sent(1, WAIT).await.len(), 1);
    running.stop().await.unwrap();
    // Two days pass without a reply.
    let connection = rusqlite::Connection::open(harness.database()).unwrap();
    connection
        .execute("UPDATE conversations SET updated_ms = updated_ms - 2 * 86400000, started_ms = started_ms - 2 * 86400000", [])
        .unwrap();
    drop(connection);
    let running = harness.start().await;
    harness.modem.call(Some(CALLER_NATIONAL), 2).await;
    // The caller's second first text (the owner may also get an SMS about the incomplete lead).
    assert_eq!(harness.texts_to_caller(2).await.len(), 2);
    running.stop().await.unwrap();
    // The first was closed as an incomplete lead once the caller had been quiet for longer than
    // silence_minutes (housekeeping at start), before the new call came.
    assert_eq!(
        harness.query_strings("SELECT state FROM conversations ORDER BY id"),
        vec!["completed".to_string(), "open".to_string()]
    );
}

/// A reply long enough for three parts (153 GSM-7 characters each).
fn long_reply() -> String {
    let mut text = String::from("Hi, it's about the boiler. ");
    while text.len() < 400 {
        text.push_str("It makes a banging noise and the pressure keeps dropping. ");
    }
    text
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn multipart_replies_in_any_order_and_with_a_lost_part() {
    let harness = Harness::new();
    let running = harness.start().await;
    harness.modem.call(Some(CALLER_NATIONAL), 2).await;
    assert_eq!(harness.modem.wait_sent(1, WAIT).await.len(), 1);

    // Three parts, the last first: one reply, in order.
    let text = long_reply();
    assert_eq!(textback::codec::pdu::segment(&text).parts.len(), 3);
    harness
        .modem
        .receive_sms_parts(CALLER, &text, &[2, 0, 1])
        .await;
    // Read whole: it says what the job is but not who is asking, so the name is asked again.
    let sent = harness.modem.wait_sent(2, WAIT).await;
    assert_eq!(sent[1].text, "Thanks. Who am I speaking to?");
    let stored = harness.query_strings("SELECT body FROM messages WHERE direction = 'in'");
    assert_eq!(stored, vec![text.clone()]);

    // Parts 1 and 3 of the next reply arrive; part 2 never does.
    harness
        .modem
        .receive_sms_parts(CALLER, &text, &[0, 2])
        .await;
    assert_eq!(
        harness
            .wait_count("SELECT count(*) FROM sms_fragments", 2)
            .await,
        2
    );
    assert_eq!(
        harness.modem.sent().len(),
        2,
        "nothing happens while a part is missing"
    );
    // Ten minutes pass (the parts are made older), and housekeeping runs.
    {
        let connection = rusqlite::Connection::open(harness.database()).unwrap();
        connection
            .execute(
                "UPDATE sms_fragments SET received_ms = received_ms - 11 * 60 * 1000",
                [],
            )
            .unwrap();
    }
    running
        .events
        .send(textback::event::Event::Housekeeping)
        .await
        .unwrap();
    // The incomplete reply is taken with "[…]" for the lost part and the conversation moves on.
    let sent = harness.modem.wait_sent(3, WAIT).await;
    assert_eq!(sent.len(), 3, "{sent:#?}");
    assert!(sent[2].text.ends_with('?'), "{}", sent[2].text);
    running.stop().await.unwrap();
    let parts = textback::codec::pdu::segment(&text).parts;
    let expected = format!("{}[…]{}", parts[0], parts[2]);
    let stored =
        harness.query_strings("SELECT body FROM messages WHERE direction = 'in' ORDER BY id");
    assert_eq!(stored.len(), 2);
    assert_eq!(stored[1], expected);
    assert_eq!(harness.query_i64("SELECT count(*) FROM sms_fragments"), 0);
    assert_eq!(
        harness.query_i64("SELECT count(*) FROM journal WHERE step = 'incomplete'"),
        1
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_send_cut_off_after_its_pdu_is_recorded_and_not_sent_again() {
    let harness = Harness::new();
    let running = harness.start().await;
    harness.modem.vanish_after_next_pdu().await;
    harness.modem.call(Some(CALLER_NATIONAL), 2).await;
    assert_eq!(harness.modem.wait_sent(1, WAIT).await.len(), 1);
    // The modem took the PDU and vanished before confirming: the outcome is unknown.
    assert_eq!(
        harness
            .wait_count("SELECT count(*) FROM messages WHERE state = 'failed'", 1)
            .await,
        1
    );
    running.stop().await.unwrap();
    let error = harness.query_strings("SELECT error FROM messages WHERE state = 'failed'");
    assert!(
        error[0].contains("may or may not have gone out"),
        "{}",
        error[0]
    );
    assert_eq!(harness.query_i64("SELECT attempts FROM messages"), 1);
    assert_eq!(
        harness.query_i64("SELECT count(*) FROM messages WHERE state = 'queued'"),
        0,
        "not queued again"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_modem_that_stops_answering_is_woken_and_the_outbox_resumes() {
    let harness = Harness::new();
    let running = harness.start().await;
    harness.modem.call(Some(CALLER_NATIONAL), 2).await;
    assert_eq!(harness.modem.wait_sent(1, WAIT).await.len(), 1);
    assert_eq!(
        harness
            .wait_count("SELECT count(*) FROM messages WHERE state = 'delivered'", 1)
            .await,
        1
    );

    // The dongle's firmware hangs; a call comes in over SIP meanwhile.
    harness.modem.hang().await;
    let hung_at = harness.modem.commands().len();
    running
        .events
        .send(common::sip_call("sip-while-hung", "07700900456"))
        .await
        .unwrap();
    // No prompt (10 s), no answer to AT, to ESC and AT, to ATZ; AT+CFUN=1,1 resets it, the port
    // is reopened and the text goes out.
    let sent = harness
        .modem
        .wait_sent(2, std::time::Duration::from_secs(90))
        .await;
    assert_eq!(sent.len(), 2);
    assert_eq!(sent[1].to, "+447700900456");
    assert_eq!(
        harness
            .wait_count(
                "SELECT count(*) FROM messages WHERE state IN ('sent', 'delivered')",
                2
            )
            .await,
        2
    );
    running.stop().await.unwrap();
    let after: Vec<String> = harness.modem.commands().into_iter().skip(hung_at).collect();
    let atz = after.iter().position(|c| c == "ATZ").expect("ATZ tried");
    let reset = after
        .iter()
        .position(|c| c == "AT+CFUN=1,1")
        .expect("reset");
    assert!(atz < reset, "{after:?}");
    assert_eq!(harness.modem.sent().len(), 2, "nothing sent twice");
    assert_eq!(
        harness.query_i64("SELECT count(*) FROM messages WHERE state = 'failed'"),
        0
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_text_waits_while_the_sim_is_out_and_goes_when_it_is_back() {
    let harness = Harness::new();
    let running = harness.start().await;
    harness.first_text_confirmed().await;

    harness.modem.set_sim_present(false).await;
    running
        .events
        .send(common::sip_call("sip-no-sim", "07700900456"))
        .await
        .unwrap();
    // The send meets +CMS ERROR: 310; the text waits, its try not counted.
    assert_eq!(
        harness
            .wait_count(
                "SELECT count(*) FROM messages WHERE state = 'queued' AND error LIKE '%SIM%'",
                1
            )
            .await,
        1
    );
    harness.modem.set_sim_present(true).await;
    let sent = harness
        .modem
        .wait_sent(2, std::time::Duration::from_secs(60))
        .await;
    assert_eq!(sent.len(), 2);
    assert_eq!(sent[1].to, "+447700900456");
    assert_eq!(
        harness
            .wait_count(
                "SELECT count(*) FROM messages WHERE state IN ('sent', 'delivered')",
                2
            )
            .await,
        2
    );
    running.stop().await.unwrap();
    assert_eq!(
        harness.query_i64("SELECT attempts FROM messages WHERE peer = '+447700900456'"),
        1
    );
    assert_eq!(
        harness.query_i64("SELECT count(*) FROM messages WHERE state = 'failed'"),
        0
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_outbox_waits_while_the_network_is_gone() {
    let harness = Harness::new();
    let running = harness.start().await;
    harness.first_text_confirmed().await;

    harness.modem.set_network(false).await;
    let mut handle = running.modems[0].clone();
    let off = tokio::time::timeout(WAIT, async {
        loop {
            if let textback::modem::ModemState::Ready { info } = handle.state()
                && info.registration == Some(0)
            {
                return;
            }
            let _ = handle.state_changed().await;
        }
    })
    .await;
    assert!(off.is_ok(), "the +CREG: 0 was seen");
    running
        .events
        .send(common::sip_call("sip-no-network", "07700900456"))
        .await
        .unwrap();
    assert_eq!(harness.wait_journal("queued", 2).await, 2);
    harness.modem.set_network(true).await;
    let sent = harness.modem.wait_sent(2, WAIT).await;
    assert_eq!(sent.len(), 2);
    running.stop().await.unwrap();
    let sends = harness
        .modem
        .commands()
        .iter()
        .filter(|c| c.starts_with("AT+CMGS="))
        .count();
    assert_eq!(sends, 2, "no send was tried while off the network");
    assert_eq!(
        harness.query_i64("SELECT attempts FROM messages WHERE peer = '+447700900456'"),
        1
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_failed_delivery_report_is_recorded_in_words() {
    let harness = Harness::new();
    let running = harness.start().await;
    // TP-Status 0x41: permanent error, incompatible destination (TS 23.040 §9.2.3.15).
    harness.modem.next_report_status(0x41).await;
    harness.modem.call(Some(CALLER_NATIONAL), 2).await;
    assert_eq!(
        harness
            .wait_count("SELECT count(*) FROM messages WHERE state = 'failed'", 1)
            .await,
        1
    );
    let status = harness.query_strings("SELECT status_text FROM message_parts");
    assert_eq!(status.len(), 1);
    assert!(status[0].starts_with("permanent error"), "{status:?}");
    // The failure is in the conversation's journal, and nothing was sent again.
    assert_eq!(harness.wait_journal("delivery", 1).await, 1);
    running.stop().await.unwrap();
    assert_eq!(harness.modem.sent().len(), 1);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_flood_of_calls_is_capped_and_each_skip_recorded() {
    let harness = Harness::with_extra(
        textback::modem::virtual_modem::Options::default(),
        "\n[limits]\ntexts_per_hour = 2\n",
    );
    let running = harness.start().await;
    for (n, number) in ["07700900301", "07700900302", "07700900303"]
        .iter()
        .enumerate()
    {
        running
            .events
            .send(common::sip_call(&format!("flood-{n}"), number))
            .await
            .unwrap();
    }
    assert_eq!(harness.wait_count("SELECT count(*) FROM calls", 3).await, 3);
    assert_eq!(harness.modem.wait_sent(2, WAIT).await.len(), 2);
    running.stop().await.unwrap();
    assert_eq!(
        harness.modem.sent().len(),
        2,
        "the third caller is not texted"
    );
    let decisions = harness.query_strings(
        "SELECT decision || ' ' || coalesce(reason_code, '') || ' ' || coalesce(reason, '') FROM calls ORDER BY id",
    );
    assert_eq!(decisions[0], "text  ");
    assert_eq!(decisions[1], "text  ");
    assert!(
        decisions[2].starts_with(
            "skip capped this box sent its 2 first texts of the last hour (limits.texts_per_hour)"
        ),
        "{decisions:?}"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn replies_as_people_write_them_become_leads() {
    let harness = Harness::new();
    let running = harness.start().await;
    harness.first_text_confirmed().await;
    // Every answer in one message: the lead is complete at once, nothing asked twice.
    harness
        .modem
        .receive_sms(CALLER, "Dave here, boiler leaking in SW11 4AB")
        .await;
    assert_eq!(harness.wait_count("SELECT count(*) FROM leads", 1).await, 1);
    let sent = harness.modem.wait_sent(2, WAIT).await;
    assert!(sent[1].text.starts_with("Thanks Dave"), "{}", sent[1].text);
    let answers = harness.query_strings("SELECT answers FROM leads WHERE id = 1");
    assert!(answers[0].contains(r#"["name","Dave"]"#), "{answers:?}");
    assert!(
        answers[0].contains(r#"["postcode","SW11 4AB"]"#),
        "{answers:?}"
    );
    assert!(answers[0].contains("boiler leaking"), "{answers:?}");

    // "Just ring me": an urgent lead with what there is, and a polite close.
    running
        .events
        .send(common::sip_call("ring-me", "07700900456"))
        .await
        .unwrap();
    harness.modem.wait_sent(3, WAIT).await;
    harness
        .modem
        .receive_sms("+447700900456", "can you just ring me asap please")
        .await;
    assert_eq!(harness.wait_count("SELECT count(*) FROM leads", 2).await, 2);
    assert_eq!(
        harness.query_strings("SELECT complete || ' ' || urgent FROM leads WHERE id = 2"),
        ["0 1"]
    );
    assert_eq!(harness.wait_journal("urgent", 1).await, 1);
    running.stop().await.unwrap();
    // The conversation's state is on disk as the engine left it.
    let state = harness.query_strings("SELECT engine_state FROM conversations WHERE id = 1");
    assert!(state[0].contains("\"status\""), "{state:?}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_caller_who_goes_quiet_still_becomes_an_incomplete_lead() {
    let harness = Harness::new();
    let running = harness.start().await;
    harness.first_text_confirmed().await;
    harness.modem.receive_sms(CALLER, "Sarah").await;
    assert_eq!(harness.modem.wait_sent(2, WAIT).await.len(), 2);
    assert_eq!(harness.wait_journal("queued", 2).await, 2);
    // Three hours pass with no reply (the default silence is two), and housekeeping runs.
    {
        let connection = rusqlite::Connection::open(harness.database()).unwrap();
        connection
            .execute(
                "UPDATE conversations SET updated_ms = updated_ms - 3 * 60 * 60 * 1000",
                [],
            )
            .unwrap();
    }
    running
        .events
        .send(textback::event::Event::Housekeeping)
        .await
        .unwrap();
    assert_eq!(harness.wait_count("SELECT count(*) FROM leads", 1).await, 1);
    running.stop().await.unwrap();
    assert_eq!(
        harness.query_strings("SELECT complete || ' ' || answers FROM leads"),
        [r#"0 [["name","Sarah"]]"#]
    );
    let to_caller = harness
        .modem
        .sent()
        .iter()
        .filter(|s| s.to == CALLER)
        .count();
    assert_eq!(
        to_caller, 2,
        "nothing more is texted to a caller who went quiet"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_burst_of_texts_from_a_machine_is_stopped() {
    let harness = Harness::new();
    let running = harness.start().await;
    harness.first_text_confirmed().await;
    // Four texts within two seconds: no person types that fast.
    for n in 1..=4 {
        harness
            .modem
            .receive_sms(
                CALLER,
                &format!("Automatic message {n}: this number is not monitored"),
            )
            .await;
    }
    assert_eq!(harness.wait_journal("loop", 1).await, 1);
    running.stop().await.unwrap();
    assert_eq!(
        harness.query_strings("SELECT state FROM conversations"),
        ["abandoned"]
    );
    let why = harness.query_strings("SELECT detail FROM journal WHERE step = 'loop'");
    assert!(why[0].contains("4 texts within 2 s"), "{why:?}");
    // Nothing queued after the loop was seen is sent.
    assert_eq!(
        harness.query_i64(
            "SELECT count(*) FROM messages WHERE direction = 'out' AND state = 'queued'"
        ),
        0
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn help_gets_the_business_name_and_contact_line() {
    let harness = Harness::new();
    let running = harness.start().await;
    // From someone with no conversation, and inside one.
    harness.modem.receive_sms("+447700900888", "help").await;
    let sent = harness.modem.wait_sent(1, WAIT).await;
    assert_eq!(sent[0].to, "+447700900888");
    assert_eq!(
        sent[0].text,
        "Brightwater Plumbing: we text back calls we missed. Call 01632 960123. Reply STOP to opt out."
    );
    harness.modem.call(Some(CALLER_NATIONAL), 2).await;
    harness.modem.wait_sent(2, WAIT).await;
    harness.modem.receive_sms(CALLER, "HELP!").await;
    let sent = harness.modem.wait_sent(3, WAIT).await;
    assert_eq!(sent[2].to, CALLER);
    assert!(
        sent[2]
            .text
            .starts_with("Brightwater Plumbing: we text back"),
        "{}",
        sent[2].text
    );
    assert_eq!(harness.wait_journal("help", 2).await, 2);
    running.stop().await.unwrap();
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn transcripts_older_than_the_retention_period_are_deleted_but_opt_outs_kept() {
    let harness = Harness::new();
    let running = harness.start().await;
    harness.lead_from_a_conversation().await;
    // A STOP from another number: an opt-out to keep for good.
    harness.modem.receive_sms("+447700900888", "STOP").await;
    assert_eq!(harness.wait_journal("opt_out", 1).await, 1);
    // Four texts to the caller, the owner's two-part copy, and the STOP confirmation.
    assert_eq!(harness.modem.wait_sent(7, WAIT).await.len(), 7);
    running.stop().await.unwrap();
    // Everything happened 400 days ago (the default retention is 365 days).
    {
        let connection = rusqlite::Connection::open(harness.database()).unwrap();
        let year = 400_i64 * 86_400_000;
        for sql in [
            "UPDATE calls SET at_ms = at_ms - ?1",
            "UPDATE conversations SET updated_ms = updated_ms - ?1, started_ms = started_ms - ?1",
            "UPDATE messages SET created_ms = created_ms - ?1",
            "UPDATE leads SET created_ms = created_ms - ?1",
            "UPDATE journal SET at_ms = at_ms - ?1",
        ] {
            connection.execute(sql, [year]).unwrap();
        }
    }
    let running = harness.start().await;
    running
        .events
        .send(textback::event::Event::Housekeeping)
        .await
        .unwrap();
    assert_eq!(
        harness.wait_count("SELECT (SELECT count(*) FROM leads) + (SELECT count(*) FROM messages) + (SELECT count(*) FROM calls) = 0", 1).await,
        1
    );
    running.stop().await.unwrap();
    for table in [
        "leads",
        "lead_deliveries",
        "messages",
        "message_parts",
        "calls",
        "conversations",
    ] {
        assert_eq!(
            harness.query_i64(&format!("SELECT count(*) FROM {table}")),
            0,
            "{table}"
        );
    }
    assert_eq!(
        harness.query_strings("SELECT number FROM opt_outs"),
        ["+447700900888"]
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn out_of_hours_callers_are_told_when_they_will_be_called() {
    let harness = Harness::with_extra(
        textback::modem::virtual_modem::Options::default(),
        r#"
[profile.hours]
monday = "08:00-18:00"
tuesday = "08:00-18:00"
wednesday = "08:00-18:00"
thursday = "08:00-18:00"
friday = "08:00-17:00"
holidays = ["2026-12-25"]
"#,
    );
    // The daemon runs on a clock set by the test, so the dates below mean the same on any day
    // the suite runs. Tuesday 24 November 2026, 10:00 in London: open, the usual first text.
    let tuesday = chrono::TimeZone::with_ymd_and_hms(&chrono::Utc, 2026, 11, 24, 10, 0, 0).unwrap();
    let clock = textback::clock::Clock::starting_at(tuesday);
    let running = harness
        .start_with(textback::daemon::RunOptions {
            clock: clock.clone(),
            ..Default::default()
        })
        .await;
    let call = |key: &str, number: &str| {
        textback::event::Event::CallMissed(textback::event::MissedCall {
            key: textback::domain::CallId::new(key),
            source: textback::domain::CallSource::Sip,
            caller: textback::domain::CallerId::from_raw(number),
            caller_raw: number.to_string(),
            called: None,
            modem: None,
            sip_account: None,
            at: clock.now(),
        })
    };
    running
        .events
        .send(call("weekday", "07700900302"))
        .await
        .unwrap();
    let weekday = harness.texts_to("+447700900302", 1).await;
    assert_eq!(weekday.len(), 1, "one SMS: {weekday:?}");
    assert!(
        weekday[0]
            .starts_with("Hi, it's Brightwater Plumbing. Sorry we missed your call at 10:00. Who"),
        "{}",
        weekday[0]
    );
    // Saturday 28 November 2026, 13:00 in London: closed until Monday.
    clock.set(chrono::TimeZone::with_ymd_and_hms(&chrono::Utc, 2026, 11, 28, 13, 0, 0).unwrap());
    running
        .events
        .send(call("weekend", "07700900301"))
        .await
        .unwrap();
    let weekend = harness.texts_to("+447700900301", 1).await;
    assert_eq!(
        weekend,
        vec!["Hi, it's Brightwater Plumbing, sorry we missed your call. We'll call you back by 8am on Monday. Who am I speaking to? (Reply STOP to opt out)".to_string()],
        "one SMS"
    );
    running.stop().await.unwrap();
    assert_eq!(
        harness.query_i64("SELECT count(*) FROM journal WHERE step = 'hours'"),
        1
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_status_report_whose_time_zone_is_not_decimal_still_counts() {
    let harness = Harness::new();
    let running = harness.start().await;
    // The zone octet python-gsmmodem's issue #15 recorded from a network: 0xC2.
    harness.modem.next_report_zone(0xC2).await;
    harness.modem.call(Some(CALLER_NATIONAL), 2).await;
    assert_eq!(
        harness
            .wait_count("SELECT count(*) FROM messages WHERE state = 'delivered'", 1)
            .await,
        1,
        "the report was applied, not refused"
    );
    running.stop().await.unwrap();
    let status = harness.query_strings("SELECT status_text FROM message_parts");
    assert_eq!(status.len(), 1);
    assert!(
        status[0].starts_with("received by the recipient (read leniently: the service centre time stamp (TP-SCTS) has 0xC2"),
        "{status:?}"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn bad_input_from_the_modem_neither_crashes_nor_duplicates() {
    // Indications off: the reply sits on the SIM until the burst of +CMTI below names it.
    let harness = Harness::with_options(textback::modem::virtual_modem::Options {
        indications: false,
        ..Default::default()
    });
    let running = harness.start().await;
    harness.first_text_confirmed().await;
    let reads_before = harness.modem.commands().len();

    // A garbage line, an unknown URC, an SMS routed to us whose PDU is cut off, a status
    // report that is not hex.
    harness
        .modem
        .send_line("\u{1}\u{7f}garbage ~~~ ::: ,,,")
        .await;
    harness.modem.send_line("+XYZZY: 1,\"two\",3").await;
    harness.modem.send_line("+CMT: ,40\r\n07914477").await;
    harness.modem.send_line("+CDS: 25\r\nNOT-A-PDU").await;
    // The caller's reply lands in slot 0, then the modem says so 200 times.
    harness.modem.receive_sms(CALLER, "Sarah Jones").await;
    let burst = vec!["+CMTI: \"SM\",0"; 200].join("\r\n");
    harness.modem.send_line(&burst).await;

    // The reply moves the conversation on exactly once: one more text, the next question.
    let texts = harness.texts_to_caller(2).await;
    assert_eq!(texts.len(), 2, "{texts:?}");
    assert!(
        texts[1].contains("What do you need help with?"),
        "{texts:?}"
    );
    assert_eq!(
        harness
            .wait_count(
                "SELECT count(*) FROM messages WHERE direction = 'in' AND peer = '+447700900123'",
                1
            )
            .await,
        1
    );
    // The daemon is still serving: a SIP call gets its text.
    running
        .events
        .send(common::sip_call("sip-after-garbage", "07700900456"))
        .await
        .unwrap();
    assert_eq!(harness.texts_to("+447700900456", 1).await.len(), 1);
    running.stop().await.unwrap();
    assert_eq!(
        harness.texts_to_caller(2).await.len(),
        2,
        "no duplicate text"
    );
    let reads = harness.modem.commands()[reads_before..]
        .iter()
        .filter(|c| c.as_str() == "AT+CMGR=0")
        .count();
    // One read for the burst, and at most one more by the delete's check of the slot.
    assert!(reads <= 2, "{reads} reads of slot 0");
    // The cut-off PDU is kept as it came, named undecodable, never dropped.
    assert_eq!(
        harness.query_i64("SELECT count(*) FROM messages WHERE body LIKE '[undecodable PDU%'"),
        1
    );
}

fn quick_health() -> textback::daemon::RunOptions {
    textback::daemon::RunOptions {
        modem_timing: Some(textback::daemon::ModemTiming {
            refused_recheck: std::time::Duration::from_secs(2),
            off_network_cycle: None,
            storage_tell_after: std::time::Duration::from_secs(1),
            delivery_check: std::time::Duration::from_secs(1),
            lost_tell_after: std::time::Duration::from_secs(1),
            ussd_timeout: std::time::Duration::from_secs(2),
            balance_retry: std::time::Duration::from_secs(1),
            balance_interval: None,
            self_test_timeout: None,
        }),
        ..Default::default()
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_sim_the_network_refuses_holds_its_queue_records_why_and_resumes() {
    let harness = Harness::new();
    let running = harness.start_with(quick_health()).await;
    // RP cause 50, requested facility not subscribed: no SMS service, or no credit.
    harness.modem.refuse_sends(Some(50)).await;
    let started = std::time::Instant::now();
    harness.modem.call(Some(CALLER_NATIONAL), 2).await;
    assert_eq!(
        harness
            .wait_count(
                "SELECT count(*) FROM modem_faults WHERE kind = 'refused' AND cause = 'not_subscribed' AND cleared_ms IS NULL",
                1
            )
            .await,
        1
    );
    // Recorded in words with what to do; the text is queued, its try given back.
    let detail = harness.query_strings("SELECT detail FROM modem_faults");
    assert!(detail[0].contains("Top up the SIM"), "{detail:?}");
    assert_eq!(
        harness.query_strings("SELECT state FROM messages WHERE id = 1"),
        vec!["queued".to_string()]
    );
    assert_eq!(
        harness.query_i64("SELECT attempts FROM messages WHERE id = 1"),
        0
    );
    // No other modem can carry the alert by SMS: it goes to the owner's email instead (a notice,
    // waiting here for [notify.email]), recorded for doctor and the dashboard.
    assert_eq!(
        harness
            .wait_count("SELECT count(*) FROM alerts WHERE channel = 'email'", 1)
            .await,
        1
    );
    assert_eq!(
        harness.query_i64("SELECT count(*) FROM alerts WHERE channel IN ('sms', 'log')"),
        0
    );
    // The SIM is topped up: the next try (after the recheck time) sends it, and the fault closes.
    harness.modem.refuse_sends(None).await;
    assert_eq!(harness.modem.wait_sent(1, WAIT).await.len(), 1);
    assert_eq!(
        harness
            .wait_count(
                "SELECT count(*) FROM modem_faults WHERE cleared_ms IS NOT NULL",
                1
            )
            .await,
        1
    );
    let recovered = started.elapsed();
    running.stop().await.unwrap();
    assert_eq!(
        harness.query_i64("SELECT attempts FROM messages WHERE id = 1"),
        1,
        "no try was burnt on the refusals"
    );
    let refusals = harness
        .modem
        .commands()
        .iter()
        .filter(|c| c.starts_with("AT+CMGS="))
        .count();
    assert!(
        refusals <= 5,
        "{refusals} sends: the queue was held, not hammered"
    );
    eprintln!(
        "recovery: +CMS ERROR: 50 (not subscribed) until the SIM sends again: {} ms (recheck 2 s)",
        recovered.as_millis()
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_temporary_refusal_is_retried_with_back_off() {
    let harness = Harness::new();
    let running = harness.start_with(quick_health()).await;
    // RP cause 42: congestion.
    harness.modem.fail_next_send(42).await;
    harness.modem.call(Some(CALLER_NATIONAL), 2).await;
    assert_eq!(harness.modem.wait_sent(1, WAIT).await.len(), 1);
    assert_eq!(
        harness
            .wait_count(
                "SELECT count(*) FROM messages WHERE state IN ('sent', 'delivered')",
                1
            )
            .await,
        1
    );
    running.stop().await.unwrap();
    assert_eq!(
        harness.query_i64("SELECT attempts FROM messages WHERE id = 1"),
        2
    );
    assert_eq!(harness.query_i64("SELECT count(*) FROM modem_faults"), 0);
    let retry = harness.query_strings("SELECT detail FROM journal WHERE step = 'retry'");
    assert!(retry[0].contains("congestion"), "{retry:?}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_text_over_the_recipient_cap_is_held_never_dropped() {
    let harness = Harness::with_edit(Default::default(), "", |text| {
        text.replace("id = \"main\"\n", "id = \"main\"\nrecipient_cap = 1\n")
    });
    let running = harness.start().await;
    harness.first_text_confirmed().await;
    // A second caller: a second distinct number in 24 hours, over this SIM's cap of 1.
    running
        .events
        .send(common::sip_call("sip-over-cap", "07700900777"))
        .await
        .unwrap();
    assert_eq!(
        harness
            .wait_count(
                "SELECT count(*) FROM modem_faults WHERE kind = 'recipient_cap' AND cleared_ms IS NULL",
                1
            )
            .await,
        1
    );
    // The first caller is no new recipient: the conversation goes on.
    harness.modem.receive_sms(CALLER, "Sarah Jones").await;
    assert_eq!(harness.texts_to_caller(2).await.len(), 2);
    running.stop().await.unwrap();
    assert!(harness.texts_to("+447700900777", 1).await.is_empty());
    let held = harness
        .query_strings("SELECT state || ': ' || error FROM messages WHERE peer = '+447700900777'");
    assert_eq!(held.len(), 1);
    assert!(
        held[0].starts_with("queued: ") && held[0].contains("modem.recipient_cap 1"),
        "{held:?}"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_sim_store_that_stays_full_routes_texts_straight_to_the_box() {
    // A SIM of two slots whose deletes do not free anything (a store that will not empty).
    let harness = Harness::with_options(textback::modem::virtual_modem::Options {
        capacity: 2,
        undeletable: true,
        ..Default::default()
    });
    harness
        .modem
        .receive_sms("+447700900901", "old text one")
        .await;
    harness
        .modem
        .receive_sms("+447700900902", "old text two")
        .await;
    let started = std::time::Instant::now();
    let running = harness.start_with(quick_health()).await;
    // Read at start (stored once each), still full at the next look: direct routing.
    assert!(
        harness
            .modem
            .wait_command(|c| c == "AT+CNMI=2,2,0,1,0", WAIT)
            .await,
        "direct routing asked for"
    );
    let routed = started.elapsed();
    assert_eq!(
        harness
            .wait_count(
                "SELECT count(*) FROM modem_faults WHERE kind = 'storage_full' AND alerted_ms IS NOT NULL",
                1
            )
            .await,
        1,
        "recorded, and the business told"
    );
    // The conversation still works: the reply comes as +CMT, never stored on the SIM.
    harness.modem.call(Some(CALLER_NATIONAL), 2).await;
    assert_eq!(harness.texts_to_caller(1).await.len(), 1);
    assert_eq!(
        harness
            .wait_count(
                "SELECT count(*) FROM messages WHERE peer = '+447700900123' AND state IN ('sent', 'delivered')",
                1
            )
            .await,
        1
    );
    harness.modem.receive_sms(CALLER, "Sarah Jones").await;
    let texts = harness.texts_to_caller(2).await;
    assert_eq!(texts.len(), 2, "{texts:?}");
    // The alert (in parts: it says what to do): this SIM can still send, and the owner has an
    // SMS channel.
    let alert = harness.texts_to("+447700900456", 1).await.concat();
    assert!(alert.contains("message store full"), "{alert}");
    running.stop().await.unwrap();
    assert_eq!(
        harness.query_i64("SELECT count(*) FROM messages WHERE direction = 'in'"),
        3,
        "the two old texts and the reply, each stored once"
    );
    eprintln!(
        "recovery: SIM store full and not emptying: texts routed straight to the box after {} ms",
        routed.as_millis()
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_port_that_leads_to_another_sim_is_not_used() {
    // The IMEI matches (the virtual dongle's), the SIM does not: as when a reboot renamed ports.
    let harness = Harness::with_edit(Default::default(), "", |text| {
        text.replace(
            "id = \"main\"\n",
            "id = \"main\"\nimei = \"867530012345678\"\niccid = \"8944110068900000000\"\n",
        )
    });
    let running = harness.start().await;
    let mut handle = running.modems[0].clone();
    let lost = tokio::time::timeout(WAIT, async {
        loop {
            if let textback::modem::ModemState::Lost { reason } = handle.state() {
                return reason;
            }
            let _ = handle.state_changed().await;
        }
    })
    .await
    .expect("the modem is refused");
    assert!(
        lost.contains("SIM (ICCID)") && lost.contains("modem.iccid"),
        "{lost}"
    );
    harness.modem.call(Some(CALLER_NATIONAL), 2).await;
    running
        .events
        .send(common::sip_call("sip-wrong-sim", "07700900456"))
        .await
        .unwrap();
    assert!(
        harness
            .modem
            .wait_sent(1, std::time::Duration::from_millis(1500))
            .await
            .is_empty(),
        "nothing sent from the wrong SIM"
    );
    running.stop().await.unwrap();
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_sim_whose_texts_stop_arriving_is_reported() {
    let harness = Harness::new();
    let running = harness.start_with(quick_health()).await;
    // The network takes every text and then reports it undelivered (TP-Status 0x62: the SMSC
    // gave up, no response from the recipient): a SIM blocked without a word.
    harness.modem.report_status_always(Some(0x62)).await;
    let reports = textback::outbox::DELIVERY_MIN_REPORTS;
    for n in 0..reports {
        running
            .events
            .send(common::sip_call(
                &format!("sip-silent-{n}"),
                &format!("077009001{n:02}"),
            ))
            .await
            .unwrap();
    }
    assert_eq!(
        harness
            .wait_count(
                "SELECT count(*) FROM message_parts WHERE status = 'failed'",
                reports
            )
            .await,
        reports
    );
    assert_eq!(
        harness
            .wait_count(
                "SELECT count(*) FROM modem_faults WHERE kind = 'delivery_low' AND alerted_ms IS NOT NULL",
                1
            )
            .await,
        1
    );
    running.stop().await.unwrap();
    let detail =
        harness.query_strings("SELECT detail FROM modem_faults WHERE kind = 'delivery_low'");
    assert!(
        detail[0].contains(&format!("only 0 of {reports}")),
        "{detail:?}"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_modem_that_stays_dead_after_the_ladder_is_reported_and_its_texts_wait() {
    let harness = Harness::new();
    let running = harness.start_with(quick_health()).await;
    harness.first_text_confirmed().await;
    let started = std::time::Instant::now();
    harness.modem.hang_for_good().await;
    // A call comes in over SIP meanwhile: its text is queued for the dead modem.
    running
        .events
        .send(common::sip_call("sip-dead-modem", "07700900456"))
        .await
        .unwrap();
    // The ladder runs (ESC and AT, ATZ, AT+CFUN=1,1), the port is reopened, and when the modem
    // stays lost the business is told (here: recorded, as no other modem can carry it).
    // The send waits 10 s for its prompt, the line 5 s for AT, ESC and ATZ 3 s each.
    assert!(
        harness
            .modem
            .wait_command(|c| c == "AT+CFUN=1,1", WAIT * 3)
            .await,
        "the ladder reached AT+CFUN=1,1"
    );
    let deadline = tokio::time::Instant::now() + WAIT * 2;
    while harness.query_i64(
        "SELECT count(*) FROM modem_faults WHERE kind = 'not_answering' AND alerted_ms IS NOT NULL",
    ) < 1
    {
        assert!(
            tokio::time::Instant::now() < deadline,
            "no not_answering fault"
        );
        tokio::time::sleep(std::time::Duration::from_millis(100)).await;
    }
    let told = started.elapsed();
    running.stop().await.unwrap();
    assert_eq!(
        harness.query_strings("SELECT state FROM messages WHERE peer = '+447700900456'"),
        vec!["queued".to_string()],
        "the text waits on disk"
    );
    let detail =
        harness.query_strings("SELECT detail FROM modem_faults WHERE kind = 'not_answering'");
    assert!(detail[0].contains("Unplug the dongle"), "{detail:?}");
    eprintln!(
        "recovery: a dongle that never answers again: ladder run and the business told after {} ms",
        told.as_millis()
    );
}
