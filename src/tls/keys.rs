//! Password-protected key material: encrypted PKCS#8 (`ENCRYPTED PRIVATE
//! KEY`, PBES2) and PKCS#12 bundles (Node `pfx` + `passphrase`, Dart's
//! PKCS#12 support), decrypted with pure-Rust crates.

use p12_keystore::{KeyStore, KeyStoreEntry, Pkcs12ImportPolicy};
use pkcs8::EncryptedPrivateKeyInfoRef;
use rustls::pki_types::{CertificateDer, PrivateKeyDer, PrivatePkcs8KeyDer};
use zeroize::Zeroizing;

use crate::error::{Error, Result};
use crate::tls::pem::{SecretKey, TOPK8_HINT, contains, malformed_pem, parse_private_key};

/// Decrypts an encrypted PKCS#8 key (PEM or DER). An unencrypted key in any
/// format is returned as it is, as Node ignores a passphrase it does not need.
///
/// The key is decrypted in place in one buffer, which becomes the key's:
/// the plaintext is never copied, and is wiped when the key is dropped or
/// when decryption fails.
pub(crate) fn decrypt_private_key(bytes: &[u8], password: &str, label: &str) -> Result<SecretKey> {
    if contains(bytes, b"Proc-Type: 4,ENCRYPTED") {
        return Err(Error::credentials(
            label,
            format!(
                "the key uses OpenSSL's legacy encryption, which is not supported: {TOPK8_HINT}"
            ),
        ));
    }
    // The encrypted form, not secret.
    let der: Vec<u8> = if contains(bytes, b"-----BEGIN ENCRYPTED PRIVATE KEY-----") {
        let (_, der) = pkcs8::der::pem::decode_vec(bytes)
            .map_err(|e| malformed_pem(label, "-----BEGIN ENCRYPTED PRIVATE KEY-----", e))?;
        der
    } else if contains(bytes, b"-----BEGIN") {
        return parse_private_key(bytes, label);
    } else {
        bytes.to_vec()
    };
    let Ok(info) = EncryptedPrivateKeyInfoRef::try_from(der.as_slice()) else {
        // Not encrypted DER: an ordinary key, or an error naming it.
        return parse_private_key(bytes, label);
    };
    check_kdf_cost(&info.encryption_algorithm, label)?;
    let cannot = |e: &dyn std::fmt::Display| {
        Error::credentials(
            label,
            format!(
                "cannot decrypt the private key: wrong password, or an unsupported scheme ({e})"
            ),
        )
    };
    let mut plain = Zeroizing::new(info.encrypted_data.as_bytes().to_vec());
    let len = info
        .encryption_algorithm
        .decrypt_in_place(password, &mut plain)
        .map_err(|e| cannot(&e))?
        .len();
    plain.truncate(len);
    // A wrong password can still unpad: what came out must be PKCS#8.
    if let Err(e) = pkcs8::PrivateKeyInfoRef::try_from(plain.as_slice()) {
        return Err(cannot(&e));
    }
    // The buffer itself becomes the key (Vec's zeroize wipes its spare
    // capacity too, where the padding was).
    Ok(Zeroizing::new(PrivateKeyDer::Pkcs8(
        PrivatePkcs8KeyDer::from(std::mem::take(&mut *plain)),
    )))
}

/// The most PBKDF2 iterations accepted (OpenSSL 3 uses 2,048; 600,000 is
/// today's advice for SHA-256): more would stall a thread for minutes.
const MAX_PBKDF2_ITERATIONS: u32 = 10_000_000;
/// The most memory scrypt may ask for (128 × r × N bytes): more could abort
/// the process when the allocation fails. OpenSSL's default needs 16 MiB.
const MAX_SCRYPT_MEMORY: u64 = 1 << 30;

/// Refuses key-derivation parameters that would take minutes or more memory
/// than a process can spare: a hostile key file must not stall or abort us.
fn check_kdf_cost(scheme: &pkcs8::pkcs5::EncryptionScheme, label: &str) -> Result<()> {
    use pkcs8::pkcs5::{EncryptionScheme, pbes2::Kdf};
    let EncryptionScheme::Pbes2(params) = scheme else {
        return Ok(());
    };
    let refuse = |what: String| {
        Err(Error::credentials(
            label,
            format!(
                "the key's password hashing asks for {what}, beyond what securenet allows: \
                 re-encrypt it with `openssl pkcs8 -topk8 -in KEY -out key.pem` (defaults)"
            ),
        ))
    };
    match &params.kdf {
        Kdf::Pbkdf2(p) if p.iteration_count > MAX_PBKDF2_ITERATIONS => refuse(format!(
            "{} PBKDF2 iterations (at most {MAX_PBKDF2_ITERATIONS})",
            p.iteration_count
        )),
        Kdf::Scrypt(p) => {
            let memory = 128u64
                .saturating_mul(u64::from(p.block_size))
                .saturating_mul(p.cost_parameter);
            if memory > MAX_SCRYPT_MEMORY || p.parallelization > 16 {
                refuse(format!(
                    "scrypt N={} r={} p={} ({} MiB; at most {} MiB and p=16)",
                    p.cost_parameter,
                    p.block_size,
                    p.parallelization,
                    memory >> 20,
                    MAX_SCRYPT_MEMORY >> 20
                ))
            } else {
                Ok(())
            }
        }
        _ => Ok(()),
    }
}

/// What a PKCS#12 bundle holds.
pub(crate) struct Bundle {
    /// The first key entry's chain (leaf first) and key, if any.
    pub(crate) identity: Option<(Vec<CertificateDer<'static>>, SecretKey)>,
    /// Every certificate in the bundle.
    pub(crate) certificates: Vec<CertificateDer<'static>>,
}

/// Opens a PKCS#12 bundle. Every key securenet takes from it is wiped when
/// dropped (see [`copy_pkcs12_key`]); p12-keystore's own copies (its
/// `KeyStore`, dropped here, and its decryption buffers) are not: it
/// neither wipes them nor lets them be wiped.
pub(crate) fn open_pkcs12(bytes: &[u8], password: &str, label: &str) -> Result<Bundle> {
    let store =
        KeyStore::from_pkcs12(bytes, password, Pkcs12ImportPolicy::Relaxed).map_err(|e| {
            let reason = match e {
                p12_keystore::error::Error::MacError(_) => {
                    "wrong password: the bundle's integrity check failed".to_owned()
                }
                other => format!("not a usable PKCS#12 bundle, or a wrong password ({other})"),
            };
            Error::credentials(label, reason)
        })?;
    let mut identity = None;
    let mut certificates = Vec::new();
    for (_, entry) in store.entries() {
        match entry {
            KeyStoreEntry::PrivateKeyChain(chain) => {
                let certs: Vec<CertificateDer<'static>> = chain
                    .certs()
                    .iter()
                    .map(|c| CertificateDer::from(c.as_der().to_vec()))
                    .collect();
                certificates.extend(certs.iter().cloned());
                // Only the first key with a chain is copied: the others
                // stay in p12-keystore's store alone.
                if identity.is_none() && !certs.is_empty() {
                    identity = Some((certs, copy_pkcs12_key(chain.key())));
                }
            }
            KeyStoreEntry::Certificate(cert) => {
                certificates.push(CertificateDer::from(cert.as_der().to_vec()));
            }
            KeyStoreEntry::Secret(_) => {}
        }
    }
    Ok(Bundle {
        identity,
        certificates,
    })
}

/// A key from a PKCS#12 store, copied once, into the buffer that becomes
/// the key: it is wiped when dropped from the moment it exists. The copy
/// in the store itself cannot be wiped: p12-keystore's `PrivateKey` gives
/// only `&[u8]` of its bytes and does not zeroize them when dropped, and
/// neither do the buffers it decrypted them in.
fn copy_pkcs12_key(key: &p12_keystore::PrivateKey) -> SecretKey {
    Zeroizing::new(PrivateKeyDer::Pkcs8(PrivatePkcs8KeyDer::from(
        key.as_der().to_vec(),
    )))
}

#[cfg(test)]
mod tests {
    use p12_keystore::{Certificate, PrivateKey, PrivateKeyChain};
    use rustls::pki_types::pem::PemObject;
    use zeroize::{Zeroize, Zeroizing};

    use super::*;
    use crate::testing::TestPki;

    /// The key securenet holds, of the type that is wiped when dropped:
    /// `Zeroizing` runs what this runs, rustls-pki-types' `Zeroize` of the
    /// key's bytes.
    fn assert_wipes(mut key: Zeroizing<PrivateKeyDer<'static>>, der: &[u8], what: &str) {
        assert_eq!(key.secret_der(), der, "{what}: the key");
        key.zeroize();
        assert!(key.secret_der().is_empty(), "{what}: wiped");
    }

    #[test]
    fn every_key_securenet_reads_is_wiped_when_dropped() {
        let pki = TestPki::new(&["localhost"]).expect("pki");
        let pem = pki.server_key_pem();
        let der = PrivateKeyDer::from_pem_slice(pem.as_bytes())
            .expect("key")
            .secret_der()
            .to_vec();
        let parse = crate::tls::pem::parse_private_key;
        assert_wipes(parse(pem.as_bytes(), "pem").expect("pem"), &der, "PEM");
        assert_wipes(parse(&der, "der").expect("der"), &der, "DER");
        let plain = decrypt_private_key(&der, "unused", "der").expect("plain DER");
        assert_wipes(plain, &der, "DER given a password");

        let info = pkcs8::PrivateKeyInfoRef::try_from(der.as_slice()).expect("pkcs8");
        let encrypted = info.encrypt("s3cret").expect("encrypt");
        let key = decrypt_private_key(encrypted.as_bytes(), "s3cret", "enc").expect("decrypt");
        assert_wipes(key, &der, "encrypted PKCS#8");
        let wrong = decrypt_private_key(encrypted.as_bytes(), "wrong", "enc");
        assert!(wrong.is_err(), "a wrong password");

        let cert = |pem: &str| {
            let der = rustls::pki_types::CertificateDer::from_pem_slice(pem.as_bytes());
            Certificate::from_der(&der.expect("cert")).expect("cert")
        };
        let mut store = KeyStore::new();
        store.add_entry(
            "server",
            KeyStoreEntry::PrivateKeyChain(PrivateKeyChain::new(
                b"0001".as_slice(),
                PrivateKey::from_der(&der).expect("key"),
                [cert(pki.server_cert_pem())],
            )),
        );
        let p12 = store.writer("s3cret").write().expect("p12");
        let bundle = open_pkcs12(&p12, "s3cret", "p12").expect("open");
        let (_, key) = bundle.identity.expect("a key");
        assert_wipes(key, &der, "PKCS#12");

        // Two key entries: every key securenet copies is one that is wiped.
        let client_der = PrivateKeyDer::from_pem_slice(pki.client_key_pem().as_bytes())
            .expect("client key")
            .secret_der()
            .to_vec();
        store.add_entry(
            "xclient",
            KeyStoreEntry::PrivateKeyChain(PrivateKeyChain::new(
                b"0002".as_slice(),
                PrivateKey::from_der(&client_der).expect("key"),
                [cert(pki.client_cert_pem())],
            )),
        );
        let p12 = store.writer("s3cret").write().expect("p12");
        let store =
            KeyStore::from_pkcs12(&p12, "s3cret", Pkcs12ImportPolicy::Relaxed).expect("p12");
        let mut keys = store.entries().filter_map(|(_, e)| match e {
            KeyStoreEntry::PrivateKeyChain(chain) => Some(copy_pkcs12_key(chain.key())),
            _ => None,
        });
        assert_wipes(keys.next().expect("first"), &der, "PKCS#12, first key");
        let second = keys.next().expect("second");
        assert_wipes(second, &client_der, "PKCS#12, second key");
        assert!(keys.next().is_none(), "two keys");
        let bundle = open_pkcs12(&p12, "s3cret", "p12").expect("open");
        let (_, key) = bundle.identity.expect("a key");
        assert_wipes(key, &der, "PKCS#12 of two keys: the first");
        assert_eq!(bundle.certificates.len(), 2);
    }
}
