//! Full and resumed handshakes per second, thread per connection.

use std::io::{Read, Write};
use std::net::{TcpListener, TcpStream};
use std::sync::Arc;
use std::thread;
use std::time::Instant;

use rustls::{ClientConfig, ServerConfig, ServerConnection, StreamOwned};
use securenet::{BindOptions, SecurityContext};

use crate::setup::{
    DEFAULT, Pki, Tuning, Who, compare, line, our_client, our_contexts, raw_client, raw_configs,
    scaled, serve_each,
};

/// `pki_rsa` is made only when an RSA row runs (its key's generation
/// would blur callgrind's counts of the others).
pub fn handshakes<'a>(pki_ecdsa: &'a Pki, pki_rsa: impl Fn() -> &'a Pki) {
    println!("\n== full handshakes per second");
    let count = scaled(2000);
    for (name, rsa) in [("ECDSA P-256", false), ("RSA-2048", true)] {
        for (kx, x25519_only) in [("X25519MLKEM768", false), ("X25519", true)] {
            let t = Tuning {
                suite: None,
                x25519_only,
            };
            for threads in [1usize, 8] {
                let label = format!("{name} {kx}, {threads} thread(s)");
                if !row_wanted(&label) {
                    continue;
                }
                let pki = if rsa { pki_rsa() } else { pki_ecdsa };
                let [rate] =
                    compare(|who| [handshake_rate(count, threads, side(who, pki, t), false)]);
                line(&label, rate, "/s", true);
            }
        }
    }
    println!("\n== resumed handshakes per second (ECDSA P-256, default key exchange)");
    for threads in [1usize, 8] {
        let label = format!("resumed, {threads} thread(s)");
        if !row_wanted(&label) {
            continue;
        }
        let [rate] = compare(|who| {
            [handshake_rate(
                count,
                threads,
                side(who, pki_ecdsa, DEFAULT),
                true,
            )]
        });
        line(&label, rate, "/s", true);
    }
}

/// `SECURENET_BENCH_ROW=...` keeps the rows whose label has it (to
/// profile one, e.g. "ECDSA P-256 X25519, 1").
fn row_wanted(label: &str) -> bool {
    std::env::var("SECURENET_BENCH_ROW").map_or(true, |r| label.contains(r.as_str()))
}

/// The two ends of one side of a comparison.
pub enum Side {
    Raw((Arc<ClientConfig>, Arc<ServerConfig>)),
    Ours((SecurityContext, SecurityContext)),
    /// OpenSSL's `SslStream` at both ends (the OpenSSL rows).
    #[cfg(feature = "openssl")]
    OpenSsl(
        (
            Arc<openssl::ssl::SslConnector>,
            Arc<openssl::ssl::SslAcceptor>,
        ),
    ),
}

fn side(who: Who, pki: &Pki, t: Tuning) -> Side {
    match who {
        Who::Raw => Side::Raw(raw_configs(pki, t)),
        Who::Ours => Side::Ours(our_contexts(pki, t)),
    }
}

/// Handshakes per second: `threads` clients each doing their share in turn
/// against a thread-per-connection server; with `resume`, each client
/// reads once per connection so it holds tickets for the next.
pub fn handshake_rate(count: usize, threads: usize, side: Side, resume: bool) -> f64 {
    // Every client thread does the same share; the server expects exactly that many.
    let count = (count / threads).max(1) * threads;
    let side = match side {
        Side::Raw((mut c, s)) if !resume => {
            Arc::make_mut(&mut c).resumption = rustls::client::Resumption::disabled();
            Side::Raw((c, s))
        }
        other => other,
    };
    let listener = TcpListener::bind("127.0.0.1:0").expect("bind");
    let addr = listener.local_addr().expect("addr");
    let side = Arc::new(side);
    let server_side = side.clone();
    let server = serve_each(listener, count, move |sock| serve_one(sock, &server_side));
    let start = Instant::now();
    let clients: Vec<_> = (0..threads)
        .map(|_| {
            let side = side.clone();
            thread::spawn(move || {
                let options = match &*side {
                    Side::Ours((ctx, _)) => Some(our_client(ctx).resume_sessions(resume)),
                    _ => None,
                };
                for _ in 0..count / threads {
                    match (&*side, &options) {
                        (Side::Raw((cc, _)), _) => {
                            let mut c = raw_client(cc, addr);
                            c.read_exact(&mut [0u8; 1]).expect("read");
                            let _ = c.write_all(b"y");
                        }
                        (Side::Ours(_), Some(options)) => {
                            let mut c = options.connect("127.0.0.1", addr.port()).expect("connect");
                            c.read_exact(&mut [0u8; 1]).expect("read");
                            let _ = c.write_all(b"y");
                        }
                        #[cfg(feature = "openssl")]
                        (Side::OpenSsl((connector, _)), _) => {
                            let sock = TcpStream::connect(addr).expect("connect");
                            sock.set_nodelay(true).expect("nodelay");
                            let mut c = connector.connect("localhost", sock).expect("handshake");
                            c.read_exact(&mut [0u8; 1]).expect("read");
                            let _ = c.write_all(b"y");
                        }
                        (Side::Ours(_), None) => unreachable!("options are set for ours"),
                    }
                }
            })
        })
        .collect();
    for c in clients {
        c.join().expect("client");
    }
    let elapsed = start.elapsed().as_secs_f64();
    server.join().expect("server");
    count as f64 / elapsed
}

/// One server connection (`serve_each` has set TCP_NODELAY): one byte
/// each way.
fn serve_one(sock: TcpStream, side: &Side) {
    match side {
        Side::Raw((_, sc)) => {
            let mut s = StreamOwned::new(ServerConnection::new(sc.clone()).expect("c"), sock);
            let _ = s.write_all(b"x");
            let _ = s.read(&mut [0u8; 1]);
        }
        Side::Ours((_, ctx)) => {
            let mut s = securenet::SecureStream::secure_server(sock, ctx, &BindOptions::new(), &[])
                .expect("server");
            let _ = s.write_all(b"x");
            let _ = s.read(&mut [0u8; 1]);
        }
        #[cfg(feature = "openssl")]
        Side::OpenSsl((_, acceptor)) => {
            if let Ok(mut s) = acceptor.accept(sock) {
                let _ = s.write_all(b"x");
                let _ = s.read(&mut [0u8; 1]);
            }
        }
    }
}
