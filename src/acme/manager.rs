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
/// How often renewal information (RFC 9773) is asked for, and when
/// first after a start.
const ARI_POLL: Duration = Duration::from_secs(6 * 3600);
const ARI_FIRST: Duration = Duration::from_secs(3600);
/// The longest a CA's `Retry-After` is followed: rate limits reset
/// within a week.
const MAX_RETRY_AFTER: Duration = Duration::from_secs(7 * 86_400);
/// How much older than the order timeout a lock must be to be taken
/// over: every request of an order ends by the order's deadline.
const LOCK_MARGIN: Duration = Duration::from_secs(60);
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
        let domains = options.check()?;
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
            .spawn(move || {
                // A bug must not end renewals for good: the manager starts
                // again after a pause (a stop still ends it).
                while std::panic::catch_unwind(std::panic::AssertUnwindSafe(|| run(&thread_core)))
                    .is_err()
                {
                    log::error!("acme: the manager panicked; it starts again in a minute");
                    if !thread_core.wait_until(Instant::now() + FIRST_RETRY) {
                        break;
                    }
                }
            })
            .map_err(|e| Error::io("cannot start the acme thread", e))?;
        Ok(Arc::new(Acme { core }))
    }
}

/// Runs a user's callback; a panic in it is logged, not passed on.
fn guarded(name: &str, f: impl FnOnce()) {
    if std::panic::catch_unwind(std::panic::AssertUnwindSafe(f)).is_err() {
        log::error!("acme: the {name} callback panicked; renewals go on");
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

    /// A failure, to `on_error` or the log. A callback that panics is
    /// logged, and the manager goes on (renewals must not end with it).
    fn report(&self, e: &Error) {
        match &self.options.on_error {
            Some(f) => guarded("on_error", || f(e)),
            None => log::error!("acme for {}: {e}", self.domains.join(", ")),
        }
    }

    /// Serves the cache's certificate if it covers every name and was
    /// issued later than the one served (or ends later): a file never
    /// takes the served certificate back to an older one (a write of a
    /// renewal that failed, another server's stale copy). A file that does
    /// not load is reported and left alone.
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
        match self.check(&bytes, &path) {
            Ok(Some(new)) => {
                // Issued later (a renewal, even one with a shorter life),
                // or ending later.
                let newer = sync::read(&self.current).as_ref().is_none_or(|i| {
                    new.leaf.start_validity() > i.leaf.start_validity()
                        || new.leaf.end_validity() > i.leaf.end_validity()
                });
                if newer {
                    self.serve(new);
                }
            }
            Ok(None) => log::info!(
                "acme: {} does not name every one of {}: a new certificate is ordered",
                path.display(),
                self.domains.join(", ")
            ),
            Err(e) => self.report(&e),
        }
    }

    /// A key and chain (a cache file's bytes) ready to serve; `None` if it
    /// does not cover every name.
    fn check(&self, bytes: &[u8], path: &Path) -> Result<Option<Installed>> {
        let (certified, leaf) = challenge::load(bytes, path)?;
        let names = leaf.subject_alt_names();
        if !self
            .domains
            .iter()
            .all(|d| names.iter().any(|n| n.eq_ignore_ascii_case(d)))
        {
            return Ok(None);
        }
        let renew_at = default_renew_at(&leaf);
        Ok(Some(Installed {
            certified,
            leaf,
            file: sha256(bytes),
            renew_at,
        }))
    }

    /// Serves `new` from the next handshake on.
    fn serve(&self, new: Installed) {
        log::info!(
            "acme: serving the certificate for {} valid until {:?} (renewed from {:?})",
            self.domains.join(", "),
            new.leaf.end_validity(),
            new.renew_at
        );
        if let Some(f) = &self.options.on_certificate {
            guarded("on_certificate", || f(&new.leaf));
        }
        *sync::write(&self.current) = Some(new);
    }

    /// One order: a new certificate in the cache and served.
    fn order(&self, client: &mut Option<Client>, key: &mut Option<AccountKey>) -> Result<()> {
        let timeout = self.options.order_timeout.min(MAX_ORDER_TIMEOUT);
        let deadline = Instant::now() + timeout;
        let client = match client {
            Some(c) => c,
            None => client.insert(self.connect(Some(deadline))?),
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
            key_type: self.options.key_type,
            replaces: sync::read(&self.current)
                .as_ref()
                .and_then(|i| super::renewal::cert_id(i.leaf.der())),
        };
        client.deadline = Some(deadline);
        let obtained = Orderer {
            client: &mut *client,
            key,
            cache: &self.cache,
            deadline,
            pause: &pause,
        }
        .obtain(&request);
        client.deadline = None;
        let bytes = obtained?;
        let path = self.cache.certificate_path();
        // Checked before it is kept: a chain that does not load (or
        // names less than asked) must not replace a good file.
        let Some(new) = self.check(&bytes, &path)? else {
            return Err(super::http::protocol(format!(
                "the CA issued a certificate that does not name every one of {}",
                self.domains.join(", ")
            )));
        };
        // Kept first, then served; if it cannot be kept it is served all
        // the same (the older file does not replace it) and the failure
        // is reported.
        let kept = self.cache.write_certificate(&bytes);
        self.serve(new);
        kept
    }

    /// A client of the CA, its directory read by `deadline` if given.
    fn connect(&self, deadline: Option<Instant>) -> Result<Client> {
        Client::connect(
            &self.options.directory,
            self.roots.as_deref(),
            self.options.request_timeout,
            deadline,
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
            None => client.insert(self.connect(None)?),
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
    // When this server may order again after failures (its own, or the
    // fleet's through the cache directory).
    let mut retry_at: Option<SystemTime> = None;
    // Renewal information is first asked for a while after the start: a
    // restart with a certificate that is not due talks to no CA.
    let mut ari_at = Instant::now() + ARI_FIRST;
    let stale = core.options.order_timeout.min(MAX_ORDER_TIMEOUT) + LOCK_MARGIN;
    while !core.stopped() {
        core.pick_up_cache();
        let now = SystemTime::now();
        let due = core.renew_at().is_none_or(|t| now >= t);
        let backing_off = retry_at.is_some_and(|t| now < t);
        let mut wait = CACHE_POLL;
        if due && !backing_off {
            match core.cache.try_lock(stale) {
                Ok(Some(lock)) => {
                    retry_at = core.order_under_lock(&mut client, &mut key);
                    drop(lock);
                    continue;
                }
                Ok(None) => wait = LOCK_POLL,
                Err(e) => {
                    core.report(&e);
                    retry_at = Some(now + FIRST_RETRY);
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

impl Core {
    /// With the fleet's lock held: orders if the certificate is still due
    /// and the fleet is not backing off. When this server may try again
    /// (`None`: not before the certificate is due).
    fn order_under_lock(
        &self,
        client: &mut Option<Client>,
        key: &mut Option<AccountKey>,
    ) -> Option<SystemTime> {
        // Another server may have just renewed it, or failed.
        self.pick_up_cache();
        let now = SystemTime::now();
        if self.renew_at().is_some_and(|t| now < t) {
            return None;
        }
        // Another server's failure: wait as it was told (at most a week
        // from now, whatever its clock said).
        let fleet = self.cache.read_retry();
        if let Some((at, _)) = fleet.filter(|(at, _)| now < *at) {
            let at = at.min(now + MAX_RETRY_AFTER);
            log::info!("acme: another server's order failed; the next is tried at {at:?}");
            return Some(at);
        }
        let failures = fleet.map_or(0, |(_, n)| n);
        let result = self.order(client, key).and_then(|()| {
            // A certificate due at once (a clock far ahead, a CA issuing
            // for less than it takes to renew) must not make the next
            // order follow at once.
            match self.renew_at() {
                Some(t) if t > SystemTime::now() => Ok(()),
                _ => Err(super::http::protocol(
                    "the CA issued a certificate that is already due for renewal: check this \
                     machine's clock"
                        .into(),
                )),
            }
        });
        match result {
            Ok(()) => {
                self.cache.clear_retry();
                None
            }
            Err(Error::ShuttingDown) => None,
            Err(e) => {
                let failures = failures.saturating_add(1);
                let at = next_try(failures, &e, SystemTime::now());
                if let Err(w) = self.cache.write_retry(at, failures) {
                    self.report(&w);
                }
                self.report(&e);
                // The next order reads the directory again.
                *client = None;
                Some(at)
            }
        }
    }
}

/// When to try again after `failures` failed orders in a row, the last
/// being `e`: the back-off, or later if the CA said so (up to
/// [`MAX_RETRY_AFTER`]: a CA's date far off does not stop renewals).
fn next_try(failures: u32, e: &Error, now: SystemTime) -> SystemTime {
    let shift = failures.saturating_sub(1).min(16);
    let backoff = FIRST_RETRY.saturating_mul(1 << shift).min(LAST_RETRY);
    let after = now + backoff;
    match e {
        Error::Acme {
            retry_after: Some(t),
            ..
        } if *t > after => (*t).min(now + MAX_RETRY_AFTER),
        _ => after,
    }
}

#[cfg(test)]
mod tests;
