//! The WebSocket server side: `accept_with` sees the request and answers
//! or refuses it, `allowed_origins`, the statuses RFC 6455 asks for on bad
//! requests (raw-socket clients), the upgrade timeout, and split halves on
//! server-side WebSockets over TLS and plain TCP.

mod common;

use std::io::{Read, Write};
use std::net::{TcpListener, TcpStream};
use std::sync::mpsc;
use std::thread;
use std::time::{Duration, Instant};

use common::{IO_TIMEOUT, client, pki, tcp_timeouts};
use securenet::{
    BindOptions, Error, Message, Phase, Rejection, UpgradeRequest, UpgradeResponse, WebSocket,
    WebSocketErrorKind, WebSocketOptions,
};

const KEY: &str = "dGhlIHNhbXBsZSBub25jZQ==";

/// A plain TCP server running `accept_with` once with `decide`; returns
/// the port and the thread's result (the request it saw, if accepted).
fn plain_server(
    options: WebSocketOptions,
    decide: impl FnMut(&UpgradeRequest) -> Result<UpgradeResponse, Rejection> + Send + 'static,
) -> (
    u16,
    thread::JoinHandle<securenet::Result<WebSocket<TcpStream>>>,
) {
    let listener = TcpListener::bind("127.0.0.1:0").expect("bind");
    let port = listener.local_addr().expect("addr").port();
    let handle = thread::spawn(move || {
        let (tcp, _) = listener.accept().expect("accept");
        tcp_timeouts(&tcp);
        WebSocket::accept_with(tcp, &options, decide)
    });
    (port, handle)
}

/// Sends `request` raw and reads the whole response (the server closes).
fn raw(port: u16, request: &[u8]) -> String {
    let mut tcp = TcpStream::connect(("127.0.0.1", port)).expect("connect");
    tcp_timeouts(&tcp);
    let _ = tcp.write_all(request);
    let mut out = Vec::new();
    let mut buf = [0u8; 4096];
    loop {
        match tcp.read(&mut buf) {
            Ok(0) | Err(_) => break,
            Ok(n) => {
                out.extend_from_slice(&buf[..n]);
                // A 101 leaves the connection open: stop at its head.
                if out.starts_with(b"HTTP/1.1 101") && out.windows(4).any(|w| w == b"\r\n\r\n") {
                    break;
                }
            }
        }
    }
    String::from_utf8_lossy(&out).into_owned()
}

fn upgrade_request(path: &str, extra: &str) -> String {
    format!(
        "GET {path} HTTP/1.1\r\nHost: localhost\r\nUpgrade: websocket\r\nConnection: Upgrade\r\n\
         Sec-WebSocket-Key: {KEY}\r\nSec-WebSocket-Version: 13\r\n{extra}\r\n"
    )
}

#[test]
fn accept_with_sees_the_whole_request_and_shapes_the_answer() {
    let (seen_tx, seen_rx) = mpsc::channel();
    let (port, server) = plain_server(WebSocketOptions::new(), move |req| {
        seen_tx.send(req.clone()).expect("send");
        Ok(UpgradeResponse::new()
            .protocol("chat.v2")
            .header("Set-Cookie", "session=abc"))
    });
    let response = raw(
        port,
        upgrade_request(
            "/rooms/1?user=ann&x=%20",
            "Origin: https://app.example\r\nX-Tag: one\r\nX-Tag: two\r\n\
             Sec-WebSocket-Protocol: chat.v1, chat.v2\r\n\
             Sec-WebSocket-Extensions: permessage-deflate; client_max_window_bits, x-other\r\n",
        )
        .as_bytes(),
    );
    assert!(response.starts_with("HTTP/1.1 101"), "{response}");
    assert!(
        response.contains("Sec-WebSocket-Protocol: chat.v2\r\n"),
        "{response}"
    );
    assert!(
        response.contains("Set-Cookie: session=abc\r\n"),
        "{response}"
    );
    let ws = server.join().expect("server").expect("accepted");
    assert_eq!(ws.protocol(), Some("chat.v2"));
    let req = seen_rx.recv().expect("request");
    assert_eq!(req.method(), "GET");
    assert_eq!(req.path(), "/rooms/1");
    assert_eq!(req.query(), Some("user=ann&x=%20"));
    assert_eq!(req.origin(), Some("https://app.example"));
    assert_eq!(
        req.header_values("x-tag").collect::<Vec<_>>(),
        ["one", "two"]
    );
    assert_eq!(req.header("HOST"), Some("localhost"));
    assert_eq!(req.protocols(), ["chat.v1", "chat.v2"]);
    assert_eq!(
        req.extensions(),
        ["permessage-deflate; client_max_window_bits", "x-other"]
    );
    let peer = req.peer_addr().expect("a TCP stream has a peer");
    assert!(peer.ip().is_loopback());
    assert_eq!(req.headers().len(), 10, "{:?}", req.headers());
}

#[test]
fn debug_of_the_request_hides_the_query_and_token_subprotocols() {
    let (seen_tx, seen_rx) = mpsc::channel();
    let (port, server) = plain_server(WebSocketOptions::new(), move |req| {
        seen_tx.send(req.clone()).expect("send");
        Ok(UpgradeResponse::new().protocol("base64.channel.k8s.io"))
    });
    let token_protocol = "base64url.bearer.authorization.k8s.io.PROTOSECRET88";
    let response = raw(
        port,
        upgrade_request(
            "/api/exec?access_token=QUERYSECRET77",
            &format!("Sec-WebSocket-Protocol: base64.channel.k8s.io, {token_protocol}\r\n"),
        )
        .as_bytes(),
    );
    assert!(response.starts_with("HTTP/1.1 101"), "{response}");
    server.join().expect("server").expect("accepted");
    let req = seen_rx.recv().expect("request");
    let text = format!("{req:?}");
    assert!(!text.contains("QUERYSECRET77"), "{text}");
    assert!(!text.contains("PROTOSECRET88"), "{text}");
    assert!(!text.contains("access_token"), "{text}");
    // What is not a credential still shows.
    assert!(text.contains("/api/exec"), "{text}");
    assert!(text.contains("base64.channel.k8s.io"), "{text}");
    assert!(text.contains("***"), "{text}");
    // The accessors give the real values.
    assert_eq!(req.query(), Some("access_token=QUERYSECRET77"));
    assert_eq!(req.protocols(), ["base64.channel.k8s.io", token_protocol]);
    assert_eq!(
        req.header("sec-websocket-protocol"),
        Some(format!("base64.channel.k8s.io, {token_protocol}").as_str())
    );
}

#[test]
fn choosing_an_unoffered_token_subprotocol_is_an_error_that_hides_it() {
    let (port, server) = plain_server(WebSocketOptions::new(), |_| {
        Ok(UpgradeResponse::new().protocol("x.token.CHOSENSECRET66"))
    });
    let response = raw(
        port,
        upgrade_request(
            "/",
            "Sec-WebSocket-Protocol: chat, base64url.bearer.authorization.k8s.io.PROTOSECRET88\r\n",
        )
        .as_bytes(),
    );
    assert!(response.starts_with("HTTP/1.1 500"), "{response}");
    let err = server.join().expect("server").expect_err("not offered");
    let text = format!("{err} {err:?}");
    assert!(text.contains("did not offer"), "{text}");
    assert!(text.contains("chat"), "{text}");
    assert!(!text.contains("CHOSENSECRET66"), "{text}");
    assert!(!text.contains("PROTOSECRET88"), "{text}");
}

#[test]
fn a_rejection_sends_its_status_headers_and_body() {
    let (port, server) = plain_server(WebSocketOptions::new(), |req| {
        if req.header("authorization").is_some() {
            return Ok(UpgradeResponse::new());
        }
        Err(Rejection::new(401)
            .header("WWW-Authenticate", "Bearer realm=\"chat\"")
            .body("log in first"))
    });
    // Our own client sees the status and the body.
    let err = WebSocketOptions::new()
        .connect(&format!("ws://127.0.0.1:{port}/"))
        .expect_err("refused");
    match &err {
        Error::HttpStatus { status, body, .. } => {
            assert_eq!(*status, 401);
            assert_eq!(body, b"log in first");
        }
        other => panic!("expected 401, got {other:?}"),
    }
    let server_err = server.join().expect("server").expect_err("refused");
    // Refused on purpose: not the kind of a malformed request.
    assert_eq!(
        server_err.websocket_kind(),
        Some(WebSocketErrorKind::Refused)
    );
    assert!(server_err.to_string().contains("401"), "{server_err}");

    let (port, _server) = plain_server(WebSocketOptions::new(), |_| {
        Err(Rejection::new(401).header("WWW-Authenticate", "Bearer"))
    });
    let response = raw(port, upgrade_request("/", "").as_bytes());
    assert!(
        response.starts_with("HTTP/1.1 401 Unauthorized\r\n"),
        "{response}"
    );
    assert!(
        response.contains("WWW-Authenticate: Bearer\r\n"),
        "{response}"
    );
}

#[test]
fn origins_outside_the_allow_list_get_403() {
    let options = || WebSocketOptions::new().allowed_origins(&["https://app.example"]);
    for (origin, allowed) in [
        ("Origin: https://evil.example\r\n", false),
        ("Origin: HTTPS://APP.EXAMPLE\r\n", true),
        ("", true),
    ] {
        let (port, server) = plain_server(options(), |_| Ok(UpgradeResponse::new()));
        let response = raw(port, upgrade_request("/", origin).as_bytes());
        let result = server.join().expect("server");
        if allowed {
            assert!(response.starts_with("HTTP/1.1 101"), "{origin}: {response}");
            assert!(result.is_ok(), "{origin}");
        } else {
            assert!(response.starts_with("HTTP/1.1 403 Forbidden"), "{response}");
            let e = result.expect_err("refused");
            assert!(e.to_string().contains("https://evil.example"), "{e}");
            assert_eq!(e.websocket_kind(), Some(WebSocketErrorKind::Refused));
        }
    }
}

#[test]
fn bad_requests_get_the_status_rfc_6455_asks_for() {
    let big = format!("X-Big: {}\r\n", "a".repeat(20 * 1024));
    let many: String = (0..70).map(|i| format!("X-{i}: v\r\n")).collect();
    let cases: Vec<(&str, String, &str, Option<&str>)> = vec![
        (
            "bad key",
            upgrade_request("/", "").replace(KEY, "short"),
            "400",
            None,
        ),
        (
            "key of 15 bytes",
            upgrade_request("/", "").replace(KEY, "AAAAAAAAAAAAAAAAAAAA"),
            "400",
            None,
        ),
        (
            "version 8",
            upgrade_request("/", "").replace("Version: 13", "Version: 8"),
            "426",
            Some("Sec-WebSocket-Version: 13\r\n"),
        ),
        (
            "POST",
            upgrade_request("/", "").replace("GET", "POST"),
            "405",
            Some("Allow: GET\r\n"),
        ),
        (
            "no Upgrade header",
            upgrade_request("/", "").replace("Upgrade: websocket\r\n", ""),
            "426",
            Some("Upgrade: websocket\r\n"),
        ),
        (
            "no Host",
            upgrade_request("/", "").replace("Host: localhost\r\n", ""),
            "400",
            None,
        ),
        (
            "headers over 16 KiB",
            upgrade_request("/", &big),
            "431",
            None,
        ),
        ("70 headers", upgrade_request("/", &many), "431", None),
        (
            "not HTTP",
            "\x16\x03\x01 hello\r\n\r\n".to_owned(),
            "400",
            None,
        ),
    ];
    for (what, request, status, header) in cases {
        let (port, server) = plain_server(WebSocketOptions::new(), |_| {
            panic!("the callback must not see a bad request")
        });
        let response = raw(port, request.as_bytes());
        assert!(
            response.starts_with(&format!("HTTP/1.1 {status} ")),
            "{what}: {response}"
        );
        if let Some(h) = header {
            assert!(response.contains(h), "{what}: {response}");
        }
        let e = server
            .join()
            .expect("no panic")
            .expect_err("a bad request is an error");
        assert_eq!(
            e.websocket_kind(),
            Some(WebSocketErrorKind::Upgrade),
            "{what}: {e}"
        );
    }
}

#[test]
fn a_silent_client_is_dropped_at_the_upgrade_timeout() {
    let limit = Duration::from_millis(300);
    let (port, server) = plain_server(WebSocketOptions::new().upgrade_timeout(limit), |_| {
        Ok(UpgradeResponse::new())
    });
    let mut tcp = TcpStream::connect(("127.0.0.1", port)).expect("connect");
    tcp_timeouts(&tcp);
    let started = Instant::now();
    // Dribble a byte of the request now and then: each read succeeds, the
    // whole upgrade must still end at the deadline.
    let dribbler = thread::spawn(move || {
        for b in b"GET / HTTP/1.1\r\nHost: x\r\n" {
            if tcp.write_all(&[*b]).is_err() {
                break;
            }
            thread::park_timeout(Duration::from_millis(20));
        }
        tcp
    });
    let e = server.join().expect("server").expect_err("timed out");
    let took = started.elapsed();
    assert!(
        matches!(
            e,
            Error::Timeout {
                phase: Phase::Upgrade,
                ..
            }
        ),
        "{e:?}"
    );
    assert!(took < limit * 2, "took {took:?}");
    drop(dribbler.join());
}

/// One thread blocks in `read` while another sends, on a server-side
/// WebSocket over TLS; the client echoes.
#[test]
fn server_side_websockets_split_over_tls() {
    let pki = pki();
    let listener = BindOptions::new()
        .handshake_timeout(IO_TIMEOUT)
        .bind("127.0.0.1", 0, &pki.server_context())
        .expect("bind");
    let port = listener.port();
    let server = thread::spawn(move || -> securenet::Result<Vec<String>> {
        let (mut stream, _) = listener.accept()?;
        common::with_timeouts(&mut stream);
        let ws = WebSocket::accept_with(stream, &WebSocketOptions::new(), |_| {
            Ok(UpgradeResponse::new())
        })?;
        let (mut reader, mut writer) = ws.split()?;
        let got = thread::spawn(move || -> securenet::Result<Vec<String>> {
            let mut got = Vec::new();
            for _ in 0..3 {
                if let Message::Text(t) = reader.read()? {
                    got.push(t);
                }
            }
            Ok(got)
        });
        for i in 0..3 {
            writer.send_text(&format!("from server {i}"))?;
        }
        let got = got.join().expect("reader")?;
        writer.close(Some((1000, "done")))?;
        Ok(got)
    });
    let mut ctx = securenet::SecurityContext::empty();
    ctx.set_trusted_certificates_bytes(pki.ca_pem().as_bytes())
        .expect("trust");
    let mut ws = WebSocketOptions::new()
        .connect_options(client(ctx))
        .connect(&format!("wss://localhost:{port}/"))
        .expect("connect");
    ws.set_read_timeout(Some(IO_TIMEOUT)).expect("timeout");
    for _ in 0..3 {
        match ws.read().expect("read") {
            Message::Text(t) => ws.send_text(&t.replace("server", "client")).expect("echo"),
            other => panic!("{other:?}"),
        }
    }
    let got = server.join().expect("server").expect("server side");
    assert_eq!(got, ["from client 0", "from client 1", "from client 2"]);
}

#[test]
fn server_side_websockets_split_over_plain_tcp() {
    let (port, server) = plain_server(WebSocketOptions::new(), |_| Ok(UpgradeResponse::new()));
    let mut ws = WebSocket::connect(&format!("ws://127.0.0.1:{port}/")).expect("connect");
    ws.set_read_timeout(Some(IO_TIMEOUT)).expect("timeout");
    let server_ws = server.join().expect("server").expect("accepted");
    let (mut reader, mut writer) = server_ws.split().expect("split over TCP");
    let echo = thread::spawn(move || match reader.read() {
        Ok(Message::Binary(b)) => b,
        other => panic!("{other:?}"),
    });
    writer.send_text("hello").expect("send");
    assert_eq!(ws.read().expect("read"), Message::Text("hello".into()));
    ws.send_binary(&[1, 2, 3]).expect("send");
    assert_eq!(echo.join().expect("reader"), [1, 2, 3]);
}
