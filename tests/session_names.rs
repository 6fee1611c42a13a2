//! A `TlsSession` resumes only the server name it was made for (issue
//! #26, item 1): handed to a connect to another name it is not offered,
//! and that connect does a full handshake, verified for its own name (as
//! Go's crypto/tls keys its session cache). DNS names compare
//! case-insensitively, IP addresses exactly; a session accepted under
//! `reject_unauthorized(false)` does not resume under `true`.

mod common;

use std::io::{Read, Write};
use std::thread::{self, JoinHandle};

use common::{client, listener_with, with_timeouts};
use securenet::testing::TestPki;
use securenet::{
    BindOptions, CertificateProblem, ConnectOptions, SecureStream, SecurityContext, TlsSession,
};

/// A listener that serves `n` connections, each sent "hi" then read until
/// the client closes; a failed handshake only ends that connection.
fn serve(ctx: &SecurityContext, n: usize) -> (u16, JoinHandle<()>) {
    let listener = listener_with(BindOptions::new(), ctx);
    let port = listener.port();
    let handle = thread::spawn(move || {
        for _ in 0..n {
            let Ok((mut s, _)) = listener.accept() else {
                continue;
            };
            with_timeouts(&mut s);
            if s.write_all(b"hi").is_ok() {
                let _ = s.read_to_end(&mut Vec::new());
            }
        }
    });
    (port, handle)
}

/// Connects, reads the greeting (which takes in the TLS 1.3 tickets) and
/// returns the stream.
fn greeted(options: &ConnectOptions, host: &str, port: u16) -> securenet::Result<SecureStream> {
    let mut s = options.connect(host, port)?;
    with_timeouts(&mut s);
    s.read_exact(&mut [0u8; 2])?;
    Ok(s)
}

/// One connection's session.
fn take_session(options: &ConnectOptions, host: &str, port: u16) -> TlsSession {
    let mut s = greeted(options, host, port).expect("the first connect");
    let session = s.session().expect("a session");
    s.close().expect("close");
    session
}

/// Asserts that `result` is a refused certificate for its name, not a
/// (resumed) connection.
fn assert_name_mismatch(result: securenet::Result<SecureStream>, what: &str) {
    match result {
        Ok(s) => panic!(
            "{what}: connected (resumed: {}) to a server whose certificate is {:?}",
            s.is_session_reused(),
            s.peer_certificate().map(|c| c.subject().to_owned())
        ),
        Err(e) => assert!(
            matches!(
                e.certificate_problem(),
                Some(CertificateProblem::NameMismatch { .. })
            ),
            "{what}: {e}"
        ),
    }
}

#[test]
fn a_session_for_evil_test_does_not_resume_a_connect_to_localhost() {
    // One server whose certificate names evil.test only; SNI off, as with a
    // server that has one certificate and ignores the name.
    let pki = TestPki::new(&["evil.test"]).expect("pki");
    let (port, server) = serve(&pki.server_context(), 4);
    let options = client(pki.trust_context()).sni(false);
    let session = take_session(&options.clone().server_name("evil.test"), "127.0.0.1", port);
    assert_eq!(session.server_name(), "evil.test");

    // Without the session, localhost is refused: the certificate is not its.
    assert_name_mismatch(options.connect("localhost", port), "no session");
    // With it: the same full handshake, and the same refusal.
    let attack = options.clone().session(session.clone());
    assert_name_mismatch(
        greeted(&attack, "localhost", port),
        "evil.test's session handed to localhost",
    );
    assert!(
        session.is_resumable(),
        "the ticket was never offered to localhost"
    );

    // For its own name, in any case, it resumes.
    let mut own = greeted(
        &options
            .clone()
            .session(session.clone())
            .server_name("EVIL.test"),
        "127.0.0.1",
        port,
    )
    .expect("its own name");
    assert!(own.is_session_reused());
    assert!(!session.is_resumable(), "spent by that resumption");
    own.close().expect("close");
    server.join().expect("server");
}

#[test]
fn a_session_for_one_ip_address_does_not_resume_another() {
    // No SNI is sent for IP addresses: only the client can tell them apart.
    let pki = TestPki::new(&["127.0.0.1"]).expect("pki");
    let (port, server) = serve(&pki.server_context(), 2);
    let options = client(pki.trust_context());
    let session = take_session(&options, "127.0.0.1", port);
    assert_eq!(session.server_name(), "127.0.0.1");
    // 127.0.0.1 reached under the name ::1, which the certificate lacks.
    let attack = options.clone().session(session.clone()).server_name("::1");
    assert_name_mismatch(
        greeted(&attack, "127.0.0.1", port),
        "127.0.0.1's session handed to ::1",
    );
    assert!(session.is_resumable());
    server.join().expect("server");
}

#[test]
fn a_session_accepted_unverified_does_not_resume_a_verifying_connect() {
    // rustls keeps the verifier a session was made under and resumes it
    // only under the same one (ClientSessionCommon::compatible_config);
    // reject_unauthorized(false) has a verifier of its own.
    let pki = TestPki::new(&["evil.test"]).expect("pki");
    let (port, server) = serve(&pki.server_context(), 2);
    let ctx = pki.trust_context();
    let lax = client(ctx.clone()).sni(false).reject_unauthorized(false);
    let session = take_session(&lax, "localhost", port);
    assert_eq!(session.server_name(), "localhost", "the same name");
    let strict = client(ctx).sni(false).session(session.clone());
    let result = greeted(&strict, "localhost", port);
    assert_name_mismatch(
        result,
        "an unverified session under reject_unauthorized(true)",
    );
    server.join().expect("server");
}
