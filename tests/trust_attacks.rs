//! Attacks on the trust decision, each as a misbehaving peer over
//! loopback: a pin satisfied by a certificate the connection is not keyed
//! to, and a revoked certificate let through because it is also in the
//! trust file (client and server side).

mod common;

use common::{Ca, client, context_with, handshake_with, self_signed};
use rcgen::ExtendedKeyUsagePurpose;
use securenet::{BindOptions, CertificateProblem, SecurityContext, X509Certificate};

fn pin_of(pem: &str) -> String {
    X509Certificate::from_pem(pem.as_bytes())
        .expect("certificate")
        .remove(0)
        .spki_pin()
}

/// The attacker serves its own self-signed leaf (whose key it has)
/// followed by the genuine server certificate, which is public. A client
/// that pins the genuine key and skips chain verification (the pin is its
/// security) must refuse: the connection is keyed to the attacker's leaf.
#[test]
fn a_pin_is_not_satisfied_by_a_certificate_sent_after_the_leaf() {
    let ca = Ca::new("genuine CA");
    let (genuine, _genuine_key) = ca.leaf(&["localhost"], common::Leaf::Good);
    let (forged, forged_key) = self_signed(&["localhost"]);
    let attacker = context_with(&format!("{forged}{genuine}"), &forged_key);
    let pin = pin_of(&genuine);

    type Options<'a> = Box<dyn Fn() -> securenet::ConnectOptions + 'a>;
    let ways: [(&str, Options<'_>); 3] = [
        (
            "reject_unauthorized(false)",
            Box::new(|| client(SecurityContext::empty()).reject_unauthorized(false)),
        ),
        (
            "on_bad_certificate(|_| true)",
            Box::new(|| client(SecurityContext::empty()).on_bad_certificate(|_| true)),
        ),
        (
            "on_bad_certificate(|_| true) trusting the genuine CA",
            Box::new(|| client(ca.trust()).on_bad_certificate(|_| true)),
        ),
    ];
    for (how, options) in ways {
        let (c, _) = handshake_with(
            &attacker,
            BindOptions::new(),
            options().pin_sha256([pin.as_str()]),
            "localhost",
        );
        let err = c.expect_err(how);
        match err.certificate_problem() {
            Some(CertificateProblem::PinMismatch { presented, .. }) => {
                assert_eq!(
                    presented,
                    &[pin_of(&forged)],
                    "{how}: the leaf alone is named"
                );
            }
            other => panic!("{how}: expected a pin mismatch, got {other:?} ({err})"),
        }
    }

    // The genuine server with the same options still passes.
    let (genuine_cert, genuine_key) = ca.leaf(&["localhost"], common::Leaf::Good);
    let server = context_with(&genuine_cert, &genuine_key);
    let (c, _) = handshake_with(
        &server,
        BindOptions::new(),
        client(SecurityContext::empty())
            .reject_unauthorized(false)
            .pin_sha256([pin_of(&genuine_cert)]),
        "localhost",
    );
    c.expect("the pinned leaf itself");
}

/// A trust file holding the CA and the leaf (a "fullchain" file) plus
/// the CA's CRL revoking that leaf: the leaf is revoked, whatever else the
/// file trusts.
#[test]
fn a_revoked_server_certificate_in_the_trust_file_is_still_revoked() {
    let ca = Ca::new("fullchain CA");
    let (cert, key) = ca.leaf_with_serial("localhost", 4001, ExtendedKeyUsagePurpose::ServerAuth);
    let server = context_with(&cert, &key);
    for required in [false, true] {
        let mut trust = SecurityContext::empty();
        trust
            .set_trusted_certificates_bytes(format!("{}{cert}", ca.pem()).as_bytes())
            .expect("trust");
        trust
            .set_crls_bytes(ca.crl(&[4001]).as_bytes())
            .expect("crl");
        trust.set_crls_required(required);
        let (c, _) = handshake_with(&server, BindOptions::new(), client(trust), "localhost");
        let err = c.expect_err("revoked");
        assert!(
            matches!(
                err.certificate_problem(),
                Some(CertificateProblem::Revoked { .. })
            ),
            "crls_required {required}: {err:?}"
        );
    }
    // Trusting the leaf alone (no CA in the file) still works: that is
    // what trusting a certificate as itself is for.
    let mut trust = SecurityContext::empty();
    trust
        .set_trusted_certificates_bytes(cert.as_bytes())
        .expect("trust");
    let (c, _) = handshake_with(&server, BindOptions::new(), client(trust), "localhost");
    c.expect("the leaf trusted as itself");
}

/// A leaf trusted as itself is still checked against the CRLs the user
/// gave, even when its issuer is not trusted (nothing else can revoke it).
#[test]
fn a_leaf_trusted_as_itself_is_still_checked_against_its_issuers_crl() {
    let ca = Ca::new("absent CA");
    let (cert, key) = ca.leaf_with_serial("localhost", 4002, ExtendedKeyUsagePurpose::ServerAuth);
    let server = context_with(&cert, &key);
    let mut trust = SecurityContext::empty();
    trust
        .set_trusted_certificates_bytes(cert.as_bytes())
        .expect("trust");
    trust
        .set_crls_bytes(ca.crl(&[4002]).as_bytes())
        .expect("crl");
    let (c, _) = handshake_with(&server, BindOptions::new(), client(trust), "localhost");
    let err = c.expect_err("revoked by its issuer's CRL");
    assert!(
        matches!(
            err.certificate_problem(),
            Some(CertificateProblem::Revoked { .. })
        ),
        "{err:?}"
    );
}

/// The same on the server: client authorities holding the CA and the
/// client's own certificate, and a CRL revoking it.
#[test]
fn a_revoked_client_certificate_in_the_authorities_is_still_revoked() {
    let pki = common::pki();
    let ca = Ca::new("client CA");
    let (cert, key) = ca.leaf_with_serial("client", 4003, ExtendedKeyUsagePurpose::ClientAuth);
    let mut client_ctx = context_with(&cert, &key);
    client_ctx
        .set_trusted_certificates_bytes(pki.ca_pem().as_bytes())
        .expect("trust");
    let mut server_ctx = pki.server_context();
    server_ctx
        .set_client_authorities_bytes(format!("{}{cert}", ca.pem()).as_bytes())
        .expect("authorities");
    server_ctx
        .set_crls_bytes(ca.crl(&[4003]).as_bytes())
        .expect("crl");
    let bind = BindOptions::new().require_client_certificate(true);
    let (_, s) = handshake_with(&server_ctx, bind, client(client_ctx), "localhost");
    let err = s.expect_err("revoked client certificate");
    assert!(
        matches!(
            err.certificate_problem(),
            Some(CertificateProblem::Revoked { .. })
        ),
        "{err:?}"
    );
}
