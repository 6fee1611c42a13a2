//! securenet against raw rustls `StreamOwned` (and tungstenite over it),
//! same configuration, same run, over loopback. Prints each figure with the
//! ratio ours/raw (for times and latencies, raw/ours, so above 1 is better
//! for us everywhere).
//!
//! ```text
//! cargo bench --bench compare                  # the full run (1 GiB bulk)
//! SECURENET_BENCH_SCALE=0.05 cargo bench --bench compare   # a quick run
//! cargo bench --bench compare -- writes        # one group (bulk, writes, echo,
//!                                              # handshakes, memory, websocket)
//! ```

use std::io::{IoSlice, Read, Write};
use std::net::{TcpListener, TcpStream};
use std::sync::Arc;
use std::thread;
use std::time::{Duration, Instant};

use rcgen::{CertificateParams, CertifiedIssuer, DnType, IsCa, KeyPair};
use rustls::pki_types::pem::PemObject;
use rustls::pki_types::{CertificateDer, PrivateKeyDer, ServerName};
use rustls::{ClientConfig, ClientConnection, ServerConfig, ServerConnection, StreamOwned};
use securenet::{
    BindOptions, CompressionOptions, ConnectOptions, Message, SecureListener, SecurityContext,
    WebSocket, WebSocketOptions,
};

fn scale() -> f64 {
    std::env::var("SECURENET_BENCH_SCALE")
        .ok()
        .and_then(|s| s.parse().ok())
        .unwrap_or(1.0)
}

fn scaled(n: usize) -> usize {
    ((n as f64 * scale()) as usize).max(1)
}

/// A CA and a server certificate for localhost, ECDSA P-256 or RSA-2048.
struct Pki {
    ca: String,
    cert: String,
    key: String,
}

fn pki(rsa: bool) -> Pki {
    let mut ca_params = CertificateParams::new(Vec::<String>::new()).expect("params");
    ca_params
        .distinguished_name
        .push(DnType::CommonName, "bench CA");
    ca_params.is_ca = IsCa::Ca(rcgen::BasicConstraints::Unconstrained);
    let ca =
        CertifiedIssuer::self_signed(ca_params, KeyPair::generate().expect("key")).expect("ca");
    let key = if rsa {
        KeyPair::generate_rsa_for(&rcgen::PKCS_RSA_SHA256, rcgen::RsaKeySize::_2048).expect("rsa")
    } else {
        KeyPair::generate().expect("key")
    };
    let params = CertificateParams::new(vec!["localhost".to_owned()]).expect("params");
    let cert = params.signed_by(&key, &ca).expect("cert");
    Pki {
        ca: ca.pem(),
        cert: cert.pem(),
        key: key.serialize_pem(),
    }
}

/// Provider restrictions shared by both sides of a comparison.
#[derive(Clone, Copy)]
struct Tuning {
    suite: Option<&'static str>,
    x25519_only: bool,
}

const DEFAULT: Tuning = Tuning {
    suite: None,
    x25519_only: false,
};

fn provider(t: Tuning) -> Arc<rustls::crypto::CryptoProvider> {
    let mut p = rustls::crypto::aws_lc_rs::default_provider();
    if let Some(name) = t.suite {
        p.cipher_suites.retain(|s| s.suite().as_str() == Some(name));
    }
    if t.x25519_only {
        p.kx_groups = vec![rustls::crypto::aws_lc_rs::kx_group::X25519];
    }
    Arc::new(p)
}

fn raw_configs(pki: &Pki, t: Tuning) -> (Arc<ClientConfig>, Arc<ServerConfig>) {
    let mut roots = rustls::RootCertStore::empty();
    roots
        .add(CertificateDer::from_pem_slice(pki.ca.as_bytes()).expect("ca"))
        .expect("root");
    let client = ClientConfig::builder_with_provider(provider(t))
        .with_safe_default_protocol_versions()
        .expect("versions")
        .with_root_certificates(roots)
        .with_no_client_auth();
    let server = ServerConfig::builder_with_provider(provider(t))
        .with_safe_default_protocol_versions()
        .expect("versions")
        .with_no_client_auth()
        .with_single_cert(
            vec![CertificateDer::from_pem_slice(pki.cert.as_bytes()).expect("cert")],
            PrivateKeyDer::from_pem_slice(pki.key.as_bytes()).expect("key"),
        )
        .expect("server config");
    (Arc::new(client), Arc::new(server))
}

fn our_contexts(pki: &Pki, t: Tuning) -> (SecurityContext, SecurityContext) {
    let mut client = SecurityContext::empty();
    client
        .set_trusted_certificates_bytes(pki.ca.as_bytes())
        .expect("trust");
    let mut server = SecurityContext::empty();
    server
        .use_certificate_chain_bytes(pki.cert.as_bytes())
        .expect("chain");
    server
        .use_private_key_bytes(pki.key.as_bytes())
        .expect("key");
    for ctx in [&mut client, &mut server] {
        if let Some(s) = t.suite {
            ctx.set_cipher_suites(&[s]).expect("suite");
        }
        if t.x25519_only {
            ctx.set_key_exchange_groups(&["X25519"]).expect("group");
        }
    }
    (client, server)
}

type RawClient = StreamOwned<ClientConnection, TcpStream>;
type RawServer = StreamOwned<ServerConnection, TcpStream>;

/// A raw rustls pair: (client, server) with the handshake done.
fn raw_pair(client: &Arc<ClientConfig>, server: &Arc<ServerConfig>) -> (RawClient, RawServer) {
    let listener = TcpListener::bind("127.0.0.1:0").expect("bind");
    let addr = listener.local_addr().expect("addr");
    let server = server.clone();
    let accept = thread::spawn(move || {
        let (sock, _) = listener.accept().expect("accept");
        sock.set_nodelay(true).expect("nodelay");
        let mut s = StreamOwned::new(ServerConnection::new(server).expect("conn"), sock);
        while s.conn.is_handshaking() {
            s.conn.complete_io(&mut s.sock).expect("server handshake");
        }
        s
    });
    let sock = TcpStream::connect(addr).expect("connect");
    sock.set_nodelay(true).expect("nodelay");
    let name = ServerName::try_from("localhost").expect("name");
    let mut c = StreamOwned::new(
        ClientConnection::new(client.clone(), name).expect("conn"),
        sock,
    );
    while c.conn.is_handshaking() {
        c.conn.complete_io(&mut c.sock).expect("client handshake");
    }
    (c, accept.join().expect("server"))
}

/// A securenet pair: (client, server) with the handshake done.
fn our_pair(
    client: &SecurityContext,
    server: &SecurityContext,
) -> (securenet::SecureStream, securenet::SecureStream) {
    let listener = SecureListener::bind("127.0.0.1", 0, server).expect("bind");
    let port = listener.port();
    let accept = thread::spawn(move || {
        let (mut s, _) = listener.accept().expect("accept");
        s.handshake().expect("server handshake");
        s
    });
    let c = ConnectOptions::new()
        .context(client.clone())
        .connect("localhost", port)
        .expect("connect");
    (c, accept.join().expect("server"))
}

/// Seconds to send `total` bytes in `write_size` writes and have them read.
fn transfer<C: Write + Send + 'static, S: Read + Send + 'static>(
    mut c: C,
    mut s: S,
    total: usize,
    write_size: usize,
) -> f64 {
    let reader = thread::spawn(move || {
        let mut buf = vec![0u8; 256 * 1024];
        let mut got = 0;
        while got < total {
            let n = s.read(&mut buf).expect("read");
            assert!(n > 0, "early end");
            got += n;
        }
        s
    });
    let chunk = vec![0x5au8; write_size];
    let start = Instant::now();
    let mut sent = 0;
    while sent < total {
        let n = write_size.min(total - sent);
        c.write_all(&chunk[..n]).expect("write");
        sent += n;
    }
    c.flush().expect("flush");
    drop(reader.join().expect("reader"));
    start.elapsed().as_secs_f64()
}

fn line(what: &str, ours: f64, raw: f64, unit: &str, higher_is_better: bool) {
    let ratio = if higher_is_better {
        ours / raw
    } else {
        raw / ours
    };
    println!("{what:<48} ours {ours:>10.1} {unit:<8} raw {raw:>10.1} {unit:<8} ratio {ratio:>6.2}");
}

fn bulk(pki: &Pki) {
    println!("\n== bulk client->server, 64 KiB writes");
    let total = scaled(1 << 30);
    for suite in [
        "TLS13_AES_128_GCM_SHA256",
        "TLS13_AES_256_GCM_SHA384",
        "TLS13_CHACHA20_POLY1305_SHA256",
    ] {
        let t = Tuning {
            suite: Some(suite),
            x25519_only: false,
        };
        let (rc, rs) = raw_configs(pki, t);
        let (oc, os) = our_contexts(pki, t);
        let (c, s) = raw_pair(&rc, &rs);
        let raw = total as f64 / transfer(c, s, total, 64 * 1024) / 1e6;
        let (c, s) = our_pair(&oc, &os);
        let ours = total as f64 / transfer(c, s, total, 64 * 1024) / 1e6;
        line(
            &format!("{} MiB {suite}", total >> 20),
            ours,
            raw,
            "MB/s",
            true,
        );
    }
}

fn write_sizes(pki: &Pki) {
    println!("\n== throughput by write size (TLS13_AES_128_GCM_SHA256)");
    let t = Tuning {
        suite: Some("TLS13_AES_128_GCM_SHA256"),
        x25519_only: false,
    };
    let (rc, rs) = raw_configs(pki, t);
    let (oc, os) = our_contexts(pki, t);
    for size in [64usize, 1024, 16 * 1024, 1024 * 1024] {
        let total = scaled((size * 100_000).min(256 << 20));
        let (c, s) = raw_pair(&rc, &rs);
        let raw = total as f64 / transfer(c, s, total, size) / 1e6;
        let (c, s) = our_pair(&oc, &os);
        let ours = total as f64 / transfer(c, s, total, size) / 1e6;
        line(&format!("writes of {size} B"), ours, raw, "MB/s", true);
    }
    // write_vectored of 256 x 64 B: ours packs them into full records;
    // StreamOwned forwards only the first slice per call.
    let rounds = scaled(20_000);
    let total = rounds * 256 * 64;
    let vectored = |w: &mut dyn Write| {
        let slices: Vec<Vec<u8>> = (0..256).map(|i| vec![i as u8; 64]).collect();
        for _ in 0..rounds {
            let mut io: Vec<IoSlice<'_>> = slices.iter().map(|s| IoSlice::new(s)).collect();
            let mut left: &mut [IoSlice<'_>] = &mut io;
            while !left.is_empty() {
                let n = w.write_vectored(left).expect("write_vectored");
                IoSlice::advance_slices(&mut left, n);
            }
        }
        w.flush().expect("flush");
    };
    let time = |mut c: Box<dyn Write + Send>, mut s: Box<dyn Read + Send>| {
        let reader = thread::spawn(move || {
            let mut buf = vec![0u8; 256 * 1024];
            let mut got = 0;
            while got < total {
                got += s.read(&mut buf).expect("read");
            }
        });
        let start = Instant::now();
        vectored(&mut *c);
        reader.join().expect("reader");
        start.elapsed().as_secs_f64()
    };
    let (c, s) = raw_pair(&rc, &rs);
    let raw = total as f64 / time(Box::new(c), Box::new(s)) / 1e6;
    let (c, s) = our_pair(&oc, &os);
    let ours = total as f64 / time(Box::new(c), Box::new(s)) / 1e6;
    line("write_vectored 256 x 64 B", ours, raw, "MB/s", true);
}

fn handshakes(pki_ecdsa: &Pki, pki_rsa: &Pki) {
    println!("\n== full handshakes per second");
    let count = scaled(2000);
    for (name, pki) in [("ECDSA P-256", pki_ecdsa), ("RSA-2048", pki_rsa)] {
        for (kx, x25519_only) in [("X25519MLKEM768", false), ("X25519", true)] {
            let t = Tuning {
                suite: None,
                x25519_only,
            };
            for threads in [1usize, 8] {
                let raw = handshake_rate(count, threads, Side::Raw(raw_configs(pki, t)), false);
                let ours = handshake_rate(count, threads, Side::Ours(our_contexts(pki, t)), false);
                line(
                    &format!("{name} {kx}, {threads} thread(s)"),
                    ours,
                    raw,
                    "/s",
                    true,
                );
            }
        }
    }
    println!("\n== resumed handshakes per second (ECDSA P-256, default key exchange)");
    let raw = handshake_rate(count, 1, Side::Raw(raw_configs(pki_ecdsa, DEFAULT)), true);
    let ours = handshake_rate(count, 1, Side::Ours(our_contexts(pki_ecdsa, DEFAULT)), true);
    line("resumed, 1 thread", ours, raw, "/s", true);
}

enum Side {
    Raw((Arc<ClientConfig>, Arc<ServerConfig>)),
    Ours((SecurityContext, SecurityContext)),
}

/// Handshakes per second: `threads` clients each doing their share in turn
/// against a thread-per-connection server; with `resume`, each client first
/// reads once so it holds tickets.
fn handshake_rate(count: usize, threads: usize, side: Side, resume: bool) -> f64 {
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
    let server = thread::spawn(move || {
        let mut workers = Vec::new();
        for _ in 0..count {
            let (sock, _) = listener.accept().expect("accept");
            let side = server_side.clone();
            workers.push(thread::spawn(move || {
                sock.set_nodelay(true).expect("nodelay");
                match &*side {
                    Side::Raw((_, sc)) => {
                        let mut s =
                            StreamOwned::new(ServerConnection::new(sc.clone()).expect("c"), sock);
                        let _ = s.write_all(b"x");
                        let _ = s.read(&mut [0u8; 1]);
                    }
                    Side::Ours((_, ctx)) => {
                        let mut s = securenet::SecureStream::secure_server(
                            sock,
                            ctx,
                            &BindOptions::new(),
                            &[],
                        )
                        .expect("server");
                        let _ = s.write_all(b"x");
                        let _ = s.read(&mut [0u8; 1]);
                    }
                }
            }));
            if workers.len() > 64 {
                for w in workers.drain(..) {
                    let _ = w.join();
                }
            }
        }
        for w in workers {
            let _ = w.join();
        }
    });
    let start = Instant::now();
    let clients: Vec<_> = (0..threads)
        .map(|_| {
            let side = side.clone();
            thread::spawn(move || {
                let options = match &*side {
                    Side::Ours((ctx, _)) => Some(
                        ConnectOptions::new()
                            .context(ctx.clone())
                            .resume_sessions(resume),
                    ),
                    Side::Raw(_) => None,
                };
                for _ in 0..count / threads {
                    match &*side {
                        Side::Raw((cc, _)) => {
                            let sock = TcpStream::connect(addr).expect("connect");
                            sock.set_nodelay(true).expect("nodelay");
                            let name = ServerName::try_from("localhost").expect("name");
                            let mut c = StreamOwned::new(
                                ClientConnection::new(cc.clone(), name).expect("c"),
                                sock,
                            );
                            c.read_exact(&mut [0u8; 1]).expect("read");
                            let _ = c.write_all(b"y");
                        }
                        Side::Ours(_) => {
                            let mut c = options
                                .as_ref()
                                .expect("options")
                                .connect("localhost", addr.port())
                                .expect("connect");
                            c.read_exact(&mut [0u8; 1]).expect("read");
                            let _ = c.write_all(b"y");
                        }
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

fn echo_latency(pki: &Pki) {
    println!("\n== 64 B echo round trip");
    let rounds = scaled(20_000);
    let measure = |mut c: Box<dyn ReadWrite>, mut s: Box<dyn ReadWrite>| {
        let server = thread::spawn(move || {
            let mut b = [0u8; 64];
            for _ in 0..rounds {
                s.read_exact(&mut b).expect("read");
                s.write_all(&b).expect("write");
            }
        });
        let mut times = Vec::with_capacity(rounds);
        let mut b = [7u8; 64];
        for _ in 0..rounds {
            let t = Instant::now();
            c.write_all(&b).expect("write");
            c.read_exact(&mut b).expect("read");
            times.push(t.elapsed());
        }
        server.join().expect("server");
        times.sort();
        (times[times.len() / 2], times[times.len() * 99 / 100])
    };
    let (rc, rs) = raw_configs(pki, DEFAULT);
    let (oc, os) = our_contexts(pki, DEFAULT);
    let (c, s) = raw_pair(&rc, &rs);
    let (raw50, raw99) = measure(Box::new(c), Box::new(s));
    let (c, s) = our_pair(&oc, &os);
    let (our50, our99) = measure(Box::new(c), Box::new(s));
    let us = |d: Duration| d.as_secs_f64() * 1e6;
    line("p50", us(our50), us(raw50), "us", false);
    line("p99", us(our99), us(raw99), "us", false);
    println!(
        "p50 difference ours - raw: {:+.2} us",
        us(our50) - us(raw50)
    );
}

trait ReadWrite: Read + Write + Send {}
impl<T: Read + Write + Send> ReadWrite for T {}

fn rss_kib() -> f64 {
    let statm = std::fs::read_to_string("/proc/self/statm").unwrap_or_default();
    let pages: f64 = statm
        .split_whitespace()
        .nth(1)
        .and_then(|p| p.parse().ok())
        .unwrap_or(0.0);
    pages * 4.0
}

/// Resident KiB per idle pair, measured in a fresh process so neither side
/// reuses heap pages the other freed.
fn idle_memory_child(which: &str) {
    let pki = pki(false);
    let n = scaled(1000).max(50);
    let (rc, rs) = raw_configs(&pki, DEFAULT);
    let (oc, os) = our_contexts(&pki, DEFAULT);
    // Warm up: one pair of each, so one-time allocations are not counted.
    drop(raw_pair(&rc, &rs));
    drop(our_pair(&oc, &os));
    let before = rss_kib();
    let mut raw = Vec::new();
    let mut ours = Vec::new();
    for _ in 0..n {
        if which == "raw" {
            let (mut c, mut s) = raw_pair(&rc, &rs);
            c.write_all(b"ping").expect("w");
            s.read_exact(&mut [0u8; 4]).expect("r");
            raw.push((c, s));
        } else {
            let (mut c, mut s) = our_pair(&oc, &os);
            c.write_all(b"ping").expect("w");
            s.read_exact(&mut [0u8; 4]).expect("r");
            ours.push((c, s));
        }
    }
    println!("{}", (rss_kib() - before) / n as f64);
}

fn idle_memory() {
    println!(
        "\n== resident memory per idle connection pair (client and server side, after one exchange)"
    );
    let exe = std::env::current_exe().expect("exe");
    let measure = |which: &str| -> f64 {
        let out = std::process::Command::new(&exe)
            .arg("--memory-child")
            .arg(which)
            .output()
            .expect("child");
        String::from_utf8_lossy(&out.stdout)
            .lines()
            .last()
            .and_then(|l| l.trim().parse().ok())
            .unwrap_or(f64::NAN)
    };
    let raw = measure("raw");
    let ours = measure("ours");
    line(
        &format!("{} idle pairs", scaled(1000).max(50)),
        ours,
        raw,
        "KiB",
        false,
    );
}

fn websocket(pki: &Pki) {
    println!("\n== WebSocket echo over wss, messages per second");
    let rounds = scaled(20_000);
    let (rc, rs) = raw_configs(pki, DEFAULT);
    let (oc, os) = our_contexts(pki, DEFAULT);
    for size in [64usize, 16 * 1024] {
        let payload = vec![b'a'; size];
        // tungstenite over StreamOwned.
        let raw = {
            let (c, s) = raw_pair(&rc, &rs);
            let server = thread::spawn(move || {
                let mut ws = tungstenite::accept(s).expect("accept");
                while let Ok(m) = ws.read() {
                    if m.is_close() {
                        break;
                    }
                    if m.is_text() || m.is_binary() {
                        ws.send(m).expect("echo");
                    }
                }
            });
            let (mut ws, _) = tungstenite::client("wss://localhost/", c).expect("client");
            let start = Instant::now();
            for _ in 0..rounds {
                ws.send(tungstenite::Message::binary(payload.clone()))
                    .expect("send");
                ws.read().expect("read");
            }
            let rate = rounds as f64 / start.elapsed().as_secs_f64();
            let _ = ws.close(None);
            let _ = ws.flush();
            drop(ws);
            let _ = server.join();
            rate
        };
        for (label, compression) in [
            ("off", CompressionOptions::disabled()),
            ("on", CompressionOptions::default()),
        ] {
            let (c, s) = our_pair(&oc, &os);
            let opts = WebSocketOptions::new().compression(compression);
            let server_opts = opts.clone();
            let server = thread::spawn(move || {
                let mut ws = WebSocket::accept(s, &server_opts).expect("accept");
                loop {
                    match ws.read() {
                        Ok(Message::Binary(b)) => ws.send_binary(&b).expect("echo"),
                        Ok(Message::Close(_)) | Err(_) => break,
                        Ok(_) => {}
                    }
                }
            });
            let mut ws = opts_client(c, &opts);
            let start = Instant::now();
            for _ in 0..rounds {
                ws.send_binary(&payload).expect("send");
                ws.read().expect("read");
            }
            let ours = rounds as f64 / start.elapsed().as_secs_f64();
            let _ = ws.close(None);
            let _ = server.join();
            line(
                &format!("{size} B, ours compression {label} vs tungstenite"),
                ours,
                raw,
                "msg/s",
                true,
            );
        }
    }
}

/// Our client over an already connected stream (the bench's own pair).
fn opts_client(
    stream: securenet::SecureStream,
    options: &WebSocketOptions,
) -> WebSocket<securenet::SecureStream> {
    options
        .connect_over(stream, "wss://localhost/")
        .expect("ws client")
}

fn main() {
    let args: Vec<String> = std::env::args().collect();
    if let Some(i) = args.iter().position(|a| a == "--memory-child") {
        idle_memory_child(args.get(i + 1).map_or("ours", String::as_str));
        return;
    }
    println!(
        "securenet vs rustls StreamOwned, scale {} ({} cores)",
        scale(),
        thread::available_parallelism().map_or(1, |n| n.get())
    );
    // `cargo bench --bench compare -- NAME` runs the groups whose name
    // contains NAME (bulk, writes, echo, handshakes, memory, websocket).
    let only = args.iter().skip(1).find(|a| !a.starts_with('-'));
    let run = |group: &str| only.is_none_or(|o| group.contains(o.as_str()));
    let ecdsa = pki(false);
    let rsa = pki(true);
    if run("bulk") {
        bulk(&ecdsa);
    }
    if run("writes") {
        write_sizes(&ecdsa);
    }
    if run("echo") {
        echo_latency(&ecdsa);
    }
    if run("handshakes") {
        handshakes(&ecdsa, &rsa);
    }
    if run("memory") {
        idle_memory();
    }
    if run("websocket") {
        websocket(&ecdsa);
    }
}
