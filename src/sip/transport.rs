//! The SIP sockets of one local port: a UDP socket and a TCP listener per listen address, each
//! read by its own task that hands whole messages to the endpoint's core task
//! ([`super::service`]) over one bounded channel. The core sends through [`Sockets`], and opens
//! TCP connections of its own with [`connect`] (an account that registers over TCP).
//!
//! Memory is bounded: datagrams and stream messages are at most 64 KiB (`wire`, `framing`), the
//! channel to the core holds [`INBOUND_QUEUE`] messages (more are dropped and counted, as the
//! socket itself would drop them), at most [`MAX_CONNECTIONS`] TCP connections are open, each
//! with [`CONNECTION_QUEUE`] messages waiting to be written.
//!
//! And the trunk can always connect: a TCP connection from an address that may not call (the
//! allow list, [`Admit`]) is closed as it is accepted, one address holds at most
//! [`MAX_CONNECTIONS_PER_ADDRESS`], a message must be whole within [`MESSAGE_DEADLINE`] of its
//! first byte, and a connection with no whole message or keep-alive either way for
//! [`IDLE_TIMEOUT`] is closed (bytes of an unfinished message do not count).

use std::collections::HashMap;
use std::io;
use std::net::{IpAddr, SocketAddr};
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use bytes::BytesMut;
use socket2::{Domain, Protocol, Socket, Type};
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::{TcpListener, TcpStream, UdpSocket};
use tokio::sync::{Semaphore, mpsc};
use tokio_util::sync::CancellationToken;
use tokio_util::task::TaskTracker;
use tracing::{debug, warn};

use super::framing::{Frame, StreamFramer};
use super::wire::MAX_MESSAGE_BYTES;

/// Messages waiting for the core. At a few hundred calls a second with retransmissions this is
/// a second of traffic; a flood beyond it is dropped at the door rather than queued.
pub const INBOUND_QUEUE: usize = 4096;
/// Open TCP connections: a trunk or PBX uses one or a few; the cap stops a connection flood.
pub const MAX_CONNECTIONS: usize = 256;
/// Open TCP connections from one address: a trunk or PBX uses one or a few (one per
/// registration at most), so one address can never take [`MAX_CONNECTIONS`].
pub const MAX_CONNECTIONS_PER_ADDRESS: usize = 16;
/// How long a message may take to arrive whole, from its first byte: a real one takes
/// milliseconds; bytes trickled to hold a connection open are cut off.
pub const MESSAGE_DEADLINE: Duration = Duration::from_secs(10);
/// Messages waiting to be written on one TCP connection.
pub const CONNECTION_QUEUE: usize = 64;
/// A TCP connection with no whole message or keep-alive read or written for this long is closed
/// (RFC 5626 keep-alives come every 30 s or so, so a live trunk connection never reaches it).
/// Connections textback opened itself stay open: the registration they carry decides.
pub const IDLE_TIMEOUT: Duration = Duration::from_secs(300);
/// How long opening a TCP connection to a registrar may take.
pub const CONNECT_TIMEOUT: Duration = Duration::from_secs(10);

/// What the socket tasks hand to the core.
#[derive(Debug)]
pub enum Inbound {
    /// A datagram (UDP) or a message cut from a stream (TCP).
    Message {
        bytes: Vec<u8>,
        from: SocketAddr,
        /// Set for TCP: where to write the answer.
        connection: Option<mpsc::Sender<Vec<u8>>>,
    },
    /// A TCP connection closed.
    Closed {
        from: SocketAddr,
        /// The connection's writer (as in its messages), to tell it from a newer one to the
        /// same peer.
        connection: mpsc::Sender<Vec<u8>>,
    },
    /// A connection opened with [`connect`] could not be made.
    Unreachable {
        peer: SocketAddr,
        /// The writer [`connect`] returned.
        connection: mpsc::Sender<Vec<u8>>,
        /// Why, for the account's status.
        error: String,
    },
}

/// Whether a source address may open a TCP connection (the endpoint's allow list: the
/// registrars, proxies and `sip.allow`), asked as each connection is accepted.
pub type Admit = Arc<dyn Fn(IpAddr) -> bool + Send + Sync>;

/// The sending side of one port's sockets.
#[derive(Debug, Clone)]
pub struct Sockets {
    udp: Vec<Arc<UdpSocket>>,
    /// Messages the core could not take because its queue was full.
    pub dropped: Arc<AtomicU64>,
    /// The bound addresses, for logs and for the Via/Contact of registrations.
    pub local: Vec<SocketAddr>,
}

impl Sockets {
    /// Sends a datagram from the socket of `to`'s family (an IPv4 peer through an IPv6-only
    /// socket is not possible, so a port bound only on `::` cannot reach IPv4 peers).
    pub async fn send_udp(&self, bytes: &[u8], to: SocketAddr) -> io::Result<()> {
        let socket = self
            .udp
            .iter()
            .find(|socket| {
                socket
                    .local_addr()
                    .is_ok_and(|local| local.is_ipv4() == to.is_ipv4())
            })
            .ok_or_else(|| {
                io::Error::new(
                    io::ErrorKind::AddrNotAvailable,
                    format!("no socket of {to}'s address family is listening"),
                )
            })?;
        socket.send_to(bytes, to).await.map(|_| ())
    }

    /// The local address of the family of `peer`, with its port.
    pub fn local_for(&self, peer: SocketAddr) -> Option<SocketAddr> {
        self.local
            .iter()
            .copied()
            .find(|local| local.is_ipv4() == peer.is_ipv4())
    }
}

/// Binds UDP and TCP on each address at `port` (0: any free port, the same for all addresses
/// when possible) and starts one reader task per socket. An IPv6 address that cannot be bound
/// because the box has no IPv6 is skipped with a warning; any other failure is an error that
/// names the address.
pub fn bind(
    addresses: &[IpAddr],
    port: u16,
    inbound: mpsc::Sender<Inbound>,
    admit: Admit,
    token: &CancellationToken,
    tracker: &TaskTracker,
) -> Result<Sockets, BindError> {
    let mut udp = Vec::new();
    let mut local = Vec::new();
    let mut port = port;
    let dropped = Arc::new(AtomicU64::new(0));
    let connections = Limits {
        all: Arc::new(Semaphore::new(MAX_CONNECTIONS)),
        by_address: Arc::new(Mutex::new(HashMap::new())),
        admit,
    };
    for address in addresses {
        let wanted = SocketAddr::new(*address, port);
        let (udp_socket, tcp_listener) = match bind_pair(wanted) {
            Ok(pair) => pair,
            Err(err) if address.is_ipv6() && address.is_unspecified() && no_ipv6(&err) => {
                warn!(address = %wanted, error = %err, "no IPv6 on this box: SIP listens on IPv4 only");
                continue;
            }
            Err(source) => {
                return Err(BindError {
                    address: wanted,
                    source,
                });
            }
        };
        let bound = udp_socket.local_addr().map_err(|source| BindError {
            address: wanted,
            source,
        })?;
        if port == 0 {
            // The first free port is used on the other addresses too, so one port serves all.
            port = bound.port();
        }
        local.push(bound);
        let udp_socket = Arc::new(udp_socket);
        udp.push(udp_socket.clone());
        tracker.spawn(read_udp(
            udp_socket,
            inbound.clone(),
            dropped.clone(),
            token.child_token(),
        ));
        tracker.spawn(accept_tcp(
            tcp_listener,
            inbound.clone(),
            dropped.clone(),
            connections.clone(),
            token.child_token(),
            tracker.clone(),
        ));
    }
    if udp.is_empty() {
        return Err(BindError {
            address: SocketAddr::new(
                addresses.first().copied().unwrap_or(IpAddr::from([0; 4])),
                port,
            ),
            source: io::Error::new(io::ErrorKind::AddrNotAvailable, "no address to listen on"),
        });
    }
    Ok(Sockets {
        udp,
        dropped,
        local,
    })
}

/// A socket could not be bound.
#[derive(Debug, thiserror::Error)]
#[error(
    "cannot listen for SIP on {address}: {source}. Another SIP program (or textback) may be using the port: set sip.local_port, or sip.listen to this box's own address"
)]
pub struct BindError {
    pub address: SocketAddr,
    #[source]
    pub source: io::Error,
}

fn no_ipv6(err: &io::Error) -> bool {
    matches!(
        err.raw_os_error(),
        Some(libc::EAFNOSUPPORT) | Some(libc::EADDRNOTAVAIL)
    )
}

/// UDP and TCP on one address; IPv6 sockets are IPv6-only so `0.0.0.0` and `::` can share a
/// port. With port 0 the kernel picks UDP's port, and another program may hold that number for
/// TCP: then another free port is tried (a few times) rather than failing the start.
fn bind_pair(address: SocketAddr) -> io::Result<(UdpSocket, TcpListener)> {
    const TRIES: usize = 16;
    let mut tries = if address.port() == 0 { TRIES } else { 1 };
    loop {
        tries -= 1;
        match bind_pair_once(address) {
            Err(err) if err.kind() == io::ErrorKind::AddrInUse && tries > 0 => continue,
            result => return result,
        }
    }
}

fn bind_pair_once(address: SocketAddr) -> io::Result<(UdpSocket, TcpListener)> {
    let domain = Domain::for_address(address);
    let udp = Socket::new(domain, Type::DGRAM, Some(Protocol::UDP))?;
    if address.is_ipv6() {
        udp.set_only_v6(true)?;
    }
    udp.set_nonblocking(true)?;
    udp.bind(&address.into())?;
    let bound = udp.local_addr()?.as_socket().unwrap_or(address);
    let tcp = Socket::new(domain, Type::STREAM, Some(Protocol::TCP))?;
    if address.is_ipv6() {
        tcp.set_only_v6(true)?;
    }
    tcp.set_reuse_address(true)?;
    // So that connections textback opens (REGISTER over TCP) can come from this port too: the
    // registrar then sees the address of our Contact and sends calls back on the same
    // connection. Linux lets only sockets of the same user share the port; UDP, bound first
    // without it, still finds another program on the port.
    tcp.set_reuse_port(true)?;
    tcp.set_nonblocking(true)?;
    // TCP on the port UDP got, so one port number serves both transports.
    tcp.bind(&bound.into())?;
    tcp.listen(128)?;
    let udp = UdpSocket::from_std(udp.into())?;
    let tcp = TcpListener::from_std(tcp.into())?;
    Ok((udp, tcp))
}

fn offer(inbound: &mpsc::Sender<Inbound>, dropped: &AtomicU64, message: Inbound) {
    if inbound.try_send(message).is_err() {
        // A flood: the core is behind. Dropping here is what a full socket buffer does anyway;
        // the core logs the count.
        dropped.fetch_add(1, Ordering::Relaxed);
    }
}

async fn read_udp(
    socket: Arc<UdpSocket>,
    inbound: mpsc::Sender<Inbound>,
    dropped: Arc<AtomicU64>,
    token: CancellationToken,
) {
    // One byte more than the largest message, so an oversized datagram is seen as such.
    let mut buffer = vec![0u8; MAX_MESSAGE_BYTES + 1];
    loop {
        tokio::select! {
            _ = token.cancelled() => return,
            received = socket.recv_from(&mut buffer) => match received {
                Ok((len, from)) => offer(
                    &inbound,
                    &dropped,
                    Inbound::Message { bytes: buffer[..len].to_vec(), from, connection: None },
                ),
                // ICMP port unreachable from an earlier send shows up here on Linux: not fatal.
                Err(err) => debug!(error = %err, "SIP UDP receive"),
            },
        }
    }
}

/// The caps on accepted TCP connections of one port.
#[derive(Clone)]
struct Limits {
    all: Arc<Semaphore>,
    /// Connections open per source address.
    by_address: Arc<Mutex<HashMap<IpAddr, usize>>>,
    admit: Admit,
}

/// One accepted connection's place under the caps, given back when it closes.
struct Place {
    _permit: tokio::sync::OwnedSemaphorePermit,
    by_address: Arc<Mutex<HashMap<IpAddr, usize>>>,
    address: IpAddr,
}

impl Drop for Place {
    fn drop(&mut self) {
        let mut counts = self
            .by_address
            .lock()
            .unwrap_or_else(|poisoned| poisoned.into_inner());
        if let Some(count) = counts.get_mut(&self.address) {
            *count = count.saturating_sub(1);
            if *count == 0 {
                counts.remove(&self.address);
            }
        }
    }
}

/// Why an accepted connection was closed at once.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
enum Refused {
    /// Its address may not call.
    NotAllowed,
    /// Its address has [`MAX_CONNECTIONS_PER_ADDRESS`] open.
    AddressFull,
    /// [`MAX_CONNECTIONS`] are open.
    Full,
}

impl Limits {
    fn admit(&self, peer: SocketAddr) -> Result<Place, Refused> {
        let address = match peer.ip() {
            IpAddr::V6(v6) => v6.to_ipv4_mapped().map(IpAddr::V4).unwrap_or(peer.ip()),
            v4 => v4,
        };
        if !(self.admit)(address) {
            return Err(Refused::NotAllowed);
        }
        let mut counts = self
            .by_address
            .lock()
            .unwrap_or_else(|poisoned| poisoned.into_inner());
        let count = counts.entry(address).or_insert(0);
        if *count >= MAX_CONNECTIONS_PER_ADDRESS {
            return Err(Refused::AddressFull);
        }
        let permit = self
            .all
            .clone()
            .try_acquire_owned()
            .map_err(|_| Refused::Full)?;
        *count += 1;
        Ok(Place {
            _permit: permit,
            by_address: self.by_address.clone(),
            address,
        })
    }
}

async fn accept_tcp(
    listener: TcpListener,
    inbound: mpsc::Sender<Inbound>,
    dropped: Arc<AtomicU64>,
    limits: Limits,
    token: CancellationToken,
    tracker: TaskTracker,
) {
    // Refusals are logged once per address and kind until a connection is taken again.
    let mut refused_logged: std::collections::HashSet<(IpAddr, Refused)> =
        std::collections::HashSet::new();
    loop {
        let accepted = tokio::select! {
            _ = token.cancelled() => return,
            accepted = listener.accept() => accepted,
        };
        let (stream, from) = match accepted {
            Ok(pair) => pair,
            Err(err) => {
                // Out of file descriptors and the like: wait a moment instead of spinning.
                warn!(error = %err, "SIP TCP accept");
                tokio::time::sleep(Duration::from_millis(100)).await;
                continue;
            }
        };
        let place = match limits.admit(from) {
            Ok(place) => place,
            Err(refused) => {
                // Closed at once (dropping the stream). Logged once per address and kind, in a
                // bounded table: a flood of refused connections must not grow it.
                if refused_logged.len() >= 1024 {
                    refused_logged.clear();
                }
                if refused_logged.insert((from.ip(), refused)) {
                    match refused {
                        Refused::NotAllowed => {
                            debug!(peer = %from, "SIP TCP connection from an address that may not call (not the registrar, the proxy or sip.allow); closed")
                        }
                        Refused::AddressFull => warn!(
                            peer = %from,
                            limit = MAX_CONNECTIONS_PER_ADDRESS,
                            "too many SIP TCP connections from one address; closing the new ones"
                        ),
                        Refused::Full => warn!(
                            peer = %from,
                            limit = MAX_CONNECTIONS,
                            "too many SIP TCP connections; closing the new one"
                        ),
                    }
                }
                continue;
            }
        };
        refused_logged.clear();
        let (writer, outgoing) = mpsc::channel::<Vec<u8>>(CONNECTION_QUEUE);
        let link = Link {
            from,
            writer,
            outgoing,
            idle: Some(IDLE_TIMEOUT),
        };
        let intake = Intake {
            inbound: inbound.clone(),
            dropped: dropped.clone(),
        };
        tracker.spawn(connection(
            stream,
            link,
            intake,
            token.child_token(),
            Some(place),
        ));
    }
}

/// Opens a TCP connection to `peer` for the core's own requests (REGISTER over TCP) and returns
/// its writer at once: what is queued on it is written once connected. What the peer sends on
/// it reaches the core like messages of accepted connections (from `peer`, with this writer).
/// It comes from `local` when that can be bound (our SIP address and port, beside the
/// listener), else from any port; either way it stays open until `token` is cancelled or the
/// peer closes it ([`Inbound::Closed`]). When it cannot be made, the core gets
/// [`Inbound::Unreachable`].
pub fn connect(
    peer: SocketAddr,
    local: Option<SocketAddr>,
    inbound: mpsc::Sender<Inbound>,
    dropped: Arc<AtomicU64>,
    token: CancellationToken,
    tracker: &TaskTracker,
) -> mpsc::Sender<Vec<u8>> {
    let (writer, outgoing) = mpsc::channel::<Vec<u8>>(CONNECTION_QUEUE);
    let returned = writer.clone();
    tracker.spawn(async move {
        let opened = tokio::select! {
            _ = token.cancelled() => return,
            opened = tokio::time::timeout(CONNECT_TIMEOUT, open(peer, local)) => opened,
        };
        let error = match opened {
            Ok(Ok(stream)) => {
                debug!(peer = %peer, local = ?stream.local_addr().ok(), "SIP TCP connection opened");
                let link = Link {
                    from: peer,
                    writer,
                    outgoing,
                    idle: None,
                };
                let intake = Intake { inbound, dropped };
                connection(stream, link, intake, token, None).await;
                return;
            }
            Ok(Err(err)) => err.to_string(),
            Err(_) => format!("no answer within {} s", CONNECT_TIMEOUT.as_secs()),
        };
        let _ = inbound
            .send(Inbound::Unreachable {
                peer,
                connection: writer,
                error,
            })
            .await;
    });
    returned
}

/// Connects to `peer` from `local` if possible, else from any port.
async fn open(peer: SocketAddr, local: Option<SocketAddr>) -> io::Result<TcpStream> {
    if let Some(local) = local.filter(|local| local.is_ipv4() == peer.is_ipv4()) {
        match from_port(local) {
            Ok(socket) => match socket.connect(peer).await {
                Ok(stream) => return Ok(stream),
                // The same four-tuple is still in TIME-WAIT (a quick reconnect): any port will do.
                Err(err) if err.kind() == io::ErrorKind::AddrNotAvailable => {
                    debug!(peer = %peer, local = %local, error = %err, "SIP TCP connection from our port refused; using another port");
                }
                Err(err) => return Err(err),
            },
            Err(err) => {
                debug!(local = %local, error = %err, "cannot open a SIP TCP connection from our port; using another port")
            }
        }
    }
    TcpStream::connect(peer).await
}

/// A TCP socket bound to `local` beside our listener (see `bind_pair`).
fn from_port(local: SocketAddr) -> io::Result<tokio::net::TcpSocket> {
    let socket = if local.is_ipv4() {
        tokio::net::TcpSocket::new_v4()?
    } else {
        tokio::net::TcpSocket::new_v6()?
    };
    socket.set_reuseaddr(true)?;
    socket.set_reuseport(true)?;
    socket.bind(local)?;
    Ok(socket)
}

/// The ends of one TCP connection, as its task uses them.
struct Link {
    from: SocketAddr,
    /// Handed to the core with each message: where answers are queued.
    writer: mpsc::Sender<Vec<u8>>,
    outgoing: mpsc::Receiver<Vec<u8>>,
    /// Closed after this long without traffic (accepted connections only).
    idle: Option<Duration>,
}

/// Where a connection's messages go.
struct Intake {
    inbound: mpsc::Sender<Inbound>,
    dropped: Arc<AtomicU64>,
}

async fn connection(
    mut stream: TcpStream,
    link: Link,
    intake: Intake,
    token: CancellationToken,
    _place: Option<Place>,
) {
    let Link {
        from,
        writer,
        mut outgoing,
        idle,
    } = link;
    let Intake { inbound, dropped } = intake;
    let mut framer = StreamFramer::new();
    let mut buffer = BytesMut::with_capacity(16 * 1024);
    // The last whole message or keep-alive, either way: only these keep the connection open.
    let mut active = tokio::time::Instant::now();
    // When the first byte of the message being received came, while one is unfinished.
    let mut message_started: Option<tokio::time::Instant> = None;
    loop {
        buffer.clear();
        let idle_until = idle.map(|limit| active + limit);
        let cut_off_at = message_started.map(|started| started + MESSAGE_DEADLINE);
        let deadline = match (idle_until, cut_off_at) {
            (Some(a), Some(b)) => Some(a.min(b)),
            (a, b) => a.or(b),
        };
        let wait = async {
            match deadline {
                Some(at) => tokio::time::sleep_until(at).await,
                None => std::future::pending().await,
            }
        };
        tokio::select! {
            // What we have to send goes first: at shutdown the final responses to ringing calls
            // are queued just before the token is cancelled.
            biased;
            Some(bytes) = outgoing.recv() => {
                if let Err(err) = stream.write_all(&bytes).await {
                    debug!(peer = %from, error = %err, "SIP TCP write");
                    break;
                }
                active = tokio::time::Instant::now();
            }
            _ = token.cancelled() => {
                // Anything queued meanwhile still goes out, within a bound.
                let drain = async {
                    while let Ok(bytes) = outgoing.try_recv() {
                        if stream.write_all(&bytes).await.is_err() {
                            break;
                        }
                    }
                };
                let _ = tokio::time::timeout(std::time::Duration::from_secs(1), drain).await;
                break;
            }
            _ = wait => {
                if message_started.is_some_and(|started| started.elapsed() >= MESSAGE_DEADLINE) {
                    warn!(peer = %from, seconds = MESSAGE_DEADLINE.as_secs(), bytes = framer.buffered(), "SIP TCP message not finished in time; closing the connection");
                } else {
                    debug!(peer = %from, "SIP TCP connection idle; closing");
                }
                break;
            }
            read = stream.read_buf(&mut buffer) => match read {
                Ok(0) => break,
                Ok(_) => {
                    framer.push(&buffer);
                    let mut broken = false;
                    let mut finished = false;
                    loop {
                        match framer.next() {
                            Ok(Some(Frame::Message(bytes))) => {
                                finished = true;
                                active = tokio::time::Instant::now();
                                offer(
                                    &inbound,
                                    &dropped,
                                    Inbound::Message { bytes, from, connection: Some(writer.clone()) },
                                );
                            }
                            Ok(Some(Frame::KeepAlive { pong_owed })) => {
                                finished = true;
                                active = tokio::time::Instant::now();
                                // RFC 5626 §3.5.1: a double-CRLF ping is answered with one CRLF.
                                if pong_owed && stream.write_all(b"\r\n").await.is_err() {
                                    broken = true;
                                    break;
                                }
                            }
                            Ok(None) => break,
                            Err(err) => {
                                warn!(peer = %from, error = %err, "SIP TCP stream unreadable; closing it");
                                broken = true;
                                break;
                            }
                        }
                    }
                    if broken {
                        break;
                    }
                    // Bytes held are an unfinished message: its deadline runs from its first
                    // byte (a new message if one just finished), and more bytes of it do not
                    // move it.
                    message_started = if framer.buffered() == 0 {
                        None
                    } else if finished || message_started.is_none() {
                        Some(tokio::time::Instant::now())
                    } else {
                        message_started
                    };
                }
                Err(err) => {
                    debug!(peer = %from, error = %err, "SIP TCP read");
                    break;
                }
            },
        }
    }
    // Waits for room: a lost Closed would leave the core writing into a dead connection.
    let _ = inbound
        .send(Inbound::Closed {
            from,
            connection: writer,
        })
        .await;
}

/// TCP connections the core can answer on, by peer address.
#[derive(Debug, Default)]
pub struct Connections {
    by_peer: HashMap<SocketAddr, mpsc::Sender<Vec<u8>>>,
}

impl Connections {
    pub fn opened(&mut self, peer: SocketAddr, writer: mpsc::Sender<Vec<u8>>) {
        if self.by_peer.len() < MAX_CONNECTIONS || self.by_peer.contains_key(&peer) {
            self.by_peer.insert(peer, writer);
        }
    }

    /// Forgets the connection from `peer` if it is `connection` (a newer one stays).
    pub fn closed(&mut self, peer: SocketAddr, connection: &mpsc::Sender<Vec<u8>>) {
        if self
            .by_peer
            .get(&peer)
            .is_some_and(|writer| writer.same_channel(connection))
        {
            self.by_peer.remove(&peer);
        }
    }

    /// Queues `bytes` on the connection from `peer`; false when there is none (send over UDP).
    pub fn send(&mut self, peer: SocketAddr, bytes: Vec<u8>) -> bool {
        match self.by_peer.get(&peer) {
            Some(writer) => {
                if writer.try_send(bytes).is_err() {
                    warn!(peer = %peer, "SIP TCP connection not keeping up; message dropped");
                }
                true
            }
            None => false,
        }
    }
}
