//! [`StopHandle`]: ends a listener's `serve` or `incoming` from another
//! thread, promptly, waits (with a bound) for the handlers and connections
//! still running, and shuts down as Go's `http.Server.Shutdown` then
//! `Close` do: stop accepting, let handlers see it, wait out a grace
//! period, then close what is left cleanly and count it.

use std::fmt;
use std::net::{IpAddr, Ipv4Addr, Ipv6Addr, Shutdown, SocketAddr, TcpListener, TcpStream};
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Condvar, Mutex, Weak};
use std::time::{Duration, Instant};

use crate::net::limiter::Limiter;
use crate::net::registry::Registry;
use crate::sync::{lock, wait_until};

/// How long [`StopHandle::shutdown`] gives the threads of connections it
/// asked to close to send `close_notify` and drop their streams, before it
/// shuts those sockets both ways.
pub const SHUTDOWN_CLOSE_PERIOD: Duration = Duration::from_secs(1);

/// How often `accept(2)` on a listening socket shared with another process
/// wakes to see a stop (its `SO_RCVTIMEO`): such a socket is never shut
/// down, as the other process accepts on it.
pub(crate) const ACCEPT_TICK: Duration = Duration::from_millis(200);

/// The wait after `accept(2)` on such a socket returned `WouldBlock`
/// (its timeout, or another holder made the socket non-blocking): no
/// busy loop either way.
pub(crate) const ACCEPT_NAP: Duration = Duration::from_millis(5);

/// Whose listening socket it is.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) enum Shared {
    /// Bound by this listener: stopping shuts it down, which wakes a
    /// blocked `accept(2)` at once (and, under `SO_REUSEPORT` with
    /// `net.ipv4.tcp_migrate_req`, moves its queued connections to the
    /// other sockets of the group).
    Own,
    /// Given to `from_fd` (inherited, socket activation): other processes
    /// hold the same socket, so stopping leaves it listening and
    /// `accept(2)` wakes every [`ACCEPT_TICK`] (Linux, Android) or at a
    /// connection.
    WithOthers,
}

/// What a listener and its stop handles share.
pub(crate) struct Stop {
    stopped: AtomicBool,
    /// Wakes a backoff wait in `serve` at once.
    nap: Mutex<()>,
    woken: Condvar,
    /// Handler threads of `serve` still running.
    running: Mutex<usize>,
    /// Threads inside `accept_one` (in `accept(2)`, or registering what it
    /// returned): a shutdown waits for them, so a connection accepted in
    /// the instant of the stop is counted and served within the grace.
    accepting: Mutex<usize>,
    finished: Condvar,
    /// The listening socket, to wake `accept` (while the listener lives:
    /// a stop handle does not keep the port bound).
    listener: Weak<TcpListener>,
    limiter: Option<Arc<Limiter>>,
    shared: Shared,
    /// The streams this listener accepted that are still alive.
    pub(crate) registry: Arc<Registry>,
}

/// Ends [`SecureListener::serve`](crate::SecureListener::serve) and
/// [`SecureListener::incoming`](crate::SecureListener::incoming) from any
/// thread: `serve` returns `Ok(())` and `incoming` ends, within
/// milliseconds, without polling. Stopping is final: the listening socket
/// is shut down and later `accept` calls fail (a socket shared with other
/// processes, from [`BindOptions::from_fd`](crate::BindOptions::from_fd),
/// is left listening for them; there the stop is seen within 200 ms on
/// Linux and Android, elsewhere at the next connection). Connections already handed
/// to handlers go on; [`stop_and_wait`](Self::stop_and_wait) waits for them,
/// and [`shutdown`](Self::shutdown) waits and then closes the ones left.
/// Handlers see a stop with [`is_stopped`](Self::is_stopped) or
/// [`wait_for_stop`](Self::wait_for_stop) on a clone of the handle.
/// Cloning gives another handle on the same listener.
///
/// | securenet | Go `net/http` | Node `net`/`http` |
/// |---|---|---|
/// | [`stop`](Self::stop) | `Listener.Close` | `server.close()` |
/// | [`is_stopped`](Self::is_stopped), [`wait_for_stop`](Self::wait_for_stop) | `RegisterOnShutdown`, a context's `Done` | the `'close'` event |
/// | [`shutdown(grace)`](Self::shutdown) | `Shutdown(ctx)`, then `Close` | `server.close()`, then `closeAllConnections()` |
#[derive(Clone)]
pub struct StopHandle {
    pub(crate) stop: Arc<Stop>,
}

impl fmt::Debug for StopHandle {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("StopHandle")
            .field("stopped", &self.is_stopped())
            .finish()
    }
}

impl Stop {
    pub(crate) fn new(
        listener: &Arc<TcpListener>,
        limiter: Option<Arc<Limiter>>,
        shared: Shared,
    ) -> Arc<Stop> {
        Arc::new(Stop {
            stopped: AtomicBool::new(false),
            nap: Mutex::new(()),
            woken: Condvar::new(),
            running: Mutex::new(0),
            accepting: Mutex::new(0),
            finished: Condvar::new(),
            listener: Arc::downgrade(listener),
            limiter,
            shared,
            registry: Arc::new(Registry::default()),
        })
    }

    pub(crate) fn is_stopped(&self) -> bool {
        self.stopped.load(Ordering::Acquire)
    }

    /// Whether `accept(2)` times out every [`ACCEPT_TICK`] to see a stop.
    pub(crate) fn ticks(&self) -> bool {
        self.shared == Shared::WithOthers
    }

    fn stop(&self) {
        if self.stopped.swap(true, Ordering::AcqRel) {
            return;
        }
        if let Some(l) = &self.limiter {
            l.stop();
        }
        drop(lock(&self.nap));
        self.woken.notify_all();
        if self.shared == Shared::WithOthers
            && cfg!(any(target_os = "linux", target_os = "android"))
        {
            // The accept timeout wakes it; the socket stays the others'.
            return;
        }
        if let Some(l) = self.listener.upgrade() {
            // Linux wakes a blocked accept(2) when its socket is shut down;
            // elsewhere, a connection to it does (on a socket shared with
            // others, the only wake on Windows, where a timeout does not
            // bound accept; the others may get that empty connection).
            if self.shared == Shared::Own {
                let _ = socket2::SockRef::from(&*l).shutdown(Shutdown::Read);
            }
            if let Ok(addr) = l.local_addr() {
                let ip = match addr.ip() {
                    IpAddr::V4(ip) if ip.is_unspecified() => IpAddr::V4(Ipv4Addr::LOCALHOST),
                    IpAddr::V6(ip) if ip.is_unspecified() => IpAddr::V6(Ipv6Addr::LOCALHOST),
                    ip => ip,
                };
                let wake = SocketAddr::new(ip, addr.port());
                let _ = TcpStream::connect_timeout(&wake, Duration::from_millis(100));
            }
        }
    }

    /// Sleeps for `d`, or less if stopped meanwhile.
    pub(crate) fn nap(&self, d: Duration) {
        let guard = lock(&self.nap);
        if !self.is_stopped() {
            let _ = self.woken.wait_timeout(guard, d);
        }
    }

    /// Counts a thread in `accept_one` until the guard is dropped.
    pub(crate) fn accepting(self: &Arc<Self>) -> Counted {
        Counted::new(self, |stop| &stop.accepting)
    }

    /// Waits until no thread is in `accept_one` or `deadline` passes.
    fn wait_accepting(&self, deadline: Option<Instant>) {
        wait_until(&self.finished, lock(&self.accepting), deadline, |n| *n == 0);
    }

    /// Counts a handler thread until the guard is dropped.
    pub(crate) fn handler_started(self: &Arc<Self>) -> Counted {
        Counted::new(self, |stop| &stop.running)
    }
}

/// A thread counted in one of `Stop`'s counters (a thread in
/// `accept_one`, a running handler of `serve`) until dropped; a shutdown
/// waiting for the counter to reach 0 is woken.
pub(crate) struct Counted {
    stop: Arc<Stop>,
    counter: fn(&Stop) -> &Mutex<usize>,
}

impl Counted {
    fn new(stop: &Arc<Stop>, counter: fn(&Stop) -> &Mutex<usize>) -> Counted {
        *lock(counter(stop)) += 1;
        Counted {
            stop: stop.clone(),
            counter,
        }
    }
}

impl Drop for Counted {
    fn drop(&mut self) {
        let mut n = lock((self.counter)(&self.stop));
        *n = n.saturating_sub(1);
        drop(n);
        self.stop.finished.notify_all();
    }
}

/// What [`StopHandle::shutdown`] did with the connections of its listener.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
#[non_exhaustive]
pub struct ShutdownReport {
    /// Connections alive when accepting stopped (with those accepted in
    /// the instant of the stop).
    pub open_at_stop: usize,
    /// Of those, the ones that ended within the grace period.
    pub finished: usize,
    /// Closed at once, as the shutdown began or as they became idle within
    /// the grace period, because their handlers had marked them idle
    /// between requests
    /// ([`SecureStream::set_idle`](crate::SecureStream::set_idle)): they
    /// sent `close_notify` (then FIN), as Go's `Server.Shutdown` closes
    /// idle connections.
    pub closed_idle: usize,
    /// Closed after the grace period by their own threads on request: they
    /// sent `close_notify` (then FIN).
    pub closed: usize,
    /// Ended after the grace period without `close_notify`: shut both ways
    /// after [`SHUTDOWN_CLOSE_PERIOD`] (their threads did not get to a
    /// read or write in time), or dropped by their threads without a
    /// close.
    pub cut: usize,
    /// Still open: their threads did not react, and the listener keeps no
    /// second descriptor to shut them
    /// ([`BindOptions::close_on_shutdown(false)`](crate::BindOptions::close_on_shutdown)).
    pub left_open: usize,
    /// `serve` handlers still running when `shutdown` returned (their
    /// connections are closed; the threads go on until they return).
    pub handlers_running: usize,
}

impl ShutdownReport {
    /// Whether every connection ended within the grace period: on its
    /// own, or closed while idle between requests.
    pub fn all_finished(&self) -> bool {
        self.finished + self.closed_idle == self.open_at_stop && self.handlers_running == 0
    }
}

impl StopHandle {
    /// Stops accepting: `serve` returns and `incoming` ends.
    pub fn stop(&self) {
        self.stop.stop();
    }

    /// Stops accepting, then waits up to `timeout` for the handlers that
    /// `serve` started to return. `true` if none is left running. With
    /// `false`, the handlers left go on with their connections open: nothing
    /// is closed ([`shutdown`](Self::shutdown) closes them).
    pub fn stop_and_wait(&self, timeout: Duration) -> bool {
        self.stop();
        self.wait_handlers(Instant::now().checked_add(timeout))
    }

    /// Waits until `serve`'s handlers have all returned or `deadline`
    /// passes (`None`: no bound).
    fn wait_handlers(&self, deadline: Option<Instant>) -> bool {
        let running = lock(&self.stop.running);
        wait_until(&self.stop.finished, running, deadline, |n| *n == 0)
    }

    /// Whether [`stop`](Self::stop) (or a shutdown) was called: a handler
    /// that checks it between requests can finish its work and return.
    pub fn is_stopped(&self) -> bool {
        self.stop.is_stopped()
    }

    /// Waits up to `timeout` for the listener to be stopped; `true` once it
    /// is. For a handler's own thread that has nothing else to wait on
    /// (a timer loop, a producer): it wakes as soon as the stop begins.
    pub fn wait_for_stop(&self, timeout: Duration) -> bool {
        let deadline = Instant::now().checked_add(timeout);
        let guard = lock(&self.stop.nap);
        wait_until(&self.stop.woken, guard, deadline, |()| self.is_stopped())
    }

    /// Shuts the listener down as Go's `Server.Shutdown` then `Close` do:
    ///
    /// 1. stops accepting (as [`stop`](Self::stop): `serve` returns,
    ///    `incoming` ends) and handlers see it
    ///    ([`is_stopped`](Self::is_stopped),
    ///    [`wait_for_stop`](Self::wait_for_stop));
    /// 2. closes at once the connections marked idle
    ///    ([`SecureStream::set_idle`](crate::SecureStream::set_idle): a
    ///    keep-alive connection between requests), and those marked later
    ///    at their next read or write, as Go closes idle connections; waits
    ///    up to `grace` for every connection this listener accepted
    ///    (through `serve`, `incoming` or `accept`) to be dropped and for
    ///    `serve`'s handlers to return;
    /// 3. then asks each connection still open to close: a thread blocked
    ///    reading it wakes, and its stream sends `close_notify` and FIN
    ///    (a WebSocket sends a 1001 "going away" close first) and fails
    ///    with [`Error::ShuttingDown`](crate::Error::ShuttingDown), as
    ///    does any later read or write;
    /// 4. gives those threads [`SHUTDOWN_CLOSE_PERIOD`] to do so, and
    ///    shuts both ways the sockets still open after it (a thread
    ///    computing, or blocked in a write to a peer that reads nothing).
    ///
    /// It returns within `grace` plus [`SHUTDOWN_CLOSE_PERIOD`] and says
    /// what happened to each connection: `finished + closed_idle + closed +
    /// cut + left_open == open_at_stop`. A connection accepted in the instant of
    /// the stop but counted only after `shutdown` returned is closed at
    /// its first read or write.
    ///
    /// A handler blocked reading its connection (a keep-alive connection
    /// waiting for its next request) cannot see the stop until it is asked
    /// to close: unless it marked its connection idle, such a connection
    /// takes the whole grace. Do not call `shutdown` from a
    /// handler of the same listener: it would wait for that handler, and
    /// then cut its connection. With
    /// [`BindOptions::close_on_shutdown(false)`](crate::BindOptions::close_on_shutdown)
    /// steps 2 to 4 cannot wake a blocked thread (an idle one is closed at
    /// its next read or write): such connections are counted as
    /// [`left_open`](ShutdownReport::left_open).
    pub fn shutdown(&self, grace: Duration) -> ShutdownReport {
        // Counting begins before the stop, which handlers may act on at
        // once (wait_for_stop): none ends uncounted.
        let registry = &self.stop.registry;
        let at_stop = registry.begin_shutdown();
        self.stop();
        // Idle connections first: nothing of theirs is under way.
        registry.close_idle();
        let deadline = Instant::now().checked_add(grace);
        // Threads that were accepting as the stop came register what they
        // got (counted as late), so it is served within the grace.
        self.stop.wait_accepting(deadline);
        let (mut alive, mut shut) = (0, 0);
        if !(registry.wait_empty(deadline) && self.wait_handlers(deadline)) {
            registry.ask_all_to_close();
            let close_by = Instant::now().checked_add(SHUTDOWN_CLOSE_PERIOD);
            if !registry.wait_empty(close_by) {
                (alive, shut) = registry.cut_all();
            }
        }
        let outcome = registry.end_shutdown(at_stop, alive, shut);
        let handlers_running = if self.wait_handlers(Some(Instant::now())) {
            0
        } else {
            self.running()
        };
        ShutdownReport {
            open_at_stop: outcome.open_at_stop,
            finished: outcome.finished,
            closed_idle: outcome.closed_idle,
            closed: outcome.closed,
            cut: outcome.cut,
            left_open: outcome.left_open,
            handlers_running,
        }
    }

    /// How many handlers that `serve` started are still running.
    pub fn running(&self) -> usize {
        *lock(&self.stop.running)
    }
}
