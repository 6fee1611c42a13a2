//! What a `SecureStream` over TCP adds: addresses, TCP_NODELAY, and the
//! full-duplex `split`. Like every fallible call of the crate, these return
//! [`securenet::Result`](crate::Result).

use std::net::{SocketAddr, TcpStream};

use super::{SecureStream, Tls};
use crate::error::{Error, Result};
use crate::stream::split::{ReadHalf, WriteHalf};

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
            watch,
            ..
        } = self;
        let Tls::Open(conn) = tls else {
            return Err(Error::handshake("the connection is not open"));
        };
        // The halves do not keep the idle mark: a shutdown treats them as
        // busy.
        if let Some(w) = &watch {
            w.set_idle(false);
        }
        crate::stream::split::split(
            *conn,
            io,
            read_timeout,
            write_timeout,
            allow_half_open,
            close_sent,
            (permit, watch),
        )
    }

    /// The local address of the socket (`getsockname(2)`).
    pub fn local_addr(&self) -> Result<SocketAddr> {
        self.io
            .sock
            .local_addr()
            .map_err(|e| Error::io("getsockname failed", e))
    }

    /// The peer's address (`getpeername(2)`); on a server with
    /// [`BindOptions::proxy_protocol`](crate::BindOptions::proxy_protocol),
    /// once the handshake has run, the client's address from the PROXY
    /// header (the socket's own for a `LOCAL` header).
    pub fn peer_addr(&self) -> Result<SocketAddr> {
        if let Some(source) = self.proxied_source() {
            return Ok(source);
        }
        self.io
            .sock
            .peer_addr()
            .map_err(|e| Error::io("getpeername failed", e))
    }

    /// Sets `TCP_NODELAY` (on by default, as in Dart).
    pub fn set_nodelay(&self, nodelay: bool) -> Result<()> {
        self.io
            .sock
            .set_nodelay(nodelay)
            .map_err(|e| Error::io("setting TCP_NODELAY failed", e))
    }

    /// Whether `TCP_NODELAY` is set.
    pub fn nodelay(&self) -> Result<bool> {
        self.io
            .sock
            .nodelay()
            .map_err(|e| Error::io("reading TCP_NODELAY failed", e))
    }
}
