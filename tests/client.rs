//! ConnectOptions, end to end over loopback: SNI, IP verification,
//! on_bad_certificate, key_log, ALPN, timeouts, server_name, sni(false),
//! reject_unauthorized, check_server_identity.

mod common;

use std::io::{ErrorKind, Read, Write};
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use common::{Ca, IO_TIMEOUT, Leaf, client, handshake_with, serve_one};
use securenet::{
    BindOptions, CertificateProblem, ConnectOptions, Error, Phase, SecureStream, SecurityContext,
};

/// The SNI the server saw when the client connected to `host` with `options`.
fn sni_seen(options: ConnectOptions, host: &str) -> Option<String> {
    let pki = common::pki();
    let (port, server) = serve_one(BindOptions::new(), &pki.server_context(), |mut s| {
        s.handshake().expect("server handshake");
        s.server_name()
    });
    let mut c = options
        .context(pki.client_context())
        .timeout(IO_TIMEOUT)
        .connect(host, port)
        .expect("connect");
    c.close().expect("close");
    server.join().expect("server")
}

#[test]
fn sni_is_sent_for_names_and_never_for_ip_literals() {
    assert_eq!(
        sni_seen(ConnectOptions::new(), "localhost").as_deref(),
        Some("localhost")
    );
    assert_eq!(sni_seen(ConnectOptions::new(), "127.0.0.1"), None);
    assert_eq!(
        sni_seen(ConnectOptions::new().sni(false), "localhost"),
        None
    );
}

#[test]
fn server_name_sets_sni_and_the_name_checked() {
    let pki = securenet::testing::TestPki::new(&["api.example.test"]).expect("pki");
    let (port, server) = serve_one(BindOptions::new(), &pki.server_context(), |mut s| {
        s.handshake().expect("server handshake");
        s.server_name()
    });
    let mut c = client(pki.trust_context())
        .server_name("api.example.test")
        .connect("127.0.0.1", port)
        .expect("connect with server_name");
    assert_eq!(c.server_name().as_deref(), Some("api.example.test"));
    c.close().expect("close");
    assert_eq!(
        server.join().expect("server").as_deref(),
        Some("api.example.test")
    );

    // Without server_name the IP is checked, and this certificate has no IP SAN.
    let (c, _) = handshake_with(
        &pki.server_context(),
        BindOptions::new(),
        client(pki.trust_context()),
        "127.0.0.1",
    );
    match c.expect_err("the certificate names no IP") {
        Error::Certificate {
            problem:
                CertificateProblem::NameMismatch {
                    expected,
                    presented,
                    ..
                },
            ..
        } => {
            assert_eq!(expected, "127.0.0.1");
            assert_eq!(presented, vec!["DNS:api.example.test"]);
        }
        other => panic!("expected a name mismatch, got {other:?}"),
    }
}

#[test]
fn ip_literals_are_checked_against_ip_sans() {
    let pki = securenet::testing::TestPki::new(&["127.0.0.1"]).expect("pki");
    let (c, s) = handshake_with(
        &pki.server_context(),
        BindOptions::new(),
        client(pki.trust_context()),
        "127.0.0.1",
    );
    c.expect("127.0.0.1 matches its IP SAN");
    s.expect("server");
    // "localhost" is not in the certificate.
    let (c, _) = handshake_with(
        &pki.server_context(),
        BindOptions::new(),
        client(pki.trust_context()),
        "localhost",
    );
    let err = c.expect_err("localhost is not an IP SAN");
    assert!(
        matches!(
            err.certificate_problem(),
            Some(CertificateProblem::NameMismatch { .. })
        ),
        "{err}"
    );
}

#[test]
fn on_bad_certificate_is_asked_only_on_failure_and_decides() {
    let ca = Ca::new("untrusted CA");
    let bad_server = ca.server_context(&["localhost"], Leaf::Good);
    let calls = Arc::new(AtomicUsize::new(0));

    // Untrusted: asked with the leaf; `true` connects.
    let seen = Arc::new(Mutex::new(None));
    let (c2, s2) = (calls.clone(), seen.clone());
    let (c, s) = handshake_with(
        &bad_server,
        BindOptions::new(),
        client(SecurityContext::empty()).on_bad_certificate(move |cert| {
            c2.fetch_add(1, Ordering::SeqCst);
            *s2.lock().expect("seen") = Some(cert.subject().to_owned());
            true
        }),
        "localhost",
    );
    let stream = c.expect("on_bad_certificate said yes");
    s.expect("server");
    assert_eq!(calls.load(Ordering::SeqCst), 1);
    assert_eq!(seen.lock().expect("seen").as_deref(), Some("CN=localhost"));
    let why = stream
        .authorization_error()
        .expect("the failure is reported")
        .to_string();
    assert!(why.contains("chain"), "{why}");

    // `false`: the connect fails with the verification error.
    let (c, _) = handshake_with(
        &bad_server,
        BindOptions::new(),
        client(SecurityContext::empty()).on_bad_certificate(|_| false),
        "localhost",
    );
    let err = c.expect_err("on_bad_certificate said no");
    assert_eq!(err.io_kind(), ErrorKind::InvalidData);
    assert!(matches!(err, Error::Certificate { .. }), "{err:?}");

    // A good certificate never asks.
    let pki = common::pki();
    let calls = Arc::new(AtomicUsize::new(0));
    let c2 = calls.clone();
    let (c, _) = handshake_with(
        &pki.server_context(),
        BindOptions::new(),
        client(pki.trust_context()).on_bad_certificate(move |_| {
            c2.fetch_add(1, Ordering::SeqCst);
            false
        }),
        "localhost",
    );
    let stream = c.expect("good certificate");
    assert_eq!(calls.load(Ordering::SeqCst), 0);
    assert_eq!(stream.authorization_error(), None);
}

#[test]
fn without_a_callback_an_untrusted_certificate_fails_with_its_reason() {
    let (cert, key) = common::self_signed(&["localhost"]);
    let (c, _) = handshake_with(
        &common::context_with(&cert, &key),
        BindOptions::new(),
        client(SecurityContext::empty()),
        "localhost",
    );
    let err = c.expect_err("self-signed");
    assert!(
        matches!(
            err.certificate_problem(),
            Some(CertificateProblem::SelfSigned { .. })
        ),
        "{err:?}"
    );
    assert!(err.to_string().contains("self-signed"), "{err}");
}

#[test]
fn key_log_receives_every_secret_as_nss_lines() {
    let pki = common::pki();
    let lines = Arc::new(Mutex::new(Vec::<String>::new()));
    let l2 = lines.clone();
    let (c, s) = handshake_with(
        &pki.server_context(),
        BindOptions::new(),
        client(pki.trust_context())
            .key_log(move |line| l2.lock().expect("lines").push(line.into())),
        "localhost",
    );
    let stream = c.expect("connect");
    s.expect("server");
    assert_eq!(stream.protocol_version().as_deref(), Some("TLSv1.3"));
    let lines = lines.lock().expect("lines");
    let mut labels: Vec<&str> = lines
        .iter()
        .map(|l| l.split(' ').next().unwrap_or(""))
        .collect();
    labels.sort_unstable();
    assert_eq!(
        labels,
        [
            "CLIENT_HANDSHAKE_TRAFFIC_SECRET",
            "CLIENT_TRAFFIC_SECRET_0",
            "EXPORTER_SECRET",
            "SERVER_HANDSHAKE_TRAFFIC_SECRET",
            "SERVER_TRAFFIC_SECRET_0"
        ]
    );
    for line in lines.iter() {
        let parts: Vec<&str> = line.split(' ').collect();
        assert_eq!(parts.len(), 3, "{line}");
        assert_eq!(parts[1].len(), 64, "client random is 32 bytes hex: {line}");
        assert!(
            parts[1..]
                .iter()
                .all(|p| p.bytes().all(|b| b.is_ascii_hexdigit()))
        );
    }
}

#[test]
fn alpn_is_negotiated_and_no_overlap_is_a_clear_error() {
    let pki = common::pki();
    let bind = || BindOptions::new().supported_protocols(&["h2", "http/1.1"]);
    let (c, _) = handshake_with(
        &pki.server_context(),
        bind(),
        client(pki.trust_context()).supported_protocols(&["h2"]),
        "localhost",
    );
    assert_eq!(c.expect("alpn").selected_protocol().as_deref(), Some("h2"));

    let (c, s) = handshake_with(
        &pki.server_context(),
        bind(),
        client(pki.trust_context()).supported_protocols(&["spdy/3"]),
        "localhost",
    );
    let err = c.expect_err("no common protocol");
    assert!(matches!(err, Error::Handshake { .. }), "{err:?}");
    assert!(err.to_string().contains("application protocol"), "{err}");
    let err = s.expect_err("the server fails too");
    assert!(err.to_string().contains("ALPN"), "{err}");

    // No ALPN offered: none selected.
    let (c, _) = handshake_with(
        &pki.server_context(),
        bind(),
        client(pki.trust_context()),
        "localhost",
    );
    assert_eq!(c.expect("no alpn").selected_protocol(), None);

    let err = client(pki.trust_context())
        .supported_protocols(&[""])
        .connect("localhost", 1)
        .expect_err("empty protocol name");
    assert!(matches!(err, Error::InvalidInput { .. }), "{err:?}");
}

#[test]
fn handshake_timeout_bounds_a_silent_server() {
    let (listener, port) = common::tcp_listener();
    let (tx, rx) = std::sync::mpsc::channel::<()>();
    let server = std::thread::spawn(move || {
        let (_sock, _) = listener.accept().expect("accept");
        // Say nothing until the client has given up.
        let _ = rx.recv_timeout(IO_TIMEOUT);
    });
    let err = ConnectOptions::new()
        .context(SecurityContext::empty())
        .handshake_timeout(Duration::from_millis(300))
        .connect("127.0.0.1", port)
        .expect_err("silent server");
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
    assert_eq!(std::io::Error::from(err).kind(), ErrorKind::TimedOut);
    tx.send(()).expect("release server");
    server.join().expect("server");
}

#[test]
fn reject_unauthorized_false_connects_and_reports_why() {
    let ca = Ca::new("other CA");
    let server_ctx = ca.server_context(&["localhost"], Leaf::Expired);
    let (c, s) = handshake_with(
        &server_ctx,
        BindOptions::new(),
        client(common::pki().trust_context()).reject_unauthorized(false),
        "localhost",
    );
    let stream = c.expect("connects anyway");
    s.expect("server");
    let why = stream.authorization_error().expect("reported").to_string();
    assert!(why.contains("expired"), "{why}");
    assert_eq!(
        stream
            .peer_certificate()
            .map(|c| c.subject().to_owned())
            .as_deref(),
        Some("CN=localhost")
    );

    // The default rejects the same server.
    let (c, _) = handshake_with(
        &server_ctx,
        BindOptions::new(),
        client(common::pki().trust_context()),
        "localhost",
    );
    assert!(matches!(c, Err(Error::Certificate { .. })));
}

#[test]
fn check_server_identity_replaces_only_the_name_check() {
    let pki = securenet::testing::TestPki::new(&["service.internal"]).expect("pki");
    let names = Arc::new(Mutex::new(Vec::new()));
    let n2 = names.clone();
    // The name does not match, the callback accepts: connects.
    let (c, _) = handshake_with(
        &pki.server_context(),
        BindOptions::new(),
        client(pki.trust_context()).check_server_identity(move |name, cert| {
            n2.lock().expect("names").push(name.to_owned());
            if cert
                .subject_alt_names()
                .iter()
                .any(|n| n == "service.internal")
            {
                Ok(())
            } else {
                Err("not our service".into())
            }
        }),
        "localhost",
    );
    c.expect("identity accepted by the callback");
    assert_eq!(*names.lock().expect("names"), ["localhost"]);

    // The callback rejects a certificate whose name would match.
    let (c, _) = handshake_with(
        &pki.server_context(),
        BindOptions::new(),
        client(pki.trust_context())
            .server_name("service.internal")
            .check_server_identity(|_, _| Err("pinned to another key".into())),
        "localhost",
    );
    let err = c.expect_err("callback rejects");
    assert!(err.to_string().contains("pinned to another key"), "{err}");

    // The chain is still verified: an untrusted server fails even though the
    // callback would accept anything.
    let other = Ca::new("untrusted");
    let (c, _) = handshake_with(
        &other.server_context(&["localhost"], Leaf::Good),
        BindOptions::new(),
        client(pki.trust_context()).check_server_identity(|_, _| Ok(())),
        "localhost",
    );
    let err = c.expect_err("chain still verified");
    assert!(
        matches!(
            err.certificate_problem(),
            Some(CertificateProblem::UnknownIssuer { .. })
        ),
        "{err:?}"
    );
}

#[test]
fn connect_errors_name_the_real_cause() {
    // A port with nothing listening: the refusal, naming the address.
    let (listener, port) = common::tcp_listener();
    drop(listener);
    let err = ConnectOptions::new()
        .connect("127.0.0.1", port)
        .expect_err("refused");
    assert_eq!(err.io_kind(), ErrorKind::ConnectionRefused);
    assert!(
        err.to_string().contains(&format!("127.0.0.1:{port}")),
        "{err}"
    );

    let err = ConnectOptions::new()
        .connect("localhost", 0)
        .expect_err("port 0");
    assert!(matches!(err, Error::InvalidInput { .. }), "{err:?}");
    let err = ConnectOptions::new()
        .connect("bad host name", 443)
        .expect_err("bad host");
    assert!(matches!(err, Error::InvalidInput { .. }), "{err:?}");
    let err = ConnectOptions::new()
        .connect("", 443)
        .expect_err("empty host");
    assert!(matches!(err, Error::InvalidInput { .. }), "{err:?}");
}

#[test]
fn ipv6_literals_with_and_without_brackets() {
    let pki = common::pki();
    if !common::has_ipv6_loopback() {
        common::skip(
            "ipv6_literals_with_and_without_brackets",
            "no IPv6 loopback",
        );
        return;
    }
    let listener = BindOptions::new()
        .bind("::1", 0, &pki.server_context())
        .expect("bind ::1");
    let port = listener.port();
    let server = std::thread::spawn(move || {
        for _ in 0..2 {
            let (mut s, _) = listener.accept().expect("accept");
            s.handshake().expect("handshake");
            let _ = s.close();
        }
    });
    for host in ["::1", "[::1]"] {
        let mut c: SecureStream = client(pki.trust_context()).connect(host, port).expect(host);
        assert!(c.peer_addr().expect("peer").is_ipv6());
        let _ = c.read(&mut [0u8; 1]);
        let _ = c.write(b"");
    }
    server.join().expect("server");
}

/// A session accepted without verification must not let a strict connection
/// from the same context skip verification by resuming it.
#[test]
fn sessions_accepted_unverified_are_not_resumed_by_strict_connections() {
    let pki = securenet::testing::TestPki::new(&["other.test"]).expect("pki");
    let listener = common::listener_with(BindOptions::new(), &pki.server_context());
    let port = listener.port();
    let server = std::thread::spawn(move || {
        for _ in 0..2 {
            let (mut s, _) = listener.accept().expect("accept");
            common::with_timeouts(&mut s);
            if s.write_all(b"t").is_ok() {
                let _ = s.read(&mut [0u8; 1]);
            }
        }
    });
    let ctx = pki.trust_context();
    let mut lax = client(ctx.clone())
        .reject_unauthorized(false)
        .connect("localhost", port)
        .expect("lax connect");
    common::with_timeouts(&mut lax);
    lax.read_exact(&mut [0u8; 1])
        .expect("take the session ticket");
    assert!(lax.authorization_error().is_some());
    lax.close().expect("close");
    let strict = client(ctx).connect("localhost", port);
    let err = match strict {
        Ok(mut s) => {
            let reused = s.is_session_reused();
            let _ = s.close();
            panic!("strict connect succeeded (resumed: {reused})");
        }
        Err(e) => e,
    };
    assert!(
        matches!(
            err.certificate_problem(),
            Some(CertificateProblem::NameMismatch { .. })
        ),
        "{err:?}"
    );
    server.join().expect("server");
}

#[test]
fn enable_trace_traces_the_handshake_on_both_sides() {
    let pki = common::pki();
    let server_lines = Arc::new(Mutex::new(Vec::<String>::new()));
    let client_lines = Arc::new(Mutex::new(Vec::<String>::new()));
    let (s2, c2) = (server_lines.clone(), client_lines.clone());
    let bind = BindOptions::new()
        .supported_protocols(&["h2"])
        .trace(move |l| s2.lock().expect("lines").push(l.to_owned()));
    let (c, s) = handshake_with(
        &pki.server_context(),
        bind,
        client(pki.trust_context())
            .supported_protocols(&["h2"])
            .trace(move |l| c2.lock().expect("lines").push(l.to_owned())),
        "localhost",
    );
    c.expect("client");
    s.expect("server");
    let client_lines = client_lines.lock().expect("lines").join("\n");
    let server_lines = server_lines.lock().expect("lines").join("\n");
    for want in [
        "[client localhost]: sent handshake ClientHello",
        "[client localhost]: received handshake ServerHello",
        "[client localhost]: received encrypted record",
        "[client localhost]: handshake complete: TLSv1.3",
        "alpn h2",
    ] {
        assert!(
            client_lines.contains(want),
            "missing {want:?} in:\n{client_lines}"
        );
    }
    for want in [
        "received handshake ClientHello",
        "sent handshake ServerHello",
        "handshake complete",
    ] {
        assert!(
            server_lines.contains(want),
            "missing {want:?} in:\n{server_lines}"
        );
    }
    // Without it, nothing is traced (and enable_trace(false) turns it off).
    let quiet = Arc::new(Mutex::new(0usize));
    let q2 = quiet.clone();
    let (c, _) = handshake_with(
        &pki.server_context(),
        BindOptions::new(),
        client(pki.trust_context())
            .trace(move |_| *q2.lock().expect("count") += 1)
            .enable_trace(false),
        "localhost",
    );
    c.expect("client");
    assert_eq!(*quiet.lock().expect("count"), 0);
}
