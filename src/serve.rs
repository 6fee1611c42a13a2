//! Thread-per-connection serving: `SecureListener::serve`, the
//! `max_connections` bound on live streams, and per-connection error
//! reporting.

use std::fmt;
use std::io;
use std::net::SocketAddr;
use std::sync::{Arc, Condvar, Mutex};
use std::thread;

use crate::error::{Error, Result};
use crate::listener::SecureListener;
use crate::stream::SecureStream;

/// `on_client_error`: a connection's handshake or handler failed.
pub(crate) type ClientErrorFn = Arc<dyn Fn(&Error, SocketAddr) + Send + Sync>;

/// The serving settings of `BindOptions`.
#[derive(Clone, Default)]
pub(crate) struct ServeSettings {
    pub(crate) max_connections: Option<usize>,
    pub(crate) stack_size: Option<usize>,
    pub(crate) on_client_error: Option<ClientErrorFn>,
}

impl fmt::Debug for ServeSettings {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("ServeSettings")
            .field("max_connections", &self.max_connections)
            .field("thread_stack_size", &self.stack_size)
            .field("on_client_error", &self.on_client_error.is_some())
            .finish()
    }
}

/// Counts the live streams of a listener with `max_connections`.
pub(crate) struct Limiter {
    live: Mutex<usize>,
    freed: Condvar,
    max: usize,
}

/// Held by each stream; dropping it frees a place (no I/O).
pub(crate) struct Permit(Arc<Limiter>);

impl Limiter {
    pub(crate) fn new(max: usize) -> Arc<Limiter> {
        Arc::new(Limiter {
            live: Mutex::new(0),
            freed: Condvar::new(),
            max,
        })
    }

    /// Waits until fewer than `max` streams are alive, then takes a place.
    pub(crate) fn acquire(self: &Arc<Self>) -> Permit {
        let mut live = self.live.lock().unwrap_or_else(|e| e.into_inner());
        while *live >= self.max {
            live = self.freed.wait(live).unwrap_or_else(|e| e.into_inner());
        }
        *live += 1;
        Permit(self.clone())
    }
}

impl Drop for Permit {
    fn drop(&mut self) {
        let mut live = self.0.live.lock().unwrap_or_else(|e| e.into_inner());
        *live = live.saturating_sub(1);
        self.0.freed.notify_one();
    }
}

impl fmt::Debug for Permit {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("Permit")
    }
}

fn report(on_error: &Option<ClientErrorFn>, err: &Error, peer: SocketAddr) {
    match on_error {
        Some(f) => f(err, peer),
        None => eprintln!("securenet: connection from {peer}: {err}"),
    }
}

impl SecureListener {
    /// Serves forever, one thread per connection: each accepted stream's
    /// handshake runs in its own thread, then `handler` gets the stream. A
    /// failed handshake or a handler's error goes to
    /// [`BindOptions::on_client_error`](crate::BindOptions::on_client_error)
    /// (or standard error) and serving goes on. With
    /// [`max_connections`](crate::BindOptions::max_connections), accepting
    /// waits while that many streams are alive. Returns only if accepting
    /// fails for good (not for an aborted or reset connection).
    pub fn serve<F, E>(&self, handler: F) -> Result<()>
    where
        F: Fn(SecureStream) -> std::result::Result<(), E> + Send + Sync + 'static,
        E: Into<Error>,
    {
        let handler = Arc::new(handler);
        let settings = self.serve_settings().clone();
        loop {
            let (mut stream, peer) = match self.accept() {
                Ok(accepted) => accepted,
                Err(Error::Io { source, .. })
                    if matches!(
                        source.kind(),
                        io::ErrorKind::ConnectionAborted
                            | io::ErrorKind::ConnectionReset
                            | io::ErrorKind::Interrupted
                    ) =>
                {
                    continue;
                }
                Err(e) => return Err(e),
            };
            let handler = handler.clone();
            let on_error = settings.on_client_error.clone();
            let mut builder = thread::Builder::new().name(format!("securenet {peer}"));
            if let Some(size) = settings.stack_size {
                builder = builder.stack_size(size);
            }
            let on_spawn_error = settings.on_client_error.clone();
            let spawned = builder.spawn(move || {
                let result = stream
                    .handshake()
                    .and_then(|()| handler(stream).map_err(Into::into));
                if let Err(e) = result {
                    report(&on_error, &e, peer);
                }
            });
            if let Err(e) = spawned {
                report(
                    &on_spawn_error,
                    &Error::io("cannot start a thread for the connection", e),
                    peer,
                );
            }
        }
    }
}
