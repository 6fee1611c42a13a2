//! Handshakes with the client and the server measured apart (the compare
//! bench runs both ends in one process). Server rows: the same client
//! (raw rustls) against securenet's `serve` and against raw rustls on a
//! thread each, each server a child process: handshakes per second and
//! the server's CPU per handshake. Client rows: securenet's client and raw
//! rustls's against the same server (raw rustls, a child process):
//! handshakes per second and the client's CPU per handshake. Each
//! handshake is full (no client resumes: both would otherwise resume
//! from the second connection on) and followed by one 4-byte echo (so
//! both ends are done with it); the connections stay open until the CPU
//! is read (a server thread that ends takes its run time with it), then
//! all close. The raw client of the client rows is what a raw rustls user
//! writes (`TcpStream::connect`, no timeouts); securenet's bounds its
//! connect and handshake by its default timeouts.
//!
//! ```text
//! cargo bench -p securenet-bench --bench sides                  # 8 rounds, 1,000 handshakes a side
//! taskset -c 0 cargo bench -p securenet-bench --bench sides     # pinned to one core
//! SECURENET_BENCH_SCALE=0.05 cargo bench -p securenet-bench --bench sides   # quick (CI)
//! ```

#[allow(dead_code)]
#[path = "../scale/procfs.rs"]
mod procfs;
#[allow(dead_code)]
#[path = "../scale/servers.rs"]
mod servers;
#[allow(dead_code)]
#[path = "../compare/setup.rs"]
mod setup;

use std::io::{self, Read, Write};
use std::net::{SocketAddr, TcpStream};
use std::sync::Arc;
use std::time::{Duration, Instant};

use rustls::pki_types::ServerName;
use rustls::{ClientConfig, ClientConnection, StreamOwned};
use securenet::{SecureStream, SecurityContext};

use servers::Kind;
use setup::{
    Figure, KillOnDrop, Tuning, compare_with, line_vs, our_client, our_contexts, raw_configs,
};

/// How long any one wait may take.
const TIMEOUT: Duration = Duration::from_secs(30);

/// A connection held until the round's figures are read.
enum Held {
    #[allow(dead_code)]
    Ours(Box<SecureStream>),
    #[allow(dead_code)]
    Raw(Box<StreamOwned<ClientConnection, TcpStream>>),
}

fn main() {
    let args: Vec<String> = std::env::args().collect();
    if servers::run_child(&args) {
        return;
    }
    let pki = setup::pki(false);
    let count = setup::scaled(1000).max(10);
    println!(
        "handshakes, client and server apart: {count} a side per round, each with one 4-byte echo, \
         connections held until the CPU is read; median of {} alternated rounds; ECDSA P-256, \
         TLS 1.3; {} cores",
        setup::repeats(),
        std::thread::available_parallelism().map_or(1, |n| n.get())
    );
    let start = |kind| match servers::start(kind, &pki) {
        Ok(server) => Some(server),
        Err(e) => {
            println!("{}: not started: {e}", kind.describe());
            None
        }
    };
    let (Some(ours), Some(raw)) = (start(Kind::Ours), start(Kind::Raw)) else {
        std::process::exit(1);
    };
    let failed = std::sync::atomic::AtomicBool::new(false);
    for (kx, x25519_only) in [("X25519MLKEM768", false), ("X25519", true)] {
        let tuning = Tuning {
            suite: None,
            x25519_only,
        };
        let (raw_client, _) = raw_configs(&pki, tuning);
        let mut raw_client = Arc::unwrap_or_clone(raw_client);
        raw_client.resumption = rustls::client::Resumption::disabled();
        let raw_client = Arc::new(raw_client);
        let (our_client_ctx, _) = our_contexts(&pki, tuning);
        // The server side: one client (raw rustls), two servers.
        let [[rate, cpu]] = compare_with(0usize, [1usize], |side| {
            let server = if side == 0 { &ours } else { &raw };
            server_round(server, &raw_client, count).unwrap_or_else(|e| {
                println!("server {side}: {e}");
                failed.store(true, std::sync::atomic::Ordering::Relaxed);
                [f64::NAN; 2]
            })
        });
        print_rows(&format!("server side, {kx}"), "server", rate, cpu);
        // The client side: one server (raw rustls), two clients.
        let port = raw.1;
        let [[rate, cpu]] = compare_with(0usize, [1usize], |side| {
            client_round(side == 0, &our_client_ctx, &raw_client, port, count).unwrap_or_else(|e| {
                println!("client {side}: {e}");
                failed.store(true, std::sync::atomic::Ordering::Relaxed);
                [f64::NAN; 2]
            })
        });
        print_rows(&format!("client side, {kx}"), "client", rate, cpu);
    }
    if failed.load(std::sync::atomic::Ordering::Relaxed) {
        std::process::exit(1);
    }
}

/// A side's two rows: handshakes per second, and `who`'s CPU per
/// handshake, against raw rustls.
fn print_rows(label: &str, who: &str, rate: Figure, cpu: Figure) {
    line_vs(&format!("{label}: handshakes"), rate, "/s", true, "rustls");
    line_vs(&format!("{label}: {who} CPU"), cpu, "µs", false, "rustls");
}

/// `count` handshakes (and echoes) of a raw rustls client against
/// `server`: handshakes per second, and the server's CPU per handshake in
/// microseconds.
fn server_round(
    server: &(KillOnDrop, u16),
    config: &Arc<ClientConfig>,
    count: usize,
) -> Result<[f64; 2], String> {
    let pid = server.0.0.id();
    let mut held = Vec::with_capacity(count);
    let before = procfs::thread_cpu(pid);
    let start = Instant::now();
    for _ in 0..count {
        held.push(Held::Raw(Box::new(
            raw_handshake(config, server.1, true).map_err(|e| format!("handshake: {e}"))?,
        )));
    }
    let secs = start.elapsed().as_secs_f64();
    let cpu = procfs::cpu_between(&before, &procfs::thread_cpu(pid));
    drop(held);
    Ok([count as f64 / secs, cpu * 1e6 / count as f64])
}

/// `count` handshakes (and echoes) of securenet's client (`ours`) or raw
/// rustls's against the server on `port`: handshakes per second, and this
/// thread's CPU per handshake in microseconds (the client runs on it).
fn client_round(
    ours: bool,
    context: &SecurityContext,
    config: &Arc<ClientConfig>,
    port: u16,
    count: usize,
) -> Result<[f64; 2], String> {
    let mut held = Vec::with_capacity(count);
    let cpu = setup::thread_cpu_secs();
    let start = Instant::now();
    for _ in 0..count {
        held.push(if ours {
            Held::Ours(Box::new(
                our_handshake(context, port).map_err(|e| format!("handshake: {e}"))?,
            ))
        } else {
            Held::Raw(Box::new(
                raw_handshake(config, port, false).map_err(|e| format!("handshake: {e}"))?,
            ))
        });
    }
    let secs = start.elapsed().as_secs_f64();
    let cpu = setup::thread_cpu_secs() - cpu;
    drop(held);
    Ok([count as f64 / secs, cpu * 1e6 / count as f64])
}

/// A raw rustls client: connect, handshake, one echo.
/// `bounded`: with a connect timeout and socket timeouts (the server
/// rows' client, the same for both servers); else as a raw rustls user
/// writes it (the client rows' baseline).
fn raw_handshake(
    config: &Arc<ClientConfig>,
    port: u16,
    bounded: bool,
) -> io::Result<StreamOwned<ClientConnection, TcpStream>> {
    let addr = SocketAddr::from(([127, 0, 0, 1], port));
    let sock = if bounded {
        let sock = TcpStream::connect_timeout(&addr, TIMEOUT)?;
        sock.set_read_timeout(Some(TIMEOUT))?;
        sock.set_write_timeout(Some(TIMEOUT))?;
        sock
    } else {
        TcpStream::connect(addr)?
    };
    sock.set_nodelay(true)?;
    let name = ServerName::try_from("localhost").map_err(io::Error::other)?;
    let conn = ClientConnection::new(Arc::clone(config), name).map_err(io::Error::other)?;
    let mut tls = StreamOwned::new(conn, sock);
    while tls.conn.is_handshaking() {
        tls.conn.complete_io(&mut tls.sock)?;
    }
    echo(&mut tls)?;
    Ok(tls)
}

/// securenet's client: connect (with its timeouts), handshake, one echo.
fn our_handshake(context: &SecurityContext, port: u16) -> io::Result<SecureStream> {
    let mut tls = our_client(context)
        .timeout(TIMEOUT)
        .resume_sessions(false)
        .connect("127.0.0.1", port)
        .map_err(io::Error::from)?;
    echo(&mut tls)?;
    Ok(tls)
}

fn echo(s: &mut (impl Read + Write)) -> io::Result<()> {
    s.write_all(b"ping")?;
    s.flush()?;
    let mut got = [0u8; 4];
    s.read_exact(&mut got)?;
    if &got != b"ping" {
        return Err(io::Error::other("echo: wrong bytes"));
    }
    Ok(())
}
