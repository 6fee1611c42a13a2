//! A set of trust anchors, and the certificates the user added to it.
//!
//! Mozilla's roots are only anchors (a subject and a key). What the user
//! added with `set_trusted_certificates` or `set_client_authorities` is
//! kept whole as well: a peer whose leaf is byte for byte one of those
//! certificates is trusted as itself (the rule of curl's `--cacert`, Python's
//! `cafile` and Go's `RootCAs`), and a rejection can name and inspect the
//! root it stopped at.

use rustls::RootCertStore;
use rustls::pki_types::CertificateDer;

use crate::error::{Error, Result};

/// Trust anchors for one direction of verification.
#[derive(Clone, Debug)]
pub(crate) struct Trust {
    /// Every anchor, built-in and added.
    pub(crate) store: RootCertStore,
    /// The certificates the user added, as given (never the built-in roots).
    pub(crate) added: Vec<CertificateDer<'static>>,
    /// What could not be loaded from the system store.
    pub(crate) load_errors: Vec<String>,
}

impl Trust {
    /// No anchors at all.
    pub(crate) fn empty() -> Trust {
        Trust {
            store: RootCertStore::empty(),
            added: Vec::new(),
            load_errors: Vec::new(),
        }
    }

    /// Mozilla's roots (`webpki-roots`).
    pub(crate) fn mozilla() -> Trust {
        Trust {
            store: RootCertStore {
                roots: webpki_roots::TLS_SERVER_ROOTS.to_vec(),
            },
            added: Vec::new(),
            load_errors: Vec::new(),
        }
    }

    /// The operating system's trust store, through rustls-native-certs
    /// (`SSL_CERT_FILE` and `SSL_CERT_DIR` when set, as OpenSSL reads
    /// them): trusted as roots, not as leaves. What could not be read or
    /// used is kept in `load_errors`; a store with nothing usable is an
    /// error.
    pub(crate) fn system() -> Result<Trust> {
        let found = rustls_native_certs::load_native_certs();
        let mut trust = Trust::empty();
        trust.load_errors = found.errors.iter().map(ToString::to_string).collect();
        for (i, cert) in found.certs.into_iter().enumerate() {
            if let Err(e) = trust.store.add(cert.clone()) {
                let subject = crate::tls::certificate::X509Certificate::from_der(&cert)
                    .map(|c| c.subject().to_owned())
                    .unwrap_or_else(|_| format!("certificate #{}", i + 1));
                trust
                    .load_errors
                    .push(format!("{subject}: cannot be a trust anchor: {e}"));
            }
        }
        for problem in &trust.load_errors {
            log::warn!("securenet: system trust store: {problem}");
        }
        if trust.store.is_empty() {
            let why = if trust.load_errors.is_empty() {
                "no certificates found".to_owned()
            } else {
                format!("no usable certificates ({})", trust.load_errors.join("; "))
            };
            return Err(Error::credentials(
                "system trust store",
                format!(
                    "{why}: install the CA bundle (Debian: ca-certificates), point SSL_CERT_FILE \
                     or SSL_CERT_DIR at one, or use SecurityContext::new() for Mozilla's roots"
                ),
            ));
        }
        Ok(trust)
    }

    /// Adds the user's certificates, each as an anchor and kept whole.
    pub(crate) fn add(&mut self, certs: Vec<CertificateDer<'static>>, label: &str) -> Result<()> {
        for (i, cert) in certs.into_iter().enumerate() {
            self.store.add(cert.clone()).map_err(|e| {
                Error::credentials(
                    label,
                    format!("certificate #{} cannot be a trust anchor: {e}", i + 1),
                )
            })?;
            if !self.added.contains(&cert) {
                self.added.push(cert);
            }
        }
        Ok(())
    }

    /// Whether there is no anchor at all.
    pub(crate) fn is_empty(&self) -> bool {
        self.store.is_empty()
    }

    /// Whether `cert` is, byte for byte, one the user added.
    pub(crate) fn added_exactly(&self, cert: &CertificateDer<'_>) -> bool {
        self.added.iter().any(|c| c.as_ref() == cert.as_ref())
    }
}
