//! Exporter values stay with their connection: two clients that send the
//! same random (an on-path attacker copies the victim's, which travels in
//! clear text) each get the keying material of their own handshake from
//! the server, whatever order the handshakes end in.

mod common;

use std::net::TcpStream;
use std::sync::{Arc, mpsc};
use std::thread;

use common::{IO_TIMEOUT, tcp_timeouts};
use rustls::crypto::{GetRandomFailed, SecureRandom};
use rustls::pki_types::CertificateDer;
use rustls::pki_types::pem::PemObject;
use rustls::{ClientConfig, ClientConnection};
use securenet::{BindOptions, TlsVersion};

const LABEL: &[u8] = b"EXPORTER-channel-binding";

/// The same "random" bytes for everything: the Hello random included.
#[derive(Debug)]
struct Fixed;

impl SecureRandom for Fixed {
    fn fill(&self, buf: &mut [u8]) -> Result<(), GetRandomFailed> {
        buf.fill(0x42);
        Ok(())
    }
}

static FIXED: Fixed = Fixed;

fn export(conn: &ClientConnection) -> [u8; 32] {
    conn.export_keying_material([0u8; 32], LABEL, None)
        .expect("client export")
}

#[test]
fn two_connections_with_the_same_client_random_keep_their_own_exporter() {
    let pki = common::pki();
    let mut server_ctx = pki.server_context();
    server_ctx
        .set_protocol_versions(TlsVersion::Tls13, TlsVersion::Tls13)
        .expect("versions");
    let listener = BindOptions::new()
        .handshake_timeout(IO_TIMEOUT)
        .bind("127.0.0.1", 0, &server_ctx)
        .expect("bind");
    let port = listener.port();
    let (tx, rx) = mpsc::channel();
    let server = thread::spawn(move || {
        let mut handlers = Vec::new();
        for i in 0..2 {
            let (mut stream, _) = listener.accept().expect("accept");
            let tx = tx.clone();
            handlers.push(thread::spawn(move || {
                common::with_timeouts(&mut stream);
                stream.handshake().expect("server handshake");
                let mut out = [0u8; 32];
                stream
                    .export_keying_material(&mut out, LABEL, None)
                    .expect("server export");
                tx.send((i, out)).expect("send");
                let _ = stream.close();
            }));
        }
        for h in handlers {
            h.join().expect("handler");
        }
    });

    let mut provider = common::rustls_provider();
    provider.secure_random = &FIXED;
    let mut roots = rustls::RootCertStore::empty();
    roots
        .add(CertificateDer::from_pem_slice(pki.ca_pem().as_bytes()).expect("ca"))
        .expect("root");
    let config = Arc::new(
        ClientConfig::builder_with_provider(Arc::new(provider))
            .with_protocol_versions(&[&rustls::version::TLS13])
            .expect("versions")
            .with_root_certificates(roots)
            .with_no_client_auth(),
    );
    let connect = || {
        let conn = ClientConnection::new(config.clone(), "localhost".try_into().expect("name"))
            .expect("client");
        let sock = TcpStream::connect(("127.0.0.1", port)).expect("connect");
        tcp_timeouts(&sock);
        (conn, sock)
    };

    // B (accepted first) gets as far as the server's Finished: the server
    // has derived B's secrets, and waits for B's Finished.
    let (mut b, mut b_sock) = connect();
    while b.wants_write() {
        b.write_tls(&mut b_sock).expect("b hello");
    }
    while b.is_handshaking() {
        b.read_tls(&mut b_sock).expect("b read");
        b.process_new_packets().expect("b process");
    }
    // A, with the same random, completes first.
    let (mut a, mut a_sock) = connect();
    while a.is_handshaking() {
        a.complete_io(&mut a_sock).expect("a handshake");
    }
    while a.wants_write() {
        a.write_tls(&mut a_sock).expect("a finished");
    }
    let (first, a_server) = rx.recv_timeout(IO_TIMEOUT).expect("server A's export");
    assert_eq!(first, 1, "A's handshake ended first on the server");
    // Then B.
    while b.wants_write() {
        b.write_tls(&mut b_sock).expect("b finished");
    }
    let (_, b_server) = rx.recv_timeout(IO_TIMEOUT).expect("server B's export");

    assert_eq!(a_server, export(&a), "A's server side exports A's value");
    assert_eq!(b_server, export(&b), "B's server side exports B's value");
    assert_ne!(a_server, b_server, "two handshakes, two secrets");
    drop((a_sock, b_sock));
    server.join().expect("server");
}
