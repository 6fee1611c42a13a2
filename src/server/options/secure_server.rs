//! `SecureStream::secure_server` (Dart's `SecureSocket.secureServer`): a
//! server stream on a transport accepted elsewhere, with the options that
//! make sense without a listener, and the listener's options refused.

use std::io::{Read, Write};

use super::BindOptions;
use crate::error::{Error, Result};
use crate::net::transport::{Ops, Transport};
use crate::stream::SecureStream;
use crate::tls::context::SecurityContext;
use crate::tls::server_config::ServerSetup;

impl<S: Read + Write + 'static> SecureStream<S> {
    /// Wraps an accepted transport as the server side of TLS (Dart
    /// `SecureSocket.secureServer`): `already_read` holds bytes already read
    /// from it (Dart's `bufferedData`), such as a ClientHello read while
    /// sniffing the protocol. The handshake runs on first use. Timeouts are
    /// enforced as for [`ConnectOptions::secure`](crate::ConnectOptions::secure):
    /// over a `TcpStream` or `UnixStream` the handshake timeout bounds the
    /// whole handshake; over another transport nothing is bounded but by it.
    /// The files options watch are for listeners: options with a
    /// [`BindOptions::ticket_keys_file`] (give [`BindOptions::ticket_keys`]
    /// instead), [`BindOptions::reload_certificate_files`] or
    /// [`BindOptions::reload_ocsp_file`] (put what the files hold in
    /// `context`) are [`Error::InvalidInput`] here, not silently ignored;
    /// so are [`BindOptions::max_connections`] (nothing here counts
    /// streams) and a non-empty [`BindOptions::proxy_protocol_trusted`]
    /// (no sender's address to check). Options of the accepting loop
    /// (`backlog`, `thread_stack_size`, the callbacks) have nothing to do
    /// here and are not looked at.
    pub fn secure_server(
        stream: S,
        context: &SecurityContext,
        options: &BindOptions,
        already_read: &[u8],
    ) -> Result<SecureStream<S>> {
        options.check_limits()?;
        if let Some(n) = options.serve.max_connections {
            return Err(Error::invalid_input(
                format!("max_connections({n})"),
                "secure_server serves the one stream it is given and counts none: count the \
                 streams you secure yourself, or bind a SecureListener with these options",
            ));
        }
        if !options.proxy_trusted.is_empty() {
            return Err(Error::invalid_input(
                "proxy_protocol_trusted",
                "secure_server has no sender's address to check against the list: check the \
                 address where you accepted the connection, and leave the list empty here \
                 (every sender is then trusted)",
            ));
        }
        if let Some(path) = &options.ticket_keys_file {
            return Err(Error::invalid_input(
                format!("ticket_keys_file({})", path.display()),
                "secure_server has no listener to read the file again: give \
                 BindOptions::ticket_keys(TicketKeys::from_file(..)?) instead",
            ));
        }
        let files = options.reload_files();
        let pair = files.pair.iter().map(|(chain, key)| {
            format!(
                "reload_certificate_files({}, {})",
                chain.display(),
                key.display()
            )
        });
        let ocsp = files
            .ocsp
            .iter()
            .map(|f| format!("reload_ocsp_file({})", f.display()));
        let watched: Vec<String> = pair.chain(ocsp).collect();
        if !watched.is_empty() {
            let option = watched.join(", ");
            return Err(Error::invalid_input(
                option,
                "secure_server has no listener to read the file again: load what it holds into \
                 the SecurityContext given (use_certificate_chain, use_private_key, \
                 set_ocsp_response) or bind a SecureListener with these options",
            ));
        }
        #[cfg(feature = "acme")]
        if options.acme.is_some() {
            return Err(Error::invalid_input(
                "BindOptions::acme",
                "secure_server has no listener to answer the CA's validations on: bind a \
                 SecureListener with these options instead",
            ));
        }
        let setup = ServerSetup::new(context, &options.tls)?;
        let io = Transport::new(stream, Ops::detect(), already_read);
        Ok(options.server_stream(io, setup, None, || "server".to_owned()))
    }
}
