//! The server side of the upgrade (RFC 6455 section 4.2): reads the
//! client's request within a size limit (and, over a transport with
//! timeouts, the upgrade timeout), refuses a bad one with the status the
//! RFC asks for, shows a good one to the server's callback, and answers
//! `101 Switching Protocols` or the callback's refusal.

use std::io::{Read, Write};
use std::net::SocketAddr;

use base64ct::{Base64, Encoding};

use super::handshake::{Upgraded, has_token, header, header_list, read_head, ws_error};
use super::options::{ShownProtocols, WebSocketOptions, shown_protocol};
use super::request::{Rejection, UpgradeRequest, UpgradeResponse, check_headers, refusal};
use super::stream::WsTransport;
use super::{Hooks, WebSocket, deadline_after, negotiate, timeout_as, transport_hooks};
use crate::error::{Error, Phase, Result, WebSocketErrorKind};

/// The most headers a request may have.
const MAX_HEADERS: usize = 64;

/// The server's callback: accept (how) or refuse (with what).
type Decide<'a> =
    &'a mut dyn FnMut(&UpgradeRequest) -> std::result::Result<UpgradeResponse, Rejection>;

/// Writes a refusal and says why, for the server's error.
fn refuse<S: Write>(
    stream: &mut S,
    status: u16,
    headers: &[(String, String)],
    reason: &str,
) -> Error {
    let _ = stream.write_all(refusal(status, headers, &format!("{reason}\n")).as_bytes());
    let _ = stream.flush();
    ws_error(format!("refused the client's upgrade ({status}): {reason}"))
}

fn one(name: &str, value: &str) -> Vec<(String, String)> {
    vec![(name.to_owned(), value.to_owned())]
}

/// Reads and checks the request, asks `decide`, answers.
fn server<S: Read + Write>(
    stream: &mut S,
    options: &WebSocketOptions,
    peer_addr: Option<SocketAddr>,
    decide: Decide<'_>,
) -> Result<Upgraded> {
    let (head, leftover) = match read_head(stream, "client")? {
        Ok(read) => read,
        Err(limit) => {
            return Err(refuse(
                stream,
                431,
                &[],
                &format!("the request's headers exceed {limit} bytes"),
            ));
        }
    };
    let mut header_buf = [httparse::EMPTY_HEADER; MAX_HEADERS];
    let mut request = httparse::Request::new(&mut header_buf);
    match request.parse(&head) {
        Ok(httparse::Status::Complete(_)) => {}
        Err(httparse::Error::TooManyHeaders) => {
            return Err(refuse(
                stream,
                431,
                &[],
                &format!("more than {MAX_HEADERS} headers"),
            ));
        }
        _ => return Err(refuse(stream, 400, &[], "not an HTTP/1.1 request")),
    }
    let headers = request.headers;
    if request.method != Some("GET") {
        return Err(refuse(
            stream,
            405,
            &one("Allow", "GET"),
            "a WebSocket upgrade must be a GET",
        ));
    }
    if request.version != Some(1) {
        return Err(refuse(
            stream,
            400,
            &[],
            "a WebSocket upgrade needs HTTP/1.1",
        ));
    }
    if header(headers, "host").is_none() {
        return Err(refuse(stream, 400, &[], "the request has no Host header"));
    }
    if !has_token(header(headers, "upgrade"), "websocket")
        || !has_token(header(headers, "connection"), "upgrade")
    {
        return Err(refuse(
            stream,
            426,
            &one("Upgrade", "websocket"),
            "this is a WebSocket endpoint: send Upgrade: websocket and Connection: Upgrade",
        ));
    }
    if header(headers, "sec-websocket-version") != Some("13") {
        return Err(refuse(
            stream,
            426,
            &one("Sec-WebSocket-Version", "13"),
            "only Sec-WebSocket-Version 13 is spoken",
        ));
    }
    let key = header(headers, "sec-websocket-key")
        .filter(|k| Base64::decode_vec(k).is_ok_and(|b| b.len() == 16));
    let Some(key) = key else {
        return Err(refuse(
            stream,
            400,
            &[],
            "Sec-WebSocket-Key must be the base64 of 16 bytes",
        ));
    };
    let origin = header(headers, "origin");
    if let Some(origin) = origin {
        let allowed = &options.allowed_origins;
        if !allowed.is_empty() && !allowed.iter().any(|a| a.eq_ignore_ascii_case(origin)) {
            let reason =
                format!("the origin {origin} is not allowed (WebSocketOptions::allowed_origins)");
            let _ = refuse(stream, 403, &[], &reason);
            return Err(Error::websocket(
                WebSocketErrorKind::Refused,
                format!("answered 403: {reason}"),
                None,
            ));
        }
    }
    let target = request.path.unwrap_or("/");
    let (path, query) = match target.split_once('?') {
        Some((p, q)) => (p, Some(q.to_owned())),
        None => (target, None),
    };
    let list = |name| {
        header_list(headers, name)
            .unwrap_or_default()
            .split(',')
            .map(str::trim)
            .filter(|s| !s.is_empty())
            .map(str::to_owned)
            .collect::<Vec<_>>()
    };
    let offered_extensions = header_list(headers, "sec-websocket-extensions");
    let req = UpgradeRequest {
        method: "GET".to_owned(),
        path: path.to_owned(),
        query,
        headers: headers
            .iter()
            .map(|h| {
                (
                    h.name.to_owned(),
                    String::from_utf8_lossy(h.value).trim().to_owned(),
                )
            })
            .collect(),
        protocols: list("sec-websocket-protocol"),
        extensions: split_offers(offered_extensions.as_deref()),
        peer_addr,
    };
    let response = match decide(&req) {
        Ok(r) => r,
        Err(rejection) => return Err(send_rejection(stream, rejection)),
    };
    let protocol = match &response.protocol {
        Some(p) if !req.protocols.contains(p) => {
            let _ = refuse(
                stream,
                500,
                &[],
                "the server chose a subprotocol not offered",
            );
            return Err(Error::websocket(
                WebSocketErrorKind::Local,
                format!(
                    "accept_with chose the subprotocol '{}', which the client did not offer \
                     ({:?}): choose one of UpgradeRequest::protocols",
                    shown_protocol(p),
                    ShownProtocols(&req.protocols)
                ),
                None,
            ));
        }
        Some(p) => Some(p.clone()),
        None => req
            .protocols
            .iter()
            .find(|p| options.protocols.contains(p))
            .cloned(),
    };
    if let Err(e) = check_headers(&response.headers) {
        let _ = refuse(
            stream,
            500,
            &[],
            "the server's response headers are invalid",
        );
        return Err(e);
    }
    let extension = negotiate::server_accept(&options.compression, offered_extensions.as_deref());
    let accept = tungstenite::handshake::derive_accept_key(key.as_bytes());
    let mut out = format!(
        "HTTP/1.1 101 Switching Protocols\r\nUpgrade: websocket\r\nConnection: Upgrade\r\n\
         Sec-WebSocket-Accept: {accept}\r\n"
    );
    if let Some(p) = &protocol {
        out.push_str(&format!("Sec-WebSocket-Protocol: {p}\r\n"));
    }
    if let Some((value, _)) = &extension {
        out.push_str(&format!("Sec-WebSocket-Extensions: {value}\r\n"));
    }
    for (name, value) in &response.headers {
        out.push_str(&format!("{name}: {value}\r\n"));
    }
    out.push_str("\r\n");
    stream.write_all(out.as_bytes()).map_err(Error::from)?;
    stream.flush().map_err(Error::from)?;
    Ok(Upgraded {
        protocol,
        extensions: extension.as_ref().map(|(v, _)| v.clone()),
        deflate: extension.map(|(_, a)| a),
        leftover,
    })
}

/// Extension offers, split at commas outside quoted strings.
fn split_offers(list: Option<&str>) -> Vec<String> {
    let mut out = Vec::new();
    let mut current = String::new();
    let mut quoted = false;
    for c in list.unwrap_or_default().chars() {
        match c {
            '"' => {
                quoted = !quoted;
                current.push(c);
            }
            ',' if !quoted => out.push(std::mem::take(&mut current)),
            _ => current.push(c),
        }
    }
    out.push(current);
    out.into_iter()
        .map(|s| s.trim().to_owned())
        .filter(|s| !s.is_empty())
        .collect()
}

fn send_rejection<S: Write>(stream: &mut S, rejection: Rejection) -> Error {
    let valid = (400..=599).contains(&rejection.status);
    if !valid || check_headers(&rejection.headers).is_err() {
        let _ = refuse(stream, 500, &[], "the server's refusal is invalid");
        return Error::websocket(
            WebSocketErrorKind::Local,
            format!(
                "accept_with refused with status {} or headers {:?} that cannot be sent: use a \
                 status from 400 to 599 and valid headers other than the upgrade's own",
                rejection.status, rejection.headers
            ),
            None,
        );
    }
    let _ =
        stream.write_all(refusal(rejection.status, &rejection.headers, &rejection.body).as_bytes());
    let _ = stream.flush();
    Error::websocket(
        WebSocketErrorKind::Refused,
        format!(
            "accept_with's callback answered {} (a Rejection)",
            rejection.status
        ),
        None,
    )
}

impl<S: Read + Write> WebSocket<S> {
    /// The server side of the upgrade over any accepted stream, accepting
    /// every valid request: picks the client's first subprotocol that
    /// `options.protocols` has, negotiates permessage-deflate, answers 101.
    /// A bad request gets the status RFC 6455 asks for (400, 405, 426 with
    /// `Sec-WebSocket-Version: 13`, 431) and is an error here; an `Origin`
    /// not in [`allowed_origins`](WebSocketOptions::allowed_origins) gets 403.
    ///
    /// Over a stream of unknown kind, set its timeouts yourself (each
    /// bounds one read or write); `ping_interval` and the close timeout need
    /// a transport with timeouts. [`accept_with`](Self::accept_with) over a
    /// [`WsTransport`] has neither limit.
    pub fn accept(mut stream: S, options: &WebSocketOptions) -> Result<WebSocket<S>> {
        options.check_limits()?;
        options.compression.validate()?;
        let upgraded = server(&mut stream, options, None, &mut |_| {
            Ok(UpgradeResponse::new())
        })?;
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
    /// [`Error::WebSocket`] of kind [`WebSocketErrorKind::Refused`] here,
    /// after it was sent (as is an `Origin` not in
    /// [`allowed_origins`](WebSocketOptions::allowed_origins)), while a bad
    /// request is of kind [`WebSocketErrorKind::Upgrade`].
    ///
    /// The whole upgrade, reading the request included, is bounded by
    /// [`upgrade_timeout`](WebSocketOptions::upgrade_timeout) (a timeout is
    /// [`Phase::Upgrade`]); the stream's own timeouts are put back after.
    /// `ping_interval` and the close timeout apply, and the WebSocket can
    /// be [`split`](Self::split).
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
        mut stream: S,
        options: &WebSocketOptions,
        mut decide: impl FnMut(&UpgradeRequest) -> std::result::Result<UpgradeResponse, Rejection>,
    ) -> Result<WebSocket<S>> {
        options.check_limits()?;
        options.compression.validate()?;
        let hooks = transport_hooks::<S>();
        let peer = stream.peer();
        let limit = options.upgrade_timeout;
        let bases = stream.timeouts();
        let upgraded = {
            let mut bounded = hooks.bound(&mut stream, bases, deadline_after(Some(limit)), false);
            server(&mut bounded, options, peer, &mut decide)
                .map_err(|e| timeout_as(e, Phase::Upgrade, Some(limit)))?
        };
        let mut ws = WebSocket::open(stream, upgraded, options, false, hooks);
        ws.read_timeout = bases.0;
        ws.write_timeout = bases.1;
        Ok(ws)
    }
}
