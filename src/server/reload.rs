//! Files that rotate: a listener that reloads its certificate chain and
//! key, the OCSP response it staples and its session ticket keys from
//! files when their contents change (as ACME clients, OCSP fetchers and
//! the distribution of ticket keys replace them), checking at most every
//! interval, at accept time: no thread of its own. A bad new file leaves
//! what was in use in place and is reported.

use std::path::{Path, PathBuf};
use std::sync::Mutex;
use std::time::{Duration, Instant, SystemTime};

use zeroize::Zeroizing;

use crate::error::{Error, Result};
use crate::tls::certificate::sha256;
use crate::tls::context::SecurityContext;
use crate::tls::ocsp;
use crate::tls::pem::read_watched_file as read_file;
use crate::tls::tickets::TicketKeys;

/// The default interval between checks of the files.
pub const DEFAULT_RELOAD_INTERVAL: Duration = Duration::from_secs(60);

/// The files to watch, as `BindOptions` holds them.
#[derive(Clone, Debug)]
pub(crate) struct ReloadFiles {
    /// The certificate chain and its private key.
    pub(crate) pair: Option<(PathBuf, PathBuf)>,
    /// The OCSP response to staple.
    pub(crate) ocsp: Option<PathBuf>,
    /// The session ticket keys.
    pub(crate) tickets: Option<PathBuf>,
    pub(crate) every: Duration,
}

impl ReloadFiles {
    /// Whether there is any file to watch.
    pub(crate) fn any(&self) -> bool {
        self.pair.is_some() || self.ocsp.is_some() || self.tickets.is_some()
    }
}

/// What a file held when last read: the SHA-256 of its contents (`None`
/// if it could not be read, or is not watched). Contents, not
/// modification times: those tick coarsely, and a renewed certificate
/// often has the same size.
type Stamp = Option<[u8; 32]>;

/// A file's stamp, from what a read of it gave.
fn stamp(read: &Option<Result<impl AsRef<[u8]>>>) -> Stamp {
    let bytes = read.as_ref()?.as_ref().ok()?;
    Some(sha256(bytes.as_ref()))
}

#[derive(Clone, Copy, PartialEq, Eq)]
struct Stamps {
    chain: Stamp,
    key: Stamp,
    ocsp: Stamp,
    tickets: Stamp,
}

/// One read of each file watched (`None`: not watched). Each file is read
/// once per check: the bytes hashed are the bytes loaded, so a change
/// between two reads cannot be stamped without being loaded. Key bytes
/// are wiped when dropped.
struct Snapshot {
    chain: Option<Result<Vec<u8>>>,
    key: Option<Result<Zeroizing<Vec<u8>>>>,
    ocsp: Option<Result<Vec<u8>>>,
    tickets: Option<Result<Zeroizing<Vec<u8>>>>,
}

impl Snapshot {
    fn take(files: &ReloadFiles, read: &impl Fn(&Path) -> Result<Vec<u8>>) -> Snapshot {
        let secret = |path: &Path| read(path).map(Zeroizing::new);
        Snapshot {
            chain: files.pair.as_ref().map(|(chain, _)| read(chain)),
            key: files.pair.as_ref().map(|(_, key)| secret(key)),
            ocsp: files.ocsp.as_deref().map(read),
            tickets: files.tickets.as_deref().map(secret),
        }
    }

    fn stamps(&self) -> Stamps {
        Stamps {
            chain: stamp(&self.chain),
            key: stamp(&self.key),
            ocsp: stamp(&self.ocsp),
            tickets: stamp(&self.tickets),
        }
    }
}

/// A context with the OCSP file's response stapled, or none.
struct Stapled {
    context: SecurityContext,
    /// Why nothing is stapled, or what is wrong with what is.
    report: Option<Error>,
    stapled: bool,
}

/// `context` stapling what the OCSP file at `path` held (`read`) if
/// [`ocsp::judge`] lets it, else nothing.
fn staple(
    context: &SecurityContext,
    path: &Path,
    read: Result<Vec<u8>>,
    now: SystemTime,
) -> Result<Stapled> {
    let label = path.display().to_string();
    let (der, warning) = match read {
        Err(e) => (
            None,
            Some(format!(
                "cannot read the OCSP response, nothing is stapled until it can be read: {e}"
            )),
        ),
        Ok(bytes) => {
            let verdict = ocsp::judge(&bytes, context.leaf_der().unwrap_or_default(), now);
            (verdict.staple.then_some(bytes), verdict.warning)
        }
    };
    // A new response refused (or unreadable) leaves the one in use while
    // it still holds for this certificate: a fetcher's tryLater, a torn
    // write, must not take a good staple off (Must-Staple clients would
    // fail until the file changes again).
    let (der, warning) = match (der, context.stapled()) {
        (None, Some(old))
            if ocsp::judge(old, context.leaf_der().unwrap_or_default(), now).staple =>
        {
            (
                Some(old.to_vec()),
                warning.map(|w| {
                    format!("{w} (the response stapled before is kept while it is valid)")
                }),
            )
        }
        (der, _) => (der, warning),
    };
    let stapled = der.is_some();
    Ok(Stapled {
        context: context.with_staple(der, &label)?,
        report: warning.map(|w| Error::credentials(label, w)),
        stapled,
    })
}

struct State {
    next: Option<Instant>,
    stamps: Stamps,
    /// The context in use, which a reload copies with what changed.
    context: SecurityContext,
    /// When the response stapled from the OCSP file expires: then it is
    /// taken off, even if the file has not changed.
    staple_expires: Option<SystemTime>,
    /// What bind found wrong (with the OCSP file), reported at the first
    /// accept as reloads are.
    pending: Vec<Error>,
}

/// A listener's reloading of its files.
pub(crate) struct Reloader {
    files: ReloadFiles,
    /// The keys loaded from the ticket key file, which rotate in place.
    tickets: Option<TicketKeys>,
    state: Mutex<State>,
}

/// What a check found.
#[derive(Default)]
pub(crate) struct Found {
    /// A context to serve from now on, with what it changed (for the
    /// log); or why there is none (the one in use stays), to report.
    pub(crate) context: Option<Result<(SecurityContext, Vec<String>)>>,
    /// What to report besides: files that cannot be used, staples left
    /// out or wrong.
    pub(crate) reports: Vec<Error>,
    /// What changed besides the context, for the log.
    pub(crate) done: Vec<String>,
}

impl Reloader {
    /// At bind: reads the files, loads the ticket keys (a ticket key file
    /// that cannot be read or used is an error naming it) and staples the
    /// OCSP file's response to `context` if it may be (if not, that is
    /// reported at the first accept). Gives the context to serve.
    pub(crate) fn start(
        files: ReloadFiles,
        context: &SecurityContext,
    ) -> Result<(Reloader, SecurityContext)> {
        Reloader::start_with(files, context, read_file, SystemTime::now())
    }

    fn start_with(
        files: ReloadFiles,
        context: &SecurityContext,
        read: impl Fn(&Path) -> Result<Vec<u8>>,
        now: SystemTime,
    ) -> Result<(Reloader, SecurityContext)> {
        let snapshot = Snapshot::take(&files, &read);
        let stamps = snapshot.stamps();
        let tickets = match (&files.tickets, snapshot.tickets) {
            (Some(path), Some(bytes)) => Some(TicketKeys::from_file_bytes(
                &bytes?,
                &path.display().to_string(),
            )?),
            _ => None,
        };
        let mut pending = Vec::new();
        let context = match (&files.ocsp, snapshot.ocsp) {
            (Some(path), Some(read)) => {
                let stapled = staple(context, path, read, now)?;
                pending.extend(stapled.report);
                stapled.context
            }
            _ => context.clone(),
        };
        let state = State {
            next: Instant::now().checked_add(files.every),
            stamps,
            staple_expires: expiry(&files, &context),
            context: context.clone(),
            pending,
        };
        let reloader = Reloader {
            files,
            tickets,
            state: Mutex::new(state),
        };
        Ok((reloader, context))
    }

    /// The keys of the ticket key file, if one is watched.
    pub(crate) fn ticket_keys(&self) -> Option<&TicketKeys> {
        self.tickets.as_ref()
    }

    /// What to do now: reports left from bind, and, when the interval has
    /// passed, what changed in the files (new ticket keys are in use at
    /// once). `None` when there is nothing to do, or another thread is
    /// checking.
    pub(crate) fn due(&self) -> Option<Found> {
        self.due_with(read_file, SystemTime::now())
    }

    /// [`due`](Self::due), reading the files with `read`, at `now`.
    fn due_with(&self, read: impl Fn(&Path) -> Result<Vec<u8>>, now: SystemTime) -> Option<Found> {
        let mut state = self.state.try_lock().ok()?;
        let mut found = Found {
            reports: std::mem::take(&mut state.pending),
            ..Found::default()
        };
        let instant = Instant::now();
        if state.next.is_some_and(|next| instant >= next) {
            state.next = instant.checked_add(self.files.every);
            self.check(&mut state, &mut found, &read, now);
        }
        let any = found.context.is_some() || !found.reports.is_empty() || !found.done.is_empty();
        any.then_some(found)
    }

    /// Reads the files and loads what changed.
    fn check(
        &self,
        state: &mut State,
        found: &mut Found,
        read: &impl Fn(&Path) -> Result<Vec<u8>>,
        now: SystemTime,
    ) {
        let snapshot = Snapshot::take(&self.files, read);
        let stamps = snapshot.stamps();
        let before = std::mem::replace(&mut state.stamps, stamps);
        if stamps.tickets != before.tickets {
            self.rotate_tickets(snapshot.tickets, found);
        }
        let pair_changed = (stamps.chain, stamps.key) != (before.chain, before.key);
        let expired = state.staple_expires.is_some_and(|at| at < now);
        if !pair_changed && stamps.ocsp == before.ocsp && !expired {
            return;
        }
        let mut done = Vec::new();
        let base = match (&self.files.pair, snapshot.chain, snapshot.key) {
            (Some((chain_path, key_path)), Some(chain), Some(key)) if pair_changed => chain
                .and_then(|chain| {
                    let key = key?;
                    state
                        .context
                        .with_credentials([(chain_path, &chain), (key_path, &key)])
                })
                .inspect(|_| {
                    done.push(format!(
                        "reloaded the certificate from {} and {}",
                        chain_path.display(),
                        key_path.display()
                    ));
                }),
            _ => Ok(state.context.clone()),
        };
        let next = base.and_then(|base| match (&self.files.ocsp, snapshot.ocsp) {
            (Some(path), Some(read)) => {
                let stapled = staple(&base, path, read, now)?;
                found.reports.extend(stapled.report);
                if stapled.stapled {
                    done.push(format!(
                        "stapling the OCSP response from {}",
                        path.display()
                    ));
                }
                Ok(stapled.context)
            }
            _ => Ok(base),
        });
        found.context = Some(next.map(|c| (c, done)).map_err(|e| self.cannot_swap(e)));
    }

    /// Makes the ticket key file's new keys current, the keys in use
    /// before kept to decrypt; a file that cannot be used changes nothing.
    fn rotate_tickets(&self, read: Option<Result<Zeroizing<Vec<u8>>>>, found: &mut Found) {
        let (Some(path), Some(keys), Some(read)) = (&self.files.tickets, &self.tickets, read)
        else {
            return;
        };
        let label = path.display().to_string();
        match read.and_then(|bytes| keys.rotate_to(&bytes, &label)) {
            Ok(kept) => found.done.push(format!(
                "loaded new session ticket keys from {label}; {kept} earlier key(s) still decrypt"
            )),
            Err(e) => found.reports.push(Error::credentials(
                label,
                format!("cannot load new session ticket keys, the keys in use stay: {e}"),
            )),
        }
    }

    /// The report of a reload that cannot be used: the certificate (and
    /// staple) in use stay.
    pub(crate) fn cannot_swap(&self, e: Error) -> Error {
        match (&self.files.pair, &self.files.ocsp) {
            (Some((chain, key)), _) => Error::credentials(
                format!("{} and {}", chain.display(), key.display()),
                format!("cannot reload the certificate, the old one stays in use: {e}"),
            ),
            (None, Some(ocsp)) => Error::credentials(
                ocsp.display().to_string(),
                format!("cannot staple the new OCSP response, the old staple stays in use: {e}"),
            ),
            (None, None) => e,
        }
    }

    /// `context` is in use now (reloaded, or given to `set_context`):
    /// later reloads start from it.
    pub(crate) fn now_using(&self, context: &SecurityContext) {
        let mut state = crate::sync::lock(&self.state);
        state.staple_expires = expiry(&self.files, context);
        state.context = context.clone();
    }
}

/// When the response `context` staples expires, if an OCSP file is
/// watched (a staple set by hand is left alone).
fn expiry(files: &ReloadFiles, context: &SecurityContext) -> Option<SystemTime> {
    files.ocsp.as_ref()?;
    ocsp::next_update(context.stapled()?, context.leaf_der()?)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::X509Certificate;
    use crate::testing::TestPki;
    use crate::tls::ocsp::CertStatus;
    use crate::tls::ocsp::tests::response;

    struct Dir(PathBuf);

    impl Dir {
        fn new(name: &str) -> Dir {
            let dir = std::env::temp_dir().join(format!(
                "securenet-reload-unit-{name}-{}",
                std::process::id()
            ));
            std::fs::create_dir_all(&dir).expect("dir");
            Dir(dir)
        }

        fn files(&self) -> ReloadFiles {
            ReloadFiles {
                pair: Some((self.0.join("chain.pem"), self.0.join("key.pem"))),
                ocsp: None,
                tickets: None,
                every: Duration::ZERO,
            }
        }

        fn put(&self, pki: &TestPki) {
            std::fs::write(self.0.join("chain.pem"), pki.server_cert_pem()).expect("chain");
            std::fs::write(self.0.join("key.pem"), pki.server_key_pem()).expect("key");
        }
    }

    impl Drop for Dir {
        fn drop(&mut self) {
            let _ = std::fs::remove_dir_all(&self.0);
        }
    }

    fn leaf(pem: &str) -> X509Certificate {
        X509Certificate::from_pem(pem.as_bytes())
            .expect("pem")
            .remove(0)
    }

    /// The serial number of a leaf, as OCSP names it.
    fn serial(pem: &str) -> Vec<u8> {
        let hex = leaf(pem).serial_number().to_owned();
        (0..hex.len())
            .step_by(2)
            .map(|i| u8::from_str_radix(&hex[i..i + 2], 16).expect("hex"))
            .collect()
    }

    fn context(found: Found) -> SecurityContext {
        match found.context {
            Some(Ok((context, _))) => context,
            Some(Err(e)) => panic!("no context: {e}"),
            None => panic!("nothing changed"),
        }
    }

    #[test]
    fn a_reload_loads_the_bytes_it_hashed() {
        let (first, second) = (
            TestPki::new(&["localhost"]).expect("pki"),
            TestPki::new(&["localhost"]).expect("pki"),
        );
        let dir = Dir::new("hashed");
        dir.put(&first);
        let (reloader, _) = Reloader::start(dir.files(), &first.server_context()).expect("start");
        dir.put(&second);
        // Each file is emptied right after it is read, as by a writer
        // that truncates it to write it again: what loads must be what
        // was read and hashed, never a second read.
        let found = reloader
            .due_with(
                |path| {
                    let bytes = read_file(path)?;
                    std::fs::write(path, b"").expect("truncate");
                    Ok(bytes)
                },
                SystemTime::now(),
            )
            .expect("the files changed");
        let loaded = context(found);
        assert_eq!(
            loaded.certificate_chain()[0].serial_number(),
            leaf(second.server_cert_pem()).serial_number()
        );
        // Written again, the same: nothing new, and nothing was missed.
        dir.put(&second);
        assert!(reloader.due().is_none());
    }

    #[test]
    fn a_staple_is_taken_off_when_it_expires_though_its_file_did_not_change() {
        let pki = TestPki::new(&["localhost"]).expect("pki");
        let dir = Dir::new("expiry");
        dir.put(&pki);
        let ocsp = dir.0.join("ocsp.der");
        let files = ReloadFiles {
            ocsp: Some(ocsp.clone()),
            ..dir.files()
        };
        let now = SystemTime::now();
        let day = Duration::from_secs(86_400);
        let der = response(
            &serial(pki.server_cert_pem()),
            CertStatus::Good,
            now - day,
            Some(now + day),
        );
        std::fs::write(&ocsp, &der).expect("ocsp");
        let (reloader, ctx) = Reloader::start(files, &pki.server_context()).expect("start");
        assert_eq!(ctx.stapled(), Some(&der[..]), "stapled at bind");
        assert!(
            reloader.due_with(read_file, now).is_none(),
            "nothing changed"
        );
        let later = now + 2 * day;
        let found = reloader.due_with(read_file, later).expect("expired");
        assert!(
            found
                .reports
                .iter()
                .any(|e| e.to_string().contains("expired")),
            "reported"
        );
        let ctx = context(found);
        assert_eq!(ctx.stapled(), None, "taken off");
        reloader.now_using(&ctx);
        assert!(reloader.due_with(read_file, later).is_none(), "said once");
    }

    #[test]
    fn a_bad_staple_at_bind_is_reported_at_the_first_check_not_refused() {
        let pki = TestPki::new(&["localhost"]).expect("pki");
        let dir = Dir::new("bind");
        dir.put(&pki);
        let files = ReloadFiles {
            pair: None,
            ocsp: Some(dir.0.join("missing.der")),
            every: Duration::MAX,
            ..dir.files()
        };
        let (reloader, ctx) = Reloader::start(files, &pki.server_context()).expect("start");
        assert_eq!(ctx.stapled(), None);
        let found = reloader.due().expect("the report from bind");
        assert!(found.context.is_none());
        let e = found.reports[0].to_string();
        assert!(
            e.contains("missing.der") && e.contains("nothing is stapled"),
            "{e}"
        );
        assert!(reloader.due().is_none(), "reported once");
    }

    #[test]
    fn a_bad_ticket_key_file_at_bind_names_it() {
        let pki = TestPki::new(&["localhost"]).expect("pki");
        let dir = Dir::new("tickets");
        let path = dir.0.join("ticket.keys");
        std::fs::write(&path, [7u8; 47]).expect("keys");
        for file in [path.clone(), dir.0.join("missing.keys")] {
            let files = ReloadFiles {
                pair: None,
                tickets: Some(file.clone()),
                ..dir.files()
            };
            let e = Reloader::start(files, &pki.server_context())
                .err()
                .expect("refused");
            assert!(e.to_string().contains(&*file.display().to_string()), "{e}");
        }
    }
}
