//! Reading certificates, keys and files: PEM (through rustls-pki-types'
//! `PemObject`) or DER, with errors that name the input and say what to do.

use std::path::Path;

/// The command that turns a legacy OpenSSL encrypted key into PKCS#8.
pub(crate) const TOPK8_HINT: &str = "convert it with `openssl pkcs8 -topk8 -in KEY -out key.pem` \
     (it asks for the old and a new password), then load key.pem with \
     use_private_key_with_password";

use rustls::pki_types::pem::PemObject;
use rustls::pki_types::{CertificateDer, PrivateKeyDer};
use zeroize::Zeroizing;

use crate::error::{Error, Result};
use crate::tls::certificate::X509Certificate;

/// A private key as securenet holds it: its bytes are wiped when it is
/// dropped (rustls-pki-types' `PrivateKeyDer` does not wipe itself, only
/// offers `Zeroize`). What rustls is given is a `clone_key()`, which its
/// key provider wipes once loaded.
pub(crate) type SecretKey = Zeroizing<PrivateKeyDer<'static>>;

/// A copy of `key` that is wiped when dropped too.
pub(crate) fn copy_key(key: &SecretKey) -> SecretKey {
    Zeroizing::new(key.clone_key())
}

pub(crate) fn read_file(path: &Path) -> Result<Vec<u8>> {
    std::fs::read(path).map_err(|source| Error::File {
        path: path.to_owned(),
        source,
    })
}

/// [`read_file`] for a file that holds a key: its bytes are wiped when
/// dropped.
pub(crate) fn read_secret_file(path: &Path) -> Result<Zeroizing<Vec<u8>>> {
    read_file(path).map(Zeroizing::new)
}

pub(crate) fn looks_like_pem(bytes: &[u8]) -> bool {
    contains(bytes, b"-----BEGIN ")
}

/// Whether `needle` is in `bytes`: a search of key bytes, which are never
/// copied into a (lossy) string that no one would wipe.
pub(crate) fn contains(bytes: &[u8], needle: &[u8]) -> bool {
    bytes.windows(needle.len()).any(|w| w == needle)
}

/// A PEM file whose sections cannot be decoded: what was expected and
/// what to check, besides the decoder's own words.
pub(crate) fn malformed_pem(label: &str, what: &str, e: impl std::fmt::Display) -> Error {
    Error::credentials(
        label,
        format!(
            "malformed PEM ({e}): expected {what} as base64 lines between its -----BEGIN and \
             -----END lines; check that the file is whole and unedited, and not DER or \
             PKCS#12 (use_pkcs12 reads .p12/.pfx)"
        ),
    )
}

/// Reads every certificate from PEM, or one from DER, checking each parses.
pub(crate) fn parse_certificates(
    bytes: &[u8],
    label: &str,
) -> Result<Vec<CertificateDer<'static>>> {
    let certs = if looks_like_pem(bytes) || bytes.is_empty() {
        pem_certificates(bytes, label)?
    } else {
        vec![CertificateDer::from(bytes.to_vec())]
    };
    parsed(&certs, label)?;
    Ok(certs)
}

/// Every `CERTIFICATE` section of PEM text, in order; none is an error
/// that says what the bytes hold instead.
fn pem_certificates(bytes: &[u8], label: &str) -> Result<Vec<CertificateDer<'static>>> {
    let certs: Vec<CertificateDer<'static>> = CertificateDer::pem_slice_iter(bytes)
        .collect::<std::result::Result<_, _>>()
        .map_err(|e| malformed_pem(label, "-----BEGIN CERTIFICATE-----", e))?;
    if certs.is_empty() {
        // A key decoded only to say so: wiped at once.
        let hint = if PrivateKeyDer::from_pem_slice(bytes)
            .map(Zeroizing::new)
            .is_ok()
        {
            "it holds a private key but no certificate: were the certificate and key files swapped?"
        } else {
            "expected PEM with -----BEGIN CERTIFICATE----- or a DER certificate"
        };
        return Err(Error::credentials(
            label,
            format!("contains no certificate: {hint}"),
        ));
    }
    Ok(certs)
}

/// Parses each certificate, naming the first that is not valid.
fn parsed(certs: &[CertificateDer<'_>], label: &str) -> Result<Vec<X509Certificate>> {
    certs
        .iter()
        .enumerate()
        .map(|(i, c)| {
            X509Certificate::from_der(c).map_err(|e| {
                Error::credentials(label, format!("certificate #{} is not valid: {e}", i + 1))
            })
        })
        .collect()
}

impl X509Certificate {
    /// Every certificate in PEM text (`-----BEGIN CERTIFICATE-----`
    /// sections, in order). Fails if there is none or one does not parse.
    pub fn from_pem(pem: &[u8]) -> Result<Vec<X509Certificate>> {
        let label = "certificates (PEM)";
        parsed(&pem_certificates(pem, label)?, label)
    }

    /// Like [`from_pem`](Self::from_pem), from a file.
    pub fn from_pem_file(path: impl AsRef<Path>) -> Result<Vec<X509Certificate>> {
        let path = path.as_ref();
        let bytes = read_file(path)?;
        let label = path.display().to_string();
        parsed(&pem_certificates(&bytes, &label)?, &label)
    }
}

/// Reads one private key: PKCS#8, PKCS#1 or SEC1, PEM or DER, into a key
/// that is wiped when dropped. (Decoding PEM, rustls-pki-types keeps the
/// base64 text in a buffer of its own, which it does not wipe.)
pub(crate) fn parse_private_key(bytes: &[u8], label: &str) -> Result<SecretKey> {
    let decrypt_hint = "load it with use_private_key_with_password";
    if looks_like_pem(bytes) {
        if contains(bytes, b"-----BEGIN ENCRYPTED PRIVATE KEY-----") {
            return Err(Error::credentials(
                label,
                format!("the private key is encrypted (PKCS#8); {decrypt_hint}"),
            ));
        }
        if contains(bytes, b"Proc-Type: 4,ENCRYPTED") {
            return Err(Error::credentials(
                label,
                format!(
                    "the private key uses OpenSSL's legacy encryption, which is not supported: {}",
                    TOPK8_HINT
                ),
            ));
        }
        return PrivateKeyDer::from_pem_slice(bytes).map(Zeroizing::new).map_err(|e| match e {
            rustls::pki_types::pem::Error::NoItemsFound => {
                let hint = if CertificateDer::from_pem_slice(bytes).is_ok() {
                    "it holds a certificate but no key: were the certificate and key files swapped?"
                } else {
                    "expected -----BEGIN PRIVATE KEY-----, RSA PRIVATE KEY or EC PRIVATE KEY"
                };
                Error::credentials(label, format!("contains no private key: {hint}"))
            }
            other => malformed_pem(label, "-----BEGIN PRIVATE KEY-----", other),
        });
    }
    // Checked where it lies, then copied once, into the key that is wiped.
    match PrivateKeyDer::try_from(bytes) {
        Ok(key) => Ok(Zeroizing::new(key.clone_key())),
        Err(e) => Err(Error::credentials(
            label,
            format!(
                "not a private key ({e}): expected PKCS#8, PKCS#1 or SEC1 in PEM or DER; if it \
                 is encrypted, {decrypt_hint}"
            ),
        )),
    }
}
