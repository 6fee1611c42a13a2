//! [`StopHandle`]: ends a listener's `serve` or `incoming` from another
//! thread, promptly, and waits (with a bound) for the handlers still running.

use std::fmt;
use std::net::{IpAddr, Ipv4Addr, Ipv6Addr, Shutdown, SocketAddr, TcpListener, TcpStream};
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Condvar, Mutex, Weak};
use std::time::{Duration, Instant};

use crate::net::limiter::Limiter;
use crate::sync::lock;

/// What a listener and its stop handles share.
pub(crate) struct Stop {
    stopped: AtomicBool,
    /// Wakes a backoff wait in `serve` at once.
    nap: Mutex<()>,
    woken: Condvar,
    /// Handler threads of `serve` still running.
    running: Mutex<usize>,
    finished: Condvar,
    /// The listening socket, to wake `accept` (while the listener lives:
    /// a stop handle does not keep the port bound).
    listener: Weak<TcpListener>,
    limiter: Option<Arc<Limiter>>,
}

/// Ends [`SecureListener::serve`](crate::SecureListener::serve) and
/// [`SecureListener::incoming`](crate::SecureListener::incoming) from any
/// thread: `serve` returns `Ok(())` and `incoming` ends, within
/// milliseconds, without polling. Stopping is final: the listening socket
/// is shut down and later `accept` calls fail. Connections already handed
/// to handlers go on; [`stop_and_wait`](Self::stop_and_wait) waits for them.
/// Cloning gives another handle on the same listener.
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
    pub(crate) fn new(listener: &Arc<TcpListener>, limiter: Option<Arc<Limiter>>) -> Arc<Stop> {
        Arc::new(Stop {
            stopped: AtomicBool::new(false),
            nap: Mutex::new(()),
            woken: Condvar::new(),
            running: Mutex::new(0),
            finished: Condvar::new(),
            listener: Arc::downgrade(listener),
            limiter,
        })
    }

    pub(crate) fn is_stopped(&self) -> bool {
        self.stopped.load(Ordering::Acquire)
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
        if let Some(l) = self.listener.upgrade() {
            // Linux wakes a blocked accept(2) when its socket is shut down;
            // elsewhere, a connection to it does.
            let _ = socket2::SockRef::from(&*l).shutdown(Shutdown::Read);
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

    /// Counts a handler thread until the guard is dropped.
    pub(crate) fn handler_started(self: &Arc<Self>) -> Running {
        *lock(&self.running) += 1;
        Running(self.clone())
    }
}

/// A running handler of `serve`.
pub(crate) struct Running(Arc<Stop>);

impl Drop for Running {
    fn drop(&mut self) {
        let mut n = lock(&self.0.running);
        *n = n.saturating_sub(1);
        drop(n);
        self.0.finished.notify_all();
    }
}

impl StopHandle {
    /// Stops accepting: `serve` returns and `incoming` ends.
    pub fn stop(&self) {
        self.stop.stop();
    }

    /// Stops accepting, then waits up to `timeout` for the handlers that
    /// `serve` started to return. `true` if none is left running.
    pub fn stop_and_wait(&self, timeout: Duration) -> bool {
        self.stop();
        let deadline = Instant::now().checked_add(timeout);
        let mut n = lock(&self.stop.running);
        while *n > 0 {
            let left = match deadline {
                Some(at) => at.saturating_duration_since(Instant::now()),
                None => Duration::from_secs(3600),
            };
            if left.is_zero() {
                return false;
            }
            n = self
                .stop
                .finished
                .wait_timeout(n, left)
                .unwrap_or_else(|e| e.into_inner())
                .0;
        }
        true
    }

    /// Whether [`stop`](Self::stop) was called.
    pub fn is_stopped(&self) -> bool {
        self.stop.is_stopped()
    }

    /// How many handlers that `serve` started are still running.
    pub fn running(&self) -> usize {
        *lock(&self.stop.running)
    }
}
