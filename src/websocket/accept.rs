//! The server side of the upgrade (RFC 6455 section 4.2): reads the
//! client's request within a size limit, refuses a bad one with the status
//! the RFC asks for, shows a good one (or, for `accept_or_respond`, a plain
//! HTTP request) to the server's callback, and answers `101 Switching
//! Protocols`, the callback's refusal or its plain response. The public
//! ways in (`accept`, `accept_with`, `accept_or_respond`) are in
//! `server.rs`.

use std::io::{Read, Write};
use std::net::SocketAddr;

use base64ct::{Base64, Encoding};

use super::handshake::{Upgraded, has_token, header, header_list, read_head, ws_error};
use super::negotiate;
use super::options::{ShownProtocols, WebSocketOptions, shown_protocol};
use super::request::{Rejection, UpgradeRequest, UpgradeResponse, check_headers, refusal};
use super::respond::{HttpResponse, response_head, send_response};
use crate::error::{Error, Result, WebSocketErrorKind};

/// The most headers a request may have.
const MAX_HEADERS: usize = 64;

/// What the server's callback decided about a request.
pub(crate) enum Decision {
    /// Upgrade (a request that is not an upgrade gets 426).
    Upgrade(UpgradeResponse),
    /// Refuse the upgrade (`accept_with`).
    Refuse(Rejection),
    /// Answer with a plain HTTP response (`accept_or_respond`).
    Respond(HttpResponse),
}

/// The server's callback.
pub(crate) type Decide<'a> = &'a mut dyn FnMut(&UpgradeRequest) -> Decision;

/// How the server's side of one request ended, when the client got an
/// answer.
pub(crate) enum Served {
    /// `101` was sent: the WebSocket is open.
    Upgraded(Upgraded),
    /// An HTTP answer with this status was sent (or sending it failed):
    /// the connection is to be closed, and the result is what the caller
    /// returns (a refusal's error, or `Ok` for the callback's response).
    Answered(u16, Result<()>),
}

impl Served {
    /// What `accept` and `accept_with`, which only upgrade, return for it.
    pub(crate) fn upgraded(self) -> Result<Upgraded> {
        match self {
            Served::Upgraded(upgraded) => Ok(upgraded),
            Served::Answered(status, result) => Err(result
                .err()
                .unwrap_or_else(|| ws_error(format!("answered {status} instead of upgrading")))),
        }
    }
}

/// Writes an answer that turns the request down and says why, for the
/// server's error (of `kind`).
fn answer<S: Write>(
    stream: &mut S,
    status: u16,
    headers: &[(String, String)],
    reason: &str,
    kind: WebSocketErrorKind,
) -> Served {
    let _ = stream.write_all(refusal(status, headers, &format!("{reason}\n")).as_bytes());
    let _ = stream.flush();
    let reason = match kind {
        WebSocketErrorKind::Refused => format!("answered {status}: {reason}"),
        _ => format!("refused the client's upgrade ({status}): {reason}"),
    };
    let err = Error::websocket(kind, reason, None);
    Served::Answered(status, Err(err))
}

/// Refuses a request that is not a valid upgrade ([`WebSocketErrorKind::Upgrade`]).
fn refuse<S: Write>(
    stream: &mut S,
    status: u16,
    headers: &[(String, String)],
    reason: &str,
) -> Served {
    answer(stream, status, headers, reason, WebSocketErrorKind::Upgrade)
}

fn one(name: &str, value: &str) -> Vec<(String, String)> {
    vec![(name.to_owned(), value.to_owned())]
}

/// Why an upgrade cannot go on: the status, headers and reason of the
/// refusal.
type Unfit = (u16, Vec<(String, String)>, String);

/// The checks of a WebSocket upgrade request (RFC 6455 section 4.2.1), in
/// order: its `Sec-WebSocket-Key`, or the refusal.
fn check_upgrade(
    method: Option<&str>,
    version: Option<u8>,
    headers: &[httparse::Header<'_>],
) -> std::result::Result<String, Unfit> {
    let unfit = |status, headers, reason: &str| Err((status, headers, reason.to_owned()));
    if method != Some("GET") {
        return unfit(
            405,
            one("Allow", "GET"),
            "a WebSocket upgrade must be a GET",
        );
    }
    if version != Some(1) {
        return unfit(400, Vec::new(), "a WebSocket upgrade needs HTTP/1.1");
    }
    if header(headers, "host").is_none() {
        return unfit(400, Vec::new(), "the request has no Host header");
    }
    if !has_token(header(headers, "upgrade"), "websocket")
        || !has_token(header(headers, "connection"), "upgrade")
    {
        return unfit(
            426,
            one("Upgrade", "websocket"),
            "this is a WebSocket endpoint: send Upgrade: websocket and Connection: Upgrade",
        );
    }
    if header(headers, "sec-websocket-version") != Some("13") {
        return unfit(
            426,
            one("Sec-WebSocket-Version", "13"),
            "only Sec-WebSocket-Version 13 is spoken",
        );
    }
    match header(headers, "sec-websocket-key") {
        Some(k) if Base64::decode_vec(k).is_ok_and(|b| b.len() == 16) => Ok(k.to_owned()),
        _ => unfit(
            400,
            Vec::new(),
            "Sec-WebSocket-Key must be the base64 of 16 bytes",
        ),
    }
}

/// Reads and checks the request, asks `decide`, answers. With
/// `plain_allowed`, a request without `Upgrade: websocket` goes to `decide`
/// too; without it, it gets 426 first. `Err`: the client got no answer
/// (it went away, a timeout, a read failed).
pub(crate) fn server<S: Read + Write>(
    stream: &mut S,
    options: &WebSocketOptions,
    peer_addr: Option<SocketAddr>,
    plain_allowed: bool,
    decide: Decide<'_>,
) -> Result<Served> {
    let (head, leftover) = match read_head(stream, "client")? {
        Ok(read) => read,
        Err(limit) => {
            return Ok(refuse(
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
        // httparse also ends a head at a bare LF LF; the head read ends at
        // CRLF CRLF: anything between would be dropped unseen.
        Ok(httparse::Status::Complete(n)) if n == head.len() => {}
        Ok(httparse::Status::Complete(_)) => {
            return Ok(refuse(
                stream,
                400,
                &[],
                "the request's lines must end with CRLF (RFC 9112 section 2.2)",
            ));
        }
        Err(httparse::Error::TooManyHeaders) => {
            return Ok(refuse(
                stream,
                431,
                &[],
                &format!("more than {MAX_HEADERS} headers"),
            ));
        }
        _ => return Ok(refuse(stream, 400, &[], "not an HTTP/1.1 request")),
    }
    let headers = request.headers;
    let is_upgrade = !plain_allowed || has_token(header(headers, "upgrade"), "websocket");
    let key = if is_upgrade {
        match check_upgrade(request.method, request.version, headers) {
            Ok(key) => Some(key),
            Err((status, extra, reason)) => {
                return Ok(refuse(stream, status, &extra, &reason));
            }
        }
    } else {
        if request.version == Some(1) && header(headers, "host").is_none() {
            return Ok(refuse(
                stream,
                400,
                &[],
                "an HTTP/1.1 request needs a Host header",
            ));
        }
        None
    };
    let origin = header(headers, "origin");
    if let (Some(origin), true) = (origin, is_upgrade) {
        let allowed = &options.allowed_origins;
        if !allowed.is_empty() && !allowed.iter().any(|a| a.eq_ignore_ascii_case(origin)) {
            return Ok(answer(
                stream,
                403,
                &[],
                &format!("the origin {origin} is not allowed (WebSocketOptions::allowed_origins)"),
                WebSocketErrorKind::Refused,
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
        method: request.method.unwrap_or("GET").to_owned(),
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
        is_upgrade,
    };
    let response = match decide(&req) {
        Decision::Respond(response) => return Ok(respond(stream, &req, &response)),
        Decision::Refuse(rejection) => return Ok(send_rejection(stream, rejection)),
        Decision::Upgrade(response) => response,
    };
    let Some(key) = key else {
        // The callback upgrades a request that is not an upgrade: it gets
        // what `accept_with` answers it (405, 426...).
        let (status, extra, reason) = check_upgrade(request.method, request.version, headers)
            .err()
            .unwrap_or_else(|| {
                (
                    426,
                    one("Upgrade", "websocket"),
                    "not a WebSocket upgrade".to_owned(),
                )
            });
        return Ok(refuse(stream, status, &extra, &reason));
    };
    let protocol = match &response.protocol {
        Some(p) if !req.protocols.contains(p) => {
            let _ = refuse(
                stream,
                500,
                &[],
                "the server chose a subprotocol not offered",
            );
            return Ok(Served::Answered(
                500,
                Err(Error::websocket(
                    WebSocketErrorKind::Local,
                    format!(
                        "the server's callback chose the subprotocol '{}', which the client did \
                         not offer \
                         ({:?}): choose one of UpgradeRequest::protocols",
                        shown_protocol(p),
                        ShownProtocols(&req.protocols)
                    ),
                    None,
                )),
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
        return Ok(Served::Answered(500, Err(e)));
    }
    let extension = negotiate::server_accept(&options.compression, offered_extensions.as_deref());
    let accept = super::key::accept_key(key.as_bytes());
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
    Ok(Served::Upgraded(Upgraded {
        protocol,
        extensions: extension.as_ref().map(|(v, _)| v.clone()),
        deflate: extension.map(|(_, a)| a),
        leftover,
    }))
}

/// Sends the callback's plain response (its head only, in answer to
/// `HEAD`); one that cannot be sent gets 500 and is the error.
fn respond<S: Write>(stream: &mut S, req: &UpgradeRequest, response: &HttpResponse) -> Served {
    match response_head(response) {
        Ok(head) => {
            let body: &[u8] = if req.method == "HEAD" {
                &[]
            } else {
                &response.body
            };
            Served::Answered(response.status, send_response(stream, &head, body))
        }
        Err(e) => {
            let _ = refuse(stream, 500, &[], "the server's response is invalid");
            Served::Answered(500, Err(e))
        }
    }
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

fn send_rejection<S: Write>(stream: &mut S, rejection: Rejection) -> Served {
    let valid = (400..=599).contains(&rejection.status);
    if !valid || check_headers(&rejection.headers).is_err() {
        let _ = refuse(stream, 500, &[], "the server's refusal is invalid");
        let err = Error::websocket(
            WebSocketErrorKind::Local,
            format!(
                "accept_with refused with status {} or headers {:?} that cannot be sent: use a \
                 status from 400 to 599 and valid headers other than the upgrade's own",
                rejection.status,
                super::options::ShownHeaders(&rejection.headers)
            ),
            None,
        );
        return Served::Answered(500, Err(err));
    }
    let _ =
        stream.write_all(refusal(rejection.status, &rejection.headers, &rejection.body).as_bytes());
    let _ = stream.flush();
    let err = Error::websocket(
        WebSocketErrorKind::Refused,
        format!(
            "accept_with's callback answered {} (a Rejection)",
            rejection.status
        ),
        None,
    );
    Served::Answered(rejection.status, Err(err))
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::HttpResponse;

    /// A client's bytes in, the server's answer out.
    struct Mem {
        input: std::io::Cursor<Vec<u8>>,
        output: Vec<u8>,
    }

    impl Read for Mem {
        fn read(&mut self, buf: &mut [u8]) -> std::io::Result<usize> {
            self.input.read(buf)
        }
    }

    impl Write for Mem {
        fn write(&mut self, buf: &[u8]) -> std::io::Result<usize> {
            self.output.extend_from_slice(buf);
            Ok(buf.len())
        }

        fn flush(&mut self) -> std::io::Result<()> {
            Ok(())
        }
    }

    /// Serves `input` with a callback that echoes what it saw into its
    /// answer: the status answered, if any.
    fn serve(input: &[u8]) -> Option<u16> {
        let mut stream = Mem {
            input: std::io::Cursor::new(input.to_vec()),
            output: Vec::new(),
        };
        let served = server(
            &mut stream,
            &WebSocketOptions::new(),
            None,
            true,
            &mut |req| match (req.is_upgrade(), req.path().len() % 2) {
                (true, 0) => Decision::Upgrade(UpgradeResponse::new().header("X-Path", req.path())),
                _ => Decision::Respond(
                    HttpResponse::new(200 + req.path().len() as u16)
                        .header("X-Path", req.path())
                        .header(req.method(), req.query().unwrap_or_default())
                        .body(req.path()),
                ),
            },
        );
        match served {
            Ok(Served::Answered(status, _)) => Some(status),
            Ok(Served::Upgraded(_)) => Some(101),
            Err(_) => None,
        }
    }

    #[test]
    fn no_request_makes_the_server_panic() {
        let mut inputs: Vec<Vec<u8>> = [
            "GET / HTTP/1.1\r\nHost: x\r\n\r\n",
            "GET /\x7f\x01?a=\r\n HTTP/1.1\r\nHost: x\r\n\r\n",
            "HEAD /a HTTP/1.0\r\n\r\n",
            "OPTIONS * HTTP/1.0\r\n\r\n",
            "GET / HTTP/1.1\r\nHost: x\r\nUpgrade: websocket\r\n\r\n",
            "GET /abc HTTP/1.1\r\nHost: x\r\nUpgrade: websocket\r\nConnection: upgrade\r\n\
             Sec-WebSocket-Version: 13\r\nSec-WebSocket-Key: dGhlIHNhbXBsZSBub25jZQ==\r\n\r\n",
            "GET / HTTP/1.1\r\nHost: x\r\nUpgrade: h2c\r\nConnection: Upgrade\r\n\r\n",
            "GET / HTTP/2\r\n\r\n",
            "\r\n\r\n",
            "",
        ]
        .iter()
        .map(|s| s.as_bytes().to_vec())
        .collect();
        // And bytes of every kind, from a fixed seed.
        let mut seed = 0x2545_f491_4f6c_dd1d_u64;
        for n in 0..500 {
            let mut bytes = b"GET /".to_vec();
            for _ in 0..(n % 90) {
                seed ^= seed << 13;
                seed ^= seed >> 7;
                seed ^= seed << 17;
                let alphabet = b" :\r\n/?=aGET\x00\xff";
                bytes.push(alphabet[(seed % alphabet.len() as u64) as usize]);
            }
            bytes.extend_from_slice(b"\r\n\r\n");
            inputs.push(bytes);
        }
        for input in &inputs {
            serve(input);
        }
        assert_eq!(serve(inputs[0].as_slice()), Some(201));
        assert_eq!(serve(inputs[2].as_slice()), Some(202));
        assert_eq!(serve(inputs[4].as_slice()), Some(426));
        assert_eq!(serve(inputs[5].as_slice()), Some(101));
        assert_eq!(serve(inputs[6].as_slice()), Some(201));
        assert_eq!(serve(inputs[9].as_slice()), None);
    }
}
