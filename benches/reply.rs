//! Measures "reply received → next SMS in the outbox" with the built-in engine: the SMS-DELIVER
//! PDU as the modem hands it over is decoded, stored, matched to its conversation, read by the
//! engine, and the next question queued, all in one SQLite transaction (synchronous=FULL, so the
//! commit is on disk) — the time from the daemon taking the PDU to the outbox row being durable.
//! The modem's own time to send it is `benches/outbox.rs`'s.
//!
//! 200 conversations, each answered twice (each reply asks the next question), one reply at a
//! time. Checks as it goes that every reply queued exactly one text. Run with
//! `cargo bench --bench reply`; `cargo test --all-targets` runs it too (about a second).

use std::path::Path;
use std::sync::Arc;
use std::time::{Duration, Instant};

use textback::codec::pdu::{Timestamp, encode_deliver};
use textback::domain::CallSource;
use textback::domain::{CallId, CallerId, E164, ModemId};
use textback::event::{InboundSms, MissedCall};
use textback::flow;
use textback::store::Store;

const CONVERSATIONS: usize = 200;

fn config(database: &Path) -> String {
    format!(
        r#"
[storage]
database = "{}"

[dashboard]
listen = "127.0.0.1:0"

[limits]
texts_per_hour = 100000
texts_per_day = 100000

[[modem]]
id = "main"
port = "/dev/null"

[[profile]]
id = "acme"
name = "Acme Plumbing"

[[profile.question]]
id = "name"
ask = "Who am I speaking to?"

[[profile.question]]
id = "reason"
ask = "What do you need help with?"

[[profile.question]]
id = "postcode"
ask = "And the postcode of the job?"
"#,
        database.display()
    )
}

fn number(n: usize) -> String {
    format!("+4477009{n:05}")
}

fn percentile(sorted: &[Duration], p: f64) -> Duration {
    let index = ((sorted.len() as f64 - 1.0) * p).round() as usize;
    sorted.get(index).copied().unwrap_or_default()
}

#[tokio::main(flavor = "multi_thread", worker_threads = 2)]
async fn main() {
    let dir = tempfile::tempdir().expect("temporary directory");
    let text = config(&dir.path().join("bench.db"));
    let config = Arc::new(
        textback::config::parse(&text, Path::new("bench.toml"))
            .expect("config")
            .config,
    );
    let (store, closer) = Store::open(&config.storage.database).expect("store");
    let main = ModemId::parse("main").expect("modem id");
    for n in 0..CONVERSATIONS {
        let number = number(n);
        let caller = CallerId::Number(E164::parse(&number).expect("number"));
        flow::missed_call(
            &store,
            config.clone(),
            MissedCall {
                key: CallId::new(format!("bench-{n}")),
                source: CallSource::Sip,
                caller,
                caller_raw: number,
                called: None,
                sip_account: None,
                modem: None,
                at: chrono::Utc::now(),
            },
            vec![main.clone()],
        )
        .await
        .expect("missed call");
    }
    let queued = |store: Store| async move {
        store
            .run(|tx| tx.queued_count(&ModemId::parse("main").expect("modem id")))
            .await
            .expect("count")
    };
    assert_eq!(queued(store.clone()).await, CONVERSATIONS as i64);

    let replies = ["Sarah Jones", "The boiler is leaking in the loft"];
    let mut samples = Vec::with_capacity(CONVERSATIONS * replies.len());
    for (turn, reply) in replies.iter().enumerate() {
        for n in 0..CONVERSATIONS {
            let stamp = Timestamp {
                year: 2026,
                month: 11,
                day: 24,
                hour: 12,
                minute: turn as u8,
                second: (n % 60) as u8,
                zone_quarter_hours: 0,
            };
            let pdu = encode_deliver(&number(n), reply, &stamp, 0)
                .expect("pdu")
                .remove(0);
            let sms = InboundSms {
                modem: main.clone(),
                pdu,
                storage: None,
                at: chrono::Utc::now(),
            };
            let start = Instant::now();
            let after = flow::sms_received(&store, config.clone(), sms)
                .await
                .expect("reply stored");
            samples.push(start.elapsed());
            assert_eq!(after.wake, vec![main.clone()], "the reply queued a text");
        }
    }
    // Every reply queued exactly one text: the next question.
    assert_eq!(
        queued(store.clone()).await,
        (CONVERSATIONS * (1 + replies.len())) as i64
    );
    samples.sort();
    println!(
        "reply received -> next SMS in the outbox (committed): n={} p50={:.2?} p90={:.2?} p99={:.2?} max={:.2?}",
        samples.len(),
        percentile(&samples, 0.50),
        percentile(&samples, 0.90),
        percentile(&samples, 0.99),
        samples.last().copied().unwrap_or_default()
    );
    drop(store);
    let _ = tokio::task::spawn_blocking(move || closer.wait()).await;
}
