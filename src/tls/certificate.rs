//! `X509Certificate`: a parsed certificate (Dart's `X509Certificate`).

use std::fmt;
use std::hash::{Hash, Hasher};
use std::net::{IpAddr, Ipv4Addr, Ipv6Addr};
use std::sync::Arc;
use std::time::{Duration, SystemTime, UNIX_EPOCH};

use x509_parser::der_parser::Oid;
use x509_parser::prelude::{FromDer, GeneralName, X509Name};
use x509_parser::public_key::PublicKey;

use crate::error::{Error, Result};
use crate::time::{format_rfc3339, format_time, system_to_unix, unix_secs};

/// An X.509 certificate, parsed once when it is made.
///
/// Cloning is cheap (the fields are shared). Two certificates are equal when
/// their DER encodings are.
#[derive(Clone)]
pub struct X509Certificate {
    inner: Arc<Parsed>,
}

struct Parsed {
    der: Vec<u8>,
    subject: String,
    issuer: String,
    not_before: SystemTime,
    not_after: SystemTime,
    sans: Vec<String>,
    is_ca: bool,
    serial: String,
    spki_sha256: [u8; 32],
    key: (String, Option<u32>),
    signature_algorithm: String,
    key_usage: Vec<&'static str>,
    extended_key_usage: Vec<String>,
}

impl X509Certificate {
    /// Parses a DER-encoded certificate.
    ///
    /// Fails with [`Error::Credentials`] if `der` is not a certificate.
    pub fn from_der(der: &[u8]) -> Result<X509Certificate> {
        let (rest, cert) =
            x509_parser::certificate::X509Certificate::from_der(der).map_err(|e| {
                Error::credentials(
                    "certificate (DER)",
                    format!("not a valid X.509 certificate: {e}"),
                )
            })?;
        if !rest.is_empty() {
            return Err(Error::credentials(
                "certificate (DER)",
                format!("{} bytes follow the certificate", rest.len()),
            ));
        }
        let mut sans = Vec::new();
        if let Ok(Some(ext)) = cert.subject_alternative_name() {
            for name in &ext.value.general_names {
                match name {
                    GeneralName::DNSName(s) => sans.push((*s).to_owned()),
                    GeneralName::IPAddress(b) => {
                        if let Some(ip) = ip_from_bytes(b) {
                            sans.push(ip.to_string());
                        }
                    }
                    _ => {}
                }
            }
        }
        let validity = cert.validity();
        let spki_sha256 = sha256(cert.public_key().raw);
        Ok(X509Certificate {
            inner: Arc::new(Parsed {
                der: der.to_vec(),
                subject: rfc4514(cert.subject()),
                issuer: rfc4514(cert.issuer()),
                not_before: system_time(validity.not_before.timestamp()),
                not_after: system_time(validity.not_after.timestamp()),
                sans,
                is_ca: cert.is_ca(),
                serial: hex(cert.raw_serial()).to_ascii_uppercase(),
                spki_sha256,
                key: key_description(&cert),
                signature_algorithm: algorithm_name(&cert.signature_algorithm.algorithm),
                key_usage: key_usage(&cert),
                extended_key_usage: extended_key_usage(&cert),
            }),
        })
    }

    /// The serial number, as upper-case hex (Node's `serialNumber`).
    pub fn serial_number(&self) -> &str {
        &self.inner.serial
    }

    /// The SHA-256 hash of the SubjectPublicKeyInfo: what
    /// [`ConnectOptions::pin_sha256`](crate::ConnectOptions::pin_sha256)
    /// and curl's `--pinnedpubkey sha256//…` (base64 of these bytes) name.
    /// It stays the same when a certificate is renewed with the same key.
    pub fn spki_sha256(&self) -> [u8; 32] {
        self.inner.spki_sha256
    }

    /// [`spki_sha256`](Self::spki_sha256) as a pin: `sha256//` and its
    /// base64, ready for
    /// [`ConnectOptions::pin_sha256`](crate::ConnectOptions::pin_sha256).
    ///
    /// ```
    /// # fn main() -> securenet::Result<()> {
    /// let pki = securenet::testing::TestPki::new(&["localhost"])?;
    /// let pin = pki.ca_certificate().spki_pin();
    /// assert!(pin.starts_with("sha256//") && pin.len() == 52);
    /// # Ok(()) }
    /// ```
    pub fn spki_pin(&self) -> String {
        pin_text(&self.inner.spki_sha256)
    }

    /// The public key's algorithm: `RSA`, `EC P-256`, `EC P-384`,
    /// `Ed25519`..., or the OID for others.
    pub fn public_key_algorithm(&self) -> &str {
        &self.inner.key.0
    }

    /// The public key's size in bits (2048 for RSA-2048, 256 for P-256),
    /// where it has one.
    pub fn public_key_bits(&self) -> Option<u32> {
        self.inner.key.1
    }

    /// The algorithm the issuer signed with: `sha256WithRSAEncryption`,
    /// `ecdsa-with-SHA256`, `Ed25519`..., or the OID for others.
    pub fn signature_algorithm(&self) -> &str {
        &self.inner.signature_algorithm
    }

    /// The key usage bits that are set, by their RFC 5280 names
    /// (`digitalSignature`, `keyCertSign`...); empty without the extension.
    pub fn key_usage(&self) -> &[&'static str] {
        &self.inner.key_usage
    }

    /// The extended key usages: `serverAuth`, `clientAuth`, `codeSigning`,
    /// `emailProtection`, `timeStamping`, `OCSPSigning`, `any`, or the OID
    /// for others; empty without the extension.
    pub fn extended_key_usage(&self) -> &[String] {
        &self.inner.extended_key_usage
    }

    /// The subject's distinguished name in RFC 4514 form: most specific
    /// first, so a subject that `openssl` shows as `/O=Example/CN=localhost`
    /// is `CN=localhost,O=Example`.
    pub fn subject(&self) -> &str {
        &self.inner.subject
    }

    /// The issuer's distinguished name in RFC 4514 form.
    pub fn issuer(&self) -> &str {
        &self.inner.issuer
    }

    /// The start of the validity period (`notBefore`).
    pub fn start_validity(&self) -> SystemTime {
        self.inner.not_before
    }

    /// The end of the validity period (`notAfter`).
    pub fn end_validity(&self) -> SystemTime {
        self.inner.not_after
    }

    /// webpki's error for this certificate's dates at `now`, as webpki
    /// decides: expired once `now` is past `notAfter`, not yet valid
    /// before `notBefore`; `None` when valid.
    pub(crate) fn dates_error(&self, now: rustls::pki_types::UnixTime) -> Option<webpki::Error> {
        let at = i64::try_from(now.as_secs()).unwrap_or(i64::MAX);
        if unix_secs(self.end_validity()) < at {
            return Some(webpki::Error::CertExpired {
                time: now,
                not_after: system_to_unix(self.end_validity()),
            });
        }
        if unix_secs(self.start_validity()) > at {
            return Some(webpki::Error::CertNotValidYet {
                time: now,
                not_before: system_to_unix(self.start_validity()),
            });
        }
        None
    }

    /// The SHA-1 fingerprint of the DER encoding (as `openssl x509 -fingerprint -sha1`).
    pub fn sha1(&self) -> [u8; 20] {
        use crate::crypto::digest;
        let d = digest::digest(&digest::SHA1_FOR_LEGACY_USE_ONLY, &self.inner.der);
        let mut out = [0u8; 20];
        out.copy_from_slice(d.as_ref());
        out
    }

    /// The SHA-256 fingerprint of the DER encoding, the usual value to pin.
    pub fn sha256(&self) -> [u8; 32] {
        sha256(&self.inner.der)
    }

    /// The DER encoding.
    pub fn der(&self) -> &[u8] {
        &self.inner.der
    }

    /// The PEM encoding (`-----BEGIN CERTIFICATE-----`, 64-column base64).
    pub fn pem(&self) -> String {
        // Encoding fails only on a label that is not valid, and this one is.
        pem_rfc7468::encode_string("CERTIFICATE", pem_rfc7468::LineEnding::LF, &self.inner.der)
            .unwrap_or_default()
    }

    /// The DNS names and IP addresses of the subjectAltName extension, in
    /// certificate order (IP addresses in their usual text form).
    pub fn subject_alt_names(&self) -> Vec<String> {
        self.inner.sans.clone()
    }

    /// Whether the certificate is a CA certificate (basicConstraints cA).
    pub fn is_ca(&self) -> bool {
        self.inner.is_ca
    }
}

impl PartialEq for X509Certificate {
    fn eq(&self, other: &Self) -> bool {
        self.inner.der == other.inner.der
    }
}

impl Eq for X509Certificate {}

impl Hash for X509Certificate {
    /// The DER encoding's, as equality.
    fn hash<H: Hasher>(&self, state: &mut H) {
        self.inner.der.hash(state);
    }
}

impl fmt::Display for X509Certificate {
    /// Subject, issuer, validity (RFC 3339), names and the SHA-256
    /// fingerprint, on one line each.
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let p = &self.inner;
        writeln!(f, "subject: {}", p.subject)?;
        writeln!(f, "issuer: {}", p.issuer)?;
        writeln!(
            f,
            "valid: {} to {}",
            format_rfc3339(p.not_before),
            format_rfc3339(p.not_after)
        )?;
        writeln!(f, "names: {}", p.sans.join(", "))?;
        let fingerprint: Vec<String> = self.sha256().iter().map(|b| format!("{b:02X}")).collect();
        write!(f, "sha256: {}", fingerprint.join(":"))
    }
}

impl fmt::Debug for X509Certificate {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("X509Certificate")
            .field("subject", &self.inner.subject)
            .field("issuer", &self.inner.issuer)
            .field("not_after", &format_time(self.inner.not_after))
            .field("sha256", &hex(&self.sha256()))
            .finish()
    }
}

type Parsed509<'a> = x509_parser::certificate::X509Certificate<'a>;

/// The public key's algorithm and size.
fn key_description(cert: &Parsed509<'_>) -> (String, Option<u32>) {
    let spki = cert.public_key();
    let bits = spki
        .parsed()
        .ok()
        .and_then(|k| match k {
            PublicKey::RSA(_) | PublicKey::EC(_) => u32::try_from(k.key_size()).ok(),
            _ => None,
        })
        .filter(|b| *b > 0);
    let oid = spki.algorithm.algorithm.to_id_string();
    let name = match oid.as_str() {
        "1.2.840.113549.1.1.1" => "RSA".to_owned(),
        "1.2.840.113549.1.1.10" => "RSASSA-PSS".to_owned(),
        "1.2.840.10045.2.1" => {
            let curve = spki
                .algorithm
                .parameters
                .as_ref()
                .and_then(|p| p.as_oid().ok())
                .map(|c| c.to_id_string());
            match curve.as_deref() {
                Some("1.2.840.10045.3.1.7") => "EC P-256".to_owned(),
                Some("1.3.132.0.34") => "EC P-384".to_owned(),
                Some("1.3.132.0.35") => "EC P-521".to_owned(),
                Some(other) => format!("EC {other}"),
                None => "EC".to_owned(),
            }
        }
        "1.3.101.112" => "Ed25519".to_owned(),
        "1.3.101.113" => "Ed448".to_owned(),
        _ => oid,
    };
    let bits = match name.as_str() {
        "Ed25519" => Some(256),
        "Ed448" => Some(456),
        _ => bits,
    };
    (name, bits)
}

/// A signature algorithm's usual name, else its OID.
fn algorithm_name(oid: &Oid<'_>) -> String {
    let id = oid.to_id_string();
    match id.as_str() {
        "1.2.840.113549.1.1.5" => "sha1WithRSAEncryption",
        "1.2.840.113549.1.1.10" => "RSASSA-PSS",
        "1.2.840.113549.1.1.11" => "sha256WithRSAEncryption",
        "1.2.840.113549.1.1.12" => "sha384WithRSAEncryption",
        "1.2.840.113549.1.1.13" => "sha512WithRSAEncryption",
        "1.2.840.10045.4.3.2" => "ecdsa-with-SHA256",
        "1.2.840.10045.4.3.3" => "ecdsa-with-SHA384",
        "1.2.840.10045.4.3.4" => "ecdsa-with-SHA512",
        "1.3.101.112" => "Ed25519",
        "1.3.101.113" => "Ed448",
        _ => return id,
    }
    .to_owned()
}

fn key_usage(cert: &Parsed509<'_>) -> Vec<&'static str> {
    let Ok(Some(ext)) = cert.key_usage() else {
        return Vec::new();
    };
    let ku = ext.value;
    [
        (ku.digital_signature(), "digitalSignature"),
        (ku.non_repudiation(), "nonRepudiation"),
        (ku.key_encipherment(), "keyEncipherment"),
        (ku.data_encipherment(), "dataEncipherment"),
        (ku.key_agreement(), "keyAgreement"),
        (ku.key_cert_sign(), "keyCertSign"),
        (ku.crl_sign(), "cRLSign"),
        (ku.encipher_only(), "encipherOnly"),
        (ku.decipher_only(), "decipherOnly"),
    ]
    .into_iter()
    .filter_map(|(set, name)| set.then_some(name))
    .collect()
}

fn extended_key_usage(cert: &Parsed509<'_>) -> Vec<String> {
    let Ok(Some(ext)) = cert.extended_key_usage() else {
        return Vec::new();
    };
    let eku = ext.value;
    let mut out: Vec<String> = [
        (eku.server_auth, "serverAuth"),
        (eku.client_auth, "clientAuth"),
        (eku.code_signing, "codeSigning"),
        (eku.email_protection, "emailProtection"),
        (eku.time_stamping, "timeStamping"),
        (eku.ocsp_signing, "OCSPSigning"),
        (eku.any, "any"),
    ]
    .into_iter()
    .filter(|(set, _)| *set)
    .map(|(_, name)| name.to_owned())
    .collect();
    out.extend(eku.other.iter().map(|o| o.to_id_string()));
    out
}

fn ip_from_bytes(b: &[u8]) -> Option<IpAddr> {
    match b.len() {
        4 => Some(IpAddr::V4(Ipv4Addr::new(b[0], b[1], b[2], b[3]))),
        16 => {
            let mut a = [0u8; 16];
            a.copy_from_slice(b);
            Some(IpAddr::V6(Ipv6Addr::from(a)))
        }
        _ => None,
    }
}

fn system_time(secs: i64) -> SystemTime {
    if secs >= 0 {
        UNIX_EPOCH + Duration::from_secs(secs.unsigned_abs())
    } else {
        UNIX_EPOCH - Duration::from_secs(secs.unsigned_abs())
    }
}

/// Formats a name per RFC 4514: RDNs in reverse order, comma-separated.
fn rfc4514(name: &X509Name<'_>) -> String {
    let mut rdns: Vec<String> = Vec::new();
    for rdn in name.iter_rdn() {
        let parts: Vec<String> = rdn
            .iter()
            .map(|atv| {
                let oid = atv.attr_type().to_id_string();
                let short = short_name(&oid);
                match (short, atv.as_str()) {
                    (Some(n), Ok(v)) => format!("{n}={}", escape_value(v)),
                    (None, Ok(v)) => format!("{oid}={}", escape_value(v)),
                    (n, Err(_)) => format!("{}=#{}", n.unwrap_or(&oid), hex(atv.as_slice())),
                }
            })
            .collect();
        rdns.push(parts.join("+"));
    }
    rdns.reverse();
    rdns.join(",")
}

fn short_name(oid: &str) -> Option<&'static str> {
    Some(match oid {
        "2.5.4.3" => "CN",
        "2.5.4.6" => "C",
        "2.5.4.7" => "L",
        "2.5.4.8" => "ST",
        "2.5.4.9" => "STREET",
        "2.5.4.10" => "O",
        "2.5.4.11" => "OU",
        "2.5.4.5" => "serialNumber",
        "0.9.2342.19200300.100.1.25" => "DC",
        "0.9.2342.19200300.100.1.1" => "UID",
        "1.2.840.113549.1.9.1" => "emailAddress",
        _ => return None,
    })
}

fn escape_value(v: &str) -> String {
    let mut out = String::with_capacity(v.len());
    let last = v.chars().count().saturating_sub(1);
    for (i, c) in v.chars().enumerate() {
        match c {
            '"' | '+' | ',' | ';' | '<' | '>' | '\\' => {
                out.push('\\');
                out.push(c);
            }
            '#' if i == 0 => out.push_str("\\#"),
            ' ' if i == 0 || i == last => out.push_str("\\ "),
            '\0' => out.push_str("\\00"),
            _ => out.push(c),
        }
    }
    out
}

/// The SHA-256 of `bytes`.
pub(crate) fn sha256(bytes: &[u8]) -> [u8; 32] {
    crate::crypto::sha256(bytes)
}

/// `sha256//` and the base64 of `hash`: a public key pin.
pub(crate) fn pin_text(hash: &[u8; 32]) -> String {
    use base64ct::{Base64, Encoding};
    format!("sha256//{}", Base64::encode_string(hash))
}

pub(crate) fn hex(bytes: &[u8]) -> String {
    const DIGITS: &[u8; 16] = b"0123456789abcdef";
    let mut s = String::with_capacity(bytes.len() * 2);
    for b in bytes {
        s.push(DIGITS[(b >> 4) as usize] as char);
        s.push(DIGITS[(b & 15) as usize] as char);
    }
    s
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn escape_value_follows_rfc4514() {
        assert_eq!(escape_value("a,b"), "a\\,b");
        assert_eq!(escape_value("#x "), "\\#x\\ ");
        assert_eq!(escape_value("plain"), "plain");
    }
}
