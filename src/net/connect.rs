//! The TCP side of a client connect (Node's `socket.connect()` options):
//! name resolution (system, or a custom resolver, optionally one address
//! family), the local address to bind, the connect timeout per address,
//! TCP_NODELAY and keepalive.

use std::fmt;
use std::io;
use std::net::{IpAddr, Ipv4Addr, Ipv6Addr, SocketAddr, TcpStream, ToSocketAddrs};
use std::sync::Arc;
use std::time::Duration;

use socket2::{Domain, Protocol, Socket, TcpKeepalive, Type};

use crate::error::{Error, Phase, Result, is_socket_timeout};

/// An IP address family, to restrict name resolution (Node `family`).
#[non_exhaustive]
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum IpFamily {
    /// IPv4 only.
    V4,
    /// IPv6 only.
    V6,
}

impl IpFamily {
    fn matches(self, addr: &SocketAddr) -> bool {
        match self {
            IpFamily::V4 => addr.is_ipv4(),
            IpFamily::V6 => addr.is_ipv6(),
        }
    }
}

/// A custom name lookup (Node `lookup`).
pub(crate) type ResolverFn = Arc<dyn Fn(&str, u16) -> io::Result<Vec<SocketAddr>> + Send + Sync>;

/// The socket settings of `ConnectOptions`.
#[derive(Clone)]
pub(crate) struct SocketSettings {
    pub(crate) timeout: Duration,
    pub(crate) local_ip: Option<IpAddr>,
    pub(crate) local_port: Option<u16>,
    pub(crate) family: Option<IpFamily>,
    pub(crate) resolver: Option<ResolverFn>,
    pub(crate) keepalive: Option<Duration>,
    pub(crate) nodelay: bool,
}

impl fmt::Debug for SocketSettings {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("SocketSettings")
            .field("timeout", &self.timeout)
            .field("local_address", &self.local_ip)
            .field("local_port", &self.local_port)
            .field("family", &self.family)
            .field("resolver", &self.resolver.is_some())
            .field("keepalive", &self.keepalive)
            .field("nodelay", &self.nodelay)
            .finish()
    }
}

impl SocketSettings {
    pub(crate) fn new(timeout: Duration) -> Self {
        SocketSettings {
            timeout,
            local_ip: None,
            local_port: None,
            family: None,
            resolver: None,
            keepalive: None,
            nodelay: true,
        }
    }

    /// The addresses to try for `host:port` (brackets around an IPv6
    /// literal allowed), in order.
    pub(crate) fn resolve(&self, host: &str, port: u16) -> Result<Vec<SocketAddr>> {
        let host = unbracket(host);
        let mut addrs: Vec<SocketAddr> = match host.parse::<IpAddr>() {
            Ok(ip) => vec![SocketAddr::new(ip, port)],
            Err(_) => match &self.resolver {
                Some(resolve) => resolve(host, port)
                    .map_err(|e| Error::io(format!("the resolver failed for '{host}'"), e))?,
                None => lookup(host, port, "")?,
            },
        };
        if let Some(family) = self.family {
            addrs.retain(|a| family.matches(a));
            if addrs.is_empty() {
                return Err(Error::invalid_input(
                    host,
                    format!("it has no {family:?} address (family({family:?}) was set)"),
                ));
            }
        }
        if let Some(local) = self.local_ip {
            addrs.retain(|a| a.is_ipv4() == local.is_ipv4());
            if addrs.is_empty() {
                return Err(Error::invalid_input(
                    host,
                    format!("it has no address of the family of local_address({local})"),
                ));
            }
        }
        if addrs.is_empty() {
            return Err(Error::invalid_input(
                host,
                "the name resolved to no address",
            ));
        }
        Ok(addrs)
    }

    /// Tries each address in turn, each bounded by `timeout`; the error is
    /// the last address's.
    pub(crate) fn connect_any(
        &self,
        addrs: &[SocketAddr],
        host: &str,
        port: u16,
    ) -> Result<TcpStream> {
        let mut last = None;
        for addr in addrs {
            match self.connect_one(addr) {
                Ok(sock) => return Ok(sock),
                Err(e) => last = Some((addr, e)),
            }
        }
        Err(match last {
            Some((_, e)) if is_socket_timeout(e.kind()) => Error::Timeout {
                phase: Phase::Connect,
                after: Some(self.timeout),
            },
            Some((addr, e)) => Error::io(format!("cannot connect to {host}:{port} ({addr})"), e),
            None => Error::invalid_input(host, "the name resolved to no address"),
        })
    }

    fn connect_one(&self, addr: &SocketAddr) -> io::Result<TcpStream> {
        let socket = Socket::new(
            Domain::for_address(*addr),
            Type::STREAM,
            Some(Protocol::TCP),
        )?;
        if self.local_ip.is_some() || self.local_port.is_some() {
            let ip = self.local_ip.unwrap_or(if addr.is_ipv4() {
                IpAddr::V4(Ipv4Addr::UNSPECIFIED)
            } else {
                IpAddr::V6(Ipv6Addr::UNSPECIFIED)
            });
            let local = SocketAddr::new(ip, self.local_port.unwrap_or(0));
            socket.bind(&local.into()).map_err(|e| {
                io::Error::new(
                    e.kind(),
                    format!("cannot bind the local address {local}: {e}"),
                )
            })?;
        }
        // One more millisecond: socket2 polls for whole milliseconds,
        // truncated, and gives up when the poll does; it also keeps a zero
        // timeout from meaning none.
        connect_within(
            &socket,
            &(*addr).into(),
            self.timeout.saturating_add(Duration::from_millis(1)),
        )?;
        socket.set_tcp_nodelay(self.nodelay)?;
        if let Some(idle) = self.keepalive {
            // Linux takes whole seconds from 1 to 32767 (MAX_TCP_KEEPIDLE).
            let idle = idle.clamp(Duration::from_secs(1), Duration::from_secs(32767));
            socket.set_tcp_keepalive(&TcpKeepalive::new().with_time(idle))?;
        }
        Ok(socket.into())
    }
}

/// `connect(2)` bounded by `timeout`. On Linux a blocking connect honours
/// `SO_SNDTIMEO` (socket(7)): two `setsockopt` calls (the timeout, then none
/// again) in place of socket2's `connect_timeout`, which makes the socket
/// non-blocking, `poll`s and makes it blocking again (four `fcntl` and a
/// `poll`). A connect the timeout cuts short fails with `EINPROGRESS` (or
/// `EALREADY` once retried after a signal): `TimedOut` here.
#[cfg(target_os = "linux")]
fn connect_within(socket: &Socket, addr: &socket2::SockAddr, timeout: Duration) -> io::Result<()> {
    use std::time::Instant;
    let deadline = Instant::now().checked_add(timeout);
    let result = loop {
        let left = deadline.map(|d| d.saturating_duration_since(Instant::now()));
        // Under a microsecond the timeval is zero, which means no timeout.
        if left.is_some_and(|l| l < Duration::from_micros(1)) {
            break Err(io::ErrorKind::TimedOut.into());
        }
        socket.set_write_timeout(left)?;
        match socket.connect(addr) {
            Ok(()) => break Ok(()),
            // Interrupted by a signal: the connect goes on in the kernel,
            // and connecting again waits for it with what is left.
            Err(e) if e.kind() == io::ErrorKind::Interrupted => {}
            Err(e) if matches!(e.raw_os_error(), Some(libc::EINPROGRESS | libc::EALREADY)) => {
                break Err(io::ErrorKind::TimedOut.into());
            }
            // Connected while the signal was handled.
            Err(e) if e.raw_os_error() == Some(libc::EISCONN) => break Ok(()),
            Err(e) => break Err(e),
        }
    };
    result?;
    socket.set_write_timeout(None)
}

#[cfg(not(target_os = "linux"))]
fn connect_within(socket: &Socket, addr: &socket2::SockAddr, timeout: Duration) -> io::Result<()> {
    socket.connect_timeout(addr, timeout)
}

/// `host` without the brackets of an IPv6 literal (`[::1]` is `::1`).
pub(crate) fn unbracket(host: &str) -> &str {
    host.strip_prefix('[')
        .and_then(|h| h.strip_suffix(']'))
        .unwrap_or(host)
}

/// The system resolver's addresses for `host:port` (`getaddrinfo(3)`);
/// `what` says what the name is for in the error ("" or "the bind address ").
pub(crate) fn lookup(host: &str, port: u16, what: &str) -> Result<Vec<SocketAddr>> {
    (host, port)
        .to_socket_addrs()
        .map(Iterator::collect)
        .map_err(|e| Error::io(format!("cannot resolve {what}'{host}'"), e))
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::net::TcpListener;

    fn closed_port() -> SocketAddr {
        let l = TcpListener::bind("127.0.0.1:0").expect("bind");
        let a = l.local_addr().expect("addr");
        drop(l);
        a
    }

    fn settings() -> SocketSettings {
        SocketSettings::new(Duration::from_secs(5))
    }

    #[test]
    fn every_address_is_tried_in_turn() {
        let live = TcpListener::bind("127.0.0.1:0").expect("bind");
        let live_addr = live.local_addr().expect("addr");
        let sock = settings()
            .connect_any(&[closed_port(), live_addr], "multi", live_addr.port())
            .expect("the second address answers");
        assert_eq!(sock.peer_addr().expect("peer"), live_addr);
    }

    #[test]
    fn the_error_is_the_last_real_cause() {
        let (a, b) = (closed_port(), closed_port());
        let err = settings()
            .connect_any(&[a, b], "multi", 1)
            .expect_err("both refused");
        assert_eq!(err.io_kind(), io::ErrorKind::ConnectionRefused);
        assert!(err.to_string().contains(&b.to_string()), "{err}");
        let err = settings()
            .connect_any(&[], "nowhere", 1)
            .expect_err("no address");
        assert!(matches!(err, Error::InvalidInput { .. }));
    }

    #[test]
    fn family_filters_what_the_resolver_returns() {
        let mut s = settings();
        s.resolver = Some(Arc::new(|_, port| {
            Ok(vec![
                SocketAddr::new(IpAddr::V6(Ipv6Addr::LOCALHOST), port),
                SocketAddr::new(IpAddr::V4(Ipv4Addr::LOCALHOST), port),
            ])
        }));
        assert_eq!(s.resolve("both.test", 7).expect("resolve").len(), 2);
        s.family = Some(IpFamily::V4);
        let v4 = s.resolve("both.test", 7).expect("resolve");
        assert_eq!(v4, [SocketAddr::new(IpAddr::V4(Ipv4Addr::LOCALHOST), 7)]);
        s.resolver = Some(Arc::new(|_, port| {
            Ok(vec![SocketAddr::new(IpAddr::V6(Ipv6Addr::LOCALHOST), port)])
        }));
        let err = s.resolve("v6only.test", 7).expect_err("no v4");
        assert!(err.to_string().contains("no V4 address"), "{err}");
    }
}
