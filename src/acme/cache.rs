//! The cache directory: the account key, the certificate with its key,
//! the challenge certificates of validations under way, and the lock that
//! lets one server of a fleet order at a time. Files that hold keys are
//! readable by their owner only; every file is written whole to a
//! temporary name and renamed, so a reader sees the old file or the new
//! one, never half of one.

use std::fs;
use std::io::Write;
use std::path::{Path, PathBuf};
use std::time::{Duration, SystemTime};

use crate::crypto::sha256;
use crate::error::{Error, Result};
use crate::tls::certificate::hex;

/// The cache directory of one set of names at one CA.
#[derive(Debug, Clone)]
pub(crate) struct Cache {
    dir: PathBuf,
    /// The names, checked; the first is what the certificate's files are
    /// called.
    domains: Vec<String>,
    /// The account's file, one per CA directory URL.
    account: PathBuf,
    /// What names the CA's files: the first bytes of the SHA-256 of its
    /// directory URL, in hex. A certificate from one CA (staging) is never
    /// served for another (production).
    ca: String,
}

impl Cache {
    /// Opens (making it if need be, owner-only) `dir` for the checked
    /// names `domains` at the CA whose directory is `directory_url`.
    pub(crate) fn open(dir: &Path, domains: &[String], directory_url: &str) -> Result<Cache> {
        make_private_dir(dir)?;
        make_private_dir(&dir.join("challenges"))?;
        let hash = hex(&sha256(directory_url.as_bytes())[..8]);
        Ok(Cache {
            dir: dir.to_owned(),
            domains: domains.to_vec(),
            account: dir.join(format!("account-{hash}.key")),
            ca: hash,
        })
    }

    fn name(&self) -> &str {
        self.domains.first().map_or("certificate", String::as_str)
    }

    /// Whether `domain` is one of the names.
    pub(crate) fn is_domain(&self, domain: &str) -> bool {
        self.domains.iter().any(|d| d == domain)
    }

    /// A file of these names at this CA, with `extension`.
    fn own_file(&self, extension: &str) -> PathBuf {
        self.dir
            .join(format!("{}-{}.{extension}", self.name(), self.ca))
    }

    /// The certificate file: the private key (PKCS#8 PEM), then the chain.
    pub(crate) fn certificate_path(&self) -> PathBuf {
        self.own_file("pem")
    }

    fn lock_path(&self) -> PathBuf {
        self.own_file("lock")
    }

    fn retry_path(&self) -> PathBuf {
        self.own_file("retry")
    }

    /// When the fleet may order again after failures, and how many failed
    /// in a row: what the last server to fail wrote (`None`: no failure).
    pub(crate) fn read_retry(&self) -> Option<(SystemTime, u32)> {
        let text = String::from_utf8(read_optional(&self.retry_path()).ok()??).ok()?;
        let mut fields = text.split_whitespace();
        let at = fields.next()?.parse::<u64>().ok()?;
        let failures = fields.next()?.parse::<u32>().ok()?;
        Some((
            SystemTime::UNIX_EPOCH.checked_add(Duration::from_secs(at))?,
            failures,
        ))
    }

    /// Tells the fleet to wait until `at` (`failures` in a row).
    pub(crate) fn write_retry(&self, at: SystemTime, failures: u32) -> Result<()> {
        let secs = at
            .duration_since(SystemTime::UNIX_EPOCH)
            .unwrap_or_default()
            .as_secs();
        write_private(
            &self.retry_path(),
            format!("{secs} {failures}\n").as_bytes(),
        )
    }

    /// An order succeeded: no waiting.
    pub(crate) fn clear_retry(&self) {
        let _ = fs::remove_file(self.retry_path());
    }

    /// The challenge certificate (key, then certificate) of a validation
    /// of `domain` under way, at this CA. `domain` is one of the
    /// configured names, already checked to be a DNS name (no `/`, no
    /// `..`).
    pub(crate) fn challenge_path(&self, domain: &str) -> PathBuf {
        self.dir
            .join("challenges")
            .join(format!("{domain}-{}.pem", self.ca))
    }

    /// The account key's PKCS#8 DER, if there is one.
    pub(crate) fn read_account_key(&self) -> Result<Option<Vec<u8>>> {
        let Some(pem) = read_optional(&self.account)? else {
            return Ok(None);
        };
        let text = String::from_utf8_lossy(&pem);
        let (label, der) = pem_rfc7468::decode_vec(text.trim().as_bytes()).map_err(|e| {
            Error::credentials(
                self.account.display().to_string(),
                format!(
                    "the ACME account key is not PEM ({e}): remove the file to make a new account"
                ),
            )
        })?;
        if label != "PRIVATE KEY" {
            return Err(Error::credentials(
                self.account.display().to_string(),
                "the ACME account key is not a PKCS#8 PRIVATE KEY: remove the file to make a new \
                 account",
            ));
        }
        Ok(Some(der))
    }

    /// Keeps the account key (owner-only).
    pub(crate) fn write_account_key(&self, pkcs8: &[u8]) -> Result<()> {
        let pem = zeroize::Zeroizing::new(pem_for("PRIVATE KEY", pkcs8)?);
        write_private(&self.account, pem.as_bytes())
    }

    /// The certificate file's bytes, if there is one.
    pub(crate) fn read_certificate(&self) -> Result<Option<Vec<u8>>> {
        read_optional(&self.certificate_path())
    }

    /// Keeps a certificate: its key and chain, one file (owner-only).
    pub(crate) fn write_certificate(&self, key_and_chain: &[u8]) -> Result<()> {
        write_private(&self.certificate_path(), key_and_chain)
    }

    /// Keeps the challenge certificate for `domain` while its validation
    /// is under way.
    pub(crate) fn write_challenge(&self, domain: &str, key_and_cert: &[u8]) -> Result<()> {
        write_private(&self.challenge_path(domain), key_and_cert)
    }

    /// Removes the challenge certificate for `domain`.
    pub(crate) fn remove_challenge(&self, domain: &str) {
        let _ = fs::remove_file(self.challenge_path(domain));
    }

    /// The file system's clock: the modification time of a file just
    /// written in the directory, else this machine's.
    fn file_system_now(&self) -> SystemTime {
        let probe = self.dir.join(".clock");
        fs::write(&probe, b"")
            .and_then(|()| fs::metadata(&probe)?.modified())
            .unwrap_or_else(|_| SystemTime::now())
    }

    /// The lock that lets one server order at a time: `Ok(None)` while
    /// another holds it. A lock older than `stale` (its holder died: a
    /// living holder ends its order within the order timeout, shorter than
    /// `stale`) is taken over: moved aside under a name of its own, so
    /// that of two servers taking it over at once only one succeeds, and
    /// put back if what was moved is not the lock judged stale.
    pub(crate) fn try_lock(&self, stale: Duration) -> Result<Option<Lock>> {
        let path = self.lock_path();
        let token = random_token();
        for _ in 0..2 {
            match fs::OpenOptions::new()
                .write(true)
                .create_new(true)
                .open(&path)
            {
                Ok(mut file) => {
                    let _ = write!(file, "{token}");
                    return Ok(Some(Lock { path, token }));
                }
                Err(e) if e.kind() == std::io::ErrorKind::AlreadyExists => {
                    let judged = fs::read(&path).unwrap_or_default();
                    let stamped = fs::metadata(&path).and_then(|m| m.modified()).ok();
                    // Ages on the file system's clock (a network file
                    // system's server stamps both files), so that a
                    // machine whose clock is off neither takes over live
                    // locks nor waits for ever on a dead one.
                    let now = self.file_system_now();
                    let is_stale = stamped.is_some_and(|t| match now.duration_since(t) {
                        Ok(age) => age >= stale,
                        Err(ahead) => ahead.duration() >= stale,
                    });
                    if !is_stale {
                        return Ok(None);
                    }
                    let aside = path.with_extension(format!("lock.{}", random_token()));
                    if fs::rename(&path, &aside).is_err() {
                        return Ok(None); // another server moved it first
                    }
                    if fs::read(&aside).unwrap_or_default() != judged {
                        // A fresh lock was moved: put it back (unless yet
                        // another is there now) and wait.
                        let _ = fs::hard_link(&aside, &path);
                        let _ = fs::remove_file(&aside);
                        return Ok(None);
                    }
                    let _ = fs::remove_file(&aside);
                    log::warn!(
                        "acme: took over {}: its holder did not finish in {stale:?}",
                        path.display()
                    );
                }
                Err(e) => {
                    return Err(Error::File { path, source: e });
                }
            }
        }
        Ok(None)
    }
}

/// Random hex, naming a lock holder or a file of its own.
fn random_token() -> String {
    let mut bytes = [0u8; 12];
    let _ = crate::crypto::fill_random(&mut bytes);
    format!("{}-{}", std::process::id(), hex(&bytes))
}

/// Held while this server orders; removed when dropped, if it is still
/// this server's (not taken over meanwhile).
#[derive(Debug)]
pub(crate) struct Lock {
    path: PathBuf,
    token: String,
}

impl Drop for Lock {
    fn drop(&mut self) {
        if fs::read(&self.path).is_ok_and(|held| held == self.token.as_bytes()) {
            let _ = fs::remove_file(&self.path);
        }
    }
}

fn pem_for(label: &str, der: &[u8]) -> Result<String> {
    pem_rfc7468::encode_string(label, pem_rfc7468::LineEnding::LF, der)
        .map_err(|e| Error::credentials(label, format!("cannot encode as PEM: {e}")))
}

/// A key as PKCS#8 PEM.
pub(crate) fn key_pem(pkcs8: &[u8]) -> Result<String> {
    pem_for("PRIVATE KEY", pkcs8)
}

fn read_optional(path: &Path) -> Result<Option<Vec<u8>>> {
    match fs::read(path) {
        Ok(bytes) => Ok(Some(bytes)),
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => Ok(None),
        Err(e) => Err(Error::File {
            path: path.to_owned(),
            source: e,
        }),
    }
}

/// Makes `dir` (and its parents) if need be, and makes it the owner's
/// only (0700 on Unix), whoever made it: a directory others can write to
/// would let them plant files where keys are written. Changing the mode
/// fails unless the directory is this user's.
fn make_private_dir(dir: &Path) -> Result<()> {
    let file_error = |source| Error::File {
        path: dir.to_owned(),
        source,
    };
    let mut builder = fs::DirBuilder::new();
    builder.recursive(true);
    #[cfg(unix)]
    std::os::unix::fs::DirBuilderExt::mode(&mut builder, 0o700);
    builder.create(dir).map_err(file_error)?;
    #[cfg(unix)]
    {
        use std::os::unix::fs::PermissionsExt;
        let mode = fs::metadata(dir).map_err(file_error)?.permissions().mode();
        if mode & 0o077 != 0 {
            fs::set_permissions(dir, fs::Permissions::from_mode(0o700)).map_err(|e| {
                Error::credentials(
                    dir.display().to_string(),
                    format!(
                        "the ACME cache directory is open to other users (mode {:o}) and cannot \
                         be made private ({e}): use a directory of this user's own",
                        mode & 0o777
                    ),
                )
            })?;
        }
    }
    Ok(())
}

/// Writes `bytes` to a temporary file readable by the owner only, made
/// new under a name no one can guess (nothing planted is written
/// through), then renames it over `path`.
fn write_private(path: &Path, bytes: &[u8]) -> Result<()> {
    let mut tmp_name = path.as_os_str().to_owned();
    tmp_name.push(format!(".{}.tmp", random_token()));
    let tmp = PathBuf::from(tmp_name);
    let mut options = fs::OpenOptions::new();
    options.write(true).create_new(true);
    #[cfg(unix)]
    std::os::unix::fs::OpenOptionsExt::mode(&mut options, 0o600);
    let written = options.open(&tmp).and_then(|mut f| {
        f.write_all(bytes)?;
        f.sync_all()
    });
    if let Err(e) = written.and_then(|()| fs::rename(&tmp, path)) {
        let _ = fs::remove_file(&tmp);
        return Err(Error::io(
            format!(
                "cannot write {} in the ACME cache directory (is the disk full, or the \
                 directory not this user's?)",
                path.display()
            ),
            e,
        ));
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    fn temp_dir(tag: &str) -> PathBuf {
        let dir = std::env::temp_dir().join(format!("securenet-acme-{tag}-{}", std::process::id()));
        let _ = fs::remove_dir_all(&dir);
        dir
    }

    /// A cache for a.example at one CA, in a directory of the test's own.
    fn open(tag: &str) -> (PathBuf, Cache) {
        let dir = temp_dir(tag);
        let cache = Cache::open(&dir, &["a.example".to_owned()], "https://ca/dir").expect("open");
        (dir, cache)
    }

    #[test]
    fn files_are_private_and_replaced_whole() {
        let (dir, cache) = open("files");
        assert!(cache.read_certificate().expect("read").is_none());
        cache.write_certificate(b"one").expect("write");
        cache.write_certificate(b"two").expect("write");
        assert_eq!(
            cache.read_certificate().expect("read").as_deref(),
            Some(&b"two"[..])
        );
        #[cfg(unix)]
        {
            use std::os::unix::fs::PermissionsExt;
            let mode = |p: &Path| fs::metadata(p).expect("meta").permissions().mode() & 0o777;
            assert_eq!(mode(&cache.certificate_path()), 0o600);
            assert_eq!(mode(&dir), 0o700);
        }
        let names: Vec<_> = fs::read_dir(&dir)
            .expect("dir")
            .flatten()
            .map(|e| e.file_name())
            .collect();
        assert_eq!(names.len(), 2, "no temporary file left: {names:?}");
        let _ = fs::remove_dir_all(&dir);
    }

    #[test]
    fn one_lock_holder_at_a_time_and_a_stale_lock_is_taken_over() {
        let (dir, cache) = open("lock");
        let held = cache
            .try_lock(Duration::from_secs(60))
            .expect("lock")
            .expect("free");
        assert!(
            cache
                .try_lock(Duration::from_secs(60))
                .expect("lock")
                .is_none()
        );
        drop(held);
        let again = cache.try_lock(Duration::from_secs(60)).expect("lock");
        assert!(again.is_some());
        // A holder that died: its lock is older than `stale`.
        std::mem::forget(again);
        assert!(cache.try_lock(Duration::ZERO).expect("lock").is_some());
        let _ = fs::remove_dir_all(&dir);
    }

    #[test]
    fn the_account_key_round_trips_and_junk_is_named() {
        let (dir, cache) = open("account");
        assert!(cache.read_account_key().expect("read").is_none());
        cache
            .write_account_key(b"\x30\x03\x02\x01\x00")
            .expect("write");
        assert_eq!(
            cache.read_account_key().expect("read").as_deref(),
            Some(&b"\x30\x03\x02\x01\x00"[..])
        );
        fs::write(&cache.account, "junk").expect("junk");
        let err = cache.read_account_key().expect_err("junk");
        assert!(err.to_string().contains("account-"), "{err}");
        let _ = fs::remove_dir_all(&dir);
    }

    #[test]
    fn an_old_holder_does_not_remove_the_lock_of_the_one_that_took_over() {
        let (dir, cache) = open("takeover");
        let first = cache
            .try_lock(Duration::from_secs(60))
            .expect("lock")
            .expect("free");
        // The second server judges the first dead and takes over.
        let second = cache
            .try_lock(Duration::ZERO)
            .expect("lock")
            .expect("taken over");
        drop(first); // the first was alive after all and ends
        let third = cache.try_lock(Duration::from_secs(60)).expect("lock");
        assert!(
            third.is_none(),
            "a third server got the lock while the second held it"
        );
        drop(second);
        assert!(
            cache
                .try_lock(Duration::from_secs(60))
                .expect("lock")
                .is_some()
        );
        let _ = fs::remove_dir_all(&dir);
    }

    #[cfg(unix)]
    #[test]
    fn a_directory_open_to_others_is_made_private_and_planted_files_are_not_written_through() {
        use std::os::unix::fs::PermissionsExt;
        let dir = temp_dir("planted");
        fs::create_dir_all(&dir).expect("dir");
        fs::set_permissions(&dir, fs::Permissions::from_mode(0o777)).expect("chmod");
        let cache = Cache::open(&dir, &["a.example".to_owned()], "https://ca/dir").expect("open");
        let mode = |p: &Path| fs::metadata(p).expect("meta").permissions().mode() & 0o777;
        assert_eq!(mode(&dir), 0o700);
        // Every temporary name a writer might use, planted 0644 beforehand:
        // none is written through.
        let planted = dir.join(format!(
            "{}.{}.0.tmp",
            cache.certificate_path().display(),
            std::process::id()
        ));
        fs::write(&planted, b"").expect("plant");
        fs::set_permissions(&planted, fs::Permissions::from_mode(0o644)).expect("chmod");
        cache.write_certificate(b"key").expect("write");
        assert_eq!(mode(&cache.certificate_path()), 0o600);
        assert_eq!(
            fs::read(&planted).expect("planted"),
            b"",
            "the planted file got nothing"
        );
        let _ = fs::remove_dir_all(&dir);
    }

    #[test]
    fn files_are_per_ca_and_the_fleet_shares_its_back_off() {
        let dir = temp_dir("per-ca");
        let names = ["a.example".to_owned()];
        let staging = Cache::open(&dir, &names, "https://staging/dir").expect("open");
        let production = Cache::open(&dir, &names, "https://production/dir").expect("open");
        assert_ne!(staging.certificate_path(), production.certificate_path());
        staging.write_certificate(b"staging").expect("write");
        assert!(production.read_certificate().expect("read").is_none());
        assert!(production.read_retry().is_none());
        let at = SystemTime::UNIX_EPOCH + Duration::from_secs(2_000_000_000);
        production.write_retry(at, 3).expect("retry");
        let other_server = Cache::open(&dir, &names, "https://production/dir").expect("open");
        assert_eq!(other_server.read_retry(), Some((at, 3)));
        other_server.clear_retry();
        assert!(production.read_retry().is_none());
        let _ = fs::remove_dir_all(&dir);
    }

    #[test]
    fn a_dead_holders_lock_stamped_in_the_future_is_taken_over() {
        let (dir, cache) = open("future");
        let dead = cache
            .try_lock(Duration::from_secs(60))
            .expect("lock")
            .expect("free");
        std::mem::forget(dead);
        // Its holder's clock (or the server's) was a year ahead.
        let file = fs::File::options()
            .write(true)
            .open(cache.lock_path())
            .expect("open");
        file.set_modified(SystemTime::now() + Duration::from_secs(365 * 86_400))
            .expect("stamp");
        assert!(
            cache
                .try_lock(Duration::from_secs(60))
                .expect("lock")
                .is_some()
        );
        let _ = fs::remove_dir_all(&dir);
    }
}
