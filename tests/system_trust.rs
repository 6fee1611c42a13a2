//! `SecurityContext::system()`: the operating system's trust store, which
//! honours `SSL_CERT_FILE` and `SSL_CERT_DIR`. Each case runs this test
//! binary again as a child process with the variables set, so they never
//! leak into other tests.

mod common;

use std::path::PathBuf;
use std::process::Command;

use common::{client, pki, serve_one};
use securenet::{BindOptions, Error, SecurityContext};

const CHILD: &str = "SECURENET_SYSTEM_TRUST_CHILD";

fn scratch_dir(name: &str) -> PathBuf {
    let dir = std::env::temp_dir().join(format!("securenet-{name}-{}", std::process::id()));
    std::fs::create_dir_all(&dir).expect("scratch dir");
    dir
}

/// Runs `test` of this binary in a child with `env`; its standard output.
fn run_child(test: &str, env: &[(&str, String)]) -> String {
    let mut cmd = Command::new(std::env::current_exe().expect("test binary"));
    cmd.args(["--exact", test, "--nocapture", "--test-threads=1"])
        .env_remove("SSL_CERT_FILE")
        .env_remove("SSL_CERT_DIR")
        .env(CHILD, "1");
    for (k, v) in env {
        cmd.env(k, v);
    }
    let out = cmd.output().expect("run the child test");
    let stdout = String::from_utf8_lossy(&out.stdout).into_owned();
    assert!(
        out.status.success(),
        "child {test} failed:\n{stdout}\n{}",
        String::from_utf8_lossy(&out.stderr)
    );
    stdout
}

#[test]
fn ssl_cert_file_is_what_system_trusts() {
    if std::env::var_os(CHILD).is_some() {
        let port: u16 = std::env::var("PORT").expect("port").parse().expect("port");
        let ctx = SecurityContext::system().expect("the store has the test CA");
        let missing = std::env::var("SSL_CERT_DIR").expect("dir");
        assert!(
            ctx.trust_load_errors().iter().any(|e| e.contains(&missing)),
            "the unreadable directory is named: {:?}",
            ctx.trust_load_errors()
        );
        let mut stream = client(ctx)
            .connect("localhost", port)
            .expect("trusted through SSL_CERT_FILE");
        stream.close().expect("close");
        println!("CHILD CONNECTED");
        return;
    }
    let pki = pki();
    let dir = scratch_dir("system-trust");
    let ca = dir.join("ca.pem");
    std::fs::write(&ca, pki.ca_pem()).expect("write ca");
    let (port, server) = serve_one(BindOptions::new(), &pki.server_context(), |mut s| {
        s.handshake()
    });
    let out = run_child(
        "ssl_cert_file_is_what_system_trusts",
        &[
            ("SSL_CERT_FILE", ca.display().to_string()),
            // A directory that does not exist: reported, not fatal.
            ("SSL_CERT_DIR", dir.join("missing").display().to_string()),
            ("PORT", port.to_string()),
        ],
    );
    assert!(out.contains("CHILD CONNECTED"), "{out}");
    server.join().expect("server").expect("handshake");
    let _ = std::fs::remove_dir_all(&dir);
}

#[test]
fn an_empty_system_store_is_an_error_that_says_so() {
    if std::env::var_os(CHILD).is_some() {
        let err = SecurityContext::system().expect_err("no certificates");
        assert!(matches!(err, Error::Credentials { .. }), "{err:?}");
        let text = err.to_string();
        assert!(
            text.contains("system trust store") && text.contains("SecurityContext::new()"),
            "{text}"
        );
        println!("CHILD REFUSED: {text}");
        return;
    }
    let dir = scratch_dir("empty-store");
    let file = dir.join("empty.pem");
    std::fs::write(&file, "no certificates here\n").expect("write");
    let out = run_child(
        "an_empty_system_store_is_an_error_that_says_so",
        &[("SSL_CERT_FILE", file.display().to_string())],
    );
    assert!(out.contains("CHILD REFUSED"), "{out}");
    let _ = std::fs::remove_dir_all(&dir);
}

#[test]
fn the_system_store_does_not_trust_its_roots_as_leaves() {
    // A certificate from the store is a root, not a leaf trusted as
    // itself: only what the user adds is.
    if std::env::var_os(CHILD).is_some() {
        let port: u16 = std::env::var("PORT").expect("port").parse().expect("port");
        let ctx = SecurityContext::system().expect("store");
        let err = client(ctx)
            .connect("localhost", port)
            .expect_err("a CA:TRUE leaf from the store is not trusted as itself");
        assert!(err.certificate_problem().is_some(), "{err:?}");
        println!("CHILD REFUSED: {err}");
        return;
    }
    let (cert, key) = common::self_signed_ca(&["localhost"]);
    let dir = scratch_dir("store-leaf");
    let file = dir.join("leaf.pem");
    std::fs::write(&file, &cert).expect("write");
    let (port, server) = serve_one(
        BindOptions::new(),
        &common::context_with(&cert, &key),
        |mut s| s.handshake(),
    );
    let out = run_child(
        "the_system_store_does_not_trust_its_roots_as_leaves",
        &[
            ("SSL_CERT_FILE", file.display().to_string()),
            ("PORT", port.to_string()),
        ],
    );
    assert!(out.contains("CHILD REFUSED"), "{out}");
    let _ = server.join();
    let _ = std::fs::remove_dir_all(&dir);
}
