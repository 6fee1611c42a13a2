//! Parsing `ws://` and `wss://` URLs, before any I/O.

use std::fmt;

use http::Uri;

use crate::error::{Error, Result};
use crate::net::connect::unbracket;
use crate::net::percent::percent_decode;
use crate::net::redact::redacted;

/// A parsed WebSocket URL.
#[derive(Clone, PartialEq, Eq)]
pub(crate) struct WsUrl {
    pub(crate) secure: bool,
    /// The host, without brackets for IPv6.
    pub(crate) host: String,
    pub(crate) port: u16,
    /// Path and query, at least `/`.
    pub(crate) target: String,
    /// Percent-decoded user and password; never shown.
    pub(crate) credentials: Option<(String, String)>,
    /// The `Host` header value.
    pub(crate) host_header: String,
}

impl fmt::Debug for WsUrl {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("WsUrl")
            .field("secure", &self.secure)
            .field("host", &self.host)
            .field("port", &self.port)
            .field("target", &"***")
            .field("credentials", &self.credentials.as_ref().map(|_| "***"))
            .finish()
    }
}

impl WsUrl {
    /// Splits the URL with `http::Uri` (RFC 3986), then applies RFC 6455's
    /// rules: a `ws` or `wss` scheme, a host, no fragment, a port of 1 to
    /// 65535. Errors name the URL as [`redacted`] shows it, never its user
    /// info (nor its path and query, which may hold a token).
    pub(crate) fn parse(url: &str) -> Result<WsUrl> {
        let shown = redacted(url);
        let url_error = |reason: String| Error::invalid_input(shown.clone(), reason);
        if url.contains('#') {
            // http::Uri drops a fragment without a word.
            return Err(url_error(
                "a WebSocket URL must not have a fragment (#...): RFC 6455 section 3; \
                 percent-encode a '#' in a user name or password as %23"
                    .to_owned(),
            ));
        }
        let uri: Uri = url.parse().map_err(|e| {
            let Some((_, rest)) = url.split_once("://") else {
                return url_error(
                    "not a URL: expected ws://host/path or wss://host/path".to_owned(),
                );
            };
            let authority = rest.split(['/', '?']).next().unwrap_or("");
            let host = authority.rsplit_once('@').map_or(authority, |(_, h)| h);
            if host.is_empty() || host.starts_with(':') {
                return url_error("the URL has no host".to_owned());
            }
            url_error(format!(
                "not a URL ({e}): percent-encode spaces and control characters, and a '/', \
                 '?' or '@' in a user name or password (%2F, %3F, %40)"
            ))
        })?;
        let (Some(scheme), Some(authority)) = (uri.scheme_str(), uri.authority()) else {
            return Err(url_error(
                "not a URL with a host: expected ws://host/path or wss://host/path".to_owned(),
            ));
        };
        let secure = match scheme.to_ascii_lowercase().as_str() {
            "ws" => false,
            "wss" => true,
            other => {
                return Err(url_error(format!(
                    "the scheme '{}' is not a WebSocket scheme: use ws:// or wss://",
                    other.escape_debug()
                )));
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
                Some((percent_decode(user, &shown)?, percent_decode(pass, &shown)?))
            }
            None => None,
        };
        let host = unbracket(authority.host());
        if host.is_empty() {
            return Err(url_error("the URL has no host".to_owned()));
        }
        let default_port = if secure { 443 } else { 80 };
        // Not `authority.port()`: it reads a port past 65535 as none. The
        // text is not echoed: with the `@host` forgotten, the password is
        // what reads as the port.
        let port = match hostport.get(authority.host().len()..).unwrap_or("") {
            "" => default_port,
            p => p
                .strip_prefix(':')
                .and_then(|p| p.parse::<u16>().ok())
                .filter(|p| *p != 0)
                .ok_or_else(|| {
                    url_error(
                        "the port is not a number from 1 to 65535: give host:port, and \
                         percent-encode a ':' in a user name (%3A)"
                            .to_owned(),
                    )
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
        let debug = format!("{u:?}");
        assert!(!debug.contains("p:ss") && !debug.contains("x=1"), "{debug}");
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
