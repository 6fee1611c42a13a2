//! Files that rotate: a listener staples the OCSP response of a file read
//! with its certificate files, and encrypts session tickets with the keys
//! of a file read again when it changes. A renewal with a new response
//! staples it; a missing, expired or foreign response is not stapled and
//! is reported; a ticket from before a key change still resumes, a new
//! one is under the new key; a bad key file keeps the keys in use.
//! Every listener checks its files at every accept (interval zero): no
//! test sleeps.

mod common;

use std::io::{Read, Write};
use std::path::PathBuf;
use std::sync::{Arc, Mutex};
use std::time::{Duration, SystemTime};

use common::ocsp::{response, serial_of};
use common::{IO_TIMEOUT, client, pki, with_timeouts};
use securenet::testing::TestPki;
use securenet::{
    BindOptions, ConnectOptions, Error, SecureListener, SecureStream, SecurityContext, TicketKeys,
    TlsSession, TlsVersion,
};

const DAY: Duration = Duration::from_secs(86_400);

/// A directory of files that are replaced as deployment tools do: written
/// aside, then renamed over the old one.
struct Files {
    dir: PathBuf,
}

impl Files {
    fn new(name: &str) -> Files {
        let dir =
            std::env::temp_dir().join(format!("securenet-rotation-{name}-{}", std::process::id()));
        std::fs::create_dir_all(&dir).expect("dir");
        Files { dir }
    }

    fn path(&self, name: &str) -> PathBuf {
        self.dir.join(name)
    }

    fn put(&self, name: &str, bytes: &[u8]) {
        let tmp = self.path(&format!("{name}.tmp"));
        std::fs::write(&tmp, bytes).expect("write");
        std::fs::rename(&tmp, self.path(name)).expect("rename");
    }

    fn remove(&self, name: &str) {
        std::fs::remove_file(self.path(name)).expect("remove");
    }

    /// The certificate pair and an OCSP response for it.
    fn put_pair(&self, cert: &str, key: &str, ocsp: Option<&[u8]>) {
        self.put("chain.pem", cert.as_bytes());
        self.put("key.pem", key.as_bytes());
        if let Some(ocsp) = ocsp {
            self.put("ocsp.der", ocsp);
        }
    }
}

impl Drop for Files {
    fn drop(&mut self) {
        let _ = std::fs::remove_dir_all(&self.dir);
    }
}

/// What the reports of a listener said.
type Reports = Arc<Mutex<Vec<String>>>;

/// Options that check the files at every accept and keep every report.
fn options(reports: &Reports) -> BindOptions {
    let seen = reports.clone();
    BindOptions::new()
        .handshake_timeout(IO_TIMEOUT)
        .certificate_reload_interval(Duration::ZERO)
        .on_client_error(move |e, _| seen.lock().expect("reports").push(e.to_string()))
}

fn taken(reports: &Reports) -> Vec<String> {
    std::mem::take(&mut *reports.lock().expect("reports"))
}

/// What a client saw of one connection.
struct Seen {
    resumed: bool,
    session: Option<TlsSession>,
    ocsp: Option<Vec<u8>>,
    serial: String,
}

/// One connection to `listener`: a round trip, then the client reads to
/// the end (taking in the TLS 1.3 tickets) while the server closes.
fn visit(listener: &Arc<SecureListener>, options: ConnectOptions) -> Seen {
    let l = listener.clone();
    let server = std::thread::spawn(move || -> securenet::Result<()> {
        let (mut s, _) = l.accept()?;
        with_timeouts(&mut s);
        let mut buf = [0u8; 4];
        s.read_exact(&mut buf)?;
        s.write_all(&buf)?;
        s.close()
    });
    let mut c = options
        .connect("localhost", listener.port())
        .expect("connect");
    with_timeouts(&mut c);
    c.write_all(b"ping").expect("write");
    let mut buf = [0u8; 4];
    c.read_exact(&mut buf).expect("read");
    let _ = c.read_to_end(&mut Vec::new());
    server.join().expect("server").expect("server side");
    Seen {
        resumed: c.is_session_reused(),
        session: c.session(),
        ocsp: c.ocsp_response().map(<[u8]>::to_vec),
        serial: c
            .peer_certificate()
            .map(|leaf| leaf.serial_number().to_owned())
            .unwrap_or_default(),
    }
}

fn bind(options: BindOptions, ctx: &SecurityContext) -> Arc<SecureListener> {
    Arc::new(options.bind("127.0.0.1", 0, ctx).expect("bind"))
}

/// A response for `cert` valid from yesterday to tomorrow.
fn fresh(cert: &str) -> Vec<u8> {
    let now = SystemTime::now();
    response(&serial_of(cert), now - DAY, now + DAY)
}

fn any_says(reports: &[String], all: &[&str]) -> bool {
    reports
        .iter()
        .any(|r| all.iter().all(|part| r.contains(part)))
}

#[test]
fn a_renewal_with_a_new_ocsp_file_staples_the_new_response() {
    let pki = pki();
    let files = Files::new("renewal");
    let first = fresh(pki.server_cert_pem());
    files.put_pair(pki.server_cert_pem(), pki.server_key_pem(), Some(&first));
    let reports = Reports::default();
    let l = bind(
        options(&reports)
            .reload_certificate_files(files.path("chain.pem"), files.path("key.pem"))
            .reload_ocsp_file(files.path("ocsp.der")),
        &pki.server_context(),
    );
    let seen = visit(&l, client(pki.trust_context()));
    assert_eq!(seen.ocsp.as_deref(), Some(&first[..]), "stapled from bind");

    let (cert, key) = pki.renewed_server(&["localhost"]).expect("renew");
    let second = fresh(&cert);
    files.put_pair(&cert, &key, Some(&second));
    let seen = visit(&l, client(pki.trust_context()));
    assert_eq!(seen.serial, serial_of(&cert), "the renewed certificate");
    assert_eq!(
        seen.ocsp.as_deref(),
        Some(&second[..]),
        "and its new response"
    );
    // A new response alone (a daily refresh) is stapled too.
    let third = response(
        &serial_of(&cert),
        SystemTime::now(),
        SystemTime::now() + DAY,
    );
    files.put("ocsp.der", &third);
    let seen = visit(&l, client(pki.trust_context()));
    assert_eq!(seen.ocsp.as_deref(), Some(&third[..]));
    assert_eq!(taken(&reports), Vec::<String>::new());
}

#[test]
fn a_missing_or_foreign_ocsp_file_means_no_staple_and_a_report() {
    let pki = pki();
    let files = Files::new("missing");
    let first = fresh(pki.server_cert_pem());
    files.put_pair(pki.server_cert_pem(), pki.server_key_pem(), Some(&first));
    let reports = Reports::default();
    let l = bind(
        options(&reports)
            .reload_certificate_files(files.path("chain.pem"), files.path("key.pem"))
            .reload_ocsp_file(files.path("ocsp.der")),
        &pki.server_context(),
    );
    assert!(visit(&l, client(pki.trust_context())).ocsp.is_some());

    // Renewed, with the old response left in place: it is for the old
    // certificate, so it is not served for the new one.
    let (cert, key) = pki.renewed_server(&["localhost"]).expect("renew");
    files.put_pair(&cert, &key, None);
    let seen = visit(&l, client(pki.trust_context()));
    assert_eq!(
        seen.serial,
        serial_of(&cert),
        "the certificate still reloads"
    );
    assert_eq!(seen.ocsp, None, "a staple for another certificate");
    let said = taken(&reports);
    assert!(
        any_says(
            &said,
            &[
                "ocsp.der",
                &serial_of(pki.server_cert_pem()),
                "not the one served"
            ]
        ),
        "{said:?}"
    );

    // The response removed (a torn replace): reported, and the staple in
    // use, still valid for this certificate, is kept.
    let good = fresh(&cert);
    files.put("ocsp.der", &good);
    assert_eq!(
        visit(&l, client(pki.trust_context())).ocsp.as_ref(),
        Some(&good)
    );
    files.remove("ocsp.der");
    let seen = visit(&l, client(pki.trust_context()));
    assert_eq!(
        (seen.ocsp.as_ref(), seen.serial),
        (Some(&good), serial_of(&cert))
    );
    let said = taken(&reports);
    assert!(
        any_says(
            &said,
            &["ocsp.der", "cannot read the OCSP response", "kept"]
        ),
        "{said:?}"
    );
    assert!(
        !any_says(&said, &["cannot reload the certificate"]),
        "not a failed reload: {said:?}"
    );

    // Garbage (a fetcher's error saved as the response): reported, the
    // staple in use kept.
    files.put("ocsp.der", b"-----BEGIN OCSP RESPONSE-----\n");
    assert_eq!(visit(&l, client(pki.trust_context())).ocsp, Some(good));
    let said = taken(&reports);
    assert!(
        any_says(&said, &["ocsp.der", "openssl ocsp -respout", "kept"]),
        "{said:?}"
    );
}

#[test]
fn an_expired_staple_is_not_served_and_is_reported() {
    let pki = pki();
    let files = Files::new("expired");
    let now = SystemTime::now();
    let expired = response(&serial_of(pki.server_cert_pem()), now - 2 * DAY, now - DAY);
    files.put("ocsp.der", &expired);
    let reports = Reports::default();
    // The OCSP file alone: the context's certificate stays.
    let l = bind(
        options(&reports).reload_ocsp_file(files.path("ocsp.der")),
        &pki.server_context(),
    );
    let seen = visit(&l, client(pki.trust_context()));
    assert_eq!(seen.ocsp, None, "not stapled");
    let said = taken(&reports);
    assert!(
        any_says(&said, &["ocsp.der", "expired at", "nothing is stapled"]),
        "reported at the first accept: {said:?}"
    );
    // A fresh one is stapled; then the file gets an expired one: reported,
    // and the fresh one, still valid, stays.
    let good = fresh(pki.server_cert_pem());
    files.put("ocsp.der", &good);
    assert_eq!(
        visit(&l, client(pki.trust_context())).ocsp.as_ref(),
        Some(&good)
    );
    files.put("ocsp.der", &expired);
    assert_eq!(visit(&l, client(pki.trust_context())).ocsp, Some(good));
    assert!(any_says(&taken(&reports), &["expired at", "kept"]));
}

/// A client context that speaks TLS 1.3 only. A session resumes only
/// through the context it was made with: one per test.
fn tls13_context(pki: &TestPki) -> SecurityContext {
    let mut ctx = pki.trust_context();
    ctx.set_protocol_versions(TlsVersion::Tls13, TlsVersion::Tls13)
        .expect("versions");
    ctx
}

/// A client of `ctx`, with `session` to resume.
fn tls13(ctx: &SecurityContext, session: Option<TlsSession>) -> ConnectOptions {
    let options = client(ctx.clone());
    match session {
        Some(s) => options.session(s),
        None => options,
    }
}

fn key_bytes() -> Vec<u8> {
    TicketKeys::generate().expect("keys").to_bytes()
}

#[test]
fn a_ticket_from_before_a_key_change_resumes_and_new_ones_use_the_new_key() {
    let pki = pki();
    let files = Files::new("tickets");
    let ctx = tls13_context(&pki);
    let (old, new) = (key_bytes(), key_bytes());
    files.put("ticket.keys", &old);
    let reports = Reports::default();
    let a = bind(
        options(&reports).ticket_keys_file(files.path("ticket.keys")),
        &pki.server_context(),
    );
    // Two sessions under the old key.
    let early = visit(&a, tls13(&ctx, None)).session.expect("a ticket");
    let late = visit(&a, tls13(&ctx, None)).session.expect("a ticket");

    files.put("ticket.keys", &new);
    let seen = visit(&a, tls13(&ctx, Some(early)));
    assert!(seen.resumed, "the key before the change still decrypts");
    let renewed = seen.session.expect("a ticket under the new key");

    // A second server with only the new file: it resumes the new ticket,
    // not one under the old key.
    let other = Files::new("tickets-other");
    other.put("ticket.keys", &new);
    let b = bind(
        options(&reports).ticket_keys_file(other.path("ticket.keys")),
        &pki.server_context(),
    );
    assert!(visit(&b, tls13(&ctx, Some(renewed))).resumed);
    assert!(!visit(&b, tls13(&ctx, Some(late))).resumed);
    assert_eq!(taken(&reports), Vec::<String>::new());
}

#[test]
fn a_bad_ticket_key_file_keeps_the_keys_in_use_and_is_reported() {
    let pki = pki();
    let files = Files::new("tickets-bad");
    let ctx = tls13_context(&pki);
    let old = key_bytes();
    files.put("ticket.keys", &old);
    let reports = Reports::default();
    let l = bind(
        options(&reports).ticket_keys_file(files.path("ticket.keys")),
        &pki.server_context(),
    );
    let mut sessions: Vec<TlsSession> = (0..3)
        .map(|_| visit(&l, tls13(&ctx, None)).session.expect("a ticket"))
        .collect();
    // Cut short mid-write (new key first, old one after), then emptied,
    // then gone: each time the keys in use stay and it is reported.
    let whole = [key_bytes(), old.clone()].concat();
    let write_cut = |bytes: &[u8]| {
        std::fs::write(files.path("ticket.keys"), bytes).expect("write");
    };
    for (cut, step) in [(&whole[..50], "cut short"), (&whole[..0], "emptied")] {
        write_cut(cut);
        let seen = visit(&l, tls13(&ctx, sessions.pop()));
        assert!(seen.resumed, "{step}: the old key still decrypts");
        let said = taken(&reports);
        assert!(
            any_says(
                &said,
                &[
                    "ticket.keys",
                    "cannot load new session ticket keys",
                    "48 bytes"
                ]
            ),
            "{step}: {said:?}"
        );
    }
    files.remove("ticket.keys");
    assert!(visit(&l, tls13(&ctx, sessions.pop())).resumed, "gone");
    assert!(any_says(
        &taken(&reports),
        &["ticket.keys", "keys in use stay"]
    ));
}

#[test]
fn a_ticket_key_file_that_cannot_be_used_fails_bind_naming_it() {
    let pki = pki();
    let files = Files::new("tickets-bind");
    files.put("bad.keys", &[7u8; 50]);
    for name in ["bad.keys", "missing.keys"] {
        let path = files.path(name);
        let e = BindOptions::new()
            .ticket_keys_file(&path)
            .bind("127.0.0.1", 0, &pki.server_context())
            .expect_err("refused");
        assert!(e.to_string().contains(&*path.display().to_string()), "{e}");
    }
    // secure_server has no listener to read it again: refused, with advice.
    let options = BindOptions::new().ticket_keys_file(files.path("bad.keys"));
    let e = SecureStream::secure_server(
        std::io::Cursor::new(Vec::new()),
        &pki.server_context(),
        &options,
        &[],
    )
    .expect_err("refused");
    assert!(matches!(e, Error::InvalidInput { .. }), "{e:?}");
    assert!(e.to_string().contains("ticket_keys("), "{e}");
}

#[test]
fn secure_server_refuses_files_it_cannot_read_again() {
    // Options a listener honours by re-reading files: secure_server has no
    // listener, so it says so instead of serving what the context holds.
    let pki = pki();
    let files = Files::new("secure-server-reload");
    let refused = |options: BindOptions| {
        SecureStream::secure_server(
            std::io::Cursor::new(Vec::new()),
            &pki.server_context(),
            &options,
            &[],
        )
        .expect_err("refused")
    };
    let e = refused(
        BindOptions::new().reload_certificate_files(files.path("chain.pem"), files.path("key.pem")),
    );
    assert!(matches!(e, Error::InvalidInput { .. }), "{e:?}");
    assert!(e.to_string().contains("reload_certificate_files("), "{e}");
    assert!(e.to_string().contains("chain.pem"), "{e}");
    let e = refused(BindOptions::new().reload_ocsp_file(files.path("staple.der")));
    assert!(matches!(e, Error::InvalidInput { .. }), "{e:?}");
    assert!(e.to_string().contains("reload_ocsp_file("), "{e}");
    // Both named at once, not one error after the other.
    let e = refused(
        BindOptions::new()
            .reload_certificate_files(files.path("chain.pem"), files.path("key.pem"))
            .reload_ocsp_file(files.path("staple.der")),
    );
    let text = e.to_string();
    assert!(
        text.contains("chain.pem") && text.contains("staple.der"),
        "{e}"
    );
    // Nothing here counts streams or sees the sender's address.
    let e = refused(BindOptions::new().max_connections(10));
    assert!(e.to_string().contains("max_connections(10)"), "{e}");
    let e = refused(BindOptions::new().proxy_protocol_trusted(&["10.0.0.0/8"]));
    assert!(e.to_string().contains("proxy_protocol_trusted"), "{e}");
}
