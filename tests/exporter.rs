//! Keying material exporters (`export_keying_material`, RFC 5705 and RFC
//! 8446 §7.5) against rustls's own buffered connection at the other end,
//! in TLS 1.2 and 1.3, with and without a context, on resumed sessions,
//! and with inputs no exporter can take.

mod common;

use std::io::{Read, Write};
use std::net::{TcpListener, TcpStream};
use std::sync::Arc;
use std::thread;

use common::{client, serve_one, tcp_timeouts};
use rustls::pki_types::CertificateDer;
use rustls::pki_types::pem::PemObject;
use securenet::testing::TestPki;
use securenet::{BindOptions, Error, SecureStream, TlsVersion};

const LEN: usize = 48;

/// (label, context) pairs: a context, none, and an empty one (which TLS
/// 1.2 tells from none).
const CASES: [(&[u8], Option<&[u8]>); 3] = [
    (b"EXPORTER-test", Some(b"ctx")),
    (b"EXPORTER-none", None),
    (b"EXPORTER-empty", Some(b"")),
];

fn version_of(v: TlsVersion) -> &'static rustls::SupportedProtocolVersion {
    match v {
        TlsVersion::Tls12 => &rustls::version::TLS12,
        _ => &rustls::version::TLS13,
    }
}

fn rustls_exports(conn: &rustls::ConnectionCommon<impl Sized>) -> Vec<[u8; LEN]> {
    CASES
        .iter()
        .map(|(label, context)| {
            conn.export_keying_material([0u8; LEN], label, *context)
                .expect("rustls export")
        })
        .collect()
}

fn our_exports(s: &SecureStream) -> Vec<[u8; LEN]> {
    CASES
        .iter()
        .map(|(label, context)| {
            let mut out = [0u8; LEN];
            s.export_keying_material(&mut out, label, *context)
                .expect("our export");
            out
        })
        .collect()
}

fn context_for(pki: &TestPki, server: bool, version: TlsVersion) -> securenet::SecurityContext {
    let mut ctx = if server {
        pki.server_context()
    } else {
        pki.trust_context()
    };
    ctx.set_protocol_versions(version, version)
        .expect("versions");
    ctx
}

/// Our server, one connection, limited to `version`.
fn our_server<T: Send + 'static>(
    pki: &TestPki,
    version: TlsVersion,
    handler: impl FnOnce(SecureStream) -> T + Send + 'static,
) -> (u16, thread::JoinHandle<T>) {
    serve_one(
        BindOptions::new(),
        &context_for(pki, true, version),
        handler,
    )
}

#[test]
fn our_client_exports_what_a_rustls_server_exports() {
    let pki = common::pki();
    for version in [TlsVersion::Tls13, TlsVersion::Tls12] {
        let config = common::rustls_server_config(&pki, &[version_of(version)]);
        let listener = TcpListener::bind("127.0.0.1:0").expect("bind");
        let port = listener.local_addr().expect("addr").port();
        let server = thread::spawn(move || {
            let (mut sock, _) = listener.accept().expect("accept");
            tcp_timeouts(&sock);
            let mut conn = rustls::ServerConnection::new(Arc::new(config)).expect("conn");
            while conn.is_handshaking() {
                conn.complete_io(&mut sock).expect("handshake");
            }
            let exports = rustls_exports(&conn);
            let mut tls = rustls::StreamOwned::new(conn, sock);
            tls.write_all(&exports.concat()).expect("write");
            let _ = tls.read(&mut [0u8; 1]);
        });
        let mut c = client(context_for(&pki, false, version))
            .connect("localhost", port)
            .expect("connect");
        let mut theirs = vec![0u8; LEN * CASES.len()];
        c.read_exact(&mut theirs).expect("read");
        assert_eq!(our_exports(&c).concat(), theirs, "{version:?}");
        c.close().expect("close");
        server.join().expect("server");
    }
}

#[test]
fn our_server_exports_what_a_rustls_client_exports() {
    let pki = common::pki();
    for version in [TlsVersion::Tls13, TlsVersion::Tls12] {
        let (port, server) = our_server(&pki, version, |mut s| {
            s.handshake().expect("handshake");
            let exports = our_exports(&s);
            let _ = s.close();
            exports
        });
        let mut roots = rustls::RootCertStore::empty();
        roots
            .add(CertificateDer::from_pem_slice(pki.ca_pem().as_bytes()).expect("ca"))
            .expect("root");
        let config = rustls::ClientConfig::builder_with_protocol_versions(&[version_of(version)])
            .with_root_certificates(roots)
            .with_no_client_auth();
        let name = "localhost".try_into().expect("name");
        let mut conn = rustls::ClientConnection::new(Arc::new(config), name).expect("conn");
        let mut sock = TcpStream::connect(("127.0.0.1", port)).expect("connect");
        tcp_timeouts(&sock);
        while conn.is_handshaking() {
            conn.complete_io(&mut sock).expect("handshake");
        }
        let theirs = rustls_exports(&conn);
        assert_eq!(server.join().expect("server"), theirs, "{version:?}");
    }
}

#[test]
fn resumed_sessions_export_on_both_sides() {
    let pki = common::pki();
    for version in [TlsVersion::Tls13, TlsVersion::Tls12] {
        let server_ctx = context_for(&pki, true, version);
        let client_ctx = context_for(&pki, false, version);
        let listener = common::listener_with(BindOptions::new(), &server_ctx);
        let port = listener.port();
        let server = thread::spawn(move || {
            let mut seen = Vec::new();
            for _ in 0..2 {
                let (mut s, _) = listener.accept().expect("accept");
                common::with_timeouts(&mut s);
                s.handshake().expect("handshake");
                // TLS 1.3 tickets go out with the first write.
                s.write_all(b"t").expect("write");
                seen.push((s.is_session_reused(), our_exports(&s)));
                let _ = s.read(&mut [0u8; 1]);
            }
            seen
        });
        let mut mine = Vec::new();
        for _ in 0..2 {
            let mut c = client(client_ctx.clone())
                .connect("localhost", port)
                .expect("connect");
            c.read_exact(&mut [0u8; 1]).expect("read");
            mine.push((c.is_session_reused(), our_exports(&c)));
            c.close().expect("close");
        }
        let theirs = server.join().expect("server");
        assert_eq!(mine, theirs, "{version:?}");
        assert!(mine[1].0, "{version:?}: the second connection resumed");
        assert_ne!(mine[0].1, mine[1].1, "each session has its own secret");
    }
}

#[test]
fn inputs_no_exporter_takes_are_refused_by_name() {
    let pki = common::pki();
    for version in [TlsVersion::Tls13, TlsVersion::Tls12] {
        let (port, server) = our_server(&pki, version, |mut s| {
            let _ = s.handshake();
            let _ = s.read(&mut [0u8; 1]);
        });
        let mut c = client(context_for(&pki, false, version))
            .connect("localhost", port)
            .expect("connect");
        let long_label = [b'x'; 250];
        let long_context = vec![0u8; 70_000];
        let mut huge = vec![0u8; 255 * 48 + 1];
        let mut refused: Vec<(&str, Result<(), Error>)> = vec![(
            "empty output",
            c.export_keying_material(&mut [], b"EXPORTER-test", None),
        )];
        match version {
            TlsVersion::Tls13 => {
                refused.push((
                    "250-byte label",
                    c.export_keying_material(&mut [0u8; 32], &long_label, None),
                ));
                refused.push((
                    "more than 255 hash lengths",
                    c.export_keying_material(&mut huge, b"EXPORTER-test", None),
                ));
            }
            _ => refused.push((
                "70,000-byte context",
                c.export_keying_material(&mut [0u8; 32], b"EXPORTER-test", Some(&long_context)),
            )),
        }
        for (what, result) in refused {
            match result {
                Err(Error::InvalidInput { input, .. }) => {
                    assert_eq!(input, "export_keying_material", "{version:?}: {what}")
                }
                other => panic!("{version:?}: {what}: {other:?}"),
            }
        }
        c.close().expect("close");
        server.join().expect("server");
    }
}
