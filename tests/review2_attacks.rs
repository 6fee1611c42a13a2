//! Second review of the trust decision and tickets: attacks on the fixes
//! of tests/review_attacks.rs, each of which failed before its fix. A
//! certificate named like its issuer is not "self-signed" (its own key must
//! verify it), so it keeps its issuer's name constraints and revocation;
//! a ticket is bound to which `on_bad_client_certificate` callback admitted
//! its client by a number no other callback gets, not by an address the
//! allocator hands on.

mod common;

use std::io::{Read, Write};
use std::sync::Arc;
use std::sync::atomic::{AtomicUsize, Ordering};

use common::{Ca, client, context_with, handshake_with};
use rcgen::{
    BasicConstraints, CertificateParams, CertifiedIssuer, DnType, ExtendedKeyUsagePurpose,
    GeneralSubtree, IsCa, KeyPair, KeyUsagePurpose, NameConstraints, SerialNumber,
};
use securenet::{BindOptions, SecurityContext};

// ---------------------------------------------------------------------
// "Self-issued" is decided by name (raw issuer == raw subject), not by
// signature: a certificate its CA named like that CA is "self-issued".

/// A leaf for `localhost` whose subject is `subject_cn` (the issuer's
/// CN, so that issuer == subject byte for byte), signed by `ca`.
fn named_like_issuer(ca: &Ca, subject_cn: &str, serial: u64, ca_bit: bool) -> (String, String) {
    let mut params = CertificateParams::new(vec!["localhost".to_owned()]).expect("params");
    params
        .distinguished_name
        .push(DnType::CommonName, subject_cn);
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

fn trusting(pems: &[&str], crl: Option<&str>) -> SecurityContext {
    let mut ctx = SecurityContext::empty();
    ctx.set_trusted_certificates_bytes(pems.concat().as_bytes())
        .expect("trust");
    if let Some(crl) = crl {
        ctx.set_crls_bytes(crl.as_bytes()).expect("crl");
    }
    ctx
}

/// Claim (policy.rs): "Trusted as itself never overrides ... name
/// constraints"; "a CA:TRUE leaf issued by a CA keeps that CA's checks".
/// The root is constrained to example.org; it issues a CA:TRUE leaf for
/// `localhost` whose subject repeats the root's own name. webpki stops at
/// CaUsedAsEndEntity, `leaf_is_self_issued` compares names only, and the
/// leaf stands for itself: the constraint is gone. (Same leaf with any
/// other subject: refused, tests/review_attacks.rs.)
#[test]
fn a_ca_true_leaf_named_like_its_root_does_not_escape_the_roots_name_constraints() {
    let mut params = CertificateParams::new(Vec::<String>::new()).expect("params");
    params
        .distinguished_name
        .push(DnType::CommonName, "constrained root");
    params.is_ca = IsCa::Ca(BasicConstraints::Unconstrained);
    params.key_usages = vec![KeyUsagePurpose::KeyCertSign, KeyUsagePurpose::CrlSign];
    params.name_constraints = Some(NameConstraints {
        permitted_subtrees: vec![GeneralSubtree::DnsName("example.org".to_owned())],
        excluded_subtrees: vec![],
    });
    let root = Ca {
        issuer: CertifiedIssuer::self_signed(params, KeyPair::generate().expect("key"))
            .expect("root"),
    };
    let (cert, key) = named_like_issuer(&root, "constrained root", 9501, true);
    let server = context_with(&cert, &key);
    let trust = trusting(&[&root.pem(), &cert], None);
    let (c, _) = handshake_with(&server, BindOptions::new(), client(trust), "localhost");
    if c.is_ok() {
        panic!(
            "a CA:TRUE leaf for localhost, issued by a root constrained to example.org, was \
             trusted as itself: its subject repeats its issuer's name, so it counts as \
             self-issued"
        );
    }
}

/// Claim (revocation.rs `leaf_status`, ba4a0b4): "leaving out a revoked
/// intermediate must not make a certificate trusted". The root's CRL
/// revokes the intermediate; the leaf it issued is named like it. The
/// server sends the leaf alone (or, CA:TRUE, even with the intermediate):
/// the leaf counts as self-issued and is trusted.
#[test]
fn a_leaf_named_like_its_revoked_intermediate_is_not_trusted_as_itself() {
    let root = Ca::new("root of a revoked intermediate");
    let inter = root.intermediate_with("revoked intermediate", |p| {
        p.serial_number = Some(SerialNumber::from(9601u64));
    });
    let crl = root.crl(&[9601]);
    let mut accepted = Vec::new();
    for (ca_bit, send_intermediate) in [(false, false), (true, true)] {
        let (cert, key) = named_like_issuer(&inter, "revoked intermediate", 9602, ca_bit);
        let chain = if send_intermediate {
            format!("{cert}{}", inter.pem())
        } else {
            cert.clone()
        };
        let server = context_with(&chain, &key);
        let trust = trusting(&[&root.pem(), &cert], Some(&crl));
        let (c, _) = handshake_with(&server, BindOptions::new(), client(trust), "localhost");
        if c.is_ok() {
            accepted.push(format!(
                "CA:{ca_bit}, intermediate sent: {send_intermediate}"
            ));
        }
    }
    assert!(
        accepted.is_empty(),
        "a leaf whose issuing intermediate the root's CRL revokes was trusted as itself: {accepted:?}"
    );
}

// ---------------------------------------------------------------------
// Tickets: the policy hash holds the callback's *address*.

/// Claim (b0212cc, ba4a0b4): a ticket opens only under the
/// `on_bad_client_certificate` callback that admitted its client. The
/// hash holds `Arc::as_ptr` of the callback: once a forgiving callback's
/// listener and context are gone, the allocator hands its block to the
/// next callback of that size, a refusing one, and the old ticket opens
/// under it (the same keys, the same files): the client is in, without
/// the refusing callback ever being asked.
#[test]
fn a_ticket_does_not_survive_into_a_refusing_callback_at_a_reused_address() {
    let pki = common::pki();
    let other = Ca::new("client authority the client is not from");
    let server_ctx = || {
        let mut c = context_with(pki.server_cert_pem(), pki.server_key_pem());
        c.set_client_authorities_bytes(other.pem().as_bytes())
            .expect("authorities");
        c
    };
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
    let asked = Arc::new(AtomicUsize::new(0));
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
    let mut outcomes = Vec::new();
    for round in 0..8 {
        // Ready before the old callback's block is freed.
        let ctx = server_ctx();
        let base = BindOptions::new()
            .ticket_keys(keys.clone())
            .require_client_certificate(true);
        // The forgiving listener, and a ticket from it.
        {
            let forgiving_ctx = server_ctx();
            let pad = [1u8; 200];
            let counter = asked.clone();
            let bind = BindOptions::new()
                .ticket_keys(keys.clone())
                .require_client_certificate(true)
                .on_bad_client_certificate(move |_| {
                    let _ = (&pad, &counter);
                    true
                });
            let listener = common::listener_with(bind, &forgiving_ctx);
            let port = listener.port();
            let h = serve(listener);
            visit(port);
            assert!(h.join().expect("forgiving").0, "round {round}: admitted");
            drop(forgiving_ctx);
        }
        // ...then the refusing callback, the same size.
        let pad = [2u8; 200];
        let counter = asked.clone();
        let bind = base.on_bad_client_certificate(move |_| {
            let _ = &pad;
            counter.fetch_add(1, Ordering::SeqCst);
            false
        });
        let listener = common::listener_with(bind, &ctx);
        let port = listener.port();
        let h = serve(listener);
        visit(port);
        let seen = h.join().expect("strict");
        outcomes.push(seen);
        assert_ne!(
            seen,
            (true, true),
            "a listener whose callback refuses every certificate resumed a ticket made under \
             a forgiving callback (refusing callback asked {} times); outcomes {outcomes:?}",
            asked.load(Ordering::SeqCst)
        );
    }
}
