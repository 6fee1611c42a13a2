//! One TLS connection on rustls's unbuffered API, holding its own buffers:
//! what a `SecureStream` (and each layer of TLS under it) drives.
//!
//! rustls's buffered `Connection` keeps a 4 KiB receive buffer for the
//! whole life of a connection, idle or not. Here the buffers are ours: the
//! received bytes rustls has not processed, the records waiting to be sent,
//! and the part of a record the caller had no room for. Each is freed once
//! it is drained (kept only while a bulk transfer goes on), so an idle
//! connection holds rustls's state and nothing else.
//!
//! The calls mirror what the stream did with the buffered API: feed
//! received bytes ([`feed`](Engine::feed)) or read them from the socket
//! straight into the receive buffer ([`read_tls`](Engine::read_tls)),
//! [`process_new_packets`](Engine::process_new_packets), take plaintext
//! ([`read`](Engine::read)), encrypt ([`write`](Engine::write)), and move
//! records out ([`write_tls`](Engine::write_tls)). Application data is
//! decrypted only when it is read, and each record's plaintext is copied
//! from rustls (0.23 hands it over in a `Vec` of its own) straight into
//! the caller's buffer.

use std::io::{self, IoSlice, Read, Write};
use std::sync::Arc;

use rustls::client::UnbufferedClientConnection;
use rustls::pki_types::{CertificateDer, ServerName};
use rustls::server::UnbufferedServerConnection;
use rustls::{
    ClientConfig, CommonState, HandshakeKind, ProtocolVersion, ServerConfig, SupportedCipherSuite,
};

use crate::error::{Error, PeerRole, Result};
use crate::tls::exporter::{Exporter, ServerRandom};
use crate::tls::scope::{self, Learned};
use crate::tls::tls_error::map_tls_error;
use states::{Goal, Stop, settle};

mod states;

/// The most received bytes held unprocessed: a whole handshake message
/// (rustls takes up to 64 KiB) and a full record after it. A peer that
/// sends more without completing a message is refused, as rustls does.
pub(crate) const INPUT_LIMIT: usize = 0xffff + 18_437;

/// The most plaintext one `write` encrypts (rustls's buffer limit).
const WRITE_LIMIT: usize = 64 * 1024;

/// Below this, a drained send buffer is freed; above, a bulk transfer is
/// taken to be under way and it is kept.
const KEEP_OUTPUT: usize = 16 * 1024;

/// What the decrypted side of a connection holds.
pub(crate) enum Plain {
    /// This many bytes were copied out.
    Data(usize),
    /// The peer's `close_notify`: the clean end.
    Closed,
    /// Nothing yet: more records are needed.
    Empty,
}

enum Side {
    Client(UnbufferedClientConnection),
    Server(UnbufferedServerConnection),
}

/// Received bytes: `buf[start..end]` is what rustls has not processed.
#[derive(Default)]
struct Input {
    buf: Vec<u8>,
    start: usize,
    end: usize,
}

impl Input {
    /// Room for at least `min` more bytes (up to the limit), at the end.
    fn room(&mut self, min: usize) -> &mut [u8] {
        if self.start > 0 && self.buf.len() - self.end < min {
            self.buf.copy_within(self.start..self.end, 0);
            self.end -= self.start;
            self.start = 0;
        }
        let want = (self.end + min).min(INPUT_LIMIT.max(self.end));
        if self.buf.len() < want {
            self.buf.resize(want, 0);
        }
        let end = (self.end + min).min(self.buf.len());
        &mut self.buf[self.end..end]
    }

    fn held(&self) -> usize {
        self.end - self.start
    }
}

/// Records to send: `buf[sent..end]`.
#[derive(Default)]
struct Output {
    buf: Vec<u8>,
    sent: usize,
    end: usize,
}

impl Output {
    /// Room for `min` more bytes at the end.
    fn room(&mut self, min: usize) -> &mut [u8] {
        if self.sent == self.end {
            self.sent = 0;
            self.end = 0;
        } else if self.sent > 0 && self.buf.len() - self.end < min {
            self.buf.copy_within(self.sent..self.end, 0);
            self.end -= self.sent;
            self.sent = 0;
        }
        if self.buf.len() - self.end < min {
            self.buf.resize(self.end + min, 0);
        }
        &mut self.buf[self.end..]
    }
}

/// Everything but rustls's connection (borrowed apart from it).
struct Rest {
    output: Output,
    /// Plaintext of a record that did not fit the caller's buffer (or that
    /// was decrypted on the way to encrypting): read before anything else.
    spare: Vec<u8>,
    spare_at: usize,
    peer_closed: bool,
    is_client: bool,
    /// Until the handshake ends: the server's Hello, for TLS 1.2's
    /// exporter.
    server_random: Option<Box<ServerRandom>>,
}

/// A client or server TLS connection with its buffers.
pub(crate) struct Engine {
    side: Side,
    input: Input,
    rest: Rest,
    /// The transport ended.
    eof: bool,
    /// Some byte came from the peer.
    heard: bool,
    /// The error that ended the connection (kept for later calls).
    error: Option<Box<rustls::Error>>,
    /// What calls into rustls reported for this connection (scope.rs);
    /// boxed, so that each call moves a pointer into the slot and back.
    learned: Option<Box<Learned>>,
    exporter: Option<Box<Exporter>>,
    /// Server side: the name the client sent in SNI (once the handshake
    /// is done).
    sni: Option<Box<str>>,
}

impl Engine {
    /// A client connection; its ClientHello is queued to send.
    pub(crate) fn client(
        config: Arc<ClientConfig>,
        name: ServerName<'static>,
        alpn: Vec<Vec<u8>>,
    ) -> std::result::Result<Self, rustls::Error> {
        let conn = UnbufferedClientConnection::new_with_alpn(config, name, alpn)?;
        let mut engine = Engine::new(Side::Client(conn));
        engine.process_new_packets()?;
        Ok(engine)
    }

    /// A server connection, given what the client has sent so far (the
    /// ClientHello, if it was read to choose `config`).
    pub(crate) fn server(
        config: Arc<ServerConfig>,
        received: &[u8],
    ) -> std::result::Result<Self, rustls::Error> {
        let conn = UnbufferedServerConnection::new(config)?;
        let mut engine = Engine::new(Side::Server(conn));
        engine.take_in(received);
        Ok(engine)
    }

    fn new(side: Side) -> Self {
        Engine {
            rest: Rest {
                output: Output::default(),
                spare: Vec::new(),
                spare_at: 0,
                peer_closed: false,
                is_client: matches!(side, Side::Client(_)),
                server_random: Some(Box::default()),
            },
            side,
            input: Input::default(),
            eof: false,
            heard: false,
            error: None,
            learned: Some(Box::default()),
            exporter: None,
            sni: None,
        }
    }

    fn common(&self) -> &CommonState {
        match &self.side {
            Side::Client(c) => c,
            Side::Server(s) => s,
        }
    }

    pub(crate) fn is_client(&self) -> bool {
        self.rest.is_client
    }

    /// Whether any byte has come from the peer.
    pub(crate) fn heard_from_peer(&self) -> bool {
        self.heard
    }

    pub(crate) fn is_handshaking(&self) -> bool {
        self.common().is_handshaking()
    }

    /// Copies as much of `bytes` as the receive buffer takes; `Ok(0)` for
    /// non-empty `bytes` is a peer past the limit.
    pub(crate) fn feed(&mut self, bytes: &[u8]) -> Result<usize> {
        if self.rest.peer_closed {
            // After close_notify nothing more is read: what follows goes.
            return Ok(bytes.len());
        }
        let n = self.take_in(bytes);
        if n == 0 && !bytes.is_empty() {
            return Err(full());
        }
        Ok(n)
    }

    fn take_in(&mut self, bytes: &[u8]) -> usize {
        let room = self.input.room(bytes.len());
        let n = room.len().min(bytes.len());
        room[..n].copy_from_slice(&bytes[..n]);
        self.heard |= n > 0;
        self.see_theirs(self.input.end, n);
        self.input.end += n;
        n
    }

    /// A client reads the server's Hello from what it receives (a server,
    /// from what it sends: states.rs).
    fn see_theirs(&mut self, at: usize, n: usize) {
        if let (true, Some(scan)) = (self.rest.is_client, &mut self.rest.server_random) {
            scan.see(&self.input.buf[at..at + n]);
        }
    }

    /// One read of at most `max` bytes from `rd` into the receive buffer
    /// (where rustls decrypts them); `Ok(0)` is the end of the transport.
    pub(crate) fn read_tls(&mut self, rd: &mut dyn Read, max: usize) -> io::Result<usize> {
        if self.input.held() >= INPUT_LIMIT {
            return Err(io::Error::new(io::ErrorKind::InvalidData, full()));
        }
        let n = rd.read(self.input.room(max))?;
        self.heard |= n > 0;
        // Where the bytes went (making room may have moved what was held).
        self.see_theirs(self.input.end, n);
        self.input.end += n;
        if n == 0 {
            self.eof = true;
        }
        Ok(n)
    }

    /// The last `n` bytes read or fed, before they are processed.
    pub(crate) fn just_received(&self, n: usize) -> &[u8] {
        &self.input.buf[self.input.end.saturating_sub(n)..self.input.end]
    }

    /// The transport ended: the next read tells a clean close from a cut.
    pub(crate) fn end(&mut self) {
        self.eof = true;
    }

    /// Processes the bytes fed: handshake messages, replies to queue,
    /// alerts. Application data waits, decrypted by [`read`](Self::read).
    /// An error is the peer's violation; the alert that tells it is queued.
    pub(crate) fn process_new_packets(&mut self) -> std::result::Result<(), rustls::Error> {
        self.run(&mut Goal::Progress)?;
        if self.rest.server_random.is_some() && !self.is_handshaking() {
            self.handshake_ended();
        }
        Ok(())
    }

    fn handshake_ended(&mut self) {
        let Some(server_random) = self.rest.server_random.take() else {
            return;
        };
        self.sni = self.learned.as_deref_mut().and_then(|l| l.sni.take());
        let suite = self.common().negotiated_cipher_suite();
        let secret = self.learned.as_deref_mut().and_then(|l| l.secret.take());
        self.exporter = suite
            .zip(secret)
            .and_then(|(suite, secret)| Exporter::new(suite, secret, &server_random))
            .map(Box::new);
    }

    /// Copies decrypted data into `buf` (what the caller had no room for
    /// last time first). The end of the transport without a `close_notify`
    /// is [`Error::Truncated`]; a record that fails is a TLS error (its
    /// alert queued), after any data before it has been read.
    pub(crate) fn read(&mut self, buf: &mut [u8]) -> Result<Plain> {
        let spare = &self.rest.spare[self.rest.spare_at..];
        if !spare.is_empty() {
            let n = spare.len().min(buf.len());
            buf[..n].copy_from_slice(&spare[..n]);
            self.rest.spare_at += n;
            if self.rest.spare_at == self.rest.spare.len() {
                self.rest.spare = Vec::new();
                self.rest.spare_at = 0;
            }
            return Ok(Plain::Data(n));
        }
        let mut goal = Goal::Read { buf, copied: 0 };
        let run = self.run(&mut goal);
        let Goal::Read { copied, .. } = goal else {
            return Ok(Plain::Empty);
        };
        match run {
            _ if copied > 0 => Ok(Plain::Data(copied)),
            Err(e) => Err(self.map_error(e, false)),
            Ok(_) if self.rest.peer_closed => Ok(Plain::Closed),
            Ok(_) if self.eof => Err(Error::Truncated),
            Ok(_) => Ok(Plain::Empty),
        }
    }

    /// Encrypts up to 64 KiB of `data` into the send buffer; returns how
    /// much.
    pub(crate) fn write(&mut self, data: &[u8]) -> io::Result<usize> {
        if data.is_empty() {
            return Ok(0);
        }
        let data = &data[..data.len().min(WRITE_LIMIT)];
        match self.run(&mut Goal::Encrypt(data)) {
            Ok(Stop::Done) => Ok(data.len()),
            Ok(_) => Err(io::Error::new(
                io::ErrorKind::BrokenPipe,
                "the TLS connection is closed both ways: nothing more can be written",
            )),
            Err(e) => Err(io::Error::new(io::ErrorKind::InvalidData, e)),
        }
    }

    /// Encrypts the slices, packed into as few records as they fit.
    pub(crate) fn write_vectored(&mut self, bufs: &[IoSlice<'_>]) -> io::Result<usize> {
        let mut nonempty = bufs.iter().filter(|b| !b.is_empty());
        match (nonempty.next(), nonempty.next()) {
            (None, _) => Ok(0),
            (Some(one), None) => self.write(one),
            _ => {
                let mut packed = Vec::new();
                for b in bufs {
                    let take = b.len().min(WRITE_LIMIT - packed.len());
                    packed.extend_from_slice(&b[..take]);
                    if packed.len() == WRITE_LIMIT {
                        break;
                    }
                }
                self.write(&packed)
            }
        }
    }

    /// Queues a `close_notify` (nothing once the connection has failed).
    pub(crate) fn send_close_notify(&mut self) {
        let _ = self.run(&mut Goal::CloseNotify);
    }

    /// Whether records wait to be sent.
    pub(crate) fn wants_write(&self) -> bool {
        self.rest.output.sent < self.rest.output.end
    }

    /// One write of the queued records to `out`.
    pub(crate) fn write_tls(&mut self, out: &mut dyn Write) -> io::Result<usize> {
        let o = &mut self.rest.output;
        if o.sent == o.end {
            return Ok(0);
        }
        let n = out.write(&o.buf[o.sent..o.end])?;
        o.sent += n;
        if o.sent == o.end {
            if o.end < KEEP_OUTPUT {
                o.buf = Vec::new();
            }
            o.sent = 0;
            o.end = 0;
        }
        Ok(n)
    }

    /// Frees the receive buffer once drained, unless `bulk`: a bulk
    /// transfer is under way and will fill it again.
    pub(crate) fn release_if_idle(&mut self, bulk: bool) {
        if self.input.held() == 0 && !bulk {
            self.input = Input::default();
        }
    }

    /// Runs rustls's states toward `goal`. An error ends the connection:
    /// it is kept, and the alert rustls queued for it is moved out.
    fn run(&mut self, goal: &mut Goal<'_>) -> std::result::Result<Stop, rustls::Error> {
        if let Some(e) = &self.error {
            return Err((**e).clone());
        }
        match self.pass(goal) {
            Ok(stop) => Ok(stop),
            Err(e) => {
                self.error = Some(Box::new(e.clone()));
                // The alert rustls queued: its queue is taken before it
                // looks at the input again (which would fail again), so
                // only while it has something queued.
                for _ in 0..64 {
                    if !self.common().wants_write() {
                        break;
                    }
                    if self.step(&mut Goal::Stash).is_err() {
                        break;
                    }
                }
                Err(e)
            }
        }
    }

    fn pass(&mut self, goal: &mut Goal<'_>) -> std::result::Result<Stop, rustls::Error> {
        loop {
            match self.step(goal)? {
                Stop::Again => {}
                stop => return Ok(stop),
            }
        }
    }

    /// Hands rustls the unprocessed input once and handles the state it
    /// reaches.
    fn step(&mut self, goal: &mut Goal<'_>) -> std::result::Result<Stop, rustls::Error> {
        let Engine {
            side,
            input,
            rest,
            learned,
            ..
        } = self;
        let window = &mut input.buf[input.start..input.end];
        // What the configuration's key log, verifier and resolver report
        // in this call is this connection's.
        let (discard, step) = scope::within(learned, || match side {
            Side::Client(c) => settle(c.process_tls_records(window), rest, goal),
            Side::Server(s) => settle(s.process_tls_records(window), rest, goal),
        });
        input.start = (input.start + discard).min(input.end);
        if input.start == input.end {
            input.start = 0;
            input.end = 0;
        }
        step
    }

    /// The peer's certificate chain, leaf first.
    pub(crate) fn peer_certificates(&self) -> Option<&[CertificateDer<'static>]> {
        self.common().peer_certificates()
    }

    pub(crate) fn alpn_protocol(&self) -> Option<&[u8]> {
        self.common().alpn_protocol()
    }

    pub(crate) fn protocol_version(&self) -> Option<ProtocolVersion> {
        self.common().protocol_version()
    }

    pub(crate) fn negotiated_cipher_suite(&self) -> Option<SupportedCipherSuite> {
        self.common().negotiated_cipher_suite()
    }

    pub(crate) fn negotiated_key_exchange_group(
        &self,
    ) -> Option<&'static dyn rustls::crypto::SupportedKxGroup> {
        self.common().negotiated_key_exchange_group()
    }

    pub(crate) fn handshake_kind(&self) -> Option<HandshakeKind> {
        self.common().handshake_kind()
    }

    /// A rustls error this connection returned, as securenet's, with the
    /// typed problem a verifier of ours reported for it.
    pub(crate) fn map_error(&mut self, e: rustls::Error, handshaking: bool) -> Error {
        let peer = if self.rest.is_client {
            PeerRole::Server
        } else {
            PeerRole::Client
        };
        let problem = self.learned.as_deref_mut().and_then(|l| l.problem.take());
        map_tls_error(e, handshaking, problem, peer)
    }

    /// Client side: why the server's certificate failed verification, if
    /// it was let through anyway in this connection's handshake.
    pub(crate) fn take_unverified(&mut self) -> Option<crate::error::CertificateProblem> {
        self.learned.as_deref_mut()?.unverified.take()
    }

    /// Client side: the OCSP response the server stapled.
    pub(crate) fn take_stapled(&mut self) -> Option<Vec<u8>> {
        self.learned.as_deref_mut()?.stapled.take()
    }

    /// The handshake's reports are taken: what calls into rustls report
    /// from now on (nothing, in rustls 0.23) is dropped, and the record's
    /// memory is freed (an idle connection keeps nothing it no longer
    /// needs).
    pub(crate) fn forget_reports(&mut self) {
        self.learned = None;
    }

    /// Server side: the name the client sent in SNI.
    pub(crate) fn sni(&self) -> Option<&str> {
        self.sni.as_deref()
    }

    /// Keying material (RFC 5705 / RFC 8446 §7.5).
    pub(crate) fn export_keying_material(
        &self,
        out: &mut [u8],
        label: &[u8],
        context: Option<&[u8]>,
    ) -> Result<()> {
        if self.is_handshaking() {
            return Err(Error::invalid_input(
                "export_keying_material",
                "the handshake has not completed",
            ));
        }
        match &self.exporter {
            Some(exporter) => exporter.export(out, label, context),
            None => Err(Error::invalid_input(
                "export_keying_material",
                "this connection's exporter secret is not known (the handshake's first messages \
                 could not be read)",
            )),
        }
    }
}

fn full() -> Error {
    Error::io(
        "reading tls data failed",
        io::Error::new(
            io::ErrorKind::InvalidData,
            "the peer sent more than one TLS message may hold without completing it",
        ),
    )
}

#[cfg(test)]
mod tests;
