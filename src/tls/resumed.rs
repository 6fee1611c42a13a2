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
    let at = i64::try_from(now.as_secs()).unwrap_or(i64::MAX);
    let secs = |t: std::time::SystemTime| {
        t.duration_since(std::time::UNIX_EPOCH)
            .map_or(i64::MIN, |d| i64::try_from(d.as_secs()).unwrap_or(i64::MAX))
    };
    let to_unix = |t: std::time::SystemTime| {
        UnixTime::since_unix_epoch(t.duration_since(std::time::UNIX_EPOCH).unwrap_or_default())
    };
    let parsed: Vec<X509Certificate> = chain
        .iter()
        .filter_map(|c| X509Certificate::from_der(c).ok())
        .collect();
    let this = Chain::new(leaf, rest, &Trust::empty());
    if let Some(c) = parsed.iter().find(|c| secs(c.end_validity()) < at) {
        let e = W::CertExpired {
            time: now,
            not_after: to_unix(c.end_validity()),
        };
        return Some(this.diagnose(&e, required, None, now));
    }
    let c = parsed.iter().find(|c| secs(c.start_validity()) > at)?;
    let e = W::CertNotValidYet {
        time: now,
        not_before: to_unix(c.start_validity()),
    };
    Some(this.diagnose(&e, required, None, now))
}
