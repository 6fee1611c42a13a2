//! Keying material exporters (RFC 5705, RFC 8446 §7.5) for connections on
//! rustls's unbuffered API, which in rustls 0.23 has no
//! `export_keying_material` of its own.
//!
//! rustls hands every secret it derives to the configuration's key log.
//! Every configuration securenet builds gets a [`Capture`] there: it passes
//! each line on to the user's key log (if one is set) and reports the two
//! secrets an exporter needs (TLS 1.3's exporter secret, TLS 1.2's master
//! secret) to the connection whose call into rustls is running on this
//! thread (`scope.rs`): a secret belongs to the connection whose handshake
//! derived it, is never looked up by a value the peer sent (such as its
//! random), and lives as long as that connection (zeroed when dropped).
//! TLS 1.2's exporter also needs the server random, read from the
//! server's Hello as it passes ([`ServerRandom`]).

use std::fmt;
use std::sync::Arc;

use rustls::crypto::tls13::OkmBlock;
use rustls::{KeyLog, SupportedCipherSuite};
use zeroize::Zeroizing;

use crate::error::{Error, Result};
use crate::tls::scope::{self, Secret};

/// The key log labels that carry an exporter's secret.
const TLS13_LABEL: &str = "EXPORTER_SECRET";
const TLS12_LABEL: &str = "CLIENT_RANDOM";

/// The key log securenet installs in every configuration it builds.
pub(crate) struct Capture {
    inner: Option<Arc<dyn KeyLog>>,
}

impl fmt::Debug for Capture {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Capture")
            .field("inner", &self.inner.is_some())
            .finish()
    }
}

/// The key log for a configuration: secrets for exporters, and every line
/// to `user`'s key log if there is one.
pub(crate) fn capture(user: Option<Arc<dyn KeyLog>>) -> Arc<dyn KeyLog> {
    Arc::new(Capture { inner: user })
}

impl KeyLog for Capture {
    fn log(&self, label: &str, client_random: &[u8], secret: &[u8]) {
        let ours = [TLS13_LABEL, TLS12_LABEL].into_iter().find(|l| *l == label);
        if let (Some(label), Ok(client_random)) = (ours, <[u8; 32]>::try_from(client_random)) {
            scope::report(|learned| {
                learned.secret = Some(Secret {
                    label,
                    client_random,
                    bytes: Zeroizing::new(secret.to_vec()),
                });
            });
        }
        if let Some(inner) = &self.inner {
            if inner.will_log(label) {
                inner.log(label, client_random, secret);
            }
        }
    }

    fn will_log(&self, label: &str) -> bool {
        label == TLS13_LABEL
            || label == TLS12_LABEL
            || self.inner.as_ref().is_some_and(|l| l.will_log(label))
    }
}

/// The random of the server's Hello (the first handshake message the
/// server sends), read from its records as they pass: each byte is looked
/// at once and at most the message's first 38 bytes are kept, however the
/// records are cut.
pub(crate) struct ServerRandom {
    /// The current record's header, while incomplete.
    header: [u8; 5],
    header_len: usize,
    /// Payload bytes left in the current record.
    left: usize,
    /// The message's first bytes: type, length, version, random.
    start: [u8; 38],
    start_len: usize,
    done: bool,
}

impl Default for ServerRandom {
    fn default() -> Self {
        ServerRandom {
            header: [0; 5],
            header_len: 0,
            left: 0,
            start: [0; 38],
            start_len: 0,
            done: false,
        }
    }
}

impl ServerRandom {
    /// Looks at the next bytes of the server's stream.
    pub(crate) fn see(&mut self, mut bytes: &[u8]) {
        while !self.done && !bytes.is_empty() {
            if self.left == 0 {
                let take = (5 - self.header_len).min(bytes.len());
                self.header[self.header_len..self.header_len + take]
                    .copy_from_slice(&bytes[..take]);
                self.header_len += take;
                bytes = &bytes[take..];
                if self.header_len < 5 {
                    return;
                }
                self.header_len = 0;
                if self.header[0] != 22 {
                    // Not a handshake: no Hello to read.
                    self.done = true;
                    return;
                }
                self.left = usize::from(u16::from_be_bytes([self.header[3], self.header[4]]));
                continue;
            }
            let take = self.left.min(bytes.len());
            let want = (self.start.len() - self.start_len).min(take);
            self.start[self.start_len..self.start_len + want].copy_from_slice(&bytes[..want]);
            self.start_len += want;
            self.left -= take;
            bytes = &bytes[take..];
            self.done = self.start_len == self.start.len();
        }
    }

    /// The random, once the Hello's first bytes have passed.
    pub(crate) fn random(&self) -> Option<[u8; 32]> {
        if self.start_len < self.start.len() || self.start[0] != 2 {
            return None;
        }
        <[u8; 32]>::try_from(&self.start[6..38]).ok()
    }
}

/// What a connection needs to derive keying material.
pub(crate) struct Exporter {
    suite: SupportedCipherSuite,
    secret: Zeroizing<Vec<u8>>,
    /// TLS 1.2: client random then server random.
    randoms: Vec<u8>,
}

impl Exporter {
    /// At the end of the handshake: the connection's exporter, from the
    /// secret its own handshake logged (and, for TLS 1.2, the server
    /// random of its own Hello).
    pub(crate) fn new(
        suite: SupportedCipherSuite,
        secret: Secret,
        server: &ServerRandom,
    ) -> Option<Exporter> {
        let randoms = match (suite, secret.label) {
            (SupportedCipherSuite::Tls13(_), TLS13_LABEL) => Vec::new(),
            (SupportedCipherSuite::Tls12(_), TLS12_LABEL) => {
                [secret.client_random, server.random()?].concat()
            }
            _ => return None,
        };
        Some(Exporter {
            suite,
            secret: secret.bytes,
            randoms,
        })
    }
}

impl Exporter {
    /// Fills `out` with keying material (what rustls's
    /// `export_keying_material` computes), or says why it cannot.
    pub(crate) fn export(
        &self,
        out: &mut [u8],
        label: &[u8],
        context: Option<&[u8]>,
    ) -> Result<()> {
        let refuse = |reason: &str| Err(Error::invalid_input("export_keying_material", reason));
        if out.is_empty() {
            return refuse("the output buffer is empty: ask for at least one byte");
        }
        match self.suite {
            SupportedCipherSuite::Tls13(suite) => {
                // HKDF-Expand-Label's label is at most 255 bytes, "tls13 "
                // included.
                if label.len() > 249 {
                    return refuse("a TLS 1.3 exporter label is at most 249 bytes long");
                }
                let hash = suite.common.hash_provider;
                let expander = suite
                    .hkdf_provider
                    .expander_for_okm(&OkmBlock::new(&self.secret));
                let empty = hash.hash(&[]);
                let info = label_info(expander.hash_len(), label, empty.as_ref());
                let derived = expander.expand_block(&info.as_slices());
                let context_hash = hash.hash(context.unwrap_or(&[]));
                let Ok(len) = u16::try_from(out.len()) else {
                    return refuse("TLS 1.3 exports at most 255 hash lengths of material");
                };
                let expander = suite.hkdf_provider.expander_for_okm(&derived);
                let info = label_info(len.into(), b"exporter", context_hash.as_ref());
                expander
                    .expand_slice(&info.as_slices(), out)
                    .or_else(|_| refuse("TLS 1.3 exports at most 255 hash lengths of material"))
            }
            SupportedCipherSuite::Tls12(suite) => {
                let mut seed = self.randoms.clone();
                if let Some(context) = context {
                    let Ok(len) = u16::try_from(context.len()) else {
                        return refuse("a TLS 1.2 exporter context is at most 65,535 bytes long");
                    };
                    seed.extend_from_slice(&len.to_be_bytes());
                    seed.extend_from_slice(context);
                }
                suite
                    .prf_provider
                    .for_secret(out, &self.secret, label, &seed);
                Ok(())
            }
        }
    }
}

/// HKDF-Expand-Label's `info` (RFC 8446 §7.1) for `len` bytes.
struct LabelInfo<'a> {
    head: [u8; 3],
    label: &'a [u8],
    context_len: [u8; 1],
    context: &'a [u8],
}

impl LabelInfo<'_> {
    fn as_slices(&self) -> [&[u8]; 5] {
        [
            &self.head,
            b"tls13 ",
            self.label,
            &self.context_len,
            self.context,
        ]
    }
}

fn label_info<'a>(len: usize, label: &'a [u8], context: &'a [u8]) -> LabelInfo<'a> {
    let [hi, lo] = u16::try_from(len).unwrap_or(u16::MAX).to_be_bytes();
    LabelInfo {
        // Callers keep the label to 249 bytes and the context to a hash.
        head: [hi, lo, u8::try_from(6 + label.len()).unwrap_or(u8::MAX)],
        label,
        context_len: [u8::try_from(context.len()).unwrap_or(u8::MAX)],
        context,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn record(payload: &[u8]) -> Vec<u8> {
        let len = u16::try_from(payload.len()).expect("short");
        [&[22, 3, 3][..], &len.to_be_bytes(), payload].concat()
    }

    /// A ServerHello: version, random 1..=32, then `extra` bytes.
    fn server_hello(extra: usize) -> Vec<u8> {
        let mut body = vec![3, 3];
        body.extend(1..=32u8);
        body.extend(std::iter::repeat_n(0u8, extra));
        let len = u32::try_from(body.len()).expect("short").to_be_bytes();
        [&[2, len[1], len[2], len[3]][..], &body].concat()
    }

    #[test]
    fn the_random_is_found_however_the_records_are_cut() {
        let hello = server_hello(13_000);
        let whole = [record(&hello[..10_000]), record(&hello[10_000..])].concat();
        let one_byte_records: Vec<u8> = hello.iter().flat_map(|b| record(&[*b])).collect();
        for stream in [whole, one_byte_records] {
            for piece in [1, 7, stream.len()] {
                let mut scan = ServerRandom::default();
                for chunk in stream.chunks(piece) {
                    scan.see(chunk);
                }
                let want: Vec<u8> = (1..=32).collect();
                assert_eq!(scan.random().map(|r| r.to_vec()), Some(want));
            }
        }
    }

    #[test]
    fn bytes_that_are_not_a_server_hello_give_no_random() {
        let mut scan = ServerRandom::default();
        scan.see(b"HTTP/1.1 400 Bad Request\r\n\r\n");
        assert_eq!(scan.random(), None);
        let mut scan = ServerRandom::default();
        scan.see(&[23; 64]);
        assert_eq!(scan.random(), None);
        // A ClientHello (type 1) is not the server's Hello.
        let mut hello = server_hello(0);
        hello[0] = 1;
        let mut scan = ServerRandom::default();
        scan.see(&record(&hello));
        assert_eq!(scan.random(), None);
        // Cut short.
        let mut scan = ServerRandom::default();
        scan.see(&record(&server_hello(0))[..20]);
        assert_eq!(scan.random(), None);
    }
}
