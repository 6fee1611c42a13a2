//! `TlsSession`: a TLS session kept for resumption within the process (Node's
//! `session` option, as far as rustls allows).

use std::fmt;
use std::sync::{Arc, Mutex};

use rustls::client::{
    ClientSessionMemoryCache, ClientSessionStore, Tls12ClientSessionValue, Tls13ClientSessionValue,
};
use rustls::pki_types::ServerName;

/// A TLS session taken from a connection by [`SecureStream::session`], to
/// resume with [`ConnectOptions::session`].
///
/// It is opaque and lives only in this process: rustls cannot export a
/// session as bytes (Node's `session` Buffer). A TLS 1.3 session is one
/// single-use ticket: it resumes once, shared by all clones; a TLS 1.2
/// session resumes any number of times.
///
/// **It resumes only what it was made for.** A resumed handshake checks no
/// certificate: the session carries the one verified when it was made. So
/// a session is offered only to a connect whose verification name (the
/// host, or [`ConnectOptions::server_name`]) is its
/// [`server_name`](Self::server_name), DNS names compared without regard to
/// case and IP addresses exactly; a connect to any other name ignores it
/// and does a full handshake, its certificate verified for its own name
/// (Go's crypto/tls does the same). And it resumes only through the same
/// `SecurityContext` with the same verification settings: rustls keeps the
/// verifier a session was accepted under and refuses it under another, so
/// a session accepted with
/// [`reject_unauthorized(false)`](crate::ConnectOptions::reject_unauthorized)
/// never resumes a verifying connect.
///
/// [`SecureStream::session`]: crate::SecureStream::session
/// [`ConnectOptions::session`]: crate::ConnectOptions::session
/// [`ConnectOptions::server_name`]: crate::ConnectOptions::server_name
#[derive(Clone)]
pub struct TlsSession {
    saved: Arc<Mutex<Saved>>,
    /// The name it was verified for, as rustls keys its session cache.
    name: ServerName<'static>,
    server_name: String,
}

enum Saved {
    Tls13(Option<Tls13ClientSessionValue>),
    Tls12(Tls12ClientSessionValue),
}

impl fmt::Debug for TlsSession {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("TlsSession")
            .field("server_name", &self.server_name)
            .field("resumable", &self.is_resumable())
            .finish()
    }
}

impl TlsSession {
    /// The server name the session was made with.
    pub fn server_name(&self) -> &str {
        &self.server_name
    }

    /// Whether it can still resume a connection (a TLS 1.3 ticket is spent
    /// by its first use).
    pub fn is_resumable(&self) -> bool {
        match &*crate::sync::lock(&self.saved) {
            Saved::Tls13(t) => t.is_some(),
            Saved::Tls12(_) => true,
        }
    }

    /// Takes the newest TLS 1.3 ticket (or the TLS 1.2 session) for `name`
    /// out of `store`.
    pub(crate) fn take_from(
        store: &ClientSessionMemoryCache,
        name: &ServerName<'static>,
    ) -> Option<TlsSession> {
        let saved = match store.take_tls13_ticket(name) {
            Some(ticket) => Saved::Tls13(Some(ticket)),
            None => Saved::Tls12(store.tls12_session(name)?),
        };
        Some(TlsSession {
            saved: Arc::new(Mutex::new(saved)),
            name: name.clone(),
            server_name: name.to_str().into_owned(),
        })
    }

    /// Whether the session was made for `name`: the same DNS name in any
    /// case (rustls's `DnsName` equality), or the same IP address.
    pub(crate) fn is_for(&self, name: &ServerName<'_>) -> bool {
        self.name == *name
    }

    /// Puts the session into `store` for `name`, where the next connection
    /// to `name` finds it first; nothing if it was made for another name
    /// (resuming it would skip the certificate check for `name`).
    pub(crate) fn put_into(&self, store: &ClientSessionMemoryCache, name: &ServerName<'static>) {
        if !self.is_for(name) {
            log::debug!(
                "securenet: the session for '{}' is not offered to '{}': a full handshake",
                self.server_name,
                name.to_str()
            );
            return;
        }
        match &mut *crate::sync::lock(&self.saved) {
            Saved::Tls13(ticket) => {
                if let Some(t) = ticket.take() {
                    store.insert_tls13_ticket(name.clone(), t);
                }
            }
            Saved::Tls12(s) => store.set_tls12_session(name.clone(), s.clone()),
        }
    }
}
