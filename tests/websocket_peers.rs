//! The WebSocket client against a raw-socket fake server: every handshake
//! failure (bad accept key, 401 with body, unoffered subprotocol or
//! extension, silence, garbage, oversized headers), what the request carries
//! (headers in order, Basic auth, Host), and hostile frames (bad UTF-8,
//! reserved opcodes, masked frames, fragmented control frames, an inflate
//! bomb); what the client sends at each compression level, and the memory
//! a received message holds.

mod common;

use std::io::Write;
use std::net::TcpStream;
use std::sync::mpsc;
use std::time::Duration;

use common::IO_TIMEOUT;
use common::ws::*;
use securenet::{
    CompressionOptions, ConnectOptions, Error, Message, Phase, WebSocket, WebSocketOptions,
};

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
fn a_silent_server_is_an_upgrade_timeout_not_a_tls_one() {
    let (tx, rx) = mpsc::channel::<()>();
    let (url, server) = fake(move |_, _| {
        let _ = rx.recv_timeout(IO_TIMEOUT);
    });
    let limit = Duration::from_millis(300);
    let start = std::time::Instant::now();
    let err = WebSocketOptions::new()
        .upgrade_timeout(limit)
        .connect(&url)
        .expect_err("silence");
    assert!(start.elapsed() < limit * 2, "took {:?}", start.elapsed());
    assert!(
        matches!(
            err,
            Error::Timeout {
                phase: Phase::Upgrade,
                after: Some(after),
                ..
            } if after == limit
        ),
        "{err:?}"
    );
    let text = err.to_string();
    assert!(text.contains("websocket upgrade timed out"), "{text}");
    assert!(!text.contains("TLS"), "no TLS on ws://: {text}");
    tx.send(()).expect("release");
    server.join().expect("server");
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

/// The payload of the first data frame the client sends to a raw server
/// that accepts permessage-deflate, when it sends `text` with `options`;
/// the frame's first byte too.
fn first_frame_sent(options: WebSocketOptions, text: &str) -> (u8, Vec<u8>) {
    let (url, server) = fake(|req, s| {
        let _ = s.write_all(
            upgrade(&req, "Sec-WebSocket-Extensions: permessage-deflate\r\n").as_bytes(),
        );
        let mut got = Vec::new();
        let mut buf = [0u8; 16 * 1024];
        loop {
            if let Some(frame) = parse_frames(&got).into_iter().next() {
                return frame;
            }
            match std::io::Read::read(s, &mut buf) {
                Ok(0) | Err(_) => panic!("the client sent no whole frame: {got:?}"),
                Ok(n) => got.extend_from_slice(&buf[..n]),
            }
        }
    });
    let mut ws = options.connect(&url).expect("connect");
    ws.send_text(text).expect("send");
    let frame = server.join().expect("server");
    drop(ws);
    frame
}

#[test]
fn the_compression_level_is_applied_and_any_inflater_reads_it() {
    let text: String = (0..400)
        .map(|i: u64| {
            let k = i.wrapping_mul(6364136223846793005) >> 33;
            format!(
                r#"{{"symbol":"S{}","price":{}.{:02},"id":{i}}}"#,
                k % 500,
                k % 1000,
                k % 97
            )
        })
        .collect();
    let mut sizes = Vec::new();
    for level in [None, Some(1), Some(9)] {
        let mut compression = CompressionOptions::default();
        if let Some(level) = level {
            compression = compression.level(level);
        }
        let (first, payload) = first_frame_sent(options().compression(compression), &text);
        assert_eq!(first, 0xc1, "FIN + RSV1 + text, level {level:?}");
        // A plain zlib inflater (not ours) reads every level.
        let mut d = flate2::Decompress::new(false);
        let mut out = Vec::with_capacity(text.len() + 64);
        let mut input = payload.clone();
        input.extend_from_slice(&[0, 0, 0xff, 0xff]);
        d.decompress_vec(&input, &mut out, flate2::FlushDecompress::Sync)
            .expect("inflate");
        assert_eq!(out, text.as_bytes(), "level {level:?}");
        sizes.push(payload.len());
    }
    assert_eq!(sizes[0], sizes[1], "the default is level 1: {sizes:?}");
    assert!(sizes[2] < sizes[1], "level 9 compresses smaller: {sizes:?}");
}

#[test]
fn a_compression_level_out_of_range_is_refused_by_name() {
    for level in [0, 10, u32::MAX] {
        let bad = CompressionOptions::default().level(level);
        let err = options()
            .compression(bad)
            .connect("ws://127.0.0.1:1/")
            .expect_err("bad level");
        assert!(matches!(err, Error::InvalidInput { .. }), "{err:?}");
        let text = err.to_string();
        assert!(text.contains("CompressionOptions::level"), "{text}");
        assert!(text.contains("1 (fastest) to 9"), "{text}");
        // A server refuses it too, before answering the upgrade.
        let (result, back) = accept_hostile(
            WebSocketOptions::new().compression(bad),
            "Sec-WebSocket-Extensions: permessage-deflate\r\n",
            Vec::new(),
        );
        let err = result.expect_err("server: bad level");
        assert!(
            err.to_string().contains("CompressionOptions::level"),
            "{err}"
        );
        assert!(!String::from_utf8_lossy(&back).starts_with("HTTP/1.1 101"));
    }
}

#[test]
fn a_received_message_holds_about_its_own_size() {
    // A small compressed message: the inflater's first reservation is not
    // what the client keeps.
    let text = br#"{"type":"tick","symbol":"ABCD","price":123.45,"qty":17,"id":9}"#;
    let mut c = flate2::Compress::new_with_window_bits(flate2::Compression::new(6), false, 15);
    let mut deflated = Vec::with_capacity(256);
    c.compress_vec(text, &mut deflated, flate2::FlushCompress::Sync)
        .expect("compress");
    deflated.truncate(deflated.len() - 4);
    let mut frames = frame(0xc2, &deflated, false); // FIN + RSV1 + binary
    // A message in three fragments, with no deflate: grown as it came.
    let mut plain = frame_with(0x02, &[1u8; 100_000], None);
    plain.extend(frame_with(0x00, &[2u8; 100_000], None));
    plain.extend(frame_with(0x80, &[3u8; 100_000], None));
    frames.extend(plain);
    frames.extend(frame(0x88, &1000u16.to_be_bytes(), false));
    let (result, _) = hostile(frames, "Sec-WebSocket-Extensions: permessage-deflate\r\n");
    let got = result.expect("messages");
    let Message::Binary(small) = &got[0] else {
        panic!("{:?}", got[0]);
    };
    assert_eq!(small.as_slice(), text);
    assert!(
        small.capacity() <= text.len() + text.len() / 4,
        "a {}-byte message holds {} bytes",
        small.len(),
        small.capacity()
    );
    let Message::Binary(big) = &got[1] else {
        panic!("{:?}", got[1]);
    };
    assert_eq!(big.len(), 300_000);
    assert_eq!((big[0], big[150_000], big[299_999]), (1, 2, 3));
    assert!(
        big.capacity() <= big.len() + big.len() / 4,
        "a {}-byte message holds {} bytes",
        big.len(),
        big.capacity()
    );
}
