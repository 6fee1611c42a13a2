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
//! Nothing here reads peer bytes or decides trust.

use std::collections::BTreeMap;
use std::net::{Shutdown, TcpStream};
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Condvar, Mutex};
use std::time::Instant;

use crate::sync::lock;

/// The live connections of one listener.
#[derive(Default)]
pub(crate) struct Registry {
    live: Mutex<Live>,
    /// Notified whenever a connection ends.
    ended: Condvar,
}

#[derive(Default)]
struct Live {
    next: u64,
    entries: BTreeMap<u64, Arc<Entry>>,
}

/// One live connection.
struct Entry {
    /// A shutdown asked it to close.
    due: AtomicBool,
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
        let entry = Arc::new(Entry {
            due: AtomicBool::new(false),
            owner_closes: AtomicBool::new(false),
            sock: closable.then(|| sock.try_clone().ok()).flatten(),
        });
        let mut live = lock(&self.live);
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
    pub(crate) fn live(&self) -> usize {
        lock(&self.live).entries.len()
    }

    /// Waits until no connection is alive or `deadline` passes (`None`:
    /// no bound); whether none is left.
    pub(crate) fn wait_empty(&self, deadline: Option<Instant>) -> bool {
        let mut live = lock(&self.live);
        while !live.entries.is_empty() {
            let left = match deadline {
                Some(at) => at.saturating_duration_since(Instant::now()),
                None => std::time::Duration::from_secs(3600),
            };
            if left.is_zero() {
                return false;
            }
            live = self
                .ended
                .wait_timeout(live, left)
                .unwrap_or_else(|e| e.into_inner())
                .0;
        }
        true
    }

    /// Asks every live connection to close, waking the threads blocked in
    /// a read on them (`shutdown(2)` of the read side: their `recv(2)`
    /// returns 0). How many were asked, and how many of those can be woken.
    pub(crate) fn ask_all_to_close(&self) -> (usize, usize) {
        let entries: Vec<Arc<Entry>> = lock(&self.live).entries.values().cloned().collect();
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

    /// Shuts both directions of every connection still alive (their
    /// threads did not close them in time): a FIN without `close_notify`,
    /// and a thread blocked in `send(2)` wakes with an error. How many were
    /// alive, and how many of those were shut.
    pub(crate) fn cut_all(&self) -> (usize, usize) {
        let entries: Vec<Arc<Entry>> = lock(&self.live).entries.values().cloned().collect();
        let mut shut = 0;
        for entry in &entries {
            entry.due.store(true, Ordering::Release);
            if let Some(sock) = &entry.sock {
                shut += 1;
                let _ = sock.shutdown(Shutdown::Both);
            }
        }
        (entries.len(), shut)
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
}

impl Drop for Watch {
    fn drop(&mut self) {
        lock(&self.registry.live).entries.remove(&self.id);
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
    fn without_a_second_descriptor_a_connection_is_only_counted() {
        let registry = Arc::new(Registry::default());
        let (_client, server) = pair();
        let watch = registry.watch(&server, false);
        assert_eq!(registry.ask_all_to_close(), (1, 0));
        assert!(watch.due());
        assert_eq!(registry.cut_all(), (1, 0));
    }
}
