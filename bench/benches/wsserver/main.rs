//! The WebSocket server side: the same client (securenet's, one
//! connection, one message and its echo at a time) against securenet's
//! server (`WebSocket::accept` under `serve`), tungstenite's (over rustls
//! `StreamOwned`, a thread per connection) and Node's `ws`, each a child
//! process. Echo rows: messages per second and the server process's CPU
//! per message, 64 B and 16 KiB JSON messages, the client offering
//! permessage-deflate or not (tungstenite has no deflate: its rows with
//! deflate on run without). Then many concurrent clients each sending one
//! message a second: latency p50/p99 and the server's CPU.
//!
//! ```text
//! cargo bench -p securenet-bench --bench wsserver                 # 8 rounds, 1,000 clients
//! taskset -c 0 cargo bench -p securenet-bench --bench wsserver    # pinned: servers and client on one core
//! SECURENET_BENCH_SCALE=0.05 cargo bench -p securenet-bench --bench wsserver   # quick (CI)
//! cargo bench -p securenet-bench --bench wsserver -- load         # only the rows whose name has it (echo, load)
//! ```
//!
//! Node's server is .ci/ws_peer.mjs beside a `node_modules/ws` in
//! SECURENET_BENCH_NODE_DIR (default target/ci/node, where `.ci/run`
//! installs ws 8: `mkdir -p target/ci/node && (cd target/ci/node && npm
//! install ws@8)`); without it the Node rows say why they are missing
//! (with SECURENET_BENCH_REQUIRE_ALL set, as CI sets it, the run fails).

#[path = "../compare/json.rs"]
mod json;
mod load;
#[allow(dead_code)]
#[path = "../scale/procfs.rs"]
mod procfs;
#[allow(dead_code)]
#[path = "../scale/servers.rs"]
mod servers;
#[allow(dead_code)]
#[path = "../compare/setup.rs"]
mod setup;

use std::time::{Duration, Instant};

use securenet::{CompressionOptions, Message, WebSocket, WebSocketOptions};

use servers::Kind;
use setup::{DEFAULT, Figure, KillOnDrop, Pki, compare_with, line_vs, our_client, our_contexts};

/// A server under test, running.
pub struct Server {
    pub kind: Kind,
    pub port: u16,
    pub pid: u32,
    _child: KillOnDrop,
}

impl Server {
    fn start(kind: Kind, pki: &Pki) -> Result<Server, String> {
        let (child, port) = servers::start(kind, pki)?;
        Ok(Server {
            kind,
            port,
            pid: child.0.id(),
            _child: child,
        })
    }

    /// The row's name for this server.
    pub fn name(&self) -> &'static str {
        match self.kind {
            Kind::WsOurs => "securenet",
            Kind::WsTungstenite => "tungstenite",
            _ => "node-ws",
        }
    }
}

/// How long every wait of the client may take.
pub const TIMEOUT: Duration = Duration::from_secs(30);

/// A client connected to `port` (securenet's, offering deflate if
/// `deflate`), every wait bounded.
pub fn connect(
    client: &securenet::SecurityContext,
    port: u16,
    deflate: bool,
) -> Result<WebSocket<securenet::SecureStream>, String> {
    let compression = if deflate {
        CompressionOptions::default()
    } else {
        CompressionOptions::disabled()
    };
    let stream = our_client(client)
        .timeout(TIMEOUT)
        .connect("127.0.0.1", port)
        .map_err(|e| format!("connect: {e}"))?;
    let mut ws = WebSocketOptions::new()
        .compression(compression)
        .connect_over(stream, "wss://localhost/")
        .map_err(|e| format!("upgrade: {e}"))?;
    ws.set_read_timeout(Some(TIMEOUT))
        .and_then(|()| ws.set_write_timeout(Some(TIMEOUT)))
        .map_err(|e| format!("timeouts: {e}"))?;
    Ok(ws)
}

/// One message and its echo; an error if the echo differs.
pub fn round_trip(
    ws: &mut WebSocket<securenet::SecureStream>,
    payload: &[u8],
) -> Result<(), String> {
    ws.send_binary(payload).map_err(|e| format!("send: {e}"))?;
    loop {
        match ws.read().map_err(|e| format!("read: {e}"))? {
            Message::Binary(b) if b == payload => return Ok(()),
            Message::Binary(_) => return Err("the echo differs".into()),
            Message::Ping(_) | Message::Pong(_) => {}
            other => return Err(format!("unexpected {other:?}")),
        }
    }
}

fn main() {
    let args: Vec<String> = std::env::args().collect();
    if servers::run_child(&args) {
        return;
    }
    let only = args.iter().skip(1).find(|a| !a.starts_with('-'));
    let run = |group: &str| only.is_none_or(|o| group.contains(o.as_str()));
    let pki = setup::pki(false);
    let mut servers = Vec::new();
    for kind in [Kind::WsOurs, Kind::WsTungstenite, Kind::WsNode] {
        match Server::start(kind, &pki) {
            Ok(server) => servers.push(server),
            // CI wants every row: a server missing there is a failure.
            Err(e) if std::env::var_os("SECURENET_BENCH_REQUIRE_ALL").is_some() => {
                eprintln!("{}: did not start: {e}", kind.describe());
                std::process::exit(1);
            }
            Err(e) => println!("{}: not measured: {e}", kind.describe()),
        }
    }
    println!(
        "WebSocket servers, each a child process, the same client (securenet's); \
         median of {} alternated rounds; ECDSA P-256, TLS 1.3, {} cores{}",
        setup::repeats(),
        std::thread::available_parallelism().map_or(1, |n| n.get()),
        pinned_note()
    );
    let (client, _) = our_contexts(&pki, DEFAULT);
    if run("echo") {
        echo_rows(&client, &servers);
    }
    if run("load") {
        load::rows(&client, &servers);
    }
}

/// ", pinned to CPU n" when this process may run on one CPU only.
fn pinned_note() -> String {
    let status = std::fs::read_to_string("/proc/self/status").unwrap_or_default();
    let cpus = status
        .lines()
        .find_map(|l| l.strip_prefix("Cpus_allowed_list:"))
        .map(str::trim)
        .unwrap_or("");
    if !cpus.is_empty() && !cpus.contains([',', '-']) {
        format!(", pinned to CPU {cpus}")
    } else {
        String::new()
    }
}

/// The echo rows: for each size and deflate setting, securenet's server
/// against each other server.
fn echo_rows(client: &securenet::SecurityContext, servers: &[Server]) {
    println!(
        "\n== WebSocket echo, one client, one message at a time: messages/s and server CPU per message"
    );
    let duration = Duration::from_secs_f64((2.0 * setup::scale()).max(0.25));
    for size in [64usize, 16 * 1024] {
        let payloads = json::json(size, 1 << 20);
        for deflate in [false, true] {
            let label = format!(
                "{size} B JSON, deflate {}",
                if deflate { "offered" } else { "off" }
            );
            print_negotiated(client, servers, deflate);
            let measure = |i: usize| {
                echo_rate(client, &servers[i], &payloads, deflate, duration).unwrap_or_else(|e| {
                    println!("{} {label}: {e}", servers[i].name());
                    [f64::NAN; 2]
                })
            };
            compared(servers, measure, |name, [rate, cpu]| {
                line_vs(&format!("{label}, msg/s"), rate, "msg/s", true, name);
                line_vs(&format!("{label}, server CPU"), cpu, "µs/msg", false, name);
            });
        }
    }
}

/// Runs `measure` for securenet's server (index 0) against each of the
/// others in alternated rounds, and hands each baseline's figures to
/// `print` with its name.
pub fn compared<const N: usize>(
    servers: &[Server],
    measure: impl FnMut(usize) -> [f64; N],
    mut print: impl FnMut(&str, [Figure; N]),
) {
    if servers.first().is_none_or(|s| s.kind != Kind::WsOurs) {
        println!("securenet's server did not start: nothing to compare");
        return;
    }
    match servers.len() {
        2 => {
            let [figures] = compare_with(0, [1], measure);
            print(servers[1].name(), figures);
        }
        3 => {
            let [a, b] = compare_with(0, [1, 2], measure);
            print(servers[1].name(), a);
            print(servers[2].name(), b);
        }
        _ => println!("no other server started: nothing to compare"),
    }
}

/// What each server negotiated with the client (extension, cipher suite).
fn print_negotiated(client: &securenet::SecurityContext, servers: &[Server], deflate: bool) {
    let seen: Vec<String> = servers
        .iter()
        .map(|s| match connect(client, s.port, deflate) {
            Ok(mut ws) => {
                let suite = ws.get_ref().cipher_suite();
                let said = format!(
                    "{}: {} over {}",
                    s.name(),
                    ws.extensions().unwrap_or("no extension"),
                    suite.as_deref().unwrap_or("?")
                );
                let _ = ws.close(None);
                said
            }
            Err(e) => format!("{}: {e}", s.name()),
        })
        .collect();
    println!("negotiated: {}", seen.join("; "));
}

/// Messages echoed per second over one connection for `duration`, and the
/// server process's CPU time per message in microseconds.
fn echo_rate(
    client: &securenet::SecurityContext,
    server: &Server,
    payloads: &[Vec<u8>],
    deflate: bool,
    duration: Duration,
) -> Result<[f64; 2], String> {
    let mut ws = connect(client, server.port, deflate)?;
    // The first message sets up what the server keeps per connection.
    round_trip(&mut ws, &payloads[0])?;
    let cpu = procfs::thread_cpu(server.pid);
    let start = Instant::now();
    let mut sent = 0usize;
    for payload in payloads.iter().cycle() {
        round_trip(&mut ws, payload)?;
        sent += 1;
        if sent.is_multiple_of(16) && start.elapsed() >= duration {
            break;
        }
    }
    let secs = start.elapsed().as_secs_f64();
    let cpu = procfs::cpu_between(&cpu, &procfs::thread_cpu(server.pid));
    let _ = ws.close(None);
    Ok([sent as f64 / secs, cpu * 1e6 / sent as f64])
}
