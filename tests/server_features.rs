//! Server features of a real deployment: certificates per SNI name,
//! on_bad_client_certificate, max_connections, serve() with on_client_error
//! and a settable thread stack size.

mod common;

use std::io::{Read, Write};
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::{Arc, Mutex, mpsc};
use std::thread;
use std::time::Duration;

use common::{Ca, IO_TIMEOUT, Leaf, client, handshake_with};
use securenet::{BindOptions, ConnectOptions, Error, Phase, SecurityContext};

/// The subject of the certificate the server presents for `name`.
fn subject_for(
    bind: BindOptions,
    ctx: &SecurityContext,
    trust: SecurityContext,
    name: &str,
) -> String {
    let (c, _) = handshake_with(ctx, bind, client(trust).server_name(name), "127.0.0.1");
    c.expect("handshake")
        .peer_certificate()
        .expect("certificate")
        .subject()
        .to_owned()
}

#[test]
fn sni_context_and_on_sni_pick_the_certificate() {
    let ca = Ca::new("sni CA");
    let default_ctx = ca.server_context(&["default.test"], Leaf::Good);
    let bind = BindOptions::new()
        .sni_context("a.test", ca.server_context(&["a.test"], Leaf::Good))
        .sni_context("*.b.test", ca.server_context(&["*.b.test"], Leaf::Good));
    let asked = Arc::new(Mutex::new(Vec::new()));
    let asked2 = asked.clone();
    let dynamic = ca.server_context(&["dynamic.test"], Leaf::Good);
    let bind = bind.on_sni(move |name| {
        asked2.lock().expect("asked").push(name.to_owned());
        (name == "dynamic.test").then(|| dynamic.clone())
    });
    assert_eq!(
        subject_for(bind.clone(), &default_ctx, ca.trust(), "a.test"),
        "CN=a.test"
    );
    assert_eq!(
        subject_for(bind.clone(), &default_ctx, ca.trust(), "A.TEST"),
        "CN=a.test"
    );
    assert_eq!(
        subject_for(bind.clone(), &default_ctx, ca.trust(), "x.b.test"),
        "CN=*.b.test"
    );
    assert_eq!(
        subject_for(bind.clone(), &default_ctx, ca.trust(), "dynamic.test"),
        "CN=dynamic.test"
    );
    // No route: the listener's own context (and so a name mismatch here).
    let (c, _) = handshake_with(
        &default_ctx,
        bind.clone(),
        client(ca.trust()).server_name("default.test"),
        "127.0.0.1",
    );
    assert_eq!(
        c.expect("default")
            .peer_certificate()
            .expect("cert")
            .subject(),
        "CN=default.test"
    );
    // The callback was asked only for names without a table entry.
    assert_eq!(
        *asked.lock().expect("asked"),
        ["dynamic.test", "default.test"]
    );
}

#[test]
fn on_bad_client_certificate_accepts_a_self_signed_client() {
    let pki = common::pki();
    let (cert, key) = common::self_signed(&["self-signed client"]);
    let mut client_ctx = common::context_with(&cert, &key);
    client_ctx
        .set_trusted_certificates_bytes(pki.ca_pem().as_bytes())
        .expect("trust");
    let pinned = securenet::X509Certificate::from_der(
        &rustls::pki_types::pem::PemObject::from_pem_slice(cert.as_bytes())
            .map(|c: rustls::pki_types::CertificateDer<'_>| c.to_vec())
            .expect("pem"),
    )
    .expect("cert")
    .sha256();
    // The server trusts no client CA at all: only the callback decides.
    let mut server_ctx = SecurityContext::empty();
    server_ctx
        .use_certificate_chain_bytes(pki.server_cert_pem().as_bytes())
        .expect("chain");
    server_ctx
        .use_private_key_bytes(pki.server_key_pem().as_bytes())
        .expect("key");
    let accept_pinned = BindOptions::new()
        .require_client_certificate(true)
        .on_bad_client_certificate(move |c| c.sha256() == pinned);
    let (c, s) = handshake_with(
        &server_ctx,
        accept_pinned,
        client(client_ctx.clone()),
        "localhost",
    );
    c.expect("client");
    s.expect("the pinned self-signed client is accepted");

    let refuse = BindOptions::new()
        .require_client_certificate(true)
        .on_bad_client_certificate(|_| false);
    let (_, s) = handshake_with(&server_ctx, refuse, client(client_ctx), "localhost");
    let err = s.expect_err("refused");
    assert!(
        matches!(
            err.certificate_problem(),
            Some(securenet::CertificateProblem::SelfSigned { .. })
        ),
        "{err:?}"
    );
}

#[test]
fn max_connections_makes_accept_wait_for_a_free_place() {
    let pki = common::pki();
    let listener = BindOptions::new()
        .max_connections(2)
        .handshake_timeout(IO_TIMEOUT)
        .bind("127.0.0.1", 0, &pki.server_context())
        .expect("bind");
    let port = listener.port();
    let live = Arc::new(AtomicUsize::new(0));
    let peak = Arc::new(AtomicUsize::new(0));
    let (release_tx, release_rx) = mpsc::channel::<()>();
    let release_rx = Arc::new(Mutex::new(release_rx));
    let (l2, p2) = (live.clone(), peak.clone());
    thread::spawn(move || {
        let _ = listener.serve(move |mut s| -> std::io::Result<()> {
            let now = l2.fetch_add(1, Ordering::SeqCst) + 1;
            p2.fetch_max(now, Ordering::SeqCst);
            s.write_all(b"in")?;
            // Hold the connection until the test releases one.
            let _ = release_rx.lock().expect("rx").recv_timeout(IO_TIMEOUT);
            l2.fetch_sub(1, Ordering::SeqCst);
            s.close()?;
            Ok(())
        });
    });
    let connect = |timeout: Duration| {
        ConnectOptions::new()
            .context(pki.trust_context())
            .handshake_timeout(timeout)
            .connect("localhost", port)
    };
    let mut held = Vec::new();
    for _ in 0..2 {
        let mut c = connect(IO_TIMEOUT).expect("within the limit");
        common::with_timeouts(&mut c);
        c.read_exact(&mut [0u8; 2]).expect("served");
        held.push(c);
    }
    // A third is not accepted while two are alive: its handshake times out.
    let err = connect(Duration::from_millis(300)).expect_err("over the limit");
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
    // Free one place: the next client gets in.
    release_tx.send(()).expect("release");
    let mut first = held.remove(0);
    let _ = first.read_to_end(&mut Vec::new());
    let mut c = connect(IO_TIMEOUT).expect("a place was freed");
    common::with_timeouts(&mut c);
    c.read_exact(&mut [0u8; 2]).expect("served");
    assert_eq!(peak.load(Ordering::SeqCst), 2, "never more than two alive");
    for _ in 0..3 {
        let _ = release_tx.send(());
    }
}

#[test]
fn serve_reports_client_errors_and_keeps_serving() {
    let pki = common::pki();
    // Each report: whether it is a handshake failure, and its text.
    let (err_tx, err_rx) = mpsc::channel::<(bool, String)>();
    let err_tx = Mutex::new(err_tx);
    let listener = BindOptions::new()
        .handshake_timeout(IO_TIMEOUT)
        .thread_stack_size(256 * 1024)
        .on_client_error(move |e, peer| {
            let handshake = matches!(e, Error::Handshake { .. });
            let _ = err_tx
                .lock()
                .expect("tx")
                .send((handshake, format!("{peer}: {e}")));
        })
        .bind("127.0.0.1", 0, &pki.server_context())
        .expect("bind");
    let port = listener.port();
    thread::spawn(move || {
        let _ = listener.serve(|mut s| -> securenet::Result<()> {
            let mut b = [0u8; 4];
            s.read_exact(&mut b)?;
            if &b == b"fail" {
                return Err(Error::from(std::io::Error::other("the handler refused")));
            }
            s.write_all(&b)?;
            s.close()
        });
    });
    // A client that is not TLS: its handshake error is reported.
    let mut raw = std::net::TcpStream::connect(("127.0.0.1", port)).expect("connect");
    raw.write_all(b"GET / HTTP/1.1\r\n\r\n").expect("write");
    let (handshake, report) = err_rx
        .recv_timeout(IO_TIMEOUT)
        .expect("handshake error reported");
    assert!(handshake, "a handshake failure: {report}");
    assert!(report.contains("not valid TLS"), "{report}");
    // A handler's error is reported too.
    let mut c = client(pki.trust_context())
        .connect("localhost", port)
        .expect("connect");
    c.write_all(b"fail").expect("write");
    let (handshake, report) = err_rx
        .recv_timeout(IO_TIMEOUT)
        .expect("handler error reported");
    assert!(!handshake, "the handler's own error: {report}");
    assert!(report.contains("the handler refused"), "{report}");
    // And serving goes on, in threads with a 256 KiB stack.
    let mut c = client(pki.trust_context())
        .connect("localhost", port)
        .expect("connect");
    common::with_timeouts(&mut c);
    c.write_all(b"ping").expect("write");
    let mut echo = String::new();
    c.read_to_string(&mut echo).expect("read");
    assert_eq!(echo, "ping");
}

#[test]
fn max_connections_zero_is_refused() {
    let pki = common::pki();
    let err = BindOptions::new()
        .max_connections(0)
        .bind("127.0.0.1", 0, &pki.server_context())
        .expect_err("zero");
    assert!(matches!(err, Error::InvalidInput { .. }), "{err:?}");
}

#[test]
fn the_servers_key_log_holds_the_same_secrets_as_the_clients() {
    let pki = common::pki();
    let log = || {
        let lines = Arc::new(Mutex::new(Vec::<String>::new()));
        let sink = lines.clone();
        (lines, move |line: &str| {
            sink.lock().expect("lines").push(line.to_owned())
        })
    };
    let (server_lines, server_sink) = log();
    let (client_lines, client_sink) = log();
    let (c, s) = handshake_with(
        &pki.server_context(),
        BindOptions::new().key_log(server_sink),
        client(pki.trust_context()).key_log(client_sink),
        "localhost",
    );
    c.expect("connect");
    s.expect("server");
    let sorted = |l: &Arc<Mutex<Vec<String>>>| {
        let mut v = l.lock().expect("lines").clone();
        v.sort_unstable();
        v
    };
    let (server, client) = (sorted(&server_lines), sorted(&client_lines));
    assert_eq!(server.len(), 5, "TLS 1.3 has five secrets: {server:?}");
    assert_eq!(server, client, "both ends log the same session's secrets");
}
