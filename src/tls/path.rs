//! Path validation, called on webpki directly: the chain to a trust anchor
//! with revocation and pins, the rule that a certificate the user added is
//! trusted as itself, and the typed reason when it fails.

use std::cell::Cell;
use std::sync::Arc;

use rustls::crypto::WebPkiSupportedAlgorithms;
use rustls::pki_types::{CertificateDer, ServerName, UnixTime};
use webpki::{
    CertRevocationList, EndEntityCert, ExpirationPolicy, KeyUsage, RevocationCheckDepth,
    RevocationOptionsBuilder, UnknownStatusPolicy, VerifiedPath,
};

use crate::error::{CertificateProblem, Result};
use crate::tls::certificate::X509Certificate;
use crate::tls::chain::Chain;
use crate::tls::pins::Pins;
use crate::tls::revocation::{self, Revocation};
use crate::tls::trust::Trust;

/// A check webpki runs on each path it verified, to reject some.
type PathFilter<'a> = &'a dyn Fn(&VerifiedPath<'_>) -> std::result::Result<(), webpki::Error>;

/// What a chain is verified for.
#[derive(Clone, Copy)]
pub(crate) enum Usage {
    /// A server's certificate (extended key usage serverAuth).
    Server,
    /// A client's certificate (clientAuth).
    Client,
}

impl Usage {
    fn key_usage(self) -> KeyUsage {
        match self {
            Usage::Server => KeyUsage::server_auth(),
            Usage::Client => KeyUsage::client_auth(),
        }
    }

    pub(crate) fn name(self) -> &'static str {
        match self {
            Usage::Server => "serverAuth",
            Usage::Client => "clientAuth",
        }
    }
}

/// Trust anchors, revocation lists and algorithms: what a chain is
/// checked against.
pub(crate) struct PathCheck {
    pub(crate) trust: Arc<Trust>,
    crls: Vec<CertRevocationList<'static>>,
    /// Every certificate must be covered by a current CRL.
    crls_required: bool,
    pub(crate) algs: WebPkiSupportedAlgorithms,
    usage: Usage,
}

impl PathCheck {
    pub(crate) fn new(
        trust: Arc<Trust>,
        revocation: &Revocation,
        usage: Usage,
    ) -> Result<PathCheck> {
        Ok(PathCheck {
            trust,
            crls: revocation.checked()?,
            crls_required: revocation.required,
            algs: crate::tls::params::provider().signature_verification_algorithms,
            usage,
        })
    }

    /// Verifies the chain from `leaf` through `intermediates` to a trust
    /// anchor at `now`, with a key of the path pinned if there are pins.
    /// Then checks the name, if one is given (`None` is for client
    /// certificates, or when a callback replaces the name check).
    pub(crate) fn verify(
        &self,
        leaf: &CertificateDer<'_>,
        intermediates: &[CertificateDer<'_>],
        name: Option<&ServerName<'_>>,
        now: UnixTime,
        pins: &Pins,
    ) -> std::result::Result<(), CertificateProblem> {
        let diagnose = |e: &webpki::Error| {
            let chain = Chain::new(leaf, intermediates, &self.trust);
            match e {
                webpki::Error::CertRevoked => revocation::revoked(&chain.for_crls(), &self.crls),
                webpki::Error::UnknownRevocationStatus => {
                    revocation::uncovered(&chain.for_crls(), &self.crls)
                }
                _ => chain.diagnose(e, self.usage.name(), name, now),
            }
        };
        let cert = EndEntityCert::try_from(leaf).map_err(|e| diagnose(&e))?;
        if self.trust.is_empty() {
            return Err(Chain::new(leaf, intermediates, &self.trust).unknown_issuer());
        }
        let crls: Vec<&CertRevocationList<'_>> = self.crls.iter().collect();
        let (unknown, expired) = if self.crls_required {
            (UnknownStatusPolicy::Deny, ExpirationPolicy::Enforce)
        } else {
            (UnknownStatusPolicy::Allow, ExpirationPolicy::Ignore)
        };
        let revocation = RevocationOptionsBuilder::new(&crls).ok().map(|b| {
            b.with_depth(RevocationCheckDepth::Chain)
                .with_status_policy(unknown)
                .with_expiration_policy(expired)
                .build()
        });
        let pin_failed = Cell::new(false);
        let check_pins = |path: &VerifiedPath<'_>| {
            if pins.match_path(path) {
                Ok(())
            } else {
                pin_failed.set(true);
                // Any error: path building tries the other paths, then
                // `pin_failed` says why none was taken.
                Err(webpki::Error::CertDistrusted)
            }
        };
        let verify_path: Option<PathFilter<'_>> = if pins.is_empty() {
            None
        } else {
            Some(&check_pins)
        };
        let chained = cert.verify_for_usage(
            self.algs.all,
            &self.trust.store.roots,
            intermediates,
            now,
            self.usage.key_usage(),
            revocation,
            verify_path,
        );
        match chained {
            Ok(_) => {}
            Err(_) if pin_failed.get() => return Err(pins.mismatch(leaf, intermediates)),
            Err(_) if self.trusted_as_itself(leaf, now) => {
                // The user trusts this very certificate: it is its own
                // chain, whatever its CA bit or issuer (curl, Python, Go).
                if !pins.match_sent(leaf, &[]) {
                    return Err(pins.mismatch(leaf, &[]));
                }
            }
            Err(e) => return Err(diagnose(&e)),
        }
        match name {
            Some(name) => cert
                .verify_is_valid_for_subject_name(name)
                .map_err(|e| diagnose(&e)),
            None => Ok(()),
        }
    }

    /// Whether `leaf` is, byte for byte, a certificate the user added to
    /// the trust anchors, valid now and for this use.
    fn trusted_as_itself(&self, leaf: &CertificateDer<'_>, now: UnixTime) -> bool {
        if !self.trust.added_exactly(leaf) {
            return false;
        }
        let Ok(cert) = X509Certificate::from_der(leaf) else {
            return false;
        };
        let now = crate::time::unix_to_system(now);
        let eku = cert.extended_key_usage();
        cert.start_validity() <= now
            && now <= cert.end_validity()
            && (eku.is_empty() || eku.iter().any(|u| u == self.usage.name() || u == "any"))
    }
}
