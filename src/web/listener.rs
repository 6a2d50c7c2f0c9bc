//! The dashboard's listener: at most [`MAX_CONNECTIONS`] connections open at once, with
//! [`OWN_CONNECTIONS`] more kept for the box's own address, each closed after [`IDLE`] without a
//! byte either way, or once it has sent [`MAX_UNANSWERED`] bytes with no answer (hyper would
//! buffer about 400 KiB of headers). Whatever arrives at the port then holds a bounded amount of
//! memory (256 connections of at most 64 KiB each), and a flood from the LAN cannot keep the
//! owner on the box from connecting.

use std::future::Future;
use std::io;
use std::net::SocketAddr;
use std::pin::Pin;
use std::sync::Arc;
use std::task::{Context, Poll};
use std::time::Duration;

use tokio::io::{AsyncRead, AsyncWrite, ReadBuf};
use tokio::net::{TcpListener, TcpStream};
use tokio::sync::{OwnedSemaphorePermit, Semaphore};
use tracing::{debug, warn};

/// Connections open at once from anywhere: a household of phones and laptops uses a handful,
/// and a browser up to six each.
pub const MAX_CONNECTIONS: usize = 256;
/// Connections kept for the box's own address (the owner over SSH, or a proxy on the box), used
/// when the others are all taken.
pub const OWN_CONNECTIONS: usize = 8;
/// A connection with nothing read or written for this long is closed (a browser opens another).
pub const IDLE: Duration = Duration::from_secs(60);
/// Bytes a connection may send before it gets an answer: a request's headers and its body
/// (at most 16 KiB, `MAX_BODY`) fit many times over.
pub const MAX_UNANSWERED: usize = 64 * 1024;

/// Accepts connections within the caps; one over them is closed at once.
pub struct Limited {
    listener: TcpListener,
    anyone: Arc<Semaphore>,
    own: Arc<Semaphore>,
}

impl Limited {
    pub fn new(listener: TcpListener) -> Limited {
        Limited {
            listener,
            anyone: Arc::new(Semaphore::new(MAX_CONNECTIONS)),
            own: Arc::new(Semaphore::new(OWN_CONNECTIONS)),
        }
    }
}

/// The address a request came from (the connection's peer), for `ConnectInfo`.
#[derive(Debug, Clone, Copy)]
pub struct Peer(pub SocketAddr);

impl axum::extract::connect_info::Connected<axum::serve::IncomingStream<'_, Limited>> for Peer {
    fn connect_info(stream: axum::serve::IncomingStream<'_, Limited>) -> Self {
        Peer(*stream.remote_addr())
    }
}

impl axum::serve::Listener for Limited {
    type Io = Connection;
    type Addr = SocketAddr;

    async fn accept(&mut self) -> (Connection, SocketAddr) {
        loop {
            let (stream, peer) = match self.listener.accept().await {
                Ok(accepted) => accepted,
                Err(err) => {
                    // Out of file descriptors and the like: wait a moment instead of spinning.
                    warn!(error = %err, "dashboard accept");
                    tokio::time::sleep(Duration::from_millis(100)).await;
                    continue;
                }
            };
            let permit = self.anyone.clone().try_acquire_owned().or_else(|full| {
                if super::auth::is_this_box(peer.ip()) {
                    self.own.clone().try_acquire_owned()
                } else {
                    Err(full)
                }
            });
            match permit {
                Ok(permit) => return (Connection::new(stream, permit), peer),
                Err(_) => {
                    debug!(%peer, limit = MAX_CONNECTIONS, "dashboard connections all taken; closing the new one");
                }
            }
        }
    }

    fn local_addr(&self) -> io::Result<SocketAddr> {
        self.listener.local_addr()
    }
}

/// One accepted connection: its place in the cap, and its idle deadline.
pub struct Connection {
    stream: TcpStream,
    _permit: OwnedSemaphorePermit,
    idle: Pin<Box<tokio::time::Sleep>>,
    /// Bytes read since the last write.
    unanswered: usize,
}

impl Connection {
    fn new(stream: TcpStream, permit: OwnedSemaphorePermit) -> Connection {
        Connection {
            stream,
            _permit: permit,
            idle: Box::pin(tokio::time::sleep(IDLE)),
            unanswered: 0,
        }
    }

    fn busy(&mut self) {
        self.idle.as_mut().reset(tokio::time::Instant::now() + IDLE);
    }

    /// An error once the idle deadline has passed (registering the wake-up otherwise).
    fn idle_over(&mut self, cx: &mut Context<'_>) -> Option<io::Error> {
        self.idle.as_mut().poll(cx).is_ready().then(|| {
            io::Error::new(
                io::ErrorKind::TimedOut,
                format!("nothing for {} s", IDLE.as_secs()),
            )
        })
    }
}

impl AsyncRead for Connection {
    fn poll_read(
        self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        buf: &mut ReadBuf<'_>,
    ) -> Poll<io::Result<()>> {
        let this = self.get_mut();
        let before = buf.filled().len();
        match Pin::new(&mut this.stream).poll_read(cx, buf) {
            Poll::Ready(result) => {
                let read = buf.filled().len().saturating_sub(before);
                if read > 0 {
                    this.busy();
                    this.unanswered = this.unanswered.saturating_add(read);
                    if this.unanswered > MAX_UNANSWERED {
                        return Poll::Ready(Err(io::Error::new(
                            io::ErrorKind::InvalidData,
                            format!("{MAX_UNANSWERED} bytes sent without an answer"),
                        )));
                    }
                }
                Poll::Ready(result)
            }
            Poll::Pending => match this.idle_over(cx) {
                Some(err) => Poll::Ready(Err(err)),
                None => Poll::Pending,
            },
        }
    }
}

impl AsyncWrite for Connection {
    fn poll_write(
        self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        data: &[u8],
    ) -> Poll<io::Result<usize>> {
        let this = self.get_mut();
        match Pin::new(&mut this.stream).poll_write(cx, data) {
            Poll::Ready(Ok(written)) => {
                this.busy();
                this.unanswered = 0;
                Poll::Ready(Ok(written))
            }
            Poll::Pending => match this.idle_over(cx) {
                Some(err) => Poll::Ready(Err(err)),
                None => Poll::Pending,
            },
            other => other,
        }
    }

    fn poll_flush(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        Pin::new(&mut self.get_mut().stream).poll_flush(cx)
    }

    fn poll_shutdown(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        Pin::new(&mut self.get_mut().stream).poll_shutdown(cx)
    }

    fn poll_write_vectored(
        self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        buffers: &[io::IoSlice<'_>],
    ) -> Poll<io::Result<usize>> {
        let this = self.get_mut();
        match Pin::new(&mut this.stream).poll_write_vectored(cx, buffers) {
            Poll::Ready(Ok(written)) => {
                this.busy();
                this.unanswered = 0;
                Poll::Ready(Ok(written))
            }
            other => other,
        }
    }

    fn is_write_vectored(&self) -> bool {
        self.stream.is_write_vectored()
    }
}
