//! SecurityContext loading (PEM/DER, key formats, errors that name the
//! input) and X509Certificate's fields.

mod common;

use std::io::ErrorKind;
use std::time::{Duration, SystemTime};

use rcgen::{KeyPair, PKCS_ECDSA_P256_SHA256, PKCS_RSA_SHA256};
use rustls::pki_types::pem::PemObject;
use rustls::pki_types::{CertificateDer, PrivateKeyDer};
use securenet::{Error, SecurityContext, X509Certificate};

fn temp_file(name: &str, contents: &[u8]) -> std::path::PathBuf {
    let dir = std::env::temp_dir().join(format!("securenet-test-{}", std::process::id()));
    std::fs::create_dir_all(&dir).expect("temp dir");
    let path = dir.join(name);
    std::fs::write(&path, contents).expect("write temp file");
    path
}

fn credentials_reason(e: Error) -> (String, String) {
    match e {
        Error::Credentials { input, reason, .. } => (input, reason),
        other => panic!("expected a credentials error, got {other:?}"),
    }
}

#[test]
fn missing_file_names_its_path() {
    let mut ctx = SecurityContext::empty();
    let err = ctx
        .set_trusted_certificates("/nonexistent/ca.pem")
        .expect_err("missing file");
    assert_eq!(err.io_kind(), ErrorKind::NotFound);
    assert!(matches!(&err, Error::File { path, .. } if path.ends_with("ca.pem")));
    assert!(err.to_string().contains("/nonexistent/ca.pem"), "{err}");
    for r in [
        ctx.use_certificate_chain("/nonexistent/chain.pem"),
        ctx.use_private_key("/nonexistent/key.pem"),
        ctx.set_client_authorities("/nonexistent/clients.pem"),
    ] {
        assert!(matches!(r, Err(Error::File { .. })), "{r:?}");
    }
}

#[test]
fn files_are_loaded_from_disk() {
    let pki = common::pki();
    let ca = temp_file("ca.pem", pki.ca_pem().as_bytes());
    let chain = temp_file("chain.pem", pki.server_cert_pem().as_bytes());
    let key = temp_file("key.pem", pki.server_key_pem().as_bytes());
    let mut server = SecurityContext::empty();
    server.use_certificate_chain(&chain).expect("chain");
    server.use_private_key(&key).expect("key");
    server.set_client_authorities(&ca).expect("authorities");
    let mut client = SecurityContext::empty();
    client.set_trusted_certificates(&ca).expect("trust");
    let (port, srv) = common::echo_server(&server);
    let mut s = common::client(client)
        .connect("localhost", port)
        .expect("connect");
    common::with_timeouts(&mut s);
    std::io::Write::write_all(&mut s, b"x").expect("write");
    let mut b = [0u8; 1];
    std::io::Read::read_exact(&mut s, &mut b).expect("read");
    s.close().expect("close");
    srv.join().expect("server").expect("server ok");
}

#[test]
fn pem_without_certificate_is_an_error_naming_the_input() {
    let pki = common::pki();
    let mut ctx = SecurityContext::empty();
    let path = temp_file("swapped.pem", pki.server_key_pem().as_bytes());
    let (input, reason) = credentials_reason(
        ctx.use_certificate_chain(&path)
            .expect_err("a key is not a chain"),
    );
    assert!(input.ends_with("swapped.pem"), "{input}");
    assert!(
        reason.contains("no certificate") && reason.contains("swapped"),
        "{reason}"
    );
    let (_, reason) = credentials_reason(
        ctx.set_trusted_certificates_bytes(b"hello")
            .expect_err("garbage"),
    );
    assert!(reason.contains("not valid"), "{reason}");
    let (_, reason) =
        credentials_reason(ctx.set_trusted_certificates_bytes(b"").expect_err("empty"));
    assert!(reason.contains("no certificate"), "{reason}");
}

#[test]
fn pem_without_key_is_an_error() {
    let pki = common::pki();
    let mut ctx = SecurityContext::empty();
    let (input, reason) = credentials_reason(
        ctx.use_private_key_bytes(pki.server_cert_pem().as_bytes())
            .expect_err("a certificate is not a key"),
    );
    assert_eq!(input, "private key (bytes)");
    assert!(
        reason.contains("no private key") && reason.contains("swapped"),
        "{reason}"
    );
}

#[test]
fn key_not_matching_chain_is_an_error_in_either_order() {
    let pki = common::pki();
    let mut ctx = SecurityContext::empty();
    ctx.use_certificate_chain_bytes(pki.server_cert_pem().as_bytes())
        .expect("chain");
    let (_, reason) = credentials_reason(
        ctx.use_private_key_bytes(pki.client_key_pem().as_bytes())
            .expect_err("mismatch"),
    );
    assert!(
        reason.contains("does not match") && reason.contains("CN=localhost"),
        "{reason}"
    );

    let mut ctx = SecurityContext::empty();
    ctx.use_private_key_bytes(pki.client_key_pem().as_bytes())
        .expect("key");
    let err = ctx
        .use_certificate_chain_bytes(pki.server_cert_pem().as_bytes())
        .expect_err("mismatch");
    assert!(err.to_string().contains("does not match"), "{err}");
}

#[test]
fn encrypted_keys_are_refused_with_a_decrypt_hint() {
    let mut ctx = SecurityContext::empty();
    let pkcs8 = b"-----BEGIN ENCRYPTED PRIVATE KEY-----\nMIIBvTBXBgkqhkiG9w0BBQ0w\n-----END ENCRYPTED PRIVATE KEY-----\n";
    let (_, reason) = credentials_reason(ctx.use_private_key_bytes(pkcs8).expect_err("encrypted"));
    assert!(
        reason.contains("encrypted") && reason.contains("use_private_key_with_password"),
        "{reason}"
    );
    let legacy = b"-----BEGIN RSA PRIVATE KEY-----\nProc-Type: 4,ENCRYPTED\nDEK-Info: AES-128-CBC,00\n\nAAAA\n-----END RSA PRIVATE KEY-----\n";
    let (_, reason) = credentials_reason(ctx.use_private_key_bytes(legacy).expect_err("encrypted"));
    assert!(
        reason.contains("legacy") && reason.contains("openssl pkcs8 -topk8"),
        "{reason}"
    );
}

/// PKCS#8, PKCS#1 and SEC1 keys, in PEM and in DER, all load and pair with
/// their certificate.
#[test]
fn key_formats_pem_and_der() {
    let ca = common::Ca::new("formats CA");
    for alg in [&PKCS_ECDSA_P256_SHA256, &PKCS_RSA_SHA256] {
        let key = if alg == &PKCS_RSA_SHA256 {
            common::rsa_key()
        } else {
            KeyPair::generate_for(alg).expect("key")
        };
        let mut params = rcgen::CertificateParams::new(vec!["localhost".to_owned()]).expect("p");
        params.use_authority_key_identifier_extension = true;
        let cert = params.signed_by(&key, &ca.issuer).expect("cert");
        let pkcs8 = key.serialize_der();
        let parsed = PrivateKeyDer::try_from(pkcs8.clone()).expect("der");
        // Re-encode as PKCS#1 (RSA) or SEC1 (EC) via the PKCS#8 wrapper's inner key.
        let inner = match &parsed {
            PrivateKeyDer::Pkcs8(k) => pkcs8_inner(k.secret_pkcs8_der()),
            _ => unreachable!("rcgen makes PKCS#8"),
        };
        let label = if alg == &PKCS_RSA_SHA256 {
            "RSA PRIVATE KEY"
        } else {
            "EC PRIVATE KEY"
        };
        let legacy_der = inner;
        let legacy_pem = pem(label, &legacy_der);
        for key_bytes in [
            key.serialize_pem().into_bytes(),
            pkcs8.clone(),
            legacy_pem.into_bytes(),
            legacy_der.clone(),
        ] {
            let mut ctx = SecurityContext::empty();
            ctx.use_certificate_chain_bytes(cert.der())
                .expect("DER chain");
            ctx.use_private_key_bytes(&key_bytes)
                .unwrap_or_else(|e| panic!("{label}: {e}"));
            assert_eq!(ctx.certificate_chain().len(), 1);
        }
    }
}

/// The privateKey OCTET STRING inside a PKCS#8 PrivateKeyInfo: the PKCS#1
/// or SEC1 key. (A minimal DER walk, enough for rcgen's keys.)
fn pkcs8_inner(der: &[u8]) -> Vec<u8> {
    fn header(d: &[u8]) -> (usize, usize) {
        let len0 = d[1] as usize;
        if len0 < 0x80 {
            (2, len0)
        } else {
            let n = len0 & 0x7f;
            let mut len = 0usize;
            for b in &d[2..2 + n] {
                len = (len << 8) | *b as usize;
            }
            (2 + n, len)
        }
    }
    let (h, _) = header(der); // SEQUENCE
    let mut rest = &der[h..];
    for _ in 0..2 {
        // version INTEGER, algorithm SEQUENCE
        let (h, l) = header(rest);
        rest = &rest[h + l..];
    }
    let (h, l) = header(rest); // OCTET STRING
    rest[h..h + l].to_vec()
}

fn pem(label: &str, der: &[u8]) -> String {
    let b64 = base64(der);
    let mut out = format!("-----BEGIN {label}-----\n");
    for chunk in b64.as_bytes().chunks(64) {
        out.push_str(std::str::from_utf8(chunk).expect("ascii"));
        out.push('\n');
    }
    out.push_str(&format!("-----END {label}-----\n"));
    out
}

fn base64(data: &[u8]) -> String {
    const T: &[u8; 64] = b"ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+/";
    let mut out = String::new();
    for c in data.chunks(3) {
        let n = (u32::from(c[0]) << 16)
            | (u32::from(*c.get(1).unwrap_or(&0)) << 8)
            | u32::from(*c.get(2).unwrap_or(&0));
        for i in 0..4 {
            if i <= c.len() {
                out.push(T[(n >> (18 - 6 * i)) as usize & 63] as char);
            } else {
                out.push('=');
            }
        }
    }
    out
}

#[test]
fn a_clone_taken_before_a_mutation_does_not_see_it() {
    let pki = common::pki();
    let mut ctx = SecurityContext::empty();
    let before = ctx.clone();
    ctx.use_certificate_chain_bytes(pki.server_cert_pem().as_bytes())
        .expect("chain");
    assert_eq!(ctx.certificate_chain().len(), 1);
    assert!(before.certificate_chain().is_empty());
}

#[test]
fn context_without_key_cannot_serve() {
    let pki = common::pki();
    let mut ctx = SecurityContext::empty();
    ctx.use_certificate_chain_bytes(pki.server_cert_pem().as_bytes())
        .expect("chain");
    let err = securenet::SecureListener::bind("127.0.0.1", 0, &ctx).expect_err("no key");
    assert!(err.to_string().contains("use_private_key"), "{err}");
    let err = securenet::SecureListener::bind("127.0.0.1", 0, &SecurityContext::empty())
        .expect_err("no certificate");
    assert!(err.to_string().contains("no certificate"), "{err}");
}

#[test]
fn x509_certificate_fields() {
    let pki = common::pki();
    let der = CertificateDer::from_pem_slice(pki.server_cert_pem().as_bytes()).expect("pem");
    let cert = X509Certificate::from_der(&der).expect("parse");
    assert_eq!(cert.subject(), "CN=localhost");
    assert_eq!(cert.issuer(), "CN=securenet test CA");
    assert_eq!(
        cert.subject_alt_names(),
        vec!["localhost", "127.0.0.1", "::1"]
    );
    let now = SystemTime::now();
    assert!(cert.start_validity() < now && now < cert.end_validity());
    assert!(cert.end_validity() > now + Duration::from_secs(86_400));
    assert_eq!(cert.der(), der.as_ref());
    assert_eq!(cert.pem(), pki.server_cert_pem().replace("\r\n", "\n"));
    let sha256 = common::crypto::digest::digest(&common::crypto::digest::SHA256, &der);
    assert_eq!(&cert.sha256()[..], sha256.as_ref());
    let sha1 =
        common::crypto::digest::digest(&common::crypto::digest::SHA1_FOR_LEGACY_USE_ONLY, &der);
    assert_eq!(&cert.sha1()[..], sha1.as_ref());
    assert!(!cert.is_ca());
    assert!(pki.ca_certificate().is_ca());
    assert_eq!(X509Certificate::from_der(cert.der()).expect("again"), cert);
}

#[test]
fn x509_subject_is_rfc4514_most_specific_first() {
    let key = KeyPair::generate().expect("key");
    let mut params = rcgen::CertificateParams::new(vec!["a.example".to_owned()]).expect("p");
    params.distinguished_name = rcgen::DistinguishedName::new();
    params
        .distinguished_name
        .push(rcgen::DnType::CountryName, "NZ");
    params
        .distinguished_name
        .push(rcgen::DnType::OrganizationName, "Example, Ltd");
    params
        .distinguished_name
        .push(rcgen::DnType::CommonName, "a.example");
    let cert = params.self_signed(&key).expect("cert");
    let c = X509Certificate::from_der(cert.der()).expect("parse");
    assert_eq!(c.subject(), "CN=a.example,O=Example\\, Ltd,C=NZ");
}

#[test]
fn x509_from_der_rejects_garbage() {
    let err = X509Certificate::from_der(b"\x30\x03\x02\x01\x00").expect_err("garbage");
    assert_eq!(err.io_kind(), ErrorKind::InvalidData);
    assert!(
        err.to_string().contains("not a valid X.509 certificate"),
        "{err}"
    );
}

#[test]
fn garbage_inside_pem_says_what_was_expected() {
    let garbage = b"-----BEGIN CERTIFICATE-----\n!!!! not base64 !!!!\n-----END CERTIFICATE-----\n";
    let err = SecurityContext::empty()
        .set_trusted_certificates_bytes(garbage)
        .expect_err("garbage");
    let (input, reason) = credentials_reason(err);
    assert_eq!(input, "trusted certificates (bytes)");
    assert!(reason.contains("malformed PEM"), "{reason}");
    assert!(
        reason.contains("expected -----BEGIN CERTIFICATE----- as base64 lines"),
        "{reason}"
    );
    assert!(reason.contains("not DER or PKCS#12"), "{reason}");
    let garbage_key = b"-----BEGIN PRIVATE KEY-----\n!!!!\n-----END PRIVATE KEY-----\n";
    let err = SecurityContext::empty()
        .use_private_key_bytes(garbage_key)
        .expect_err("garbage key");
    let (_, reason) = credentials_reason(err);
    assert!(
        reason.contains("expected -----BEGIN PRIVATE KEY----- as base64 lines"),
        "{reason}"
    );
}

#[test]
fn x509_certificate_describes_itself_as_node_does() {
    let pki = common::pki();
    // Two certificates in one PEM text, in order.
    let both = format!("{}{}", pki.server_cert_pem(), pki.ca_pem());
    let certs = X509Certificate::from_pem(both.as_bytes()).expect("pem");
    assert_eq!(certs.len(), 2);
    let (leaf, ca) = (&certs[0], &certs[1]);
    assert_eq!(leaf.subject(), "CN=localhost");
    assert_eq!(*ca, pki.ca_certificate());
    let path = temp_file("both.pem", both.as_bytes());
    assert_eq!(X509Certificate::from_pem_file(&path).expect("file"), certs);
    let err = X509Certificate::from_pem(b"no pem here").expect_err("none");
    assert!(err.to_string().contains("no certificate"), "{err}");

    // Serial: upper-case hex of the DER integer.
    assert!(!leaf.serial_number().is_empty());
    assert!(
        leaf.serial_number()
            .bytes()
            .all(|b| b.is_ascii_digit() || (b'A'..=b'F').contains(&b)),
        "{}",
        leaf.serial_number()
    );
    // The SPKI hash is that of the key's SubjectPublicKeyInfo.
    let key = KeyPair::from_pem(pki.server_key_pem()).expect("key");
    let spki = common::crypto::digest::digest(
        &common::crypto::digest::SHA256,
        &rcgen::PublicKeyData::subject_public_key_info(&key),
    );
    assert_eq!(&leaf.spki_sha256()[..], spki.as_ref());
    assert_ne!(leaf.spki_sha256(), ca.spki_sha256());
    // The test PKI's keys are ECDSA P-256, signed with SHA-256.
    assert_eq!(leaf.public_key_algorithm(), "EC P-256");
    assert_eq!(leaf.public_key_bits(), Some(256));
    assert_eq!(leaf.signature_algorithm(), "ecdsa-with-SHA256");
    assert!(
        ca.key_usage().contains(&"keyCertSign"),
        "{:?}",
        ca.key_usage()
    );
    assert!(
        leaf.extended_key_usage().iter().any(|u| u == "serverAuth"),
        "{:?}",
        leaf.extended_key_usage()
    );

    // An RSA key says its size.
    let rsa = common::rsa_key();
    let params = rcgen::CertificateParams::new(vec!["rsa.example".to_owned()]).expect("p");
    let rsa_cert = params.self_signed(&rsa).expect("cert");
    let rsa_cert = X509Certificate::from_der(rsa_cert.der()).expect("parse");
    assert_eq!(rsa_cert.public_key_algorithm(), "RSA");
    assert_eq!(rsa_cert.public_key_bits(), Some(2048));
    assert_eq!(rsa_cert.signature_algorithm(), "sha256WithRSAEncryption");

    // Hash agrees with equality; Display has every line.
    let set: std::collections::HashSet<X509Certificate> = [leaf.clone(), leaf.clone(), ca.clone()]
        .into_iter()
        .collect();
    assert_eq!(set.len(), 2);
    let shown = leaf.to_string();
    for want in [
        "subject: CN=localhost",
        "issuer: CN=securenet test CA",
        "names: localhost, 127.0.0.1, ::1",
        "sha256: ",
    ] {
        assert!(shown.contains(want), "{want}: {shown}");
    }
    let valid = shown
        .lines()
        .find(|l| l.starts_with("valid: "))
        .expect("valid");
    assert!(
        valid.ends_with('Z') && valid.contains('T'),
        "RFC 3339: {valid}"
    );
}
