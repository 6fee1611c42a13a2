//! What the library reports on its own goes through the `log` crate, never
//! to standard error: `serve()`'s failures without `on_client_error` at
//! `warn`, `enable_trace(true)` at `trace`. This binary installs a logger
//! that keeps every record.

mod common;

use std::io::Write;
use std::net::TcpStream;
use std::sync::{Condvar, Mutex, OnceLock};

use common::{client, handshake_with, pki, tcp_timeouts};
use log::{Level, Log, Metadata, Record};
use securenet::BindOptions;

type Line = (Level, String, String);

/// Keeps every record, and wakes whoever waits for one.
struct Keeper(Mutex<Vec<Line>>, Condvar);

impl Log for Keeper {
    fn enabled(&self, _: &Metadata<'_>) -> bool {
        true
    }

    fn log(&self, record: &Record<'_>) {
        if let Ok(mut v) = self.0.lock() {
            v.push((
                record.level(),
                record.target().to_owned(),
                record.args().to_string(),
            ));
        }
        self.1.notify_all();
    }

    fn flush(&self) {}
}

fn logger() -> &'static Keeper {
    static KEEPER: OnceLock<&'static Keeper> = OnceLock::new();
    KEEPER.get_or_init(|| {
        let keeper: &'static Keeper =
            Box::leak(Box::new(Keeper(Mutex::new(Vec::new()), Condvar::new())));
        log::set_logger(keeper).expect("the only logger of this binary");
        log::set_max_level(log::LevelFilter::Trace);
        keeper
    })
}

fn records(matching: impl Fn(&Line) -> bool) -> Vec<Line> {
    logger()
        .0
        .lock()
        .expect("records")
        .iter()
        .filter(|r| matching(r))
        .cloned()
        .collect()
}

/// Waits (up to the tests' I/O timeout) for a record `matching`.
fn wait_for(matching: impl Fn(&Line) -> bool) -> Option<Line> {
    let keeper = logger();
    let (records, _) = keeper
        .1
        .wait_timeout_while(keeper.0.lock().expect("records"), common::IO_TIMEOUT, |v| {
            !v.iter().any(&matching)
        })
        .expect("records");
    records.iter().find(|r| matching(r)).cloned()
}

#[test]
fn serve_logs_a_failed_handshake_at_warn_without_on_client_error() {
    let keeper = logger();
    let pki = pki();
    let listener = common::listener_with(BindOptions::new(), &pki.server_context());
    let port = listener.port();
    let stop = listener.stop_handle();
    let server = std::thread::spawn(move || listener.serve(|_stream| Ok::<(), std::io::Error>(())));
    // Not TLS: the handshake fails, and nobody set on_client_error.
    let mut tcp = TcpStream::connect(("127.0.0.1", port)).expect("connect");
    tcp_timeouts(&tcp);
    tcp.write_all(b"GET / HTTP/1.1\r\nHost: x\r\n\r\n")
        .expect("write");
    let seen = wait_for(|(level, _, msg)| {
        *level == Level::Warn && msg.contains("connection from 127.0.0.1")
    });
    stop.stop();
    server.join().expect("serve thread").expect("serve");
    let (_, target, msg) = seen
        .unwrap_or_else(|| panic!("no warning logged: {:?}", keeper.0.lock().expect("records")));
    assert!(msg.contains("not valid TLS"), "{msg}");
    assert!(target.starts_with("securenet"), "{target}");
}

#[test]
fn enable_trace_goes_to_log_at_trace_level() {
    logger();
    let pki = pki();
    let (c, s) = handshake_with(
        &pki.server_context(),
        BindOptions::new(),
        client(pki.trust_context()).enable_trace(true),
        "localhost",
    );
    c.expect("client");
    s.expect("server");
    let lines = records(|(level, target, msg)| {
        *level == Level::Trace && target == "securenet::trace" && msg.contains("[client localhost]")
    });
    assert!(
        lines
            .iter()
            .any(|(_, _, m)| m.contains("sent handshake ClientHello")),
        "{lines:?}"
    );
    assert!(
        lines
            .iter()
            .any(|(_, _, m)| m.contains("handshake complete")),
        "{lines:?}"
    );
}

#[test]
fn a_staple_left_out_is_logged_at_warn_without_on_client_error() {
    logger();
    let pki = pki();
    let missing = std::env::temp_dir().join(format!(
        "securenet-logging-{}-no-such-ocsp.der",
        std::process::id()
    ));
    let (c, s) = handshake_with(
        &pki.server_context(),
        BindOptions::new().reload_ocsp_file(&missing),
        client(pki.trust_context()),
        "localhost",
    );
    s.expect("server");
    assert_eq!(c.expect("client").ocsp_response(), None);
    let name = missing.display().to_string();
    let lines = records(|(level, _, msg)| {
        *level == Level::Warn && msg.contains(&name) && msg.contains("nothing is stapled")
    });
    assert_eq!(lines.len(), 1, "reported once, at the first accept");
}
