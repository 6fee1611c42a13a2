//! The TLS to an `https://` proxy as a [`Layer`] of the transport: once the
//! proxy has opened the tunnel (HTTP CONNECT over its TLS), the stream to
//! the target runs inside it, its records sealed in the proxy's records.
//!
//! The proxy's connection sits behind its own lock, taken only around
//! in-memory work (never across a socket call), so the two halves of a
//! split stream share it: the reader opens with it, the writer seals.

use std::io::{self, Write};
use std::net::TcpStream;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use super::{SecureStream, Tls};
use crate::error::{Error, Result};
use crate::net::transport::{Layer, Transport};
use crate::net::tunnel::Bounded;
use crate::sync::lock;
use crate::tls::engine::{Engine, Plain};

/// The proxy's TLS connection, and the proxy as errors name it.
struct ProxyTls {
    state: Mutex<State>,
    proxy: String,
}

struct State {
    conn: Engine,
    /// Bytes read from the socket that the connection has not taken yet:
    /// it takes a bounded amount at once.
    raw: Vec<u8>,
    /// How much of `raw` rustls has taken.
    at: usize,
    /// The socket ended (after `raw`).
    ended: bool,
}

impl ProxyTls {
    fn failed(&self, what: &str, source: io::Error) -> Error {
        Error::Proxy {
            proxy: self.proxy.clone(),
            reason: format!("the TLS connection to the proxy failed ({what})"),
            status: None,
            source: Some(source),
        }
    }

    /// Hands rustls what it takes at once of the raw bytes (then the end
    /// of the socket) and decrypts it; called only once its plaintext is
    /// all read, so its plaintext buffer always has room. Returns whether
    /// it took anything.
    fn pump(&self, state: &mut State) -> Result<bool> {
        let fed = if state.at < state.raw.len() {
            let raw = &state.raw[state.at..];
            let n = state.conn.feed(raw).map_err(|e| {
                self.failed(
                    "reading its records",
                    io::Error::new(io::ErrorKind::InvalidData, e),
                )
            })?;
            state.at += n;
            true
        } else if state.ended {
            state.ended = false;
            state.conn.end();
            true
        } else {
            return Ok(false);
        };
        if let Err(e) = state.conn.process_new_packets() {
            // Its alert is queued; the next send carries it.
            return Err(self.failed(
                "decrypting its records",
                io::Error::new(io::ErrorKind::InvalidData, e),
            ));
        }
        Ok(fed)
    }
}

impl Layer for ProxyTls {
    fn open(&self, raw: Option<&[u8]>) -> Result<()> {
        let mut state = lock(&self.state);
        match raw {
            Some(raw) => {
                if state.at == state.raw.len() {
                    state.raw.clear();
                    state.at = 0;
                }
                state.raw.extend_from_slice(raw);
            }
            None => state.ended = true,
        }
        Ok(())
    }

    fn take(&self, out: &mut [u8]) -> Result<Option<usize>> {
        let mut state = lock(&self.state);
        loop {
            match state.conn.read(out) {
                Ok(Plain::Data(n)) => return Ok(Some(n)),
                Ok(Plain::Closed) => return Ok(Some(0)),
                Ok(Plain::Empty) => {}
                // The proxy closed without its close_notify: the tunnel
                // ended; the target's TLS tells a clean end from a cut one.
                Err(Error::Truncated) => return Ok(Some(0)),
                Err(e) => {
                    return Err(self.failed(
                        "reading the tunnel",
                        io::Error::new(io::ErrorKind::InvalidData, e),
                    ));
                }
            }
            if !self.pump(&mut state)? {
                return Ok(None);
            }
        }
    }

    fn seal(&self, bytes: &[u8]) -> io::Result<usize> {
        lock(&self.state).conn.write(bytes)
    }

    fn wants_write(&self) -> bool {
        lock(&self.state).conn.wants_write()
    }

    fn send(&self, out: &mut dyn Write) -> io::Result<usize> {
        lock(&self.state).conn.write_tls(out)
    }

    fn close(&self) {
        lock(&self.state).conn.send_close_notify();
    }
}

impl Bounded for SecureStream<TcpStream> {
    fn bound(&mut self, read: bool, left: Duration) -> io::Result<()> {
        if read {
            self.set_read_timeout(Some(left))?;
        } else {
            self.set_write_timeout(Some(left))?;
        }
        Ok(())
    }
}

impl SecureStream<TcpStream> {
    /// This stream to an `https://` proxy, once the tunnel is open, as the
    /// transport of the stream to the target: the socket, with this
    /// connection as its layer. `proxy` names the proxy in errors.
    pub(crate) fn into_layer(self, proxy: String) -> Result<Transport<TcpStream>> {
        let Tls::Open(conn) = self.tls else {
            return Err(Error::handshake("the connection to the proxy is not open"));
        };
        if !conn.is_client() {
            return Err(Error::handshake(
                "the connection to the proxy is not a client",
            ));
        }
        let mut io = self.io;
        let _ = io.sock.set_read_timeout(None);
        let _ = io.sock.set_write_timeout(None);
        io.wrap(Arc::new(ProxyTls {
            state: Mutex::new(State {
                conn: *conn,
                raw: Vec::new(),
                at: 0,
                ended: false,
            }),
            proxy,
        }))?;
        Ok(io)
    }
}
