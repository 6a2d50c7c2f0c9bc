//! A virtual GSM modem on a real pseudo-terminal. The driver opens its path exactly as it opens
//! /dev/ttyUSB2; on the other side this task answers AT commands the way USB dongles do (echo until
//! ATE0, `> ` with no line end, URCs in the middle of responses, vendor noise), keeps a SIM message
//! store, and can be told to ring, deliver an SMS, or fail the next send. It drives `textback demo`
//! and the tests.

use std::collections::BTreeMap;
use std::os::fd::{AsFd, OwnedFd};
use std::path::{Path, PathBuf};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use chrono::{Datelike, Timelike};
use nix::fcntl::{FcntlArg, FdFlag, OFlag, fcntl};
use nix::sys::termios;
use tokio::io::unix::AsyncFd;
use tokio::sync::{Notify, mpsc};
use tokio::task::JoinHandle;
use tokio_util::sync::CancellationToken;

use crate::codec::pdu::{self, Pdu, SmscField, Timestamp};

/// The dongle the virtual modem behaves like: the models of hardware/README.md, each with the
/// identity, start-up lines, unsolicited noise and quirks its real firmware shows (field notes in
/// MODEMS.md), so that the driver meets them in tests.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Model {
    /// A plain 3GPP modem: no vendor lines.
    Generic,
    /// Huawei E3372 in stick mode: `^RSSI`, `^MODE` and `^HCSQ` lines at any moment, even inside a
    /// response, until AT^CURC=0; `^SMMEMFULL` when the SIM's message store fills.
    HuaweiE3372,
    /// Huawei E1550: the older stick, the same noise as the E3372.
    HuaweiE1550,
    /// Huawei E173: as the E1550.
    HuaweiE173,
    /// ZTE MF190: `+ZPASR` / `+ZUSIMR` status lines that no command turns off; ICCID by AT+ZGETICCID.
    ZteMf190,
    /// SIMCom SIM7600: `RDY`, `+CPIN: READY`, `SMS DONE`, `PB DONE` at power-up, SMS commands
    /// refused until `SMS DONE`; `MISSED_CALL:` after a call that was not answered.
    SimcomSim7600,
    /// SIMCom SIM800: `RDY`, `Call Ready`, `SMS Ready` at power-up.
    SimcomSim800,
    /// Quectel EC25 / EG25: `RDY`, `+QUSIM: 1`, `+QIND: SMS DONE`, `+QIND: PB DONE` at power-up.
    QuectelEc25,
}

/// What a model says and does differently.
struct Persona {
    /// AT+CGMI and AT+CGMM answers.
    manufacturer: &'static str,
    model: &'static str,
    /// Lines at power-up and after AT+CFUN=1,1, before the SIM's messages are ready.
    boot: &'static [&'static str],
    /// The line that says SMS commands work now (sent [`Options::sms_ready_after`] after boot).
    sms_ready: Option<&'static str>,
    /// Status lines sent now and then, even inside a response.
    noise: &'static [&'static str],
    /// The command that stops the noise (its argument ending in 0), when there is one.
    noise_off: Option<&'static str>,
    /// The command that reads the ICCID, how its answer starts, and what follows the digits
    /// (Huawei keeps the BCD filler `F` of a 19-digit ICCID).
    iccid: (&'static str, &'static str, &'static str),
    /// The line sent when the SIM's message store is full, when the model sends one.
    memory_full: Option<&'static str>,
    /// Sends `MISSED_CALL: <time> <number>` after a call that rang out.
    missed_call_line: bool,
    /// How the model writes USSD: the code it takes and the network's answer it passes on.
    ussd: UssdStyle,
}

/// How a model passes USSD on, as the real ones do with a UK network's balance answer.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum UssdStyle {
    /// Huawei (`^USSDMODE` 1): the code packed as GSM 7-bit hex, the answer too, DCS 15.
    Gsm7Packed,
    /// The answer as UCS-2 hex, DCS 72 (Quectel and SIMCom LTE modules with most UK networks).
    Ucs2,
    /// Code and answer as text, DCS 15.
    Text,
}

const HUAWEI_NOISE: &[&str] = &["^RSSI: 17", "^HCSQ: \"LTE\",45,38,120,20", "^MODE: 7,17"];

impl Model {
    /// Every model, by the names `parse` takes.
    pub const ALL: &[(&str, Model)] = &[
        ("generic", Model::Generic),
        ("huawei-e3372", Model::HuaweiE3372),
        ("huawei-e1550", Model::HuaweiE1550),
        ("huawei-e173", Model::HuaweiE173),
        ("zte-mf190", Model::ZteMf190),
        ("simcom-sim7600", Model::SimcomSim7600),
        ("simcom-sim800", Model::SimcomSim800),
        ("quectel-ec25", Model::QuectelEc25),
    ];

    /// A model by its id in hardware/README.md (`huawei-e3372`, `quectel-ec25`, ...) or `generic`.
    pub fn parse(name: &str) -> Option<Model> {
        let name = name.trim().to_ascii_lowercase();
        let name = if name == "e3372" {
            "huawei-e3372"
        } else {
            name.as_str()
        };
        Model::ALL
            .iter()
            .find(|(id, _)| *id == name)
            .map(|(_, model)| *model)
    }

    /// The names `parse` takes, for error messages.
    pub fn names() -> String {
        Model::ALL
            .iter()
            .map(|(id, _)| *id)
            .collect::<Vec<_>>()
            .join(", ")
    }

    fn persona(self) -> Persona {
        let huawei = |model| Persona {
            manufacturer: "huawei",
            model,
            boot: &["^SIMST: 1"],
            sms_ready: None,
            noise: HUAWEI_NOISE,
            noise_off: Some("AT^CURC"),
            iccid: ("AT^ICCID", "^ICCID: ", "F"),
            memory_full: Some("^SMMEMFULL: \"SM\""),
            missed_call_line: false,
            ussd: UssdStyle::Gsm7Packed,
        };
        match self {
            Model::Generic => Persona {
                manufacturer: "Generic",
                model: "Virtual",
                boot: &[],
                sms_ready: None,
                noise: &[],
                noise_off: None,
                iccid: ("AT+CCID", "+CCID: ", ""),
                memory_full: None,
                missed_call_line: false,
                ussd: UssdStyle::Text,
            },
            Model::HuaweiE3372 => huawei("E3372"),
            Model::HuaweiE1550 => huawei("E1550"),
            Model::HuaweiE173 => huawei("E173"),
            Model::ZteMf190 => Persona {
                manufacturer: "ZTE CORPORATION",
                model: "MF190",
                boot: &["+ZUSIMR:2"],
                sms_ready: None,
                noise: &["+ZPASR: \"UMTS\"", "+ZUSIMR:2"],
                noise_off: None,
                iccid: ("AT+ZGETICCID", "+ZGETICCID: ", ""),
                memory_full: None,
                missed_call_line: false,
                ussd: UssdStyle::Text,
            },
            Model::SimcomSim7600 => Persona {
                manufacturer: "SIMCOM INCORPORATED",
                model: "SIMCOM_SIM7600E-H",
                boot: &["RDY", "+CPIN: READY"],
                sms_ready: Some("SMS DONE"),
                noise: &[],
                noise_off: None,
                iccid: ("AT+CICCID", "+ICCID: ", ""),
                memory_full: None,
                missed_call_line: true,
                ussd: UssdStyle::Ucs2,
            },
            Model::SimcomSim800 => Persona {
                manufacturer: "SIMCOM_Ltd",
                model: "SIMCOM_SIM800L",
                boot: &["RDY", "+CFUN: 1", "+CPIN: READY", "Call Ready"],
                sms_ready: Some("SMS Ready"),
                noise: &[],
                noise_off: None,
                iccid: ("AT+CCID", "", ""),
                memory_full: None,
                missed_call_line: false,
                ussd: UssdStyle::Text,
            },
            Model::QuectelEc25 => Persona {
                manufacturer: "Quectel",
                model: "EC25",
                boot: &["RDY", "+CFUN: 1", "+CPIN: READY", "+QUSIM: 1"],
                sms_ready: Some("+QIND: SMS DONE"),
                noise: &[],
                noise_off: None,
                iccid: ("AT+QCCID", "+QCCID: ", ""),
                memory_full: Some("+QIND: \"smsfull\",\"SM\""),
                missed_call_line: false,
                ussd: UssdStyle::Ucs2,
            },
        }
    }
}

/// How the virtual modem starts.
#[derive(Debug, Clone)]
pub struct Options {
    pub model: Model,
    /// The SIM asks for this PIN before anything else.
    pub pin: Option<String>,
    /// The service centre on the SIM; empty makes sends fail with +CMS ERROR: 330.
    pub smsc: String,
    /// The SIM's own number, for AT+CNUM.
    pub own_number: String,
    /// Time between RINGs of an incoming call (networks use 3 to 6 s; tests use less).
    pub ring_interval: Duration,
    /// Delay before a requested status report arrives.
    pub report_delay: Duration,
    /// The memory new SMS are stored in and named by +CMTI: "SM" (SIM), or "ME" as some
    /// dongles do, while AT+CMGR reads the memory last chosen with AT+CPMS (field note 4).
    pub incoming_memory: String,
    /// How many times AT+CPIN? answers +CME ERROR: 14 (SIM busy) after power-up (field note 11).
    pub sim_busy_answers: u32,
    /// For models that announce it (SIMCom, Quectel): how long after power-up the SIM's messages
    /// become ready (`SMS DONE`); until then SMS commands answer `+CMS ERROR: 314` (SIM busy).
    pub sms_ready_after: Duration,
    /// How many messages the SIM holds (AT+CPMS); a typical SIM holds 20 to 50.
    pub capacity: u32,
    /// Whether new messages are announced with +CMTI. Off, they sit on the SIM unannounced, as
    /// when a firmware ignores AT+CNMI or the store filled up (field note 3).
    pub indications: bool,
    /// How long the network takes to accept an SMS: the time between the PDU and `+CMGS`
    /// (a second or two on a good signal, up to a minute on a weak one; zero by default).
    pub send_delay: Duration,
    /// AT+CMGD answers OK but the message stays: a SIM store that will not empty (a corrupt
    /// store, or a firmware bug), so it stays full.
    pub undeletable: bool,
    /// The SIM's credit in pence, which a USSD code (any) answers with.
    pub balance_pence: i64,
    /// The dongle's IMEI (AT+CGSN).
    pub imei: String,
    /// The SIM's ICCID (19 or 20 digits), as the model's ICCID command prints it.
    pub iccid: String,
}

/// How the virtual network answers the next USSD codes ([`VirtualModem::ussd_answers`]).
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum UssdAnswer {
    /// The balance, in the model's style and one network's wording.
    Balance,
    /// These words instead, in the model's style.
    Words(String),
    /// AT+CUSD is refused: `+CME ERROR: 100`.
    Error,
    /// OK, then nothing: the network never answers.
    Silence,
    /// `+CUSD: 4`: the network does not support the code.
    NotSupported,
    /// A `+CUSD:` line that does not read, then the balance.
    GarbageFirst,
}

impl Default for Options {
    fn default() -> Self {
        Self {
            model: Model::HuaweiE3372,
            pin: None,
            smsc: "+447785016005".to_string(),
            own_number: "+447700900999".to_string(),
            ring_interval: Duration::from_millis(300),
            report_delay: Duration::from_millis(200),
            incoming_memory: "SM".to_string(),
            sim_busy_answers: 0,
            sms_ready_after: Duration::ZERO,
            capacity: 30,
            indications: true,
            send_delay: Duration::ZERO,
            undeletable: false,
            balance_pence: 450,
            imei: "867530012345678".to_string(),
            iccid: "8944110068912345678".to_string(),
        }
    }
}

/// An SMS the driver asked the virtual modem to send, decoded.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SentSms {
    pub to: String,
    pub text: String,
    pub reference: u8,
    pub status_report: bool,
    /// (reference, total, sequence) when this is one part of a longer message.
    pub part: Option<(u16, u8, u8)>,
}

enum Control {
    Call {
        caller: Option<String>,
        rings: u32,
    },
    Sms {
        from: String,
        text: String,
        /// Which parts to deliver, in this order (indexes from 0); None: all, in order.
        parts: Option<Vec<usize>>,
    },
    FailNextSend(u16),
    VanishAfterNextPdu,
    Hang,
    HangForGood,
    SimPresent(bool),
    Network(bool),
    Registration {
        stat: u8,
        radio_cycle_fixes: bool,
    },
    RefuseSends(Option<u16>),
    NextReportStatus(u8),
    NextReportZone(u8),
    ReportStatusAlways(Option<u8>),
    Balance(i64),
    Ussd(UssdAnswer),
    DropOwnTexts(bool),
    Restart,
    Line(String),
}

#[derive(Default)]
struct Shared {
    sent: Mutex<Vec<SentSms>>,
    commands: Mutex<Vec<String>>,
    /// When each command line arrived and each +CMGS answer left, for benchmarks.
    timeline: Mutex<Vec<(std::time::Instant, Moment)>>,
    changed: Notify,
}

/// A moment on the virtual modem's timeline.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Moment {
    /// A command line arrived (its first byte was read at most one read earlier).
    Command(String),
    /// The answer to an AT+CMGS (`+CMGS: <reference>` and OK) was written.
    SendConfirmed(u8),
}

/// The running virtual modem. Dropping it stops it.
pub struct VirtualModem {
    path: PathBuf,
    control: mpsc::Sender<Control>,
    shared: Arc<Shared>,
    token: CancellationToken,
    task: Option<JoinHandle<()>>,
}

impl VirtualModem {
    /// Opens a pseudo-terminal and starts answering on it.
    pub fn start(options: Options) -> std::io::Result<VirtualModem> {
        let pty = nix::pty::openpty(None, None).map_err(std::io::Error::from)?;
        let path = nix::unistd::ttyname(&pty.slave).map_err(std::io::Error::from)?;
        // Raw mode on the line: no echo by the tty itself, no CR/LF translation. The modem echoes.
        let mut attributes = termios::tcgetattr(&pty.slave).map_err(std::io::Error::from)?;
        termios::cfmakeraw(&mut attributes);
        termios::tcsetattr(&pty.slave, termios::SetArg::TCSANOW, &attributes)
            .map_err(std::io::Error::from)?;
        // openpty(3) does not set close-on-exec: without it a process spawned meanwhile (a test's
        // `textback run`) would inherit the master and keep the line up after we close it.
        for fd in [pty.master.as_fd(), pty.slave.as_fd()] {
            fcntl(fd, FcntlArg::F_SETFD(FdFlag::FD_CLOEXEC)).map_err(std::io::Error::from)?;
        }
        let flags = fcntl(pty.master.as_fd(), FcntlArg::F_GETFL).map_err(std::io::Error::from)?;
        fcntl(
            pty.master.as_fd(),
            FcntlArg::F_SETFL(OFlag::from_bits_truncate(flags) | OFlag::O_NONBLOCK),
        )
        .map_err(std::io::Error::from)?;
        // SAFETY: `register` needs the descriptor to stay open and unchanged while registered: the
        // AsyncFd owns the OwnedFd and nothing swaps it out.
        let master = unsafe { AsyncFd::register(pty.master) }.map_err(|err| err.into_parts().1)?;
        let (control, control_rx) = mpsc::channel(64);
        let shared = Arc::new(Shared::default());
        let token = CancellationToken::new();
        let machine = Machine::new(options, master, pty.slave, shared.clone(), control_rx);
        let task = tokio::spawn(machine.run(token.clone()));
        Ok(VirtualModem {
            path,
            control,
            shared,
            token,
            task: Some(task),
        })
    }

    /// The device path to open, like /dev/pts/3.
    pub fn path(&self) -> &Path {
        &self.path
    }

    /// Rings the SIM `rings` times from `caller` (None: withheld), then the caller hangs up.
    pub async fn call(&self, caller: Option<&str>, rings: u32) {
        let _ = self
            .control
            .send(Control::Call {
                caller: caller.map(str::to_string),
                rings,
            })
            .await;
    }

    /// Delivers an SMS from `from`, split into parts when long, stored on the SIM with +CMTI.
    pub async fn receive_sms(&self, from: &str, text: &str) {
        let _ = self
            .control
            .send(Control::Sms {
                from: from.to_string(),
                text: text.to_string(),
                parts: None,
            })
            .await;
    }

    /// Delivers only the listed parts of a multipart SMS, in the order given (indexes from 0):
    /// parts out of order, or a part that never arrives.
    pub async fn receive_sms_parts(&self, from: &str, text: &str, parts: &[usize]) {
        let _ = self
            .control
            .send(Control::Sms {
                from: from.to_string(),
                text: text.to_string(),
                parts: Some(parts.to_vec()),
            })
            .await;
    }

    /// Makes the next AT+CMGS fail with `+CMS ERROR: code`.
    pub async fn fail_next_send(&self, code: u16) {
        let _ = self.control.send(Control::FailNextSend(code)).await;
    }

    /// Makes the modem vanish (as if unplugged) right after it takes the next PDU, before it
    /// confirms it: the sender cannot know whether the SMS went out.
    pub async fn vanish_after_next_pdu(&self) {
        let _ = self.control.send(Control::VanishAfterNextPdu).await;
    }

    /// Makes the modem hang: it reads what it is sent but answers nothing, as a crashed dongle
    /// firmware does, until AT+CFUN=1,1 resets it.
    pub async fn hang(&self) {
        let _ = self.control.send(Control::Hang).await;
    }

    /// Takes the SIM out (`false`) or puts it back (`true`).
    /// Stops answering anything, even AT+CFUN=1,1, until the test ends: only a replug (a USB
    /// reset) or a person could bring such a dongle back.
    pub async fn hang_for_good(&self) {
        let _ = self.control.send(Control::HangForGood).await;
    }

    pub async fn set_sim_present(&self, present: bool) {
        let _ = self.control.send(Control::SimPresent(present)).await;
    }

    /// Makes the status report of the next SMS sent carry this TP-Status (TS 23.040 §9.2.3.15):
    /// 0x00 delivered, 0x30-0x3F the SMSC still trying, 0x40-0x7F failed.
    pub async fn next_report_status(&self, status: u8) {
        let _ = self.control.send(Control::NextReportStatus(status)).await;
    }

    /// Restarts the modem by itself, as after a brown-out: its start-up lines (`RDY` ...), echo
    /// on, and none of the settings the driver made.
    /// The next status report carries this octet as its service centre time stamp's zone, as
    /// some SMSCs send one that is not two decimal semi-octets (python-gsmmodem issue #15: 0xC2).
    pub async fn next_report_zone(&self, octet: u8) {
        let _ = self.control.send(Control::NextReportZone(octet)).await;
    }

    /// Every status report from now on carries this TP-Status (Some), as from a network that
    /// silently stops delivering a SIM's texts; None goes back to "received".
    pub async fn report_status_always(&self, status: Option<u8>) {
        let _ = self.control.send(Control::ReportStatusAlways(status)).await;
    }

    /// Drops (`true`) texts sent to the SIM's own number instead of delivering them back to it
    /// (`false`, the default): a network that loses them, for the self-test.
    pub async fn drop_own_texts(&self, drop: bool) {
        let _ = self.control.send(Control::DropOwnTexts(drop)).await;
    }

    /// Sets the SIM's credit, in pence, that USSD codes answer with.
    pub async fn set_balance(&self, pence: i64) {
        let _ = self.control.send(Control::Balance(pence)).await;
    }

    /// How the network answers USSD codes from now on.
    pub async fn ussd_answers(&self, answer: UssdAnswer) {
        let _ = self.control.send(Control::Ussd(answer)).await;
    }

    pub async fn restart(&self) {
        let _ = self.control.send(Control::Restart).await;
    }

    /// Sends one line as it is, unprompted: a URC, or garbage.
    pub async fn send_line(&self, line: &str) {
        let _ = self.control.send(Control::Line(line.to_string())).await;
    }

    /// Loses (`false`) or regains (`true`) the network, with a +CREG URC as a modem sends.
    pub async fn set_network(&self, registered: bool) {
        let _ = self.control.send(Control::Network(registered)).await;
    }

    /// Every SMS sent so far.
    /// Changes the registration (TS 27.007 §7.2 <stat>: 1 home, 5 roaming, 2 searching, 3
    /// denied, 0 not registered) and says so with +CREG (and +CEREG on LTE models).
    pub async fn set_registration(&self, stat: u8) {
        let _ = self
            .control
            .send(Control::Registration {
                stat,
                radio_cycle_fixes: false,
            })
            .await;
    }

    /// Takes the SIM off the network with `stat` (2 searching, 3 denied) until the radio is
    /// switched off and on again (AT+CFUN=0, then AT+CFUN=1).
    pub async fn off_network_until_radio_cycle(&self, stat: u8) {
        let _ = self
            .control
            .send(Control::Registration {
                stat,
                radio_cycle_fixes: true,
            })
            .await;
    }

    /// Refuses every send with `+CMS ERROR: <code>` (Some), as a network refuses a barred SIM
    /// or one without credit, or sends again (None).
    pub async fn refuse_sends(&self, code: Option<u16>) {
        let _ = self.control.send(Control::RefuseSends(code)).await;
    }

    pub fn sent(&self) -> Vec<SentSms> {
        self.shared
            .sent
            .lock()
            .map(|sent| sent.clone())
            .unwrap_or_default()
    }

    /// When each command arrived and each send was confirmed, in order.
    pub fn timeline(&self) -> Vec<(std::time::Instant, Moment)> {
        self.shared
            .timeline
            .lock()
            .map(|t| t.clone())
            .unwrap_or_default()
    }

    /// Every command line received so far.
    pub fn commands(&self) -> Vec<String> {
        self.shared
            .commands
            .lock()
            .map(|c| c.clone())
            .unwrap_or_default()
    }

    /// Waits until at least `count` SMS have been sent, or `timeout` passes; returns them all.
    pub async fn wait_sent(&self, count: usize, timeout: Duration) -> Vec<SentSms> {
        let deadline = tokio::time::Instant::now() + timeout;
        loop {
            let notified = self.shared.changed.notified();
            let sent = self.sent();
            if sent.len() >= count {
                return sent;
            }
            if tokio::time::timeout_at(deadline, notified).await.is_err() {
                return self.sent();
            }
        }
    }

    /// Waits until a command line satisfying `predicate` has been received.
    pub async fn wait_command(&self, predicate: impl Fn(&str) -> bool, timeout: Duration) -> bool {
        let deadline = tokio::time::Instant::now() + timeout;
        loop {
            let notified = self.shared.changed.notified();
            if self.commands().iter().any(|c| predicate(c)) {
                return true;
            }
            if tokio::time::timeout_at(deadline, notified).await.is_err() {
                return false;
            }
        }
    }

    /// Stops the modem; its path vanishes.
    pub async fn stop(mut self) {
        self.token.cancel();
        if let Some(task) = self.task.take() {
            let _ = task.await;
        }
    }
}

impl Drop for VirtualModem {
    fn drop(&mut self) {
        self.token.cancel();
    }
}

/// A message slot on the virtual SIM.
struct Slot {
    /// "SM" or "ME".
    memory: String,
    pdu: String,
    /// TS 27.005 <stat>: 0 received unread, 1 received read.
    stat: u8,
}

/// What the line is doing.
enum Mode {
    Command,
    /// After AT+CMGS=<length>: collecting the PDU until Ctrl-Z (send) or ESC (cancel).
    Body {
        length: usize,
    },
}

struct Machine {
    options: Options,
    master: AsyncFd<OwnedFd>,
    /// Held open so that the master never reads EIO while the driver has the port closed.
    _slave: OwnedFd,
    shared: Arc<Shared>,
    control: mpsc::Receiver<Control>,
    input: Vec<u8>,
    mode: Mode,
    echo: bool,
    pin_needed: bool,
    /// The memory AT+CMGR, AT+CMGL and AT+CMGD work on (AT+CPMS's first argument).
    read_memory: String,
    sim_busy_left: u32,
    vendor_lines: bool,
    smsc: String,
    store: BTreeMap<u32, Slot>,
    next_reference: u8,
    next_concat: u8,
    fail_next: Option<u16>,
    /// Set by [`VirtualModem::vanish_after_next_pdu`]; `vanished` once it has happened.
    vanish_after_pdu: bool,
    vanished: bool,
    /// Answers nothing until AT+CFUN=1,1.
    hung: bool,
    /// Answers nothing at all, whatever it is sent: a dongle that needs a replug.
    dead: bool,
    /// The SIM has been taken out.
    sim_absent: bool,
    /// AT+CREG <stat> (TS 27.007 §7.2): 1 home, 5 roaming, 2 searching, 3 denied, 0 not
    /// registered. Texts go only at 1 and 5; otherwise +CMS ERROR: 331.
    registration: u8,
    /// Set by [`VirtualModem::off_network_until_radio_cycle`]: AT+CFUN=0 then AT+CFUN=1 brings
    /// the SIM back (home network), as it usually does on real networks (field notes).
    radio_cycle_fixes: bool,
    /// AT+CFUN=0 was given: the radio is off until AT+CFUN=1.
    radio_off: bool,
    /// Every send is refused with this +CMS ERROR until cleared (a barred SIM, no credit).
    refuse_sends: Option<u16>,
    /// AT+CNMI <mt>=2: new SMS are routed straight to the line as +CMT, not stored.
    direct_routing: bool,
    noise_counter: u32,
    persona: Persona,
    /// Until then SMS commands answer +CMS ERROR: 314 (the SIM's messages are not ready).
    sms_ready_at: tokio::time::Instant,
    /// TP-Status of the next status report.
    next_report_status: u8,
    /// The zone octet of the next status report's time stamp, when set.
    next_report_zone: Option<u8>,
    /// TP-Status of every status report until cleared (a network silently not delivering).
    report_status_always: Option<u8>,
    /// The SIM's credit in pence.
    balance_pence: i64,
    /// How USSD codes are answered.
    ussd_answer: UssdAnswer,
    /// Texts to the SIM's own number are lost instead of coming back.
    drop_own_texts: bool,
    /// Lines waiting for their moment (status reports, start-up lines): (when, lines).
    scheduled: Vec<(tokio::time::Instant, Vec<String>)>,
    /// The call being rung: (caller, rings left, next ring).
    ringing: Option<(Option<String>, u32, tokio::time::Instant)>,
    /// Calls asked for while another rings: a line rings with one call at a time.
    queued_calls: std::collections::VecDeque<(Option<String>, u32)>,
}

impl Machine {
    fn new(
        options: Options,
        master: AsyncFd<OwnedFd>,
        slave: OwnedFd,
        shared: Arc<Shared>,
        control: mpsc::Receiver<Control>,
    ) -> Self {
        Self {
            pin_needed: options.pin.is_some(),
            read_memory: "SM".to_string(),
            sim_busy_left: options.sim_busy_answers,
            vendor_lines: !options.model.persona().noise.is_empty(),
            persona: options.model.persona(),
            sms_ready_at: tokio::time::Instant::now(),
            next_report_status: 0,
            next_report_zone: None,
            report_status_always: None,
            balance_pence: options.balance_pence,
            ussd_answer: UssdAnswer::Balance,
            drop_own_texts: false,
            scheduled: Vec::new(),
            smsc: options.smsc.clone(),
            options,
            master,
            _slave: slave,
            shared,
            control,
            input: Vec::new(),
            mode: Mode::Command,
            echo: true,
            store: BTreeMap::new(),
            next_reference: 1,
            next_concat: 1,
            fail_next: None,
            vanish_after_pdu: false,
            vanished: false,
            hung: false,
            dead: false,
            sim_absent: false,
            registration: 1,
            radio_cycle_fixes: false,
            radio_off: false,
            refuse_sends: None,
            direct_routing: false,
            noise_counter: 0,
            ringing: None,
            queued_calls: std::collections::VecDeque::new(),
        }
    }

    /// Power-up: the model's start-up lines now, its `SMS DONE` when the messages are ready.
    fn boot(&mut self) {
        let now = tokio::time::Instant::now();
        self.sms_ready_at = now;
        if !self.persona.boot.is_empty() {
            self.schedule(now, self.persona.boot);
        }
        if let Some(line) = self.persona.sms_ready {
            self.sms_ready_at = now + self.options.sms_ready_after;
            self.schedule(self.sms_ready_at, &[line]);
        }
    }

    fn schedule(&mut self, at: tokio::time::Instant, lines: &[&str]) {
        self.scheduled
            .push((at, lines.iter().map(|l| l.to_string()).collect()));
    }

    async fn run(mut self, token: CancellationToken) {
        let mut buf = [0u8; 1024];
        self.boot();
        loop {
            let next_report = self.scheduled.iter().map(|(at, _)| *at).min();
            let next_ring = self.ringing.as_ref().map(|(_, _, at)| *at);
            tokio::select! {
                _ = token.cancelled() => return,
                control = self.control.recv() => match control {
                    None => return,
                    Some(control) => self.on_control(control).await,
                },
                readable = self.master.readable() => {
                    let Ok(mut guard) = readable else { return };
                    match guard.try_io(|fd| nix::unistd::read(fd.get_ref(), &mut buf).map_err(std::io::Error::from)) {
                        Ok(Ok(0)) => return,
                        Ok(Ok(n)) => {
                            let bytes = buf[..n].to_vec();
                            drop(guard);
                            self.on_bytes(&bytes).await;
                            if self.vanished {
                                // Dropping the machine closes the master: the line hangs up.
                                return;
                            }
                        }
                        // EIO: nobody has the port open right now; wait and look again.
                        Ok(Err(_)) => {
                            drop(guard);
                            tokio::time::sleep(Duration::from_millis(20)).await;
                        }
                        Err(_would_block) => {}
                    }
                }
                _ = tokio::time::sleep_until(next_report.unwrap_or_else(tokio::time::Instant::now)), if next_report.is_some() => {
                    let now = tokio::time::Instant::now();
                    let (due, later): (Vec<_>, Vec<_>) = self.scheduled.drain(..).partition(|(at, _)| *at <= now);
                    self.scheduled = later;
                    for (_, lines) in due {
                        let lines: Vec<&str> = lines.iter().map(String::as_str).collect();
                        self.send_lines(&lines).await;
                    }
                }
                _ = tokio::time::sleep_until(next_ring.unwrap_or_else(tokio::time::Instant::now)), if next_ring.is_some() => {
                    self.ring().await;
                }
            }
        }
    }

    async fn write(&self, bytes: &[u8]) {
        let mut written = 0;
        while written < bytes.len() {
            let Ok(mut guard) = self.master.writable().await else {
                return;
            };
            match guard.try_io(|fd| {
                nix::unistd::write(fd.get_ref(), &bytes[written..]).map_err(std::io::Error::from)
            }) {
                Ok(Ok(n)) => written += n,
                Ok(Err(_)) => return,
                Err(_would_block) => continue,
            }
        }
    }

    /// Writes lines in V.250 verbose form: `\r\n<line>\r\n` each.
    async fn send_lines(&self, lines: &[&str]) {
        let mut out = String::new();
        for line in lines {
            out.push_str("\r\n");
            out.push_str(line);
            out.push_str("\r\n");
        }
        self.write(out.as_bytes()).await;
    }

    fn note(&self, command: &str) {
        self.mark(Moment::Command(command.to_string()));
        if let Ok(mut commands) = self.shared.commands.lock() {
            commands.push(command.to_string());
        }
        self.shared.changed.notify_waiters();
    }

    async fn on_control(&mut self, control: Control) {
        match control {
            Control::Call { caller, rings } => {
                if self.ringing.is_some() {
                    self.queued_calls.push_back((caller, rings));
                } else {
                    self.ringing = Some((caller, rings.max(1), tokio::time::Instant::now()));
                }
            }
            Control::Sms {
                from,
                text,
                parts: chosen,
            } => self.deliver(&from, &text, chosen).await,
            Control::FailNextSend(code) => self.fail_next = Some(code),
            Control::VanishAfterNextPdu => self.vanish_after_pdu = true,
            Control::Hang => self.hung = true,
            Control::HangForGood => self.dead = true,
            Control::SimPresent(present) => self.sim_absent = !present,
            Control::NextReportStatus(status) => self.next_report_status = status,
            Control::NextReportZone(octet) => self.next_report_zone = Some(octet),
            Control::ReportStatusAlways(status) => self.report_status_always = status,
            Control::Balance(pence) => self.balance_pence = pence,
            Control::Ussd(answer) => self.ussd_answer = answer,
            Control::DropOwnTexts(drop) => self.drop_own_texts = drop,
            Control::Restart => self.power_cycle(),
            Control::Line(line) => self.send_lines(&[&line]).await,
            Control::Network(registered) => {
                let stat = if registered { 1 } else { 0 };
                self.set_registration(stat).await;
            }
            Control::Registration {
                stat,
                radio_cycle_fixes,
            } => {
                self.radio_cycle_fixes = radio_cycle_fixes;
                self.set_registration(stat).await;
            }
            Control::RefuseSends(code) => self.refuse_sends = code,
        }
    }

    /// Delivers an SMS from `from` (the parts chosen, or all): stored on the SIM with +CMTI, or
    /// straight out as +CMT when AT+CNMI routes it so.
    async fn deliver(&mut self, from: &str, text: &str, chosen: Option<Vec<usize>>) {
        let stamp = now_timestamp();
        let reference = self.next_concat;
        self.next_concat = self.next_concat.wrapping_add(1);
        let parts = match pdu::encode_deliver(from, text, &stamp, reference) {
            Ok(parts) => parts,
            Err(_) => return,
        };
        let parts: Vec<String> = match chosen {
            None => parts,
            Some(order) => order
                .iter()
                .filter_map(|&i| parts.get(i).cloned())
                .collect(),
        };
        for part in parts {
            if self.direct_routing {
                let length = tpdu_length(&part);
                self.send_lines(&[&format!("+CMT: ,{length}"), &part]).await;
                continue;
            }
            let index = (0..self.options.capacity).find(|i| !self.store.contains_key(i));
            let Some(index) = index else {
                // A full SIM stores nothing more and says nothing (field note 3).
                continue;
            };
            let memory = self.options.incoming_memory.clone();
            self.store.insert(
                index,
                Slot {
                    memory: memory.clone(),
                    pdu: part,
                    stat: 0,
                },
            );
            if self.options.indications {
                self.send_lines(&[&format!("+CMTI: \"{memory}\",{index}")])
                    .await;
            }
            if self.store.len() as u32 >= self.options.capacity
                && let Some(line) = self.persona.memory_full
            {
                self.send_lines(&[line]).await;
            }
        }
    }

    /// Changes the registration and says so as the model does: +CREG, and +CEREG on LTE modules.
    async fn set_registration(&mut self, stat: u8) {
        self.registration = stat;
        self.send_lines(&[&format!("+CREG: {stat}")]).await;
        if matches!(
            self.options.model,
            Model::QuectelEc25 | Model::SimcomSim7600
        ) {
            self.send_lines(&[&format!("+CEREG: {stat}")]).await;
        }
    }

    async fn ring(&mut self) {
        let Some((caller, left, _)) = self.ringing.take() else {
            return;
        };
        let clip = match &caller {
            Some(number) => {
                let kind = if number.starts_with('+') { 145 } else { 129 };
                format!("+CLIP: \"{number}\",{kind},\"\",0,\"\",0")
            }
            None => "+CLIP: \"\",128,\"\",0,\"\",1".to_string(),
        };
        self.send_lines(&["RING", &clip]).await;
        if left > 1 {
            self.ringing = Some((
                caller,
                left - 1,
                tokio::time::Instant::now() + self.options.ring_interval,
            ));
        } else {
            // The caller gives up.
            tokio::time::sleep(self.options.ring_interval).await;
            self.send_lines(&["NO CARRIER"]).await;
            if self.persona.missed_call_line {
                // SIMCom: `MISSED_CALL: 11:01AM 07700900123` once the call is over.
                let number = caller.clone().unwrap_or_default();
                let time = chrono::Local::now().format("%I:%M%p");
                self.send_lines(&[&format!("MISSED_CALL: {time} {number}")])
                    .await;
            }
            if let Some((caller, rings)) = self.queued_calls.pop_front() {
                let next = tokio::time::Instant::now() + self.options.ring_interval;
                self.ringing = Some((caller, rings.max(1), next));
            }
        }
    }

    fn mark(&self, moment: Moment) {
        if let Ok(mut timeline) = self.shared.timeline.lock() {
            timeline.push((std::time::Instant::now(), moment));
        }
    }

    async fn on_bytes(&mut self, bytes: &[u8]) {
        for &byte in bytes {
            match self.mode {
                Mode::Body { length } => match byte {
                    0x1a => {
                        let body = String::from_utf8_lossy(&self.input).trim().to_string();
                        self.input.clear();
                        self.mode = Mode::Command;
                        self.submit(&body, length).await;
                    }
                    0x1b => {
                        self.input.clear();
                        self.mode = Mode::Command;
                        self.note("<ESC>");
                    }
                    _ => self.input.push(byte),
                },
                Mode::Command => match byte {
                    b'\r' => {
                        let line = String::from_utf8_lossy(&self.input).trim().to_string();
                        self.input.clear();
                        if self.echo && !self.hung && !self.dead {
                            self.write(format!("{line}\r").as_bytes()).await;
                        }
                        if !line.is_empty() {
                            self.command(&line).await;
                        }
                    }
                    b'\n' => {}
                    0x1b => {
                        self.input.clear();
                        self.note("<ESC>");
                    }
                    _ => self.input.push(byte),
                },
            }
        }
    }

    /// A vendor line every few responses, placed before the final result as Huawei sticks do.
    fn noise(&mut self) -> Option<String> {
        if !self.vendor_lines {
            return None;
        }
        self.noise_counter += 1;
        let noise = self.persona.noise;
        if noise.is_empty() || self.noise_counter.is_multiple_of(2) {
            return None;
        }
        let index = (self.noise_counter as usize / 2) % noise.len();
        noise.get(index).map(|line| line.to_string())
    }

    async fn reply(&mut self, mut lines: Vec<String>, last: &str) {
        if let Some(noise) = self.noise() {
            lines.push(noise);
        }
        lines.push(last.to_string());
        let refs: Vec<&str> = lines.iter().map(String::as_str).collect();
        self.send_lines(&refs).await;
    }

    async fn ok(&mut self, lines: Vec<String>) {
        self.reply(lines, "OK").await;
    }

    /// AT+CFUN=1,1: OK, then the modem starts again with its power-on settings.
    async fn restart(&mut self) {
        self.ok(Vec::new()).await;
        self.power_cycle();
    }

    fn power_cycle(&mut self) {
        self.hung = false;
        self.direct_routing = false;
        self.echo = true;
        self.vendor_lines = !self.persona.noise.is_empty();
        self.read_memory = "SM".to_string();
        self.mode = Mode::Command;
        self.input.clear();
        self.boot();
    }

    async fn command(&mut self, line: &str) {
        self.note(line);
        if self.dead {
            return;
        }
        if self.hung {
            if line.eq_ignore_ascii_case("AT+CFUN=1,1") {
                // The reset brings it back, with its power-on settings.
                self.hung = false;
                self.restart().await;
            }
            return;
        }
        let upper = line.to_ascii_uppercase();
        if self.pin_needed
            && !(upper == "AT"
                || upper.starts_with("ATE")
                || upper.starts_with("AT+CPIN")
                || upper.starts_with("AT+CMEE"))
        {
            self.reply(Vec::new(), "+CME ERROR: 11").await;
            return;
        }
        let (head, argument) = match upper.find(['=', '?']) {
            Some(at) => (&upper[..at], &line[at..]),
            None => (upper.as_str(), ""),
        };
        let sim_commands = [
            "AT+CPIN", "AT+CMGS", "AT+CMGR", "AT+CMGL", "AT+CMGD", "AT+CPMS", "AT+CSCA", "AT+CIMI",
            "AT+CNUM",
        ];
        let sms_commands = [
            "AT+CMGS", "AT+CMGR", "AT+CMGL", "AT+CMGD", "AT+CPMS", "AT+CNMI", "AT+CSCA",
        ];
        if !self.sim_absent
            && sms_commands.contains(&head)
            && tokio::time::Instant::now() < self.sms_ready_at
        {
            // Before `SMS DONE` the SIM's messages are not loaded yet (field note 11).
            return self.reply(Vec::new(), "+CMS ERROR: 314").await;
        }
        if self.sim_absent && sim_commands.contains(&head) {
            // TS 27.007 10 / TS 27.005 310: SIM not inserted.
            let error = if head == "AT+CPIN" {
                "+CME ERROR: 10"
            } else {
                "+CMS ERROR: 310"
            };
            return self.reply(Vec::new(), error).await;
        }
        match head {
            "AT+CREG" if argument == "?" && !matches!(self.registration, 1 | 5) => {
                let stat = self.registration;
                self.ok(vec![format!("+CREG: 2,{stat}")]).await
            }
            "AT+CREG" if argument == "?" => {
                let stat = self.registration;
                self.ok(vec![format!("+CREG: 2,{stat},\"1A2B\",\"00C3F01\"")])
                    .await
            }
            "AT+CFUN" if argument.starts_with("=1,1") => self.restart().await,
            "AT+CFUN" if argument.trim() == "=0" => {
                self.radio_off = true;
                self.ok(Vec::new()).await;
                self.set_registration(0).await;
            }
            "AT+CFUN" if argument.trim() == "=1" && self.radio_off => {
                self.radio_off = false;
                self.ok(Vec::new()).await;
                if self.radio_cycle_fixes {
                    self.radio_cycle_fixes = false;
                    self.set_registration(1).await;
                } else {
                    self.set_registration(2).await;
                }
            }
            "AT+CNMI" if argument.starts_with('=') => {
                // TS 27.005 §3.4.1: AT+CNMI=<mode>,<mt>,...; mt 2 routes new SMS straight out.
                self.direct_routing = argument
                    .trim_start_matches('=')
                    .split(',')
                    .nth(1)
                    .is_some_and(|mt| mt.trim() == "2");
                self.ok(Vec::new()).await
            }
            "AT" | "ATZ" | "AT+CMEE" | "AT+CMGF" | "AT+CNMI" | "AT+CLIP" | "AT+CREG" | "ATH"
            | "AT+CFUN" => self.ok(Vec::new()).await,
            _ if Some(head) == self.persona.noise_off => {
                self.vendor_lines = !argument.starts_with("=0");
                self.ok(Vec::new()).await
            }
            "ATE0" => {
                self.echo = false;
                self.ok(Vec::new()).await
            }
            "ATE1" | "ATE" => {
                self.echo = true;
                self.ok(Vec::new()).await
            }
            "AT+CPIN" => self.cpin(argument).await,
            "AT+CPMS" => {
                if let Some(memory) =
                    crate::codec::at::split_fields(argument.trim_start_matches('='))
                        .first()
                        .filter(|m| !m.is_empty() && argument.starts_with('='))
                {
                    self.read_memory = memory.clone();
                }
                let used = self.store.len();
                let total = self.options.capacity;
                let memory = self.read_memory.clone();
                // The query names the memories (TS 27.005 §3.2.2); the set form gives counts only.
                let line = if argument == "?" {
                    format!(
                        "+CPMS: \"{memory}\",{used},{total},\"{memory}\",{used},{total},\"{memory}\",{used},{total}"
                    )
                } else {
                    format!("+CPMS: {used},{total},{used},{total},{used},{total}")
                };
                self.ok(vec![line]).await
            }
            "AT+CSCA" if argument == "?" => {
                let smsc = self.smsc.clone();
                self.ok(vec![format!("+CSCA: \"{smsc}\",145")]).await
            }
            "AT+CSCA" => {
                self.smsc = crate::codec::at::split_fields(argument.trim_start_matches('='))
                    .first()
                    .cloned()
                    .unwrap_or_default();
                self.ok(Vec::new()).await
            }
            "AT+CSQ" => self.ok(vec!["+CSQ: 18,99".to_string()]).await,
            "AT+COPS" => self.ok(vec!["+COPS: 0,0,\"EE\",7".to_string()]).await,
            "AT+CGMI" => {
                let maker = self.persona.manufacturer.to_string();
                self.ok(vec![maker]).await
            }
            "AT+CGMM" => {
                let model = self.persona.model.to_string();
                self.ok(vec![model]).await
            }
            "AT+CGSN" => {
                let imei = self.options.imei.clone();
                self.ok(vec![imei]).await
            }
            "AT+CIMI" => self.ok(vec!["234300123456789".to_string()]).await,
            _ if head == self.persona.iccid.0 => {
                let (_, prefix, suffix) = self.persona.iccid;
                let iccid = self.options.iccid.clone();
                self.ok(vec![format!("{prefix}{iccid}{suffix}")]).await
            }
            "AT+CNUM" => {
                let number = self.options.own_number.clone();
                self.ok(vec![format!("+CNUM: \"\",\"{number}\",145")]).await
            }
            "AT+CMGL" => {
                let mut lines = Vec::new();
                for (index, slot) in self
                    .store
                    .iter()
                    .filter(|(_, s)| s.memory == self.read_memory)
                {
                    lines.push(format!(
                        "+CMGL: {index},{},,{}",
                        slot.stat,
                        tpdu_length(&slot.pdu)
                    ));
                    lines.push(slot.pdu.clone());
                }
                for slot in self
                    .store
                    .values_mut()
                    .filter(|s| s.memory == self.read_memory)
                {
                    slot.stat = 1;
                }
                self.ok(lines).await
            }
            "AT+CMGR" => {
                let index: Option<u32> = argument.trim_start_matches('=').trim().parse().ok();
                let memory = self.read_memory.clone();
                match index
                    .and_then(|i| self.store.get_mut(&i))
                    .filter(|s| s.memory == memory)
                {
                    Some(slot) => {
                        let lines = vec![
                            format!("+CMGR: {},,{}", slot.stat, tpdu_length(&slot.pdu)),
                            slot.pdu.clone(),
                        ];
                        slot.stat = 1;
                        self.ok(lines).await
                    }
                    // An empty slot: a bare OK, as real modems give.
                    None => self.ok(Vec::new()).await,
                }
            }
            "AT+CMGD" => {
                let index: Option<u32> = argument
                    .trim_start_matches('=')
                    .split(',')
                    .next()
                    .and_then(|i| i.trim().parse().ok());
                match index {
                    Some(index) => {
                        if !self.options.undeletable
                            && self
                                .store
                                .get(&index)
                                .is_some_and(|s| s.memory == self.read_memory)
                        {
                            self.store.remove(&index);
                        }
                        self.ok(Vec::new()).await
                    }
                    None => self.reply(Vec::new(), "+CMS ERROR: 321").await,
                }
            }
            "AT+CUSD" if argument.starts_with('=') => self.ussd(argument).await,
            "AT+CMGS" => {
                match argument.trim_start_matches('=').trim().parse::<usize>() {
                    Ok(length) => {
                        self.mode = Mode::Body { length };
                        // The prompt: no line end after it.
                        self.write(b"\r\n> ").await;
                    }
                    Err(_) => self.reply(Vec::new(), "ERROR").await,
                }
            }
            _ => self.reply(Vec::new(), "ERROR").await,
        }
    }

    /// AT+CUSD=1,"<code>",15: OK, then the network's answer a moment later as `+CUSD:`, in the
    /// model's style. AT+CUSD=2 (end the session) is only acknowledged.
    async fn ussd(&mut self, argument: &str) {
        use crate::codec::ussd::{Gsm7Form, decode, encode_request};
        let fields = crate::codec::at::split_fields(argument.trim_start_matches('='));
        if fields.first().map(String::as_str) != Some("1") {
            return self.ok(Vec::new()).await;
        }
        let code = fields.get(1).cloned().unwrap_or_default();
        // A Huawei in its default mode reads the code as packed hex: a code sent as text is not
        // a code to it.
        let readable = match self.persona.ussd {
            UssdStyle::Gsm7Packed => {
                decode(&code, Some(15), Gsm7Form::Packed)
                    .is_ok_and(|text| text.starts_with(['*', '#']) && text.ends_with('#'))
                    && code.bytes().all(|b| b.is_ascii_hexdigit())
            }
            UssdStyle::Ucs2 | UssdStyle::Text => code.starts_with(['*', '#']),
        };
        if !readable || self.ussd_answer == UssdAnswer::Error {
            return self.reply(Vec::new(), "+CME ERROR: 100").await;
        }
        self.ok(Vec::new()).await;
        let pence = self.balance_pence;
        let pounds = format!(
            "{}{}.{:02}",
            if pence < 0 { "-" } else { "" },
            pence.abs() / 100,
            pence.abs() % 100
        );
        let words = match (&self.ussd_answer, self.persona.ussd) {
            (UssdAnswer::Words(words), _) => words.clone(),
            (_, UssdStyle::Gsm7Packed) => format!("Your balance is £{pounds}. Thank you."),
            (_, UssdStyle::Ucs2) => format!("Bal: £{pounds}. Top up at ee.co.uk"),
            (_, UssdStyle::Text) => format!("Your main balance is GBP {pounds}."),
        };
        let line = match self.persona.ussd {
            UssdStyle::Gsm7Packed => match encode_request(&words, Gsm7Form::Packed) {
                Ok(hex) => format!("+CUSD: 0,\"{hex}\",15"),
                Err(_) => "+CUSD: 4".to_string(),
            },
            UssdStyle::Ucs2 => {
                let hex: String = words.encode_utf16().map(|u| format!("{u:04X}")).collect();
                format!("+CUSD: 0,\"{hex}\",72")
            }
            UssdStyle::Text => format!("+CUSD: 0,\"{words}\",15"),
        };
        let at = tokio::time::Instant::now() + Duration::from_millis(150);
        match self.ussd_answer {
            UssdAnswer::Silence => {}
            UssdAnswer::NotSupported => self.schedule(at, &["+CUSD: 4"]),
            UssdAnswer::GarbageFirst => {
                self.schedule(at, &["+CUSD: banana,\"\u{1}\",xx", &line]);
            }
            UssdAnswer::Balance | UssdAnswer::Words(_) | UssdAnswer::Error => {
                self.schedule(at, &[&line])
            }
        }
    }

    async fn cpin(&mut self, argument: &str) {
        if argument == "?" && self.sim_busy_left > 0 {
            self.sim_busy_left -= 1;
            return self.reply(Vec::new(), "+CME ERROR: 14").await;
        }
        if argument == "?" {
            let state = if self.pin_needed { "SIM PIN" } else { "READY" };
            return self.ok(vec![format!("+CPIN: {state}")]).await;
        }
        let given = argument.trim_start_matches('=').trim_matches('"');
        if self.options.pin.as_deref() == Some(given) {
            self.pin_needed = false;
            self.ok(Vec::new()).await
        } else {
            self.reply(Vec::new(), "+CME ERROR: 16").await
        }
    }

    async fn submit(&mut self, hex: &str, length: usize) {
        self.note(&format!("<PDU {hex}>"));
        if let Some(code) = self.fail_next.take().or(self.refuse_sends) {
            return self.reply(Vec::new(), &format!("+CMS ERROR: {code}")).await;
        }
        if self.smsc.is_empty() {
            return self.reply(Vec::new(), "+CMS ERROR: 330").await;
        }
        if !matches!(self.registration, 1 | 5) {
            return self.reply(Vec::new(), "+CMS ERROR: 331").await;
        }
        if tpdu_length(hex) != length {
            // The length given to AT+CMGS does not match the PDU: a bug in the sender.
            return self.reply(Vec::new(), "+CMS ERROR: 304").await;
        }
        let submit = match pdu::decode(hex, SmscField::Present) {
            Ok(Pdu::Submit(submit)) => submit,
            _ => return self.reply(Vec::new(), "+CMS ERROR: 304").await,
        };
        let reference = self.next_reference;
        self.next_reference = self.next_reference.wrapping_add(1);
        let sent = SentSms {
            to: submit.recipient.display(),
            text: submit.text.clone(),
            reference,
            status_report: submit.status_report,
            part: submit.concat.map(|c| (c.reference, c.total, c.sequence)),
        };
        if submit.status_report {
            let stamp = now_timestamp();
            let status = self
                .report_status_always
                .unwrap_or_else(|| std::mem::take(&mut self.next_report_status));
            if let Ok(report) =
                pdu::encode_status_report(reference, &sent.to, &stamp, &stamp, status)
            {
                let report = match self.next_report_zone.take() {
                    Some(octet) => with_zone(&report, octet),
                    None => report,
                };
                let length = tpdu_length(&report);
                let at = tokio::time::Instant::now() + self.options.report_delay;
                self.schedule(at, &[&format!("+CDS: {length}"), &report]);
            }
        }
        if let Ok(mut log) = self.shared.sent.lock() {
            log.push(sent.clone());
        }
        self.shared.changed.notify_waiters();
        if self.vanish_after_pdu {
            self.vanished = true;
            return;
        }
        if !self.options.send_delay.is_zero() {
            // The network is slow to accept it: the modem answers nothing meanwhile.
            tokio::time::sleep(self.options.send_delay).await;
        }
        self.ok(vec![format!("+CMGS: {reference}")]).await;
        self.mark(Moment::SendConfirmed(reference));
        // A text to the SIM's own number comes back to it, as the network delivers it (unless
        // told to lose it).
        if sent.to == self.options.own_number && !self.drop_own_texts {
            let own = self.options.own_number.clone();
            self.deliver(&own, &sent.text, None).await;
        }
    }
}

/// A status report PDU (SMSC field first) with its TP-SCTS zone octet replaced.
fn with_zone(hex: &str, octet: u8) -> String {
    let octet_at = |index: usize| {
        hex.get(index * 2..index * 2 + 2)
            .and_then(|pair| u8::from_str_radix(pair, 16).ok())
            .map_or(0, usize::from)
    };
    // SMSC length and field, first octet, TP-MR, then TP-RA: its digit count, type, digits.
    let address = 1 + octet_at(0) + 2;
    let zone = address + 2 + octet_at(address).div_ceil(2) + 6;
    match hex.get(..zone * 2).zip(hex.get(zone * 2 + 2..)) {
        Some((before, after)) => format!("{before}{octet:02X}{after}"),
        None => hex.to_string(),
    }
}

/// Octets of the TPDU in a PDU that starts with the SMSC field (what AT+CMGS and +CMGR count).
fn tpdu_length(hex: &str) -> usize {
    let octets = hex.len() / 2;
    let smsc = hex
        .get(..2)
        .and_then(|first| u8::from_str_radix(first, 16).ok())
        .unwrap_or(0) as usize;
    octets.saturating_sub(smsc + 1)
}

fn now_timestamp() -> Timestamp {
    let now = chrono::Utc::now();
    Timestamp {
        year: now.year().clamp(2000, 2099) as u16,
        month: now.month() as u8,
        day: now.day() as u8,
        hour: now.hour() as u8,
        minute: now.minute() as u8,
        second: now.second() as u8,
        zone_quarter_hours: 0,
    }
}
