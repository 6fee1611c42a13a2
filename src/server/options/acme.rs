//! `BindOptions::acme`: a listener that gets its own certificates.

use super::BindOptions;
use crate::acme::{AcmeOptions, Shared};

impl BindOptions {
    /// Certificates for the listener from an ACME CA (feature `acme`):
    /// obtained in the background after `bind`, served as soon as they are
    /// there, renewed before they expire, and kept in the options' cache
    /// directory for restarts and for the other servers that share it.
    ///
    /// Until the first certificate is there, clients get the context's
    /// certificate if it has one, else a handshake failure (an alert: no
    /// certificate). A restart with a certificate in the cache serves it
    /// from the first connection.
    ///
    /// The CA validates each name by connecting to port 443 of it with the
    /// ALPN protocol `acme-tls/1` alone (TLS-ALPN-01, RFC 8737): the
    /// listener answers those itself, with the challenge certificate, and
    /// closes them after the handshake; they never reach
    /// [`accept`](crate::SecureListener::accept)'s caller as a usable
    /// stream (its handshake returns an error) nor `serve`'s handler
    /// (logged at `debug`). So the listener must be what port 443 of each
    /// name reaches, directly or through a TCP balancer (HAProxy in `mode
    /// tcp`, a cloud network balancer), not behind a proxy that ends TLS.
    ///
    /// The [SNI routes](Self::sni_context) keep serving their own
    /// contexts' certificates; every other name gets the ACME one.
    /// [`SecureListener::set_context`](crate::SecureListener::set_context)
    /// changes the settings (and the certificate used until the first ACME
    /// one). Listeners bound with the same options (or clones of them)
    /// share one manager while any of them lives; the manager's thread
    /// ends once the last is dropped.
    ///
    /// Errors at `bind`: [`Error::InvalidInput`](crate::Error::InvalidInput)
    /// for names TLS-ALPN-01 cannot validate, a directory URL that is not
    /// `https://`, a MAC key that is not base64url;
    /// [`Error::File`](crate::Error::File) for a cache directory that
    /// cannot be made. Failures to reach the CA or to get a certificate
    /// come later, to [`AcmeOptions::on_error`] (or the log).
    ///
    /// Go: `autocert.Manager{Prompt: autocert.AcceptTOS, Cache:
    /// autocert.DirCache(dir), HostPolicy: autocert.HostWhitelist(..)}`
    /// with `m.TLSConfig()`; Caddy's automatic HTTPS.
    #[cfg_attr(docsrs, doc(cfg(feature = "acme")))]
    pub fn acme(mut self, options: AcmeOptions) -> Self {
        self.acme = Some((options, Shared::default()));
        self
    }

    /// The ACME options, if any.
    #[cfg_attr(docsrs, doc(cfg(feature = "acme")))]
    pub fn get_acme(&self) -> Option<&AcmeOptions> {
        self.acme.as_ref().map(|(o, _)| o)
    }
}
