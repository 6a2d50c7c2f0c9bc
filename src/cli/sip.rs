//! The technician's SIP commands: `textback sip status` reads what the daemon last recorded about
//! each account; `textback sip register` registers one account once from the command line and
//! can print every message exchanged.

use std::net::{IpAddr, SocketAddr};
use std::path::Path;
use std::process::ExitCode;
use std::time::{Duration, Instant};

use anyhow::Context;
use chrono::{Local, TimeZone};
use rsip::SipMessage;

use bytes::BytesMut;
use tokio::io::{AsyncReadExt, AsyncWriteExt};

use crate::config::{Config, SipTransport};
use crate::domain::RegistrationState;
use crate::sip::framing::{Frame, StreamFramer};
use crate::sip::register::{RegAction, RegState, Registration, SipDigest};
use crate::sip::service::{account_config, resolve, route_ip};
use crate::sip::transport::CONNECT_TIMEOUT;
use crate::sip::wire::{self, Incoming};

/// How long `sip register` waits for the registrar before it gives up.
const REGISTER_TIMEOUT: Duration = Duration::from_secs(40);
/// How long it waits for the un-REGISTER's answer.
const UNREGISTER_TIMEOUT: Duration = Duration::from_secs(5);

fn time(ms: i64) -> String {
    Local
        .timestamp_millis_opt(ms)
        .single()
        .map(|t| t.format("%Y-%m-%d %H:%M:%S").to_string())
        .unwrap_or_else(|| ms.to_string())
}

fn daemon_alive(pid: i64) -> bool {
    let Ok(pid) = i32::try_from(pid) else {
        return false;
    };
    // Signal 0 checks that the process exists without touching it.
    nix::sys::signal::kill(nix::unistd::Pid::from_raw(pid), None).is_ok()
}

/// `textback sip status`.
pub fn status(config: &Config) -> anyhow::Result<ExitCode> {
    if config.sip_accounts.is_empty() {
        println!("no [[sip]] accounts in the config");
        return Ok(ExitCode::SUCCESS);
    }
    let database = &config.storage.database;
    let rows = if database.exists() {
        let connection = crate::store::open_read_only(database)?;
        crate::store::Tx::reader(&connection)
            .sip_accounts()
            .unwrap_or_default()
    } else {
        Vec::new()
    };
    let mut running = false;
    for account in &config.sip_accounts {
        match rows.iter().find(|row| row.name == account.name) {
            None => println!(
                "{}: never started (registrar {}): start the daemon with `systemctl start textback`",
                account.name, account.registrar
            ),
            Some(row) => {
                let alive =
                    daemon_alive(row.daemon_pid) && row.state != RegistrationState::Unregistered;
                running |= alive;
                let mut line = format!("{}: {}", row.name, row.state);
                if let Some(until) = row.registered_until_ms {
                    line.push_str(&format!(" until {}", time(until)));
                }
                if let Some(next) = row.next_refresh_ms {
                    line.push_str(&format!(", next refresh {}", time(next)));
                }
                if let Some(retry) = row.retry_at_ms {
                    line.push_str(&format!(", next try {}", time(retry)));
                }
                if let Some(response) = &row.last_response {
                    line.push_str(&format!(", last answer {response}"));
                }
                println!("{line}");
                println!("  listening on {}", row.local_address);
                if let Some(error) = &row.last_error {
                    println!("  last error: {error}");
                }
                println!("  recorded {}", time(row.updated_ms));
            }
        }
    }
    if !running {
        println!(
            "the daemon is not running, so nothing is registered now: `systemctl start textback` (or `textback run`)"
        );
        return Ok(ExitCode::from(1));
    }
    Ok(ExitCode::SUCCESS)
}

/// `textback sip register --account NAME [--trace]`: 0 when the registrar accepted us (the
/// binding is then removed again), 1 otherwise, 2 for an unknown account.
pub fn register(config: &Config, name: &str, trace: bool) -> anyhow::Result<ExitCode> {
    let Some(account) = config.sip_accounts.iter().find(|a| a.name == name) else {
        let names: Vec<&str> = config
            .sip_accounts
            .iter()
            .map(|a| a.name.as_str())
            .collect();
        eprintln!(
            "error: no [[sip]] account is named {name:?}; the accounts are: {}",
            if names.is_empty() {
                "none".to_string()
            } else {
                names.join(", ")
            }
        );
        return Ok(ExitCode::from(2));
    };
    let runtime = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .context("starting the async runtime")?;
    runtime.block_on(register_once(account, trace))
}

async fn register_once(
    account: &crate::config::SipAccount,
    trace: bool,
) -> anyhow::Result<ExitCode> {
    let next_hop_name = account
        .outbound_proxy
        .as_deref()
        .unwrap_or(&account.registrar);
    let peers = resolve(next_hop_name)
        .await
        .map_err(|err| anyhow::anyhow!("{err}: check sip.registrar (and sip.outbound_proxy)"))?;
    let Some(peer) = peers.first().copied() else {
        anyhow::bail!("{next_hop_name} has no address: check sip.registrar");
    };
    let listen_ip = account
        .listen
        .iter()
        .copied()
        .find(|ip| ip.is_ipv4() == peer.is_ipv4())
        .unwrap_or(if peer.is_ipv4() {
            IpAddr::from([0, 0, 0, 0])
        } else {
            IpAddr::from([0u16; 8])
        });
    let (mut link, bound) = Link::open(account, listen_ip, peer).await?;
    let local_ip = if bound.ip().is_unspecified() {
        route_ip(peer).await.unwrap_or(bound.ip())
    } else {
        bound.ip()
    };
    let local = SocketAddr::new(local_ip, bound.port());
    println!("registering {} at {} from {local}", account.name, peer);
    let mut registration = Registration::new(
        account_config(account),
        local,
        Box::new(SipDigest),
        rand::random(),
    )
    .map_err(|err| anyhow::anyhow!("{err}: check the [[sip]] account {:?}", account.name))?;
    let mut actions = registration.start(Instant::now());
    let deadline = tokio::time::Instant::now() + REGISTER_TIMEOUT;
    let mut unregister_by: Option<tokio::time::Instant> = None;
    let mut outcome: Option<Result<String, String>> = None;
    loop {
        for action in actions.drain(..) {
            match action {
                RegAction::Send { request, .. } => {
                    let bytes = request.to_string();
                    if trace {
                        println!("--> {peer}\n{}", bytes.trim_end());
                    }
                    link.send(bytes.as_bytes()).await?;
                }
                RegAction::SendKeepAlive { .. } => {}
                RegAction::StatusChanged(status) => match status.state {
                    RegState::Registered { until } if outcome.is_none() => {
                        let seconds = until.saturating_duration_since(Instant::now()).as_secs();
                        outcome = Some(Ok(format!("registered for {seconds} s")));
                    }
                    RegState::Failed { error, .. } if outcome.is_none() => {
                        outcome = Some(Err(error));
                    }
                    _ => {}
                },
            }
        }
        if registration.is_stopped() {
            break;
        }
        if outcome.is_some() && unregister_by.is_none() {
            // Done: remove the binding this command made (RFC 3261 §10.2.2).
            unregister_by = Some(tokio::time::Instant::now() + UNREGISTER_TIMEOUT);
            actions = registration.shutdown(Instant::now());
            continue;
        }
        let limit = unregister_by.unwrap_or(deadline);
        let wake = registration
            .next_deadline()
            .map(tokio::time::Instant::from_std)
            .map_or(limit, |at| at.min(limit));
        tokio::select! {
            received = link.receive() => {
                let (bytes, from) = received?;
                if trace {
                    println!("<-- {from}\n{}", String::from_utf8_lossy(&bytes).trim_end());
                }
                if let Ok(Incoming::Message(message)) = wire::parse(&bytes)
                    && let SipMessage::Response(response) = *message
                    && registration.matches_response(&response)
                {
                    actions = registration.handle_response(&response, Instant::now());
                }
            }
            _ = tokio::time::sleep_until(wake) => {
                if tokio::time::Instant::now() >= limit {
                    break;
                }
                actions = registration.poll(Instant::now());
            }
        }
    }
    match outcome {
        Some(Ok(what)) => {
            println!("ok: {} {what}; the binding was removed again", account.name);
            Ok(ExitCode::SUCCESS)
        }
        Some(Err(error)) => {
            eprintln!("error: {}: {error}", account.name);
            Ok(ExitCode::from(1))
        }
        None => {
            eprintln!(
                "error: {}: no answer from {peer} in {} s: check sip.registrar, the port, and that a firewall lets {} through",
                account.name,
                REGISTER_TIMEOUT.as_secs(),
                link.name()
            );
            Ok(ExitCode::from(1))
        }
    }
}

/// How `sip register` talks to the registrar: the account's transport.
enum Link {
    Udp {
        socket: tokio::net::UdpSocket,
        peer: SocketAddr,
    },
    Tcp {
        stream: tokio::net::TcpStream,
        peer: SocketAddr,
        framer: StreamFramer,
        buffer: BytesMut,
    },
}

impl Link {
    /// Opens the account's transport to `peer`; returns it and the local address it uses.
    async fn open(
        account: &crate::config::SipAccount,
        listen_ip: IpAddr,
        peer: SocketAddr,
    ) -> anyhow::Result<(Link, SocketAddr)> {
        match account.transport {
            SipTransport::Udp => {
                // The configured port when it is free (the daemon is not running), else any free
                // port: the registration is removed again at the end, so the daemon's binding
                // is not disturbed.
                let socket = match tokio::net::UdpSocket::bind(SocketAddr::new(
                    listen_ip,
                    account.local_port,
                ))
                .await
                {
                    Ok(socket) => socket,
                    Err(_) => {
                        println!(
                            "port {} is in use (is the daemon running?); registering from another port",
                            account.local_port
                        );
                        tokio::net::UdpSocket::bind(SocketAddr::new(listen_ip, 0))
                            .await
                            .with_context(|| format!("binding a UDP socket on {listen_ip}"))?
                    }
                };
                let bound = socket.local_addr()?;
                Ok((Link::Udp { socket, peer }, bound))
            }
            SipTransport::Tcp => {
                // From any port: the registrar answers on this connection, and the binding is
                // removed again at the end.
                let stream = tokio::time::timeout(
                    CONNECT_TIMEOUT,
                    tokio::net::TcpStream::connect(peer),
                )
                .await
                .map_err(|_| {
                    anyhow::anyhow!(
                        "no TCP connection to {peer} within {} s: check sip.registrar and that a firewall lets TCP through",
                        CONNECT_TIMEOUT.as_secs()
                    )
                })?
                .with_context(|| {
                    format!("connecting to {peer} over TCP (sip.transport = \"tcp\"): check sip.registrar and its port, or use \"udp\"")
                })?;
                let bound = stream.local_addr()?;
                Ok((
                    Link::Tcp {
                        stream,
                        peer,
                        framer: StreamFramer::new(),
                        buffer: BytesMut::with_capacity(16 * 1024),
                    },
                    bound,
                ))
            }
        }
    }

    fn name(&self) -> &'static str {
        match self {
            Link::Udp { .. } => "UDP",
            Link::Tcp { .. } => "TCP",
        }
    }

    async fn send(&mut self, bytes: &[u8]) -> anyhow::Result<()> {
        match self {
            Link::Udp { socket, peer } => {
                socket.send_to(bytes, *peer).await?;
            }
            Link::Tcp { stream, .. } => stream.write_all(bytes).await?,
        }
        Ok(())
    }

    /// The next whole message and who sent it. Cancel-safe: a partial TCP message stays in the
    /// framer.
    async fn receive(&mut self) -> anyhow::Result<(Vec<u8>, SocketAddr)> {
        match self {
            Link::Udp { socket, .. } => {
                let mut buffer = vec![0u8; wire::MAX_MESSAGE_BYTES + 1];
                let (len, from) = socket.recv_from(&mut buffer).await?;
                buffer.truncate(len);
                Ok((buffer, from))
            }
            Link::Tcp {
                stream,
                peer,
                framer,
                buffer,
            } => loop {
                match framer.next() {
                    Ok(Some(Frame::Message(bytes))) => return Ok((bytes, *peer)),
                    Ok(Some(Frame::KeepAlive { .. })) => continue,
                    Ok(None) => {}
                    Err(err) => anyhow::bail!("the registrar's TCP stream is unreadable: {err}"),
                }
                buffer.clear();
                if stream.read_buf(buffer).await? == 0 {
                    anyhow::bail!("the registrar at {peer} closed the TCP connection");
                }
                framer.push(buffer);
            },
        }
    }
}

/// For `doctor`: one line per account from the state the daemon recorded.
pub fn doctor_lines(config: &Config, database: &Path) -> Vec<(String, bool, String)> {
    let rows = if database.exists() {
        crate::store::open_read_only(database)
            .ok()
            .and_then(|c| crate::store::Tx::reader(&c).sip_accounts().ok())
            .unwrap_or_default()
    } else {
        Vec::new()
    };
    config
        .sip_accounts
        .iter()
        .map(|account| {
            let name = format!("sip {}", account.name);
            match rows.iter().find(|row| row.name == account.name) {
                None => (
                    name,
                    false,
                    format!(
                        "no state recorded: the daemon has not run with this account yet; `textback sip register --account {} --trace` tries it now",
                        account.name
                    ),
                ),
                Some(row)
                    if matches!(
                        row.state,
                        RegistrationState::Registered | RegistrationState::NotRegistering
                    ) =>
                (
                    name,
                    true,
                    format!("{} ({})", row.state, row.local_address),
                ),
                Some(row) => (
                    name,
                    false,
                    format!(
                        "{}{}: run `textback sip register --account {} --trace` to see the exchange",
                        row.state,
                        row.last_error
                            .as_ref()
                            .map(|e| format!(" ({e})"))
                            .unwrap_or_default(),
                        account.name
                    ),
                ),
            }
        })
        .collect()
}
