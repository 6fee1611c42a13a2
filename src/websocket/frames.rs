//! Frames: reading them from a byte stream (tungstenite's header codec;
//! payload, masking and the checks RFC 6455 asks of each frame are ours) and
//! writing them.

use std::io::{self, Cursor, Read, Write};

use tungstenite::protocol::frame::FrameHeader;
use tungstenite::protocol::frame::coding::{Control, Data, OpCode};

use crate::error::{Error, Result, WebSocketErrorKind, is_socket_timeout};

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

/// A ping we send carries at most 125 bytes (RFC 6455 section 5.5).
pub(crate) fn check_ping(payload: &[u8]) -> Result<()> {
    if payload.len() > 125 {
        return Err(Error::invalid_input(
            format!("{} bytes", payload.len()),
            "a ping carries at most 125 bytes",
        ));
    }
    Ok(())
}

/// A protocol error: close with 1002.
pub(crate) fn protocol(reason: impl Into<String>) -> Error {
    Error::websocket(WebSocketErrorKind::Protocol, reason, Some(1002))
}

/// XORs `data` with `mask`, `data` starting `offset` bytes into the payload.
fn apply_mask(data: &mut [u8], mask: [u8; 4], offset: usize) {
    let mask = {
        let r = offset & 3;
        [
            mask[r],
            mask[(r + 1) & 3],
            mask[(r + 2) & 3],
            mask[(r + 3) & 3],
        ]
    };
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

/// The first receive buffer; it doubles while a large payload streams in.
const FIRST_CHUNK: usize = 8 * 1024;
/// The largest receive buffer: payloads stream through it in pieces.
const LAST_CHUNK: usize = 64 * 1024;

/// A frame's header, checked.
#[derive(Debug, Clone, Copy)]
pub(crate) struct Header {
    pub(crate) fin: bool,
    pub(crate) rsv1: bool,
    pub(crate) op: Op,
    /// The payload length, at most `max_frame_size`.
    pub(crate) len: usize,
    mask: Option<[u8; 4]>,
}

/// Reads frames from a byte stream. The payload is handed on in pieces as
/// it arrives, so a frame costs what the peer has sent of it, never what its
/// header announced; a read that times out keeps its place, and the next
/// read goes on from there.
pub(crate) struct FrameReader {
    buf: Vec<u8>,
    pos: usize,
    end: usize,
    /// Frames from a server are unmasked, from a client masked.
    expect_masked: bool,
    /// The frame whose payload is being read, and how much was handed on.
    current: Option<(Header, usize)>,
    /// The last read filled the buffer: the next may grow it.
    last_read_filled: bool,
}

impl FrameReader {
    pub(crate) fn new(expect_masked: bool, already_read: Vec<u8>) -> FrameReader {
        let end = already_read.len();
        FrameReader {
            buf: already_read,
            pos: 0,
            end,
            expect_masked,
            current: None,
            last_read_filled: false,
        }
    }

    /// The header of the frame being read: the next one, or (after a timed
    /// out read) the one whose payload is still coming. `true` with a
    /// header read now, `false` for one read before.
    pub(crate) fn header<R: Read>(
        &mut self,
        r: &mut R,
        max_frame_size: usize,
    ) -> Result<(Header, bool)> {
        if let Some((header, _)) = self.current {
            return Ok((header, false));
        }
        loop {
            let mut cursor = Cursor::new(&self.buf[self.pos..self.end]);
            let parsed = FrameHeader::parse(&mut cursor)
                .map_err(|e| protocol(format!("the peer sent an invalid frame header: {e}")))?;
            if let Some((header, len)) = parsed {
                let header_len = cursor.position() as usize;
                let header = self.check(&header, len, max_frame_size)?;
                self.pos += header_len;
                self.current = Some((header, 0));
                return Ok((header, true));
            }
            self.fill(r, 14)?;
        }
    }

    /// Hands the current frame's payload, unmasked, to `sink` in pieces as
    /// they arrive; returns when all of it was handed on.
    pub(crate) fn payload<R: Read>(
        &mut self,
        r: &mut R,
        mut sink: impl FnMut(&[u8]) -> Result<()>,
    ) -> Result<()> {
        let Some((header, mut done)) = self.current else {
            return Ok(());
        };
        while done < header.len {
            if self.pos == self.end {
                self.fill(r, header.len - done)?;
            }
            let n = (self.end - self.pos).min(header.len - done);
            let piece = &mut self.buf[self.pos..self.pos + n];
            if let Some(mask) = header.mask {
                apply_mask(piece, mask, done);
            }
            self.pos += n;
            done += n;
            self.current = Some((header, done));
            sink(piece)?;
        }
        self.current = None;
        Ok(())
    }

    fn check(&self, header: &FrameHeader, len: u64, max_frame_size: usize) -> Result<Header> {
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
        if len >> 63 != 0 {
            // RFC 6455 5.2: the most significant bit must be 0.
            return Err(protocol(format!(
                "the peer sent a frame length with the top bit set ({len:#x})"
            )));
        }
        let len = match usize::try_from(len) {
            Ok(len) if len <= max_frame_size => len,
            _ => {
                return Err(too_big(format!(
                    "the peer sent a frame of {len} bytes, over max_frame_size ({max_frame_size})"
                )));
            }
        };
        Ok(Header {
            fin: header.is_final,
            rsv1: header.rsv1,
            op,
            len,
            mask: header.mask,
        })
    }

    /// Reads more bytes after those buffered. `want` is how many more are
    /// awaited: the buffer doubles (from 8 KiB up to 64 KiB) only while
    /// reads fill it and more is awaited, so it grows as bytes arrive.
    fn fill<R: Read>(&mut self, r: &mut R, want: usize) -> Result<()> {
        if self.pos == self.end {
            self.pos = 0;
            self.end = 0;
        } else if self.pos > 0 {
            self.buf.copy_within(self.pos..self.end, 0);
            self.end -= self.pos;
            self.pos = 0;
        }
        let space = self.buf.len() - self.end;
        if space == 0 || (self.last_read_filled && want > space && self.buf.len() < LAST_CHUNK) {
            let grown = (self.buf.len() * 2).clamp(FIRST_CHUNK, LAST_CHUNK.max(self.buf.len()));
            self.buf.resize(grown.max(self.end + 1), 0);
        }
        loop {
            match r.read(&mut self.buf[self.end..]) {
                Ok(0) => {
                    let reason = if self.end == 0 && self.current.is_none() {
                        "the connection closed without a close frame (1006)"
                    } else {
                        "the connection closed in the middle of a frame"
                    };
                    return Err(Error::websocket(WebSocketErrorKind::PeerGone, reason, None));
                }
                Ok(n) => {
                    self.last_read_filled = self.end + n == self.buf.len();
                    self.end += n;
                    return Ok(());
                }
                Err(e) if e.kind() == io::ErrorKind::Interrupted => {}
                Err(e) => return Err(read_error(e)),
            }
        }
    }

    /// Gives back a buffer grown for a large message, once drained.
    pub(crate) fn shrink(&mut self) {
        if self.pos == self.end && self.buf.len() > FIRST_CHUNK {
            self.buf = Vec::new();
            self.pos = 0;
            self.end = 0;
            self.last_read_filled = false;
        }
    }
}

/// A message or frame over a size limit: close with 1009.
pub(crate) fn too_big(reason: String) -> Error {
    Error::websocket(WebSocketErrorKind::Protocol, reason, Some(1009))
}

/// A read error: a plain socket's timeout becomes [`Error::Timeout`]; a
/// `SecureStream`'s error is recovered as it is.
pub(crate) fn read_error(e: io::Error) -> Error {
    match Error::from(e) {
        Error::Io { source, .. } if is_socket_timeout(source.kind()) => Error::Timeout {
            phase: crate::error::Phase::Read,
            after: None,
        },
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
        crate::crypto::fill_random(&mut m).map_err(|()| {
            Error::websocket(
                WebSocketErrorKind::Local,
                "no randomness for the frame mask",
                None,
            )
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
        apply_mask(&mut out[start..], m, 0);
    }
    let mut sent = 0;
    while sent < out.len() {
        match w.write(&out[sent..]) {
            Ok(0) => return Err(Error::from(io::Error::from(io::ErrorKind::WriteZero))),
            Ok(n) => sent += n,
            Err(e) if e.kind() == io::ErrorKind::Interrupted => {}
            Err(e) => return Err(mid_frame(Error::from(e), sent)),
        }
    }
    w.flush().map_err(Error::from)
}

/// A write that failed after `sent` bytes of a frame: a shutdown's request
/// to close is then no occasion for a close frame (it would land inside
/// the one half sent), only for the transport's end.
fn mid_frame(e: Error, sent: usize) -> Error {
    match e {
        Error::ShuttingDown if sent > 0 => Error::io(
            "the server is shutting down: the connection was closed in the middle of a frame",
            io::ErrorKind::ConnectionAborted.into(),
        ),
        e => e,
    }
}

#[cfg(test)]
mod tests {
    use super::apply_mask;

    #[test]
    fn masking_matches_the_byte_by_byte_definition() {
        let mask = [0x12, 0x34, 0x56, 0x78];
        for len in [0usize, 1, 3, 7, 8, 9, 15, 16, 17, 100] {
            let data: Vec<u8> = (0..len as u8).collect();
            let slow: Vec<u8> = data
                .iter()
                .enumerate()
                .map(|(i, b)| b ^ mask[i % 4])
                .collect();
            let mut fast = data.clone();
            apply_mask(&mut fast, mask, 0);
            assert_eq!(fast, slow, "length {len}");
            // In two pieces, the second starting at any offset.
            for cut in 0..=len {
                let mut pieces = data.clone();
                let (a, b) = pieces.split_at_mut(cut);
                apply_mask(a, mask, 0);
                apply_mask(b, mask, cut);
                assert_eq!(pieces, slow, "length {len} cut at {cut}");
            }
        }
    }
}
