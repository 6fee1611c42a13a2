//! `X509Certificate`: a parsed certificate (Dart's `X509Certificate`).

use std::fmt;
use std::net::{IpAddr, Ipv4Addr, Ipv6Addr};
use std::sync::Arc;
use std::time::{Duration, SystemTime, UNIX_EPOCH};

use x509_parser::prelude::{FromDer, GeneralName, X509Name};

use crate::error::{Error, Result};
use crate::time::format_time;

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
        Ok(X509Certificate {
            inner: Arc::new(Parsed {
                der: der.to_vec(),
                subject: rfc4514(cert.subject()),
                issuer: rfc4514(cert.issuer()),
                not_before: system_time(validity.not_before.timestamp()),
                not_after: system_time(validity.not_after.timestamp()),
                sans,
                is_ca: cert.is_ca(),
            }),
        })
    }

    /// The subject's distinguished name in RFC 4514 form, e.g. `CN=localhost,O=Example`.
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

    /// The SHA-1 fingerprint of the DER encoding (as `openssl x509 -fingerprint -sha1`).
    pub fn sha1(&self) -> [u8; 20] {
        let d = aws_lc_rs::digest::digest(
            &aws_lc_rs::digest::SHA1_FOR_LEGACY_USE_ONLY,
            &self.inner.der,
        );
        let mut out = [0u8; 20];
        out.copy_from_slice(d.as_ref());
        out
    }

    /// The SHA-256 fingerprint of the DER encoding, the usual value to pin.
    pub fn sha256(&self) -> [u8; 32] {
        let d = aws_lc_rs::digest::digest(&aws_lc_rs::digest::SHA256, &self.inner.der);
        let mut out = [0u8; 32];
        out.copy_from_slice(d.as_ref());
        out
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

    /// Whether subject and issuer are the same name (a self-issued certificate).
    pub(crate) fn is_self_issued(&self) -> bool {
        self.inner.subject == self.inner.issuer
    }
}

impl PartialEq for X509Certificate {
    fn eq(&self, other: &Self) -> bool {
        self.inner.der == other.inner.der
    }
}

impl Eq for X509Certificate {}

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
