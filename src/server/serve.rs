//! Thread-per-connection serving: `SecureListener::serve` and `incoming`,
//! which survive running out of descriptors or memory (backing off and
//! reporting at most once a minute), make room under `max_connections` by dropping
//! connections stuck in their handshake, and end on a `StopHandle`.

use std::io;
use std::net::SocketAddr;
use std::sync::Arc;
use std::thread;
use std::time::{Duration, Instant};

use crate::error::{Error, Result, WebSocketErrorKind};
use crate::server::listener::{Accepted, SecureListener};
use crate::server::maps;
use crate::server::settings::{ClientErrorFn, HealthCheckFn};
use crate::stream::SecureStream;

/// A connection's thread body, and what starts it: `Builder::spawn`, or in
/// tests one that fails as an exhausted system does.
type Job = Box<dyn FnOnce() + Send + 'static>;
type Spawn = fn(thread::Builder, Job) -> io::Result<()>;

fn spawn(builder: thread::Builder, job: Job) -> io::Result<()> {
    builder.spawn(job).map(drop)
}

/// Reports a connection's failure with the client's address (`client`:
/// its PROXY header's, else the socket's peer, `peer`). Without a
/// callback, a WebSocket upgrade the handler refused on purpose
/// ([`WebSocketErrorKind::Refused`]) is logged at `info`: it is no failure
/// of the server, but it stays visible (an `Origin` outside
/// `allowed_origins` is what a cross-site hijacking attempt looks like).
fn report(on_error: &Option<ClientErrorFn>, err: &Error, client: SocketAddr, peer: SocketAddr) {
    let level = match err.websocket_kind() {
        Some(WebSocketErrorKind::Refused) => log::Level::Info,
        _ => log::Level::Warn,
    };
    match on_error {
        Some(f) => f(err, client, peer),
        None if client != peer => {
            log::log!(level, "connection from {client} (through {peer}): {err}");
        }
        None => log::log!(level, "connection from {peer}: {err}"),
    }
}

/// A connection that closed without sending anything: a health check.
fn health_check(on_check: &Option<HealthCheckFn>, peer: SocketAddr) {
    match on_check {
        Some(f) => f(peer),
        None => log::debug!("health check from {peer}: closed without sending anything"),
    }
}

/// What an `accept(2)` failure means for a server loop.
enum Failure {
    /// Out of descriptors or memory: wait for some to be freed.
    Exhausted,
    /// That connection only (aborted, reset, a network hiccup): go on.
    Transient,
    /// The listening socket itself is broken.
    Fatal,
}

fn classify(e: &io::Error) -> Failure {
    #[cfg(unix)]
    if let Some(code) = e.raw_os_error() {
        if [libc::EMFILE, libc::ENFILE, libc::ENOBUFS, libc::ENOMEM].contains(&code) {
            return Failure::Exhausted;
        }
        // accept(2) on Linux passes on these network errors of the pending
        // connection; they are to be treated like EAGAIN.
        if [
            libc::ECONNABORTED,
            libc::EPROTO,
            libc::EPERM,
            libc::ENETDOWN,
            libc::ENETUNREACH,
            libc::EHOSTUNREACH,
            libc::EHOSTDOWN,
            libc::ENOPROTOOPT,
            libc::EOPNOTSUPP,
            libc::ETIMEDOUT,
        ]
        .contains(&code)
        {
            return Failure::Transient;
        }
    }
    // accept() on Windows (Winsock): WSAEMFILE (no socket handles left)
    // and WSAENOBUFS (no buffer space) wait like EMFILE and ENOBUFS;
    // WSAECONNRESET and WSAECONNABORTED arrive as the kinds below.
    #[cfg(windows)]
    if let Some(code) = e.raw_os_error() {
        const WSAEMFILE: i32 = 10024;
        const WSAENOBUFS: i32 = 10055;
        if code == WSAEMFILE || code == WSAENOBUFS {
            return Failure::Exhausted;
        }
    }
    match e.kind() {
        io::ErrorKind::OutOfMemory => Failure::Exhausted,
        io::ErrorKind::ConnectionAborted
        | io::ErrorKind::ConnectionReset
        | io::ErrorKind::Interrupted
        | io::ErrorKind::WouldBlock
        | io::ErrorKind::TimedOut => Failure::Transient,
        _ => Failure::Fatal,
    }
}

/// The first wait after a failure for want of descriptors or memory, and
/// the longest: it doubles in between.
const FIRST_BACKOFF: Duration = Duration::from_millis(5);
const LAST_BACKOFF: Duration = Duration::from_secs(1);

/// How often a shortage that lasts (or keeps coming back) is reported.
const REPORT_EVERY: Duration = Duration::from_secs(60);

/// The state of a server loop's waits for something it ran out of.
#[derive(Debug)]
pub(crate) struct Backoff {
    delay: Duration,
    /// When a shortage was last reported, and which: the same one at most
    /// once a minute, even when it comes back after every connection (a
    /// server at its limit); another at once.
    reported: Option<(Instant, Shortage)>,
}

/// What a server loop ran out of, as far as reporting tells them apart.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Shortage {
    /// An accept failed so: its error kind and code.
    Accept(io::ErrorKind, Option<i32>),
    /// No room for a thread near `vm.max_map_count`.
    Mappings,
    /// A thread failed to start.
    Thread,
}

impl Default for Backoff {
    fn default() -> Self {
        Backoff {
            delay: FIRST_BACKOFF,
            reported: None,
        }
    }
}

impl Backoff {
    /// The shortage is over: the next wait is short again (the reports
    /// stay at most once a minute).
    fn ended(&mut self) {
        self.delay = FIRST_BACKOFF;
    }
}

/// What `serve` says when a thread for a connection fails to start.
const THREAD_FAILED: &str = "cannot start a thread for a connection; waiting, with backoff, \
                             before accepting more (raise kernel.pid_max, kernel.threads-max, \
                             the process's thread limit or its memory limit, or set \
                             max_connections below it)";

/// The wait after a thread failed to start, reported as the same shortage.
#[cold]
fn no_thread(why: &str) -> Error {
    Error::io(
        THREAD_FAILED,
        io::Error::new(io::ErrorKind::WouldBlock, why.to_owned()),
    )
}

/// Why `serve` waits near `vm.max_map_count` instead of accepting.
#[cold]
fn no_thread_room() -> Error {
    Error::io(
        "cannot start a thread for another connection; waiting, with backoff, before \
         accepting it",
        io::Error::new(
            io::ErrorKind::OutOfMemory,
            format!(
                "the process is within {} memory mappings of vm.max_map_count, where a new \
                 thread would abort it (each takes 4): raise vm.max_map_count (sysctl) or set \
                 BindOptions::max_connections below the room",
                maps::margin()
            ),
        ),
    )
}

impl SecureListener {
    /// The next connection for a server loop: failures of one connection
    /// are skipped, and running out of descriptors or memory waits (backing
    /// off, reported at most once a minute) until accepting works again. `None`
    /// once stopped; an error only if the listening socket is broken.
    fn accept_next(
        &self,
        evict: bool,
        backoff: &mut Backoff,
    ) -> Option<Result<(SecureStream, SocketAddr)>> {
        loop {
            match self.accept_one(evict) {
                Ok(accepted) => {
                    backoff.ended();
                    return Some(Ok(accepted));
                }
                Err(Accepted::Stopped) => return None,
                Err(Accepted::Failed(e)) => match classify(&e) {
                    Failure::Transient => {}
                    Failure::Fatal => return Some(Err(Error::io("accept failed", e))),
                    Failure::Exhausted => {
                        let shortage = Shortage::Accept(e.kind(), e.raw_os_error());
                        self.back_off(backoff, shortage, || {
                            Error::io(
                                "accept failed; retrying with backoff until it works again \
                                 (raise the descriptor limit, `ulimit -n`, or lower \
                                 max_connections)",
                                e,
                            )
                        });
                    }
                },
            }
        }
    }

    /// Waits after running out of something the process needs (each
    /// shortage reported to `on_accept_error` at once, then at most once a
    /// minute while it lasts), longer each time until it is over.
    fn back_off(&self, backoff: &mut Backoff, shortage: Shortage, err: impl FnOnce() -> Error) {
        let due = backoff
            .reported
            .is_none_or(|(at, last)| last != shortage || at.elapsed() >= REPORT_EVERY);
        if due {
            backoff.reported = Some((Instant::now(), shortage));
            let err = err();
            match &self.serve_settings().on_accept_error {
                Some(f) => f(&err),
                None => log::warn!("{err}"),
            }
        }
        self.stop_state().nap(backoff.delay);
        backoff.delay = (backoff.delay * 2).min(LAST_BACKOFF);
    }

    /// Room for one more handler thread: a thread started at the process's
    /// mapping limit would abort the process (maps.rs), so while there is
    /// none `serve` waits as it does for descriptors, before accepting, and
    /// clients wait in the listen backlog. `None` once stopped.
    fn thread_slot(
        &self,
        room: &mut maps::Room,
        backoff: &mut Backoff,
    ) -> Option<maps::ThreadSlot> {
        loop {
            if let Some(slot) = room.take() {
                return Some(slot);
            }
            if self.stop_state().is_stopped() {
                return None;
            }
            if room.capped() {
                self.back_off(backoff, Shortage::Thread, || {
                    no_thread(
                        "a thread failed to start; no new one for a second, or until one ends",
                    )
                });
            } else {
                self.back_off(backoff, Shortage::Mappings, no_thread_room);
            }
        }
    }

    /// Serves until stopped, one thread per connection: each accepted
    /// stream's handshake runs in its own thread, then `handler` gets the
    /// stream. A failed handshake or a handler's error goes to
    /// [`BindOptions::on_client_error`](crate::BindOptions::on_client_error)
    /// (or, without one, the [`log`](https://docs.rs/log) crate at `warn`)
    /// and serving goes on.
    ///
    /// It survives what a server in front of the internet meets: a
    /// connection reset before it was accepted is skipped; running out of
    /// descriptors or memory, or (on Linux) coming within a margin of
    /// `vm.max_map_count`, where one more thread would abort the process,
    /// backs off and goes on when they are freed
    /// ([`on_accept_error`](crate::BindOptions::on_accept_error) hears of
    /// it at most once a minute while it lasts); a thread that cannot be
    /// started (`kernel.pid_max`, `kernel.threads-max`, the process's
    /// thread limit) closes that connection and backs off too. With
    /// [`max_connections`](crate::BindOptions::max_connections), a new
    /// connection waits while that many streams are alive, but first the
    /// connection that has been in its handshake longest is dropped, so
    /// clients that stall their handshake cannot keep out one that would
    /// complete it (at most one connection beyond the limit is held, not
    /// yet served).
    ///
    /// Returns `Ok(())` once a [`StopHandle`](crate::StopHandle) from
    /// [`stop_handle`](Self::stop_handle) is stopped, and an error only if
    /// the listening socket itself fails.
    pub fn serve<F, E>(&self, handler: F) -> Result<()>
    where
        F: Fn(SecureStream) -> std::result::Result<(), E> + Send + Sync + 'static,
        E: Into<Error>,
    {
        self.serve_in(handler, maps::Room::new(), spawn)
    }

    /// [`serve`](Self::serve) with the room for threads and the way to
    /// start them given (tests).
    fn serve_in<F, E>(&self, handler: F, mut thread_room: maps::Room, spawn: Spawn) -> Result<()>
    where
        F: Fn(SecureStream) -> std::result::Result<(), E> + Send + Sync + 'static,
        E: Into<Error>,
    {
        let handler = Arc::new(handler);
        let settings = self.serve_settings().clone();
        // Two shortages, waited for apart: of what accepting needs
        // (descriptors, memory), and of room for threads.
        let mut backoff = Backoff::default();
        let mut threads = Backoff::default();
        loop {
            let Some(slot) = self.thread_slot(&mut thread_room, &mut threads) else {
                return Ok(());
            };
            let (mut stream, peer) = match self.accept_next(true, &mut backoff) {
                None => return Ok(()),
                Some(accepted) => accepted?,
            };
            let limiter = self.limiter().cloned();
            let pending = limiter
                .as_ref()
                .and_then(|l| l.handshake_started(stream.get_ref()));
            let handler = handler.clone();
            let on_error = settings.on_client_error.clone();
            let on_check = settings.on_health_check.clone();
            let running = self.stop_state().handler_started();
            let mut builder = thread::Builder::new().name(format!("securenet {peer}"));
            if let Some(size) = settings.stack_size {
                builder = builder.stack_size(size);
            }
            let spawned = spawn(
                builder,
                Box::new(move || {
                    let _running = (running, slot);
                    let mut shaken = stream.handshake();
                    let mut dropped = false;
                    if let (Some(l), Some(id)) = (&limiter, pending) {
                        if l.handshake_over(id) && shaken.is_err() {
                            dropped = true;
                            shaken = Err(Error::handshake(format!(
                                "dropped while still in its handshake, to make room for a new \
                             connection under max_connections({}): the client was too slow",
                                l.max()
                            )));
                        }
                    }
                    if !dropped && shaken.is_err() && stream.closed_silently() {
                        health_check(&on_check, peer);
                        return;
                    }
                    if shaken.is_err() && stream.was_validation() {
                        log::debug!(
                            "connection from {peer}: answered an ACME TLS-ALPN-01 validation"
                        );
                        return;
                    }
                    let client = stream.peer_addr().unwrap_or(peer);
                    match shaken.and_then(|()| handler(stream).map_err(Into::into)) {
                        Ok(()) => {}
                        // Closed by a shutdown: no failure of the client's.
                        Err(Error::ShuttingDown) => {
                            log::debug!("connection from {client}: closed by the shutdown");
                        }
                        Err(e) => report(&on_error, &e, client, peer),
                    }
                }),
            );
            match spawned {
                Ok(()) => threads.ended(),
                // Out of threads (pid_max, threads-max, RLIMIT_NPROC, a
                // cgroup's pids.max) or memory: this connection is closed,
                // and accepting waits before the next one.
                Err(e) => {
                    // The thread that would have ended its handshake's
                    // entry never ran: the entry (and its descriptor) goes.
                    if let (Some(l), Some(id)) = (self.limiter(), pending) {
                        l.handshake_over(id);
                    }
                    // No new thread until one ends (or the room is read
                    // again, a second later): the clients wait in the
                    // backlog instead of being accepted and closed.
                    thread_room.cap_at_running();
                    let (kind, detail) = (e.kind(), e.to_string());
                    report(
                        &settings.on_client_error,
                        &Error::io("cannot start a thread for the connection", e),
                        peer,
                        peer,
                    );
                    self.back_off(&mut threads, Shortage::Thread, || {
                        Error::io(THREAD_FAILED, io::Error::new(kind, detail))
                    });
                }
            }
        }
    }

    /// An iterator over accepted streams, as [`TcpListener::incoming`], that
    /// survives as [`serve`](Self::serve) does: failures of one connection
    /// are skipped and running out of descriptors or memory backs off. It
    /// ends once the listener is stopped, and yields an error only if the
    /// listening socket itself fails.
    ///
    /// [`TcpListener::incoming`]: std::net::TcpListener::incoming
    pub fn incoming(&self) -> Incoming<'_> {
        Incoming {
            listener: self,
            backoff: Backoff::default(),
        }
    }
}

/// The iterator of [`SecureListener::incoming`].
#[derive(Debug)]
pub struct Incoming<'a> {
    listener: &'a SecureListener,
    backoff: Backoff,
}

impl Iterator for Incoming<'_> {
    type Item = Result<SecureStream>;

    fn next(&mut self) -> Option<Self::Item> {
        self.listener
            .accept_next(false, &mut self.backoff)
            .map(|r| r.map(|(s, _)| s))
    }
}

#[cfg(test)]
mod tests;
