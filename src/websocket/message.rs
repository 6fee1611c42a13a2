//! Messages: reassembling frames into messages (with control frames
//! between fragments), inflating, checking UTF-8 and close frames.

use std::io::Read;

use super::deflate::Inflater;
use super::frames::{FrameReader, Header, Op, protocol, too_big};
use crate::error::{Error, Result, WebSocketErrorKind};

/// A WebSocket message. More kinds may be added: match with a `_` arm.
#[derive(Debug, Clone, PartialEq, Eq)]
#[non_exhaustive]
pub enum Message {
    /// A text message (valid UTF-8).
    Text(String),
    /// A binary message.
    Binary(Vec<u8>),
    /// A ping from the peer (already answered with a pong).
    Ping(Vec<u8>),
    /// A pong from the peer.
    Pong(Vec<u8>),
    /// The peer's close frame: its code and reason, if it sent one.
    Close(Option<(u16, String)>),
}

/// The connection's state, as Dart's `WebSocket.readyState`.
#[non_exhaustive]
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ReadyState {
    /// The handshake is under way.
    Connecting,
    /// Messages flow.
    Open,
    /// A close frame was sent; the peer's is awaited.
    Closing,
    /// Closed.
    Closed,
}

/// What the receiver read.
pub(crate) enum Incoming {
    Message(Message),
    Ping(Vec<u8>),
    Pong(Vec<u8>),
    Close(Option<(u16, String)>),
}

/// A data message being reassembled.
pub(crate) struct Partial {
    text: bool,
    compressed: bool,
    /// The message so far (inflated, if compressed).
    data: Vec<u8>,
    /// How much of `data` is known to be valid UTF-8 (text only), so each
    /// fragment is checked once.
    checked: usize,
    /// Bytes received on the wire for this message.
    wire: usize,
}

/// Reads messages.
pub(crate) struct Receiver {
    pub(crate) frames: FrameReader,
    pub(crate) inflater: Option<Inflater>,
    pub(crate) partial: Option<Partial>,
    /// A control frame's payload while it arrives (at most 125 bytes).
    pub(crate) control: Vec<u8>,
    /// `max_message_size`: a message after reassembly and inflation.
    pub(crate) max: usize,
    /// `max_frame_size`: one frame's payload.
    pub(crate) max_frame: usize,
}

fn too_big_message(max: usize) -> Error {
    too_big(format!("a message is over max_message_size ({max} bytes)"))
}

/// Advances `checked` over the valid UTF-8 in `data`: an incomplete
/// sequence at the end waits for more unless `complete`.
fn check_utf8(data: &[u8], checked: &mut usize, complete: bool) -> Result<()> {
    let rest = data.get(*checked..).unwrap_or_default();
    match std::str::from_utf8(rest) {
        Ok(_) => *checked = data.len(),
        Err(e) if e.error_len().is_none() && !complete => *checked += e.valid_up_to(),
        Err(_) => return Err(invalid_utf8()),
    }
    Ok(())
}

impl Receiver {
    /// Reads until a whole message or control frame is in. A read that
    /// fails with a timeout keeps what arrived; calling again goes on.
    pub(crate) fn next<R: Read>(&mut self, r: &mut R) -> Result<Incoming> {
        loop {
            let (header, fresh) = self.frames.header(r, self.max_frame)?;
            if fresh {
                self.begin(&header)?;
            }
            if header.op.is_control() {
                let control = &mut self.control;
                self.frames.payload(r, |piece| {
                    control.extend_from_slice(piece);
                    Ok(())
                })?;
                let payload = std::mem::take(&mut self.control);
                return Ok(match header.op {
                    Op::Ping => Incoming::Ping(payload),
                    Op::Pong => Incoming::Pong(payload),
                    _ => Incoming::Close(parse_close(&payload)?),
                });
            }
            let Receiver {
                frames,
                inflater,
                partial,
                max,
                ..
            } = self;
            let Some(p) = partial.as_mut() else {
                return Err(protocol("a continuation frame with no message to continue"));
            };
            let max = *max;
            frames.payload(r, |piece| {
                match (p.compressed, inflater.as_mut()) {
                    (true, Some(inflater)) => inflater.feed(piece, &mut p.data, max)?,
                    _ => p.data.extend_from_slice(piece),
                }
                // Text fails fast, as each piece arrives (each byte is
                // checked once).
                if p.text {
                    check_utf8(&p.data, &mut p.checked, false)?;
                }
                Ok(())
            })?;
            if !header.fin {
                continue;
            }
            let p = partial
                .take()
                .ok_or_else(|| protocol("no message to finish"))?;
            return self.finish(p);
        }
    }

    /// Checks a new frame against the message it begins or continues.
    fn begin(&mut self, header: &Header) -> Result<()> {
        match header.op {
            Op::Text | Op::Binary => {
                if self.partial.is_some() {
                    return Err(protocol(
                        "a new message began before the previous one was finished",
                    ));
                }
                if header.rsv1 && self.inflater.is_none() {
                    return Err(protocol("RSV1 is set but permessage-deflate is not in use"));
                }
                if header.len > self.max {
                    return Err(too_big_message(self.max));
                }
                self.partial = Some(Partial {
                    text: header.op == Op::Text,
                    compressed: header.rsv1,
                    data: Vec::new(),
                    checked: 0,
                    wire: header.len,
                });
            }
            Op::Continue => {
                let Some(p) = self.partial.as_mut() else {
                    return Err(protocol("a continuation frame with no message to continue"));
                };
                if header.rsv1 {
                    return Err(protocol("RSV1 is set on a continuation frame"));
                }
                p.wire = p
                    .wire
                    .checked_add(header.len)
                    .filter(|&w| w <= self.max)
                    .ok_or_else(|| too_big_message(self.max))?;
            }
            Op::Close | Op::Ping | Op::Pong => self.control.clear(),
        }
        Ok(())
    }

    fn finish(&mut self, mut p: Partial) -> Result<Incoming> {
        if p.compressed {
            match &mut self.inflater {
                Some(inflater) => inflater.finish(&mut p.data, self.max)?,
                None => return Err(protocol("a compressed message without permessage-deflate")),
            }
        }
        self.frames.shrink();
        // Growing as the message arrived (doubling, never to the length a
        // header announced) can leave up to twice its size allocated; the
        // spare goes back before the message is handed over.
        if p.data.capacity() - p.data.len() > p.data.len() / 4 {
            p.data.shrink_to_fit();
        }
        Ok(Incoming::Message(if p.text {
            check_utf8(&p.data, &mut p.checked, true)?;
            Message::Text(String::from_utf8(p.data).map_err(|_| invalid_utf8())?)
        } else {
            Message::Binary(p.data)
        }))
    }
}

fn invalid_utf8() -> Error {
    Error::websocket(
        WebSocketErrorKind::Protocol,
        "a text message is not valid UTF-8",
        Some(1007),
    )
}

/// Close codes a peer may send (RFC 6455 7.4, as the Autobahn test suite
/// checks them).
fn valid_close_code(code: u16) -> bool {
    matches!(code, 1000..=1003 | 1007..=1011 | 3000..=4999)
}

fn parse_close(payload: &[u8]) -> Result<Option<(u16, String)>> {
    match payload.len() {
        0 => Ok(None),
        1 => Err(protocol("a close frame with a 1-byte payload")),
        _ => {
            let code = u16::from_be_bytes([payload[0], payload[1]]);
            if !valid_close_code(code) {
                return Err(protocol(format!(
                    "the peer sent the invalid close code {code}"
                )));
            }
            let reason = std::str::from_utf8(&payload[2..]).map_err(|_| invalid_utf8())?;
            Ok(Some((code, reason.to_owned())))
        }
    }
}

/// Checks a close status given to `close`.
pub(crate) fn check_close_status(code: u16, reason: &str) -> Result<()> {
    if code != 1000 && !(3000..=4999).contains(&code) {
        return Err(Error::invalid_input(
            code.to_string(),
            "a close code must be 1000 or 3000-4999 (as Dart requires)",
        ));
    }
    if reason.len() > 123 {
        return Err(Error::invalid_input(
            format!("{} bytes", reason.len()),
            "a close reason is at most 123 bytes of UTF-8",
        ));
    }
    Ok(())
}

/// A close frame's payload.
pub(crate) fn close_payload(code: u16, reason: &str) -> Vec<u8> {
    let mut p = code.to_be_bytes().to_vec();
    p.extend_from_slice(reason.as_bytes());
    p
}
