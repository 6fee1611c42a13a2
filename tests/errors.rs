//! Each failure gets its own error kind and an actionable message: expired,
//! not yet valid, name mismatch, unknown issuer (untrusted root, missing
//! intermediate), self-signed, CA as leaf, wrong key usage, no common
//! parameters, which timeout fired.

mod common;

use std::io::ErrorKind;
use std::net::{TcpListener, TcpStream};
use std::sync::Arc;
use std::thread;
use std::time::Duration;

use common::{Ca, Leaf, client, handshake_with};
use rcgen::{
    BasicConstraints, CertificateParams, CertifiedIssuer, DnType, IsCa, KeyPair, KeyUsagePurpose,
};
use securenet::{BindOptions, CertificateProblem, ConnectOptions, Error, Phase, SecurityContext};

fn client_error(server: &SecurityContext, trust: SecurityContext, host: &str) -> Error {
    let (c, _) = handshake_with(server, BindOptions::new(), client(trust), host);
    c.expect_err("the handshake must fail")
}

fn problem(err: &Error) -> &CertificateProblem {
    err.certificate_problem()
        .unwrap_or_else(|| panic!("expected a certificate error, got {err:?}"))
}

#[test]
fn expired_and_not_yet_valid() {
    let ca = Ca::new("validity CA");
    let err = client_error(
        &ca.server_context(&["localhost"], Leaf::Expired),
        ca.trust(),
        "localhost",
    );
    assert!(matches!(
        problem(&err),
        CertificateProblem::Expired { not_after: Some(_) }
    ));
    assert!(
        err.to_string().contains("expired (not after 2001-01-01"),
        "{err}"
    );
    assert_eq!(err.io_kind(), ErrorKind::InvalidData);

    let err = client_error(
        &ca.server_context(&["localhost"], Leaf::NotYetValid),
        ca.trust(),
        "localhost",
    );
    assert!(matches!(
        problem(&err),
        CertificateProblem::NotYetValid {
            not_before: Some(_)
        }
    ));
    assert!(
        err.to_string()
            .contains("not valid yet (not before 2200-01-01"),
        "{err}"
    );
}

#[test]
fn name_mismatch_says_what_was_expected_and_presented() {
    let ca = Ca::new("names CA");
    let err = client_error(
        &ca.server_context(&["www.example.test", "10.1.2.3"], Leaf::Good),
        ca.trust(),
        "localhost",
    );
    match problem(&err) {
        CertificateProblem::NameMismatch {
            expected,
            presented,
        } => {
            assert_eq!(expected, "localhost");
            assert_eq!(presented, &["www.example.test", "10.1.2.3"]);
        }
        other => panic!("{other:?}"),
    }
    assert!(
        err.to_string().contains("not valid for 'localhost'"),
        "{err}"
    );
    assert!(
        err.to_string().contains("www.example.test, 10.1.2.3"),
        "{err}"
    );
}

#[test]
fn wildcards_match_one_label_only() {
    let ca = Ca::new("wildcard CA");
    let server = ca.server_context(&["*.example.test"], Leaf::Good);
    let ok = ConnectOptions::new()
        .context(ca.trust())
        .server_name("api.example.test");
    let (c, _) = handshake_with(&server, BindOptions::new(), ok, "127.0.0.1");
    c.expect("*.example.test covers api.example.test");
    let deep = ConnectOptions::new()
        .context(ca.trust())
        .server_name("a.b.example.test");
    let (c, _) = handshake_with(&server, BindOptions::new(), deep, "127.0.0.1");
    let err = c.expect_err("not two labels");
    assert!(matches!(
        problem(&err),
        CertificateProblem::NameMismatch { .. }
    ));
}

#[test]
fn self_signed_untrusted_root_and_missing_intermediate_are_told_apart() {
    let (cert, key) = common::self_signed(&["localhost"]);
    let err = client_error(
        &common::context_with(&cert, &key),
        SecurityContext::empty(),
        "localhost",
    );
    assert!(
        matches!(problem(&err), CertificateProblem::SelfSigned { subject } if subject == "CN=localhost")
    );

    let untrusted = Ca::new("untrusted root");
    let err = client_error(
        &untrusted.server_context(&["localhost"], Leaf::Good),
        common::pki().trust_context(),
        "localhost",
    );
    match problem(&err) {
        CertificateProblem::UnknownIssuer { issuer } => assert_eq!(issuer, "CN=untrusted root"),
        other => panic!("{other:?}"),
    }
    assert!(
        err.to_string().contains("set_trusted_certificates"),
        "{err}"
    );

    // root -> intermediate -> leaf; the server sends the leaf only.
    let root = Ca::new("root CA");
    let mut params = CertificateParams::new(Vec::<String>::new()).expect("params");
    params
        .distinguished_name
        .push(DnType::CommonName, "intermediate CA");
    params.is_ca = IsCa::Ca(BasicConstraints::Unconstrained);
    params.key_usages = vec![KeyUsagePurpose::KeyCertSign];
    params.use_authority_key_identifier_extension = true;
    let intermediate = Ca {
        issuer: CertifiedIssuer::signed_by(params, KeyPair::generate().expect("key"), &root.issuer)
            .expect("intermediate"),
    };
    let (leaf, key) = intermediate.leaf(&["localhost"], Leaf::Good);
    let err = client_error(
        &common::context_with(&leaf, &key),
        root.trust(),
        "localhost",
    );
    match problem(&err) {
        CertificateProblem::UnknownIssuer { issuer } => assert_eq!(issuer, "CN=intermediate CA"),
        other => panic!("{other:?}"),
    }
    // With the intermediate in the chain it verifies.
    let full_chain = format!("{leaf}{}", intermediate.pem());
    let (c, _) = handshake_with(
        &common::context_with(&full_chain, &key),
        BindOptions::new(),
        client(root.trust()),
        "localhost",
    );
    let stream = c.expect("full chain verifies");
    assert_eq!(stream.peer_certificate_chain().len(), 2);
}

#[test]
fn ca_certificate_as_leaf_and_wrong_key_usage() {
    let ca = Ca::new("usage CA");
    let err = client_error(
        &ca.server_context(&["localhost"], Leaf::IsCa),
        ca.trust(),
        "localhost",
    );
    assert_eq!(problem(&err), &CertificateProblem::CaUsedAsLeaf, "{err}");
    assert!(err.to_string().contains("CA certificate"), "{err}");

    let err = client_error(
        &ca.server_context(&["localhost"], Leaf::ClientAuthOnly),
        ca.trust(),
        "localhost",
    );
    assert_eq!(problem(&err), &CertificateProblem::InvalidPurpose, "{err}");
    assert!(err.to_string().contains("serverAuth"), "{err}");
}

/// A raw rustls server whose only key exchange is one our client does not
/// offer: a handshake failure that says so.
#[test]
fn no_common_parameters_is_a_handshake_failure() {
    let pki = common::pki();
    let mut provider = rustls::crypto::aws_lc_rs::default_provider();
    provider.kx_groups = vec![rustls::crypto::aws_lc_rs::kx_group::MLKEM1024];
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
    let err = client(pki.trust_context())
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

#[test]
fn a_plain_tcp_server_is_not_mistaken_for_tls() {
    let (listener, port) = common::tcp_listener();
    let server = thread::spawn(move || {
        let (mut s, _) = listener.accept().expect("accept");
        std::io::Write::write_all(&mut s, b"HTTP/1.1 400 Bad Request\r\n\r\n").expect("write");
    });
    let err = client(SecurityContext::empty())
        .connect("127.0.0.1", port)
        .expect_err("not TLS");
    assert!(matches!(err, Error::Handshake { .. }), "{err:?}");
    assert!(err.to_string().contains("TLS"), "{err}");
    server.join().expect("server");
}

/// The connect timeout fires on a server whose accept queue is full
/// (backlog 1, nobody accepting), and says it was the connect.
#[test]
fn connect_timeout_names_its_phase() {
    let pki = common::pki();
    let listener = BindOptions::new()
        .backlog(1)
        .bind("127.0.0.1", 0, &pki.server_context())
        .expect("bind");
    let port = listener.port();
    let _queued: Vec<_> = (0..4)
        .filter_map(|_| {
            TcpStream::connect_timeout(&([127, 0, 0, 1], port).into(), Duration::from_millis(200))
                .ok()
        })
        .collect();
    let err = ConnectOptions::new()
        .timeout(Duration::from_millis(200))
        .connect("127.0.0.1", port)
        .expect_err("queue full");
    assert!(
        matches!(
            err,
            Error::Timeout {
                phase: Phase::Connect,
                ..
            }
        ),
        "{err:?}"
    );
    assert!(
        err.to_string().starts_with("connect timed out after 200ms"),
        "{err}"
    );
    drop(listener);
}
