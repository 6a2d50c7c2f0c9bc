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
