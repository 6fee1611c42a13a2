//! Password-protected keys: encrypted PKCS#8 (PEM and DER) and PKCS#12
//! bundles load with the right password, and a wrong one says so.

mod common;

use common::{client, handshake_with};
use p12_keystore::{Certificate, KeyStore, KeyStoreEntry, PrivateKey, PrivateKeyChain};
use pkcs8::der::EncodePem;
use pkcs8::der::pem::LineEnding;
use rustls::pki_types::pem::PemObject;
use rustls::pki_types::{CertificateDer, PrivateKeyDer};
use securenet::{BindOptions, Error, SecurityContext};

fn key_der(pem: &str) -> Vec<u8> {
    PrivateKeyDer::from_pem_slice(pem.as_bytes())
        .expect("key")
        .secret_der()
        .to_vec()
}

fn cert_der(pem: &str) -> Vec<u8> {
    CertificateDer::from_pem_slice(pem.as_bytes())
        .expect("cert")
        .to_vec()
}

/// The server key, encrypted with `password` (PBES2, AES-256-CBC, scrypt).
fn encrypted_key(pem: &str, password: &str) -> (Vec<u8>, String) {
    let der = key_der(pem);
    let info = pkcs8::PrivateKeyInfoRef::try_from(der.as_slice()).expect("pkcs8");
    let doc = info.encrypt(password).expect("encrypt");
    let parsed = pkcs8::EncryptedPrivateKeyInfoRef::try_from(doc.as_bytes()).expect("parse");
    let pem = parsed.to_pem(LineEnding::LF).expect("pem");
    (doc.as_bytes().to_vec(), pem)
}

fn reason(e: Error) -> String {
    match e {
        Error::Credentials { reason, .. } => reason,
        other => panic!("expected a credentials error, got {other:?}"),
    }
}

#[test]
fn encrypted_pkcs8_loads_with_the_right_password() {
    let pki = common::pki();
    let (der, pem) = encrypted_key(pki.server_key_pem(), "s3cret");
    assert!(
        pem.starts_with("-----BEGIN ENCRYPTED PRIVATE KEY-----"),
        "{pem}"
    );
    for bytes in [pem.as_bytes(), der.as_slice()] {
        let mut ctx = SecurityContext::empty();
        ctx.use_certificate_chain_bytes(pki.server_cert_pem().as_bytes())
            .expect("chain");
        ctx.use_private_key_with_password_bytes(bytes, "s3cret")
            .expect("decrypts");
        let (c, s) = handshake_with(
            &ctx,
            BindOptions::new(),
            client(pki.trust_context()),
            "localhost",
        );
        c.expect("client");
        s.expect("the decrypted key serves");

        let err = SecurityContext::empty()
            .use_private_key_with_password_bytes(bytes, "wrong")
            .expect_err("wrong password");
        assert!(reason(err).contains("wrong password"));
    }
    // A plain key with a password loads as it is (Node ignores the passphrase).
    SecurityContext::empty()
        .use_private_key_with_password_bytes(pki.server_key_pem().as_bytes(), "unused")
        .expect("unencrypted");
    // From a file.
    let path = std::env::temp_dir().join(format!("securenet-enc-{}.pem", std::process::id()));
    std::fs::write(&path, &pem).expect("write");
    let mut ctx = SecurityContext::empty();
    ctx.use_private_key_with_password(&path, "s3cret")
        .expect("file");
    let _ = std::fs::remove_file(&path);
}

/// A PKCS#12 bundle of the server's key and chain (leaf, CA).
fn bundle(pki: &securenet::testing::TestPki, password: &str) -> Vec<u8> {
    let key = PrivateKey::from_der(&key_der(pki.server_key_pem())).expect("key");
    let leaf = Certificate::from_der(&cert_der(pki.server_cert_pem())).expect("leaf");
    let ca = Certificate::from_der(&cert_der(&pki.ca_pem())).expect("ca");
    let mut store = KeyStore::new();
    store.add_entry(
        "server",
        KeyStoreEntry::PrivateKeyChain(PrivateKeyChain::new(b"0001".as_slice(), key, [leaf, ca])),
    );
    store.writer(password).write().expect("p12")
}

#[test]
fn pkcs12_bundles_give_the_chain_key_and_trust() {
    let pki = common::pki();
    let p12 = bundle(&pki, "pfx-pass");
    let mut server = SecurityContext::empty();
    server.use_pkcs12_bytes(&p12, "pfx-pass").expect("pkcs12");
    assert_eq!(server.certificate_chain().len(), 2, "leaf and CA");
    assert_eq!(server.certificate_chain()[0].subject(), "CN=localhost");

    // The client trusts the CA found in the same bundle.
    let mut trust = SecurityContext::empty();
    trust
        .set_trusted_certificates_pkcs12_bytes(&p12, "pfx-pass")
        .expect("trust");
    let (c, s) = handshake_with(&server, BindOptions::new(), client(trust), "localhost");
    c.expect("client verifies with the bundle's CA");
    s.expect("server serves the bundle's key");

    let err = SecurityContext::empty()
        .use_pkcs12_bytes(&p12, "nope")
        .expect_err("wrong password");
    assert!(reason(err).contains("wrong password"));
    let err = SecurityContext::empty()
        .use_pkcs12_bytes(b"not a bundle", "x")
        .expect_err("garbage");
    assert!(reason(err).contains("PKCS#12"));
}

/// A key whose password hashing would take minutes or gigabytes is refused
/// before any hashing, with a message that says how to re-encrypt it.
#[test]
fn hostile_key_derivation_parameters_are_refused() {
    use pkcs8::der::Encode;
    use pkcs8::pkcs5::EncryptionScheme;
    use pkcs8::pkcs5::pbes2::{Kdf, Pbkdf2Params, Pbkdf2Prf};

    let pki = common::pki();
    let (der, _) = encrypted_key(pki.server_key_pem(), "s3cret");
    let info = pkcs8::EncryptedPrivateKeyInfoRef::try_from(der.as_slice()).expect("parse");
    let EncryptionScheme::Pbes2(params) = &info.encryption_algorithm else {
        panic!("PBES2 expected");
    };
    let Kdf::Scrypt(scrypt) = &params.kdf else {
        panic!("scrypt expected");
    };
    let with_kdf = |kdf: Kdf| {
        let mut hostile = info.clone();
        if let EncryptionScheme::Pbes2(p) = &mut hostile.encryption_algorithm {
            p.kdf = kdf;
        }
        hostile.to_der().expect("encode")
    };
    let mut huge = *scrypt;
    huge.cost_parameter = 1 << 30;
    let pbkdf2 = Kdf::Pbkdf2(Pbkdf2Params {
        salt: scrypt.salt,
        iteration_count: 50_000_000,
        key_length: None,
        prf: Pbkdf2Prf::HmacWithSha256,
    });
    for (bytes, want) in [
        (with_kdf(Kdf::Scrypt(huge)), "scrypt N=1073741824 r=8 p=1"),
        (with_kdf(pbkdf2), "50000000 PBKDF2 iterations"),
    ] {
        let err = SecurityContext::empty()
            .use_private_key_with_password_bytes(&bytes, "s3cret")
            .expect_err("refused");
        let reason = reason(err);
        assert!(reason.contains(want), "{reason}");
        assert!(reason.contains("re-encrypt it"), "{reason}");
    }
}
