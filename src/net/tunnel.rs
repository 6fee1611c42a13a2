//! Opening a tunnel through a proxy to `host:port`: HTTP CONNECT (RFC 9110
//! section 9.3.6, `Proxy-Authorization: Basic`) or SOCKS5 (RFC 1928, with
//! RFC 1929 user/password), every read and write of it within one
//! deadline. What runs over the tunnel (TLS, a WebSocket) is for the
//! target: its name, its certificate.

use std::io::{self, Read, Write};
use std::net::{IpAddr, TcpStream};
use std::time::{Duration, Instant};

use base64ct::{Base64, Encoding};

use crate::error::{CertificateProblem, Error, Phase, Result, is_socket_timeout};
use crate::net::connect::SocketSettings;
use crate::net::proxy::{Endpoint, Protocol};
use crate::net::transport::deadline_in;

/// The most bytes of a proxy's answer to CONNECT.
const MAX_HEAD: usize = 16 * 1024;
/// The most headers in a proxy's answer to CONNECT: far more than one
/// sends (a few), still bounded apart from `MAX_HEAD`.
const MAX_HEADERS: usize = 256;

/// A stream a tunnel is opened over (TCP, or the TLS to an `https://`
/// proxy) that can bound its next read or write.
pub(crate) trait Bounded: Read + Write {
    /// Bounds the next read (`read`) or write by `left`.
    fn bound(&mut self, read: bool, left: Duration) -> io::Result<()>;
}

impl Bounded for TcpStream {
    fn bound(&mut self, read: bool, left: Duration) -> io::Result<()> {
        if read {
            self.set_read_timeout(Some(left))
        } else {
            self.set_write_timeout(Some(left))
        }
    }
}

/// A stream whose reads and writes all end by a deadline.
struct Timed<'a, T> {
    io: &'a mut T,
    deadline: Instant,
}

impl<T: Bounded> Timed<'_, T> {
    fn arm(&mut self, read: bool) -> io::Result<()> {
        let left = self.deadline.saturating_duration_since(Instant::now());
        if left.is_zero() {
            return Err(io::ErrorKind::TimedOut.into());
        }
        self.io.bound(read, left)
    }
}

impl<T: Bounded> Read for Timed<'_, T> {
    fn read(&mut self, buf: &mut [u8]) -> io::Result<usize> {
        self.arm(true)?;
        self.io.read(buf)
    }
}

impl<T: Bounded> Write for Timed<'_, T> {
    fn write(&mut self, buf: &[u8]) -> io::Result<usize> {
        self.arm(false)?;
        self.io.write(buf)
    }

    fn flush(&mut self) -> io::Result<()> {
        Ok(())
    }
}

/// The tunnel's failures, named for the proxy.
struct Failing<'a> {
    proxy: &'a Endpoint,
    target: String,
    limit: Duration,
}

impl Failing<'_> {
    fn refused(&self, reason: String, status: Option<u16>) -> Error {
        Error::Proxy {
            proxy: self.proxy.shown(),
            reason,
            status,
            source: None,
        }
    }

    /// A read or write of the tunnel failed.
    fn io(&self, e: io::Error) -> Error {
        if is_socket_timeout(e.kind()) {
            return Error::Timeout {
                phase: Phase::Proxy,
                after: Some(self.limit),
            };
        }
        let reason = if e.kind() == io::ErrorKind::UnexpectedEof {
            format!(
                "the proxy closed the connection while opening the tunnel to {}: is it {} \
                 proxy?",
                self.target,
                match self.proxy.protocol {
                    Protocol::Http | Protocol::Https => "an HTTP",
                    Protocol::Socks5 { .. } => "a SOCKS5",
                }
            )
        } else if e.kind() == io::ErrorKind::InvalidData {
            // Only the TLS to an https:// proxy reads bytes as invalid.
            format!(
                "the TLS connection to the proxy failed while opening the tunnel to {}",
                self.target
            )
        } else {
            format!("opening the tunnel to {} failed", self.target)
        };
        Error::Proxy {
            proxy: self.proxy.shown(),
            reason,
            status: None,
            source: Some(e),
        }
    }
}

fn target_of(host: &str, port: u16) -> String {
    if host.contains(':') {
        format!("[{host}]:{port}")
    } else {
        format!("{host}:{port}")
    }
}

/// Connects to `proxy` with `socket`'s settings (its connect timeout), to
/// open a tunnel to `host:port` over.
pub(crate) fn reach(
    socket: &SocketSettings,
    proxy: &Endpoint,
    host: &str,
    port: u16,
) -> Result<TcpStream> {
    let reached = socket
        .resolve(&proxy.host, proxy.port)
        .and_then(|addrs| socket.connect_any(&addrs, &proxy.host, proxy.port));
    reached.map_err(|e| Error::Proxy {
        proxy: proxy.shown(),
        reason: format!(
            "the proxy cannot be reached (to connect to {})",
            target_of(host, port)
        ),
        status: None,
        source: Some(io::Error::from(e)),
    })
}

/// Connects to `proxy` with `socket`'s settings (its connect timeout) and
/// opens a tunnel to `host:port` within `limit`.
pub(crate) fn open(
    socket: &SocketSettings,
    proxy: &Endpoint,
    host: &str,
    port: u16,
    limit: Duration,
) -> Result<TcpStream> {
    let target = target_of(host, port);
    let fail = Failing {
        proxy,
        target: target.clone(),
        limit,
    };
    let mut tcp = reach(socket, proxy, host, port)?;
    let deadline = deadline_in(limit);
    {
        let mut timed = Timed {
            io: &mut tcp,
            deadline,
        };
        match proxy.protocol {
            Protocol::Http => http_connect(&mut timed, proxy, &target, &fail)?,
            // Never in the clear: its tunnel is opened inside its TLS
            // (`connect_over`).
            Protocol::Https => {
                return Err(fail.refused("an https:// proxy is reached over TLS".to_owned(), None));
            }
            Protocol::Socks5 { remote_dns } => {
                socks5(&mut timed, proxy, socket, host, port, remote_dns, &fail)?;
            }
        }
    }
    let _ = tcp.set_read_timeout(None);
    let _ = tcp.set_write_timeout(None);
    Ok(tcp)
}

/// Opens a tunnel to `host:port` with HTTP CONNECT over `io` (the TLS to an
/// `https://` proxy), by `deadline` (`limit` names it in a timeout).
pub(crate) fn connect_over(
    io: &mut impl Bounded,
    proxy: &Endpoint,
    host: &str,
    port: u16,
    deadline: Instant,
    limit: Duration,
) -> Result<()> {
    let target = target_of(host, port);
    let fail = Failing {
        proxy,
        target: target.clone(),
        limit,
    };
    http_connect(&mut Timed { io, deadline }, proxy, &target, &fail)
}

/// The TLS handshake with an `https://` proxy failed (its certificate, its
/// protocols): an error naming the proxy, with the handshake's as source.
pub(crate) fn tls_failed(proxy: &Endpoint, e: Error) -> Error {
    match e {
        Error::Timeout { after, .. } => {
            return Error::Timeout {
                phase: Phase::Proxy,
                after,
            };
        }
        Error::Proxy { .. } => return e,
        _ => {}
    }
    // The advice in a certificate error is for the target's trust; the
    // proxy's own CA has its own place.
    let untrusted = matches!(
        e.certificate_problem(),
        Some(
            CertificateProblem::UnknownIssuer { .. }
                | CertificateProblem::UntrustedRoot { .. }
                | CertificateProblem::SelfSigned { .. }
        )
    );
    let hint = if untrusted {
        " (a proxy with a CA of its own is trusted with ConnectOptions::proxy_context)"
    } else {
        ""
    };
    Error::Proxy {
        proxy: proxy.shown(),
        reason: format!("the TLS handshake with the proxy failed: {e}{hint}"),
        status: None,
        source: Some(io::Error::from(e)),
    }
}

fn http_connect<T: Bounded>(
    io: &mut Timed<'_, T>,
    proxy: &Endpoint,
    target: &str,
    fail: &Failing<'_>,
) -> Result<()> {
    let mut request = format!("CONNECT {target} HTTP/1.1\r\nHost: {target}\r\n");
    if let Some((user, pass)) = &proxy.credentials {
        let token = Base64::encode_string(format!("{user}:{pass}").as_bytes());
        request.push_str(&format!("Proxy-Authorization: Basic {token}\r\n"));
    }
    request.push_str("\r\n");
    io.write_all(request.as_bytes()).map_err(|e| fail.io(e))?;
    // Byte by byte: what follows the head is the target's.
    let mut head = Vec::with_capacity(256);
    let mut byte = [0u8; 1];
    while !head.ends_with(b"\r\n\r\n") {
        if head.len() >= MAX_HEAD {
            return Err(fail.refused(
                format!("its answer to CONNECT exceeds {MAX_HEAD} bytes"),
                None,
            ));
        }
        match io.read(&mut byte) {
            Ok(0) => return Err(fail.io(io::ErrorKind::UnexpectedEof.into())),
            Ok(_) => head.push(byte[0]),
            Err(e) if e.kind() == io::ErrorKind::Interrupted => {}
            Err(e) => return Err(fail.io(e)),
        }
    }
    let mut headers = vec![httparse::EMPTY_HEADER; MAX_HEADERS];
    let mut response = httparse::Response::new(&mut headers);
    match response.parse(&head) {
        Ok(httparse::Status::Complete(_)) => {}
        Err(httparse::Error::TooManyHeaders) => {
            return Err(fail.refused(
                format!(
                    "its answer to CONNECT has too many headers (more than {MAX_HEADERS}, \
                     where a proxy sends a few): the tunnel is not used"
                ),
                None,
            ));
        }
        _ => {
            return Err(fail.refused(
                "its answer to CONNECT is not HTTP: is it an HTTP proxy?".to_owned(),
                None,
            ));
        }
    }
    let status = response.code.unwrap_or(0);
    let reason = response.reason.unwrap_or("").to_owned();
    match status {
        200..=299 => Ok(()),
        // 407 is the proxy's own status; some proxies (tinyproxy) answer
        // wrong credentials with 401.
        401 | 407 => Err(fail.refused(
            if proxy.credentials.is_some() {
                format!("{status} {reason}: it refused the user and password in the proxy URL")
            } else {
                format!(
                    "{status} {reason}: it wants credentials and none were sent; put \
                     user:password@ in the proxy URL"
                )
            },
            Some(status),
        )),
        _ => Err(fail.refused(
            format!("it refused to connect to {target}: {status} {reason}"),
            Some(status),
        )),
    }
}

/// RFC 1928's reply codes.
fn socks_reply(code: u8) -> &'static str {
    match code {
        1 => "general SOCKS server failure",
        2 => "connection not allowed by ruleset",
        3 => "network unreachable",
        4 => "host unreachable",
        5 => "connection refused",
        6 => "TTL expired",
        7 => "command not supported",
        8 => "address type not supported",
        _ => "unassigned reply code",
    }
}

fn socks5(
    io: &mut Timed<'_, TcpStream>,
    proxy: &Endpoint,
    socket: &SocketSettings,
    host: &str,
    port: u16,
    remote_dns: bool,
    fail: &Failing<'_>,
) -> Result<()> {
    let methods: &[u8] = if proxy.credentials.is_some() {
        &[0x00, 0x02]
    } else {
        &[0x00]
    };
    let mut hello = vec![5, methods.len() as u8];
    hello.extend_from_slice(methods);
    io.write_all(&hello).map_err(|e| fail.io(e))?;
    let mut reply = [0u8; 2];
    io.read_exact(&mut reply).map_err(|e| fail.io(e))?;
    if reply[0] != 5 {
        return Err(fail.refused(
            "its answer is not SOCKS5: is it a SOCKS5 proxy?".to_owned(),
            None,
        ));
    }
    match reply[1] {
        0x00 => {}
        0x02 => {
            let Some((user, pass)) = &proxy.credentials else {
                return Err(fail.refused(
                    "it chose user/password authentication, which was not offered".to_owned(),
                    None,
                ));
            };
            let (user, pass) = (user.as_bytes(), pass.as_bytes());
            let (Ok(ulen), Ok(plen)) = (u8::try_from(user.len()), u8::try_from(pass.len())) else {
                return Err(Error::invalid_input(
                    proxy.shown(),
                    "a SOCKS5 user name and password are at most 255 bytes each",
                ));
            };
            let mut auth = vec![1, ulen];
            auth.extend_from_slice(user);
            auth.push(plen);
            auth.extend_from_slice(pass);
            io.write_all(&auth).map_err(|e| fail.io(e))?;
            let mut status = [0u8; 2];
            io.read_exact(&mut status).map_err(|e| fail.io(e))?;
            if status[1] != 0 {
                return Err(fail.refused(
                    "it refused the user and password in the proxy URL (RFC 1929)".to_owned(),
                    Some(u16::from(status[1])),
                ));
            }
        }
        0xff => {
            return Err(fail.refused(
                if proxy.credentials.is_some() {
                    "it accepts none of the authentication methods offered".to_owned()
                } else {
                    "it wants authentication: put user:password@ in the proxy URL".to_owned()
                },
                None,
            ));
        }
        other => {
            return Err(fail.refused(
                format!("it chose authentication method {other:#04x}, which was not offered"),
                None,
            ));
        }
    }
    let mut request = vec![5, 1, 0];
    let literal = crate::net::connect::unbracket(host).parse::<IpAddr>().ok();
    let ip = match (literal, remote_dns) {
        (Some(ip), _) => Some(ip),
        (None, true) => None,
        (None, false) => Some(
            socket
                .resolve(host, port)?
                .first()
                .map(|a| a.ip())
                .ok_or_else(|| Error::invalid_input(host, "the name has no address"))?,
        ),
    };
    match ip {
        Some(IpAddr::V4(v4)) => {
            request.push(1);
            request.extend_from_slice(&v4.octets());
        }
        Some(IpAddr::V6(v6)) => {
            request.push(4);
            request.extend_from_slice(&v6.octets());
        }
        None => {
            let name = host.as_bytes();
            let len = u8::try_from(name.len()).map_err(|_| {
                Error::invalid_input(host, "a name sent to a SOCKS5 proxy is at most 255 bytes")
            })?;
            request.push(3);
            request.push(len);
            request.extend_from_slice(name);
        }
    }
    request.extend_from_slice(&port.to_be_bytes());
    io.write_all(&request).map_err(|e| fail.io(e))?;
    let mut head = [0u8; 4];
    io.read_exact(&mut head).map_err(|e| fail.io(e))?;
    if head[0] != 5 {
        return Err(fail.refused(
            format!(
                "its SOCKS5 reply is of version {}, not 5: the tunnel is not used; is it a \
                 SOCKS5 proxy?",
                head[0]
            ),
            None,
        ));
    }
    if head[1] != 0 {
        return Err(fail.refused(
            format!(
                "it refused to connect to {}: {} (SOCKS5 reply {})",
                fail.target,
                socks_reply(head[1]),
                head[1]
            ),
            Some(u16::from(head[1])),
        ));
    }
    if head[2] != 0 {
        return Err(fail.refused(
            format!(
                "its SOCKS5 reply has {:#04x} in its reserved byte, which RFC 1928 sets to \
                 0: the tunnel is not used",
                head[2]
            ),
            None,
        ));
    }
    // The address the proxy bound: read it off, unused.
    let rest = match head[3] {
        1 => 4 + 2,
        4 => 16 + 2,
        3 => {
            let mut len = [0u8; 1];
            io.read_exact(&mut len).map_err(|e| fail.io(e))?;
            usize::from(len[0]) + 2
        }
        _ => {
            return Err(fail.refused(
                "its SOCKS5 reply has an unknown address type".to_owned(),
                None,
            ));
        }
    };
    let mut skip = vec![0u8; rest];
    io.read_exact(&mut skip).map_err(|e| fail.io(e))?;
    Ok(())
}
