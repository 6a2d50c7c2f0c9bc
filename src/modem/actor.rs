//! The modem task: the only code that reads or writes a modem's serial port. It sets the modem up,
//! runs one request at a time, turns unsolicited result codes into [`ModemEvent`]s, and reopens the
//! port when it vanishes.

use std::collections::VecDeque;
use std::path::PathBuf;
use std::time::{Duration, SystemTime, UNIX_EPOCH};

use bytes::BytesMut;
use tokio::io::{AsyncRead, AsyncReadExt, AsyncWrite, AsyncWriteExt};
use tokio::sync::{mpsc, watch};
use tokio::time::{Instant, sleep_until, timeout_at};
use tokio_util::sync::CancellationToken;
use tokio_util::task::TaskTracker;
use tracing::{Instrument, debug, info, info_span, warn};

use super::handle::{Deleted, QUEUE, Request};
use super::{Error, ModemEvent, ModemHandle, ModemInfo, ModemState, Storage};
use crate::clock::Clock;
use crate::codec::at::{self, Classified, Classifier, Final, Frame, Pending, Urc};
use crate::codec::pdu::SubmitPdu;
use crate::codec::ussd;
use crate::config::ModemConfig;
use crate::domain::CallSource;
use crate::domain::{CallId, CallerId, WithheldReason};
use crate::event::{Event, InboundSms, MissedCall};

/// Most commands answer in milliseconds; a slow dongle still answers within this.
const COMMAND_TIMEOUT: Duration = Duration::from_secs(5);
/// AT+CMGS waits for the network's acceptance: TS 27.005 leaves it open; dongles take up to ~60 s
/// on a weak signal.
const SEND_TIMEOUT: Duration = Duration::from_secs(60);
/// How long to wait for the `> ` prompt after AT+CMGS=<n>.
const PROMPT_TIMEOUT: Duration = Duration::from_secs(10);
/// RINGs repeat every 3 to 6 s on UK networks; this long without one, the caller has given up.
const RING_SILENCE: Duration = Duration::from_secs(8);
/// How often to ask for the signal, which also shows the modem still answers.
const HEALTH_INTERVAL: Duration = Duration::from_secs(60);
/// Reopening after a loss backs off from 1 s, doubling, up to this.
const MAX_BACKOFF: Duration = Duration::from_secs(64);
/// A write of a command or a PDU (at most a few hundred bytes) that takes longer than this means
/// the port no longer drains.
const WRITE_TIMEOUT: Duration = Duration::from_secs(5);
/// How long each step of the watchdog waits for an answer.
const WAKE_TIMEOUT: Duration = Duration::from_secs(3);
/// After a timeout, the line must be quiet this long before it is trusted again.
const RESYNC_QUIET: Duration = Duration::from_millis(300);
/// ... but no longer than this: a modem spamming URCs is still usable.
const RESYNC_QUIET_MAX: Duration = Duration::from_secs(3);
/// How long to wait after power-up for the SIM's messages to be ready (`SMS DONE`): SIMCom and
/// Quectel modules take up to ~20 s with a full SIM.
const SMS_READY_WAIT: Duration = Duration::from_secs(40);
/// A `MISSED_CALL:` line this soon after a call was recorded is about that call.
const MISSED_CALL_ECHO: Duration = Duration::from_secs(30);
/// Listing a full SIM (up to ~50 messages of 350 hex digits) takes a few seconds on slow dongles.
const LIST_TIMEOUT: Duration = Duration::from_secs(60);
/// ESC: cancels a half-typed AT+CMGS (TS 27.005 §3.5.1).
/// How soon a full store is looked at again: long enough for the daemon to store and delete what
/// the sweep read.
const STORAGE_RECHECK: Duration = Duration::from_secs(5);
const ESC: u8 = 0x1b;
/// Ctrl-Z: ends the PDU of AT+CMGS.
const CTRL_Z: u8 = 0x1a;

/// Starts the task for one modem; it runs until `token` is cancelled.
pub fn spawn(
    config: ModemConfig,
    events: mpsc::Sender<ModemEvent>,
    token: CancellationToken,
    tracker: &TaskTracker,
    clock: Clock,
) -> ModemHandle {
    let (requests_tx, requests) = mpsc::channel(QUEUE);
    let (state_tx, state) = watch::channel(ModemState::Starting);
    let handle = ModemHandle::new(config.id.clone(), requests_tx, state);
    let span = info_span!("modem", modem = %config.id);
    tracker.spawn(
        supervise(Supervisor {
            config,
            events,
            requests,
            state: state_tx,
            token,
            clock,
        })
        .instrument(span),
    );
    handle
}

struct Supervisor {
    config: ModemConfig,
    events: mpsc::Sender<ModemEvent>,
    requests: mpsc::Receiver<Request>,
    state: watch::Sender<ModemState>,
    token: CancellationToken,
    /// Calls and texts are dated by it.
    clock: Clock,
}

impl Supervisor {
    /// Tells the status watchers and the daemon that the modem is out of service, and why.
    async fn report_lost(&self, reason: String) {
        self.state.send_replace(ModemState::Lost {
            reason: reason.clone(),
        });
        let _ = self
            .events
            .send(ModemEvent::Lost {
                modem: self.config.id.clone(),
                reason,
            })
            .await;
    }
}

/// Failed sessions in a row (the port would not open, or the modem would not answer) after which
/// the one USB device is reset, the next rung after ESC, ATZ, AT+CFUN=1,1 and reopening.
const USB_RESET_AFTER: u32 = 2;

/// Opens the port, serves until it is lost, and opens it again with back-off.
async fn supervise(mut supervisor: Supervisor) {
    let mut backoff = Duration::from_secs(1);
    let mut failures = 0u32;
    // The port last served: a USB reset is of its device.
    let mut last_path = supervisor.config.port.clone();
    loop {
        let (result, was_ready) = connect(&mut supervisor, &mut last_path).await;
        if was_ready {
            backoff = Duration::from_secs(1);
            failures = 0;
        }
        match result {
            Ok(()) => return, // shutdown
            Err(err) if err.needs_a_person() => {
                // Retrying would use up PIN tries or cannot help: wait for a person.
                warn!(error = %err, "modem stopped: not retried until textback is restarted");
                let reason = format!("{err} (not retried: fix it, then restart textback)");
                supervisor.report_lost(reason.clone()).await;
                loop {
                    tokio::select! {
                        _ = supervisor.token.cancelled() => return,
                        request = supervisor.requests.recv() => match request {
                            None => return,
                            Some(request) => refuse(request, &reason),
                        },
                    }
                }
            }
            Err(err) => {
                warn!(error = %err, retry_in = ?backoff, "modem lost");
                failures += 1;
                let mut reason = err.to_string();
                if failures == USB_RESET_AFTER {
                    // The ladder's last software rung (field notes: "silent stop"): a reset of
                    // this one USB device, as a replug would be. The outbox tells the business
                    // if the modem stays lost after it.
                    let port = last_path.clone();
                    let sys = supervisor.config.search.sys.clone();
                    match tokio::task::spawn_blocking(move || super::usb::reset(&sys, &port)).await
                    {
                        Ok(Ok(usb_path)) => {
                            warn!(usb_path, "the modem stayed lost; its USB device was reset");
                            reason.push_str(&format!("; USB device {usb_path} reset"));
                        }
                        Ok(Err(reset)) => {
                            warn!(error = %reset, "the modem stayed lost; a USB reset could not be done");
                            reason.push_str(&format!("; no USB reset: {reset}"));
                        }
                        Err(join) => warn!(error = %join, "the USB reset task failed"),
                    }
                }
                supervisor.report_lost(reason).await;
            }
        }
        // While away, answer requests at once so that callers back off rather than wait.
        let deadline = Instant::now() + backoff;
        loop {
            tokio::select! {
                _ = supervisor.token.cancelled() => return,
                _ = sleep_until(deadline) => break,
                request = supervisor.requests.recv() => match request {
                    None => return,
                    Some(request) => refuse(request, "reconnecting"),
                },
            }
        }
        backoff = (backoff * 2).min(MAX_BACKOFF);
    }
}

/// Tries each port that may be this modem (`find::candidates`: the configured one, or those of
/// its USB serial, or for a modem bound by IMEI or ICCID every USB serial port) until one is set
/// up with the configured dongle and SIM, and serves it until it is lost. Returns how that session
/// ended and whether it got as far as ready; with no port that is this modem, the first port's
/// failure (its wrong identity, or that it is not there).
async fn connect(
    supervisor: &mut Supervisor,
    last_path: &mut PathBuf,
) -> (Result<(), Error>, bool) {
    let config = supervisor.config.clone();
    let found =
        tokio::task::spawn_blocking(move || super::find::candidates(&config, &config.search)).await;
    let candidates = match found {
        Ok(Ok(candidates)) => candidates,
        Ok(Err(err)) => {
            return (
                Err(Error::NotFound {
                    reason: err.to_string(),
                }),
                false,
            );
        }
        Err(join) => {
            return (
                Err(Error::NotFound {
                    reason: format!("looking for the port failed: {join}"),
                }),
                false,
            );
        }
    };
    let several = candidates.len() > 1;
    let mut first_error: Option<Error> = None;
    for (index, path) in candidates.into_iter().enumerate() {
        let port = match open(&path, supervisor.config.baud) {
            Ok(port) => port,
            Err(err) => {
                first_error.get_or_insert(err);
                continue;
            }
        };
        let mut session = Session::new(port, path.clone(), supervisor);
        let result = session.run().await;
        if session.was_ready {
            if &path != last_path {
                info!(port = %path.display(), "the modem is on this port now");
            }
            *last_path = path;
            return (result, true);
        }
        match result {
            Ok(()) => return (Ok(()), false),
            Err(err) if several && (index > 0 || matches!(err, Error::WrongIdentity { .. })) => {
                debug!(port = %path.display(), error = %err, "not this modem's port");
                first_error.get_or_insert(err);
            }
            Err(err) => return (Err(err), false),
        }
    }
    (
        Err(first_error.unwrap_or(Error::NotFound {
            reason: "no port to try".to_string(),
        })),
        false,
    )
}

fn refuse(request: Request, reason: &str) {
    let err = || Error::NotReady {
        reason: reason.to_string(),
    };
    match request {
        Request::Send { reply, .. } => {
            let _ = reply.send(Err(err()));
        }
        Request::Delete { reply, .. } => {
            let _ = reply.send(Err(err()));
        }
        Request::Command { reply, .. } => {
            let _ = reply.send(Err(err()));
        }
        Request::Ussd { reply, .. } => {
            let _ = reply.send(Err(err()));
        }
    }
}

fn open(port: &std::path::Path, baud: u32) -> Result<tokio_serial::SerialStream, Error> {
    use std::os::fd::AsRawFd;
    use tokio_serial::SerialPortBuilderExt;
    let stream = tokio_serial::new(port.to_string_lossy(), baud)
        .open_native_async()
        .map_err(|err| Error::Open {
            port: port.to_path_buf(),
            reason: err.to_string(),
        })?;
    // serialport's TIOCEXCL does not stop root, so two textback processes (the daemon and
    // `doctor`, say) could both talk to one modem and steal each other's replies. An advisory
    // lock does stop them; it goes when the port is closed.
    // SAFETY: flock on a descriptor the stream owns and keeps open for the call.
    let locked = unsafe { libc::flock(stream.as_raw_fd(), libc::LOCK_EX | libc::LOCK_NB) };
    if locked != 0 {
        return Err(Error::Open {
            port: port.to_path_buf(),
            reason: "in use by another textback process (the daemon?)".to_string(),
        });
    }
    Ok(stream)
}

/// A call ringing on the SIM.
struct Ringing {
    call: CallId,
    caller_raw: Option<String>,
    withheld: bool,
    rings: u32,
    last_ring: Instant,
}

/// One open port, from set-up until it is lost or the daemon stops.
struct Session<'a, P> {
    port: P,
    /// The port's path (the configured one, or where the modem was found).
    path: PathBuf,
    buffer: BytesMut,
    classifier: Classifier,
    /// URCs seen while a command ran, handled once it is done.
    urcs: VecDeque<Urc>,
    supervisor: &'a mut Supervisor,
    ringing: Option<Ringing>,
    /// The memory AT+CMGR/AT+CMGD now read from (field note: a +CMTI may name another one).
    read_memory: String,
    was_ready: bool,
    /// When the last missed call was raised, to recognise SIMCom's `MISSED_CALL:` line for it.
    last_call_end: Option<Instant>,
    /// The message store was full at the last look (warned once per filling).
    storage_full: bool,
    /// Indications dropped as repeats of one already queued (logged once per session).
    repeated_indications: u64,
    /// Since when the SIM has been off the network (searching, denied, not registered).
    off_network_since: Option<Instant>,
    /// The radio was switched off and on (AT+CFUN=0, then 1) in this spell off the network.
    radio_cycled: bool,
    /// The store was full at the last sweep: look again soon, once the daemon has stored and
    /// deleted what was read.
    storage_recheck: Option<Instant>,
    /// New texts are routed straight to us (AT+CNMI mt=2, +CMT) instead of the full SIM.
    direct_routing: bool,
    /// The slot last read on an indication, until the daemon deletes it: a repeated indication
    /// of it (a firmware that says `+CMTI` again and again) is not read twice.
    last_read: Option<(String, u32)>,
    /// How this modem writes GSM 7-bit USSD strings (packed hex on Huawei sticks, else text).
    ussd_form: ussd::Gsm7Form,
    /// A `+CUSD:` line that did not read was seen (logged once per session).
    bad_ussd_seen: bool,
}

impl<'a, P: AsyncRead + AsyncWrite + Unpin> Session<'a, P> {
    fn new(port: P, path: PathBuf, supervisor: &'a mut Supervisor) -> Self {
        Self {
            port,
            path,
            buffer: BytesMut::with_capacity(4096),
            classifier: Classifier::new(),
            urcs: VecDeque::new(),
            supervisor,
            ringing: None,
            read_memory: "SM".to_string(),
            was_ready: false,
            last_call_end: None,
            storage_full: false,
            repeated_indications: 0,
            off_network_since: None,
            radio_cycled: false,
            storage_recheck: None,
            direct_routing: false,
            last_read: None,
            ussd_form: ussd::Gsm7Form::Text,
            bad_ussd_seen: false,
        }
    }

    fn port_name(&self) -> PathBuf {
        self.path.clone()
    }

    /// Sets the modem up, then serves requests and URCs. `Ok` means shutdown. A call that was
    /// ringing when the session ends (shutdown, a lost modem) is still reported as missed.
    async fn run(&mut self) -> Result<(), Error> {
        let result = self.serve_session().await;
        if self.ringing.is_some() {
            self.finish_call("the session ended while it rang").await;
        }
        result
    }

    async fn serve_session(&mut self) -> Result<(), Error> {
        let mut info = self.initialise().await?;
        info.port = self.path.display().to_string();
        self.check_identity(&info)?;
        info!(imei = %info.imei, operator = %info.operator, signal_dbm = ?info.signal_dbm(), "modem ready");
        self.was_ready = true;
        self.supervisor
            .state
            .send_replace(ModemState::Ready { info: info.clone() });
        self.emit(ModemEvent::Ready {
            modem: self.supervisor.config.id.clone(),
            info,
        })
        .await;
        self.sweep_storage().await?;
        let mut health =
            tokio::time::interval_at(Instant::now() + HEALTH_INTERVAL, HEALTH_INTERVAL);
        loop {
            // Lines left in the buffer after a command's final result (a +CMTI in the same read
            // as the OK) are handled now, not when the next byte happens to arrive.
            self.digest_idle();
            let handled = self.handle_urcs().await;
            self.watchdog(handled).await?;
            let ring_deadline = self.ringing.as_ref().map(|r| r.last_ring + RING_SILENCE);
            let cycle_at = self
                .off_network_since
                .filter(|_| !self.radio_cycled)
                .zip(self.supervisor.config.off_network_cycle)
                .map(|(since, cycle)| since + cycle);
            tokio::select! {
                biased;
                _ = self.supervisor.token.cancelled() => return Ok(()),
                request = self.supervisor.requests.recv() => match request {
                    None => return Ok(()),
                    Some(request) => {
                        let served = self.serve(request).await;
                        self.watchdog(served).await?;
                    }
                },
                read = self.port.read_buf(&mut self.buffer) => {
                    self.check_read(read)?;
                    self.digest_idle();
                }
                _ = sleep_until(ring_deadline.unwrap_or_else(Instant::now)), if ring_deadline.is_some() => {
                    self.finish_call("the ringing stopped").await;
                }
                _ = sleep_until(self.storage_recheck.unwrap_or_else(Instant::now)), if self.storage_recheck.is_some() => {
                    self.storage_recheck = None;
                    let swept = self.sweep_storage().await;
                    self.watchdog(swept).await?;
                }
                _ = sleep_until(cycle_at.unwrap_or_else(Instant::now)), if cycle_at.is_some() => {
                    let cycled = self.cycle_radio().await;
                    self.watchdog(cycled).await?;
                }
                _ = health.tick() => {
                    // The health check doubles as the AT watchdog: a modem that stopped answering
                    // is found within one interval.
                    let checked = self.refresh_signal().await;
                    self.watchdog(checked).await?;
                    // Indications can stop (a full SIM, a refused AT+CNMI, a read that failed to
                    // store): list the SIM now and then so nothing stays there unread.
                    let swept = self.sweep_storage().await;
                    self.watchdog(swept).await?;
                }
            }
        }
    }

    /// Passes a step's result through; a modem that stopped answering (a timeout) is woken in
    /// escalating steps (field note 10): ESC and AT, then ATZ (and set up again), then
    /// AT+CFUN=1,1, a full reset after which the port is reopened.
    async fn watchdog(&mut self, result: Result<(), Error>) -> Result<(), Error> {
        let cause = match result {
            Err(err @ (Error::Timeout { .. } | Error::NoPrompt { .. })) => err,
            other => return other,
        };
        warn!(error = %cause, "the modem is not answering; waking it");
        if self.quiet_line().await.is_ok() && self.exec("AT", WAKE_TIMEOUT).await.is_ok() {
            info!("the modem answers again (after ESC)");
            return Ok(());
        }
        if self.exec("ATZ", WAKE_TIMEOUT).await.is_ok()
            && self.exec("AT", WAKE_TIMEOUT).await.is_ok()
        {
            // ATZ restores the saved profile: echo, indications and caller id must be set again.
            info!("the modem answers again after ATZ; setting it up again");
            self.initialise().await?;
            return Ok(());
        }
        warn!("the modem does not answer ATZ either; resetting it with AT+CFUN=1,1");
        let _ = self.exec("AT+CFUN=1,1", WAKE_TIMEOUT).await;
        Err(Error::Disconnected {
            port: self.port_name(),
            reason: format!("the modem stopped answering ({cause}) and was reset with AT+CFUN=1,1"),
        })
    }

    fn check_read(&self, read: std::io::Result<usize>) -> Result<(), Error> {
        match read {
            // Ok(0) is how a vanished USB serial port often shows itself (field note 10).
            Ok(0) => Err(Error::Disconnected {
                port: self.port_name(),
                reason: "end of file".to_string(),
            }),
            Ok(_) => Ok(()),
            Err(err) => Err(Error::Disconnected {
                port: self.port_name(),
                reason: err.to_string(),
            }),
        }
    }

    /// Takes lines that arrived with no command in flight: all are URCs.
    fn digest_idle(&mut self) {
        loop {
            let digest = at::next_frame(&self.buffer, false);
            if digest.consumed == 0 {
                return;
            }
            let _ = self.buffer.split_to(digest.consumed);
            if let Some(Frame::Line(line)) = digest.frame {
                match self.classifier.classify(&line, None) {
                    Classified::Urc(urc) => self.queue_urc(urc),
                    Classified::AwaitingPdu => {}
                    other => debug!(?other, "stray line"),
                }
            }
        }
    }

    /// Queues a URC for handling. An indication of a stored message that is already queued (a
    /// firmware repeating `+CMTI: "SM",3` two hundred times) is dropped: one read per message.
    fn queue_urc(&mut self, urc: Urc) {
        let repeat = matches!(
            urc,
            Urc::NewMessageStored { .. } | Urc::StatusReportStored { .. }
        ) && self.urcs.contains(&urc);
        if repeat {
            self.repeated_indications += 1;
            if self.repeated_indications == 1 {
                warn!(
                    ?urc,
                    "the modem repeats an indication already queued; read once"
                );
            }
            return;
        }
        self.urcs.push_back(urc);
    }

    async fn emit(&self, event: ModemEvent) {
        if self.supervisor.events.send(event).await.is_err() {
            debug!("event receiver gone");
        }
    }

    // --- commands ----------------------------------------------------------------------------

    /// Writes bytes to the port. No flush: serialport implements flush as tcdrain(3), a blocking
    /// call that can hang for good on a port that stopped draining (a dongle that hung, or was
    /// pulled out), and would block a runtime thread. Writes go straight to the descriptor anyway.
    async fn write(&mut self, bytes: &[u8]) -> Result<(), Error> {
        let port = self.port_name();
        match tokio::time::timeout(WRITE_TIMEOUT, self.port.write_all(bytes)).await {
            Ok(Ok(())) => Ok(()),
            Ok(Err(err)) => Err(Error::Disconnected {
                port,
                reason: err.to_string(),
            }),
            Err(_) => Err(Error::Disconnected {
                port,
                reason: format!(
                    "a write did not complete within {}s",
                    WRITE_TIMEOUT.as_secs()
                ),
            }),
        }
    }

    /// Sends one command and collects its response lines until the final result.
    async fn exec(&mut self, command: &str, timeout: Duration) -> Result<Vec<String>, Error> {
        debug!(command, "AT >");
        self.write(format!("{command}\r").as_bytes()).await?;
        match self.collect(command, timeout, false).await? {
            Reply::Done(lines) => Ok(lines),
            Reply::Prompt(_) => Err(Error::Unexpected {
                line: ">".to_string(),
                expected: "a final result",
            }),
        }
    }

    /// Reads until the command's final result (or, when `expect_prompt`, its `> ` prompt).
    async fn collect(
        &mut self,
        command: &str,
        timeout: Duration,
        expect_prompt: bool,
    ) -> Result<Reply, Error> {
        let deadline = Instant::now() + timeout;
        let mut lines = Vec::new();
        loop {
            loop {
                let digest = at::next_frame(&self.buffer, expect_prompt);
                if digest.consumed == 0 {
                    break;
                }
                let _ = self.buffer.split_to(digest.consumed);
                match digest.frame {
                    None => {}
                    Some(Frame::Prompt) => return Ok(Reply::Prompt(lines)),
                    Some(Frame::Line(line)) => {
                        debug!(line, "AT <");
                        match self
                            .classifier
                            .classify(&line, Some(Pending::for_command(command)))
                        {
                            Classified::Echo | Classified::AwaitingPdu => {}
                            Classified::Final(Final::Ok) => return Ok(Reply::Done(lines)),
                            Classified::Final(result) => {
                                return Err(Error::Rejected {
                                    command: command.to_string(),
                                    result,
                                });
                            }
                            Classified::Response(line) => lines.push(line),
                            Classified::Urc(urc) => self.queue_urc(urc),
                        }
                    }
                }
            }
            match timeout_at(deadline, self.port.read_buf(&mut self.buffer)).await {
                Ok(read) => self.check_read(read)?,
                Err(_) => {
                    return Err(Error::Timeout {
                        command: command.to_string(),
                        timeout,
                    });
                }
            }
        }
    }

    /// Runs a command whose failure does not matter (a setting some modems lack).
    async fn try_exec(&mut self, command: &str) -> Result<Vec<String>, Error> {
        match self.exec(command, COMMAND_TIMEOUT).await {
            Err(Error::Rejected { result, .. }) => {
                debug!(command, result = %result.describe(), "optional command refused");
                Ok(Vec::new())
            }
            other => other,
        }
    }

    // --- set-up ------------------------------------------------------------------------------

    async fn initialise(&mut self) -> Result<ModemInfo, Error> {
        // ESC then CR ends a half-finished AT+CMGS left by a previous run (as gammu does); what
        // the modem still had to say to that run is read and dropped.
        self.quiet_line().await?;
        // A modem that has just been plugged in can take a few seconds to answer AT.
        let mut tries = 0;
        loop {
            match self.exec("AT", Duration::from_secs(2)).await {
                Ok(_) => break,
                Err(Error::Timeout { .. } | Error::Rejected { .. }) if tries < 5 => tries += 1,
                Err(err) => return Err(err),
            }
        }
        self.exec("ATE0", COMMAND_TIMEOUT).await?;
        // Numeric error codes: the same on every vendor, and we have them in words.
        self.try_exec("AT+CMEE=1").await?;
        self.unlock_sim().await?;
        self.exec("AT+CMGF=0", COMMAND_TIMEOUT).await?;
        self.select_storage().await?;
        // New SMS stored with +CMTI; status reports routed straight to us as +CDS (field note 7),
        // with the fall-backs ModemManager uses.
        let mut indications_set = false;
        for cnmi in [
            "AT+CNMI=2,1,0,1,0",
            "AT+CNMI=2,1,0,2,0",
            "AT+CNMI=2,1,0,0,0",
        ] {
            match self.exec(cnmi, COMMAND_TIMEOUT).await {
                Ok(_) => {
                    indications_set = true;
                    break;
                }
                Err(Error::Rejected { .. }) => continue,
                Err(err) => return Err(err),
            }
        }
        if !indications_set {
            warn!("the modem refused every AT+CNMI setting: new SMS are found by polling only");
        }
        self.direct_routing = false;
        self.try_exec("AT+CLIP=1").await?;
        self.try_exec("AT+CREG=2").await?;
        let smsc = self.check_smsc().await?;

        let mut info = ModemInfo {
            smsc,
            ..ModemInfo::default()
        };
        info.manufacturer = first_line(self.try_exec("AT+CGMI").await?);
        self.ussd_form = super::models::ussd_form(&info.manufacturer);
        if let Some(model) = super::models::by_manufacturer(&info.manufacturer) {
            for command in model.init {
                self.try_exec(command).await?;
            }
        }
        info.model = first_line(self.try_exec("AT+CGMM").await?);
        info.imei = first_line(self.try_exec("AT+CGSN").await?);
        let operator = first_line(self.try_exec("AT+COPS?").await?);
        info.operator = at::split_fields(operator.trim_start_matches("+COPS:"))
            .get(2)
            .cloned()
            .unwrap_or_default();
        info.rssi = self.read_signal().await?;
        info.imsi = first_line(self.try_exec("AT+CIMI").await?);
        // ICCID: AT+CCID is 3GPP-ish and widest; Huawei answers ^ICCID, Quectel +QCCID.
        for command in [
            "AT+CCID",
            "AT^ICCID?",
            "AT+QCCID",
            "AT+CICCID",
            "AT+ZGETICCID",
            "AT+ICCID",
        ] {
            let line = first_line(self.try_exec(command).await?);
            let value = line
                .rsplit(':')
                .next()
                .unwrap_or("")
                .trim()
                .trim_matches('"')
                // The BCD filler of a 19-digit ICCID, which Huawei sticks print.
                .trim_end_matches(['F', 'f'])
                .to_string();
            if !value.is_empty() {
                info.iccid = value;
                break;
            }
        }
        info.registration = self.read_registration().await?;
        self.note_registration(info.registration);
        let cnum = first_line(self.try_exec("AT+CNUM").await?);
        info.own_number = at::split_fields(cnum.trim_start_matches("+CNUM:"))
            .get(1)
            .cloned()
            .unwrap_or_default();
        if let Some((used, capacity)) = self.read_storage().await? {
            info.sms_used = Some(used);
            info.sms_capacity = Some(capacity);
        }
        // Start-up lines seen meanwhile (RDY, SMS DONE) are about this set-up, not a restart.
        self.urcs.retain(|urc| !matches!(urc, Urc::Ready(_)));
        Ok(info)
    }

    /// Chooses the SIM as message memory, waiting for the SIM's messages to be ready: right after
    /// power-up SIMCom and Quectel modules refuse SMS commands until `SMS DONE` (field note 11).
    async fn select_storage(&mut self) -> Result<(), Error> {
        const COMMAND: &str = "AT+CPMS=\"SM\",\"SM\",\"SM\"";
        let deadline = Instant::now() + SMS_READY_WAIT;
        loop {
            match self.exec(COMMAND, COMMAND_TIMEOUT).await {
                Ok(_) => return Ok(()),
                Err(Error::Rejected { result, .. })
                    if not_ready_yet(&result) && Instant::now() < deadline =>
                {
                    debug!(result = %result.describe(), "the SIM's messages are not ready yet; waiting for SMS DONE");
                    let until = deadline.min(Instant::now() + Duration::from_secs(1));
                    self.wait_for_urc(Urc::is_sms_ready, until).await?;
                }
                Err(Error::Rejected { result, .. }) => {
                    warn!(result = %result.describe(), "the modem refused AT+CPMS: messages are read from its default memory");
                    return Ok(());
                }
                Err(err) => return Err(err),
            }
        }
    }

    /// Reads the line until a URC that `wanted` accepts (true) or `until` (false); other URCs are
    /// kept for later.
    async fn wait_for_urc(
        &mut self,
        wanted: fn(&Urc) -> bool,
        until: Instant,
    ) -> Result<bool, Error> {
        loop {
            loop {
                let digest = at::next_frame(&self.buffer, false);
                if digest.consumed == 0 {
                    break;
                }
                let _ = self.buffer.split_to(digest.consumed);
                if let Some(Frame::Line(line)) = digest.frame
                    && let Classified::Urc(urc) = self.classifier.classify(&line, None)
                {
                    if wanted(&urc) {
                        info!(line, "the modem says it is ready");
                        return Ok(true);
                    }
                    self.queue_urc(urc);
                }
            }
            match timeout_at(until, self.port.read_buf(&mut self.buffer)).await {
                Ok(read) => self.check_read(read)?,
                Err(_) => return Ok(false),
            }
        }
    }

    /// AT+CPMS? → (used, capacity) of the first memory (TS 27.005 §3.2.2).
    async fn read_storage(&mut self) -> Result<Option<(u32, u32)>, Error> {
        let line = first_line(self.try_exec("AT+CPMS?").await?);
        Ok(parse_storage(&line))
    }

    /// Reads what is on the SIM (field note 3: a full SIM stops indications, so indications alone
    /// are not enough) and looks at how full it is. A full store refuses new texts, so once full,
    /// stored outgoing messages (drafts another program left; textback never stores its own) are
    /// deleted too.
    async fn sweep_storage(&mut self) -> Result<(), Error> {
        let outgoing = self.drain_stored().await?;
        let Some((used, capacity)) = self.read_storage().await? else {
            return Ok(());
        };
        self.supervisor.state.send_modify(|state| {
            if let ModemState::Ready { info } = state {
                info.sms_used = Some(used);
                info.sms_capacity = Some(capacity);
            }
        });
        let full = capacity > 0 && used >= capacity;
        if full && !self.storage_full {
            warn!(
                used,
                capacity,
                "the SIM's message store is full: new texts cannot arrive until it is emptied; reading and deleting what is there"
            );
        }
        if full && self.storage_full && !self.direct_routing {
            // Still full after a sweep and the deletes that follow it: messages the SIM will not
            // give up. Texts come straight to the box instead (+CMT, not stored), where the model
            // takes it (field note 3; TS 27.005 §3.4.1 <mt>=2).
            match self.exec("AT+CNMI=2,2,0,1,0", COMMAND_TIMEOUT).await {
                Ok(_) => {
                    warn!(
                        used,
                        capacity,
                        "the SIM's store stays full: new texts now come straight to the box (AT+CNMI=2,2)"
                    );
                    self.direct_routing = true;
                }
                Err(Error::Rejected { result, .. }) => {
                    warn!(result = %result.describe(), "the store stays full and the modem refuses direct routing: new texts are lost until it is emptied");
                }
                Err(err) => return Err(err),
            }
        }
        // Looked at again soon while full, until texts come straight to the box; after that the
        // minute's health sweep is enough.
        self.storage_recheck =
            (full && !self.direct_routing).then(|| Instant::now() + STORAGE_RECHECK);
        self.storage_full = full;
        if full && !outgoing.is_empty() {
            warn!(
                count = outgoing.len(),
                "deleting stored outgoing messages to make room for incoming texts"
            );
            for index in outgoing {
                self.exec(&format!("AT+CMGD={index}"), COMMAND_TIMEOUT)
                    .await?;
            }
        }
        Ok(())
    }

    async fn unlock_sim(&mut self) -> Result<(), Error> {
        // +CME ERROR: 14 (SIM busy) right after power-up: wait for the SIM (field note 11).
        for _ in 0..10 {
            let state = match self.exec("AT+CPIN?", COMMAND_TIMEOUT).await {
                Ok(lines) => first_line(lines)
                    .trim_start_matches("+CPIN:")
                    .trim()
                    .to_string(),
                Err(Error::Rejected {
                    result: Final::Cme(at::ErrorCode::Number(14)),
                    ..
                }) => {
                    tokio::time::sleep(Duration::from_secs(1)).await;
                    continue;
                }
                Err(err) => return Err(err),
            };
            return match state.as_str() {
                "READY" => Ok(()),
                "SIM PIN" => {
                    let Some(pin) = self.supervisor.config.pin.clone() else {
                        return Err(Error::PinRequired);
                    };
                    // The PIN goes to the modem only; it is never logged.
                    self.write(format!("AT+CPIN=\"{}\"\r", pin.expose()).as_bytes())
                        .await?;
                    match self.collect("AT+CPIN=", COMMAND_TIMEOUT, false).await {
                        Ok(Reply::Done(_)) => Ok(()),
                        Ok(Reply::Prompt(_)) => Err(Error::Unexpected {
                            line: ">".to_string(),
                            expected: "OK after the PIN",
                        }),
                        // TS 27.007 §9.2.1: 16 incorrect password. Each wrong try uses one of
                        // three, so it is never tried again by itself.
                        Err(Error::Rejected {
                            result: Final::Cme(at::ErrorCode::Number(16)),
                            ..
                        }) => Err(Error::WrongPin),
                        Err(err) => Err(err),
                    }
                }
                other => Err(Error::SimBlocked {
                    state: other.to_string(),
                }),
            };
        }
        Err(Error::NotReady {
            reason: "the SIM stayed busy (+CME ERROR: 14) for 10 s".to_string(),
        })
    }

    /// Reads the SMSC from the SIM and sets it from the config when the SIM has none (field note 8:
    /// an empty SMSC makes every send fail with +CMS ERROR: 330).
    async fn check_smsc(&mut self) -> Result<String, Error> {
        let line = first_line(self.try_exec("AT+CSCA?").await?);
        let current = at::split_fields(line.trim_start_matches("+CSCA:"))
            .first()
            .cloned()
            .unwrap_or_default();
        if !current.is_empty() {
            return Ok(current);
        }
        match self.supervisor.config.smsc.clone() {
            Some(smsc) => {
                info!(smsc = %smsc, "the SIM has no SMSC; setting it from the config");
                self.exec(&format!("AT+CSCA=\"{smsc}\",145"), COMMAND_TIMEOUT)
                    .await?;
                Ok(smsc.to_string())
            }
            None => {
                warn!(
                    "the SIM has no SMSC address and modem.smsc is not set: sends will fail with +CMS ERROR: 330"
                );
                Ok(String::new())
            }
        }
    }

    async fn read_signal(&mut self) -> Result<Option<u8>, Error> {
        let line = first_line(self.try_exec("AT+CSQ").await?);
        Ok(at::split_fields(line.trim_start_matches("+CSQ:"))
            .first()
            .and_then(|rssi| rssi.parse().ok()))
    }

    /// The dongle and SIM on the port must be the ones the config names (`modem.imei`,
    /// `modem.iccid`): device names move after a reboot (field notes: "identity"), and a swapped
    /// SIM would text one business's callers from another's number.
    fn check_identity(&self, info: &ModemInfo) -> Result<(), Error> {
        let config = &self.supervisor.config;
        for (what, key, expected, found) in [
            ("dongle (IMEI)", "imei", &config.imei, &info.imei),
            ("SIM (ICCID)", "iccid", &config.iccid, &info.iccid),
        ] {
            if let Some(expected) = expected
                && expected != found
            {
                return Err(Error::WrongIdentity {
                    port: self.port_name(),
                    what,
                    key,
                    expected: expected.clone(),
                    found: found.clone(),
                });
            }
        }
        Ok(())
    }

    /// Notes a registration state: when the SIM went off the network, and that it is back.
    fn note_registration(&mut self, stat: Option<u8>) {
        match stat {
            Some(1 | 5) => {
                if let Some(since) = self.off_network_since.take() {
                    info!(
                        off_for_ms = since.elapsed().as_millis() as u64,
                        radio_cycled = self.radio_cycled,
                        "back on the network"
                    );
                }
                self.radio_cycled = false;
            }
            Some(_) => {
                self.off_network_since.get_or_insert_with(Instant::now);
            }
            None => {}
        }
    }

    /// Off the network for `modem.off_network_minutes`: the radio is switched off and on again
    /// (AT+CFUN=0, then AT+CFUN=1), which usually brings a SIM back (field notes: "off the
    /// network"). Once per spell off the network; the outbox tells the business if it stays off.
    async fn cycle_radio(&mut self) -> Result<(), Error> {
        self.radio_cycled = true;
        warn!(
            off_for_s = self
                .off_network_since
                .map_or(0, |since| since.elapsed().as_secs()),
            "off the network too long; switching the radio off and on (AT+CFUN=0, AT+CFUN=1)"
        );
        if let Err(err) = self.exec("AT+CFUN=0", SEND_TIMEOUT).await {
            warn!(error = %err, "AT+CFUN=0 failed");
        }
        if let Err(err) = self.exec("AT+CFUN=1", SEND_TIMEOUT).await {
            warn!(error = %err, "AT+CFUN=1 failed");
        }
        let registration = self.read_registration().await?;
        self.set_registration(registration);
        Ok(())
    }

    /// Records a registration state for the outbox and the status page.
    fn set_registration(&mut self, registration: Option<u8>) {
        self.note_registration(registration);
        self.supervisor.state.send_modify(|state| {
            if let ModemState::Ready { info } = state {
                info.registration = registration;
            }
        });
    }

    async fn refresh_signal(&mut self) -> Result<(), Error> {
        let rssi = self.read_signal().await?;
        let registration = self.read_registration().await?;
        self.note_registration(registration);
        self.supervisor.state.send_modify(|state| {
            if let ModemState::Ready { info } = state {
                info.rssi = rssi;
                info.registration = registration;
            }
        });
        Ok(())
    }

    /// AT+CREG? → <stat> (TS 27.007 §7.2); the answer is `+CREG: <n>,<stat>[,...]`.
    async fn read_registration(&mut self) -> Result<Option<u8>, Error> {
        let line = first_line(self.try_exec("AT+CREG?").await?);
        Ok(at::split_fields(line.trim_start_matches("+CREG:"))
            .get(1)
            .and_then(|stat| stat.parse().ok()))
    }

    /// Reads every message already in memory (field note 3: a full SIM stops indications), and
    /// hands each on; each is deleted once the daemon has stored it. Returns the slots holding
    /// stored outgoing messages, which are not read.
    async fn drain_stored(&mut self) -> Result<Vec<u32>, Error> {
        let lines = match self.exec("AT+CMGL=4", LIST_TIMEOUT).await {
            Ok(lines) => lines,
            Err(Error::Rejected { result, .. }) => {
                warn!(result = %result.describe(), "the modem refused to list stored messages");
                return Ok(Vec::new());
            }
            Err(err) => return Err(err),
        };
        let mut header: Option<u32> = None;
        let mut outgoing = Vec::new();
        for line in lines {
            if let Some(args) = line.strip_prefix("+CMGL:") {
                // +CMGL: <index>,<stat>,[<alpha>],<length> (TS 27.005 §3.4.2). <stat> 2 and 3 are
                // stored outgoing messages, not ours to read.
                let fields = at::split_fields(args);
                let index = fields.first().and_then(|index| index.parse().ok());
                let incoming = matches!(fields.get(1).map(String::as_str), Some("0") | Some("1"));
                if !incoming && let Some(index) = index {
                    outgoing.push(index);
                }
                header = index.filter(|_| incoming);
            } else if let Some(index) = header.take() {
                let storage = Some(Storage {
                    memory: self.read_memory.clone(),
                    index,
                });
                self.emit(sms_or_report(
                    &self.supervisor.config.id,
                    line,
                    storage,
                    self.supervisor.clock.now(),
                ))
                .await;
            }
        }
        Ok(outgoing)
    }

    // --- requests ------------------------------------------------------------------------------

    async fn serve(&mut self, request: Request) -> Result<(), Error> {
        match request {
            Request::Send { pdus, reply } => {
                let result = self.send_sms(&pdus).await;
                // A lost port or a modem that stopped answering is the session's business too.
                let session_error = match &result {
                    Err(
                        err @ (Error::Disconnected { .. }
                        | Error::Timeout { .. }
                        | Error::NoPrompt { .. }),
                    ) => Some(err.clone()),
                    // The SIM is gone: set the modem up again (it waits for the SIM to return).
                    Err(err) if err.sim_missing() => Some(Error::NotReady {
                        reason: format!("the SIM is not there ({err})"),
                    }),
                    _ => None,
                };
                let _ = reply.send(result);
                if let Some(err) = session_error {
                    return Err(err);
                }
            }
            Request::Delete {
                storage,
                pdu,
                reply,
            } => {
                let result = self.delete(&storage, &pdu).await;
                if let Err(Error::Disconnected { .. }) = &result {
                    let err = result.clone().err();
                    let _ = reply.send(result);
                    return Err(err.unwrap_or(Error::Stopped));
                }
                let _ = reply.send(result);
            }
            Request::Command { line, reply } => {
                let result = self.exec(&line, SEND_TIMEOUT).await;
                let _ = reply.send(result);
            }
            Request::Ussd { code, reply } => {
                let result = self.ussd(&code).await;
                let session_error = match &result {
                    Err(err @ Error::Disconnected { .. }) => Some(err.clone()),
                    _ => None,
                };
                let _ = reply.send(result);
                if let Some(err) = session_error {
                    return Err(err);
                }
            }
        }
        Ok(())
    }

    /// Dials a USSD code (`AT+CUSD=1,"<code>",15`, TS 27.007 §7.15) and waits for the network's
    /// `+CUSD:` answer, which most modems send after the OK and some before it. A menu left open
    /// (`<m>` 1) is closed with AT+CUSD=2; so is a session that got no answer in time.
    async fn ussd(&mut self, code: &str) -> Result<String, Error> {
        let failed = |reason: String| Error::Ussd {
            code: code.to_string(),
            reason,
        };
        let encoded =
            ussd::encode_request(code, self.ussd_form).map_err(|err| failed(err.to_string()))?;
        let command = format!("AT+CUSD=1,\"{encoded}\",15");
        let deadline = Instant::now() + self.supervisor.config.ussd_timeout;
        let lines = match self.exec(&command, COMMAND_TIMEOUT).await {
            Ok(lines) => lines,
            Err(Error::Rejected { result, .. }) => {
                return Err(failed(format!(
                    "the modem refused it ({})",
                    result.describe()
                )));
            }
            Err(err) => return Err(err),
        };
        let mut answer = None;
        for line in &lines {
            match ussd::parse_line(line) {
                Some(parsed) => answer = Some(parsed),
                None => self.bad_ussd_line(line),
            }
        }
        if answer.is_none() {
            answer = self.wait_for_ussd(deadline).await?;
        }
        let Some(answer) = answer else {
            let _ = self.try_exec("AT+CUSD=2").await;
            return Err(failed(format!(
                "no answer from the network within {} s",
                self.supervisor.config.ussd_timeout.as_secs()
            )));
        };
        if answer.status == 1 {
            // A menu waits for a choice: end it, so the next code starts afresh.
            let _ = self.try_exec("AT+CUSD=2").await;
        }
        let Some(data) = answer.data else {
            return Err(failed(match answer.status {
                2 => "the network ended the session".to_string(),
                4 => "the network does not support it".to_string(),
                5 => "the network timed out".to_string(),
                other => format!("an empty answer (+CUSD: {other})"),
            }));
        };
        let text = ussd::decode(&data, answer.dcs, self.ussd_form)
            .map_err(|err| failed(err.to_string()))?;
        info!(code, "USSD answered");
        Ok(text)
    }

    /// Reads the line until a `+CUSD:` answer or `until`; other URCs are kept for later.
    async fn wait_for_ussd(&mut self, until: Instant) -> Result<Option<ussd::UssdLine>, Error> {
        loop {
            loop {
                let digest = at::next_frame(&self.buffer, false);
                if digest.consumed == 0 {
                    break;
                }
                let _ = self.buffer.split_to(digest.consumed);
                let Some(Frame::Line(line)) = digest.frame else {
                    continue;
                };
                match self.classifier.classify(&line, None) {
                    Classified::Urc(Urc::Ussd(answer)) => return Ok(Some(answer)),
                    Classified::Urc(Urc::Unknown(line)) if line.starts_with("+CUSD") => {
                        self.bad_ussd_line(&line)
                    }
                    Classified::Urc(urc) => self.queue_urc(urc),
                    _ => {}
                }
            }
            match timeout_at(until, self.port.read_buf(&mut self.buffer)).await {
                Ok(read) => self.check_read(read)?,
                Err(_) => return Ok(None),
            }
        }
    }

    /// A `+CUSD:` line that does not read: logged once per session, never acted on.
    fn bad_ussd_line(&mut self, line: &str) {
        if !self.bad_ussd_seen {
            self.bad_ussd_seen = true;
            warn!(
                line,
                "the modem sent a +CUSD line that does not read; ignored"
            );
        } else {
            debug!(line, "another +CUSD line that does not read");
        }
    }

    async fn use_memory(&mut self, memory: &str) -> Result<(), Error> {
        if memory != self.read_memory {
            self.exec(&format!("AT+CPMS=\"{memory}\""), COMMAND_TIMEOUT)
                .await?;
            self.read_memory = memory.to_string();
        }
        Ok(())
    }

    /// Deletes the message in `storage` if it is still `pdu`. A duplicate report of a message
    /// (a buffered +CMTI and the start-up AT+CMGL both name it) must not delete the next message,
    /// which the SIM may have put in the freed slot meanwhile.
    async fn delete(&mut self, storage: &Storage, pdu: &str) -> Result<Deleted, Error> {
        if self.last_read.as_ref() == Some(&(storage.memory.clone(), storage.index)) {
            self.last_read = None;
        }
        self.use_memory(&storage.memory).await?;
        let lines = match self
            .exec(&format!("AT+CMGR={}", storage.index), COMMAND_TIMEOUT)
            .await
        {
            Ok(lines) => lines,
            Err(Error::Rejected { .. }) => return Ok(Deleted::SlotChanged),
            Err(err) => return Err(err),
        };
        let current = lines.iter().skip_while(|l| !l.starts_with("+CMGR:")).nth(1);
        if !current.is_some_and(|current| current.eq_ignore_ascii_case(pdu)) {
            debug!(
                memory = storage.memory,
                index = storage.index,
                "the slot holds another message now; not deleted"
            );
            return Ok(Deleted::SlotChanged);
        }
        self.exec(&format!("AT+CMGD={}", storage.index), COMMAND_TIMEOUT)
            .await?;
        Ok(Deleted::Deleted)
    }

    /// Sends every part; returns the network's reference for each. Once a part has gone out, a
    /// failure is reported as [`Error::PartlySent`], and a part whose outcome is unknown (no reply
    /// after the PDU) as [`Error::OutcomeUnknown`]: neither is retried by itself, as a retry would
    /// send the caller the same text twice.
    async fn send_sms(&mut self, pdus: &[SubmitPdu]) -> Result<Vec<u8>, Error> {
        let mut references = Vec::with_capacity(pdus.len());
        for pdu in pdus {
            match self.send_part(pdu).await {
                Ok(reference) => references.push(reference),
                Err(err) if references.is_empty() => return Err(err),
                Err(err) => {
                    return Err(Error::PartlySent {
                        references,
                        parts: pdus.len(),
                        cause: Box::new(err),
                    });
                }
            }
        }
        Ok(references)
    }

    async fn send_part(&mut self, pdu: &SubmitPdu) -> Result<u8, Error> {
        let command = format!("AT+CMGS={}", pdu.tpdu_length);
        debug!(command, "AT >");
        self.write(format!("{command}\r").as_bytes()).await?;
        match self.collect(&command, PROMPT_TIMEOUT, true).await {
            Ok(Reply::Prompt(_)) => {}
            Ok(Reply::Done(_)) => {
                self.resync().await?;
                return Err(Error::NoPrompt { command });
            }
            Err(Error::Timeout { .. }) => {
                // A stuck prompt: ESC cancels it (field note 6).
                self.resync().await?;
                return Err(Error::NoPrompt { command });
            }
            Err(err) => return Err(err),
        }
        let mut body = pdu.hex.clone().into_bytes();
        body.push(CTRL_Z);
        self.write(&body).await?;
        let lines = match self.collect(&command, SEND_TIMEOUT, false).await {
            Ok(Reply::Done(lines)) => lines,
            Ok(Reply::Prompt(_)) | Err(Error::Timeout { .. }) => {
                // The network may have taken it: resending could text the caller twice. A failed
                // resync ends the session at the next command; the answer here stays "unknown".
                if let Err(err) = self.resync().await {
                    warn!(error = %err, "the modem did not answer after an unconfirmed send");
                }
                return Err(Error::OutcomeUnknown { command });
            }
            Err(err @ Error::Disconnected { .. }) => {
                // The PDU reached the modem and then the port died: the SMS may be out.
                warn!(error = %err, "the port died after the PDU was written");
                return Err(Error::OutcomeUnknown { command });
            }
            Err(err) => return Err(err),
        };
        let reference = lines
            .iter()
            .find_map(|line| line.strip_prefix("+CMGS:"))
            .and_then(|value| value.trim().split(',').next()?.trim().parse::<u8>().ok());
        reference.ok_or_else(|| Error::Unexpected {
            line: lines.join(" | "),
            expected: "+CMGS: <reference>",
        })
    }

    /// Brings the line back to a known state after a timeout: ESC ends a half-typed send, late
    /// replies are read and thrown away until the line is quiet, then AT must answer OK. Without
    /// this a late OK would be taken as the answer to the next command.
    async fn resync(&mut self) -> Result<(), Error> {
        self.quiet_line().await?;
        self.exec("AT", COMMAND_TIMEOUT).await.map(|_| ())
    }

    /// Sends ESC (ending a half-typed send) and reads until the line is quiet, keeping the URCs
    /// among what arrived and dropping the rest (late replies to an earlier command).
    async fn quiet_line(&mut self) -> Result<(), Error> {
        self.write(&[ESC, b'\r']).await?;
        let until = Instant::now() + RESYNC_QUIET_MAX;
        loop {
            match timeout_at(
                (Instant::now() + RESYNC_QUIET).min(until),
                self.port.read_buf(&mut self.buffer),
            )
            .await
            {
                Ok(read) => self.check_read(read)?,
                Err(_) => break,
            }
            if Instant::now() >= until {
                break;
            }
        }
        // Keep the URCs among what arrived (a +CMTI must not be lost), drop the rest.
        self.digest_idle();
        Ok(())
    }

    // --- unsolicited ---------------------------------------------------------------------------

    async fn handle_urcs(&mut self) -> Result<(), Error> {
        while let Some(urc) = self.urcs.pop_front() {
            self.handle_urc(urc).await?;
        }
        Ok(())
    }

    async fn handle_urc(&mut self, urc: Urc) -> Result<(), Error> {
        match urc {
            Urc::Ring => {
                let now = Instant::now();
                match &mut self.ringing {
                    Some(ringing) => {
                        ringing.rings += 1;
                        ringing.last_ring = now;
                    }
                    None => {
                        let call = self.new_call_id();
                        info!(call_id = %call, "incoming call ringing");
                        self.ringing = Some(Ringing {
                            call,
                            caller_raw: None,
                            withheld: false,
                            rings: 1,
                            last_ring: now,
                        });
                    }
                }
                let limit = self.supervisor.config.hangup_after_rings;
                if limit > 0 && self.ringing.as_ref().is_some_and(|r| r.rings >= limit) {
                    self.exec("ATH", COMMAND_TIMEOUT).await?;
                    self.finish_call("hung up after the configured rings").await;
                }
            }
            Urc::Clip {
                number, validity, ..
            } => {
                if let Some(ringing) = &mut self.ringing {
                    ringing.withheld = matches!(validity, Some(1) | Some(2));
                    ringing.caller_raw = Some(number);
                }
            }
            Urc::NoCarrier => {
                if self.ringing.is_some() {
                    self.finish_call("the caller hung up").await;
                }
            }
            Urc::NewMessageStored { memory, index } => {
                if self.last_read.as_ref() == Some(&(memory.clone(), index)) {
                    debug!(
                        memory,
                        index, "an indication of a message already read; not read again"
                    );
                } else {
                    self.last_read = Some((memory.clone(), index));
                    self.read_stored(memory, index, false).await?;
                }
            }
            Urc::StatusReportStored { memory, index } => {
                self.read_stored(memory, index, true).await?;
            }
            Urc::NewMessage { pdu } => {
                // Routed straight to us (not stored): TS 27.005 wants an AT+CNMA in some modes;
                // with mt=1 messages are stored and this form only comes from modems that ignore it.
                self.emit(ModemEvent::Input(Event::SmsReceived(InboundSms {
                    modem: self.supervisor.config.id.clone(),
                    pdu,
                    storage: None,
                    at: self.supervisor.clock.now(),
                })))
                .await;
            }
            Urc::StatusReport { pdu } => {
                self.emit(ModemEvent::Input(Event::StatusReport(InboundSms {
                    modem: self.supervisor.config.id.clone(),
                    pdu,
                    storage: None,
                    at: self.supervisor.clock.now(),
                })))
                .await;
            }
            Urc::Registration { stat } => {
                info!(
                    stat,
                    state = registration_words(stat),
                    "network registration changed"
                );
                // The outbox waits while the modem is off the network (sends would fail with
                // +CMS ERROR: 331 and use up their tries), and moves texts to another SIM.
                self.set_registration(Some(stat));
            }
            Urc::MissedCall { number } => self.missed_call_line(number).await,
            Urc::Ussd(answer) => {
                // An answer after its request gave up waiting, or the network's own message.
                debug!(
                    status = answer.status,
                    "a USSD answer nobody is waiting for"
                );
            }
            Urc::StorageFull { memory } => {
                warn!(memory, "the modem says its message store is full");
                self.sweep_storage().await?;
            }
            urc @ Urc::Ready(_) if urc.is_power_up() => {
                // RDY mid-session: the modem restarted by itself (a brown-out, a firmware crash)
                // and lost echo, indications and caller id.
                warn!("the modem restarted by itself (RDY); setting it up again");
                let mut info = self.initialise().await?;
                info.port = self.path.display().to_string();
                self.supervisor
                    .state
                    .send_replace(ModemState::Ready { info });
                self.sweep_storage().await?;
            }
            Urc::Ready(line) => info!(line, "modem says it is ready"),
            Urc::Vendor(line) => debug!(line, "vendor status line"),
            Urc::Unknown(line) if line.starts_with("+CUSD") => self.bad_ussd_line(&line),
            Urc::Unknown(line) => debug!(line, "unrecognised line"),
        }
        Ok(())
    }

    async fn read_stored(
        &mut self,
        memory: String,
        index: u32,
        _status_report: bool,
    ) -> Result<(), Error> {
        self.use_memory(&memory).await?;
        let lines = match self
            .exec(&format!("AT+CMGR={index}"), COMMAND_TIMEOUT)
            .await
        {
            Ok(lines) => lines,
            Err(Error::Rejected { result, .. }) => {
                warn!(memory, index, result = %result.describe(), "could not read a stored message");
                return Ok(());
            }
            Err(err) => return Err(err),
        };
        // +CMGR: <stat>,[<alpha>],<length> then the PDU line.
        let Some(pdu) = lines
            .iter()
            .skip_while(|l| !l.starts_with("+CMGR:"))
            .nth(1)
            .cloned()
        else {
            warn!(memory, index, "AT+CMGR gave no PDU (an empty slot)");
            return Ok(());
        };
        let storage = Some(Storage { memory, index });
        self.emit(sms_or_report(
            &self.supervisor.config.id,
            pdu,
            storage,
            self.supervisor.clock.now(),
        ))
        .await;
        Ok(())
    }

    fn new_call_id(&self) -> CallId {
        let millis = SystemTime::now()
            .duration_since(UNIX_EPOCH)
            .map(|d| d.as_millis())
            .unwrap_or(0);
        CallId::new(format!("modem:{}:{millis}", self.supervisor.config.id))
    }

    /// SIMCom's `MISSED_CALL: <time> <number>`: ends the call ringing now, is ignored when it
    /// follows a call just recorded, and otherwise raises the call it reports (its RINGs were not
    /// seen: a firmware that sends none, or a port that was busy being reopened).
    async fn missed_call_line(&mut self, number: String) {
        if let Some(ringing) = &mut self.ringing {
            if ringing.caller_raw.is_none() {
                ringing.caller_raw = Some(number);
            }
            self.finish_call("the modem reported the call missed").await;
            return;
        }
        if self
            .last_call_end
            .is_some_and(|ended| ended.elapsed() < MISSED_CALL_ECHO)
        {
            debug!("MISSED_CALL line for the call just recorded");
            return;
        }
        self.ringing = Some(Ringing {
            call: self.new_call_id(),
            caller_raw: Some(number),
            withheld: false,
            rings: 0,
            last_ring: Instant::now(),
        });
        self.finish_call("the modem reported a missed call it had not rung for")
            .await;
    }

    async fn finish_call(&mut self, why: &str) {
        let Some(ringing) = self.ringing.take() else {
            return;
        };
        self.last_call_end = Some(Instant::now());
        let caller_raw = ringing.caller_raw.unwrap_or_default();
        let caller = if ringing.withheld {
            CallerId::Withheld(WithheldReason::Anonymous)
        } else {
            CallerId::from_raw(&caller_raw)
        };
        info!(call_id = %ringing.call, rings = ringing.rings, why, "missed call on the SIM");
        let modem = self.supervisor.config.id.clone();
        self.emit(ModemEvent::Input(Event::CallMissed(MissedCall {
            key: ringing.call,
            source: CallSource::Modem,
            caller,
            caller_raw,
            called: None,
            modem: Some(modem),
            sip_account: None,
            at: self.supervisor.clock.now(),
        })))
        .await;
    }
}

enum Reply {
    Done(Vec<String>),
    Prompt(#[allow(dead_code)] Vec<String>),
}

/// Final results that mean "not yet" right after power-up: SIM busy (TS 27.005 314, TS 27.007 14),
/// operation not allowed (302, 3) and unknown error (500), as modules answer before `SMS DONE`.
/// TS 27.007 §7.2 <stat> in words: searching, denied and roaming are states of their own.
fn registration_words(stat: u8) -> &'static str {
    match stat {
        0 => "not registered, not searching",
        1 => "registered, home network",
        2 => "searching",
        3 => "registration denied",
        4 => "unknown",
        5 => "registered, roaming",
        _ => "other",
    }
}

fn not_ready_yet(result: &Final) -> bool {
    use crate::codec::at::ErrorCode;
    matches!(
        result,
        Final::Cms(ErrorCode::Number(302 | 314 | 500)) | Final::Cme(ErrorCode::Number(3 | 14))
    )
}

/// `+CPMS: "SM",5,30,...` (query) or `+CPMS: 5,30,...` (set) → (used, capacity) of the first
/// memory.
fn parse_storage(line: &str) -> Option<(u32, u32)> {
    let fields = at::split_fields(line.strip_prefix("+CPMS:")?);
    let numbers: Vec<u32> = fields.iter().filter_map(|f| f.parse().ok()).collect();
    match numbers.as_slice() {
        [used, capacity, ..] => Some((*used, *capacity)),
        _ => None,
    }
}

fn first_line(lines: Vec<String>) -> String {
    lines.into_iter().next().unwrap_or_default()
}

/// A stored message is an SMS-DELIVER or an SMS-STATUS-REPORT; the first octet after the SMSC
/// field tells (TS 23.040 §9.2.3.1, TP-MTI 0b10 is a status report).
fn sms_or_report(
    modem: &crate::domain::ModemId,
    pdu: String,
    storage: Option<Storage>,
    at: chrono::DateTime<chrono::Utc>,
) -> ModemEvent {
    use crate::codec::pdu::{Pdu, SmscField, decode};
    let report = matches!(decode(&pdu, SmscField::Present), Ok(Pdu::StatusReport(_)));
    let sms = InboundSms {
        modem: modem.clone(),
        pdu,
        storage,
        at,
    };
    ModemEvent::Input(if report {
        Event::StatusReport(sms)
    } else {
        Event::SmsReceived(sms)
    })
}
