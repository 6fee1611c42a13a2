//! `ConnectOptions`: the client side (Dart `SecureSocket.connect` /
//! `RawSecureSocket.connect`, Node `tls.connect`).

mod route;

pub(crate) use route::Reached;

use std::fmt;
use std::io::{Read, Write};
use std::net::{IpAddr, SocketAddr};
use std::sync::Arc;
use std::time::Duration;

use rustls::pki_types::ServerName;

use crate::error::{Error, PeerRole, Result};
use crate::net::connect::{IpFamily, SocketSettings, unbracket};
use crate::net::proxy::Proxy;
use crate::net::transport::{Ops, Transport};
use crate::stream::SecureStream;
use crate::tls::certificate::X509Certificate;
use crate::tls::client_config::{CachedConfig, ClientTls};
use crate::tls::context::SecurityContext;
use crate::tls::engine::Engine;
use crate::tls::session::TlsSession;
use crate::tls::settings::{Common, alpn_wire, common_setters};
use crate::tls::tls_error::map_tls_error;

/// The default bound on the TCP connect, per address tried: 30 seconds.
pub const DEFAULT_CONNECT_TIMEOUT: Duration = Duration::from_secs(30);

/// Options for a client connection, `std::fs::OpenOptions`-style: make one
/// with [`new`](Self::new), chain setters, end with [`connect`](Self::connect).
///
/// Options are `Clone + Send + Sync`; reusing one `ConnectOptions` (or the
/// same context with the same settings) reuses one rustls configuration and
/// its session cache.
///
/// ```no_run
/// use std::io::{Read, Write};
/// use std::time::Duration;
/// use securenet::ConnectOptions;
///
/// # fn main() -> securenet::Result<()> {
/// let mut stream = ConnectOptions::new()
///     .supported_protocols(&["http/1.1"])
///     .timeout(Duration::from_secs(5))
///     .connect("example.com", 443)?;
/// stream.write_all(b"GET / HTTP/1.1\r\nHost: example.com\r\nConnection: close\r\n\r\n")?;
/// let mut response = Vec::new();
/// stream.read_to_end(&mut response)?;
/// # Ok(()) }
/// ```
#[derive(Clone)]
pub struct ConnectOptions {
    context: Option<SecurityContext>,
    common: Common,
    tls: ClientTls,
    socket: SocketSettings,
    server_name: Option<String>,
    allow_half_open: bool,
    session: Option<TlsSession>,
    min_dh_size: u32,
    proxy: Option<Proxy>,
    proxy_context: Option<SecurityContext>,
}

/// Node's default `minDHSize`, in bits.
const DEFAULT_MIN_DH_SIZE: u32 = 1024;

impl Default for ConnectOptions {
    /// Mozilla's roots, hostname verification on, SNI on, no ALPN, the
    /// default timeouts, TCP_NODELAY on.
    fn default() -> Self {
        ConnectOptions {
            context: None,
            common: Common::default(),
            tls: ClientTls::default(),
            socket: SocketSettings::new(DEFAULT_CONNECT_TIMEOUT),
            server_name: None,
            allow_half_open: false,
            session: None,
            min_dh_size: DEFAULT_MIN_DH_SIZE,
            proxy: None,
            proxy_context: None,
        }
    }
}

impl fmt::Debug for ConnectOptions {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let tls = &self.tls;
        f.debug_struct("ConnectOptions")
            .field("context", &self.context)
            .field("common", &self.common)
            .field("socket", &self.socket)
            .field("server_name", &self.server_name)
            .field("sni", &tls.sni)
            .field("reject_unauthorized", &tls.reject_unauthorized)
            .field("on_bad_certificate", &tls.on_bad_certificate.is_some())
            .field(
                "check_server_identity",
                &tls.check_server_identity.is_some(),
            )
            .field("allow_half_open", &self.allow_half_open)
            .field("session", &self.session)
            .field("min_dh_size", &self.min_dh_size)
            .field("resume_sessions", &tls.resume_sessions)
            .field("pin_sha256", &tls.pins)
            .field("proxy", &self.proxy)
            .field("proxy_context", &self.proxy_context)
            .finish()
    }
}

impl ConnectOptions {
    /// The defaults (see [`Default`]).
    pub fn new() -> Self {
        Self::default()
    }

    /// The trust anchors, and our certificate and key if the server asks
    /// for one (Node `secureContext`, Dart `context`). Default:
    /// [`SecurityContext::new`], Mozilla's roots.
    pub fn context(mut self, context: SecurityContext) -> Self {
        self.context = Some(context);
        self
    }

    /// Asked, with the server's leaf certificate, only when verification
    /// fails: `true` connects anyway (the handshake's signatures are still
    /// checked, and [`SecureStream::authorization_error`] says what failed);
    /// `false` fails the connect with the verification error. Dart
    /// `onBadCertificate`.
    pub fn on_bad_certificate(
        mut self,
        callback: impl Fn(&X509Certificate) -> bool + Send + Sync + 'static,
    ) -> Self {
        self.tls.on_bad_certificate = Some(Arc::new(callback));
        self
    }

    /// Bounds the TCP connect to each address tried. Default
    /// [`DEFAULT_CONNECT_TIMEOUT`]. Name resolution is not bounded by it.
    pub fn timeout(mut self, timeout: Duration) -> Self {
        self.socket.timeout = timeout;
        self
    }

    /// Binds the client socket to this local address before connecting
    /// (Node `localAddress`); only destinations of its family are tried.
    pub fn local_address(mut self, ip: IpAddr) -> Self {
        self.socket.local_ip = Some(ip);
        self
    }

    /// Binds the client socket to this local port before connecting (Node
    /// `localPort`); with no [`local_address`](Self::local_address), on the
    /// unspecified address of the destination's family.
    pub fn local_port(mut self, port: u16) -> Self {
        self.socket.local_port = Some(port);
        self
    }

    /// Tries only addresses of this family (Node `family`).
    pub fn family(mut self, family: IpFamily) -> Self {
        self.socket.family = Some(family);
        self
    }

    /// Resolves host names with `resolver(host, port)` instead of the
    /// system's resolver (Node `lookup`). Not called for IP literals.
    pub fn resolver(
        mut self,
        resolver: impl Fn(&str, u16) -> std::io::Result<Vec<SocketAddr>> + Send + Sync + 'static,
    ) -> Self {
        self.socket.resolver = Some(Arc::new(resolver));
        self
    }

    /// TCP keepalive: `Some(idle)` turns it on, with the first probe after
    /// `idle` without traffic (Node `keepAlive`, `keepAliveInitialDelay`);
    /// `None` (the default) leaves it off. The kernel counts whole seconds,
    /// so `idle` is taken as 1 s to about 9 hours (32,767 s); zero is an
    /// error at `connect`.
    pub fn keepalive(mut self, idle: Option<Duration>) -> Self {
        self.socket.keepalive = idle;
        self
    }

    /// `TCP_NODELAY` (Node `noDelay`). On by default, as in Dart.
    pub fn nodelay(mut self, nodelay: bool) -> Self {
        self.socket.nodelay = nodelay;
        self
    }

    /// The name to send in SNI and to check the certificate against, instead
    /// of the host connected to (Node `servername`).
    pub fn server_name(mut self, name: &str) -> Self {
        self.server_name = Some(name.to_owned());
        self
    }

    /// Whether to send SNI (default `true`; Node's `tls.connect` sends none
    /// unless `servername` is set). SNI is never sent for an IP address.
    pub fn sni(mut self, enabled: bool) -> Self {
        self.tls.sni = enabled;
        self
    }

    /// `false` connects even when the server's certificate fails
    /// verification; [`SecureStream::authorization_error`] then says why
    /// (Node `rejectUnauthorized`). Default `true`. Handshake signatures are
    /// still checked.
    pub fn reject_unauthorized(mut self, reject: bool) -> Self {
        self.tls.reject_unauthorized = reject;
        self
    }

    /// Replaces the name check (and only it: the chain, validity and key
    /// usage are still verified) with `callback(server_name, leaf)`, which
    /// returns `Err(reason)` to reject (Node `checkServerIdentity`). As in
    /// Node, it is called only once the chain holds: not when the chain
    /// failed and the failure was let through (`reject_unauthorized(false)`
    /// or `on_bad_certificate`).
    pub fn check_server_identity(
        mut self,
        callback: impl Fn(&str, &X509Certificate) -> std::result::Result<(), String>
        + Send
        + Sync
        + 'static,
    ) -> Self {
        self.tls.check_server_identity = Some(Arc::new(callback));
        self
    }

    /// Pins the server's public key (curl's `--pinnedpubkey sha256//…`,
    /// HPKP): the connection succeeds only if a certificate of the verified
    /// chain (leaf, intermediate or root) has a SubjectPublicKeyInfo whose
    /// SHA-256 is one of `pins`, each written `sha256//` and base64 (the
    /// bare base64 is accepted too). [`X509Certificate::spki_sha256`] gives
    /// the value for a certificate you have. With
    /// [`reject_unauthorized(false)`](Self::reject_unauthorized) (or a
    /// certificate `on_bad_certificate` accepts, or a leaf trusted as
    /// itself) nothing was verified, so the pins alone decide, over the
    /// server's **leaf** only: the certificates sent after it prove
    /// nothing (curl's rule). A mismatch fails with
    /// [`CertificateProblem::PinMismatch`](crate::CertificateProblem::PinMismatch),
    /// listing the pins and the chain's keys; a malformed pin is
    /// [`Error::InvalidInput`](crate::Error::InvalidInput) at connect.
    /// Pin a backup key too, or a key rotation locks clients out.
    ///
    /// ```no_run
    /// # fn main() -> securenet::Result<()> {
    /// let stream = securenet::ConnectOptions::new()
    ///     .pin_sha256(["sha256//YLh1dUR9y6Kja30RrAn7JKnbQG/uEtLMkBgFF2Fuihg="])
    ///     .connect("example.com", 443)?;
    /// # Ok(()) }
    /// ```
    pub fn pin_sha256<S: AsRef<str>>(mut self, pins: impl IntoIterator<Item = S>) -> Self {
        self.tls.pins = pins.into_iter().map(|p| p.as_ref().to_owned()).collect();
        self
    }

    /// `false` (the default, as Node's) answers the peer's `close_notify`
    /// with ours and shuts our write side; `true` leaves writing possible
    /// until [`SecureStream::shutdown_write`] or [`SecureStream::close`].
    pub fn allow_half_open(mut self, allow: bool) -> Self {
        self.allow_half_open = allow;
        self
    }

    common_setters!(
        common,
        "The ALPN protocols to offer, most preferred first (Dart \
         `supportedProtocols`, Node `ALPNProtocols`). Each must be 1 to 255 \
         bytes. The choice is [`SecureStream::selected_protocol`]."
    );

    /// The smallest finite-field Diffie-Hellman group accepted, in bits
    /// (Node `minDHSize`, default 1024). rustls's default providers offer no
    /// finite-field DH, only elliptic-curve and post-quantum key exchange, so
    /// with them it always holds; it is checked after every handshake all the
    /// same. 0 is an error.
    pub fn min_dh_size(mut self, bits: u32) -> Self {
        self.min_dh_size = bits;
        self
    }

    /// `false` never resumes a session: every connect does a full handshake
    /// (default `true`: sessions cached in the context are resumed).
    pub fn resume_sessions(mut self, resume: bool) -> Self {
        self.tls.resume_sessions = resume;
        self
    }

    /// Resumes `session` (from [`SecureStream::session`]) on the next
    /// connect, if the server accepts it; [`SecureStream::is_session_reused`]
    /// tells. Node `session`, within this process only.
    ///
    /// The session is offered only to the name it was made for
    /// ([`TlsSession::server_name`]; DNS names in any case, IP addresses
    /// exactly) through the same context and verification settings: a
    /// resumed handshake checks no certificate, so a connect to another
    /// name ignores the session and does a full handshake, its certificate
    /// verified for that name (see [`TlsSession`]).
    pub fn session(mut self, session: TlsSession) -> Self {
        self.session = Some(session);
        self
    }

    /// Connects to `host` (a DNS name, or an IPv4 or IPv6 literal, with or
    /// without brackets) on `port`, trying each resolved address in turn, and
    /// completes the TLS handshake.
    pub fn connect(&self, host: &str, port: u16) -> Result<SecureStream> {
        let bare = unbracket(host);
        if port == 0 {
            return Err(Error::invalid_input(
                "0",
                "port 0 cannot be connected to: give the server's port (1-65535)",
            ));
        }
        let name = self.verify_name(bare)?;
        self.check_settings()?;
        // Settings that cannot work fail here, before any I/O (the
        // configuration is cached, so start() reuses it).
        self.config_for(self.context_in_use())?;
        let io = match self.tcp_to(host, port, true)? {
            Reached::Tcp(sock) => Transport::new(sock, Ops::tcp(), &[]),
            Reached::ProxyTls(proxy, stream) => stream.into_layer(proxy)?,
        };
        self.start(io, name)
    }

    /// Connects through `proxy`: an HTTP CONNECT proxy (`http://`, or
    /// `https://` with TLS to the proxy itself) or a SOCKS5 one, or the
    /// ones [`Proxy::from_env`] read (curl's `https_proxy`, `http_proxy`,
    /// `all_proxy`, `no_proxy`). Used by [`connect`](Self::connect) and by
    /// WebSockets (`wss://` and `ws://`) made with these options.
    ///
    /// The connect [`timeout`](Self::timeout) bounds reaching the proxy,
    /// and the [`handshake_timeout`](Self::handshake_timeout) opening the
    /// tunnel, the TLS to an `https://` proxy included (then, again, the
    /// TLS handshake with the target). SNI and certificate verification are
    /// for the target host, never the proxy, except on the TLS hop to an
    /// `https://` proxy, which is verified for the proxy's own name (see
    /// [`Proxy::http`]) against [`proxy_context`](Self::proxy_context) if
    /// one is set. Through an `https://` proxy the stream's
    /// [`get_ref`](SecureStream::get_ref) and `peer_addr` are the socket to
    /// the proxy, and [`shutdown_write`](SecureStream::shutdown_write)
    /// sends the target its `close_notify` but leaves the proxy's TLS open
    /// (ending it would end the tunnel both ways); [`close`](SecureStream::close)
    /// ends both. A proxy that cannot be reached, refuses, wants
    /// credentials or fails its TLS is [`Error::Proxy`](crate::Error::Proxy)
    /// naming the proxy (never its credentials).
    ///
    /// ```no_run
    /// # fn main() -> securenet::Result<()> {
    /// use securenet::{ConnectOptions, Proxy};
    /// let stream = ConnectOptions::new()
    ///     .proxy(Proxy::http("http://proxy.example:3128")?)
    ///     .connect("example.com", 443)?;
    /// # Ok(()) }
    /// ```
    pub fn proxy(mut self, proxy: Proxy) -> Self {
        self.proxy = Some(proxy);
        self
    }

    /// The proxy given with [`proxy`](Self::proxy), if any.
    pub fn get_proxy(&self) -> Option<&Proxy> {
        self.proxy.as_ref()
    }

    /// The context given with [`context`](Self::context), if any (else
    /// connections use Mozilla's roots).
    pub fn get_context(&self) -> Option<&SecurityContext> {
        self.context.as_ref()
    }

    /// The bound on each TCP connect ([`timeout`](Self::timeout)).
    pub fn get_timeout(&self) -> Duration {
        self.socket.timeout
    }

    /// The name given with [`server_name`](Self::server_name), if any.
    pub fn get_server_name(&self) -> Option<&str> {
        self.server_name.as_deref()
    }

    /// Whether SNI is sent ([`sni`](Self::sni)).
    pub fn get_sni(&self) -> bool {
        self.tls.sni
    }

    /// Whether a certificate that fails verification fails the connect
    /// ([`reject_unauthorized`](Self::reject_unauthorized)).
    pub fn get_reject_unauthorized(&self) -> bool {
        self.tls.reject_unauthorized
    }

    /// The rustls configuration for these options on `ctx`, built once and
    /// kept in the context.
    fn config_for(&self, ctx: &SecurityContext) -> Result<CachedConfig> {
        self.tls.config_for(ctx, &self.common)
    }

    /// Connects to a Unix domain socket and runs TLS over it, checking the
    /// certificate against `server_name` (Node's `path`).
    #[cfg(unix)]
    pub fn connect_unix(
        &self,
        path: impl AsRef<std::path::Path>,
        server_name: &str,
    ) -> Result<SecureStream<std::os::unix::net::UnixStream>> {
        let path = path.as_ref();
        let name = self.verify_name(server_name)?;
        let sock = std::os::unix::net::UnixStream::connect(path)
            .map_err(|e| Error::io(format!("cannot connect to '{}'", path.display()), e))?;
        self.start(Transport::new(sock, Ops::unix(), &[]), name)
    }

    /// Runs TLS over an already connected stream (Dart
    /// `SecureSocket.secure`, Node's `socket` option; STARTTLS), checking the
    /// certificate against `server_name`.
    ///
    /// Over a `TcpStream` or a `UnixStream`, the handshake timeout bounds
    /// the whole handshake and `set_read_timeout`/`set_write_timeout` bound
    /// whole calls, as for [`connect`](Self::connect). Any other transport
    /// (a proxy tunnel, an in-memory pipe) has no timeouts securenet can
    /// set: nothing it does is bounded but by the transport itself, the
    /// handshake included, and the stream's `set_read_timeout` fails with
    /// `Unsupported`.
    pub fn secure<S: Read + Write + 'static>(
        &self,
        stream: S,
        server_name: &str,
    ) -> Result<SecureStream<S>> {
        let name = self.verify_name(server_name)?;
        self.start(Transport::new(stream, Ops::detect(), &[]), name)
    }

    /// The name the certificate is checked against (and SNI, for DNS names).
    fn verify_name(&self, host: &str) -> Result<ServerName<'static>> {
        let name = self.server_name.as_deref().unwrap_or(host);
        if name.is_empty() {
            return Err(Error::invalid_input(
                name,
                "the host name is empty: give a DNS name or an IP address",
            ));
        }
        ServerName::try_from(name.to_owned()).map_err(|_| {
            Error::invalid_input(
                name,
                "not a valid DNS name or IP address (no spaces, no scheme, no port)",
            )
        })
    }

    /// Rejects unusable settings before any I/O.
    fn check_settings(&self) -> Result<()> {
        self.check_waits()?;
        if self.min_dh_size == 0 {
            return Err(Error::invalid_input(
                "min_dh_size(0)",
                "give a size in bits, such as 2048 (Node's default is 1024)",
            ));
        }
        self.common.check("ConnectOptions")
    }

    /// Refuses waits that could never succeed; any other duration works
    /// (one too large to add to the clock is no limit).
    fn check_waits(&self) -> Result<()> {
        for (name, d) in [
            ("timeout", Some(self.socket.timeout)),
            ("handshake_timeout", Some(self.common.handshake_timeout)),
            ("keepalive", self.socket.keepalive),
        ] {
            if d.is_some_and(|d| d.is_zero()) {
                return Err(Error::invalid_input(
                    format!("ConnectOptions::{name}(Duration::ZERO)"),
                    "nothing can be done in no time: give a positive duration",
                ));
            }
        }
        Ok(())
    }

    fn start<S: Read + Write>(
        &self,
        io: Transport<S>,
        name: ServerName<'static>,
    ) -> Result<SecureStream<S>> {
        self.check_settings()?;
        let alpn = alpn_wire(&self.common.alpn)?;
        let ctx = self.context_in_use();
        let (config, verifier) = self.config_for(ctx)?;
        if let Some(session) = &self.session {
            session.put_into(&ctx.inner().client_sessions, &name);
        }
        let label = format!("client {}", name.to_str());
        let conn = Engine::client(config, name.clone(), alpn)
            .map_err(|e| map_tls_error(e, true, None, PeerRole::Server))?;
        let mut stream = SecureStream::new_client(
            io,
            conn,
            self.common.handshake_timeout,
            Some((verifier, name)),
            self.allow_half_open,
            ctx.inner().client_sessions.clone(),
        );
        stream.set_trace(self.common.trace.clone(), label);
        stream.handshake()?;
        check_dh_size(stream.negotiated_group().as_deref(), self.min_dh_size)?;
        Ok(stream)
    }

    /// The context: the one given, or the process-wide default.
    fn context_in_use(&self) -> &SecurityContext {
        self.context
            .as_ref()
            .unwrap_or_else(|| SecurityContext::shared_default())
    }
}

/// Fails if the key exchange was finite-field DH smaller than `min` bits.
fn check_dh_size(group: Option<&str>, min: u32) -> Result<()> {
    let bits = match group {
        Some("FFDHE2048") => 2048,
        Some("FFDHE3072") => 3072,
        Some("FFDHE4096") => 4096,
        Some("FFDHE6144") => 6144,
        Some("FFDHE8192") => 8192,
        _ => return Ok(()),
    };
    if bits < min {
        return Err(Error::handshake(format!(
            "the server's Diffie-Hellman group has {bits} bits, below min_dh_size({min})"
        )));
    }
    Ok(())
}

impl SecureStream {
    /// Connects to `host:port` with the default options: Mozilla's roots,
    /// SNI and hostname verification for `host`, the default timeouts.
    /// Dart `SecureSocket.connect(host, port)`.
    pub fn connect(host: &str, port: u16) -> Result<SecureStream> {
        ConnectOptions::new().connect(host, port)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn min_dh_size_is_checked_against_finite_field_groups() {
        assert!(check_dh_size(Some("X25519MLKEM768"), 8192).is_ok());
        assert!(check_dh_size(Some("FFDHE3072"), 2048).is_ok());
        let err = check_dh_size(Some("FFDHE2048"), 3072).expect_err("too small");
        assert!(
            err.to_string()
                .contains("2048 bits, below min_dh_size(3072)"),
            "{err}"
        );
        let err = ConnectOptions::new()
            .min_dh_size(0)
            .connect("localhost", 1)
            .expect_err("zero");
        assert!(matches!(err, Error::InvalidInput { .. }));
    }
}
