//! Full duplex: `SecureStream::split` into a `ReadHalf` and a `WriteHalf`
//! that two threads use at once.
//!
//! rustls has no full-duplex mode, and an `Arc<Mutex<StreamOwned>>`
//! deadlocks: a reader blocked in `recv` holds the lock the writer needs. Here
//! no lock is ever held across a blocking socket call:
//!
//! * `tls` guards the rustls connection. The reader reads the socket without
//!   it, then takes it to decrypt; the writer takes it to encrypt.
//! * `outbox` guards the write socket and the encrypted bytes not yet sent.
//!   Records must reach the wire in the order they were encrypted, so whoever
//!   encrypts moves the records into the outbox before letting go of `tls`
//!   (locks are always taken in the order `tls`, then `outbox`), then sends
//!   holding only `outbox`.
//! * Records the read side must send (alerts, KeyUpdate replies) go out only
//!   if the outbox is free (`try_lock`); otherwise the writer, which looks for
//!   more records every time it has sent, takes them.

use std::io::{self, Read, Write};
use std::net::{Shutdown, SocketAddr, TcpStream};
use std::sync::{Arc, Mutex, MutexGuard, TryLockError};
use std::time::Duration;

use rustls::Connection;

use crate::error::{Error, Phase, Result};
use crate::serve::Permit;
use crate::transport::{Transport, io_error};
use crate::verify::map_tls_error;

struct Tls {
    conn: Connection,
    allow_half_open: bool,
    close_sent: bool,
}

struct Outbox {
    sock: TcpStream,
    bytes: Vec<u8>,
    sent: usize,
    write_timeout: Option<Duration>,
}

impl Outbox {
    /// Sends what is queued. On a timeout the rest stays queued, in order.
    fn send(&mut self) -> Result<()> {
        while self.sent < self.bytes.len() {
            match self.sock.write(&self.bytes[self.sent..]) {
                Ok(0) => {
                    return Err(Error::io(
                        "write failed",
                        io::Error::from(io::ErrorKind::WriteZero),
                    ));
                }
                Ok(n) => self.sent += n,
                Err(e) if e.kind() == io::ErrorKind::Interrupted => {}
                Err(e) => return Err(io_error(e, Phase::Write, self.write_timeout)),
            }
        }
        self.bytes.clear();
        self.sent = 0;
        Ok(())
    }

    fn is_empty(&self) -> bool {
        self.sent == self.bytes.len()
    }
}

struct Shared {
    tls: Mutex<Tls>,
    outbox: Mutex<Outbox>,
    /// A `max_connections` place, freed when both halves are dropped.
    _permit: Option<Permit>,
}

fn lock<T>(m: &Mutex<T>) -> MutexGuard<'_, T> {
    m.lock().unwrap_or_else(|e| e.into_inner())
}

impl Shared {
    /// Moves every queued record into the outbox and sends it. With
    /// `wait == false` it gives up at once if another thread is sending (that
    /// thread will send these records too).
    fn flush<'a>(&'a self, mut tls: MutexGuard<'a, Tls>, wait: bool) -> Result<()> {
        loop {
            if !tls.conn.wants_write() {
                return Ok(());
            }
            let mut outbox = if wait {
                lock(&self.outbox)
            } else {
                match self.outbox.try_lock() {
                    Ok(g) => g,
                    Err(TryLockError::Poisoned(e)) => e.into_inner(),
                    Err(TryLockError::WouldBlock) => return Ok(()),
                }
            };
            while tls.conn.wants_write() {
                tls.conn
                    .write_tls(&mut outbox.bytes)
                    .map_err(|e| Error::io("encrypting failed", e))?;
            }
            drop(tls);
            outbox.send()?;
            drop(outbox);
            // Records the other half queued while we were sending.
            tls = lock(&self.tls);
        }
    }
}

/// The reading half of a split [`SecureStream`](crate::SecureStream).
pub struct ReadHalf {
    shared: Arc<Shared>,
    io: Transport<TcpStream>,
    read_timeout: Option<Duration>,
    eof: bool,
}

/// The writing half of a split [`SecureStream`](crate::SecureStream).
pub struct WriteHalf {
    shared: Arc<Shared>,
}

impl std::fmt::Debug for ReadHalf {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("ReadHalf")
            .field("socket", &self.io.sock)
            .finish()
    }
}

impl std::fmt::Debug for WriteHalf {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("WriteHalf").finish_non_exhaustive()
    }
}

pub(crate) fn split(
    conn: Connection,
    io: Transport<TcpStream>,
    read_timeout: Option<Duration>,
    write_timeout: Option<Duration>,
    allow_half_open: bool,
    close_sent: bool,
    permit: Option<Permit>,
) -> Result<(ReadHalf, WriteHalf)> {
    let write_sock = io
        .sock
        .try_clone()
        .map_err(|e| Error::io("cloning the socket for split failed", e))?;
    let shared = Arc::new(Shared {
        tls: Mutex::new(Tls {
            conn,
            allow_half_open,
            close_sent,
        }),
        outbox: Mutex::new(Outbox {
            sock: write_sock,
            bytes: Vec::new(),
            sent: 0,
            write_timeout,
        }),
        _permit: permit,
    });
    Ok((
        ReadHalf {
            shared: shared.clone(),
            io,
            read_timeout,
            eof: false,
        },
        WriteHalf { shared },
    ))
}

impl ReadHalf {
    fn read_app(&mut self, buf: &mut [u8]) -> Result<usize> {
        if buf.is_empty() {
            return Ok(0);
        }
        loop {
            {
                let mut tls = lock(&self.shared.tls);
                match tls.conn.reader().read(buf) {
                    Ok(0) => {
                        if !tls.allow_half_open && !tls.close_sent {
                            tls.close_sent = true;
                            tls.conn.send_close_notify();
                            let _ = self.shared.flush(tls, true);
                            let _ = self.io.sock.shutdown(Shutdown::Write);
                        }
                        return Ok(0);
                    }
                    Ok(n) => {
                        self.io.release_if_idle();
                        return Ok(n);
                    }
                    Err(e) if e.kind() == io::ErrorKind::WouldBlock => {}
                    Err(e) if e.kind() == io::ErrorKind::UnexpectedEof => {
                        return Err(Error::Truncated);
                    }
                    Err(e) => return Err(Error::io("reading tls data failed", e)),
                }
                if self.eof {
                    tls.conn
                        .read_tls(&mut io::empty())
                        .map_err(|e| Error::io("reading tls data failed", e))?;
                    continue;
                }
                if !self.io.pending().is_empty() {
                    let mut pending = self.io.pending();
                    let n = tls
                        .conn
                        .read_tls(&mut pending)
                        .map_err(|e| Error::io("reading tls data failed", e))?;
                    self.io.consume(n);
                    if let Err(e) = tls.conn.process_new_packets() {
                        let _ = self.shared.flush(tls, false);
                        return Err(map_tls_error(e, false));
                    }
                    self.shared.flush(tls, false)?;
                    continue;
                }
            }
            // Block in the socket with no lock held.
            if self.io.fill(Phase::Read, self.read_timeout)? == 0 {
                self.eof = true;
            }
        }
    }

    /// Bounds each read (`SO_RCVTIMEO`); `None` waits forever.
    pub fn set_read_timeout(&mut self, timeout: Option<Duration>) -> Result<()> {
        self.io
            .sock
            .set_read_timeout(timeout)
            .map_err(|e| Error::bad_timeout("read", timeout, e))?;
        self.read_timeout = timeout;
        Ok(())
    }

    /// The peer's address.
    pub fn peer_addr(&self) -> io::Result<SocketAddr> {
        self.io.sock.peer_addr()
    }
}

impl Read for ReadHalf {
    fn read(&mut self, buf: &mut [u8]) -> io::Result<usize> {
        self.read_app(buf).map_err(io::Error::from)
    }
}

impl WriteHalf {
    fn write_app(&mut self, buf: &[u8]) -> Result<usize> {
        {
            // Anything left from an earlier timeout goes first; an error here
            // means none of `buf` was taken.
            let mut outbox = lock(&self.shared.outbox);
            if !outbox.is_empty() {
                outbox.send()?;
            }
        }
        let mut tls = lock(&self.shared.tls);
        let n = tls
            .conn
            .writer()
            .write(buf)
            .map_err(|e| Error::io("write failed", e))?;
        match self.shared.flush(tls, true) {
            // Taken and queued: it goes out with the next write or flush.
            Err(e) if e.is_timeout() => Ok(n),
            other => other.map(|()| n),
        }
    }

    /// Bounds each write (`SO_SNDTIMEO`); `None` waits forever.
    pub fn set_write_timeout(&mut self, timeout: Option<Duration>) -> Result<()> {
        let mut outbox = lock(&self.shared.outbox);
        outbox
            .sock
            .set_write_timeout(timeout)
            .map_err(|e| Error::bad_timeout("write", timeout, e))?;
        outbox.write_timeout = timeout;
        Ok(())
    }

    /// Sends `close_notify` and shuts the socket's write side; the read half
    /// goes on reading.
    pub fn shutdown_write(&mut self) -> Result<()> {
        let mut tls = lock(&self.shared.tls);
        if !tls.close_sent {
            tls.close_sent = true;
            tls.conn.send_close_notify();
        }
        self.shared.flush(tls, true)?;
        lock(&self.shared.outbox)
            .sock
            .shutdown(Shutdown::Write)
            .map_err(|e| Error::io("shutting down the write side failed", e))
    }
}

impl Write for WriteHalf {
    fn write(&mut self, buf: &[u8]) -> io::Result<usize> {
        self.write_app(buf).map_err(io::Error::from)
    }

    fn flush(&mut self) -> io::Result<()> {
        {
            let mut outbox = lock(&self.shared.outbox);
            if !outbox.is_empty() {
                outbox.send()?;
            }
        }
        let tls = lock(&self.shared.tls);
        self.shared.flush(tls, true).map_err(io::Error::from)
    }
}
