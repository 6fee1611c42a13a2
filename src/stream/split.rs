//! Full duplex: `SecureStream::split` into a `ReadHalf` and a `WriteHalf`
//! that two threads use at once.
//!
//! rustls has no full-duplex mode, and an `Arc<Mutex<StreamOwned>>`
//! deadlocks: a reader blocked in `recv` holds the lock the writer needs.
//! Here the reader never waits for the writer:
//!
//! * `tls` guards the rustls connection and is never held across a socket
//!   call. The reader reads the socket without it, then takes it to decrypt;
//!   the writer takes it to encrypt.
//! * `outbox` guards the write socket and the encrypted bytes not yet sent.
//!   Records must reach the wire in the order they were encrypted, so whoever
//!   encrypts moves the records into the outbox before letting go of `tls`
//!   (locks are always taken in the order `tls`, then `outbox`). The writer
//!   holds `outbox` across its blocking sends (bounded by the write timeout).
//! * Records the read side must send (alerts, KeyUpdate replies, the answer
//!   to `close_notify`) are queued in the outbox and sent by the reader only
//!   if the outbox is free (`try_lock`) and only as far as the socket takes
//!   them without blocking; the writer, which looks for more records every
//!   time it has sent, sends the rest.

use std::io::{self, Read, Write};
use std::net::{Shutdown, SocketAddr, TcpStream};
use std::sync::atomic::{AtomicU8, Ordering};
use std::sync::{Arc, Mutex, MutexGuard, TryLockError};
use std::time::{Duration, Instant};

use super::records::{Plain, decrypt, feed_pending, seal_all};
use crate::error::{Error, Phase, Result, io_error};
use crate::net::limiter::Permit;
use crate::net::registry::Watch;
use crate::net::transport::{Layer, Transport, deadline_after, time_left};
use crate::sync::lock;
use crate::tls::engine::Engine;

struct Tls {
    conn: Engine,
    allow_half_open: bool,
    close_sent: bool,
}

struct Outbox {
    sock: TcpStream,
    bytes: Vec<u8>,
    sent: usize,
    write_timeout: Option<Duration>,
    /// A send failed, perhaps part-way through a record: why. Nothing more
    /// is written.
    failed: Option<Box<str>>,
}

impl Outbox {
    /// Sends what is queued by `deadline`. A failure (a timeout included)
    /// ends writing: every later send fails.
    fn send(&mut self, deadline: Option<Instant>) -> Result<()> {
        if let Some(reason) = &self.failed {
            return Err(Error::write_broken(reason));
        }
        let mut armed = false;
        let sent = self.send_by(deadline, &mut armed);
        if armed {
            let _ = self.sock.set_write_timeout(self.write_timeout);
        }
        if let Err(e) = &sent {
            self.failed = Some(e.to_string().into());
        }
        sent
    }

    fn send_by(&mut self, deadline: Option<Instant>, armed: &mut bool) -> Result<()> {
        let mut first = true;
        while self.sent < self.bytes.len() {
            if let (false, Some(at)) = (first, deadline) {
                let left = time_left(at, Phase::Write, self.write_timeout)?;
                let _ = self.sock.set_write_timeout(Some(left));
                *armed = true;
            }
            first = false;
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

    /// Sends what the socket takes now without blocking; the rest stays
    /// queued, in order, for the writer.
    fn send_now(&mut self) {
        if self.failed.is_some() || self.is_empty() || self.sock.set_nonblocking(true).is_err() {
            return;
        }
        while self.sent < self.bytes.len() {
            match self.sock.write(&self.bytes[self.sent..]) {
                Ok(0) => break,
                Ok(n) => self.sent += n,
                Err(e) if e.kind() == io::ErrorKind::Interrupted => {}
                Err(e) if e.kind() == io::ErrorKind::WouldBlock => break,
                Err(e) => {
                    self.failed = Some(Error::io("write failed", e).to_string().into());
                    break;
                }
            }
        }
        let _ = self.sock.set_nonblocking(false);
        if self.is_empty() {
            self.bytes.clear();
            self.sent = 0;
        }
    }

    fn is_empty(&self) -> bool {
        self.sent == self.bytes.len()
    }
}

struct Shared {
    tls: Mutex<Tls>,
    outbox: Mutex<Outbox>,
    /// The proxy's TLS the stream runs inside, if any (the reader's
    /// transport opens with it; records are sealed with it here).
    layer: Option<Arc<dyn Layer>>,
    /// A `max_connections` place, freed when both halves are dropped.
    _permit: Option<Permit>,
    /// The place among the listener's live connections (server side).
    watch: Option<Watch>,
    /// After a shutdown's request, when a WebSocket closes the stream
    /// itself: 0 not granted, 1 its one write (the close frame) granted,
    /// 2 written.
    last_words: AtomicU8,
}

impl Shared {
    /// The writer's way: moves every queued record into the outbox and
    /// sends it by `deadline`.
    fn flush<'a>(&'a self, mut tls: MutexGuard<'a, Tls>, deadline: Option<Instant>) -> Result<()> {
        loop {
            if !self.wants_write(&tls) {
                return Ok(());
            }
            let mut outbox = lock(&self.outbox);
            self.queue(&mut tls.conn, &mut outbox.bytes)
                .map_err(|e| Error::io("encrypting failed", e))?;
            drop(tls);
            outbox.send(deadline)?;
            drop(outbox);
            // Records the other half queued while we were sending.
            tls = lock(&self.tls);
        }
    }

    /// Whether the listener is shutting down and asked this connection to
    /// close.
    fn shutting_down(&self) -> bool {
        self.watch.as_ref().is_some_and(Watch::due)
    }

    /// On a shutdown's request: `close_notify` if the socket takes it now
    /// (the writer may be blocked in a send; the shutdown's last step cuts
    /// it), then FIN; or, when a WebSocket closes the stream itself, only
    /// the report (its writer sends the close frame, then closes).
    #[inline(never)]
    fn closed_for_shutdown(&self) -> Error {
        if self.watch.as_ref().is_some_and(Watch::owner_closes) {
            let _ = self
                .last_words
                .compare_exchange(0, 1, Ordering::AcqRel, Ordering::Acquire);
            return Error::ShuttingDown;
        }
        let mut tls = lock(&self.tls);
        if !tls.close_sent {
            tls.close_sent = true;
            tls.conn.send_close_notify();
        }
        let sent = self.flush_now(&mut tls);
        drop(tls);
        if sent {
            if let Some(w) = &self.watch {
                w.sent_close_notify();
            }
        }
        if let Ok(outbox) = self.outbox.try_lock() {
            let _ = outbox.sock.shutdown(Shutdown::Write);
        }
        Error::ShuttingDown
    }

    /// Whether records wait to be queued: rustls's, or the proxy's TLS's.
    fn wants_write(&self, tls: &Tls) -> bool {
        tls.conn.wants_write() || self.layer.as_ref().is_some_and(|l| l.wants_write())
    }

    /// Moves every record rustls queued into `out`, sealed in the proxy's
    /// TLS where the stream runs inside one.
    fn queue(&self, conn: &mut Engine, out: &mut Vec<u8>) -> io::Result<()> {
        match &self.layer {
            None => {
                while conn.wants_write() {
                    conn.write_tls(out)?;
                }
            }
            Some(layer) => {
                seal_all(conn, &**layer, None)?;
                while layer.wants_write() {
                    layer.send(out)?;
                }
            }
        }
        Ok(())
    }

    /// The reader's way: queues the records and sends what the socket takes
    /// now, if the writer is not sending; never blocks. Returns whether
    /// everything went out.
    fn flush_now(&self, tls: &mut Tls) -> bool {
        if !self.wants_write(tls) {
            return true;
        }
        let mut outbox = match self.outbox.try_lock() {
            Ok(g) => g,
            Err(TryLockError::Poisoned(e)) => e.into_inner(),
            Err(TryLockError::WouldBlock) => return false,
        };
        let _ = self.queue(&mut tls.conn, &mut outbox.bytes);
        outbox.send_now();
        outbox.is_empty() && outbox.failed.is_none()
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
    conn: Engine,
    io: Transport<TcpStream>,
    read_timeout: Option<Duration>,
    write_timeout: Option<Duration>,
    allow_half_open: bool,
    close_sent: bool,
    (permit, watch): (Option<Permit>, Option<Watch>),
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
            failed: None,
        }),
        layer: io.layer.clone(),
        _permit: permit,
        watch,
        last_words: AtomicU8::new(0),
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
        if self.shared.shutting_down() {
            return Err(self.shared.closed_for_shutdown());
        }
        if buf.is_empty() {
            return Ok(0);
        }
        let read = self.read_by(buf, deadline_after(self.read_timeout));
        self.io.disarm(self.read_timeout, None);
        match read {
            // A shutdown woke the read: what looks like the peer's end is ours.
            Ok(0) | Err(_) if self.shared.shutting_down() => Err(self.shared.closed_for_shutdown()),
            read => read,
        }
    }

    /// Reads; every socket read after the first is bounded by what is left
    /// of `deadline`.
    fn read_by(&mut self, buf: &mut [u8], deadline: Option<Instant>) -> Result<usize> {
        let mut first = true;
        loop {
            {
                let mut tls = lock(&self.shared.tls);
                let plain = match tls.conn.read(buf) {
                    Ok(plain) => plain,
                    Err(e) => {
                        // The alert that says why, if one is queued.
                        self.shared.flush_now(&mut tls);
                        return Err(e);
                    }
                };
                match plain {
                    Plain::Closed => {
                        if !tls.allow_half_open && !tls.close_sent {
                            tls.close_sent = true;
                            tls.conn.send_close_notify();
                            // Our close_notify goes out now if the socket
                            // takes it; else the writer sends it (or close).
                            if self.shared.flush_now(&mut tls) {
                                let _ = self.io.shutdown_write();
                            }
                        }
                        return Ok(0);
                    }
                    Plain::Data(n) => {
                        self.io.release_if_idle();
                        tls.conn.release_if_idle(self.io.in_bulk());
                        return Ok(n);
                    }
                    Plain::Empty => {}
                }
                if self.eof {
                    tls.conn.end();
                    continue;
                }
                if !self.io.pending().is_empty() {
                    feed_pending(&mut tls.conn, &mut self.io)?;
                    let decrypted = decrypt(&mut tls.conn);
                    // Alerts and KeyUpdate replies: never block on them.
                    self.shared.flush_now(&mut tls);
                    decrypted?;
                    continue;
                }
            }
            // Block in the socket with no lock held.
            if !first {
                self.io.arm_read(deadline, Phase::Read, self.read_timeout)?;
            }
            first = false;
            if self.io.fill(Phase::Read, self.read_timeout)? == 0 {
                self.eof = true;
            }
        }
    }

    /// Bounds each read as a whole, however slowly the bytes come (`None`
    /// waits forever); a read that times out leaves the half usable.
    pub fn set_read_timeout(&mut self, timeout: Option<Duration>) -> Result<()> {
        self.io
            .sock
            .set_read_timeout(timeout)
            .map_err(|e| Error::bad_timeout("read", timeout, e))?;
        self.read_timeout = timeout;
        Ok(())
    }

    /// The peer's address.
    pub fn peer_addr(&self) -> Result<SocketAddr> {
        self.io
            .sock
            .peer_addr()
            .map_err(|e| Error::io("getpeername failed", e))
    }
}

impl Read for ReadHalf {
    fn read(&mut self, buf: &mut [u8]) -> io::Result<usize> {
        self.read_app(buf).map_err(io::Error::from)
    }
}

impl WriteHalf {
    fn write_app(&mut self, buf: &[u8]) -> Result<usize> {
        if self.shared.shutting_down()
            && self
                .shared
                .last_words
                .compare_exchange(1, 2, Ordering::AcqRel, Ordering::Acquire)
                .is_err()
        {
            return Err(self.shared.closed_for_shutdown());
        }
        let deadline = deadline_after(lock(&self.shared.outbox).write_timeout);
        self.flush_by(deadline)?;
        let mut tls = lock(&self.shared.tls);
        let n = tls
            .conn
            .write(buf)
            .map_err(|e| Error::io("write failed", e))?;
        self.shared.flush(tls, deadline).map(|()| n)
    }

    /// Sends what is queued (records the reader left, then any rustls has)
    /// by `deadline`.
    fn flush_by(&mut self, deadline: Option<Instant>) -> Result<()> {
        {
            let mut outbox = lock(&self.shared.outbox);
            if !outbox.is_empty() || outbox.failed.is_some() {
                outbox.send(deadline)?;
            }
        }
        let tls = lock(&self.shared.tls);
        self.shared.flush(tls, deadline)
    }

    /// Bounds each write or flush as a whole (`None` waits forever); a
    /// write that fails or times out ends writing, as on a
    /// [`SecureStream`](crate::SecureStream).
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
        let deadline = deadline_after(lock(&self.shared.outbox).write_timeout);
        let failed = lock(&self.shared.outbox).failed.is_some();
        if !failed {
            let mut tls = lock(&self.shared.tls);
            if !tls.close_sent {
                tls.close_sent = true;
                tls.conn.send_close_notify();
            }
            drop(tls);
            self.flush_by(deadline)?;
            if let Some(w) = &self.shared.watch {
                w.sent_close_notify();
            }
        }
        if self.shared.layer.is_some() {
            // Inside an https:// proxy's TLS, ending it (or the socket)
            // would end the tunnel both ways: the close_notify says it.
            return Ok(());
        }
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
        let deadline = deadline_after(lock(&self.shared.outbox).write_timeout);
        self.flush_by(deadline).map_err(io::Error::from)
    }
}
