//! [`CertificateProblem`]: why a peer's certificate was rejected, which
//! certificate of the chain it concerns, and the advice each reason calls
//! for.

use std::fmt;
use std::time::SystemTime;

use crate::time::format_time;

/// Where a certificate sits in the chain the peer sent.
#[non_exhaustive]
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum ChainPosition {
    /// The peer's own (end-entity) certificate.
    Leaf,
    /// A CA certificate between the leaf and the root.
    Intermediate,
    /// A self-signed CA certificate at the top of the chain (sent by the
    /// peer, or a trust anchor).
    Root,
}

/// The certificate of a chain that a [`CertificateProblem`] is about.
#[non_exhaustive]
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub struct ChainCertificate {
    /// Where it sits in the chain.
    pub position: ChainPosition,
    /// Its subject, RFC 4514 (`CN=R3,O=Let's Encrypt,C=US`); empty if it
    /// could not be parsed.
    pub subject: String,
}

impl fmt::Display for ChainCertificate {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let what = match self.position {
            ChainPosition::Leaf => "the certificate",
            ChainPosition::Intermediate => "the intermediate",
            ChainPosition::Root => "the root",
        };
        if self.subject.is_empty() {
            write!(f, "{what}")
        } else {
            write!(f, "{what} {}", self.subject)
        }
    }
}

/// "the intermediate CN=…", or "the certificate" when it is not known.
fn which(c: &Option<ChainCertificate>) -> String {
    c.as_ref()
        .map_or_else(|| "the certificate".to_owned(), ToString::to_string)
}

fn is_leaf(c: &Option<ChainCertificate>) -> bool {
    c.as_ref().is_none_or(|c| c.position == ChainPosition::Leaf)
}

/// Why a peer's certificate was rejected.
///
/// rustls reports a self-signed leaf, an untrusted root and a missing
/// intermediate all as "unknown issuer", and most other failures by an
/// internal name; securenet tells them apart, says which certificate of the
/// chain failed where that can be known, and what to do.
#[non_exhaustive]
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum CertificateProblem {
    /// A certificate's `notAfter` is in the past.
    #[non_exhaustive]
    Expired {
        /// The certificate that expired, if known.
        certificate: Option<ChainCertificate>,
        /// When it stopped being valid, if known.
        not_after: Option<SystemTime>,
    },
    /// A certificate's `notBefore` is in the future.
    #[non_exhaustive]
    NotYetValid {
        /// The certificate that is not valid yet, if known.
        certificate: Option<ChainCertificate>,
        /// When it becomes valid, if known.
        not_before: Option<SystemTime>,
    },
    /// The certificate is not valid for the name or address we connected to.
    #[non_exhaustive]
    NameMismatch {
        /// The name or IP address that was checked.
        expected: String,
        /// The names the certificate presents, each with its type:
        /// `DNS:example.com`, `IP:192.0.2.1`.
        presented: Vec<String>,
    },
    /// The leaf is self-signed and not trusted.
    #[non_exhaustive]
    SelfSigned {
        /// The leaf's subject.
        subject: String,
    },
    /// The chain the peer sent ends in a self-signed root that is not trusted.
    #[non_exhaustive]
    UntrustedRoot {
        /// The root's subject.
        root: String,
    },
    /// The chain does not lead to a trusted root: the issuer of the last
    /// certificate of the chain is unknown (an intermediate is missing, or
    /// the issuing CA is not trusted).
    #[non_exhaustive]
    UnknownIssuer {
        /// The issuer named by the last certificate of the chain.
        issuer: String,
    },
    /// A certificate that is not a CA (no `basicConstraints` `CA:TRUE`)
    /// issued the one below it: the mirror of
    /// [`CaUsedAsLeaf`](Self::CaUsedAsLeaf).
    #[non_exhaustive]
    NotCa {
        /// The certificate used as an issuer, if known.
        certificate: Option<ChainCertificate>,
    },
    /// A CA's `pathLenConstraint` allows fewer intermediates below it than
    /// the chain has.
    #[non_exhaustive]
    PathTooLong {
        /// The CA whose constraint is exceeded, if known.
        certificate: Option<ChainCertificate>,
    },
    /// A name in the certificate is outside what a CA of the chain may
    /// issue for (its name constraints).
    #[non_exhaustive]
    NameConstraints {
        /// The certificate whose names are checked (usually the leaf).
        certificate: Option<ChainCertificate>,
        /// The subjects of the CAs in the chain that carry name constraints.
        constrained_by: Vec<String>,
    },
    /// A certificate of the chain is listed as revoked by a CRL given to
    /// `set_crls`.
    #[non_exhaustive]
    Revoked {
        /// The revoked certificate, if known.
        certificate: Option<ChainCertificate>,
        /// When its CA revoked it (the CRL entry's revocationDate), if
        /// known.
        revoked_at: Option<SystemTime>,
        /// The CRL entry's reason code as RFC 5280 names it
        /// (`keyCompromise`, `superseded`…), if it has one.
        reason: Option<String>,
    },
    /// The revocation lists given to `set_crls` cannot be used to check the
    /// chain.
    #[non_exhaustive]
    RevocationUnchecked {
        /// What is wrong with them.
        reason: String,
    },
    /// The certificate's key is on the list of keys distrusted after a CA
    /// incident.
    #[non_exhaustive]
    Distrusted {
        /// The distrusted certificate, if known.
        certificate: Option<ChainCertificate>,
    },
    /// A signature does not verify.
    #[non_exhaustive]
    BadSignature {
        /// The certificate whose signature fails, if known.
        certificate: Option<ChainCertificate>,
    },
    /// A signature or key algorithm is unsupported or too weak.
    #[non_exhaustive]
    UnsupportedAlgorithm {
        /// The certificate with that algorithm or key, if known.
        certificate: Option<ChainCertificate>,
        /// The algorithm or key, and why it is refused.
        detail: String,
    },
    /// A CA certificate was presented as the end-entity certificate.
    CaUsedAsLeaf,
    /// A certificate's extended key usage does not allow this use.
    #[non_exhaustive]
    InvalidPurpose {
        /// The certificate whose extended key usage is wrong, if known.
        certificate: Option<ChainCertificate>,
        /// The usage this connection needs: `serverAuth` or `clientAuth`.
        required: String,
        /// The usages it lists.
        presented: Vec<String>,
    },
    /// A certificate is malformed.
    #[non_exhaustive]
    BadEncoding {
        /// The malformed certificate, if known.
        certificate: Option<ChainCertificate>,
        /// What is malformed.
        detail: String,
    },
    /// A certificate has a critical extension that the verifier does not
    /// know, so it must not be accepted (RFC 5280, 4.2).
    #[non_exhaustive]
    UnsupportedCriticalExtension {
        /// The certificate, if known.
        certificate: Option<ChainCertificate>,
        /// The extension's OID, if known.
        extension: String,
    },
    /// The chain is too complex to verify within the verifier's limits.
    #[non_exhaustive]
    TooComplex {
        /// Which limit was reached.
        detail: String,
    },
    /// The peer sent no certificate but one is required.
    NotPresented,
    /// A `check_server_identity` callback rejected the certificate.
    #[non_exhaustive]
    Rejected {
        /// The callback's reason.
        reason: String,
    },
    /// No certificate of the chain has a public key pinned with
    /// `ConnectOptions::pin_sha256`.
    #[non_exhaustive]
    PinMismatch {
        /// The pins, `sha256//` and base64, as given.
        expected: Vec<String>,
        /// The `sha256//` pins of the chain's keys, leaf first.
        presented: Vec<String>,
    },
    /// Any other verification failure.
    Other(String),
}

impl fmt::Display for CertificateProblem {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        use CertificateProblem::*;
        match self {
            Expired {
                certificate,
                not_after,
            } => {
                write!(f, "{} has expired", which(certificate))?;
                if let Some(t) = not_after {
                    write!(f, " (not after {})", format_time(*t))?;
                }
                if is_leaf(certificate) {
                    write!(f, ": the peer must renew it")
                } else {
                    write!(
                        f,
                        ": the peer must send its CA's current chain (or the CA renew it)"
                    )
                }
            }
            NotYetValid {
                certificate,
                not_before,
            } => {
                write!(f, "{} is not valid yet", which(certificate))?;
                if let Some(t) = not_before {
                    write!(f, " (not before {})", format_time(*t))?;
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
            NotCa { certificate } => write!(
                f,
                "{} issued another certificate of the chain but is not a CA certificate (it lacks \
                 basicConstraints CA:TRUE): the peer sends the wrong intermediate, or its CA \
                 issued it wrongly",
                certificate
                    .as_ref()
                    .map_or_else(|| "a certificate".to_owned(), ToString::to_string)
            ),
            PathTooLong { certificate } => write!(
                f,
                "the chain has more intermediates below {} than its pathLenConstraint allows: the \
                 peer must send a shorter chain",
                certificate
                    .as_ref()
                    .map_or_else(|| "a CA".to_owned(), ToString::to_string)
            ),
            NameConstraints {
                certificate,
                constrained_by,
            } => {
                write!(
                    f,
                    "{} has a name outside the name constraints of ",
                    which(certificate)
                )?;
                if constrained_by.is_empty() {
                    write!(f, "a CA of its chain")?;
                } else {
                    write!(f, "{}", constrained_by.join(" and "))?;
                }
                write!(
                    f,
                    ": that CA may not issue for it; the peer needs a certificate from a CA \
                     allowed to issue for that name"
                )
            }
            Revoked {
                certificate,
                revoked_at,
                reason,
            } => {
                write!(f, "{} has been revoked", which(certificate))?;
                if let Some(t) = revoked_at {
                    write!(f, " (on {}", format_time(*t))?;
                    match reason {
                        Some(r) => write!(f, ", {r})")?,
                        None => write!(f, ")")?,
                    }
                } else if let Some(r) = reason {
                    write!(f, " ({r})")?;
                }
                write!(f, "; a CRL given to set_crls lists it: the peer ")?;
                if is_leaf(certificate) {
                    write!(f, "must use a new certificate")
                } else {
                    write!(f, "must send a chain through a CA that is not revoked")
                }
            }
            // A reason that says what to do (after ": ") is advice
            // enough; the others are about the lists themselves.
            RevocationUnchecked { reason } if reason.contains(": ") => write!(
                f,
                "the revocation lists given to set_crls cannot check this chain: {reason}"
            ),
            RevocationUnchecked { reason } => write!(
                f,
                "the revocation lists given to set_crls cannot check this chain ({reason}): \
                 replace them with current CRLs from the CA"
            ),
            Distrusted { certificate } => write!(
                f,
                "{} has a key that is distrusted after a CA incident: the peer needs a \
                 certificate from another CA",
                which(certificate)
            ),
            BadSignature { certificate: None } => write!(
                f,
                "a signature does not verify: a certificate was altered, or was not issued by the \
                 CA it names"
            ),
            BadSignature {
                certificate: Some(c),
            } => write!(
                f,
                "the signature on {c} does not verify: it was altered, or was not issued by the \
                 CA it names"
            ),
            UnsupportedAlgorithm {
                certificate,
                detail,
            } => write!(
                f,
                "{} uses an unsupported or weak key or signature algorithm ({detail}): the peer \
                 needs a certificate with a key of at least RSA 2048 bits or ECDSA P-256 and a \
                 SHA-256 or stronger signature",
                which(certificate)
            ),
            CaUsedAsLeaf => write!(
                f,
                "a CA certificate was presented as the end-entity certificate: the peer must use \
                 a leaf certificate issued by the CA (or add this exact certificate with \
                 set_trusted_certificates to trust it as itself)"
            ),
            InvalidPurpose {
                certificate,
                required,
                presented,
            } => write!(
                f,
                "the extended key usage of {} is [{}], which does not allow {required} (server \
                 certificates need serverAuth, client certificates clientAuth): the peer needs a \
                 certificate issued for that use",
                which(certificate),
                presented.join(", ")
            ),
            BadEncoding {
                certificate,
                detail,
            } => write!(
                f,
                "{} is malformed ({detail}): the peer must send a valid certificate",
                which(certificate)
            ),
            UnsupportedCriticalExtension {
                certificate,
                extension,
            } => write!(
                f,
                "{} has a critical extension ({extension}) that securenet does not know, so it \
                 cannot be accepted (RFC 5280): the peer needs a certificate without it",
                which(certificate)
            ),
            TooComplex { detail } => write!(
                f,
                "the certificate chain is too complex to verify ({detail}): the peer should send \
                 only its own chain"
            ),
            NotPresented => write!(
                f,
                "the peer sent no certificate but one is required: the client must set one with \
                 use_certificate_chain and use_private_key"
            ),
            Rejected { reason } => {
                write!(f, "the identity check rejected the certificate: {reason}")
            }
            PinMismatch {
                expected,
                presented,
            } => write!(
                f,
                "no key in the certificate chain matches a pinned key: pinned [{}], the chain has \
                 [{}]; update the pins if the peer changed its key",
                expected.join(", "),
                presented.join(", ")
            ),
            Other(s) => write!(f, "{s}"),
        }
    }
}
