//! Messages: reassembling frames into messages (with control frames
//! between fragments), inflating, checking UTF-8 and close frames.

use std::io::Read;

use super::deflate::Inflater;
use super::frames::{FrameReader, Op, protocol};
use crate::error::{Error, Result};

/// A WebSocket message.
#[derive(Debug, Clone, PartialEq, Eq)]
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

pub(crate) struct Partial {
    text: bool,
    compressed: bool,
    data: Vec<u8>,
}

/// Reads messages.
pub(crate) struct Receiver {
    pub(crate) frames: FrameReader,
    pub(crate) inflater: Option<Inflater>,
    pub(crate) partial: Option<Partial>,
    pub(crate) max: usize,
}

fn too_big(max: usize) -> Error {
    Error::WebSocket {
        reason: format!("a message is over max_message_size ({max} bytes)"),
        close_code: Some(1009),
    }
}

impl Receiver {
    pub(crate) fn next<R: Read>(&mut self, r: &mut R) -> Result<Incoming> {
        loop {
            let frame = self.frames.read_frame(r, self.max)?;
            match frame.op {
                Op::Ping => return Ok(Incoming::Ping(frame.payload)),
                Op::Pong => return Ok(Incoming::Pong(frame.payload)),
                Op::Close => return Ok(Incoming::Close(parse_close(&frame.payload)?)),
                Op::Text | Op::Binary => {
                    if self.partial.is_some() {
                        return Err(protocol(
                            "a new message began before the previous one was finished",
                        ));
                    }
                    if frame.rsv1 && self.inflater.is_none() {
                        return Err(protocol("RSV1 is set but permessage-deflate is not in use"));
                    }
                    let p = Partial {
                        text: frame.op == Op::Text,
                        compressed: frame.rsv1,
                        data: frame.payload,
                    };
                    if frame.fin {
                        return self.finish(p);
                    }
                    self.check_partial_utf8(&p)?;
                    self.partial = Some(p);
                }
                Op::Continue => {
                    let Some(mut p) = self.partial.take() else {
                        return Err(protocol("a continuation frame with no message to continue"));
                    };
                    if frame.rsv1 {
                        return Err(protocol("RSV1 is set on a continuation frame"));
                    }
                    if p.data.len() + frame.payload.len() > self.max {
                        return Err(too_big(self.max));
                    }
                    p.data.extend_from_slice(&frame.payload);
                    if frame.fin {
                        return self.finish(p);
                    }
                    self.check_partial_utf8(&p)?;
                    self.partial = Some(p);
                }
            }
        }
    }

    /// Fails fast on an uncompressed text message whose fragments so far
    /// cannot begin valid UTF-8.
    fn check_partial_utf8(&self, p: &Partial) -> Result<()> {
        if p.text && !p.compressed {
            if let Err(e) = std::str::from_utf8(&p.data) {
                if e.error_len().is_some() {
                    return Err(invalid_utf8());
                }
            }
        }
        Ok(())
    }

    fn finish(&mut self, p: Partial) -> Result<Incoming> {
        let data = if p.compressed {
            match &mut self.inflater {
                Some(inflater) => inflater.decompress(&p.data, self.max)?,
                None => return Err(protocol("a compressed message without permessage-deflate")),
            }
        } else {
            p.data
        };
        self.frames.shrink();
        Ok(Incoming::Message(if p.text {
            Message::Text(String::from_utf8(data).map_err(|_| invalid_utf8())?)
        } else {
            Message::Binary(data)
        }))
    }
}

fn invalid_utf8() -> Error {
    Error::WebSocket {
        reason: "a text message is not valid UTF-8".into(),
        close_code: Some(1007),
    }
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
