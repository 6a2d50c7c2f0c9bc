//! The modem driver on its own, over a real pseudo-terminal against the virtual modem.

mod common;

use common::{Harness, WAIT};
use textback::event::{Event, InboundSms};
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
            Some(ModemEvent::Input(Event::SmsReceived(InboundSms {
                pdu,
                storage: Some(storage),
                ..
            }))) => break (pdu, storage),
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
    let handle = textback::modem::spawn(
        config,
        events,
        token.clone(),
        &tracker,
        textback::clock::Clock::system(),
    );
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
            Some(ModemEvent::Input(Event::SmsReceived(InboundSms {
                pdu,
                storage: Some(storage),
                ..
            }))) => break (pdu, storage),
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

/// Waits for the next event that `pick` accepts, skipping others.
async fn next_event<T>(probe: &mut Probe, mut pick: impl FnMut(ModemEvent) -> Option<T>) -> T {
    loop {
        let event = tokio::time::timeout(WAIT, probe.events.recv())
            .await
            .expect("an event in time")
            .expect("the modem task runs");
        if let Some(found) = pick(event) {
            return found;
        }
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn every_model_is_set_up_receives_and_sends() {
    use textback::modem::virtual_modem::Model;
    for (name, model) in Model::ALL {
        let harness = Harness::with_options(Options {
            model: *model,
            // SIMCom and Quectel refuse SMS commands until SMS DONE, this long after power-up.
            sms_ready_after: std::time::Duration::from_millis(1200),
            ..Default::default()
        });
        let mut probe = Probe::open(harness.config.modems[0].clone(), WAIT)
            .await
            .unwrap_or_else(|err| panic!("{name}: {err}"));
        assert!(!probe.info.model.is_empty(), "{name}: {:?}", probe.info);
        assert_eq!(probe.info.iccid, "8944110068912345678", "{name}");
        assert_eq!(
            (probe.info.sms_used, probe.info.sms_capacity),
            (Some(0), Some(30)),
            "{name}"
        );
        // The per-model set-up from the models table.
        let commands = harness.modem.commands();
        let expected_init = match probe.info.manufacturer.to_ascii_lowercase() {
            m if m.contains("huawei") => Some("AT^CURC=0"),
            m if m.contains("quectel") => Some("AT+QURCCFG=\"urcport\",\"usbat\""),
            m if m.contains("simcom") && probe.info.model.contains("7600") => Some("AT+CLCC=1"),
            _ => None,
        };
        if let Some(command) = expected_init {
            assert!(
                commands.iter().any(|c| c == command),
                "{name}: {commands:?}"
            );
        }
        // Indications were set after the SIM's messages were ready: a new SMS is read at once.
        harness.modem.receive_sms(common::CALLER, "hello").await;
        let storage = next_event(&mut probe, |event| match event {
            ModemEvent::Input(Event::SmsReceived(sms)) => Some(sms.storage),
            _ => None,
        })
        .await;
        assert!(storage.is_some(), "{name}");
        assert_eq!(
            probe.handle().send_sms(one_sms()).await.unwrap().len(),
            1,
            "{name}"
        );
        assert_eq!(harness.modem.sent().len(), 1, "{name}");
        probe.close().await;
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn sms_commands_wait_for_sms_done_after_power_up() {
    use textback::modem::virtual_modem::Model;
    let harness = Harness::with_options(Options {
        model: Model::QuectelEc25,
        sms_ready_after: std::time::Duration::from_millis(2500),
        ..Default::default()
    });
    let probe = Probe::open(harness.config.modems[0].clone(), WAIT)
        .await
        .unwrap();
    let commands = harness.modem.commands();
    let selects = commands
        .iter()
        .filter(|c| c.starts_with("AT+CPMS=\"SM\""))
        .count();
    // Refused (+CMS ERROR: 314) before SMS DONE, asked again about once a second, then taken
    // as soon as the modem says SMS DONE: a few tries, not a tight loop.
    assert!((2..=5).contains(&selects), "{selects} tries: {commands:?}");
    // The first indication setting worked: no fall-back was needed.
    let cnmi: Vec<&String> = commands
        .iter()
        .filter(|c| c.starts_with("AT+CNMI"))
        .collect();
    assert_eq!(cnmi, ["AT+CNMI=2,1,0,1,0"]);
    probe.close().await;
}

/// Polls `done` until it holds or [`WAIT`] passes (the virtual modem's command log has no
/// "n-th time" notification).
async fn wait_until(mut done: impl FnMut() -> bool) -> bool {
    let deadline = tokio::time::Instant::now() + WAIT;
    while !done() {
        if tokio::time::Instant::now() > deadline {
            return false;
        }
        // A bounded poll: the condition is on a log another task appends to.
        tokio::time::sleep(std::time::Duration::from_millis(20)).await;
    }
    true
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_modem_that_restarts_by_itself_is_set_up_again() {
    use textback::modem::virtual_modem::Model;
    let harness = Harness::with_options(Options {
        model: Model::SimcomSim7600,
        ..Default::default()
    });
    let mut probe = Probe::open(harness.config.modems[0].clone(), WAIT)
        .await
        .unwrap();
    let count = |command: &str| {
        harness
            .modem
            .commands()
            .iter()
            .filter(|c| *c == command)
            .count()
    };
    assert_eq!(count("ATE0"), 1);
    // RDY, +CPIN: READY, SMS DONE ...: echo back on and the driver's settings gone.
    harness.modem.restart().await;
    assert!(
        wait_until(|| count("AT+CNUM") == 2).await,
        "set up again: {:?}",
        harness.modem.commands()
    );
    assert_eq!(count("ATE0"), 2);
    assert_eq!(count("AT+CNMI=2,1,0,1,0"), 2);
    // And still serving.
    harness
        .modem
        .receive_sms(common::CALLER, "after the restart")
        .await;
    next_event(&mut probe, |event| match event {
        ModemEvent::Input(Event::SmsReceived(sms)) => sms.storage,
        _ => None,
    })
    .await;
    probe.close().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn simcom_missed_call_lines_raise_each_call_once() {
    use textback::modem::virtual_modem::Model;
    let harness = Harness::with_options(Options {
        model: Model::SimcomSim7600,
        ..Default::default()
    });
    let mut probe = Probe::open(harness.config.modems[0].clone(), WAIT)
        .await
        .unwrap();
    // A MISSED_CALL line with no RING before it (a firmware that sends none, or RINGs lost while
    // the port was reopened) is a missed call of its own.
    harness
        .modem
        .send_line("MISSED_CALL: 10:05AM +447700900777")
        .await;
    let next_call = |event| match event {
        ModemEvent::Input(Event::CallMissed(call)) => Some(call.caller_raw),
        _ => None,
    };
    assert_eq!(next_event(&mut probe, next_call).await, "+447700900777");
    // RING, +CLIP, RING, +CLIP, NO CARRIER, then MISSED_CALL for the same call: raised once.
    harness.modem.call(Some("07700900123"), 2).await;
    assert_eq!(next_event(&mut probe, next_call).await, "07700900123");
    // The MISSED_CALL line follows NO CARRIER; once a later command is answered it has been read.
    probe.handle().command("AT").await.unwrap();
    let later = tokio::time::timeout(std::time::Duration::from_millis(300), async {
        loop {
            match probe.events.recv().await {
                Some(ModemEvent::Input(Event::CallMissed(call))) => return Some(call.caller_raw),
                Some(_) => continue,
                None => return None,
            }
        }
    })
    .await;
    assert!(later.is_err(), "a second missed call: {later:?}");
    probe.close().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_full_sim_that_stopped_indicating_is_emptied() {
    // A SIM of three slots whose modem sends no +CMTI (field note 3): only the memory-full line
    // (^SMMEMFULL) says texts are waiting.
    let harness = Harness::with_options(Options {
        capacity: 3,
        indications: false,
        ..Default::default()
    });
    let running = harness.start().await;
    assert!(harness.modem.wait_command(|c| c == "AT+CMGL=4", WAIT).await);
    for text in ["one", "two", "three"] {
        harness.modem.receive_sms(common::CALLER, text).await;
    }
    assert_eq!(
        harness
            .wait_count("SELECT count(*) FROM messages WHERE direction = 'in'", 3)
            .await,
        3
    );
    assert_eq!(
        harness.query_strings("SELECT body FROM messages WHERE direction = 'in' ORDER BY body"),
        ["one", "three", "two"]
    );
    // Each deleted from the SIM once stored: room again.
    assert!(
        wait_until(|| {
            harness
                .modem
                .commands()
                .iter()
                .filter(|c| c.starts_with("AT+CMGD="))
                .count()
                == 3
        })
        .await
    );
    running.stop().await.unwrap();
}
