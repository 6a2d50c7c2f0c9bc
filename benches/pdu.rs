//! Measures the SMS PDU codec on the sizes the daemon meets.
//!
//! Sizes: a 1-part text is the usual first text to a caller; a 3-part text is the longest reply
//! we send; a 1-part SMS-DELIVER is the usual answer coming back.

use std::hint::black_box;

use criterion::{Criterion, criterion_group, criterion_main};
use textback::codec::pdu::{
    SmscField, SubmitOptions, Timestamp, decode, encode_deliver, encode_submit,
};

fn options() -> SubmitOptions {
    SubmitOptions {
        validity_minutes: Some(24 * 60),
        status_report: true,
        concat_reference: 42,
        wide_reference: false,
    }
}

fn codec(criterion: &mut Criterion) {
    let one_part = "Sorry we missed your call to Acme Plumbing. What do you need help with? Reply here and we will call you back today.";
    let three_parts = "Thanks! To get you a quote: ".repeat(14);
    let options = options();
    let stamp = Timestamp {
        year: 2026,
        month: 11,
        day: 24,
        hour: 10,
        minute: 15,
        second: 0,
        zone_quarter_hours: 4,
    };
    let reply = match encode_deliver(
        "+447700900123",
        "Leaking tap in the kitchen, any time after 2pm",
        &stamp,
        0,
    ) {
        Ok(mut parts) => parts.remove(0),
        Err(error) => panic!("cannot build the bench's SMS-DELIVER: {error}"),
    };

    criterion.bench_function("encode_submit 1 part", |bencher| {
        bencher.iter(|| encode_submit(black_box("+447700900123"), black_box(one_part), &options))
    });
    criterion.bench_function("encode_submit 3 parts", |bencher| {
        bencher.iter(|| {
            encode_submit(
                black_box("+447700900123"),
                black_box(&three_parts),
                &options,
            )
        })
    });
    criterion.bench_function("decode SMS-DELIVER 1 part", |bencher| {
        bencher.iter(|| decode(black_box(&reply), SmscField::Present))
    });
}

criterion_group!(benches, codec);
criterion_main!(benches);
