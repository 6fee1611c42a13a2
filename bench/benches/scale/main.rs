//! How far one process goes: idle connections held by one
//! thread-per-connection server process (securenet's `serve`, raw rustls,
//! Go's crypto/tls; TLS and WebSocket), at 1,000, 10,000 and as many as
//! the machine's limits allow. For each level: the server's resident
//! memory, threads, descriptors and mappings per connection, the stack its
//! threads touched, and how long one more client waits (a fresh handshake
//! and one echo, p50 and p99). The clients are this process, holding every
//! connection without a thread each; each server is a child process.
//!
//! ```text
//! cargo bench -p securenet-bench --bench scale                 # 1,000, 10,000 and the limit
//! SECURENET_BENCH_SCALE=0.05 cargo bench -p securenet-bench --bench scale   # 50 and 500 (CI)
//! SECURENET_BENCH_REPEAT=5 cargo bench -p securenet-bench --bench scale     # runs per server
//! cargo bench -p securenet-bench --bench scale -- go          # the servers whose name has it
//! ```

mod client;
#[allow(dead_code)]
mod procfs;
mod servers;
#[allow(dead_code)]
#[path = "../compare/setup.rs"]
mod setup;

use std::collections::HashMap;
use std::thread;
use std::time::{Duration, Instant};

use client::{Client, Conn};
use procfs::Usage;
use servers::Kind;
use setup::{Pki, median_spread, repeats, scale, scaled};

/// How long any one client step may wait before the run reports it.
const TIMEOUT: Duration = Duration::from_secs(30);

/// Connections kept free below the first limit: the one-more-client
/// samples and the processes' own descriptors.
const MARGIN: f64 = 32.0;

/// The memory mappings securenet's `serve` keeps free (it stops accepting
/// rather than start a thread within them: src/server/maps.rs, 1,024 and
/// 16 per core); every server is measured up to the same level.
fn serve_map_margin() -> f64 {
    let cores = thread::available_parallelism().map_or(1, |n| n.get());
    (1024 + 16 * cores) as f64
}

/// What one level of one run measured.
#[derive(Clone, Copy, Debug)]
struct Level {
    conns: usize,
    usage: Usage,
    kib_per_conn: f64,
    fds_per_conn: f64,
    threads_per_conn: f64,
    maps_per_conn: f64,
    p50_ms: f64,
    p99_ms: f64,
    open_per_sec: f64,
}

fn main() {
    let args: Vec<String> = std::env::args().collect();
    if servers::run_child(&args) {
        return;
    }
    let only = args.iter().skip(1).find(|a| !a.starts_with('-'));
    let kinds: Vec<Kind> = Kind::ALL
        .into_iter()
        .filter(|k| only.is_none_or(|o| k.name().contains(o.as_str())))
        .collect();
    let pki = setup::pki(false);
    let mut levels = vec![scaled(1000), scaled(10_000)];
    levels.dedup();
    let to_limit = scale() >= 1.0;
    println!(
        "idle connections held by one server process, thread (or goroutine) per connection; \
         levels {levels:?}{}; median of {} runs per server; ECDSA P-256, X25519, TLS 1.3",
        if to_limit { " and the limit" } else { "" },
        repeats()
    );
    limits_line();
    let mut results: Vec<(Kind, Vec<Vec<Level>>)> =
        kinds.iter().map(|k| (*k, Vec::new())).collect();
    // Each server's limit, found in its first run and kept for the others.
    let mut limits: HashMap<Kind, usize> = HashMap::new();
    for round in 0..repeats() {
        // Alternate the order so that drift in the machine hits all alike.
        let mut order: Vec<usize> = (0..results.len()).collect();
        order.rotate_left(round % results.len().max(1));
        for i in order {
            let kind = results[i].0;
            match run(kind, &pki, &levels, to_limit, &mut limits) {
                Ok(levels) => results[i].1.push(levels),
                Err(e) => println!("{}: not measured: {e}", kind.describe()),
            }
        }
    }
    print_results(&results);
}

fn limits_line() {
    println!(
        "limits here: open files {} (this process), kernel.pid_max {}, kernel.threads-max {}, \
         vm.max_map_count {}, {} MiB available",
        procfs::open_files_limit(std::process::id()),
        procfs::sysctl("kernel/pid_max"),
        procfs::sysctl("kernel/threads-max"),
        procfs::sysctl("vm/max_map_count"),
        (procfs::mem_available_kib() / 1024.0).round()
    );
}

/// Waits until the server's thread count stops moving (handlers of closed
/// connections ending), then reads its usage.
fn settled(pid: u32, stack: Option<usize>) -> Usage {
    let mut last = procfs::usage(pid, None).threads;
    for _ in 0..200 {
        thread::sleep(Duration::from_millis(20));
        let now = procfs::usage(pid, None).threads;
        if now == last {
            break;
        }
        last = now;
    }
    procfs::usage(pid, stack)
}

/// Times `samples` fresh clients (handshake and one echo each), in ms.
fn one_more(client: &Client, samples: usize) -> Result<(f64, f64), String> {
    let mut times = Vec::with_capacity(samples);
    for _ in 0..samples {
        let start = Instant::now();
        let conn = client
            .open(TIMEOUT)
            .map_err(|e| format!("one more client: {e}"))?;
        times.push(start.elapsed().as_secs_f64() * 1e3);
        drop(conn);
    }
    times.sort_by(f64::total_cmp);
    let at = |q: f64| times[((times.len() - 1) as f64 * q).round() as usize];
    Ok((at(0.5), at(0.99)))
}

fn run(
    kind: Kind,
    pki: &Pki,
    levels: &[usize],
    to_limit: bool,
    limits: &mut HashMap<Kind, usize>,
) -> Result<Vec<Level>, String> {
    let (mut child, port) = servers::start(kind, pki)?;
    let pid = child.0.id();
    let client = Client::new(pki, port, kind.websocket());
    let samples = scaled(200).clamp(20, 200);
    // Warm up (the server's first handshake builds its caches), then read
    // what the server holds with no connection.
    one_more(&client, samples)?;
    let base = settled(pid, None);
    let mut held: Vec<Conn> = Vec::new();
    let mut out = Vec::new();
    let mut targets: Vec<usize> = levels.to_vec();
    let mut i = 0;
    while i < targets.len() {
        let conns = targets[i];
        let start = Instant::now();
        let opened = conns - held.len();
        while held.len() < conns {
            let conn = client
                .open(TIMEOUT)
                .map_err(|e| format!("connection {}: {e}", held.len() + 1))?;
            held.push(conn);
        }
        let open_per_sec = opened as f64 / start.elapsed().as_secs_f64();
        if kind.websocket() {
            for conn in &mut held {
                conn.round_trip().map_err(|e| format!("ping: {e}"))?;
            }
        }
        let usage = settled(pid, kind.stack_size());
        let (p50_ms, p99_ms) = one_more(&client, samples)?;
        let per = |now: f64, then: f64| (now - then) / conns as f64;
        let level = Level {
            conns,
            usage,
            kib_per_conn: per(usage.rss_kib, base.rss_kib),
            fds_per_conn: per(usage.fds, base.fds),
            threads_per_conn: per(usage.threads, base.threads),
            maps_per_conn: per(usage.maps, base.maps),
            p50_ms,
            p99_ms,
            open_per_sec,
        };
        out.push(level);
        if i == 0 && to_limit {
            let n = *limits.entry(kind).or_insert_with(|| {
                let (n, why) = first_limit(pid, &base, &level);
                println!("{}: first limit at {n} connections: {why}", kind.describe());
                n
            });
            targets.retain(|t| *t < n);
            targets.push(n);
        }
        i += 1;
    }
    if to_limit {
        probe_past(&client, kind);
        // Does the server survive its limit? 64 connections go, one comes.
        held.truncate(held.len().saturating_sub(64));
        let alive = match child.0.try_wait() {
            Ok(None) => "alive".to_owned(),
            Ok(Some(status)) => format!("DEAD ({status})"),
            Err(e) => format!("unknown ({e})"),
        };
        settled(pid, None);
        let again = client
            .open(Duration::from_secs(5))
            .map_or_else(|e| format!("not served ({e})"), |_| "served".to_owned());
        println!(
            "{}: after 64 connections closed: the server is {alive}; one more client {again}",
            kind.describe()
        );
    }
    drop(held);
    Ok(out)
}

/// The connection count each limit allows, from what one connection took
/// at the first level; returns the lowest, less a margin, and its name.
fn first_limit(pid: u32, base: &Usage, level: &Level) -> (usize, String) {
    let own_fds = procfs::usage(std::process::id(), None).fds;
    let per = |free: f64, each: f64| {
        if each > 0.01 {
            free / each
        } else {
            f64::INFINITY
        }
    };
    let threads_free = procfs::sysctl("kernel/pid_max").min(procfs::sysctl("kernel/threads-max"))
        - procfs::machine_threads();
    let (low, high) = {
        let range =
            std::fs::read_to_string("/proc/sys/net/ipv4/ip_local_port_range").unwrap_or_default();
        let mut it = range
            .split_whitespace()
            .filter_map(|v| v.parse::<f64>().ok());
        (it.next().unwrap_or(f64::NAN), it.next().unwrap_or(f64::NAN))
    };
    let bounds = [
        (
            per(procfs::open_files_limit(pid) - base.fds, level.fds_per_conn),
            "the server's open files (RLIMIT_NOFILE)",
        ),
        (
            procfs::open_files_limit(std::process::id()) - own_fds + level.conns as f64,
            "the client's open files (RLIMIT_NOFILE)",
        ),
        (
            per(threads_free, level.threads_per_conn),
            "threads (kernel.pid_max)",
        ),
        (
            per(
                procfs::sysctl("vm/max_map_count") - base.maps - serve_map_margin(),
                level.maps_per_conn,
            ),
            "memory mappings (vm.max_map_count, less what serve keeps free)",
        ),
        (
            per(procfs::mem_available_kib(), level.kib_per_conn) + level.conns as f64,
            "memory",
        ),
        (high - low + 1.0, "the client address's ephemeral ports"),
    ];
    let (n, why) = bounds
        .into_iter()
        .filter(|(n, _)| n.is_finite())
        .min_by(|a, b| a.0.total_cmp(&b.0))
        .unwrap_or((f64::NAN, "none"));
    let n = (n - MARGIN).max(0.0) as usize;
    let all: Vec<String> = bounds
        .iter()
        .map(|(n, why)| {
            format!(
                "{why} {}",
                if n.is_finite() {
                    format!("{n:.0}")
                } else {
                    "-".into()
                }
            )
        })
        .collect();
    (n, format!("{why} (each bound: {})", all.join(", ")))
}

/// Past the limit: what a client then sees (5 s for each try).
fn probe_past(client: &Client, kind: Kind) {
    let mut extra = Vec::new();
    let tries = 4 * MARGIN as usize;
    let mut outcome = format!("all {tries} served");
    for _ in 0..tries {
        match client.open(Duration::from_secs(5)) {
            Ok(conn) => extra.push(conn),
            Err(e) => {
                let what = match e.kind() {
                    std::io::ErrorKind::WouldBlock | std::io::ErrorKind::TimedOut => {
                        "no answer within 5 s (the server could not accept it)".to_owned()
                    }
                    std::io::ErrorKind::UnexpectedEof | std::io::ErrorKind::ConnectionReset => {
                        "closed at once (the server could not start its thread)".to_owned()
                    }
                    _ => e.to_string(),
                };
                outcome = format!("connection {} more: {what}", extra.len() + 1);
                break;
            }
        }
    }
    println!(
        "{}: past the limit: {} more opened; {outcome}",
        kind.describe(),
        extra.len()
    );
}

fn print_results(results: &[(Kind, Vec<Vec<Level>>)]) {
    println!(
        "\n{:<44} {:>6} {:>9} {:>5} {:>8} {:>7} {:>7} {:>8} {:>8} {:>8} {:>5} {:>8}",
        "server",
        "conns",
        "KiB/conn",
        "±",
        "threads",
        "fds/c",
        "maps/c",
        "stack KiB",
        "p50 ms",
        "p99 ms",
        "±",
        "opens/s"
    );
    // (server, level index, connections, per GiB, spread)
    let mut per_gib: Vec<(Kind, usize, usize, f64, f64)> = Vec::new();
    for (kind, runs) in results {
        let Some(first) = runs.first() else { continue };
        for (l, level) in first.iter().enumerate() {
            let pick = |f: &dyn Fn(&Level) -> f64| {
                median_spread(&mut runs.iter().filter_map(|r| r.get(l)).map(f).collect())
            };
            let (kib, kib_spread) = pick(&|x| x.kib_per_conn);
            let (p99, p99_spread) = pick(&|x| x.p99_ms);
            println!(
                "{:<44} {:>6} {:>9.1} {:>4.0}% {:>8.0} {:>7.2} {:>7.2} {:>8.1} {:>8.2} {:>8.2} {:>4.0}% {:>8.0}",
                kind.describe(),
                level.conns,
                kib,
                kib_spread * 100.0,
                pick(&|x| x.usage.threads).0,
                pick(&|x| x.fds_per_conn).0,
                pick(&|x| x.maps_per_conn).0,
                pick(&|x| x.usage.stack_touched_kib).0,
                pick(&|x| x.p50_ms).0,
                p99,
                p99_spread * 100.0,
                pick(&|x| x.open_per_sec).0,
            );
            per_gib.push((*kind, l, level.conns, (1u64 << 20) as f64 / kib, kib_spread));
        }
    }
    println!(
        "\nconnections per GiB of server memory (from KiB/conn), ratio to securenet's defaults \
         at the same level (its limit where the levels differ):"
    );
    for (kind, l, conns, n, spread) in &per_gib {
        let ours = per_gib
            .iter()
            .find(|(k, i, ..)| *k == Kind::Ours && i == l)
            .map_or(f64::NAN, |o| o.3);
        println!(
            "  {:<44} at {conns:>6}: {n:>8.0} per GiB (±{:.0}%)  {:.2}x securenet",
            kind.describe(),
            spread * 100.0,
            n / ours
        );
    }
}
