//! Session tickets made with shared `TicketKeys` resume only under the
//! client-certificate policy that admitted the client (issue #26, item
//! 2): rustls restores a resumed session's client certificate from the
//! ticket without checking it again, so a ticket from a listener that asks
//! for no certificate, or one made before the client authorities or CRLs
//! changed, must be a full handshake, never a way in.

mod common;

use std::io::{Read, Write};
use std::sync::Arc;
use std::thread::{self, JoinHandle};

use common::{Ca, client, listener_with, with_timeouts};
use rcgen::ExtendedKeyUsagePurpose;
use securenet::testing::TestPki;
use securenet::{
    BindOptions, CertificateProblem, ConnectOptions, SecureListener, SecurityContext, TicketKeys,
    TlsVersion,
};

/// What the server saw of one connection.
#[derive(Debug)]
struct Seen {
    /// The handshake's problem, if it failed.
    refused: Option<CertificateProblem>,
    reused: bool,
    client_certificate: bool,
}

/// Serves `n` connections on `listener`: each handshake, then "hi", then
/// reading until the client closes.
fn serve(listener: Arc<SecureListener>, n: usize) -> JoinHandle<Vec<Seen>> {
    thread::spawn(move || {
        (0..n)
            .map(|_| {
                let (mut s, _) = listener.accept().expect("accept");
                with_timeouts(&mut s);
                let result = s.handshake();
                if result.is_ok() && s.write_all(b"hi").is_ok() {
                    let _ = s.read_to_end(&mut Vec::new());
                }
                Seen {
                    refused: result.err().map(|e| {
                        e.certificate_problem()
                            .cloned()
                            .unwrap_or_else(|| panic!("not a certificate error: {e}"))
                    }),
                    reused: s.is_session_reused(),
                    client_certificate: s.peer_certificate().is_some(),
                }
            })
            .collect()
    })
}

/// One visit: connect, read the greeting (taking in the TLS 1.3 tickets;
/// a refused TLS 1.3 client learns it here), close.
fn visit(options: &ConnectOptions, port: u16) {
    if let Ok(mut c) = options.connect("localhost", port) {
        with_timeouts(&mut c);
        let _ = c.read_exact(&mut [0u8; 2]);
        let _ = c.close();
    }
}

fn listener(bind: BindOptions, ctx: &SecurityContext) -> (Arc<SecureListener>, u16) {
    let l = listener_with(bind, ctx);
    let port = l.port();
    (Arc::new(l), port)
}

fn versioned(mut ctx: SecurityContext, version: TlsVersion) -> SecurityContext {
    ctx.set_protocol_versions(version, version)
        .expect("versions");
    ctx
}

fn one(seen: Vec<Seen>) -> Seen {
    let [s] = <[Seen; 1]>::try_from(seen).expect("one connection");
    s
}

#[test]
fn a_ticket_from_a_listener_without_client_auth_does_not_pass_one_that_requires_it() {
    let pki = common::pki();
    let ctx = pki.server_context();
    for version in [TlsVersion::Tls13, TlsVersion::Tls12] {
        let keys = TicketKeys::generate().expect("keys");
        let (open, open_port) = listener(BindOptions::new().ticket_keys(keys.clone()), &ctx);
        let strict_bind = BindOptions::new()
            .ticket_keys(keys)
            .require_client_certificate(true);
        let (strict, strict_port) = listener(strict_bind, &ctx);
        let (open_server, strict_server) = (serve(open, 1), serve(strict, 1));
        // A client with no certificate at all.
        let options = client(versioned(pki.trust_context(), version));
        visit(&options, open_port);
        assert!(one(open_server.join().expect("server")).refused.is_none());
        visit(&options, strict_port);
        let seen = one(strict_server.join().expect("server"));
        assert!(
            matches!(seen.refused, Some(CertificateProblem::NotPresented)),
            "{version:?}: a client without a certificate got in: {seen:?}"
        );
        assert!(!seen.reused, "{version:?}: {seen:?}");
    }
}

#[test]
fn listeners_with_the_same_policy_still_share_sessions() {
    let pki = common::pki();
    let ctx = pki.server_context();
    for version in [TlsVersion::Tls13, TlsVersion::Tls12] {
        let bytes = TicketKeys::generate().expect("keys").to_bytes();
        // Two servers of a fleet: the same key bytes, the same policy, each
        // its own context loaded from the same files.
        let bind = |keys| {
            BindOptions::new()
                .ticket_keys(keys)
                .require_client_certificate(true)
        };
        let a_keys = TicketKeys::from_bytes(&bytes).expect("keys");
        let b_keys = TicketKeys::from_bytes(&bytes).expect("keys");
        let (a, a_port) = listener(bind(a_keys), &ctx);
        let (b, b_port) = listener(bind(b_keys), &pki.server_context());
        let (a_server, b_server) = (serve(a, 1), serve(b, 1));
        let options = client(versioned(pki.client_context(), version));
        visit(&options, a_port);
        visit(&options, b_port);
        let (a, b) = (
            one(a_server.join().expect("a")),
            one(b_server.join().expect("b")),
        );
        assert!(a.refused.is_none() && !a.reused && a.client_certificate);
        assert!(
            b.refused.is_none() && b.reused && b.client_certificate,
            "{version:?}: {b:?}"
        );
    }
}

/// A server context with the test PKI's certificate whose client
/// certificates must chain to `authority`, with `crl` if given.
fn server_for(pki: &TestPki, authority: &Ca, crl: Option<String>) -> SecurityContext {
    let mut ctx = common::context_with(pki.server_cert_pem(), pki.server_key_pem());
    ctx.set_client_authorities_bytes(authority.pem().as_bytes())
        .expect("authorities");
    if let Some(crl) = crl {
        ctx.set_crls_bytes(crl.as_bytes()).expect("crl");
    }
    ctx
}

/// A client of `authority` (serial 7001) that trusts the test PKI.
fn client_of(pki: &TestPki, authority: &Ca, version: TlsVersion) -> ConnectOptions {
    let (cert, key) =
        authority.leaf_with_serial("client", 7001, ExtendedKeyUsagePurpose::ClientAuth);
    let mut ctx = common::context_with(&cert, &key);
    ctx.set_trusted_certificates_bytes(pki.ca_pem().as_bytes())
        .expect("trust");
    client(versioned(ctx, version))
}

/// Two visits to one listener with ticket keys that requires a client
/// certificate of `first`'s authorities, its context replaced by `then`
/// in between: what the server saw of each.
fn across_set_context(
    first: &SecurityContext,
    then: &SecurityContext,
    options: &ConnectOptions,
) -> (Seen, Seen) {
    let bind = BindOptions::new()
        .ticket_keys(TicketKeys::generate().expect("keys"))
        .require_client_certificate(true);
    let (l, port) = listener(bind, first);
    let server = serve(l.clone(), 2);
    visit(options, port);
    l.set_context(then).expect("set_context");
    visit(options, port);
    let mut seen = server.join().expect("server").into_iter();
    let before = seen.next().expect("first");
    (before, seen.next().expect("second"))
}

#[test]
fn a_ticket_does_not_survive_a_change_of_client_authorities() {
    let pki = common::pki();
    let (a, b) = (Ca::new("client CA A"), Ca::new("client CA B"));
    for version in [TlsVersion::Tls13, TlsVersion::Tls12] {
        let options = client_of(&pki, &a, version);
        let (before, after) = across_set_context(
            &server_for(&pki, &a, None),
            &server_for(&pki, &b, None),
            &options,
        );
        assert!(before.refused.is_none() && before.client_certificate);
        assert!(
            matches!(
                after.refused,
                Some(CertificateProblem::UnknownIssuer { .. })
            ),
            "{version:?}: CA A's client got in after the move to CA B: {after:?}"
        );
        assert!(!after.reused);
    }
}

#[test]
fn a_ticket_does_not_survive_a_crl_that_revokes_its_client() {
    let pki = common::pki();
    let a = Ca::new("client CA A");
    for version in [TlsVersion::Tls13, TlsVersion::Tls12] {
        let options = client_of(&pki, &a, version);
        let (before, after) = across_set_context(
            &server_for(&pki, &a, None),
            &server_for(&pki, &a, Some(a.crl(&[7001]))),
            &options,
        );
        assert!(before.refused.is_none() && before.client_certificate);
        assert!(
            matches!(after.refused, Some(CertificateProblem::Revoked { .. })),
            "{version:?}: a revoked client got in: {after:?}"
        );
        assert!(!after.reused);
    }
}

#[test]
fn a_new_server_certificate_under_the_same_policy_keeps_tickets() {
    let pki = common::pki();
    let a = Ca::new("client CA A");
    let (cert, key) = pki.renewed_server(&["localhost"]).expect("renewal");
    let mut renewed = common::context_with(&cert, &key);
    renewed
        .set_client_authorities_bytes(a.pem().as_bytes())
        .expect("authorities");
    let options = client_of(&pki, &a, TlsVersion::Tls13);
    let (_, after) = across_set_context(&server_for(&pki, &a, None), &renewed, &options);
    assert!(
        after.refused.is_none() && after.reused && after.client_certificate,
        "{after:?}"
    );
}

/// A client certificate that expired after its ticket was made: a full
/// handshake would refuse it, so its resumption is refused too (rustls
/// restores the chain unchecked; the server checks its dates again, as Go
/// does). The certificate is valid for 3 seconds; the test waits for the
/// clock to pass its end, which is what it is about.
#[test]
fn a_client_certificate_that_expired_since_its_ticket_does_not_resume() {
    use std::time::{Duration, Instant, SystemTime};
    let pki = common::pki();
    let authority = Ca::new("short-lived client CA");
    for version in [TlsVersion::Tls13, TlsVersion::Tls12] {
        let ends = time::OffsetDateTime::now_utc() + time::Duration::seconds(3);
        let mut params = rcgen::CertificateParams::new(Vec::<String>::new()).expect("params");
        params
            .distinguished_name
            .push(rcgen::DnType::CommonName, "short-lived client");
        params.extended_key_usages = vec![ExtendedKeyUsagePurpose::ClientAuth];
        params.not_after = ends;
        let key = rcgen::KeyPair::generate().expect("key");
        let cert = params
            .signed_by(&key, &authority.issuer)
            .expect("sign")
            .pem();
        let mut client_ctx = common::context_with(&cert, &key.serialize_pem());
        client_ctx
            .set_trusted_certificates_bytes(pki.ca_pem().as_bytes())
            .expect("trust");
        let options = client(versioned(client_ctx, version));
        let bind = BindOptions::new()
            .ticket_keys(TicketKeys::generate().expect("keys"))
            .require_client_certificate(true);
        let (l, port) = listener(bind, &server_for(&pki, &authority, None));
        let server = serve(l, 2);
        visit(&options, port);
        // Until the certificate has expired (whole seconds in X.509).
        let expired = SystemTime::UNIX_EPOCH
            + Duration::from_secs(u64::try_from(ends.unix_timestamp()).expect("after 1970") + 1);
        let limit = Instant::now() + Duration::from_secs(10);
        while SystemTime::now() <= expired && Instant::now() < limit {
            thread::yield_now();
        }
        visit(&options, port);
        let mut seen = server.join().expect("server").into_iter();
        let (before, after) = (seen.next().expect("first"), seen.next().expect("second"));
        assert!(
            before.refused.is_none() && before.client_certificate,
            "{before:?}"
        );
        assert!(
            matches!(after.refused, Some(CertificateProblem::Expired { .. })),
            "{version:?}: an expired client certificate resumed: {after:?}"
        );
    }
}
