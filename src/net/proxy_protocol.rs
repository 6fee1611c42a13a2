//! The PROXY protocol (HAProxy's, versions 1 and 2): the header a load
//! balancer sends before the client's bytes, naming the client's address
//! and the address it connected to. Parsing only; reading it off a
//! connection is the stream's job.

use std::net::{IpAddr, Ipv4Addr, Ipv6Addr, SocketAddr};

/// Which PROXY protocol header a listener requires before TLS
/// ([`BindOptions::proxy_protocol`](crate::BindOptions::proxy_protocol)).
#[non_exhaustive]
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Hash)]
pub enum ProxyProtocol {
    /// No header: the bytes are TLS from the first one (the default).
    #[default]
    Off,
    /// A version 1 (text) header is required (HAProxy `send-proxy`).
    V1,
    /// A version 2 (binary) header is required (HAProxy `send-proxy-v2`).
    V2,
    /// Either version is required.
    Any,
}

/// The addresses a header carried; `None` for a `LOCAL` (v2) or
/// `UNKNOWN` (v1) header, or an address family other than TCP/UDP over
/// IPv4 or IPv6, where the connection's own addresses stand.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) struct Addresses {
    pub(crate) source: SocketAddr,
    pub(crate) destination: SocketAddr,
}

/// What a buffer holds so far.
#[derive(Debug, PartialEq, Eq)]
pub(crate) enum Parsed {
    /// Not enough bytes yet.
    Incomplete,
    /// A whole header of this many bytes.
    Done(usize, Option<Addresses>),
}

const V1_MAX: usize = 107;
const V2_SIGNATURE: &[u8; 12] = b"\r\n\r\n\0\r\nQUIT\n";
/// The most address and TLV bytes a v2 header may announce here (the
/// protocol allows 65535; load balancers send far less).
pub(crate) const V2_MAX_BODY: usize = 2048;

/// Parses a header of `mode` at the start of `buf`; `Err` says what is
/// wrong with it.
pub(crate) fn parse(buf: &[u8], mode: ProxyProtocol) -> Result<Parsed, String> {
    let Some(&first) = buf.first() else {
        return Ok(Parsed::Incomplete);
    };
    match (mode, first) {
        (ProxyProtocol::V1 | ProxyProtocol::Any, b'P') => parse_v1(buf),
        (ProxyProtocol::V2 | ProxyProtocol::Any, b'\r') => parse_v2(buf),
        _ => Err(format!(
            "the connection does not start with a PROXY protocol {} header{}",
            match mode {
                ProxyProtocol::V1 => "v1",
                ProxyProtocol::V2 => "v2",
                _ => "v1 or v2",
            },
            if first == 0x16 {
                " but with TLS: the load balancer does not send one"
            } else {
                ""
            }
        )),
    }
}

fn parse_v1(buf: &[u8]) -> Result<Parsed, String> {
    let prefix = b"PROXY ";
    let n = buf.len().min(prefix.len());
    if buf[..n] != prefix[..n] {
        return Err("not a PROXY v1 header".to_owned());
    }
    // The line ends at its first CR or LF, which must be a CRLF: a bare
    // LF (or CR) is refused now, not waited on until the handshake
    // timeout. With its CRLF, the line is at most `V1_MAX` bytes.
    let line_end = buf
        .iter()
        .take(V1_MAX - 1)
        .position(|b| matches!(b, b'\r' | b'\n'));
    let end = match line_end {
        None if buf.len() >= V1_MAX - 1 => {
            return Err(format!("a PROXY v1 header has no CRLF in {V1_MAX} bytes"));
        }
        None => return Ok(Parsed::Incomplete),
        Some(i) if buf[i] == b'\n' => {
            return Err("a PROXY v1 header ends in a bare LF: it must end in CRLF".to_owned());
        }
        Some(i) => match buf.get(i + 1) {
            None => return Ok(Parsed::Incomplete),
            Some(b'\n') => i,
            Some(_) => {
                return Err("a PROXY v1 header has a CR not followed by LF".to_owned());
            }
        },
    };
    let line = std::str::from_utf8(&buf[..end]).map_err(|_| "a PROXY v1 header is not ASCII")?;
    let fields: Vec<&str> = line.split(' ').collect();
    let addresses = match fields.as_slice() {
        ["PROXY", "UNKNOWN", ..] => None,
        ["PROXY", family @ ("TCP4" | "TCP6"), src, dst, sport, dport] => {
            let ip = |s: &str| -> Result<IpAddr, String> {
                let ip: IpAddr = s
                    .parse()
                    .map_err(|_| format!("'{s}' is not an IP address"))?;
                match (*family, ip) {
                    ("TCP4", IpAddr::V4(_)) | ("TCP6", IpAddr::V6(_)) => Ok(ip),
                    _ => Err(format!("'{s}' is not an address of {family}")),
                }
            };
            let port = |s: &str| -> Result<u16, String> {
                s.parse()
                    .ok()
                    .filter(|_| !s.starts_with('0') || s == "0")
                    .ok_or_else(|| format!("'{s}' is not a port"))
            };
            Some(Addresses {
                source: SocketAddr::new(ip(src)?, port(sport)?),
                destination: SocketAddr::new(ip(dst)?, port(dport)?),
            })
        }
        _ => return Err(format!("a malformed PROXY v1 header: '{line}'")),
    };
    Ok(Parsed::Done(end + 2, addresses))
}

fn parse_v2(buf: &[u8]) -> Result<Parsed, String> {
    let n = buf.len().min(V2_SIGNATURE.len());
    if buf[..n] != V2_SIGNATURE[..n] {
        return Err("not a PROXY v2 header (wrong signature)".to_owned());
    }
    if buf.len() < 16 {
        return Ok(Parsed::Incomplete);
    }
    let (version, command) = (buf[12] >> 4, buf[12] & 0x0f);
    if version != 2 {
        return Err(format!("a PROXY v2 header of version {version}"));
    }
    let family = buf[13];
    let len = usize::from(u16::from_be_bytes([buf[14], buf[15]]));
    if len > V2_MAX_BODY {
        return Err(format!(
            "a PROXY v2 header announcing {len} bytes, more than the {V2_MAX_BODY} accepted"
        ));
    }
    if buf.len() < 16 + len {
        return Ok(Parsed::Incomplete);
    }
    let body = &buf[16..16 + len];
    let addresses = match (command, family >> 4) {
        (0, _) => None,
        (1, 1) if body.len() >= 12 => {
            let ip = |i: usize| {
                IpAddr::V4(Ipv4Addr::new(
                    body[i],
                    body[i + 1],
                    body[i + 2],
                    body[i + 3],
                ))
            };
            let port = |i: usize| u16::from_be_bytes([body[i], body[i + 1]]);
            Some(Addresses {
                source: SocketAddr::new(ip(0), port(8)),
                destination: SocketAddr::new(ip(4), port(10)),
            })
        }
        (1, 2) if body.len() >= 36 => {
            let ip = |i: usize| {
                let mut a = [0u8; 16];
                a.copy_from_slice(&body[i..i + 16]);
                IpAddr::V6(Ipv6Addr::from(a))
            };
            let port = |i: usize| u16::from_be_bytes([body[i], body[i + 1]]);
            Some(Addresses {
                source: SocketAddr::new(ip(0), port(32)),
                destination: SocketAddr::new(ip(16), port(34)),
            })
        }
        (1, 1 | 2) => return Err("a PROXY v2 header too short for its addresses".to_owned()),
        (1, _) => None,
        (c, _) => return Err(format!("a PROXY v2 header with command {c}")),
    };
    Ok(Parsed::Done(16 + len, addresses))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn v2(command: u8, family: u8, body: &[u8]) -> Vec<u8> {
        let mut out = V2_SIGNATURE.to_vec();
        out.push(0x20 | command);
        out.push(family);
        out.extend_from_slice(&(body.len() as u16).to_be_bytes());
        out.extend_from_slice(body);
        out
    }

    #[test]
    fn v1_headers() {
        let h = b"PROXY TCP4 192.0.2.1 198.51.100.2 56324 443\r\n\x16\x03\x01";
        let Ok(Parsed::Done(n, Some(a))) = parse(h, ProxyProtocol::V1) else {
            panic!("{:?}", parse(h, ProxyProtocol::V1))
        };
        assert_eq!(&h[n..], b"\x16\x03\x01");
        assert_eq!(a.source, "192.0.2.1:56324".parse().expect("addr"));
        assert_eq!(a.destination, "198.51.100.2:443".parse().expect("addr"));
        let six = b"PROXY TCP6 2001:db8::1 2001:db8::2 1 2\r\n";
        assert!(matches!(
            parse(six, ProxyProtocol::Any),
            Ok(Parsed::Done(_, Some(_)))
        ));
        assert_eq!(
            parse(b"PROXY UNKNOWN\r\n", ProxyProtocol::V1),
            Ok(Parsed::Done(15, None))
        );
        assert_eq!(
            parse(b"PROXY TCP4 1.2", ProxyProtocol::V1),
            Ok(Parsed::Incomplete)
        );
        for bad in [
            &b"PROXY TCP4 1.2.3.4 5.6.7.8 1 99999\r\n"[..],
            b"PROXY TCP4 ::1 5.6.7.8 1 2\r\n",
            b"PROXY TCP5 1.2.3.4 5.6.7.8 1 2\r\n",
            b"PROXY TCP4 1.2.3.4 5.6.7.8 01 2\r\n",
            b"PROXX TCP4",
            &[b'P'; 200],
        ] {
            assert!(parse(bad, ProxyProtocol::V1).is_err(), "{bad:?}");
        }
        for (bare, says) in [
            (&b"PROXY TCP4 127.0.0.1 127.0.0.1 1 2\n"[..], "bare LF"),
            (b"PROXY UNKNOWN\n\r\n", "bare LF"),
            (
                b"PROXY TCP4 127.0.0.1 127.0.0.1 1 2\rX\r\n",
                "CR not followed",
            ),
        ] {
            let e = parse(bare, ProxyProtocol::Any).expect_err("not CRLF");
            assert!(e.contains(says), "{bare:?}: {e}");
        }
        let mut longest = b"PROXY UNKNOWN ".to_vec();
        longest.resize(V1_MAX - 2, b'x');
        longest.extend_from_slice(b"\r\n");
        assert_eq!(
            parse(&longest, ProxyProtocol::V1),
            Ok(Parsed::Done(V1_MAX, None))
        );
        longest.insert(20, b'x');
        assert!(parse(&longest, ProxyProtocol::V1).is_err(), "108 bytes");
        assert_eq!(
            parse(b"PROXY UNKNOWN\r", ProxyProtocol::V1),
            Ok(Parsed::Incomplete),
            "the LF may come next"
        );
        let tls = parse(b"\x16\x03\x01\x00", ProxyProtocol::V1).expect_err("TLS");
        assert!(tls.contains("does not send one"), "{tls}");
        assert!(
            parse(b"\r\n\r\n", ProxyProtocol::V1).is_err(),
            "v2 when v1 is required"
        );
    }

    #[test]
    fn v2_headers() {
        let body = [192, 0, 2, 1, 198, 51, 100, 2, 0xdc, 0x04, 0x01, 0xbb, 0xaa];
        let h = v2(1, 0x11, &body);
        let Ok(Parsed::Done(n, Some(a))) = parse(&h, ProxyProtocol::V2) else {
            panic!()
        };
        assert_eq!(n, h.len());
        assert_eq!(a.source, "192.0.2.1:56324".parse().expect("addr"));
        assert_eq!(a.destination, "198.51.100.2:443".parse().expect("addr"));
        assert_eq!(
            parse(&v2(0, 0x00, &[]), ProxyProtocol::Any),
            Ok(Parsed::Done(16, None)),
            "LOCAL keeps the socket's address"
        );
        let mut six = vec![0u8; 36];
        six[15] = 1;
        assert!(matches!(
            parse(&v2(1, 0x21, &six), ProxyProtocol::V2),
            Ok(Parsed::Done(52, Some(_)))
        ));
        assert_eq!(parse(&h[..20], ProxyProtocol::V2), Ok(Parsed::Incomplete));
        let mut huge = v2(1, 0x11, &[]);
        huge[14] = 0xff;
        huge[15] = 0xff;
        assert!(
            parse(&huge, ProxyProtocol::V2)
                .expect_err("huge")
                .contains("65535")
        );
        assert!(parse(&v2(1, 0x11, &[1, 2, 3]), ProxyProtocol::V2).is_err());
        assert!(parse(&v2(5, 0x11, &body), ProxyProtocol::V2).is_err());
        assert!(
            parse(b"PROXY TCP4", ProxyProtocol::V2).is_err(),
            "v1 when v2 is required"
        );
    }
}
