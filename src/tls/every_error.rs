//! Every error webpki and rustls can give about a certificate has a typed
//! problem of its own, never the catch-all `Other`; and the lists here are
//! checked against webpki's and rustls's source, so a variant added by an
//! upgrade fails a test instead of slipping into `Other`.

use std::path::PathBuf;

use rustls::pki_types::{ServerName, UnixTime};
use rustls::{CertificateError, OtherError};
use webpki::Error as W;

use crate::error::CertificateProblem;
use crate::tls::chain::Chain;
use crate::tls::verify::classify_rustls;

#[allow(deprecated)]
fn every_webpki_error() -> Vec<W> {
    let t = UnixTime::since_unix_epoch(std::time::Duration::from_secs(1));
    let sig = || webpki::UnsupportedSignatureAlgorithmContext {
        signature_algorithm_id: Vec::new(),
        supported_algorithms: Vec::new(),
    };
    let key = || webpki::UnsupportedSignatureAlgorithmForPublicKeyContext {
        signature_algorithm_id: Vec::new(),
        public_key_algorithm_id: Vec::new(),
    };
    vec![
        W::BadDer,
        W::BadDerTime,
        W::CaUsedAsEndEntity,
        W::CertDistrusted,
        W::CertExpired {
            time: t,
            not_after: t,
        },
        W::CertNotValidForName(webpki::InvalidNameContext {
            expected: ServerName::try_from("example.com").expect("name"),
            presented: Vec::new(),
        }),
        W::CertNotValidYet {
            time: t,
            not_before: t,
        },
        W::CertRevoked,
        W::CrlExpired {
            time: t,
            next_update: t,
        },
        W::EmptyEkuExtension,
        W::EndEntityUsedAsCa,
        W::ExtensionValueInvalid,
        W::InvalidCertValidity,
        W::InvalidCrlNumber,
        W::InvalidNetworkMaskConstraint,
        W::InvalidSerialNumber,
        W::InvalidCrlSignatureForPublicKey,
        W::InvalidSignatureForPublicKey,
        W::IssuerNotCrlSigner,
        W::MalformedDnsIdentifier,
        W::MalformedExtensions,
        W::MalformedNameConstraint,
        W::MaximumNameConstraintComparisonsExceeded,
        W::MaximumPathBuildCallsExceeded,
        W::MaximumPathDepthExceeded,
        W::MaximumSignatureChecksExceeded,
        W::NameConstraintViolation,
        W::PathLenConstraintViolated,
        W::RequiredEkuNotFound,
        W::RequiredEkuNotFoundContext(webpki::RequiredEkuNotFoundContext {
            required: webpki::KeyUsage::server_auth(),
            present: Vec::new(),
        }),
        W::SignatureAlgorithmMismatch,
        W::TrailingData(webpki::DerTypeId::Certificate),
        W::UnknownIssuer,
        W::UnknownRevocationStatus,
        W::UnsupportedCertVersion,
        W::UnsupportedCriticalExtension,
        W::UnsupportedCrlIssuingDistributionPoint,
        W::UnsupportedCrlVersion,
        W::UnsupportedDeltaCrl,
        W::UnsupportedIndirectCrl,
        W::UnsupportedNameType,
        W::UnsupportedRevocationReason,
        W::UnsupportedRevocationReasonsPartitioning,
        W::UnsupportedCrlSignatureAlgorithm,
        W::UnsupportedCrlSignatureAlgorithmContext(sig()),
        W::UnsupportedSignatureAlgorithm,
        W::UnsupportedSignatureAlgorithmContext(sig()),
        W::UnsupportedCrlSignatureAlgorithmForPublicKey,
        W::UnsupportedCrlSignatureAlgorithmForPublicKeyContext(key()),
        W::UnsupportedSignatureAlgorithmForPublicKey,
        W::UnsupportedSignatureAlgorithmForPublicKeyContext(key()),
    ]
}

#[allow(deprecated)]
fn every_certificate_error() -> Vec<CertificateError> {
    let t = UnixTime::since_unix_epoch(std::time::Duration::from_secs(1));
    vec![
        CertificateError::BadEncoding,
        CertificateError::Expired,
        CertificateError::ExpiredContext {
            time: t,
            not_after: t,
        },
        CertificateError::NotValidYet,
        CertificateError::NotValidYetContext {
            time: t,
            not_before: t,
        },
        CertificateError::Revoked,
        CertificateError::UnhandledCriticalExtension,
        CertificateError::UnknownIssuer,
        CertificateError::UnknownRevocationStatus,
        CertificateError::ExpiredRevocationList,
        CertificateError::ExpiredRevocationListContext {
            time: t,
            next_update: t,
        },
        CertificateError::BadSignature,
        CertificateError::UnsupportedSignatureAlgorithm,
        CertificateError::UnsupportedSignatureAlgorithmContext {
            signature_algorithm_id: Vec::new(),
            supported_algorithms: Vec::new(),
        },
        CertificateError::UnsupportedSignatureAlgorithmForPublicKeyContext {
            signature_algorithm_id: Vec::new(),
            public_key_algorithm_id: Vec::new(),
        },
        CertificateError::NotValidForName,
        CertificateError::NotValidForNameContext {
            expected: ServerName::try_from("example.com").expect("name"),
            presented: Vec::new(),
        },
        CertificateError::InvalidPurpose,
        CertificateError::InvalidPurposeContext {
            required: rustls::ExtendedKeyPurpose::ServerAuth,
            presented: Vec::new(),
        },
        CertificateError::InvalidOcspResponse,
        CertificateError::ApplicationVerificationFailure,
        CertificateError::Other(OtherError(std::sync::Arc::new(W::NameConstraintViolation))),
    ]
}

/// The variant name of a `Debug` rendering: `CertExpired { .. }` →
/// `CertExpired`.
fn variant_name(debug: &str) -> String {
    debug
        .split(|c: char| !c.is_alphanumeric())
        .next()
        .unwrap_or_default()
        .to_owned()
}

#[test]
fn no_webpki_error_falls_into_other() {
    for e in every_webpki_error() {
        let p = Chain::unknown().diagnose(&e, "serverAuth", None, UnixTime::now());
        assert!(
            !matches!(p, CertificateProblem::Other(_)),
            "{e:?} has no problem of its own"
        );
        assert!(!p.to_string().contains("Other"), "{e:?}: {p}");
    }
}

#[test]
fn no_rustls_certificate_error_falls_into_other() {
    for e in every_certificate_error() {
        let p = classify_rustls(&e);
        assert!(
            !matches!(p, CertificateProblem::Other(_)),
            "{e:?} has no problem of its own"
        );
    }
}

/// The source file of a dependency, found where cargo unpacked it.
fn dependency_source(package: &str, file: &str) -> Option<String> {
    let lock = std::fs::read_to_string(concat!(env!("CARGO_MANIFEST_DIR"), "/Cargo.lock")).ok()?;
    let version = lock
        .split("[[package]]")
        .find(|p| p.contains(&format!("name = \"{package}\"\n")))?
        .lines()
        .find_map(|l| l.strip_prefix("version = \""))?
        .trim_end_matches('"')
        .to_owned();
    let home = std::env::var_os("CARGO_HOME")
        .map(PathBuf::from)
        .or_else(|| std::env::var_os("HOME").map(|h| PathBuf::from(h).join(".cargo")))?;
    let registry = home.join("registry").join("src");
    std::fs::read_dir(registry).ok()?.find_map(|index| {
        let path = index
            .ok()?
            .path()
            .join(format!("{package}-{version}"))
            .join(file);
        std::fs::read_to_string(path).ok()
    })
}

/// The variant names of `pub enum NAME` in `source`.
fn declared_variants(source: &str, name: &str) -> Vec<String> {
    let Some(start) = source.find(&format!("pub enum {name} {{")) else {
        return Vec::new();
    };
    let body = &source[start..];
    let body = &body[body.find('{').map_or(0, |i| i + 1)..];
    let mut depth = 0usize;
    let mut out = Vec::new();
    for line in body.lines() {
        let t = line.trim();
        if depth == 0 && t.starts_with('}') {
            break;
        }
        if depth == 0 && !t.starts_with("//") && !t.starts_with('#') {
            let name = variant_name(t);
            if name.chars().next().is_some_and(|c| c.is_ascii_uppercase()) {
                out.push(name);
            }
        }
        depth += t.matches(['{', '(']).count();
        depth = depth.saturating_sub(t.matches(['}', ')']).count());
    }
    out
}

fn check_complete(package: &str, file: &str, enum_name: &str, ours: &[String]) {
    let Some(source) = dependency_source(package, file) else {
        use std::io::Write as _;
        let _ = writeln!(
            std::io::stderr(),
            "SKIPPED the {enum_name} variant list check: {package}'s source is not unpacked"
        );
        return;
    };
    let declared = declared_variants(&source, enum_name);
    assert!(
        declared.len() > 10,
        "could not read {enum_name}: {declared:?}"
    );
    let missing: Vec<&String> = declared.iter().filter(|d| !ours.contains(d)).collect();
    assert!(
        missing.is_empty(),
        "{package} has {enum_name} variants this list lacks (map each to a problem): {missing:?}"
    );
}

#[test]
fn the_webpki_list_has_every_variant() {
    let ours: Vec<String> = every_webpki_error()
        .iter()
        .map(|e| variant_name(&format!("{e:?}")))
        .collect();
    check_complete("rustls-webpki", "src/error.rs", "Error", &ours);
}

#[test]
fn the_rustls_list_has_every_variant() {
    let ours: Vec<String> = every_certificate_error()
        .iter()
        .map(|e| variant_name(&format!("{e:?}")))
        .collect();
    check_complete("rustls", "src/error.rs", "CertificateError", &ours);
}
