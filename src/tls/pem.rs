//! Reading certificates, keys and files: PEM or DER, with errors that name
//! the input and say what to do. Certificates are read with
//! rustls-pki-types' `PemObject`; private keys with pem-rfc7468, straight
//! into a buffer that is wiped (see [`parse_private_key`]).

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

/// The most a file a listener re-reads while serving may hold (64 MiB: a
/// large CA's CRL-sized chain file; OCSP responses and ticket keys are
/// bounded further by what reads them).
pub(crate) const MAX_WATCHED_FILE: u64 = 64 << 20;

/// [`read_file`] for a file a listener re-reads while serving: a regular
/// file (a FIFO or a device would block the thread that accepts), of at
/// most [`MAX_WATCHED_FILE`] bytes, read no further than that.
pub(crate) fn read_watched_file(path: &Path) -> Result<Vec<u8>> {
    use std::io::Read;
    let fail = |source: std::io::Error| Error::File {
        path: path.to_owned(),
        source,
    };
    let file = std::fs::File::open(path).map_err(fail)?;
    let meta = file.metadata().map_err(fail)?;
    if !meta.is_file() {
        return Err(fail(std::io::Error::new(
            std::io::ErrorKind::InvalidInput,
            "not a regular file: a listener re-reads only regular files (write the file \
             elsewhere, then rename it into place)",
        )));
    }
    let mut out =
        Vec::with_capacity(usize::try_from(meta.len().min(MAX_WATCHED_FILE)).unwrap_or(0));
    file.take(MAX_WATCHED_FILE + 1)
        .read_to_end(&mut out)
        .map_err(fail)?;
    if out.len() as u64 > MAX_WATCHED_FILE {
        return Err(fail(std::io::Error::new(
            std::io::ErrorKind::InvalidData,
            format!(
                "larger than {} MiB: not a file a listener re-reads",
                MAX_WATCHED_FILE >> 20
            ),
        )));
    }
    Ok(out)
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
        // A key section is found, not decoded, only to say so.
        let hint = if key_section(bytes).is_some() {
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
/// that is wiped when dropped. PEM is decoded by pem-rfc7468 straight into
/// that key's buffer: no base64 or decoded copy is left unwiped (the
/// decoder passes at most a 3-byte block through its own stack
/// variables). rustls-pki-types' PEM reader, which keeps both in buffers
/// it does not wipe, is given no key.
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
        let Some((kind, section)) = key_section(bytes) else {
            let hint = if CertificateDer::from_pem_slice(bytes).is_ok() {
                "it holds a certificate but no key: were the certificate and key files swapped?"
            } else {
                "expected -----BEGIN PRIVATE KEY-----, RSA PRIVATE KEY or EC PRIVATE KEY"
            };
            return Err(Error::credentials(
                label,
                format!("contains no private key: {hint}"),
            ));
        };
        return decode_key_section(kind, section)
            .map_err(|e| malformed_pem(label, "-----BEGIN PRIVATE KEY-----", e));
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

/// The labels of the unencrypted private keys PEM may hold.
const KEY_LABELS: [&str; 3] = ["PRIVATE KEY", "RSA PRIVATE KEY", "EC PRIVATE KEY"];

/// The first unencrypted private-key section of PEM text (certificates and
/// other sections may come before and after it): its label and its text,
/// from its `-----BEGIN` line to the end of its `-----END` line, or to the
/// end of the text if it has none (which the decoder then refuses). Only
/// the boundaries are looked at, never the key's base64.
fn key_section(bytes: &[u8]) -> Option<(&'static str, &[u8])> {
    const BEGIN: &[u8] = b"-----BEGIN ";
    let mut from = 0;
    while let Some(at) = find(&bytes[from..], BEGIN) {
        let start = from + at;
        from = start + BEGIN.len();
        if start > 0 && !matches!(bytes[start - 1], b'\n' | b'\r') {
            continue;
        }
        let rest = &bytes[from..];
        let Some(kind) = KEY_LABELS.iter().copied().find(|kind| {
            rest.strip_prefix(kind.as_bytes())
                .is_some_and(|after| after.starts_with(b"-----"))
        }) else {
            continue;
        };
        let end_line = format!("-----END {kind}-----");
        let end = find(&bytes[from..], end_line.as_bytes())
            .map_or(bytes.len(), |at| from + at + end_line.len());
        return Some((kind, &bytes[start..end]));
    }
    None
}

/// Where `needle` first is in `bytes`.
fn find(bytes: &[u8], needle: &[u8]) -> Option<usize> {
    bytes.windows(needle.len()).position(|w| w == needle)
}

/// Decodes a section [`key_section`] found (any line width, any line
/// ending) into a buffer that is wiped on every path, and that becomes
/// the key's without being copied.
fn decode_key_section(
    kind: &str,
    section: &[u8],
) -> std::result::Result<SecretKey, pem_rfc7468::Error> {
    let mut decoder = pem_rfc7468::Decoder::new_detect_wrap(section)?;
    let mut der = Zeroizing::new(vec![0u8; decoder.remaining_len()]);
    decoder.decode(&mut der)?;
    if !decoder.is_finished() {
        return Err(pem_rfc7468::Error::Length);
    }
    let der = std::mem::take(&mut *der);
    Ok(Zeroizing::new(match kind {
        "RSA PRIVATE KEY" => PrivateKeyDer::Pkcs1(der.into()),
        "EC PRIVATE KEY" => PrivateKeyDer::Sec1(der.into()),
        _ => PrivateKeyDer::Pkcs8(der.into()),
    }))
}

#[cfg(test)]
mod tests {
    use rustls::pki_types::pem::PemObject;

    use super::*;
    use crate::testing::TestPki;

    /// `pem` with its base64 lines rewrapped at `width` and `eol` endings.
    fn rewrap(pem: &str, width: usize, eol: &str) -> String {
        let mut out = String::new();
        let mut b64 = String::new();
        for line in pem.lines() {
            if line.starts_with("-----END") {
                for chunk in b64.as_bytes().chunks(width) {
                    out.push_str(std::str::from_utf8(chunk).expect("ascii"));
                    out.push_str(eol);
                }
                b64.clear();
            }
            if line.starts_with("-----") {
                out.push_str(line);
                out.push_str(eol);
            } else {
                b64.push_str(line.trim());
            }
        }
        out
    }

    #[test]
    fn every_key_label_is_read_from_files_that_hold_certificates_too() {
        let pki = TestPki::new(&["localhost"]).expect("pki");
        let der = PrivateKeyDer::from_pem_slice(pki.server_key_pem().as_bytes())
            .expect("key")
            .secret_der()
            .to_vec();
        let cert = pki.server_cert_pem();
        for label in ["PRIVATE KEY", "RSA PRIVATE KEY", "EC PRIVATE KEY"] {
            let key = pem_rfc7468::encode_string(label, pem_rfc7468::LineEnding::LF, &der)
                .expect("encode");
            for (width, eol) in [(64, "\n"), (64, "\r\n"), (76, "\n"), (48, "\r\n")] {
                let key = rewrap(&key, width, eol);
                for file in [
                    format!("{cert}{key}"),
                    format!("{key}{cert}"),
                    format!("# a comment\n{cert}\n{key}\n{cert}"),
                    key.trim_end().to_owned(),
                ] {
                    let what = format!("{label}, {width} wide, {eol:?}: {file}");
                    let (found, section) = key_section(file.as_bytes()).expect(&what);
                    assert_eq!(found, label, "{what}");
                    assert!(section.starts_with(b"-----BEGIN "), "{what}");
                    let ours = parse_private_key(file.as_bytes(), "key").expect(&what);
                    let theirs = PrivateKeyDer::from_pem_slice(file.as_bytes()).expect(&what);
                    assert_eq!(*ours, theirs, "{what}");
                }
            }
        }
    }

    #[test]
    fn a_key_section_needs_its_end_line_and_base64() {
        let unended = b"-----BEGIN PRIVATE KEY-----\nMC4CAQAwBQYDK2VwBCIEIA==\n";
        assert_eq!(
            key_section(unended),
            Some(("PRIVATE KEY", unended.as_slice()))
        );
        for bad in [
            unended.as_slice(),
            b"-----BEGIN PRIVATE KEY-----\n!!!!\n-----END PRIVATE KEY-----\n",
            b"-----BEGIN PRIVATE KEY-----\n-----END PRIVATE KEY-----\n",
        ] {
            let err = parse_private_key(bad, "key").expect_err("malformed");
            assert!(err.to_string().contains("malformed PEM"), "{err}");
        }
        let none =
            b"-----BEGIN ENCRYPTED PRIVATE KEY-----\nAAAA\n-----END ENCRYPTED PRIVATE KEY-----\n";
        assert!(key_section(none).is_none());
    }
}
