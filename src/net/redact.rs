//! What messages show of a URL that may carry `user:password@` (a proxy's,
//! a WebSocket's), and the splitting of a URL's scheme, host and port that
//! showing it needs. Every error, `Debug` and log line that names such a
//! URL goes through [`redacted`].

use std::net::IpAddr;

/// `host`, `host:port`, `[v6]`, `[v6]:port`: the host (unbracketed) and
/// the port, if given. `None` if malformed.
pub(crate) fn split_host_port(s: &str) -> Option<(String, Option<u16>)> {
    if let Some(rest) = s.strip_prefix('[') {
        let (host, after) = rest.split_once(']')?;
        let port = match after.strip_prefix(':') {
            Some(p) => Some(p.parse().ok().filter(|p| *p != 0)?),
            None if after.is_empty() => None,
            None => return None,
        };
        return Some((host.to_owned(), port));
    }
    match s.rsplit_once(':') {
        Some((host, port)) if !host.contains(':') => Some((
            host.to_owned(),
            Some(port.parse().ok().filter(|p| *p != 0)?),
        )),
        Some(_) => Some((s.to_owned(), None)),
        None => Some((s.to_owned(), None)),
    }
}

/// `scheme://` and the rest, if `url` starts with a scheme (a letter,
/// then letters, digits, `+`, `-`, `.`): a `://` inside a password is no
/// scheme.
pub(crate) fn split_scheme(url: &str) -> Option<(&str, &str)> {
    let (scheme, rest) = url.split_once("://")?;
    let mut chars = scheme.chars();
    let first = chars.next()?;
    (first.is_ascii_alphabetic()
        && chars.all(|c| c.is_ascii_alphanumeric() || matches!(c, '+' | '-' | '.')))
    .then_some((scheme, rest))
}

/// The URL as messages show it: everything up to the last `@` (the user
/// info, even with an unencoded `@`, `/`, `?` or `#` in a password) is
/// `***`, and so is anything after the host and port. Without an `@`, a
/// host and port that do not parse are hidden too: `user:password` with
/// the `@host` forgotten would otherwise show. Control characters are
/// escaped.
pub(crate) fn redacted(url: &str) -> String {
    let url = url.trim();
    let (scheme, rest) = match split_scheme(url) {
        Some((scheme, rest)) => (format!("{scheme}://"), rest),
        None => (String::new(), url),
    };
    let (userinfo, hostpart) = match rest.rsplit_once('@') {
        Some((_, host)) => ("***@", host),
        None => ("", rest),
    };
    let end = hostpart.find(['/', '?', '#']).unwrap_or(hostpart.len());
    let (authority, after) = hostpart.split_at(end);
    let plain = split_host_port(authority)
        .is_some_and(|(host, _)| !host.contains(':') || host.parse::<IpAddr>().is_ok());
    let authority = if userinfo.is_empty() && !plain {
        "***"
    } else {
        authority
    };
    let after = if matches!(after, "" | "/") {
        after
    } else {
        "/***"
    };
    // A URL, or a variable holding one, is not to break a log line.
    format!("{scheme}{userinfo}{authority}{after}")
        .escape_debug()
        .to_string()
}
