//! The socket under a `SecureStream`: the transport itself, the hooks that set
//! its timeouts and shut it down (where the transport has them), the
//! receive buffer that reads the socket in large chunks, and the layer
//! (the TLS to an `https://` proxy) everything may pass through.

use std::any::Any;
use std::io::{self, Read, Write};
use std::net::{Shutdown, TcpStream};
use std::sync::Arc;
use std::time::{Duration, Instant};

use crate::error::{Error, Phase, io_error};

/// The most one read takes in bulk transfers: 4 KiB reads would cost 16
/// times the system calls of a 64 KiB read.
const BULK_CHUNK: usize = 64 * 1024;
/// The receive buffer otherwise (idle or interactive connections), so an
/// idle connection holds little more than rustls's own buffers.
const SMALL_CHUNK: usize = 8 * 1024;

/// What a direct read takes outside bulk transfers (rustls's own read size).
const DIRECT_READ: usize = 4096;

/// What securenet can do to a transport beyond `Read + Write`: set its
/// timeouts (each call's deadline is enforced through them) and shut it
/// down. See [`Ops::detect`] for transports given to `secure`.
pub(crate) struct Ops<S> {
    pub(crate) set_read_timeout: fn(&S, Option<Duration>) -> io::Result<()>,
    pub(crate) set_write_timeout: fn(&S, Option<Duration>) -> io::Result<()>,
    pub(crate) shutdown: fn(&S, Shutdown) -> io::Result<()>,
}

impl<S> Clone for Ops<S> {
    fn clone(&self) -> Self {
        *self
    }
}

impl<S> Copy for Ops<S> {}

impl Ops<TcpStream> {
    pub(crate) fn tcp() -> Self {
        Ops {
            set_read_timeout: TcpStream::set_read_timeout,
            set_write_timeout: TcpStream::set_write_timeout,
            shutdown: TcpStream::shutdown,
        }
    }
}

#[cfg(unix)]
impl Ops<std::os::unix::net::UnixStream> {
    pub(crate) fn unix() -> Self {
        use std::os::unix::net::UnixStream;
        Ops {
            set_read_timeout: UnixStream::set_read_timeout,
            set_write_timeout: UnixStream::set_write_timeout,
            shutdown: UnixStream::shutdown,
        }
    }
}

/// The transport as a socket with timeouts, if it is one.
enum Socket<'a> {
    Tcp(&'a TcpStream),
    #[cfg(unix)]
    Unix(&'a std::os::unix::net::UnixStream),
}

fn socket_of<S: 'static>(s: &S) -> Option<Socket<'_>> {
    let any = s as &dyn Any;
    if let Some(tcp) = any.downcast_ref::<TcpStream>() {
        return Some(Socket::Tcp(tcp));
    }
    #[cfg(unix)]
    if let Some(unix) = any.downcast_ref::<std::os::unix::net::UnixStream>() {
        return Some(Socket::Unix(unix));
    }
    None
}

/// What a transport without timeouts says when asked for one.
fn no_timeouts() -> io::Error {
    io::Error::new(
        io::ErrorKind::Unsupported,
        "this transport has no timeouts of its own to set: set them on the transport before \
         securing it (each then bounds one of its reads or writes, not a whole call)",
    )
}

fn any_read_timeout<S: 'static>(s: &S, t: Option<Duration>) -> io::Result<()> {
    match socket_of(s) {
        Some(Socket::Tcp(s)) => s.set_read_timeout(t),
        #[cfg(unix)]
        Some(Socket::Unix(s)) => s.set_read_timeout(t),
        None => Err(no_timeouts()),
    }
}

fn any_write_timeout<S: 'static>(s: &S, t: Option<Duration>) -> io::Result<()> {
    match socket_of(s) {
        Some(Socket::Tcp(s)) => s.set_write_timeout(t),
        #[cfg(unix)]
        Some(Socket::Unix(s)) => s.set_write_timeout(t),
        None => Err(no_timeouts()),
    }
}

fn any_shutdown<S: 'static>(s: &S, how: Shutdown) -> io::Result<()> {
    match socket_of(s) {
        Some(Socket::Tcp(s)) => s.shutdown(how),
        #[cfg(unix)]
        Some(Socket::Unix(s)) => s.shutdown(how),
        None => Ok(()),
    }
}

impl<S: 'static> Ops<S> {
    /// The hooks for `S`, found at run time: a `TcpStream` or `UnixStream`
    /// has timeouts and a shutdown; any other transport has none (setting
    /// a timeout fails with `Unsupported`, and shutting down does nothing).
    pub(crate) fn detect() -> Self {
        Ops {
            set_read_timeout: any_read_timeout::<S>,
            set_write_timeout: any_write_timeout::<S>,
            shutdown: any_shutdown::<S>,
        }
    }
}

/// A layer around everything a transport carries: the TLS to an
/// `https://` proxy, inside which the tunnel to the target runs. Bytes read
/// from the socket are opened through it, and bytes to send are sealed by
/// it. Shared (behind its own lock) by the two halves of a split stream,
/// and never held across a socket call.
pub(crate) trait Layer: Send + Sync {
    /// Takes bytes read from the socket; `None`: the socket ended.
    fn open(&self, raw: Option<&[u8]>) -> Result<(), Error>;
    /// Copies opened bytes into `out`: `Some(n)` with `n > 0`, `Some(0)`
    /// once the layer has ended, `None` while it needs more from the
    /// socket.
    fn take(&self, out: &mut [u8]) -> Result<Option<usize>, Error>;
    /// Takes bytes to seal; they are sent by [`send`](Self::send).
    fn seal(&self, bytes: &[u8]) -> io::Result<usize>;
    /// Whether sealed bytes wait to be sent.
    fn wants_write(&self) -> bool;
    /// Writes sealed bytes to `out`, with one write of it.
    fn send(&self, out: &mut dyn Write) -> io::Result<usize>;
    /// Queues the layer's own end (a `close_notify`).
    fn close(&self);
}

/// A [`Layer`] as a `Write`: what is written is sealed.
pub(crate) struct Sealer<'a>(pub(crate) &'a dyn Layer);

impl Write for Sealer<'_> {
    fn write(&mut self, buf: &[u8]) -> io::Result<usize> {
        self.0.seal(buf)
    }

    fn flush(&mut self) -> io::Result<()> {
        Ok(())
    }
}

/// The transport and its receive buffer.
pub(crate) struct Transport<S> {
    pub(crate) sock: S,
    pub(crate) ops: Ops<S>,
    /// The TLS to an `https://` proxy, if the stream runs through one.
    pub(crate) layer: Option<Arc<dyn Layer>>,
    buf: Vec<u8>,
    pos: usize,
    end: usize,
    /// The buffer size for the next read: grows to `BULK_CHUNK` after a read
    /// that filled the buffer, shrinks back after a small one.
    next_size: usize,
    /// A call's deadline changed the socket's read (write) timeout from the
    /// user's; [`Transport::disarm`] puts it back.
    read_armed: bool,
    write_armed: bool,
    /// When [`set_deadline_timeout`](Transport::set_deadline_timeout)
    /// last set the read (write) timeout, until the user's are put back.
    deadline_set: [Option<Instant>; 2],
}

/// `now + limit`, or as good as never for a limit too large to add (a
/// bound that must exist, as a handshake's).
pub(crate) fn deadline_in(limit: Duration) -> Instant {
    let now = Instant::now();
    now.checked_add(limit)
        .or_else(|| now.checked_add(Duration::from_secs(u32::MAX.into())))
        .unwrap_or(now)
}

/// `now + d`, or `None` (no deadline) for `None` or a `d` too large to add.
pub(crate) fn deadline_after(d: Option<Duration>) -> Option<Instant> {
    d.and_then(|d| Instant::now().checked_add(d))
}

/// What is left until `deadline`, or the timeout error of `phase`.
pub(crate) fn time_left(
    deadline: Instant,
    phase: Phase,
    after: Option<Duration>,
) -> Result<Duration, Error> {
    let left = deadline.saturating_duration_since(Instant::now());
    if left.is_zero() {
        return Err(Error::Timeout { phase, after });
    }
    Ok(left)
}

impl<S: Read> Transport<S> {
    pub(crate) fn new(sock: S, ops: Ops<S>, already_read: &[u8]) -> Self {
        Transport {
            sock,
            ops,
            layer: None,
            buf: already_read.to_vec(),
            pos: 0,
            end: already_read.len(),
            next_size: SMALL_CHUNK,
            read_armed: false,
            write_armed: false,
            deadline_set: [None; 2],
        }
    }

    /// Sets the socket's read (`write` false) or write timeout to `left`,
    /// what is left of a deadline, unless this direction was set so less
    /// than `slack` ago: a read or write that starts within `slack` of
    /// that setting ends at most `slack` after the deadline. So a
    /// handshake on a fast network sets each direction about once, not
    /// before every read and write (a system call each).
    pub(crate) fn set_deadline_timeout(&mut self, write: bool, left: Duration, slack: Duration) {
        let now = Instant::now();
        let last = &mut self.deadline_set[usize::from(write)];
        if last.is_some_and(|at| now.saturating_duration_since(at) < slack) {
            return;
        }
        let set = if write {
            self.ops.set_write_timeout
        } else {
            self.ops.set_read_timeout
        };
        let _ = set(&self.sock, Some(left));
        *last = Some(now);
    }

    /// Puts the user's timeouts back after a deadline's
    /// ([`set_deadline_timeout`](Self::set_deadline_timeout)).
    pub(crate) fn restore_timeouts(&mut self, read: Option<Duration>, write: Option<Duration>) {
        let _ = (self.ops.set_read_timeout)(&self.sock, read);
        let _ = (self.ops.set_write_timeout)(&self.sock, write);
        self.deadline_set = [None; 2];
    }

    /// Before a call's second and later reads: the socket's read timeout
    /// becomes what is left of the call's `deadline`, so a peer that
    /// trickles bytes cannot stretch the call past it.
    pub(crate) fn arm_read(
        &mut self,
        deadline: Option<Instant>,
        phase: Phase,
        after: Option<Duration>,
    ) -> Result<(), Error> {
        self.arm(false, deadline, phase, after)
    }

    /// As [`arm_read`](Self::arm_read), for writes.
    pub(crate) fn arm_write(
        &mut self,
        deadline: Option<Instant>,
        phase: Phase,
        after: Option<Duration>,
    ) -> Result<(), Error> {
        self.arm(true, deadline, phase, after)
    }

    fn arm(
        &mut self,
        write: bool,
        deadline: Option<Instant>,
        phase: Phase,
        after: Option<Duration>,
    ) -> Result<(), Error> {
        let Some(at) = deadline else {
            return Ok(());
        };
        let left = time_left(at, phase, after)?;
        let (set, armed) = if write {
            (self.ops.set_write_timeout, &mut self.write_armed)
        } else {
            (self.ops.set_read_timeout, &mut self.read_armed)
        };
        let _ = set(&self.sock, Some(left));
        *armed = true;
        Ok(())
    }

    /// Puts back the user's timeouts where a deadline changed them.
    pub(crate) fn disarm(&mut self, read: Option<Duration>, write: Option<Duration>) {
        if std::mem::take(&mut self.read_armed) {
            let _ = (self.ops.set_read_timeout)(&self.sock, read);
        }
        if std::mem::take(&mut self.write_armed) {
            let _ = (self.ops.set_write_timeout)(&self.sock, write);
        }
    }

    /// Bytes read from the socket and not yet handed to rustls.
    pub(crate) fn pending(&self) -> &[u8] {
        &self.buf[self.pos..self.end]
    }

    /// Frees the receive buffer once drained, so an idle connection holds
    /// none; the bulk (64 KiB) buffer is kept while the bulk goes on.
    pub(crate) fn release_if_idle(&mut self) {
        if self.pos == self.end && !self.in_bulk() && !self.buf.is_empty() {
            self.buf = Vec::new();
            self.pos = 0;
            self.end = 0;
        }
    }

    /// Whether a bulk transfer is under way: reads take up to 64 KiB.
    pub(crate) fn in_bulk(&self) -> bool {
        self.next_size == BULK_CHUNK
    }

    /// Whether the connection may read the socket itself into its own
    /// buffer ([`read_direct`](Self::read_direct)): no layer to open the
    /// bytes through.
    pub(crate) fn reads_direct(&self) -> bool {
        self.layer.is_none()
    }

    /// Runs everything from now on through `layer`; bytes read and not yet
    /// handed on are the layer's, and are opened first.
    pub(crate) fn wrap(&mut self, layer: Arc<dyn Layer>) -> Result<(), Error> {
        let raw = std::mem::take(&mut self.buf);
        if self.pos < self.end {
            layer.open(Some(&raw[self.pos..self.end]))?;
        }
        self.pos = 0;
        self.end = 0;
        self.layer = Some(layer);
        Ok(())
    }

    /// Shuts the socket's write side, unless the stream runs inside an
    /// `https://` proxy's TLS: ending that TLS (or the socket under it)
    /// ends the tunnel both ways at most proxies, so there the stream's own
    /// `close_notify` is the half-close.
    pub(crate) fn shutdown_write(&self) -> io::Result<()> {
        match self.layer {
            Some(_) => Ok(()),
            None => (self.ops.shutdown)(&self.sock, Shutdown::Write),
        }
    }

    /// Whether the layer has sealed bytes to send (its replies, its end).
    pub(crate) fn layer_wants_write(&self) -> bool {
        self.layer.as_ref().is_some_and(|l| l.wants_write())
    }

    /// Lets the connection read the socket into its own buffer: no buffer
    /// of ours, no copy. `read_tls` is given the most to read: 4 KiB, or
    /// 64 KiB once a read has filled what it was given (a bulk transfer),
    /// back to 4 KiB after a small read. `Ok(0)` is end of stream.
    pub(crate) fn read_direct(
        &mut self,
        read_tls: impl FnMut(&mut S, usize) -> io::Result<usize>,
        phase: Phase,
        after: Option<Duration>,
    ) -> Result<usize, Error> {
        let max = if self.in_bulk() {
            BULK_CHUNK
        } else {
            DIRECT_READ
        };
        let n = self.read_once(max, read_tls, phase, after)?;
        if n >= max {
            self.next_size = BULK_CHUNK;
        } else if n <= DIRECT_READ {
            self.next_size = SMALL_CHUNK;
        }
        Ok(n)
    }

    /// One read of at most `max` bytes by `read_tls` (retried if
    /// interrupted), with no change of read size: the handshake's reads.
    pub(crate) fn read_once(
        &mut self,
        max: usize,
        mut read_tls: impl FnMut(&mut S, usize) -> io::Result<usize>,
        phase: Phase,
        after: Option<Duration>,
    ) -> Result<usize, Error> {
        loop {
            match read_tls(&mut self.sock, max) {
                Ok(n) => return Ok(n),
                Err(e) if e.kind() == io::ErrorKind::Interrupted => {}
                Err(e) => return Err(io_error(e, phase, after)),
            }
        }
    }

    /// Puts `bytes` back in front of what is pending: read too far, they
    /// are the next bytes `pending` gives.
    pub(crate) fn put_back(&mut self, bytes: &[u8]) {
        let mut buf = bytes.to_vec();
        buf.extend_from_slice(self.pending());
        self.end = buf.len();
        self.pos = 0;
        self.buf = buf;
    }

    pub(crate) fn consume(&mut self, n: usize) {
        self.pos = (self.pos + n).min(self.end);
    }

    /// Reads once from the socket into the (empty) buffer. `Ok(0)` is end of
    /// stream; a socket timeout becomes [`Error::Timeout`] for `phase`.
    /// Through a layer, the buffer gets what the layer opened, which may be
    /// nothing yet (part of one of its records): `Ok(n > 0)` with nothing
    /// [`pending`](Self::pending), and the caller reads again.
    pub(crate) fn fill(&mut self, phase: Phase, after: Option<Duration>) -> Result<usize, Error> {
        if self.buf.len() != self.next_size {
            // Only on a change between small and bulk: a new, zeroed buffer.
            self.buf = vec![0; self.next_size];
        }
        self.pos = 0;
        self.end = 0;
        let Some(layer) = self.layer.clone() else {
            return self.read_sock(phase, after);
        };
        if let Some(n) = layer.take(&mut self.buf)? {
            self.end = n;
            return Ok(n);
        }
        let raw = self.read_sock(phase, after)?;
        layer.open((raw > 0).then_some(&self.buf[..raw]))?;
        self.end = 0;
        match layer.take(&mut self.buf)? {
            Some(n) => {
                self.end = n;
                Ok(n)
            }
            // More of the layer's record is to come.
            None => Ok(raw.max(1)),
        }
    }

    fn read_sock(&mut self, phase: Phase, after: Option<Duration>) -> Result<usize, Error> {
        loop {
            match self.sock.read(&mut self.buf) {
                Ok(n) => {
                    self.end = n;
                    self.next_size = if n == self.buf.len() {
                        BULK_CHUNK
                    } else if n <= SMALL_CHUNK / 2 {
                        SMALL_CHUNK
                    } else {
                        self.buf.len()
                    };
                    return Ok(n);
                }
                Err(e) if e.kind() == io::ErrorKind::Interrupted => continue,
                Err(e) => return Err(io_error(e, phase, after)),
            }
        }
    }
}
