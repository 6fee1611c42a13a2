//! The WebSocket client against our own server (WebSocket::accept over a
//! SecureListener or plain TCP): messages, compression, subprotocols, close
//! codes, pings, split.

mod common;

use std::net::TcpListener;
use std::thread::{self, JoinHandle};
use std::time::Duration;

use common::{IO_TIMEOUT, client};
use securenet::{
    BindOptions, CompressionOptions, Error, Message, ReadyState, WebSocket, WebSocketOptions,
};

/// A wss echo server for one connection; returns the URL and the thread.
fn wss_echo(
    server_options: WebSocketOptions,
) -> (
    String,
    securenet::testing::TestPki,
    JoinHandle<Option<(u16, String)>>,
) {
    let pki = common::pki();
    let listener = common::listener_with(BindOptions::new(), &pki.server_context());
    let url = format!("wss://localhost:{}/echo", listener.port());
    let handle = thread::spawn(move || {
        let (mut s, _) = listener.accept().expect("accept");
        common::with_timeouts(&mut s);
        let mut ws = WebSocket::accept(s, &server_options).expect("upgrade");
        loop {
            match ws.read() {
                Ok(Message::Text(t)) => ws.send_text(&t).expect("echo"),
                Ok(Message::Binary(b)) => ws.send_binary(&b).expect("echo"),
                Ok(Message::Close(c)) => return c,
                Ok(_) => {}
                Err(e) => panic!("server: {e}"),
            }
        }
    });
    (url, pki, handle)
}

fn client_options(pki: &securenet::testing::TestPki) -> WebSocketOptions {
    WebSocketOptions::new().connect_options(client(pki.trust_context()))
}

#[test]
fn messages_round_trip_with_and_without_compression() {
    for compression in [
        CompressionOptions::default(),
        CompressionOptions::disabled(),
    ] {
        let (url, pki, server) = wss_echo(WebSocketOptions::new());
        let mut ws = client_options(&pki)
            .compression(compression)
            .connect(&url)
            .expect("connect");
        assert_eq!(ws.ready_state(), ReadyState::Open);
        assert_eq!(
            ws.extensions().is_some(),
            compression.enabled,
            "permessage-deflate negotiated when offered: {:?}",
            ws.extensions()
        );
        let big: Vec<u8> = (0..1_000_000u32).map(|i| (i % 251) as u8).collect();
        let text = "héllo wörld ".repeat(1000);
        for m in [
            Message::Text("hello".into()),
            Message::Text(String::new()),
            Message::Text(text),
            Message::Binary(big),
            Message::Binary(vec![]),
        ] {
            match &m {
                Message::Text(t) => ws.send_text(t).expect("send"),
                Message::Binary(b) => ws.send_binary(b).expect("send"),
                _ => unreachable!(),
            }
            assert_eq!(ws.read().expect("echo"), m);
        }
        ws.close(Some((4001, "done here"))).expect("close");
        assert_eq!(ws.ready_state(), ReadyState::Closed);
        assert_eq!(
            server.join().expect("server"),
            Some((4001, "done here".into()))
        );
        assert_eq!(ws.close_code(), Some(4001), "the server echoed our code");
        assert!(matches!(ws.send_text("late"), Err(Error::Closed)));
        assert!(matches!(ws.read(), Err(Error::Closed)));
    }
}

#[test]
fn every_context_takeover_combination_round_trips() {
    for (client_nct, server_nct) in [(false, false), (true, false), (false, true), (true, true)] {
        let compression = CompressionOptions::default()
            .client_no_context_takeover(client_nct)
            .server_no_context_takeover(server_nct)
            .client_max_window_bits(Some(10));
        let (url, pki, server) = wss_echo(WebSocketOptions::new());
        let mut ws = client_options(&pki)
            .compression(compression)
            .connect(&url)
            .expect("connect");
        let ext = ws.extensions().expect("negotiated").to_owned();
        assert_eq!(
            ext.contains("client_no_context_takeover"),
            client_nct,
            "{ext}"
        );
        assert_eq!(
            ext.contains("server_no_context_takeover"),
            server_nct,
            "{ext}"
        );
        for i in 0..20 {
            let msg = format!("message {i} {}", "repeated text ".repeat(i));
            ws.send_text(&msg).expect("send");
            assert_eq!(ws.read().expect("echo"), Message::Text(msg));
        }
        ws.close(None).expect("close");
        assert_eq!(
            server.join().expect("server"),
            None,
            "the close the server saw"
        );
    }
}

#[test]
fn the_server_picks_the_clients_first_protocol_it_speaks() {
    let (url, pki, server) = wss_echo(WebSocketOptions::new().protocols(&["chat.v1", "chat.v3"]));
    let mut ws = client_options(&pki)
        .protocols(&["chat.v2", "chat.v1", "chat.v3"])
        .connect(&url)
        .expect("connect");
    assert_eq!(ws.protocol(), Some("chat.v1"));
    ws.close(Some((1000, ""))).expect("close");
    assert_eq!(
        server.join().expect("server"),
        Some((1000, String::new())),
        "the close the server saw"
    );

    // No common protocol: no pick, which is allowed.
    let (url, pki, server) = wss_echo(WebSocketOptions::new().protocols(&["other"]));
    let mut ws = client_options(&pki)
        .protocols(&["chat.v2"])
        .connect(&url)
        .expect("connect");
    assert_eq!(ws.protocol(), None);
    ws.close(None).expect("close");
    assert_eq!(
        server.join().expect("server"),
        None,
        "the close the server saw"
    );
}

#[test]
fn pings_are_answered_and_pongs_returned() {
    let (url, pki, server) = wss_echo(WebSocketOptions::new());
    let mut ws = client_options(&pki).connect(&url).expect("connect");
    ws.ping(b"are you there").expect("ping");
    assert_eq!(
        ws.read().expect("pong"),
        Message::Pong(b"are you there".to_vec())
    );
    let err = ws.ping(&[0u8; 126]).expect_err("too long");
    assert!(matches!(err, Error::InvalidInput { .. }));
    ws.close(None).expect("close");
    assert_eq!(
        server.join().expect("server"),
        None,
        "the close the server saw"
    );
}

#[test]
fn ping_interval_closes_with_1001_when_no_pong_comes() {
    // A server that completes the upgrade and then never reads (so never pongs).
    let listener = TcpListener::bind("127.0.0.1:0").expect("bind");
    let port = listener.local_addr().expect("addr").port();
    let (tx, rx) = std::sync::mpsc::channel::<()>();
    let server = thread::spawn(move || {
        let (s, _) = listener.accept().expect("accept");
        common::tcp_timeouts(&s);
        let ws = WebSocket::accept(s, &WebSocketOptions::new()).expect("upgrade");
        let _ = rx.recv_timeout(IO_TIMEOUT);
        drop(ws);
    });
    let mut ws = WebSocketOptions::new()
        .ping_interval(Duration::from_millis(100))
        .connect(&format!("ws://127.0.0.1:{port}/"))
        .expect("connect");
    let err = ws.read().expect_err("no pong");
    assert!(
        matches!(
            err,
            Error::WebSocket {
                close_code: Some(1001),
                ..
            }
        ),
        "{err:?}"
    );
    assert_eq!(ws.ready_state(), ReadyState::Closed);
    tx.send(()).expect("release");
    server.join().expect("server");
}

#[test]
fn split_reads_in_one_thread_while_another_sends() {
    let (url, pki, server) = wss_echo(WebSocketOptions::new());
    let ws = client_options(&pki).connect(&url).expect("connect");
    let (mut reader, mut writer) = ws.split().expect("split");
    let reading = thread::spawn(move || {
        let mut got = Vec::new();
        loop {
            match reader.read().expect("read") {
                Message::Text(t) => got.push(t),
                Message::Close(c) => return (got, c),
                _ => {}
            }
        }
    });
    for i in 0..100 {
        writer.send_text(&format!("m{i}")).expect("send");
    }
    writer.close(Some((1000, "all sent"))).expect("close");
    let (got, close) = reading.join().expect("reader");
    assert_eq!(got.len(), 100);
    assert_eq!(got[99], "m99");
    assert_eq!(
        close,
        Some((1000, String::new())),
        "the server echoed our close code"
    );
    assert_eq!(
        server.join().expect("server"),
        Some((1000, "all sent".to_owned())),
        "the close the server saw"
    );
}

#[test]
fn bad_input_is_refused_before_any_io() {
    for (url, what) in [
        ("http://localhost/", "ws:// or wss://"),
        ("wss:///nohost", "no host"),
        ("ws://localhost:70000/", "port"),
    ] {
        let err = WebSocket::connect(url).expect_err(url);
        assert!(matches!(err, Error::InvalidInput { .. }), "{url}: {err:?}");
        assert!(err.to_string().contains(what), "{url}: {err}");
    }
    let err = WebSocketOptions::new()
        .header("Bad Header", "x")
        .connect("ws://127.0.0.1:1/")
        .expect_err("bad name");
    assert!(err.to_string().contains("Bad Header"), "{err}");
    let err = WebSocketOptions::new()
        .header("X-Ok", "line\r\nbreak")
        .connect("ws://127.0.0.1:1/")
        .expect_err("bad value");
    assert!(matches!(err, Error::InvalidInput { .. }), "{err:?}");
    let err = WebSocketOptions::new()
        .protocols(&["has space"])
        .connect("ws://127.0.0.1:1/")
        .expect_err("bad protocol");
    assert!(matches!(err, Error::InvalidInput { .. }), "{err:?}");
    let err = WebSocketOptions::new()
        .compression(CompressionOptions::default().client_max_window_bits(Some(16)))
        .connect("ws://127.0.0.1:1/")
        .expect_err("bad window");
    assert!(err.to_string().contains("8 to 15"), "{err}");
}

#[test]
fn close_codes_are_checked() {
    let (url, pki, server) = wss_echo(WebSocketOptions::new());
    let mut ws = client_options(&pki).connect(&url).expect("connect");
    for code in [999u16, 1005, 1006, 2000, 5000] {
        let err = ws.close(Some((code, ""))).expect_err("invalid code");
        assert!(matches!(err, Error::InvalidInput { .. }), "{code}: {err:?}");
    }
    let long = "x".repeat(124);
    assert!(
        ws.close(Some((1000, &long))).is_err(),
        "reason over 123 bytes"
    );
    assert_eq!(ws.ready_state(), ReadyState::Open, "nothing was sent");
    ws.close(Some((1000, "ok"))).expect("close");
    assert_eq!(
        server.join().expect("server"),
        Some((1000, "ok".to_owned())),
        "the close the server saw"
    );
}
