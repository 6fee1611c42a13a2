//! Certificates that renew themselves: a listener that reloads its chain
//! and key from files when their contents change (as ACME clients replace
//! them), checking at most every interval, at accept time: no thread of
//! its own.
//! A bad new pair leaves the old certificate in place and is reported.

use std::path::{Path, PathBuf};
use std::sync::Mutex;
use std::time::{Duration, Instant};

use zeroize::Zeroizing;

use crate::error::Result;
use crate::tls::certificate::sha256;
use crate::tls::context::SecurityContext;
use crate::tls::pem::read_file;

/// The default interval between checks of the files.
pub const DEFAULT_RELOAD_INTERVAL: Duration = Duration::from_secs(60);

/// The files to reload from, as `BindOptions` holds them.
#[derive(Clone, Debug)]
pub(crate) struct ReloadFiles {
    pub(crate) chain: PathBuf,
    pub(crate) key: PathBuf,
    pub(crate) every: Duration,
}

/// What a file held when last read: the SHA-256 of its contents (`None`
/// if it could not be read). Contents, not modification times: those tick
/// coarsely, and a renewed certificate often has the same size.
type Stamp = Option<[u8; 32]>;

/// A file's stamp, from what a read of it gave.
fn stamp(read: &Result<impl AsRef<[u8]>>) -> Stamp {
    read.as_ref().ok().map(|bytes| sha256(bytes.as_ref()))
}

struct State {
    next: Option<Instant>,
    stamps: (Stamp, Stamp),
    /// The context in use, which a reload copies with the new pair.
    context: SecurityContext,
}

/// A listener's reloading of its certificate.
pub(crate) struct Reloader {
    files: ReloadFiles,
    state: Mutex<State>,
}

impl Reloader {
    pub(crate) fn new(files: ReloadFiles, context: &SecurityContext) -> Reloader {
        let stamps = (
            stamp(&read_file(&files.chain)),
            stamp(&read_file(&files.key).map(Zeroizing::new)),
        );
        Reloader {
            state: Mutex::new(State {
                next: Instant::now().checked_add(files.every),
                stamps,
                context: context.clone(),
            }),
            files,
        }
    }

    /// When the interval has passed and the files changed: the context
    /// with the new pair, or why it cannot be used (the old one stays).
    /// `None` when there is nothing to do, or another thread is checking.
    pub(crate) fn due(&self) -> Option<Result<SecurityContext>> {
        self.due_with(read_file)
    }

    /// [`due`](Self::due), reading the files with `read`.
    fn due_with(&self, read: impl Fn(&Path) -> Result<Vec<u8>>) -> Option<Result<SecurityContext>> {
        let mut state = self.state.try_lock().ok()?;
        let now = Instant::now();
        if state.next.is_none_or(|next| now < next) {
            return None;
        }
        state.next = now.checked_add(self.files.every);
        // Each file read once: the bytes hashed are the bytes loaded, so a
        // change between two reads cannot be stamped without being loaded.
        // The key's bytes are wiped when dropped.
        let chain = read(&self.files.chain);
        let key = read(&self.files.key).map(Zeroizing::new);
        let stamps = (stamp(&chain), stamp(&key));
        if stamps == state.stamps {
            return None;
        }
        state.stamps = stamps;
        Some(chain.and_then(|chain| {
            let key = key?;
            state
                .context
                .with_credentials([(&self.files.chain, &chain), (&self.files.key, &key)])
        }))
    }

    /// `context` is in use now (reloaded, or given to `set_context`):
    /// later reloads start from it.
    pub(crate) fn now_using(&self, context: &SecurityContext) {
        if let Ok(mut state) = self.state.lock() {
            state.context = context.clone();
        }
    }

    /// The files, for messages.
    pub(crate) fn files(&self) -> &ReloadFiles {
        &self.files
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::X509Certificate;
    use crate::testing::TestPki;

    struct Dir(PathBuf);

    impl Drop for Dir {
        fn drop(&mut self) {
            let _ = std::fs::remove_dir_all(&self.0);
        }
    }

    fn serial(pem: &str) -> String {
        X509Certificate::from_pem(pem.as_bytes()).expect("pem")[0]
            .serial_number()
            .to_owned()
    }

    #[test]
    fn a_reload_loads_the_bytes_it_hashed() {
        let (first, second) = (
            TestPki::new(&["localhost"]).expect("pki"),
            TestPki::new(&["localhost"]).expect("pki"),
        );
        let dir =
            Dir(std::env::temp_dir().join(format!("securenet-reload-unit-{}", std::process::id())));
        std::fs::create_dir_all(&dir.0).expect("dir");
        let files = ReloadFiles {
            chain: dir.0.join("chain.pem"),
            key: dir.0.join("key.pem"),
            every: Duration::ZERO,
        };
        let put = |pki: &TestPki| {
            std::fs::write(&files.chain, pki.server_cert_pem()).expect("chain");
            std::fs::write(&files.key, pki.server_key_pem()).expect("key");
        };
        put(&first);
        let reloader = Reloader::new(files.clone(), &first.server_context());
        put(&second);
        // Each file is emptied right after it is read, as by a writer
        // that truncates it to write it again: what loads must be what
        // was read and hashed, never a second read.
        let loaded = reloader
            .due_with(|path| {
                let bytes = read_file(path)?;
                std::fs::write(path, b"").expect("truncate");
                Ok(bytes)
            })
            .expect("the files changed")
            .expect("the pair that was read loads");
        let leaf = &loaded.certificate_chain()[0];
        assert_eq!(leaf.serial_number(), serial(second.server_cert_pem()));
        // Written again, the same: nothing new, and nothing was missed.
        put(&second);
        assert!(reloader.due().is_none());
    }
}
