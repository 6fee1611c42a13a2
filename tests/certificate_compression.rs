//! Certificate compression (RFC 8879, zlib): a securenet server sends a
//! raw rustls client its chain compressed, so fewer handshake bytes reach
//! the client than with `certificate_compression(false)`; the test PKI's
//! chain and a chain the size of a public site's (RSA-2048 leaf and two
//! intermediates) both shrink, and the figures are printed. Either side
//! turning it off still connects, uncompressed.

mod common;

use std::io::{self, Read, Write};
use std::net::TcpStream;
use std::sync::Arc;

use common::{Ca, client, context_with, serve_one, tcp_timeouts};
use rcgen::{CertificateParams, DnType, ExtendedKeyUsagePurpose, KeyPair};
use securenet::{BindOptions, SecurityContext};

/// A stream that counts the bytes read from it.
struct Counting {
    inner: TcpStream,
    read: usize,
}

impl Read for Counting {
    fn read(&mut self, buf: &mut [u8]) -> io::Result<usize> {
        let n = self.inner.read(buf)?;
        self.read += n;
        Ok(n)
    }
}

impl Write for Counting {
    fn write(&mut self, buf: &[u8]) -> io::Result<usize> {
        self.inner.write(buf)
    }

    fn flush(&mut self) -> io::Result<()> {
        self.inner.flush()
    }
}

/// The bytes a raw rustls TLS 1.3 client (which accepts zlib-compressed
/// chains) receives in a whole handshake with a securenet server serving
/// `server` with `bind`, trusting `root_pem`.
fn handshake_bytes(server: &SecurityContext, bind: BindOptions, root_pem: &str) -> usize {
    let (port, handle) = serve_one(bind, server, |mut s| s.handshake());
    let mut roots = rustls::RootCertStore::empty();
    roots
        .add(rustls::pki_types::pem::PemObject::from_pem_slice(root_pem.as_bytes()).expect("root"))
        .expect("root");
    let config = rustls::ClientConfig::builder_with_protocol_versions(&[&rustls::version::TLS13])
        .with_root_certificates(roots)
        .with_no_client_auth();
    assert!(
        !config.cert_decompressors.is_empty(),
        "the raw client accepts compressed chains"
    );
    let mut conn =
        rustls::ClientConnection::new(Arc::new(config), "localhost".try_into().expect("name"))
            .expect("client");
    let sock = TcpStream::connect(("127.0.0.1", port)).expect("connect");
    tcp_timeouts(&sock);
    let mut counting = Counting {
        inner: sock,
        read: 0,
    };
    while conn.is_handshaking() {
        conn.complete_io(&mut counting).expect("handshake");
    }
    while conn.wants_write() {
        conn.write_tls(&mut counting).expect("finished");
    }
    handle.join().expect("server").expect("server handshake");
    counting.read
}

/// RSA-2048 certificate parameters for `cn` (and `names`).
fn rsa_params(cn: &str, names: &[&str]) -> (CertificateParams, KeyPair) {
    let key = common::rsa_key();
    let mut params =
        CertificateParams::new(names.iter().map(|s| s.to_string()).collect::<Vec<_>>())
            .expect("params");
    params.distinguished_name.push(DnType::CommonName, cn);
    params
        .distinguished_name
        .push(DnType::OrganizationName, "securenet test certificates");
    params.use_authority_key_identifier_extension = true;
    (params, key)
}

/// An RSA-2048 intermediate CA signed by `parent`.
fn rsa_intermediate(parent: &Ca, cn: &str) -> Ca {
    let (mut params, key) = rsa_params(cn, &[]);
    params.is_ca = rcgen::IsCa::Ca(rcgen::BasicConstraints::Unconstrained);
    params.key_usages = vec![
        rcgen::KeyUsagePurpose::KeyCertSign,
        rcgen::KeyUsagePurpose::CrlSign,
    ];
    Ca {
        issuer: rcgen::CertifiedIssuer::signed_by(params, key, &parent.issuer)
            .expect("intermediate"),
    }
}

fn compare(what: &str, server: &SecurityContext, root_pem: &str) -> (usize, usize) {
    let on = handshake_bytes(server, BindOptions::new(), root_pem);
    let off = handshake_bytes(
        server,
        BindOptions::new().certificate_compression(false),
        root_pem,
    );
    eprintln!("{what}: server's handshake bytes {on} compressed, {off} uncompressed");
    assert!(on < off, "{what}: {on} compressed, {off} uncompressed");
    (on, off)
}

#[test]
fn the_servers_chain_reaches_a_rustls_client_compressed() {
    let pki = common::pki();
    compare(
        "test PKI (ECDSA P-256 leaf)",
        &pki.server_context(),
        &pki.ca_pem(),
    );

    // A public site's size: an RSA-2048 leaf and two RSA intermediates.
    let root = Ca::new("compression root");
    let mid1 = rsa_intermediate(&root, "compression intermediate 1");
    let mid2 = rsa_intermediate(&mid1, "compression intermediate 2");
    let (mut params, key) = rsa_params("localhost", &["localhost"]);
    params.extended_key_usages = vec![ExtendedKeyUsagePurpose::ServerAuth];
    let leaf = params.signed_by(&key, &mid2.issuer).expect("leaf");
    let server = context_with(
        &format!("{}{}{}", leaf.pem(), mid2.pem(), mid1.pem()),
        &key.serialize_pem(),
    );
    let (on, off) = compare("RSA-2048 leaf + 2 intermediates", &server, &root.pem());
    // Names, OIDs and structure repeat across the chain (keys and
    // signatures do not compress): about 13 % here.
    assert!(on * 20 < off * 19, "{on} of {off}: less than 5 % saved");
}

#[test]
fn either_side_turning_it_off_still_connects() {
    let pki = common::pki();
    for (server_on, client_on) in [(true, false), (false, true), (true, true)] {
        let (port, handle) = serve_one(
            BindOptions::new().certificate_compression(server_on),
            &pki.server_context(),
            |mut s| s.handshake(),
        );
        let mut c = client(pki.trust_context())
            .certificate_compression(client_on)
            .connect("localhost", port)
            .expect("connect");
        c.close().expect("close");
        handle.join().expect("server").expect("server handshake");
    }
}
