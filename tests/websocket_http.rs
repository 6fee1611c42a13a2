//! Plain HTTP beside WebSockets on one port (`accept_or_respond`): raw TCP
//! and TLS clients get exactly the status, headers and body the callback
//! chose, then a clean end; upgrades on the same server still upgrade; a
//! refusal the server chose is an outcome (or, from `accept_with`, of kind
//! `Refused`), never an `Upgrade` failure, under `serve` too; what the
//! callback cannot send is an error naming it; malformed requests stay
//! `Upgrade` failures.

mod common;

use std::io::Write;
use std::net::{TcpListener, TcpStream};
use std::sync::mpsc;
use std::thread::{self, JoinHandle};

use common::http::{exchange, get, parse, upgrade};
use common::{IO_TIMEOUT, client, pki, tcp_timeouts, with_timeouts};
use securenet::testing::TestPki;
use securenet::{
    Accepted, Answer, BindOptions, Error, HttpResponse, Message, Rejection, SecureStream,
    StopHandle, UpgradeRequest, UpgradeResponse, WebSocket, WebSocketErrorKind, WebSocketOptions,
};

/// The routes of a port with a WebSocket, a health check and a page.
fn routes(request: &UpgradeRequest) -> Answer {
    match (request.path(), request.is_upgrade()) {
        ("/healthz", _) => HttpResponse::new(200)
            .header("Content-Type", "text/plain; charset=utf-8")
            .header("Cache-Control", "no-store")
            .body("ok\n")
            .into(),
        ("/chat", true) => UpgradeResponse::new().into(),
        ("/forbidden", _) => HttpResponse::new(403)
            .header("Content-Type", "text/plain")
            .body("go away\n")
            .into(),
        _ => HttpResponse::new(404).body("no such page\n").into(),
    }
}

type Served = JoinHandle<securenet::Result<Accepted<TcpStream>>>;

/// A plain TCP server running `accept_or_respond` once with `decide`.
fn plain_server(decide: impl FnMut(&UpgradeRequest) -> Answer + Send + 'static) -> (u16, Served) {
    let listener = TcpListener::bind("127.0.0.1:0").expect("bind");
    let port = listener.local_addr().expect("addr").port();
    let handle = thread::spawn(move || {
        let (tcp, _) = listener.accept().expect("accept");
        tcp_timeouts(&tcp);
        WebSocket::accept_or_respond(tcp, &WebSocketOptions::new(), decide)
    });
    (port, handle)
}

/// Sends `request` over TCP and reads to the end.
fn raw(port: u16, request: &[u8]) -> (Vec<u8>, std::io::Result<()>) {
    let mut tcp = TcpStream::connect(("127.0.0.1", port)).expect("connect");
    tcp_timeouts(&tcp);
    exchange(&mut tcp, request)
}

fn answered(served: Served) -> u16 {
    match served.join().expect("server thread") {
        Ok(Accepted::Answered(status)) => status,
        other => panic!("expected a plain answer, got {other:?}"),
    }
}

fn failed(served: Served) -> Error {
    match served.join().expect("no panic") {
        Err(e) => e,
        Ok(other) => panic!("expected an error, got {other:?}"),
    }
}

#[test]
fn a_health_check_gets_exactly_the_callbacks_answer_then_eof() {
    let (seen_tx, seen_rx) = mpsc::channel();
    let (port, server) = plain_server(move |request| {
        seen_tx.send(request.clone()).expect("send");
        routes(request)
    });
    let (bytes, end) = raw(port, get("/healthz?full=1", "X-Probe: lb-7\r\n").as_bytes());
    end.expect("a clean end after the answer");
    let response = parse(&bytes);
    assert_eq!(response.status_line, "HTTP/1.1 200 OK");
    // Dated, as an origin server with a clock dates its answers (RFC 9110
    // section 6.6.1): `Sun, 06 Nov 1994 08:49:37 GMT`.
    let (date, headers): (Vec<_>, Vec<_>) =
        response.headers.into_iter().partition(|(n, _)| n == "Date");
    assert!(
        matches!(&date[..], [(_, d)] if d.len() == 29 && d.ends_with(" GMT") && d.as_bytes()[3] == b','),
        "{date:?}"
    );
    assert_eq!(
        headers,
        [
            ("Content-Type", "text/plain; charset=utf-8"),
            ("Cache-Control", "no-store"),
            ("Content-Length", "3"),
            ("Connection", "close"),
        ]
        .map(|(n, v)| (n.to_owned(), v.to_owned()))
    );
    assert_eq!(response.body, b"ok\n");
    assert_eq!(answered(server), 200);

    let request = seen_rx.recv().expect("the callback saw the request");
    assert!(!request.is_upgrade());
    assert_eq!(request.method(), "GET");
    assert_eq!(request.path(), "/healthz");
    assert_eq!(request.query(), Some("full=1"));
    assert_eq!(request.header("x-probe"), Some("lb-7"));
    assert_eq!(request.header("host"), Some("localhost"));
    assert!(request.peer_addr().expect("peer").ip().is_loopback());
}

#[test]
fn over_tls_the_answer_ends_with_close_notify() {
    let pki = pki();
    let listener = BindOptions::new()
        .handshake_timeout(IO_TIMEOUT)
        .bind("127.0.0.1", 0, &pki.server_context())
        .expect("bind");
    let port = listener.port();
    let server = thread::spawn(move || {
        let mut answers = Vec::new();
        for _ in 0..2 {
            let (mut stream, _) = listener.accept().expect("accept");
            with_timeouts(&mut stream);
            answers.push(WebSocket::accept_or_respond(
                stream,
                &WebSocketOptions::new(),
                routes,
            ));
        }
        answers
    });
    let tls = || -> SecureStream {
        let mut s = client(pki.trust_context())
            .connect("localhost", port)
            .expect("connect");
        with_timeouts(&mut s);
        s
    };
    // Reading ends with Ok(0) only on close_notify: a bare FIN would be
    // `Truncated`.
    let (bytes, end) = exchange(&mut tls(), get("/healthz", "").as_bytes());
    end.expect("close_notify after the answer");
    let response = parse(&bytes);
    assert_eq!(response.status, 200);
    assert_eq!(response.body, b"ok\n");
    // HEAD: the length of the body, not the body.
    let request = get("/healthz", "").replacen("GET", "HEAD", 1);
    let (bytes, end) = exchange(&mut tls(), request.as_bytes());
    end.expect("close_notify after the answer");
    let response = parse(&bytes);
    assert_eq!(response.header("content-length"), Some("3"));
    assert!(response.body.is_empty(), "{response:?}");
    for answer in server.join().expect("server") {
        assert!(matches!(answer, Ok(Accepted::Answered(200))), "{answer:?}");
    }
}

#[test]
fn the_same_server_upgrades_and_answers_plain_http() {
    let listener = TcpListener::bind("127.0.0.1:0").expect("bind");
    let port = listener.local_addr().expect("addr").port();
    let server = thread::spawn(move || -> securenet::Result<Vec<String>> {
        let mut outcomes = Vec::new();
        for _ in 0..3 {
            let (tcp, _) = listener.accept().expect("accept");
            tcp_timeouts(&tcp);
            match WebSocket::accept_or_respond(tcp, &WebSocketOptions::new(), routes)? {
                Accepted::WebSocket(mut ws) => {
                    if let Message::Text(t) = ws.read()? {
                        ws.send_text(&format!("echo {t}"))?;
                    }
                    ws.close(Some((1000, "done")))?;
                    outcomes.push("websocket".to_owned());
                }
                Accepted::Answered(status) => outcomes.push(status.to_string()),
            }
        }
        Ok(outcomes)
    });
    let (bytes, _) = raw(port, get("/healthz", "").as_bytes());
    assert_eq!(parse(&bytes).status, 200);
    let mut ws = WebSocket::connect(&format!("ws://127.0.0.1:{port}/chat")).expect("upgrade");
    ws.set_read_timeout(Some(IO_TIMEOUT)).expect("timeout");
    ws.send_text("hi").expect("send");
    assert_eq!(ws.read().expect("echo"), Message::Text("echo hi".into()));
    // The server's close, answered by the read.
    assert!(matches!(ws.read(), Ok(Message::Close(_))));
    let (bytes, _) = raw(port, get("/index.html", "").as_bytes());
    let page = parse(&bytes);
    assert_eq!(
        (page.status, page.body.as_slice()),
        (404, &b"no such page\n"[..])
    );
    let outcomes = server.join().expect("server").expect("served");
    assert_eq!(outcomes, ["200", "websocket", "404"]);
}

/// What `serve` reported to `on_client_error`: each error's kind.
type Reports = mpsc::Receiver<Option<WebSocketErrorKind>>;

/// Serves over TLS with `handler`, reporting errors into a channel.
fn serving(
    pki: &TestPki,
    handler: impl Fn(SecureStream) -> securenet::Result<()> + Send + Sync + 'static,
) -> (u16, Reports, StopHandle) {
    let (tx, rx) = mpsc::channel();
    let listener = BindOptions::new()
        .handshake_timeout(IO_TIMEOUT)
        .on_client_error(move |e, _| {
            let _ = tx.send(e.websocket_kind());
        })
        .bind("127.0.0.1", 0, &pki.server_context())
        .expect("bind");
    let port = listener.port();
    let stop = listener.stop_handle();
    thread::spawn(move || listener.serve(handler));
    (port, rx, stop)
}

/// Sends each request over its own TLS connection; the statuses.
fn statuses(pki: &TestPki, port: u16, requests: &[String]) -> Vec<u16> {
    let trust = pki.trust_context();
    requests
        .iter()
        .map(|request| {
            let mut s = client(trust.clone())
                .connect("localhost", port)
                .expect("connect");
            with_timeouts(&mut s);
            parse(&exchange(&mut s, request.as_bytes()).0).status
        })
        .collect()
}

#[test]
fn refusals_the_server_chose_are_not_upgrade_failures_under_serve() {
    let pki = pki();
    let requests = [
        upgrade("/forbidden", ""),
        get("/healthz", ""),
        upgrade("/chat", "").replace("dGhlIHNhbXBsZSBub25jZQ==", "short"),
    ];
    // accept_or_respond: the 403 and the 200 are outcomes, unreported;
    // the malformed upgrade is an `Upgrade` failure.
    let (port, reports, stop) = serving(&pki, |stream| {
        match WebSocket::accept_or_respond(stream, &WebSocketOptions::new(), routes)? {
            Accepted::WebSocket(mut ws) => ws.close(None),
            Accepted::Answered(_) => Ok(()),
        }
    });
    assert_eq!(statuses(&pki, port, &requests), [403, 200, 400]);
    assert!(stop.stop_and_wait(IO_TIMEOUT), "handlers still running");
    assert_eq!(
        reports.try_iter().collect::<Vec<_>>(),
        [Some(WebSocketErrorKind::Upgrade)]
    );

    // accept_with: its Rejection is reported, as `Refused`.
    let (port, reports, stop) = serving(&pki, |stream| {
        WebSocket::accept_with(stream, &WebSocketOptions::new(), |request| {
            match request.path() {
                "/chat" => Ok(UpgradeResponse::new()),
                _ => Err(Rejection::new(403).body("go away")),
            }
        })?
        .close(None)
    });
    assert_eq!(statuses(&pki, port, &requests), [403, 426, 400]);
    assert!(stop.stop_and_wait(IO_TIMEOUT), "handlers still running");
    let mut kinds = reports.try_iter().collect::<Vec<_>>();
    kinds.sort_by_key(|k| format!("{k:?}"));
    assert_eq!(
        kinds,
        [
            Some(WebSocketErrorKind::Refused),
            Some(WebSocketErrorKind::Upgrade),
            Some(WebSocketErrorKind::Upgrade),
        ]
    );
}

#[test]
fn what_the_callback_cannot_send_is_an_error_naming_it() {
    let cases: [(&str, HttpResponse, &str); 5] = [
        (
            "a line break in a value",
            HttpResponse::new(200).header("X-Note", "fine\r\nSet-Cookie: injected=1"),
            "X-Note",
        ),
        (
            "a bad header name",
            HttpResponse::new(200).header("X Note", "v"),
            "X Note",
        ),
        (
            "Content-Length by hand",
            HttpResponse::new(200)
                .header("Content-Length", "1")
                .body("ab"),
            "Content-Length",
        ),
        ("status 600", HttpResponse::new(600), "600"),
        ("status 101", HttpResponse::new(101), "101"),
    ];
    for (what, response, named) in cases {
        let (port, server) = plain_server(move |_| Answer::Respond(response.clone()));
        let (bytes, end) = raw(port, get("/", "").as_bytes());
        end.expect(what);
        let sent = parse(&bytes);
        assert_eq!(sent.status, 500, "{what}: {sent:?}");
        assert!(
            !String::from_utf8_lossy(&bytes).contains("injected"),
            "{what}: {sent:?}"
        );
        let e = failed(server);
        assert!(matches!(e, Error::InvalidInput { .. }), "{what}: {e:?}");
        assert!(e.to_string().contains(named), "{what}: {e}");
    }
}

#[test]
fn malformed_requests_stay_upgrade_failures() {
    let big = format!("X-Big: {}\r\n", "a".repeat(20 * 1024));
    let cases = [
        ("not HTTP", "\x16\x03\x01 hello\r\n\r\n".to_owned(), 400),
        (
            "a bad key",
            upgrade("/chat", "").replace("dGhlIHNhbXBsZSBub25jZQ==", "short"),
            400,
        ),
        (
            "an upgrade by POST",
            upgrade("/chat", "").replacen("GET", "POST", 1),
            405,
        ),
        (
            "HTTP/1.1 without Host",
            "GET /healthz HTTP/1.1\r\n\r\n".to_owned(),
            400,
        ),
        ("headers over 16 KiB", get("/healthz", &big), 431),
    ];
    for (what, request, status) in cases {
        let (port, server) = plain_server(|_| panic!("the callback must not see a bad request"));
        let (bytes, _) = raw(port, request.as_bytes());
        assert_eq!(parse(&bytes).status, status, "{what}");
        let e = failed(server);
        assert_eq!(
            e.websocket_kind(),
            Some(WebSocketErrorKind::Upgrade),
            "{what}: {e}"
        );
    }
    // Upgrading a request that is not an upgrade: what accept_with says.
    let (port, server) = plain_server(|_| Answer::Upgrade(UpgradeResponse::new()));
    let (bytes, _) = raw(port, get("/chat", "").as_bytes());
    let response = parse(&bytes);
    assert_eq!(response.status, 426);
    assert_eq!(response.header("upgrade"), Some("websocket"));
    let e = failed(server);
    assert_eq!(e.websocket_kind(), Some(WebSocketErrorKind::Upgrade), "{e}");
}

#[test]
fn accept_with_still_answers_plain_requests_426() {
    let listener = TcpListener::bind("127.0.0.1:0").expect("bind");
    let port = listener.local_addr().expect("addr").port();
    let server = thread::spawn(move || {
        let (tcp, _) = listener.accept().expect("accept");
        tcp_timeouts(&tcp);
        WebSocket::accept_with(tcp, &WebSocketOptions::new(), |_| {
            panic!("accept_with's callback sees upgrades only")
        })
    });
    let (bytes, _) = raw(port, get("/healthz", "").as_bytes());
    assert_eq!(parse(&bytes).status, 426);
    let e = server.join().expect("no panic").expect_err("426");
    assert_eq!(e.websocket_kind(), Some(WebSocketErrorKind::Upgrade), "{e}");
}

#[test]
fn health_checkers_requests_reach_the_callback() {
    // HAProxy's `option httpchk` sends `OPTIONS / HTTP/1.0` by default.
    let (seen_tx, seen_rx) = mpsc::channel();
    let (port, server) = plain_server(move |request| {
        seen_tx
            .send((request.method().to_owned(), request.path().to_owned()))
            .expect("send");
        Answer::Respond(HttpResponse::new(204))
    });
    let (bytes, end) = raw(port, b"OPTIONS / HTTP/1.0\r\n\r\n");
    end.expect("a clean end");
    let response = parse(&bytes);
    assert_eq!(response.status_line, "HTTP/1.1 204 No Content");
    assert_eq!(response.header("content-length"), None);
    assert_eq!(answered(server), 204);
    assert_eq!(
        seen_rx.recv().expect("seen"),
        ("OPTIONS".into(), "/".into())
    );
}

#[test]
fn a_request_body_left_unread_does_not_cut_the_answer() {
    // The server answers without reading the body; it drains it after
    // its half-close instead of resetting the connection under it.
    let (port, server) = plain_server(routes);
    let body = vec![b'x'; 200 * 1024];
    let mut request = format!(
        "POST /upload HTTP/1.1\r\nHost: localhost\r\nContent-Length: {}\r\n\r\n",
        body.len()
    )
    .into_bytes();
    request.extend_from_slice(&body);
    let mut tcp = TcpStream::connect(("127.0.0.1", port)).expect("connect");
    tcp_timeouts(&tcp);
    let (bytes, end) = exchange(&mut tcp, &request);
    end.expect("the whole body went out and the answer came back");
    assert_eq!(parse(&bytes).status, 404);
    drop(tcp.flush());
    drop(tcp);
    assert_eq!(answered(server), 404);
}

/// A TLS client (raw rustls, which answers nothing by itself) that sends
/// a record the server cannot decrypt after the answer's close_notify: the
/// server drops it without feeding it to rustls (whose `debug_assert!` on
/// a second alert once panicked the server's thread in debug builds) and
/// returns its answer.
#[test]
fn a_bad_record_after_the_answer_does_not_panic_the_server() {
    use rustls::pki_types::pem::PemObject;
    let pki = pki();
    let listener = BindOptions::new()
        .handshake_timeout(IO_TIMEOUT)
        .bind("127.0.0.1", 0, &pki.server_context())
        .expect("bind");
    let port = listener.port();
    let server = thread::spawn(move || {
        let (mut stream, _) = listener.accept().expect("accept");
        with_timeouts(&mut stream);
        WebSocket::accept_or_respond(stream, &WebSocketOptions::new(), routes)
    });
    let mut roots = rustls::RootCertStore::empty();
    roots
        .add(
            rustls::pki_types::CertificateDer::from_pem_slice(pki.ca_pem().as_bytes()).expect("ca"),
        )
        .expect("root");
    let config = rustls::ClientConfig::builder_with_provider(common::rustls_provider().into())
        .with_safe_default_protocol_versions()
        .expect("versions")
        .with_root_certificates(roots)
        .with_no_client_auth();
    let name = rustls::pki_types::ServerName::try_from("localhost").expect("name");
    let mut conn =
        rustls::ClientConnection::new(std::sync::Arc::new(config), name).expect("client");
    let mut tcp = TcpStream::connect(("127.0.0.1", port)).expect("connect");
    tcp_timeouts(&tcp);
    conn.writer()
        .write_all(get("/healthz", "").as_bytes())
        .expect("request");
    // Until the server's close_notify: the answer is in, nothing sent back.
    let mut answer = Vec::new();
    loop {
        conn.complete_io(&mut tcp).expect("io");
        let mut buf = [0u8; 4096];
        match std::io::Read::read(&mut conn.reader(), &mut buf) {
            Ok(0) => break,
            Ok(n) => answer.extend_from_slice(&buf[..n]),
            Err(e) if e.kind() == std::io::ErrorKind::WouldBlock => {}
            Err(e) => panic!("reading the answer: {e}"),
        }
    }
    assert_eq!(parse(&answer).status, 200);
    // An application-data record of 32 bytes no key encrypted.
    let mut forged = vec![0x17, 0x03, 0x03, 0x00, 0x20];
    forged.extend_from_slice(&[0x41; 32]);
    tcp.write_all(&forged).expect("forged record");
    drop(tcp);
    let answer = server.join().expect("the server's thread did not panic");
    assert!(matches!(answer, Ok(Accepted::Answered(200))), "{answer:?}");
}

/// A head whose lines end in a bare LF: httparse would end it at the first
/// LF LF, dropping what follows unseen; it is refused with 400 instead.
#[test]
fn bare_lf_line_ends_are_refused() {
    let (port, served) = plain_server(routes);
    let (bytes, _) = raw(
        port,
        b"GET /healthz HTTP/1.1\nHost: a\n\nGET /admin HTTP/1.1\r\nHost: a\r\n\r\n",
    );
    assert_eq!(parse(&bytes).status, 400);
    let err = failed(served);
    assert_eq!(
        err.websocket_kind(),
        Some(WebSocketErrorKind::Upgrade),
        "{err}"
    );
    assert!(err.to_string().contains("CRLF"), "{err}");
}
