//! Many WebSocket clients at once, each sending one 64 B message a second
//! (spread evenly over the second) and timing its echo: what a chat or
//! ticker server sees. Each client is a thread of this process with
//! securenet's client (deflate off, so tungstenite's server does the same
//! work); the server is a child process whose CPU is read from `/proc`.

use std::sync::{Arc, Barrier, mpsc};
use std::thread;
use std::time::{Duration, Instant};

use securenet::SecurityContext;

use crate::{Server, compared, connect, round_trip};
use crate::{json, procfs, setup};

/// One round's figures for one server.
struct Load {
    p50_us: f64,
    p99_us: f64,
    max_us: f64,
    cpu_share: f64,
    cpu_us_per_msg: f64,
    /// The clients' CPU (this process's threads, the same client in every
    /// row) and the server's together, per message.
    total_us_per_msg: f64,
}

pub fn rows(client: &SecurityContext, servers: &[Server]) {
    let clients = setup::scaled(1000).max(2);
    let seconds = (10.0 * setup::scale()).clamp(3.0, 10.0).round() as u32;
    println!(
        "\n== {clients} WebSocket clients, each one 64 B message a second for {seconds} s: \
         echo latency and server CPU"
    );
    let payload = json::json(64, 64).swap_remove(0);
    let measure = |i: usize| match load(client, &servers[i], clients, seconds, &payload) {
        Ok(l) => {
            println!(
                "  {:<12} p50 {:.0} µs, p99 {:.0} µs, max {:.0} µs, server CPU {:.1} % of a core, \
                 {:.1} µs/msg, with the clients {:.1} µs/msg",
                servers[i].name(),
                l.p50_us,
                l.p99_us,
                l.max_us,
                100.0 * l.cpu_share,
                l.cpu_us_per_msg,
                l.total_us_per_msg
            );
            [l.p50_us, l.p99_us, l.cpu_us_per_msg, l.total_us_per_msg]
        }
        Err(e) => {
            println!("  {}: {e}", servers[i].name());
            [f64::NAN; 4]
        }
    };
    compared(servers, measure, |name, [p50, p99, cpu, total]| {
        setup::line_vs("latency p50", p50, "µs", false, name);
        setup::line_vs("latency p99", p99, "µs", false, name);
        setup::line_vs("server CPU", cpu, "µs/msg", false, name);
        setup::line_vs("clients' and server's CPU", total, "µs/msg", false, name);
    });
}

/// One round against one server: the clients connect one after another,
/// start together, send for `seconds`, and stop together; none closes
/// before the CPU has been read (a server's thread ends with its
/// connection, and what it ran goes with it).
fn load(
    client: &SecurityContext,
    server: &Server,
    clients: usize,
    seconds: u32,
    payload: &[u8],
) -> Result<Load, String> {
    let start = Arc::new(Barrier::new(clients + 1));
    let stop = Arc::new(Barrier::new(clients + 1));
    let close = Arc::new(Barrier::new(clients + 1));
    let (connected_tx, connected) = mpsc::channel();
    let epoch = Arc::new(std::sync::OnceLock::<Instant>::new());
    let mut threads = Vec::with_capacity(clients);
    let mut failed_to_connect = None;
    for i in 0..clients {
        let (start, stop, close) = (Arc::clone(&start), Arc::clone(&stop), Arc::clone(&close));
        let epoch = Arc::clone(&epoch);
        let (client, port, payload) = (client.clone(), server.port, payload.to_vec());
        let connected_tx = connected_tx.clone();
        // The offset of this client's sends within each second.
        let offset = Duration::from_secs(1).mul_f64(i as f64 / clients as f64);
        let spawned = thread::Builder::new()
            .stack_size(512 * 1024)
            .spawn(move || {
                let ws = connect(&client, port, false);
                let _ = connected_tx.send(ws.as_ref().err().cloned());
                start.wait();
                let mut samples = Vec::with_capacity(seconds as usize);
                match ws {
                    Ok(mut ws) => {
                        let epoch = *epoch.get_or_init(Instant::now);
                        let mut failed = None;
                        for k in 0..seconds {
                            let due = epoch + offset + Duration::from_secs(k.into());
                            // Pacing: this client's next send is due then.
                            thread::sleep(due.saturating_duration_since(Instant::now()));
                            let sent = Instant::now();
                            if let Err(e) = round_trip(&mut ws, &payload) {
                                failed = Some(e);
                                break;
                            }
                            samples.push(sent.elapsed().as_secs_f64() * 1e6);
                        }
                        stop.wait();
                        close.wait();
                        let _ = ws.close(None);
                        failed.map_or(Ok(samples), Err)
                    }
                    Err(e) => {
                        stop.wait();
                        close.wait();
                        Err(e)
                    }
                }
            })
            // A bench: the threads already started wait at the barriers,
            // so a failure here ends the run.
            .expect("a client thread");
        threads.push(spawned);
        // One connection at a time: the listen backlog is not measured.
        // A client that failed still meets the others at every barrier.
        if let Ok(Some(e)) = connected.recv_timeout(2 * crate::TIMEOUT) {
            failed_to_connect.get_or_insert(format!("client {i}: {e}"));
        }
    }
    start.wait();
    epoch.get_or_init(Instant::now);
    let cpu = procfs::thread_cpu(server.pid);
    let clients_cpu = procfs::thread_cpu(std::process::id());
    let began = Instant::now();
    stop.wait();
    let clients_cpu = procfs::cpu_between(&clients_cpu, &procfs::thread_cpu(std::process::id()));
    let cpu = procfs::cpu_between(&cpu, &procfs::thread_cpu(server.pid));
    let wall = began.elapsed().as_secs_f64();
    close.wait();
    let mut latencies = Vec::new();
    let mut errors = Vec::new();
    for t in threads {
        match t.join() {
            Ok(Ok(samples)) => latencies.extend(samples),
            Ok(Err(e)) => errors.push(e),
            Err(_) => errors.push("a client thread panicked".into()),
        }
    }
    if let Some(e) = failed_to_connect.as_ref().or(errors.first()) {
        return Err(format!(
            "{} of {clients} clients failed, first: {e}",
            errors.len()
        ));
    }
    if latencies.is_empty() {
        return Err("no message was echoed".into());
    }
    latencies.sort_by(f64::total_cmp);
    let at = |q: f64| latencies[((latencies.len() - 1) as f64 * q).round() as usize];
    let messages = latencies.len() as f64;
    Ok(Load {
        p50_us: at(0.50),
        p99_us: at(0.99),
        max_us: at(1.0),
        cpu_share: cpu / wall,
        cpu_us_per_msg: cpu * 1e6 / messages,
        total_us_per_msg: (cpu + clients_cpu) * 1e6 / messages,
    })
}
