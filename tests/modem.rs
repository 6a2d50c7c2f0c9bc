//! The modem driver on its own, over a real pseudo-terminal against the virtual modem.

mod common;

use common::{Harness, WAIT};
use textback::modem::handle::Deleted;
use textback::modem::probe::Probe;
use textback::modem::{ModemEvent, Storage};

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_delete_only_removes_the_message_it_names() {
    let harness = Harness::new();
    let mut probe = Probe::open(harness.config.modems[0].clone(), WAIT)
        .await
        .unwrap();
    harness.modem.receive_sms(common::CALLER, "first").await;
    // The driver reads it at once (+CMTI, AT+CMGR) and hands it on with where it is stored.
    let (pdu, storage) = loop {
        match tokio::time::timeout(WAIT, probe.events.recv())
            .await
            .unwrap()
        {
            Some(ModemEvent::SmsReceived {
                pdu,
                storage: Some(storage),
                ..
            }) => break (pdu, storage),
            Some(ModemEvent::Ready { .. }) => continue,
            other => panic!("expected an SMS, got {other:?}"),
        }
    };
    assert_eq!(
        storage,
        Storage {
            memory: "SM".to_string(),
            index: 0
        }
    );

    // A stale delete (another message's PDU) leaves the slot alone.
    let stale = pdu.replacen('0', "1", 1);
    assert_eq!(
        probe.handle().delete(storage.clone(), stale).await.unwrap(),
        Deleted::SlotChanged
    );
    let listed = probe.handle().command("AT+CMGL=4").await.unwrap();
    assert_eq!(listed.len(), 2, "still on the SIM: {listed:?}");

    assert_eq!(
        probe
            .handle()
            .delete(storage.clone(), pdu.clone())
            .await
            .unwrap(),
        Deleted::Deleted
    );
    assert!(
        probe
            .handle()
            .command("AT+CMGL=4")
            .await
            .unwrap()
            .is_empty()
    );
    // Deleting again finds an empty slot and does nothing.
    assert_eq!(
        probe.handle().delete(storage, pdu).await.unwrap(),
        Deleted::SlotChanged
    );
    probe.close().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_wrong_pin_is_tried_once_and_never_again() {
    let harness = Harness::with_options(textback::modem::virtual_modem::Options {
        pin: Some("1234".to_string()),
        ..Default::default()
    });
    let mut config = harness.config.modems[0].clone();
    config.pin = Some(textback::domain::Secret::new("1111"));
    let err = Probe::open(config.clone(), WAIT)
        .await
        .err()
        .expect("a wrong PIN fails");
    assert!(err.contains("refused modem.pin"), "{err}");
    assert!(err.contains("not retried"), "{err}");

    // The daemon's supervisor would retry other faults after 1 s, 2 s, ...: give it time to
    // (wrongly) try again. A wait is the only way to show something does not happen.
    let tracker = tokio_util::task::TaskTracker::new();
    let token = tokio_util::sync::CancellationToken::new();
    let (events, _events_rx) = tokio::sync::mpsc::channel(16);
    let handle = textback::modem::spawn(config, events, token.clone(), &tracker);
    tokio::time::sleep(std::time::Duration::from_millis(3500)).await;
    assert!(matches!(
        handle.state(),
        textback::modem::ModemState::Lost { .. }
    ));
    token.cancel();
    tracker.close();
    tracker.wait().await;
    let tries = harness
        .modem
        .commands()
        .iter()
        .filter(|c| c.starts_with("AT+CPIN="))
        .count();
    assert_eq!(
        tries,
        2,
        "one try by the probe, one by the task: {:?}",
        harness.modem.commands()
    );

    // With the right PIN it works.
    let mut config = harness.config.modems[0].clone();
    config.pin = Some(textback::domain::Secret::new("1234"));
    let probe = Probe::open(config, WAIT).await.expect("the right PIN");
    probe.close().await;
}

use textback::codec::pdu::{SubmitOptions, encode_submit};
use textback::modem::virtual_modem::Options;

fn one_sms() -> Vec<textback::codec::pdu::SubmitPdu> {
    let options = SubmitOptions {
        validity_minutes: None,
        status_report: false,
        concat_reference: 1,
        wide_reference: false,
    };
    encode_submit("+447700900123", "test", &options).unwrap()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_busy_sim_after_power_up_is_waited_for() {
    let harness = Harness::with_options(Options {
        sim_busy_answers: 3,
        ..Default::default()
    });
    let probe = Probe::open(harness.config.modems[0].clone(), WAIT)
        .await
        .expect("ready once the SIM is");
    probe.close().await;
    let asks = harness
        .modem
        .commands()
        .iter()
        .filter(|c| *c == "AT+CPIN?")
        .count();
    assert_eq!(asks, 4, "three +CME ERROR: 14, then READY");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_empty_smsc_is_set_from_the_config_and_reported_without_it() {
    let harness = Harness::with_options(Options {
        smsc: String::new(),
        ..Default::default()
    });
    // Without modem.smsc: the send fails with +CMS ERROR: 330, in words.
    let probe = Probe::open(harness.config.modems[0].clone(), WAIT)
        .await
        .unwrap();
    assert_eq!(probe.info.smsc, "");
    let err = probe.handle().send_sms(one_sms()).await.unwrap_err();
    assert!(!err.is_transient());
    assert!(
        err.to_string()
            .contains("+CMS ERROR: 330 (SMSC address unknown: set modem.smsc"),
        "{err}"
    );
    probe.close().await;

    // With it: set on the SIM at start, and the send goes out.
    let mut config = harness.config.modems[0].clone();
    config.smsc = Some(textback::domain::E164::parse("+447958879879").unwrap());
    let probe = Probe::open(config, WAIT).await.unwrap();
    assert_eq!(probe.info.smsc, "+447958879879");
    assert!(
        harness
            .modem
            .commands()
            .iter()
            .any(|c| c == "AT+CSCA=\"+447958879879\",145")
    );
    assert_eq!(probe.handle().send_sms(one_sms()).await.unwrap().len(), 1);
    probe.close().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_indication_naming_another_memory_is_read_from_that_memory() {
    let harness = Harness::with_options(Options {
        incoming_memory: "ME".to_string(),
        ..Default::default()
    });
    let mut probe = Probe::open(harness.config.modems[0].clone(), WAIT)
        .await
        .unwrap();
    harness
        .modem
        .receive_sms(common::CALLER, "stored in ME")
        .await;
    let (pdu, storage) = loop {
        match tokio::time::timeout(WAIT, probe.events.recv())
            .await
            .expect("an SMS event")
        {
            Some(ModemEvent::SmsReceived {
                pdu,
                storage: Some(storage),
                ..
            }) => break (pdu, storage),
            Some(_) => continue,
            None => panic!("events closed"),
        }
    };
    assert_eq!(storage.memory, "ME");
    let commands = harness.modem.commands();
    let switch = commands
        .iter()
        .position(|c| c == "AT+CPMS=\"ME\"")
        .expect("switched to ME");
    let read = commands
        .iter()
        .position(|c| c.starts_with("AT+CMGR="))
        .expect("read");
    assert!(switch < read, "{commands:?}");
    assert_eq!(
        probe.handle().delete(storage, pdu).await.unwrap(),
        Deleted::Deleted
    );
    probe.close().await;
}
