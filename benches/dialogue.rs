//! Measures the built-in dialogue engine on one reply: the part of "reply received → next SMS in
//! the outbox" that is the engine's (the rest is one SQLite transaction).

use std::hint::black_box;

use chrono::{TimeZone, Utc};
use criterion::{Criterion, criterion_group, criterion_main};
use textback::core::conversation::{CallTime, Conversation};
use textback::core::replay::parse_profile;
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

criterion_group!(benches, engine);
criterion_main!(benches);
