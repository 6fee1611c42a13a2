//! The TLS handshake of a `SecureStream`: driven to completion within the
//! handshake timeout (one deadline for every read and write in it), the
//! server's choice of configuration from the ClientHello, and what is
//! recorded when it ends.

use std::io::{Read, Write};
use std::time::{Duration, Instant};

use rustls::AlertDescription;
use rustls::pki_types::UnixTime;

use super::{SecureStream, Tls, flush_tls, send_once};
use crate::error::{CertificateProblem, Error, PeerRole, Phase, Result};
use crate::net::transport::deadline_in;
use crate::tls::engine::Engine;
use crate::tls::source::ACME_TLS_ALPN;
use crate::tls::tls_error::map_tls_error;

impl<S: Read + Write> SecureStream<S> {
    /// Completes the TLS handshake now, if it has not run yet.
    ///
    /// Reads and writes do this on their own; call it to see handshake
    /// errors (a bad client certificate, no common protocol) at a known
    /// point. The whole handshake is bounded by the handshake timeout (it
    /// may end up to a 64th of it, at most 10 ms, late: the socket's
    /// timeouts are not set again before every read and write).
    pub fn handshake(&mut self) -> Result<()> {
        match &self.tls {
            Tls::Open(c) if !c.is_handshaking() => return Ok(()),
            Tls::Failed(reason) => {
                return Err(Error::handshake(format!(
                    "an earlier handshake failed: {reason}"
                )));
            }
            _ => {}
        }
        // A timeout too large to add to the clock: as good as none.
        let deadline = deadline_in(self.handshake_timeout);
        let result = self.drive_handshake(deadline);
        // Put the user's timeouts back.
        self.io
            .restore_timeouts(self.read_timeout, self.write_timeout);
        match result.and_then(|()| self.check_resumed_client()) {
            Ok(()) => {
                self.handshake_done();
                self.end_if_validation()
            }
            // A shutdown cut the handshake short: not the client's doing.
            Err(_) if self.is_shutting_down() => {
                self.closed_silently = false;
                self.tls = Tls::Failed("the server is shutting down".into());
                let _ = (self.io.ops.shutdown)(&self.io.sock, std::net::Shutdown::Both);
                Err(Error::ShuttingDown)
            }
            Err(e) => {
                // A health check that resets instead of closing (HAProxy
                // ends its checks with RST) after its PROXY LOCAL header.
                if !self.closed_silently
                    && super::proxied::is_reset(&e)
                    && self.reset_is_health_check()
                {
                    self.closed_silently = true;
                }
                Err(self.handshake_failed(e))
            }
        }
    }

    // The handshake's helpers that build large values (connections, trace
    // lines, errors) are kept out of line: rustls's key exchange and
    // signatures run below `drive_handshake`, and every byte of the frames
    // above them is stack that each connection's thread keeps resident.

    /// A server handshake that negotiated `acme-tls/1` answered an ACME
    /// TLS-ALPN-01 validation (only the validation configuration offers
    /// that protocol): the CA has seen the challenge certificate, and the
    /// connection carries nothing else (RFC 8737 section 3). It is closed
    /// here, so that no handler ever reads from it.
    #[inline(never)]
    fn end_if_validation(&mut self) -> Result<()> {
        let validation = matches!(&self.tls, Tls::Open(c)
            if !c.is_client() && c.alpn_protocol() == Some(ACME_TLS_ALPN));
        if !validation {
            return Ok(());
        }
        let _ = self.close();
        self.validation = true;
        self.tls = Tls::Failed("it answered an ACME TLS-ALPN-01 validation".into());
        Err(Error::handshake(
            "the connection was an ACME TLS-ALPN-01 validation (ALPN acme-tls/1): it was \
             answered with the challenge certificate and closed; it carries no data",
        ))
    }

    #[inline(never)]
    fn handshake_done(&mut self) {
        self.io.release_if_idle();
        if let Tls::Open(conn) = &mut self.tls {
            conn.release_if_idle(false);
        }
        let verdict = match &mut self.tls {
            Tls::Open(conn) => conn.take_unverified(),
            _ => None,
        };
        // The verifier's verdict in this handshake; a resumed session was
        // not verified in it, so its chain is assessed again.
        self.authorization_error = match verdict {
            Some(problem) => Some(problem),
            None if self.is_session_reused() => self.compute_authorization_error(),
            None => None,
        };
        if let (Some(_), Tls::Open(conn)) = (&self.check, &mut self.tls) {
            self.ocsp = conn.take_stapled().map(Vec::into_boxed_slice);
        }
        if let Tls::Open(conn) = &mut self.tls {
            conn.forget_reports();
        }
        if let Some(t) = &self.trace {
            let na = |o: Option<String>| o.unwrap_or_else(|| "-".to_owned());
            t.line(&format!(
                "handshake complete: {} {} key exchange {} alpn {} resumed {}{}",
                na(self.protocol_version()),
                na(self.cipher_suite()),
                na(self.negotiated_group()),
                na(self.selected_protocol()),
                self.is_session_reused(),
                self.authorization_error
                    .as_ref()
                    .map_or_else(String::new, |e| format!(", unverified: {e}")),
            ));
        }
    }

    /// Server side, a resumed session: the client's certificate chain came
    /// back from the ticket unchecked (rustls), so what a full handshake
    /// would check again is checked here, as Go's crypto/tls does: every
    /// other part of the client-certificate policy is bound into the
    /// ticket (tls/tickets.rs), the time is not. An expired certificate
    /// fails the handshake; nothing is handed to the application.
    fn check_resumed_client(&self) -> Result<()> {
        let Some(conn) = self.conn() else {
            return Ok(());
        };
        if conn.is_client() || !self.is_session_reused() {
            return Ok(());
        }
        let Some(chain) = conn.peer_certificates() else {
            return Ok(());
        };
        match crate::tls::resumed::expired(chain, "clientAuth", UnixTime::now()) {
            None => Ok(()),
            Some(problem) => Err(Error::Certificate {
                problem,
                peer: PeerRole::Client,
            }),
        }
    }

    #[cold]
    #[inline(never)]
    fn handshake_failed(&mut self, e: Error) -> Error {
        if let Some(t) = &self.trace {
            t.line(&format!("handshake failed: {e}"));
        }
        self.tls = Tls::Failed(e.to_string());
        e
    }

    pub(super) fn remaining(&self, deadline: Instant) -> Result<Duration> {
        left_of(deadline, self.handshake_timeout)
    }

    fn drive_handshake(&mut self, deadline: Instant) -> Result<()> {
        let after = Some(self.handshake_timeout);
        let slack = rearm_slack(self.handshake_timeout);
        if matches!(self.tls, Tls::Accepting(_) | Tls::Starting(_)) {
            self.read_proxy_header(deadline)?;
            self.tls = Tls::Open(self.start_server(deadline)?);
        }
        loop {
            let left = self.remaining(deadline)?;
            let Tls::Open(conn) = &mut self.tls else {
                return Err(Error::handshake("the connection is not open"));
            };
            if conn.wants_write() {
                self.io.set_deadline_timeout(true, left, slack);
                let trace = self.trace.as_deref_mut();
                flush_tls(
                    conn,
                    &mut self.io,
                    trace,
                    Phase::Handshake,
                    after,
                    Some(deadline),
                )?;
            }
            if !conn.is_handshaking() {
                return Ok(());
            }
            let direct = self.io.pending().is_empty() && self.io.layer.is_none();
            if self.io.pending().is_empty() {
                // What is left now: the flush above may have taken most of it.
                let left = left_of(deadline, self.handshake_timeout)?;
                self.io.set_deadline_timeout(false, left, slack);
                // Straight into the connection's buffer (no buffer of the
                // transport's to fill and copy from), unless the bytes
                // must be opened through a proxy's TLS first.
                let read = if direct {
                    let read_tls = |sock: &mut S, max| conn.read_tls(sock, max);
                    self.io
                        .read_once(HANDSHAKE_READ, read_tls, Phase::Handshake, after)?
                } else {
                    self.io.fill(Phase::Handshake, after)?
                };
                if read == 0 {
                    self.closed_silently = !conn.is_client() && !conn.heard_from_peer();
                    return Err(Error::handshake(if conn.is_client() {
                        "the server closed the connection during the handshake: it may not \
                         speak TLS on this port, or it rejected our hello"
                    } else {
                        "the client closed the connection during the handshake: it may not \
                         speak TLS, or it gave up on our certificate"
                    }));
                }
                if direct {
                    if let Some(t) = &mut self.trace {
                        t.received(conn.just_received(read));
                    }
                }
            }
            if !direct {
                if self.io.pending().is_empty() {
                    // Part of a record of the proxy's TLS: read on.
                    continue;
                }
                let n = conn.feed(self.io.pending())?;
                if let Some(t) = &mut self.trace {
                    t.received(&self.io.pending()[..n]);
                }
                self.io.consume(n);
            }
            if let Err(e) = conn.process_new_packets() {
                // Tell the peer why (rustls queued an alert).
                send_once(conn, &mut self.io);
                return Err(conn.map_error(e, true));
            }
        }
    }

    /// Server side: the connection, with the one configuration, or with the
    /// one the ClientHello leads to (then having processed the ClientHello,
    /// its answer queued).
    #[inline(never)]
    fn start_server(&mut self, deadline: Instant) -> Result<Box<Engine>> {
        let mut conn = match &self.tls {
            Tls::Starting(config) => Engine::server(config.clone(), &[]),
            _ => Ok(self.accept_client_hello(deadline)?),
        }
        .map(Box::new)
        .map_err(|e| map_tls_error(e, true, None, PeerRole::Client))?;
        if let Err(e) = conn.process_new_packets() {
            send_once(&mut conn, &mut self.io);
            return Err(conn.map_error(e, true));
        }
        Ok(conn)
    }

    /// Server side: reads until the whole ClientHello is in, then picks the
    /// configuration (ALPN choice) and starts the connection with what was
    /// read.
    fn accept_client_hello(&mut self, deadline: Instant) -> Result<Engine> {
        let after = Some(self.handshake_timeout);
        loop {
            if self.io.pending().is_empty() {
                let left = self.remaining(deadline)?;
                self.io
                    .set_deadline_timeout(false, left, rearm_slack(self.handshake_timeout));
                if self.io.fill(Phase::Handshake, after)? == 0 {
                    self.closed_silently =
                        matches!(&self.tls, Tls::Accepting(acc) if acc.2.is_empty());
                    return Err(Error::handshake(
                        "the client closed the connection before sending a ClientHello",
                    ));
                }
            }
            let Tls::Accepting(acc) = &mut self.tls else {
                return Err(Error::handshake("the connection is not accepting"));
            };
            let (acceptor, setup, received) = &mut **acc;
            let mut pending = self.io.pending();
            let n = match acceptor.read_tls(&mut pending) {
                Ok(n) => n,
                Err(e) if e.to_string() == "message buffer full" => {
                    // rustls's Acceptor buffers whole records, headers and
                    // all, up to a fixed size: not a malformed hello.
                    send_alert(&mut self.io.sock, AlertDescription::DecodeError);
                    return Err(Error::handshake(format!(
                        "the client's ClientHello did not fit the buffer rustls reads it into \
                         after {} bytes (a hello this large, or cut into this many records, \
                         cannot be read to choose among several configurations; one \
                         configuration, with at most one ALPN protocol and no SNI routes, \
                         takes it)",
                        received.len()
                    )));
                }
                Err(e) => {
                    send_alert(&mut self.io.sock, AlertDescription::DecodeError);
                    return Err(Error::handshake(format!(
                        "the client's first message is not valid TLS ({e}): is it a TLS client?"
                    )));
                }
            };
            if let Some(t) = &mut self.trace {
                t.received(&self.io.pending()[..n]);
            }
            received.extend_from_slice(&self.io.pending()[..n]);
            self.io.consume(n);
            match acceptor.accept() {
                Ok(None) => continue,
                Ok(Some(accepted)) => {
                    let config = match setup.choose(&accepted.client_hello()) {
                        Ok(config) => config,
                        Err(e) => {
                            // Refused before any configuration could answer:
                            // say so with a fatal alert, as rustls would.
                            send_alert(&mut self.io.sock, AlertDescription::InternalError);
                            return Err(e);
                        }
                    };
                    return Engine::server(config, received)
                        .map_err(|e| map_tls_error(e, true, None, PeerRole::Client));
                }
                Err((e, mut alert)) => {
                    let _ = alert.write_all(&mut self.io.sock);
                    return Err(map_tls_error(e, true, None, PeerRole::Client));
                }
            }
        }
    }

    fn compute_authorization_error(&self) -> Option<CertificateProblem> {
        let (verifier, name) = self.check.as_ref()?;
        if !verifier.may_accept_bad() {
            return None;
        }
        let chain = self.conn()?.peer_certificates()?;
        let (leaf, rest) = chain.split_first()?;
        verifier.check(leaf, rest, name, UnixTime::now()).err()
    }
}

/// What is left of a handshake's `deadline`, or its timeout error.
fn left_of(deadline: Instant, handshake_timeout: Duration) -> Result<Duration> {
    let left = deadline.saturating_duration_since(Instant::now());
    if left.is_zero() {
        return Err(Error::Timeout {
            phase: Phase::Handshake,
            after: Some(handshake_timeout),
        });
    }
    Ok(left)
}

/// How late past its deadline a handshake may end for not setting the
/// socket's timeouts again before every read and write: a 64th of the
/// handshake timeout, at most 10 ms (with the default 30 s, 10 ms).
fn rearm_slack(handshake_timeout: Duration) -> Duration {
    (handshake_timeout / 64).min(Duration::from_millis(10))
}

/// How much one handshake read may take: a server's whole first flight
/// (certificate chain included) in one `recv` as a rule.
const HANDSHAKE_READ: usize = 8 * 1024;

/// Writes a fatal alert in a plaintext record: what a server says before
/// its first flight, when no rustls connection exists to say it.
fn send_alert(sock: &mut impl Write, description: AlertDescription) {
    let alert = [21, 3, 3, 0, 2, 2, u8::from(description)];
    let _ = sock.write_all(&alert);
}
