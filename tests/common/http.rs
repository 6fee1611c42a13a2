//! Raw HTTP/1.1 exchanges for server tests: a request written by hand, the
//! whole answer read to the end, and the answer taken apart.

use std::io::{self, Read, Write};

/// A plain request for `path` with `extra` header lines (each ending in
/// CRLF).
pub fn get(path: &str, extra: &str) -> String {
    format!("GET {path} HTTP/1.1\r\nHost: localhost\r\n{extra}\r\n")
}

/// Writes `request`, then reads until the end: every byte, and how reading
/// ended (`Ok(())` for a clean end: EOF, or TLS `close_notify`).
pub fn exchange<S: Read + Write>(stream: &mut S, request: &[u8]) -> (Vec<u8>, io::Result<()>) {
    if let Err(e) = stream.write_all(request).and_then(|()| stream.flush()) {
        return (Vec::new(), Err(e));
    }
    let mut out = Vec::new();
    let mut buf = [0u8; 4096];
    loop {
        match stream.read(&mut buf) {
            Ok(0) => return (out, Ok(())),
            Ok(n) => out.extend_from_slice(&buf[..n]),
            Err(e) if e.kind() == io::ErrorKind::Interrupted => {}
            Err(e) => return (out, Err(e)),
        }
    }
}

/// An HTTP response taken apart.
#[derive(Debug, PartialEq)]
pub struct Response {
    /// The status line, without its CRLF.
    pub status_line: String,
    pub status: u16,
    /// Every header in order, as sent.
    pub headers: Vec<(String, String)>,
    pub body: Vec<u8>,
}

impl Response {
    /// The first value of `name` (any case).
    pub fn header(&self, name: &str) -> Option<&str> {
        self.headers
            .iter()
            .find(|(n, _)| n.eq_ignore_ascii_case(name))
            .map(|(_, v)| v.as_str())
    }
}

/// Splits a whole response into its parts; panics on anything else.
pub fn parse(bytes: &[u8]) -> Response {
    let end = bytes
        .windows(4)
        .position(|w| w == b"\r\n\r\n")
        .unwrap_or_else(|| panic!("no head in {:?}", String::from_utf8_lossy(bytes)));
    let head = std::str::from_utf8(&bytes[..end]).expect("utf-8 head");
    let mut lines = head.split("\r\n");
    let status_line = lines.next().expect("status line").to_owned();
    let status = status_line
        .split(' ')
        .nth(1)
        .and_then(|s| s.parse().ok())
        .unwrap_or_else(|| panic!("no status in {status_line:?}"));
    let headers = lines
        .map(|l| {
            let (n, v) = l
                .split_once(": ")
                .unwrap_or_else(|| panic!("bad header {l:?}"));
            (n.to_owned(), v.to_owned())
        })
        .collect();
    Response {
        status_line,
        status,
        headers,
        body: bytes[end + 4..].to_vec(),
    }
}

/// A WebSocket upgrade request for `path` with `extra` header lines.
pub fn upgrade(path: &str, extra: &str) -> String {
    get(
        path,
        &format!(
            "Upgrade: websocket\r\nConnection: Upgrade\r\n\
             Sec-WebSocket-Key: dGhlIHNhbXBsZSBub25jZQ==\r\nSec-WebSocket-Version: 13\r\n{extra}"
        ),
    )
}
