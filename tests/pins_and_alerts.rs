//! Public key pinning, the alerts each certificate failure sends to the
//! peer (from both verifiers), and the handshake failures that must be
//! told to the peer and named to the user: a chain over 64 KiB, a
//! ClientHello refused before a configuration is chosen.

mod common;

use std::io::Read;

use common::{Ca, Leaf, client, context_with, handshake_with, pki, self_signed, serve_one};
use securenet::{BindOptions, CertificateProblem, Error, SecurityContext};

/// Connects with `options` to a server serving `server_ctx` with `bind`;
/// the client's error (the handshake, or the first read, where TLS 1.3
/// reports a rejected client certificate) and the server's.
fn failure(
    server_ctx: &SecurityContext,
    bind: BindOptions,
    options: securenet::ConnectOptions,
) -> (Option<Error>, Option<Error>) {
    let (port, server) = serve_one(bind, server_ctx, |mut s| {
        let r = s.handshake();
        if r.is_ok() {
            let mut buf = [0u8; 1];
            let _ = s.read(&mut buf);
        }
        r
    });
    let client = options.connect("localhost", port).and_then(|mut c| {
        c.set_read_timeout(Some(common::IO_TIMEOUT))?;
        let mut buf = [0u8; 1];
        c.read(&mut buf).map_err(Error::from).map(|_| ())
    });
    (client.err(), server.join().expect("server").err())
}

#[test]
fn a_pinned_key_of_the_chain_lets_the_connection_through() {
    let pki = pki();
    let leaf = securenet::X509Certificate::from_pem(pki.server_cert_pem().as_bytes())
        .expect("leaf")
        .remove(0);
    for (what, pin) in [
        ("the leaf's key", leaf.spki_pin()),
        (
            "the root's key (a trust anchor)",
            pki.ca_certificate().spki_pin(),
        ),
    ] {
        let (c, s) = handshake_with(
            &pki.server_context(),
            BindOptions::new(),
            client(pki.trust_context()).pin_sha256([
                pin.as_str(),
                "sha256//AAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAA=",
            ]),
            "localhost",
        );
        assert!(
            c.is_ok() && s.is_ok(),
            "{what}: {:?} {:?}",
            c.err(),
            s.err()
        );
    }
}

#[test]
fn a_pin_mismatch_is_its_own_error_and_the_server_is_told() {
    let pki = pki();
    let wrong = "sha256//AAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAA=";
    let leaf = securenet::X509Certificate::from_pem(pki.server_cert_pem().as_bytes())
        .expect("leaf")
        .remove(0);
    let (c, s) = handshake_with(
        &pki.server_context(),
        BindOptions::new(),
        client(pki.trust_context()).pin_sha256([wrong]),
        "localhost",
    );
    let err = c.expect_err("a pin of no key of the chain");
    match err.certificate_problem() {
        Some(CertificateProblem::PinMismatch {
            expected,
            presented,
            ..
        }) => {
            assert_eq!(expected, &[wrong]);
            assert_eq!(presented, &[leaf.spki_pin()]);
        }
        other => panic!("expected a pin mismatch, got {other:?} ({err})"),
    }
    assert_eq!(err.io_kind(), std::io::ErrorKind::InvalidData);
    assert!(err.to_string().contains("pinned [sha256//AAAA"), "{err}");
    let s = s.expect_err("the server sees the alert");
    assert!(s.to_string().contains("access_denied alert"), "{s}");
}

#[test]
fn without_verification_the_pins_alone_decide() {
    let (cert, key) = self_signed(&["localhost"]);
    let server = context_with(&cert, &key);
    let pin = securenet::X509Certificate::from_pem(cert.as_bytes())
        .expect("cert")
        .remove(0)
        .spki_pin();
    let unverified = || client(SecurityContext::empty()).reject_unauthorized(false);
    let (c, _) = handshake_with(
        &server,
        BindOptions::new(),
        unverified().pin_sha256([&pin]),
        "localhost",
    );
    let stream = c.expect("the pin matches the self-signed leaf");
    assert!(
        matches!(
            stream.authorization_error(),
            Some(CertificateProblem::SelfSigned { .. })
        ),
        "still reported: {:?}",
        stream.authorization_error()
    );
    let (c, _) = handshake_with(
        &server,
        BindOptions::new(),
        unverified().pin_sha256(["sha256//AAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAA="]),
        "localhost",
    );
    let err = c.expect_err("the pin does not match");
    assert!(
        matches!(
            err.certificate_problem(),
            Some(CertificateProblem::PinMismatch { .. })
        ),
        "{err:?}"
    );
}

#[test]
fn a_malformed_pin_is_refused_at_connect_naming_it() {
    let pki = pki();
    // Refused before any I/O: nothing listens at the port, nothing is tried.
    let unused = std::net::TcpListener::bind("127.0.0.1:0")
        .and_then(|l| l.local_addr())
        .expect("a port")
        .port();
    for pin in ["sha256//not*base64", "sha256//AAAA"] {
        let err = client(pki.trust_context())
            .pin_sha256([pin])
            .connect("localhost", unused)
            .expect_err("malformed");
        assert!(
            matches!(&err, Error::InvalidInput { input, .. } if input == pin),
            "{err:?}"
        );
        assert!(err.to_string().contains("pin_sha256"), "{err}");
    }
}

/// The server's error after our client rejected its certificate names the
/// alert our client sent.
#[test]
fn the_client_sends_the_alert_that_fits() {
    let ca = Ca::new("alerts CA");
    let (revoked, revoked_key) =
        ca.leaf_with_serial("localhost", 77, rcgen::ExtendedKeyUsagePurpose::ServerAuth);
    let mut with_crl = ca.trust();
    with_crl
        .set_crls_bytes(ca.crl(&[77]).as_bytes())
        .expect("crl");
    let cases = [
        (
            "expired",
            ca.server_context(&["localhost"], Leaf::Expired),
            ca.trust(),
            "certificate_expired alert",
        ),
        (
            "untrusted",
            Ca::new("other").server_context(&["localhost"], Leaf::Good),
            ca.trust(),
            "unknown_ca alert",
        ),
        (
            "wrong name",
            ca.server_context(&["elsewhere.test"], Leaf::Good),
            ca.trust(),
            "bad_certificate alert",
        ),
        (
            "clientAuth only",
            ca.server_context(&["localhost"], Leaf::ClientAuthOnly),
            ca.trust(),
            "unsupported_certificate alert",
        ),
        (
            "revoked",
            context_with(&revoked, &revoked_key),
            with_crl,
            "certificate_revoked alert",
        ),
    ];
    for (what, server, trust, alert) in cases {
        let (c, s) = failure(&server, BindOptions::new(), client(trust));
        assert!(
            c.as_ref()
                .is_some_and(|e| e.certificate_problem().is_some()),
            "{what}: {c:?}"
        );
        let s = s.unwrap_or_else(|| panic!("{what}: the server must fail"));
        assert!(s.to_string().contains(alert), "{what}: {s}");
    }
}

/// The client's error after our server rejected its certificate names the
/// alert our server sent.
#[test]
fn the_server_sends_the_alert_that_fits() {
    let ca = Ca::new("client alerts CA");
    let pki = pki();
    let mut server = pki.server_context();
    server
        .set_client_authorities_bytes(ca.pem().as_bytes())
        .expect("client authorities");
    let with_cert = |ctx: SecurityContext| {
        let mut ctx = ctx;
        ctx.set_trusted_certificates_bytes(pki.ca_pem().as_bytes())
            .expect("trust");
        client(ctx)
    };
    let expired = {
        let (cert, key) = ca.leaf(&["client"], Leaf::Expired);
        context_with(&cert, &key)
    };
    let other = {
        let (cert, key) = Ca::new("other").leaf_with_serial(
            "client",
            1,
            rcgen::ExtendedKeyUsagePurpose::ClientAuth,
        );
        context_with(&cert, &key)
    };
    for (what, ctx, alert, problem) in [
        (
            "expired",
            expired,
            "certificate_expired alert",
            "has expired",
        ),
        (
            "untrusted",
            other,
            "unknown_ca alert",
            "does not lead to a trusted root",
        ),
    ] {
        let bind = BindOptions::new().require_client_certificate(true);
        let (c, s) = failure(&server, bind, with_cert(ctx));
        let c = c.unwrap_or_else(|| panic!("{what}: the client must fail"));
        assert!(c.to_string().contains(alert), "{what}: {c}");
        let s = s.unwrap_or_else(|| panic!("{what}: the server must fail"));
        assert!(s.to_string().contains(problem), "{what}: {s}");
    }
}

#[test]
fn a_chain_over_64_kib_is_named_as_such() {
    let root = Ca::new("big chain root");
    // 200 intermediates of about 400 bytes each: about 80 KiB.
    let extra: String = (0..200)
        .map(|i| root.intermediate(&format!("big chain {i}")).pem())
        .collect();
    let (leaf, key) = root.leaf(&["localhost"], Leaf::Good);
    let chain = extra;
    let server = context_with(&format!("{leaf}{chain}"), &key);
    // Sent whole, or compressed (it then inflates past 64 KiB).
    for compressed in [false, true] {
        let bind = BindOptions::new().certificate_compression(compressed);
        let (c, _) = failure(&server, bind, client(root.trust()));
        let c = c.expect("the client must fail");
        assert!(
            c.to_string().contains("over 64 KiB") && c.to_string().contains("too large"),
            "compressed {compressed}: {c}"
        );
    }
}

#[test]
fn a_hello_refused_while_choosing_a_configuration_gets_a_fatal_alert() {
    let pki = pki();
    // Several ALPN protocols and an on_sni callback: the server reads the
    // ClientHello first; the callback's context has no certificate.
    let bind = BindOptions::new()
        .supported_protocols(&["h2", "http/1.1"])
        .on_sni(|_| Some(SecurityContext::empty()));
    let (c, s) = failure(
        &pki.server_context(),
        bind,
        client(pki.trust_context()).supported_protocols(&["h2"]),
    );
    let c = c.expect("the client must fail");
    assert!(c.to_string().contains("InternalError alert"), "{c}");
    let s = s.expect("the server must fail");
    assert!(s.to_string().contains("on_sni"), "{s}");
}
