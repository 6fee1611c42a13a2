//! SecureListener and BindOptions over loopback: addresses, port 0, lazy
//! handshakes that silent clients cannot stall, handshake_timeout, client
//! certificates, ALPN preference, shared, v6_only, backlog, set_context.

mod common;

use std::io::{ErrorKind, Read, Write};
use std::net::{IpAddr, Ipv4Addr, TcpStream};
use std::sync::mpsc;
use std::thread;
use std::time::Duration;

use common::{Ca, IO_TIMEOUT, Leaf, client, handshake_with, listener_with};
use securenet::{BindOptions, CertificateProblem, ConnectOptions, Error, Phase, SecureListener};

#[test]
fn bind_takes_numeric_strings_names_and_ip_addrs() {
    let pki = common::pki();
    let ctx = pki.server_context();
    let a = SecureListener::bind("127.0.0.1", 0, &ctx).expect("numeric");
    assert_ne!(a.port(), 0, "port 0 picks an ephemeral port");
    assert_eq!(a.local_addr().expect("addr").port(), a.port());
    let b = SecureListener::bind("localhost", 0, &ctx).expect("name: first lookup result");
    assert!(b.local_addr().expect("addr").ip().is_loopback());
    let c = SecureListener::bind(IpAddr::V4(Ipv4Addr::LOCALHOST), 0, &ctx).expect("IpAddr");
    assert!(c.local_addr().expect("addr").ip().is_ipv4());
    let d = SecureListener::bind(Ipv4Addr::LOCALHOST, 0, &ctx).expect("Ipv4Addr");
    assert_ne!(d.port(), c.port());
    let err = SecureListener::bind("", 0, &ctx).expect_err("empty address");
    assert!(matches!(err, Error::InvalidInput { .. }), "{err:?}");
    let err = SecureListener::bind("no such host.invalid", 0, &ctx).expect_err("bad name");
    assert!(err.to_string().contains("no such host.invalid"), "{err}");
}

#[test]
fn accept_returns_before_the_handshake_and_silent_clients_stall_nobody() {
    let pki = common::pki();
    let listener = listener_with(BindOptions::new(), &pki.server_context());
    let port = listener.port();
    // 50 clients that connect and never send a ClientHello.
    let silent: Vec<TcpStream> = (0..50)
        .map(|_| TcpStream::connect(("127.0.0.1", port)).expect("silent client"))
        .collect();
    let server = thread::spawn(move || {
        let mut workers = Vec::new();
        for _ in 0..51 {
            let (mut s, _) = listener
                .accept()
                .expect("accept returns without a handshake");
            // Thread per connection: each handshake runs in its own thread.
            workers.push(thread::spawn(move || {
                common::with_timeouts(&mut s);
                let mut b = [0u8; 2];
                if s.read_exact(&mut b).is_ok() {
                    s.write_all(&b).expect("echo");
                    let _ = s.close();
                    true
                } else {
                    false
                }
            }));
        }
        workers
    });
    let mut c = ConnectOptions::new()
        .context(pki.trust_context())
        .handshake_timeout(Duration::from_secs(5))
        .connect("localhost", port)
        .expect("a real client is served while 50 silent ones wait");
    common::with_timeouts(&mut c);
    c.write_all(b"hi").expect("write");
    let mut b = [0u8; 2];
    c.read_exact(&mut b).expect("echo");
    assert_eq!(&b, b"hi");
    drop(silent);
    let served: usize = server
        .join()
        .expect("server")
        .into_iter()
        .map(|w| usize::from(w.join().expect("worker")))
        .sum();
    assert_eq!(served, 1);
}

#[test]
fn handshake_timeout_drops_a_silent_client() {
    let pki = common::pki();
    let listener = BindOptions::new()
        .handshake_timeout(Duration::from_millis(200))
        .bind("127.0.0.1", 0, &pki.server_context())
        .expect("bind");
    let silent = TcpStream::connect(("127.0.0.1", listener.port())).expect("connect");
    let (mut s, peer) = listener.accept().expect("accept");
    assert_eq!(peer, silent.local_addr().expect("addr"));
    let err = s.handshake().expect_err("silent client");
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
    // Later calls report the failed handshake instead of hanging.
    let err = s.read(&mut [0u8; 1]).expect_err("failed stream");
    assert!(
        err.to_string().contains("earlier handshake failed"),
        "{err}"
    );
}

#[test]
fn request_client_certificate_accepts_clients_with_and_without() {
    let pki = common::pki();
    let bind = BindOptions::new().request_client_certificate(true);
    let (port, server) = common::serve_one(bind.clone(), &pki.server_context(), |mut s| {
        s.handshake().expect("no certificate is fine");
        let _ = s.read(&mut [0u8; 1]);
        s.peer_certificate()
    });
    let mut c = client(pki.trust_context())
        .connect("localhost", port)
        .expect("connect");
    c.close().expect("close");
    assert_eq!(server.join().expect("server"), None);

    let (port, server) = common::serve_one(bind, &pki.server_context(), |mut s| {
        s.handshake().expect("handshake");
        let _ = s.read(&mut [0u8; 1]);
        s.peer_certificate().map(|c| c.subject().to_owned())
    });
    let mut c = client(pki.client_context())
        .connect("localhost", port)
        .expect("connect");
    c.close().expect("close");
    assert_eq!(
        server.join().expect("server").as_deref(),
        Some("CN=securenet test client")
    );
}

#[test]
fn without_request_no_client_certificate_is_asked() {
    let pki = common::pki();
    let (port, server) = common::serve_one(BindOptions::new(), &pki.server_context(), |mut s| {
        s.handshake().expect("handshake");
        let _ = s.read(&mut [0u8; 1]);
        s.peer_certificate()
    });
    let mut c = client(pki.client_context())
        .connect("localhost", port)
        .expect("connect");
    c.close().expect("close");
    assert_eq!(server.join().expect("server"), None);
}

#[test]
fn require_client_certificate_refuses_clients_without_a_good_one() {
    let pki = common::pki();
    let bind = BindOptions::new().require_client_certificate(true);
    // No certificate: the server's error says one is required; a TLS 1.3
    // client learns it from the server's alert at its first read.
    let (port, server) =
        common::serve_one(bind.clone(), &pki.server_context(), |mut s| s.handshake());
    let mut c = client(pki.trust_context())
        .connect("localhost", port)
        .expect("connect");
    common::with_timeouts(&mut c);
    let err = server
        .join()
        .expect("server")
        .expect_err("no client certificate");
    assert!(
        matches!(
            err.certificate_problem(),
            Some(CertificateProblem::NotPresented)
        ),
        "{err:?}"
    );
    assert!(err.to_string().contains("required"), "{err}");
    let client_err = c
        .read(&mut [0u8; 1])
        .expect_err("the client sees the alert");
    assert_eq!(client_err.kind(), ErrorKind::InvalidData);
    assert!(
        client_err
            .to_string()
            .contains("requires a client certificate"),
        "{client_err}"
    );

    // A certificate from another CA.
    let other = Ca::new("another CA");
    let (cert, key) = other.leaf(&["intruder"], Leaf::ClientAuthOnly);
    let mut ctx = common::context_with(&cert, &key);
    ctx.set_trusted_certificates_bytes(pki.ca_pem().as_bytes())
        .expect("trust");
    let (_, s) = handshake_with(
        &pki.server_context(),
        bind.clone(),
        client(ctx),
        "localhost",
    );
    let err = s.expect_err("foreign client certificate");
    assert!(
        matches!(
            err.certificate_problem(),
            Some(CertificateProblem::UnknownIssuer { .. })
        ),
        "{err:?}"
    );

    // The right one.
    let (c, s) = handshake_with(
        &pki.server_context(),
        bind,
        client(pki.client_context()),
        "localhost",
    );
    c.expect("client");
    s.expect("server accepts the CA's client certificate");
}

#[test]
fn the_server_picks_the_clients_most_preferred_protocol() {
    let pki = common::pki();
    let bind = BindOptions::new().supported_protocols(&["h2", "http/1.1"]);
    let (port, server) = common::serve_one(bind, &pki.server_context(), |mut s| {
        s.handshake().expect("handshake");
        let _ = s.read(&mut [0u8; 1]);
        s.selected_protocol()
    });
    let mut c = client(pki.trust_context())
        .supported_protocols(&["http/1.1", "h2"])
        .connect("localhost", port)
        .expect("connect");
    assert_eq!(c.selected_protocol().as_deref(), Some("http/1.1"));
    c.close().expect("close");
    assert_eq!(server.join().expect("server").as_deref(), Some("http/1.1"));
}

#[test]
fn shared_listeners_split_connections_and_unshared_ones_conflict() {
    let pki = common::pki();
    let ctx = pki.server_context();
    let bind = BindOptions::new()
        .shared(true)
        .handshake_timeout(IO_TIMEOUT);
    let first = bind.bind("127.0.0.1", 0, &ctx).expect("first");
    let port = first.port();
    let second = bind
        .bind("127.0.0.1", port, &ctx)
        .expect("second, same port");
    const N: usize = 24;
    let (tx, rx) = mpsc::channel();
    let servers: Vec<_> = [first, second]
        .into_iter()
        .enumerate()
        .map(|(id, listener)| {
            let tx = tx.clone();
            thread::spawn(move || {
                loop {
                    let (mut s, _) = listener.accept().expect("accept");
                    common::with_timeouts(&mut s);
                    let mut b = [0u8; 1];
                    if s.read_exact(&mut b).is_err() || b[0] == b'q' {
                        return;
                    }
                    s.write_all(&[id as u8]).expect("answer");
                    let _ = s.close();
                    tx.send(id).expect("report");
                }
            })
        })
        .collect();
    let mut counts = [0usize; 2];
    for _ in 0..N {
        let mut c = client(pki.trust_context())
            .connect("127.0.0.1", port)
            .expect("connect");
        c.write_all(b"?").expect("write");
        let mut id = [0u8; 1];
        c.read_exact(&mut id).expect("which listener");
        counts[usize::from(id[0])] += 1;
        let _ = c.close();
    }
    assert_eq!(rx.iter().take(N).count(), N);
    assert!(
        counts[0] > 0 && counts[1] > 0,
        "the kernel spread them: {counts:?}"
    );
    // Stop both: keep connecting until each listener has been told.
    let mut stopped = 0;
    for _ in 0..1000 {
        if stopped == 2 {
            break;
        }
        // A connection the kernel queued for the listener that just quit
        // is reset: it told no one, try again.
        let Ok(mut c) = client(pki.trust_context()).connect("127.0.0.1", port) else {
            continue;
        };
        c.write_all(b"q").expect("quit");
        let mut b = [0u8; 1];
        // The answering listener quits without a reply: a truncated or clean end.
        if c.read(&mut b).map_or(true, |n| n == 0) {
            stopped += 1;
        }
    }
    assert_eq!(stopped, 2, "both listeners were told to stop");
    for s in servers {
        s.join().expect("server");
    }

    let plain = BindOptions::new()
        .bind("127.0.0.1", 0, &ctx)
        .expect("plain");
    let err = BindOptions::new()
        .bind("127.0.0.1", plain.port(), &ctx)
        .expect_err("same port without shared");
    assert_eq!(err.io_kind(), ErrorKind::AddrInUse, "{err}");
}

#[test]
fn v6_only_decides_whether_ipv4_clients_are_accepted() {
    let pki = common::pki();
    if !common::has_ipv6_loopback() {
        common::skip(
            "v6_only_decides_whether_ipv4_clients_are_accepted",
            "no IPv6",
        );
        return;
    }
    for v6_only in [true, false] {
        let listener = BindOptions::new()
            .v6_only(v6_only)
            .bind("::", 0, &pki.server_context())
            .expect("bind ::");
        let port = listener.port();
        let v4 = TcpStream::connect_timeout(&([127, 0, 0, 1], port).into(), IO_TIMEOUT);
        assert_eq!(v4.is_ok(), !v6_only, "v6_only({v6_only})");
        let v6 =
            TcpStream::connect_timeout(&(std::net::Ipv6Addr::LOCALHOST, port).into(), IO_TIMEOUT);
        assert!(v6.is_ok(), "IPv6 clients are always accepted");
    }
}

#[test]
fn backlog_bounds_the_queue_of_unaccepted_connections() {
    let pki = common::pki();
    let count_connected = |backlog: u32| {
        let listener = BindOptions::new()
            .backlog(backlog)
            .bind("127.0.0.1", 0, &pki.server_context())
            .expect("bind");
        let port = listener.port();
        // Nobody accepts: only the backlog's worth of handshakes complete.
        let conns: Vec<_> = (0..8)
            .map(|_| {
                TcpStream::connect_timeout(
                    &([127, 0, 0, 1], port).into(),
                    Duration::from_millis(300),
                )
            })
            .collect();
        conns.iter().filter(|c| c.is_ok()).count()
    };
    let small = count_connected(1);
    assert!(small < 8, "backlog(1) queued {small} of 8");
    assert_eq!(
        count_connected(0),
        8,
        "backlog(0) is the system's (large) default"
    );
}

#[test]
fn set_context_rotates_the_certificate_for_new_connections_only() {
    let old_pki = common::pki();
    let new_pki = common::pki();
    let listener = listener_with(BindOptions::new(), &old_pki.server_context());
    let port = listener.port();
    let (tx, rx) = mpsc::channel::<securenet::SecurityContext>();
    let server = thread::spawn(move || {
        let (mut first, _) = listener.accept().expect("accept");
        common::with_timeouts(&mut first);
        first.handshake().expect("first handshake");
        let new_ctx = rx.recv_timeout(IO_TIMEOUT).expect("new context");
        listener.set_context(&new_ctx).expect("rotate");
        let (mut second, _) = listener.accept().expect("accept");
        common::with_timeouts(&mut second);
        second.handshake().expect("second handshake");
        // The first connection still works after the rotation.
        first.write_all(b"1").expect("first still works");
        second.write_all(b"2").expect("second");
        let _ = first.close();
        let _ = second.close();
    });
    let mut trust_both = old_pki.trust_context();
    trust_both
        .set_trusted_certificates_bytes(new_pki.ca_pem().as_bytes())
        .expect("trust");
    let mut a = client(trust_both.clone())
        .connect("localhost", port)
        .expect("first");
    let first_cert = a.peer_certificate().expect("cert");
    tx.send(new_pki.server_context()).expect("rotate");
    let mut b = client(trust_both)
        .connect("localhost", port)
        .expect("second");
    let second_cert = b.peer_certificate().expect("cert");
    assert_ne!(
        first_cert.sha256(),
        second_cert.sha256(),
        "new connections get the new chain"
    );
    let mut x = [0u8; 1];
    a.read_exact(&mut x).expect("first");
    assert_eq!(&x, b"1");
    b.read_exact(&mut x).expect("second");
    assert_eq!(&x, b"2");
    server.join().expect("server");

    let err = SecureListener::bind("127.0.0.1", 0, &old_pki.server_context())
        .expect("bind")
        .set_context(securenet::SecurityContext::empty())
        .expect_err("a context without a certificate is refused");
    assert!(err.to_string().contains("no certificate"), "{err}");
}

#[test]
fn incoming_yields_streams() {
    let pki = common::pki();
    let listener = listener_with(BindOptions::new(), &pki.server_context());
    let port = listener.port();
    let server = thread::spawn(move || {
        for stream in listener.incoming().take(2) {
            let mut s = stream.expect("stream");
            common::with_timeouts(&mut s);
            s.write_all(b"ok").expect("write");
            let _ = s.close();
        }
    });
    for _ in 0..2 {
        let mut c = client(pki.trust_context())
            .connect("localhost", port)
            .expect("connect");
        let mut b = String::new();
        c.set_read_timeout(Some(IO_TIMEOUT)).expect("timeout");
        c.read_to_string(&mut b).expect("read");
        assert_eq!(b, "ok");
    }
    server.join().expect("server");
}

/// A session from a listener that asks for no client certificate must not be
/// resumed on a listener of the same context that requires one.
#[test]
fn sessions_do_not_cross_client_certificate_policies() {
    let pki = common::pki();
    let ctx = pki.server_context();
    let open = listener_with(BindOptions::new(), &ctx);
    let strict = listener_with(BindOptions::new().require_client_certificate(true), &ctx);
    let (open_port, strict_port) = (open.port(), strict.port());
    let open_server = thread::spawn(move || {
        let (mut s, _) = open.accept().expect("accept");
        common::with_timeouts(&mut s);
        s.write_all(b"t").expect("write");
        let _ = s.read(&mut [0u8; 1]);
    });
    let options = client(pki.trust_context());
    let mut c = options
        .connect("localhost", open_port)
        .expect("open listener");
    common::with_timeouts(&mut c);
    c.read_exact(&mut [0u8; 1])
        .expect("take the session ticket");
    c.close().expect("close");
    open_server.join().expect("server");

    let strict_server = thread::spawn(move || {
        let (mut s, _) = strict.accept().expect("accept");
        common::with_timeouts(&mut s);
        let r = s.handshake();
        (r, s.is_session_reused(), s.peer_certificate().is_some())
    });
    if let Ok(mut c) = options.connect("localhost", strict_port) {
        common::with_timeouts(&mut c);
        let _ = c.read(&mut [0u8; 1]);
    }
    let (result, reused, has_cert) = strict_server.join().expect("server");
    assert!(
        result.is_err(),
        "a client without a certificate got in (resumed: {reused}, certificate: {has_cert})"
    );
}
