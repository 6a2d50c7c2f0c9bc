//! The fuzz targets: one function for each parser that reads outside input, feeding it as the
//! daemon does and checking what must hold whatever the bytes. A panic is a crash to AFL++.
//!
//! Several targets take their first input byte as a control byte (how to cut the stream into
//! reads, which command is in flight, ...) and the rest as the input proper; the seeds in
//! `corpus/<target>/` are laid out the same way. `scripts/fuzz.sh` builds and runs them.

use std::net::{Ipv4Addr, SocketAddr, SocketAddrV4};
use std::path::Path;
use std::time::Instant;

use rsip::prelude::*;
use textback::codec::at::{self, Classified, Classifier, Frame, Pending, Urc};
use textback::codec::pdu::{self, Pdu, SmscField};
use textback::config;
use textback::sip::endpoint::{Action, Endpoint, EndpointConfig};
use textback::sip::framing::{self, StreamFramer};
use textback::sip::identity;
use textback::sip::msg;
use textback::sip::wire::{self, Incoming, MAX_MESSAGE_BYTES};

/// Runs the target named `name` on `data`; `false` if there is no such target.
pub fn run(name: &str, data: &[u8]) -> bool {
    match name {
        "pdu_decode" => pdu_decode(data),
        "at_lines" => at_lines(data),
        "sip_datagram" => sip_datagram(data),
        "sip_stream" => sip_stream(data),
        "config_parse" => config_parse(data),
        _ => return false,
    }
    true
}

// --- pdu_decode ------------------------------------------------------------------------------

/// `codec::pdu::decode`, as the modem actor and `flow` call it on the hex of `+CMGR`, `+CMGL`,
/// `+CMT` and `+CDS`.
///
/// Control byte: bit 0 set means a bare TPDU (no SMSC field); bit 1 set means the rest is passed
/// as text (to reach the hex reader's errors); otherwise the rest is the PDU's octets, written as
/// hex by the harness (bit 2 picks lower case), so that mutations land in the TPDU fields.
pub fn pdu_decode(data: &[u8]) {
    let Some((&control, rest)) = data.split_first() else {
        return;
    };
    let smsc = if control & 1 == 0 {
        SmscField::Present
    } else {
        SmscField::Absent
    };
    if control & 2 != 0 {
        let text = String::from_utf8_lossy(rest);
        look_at_pdu(pdu::decode(&text, smsc));
        return;
    }
    let upper = to_hex(rest, true);
    let decoded = pdu::decode(&upper, smsc);
    // The decoder takes either case and ignores surrounding white space: same octets, same result.
    let lower = format!(" {}\r\n", to_hex(rest, false));
    assert_eq!(
        decoded,
        pdu::decode(&lower, smsc),
        "hex case or white space changed the result"
    );
    if control & 4 != 0 {
        look_at_pdu(decoded);
    } else {
        look_at_pdu(pdu::decode(&upper, smsc));
    }
}

fn to_hex(octets: &[u8], upper: bool) -> String {
    let digits: &[u8; 16] = if upper {
        b"0123456789ABCDEF"
    } else {
        b"0123456789abcdef"
    };
    let mut hex = String::with_capacity(octets.len() * 2);
    for octet in octets {
        hex.push(char::from(digits[usize::from(octet >> 4)]));
        hex.push(char::from(digits[usize::from(octet & 0x0f)]));
    }
    hex
}

/// Everything the daemon reads of a decoded PDU, and every error message.
fn look_at_pdu(decoded: Result<Pdu, pdu::DecodeError>) {
    match decoded {
        Ok(Pdu::Deliver(deliver)) => {
            let _ = deliver.sender.display();
            let _ = deliver.timestamp.to_rfc3339();
            let _ = deliver.smsc.as_ref().map(|smsc| smsc.display());
            let _ = deliver.text.chars().count();
        }
        Ok(Pdu::Submit(submit)) => {
            let _ = submit.recipient.display();
            let _ = submit.text.chars().count();
        }
        Ok(Pdu::StatusReport(report)) => {
            let _ = report.outcome();
            let _ = report.describe();
            let _ = report.recipient.display();
            let _ = report.submitted.to_rfc3339();
            let _ = report.discharged.to_rfc3339();
        }
        Err(error) => {
            let _ = error.to_string();
        }
    }
}

// --- at_lines --------------------------------------------------------------------------------

/// The most input `at_lines` reads: enough for a line cut at `MAX_LINE` and what follows it.
const AT_INPUT_LIMIT: usize = at::MAX_LINE + 256;

/// The commands the modem actor sends whose responses the classifier must tell apart; `None` is
/// the idle state, where every line is a URC.
const COMMANDS: [Option<&str>; 12] = [
    None,
    Some("AT"),
    Some("AT+CMGS=23"),
    Some("AT+CSQ"),
    Some("AT+CMGL=4"),
    Some("AT+CMGR=1"),
    Some("AT+CPMS?"),
    Some("AT+CREG?"),
    Some("AT+CLIP=1"),
    Some("ATE0"),
    Some("AT+CGSN"),
    Some("AT^ICCID?"),
];

/// `codec::at`: the modem's byte stream framed by `next_frame` and each line classified, as the
/// modem actor does, with the PDU of a `+CMT`/`+CDS` decoded.
///
/// Control byte: bit 0 means an AT+CMGS waits for its prompt (until it comes); bits 1-4 pick the command in
/// flight; all of it seeds how the stream is cut into reads. Checks: every call consumes no more
/// than it is given, and something whenever it returns a frame; the bytes held between reads stay
/// under `MAX_LINE`; and the same stream cut into reads anywhere gives the same lines.
pub fn at_lines(data: &[u8]) {
    let Some((&control, stream)) = data.split_first() else {
        return;
    };
    // Past one cut line, more bytes find nothing new: `next_frame` looks at the whole buffer on
    // each call, so a long input read a byte at a time costs its length times `MAX_LINE`, and a
    // 30 KiB one slowed a first run to 30 executions a second.
    let stream = stream.get(..AT_INPUT_LIMIT).unwrap_or(stream);
    let expect_prompt = control & 1 != 0;
    let command = COMMANDS[usize::from(control >> 1) % COMMANDS.len()];
    let chunked = read_at(reads(stream, control), expect_prompt, command);
    // A line longer than MAX_LINE is cut where the read held MAX_LINE bytes of it, so only
    // shorter input is the same whichever way it is read.
    if stream.len() < at::MAX_LINE {
        let whole = read_at(std::iter::once(stream), expect_prompt, command);
        assert_eq!(
            whole, chunked,
            "cutting the stream into reads changed the lines"
        );
    }
}

fn read_at<'a>(
    reads: impl Iterator<Item = &'a [u8]>,
    mut expect_prompt: bool,
    command: Option<&str>,
) -> Vec<(Frame, Option<Classified>)> {
    let mut buffer: Vec<u8> = Vec::new();
    let mut classifier = Classifier::new();
    let mut out = Vec::new();
    for read in reads {
        buffer.extend_from_slice(read);
        loop {
            let digest = at::next_frame(&buffer, expect_prompt);
            assert!(digest.consumed <= buffer.len(), "consumed past the buffer");
            if digest.consumed == 0 {
                assert!(digest.frame.is_none(), "a frame that consumed nothing");
                break;
            }
            buffer.drain(..digest.consumed);
            match digest.frame {
                None => {}
                Some(Frame::Prompt) => {
                    // As the modem actor: the prompt ends the wait for it, and the PDU is sent.
                    expect_prompt = false;
                    out.push((Frame::Prompt, None));
                }
                Some(Frame::Line(line)) => {
                    assert!(!line.is_empty(), "an empty line");
                    let pending = command.map(Pending::for_command);
                    let classified = classifier.classify(&line, pending);
                    look_at_line(&classified);
                    out.push((Frame::Line(line), Some(classified)));
                }
            }
        }
        assert!(
            buffer.len() < at::MAX_LINE,
            "{} bytes held with no line end",
            buffer.len()
        );
    }
    out
}

fn look_at_line(classified: &Classified) {
    match classified {
        Classified::Final(result) => {
            let _ = result.describe();
        }
        Classified::Response(line) => {
            let args = line.split_once(':').map_or(line.as_str(), |(_, args)| args);
            let _ = at::split_fields(args);
        }
        Classified::Urc(Urc::NewMessage { pdu }) | Classified::Urc(Urc::StatusReport { pdu }) => {
            look_at_pdu(pdu::decode(pdu, SmscField::Present));
        }
        Classified::Urc(urc) => {
            let _ = (urc.is_power_up(), urc.is_sms_ready());
        }
        Classified::Echo | Classified::AwaitingPdu => {}
    }
}

/// Cuts `stream` into reads of pseudo-random sizes drawn from `seed`: a high bit means one byte
/// at a time, else sizes from 1 to the seed's low seven bits plus one.
fn reads(stream: &[u8], seed: u8) -> impl Iterator<Item = &[u8]> {
    let most = if seed & 0x80 != 0 {
        1
    } else {
        usize::from(seed & 0x7f) + 1
    };
    let mut state = u32::from(seed) | 0x9e37_0000;
    let mut rest = stream;
    std::iter::from_fn(move || {
        if rest.is_empty() {
            return None;
        }
        // xorshift32
        state ^= state << 13;
        state ^= state >> 17;
        state ^= state << 5;
        let size = (state as usize % most + 1).min(rest.len());
        let (read, after) = rest.split_at(size);
        rest = after;
        Some(read)
    })
}

// --- sip_datagram ----------------------------------------------------------------------------

fn peer() -> SocketAddr {
    SocketAddr::V4(SocketAddrV4::new(Ipv4Addr::new(192, 0, 2, 1), 5060))
}

/// `sip::wire::parse` on one UDP datagram, then what the SIP layer reads of it: a request's
/// transaction keys and response headers (`sip::msg`), its caller and called numbers
/// (`sip::identity`), and a 200 built from it; a response's Via; a refused request read again by
/// `wire::reply_headers` and answered 400 by the core (`sip::endpoint`), with the error in the
/// reason phrase. Checks that each response built is framed right: one status line, `Name: value`
/// header lines with no control character from the input, and a blank line before the body.
pub fn sip_datagram(bytes: &[u8]) {
    // Over UDP: responses go to the Via's sent-by, or the source with rport.
    let reliable = false;
    match wire::parse(bytes) {
        Ok(Incoming::KeepAlive { .. }) => {}
        Ok(Incoming::Message(message)) => match *message {
            rsip::SipMessage::Request(request) => {
                if let Ok(info) = msg::RequestInfo::from_request(&request) {
                    let _ = format!("{info:?}");
                }
                let (caller, value) = identity::caller_with_value(&request);
                let _ = (format!("{caller:?}"), value);
                let _ = identity::called(&request);
                if let Ok(base) = msg::ResponseBase::new(&request.headers, peer(), reliable) {
                    check_framing(&wire::response_bytes(&base.response(200)));
                }
            }
            rsip::SipMessage::Response(response) => {
                for header in response.headers.iter() {
                    if let rsip::Header::Via(via) = header
                        && let Ok(via) = msg::Via::parse(via.value())
                    {
                        let _ = (via.branch(), via.sent_by_key(), via.is_reliable());
                    }
                }
            }
        },
        Err(error) => {
            let _ = error.to_string();
            let Some((method, headers)) = wire::reply_headers(bytes) else {
                return;
            };
            let mut endpoint = Endpoint::new(EndpointConfig::default());
            let actions = endpoint.handle_malformed(
                &method,
                &headers,
                error,
                peer(),
                reliable,
                Instant::now(),
            );
            for action in actions {
                if let Action::Send {
                    message: rsip::SipMessage::Response(response),
                    ..
                } = action
                {
                    check_framing(&wire::response_bytes(&response));
                }
            }
        }
    }
}

/// Panics unless `bytes` is a status line, header lines `Name: value` without control
/// characters, and a blank line.
fn check_framing(bytes: &[u8]) {
    let text = String::from_utf8_lossy(bytes);
    let Some((head, _body)) = text.split_once("\r\n\r\n") else {
        panic!("a response without a blank line after its headers:\n{text}");
    };
    let mut lines = head.split("\r\n");
    let status = lines.next().unwrap_or_default();
    let well_formed = status.starts_with("SIP/2.0 ")
        && std::iter::once(status)
            .chain(lines.clone())
            .all(|line| !line.chars().any(|c| c.is_control() && c != '\t'))
        && lines.all(|line| {
            line.split_once(':')
                .is_some_and(|(name, _)| !name.is_empty())
        });
    assert!(well_formed, "a response framed wrong:\n{text}");
}

// --- sip_stream ------------------------------------------------------------------------------

/// How long the `sip_stream` target may make its input by repeating it: past the framer's 64 KiB
/// limits, with small inputs.
const MOST_REPEATED_BYTES: usize = MAX_MESSAGE_BYTES + MAX_MESSAGE_BYTES / 4;

/// `sip::framing::StreamFramer` on a TCP stream cut into reads anywhere. What the framer cuts
/// out goes to `wire::parse` like a datagram, which `sip_datagram` covers.
///
/// Control byte: bit 6 repeats the input past 64 KiB (a peer sending the same bytes over and
/// over); all of it seeds how the stream is cut into reads. Checks: the bytes held stay within
/// one message (64 KiB) plus the last read, as the framer promises; and without repetition the
/// same messages and error come out however the stream is cut.
pub fn sip_stream(data: &[u8]) {
    let Some((&control, stream)) = data.split_first() else {
        return;
    };
    if control & 0x40 != 0 && !stream.is_empty() {
        let times = (MOST_REPEATED_BYTES / stream.len()).max(1);
        let long: Vec<u8> = stream.repeat(times);
        let _ = frame_stream(reads(&long, control));
        return;
    }
    let (messages, error) = frame_stream(reads(stream, control));
    let (whole_messages, whole_error) = frame_stream(std::iter::once(stream));
    assert_eq!(
        (&messages, &error),
        (&whole_messages, &whole_error),
        "cutting the stream into reads changed the messages"
    );
}

/// The messages of a stream until the framer needs more bytes or fails, and the error.
fn frame_stream<'a>(
    reads: impl Iterator<Item = &'a [u8]>,
) -> (Vec<Vec<u8>>, Option<framing::FramingError>) {
    let mut framer = StreamFramer::new();
    let mut messages = Vec::new();
    for read in reads {
        framer.push(read);
        loop {
            match framer.next() {
                Ok(Some(framing::Frame::Message(bytes))) => messages.push(bytes),
                Ok(Some(framing::Frame::KeepAlive { .. })) => {}
                Ok(None) => break,
                Err(error) => {
                    let _ = error.to_string();
                    assert_eq!(framer.buffered(), 0, "bytes kept after an error");
                    return (messages, Some(error));
                }
            }
        }
        assert!(
            framer.buffered() <= MAX_MESSAGE_BYTES + read.len(),
            "{} bytes held after a read of {}",
            framer.buffered(),
            read.len()
        );
    }
    (messages, None)
}

// --- config_parse ----------------------------------------------------------------------------

/// `config::parse` on a config file's text (the file is read as UTF-8, so other bytes never get
/// this far), with every problem's message written out.
pub fn config_parse(data: &[u8]) {
    let Ok(text) = std::str::from_utf8(data) else {
        return;
    };
    match config::parse(text, Path::new("fuzz.toml")) {
        Ok(loaded) => {
            for warning in &loaded.warnings {
                let _ = warning.to_string();
            }
            let _ = format!("{:?}", loaded.config);
        }
        Err(error) => {
            let _ = error.to_string();
        }
    }
}

// --- replay ----------------------------------------------------------------------------------

/// Runs `target` once on each file named on the command line (standard input when none), saying
/// which file it is on, so that a crash found by AFL++ can be replayed in a plain build.
pub fn replay(target: fn(&[u8])) {
    let paths: Vec<String> = std::env::args().skip(1).collect();
    if paths.is_empty() {
        let mut data = Vec::new();
        if let Err(error) = std::io::Read::read_to_end(&mut std::io::stdin(), &mut data) {
            eprintln!("cannot read standard input: {error}");
            std::process::exit(2);
        }
        target(&data);
        return;
    }
    for path in paths {
        eprintln!("{path}");
        match std::fs::read(&path) {
            Ok(data) => target(&data),
            Err(error) => {
                eprintln!("cannot read {path}: {error}");
                std::process::exit(2);
            }
        }
    }
}
