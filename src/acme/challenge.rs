//! TLS-ALPN-01 (RFC 8737): the challenge certificate a listener answers a
//! validation with, and the certificates read back from the cache
//! directory as rustls serves them.

use std::path::Path;
use std::sync::Arc;

use rcgen::{CertificateParams, CustomExtension, KeyPair, PKCS_ECDSA_P256_SHA256};
use rustls::sign::CertifiedKey;

use super::options::AcmeKeyType;
use crate::crypto::sha256;
use crate::error::{Error, Result};
use crate::tls::certificate::X509Certificate;
use crate::tls::context::SecurityContext;

/// The challenge certificate for `domain` and `key_authorization`, with
/// its key, as PEM (key first): self-signed, `domain` as its only
/// subjectAltName, and the critical `acmeIdentifier` extension
/// (1.3.6.1.5.5.7.1.31) holding the SHA-256 of the key authorization.
pub(crate) fn certificate(domain: &str, key_authorization: &str) -> Result<String> {
    let rcgen_error = |e: rcgen::Error| {
        Error::credentials(
            format!("acme challenge certificate for {domain}"),
            format!("cannot make it: {e}"),
        )
    };
    let digest = sha256(key_authorization.as_bytes());
    let mut params = CertificateParams::new(vec![domain.to_owned()]).map_err(rcgen_error)?;
    params.custom_extensions = vec![CustomExtension::new_acme_identifier(&digest)];
    let key = KeyPair::generate_for(&PKCS_ECDSA_P256_SHA256).map_err(rcgen_error)?;
    let cert = params.self_signed(&key).map_err(rcgen_error)?;
    Ok(format!("{}{}", key.serialize_pem(), cert.pem()))
}

/// A new certificate key of `kind` and the CSR for `domains` signed with
/// it: the key's PKCS#8 DER and the CSR's DER.
pub(crate) fn key_and_csr(
    domains: &[String],
    kind: AcmeKeyType,
) -> Result<(zeroize::Zeroizing<Vec<u8>>, Vec<u8>)> {
    let rcgen_error = |e: rcgen::Error| {
        Error::credentials("acme certificate request", format!("cannot make it: {e}"))
    };
    let alg = match kind {
        AcmeKeyType::EcdsaP384 => &rcgen::PKCS_ECDSA_P384_SHA384,
        AcmeKeyType::Rsa2048 => &rcgen::PKCS_RSA_SHA256,
        _ => &PKCS_ECDSA_P256_SHA256,
    };
    let key = KeyPair::generate_for(alg).map_err(rcgen_error)?;
    let mut params = CertificateParams::new(domains.to_vec()).map_err(rcgen_error)?;
    // The names in subjectAltName only: an empty subject. (rcgen's default
    // common name would be a name the CA was not asked for: Let's
    // Encrypt refuses such a CSR.)
    params.distinguished_name = rcgen::DistinguishedName::new();
    let csr = params.serialize_request(&key).map_err(rcgen_error)?;
    Ok((
        zeroize::Zeroizing::new(key.serialize_der()),
        csr.der().to_vec(),
    ))
}

/// A key and chain in one PEM file (`label` names it in errors), as rustls
/// serves them, with the leaf certificate.
pub(crate) fn load(bytes: &[u8], label: &Path) -> Result<(Arc<CertifiedKey>, X509Certificate)> {
    let ctx = SecurityContext::empty().with_credentials([(label, bytes), (label, bytes)])?;
    let leaf = ctx.certificate_chain().into_iter().next();
    match (ctx.inner().data.certified.clone(), leaf) {
        (Some(certified), Some(leaf)) => Ok((certified, leaf)),
        _ => Err(Error::credentials(
            label.display().to_string(),
            "no certificate and key in the file: remove it to have it made again",
        )),
    }
}

/// A challenge certificate and its key (one PEM file, `label` in errors),
/// as rustls serves them. Not through [`load`]: webpki (rightly) refuses
/// to use a certificate with a critical extension it does not know, and
/// `acmeIdentifier` is one; the CA is the only one to read it.
pub(crate) fn load_challenge(bytes: &[u8], label: &Path) -> Result<Arc<CertifiedKey>> {
    let name = label.display().to_string();
    let chain = crate::tls::pem::parse_certificates(bytes, &name)?;
    let key = crate::tls::pem::parse_private_key(bytes, &name)?;
    let signing = crate::tls::params::provider()
        .key_provider
        .load_private_key(key.clone_key())
        .map_err(|e| Error::credentials(name, format!("cannot use the key: {e}")))?;
    Ok(Arc::new(CertifiedKey::new(chain, signing)))
}

#[cfg(test)]
mod tests {
    use super::*;
    use x509_parser::prelude::{FromDer, GeneralName, ParsedExtension, X509Certificate as Parsed};

    #[test]
    fn the_challenge_certificate_meets_rfc8737() {
        let pem = certificate("a.example", "token.thumbprint").expect("cert");
        let certified = load_challenge(pem.as_bytes(), Path::new("challenge")).expect("load");
        assert_eq!(certified.cert.len(), 1, "self-signed, alone");
        let (_, parsed) = Parsed::from_der(certified.cert[0].as_ref()).expect("parse");
        // The acmeIdentifier extension: critical, an OCTET STRING of the
        // SHA-256 of the key authorization (RFC 8737 section 3).
        let acme = parsed
            .extensions()
            .iter()
            .find(|e| e.oid.to_id_string() == "1.3.6.1.5.5.7.1.31")
            .expect("acmeIdentifier");
        assert!(acme.critical);
        let digest = sha256(b"token.thumbprint");
        assert_eq!(acme.value, [&[0x04, 0x20][..], &digest].concat());
        // The name validated, and only it, as a dNSName.
        let names: Vec<String> = parsed
            .extensions()
            .iter()
            .filter_map(|e| match e.parsed_extension() {
                ParsedExtension::SubjectAlternativeName(san) => Some(san),
                _ => None,
            })
            .flat_map(|san| san.general_names.iter())
            .map(|n| match n {
                GeneralName::DNSName(d) => (*d).to_owned(),
                other => format!("{other:?}"),
            })
            .collect();
        assert_eq!(names, ["a.example"]);
    }

    #[test]
    fn each_key_type_makes_a_pkcs8_key_the_provider_loads() {
        let domains = vec!["a.example".to_owned()];
        let mut kinds = vec![AcmeKeyType::EcdsaP256, AcmeKeyType::EcdsaP384];
        if crate::crypto::NAME == "aws-lc-rs" {
            kinds.push(AcmeKeyType::Rsa2048);
        }
        for kind in kinds {
            let (key, _) = key_and_csr(&domains, kind).expect("key");
            let pem = super::super::cache::key_pem(&key).expect("pem");
            let der = crate::tls::pem::parse_private_key(pem.as_bytes(), "key").expect("parse");
            crate::tls::params::provider()
                .key_provider
                .load_private_key(der.clone_key())
                .unwrap_or_else(|e| panic!("{kind:?}: {e}"));
        }
    }

    #[test]
    fn a_csr_names_every_domain() {
        let domains = vec!["a.example".to_owned(), "b.example".to_owned()];
        let (key, csr) = key_and_csr(&domains, AcmeKeyType::default()).expect("csr");
        assert!(!key.is_empty());
        let (_, req) = x509_parser::certification_request::X509CertificationRequest::from_der(&csr)
            .expect("csr parses");
        let text = format!(
            "{:?}",
            req.requested_extensions().map(|e| e.collect::<Vec<_>>())
        );
        assert!(
            text.contains("a.example") && text.contains("b.example"),
            "{text}"
        );
    }
}
