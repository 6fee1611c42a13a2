//! What a `SecureStream` does when its listener shuts down: its place in
//! the listener's registry, the idle mark that lets a shutdown close it at
//! once, and the close a shutdown asks for.

use std::io::{Read, Write};

use super::{LastWords, SecureStream, Tls};
use crate::error::Error;
use crate::net::registry::Watch;

impl<S: Read + Write> SecureStream<S> {
    /// Counts this stream among its listener's live connections.
    pub(crate) fn set_watch(&mut self, watch: Watch) {
        self.watch = Some(watch);
    }

    /// Its owner (a WebSocket) closes the stream itself when its listener
    /// shuts down, after its own last words (a 1001 close): the stream
    /// then only reports [`Error::ShuttingDown`].
    pub(crate) fn owner_closes_on_shutdown(&self) {
        if let Some(w) = &self.watch {
            w.set_owner_closes();
        }
    }

    /// Whether this stream's listener is shutting down and asked the
    /// stream to close (its grace period is over, or the stream was
    /// [idle](Self::set_idle)): its reads and writes
    /// fail with [`Error::ShuttingDown`] (a handler that wants to finish
    /// within the grace looks at
    /// [`StopHandle::is_stopped`](crate::StopHandle::is_stopped)). Always
    /// `false` for streams not accepted by a
    /// [`SecureListener`](crate::SecureListener).
    pub fn is_shutting_down(&self) -> bool {
        self.watch.as_ref().is_some_and(Watch::due)
    }

    /// Marks the connection idle: its handler has answered a request and
    /// waits for the peer's next one (a keep-alive connection between
    /// requests). When its listener shuts down
    /// ([`StopHandle::shutdown`](crate::StopHandle::shutdown)), an idle
    /// connection is closed at once (`close_notify`, then FIN; the blocked
    /// read fails with [`Error::ShuttingDown`]) instead of after the grace
    /// period, as Go's `Server.Shutdown`, Node's `server.close()` and
    /// Dart's `HttpServer.close()` close idle connections; marked during
    /// the grace period, it is closed at its next read or write (a thread
    /// that drops it first has finished). With
    /// [`BindOptions::close_on_shutdown(false)`](crate::BindOptions::close_on_shutdown)
    /// a thread already blocked in its read cannot be woken: the
    /// connection is closed at its next read or write.
    ///
    /// The mark ends (`set_idle(false)`, or on its own) as soon as a read
    /// returns bytes or a write is made: the connection is busy with a
    /// request again and gets the grace period. A request whose first
    /// bytes arrive in the instant the shutdown begins is either served or
    /// closed unread, never cut half-way (the client sees a clean close
    /// and may send it again, as to any server closing a keep-alive
    /// connection). Mark it after answering a request, not before the
    /// first (a client that has just connected may have its first request
    /// on the way; Go leaves a new connection alone for 5 s), and only when
    /// nothing of the next request waits in a buffer of the handler's (a
    /// `BufReader`'s is empty): a request already read is not seen by the
    /// shutdown; and after flushing what a `BufWriter` holds of the answer.
    /// [`split`](SecureStream::split) drops the mark. No effect before the
    /// handshake has completed (a new connection is not idle), nor on
    /// streams not accepted by a [`SecureListener`](crate::SecureListener).
    ///
    /// ```no_run
    /// # fn main() -> securenet::Result<()> {
    /// use std::io::{BufRead, BufReader, Write};
    /// # let listener = securenet::SecureListener::bind("127.0.0.1", 0, &securenet::SecurityContext::empty())?;
    /// listener.serve(|stream: securenet::SecureStream| -> securenet::Result<()> {
    ///     let mut reader = BufReader::new(stream);
    ///     let mut line = String::new();
    ///     loop {
    ///         line.clear();
    ///         if reader.read_line(&mut line)? == 0 {
    ///             return reader.into_inner().close();
    ///         }
    ///         reader.get_mut().write_all(line.as_bytes())?;
    ///         if reader.buffer().is_empty() {
    ///             // Answered, nothing of the next request read: between
    ///             // requests, a shutdown may close it at once.
    ///             reader.get_ref().set_idle(true);
    ///         }
    ///     }
    /// })
    /// # }
    /// ```
    pub fn set_idle(&self, idle: bool) {
        let open = matches!(&self.tls, Tls::Open(c) if !c.is_handshaking());
        if let (Some(w), true) = (&self.watch, open) {
            w.set_idle(idle);
        }
    }

    /// Whether a read is to close the stream instead: a shutdown asked, or
    /// the stream was marked idle during its grace period (closed now, not
    /// after waiting for a request).
    pub(super) fn asked_to_close_before_read(&self) -> bool {
        self.is_shutting_down() || self.watch.as_ref().is_some_and(Watch::closed_idle)
    }

    /// Whether a shutdown closed this connection while it was idle, before
    /// the bytes just read or to be written: they are not served.
    pub(super) fn closed_while_idle(&self) -> bool {
        self.watch.as_ref().is_some_and(|w| !w.busy())
    }

    /// On a shutdown's request: `close_notify` and FIN (unless the owner
    /// closes the stream itself), and the error that says why.
    #[inline(never)]
    pub(super) fn closed_for_shutdown(&mut self) -> Error {
        if !self.watch.as_ref().is_some_and(Watch::owner_closes) {
            let _ = self.close();
            // Sent before the request came (an answer to the peer's own
            // close_notify): it still counts as closed cleanly.
            if let (true, None, Some(w)) = (self.close_sent, &self.write_failed, &self.watch) {
                w.sent_close_notify();
            }
        } else if self.last_words == LastWords::NotGranted {
            self.last_words = LastWords::Granted;
        }
        Error::ShuttingDown
    }
}
