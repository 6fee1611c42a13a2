//! Attacks a review found on the trust decision, sessions and messages:
//! each test is a way around a claim of the security core and failed
//! before its fix. A CA:TRUE leaf issued by a CA keeps that CA's checks
//! (name constraints, revocation, key usage); a leaf trusted as itself
//! whose chain was not sent is not trusted when CRLs are given; an expired
//! CRL does not cover anything; a ticket does not cross two different
//! `on_bad_client_certificate` callbacks; a WebSocket URL's password
//! never shows.

mod common;

use common::{Ca, Leaf, client, context_with, handshake_with};
use rcgen::{
    BasicConstraints, CertificateParams, CertifiedIssuer, DnType, ExtendedKeyUsagePurpose,
    GeneralSubtree, IsCa, KeyPair, KeyUsagePurpose, NameConstraints, SerialNumber,
};
use securenet::{BindOptions, CertificateProblem, SecurityContext};

/// A leaf for `name` signed by `ca`, with `serial`, EKU serverAuth, and
/// basicConstraints CA:TRUE if `ca_bit` (as `openssl req -x509` and many
/// appliance certificates have it): (certificate PEM, key PEM).
fn leaf(ca: &Ca, name: &str, serial: u64, ca_bit: bool) -> (String, String) {
    let mut params = CertificateParams::new(vec![name.to_owned()]).expect("params");
    params.distinguished_name.push(DnType::CommonName, name);
    params.serial_number = Some(SerialNumber::from(serial));
    params.extended_key_usages = vec![ExtendedKeyUsagePurpose::ServerAuth];
    params.use_authority_key_identifier_extension = true;
    if ca_bit {
        params.is_ca = IsCa::Ca(BasicConstraints::Unconstrained);
    }
    let key = KeyPair::generate().expect("key");
    let cert = params.signed_by(&key, &ca.issuer).expect("sign");
    (cert.pem(), key.serialize_pem())
}

fn trusting(pems: &[&str], crl: Option<&str>, required: bool) -> SecurityContext {
    let mut ctx = SecurityContext::empty();
    ctx.set_trusted_certificates_bytes(pems.concat().as_bytes())
        .expect("trust");
    if let Some(crl) = crl {
        ctx.set_crls_bytes(crl.as_bytes()).expect("crl");
    }
    ctx.set_crls_required(required);
    ctx
}

/// A root CA whose name constraints permit only `permitted` (DNS).
fn constrained_root(permitted: &str) -> Ca {
    let mut params = CertificateParams::new(Vec::<String>::new()).expect("params");
    params
        .distinguished_name
        .push(DnType::CommonName, "constrained root");
    params.is_ca = IsCa::Ca(BasicConstraints::Unconstrained);
    params.key_usages = vec![KeyUsagePurpose::KeyCertSign, KeyUsagePurpose::CrlSign];
    params.name_constraints = Some(NameConstraints {
        permitted_subtrees: vec![GeneralSubtree::DnsName(permitted.to_owned())],
        excluded_subtrees: vec![],
    });
    let key = KeyPair::generate().expect("key");
    Ca {
        issuer: CertifiedIssuer::self_signed(params, key).expect("root"),
    }
}

/// Claim: "trusted as itself" never overrides name constraints. A trusted
/// root constrained to example.org; the user's trust file also holds a
/// leaf that root issued for `localhost`. With CA:FALSE the leaf is refused
/// (NameConstraints); the very same leaf with basicConstraints CA:TRUE is
/// accepted, because webpki stops at CaUsedAsEndEntity before building
/// the path, and `CaUsedAsEndEntity` is treated as "no issuer".
#[test]
fn a_ca_true_leaf_in_the_trust_file_does_not_escape_its_roots_name_constraints() {
    let root = constrained_root("example.org");
    for ca_bit in [false, true] {
        let (cert, key) = leaf(&root, "localhost", 9101, ca_bit);
        let server = context_with(&cert, &key);
        let trust = trusting(&[&root.pem(), &cert], None, false);
        let (c, _) = handshake_with(&server, BindOptions::new(), client(trust), "localhost");
        match c {
            Err(e) => assert!(
                matches!(
                    (ca_bit, e.certificate_problem()),
                    (false, Some(CertificateProblem::NameConstraints { .. }))
                        | (true, Some(CertificateProblem::CaUsedAsLeaf))
                ),
                "CA:{ca_bit}: {e:?}"
            ),
            Ok(_) => panic!(
                "CA:{ca_bit}: a leaf outside its trusted root's name constraints was \
                 accepted (trusted as itself overrode name constraints)"
            ),
        }
    }
}

/// Claim: "trusted as itself" never overrides revocation. The root's CRL
/// revokes the intermediate that issued the leaf; the server sends leaf +
/// intermediate; the user's trust file has the root and the leaf. With
/// CA:FALSE: Revoked. With CA:TRUE: accepted (webpki never reaches the
/// path, `leaf_status` only looks for the leaf's own serial).
#[test]
fn a_ca_true_leaf_in_the_trust_file_does_not_escape_its_issuers_revocation() {
    let root = Ca::new("root of a revoked intermediate");
    let inter = root.intermediate_with("revoked intermediate", |p| {
        p.serial_number = Some(SerialNumber::from(9201u64));
    });
    let crl = root.crl(&[9201]);
    for ca_bit in [false, true] {
        let (cert, key) = leaf(&inter, "localhost", 9202, ca_bit);
        let server = context_with(&format!("{cert}{}", inter.pem()), &key);
        let trust = trusting(&[&root.pem(), &cert], Some(&crl), false);
        let (c, _) = handshake_with(&server, BindOptions::new(), client(trust), "localhost");
        match c {
            Err(e) => assert!(
                matches!(
                    (ca_bit, e.certificate_problem()),
                    (false, Some(CertificateProblem::Revoked { .. }))
                        | (true, Some(CertificateProblem::CaUsedAsLeaf))
                ),
                "CA:{ca_bit}: {e:?}"
            ),
            Ok(_) => panic!(
                "CA:{ca_bit}: a leaf whose issuing intermediate is revoked was accepted \
                 (trusted as itself overrode revocation)"
            ),
        }
    }
}

/// The same revocation, for an ordinary CA:FALSE leaf: the server decides
/// whether the revocation counts. Sending the intermediate gets Revoked;
/// leaving it out turns the failure into UnknownIssuer, which a leaf in
/// the trust file "stands in" for.
#[test]
fn stripping_the_revoked_intermediate_does_not_make_a_leaf_trusted() {
    let root = Ca::new("root of a revoked intermediate");
    let inter = root.intermediate_with("revoked intermediate", |p| {
        p.serial_number = Some(SerialNumber::from(9301u64));
    });
    let crl = root.crl(&[9301]);
    let (cert, key) = leaf(&inter, "localhost", 9302, false);
    for send_intermediate in [true, false] {
        let chain = if send_intermediate {
            format!("{cert}{}", inter.pem())
        } else {
            cert.clone()
        };
        let server = context_with(&chain, &key);
        let trust = trusting(&[&root.pem(), &cert], Some(&crl), false);
        let (c, _) = handshake_with(&server, BindOptions::new(), client(trust), "localhost");
        match c {
            Err(e) => assert!(
                matches!(
                    (send_intermediate, e.certificate_problem()),
                    (true, Some(CertificateProblem::Revoked { .. }))
                        | (false, Some(CertificateProblem::RevocationUnchecked { .. }))
                ),
                "intermediate sent {send_intermediate}: {e:?}"
            ),
            Ok(_) => panic!(
                "intermediate sent {send_intermediate}: accepted although its issuer is \
                 revoked by a CRL given"
            ),
        }
    }
}

/// Claim (set_crls_required): "a certificate no CRL covers, or an expired
/// CRL, fails verification". For a leaf trusted as itself, `leaf_status`
/// only asks whether a CRL from the issuer's name exists, never whether it
/// has expired. The same leaf through its trusted CA is refused.
#[test]
fn crls_required_refuses_an_expired_crl_for_a_leaf_trusted_as_itself() {
    let ca = Ca::new("CA with an expired CRL");
    let (cert, key) = leaf(&ca, "localhost", 9401, false);
    let server = context_with(&cert, &key);
    let crl = ca.expired_crl(&[]);
    for (how, trust) in [
        (
            "CA and leaf trusted",
            trusting(&[&ca.pem(), &cert], Some(&crl), true),
        ),
        (
            "leaf trusted as itself",
            trusting(&[&cert], Some(&crl), true),
        ),
    ] {
        let (c, _) = handshake_with(&server, BindOptions::new(), client(trust), "localhost");
        match c {
            Err(e) => assert!(
                matches!(
                    e.certificate_problem(),
                    Some(CertificateProblem::RevocationUnchecked { .. })
                ),
                "{how}: {e:?}"
            ),
            Ok(_) => {
                panic!("{how}: accepted under set_crls_required(true) with only an expired CRL")
            }
        }
    }
}

/// Claim: a leaf trusted as itself is refused when "unfit for the use".
/// webpki refuses a leaf whose only EKU is anyExtendedKeyUsage for
/// serverAuth (so the CA:FALSE leaf, through its trusted CA, is refused);
/// `PathCheck::itself` accepts "any", reached whenever the leaf is CA:TRUE.
#[test]
fn a_leaf_with_only_any_eku_is_unfit_as_itself_as_through_its_ca() {
    let ca = Ca::new("any-EKU CA");
    for ca_bit in [false, true] {
        let mut params = CertificateParams::new(vec!["localhost".to_owned()]).expect("params");
        params
            .distinguished_name
            .push(DnType::CommonName, "localhost");
        params.extended_key_usages = vec![ExtendedKeyUsagePurpose::Any];
        if ca_bit {
            params.is_ca = IsCa::Ca(BasicConstraints::Unconstrained);
        }
        let key = KeyPair::generate().expect("key");
        let cert = params.signed_by(&key, &ca.issuer).expect("sign").pem();
        let server = context_with(&cert, &key.serialize_pem());
        let trust = trusting(&[&ca.pem(), &cert], None, false);
        let (c, _) = handshake_with(&server, BindOptions::new(), client(trust), "localhost");
        match c {
            Err(e) => assert!(
                matches!(
                    (ca_bit, e.certificate_problem()),
                    (false, Some(CertificateProblem::InvalidPurpose { .. }))
                        | (true, Some(CertificateProblem::CaUsedAsLeaf))
                ),
                "CA:{ca_bit}: {e:?}"
            ),
            Ok(_) => panic!("CA:{ca_bit}: a leaf with only anyExtendedKeyUsage was accepted"),
        }
    }
}

/// Known leak (confirmed): a `wss://user:password@host` URL that fails to
/// parse is echoed whole, password included, in the error's Display (and
/// `WsUrl`'s derived Debug holds the decoded credentials).
#[test]
fn a_websocket_url_error_never_shows_the_password() {
    for url in [
        "wss://user:s3cretpw@localhost:99999/",
        "ws://user:s3cretpw@127.0.0.1/chat#frag",
        "wss://user:s3cretpw%zz@localhost/",
    ] {
        let Err(err) = securenet::WebSocketOptions::new().connect(url) else {
            panic!("{url}: refused before any I/O");
        };
        let shown = format!("{err} / {err:?}");
        assert!(
            !shown.contains("s3cretpw"),
            "{url}: the password is in the error: {shown}"
        );
    }
}

#[allow(dead_code)]
fn _unused(_: Leaf) {}

/// Claim: a ticket opens only under the client-certificate policy that
/// admitted the client. The policy hash records only that an
/// `on_bad_client_certificate` callback exists, not what it answers: two
/// listeners sharing ticket keys, one whose callback admits any
/// certificate, one whose callback refuses. A client refused by the
/// second (full handshake) gets in by resuming a ticket from the first.
#[test]
fn a_ticket_from_a_forgiving_callback_does_not_open_a_listener_whose_callback_refuses() {
    use std::io::{Read, Write};

    let pki = common::pki();
    let other = Ca::new("client authority the client is not from");
    let mut server_ctx = context_with(pki.server_cert_pem(), pki.server_key_pem());
    server_ctx
        .set_client_authorities_bytes(other.pem().as_bytes())
        .expect("authorities");
    let (cert, key) = common::self_signed(&["intruder"]);
    let mut client_ctx = context_with(&cert, &key);
    client_ctx
        .set_trusted_certificates_bytes(pki.ca_pem().as_bytes())
        .expect("trust");
    client_ctx
        .set_protocol_versions(securenet::TlsVersion::Tls13, securenet::TlsVersion::Tls13)
        .expect("versions");
    let options = client(client_ctx);
    let keys = securenet::TicketKeys::generate().expect("keys");
    let bind = |admit: bool| {
        BindOptions::new()
            .ticket_keys(keys.clone())
            .require_client_certificate(true)
            .on_bad_client_certificate(move |_| admit)
    };
    // Serves one connection: (handshake ok, resumed).
    let serve = |listener: securenet::SecureListener| {
        std::thread::spawn(move || {
            let (mut s, _) = listener.accept().expect("accept");
            common::with_timeouts(&mut s);
            let ok = s.handshake().is_ok();
            if ok && s.write_all(b"hi").is_ok() {
                let _ = s.read_to_end(&mut Vec::new());
            }
            (ok, s.is_session_reused())
        })
    };
    let visit = |port: u16| {
        if let Ok(mut c) = options.connect("localhost", port) {
            common::with_timeouts(&mut c);
            let _ = c.read_exact(&mut [0u8; 2]);
            let _ = c.close();
        }
    };
    let forgiving = common::listener_with(bind(true), &server_ctx);
    let strict = common::listener_with(bind(false), &server_ctx);
    let (fp, sp) = (forgiving.port(), strict.port());
    let (f, s) = (serve(forgiving), serve(strict));
    visit(fp);
    assert_eq!(
        f.join().expect("forgiving"),
        (true, false),
        "admitted by the forgiving callback"
    );
    visit(sp);
    let strict_saw = s.join().expect("strict");
    assert_eq!(
        strict_saw,
        (false, false),
        "the strict listener's callback refuses this certificate, yet (handshake ok, resumed) = \
         {strict_saw:?}"
    );
}
