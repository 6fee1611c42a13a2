//! Keying material exporters (RFC 5705, RFC 8446 §7.5) for connections on
//! rustls's unbuffered API, which in rustls 0.23 has no
//! `export_keying_material` of its own.
//!
//! rustls hands every secret it derives to the configuration's key log.
//! Every configuration securenet builds gets a [`Capture`] there: it passes
//! each line on to the user's key log (if one is set) and keeps the two
//! secrets an exporter needs (TLS 1.3's exporter secret, TLS 1.2's master
//! secret) in a small process-wide table, keyed by the configuration and
//! the connection's client random. A connection learns its client random
//! (and, for TLS 1.2, the server random) from the first handshake message
//! of each direction as it passes through, takes its secret from the table
//! when its handshake ends, and removes it if it never ends; the table is
//! bounded, so secrets no connection came for cannot pile up.

use std::collections::VecDeque;
use std::fmt;
use std::sync::{Arc, Mutex};

use rustls::crypto::tls13::OkmBlock;
use rustls::{KeyLog, SupportedCipherSuite};

use crate::error::{Error, Result};
use crate::sync::lock;

/// The most secrets the table holds: far more than handshakes can be
/// between their secret's derivation and their end at once.
const TABLE_LIMIT: usize = 4096;

/// The key log labels that carry an exporter's secret.
const TLS13_LABEL: &str = "EXPORTER_SECRET";
const TLS12_LABEL: &str = "CLIENT_RANDOM";

struct Entry {
    config: usize,
    client_random: [u8; 32],
    label: &'static str,
    secret: Vec<u8>,
}

static TABLE: Mutex<VecDeque<Entry>> = Mutex::new(VecDeque::new());

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

/// What identifies a configuration's [`Capture`] in the table: the address
/// of its key log (the same for every connection the configuration makes).
pub(crate) fn config_id(key_log: &Arc<dyn KeyLog>) -> usize {
    Arc::as_ptr(key_log).cast::<()>() as usize
}

impl KeyLog for Capture {
    fn log(&self, label: &str, client_random: &[u8], secret: &[u8]) {
        let ours = [TLS13_LABEL, TLS12_LABEL].into_iter().find(|l| *l == label);
        if let (Some(label), Ok(client_random)) = (ours, <[u8; 32]>::try_from(client_random)) {
            let mut table = lock(&TABLE);
            if table.len() >= TABLE_LIMIT {
                table.pop_front();
            }
            table.push_back(Entry {
                config: (self as *const Self).cast::<()>() as usize,
                client_random,
                label,
                secret: secret.to_vec(),
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

/// Removes and returns the secret logged for a connection.
fn take(config: usize, client_random: &[u8; 32]) -> Option<(&'static str, Vec<u8>)> {
    let mut table = lock(&TABLE);
    let at = table
        .iter()
        .position(|e| e.config == config && e.client_random == *client_random)?;
    table.remove(at).map(|e| (e.label, e.secret))
}

/// The first Hello message in a byte stream of TLS records, found as the
/// bytes pass (a copy, since rustls joins handshake records in place): its
/// random, and a ClientHello's SNI name.
pub(crate) struct HelloScan {
    /// The most bytes kept to find the message (as many as the connection
    /// holds unprocessed: rustls takes a Hello of up to 64 KiB).
    limit: usize,
    seen: Vec<u8>,
    random: Option<[u8; 32]>,
    sni: Option<Box<str>>,
    done: bool,
}

impl HelloScan {
    pub(crate) fn new(limit: usize) -> Self {
        HelloScan {
            limit,
            seen: Vec::new(),
            random: None,
            sni: None,
            done: false,
        }
    }

    /// Looks at the next bytes of the stream.
    pub(crate) fn see(&mut self, bytes: &[u8]) {
        if self.done || bytes.is_empty() {
            return;
        }
        let room = self.limit - self.seen.len();
        self.seen.extend_from_slice(&bytes[..bytes.len().min(room)]);
        let message = match first_message(&self.seen) {
            Some(Some(message)) => message,
            // Not a handshake, or larger than any Hello rustls takes.
            Some(None) => Vec::new(),
            None if self.seen.len() == self.limit => Vec::new(),
            None => return,
        };
        self.random = message
            .get(6..38)
            .and_then(|r| <[u8; 32]>::try_from(r).ok());
        if message.first() == Some(&1) {
            self.sni = client_hello_sni(&message[4..]);
        }
        self.done = true;
        self.seen = Vec::new();
    }

    pub(crate) fn random(&self) -> Option<[u8; 32]> {
        self.random
    }

    /// A ClientHello's SNI name, as rustls keeps it (lower case).
    pub(crate) fn take_sni(&mut self) -> Option<Box<str>> {
        self.sni.take()
    }
}

/// The first handshake message at the start of `records` (header
/// included), joined from however many records carry it: `None` while it
/// is incomplete, `Some(None)` if the bytes are not handshake records.
fn first_message(records: &[u8]) -> Option<Option<Vec<u8>>> {
    let mut message = Vec::new();
    let mut rest = records;
    loop {
        let (header, body) = rest.split_at_checked(5)?;
        if header[0] != 22 {
            return Some(None);
        }
        let len = usize::from(u16::from_be_bytes([header[3], header[4]]));
        let (payload, after) = body.split_at_checked(len)?;
        message.extend_from_slice(payload);
        if let Some(&[_, a, b, c]) = message.get(..4) {
            let whole = 4 + (usize::from(a) << 16 | usize::from(b) << 8 | usize::from(c));
            if message.len() >= whole {
                message.truncate(whole);
                return Some(Some(message));
            }
        }
        rest = after;
    }
}

/// Splits a vector with a `width`-byte length prefix off the front.
fn vector(bytes: &[u8], width: usize) -> Option<(&[u8], &[u8])> {
    let (len, rest) = bytes.split_at_checked(width)?;
    let len = len.iter().fold(0usize, |n, b| n << 8 | usize::from(*b));
    rest.split_at_checked(len)
}

/// The host name in a ClientHello body's `server_name` extension, if it
/// is a DNS name (rustls ignores any other).
fn client_hello_sni(body: &[u8]) -> Option<Box<str>> {
    // Version and random, then the session id, suites and compressions.
    let rest = body.get(34..)?;
    let (_, rest) = vector(rest, 1)?;
    let (_, rest) = vector(rest, 2)?;
    let (_, rest) = vector(rest, 1)?;
    let (mut extensions, _) = vector(rest, 2)?;
    while !extensions.is_empty() {
        let (kind, rest) = extensions.split_at_checked(2)?;
        let (data, rest) = vector(rest, 2)?;
        extensions = rest;
        if kind != [0, 0] {
            continue;
        }
        let (mut names, _) = vector(data, 2)?;
        while let Some((&name_type, rest)) = names.split_first() {
            let (name, rest) = vector(rest, 2)?;
            names = rest;
            if name_type == 0 {
                let name = std::str::from_utf8(name).ok()?;
                let dns = rustls::pki_types::DnsName::try_from(name).ok()?;
                return Some(dns.as_ref().to_ascii_lowercase().into());
            }
        }
        return None;
    }
    None
}

/// What a connection needs to derive keying material.
pub(crate) struct Exporter {
    suite: SupportedCipherSuite,
    secret: Vec<u8>,
    /// TLS 1.2: client random then server random.
    randoms: Vec<u8>,
}

/// The two Hello messages of a handshake, seen as it runs.
pub(crate) struct Hellos {
    pub(crate) client: HelloScan,
    pub(crate) server: HelloScan,
}

impl Hellos {
    /// Each direction's scan keeps at most `limit` bytes.
    pub(crate) fn new(limit: usize) -> Self {
        Hellos {
            client: HelloScan::new(limit),
            server: HelloScan::new(limit),
        }
    }

    /// At the end of the handshake: the connection's exporter, from the
    /// secret rustls logged for it.
    pub(crate) fn exporter(&self, config: usize, suite: SupportedCipherSuite) -> Option<Exporter> {
        let client = self.client.random()?;
        let (label, secret) = take(config, &client)?;
        let randoms = match (suite, label) {
            (SupportedCipherSuite::Tls13(_), TLS13_LABEL) => Vec::new(),
            (SupportedCipherSuite::Tls12(_), TLS12_LABEL) => {
                [client, self.server.random()?].concat()
            }
            _ => return None,
        };
        Some(Exporter {
            suite,
            secret,
            randoms,
        })
    }

    /// A handshake that did not end: its secret, if it was logged, goes.
    pub(crate) fn forget(&self, config: usize) {
        if let Some(client) = self.client.random() {
            let _ = take(config, &client);
        }
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

    const LIMIT: usize = 0xffff + 18_437;

    fn record(payload: &[u8]) -> Vec<u8> {
        let len = u16::try_from(payload.len()).expect("short");
        [&[22, 3, 3][..], &len.to_be_bytes(), payload].concat()
    }

    /// A ClientHello: random 1..=32, no session id, one suite, one
    /// compression, and a server_name extension for `name`.
    fn hello(name: &str) -> Vec<u8> {
        let n = u8::try_from(name.len()).expect("short");
        let mut sni = vec![0, 0, 0, n + 5, 0, n + 3, 0, 0, n];
        sni.extend_from_slice(name.as_bytes());
        let mut body = vec![3, 3];
        body.extend(1..=32u8);
        body.extend([
            0,
            0,
            2,
            0x13,
            1,
            1,
            0,
            0,
            u8::try_from(sni.len()).expect("short"),
        ]);
        body.extend(sni);
        let len = u8::try_from(body.len()).expect("short");
        [&[1, 0, 0, len][..], &body].concat()
    }

    #[test]
    fn the_random_is_found_however_the_records_are_cut() {
        let whole = record(&hello("Example.COM"));
        let one_byte_records: Vec<u8> = hello("Example.COM")
            .iter()
            .flat_map(|b| record(&[*b]))
            .collect();
        for stream in [whole, one_byte_records] {
            for piece in [1, 7, stream.len()] {
                let mut scan = HelloScan::new(LIMIT);
                for chunk in stream.chunks(piece) {
                    scan.see(chunk);
                }
                let want: Vec<u8> = (1..=32).collect();
                assert_eq!(scan.random().map(|r| r.to_vec()), Some(want));
                assert_eq!(scan.take_sni().as_deref(), Some("example.com"));
            }
        }
    }

    #[test]
    fn bytes_that_are_not_a_handshake_give_no_random() {
        let mut scan = HelloScan::new(LIMIT);
        scan.see(b"GET / HTTP/1.1\r\nHost: example\r\n\r\n");
        assert_eq!(scan.random(), None);
        let mut scan = HelloScan::new(LIMIT);
        scan.see(&[23; 64]);
        assert_eq!(scan.random(), None);
        assert!(scan.seen.is_empty(), "gave up and let go of what it kept");
        let mut scan = HelloScan::new(LIMIT);
        let endless = record(&[1, 0xff, 0xff, 0xff]);
        scan.see(&endless);
        for _ in 0..LIMIT / 1000 + 1 {
            scan.see(&record(&[0; 995]));
        }
        assert_eq!(scan.random(), None);
        assert!(scan.seen.is_empty(), "a message past the limit is let go");
    }

    #[test]
    fn an_ip_address_or_a_truncated_extension_gives_no_name() {
        for name in ["127.0.0.1", "bad name"] {
            let mut scan = HelloScan::new(LIMIT);
            scan.see(&record(&hello(name)));
            assert!(scan.random().is_some());
            assert_eq!(scan.take_sni(), None, "{name}");
        }
        let mut cut = hello("example.com");
        cut.truncate(cut.len() - 3);
        cut[3] -= 3;
        let mut scan = HelloScan::new(LIMIT);
        scan.see(&record(&cut));
        assert_eq!(scan.take_sni(), None);
    }
}
