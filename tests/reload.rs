//! Certificates that renew themselves: a listener reloads its chain and
//! key from files when they change; new connections get the new leaf, a
//! bad pair keeps the old one and is reported, and nothing is read more
//! often than the interval allows.

mod common;

use std::path::PathBuf;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use common::{client, pki};
use securenet::testing::TestPki;
use securenet::{BindOptions, SecureListener};

struct Files {
    dir: PathBuf,
}

impl Files {
    fn new(name: &str) -> Files {
        let dir = std::env::temp_dir().join(format!("securenet-{name}-{}", std::process::id()));
        std::fs::create_dir_all(&dir).expect("dir");
        Files { dir }
    }

    fn chain(&self) -> PathBuf {
        self.dir.join("chain.pem")
    }

    fn key(&self) -> PathBuf {
        self.dir.join("key.pem")
    }

    /// Replaces the pair the way ACME clients do: write aside, rename.
    fn put(&self, chain: &str, key: &str) {
        for (path, text) in [(self.chain(), chain), (self.key(), key)] {
            let tmp = path.with_extension("tmp");
            std::fs::write(&tmp, text).expect("write");
            std::fs::rename(&tmp, &path).expect("rename");
        }
    }
}

impl Drop for Files {
    fn drop(&mut self) {
        let _ = std::fs::remove_dir_all(&self.dir);
    }
}

/// The serial of the leaf the listener serves to a new connection.
fn served_serial(listener: &Arc<SecureListener>, trust: &TestPki) -> String {
    let port = listener.port();
    let l = listener.clone();
    let server = std::thread::spawn(move || {
        let (mut s, _) = l.accept().expect("accept");
        let _ = s.handshake();
    });
    let c = client(trust.trust_context())
        .connect("localhost", port)
        .expect("connect");
    server.join().expect("server");
    c.peer_certificate()
        .expect("leaf")
        .serial_number()
        .to_owned()
}

fn serial_of(pem: &str) -> String {
    securenet::X509Certificate::from_pem(pem.as_bytes()).expect("pem")[0]
        .serial_number()
        .to_owned()
}

fn listener(
    files: &Files,
    first: &TestPki,
    every: Duration,
    errors: &Arc<Mutex<Vec<String>>>,
) -> Arc<SecureListener> {
    let seen = errors.clone();
    Arc::new(
        BindOptions::new()
            .handshake_timeout(common::IO_TIMEOUT)
            .reload_certificate_files(files.chain(), files.key())
            .certificate_reload_interval(every)
            .on_client_error(move |e, _| seen.lock().expect("errors").push(e.to_string()))
            .bind("127.0.0.1", 0, &first.server_context())
            .expect("bind"),
    )
}

#[test]
fn a_renewed_pair_is_served_and_a_bad_one_keeps_the_old() {
    // One CA for every leaf, so the client trusts them all.
    let first = pki();
    let files = Files::new("reload");
    files.put(first.server_cert_pem(), first.server_key_pem());
    let errors = Arc::new(Mutex::new(Vec::new()));
    let l = listener(&files, &first, Duration::ZERO, &errors);
    assert_eq!(
        served_serial(&l, &first),
        serial_of(first.server_cert_pem())
    );

    let renewed = first.renewed_server(&["localhost"]).expect("renew");
    files.put(&renewed.0, &renewed.1);
    assert_eq!(
        served_serial(&l, &first),
        serial_of(&renewed.0),
        "the new leaf"
    );

    files.put("not a certificate\n", "not a key\n");
    assert_eq!(
        served_serial(&l, &first),
        serial_of(&renewed.0),
        "garbage keeps the last good leaf"
    );
    let errors = errors.lock().expect("errors");
    assert!(
        errors.iter().any(|e| e
            .contains("cannot reload the certificate, the old one stays in use")
            && e.contains("chain.pem")),
        "{errors:?}"
    );
}

#[test]
fn the_files_are_not_read_more_often_than_the_interval() {
    let first = pki();
    let files = Files::new("reload-interval");
    files.put(first.server_cert_pem(), first.server_key_pem());
    let errors = Arc::new(Mutex::new(Vec::new()));
    let renewed = first.renewed_server(&["localhost"]).expect("renew");
    for every in [Duration::from_secs(3600), Duration::MAX] {
        let l = listener(&files, &first, every, &errors);
        files.put(&renewed.0, &renewed.1);
        assert_eq!(
            served_serial(&l, &first),
            serial_of(first.server_cert_pem()),
            "not looked at before the interval ({every:?})"
        );
        files.put(first.server_cert_pem(), first.server_key_pem());
    }
    assert!(errors.lock().expect("errors").is_empty());
}

#[test]
fn a_mismatched_pair_is_refused_with_a_reason() {
    let first = pki();
    let files = Files::new("reload-mismatch");
    files.put(first.server_cert_pem(), first.server_key_pem());
    let errors = Arc::new(Mutex::new(Vec::new()));
    let l = listener(&files, &first, Duration::ZERO, &errors);
    let renewed = first.renewed_server(&["localhost"]).expect("renew");
    // The new chain with the old key: what a reader sees between renames.
    files.put(&renewed.0, first.server_key_pem());
    assert_eq!(
        served_serial(&l, &first),
        serial_of(first.server_cert_pem())
    );
    let errors = errors.lock().expect("errors").clone();
    assert!(
        errors.iter().any(|e| e.contains("does not match")),
        "{errors:?}"
    );
}
