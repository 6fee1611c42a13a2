//! A resumed session's peer chain, checked again: rustls restores it from
//! the ticket without checking it, and every input of the acceptance
//! policy but the time is bound into the ticket (tls/tickets.rs), so the
//! dates are what a resumption must check again (as Go's crypto/tls does).

use rustls::pki_types::{CertificateDer, UnixTime};
use webpki::Error as W;

use crate::error::CertificateProblem;
use crate::tls::certificate::X509Certificate;
use crate::tls::chain::Chain;
use crate::tls::trust::Trust;

/// A resumed session's peer chain, checked again at `now` for what
/// changes with time alone: the first certificate that has expired or
/// is not yet valid (rustls restores the chain from the ticket without
/// checking it; every other input of the policy is bound into the
/// ticket).
pub(crate) fn expired(
    chain: &[CertificateDer<'_>],
    required: &str,
    now: UnixTime,
) -> Option<CertificateProblem> {
    let (leaf, rest) = chain.split_first()?;
    let errors: Vec<W> = chain
        .iter()
        .filter_map(|c| X509Certificate::from_der(c).ok()?.dates_error(now))
        .collect();
    // An expired certificate first, wherever it is, as webpki reports.
    let e = errors
        .iter()
        .find(|e| matches!(e, W::CertExpired { .. }))
        .or(errors.first())?;
    Some(Chain::new(leaf, rest, &Trust::empty()).diagnose(e, required, None, now))
}
