//! `WebSocket::split`: a reader and a writer for two threads.
//!
//! The reader owes the peer pongs and close replies, but never waits for the
//! writer to send them: it queues them, and sends them itself only when the
//! writer is idle (`try_lock`); otherwise the writer sends them right after
//! the frame it is sending. The status lock is never held across I/O; the
//! writer's lock is held across a send, bounded by the write timeout.

use std::collections::VecDeque;
use std::io::{self, Read, Write};
use std::net::{Shutdown, TcpStream};
use std::sync::{Arc, Mutex, MutexGuard, TryLockError};
use std::time::Duration;

use super::deadline::{Bounded, deadline_after};
use super::frames::Op;
use super::message::{Incoming, Receiver, check_close_status, close_payload};
use super::{Message, ReadyState, Sender, WebSocket, WsStream, close_reason_for, timeout_as};
use crate::error::{Error, Phase, Result};
use crate::split::{ReadHalf, WriteHalf};

enum ReadSide {
    Plain(TcpStream),
    Tls(ReadHalf),
}

enum WriteSide {
    Plain(TcpStream),
    Tls(WriteHalf),
}

impl Read for ReadSide {
    fn read(&mut self, buf: &mut [u8]) -> io::Result<usize> {
        match self {
            ReadSide::Plain(s) => s.read(buf),
            ReadSide::Tls(s) => s.read(buf),
        }
    }
}

impl Write for WriteSide {
    fn write(&mut self, buf: &[u8]) -> io::Result<usize> {
        match self {
            WriteSide::Plain(s) => s.write(buf),
            WriteSide::Tls(s) => s.write(buf),
        }
    }

    fn flush(&mut self) -> io::Result<()> {
        match self {
            WriteSide::Plain(s) => s.flush(),
            WriteSide::Tls(s) => s.flush(),
        }
    }
}

impl ReadSide {
    fn set_read_timeout(&mut self, t: Option<Duration>) -> Result<()> {
        match self {
            ReadSide::Plain(s) => s
                .set_read_timeout(t)
                .map_err(|e| Error::bad_timeout("read", t, e)),
            ReadSide::Tls(s) => s.set_read_timeout(t),
        }
    }
}

impl WriteSide {
    fn set_write_timeout(&mut self, t: Option<Duration>) -> Result<()> {
        match self {
            WriteSide::Plain(s) => s
                .set_write_timeout(t)
                .map_err(|e| Error::bad_timeout("write", t, e)),
            WriteSide::Tls(s) => s.set_write_timeout(t),
        }
    }
}

/// A frame the reader owes the peer, sent by whoever holds the writer.
enum Owed {
    Pong(Vec<u8>),
    /// A close frame, after which the transport ends.
    Close(Vec<u8>),
    /// The transport ends (the close handshake is over, or the connection failed).
    End,
}

/// The state both halves see. Its lock is never held across I/O.
struct Status {
    state: ReadyState,
    close_code: Option<u16>,
    close_reason: Option<String>,
    owed: VecDeque<Owed>,
}

/// The writing end: held across blocking sends, by the writer or (only
/// when it is free) by the reader paying what it owes.
struct WriteEnd {
    side: WriteSide,
    send: Sender,
    write_timeout: Option<Duration>,
}

impl WriteEnd {
    fn send_frame(&mut self, op: Op, payload: &[u8]) -> Result<()> {
        let timeout = self.write_timeout;
        let mut io = Bounded::new(
            &mut self.side,
            deadline_after(timeout),
            (|_, _| Ok(()), |s: &mut WriteSide, t| s.set_write_timeout(t)),
            (None, timeout),
            true,
        );
        let sent = self.send.send(&mut io, op, payload);
        drop(io);
        sent.map_err(|e| timeout_as(e, Phase::Write, timeout))
    }

    fn end(&mut self) {
        match &mut self.side {
            WriteSide::Plain(s) => {
                let _ = s.shutdown(Shutdown::Both);
            }
            WriteSide::Tls(s) => {
                let _ = s.shutdown_write();
            }
        }
    }
}

struct Shared {
    status: Mutex<Status>,
    writer: Mutex<WriteEnd>,
}

fn lock<T>(m: &Mutex<T>) -> MutexGuard<'_, T> {
    m.lock().unwrap_or_else(|e| e.into_inner())
}

impl Shared {
    /// Sends what the reader owes, holding the writer.
    fn pay(&self, w: &mut WriteEnd) {
        loop {
            let Some(owed) = lock(&self.status).owed.pop_front() else {
                return;
            };
            let sent = match owed {
                Owed::Pong(p) => w.send_frame(Op::Pong, &p),
                Owed::Close(p) => w.send_frame(Op::Close, &p).and(Err(Error::Closed)),
                Owed::End => Err(Error::Closed),
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
            status.state = ReadyState::Closed;
            status.owed.clear();
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
            if lock(&self.status).owed.is_empty() {
                return;
            }
        }
    }

    fn owe(&self, owed: Owed) {
        lock(&self.status).owed.push_back(owed);
        self.pay_if_idle();
    }
}

/// The reading half of a split [`WebSocket`].
pub struct WsReader {
    side: ReadSide,
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

pub(crate) fn split(ws: WebSocket) -> Result<(WsReader, WsWriter)> {
    let (read, write) = match ws.stream {
        WsStream::Plain(s) => {
            let r = s
                .try_clone()
                .map_err(|e| Error::io("cloning the socket for split failed", e))?;
            (ReadSide::Plain(r), WriteSide::Plain(s))
        }
        WsStream::Tls(s) => {
            let (r, w) = s.split()?;
            (ReadSide::Tls(r), WriteSide::Tls(w))
        }
    };
    let shared = Arc::new(Shared {
        status: Mutex::new(Status {
            state: ws.state,
            close_code: ws.close_code,
            close_reason: ws.close_reason,
            owed: VecDeque::new(),
        }),
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
        if lock(&self.shared.status).state == ReadyState::Closed {
            return Err(Error::Closed);
        }
        let timeout = self.read_timeout;
        let mut io = Bounded::new(
            &mut self.side,
            deadline_after(timeout),
            (|s: &mut ReadSide, t| s.set_read_timeout(t), |_, _| Ok(())),
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
                let open = {
                    let mut status = lock(&self.shared.status);
                    let open = status.state == ReadyState::Open;
                    status.state = ReadyState::Closed;
                    open
                };
                match &e {
                    Error::WebSocket {
                        close_code: Some(code),
                        ..
                    } if open => {
                        let payload = close_payload(*code, close_reason_for(*code));
                        self.shared.owe(Owed::Close(payload));
                    }
                    _ => self.shared.owe(Owed::End),
                }
                return Err(e);
            }
        };
        match incoming {
            Incoming::Message(m) => Ok(m),
            Incoming::Pong(p) => Ok(Message::Pong(p)),
            Incoming::Ping(p) => {
                if lock(&self.shared.status).state == ReadyState::Open {
                    self.shared.owe(Owed::Pong(p.clone()));
                }
                Ok(Message::Ping(p))
            }
            Incoming::Close(status) => {
                let open = {
                    let mut shared = lock(&self.shared.status);
                    let open = shared.state == ReadyState::Open;
                    if let Some((code, reason)) = &status {
                        shared.close_code = Some(*code);
                        shared.close_reason = Some(reason.clone());
                    } else if shared.close_code.is_none() {
                        shared.close_code = Some(1005);
                    }
                    shared.state = ReadyState::Closed;
                    open
                };
                if open {
                    let payload = status
                        .as_ref()
                        .map(|(c, _)| close_payload(*c, ""))
                        .unwrap_or_default();
                    self.shared.owe(Owed::Close(payload));
                } else {
                    self.shared.owe(Owed::End);
                }
                Ok(Message::Close(status))
            }
        }
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
        if lock(&self.shared.status).state != ReadyState::Open {
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
        if !lock(&self.shared.status).owed.is_empty() {
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
        if payload.len() > 125 {
            return Err(Error::invalid_input(
                format!("{} bytes", payload.len()),
                "a ping carries at most 125 bytes",
            ));
        }
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
        if lock(&self.shared.status).state != ReadyState::Open {
            return Ok(());
        }
        let payload = status.map_or_else(Vec::new, |(c, r)| close_payload(c, r));
        if let Err(e) = w.send_frame(Op::Close, &payload) {
            self.shared.broken(&mut w);
            return Err(e);
        }
        let mut shared = lock(&self.shared.status);
        shared.state = ReadyState::Closing;
        if let Some((code, reason)) = status {
            shared.close_code = Some(code);
            shared.close_reason = Some(reason.to_owned());
        }
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
        lock(&self.shared.status).state
    }

    /// The close code, once closing.
    pub fn close_code(&self) -> Option<u16> {
        lock(&self.shared.status).close_code
    }
}
