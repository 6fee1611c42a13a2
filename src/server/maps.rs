//! How many handler threads the process's memory mappings leave room for
//! (Linux's `vm.max_map_count`).
//!
//! Each thread [`serve`](crate::SecureListener::serve) starts takes four
//! mappings: glibc's stack and its guard page, Rust's signal stack and its
//! guard page. When a thread starts with the process at the limit, the
//! thread is created but Rust's runtime cannot set up its signal stack: it
//! panics where it cannot unwind, and the whole process aborts (seen in
//! `cargo bench -p securenet-bench --bench scale`, with tungstenite's
//! server on raw rustls). So `serve` keeps its threads within the room the
//! limit leaves (read when it starts, and again at most once a second
//! when the room runs out), less a margin for everything else the process
//! maps.

use std::sync::atomic::{AtomicUsize, Ordering};
use std::time::{Duration, Instant};

/// Mappings one handler thread takes.
#[cfg(any(target_os = "linux", test))]
const PER_THREAD: usize = 4;

/// Mappings left to everything else: allocator arenas (glibc makes up to
/// eight per core), files, the user's own threads.
pub(crate) fn margin() -> usize {
    let cores = std::thread::available_parallelism().map_or(1, |n| n.get());
    1024 + 16 * cores
}

/// Handler threads `serve` runs in this process, over all its listeners.
/// Process-wide because the limit is the process's: per listener, two
/// listeners would each think they have all the room.
static THREADS: AtomicUsize = AtomicUsize::new(0);

/// The most handler threads the mappings leave room for, from the limit
/// and the mappings in use now (the running handlers' included, so they
/// are added back: they are counted in [`THREADS`]); `None` where there is
/// no such limit.
pub(crate) fn thread_room() -> Option<usize> {
    #[cfg(target_os = "linux")]
    {
        let limit = std::fs::read_to_string("/proc/sys/vm/max_map_count").ok()?;
        // Bytes, not text: a mapped file's name need not be UTF-8.
        let maps = std::fs::read("/proc/self/maps").ok()?;
        let used = maps.iter().filter(|b| **b == b'\n').count();
        Some(room(limit.trim().parse().ok()?, used) + THREADS.load(Ordering::Relaxed))
    }
    #[cfg(not(target_os = "linux"))]
    None
}

#[cfg(any(target_os = "linux", test))]
fn room(limit: usize, used: usize) -> usize {
    limit.saturating_sub(used).saturating_sub(margin()) / PER_THREAD
}

/// The room, read again at most once a second when it is taken: mappings
/// the process freed, or a limit an administrator raised, count again.
pub(crate) struct Room {
    room: Option<usize>,
    read_at: Instant,
    /// Capped at the threads running because one failed to start (see
    /// [`cap_at_running`](Room::cap_at_running)), until read again.
    capped: bool,
}

impl Room {
    pub(crate) fn new() -> Room {
        Room {
            room: thread_room(),
            read_at: Instant::now(),
            capped: false,
        }
    }

    /// A room with none left, as if just read: read again in a second
    /// (tests).
    #[cfg(test)]
    pub(crate) fn taken() -> Room {
        Room {
            room: Some(0),
            read_at: Instant::now(),
            capped: false,
        }
    }

    /// No more threads than run now, until the room is read again: a
    /// thread failed to start (a limit on threads, not on mappings).
    pub(crate) fn cap_at_running(&mut self) {
        self.room = Some(THREADS.load(Ordering::Relaxed));
        self.read_at = Instant::now();
        self.capped = true;
    }

    /// Whether the room is short because a thread failed to start, not
    /// for want of mappings.
    pub(crate) fn capped(&self) -> bool {
        self.capped
    }

    /// A slot for one more handler thread, or `None` when the room is
    /// taken.
    pub(crate) fn take(&mut self) -> Option<ThreadSlot> {
        if let Some(slot) = take_slot_in(&THREADS, self.room) {
            return Some(slot);
        }
        if self.read_at.elapsed() < Duration::from_secs(1) {
            return None;
        }
        *self = Room::new();
        take_slot_in(&THREADS, self.room)
    }
}

/// One handler thread, counted until dropped.
pub(crate) struct ThreadSlot(&'static AtomicUsize);

impl Drop for ThreadSlot {
    fn drop(&mut self) {
        self.0.fetch_sub(1, Ordering::Relaxed);
    }
}

fn take_slot_in(counter: &'static AtomicUsize, room: Option<usize>) -> Option<ThreadSlot> {
    let before = counter.fetch_add(1, Ordering::Relaxed);
    let slot = ThreadSlot(counter);
    if room.is_some_and(|r| before >= r) {
        return None;
    }
    Some(slot)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_room_is_what_the_limit_leaves_less_the_margin_in_fours() {
        assert_eq!(room(65_530, 40), (65_530 - 40 - margin()) / 4);
        assert_eq!(room(100, 40), 0, "below the margin: no room, no underflow");
        assert_eq!(room(0, usize::MAX), 0);
    }

    #[test]
    fn slots_past_the_room_are_refused_and_given_back() {
        static COUNTER: AtomicUsize = AtomicUsize::new(0);
        let room = Some(2);
        let one = take_slot_in(&COUNTER, room).expect("the first fits");
        let two = take_slot_in(&COUNTER, room).expect("the second fits");
        assert!(take_slot_in(&COUNTER, room).is_none(), "the room is taken");
        assert_eq!(
            COUNTER.load(Ordering::Relaxed),
            2,
            "a refusal is given back"
        );
        drop(one);
        assert!(
            take_slot_in(&COUNTER, room).is_some(),
            "room again once a thread ends"
        );
        drop(two);
        assert_eq!(COUNTER.load(Ordering::Relaxed), 0);
        assert!(
            take_slot_in(&COUNTER, None).is_some(),
            "no limit: always room"
        );
    }
}
