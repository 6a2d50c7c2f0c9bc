//! The daemon: opens the store, starts one task per modem and one outbox worker per modem, and runs
//! the event loop that turns each event into store changes through [`crate::flow`]. Shuts down in
//! order: intake stops, the modems finish the command in flight, then the store closes.

use std::collections::HashMap;
use std::sync::Arc;
use std::time::Duration;

use anyhow::Context;
use tokio::sync::mpsc;
use tokio_util::sync::CancellationToken;
use tokio_util::task::TaskTracker;
use tracing::{Instrument, debug, info, info_span, warn};

use crate::assistant::Assistant;
use crate::clock::Clock;
use crate::config::Config;
use crate::domain::ModemId;
use crate::event::MissedCall;
use crate::flow::{self, After};
use crate::leads::deliver::{self, Backoff};
use crate::modem::{self, ModemEvent, ModemHandle, ModemState, Storage};
use crate::outbox;
use crate::store::Store;
use crate::wake::Wakers;

/// How many events may wait for the loop. Modem events come a few a second at most; when full the
/// modem task waits, which is the right back-pressure for a serial line.
const EVENT_QUEUE: usize = 256;
/// How often the periodic jobs run.
const HOUSEKEEPING: Duration = Duration::from_secs(60);
/// The longest a clean shutdown may take: one AT+CMGS can take 60 s on a weak signal, so systemd's
/// TimeoutStopSec in systemd/textback.service is set above this.
pub const SHUTDOWN_DEADLINE: Duration = Duration::from_secs(75);
/// How long the SIP sockets may take to close once the daemon has finished (a task that sends
/// the last datagram).
const SIP_CLOSE_WAIT: Duration = Duration::from_secs(2);

pub use crate::event::Event;

/// A running daemon, for `demo` and the tests: events can be injected, and it is stopped by its token.
pub struct Running {
    pub events: mpsc::Sender<Event>,
    pub modems: Vec<ModemHandle>,
    /// Where the dashboard listens (the configured address, with the port chosen when it was 0).
    pub dashboard: std::net::SocketAddr,
    /// Where the SIP endpoint listens (UDP and TCP), one address per listen address and port.
    pub sip: Vec<std::net::SocketAddr>,
    token: CancellationToken,
    finished: tokio::task::JoinHandle<anyhow::Result<()>>,
}

impl Running {
    /// Stops the daemon and waits for it to finish.
    pub async fn stop(self) -> anyhow::Result<()> {
        self.token.cancel();
        self.finished.await.context("daemon task panicked")?
    }
}

/// Options that come from how the daemon is run rather than from the config.
#[derive(Debug, Clone, Default)]
pub struct RunOptions {
    /// Tell systemd when ready, and ping its watchdog.
    pub systemd: bool,
    /// How long a lead delivery or notice that failed for now waits before its first retry (default 30 s;
    /// tests use less).
    pub lead_retry: Option<Duration>,
    /// The wall clock (the system's by default; tests set the date).
    pub clock: Clock,
    /// Missed calls each SIP port holds while the daemon's event queue is full (default
    /// `sip::service::MISSED_QUEUE`, 4096; tests use a few, to see it fill).
    pub sip_missed_queue: Option<usize>,
    /// Shorter health timings for every modem (tests: seconds where the config says minutes).
    pub modem_timing: Option<ModemTiming>,
    /// Where every modem's ports are looked for (default `/sys` and `/dev`; tests give a fake
    /// tree of links to pseudo-terminals).
    pub port_search: Option<crate::config::PortSearch>,
}

/// Health timings that replace each modem's configured ones.
#[derive(Debug, Clone, Copy)]
pub struct ModemTiming {
    /// `modem.refused_recheck_minutes`.
    pub refused_recheck: Duration,
    /// `modem.off_network_minutes` (None: never cycle the radio).
    pub off_network_cycle: Option<Duration>,
    /// How long the SIM's store stays full before the business is told
    /// ([`outbox::STORAGE_TELL_AFTER`]).
    pub storage_tell_after: Duration,
    /// How often each SIM's delivered share is looked at ([`outbox::DELIVERY_CHECK`]).
    pub delivery_check: Duration,
    /// How long a modem stays lost before the business is told ([`outbox::LOST_TELL_AFTER`]).
    pub lost_tell_after: Duration,
    /// How long a USSD code waits for the network's answer ([`crate::config::defaults::USSD_TIMEOUT`]).
    pub ussd_timeout: Duration,
    /// How soon a failed credit check is tried again ([`crate::balance::RETRY_AFTER`]).
    pub balance_retry: Duration,
    /// `modem.balance_check_hours`, when set.
    pub balance_interval: Option<Duration>,
    /// `modem.self_test.timeout_minutes`, when set.
    pub self_test_timeout: Option<Duration>,
}

/// Starts the daemon in the background (for `demo` and tests).
pub async fn start(config: Arc<Config>, options: RunOptions) -> anyhow::Result<Running> {
    let token = CancellationToken::new();
    let (events_tx, events) = mpsc::channel(EVENT_QUEUE);
    let parts = setup(config, options, token.clone(), events_tx.clone())?;
    let modems = parts.modems.values().cloned().collect();
    let dashboard = parts
        .dashboard
        .local_addr()
        .context("reading the dashboard's address")?;
    let sip = parts.sip_addresses.clone();
    let finished = tokio::spawn(parts.run(events));
    Ok(Running {
        events: events_tx,
        modems,
        dashboard,
        sip,
        token,
        finished,
    })
}

/// Runs the daemon until `shutdown` is cancelled.
pub async fn run(
    config: Arc<Config>,
    options: RunOptions,
    shutdown: CancellationToken,
) -> anyhow::Result<()> {
    // The SIP endpoint sends its missed calls here.
    let (events_tx, events) = mpsc::channel(EVENT_QUEUE);
    let parts = setup(config, options, shutdown, events_tx)?;
    parts.run(events).await
}

struct Parts {
    config: Arc<Config>,
    options: RunOptions,
    store: Store,
    closer: crate::store::StoreCloser,
    modems: HashMap<ModemId, ModemHandle>,
    wakers: Wakers,
    /// Cancelled on shutdown: stops intake and the outbox workers.
    token: CancellationToken,
    /// Cancelled once the outbox workers have stopped, so a send in flight is finished first.
    modem_token: CancellationToken,
    /// Outbox workers and small jobs (deleting a stored SMS).
    workers: TaskTracker,
    /// Modem tasks.
    modem_tasks: TaskTracker,
    /// The SIP endpoint's tasks: its intake is the first to stop (after removing registrations);
    /// its sockets the last, answering 503 until the daemon exits.
    sip_tasks: crate::sip::service::Tasks,
    sip_addresses: Vec<std::net::SocketAddr>,
    modem_events: mpsc::Receiver<ModemEvent>,
    /// Answers replies that wait for the local model.
    assistant: Assistant,
    /// Bound at set-up, so that a taken port stops the start with a clear error.
    dashboard: std::net::TcpListener,
}

fn setup(
    config: Arc<Config>,
    options: RunOptions,
    token: CancellationToken,
    events: mpsc::Sender<Event>,
) -> anyhow::Result<Parts> {
    let dashboard = std::net::TcpListener::bind(config.dashboard.listen)
        .and_then(|listener| listener.set_nonblocking(true).map(|()| listener))
        .with_context(|| {
            format!(
                "cannot listen on dashboard.listen {} (another textback, or another program on that port?): change dashboard.listen in the config",
                config.dashboard.listen
            )
        })?;
    let (store, closer) = Store::open(&config.storage.database)?;
    let sip_tasks = crate::sip::service::Tasks::default();
    let sip_addresses = crate::sip::service::start(
        &config,
        store.clone(),
        events,
        token.child_token(),
        &sip_tasks,
        options.clock.clone(),
        options
            .sip_missed_queue
            .unwrap_or(crate::sip::service::MISSED_QUEUE),
    )?;
    let workers = TaskTracker::new();
    let modem_tasks = TaskTracker::new();
    let modem_token = CancellationToken::new();
    let (modem_tx, modem_events) = mpsc::channel(EVENT_QUEUE);
    let mut modems = HashMap::new();
    let mut wakers = Wakers::default();
    let mut outboxes = Vec::new();
    for modem_config in &config.modems {
        let mut modem_config = modem_config.clone();
        if let Some(search) = &options.port_search {
            modem_config.search = search.clone();
        }
        if let Some(timing) = options.modem_timing {
            modem_config.refused_recheck = timing.refused_recheck;
            modem_config.off_network_cycle = timing.off_network_cycle;
            modem_config.ussd_timeout = timing.ussd_timeout;
            if let (Some(interval), Some(balance)) =
                (timing.balance_interval, modem_config.balance.as_mut())
            {
                balance.interval = interval;
            }
            if let (Some(timeout), Some(test)) =
                (timing.self_test_timeout, modem_config.self_test.as_mut())
            {
                test.timeout = timeout;
            }
        }
        let handle = modem::spawn(
            modem_config.clone(),
            modem_tx.clone(),
            modem_token.clone(),
            &modem_tasks,
            options.clock.clone(),
        );
        let wake = wakers.add_outbox(modem_config.id.clone());
        modems.insert(modem_config.id.clone(), handle.clone());
        outboxes.push((modem_config, handle, wake));
    }
    // Each outbox sees the whole pool: texts move to another SIM of the business, and alerts go
    // out through a modem that can send.
    let alerter = crate::alert::Alerter {
        store: store.clone(),
        config: config.clone(),
        pool: outboxes
            .iter()
            .map(|(_, handle, _)| handle.clone())
            .collect(),
        wakers: wakers.clone(),
        clock: options.clock.clone(),
    };
    for (modem_config, handle, wake) in outboxes {
        if let Some(test) = modem_config.self_test.clone() {
            workers.spawn(crate::self_test::run(
                crate::self_test::Tester {
                    store: store.clone(),
                    modem: modem_config.id.clone(),
                    test,
                    alerter: alerter.clone(),
                    wakers: wakers.clone(),
                    clock: options.clock.clone(),
                },
                token.child_token(),
            ));
        }
        let balance_now = modem_config.balance.clone().map(|check| {
            let now = crate::balance::CheckNow::default();
            workers.spawn(crate::balance::run(
                crate::balance::Checker {
                    store: store.clone(),
                    modem: handle.clone(),
                    check,
                    alerter: alerter.clone(),
                    clock: options.clock.clone(),
                    now: now.clone(),
                    retry_after: options
                        .modem_timing
                        .map_or(crate::balance::RETRY_AFTER, |t| t.balance_retry),
                },
                token.child_token(),
            ));
            now
        });
        workers.spawn(outbox::run(
            store.clone(),
            handle,
            outbox::Settings {
                modem: modem_config,
                alerter: alerter.clone(),
                storage_tell_after: options
                    .modem_timing
                    .map_or(outbox::STORAGE_TELL_AFTER, |t| t.storage_tell_after),
                delivery_check: options
                    .modem_timing
                    .map_or(outbox::DELIVERY_CHECK, |t| t.delivery_check),
                lost_tell_after: options
                    .modem_timing
                    .map_or(outbox::LOST_TELL_AFTER, |t| t.lost_tell_after),
                balance_now,
            },
            wake,
            options.clock.clone(),
            token.child_token(),
        ));
    }
    let assistant = Assistant::new(
        store.clone(),
        config.clone(),
        workers.clone(),
        token.child_token(),
        wakers.clone(),
        options.clock.clone(),
    )?;
    Ok(Parts {
        config,
        options,
        store,
        closer,
        modems,
        wakers,
        token,
        modem_token,
        workers,
        modem_tasks,
        sip_tasks,
        sip_addresses,
        modem_events,
        assistant,
        dashboard,
    })
}

impl Parts {
    fn clock(&self) -> &Clock {
        &self.options.clock
    }

    async fn run(mut self, mut events: mpsc::Receiver<Event>) -> anyhow::Result<()> {
        let requeued = self
            .store
            .run({
                let now = self.clock().now_ms();
                move |tx| tx.requeue_interrupted(now)
            })
            .await?;
        for id in &requeued {
            warn!(sms = %id, "this SMS was being sent when textback stopped; queued again (the caller may get it twice)");
        }
        self.wakers.all_outboxes();
        match flow::adopt_in_order_conversations(
            &self.store,
            self.config.clone(),
            self.clock().now(),
        )
        .await
        {
            Ok(0) => {}
            Ok(n) => info!(
                conversations = n,
                "conversations of the retired in-order engine moved to the conversation engine"
            ),
            Err(err) => {
                warn!(error = %err, "could not move the conversations of the retired engine")
            }
        }
        let link_key = self.start_lead_worker().await?;
        self.start_notice_worker()?;
        self.start_summaries().await;
        match self.assistant.resume().await {
            Ok(0) => {}
            Ok(n) => info!(
                conversations = n,
                "replies waiting for the assistant from before; answering them now"
            ),
            Err(err) => warn!(error = %err, "could not read the replies waiting for the assistant"),
        }
        self.start_dashboard(link_key)?;
        info!(modems = self.modems.len(), database = %self.config.storage.database.display(), "textback running");
        let watchdog = if self.options.systemd {
            let _ = sd_notify::notify(&[sd_notify::NotifyState::Ready]);
            sd_notify::watchdog_enabled().map(|interval| interval / 2)
        } else {
            None
        };
        let mut watchdog_tick =
            tokio::time::interval(watchdog.unwrap_or(Duration::from_secs(3600)));
        let mut housekeeping = tokio::time::interval(HOUSEKEEPING);
        loop {
            tokio::select! {
                _ = self.token.cancelled() => break,
                Some(event) = events.recv() => self.handle(event).await,
                Some(event) = self.modem_events.recv() => self.modem_event(event).await,
                _ = housekeeping.tick() => self.handle(Event::Housekeeping).await,
                _ = watchdog_tick.tick(), if watchdog.is_some() => {
                    // The loop is alive: tell systemd. A stuck loop misses pings and gets restarted.
                    let _ = sd_notify::notify(&[sd_notify::NotifyState::Watchdog]);
                }
            }
        }
        self.shutdown(events).await
    }

    async fn shutdown(mut self, mut events: mpsc::Receiver<Event>) -> anyhow::Result<()> {
        info!("shutting down");
        if self.options.systemd {
            let _ = sd_notify::notify(&[sd_notify::NotifyState::Stopping]);
        }
        let deadline = tokio::time::Instant::now() + SHUTDOWN_DEADLINE;
        // SIP intake first: its tasks end the calls still ringing (each a missed call, as a
        // modem's ringing call is), remove the registrations (bounded) and stop. Their missed
        // calls are recorded meanwhile, while the store is open: the SIP forwarder waits for room
        // in `events`, so the queue is read until the SIP tasks are gone, not after.
        self.sip_tasks.intake.close();
        let sip_stopped = self.sip_tasks.intake.clone();
        let sip_stopped = sip_stopped.wait();
        tokio::pin!(sip_stopped);
        loop {
            tokio::select! {
                _ = &mut sip_stopped => break,
                _ = tokio::time::sleep_until(deadline) => break,
                Some(event) = events.recv() => {
                    if let Event::CallMissed(call) = event {
                        self.missed_call(call).await;
                    }
                }
            }
        }
        while let Ok(event) = events.try_recv() {
            if let Event::CallMissed(call) = event {
                self.missed_call(call).await;
            }
        }
        let workers = self.workers.clone();
        let modem_tasks = self.modem_tasks.clone();
        let modem_token = self.modem_token.clone();
        let ordered = async {
            workers.close();
            workers.wait().await;
            modem_token.cancel();
            modem_tasks.close();
            modem_tasks.wait().await;
        };
        let in_time = tokio::time::timeout_at(deadline, ordered).await.is_ok();
        if !in_time {
            // Stop the modems now; whatever they were doing is recorded at the next start.
            self.modem_token.cancel();
        }
        // A modem that finished its last command may have seen a call end or an SMS arrive
        // meanwhile: record them while the store is open. (An SMS stays on the SIM until the
        // next start deletes it, after it is found stored.)
        while let Ok(event) = self.modem_events.try_recv() {
            if let ModemEvent::Input(event) = event {
                self.handle(event).await;
            }
        }
        let Parts {
            store,
            closer,
            modems,
            assistant,
            sip_tasks,
            ..
        } = self;
        drop(modems);
        drop(assistant);
        drop(store);
        // The writer drains its queue and closes the file once every handle is gone; a task still
        // running past the deadline would hold one, so the wait has its own bound.
        let closed = tokio::time::timeout_at(
            deadline + Duration::from_secs(5),
            tokio::task::spawn_blocking(move || closer.wait()),
        )
        .await;
        // Only now do the SIP sockets close: until here every INVITE and OPTIONS got 503, so a
        // dispatcher in front of several boxes sent this box's calls elsewhere at once.
        sip_tasks.close.cancel();
        sip_tasks.sockets.close();
        if tokio::time::timeout(SIP_CLOSE_WAIT, sip_tasks.sockets.wait())
            .await
            .is_err()
        {
            warn!("the SIP sockets did not close in time");
        }
        if !in_time || closed.is_err() {
            anyhow::bail!(
                "shutdown took longer than {}s: a modem did not finish its command; anything unfinished is picked up at the next start",
                SHUTDOWN_DEADLINE.as_secs()
            );
        }
        info!("stopped; database closed");
        Ok(())
    }

    /// Starts the dashboard's task on the listener bound at set-up.
    fn start_dashboard(&self, link_key: Vec<u8>) -> anyhow::Result<()> {
        let listener = tokio::net::TcpListener::from_std(
            self.dashboard
                .try_clone()
                .context("taking the dashboard's listener")?,
        )
        .context("taking the dashboard's listener")?;
        let web = crate::web::Web {
            wakers: self.wakers.clone(),
            config: self.config.clone(),
            store: self.store.clone(),
            database: self.config.storage.database.clone(),
            modems: self.modems.values().cloned().collect(),
            link_key,
            gate: crate::web::auth::Gate::default(),
            checker: crate::web::auth::PasswordChecker::start()
                .context("starting the dashboard's password-check thread")?,
            reads: tokio::sync::Semaphore::new(crate::web::MAX_READS),
            clock: self.clock().clone(),
        };
        self.workers
            .spawn(crate::web::serve(listener, web, self.token.child_token()));
        Ok(())
    }

    /// Starts the task that delivers leads to their recipients; returns the transcript link key.
    async fn start_lead_worker(&self) -> anyhow::Result<Vec<u8>> {
        let link_key = deliver::link_key(&self.store).await?;
        let backoff = match self.options.lead_retry {
            Some(first) => Backoff { first },
            None => Backoff::default(),
        };
        let worker = deliver::Worker::new(
            self.store.clone(),
            self.config.clone(),
            link_key.clone(),
            backoff,
            self.wakers.clone(),
            self.clock().clone(),
        )
        .map_err(|err| anyhow::anyhow!("starting lead delivery: {err}"))?;
        self.workers.spawn(worker.run(self.token.child_token()));
        Ok(link_key)
    }

    /// Starts the task that sends notices (call backs, alerts, summaries) by email, WhatsApp
    /// and webhook.
    fn start_notice_worker(&self) -> anyhow::Result<()> {
        let backoff = match self.options.lead_retry {
            Some(first) => Backoff { first },
            None => Backoff::default(),
        };
        let worker = crate::notify::deliver::Worker::new(
            self.store.clone(),
            self.config.clone(),
            backoff,
            self.wakers.clone(),
            self.clock().clone(),
        )
        .map_err(|err| anyhow::anyhow!("starting notice delivery: {err}"))?;
        self.workers.spawn(worker.run(self.token.child_token()));
        Ok(())
    }

    /// Makes any morning summary due now (before the daemon says it is running, so a restart
    /// finds the day's row), then starts the task that makes each at its time.
    async fn start_summaries(&self) {
        let summaries = crate::notify::summary::Summaries {
            store: self.store.clone(),
            config: self.config.clone(),
            wakers: self.wakers.clone(),
            clock: self.clock().clone(),
        };
        summaries.check().await;
        self.workers.spawn(summaries.run(self.token.child_token()));
    }

    fn wake(&self, after: After) {
        self.wakers.after(&after);
        for conversation in after.think {
            self.assistant.think(conversation);
        }
    }

    async fn handle(&self, event: Event) {
        match event {
            Event::CallMissed(call) => self.missed_call(call).await,
            Event::Housekeeping => {
                match flow::expire_fragments(&self.store, self.config.clone(), self.clock().now())
                    .await
                {
                    Ok(after) => self.wake(after),
                    Err(err) => warn!(error = %err, "housekeeping"),
                }
                match flow::quiet_conversations(
                    &self.store,
                    self.config.clone(),
                    self.clock().now(),
                )
                .await
                {
                    Ok(after) => self.wake(after),
                    Err(err) => warn!(error = %err, "housekeeping: quiet conversations"),
                }
                if let Err(err) =
                    flow::forget_old(&self.store, self.config.clone(), self.clock().now()).await
                {
                    warn!(error = %err, "housekeeping: retention");
                }
                // Replies left waiting by a store error are tried again.
                if let Err(err) = self.assistant.resume().await {
                    warn!(error = %err, "housekeeping: waiting replies");
                }
            }
            Event::SmsReceived(sms) => {
                let span = info_span!("sms_in", modem = %sms.modem);
                let (modem, storage, pdu) =
                    (sms.modem.clone(), sms.storage.clone(), sms.pdu.clone());
                match flow::sms_received(&self.store, self.config.clone(), sms)
                    .instrument(span)
                    .await
                {
                    Ok(after) => {
                        self.wake(after);
                        self.delete_stored(&modem, storage, pdu);
                    }
                    // Not stored: left on the SIM, read again at the next start or drain.
                    Err(err) => {
                        warn!(modem = %modem, error = %err, "could not store an SMS that came in")
                    }
                }
            }
            Event::StatusReport(report) => {
                let (modem, storage, pdu) = (
                    report.modem.clone(),
                    report.storage.clone(),
                    report.pdu.clone(),
                );
                match flow::status_report(&self.store, report).await {
                    Ok(()) => self.delete_stored(&modem, storage, pdu),
                    Err(err) => {
                        warn!(modem = %modem, error = %err, "could not store a status report")
                    }
                }
            }
        }
    }

    /// A modem's news: its inputs are events like any other; set up or lost, it is logged and its
    /// outbox told.
    async fn modem_event(&self, event: ModemEvent) {
        match event {
            ModemEvent::Input(event) => {
                if let Event::CallMissed(call) = &event {
                    info!(call_id = %call.key, modem = ?call.modem, "call to the SIM missed");
                }
                self.handle(event).await;
            }
            ModemEvent::Ready { modem, info } => {
                info!(modem = %modem, model = %info.model, operator = %info.operator, "modem serving");
                // Conversations stay with their SIM, whichever modem id or port it has now. Two
                // modems that report one ICCID (a firmware that prints a fixed one, or the same
                // virtual SIM twice) say nothing about where a SIM is: nothing moves then.
                let shared = self.modems.values().any(|other| {
                    other.id() != &modem
                        && matches!(other.state(), ModemState::Ready { info: theirs } if theirs.iccid == info.iccid)
                });
                if shared {
                    warn!(modem = %modem, iccid = %info.iccid, "another modem reports the same SIM (ICCID): conversations stay on their modem ids");
                }
                let now = self.clock().now_ms();
                let id = modem.clone();
                let iccid = if shared {
                    String::new()
                } else {
                    info.iccid.clone()
                };
                match self
                    .store
                    .run(move |tx| tx.sim_seen(&id, &iccid, now))
                    .await
                {
                    Ok((0, 0)) => {}
                    Ok((conversations, texts)) => info!(
                        modem = %modem,
                        iccid = %info.iccid,
                        conversations,
                        texts,
                        "conversations follow their SIM to this modem"
                    ),
                    Err(err) => warn!(error = %err, "recording which SIM the modem holds"),
                }
                self.wakers.all_outboxes();
            }
            ModemEvent::Lost { modem, reason } => {
                warn!(modem = %modem, reason, "modem lost; reconnecting");
            }
        }
    }

    async fn missed_call(&self, call: MissedCall) {
        let span = info_span!("call", call_id = %call.key);
        let usable = self
            .modems
            .values()
            .filter(|handle| handle.state().is_usable())
            .map(|handle| handle.id().clone())
            .collect();
        match flow::missed_call(&self.store, self.config.clone(), call, usable)
            .instrument(span.clone())
            .await
        {
            Ok(after) => {
                // The call's row is committed: benches/sip_load.rs times CANCEL → here.
                debug!(parent: &span, "missed call recorded");
                self.wake(after)
            }
            Err(err) => warn!(error = %err, "could not record a missed call"),
        }
    }

    /// Deletes a message from the modem once it is safely stored (field note 2: never before).
    fn delete_stored(&self, modem: &ModemId, storage: Option<Storage>, pdu: String) {
        let (Some(storage), Some(handle)) = (storage, self.modems.get(modem).cloned()) else {
            return;
        };
        self.workers.spawn(async move {
            if let Err(err) = handle.delete(storage.clone(), pdu).await {
                warn!(memory = storage.memory, index = storage.index, error = %err, "could not delete a stored SMS; it will be read again and ignored as a duplicate");
            }
        });
    }
}
