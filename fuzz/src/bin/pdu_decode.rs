//! Fuzz target `pdu_decode`: see `textback_fuzz::pdu_decode`.
//!
//! Built by `cargo afl build` (which passes `--cfg fuzzing`) it runs under AFL++; built by a plain
//! `cargo build` it replays the files named on its command line, for a backtrace.

#[cfg(fuzzing)]
fn main() {
    afl::fuzz!(|data: &[u8]| textback_fuzz::pdu_decode(data));
}

#[cfg(not(fuzzing))]
fn main() {
    textback_fuzz::replay(textback_fuzz::pdu_decode);
}
