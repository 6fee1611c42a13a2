//! Why a chain was rejected, in words a user can act on: webpki says what
//! rule failed but not where, so the chain the peer sent is read again
//! (x509-parser) to find the certificate each error is about.

use rustls::pki_types::{CertificateDer, ServerName, UnixTime};
use webpki::Error as W;
use x509_parser::extensions::{GeneralName, ParsedExtension};
use x509_parser::prelude::FromDer;

use crate::error::{CertificateProblem, ChainCertificate, ChainPosition};
use crate::time::unix_to_system;
use crate::tls::certificate::X509Certificate;
use crate::tls::revocation::{PathCert, crl_detail};
use crate::tls::trust::Trust;

/// The smallest RSA key the verifier accepts (aws-lc-rs's RSA algorithms
/// start at 2048 bits).
const MIN_RSA_BITS: usize = 2048;

/// Extensions webpki understands; any other marked critical is refused.
const KNOWN_EXTENSIONS: [&str; 6] = [
    "2.5.29.15", // keyUsage
    "2.5.29.17", // subjectAltName
    "2.5.29.19", // basicConstraints
    "2.5.29.30", // nameConstraints
    "2.5.29.31", // cRLDistributionPoints
    "2.5.29.37", // extKeyUsage
];

/// Signature algorithms the verifier accepts, by the names
/// `X509Certificate::signature_algorithm` gives.
const ACCEPTED_SIGNATURES: [&str; 8] = [
    "sha256WithRSAEncryption",
    "sha384WithRSAEncryption",
    "sha512WithRSAEncryption",
    "RSASSA-PSS",
    "ecdsa-with-SHA256",
    "ecdsa-with-SHA384",
    "ecdsa-with-SHA512",
    "Ed25519",
];

/// One certificate of the chain, with what the diagnosis needs.
struct Link {
    cert: Option<X509Certificate>,
    raw_subject: Vec<u8>,
    raw_issuer: Vec<u8>,
    /// The serial number's bytes, as a CRL entry lists them.
    raw_serial: Vec<u8>,
    self_signed: bool,
    path_len: Option<u32>,
    name_constraints: bool,
    unknown_critical: Option<String>,
    names: Vec<String>,
    /// Whether webpki can parse it (as it must, to use it).
    webpki_parses: bool,
}

impl Link {
    fn parse(der: &[u8]) -> Link {
        let webpki_parses = webpki::EndEntityCert::try_from(&CertificateDer::from(der)).is_ok();
        let mut link = Link {
            cert: X509Certificate::from_der(der).ok(),
            raw_subject: Vec::new(),
            raw_issuer: Vec::new(),
            raw_serial: Vec::new(),
            self_signed: false,
            path_len: None,
            name_constraints: false,
            unknown_critical: None,
            names: Vec::new(),
            webpki_parses,
        };
        let Ok((_, x)) = x509_parser::certificate::X509Certificate::from_der(der) else {
            return link;
        };
        link.raw_subject = x.subject().as_raw().to_vec();
        link.raw_issuer = x.issuer().as_raw().to_vec();
        link.raw_serial = x.tbs_certificate.raw_serial().to_vec();
        let ski = x
            .extensions()
            .iter()
            .find_map(|e| match e.parsed_extension() {
                ParsedExtension::SubjectKeyIdentifier(k) => Some(k.0.to_vec()),
                _ => None,
            });
        let aki = x
            .extensions()
            .iter()
            .find_map(|e| match e.parsed_extension() {
                ParsedExtension::AuthorityKeyIdentifier(a) => {
                    a.key_identifier.as_ref().map(|k| k.0.to_vec())
                }
                _ => None,
            });
        link.self_signed = link.raw_subject == link.raw_issuer
            && match (&ski, &aki) {
                (Some(s), Some(a)) => s == a,
                _ => true,
            };
        for ext in x.extensions() {
            match ext.parsed_extension() {
                ParsedExtension::BasicConstraints(bc) => link.path_len = bc.path_len_constraint,
                ParsedExtension::NameConstraints(_) => link.name_constraints = true,
                ParsedExtension::SubjectAlternativeName(san) => {
                    link.names = san.general_names.iter().filter_map(typed_name).collect();
                }
                _ => {}
            }
            let oid = ext.oid.to_id_string();
            if ext.critical
                && link.unknown_critical.is_none()
                && !KNOWN_EXTENSIONS.contains(&oid.as_str())
            {
                link.unknown_critical = Some(oid);
            }
        }
        link
    }

    fn subject(&self) -> String {
        self.cert
            .as_ref()
            .map(|c| c.subject().to_owned())
            .unwrap_or_default()
    }

    fn is_ca(&self) -> bool {
        self.cert.as_ref().is_some_and(X509Certificate::is_ca)
    }

    fn rsa_bits(&self) -> Option<u32> {
        let c = self.cert.as_ref()?;
        (c.public_key_algorithm() == "RSA")
            .then(|| c.public_key_bits())
            .flatten()
    }
}

/// A name of a subjectAltName with its type, as messages show it.
fn typed_name(name: &GeneralName<'_>) -> Option<String> {
    match name {
        GeneralName::DNSName(s) => Some(format!("DNS:{s}")),
        GeneralName::IPAddress(b) => ip_text(b).map(|ip| format!("IP:{ip}")),
        _ => None,
    }
}

fn ip_text(b: &[u8]) -> Option<String> {
    if let Ok(a) = <[u8; 4]>::try_from(b) {
        return Some(std::net::Ipv4Addr::from(a).to_string());
    }
    <[u8; 16]>::try_from(b)
        .ok()
        .map(|a| std::net::Ipv6Addr::from(a).to_string())
}

/// The peer's chain as it leads up from the leaf: the leaf, then each
/// certificate it sent that issued the one before (in whatever order it
/// sent them), then the trusted root the user added that issued the last
/// one, if any.
pub(crate) struct Chain {
    path: Vec<Link>,
    /// The user-added root above the path, if one matches.
    root: Option<Link>,
    /// Certificates sent but not on the path.
    unused: Vec<Link>,
}

impl Chain {
    pub(crate) fn new(
        leaf: &CertificateDer<'_>,
        intermediates: &[CertificateDer<'_>],
        trust: &Trust,
    ) -> Chain {
        let mut path = vec![Link::parse(leaf)];
        let mut rest: Vec<Link> = intermediates.iter().map(|c| Link::parse(c)).collect();
        while let Some(last) = path.last() {
            if last.self_signed || last.raw_issuer.is_empty() {
                break;
            }
            let Some(i) = rest.iter().position(|c| c.raw_subject == last.raw_issuer) else {
                break;
            };
            path.push(rest.remove(i));
        }
        let root = path.last().filter(|l| !l.self_signed).and_then(|last| {
            trust
                .added
                .iter()
                .map(|c| Link::parse(c))
                .find(|c| c.raw_subject == last.raw_issuer)
        });
        Chain {
            path,
            root,
            unused: rest,
        }
    }

    /// A chain nothing is known about (an error rustls made itself).
    pub(crate) fn unknown() -> Chain {
        Chain {
            path: vec![Link::parse(&[])],
            root: None,
            unused: Vec::new(),
        }
    }

    fn leaf(&self) -> &Link {
        &self.path[0]
    }

    /// What a message calls the `i`th certificate of the path.
    fn describe(&self, i: usize) -> Option<ChainCertificate> {
        let link = self.path.get(i)?;
        Some(ChainCertificate {
            position: position(i, link),
            subject: link.subject(),
        })
    }

    fn describe_root(&self) -> Option<ChainCertificate> {
        self.root.as_ref().map(|r| ChainCertificate {
            position: ChainPosition::Root,
            subject: r.subject(),
        })
    }

    /// The first certificate of the path for which `bad` holds.
    fn find(&self, bad: impl Fn(&Link) -> bool) -> Option<ChainCertificate> {
        let i = self.path.iter().position(bad)?;
        self.describe(i)
    }

    /// Every certificate, the path first, for a search that may look at
    /// certificates sent off the path too.
    fn all(&self) -> impl Iterator<Item = (Option<ChainCertificate>, &Link)> {
        let path = self
            .path
            .iter()
            .enumerate()
            .map(|(i, l)| (self.describe(i), l));
        let root = self.root.iter().map(|l| (self.describe_root(), l));
        let unused = self.unused.iter().map(|l| {
            let position = if l.self_signed {
                ChainPosition::Root
            } else {
                ChainPosition::Intermediate
            };
            (
                Some(ChainCertificate {
                    position,
                    subject: l.subject(),
                }),
                l,
            )
        });
        path.chain(root).chain(unused)
    }

    /// The leaf's subjectAltNames with their types (`DNS:…`, `IP:…`).
    pub(crate) fn leaf_names(&self) -> Vec<String> {
        self.leaf().names.clone()
    }

    /// Why the chain does not lead to a trusted root: a self-signed leaf,
    /// an untrusted root at the top of what the peer sent, or an issuer
    /// that is missing.
    pub(crate) fn unknown_issuer(&self) -> CertificateProblem {
        let top = self.path.last().unwrap_or(self.leaf());
        if top.self_signed {
            if self.path.len() == 1 {
                return CertificateProblem::SelfSigned {
                    subject: top.subject(),
                };
            }
            return CertificateProblem::UntrustedRoot {
                root: top.subject(),
            };
        }
        CertificateProblem::UnknownIssuer {
            issuer: top
                .cert
                .as_ref()
                .map_or_else(|| "unknown".to_owned(), |c| c.issuer().to_owned()),
        }
    }

    /// The path's certificates as the CRL checks see them.
    pub(crate) fn for_crls(&self) -> Vec<PathCert<'_>> {
        self.path
            .iter()
            .enumerate()
            .map(|(i, link)| PathCert {
                shown: self.describe(i),
                issuer: &link.raw_issuer,
                issuer_name: link.cert.as_ref().map(|c| c.issuer().to_owned()),
                serial: &link.raw_serial,
            })
            .collect()
    }

    /// The typed problem for webpki's `error`, checking for `required`
    /// (`serverAuth` or `clientAuth`) at `now`.
    pub(crate) fn diagnose(
        &self,
        error: &W,
        required: &str,
        name: Option<&ServerName<'_>>,
        now: UnixTime,
    ) -> CertificateProblem {
        use CertificateProblem as P;
        let now = i64::try_from(now.as_secs()).unwrap_or(i64::MAX);
        let secs = crate::time::unix_secs;
        #[allow(deprecated)]
        match error {
            W::CertExpired { not_after, .. } => P::Expired {
                certificate: self.find(|l| {
                    l.cert
                        .as_ref()
                        .is_some_and(|c| secs(c.end_validity()) < now)
                }),
                not_after: Some(unix_to_system(*not_after)),
            },
            W::CertNotValidYet { not_before, .. } => P::NotYetValid {
                certificate: self.find(|l| {
                    l.cert
                        .as_ref()
                        .is_some_and(|c| secs(c.start_validity()) > now)
                }),
                not_before: Some(unix_to_system(*not_before)),
            },
            W::InvalidCertValidity => P::BadEncoding {
                certificate: self.find(|l| {
                    l.cert
                        .as_ref()
                        .is_some_and(|c| c.end_validity() < c.start_validity())
                }),
                detail: "its validity period ends before it begins".to_owned(),
            },
            W::CertNotValidForName(_) | W::UnsupportedNameType => P::NameMismatch {
                expected: name.map(|n| n.to_str().into_owned()).unwrap_or_default(),
                presented: self.leaf_names(),
            },
            W::UnknownIssuer => self.unknown_issuer(),
            // A self-signed CA certificate (`openssl req -x509`) is first
            // of all not trusted; trusting it as itself works.
            W::CaUsedAsEndEntity if self.leaf().self_signed => self.unknown_issuer(),
            W::CaUsedAsEndEntity => P::CaUsedAsLeaf,
            W::EndEntityUsedAsCa => P::NotCa {
                certificate: self
                    .path
                    .iter()
                    .skip(1)
                    .position(|l| !l.is_ca())
                    .and_then(|i| self.describe(i + 1)),
            },
            W::PathLenConstraintViolated => P::PathTooLong {
                certificate: self.path_too_long(),
            },
            W::NameConstraintViolation => P::NameConstraints {
                certificate: self.describe(0),
                constrained_by: self
                    .all()
                    .skip(1)
                    .filter(|(_, l)| l.name_constraints)
                    .map(|(_, l)| l.subject())
                    .collect(),
            },
            W::MalformedNameConstraint | W::InvalidNetworkMaskConstraint => P::BadEncoding {
                certificate: self
                    .all()
                    .find(|(_, l)| l.name_constraints)
                    .and_then(|(c, _)| c),
                detail: "its name constraints are malformed".to_owned(),
            },
            W::MalformedDnsIdentifier => P::BadEncoding {
                certificate: self.describe(0),
                detail: "a DNS name in it, or the name connected to, is not a valid DNS name"
                    .to_owned(),
            },
            W::CertRevoked => P::Revoked {
                certificate: None,
                revoked_at: None,
                reason: None,
            },
            W::CertDistrusted => P::Distrusted { certificate: None },
            W::InvalidSignatureForPublicKey => self.bad_signature(),
            W::UnsupportedSignatureAlgorithm
            | W::UnsupportedSignatureAlgorithmContext(_)
            | W::UnsupportedSignatureAlgorithmForPublicKey
            | W::UnsupportedSignatureAlgorithmForPublicKeyContext(_) => {
                self.unsupported_algorithm()
            }
            W::SignatureAlgorithmMismatch => P::BadEncoding {
                certificate: None,
                detail: "its two signature algorithm fields differ".to_owned(),
            },
            W::RequiredEkuNotFound | W::RequiredEkuNotFoundContext(_) | W::EmptyEkuExtension => {
                let bad = self.all().find(|(_, l)| {
                    l.cert.as_ref().is_some_and(|c| {
                        let eku = c.extended_key_usage();
                        !eku.is_empty() && !eku.iter().any(|u| u == required || u == "any")
                    }) || l
                        .cert
                        .as_ref()
                        .is_some_and(|c| c.extended_key_usage().is_empty())
                        && matches!(error, W::EmptyEkuExtension)
                });
                P::InvalidPurpose {
                    required: required.to_owned(),
                    presented: bad
                        .as_ref()
                        .and_then(|(_, l)| l.cert.as_ref())
                        .map(|c| c.extended_key_usage().to_vec())
                        .unwrap_or_default(),
                    certificate: bad.and_then(|(c, _)| c),
                }
            }
            W::UnsupportedCriticalExtension => {
                let bad = self.all().find(|(_, l)| l.unknown_critical.is_some());
                P::UnsupportedCriticalExtension {
                    extension: bad
                        .as_ref()
                        .and_then(|(_, l)| l.unknown_critical.clone())
                        .unwrap_or_else(|| "unknown".to_owned()),
                    certificate: bad.and_then(|(c, _)| c),
                }
            }
            W::BadDer
            | W::BadDerTime
            | W::TrailingData(_)
            | W::MalformedExtensions
            | W::ExtensionValueInvalid
            | W::UnsupportedCertVersion
            | W::InvalidSerialNumber => P::BadEncoding {
                certificate: self
                    .all()
                    .find(|(_, l)| !l.webpki_parses)
                    .and_then(|(c, _)| c),
                detail: encoding_detail(error),
            },
            W::CrlExpired { .. }
            | W::InvalidCrlNumber
            | W::InvalidCrlSignatureForPublicKey
            | W::IssuerNotCrlSigner
            | W::UnknownRevocationStatus
            | W::UnsupportedCrlIssuingDistributionPoint
            | W::UnsupportedCrlVersion
            | W::UnsupportedDeltaCrl
            | W::UnsupportedIndirectCrl
            | W::UnsupportedRevocationReason
            | W::UnsupportedRevocationReasonsPartitioning
            | W::UnsupportedCrlSignatureAlgorithm
            | W::UnsupportedCrlSignatureAlgorithmContext(_)
            | W::UnsupportedCrlSignatureAlgorithmForPublicKey
            | W::UnsupportedCrlSignatureAlgorithmForPublicKeyContext(_) => P::RevocationUnchecked {
                reason: crl_detail(error),
            },
            W::MaximumNameConstraintComparisonsExceeded
            | W::MaximumPathBuildCallsExceeded
            | W::MaximumPathDepthExceeded
            | W::MaximumSignatureChecksExceeded => P::TooComplex {
                detail: match error {
                    W::MaximumPathDepthExceeded => "more than 6 intermediates deep",
                    W::MaximumSignatureChecksExceeded => "over 100 signature checks",
                    W::MaximumNameConstraintComparisonsExceeded => {
                        "over 250,000 name constraint comparisons"
                    }
                    _ => "over 200,000 path building steps",
                }
                .to_owned(),
            },
            other => P::Other(format!("the certificate is invalid: {other:?}")),
        }
    }

    /// The CA whose `pathLenConstraint` the chain exceeds: the CA at path
    /// index `i` has `i - 1` intermediates below it.
    fn path_too_long(&self) -> Option<ChainCertificate> {
        for (i, link) in self.path.iter().enumerate().skip(1) {
            if link.path_len.is_some_and(|n| (i - 1) as u64 > u64::from(n)) {
                return self.describe(i);
            }
        }
        let root = self.root.as_ref()?;
        let below = self.path.len().saturating_sub(1) as u64;
        root.path_len
            .is_some_and(|n| below > u64::from(n))
            .then(|| self.describe_root())
            .flatten()
    }

    /// A signature that does not verify: often an RSA key too small for
    /// the verifier (which fails as a bad signature), else a real one.
    fn bad_signature(&self) -> CertificateProblem {
        if let Some(p) = self.weak_key() {
            return p;
        }
        CertificateProblem::BadSignature {
            // With only the leaf, its signature is the one checked.
            certificate: (self.path.len() == 1 && self.unused.is_empty())
                .then(|| self.describe(0))
                .flatten(),
        }
    }

    fn weak_key(&self) -> Option<CertificateProblem> {
        let (certificate, bits) = self.all().find_map(|(c, l)| {
            l.rsa_bits()
                .filter(|b| (*b as usize) < MIN_RSA_BITS)
                .map(|b| (c, b))
        })?;
        Some(CertificateProblem::UnsupportedAlgorithm {
            certificate,
            detail: format!("an RSA key of {bits} bits; at least {MIN_RSA_BITS} are required"),
        })
    }

    fn unsupported_algorithm(&self) -> CertificateProblem {
        if let Some(p) = self.weak_key() {
            return p;
        }
        let bad_sig = self.all().find(|(_, l)| {
            l.cert
                .as_ref()
                .is_some_and(|c| !ACCEPTED_SIGNATURES.contains(&c.signature_algorithm()))
        });
        if let Some((certificate, link)) = bad_sig {
            let alg = link
                .cert
                .as_ref()
                .map(|c| c.signature_algorithm().to_owned())
                .unwrap_or_default();
            return CertificateProblem::UnsupportedAlgorithm {
                certificate,
                detail: format!("it is signed with {alg}, which is not accepted"),
            };
        }
        let odd_key = self.all().find(|(_, l)| {
            l.cert.as_ref().is_some_and(|c| {
                !matches!(
                    c.public_key_algorithm(),
                    "RSA" | "RSASSA-PSS" | "EC P-256" | "EC P-384" | "EC P-521" | "Ed25519"
                )
            })
        });
        match odd_key {
            Some((certificate, link)) => CertificateProblem::UnsupportedAlgorithm {
                certificate,
                detail: format!(
                    "its key is {}, which is not supported",
                    link.cert
                        .as_ref()
                        .map(|c| c.public_key_algorithm().to_owned())
                        .unwrap_or_default()
                ),
            },
            None => CertificateProblem::UnsupportedAlgorithm {
                certificate: None,
                detail: "a signature's algorithm does not fit its issuer's key".to_owned(),
            },
        }
    }
}

fn position(i: usize, link: &Link) -> ChainPosition {
    match (i, link.self_signed) {
        (0, _) => ChainPosition::Leaf,
        (_, true) => ChainPosition::Root,
        _ => ChainPosition::Intermediate,
    }
}

fn encoding_detail(error: &W) -> String {
    match error {
        W::BadDerTime => "a time in it is not valid DER",
        W::TrailingData(_) => "bytes follow a field that should end it",
        W::MalformedExtensions => "its extensions are malformed or repeated",
        W::ExtensionValueInvalid => "an extension's value is invalid",
        W::UnsupportedCertVersion => "it is not an X.509 version 3 certificate",
        W::InvalidSerialNumber => "its serial number is invalid (negative, or over 20 bytes)",
        _ => "it is not valid DER",
    }
    .to_owned()
}
