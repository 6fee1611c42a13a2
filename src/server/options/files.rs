//! `BindOptions` for the files a listener re-reads while it serves: the
//! certificate pair, the OCSP response, the session ticket keys.

use std::path::Path;
use std::time::Duration;

use super::BindOptions;
use crate::server::reload::ReloadFiles;

impl BindOptions {
    /// Encrypts session tickets with the keys in this file, as
    /// [`TicketKeys::from_file`] reads it (keys of 48 bytes, the current
    /// one first), and reads it again when it changes: rotating is writing
    /// the new file on every server (nginx's `ssl_session_ticket_key`
    /// reloaded, Go's `SetSessionTicketKeys` called for you). Write it
    /// aside and rename it over the old one.
    ///
    /// The file is read at bind: one that cannot be read or used fails
    /// `bind` with an error naming it. Then, at accept time, at most every
    /// [`certificate_reload_interval`](Self::certificate_reload_interval)
    /// (no thread of its own), it is read and compared by contents with
    /// what it held. On a change its keys are the ones in use at once, and
    /// up to [`DEFAULT_TICKET_KEY_WINDOW`] of the keys in use before that
    /// it does not hold are kept to decrypt, so tickets issued before
    /// still resume. A new file that cannot be read or used (cut short
    /// mid-write, not a multiple of 48 bytes) changes nothing and is
    /// reported to [`on_client_error`](Self::on_client_error) with the
    /// address of the connection that triggered the check (or the `log`
    /// crate at `warn`); it is tried again when it changes again.
    ///
    /// As with [`ticket_keys`](Self::ticket_keys), which it replaces, a
    /// ticket resumes only under the client-certificate policy it was made
    /// under. Each listener bound with these options loads the file itself
    /// (its own count of tickets per key: see [`MAX_TICKETS_PER_KEY`]).
    /// [`SecureStream::secure_server`] has no listener to read it again
    /// and refuses options with it.
    ///
    /// [`TicketKeys::from_file`]: crate::TicketKeys::from_file
    /// [`DEFAULT_TICKET_KEY_WINDOW`]: crate::DEFAULT_TICKET_KEY_WINDOW
    /// [`MAX_TICKETS_PER_KEY`]: crate::MAX_TICKETS_PER_KEY
    /// [`SecureStream::secure_server`]: crate::SecureStream::secure_server
    pub fn ticket_keys_file(mut self, path: impl AsRef<Path>) -> Self {
        self.ticket_keys_file = Some(path.as_ref().to_owned());
        self.tls.ticket_keys = None;
        self
    }

    /// Reloads the certificate chain and key from these files (PEM or DER,
    /// the key unencrypted) when they change, as an ACME client (certbot,
    /// lego, acme.sh) replaces them every 60 to 90 days: at accept time, at
    /// most every [`certificate_reload_interval`](Self::certificate_reload_interval),
    /// the files are read and compared with what they held before, and on
    /// a change the pair is loaded into a copy of the listener's context and
    /// swapped in as [`SecureListener::set_context`](crate::SecureListener::set_context)
    /// would: new connections get the new certificate, open ones keep
    /// theirs. A pair that cannot be used (half-written, mismatched, not
    /// PEM) leaves the old certificate in place and is reported to
    /// [`on_client_error`](Self::on_client_error) with the address of the
    /// connection that triggered the check (or the `log` crate at `warn`);
    /// it is tried again when the files change again. A stapled OCSP
    /// response is dropped with the old certificate: give
    /// [`reload_ocsp_file`](Self::reload_ocsp_file) to staple the response
    /// for the new one. Listeners only:
    /// [`SecureStream::secure_server`](crate::SecureStream::secure_server)
    /// has no listener to read the files again and refuses options with
    /// them.
    pub fn reload_certificate_files(
        mut self,
        chain: impl AsRef<Path>,
        key: impl AsRef<Path>,
    ) -> Self {
        self.reload = Some((chain.as_ref().to_owned(), key.as_ref().to_owned()));
        self
    }

    /// Staples the OCSP response in this file (DER, as `openssl ocsp
    /// -respout` writes it) to the listener's certificate, and reads it
    /// again with the certificate files: nginx's `ssl_stapling_file`,
    /// kept fresh. It is read at bind and, at accept time, at most every
    /// [`certificate_reload_interval`](Self::certificate_reload_interval)
    /// with the files of
    /// [`reload_certificate_files`](Self::reload_certificate_files), each
    /// compared by contents with what it held; when any of them changed,
    /// the response is stapled for new connections with the certificate
    /// then served. It replaces a response the context staples
    /// ([`SecurityContext::set_ocsp_response`]).
    ///
    /// A response is stapled only if it is a successful basic OCSP
    /// response (RFC 6960) for the certificate served (its serial number),
    /// whose status is not unknown and whose `nextUpdate` has not passed
    /// (RFC 6960 section 3.2: clients must not accept it then). Otherwise,
    /// and when the file is missing or cannot be read, nothing is stapled
    /// and the reason is reported to
    /// [`on_client_error`](Self::on_client_error) (or the `log` crate at
    /// `warn`); the certificate is served all the same, and `bind` does
    /// not fail (what it finds is reported at the first accept). A staple
    /// that reaches its `nextUpdate` while in use is taken off and
    /// reported at the next check. A response that says the certificate
    /// is revoked is stapled, and reported. Its signature is not checked:
    /// clients check it. Listeners only:
    /// [`SecureStream::secure_server`] has no listener to read it again
    /// and refuses options with it.
    ///
    /// [`SecurityContext::set_ocsp_response`]: crate::SecurityContext::set_ocsp_response
    /// [`SecureStream::secure_server`]: crate::SecureStream::secure_server
    pub fn reload_ocsp_file(mut self, path: impl AsRef<Path>) -> Self {
        self.reload_ocsp = Some(path.as_ref().to_owned());
        self
    }

    /// How often, at most, the files of
    /// [`reload_certificate_files`](Self::reload_certificate_files),
    /// [`reload_ocsp_file`](Self::reload_ocsp_file) and
    /// [`ticket_keys_file`](Self::ticket_keys_file) are looked at. Default
    /// [`DEFAULT_RELOAD_INTERVAL`](crate::DEFAULT_RELOAD_INTERVAL) (a
    /// minute); zero looks at every accept, `Duration::MAX` never.
    pub fn certificate_reload_interval(mut self, every: Duration) -> Self {
        self.reload_every = every;
        self
    }

    /// [`certificate_reload_interval`](Self::certificate_reload_interval).
    pub fn get_certificate_reload_interval(&self) -> Duration {
        self.reload_every
    }

    /// The files a listener watches.
    pub(crate) fn reload_files(&self) -> ReloadFiles {
        ReloadFiles {
            pair: self.reload.clone(),
            ocsp: self.reload_ocsp.clone(),
            tickets: self.ticket_keys_file.clone(),
            every: self.reload_every,
        }
    }
}
