//! What an error says: `Display` (the message, lower case, with what to
//! do) and `Debug` (the kind, the message, then the chain of sources).

use std::error::Error as StdError;
use std::fmt;
use std::io;

use super::{Error, PeerRole, Phase, WebSocketErrorKind};

impl fmt::Debug for Error {
    /// `Kind: message`, then `(caused by: ...)` for each source: what a
    /// `main` that returns the error prints. Field by field it would show
    /// an HTTP body as a list of numbers and hide the advice.
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}: {self}", self.kind_name())?;
        if let Error::WebSocket { kind, .. } = self {
            write!(f, " [{kind:?}]")?;
        }
        #[cfg(feature = "acme")]
        if let Error::Acme { kind, .. } = self {
            write!(f, " [{kind:?}]")?;
        }
        let mut source = StdError::source(self);
        while let Some(s) = source {
            write!(f, " (caused by: {s})")?;
            source = s.source();
        }
        Ok(())
    }
}

/// The innermost cause of an I/O error, as text.
fn root_cause(e: &io::Error) -> String {
    let mut cause: &dyn std::error::Error = e;
    while let Some(next) = cause.source() {
        cause = next;
    }
    cause.to_string()
}

impl fmt::Display for Error {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Error::InvalidInput { input, reason } => write!(f, "invalid input '{input}': {reason}"),
            Error::File { path, source } => {
                write!(f, "cannot read '{}': {source}", path.display())
            }
            Error::Credentials { input, reason } => write!(f, "{input}: {reason}"),
            Error::Certificate {
                problem,
                peer: PeerRole::Server,
            } => write!(f, "certificate verification failed: {problem}"),
            Error::Certificate {
                problem,
                peer: PeerRole::Client,
            } => {
                // A server's settings for client certificates.
                let advice = problem
                    .to_string()
                    .replace("set_trusted_certificates", "set_client_authorities")
                    .replace(
                        "on_bad_certificate",
                        "BindOptions::on_bad_client_certificate",
                    );
                write!(f, "client certificate verification failed: {advice}")
            }
            Error::Handshake { reason, .. } => write!(f, "tls handshake failed: {reason}"),
            Error::Protocol { reason, .. } => write!(f, "tls connection failed: {reason}"),
            Error::Timeout { phase, after } => {
                write!(f, "{phase} timed out")?;
                if let Some(d) = after {
                    write!(f, " after {d:?}")?;
                }
                let hint = match phase {
                    Phase::Connect => "raise ConnectOptions::timeout or check the address",
                    Phase::Handshake => "raise handshake_timeout or check that the peer speaks TLS",
                    Phase::Read => "the peer sent nothing in time; raise set_read_timeout",
                    Phase::Write => "the peer is not reading; raise set_write_timeout",
                    Phase::Upgrade => {
                        "the server took the connection but did not answer the upgrade: check \
                         the URL's port and path, or raise WebSocketOptions::upgrade_timeout"
                    }
                    Phase::Proxy => {
                        "the proxy took the connection but did not open the tunnel: check that \
                         it is the right kind of proxy, or raise handshake_timeout"
                    }
                };
                write!(f, ": {hint}")
            }
            Error::Truncated => write!(
                f,
                "the peer closed the connection without a tls close_notify: the data may be \
                 truncated"
            ),
            Error::Io { context, source } => write!(f, "{context}: {source}"),
            Error::Proxy {
                proxy,
                reason,
                source,
                ..
            } => {
                write!(f, "proxy {proxy}: {reason}")?;
                // What the system said (connection refused, no such
                // name) is what the user acts on: said here once, its
                // innermost cause only.
                match source.as_ref().map(root_cause) {
                    Some(cause) if !reason.contains(&cause) => write!(f, ": {cause}"),
                    _ => Ok(()),
                }
            }
            Error::HttpStatus {
                status,
                reason,
                body,
            } => {
                write!(
                    f,
                    "the server refused the websocket upgrade: {status} {reason}"
                )?;
                let hint = match status {
                    401 => {
                        " (credentials needed: put user:password in the URL or set an Authorization header)"
                    }
                    403 => " (forbidden: check the Origin header and credentials)",
                    404 => " (no websocket endpoint at that path)",
                    _ => "",
                };
                f.write_str(hint)?;
                if !body.is_empty() {
                    let text = String::from_utf8_lossy(&body[..body.len().min(200)]);
                    write!(f, ": {}", text.trim())?;
                }
                Ok(())
            }
            Error::WebSocket {
                kind: WebSocketErrorKind::Refused,
                reason,
                ..
            } => write!(f, "websocket upgrade refused on purpose: {reason}"),
            Error::WebSocket {
                reason, close_code, ..
            } => {
                write!(f, "websocket failed: {reason}")?;
                if let Some(code) = close_code {
                    write!(f, " (closed with {code})")?;
                }
                Ok(())
            }
            Error::Closed => write!(
                f,
                "the websocket is closed: connect again to send or receive more"
            ),
            Error::ShuttingDown => write!(
                f,
                "the server is shutting down: the connection was closed after the grace \
                 period (StopHandle::shutdown); return from the handler"
            ),
            Error::Unsupported { what, reason } => write!(f, "{what} is not supported: {reason}"),
            #[cfg(feature = "acme")]
            Error::Acme {
                message, problem, ..
            } => {
                f.write_str(message)?;
                match problem {
                    Some(p) => write!(f, " (the CA said: {p})"),
                    None => Ok(()),
                }
            }
        }
    }
}
