//! What a WebSocket server sees of the client's upgrade request
//! ([`UpgradeRequest`]) and what it answers: accept with a subprotocol and
//! headers ([`UpgradeResponse`]) or refuse with a status ([`Rejection`]).
//! Plain HTTP answers are in `respond.rs`.

use std::fmt;
use std::net::SocketAddr;
use std::time::SystemTime;

use http::StatusCode;

use super::options::{ShownHeaders, ShownProtocols, check_header};

use crate::error::{Error, Result};
use crate::time::date_field;

/// The most body bytes a [`Rejection`] sends.
pub const MAX_REJECTION_BODY: usize = 4096;

/// The client's upgrade request, as
/// [`WebSocket::accept_with`](crate::WebSocket::accept_with) shows it to
/// its callback (or any request, upgrade or plain HTTP, as
/// [`WebSocket::accept_or_respond`](crate::WebSocket::accept_or_respond)
/// shows it). Its `Debug` shows the values of headers that may carry a
/// credential (`Authorization`, `Cookie`, names with `token`, `key`...) as
/// `***`, the query as `***` (it may hold an `access_token`), and so each
/// subprotocol with `bearer`, `token` or `auth` in it (any case), in
/// `protocols` and in the `Sec-WebSocket-Protocol` header: Kubernetes
/// sends `base64url.bearer.authorization.k8s.io.<token>`.
/// [`query`](Self::query), [`protocols`](Self::protocols) and
/// [`header`](Self::header) give the real values.
#[derive(Clone)]
pub struct UpgradeRequest {
    pub(crate) method: String,
    pub(crate) path: String,
    pub(crate) query: Option<String>,
    pub(crate) headers: Vec<(String, String)>,
    pub(crate) protocols: Vec<String>,
    pub(crate) extensions: Vec<String>,
    pub(crate) peer_addr: Option<SocketAddr>,
    pub(crate) is_upgrade: bool,
}

impl fmt::Debug for UpgradeRequest {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("UpgradeRequest")
            .field("method", &self.method)
            .field("path", &self.path)
            .field("query", &self.query.as_ref().map(|_| "***"))
            .field("headers", &ShownHeaders(&self.headers))
            .field("protocols", &ShownProtocols(&self.protocols))
            .field("extensions", &self.extensions)
            .field("peer_addr", &self.peer_addr)
            .field("is_upgrade", &self.is_upgrade)
            .finish()
    }
}

impl fmt::Debug for UpgradeResponse {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("UpgradeResponse")
            .field("protocol", &self.protocol)
            .field("headers", &ShownHeaders(&self.headers))
            .finish()
    }
}

impl fmt::Debug for Rejection {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Rejection")
            .field("status", &self.status)
            .field("headers", &ShownHeaders(&self.headers))
            .field("body", &self.body)
            .finish()
    }
}

impl UpgradeRequest {
    /// The method: always `GET` for an upgrade (an upgrade with another
    /// method is refused with 405 before the callback); any method, as
    /// sent, for a request that is not one
    /// ([`accept_or_respond`](crate::WebSocket::accept_or_respond)).
    pub fn method(&self) -> &str {
        &self.method
    }

    /// Whether the client asks for a WebSocket upgrade. Such a request has
    /// passed the upgrade's checks (method, version, key, `Origin`) before
    /// the callback sees it. Always `true` under
    /// [`accept_with`](crate::WebSocket::accept_with); under
    /// [`accept_or_respond`](crate::WebSocket::accept_or_respond), `false`
    /// for a plain HTTP request (no `Upgrade: websocket`), such as a load
    /// balancer's `GET /healthz` or a browser loading a page: Go's
    /// `websocket.IsWebSocketUpgrade`.
    pub fn is_upgrade(&self) -> bool {
        self.is_upgrade
    }

    /// The path, as sent (percent-encoded), without the query: `/chat`.
    pub fn path(&self) -> &str {
        &self.path
    }

    /// The query after `?`, as sent, if any: `room=1&user=ann`.
    pub fn query(&self) -> Option<&str> {
        self.query.as_deref()
    }

    /// Every header in the order sent, repeated ones kept, names as sent.
    pub fn headers(&self) -> &[(String, String)] {
        &self.headers
    }

    /// The first value of the header `name` (any case), if sent.
    pub fn header(&self, name: &str) -> Option<&str> {
        self.headers
            .iter()
            .find(|(n, _)| n.eq_ignore_ascii_case(name))
            .map(|(_, v)| v.as_str())
    }

    /// Every value of the header `name` (any case), in order.
    pub fn header_values<'a>(&'a self, name: &'a str) -> impl Iterator<Item = &'a str> + 'a {
        self.headers
            .iter()
            .filter(move |(n, _)| n.eq_ignore_ascii_case(name))
            .map(|(_, v)| v.as_str())
    }

    /// The `Origin` header: what a browser says the page came from
    /// (`https://app.example.com`). Non-browser clients usually send none.
    pub fn origin(&self) -> Option<&str> {
        self.header("origin")
    }

    /// The subprotocols the client offered, most preferred first.
    pub fn protocols(&self) -> &[String] {
        &self.protocols
    }

    /// The extensions the client offered, one offer each, as sent
    /// (`permessage-deflate; client_max_window_bits`).
    pub fn extensions(&self) -> &[String] {
        &self.extensions
    }

    /// The client's address, where the transport has one.
    pub fn peer_addr(&self) -> Option<SocketAddr> {
        self.peer_addr
    }
}

/// How to accept an upgrade: the subprotocol and extra response headers.
/// `UpgradeResponse::new()` accepts with the defaults (the client's first
/// subprotocol that the options list, and no extra headers).
#[derive(Clone, Default)]
pub struct UpgradeResponse {
    pub(crate) protocol: Option<String>,
    pub(crate) headers: Vec<(String, String)>,
}

impl UpgradeResponse {
    /// Accepts with the defaults.
    pub fn new() -> Self {
        Self::default()
    }

    /// Chooses the subprotocol; it must be one the client offered.
    pub fn protocol(mut self, protocol: &str) -> Self {
        self.protocol = Some(protocol.to_owned());
        self
    }

    /// Adds a header to the 101 response (`Set-Cookie`, ...). The headers
    /// of the upgrade itself (`Upgrade`, `Connection`, `Sec-WebSocket-*`)
    /// are the library's to send.
    pub fn header(mut self, name: &str, value: &str) -> Self {
        self.headers.push((name.to_owned(), value.to_owned()));
        self
    }
}

/// A refused upgrade: a status (400-599), headers and a short text body.
#[derive(Clone)]
pub struct Rejection {
    pub(crate) status: u16,
    pub(crate) headers: Vec<(String, String)>,
    pub(crate) body: String,
}

impl Rejection {
    /// Refuses with `status`: 401, 403, 404, 429, 503... Anything outside
    /// 400-599 is sent as 500 and reported to the server as an error.
    pub fn new(status: u16) -> Self {
        Rejection {
            status,
            headers: Vec::new(),
            body: String::new(),
        }
    }

    /// Adds a header (`WWW-Authenticate`, `Retry-After`, ...).
    pub fn header(mut self, name: &str, value: &str) -> Self {
        self.headers.push((name.to_owned(), value.to_owned()));
        self
    }

    /// The body, sent as `text/plain`, cut to [`MAX_REJECTION_BODY`] bytes.
    pub fn body(mut self, text: &str) -> Self {
        let mut end = text.len().min(MAX_REJECTION_BODY);
        while !text.is_char_boundary(end) {
            end -= 1;
        }
        self.body = text[..end].to_owned();
        self
    }

    /// The status this sends.
    pub fn status(&self) -> u16 {
        self.status
    }
}

/// Headers the upgrade sends itself, which callbacks may not add.
const RESERVED: [&str; 8] = [
    "connection",
    "upgrade",
    "sec-websocket-accept",
    "sec-websocket-protocol",
    "sec-websocket-extensions",
    "sec-websocket-version",
    "content-length",
    "transfer-encoding",
];

/// Checks headers from a callback: valid names and values, none of the
/// upgrade's own.
pub(crate) fn check_headers(headers: &[(String, String)]) -> Result<()> {
    for (name, value) in headers {
        check_header(name, value)?;
        if RESERVED.iter().any(|r| r.eq_ignore_ascii_case(name)) {
            return Err(Error::invalid_input(
                name,
                "sent by the upgrade itself: a callback cannot set it (choose the subprotocol \
                 with UpgradeResponse::protocol)",
            ));
        }
    }
    Ok(())
}

/// `HTTP/1.1 <status> <reason>` and a text body, closing the connection;
/// dated now.
pub(crate) fn refusal(status: u16, headers: &[(String, String)], body: &str) -> String {
    refusal_at(status, headers, body, SystemTime::now())
}

fn refusal_at(status: u16, headers: &[(String, String)], body: &str, now: SystemTime) -> String {
    let reason = StatusCode::from_u16(status)
        .ok()
        .and_then(|s| s.canonical_reason())
        .unwrap_or("Refused");
    let mut out = format!(
        "HTTP/1.1 {status} {reason}\r\nContent-Type: text/plain; charset=utf-8\r\n\
         Content-Length: {}\r\nConnection: close\r\n",
        body.len()
    );
    out.push_str(&date_field(headers.iter().map(|(n, _)| n.as_str()), now).unwrap_or_default());
    for (name, value) in headers {
        out.push_str(&format!("{name}: {value}\r\n"));
    }
    out.push_str("\r\n");
    out.push_str(body);
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn refusals_are_dated_unless_given_a_date() {
        let example = std::time::UNIX_EPOCH + std::time::Duration::from_secs(784_111_777);
        let text = refusal_at(403, &[], "no\n", example);
        assert_eq!(
            text,
            "HTTP/1.1 403 Forbidden\r\nContent-Type: text/plain; charset=utf-8\r\n\
             Content-Length: 3\r\nConnection: close\r\nDate: Sun, 06 Nov 1994 08:49:37 GMT\r\n\
             \r\nno\n"
        );
        let given = [(
            "DATE".to_owned(),
            "Mon, 07 Nov 1994 00:00:00 GMT".to_owned(),
        )];
        let text = refusal_at(403, &given, "", example);
        assert_eq!(
            text.to_ascii_lowercase().matches("date:").count(),
            1,
            "{text}"
        );
    }

    #[test]
    fn debug_hides_credential_headers() {
        let req = UpgradeRequest {
            method: "GET".into(),
            path: "/chat".into(),
            query: None,
            headers: vec![
                ("Authorization".into(), "Bearer Zq9xWv7y".into()),
                ("Cookie".into(), "sid=Zq9xWv7y".into()),
                ("Origin".into(), "https://app.example".into()),
            ],
            protocols: Vec::new(),
            extensions: Vec::new(),
            peer_addr: None,
            is_upgrade: true,
        };
        let text = format!("{req:?}");
        assert!(!text.contains("Zq9xWv7y"), "{text}");
        assert!(text.contains("https://app.example"), "{text}");
        assert_eq!(req.header("authorization"), Some("Bearer Zq9xWv7y"));
    }
}
