//! Path validation, called on webpki directly: the chain to a trust anchor
//! with revocation and pins, the name, a leaf the user added checked as
//! itself, and the typed reason when each fails. What follows from them is
//! decided in `policy.rs`.

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
use crate::tls::policy::{Itself, PathVerdict};
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
    /// Each CRL's nextUpdate, in the order of `crls`.
    crl_next_updates: Vec<Option<i64>>,
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
            crl_next_updates: revocation.next_updates.clone(),
            crls_required: revocation.required,
            algs: crate::tls::params::provider().signature_verification_algorithms,
            usage,
        })
    }

    /// What webpki finds for the chain from `leaf` through
    /// `intermediates` to a trust anchor at `now` (revocation, validity,
    /// key usage, name constraints), with a key of the path pinned if there
    /// are pins. The name is checked apart ([`name`](Self::name)).
    pub(crate) fn chain(
        &self,
        leaf: &CertificateDer<'_>,
        intermediates: &[CertificateDer<'_>],
        now: UnixTime,
        pins: &Pins,
    ) -> PathVerdict {
        let cert = match EndEntityCert::try_from(leaf) {
            Ok(cert) => cert,
            Err(e) => return PathVerdict::Failed(self.diagnose(&e, leaf, intermediates, now)),
        };
        if self.trust.is_empty() {
            return PathVerdict::NoIssuer(
                Chain::new(leaf, intermediates, &self.trust).unknown_issuer(),
            );
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
            Ok(_) => PathVerdict::Verified,
            Err(_) if pin_failed.get() => PathVerdict::Unpinned,
            // Only these may be stood in for by a leaf the user trusts as
            // itself (policy.rs, rule 3): no issuer was found. webpki
            // refuses a CA:TRUE leaf before it looks for a path, so that
            // counts only for a self-signed leaf (its own key verifies its
            // signature: a name is not enough), which has no path above
            // it; a CA:TRUE leaf issued by a CA keeps that CA's checks.
            Err(e @ webpki::Error::UnknownIssuer) => {
                PathVerdict::NoIssuer(self.diagnose(&e, leaf, intermediates, now))
            }
            Err(e @ webpki::Error::CaUsedAsEndEntity)
                if crate::tls::self_signed::is_self_signed(leaf, self.algs.all) =>
            {
                PathVerdict::NoIssuer(self.diagnose(&e, leaf, intermediates, now))
            }
            Err(e) => PathVerdict::Failed(self.diagnose(&e, leaf, intermediates, now)),
        }
    }

    /// Whether `leaf` holds a certificate for `name`.
    pub(crate) fn name(
        &self,
        leaf: &CertificateDer<'_>,
        name: &ServerName<'_>,
        now: UnixTime,
    ) -> std::result::Result<(), CertificateProblem> {
        let cert = EndEntityCert::try_from(leaf).map_err(|e| self.diagnose(&e, leaf, &[], now))?;
        cert.verify_is_valid_for_subject_name(name).map_err(|e| {
            Chain::new(leaf, &[], &self.trust).diagnose(&e, self.usage.name(), Some(name), now)
        })
    }

    /// The typed problem for a webpki error about this chain.
    fn diagnose(
        &self,
        e: &webpki::Error,
        leaf: &CertificateDer<'_>,
        intermediates: &[CertificateDer<'_>],
        now: UnixTime,
    ) -> CertificateProblem {
        let chain = Chain::new(leaf, intermediates, &self.trust);
        match e {
            webpki::Error::CertRevoked => revocation::revoked(&chain.for_crls(), &self.crls),
            webpki::Error::UnknownRevocationStatus => {
                revocation::uncovered(&chain.for_crls(), &self.crls)
            }
            _ => chain.diagnose(e, self.usage.name(), None, now),
        }
    }

    /// The leaf as a certificate the user added: whether it may stand in
    /// for its own chain (policy.rs, rule 3), and if not, why. Validity,
    /// key usage and the CRLs given apply to it as to any certificate.
    pub(crate) fn itself(&self, leaf: &CertificateDer<'_>, now: UnixTime) -> Itself {
        if !self.trust.added_exactly(leaf) {
            return Itself::NotAdded;
        }
        let Ok(cert) = X509Certificate::from_der(leaf) else {
            return Itself::NotAdded;
        };
        let chain = Chain::new(leaf, &[], &self.trust);
        let diagnose = |e: webpki::Error| chain.diagnose(&e, self.usage.name(), None, now);
        if let Some(e) = cert.dates_error(now) {
            return Itself::Unusable(diagnose(e));
        }
        // As webpki decides for a path: anyExtendedKeyUsage alone is not
        // serverAuth or clientAuth.
        let eku = cert.extended_key_usage();
        if !(eku.is_empty() || eku.iter().any(|u| u == self.usage.name())) {
            #[allow(deprecated)]
            return Itself::Unusable(diagnose(webpki::Error::RequiredEkuNotFound));
        }
        let path = chain.for_crls();
        let leaf_only = &path[..path.len().min(1)];
        let status = revocation::leaf_status(
            leaf_only,
            &self.crls,
            &self.crl_next_updates,
            crate::tls::self_signed::is_self_signed(leaf, self.algs.all),
            self.crls_required,
            i64::try_from(now.as_secs()).unwrap_or(i64::MAX),
        );
        if let Some(problem) = status {
            return Itself::Unusable(problem);
        }
        Itself::Usable
    }
}
