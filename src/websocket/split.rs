//! `WebSocket::split`: a reader and a writer for two threads.
//!
//! The reader owes the peer pongs and close replies, but never waits for the
//! writer to send them: it queues them, and sends them itself only when the
//! writer is idle (`try_lock`); otherwise the writer sends them right after
//! the frame it is sending. The status lock is never held across I/O; the
//! writer's lock is held across a send, bounded by the write timeout.

use std::collections::VecDeque;
use std::sync::{Arc, Mutex, TryLockError};
use std::time::Duration;

use super::deadline::{Bounded, deadline_after};
use super::frames::{Op, check_ping};
use super::message::{Receiver, check_close_status, close_payload};
use super::state::{Reply, Status};
use super::stream::{WsRead, WsTransport, WsWrite};
use super::{Message, ReadyState, Sender, WebSocket, timeout_as};
use crate::error::{Error, Phase, Result};
use crate::sync::lock;

/// The state both halves see, and what the reader owes the peer (sent by
/// whoever holds the writer). Its lock is never held across I/O.
struct Shared {
    status: Mutex<(Status, VecDeque<Reply>)>,
    writer: Mutex<WriteEnd>,
}

/// The writing end: held across blocking sends, by the writer or (only
/// when it is free) by the reader paying what it owes.
struct WriteEnd {
    side: Box<dyn WsWrite>,
    send: Sender,
    write_timeout: Option<Duration>,
}

impl WriteEnd {
    fn send_frame(&mut self, op: Op, payload: &[u8]) -> Result<()> {
        let timeout = self.write_timeout;
        let mut io = Bounded::new(
            &mut self.side,
            deadline_after(timeout),
            (
                |_, _| Ok(()),
                |s: &mut Box<dyn WsWrite>, t| s.set_write_timeout(t),
            ),
            (None, timeout),
            true,
        );
        let sent = self.send.send(&mut io, op, payload);
        drop(io);
        sent.map_err(|e| timeout_as(e, Phase::Write, timeout))
    }

    fn end(&mut self) {
        self.side.end();
    }
}

impl Shared {
    /// Sends what the reader owes, holding the writer.
    fn pay(&self, w: &mut WriteEnd) {
        loop {
            let Some(owed) = lock(&self.status).1.pop_front() else {
                return;
            };
            let sent = match owed {
                Reply::Nothing => Ok(()),
                Reply::Pong(p) => w.send_frame(Op::Pong, &p),
                Reply::Close(p) => w.send_frame(Op::Close, &p).and(Err(Error::Closed)),
                Reply::End => Err(Error::Closed),
            };
            if sent.is_err() {
                self.broken(w);
                return;
            }
        }
    }

    /// A send failed or the connection ended: nothing more is written.
    fn broken(&self, w: &mut WriteEnd) {
        {
            let mut status = lock(&self.status);
            status.0.state = ReadyState::Closed;
            status.1.clear();
        }
        w.end();
    }

    /// The reader's way to pay: now, if the writer is idle; otherwise the
    /// writer pays right after the frame it is sending.
    fn pay_if_idle(&self) {
        loop {
            match self.writer.try_lock() {
                Ok(mut w) => self.pay(&mut w),
                Err(TryLockError::Poisoned(e)) => self.pay(&mut e.into_inner()),
                Err(TryLockError::WouldBlock) => return,
            }
            // Owed after we let go, while the writer was not looking.
            if lock(&self.status).1.is_empty() {
                return;
            }
        }
    }

    fn owe(&self, owed: Reply) {
        if matches!(owed, Reply::Nothing) {
            return;
        }
        lock(&self.status).1.push_back(owed);
        self.pay_if_idle();
    }

    fn state(&self) -> ReadyState {
        lock(&self.status).0.state
    }
}

/// The reading half of a split [`WebSocket`].
pub struct WsReader {
    side: Box<dyn WsRead>,
    recv: Receiver,
    shared: Arc<Shared>,
    read_timeout: Option<Duration>,
}

/// The writing half of a split [`WebSocket`].
pub struct WsWriter {
    shared: Arc<Shared>,
}

impl std::fmt::Debug for WsReader {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("WsReader").finish_non_exhaustive()
    }
}

impl std::fmt::Debug for WsWriter {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("WsWriter").finish_non_exhaustive()
    }
}

pub(crate) fn split<S: WsTransport>(ws: WebSocket<S>) -> Result<(WsReader, WsWriter)> {
    let (read, write) = ws.stream.into_ends()?;
    let shared = Arc::new(Shared {
        status: Mutex::new((ws.status, VecDeque::new())),
        writer: Mutex::new(WriteEnd {
            side: write,
            send: ws.send,
            write_timeout: ws.write_timeout,
        }),
    });
    Ok((
        WsReader {
            side: read,
            recv: ws.recv,
            shared: shared.clone(),
            read_timeout: ws.read_timeout,
        },
        WsWriter { shared },
    ))
}

impl WsReader {
    /// Reads the next message, as [`WebSocket::read`]: the read timeout
    /// bounds the whole call. It never waits for the writer: a pong or close
    /// reply it owes is sent at once if the writer is idle (within the
    /// write timeout), and otherwise by the writer after its current frame.
    pub fn read(&mut self) -> Result<Message> {
        if self.shared.state() == ReadyState::Closed {
            return Err(Error::Closed);
        }
        let timeout = self.read_timeout;
        let mut io = Bounded::new(
            &mut self.side,
            deadline_after(timeout),
            (
                |s: &mut Box<dyn WsRead>, t| s.set_read_timeout(t),
                |_, _| Ok(()),
            ),
            (timeout, None),
            true,
        );
        let incoming = self.recv.next(&mut io);
        drop(io);
        let incoming = match incoming {
            Ok(i) => i,
            Err(e) if e.is_timeout() => {
                return Err(timeout_as(e, Phase::Read, timeout));
            }
            Err(e) => {
                let reply = lock(&self.shared.status).0.failed(&e);
                self.shared.owe(reply);
                return Err(e);
            }
        };
        let (message, reply) = lock(&self.shared.status).0.received(incoming);
        self.shared.owe(reply);
        Ok(message)
    }

    /// Bounds each [`read`](Self::read) as a whole; `None` waits forever.
    pub fn set_read_timeout(&mut self, timeout: Option<Duration>) -> Result<()> {
        self.side.set_read_timeout(timeout)?;
        self.read_timeout = timeout;
        Ok(())
    }
}

impl WsWriter {
    fn send(&mut self, op: Op, payload: &[u8]) -> Result<()> {
        let mut w = lock(&self.shared.writer);
        self.shared.pay(&mut w);
        if self.shared.state() != ReadyState::Open {
            return Err(Error::Closed);
        }
        let sent = w.send_frame(op, payload);
        if sent.is_err() {
            // Part of the frame may be on the wire: nothing may follow it.
            self.shared.broken(&mut w);
            return sent;
        }
        self.shared.pay(&mut w);
        drop(w);
        if !lock(&self.shared.status).1.is_empty() {
            self.shared.pay_if_idle();
        }
        Ok(())
    }

    /// Sends a text message. A send that fails (a write timeout included)
    /// ends the connection: later sends fail with [`Error::Closed`].
    pub fn send_text(&mut self, text: &str) -> Result<()> {
        self.send(Op::Text, text.as_bytes())
    }

    /// Sends a binary message; a failed send ends the connection.
    pub fn send_binary(&mut self, data: &[u8]) -> Result<()> {
        self.send(Op::Binary, data)
    }

    /// Sends a ping (at most 125 bytes).
    pub fn ping(&mut self, payload: &[u8]) -> Result<()> {
        check_ping(payload)?;
        self.send(Op::Ping, payload)
    }

    /// Sends a close frame; the reader returns the peer's answer as
    /// [`Message::Close`].
    pub fn close(&mut self, status: Option<(u16, &str)>) -> Result<()> {
        if let Some((code, reason)) = status {
            check_close_status(code, reason)?;
        }
        let mut w = lock(&self.shared.writer);
        self.shared.pay(&mut w);
        if self.shared.state() != ReadyState::Open {
            return Ok(());
        }
        let payload = status.map_or_else(Vec::new, |(c, r)| close_payload(c, r));
        if let Err(e) = w.send_frame(Op::Close, &payload) {
            self.shared.broken(&mut w);
            return Err(e);
        }
        lock(&self.shared.status).0.closing(status);
        Ok(())
    }

    /// Bounds each send as a whole; `None` waits forever. A send that times
    /// out ends the connection.
    pub fn set_write_timeout(&mut self, timeout: Option<Duration>) -> Result<()> {
        let mut w = lock(&self.shared.writer);
        w.side.set_write_timeout(timeout)?;
        w.write_timeout = timeout;
        Ok(())
    }

    /// The connection's state.
    pub fn ready_state(&self) -> ReadyState {
        self.shared.state()
    }

    /// The close code, once closing.
    pub fn close_code(&self) -> Option<u16> {
        lock(&self.shared.status).0.close_code
    }
}
