//! Frames: reading them from a byte stream (tungstenite's header codec;
//! payload, masking and the checks RFC 6455 asks of each frame are ours) and
//! writing them.

use std::io::{self, Cursor, Read, Write};

use tungstenite::protocol::frame::FrameHeader;
use tungstenite::protocol::frame::coding::{Control, Data, OpCode};

use crate::error::{Error, Result};

/// Frame opcodes.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Op {
    Continue,
    Text,
    Binary,
    Close,
    Ping,
    Pong,
}

impl Op {
    pub(crate) fn is_control(self) -> bool {
        matches!(self, Op::Close | Op::Ping | Op::Pong)
    }

    fn code(self) -> OpCode {
        match self {
            Op::Continue => OpCode::Data(Data::Continue),
            Op::Text => OpCode::Data(Data::Text),
            Op::Binary => OpCode::Data(Data::Binary),
            Op::Close => OpCode::Control(Control::Close),
            Op::Ping => OpCode::Control(Control::Ping),
            Op::Pong => OpCode::Control(Control::Pong),
        }
    }
}

/// One frame, unmasked.
#[derive(Debug)]
pub(crate) struct Frame {
    pub(crate) fin: bool,
    pub(crate) rsv1: bool,
    pub(crate) op: Op,
    pub(crate) payload: Vec<u8>,
}

/// A protocol error: close with 1002.
pub(crate) fn protocol(reason: impl Into<String>) -> Error {
    Error::WebSocket {
        reason: reason.into(),
        close_code: Some(1002),
    }
}

fn apply_mask(data: &mut [u8], mask: [u8; 4]) {
    // Eight bytes at a time (the compiler vectorises this), then the rest.
    let wide = u64::from_ne_bytes([
        mask[0], mask[1], mask[2], mask[3], mask[0], mask[1], mask[2], mask[3],
    ]);
    let mut chunks = data.chunks_exact_mut(8);
    for chunk in &mut chunks {
        let mut word = [0u8; 8];
        word.copy_from_slice(chunk);
        chunk.copy_from_slice(&(u64::from_ne_bytes(word) ^ wide).to_ne_bytes());
    }
    for (i, b) in chunks.into_remainder().iter_mut().enumerate() {
        *b ^= mask[i & 3];
    }
}

/// Reads frames from a byte stream, buffering what it has read ahead.
pub(crate) struct FrameReader {
    buf: Vec<u8>,
    pos: usize,
    end: usize,
    /// Frames from a server are unmasked, from a client masked.
    expect_masked: bool,
}

impl FrameReader {
    pub(crate) fn new(expect_masked: bool, already_read: Vec<u8>) -> FrameReader {
        let end = already_read.len();
        FrameReader {
            buf: already_read,
            pos: 0,
            end,
            expect_masked,
        }
    }

    /// Reads the next frame; its payload may be at most `max` bytes.
    pub(crate) fn read_frame<R: Read>(&mut self, r: &mut R, max: usize) -> Result<Frame> {
        loop {
            let mut cursor = Cursor::new(&self.buf[self.pos..self.end]);
            let parsed = FrameHeader::parse(&mut cursor)
                .map_err(|e| protocol(format!("the peer sent an invalid frame header: {e}")))?;
            let mut need = 14;
            if let Some((header, len)) = parsed {
                let header_len = cursor.position() as usize;
                let op = self.check(&header, len, max)?;
                let len = len as usize;
                if self.end - self.pos >= header_len + len {
                    let start = self.pos + header_len;
                    let mut payload = self.buf[start..start + len].to_vec();
                    if let Some(mask) = header.mask {
                        apply_mask(&mut payload, mask);
                    }
                    self.pos = start + len;
                    return Ok(Frame {
                        fin: header.is_final,
                        rsv1: header.rsv1,
                        op,
                        payload,
                    });
                }
                need = header_len + len;
            }
            self.fill(r, need)?;
        }
    }

    fn check(&self, header: &FrameHeader, len: u64, max: usize) -> Result<Op> {
        let op = match header.opcode {
            OpCode::Data(Data::Continue) => Op::Continue,
            OpCode::Data(Data::Text) => Op::Text,
            OpCode::Data(Data::Binary) => Op::Binary,
            OpCode::Control(Control::Close) => Op::Close,
            OpCode::Control(Control::Ping) => Op::Ping,
            OpCode::Control(Control::Pong) => Op::Pong,
            other => {
                return Err(protocol(format!(
                    "the peer used the reserved opcode {other}"
                )));
            }
        };
        if header.mask.is_some() != self.expect_masked {
            return Err(protocol(if self.expect_masked {
                "the client sent an unmasked frame"
            } else {
                "the server sent a masked frame"
            }));
        }
        if header.rsv2 || header.rsv3 {
            return Err(protocol(
                "the peer set RSV2 or RSV3, which no extension here uses",
            ));
        }
        if op.is_control() {
            if !header.is_final {
                return Err(protocol("the peer fragmented a control frame"));
            }
            if len > 125 {
                return Err(protocol("the peer sent a control frame over 125 bytes"));
            }
            if header.rsv1 {
                return Err(protocol("the peer set RSV1 on a control frame"));
            }
        }
        if len > max as u64 {
            return Err(Error::WebSocket {
                reason: format!(
                    "the peer sent a frame of {len} bytes, over max_message_size ({max})"
                ),
                close_code: Some(1009),
            });
        }
        Ok(op)
    }

    /// Reads more bytes so that at least `need` are buffered.
    fn fill<R: Read>(&mut self, r: &mut R, need: usize) -> Result<()> {
        if self.pos > 0 {
            self.buf.copy_within(self.pos..self.end, 0);
            self.end -= self.pos;
            self.pos = 0;
        }
        let want = need.max(self.end + 4096).max(8192);
        if self.buf.len() < want {
            self.buf.resize(want, 0);
        }
        loop {
            match r.read(&mut self.buf[self.end..]) {
                Ok(0) => {
                    return Err(if self.end == 0 {
                        Error::WebSocket {
                            reason: "the connection closed without a close frame (1006)".into(),
                            close_code: None,
                        }
                    } else {
                        Error::WebSocket {
                            reason: "the connection closed in the middle of a frame".into(),
                            close_code: None,
                        }
                    });
                }
                Ok(n) => {
                    self.end += n;
                    return Ok(());
                }
                Err(e) if e.kind() == io::ErrorKind::Interrupted => {}
                Err(e) => return Err(read_error(e)),
            }
        }
    }

    /// Shrinks the buffer back after a large message.
    pub(crate) fn shrink(&mut self) {
        if self.pos == self.end && self.buf.len() > 64 * 1024 {
            self.buf = Vec::new();
            self.pos = 0;
            self.end = 0;
        }
    }
}

/// A read error: a plain socket's timeout (`WouldBlock`/`TimedOut`) becomes
/// [`Error::Timeout`]; a `SecureStream`'s error is recovered as it is.
pub(crate) fn read_error(e: io::Error) -> Error {
    let kind = e.kind();
    match Error::from(e) {
        Error::Io { .. } if matches!(kind, io::ErrorKind::WouldBlock | io::ErrorKind::TimedOut) => {
            Error::Timeout {
                phase: crate::error::Phase::Read,
                after: None,
            }
        }
        other => other,
    }
}

/// Writes one frame: header, then the payload (masked by a client).
pub(crate) fn write_frame<W: Write>(
    w: &mut W,
    op: Op,
    rsv1: bool,
    payload: &[u8],
    client: bool,
) -> Result<()> {
    let mask = if client {
        let mut m = [0u8; 4];
        aws_lc_rs::rand::fill(&mut m).map_err(|_| Error::WebSocket {
            reason: "no randomness for the frame mask".into(),
            close_code: None,
        })?;
        Some(m)
    } else {
        None
    };
    let header = FrameHeader {
        is_final: true,
        rsv1,
        rsv2: false,
        rsv3: false,
        opcode: op.code(),
        mask,
    };
    let mut out = Vec::with_capacity(14 + payload.len());
    header
        .format(payload.len() as u64, &mut out)
        .map_err(|e| protocol(format!("cannot format a frame: {e}")))?;
    let start = out.len();
    out.extend_from_slice(payload);
    if let Some(m) = mask {
        apply_mask(&mut out[start..], m);
    }
    w.write_all(&out).map_err(Error::from)?;
    w.flush().map_err(Error::from)
}

#[cfg(test)]
mod tests {
    use super::apply_mask;

    #[test]
    fn masking_matches_the_byte_by_byte_definition() {
        let mask = [0x12, 0x34, 0x56, 0x78];
        for len in [0usize, 1, 3, 7, 8, 9, 15, 16, 17, 100] {
            let data: Vec<u8> = (0..len as u8).collect();
            let mut fast = data.clone();
            apply_mask(&mut fast, mask);
            let slow: Vec<u8> = data
                .iter()
                .enumerate()
                .map(|(i, b)| b ^ mask[i % 4])
                .collect();
            assert_eq!(fast, slow, "length {len}");
        }
    }
}
