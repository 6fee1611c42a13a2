//! Parsing `ws://` and `wss://` URLs, before any I/O.

use crate::error::{Error, Result};

/// A parsed WebSocket URL.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct WsUrl {
    pub(crate) secure: bool,
    /// The host, without brackets for IPv6.
    pub(crate) host: String,
    pub(crate) port: u16,
    /// Path and query, at least `/`.
    pub(crate) target: String,
    /// Percent-decoded user and password.
    pub(crate) credentials: Option<(String, String)>,
    /// The `Host` header value.
    pub(crate) host_header: String,
}

fn percent_decode(s: &str, url: &str) -> Result<String> {
    let bytes = s.as_bytes();
    let mut out = Vec::with_capacity(bytes.len());
    let mut i = 0;
    while i < bytes.len() {
        if bytes[i] == b'%' {
            let hex = bytes
                .get(i + 1..i + 3)
                .and_then(|h| std::str::from_utf8(h).ok())
                .and_then(|h| u8::from_str_radix(h, 16).ok())
                .ok_or_else(|| {
                    Error::invalid_input(
                        url,
                        "a '%' in the user info is not followed by two hex digits",
                    )
                })?;
            out.push(hex);
            i += 3;
        } else {
            out.push(bytes[i]);
            i += 1;
        }
    }
    String::from_utf8(out)
        .map_err(|_| Error::invalid_input(url, "the user info is not UTF-8 once percent-decoded"))
}

impl WsUrl {
    pub(crate) fn parse(url: &str) -> Result<WsUrl> {
        let (scheme, rest) = url.split_once("://").ok_or_else(|| {
            Error::invalid_input(url, "not a URL: expected ws://host/path or wss://host/path")
        })?;
        let secure = match scheme.to_ascii_lowercase().as_str() {
            "ws" => false,
            "wss" => true,
            other => {
                return Err(Error::invalid_input(
                    url,
                    format!("the scheme '{other}' is not a WebSocket scheme: use ws:// or wss://"),
                ));
            }
        };
        if rest.contains('#') {
            return Err(Error::invalid_input(
                url,
                "a WebSocket URL must not have a fragment (#...): RFC 6455 section 3",
            ));
        }
        let (authority, target) = match rest.find(['/', '?']) {
            Some(i) => (&rest[..i], &rest[i..]),
            None => (rest, "/"),
        };
        let target = if target.starts_with('?') {
            format!("/{target}")
        } else {
            target.to_owned()
        };
        if target.bytes().any(|b| b <= b' ' || b == 0x7f) {
            return Err(Error::invalid_input(
                url,
                "the path has spaces or control characters: percent-encode them",
            ));
        }
        let (userinfo, hostport) = match authority.rsplit_once('@') {
            Some((u, h)) => (Some(u), h),
            None => (None, authority),
        };
        let credentials = match userinfo {
            Some(u) => {
                let (user, pass) = u.split_once(':').unwrap_or((u, ""));
                Some((percent_decode(user, url)?, percent_decode(pass, url)?))
            }
            None => None,
        };
        let (host, port) = if let Some(after) = hostport.strip_prefix('[') {
            let (h, rest) = after.split_once(']').ok_or_else(|| {
                Error::invalid_input(url, "an IPv6 address must be closed with ']'")
            })?;
            let port = match rest {
                "" => None,
                p => Some(p.strip_prefix(':').ok_or_else(|| {
                    Error::invalid_input(url, "only ':port' may follow an IPv6 address")
                })?),
            };
            (h, port)
        } else {
            match hostport.rsplit_once(':') {
                Some((h, p)) => (h, Some(p)),
                None => (hostport, None),
            }
        };
        if host.is_empty() {
            return Err(Error::invalid_input(url, "the URL has no host"));
        }
        if host.bytes().any(|b| b <= b' ' || b"/\\?#@".contains(&b)) {
            return Err(Error::invalid_input(
                url,
                format!("'{host}' is not a valid host"),
            ));
        }
        let default_port = if secure { 443 } else { 80 };
        let port = match port {
            None => default_port,
            Some(p) => p.parse::<u16>().ok().filter(|p| *p != 0).ok_or_else(|| {
                Error::invalid_input(url, format!("'{p}' is not a port: give 1 to 65535"))
            })?,
        };
        let host_for_header = if host.contains(':') {
            format!("[{host}]")
        } else {
            host.to_owned()
        };
        let host_header = if port == default_port {
            host_for_header
        } else {
            format!("{host_for_header}:{port}")
        };
        Ok(WsUrl {
            secure,
            host: host.to_owned(),
            port,
            target,
            credentials,
            host_header,
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn parses_the_parts() {
        let u = WsUrl::parse("wss://us%40r:p%3Ass@example.com:8443/chat?x=1").expect("url");
        assert!(u.secure);
        assert_eq!(u.host, "example.com");
        assert_eq!(u.port, 8443);
        assert_eq!(u.target, "/chat?x=1");
        assert_eq!(u.credentials, Some(("us@r".into(), "p:ss".into())));
        assert_eq!(u.host_header, "example.com:8443");
        let u = WsUrl::parse("ws://[::1]").expect("url");
        assert_eq!(
            (u.host.as_str(), u.port, u.target.as_str()),
            ("::1", 80, "/")
        );
        assert_eq!(u.host_header, "[::1]");
        let u = WsUrl::parse("ws://h?q").expect("url");
        assert_eq!(u.target, "/?q");
    }

    #[test]
    fn rejects_bad_urls_before_any_io() {
        for bad in [
            "http://example.com/",
            "example.com",
            "ws:///path",
            "ws://host:99999/",
            "ws://host:0/",
            "ws://host:abc/",
            "ws://host/a b",
            "ws://host/#frag",
            "ws://[::1/",
        ] {
            let err = WsUrl::parse(bad).expect_err(bad);
            assert!(matches!(err, Error::InvalidInput { .. }), "{bad}: {err:?}");
        }
        let err = WsUrl::parse("http://x/").expect_err("http");
        assert!(err.to_string().contains("ws:// or wss://"), "{err}");
    }
}
