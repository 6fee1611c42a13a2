//! `WebSocketOptions` and `CompressionOptions` (Dart `WebSocket.connect`'s
//! parameters and `CompressionOptions`).

use std::fmt;
use std::time::Duration;

use http::{HeaderName, HeaderValue};

use crate::client::ConnectOptions;
use crate::error::{Error, Result};

/// The default cap on one message, after reassembly and inflation: 64 MiB.
pub const DEFAULT_MAX_MESSAGE_SIZE: usize = 64 * 1024 * 1024;
/// The default cap on one frame's payload: 16 MiB (as tungstenite).
pub const DEFAULT_MAX_FRAME_SIZE: usize = 16 * 1024 * 1024;
/// The default permessage-deflate compression level: 1, the fastest (as
/// Go's gorilla/websocket). See [`CompressionOptions::level`].
pub const DEFAULT_COMPRESSION_LEVEL: u32 = 1;
/// The default bound on waiting for the peer's close frame: 10 seconds.
pub const DEFAULT_CLOSE_TIMEOUT: Duration = Duration::from_secs(10);
/// The default bound on the client's WebSocket upgrade (the HTTP request
/// and the server's `101`): 30 seconds.
pub const DEFAULT_UPGRADE_TIMEOUT: Duration = Duration::from_secs(30);

/// permessage-deflate settings (RFC 7692), with Dart's field names.
///
/// The default offers compression with context takeover both ways and the
/// full 15-bit windows, as Dart's `CompressionOptions.compressionDefault`,
/// and compresses at level [`DEFAULT_COMPRESSION_LEVEL`] (1, the fastest).
/// The fields can be read; set them with the methods of the same names, so
/// that settings added later do not break your code:
///
/// ```
/// use securenet::CompressionOptions;
///
/// let small = CompressionOptions::default()
///     .client_no_context_takeover(true)
///     .client_max_window_bits(Some(10));
/// assert_eq!(small.client_max_window_bits, Some(10));
///
/// // Fewer bytes for more CPU (large, compressible messages).
/// let tight = CompressionOptions::default().level(6);
/// assert_eq!(tight.level, 6);
/// ```
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
#[non_exhaustive]
pub struct CompressionOptions {
    /// Offer (client) or accept (server) permessage-deflate.
    pub enabled: bool,
    /// The client resets its compression context after each message.
    pub client_no_context_takeover: bool,
    /// The server resets its compression context after each message.
    pub server_no_context_takeover: bool,
    /// The client's LZ77 window, 8 to 15 bits (`None`: the default, 15).
    pub client_max_window_bits: Option<u8>,
    /// The server's LZ77 window, 8 to 15 bits (`None`: the default, 15).
    pub server_max_window_bits: Option<u8>,
    /// How hard this end compresses, 1 (fastest) to 9 (smallest); not
    /// negotiated, so each end picks its own.
    pub level: u32,
}

impl Default for CompressionOptions {
    fn default() -> Self {
        CompressionOptions {
            enabled: true,
            client_no_context_takeover: false,
            server_no_context_takeover: false,
            client_max_window_bits: None,
            server_max_window_bits: None,
            level: DEFAULT_COMPRESSION_LEVEL,
        }
    }
}

impl CompressionOptions {
    /// No compression (Dart `CompressionOptions.compressionOff`).
    pub fn disabled() -> Self {
        CompressionOptions {
            enabled: false,
            ..CompressionOptions::default()
        }
    }

    /// Offer (client) or accept (server) permessage-deflate.
    pub fn enabled(mut self, enabled: bool) -> Self {
        self.enabled = enabled;
        self
    }

    /// The client resets its compression context after each message.
    pub fn client_no_context_takeover(mut self, reset: bool) -> Self {
        self.client_no_context_takeover = reset;
        self
    }

    /// The server resets its compression context after each message.
    pub fn server_no_context_takeover(mut self, reset: bool) -> Self {
        self.server_no_context_takeover = reset;
        self
    }

    /// The client's LZ77 window, 8 to 15 bits (`None`: 15); others fail
    /// when the options are used.
    pub fn client_max_window_bits(mut self, bits: Option<u8>) -> Self {
        self.client_max_window_bits = bits;
        self
    }

    /// The server's LZ77 window, 8 to 15 bits (`None`: 15); others fail
    /// when the options are used.
    pub fn server_max_window_bits(mut self, bits: Option<u8>) -> Self {
        self.server_max_window_bits = bits;
        self
    }

    /// How hard this end compresses the messages it sends: 1 (the
    /// default, fastest) to 9 (smallest), zlib's levels; others fail when
    /// the options are used. Each end picks its own (RFC 7692 does not
    /// negotiate it), and the peer inflates any level alike.
    ///
    /// Level 1 uses fixed Huffman codes and builds no code tables per
    /// message, which is most of a small message's cost at the other
    /// levels. On JSON text (`cargo bench --bench compare -- websocket`,
    /// `BENCHMARKS.md`), level 1 compresses 64-byte messages to 28 % and
    /// 16 KiB ones to 24 %, where level 6 (zlib's default, Dart's and Node
    /// `ws`'s) gets 23.5 % and 14.5 %, and a wss echo of such messages runs
    /// 1.4-1.9 times (64 B) to 3 times (16 KiB) as many messages per second.
    /// Level 2 gets close to level 6's size on messages of 1 KiB and more
    /// at under half its CPU. Go's gorilla/websocket also defaults to 1.
    pub fn level(mut self, level: u32) -> Self {
        self.level = level;
        self
    }

    pub(crate) fn validate(&self) -> Result<()> {
        if !(1..=9).contains(&self.level) {
            return Err(Error::invalid_input(
                format!("CompressionOptions::level: {}", self.level),
                "the compression level must be 1 (fastest) to 9 (smallest); for no compression \
                 use CompressionOptions::disabled()",
            ));
        }
        for (name, bits) in [
            ("client_max_window_bits", self.client_max_window_bits),
            ("server_max_window_bits", self.server_max_window_bits),
        ] {
            if let Some(b) = bits {
                if !(8..=15).contains(&b) {
                    return Err(Error::invalid_input(
                        format!("{name}: {b}"),
                        "window bits must be 8 to 15",
                    ));
                }
            }
        }
        Ok(())
    }
}

/// Options for a WebSocket, `OpenOptions`-style, ending in
/// [`connect`](Self::connect) (or used by [`WebSocket::accept`]).
///
/// [`WebSocket::accept`]: crate::WebSocket::accept
#[derive(Clone)]
pub struct WebSocketOptions {
    pub(crate) protocols: Vec<String>,
    pub(crate) headers: Vec<(String, String)>,
    pub(crate) compression: CompressionOptions,
    pub(crate) connect: ConnectOptions,
    pub(crate) ping_interval: Option<Duration>,
    pub(crate) max_message_size: usize,
    pub(crate) max_frame_size: usize,
    pub(crate) close_timeout: Duration,
    pub(crate) upgrade_timeout: Duration,
    pub(crate) allowed_origins: Vec<String>,
}

impl fmt::Debug for WebSocketOptions {
    /// The fields, with the values of headers that may carry a credential
    /// (names with `auth`, `token`, `key`, `cookie`...) and the
    /// subprotocols that may (with `bearer`, `token` or `auth`) shown as
    /// `***`.
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("WebSocketOptions")
            .field("protocols", &ShownProtocols(&self.protocols))
            .field("headers", &ShownHeaders(&self.headers))
            .field("compression", &self.compression)
            .field("connect", &self.connect)
            .field("ping_interval", &self.ping_interval)
            .field("max_message_size", &self.max_message_size)
            .field("max_frame_size", &self.max_frame_size)
            .field("close_timeout", &self.close_timeout)
            .field("upgrade_timeout", &self.upgrade_timeout)
            .field("allowed_origins", &self.allowed_origins)
            .finish()
    }
}

/// Whether the value of the header `name` may be a credential, never to be
/// shown: `Authorization`, `Proxy-Authorization`, `Cookie`, `Set-Cookie`,
/// and any name with `auth`, `token`, `key`, `secret`, `password`,
/// `session`, `cookie`, `credential` or `signature` in it.
pub(crate) fn is_secret_header(name: &str) -> bool {
    let name = name.to_ascii_lowercase();
    [
        "auth",
        "token",
        "key",
        "secret",
        "password",
        "session",
        "cookie",
        "credential",
        "signature",
    ]
    .iter()
    .any(|word| name.contains(word))
}

/// Whether a subprotocol may carry a credential, never to be shown: one
/// with `bearer`, `token` or `auth` in it (any case), as Kubernetes'
/// `base64url.bearer.authorization.k8s.io.<token>` does.
pub(crate) fn is_secret_protocol(protocol: &str) -> bool {
    let protocol = protocol.to_ascii_lowercase();
    ["bearer", "token", "auth"]
        .iter()
        .any(|word| protocol.contains(word))
}

/// A subprotocol as messages and `Debug` show it: `***` if it may carry
/// a credential (see [`is_secret_protocol`]).
pub(crate) fn shown_protocol(protocol: &str) -> &str {
    if is_secret_protocol(protocol) {
        "***"
    } else {
        protocol
    }
}

/// Subprotocols as `Debug` shows them: those that may carry a credential
/// as `***`.
pub(crate) struct ShownProtocols<'a>(pub(crate) &'a [String]);

impl fmt::Debug for ShownProtocols<'_> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_list()
            .entries(self.0.iter().map(|p| shown_protocol(p)))
            .finish()
    }
}

/// Headers as `Debug` shows them: the values of secret ones as `***`, and
/// in `Sec-WebSocket-Protocol` each subprotocol that may carry a
/// credential.
pub(crate) struct ShownHeaders<'a>(pub(crate) &'a [(String, String)]);

impl fmt::Debug for ShownHeaders<'_> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_list()
            .entries(self.0.iter().map(|(name, value)| {
                let value = if is_secret_header(name) {
                    "***".to_owned()
                } else if name.eq_ignore_ascii_case("sec-websocket-protocol") {
                    value
                        .split(',')
                        .map(|p| shown_protocol(p.trim()))
                        .collect::<Vec<_>>()
                        .join(", ")
                } else {
                    value.clone()
                };
                (name, value)
            }))
            .finish()
    }
}

impl Default for WebSocketOptions {
    /// No subprotocols or extra headers, permessage-deflate offered, the
    /// default `ConnectOptions`, no pings, 64 MiB messages, 16 MiB frames,
    /// 10 s to close.
    fn default() -> Self {
        WebSocketOptions {
            protocols: Vec::new(),
            headers: Vec::new(),
            compression: CompressionOptions::default(),
            connect: ConnectOptions::new(),
            ping_interval: None,
            max_message_size: DEFAULT_MAX_MESSAGE_SIZE,
            max_frame_size: DEFAULT_MAX_FRAME_SIZE,
            close_timeout: DEFAULT_CLOSE_TIMEOUT,
            upgrade_timeout: DEFAULT_UPGRADE_TIMEOUT,
            allowed_origins: Vec::new(),
        }
    }
}

/// The headers the WebSocket handshake controls (Dart ignores them too).
const CONTROLLED: [&str; 5] = [
    "connection",
    "sec-websocket-key",
    "sec-websocket-protocol",
    "sec-websocket-version",
    "upgrade",
];

/// Checks one header: a valid name (an HTTP token) and a value of text,
/// spaces and tabs (RFC 9110's field-value, obs-text included), with no
/// line breaks or other controls.
pub(crate) fn check_header(name: &str, value: &str) -> Result<()> {
    if !is_token(name) {
        return Err(Error::invalid_input(
            name,
            "not a valid HTTP header name (letters, digits and !#$%&'*+-.^_`|~ only)",
        ));
    }
    if HeaderValue::from_bytes(value.as_bytes()).is_err() {
        // The value as the error names it: never a credential's, and no
        // line break to split a log line.
        let shown = if is_secret_header(name) {
            format!("{name}: ***")
        } else {
            format!("{name}: {}", value.escape_debug())
        };
        return Err(Error::invalid_input(
            shown,
            format!(
                "not a valid value for header '{name}': no control characters or line breaks \
                 (trim the line break of a value read from a file)"
            ),
        ));
    }
    Ok(())
}

/// An HTTP token (RFC 9110 section 5.6.2), as header names and
/// subprotocols must be: what `http::HeaderName` takes.
fn is_token(s: &str) -> bool {
    HeaderName::from_bytes(s.as_bytes()).is_ok()
}

impl WebSocketOptions {
    /// The defaults (see [`Default`]).
    pub fn new() -> Self {
        Self::default()
    }

    /// The subprotocols to offer, most preferred first (Dart `protocols`).
    /// On a server ([`WebSocket::accept`](crate::WebSocket::accept)), the
    /// ones it speaks: it picks the client's first that is among them.
    pub fn protocols<P: AsRef<str>>(mut self, protocols: &[P]) -> Self {
        self.protocols = protocols.iter().map(|p| p.as_ref().to_owned()).collect();
        self
    }

    /// Adds a request header (Dart `headers`); repeat a name for a list
    /// value, sent in order. The five headers the handshake controls
    /// (`connection`, `sec-websocket-key`, `sec-websocket-protocol`,
    /// `sec-websocket-version`, `upgrade`) are ignored in any letter case.
    /// An invalid name or value is an error at `connect`.
    pub fn header(mut self, name: &str, value: &str) -> Self {
        self.headers.push((name.to_owned(), value.to_owned()));
        self
    }

    /// permessage-deflate settings (Dart `compression`); offered by default.
    pub fn compression(mut self, compression: CompressionOptions) -> Self {
        self.compression = compression;
        self
    }

    /// The TLS and TCP options for `wss://` (and TCP ones for `ws://`):
    /// context, on_bad_certificate, timeouts, key_log... ALPN is set to
    /// `http/1.1`. The handshake timeout also bounds the HTTP upgrade.
    pub fn connect_options(mut self, options: ConnectOptions) -> Self {
        self.connect = options;
        self
    }

    /// Sends a ping every `interval` while `read` waits; a pong not back
    /// within the next interval closes the connection with 1001 and fails
    /// `read` (Dart `pingInterval`). An interval too large to schedule
    /// (such as `Duration::MAX`) sends no pings; zero is an error at
    /// `connect`.
    pub fn ping_interval(mut self, interval: Duration) -> Self {
        self.ping_interval = Some(interval);
        self
    }

    /// The largest message accepted, after reassembly and inflation
    /// (default [`DEFAULT_MAX_MESSAGE_SIZE`]); a larger one closes the
    /// connection with 1009, so a compression bomb is an error, not an
    /// out-of-memory. Memory grows with the bytes that arrive, never with
    /// what a frame header announces, so `usize::MAX` means "no cap" and
    /// costs nothing until a message comes. Zero is an error at `connect`
    /// and `accept`.
    pub fn max_message_size(mut self, bytes: usize) -> Self {
        self.max_message_size = bytes;
        self
    }

    /// The largest frame payload accepted (default
    /// [`DEFAULT_MAX_FRAME_SIZE`], and never more than
    /// [`max_message_size`](Self::max_message_size)); a larger frame closes
    /// the connection with 1009. Zero is an error at `connect` and `accept`.
    pub fn max_frame_size(mut self, bytes: usize) -> Self {
        self.max_frame_size = bytes;
        self
    }

    /// How long `close` may take in all: sending our close frame, waiting
    /// for the peer's and ending the transport (default
    /// [`DEFAULT_CLOSE_TIMEOUT`]). Zero sends the close frame and does not
    /// wait for an answer.
    pub fn close_timeout(mut self, timeout: Duration) -> Self {
        self.close_timeout = timeout;
        self
    }

    /// Bounds the client's upgrade as a whole: sending the HTTP request and
    /// reading the server's `101` answer, however slowly it comes (default
    /// [`DEFAULT_UPGRADE_TIMEOUT`]). TCP and TLS are bounded by the
    /// connect options' own timeouts. Zero is an error at `connect`. On a
    /// server ([`accept_with`](crate::WebSocket::accept_with),
    /// [`accept_or_respond`](crate::WebSocket::accept_or_respond)), it
    /// bounds reading the request and writing the answer, a plain HTTP
    /// response's body included.
    pub fn upgrade_timeout(mut self, timeout: Duration) -> Self {
        self.upgrade_timeout = timeout;
        self
    }

    /// Server side: the `Origin`s a browser page may connect from
    /// (`https://app.example.com`, compared without regard to case); a
    /// request from any other origin is refused with 403 Forbidden before
    /// [`accept_with`](crate::WebSocket::accept_with)'s callback. Empty (the
    /// default) allows every origin. Requests without an `Origin` (clients
    /// that are not browsers) are allowed: the check guards against other
    /// sites' pages using a visitor's browser (cross-site WebSocket
    /// hijacking), not against other programs.
    pub fn allowed_origins<O: AsRef<str>>(mut self, origins: &[O]) -> Self {
        self.allowed_origins = origins.iter().map(|o| o.as_ref().to_owned()).collect();
        self
    }

    /// [`allowed_origins`](Self::allowed_origins).
    pub fn get_allowed_origins(&self) -> &[String] {
        &self.allowed_origins
    }

    /// The bound on the upgrade ([`upgrade_timeout`](Self::upgrade_timeout)).
    pub fn get_upgrade_timeout(&self) -> Duration {
        self.upgrade_timeout
    }

    /// The subprotocols offered ([`protocols`](Self::protocols)).
    pub fn get_protocols(&self) -> &[String] {
        &self.protocols
    }

    /// The permessage-deflate settings ([`compression`](Self::compression)).
    pub fn get_compression(&self) -> CompressionOptions {
        self.compression
    }

    /// The options of the TCP and TLS connection
    /// ([`connect_options`](Self::connect_options)).
    pub fn get_connect_options(&self) -> &ConnectOptions {
        &self.connect
    }

    /// The ping interval ([`ping_interval`](Self::ping_interval)), if any.
    pub fn get_ping_interval(&self) -> Option<Duration> {
        self.ping_interval
    }

    /// The cap on a message ([`max_message_size`](Self::max_message_size)).
    pub fn get_max_message_size(&self) -> usize {
        self.max_message_size
    }

    /// The cap on a frame ([`max_frame_size`](Self::max_frame_size)).
    pub fn get_max_frame_size(&self) -> usize {
        self.max_frame_size
    }

    /// The bound on closing ([`close_timeout`](Self::close_timeout)).
    pub fn get_close_timeout(&self) -> Duration {
        self.close_timeout
    }

    /// Refuses sizes and intervals that could never work.
    pub(crate) fn check_limits(&self) -> Result<()> {
        if self.upgrade_timeout.is_zero() {
            return Err(Error::invalid_input(
                "upgrade_timeout(Duration::ZERO)",
                "no upgrade can finish in no time: give a positive duration",
            ));
        }
        if self.max_message_size == 0 {
            return Err(Error::invalid_input(
                "max_message_size(0)",
                "no message but an empty one could be received: give at least 1 byte",
            ));
        }
        if self.max_frame_size == 0 {
            return Err(Error::invalid_input(
                "max_frame_size(0)",
                "no frame but an empty one could be received: give at least 1 byte",
            ));
        }
        if self.ping_interval.is_some_and(|i| i.is_zero()) {
            return Err(Error::invalid_input(
                "ping_interval(Duration::ZERO)",
                "a ping interval must be longer than zero",
            ));
        }
        Ok(())
    }

    /// The user's headers, checked, without the controlled ones.
    pub(crate) fn checked_headers(&self) -> Result<Vec<(String, String)>> {
        let mut out = Vec::new();
        for (name, value) in &self.headers {
            check_header(name, value)?;
            if CONTROLLED.iter().any(|c| c.eq_ignore_ascii_case(name)) {
                continue;
            }
            out.push((name.clone(), value.clone()));
        }
        for p in &self.protocols {
            if !is_token(p) {
                return Err(Error::invalid_input(
                    p,
                    "not a valid subprotocol name (an HTTP token: no spaces, commas or quotes)",
                ));
            }
        }
        self.compression.validate()?;
        self.check_limits()?;
        Ok(out)
    }
}
