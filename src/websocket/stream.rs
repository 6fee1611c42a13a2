//! `WsStream`: the transport of a client WebSocket, plain TCP for `ws://`
//! or a [`SecureStream`] for `wss://`.

use std::io::{self, Read, Write};
use std::net::{Shutdown, TcpStream};
use std::time::Duration;

use crate::error::{Error, Result};
use crate::stream::SecureStream;

/// The transport under a client [`WebSocket`](crate::WebSocket).
#[derive(Debug)]
pub enum WsStream {
    /// `ws://`: plain TCP.
    Plain(TcpStream),
    /// `wss://`: TLS.
    Tls(Box<SecureStream>),
}

impl WsStream {
    pub(crate) fn set_read_timeout(&mut self, t: Option<Duration>) -> Result<()> {
        match self {
            WsStream::Plain(s) => s
                .set_read_timeout(t)
                .map_err(|e| Error::bad_timeout("read", t, e)),
            WsStream::Tls(s) => s.set_read_timeout(t),
        }
    }

    pub(crate) fn set_write_timeout(&mut self, t: Option<Duration>) -> Result<()> {
        match self {
            WsStream::Plain(s) => s
                .set_write_timeout(t)
                .map_err(|e| Error::bad_timeout("write", t, e)),
            WsStream::Tls(s) => s.set_write_timeout(t),
        }
    }

    /// Ends the transport: TLS `close_notify`, then the socket.
    pub(crate) fn shutdown(&mut self) {
        match self {
            WsStream::Plain(s) => {
                let _ = s.shutdown(Shutdown::Both);
            }
            WsStream::Tls(s) => {
                let _ = s.close();
            }
        }
    }

    /// The TLS stream, for `wss://`: peer certificate, cipher, ALPN.
    pub fn tls(&self) -> Option<&SecureStream> {
        match self {
            WsStream::Tls(s) => Some(s),
            WsStream::Plain(_) => None,
        }
    }
}

impl Read for WsStream {
    fn read(&mut self, buf: &mut [u8]) -> io::Result<usize> {
        match self {
            WsStream::Plain(s) => s.read(buf),
            WsStream::Tls(s) => s.read(buf),
        }
    }
}

impl Write for WsStream {
    fn write(&mut self, buf: &[u8]) -> io::Result<usize> {
        match self {
            WsStream::Plain(s) => s.write(buf),
            WsStream::Tls(s) => s.write(buf),
        }
    }

    fn flush(&mut self) -> io::Result<()> {
        match self {
            WsStream::Plain(s) => s.flush(),
            WsStream::Tls(s) => s.flush(),
        }
    }
}
