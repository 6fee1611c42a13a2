//! OCSP stapling: the response a server context staples reaches the
//! client byte for byte (TLS 1.3 and 1.2); none stapled is `None`;
//! bytes that are not DER are refused. (`.ci/run` checks a real
//! `openssl ocsp` response with `s_client -status` and `s_server`.)

mod common;

use common::{client, handshake_with, pki};
use securenet::{BindOptions, Error, TlsVersion};

/// An OCSPResponse with only its status (successful): the smallest DER a
/// server could staple.
const RESPONSE: &[u8] = &[0x30, 0x03, 0x0a, 0x01, 0x00];

#[test]
fn a_stapled_response_reaches_the_client_in_both_versions() {
    let pki = pki();
    for version in [TlsVersion::Tls13, TlsVersion::Tls12] {
        let mut server = pki.server_context();
        server.set_ocsp_response_bytes(RESPONSE).expect("staple");
        server
            .set_protocol_versions(version, version)
            .expect("versions");
        let (c, s) = handshake_with(
            &server,
            BindOptions::new(),
            client(pki.trust_context()),
            "localhost",
        );
        s.expect("server");
        let c = c.expect("client");
        assert_eq!(c.ocsp_response(), Some(RESPONSE), "{version:?}");
    }
    let (c, _) = handshake_with(
        &pki.server_context(),
        BindOptions::new(),
        client(pki.trust_context()),
        "localhost",
    );
    assert_eq!(c.expect("client").ocsp_response(), None, "nothing stapled");
}

#[test]
fn a_response_that_is_not_der_is_refused() {
    let mut ctx = pki().server_context();
    for bad in [
        &b""[..],
        b"-----BEGIN OCSP RESPONSE-----",
        &[0x30, 0x05, 0x0a],
        &[0x30, 0x01, 0, 0],
    ] {
        let err = ctx.set_ocsp_response_bytes(bad).expect_err("not DER");
        assert!(matches!(err, Error::Credentials { .. }), "{err:?}");
        assert!(err.to_string().contains("openssl ocsp -respout"), "{err}");
    }
    let missing = ctx
        .set_ocsp_response("/nonexistent/ocsp.der")
        .expect_err("missing file");
    assert!(matches!(missing, Error::File { .. }), "{missing:?}");
}
