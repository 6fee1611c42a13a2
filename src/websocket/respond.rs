//! Plain HTTP beside WebSockets: what
//! [`WebSocket::accept_or_respond`]'s callback answers ([`Answer`]: the
//! upgrade, or an [`HttpResponse`]), what serving the request came to
//! ([`Accepted`]), the bytes of a plain response, and the end of a
//! connection after an HTTP answer (a half-close, then the client's last
//! bytes drained: RFC 9112 section 9.6).

use std::fmt;
use std::io::Write;
use std::time::{Duration, Instant, SystemTime};

use http::StatusCode;

use super::options::{ShownHeaders, check_header};
use super::request::UpgradeResponse;
use super::stream::WsTransport;
use super::{WebSocket, deadline_after};
use crate::error::{Error, Result};
use crate::time::date_field;

/// How long the end of a connection after an HTTP answer waits for the
/// client to close (at most; never past the upgrade timeout).
const LINGER: Duration = Duration::from_secs(2);
/// The most bytes read and dropped while waiting for the client to close.
const LINGER_BYTES: usize = 256 * 1024;

/// A plain HTTP response to a request that is not a WebSocket upgrade (or
/// one the server turns down), from
/// [`WebSocket::accept_or_respond`](crate::WebSocket::accept_or_respond)'s
/// callback: a status, headers and a body, sent as given. securenet adds
/// `Date` (unless given), `Content-Length` (the body's length) and
/// `Connection: close`, and closes
/// the connection after it: one response per connection, no keep-alive.
///
/// ```
/// use securenet::HttpResponse;
///
/// let ok = HttpResponse::new(200)
///     .header("Content-Type", "text/plain; charset=utf-8")
///     .header("Cache-Control", "no-store")
///     .body("ok\n");
/// assert_eq!(ok.status(), 200);
/// ```
#[derive(Clone)]
pub struct HttpResponse {
    pub(crate) status: u16,
    pub(crate) headers: Vec<(String, String)>,
    pub(crate) body: Vec<u8>,
}

impl HttpResponse {
    /// A response with `status` (200-599), no headers and no body. A status
    /// outside 200-599 (an informational 1xx cannot end a request) is sent
    /// as 500 and reported as [`Error::InvalidInput`] by
    /// `accept_or_respond`.
    pub fn new(status: u16) -> Self {
        HttpResponse {
            status,
            headers: Vec::new(),
            body: Vec::new(),
        }
    }

    /// Adds a header (`Content-Type`, `Cache-Control`, `Location`,
    /// `Set-Cookie`...); repeat it for a list. `Content-Length`,
    /// `Connection` and `Transfer-Encoding` are securenet's to send. A name
    /// or value that is not valid HTTP (a line break in it) is sent as 500
    /// and reported as [`Error::InvalidInput`] naming the header.
    pub fn header(mut self, name: &str, value: &str) -> Self {
        self.headers.push((name.to_owned(), value.to_owned()));
        self
    }

    /// The body, sent as given, of any size (within the upgrade timeout);
    /// set its `Content-Type` with [`header`](Self::header). Not sent in
    /// answer to `HEAD` (its length still is); 204, 205 and 304 responses
    /// have none.
    pub fn body(mut self, body: impl Into<Vec<u8>>) -> Self {
        self.body = body.into();
        self
    }

    /// The status this sends.
    pub fn status(&self) -> u16 {
        self.status
    }
}

impl fmt::Debug for HttpResponse {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("HttpResponse")
            .field("status", &self.status)
            .field("headers", &ShownHeaders(&self.headers))
            .field("body_len", &self.body.len())
            .finish()
    }
}

/// What [`WebSocket::accept_or_respond`](crate::WebSocket::accept_or_respond)'s
/// callback answers a request with: Go's handler, which either upgrades
/// (gorilla's `Upgrader.Upgrade`) or writes a response; Node's `http`
/// server, whose `'upgrade'` event hands the socket to `ws`'s
/// `handleUpgrade` and whose `'request'` event answers the rest. Both
/// variants convert with `.into()`.
#[derive(Debug, Clone)]
pub enum Answer {
    /// Accept the upgrade, with this subprotocol and these headers. For a
    /// request that is not an upgrade
    /// ([`is_upgrade`](crate::UpgradeRequest::is_upgrade) is `false`), the
    /// client gets `426 Upgrade Required`, as from
    /// [`accept_with`](crate::WebSocket::accept_with), and
    /// `accept_or_respond` fails with
    /// [`WebSocketErrorKind::Upgrade`](crate::WebSocketErrorKind::Upgrade).
    Upgrade(UpgradeResponse),
    /// Answer with a plain HTTP response and close the connection: a page,
    /// `/healthz`, a redirect, or a refused upgrade (401, 403, 404...).
    Respond(HttpResponse),
}

impl From<UpgradeResponse> for Answer {
    fn from(response: UpgradeResponse) -> Self {
        Answer::Upgrade(response)
    }
}

impl From<HttpResponse> for Answer {
    fn from(response: HttpResponse) -> Self {
        Answer::Respond(response)
    }
}

/// What [`WebSocket::accept_or_respond`](crate::WebSocket::accept_or_respond)
/// came to, when nothing failed: a WebSocket, or a plain HTTP answer that
/// was sent (the connection is closed). Neither is an error, so a refusal
/// the callback chose never reaches
/// [`BindOptions::on_client_error`](crate::BindOptions::on_client_error).
// Returned once and matched at once, as `Result<WebSocket<S>>` is: a box
// would only cost users a `*`.
#[allow(clippy::large_enum_variant)]
pub enum Accepted<S> {
    /// The upgrade was accepted: `101 Switching Protocols` was sent.
    WebSocket(WebSocket<S>),
    /// The callback's [`HttpResponse`] with this status was sent, then the
    /// connection was closed (TLS `close_notify`, then TCP).
    Answered(u16),
}

impl<S> fmt::Debug for Accepted<S> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Accepted::WebSocket(ws) => f.debug_tuple("WebSocket").field(ws).finish(),
            Accepted::Answered(status) => f.debug_tuple("Answered").field(status).finish(),
        }
    }
}

/// Headers a plain response gets from securenet only: the body's framing
/// and the end of the connection.
const FRAMING: [&str; 3] = ["content-length", "connection", "transfer-encoding"];

/// Statuses whose responses have no body (RFC 9110 section 15).
fn has_no_content(status: u16) -> bool {
    matches!(status, 204 | 205 | 304)
}

/// The reason phrase of `status`, or none (allowed by RFC 9112).
fn reason_phrase(status: u16) -> &'static str {
    StatusCode::from_u16(status)
        .ok()
        .and_then(|s| s.canonical_reason())
        .unwrap_or("")
}

/// The head of `response` (status line, headers, blank line), or why it
/// cannot be sent; dated now.
pub(crate) fn response_head(response: &HttpResponse) -> Result<String> {
    response_head_at(response, SystemTime::now())
}

/// [`response_head`] with a `Date` of `now` (RFC 9110 section 6.6.1: an
/// origin server with a clock sends one), unless the response has its own.
fn response_head_at(response: &HttpResponse, now: SystemTime) -> Result<String> {
    let status = response.status;
    if !(100..=599).contains(&status) {
        return Err(Error::invalid_input(
            status.to_string(),
            "not an HTTP status: accept_or_respond's HttpResponse::new takes a status from 200 \
             to 599",
        ));
    }
    if status < 200 {
        return Err(Error::invalid_input(
            status.to_string(),
            "an informational status (1xx) cannot end a request, and 101 is the upgrade's own: \
             answer with a status from 200 to 599, or Answer::Upgrade to upgrade",
        ));
    }
    if has_no_content(status) && !response.body.is_empty() {
        return Err(Error::invalid_input(
            status.to_string(),
            format!(
                "a {status} response has no body, but HttpResponse::body gave {} bytes: drop \
                 the body or answer with another status",
                response.body.len()
            ),
        ));
    }
    let mut head = format!("HTTP/1.1 {status} {}\r\n", reason_phrase(status));
    let names = response.headers.iter().map(|(name, _)| name.as_str());
    head.push_str(&date_field(names, now).unwrap_or_default());
    for (name, value) in &response.headers {
        check_header(name, value)?;
        if FRAMING.iter().any(|r| r.eq_ignore_ascii_case(name)) {
            return Err(Error::invalid_input(
                name,
                "securenet sends it itself (the body's Content-Length and Connection: close): \
                 leave it out of the HttpResponse",
            ));
        }
        head.push_str(&format!("{name}: {value}\r\n"));
    }
    // 204 and 304 carry no Content-Length (RFC 9110 sections 8.6, 15.4.5).
    if !matches!(status, 204 | 304) {
        head.push_str(&format!("Content-Length: {}\r\n", response.body.len()));
    }
    head.push_str("Connection: close\r\n\r\n");
    Ok(head)
}

/// Sends a plain response: `head`, then `body` (empty in answer to `HEAD`).
pub(crate) fn send_response<S: Write>(stream: &mut S, head: &str, body: &[u8]) -> Result<()> {
    stream.write_all(head.as_bytes()).map_err(Error::from)?;
    if !body.is_empty() {
        stream.write_all(body).map_err(Error::from)?;
    }
    stream.flush().map_err(Error::from)
}

/// Ends a connection after an HTTP answer, within `deadline` and
/// [`LINGER`]: a half-close (TLS `close_notify`, then TCP FIN), then what
/// the client still sends (a body, a second request) is read and dropped
/// until it closes, at most [`LINGER_BYTES`], so that closing does not
/// reset the connection before the client has read the answer (RFC 9112
/// section 9.6); then the socket is shut.
pub(crate) fn close_after_answer<S: WsTransport>(stream: &mut S, deadline: Option<Instant>) {
    let linger = deadline_after(Some(LINGER));
    let deadline = match (deadline, linger) {
        (Some(a), Some(b)) => Some(a.min(b)),
        (a, b) => a.or(b),
    };
    let left = || {
        deadline.map(|at| {
            at.saturating_duration_since(Instant::now())
                .max(Duration::from_millis(1))
        })
    };
    if stream.set_write(left()).is_ok() {
        stream.close_write();
        // `deadline` is never None here: LINGER bounds it.
        if let Some(at) = deadline {
            stream.drain(LINGER_BYTES, at);
        }
    }
    let _ = stream.set_write(left());
    stream.end_transport();
}

#[cfg(test)]
mod tests {
    use super::*;

    /// RFC 9110 section 5.6.7's example date.
    fn example_date() -> SystemTime {
        std::time::UNIX_EPOCH + std::time::Duration::from_secs(784_111_777)
    }

    fn head(response: &HttpResponse) -> Result<String> {
        response_head_at(response, example_date())
    }

    #[test]
    fn framing_is_added_and_checked() {
        let text = head(&HttpResponse::new(200).header("X-A", "1").body("ok")).expect("valid");
        assert_eq!(
            text,
            "HTTP/1.1 200 OK\r\nDate: Sun, 06 Nov 1994 08:49:37 GMT\r\nX-A: 1\r\n\
             Content-Length: 2\r\nConnection: close\r\n\r\n"
        );
        // The response's own Date is sent, not a second one.
        let text = head(&HttpResponse::new(200).header("date", "Mon, 07 Nov 1994 00:00:00 GMT"))
            .expect("valid");
        assert_eq!(text.matches("ate: ").count(), 1, "{text}");
        assert!(text.contains("date: Mon, 07 Nov 1994"), "{text}");
        let text = head(&HttpResponse::new(599)).expect("valid");
        assert!(text.starts_with("HTTP/1.1 599 \r\n"), "{text}");
        let text = head(&HttpResponse::new(204)).expect("valid");
        assert!(!text.contains("Content-Length"), "{text}");
        let text = head(&HttpResponse::new(205)).expect("valid");
        assert!(text.contains("Content-Length: 0\r\n"), "{text}");
    }

    #[test]
    fn bad_statuses_headers_and_bodies_are_refused_by_name() {
        for status in [0, 99, 100, 101, 199, 600, u16::MAX] {
            let e = head(&HttpResponse::new(status)).expect_err("bad status");
            assert!(e.to_string().contains(&status.to_string()), "{e}");
        }
        let e = head(&HttpResponse::new(204).body("x")).expect_err("no body");
        assert!(e.to_string().contains("has no body"), "{e}");
        let e = head(&HttpResponse::new(200).header("X-Note", "a\r\nInjected: 1"))
            .expect_err("line break");
        assert!(e.to_string().contains("X-Note"), "{e}");
        let e = head(&HttpResponse::new(200).header("Bad Name", "v")).expect_err("bad name");
        assert!(e.to_string().contains("Bad Name"), "{e}");
        for name in ["Content-Length", "connection", "Transfer-Encoding"] {
            let e = head(&HttpResponse::new(200).header(name, "1")).expect_err("framing");
            assert!(e.to_string().contains(name), "{e}");
        }
    }

    #[test]
    fn debug_hides_secret_headers_and_the_body() {
        let text = format!(
            "{:?}",
            HttpResponse::new(200)
                .header("Set-Cookie", "sid=Zq9xWv7y")
                .body("BODYSECRET")
        );
        assert!(!text.contains("Zq9xWv7y"), "{text}");
        assert!(!text.contains("BODYSECRET"), "{text}");
    }
}
