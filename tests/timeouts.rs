//! Every wait has a timeout that fires within the set time + 10 %, names its
//! phase, and (for reads and writes) leaves the stream usable.

mod common;

use std::io::{ErrorKind, Read, Write};
use std::net::TcpStream;
use std::sync::mpsc;
use std::thread;
use std::time::{Duration, Instant};

use common::{IO_TIMEOUT, client, serve_one};
use securenet::{BindOptions, ConnectOptions, Error, Phase};

/// The timeout every test here sets.
const SET: Duration = Duration::from_millis(800);

/// Checks that `err` is a timeout of `phase` and that it fired after `SET`
/// but within `SET` + 10 %; prints the figure.
fn assert_fired(err: &Error, phase: Phase, elapsed: Duration) {
    assert!(
        matches!(err, Error::Timeout { phase: p, .. } if *p == phase),
        "{err:?}"
    );
    assert_eq!(err.io_kind(), ErrorKind::TimedOut);
    assert!(
        err.to_string()
            .starts_with(&format!("{phase} timed out after 800ms")),
        "{err}"
    );
    println!("{phase} timeout set to {SET:?} fired after {elapsed:?}");
    assert!(elapsed >= SET, "{phase}: fired early, after {elapsed:?}");
    assert!(
        elapsed <= SET + SET / 10,
        "{phase}: fired late, after {elapsed:?}"
    );
}

/// The connect timeout fires on a server whose accept queue is full
/// (backlog 1, nobody accepting).
#[test]
fn connect_timeout() {
    let pki = common::pki();
    let listener = BindOptions::new()
        .backlog(1)
        .bind("127.0.0.1", 0, &pki.server_context())
        .expect("bind");
    let port = listener.port();
    let _queued: Vec<_> = (0..4)
        .filter_map(|_| {
            TcpStream::connect_timeout(&([127, 0, 0, 1], port).into(), Duration::from_millis(200))
                .ok()
        })
        .collect();
    let start = Instant::now();
    let err = ConnectOptions::new()
        .timeout(SET)
        .connect("127.0.0.1", port)
        .expect_err("queue full");
    assert_fired(&err, Phase::Connect, start.elapsed());
    drop(listener);
}

/// A TCP server that accepts and never answers the ClientHello.
#[test]
fn client_handshake_timeout() {
    let (listener, port) = common::tcp_listener();
    let (done_tx, done_rx) = mpsc::channel::<()>();
    let server = thread::spawn(move || {
        let (s, _) = listener.accept().expect("accept");
        // Hold the connection open until the client gave up.
        let _ = done_rx.recv_timeout(IO_TIMEOUT);
        drop(s);
    });
    let options = ConnectOptions::new()
        .context(common::pki().trust_context())
        .timeout(IO_TIMEOUT)
        .handshake_timeout(SET);
    let start = Instant::now();
    let err = options
        .connect("localhost", port)
        .expect_err("no ServerHello");
    assert_fired(&err, Phase::Handshake, start.elapsed());
    done_tx.send(()).expect("done");
    server.join().expect("server");
}

/// A client that connects and never sends a ClientHello.
#[test]
fn server_handshake_timeout() {
    let pki = common::pki();
    let listener = BindOptions::new()
        .handshake_timeout(SET)
        .bind("127.0.0.1", 0, &pki.server_context())
        .expect("bind");
    let port = listener.port();
    let server = thread::spawn(move || {
        let (mut s, _) = listener.accept().expect("accept");
        let start = Instant::now();
        let err = s.handshake().expect_err("no ClientHello");
        (err, start.elapsed())
    });
    let silent = TcpStream::connect(("127.0.0.1", port)).expect("connect");
    common::tcp_timeouts(&silent);
    let (err, elapsed) = server.join().expect("server");
    assert_fired(&err, Phase::Handshake, elapsed);
}

#[test]
fn read_timeout_leaves_the_stream_usable() {
    let pki = common::pki();
    let (go_tx, go_rx) = mpsc::channel::<()>();
    let (port, server) = serve_one(BindOptions::new(), &pki.server_context(), move |mut s| {
        s.handshake().expect("handshake");
        go_rx.recv_timeout(IO_TIMEOUT).expect("go");
        s.write_all(b"late").expect("write");
        s.close().expect("close");
    });
    let mut c = client(pki.trust_context())
        .connect("localhost", port)
        .expect("connect");
    c.set_read_timeout(Some(SET)).expect("timeout");
    let mut buf = [0u8; 4];
    let start = Instant::now();
    let err = c.read(&mut buf).expect_err("nothing to read yet");
    let elapsed = start.elapsed();
    assert_eq!(err.kind(), ErrorKind::TimedOut);
    assert_fired(&Error::from(err), Phase::Read, elapsed);
    go_tx.send(()).expect("go");
    c.set_read_timeout(Some(IO_TIMEOUT)).expect("timeout");
    c.read_exact(&mut buf).expect("the stream still works");
    assert_eq!(&buf, b"late");
    server.join().expect("server");
}

/// As Go's crypto/tls: a write that times out may have left a record
/// half-written, so writing ends there; what earlier writes accepted
/// arrives whole, and nothing after the failure is sent.
#[test]
fn a_write_timeout_ends_writing_and_loses_nothing_accepted() {
    let pki = common::pki();
    let (go_tx, go_rx) = mpsc::channel::<()>();
    let (port, server) = serve_one(BindOptions::new(), &pki.server_context(), move |mut s| {
        s.handshake().expect("handshake");
        go_rx.recv_timeout(IO_TIMEOUT).expect("go");
        let mut got = 0usize;
        let mut buf = vec![0u8; 64 * 1024];
        loop {
            match s.read(&mut buf) {
                Ok(0) => return (got, None),
                Ok(n) => got += n,
                Err(e) => return (got, Some(e.kind())),
            }
        }
    });
    let mut c = client(pki.trust_context())
        .connect("localhost", port)
        .expect("connect");
    c.set_write_timeout(Some(SET)).expect("timeout");
    let chunk = vec![7u8; 64 * 1024];
    let mut accepted = 0usize;
    let (err, elapsed) = loop {
        let start = Instant::now();
        match c.write(&chunk) {
            Ok(n) => accepted += n,
            Err(e) => break (e, start.elapsed()),
        }
        assert!(accepted < 1 << 30, "the server never stopped reading");
    };
    assert_eq!(err.kind(), ErrorKind::TimedOut);
    assert_fired(&Error::from(err), Phase::Write, elapsed);
    go_tx.send(()).expect("go");
    c.set_write_timeout(Some(IO_TIMEOUT)).expect("timeout");
    let again = c.write_all(b"more").expect_err("writing has ended");
    assert_eq!(again.kind(), ErrorKind::BrokenPipe, "{again}");
    assert!(
        again.to_string().contains("earlier write failed"),
        "{again}"
    );
    assert_eq!(
        c.flush().expect_err("flush too").kind(),
        ErrorKind::BrokenPipe
    );
    c.close()
        .expect("close sends no close_notify after a broken write");
    let (got, end) = server.join().expect("server");
    assert!(
        got >= accepted && got < accepted + chunk.len(),
        "accepted {accepted}, the server got {got}"
    );
    assert_eq!(
        end,
        Some(ErrorKind::UnexpectedEof),
        "no close_notify: truncation"
    );
}

/// `secure` and `secure_server` over a `TcpStream` bound the handshake
/// (they used to leave it to the stream's own timeouts, none by default).
#[test]
fn secure_and_secure_server_over_tcp_bound_the_handshake() {
    let pki = common::pki();
    let (listener, port) = common::tcp_listener();
    let (done_tx, done_rx) = mpsc::channel::<()>();
    let silent = thread::spawn(move || {
        let held: Vec<_> = (0..2).map(|_| listener.accept().expect("accept")).collect();
        let _ = done_rx.recv_timeout(IO_TIMEOUT);
        drop(held);
    });
    let tcp = TcpStream::connect(("127.0.0.1", port)).expect("connect");
    let start = Instant::now();
    let err = ConnectOptions::new()
        .context(pki.trust_context())
        .handshake_timeout(SET)
        .secure(tcp, "localhost")
        .expect_err("the server never answers");
    assert_fired(&err, Phase::Handshake, start.elapsed());

    // The server side of a socket whose client never speaks.
    let tcp = TcpStream::connect(("127.0.0.1", port)).expect("connect");
    let mut s = securenet::SecureStream::secure_server(
        tcp,
        &pki.server_context(),
        &BindOptions::new().handshake_timeout(SET),
        &[],
    )
    .expect("secure_server");
    let start = Instant::now();
    let err = s.handshake().expect_err("the client never speaks");
    assert_fired(&err, Phase::Handshake, start.elapsed());
    done_tx.send(()).expect("done");
    silent.join().expect("silent");
}
