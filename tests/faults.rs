//! TLS streams through a fault proxy: bytes dribbled one at a time (a
//! handshake's too, and one that then stalls), a slow
//! reader, full duplex through a choppy link that pauses, connections cut with FIN, RST
//! or silence at random offsets; a split reader that owes a KeyUpdate reply
//! while the write side is full; WebSocket messages of random sizes (with
//! and without permessage-deflate) through a choppy link.

mod common;

use std::io::{ErrorKind, Read, Write};
use std::net::TcpListener;
use std::sync::Arc;
use std::sync::atomic::Ordering;
use std::sync::mpsc;
use std::thread::{self, JoinHandle};
use std::time::{Duration, Instant};

use common::IO_TIMEOUT;
use common::crypto::digest::{Context, SHA256};
use common::fault::{Cut, Fault, FaultProxy, Rng, fault_proxy};
use securenet::testing::TestPki;
use securenet::{BindOptions, Error, Phase, SecureStream};

const LIMIT: Duration = Duration::from_secs(1);

fn sha256(bytes: &[u8]) -> Vec<u8> {
    let mut c = Context::new(&SHA256);
    c.update(bytes);
    c.finish().as_ref().to_vec()
}

/// A server for one connection running `handler` on its stream (with test
/// timeouts), and its port.
fn server<T: Send + 'static>(
    pki: &TestPki,
    handler: impl FnOnce(SecureStream) -> T + Send + 'static,
) -> (u16, JoinHandle<T>) {
    common::serve_one(BindOptions::new(), &pki.server_context(), handler)
}

/// Connects through `proxy` with its faults off for the handshake, then on.
fn connect_via(proxy: &FaultProxy, pki: &TestPki) -> SecureStream {
    proxy.faulty.store(false, Ordering::Relaxed);
    let mut c = common::client(pki.trust_context())
        .connect("localhost", proxy.port)
        .expect("connect through the proxy");
    common::with_timeouts(&mut c);
    c.handshake().expect("handshake");
    proxy.faulty.store(true, Ordering::Relaxed);
    c
}

/// Pieces of exactly one byte, `gap` apart.
fn dribble(gap: Duration) -> Fault {
    let us = gap.as_micros() as usize;
    Fault {
        piece: (1, 1),
        delay_us: (us, us),
        ..Fault::clean()
    }
}

#[test]
fn a_record_dribbled_byte_by_byte_times_out_within_the_read_timeout() {
    let pki = common::pki();
    let (go_tx, go_rx) = mpsc::channel::<()>();
    let (port, server) = server(&pki, move |mut s| {
        s.handshake().expect("handshake");
        go_rx.recv_timeout(IO_TIMEOUT).expect("go");
        // One record of 1,000 bytes: at 20 ms a byte, 20 s to arrive.
        let _ = s.write_all(&[7u8; 1000]);
    });
    let proxy = fault_proxy(port, Fault::clean(), dribble(Duration::from_millis(20)));
    let mut c = connect_via(&proxy, &pki);
    go_tx.send(()).expect("go");
    c.set_read_timeout(Some(LIMIT)).expect("timeout");
    let start = Instant::now();
    let err = c
        .read(&mut [0u8; 1000])
        .expect_err("the record is not in yet");
    let took = start.elapsed();
    assert_eq!(err.kind(), ErrorKind::TimedOut);
    assert!(
        matches!(
            Error::from(err),
            Error::Timeout {
                phase: Phase::Read,
                ..
            }
        ),
        "the read phase"
    );
    assert!(took >= LIMIT && took < LIMIT * 2, "took {took:?}");
    drop(c);
    server.join().expect("server");
    proxy.handle.join().expect("proxy");
}

/// A client handshake with `port` under a handshake timeout of `LIMIT`:
/// checks it failed as a handshake timeout, returns how long it took.
fn handshake_timing_out(pki: &TestPki, port: u16) -> Duration {
    let start = Instant::now();
    let err = common::client(pki.trust_context())
        .handshake_timeout(LIMIT)
        .connect("localhost", port)
        .and_then(|mut c| c.handshake())
        .expect_err("the server's flight never arrives whole");
    let took = start.elapsed();
    assert!(
        matches!(
            err,
            Error::Timeout {
                phase: Phase::Handshake,
                ..
            }
        ),
        "the handshake phase: {err:?}"
    );
    took
}

#[test]
fn a_handshake_dribbled_byte_by_byte_times_out_within_the_handshake_timeout() {
    // Each byte arrives well within any socket timeout: the handshake's
    // own deadline must end it.
    let pki = common::pki();
    let (port, server) = server(&pki, |mut s| {
        let _ = s.handshake();
    });
    // The server's first flight (over 1 KiB) at 5 ms a byte: 5 s and more.
    let proxy = fault_proxy(port, Fault::clean(), dribble(Duration::from_millis(5)));
    let took = handshake_timing_out(&pki, proxy.port);
    assert!(took >= LIMIT && took < LIMIT * 2, "took {took:?}");
    server.join().expect("server");
    proxy.handle.join().expect("proxy");
}

#[test]
fn a_handshake_that_dribbles_then_stalls_ends_at_its_deadline() {
    // A raw fake server answers the ClientHello with the start of a record
    // one byte every 20 ms for 0.9 of the handshake timeout, then stalls:
    // the stalled read must end by the deadline, not a full timeout after
    // the socket's timeout was last set.
    let listener = TcpListener::bind("127.0.0.1:0").expect("bind");
    let port = listener.local_addr().expect("addr").port();
    let server = thread::spawn(move || {
        let (mut sock, _) = listener.accept().expect("accept");
        common::tcp_timeouts(&sock);
        let _ = sock.read(&mut [0u8; 4096]);
        // A handshake record announcing 256 bytes, then its body slowly.
        let _ = sock.write_all(&[0x16, 0x03, 0x03, 0x01, 0x00]);
        let start = Instant::now();
        while start.elapsed() < LIMIT * 9 / 10 {
            if sock.write_all(&[0x02]).is_err() {
                return;
            }
            thread::sleep(Duration::from_millis(20)); // slow peer
        }
        // Stalled: wait for the client to give up.
        let _ = sock.read(&mut [0u8; 64]);
    });
    let pki = common::pki();
    let took = handshake_timing_out(&pki, port);
    assert!(took >= LIMIT && took < LIMIT * 3 / 2, "took {took:?}");
    server.join().expect("server");
}

#[test]
fn a_write_to_a_slow_reader_times_out_within_the_write_timeout() {
    let pki = common::pki();
    let (port, server) = server(&pki, move |mut s| {
        let mut sink = vec![0u8; 64 * 1024];
        while let Ok(n) = s.read(&mut sink) {
            if n == 0 {
                break;
            }
        }
    });
    // The proxy takes the client's bytes slowly: 1-2 KiB every 5-10 ms.
    let slow = Fault {
        piece: (1024, 2048),
        delay_us: (5_000, 10_000),
        ..Fault::clean()
    };
    let proxy = fault_proxy(port, slow, Fault::clean());
    let mut c = connect_via(&proxy, &pki);
    c.set_write_timeout(Some(LIMIT)).expect("timeout");
    let chunk = vec![1u8; 64 * 1024];
    let mut longest = Duration::ZERO;
    let err = loop {
        let start = Instant::now();
        let r = c.write(&chunk);
        longest = longest.max(start.elapsed());
        if let Err(e) = r {
            break e;
        }
    };
    assert_eq!(err.kind(), ErrorKind::TimedOut, "{err}");
    assert!(longest < LIMIT * 2, "a write took {longest:?}");
    drop(c);
    server.join().expect("server");
    proxy.handle.join().expect("proxy");
}

/// Sends `data` on `w` and reads as much on `r`, in two threads; returns
/// the SHA-256 of what was read.
fn duplex<R, W>(mut r: R, mut w: W, data: Vec<u8>) -> Vec<u8>
where
    R: Read + Send + 'static,
    W: Write + Send + 'static,
{
    let len = data.len();
    let writer = thread::spawn(move || {
        for piece in data.chunks(40_000) {
            w.write_all(piece).expect("write");
        }
        w.flush().expect("flush");
        w
    });
    let mut got = vec![0u8; len];
    r.read_exact(&mut got).expect("read");
    drop(writer.join().expect("writer"));
    sha256(&got)
}

#[test]
fn eight_mib_each_way_through_a_choppy_link_arrive_intact() {
    const SIZE: usize = 8 << 20;
    let pki = common::pki();
    let mut rng = Rng::new(42);
    let (to_server, to_client) = (rng.bytes(SIZE), rng.bytes(SIZE));
    let (want_server, want_client) = (sha256(&to_server), sha256(&to_client));
    let (port, server) = server(&pki, move |s| {
        let (r, w) = s.split().expect("split");
        duplex(r, w, to_client)
    });
    // Pieces of 1 byte to 16 KiB, so records arrive split anywhere, and a
    // pause halfway one way.
    let mut down = Fault::choppy(16 * 1024, 50, 2);
    down.pause = Some((SIZE / 2, Duration::from_millis(200)));
    let proxy = fault_proxy(port, Fault::choppy(16 * 1024, 50, 1), down);
    let c = connect_via(&proxy, &pki);
    let (r, w) = c.split().expect("split");
    assert_eq!(duplex(r, w, to_server), want_client, "client got it all");
    assert_eq!(
        server.join().expect("server"),
        want_server,
        "server got it all"
    );
    proxy.handle.join().expect("proxy");
}

/// What a reader saw of a stream cut at some offset.
struct Seen {
    bytes: Vec<u8>,
    end: std::io::Result<usize>,
    took: Duration,
}

fn read_until_the_end(s: &mut SecureStream) -> Seen {
    let start = Instant::now();
    let mut bytes = Vec::new();
    let mut buf = vec![0u8; 16 * 1024];
    let end = loop {
        match s.read(&mut buf) {
            Ok(0) => break Ok(0),
            Ok(n) => bytes.extend_from_slice(&buf[..n]),
            Err(e) => break Err(e),
        }
    };
    Seen {
        bytes,
        end,
        took: start.elapsed(),
    }
}

fn check_cut(case: &str, seen: &Seen, sent: &[u8], cut: Cut) {
    assert!(
        sent.starts_with(&seen.bytes),
        "{case}: what arrived is not what was sent"
    );
    let kind = match &seen.end {
        Ok(_) => panic!(
            "{case}: Ok(0) after {} bytes: a cut is never a clean end",
            seen.bytes.len()
        ),
        Err(e) => e.kind(),
    };
    let expected: &[ErrorKind] = match cut {
        Cut::Fin => &[ErrorKind::UnexpectedEof],
        Cut::Rst => &[ErrorKind::ConnectionReset, ErrorKind::UnexpectedEof],
        Cut::Silent => &[ErrorKind::TimedOut],
    };
    assert!(
        expected.contains(&kind),
        "{case}: {kind:?}, expected {expected:?}"
    );
    assert!(seen.took < IO_TIMEOUT, "{case}: took {:?}", seen.took);
}

#[test]
fn cuts_at_random_offsets_give_the_right_error_and_lose_nothing() {
    const SIZE: usize = 256 * 1024;
    let pki = common::pki();
    let mut rng = Rng::new(2026);
    for i in 0..20 {
        let cut = [Cut::Fin, Cut::Rst, Cut::Fin, Cut::Rst, Cut::Silent][i % 5];
        let server_reads = i % 2 == 1;
        // Past the handshake, before the end of the data.
        let offset = rng.range(8 * 1024, SIZE);
        let data = Rng::new(i as u64 + 1).bytes(SIZE);
        let case = format!("case {i}: {cut:?} at {offset}, server reads: {server_reads}");
        let (sent, for_server) = (data.clone(), data);
        let (port, server) = server(&pki, move |mut s| {
            s.set_read_timeout(Some(LIMIT)).expect("timeout");
            if server_reads {
                Some(read_until_the_end(&mut s))
            } else {
                s.handshake().expect("handshake");
                let _ = s.write_all(&for_server);
                let _ = s.close();
                None
            }
        });
        let faulty = Fault::clean().cut_at(offset, cut);
        let (up, down) = if server_reads {
            (faulty, Fault::clean())
        } else {
            (Fault::clean(), faulty)
        };
        let proxy = fault_proxy(port, up, down);
        let mut c = connect_via(&proxy, &pki);
        c.set_read_timeout(Some(LIMIT)).expect("timeout");
        if server_reads {
            let _ = c.write_all(&sent);
            let _ = c.close();
            let seen = server.join().expect("server").expect("seen");
            check_cut(&case, &seen, &sent, cut);
        } else {
            let seen = read_until_the_end(&mut c);
            check_cut(&case, &seen, &sent, cut);
            drop(c);
            server.join().expect("server");
        }
        drop(proxy);
    }
}

/// A raw rustls server (TLS 1.3) that, once told, sends a KeyUpdate that
/// asks for ours, then some data, without reading anything.
fn key_updating_server(pki: &TestPki, go: mpsc::Receiver<()>) -> (u16, JoinHandle<()>) {
    let config = common::rustls_server_config(pki, rustls::DEFAULT_VERSIONS);
    let listener = TcpListener::bind("127.0.0.1:0").expect("bind");
    let port = listener.local_addr().expect("addr").port();
    let handle = thread::spawn(move || {
        let (sock, _) = listener.accept().expect("accept");
        common::tcp_timeouts(&sock);
        let conn = rustls::ServerConnection::new(Arc::new(config)).expect("conn");
        let mut tls = rustls::StreamOwned::new(conn, sock);
        while tls.conn.is_handshaking() {
            tls.conn.complete_io(&mut tls.sock).expect("handshake");
        }
        go.recv_timeout(IO_TIMEOUT).expect("go");
        tls.conn.refresh_traffic_keys().expect("key update");
        tls.write_all(b"after the key update").expect("write");
        tls.flush().expect("flush");
        // Hold the connection until the client is done.
        let _ = go.recv_timeout(IO_TIMEOUT);
    });
    (port, handle)
}

#[test]
fn a_split_reader_that_owes_a_key_update_reply_does_not_block_on_a_full_socket() {
    let pki = common::pki();
    let (go_tx, go_rx) = mpsc::channel::<()>();
    let (port, server) = key_updating_server(&pki, go_rx);
    let c = common::client(pki.trust_context())
        .connect("localhost", port)
        .expect("connect");
    assert_eq!(c.protocol_version().as_deref(), Some("TLSv1.3"));
    let (mut r, mut w) = c.split().expect("split");
    r.set_read_timeout(Some(IO_TIMEOUT)).expect("timeout");
    // Fill the socket: the server reads nothing, so writes stop.
    w.set_write_timeout(Some(Duration::from_millis(300)))
        .expect("timeout");
    let chunk = vec![0u8; 64 * 1024];
    while w.write(&chunk).is_ok() {}
    go_tx.send(()).expect("go");
    let start = Instant::now();
    let mut buf = [0u8; 20];
    r.read_exact(&mut buf)
        .expect("the data after the key update, not a write error");
    assert_eq!(&buf, b"after the key update");
    assert!(
        start.elapsed() < LIMIT,
        "the reader waited {:?}",
        start.elapsed()
    );
    let _ = go_tx.send(());
    drop((r, w));
    server.join().expect("server");
}

/// A WebSocket echo server over plain TCP for one connection.
fn ws_echo_server(options: securenet::WebSocketOptions) -> (u16, JoinHandle<usize>) {
    use securenet::{Message, WebSocket};
    let (listener, port) = common::tcp_listener();
    let handle = thread::spawn(move || {
        let (s, _) = listener.accept().expect("accept");
        common::tcp_timeouts(&s);
        let mut ws = WebSocket::accept(s, &options).expect("upgrade");
        let mut echoed = 0;
        loop {
            match ws.read().expect("read") {
                Message::Binary(b) => ws.send_binary(&b).expect("echo"),
                Message::Text(t) => ws.send_text(&t).expect("echo"),
                Message::Close(_) => return echoed,
                _ => continue,
            }
            echoed += 1;
        }
    });
    (port, handle)
}

#[test]
fn websocket_messages_of_random_sizes_cross_a_choppy_link_intact() {
    use securenet::{CompressionOptions, Message, WebSocketOptions};
    for compression in [
        CompressionOptions::disabled(),
        CompressionOptions::default(),
    ] {
        let options = WebSocketOptions::new().compression(compression);
        let (port, server) = ws_echo_server(options.clone());
        let proxy = fault_proxy(
            port,
            Fault::choppy(8 * 1024, 20, 3),
            Fault::choppy(8 * 1024, 20, 4),
        );
        let mut ws = options
            .connect(&format!("ws://127.0.0.1:{}/", proxy.port))
            .expect("connect through the proxy");
        ws.set_read_timeout(Some(IO_TIMEOUT)).expect("timeout");
        ws.set_write_timeout(Some(IO_TIMEOUT)).expect("timeout");
        let mut rng = Rng::new(if compression.enabled { 11 } else { 12 });
        let mut sizes = vec![0, 1, 125, 126, 65_535, 65_536, 2 << 20];
        sizes.extend((0..13).map(|_| rng.range(0, 2 << 20)));
        for (i, &size) in sizes.iter().enumerate() {
            // Half random (incompressible), half text (compressible).
            if i % 2 == 0 {
                let data = rng.bytes(size);
                ws.send_binary(&data).expect("send");
                assert_eq!(
                    ws.read().expect("echo"),
                    Message::Binary(data),
                    "{size} bytes"
                );
            } else {
                let text = "é and more ".repeat(size / 12 + 1);
                ws.send_text(&text).expect("send");
                assert_eq!(
                    ws.read().expect("echo"),
                    Message::Text(text),
                    "{size} bytes"
                );
            }
        }
        ws.close(Some((1000, "done"))).expect("close");
        assert_eq!(server.join().expect("server"), sizes.len());
        proxy.handle.join().expect("proxy");
    }
}
