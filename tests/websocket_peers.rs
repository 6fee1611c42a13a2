//! The WebSocket client against a raw-socket fake server: every handshake
//! failure (bad accept key, 401 with body, unoffered subprotocol or
//! extension, silence, garbage, oversized headers), what the request carries
//! (headers in order, Basic auth, Host), and hostile frames (bad UTF-8,
//! reserved opcodes, masked frames, fragmented control frames, an inflate
//! bomb).

mod common;

use std::io::{Read, Write};
use std::net::{TcpListener, TcpStream};
use std::sync::mpsc;
use std::thread::{self, JoinHandle};
use std::time::Duration;

use common::IO_TIMEOUT;
use securenet::{
    CompressionOptions, ConnectOptions, Error, Message, Phase, WebSocket, WebSocketOptions,
};

/// Reads an HTTP head from `s`.
fn read_request(s: &mut TcpStream) -> String {
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

fn request_header<'a>(request: &'a str, name: &str) -> Vec<&'a str> {
    request
        .lines()
        .filter_map(|l| l.split_once(':'))
        .filter(|(n, _)| n.trim().eq_ignore_ascii_case(name))
        .map(|(_, v)| v.trim())
        .collect()
}

fn accept_key(request: &str) -> String {
    let key = request_header(request, "sec-websocket-key")[0];
    tungstenite::handshake::derive_accept_key(key.as_bytes())
}

/// A fake server: `respond(request, socket)` does the rest.
fn fake<T: Send + 'static>(
    respond: impl FnOnce(String, &mut TcpStream) -> T + Send + 'static,
) -> (String, JoinHandle<T>) {
    let listener = TcpListener::bind("127.0.0.1:0").expect("bind");
    let url = format!(
        "ws://127.0.0.1:{}/path?x=1",
        listener.local_addr().expect("addr").port()
    );
    let handle = thread::spawn(move || {
        let (mut s, _) = listener.accept().expect("accept");
        common::tcp_timeouts(&s);
        let request = read_request(&mut s);
        respond(request, &mut s)
    });
    (url, handle)
}

fn upgrade(request: &str, extra: &str) -> String {
    format!(
        "HTTP/1.1 101 Switching Protocols\r\nUpgrade: websocket\r\nConnection: Upgrade\r\n\
         Sec-WebSocket-Accept: {}\r\n{extra}\r\n",
        accept_key(request)
    )
}

fn options() -> WebSocketOptions {
    WebSocketOptions::new()
        .compression(CompressionOptions::disabled())
        .connect_options(ConnectOptions::new().handshake_timeout(IO_TIMEOUT))
}

#[test]
fn the_request_carries_headers_auth_and_host() {
    let (url, server) = fake(|req, s| {
        let _ = s.write_all(upgrade(&req, "").as_bytes());
        req
    });
    let url = url.replace("ws://", "ws://us%40er:p%3Ass@");
    let ws = options()
        .header("Origin", "https://example.com")
        .header("X-List", "one")
        .header("X-List", "two")
        .header("upgrade", "h2c")
        .header("SEC-WEBSOCKET-KEY", "spoofed")
        .protocols(&["chat.v2", "chat.v1"])
        .connect(&url)
        .expect("connect");
    drop(ws);
    let req = server.join().expect("server");
    assert!(req.starts_with("GET /path?x=1 HTTP/1.1\r\n"), "{req}");
    assert_eq!(request_header(&req, "origin"), ["https://example.com"]);
    assert_eq!(request_header(&req, "x-list"), ["one", "two"], "in order");
    assert_eq!(
        request_header(&req, "upgrade"),
        ["websocket"],
        "controlled headers ignored"
    );
    assert_eq!(request_header(&req, "sec-websocket-key").len(), 1);
    assert_ne!(request_header(&req, "sec-websocket-key")[0], "spoofed");
    assert_eq!(
        request_header(&req, "sec-websocket-protocol"),
        ["chat.v2, chat.v1"]
    );
    // base64("us@er:p:ss")
    assert_eq!(
        request_header(&req, "authorization"),
        ["Basic dXNAZXI6cDpzcw=="]
    );
    let host = request_header(&req, "host")[0];
    assert!(
        host.starts_with("127.0.0.1:") && !host.contains('@'),
        "{host}"
    );
    assert!(
        request_header(&req, "sec-websocket-extensions").is_empty(),
        "compression off"
    );
}

#[test]
fn compression_is_offered_by_default() {
    let (url, server) = fake(|req, s| {
        let _ = s.write_all(upgrade(&req, "").as_bytes());
        req
    });
    let ws = WebSocket::connect(&url).expect("connect");
    assert_eq!(ws.extensions(), None, "the server declined");
    let req = server.join().expect("server");
    assert_eq!(
        request_header(&req, "sec-websocket-extensions"),
        ["permessage-deflate; client_max_window_bits"]
    );
}

/// A fake server's answer to the upgrade request.
type Responder = Box<dyn FnOnce(String, &mut TcpStream) + Send>;

fn handshake_error(respond: impl FnOnce(String, &mut TcpStream) + Send + 'static) -> Error {
    let (url, server) = fake(respond);
    let err = options()
        .protocols(&["chat.v1"])
        .connect(&url)
        .expect_err("the handshake must fail");
    let _ = server.join();
    err
}

#[test]
fn a_refusal_carries_its_status_and_body() {
    for (status, phrase) in [
        (401u16, "Unauthorized"),
        (403, "Forbidden"),
        (404, "Not Found"),
    ] {
        let err = handshake_error(move |_, s| {
            let body = format!("go away ({status})");
            let _ = write!(
                s,
                "HTTP/1.1 {status} {phrase}\r\nContent-Length: {}\r\n\r\n{body}",
                body.len()
            );
        });
        match &err {
            Error::HttpStatus {
                status: got, body, ..
            } => {
                assert_eq!(*got, status);
                assert_eq!(body, format!("go away ({status})").as_bytes());
            }
            other => panic!("{status}: {other:?}"),
        }
        assert!(err.to_string().contains(&status.to_string()), "{err}");
    }
}

#[test]
fn a_wrong_accept_key_missing_upgrade_or_unoffered_choices_fail() {
    let cases: Vec<(&str, Responder)> = vec![
        (
            "Sec-WebSocket-Accept",
            Box::new(|_, s| {
                let _ = s.write_all(
                    b"HTTP/1.1 101 OK\r\nUpgrade: websocket\r\nConnection: Upgrade\r\n\
                      Sec-WebSocket-Accept: AAAAAAAAAAAAAAAAAAAAAAAAAAA=\r\n\r\n",
                );
            }),
        ),
        (
            "Upgrade: websocket",
            Box::new(|req, s| {
                let _ = write!(
                    s,
                    "HTTP/1.1 101 OK\r\nConnection: Upgrade\r\nSec-WebSocket-Accept: {}\r\n\r\n",
                    accept_key(&req)
                );
            }),
        ),
        (
            "not offered",
            Box::new(|req, s| {
                let _ =
                    s.write_all(upgrade(&req, "Sec-WebSocket-Protocol: chat.v9\r\n").as_bytes());
            }),
        ),
        (
            "not offered",
            Box::new(|req, s| {
                let _ = s.write_all(
                    upgrade(&req, "Sec-WebSocket-Extensions: permessage-deflate\r\n").as_bytes(),
                );
            }),
        ),
        (
            "not answer with HTTP",
            Box::new(|_, s| {
                let _ = s.write_all(b"SSH-2.0-OpenSSH_9.6\r\n\r\n");
            }),
        ),
        (
            "exceed",
            Box::new(|_, s| {
                let _ = s.write_all(b"HTTP/1.1 101 OK\r\n");
                let filler = format!("X-Filler: {}\r\n", "a".repeat(1000));
                for _ in 0..40 {
                    if s.write_all(filler.as_bytes()).is_err() {
                        break;
                    }
                }
            }),
        ),
        (
            "without answering",
            Box::new(|_, s| {
                let _ = s.shutdown(std::net::Shutdown::Both);
            }),
        ),
    ];
    for (want, respond) in cases {
        let err = handshake_error(respond);
        assert!(matches!(err, Error::WebSocket { .. }), "{want}: {err:?}");
        assert!(err.to_string().contains(want), "{want}: {err}");
    }
}

#[test]
fn a_silent_server_is_a_handshake_timeout() {
    let (tx, rx) = mpsc::channel::<()>();
    let (url, server) = fake(move |_, _| {
        let _ = rx.recv_timeout(IO_TIMEOUT);
    });
    let err = WebSocketOptions::new()
        .connect_options(ConnectOptions::new().handshake_timeout(Duration::from_millis(300)))
        .connect(&url)
        .expect_err("silence");
    assert!(
        matches!(
            err,
            Error::Timeout {
                phase: Phase::Handshake,
                ..
            }
        ),
        "{err:?}"
    );
    tx.send(()).expect("release");
    server.join().expect("server");
}

/// A server frame: FIN + opcode, unmasked unless `mask` is set.
fn frame(first: u8, payload: &[u8], mask: bool) -> Vec<u8> {
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
fn hostile(frames: Vec<u8>, extensions: &'static str) -> (Result<Vec<Message>, Error>, Vec<u8>) {
    let (url, server) = fake(move |req, s| {
        let _ = s.write_all(upgrade(&req, extensions).as_bytes());
        let _ = s.write_all(&frames);
        let mut back = Vec::new();
        let _ = s.read_to_end(&mut back);
        back
    });
    let mut ws = WebSocketOptions::new()
        .max_message_size(1 << 20)
        .connect(&url)
        .expect("connect");
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

/// The close code in the (masked) close frame the client sent.
fn close_code_sent(bytes: &[u8]) -> Option<u16> {
    let i = bytes.iter().position(|b| *b == 0x88)?;
    let len = (bytes.get(i + 1)? & 0x7f) as usize;
    if len < 2 {
        return None;
    }
    let mask = bytes.get(i + 2..i + 6)?;
    Some(u16::from_be_bytes([
        bytes[i + 6] ^ mask[0],
        bytes[i + 7] ^ mask[1],
    ]))
}

#[test]
fn hostile_frames_close_with_the_right_code() {
    let cases: Vec<(&str, Vec<u8>, u16)> = vec![
        (
            "invalid UTF-8 text",
            frame(0x81, &[0xce, 0xba, 0xff, 0xfe], false),
            1007,
        ),
        ("reserved opcode", frame(0x83, b"x", false), 1002),
        ("masked server frame", frame(0x81, b"hi", true), 1002),
        (
            "fragmented control frame",
            frame(0x09, b"ping", false),
            1002,
        ),
        (
            "continuation without a start",
            frame(0x80, b"x", false),
            1002,
        ),
        ("RSV1 without deflate", frame(0xc1, b"x", false), 1002),
        (
            "control frame over 125 bytes",
            frame(0x89, &[0u8; 126], false),
            1002,
        ),
        (
            "close code 1005 on the wire",
            frame(0x88, &1005u16.to_be_bytes(), false),
            1002,
        ),
    ];
    for (what, frames, code) in cases {
        let (result, back) = hostile(frames, "");
        let err = result.expect_err(what);
        assert!(
            matches!(err, Error::WebSocket { close_code: Some(c), .. } if c == code),
            "{what}: {err:?}"
        );
        assert_eq!(
            close_code_sent(&back),
            Some(code),
            "{what}: the client told the server"
        );
    }
}

#[test]
fn control_frames_between_fragments_are_fine() {
    let mut frames = frame(0x01, b"hel", false); // text, not final
    frames.extend(frame(0x89, b"p", false)); // ping in between
    frames.extend(frame(0x80, b"lo", false)); // final continuation
    frames.extend(frame(0x88, &1000u16.to_be_bytes(), false));
    let (result, back) = hostile(frames, "");
    let got = result.expect("messages");
    assert_eq!(
        got,
        [
            Message::Ping(b"p".to_vec()),
            Message::Text("hello".into()),
            Message::Close(Some((1000, String::new())))
        ]
    );
    // The pong and the close answer went back.
    assert!(back.contains(&0x8a), "a pong was sent");
    assert_eq!(close_code_sent(&back), Some(1000));
}

#[test]
fn an_inflate_bomb_is_an_error_not_an_allocation() {
    // 64 MiB of zeros compresses to about 64 KiB; the client's cap is 1 MiB.
    let zeros = vec![0u8; 64 << 20];
    let mut c = flate2::Compress::new_with_window_bits(flate2::Compression::best(), false, 15);
    let mut out = Vec::with_capacity(1 << 20);
    c.compress_vec(&zeros, &mut out, flate2::FlushCompress::Sync)
        .expect("compress");
    out.truncate(out.len() - 4);
    assert!(out.len() < 1 << 20);
    let mut bomb = vec![0xc2, 127]; // FIN + RSV1 + binary, 64-bit length
    bomb.extend_from_slice(&(out.len() as u64).to_be_bytes());
    bomb.extend_from_slice(&out);
    let (result, back) = hostile(bomb, "Sec-WebSocket-Extensions: permessage-deflate\r\n");
    let err = result.expect_err("bomb");
    assert!(
        matches!(
            err,
            Error::WebSocket {
                close_code: Some(1009),
                ..
            }
        ),
        "{err:?}"
    );
    assert_eq!(close_code_sent(&back), Some(1009));
}
