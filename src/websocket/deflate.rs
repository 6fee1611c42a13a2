//! permessage-deflate (RFC 7692): the per-message compressor and
//! decompressor (flate2 on zlib-rs).

use std::collections::VecDeque;
use std::fmt;

use flate2::{Compress, Compression, Decompress, FlushCompress, FlushDecompress, Status};

use super::negotiate::Agreed;
use crate::error::{Error, Result, WebSocketErrorKind};

const TAIL: [u8; 4] = [0, 0, 0xff, 0xff];

/// Compresses messages.
pub(crate) struct Deflater {
    c: Compress,
    reset: bool,
}

impl Deflater {
    /// A compressor at `level` (1 to 9, checked with the options); `None`
    /// for an 8-bit window, which raw deflate cannot produce: such
    /// messages are sent uncompressed, which RFC 7692 allows.
    pub(crate) fn new(agreed: &Agreed, level: u32) -> Option<Deflater> {
        (agreed.out_bits >= 9).then(|| Deflater {
            c: Compress::new_with_window_bits(Compression::new(level), false, agreed.out_bits),
            reset: agreed.reset_out,
        })
    }

    pub(crate) fn compress(&mut self, data: &[u8]) -> Result<Vec<u8>> {
        let mut out = Vec::with_capacity(data.len() / 2 + 64);
        let start = self.c.total_in();
        loop {
            if out.capacity() - out.len() < 64 {
                out.reserve(out.capacity().max(256));
            }
            let consumed = (self.c.total_in() - start) as usize;
            self.c
                .compress_vec(&data[consumed..], &mut out, FlushCompress::Sync)
                .map_err(|e| {
                    Error::websocket(
                        WebSocketErrorKind::Local,
                        format!("compression failed: {e}"),
                        None,
                    )
                })?;
            let consumed = (self.c.total_in() - start) as usize;
            if consumed == data.len() && out.len() < out.capacity() {
                break;
            }
        }
        if out.ends_with(&TAIL) {
            out.truncate(out.len() - TAIL.len());
        }
        if out.is_empty() {
            // Nothing to flush (an empty message after a sync point): RFC
            // 7692 7.2.3.6 sends a single 0x00, an empty stored block's start.
            out.push(0);
        }
        if self.reset {
            self.c.reset();
        }
        Ok(out)
    }
}

/// A message that inflates past the cap: closed with 1009.
fn inflated_too_big(max: usize) -> Error {
    Error::websocket(
        WebSocketErrorKind::Protocol,
        format!("a compressed message inflates to more than max_message_size ({max} bytes)"),
        Some(1009),
    )
}

fn not_deflate(detail: impl fmt::Display) -> Error {
    Error::websocket(
        WebSocketErrorKind::Protocol,
        format!("a compressed message is not valid deflate data: {detail}"),
        Some(1007),
    )
}

/// Decompresses messages as their frames arrive, with a cap on the output.
///
/// A peer may end a message's data with a final block (BFINAL, RFC 7692
/// 7.2.3.4); the data after it (in this message or the next) is a new
/// DEFLATE stream whose back-references still reach into the sliding window
/// of what came before (7.2.2), so the inflater restarts with that window as
/// its dictionary. Under context takeover it keeps the last window's worth
/// of inflated bytes for that.
pub(crate) struct Inflater {
    d: Decompress,
    reset: bool,
    /// The peer's LZ77 window: how much history a back-reference can reach.
    window_size: usize,
    /// The last `window_size` bytes of earlier messages (context takeover).
    history: VecDeque<u8>,
    /// A stream ended at a final block and nothing was fed since.
    restarted: bool,
}

impl Inflater {
    pub(crate) fn new(agreed: &Agreed) -> Inflater {
        // A 15-bit window decodes what any smaller window produced.
        Inflater {
            d: Decompress::new_with_window_bits(false, 15),
            reset: agreed.reset_in,
            window_size: 1 << agreed.in_bits.clamp(8, 15),
            history: VecDeque::new(),
            restarted: false,
        }
    }

    /// Inflates one piece of a message's compressed data onto `out`; more
    /// than `max` bytes in all is an error (1009).
    pub(crate) fn feed(&mut self, mut input: &[u8], out: &mut Vec<u8>, max: usize) -> Result<()> {
        // One byte over the cap is enough to know it is over.
        let limit = max.saturating_add(1);
        loop {
            if out.len() >= limit {
                return Err(inflated_too_big(max));
            }
            if out.capacity() - out.len() < 64 {
                // Grow as output comes (doubling, from about what this
                // piece inflates to), but never past the cap.
                let guess = input.len().saturating_mul(4).max(256);
                let grow = out.capacity().max(guess).min(limit - out.len());
                out.reserve_exact(grow);
            }
            let (in_before, out_before) = (self.d.total_in(), out.len());
            let status = self
                .d
                .decompress_vec(input, out, FlushDecompress::Sync)
                .map_err(not_deflate)?;
            let consumed = usize::try_from(self.d.total_in() - in_before).unwrap_or(input.len());
            input = input.get(consumed..).unwrap_or_default();
            if consumed > 0 {
                self.restarted = false;
            }
            if status == Status::StreamEnd {
                self.restart(out)?;
                continue;
            }
            let output_full = out.len() == out.capacity();
            if input.is_empty() && !output_full {
                return Ok(());
            }
            if consumed == 0 && out.len() == out_before && !output_full {
                return Err(not_deflate(
                    "the decoder stopped before the end of the data",
                ));
            }
        }
    }

    /// Ends a message: the 0x00 0x00 0xff 0xff its sender took off (unless
    /// its data ended with a final block), then the context reset or kept.
    pub(crate) fn finish(&mut self, out: &mut Vec<u8>, max: usize) -> Result<()> {
        if !self.restarted {
            self.feed(&TAIL, out, max)?;
        }
        if out.len() > max {
            return Err(inflated_too_big(max));
        }
        if self.reset {
            self.d.reset(false);
            self.restarted = false;
        } else {
            let keep = out.len().min(self.window_size);
            self.history.extend(&out[out.len() - keep..]);
            let excess = self.history.len().saturating_sub(self.window_size);
            self.history.drain(..excess);
        }
        Ok(())
    }

    /// A stream ended at a final block: start a new one whose dictionary is
    /// the window so far (earlier messages' history, then this one's).
    fn restart(&mut self, out: &[u8]) -> Result<()> {
        let from_out = out.len().min(self.window_size);
        let from_history = if self.reset {
            0
        } else {
            (self.window_size - from_out).min(self.history.len())
        };
        let mut window = Vec::with_capacity(from_history + from_out);
        window.extend(self.history.range(self.history.len() - from_history..));
        window.extend_from_slice(&out[out.len() - from_out..]);
        self.d.reset(false);
        if !window.is_empty() {
            self.d.set_dictionary(&window).map_err(not_deflate)?;
        }
        self.restarted = true;
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn agreed(reset: bool) -> Agreed {
        Agreed {
            reset_out: reset,
            reset_in: reset,
            out_bits: 15,
            in_bits: 15,
        }
    }

    impl Inflater {
        /// One whole message, in one piece.
        fn decompress(&mut self, data: &[u8], max: usize) -> Result<Vec<u8>> {
            let mut out = Vec::new();
            self.feed(data, &mut out, max)?;
            self.finish(&mut out, max)?;
            Ok(out)
        }
    }

    #[test]
    fn a_final_block_does_not_end_the_messages_after_it() {
        // RFC 7692 7.2.3.4: "Hello" in one block with BFINAL set, then 0x00;
        // then 7.2.3.2's second "Hello", a back-reference into the window.
        for reset in [false, true] {
            let mut i = Inflater::new(&agreed(reset));
            let rfc = [0xf3, 0x48, 0xcd, 0xc9, 0xc9, 0x07, 0x00, 0x00];
            assert_eq!(i.decompress(&rfc, 100).expect("inflate"), b"Hello");
            if !reset {
                let again = [0xf2, 0x00, 0x11, 0x00, 0x00];
                assert_eq!(i.decompress(&again, 100).expect("window"), b"Hello");
            }
            let mut d = Deflater::new(&agreed(true), 1).expect("deflater");
            let fresh = d.compress(b"after a final block").expect("compress");
            if reset {
                assert_eq!(
                    i.decompress(&fresh, 100).expect("inflate"),
                    b"after a final block"
                );
            }
        }
        // Messages from a compressor that ends each with a final block:
        // tests/websocket_hostile.rs, both sides, in frames.
    }

    #[test]
    fn pieces_of_any_size_inflate_as_the_whole() {
        // Pieces of 1, 7 and 200 bytes, as frames and reads cut a
        // message, with and without context takeover, and a message ending
        // with a final block (RFC 7692 7.2.3.4) among others.
        let text = json(40);
        let rfc_final = [0xf3, 0x48, 0xcd, 0xc9, 0xc9, 0x07, 0x00, 0x00];
        for reset in [false, true] {
            for piece in [1, 7, 200] {
                let mut d = Deflater::new(&agreed(reset), 1).expect("deflater");
                let mut i = Inflater::new(&agreed(reset));
                // After the final block's message, only a context reset
                // keeps the deflater (which never saw "Hello") in step.
                let after: &[u8] = if reset { &text[..64] } else { b"" };
                for msg in [&text[..64], &text[..], b"", &text[..300], b"Hello", after] {
                    let data = if msg == b"Hello" {
                        rfc_final.to_vec()
                    } else {
                        d.compress(msg).expect("compress")
                    };
                    let mut out = Vec::new();
                    for chunk in data.chunks(piece) {
                        i.feed(chunk, &mut out, 1 << 20).expect("feed");
                    }
                    i.finish(&mut out, 1 << 20).expect("finish");
                    assert_eq!(out, msg, "pieces of {piece}, reset {reset}");
                }
            }
        }
    }

    #[test]
    fn garbage_is_1007_never_an_empty_message() {
        let mut i = Inflater::new(&agreed(false));
        let err = i
            .decompress(&[0xff, 0xff, 0xff, 0xff], 100)
            .expect_err("garbage");
        assert!(
            matches!(
                err,
                Error::WebSocket {
                    close_code: Some(1007),
                    ..
                }
            ),
            "{err:?}"
        );
    }

    #[test]
    fn inflating_to_the_cap_stays_near_the_cap() {
        let mut d = Deflater::new(&agreed(true), 1).expect("deflater");
        let max = 3 << 20;
        let data = d.compress(&vec![1u8; max]).expect("compress");
        let mut i = Inflater::new(&agreed(true));
        let mut out = Vec::new();
        i.feed(&data, &mut out, max).expect("feed");
        i.finish(&mut out, max).expect("finish");
        assert_eq!(out.len(), max);
        assert!(out.capacity() <= max + 1, "capacity {}", out.capacity());
    }

    /// Text like most WebSocket traffic: JSON records, each different.
    fn json(records: u64) -> Vec<u8> {
        let mut s = String::new();
        for i in 0..records {
            let k = i.wrapping_mul(6364136223846793005) >> 33;
            s.push_str(&format!(
                r#"{{"type":"tick","symbol":"S{}","price":{}.{:02},"id":{i}}}"#,
                k % 500,
                k % 1000,
                k % 97
            ));
        }
        s.into_bytes()
    }

    #[test]
    fn round_trip_at_every_level_with_and_without_context_takeover() {
        let text = json(300);
        for level in 1..=9 {
            for reset in [false, true] {
                let mut d = Deflater::new(&agreed(reset), level).expect("deflater");
                let mut i = Inflater::new(&agreed(reset));
                for msg in [
                    &b"hello hello hello"[..],
                    b"",
                    b"hello hello hello",
                    &text[..64],
                    &text,
                    &[7u8; 100_000],
                ] {
                    let c = d.compress(msg).expect("compress");
                    let back = i.decompress(&c, 1 << 20).expect("inflate");
                    assert_eq!(back, msg, "level {level}, reset {reset}");
                }
            }
        }
        // RFC 7692 7.2.3.1: "Hello" compressed.
        let mut i = Inflater::new(&agreed(false));
        let hello = [0xf2, 0x48, 0xcd, 0xc9, 0xc9, 0x07, 0x00];
        assert_eq!(i.decompress(&hello, 100).expect("inflate"), b"Hello");
    }

    #[test]
    fn a_higher_level_compresses_smaller() {
        let text = json(300);
        let size = |level| {
            let mut d = Deflater::new(&agreed(true), level).expect("deflater");
            d.compress(&text).expect("compress").len()
        };
        let (fast, best) = (size(1), size(9));
        assert!(best < fast, "level 9: {best} bytes, level 1: {fast}");
        assert!(fast < text.len() / 3, "level 1 still compresses: {fast}");
    }

    #[test]
    fn a_sequence_with_an_empty_message_round_trips() {
        let mut d = Deflater::new(&agreed(false), 1).expect("deflater");
        let mut i = Inflater::new(&agreed(false));
        let big = "héllo wörld ".repeat(1000);
        for msg in ["hello", "", &big, "x"] {
            let c = d.compress(msg.as_bytes()).expect("compress");
            assert_eq!(i.decompress(&c, 1 << 20).expect("inflate"), msg.as_bytes());
        }
    }

    #[test]
    fn a_bomb_is_an_error_not_an_allocation() {
        // An attacker compresses as hard as it can.
        let mut d = Deflater::new(&agreed(true), 9).expect("deflater");
        let bomb = d.compress(&vec![0u8; 10 << 20]).expect("compress");
        assert!(bomb.len() < 100_000, "{} bytes", bomb.len());
        let err = Inflater::new(&agreed(true))
            .decompress(&bomb, 1 << 20)
            .expect_err("bomb");
        assert!(
            matches!(
                err,
                Error::WebSocket {
                    close_code: Some(1009),
                    ..
                }
            ),
            "{err:?}"
        );
    }
}
