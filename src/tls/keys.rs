//! Password-protected key material: encrypted PKCS#8 (`ENCRYPTED PRIVATE
//! KEY`, PBES2) and PKCS#12 bundles (Node `pfx` + `passphrase`, Dart's
//! PKCS#12 support), decrypted with pure-Rust crates.

use p12_keystore::{KeyStore, KeyStoreEntry, Pkcs12ImportPolicy};
use pkcs8::EncryptedPrivateKeyInfoRef;
use rustls::pki_types::{CertificateDer, PrivateKeyDer, PrivatePkcs8KeyDer};

use crate::error::{Error, Result};
use crate::tls::pem::{TOPK8_HINT, malformed_pem};

/// Decrypts an encrypted PKCS#8 key (PEM or DER). An unencrypted key in any
/// format is returned as it is, as Node ignores a passphrase it does not need.
pub(crate) fn decrypt_private_key(
    bytes: &[u8],
    password: &str,
    label: &str,
) -> Result<PrivateKeyDer<'static>> {
    let text = String::from_utf8_lossy(bytes);
    if text.contains("Proc-Type: 4,ENCRYPTED") {
        return Err(Error::credentials(
            label,
            format!(
                "the key uses OpenSSL's legacy encryption, which is not supported: {TOPK8_HINT}"
            ),
        ));
    }
    let der: Vec<u8> = if text.contains("-----BEGIN ENCRYPTED PRIVATE KEY-----") {
        let (_, der) = pkcs8::der::pem::decode_vec(bytes)
            .map_err(|e| malformed_pem(label, "-----BEGIN ENCRYPTED PRIVATE KEY-----", e))?;
        der
    } else if text.contains("-----BEGIN") {
        return crate::tls::pem::parse_private_key(bytes, label);
    } else {
        bytes.to_vec()
    };
    let Ok(info) = EncryptedPrivateKeyInfoRef::try_from(der.as_slice()) else {
        // Not encrypted DER: an ordinary key, or an error naming it.
        return crate::tls::pem::parse_private_key(bytes, label);
    };
    check_kdf_cost(&info.encryption_algorithm, label)?;
    let plain = info.decrypt(password).map_err(|e| {
        Error::credentials(
            label,
            format!(
                "cannot decrypt the private key: wrong password, or an unsupported scheme ({e})"
            ),
        )
    })?;
    Ok(PrivateKeyDer::Pkcs8(PrivatePkcs8KeyDer::from(
        plain.as_bytes().to_vec(),
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
    pub(crate) identity: Option<(Vec<CertificateDer<'static>>, PrivateKeyDer<'static>)>,
    /// Every certificate in the bundle.
    pub(crate) certificates: Vec<CertificateDer<'static>>,
}

/// Opens a PKCS#12 bundle.
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
                if identity.is_none() && !certs.is_empty() {
                    let key = PrivateKeyDer::Pkcs8(PrivatePkcs8KeyDer::from(
                        chain.key().as_der().to_vec(),
                    ));
                    identity = Some((certs, key));
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
