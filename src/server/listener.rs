//! `SecureListener`: a TLS server socket that accepts connections and
//! hands out streams whose handshake runs in the thread that uses them.

use std::borrow::Borrow;
use std::fmt;
use std::net::{SocketAddr, TcpListener};
use std::sync::{Arc, Mutex, RwLock, TryLockError};

use super::options::BindOptions;
use super::reload::Reloader;
use super::settings::ServeSettings;
use super::stop::{ACCEPT_NAP, ACCEPT_TICK, Shared, Stop, StopHandle};
use crate::error::{Error, Result};
use crate::net::address::ListenAddress;
use crate::net::limiter::Limiter;
use crate::net::transport::{Ops, Transport};
use crate::stream::SecureStream;
use crate::sync;
use crate::tls::context::SecurityContext;
use crate::tls::server_config::ServerSetup;

/// A TLS server socket: accepts TCP connections and hands out
/// [`SecureStream`]s whose handshake runs on first use, so each can be moved
/// to its own thread before any TLS work happens.
///
/// ```
/// use std::io::{Read, Write};
/// use securenet::{ConnectOptions, SecureListener, testing::TestPki};
///
/// # fn main() -> securenet::Result<()> {
/// let pki = TestPki::new(&["localhost"])?;
/// let listener = SecureListener::bind("127.0.0.1", 0, &pki.server_context())?;
/// let port = listener.port();
/// let server = std::thread::spawn(move || -> securenet::Result<()> {
///     let (mut stream, _peer) = listener.accept()?;
///     let mut buf = [0u8; 5];
///     stream.read_exact(&mut buf)?;
///     stream.write_all(&buf)?;
///     stream.close()
/// });
/// let mut client = ConnectOptions::new()
///     .context(pki.client_context())
///     .connect("localhost", port)?;
/// client.write_all(b"hello")?;
/// let mut echo = String::new();
/// client.read_to_string(&mut echo)?;
/// assert_eq!(echo, "hello");
/// server.join().expect("server thread")?;
/// # Ok(()) }
/// ```
pub struct SecureListener {
    listener: Arc<TcpListener>,
    setup: RwLock<Arc<ServerSetup>>,
    options: BindOptions,
    limiter: Option<Arc<Limiter>>,
    stop: Arc<Stop>,
    reload: Option<Reloader>,
    /// Held while a new setup is made and put in place (`set_context`, a
    /// reload), so that a reload never puts back a setup built from the
    /// context a `set_context` just replaced.
    swapping: Mutex<()>,
}

impl fmt::Debug for SecureListener {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("SecureListener")
            .field("listener", &self.listener)
            .field("options", &self.options)
            .finish()
    }
}

impl BindOptions {
    /// Makes the socket (`socket(2)`), sets its options, `bind(2)`s it to
    /// `address:port` (port 0 picks a free port) and `listen(2)`s.
    pub fn bind(
        &self,
        address: impl ListenAddress,
        port: u16,
        context: &SecurityContext,
    ) -> Result<SecureListener> {
        self.check_limits()?;
        let (options, context, reload) = self.prepare(context)?;
        let (listener, setup) = options.listen(address, port, &context)?;
        Ok(options.listener_on(listener, setup, reload, Shared::Own))
    }

    /// A listener on a socket that is already bound and listening: one
    /// handed down by a parent process (a graceful restart), by systemd
    /// socket activation ([`listen_fds`](crate::listen_fds)), or set up
    /// with `socket2`. The socket's own options stay as they are (these
    /// options' `backlog`, `v6_only` and `shared` are for `bind` only); the
    /// rest applies: TLS, timeouts, `max_connections`, the `serve` settings.
    /// The socket is made blocking, as `accept` expects.
    ///
    /// The socket is this listener's: stopping it ([`StopHandle`]) shuts
    /// the socket down. A socket that other processes hold too (inherited,
    /// socket activation) goes to [`from_fd`](Self::from_fd).
    ///
    /// A socket that is not listening yet is [`Error::InvalidInput`] (on
    /// Linux, Android and FreeBSD, which can tell).
    pub fn from_std(
        &self,
        listener: TcpListener,
        context: &SecurityContext,
    ) -> Result<SecureListener> {
        self.on_listening(listener, context, Shared::Own)
    }

    fn on_listening(
        &self,
        listener: TcpListener,
        context: &SecurityContext,
        shared: Shared,
    ) -> Result<SecureListener> {
        self.check_limits()?;
        let (options, context, reload) = self.prepare(context)?;
        let setup = ServerSetup::new(&context, &options.tls)?;
        let addr = listener
            .local_addr()
            .map_err(|e| Error::io("the socket given to from_std has no address", e))?;
        #[cfg(any(target_os = "android", target_os = "freebsd", target_os = "linux"))]
        {
            let listening = socket2::SockRef::from(&listener)
                .is_listener()
                .map_err(|e| Error::io(format!("cannot check that {addr} listens"), e))?;
            if !listening {
                return Err(Error::invalid_input(
                    addr.to_string(),
                    "the socket is bound but not listening: call listen(2) on it first (or \
                     let BindOptions::bind make it)",
                ));
            }
        }
        listener
            .set_nonblocking(false)
            .map_err(|e| Error::io(format!("cannot make {addr} blocking"), e))?;
        if shared == Shared::WithOthers && cfg!(any(target_os = "linux", target_os = "android")) {
            // Other processes accept on this very socket: stopping must not
            // shut it, so accept(2) wakes now and then to see a stop.
            socket2::SockRef::from(&listener)
                .set_read_timeout(Some(ACCEPT_TICK))
                .map_err(|e| Error::io(format!("cannot set an accept timeout on {addr}"), e))?;
        }
        Ok(options.listener_on(listener, setup, reload, shared))
    }

    /// [`from_std`](Self::from_std) on a descriptor: the socket a parent
    /// process passed, or one of [`listen_fds`](crate::listen_fds) (making
    /// the `OwnedFd` from its number is the caller's `unsafe` promise that
    /// the descriptor is theirs).
    ///
    /// Such a socket is shared: the service manager or the parent holds it
    /// too, and in a hand-over the next process accepts on it. Stopping
    /// this listener ([`StopHandle`]) therefore leaves the socket
    /// listening; on Linux and Android its `accept(2)` wakes every 200 ms
    /// to see the stop (the socket's `SO_RCVTIMEO`, which the other holders
    /// share, and which connections accepted from it start with:
    /// securenet's streams set their own timeouts). Elsewhere a connection
    /// to the socket wakes it, which may reach another holder instead:
    /// then the stop is seen at the next connection this process accepts.
    /// Drop the listener once stopped, so the socket is left to the others.
    #[cfg(unix)]
    pub fn from_fd(
        &self,
        fd: std::os::fd::OwnedFd,
        context: &SecurityContext,
    ) -> Result<SecureListener> {
        self.on_listening(TcpListener::from(fd), context, Shared::WithOthers)
    }

    /// These options and `context` as a listener starts with them: the
    /// files it watches read, the ticket key file's keys in the options,
    /// the OCSP file's response stapled (or not) in the context.
    fn prepare(
        &self,
        context: &SecurityContext,
    ) -> Result<(BindOptions, SecurityContext, Option<Reloader>)> {
        let mut options = self.clone();
        #[cfg(feature = "acme")]
        if let Some((acme, manager)) = &self.acme {
            options.tls.source = Some(manager.get_or_start(acme)?);
        }
        let files = self.reload_files();
        if !files.any() {
            return Ok((options, context.clone(), None));
        }
        let (reload, context) = Reloader::start(files, context)?;
        if let Some(keys) = reload.ticket_keys() {
            options.tls.ticket_keys = Some(keys.clone());
        }
        Ok((options, context, Some(reload)))
    }

    /// The listener of these (prepared) options on `listener`.
    fn listener_on(
        &self,
        listener: TcpListener,
        setup: Arc<ServerSetup>,
        reload: Option<Reloader>,
        shared: Shared,
    ) -> SecureListener {
        let listener = Arc::new(listener);
        let limiter = self.serve.max_connections.map(Limiter::new);
        SecureListener {
            stop: Stop::new(&listener, limiter.clone(), shared),
            listener,
            setup: RwLock::new(setup),
            options: self.clone(),
            limiter,
            reload,
            swapping: Mutex::new(()),
        }
    }
}

impl SecureListener {
    /// Binds with the default [`BindOptions`] (Dart `SecureServerSocket.bind`).
    pub fn bind(
        address: impl ListenAddress,
        port: u16,
        context: &SecurityContext,
    ) -> Result<SecureListener> {
        BindOptions::new().bind(address, port, context)
    }

    /// [`BindOptions::from_std`] with the default options: a listener on a
    /// socket that is already listening.
    pub fn from_std(listener: TcpListener, context: &SecurityContext) -> Result<SecureListener> {
        BindOptions::new().from_std(listener, context)
    }

    /// [`BindOptions::from_fd`] with the default options.
    #[cfg(unix)]
    pub fn from_fd(fd: std::os::fd::OwnedFd, context: &SecurityContext) -> Result<SecureListener> {
        BindOptions::new().from_fd(fd, context)
    }

    /// The port listened on (useful after binding port 0).
    pub fn port(&self) -> u16 {
        self.listener.local_addr().map(|a| a.port()).unwrap_or(0)
    }

    /// The address listened on.
    pub fn local_addr(&self) -> Result<SocketAddr> {
        self.listener
            .local_addr()
            .map_err(|e| Error::io("getsockname failed", e))
    }

    /// Waits for a TCP connection (`accept(2)`) and returns it at once, with
    /// its TLS handshake pending: the handshake runs in whichever thread
    /// first uses the stream, bounded by the handshake timeout, so a client
    /// that never speaks cannot stall `accept`. A connection that fails
    /// before it is handed out (reset at once) is skipped.
    ///
    /// With [`BindOptions::max_connections`], it first waits until fewer
    /// than that many streams from this listener are alive. Once the
    /// listener is stopped ([`stop_handle`](Self::stop_handle)), it fails
    /// with kind `NotConnected`.
    pub fn accept(&self) -> Result<(SecureStream, SocketAddr)> {
        self.accept_one(false).map_err(|e| match e {
            Accepted::Stopped => stopped(),
            Accepted::Failed(e) => Error::io("accept failed", e),
        })
    }

    /// One accepted connection. With `evict` (for `serve`), the connection
    /// is accepted first, and then, while `max_connections` are alive, the
    /// oldest connection still in its handshake is dropped to make room for
    /// it; without, accepting waits for a free place.
    pub(crate) fn accept_one(
        &self,
        evict: bool,
    ) -> std::result::Result<(SecureStream, SocketAddr), Accepted> {
        let mut permit = None;
        if let (Some(l), false) = (&self.limiter, evict) {
            permit = Some(l.acquire(false).ok_or(Accepted::Stopped)?);
        }
        // Counted until the connection is registered, so a shutdown sees it.
        let _accepting = self.stop.accepting();
        loop {
            if self.stop.is_stopped() {
                return Err(Accepted::Stopped);
            }
            let (sock, peer) = match self.listener.accept() {
                Ok(a) => a,
                Err(_) if self.stop.is_stopped() => return Err(Accepted::Stopped),
                // The accept timeout of a socket shared with others (or the
                // socket made non-blocking by another holder): look for a
                // stop, and accept again, never in a busy loop.
                Err(e) if self.stop.ticks() && e.kind() == std::io::ErrorKind::WouldBlock => {
                    self.stop.nap(ACCEPT_NAP);
                    continue;
                }
                Err(e) => return Err(Accepted::Failed(e)),
            };
            // A connection accepted as the stop came is served: the kernel
            // completed it, and dropping it would fail a client that did
            // nothing wrong (the stop's own wake-up connection, where there
            // is one, closes at once and is a mere health check).
            if sock.set_nodelay(true).is_err() {
                // Reset before we got to it: that connection only.
                continue;
            }
            if let (Some(l), true) = (&self.limiter, evict) {
                // Once stopped there is no place to wait for: the
                // connection is served beyond the limit.
                permit = l.acquire(true);
            }
            if let Some(reload) = &self.reload {
                self.reload_if_due(reload, peer);
            }
            let setup = sync::read(&self.setup).clone();
            let io = Transport::new(sock, Ops::tcp(), &[]);
            let mut stream = self
                .options
                .server_stream(io, setup, Some(peer), || format!("server {peer}"));
            stream.set_permit(permit);
            let closable = !self.options.serve.keep_open_on_shutdown;
            stream.set_watch(self.stop.registry.watch(stream.get_ref(), closable));
            return Ok((stream, peer));
        }
    }

    pub(crate) fn serve_settings(&self) -> &ServeSettings {
        &self.options.serve
    }

    pub(crate) fn limiter(&self) -> Option<&Arc<Limiter>> {
        self.limiter.as_ref()
    }

    pub(crate) fn stop_state(&self) -> &Arc<Stop> {
        &self.stop
    }

    /// A handle that stops [`serve`](Self::serve) and
    /// [`incoming`](Self::incoming) from another thread.
    pub fn stop_handle(&self) -> StopHandle {
        StopHandle {
            stop: self.stop.clone(),
        }
    }

    /// Replaces the certificate (and client authorities) for connections
    /// accepted from now on; existing connections keep theirs. For
    /// certificate rotation (Node `setSecureContext`). Fails, changing
    /// nothing, if the context has no usable certificate.
    pub fn set_context(&self, context: impl Borrow<SecurityContext>) -> Result<()> {
        let context = context.borrow();
        let _swapping = sync::lock(&self.swapping);
        let setup = ServerSetup::new(context, &self.options.tls)?;
        *sync::write(&self.setup) = setup;
        if let Some(reload) = &self.reload {
            reload.now_using(context);
        }
        Ok(())
    }

    /// Reloads the files that changed (see
    /// [`BindOptions::reload_certificate_files`],
    /// [`BindOptions::reload_ocsp_file`], [`BindOptions::ticket_keys_file`]);
    /// what cannot be used is reported with the address of the connection
    /// that came in, as a failed handshake is.
    fn reload_if_due(&self, reload: &Reloader, peer: SocketAddr) {
        // Another thread is swapping: it will see the files, or the next
        // check will.
        let _swapping = match self.swapping.try_lock() {
            Ok(guard) => guard,
            Err(TryLockError::Poisoned(poisoned)) => poisoned.into_inner(),
            Err(TryLockError::WouldBlock) => return,
        };
        let Some(found) = reload.due() else {
            return;
        };
        let report = |e: &Error| match &self.options.serve.on_client_error {
            Some(report) => report(e, peer, peer),
            None => log::warn!("{e}"),
        };
        if let Some(loaded) = found.context {
            let swapped = loaded.and_then(|(context, done)| {
                let setup = ServerSetup::new(&context, &self.options.tls)
                    .map_err(|e| reload.cannot_swap(e))?;
                *sync::write(&self.setup) = setup;
                reload.now_using(&context);
                Ok(done)
            });
            match swapped {
                Ok(done) => done.iter().for_each(|line| log::info!("{line}")),
                Err(e) => report(&e),
            }
        }
        found.reports.iter().for_each(report);
        found.done.iter().for_each(|line| log::info!("{line}"));
    }
}

/// Why no connection was accepted.
pub(crate) enum Accepted {
    /// The listener was stopped.
    Stopped,
    /// `accept(2)` failed.
    Failed(std::io::Error),
}

/// The error of `accept` on a stopped listener.
pub(crate) fn stopped() -> Error {
    Error::io(
        "the listener was stopped (StopHandle::stop): it accepts no more connections",
        std::io::ErrorKind::NotConnected.into(),
    )
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn one_server_setup_per_context_and_options() {
        let pki = crate::testing::TestPki::new(&["localhost"]).expect("pki");
        let ctx = pki.server_context();
        let a = ServerSetup::new(&ctx, &BindOptions::new().tls).expect("setup");
        let b = ServerSetup::new(&ctx.clone(), &BindOptions::new().backlog(7).tls).expect("setup");
        assert!(
            Arc::ptr_eq(&a, &b),
            "built once, shared by listeners of the context"
        );
        let c = ServerSetup::new(
            &ctx,
            &BindOptions::new().require_client_certificate(true).tls,
        )
        .expect("setup");
        assert!(!Arc::ptr_eq(&a, &c));
    }
}
