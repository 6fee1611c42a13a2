//! Load: 200 concurrent connections each echo 1 MiB of random bytes both
//! ways through a thread-per-connection SecureListener (SHA-256 checked, no
//! byte lost), and 2,000 concurrent idle connections held by one server whose
//! threads have a small stack. Prints the figures.

mod common;

use std::io::{Read, Write};
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::{Arc, Mutex, mpsc};
use std::thread;
use std::time::{Duration, Instant};

use common::crypto::digest::{Context, SHA256};
use common::crypto::rand::{SecureRandom, SystemRandom};
use common::{IO_TIMEOUT, client, with_timeouts};
use securenet::{BindOptions, SecureListener};

const ECHO_CONNECTIONS: usize = 200;
const ECHO_BYTES: usize = 1 << 20;
const IDLE_CONNECTIONS: usize = 2_000;
/// How long an idle server connection waits for its client to close.
const IDLE_FOR_AT_MOST: Duration = Duration::from_secs(120);
/// Enough for a handshake in a debug build (see `thread_stack_size`).
const SMALL_STACK: usize = 256 * 1024;

/// The two tests run one at a time, so that each one's figures are its own.
static ONE_AT_A_TIME: Mutex<()> = Mutex::new(());

/// Serves `listener` with `handler` until the test process ends.
fn serve_forever(
    listener: SecureListener,
    handler: impl Fn(securenet::SecureStream) -> securenet::Result<()> + Send + Sync + 'static,
) {
    thread::spawn(move || listener.serve(handler));
}

fn sha256(bytes: &[u8]) -> Vec<u8> {
    let mut ctx = Context::new(&SHA256);
    ctx.update(bytes);
    ctx.finish().as_ref().to_vec()
}

#[test]
fn two_hundred_connections_echo_one_mebibyte_each() {
    let _alone = ONE_AT_A_TIME.lock().unwrap_or_else(|e| e.into_inner());
    let pki = common::pki();
    let listener = BindOptions::new()
        .handshake_timeout(IO_TIMEOUT)
        .backlog(ECHO_CONNECTIONS as u32)
        .bind("127.0.0.1", 0, &pki.server_context())
        .expect("bind");
    let port = listener.port();
    serve_forever(listener, |mut s| {
        s.set_read_timeout(Some(IO_TIMEOUT))?;
        s.set_write_timeout(Some(IO_TIMEOUT))?;
        let mut buf = vec![0u8; 64 * 1024];
        loop {
            let n = s.read(&mut buf)?;
            if n == 0 {
                return s.close();
            }
            s.write_all(&buf[..n])?;
        }
    });

    let start = Instant::now();
    let clients: Vec<_> = (0..ECHO_CONNECTIONS)
        .map(|i| {
            let options = client(pki.trust_context());
            thread::Builder::new()
                .name(format!("load client {i}"))
                .spawn(move || {
                    let mut data = vec![0u8; ECHO_BYTES];
                    SystemRandom::new().fill(&mut data).expect("random bytes");
                    let sent_hash = sha256(&data);
                    let mut stream = options.connect("localhost", port).expect("connect");
                    with_timeouts(&mut stream);
                    let (mut reader, mut writer) = stream.split().expect("split");
                    let sender = thread::spawn(move || {
                        for chunk in data.chunks(16 * 1024) {
                            writer.write_all(chunk).expect("write");
                        }
                        writer.flush().expect("flush");
                        writer.shutdown_write().expect("close_notify");
                    });
                    let mut echoed = Vec::with_capacity(ECHO_BYTES);
                    reader
                        .read_to_end(&mut echoed)
                        .expect("echo to a clean end");
                    sender.join().expect("sender");
                    (echoed.len(), sha256(&echoed) == sent_hash)
                })
                .expect("spawn")
        })
        .collect();
    let mut received = 0usize;
    let mut intact = 0usize;
    for c in clients {
        let (len, same) = c.join().expect("client thread");
        received += len;
        intact += usize::from(same && len == ECHO_BYTES);
    }
    let elapsed = start.elapsed();
    let total = ECHO_CONNECTIONS * ECHO_BYTES;
    println!(
        "{ECHO_CONNECTIONS} connections x {} MiB echoed in {elapsed:.2?}: {} MiB each way, \
         {:.1} MiB/s each way, {intact}/{ECHO_CONNECTIONS} SHA-256 equal, {} bytes lost",
        ECHO_BYTES >> 20,
        total >> 20,
        (total >> 20) as f64 / elapsed.as_secs_f64(),
        total - received,
    );
    assert_eq!(received, total, "bytes lost");
    assert_eq!(intact, ECHO_CONNECTIONS, "echoes differ from what was sent");
}

/// This process's resident memory and thread count, from /proc/self/status.
fn rss_and_threads() -> (u64, u64) {
    let status = std::fs::read_to_string("/proc/self/status").unwrap_or_default();
    let field = |name: &str| {
        status
            .lines()
            .find_map(|l| l.strip_prefix(name))
            .and_then(|v| v.split_whitespace().next())
            .and_then(|v| v.parse().ok())
            .unwrap_or(0)
    };
    (field("VmRSS:"), field("Threads:"))
}

#[test]
fn two_thousand_idle_connections_on_small_stacks() {
    let _alone = ONE_AT_A_TIME.lock().unwrap_or_else(|e| e.into_inner());
    let pki = common::pki();
    let listener = BindOptions::new()
        .handshake_timeout(IO_TIMEOUT)
        .backlog(1024)
        .thread_stack_size(SMALL_STACK)
        .bind("127.0.0.1", 0, &pki.server_context())
        .expect("bind");
    let port = listener.port();
    let (done_tx, done_rx) = mpsc::channel::<bool>();
    let in_handler = Arc::new(AtomicUsize::new(0));
    let counter = in_handler.clone();
    serve_forever(listener, move |mut s| {
        // Say "ready" once the handshake is done, then idle until the client
        // closes.
        counter.fetch_add(1, Ordering::SeqCst);
        s.set_read_timeout(Some(IDLE_FOR_AT_MOST))?;
        s.set_write_timeout(Some(IO_TIMEOUT))?;
        s.write_all(b"r")?;
        let mut buf = [0u8; 1];
        let clean = s.read(&mut buf).map(|n| n == 0).unwrap_or(false);
        let _ = done_tx.send(clean);
        Ok(())
    });

    let (rss_before, _) = rss_and_threads();
    let options = client(pki.trust_context());
    let start = Instant::now();
    let mut idle = Vec::with_capacity(IDLE_CONNECTIONS);
    for _ in 0..IDLE_CONNECTIONS {
        let mut c = options.connect("localhost", port).expect("connect");
        with_timeouts(&mut c);
        let mut ready = [0u8; 1];
        c.read_exact(&mut ready).expect("ready");
        idle.push(c);
    }
    let elapsed = start.elapsed();
    let (rss_after, threads_after) = rss_and_threads();
    // Every handler idles in its own thread, so this many run at once.
    let server_threads = in_handler.load(Ordering::SeqCst);
    println!(
        "{IDLE_CONNECTIONS} idle connections held in {elapsed:.2?}: {server_threads} server \
         threads with {} KiB stacks ({} threads in the process), resident memory +{} MiB \
         ({:.1} KiB per connection, both ends in this process)",
        SMALL_STACK / 1024,
        threads_after,
        rss_after.saturating_sub(rss_before) / 1024,
        rss_after.saturating_sub(rss_before) as f64 / IDLE_CONNECTIONS as f64,
    );
    assert_eq!(
        in_handler.load(Ordering::SeqCst),
        IDLE_CONNECTIONS,
        "every connection reached its handler"
    );
    for mut c in idle {
        c.close().expect("close");
    }
    let clean = (0..IDLE_CONNECTIONS)
        .filter(|_| done_rx.recv_timeout(IO_TIMEOUT).expect("closed"))
        .count();
    assert_eq!(clean, IDLE_CONNECTIONS, "every connection ended cleanly");
}
