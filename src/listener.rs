//! `SecureListener` and `BindOptions`: the server side (Dart
//! `SecureServerSocket.bind` / `RawSecureServerSocket.bind`).

use std::borrow::Borrow;
use std::fmt;
use std::net::{SocketAddr, TcpListener};
use std::sync::{Arc, RwLock};
use std::time::Duration;

use socket2::{Domain, Protocol, Socket, Type};

use crate::address::ListenAddress;
use crate::certificate::X509Certificate;
use crate::client::DEFAULT_HANDSHAKE_TIMEOUT;
use crate::context::{SecurityContext, callback_key};
use crate::error::{Error, Result};
use crate::limiter::Limiter;
use crate::serve_settings::ServeSettings;
use crate::server_config::{ServerSetup, SniFn};
use crate::stop::{Stop, StopHandle};
use crate::stream::SecureStream;
use crate::trace::{TraceFn, stderr_sink};
use crate::transport::{Ops, Transport};
use crate::verify::BadCertificateFn;

/// The backlog passed to `listen(2)` for `backlog(0)`: Linux's `SOMAXCONN`;
/// the kernel caps it at `net.core.somaxconn`.
const SYSTEM_BACKLOG: i32 = 4096;

/// The smallest and largest `thread_stack_size` accepted.
const MIN_STACK: usize = 64 * 1024;
const MAX_STACK: usize = 1 << 30;

/// Options for a listener, `OpenOptions`-style, ending in
/// [`bind`](Self::bind). The names are Dart's `SecureServerSocket.bind`
/// parameters in snake case; options are `Clone + Send + Sync`.
#[derive(Clone)]
pub struct BindOptions {
    backlog: u32,
    v6_only: bool,
    request_client_certificate: bool,
    require_client_certificate: bool,
    alpn: Vec<String>,
    shared: bool,
    handshake_timeout: Duration,
    allow_half_open: bool,
    sni_contexts: Vec<(String, SecurityContext)>,
    on_sni: Option<SniFn>,
    on_bad_client_certificate: Option<BadCertificateFn>,
    trace: Option<TraceFn>,
    pub(crate) serve: ServeSettings,
}

impl fmt::Debug for BindOptions {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("BindOptions")
            .field("backlog", &self.backlog)
            .field("v6_only", &self.v6_only)
            .field(
                "request_client_certificate",
                &self.request_client_certificate,
            )
            .field(
                "require_client_certificate",
                &self.require_client_certificate,
            )
            .field("supported_protocols", &self.alpn)
            .field("shared", &self.shared)
            .field("handshake_timeout", &self.handshake_timeout)
            .field("allow_half_open", &self.allow_half_open)
            .field(
                "sni_contexts",
                &self.sni_contexts.iter().map(|(n, _)| n).collect::<Vec<_>>(),
            )
            .field("on_sni", &self.on_sni.is_some())
            .field(
                "on_bad_client_certificate",
                &self.on_bad_client_certificate.is_some(),
            )
            .field("trace", &self.trace.is_some())
            .field("serve", &self.serve)
            .finish()
    }
}

impl Default for BindOptions {
    /// Dart's defaults: backlog 0 (the system's), not v6-only, no client
    /// certificates, no ALPN, not shared; handshakes bounded by
    /// [`DEFAULT_HANDSHAKE_TIMEOUT`](crate::DEFAULT_HANDSHAKE_TIMEOUT).
    fn default() -> Self {
        BindOptions {
            backlog: 0,
            v6_only: false,
            request_client_certificate: false,
            require_client_certificate: false,
            alpn: Vec::new(),
            shared: false,
            handshake_timeout: DEFAULT_HANDSHAKE_TIMEOUT,
            allow_half_open: false,
            sni_contexts: Vec::new(),
            on_sni: None,
            on_bad_client_certificate: None,
            trace: None,
            serve: ServeSettings::default(),
        }
    }
}

impl BindOptions {
    /// The defaults (see [`Default`]).
    pub fn new() -> Self {
        Self::default()
    }

    /// The `listen(2)` backlog: how many connections the kernel queues before
    /// `accept`. 0 (the default) lets the system choose its maximum.
    pub fn backlog(mut self, backlog: u32) -> Self {
        self.backlog = backlog;
        self
    }

    /// On an IPv6 address, whether to refuse IPv4 clients (`IPV6_V6ONLY`).
    /// Default `false`: `::` accepts both.
    pub fn v6_only(mut self, v6_only: bool) -> Self {
        self.v6_only = v6_only;
        self
    }

    /// Asks clients for a certificate; a client without one still connects
    /// and its stream's `peer_certificate()` is `None`. A certificate that is
    /// sent must chain to the context's client authorities.
    pub fn request_client_certificate(mut self, request: bool) -> Self {
        self.request_client_certificate = request;
        self
    }

    /// Requires a client certificate chaining to the context's client
    /// authorities (or, if none were set, its trusted certificates); implies
    /// [`request_client_certificate`](Self::request_client_certificate).
    pub fn require_client_certificate(mut self, require: bool) -> Self {
        self.require_client_certificate = require;
        self
    }

    /// The ALPN protocols this server speaks. It picks the client's most
    /// preferred one among them; a client that offers only others is refused
    /// with a `no_application_protocol` alert.
    pub fn supported_protocols<P: AsRef<str>>(mut self, protocols: &[P]) -> Self {
        self.alpn = protocols.iter().map(|p| p.as_ref().to_owned()).collect();
        self
    }

    /// Lets several listeners bind the same address and port and share its
    /// connections (`SO_REUSEPORT`; Unix only, elsewhere `bind` fails with
    /// [`Error::Unsupported`]).
    pub fn shared(mut self, shared: bool) -> Self {
        self.shared = shared;
        self
    }

    /// Bounds each server-side handshake. Default
    /// [`DEFAULT_HANDSHAKE_TIMEOUT`](crate::DEFAULT_HANDSHAKE_TIMEOUT).
    pub fn handshake_timeout(mut self, timeout: Duration) -> Self {
        self.handshake_timeout = timeout;
        self
    }

    /// `false` (the default, as Node's `net.Server`) answers a client's
    /// `close_notify` with ours and shuts the write side; `true` keeps
    /// writing possible until `shutdown_write` or `close`.
    pub fn allow_half_open(mut self, allow: bool) -> Self {
        self.allow_half_open = allow;
        self
    }

    /// Serves `ctx`'s certificate to clients that ask for `name` in SNI (an
    /// exact name, or `*.example.com` for one label); others get the
    /// listener's context. Repeat for more names. Node's `SNICallback` with a
    /// table, Go's `GetCertificate`.
    pub fn sni_context(mut self, name: &str, ctx: SecurityContext) -> Self {
        self.sni_contexts.push((name.to_owned(), ctx));
        self
    }

    /// Asked with the SNI name when no [`sni_context`](Self::sni_context)
    /// matches: `Some(ctx)` serves that context's certificate, `None` the
    /// listener's. Runs in the handshake's thread; each context's
    /// configuration is built once and kept in it.
    pub fn on_sni(
        mut self,
        callback: impl Fn(&str) -> Option<SecurityContext> + Send + Sync + 'static,
    ) -> Self {
        self.on_sni = Some(Arc::new(callback));
        self
    }

    /// Asked, with the client's leaf certificate, only when a client
    /// certificate fails verification (untrusted, self-signed, expired...):
    /// `true` accepts it (its handshake signature is still checked). The
    /// server-side counterpart of `ConnectOptions::on_bad_certificate`; with
    /// it, `require_client_certificate` works without client authorities.
    pub fn on_bad_client_certificate(
        mut self,
        callback: impl Fn(&X509Certificate) -> bool + Send + Sync + 'static,
    ) -> Self {
        self.on_bad_client_certificate = Some(Arc::new(callback));
        self
    }

    /// Bounds the streams from this listener alive at once: `accept` (and
    /// so [`SecureListener::serve`]) waits, rather than accepting without
    /// bound, while `n` are alive. A stream counts until it (or both its
    /// split halves) is dropped.
    pub fn max_connections(mut self, n: usize) -> Self {
        self.serve.max_connections = Some(n);
        self
    }

    /// The stack size of the threads [`SecureListener::serve`] starts, in
    /// bytes (the default is Rust's, 2 MiB). A small stack lets one process
    /// hold thousands of idle connections; the handshake itself needs about
    /// 256 KiB in a debug build (less optimised), so do not go below that.
    /// Outside 64 KiB to 1 GiB, `bind` fails with `InvalidInput`.
    pub fn thread_stack_size(mut self, bytes: usize) -> Self {
        self.serve.stack_size = Some(bytes);
        self
    }

    /// Receives each connection's failed handshake or handler error in
    /// [`SecureListener::serve`], with the peer's address (by default they
    /// are printed to standard error). Node's `tlsClientError`.
    pub fn on_client_error(
        mut self,
        callback: impl Fn(&Error, SocketAddr) + Send + Sync + 'static,
    ) -> Self {
        self.serve.on_client_error = Some(Arc::new(callback));
        self
    }

    /// Receives what makes accepting fail for a while in
    /// [`SecureListener::serve`] and [`SecureListener::incoming`]: running
    /// out of descriptors (`EMFILE`, `ENFILE`) or memory (`ENOBUFS`,
    /// `ENOMEM`). Accepting backs off (5 ms, doubling to 1 s) and goes on
    /// once the resource is free again; this is called once per burst of
    /// such failures (by default they are printed to standard error).
    pub fn on_accept_error(mut self, callback: impl Fn(&Error) + Send + Sync + 'static) -> Self {
        self.serve.on_accept_error = Some(Arc::new(callback));
        self
    }

    /// `true` traces each connection's handshake to standard error (Node
    /// `enableTrace`); see `ConnectOptions::enable_trace`.
    pub fn enable_trace(mut self, enabled: bool) -> Self {
        self.trace = enabled.then(stderr_sink);
        self
    }

    /// Like [`enable_trace`](Self::enable_trace), to a callback that gets
    /// each trace line.
    pub fn trace(mut self, callback: impl Fn(&str) + Send + Sync + 'static) -> Self {
        self.trace = Some(Arc::new(callback));
        self
    }

    pub(crate) fn trace_sink(&self) -> Option<TraceFn> {
        self.trace.clone()
    }

    pub(crate) fn alpn(&self) -> &[String] {
        &self.alpn
    }

    pub(crate) fn requests_client_certificate(&self) -> bool {
        self.request_client_certificate || self.require_client_certificate
    }

    pub(crate) fn requires_client_certificate(&self) -> bool {
        self.require_client_certificate
    }

    pub(crate) fn on_bad_client_certificate_fn(&self) -> Option<BadCertificateFn> {
        self.on_bad_client_certificate.clone()
    }

    pub(crate) fn on_bad_client_ptr(&self) -> usize {
        callback_key(&self.on_bad_client_certificate)
    }

    pub(crate) fn sni_routes(&self) -> (&[(String, SecurityContext)], &Option<SniFn>) {
        (&self.sni_contexts, &self.on_sni)
    }

    pub(crate) fn handshake_timeout_value(&self) -> Duration {
        self.handshake_timeout
    }

    pub(crate) fn allow_half_open_value(&self) -> bool {
        self.allow_half_open
    }

    /// Refuses values that could never work; any other works (a huge
    /// backlog is capped by the kernel, a huge timeout is no limit).
    fn check_limits(&self) -> Result<()> {
        if self.serve.max_connections == Some(0) {
            return Err(Error::invalid_input(
                "max_connections(0)",
                "no connection could ever be accepted: give at least 1",
            ));
        }
        if self.handshake_timeout.is_zero() {
            return Err(Error::invalid_input(
                "BindOptions::handshake_timeout(Duration::ZERO)",
                "no handshake can finish in no time: give a positive duration",
            ));
        }
        if let Some(size) = self.serve.stack_size {
            if !(MIN_STACK..=MAX_STACK).contains(&size) {
                return Err(Error::invalid_input(
                    format!("thread_stack_size({size})"),
                    format!(
                        "give {} KiB to {} MiB: a handshake needs about 256 KiB in a debug build",
                        MIN_STACK / 1024,
                        MAX_STACK >> 20
                    ),
                ));
            }
        }
        Ok(())
    }

    /// Makes the socket (`socket(2)`), sets its options, `bind(2)`s it to
    /// `address:port` (port 0 picks a free port) and `listen(2)`s.
    pub fn bind(
        &self,
        address: impl ListenAddress,
        port: u16,
        context: &SecurityContext,
    ) -> Result<SecureListener> {
        self.check_limits()?;
        let setup = ServerSetup::new(context, self)?;
        let ip = address.to_ip_addr()?;
        let addr = SocketAddr::new(ip, port);
        let fail = |what: &str, e: std::io::Error| Error::io(format!("{what} {addr}"), e);
        let socket = Socket::new(Domain::for_address(addr), Type::STREAM, Some(Protocol::TCP))
            .map_err(|e| fail("cannot make a socket for", e))?;
        #[cfg(unix)]
        socket
            .set_reuse_address(true)
            .map_err(|e| fail("cannot set SO_REUSEADDR on", e))?;
        if ip.is_ipv6() {
            socket
                .set_only_v6(self.v6_only)
                .map_err(|e| fail("cannot set IPV6_V6ONLY on", e))?;
        }
        if self.shared {
            set_shared(&socket).map_err(|e| match e.kind() {
                std::io::ErrorKind::Unsupported => Error::Unsupported {
                    what: "shared(true)".to_owned(),
                    reason: "SO_REUSEPORT is not available on this platform: run one listener \
                             and hand accepted streams to worker threads"
                        .to_owned(),
                },
                _ => fail("cannot set SO_REUSEPORT on", e),
            })?;
        }
        socket
            .bind(&addr.into())
            .map_err(|e| fail("cannot bind", e))?;
        let backlog = match self.backlog {
            0 => SYSTEM_BACKLOG,
            n => i32::try_from(n).unwrap_or(i32::MAX),
        };
        socket
            .listen(backlog)
            .map_err(|e| fail("cannot listen on", e))?;
        let listener = Arc::new(TcpListener::from(socket));
        let limiter = self.serve.max_connections.map(Limiter::new);
        Ok(SecureListener {
            stop: Stop::new(&listener, limiter.clone()),
            listener,
            setup: RwLock::new(setup),
            options: self.clone(),
            limiter,
        })
    }
}

#[cfg(all(
    unix,
    not(any(target_os = "solaris", target_os = "illumos", target_os = "cygwin"))
))]
fn set_shared(socket: &Socket) -> std::io::Result<()> {
    socket.set_reuse_port(true)
}

#[cfg(not(all(
    unix,
    not(any(target_os = "solaris", target_os = "illumos", target_os = "cygwin"))
)))]
fn set_shared(_socket: &Socket) -> std::io::Result<()> {
    Err(std::io::ErrorKind::Unsupported.into())
}

/// A TLS server socket: accepts TCP connections and hands out
/// [`SecureStream`]s whose handshake runs on first use, so each can be moved
/// to its own thread before any TLS work happens.
///
/// ```
/// use std::io::{Read, Write};
/// use securenet::{ConnectOptions, SecureListener, testing::TestPki};
///
/// # fn main() -> securenet::Result<()> {
/// let pki = TestPki::new(&["localhost"])?;
/// let listener = SecureListener::bind("127.0.0.1", 0, &pki.server_context())?;
/// let port = listener.port();
/// let server = std::thread::spawn(move || -> securenet::Result<()> {
///     let (mut stream, _peer) = listener.accept()?;
///     let mut buf = [0u8; 5];
///     stream.read_exact(&mut buf)?;
///     stream.write_all(&buf)?;
///     stream.close()
/// });
/// let mut client = ConnectOptions::new()
///     .context(pki.client_context())
///     .connect("localhost", port)?;
/// client.write_all(b"hello")?;
/// let mut echo = String::new();
/// client.read_to_string(&mut echo)?;
/// assert_eq!(echo, "hello");
/// server.join().expect("server thread")?;
/// # Ok(()) }
/// ```
pub struct SecureListener {
    listener: Arc<TcpListener>,
    setup: RwLock<Arc<ServerSetup>>,
    options: BindOptions,
    limiter: Option<Arc<Limiter>>,
    stop: Arc<Stop>,
}

impl fmt::Debug for SecureListener {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("SecureListener")
            .field("listener", &self.listener)
            .field("options", &self.options)
            .finish()
    }
}

impl SecureListener {
    /// Binds with the default [`BindOptions`] (Dart `SecureServerSocket.bind`).
    pub fn bind(
        address: impl ListenAddress,
        port: u16,
        context: &SecurityContext,
    ) -> Result<SecureListener> {
        BindOptions::new().bind(address, port, context)
    }

    /// The port listened on (useful after binding port 0).
    pub fn port(&self) -> u16 {
        self.listener.local_addr().map(|a| a.port()).unwrap_or(0)
    }

    /// The address listened on.
    pub fn local_addr(&self) -> std::io::Result<SocketAddr> {
        self.listener.local_addr()
    }

    /// Waits for a TCP connection (`accept(2)`) and returns it at once, with
    /// its TLS handshake pending: the handshake runs in whichever thread
    /// first uses the stream, bounded by the handshake timeout, so a client
    /// that never speaks cannot stall `accept`. A connection that fails
    /// before it is handed out (reset at once) is skipped.
    ///
    /// With [`BindOptions::max_connections`], it first waits until fewer
    /// than that many streams from this listener are alive. Once the
    /// listener is stopped ([`stop_handle`](Self::stop_handle)), it fails
    /// with kind `NotConnected`.
    pub fn accept(&self) -> Result<(SecureStream, SocketAddr)> {
        self.accept_one(false).map_err(|e| match e {
            Accepted::Stopped => stopped(),
            Accepted::Failed(e) => Error::io("accept failed", e),
        })
    }

    /// One accepted connection. With `evict` (for `serve`), the connection
    /// is accepted first, and then, while `max_connections` are alive, the
    /// oldest connection still in its handshake is dropped to make room for
    /// it; without, accepting waits for a free place.
    pub(crate) fn accept_one(
        &self,
        evict: bool,
    ) -> std::result::Result<(SecureStream, SocketAddr), Accepted> {
        let mut permit = None;
        if let (Some(l), false) = (&self.limiter, evict) {
            permit = Some(l.acquire(false).ok_or(Accepted::Stopped)?);
        }
        loop {
            if self.stop.is_stopped() {
                return Err(Accepted::Stopped);
            }
            let (sock, peer) = match self.listener.accept() {
                Ok(a) => a,
                Err(_) if self.stop.is_stopped() => return Err(Accepted::Stopped),
                Err(e) => return Err(Accepted::Failed(e)),
            };
            if self.stop.is_stopped() {
                return Err(Accepted::Stopped);
            }
            if sock.set_nodelay(true).is_err() {
                // Reset before we got to it: that connection only.
                continue;
            }
            if let (Some(l), true) = (&self.limiter, evict) {
                permit = Some(l.acquire(true).ok_or(Accepted::Stopped)?);
            }
            let setup = self.setup.read().unwrap_or_else(|e| e.into_inner()).clone();
            let mut stream = SecureStream::new_server(
                Transport::new(sock, Ops::tcp(), &[]),
                setup,
                &self.options,
            );
            stream.set_permit(permit);
            if let Some(sink) = self.options.trace_sink() {
                stream.set_trace(Some(sink), format!("server {peer}"));
            }
            return Ok((stream, peer));
        }
    }

    pub(crate) fn serve_settings(&self) -> &ServeSettings {
        &self.options.serve
    }

    pub(crate) fn limiter(&self) -> Option<&Arc<Limiter>> {
        self.limiter.as_ref()
    }

    pub(crate) fn stop_state(&self) -> &Arc<Stop> {
        &self.stop
    }

    /// A handle that stops [`serve`](Self::serve) and
    /// [`incoming`](Self::incoming) from another thread.
    pub fn stop_handle(&self) -> StopHandle {
        StopHandle {
            stop: self.stop.clone(),
        }
    }

    /// Replaces the certificate (and client authorities) for connections
    /// accepted from now on; existing connections keep theirs. For
    /// certificate rotation (Node `setSecureContext`). Fails, changing
    /// nothing, if the context has no usable certificate.
    pub fn set_context(&self, context: impl Borrow<SecurityContext>) -> Result<()> {
        let setup = ServerSetup::new(context.borrow(), &self.options)?;
        *self.setup.write().unwrap_or_else(|e| e.into_inner()) = setup;
        Ok(())
    }
}

/// Why no connection was accepted.
pub(crate) enum Accepted {
    /// The listener was stopped.
    Stopped,
    /// `accept(2)` failed.
    Failed(std::io::Error),
}

/// The error of `accept` on a stopped listener.
pub(crate) fn stopped() -> Error {
    Error::io(
        "the listener was stopped (StopHandle::stop): it accepts no more connections",
        std::io::ErrorKind::NotConnected.into(),
    )
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn one_server_setup_per_context_and_options() {
        let pki = crate::testing::TestPki::new(&["localhost"]).expect("pki");
        let ctx = pki.server_context();
        let a = ServerSetup::new(&ctx, &BindOptions::new()).expect("setup");
        let b = ServerSetup::new(&ctx.clone(), &BindOptions::new().backlog(7)).expect("setup");
        assert!(
            Arc::ptr_eq(&a, &b),
            "built once, shared by listeners of the context"
        );
        let c = ServerSetup::new(&ctx, &BindOptions::new().require_client_certificate(true))
            .expect("setup");
        assert!(!Arc::ptr_eq(&a, &c));
    }
}
