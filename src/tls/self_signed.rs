//! Whether a certificate is self-signed: its own key verifies its
//! signature. A name alone (subject equal to issuer) proves nothing: a CA
//! can issue a certificate named like itself, and such a certificate must
//! keep that CA's checks.

use rustls::pki_types::{CertificateDer, SignatureVerificationAlgorithm};
use x509_parser::prelude::FromDer;

/// Whether `der` is self-signed: its subject is its issuer *and* its
/// signature verifies with its own public key, with one of `algs`.
pub(crate) fn is_self_signed(
    der: &CertificateDer<'_>,
    algs: &[&dyn SignatureVerificationAlgorithm],
) -> bool {
    let Ok((_, x)) = x509_parser::certificate::X509Certificate::from_der(der) else {
        return false;
    };
    if x.issuer().as_raw().is_empty() || x.issuer().as_raw() != x.subject().as_raw() {
        return false;
    }
    let (Some((tbs, alg, signature)), Ok(cert)) =
        (signed_parts(der), webpki::EndEntityCert::try_from(der))
    else {
        return false;
    };
    algs.iter()
        .filter(|a| a.signature_alg_id().as_ref() == alg)
        .any(|a| cert.verify_signature(*a, tbs, signature).is_ok())
}

/// A certificate's signed parts: the whole tbsCertificate (what is
/// signed), the contents of its signatureAlgorithm, and the signature's
/// bytes.
fn signed_parts(der: &[u8]) -> Option<(&[u8], &[u8], &[u8])> {
    let (0x30, certificate, _) = tlv(der)? else {
        return None;
    };
    let (0x30, _, after_tbs) = tlv(certificate)? else {
        return None;
    };
    let tbs = &certificate[..certificate.len() - after_tbs.len()];
    let (0x30, alg, rest) = tlv(after_tbs)? else {
        return None;
    };
    let (0x03, bits, _) = tlv(rest)? else {
        return None;
    };
    // A signature is a whole number of bytes: no unused bits.
    let (0, signature) = bits.split_first()? else {
        return None;
    };
    Some((tbs, alg, signature))
}

/// One DER TLV at the front of `bytes`: its tag, contents and what follows.
fn tlv(bytes: &[u8]) -> Option<(u8, &[u8], &[u8])> {
    let (&tag, rest) = bytes.split_first()?;
    let (&first, rest) = rest.split_first()?;
    let (len, rest) = if first < 0x80 {
        (usize::from(first), rest)
    } else {
        let n = usize::from(first & 0x7f);
        if n == 0 || n > 4 {
            return None;
        }
        let (len, rest) = rest.split_at_checked(n)?;
        (
            len.iter().fold(0usize, |l, b| l << 8 | usize::from(*b)),
            rest,
        )
    };
    let (contents, rest) = rest.split_at_checked(len)?;
    Some((tag, contents, rest))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn tlvs_of_every_length_form_and_truncations() {
        assert_eq!(
            tlv(&[0x30, 2, 1, 2, 9]),
            Some((0x30, &[1u8, 2][..], &[9u8][..]))
        );
        let mut long = vec![0x04, 0x82, 0x01, 0x00];
        long.extend([7u8; 256]);
        assert_eq!(tlv(&long).map(|(_, c, _)| c.len()), Some(256));
        for bad in [
            &[][..],
            &[0x30],
            &[0x30, 3, 1],
            &[0x30, 0x80],
            &[0x30, 0x85, 1, 1, 1, 1, 1],
        ] {
            assert_eq!(tlv(bad), None, "{bad:?}");
        }
        assert_eq!(signed_parts(&[0x30, 0]), None);
    }
}
