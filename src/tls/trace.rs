//! `enable_trace`: a per-connection trace of the handshake, like Node's
//! `enableTrace`: each TLS record sent and received (naming plaintext
//! handshake messages and alerts; TLS 1.3 encrypts the rest of the
//! handshake), then the negotiated parameters or the failure.

use std::io::{self, IoSlice, Write};
use std::sync::Arc;

/// Where trace lines go.
pub(crate) type TraceFn = Arc<dyn Fn(&str) + Send + Sync>;

/// The sink of `enable_trace(true)`: the `log` crate, at `trace` level,
/// target `securenet::trace`.
pub(crate) fn log_sink() -> TraceFn {
    Arc::new(|line: &str| log::trace!(target: "securenet::trace", "{line}"))
}

/// Splits a byte stream into TLS records and names them.
#[derive(Default)]
struct Records {
    header: Vec<u8>,
    remaining: usize,
    /// A record whose first payload byte names it (handshake, alert).
    awaiting_name: Option<(u8, usize)>,
}

fn handshake_name(t: u8) -> &'static str {
    match t {
        1 => "ClientHello",
        2 => "ServerHello",
        4 => "NewSessionTicket",
        8 => "EncryptedExtensions",
        11 => "Certificate",
        12 => "ServerKeyExchange",
        13 => "CertificateRequest",
        14 => "ServerHelloDone",
        15 => "CertificateVerify",
        16 => "ClientKeyExchange",
        20 => "Finished",
        24 => "KeyUpdate",
        _ => "handshake message",
    }
}

impl Records {
    fn feed(&mut self, mut bytes: &[u8], mut line: impl FnMut(String)) {
        while !bytes.is_empty() {
            if let Some((kind, len)) = self.awaiting_name.take() {
                let first = bytes[0];
                line(match kind {
                    22 => format!("handshake {} ({len} bytes)", handshake_name(first)),
                    _ => format!(
                        "alert ({}, description {})",
                        if first == 2 { "fatal" } else { "warning" },
                        bytes
                            .get(1)
                            .map_or_else(|| "?".to_owned(), |d| d.to_string())
                    ),
                });
            }
            if self.remaining > 0 {
                let n = self.remaining.min(bytes.len());
                self.remaining -= n;
                bytes = &bytes[n..];
                continue;
            }
            let need = 5 - self.header.len();
            let n = need.min(bytes.len());
            self.header.extend_from_slice(&bytes[..n]);
            bytes = &bytes[n..];
            if self.header.len() < 5 {
                return;
            }
            let kind = self.header[0];
            let len = usize::from(u16::from_be_bytes([self.header[3], self.header[4]]));
            self.header.clear();
            self.remaining = len;
            match kind {
                22 | 21 => self.awaiting_name = Some((kind, len)),
                20 => line("ChangeCipherSpec".to_owned()),
                23 => line(format!("encrypted record ({len} bytes)")),
                other => line(format!("record of type {other} ({len} bytes)")),
            }
        }
    }
}

/// One connection's tracer.
pub(crate) struct Tracer {
    sink: TraceFn,
    label: String,
    sent: Records,
    received: Records,
}

impl Tracer {
    pub(crate) fn new(sink: TraceFn, label: String) -> Tracer {
        Tracer {
            sink,
            label,
            sent: Records::default(),
            received: Records::default(),
        }
    }

    pub(crate) fn line(&self, text: &str) {
        (self.sink)(&format!("securenet trace [{}]: {text}", self.label));
    }

    pub(crate) fn sent(&mut self, bytes: &[u8]) {
        let (sink, label) = (&self.sink, &self.label);
        self.sent.feed(bytes, |l| {
            sink(&format!("securenet trace [{label}]: sent {l}"))
        });
    }

    pub(crate) fn received(&mut self, bytes: &[u8]) {
        let (sink, label) = (&self.sink, &self.label);
        self.received.feed(bytes, |l| {
            sink(&format!("securenet trace [{label}]: received {l}"))
        });
    }
}

/// A writer that traces what it writes.
pub(crate) struct Tee<'a, W> {
    pub(crate) inner: &'a mut W,
    pub(crate) tracer: &'a mut Tracer,
}

impl<W: Write> Write for Tee<'_, W> {
    fn write(&mut self, buf: &[u8]) -> io::Result<usize> {
        let n = self.inner.write(buf)?;
        self.tracer.sent(&buf[..n]);
        Ok(n)
    }

    fn write_vectored(&mut self, bufs: &[IoSlice<'_>]) -> io::Result<usize> {
        let n = self.inner.write_vectored(bufs)?;
        let mut left = n;
        for b in bufs {
            let take = left.min(b.len());
            self.tracer.sent(&b[..take]);
            left -= take;
            if left == 0 {
                break;
            }
        }
        Ok(n)
    }

    fn flush(&mut self) -> io::Result<()> {
        self.inner.flush()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn records_are_named_across_chunk_boundaries() {
        let mut r = Records::default();
        let mut lines = Vec::new();
        let hello = [22u8, 3, 1, 0, 4, 1, 0, 0, 0];
        let app = [23u8, 3, 3, 0, 2, 9, 9];
        let alert = [21u8, 3, 3, 0, 2, 2, 40];
        let all: Vec<u8> = [&hello[..], &app, &alert].concat();
        for chunk in all.chunks(3) {
            r.feed(chunk, |l| lines.push(l));
        }
        assert_eq!(
            lines,
            [
                "handshake ClientHello (4 bytes)",
                "encrypted record (2 bytes)",
                "alert (fatal, description 40)"
            ]
        );
    }
}
