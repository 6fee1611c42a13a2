//! Full duplex through `split()`: two threads per side stream 256 MiB each
//! way through one connection at once, with small and large writes, checked
//! with SHA-256; a reader blocked in `read` does not stop the writer.

mod common;

use std::io::{Read, Write};
use std::sync::mpsc;
use std::thread;

use common::crypto::digest::{Context, SHA256};
use common::{IO_TIMEOUT, client};
use securenet::{BindOptions, ReadHalf, WriteHalf};

const EACH_WAY: usize = 256 * 1024 * 1024;

/// Deterministic bytes: a cheap generator so the test measures the stream.
fn fill(buf: &mut [u8], seed: &mut u64) {
    for chunk in buf.chunks_mut(8) {
        *seed = seed
            .wrapping_mul(6_364_136_223_846_793_005)
            .wrapping_add(1_442_695_040_888_963_407);
        let bytes = seed.to_le_bytes();
        chunk.copy_from_slice(&bytes[..chunk.len()]);
    }
}

/// Writes `EACH_WAY` bytes in sizes that cycle from 1 byte to 1 MiB.
fn send_all(mut w: WriteHalf, seed: u64) -> Vec<u8> {
    let sizes = [1usize, 7, 64, 1000, 16 * 1024, 100_000, 1024 * 1024];
    let mut digest = Context::new(&SHA256);
    let mut buf = vec![0u8; 1024 * 1024];
    let mut seed = seed;
    let mut sent = 0;
    let mut i = 0;
    while sent < EACH_WAY {
        let n = sizes[i % sizes.len()].min(EACH_WAY - sent);
        i += 1;
        fill(&mut buf[..n], &mut seed);
        w.write_all(&buf[..n]).expect("write");
        digest.update(&buf[..n]);
        sent += n;
    }
    w.flush().expect("flush");
    w.shutdown_write().expect("shutdown_write");
    digest.finish().as_ref().to_vec()
}

fn receive_all(mut r: ReadHalf) -> (usize, Vec<u8>) {
    let mut digest = Context::new(&SHA256);
    let mut buf = vec![0u8; 256 * 1024];
    let mut total = 0;
    loop {
        let n = r.read(&mut buf).expect("read");
        if n == 0 {
            break;
        }
        digest.update(&buf[..n]);
        total += n;
    }
    (total, digest.finish().as_ref().to_vec())
}

#[test]
fn two_threads_stream_256_mib_each_way_at_once() {
    let pki = common::pki();
    let bind = BindOptions::new().allow_half_open(true);
    let (port, server) = common::serve_one(bind, &pki.server_context(), |s| {
        let (r, w) = s.split().expect("server split");
        let sender = thread::spawn(move || send_all(w, 2));
        let received = receive_all(r);
        (received, sender.join().expect("server sender"))
    });
    let mut c = client(pki.trust_context())
        .allow_half_open(true)
        .connect("localhost", port)
        .expect("connect");
    common::with_timeouts(&mut c);
    let (r, w) = c.split().expect("client split");
    let sender = thread::spawn(move || send_all(w, 1));
    let (client_got, client_digest) = receive_all(r);
    let client_sent_digest = sender.join().expect("client sender");
    let ((server_got, server_digest), server_sent_digest) = server.join().expect("server");
    assert_eq!(client_got, EACH_WAY, "client received every byte");
    assert_eq!(server_got, EACH_WAY, "server received every byte");
    assert_eq!(server_digest, client_sent_digest, "client -> server intact");
    assert_eq!(client_digest, server_sent_digest, "server -> client intact");
}

#[test]
fn a_blocked_reader_does_not_stop_the_writer() {
    let pki = common::pki();
    let (done_tx, done_rx) = mpsc::channel::<()>();
    let (port, server) =
        common::serve_one(BindOptions::new(), &pki.server_context(), move |mut s| {
            let mut got = [0u8; 5];
            s.read_exact(&mut got).expect("read");
            // Reply only after the client has finished writing.
            done_rx.recv_timeout(IO_TIMEOUT).expect("done");
            s.write_all(b"reply").expect("reply");
            s.close().expect("close");
            got
        });
    let mut c = client(pki.trust_context())
        .connect("localhost", port)
        .expect("connect");
    common::with_timeouts(&mut c);
    let (mut r, mut w) = c.split().expect("split");
    let (tid_tx, tid_rx) = mpsc::channel();
    let reader = thread::spawn(move || {
        tid_tx.send(common::blocked::this_thread()).expect("tid");
        let mut got = Vec::new();
        r.read_to_end(&mut got).expect("read");
        got
    });
    // Write only once the reader is blocked in the socket: writing must not
    // wait for it.
    let tid = tid_rx.recv_timeout(IO_TIMEOUT).expect("reader started");
    match tid
        .as_deref()
        .and_then(common::blocked::wait_until_blocked_in_read)
    {
        Some(blocked) => assert!(blocked, "the reader never blocked in read"),
        None => common::skip(
            "a_blocked_reader_does_not_stop_the_writer",
            "cannot see where the reader blocks (no /proc): written without waiting",
        ),
    }
    w.write_all(b"hello")
        .expect("write while the reader blocks");
    done_tx.send(()).expect("done");
    assert_eq!(reader.join().expect("reader"), b"reply");
    assert_eq!(&server.join().expect("server"), b"hello");
}
