//! The settings `ConnectOptions` and `BindOptions` share (ALPN protocols,
//! the handshake timeout, tracing, the key log), their checks, and the
//! setters both builders expose.

use std::fmt;
use std::sync::Arc;
use std::time::Duration;

use rustls::KeyLog;

use crate::error::{Error, Result};
use crate::tls::certificate::hex;
use crate::tls::trace::TraceFn;

/// The default bound on a whole TLS handshake, client or server: 30 seconds.
pub const DEFAULT_HANDSHAKE_TIMEOUT: Duration = Duration::from_secs(30);

/// TLS sessions remembered for resumption: per context on the client (rustls
/// resumes a session only under the verifier that accepted it), per server
/// setup on the server.
pub(crate) const SESSION_CACHE: usize = 256;

/// Where key log lines go.
pub(crate) type KeyLogFn = Arc<dyn Fn(&str) + Send + Sync>;

/// What both sides of a connection can be given.
#[derive(Clone)]
pub(crate) struct Common {
    /// ALPN protocols, most preferred first (client) or spoken (server).
    pub(crate) alpn: Vec<String>,
    pub(crate) handshake_timeout: Duration,
    pub(crate) trace: Option<TraceFn>,
    pub(crate) key_log: Option<KeyLogFn>,
    /// Certificate compression (RFC 8879, zlib) offered and accepted.
    pub(crate) certificate_compression: bool,
}

impl Default for Common {
    fn default() -> Self {
        Common {
            alpn: Vec::new(),
            handshake_timeout: DEFAULT_HANDSHAKE_TIMEOUT,
            trace: None,
            key_log: None,
            certificate_compression: true,
        }
    }
}

impl fmt::Debug for Common {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Common")
            .field("supported_protocols", &self.alpn)
            .field("handshake_timeout", &self.handshake_timeout)
            .field("trace", &self.trace.is_some())
            .field("key_log", &self.key_log.is_some())
            .field("certificate_compression", &self.certificate_compression)
            .finish()
    }
}

impl Common {
    /// Refuses settings that could never work; `builder` names the options
    /// type in the error (`ConnectOptions`, `BindOptions`).
    pub(crate) fn check(&self, builder: &str) -> Result<()> {
        if self.handshake_timeout.is_zero() {
            return Err(Error::invalid_input(
                format!("{builder}::handshake_timeout(Duration::ZERO)"),
                "no handshake can finish in no time: give a positive duration",
            ));
        }
        alpn_wire(&self.alpn).map(|_| ())
    }

    /// The certificate compressors and decompressors a configuration
    /// gets: rustls's (zlib), or none when compression is off.
    pub(crate) fn compression(
        &self,
    ) -> (
        Vec<&'static dyn rustls::compress::CertCompressor>,
        Vec<&'static dyn rustls::compress::CertDecompressor>,
    ) {
        if self.certificate_compression {
            (
                rustls::compress::default_cert_compressors().to_vec(),
                rustls::compress::default_cert_decompressors().to_vec(),
            )
        } else {
            (Vec::new(), Vec::new())
        }
    }

    /// The key log as rustls takes it, if one is set.
    pub(crate) fn key_logger(&self) -> Option<Arc<dyn KeyLog>> {
        self.key_log
            .clone()
            .map(|f| Arc::new(KeyLogger(f)) as Arc<dyn KeyLog>)
    }
}

/// ALPN protocol names in wire form, each checked to be 1 to 255 bytes.
pub(crate) fn alpn_wire(protocols: &[String]) -> Result<Vec<Vec<u8>>> {
    protocols
        .iter()
        .map(|p| {
            if p.is_empty() || p.len() > 255 {
                Err(Error::invalid_input(
                    p,
                    "an ALPN protocol name must be 1 to 255 bytes, e.g. \"h2\" or \"http/1.1\"",
                ))
            } else {
                Ok(p.as_bytes().to_vec())
            }
        })
        .collect()
}

/// A callback's address, for configuration cache keys (0 for none). A cached
/// configuration holds the callback, so its address cannot be reused while
/// the entry lives.
pub(crate) fn callback_key<T: ?Sized>(f: &Option<Arc<T>>) -> usize {
    f.as_ref()
        .map_or(0, |f| Arc::as_ptr(f).cast::<()>() as usize)
}

struct KeyLogger(KeyLogFn);

impl fmt::Debug for KeyLogger {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("KeyLogger")
    }
}

impl KeyLog for KeyLogger {
    fn log(&self, label: &str, client_random: &[u8], secret: &[u8]) {
        (self.0)(&format!("{label} {} {}", hex(client_random), hex(secret)));
    }
}

/// The setters and getters of [`Common`] on a builder, given the path to
/// its `Common` field: written once for `ConnectOptions` and `BindOptions`.
/// (Getters take `get_`: the plain names are the setters.)
macro_rules! common_setters {
    ($($field:ident).+, $alpn_doc:literal) => {
        #[doc = $alpn_doc]
        pub fn supported_protocols<P: AsRef<str>>(mut self, protocols: &[P]) -> Self {
            self.$($field).+.alpn = protocols.iter().map(|p| p.as_ref().to_owned()).collect();
            self
        }

        /// The bound on a whole TLS handshake
        /// ([`handshake_timeout`](Self::handshake_timeout)).
        pub fn get_handshake_timeout(&self) -> std::time::Duration {
            self.$($field).+.handshake_timeout
        }

        /// The ALPN protocols
        /// ([`supported_protocols`](Self::supported_protocols)).
        pub fn get_supported_protocols(&self) -> &[String] {
            &self.$($field).+.alpn
        }

        /// Bounds the whole TLS handshake, every read and write in it.
        /// Default
        /// [`DEFAULT_HANDSHAKE_TIMEOUT`](crate::DEFAULT_HANDSHAKE_TIMEOUT);
        /// zero is an error when the options are used.
        pub fn handshake_timeout(mut self, timeout: std::time::Duration) -> Self {
            self.$($field).+.handshake_timeout = timeout;
            self
        }

        /// `true` traces each handshake: each TLS record sent and received
        /// (TLS 1.3 encrypts most of the handshake, so those show as
        /// encrypted records), then the negotiated parameters or the
        /// failure. Node `enableTrace`. The lines go to the
        /// [`log`](https://docs.rs/log) crate at `trace` level, target
        /// `securenet::trace` (with `env_logger`:
        /// `RUST_LOG=securenet::trace=trace`); the library never prints.
        /// For standard error without a logger, use
        /// [`trace`](Self::trace)`(|line| eprintln!("{line}"))`.
        pub fn enable_trace(mut self, enabled: bool) -> Self {
            self.$($field).+.trace = enabled.then(crate::tls::trace::log_sink);
            self
        }

        /// Certificate compression (RFC 8879): `true` (the default) offers
        /// to receive the peer's certificate chain compressed with zlib and
        /// compresses ours when the peer offers it (13 % fewer handshake
        /// bytes for an RSA-2048 leaf and two intermediates, 2 % for a
        /// lone ECDSA leaf: keys and signatures do not compress; see
        /// BENCHMARKS.md); `false` sends and asks for chains uncompressed. A compressed chain is inflated to
        /// at most 64 KiB (rustls's cap for a certificate message), the
        /// size it announces, checked before anything is allocated.
        pub fn certificate_compression(mut self, enabled: bool) -> Self {
            self.$($field).+.certificate_compression = enabled;
            self
        }

        /// Like [`enable_trace`](Self::enable_trace), to a callback that
        /// gets each trace line.
        pub fn trace(mut self, callback: impl Fn(&str) + Send + Sync + 'static) -> Self {
            self.$($field).+.trace = Some(std::sync::Arc::new(callback));
            self
        }

        /// Receives each TLS secret of a session as a line of the NSS key
        /// log format (`LABEL client_random secret`, hex, no newline), the
        /// lines `SSLKEYLOGFILE` and `openssl -keylogfile` write, so
        /// Wireshark can decrypt a capture. For debugging only. Dart
        /// `keyLog`, Node's `keylog` event.
        pub fn key_log(mut self, callback: impl Fn(&str) + Send + Sync + 'static) -> Self {
            self.$($field).+.key_log = Some(std::sync::Arc::new(callback));
            self
        }
    };
}
pub(crate) use common_setters;
