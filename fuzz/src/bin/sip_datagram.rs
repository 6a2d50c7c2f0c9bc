//! Fuzz target `sip_datagram`: see `textback_fuzz::sip_datagram`.
//!
//! Built by `cargo afl build` (which passes `--cfg fuzzing`) it runs under AFL++; built by a plain
//! `cargo build` it replays the files named on its command line, for a backtrace.

#[cfg(fuzzing)]
fn main() {
    afl::fuzz!(|data: &[u8]| textback_fuzz::sip_datagram(data));
}

#[cfg(not(fuzzing))]
fn main() {
    textback_fuzz::replay(textback_fuzz::sip_datagram);
}
