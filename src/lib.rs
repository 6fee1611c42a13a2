//! Blocking, synchronous TLS sockets for Rust programs that use threads, not
//! an async runtime: the secure-socket API of Dart's `dart:io` and the
//! options of Node's `tls.connect`, on [rustls](https://docs.rs/rustls).
//!
//! * [`SecurityContext`]: trust anchors (Mozilla's by default, or the
//!   system's), our own certificate chain and key, client-certificate
//!   authorities, CRLs, a stapled OCSP response.
//! * [`SecureStream`]: a TLS stream, `Read + Write`, made by
//!   [`SecureStream::connect`] or [`ConnectOptions::connect`] on the client
//!   (directly or through a [`Proxy`]), and by [`SecureListener::accept`]
//!   on the server.
//! * [`SecureListener`] and [`BindOptions`]: a TLS server socket for a
//!   thread-per-connection server, ready for a fleet: the PROXY protocol,
//!   shared [`TicketKeys`], certificates, OCSP staples and ticket keys
//!   reloaded from files that rotate, sockets from a parent process or
//!   systemd ([`listen_fds`]).
//! * [`X509Certificate`]: a parsed certificate (subject, issuer, validity,
//!   fingerprints, subjectAltNames, keys and usages).
//! * [`WebSocket`] and [`WebSocketOptions`]: a WebSocket client for `ws://`
//!   and `wss://` URLs (Dart's `WebSocket.connect`), with permessage-deflate,
//!   pings, the close handshake and [`split`](WebSocket::split) halves; and
//!   the server side, [`WebSocket::accept_with`] with the request in hand
//!   (or [`WebSocket::accept`] over any accepted stream), and
//!   [`WebSocket::accept_or_respond`] to answer plain HTTP (a `/healthz`,
//!   a page) on the same port.
//! * [`Error`]: typed errors that say what failed and what to do, and that
//!   travel through `std::io::Error` and back.
//!
//! # A client
//!
//! ```no_run
//! use std::io::{Read, Write};
//! use std::time::Duration;
//! use securenet::{ConnectOptions, SecureStream};
//!
//! # fn main() -> securenet::Result<()> {
//! // Mozilla's roots, SNI and hostname verification: the defaults.
//! let mut stream = SecureStream::connect("example.com", 443)?;
//! println!("{:?} {:?}", stream.protocol_version(), stream.cipher_suite());
//!
//! // Or with options, OpenOptions-style.
//! let mut stream = ConnectOptions::new()
//!     .supported_protocols(&["http/1.1"])
//!     .timeout(Duration::from_secs(5))
//!     .handshake_timeout(Duration::from_secs(5))
//!     .connect("example.com", 443)?;
//! stream.set_read_timeout(Some(Duration::from_secs(10)))?;
//! stream.write_all(b"HEAD / HTTP/1.1\r\nHost: example.com\r\nConnection: close\r\n\r\n")?;
//! let mut head = String::new();
//! stream.read_to_string(&mut head)?;
//! # Ok(()) }
//! ```
//!
//! # A threaded server
//!
//! `accept` returns as soon as TCP has; the handshake runs in the thread that
//! first uses the stream, so a slow client holds up only its own thread.
//!
//! ```
//! use std::io::{Read, Write};
//! use std::thread;
//! use securenet::{BindOptions, ConnectOptions, testing::TestPki};
//!
//! # fn main() -> securenet::Result<()> {
//! let pki = TestPki::new(&["localhost"])?; // use your own certificate in production
//! let listener = BindOptions::new()
//!     .supported_protocols(&["echo/1"])
//!     .bind("127.0.0.1", 0, &pki.server_context())?;
//! let port = listener.port();
//!
//! let server = thread::spawn(move || {
//!     // One thread per connection; here, just two connections.
//!     let workers: Vec<_> = listener
//!         .incoming()
//!         .take(2)
//!         .map(|stream| {
//!             thread::spawn(move || -> securenet::Result<()> {
//!                 let mut stream = stream?;
//!                 let mut line = [0u8; 4];
//!                 stream.read_exact(&mut line)?;
//!                 stream.write_all(&line)?;
//!                 stream.close()
//!             })
//!         })
//!         .collect();
//!     for w in workers {
//!         w.join().expect("worker thread").expect("worker");
//!     }
//! });
//!
//! for _ in 0..2 {
//!     let mut client = ConnectOptions::new()
//!         .context(pki.client_context())
//!         .supported_protocols(&["echo/1"])
//!         .connect("localhost", port)?;
//!     assert_eq!(client.selected_protocol().as_deref(), Some("echo/1"));
//!     client.write_all(b"ping")?;
//!     let mut echo = String::new();
//!     client.read_to_string(&mut echo)?;
//!     assert_eq!(echo, "ping");
//! }
//! server.join().expect("server thread");
//! # Ok(()) }
//! ```
//!
//! # Shutting down
//!
//! [`SecureListener::serve`] runs a thread per connection until a
//! [`StopHandle`] stops it; [`StopHandle::shutdown`] is Go's
//! `Server.Shutdown` then `Close`: stop accepting, give the connections a
//! grace period, then close the rest cleanly, and say what happened.
//!
//! ```
//! use std::io::{Read, Write};
//! use std::time::Duration;
//! use securenet::{ConnectOptions, SecureListener, SecureStream, testing::TestPki};
//!
//! # fn main() -> securenet::Result<()> {
//! let pki = TestPki::new(&["localhost"])?;
//! let listener = SecureListener::bind("127.0.0.1", 0, &pki.server_context())?;
//! let (port, stop) = (listener.port(), listener.stop_handle());
//! let server = std::thread::spawn(move || {
//!     listener.serve(|mut stream: SecureStream| -> securenet::Result<()> {
//!         let mut buf = [0u8; 64];
//!         loop {
//!             // After the grace period this read fails with
//!             // Error::ShuttingDown, and the client has had close_notify.
//!             let n = stream.read(&mut buf)?;
//!             if n == 0 {
//!                 return stream.close();
//!             }
//!             stream.write_all(&buf[..n])?;
//!         }
//!     })
//! });
//! let mut client = ConnectOptions::new()
//!     .context(pki.client_context())
//!     .connect("localhost", port)?;
//! client.write_all(b"ping")?;
//! let mut echo = [0u8; 4];
//! client.read_exact(&mut echo)?;
//!
//! // On SIGTERM, say: this client keeps its connection open, so it is
//! // closed after the grace period.
//! let report = stop.shutdown(Duration::from_millis(100));
//! assert_eq!((report.open_at_stop, report.closed), (1, 1));
//! server.join().expect("server thread")?;
//! assert_eq!(client.read(&mut echo)?, 0); // a clean TLS end
//! # Ok(()) }
//! ```
//!
//! # A WebSocket
//!
//! ```no_run
//! use securenet::{Message, WebSocket};
//!
//! # fn main() -> securenet::Result<()> {
//! let mut ws = WebSocket::connect("wss://echo.example.com/chat")?;
//! ws.send_text("hello")?;
//! if let Message::Text(reply) = ws.read()? {
//!     println!("{reply}");
//! }
//! ws.close(Some((1000, "bye")))?;
//! # Ok(()) }
//! ```
//!
//! # Trust and certificate errors
//!
//! [`SecurityContext::new`] trusts Mozilla's roots (the same everywhere),
//! [`SecurityContext::system`] the operating system's store (it reads
//! `SSL_CERT_FILE` and `SSL_CERT_DIR`), [`SecurityContext::empty`] nothing.
//! A certificate added with `set_trusted_certificates` is a root, and a
//! server presenting exactly that certificate is trusted as itself, as curl
//! and Go do. [`ConnectOptions::pin_sha256`] pins keys. A rejection is
//! [`Error::Certificate`] with a [`CertificateProblem`] that says why,
//! which certificate of the chain, and what to do; the peer gets the TLS
//! alert that fits.
//!
//! ```
//! use securenet::{CertificateProblem, ConnectOptions, SecureListener};
//! use securenet::testing::TestPki;
//!
//! # fn main() -> securenet::Result<()> {
//! let pki = TestPki::new(&["localhost"])?;
//! let listener = SecureListener::bind("127.0.0.1", 0, &pki.server_context())?;
//! let port = listener.port();
//! let server = std::thread::spawn(move || {
//!     let (mut stream, _) = listener.accept()?;
//!     stream.handshake()
//! });
//! // Mozilla's roots do not include the test CA.
//! let err = ConnectOptions::new().connect("localhost", port).unwrap_err();
//! match err.certificate_problem() {
//!     Some(CertificateProblem::UnknownIssuer { issuer, .. }) => {
//!         assert_eq!(issuer, "CN=securenet test CA");
//!     }
//!     other => panic!("{other:?}"),
//! }
//! // The server was told: an unknown_ca alert.
//! let told = server.join().unwrap().unwrap_err();
//! assert!(told.to_string().contains("unknown_ca"));
//! # Ok(()) }
//! ```
//!
//! # Features
//!
//! - `aws-lc-rs` (default) or `ring`: the crypto provider, exactly one
//!   (`default-features = false, features = ["ring"]` for ring). With
//!   aws-lc-rs the post-quantum hybrid X25519MLKEM768 is preferred; ring
//!   has X25519, secp256r1 and secp384r1. Nothing public differs.
//! - `fips`: aws-lc-rs's FIPS module and rustls's `fips` (needs Go and
//!   CMake to build): only FIPS-approved suites and groups.
//! - `testing`: `testing::TestPki`, a CA and certificates made at run
//!   time for tests and examples.
//! - `acme`: certificates from an ACME CA (Let's Encrypt and others,
//!   TLS-ALPN-01) obtained, renewed and served by the listener itself:
//!   `BindOptions::acme` and `AcmeOptions` (adds ureq, serde_json and
//!   rcgen).
//!
//! # Errors
//!
//! Every fallible call returns [`Result`]; `Read` and `Write` return
//! `std::io::Error`s that carry the [`Error`] (`Error::from(io_err)` gets it
//! back). Timeouts have kind `TimedOut`, a connection cut without a TLS
//! `close_notify` `UnexpectedEof`, TLS and certificate failures `InvalidData`.
//! Errors and the WebSocket enums are `#[non_exhaustive]`, so they can grow
//! without breaking your matches; the types of wrapped sources (the
//! `rustls::Error` behind a handshake failure) are not part of the API.
#![forbid(unsafe_code)]
#![deny(missing_docs)]
#![cfg_attr(docsrs, feature(doc_cfg))]

#[cfg(feature = "acme")]
mod acme;
mod client;
mod crypto;
mod error;
mod net;
mod server;
mod stream;
mod sync;
#[cfg(feature = "testing")]
pub mod testing;
mod time;
mod tls;
mod websocket;

#[cfg(feature = "acme")]
#[cfg_attr(docsrs, doc(cfg(feature = "acme")))]
pub use acme::{
    AcmeKeyType, AcmeOptions, DEFAULT_ACME_ORDER_TIMEOUT, DEFAULT_ACME_REQUEST_TIMEOUT,
    LETS_ENCRYPT, LETS_ENCRYPT_STAGING,
};
pub use client::{ConnectOptions, DEFAULT_CONNECT_TIMEOUT};
#[cfg(feature = "acme")]
#[cfg_attr(docsrs, doc(cfg(feature = "acme")))]
pub use error::AcmeErrorKind;
pub use error::{
    CertificateProblem, ChainCertificate, ChainPosition, Error, PeerRole, Phase, Result,
    WebSocketErrorKind,
};
pub use net::address::ListenAddress;
pub use net::connect::IpFamily;
pub use net::proxy::Proxy;
pub use net::proxy_protocol::ProxyProtocol;
#[cfg(unix)]
pub use server::activation::listen_fds;
pub use server::listener::SecureListener;
pub use server::options::BindOptions;
pub use server::reload::DEFAULT_RELOAD_INTERVAL;
pub use server::serve::Incoming;
pub use server::stop::{SHUTDOWN_CLOSE_PERIOD, ShutdownReport, StopHandle};
pub use stream::SecureStream;
pub use stream::split::{ReadHalf, WriteHalf};
pub use tls::certificate::X509Certificate;
pub use tls::context::SecurityContext;
pub use tls::params::TlsVersion;
pub use tls::session::TlsSession;
pub use tls::settings::DEFAULT_HANDSHAKE_TIMEOUT;
pub use tls::tickets::{
    DEFAULT_TICKET_KEY_WINDOW, MAX_TICKETS_PER_KEY, TICKET_KEY_LEN, TicketKeys,
};
pub use websocket::{
    Accepted, Answer, CompressionOptions, DEFAULT_CLOSE_TIMEOUT, DEFAULT_COMPRESSION_LEVEL,
    DEFAULT_MAX_FRAME_SIZE, DEFAULT_MAX_MESSAGE_SIZE, DEFAULT_UPGRADE_TIMEOUT, HttpResponse,
    MAX_REJECTION_BODY, Message, ReadyState, Rejection, UpgradeRequest, UpgradeResponse, WebSocket,
    WebSocketOptions, WsReader, WsStream, WsTransport, WsWriter,
};
