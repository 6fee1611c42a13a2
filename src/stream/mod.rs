//! `SecureStream`: a TLS stream over a socket, `Read + Write`, blocking.

mod handshake;
mod info;
mod layered;
mod proxied;
mod records;
mod shutdown;
pub(crate) mod split;
mod tcp;
mod timeouts;

use std::fmt;
use std::io::{self, IoSlice, Read, Write};
use std::net::{Shutdown, TcpStream};
use std::sync::Arc;
use std::time::{Duration, Instant};

use rustls::client::ClientSessionMemoryCache;
use rustls::pki_types::ServerName;
use rustls::server::Acceptor;

use crate::error::{CertificateProblem, Error, Phase, Result, io_error};
use crate::net::limiter::Permit;
use crate::net::registry::Watch;
use crate::net::transport::{Transport, deadline_after};
use crate::tls::engine::Engine;
use crate::tls::server_config::ServerSetup;
use crate::tls::trace::{TraceFn, Tracer};
use crate::tls::verify::ServerVerifier;
use records::{Plain, decrypt, feed_pending, seal_all, write_records};

/// A TLS connection over a transport `S`: a [`TcpStream`], a `UnixStream`
/// from [`ConnectOptions::connect_unix`](crate::ConnectOptions::connect_unix),
/// or any `Read + Write` given to
/// [`ConnectOptions::secure`](crate::ConnectOptions::secure) or
/// [`SecureStream::secure_server`].
///
/// It is `Read + Write` like a `TcpStream`. A clean TLS close
/// (`close_notify`) reads as `Ok(0)`; a peer that closes the connection
/// without one gives an error of kind `UnexpectedEof` ([`Error::Truncated`]),
/// never `Ok(0)`. Timeouts bound whole calls and give `TimedOut`: after a
/// read timeout the stream stays usable; a write that fails or times out
/// ends writing (see [`set_write_timeout`](Self::set_write_timeout)).
/// Errors from `Read` and `Write` are `io::Error`s whose inner
/// error is a [`securenet::Error`](Error): `Error::from(io_error)` recovers it.
///
/// A client stream has finished its handshake when `connect` returns. A
/// server stream from [`SecureListener::accept`](crate::SecureListener::accept)
/// runs its handshake in whichever thread first reads, writes or calls
/// [`handshake`](Self::handshake), bounded by the handshake timeout.
///
/// Dropping the stream sends nothing: call [`close`](Self::close) (or
/// [`shutdown_write`](Self::shutdown_write)) so the peer sees a clean end.
pub struct SecureStream<S = TcpStream> {
    io: Transport<S>,
    tls: Tls,
    handshake_timeout: Duration,
    read_timeout: Option<Duration>,
    write_timeout: Option<Duration>,
    check: Option<(Arc<ServerVerifier>, ServerName<'static>)>,
    authorization_error: Option<CertificateProblem>,
    /// The OCSP response the server stapled (clients only).
    ocsp: Option<Box<[u8]>>,
    allow_half_open: bool,
    close_sent: bool,
    /// A write failed (perhaps part-way through a record): why. Nothing
    /// more is written, as in Go's crypto/tls.
    write_failed: Option<Box<str>>,
    permit: Option<Permit>,
    /// Server side: the stream's place among its listener's live
    /// connections, which a shutdown may ask to close.
    watch: Option<Watch>,
    /// A read or write failed with `ShuttingDown` and the owner closes the
    /// stream itself: it may send its last words, one write (a
    /// WebSocket's close frame), then close.
    last_words: LastWords,
    sessions: Option<Arc<ClientSessionMemoryCache>>,
    trace: Option<Box<Tracer>>,
    /// Server side: the PROXY protocol header expected or read.
    proxy: proxied::ProxyState,
    /// Server side: the handshake ended because the client closed without
    /// sending a byte of TLS (after its PROXY header, if any): what a load
    /// balancer's health check does.
    closed_silently: bool,
    /// Server side: the handshake answered an ACME TLS-ALPN-01 validation
    /// and the connection is closed: nothing for the application.
    validation: bool,
}

/// The one write an owner that closes the stream itself may make after a
/// shutdown's request (its close frame).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum LastWords {
    NotGranted,
    Granted,
    Spoken,
}

enum Tls {
    /// A server waiting for the ClientHello, to pick the configuration:
    /// the acceptor, the setup, and the bytes read so far, which the
    /// connection is then given.
    Accepting(Box<(Acceptor, Arc<ServerSetup>, Vec<u8>)>),
    /// A server with only one configuration to offer, handshake not begun.
    Starting(Arc<rustls::ServerConfig>),
    Open(Box<Engine>),
    /// A handshake failed; the reason is kept for later calls.
    Failed(String),
}

impl<S: Read + Write> SecureStream<S> {
    pub(crate) fn new_client(
        io: Transport<S>,
        conn: Engine,
        handshake_timeout: Duration,
        check: Option<(Arc<ServerVerifier>, ServerName<'static>)>,
        allow_half_open: bool,
        sessions: Arc<ClientSessionMemoryCache>,
    ) -> Self {
        SecureStream {
            io,
            tls: Tls::Open(Box::new(conn)),
            handshake_timeout,
            read_timeout: None,
            write_timeout: None,
            check,
            authorization_error: None,
            ocsp: None,
            allow_half_open,
            close_sent: false,
            write_failed: None,
            permit: None,
            watch: None,
            last_words: LastWords::NotGranted,
            sessions: Some(sessions),
            trace: None,
            proxy: proxied::ProxyState::None,
            closed_silently: false,
            validation: false,
        }
    }

    pub(crate) fn new_server(
        io: Transport<S>,
        setup: Arc<ServerSetup>,
        handshake_timeout: Duration,
        allow_half_open: bool,
    ) -> Self {
        // With one configuration for every client, the connection starts
        // with it; otherwise the ClientHello is read first to choose.
        let tls = match setup.single() {
            Some(config) => Tls::Starting(config),
            None => Tls::Accepting(Box::new((Acceptor::default(), setup, Vec::new()))),
        };
        SecureStream {
            io,
            tls,
            handshake_timeout,
            read_timeout: None,
            write_timeout: None,
            check: None,
            authorization_error: None,
            ocsp: None,
            allow_half_open,
            close_sent: false,
            write_failed: None,
            permit: None,
            watch: None,
            last_words: LastWords::NotGranted,
            sessions: None,
            trace: None,
            proxy: proxied::ProxyState::None,
            closed_silently: false,
            validation: false,
        }
    }

    /// Traces this stream's handshake to `sink` (`enable_trace`).
    pub(crate) fn set_trace(&mut self, sink: Option<TraceFn>, label: String) {
        self.trace = sink.map(|sink| Box::new(Tracer::new(sink, label)));
    }

    /// Ties a `max_connections` place to this stream's life.
    pub(crate) fn set_permit(&mut self, permit: Option<Permit>) {
        self.permit = permit;
    }

    fn conn(&self) -> Option<&Engine> {
        match &self.tls {
            Tls::Open(c) => Some(c),
            _ => None,
        }
    }

    /// Runs the handshake if it has not completed.
    fn open(&mut self) -> Result<()> {
        match &self.tls {
            Tls::Open(c) if !c.is_handshaking() => Ok(()),
            _ => self.handshake(),
        }
    }

    fn read_app(&mut self, buf: &mut [u8]) -> Result<usize> {
        if self.asked_to_close_before_read() {
            return Err(self.closed_for_shutdown());
        }
        self.open()?;
        if buf.is_empty() {
            return Ok(0);
        }
        let read = self.read_by(buf, deadline_after(self.read_timeout));
        self.io.disarm(self.read_timeout, self.write_timeout);
        match read {
            // A shutdown woke the read (its socket's read side was shut):
            // what looks like the peer's end is ours.
            Ok(0) | Err(_) if self.is_shutting_down() => Err(self.closed_for_shutdown()),
            // The next request came as the shutdown closed the idle
            // connection: the shutdown was first.
            Ok(_) if self.closed_while_idle() => Err(self.closed_for_shutdown()),
            read => read,
        }
    }

    /// Reads, every socket read after the first bounded by what is left of
    /// `deadline` (the read timeout bounds the call, not one system call).
    fn read_by(&mut self, buf: &mut [u8], deadline: Option<Instant>) -> Result<usize> {
        let Tls::Open(conn) = &mut self.tls else {
            return Err(Error::handshake("the connection is not open"));
        };
        let after = self.read_timeout;
        let mut first = true;
        loop {
            let plain = conn.read(buf).inspect_err(|_| {
                // Tell the peer why, if an alert is queued.
                if self.write_failed.is_none() {
                    send_once(conn, &mut self.io);
                }
            })?;
            match plain {
                Plain::Closed => {
                    // close_notify: answer it unless half-open is allowed.
                    if !self.allow_half_open && !self.close_sent && self.write_failed.is_none() {
                        self.close_sent = true;
                        conn.send_close_notify();
                        let _ = flush_tls(conn, &mut self.io, None, Phase::Write, None, None);
                        let _ = self.io.shutdown_write();
                    }
                    return Ok(0);
                }
                Plain::Data(n) => {
                    self.io.release_if_idle();
                    conn.release_if_idle(self.io.in_bulk());
                    return Ok(n);
                }
                Plain::Empty => {}
            }
            // Replies rustls queued (KeyUpdate, alerts) go out first.
            if conn.wants_write() || self.io.layer_wants_write() {
                if let Some(reason) = &self.write_failed {
                    return Err(Error::write_broken(reason));
                }
                let wt = self.write_timeout;
                if let Err(e) = flush_tls(conn, &mut self.io, None, Phase::Write, wt, None) {
                    self.write_failed = Some(e.to_string().into());
                    return Err(e);
                }
            }
            if !first {
                self.io.arm_read(deadline, Phase::Read, after)?;
            }
            first = false;
            if self.io.pending().is_empty() && self.io.reads_direct() {
                // Straight into the connection's buffer (a 0 is end of
                // stream, which it records).
                let n = self.io.read_direct(
                    |sock, max| conn.read_tls(sock, max),
                    Phase::Read,
                    after,
                )?;
                if n == 0 {
                    continue;
                }
            } else if self.io.pending().is_empty() && self.io.fill(Phase::Read, after)? == 0 {
                conn.end();
                continue;
            } else {
                feed_pending(conn, &mut self.io)?;
            }
            if let Err(e) = decrypt(conn) {
                // Tell the peer why (rustls queued an alert).
                send_once(conn, &mut self.io);
                return Err(e);
            }
        }
    }

    fn write_app(&mut self, write: impl FnOnce(&mut Engine) -> io::Result<usize>) -> Result<usize> {
        if let Some(reason) = &self.write_failed {
            return Err(Error::write_broken(reason));
        }
        // An owner that closes the stream itself, told of the shutdown,
        // writes its last words: once. A write ends an idle mark, unless
        // the shutdown closed the connection first.
        if self.closed_while_idle() || self.is_shutting_down() {
            if self.last_words != LastWords::Granted {
                return Err(self.closed_for_shutdown());
            }
            self.last_words = LastWords::Spoken;
        }
        self.open()?;
        let Tls::Open(conn) = &mut self.tls else {
            return Err(Error::handshake("the connection is not open"));
        };
        let n = write(conn).map_err(|e| Error::io("write failed", e))?;
        self.flush_by(deadline_after(self.write_timeout))
            .map(|()| n)
            // Cut by the shutdown while sending: its error, not the peer's.
            .map_err(|e| {
                if self.is_shutting_down() {
                    Error::ShuttingDown
                } else {
                    e
                }
            })
    }

    /// Sends every queued record by `deadline`. A failure (a timeout
    /// included) may leave a record half-written, so it ends writing: every
    /// later write fails, and `close` sends no `close_notify`.
    fn flush_by(&mut self, deadline: Option<Instant>) -> Result<()> {
        if let Some(reason) = &self.write_failed {
            return Err(Error::write_broken(reason));
        }
        let Tls::Open(conn) = &mut self.tls else {
            return Ok(());
        };
        let wt = self.write_timeout;
        let flushed = flush_tls(conn, &mut self.io, None, Phase::Write, wt, deadline);
        self.io.disarm(self.read_timeout, wt);
        if let Err(e) = &flushed {
            self.write_failed = Some(e.to_string().into());
        }
        flushed
    }

    /// Sends `close_notify` and shuts the transport's write side (TCP FIN);
    /// reading goes on until the peer closes (a half-close). On a server
    /// stream whose handshake has not run, it runs first. Inside an
    /// `https://` proxy's TLS only the `close_notify` is sent: ending the
    /// proxy's TLS would end the tunnel both ways ([`close`](Self::close)
    /// ends it).
    pub fn shutdown_write(&mut self) -> Result<()> {
        let opened = self.open();
        if let (Ok(()), Tls::Open(conn)) = (&opened, &mut self.tls) {
            if !self.close_sent && self.write_failed.is_none() {
                self.close_sent = true;
                conn.send_close_notify();
                self.flush_by(deadline_after(self.write_timeout))?;
                if let Some(w) = &self.watch {
                    w.sent_close_notify();
                }
            }
        }
        let shut = self
            .io
            .shutdown_write()
            .map_err(|e| Error::io("shutting down the write side failed", e));
        opened.and(shut)
    }

    /// Sends `close_notify` and shuts the transport both ways. A server
    /// stream that has not begun its handshake is closed without one.
    pub fn close(&mut self) -> Result<()> {
        let sent = match self.tls {
            Tls::Accepting(_) | Tls::Starting(_) | Tls::Failed(_) => Ok(()),
            Tls::Open(_) => self.shutdown_write(),
        };
        if let (Some(layer), Tls::Open(conn)) = (self.io.layer.clone(), &mut self.tls) {
            // The end of the proxy's TLS too, once ours is out.
            if sent.is_ok() && self.write_failed.is_none() {
                layer.close();
                let deadline = deadline_after(self.write_timeout);
                let wt = self.write_timeout;
                let _ = flush_tls(conn, &mut self.io, None, Phase::Write, wt, deadline);
                self.io.disarm(self.read_timeout, wt);
            }
        }
        let _ = (self.io.ops.shutdown)(&self.io.sock, Shutdown::Both);
        match sent {
            Err(Error::Io { source, .. }) if source.kind() == io::ErrorKind::NotConnected => Ok(()),
            other => other,
        }
    }

    /// The transport.
    pub fn get_ref(&self) -> &S {
        &self.io.sock
    }

    /// The transport, mutably. Reading or writing it directly corrupts the
    /// TLS session.
    pub fn get_mut(&mut self) -> &mut S {
        &mut self.io.sock
    }
}

/// Writes every queued TLS record to the socket (through the tracer, if
/// any, and the proxy's TLS, if the stream runs inside it); each write
/// after the first is bounded by what is left of `deadline`.
fn flush_tls<S: Read + Write>(
    conn: &mut Engine,
    io: &mut Transport<S>,
    mut trace: Option<&mut Tracer>,
    phase: Phase,
    after: Option<Duration>,
    deadline: Option<Instant>,
) -> Result<()> {
    let mut first = true;
    while conn.wants_write() || io.layer_wants_write() {
        if !first {
            io.arm_write(deadline, phase, after)?;
        }
        first = false;
        let written = match &io.layer {
            // The records into the proxy's TLS (no I/O), then one write.
            Some(layer) => seal_all(conn, &**layer, trace.as_deref_mut())
                .and_then(|()| layer.send(&mut io.sock)),
            None => write_records(conn, &mut io.sock, trace.as_deref_mut()),
        };
        match written {
            Ok(0) => {
                return Err(Error::io(
                    format!("{phase} failed"),
                    io::Error::from(io::ErrorKind::WriteZero),
                ));
            }
            Ok(_) => {}
            Err(e) if e.kind() == io::ErrorKind::Interrupted => {}
            Err(e) => return Err(io_error(e, phase, after)),
        }
    }
    Ok(())
}

/// Sends what rustls queued (an alert) with one write, never waiting for
/// more: the connection is failing anyway.
fn send_once<S: Write>(conn: &mut Engine, io: &mut Transport<S>) {
    match &io.layer {
        Some(layer) => {
            if seal_all(conn, &**layer, None).is_ok() {
                let _ = layer.send(&mut io.sock);
            }
        }
        None => {
            let _ = conn.write_tls(&mut io.sock);
        }
    }
}

impl<S: Read + Write> Read for SecureStream<S> {
    fn read(&mut self, buf: &mut [u8]) -> io::Result<usize> {
        self.read_app(buf).map_err(io::Error::from)
    }
}

impl<S: Read + Write> Write for SecureStream<S> {
    fn write(&mut self, buf: &[u8]) -> io::Result<usize> {
        self.write_app(|c| c.write(buf)).map_err(io::Error::from)
    }

    /// Packs all the slices into as few TLS records as they fit, and sends
    /// them with one vectored system call where possible.
    fn write_vectored(&mut self, bufs: &[IoSlice<'_>]) -> io::Result<usize> {
        self.write_app(|c| c.write_vectored(bufs))
            .map_err(io::Error::from)
    }

    fn flush(&mut self) -> io::Result<()> {
        self.open()?;
        self.flush_by(deadline_after(self.write_timeout))?;
        Ok(())
    }
}

impl<S: fmt::Debug> fmt::Debug for SecureStream<S> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let state = match &self.tls {
            Tls::Accepting(_) | Tls::Starting(_) => "awaiting ClientHello",
            Tls::Open(c) if c.is_handshaking() => "handshaking",
            Tls::Open(_) => "open",
            Tls::Failed(_) => "failed",
        };
        f.debug_struct("SecureStream")
            .field("transport", &self.io.sock)
            .field("state", &state)
            .finish()
    }
}
