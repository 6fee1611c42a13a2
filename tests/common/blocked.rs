//! Knowing, without sleeping, that a thread is blocked in a socket read:
//! Linux names each thread in `/proc/thread-self`, and
//! `/proc/self/task/TID/syscall` gives the system call a thread is blocked
//! in. The number of the call `TcpStream::read` blocks in is learned once
//! from a thread blocked on a socket that never receives, so nothing here
//! depends on the architecture. Elsewhere (no `/proc`), `None`: the caller
//! says it could not check.

use std::io::Read;
use std::net::{TcpListener, TcpStream};
use std::path::{Path, PathBuf};
use std::sync::OnceLock;
use std::sync::mpsc;
use std::thread;
use std::time::Instant;

use super::IO_TIMEOUT;

/// The calling thread, as `/proc/self/task/TID`.
pub fn this_thread() -> Option<PathBuf> {
    let link = std::fs::read_link("/proc/thread-self").ok()?;
    let tid = link.file_name()?.to_owned();
    Some(PathBuf::from("/proc/self/task").join(tid))
}

/// The system call `thread` is blocked in (its number), if it is asleep.
fn blocked_in(thread: &Path) -> Option<String> {
    let stat = std::fs::read_to_string(thread.join("stat")).ok()?;
    // The state follows the command name in parentheses.
    let state = stat.rsplit_once(')')?.1.split_whitespace().next()?;
    if state != "S" {
        return None;
    }
    let syscall = std::fs::read_to_string(thread.join("syscall")).ok()?;
    let nr = syscall.split_whitespace().next()?;
    (nr != "running" && nr != "-1").then(|| nr.to_owned())
}

/// The number of the system call a blocking socket read sleeps in.
fn read_syscall() -> Option<String> {
    static NR: OnceLock<Option<String>> = OnceLock::new();
    NR.get_or_init(|| {
        let listener = TcpListener::bind("127.0.0.1:0").ok()?;
        let mut sock = TcpStream::connect(listener.local_addr().ok()?).ok()?;
        sock.set_read_timeout(Some(IO_TIMEOUT)).ok()?;
        let (peer, _) = listener.accept().ok()?;
        let (tx, rx) = mpsc::channel();
        let reader = thread::spawn(move || {
            let _ = tx.send(this_thread());
            let _ = sock.read(&mut [0u8; 1]);
        });
        let thread = rx.recv().ok()??;
        let start = Instant::now();
        let mut nr = None;
        while nr.is_none() && start.elapsed() < IO_TIMEOUT {
            nr = blocked_in(&thread);
            thread::yield_now();
        }
        drop(peer); // wakes the reader with end of stream
        let _ = reader.join();
        nr
    })
    .clone()
}

/// Waits until `thread` is blocked in a socket read. `Some(true)` once it
/// is, `Some(false)` if it was not within `IO_TIMEOUT`, `None` where this
/// cannot be known.
pub fn wait_until_blocked_in_read(thread: &Path) -> Option<bool> {
    let nr = read_syscall()?;
    let start = Instant::now();
    while start.elapsed() < IO_TIMEOUT {
        if blocked_in(thread).as_deref() == Some(nr.as_str()) {
            return Some(true);
        }
        thread::yield_now();
    }
    Some(false)
}
