//! The HTTP/1.1 upgrade (RFC 6455 section 4): the client's request and its
//! checks of the response, and the HTTP reading both sides share (the
//! server's side is in `accept.rs`).

use std::io::{self, Read, Write};

use base64ct::{Base64, Encoding};

use super::negotiate::{self, Agreed};
use super::options::WebSocketOptions;
use super::url::WsUrl;
use crate::error::{Error, Result, WebSocketErrorKind};

/// The most header bytes accepted from the peer.
const MAX_HEAD: usize = 16 * 1024;
/// The most body bytes kept from a refusal.
const MAX_BODY: usize = 64 * 1024;

/// What the upgrade settled.
pub(crate) struct Upgraded {
    pub(crate) protocol: Option<String>,
    pub(crate) extensions: Option<String>,
    pub(crate) deflate: Option<Agreed>,
    /// Bytes read past the head: the first frames.
    pub(crate) leftover: Vec<u8>,
}

pub(crate) fn ws_error(reason: impl Into<String>) -> Error {
    Error::websocket(WebSocketErrorKind::Upgrade, reason, None)
}

/// An HTTP head and the bytes read after it.
pub(crate) type Head = (Vec<u8>, Vec<u8>);

/// Reads up to the blank line ending an HTTP head: the head and the bytes
/// after it, or `Err(limit)` when the head is over `limit` bytes.
pub(crate) fn read_head<R: Read>(r: &mut R, who: &str) -> Result<std::result::Result<Head, usize>> {
    let mut buf = Vec::with_capacity(1024);
    let mut chunk = [0u8; 4096];
    loop {
        if let Some(i) = buf.windows(4).position(|w| w == b"\r\n\r\n") {
            let rest = buf.split_off(i + 4);
            return Ok(Ok((buf, rest)));
        }
        if buf.len() > MAX_HEAD {
            return Ok(Err(MAX_HEAD));
        }
        match r.read(&mut chunk) {
            Ok(0) => {
                return Err(ws_error(if buf.is_empty() {
                    format!("the {who} closed the connection without answering the upgrade")
                } else {
                    format!("the {who} closed the connection in the middle of its HTTP headers")
                }));
            }
            Ok(n) => buf.extend_from_slice(&chunk[..n]),
            Err(e) if e.kind() == io::ErrorKind::Interrupted => {}
            Err(e) => return Err(super::frames::read_error(e)),
        }
    }
}

pub(crate) fn header<'a>(headers: &'a [httparse::Header<'a>], name: &str) -> Option<&'a str> {
    headers
        .iter()
        .find(|h| h.name.eq_ignore_ascii_case(name))
        .and_then(|h| std::str::from_utf8(h.value).ok())
        .map(str::trim)
}

/// All values of a header, comma-joined (a list header may repeat).
pub(crate) fn header_list(headers: &[httparse::Header<'_>], name: &str) -> Option<String> {
    let values: Vec<&str> = headers
        .iter()
        .filter(|h| h.name.eq_ignore_ascii_case(name))
        .filter_map(|h| std::str::from_utf8(h.value).ok())
        .collect();
    (!values.is_empty()).then(|| values.join(", "))
}

pub(crate) fn has_token(value: Option<&str>, token: &str) -> bool {
    value.is_some_and(|v| v.split(',').any(|t| t.trim().eq_ignore_ascii_case(token)))
}

/// The client's side: sends the request, checks the response.
pub(crate) fn client<S: Read + Write>(
    stream: &mut S,
    url: &WsUrl,
    options: &WebSocketOptions,
    headers: &[(String, String)],
) -> Result<Upgraded> {
    let key = super::key::new_key()?;
    let mut req = format!(
        "GET {} HTTP/1.1\r\nHost: {}\r\nUpgrade: websocket\r\nConnection: Upgrade\r\n\
         Sec-WebSocket-Key: {key}\r\nSec-WebSocket-Version: 13\r\n",
        url.target, url.host_header
    );
    if !options.protocols.is_empty() {
        req.push_str(&format!(
            "Sec-WebSocket-Protocol: {}\r\n",
            options.protocols.join(", ")
        ));
    }
    if let Some(offer) = negotiate::client_offer(&options.compression) {
        req.push_str(&format!("Sec-WebSocket-Extensions: {offer}\r\n"));
    }
    let user_auth = headers
        .iter()
        .any(|(n, _)| n.eq_ignore_ascii_case("authorization"));
    if let (Some((user, pass)), false) = (&url.credentials, user_auth) {
        let token = Base64::encode_string(format!("{user}:{pass}").as_bytes());
        req.push_str(&format!("Authorization: Basic {token}\r\n"));
    }
    for (name, value) in headers {
        req.push_str(&format!("{name}: {value}\r\n"));
    }
    req.push_str("\r\n");
    stream.write_all(req.as_bytes()).map_err(Error::from)?;
    stream.flush().map_err(Error::from)?;

    let (head, mut leftover) = read_head(stream, "server")?
        .map_err(|limit| ws_error(format!("the server's HTTP headers exceed {limit} bytes")))?;
    let mut header_buf = [httparse::EMPTY_HEADER; 64];
    let mut response = httparse::Response::new(&mut header_buf);
    match response.parse(&head) {
        Ok(httparse::Status::Complete(_)) => {}
        Ok(httparse::Status::Partial) => {
            return Err(ws_error("the server's HTTP response is incomplete"));
        }
        Err(e) => {
            return Err(ws_error(format!(
                "the server did not answer with HTTP ({e}): is it a WebSocket server?"
            )));
        }
    }
    let status = response.code.unwrap_or(0);
    let headers = response.headers;
    if status != 101 {
        let body = read_body(stream, headers, &mut leftover);
        return Err(Error::HttpStatus {
            status,
            reason: response.reason.unwrap_or("").to_owned(),
            body,
        });
    }
    if !header(headers, "upgrade").is_some_and(|u| u.eq_ignore_ascii_case("websocket")) {
        return Err(ws_error(
            "the server's 101 response lacks 'Upgrade: websocket'",
        ));
    }
    if !has_token(header(headers, "connection"), "upgrade") {
        return Err(ws_error(
            "the server's 101 response lacks 'Connection: Upgrade'",
        ));
    }
    let expected = super::key::accept_key(key.as_bytes());
    match header(headers, "sec-websocket-accept") {
        Some(accept) if accept == expected => {}
        Some(accept) => {
            return Err(ws_error(format!(
                "the server's Sec-WebSocket-Accept '{accept}' is wrong (expected '{expected}')"
            )));
        }
        None => {
            return Err(ws_error(
                "the server's 101 response lacks Sec-WebSocket-Accept",
            ));
        }
    }
    let protocol = header(headers, "sec-websocket-protocol").map(str::to_owned);
    if let Some(p) = &protocol {
        if !options.protocols.iter().any(|o| o == p) {
            return Err(ws_error(format!(
                "the server chose the subprotocol '{p}', which was not offered"
            )));
        }
    }
    let extensions = header_list(headers, "sec-websocket-extensions");
    let agreed = negotiate::client_accept(&options.compression, extensions.as_deref())?;
    Ok(Upgraded {
        protocol,
        extensions: extensions.filter(|e| !e.is_empty()),
        deflate: agreed,
        leftover,
    })
}

/// The body of a refusal: up to `Content-Length` (or the end), capped.
fn read_body<R: Read>(
    r: &mut R,
    headers: &[httparse::Header<'_>],
    leftover: &mut Vec<u8>,
) -> Vec<u8> {
    let length = header(headers, "content-length").and_then(|l| l.parse::<usize>().ok());
    let want = length.unwrap_or(MAX_BODY).min(MAX_BODY);
    let mut body = std::mem::take(leftover);
    let mut chunk = [0u8; 4096];
    while body.len() < want {
        match r.read(&mut chunk) {
            Ok(0) | Err(_) => break,
            Ok(n) => body.extend_from_slice(&chunk[..n]),
        }
    }
    body.truncate(want);
    body
}
