//! Slow and silent clients: 50 that connect and never send a ClientHello and
//! 50 that send half of one hold server threads, but do not delay a real
//! client, and are dropped when the listener's handshake_timeout expires.

mod common;

use std::io::{Read, Write};
use std::net::TcpStream;
use std::sync::mpsc;
use std::thread;
use std::time::{Duration, Instant};

use common::{IO_TIMEOUT, client, with_timeouts};
use securenet::{BindOptions, Error, Phase};

const STALLED: usize = 50;
const HANDSHAKE_TIMEOUT: Duration = Duration::from_secs(3);

/// The first flight of a real securenet client: its ClientHello record.
fn client_hello(pki: &securenet::testing::TestPki) -> Vec<u8> {
    let (listener, port) = common::tcp_listener();
    let options = client(pki.trust_context()).handshake_timeout(Duration::from_millis(500));
    let connecting = thread::spawn(move || options.connect("localhost", port));
    let (mut s, _) = listener.accept().expect("accept");
    common::tcp_timeouts(&s);
    let mut header = [0u8; 5];
    s.read_exact(&mut header).expect("record header");
    assert_eq!(header[0], 22, "a handshake record");
    let len = usize::from(u16::from_be_bytes([header[3], header[4]]));
    let mut hello = header.to_vec();
    hello.resize(5 + len, 0);
    s.read_exact(&mut hello[5..]).expect("ClientHello");
    drop(s);
    let _ = connecting.join();
    hello
}

#[test]
fn silent_and_half_hello_clients_do_not_delay_a_real_client() {
    let pki = common::pki();
    let hello = client_hello(&pki);
    let (errors_tx, errors_rx) = mpsc::channel();
    let listener = BindOptions::new()
        .handshake_timeout(HANDSHAKE_TIMEOUT)
        .on_client_error(move |err: &Error, _| {
            let _ = errors_tx.send((
                matches!(
                    err,
                    Error::Timeout {
                        phase: Phase::Handshake,
                        ..
                    }
                ),
                err.to_string(),
            ));
        })
        .bind("127.0.0.1", 0, &pki.server_context())
        .expect("bind");
    let port = listener.port();
    // Serves until the test process ends.
    thread::spawn(move || {
        listener.serve(|mut s| {
            with_timeouts(&mut s);
            let mut buf = [0u8; 4];
            s.read_exact(&mut buf)?;
            s.write_all(&buf)?;
            s.close()
        })
    });

    let stalled_at = Instant::now();
    let mut stalled = Vec::new();
    for i in 0..2 * STALLED {
        let mut s = TcpStream::connect(("127.0.0.1", port)).expect("connect");
        common::tcp_timeouts(&s);
        if i % 2 == 1 {
            s.write_all(&hello[..hello.len() / 2])
                .expect("half a hello");
        }
        stalled.push(s);
    }

    let start = Instant::now();
    let mut c = client(pki.trust_context())
        .connect("localhost", port)
        .expect("the real client connects");
    let handshake = start.elapsed();
    with_timeouts(&mut c);
    c.write_all(b"ping").expect("write");
    let mut echo = [0u8; 4];
    c.read_exact(&mut echo).expect("echo");
    assert_eq!(&echo, b"ping");
    println!(
        "real client's handshake with {} stalled clients connected: {handshake:?}",
        2 * STALLED
    );
    // Nothing waited for the stalled clients (their timeout is 3 s).
    assert!(handshake < Duration::from_millis(100), "{handshake:?}");

    // Each stalled connection is closed by the server once handshake_timeout
    // expires: its read sees the end (or a reset), not a timeout of ours.
    for (i, mut s) in stalled.into_iter().enumerate() {
        let mut buf = [0u8; 64];
        match s.read(&mut buf) {
            Ok(0) => {}
            Ok(n) => panic!("stalled client {i} got {n} bytes"),
            Err(e) => assert_eq!(
                e.kind(),
                std::io::ErrorKind::ConnectionReset,
                "stalled client {i}: {e}"
            ),
        }
    }
    let dropped_after = stalled_at.elapsed();
    println!(
        "{} stalled clients dropped after {dropped_after:?} (handshake_timeout {HANDSHAKE_TIMEOUT:?})",
        2 * STALLED
    );
    assert!(dropped_after >= HANDSHAKE_TIMEOUT, "{dropped_after:?}");
    let mut timeouts = 0;
    for _ in 0..2 * STALLED {
        let (is_timeout, message) = errors_rx.recv_timeout(IO_TIMEOUT).expect("an error report");
        assert!(is_timeout, "{message}");
        timeouts += 1;
    }
    assert_eq!(timeouts, 2 * STALLED);
}
