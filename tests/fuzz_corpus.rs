//! The fuzz seeds (fuzz/corpus/<target>/) and every input a fuzzer found a bug with
//! (fuzz/regressions/<target>/) replayed through the parsers, so that neither rots when a parser
//! changes: no panic, and the bounds the parsers promise. The fuzz targets themselves (fuzz/,
//! scripts/fuzz.sh) check more and are too slow for the suite; this takes well under a second.
//!
//! The inputs are laid out as the targets read them: for pdu_decode, at_lines and sip_stream a
//! control byte comes first (see fuzz/src/lib.rs).

use std::path::{Path, PathBuf};

use textback::codec::at::{self, Classifier, Frame, Pending};
use textback::codec::pdu::{self, SmscField};
use textback::config;
use textback::sip::framing::{self, StreamFramer};
use textback::sip::wire::{self, MAX_MESSAGE_BYTES};

/// The files of fuzz/corpus/<target>/ and fuzz/regressions/<target>/ (the latter may not exist).
fn inputs(target: &str) -> Vec<(PathBuf, Vec<u8>)> {
    let fuzz = Path::new(env!("CARGO_MANIFEST_DIR")).join("fuzz");
    let mut out = Vec::new();
    for kind in ["corpus", "regressions"] {
        let Ok(entries) = std::fs::read_dir(fuzz.join(kind).join(target)) else {
            continue;
        };
        let mut paths: Vec<PathBuf> = entries.flatten().map(|entry| entry.path()).collect();
        paths.sort();
        for path in paths {
            let data = std::fs::read(&path).expect("read a fuzz input");
            out.push((path, data));
        }
    }
    out
}

fn hex(octets: &[u8]) -> String {
    octets.iter().map(|octet| format!("{octet:02X}")).collect()
}

#[test]
fn pdu_decode() {
    let inputs = inputs("pdu_decode");
    assert!(inputs.len() > 10, "the pdu_decode seeds are there");
    for (_path, data) in inputs {
        let Some((&control, rest)) = data.split_first() else {
            continue;
        };
        let smsc = if control & 1 == 0 {
            SmscField::Present
        } else {
            SmscField::Absent
        };
        let text = if control & 2 != 0 {
            String::from_utf8_lossy(rest).into_owned()
        } else {
            hex(rest)
        };
        match pdu::decode(&text, smsc) {
            Ok(decoded) => drop(format!("{decoded:?}")),
            Err(error) => drop(error.to_string()),
        }
    }
}

#[test]
fn at_lines() {
    let inputs = inputs("at_lines");
    assert!(inputs.len() > 10, "the at_lines seeds are there");
    for (path, data) in inputs {
        let Some((&control, stream)) = data.split_first() else {
            continue;
        };
        let expect_prompt = control & 1 != 0;
        let mut buffer: Vec<u8> = Vec::new();
        let mut classifier = Classifier::new();
        // A byte at a time, the hardest way for the reader.
        for &byte in stream {
            buffer.push(byte);
            loop {
                let digest = at::next_frame(&buffer, expect_prompt);
                assert!(digest.consumed <= buffer.len(), "{}", path.display());
                if digest.consumed == 0 {
                    break;
                }
                buffer.drain(..digest.consumed);
                if let Some(Frame::Line(line)) = digest.frame {
                    let _ = classifier.classify(&line, Some(Pending::for_command("AT+CMGL=4")));
                }
            }
            assert!(buffer.len() < at::MAX_LINE, "{}", path.display());
        }
    }
}

#[test]
fn sip_datagram() {
    let inputs = inputs("sip_datagram");
    assert!(inputs.len() > 10, "the sip_datagram seeds are there");
    for (_path, data) in inputs {
        match wire::parse(&data) {
            Ok(incoming) => drop(format!("{incoming:?}")),
            Err(error) => {
                let _ = error.to_string();
                let _ = wire::reply_headers(&data);
            }
        }
    }
}

#[test]
fn sip_stream() {
    let inputs = inputs("sip_stream");
    assert!(inputs.len() > 10, "the sip_stream seeds are there");
    for (path, data) in inputs {
        let Some((&control, stream)) = data.split_first() else {
            continue;
        };
        // As the target: bit 6 repeats the input past 64 KiB (a peer sending it over and over).
        let stream = if control & 0x40 != 0 && !stream.is_empty() {
            stream.repeat((MAX_MESSAGE_BYTES + MAX_MESSAGE_BYTES / 4) / stream.len() + 1)
        } else {
            stream.to_vec()
        };
        let mut framer = StreamFramer::new();
        'reads: for read in stream.chunks(1025) {
            framer.push(read);
            loop {
                match framer.next() {
                    Ok(Some(framing::Frame::Message(message))) => {
                        let _ = wire::parse(&message);
                    }
                    Ok(Some(framing::Frame::KeepAlive { .. })) => {}
                    Ok(None) => break,
                    Err(_) => break 'reads,
                }
            }
            assert!(
                framer.buffered() <= MAX_MESSAGE_BYTES + read.len(),
                "{}",
                path.display()
            );
        }
    }
}

#[test]
fn config_parse() {
    let inputs = inputs("config_parse");
    assert!(inputs.len() > 5, "the config_parse seeds are there");
    for (path, data) in inputs {
        let Ok(text) = std::str::from_utf8(&data) else {
            continue;
        };
        match config::parse(text, &path) {
            Ok(loaded) => drop(format!("{:?}", loaded.config)),
            Err(error) => drop(error.to_string()),
        }
    }
}
