//! CRLs: a revoked server certificate fails on the client, a revoked client
//! certificate fails on the server, each with a "revoked" error naming the
//! certificate, its revocation date and reason; a revoked intermediate is
//! named as such; a CRL that does not list the certificate changes nothing.

mod common;

use std::time::UNIX_EPOCH;

use common::{Ca, Leaf, client, handshake_with};
use rcgen::{ExtendedKeyUsagePurpose, RevocationReason, SerialNumber};
use securenet::{BindOptions, CertificateProblem, ChainPosition, SecurityContext};

/// The revocation time of the tests' CRLs: 2020-01-01.
const REVOKED_AT: u64 = 1_577_836_800;

/// The revoked certificate's position and subject, when, and why.
fn revoked(problem: Option<&CertificateProblem>) -> (ChainPosition, String, u64, Option<String>) {
    match problem {
        Some(CertificateProblem::Revoked {
            certificate: Some(c),
            revoked_at: Some(at),
            reason,
            ..
        }) => (
            c.position,
            c.subject.clone(),
            at.duration_since(UNIX_EPOCH).map_or(0, |d| d.as_secs()),
            reason.clone(),
        ),
        other => panic!("not a revocation naming the certificate: {other:?}"),
    }
}

#[test]
fn a_revoked_server_certificate_fails_on_the_client() {
    let ca = Ca::new("crl CA");
    let (cert, key) = ca.leaf_with_serial("localhost", 1001, ExtendedKeyUsagePurpose::ServerAuth);
    let server = common::context_with(&cert, &key);

    let mut trust = ca.trust();
    trust
        .set_crls_bytes(ca.crl(&[7, 1001]).as_bytes())
        .expect("crl");
    let (c, _) = handshake_with(&server, BindOptions::new(), client(trust), "localhost");
    let err = c.expect_err("revoked");
    assert_eq!(
        revoked(err.certificate_problem()),
        (
            ChainPosition::Leaf,
            "CN=localhost".to_owned(),
            REVOKED_AT,
            None
        )
    );
    assert!(
        err.to_string().contains(
            "the certificate CN=localhost has been revoked (on 2020-01-01 00:00:00 UTC); a CRL \
             given to set_crls lists it: the peer must use a new certificate"
        ),
        "{err}"
    );

    // A CRL that lists other serials changes nothing.
    let mut trust = ca.trust();
    trust.set_crls_bytes(ca.crl(&[7]).as_bytes()).expect("crl");
    let (c, _) = handshake_with(&server, BindOptions::new(), client(trust), "localhost");
    c.expect("not revoked");
}

/// Serials whose first byte has the high bit set are DER-encoded with a
/// leading zero; the revoked one is still found and named.
#[test]
fn a_revoked_certificate_is_named_whatever_its_serial() {
    let ca = Ca::new("crl CA");
    for serial in [0x80u64, 0xC8, 0x8000_0000_0000_0001, 0x7F] {
        let (cert, key) =
            ca.leaf_with_serial("localhost", serial, ExtendedKeyUsagePurpose::ServerAuth);
        let server = common::context_with(&cert, &key);
        let mut trust = ca.trust();
        trust
            .set_crls_bytes(ca.crl(&[1, serial, 0xFFFF]).as_bytes())
            .expect("crl");
        let (c, _) = handshake_with(&server, BindOptions::new(), client(trust), "localhost");
        let err = c.expect_err("revoked");
        assert_eq!(
            revoked(err.certificate_problem()).1,
            "CN=localhost",
            "serial {serial:#x}"
        );
    }
}

#[test]
fn a_revoked_client_certificate_fails_on_the_server() {
    let pki = common::pki();
    let ca = Ca::new("client CA");
    let (cert, key) = ca.leaf_with_serial("client", 2002, ExtendedKeyUsagePurpose::ClientAuth);
    let mut client_ctx = common::context_with(&cert, &key);
    client_ctx
        .set_trusted_certificates_bytes(pki.ca_pem().as_bytes())
        .expect("trust");

    let mut server_ctx = pki.server_context();
    server_ctx
        .set_client_authorities_bytes(ca.pem().as_bytes())
        .expect("authorities");
    server_ctx
        .set_crls_bytes(ca.crl(&[2002]).as_bytes())
        .expect("crl");
    let bind = BindOptions::new().require_client_certificate(true);
    let (_, s) = handshake_with(&server_ctx, bind, client(client_ctx), "localhost");
    let err = s.expect_err("revoked client certificate");
    assert_eq!(
        revoked(err.certificate_problem()),
        (
            ChainPosition::Leaf,
            "CN=client".to_owned(),
            REVOKED_AT,
            None
        )
    );
}

#[test]
fn a_revoked_intermediate_is_named_with_its_reason() {
    let root = Ca::new("crl root");
    let intermediate = root.intermediate_with("revoked intermediate", |p| {
        p.serial_number = Some(SerialNumber::from(3003u64));
    });
    let (cert, key) = intermediate.leaf(&["localhost"], Leaf::Good);
    let server = common::context_with(&format!("{cert}{}", intermediate.pem()), &key);
    let mut trust = root.trust();
    trust
        .set_crls_bytes(
            root.crl_for(&[3003], Some(RevocationReason::KeyCompromise))
                .as_bytes(),
        )
        .expect("crl");
    let (c, _) = handshake_with(&server, BindOptions::new(), client(trust), "localhost");
    let err = c.expect_err("revoked intermediate");
    assert_eq!(
        revoked(err.certificate_problem()),
        (
            ChainPosition::Intermediate,
            "CN=revoked intermediate".to_owned(),
            REVOKED_AT,
            Some("keyCompromise".to_owned())
        )
    );
    let text = err.to_string();
    assert!(
        text.contains(
            "the intermediate CN=revoked intermediate has been revoked (on 2020-01-01 00:00:00 \
             UTC, keyCompromise)"
        ),
        "{text}"
    );
    assert!(text.contains("a CA that is not revoked"), "{text}");
    // The same error through io::Error and back keeps its details.
    let back = securenet::Error::from(std::io::Error::from(err));
    assert_eq!(
        revoked(back.certificate_problem()).3.as_deref(),
        Some("keyCompromise")
    );
}

#[test]
fn bad_crl_input_is_an_error_naming_it() {
    let mut ctx = SecurityContext::empty();
    let err = ctx.set_crls_bytes(b"").expect_err("empty");
    assert!(err.to_string().contains("no revocation list"), "{err}");
    let err = ctx
        .set_crls_bytes(b"\x30\x03\x02\x01\x00")
        .expect_err("garbage");
    assert!(err.to_string().contains("CRL #1 is not valid"), "{err}");
    let err = ctx.set_crls("/nonexistent/list.crl").expect_err("missing");
    assert!(err.to_string().contains("/nonexistent/list.crl"), "{err}");
}

/// The problem's reason, for a chain the CRLs cannot check.
fn unchecked(err: &securenet::Error) -> String {
    match err.certificate_problem() {
        Some(CertificateProblem::RevocationUnchecked { reason, .. }) => reason.clone(),
        other => panic!("not a revocation that cannot be checked: {other:?} ({err})"),
    }
}

/// `set_crls_required(true)` fails closed: a certificate no CRL covers,
/// named, or an expired CRL, fails; with current CRLs for every issuer a
/// good chain connects. Without it, both pass (the default).
#[test]
fn required_crls_fail_closed_naming_what_is_not_covered() {
    let root = Ca::new("crl root");
    let intermediate = root.intermediate("crl intermediate");
    let (cert, key) = intermediate.leaf(&["localhost"], Leaf::Good);
    let server = common::context_with(&format!("{cert}{}", intermediate.pem()), &key);
    let connect = |crls: &[String], required: bool| {
        let mut trust = root.trust();
        for crl in crls {
            trust.set_crls_bytes(crl.as_bytes()).expect("crl");
        }
        trust.set_crls_required(required);
        let (c, _) = handshake_with(&server, BindOptions::new(), client(trust), "localhost");
        c
    };

    // Both issuers' CRLs, current, listing other serials: connects.
    let both = [root.crl(&[9]), intermediate.crl(&[9])];
    connect(&both, true).expect("every certificate covered");

    // Only the intermediate's CRL: the intermediate itself is not covered.
    let err = connect(&[intermediate.crl(&[9])], true).expect_err("root's CRL missing");
    assert_eq!(
        unchecked(&err),
        "no CRL covers the intermediate CN=crl intermediate: add the CRL of its issuer CN=crl root"
    );
    connect(&[intermediate.crl(&[9])], false).expect("not required: passes");

    // An expired CRL for the root: refused when required, used otherwise.
    let stale = [root.expired_crl(&[9]), intermediate.crl(&[9])];
    let err = connect(&stale, true).expect_err("expired CRL");
    assert!(
        unchecked(&err).contains("passed its nextUpdate time, 2001-01-01 00:00:00 UTC"),
        "{err}"
    );
    connect(&stale, false).expect("not required: an expired CRL is still used");

    // Required with no CRL at all is a configuration error, before any
    // handshake.
    let mut trust = root.trust();
    trust.set_crls_required(true);
    let err = client(trust)
        .connect("localhost", common::unused_port())
        .expect_err("no CRLs");
    match &err {
        securenet::Error::Credentials { input, reason, .. } => {
            assert_eq!(input, "revocation lists");
            assert!(reason.contains("set_crls_required(true)"), "{reason}");
        }
        other => panic!("not a configuration error: {other:?}"),
    }
    // So is a server that asks for client certificates.
    let mut server_ctx = server.clone();
    server_ctx
        .set_client_authorities_bytes(root.pem().as_bytes())
        .expect("authorities");
    server_ctx.set_crls_required(true);
    let err = BindOptions::new()
        .require_client_certificate(true)
        .bind("127.0.0.1", 0, &server_ctx)
        .expect_err("no CRLs for client certificates");
    assert!(
        matches!(&err, securenet::Error::Credentials { input, .. } if input == "revocation lists"),
        "{err:?}"
    );
}
