//! Parsing `ws://` and `wss://` URLs, before any I/O.

use http::Uri;

use crate::error::{Error, Result};
use crate::net::connect::unbracket;
use crate::net::percent::percent_decode;

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

impl WsUrl {
    /// Splits the URL with `http::Uri` (RFC 3986), then applies RFC 6455's
    /// rules: a `ws` or `wss` scheme, a host, no fragment, a port of 1 to
    /// 65535.
    pub(crate) fn parse(url: &str) -> Result<WsUrl> {
        if url.contains('#') {
            // http::Uri drops a fragment without a word.
            return Err(Error::invalid_input(
                url,
                "a WebSocket URL must not have a fragment (#...): RFC 6455 section 3",
            ));
        }
        let uri: Uri = url.parse().map_err(|e| {
            let Some((_, rest)) = url.split_once("://") else {
                return Error::invalid_input(
                    url,
                    "not a URL: expected ws://host/path or wss://host/path",
                );
            };
            let authority = rest.split(['/', '?']).next().unwrap_or("");
            let host = authority.rsplit_once('@').map_or(authority, |(_, h)| h);
            if host.is_empty() || host.starts_with(':') {
                return Error::invalid_input(url, "the URL has no host");
            }
            Error::invalid_input(
                url,
                format!("not a URL ({e}): percent-encode spaces and control characters"),
            )
        })?;
        let (Some(scheme), Some(authority)) = (uri.scheme_str(), uri.authority()) else {
            return Err(Error::invalid_input(
                url,
                "not a URL with a host: expected ws://host/path or wss://host/path",
            ));
        };
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
        let target = match uri.path_and_query().map(|p| p.as_str()) {
            None | Some("") => "/".to_owned(),
            Some(p) if p.starts_with('?') => format!("/{p}"),
            Some(p) => p.to_owned(),
        };
        let (userinfo, hostport) = match authority.as_str().rsplit_once('@') {
            Some((u, h)) => (Some(u), h),
            None => (None, authority.as_str()),
        };
        let credentials = match userinfo {
            Some(u) => {
                let (user, pass) = u.split_once(':').unwrap_or((u, ""));
                Some((percent_decode(user, url)?, percent_decode(pass, url)?))
            }
            None => None,
        };
        let host = unbracket(authority.host());
        if host.is_empty() {
            return Err(Error::invalid_input(url, "the URL has no host"));
        }
        let default_port = if secure { 443 } else { 80 };
        // Not `authority.port()`: it reads a port past 65535 as none.
        let port = match hostport.get(authority.host().len()..).unwrap_or("") {
            "" => default_port,
            p => p
                .strip_prefix(':')
                .and_then(|p| p.parse::<u16>().ok())
                .filter(|p| *p != 0)
                .ok_or_else(|| {
                    Error::invalid_input(url, format!("'{p}' is not a port: give :1 to :65535"))
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
        let u = WsUrl::parse("ws://[::1]:8080/x").expect("url");
        assert_eq!((u.host.as_str(), u.port), ("::1", 8080));
        assert_eq!(u.host_header, "[::1]:8080");
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
            "ws://user@/",
            "ws://h%zz@host/",
        ] {
            let err = WsUrl::parse(bad).expect_err(bad);
            assert!(matches!(err, Error::InvalidInput { .. }), "{bad}: {err:?}");
        }
        let err = WsUrl::parse("http://x/").expect_err("http");
        assert!(err.to_string().contains("ws:// or wss://"), "{err}");
    }
}
