//! AT codec: splits the byte stream from a modem into lines and send prompts, and tells final
//! results, responses and unsolicited result codes apart.
//!
//! Pure and incremental, in the manner of a frame parser: [`next_frame`] looks at the bytes read so
//! far and says how many it used, so reads may split anywhere. Bytes that are not UTF-8 are kept as
//! replacement characters and never fail. Which lines are responses depends on the command in
//! flight, so [`Classifier`] is told about it through [`Pending`].

/// One unit of the modem's output.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Frame {
    /// A line, without its line end or trailing spaces. Never empty.
    Line(String),
    /// The `> ` that AT+CMGS sends when it wants the PDU (3GPP TS 27.005 §3.5.1). It comes as `> `
    /// with no line end, `>` alone, or `\r\n>\r\n`, depending on the modem.
    Prompt,
}

/// What [`next_frame`] found: a frame (or nothing yet) and how many bytes of the buffer it used.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Digest {
    pub frame: Option<Frame>,
    pub consumed: usize,
}

/// A line longer than this with no line end is cut and handed on as it is, so that a modem sending
/// garbage cannot make the buffer grow without end. The longest real line is a +CMGR PDU: 176 octets
/// of TPDU plus the SMSC field, 2 hex digits each, well under this.
pub const MAX_LINE: usize = 4096;

/// Finds the next frame at the start of `buf`. `expect_prompt` is true while an AT+CMGS waits for
/// its prompt: only then is a `>` at the start of a line a prompt.
///
/// Returns `consumed == 0` when nothing can be taken yet (more bytes are needed). Line ends are
/// `\r`, `\n` or both, in any mix: modems differ, and V0 mode ends lines with `\r` alone.
pub fn next_frame(buf: &[u8], expect_prompt: bool) -> Digest {
    let start = buf
        .iter()
        .position(|&b| b != b'\r' && b != b'\n')
        .unwrap_or(buf.len());
    let rest = &buf[start..];
    if rest.is_empty() {
        return Digest {
            frame: None,
            consumed: start,
        };
    }
    if expect_prompt && rest[0] == b'>' {
        let mut used = 1;
        while rest.get(used).is_some_and(|&b| b == b' ') {
            used += 1;
        }
        return Digest {
            frame: Some(Frame::Prompt),
            consumed: start + used,
        };
    }
    let end = rest.iter().position(|&b| b == b'\r' || b == b'\n');
    let (line_bytes, used) = match end {
        Some(end) => (&rest[..end], end + 1),
        None if rest.len() >= MAX_LINE => (&rest[..MAX_LINE], MAX_LINE),
        None => {
            return Digest {
                frame: None,
                consumed: start,
            };
        }
    };
    let text = String::from_utf8_lossy(line_bytes);
    let text = text.trim_matches([' ', '\t', '\0']);
    let frame = if text.is_empty() {
        None
    } else {
        Some(Frame::Line(text.to_string()))
    };
    Digest {
        frame,
        consumed: start + used,
    }
}

/// The final result that ends a command (ITU-T V.250 §5.7.1, 3GPP TS 27.007 §9.2, TS 27.005 §3.2.5).
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Final {
    Ok,
    Error,
    /// `+CME ERROR: n` (equipment error) as a number (AT+CMEE=1) or as words (AT+CMEE=2).
    Cme(ErrorCode),
    /// `+CMS ERROR: n` (message service error).
    Cms(ErrorCode),
    Busy,
    NoAnswer,
    NoDialtone,
}

/// An error code as the modem gave it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum ErrorCode {
    Number(u16),
    Text(String),
}

impl ErrorCode {
    fn parse(value: &str) -> ErrorCode {
        let value = value.trim();
        match value.parse::<u16>() {
            Ok(number) => ErrorCode::Number(number),
            Err(_) => ErrorCode::Text(value.to_string()),
        }
    }
}

impl Final {
    /// The final result as a line, for messages to people.
    pub fn describe(&self) -> String {
        match self {
            Final::Ok => "OK".to_string(),
            Final::Error => "ERROR".to_string(),
            Final::Cme(code) => format!("+CME ERROR: {}", describe_cme(code)),
            Final::Cms(code) => format!("+CMS ERROR: {}", describe_cms(code)),
            Final::Busy => "BUSY".to_string(),
            Final::NoAnswer => "NO ANSWER".to_string(),
            Final::NoDialtone => "NO DIALTONE".to_string(),
        }
    }
}

/// Parses a final result line; `None` when the line is not one.
pub fn parse_final(line: &str) -> Option<Final> {
    match line {
        "OK" | "0" => return Some(Final::Ok),
        "ERROR" | "4" => return Some(Final::Error),
        "BUSY" => return Some(Final::Busy),
        "NO ANSWER" => return Some(Final::NoAnswer),
        "NO DIALTONE" => return Some(Final::NoDialtone),
        _ => {}
    }
    if let Some(code) = line.strip_prefix("+CME ERROR:") {
        return Some(Final::Cme(ErrorCode::parse(code)));
    }
    if let Some(code) = line.strip_prefix("+CMS ERROR:") {
        return Some(Final::Cms(ErrorCode::parse(code)));
    }
    None
}

/// `+CME ERROR` codes in words (3GPP TS 27.007 §9.2.1), with what to do where it helps.
pub fn describe_cme(code: &ErrorCode) -> String {
    let number = match code {
        ErrorCode::Number(number) => *number,
        ErrorCode::Text(text) => return text.clone(),
    };
    let words = match number {
        3 => "operation not allowed",
        4 => "operation not supported",
        10 => "SIM not inserted: check the SIM is in the dongle, contacts first",
        11 => "SIM PIN required: set modem.pin in the config",
        12 => "SIM PUK required: the PIN was entered wrongly too often; unblock the SIM in a phone",
        13 => "SIM failure",
        14 => "SIM busy: the modem is still starting, try again in a few seconds",
        15 => "wrong SIM",
        16 => "incorrect password: modem.pin is wrong (each wrong try uses one of three)",
        20 => "memory full",
        21 => "invalid index",
        22 => "not found",
        30 => "no network service",
        31 => "network timeout",
        100 => "unknown error",
        _ => return format!("{number} (see 3GPP TS 27.007 §9.2)"),
    };
    format!("{number} ({words})")
}

/// `+CMS ERROR` codes in words (3GPP TS 27.005 §3.2.5 and TS 24.011 causes), with what to do.
pub fn describe_cms(code: &ErrorCode) -> String {
    let number = match code {
        ErrorCode::Number(number) => *number,
        ErrorCode::Text(text) => return text.clone(),
    };
    let words = match number {
        1 => "unassigned number: the recipient's number does not exist",
        8 => "operator barring",
        10 => "call barred",
        21 => "short message transfer rejected by the network",
        27 => "destination out of service",
        28 => "unidentified subscriber",
        29 => "facility rejected",
        30 => "unknown subscriber",
        38 => "network out of order",
        41 => "temporary failure",
        42 => "network congestion",
        47 => "resources unavailable",
        50 => "requested facility not subscribed: the SIM may have no SMS service or no credit",
        69 => "requested facility not implemented",
        96 => "invalid message",
        111 => "protocol error",
        300 => "ME failure",
        301 => "SMS service of ME reserved",
        302 => "operation not allowed",
        303 => "operation not supported",
        304 => "invalid PDU mode parameter (a bug in the PDU: not retried)",
        305 => "invalid text mode parameter",
        310 => "SIM not inserted",
        311 => "SIM PIN required",
        313 => "SIM failure",
        314 => "SIM busy",
        315 => "SIM wrong",
        320 => "memory failure",
        321 => "invalid memory index",
        322 => "memory full: delete messages from the SIM",
        330 => "SMSC address unknown: set modem.smsc in the config",
        331 => "no network service",
        332 => "network timeout",
        340 => "no +CNMA acknowledgement expected",
        500 => "unknown error (often a send too soon after the last one)",
        512..=535 => "manufacturer-specific error",
        _ => return format!("{number} (see 3GPP TS 27.005 §3.2.5)"),
    };
    format!("{number} ({words})")
}

/// An unsolicited result code: something the modem says on its own.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Urc {
    /// `RING`: an incoming call rings (ITU-T V.250).
    Ring,
    /// `+CLIP: "<number>",<type>,...` caller id, after AT+CLIP=1 (TS 27.007 §7.6). The number is as
    /// the network gave it, maybe empty; `validity` is the CLI validity field when present (0 valid,
    /// 1 withheld by the caller, 2 not available).
    Clip {
        number: String,
        number_type: Option<u16>,
        validity: Option<u8>,
    },
    /// `+CMTI: "<mem>",<index>`: a new SMS is stored (TS 27.005 §3.4.1).
    NewMessageStored { memory: String, index: u32 },
    /// `+CDSI: "<mem>",<index>`: a new status report is stored (TS 27.005 §3.4.1).
    StatusReportStored { memory: String, index: u32 },
    /// `+CMT: [<alpha>],<length>` then the PDU on the next line: an SMS routed straight to us.
    NewMessage { pdu: String },
    /// `+CDS: <length>` then the PDU on the next line: a status report routed straight to us.
    StatusReport { pdu: String },
    /// `+CREG: <stat>[,<lac>,<ci>[,<act>]]` (TS 27.007 §7.2), also +CGREG and +CEREG.
    Registration { stat: u8 },
    /// `NO CARRIER`: the call ended (the caller hung up, or we did).
    NoCarrier,
    /// The modem says it has (re)started or its SIM is ready: `RDY`, `SMS DONE`, `PB DONE`,
    /// `+QIND: SMS DONE`, `+CPIN: READY`, `^SIMST: 1`, `Call Ready`, `SMS Ready`.
    Ready(String),
    /// The message store is full: Huawei `^SMMEMFULL: "SM"`, Quectel `+QIND: "smsfull","SM"`.
    /// New messages are refused by the network until some are deleted (field note 3).
    StorageFull { memory: String },
    /// SIMCom's `MISSED_CALL: 11:01AM 07700900123`, sent after a call that was not answered.
    MissedCall { number: String },
    /// `+CUSD: <m>[,<str>[,<dcs>]]`: the network's answer to a USSD code (TS 27.007 §7.15). A
    /// `+CUSD:` line that does not read as one is [`Urc::Unknown`].
    Ussd(super::ussd::UssdLine),
    /// A vendor's status line we do not act on (`^RSSI`, `^MODE`, `^BOOT`, `^SRVST`, `+QIND`, `+ZPASR`, ...).
    Vendor(String),
    /// Any line we do not recognise outside a command: logged at debug, never an error.
    Unknown(String),
}

/// The command a [`Classifier`] should expect responses for.
#[derive(Debug, Clone, Copy)]
pub struct Pending<'a> {
    /// The command line as sent, without its `\r`: a line equal to it is the echo.
    pub command: &'a str,
    /// The prefix of the command's information response, e.g. `+CSQ` for AT+CSQ. Such a line is a
    /// response even when the same prefix can be unsolicited (`+CREG`).
    pub response_prefix: Option<&'a str>,
}

impl<'a> Pending<'a> {
    /// Guesses the response prefix from the command: `AT+CSQ` → `+CSQ`, `AT+CPIN?` → `+CPIN`,
    /// `AT^ICCID?` → `^ICCID`, `AT+CMGL=4` → `+CMGL`. Commands with no such prefix (ATE0, AT+CGSN
    /// answers a bare number) still take any line that is not a known URC as their response.
    pub fn for_command(command: &'a str) -> Pending<'a> {
        let body = command
            .get(2..)
            .filter(|_| command.len() > 2 && command[..2].eq_ignore_ascii_case("AT"));
        let response_prefix = body.and_then(|body| {
            if !body.starts_with('+') && !body.starts_with('^') {
                return None;
            }
            let end = body.find(['=', '?', ';']).unwrap_or(body.len());
            body.get(..end).filter(|prefix| prefix.len() > 1)
        });
        Pending {
            command,
            response_prefix,
        }
    }
}

/// What a line turned out to be.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Classified {
    /// The modem repeating our command (echo on).
    Echo,
    /// The end of the command in flight.
    Final(Final),
    /// A line of the command's response.
    Response(String),
    Urc(Urc),
    /// The first line of a two-line URC; its PDU comes next and is returned with it.
    AwaitingPdu,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum TwoLine {
    Message,
    StatusReport,
}

/// Classifies lines in order. Keeps the one piece of state the protocol needs: whether the next
/// line is the PDU of a `+CMT` or `+CDS`.
#[derive(Debug, Default)]
pub struct Classifier {
    awaiting_pdu: Option<TwoLine>,
}

/// Prefixes of the unsolicited lines vendors send that we know and do not act on.
const VENDOR_PREFIXES: &[&str] = &[
    "^RSSI:",
    "^HCSQ:",
    "^MODE:",
    "^BOOT:",
    "^SRVST:",
    "^SIMST:",
    "^DSFLOWRPT:",
    "^NWTIME:",
    "^STIN:",
    "^CEND:",
    "^ORIG:",
    "^CONF:",
    "^CONN:",
    "^SYSSTART",
    "^CURC:",
    "+QIND:",
    "+QUSIM:",
    "+CFUN:",
    "+CNSMOD:",
    "+ZUSIMR:",
    "+ZDONR:",
    "+ZPASR:",
    "+ZPSTM:",
    "+ZEND",
    "+CUSD:",
    "+CTZV:",
    "+CTZE:",
    "+NITZ:",
    "+PACSP",
    "+CIEV:",
    "+CRING:",
    "+STIN:",
    "VOICE CALL:",
    "+CLCC:",
    "POWERED DOWN",
    "+CSQN:",
];

impl Classifier {
    pub fn new() -> Self {
        Self::default()
    }

    /// Classifies one line given the command in flight (if any).
    pub fn classify(&mut self, line: &str, pending: Option<Pending<'_>>) -> Classified {
        if let Some(kind) = self.awaiting_pdu.take() {
            let pdu = line.to_string();
            return Classified::Urc(match kind {
                TwoLine::Message => Urc::NewMessage { pdu },
                TwoLine::StatusReport => Urc::StatusReport { pdu },
            });
        }
        if line == "NO CARRIER" || line == "3" {
            return Classified::Urc(Urc::NoCarrier);
        }
        if let Some(pending) = pending {
            if line.eq_ignore_ascii_case(pending.command) {
                return Classified::Echo;
            }
            if let Some(result) = parse_final(line) {
                return Classified::Final(result);
            }
            if let Some(prefix) = pending.response_prefix
                && line.starts_with(prefix)
            {
                return Classified::Response(line.to_string());
            }
        }
        if line.starts_with("+CMT:") {
            self.awaiting_pdu = Some(TwoLine::Message);
            return Classified::AwaitingPdu;
        }
        if line.starts_with("+CDS:") {
            self.awaiting_pdu = Some(TwoLine::StatusReport);
            return Classified::AwaitingPdu;
        }
        if let Some(urc) = parse_urc(line) {
            return Classified::Urc(urc);
        }
        match pending {
            Some(_) => Classified::Response(line.to_string()),
            None => Classified::Urc(Urc::Unknown(line.to_string())),
        }
    }
}

/// Recognises a one-line URC; `None` when the line is not a URC we know.
pub fn parse_urc(line: &str) -> Option<Urc> {
    if line == "RING" || line == "2" {
        return Some(Urc::Ring);
    }
    if let Some(args) = line.strip_prefix("+CLIP:") {
        let fields = split_fields(args);
        let number = fields.first().cloned().unwrap_or_default();
        let number_type = fields.get(1).and_then(|f| f.parse().ok());
        let validity = fields.get(5).and_then(|f| f.parse().ok());
        return Some(Urc::Clip {
            number,
            number_type,
            validity,
        });
    }
    if let Some(args) = line.strip_prefix("+CMTI:") {
        let (memory, index) = memory_and_index(args)?;
        return Some(Urc::NewMessageStored { memory, index });
    }
    if let Some(args) = line.strip_prefix("+CDSI:") {
        let (memory, index) = memory_and_index(args)?;
        return Some(Urc::StatusReportStored { memory, index });
    }
    for prefix in ["+CREG:", "+CGREG:", "+CEREG:"] {
        if let Some(args) = line.strip_prefix(prefix) {
            let fields = split_fields(args);
            // An unsolicited +CREG has <stat> first; the response to AT+CREG? has <n>,<stat>.
            // Outside a command only the unsolicited form arrives.
            let stat = fields.first().and_then(|f| f.parse().ok())?;
            return Some(Urc::Registration { stat });
        }
    }
    if matches!(
        line,
        "RDY" | "SMS DONE" | "PB DONE" | "+CPIN: READY" | "^SIMST: 1" | "Call Ready" | "SMS Ready"
    ) || line.starts_with("+QIND: SMS DONE")
        || line.starts_with("+QIND: PB DONE")
    {
        return Some(Urc::Ready(line.to_string()));
    }
    if let Some(args) = line.strip_prefix("^SMMEMFULL:") {
        let memory = split_fields(args).first().cloned().unwrap_or_default();
        return Some(Urc::StorageFull { memory });
    }
    if let Some(args) = line.strip_prefix("+QIND:") {
        let fields = split_fields(args);
        if fields
            .first()
            .is_some_and(|f| f.eq_ignore_ascii_case("smsfull"))
        {
            let memory = fields.get(1).cloned().unwrap_or_default();
            return Some(Urc::StorageFull { memory });
        }
    }
    if line.starts_with("+CUSD:") {
        return super::ussd::parse_line(line).map(Urc::Ussd);
    }
    if let Some(args) = line.strip_prefix("MISSED_CALL:") {
        // <time> <number>: the number is the last word (the time may read "11:01AM").
        let number = args.split_whitespace().last().unwrap_or("").to_string();
        let number = if args.split_whitespace().count() < 2 {
            String::new()
        } else {
            number
        };
        return Some(Urc::MissedCall { number });
    }
    if VENDOR_PREFIXES
        .iter()
        .any(|prefix| line.starts_with(prefix))
    {
        return Some(Urc::Vendor(line.to_string()));
    }
    None
}

impl Urc {
    /// `RDY`: the modem has just powered up (or restarted by itself) with its default settings.
    pub fn is_power_up(&self) -> bool {
        matches!(self, Urc::Ready(line) if line == "RDY")
    }

    /// The SIM's messages are loaded and SMS commands work: `SMS DONE`, `+QIND: SMS DONE`,
    /// `SMS Ready`.
    pub fn is_sms_ready(&self) -> bool {
        matches!(self, Urc::Ready(line) if line.ends_with("SMS DONE") || line == "SMS Ready")
    }
}

pub use super::fields::split_fields;

fn memory_and_index(args: &str) -> Option<(String, u32)> {
    let fields = split_fields(args);
    let memory = fields.first()?.clone();
    let index = fields.get(1)?.parse().ok()?;
    Some((memory, index))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_ussd_answer_is_a_urc_and_a_garbled_one_is_unknown() {
        let mut classifier = Classifier::new();
        assert!(matches!(
            classifier.classify("+CUSD: 0,\"Bal: 1.00\",15", None),
            Classified::Urc(Urc::Ussd(crate::codec::ussd::UssdLine { status: 0, .. }))
        ));
        assert_eq!(
            classifier.classify("+CUSD: banana", None),
            Classified::Urc(Urc::Unknown("+CUSD: banana".to_string()))
        );
    }

    /// Runs the framer over `input` fed in chunks at the given split points.
    fn frames(input: &[u8], splits: &[usize], expect_prompt: bool) -> Vec<Frame> {
        let mut buf: Vec<u8> = Vec::new();
        let mut out = Vec::new();
        let mut last = 0;
        let mut points: Vec<usize> = splits.to_vec();
        points.push(input.len());
        for point in points {
            buf.extend_from_slice(&input[last..point]);
            last = point;
            loop {
                let digest = next_frame(&buf, expect_prompt);
                if digest.consumed == 0 {
                    break;
                }
                buf.drain(..digest.consumed);
                if let Some(frame) = digest.frame {
                    out.push(frame);
                }
            }
        }
        out
    }

    fn line(text: &str) -> Frame {
        Frame::Line(text.to_string())
    }

    #[test]
    fn start_up_memory_full_and_missed_call_lines_are_told_apart() {
        // The start-up lines of SIMCom, Quectel and SIM800 modules (MODEMS.md table).
        for line in [
            "RDY",
            "SMS DONE",
            "+QIND: SMS DONE",
            "SMS Ready",
            "Call Ready",
            "PB DONE",
        ] {
            assert!(matches!(parse_urc(line), Some(Urc::Ready(_))), "{line}");
        }
        let sms_ready: Vec<bool> = ["SMS DONE", "+QIND: SMS DONE", "SMS Ready", "PB DONE", "RDY"]
            .iter()
            .map(|line| parse_urc(line).is_some_and(|u| u.is_sms_ready()))
            .collect();
        assert_eq!(sms_ready, [true, true, true, false, false]);
        assert!(parse_urc("RDY").is_some_and(|u| u.is_power_up()));
        assert!(!parse_urc("+CPIN: READY").is_some_and(|u| u.is_power_up()));

        assert_eq!(
            parse_urc("^SMMEMFULL: \"SM\""),
            Some(Urc::StorageFull {
                memory: "SM".to_string()
            })
        );
        assert_eq!(
            parse_urc("+QIND: \"smsfull\",\"SM\""),
            Some(Urc::StorageFull {
                memory: "SM".to_string()
            })
        );
        // Other +QIND lines stay vendor noise.
        assert!(matches!(
            parse_urc("+QIND: \"csq\",20,99"),
            Some(Urc::Vendor(_))
        ));

        assert_eq!(
            parse_urc("MISSED_CALL: 11:01AM 07700900123"),
            Some(Urc::MissedCall {
                number: "07700900123".to_string()
            })
        );
        // A withheld caller: the time alone.
        assert_eq!(
            parse_urc("MISSED_CALL: 11:01AM"),
            Some(Urc::MissedCall {
                number: String::new()
            })
        );
    }

    #[test]
    fn splits_lines_on_any_line_end() {
        let got = frames(b"\r\nOK\r\n+CSQ: 20,99\rRING\n\n", &[], false);
        assert_eq!(got, vec![line("OK"), line("+CSQ: 20,99"), line("RING")]);
    }

    #[test]
    fn every_split_point_gives_the_same_frames() {
        let input = b"AT+CMGS=23\r\r\n> 0011\r\n+CMGS: 7\r\n\r\nOK\r\n^RSSI: 17\r\n";
        let whole = frames(input, &[], false);
        for k in 0..input.len() {
            assert_eq!(frames(input, &[k], false), whole, "split at {k}");
        }
        // byte by byte
        let all: Vec<usize> = (1..input.len()).collect();
        assert_eq!(frames(input, &all, false), whole);
    }

    #[test]
    fn prompt_variants() {
        for input in [&b"> "[..], b">", b"\r\n>\r\n", b"\r\n> "] {
            assert_eq!(frames(input, &[], true), vec![Frame::Prompt], "{input:?}");
        }
        // Not waiting for a prompt, '>' is only ever part of a line.
        assert_eq!(frames(b"> x\r\n", &[], false), vec![line("> x")]);
    }

    #[test]
    fn a_partial_line_waits_for_more() {
        let digest = next_frame(b"\r\n+CMTI: \"SM\",", false);
        assert_eq!(digest.frame, None);
        assert_eq!(digest.consumed, 2);
    }

    #[test]
    fn garbage_never_fails() {
        let got = frames(b"\xff\xfe\x00OK\x00\r\n\x80\x81\r\n", &[], false);
        assert_eq!(got.len(), 2);
        assert_eq!(got[0], line("\u{fffd}\u{fffd}\0OK"));
        let long = vec![b'A'; MAX_LINE + 10];
        let got = frames(&long, &[], false);
        assert_eq!(got.len(), 1, "an over-long line is cut, the rest waits");
    }

    #[test]
    fn finals() {
        assert_eq!(parse_final("OK"), Some(Final::Ok));
        assert_eq!(
            parse_final("+CMS ERROR: 500"),
            Some(Final::Cms(ErrorCode::Number(500)))
        );
        assert_eq!(
            parse_final("+CME ERROR: SIM busy"),
            Some(Final::Cme(ErrorCode::Text("SIM busy".to_string())))
        );
        assert_eq!(parse_final("+CSQ: 1,2"), None);
        assert_eq!(
            Final::Cms(ErrorCode::Number(330)).describe(),
            "+CMS ERROR: 330 (SMSC address unknown: set modem.smsc in the config)"
        );
        assert!(describe_cme(&ErrorCode::Number(14)).contains("SIM busy"));
        assert!(describe_cme(&ErrorCode::Number(999)).contains("27.007"));
    }

    #[test]
    fn urcs_inside_a_response_are_urcs() {
        let mut classifier = Classifier::new();
        let pending = Pending::for_command("AT+CSQ");
        assert_eq!(pending.response_prefix, Some("+CSQ"));
        let seq = [
            "AT+CSQ",
            "^RSSI: 17",
            "+CSQ: 20,99",
            "+CMTI: \"ME\",3",
            "RING",
            "OK",
        ];
        let got: Vec<Classified> = seq
            .iter()
            .map(|l| classifier.classify(l, Some(pending)))
            .collect();
        assert_eq!(
            got,
            vec![
                Classified::Echo,
                Classified::Urc(Urc::Vendor("^RSSI: 17".to_string())),
                Classified::Response("+CSQ: 20,99".to_string()),
                Classified::Urc(Urc::NewMessageStored {
                    memory: "ME".to_string(),
                    index: 3
                }),
                Classified::Urc(Urc::Ring),
                Classified::Final(Final::Ok),
            ]
        );
    }

    #[test]
    fn creg_is_a_response_to_creg_and_a_urc_otherwise() {
        let mut classifier = Classifier::new();
        let pending = Pending::for_command("AT+CREG?");
        assert_eq!(
            classifier.classify("+CREG: 2,1,\"1A2B\",\"00C3\"", Some(pending)),
            Classified::Response("+CREG: 2,1,\"1A2B\",\"00C3\"".to_string())
        );
        assert_eq!(
            classifier.classify("+CREG: 5", None),
            Classified::Urc(Urc::Registration { stat: 5 })
        );
    }

    #[test]
    fn two_line_urcs_carry_their_pdu() {
        let mut classifier = Classifier::new();
        assert_eq!(
            classifier.classify("+CMT: ,24", None),
            Classified::AwaitingPdu
        );
        assert_eq!(
            classifier.classify(
                "07911326040000F0040B911346610089F60000208062917314080CC8F71D14969741F977FD07",
                None
            ),
            Classified::Urc(Urc::NewMessage {
                pdu: "07911326040000F0040B911346610089F60000208062917314080CC8F71D14969741F977FD07"
                    .to_string()
            })
        );
        // Even in the middle of a command, the +CDS PDU line belongs to the +CDS.
        let pending = Pending::for_command("AT+CSQ");
        assert_eq!(
            classifier.classify("+CDS: 25", Some(pending)),
            Classified::AwaitingPdu
        );
        assert!(matches!(
            classifier.classify(
                "0006D60B911326880736F4111011719551401110117195714000",
                Some(pending)
            ),
            Classified::Urc(Urc::StatusReport { .. })
        ));
    }

    #[test]
    fn bare_responses_belong_to_the_command() {
        let mut classifier = Classifier::new();
        let pending = Pending::for_command("AT+CGSN");
        assert_eq!(
            classifier.classify("867530012345678", Some(pending)),
            Classified::Response("867530012345678".to_string())
        );
        assert_eq!(
            classifier.classify("867530012345678", None),
            Classified::Urc(Urc::Unknown("867530012345678".to_string()))
        );
    }

    #[test]
    fn clip_fields() {
        assert_eq!(
            parse_urc("+CLIP: \"07700900123\",129,\"\",0,\"\",0"),
            Some(Urc::Clip {
                number: "07700900123".to_string(),
                number_type: Some(129),
                validity: Some(0)
            })
        );
        assert_eq!(
            parse_urc("+CLIP: \"\",128,,,,1"),
            Some(Urc::Clip {
                number: String::new(),
                number_type: Some(128),
                validity: Some(1)
            })
        );
    }

    #[test]
    fn response_prefix_guesses() {
        assert_eq!(
            Pending::for_command("AT+CPIN?").response_prefix,
            Some("+CPIN")
        );
        assert_eq!(
            Pending::for_command("AT+CMGL=4").response_prefix,
            Some("+CMGL")
        );
        assert_eq!(
            Pending::for_command("AT^ICCID?").response_prefix,
            Some("^ICCID")
        );
        assert_eq!(Pending::for_command("ATE0").response_prefix, None);
        assert_eq!(Pending::for_command("A").response_prefix, None);
    }

    proptest::proptest! {
        #[test]
        fn framing_never_panics_and_chunking_does_not_matter(
            input in proptest::collection::vec(proptest::num::u8::ANY, 0..300),
            split in 0usize..300,
            expect_prompt: bool,
        ) {
            let split = split.min(input.len());
            let whole = frames(&input, &[], expect_prompt);
            let parts = frames(&input, &[split], expect_prompt);
            // A line cut at MAX_LINE can differ by split, but inputs here are shorter.
            proptest::prop_assert_eq!(whole, parts);
        }

        #[test]
        fn classifying_never_panics(line in "\\PC*") {
            let mut classifier = Classifier::new();
            let _ = classifier.classify(&line, None);
            let _ = classifier.classify(&line, Some(Pending::for_command(&line)));
        }
    }
}
