//! Client connections through an `https://` proxy: TLS to the proxy,
//! verified for the proxy's own name, the CONNECT inside it, and the
//! target's TLS (or a plain `ws://` WebSocket) inside the tunnel. Bulk data
//! both ways through a split stream, failures named for the proxy, and one
//! deadline over the proxy phase.

mod common;

use std::io::{Read, Write};
use std::thread;
use std::time::{Duration, Instant};

use common::proxy::{ProxyRules, assert_proxy_timeout, http_proxy, https_proxy, https_proxy_with};
use common::{Ca, IO_TIMEOUT, Leaf, client, serve_one, tcp_listener, unused_port};
use securenet::{
    BindOptions, CertificateProblem, Error, Message, Proxy, SecureStream, WebSocket,
    WebSocketOptions, WsStream,
};

/// The target's certificate names `target.test` (reached as `localhost`
/// with `server_name`); the proxy's names `localhost` only.
struct Setup {
    ca: Ca,
    target: securenet::SecurityContext,
    proxy: securenet::SecurityContext,
}

fn setup() -> Setup {
    let ca = Ca::new("test root");
    Setup {
        target: ca.server_context(&["target.test"], Leaf::Good),
        proxy: ca.server_context(&["localhost"], Leaf::Good),
        ca,
    }
}

fn proxy_url(port: u16) -> Proxy {
    Proxy::http(&format!("https://user:s3cret@localhost:{port}")).expect("proxy")
}

#[test]
fn tls_goes_through_an_https_proxy_each_hop_verified_for_its_own_name() {
    let s = setup();
    // The target echoes until the client ends, then ends too.
    let (port, server) = serve_one(BindOptions::new(), &s.target, |mut t| {
        t.handshake()?;
        let sni = t.server_name();
        let mut buf = vec![0u8; 64 * 1024];
        let mut echoed = 0usize;
        loop {
            let n = t.read(&mut buf)?;
            if n == 0 {
                return Ok::<_, Error>((sni, echoed));
            }
            t.write_all(&buf[..n])?;
            echoed += n;
        }
    });
    let rules = ProxyRules {
        auth: Some(("user".into(), "s3cret".into())),
        ..ProxyRules::default()
    };
    let (proxy_port, seen) = https_proxy(&s.proxy, rules, 1);
    let stream = client(s.ca.trust())
        .server_name("target.test")
        .supported_protocols(&["h2"])
        .proxy(proxy_url(proxy_port))
        .connect("localhost", port)
        .expect("connect through the https proxy");
    assert_eq!(
        stream.peer_certificate().expect("cert").subject(),
        "CN=target.test"
    );
    assert_eq!(stream.peer_addr().expect("peer").port(), proxy_port);

    // 3 MiB both ways, the reader and writer on their own threads: records
    // of both TLS layers cut across reads of every size.
    let data: Vec<u8> = (0..3 * 1024 * 1024u32).map(|i| (i % 251) as u8).collect();
    let (mut reader, mut writer) = stream.split().expect("split");
    reader.set_read_timeout(Some(IO_TIMEOUT)).expect("timeout");
    writer.set_write_timeout(Some(IO_TIMEOUT)).expect("timeout");
    let sent = data.clone();
    let sending = thread::spawn(move || -> securenet::Result<()> {
        for chunk in sent.chunks(10_000) {
            writer.write_all(chunk)?;
        }
        writer.shutdown_write()
    });
    let mut got = Vec::new();
    reader.read_to_end(&mut got).expect("read to the clean end");
    sending.join().expect("writer").expect("write");
    assert_eq!(got.len(), data.len());
    assert!(got == data, "the bytes came back changed");
    let (sni, echoed) = server.join().expect("server").expect("target side");
    assert_eq!((sni.as_deref(), echoed), (Some("target.test"), data.len()));

    let seen = seen.lock().expect("seen").clone();
    assert_eq!(seen[0], "sni:localhost", "{seen:?}");
    assert_eq!(
        seen[1], "alpn:http/1.1",
        "the target's ALPN is not the proxy's"
    );
    assert!(
        seen[2].starts_with(&format!("CONNECT localhost:{port} ")),
        "{seen:?}"
    );
    assert_eq!(seen[3], "auth:ok");
}

#[test]
fn the_proxys_certificate_is_verified_and_a_failure_names_the_proxy() {
    let s = setup();
    let other = Ca::new("not trusted");
    for (proxy_ctx, want) in [
        (
            other.server_context(&["localhost"], Leaf::Good),
            "untrusted",
        ),
        (s.ca.server_context(&["proxy.test"], Leaf::Good), "name"),
    ] {
        let (proxy_port, seen) = https_proxy(&proxy_ctx, ProxyRules::default(), 1);
        // Settings for the target never relax the proxy's check.
        let err = client(s.ca.trust())
            .reject_unauthorized(false)
            .proxy(proxy_url(proxy_port))
            .connect("localhost", unused_port())
            .expect_err("the proxy's certificate must be refused");
        let text = err.to_string();
        assert!(!text.contains("s3cret"), "{text}");
        match &err {
            Error::Proxy { proxy, reason, .. } => {
                assert_eq!(*proxy, format!("https://localhost:{proxy_port}"));
                assert!(reason.contains("TLS handshake with the proxy"), "{reason}");
                // Trust advice for an untrusted proxy only, not a misnamed one.
                assert_eq!(
                    reason.contains("proxy_context"),
                    want == "untrusted",
                    "the advice: {reason}"
                );
            }
            other => panic!("{want}: not a proxy error: {other:?}"),
        }
        let io = std::io::Error::from(err);
        assert_eq!(io.kind(), std::io::ErrorKind::InvalidData, "{want}");
        let Error::Proxy {
            source: Some(source),
            ..
        } = Error::from(io)
        else {
            panic!("{want}: the round trip lost the error");
        };
        let cause = Error::from(source);
        let problem = match &cause {
            Error::Certificate { problem, .. } => problem,
            other => panic!("{want}: the cause is not a certificate error: {other:?}"),
        };
        match want {
            "untrusted" => assert!(
                matches!(problem, CertificateProblem::UnknownIssuer { .. }),
                "{problem:?}"
            ),
            _ => assert!(
                matches!(problem, CertificateProblem::NameMismatch { .. }),
                "{problem:?}"
            ),
        }
        assert!(seen.lock().expect("seen").is_empty(), "no CONNECT was sent");
    }
}

#[test]
fn a_stalled_https_proxy_times_out_in_the_proxy_phase() {
    let s = setup();
    let limit = Duration::from_millis(400);
    // One that never answers the ClientHello, and one that completes TLS
    // and never answers the CONNECT: one deadline covers both steps.
    let (silent_tcp, tcp_port) = tcp_listener();
    let (silent_port, _) = https_proxy(
        &s.proxy,
        ProxyRules {
            silent: true,
            ..ProxyRules::default()
        },
        1,
    );
    for port in [tcp_port, silent_port] {
        let started = Instant::now();
        let err = client(s.ca.trust())
            .handshake_timeout(limit)
            .proxy(proxy_url(port))
            .connect("localhost", unused_port())
            .expect_err("the proxy must time out");
        let took = started.elapsed();
        assert_proxy_timeout(&err, took, limit);
        assert!(took >= limit, "gave up early: {took:?}");
    }
    drop(silent_tcp);
}

#[test]
fn ws_and_wss_go_through_an_https_proxy() {
    let s = setup();
    // ws://: the only TLS is the proxy's.
    let (listener, port) = tcp_listener();
    let server = thread::spawn(move || -> securenet::Result<()> {
        let (tcp, _) = listener.accept().expect("accept");
        common::tcp_timeouts(&tcp);
        let mut ws = WebSocket::accept(tcp, &WebSocketOptions::new())?;
        if let Message::Text(t) = ws.read()? {
            ws.send_text(&t)?;
        }
        let _ = ws.read();
        Ok(())
    });
    let (proxy_port, seen) = https_proxy(&s.proxy, ProxyRules::default(), 2);
    let options =
        WebSocketOptions::new().connect_options(client(s.ca.trust()).proxy(proxy_url(proxy_port)));
    let mut ws = options
        .connect(&format!("ws://localhost:{port}/"))
        .expect("ws through the https proxy");
    ws.set_read_timeout(Some(IO_TIMEOUT)).expect("timeout");
    match ws.get_ref() {
        WsStream::ProxyTls(tls) => {
            let proxy_cert = tls.peer_certificate().expect("cert");
            assert_eq!(proxy_cert.subject(), "CN=localhost");
        }
        other => panic!("not through the proxy's TLS: {other:?}"),
    }
    assert!(ws.get_ref().tls().is_none(), "ws:// has no TLS of its own");
    ws.send_text("plain inside").expect("send");
    assert_eq!(
        ws.read().expect("read"),
        Message::Text("plain inside".into())
    );
    let _ = ws.close(None);
    server.join().expect("server").expect("server side");

    // wss://: the target's TLS inside the proxy's.
    let (port, server) = serve_one(BindOptions::new(), &s.target, |stream: SecureStream| {
        let mut ws = WebSocket::accept(stream, &WebSocketOptions::new())?;
        if let Message::Text(t) = ws.read()? {
            ws.send_text(&t)?;
        }
        ws.close(None)
    });
    let options = WebSocketOptions::new().connect_options(
        client(s.ca.trust())
            .server_name("target.test")
            .proxy(proxy_url(proxy_port)),
    );
    let mut ws = options
        .connect(&format!("wss://localhost:{port}/"))
        .expect("wss through the https proxy");
    ws.set_read_timeout(Some(IO_TIMEOUT)).expect("timeout");
    let tls = ws.get_ref().tls().expect("wss");
    assert_eq!(
        tls.peer_certificate().expect("cert").subject(),
        "CN=target.test"
    );
    ws.send_text("inside both").expect("send");
    assert_eq!(
        ws.read().expect("read"),
        Message::Text("inside both".into())
    );
    let _ = ws.close(None);
    server.join().expect("server").expect("server side");
    let seen = seen.lock().expect("seen").clone();
    assert_eq!(
        seen.iter().filter(|l| *l == "sni:localhost").count(),
        2,
        "{seen:?}"
    );
}

#[test]
fn a_proxy_that_breaks_its_own_tls_inside_the_tunnel_is_named() {
    // A record no key opens, sent straight onto the socket: while the
    // client waits for the CONNECT answer, or after the tunnel is open and
    // the target's ClientHello has come through it.
    for after_connect in [false, true] {
        let s = setup();
        let listener = BindOptions::new()
            .handshake_timeout(IO_TIMEOUT)
            .bind("127.0.0.1", 0, &s.proxy)
            .expect("bind");
        let proxy_port = listener.port();
        let fake = thread::spawn(move || {
            let (mut p, _) = listener.accept().expect("accept");
            common::with_timeouts(&mut p);
            let mut head = Vec::new();
            let mut b = [0u8; 1];
            while !head.ends_with(b"\r\n\r\n") {
                p.read_exact(&mut b).expect("head");
                head.push(b[0]);
            }
            let mut forged = vec![0x17, 0x03, 0x03, 0x00, 0x20];
            forged.extend_from_slice(&[0x5a; 0x20]);
            if after_connect {
                p.write_all(b"HTTP/1.1 200 OK\r\n\r\n").expect("answer");
                // The target's ClientHello, inside the proxy's TLS.
                let n = p.read(&mut [0u8; 512]).expect("client hello");
                assert!(n > 0, "the client sent its ClientHello through the tunnel");
            }
            p.get_mut().write_all(&forged).expect("forged");
            let mut rest = Vec::new();
            let _ = p.get_mut().read_to_end(&mut rest);
        });
        let err = client(s.ca.trust())
            .server_name("target.test")
            .proxy(proxy_url(proxy_port))
            .connect("localhost", unused_port())
            .expect_err("a forged record must fail the connect");
        match &err {
            Error::Proxy { proxy, reason, .. } => {
                assert_eq!(*proxy, format!("https://localhost:{proxy_port}"));
                assert!(
                    reason.contains("TLS connection to the proxy failed"),
                    "after CONNECT {after_connect}: {reason}"
                );
            }
            other => panic!("after CONNECT {after_connect}: not named for the proxy: {other:?}"),
        }
        assert_eq!(
            std::io::Error::from(err).kind(),
            std::io::ErrorKind::InvalidData
        );
        fake.join().expect("fake proxy");
    }
}

#[test]
fn a_whole_stream_goes_both_ways_through_an_https_proxy_and_closes() {
    let s = setup();
    let (port, server) = common::echo_server(&s.target);
    let (proxy_port, _) = https_proxy(&s.proxy, ProxyRules::default(), 1);
    let mut stream = client(s.ca.trust())
        .server_name("target.test")
        .proxy(proxy_url(proxy_port))
        .connect("localhost", port)
        .expect("connect");
    common::with_timeouts(&mut stream);
    let data: Vec<u8> = (0..100_000u32).map(|i| (i % 241) as u8).collect();
    stream.write_all(&data).expect("write");
    let mut back = vec![0u8; data.len()];
    stream.read_exact(&mut back).expect("read");
    assert!(back == data, "the bytes came back changed");
    stream.close().expect("close");
    server
        .join()
        .expect("server")
        .expect("the target saw a clean end");
}

/// A proxy with its own CA (a corporate one) is trusted through
/// `proxy_context` for the proxy alone: the target is verified against
/// `context`, and a target certificate from the proxy's CA is refused.
/// The proxy context's certificate is what the proxy gets when it asks.
#[test]
fn a_proxy_context_is_trusted_for_the_proxy_alone() {
    let target_ca = Ca::new("target root");
    let proxy_ca = Ca::new("corporate proxy root");
    let (port, server) = serve_one(
        BindOptions::new(),
        &target_ca.server_context(&["localhost"], Leaf::Good),
        |mut t| {
            let mut buf = [0u8; 4];
            t.read_exact(&mut buf)?;
            t.write_all(&buf)?;
            t.close()
        },
    );
    // The same name, from the proxy's CA: what a target must not pass with.
    let (mitm_port, mitm) = serve_one(
        BindOptions::new(),
        &proxy_ca.server_context(&["localhost"], Leaf::Good),
        |mut t| t.handshake(),
    );
    // The proxy asks for a client certificate from its own CA.
    let mut proxy_ctx = proxy_ca.server_context(&["localhost"], Leaf::Good);
    proxy_ctx
        .set_trusted_certificates_bytes(proxy_ca.pem().as_bytes())
        .expect("client trust");
    let (proxy_port, seen) = https_proxy_with(
        BindOptions::new().require_client_certificate(true),
        &proxy_ctx,
        ProxyRules::default(),
        2,
    );
    let (cert, key) = proxy_ca.leaf(&["employee"], Leaf::ClientAuthOnly);
    let mut to_proxy = common::context_with(&cert, &key);
    to_proxy
        .set_trusted_certificates_bytes(proxy_ca.pem().as_bytes())
        .expect("proxy trust");
    let options = client(target_ca.trust())
        .proxy(Proxy::http(&format!("https://localhost:{proxy_port}")).expect("proxy"))
        .proxy_context(to_proxy);

    let mut stream = options
        .connect("localhost", port)
        .expect("both hops trusted");
    stream.write_all(b"ping").expect("write");
    let mut back = [0u8; 4];
    stream.read_exact(&mut back).expect("read");
    assert_eq!(&back, b"ping");
    server.join().expect("target").expect("target side");
    assert_eq!(
        stream.peer_certificate().expect("cert").issuer(),
        "CN=target root"
    );

    let err = options
        .connect("localhost", mitm_port)
        .expect_err("the proxy's CA must not vouch for a target");
    match &err {
        Error::Certificate { problem, .. } => assert!(
            matches!(problem, CertificateProblem::UnknownIssuer { .. }),
            "{problem:?}"
        ),
        other => panic!("not the target's certificate error: {other:?}"),
    }
    assert!(mitm.join().expect("mitm").is_err(), "the client refused it");
    let seen = seen.lock().expect("seen").clone();
    let clients = seen.iter().filter(|l| *l == "client:CN=employee").count();
    assert_eq!(clients, 2, "{seen:?}");
}

/// A `proxy_context` that no connection can use is an error, not ignored.
#[test]
fn a_proxy_context_without_an_https_proxy_is_refused() {
    let (http_port, seen) = http_proxy(ProxyRules::default(), 1);
    let ca = Ca::new("some root");
    let cases = [
        ("no proxy", client(ca.trust())),
        (
            "http proxy",
            client(ca.trust())
                .proxy(Proxy::http(&format!("http://127.0.0.1:{http_port}")).expect("proxy")),
        ),
    ];
    for (case, options) in cases {
        let err = options
            .proxy_context(ca.trust())
            .connect("localhost", unused_port())
            .expect_err(case);
        match &err {
            Error::InvalidInput { input, reason, .. } => {
                assert_eq!(input, "ConnectOptions::proxy_context", "{case}");
                assert!(reason.contains("https:// proxy"), "{case}: {reason}");
            }
            other => panic!("{case}: {other:?}"),
        }
        let io = std::io::Error::from(err);
        assert_eq!(io.kind(), std::io::ErrorKind::InvalidInput, "{case}");
    }
    let ws = WebSocketOptions::new()
        .connect_options(client(ca.trust()).proxy_context(ca.trust()))
        .connect(&format!("ws://127.0.0.1:{}/", unused_port()));
    assert!(
        matches!(ws, Err(Error::InvalidInput { .. })),
        "{:?}",
        ws.err()
    );
    assert!(seen.lock().expect("seen").is_empty(), "nothing was sent");
}
