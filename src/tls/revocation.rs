//! What a CRL says about one certificate: webpki says only that a chain
//! has a revoked certificate, not which, when or why.

use webpki::Error as W;
use webpki::{CertRevocationList, RevocationReason};

use crate::time::unix_to_system;

/// The entry a CRL has for a certificate.
pub(crate) struct Entry {
    /// The entry's revocationDate.
    pub(crate) at: std::time::SystemTime,
    /// Its reason code as RFC 5280 names it, if it has one.
    pub(crate) reason: Option<&'static str>,
}

/// The entry of a CRL in `crls` from the certificate's issuer
/// (`issuer`: its Name, DER) that lists `serial`, if any.
pub(crate) fn listed(
    crls: &[CertRevocationList<'_>],
    issuer: &[u8],
    serial: &[u8],
) -> Option<Entry> {
    let issuer = der_contents(issuer)?;
    crls.iter()
        .filter(|crl| crl.issuer() == issuer)
        .find_map(|crl| crl.find_serial(serial).ok().flatten())
        .map(|entry| Entry {
            at: unix_to_system(entry.revocation_date),
            reason: entry.reason_code.map(reason_name),
        })
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
    match error {
        W::CrlExpired { .. } => "a CRL has passed its nextUpdate time",
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
    }
    .to_owned()
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
