//! Cutting SIP messages out of a TCP (or TLS) byte stream, RFC 3261 §18.3: a message ends after
//! its header section and the number of body bytes its Content-Length gives. Content-Length is
//! mandatory on a stream (RFC 3261 §20.14), so a message without it is an error.
//!
//! Line ends between messages are keep-alives (RFC 5626 §3.5.1): a double CRLF is a "ping",
//! answered with a single CRLF "pong".
//!
//! Memory is bounded: a header section or a whole message above 64 KiB is an error, so the
//! buffer never holds more than one such message plus the bytes of the last read.

use thiserror::Error;

use super::wire::{MAX_MESSAGE_BYTES, parse_content_length, shown};

/// One unit cut from the stream.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Frame {
    /// The bytes of one whole message, header section and body, ready for `wire::parse`.
    Message(Vec<u8>),
    /// Line ends between messages (RFC 5626 §3.5.1). `pong_owed` is true for a double-CRLF
    /// ping, to be answered with a single CRLF; false for a lone CRLF (a pong).
    KeepAlive { pong_owed: bool },
}

/// Why the stream cannot be read further. After any of these the framer has dropped what it
/// held: message boundaries are lost, so the connection should be closed.
#[derive(Debug, Clone, PartialEq, Eq, Error)]
pub enum FramingError {
    #[error(
        "header section is longer than {MAX_MESSAGE_BYTES} bytes (64 KiB) without ending in a \
         blank line"
    )]
    HeaderTooLarge,
    #[error(
        "message would be {size} bytes (headers plus Content-Length); the most accepted is \
         {MAX_MESSAGE_BYTES} bytes (64 KiB)"
    )]
    MessageTooLarge { size: usize },
    #[error("message on a stream has no Content-Length header, so its end cannot be found")]
    NoContentLength,
    #[error("Content-Length is not a number: {value}")]
    BadContentLength { value: String },
    #[error("two Content-Length headers disagree: {first} and {second}")]
    ConflictingContentLength { first: usize, second: usize },
}

/// A stream framer: `push` what each read returns, then call `next` until it gives `Ok(None)`.
#[derive(Debug, Default)]
pub struct StreamFramer {
    /// Bytes received and not yet returned.
    buffer: Vec<u8>,
    /// How far the search for the end of the header section has got, so a header section
    /// arriving a byte at a time is scanned once, not once per byte.
    scanned: usize,
    /// A lone CRLF was the last thing returned and nothing followed it: if another lone CRLF
    /// comes next, the two were a ping split across reads.
    half_ping: bool,
    /// The size of the message at the front (header section and body) once its header section
    /// has been read, so that a body arriving a byte at a time does not have its header read
    /// again for every byte.
    frame_size: Option<usize>,
    /// How many times a header section was read for its Content-Length (for the tests).
    #[cfg(test)]
    header_reads: usize,
}

impl StreamFramer {
    /// An empty framer for a new connection.
    pub fn new() -> StreamFramer {
        StreamFramer::default()
    }

    /// Adds bytes read from the stream.
    pub fn push(&mut self, bytes: &[u8]) {
        self.buffer.extend_from_slice(bytes);
    }

    /// Bytes held that have not been returned yet.
    pub fn buffered(&self) -> usize {
        self.buffer.len()
    }

    /// The next whole frame, `Ok(None)` if more bytes are needed, or an error after which the
    /// connection should be closed.
    #[expect(
        clippy::should_implement_trait,
        reason = "Ok(None) means 'push more bytes', not the end, so this is not an Iterator"
    )]
    pub fn next(&mut self) -> Result<Option<Frame>, FramingError> {
        match self.next_frame() {
            Err(error) => {
                self.buffer.clear();
                self.forget_scan();
                self.half_ping = false;
                Err(error)
            }
            result => result,
        }
    }

    /// The front of the buffer moved: what was learnt about it is forgotten.
    fn forget_scan(&mut self) {
        self.scanned = 0;
        self.frame_size = None;
    }

    fn next_frame(&mut self) -> Result<Option<Frame>, FramingError> {
        if let Some(result) = self.keep_alive() {
            return Ok(result);
        }
        let size = match self.frame_size {
            Some(size) => size,
            None => {
                let Some(body_start) = self.header_end() else {
                    if self.buffer.len() > MAX_MESSAGE_BYTES {
                        return Err(FramingError::HeaderTooLarge);
                    }
                    return Ok(None);
                };
                if body_start > MAX_MESSAGE_BYTES {
                    return Err(FramingError::HeaderTooLarge);
                }
                let head = self.buffer.get(..body_start).unwrap_or_default();
                let length = content_length(head)?;
                #[cfg(test)]
                {
                    self.header_reads += 1;
                }
                let size = body_start.saturating_add(length);
                if size > MAX_MESSAGE_BYTES {
                    return Err(FramingError::MessageTooLarge { size });
                }
                self.frame_size = Some(size);
                size
            }
        };
        if self.buffer.len() < size {
            return Ok(None);
        }
        let message: Vec<u8> = self.buffer.drain(..size).collect();
        self.forget_scan();
        self.half_ping = false;
        Ok(Some(Frame::Message(message)))
    }

    /// Handles line ends at the front of the buffer. `None`: no line ends there, go on to a
    /// message; `Some(None)`: wait for more bytes; `Some(Some(frame))`: a keep-alive.
    fn keep_alive(&mut self) -> Option<Option<Frame>> {
        let mut position = 0;
        let mut ends = Vec::new();
        while ends.len() < 2 {
            match self.buffer.get(position) {
                Some(b'\n') => position += 1,
                Some(b'\r') => match self.buffer.get(position + 1) {
                    Some(b'\n') => position += 2,
                    // A CR that may be half of a CRLF: wait for the next byte. The stray CRs
                    // since the last line end go now, or a peer sending nothing but CRs would
                    // grow the buffer without end.
                    None => {
                        let stray_from = ends.last().copied().unwrap_or(0);
                        if position > stray_from {
                            self.buffer.drain(stray_from..position);
                            self.forget_scan();
                        }
                        return Some(None);
                    }
                    // A stray CR: skipped.
                    Some(_) => {
                        position += 1;
                        continue;
                    }
                },
                _ => break,
            }
            ends.push(position);
        }
        match ends.as_slice() {
            [] => {
                // Only stray CRs, if anything: drop them.
                if position > 0 {
                    self.buffer.drain(..position);
                    self.forget_scan();
                }
                None
            }
            [_, second] => {
                self.buffer.drain(..*second);
                self.forget_scan();
                self.half_ping = false;
                Some(Some(Frame::KeepAlive { pong_owed: true }))
            }
            [first, ..] => {
                let at_end = *first == self.buffer.len();
                let pong_owed = self.half_ping;
                self.half_ping = at_end && !pong_owed;
                self.buffer.drain(..*first);
                self.forget_scan();
                Some(Some(Frame::KeepAlive { pong_owed }))
            }
        }
    }

    /// Where the body starts: just after the first empty line (CRLF CRLF, or LF LF from devices
    /// that send bare LF). `None` if the header section has not ended yet.
    fn header_end(&mut self) -> Option<usize> {
        let mut position = self.scanned;
        while let Some(offset) = self
            .buffer
            .get(position..)
            .and_then(|rest| rest.iter().position(|&byte| byte == b'\n'))
        {
            let newline = position + offset;
            match (self.buffer.get(newline + 1), self.buffer.get(newline + 2)) {
                (Some(b'\n'), _) => {
                    self.scanned = newline;
                    return Some(newline + 2);
                }
                (Some(b'\r'), Some(b'\n')) => {
                    self.scanned = newline;
                    return Some(newline + 3);
                }
                (None, _) | (Some(b'\r'), None) => {
                    self.scanned = newline;
                    return None;
                }
                _ => position = newline + 1,
            }
        }
        self.scanned = self.buffer.len();
        None
    }
}

/// The Content-Length of a header section, by its full or compact (`l`) name in any case.
fn content_length(head: &[u8]) -> Result<usize, FramingError> {
    let mut declared: Option<usize> = None;
    for line in head.split(|&byte| byte == b'\n').skip(1) {
        let Some(colon) = line.iter().position(|&byte| byte == b':') else {
            continue;
        };
        let name = line.get(..colon).unwrap_or_default().trim_ascii();
        if !name.eq_ignore_ascii_case(b"content-length") && !name.eq_ignore_ascii_case(b"l") {
            continue;
        }
        let value = line.get(colon + 1..).unwrap_or_default();
        let text = String::from_utf8_lossy(value);
        let length = parse_content_length(&text).ok_or_else(|| FramingError::BadContentLength {
            value: shown(text.trim()),
        })?;
        match declared {
            Some(first) if first != length => {
                return Err(FramingError::ConflictingContentLength {
                    first,
                    second: length,
                });
            }
            _ => declared = Some(length),
        }
    }
    declared.ok_or(FramingError::NoContentLength)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::sip::wire::{self, Incoming};

    #[test]
    fn a_body_arriving_a_byte_at_a_time_has_its_header_read_once() {
        // A long header section (many Via lines) and a 20,000-byte body, one byte per read, as
        // a slow or hostile peer may send it: the header is read for its length once per
        // message, not once per byte (which cost 0.4 s of CPU for such a stream).
        let mut head = String::from("MESSAGE sip:a@b SIP/2.0\r\n");
        for n in 0..400 {
            head.push_str(&format!("Via: SIP/2.0/TCP 192.0.2.1;branch=z9hG4bK{n}\r\n"));
        }
        head.push_str("Content-Length: 20000\r\n\r\n");
        let mut stream = head.into_bytes();
        stream.extend(std::iter::repeat_n(b'x', 20_000));
        let twice = [stream.clone(), stream].concat();
        let mut framer = StreamFramer::new();
        let mut messages = 0;
        for byte in twice.chunks(1) {
            framer.push(byte);
            while let Some(frame) = framer.next().unwrap() {
                assert!(matches!(frame, Frame::Message(_)));
                messages += 1;
            }
        }
        assert_eq!(messages, 2);
        assert_eq!(framer.header_reads, 2);
    }

    const FIRST: &str = "INVITE sip:+441134960000@192.0.2.10 SIP/2.0\r\n\
        Via: SIP/2.0/TCP 203.0.113.5;branch=z9hG4bK1\r\n\
        From: <sip:+447700900123@203.0.113.5>;tag=1\r\n\
        To: <sip:+441134960000@sip.example.co.uk>\r\n\
        Call-ID: one@203.0.113.5\r\n\
        CSeq: 1 INVITE\r\n\
        Content-Length: 10\r\n\
        \r\n\
        v=0\r\no=x\r\n";

    const SECOND: &str = "OPTIONS sip:textback@192.0.2.10 SIP/2.0\r\n\
        v: SIP/2.0/TCP 203.0.113.5;branch=z9hG4bK2\r\n\
        f: <sip:ping@203.0.113.5>;tag=2\r\n\
        t: <sip:textback@192.0.2.10>\r\n\
        i: two@203.0.113.5\r\n\
        CSeq: 2 OPTIONS\r\n\
        L: 0\r\n\
        \r\n";

    /// Everything the framer gives until it needs more bytes.
    fn drain(framer: &mut StreamFramer) -> Vec<Frame> {
        let mut frames = Vec::new();
        loop {
            match framer.next() {
                Ok(Some(frame)) => frames.push(frame),
                Ok(None) => return frames,
                Err(error) => panic!("unexpected error: {error}"),
            }
        }
    }

    fn messages(frames: &[Frame]) -> Vec<&[u8]> {
        frames
            .iter()
            .filter_map(|frame| match frame {
                Frame::Message(bytes) => Some(bytes.as_slice()),
                Frame::KeepAlive { .. } => None,
            })
            .collect()
    }

    fn pongs_owed(frames: &[Frame]) -> usize {
        frames
            .iter()
            .filter(|frame| **frame == Frame::KeepAlive { pong_owed: true })
            .count()
    }

    fn first_error(bytes: &[u8]) -> FramingError {
        let mut framer = StreamFramer::new();
        framer.push(bytes);
        loop {
            match framer.next() {
                Ok(Some(_)) => continue,
                Ok(None) => panic!("expected an error"),
                Err(error) => return error,
            }
        }
    }

    #[test]
    fn several_messages_in_one_read() {
        let mut framer = StreamFramer::new();
        framer.push(format!("{FIRST}{SECOND}{FIRST}").as_bytes());
        let frames = drain(&mut framer);
        assert_eq!(
            messages(&frames),
            [FIRST.as_bytes(), SECOND.as_bytes(), FIRST.as_bytes()]
        );
        assert_eq!(framer.buffered(), 0);
    }

    #[test]
    fn frames_parse_with_wire() {
        let mut framer = StreamFramer::new();
        framer.push(format!("{FIRST}{SECOND}").as_bytes());
        for frame in drain(&mut framer) {
            let Frame::Message(bytes) = frame else {
                panic!("no keep-alive here");
            };
            assert!(matches!(wire::parse(&bytes), Ok(Incoming::Message(_))));
        }
    }

    #[test]
    fn every_split_point_of_two_messages() {
        let stream = format!("\r\n\r\n{FIRST}\r\n{SECOND}");
        let bytes = stream.as_bytes();
        for split in 0..=bytes.len() {
            let mut framer = StreamFramer::new();
            framer.push(&bytes[..split]);
            let mut frames = drain(&mut framer);
            framer.push(&bytes[split..]);
            frames.extend(drain(&mut framer));
            assert_eq!(
                messages(&frames),
                [FIRST.as_bytes(), SECOND.as_bytes()],
                "split at {split}"
            );
            assert_eq!(pongs_owed(&frames), 1, "split at {split}: {frames:?}");
            assert_eq!(framer.buffered(), 0, "split at {split}");
        }
    }

    #[test]
    fn one_byte_at_a_time() {
        let stream = format!("{FIRST}{SECOND}");
        let mut framer = StreamFramer::new();
        let mut frames = Vec::new();
        for byte in stream.as_bytes() {
            framer.push(&[*byte]);
            frames.extend(drain(&mut framer));
        }
        assert_eq!(messages(&frames), [FIRST.as_bytes(), SECOND.as_bytes()]);
    }

    #[test]
    fn keep_alives() {
        let mut framer = StreamFramer::new();
        framer.push(b"\r\n\r\n");
        assert_eq!(drain(&mut framer), [Frame::KeepAlive { pong_owed: true }]);
        framer.push(b"\r\n");
        assert_eq!(drain(&mut framer), [Frame::KeepAlive { pong_owed: false }]);
        framer.push(format!("\r\n{FIRST}").as_bytes());
        let frames = drain(&mut framer);
        // The lone CRLF just before completes the earlier lone CRLF: a ping split over reads.
        assert_eq!(frames[0], Frame::KeepAlive { pong_owed: true });
        assert_eq!(messages(&frames), [FIRST.as_bytes()]);
        framer.push(b"\r\n\r\n\r\n\r\n");
        assert_eq!(
            drain(&mut framer),
            [
                Frame::KeepAlive { pong_owed: true },
                Frame::KeepAlive { pong_owed: true }
            ]
        );
        framer.push(b"\n\n");
        assert_eq!(drain(&mut framer), [Frame::KeepAlive { pong_owed: true }]);
    }

    #[test]
    fn a_lone_cr_waits() {
        let mut framer = StreamFramer::new();
        framer.push(b"\r");
        assert_eq!(framer.next(), Ok(None));
        framer.push(b"\n\r\n");
        assert_eq!(drain(&mut framer), [Frame::KeepAlive { pong_owed: true }]);
    }

    /// Found by fuzz/ (sip_stream, its input repeated): a stream of CR bytes kept every one of
    /// them, waiting for the LF after the last, so a peer could grow the buffer without end.
    #[test]
    fn a_stream_of_carriage_returns_is_not_kept() {
        let mut framer = StreamFramer::new();
        for _ in 0..100 {
            framer.push(&[b'\r'; 1024]);
            assert_eq!(framer.next(), Ok(None));
            assert_eq!(
                framer.buffered(),
                1,
                "only the last CR, which may start a CRLF"
            );
        }
        // The CRs were stray: what follows them frames as before.
        framer.push(b"\n\r\r\n");
        assert_eq!(drain(&mut framer), [Frame::KeepAlive { pong_owed: true }]);
        framer.push(b"\r\n\r\r\r");
        assert_eq!(drain(&mut framer), []);
        assert_eq!(framer.buffered(), 3, "the CRLF and the last CR");
        framer.push(format!("\n{SECOND}").as_bytes());
        let frames = drain(&mut framer);
        assert_eq!(frames[0], Frame::KeepAlive { pong_owed: true });
        assert_eq!(messages(&frames), [SECOND.as_bytes()]);
    }

    #[test]
    fn lf_only_messages_frame() {
        let lf = FIRST
            .replace("\r\n", "\n")
            .replace("Content-Length: 10", "Content-Length: 8");
        let mut framer = StreamFramer::new();
        framer.push(format!("{lf}{SECOND}").as_bytes());
        let frames = drain(&mut framer);
        assert_eq!(messages(&frames), [lf.as_bytes(), SECOND.as_bytes()]);
    }

    #[test]
    fn content_length_name_in_any_case() {
        let upper = FIRST.replace("Content-Length:", "CONTENT-LENGTH :");
        let mut framer = StreamFramer::new();
        framer.push(upper.as_bytes());
        assert_eq!(messages(&drain(&mut framer)), [upper.as_bytes()]);
    }

    #[test]
    fn incomplete_body_waits() {
        let mut framer = StreamFramer::new();
        framer.push(&FIRST.as_bytes()[..FIRST.len() - 1]);
        assert_eq!(framer.next(), Ok(None));
        framer.push(b"\n");
        assert_eq!(messages(&drain(&mut framer)), [FIRST.as_bytes()]);
    }

    #[test]
    fn no_content_length_is_an_error() {
        let without = SECOND.replace("L: 0\r\n", "");
        assert_eq!(
            first_error(without.as_bytes()),
            FramingError::NoContentLength
        );
    }

    #[test]
    fn content_length_not_a_number_is_an_error() {
        let bad = FIRST.replace("Content-Length: 10", "Content-Length: -10");
        assert_eq!(
            first_error(bad.as_bytes()),
            FramingError::BadContentLength {
                value: "-10".into()
            }
        );
        let bad = FIRST.replace("Content-Length: 10", "Content-Length: 1e3");
        assert!(matches!(
            first_error(bad.as_bytes()),
            FramingError::BadContentLength { .. }
        ));
        let twice = FIRST.replace("Content-Length: 10", "Content-Length: 10\r\nl: 11");
        assert_eq!(
            first_error(twice.as_bytes()),
            FramingError::ConflictingContentLength {
                first: 10,
                second: 11
            }
        );
    }

    #[test]
    fn oversized_header_section_is_an_error_and_memory_is_dropped() {
        let mut framer = StreamFramer::new();
        framer.push(b"INVITE sip:a@b SIP/2.0\r\n");
        let filler = format!("X-Filler: {}\r\n", "y".repeat(1000));
        let mut result = Ok(None);
        while framer.buffered() <= MAX_MESSAGE_BYTES + 2000 {
            framer.push(filler.as_bytes());
            result = framer.next();
            if result.is_err() {
                break;
            }
        }
        assert_eq!(result, Err(FramingError::HeaderTooLarge));
        assert_eq!(framer.buffered(), 0);
    }

    #[test]
    fn oversized_content_length_is_an_error() {
        let big = FIRST.replace("Content-Length: 10", "Content-Length: 70000");
        assert!(matches!(
            first_error(big.as_bytes()),
            FramingError::MessageTooLarge { .. }
        ));
        let huge = FIRST.replace("Content-Length: 10", "Content-Length: 18446744073709551615");
        assert!(matches!(
            first_error(huge.as_bytes()),
            FramingError::MessageTooLarge { .. }
        ));
    }

    #[test]
    fn error_messages_read_well() {
        assert_eq!(
            FramingError::NoContentLength.to_string(),
            "message on a stream has no Content-Length header, so its end cannot be found"
        );
        assert_eq!(
            FramingError::MessageTooLarge { size: 70_000 }.to_string(),
            "message would be 70000 bytes (headers plus Content-Length); the most accepted is \
             65536 bytes (64 KiB)"
        );
    }

    proptest::proptest! {
        #[test]
        fn random_chunks_never_panic(
            chunks in proptest::collection::vec(proptest::collection::vec(proptest::prelude::any::<u8>(), 0..200), 0..10)
        ) {
            let mut framer = StreamFramer::new();
            for chunk in chunks {
                framer.push(&chunk);
                while let Ok(Some(_)) = framer.next() {}
            }
        }
    }
}
