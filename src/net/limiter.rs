//! `max_connections`: the count of a listener's live streams, and the
//! connections still in their handshake that `serve` may drop to make room
//! for new ones (so clients that stall their handshake cannot keep out the
//! ones that would finish theirs).

use std::collections::VecDeque;
use std::fmt;
use std::net::{Shutdown, TcpStream};
use std::sync::{Arc, Condvar, Mutex, MutexGuard};

struct State {
    live: usize,
    stopped: bool,
    /// Connections counted in `live` whose handshake is still running, the
    /// oldest first, with a handle on each socket to shut it.
    pending: VecDeque<(u64, TcpStream)>,
    /// Pending connections shut down to make room, not yet told.
    evicted: Vec<u64>,
    next_id: u64,
}

/// Counts the live streams of a listener with `max_connections`.
pub(crate) struct Limiter {
    state: Mutex<State>,
    freed: Condvar,
    max: usize,
}

/// Held by each stream; dropping it frees a place (no I/O).
pub(crate) struct Permit(Arc<Limiter>);

impl Limiter {
    pub(crate) fn new(max: usize) -> Arc<Limiter> {
        Arc::new(Limiter {
            state: Mutex::new(State {
                live: 0,
                stopped: false,
                pending: VecDeque::new(),
                evicted: Vec::new(),
                next_id: 0,
            }),
            freed: Condvar::new(),
            max,
        })
    }

    fn lock(&self) -> MutexGuard<'_, State> {
        crate::sync::lock(&self.state)
    }

    /// Waits until fewer than `max` streams are alive, then takes a place;
    /// `None` once stopped. With `evict`, while full, the connection that
    /// has been in its handshake longest is shut down to make room.
    pub(crate) fn acquire(self: &Arc<Self>, evict: bool) -> Option<Permit> {
        let mut state = self.lock();
        while state.live >= self.max && !state.stopped {
            if evict {
                if let Some((id, oldest)) = state.pending.pop_front() {
                    // Its handshake fails at once and frees its place.
                    let _ = oldest.shutdown(Shutdown::Both);
                    state.evicted.push(id);
                }
            }
            state = self.freed.wait(state).unwrap_or_else(|e| e.into_inner());
        }
        if state.stopped {
            return None;
        }
        state.live += 1;
        Some(Permit(self.clone()))
    }

    /// Records a connection whose handshake is starting; its id is for
    /// [`handshake_over`](Self::handshake_over).
    pub(crate) fn handshake_started(&self, sock: &TcpStream) -> Option<u64> {
        let handle = sock.try_clone().ok()?;
        let mut state = self.lock();
        let id = state.next_id;
        state.next_id += 1;
        state.pending.push_back((id, handle));
        Some(id)
    }

    /// The handshake `id` is over; `true` if it was cut short to make room.
    pub(crate) fn handshake_over(&self, id: u64) -> bool {
        let mut state = self.lock();
        state.pending.retain(|(i, _)| *i != id);
        let before = state.evicted.len();
        state.evicted.retain(|i| *i != id);
        state.evicted.len() != before
    }

    pub(crate) fn max(&self) -> usize {
        self.max
    }

    /// Wakes every wait in `acquire`, for good.
    pub(crate) fn stop(&self) {
        self.lock().stopped = true;
        self.freed.notify_all();
    }
}

impl Drop for Permit {
    fn drop(&mut self) {
        let mut state = self.0.lock();
        state.live = state.live.saturating_sub(1);
        drop(state);
        self.0.freed.notify_all();
    }
}

impl fmt::Debug for Permit {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("Permit")
    }
}
