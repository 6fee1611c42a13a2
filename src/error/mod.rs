//! The crate's error type: typed kinds with context, convertible to and from
//! [`std::io::Error`].

use std::error::Error as StdError;
use std::fmt;
use std::io;
use std::path::PathBuf;
use std::time::Duration;

#[cfg(feature = "acme")]
mod acme;
mod message;
mod problem;

#[cfg(feature = "acme")]
pub use acme::AcmeErrorKind;
pub use problem::{CertificateProblem, ChainCertificate, ChainPosition};

/// A `Result` whose error is [`securenet::Error`](Error).
pub type Result<T, E = Error> = std::result::Result<T, E>;

/// Whose certificate failed: the server's (checked by a client) or a
/// client's (checked by a server).
#[non_exhaustive]
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum PeerRole {
    /// The server's certificate, checked by this client.
    Server,
    /// A client's certificate, checked by this server.
    Client,
}

/// The step of a connection that a timeout bounded.
#[non_exhaustive]
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum Phase {
    /// The TCP connect (`ConnectOptions::timeout`).
    Connect,
    /// The TLS handshake (`handshake_timeout`).
    Handshake,
    /// A read (`set_read_timeout`).
    Read,
    /// A write or flush (`set_write_timeout`).
    Write,
    /// The WebSocket upgrade: the HTTP request and its `101` answer
    /// (`WebSocketOptions::upgrade_timeout`).
    Upgrade,
    /// Opening the tunnel through a proxy (HTTP CONNECT or SOCKS5),
    /// bounded by `handshake_timeout`.
    Proxy,
}

impl fmt::Display for Phase {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(match self {
            Phase::Connect => "connect",
            Phase::Handshake => "tls handshake",
            Phase::Read => "read",
            Phase::Write => "write",
            Phase::Upgrade => "websocket upgrade",
            Phase::Proxy => "proxy tunnel",
        })
    }
}

/// How a WebSocket failed (see [`Error::WebSocket`]).
#[non_exhaustive]
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum WebSocketErrorKind {
    /// The upgrade request or response was not a WebSocket handshake: a
    /// missing or wrong `Sec-WebSocket-Accept`, `Upgrade` or `Connection`
    /// header, a malformed head. On a client, an upgrade the server refused
    /// with a status is [`Error::HttpStatus`]; on a server, an upgrade it
    /// refused on purpose is [`Refused`](Self::Refused).
    Upgrade,
    /// A server turned down a well-formed upgrade on purpose and sent its
    /// answer: `WebSocket::accept_with`'s callback returned a `Rejection`,
    /// or the request's `Origin` is not in `allowed_origins`. Not a failure
    /// of the client or of the server, as a `verifyClient` refusal in
    /// Node's `ws` is no `wsClientError`, and a Go handler that writes 403
    /// returns no error; `WebSocket::accept_or_respond` returns its
    /// callback's answers as `Ok(Accepted::Answered(status))`.
    Refused,
    /// The subprotocol or extension the peer chose is not one we offered,
    /// or its parameters are not valid.
    Negotiation,
    /// The peer broke the framing or message rules: a bad frame, invalid
    /// UTF-8, data that does not inflate, a frame or message over the size
    /// limits.
    Protocol,
    /// The peer went away: the connection ended without a close frame
    /// (close code 1006), perhaps in the middle of a frame, or stopped
    /// answering pings.
    PeerGone,
    /// Something on our side failed: no randomness for a mask, the
    /// compressor.
    Local,
}

/// Everything that can go wrong in securenet.
///
/// Wrapped sources (the `rustls::Error` inside a handshake failure, the
/// system's `io::Error`) are reachable through
/// [`source()`](std::error::Error::source) for diagnostics, but their
/// types are not part of securenet's API: they may change in any release.
///
/// Every variant converts into an [`io::Error`] with a fitting
/// [`io::ErrorKind`] (see [`Error::io_kind`]), and an `io::Error` made that
/// way converts back into the same `Error`.
///
/// `Debug` shows the kind and the message (then the chain of sources), so
/// that `fn main() -> securenet::Result<()>` prints the advice.
#[non_exhaustive]
pub enum Error {
    /// An argument was not usable: a port, a host, an ALPN name, a setting.
    #[non_exhaustive]
    InvalidInput {
        /// The argument, as given.
        input: String,
        /// What is wrong with it and what to do.
        reason: String,
    },
    /// A file could not be read.
    #[non_exhaustive]
    File {
        /// The file's path.
        path: PathBuf,
        /// The system's error.
        source: io::Error,
    },
    /// Certificate or key material could not be used: no certificate in a
    /// file, an encrypted key, a key that does not match the chain.
    #[non_exhaustive]
    Credentials {
        /// Which input: a file path, or what the bytes were for.
        input: String,
        /// What is wrong and what to do.
        reason: String,
    },
    /// The peer's certificate failed verification.
    #[non_exhaustive]
    Certificate {
        /// Why it failed.
        problem: CertificateProblem,
        /// Whose certificate it was: its advice names the settings of the
        /// side that checked it.
        peer: PeerRole,
    },
    /// The TLS handshake failed for a reason other than the peer's
    /// certificate: no common protocol version, cipher suite or ALPN
    /// protocol, an alert from the peer, a peer that is not speaking TLS.
    #[non_exhaustive]
    Handshake {
        /// What failed and what to do.
        reason: String,
        /// The underlying error, if any.
        source: Option<Box<dyn StdError + Send + Sync>>,
    },
    /// The peer violated the protocol after the handshake, or sent a fatal alert.
    #[non_exhaustive]
    Protocol {
        /// What happened.
        reason: String,
        /// The underlying error, if any.
        source: Option<Box<dyn StdError + Send + Sync>>,
    },
    /// A bounded step did not finish in time.
    #[non_exhaustive]
    Timeout {
        /// Which step.
        phase: Phase,
        /// The limit that was exceeded, if known.
        after: Option<Duration>,
    },
    /// A proxy did not open the tunnel to the target: it could not be
    /// reached, refused (its HTTP status or SOCKS reply), or wants
    /// credentials. Never shows the proxy's credentials.
    #[non_exhaustive]
    Proxy {
        /// The proxy, `scheme://host:port`.
        proxy: String,
        /// What happened and what to do.
        reason: String,
        /// The proxy's HTTP status (CONNECT) or SOCKS5 reply code, if it
        /// answered.
        status: Option<u16>,
        /// The system's error, if the proxy could not be reached.
        source: Option<io::Error>,
    },
    /// The peer closed the connection without a TLS `close_notify`: the data
    /// may have been cut short by an attacker or a crash.
    Truncated,
    /// A socket operation failed.
    #[non_exhaustive]
    Io {
        /// What was being done, e.g. "connect to example.com:443 (93.184.216.34:443)".
        context: String,
        /// The system's error.
        source: io::Error,
    },
    /// The WebSocket server answered the upgrade with another status than
    /// 101: 401, 403, 404... with the body it sent (up to 64 KiB).
    #[non_exhaustive]
    HttpStatus {
        /// The HTTP status code.
        status: u16,
        /// The reason phrase.
        reason: String,
        /// The response body, if any.
        body: Vec<u8>,
    },
    /// A WebSocket failed: [`kind`](WebSocketErrorKind) says how (the
    /// upgrade, the negotiation, the peer's frames, or the peer went away),
    /// or a server refused an upgrade on purpose
    /// ([`WebSocketErrorKind::Refused`]); where it applies, securenet
    /// closed the connection with `close_code`.
    #[non_exhaustive]
    WebSocket {
        /// What kind of failure.
        kind: WebSocketErrorKind,
        /// What was wrong.
        reason: String,
        /// The close code sent to the peer (1002, 1007, 1009...), if any.
        close_code: Option<u16>,
    },
    /// The WebSocket is closed: the close handshake is over, or the
    /// connection failed earlier.
    Closed,
    /// The listener this connection came from is shutting down
    /// ([`StopHandle::shutdown`](crate::StopHandle::shutdown)) and its grace
    /// period is over: securenet closed the connection cleanly
    /// (`close_notify`, then FIN; a WebSocket first gets a 1001 close).
    /// Kind `ConnectionAborted`.
    ShuttingDown,
    /// The operation is not supported on this platform or by rustls.
    #[non_exhaustive]
    Unsupported {
        /// What was asked for.
        what: String,
        /// Why it cannot be done and the nearest alternative.
        reason: String,
    },
    /// Getting a certificate from an ACME CA failed (feature `acme`): see
    /// [`AcmeErrorKind`] for what failed and what to do.
    #[cfg(feature = "acme")]
    #[cfg_attr(docsrs, doc(cfg(feature = "acme")))]
    #[non_exhaustive]
    Acme {
        /// What failed.
        kind: AcmeErrorKind,
        /// What happened and what to do.
        message: String,
        /// The CA's problem document (RFC 8555 section 6.7, RFC 7807) as
        /// `type: detail`, when it sent one.
        problem: Option<String>,
        /// When the CA said to try again (`Retry-After`), if it did.
        retry_after: Option<std::time::SystemTime>,
    },
}

impl Error {
    pub(crate) fn invalid_input(input: impl Into<String>, reason: impl Into<String>) -> Self {
        Error::InvalidInput {
            input: input.into(),
            reason: reason.into(),
        }
    }

    pub(crate) fn credentials(input: impl Into<String>, reason: impl Into<String>) -> Self {
        Error::Credentials {
            input: input.into(),
            reason: reason.into(),
        }
    }

    pub(crate) fn io(context: impl Into<String>, source: io::Error) -> Self {
        Error::Io {
            context: context.into(),
            source,
        }
    }

    /// A timeout the socket refused (such as `Some(Duration::ZERO)`).
    pub(crate) fn bad_timeout(which: &str, timeout: Option<Duration>, e: io::Error) -> Self {
        Error::invalid_input(format!("{timeout:?}"), format!("{which} timeout: {e}"))
    }

    /// The error of every write after one that failed (`reason`), perhaps
    /// part-way through a record: nothing more may be written.
    pub(crate) fn write_broken(reason: &str) -> Self {
        Error::io(
            format!(
                "an earlier write failed ({reason}), perhaps part-way through a record: the \
                 connection cannot carry more data; close it and connect again"
            ),
            io::ErrorKind::BrokenPipe.into(),
        )
    }

    pub(crate) fn websocket(
        kind: WebSocketErrorKind,
        reason: impl Into<String>,
        close_code: Option<u16>,
    ) -> Self {
        Error::WebSocket {
            kind,
            reason: reason.into(),
            close_code,
        }
    }

    /// The close code a WebSocket failure was closed with, if any.
    pub fn close_code(&self) -> Option<u16> {
        match self {
            Error::WebSocket { close_code, .. } => *close_code,
            _ => None,
        }
    }

    /// How a WebSocket failed, if this is a WebSocket failure.
    pub fn websocket_kind(&self) -> Option<WebSocketErrorKind> {
        match self {
            Error::WebSocket { kind, .. } => Some(*kind),
            _ => None,
        }
    }

    pub(crate) fn handshake(reason: impl Into<String>) -> Self {
        Error::Handshake {
            reason: reason.into(),
            source: None,
        }
    }

    /// The [`io::ErrorKind`] this error takes when converted to an `io::Error`:
    /// timeouts are `TimedOut`, truncation (and a WebSocket peer that went
    /// away) is `UnexpectedEof`, TLS, certificate and WebSocket failures are
    /// `InvalidData`, bad arguments `InvalidInput`.
    pub fn io_kind(&self) -> io::ErrorKind {
        match self {
            Error::InvalidInput { .. } => io::ErrorKind::InvalidInput,
            Error::File { source, .. } | Error::Io { source, .. } => source.kind(),
            Error::Proxy {
                source: Some(source),
                ..
            } => source.kind(),
            Error::Proxy {
                status: Some(401 | 407),
                ..
            } => io::ErrorKind::PermissionDenied,
            Error::Proxy { .. } => io::ErrorKind::ConnectionRefused,
            Error::Credentials { .. }
            | Error::Certificate { .. }
            | Error::Handshake { .. }
            | Error::Protocol { .. }
            | Error::HttpStatus { .. } => io::ErrorKind::InvalidData,
            Error::WebSocket {
                kind: WebSocketErrorKind::PeerGone,
                ..
            } => io::ErrorKind::UnexpectedEof,
            Error::WebSocket { .. } => io::ErrorKind::InvalidData,
            Error::Closed => io::ErrorKind::NotConnected,
            Error::ShuttingDown => io::ErrorKind::ConnectionAborted,
            Error::Timeout { .. } => io::ErrorKind::TimedOut,
            Error::Truncated => io::ErrorKind::UnexpectedEof,
            Error::Unsupported { .. } => io::ErrorKind::Unsupported,
            #[cfg(feature = "acme")]
            Error::Acme { kind, .. } => kind.io_kind(),
        }
    }

    /// Whether this is a timeout: [`Error::Timeout`], or an [`Error::Io`]
    /// whose system error is `TimedOut`.
    pub fn is_timeout(&self) -> bool {
        self.io_kind() == io::ErrorKind::TimedOut
    }

    /// The certificate problem, if this is a certificate failure.
    pub fn certificate_problem(&self) -> Option<&CertificateProblem> {
        match self {
            Error::Certificate { problem, .. } => Some(problem),
            _ => None,
        }
    }
}

impl Error {
    /// The variant's name, for `Debug`.
    fn kind_name(&self) -> &'static str {
        match self {
            Error::InvalidInput { .. } => "InvalidInput",
            Error::File { .. } => "File",
            Error::Credentials { .. } => "Credentials",
            Error::Certificate { .. } => "Certificate",
            Error::Handshake { .. } => "Handshake",
            Error::Protocol { .. } => "Protocol",
            Error::Timeout { .. } => "Timeout",
            Error::Truncated => "Truncated",
            Error::Proxy { .. } => "Proxy",
            Error::Io { .. } => "Io",
            Error::HttpStatus { .. } => "HttpStatus",
            Error::WebSocket { .. } => "WebSocket",
            Error::Closed => "Closed",
            Error::ShuttingDown => "ShuttingDown",
            Error::Unsupported { .. } => "Unsupported",
            #[cfg(feature = "acme")]
            Error::Acme { .. } => "Acme",
        }
    }
}

impl StdError for Error {
    fn source(&self) -> Option<&(dyn StdError + 'static)> {
        match self {
            Error::File { source, .. } | Error::Io { source, .. } => Some(source),
            Error::Proxy {
                source: Some(s), ..
            } => Some(s),
            Error::Handshake {
                source: Some(s), ..
            }
            | Error::Protocol {
                source: Some(s), ..
            } => Some(s.as_ref()),
            _ => None,
        }
    }
}

/// Whether a socket call's error is its timeout expiring: `WouldBlock` on
/// Unix, `TimedOut` on Windows.
pub(crate) fn is_socket_timeout(kind: io::ErrorKind) -> bool {
    matches!(kind, io::ErrorKind::WouldBlock | io::ErrorKind::TimedOut)
}

/// Maps a socket error: a socket timeout becomes [`Error::Timeout`] of
/// `phase` (after `after`), anything else [`Error::Io`] naming the phase.
pub(crate) fn io_error(e: io::Error, phase: Phase, after: Option<Duration>) -> Error {
    if is_socket_timeout(e.kind()) {
        Error::Timeout { phase, after }
    } else {
        Error::io(format!("{phase} failed"), e)
    }
}

impl From<Error> for io::Error {
    fn from(err: Error) -> io::Error {
        io::Error::new(err.io_kind(), err)
    }
}

impl From<io::Error> for Error {
    /// Recovers a `securenet::Error` carried inside an `io::Error` (as
    /// `SecureStream`'s `Read` and `Write` return them); any other `io::Error`
    /// becomes [`Error::Io`] with its kind kept.
    fn from(err: io::Error) -> Error {
        if err.get_ref().is_some_and(|inner| inner.is::<Error>()) {
            let kind = err.kind();
            return match err.into_inner().map(|inner| inner.downcast::<Error>()) {
                Some(Ok(e)) => *e,
                _ => Error::io("i/o error", io::Error::from(kind)),
            };
        }
        Error::io("i/o error", err)
    }
}
