//! Each failure gets its own error kind and an actionable message: no common
//! parameters, a server that does not speak TLS.
//! (Certificate failures are in `verify_matrix.rs`.)

mod common;

use std::net::TcpListener;
use std::sync::Arc;
use std::thread;

use common::client;
use securenet::{Error, SecurityContext};

/// A raw rustls server whose only key exchange is one our client does not
/// offer (X25519 only, against a client set to the others): a handshake
/// failure that says so.
#[test]
fn no_common_parameters_is_a_handshake_failure() {
    let pki = common::pki();
    let mut provider = common::rustls_provider();
    provider.kx_groups = vec![common::x25519()];
    let certs = vec![rustls::pki_types::CertificateDer::from(
        securenet::X509Certificate::from_der(&pem_der(pki.server_cert_pem()))
            .expect("cert")
            .der()
            .to_vec(),
    )];
    let key =
        rustls::pki_types::PrivateKeyDer::try_from(pem_der(pki.server_key_pem())).expect("key");
    let config = rustls::ServerConfig::builder_with_provider(Arc::new(provider))
        .with_safe_default_protocol_versions()
        .expect("versions")
        .with_no_client_auth()
        .with_single_cert(certs, key)
        .expect("config");
    let listener = TcpListener::bind("127.0.0.1:0").expect("bind");
    let port = listener.local_addr().expect("addr").port();
    let server = thread::spawn(move || {
        let (mut sock, _) = listener.accept().expect("accept");
        common::tcp_timeouts(&sock);
        let mut conn = rustls::ServerConnection::new(Arc::new(config)).expect("conn");
        conn.complete_io(&mut sock).expect_err("no common group")
    });
    let mut ctx = pki.trust_context();
    ctx.set_key_exchange_groups(&["secp256r1", "secp384r1"])
        .expect("groups");
    let err = client(ctx)
        .connect("localhost", port)
        .expect_err("no common key exchange");
    assert!(matches!(err, Error::Handshake { .. }), "{err:?}");
    assert!(err.to_string().contains("in common"), "{err}");
    server.join().expect("server");
}

fn pem_der(pem: &str) -> Vec<u8> {
    use rustls::pki_types::pem::PemObject;
    if pem.contains("PRIVATE KEY") {
        rustls::pki_types::PrivateKeyDer::from_pem_slice(pem.as_bytes())
            .expect("key")
            .secret_der()
            .to_vec()
    } else {
        rustls::pki_types::CertificateDer::from_pem_slice(pem.as_bytes())
            .expect("cert")
            .to_vec()
    }
}

/// The error of a TLS connect to a server that answers in plain HTTP.
fn connect_to_plain_http() -> Error {
    let (listener, port) = common::tcp_listener();
    let server = thread::spawn(move || {
        let (mut s, _) = listener.accept().expect("accept");
        std::io::Write::write_all(&mut s, b"HTTP/1.1 400 Bad Request\r\n\r\n").expect("write");
    });
    let err = client(SecurityContext::empty())
        .connect("127.0.0.1", port)
        .expect_err("not TLS");
    server.join().expect("server");
    err
}

#[test]
fn a_plain_tcp_server_is_not_mistaken_for_tls() {
    let err = connect_to_plain_http();
    assert!(matches!(err, Error::Handshake { .. }), "{err:?}");
    assert!(err.to_string().contains("TLS"), "{err}");
}

/// What `fn main() -> securenet::Result<()>` prints is `Debug`: it must be
/// the kind and the advice, not the fields.
#[test]
fn debug_shows_the_kind_and_the_message() {
    let err = connect_to_plain_http();
    let debug = format!("{err:?}");
    assert!(debug.starts_with("Handshake: "), "{debug}");
    assert!(debug.contains(&err.to_string()), "the message: {debug}");
    assert!(debug.contains("caused by"), "the rustls source: {debug}");

    // A refused upgrade with a 100 KiB body: text, and short.
    let (url, server) = common::ws::fake(|_, s| {
        let body = "denied ".repeat(100 * 1024 / 7);
        let head = format!(
            "HTTP/1.1 403 Forbidden\r\nContent-Length: {}\r\n\r\n",
            body.len()
        );
        let _ = std::io::Write::write_all(s, head.as_bytes());
        let _ = std::io::Write::write_all(s, body.as_bytes());
    });
    let err = securenet::WebSocketOptions::new()
        .connect(&url)
        .expect_err("refused");
    server.join().expect("server");
    let debug = format!("{err:?}");
    assert!(debug.starts_with("HttpStatus: "), "{debug}");
    assert!(debug.contains("403 Forbidden"), "{debug}");
    assert!(debug.contains("denied denied"), "the body as text: {debug}");
    assert!(debug.len() < 1024, "{} bytes of Debug", debug.len());
}
