//! Certificates that renew themselves: a listener that reloads its chain
//! and key from files when their contents change (as ACME clients replace
//! them), checking at most every interval, at accept time: no thread of
//! its own.
//! A bad new pair leaves the old certificate in place and is reported.

use std::path::{Path, PathBuf};
use std::sync::Mutex;
use std::time::{Duration, Instant};

use crate::error::Result;
use crate::tls::certificate::sha256;
use crate::tls::context::SecurityContext;

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

fn stamp(path: &Path) -> Stamp {
    std::fs::read(path).ok().map(|bytes| sha256(&bytes))
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
        let stamps = (stamp(&files.chain), stamp(&files.key));
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
        let mut state = self.state.try_lock().ok()?;
        let now = Instant::now();
        if state.next.is_none_or(|next| now < next) {
            return None;
        }
        state.next = now.checked_add(self.files.every);
        let stamps = (stamp(&self.files.chain), stamp(&self.files.key));
        if stamps == state.stamps {
            return None;
        }
        state.stamps = stamps;
        Some(
            state
                .context
                .with_credentials(&self.files.chain, &self.files.key),
        )
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
