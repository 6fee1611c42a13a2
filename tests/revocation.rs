//! CRLs: a revoked server certificate fails on the client, a revoked client
//! certificate fails on the server, each with a "revoked" error; a CRL that
//! does not list the certificate changes nothing.

mod common;

use common::{Ca, client, handshake_with};
use rcgen::ExtendedKeyUsagePurpose;
use securenet::{BindOptions, CertificateProblem, SecurityContext};

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
        err.certificate_problem(),
        Some(&CertificateProblem::Revoked),
        "{err:?}"
    );
    assert!(err.to_string().contains("revoked"), "{err}");

    // A CRL that lists other serials changes nothing.
    let mut trust = ca.trust();
    trust.set_crls_bytes(ca.crl(&[7]).as_bytes()).expect("crl");
    let (c, _) = handshake_with(&server, BindOptions::new(), client(trust), "localhost");
    c.expect("not revoked");
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
        err.certificate_problem(),
        Some(&CertificateProblem::Revoked),
        "{err:?}"
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
