//! What failed when getting a certificate from an ACME CA.

use std::io;

/// What failed in [`Error::Acme`](crate::Error::Acme), and so what to do.
#[non_exhaustive]
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum AcmeErrorKind {
    /// The CA could not be reached (connect, TLS, a timeout): check the
    /// directory URL, the network and the trust for the CA's own
    /// certificate ([`AcmeOptions::ca_certificates`](crate::AcmeOptions::ca_certificates)).
    Unreachable,
    /// The CA's terms of service were not accepted: read them (the URL is
    /// in the message) and call
    /// [`AcmeOptions::accept_terms_of_service`](crate::AcmeOptions::accept_terms_of_service).
    TermsNotAccepted,
    /// The CA requires External Account Binding (RFC 8555 section 7.3.4)
    /// or refused the one given: get a key identifier and MAC key from the
    /// CA and pass them to
    /// [`AcmeOptions::external_account_binding`](crate::AcmeOptions::external_account_binding).
    ExternalAccount,
    /// The CA could not validate control of a name through TLS-ALPN-01:
    /// port 443 of that name must reach this listener (directly or through
    /// a TCP balancer) and the balancer must not end TLS itself. The CA's
    /// problem document says what it saw.
    Validation,
    /// The CA's rate limit was hit: nothing is asked again before
    /// `retry_after`.
    RateLimited,
    /// The CA refused a request (a name it will not issue for, a bad CSR,
    /// an account it does not know): its problem document says why.
    Refused,
    /// The CA's answer was not valid ACME (a missing header, JSON that is
    /// not what RFC 8555 describes), or an order did not finish within
    /// its time.
    Protocol,
}

impl AcmeErrorKind {
    pub(crate) fn io_kind(self) -> io::ErrorKind {
        match self {
            AcmeErrorKind::Unreachable => io::ErrorKind::ConnectionRefused,
            AcmeErrorKind::TermsNotAccepted | AcmeErrorKind::ExternalAccount => {
                io::ErrorKind::InvalidInput
            }
            AcmeErrorKind::Validation | AcmeErrorKind::Refused => io::ErrorKind::PermissionDenied,
            AcmeErrorKind::RateLimited => io::ErrorKind::Other,
            AcmeErrorKind::Protocol => io::ErrorKind::InvalidData,
        }
    }
}
