//! The ACME manager of a listener: a thread that keeps a certificate for
//! the names, obtained or renewed through the cache directory's lock,
//! picked up from the directory when another server renewed it, and
//! served through the listener's certificate source.

use std::path::Path;
use std::sync::{Arc, Condvar, Mutex, RwLock, Weak};
use std::thread;
use std::time::{Duration, Instant, SystemTime};

use rustls::sign::CertifiedKey;

use super::cache::Cache;
use super::challenge;
use super::http::Client;
use super::jws::AccountKey;
use super::options::AcmeOptions;
use super::order::{Orderer, Request};
use super::renewal::{ari_renew_at, default_renew_at};
use crate::crypto::sha256;
use crate::error::{Error, Result};
use crate::sync;
use crate::tls::certificate::X509Certificate;
use crate::tls::source::CertificateSource;

/// How often the cache directory is read for a certificate another server
/// wrote, at most.
const CACHE_POLL: Duration = Duration::from_secs(60);
/// How often a server waiting for another's order looks again.
const LOCK_POLL: Duration = Duration::from_secs(1);
/// The first wait after a failed order, doubled after each failure in a
/// row up to the last.
const FIRST_RETRY: Duration = Duration::from_secs(60);
const LAST_RETRY: Duration = Duration::from_secs(3600);
/// How often renewal information (RFC 9773) is asked for.
const ARI_POLL: Duration = Duration::from_secs(6 * 3600);
/// The longest order timeout followed (so deadlines never overflow).
const MAX_ORDER_TIMEOUT: Duration = Duration::from_secs(86_400);

/// The certificate being served.
struct Installed {
    certified: Arc<CertifiedKey>,
    leaf: X509Certificate,
    /// The SHA-256 of the cache file it came from.
    file: [u8; 32],
    renew_at: SystemTime,
}

/// What the manager thread and the listeners share.
struct Core {
    options: AcmeOptions,
    domains: Vec<String>,
    roots: Option<Vec<Vec<u8>>>,
    mac_key: Option<zeroize::Zeroizing<Vec<u8>>>,
    cache: Cache,
    current: RwLock<Option<Installed>>,
    stopped: Mutex<bool>,
    wake: Condvar,
}

/// A running manager: the certificate source of the listeners bound with
/// its options. Dropping the last one stops its thread (at its next
/// wait; a request under way ends within its timeout).
pub(crate) struct Acme {
    core: Arc<Core>,
}

impl std::fmt::Debug for Acme {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Acme")
            .field("domains", &self.core.domains)
            .finish_non_exhaustive()
    }
}

impl Drop for Acme {
    fn drop(&mut self) {
        *sync::lock(&self.core.stopped) = true;
        self.core.wake.notify_all();
    }
}

impl CertificateSource for Acme {
    fn current(&self) -> Option<Arc<CertifiedKey>> {
        sync::read(&self.core.current)
            .as_ref()
            .map(|i| i.certified.clone())
    }

    /// Read from the cache directory, so that a validation reaching any
    /// server of a fleet is answered. Only for a configured name: the
    /// path is built from our own name, never from the client's bytes.
    fn challenge(&self, server_name: &str) -> Option<Arc<CertifiedKey>> {
        let domain = self.core.domains.iter().find(|d| *d == server_name)?;
        let path = self.core.cache.challenge_path(domain);
        let bytes = std::fs::read(&path).ok()?;
        challenge::load_challenge(&bytes, &path).ok()
    }
}

/// The manager started by the first listener of an `AcmeOptions` (and its
/// clones), shared by the others while one of them lives.
#[derive(Clone, Debug, Default)]
pub(crate) struct Shared(Arc<Mutex<Weak<Acme>>>);

impl Shared {
    pub(crate) fn get_or_start(&self, options: &AcmeOptions) -> Result<Arc<Acme>> {
        let mut slot = sync::lock(&self.0);
        if let Some(running) = slot.upgrade() {
            return Ok(running);
        }
        let started = Acme::start(options)?;
        *slot = Arc::downgrade(&started);
        Ok(started)
    }
}

impl Acme {
    /// Checks the options, reads what the cache has (served from the first
    /// connection on), and starts the thread that obtains and renews.
    pub(crate) fn start(options: &AcmeOptions) -> Result<Arc<Acme>> {
        let domains = options.checked_domains()?;
        let roots = match &options.ca_certificates {
            Some(bytes) => Some(
                crate::tls::pem::parse_certificates(bytes, "AcmeOptions::ca_certificates")?
                    .into_iter()
                    .map(|c| c.as_ref().to_vec())
                    .collect(),
            ),
            None => None,
        };
        let mac_key = match &options.eab {
            Some((kid, mac)) => Some(zeroize::Zeroizing::new(decode_mac_key(mac).ok_or_else(
                || {
                    Error::invalid_input(
                        format!("external_account_binding({kid:?}, ...)"),
                        "the MAC key is not base64url: pass it as the CA gave it",
                    )
                },
            )?)),
            None => None,
        };
        let cache = Cache::open(&options.cache_dir, &domains, &options.directory)?;
        let core = Arc::new(Core {
            options: options.clone(),
            domains,
            roots,
            mac_key,
            cache,
            current: RwLock::new(None),
            stopped: Mutex::new(false),
            wake: Condvar::new(),
        });
        core.pick_up_cache();
        let thread_core = core.clone();
        thread::Builder::new()
            .name("securenet acme".into())
            .spawn(move || run(&thread_core))
            .map_err(|e| Error::io("cannot start the acme thread", e))?;
        Ok(Arc::new(Acme { core }))
    }
}

/// The MAC key's bytes: base64url, padded or not (CAs hand out both).
fn decode_mac_key(text: &str) -> Option<Vec<u8>> {
    use base64ct::{Base64Url, Base64UrlUnpadded, Encoding};
    let text = text.trim();
    Base64UrlUnpadded::decode_vec(text)
        .or_else(|_| Base64Url::decode_vec(text))
        .ok()
        .filter(|k| !k.is_empty())
}

impl Core {
    fn stopped(&self) -> bool {
        *sync::lock(&self.stopped)
    }

    /// Waits until `at` (or a stop); whether the manager still runs.
    fn wait_until(&self, at: Instant) -> bool {
        let guard = sync::lock(&self.stopped);
        !sync::wait_until(&self.wake, guard, Some(at), |stopped| *stopped)
    }

    fn renew_at(&self) -> Option<SystemTime> {
        sync::read(&self.current).as_ref().map(|i| i.renew_at)
    }

    fn report(&self, e: &Error) {
        match &self.options.on_error {
            Some(f) => f(e),
            None => log::error!("acme for {}: {e}", self.domains.join(", ")),
        }
    }

    /// Serves the cache's certificate if it is new here and covers every
    /// name. A file that does not load is reported and left alone.
    fn pick_up_cache(&self) {
        let bytes = match self.cache.read_certificate() {
            Ok(Some(bytes)) => bytes,
            Ok(None) => return,
            Err(e) => return self.report(&e),
        };
        let file = sha256(&bytes);
        if sync::read(&self.current)
            .as_ref()
            .is_some_and(|i| i.file == file)
        {
            return;
        }
        let path = self.cache.certificate_path();
        match self.install(&bytes, &path) {
            Ok(true) => {}
            Ok(false) => log::info!(
                "acme: {} does not name every one of {}: a new certificate is ordered",
                path.display(),
                self.domains.join(", ")
            ),
            Err(e) => self.report(&e),
        }
    }

    /// Serves a key and chain (the cache file's bytes); `false` if it
    /// does not cover every name.
    fn install(&self, bytes: &[u8], path: &Path) -> Result<bool> {
        let (certified, leaf) = challenge::load(bytes, path)?;
        let names = leaf.subject_alt_names();
        if !self
            .domains
            .iter()
            .all(|d| names.iter().any(|n| n.eq_ignore_ascii_case(d)))
        {
            return Ok(false);
        }
        let renew_at = default_renew_at(&leaf);
        log::info!(
            "acme: serving the certificate for {} valid until {:?} (renewed from {:?})",
            self.domains.join(", "),
            leaf.end_validity(),
            renew_at
        );
        if let Some(f) = &self.options.on_certificate {
            f(&leaf);
        }
        *sync::write(&self.current) = Some(Installed {
            certified,
            leaf,
            file: sha256(bytes),
            renew_at,
        });
        Ok(true)
    }

    /// One order: a new certificate in the cache and served.
    fn order(&self, client: &mut Option<Client>, key: &mut Option<AccountKey>) -> Result<()> {
        let timeout = self.options.order_timeout.min(MAX_ORDER_TIMEOUT);
        let deadline = Instant::now() + timeout;
        let client = match client {
            Some(c) => c,
            None => client.insert(self.connect()?),
        };
        let key = match key {
            Some(k) => k,
            None => key.insert(self.account_key()?),
        };
        let pause = |d: Duration| self.wait_until(Instant::now() + d);
        let request = Request {
            domains: &self.domains,
            contact: &self.options.contact,
            accept_terms: self.options.accept_terms,
            eab: self
                .options
                .eab
                .as_ref()
                .zip(self.mac_key.as_ref())
                .map(|((kid, _), mac)| (kid.as_str(), mac.as_slice())),
        };
        let bytes = Orderer {
            client,
            key,
            cache: &self.cache,
            deadline,
            pause: &pause,
        }
        .obtain(&request)?;
        let path = self.cache.certificate_path();
        // Checked before it is kept: a chain that does not load (or
        // names less than asked) must not replace a good file.
        if !self.install(&bytes, &path)? {
            return Err(super::http::protocol(format!(
                "the CA issued a certificate that does not name every one of {}",
                self.domains.join(", ")
            )));
        }
        self.cache.write_certificate(&bytes)
    }

    fn connect(&self) -> Result<Client> {
        Client::connect(
            &self.options.directory,
            self.roots.as_deref(),
            self.options.request_timeout,
        )
    }

    /// The account key from the cache, or a new one kept there.
    fn account_key(&self) -> Result<AccountKey> {
        if let Some(der) = self.cache.read_account_key()? {
            return AccountKey::from_pkcs8(&der, "the cached acme account key");
        }
        let key = AccountKey::generate()?;
        self.cache.write_account_key(key.pkcs8())?;
        Ok(key)
    }

    /// Asks the CA when to renew (RFC 9773), where it says: the time
    /// served moves earlier if the CA's window starts earlier.
    fn check_renewal_info(&self, client: &mut Option<Client>) -> Result<()> {
        let Some(leaf) = sync::read(&self.current).as_ref().map(|i| i.leaf.clone()) else {
            return Ok(());
        };
        let client = match client {
            Some(c) => c,
            None => client.insert(self.connect()?),
        };
        let Some(at) = ari_renew_at(client, &leaf)? else {
            return Ok(());
        };
        if let Some(i) = sync::write(&self.current).as_mut() {
            if i.leaf.der() == leaf.der() && at < i.renew_at {
                log::info!("acme: the CA asks for renewal from {at:?}");
                i.renew_at = at;
            }
        }
        Ok(())
    }
}

/// The manager thread.
fn run(core: &Core) {
    let mut client: Option<Client> = None;
    let mut key: Option<AccountKey> = None;
    let mut failures = 0u32;
    let mut retry_at: Option<SystemTime> = None;
    let mut ari_at = Instant::now();
    let stale = core.options.order_timeout.min(MAX_ORDER_TIMEOUT) + Duration::from_secs(60);
    while !core.stopped() {
        core.pick_up_cache();
        let now = SystemTime::now();
        let due = core.renew_at().is_none_or(|t| now >= t);
        let backing_off = retry_at.is_some_and(|t| now < t);
        let mut wait = CACHE_POLL;
        if due && !backing_off {
            match core.cache.try_lock(stale) {
                Ok(Some(lock)) => {
                    // Another server may have just renewed it.
                    core.pick_up_cache();
                    if core.renew_at().is_none_or(|t| SystemTime::now() >= t) {
                        match core.order(&mut client, &mut key) {
                            Ok(()) => {
                                failures = 0;
                                retry_at = None;
                            }
                            Err(Error::ShuttingDown) => return,
                            Err(e) => {
                                failures = failures.saturating_add(1);
                                retry_at = Some(next_try(failures, &e, SystemTime::now()));
                                core.report(&e);
                                // The next order reads the directory again.
                                client = None;
                            }
                        }
                    }
                    drop(lock);
                    continue;
                }
                Ok(None) => wait = LOCK_POLL,
                Err(e) => {
                    core.report(&e);
                    failures = failures.saturating_add(1);
                    retry_at = Some(next_try(failures, &e, now));
                }
            }
        }
        if !due && Instant::now() >= ari_at {
            ari_at = Instant::now() + ARI_POLL;
            if let Err(e) = core.check_renewal_info(&mut client) {
                log::debug!("acme: no renewal information: {e}");
            }
        }
        let until = |t: SystemTime| t.duration_since(SystemTime::now()).unwrap_or_default();
        if let Some(t) = core.renew_at().filter(|_| !due) {
            wait = wait.min(until(t));
        }
        if let Some(t) = retry_at.filter(|t| *t > SystemTime::now()) {
            wait = wait.min(until(t).max(LOCK_POLL));
        }
        if !core.wait_until(Instant::now() + wait) {
            return;
        }
    }
}

/// When to try again after `failures` failed orders in a row, the last
/// being `e`: the back-off, or later if the CA said so.
fn next_try(failures: u32, e: &Error, now: SystemTime) -> SystemTime {
    let shift = failures.saturating_sub(1).min(16);
    let backoff = FIRST_RETRY.saturating_mul(1 << shift).min(LAST_RETRY);
    let after = now + backoff;
    match e {
        Error::Acme {
            retry_after: Some(t),
            ..
        } if *t > after => *t,
        _ => after,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn retries_back_off_and_follow_the_ca() {
        let now = SystemTime::UNIX_EPOCH + Duration::from_secs(1_000_000);
        let e = crate::error::Error::Closed;
        assert_eq!(next_try(1, &e, now), now + FIRST_RETRY);
        assert_eq!(next_try(2, &e, now), now + 2 * FIRST_RETRY);
        assert_eq!(next_try(u32::MAX, &e, now), now + LAST_RETRY);
        let limited = super::super::http::acme_error(
            crate::error::AcmeErrorKind::RateLimited,
            "x".into(),
            None,
            Some(now + Duration::from_secs(7200)),
        );
        assert_eq!(next_try(1, &limited, now), now + Duration::from_secs(7200));
    }

    #[test]
    fn mac_keys_in_either_base64url_form() {
        assert_eq!(decode_mac_key("AQID").as_deref(), Some(&[1u8, 2, 3][..]));
        assert_eq!(decode_mac_key("AQI=").as_deref(), Some(&[1u8, 2][..]));
        assert_eq!(decode_mac_key("AQI").as_deref(), Some(&[1u8, 2][..]));
        assert!(decode_mac_key("not base64!").is_none());
        assert!(decode_mac_key("").is_none());
    }
}
