//! `WsStream`: the transport of a client WebSocket, plain TCP for `ws://`
//! or a [`SecureStream`] for `wss://`; and the two traits every transport
//! under a WebSocket (whole or split) is driven through, so the choice of
//! plain or TLS is made once, here.

use std::io::{self, Read, Write};
use std::net::{Shutdown, SocketAddr, TcpStream};
use std::time::{Duration, Instant};

use crate::error::{Error, Result};
use crate::stream::SecureStream;
use crate::stream::split::{ReadHalf, WriteHalf};

/// The transport under a client [`WebSocket`](crate::WebSocket).
///
/// More transports may be added: match with a `_` arm.
#[derive(Debug)]
#[non_exhaustive]
pub enum WsStream {
    /// `ws://`: plain TCP.
    Plain(TcpStream),
    /// `wss://`: TLS.
    Tls(Box<SecureStream>),
    /// `ws://` through an `https://` proxy: the TLS is the proxy's (its
    /// certificate, its cipher), with the plain WebSocket inside the tunnel.
    ProxyTls(Box<SecureStream>),
}

/// The reading end of a WebSocket's transport.
pub trait WsRead: Read + Send {
    fn set_read_timeout(&mut self, t: Option<Duration>) -> Result<()>;
}

/// The writing end of a WebSocket's transport.
pub trait WsWrite: Write + Send {
    fn set_write_timeout(&mut self, t: Option<Duration>) -> Result<()>;
    /// Ends the transport: TLS `close_notify`, then the socket.
    fn end(&mut self);
}

/// A transport that both reads and writes.
pub(crate) trait WsDuplex: WsRead + WsWrite {}
impl<T: WsRead + WsWrite> WsDuplex for T {}

impl WsRead for TcpStream {
    fn set_read_timeout(&mut self, t: Option<Duration>) -> Result<()> {
        TcpStream::set_read_timeout(self, t).map_err(|e| Error::bad_timeout("read", t, e))
    }
}

impl WsWrite for TcpStream {
    fn set_write_timeout(&mut self, t: Option<Duration>) -> Result<()> {
        TcpStream::set_write_timeout(self, t).map_err(|e| Error::bad_timeout("write", t, e))
    }

    fn end(&mut self) {
        let _ = self.shutdown(Shutdown::Both);
    }
}

impl WsRead for SecureStream {
    fn set_read_timeout(&mut self, t: Option<Duration>) -> Result<()> {
        SecureStream::set_read_timeout(self, t)
    }
}

impl WsWrite for SecureStream {
    fn set_write_timeout(&mut self, t: Option<Duration>) -> Result<()> {
        SecureStream::set_write_timeout(self, t)
    }

    fn end(&mut self) {
        let _ = self.close();
    }
}

impl WsRead for ReadHalf {
    fn set_read_timeout(&mut self, t: Option<Duration>) -> Result<()> {
        ReadHalf::set_read_timeout(self, t)
    }
}

impl WsWrite for WriteHalf {
    fn set_write_timeout(&mut self, t: Option<Duration>) -> Result<()> {
        WriteHalf::set_write_timeout(self, t)
    }

    fn end(&mut self) {
        let _ = self.shutdown_write();
    }
}

/// The two ends of a split transport.
pub type SplitEnds = (Box<dyn WsRead>, Box<dyn WsWrite>);

impl WsStream {
    /// The transport, whichever it is.
    fn io(&mut self) -> &mut dyn WsDuplex {
        match self {
            WsStream::Plain(s) => s,
            WsStream::Tls(s) | WsStream::ProxyTls(s) => &mut **s,
        }
    }

    /// The TLS stream, for `wss://`: peer certificate, cipher, ALPN.
    /// `None` for `ws://`, also through an `https://` proxy.
    pub fn tls(&self) -> Option<&SecureStream> {
        match self {
            WsStream::Tls(s) => Some(s),
            WsStream::Plain(_) | WsStream::ProxyTls(_) => None,
        }
    }
}

impl Read for WsStream {
    fn read(&mut self, buf: &mut [u8]) -> io::Result<usize> {
        self.io().read(buf)
    }
}

impl Write for WsStream {
    fn write(&mut self, buf: &[u8]) -> io::Result<usize> {
        self.io().write(buf)
    }

    fn flush(&mut self) -> io::Result<()> {
        self.io().flush()
    }
}

pub(crate) mod sealed {
    use std::net::SocketAddr;
    use std::time::Duration;

    use super::SplitEnds;
    use crate::error::Result;

    /// What securenet needs of a [`WsTransport`](super::WsTransport); not
    /// nameable outside the crate, so the trait stays sealed.
    pub trait Sealed: Sized {
        fn set_read(&mut self, t: Option<Duration>) -> Result<()>;
        fn set_write(&mut self, t: Option<Duration>) -> Result<()>;
        /// The read and write timeouts set now.
        fn timeouts(&self) -> (Option<Duration>, Option<Duration>);
        fn end_transport(&mut self);
        /// Ends the writing side only (TLS `close_notify`, then TCP FIN);
        /// reading goes on.
        fn close_write(&mut self);
        /// Reads and drops what the peer still sends, from the socket
        /// itself (nothing is decrypted: after `close_notify` rustls must
        /// not be fed a peer's bytes, a bad record would trip its
        /// `debug_assert!` on a second alert), until it closes, `limit`
        /// bytes, or `deadline`.
        fn drain(&mut self, limit: usize, deadline: std::time::Instant);
        fn into_ends(self) -> Result<SplitEnds>;
        fn peer(&self) -> Option<SocketAddr>;
        /// A server WebSocket took the transport: when its listener shuts
        /// down, the WebSocket sends its 1001 close before the transport
        /// closes.
        fn websocket_closes_on_shutdown(&self) {}
    }
}

/// A transport a [`WebSocket`](crate::WebSocket) runs over with whole-call
/// deadlines, [`split`](crate::WebSocket::split) halves and the peer's
/// address: [`TcpStream`] (`ws://`), [`SecureStream`] (`wss://`) and
/// [`WsStream`]. Sealed: it cannot be implemented outside securenet (use
/// [`WebSocket::accept`](crate::WebSocket::accept) or
/// [`WebSocketOptions::connect_over`](crate::WebSocketOptions::connect_over)
/// over other streams).
pub trait WsTransport: Read + Write + Send + sealed::Sealed {}

impl WsTransport for TcpStream {}
impl WsTransport for SecureStream {}
impl WsTransport for WsStream {}

impl sealed::Sealed for TcpStream {
    fn set_read(&mut self, t: Option<Duration>) -> Result<()> {
        WsRead::set_read_timeout(self, t)
    }

    fn set_write(&mut self, t: Option<Duration>) -> Result<()> {
        WsWrite::set_write_timeout(self, t)
    }

    fn timeouts(&self) -> (Option<Duration>, Option<Duration>) {
        (
            self.read_timeout().ok().flatten(),
            self.write_timeout().ok().flatten(),
        )
    }

    fn end_transport(&mut self) {
        self.end();
    }

    fn close_write(&mut self) {
        let _ = self.shutdown(Shutdown::Write);
    }

    fn drain(&mut self, limit: usize, deadline: Instant) {
        drain_socket(self, limit, deadline);
    }

    fn into_ends(self) -> Result<SplitEnds> {
        let r = self
            .try_clone()
            .map_err(|e| Error::io("cloning the socket for split failed", e))?;
        Ok((Box::new(r), Box::new(self)))
    }

    fn peer(&self) -> Option<SocketAddr> {
        self.peer_addr().ok()
    }
}

impl sealed::Sealed for SecureStream {
    fn set_read(&mut self, t: Option<Duration>) -> Result<()> {
        SecureStream::set_read_timeout(self, t)
    }

    fn set_write(&mut self, t: Option<Duration>) -> Result<()> {
        SecureStream::set_write_timeout(self, t)
    }

    fn timeouts(&self) -> (Option<Duration>, Option<Duration>) {
        (self.read_timeout(), self.write_timeout())
    }

    fn end_transport(&mut self) {
        self.end();
    }

    fn close_write(&mut self) {
        let _ = self.shutdown_write();
    }

    fn drain(&mut self, limit: usize, deadline: Instant) {
        drain_socket(self.get_mut(), limit, deadline);
    }

    fn into_ends(self) -> Result<SplitEnds> {
        let (r, w) = self.split()?;
        Ok((Box::new(r), Box::new(w)))
    }

    fn peer(&self) -> Option<SocketAddr> {
        self.peer_addr().ok()
    }

    fn websocket_closes_on_shutdown(&self) {
        self.owner_closes_on_shutdown();
    }
}

impl sealed::Sealed for WsStream {
    fn set_read(&mut self, t: Option<Duration>) -> Result<()> {
        self.io().set_read_timeout(t)
    }

    fn set_write(&mut self, t: Option<Duration>) -> Result<()> {
        self.io().set_write_timeout(t)
    }

    fn timeouts(&self) -> (Option<Duration>, Option<Duration>) {
        match self {
            WsStream::Plain(s) => s.timeouts(),
            WsStream::Tls(s) | WsStream::ProxyTls(s) => s.timeouts(),
        }
    }

    fn end_transport(&mut self) {
        self.io().end();
    }

    fn close_write(&mut self) {
        match self {
            WsStream::Plain(s) => s.close_write(),
            WsStream::Tls(s) | WsStream::ProxyTls(s) => s.close_write(),
        }
    }

    fn drain(&mut self, limit: usize, deadline: Instant) {
        match self {
            WsStream::Plain(s) => s.drain(limit, deadline),
            WsStream::Tls(s) | WsStream::ProxyTls(s) => s.drain(limit, deadline),
        }
    }

    fn into_ends(self) -> Result<SplitEnds> {
        match self {
            WsStream::Plain(s) => s.into_ends(),
            WsStream::Tls(s) | WsStream::ProxyTls(s) => (*s).into_ends(),
        }
    }

    fn peer(&self) -> Option<SocketAddr> {
        match self {
            WsStream::Plain(s) => s.peer(),
            WsStream::Tls(s) | WsStream::ProxyTls(s) => s.peer(),
        }
    }
}

/// Reads and drops up to `limit` bytes from `socket` until the peer
/// closes or `deadline` passes (each read bounded by what is left).
fn drain_socket(socket: &mut TcpStream, limit: usize, deadline: Instant) {
    let mut chunk = [0u8; 4096];
    let mut dropped = 0usize;
    while dropped < limit {
        let left = deadline.saturating_duration_since(Instant::now());
        if left.is_zero() || socket.set_read_timeout(Some(left)).is_err() {
            return;
        }
        match socket.read(&mut chunk) {
            Ok(0) | Err(_) => return,
            Ok(n) => dropped = dropped.saturating_add(n),
        }
    }
}
