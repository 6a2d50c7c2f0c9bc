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
