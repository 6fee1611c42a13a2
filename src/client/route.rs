//! The way to the target: directly, through an HTTP CONNECT or SOCKS5
//! tunnel, or inside the TLS to an `https://` proxy.

use std::time::Duration;

use super::ConnectOptions;
use crate::error::{Error, Result};
use crate::net::connect::unbracket;
use crate::net::proxy::Protocol;
use crate::net::transport::{Ops, Transport, deadline_in};
use crate::net::tunnel;
use crate::stream::SecureStream;
use crate::tls::client_config::ClientTls;
use crate::tls::context::SecurityContext;

/// Where a connection to the target starts.
pub(crate) enum Reached {
    /// A TCP stream: to the target, or a tunnel to it.
    Tcp(std::net::TcpStream),
    /// The TLS to an `https://` proxy (named), the tunnel open inside it.
    ProxyTls(String, Box<SecureStream>),
}

impl ConnectOptions {
    /// The trust anchors (and our certificate and key, if the proxy asks
    /// for one) for the TLS to an `https://` [`proxy`](Self::proxy), in
    /// place of [`context`](Self::context): curl's `--proxy-cacert` and
    /// `--proxy-cert`, urllib3's `proxy_ssl_context`. With it, a
    /// corporate proxy's CA is trusted for the proxy alone, never for the
    /// targets reached through it. Default: none, the proxy is verified
    /// against `context`.
    ///
    /// It is used only on the TLS hop to an `https://` proxy; a connection
    /// whose proxy can never be one (none, or an `http://` or SOCKS5 URL,
    /// or [`Proxy::from_env`](crate::Proxy::from_env) naming no
    /// `https://` proxy) fails with [`Error::InvalidInput`] rather than
    /// ignore it.
    ///
    /// ```no_run
    /// # fn main() -> securenet::Result<()> {
    /// use securenet::{ConnectOptions, Proxy, SecurityContext};
    /// let mut corporate = SecurityContext::empty();
    /// corporate.set_trusted_certificates("corporate-proxy-ca.pem")?;
    /// let stream = ConnectOptions::new() // targets: Mozilla's roots
    ///     .proxy(Proxy::http("https://proxy.corp.example:3129")?)
    ///     .proxy_context(corporate)
    ///     .connect("example.com", 443)?;
    /// # Ok(()) }
    /// ```
    pub fn proxy_context(mut self, context: SecurityContext) -> Self {
        self.proxy_context = Some(context);
        self
    }

    /// The context given with [`proxy_context`](Self::proxy_context), if
    /// any.
    pub fn get_proxy_context(&self) -> Option<&SecurityContext> {
        self.proxy_context.as_ref()
    }

    /// Fails if a [`proxy_context`](Self::proxy_context) is set that no
    /// connection with these options can use.
    fn check_proxy_context(&self) -> Result<()> {
        if self.proxy_context.is_none() || self.proxy.as_ref().is_some_and(|p| p.may_use_tls()) {
            return Ok(());
        }
        let proxy = self
            .proxy
            .as_ref()
            .map_or("no proxy is set".to_owned(), |p| {
                format!("the proxy is {p:?}")
            });
        Err(Error::invalid_input(
            "ConnectOptions::proxy_context",
            format!(
                "it applies only to the TLS to an https:// proxy, and {proxy}: set an \
                 https:// proxy or drop proxy_context (the target's trust is context)"
            ),
        ))
    }

    /// TCP only, with these options' socket settings and proxy (for
    /// `ws://`).
    pub(crate) fn connect_tcp(&self, host: &str, port: u16) -> Result<Reached> {
        self.check_waits()?;
        self.tcp_to(host, port, false)
    }

    /// The way to `host:port`: a TCP stream (direct, or a tunnel through
    /// the proxy for it), or the TLS to an `https://` proxy with the tunnel
    /// open inside it (`tls`: what runs over it is TLS).
    pub(super) fn tcp_to(&self, host: &str, port: u16, tls: bool) -> Result<Reached> {
        self.check_proxy_context()?;
        let bare = unbracket(host);
        let limit = self.common.handshake_timeout;
        match self
            .proxy
            .as_ref()
            .and_then(|p| p.for_target(bare, port, tls))
        {
            Some(proxy) if proxy.protocol == Protocol::Https => {
                // One deadline for the TLS to the proxy and the CONNECT.
                let deadline = deadline_in(limit);
                let tcp = tunnel::reach(&self.socket, proxy, bare, port)?;
                let to_proxy = self.to_proxy(limit);
                let mut stream = to_proxy
                    .verify_name(&proxy.host)
                    .and_then(|name| to_proxy.start(Transport::new(tcp, Ops::tcp(), &[]), name))
                    .map_err(|e| tunnel::tls_failed(proxy, e))?;
                tunnel::connect_over(&mut stream, proxy, bare, port, deadline, limit)?;
                Ok(Reached::ProxyTls(proxy.shown(), Box::new(stream)))
            }
            Some(proxy) => tunnel::open(&self.socket, proxy, bare, port, limit).map(Reached::Tcp),
            None => {
                let addrs = self.socket.resolve(bare, port)?;
                self.socket
                    .connect_any(&addrs, host, port)
                    .map(Reached::Tcp)
            }
        }
    }

    /// The options for the TLS to an `https://` proxy: the proxy context
    /// (else this context), these socket settings and trace; ALPN
    /// `http/1.1`; the proxy's own name verified, whatever is set for the
    /// target (its server name, `reject_unauthorized`, pins, identity
    /// check, session).
    fn to_proxy(&self, limit: Duration) -> ConnectOptions {
        let mut common = self.common.clone();
        common.alpn = vec!["http/1.1".to_owned()];
        common.handshake_timeout = limit;
        ConnectOptions {
            context: self.proxy_context.clone().or_else(|| self.context.clone()),
            common,
            tls: ClientTls::default(),
            socket: self.socket.clone(),
            ..ConnectOptions::default()
        }
    }
}
