//! Proxies for client connections: an HTTP CONNECT proxy or a SOCKS5 one,
//! given as a URL or read (on request) from the environment the way curl
//! reads it (`https_proxy`, `http_proxy`, `all_proxy`, `no_proxy`).

use std::fmt;
use std::net::{IpAddr, Ipv6Addr};

use crate::error::{Error, Result};
use crate::net::connect::unbracket;
use crate::net::percent::percent_decode;
use crate::net::redact::{redacted, split_host_port, split_scheme};

/// The default port of a proxy URL without one (curl's).
const DEFAULT_PROXY_PORT: u16 = 1080;
/// The default port of an `https://` proxy URL without one (curl's).
const DEFAULT_HTTPS_PROXY_PORT: u16 = 443;

/// How to talk to a proxy.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) enum Protocol {
    /// HTTP CONNECT (RFC 9110 section 9.3.6).
    Http,
    /// HTTP CONNECT over TLS to the proxy (`https://`); the tunnel runs
    /// inside that TLS.
    Https,
    /// SOCKS5 (RFC 1928); `remote_dns`: the proxy resolves the name
    /// (`socks5h://`).
    Socks5 { remote_dns: bool },
}

/// One proxy server.
#[derive(Clone, PartialEq, Eq)]
pub(crate) struct Endpoint {
    pub(crate) protocol: Protocol,
    pub(crate) host: String,
    pub(crate) port: u16,
    /// User and password, percent-decoded; never shown.
    pub(crate) credentials: Option<(String, String)>,
}

impl Endpoint {
    /// The proxy as messages name it: scheme, host and port, never the
    /// credentials.
    pub(crate) fn shown(&self) -> String {
        let scheme = match self.protocol {
            Protocol::Http => "http",
            Protocol::Https => "https",
            Protocol::Socks5 { remote_dns: false } => "socks5",
            Protocol::Socks5 { remote_dns: true } => "socks5h",
        };
        let host = if self.host.contains(':') {
            format!("[{}]", self.host)
        } else {
            self.host.clone()
        };
        format!("{scheme}://{host}:{}", self.port)
    }

    /// Parses a proxy URL; `label` names it in errors (the URL with its
    /// credentials hidden, perhaps after the variable it came from).
    fn parse(url: &str, label: &str) -> Result<Endpoint> {
        let bad = |why: &str| Error::invalid_input(label, why.to_owned());
        let url = url.trim();
        // curl takes a proxy without a scheme as http.
        let (scheme, rest) = split_scheme(url).unwrap_or(("http", url));
        let protocol = match scheme.to_ascii_lowercase().as_str() {
            "http" => Protocol::Http,
            "socks5" => Protocol::Socks5 { remote_dns: false },
            "socks5h" => Protocol::Socks5 { remote_dns: true },
            "https" => Protocol::Https,
            other => {
                return Err(bad(&format!(
                    "the proxy scheme '{other}' is not one of http://, https://, socks5://, \
                     socks5h://"
                )));
            }
        };
        let authority = rest.split(['/', '?', '#']).next().unwrap_or_default();
        let after = &rest[authority.len()..];
        if !matches!(after, "/" | "") {
            return Err(bad(if after.contains('@') {
                "a '/', '?' or '#' in a proxy's user name or password ends the host part of \
                 the URL: percent-encode it (%2F, %3F, %23)"
            } else {
                "a proxy URL has no path, query or fragment: give scheme://host:port"
            }));
        }
        let (userinfo, hostport) = match authority.rsplit_once('@') {
            Some((u, h)) => (Some(u), h),
            None => (None, authority),
        };
        let credentials = match userinfo {
            Some(u) => {
                let (user, pass) = u.split_once(':').unwrap_or((u, ""));
                Some((percent_decode(user, label)?, percent_decode(pass, label)?))
            }
            None => None,
        };
        let (host, port) = split_host_port(hostport)
            .ok_or_else(|| bad("the proxy's host or port is malformed: give scheme://host:port"))?;
        if host.is_empty() {
            return Err(bad("the proxy URL has no host"));
        }
        if !valid_host(&host) || (hostport.starts_with('[') && host.parse::<Ipv6Addr>().is_err()) {
            return Err(bad(
                "the proxy's host is not a name (letters, digits, '-', '.', '_') or an IP \
                 address: give scheme://host:port",
            ));
        }
        Ok(Endpoint {
            protocol,
            host,
            port: port.unwrap_or(if protocol == Protocol::Https {
                DEFAULT_HTTPS_PROXY_PORT
            } else {
                DEFAULT_PROXY_PORT
            }),
            credentials,
        })
    }
}

impl fmt::Debug for Endpoint {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}", self.shown())?;
        if self.credentials.is_some() {
            write!(f, " (with credentials)")?;
        }
        Ok(())
    }
}

/// A host a proxy URL may name: an IP address, or a name of letters,
/// digits, `-`, `.` and `_` (no spaces, no percent-encoding, ASCII: a
/// punycode name for an international one).
fn valid_host(host: &str) -> bool {
    host.parse::<IpAddr>().is_ok()
        || host
            .bytes()
            .all(|b| b.is_ascii_alphanumeric() || matches!(b, b'-' | b'.' | b'_'))
}

/// An address or CIDR network (`10.0.0.0/8`, `::1`): the network and its
/// prefix length.
pub(crate) fn parse_network(entry: &str) -> Option<(IpAddr, u8)> {
    let (addr, bits) = match entry.trim().split_once('/') {
        Some((a, b)) => (a, Some(b.parse::<u8>().ok()?)),
        None => (entry.trim(), None),
    };
    let ip: IpAddr = unbracket(addr).parse().ok()?;
    let max = if ip.is_ipv4() { 32 } else { 128 };
    let bits = bits.unwrap_or(max);
    (bits <= max).then_some((ip, bits))
}

/// One `no_proxy` entry.
#[derive(Clone, Debug, PartialEq, Eq)]
enum Bypass {
    All,
    /// A host name and its subdomains (`example.com`, `.example.com`).
    Domain(String, Option<u16>),
    /// An IP address, or a network in CIDR form.
    Network(IpAddr, u8, Option<u16>),
}

impl Bypass {
    fn parse(entry: &str) -> Option<Bypass> {
        let entry = entry.trim();
        if entry.is_empty() {
            return None;
        }
        if entry == "*" {
            return Some(Bypass::All);
        }
        let (addr, bits) = match entry.split_once('/') {
            Some((a, b)) => (a, b.parse::<u8>().ok()),
            None => (entry, None),
        };
        let (host, port) = split_host_port(addr)?;
        if let Ok(ip) = unbracket(&host).parse::<IpAddr>() {
            let max = if ip.is_ipv4() { 32 } else { 128 };
            return Some(Bypass::Network(ip, bits.unwrap_or(max).min(max), port));
        }
        let domain = host.trim_start_matches('.').to_ascii_lowercase();
        Some(Bypass::Domain(domain, port))
    }

    fn matches(&self, host: &str, port: u16) -> bool {
        match self {
            Bypass::All => true,
            Bypass::Domain(d, p) => {
                let host = host.trim_end_matches('.').to_ascii_lowercase();
                p.is_none_or(|p| p == port) && (host == *d || host.ends_with(&format!(".{d}")))
            }
            Bypass::Network(net, bits, p) => {
                let Ok(ip) = unbracket(host).parse::<IpAddr>() else {
                    return false;
                };
                p.is_none_or(|p| p == port) && in_network(ip, *net, *bits)
            }
        }
    }
}

/// Whether `ip` is in the network `net`/`bits`.
pub(crate) fn in_network(ip: IpAddr, net: IpAddr, bits: u8) -> bool {
    match (ip, net) {
        (IpAddr::V4(a), IpAddr::V4(b)) => {
            let mask = u32::MAX.checked_shl(32 - u32::from(bits)).unwrap_or(0);
            u32::from(a) & mask == u32::from(b) & mask
        }
        (IpAddr::V6(a), IpAddr::V6(b)) => {
            let mask = u128::MAX.checked_shl(128 - u32::from(bits)).unwrap_or(0);
            u128::from(a) & mask == u128::from(b) & mask
        }
        _ => false,
    }
}

/// A proxy for [`ConnectOptions::proxy`](crate::ConnectOptions::proxy):
/// one given as a URL, or the ones the environment names.
///
/// ```
/// # fn main() -> securenet::Result<()> {
/// use securenet::Proxy;
/// let corporate = Proxy::http("http://user:s3cret@proxy.example:3128")?;
/// let tor = Proxy::socks5("socks5h://127.0.0.1:9050")?;
/// // Credentials never show:
/// assert_eq!(format!("{corporate:?}"), "Proxy(http://proxy.example:3128 (with credentials))");
/// # let _ = tor; Ok(()) }
/// ```
#[derive(Clone, PartialEq, Eq)]
pub struct Proxy {
    rule: Rule,
}

#[derive(Clone, PartialEq, Eq)]
enum Rule {
    /// Every connection through this proxy.
    Fixed(Endpoint),
    /// From the environment: by scheme, with exceptions.
    Env {
        https: Option<Endpoint>,
        http: Option<Endpoint>,
        bypass: Vec<Bypass>,
    },
}

impl fmt::Debug for Proxy {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match &self.rule {
            Rule::Fixed(e) => write!(f, "Proxy({e:?})"),
            Rule::Env {
                https,
                http,
                bypass,
            } => f
                .debug_struct("Proxy")
                .field("https", https)
                .field("http", http)
                .field("no_proxy", bypass)
                .finish(),
        }
    }
}

impl Proxy {
    /// A proxy of the kind its URL's scheme names: `http://` (also when
    /// there is no scheme, as in curl's `-x`), `https://`, `socks5://` or
    /// `socks5h://`.
    /// See [`http`](Self::http) and [`socks5`](Self::socks5).
    pub fn new(url: &str) -> Result<Proxy> {
        Ok(Proxy {
            rule: Rule::Fixed(Endpoint::parse(url, &redacted(url))?),
        })
    }

    /// An HTTP proxy, reached with `CONNECT host:port` (RFC 9110 9.3.6):
    /// `http://host:port`, with `user:password@` (percent-encoded) for
    /// `Proxy-Authorization: Basic`. The port defaults to 1080, as in curl.
    ///
    /// `https://host:port` (port 443 by default) runs TLS to the proxy
    /// first, and the tunnel inside it: the proxy's certificate is
    /// verified for its own name against the connection's
    /// [`context`](crate::ConnectOptions::context) (its trust, never
    /// [`reject_unauthorized`](crate::ConnectOptions::reject_unauthorized),
    /// pins or identity checks, which are the target's), offering ALPN
    /// `http/1.1`; the credentials, if any, travel inside that TLS. A
    /// proxy with its own CA is trusted with
    /// [`proxy_context`](crate::ConnectOptions::proxy_context), for the
    /// proxy alone.
    pub fn http(url: &str) -> Result<Proxy> {
        let endpoint = Endpoint::parse(url, &redacted(url))?;
        if !matches!(endpoint.protocol, Protocol::Http | Protocol::Https) {
            return Err(Error::invalid_input(
                redacted(url),
                "Proxy::http takes an http:// or https:// URL (Proxy::socks5 for socks5://)",
            ));
        }
        Ok(Proxy {
            rule: Rule::Fixed(endpoint),
        })
    }

    /// A SOCKS5 proxy (RFC 1928): `socks5://host:port` resolves the target
    /// name here and sends the address; `socks5h://` sends the name for the
    /// proxy to resolve. `user:password@` uses RFC 1929 authentication.
    pub fn socks5(url: &str) -> Result<Proxy> {
        let endpoint = Endpoint::parse(url, &redacted(url))?;
        if !matches!(endpoint.protocol, Protocol::Socks5 { .. }) {
            return Err(Error::invalid_input(
                redacted(url),
                "Proxy::socks5 takes a socks5:// or socks5h:// URL",
            ));
        }
        Ok(Proxy {
            rule: Rule::Fixed(endpoint),
        })
    }

    /// The proxies the environment names, read now, as curl reads them:
    /// `https_proxy`/`HTTPS_PROXY` for TLS connections (and `wss://`),
    /// `http_proxy` (lower case only, as curl: `HTTP_PROXY` can be set by a
    /// web server's client) for `ws://`, `all_proxy`/`ALL_PROXY` for both
    /// when those are unset; `no_proxy`/`NO_PROXY` lists hosts to reach
    /// directly: `*`, names (`example.com` covers its subdomains, a leading
    /// dot is ignored), IP addresses and CIDR networks, each optionally
    /// with `:port`. Lower case wins over upper case. Reading the
    /// environment is never implicit: only this does it.
    ///
    /// A variable that is set but malformed is an error naming the
    /// variable (never its credentials).
    pub fn from_env() -> Result<Proxy> {
        Proxy::from_vars(|name| std::env::var(name).ok().filter(|v| !v.trim().is_empty()))
    }

    /// [`from_env`](Self::from_env) over any source of variables.
    pub(crate) fn from_vars(var: impl Fn(&str) -> Option<String>) -> Result<Proxy> {
        let either = |lower: &str, upper: &str| {
            var(lower)
                .map(|v| (lower.to_owned(), v))
                .or_else(|| var(upper).map(|v| (upper.to_owned(), v)))
        };
        let parse = |found: Option<(String, String)>| -> Result<Option<Endpoint>> {
            found
                .map(|(name, url)| Endpoint::parse(&url, &format!("{name}={}", redacted(&url))))
                .transpose()
        };
        let all = parse(either("all_proxy", "ALL_PROXY"))?;
        let https = parse(either("https_proxy", "HTTPS_PROXY"))?.or_else(|| all.clone());
        let http = parse(var("http_proxy").map(|v| ("http_proxy".to_owned(), v)))?.or(all);
        let bypass = either("no_proxy", "NO_PROXY")
            .map(|(_, v)| v.split(',').filter_map(Bypass::parse).collect())
            .unwrap_or_default();
        Ok(Proxy {
            rule: Rule::Env {
                https,
                http,
                bypass,
            },
        })
    }

    /// Whether some connection may go through an `https://` proxy of
    /// this one.
    pub(crate) fn may_use_tls(&self) -> bool {
        let https =
            |e: &Option<Endpoint>| e.as_ref().is_some_and(|e| e.protocol == Protocol::Https);
        match &self.rule {
            Rule::Fixed(e) => e.protocol == Protocol::Https,
            Rule::Env { https: s, http, .. } => https(s) || https(http),
        }
    }

    /// The proxy for a connection to `host:port` (`tls`: a TLS or `wss://`
    /// connection), or `None` to connect directly.
    pub(crate) fn for_target(&self, host: &str, port: u16, tls: bool) -> Option<&Endpoint> {
        match &self.rule {
            Rule::Fixed(e) => Some(e),
            Rule::Env {
                https,
                http,
                bypass,
            } => {
                if bypass.iter().any(|b| b.matches(host, port)) {
                    return None;
                }
                if tls { https.as_ref() } else { http.as_ref() }
            }
        }
    }
}

#[cfg(test)]
mod tests;
