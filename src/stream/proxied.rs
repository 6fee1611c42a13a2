//! Server side: the PROXY protocol header a load balancer sends before
//! TLS, read within the handshake's deadline and bounded in size; the
//! client's address it names.

use std::io::{Read, Write};
use std::net::SocketAddr;
use std::time::Instant;

use super::{SecureStream, Tls};
use crate::error::{Error, Phase, Result};
use crate::net::proxy_protocol::{Addresses, Parsed, ProxyProtocol, V2_MAX_BODY, parse};

/// What a server stream knows of a PROXY header.
pub(crate) enum ProxyState {
    /// None is expected.
    None,
    /// One must come first; `trusted`: from an address allowed to send one.
    Expect { mode: ProxyProtocol, trusted: bool },
    /// It came: the addresses it named (`None`: the connection's own).
    Got(Option<Box<Addresses>>),
}

impl<S: Read + Write> SecureStream<S> {
    /// Expects a PROXY header of `mode` first (`trusted`: the connection
    /// comes from an address allowed to send one).
    pub(crate) fn expect_proxy_header(&mut self, mode: ProxyProtocol, trusted: bool) {
        self.proxy = ProxyState::Expect { mode, trusted };
    }

    /// Reads the PROXY header, if one is expected, before anything TLS.
    pub(crate) fn read_proxy_header(&mut self, deadline: Instant) -> Result<()> {
        let ProxyState::Expect { mode, trusted } = self.proxy else {
            return Ok(());
        };
        if !trusted {
            return Err(Error::handshake(
                "the connection comes from an address not in proxy_protocol_trusted: refused, as \
                 its PROXY header could forge the client's address",
            ));
        }
        let after = Some(self.handshake_timeout);
        let mut head = Vec::new();
        loop {
            let pending = self.io.pending();
            let n = pending.len();
            head.extend_from_slice(pending);
            self.io.consume(n);
            match parse(&head, mode) {
                Ok(Parsed::Done(n, addresses)) => {
                    self.io.put_back(&head[n..]);
                    self.proxy = ProxyState::Got(addresses.map(Box::new));
                    return Ok(());
                }
                Ok(Parsed::Incomplete) if head.len() <= 16 + V2_MAX_BODY => {}
                Ok(Parsed::Incomplete) => {
                    return Err(Error::handshake("the PROXY header is too long"));
                }
                Err(reason) => {
                    return Err(Error::handshake(format!(
                        "{reason}: a PROXY protocol header is required first (proxy_protocol); \
                         check that the load balancer sends it (HAProxy send-proxy or \
                         send-proxy-v2)"
                    )));
                }
            }
            let left = self.remaining(deadline)?;
            let _ = (self.io.ops.set_read_timeout)(&self.io.sock, Some(left));
            let filled = self.io.fill(Phase::Handshake, after);
            if let Err(e) = &filled {
                // A health check that resets instead of closing (HAProxy
                // ends its checks with RST), from the trusted balancer
                // (others are refused before anything is read).
                self.closed_silently = head.is_empty() && is_reset(e);
            }
            if filled? == 0 {
                self.closed_silently = head.is_empty();
                return Err(Error::handshake(if head.is_empty() {
                    "the client closed the connection before its PROXY header"
                } else {
                    "the client closed the connection in the middle of its PROXY header"
                }));
            }
        }
    }

    /// Server side: whether the handshake failed because the client closed
    /// (or reset) the connection without sending anything (after its PROXY
    /// header, if any): a load balancer's TCP health check, or a PROXY v2
    /// `LOCAL` one.
    pub(crate) fn closed_silently(&self) -> bool {
        self.closed_silently
    }

    /// Server side: whether the handshake answered an ACME TLS-ALPN-01
    /// validation (and the connection is closed).
    pub(crate) fn was_validation(&self) -> bool {
        self.validation
    }

    /// Server side: a reset now is a load balancer's health check. Only
    /// after a PROXY `LOCAL` header (the balancer's own connection) and
    /// before a byte of TLS: a client that resets, or a reset injected on
    /// the way, stays a failure to report.
    pub(crate) fn reset_is_health_check(&self) -> bool {
        let tls_silent = match &self.tls {
            Tls::Accepting(acc) => acc.2.is_empty() && self.io.pending().is_empty(),
            Tls::Starting(_) => self.io.pending().is_empty(),
            Tls::Open(conn) => !conn.is_client() && !conn.heard_from_peer(),
            Tls::Failed(_) => false,
        };
        tls_silent && matches!(self.proxy, ProxyState::Got(None))
    }

    /// The client's address as a PROXY header named it, if one did.
    pub(crate) fn proxied_source(&self) -> Option<SocketAddr> {
        match &self.proxy {
            ProxyState::Got(Some(a)) => Some(a.source),
            _ => None,
        }
    }

    /// Server side, with [`BindOptions::proxy_protocol`](crate::BindOptions::proxy_protocol):
    /// the address the client connected to, as the PROXY header named it
    /// (the load balancer's frontend), once the handshake has run. `None`
    /// without a header, or for a `LOCAL`/`UNKNOWN` one (a health check).
    pub fn proxied_destination(&self) -> Option<SocketAddr> {
        match &self.proxy {
            ProxyState::Got(Some(a)) => Some(a.destination),
            _ => None,
        }
    }
}

/// Whether the peer reset the connection (`ECONNRESET`).
pub(crate) fn is_reset(e: &Error) -> bool {
    e.io_kind() == std::io::ErrorKind::ConnectionReset
}
