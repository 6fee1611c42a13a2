//! `AcmeOptions`: which names, which CA, which account, where to keep
//! what the CA gives.

use std::fmt;
use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::time::Duration;

use zeroize::Zeroizing;

use crate::error::{Error, Result};
use crate::tls::certificate::X509Certificate;

/// Let's Encrypt's production directory.
pub const LETS_ENCRYPT: &str = "https://acme-v02.api.letsencrypt.org/directory";

/// Let's Encrypt's staging directory: untrusted certificates, much higher
/// rate limits. Try a setup here first.
pub const LETS_ENCRYPT_STAGING: &str = "https://acme-staging-v02.api.letsencrypt.org/directory";

/// The default bound on each HTTP request to the CA.
pub const DEFAULT_ACME_REQUEST_TIMEOUT: Duration = Duration::from_secs(30);

/// The default bound on one whole order: account, validations,
/// finalisation, download.
pub const DEFAULT_ACME_ORDER_TIMEOUT: Duration = Duration::from_secs(300);

/// The kind of key a certificate is issued for.
#[non_exhaustive]
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Default)]
pub enum AcmeKeyType {
    /// ECDSA on P-256 (the default): small, fast, accepted everywhere
    /// that matters today.
    #[default]
    EcdsaP256,
    /// ECDSA on P-384.
    EcdsaP384,
    /// RSA with 2048-bit keys, for clients that know no ECDSA. With the
    /// `aws-lc-rs` provider only (ring cannot make RSA keys): with ring,
    /// `bind` fails with [`Error::Unsupported`].
    Rsa2048,
}

pub(crate) type ErrorFn = Arc<dyn Fn(&Error) + Send + Sync>;
pub(crate) type CertificateFn = Arc<dyn Fn(&X509Certificate) + Send + Sync>;

/// Certificates from an ACME CA (RFC 8555) for a listener: given to
/// [`BindOptions::acme`](crate::BindOptions::acme), they are obtained,
/// renewed and served by the listener itself, and TLS-ALPN-01
/// validations (RFC 8737) are answered on the listening port. What Go's
/// `autocert.Manager` and Caddy's automatic HTTPS do, for a blocking
/// server.
///
/// ```no_run
/// use securenet::{AcmeOptions, BindOptions, SecurityContext, LETS_ENCRYPT_STAGING};
///
/// # fn main() -> securenet::Result<()> {
/// let acme = AcmeOptions::new(&["example.com", "www.example.com"], "/var/lib/myserver/acme")
///     .directory(LETS_ENCRYPT_STAGING)
///     .contact("admin@example.com")
///     .accept_terms_of_service(true);
/// let listener = BindOptions::new()
///     .acme(acme)
///     .bind("0.0.0.0", 443, &SecurityContext::new())?;
/// # Ok(()) }
/// ```
///
/// The account key is ECDSA P-256, and the certificate's by default
/// ([`certificate_key`](Self::certificate_key)). Both, and the
/// certificate, are kept in the cache directory (made the owner's only,
/// mode 0700, whoever made it; keys readable by the owner only; one set
/// of files per CA) and reused
/// after a restart: a restart with a certificate that is not due for
/// renewal orders nothing and talks to no CA (renewal information is
/// first asked for an hour after the start).
///
/// **Several servers, one directory.** Servers (processes or listeners)
/// that share the cache directory share the certificate: one of them
/// orders (a lock file in the directory), the others serve what it
/// writes, a failure's back-off holds for all of them, and a validation
/// that reaches any of them is answered (the challenge certificate is
/// kept in the directory too). The directory must be one every server
/// sees at once, and the servers run as the same user: a local
/// directory, or a network file system with close-to-open consistency and
/// exclusive create (NFSv3 or later; lock ages are read on its clock). A
/// lock left by a server that died is taken over a minute after the
/// order timeout (every request of an order ends by it).
#[derive(Clone)]
pub struct AcmeOptions {
    pub(crate) domains: Vec<String>,
    pub(crate) cache_dir: PathBuf,
    pub(crate) directory: String,
    pub(crate) contact: Vec<String>,
    pub(crate) accept_terms: bool,
    pub(crate) eab: Option<(String, Arc<Zeroizing<String>>)>,
    pub(crate) ca_certificates: Option<Vec<u8>>,
    pub(crate) request_timeout: Duration,
    pub(crate) order_timeout: Duration,
    pub(crate) key_type: AcmeKeyType,
    pub(crate) on_error: Option<ErrorFn>,
    pub(crate) on_certificate: Option<CertificateFn>,
}

impl fmt::Debug for AcmeOptions {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("AcmeOptions")
            .field("domains", &self.domains)
            .field("cache_dir", &self.cache_dir)
            .field("directory", &self.directory)
            .field("contact", &self.contact)
            .field("accept_terms_of_service", &self.accept_terms)
            .field(
                "external_account_binding",
                &self.eab.as_ref().map(|(kid, _)| kid),
            )
            .field("ca_certificates", &self.ca_certificates.is_some())
            .field("request_timeout", &self.request_timeout)
            .field("order_timeout", &self.order_timeout)
            .field("certificate_key", &self.key_type)
            .finish_non_exhaustive()
    }
}

impl AcmeOptions {
    /// Certificates for `domains` (one certificate naming all of them; the
    /// first is the file name in the cache), kept in `cache_dir`. The CA is
    /// Let's Encrypt ([`LETS_ENCRYPT`]) until [`directory`](Self::directory)
    /// says otherwise; its terms must still be accepted.
    ///
    /// Names are DNS names that resolve to this server (or to the balancer
    /// in front of it) on port 443; wildcards cannot be validated by
    /// TLS-ALPN-01. [`BindOptions::bind`](crate::BindOptions::bind) checks
    /// them.
    pub fn new<S: AsRef<str>>(domains: &[S], cache_dir: impl AsRef<Path>) -> AcmeOptions {
        AcmeOptions {
            domains: domains.iter().map(|d| d.as_ref().to_owned()).collect(),
            cache_dir: cache_dir.as_ref().to_owned(),
            directory: LETS_ENCRYPT.to_owned(),
            contact: Vec::new(),
            accept_terms: false,
            eab: None,
            ca_certificates: None,
            request_timeout: DEFAULT_ACME_REQUEST_TIMEOUT,
            order_timeout: DEFAULT_ACME_ORDER_TIMEOUT,
            key_type: AcmeKeyType::EcdsaP256,
            on_error: None,
            on_certificate: None,
        }
    }

    /// The CA's directory URL ([`LETS_ENCRYPT`], [`LETS_ENCRYPT_STAGING`],
    /// or any other ACME CA's).
    pub fn directory(mut self, url: &str) -> Self {
        url.clone_into(&mut self.directory);
        self
    }

    /// An e-mail address the CA may write to about the account (expiry
    /// notices, incidents). May be given more than once.
    pub fn contact(mut self, email: &str) -> Self {
        self.contact.push(email.to_owned());
        self
    }

    /// Whether the CA's terms of service are accepted. The CA refuses an
    /// account without it; securenet never accepts them for you.
    pub fn accept_terms_of_service(mut self, accept: bool) -> Self {
        self.accept_terms = accept;
        self
    }

    /// External Account Binding (RFC 8555 section 7.3.4), for CAs that tie
    /// ACME accounts to an account of their own (ZeroSSL, Google Trust
    /// Services, many private CAs): the key identifier and the MAC key
    /// (base64url, as CAs hand it out) they gave you.
    pub fn external_account_binding(mut self, key_id: &str, mac_key_base64url: &str) -> Self {
        self.eab = Some((
            key_id.to_owned(),
            Arc::new(Zeroizing::new(mac_key_base64url.to_owned())),
        ));
        self
    }

    /// The authorities trusted for the connection to the CA, in PEM or
    /// DER: for a CA whose own HTTPS certificate does not chain to
    /// Mozilla's roots (a private CA, a test CA such as Pebble). Without
    /// it, Mozilla's roots (`webpki-roots`) are trusted.
    pub fn ca_certificates(mut self, pem_or_der: impl AsRef<[u8]>) -> Self {
        self.ca_certificates = Some(pem_or_der.as_ref().to_vec());
        self
    }

    /// The bound on each HTTP request to the CA (connect, send, answer):
    /// [`DEFAULT_ACME_REQUEST_TIMEOUT`] by default, an hour at most (a
    /// longer one is taken as an hour). Within an order, a request also
    /// ends by the order's deadline.
    pub fn request_timeout(mut self, timeout: Duration) -> Self {
        self.request_timeout = timeout;
        self
    }

    /// The bound on one whole order (the directory, account, validations,
    /// finalisation, download): [`DEFAULT_ACME_ORDER_TIMEOUT`] by default,
    /// a day at most (a longer one is taken as a day). A lock in the cache
    /// directory a minute older than this is taken over.
    pub fn order_timeout(mut self, timeout: Duration) -> Self {
        self.order_timeout = timeout;
        self
    }

    /// The kind of key certificates are issued for:
    /// [`AcmeKeyType::EcdsaP256`] by default. A new kind applies from the
    /// next order (a cached certificate is served until it is due).
    pub fn certificate_key(mut self, key_type: AcmeKeyType) -> Self {
        self.key_type = key_type;
        self
    }

    /// Called with every failure to get or renew a certificate (the
    /// listener goes on serving the certificate it has, and tries again
    /// later). Without it, failures are logged (`log` facade, `error`).
    pub fn on_error(mut self, callback: impl Fn(&Error) + Send + Sync + 'static) -> Self {
        self.on_error = Some(Arc::new(callback));
        self
    }

    /// Called with each new certificate the listener starts serving: one
    /// it obtained, one another server wrote to the shared cache, or the
    /// cached one at start.
    pub fn on_certificate(
        mut self,
        callback: impl Fn(&X509Certificate) + Send + Sync + 'static,
    ) -> Self {
        self.on_certificate = Some(Arc::new(callback));
        self
    }

    /// The names certificates are obtained for.
    pub fn get_domains(&self) -> &[String] {
        &self.domains
    }

    /// Checks every option a bind can check (the names, the directory
    /// URL, the timeouts, the key type with this provider): the names,
    /// lower case, each a DNS name TLS-ALPN-01 can validate.
    pub(crate) fn check(&self) -> Result<Vec<String>> {
        if self.domains.is_empty() {
            return Err(Error::invalid_input(
                "AcmeOptions::new(&[])",
                "no domain names: give the names the certificate is for",
            ));
        }
        let mut out: Vec<String> = Vec::with_capacity(self.domains.len());
        for name in &self.domains {
            let lower = name.trim_end_matches('.').to_ascii_lowercase();
            check_domain(&lower).map_err(|why| {
                Error::invalid_input(name.clone(), format!("AcmeOptions domain: {why}"))
            })?;
            if !out.contains(&lower) {
                out.push(lower);
            }
        }
        if !self.directory.starts_with("https://") {
            return Err(Error::invalid_input(
                self.directory.clone(),
                "AcmeOptions::directory: an ACME directory URL starts with https:// (RFC 8555 \
                 section 6.1)",
            ));
        }
        if self.key_type == AcmeKeyType::Rsa2048 && crate::crypto::NAME == "ring" {
            return Err(Error::Unsupported {
                what: "AcmeOptions::certificate_key(AcmeKeyType::Rsa2048)".into(),
                reason: "ring cannot make RSA keys: use ECDSA (the default), or the aws-lc-rs \
                         provider"
                    .into(),
            });
        }
        for (what, d) in [
            ("request_timeout", self.request_timeout),
            ("order_timeout", self.order_timeout),
        ] {
            if d.is_zero() {
                return Err(Error::invalid_input(
                    format!("AcmeOptions::{what}(0)"),
                    "a zero timeout ends every request at once: give a positive duration",
                ));
            }
        }
        Ok(out)
    }
}

/// Why `name` (lower case) is not a name TLS-ALPN-01 validates.
fn check_domain(name: &str) -> std::result::Result<(), &'static str> {
    if name.starts_with("*.") {
        return Err(
            "a wildcard name cannot be validated with TLS-ALPN-01 (RFC 8737 section \
                    3): list each name, or use a DNS-01 client",
        );
    }
    if name.parse::<std::net::IpAddr>().is_ok() {
        return Err("an IP address: give a DNS name");
    }
    if name.is_empty() || name.len() > 253 {
        return Err("a DNS name has 1 to 253 characters");
    }
    let labels_ok = name.split('.').all(|label| {
        !label.is_empty()
            && label.len() <= 63
            && !label.starts_with('-')
            && !label.ends_with('-')
            && label
                .bytes()
                .all(|b| b.is_ascii_alphanumeric() || b == b'-')
    });
    if !labels_ok {
        return Err(
            "not a DNS name: labels of letters, digits and hyphens, 63 characters at \
                    most, separated by dots (write internationalised names in their xn-- form)",
        );
    }
    if !name.contains('.') {
        return Err("a single label: a CA issues only for names under a public suffix");
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn names_are_checked_and_lower_cased() {
        let ok = AcmeOptions::new(
            &["Example.COM.", "www.example.com", "example.com"],
            "/tmp/x",
        );
        assert_eq!(ok.check().expect("ok"), ["example.com", "www.example.com"]);
        for bad in [
            "*.example.com",
            "127.0.0.1",
            "ex_ample.com",
            "-a.com",
            "localhost",
            "",
        ] {
            let err = AcmeOptions::new(&[bad], "/tmp/x").check().expect_err(bad);
            assert!(
                matches!(&err, Error::InvalidInput { input, .. } if input == bad),
                "{err:?}"
            );
        }
        let none: [&str; 0] = [];
        assert!(AcmeOptions::new(&none, "/tmp/x").check().is_err());
        let plain = AcmeOptions::new(&["a.example"], "/tmp").directory("http://ca/dir");
        assert!(plain.check().is_err());
        let zero = AcmeOptions::new(&["a.example"], "/tmp").order_timeout(Duration::ZERO);
        assert!(zero.check().is_err());
    }
}
