//! Certificates a listener gets from elsewhere while it runs (an ACME
//! client): the one it serves, and the answers to TLS-ALPN-01 validations
//! (RFC 8737), which only a client that offers nothing but the
//! `acme-tls/1` protocol gets, and whose connection ends with the
//! handshake.

use std::fmt;
use std::sync::{Arc, Weak};

use rustls::server::{ClientHello, ResolvesServerCert};
use rustls::sign::CertifiedKey;

/// The ALPN protocol of TLS-ALPN-01 validations.
pub(crate) const ACME_TLS_ALPN: &[u8] = b"acme-tls/1";

/// Where a listener's certificate comes from when it is not (only) its
/// context's.
pub(crate) trait CertificateSource: Send + Sync + fmt::Debug {
    /// The certificate to serve now, if there is one yet.
    fn current(&self) -> Option<Arc<CertifiedKey>>;
    /// The validation certificate for `server_name` (already lower case),
    /// if a validation of that name is under way.
    fn challenge(&self, server_name: &str) -> Option<Arc<CertifiedKey>>;
}

/// Whether a ClientHello is a TLS-ALPN-01 validation: RFC 8737 section 3
/// has the CA offer `acme-tls/1` and nothing else.
pub(crate) fn is_validation(hello: &ClientHello<'_>) -> bool {
    hello.alpn().is_some_and(|mut offered| {
        offered.next() == Some(ACME_TLS_ALPN) && offered.next().is_none()
    })
}

// The resolvers hold the source weakly: the configurations they are in
// are kept in the context's cache, which may outlive the listeners; the
// source (and the thread behind it) lives as long as a listener holds it.
// The weak reference also keeps the allocation, so the address the cache
// is keyed by is not reused while the entry exists.

/// Serves the source's certificate, else the context's (`fallback`), else
/// none (the handshake fails with an alert: no certificate yet).
#[derive(Debug)]
pub(crate) struct Served {
    pub(crate) source: Weak<dyn CertificateSource>,
    pub(crate) fallback: Option<Arc<CertifiedKey>>,
}

impl ResolvesServerCert for Served {
    fn resolve(&self, _hello: ClientHello<'_>) -> Option<Arc<CertifiedKey>> {
        let current = self.source.upgrade().and_then(|s| s.current());
        current.or_else(|| self.fallback.clone())
    }
}

/// Answers validations: the challenge certificate for the name asked.
#[derive(Debug)]
pub(crate) struct Validation(pub(crate) Weak<dyn CertificateSource>);

impl ResolvesServerCert for Validation {
    fn resolve(&self, hello: ClientHello<'_>) -> Option<Arc<CertifiedKey>> {
        let name = hello.server_name()?.to_ascii_lowercase();
        self.0.upgrade()?.challenge(&name)
    }
}
