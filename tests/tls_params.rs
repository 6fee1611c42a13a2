//! SecurityContext TLS parameters (Node createSecureContext): protocol
//! versions, cipher suites by IANA or OpenSSL name, key exchange groups.

mod common;

use common::{client, handshake_with};
use securenet::{BindOptions, Error, SecurityContext, TlsVersion};

fn with_versions(mut ctx: SecurityContext, min: TlsVersion, max: TlsVersion) -> SecurityContext {
    ctx.set_protocol_versions(min, max).expect("versions");
    ctx
}

#[test]
fn protocol_versions_are_limited_and_a_gap_says_so() {
    let pki = common::pki();
    let tls12 = with_versions(pki.trust_context(), TlsVersion::Tls12, TlsVersion::Tls12);
    let (c, _) = handshake_with(
        &pki.server_context(),
        BindOptions::new(),
        client(tls12.clone()),
        "localhost",
    );
    assert_eq!(
        c.expect("1.2").protocol_version().as_deref(),
        Some("TLSv1.2")
    );

    let server13 = with_versions(pki.server_context(), TlsVersion::Tls13, TlsVersion::Tls13);
    let (c, s) = handshake_with(&server13, BindOptions::new(), client(tls12), "localhost");
    let err = c.expect_err("no common version");
    assert!(
        err.to_string()
            .contains("versions of the two sides do not overlap"),
        "client: {err}"
    );
    let err = s.expect_err("no common version");
    assert!(
        err.to_string()
            .contains("versions of the two sides do not overlap"),
        "server: {err}"
    );

    let mut ctx = SecurityContext::empty();
    let err = ctx
        .set_protocol_versions(TlsVersion::Tls10, TlsVersion::Tls13)
        .expect_err("TLS 1.0");
    assert!(matches!(err, Error::Unsupported { .. }), "{err:?}");
    assert_eq!(err.io_kind(), std::io::ErrorKind::Unsupported);
    let err = ctx
        .set_protocol_versions(TlsVersion::Tls13, TlsVersion::Tls12)
        .expect_err("min above max");
    assert!(matches!(err, Error::InvalidInput { .. }), "{err:?}");
    assert_eq!(
        "TLSv1.3".parse::<TlsVersion>().expect("parse"),
        TlsVersion::Tls13
    );
    assert_eq!(
        "1.2".parse::<TlsVersion>().expect("parse"),
        TlsVersion::Tls12
    );
    assert!("SSLv3".parse::<TlsVersion>().is_err());
}

#[test]
fn cipher_suites_by_iana_and_openssl_names() {
    let pki = common::pki();
    let mut chacha = pki.trust_context();
    let chosen = chacha.set_cipher_suites(&["TLS13_CHACHA20_POLY1305_SHA256"]);
    if cfg!(feature = "fips") {
        // Not FIPS-approved: refused by name, not at the handshake.
        let err = chosen.expect_err("chacha is not approved");
        assert!(err.to_string().contains("not FIPS-approved"), "{err}");
    } else {
        chosen.expect("suite");
        let (c, _) = handshake_with(
            &pki.server_context(),
            BindOptions::new(),
            client(chacha),
            "localhost",
        );
        assert_eq!(
            c.expect("chacha").cipher_suite().as_deref(),
            Some("TLS13_CHACHA20_POLY1305_SHA256")
        );
    }

    // OpenSSL names, Node's colon-separated string; TLS 1.2 only.
    let mut openssl = with_versions(pki.trust_context(), TlsVersion::Tls12, TlsVersion::Tls12);
    openssl
        .set_cipher_suites(&["ECDHE-ECDSA-AES128-GCM-SHA256:ECDHE-RSA-AES128-GCM-SHA256"])
        .expect("suites");
    let (c, _) = handshake_with(
        &pki.server_context(),
        BindOptions::new(),
        client(openssl),
        "localhost",
    );
    assert_eq!(
        c.expect("1.2").cipher_suite().as_deref(),
        Some("TLS_ECDHE_ECDSA_WITH_AES_128_GCM_SHA256")
    );

    // The server's limit applies too.
    let mut server = pki.server_context();
    server
        .set_cipher_suites(&["TLS_AES_128_GCM_SHA256"])
        .expect("suite");
    let (c, _) = handshake_with(
        &server,
        BindOptions::new(),
        client(pki.trust_context()),
        "localhost",
    );
    assert_eq!(
        c.expect("128").cipher_suite().as_deref(),
        Some("TLS13_AES_128_GCM_SHA256")
    );

    let err = SecurityContext::empty()
        .set_cipher_suites(&["RC4-MD5"])
        .expect_err("unknown");
    let msg = err.to_string();
    assert!(
        msg.contains("RC4-MD5") && msg.contains("TLS13_AES_128_GCM_SHA256"),
        "{msg}"
    );

    // TLS 1.3 only with only TLS 1.2 suites cannot work: said at connect.
    let mut nothing = with_versions(pki.trust_context(), TlsVersion::Tls13, TlsVersion::Tls13);
    nothing
        .set_cipher_suites(&["ECDHE-ECDSA-AES128-GCM-SHA256"])
        .expect("suite");
    let err = client(nothing)
        .connect("localhost", 1)
        .expect_err("no suite");
    assert!(err.to_string().contains("do not fit together"), "{err}");
}

#[test]
fn key_exchange_groups_are_chosen_and_reported() {
    let pki = common::pki();
    let mut x25519 = pki.trust_context();
    let chosen = x25519.set_key_exchange_groups(&["X25519"]);
    if cfg!(feature = "fips") {
        let err = chosen.expect_err("X25519 alone is not approved");
        assert!(err.to_string().contains("not FIPS-approved"), "{err}");
    } else {
        chosen.expect("group");
        let (c, _) = handshake_with(
            &pki.server_context(),
            BindOptions::new(),
            client(x25519),
            "localhost",
        );
        assert_eq!(
            c.expect("x25519").negotiated_group().as_deref(),
            Some("X25519")
        );
    }

    // A server that only speaks P-384: the client's default list has it.
    let mut server = pki.server_context();
    server.set_key_exchange_groups(&["P-384"]).expect("group");
    let (c, _) = handshake_with(
        &server,
        BindOptions::new(),
        client(pki.trust_context()),
        "localhost",
    );
    assert_eq!(
        c.expect("p384").negotiated_group().as_deref(),
        Some("secp384r1")
    );

    let (c, _) = handshake_with(
        &pki.server_context(),
        BindOptions::new(),
        client(pki.trust_context()),
        "localhost",
    );
    // The post-quantum hybrid is preferred where the provider has it.
    // ring: its first default group (X25519 up to rustls 0.23.47,
    // secp384r1 from 0.23.48).
    let (default_group, listed) = if cfg!(feature = "aws-lc-rs") {
        (Some("X25519MLKEM768"), "X25519MLKEM768")
    } else {
        (
            common::rustls_provider().kx_groups[0].name().as_str(),
            "secp384r1",
        )
    };
    assert_eq!(
        c.expect("default").negotiated_group().as_deref(),
        default_group
    );

    let err = SecurityContext::empty()
        .set_key_exchange_groups(&["brainpoolP256r1"])
        .expect_err("unknown");
    assert!(err.to_string().contains(listed), "{err}");
}

/// With ring there is no post-quantum group: asking for one says which
/// provider has it, not just "unknown".
#[cfg(not(feature = "aws-lc-rs"))]
#[test]
fn post_quantum_groups_name_the_provider_that_has_them() {
    let err = SecurityContext::empty()
        .set_key_exchange_groups(&["X25519MLKEM768"])
        .expect_err("not with ring");
    let text = err.to_string();
    assert!(
        text.contains("X25519MLKEM768") && text.contains("ring") && text.contains("aws-lc-rs"),
        "{text}"
    );
}
