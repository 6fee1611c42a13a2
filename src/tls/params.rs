//! TLS parameters of a `SecurityContext` (Node `minVersion`/`maxVersion`,
//! `ciphers`, `ecdhCurve`): protocol versions, cipher suites and key
//! exchange groups, by name, checked against what rustls supports.

use std::fmt;
use std::str::FromStr;
use std::sync::{Arc, OnceLock};

use rustls::crypto::{CryptoProvider, SupportedKxGroup};
use rustls::{SupportedCipherSuite, SupportedProtocolVersion};

use crate::error::{Error, Result};

/// The crypto provider: rustls's default provider of the backend chosen at
/// build time (see `crate::crypto`); with aws-lc-rs it prefers the
/// post-quantum X25519MLKEM768 key exchange.
pub(crate) fn provider() -> &'static Arc<CryptoProvider> {
    static PROVIDER: OnceLock<Arc<CryptoProvider>> = OnceLock::new();
    PROVIDER.get_or_init(|| Arc::new(crate::crypto::default_provider()))
}

/// A TLS protocol version.
#[non_exhaustive]
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub enum TlsVersion {
    /// TLS 1.0: not supported by rustls (deprecated by RFC 8996).
    Tls10,
    /// TLS 1.1: not supported by rustls (deprecated by RFC 8996).
    Tls11,
    /// TLS 1.2.
    Tls12,
    /// TLS 1.3.
    Tls13,
}

impl fmt::Display for TlsVersion {
    /// Node's names: `TLSv1`, `TLSv1.1`, `TLSv1.2`, `TLSv1.3`.
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(match self {
            TlsVersion::Tls10 => "TLSv1",
            TlsVersion::Tls11 => "TLSv1.1",
            TlsVersion::Tls12 => "TLSv1.2",
            TlsVersion::Tls13 => "TLSv1.3",
        })
    }
}

impl FromStr for TlsVersion {
    type Err = Error;

    /// Parses Node's names (`TLSv1.2`) or bare numbers (`1.2`).
    fn from_str(s: &str) -> Result<TlsVersion> {
        let bare = s
            .trim()
            .trim_start_matches("TLSv")
            .trim_start_matches("tlsv");
        Ok(match bare {
            "1" | "1.0" => TlsVersion::Tls10,
            "1.1" => TlsVersion::Tls11,
            "1.2" => TlsVersion::Tls12,
            "1.3" => TlsVersion::Tls13,
            _ => {
                return Err(Error::invalid_input(
                    s,
                    "not a TLS version: use TLSv1.2 or TLSv1.3",
                ));
            }
        })
    }
}

/// The rustls versions from `min` to `max`.
pub(crate) fn versions(
    min: TlsVersion,
    max: TlsVersion,
) -> Result<Vec<&'static SupportedProtocolVersion>> {
    if min > max {
        return Err(Error::invalid_input(
            format!("{min}..{max}"),
            "the minimum version is above the maximum",
        ));
    }
    if min < TlsVersion::Tls12 {
        return Err(Error::Unsupported {
            what: format!("{min}"),
            reason: "rustls implements only TLS 1.2 and 1.3 (TLS 1.0 and 1.1 are deprecated by \
                     RFC 8996): use TlsVersion::Tls12 or later"
                .to_owned(),
        });
    }
    let mut out = Vec::new();
    if min <= TlsVersion::Tls12 && max >= TlsVersion::Tls12 {
        out.push(&rustls::version::TLS12);
    }
    if max >= TlsVersion::Tls13 {
        out.push(&rustls::version::TLS13);
    }
    Ok(out)
}

/// OpenSSL's names for rustls's suites.
const OPENSSL_NAMES: &[(&str, &str)] = &[
    ("TLS_AES_128_GCM_SHA256", "TLS13_AES_128_GCM_SHA256"),
    ("TLS_AES_256_GCM_SHA384", "TLS13_AES_256_GCM_SHA384"),
    (
        "TLS_CHACHA20_POLY1305_SHA256",
        "TLS13_CHACHA20_POLY1305_SHA256",
    ),
    (
        "ECDHE-ECDSA-AES128-GCM-SHA256",
        "TLS_ECDHE_ECDSA_WITH_AES_128_GCM_SHA256",
    ),
    (
        "ECDHE-ECDSA-AES256-GCM-SHA384",
        "TLS_ECDHE_ECDSA_WITH_AES_256_GCM_SHA384",
    ),
    (
        "ECDHE-ECDSA-CHACHA20-POLY1305",
        "TLS_ECDHE_ECDSA_WITH_CHACHA20_POLY1305_SHA256",
    ),
    (
        "ECDHE-RSA-AES128-GCM-SHA256",
        "TLS_ECDHE_RSA_WITH_AES_128_GCM_SHA256",
    ),
    (
        "ECDHE-RSA-AES256-GCM-SHA384",
        "TLS_ECDHE_RSA_WITH_AES_256_GCM_SHA384",
    ),
    (
        "ECDHE-RSA-CHACHA20-POLY1305",
        "TLS_ECDHE_RSA_WITH_CHACHA20_POLY1305_SHA256",
    ),
];

fn suite_name(s: &SupportedCipherSuite) -> &'static str {
    s.suite().as_str().unwrap_or("unknown")
}

/// Cipher suites by IANA or OpenSSL name; an entry may hold several
/// separated by `:` (Node's `ciphers` string).
pub(crate) fn cipher_suites<S: AsRef<str>>(names: &[S]) -> Result<Vec<SupportedCipherSuite>> {
    let all = crate::crypto::all_cipher_suites();
    let mut out: Vec<SupportedCipherSuite> = Vec::new();
    for name in names.iter().flat_map(|n| n.as_ref().split(':')) {
        let name = name.trim();
        if name.is_empty() {
            continue;
        }
        let iana = OPENSSL_NAMES
            .iter()
            .find(|(openssl, _)| openssl.eq_ignore_ascii_case(name))
            .map_or(name, |(_, iana)| iana);
        let Some(suite) = all
            .iter()
            .find(|s| suite_name(s).eq_ignore_ascii_case(iana))
        else {
            let supported: Vec<String> = OPENSSL_NAMES
                .iter()
                .map(|(o, i)| format!("{i} ({o})"))
                .collect();
            return Err(Error::invalid_input(
                name,
                format!(
                    "not a supported cipher suite; supported: {}",
                    supported.join(", ")
                ),
            ));
        };
        if crate::crypto::FIPS && !suite.fips() {
            return Err(Error::invalid_input(name, crate::crypto::NOT_APPROVED));
        }
        if !out.iter().any(|s| s.suite() == suite.suite()) {
            out.push(*suite);
        }
    }
    if out.is_empty() {
        return Err(Error::invalid_input(
            "[]",
            "give at least one cipher suite, e.g. TLS13_AES_128_GCM_SHA256",
        ));
    }
    Ok(out)
}

/// Other names for groups, as OpenSSL and Node spell them.
const GROUP_ALIASES: &[(&str, &str)] = &[
    ("P-256", "secp256r1"),
    ("prime256v1", "secp256r1"),
    ("P-384", "secp384r1"),
    ("X25519Kyber768", "X25519MLKEM768"),
];

/// Key exchange groups by name (Node `ecdhCurve`), most preferred first.
pub(crate) fn kx_groups<S: AsRef<str>>(names: &[S]) -> Result<Vec<&'static dyn SupportedKxGroup>> {
    let all = crate::crypto::all_kx_groups();
    let group_name = |g: &&dyn SupportedKxGroup| g.name().as_str().unwrap_or("unknown");
    let mut out: Vec<&'static dyn SupportedKxGroup> = Vec::new();
    for name in names.iter().flat_map(|n| n.as_ref().split(':')) {
        let name = name.trim();
        if name.is_empty() {
            continue;
        }
        let canonical = GROUP_ALIASES
            .iter()
            .find(|(alias, _)| alias.eq_ignore_ascii_case(name))
            .map_or(name, |(_, c)| c);
        let Some(group) = all
            .iter()
            .find(|g| group_name(g).eq_ignore_ascii_case(canonical))
        else {
            let supported: Vec<&str> = all.iter().map(group_name).collect();
            // The post-quantum groups exist only with aws-lc-rs.
            let why = if canonical.to_ascii_uppercase().contains("MLKEM") {
                format!(
                    "not available with the {} crypto provider this build uses \
                     (build securenet with its default `aws-lc-rs` feature for it)",
                    crate::crypto::NAME
                )
            } else {
                "not a supported key exchange group".to_owned()
            };
            return Err(Error::invalid_input(
                name,
                format!("{why}; supported: {}", supported.join(", ")),
            ));
        };
        if crate::crypto::FIPS && !group.fips() {
            return Err(Error::invalid_input(name, crate::crypto::NOT_APPROVED));
        }
        if !out.iter().any(|g| g.name() == group.name()) {
            out.push(*group);
        }
    }
    if out.is_empty() {
        return Err(Error::invalid_input(
            "[]",
            "give at least one key exchange group, e.g. X25519",
        ));
    }
    Ok(out)
}

/// The TLS parameters a context chose, if any.
#[derive(Clone, Default)]
pub(crate) struct Params {
    pub(crate) versions: Option<Vec<&'static SupportedProtocolVersion>>,
    pub(crate) suites: Option<Vec<SupportedCipherSuite>>,
    pub(crate) groups: Option<Vec<&'static dyn SupportedKxGroup>>,
}

impl Params {
    /// The crypto provider with the chosen suites and groups.
    pub(crate) fn provider(&self) -> Arc<CryptoProvider> {
        if self.suites.is_none() && self.groups.is_none() {
            return provider().clone();
        }
        let mut p = (**provider()).clone();
        if let Some(suites) = &self.suites {
            p.cipher_suites.clone_from(suites);
        }
        if let Some(groups) = &self.groups {
            p.kx_groups.clone_from(groups);
        }
        Arc::new(p)
    }

    /// The chosen protocol versions (default: TLS 1.2 and 1.3).
    pub(crate) fn versions(&self) -> &[&'static SupportedProtocolVersion] {
        self.versions.as_deref().unwrap_or(rustls::DEFAULT_VERSIONS)
    }

    /// Why no configuration can be built, in words.
    pub(crate) fn builder_error(&self, e: rustls::Error) -> Error {
        Error::invalid_input(
            "TLS parameters",
            format!(
                "the context's protocol versions, cipher suites and key exchange groups do not \
                 fit together ({e}): a TLS 1.3-only context needs a TLS13_ suite, a TLS 1.2-only \
                 one a TLS_ECDHE_ suite"
            ),
        )
    }
}
