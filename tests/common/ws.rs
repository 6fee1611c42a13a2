//! Fake WebSocket peers over raw sockets: HTTP heads, frames built byte by
//! byte, and a fake server that upgrades and then does what a test says.

use std::io::{Read, Write};
use std::net::{TcpListener, TcpStream};
use std::thread::{self, JoinHandle};

use securenet::{Error, Message, WebSocketOptions};

/// Reads an HTTP head from `s`.
pub fn read_request(s: &mut TcpStream) -> String {
    let mut head = Vec::new();
    let mut b = [0u8; 1];
    while !head.ends_with(b"\r\n\r\n") {
        if s.read(&mut b).expect("read request") == 0 {
            break;
        }
        head.push(b[0]);
    }
    String::from_utf8(head).expect("utf-8 request")
}

pub fn request_header<'a>(request: &'a str, name: &str) -> Vec<&'a str> {
    request
        .lines()
        .filter_map(|l| l.split_once(':'))
        .filter(|(n, _)| n.trim().eq_ignore_ascii_case(name))
        .map(|(_, v)| v.trim())
        .collect()
}

pub fn accept_key(request: &str) -> String {
    let key = request_header(request, "sec-websocket-key")[0];
    tungstenite::handshake::derive_accept_key(key.as_bytes())
}

/// A fake server: `respond(request, socket)` does the rest.
pub fn fake<T: Send + 'static>(
    respond: impl FnOnce(String, &mut TcpStream) -> T + Send + 'static,
) -> (String, JoinHandle<T>) {
    let listener = TcpListener::bind("127.0.0.1:0").expect("bind");
    let url = format!(
        "ws://127.0.0.1:{}/path?x=1",
        listener.local_addr().expect("addr").port()
    );
    let handle = thread::spawn(move || {
        let (mut s, _) = listener.accept().expect("accept");
        super::tcp_timeouts(&s);
        let request = read_request(&mut s);
        respond(request, &mut s)
    });
    (url, handle)
}

pub fn upgrade(request: &str, extra: &str) -> String {
    format!(
        "HTTP/1.1 101 Switching Protocols\r\nUpgrade: websocket\r\nConnection: Upgrade\r\n\
         Sec-WebSocket-Accept: {}\r\n{extra}\r\n",
        accept_key(request)
    )
}

/// A server frame: FIN + opcode, unmasked unless `mask` is set.
pub fn frame(first: u8, payload: &[u8], mask: bool) -> Vec<u8> {
    let mut f = vec![first];
    let m = if mask { 0x80 } else { 0 };
    if payload.len() < 126 {
        f.push(m | payload.len() as u8);
    } else {
        f.push(m | 126);
        f.extend_from_slice(&(payload.len() as u16).to_be_bytes());
    }
    if mask {
        f.extend_from_slice(&[0, 0, 0, 0]);
    }
    f.extend_from_slice(payload);
    f
}

/// Upgrades, sends `frames`, then returns the close frame the client sent.
pub fn hostile(
    frames: Vec<u8>,
    extensions: &'static str,
) -> (Result<Vec<Message>, Error>, Vec<u8>) {
    hostile_with(
        WebSocketOptions::new().max_message_size(1 << 20),
        frames,
        extensions,
    )
}

/// As [`hostile`], with the client's `options`.
pub fn hostile_with(
    options: WebSocketOptions,
    frames: Vec<u8>,
    extensions: &'static str,
) -> (Result<Vec<Message>, Error>, Vec<u8>) {
    let (url, server) = fake(move |req, s| {
        let _ = s.write_all(upgrade(&req, extensions).as_bytes());
        let _ = s.write_all(&frames);
        let mut back = Vec::new();
        let _ = s.read_to_end(&mut back);
        back
    });
    let mut ws = options.connect(&url).expect("connect");
    let mut got = Vec::new();
    let result = loop {
        match ws.read() {
            Ok(Message::Close(c)) => {
                got.push(Message::Close(c));
                break Ok(got);
            }
            Ok(m) => got.push(m),
            Err(e) => break Err(e),
        }
    };
    drop(ws);
    (result, server.join().expect("server"))
}

/// The close code in the (masked) close frame the client sent. The frames
/// are parsed in order: a 0x88 byte inside a masking key or a payload is
/// not taken for a close frame.
pub fn close_code_sent(bytes: &[u8]) -> Option<u16> {
    close_code_in(bytes)
}

/// A frame with any payload length (7-bit, 16-bit or 64-bit form), masked
/// with `mask` if given.
pub fn frame_with(first: u8, payload: &[u8], mask: Option<[u8; 4]>) -> Vec<u8> {
    let mut f = vec![first];
    let m = if mask.is_some() { 0x80 } else { 0 };
    let len = payload.len();
    if len < 126 {
        f.push(m | len as u8);
    } else if len <= 0xffff {
        f.push(m | 126);
        f.extend_from_slice(&(len as u16).to_be_bytes());
    } else {
        f.push(m | 127);
        f.extend_from_slice(&(len as u64).to_be_bytes());
    }
    match mask {
        Some(k) => {
            f.extend_from_slice(&k);
            f.extend(payload.iter().enumerate().map(|(i, b)| b ^ k[i % 4]));
        }
        None => f.extend_from_slice(payload),
    }
    f
}

/// A header alone, announcing `len` bytes (any 64-bit value).
pub fn header_announcing(first: u8, len: u64, mask: Option<[u8; 4]>) -> Vec<u8> {
    let mut f = vec![first, if mask.is_some() { 0xff } else { 0x7f }];
    f.extend_from_slice(&len.to_be_bytes());
    if let Some(k) = mask {
        f.extend_from_slice(&k);
    }
    f
}

/// A client's upgrade request for `ws://127.0.0.1/`, with `extensions`.
pub fn client_request(extensions: &str) -> String {
    format!(
        "GET / HTTP/1.1\r\nHost: 127.0.0.1\r\nUpgrade: websocket\r\nConnection: Upgrade\r\n\
         Sec-WebSocket-Key: dGhlIHNhbXBsZSBub25jZQ==\r\nSec-WebSocket-Version: 13\r\n{extensions}\r\n"
    )
}

/// The frames in `bytes` (after an HTTP head, if any): (first byte,
/// unmasked payload) each; a frame cut short ends the list.
pub fn parse_frames(mut bytes: &[u8]) -> Vec<(u8, Vec<u8>)> {
    if let Some(i) = bytes.windows(4).position(|w| w == b"\r\n\r\n") {
        if bytes.starts_with(b"HTTP/") || bytes.starts_with(b"GET ") {
            bytes = &bytes[i + 4..];
        }
    }
    let mut out = Vec::new();
    while bytes.len() >= 2 {
        let masked = bytes[1] & 0x80 != 0;
        let (len, mut at) = match bytes[1] & 0x7f {
            126 if bytes.len() >= 4 => (u16::from_be_bytes([bytes[2], bytes[3]]) as usize, 4),
            127 if bytes.len() >= 10 => {
                let mut l = [0u8; 8];
                l.copy_from_slice(&bytes[2..10]);
                (u64::from_be_bytes(l) as usize, 10)
            }
            n if n < 126 => (n as usize, 2),
            _ => break,
        };
        let mask = if masked {
            let Some(k) = bytes.get(at..at + 4) else {
                break;
            };
            at += 4;
            [k[0], k[1], k[2], k[3]]
        } else {
            [0; 4]
        };
        let Some(p) = bytes.get(at..at.saturating_add(len)) else {
            break;
        };
        out.push((
            bytes[0],
            p.iter().enumerate().map(|(i, b)| b ^ mask[i % 4]).collect(),
        ));
        bytes = &bytes[at + len..];
    }
    out
}

/// The server side against a raw client: `WebSocket::accept` over TCP with
/// `options`; the client sends the upgrade request offering `extensions`
/// and `frames` right after it. Returns what the server read (to a close
/// or an error) and every byte the client got back.
pub fn accept_hostile(
    options: WebSocketOptions,
    extensions: &str,
    frames: Vec<u8>,
) -> (Result<Vec<Message>, Error>, Vec<u8>) {
    let (listener, port) = super::tcp_listener();
    let server = thread::spawn(move || {
        let (s, _) = listener.accept().expect("accept");
        super::tcp_timeouts(&s);
        let mut ws = securenet::WebSocket::accept(s, &options)?;
        let mut got = Vec::new();
        loop {
            match ws.read() {
                Ok(Message::Close(c)) => {
                    got.push(Message::Close(c));
                    return Ok(got);
                }
                Ok(m) => got.push(m),
                Err(e) => return Err(e),
            }
        }
    });
    let mut c = TcpStream::connect(("127.0.0.1", port)).expect("connect");
    super::tcp_timeouts(&c);
    let mut all = client_request(extensions).into_bytes();
    all.extend_from_slice(&frames);
    let _ = c.write_all(&all);
    let mut back = Vec::new();
    let _ = c.read_to_end(&mut back);
    (server.join().expect("server"), back)
}

/// The close code in the first close frame of `bytes`.
pub fn close_code_in(bytes: &[u8]) -> Option<u16> {
    parse_frames(bytes)
        .into_iter()
        .find(|(first, _)| first & 0x0f == 0x8)
        .and_then(|(_, p)| (p.len() >= 2).then(|| u16::from_be_bytes([p[0], p[1]])))
}

/// The close reason in the first close frame of `bytes`.
pub fn close_reason_in(bytes: &[u8]) -> Option<String> {
    parse_frames(bytes)
        .into_iter()
        .find(|(first, _)| first & 0x0f == 0x8)
        .and_then(|(_, p)| p.get(2..).map(|r| String::from_utf8_lossy(r).into_owned()))
}
