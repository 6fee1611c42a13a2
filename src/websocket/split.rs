//! `WebSocket::split`: a reader and a writer for two threads. The writer's
//! side is shared, so the reader can answer pings and close frames.

use std::io::{self, Read, Write};
use std::net::{Shutdown, TcpStream};
use std::sync::{Arc, Mutex, MutexGuard};

use super::frames::Op;
use super::message::{Incoming, Receiver, check_close_status, close_payload};
use super::{Message, ReadyState, Sender, WebSocket, WsStream};
use crate::error::{Error, Result};
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

struct Shared {
    side: WriteSide,
    send: Sender,
    state: ReadyState,
    close_code: Option<u16>,
    close_reason: Option<String>,
}

impl Shared {
    fn end(&mut self) {
        self.state = ReadyState::Closed;
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

fn lock(m: &Mutex<Shared>) -> MutexGuard<'_, Shared> {
    m.lock().unwrap_or_else(|e| e.into_inner())
}

/// The reading half of a split [`WebSocket`].
pub struct WsReader {
    side: ReadSide,
    recv: Receiver,
    shared: Arc<Mutex<Shared>>,
}

/// The writing half of a split [`WebSocket`].
pub struct WsWriter {
    shared: Arc<Mutex<Shared>>,
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
    let shared = Arc::new(Mutex::new(Shared {
        side: write,
        send: ws.send,
        state: ws.state,
        close_code: ws.close_code,
        close_reason: ws.close_reason,
    }));
    Ok((
        WsReader {
            side: read,
            recv: ws.recv,
            shared: shared.clone(),
        },
        WsWriter { shared },
    ))
}

impl WsReader {
    /// Reads the next message, as [`WebSocket::read`].
    pub fn read(&mut self) -> Result<Message> {
        if lock(&self.shared).state == ReadyState::Closed {
            return Err(Error::Closed);
        }
        let incoming = match self.recv.next(&mut self.side) {
            Ok(i) => i,
            Err(e) if e.is_timeout() => return Err(e),
            Err(e) => {
                let mut shared = lock(&self.shared);
                if let Error::WebSocket {
                    close_code: Some(code),
                    ..
                } = &e
                {
                    if shared.state == ReadyState::Open {
                        let Shared { side, send, .. } = &mut *shared;
                        let _ = send.send(side, Op::Close, &close_payload(*code, ""));
                    }
                }
                shared.end();
                return Err(e);
            }
        };
        match incoming {
            Incoming::Message(m) => Ok(m),
            Incoming::Pong(p) => Ok(Message::Pong(p)),
            Incoming::Ping(p) => {
                let mut shared = lock(&self.shared);
                if shared.state == ReadyState::Open {
                    let Shared { side, send, .. } = &mut *shared;
                    send.send(side, Op::Pong, &p)?;
                }
                Ok(Message::Ping(p))
            }
            Incoming::Close(status) => {
                let mut shared = lock(&self.shared);
                if shared.state == ReadyState::Open {
                    let payload = status
                        .as_ref()
                        .map(|(c, _)| close_payload(*c, ""))
                        .unwrap_or_default();
                    let Shared { side, send, .. } = &mut *shared;
                    let _ = send.send(side, Op::Close, &payload);
                }
                if let Some((code, reason)) = &status {
                    shared.close_code = Some(*code);
                    shared.close_reason = Some(reason.clone());
                }
                shared.end();
                Ok(Message::Close(status))
            }
        }
    }
}

impl WsWriter {
    fn send(&mut self, op: Op, payload: &[u8]) -> Result<()> {
        let mut shared = lock(&self.shared);
        if shared.state != ReadyState::Open {
            return Err(Error::Closed);
        }
        let Shared { side, send, .. } = &mut *shared;
        send.send(side, op, payload)
    }

    /// Sends a text message.
    pub fn send_text(&mut self, text: &str) -> Result<()> {
        self.send(Op::Text, text.as_bytes())
    }

    /// Sends a binary message.
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
        let mut shared = lock(&self.shared);
        if shared.state != ReadyState::Open {
            return Ok(());
        }
        let payload = status.map_or_else(Vec::new, |(c, r)| close_payload(c, r));
        let Shared { side, send, .. } = &mut *shared;
        send.send(side, Op::Close, &payload)?;
        shared.state = ReadyState::Closing;
        Ok(())
    }

    /// The connection's state.
    pub fn ready_state(&self) -> ReadyState {
        lock(&self.shared).state
    }

    /// The close code, once closing.
    pub fn close_code(&self) -> Option<u16> {
        lock(&self.shared).close_code
    }
}
