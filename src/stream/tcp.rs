//! What a `SecureStream` over TCP adds: addresses, timeouts, TCP_NODELAY,
//! and the full-duplex `split`.

use std::io;
use std::net::{SocketAddr, TcpStream};
use std::time::Duration;

use super::{SecureStream, Tls};
use crate::error::{Error, Result};
use crate::split::{ReadHalf, WriteHalf};

impl SecureStream<TcpStream> {
    /// Splits the stream into a [`ReadHalf`] and a [`WriteHalf`] that two
    /// threads can use at once: one blocked in `read` while the other
    /// writes. Runs the handshake first if it has not run. Each half keeps
    /// its timeout; records the read side must send (alerts, key update
    /// replies) go out through the shared socket.
    pub fn split(mut self) -> Result<(ReadHalf, WriteHalf)> {
        self.open()?;
        let SecureStream {
            io,
            tls,
            read_timeout,
            write_timeout,
            allow_half_open,
            close_sent,
            permit,
            ..
        } = self;
        let Tls::Open(conn) = tls else {
            return Err(Error::handshake("the connection is not open"));
        };
        crate::split::split(
            *conn,
            io,
            read_timeout,
            write_timeout,
            allow_half_open,
            close_sent,
            permit,
        )
    }

    /// The local address of the socket.
    pub fn local_addr(&self) -> io::Result<SocketAddr> {
        self.io.sock.local_addr()
    }

    /// The peer's address.
    pub fn peer_addr(&self) -> io::Result<SocketAddr> {
        self.io.sock.peer_addr()
    }

    /// Bounds each read (`SO_RCVTIMEO`); `None` waits forever. A read that
    /// times out fails with kind `TimedOut` and the stream stays usable.
    /// `Some(Duration::ZERO)` is an error, as in `std`.
    pub fn set_read_timeout(&mut self, timeout: Option<Duration>) -> Result<()> {
        self.io
            .sock
            .set_read_timeout(timeout)
            .map_err(|e| Error::bad_timeout("read", timeout, e))?;
        self.read_timeout = timeout;
        Ok(())
    }

    /// Bounds each write (`SO_SNDTIMEO`); `None` waits forever.
    pub fn set_write_timeout(&mut self, timeout: Option<Duration>) -> Result<()> {
        self.io
            .sock
            .set_write_timeout(timeout)
            .map_err(|e| Error::bad_timeout("write", timeout, e))?;
        self.write_timeout = timeout;
        Ok(())
    }

    /// The read timeout.
    pub fn read_timeout(&self) -> Option<Duration> {
        self.read_timeout
    }

    /// The write timeout.
    pub fn write_timeout(&self) -> Option<Duration> {
        self.write_timeout
    }

    /// Sets `TCP_NODELAY` (on by default, as in Dart).
    pub fn set_nodelay(&self, nodelay: bool) -> io::Result<()> {
        self.io.sock.set_nodelay(nodelay)
    }

    /// Whether `TCP_NODELAY` is set.
    pub fn nodelay(&self) -> io::Result<bool> {
        self.io.sock.nodelay()
    }
}
