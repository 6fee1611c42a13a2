//! `SecurityContext`: trust anchors, our own certificate chain and key, the
//! CAs client certificates must chain to and revocation lists (Dart's
//! `SecurityContext`, Node's `secureContext`). The rustls configurations
//! built from it live in its [`Derived`] cache, which knows nothing of them.

use std::fmt;
use std::path::Path;
use std::sync::{Arc, OnceLock};

use rustls::client::ClientSessionMemoryCache;
use rustls::pki_types::CertificateDer;
use rustls::sign::CertifiedKey;

use crate::error::{Error, Result};
use crate::tls::cache::Derived;
use crate::tls::certificate::X509Certificate;
use crate::tls::params::{Params, TlsVersion, provider};
use crate::tls::pem::{copy_key, parse_certificates, parse_private_key, read_file};
use crate::tls::revocation::Revocation;
use crate::tls::settings::SESSION_CACHE;
use crate::tls::trust::Trust;

mod staple;

pub(crate) use staple::MAX_STAPLE;

/// Trust anchors, our own certificate and key, and client-certificate CAs.
///
/// `SecurityContext::new()` trusts Mozilla's root CAs (from `webpki-roots`,
/// with no dependency on the operating system's store); `system()` the
/// operating system's store; `empty()` nothing. A certificate added with
/// [`set_trusted_certificates`](Self::set_trusted_certificates) is a trust
/// anchor, and a peer whose leaf is exactly that certificate is trusted as
/// itself, even if it is marked as a CA (as `openssl req -x509` makes
/// them): it must still be valid now and name the host. Cloning is cheap and clones share the rustls configurations and
/// the TLS session cache; a clone taken before a mutation does not see it.
///
/// ```
/// # fn main() -> securenet::Result<()> {
/// let pki = securenet::testing::TestPki::new(&["localhost"])?;
/// let mut ctx = securenet::SecurityContext::empty();
/// ctx.set_trusted_certificates_bytes(pki.ca_pem().as_bytes())?;
/// # Ok(()) }
/// ```
#[derive(Clone)]
pub struct SecurityContext {
    inner: Arc<Inner>,
}

pub(crate) struct Inner {
    pub(crate) data: Data,
    /// The client and server configurations built from `data`.
    pub(crate) derived: Derived,
    pub(crate) client_sessions: Arc<ClientSessionMemoryCache>,
}

pub(crate) struct Data {
    pub(crate) roots: Arc<Trust>,
    pub(crate) chain: Option<(Vec<CertificateDer<'static>>, String)>,
    pub(crate) key: Option<(crate::tls::pem::SecretKey, String)>,
    pub(crate) certified: Option<Arc<CertifiedKey>>,
    pub(crate) client_authorities: Option<Arc<Trust>>,
    pub(crate) revocation: Revocation,
    /// The OCSP response to staple, and where it came from.
    pub(crate) ocsp: Option<Vec<u8>>,
    pub(crate) params: Params,
}

impl Clone for Data {
    fn clone(&self) -> Data {
        Data {
            roots: self.roots.clone(),
            chain: self.chain.clone(),
            key: self.key.as_ref().map(|(k, l)| (copy_key(k), l.clone())),
            certified: self.certified.clone(),
            client_authorities: self.client_authorities.clone(),
            revocation: self.revocation.clone(),
            ocsp: self.ocsp.clone(),
            params: self.params.clone(),
        }
    }
}

impl Default for SecurityContext {
    /// The same as [`SecurityContext::new`].
    fn default() -> Self {
        SecurityContext::new()
    }
}

impl fmt::Debug for SecurityContext {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let d = &self.inner.data;
        f.debug_struct("SecurityContext")
            .field("trust_anchors", &d.roots.store.len())
            .field("certificate_chain", &d.chain.as_ref().map(|c| c.0.len()))
            .field("private_key", &d.key.is_some())
            .field(
                "client_authorities",
                &d.client_authorities.as_ref().map(|r| r.store.len()),
            )
            .finish()
    }
}

impl SecurityContext {
    /// A context that trusts Mozilla's root CAs (`webpki-roots`), with no
    /// certificate of its own. Dart's `SecurityContext(withTrustedRoots: true)`.
    pub fn new() -> SecurityContext {
        SecurityContext::with_roots(Trust::mozilla())
    }

    /// A context that trusts the operating system's trust store, through
    /// `rustls-native-certs`: on Linux and BSD the CA bundle OpenSSL would
    /// use, or `SSL_CERT_FILE` (a PEM file) and `SSL_CERT_DIR` (directories
    /// of PEM files) when set, as OpenSSL, Python and Go read them; the
    /// system keychain on macOS; the certificate store on Windows.
    ///
    /// Use it for corporate or private roots installed on the machine;
    /// [`new`](Self::new) (Mozilla's roots, built in) for the same
    /// behaviour everywhere, including containers with no CA bundle.
    /// The store is read now, once; clone the context to share it. Its
    /// certificates are trust anchors only: a server presenting one of
    /// them as its own certificate is not trusted as itself (add it with
    /// [`set_trusted_certificates`](Self::set_trusted_certificates) for
    /// that).
    ///
    /// Certificates that cannot be read or used are skipped and listed by
    /// [`trust_load_errors`](Self::trust_load_errors) (and logged at
    /// `warn`); a store with no usable certificate is
    /// [`Error::Credentials`] naming what failed.
    pub fn system() -> Result<SecurityContext> {
        Ok(SecurityContext::with_roots(Trust::system()?))
    }

    /// What could not be loaded when [`system`](Self::system) read the
    /// trust store: each entry names the file, directory or certificate and
    /// why. Empty for other contexts.
    pub fn trust_load_errors(&self) -> &[String] {
        &self.inner.data.roots.load_errors
    }

    /// A context that trusts no CA at all: add trust with
    /// [`set_trusted_certificates`](Self::set_trusted_certificates).
    pub fn empty() -> SecurityContext {
        SecurityContext::with_roots(Trust::empty())
    }

    /// The process-wide default context, made once: what
    /// `SecureStream::connect` uses when no context is given.
    pub(crate) fn shared_default() -> &'static SecurityContext {
        static DEFAULT: OnceLock<SecurityContext> = OnceLock::new();
        DEFAULT.get_or_init(SecurityContext::new)
    }

    fn with_roots(roots: Trust) -> SecurityContext {
        SecurityContext::from_data(Data {
            roots: Arc::new(roots),
            chain: None,
            key: None,
            certified: None,
            client_authorities: None,
            revocation: Revocation::default(),
            ocsp: None,
            params: Params::default(),
        })
    }

    fn from_data(data: Data) -> SecurityContext {
        SecurityContext {
            inner: Arc::new(Inner {
                data,
                derived: Derived::default(),
                client_sessions: Arc::new(ClientSessionMemoryCache::new(SESSION_CACHE)),
            }),
        }
    }

    pub(crate) fn inner(&self) -> &Inner {
        &self.inner
    }

    /// Applies a change to a copy of the data; on success this context
    /// takes the copy (with fresh configuration and session caches).
    fn update(&mut self, change: impl FnOnce(&mut Data) -> Result<()>) -> Result<()> {
        let mut data = self.inner.data.clone();
        change(&mut data)?;
        *self = SecurityContext::from_data(data);
        Ok(())
    }

    /// Adds the certificates in a PEM file (one or more) or a DER file to the
    /// trust anchors. Dart `setTrustedCertificates`, Node `ca`.
    pub fn set_trusted_certificates(&mut self, path: impl AsRef<Path>) -> Result<()> {
        let path = path.as_ref();
        let bytes = read_file(path)?;
        self.add_trust(&bytes, &path.display().to_string())
    }

    /// Like [`set_trusted_certificates`](Self::set_trusted_certificates), from
    /// PEM or DER bytes in memory.
    pub fn set_trusted_certificates_bytes(&mut self, pem_or_der: &[u8]) -> Result<()> {
        self.add_trust(pem_or_der, "trusted certificates (bytes)")
    }

    fn add_trust(&mut self, bytes: &[u8], label: &str) -> Result<()> {
        let certs = parse_certificates(bytes, label)?;
        self.update(|d| {
            let mut roots = (*d.roots).clone();
            roots.add(certs, label)?;
            d.roots = Arc::new(roots);
            Ok(())
        })
    }

    /// Sets our own certificate chain from a PEM file (leaf first, then its
    /// intermediates) or a DER file (the leaf alone). Dart
    /// `useCertificateChain`, Node `cert`.
    ///
    /// If a private key is already set, it must match the chain's first
    /// certificate.
    pub fn use_certificate_chain(&mut self, path: impl AsRef<Path>) -> Result<()> {
        let path = path.as_ref();
        let bytes = read_file(path)?;
        self.set_chain(&bytes, path.display().to_string())
    }

    /// Like [`use_certificate_chain`](Self::use_certificate_chain), from bytes.
    pub fn use_certificate_chain_bytes(&mut self, pem_or_der: &[u8]) -> Result<()> {
        self.set_chain(pem_or_der, "certificate chain (bytes)".to_owned())
    }

    fn set_chain(&mut self, bytes: &[u8], label: String) -> Result<()> {
        let chain = parse_certificates(bytes, &label)?;
        self.update(|d| {
            d.chain = Some((chain, label));
            certify(d)
        })
    }

    /// Sets our private key from a PEM or DER file: PKCS#8, PKCS#1 (RSA) or
    /// SEC1 (EC). Dart `usePrivateKey`, Node `key`.
    ///
    /// An encrypted key (`ENCRYPTED PRIVATE KEY`) is an error that points
    /// to [`use_private_key_with_password`](Self::use_private_key_with_password),
    /// which reads it. If a chain is already set, the key must match its
    /// first certificate.
    pub fn use_private_key(&mut self, path: impl AsRef<Path>) -> Result<()> {
        let path = path.as_ref();
        let bytes = crate::tls::pem::read_secret_file(path)?;
        self.set_key(&bytes, path.display().to_string())
    }

    /// Like [`use_private_key`](Self::use_private_key), from bytes.
    pub fn use_private_key_bytes(&mut self, pem_or_der: &[u8]) -> Result<()> {
        self.set_key(pem_or_der, "private key (bytes)".to_owned())
    }

    fn set_key(&mut self, bytes: &[u8], label: String) -> Result<()> {
        let key = parse_private_key(bytes, &label)?;
        self.set_key_der(key, label)
    }

    /// Sets our private key from an encrypted PKCS#8 file (`ENCRYPTED
    /// PRIVATE KEY`, PEM or DER, as `openssl pkcs8 -topk8` writes), decrypted
    /// with `password` (Node `key` + `passphrase`, Dart `usePrivateKey` with
    /// `password`). An unencrypted key loads as with `use_private_key`. A
    /// wrong password is an error that says so; OpenSSL's legacy encrypted
    /// PEM (`Proc-Type: 4,ENCRYPTED`) gets the `openssl pkcs8 -topk8` command
    /// that converts it.
    pub fn use_private_key_with_password(
        &mut self,
        path: impl AsRef<Path>,
        password: &str,
    ) -> Result<()> {
        let path = path.as_ref();
        let bytes = crate::tls::pem::read_secret_file(path)?;
        let label = path.display().to_string();
        let key = crate::tls::keys::decrypt_private_key(&bytes, password, &label)?;
        self.set_key_der(key, label)
    }

    /// Like [`use_private_key_with_password`](Self::use_private_key_with_password),
    /// from bytes.
    pub fn use_private_key_with_password_bytes(
        &mut self,
        pem_or_der: &[u8],
        password: &str,
    ) -> Result<()> {
        let label = "private key (bytes)".to_owned();
        let key = crate::tls::keys::decrypt_private_key(pem_or_der, password, &label)?;
        self.set_key_der(key, label)
    }

    /// Sets our certificate chain and private key from a PKCS#12 bundle
    /// (`.p12`/`.pfx`) opened with `password` (Node `pfx` + `passphrase`,
    /// Dart's PKCS#12 support). The bundle's first key and its chain are
    /// used; see
    /// [`set_trusted_certificates_pkcs12`](Self::set_trusted_certificates_pkcs12)
    /// to trust its certificates.
    pub fn use_pkcs12(&mut self, path: impl AsRef<Path>, password: &str) -> Result<()> {
        let path = path.as_ref();
        let bytes = crate::tls::pem::read_secret_file(path)?;
        self.set_pkcs12_identity(&bytes, password, path.display().to_string())
    }

    /// Like [`use_pkcs12`](Self::use_pkcs12), from bytes.
    pub fn use_pkcs12_bytes(&mut self, bytes: &[u8], password: &str) -> Result<()> {
        self.set_pkcs12_identity(bytes, password, "PKCS#12 bundle (bytes)".to_owned())
    }

    fn set_pkcs12_identity(&mut self, bytes: &[u8], password: &str, label: String) -> Result<()> {
        let bundle = crate::tls::keys::open_pkcs12(bytes, password, &label)?;
        let Some((chain, key)) = bundle.identity else {
            return Err(Error::credentials(
                &label,
                "the bundle holds no private key with a certificate: use \
                 set_trusted_certificates_pkcs12 for a bundle of CA certificates",
            ));
        };
        provider()
            .key_provider
            .load_private_key(key.clone_key())
            .map_err(|e| {
                Error::credentials(&label, format!("the private key cannot be used: {e}"))
            })?;
        self.update(|d| {
            d.chain = Some((chain, label.clone()));
            d.key = Some((key, label));
            certify(d)
        })
    }

    /// Adds every certificate of a PKCS#12 bundle opened with `password` to
    /// the trust anchors (Dart `setTrustedCertificates` with a `.p12`).
    pub fn set_trusted_certificates_pkcs12(
        &mut self,
        path: impl AsRef<Path>,
        password: &str,
    ) -> Result<()> {
        let path = path.as_ref();
        let bytes = read_file(path)?;
        self.add_pkcs12_trust(&bytes, password, &path.display().to_string())
    }

    /// Like [`set_trusted_certificates_pkcs12`](Self::set_trusted_certificates_pkcs12),
    /// from bytes.
    pub fn set_trusted_certificates_pkcs12_bytes(
        &mut self,
        bytes: &[u8],
        password: &str,
    ) -> Result<()> {
        self.add_pkcs12_trust(bytes, password, "PKCS#12 bundle (bytes)")
    }

    fn add_pkcs12_trust(&mut self, bytes: &[u8], password: &str, label: &str) -> Result<()> {
        let bundle = crate::tls::keys::open_pkcs12(bytes, password, label)?;
        if bundle.certificates.is_empty() {
            return Err(Error::credentials(label, "the bundle holds no certificate"));
        }
        self.update(|d| {
            let mut roots = (*d.roots).clone();
            roots.add(bundle.certificates, label)?;
            d.roots = Arc::new(roots);
            Ok(())
        })
    }

    /// This context with another chain and key, set together (a renewed
    /// certificate), each as its file (for messages) and the bytes read:
    /// a stapled OCSP response, for the old certificate, is dropped.
    pub(crate) fn with_credentials(&self, [chain, key]: [(&Path, &[u8]); 2]) -> Result<Self> {
        let (chain_label, key_label) = (chain.0.display().to_string(), key.0.display().to_string());
        let chain = parse_certificates(chain.1, &chain_label)?;
        let key = parse_private_key(key.1, &key_label)?;
        let mut next = self.clone();
        next.update(|d| {
            d.chain = Some((chain, chain_label));
            d.key = Some((key, key_label));
            d.ocsp = None;
            certify(d)
        })?;
        Ok(next)
    }

    /// Our leaf certificate (DER), if a chain is set.
    pub(crate) fn leaf_der(&self) -> Option<&[u8]> {
        let (chain, _) = self.inner.data.chain.as_ref()?;
        chain.first().map(|c| c.as_ref())
    }

    fn set_key_der(&mut self, key: crate::tls::pem::SecretKey, label: String) -> Result<()> {
        provider()
            .key_provider
            .load_private_key(key.clone_key())
            .map_err(|e| {
                Error::credentials(&label, format!("the private key cannot be used: {e}"))
            })?;
        self.update(|d| {
            d.key = Some((key, label));
            certify(d)
        })
    }

    /// Sets the CAs that client certificates must chain to, on a server that
    /// requests or requires them. Without it the context's trusted
    /// certificates are used. Dart `setClientAuthorities`.
    pub fn set_client_authorities(&mut self, path: impl AsRef<Path>) -> Result<()> {
        let path = path.as_ref();
        let bytes = read_file(path)?;
        self.add_client_authorities(&bytes, &path.display().to_string())
    }

    /// Like [`set_client_authorities`](Self::set_client_authorities), from bytes.
    pub fn set_client_authorities_bytes(&mut self, pem_or_der: &[u8]) -> Result<()> {
        self.add_client_authorities(pem_or_der, "client authorities (bytes)")
    }

    fn add_client_authorities(&mut self, bytes: &[u8], label: &str) -> Result<()> {
        let certs = parse_certificates(bytes, label)?;
        self.update(|d| {
            let mut roots = d
                .client_authorities
                .as_deref()
                .cloned()
                .unwrap_or_else(Trust::empty);
            roots.add(certs, label)?;
            d.client_authorities = Some(Arc::new(roots));
            Ok(())
        })
    }

    /// Adds the certificate revocation lists in a PEM file (one or more
    /// `X509 CRL` sections) or a DER file. A peer certificate, or one of its
    /// issuers, listed as revoked by a CRL of its issuer then fails with
    /// [`CertificateProblem::Revoked`](crate::CertificateProblem::Revoked):
    /// server certificates on a client, client certificates on a server.
    /// Certificates whose issuer has no CRL here are not checked, and an
    /// expired CRL is still used, unless
    /// [`set_crls_required`](Self::set_crls_required) says otherwise.
    /// Node `crl`.
    pub fn set_crls(&mut self, path: impl AsRef<Path>) -> Result<()> {
        let path = path.as_ref();
        let bytes = read_file(path)?;
        self.add_crls(&bytes, &path.display().to_string())
    }

    /// Like [`set_crls`](Self::set_crls), from bytes.
    pub fn set_crls_bytes(&mut self, pem_or_der: &[u8]) -> Result<()> {
        self.add_crls(pem_or_der, "revocation lists (bytes)")
    }

    fn add_crls(&mut self, bytes: &[u8], label: &str) -> Result<()> {
        let crls = Revocation::parse(bytes, label)?;
        self.update(|d| {
            d.revocation.add(crls);
            Ok(())
        })
    }

    /// With `true`, every certificate of a peer's chain below the root
    /// must be covered by a CRL of its issuer given to
    /// [`set_crls`](Self::set_crls), and no CRL may have passed its
    /// `nextUpdate` time: a certificate no CRL covers, or an expired CRL,
    /// fails verification with
    /// [`CertificateProblem::RevocationUnchecked`](crate::CertificateProblem::RevocationUnchecked)
    /// naming it (fail closed, as curl `--crlfile` and OpenSSL's
    /// `X509_V_FLAG_CRL_CHECK_ALL` do). Default `false`: certificates
    /// whose issuer has no CRL pass, and expired CRLs are still used.
    /// It applies where this context verifies certificates: a client's
    /// connections, and a server's when it asks for client certificates;
    /// there, set without any CRL, the connection or bind fails with
    /// [`Error::Credentials`].
    pub fn set_crls_required(&mut self, required: bool) {
        let mut data = self.inner.data.clone();
        data.revocation.required = required;
        *self = SecurityContext::from_data(data);
    }

    /// Limits the TLS versions to `min..=max` (Node `minVersion` and
    /// `maxVersion`); the default is TLS 1.2 and 1.3. TLS 1.0 and 1.1 are
    /// [`Error::Unsupported`]: rustls does not implement them.
    pub fn set_protocol_versions(&mut self, min: TlsVersion, max: TlsVersion) -> Result<()> {
        let versions = crate::tls::params::versions(min, max)?;
        self.update(|d| {
            d.params.versions = Some(versions);
            Ok(())
        })
    }

    /// Limits the cipher suites to these, by IANA name
    /// (`TLS13_AES_128_GCM_SHA256`, `TLS_ECDHE_ECDSA_WITH_AES_128_GCM_SHA256`)
    /// or OpenSSL name (`TLS_AES_128_GCM_SHA256`,
    /// `ECDHE-ECDSA-AES128-GCM-SHA256`); an entry may hold several separated
    /// by `:` as in Node's `ciphers`. An unknown name is an error that lists
    /// the supported ones.
    pub fn set_cipher_suites<S: AsRef<str>>(&mut self, names: &[S]) -> Result<()> {
        let suites = crate::tls::params::cipher_suites(names)?;
        self.update(|d| {
            d.params.suites = Some(suites);
            Ok(())
        })
    }

    /// Limits the key exchange groups to these, most preferred first (Node
    /// `ecdhCurve`): `X25519MLKEM768`, `SECP256R1MLKEM768`, `X25519`,
    /// `secp256r1` (`P-256`), `secp384r1` (`P-384`), `MLKEM768`, `MLKEM1024`.
    /// The default prefers X25519MLKEM768, then X25519, P-256, P-384.
    pub fn set_key_exchange_groups<S: AsRef<str>>(&mut self, names: &[S]) -> Result<()> {
        let groups = crate::tls::params::kx_groups(names)?;
        self.update(|d| {
            d.params.groups = Some(groups);
            Ok(())
        })
    }

    /// Our own certificate chain, leaf first (empty if none is set).
    pub fn certificate_chain(&self) -> Vec<X509Certificate> {
        self.inner
            .data
            .chain
            .iter()
            .flat_map(|(c, _)| c.iter())
            .filter_map(|c| X509Certificate::from_der(c).ok())
            .collect()
    }
}

/// Pairs chain and key once both are set, checking that they match.
fn certify(d: &mut Data) -> Result<()> {
    d.certified = None;
    let (Some((chain, chain_label)), Some((key, key_label))) = (&d.chain, &d.key) else {
        return Ok(());
    };
    match CertifiedKey::from_der(chain.clone(), key.clone_key(), provider()) {
        Ok(mut ck) => {
            ck.ocsp = d.ocsp.clone();
            d.certified = Some(Arc::new(ck));
            Ok(())
        }
        Err(rustls::Error::InconsistentKeys(_)) => {
            let subject = X509Certificate::from_der(&chain[0])
                .map(|c| c.subject().to_owned())
                .unwrap_or_default();
            Err(Error::credentials(
                key_label,
                format!(
                    "the private key does not match the first certificate of the chain from \
                     '{chain_label}' ({subject}): use the key that was made with that certificate"
                ),
            ))
        }
        Err(e) => Err(Error::credentials(
            key_label,
            format!("cannot use the key with the chain from '{chain_label}': {e}"),
        )),
    }
}
