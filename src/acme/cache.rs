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

/// The cache directory of one set of names at one CA.
#[derive(Debug, Clone)]
pub(crate) struct Cache {
    dir: PathBuf,
    /// The names, checked; the first is what the certificate's files are
    /// called.
    domains: Vec<String>,
    /// The account's file, one per CA directory URL.
    account: PathBuf,
}

impl Cache {
    /// Opens (making it if need be, owner-only) `dir` for the checked
    /// names `domains` at the CA whose directory is `directory_url`.
    pub(crate) fn open(dir: &Path, domains: &[String], directory_url: &str) -> Result<Cache> {
        make_private_dir(dir)?;
        make_private_dir(&dir.join("challenges"))?;
        let hash: String = sha256(directory_url.as_bytes())[..8]
            .iter()
            .map(|b| format!("{b:02x}"))
            .collect();
        Ok(Cache {
            dir: dir.to_owned(),
            domains: domains.to_vec(),
            account: dir.join(format!("account-{hash}.key")),
        })
    }

    fn name(&self) -> &str {
        self.domains.first().map_or("certificate", String::as_str)
    }

    /// Whether `domain` is one of the names.
    pub(crate) fn is_domain(&self, domain: &str) -> bool {
        self.domains.iter().any(|d| d == domain)
    }

    /// The certificate file: the private key (PKCS#8 PEM), then the chain.
    pub(crate) fn certificate_path(&self) -> PathBuf {
        self.dir.join(format!("{}.pem", self.name()))
    }

    fn lock_path(&self) -> PathBuf {
        self.dir.join(format!("{}.lock", self.name()))
    }

    /// The challenge certificate (key, then certificate) of a validation
    /// of `domain` under way. `domain` is one of the configured names,
    /// already checked to be a DNS name (no `/`, no `..`).
    pub(crate) fn challenge_path(&self, domain: &str) -> PathBuf {
        self.dir.join("challenges").join(format!("{domain}.pem"))
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

    /// The lock that lets one server order at a time: `Ok(None)` while
    /// another holds it. A lock older than `stale` (its holder died, or
    /// hangs past its order timeout) is taken over.
    pub(crate) fn try_lock(&self, stale: Duration) -> Result<Option<Lock>> {
        let path = self.lock_path();
        for _ in 0..2 {
            match fs::OpenOptions::new()
                .write(true)
                .create_new(true)
                .open(&path)
            {
                Ok(mut file) => {
                    let _ = writeln!(file, "pid {}", std::process::id());
                    return Ok(Some(Lock { path }));
                }
                Err(e) if e.kind() == std::io::ErrorKind::AlreadyExists => {
                    let age = fs::metadata(&path)
                        .and_then(|m| m.modified())
                        .ok()
                        .and_then(|t| SystemTime::now().duration_since(t).ok());
                    if age.is_some_and(|a| a >= stale) {
                        log::warn!(
                            "acme: taking over {}: its holder has not finished in {stale:?}",
                            path.display()
                        );
                        let _ = fs::remove_file(&path);
                        continue;
                    }
                    return Ok(None);
                }
                Err(e) => {
                    return Err(Error::File { path, source: e });
                }
            }
        }
        Ok(None)
    }
}

/// Held while this server orders; removed when dropped.
#[derive(Debug)]
pub(crate) struct Lock {
    path: PathBuf,
}

impl Drop for Lock {
    fn drop(&mut self) {
        let _ = fs::remove_file(&self.path);
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

fn make_private_dir(dir: &Path) -> Result<()> {
    let mut builder = fs::DirBuilder::new();
    builder.recursive(true);
    #[cfg(unix)]
    std::os::unix::fs::DirBuilderExt::mode(&mut builder, 0o700);
    builder.create(dir).map_err(|e| Error::File {
        path: dir.to_owned(),
        source: e,
    })
}

/// Writes `bytes` to a temporary file readable by the owner only, then
/// renames it over `path`.
fn write_private(path: &Path, bytes: &[u8]) -> Result<()> {
    let file_error = |source| Error::File {
        path: path.to_owned(),
        source,
    };
    let mut tmp_name = path.as_os_str().to_owned();
    tmp_name.push(format!(".{}.tmp", std::process::id()));
    let tmp = PathBuf::from(tmp_name);
    let mut options = fs::OpenOptions::new();
    options.write(true).create(true).truncate(true);
    #[cfg(unix)]
    std::os::unix::fs::OpenOptionsExt::mode(&mut options, 0o600);
    let written = options.open(&tmp).and_then(|mut f| {
        f.write_all(bytes)?;
        f.sync_all()
    });
    if let Err(e) = written.and_then(|()| fs::rename(&tmp, path)) {
        let _ = fs::remove_file(&tmp);
        return Err(file_error(e));
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

    #[test]
    fn files_are_private_and_replaced_whole() {
        let dir = temp_dir("files");
        let cache = Cache::open(&dir, &["a.example".to_owned()], "https://ca/dir").expect("open");
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
        let dir = temp_dir("lock");
        let cache = Cache::open(&dir, &["a.example".to_owned()], "https://ca/dir").expect("open");
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
        let dir = temp_dir("account");
        let cache = Cache::open(&dir, &["a.example".to_owned()], "https://ca/dir").expect("open");
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
}
