//! The one place that decides whether a peer is trusted.
//!
//! Both verifiers (the client's of server certificates, the server's of
//! client certificates), and with them every path that verifies a peer
//! (`connect`, `secure`, `secure_server`, the https-proxy hop, `bind`),
//! reach a verdict through [`decide`]. Its inputs are what webpki found
//! (with the pins checked on each path it built), the leaf checked as a
//! certificate the user added, the name check (or `check_server_identity`
//! instead of it), the pins against the leaf alone, `reject_unauthorized`
//! and `on_bad_certificate` / `on_bad_client_certificate`. The CRL policy
//! is inside the first two: webpki applies it to a path, and
//! [`Itself`] applies it to a leaf trusted as itself.
//!
//! The rules, first match wins:
//!
//! | # | the chain | then | verdict |
//! |---|---|---|---|
//! | 1 | paths to a trust anchor were found, none with a pinned key | | refused: pin mismatch (nothing overrides a pin) |
//! | 2 | verified (revocation, validity, key usage, name constraints, critical extensions) | name (or `check_server_identity`) holds | trusted |
//! | 3 | no issuer found (or a self-signed CA:TRUE leaf: its own key verifies it), and the leaf is byte for byte a certificate the user added, valid now, fit for the use (anyExtendedKeyUsage alone is not), not revoked by a CRL given, and, with CRLs given, self-signed (else its unsent chain could be revoked) | pins (if any) match the leaf's key, and the name holds | trusted |
//! | 4 | as 3, pins set and the leaf's key not pinned | | refused: pin mismatch |
//! | 5 | as 3, but the added leaf is expired, not yet valid, unfit for the use, revoked, or has a chain that the CRLs given cannot check | | that problem, as for any failure below |
//! | 6 | any other failure (revoked, expired, name constraints, ...), or the name fails | `reject_unauthorized(true)` and no `on_bad_*` callback | refused with the problem |
//! | 7 | as 6 | `reject_unauthorized(false)`, or `on_bad_*` answers `true`; pins (if any) match the **leaf** | accepted unverified (`authorization_error` says why) |
//! | 8 | as 7, pins set and the leaf's key not pinned | | refused: pin mismatch |
//! | 9 | as 6 | `on_bad_*` answers `false` | refused with the problem |
//!
//! "Trusted as itself" stands in only for a missing issuer or an untrusted
//! root: it never overrides revocation, validity, key usage, name
//! constraints or critical extensions. Pins are matched only against what
//! the connection is keyed to: a verified path, or else the leaf (curl's
//! `--pinnedpubkey` rule), never any certificate the peer sent.
//! `check_server_identity` runs only once the chain holds (as in Node); the
//! `on_bad_*` callback only when something failed and
//! `reject_unauthorized` is `true`.

use crate::error::CertificateProblem;

/// What webpki found for the chain, its pins checked on each path.
#[derive(Clone, Debug)]
pub(crate) enum PathVerdict {
    /// A path to a trust anchor passed every check (and had a pinned key,
    /// when there are pins).
    Verified,
    /// Paths were found, but none had a pinned key.
    Unpinned,
    /// No path: an issuer is missing, or the root is not trusted (or the
    /// leaf is a CA certificate).
    NoIssuer(CertificateProblem),
    /// Any other failure: revoked, expired, bad signature, name
    /// constraints, key usage, ...
    Failed(CertificateProblem),
}

/// The leaf, checked as a certificate the user added to the trust anchors.
#[derive(Clone, Debug)]
pub(crate) enum Itself {
    /// It is not one of them.
    NotAdded,
    /// It is one, valid now, fit for the use, and no CRL given revokes it.
    Usable,
    /// It is one, but fails as itself (expired, revoked, unfit, ...).
    Unusable(CertificateProblem),
}

/// The settings of the side that verifies.
#[derive(Clone, Copy, Debug)]
pub(crate) struct Settings {
    pub(crate) reject_unauthorized: bool,
    pub(crate) pinned: bool,
}

/// What the verdict needs of the peer's certificate, asked only when the
/// rules reach it.
pub(crate) trait Peer {
    /// The name check, or `check_server_identity` instead of it; `Ok` for
    /// client certificates.
    fn identity(&mut self) -> Result<(), CertificateProblem>;
    /// `on_bad_certificate`'s answer about the leaf; `None` without one.
    fn on_bad(&mut self) -> Option<bool>;
    /// Whether the leaf's key is pinned.
    fn leaf_pinned(&self) -> bool;
    /// The pin mismatch: naming the leaf alone (`leaf_only`), or every
    /// certificate sent.
    fn pin_mismatch(&self, leaf_only: bool) -> CertificateProblem;
}

/// The decision.
#[derive(Clone, Debug)]
pub(crate) enum Verdict {
    /// Verified (rules 2 and 3).
    Trusted,
    /// Failed verification but let through (rule 7): the problem stays
    /// with the connection as its `authorization_error`.
    Unverified(CertificateProblem),
    /// Refused, with the problem to report (its alert follows from it).
    Refused(CertificateProblem),
}

/// Whether the chain (and then the name) holds, with no override: `Err`
/// is the problem a failure reports, `authorization_error` when it was
/// let through. Rules 1 to 5.
pub(crate) fn assess(
    path: PathVerdict,
    itself: Itself,
    pinned: bool,
    peer: &mut dyn Peer,
) -> Result<(), Assessed> {
    match path {
        PathVerdict::Verified => {}
        PathVerdict::Unpinned => return Err(Assessed::Pin(peer.pin_mismatch(false))),
        PathVerdict::NoIssuer(problem) => match itself {
            Itself::Usable if pinned && !peer.leaf_pinned() => {
                return Err(Assessed::Pin(peer.pin_mismatch(true)));
            }
            Itself::Usable => {}
            Itself::Unusable(problem) => return Err(Assessed::Bad(problem)),
            Itself::NotAdded => return Err(Assessed::Bad(problem)),
        },
        PathVerdict::Failed(problem) => return Err(Assessed::Bad(problem)),
    }
    peer.identity().map_err(Assessed::Bad)
}

/// Why [`assess`] failed.
#[derive(Clone, Debug)]
pub(crate) enum Assessed {
    /// A pin mismatch: never overridden.
    Pin(CertificateProblem),
    /// Any other problem: `reject_unauthorized(false)` or `on_bad_*` may
    /// let it through.
    Bad(CertificateProblem),
}

/// The verdict on a peer: every rule of the module's table.
pub(crate) fn decide(
    path: PathVerdict,
    itself: Itself,
    settings: Settings,
    peer: &mut dyn Peer,
) -> Verdict {
    let problem = match assess(path, itself, settings.pinned, peer) {
        Ok(()) => return Verdict::Trusted,
        Err(Assessed::Pin(p)) => return Verdict::Refused(p),
        Err(Assessed::Bad(p)) => p,
    };
    let let_through = !settings.reject_unauthorized || peer.on_bad() == Some(true);
    if !let_through {
        return Verdict::Refused(problem);
    }
    // Nothing verified: the connection is keyed to the leaf alone.
    if settings.pinned && !peer.leaf_pinned() {
        return Verdict::Refused(peer.pin_mismatch(true));
    }
    Verdict::Unverified(problem)
}

#[cfg(test)]
mod tests;
