//! `BindOptions::acme` without a CA: TLS-ALPN-01 validations answered
//! only for a client that offers `acme-tls/1` alone and a configured name
//! (the challenge certificate is never served to anyone else), never
//! handed to the handler; a restart serves the cached certificate from
//! its first connection; a CA that cannot be reached is reported, typed;
//! options that cannot work fail at bind. Pebble, the real CA, is in CI
//! (`.ci/groups/acme.sh`).

mod common;

use std::io::{Read, Write};
use std::net::SocketAddr;
use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::mpsc;
use std::time::{Duration, Instant};

use common::{client, pki, with_timeouts};
use rcgen::{CertificateParams, CustomExtension, KeyPair};
use securenet::{AcmeErrorKind, AcmeOptions, BindOptions, Error, SecureStream, SecurityContext};

/// A directory of its own for each test, removed at the start.
fn cache_dir(tag: &str) -> PathBuf {
    let dir =
        std::env::temp_dir().join(format!("securenet-acme-test-{tag}-{}", std::process::id()));
    let _ = std::fs::remove_dir_all(&dir);
    dir
}

/// A directory URL on a loopback port nothing listens on (bound on port 0,
/// then closed): the CA is unreachable at once.
fn no_ca() -> String {
    format!("https://127.0.0.1:{}/dir", common::unused_port())
}

/// Where the cache (or its `challenges` folder) keeps the certificate for
/// `name` from the CA at `directory`: `NAME-HASH.pem`, the hash naming the
/// CA (the first 8 bytes of the SHA-256 of its directory URL, hex).
fn cache_file(dir: &Path, name: &str, directory: &str) -> PathBuf {
    let hash =
        common::crypto::digest::digest(&common::crypto::digest::SHA256, directory.as_bytes());
    let hex: String = hash.as_ref()[..8]
        .iter()
        .map(|b| format!("{b:02x}"))
        .collect();
    dir.join(format!("{name}-{hex}.pem"))
}

/// A challenge certificate as the ACME client makes it, written where the
/// listener reads it (the cache's `challenges/NAME-HASH.pem`, key first):
/// its DER.
fn write_challenge(dir: &Path, name: &str, directory: &str) -> Vec<u8> {
    let mut params = CertificateParams::new(vec![name.to_owned()]).expect("params");
    params.custom_extensions = vec![CustomExtension::new_acme_identifier(&[7; 32])];
    let key = KeyPair::generate().expect("key");
    let cert = params.self_signed(&key).expect("cert");
    std::fs::create_dir_all(dir.join("challenges")).expect("dir");
    let pem = format!("{}{}", key.serialize_pem(), cert.pem());
    std::fs::write(cache_file(&dir.join("challenges"), name, directory), pem).expect("write");
    cert.der().to_vec()
}

/// Takes any certificate and signature: what a validation looks at is
/// the certificate itself (webpki, under securenet's client and rustls's
/// signature checks, rightly refuses the unknown critical extension
/// acmeIdentifier; a CA's validator reads it).
#[derive(Debug)]
struct AnyCertificate(rustls::crypto::CryptoProvider);

impl rustls::client::danger::ServerCertVerifier for AnyCertificate {
    fn verify_server_cert(
        &self,
        _: &rustls::pki_types::CertificateDer<'_>,
        _: &[rustls::pki_types::CertificateDer<'_>],
        _: &rustls::pki_types::ServerName<'_>,
        _: &[u8],
        _: rustls::pki_types::UnixTime,
    ) -> Result<rustls::client::danger::ServerCertVerified, rustls::Error> {
        Ok(rustls::client::danger::ServerCertVerified::assertion())
    }
    fn verify_tls12_signature(
        &self,
        m: &[u8],
        c: &rustls::pki_types::CertificateDer<'_>,
        d: &rustls::DigitallySignedStruct,
    ) -> Result<rustls::client::danger::HandshakeSignatureValid, rustls::Error> {
        let _ = (m, c, d);
        Ok(rustls::client::danger::HandshakeSignatureValid::assertion())
    }
    fn verify_tls13_signature(
        &self,
        m: &[u8],
        c: &rustls::pki_types::CertificateDer<'_>,
        d: &rustls::DigitallySignedStruct,
    ) -> Result<rustls::client::danger::HandshakeSignatureValid, rustls::Error> {
        let _ = (m, c, d);
        Ok(rustls::client::danger::HandshakeSignatureValid::assertion())
    }
    fn supported_verify_schemes(&self) -> Vec<rustls::SignatureScheme> {
        self.0.signature_verification_algorithms.supported_schemes()
    }
}

/// What a validator sees: the server's certificate, the protocol chosen
/// and, for a validation, the bytes after the handshake (to the clean
/// close).
struct Seen {
    certificate: Vec<u8>,
    protocol: Option<Vec<u8>>,
    after: std::io::Result<Vec<u8>>,
}

/// A handshake with the listener on `port` for `name`, offering `alpn`,
/// as a CA's validator makes it.
fn validate(port: u16, name: &str, alpn: &[&str]) -> Result<Seen, rustls::Error> {
    let provider = common::rustls_provider();
    let mut config = rustls::ClientConfig::builder_with_provider(Arc::new(provider.clone()))
        .with_safe_default_protocol_versions()?
        .dangerous()
        .with_custom_certificate_verifier(Arc::new(AnyCertificate(provider)))
        .with_no_client_auth();
    config.alpn_protocols = alpn.iter().map(|p| p.as_bytes().to_vec()).collect();
    let server_name = rustls::pki_types::ServerName::try_from(name.to_owned()).expect("name");
    let conn = rustls::ClientConnection::new(Arc::new(config), server_name)?;
    let tcp = std::net::TcpStream::connect(("127.0.0.1", port)).expect("connect");
    common::tcp_timeouts(&tcp);
    let mut tls = rustls::StreamOwned::new(conn, tcp);
    while tls.conn.is_handshaking() {
        tls.conn
            .complete_io(&mut tls.sock)
            .map_err(|e| rustls::Error::General(e.to_string()))?;
    }
    let certificate = tls.conn.peer_certificates().expect("certificate")[0].to_vec();
    let protocol = tls.conn.alpn_protocol().map(<[u8]>::to_vec);
    // A validator reads on to the close; another client just leaves.
    let mut after = Vec::new();
    let after = match protocol.as_deref() {
        Some(b"acme-tls/1") => tls.read_to_end(&mut after).map(|_| after),
        _ => Ok(after),
    };
    Ok(Seen {
        certificate,
        protocol,
        after,
    })
}

#[test]
fn validations_are_answered_only_for_acme_tls_1_alone_and_never_reach_the_handler() {
    let pki = pki();
    let dir = cache_dir("validation");
    let no_ca = no_ca();
    let challenge = write_challenge(&dir, "a.example", &no_ca);
    let (errors, reported) = mpsc::channel();
    let acme = AcmeOptions::new(&["a.example"], &dir)
        .directory(&no_ca)
        .accept_terms_of_service(true)
        .on_error(move |e| {
            let _ = errors.send((
                e.to_string(),
                matches!(
                    e,
                    Error::Acme {
                        kind: AcmeErrorKind::Unreachable,
                        ..
                    }
                ),
            ));
        });
    let listener = BindOptions::new()
        .acme(acme)
        .bind("127.0.0.1", 0, &pki.server_context())
        .expect("bind");
    let port = listener.port();
    let stop = listener.stop_handle();
    let handled = Arc::new(AtomicUsize::new(0));
    let seen = handled.clone();
    let server = std::thread::spawn(move || {
        listener.serve(move |mut s: SecureStream| -> securenet::Result<()> {
            seen.fetch_add(1, Ordering::SeqCst);
            with_timeouts(&mut s);
            let mut buf = [0u8; 4];
            s.read_exact(&mut buf)?;
            s.write_all(&buf)?;
            s.close()
        })
    });

    // The CA's validation: acme-tls/1 alone, a configured name.
    let seen = validate(port, "a.example", &["acme-tls/1"]).expect("validation");
    assert_eq!(seen.protocol.as_deref(), Some(&b"acme-tls/1"[..]));
    assert_eq!(seen.certificate, challenge);
    assert_eq!(
        seen.after.expect("a clean close"),
        b"",
        "nothing follows the handshake"
    );

    // acme-tls/1 among others is no validation: the ordinary certificate.
    let mixed = validate(port, "a.example", &["acme-tls/1", "h2"]).expect("mixed");
    assert_ne!(mixed.certificate, challenge);
    assert_eq!(
        mixed.protocol, None,
        "the listener offers no ALPN of its own"
    );

    // acme-tls/1 for a name that is not configured: no certificate.
    assert!(validate(port, "b.example", &["acme-tls/1"]).is_err());

    // An ordinary client: the context's certificate (until ACME's),
    // verified, and the handler runs.
    let mut ordinary = client(pki.client_context())
        .connect("localhost", port)
        .expect("ordinary");
    with_timeouts(&mut ordinary);
    ordinary.write_all(b"ping").expect("write");
    let mut echo = [0u8; 4];
    ordinary.read_exact(&mut echo).expect("echo");
    assert_eq!(&echo, b"ping");
    drop(ordinary);

    // The unreachable CA was reported, typed, naming its URL.
    let (message, unreachable) = reported
        .recv_timeout(Duration::from_secs(20))
        .expect("an error report");
    assert!(unreachable, "{message}");
    assert!(message.contains(&no_ca), "{message}");

    stop.stop();
    server.join().expect("server thread").expect("serve");
    assert_eq!(
        handled.load(Ordering::SeqCst),
        2,
        "the mixed and the ordinary client only"
    );
    let _ = std::fs::remove_dir_all(&dir);
}

#[test]
fn without_any_certificate_yet_ordinary_clients_fail_the_handshake() {
    let dir = cache_dir("none-yet");
    let acme = AcmeOptions::new(&["a.example"], &dir)
        .directory(&no_ca())
        .on_error(|_| {});
    let listener = BindOptions::new()
        .acme(acme)
        .bind("127.0.0.1", 0, &SecurityContext::new())
        .expect("a context without a certificate binds with acme");
    let port = listener.port();
    let server = std::thread::spawn(move || listener.accept().map(|(mut s, _)| s.handshake()));
    let started = Instant::now();
    let result = client(pki().client_context()).connect("localhost", port);
    assert!(result.is_err(), "no certificate to serve yet");
    let server_side = server.join().expect("server thread").expect("accept");
    assert!(server_side.is_err());
    assert!(started.elapsed() < Duration::from_secs(10));
    let _ = std::fs::remove_dir_all(&dir);
}

#[test]
fn a_restart_serves_the_cached_certificate_from_the_first_connection() {
    let pki = securenet::testing::TestPki::new(&["a.example"]).expect("pki");
    let dir = cache_dir("cached");
    std::fs::create_dir_all(&dir).expect("dir");
    let pem = format!("{}{}", pki.server_key_pem(), pki.server_cert_pem());
    let no_ca = no_ca();
    std::fs::write(cache_file(&dir, "a.example", &no_ca), pem).expect("write");
    let (tx, served) = mpsc::channel();
    let (errors, reported) = mpsc::channel();
    let acme = AcmeOptions::new(&["a.example"], &dir)
        .directory(&no_ca)
        .on_certificate(move |c| {
            let _ = tx.send(c.sha256());
        })
        .on_error(move |e| {
            let _ = errors.send(e.to_string());
        });
    let listener = BindOptions::new()
        .acme(acme)
        .bind("127.0.0.1", 0, &SecurityContext::new())
        .expect("bind");
    let expected = served.try_recv().expect("reported before bind returned");
    let port = listener.port();
    let server = std::thread::spawn(move || {
        let (mut s, _) = listener.accept()?;
        with_timeouts(&mut s);
        s.write_all(b"ok")?;
        s.close()
    });
    let resolve = |_: &str, port: u16| Ok(vec![SocketAddr::from(([127, 0, 0, 1], port))]);
    let mut c = client(pki.client_context())
        .resolver(resolve)
        .connect("a.example", port)
        .expect("connect");
    with_timeouts(&mut c);
    let mut got = String::new();
    c.read_to_string(&mut got).expect("read");
    assert_eq!(got, "ok");
    assert_eq!(c.peer_certificate().expect("cert").sha256(), expected);
    server.join().expect("server thread").expect("server");
    assert!(
        reported.try_recv().is_err(),
        "no CA is needed for a cached certificate"
    );
    let _ = std::fs::remove_dir_all(&dir);
}

#[test]
fn the_manager_ends_with_its_last_listener_though_the_context_lives_on() {
    let no_ca = no_ca();
    let ctx = pki().server_context();
    let dir = cache_dir("ends");
    let (errors, reported) = mpsc::channel();
    let options = BindOptions::new().acme(
        AcmeOptions::new(&["a.example"], &dir)
            .directory(&no_ca)
            .on_error(move |e| {
                let _ = errors.send(e.to_string());
            }),
    );
    let first = options.bind("127.0.0.1", 0, &ctx).expect("bind");
    let second = options
        .bind("127.0.0.1", 0, &ctx)
        .expect("a second listener shares it");
    drop(options);
    drop(first);
    // Still running for the second listener: it reports the CA.
    let message = reported
        .recv_timeout(Duration::from_secs(20))
        .expect("a report");
    assert!(message.contains(&no_ca), "{message}");
    drop(second);
    // Its thread ends (the callback, and with it the sender, is dropped),
    // though `ctx` and the setups cached in it live on.
    let deadline = Instant::now() + Duration::from_secs(20);
    loop {
        match reported.recv_timeout(deadline.saturating_duration_since(Instant::now())) {
            Ok(_) => continue,
            Err(mpsc::RecvTimeoutError::Disconnected) => break,
            Err(mpsc::RecvTimeoutError::Timeout) => {
                panic!("the acme thread outlived its listeners")
            }
        }
    }
    drop(ctx);
    let _ = std::fs::remove_dir_all(&dir);
}

#[test]
fn a_certificate_from_one_ca_is_not_served_for_another_and_a_restart_talks_to_no_ca() {
    let pki = securenet::testing::TestPki::new(&["a.example"]).expect("pki");
    let dir = cache_dir("per-ca");
    std::fs::create_dir_all(&dir).expect("dir");
    let pem = format!("{}{}", pki.server_key_pem(), pki.server_cert_pem());
    // What a server with the staging CA left in the cache.
    let staging = format!("https://127.0.0.1:{}/staging", common::unused_port());
    std::fs::write(cache_file(&dir, "a.example", &staging), &pem).expect("write");
    let (tx, served) = mpsc::channel();
    let options = |directory: &str| {
        let tx = tx.clone();
        AcmeOptions::new(&["a.example"], &dir)
            .directory(directory)
            .on_certificate(move |c| {
                let _ = tx.send(c.issuer().to_owned());
            })
            .on_error(|_| {})
    };
    // Production, with only staging's certificate in the cache: nothing
    // to serve.
    let ctx = SecurityContext::new();
    let production = format!("https://127.0.0.1:{}/production", common::unused_port());
    let listener = BindOptions::new()
        .acme(options(&production))
        .bind("127.0.0.1", 0, &ctx);
    assert!(
        served.try_recv().is_err(),
        "staging's certificate served for production"
    );
    drop(listener);

    // A CA that tells whoever connects, and its own certificate in the
    // cache, not due: served at bind, and the CA is asked nothing.
    let (ca, ca_port) = common::tcp_listener();
    let (knock, knocked) = mpsc::channel();
    let watcher = std::thread::spawn(move || {
        let _ = knock.send(ca.accept().is_ok());
    });
    let watched = format!("https://127.0.0.1:{ca_port}/dir");
    std::fs::write(cache_file(&dir, "a.example", &watched), &pem).expect("write");
    let listener = BindOptions::new()
        .acme(options(&watched))
        .bind("127.0.0.1", 0, &ctx);
    assert!(
        served.try_recv().is_ok(),
        "its own certificate served at bind"
    );
    assert!(
        knocked.recv_timeout(Duration::from_secs(3)).is_err(),
        "a start with a certificate that is not due connected to the CA"
    );
    drop(listener);
    // Unblock the watcher.
    let _ = std::net::TcpStream::connect(("127.0.0.1", ca_port));
    watcher.join().expect("watcher");
    let _ = std::fs::remove_dir_all(&dir);
}

#[test]
fn options_that_cannot_work_fail_at_bind_naming_the_input() {
    let ctx = SecurityContext::new();
    let dir = cache_dir("bad");
    let bind = |acme: AcmeOptions| {
        BindOptions::new()
            .acme(acme)
            .bind("127.0.0.1", 0, &ctx)
            .map(|_| ())
    };
    let input = |r: securenet::Result<()>| match r {
        Err(Error::InvalidInput { input, reason, .. }) => format!("{input}: {reason}"),
        other => panic!("expected InvalidInput, got {other:?}"),
    };
    let wildcard = input(bind(AcmeOptions::new(&["*.example.com"], &dir)));
    assert!(
        wildcard.starts_with("*.example.com: ") && wildcard.contains("TLS-ALPN-01"),
        "{wildcard}"
    );
    let plain = input(bind(
        AcmeOptions::new(&["a.example"], &dir).directory("http://ca.example/dir"),
    ));
    assert!(plain.contains("https://"), "{plain}");
    let eab = input(bind(
        AcmeOptions::new(&["a.example"], &dir).external_account_binding("kid", "not base64url!"),
    ));
    assert!(eab.contains("MAC key"), "{eab}");
    let none: [&str; 0] = [];
    input(bind(AcmeOptions::new(&none, &dir)));
    // secure_server has no listener to answer validations on.
    let (tcp, _) = common::tcp_listener();
    let addr = tcp.local_addr().expect("addr");
    let conn = std::net::TcpStream::connect(addr).expect("connect");
    let options =
        BindOptions::new().acme(AcmeOptions::new(&["a.example"], &dir).directory(&no_ca()));
    let refused = SecureStream::secure_server(conn, &pki().server_context(), &options, &[]);
    assert!(
        matches!(refused, Err(Error::InvalidInput { .. })),
        "{refused:?}"
    );
    let _ = std::fs::remove_dir_all(&dir);
}
