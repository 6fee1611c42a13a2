//! The connections a listener accepted and that are still alive, so a
//! shutdown can wait for them and then close the ones left (as Go's
//! `http.Server` tracks its connections for `Shutdown` and `Close`).
//!
//! Each entry holds a second descriptor of its connection's socket
//! (`dup(2)`, through `TcpStream::try_clone`): the thread that owns the
//! stream may be blocked in `recv(2)`, and only a `shutdown(2)` of that
//! socket from the stopping thread wakes it. The owning thread then sees
//! that its connection is due to close and sends `close_notify` itself (the
//! TLS state is its own); a thread that does not react within the close
//! period gets both directions shut (a FIN without `close_notify`).
//! A connection its owner marked idle (between requests) is asked at once,
//! when the shutdown begins, as Go's `Server.Shutdown` closes idle
//! connections: the mark and the request race through one compare and
//! swap, so a connection is either served (its next bytes came first) or
//! closed (the shutdown came first), never both.
//! Nothing here reads peer bytes or decides trust.

use std::collections::BTreeMap;
use std::net::{Shutdown, TcpStream};
use std::sync::atomic::{AtomicBool, AtomicU8, Ordering};
use std::sync::{Arc, Condvar, Mutex};
use std::time::Instant;

use crate::sync::{lock, wait_until};

/// The live connections of one listener.
#[derive(Default)]
pub(crate) struct Registry {
    live: Mutex<Live>,
    /// A shutdown is in its grace period: a connection marked idle now is
    /// closed at its next read or write. Apart from `live`'s lock, which a
    /// mark (once a request) does not take: the mark is stored, then this
    /// is read, while the shutdown sets this, then reads the marks
    /// (sequentially consistent both ways), so one of them sees the other.
    closing_idle: AtomicBool,
    /// Notified whenever a connection ends.
    ended: Condvar,
}

#[derive(Default)]
struct Live {
    next: u64,
    entries: BTreeMap<u64, Arc<Entry>>,
    /// A shutdown is under way: connections that end are counted.
    draining: bool,
    /// Connections registered since the shutdown began (accepted as the
    /// stop came), until it ends.
    late: usize,
    /// The shutdown asked every connection to close, or is over:
    /// connections registered from now on are asked at once (their first
    /// read or write closes them).
    closing: bool,
    /// The shutdown is over: nothing more is counted.
    over: bool,
    /// Connections that ended, since the shutdown began, before they were
    /// asked to close.
    finished: usize,
    /// Connections that sent `close_notify` on a shutdown's request.
    notified: usize,
    /// Of those, the ones asked because they were idle.
    closed_idle: usize,
    /// Connections asked to close that ended without `close_notify`.
    unclean: usize,
}

/// What happened to a listener's connections during a shutdown; see
/// [`ShutdownReport`](crate::ShutdownReport), which it becomes.
#[derive(Debug, Default, Clone, Copy, PartialEq, Eq)]
pub(crate) struct Outcome {
    pub(crate) open_at_stop: usize,
    pub(crate) finished: usize,
    pub(crate) closed: usize,
    pub(crate) closed_idle: usize,
    pub(crate) cut: usize,
    pub(crate) left_open: usize,
}

/// An entry's [`Entry::idle`]: busy (reading or writing a request, or
/// never marked), idle (waiting for the peer's next request), or closed
/// while idle by a shutdown.
const BUSY: u8 = 0;
const IDLE: u8 = 1;
const CLOSED_IDLE: u8 = 2;

/// One live connection.
struct Entry {
    /// [`BUSY`], [`IDLE`] or [`CLOSED_IDLE`].
    idle: AtomicU8,
    /// A shutdown asked it to close.
    due: AtomicBool,
    /// It sent `close_notify` on that request.
    notified: AtomicBool,
    /// Its owner sends its own last words first (a WebSocket's 1001 close)
    /// and then closes the stream: the stream only reports the shutdown.
    owner_closes: AtomicBool,
    /// The second descriptor; `None` if `dup(2)` failed or the listener
    /// does not close connections on shutdown (it is then only counted).
    sock: Option<TcpStream>,
}

/// A stream's place in its listener's registry; dropping it (with the
/// stream) ends the place and closes the second descriptor (no network
/// I/O).
pub(crate) struct Watch {
    id: u64,
    entry: Arc<Entry>,
    registry: Arc<Registry>,
}

impl Registry {
    /// Counts `sock`'s connection until the returned watch is dropped; with
    /// `closable`, keeps a second descriptor so a shutdown can wake it.
    pub(crate) fn watch(self: &Arc<Self>, sock: &TcpStream, closable: bool) -> Watch {
        let sock = closable.then(|| sock.try_clone().ok()).flatten();
        let mut live = lock(&self.live);
        let entry = Arc::new(Entry {
            idle: AtomicU8::new(BUSY),
            due: AtomicBool::new(live.closing),
            notified: AtomicBool::new(false),
            owner_closes: AtomicBool::new(false),
            sock,
        });
        if live.draining && !live.over {
            live.late += 1;
        }
        let id = live.next;
        live.next += 1;
        live.entries.insert(id, entry.clone());
        Watch {
            id,
            entry,
            registry: self.clone(),
        }
    }

    /// How many connections are alive.
    #[cfg(test)]
    pub(crate) fn live(&self) -> usize {
        lock(&self.live).entries.len()
    }

    /// A shutdown begins: from now on connections that end are counted.
    /// How many are alive.
    pub(crate) fn begin_shutdown(&self) -> usize {
        let mut live = lock(&self.live);
        // A second shutdown counts afresh; a connection that sent
        // close_notify in an earlier one and is still open is closed
        // already (nothing later counts it).
        live.late = 0;
        live.finished = 0;
        live.notified = live
            .entries
            .values()
            .filter(|e| e.notified.load(Ordering::Acquire))
            .count();
        live.closed_idle = 0;
        live.unclean = 0;
        live.over = false;
        live.draining = true;
        self.closing_idle.store(true, Ordering::SeqCst);
        live.entries.len()
    }

    /// The shutdown is over (`alive` connections were still open at its
    /// end, `shut` of them shut both ways): connections registered from
    /// now on are closed at their first read or write. What happened.
    pub(crate) fn end_shutdown(&self, open_at_stop: usize, alive: usize, shut: usize) -> Outcome {
        let mut live = lock(&self.live);
        live.closing = true;
        live.over = true;
        self.closing_idle.store(false, Ordering::SeqCst);
        let stuck = alive.saturating_sub(shut);
        Outcome {
            open_at_stop: open_at_stop + live.late,
            finished: live.finished,
            closed: live.notified,
            closed_idle: live.closed_idle,
            cut: live.unclean + shut,
            left_open: stuck,
        }
    }

    /// Waits until no connection is alive or `deadline` passes (`None`:
    /// no bound); whether none is left.
    pub(crate) fn wait_empty(&self, deadline: Option<Instant>) -> bool {
        wait_until(&self.ended, lock(&self.live), deadline, |live| {
            live.entries.is_empty()
        })
    }

    /// Asks every connection marked idle to close, as a shutdown begins
    /// (after [`begin_shutdown`](Self::begin_shutdown); its thread is woken
    /// as by [`ask_all_to_close`](Self::ask_all_to_close)); one whose next
    /// bytes came first is busy again and left to finish. How many were
    /// asked.
    pub(crate) fn close_idle(&self) -> usize {
        let entries: Vec<Arc<Entry>> = lock(&self.live).entries.values().cloned().collect();
        let mut asked = 0;
        for entry in &entries {
            if entry
                .idle
                .compare_exchange(IDLE, CLOSED_IDLE, Ordering::SeqCst, Ordering::SeqCst)
                .is_ok()
            {
                asked += 1;
                entry.due.store(true, Ordering::Release);
                if let Some(sock) = &entry.sock {
                    let _ = sock.shutdown(Shutdown::Read);
                }
            }
        }
        asked
    }

    /// Asks every live connection to close, waking the threads blocked in
    /// a read on them (`shutdown(2)` of the read side: their `recv(2)`
    /// returns 0). How many were asked, and how many of those can be woken.
    pub(crate) fn ask_all_to_close(&self) -> (usize, usize) {
        let entries: Vec<Arc<Entry>> = {
            let mut live = lock(&self.live);
            live.closing = true;
            // From here on every connection is asked: one marked idle now
            // is closed as any other (counted as `closed`).
            self.closing_idle.store(false, Ordering::SeqCst);
            live.entries.values().cloned().collect()
        };
        let mut wakeable = 0;
        for entry in &entries {
            entry.due.store(true, Ordering::Release);
            if let Some(sock) = &entry.sock {
                wakeable += 1;
                let _ = sock.shutdown(Shutdown::Read);
            }
        }
        (entries.len(), wakeable)
    }

    /// Shuts both directions of every connection still alive that has not
    /// sent `close_notify` (its thread did not get to it in time): a FIN
    /// without `close_notify`, and a thread blocked in `send(2)` wakes with
    /// an error. How many such were alive, and how many of those were shut
    /// (the others have no second descriptor).
    pub(crate) fn cut_all(&self) -> (usize, usize) {
        // Which sent close_notify is read under the lock it is set under:
        // each is counted there as closed, or here.
        let (entries, open): (Vec<Arc<Entry>>, Vec<bool>) = {
            let mut live = lock(&self.live);
            // From here on, what ends is not counted again: the report
            // counts these as cut or left open.
            live.over = true;
            live.entries
                .values()
                .map(|e| (e.clone(), !e.notified.load(Ordering::Acquire)))
                .unzip()
        };
        let (mut alive, mut shut) = (0, 0);
        for (entry, open) in entries.iter().zip(open) {
            entry.due.store(true, Ordering::Release);
            if !open {
                continue;
            }
            alive += 1;
            if let Some(sock) = &entry.sock {
                shut += 1;
                let _ = sock.shutdown(Shutdown::Both);
            }
        }
        (alive, shut)
    }
}

impl Watch {
    /// Whether a shutdown asked this connection to close.
    pub(crate) fn due(&self) -> bool {
        self.entry.due.load(Ordering::Acquire)
    }

    /// The stream's owner closes it itself on a shutdown (after its last
    /// words); the stream only reports it.
    pub(crate) fn set_owner_closes(&self) {
        self.entry.owner_closes.store(true, Ordering::Release);
    }

    /// Whether the owner closes the stream itself on a shutdown.
    pub(crate) fn owner_closes(&self) -> bool {
        self.entry.owner_closes.load(Ordering::Acquire)
    }

    /// The stream sent `close_notify` on a shutdown's request (counted
    /// once).
    pub(crate) fn sent_close_notify(&self) {
        if !self.due() {
            return;
        }
        // The mark and its count under one lock, which the shutdown's
        // counts (begin_shutdown, cut_all) read under.
        let mut live = lock(&self.registry.live);
        let first = !self.entry.notified.swap(true, Ordering::AcqRel);
        if first && live.draining && !live.over {
            // Closed as idle within the grace; once every connection is
            // asked, as any other.
            if self.entry.idle.load(Ordering::SeqCst) == CLOSED_IDLE && !live.closing {
                live.closed_idle += 1;
            } else {
                live.notified += 1;
            }
        }
    }

    /// Marks the connection idle (waiting for its peer's next request) or
    /// busy. Marked idle during a shutdown's grace period, it is closed
    /// at its next read or write ([`closed_idle`](Self::closed_idle)); a
    /// thread that drops it first has finished.
    pub(crate) fn set_idle(&self, idle: bool) {
        let mark = &self.entry.idle;
        if !idle {
            let _ = mark.compare_exchange(IDLE, BUSY, Ordering::SeqCst, Ordering::SeqCst);
            return;
        }
        if mark
            .compare_exchange(BUSY, IDLE, Ordering::SeqCst, Ordering::SeqCst)
            .is_ok()
            && self.registry.closing_idle.load(Ordering::SeqCst)
        {
            // The shutdown's scan may have been first; either closes it.
            let _ = mark.compare_exchange(IDLE, CLOSED_IDLE, Ordering::SeqCst, Ordering::SeqCst);
        }
    }

    /// Before a read: whether a shutdown closed this idle connection (it
    /// is then asked to close, as by the shutdown). The mark stays: the
    /// read that follows waits for the next request.
    pub(crate) fn closed_idle(&self) -> bool {
        let closed = self.entry.idle.load(Ordering::SeqCst) == CLOSED_IDLE;
        if closed {
            self.entry.due.store(true, Ordering::Release);
        }
        closed
    }

    /// Bytes came or go: an idle connection is busy again. `false` if a
    /// shutdown closed it while idle first (it is then asked to close, and
    /// the bytes are not served).
    pub(crate) fn busy(&self) -> bool {
        let mark = &self.entry.idle;
        match mark.compare_exchange(IDLE, BUSY, Ordering::SeqCst, Ordering::SeqCst) {
            Ok(_) | Err(BUSY) => true,
            Err(_) => {
                self.entry.due.store(true, Ordering::Release);
                false
            }
        }
    }
}

impl Drop for Watch {
    fn drop(&mut self) {
        let mut live = lock(&self.registry.live);
        live.entries.remove(&self.id);
        if live.draining && !live.over {
            if !self.due() {
                live.finished += 1;
            } else if !self.entry.notified.load(Ordering::Acquire) {
                live.unclean += 1;
            }
        }
        drop(live);
        self.registry.ended.notify_all();
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::io::Read;
    use std::net::TcpListener;
    use std::time::Duration;

    fn pair() -> (TcpStream, TcpStream) {
        let listener = TcpListener::bind("127.0.0.1:0").expect("bind");
        let client = TcpStream::connect(listener.local_addr().expect("addr")).expect("connect");
        let (server, _) = listener.accept().expect("accept");
        for s in [&client, &server] {
            s.set_read_timeout(Some(Duration::from_secs(10)))
                .expect("timeout");
        }
        (client, server)
    }

    #[test]
    fn a_watch_counts_until_dropped_and_asking_wakes_a_blocked_read() {
        let registry = Arc::new(Registry::default());
        let (_client, mut server) = pair();
        let watch = registry.watch(&server, true);
        assert_eq!(registry.live(), 1);
        assert!(!watch.due());
        let reader = std::thread::spawn(move || {
            let mut buf = [0u8; 8];
            server.read(&mut buf).map_err(|e| e.kind())
        });
        // The read may begin before or after the shutdown: it returns 0
        // either way.
        assert_eq!(registry.ask_all_to_close(), (1, 1));
        assert!(watch.due());
        assert_eq!(reader.join().expect("reader"), Ok(0));
        assert!(!registry.wait_empty(Some(Instant::now())));
        drop(watch);
        assert_eq!(registry.live(), 0);
        assert!(registry.wait_empty(Some(Instant::now())));
    }

    #[test]
    fn idle_entries_are_closed_first_and_the_mark_races_the_next_bytes() {
        let registry = Arc::new(Registry::default());
        let pairs: Vec<_> = (0..4).map(|_| pair()).collect();
        let watch = |i: usize| registry.watch(&pairs[i].1, true);
        let (idle, busy_again, marked_late, dropped) = (watch(0), watch(1), watch(2), watch(3));
        idle.set_idle(true);
        busy_again.set_idle(true);
        // Its next bytes came before the shutdown.
        assert!(busy_again.busy());
        assert_eq!(registry.begin_shutdown(), 4);
        assert_eq!(registry.close_idle(), 1);
        assert!(idle.due() && !busy_again.due() && !marked_late.due());
        // The bytes that came after: not served.
        assert!(!idle.busy());
        idle.sent_close_notify();
        // Marked idle during the grace: closed at its next read, not before.
        marked_late.set_idle(true);
        assert!(!marked_late.due());
        assert!(marked_late.closed_idle() && marked_late.due());
        marked_late.sent_close_notify();
        // Marked, then dropped by its thread without a read: finished.
        dropped.set_idle(true);
        assert!(!dropped.due());
        drop(dropped);
        // Once every connection is asked, a mark is counted as any close.
        assert_eq!(registry.ask_all_to_close(), (3, 3));
        busy_again.set_idle(true);
        busy_again.sent_close_notify();
        drop((idle, busy_again, marked_late));
        assert_eq!(
            registry.end_shutdown(4, 0, 0),
            Outcome {
                open_at_stop: 4,
                finished: 1,
                closed_idle: 2,
                closed: 1,
                ..Outcome::default()
            }
        );
    }

    #[test]
    fn a_second_shutdown_counts_what_the_first_closed_and_is_still_open() {
        let registry = Arc::new(Registry::default());
        let (_client, server) = pair();
        let watch = registry.watch(&server, true);
        registry.begin_shutdown();
        registry.ask_all_to_close();
        watch.sent_close_notify();
        assert_eq!(registry.cut_all(), (0, 0));
        let first = registry.end_shutdown(1, 0, 0);
        assert_eq!((first.open_at_stop, first.closed), (1, 1));
        // Its thread still holds the stream as a second shutdown begins.
        assert_eq!(registry.begin_shutdown(), 1);
        registry.ask_all_to_close();
        assert_eq!(registry.cut_all(), (0, 0));
        let second = registry.end_shutdown(1, 0, 0);
        assert_eq!((second.open_at_stop, second.closed), (1, 1), "{second:?}");
        drop(watch);
    }

    #[test]
    fn without_a_second_descriptor_a_connection_is_only_counted() {
        let registry = Arc::new(Registry::default());
        let (_client, server) = pair();
        let watch = registry.watch(&server, false);
        assert_eq!(registry.ask_all_to_close(), (1, 0));
        assert!(watch.due());
        assert_eq!(registry.cut_all(), (1, 0));
        assert_eq!(
            registry.end_shutdown(1, 1, 0),
            Outcome {
                open_at_stop: 1,
                left_open: 1,
                ..Outcome::default()
            }
        );
        // Registered after the shutdown: asked to close at once.
        let (_c2, s2) = pair();
        assert!(registry.watch(&s2, false).due());
    }
}
