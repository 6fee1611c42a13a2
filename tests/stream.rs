//! SecureStream behaviour (connection ends are in `connection_ends.rs`,
//! timeouts in `timeouts.rs`): half-close, vectored
//! writes packed into full records, TCP_NODELAY, error round trips.

mod common;

use std::io::{ErrorKind, IoSlice, Read, Write};
use std::net::TcpStream;
use std::thread;
use std::time::Duration;

use common::{client, serve_one, with_timeouts};
use securenet::{BindOptions, Error, Phase};

#[test]
fn shutdown_write_half_closes_and_reading_goes_on() {
    let pki = common::pki();
    let (port, server) = serve_one(BindOptions::new(), &pki.server_context(), |mut s| {
        let mut req = [0u8; 3];
        s.read_exact(&mut req).expect("request");
        s.write_all(b"response").expect("response");
        let mut rest = Vec::new();
        // The client's close_notify: a clean end of stream.
        s.read_to_end(&mut rest).expect("clean end");
        (req, rest.len())
    });
    let mut c = client(pki.trust_context())
        .connect("localhost", port)
        .expect("connect");
    with_timeouts(&mut c);
    c.write_all(b"req").expect("write");
    c.shutdown_write().expect("shutdown_write");
    let mut resp = String::new();
    c.read_to_string(&mut resp)
        .expect("read after shutdown_write");
    assert_eq!(resp, "response");
    assert_eq!(server.join().expect("server"), (*b"req", 0));
}

#[test]
fn allow_half_open_keeps_writing_possible_after_the_peer_closes() {
    let pki = common::pki();
    for allow in [false, true] {
        let (port, server) = serve_one(BindOptions::new(), &pki.server_context(), |mut s| {
            s.shutdown_write().expect("server shuts its side");
            let mut rest = Vec::new();
            let r = s.read_to_end(&mut rest);
            (r.is_ok(), rest)
        });
        let mut c = client(pki.trust_context())
            .allow_half_open(allow)
            .connect("localhost", port)
            .expect("connect");
        with_timeouts(&mut c);
        let mut buf = Vec::new();
        assert_eq!(c.read_to_end(&mut buf).expect("clean end"), 0);
        let wrote = c.write_all(b"after").and_then(|()| c.flush());
        let _ = c.close();
        let (clean, got) = server.join().expect("server");
        assert!(
            clean,
            "allow_half_open({allow}): the server sees a clean end"
        );
        if allow {
            wrote.expect("half-open: still writable");
            assert_eq!(got, b"after");
        } else {
            // Our close_notify answered theirs: nothing more reaches the server.
            assert!(got.is_empty(), "allow_half_open(false) sent {got:?}");
        }
    }
}

#[test]
fn write_vectored_packs_small_slices_into_full_records() {
    let pki = common::pki();
    let (port, server) = serve_one(BindOptions::new(), &pki.server_context(), |mut s| {
        let mut buf = vec![0u8; 1 + 256 * 64];
        s.read_exact(&mut buf[..1]).expect("first byte");
        s.write_all(b"!").expect("ack");
        s.read_exact(&mut buf[1..]).expect("vectored data");
        buf
    });
    let (proxy_port, recorded, proxy) = common::recording_proxy(port);
    let mut c = client(pki.trust_context())
        .connect("localhost", proxy_port)
        .expect("connect");
    with_timeouts(&mut c);
    // A round trip first, so everything of the handshake has gone through.
    c.write_all(b"x").expect("write");
    c.read_exact(&mut [0u8; 1]).expect("ack");
    let before = recorded.lock().expect("recorded").len();
    let slices: Vec<Vec<u8>> = (0..256).map(|i| vec![i as u8; 64]).collect();
    let io: Vec<IoSlice<'_>> = slices.iter().map(|s| IoSlice::new(s)).collect();
    let n = c.write_vectored(&io).expect("write_vectored");
    assert_eq!(n, 256 * 64, "all slices taken in one call");
    let got = server.join().expect("server");
    assert_eq!(&got[1..], slices.concat().as_slice());
    c.close().expect("close");
    proxy.join().expect("proxy");
    let recorded = recorded.lock().expect("recorded");
    let records = common::tls_records(&recorded[before..]);
    let data_records = records.iter().filter(|&&(t, _)| t == 23).count();
    assert!(
        data_records <= 3,
        "256 slices of 64 bytes went out as {data_records} records, not full ones"
    );
}

#[test]
fn tcp_nodelay_is_on_by_default_on_both_sides() {
    let pki = common::pki();
    let (port, server) = serve_one(BindOptions::new(), &pki.server_context(), |mut s| {
        s.handshake().expect("handshake");
        let on = s.nodelay().expect("nodelay");
        let _ = s.read(&mut [0u8; 1]);
        on
    });
    let mut c = client(pki.trust_context())
        .connect("localhost", port)
        .expect("connect");
    assert!(c.nodelay().expect("nodelay"));
    c.set_nodelay(false).expect("set");
    assert!(!c.nodelay().expect("nodelay"));
    c.close().expect("close");
    assert!(server.join().expect("server"));
}

#[test]
fn negotiated_parameters_are_reported() {
    let pki = common::pki();
    let (port, server) = serve_one(BindOptions::new(), &pki.server_context(), |mut s| {
        s.handshake().expect("handshake");
        let mut ekm = [0u8; 32];
        s.export_keying_material(&mut ekm, b"EXPORTER-test", Some(b"ctx"))
            .expect("server ekm");
        let r = (
            s.protocol_version(),
            s.cipher_suite(),
            s.peer_certificate(),
            ekm,
        );
        s.close().expect("close");
        r
    });
    let mut c = client(pki.trust_context())
        .connect("localhost", port)
        .expect("connect");
    assert_eq!(c.protocol_version().as_deref(), Some("TLSv1.3"));
    assert!(c.cipher_suite().expect("suite").starts_with("TLS13_"));
    // The default prefers the post-quantum hybrid where the provider has
    // it; ring's first default group otherwise (rustls chose X25519 up to
    // 0.23.47, secp384r1 from 0.23.48).
    let group = if cfg!(feature = "aws-lc-rs") {
        Some("X25519MLKEM768")
    } else {
        common::rustls_provider().kx_groups[0].name().as_str()
    };
    assert_eq!(c.negotiated_group().as_deref(), group);
    assert!(!c.is_session_reused());
    let chain = c.peer_certificate_chain();
    assert_eq!(chain.len(), 1);
    assert_eq!(chain[0].subject(), "CN=localhost");
    let mut a = [0u8; 32];
    c.export_keying_material(&mut a, b"EXPORTER-test", Some(b"ctx"))
        .expect("ekm");
    assert_ne!(a, [0u8; 32]);
    assert_eq!(
        c.local_addr().expect("local").ip(),
        c.peer_addr().expect("peer").ip()
    );
    let _ = c.read(&mut [0u8; 1]);
    let (version, suite, client_cert, server_ekm) = server.join().expect("server");
    assert_eq!(server_ekm, a, "both sides export the same keying material");
    let mut b = [0u8; 32];
    c.export_keying_material(&mut b, b"EXPORTER-other", None)
        .expect("ekm");
    assert_ne!(a, b, "another label, other bytes");
    assert_eq!(version.as_deref(), Some("TLSv1.3"));
    assert_eq!(suite, c.cipher_suite());
    assert!(client_cert.is_none(), "no client certificate was asked for");
}

#[test]
fn errors_round_trip_through_io_error() {
    // A server that accepts TCP (the kernel does) and never answers.
    let silent = std::net::TcpListener::bind("127.0.0.1:0").expect("bind");
    let port = silent.local_addr().expect("addr").port();
    let err = client(common::pki().trust_context())
        .handshake_timeout(Duration::from_secs(1))
        .connect("localhost", port)
        .expect_err("no answer");
    assert!(err.is_timeout(), "{err:?}");
    let io: std::io::Error = err.into();
    assert_eq!(io.kind(), ErrorKind::TimedOut);
    assert!(
        io.to_string().contains("tls handshake timed out after 1s"),
        "{io}"
    );
    match Error::from(io) {
        Error::Timeout {
            phase: Phase::Handshake,
            after,
            ..
        } => {
            assert_eq!(after, Some(Duration::from_secs(1)));
        }
        other => panic!("round trip lost the error: {other:?}"),
    }
    let plain = std::io::Error::new(ErrorKind::BrokenPipe, "pipe");
    let e = Error::from(plain);
    assert_eq!(e.io_kind(), ErrorKind::BrokenPipe);
    assert!(std::error::Error::source(&e).is_some());
}

#[test]
fn a_second_connect_from_the_same_context_resumes_the_session() {
    let pki = common::pki();
    let listener = common::listener_with(BindOptions::new(), &pki.server_context());
    let port = listener.port();
    let server = thread::spawn(move || {
        let mut reused = Vec::new();
        for _ in 0..2 {
            let (mut s, _) = listener.accept().expect("accept");
            with_timeouts(&mut s);
            s.write_all(b"hi").expect("write");
            reused.push(s.is_session_reused());
            let _ = s.read(&mut [0u8; 1]);
        }
        reused
    });
    let options = client(pki.trust_context());
    let mut reused = Vec::new();
    for _ in 0..2 {
        let mut c = options.connect("localhost", port).expect("connect");
        with_timeouts(&mut c);
        // TLS 1.3 tickets arrive after the handshake: read once to take them.
        c.read_exact(&mut [0u8; 2]).expect("read");
        reused.push(c.is_session_reused());
        c.close().expect("close");
    }
    assert_eq!(reused, [false, true]);
    assert_eq!(server.join().expect("server"), [false, true]);
}

#[test]
fn secure_runs_tls_over_any_stream_and_secure_server_takes_bytes_already_read() {
    let pki = common::pki();
    let (listener, port) = common::tcp_listener();
    let server_ctx = pki.server_context();
    let server = thread::spawn(move || {
        let (mut sock, _) = listener.accept().expect("accept");
        common::tcp_timeouts(&sock);
        // A STARTTLS-style preamble in plain text, then TLS. Read a little
        // of the ClientHello too, as a protocol sniffer would.
        let mut pre = [0u8; 9];
        sock.read_exact(&mut pre).expect("preamble");
        assert_eq!(&pre[..6], b"HELLO\n");
        let mut s = securenet::SecureStream::secure_server(
            sock,
            &server_ctx,
            &BindOptions::new(),
            &pre[6..],
        )
        .expect("secure_server");
        let mut b = [0u8; 4];
        s.read_exact(&mut b).expect("read");
        s.write_all(&b).expect("echo");
        s.close().expect("close");
    });
    let mut sock = TcpStream::connect(("127.0.0.1", port)).expect("connect");
    common::tcp_timeouts(&sock);
    sock.write_all(b"HELLO\n").expect("preamble");
    let mut c = client(pki.trust_context())
        .secure(sock, "localhost")
        .expect("secure over an existing stream");
    c.write_all(b"ping").expect("write");
    let mut b = String::new();
    c.read_to_string(&mut b).expect("read");
    assert_eq!(b, "ping");
    server.join().expect("server");
}

#[test]
fn a_session_taken_from_a_stream_resumes_a_later_connect() {
    let pki = common::pki();
    let listener = common::listener_with(BindOptions::new(), &pki.server_context());
    let port = listener.port();
    let server = thread::spawn(move || {
        for _ in 0..3 {
            let (mut s, _) = listener.accept().expect("accept");
            with_timeouts(&mut s);
            s.write_all(b"hi").expect("write");
            let _ = s.read(&mut [0u8; 1]);
        }
    });
    let options = client(pki.trust_context());
    let mut first = options.connect("localhost", port).expect("connect");
    with_timeouts(&mut first);
    first
        .read_exact(&mut [0u8; 2])
        .expect("read: takes the tickets");
    // The server sends two tickets: take both out of the cache.
    let session = first.session().expect("a session");
    assert_eq!(session.server_name(), "localhost");
    let _second_ticket = first.session().expect("a second ticket");
    first.close().expect("close");

    // Nothing left in the cache: a plain connect does a full handshake...
    let mut plain = options.connect("localhost", port).expect("connect");
    with_timeouts(&mut plain);
    assert!(!plain.is_session_reused());
    plain.read_exact(&mut [0u8; 2]).expect("read");
    // (take the tickets this connection got, so the cache is empty again)
    while plain.session().is_some() {}
    plain.close().expect("close");

    // ...while the saved session resumes.
    assert!(session.is_resumable());
    let mut resumed = options
        .clone()
        .session(session.clone())
        .connect("localhost", port)
        .expect("connect");
    with_timeouts(&mut resumed);
    assert!(
        resumed.is_session_reused(),
        "ConnectOptions::session resumed it"
    );
    assert!(
        !session.is_resumable(),
        "a TLS 1.3 ticket is spent by its use"
    );
    resumed.read_exact(&mut [0u8; 2]).expect("read");
    resumed.close().expect("close");
    server.join().expect("server");
}

#[cfg(unix)]
#[test]
fn connect_unix_runs_tls_over_a_unix_socket() {
    use std::os::unix::net::UnixListener;
    let pki = common::pki();
    let dir = std::env::temp_dir().join(format!("securenet-unix-{}", std::process::id()));
    std::fs::create_dir_all(&dir).expect("dir");
    let path = dir.join("tls.sock");
    let _ = std::fs::remove_file(&path);
    let listener = UnixListener::bind(&path).expect("bind");
    let server_ctx = pki.server_context();
    let server = thread::spawn(move || {
        let (sock, _) = listener.accept().expect("accept");
        sock.set_read_timeout(Some(common::IO_TIMEOUT))
            .expect("timeout");
        sock.set_write_timeout(Some(common::IO_TIMEOUT))
            .expect("timeout");
        let mut s =
            securenet::SecureStream::secure_server(sock, &server_ctx, &BindOptions::new(), &[])
                .expect("secure_server");
        let mut b = [0u8; 4];
        s.read_exact(&mut b).expect("read");
        s.write_all(&b).expect("echo");
        s.close().expect("close");
        s.server_name()
    });
    let mut c = client(pki.trust_context())
        .connect_unix(&path, "localhost")
        .expect("connect_unix");
    c.write_all(b"unix").expect("write");
    let mut echo = String::new();
    c.read_to_string(&mut echo).expect("read");
    assert_eq!(echo, "unix");
    assert_eq!(
        c.peer_certificate().expect("cert").subject(),
        "CN=localhost"
    );
    assert_eq!(server.join().expect("server").as_deref(), Some("localhost"));
    let _ = std::fs::remove_file(&path);

    let err = client(pki.trust_context())
        .connect_unix(dir.join("missing.sock"), "localhost")
        .expect_err("no socket");
    assert!(err.to_string().contains("missing.sock"), "{err}");
}
