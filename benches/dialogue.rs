//! Measures the built-in dialogue engine on one reply: the part of "reply received → next SMS in
//! the outbox" that is the engine's (the rest is one SQLite transaction).

use std::hint::black_box;

use chrono::{TimeZone, Utc};
use criterion::{Criterion, criterion_group, criterion_main};
use textback::core::conversation::{CallTime, Conversation};
use textback::core::replay::{self, parse_profile};
use textback::domain::E164;

fn engine(criterion: &mut Criterion) {
    let path = concat!(
        env!("CARGO_MANIFEST_DIR"),
        "/tests/dialogues/profiles/plumber.toml"
    );
    let text = std::fs::read_to_string(path).expect("the plumber profile of the corpus");
    let profile = parse_profile(&text, path).expect("a valid profile");
    let caller = E164::parse("07700 900123").expect("a number");
    let at = Utc.with_ymd_and_hms(2026, 11, 24, 10, 5, 0).unwrap();
    let (state, _) = Conversation::open(&profile, &caller, &CallTime(at));
    let mut group = criterion.benchmark_group("dialogue");
    group.bench_function("reply with several answers", |b| {
        b.iter(|| {
            Conversation::on_reply(
                &profile,
                black_box(&state),
                black_box("Dave here, boiler leaking in SW11 4AB, pretty urgent"),
                at,
            )
        })
    });
    group.bench_function("one-word name", |b| {
        b.iter(|| Conversation::on_reply(&profile, black_box(&state), black_box("Dave"), at))
    });
    let rant = "honestly the boiler has been making a banging noise for weeks and now ".repeat(28);
    group.bench_function("2,000-character reply", |b| {
        b.iter(|| Conversation::on_reply(&profile, black_box(&state), black_box(&rant), at))
    });
    group.finish();
}

/// Every reply of every conversation in tests/dialogues, answered by the engine five times over:
/// the time per reply at the median, p99 and worst (the goal: under 1 ms at p99).
fn corpus(_: &mut Criterion) {
    struct Timed(Vec<std::time::Duration>);
    impl replay::Responder for Timed {
        fn reply(
            &mut self,
            profile: &textback::core::conversation::DialogueProfile,
            state: &textback::core::conversation::ConversationState,
            text: &str,
            now: chrono::DateTime<Utc>,
            _: &[(replay::Who, String)],
        ) -> (
            textback::core::conversation::ConversationState,
            Vec<textback::core::conversation::Outcome>,
        ) {
            let started = std::time::Instant::now();
            let answer = Conversation::on_reply(profile, state, black_box(text), now);
            self.0.push(started.elapsed());
            answer
        }
    }
    let root = std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/dialogues");
    let mut profiles = std::collections::BTreeMap::new();
    let mut cases = Vec::new();
    for entry in std::fs::read_dir(&root).expect("tests/dialogues") {
        let path = entry.expect("an entry").path();
        if path.extension().is_some_and(|e| e == "toml") {
            let text = std::fs::read_to_string(&path).expect("a case file");
            cases.extend(replay::parse_cases(&text, "case file").expect("cases"));
        }
    }
    for case in &cases {
        profiles.entry(case.profile.clone()).or_insert_with(|| {
            let path = root.join("profiles").join(format!("{}.toml", case.profile));
            let text = std::fs::read_to_string(&path).expect("a profile");
            parse_profile(&text, "profile").expect("a valid profile")
        });
    }
    let mut timed = Timed(Vec::new());
    for _ in 0..5 {
        for case in &cases {
            replay::replay_with(case, &profiles[&case.profile], &mut timed).expect("a replay");
        }
    }
    let mut times = timed.0;
    times.sort();
    let at = |p: f64| times[((times.len() as f64 * p).ceil() as usize).clamp(1, times.len()) - 1];
    println!(
        "dialogue/corpus: {} replies ({} conversations x5): p50 {:?}, p99 {:?}, max {:?}",
        times.len(),
        cases.len(),
        at(0.50),
        at(0.99),
        times.last().copied().unwrap_or_default()
    );
}

criterion_group!(benches, engine, corpus);
criterion_main!(benches);
