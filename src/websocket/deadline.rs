//! Deadlines over a transport whose timeouts bound one system call each.
//!
//! A socket timeout (`SO_RCVTIMEO`, `SO_SNDTIMEO`) bounds one `read(2)` or
//! `write(2)`: a peer that sends a byte just before each one expires can
//! stretch a call without end. [`Bounded`] turns a call's timeout into a
//! deadline: before every read or write after the first, it sets the
//! transport's timeout to what is left, and fails with `TimedOut` once
//! nothing is left. It puts the user's timeouts back when dropped (a socket
//! option, no network I/O).

use std::io::{self, Read, Write};
use std::time::{Duration, Instant};

use crate::error::Result;
pub(crate) use crate::net::transport::deadline_after;

/// Sets a transport's read or write timeout.
pub(crate) type SetTimeout<S> = fn(&mut S, Option<Duration>) -> Result<()>;

/// One direction's timeout under a deadline.
struct Side<S> {
    set: SetTimeout<S>,
    /// The user's timeout, put back if changed.
    base: Option<Duration>,
    /// The transport already has a timeout no longer than the deadline, so
    /// the first call needs no change.
    first_is_bounded: bool,
    calls: u32,
    changed: bool,
}

impl<S> Side<S> {
    fn arm(&mut self, stream: &mut S, deadline: Option<Instant>) -> io::Result<()> {
        let Some(at) = deadline else {
            return Ok(());
        };
        let left = at.saturating_duration_since(Instant::now());
        if left.is_zero() {
            return Err(io::ErrorKind::TimedOut.into());
        }
        self.calls = self.calls.saturating_add(1);
        if self.calls > 1 || !self.first_is_bounded {
            (self.set)(stream, Some(left)).map_err(io::Error::from)?;
            self.changed = true;
        }
        Ok(())
    }

    fn restore(&mut self, stream: &mut S) {
        if self.changed {
            let _ = (self.set)(stream, self.base);
            self.changed = false;
        }
    }
}

/// A transport whose reads and writes all end by one deadline.
pub(crate) struct Bounded<'a, S> {
    stream: &'a mut S,
    deadline: Option<Instant>,
    read: Side<S>,
    write: Side<S>,
}

impl<'a, S> Bounded<'a, S> {
    /// `timeouts` are the transport's setters and the user's read and write
    /// timeouts; `first_is_bounded` says the transport's own timeouts already
    /// end no later than `deadline` (it was made from them).
    pub(crate) fn new(
        stream: &'a mut S,
        deadline: Option<Instant>,
        timeouts: (SetTimeout<S>, SetTimeout<S>),
        bases: (Option<Duration>, Option<Duration>),
        first_is_bounded: bool,
    ) -> Self {
        let side = |set, base| Side {
            set,
            base,
            first_is_bounded,
            calls: 0,
            changed: false,
        };
        Bounded {
            stream,
            deadline,
            read: side(timeouts.0, bases.0),
            write: side(timeouts.1, bases.1),
        }
    }
}

impl<S> Drop for Bounded<'_, S> {
    fn drop(&mut self) {
        self.read.restore(self.stream);
        self.write.restore(self.stream);
    }
}

impl<S: Read> Read for Bounded<'_, S> {
    fn read(&mut self, buf: &mut [u8]) -> io::Result<usize> {
        self.read.arm(self.stream, self.deadline)?;
        self.stream.read(buf)
    }
}

impl<S: Write> Write for Bounded<'_, S> {
    fn write(&mut self, buf: &[u8]) -> io::Result<usize> {
        self.write.arm(self.stream, self.deadline)?;
        self.stream.write(buf)
    }

    fn flush(&mut self) -> io::Result<()> {
        self.write.arm(self.stream, self.deadline)?;
        self.stream.flush()
    }
}
