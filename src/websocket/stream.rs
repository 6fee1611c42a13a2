//! `WsStream`: the transport of a client WebSocket, plain TCP for `ws://`
//! or a [`SecureStream`] for `wss://`; and the two traits every transport
//! under a WebSocket (whole or split) is driven through, so the choice of
//! plain or TLS is made once, here.

use std::io::{self, Read, Write};
use std::net::{Shutdown, TcpStream};
use std::time::Duration;

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
}

/// The reading end of a WebSocket's transport.
pub(crate) trait WsRead: Read + Send {
    fn set_read_timeout(&mut self, t: Option<Duration>) -> Result<()>;
}

/// The writing end of a WebSocket's transport.
pub(crate) trait WsWrite: Write + Send {
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
pub(crate) type SplitEnds = (Box<dyn WsRead>, Box<dyn WsWrite>);

impl WsStream {
    /// The transport, whichever it is.
    fn io(&mut self) -> &mut dyn WsDuplex {
        match self {
            WsStream::Plain(s) => s,
            WsStream::Tls(s) => &mut **s,
        }
    }

    pub(crate) fn set_read_timeout(&mut self, t: Option<Duration>) -> Result<()> {
        self.io().set_read_timeout(t)
    }

    pub(crate) fn set_write_timeout(&mut self, t: Option<Duration>) -> Result<()> {
        self.io().set_write_timeout(t)
    }

    /// Ends the transport: TLS `close_notify`, then the socket.
    pub(crate) fn shutdown(&mut self) {
        self.io().end();
    }

    /// A reading and a writing end for two threads.
    pub(crate) fn split(self) -> Result<SplitEnds> {
        Ok(match self {
            WsStream::Plain(s) => {
                let r = s
                    .try_clone()
                    .map_err(|e| Error::io("cloning the socket for split failed", e))?;
                (Box::new(r), Box::new(s))
            }
            WsStream::Tls(s) => {
                let (r, w) = s.split()?;
                (Box::new(r), Box::new(w))
            }
        })
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
