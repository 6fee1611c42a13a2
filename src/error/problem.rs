//! [`CertificateProblem`]: why a peer's certificate was rejected, with the
//! advice each reason calls for.

use std::fmt;
use std::time::SystemTime;

/// Why a peer's certificate was rejected.
///
/// rustls reports a self-signed leaf, an untrusted root and a missing
/// intermediate all as "unknown issuer"; securenet tells them apart where the
/// chain the peer sent allows it.
#[non_exhaustive]
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum CertificateProblem {
    /// The certificate's `notAfter` is in the past.
    Expired {
        /// When the certificate stopped being valid, if known.
        not_after: Option<SystemTime>,
    },
    /// The certificate's `notBefore` is in the future.
    NotYetValid {
        /// When the certificate becomes valid, if known.
        not_before: Option<SystemTime>,
    },
    /// The certificate is not valid for the name or address we connected to.
    NameMismatch {
        /// The name or IP address that was checked.
        expected: String,
        /// The DNS names and IP addresses the certificate presents.
        presented: Vec<String>,
    },
    /// The leaf is self-signed and not trusted.
    SelfSigned {
        /// The leaf's subject.
        subject: String,
    },
    /// The chain the peer sent ends in a self-signed root that is not trusted.
    UntrustedRoot {
        /// The root's subject.
        root: String,
    },
    /// The chain does not lead to a trusted root: the issuer of the last
    /// certificate the peer sent is unknown (an intermediate is missing, or
    /// the issuing CA is not trusted).
    UnknownIssuer {
        /// The issuer named by the last certificate the peer sent.
        issuer: String,
    },
    /// The certificate has been revoked.
    Revoked,
    /// A signature in the chain does not verify.
    BadSignature,
    /// A signature or key algorithm is unsupported or too weak.
    UnsupportedAlgorithm,
    /// A CA certificate was presented as the end-entity certificate.
    CaUsedAsLeaf,
    /// The certificate's key usage or extended key usage does not allow this use.
    InvalidPurpose,
    /// The certificate could not be parsed.
    BadEncoding,
    /// The peer sent no certificate but one is required.
    NotPresented,
    /// A `check_server_identity` callback rejected the certificate.
    Rejected {
        /// The callback's reason.
        reason: String,
    },
    /// Any other verification failure.
    Other(String),
}

impl fmt::Display for CertificateProblem {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        use CertificateProblem::*;
        match self {
            Expired { not_after } => {
                write!(f, "the certificate has expired")?;
                if let Some(t) = not_after {
                    write!(f, " (not after {})", crate::time::format_time(*t))?;
                }
                write!(f, ": the peer must renew it")
            }
            NotYetValid { not_before } => {
                write!(f, "the certificate is not valid yet")?;
                if let Some(t) = not_before {
                    write!(f, " (not before {})", crate::time::format_time(*t))?;
                }
                write!(f, ": check the clocks of both hosts")
            }
            NameMismatch {
                expected,
                presented,
            } if presented.is_empty() => write!(
                f,
                "the certificate is not valid for '{expected}': it has no subjectAltName, and a \
                 name only in the subject's CN is not accepted (RFC 6125): the peer must reissue \
                 it with '{expected}' as a DNS or IP subjectAltName"
            ),
            NameMismatch {
                expected,
                presented,
            } => write!(
                f,
                "the certificate is not valid for '{expected}': it names [{}]; connect with one of \
                 those names, or set server_name/check_server_identity",
                presented.join(", ")
            ),
            SelfSigned { subject } => write!(
                f,
                "the certificate is self-signed ({subject}) and not trusted: add it with \
                 set_trusted_certificates, or accept it in on_bad_certificate"
            ),
            UntrustedRoot { root } => write!(
                f,
                "the certificate chain ends in a root that is not trusted ({root}): add that CA \
                 with set_trusted_certificates if you trust it"
            ),
            UnknownIssuer { issuer } => write!(
                f,
                "the certificate chain does not lead to a trusted root (issuer {issuer}): the root \
                 is not trusted or the peer did not send an intermediate; add the CA with \
                 set_trusted_certificates, or have the peer send its full chain"
            ),
            Revoked => write!(
                f,
                "the certificate has been revoked (a CRL given to set_crls lists it): the peer \
                 must use a new certificate"
            ),
            BadSignature => write!(f, "a signature in the certificate chain does not verify"),
            UnsupportedAlgorithm => write!(
                f,
                "the certificate uses an unsupported or weak signature or key algorithm"
            ),
            CaUsedAsLeaf => write!(
                f,
                "a CA certificate was presented as the end-entity certificate: the peer must use \
                 a leaf certificate issued by the CA"
            ),
            InvalidPurpose => write!(
                f,
                "the certificate's key usage does not allow this use (server certificates need \
                 serverAuth, client certificates clientAuth)"
            ),
            BadEncoding => write!(f, "the certificate is not valid DER"),
            NotPresented => write!(
                f,
                "the peer sent no certificate but one is required: the client must set one with \
                 use_certificate_chain and use_private_key"
            ),
            Rejected { reason } => {
                write!(f, "the identity check rejected the certificate: {reason}")
            }
            Other(s) => write!(f, "{s}"),
        }
    }
}
