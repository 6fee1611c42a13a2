//! Certificate revocation lists: the ones a context holds and how
//! strictly they are applied, and what a CRL says about one certificate
//! (webpki says only that a chain has a revoked certificate, not which,
//! when or why).

use rustls::pki_types::CertificateRevocationListDer;
use rustls::pki_types::pem::PemObject;
use webpki::Error as W;
use webpki::{CertRevocationList, OwnedCertRevocationList, RevocationReason};

use crate::error::{CertificateProblem, ChainCertificate, Error, Result};
use crate::time::{format_time, unix_to_system};
use crate::tls::pem::{looks_like_pem, malformed_pem};

/// The CRLs of a context (parsed once, when given), and whether every
/// certificate must be covered by a current one.
#[derive(Clone, Default)]
pub(crate) struct Revocation {
    pub(crate) lists: Vec<OwnedCertRevocationList>,
    /// `set_crls_required`: a certificate no CRL covers, or an expired
    /// CRL, fails verification.
    pub(crate) required: bool,
    /// The SHA-256 of each list's DER, in the order of `lists`: what the
    /// server's session tickets are bound to (webpki keeps no DER).
    pub(crate) digests: Vec<[u8; 32]>,
    /// Each list's nextUpdate (seconds since the epoch), in the order of
    /// `lists`: webpki does not say it, and a leaf trusted as itself is
    /// checked against its issuer's list without webpki.
    pub(crate) next_updates: Vec<Option<i64>>,
}

/// One CRL as [`Revocation::parse`] reads it.
pub(crate) struct ParsedCrl {
    list: OwnedCertRevocationList,
    /// The SHA-256 of its DER.
    digest: [u8; 32],
    /// Its nextUpdate, seconds since the epoch.
    next_update: Option<i64>,
}

impl Revocation {
    /// The CRLs in a PEM file's bytes (`X509 CRL` sections) or one DER
    /// CRL, parsed as webpki checks them, each with the SHA-256 of its
    /// DER; `label` names the input in errors.
    pub(crate) fn parse(bytes: &[u8], label: &str) -> Result<Vec<ParsedCrl>> {
        let crls: Vec<CertificateRevocationListDer<'static>> = if looks_like_pem(bytes) {
            CertificateRevocationListDer::pem_slice_iter(bytes)
                .collect::<std::result::Result<_, _>>()
                .map_err(|e| malformed_pem(label, "-----BEGIN X509 CRL-----", e))?
        } else if bytes.is_empty() {
            Vec::new()
        } else {
            vec![CertificateRevocationListDer::from(bytes.to_vec())]
        };
        if crls.is_empty() {
            return Err(Error::credentials(
                label,
                "contains no revocation list: expected -----BEGIN X509 CRL----- or a DER CRL",
            ));
        }
        crls.iter()
            .enumerate()
            .map(|(i, crl)| {
                let list = OwnedCertRevocationList::from_der(crl).map_err(|e| {
                    Error::credentials(label, format!("CRL #{} is not valid: {e:?}", i + 1))
                })?;
                let next_update =
                    <x509_parser::revocation_list::CertificateRevocationList as x509_parser::prelude::FromDer<_>>::from_der(crl)
                        .ok()
                        .and_then(|(_, c)| c.next_update())
                        .map(|t| t.timestamp());
                Ok(ParsedCrl {
                    list,
                    digest: crate::tls::certificate::sha256(crl),
                    next_update,
                })
            })
            .collect()
    }

    /// Adds lists [`parse`](Self::parse) made.
    pub(crate) fn add(&mut self, parsed: Vec<ParsedCrl>) {
        for crl in parsed {
            self.lists.push(crl.list);
            self.digests.push(crl.digest);
            self.next_updates.push(crl.next_update);
        }
    }

    /// The lists as webpki checks them; an error if revocation is
    /// required and there is nothing to check against.
    pub(crate) fn checked(&self) -> Result<Vec<CertRevocationList<'static>>> {
        if self.required && self.lists.is_empty() {
            return Err(Error::credentials(
                "revocation lists",
                "set_crls_required(true) needs the CAs' CRLs: call set_crls, or \
                 set_crls_required(false)",
            ));
        }
        Ok(self
            .lists
            .iter()
            .cloned()
            .map(CertRevocationList::from)
            .collect())
    }
}

/// A certificate of a peer's path, as a CRL check sees it.
pub(crate) struct PathCert<'a> {
    /// What messages call it.
    pub(crate) shown: Option<ChainCertificate>,
    /// Its issuer's Name (DER) and that name as text.
    pub(crate) issuer: &'a [u8],
    pub(crate) issuer_name: Option<String>,
    /// Its serial number's bytes.
    pub(crate) serial: &'a [u8],
}

/// Which certificate of `path` `crls` list as revoked, with the entry's
/// date and reason.
pub(crate) fn revoked(
    path: &[PathCert<'_>],
    crls: &[CertRevocationList<'_>],
) -> CertificateProblem {
    let found = path
        .iter()
        .find_map(|c| listed(crls, c.issuer, c.serial).map(|e| (c, e)));
    match found {
        Some((c, entry)) => CertificateProblem::Revoked {
            certificate: c.shown.clone(),
            revoked_at: Some(entry.at),
            reason: entry.reason.map(str::to_owned),
        },
        None => CertificateProblem::Revoked {
            certificate: None,
            revoked_at: None,
            reason: None,
        },
    }
}

/// Which certificate of `path` no CRL in `crls` covers.
pub(crate) fn uncovered(
    path: &[PathCert<'_>],
    crls: &[CertRevocationList<'_>],
) -> CertificateProblem {
    let reason = path
        .iter()
        .find(|c| !c.issuer.is_empty() && !covered(crls, c.issuer))
        .and_then(|c| {
            Some(format!(
                "no CRL covers {}: add the CRL of its issuer {}",
                c.shown.as_ref()?,
                c.issuer_name.as_deref()?
            ))
        })
        .unwrap_or_else(|| "no CRL covers a certificate of the chain".to_owned());
    CertificateProblem::RevocationUnchecked { reason }
}

/// What the CRLs say of a leaf trusted as itself, whose issuer may be
/// unknown (so no CRL signature can be checked against it; a CRL only ever
/// takes trust away here): revoked if a CRL from its issuer's name lists
/// it. A leaf that is not self-signed has a chain above it that the peer
/// did not let webpki see: with any CRL given, whether that chain is
/// revoked cannot be told, so it is unchecked (the peer decides what it
/// sends: leaving out a revoked intermediate must not make a certificate
/// trusted). Under `required`, a self-signed leaf needs a current CRL from
/// itself. `next_updates[i]` is the nextUpdate of `crls[i]`.
pub(crate) fn leaf_status(
    leaf: &[PathCert<'_>],
    crls: &[CertRevocationList<'_>],
    next_updates: &[Option<i64>],
    self_signed: bool,
    required: bool,
    now: i64,
) -> Option<CertificateProblem> {
    let cert = leaf.first()?;
    if listed(crls, cert.issuer, cert.serial).is_some() {
        return Some(revoked(leaf, crls));
    }
    if !self_signed && !crls.is_empty() {
        let what = cert
            .shown
            .as_ref()
            .map_or_else(|| "the certificate".to_owned(), ToString::to_string);
        let issuer = cert.issuer_name.as_deref().unwrap_or("unknown");
        return Some(CertificateProblem::RevocationUnchecked {
            reason: format!(
                "{what} is trusted as itself, but its issuer {issuer} was not sent, so the CRLs \
                 given cannot be checked for its chain: have the peer send its full chain, or \
                 trust its CA with set_trusted_certificates"
            ),
        });
    }
    let current = crls.iter().zip(next_updates).any(|(crl, next)| {
        der_contents(cert.issuer).is_some_and(|issuer| crl.issuer() == issuer)
            && next.is_none_or(|next| now < next)
    });
    if required && !current {
        return Some(uncovered(leaf, crls));
    }
    None
}

/// The entry a CRL has for a certificate.
struct Entry {
    /// The entry's revocationDate.
    at: std::time::SystemTime,
    /// Its reason code as RFC 5280 names it, if it has one.
    reason: Option<&'static str>,
}

/// The entry of a CRL in `crls` from the certificate's issuer
/// (`issuer`: its Name, DER) that lists `serial`, if any.
fn listed(crls: &[CertRevocationList<'_>], issuer: &[u8], serial: &[u8]) -> Option<Entry> {
    let issuer = der_contents(issuer)?;
    crls.iter()
        .filter(|crl| crl.issuer() == issuer)
        .find_map(|crl| crl.find_serial(serial).ok().flatten())
        .map(|entry| Entry {
            at: unix_to_system(entry.revocation_date),
            reason: entry.reason_code.map(reason_name),
        })
}

/// Whether a CRL in `crls` is from `issuer` (its Name, DER).
fn covered(crls: &[CertRevocationList<'_>], issuer: &[u8]) -> bool {
    der_contents(issuer).is_some_and(|issuer| crls.iter().any(|crl| crl.issuer() == issuer))
}

/// The contents of a DER TLV (a Name's SEQUENCE without its header), as
/// webpki keeps a CRL's issuer.
fn der_contents(tlv: &[u8]) -> Option<&[u8]> {
    let first = *tlv.get(1)?;
    let start = if first < 0x80 {
        2
    } else {
        2 + usize::from(first & 0x7f)
    };
    tlv.get(start..)
}

/// A CRL reason code as RFC 5280 section 5.3.1 names it.
fn reason_name(reason: RevocationReason) -> &'static str {
    use RevocationReason as R;
    match reason {
        R::Unspecified => "unspecified",
        R::KeyCompromise => "keyCompromise",
        R::CaCompromise => "cACompromise",
        R::AffiliationChanged => "affiliationChanged",
        R::Superseded => "superseded",
        R::CessationOfOperation => "cessationOfOperation",
        R::CertificateHold => "certificateHold",
        R::RemoveFromCrl => "removeFromCRL",
        R::PrivilegeWithdrawn => "privilegeWithdrawn",
        R::AaCompromise => "aACompromise",
    }
}

pub(crate) fn crl_detail(error: &W) -> String {
    #[allow(deprecated)]
    let detail = match error {
        W::CrlExpired { next_update, .. } => {
            return format!(
                "a CRL has passed its nextUpdate time, {}",
                format_time(unix_to_system(*next_update))
            );
        }
        W::InvalidCrlNumber => "a CRL number is invalid",
        W::InvalidCrlSignatureForPublicKey => "a CRL's signature does not verify",
        W::IssuerNotCrlSigner => "a CRL's issuer may not sign CRLs (no cRLSign key usage)",
        W::UnknownRevocationStatus => "no CRL covers a certificate of the chain",
        W::UnsupportedDeltaCrl => "delta CRLs are not supported",
        W::UnsupportedIndirectCrl => "indirect CRLs are not supported",
        W::UnsupportedCrlVersion => "a CRL is not version 2",
        W::UnsupportedRevocationReason => "a CRL entry has an unknown revocation reason",
        W::UnsupportedRevocationReasonsPartitioning => "a CRL is partitioned by reasons",
        W::UnsupportedCrlIssuingDistributionPoint => {
            "a CRL's issuing distribution point is not supported"
        }
        _ => "a CRL's signature algorithm is not supported",
    };
    detail.to_owned()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn der_contents_skips_short_and_long_headers() {
        assert_eq!(der_contents(&[0x30, 0x02, 1, 2]), Some(&[1u8, 2][..]));
        let mut long = vec![0x30, 0x81, 0x80];
        long.extend([7u8; 0x80]);
        assert_eq!(der_contents(&long).map(<[u8]>::len), Some(0x80));
        assert_eq!(der_contents(&[0x30]), None);
        assert_eq!(der_contents(&[0x30, 0x84]), None);
    }

    #[test]
    fn every_reason_has_its_rfc_5280_name() {
        let names: Vec<&str> = RevocationReason::iter().map(reason_name).collect();
        assert_eq!(names.len(), 10);
        assert!(names.contains(&"keyCompromise") && names.contains(&"aACompromise"));
    }
}
