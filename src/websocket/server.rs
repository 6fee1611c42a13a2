//! The server's ways into a WebSocket: [`WebSocket::accept`] over any
//! stream, [`WebSocket::accept_with`] with the request in hand, and
//! [`WebSocket::accept_or_respond`], which answers plain HTTP beside the
//! upgrade; each bounded by the upgrade timeout over a [`WsTransport`],
//! and closing the connection cleanly after an HTTP answer.

use std::io::{Read, Write};

use super::accept::{Decide, Decision, Served, server};
use super::handshake::ws_error;
use super::options::WebSocketOptions;
use super::request::{Rejection, UpgradeRequest, UpgradeResponse};
use super::respond::{Accepted, Answer, close_after_answer};
use super::stream::WsTransport;
use super::{Hooks, WebSocket, deadline_after, timeout_as, transport_hooks};
use crate::error::{Phase, Result};

impl<S: Read + Write> WebSocket<S> {
    /// The server side of the upgrade over any accepted stream, accepting
    /// every valid request: picks the client's first subprotocol that
    /// `options.protocols` has, negotiates permessage-deflate, answers 101.
    /// A bad request gets the status RFC 6455 asks for (400, 405, 426 with
    /// `Sec-WebSocket-Version: 13`, 431) and is an error here, of kind
    /// [`Upgrade`](crate::WebSocketErrorKind::Upgrade); an `Origin` not in
    /// [`allowed_origins`](WebSocketOptions::allowed_origins) gets 403 (kind
    /// [`Refused`](crate::WebSocketErrorKind::Refused)).
    ///
    /// Over a stream of unknown kind, set its timeouts yourself (each
    /// bounds one read or write); `ping_interval` and the close timeout need
    /// a transport with timeouts. [`accept_with`](Self::accept_with) over a
    /// [`WsTransport`] has neither limit.
    pub fn accept(mut stream: S, options: &WebSocketOptions) -> Result<WebSocket<S>> {
        options.check_limits()?;
        options.compression.validate()?;
        let upgraded = server(&mut stream, options, None, false, &mut |_| {
            Decision::Upgrade(UpgradeResponse::new())
        })?
        .upgraded()?;
        let mut options = options.clone();
        options.ping_interval = None;
        Ok(WebSocket::open(
            stream,
            upgraded,
            &options,
            false,
            Hooks::none(),
        ))
    }
}

impl<S: WsTransport> WebSocket<S> {
    /// The server side of the upgrade with the request in hand: checks it
    /// as [`accept`](Self::accept) does, then calls `decide` with the
    /// [`UpgradeRequest`] (method, path, query, every header, Origin, the
    /// offered subprotocols and extensions, the peer's address), which
    /// returns `Ok(`[`UpgradeResponse`]`)` to accept (choosing the
    /// subprotocol, adding headers such as `Set-Cookie`) or
    /// `Err(`[`Rejection`]`)` to refuse with a status, headers (such as
    /// `WWW-Authenticate`) and a short body. A refusal is
    /// [`Error::WebSocket`](crate::Error::WebSocket) of kind
    /// [`Refused`](crate::WebSocketErrorKind::Refused) here, after it was
    /// sent (as is an `Origin` not in
    /// [`allowed_origins`](WebSocketOptions::allowed_origins)), while a bad
    /// request is of kind [`Upgrade`](crate::WebSocketErrorKind::Upgrade).
    /// A request that is not an upgrade gets 426 before `decide` runs: to
    /// answer it (a `/healthz` beside the WebSocket), use
    /// [`accept_or_respond`](Self::accept_or_respond), whose refusals are
    /// no errors at all.
    ///
    /// The whole upgrade, reading the request included, is bounded by
    /// [`upgrade_timeout`](WebSocketOptions::upgrade_timeout) (a timeout is
    /// [`Phase::Upgrade`]); the stream's own timeouts are put back after.
    /// `ping_interval` and the close timeout apply, and the WebSocket can
    /// be [`split`](Self::split). After a refusal, the connection is closed
    /// (TLS `close_notify`, then TCP).
    ///
    /// ```no_run
    /// use securenet::{Rejection, SecureListener, UpgradeResponse, WebSocket, WebSocketOptions};
    ///
    /// # fn main() -> securenet::Result<()> {
    /// # let ctx = securenet::SecurityContext::empty();
    /// let listener = SecureListener::bind("0.0.0.0", 8443, &ctx)?;
    /// let (stream, _) = listener.accept()?;
    /// let options = WebSocketOptions::new().allowed_origins(&["https://app.example.com"]);
    /// let ws = WebSocket::accept_with(stream, &options, |request| {
    ///     if request.path() != "/chat" {
    ///         return Err(Rejection::new(404).body("no such endpoint"));
    ///     }
    ///     match request.header("authorization") {
    ///         Some("Bearer s3cret") => Ok(UpgradeResponse::new().header("Set-Cookie", "seen=1")),
    ///         _ => Err(Rejection::new(401).header("WWW-Authenticate", "Bearer")),
    ///     }
    /// })?;
    /// # Ok(()) }
    /// ```
    pub fn accept_with(
        stream: S,
        options: &WebSocketOptions,
        mut decide: impl FnMut(&UpgradeRequest) -> std::result::Result<UpgradeResponse, Rejection>,
    ) -> Result<WebSocket<S>> {
        let mut decision = |request: &UpgradeRequest| match decide(request) {
            Ok(response) => Decision::Upgrade(response),
            Err(rejection) => Decision::Refuse(rejection),
        };
        match Self::serve_request(stream, options, false, &mut decision)? {
            Accepted::WebSocket(ws) => Ok(ws),
            Accepted::Answered(status) => {
                Err(ws_error(format!("answered {status} instead of upgrading")))
            }
        }
    }

    /// The server side of a port that serves WebSockets and plain HTTP
    /// beside them: a load balancer's `GET /healthz`, a page, a redirect.
    /// `decide` sees every request, upgrade or not, as an
    /// [`UpgradeRequest`] (method, path, query, every header, the peer's
    /// address; [`is_upgrade`](UpgradeRequest::is_upgrade) tells them
    /// apart), and returns an [`Answer`]: [`Answer::Upgrade`] to accept an
    /// upgrade as [`accept_with`](Self::accept_with) does, or
    /// [`Answer::Respond`] with an [`HttpResponse`](crate::HttpResponse)
    /// (status, headers, body), sent with a `Date` (unless it has one), its
    /// `Content-Length` and `Connection: close`; the connection is then closed (TLS
    /// `close_notify`, then TCP, after the client's last bytes). One
    /// request per connection: no keep-alive.
    ///
    /// This is Go's `net/http` handler that calls gorilla's
    /// `Upgrader.Upgrade` for `websocket.IsWebSocketUpgrade(r)` and writes
    /// a response otherwise, and Node's `http` server whose `'request'`
    /// event answers plain requests while `'upgrade'` hands the socket to
    /// `ws`'s `handleUpgrade`. As there, an answer the callback chose,
    /// refusals of upgrades (401, 403, 404) included, is no error:
    /// `Ok(`[`Accepted::Answered`]`(status))`, so under
    /// [`SecureListener::serve`](crate::SecureListener::serve) it never
    /// reaches [`on_client_error`](crate::BindOptions::on_client_error).
    ///
    /// Upgrade requests (those with `Upgrade: websocket`) are checked
    /// before `decide` sees them, as by `accept_with`: a malformed one gets
    /// 400, 405, 426 or 431 and is an error of kind
    /// [`Upgrade`](crate::WebSocketErrorKind::Upgrade); an `Origin` not in
    /// [`allowed_origins`](WebSocketOptions::allowed_origins) gets 403 and
    /// is of kind [`Refused`](crate::WebSocketErrorKind::Refused). Plain
    /// requests go to `decide` as they are (any method, HTTP/1.0 too; an
    /// HTTP/1.1 request without `Host` gets 400); their body is not read.
    /// A response that cannot be sent (a status outside 200-599, a header
    /// name or value that is not valid HTTP, `Content-Length` set by hand)
    /// gets 500 and is [`Error::InvalidInput`](crate::Error::InvalidInput)
    /// naming it. The whole exchange is bounded by
    /// [`upgrade_timeout`](WebSocketOptions::upgrade_timeout).
    ///
    /// ```
    /// use std::io::{Read, Write};
    /// use std::net::{TcpListener, TcpStream};
    /// use std::time::Duration;
    /// use securenet::{Accepted, Answer, HttpResponse, Message, UpgradeResponse, WebSocket,
    ///                 WebSocketOptions};
    ///
    /// # fn main() -> Result<(), Box<dyn std::error::Error>> {
    /// // One route table for every request, upgrade or not.
    /// fn route(request: &securenet::UpgradeRequest) -> Answer {
    ///     match (request.path(), request.is_upgrade()) {
    ///         ("/chat", true) => Answer::Upgrade(UpgradeResponse::new()),
    ///         ("/healthz", _) => HttpResponse::new(200)
    ///             .header("Content-Type", "text/plain")
    ///             .body("ok\n")
    ///             .into(),
    ///         _ => HttpResponse::new(404).body("no such page\n").into(),
    ///     }
    /// }
    ///
    /// // A SecureListener's streams (wss://) are served the same way.
    /// let listener = TcpListener::bind("127.0.0.1:0")?;
    /// let port = listener.local_addr()?.port();
    /// let server = std::thread::spawn(move || -> securenet::Result<Vec<u16>> {
    ///     let mut answered = Vec::new();
    ///     for stream in listener.incoming().take(2) {
    ///         let options = WebSocketOptions::new();
    ///         match WebSocket::accept_or_respond(stream?, &options, route)? {
    ///             Accepted::WebSocket(mut ws) => {
    ///                 let message = ws.read()?;
    ///                 ws.send_text(&format!("echo: {message:?}"))?;
    ///                 ws.close(None)?;
    ///             }
    ///             Accepted::Answered(status) => answered.push(status),
    ///         }
    ///     }
    ///     Ok(answered)
    /// });
    ///
    /// // A health check: plain HTTP on the WebSocket's port.
    /// let mut tcp = TcpStream::connect(("127.0.0.1", port))?;
    /// tcp.set_read_timeout(Some(Duration::from_secs(10)))?;
    /// tcp.write_all(b"GET /healthz HTTP/1.1\r\nHost: localhost\r\n\r\n")?;
    /// let mut response = String::new();
    /// tcp.read_to_string(&mut response)?;
    /// assert!(response.starts_with("HTTP/1.1 200 OK\r\n"));
    /// assert!(response.ends_with("Content-Length: 3\r\nConnection: close\r\n\r\nok\n"));
    ///
    /// // A WebSocket on the same port.
    /// let mut ws = WebSocket::connect(&format!("ws://127.0.0.1:{port}/chat"))?;
    /// ws.set_read_timeout(Some(Duration::from_secs(10)))?;
    /// ws.send_text("hi")?;
    /// assert!(matches!(ws.read()?, Message::Text(t) if t.starts_with("echo")));
    /// assert_eq!(server.join().expect("server thread")?, [200]);
    /// # Ok(()) }
    /// ```
    pub fn accept_or_respond(
        stream: S,
        options: &WebSocketOptions,
        mut decide: impl FnMut(&UpgradeRequest) -> Answer,
    ) -> Result<Accepted<S>> {
        Self::serve_request(
            stream,
            options,
            true,
            &mut |request| match decide(request) {
                Answer::Upgrade(response) => Decision::Upgrade(response),
                Answer::Respond(response) => Decision::Respond(response),
            },
        )
    }

    /// Serves one request within the upgrade timeout; after an HTTP
    /// answer, closes the connection.
    fn serve_request(
        mut stream: S,
        options: &WebSocketOptions,
        plain_allowed: bool,
        decide: Decide<'_>,
    ) -> Result<Accepted<S>> {
        options.check_limits()?;
        options.compression.validate()?;
        let hooks = transport_hooks::<S>();
        let peer = stream.peer();
        let limit = options.upgrade_timeout;
        let bases = stream.timeouts();
        let deadline = deadline_after(Some(limit));
        let served = {
            let mut bounded = hooks.bound(&mut stream, bases, deadline, false);
            server(&mut bounded, options, peer, plain_allowed, decide)
                .map_err(|e| timeout_as(e, Phase::Upgrade, Some(limit)))?
        };
        match served {
            Served::Upgraded(upgraded) => {
                stream.websocket_closes_on_shutdown();
                let mut ws = WebSocket::open(stream, upgraded, options, false, hooks);
                ws.read_timeout = bases.0;
                ws.write_timeout = bases.1;
                Ok(Accepted::WebSocket(ws))
            }
            Served::Answered(status, result) => {
                close_after_answer(&mut stream, deadline);
                result.map_err(|e| timeout_as(e, Phase::Upgrade, Some(limit)))?;
                Ok(Accepted::Answered(status))
            }
        }
    }
}
