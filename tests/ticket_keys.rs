//! Session resumption across a fleet: listeners with the same ticket keys
//! (in this process and in another one) resume each other's sessions in
//! TLS 1.3 and 1.2; after rotations, an old ticket resumes while its key
//! is in the window, then is a full handshake, never an error.

mod common;

use std::io::{Read, Write};
use std::process::{Command, Stdio};

use common::{IO_TIMEOUT, client, pki, serve_one};
use securenet::testing::TestPki;
use securenet::{BindOptions, ConnectOptions, TicketKeys, TlsSession, TlsVersion};

/// One echoed round trip against a server with `keys`; whether the
/// session was resumed, and the session to keep.
fn round_trip(
    pki: &TestPki,
    keys: &TicketKeys,
    options: ConnectOptions,
) -> (bool, Option<TlsSession>) {
    let (port, server) = serve_one(
        BindOptions::new().ticket_keys(keys.clone()),
        &pki.server_context(),
        |mut s| {
            let mut buf = [0u8; 4];
            s.read_exact(&mut buf)?;
            s.write_all(&buf)?;
            s.close()
        },
    );
    let resumed = connect_and_echo(options, port);
    server.join().expect("server").expect("server side");
    resumed
}

fn connect_and_echo(options: ConnectOptions, port: u16) -> (bool, Option<TlsSession>) {
    let mut s = options.connect("localhost", port).expect("connect");
    common::with_timeouts(&mut s);
    s.write_all(b"ping").expect("write");
    let mut buf = [0u8; 4];
    // Reading also takes in the TLS 1.3 tickets that follow the handshake.
    s.read_exact(&mut buf).expect("read");
    let mut rest = Vec::new();
    let _ = s.read_to_end(&mut rest);
    (s.is_session_reused(), s.session())
}

fn context_for(pki: &TestPki, version: TlsVersion) -> securenet::SecurityContext {
    let mut ctx = pki.trust_context();
    ctx.set_protocol_versions(version, version)
        .expect("versions");
    ctx
}

#[test]
fn shared_keys_resume_on_another_listener_in_both_versions() {
    let pki = pki();
    let bytes = TicketKeys::generate().expect("keys").to_bytes();
    for version in [TlsVersion::Tls13, TlsVersion::Tls12] {
        // Two servers that share nothing but the key bytes.
        let a = TicketKeys::from_bytes(&bytes).expect("keys");
        let b = TicketKeys::from_bytes(&bytes).expect("keys");
        let options = client(context_for(&pki, version));
        assert!(
            !round_trip(&pki, &a, options.clone()).0,
            "the first is full"
        );
        assert!(
            round_trip(&pki, &b, options).0,
            "{version:?}: a session from A resumes on B"
        );
        // Different keys: a full handshake, no error.
        let options = client(context_for(&pki, version));
        round_trip(&pki, &a, options.clone());
        let other = TicketKeys::generate().expect("keys");
        assert!(
            !round_trip(&pki, &other, options).0,
            "{version:?}: unknown key"
        );
    }
}

#[test]
fn old_tickets_resume_until_their_key_leaves_the_window() {
    let pki = pki();
    let keys = TicketKeys::generate().expect("keys");
    let ctx = context_for(&pki, TlsVersion::Tls13);
    // Two tickets made under the first key.
    let (_, early) = round_trip(&pki, &keys, client(ctx.clone()));
    let (_, late) = round_trip(&pki, &keys, client(ctx.clone()));
    let (early, late) = (early.expect("a ticket"), late.expect("a ticket"));
    keys.rotate().expect("rotate");
    assert!(
        round_trip(&pki, &keys, client(ctx.clone()).session(early)).0,
        "one rotation later the ticket still resumes"
    );
    for _ in 0..securenet::DEFAULT_TICKET_KEY_WINDOW {
        keys.rotate().expect("rotate");
    }
    assert!(
        !round_trip(&pki, &keys, client(ctx).session(late)).0,
        "its key left the window: a full handshake"
    );
}

const CHILD: &str = "SECURENET_TICKET_CHILD";

#[test]
fn a_session_resumes_on_a_server_in_another_process() {
    if let Some(dir) = std::env::var_os(CHILD) {
        // The child: serve one connection with the key file and the PKI
        // files the parent wrote, after printing the port.
        let dir = std::path::PathBuf::from(dir);
        let keys = TicketKeys::from_file(dir.join("ticket.keys")).expect("key file");
        let mut ctx = securenet::SecurityContext::empty();
        ctx.use_certificate_chain(dir.join("server.pem"))
            .expect("chain");
        ctx.use_private_key(dir.join("server.key")).expect("key");
        let listener = BindOptions::new()
            .ticket_keys(keys)
            .handshake_timeout(IO_TIMEOUT)
            .bind("127.0.0.1", 0, &ctx)
            .expect("bind");
        println!("PORT {}", listener.port());
        let (mut s, _) = listener.accept().expect("accept");
        common::with_timeouts(&mut s);
        let mut buf = [0u8; 4];
        s.read_exact(&mut buf).expect("read");
        s.write_all(&buf).expect("write");
        let _ = s.close();
        return;
    }
    let pki = pki();
    let dir = std::env::temp_dir().join(format!("securenet-tickets-{}", std::process::id()));
    std::fs::create_dir_all(&dir).expect("dir");
    let keys = TicketKeys::generate().expect("keys");
    std::fs::write(dir.join("ticket.keys"), keys.to_bytes()).expect("key file");
    std::fs::write(dir.join("server.pem"), pki.server_cert_pem()).expect("cert");
    std::fs::write(dir.join("server.key"), pki.server_key_pem()).expect("key");
    let here = TicketKeys::from_file(dir.join("ticket.keys")).expect("key file");
    for version in [TlsVersion::Tls13, TlsVersion::Tls12] {
        let mut child = Command::new(std::env::current_exe().expect("exe"))
            .args([
                "--exact",
                "a_session_resumes_on_a_server_in_another_process",
                "--nocapture",
            ])
            .env(CHILD, &dir)
            .stdout(Stdio::piped())
            .spawn()
            .expect("child");
        let mut out = std::io::BufReader::new(child.stdout.take().expect("stdout"));
        let mut line = String::new();
        let port: u16 = loop {
            line.clear();
            let n = std::io::BufRead::read_line(&mut out, &mut line).expect("child output");
            assert!(n > 0, "the child ended before its port");
            if let Some(p) = line.trim().strip_prefix("PORT ") {
                break p.parse().expect("port");
            }
        };
        let options = client(context_for(&pki, version));
        round_trip(&pki, &here, options.clone());
        let (resumed, _) = connect_and_echo(options, port);
        assert!(child.wait().expect("child").success());
        assert!(
            resumed,
            "{version:?}: the other process resumed our session"
        );
    }
    let _ = std::fs::remove_dir_all(&dir);
}
