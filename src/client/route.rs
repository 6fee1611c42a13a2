//! The way to the target: directly, through an HTTP CONNECT or SOCKS5
//! tunnel, or inside the TLS to an `https://` proxy.

use std::time::Duration;

use super::ConnectOptions;
use crate::error::Result;
use crate::net::connect::unbracket;
use crate::net::proxy::Protocol;
use crate::net::transport::{Ops, Transport};
use crate::net::tunnel;
use crate::stream::SecureStream;
use crate::tls::client_config::ClientTls;

/// Where a connection to the target starts.
pub(crate) enum Reached {
    /// A TCP stream: to the target, or a tunnel to it.
    Tcp(std::net::TcpStream),
    /// The TLS to an `https://` proxy (named), the tunnel open inside it.
    ProxyTls(String, Box<SecureStream>),
}

impl ConnectOptions {
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
        let bare = unbracket(host);
        let limit = self.common.handshake_timeout;
        match self
            .proxy
            .as_ref()
            .and_then(|p| p.for_target(bare, port, tls))
        {
            Some(proxy) if proxy.protocol == Protocol::Https => {
                // One deadline for the TLS to the proxy and the CONNECT.
                let deadline = tunnel::deadline_in(limit);
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

    /// The options for the TLS to an `https://` proxy: this context's
    /// trust, socket settings and trace; ALPN `http/1.1`; the proxy's own
    /// name verified, whatever is set for the target (its server name,
    /// `reject_unauthorized`, pins, identity check, session).
    fn to_proxy(&self, limit: Duration) -> ConnectOptions {
        let mut common = self.common.clone();
        common.alpn = vec!["http/1.1".to_owned()];
        common.handshake_timeout = limit;
        ConnectOptions {
            context: self.context.clone(),
            common,
            tls: ClientTls::default(),
            socket: self.socket.clone(),
            ..ConnectOptions::default()
        }
    }
}
