//! `BindOptions`: how a server socket is made and what its connections
//! get (Dart `SecureServerSocket.bind` / `RawSecureServerSocket.bind`), and
//! `SecureStream::secure_server` for transports accepted elsewhere.

use std::fmt;
use std::io::{Read, Write};
use std::net::{SocketAddr, TcpListener};
use std::path::PathBuf;
use std::sync::Arc;
use std::time::Duration;

use socket2::{Domain, Protocol, Socket, Type};

use super::reload::DEFAULT_RELOAD_INTERVAL;
use super::settings::ServeSettings;
use crate::error::{Error, Result};
use crate::net::address::ListenAddress;
use crate::net::proxy::{in_network, parse_network};
use crate::net::proxy_protocol::ProxyProtocol;
use crate::net::transport::Transport;
use crate::stream::SecureStream;
use crate::tls::certificate::X509Certificate;
use crate::tls::context::SecurityContext;
use crate::tls::server_config::{ServerSetup, ServerTls};
use crate::tls::settings::common_setters;
use crate::tls::tickets::TicketKeys;

#[cfg(feature = "acme")]
mod acme;
mod files;
mod secure_server;

/// The backlog passed to `listen(2)` for `backlog(0)`: the largest, which
/// every system caps at its own maximum. Linux caps it at
/// `net.core.somaxconn` (4096 by default), macOS and the BSDs at
/// `kern.ipc.somaxconn`, and Winsock's own `SOMAXCONN` is this value, "a
/// reasonable maximum" of its choosing. `libc::SOMAXCONN` would be wrong in
/// both directions: musl's says 128 where the kernel allows 4096, and none
/// follows an administrator who raised the limit.
const SYSTEM_BACKLOG: i32 = i32::MAX;

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
    shared: bool,
    allow_half_open: bool,
    pub(crate) tls: ServerTls,
    pub(crate) serve: ServeSettings,
    reload: Option<(PathBuf, PathBuf)>,
    reload_ocsp: Option<PathBuf>,
    ticket_keys_file: Option<PathBuf>,
    reload_every: Duration,
    proxy_protocol: ProxyProtocol,
    proxy_trusted: Vec<String>,
    /// The ACME options, and the manager their listeners share.
    #[cfg(feature = "acme")]
    pub(crate) acme: Option<(crate::acme::AcmeOptions, crate::acme::Shared)>,
}

impl fmt::Debug for BindOptions {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let tls = &self.tls;
        f.debug_struct("BindOptions")
            .field("backlog", &self.backlog)
            .field("v6_only", &self.v6_only)
            .field(
                "request_client_certificate",
                &tls.request_client_certificate,
            )
            .field(
                "require_client_certificate",
                &tls.require_client_certificate,
            )
            .field("shared", &self.shared)
            .field("allow_half_open", &self.allow_half_open)
            .field("common", &tls.common)
            .field(
                "sni_contexts",
                &tls.sni_contexts.iter().map(|(n, _)| n).collect::<Vec<_>>(),
            )
            .field("on_sni", &tls.on_sni.is_some())
            .field(
                "on_bad_client_certificate",
                &tls.on_bad_client_certificate.is_some(),
            )
            .field("serve", &self.serve)
            .field("reload_certificate_files", &self.reload)
            .field("reload_ocsp_file", &self.reload_ocsp)
            .field("ticket_keys_file", &self.ticket_keys_file)
            .field("certificate_reload_interval", &self.reload_every)
            .field("proxy_protocol", &self.proxy_protocol)
            .field("proxy_protocol_trusted", &self.proxy_trusted)
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
            shared: false,
            allow_half_open: false,
            tls: ServerTls::default(),
            serve: ServeSettings::default(),
            reload: None,
            reload_ocsp: None,
            ticket_keys_file: None,
            reload_every: DEFAULT_RELOAD_INTERVAL,
            proxy_protocol: ProxyProtocol::Off,
            proxy_trusted: Vec::new(),
            #[cfg(feature = "acme")]
            acme: None,
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
        self.tls.request_client_certificate = request;
        self
    }

    /// Requires a client certificate chaining to the context's client
    /// authorities (or, if none were set, its trusted certificates); implies
    /// [`request_client_certificate`](Self::request_client_certificate).
    pub fn require_client_certificate(mut self, require: bool) -> Self {
        self.tls.require_client_certificate = require;
        self
    }

    /// Lets several listeners bind the same address and port and share its
    /// connections (`SO_REUSEPORT`; Unix only, elsewhere `bind` fails with
    /// [`Error::Unsupported`]).
    pub fn shared(mut self, shared: bool) -> Self {
        self.shared = shared;
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
        self.tls.sni_contexts.push((name.to_owned(), ctx));
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
        self.tls.on_sni = Some(Arc::new(callback));
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
        self.tls.on_bad_client_certificate = Some(Arc::new(callback));
        self.tls.on_bad_client_certificate_id = crate::tls::server_config::callback_id();
        self
    }

    /// Bounds the streams from this listener alive at once: `accept` (and
    /// so [`SecureListener::serve`](crate::SecureListener::serve)) waits, rather than accepting without
    /// bound, while `n` are alive. A stream counts until it (or both its
    /// split halves) is dropped.
    pub fn max_connections(mut self, n: usize) -> Self {
        self.serve.max_connections = Some(n);
        self
    }

    /// The stack size of the threads [`SecureListener::serve`](crate::SecureListener::serve) starts, in
    /// bytes (the default is Rust's, 2 MiB). The size is reserved address
    /// space, not memory: only the pages a thread touches are resident
    /// (about 24 KiB after a handshake, measured with 2 MiB and with
    /// 256 KiB stacks alike), so a smaller stack does not let one process
    /// hold more connections on 64-bit Linux. It matters where reserved
    /// memory is charged (`vm.overcommit_memory=2`) or address space is
    /// short (32-bit); the handshake itself needs about 256 KiB in a debug
    /// build (less optimised), so do not go below that. Outside 64 KiB to
    /// 1 GiB, `bind` fails with `InvalidInput`.
    pub fn thread_stack_size(mut self, bytes: usize) -> Self {
        self.serve.stack_size = Some(bytes);
        self
    }

    /// Receives each connection's failed handshake or handler error in
    /// [`SecureListener::serve`](crate::SecureListener::serve), with the
    /// client's address: the one its PROXY header named, behind a load
    /// balancer (see [`proxy_protocol`](Self::proxy_protocol)), else the
    /// socket's peer. Without it they go to the [`log`](https://docs.rs/log)
    /// crate at `warn`, target `securenet::server::serve`, naming the
    /// balancer too; nothing is printed. Node's `tlsClientError`. A
    /// connection that closes without sending anything is a health check,
    /// not an error (see [`on_health_check`](Self::on_health_check)).
    ///
    /// What a listener finds wrong with the files it reads again
    /// ([`reload_certificate_files`](Self::reload_certificate_files),
    /// [`reload_ocsp_file`](Self::reload_ocsp_file),
    /// [`ticket_keys_file`](Self::ticket_keys_file)) comes here too, from
    /// `serve`, `incoming` or `accept`, with the address of the connection
    /// whose accept checked them.
    ///
    /// A WebSocket upgrade that a handler's
    /// [`WebSocket::accept_with`](crate::WebSocket::accept_with) refused on
    /// purpose (its callback's `Rejection`, an `Origin` not allowed) comes
    /// here as [`WebSocketErrorKind::Refused`](crate::WebSocketErrorKind::Refused),
    /// apart from malformed requests (`Upgrade`); without this callback it
    /// is logged at `info`, not `warn`. With
    /// [`WebSocket::accept_or_respond`](crate::WebSocket::accept_or_respond),
    /// the answers its callback chooses (a `/healthz`, a 403) are no errors
    /// and never come here.
    pub fn on_client_error(
        mut self,
        callback: impl Fn(&Error, SocketAddr) + Send + Sync + 'static,
    ) -> Self {
        self.serve.on_client_error = Some(Arc::new(move |e, client, _via| callback(e, client)));
        self
    }

    /// As [`on_client_error`](Self::on_client_error) (which it replaces,
    /// and is replaced by), with both addresses a report behind a load
    /// balancer needs: the client's (from its PROXY header) and the one
    /// the connection came from (the balancer's; the client's own when
    /// there was no PROXY header).
    pub fn on_client_error_via(
        mut self,
        callback: impl Fn(&Error, SocketAddr, SocketAddr) + Send + Sync + 'static,
    ) -> Self {
        self.serve.on_client_error = Some(Arc::new(callback));
        self
    }

    /// Receives, with the socket's peer address (the load balancer), each
    /// connection [`SecureListener::serve`](crate::SecureListener::serve)
    /// took that closed without sending a byte of TLS: a TCP health check
    /// (HAProxy `check`), or a PROXY v2 `LOCAL` header and nothing after it
    /// (`check-send-proxy`). These are not failures: without this callback
    /// they go to the [`log`](https://docs.rs/log) crate at `debug`, never
    /// to [`on_client_error`](Self::on_client_error).
    pub fn on_health_check(
        mut self,
        callback: impl Fn(SocketAddr) + Send + Sync + 'static,
    ) -> Self {
        self.serve.on_health_check = Some(Arc::new(callback));
        self
    }

    /// Whether [`StopHandle::shutdown`](crate::StopHandle::shutdown) can
    /// close connections still open after its grace period (default
    /// `true`). To wake a thread blocked reading its connection, the
    /// listener keeps a second descriptor of each connection's socket
    /// (`dup(2)`), so each connection counts twice against the descriptor
    /// limit (`ulimit -n`). With `false` it keeps none: a shutdown still
    /// waits, and closes the connections whose threads read or write, but
    /// a thread blocked in a read stays blocked (counted as
    /// [`left_open`](crate::ShutdownReport::left_open)).
    pub fn close_on_shutdown(mut self, close: bool) -> Self {
        self.serve.keep_open_on_shutdown = !close;
        self
    }

    /// Encrypts session tickets with these keys (see [`TicketKeys`]), so a
    /// session made on any server with the same keys and the same
    /// client-certificate policy resumes on this one, in TLS 1.3 and 1.2:
    /// for a fleet behind a load balancer. A ticket made under another
    /// policy gets a full handshake. Without it, each listener has its own
    /// keys and sessions resume only on it. Replaces a
    /// [`ticket_keys_file`](Self::ticket_keys_file) given before.
    ///
    /// [`TicketKeys`]: crate::TicketKeys
    pub fn ticket_keys(mut self, keys: TicketKeys) -> Self {
        self.tls.ticket_keys = Some(keys);
        self.ticket_keys_file = None;
        self
    }

    /// Requires a PROXY protocol header (HAProxy's v1 text or v2 binary
    /// one) before TLS on every connection, as a load balancer in TCP mode
    /// sends with `send-proxy`/`send-proxy-v2` (AWS NLB, Envoy, nginx
    /// `proxy_protocol on`). It is read within the handshake timeout and at
    /// most 2 KiB of it; then [`SecureStream::peer_addr`] is the client's
    /// address and [`SecureStream::proxied_destination`] the address it
    /// connected to (a v2 `LOCAL` header, as health checks send, keeps the
    /// socket's). A connection without a valid header is dropped with a
    /// handshake error (to [`on_client_error`](Self::on_client_error) under
    /// `serve`): nothing is taken for TLS. Default
    /// [`ProxyProtocol::Off`]. Combine with
    /// [`proxy_protocol_trusted`](Self::proxy_protocol_trusted).
    ///
    /// [`SecureStream::peer_addr`]: crate::SecureStream::peer_addr
    /// [`SecureStream::proxied_destination`]: crate::SecureStream::proxied_destination
    pub fn proxy_protocol(mut self, mode: ProxyProtocol) -> Self {
        self.proxy_protocol = mode;
        self
    }

    /// Accepts PROXY headers only from these addresses or networks
    /// (`10.0.0.5`, `10.0.0.0/8`, `::1`): a connection from anywhere else
    /// is refused, as its header could forge any client address. Empty
    /// (the default) trusts every source: then only the load balancer must
    /// be able to reach the port. A malformed entry fails `bind`.
    pub fn proxy_protocol_trusted<T: AsRef<str>>(mut self, sources: &[T]) -> Self {
        self.proxy_trusted = sources.iter().map(|t| t.as_ref().to_owned()).collect();
        self
    }

    /// Whether a PROXY header from `peer` is trusted.
    fn trusts(&self, peer: Option<SocketAddr>) -> bool {
        if self.proxy_trusted.is_empty() {
            return true;
        }
        let Some(peer) = peer else {
            return false;
        };
        let ip = match peer.ip() {
            std::net::IpAddr::V6(v6) => v6
                .to_ipv4_mapped()
                .map_or(std::net::IpAddr::V6(v6), std::net::IpAddr::V4),
            v4 => v4,
        };
        self.proxy_trusted
            .iter()
            .filter_map(|t| parse_network(t))
            .any(|(net, bits)| in_network(ip, net, bits))
    }

    /// Receives what makes accepting fail for a while in
    /// [`SecureListener::serve`](crate::SecureListener::serve) and [`SecureListener::incoming`](crate::SecureListener::incoming): running
    /// out of descriptors (`EMFILE`, `ENFILE`) or memory (`ENOBUFS`,
    /// `ENOMEM`), and in `serve` (on Linux) coming within a margin of
    /// `vm.max_map_count` (an `OutOfMemory` error: one more handler thread
    /// could abort the process) or unable to start a thread for a
    /// connection. Accepting backs off (5 ms, doubling to 1 s) and goes on
    /// once the resource is free again; this is called when a shortage
    /// begins, then at most once a minute while it lasts or keeps coming
    /// back (without it, to the `log` crate at `warn`).
    pub fn on_accept_error(mut self, callback: impl Fn(&Error) + Send + Sync + 'static) -> Self {
        self.serve.on_accept_error = Some(Arc::new(callback));
        self
    }

    common_setters!(
        tls.common,
        "The ALPN protocols this server speaks, each 1 to 255 bytes. It picks \
         the client's most preferred one among them; a client that offers only \
         others is refused with a `no_application_protocol` alert."
    );

    /// The `listen(2)` backlog ([`backlog`](Self::backlog); 0 is the
    /// system's maximum).
    pub fn get_backlog(&self) -> u32 {
        self.backlog
    }

    /// The bound on live streams
    /// ([`max_connections`](Self::max_connections)), if any.
    pub fn get_max_connections(&self) -> Option<usize> {
        self.serve.max_connections
    }

    /// Whether clients must send a certificate
    /// ([`require_client_certificate`](Self::require_client_certificate)).
    pub fn get_require_client_certificate(&self) -> bool {
        self.tls.require_client_certificate
    }

    /// Refuses values that could never work; any other works (a huge
    /// backlog is capped by the kernel, a huge timeout is no limit).
    pub(crate) fn check_limits(&self) -> Result<()> {
        if self.serve.max_connections == Some(0) {
            return Err(Error::invalid_input(
                "max_connections(0)",
                "no connection could ever be accepted: give at least 1",
            ));
        }
        self.tls.common.check("BindOptions")?;
        if let Some(bad) = self
            .proxy_trusted
            .iter()
            .find(|t| parse_network(t).is_none())
        {
            return Err(Error::invalid_input(
                bad,
                "proxy_protocol_trusted: not an IP address or CIDR network (10.0.0.0/8, ::1)",
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

    /// `bind`'s work below the listener: checks the options, builds the
    /// server configurations, makes the socket (`socket(2)`), sets its
    /// options, `bind(2)`s it and `listen(2)`s.
    pub(crate) fn listen(
        &self,
        address: impl ListenAddress,
        port: u16,
        context: &SecurityContext,
    ) -> Result<(TcpListener, Arc<ServerSetup>)> {
        self.check_limits()?;
        let setup = ServerSetup::new(context, &self.tls)?;
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
        Ok((TcpListener::from(socket), setup))
    }

    /// A stream for an accepted transport, its handshake to run on first use.
    pub(crate) fn server_stream<S: Read + Write>(
        &self,
        io: Transport<S>,
        setup: Arc<ServerSetup>,
        peer: Option<SocketAddr>,
        label: impl FnOnce() -> String,
    ) -> SecureStream<S> {
        let mut stream = SecureStream::new_server(
            io,
            setup,
            self.tls.common.handshake_timeout,
            self.allow_half_open,
        );
        if self.proxy_protocol != ProxyProtocol::Off {
            stream.expect_proxy_header(self.proxy_protocol, self.trusts(peer));
        }
        if let Some(sink) = &self.tls.common.trace {
            stream.set_trace(Some(sink.clone()), label());
        }
        stream
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
