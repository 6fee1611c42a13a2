//! Data over established connections: bulk, write sizes, write_vectored,
//! echo round trips.

use std::io::{IoSlice, Read, Write};
use std::sync::Arc;
use std::thread;
use std::time::{Duration, Instant};

use rustls::{ClientConfig, ServerConfig};

use crate::limit;
use crate::setup::{
    BULK_SUITES, DEFAULT, Figure, Pki, ReadWrite, Tuning, Who, bulk_suites, compare, compare_with,
    line, our_contexts, our_pair, raw_configs, raw_pair, raw_pair_buffered, scaled,
    thread_cpu_secs, thread_user_secs,
};

/// What one transfer cost: seconds until all was read, and CPU seconds of
/// the sender and receiver threads, in all and in user space only.
pub struct Cost {
    pub secs: f64,
    pub send: f64,
    pub recv: f64,
    pub send_user: f64,
    pub recv_user: f64,
}

/// One transfer of `total` bytes in `write_size` writes.
pub fn transfer<C: Write + Send + 'static, S: Read + Send + 'static>(
    mut c: C,
    mut s: S,
    total: usize,
    write_size: usize,
) -> Cost {
    let reader = thread::spawn(move || {
        let (cpu, user) = (thread_cpu_secs(), thread_user_secs());
        let mut buf = vec![0u8; 256 * 1024];
        let mut got = 0;
        while got < total {
            let n = s.read(&mut buf).expect("read");
            assert!(n > 0, "early end");
            got += n;
        }
        (thread_cpu_secs() - cpu, thread_user_secs() - user, s)
    });
    let chunk = vec![0x5au8; write_size];
    let start = Instant::now();
    let (cpu, user) = (thread_cpu_secs(), thread_user_secs());
    let mut sent = 0;
    while sent < total {
        let n = write_size.min(total - sent);
        c.write_all(&chunk[..n]).expect("write");
        sent += n;
    }
    c.flush().expect("flush");
    let (send, send_user) = (thread_cpu_secs() - cpu, thread_user_secs() - user);
    let (recv, recv_user, s) = reader.join().expect("reader");
    let secs = start.elapsed().as_secs_f64();
    drop(s);
    Cost {
        secs,
        send,
        recv,
        send_user,
        recv_user,
    }
}

/// A bulk transfer's figures: MB/s, then ms per GiB of process CPU (both
/// threads), sender CPU, receiver CPU, and each in user space.
pub fn bulk_figures(cost: &Cost, total: usize) -> [f64; 6] {
    let gib = total as f64 / (1u64 << 30) as f64;
    [
        total as f64 / cost.secs / 1e6,
        (cost.send + cost.recv) * 1e3 / gib,
        cost.send * 1e3 / gib,
        cost.recv * 1e3 / gib,
        cost.send_user * 1e3 / gib,
        cost.recv_user * 1e3 / gib,
    ]
}

/// User-space CPU comes in 10 ms ticks: below this many seconds per
/// thread a figure is off by more than 5 %, and is not shown.
const USER_SECS_SHOWN: f64 = 0.2;

/// Prints a bulk row of `total` bytes and its CPU rows: the process's
/// (both threads: on loopback the kernel's work falls to either) is the
/// headline, the per-thread split a diagnostic.
pub fn bulk_lines(what: &str, total: usize, f: [Figure; 6]) {
    let [rate, process, send, recv, send_user, recv_user] = f;
    line(what, rate, "MB/s", true);
    line("  process CPU", process, "ms/GiB", false);
    line("  (diagnostic) sender thread CPU", send, "ms/GiB", false);
    line("  (diagnostic) receiver thread CPU", recv, "ms/GiB", false);
    let gib = total as f64 / (1u64 << 30) as f64;
    let secs = |f: &Figure| f.ours.min(f.base) * gib / 1e3;
    if secs(&send_user).min(secs(&recv_user)) >= USER_SECS_SHOWN {
        line(
            "  (diagnostic) sender, user space",
            send_user,
            "ms/GiB",
            false,
        );
        line(
            "  (diagnostic) receiver, user space",
            recv_user,
            "ms/GiB",
            false,
        );
    } else {
        println!(
            "  CPU, user space: not shown, under {} ms per thread (10 ms ticks; run at a larger scale)",
            USER_SECS_SHOWN * 1e3
        );
    }
}

/// The sides of the bulk and write-size groups: securenet, raw rustls
/// `StreamOwned`, `StreamOwned` over a 64 KiB `BufReader`, and (bulk only)
/// the limit of the hardware.
#[derive(Clone, Copy, Debug)]
enum Side {
    Ours,
    Raw,
    Buffered,
    Limit,
}

/// A connected pair of any side, boxed so one closure serves all.
fn pair(side: Side, t: Tuning, pki: &Pki) -> (Box<dyn Write + Send>, Box<dyn Read + Send>) {
    match side {
        Side::Raw | Side::Limit => {
            let (rc, rs) = raw_configs(pki, t);
            let (c, s) = raw_pair(&rc, &rs);
            (Box::new(c), Box::new(s))
        }
        Side::Buffered => {
            let (rc, rs) = raw_configs(pki, t);
            let (c, s) = raw_pair_buffered(&rc, &rs);
            (Box::new(c), Box::new(s))
        }
        Side::Ours => {
            let (oc, os) = our_contexts(pki, t);
            let (c, s) = our_pair(&oc, &os);
            (Box::new(c), Box::new(s))
        }
    }
}

/// The side a two-sided group's `Who` names.
fn side(who: Who) -> Side {
    match who {
        Who::Raw => Side::Raw,
        Who::Ours => Side::Ours,
    }
}

pub fn bulk(pki: &Pki) {
    println!(
        "\n== bulk client->server, 64 KiB writes (CPU: ms per GiB, lower is better; \
         ratios: median of per-round ratios [interval, its confidence])"
    );
    let total = scaled(1 << 30);
    for suite in bulk_suites() {
        let t = Tuning::suite(suite);
        let [raw, buffered, limit] = compare_with(
            Side::Ours,
            [Side::Raw, Side::Buffered, Side::Limit],
            |side| {
                if let Side::Limit = side {
                    return limit::figures(suite, total);
                }
                let (c, s) = pair(side, t, pki);
                bulk_figures(&transfer(c, s, total, 64 * 1024), total)
            },
        );
        bulk_lines(&format!("{} MiB {suite}", total >> 20), total, raw);
        line(
            "  vs StreamOwned + 64 KiB BufReader",
            buffered[0],
            "MB/s",
            true,
        );
        line("  process CPU vs that", buffered[1], "ms/GiB", false);
        let [l, tcp, seal, open, ..] = limit;
        println!(
            "  limit (one core: 1/(1/tcp + 1/seal + 1/open)): tcp {:.0}, seal {:.0}, open {:.0} -> {:.0} MB/s; \
             ours {:.2} of it [{:.2}, {:.2}] {:.0}%, StreamOwned {:.2}, with BufReader {:.2} (medians; holds pinned only)",
            tcp.base,
            seal.base,
            open.base,
            l.base,
            l.ratio,
            l.low,
            l.high,
            l.coverage * 100.0,
            raw[0].base / l.base,
            buffered[0].base / l.base,
        );
    }
}

pub fn write_sizes(pki: &Pki) {
    println!("\n== throughput by write size (TLS13_AES_128_GCM_SHA256)");
    let t = Tuning {
        suite: Some("TLS13_AES_128_GCM_SHA256"),
        x25519_only: false,
    };
    // SECURENET_BENCH_WRITE_SIZE=1024 measures that size only (to profile it).
    let only: Option<usize> = std::env::var("SECURENET_BENCH_WRITE_SIZE")
        .ok()
        .and_then(|s| s.parse().ok());
    for size in [64usize, 1024, 16 * 1024, 1024 * 1024] {
        if only.is_some_and(|o| o != size) {
            continue;
        }
        let total = scaled((size * 100_000).min(256 << 20));
        let [[raw], [buffered]] = compare_with(Side::Ours, [Side::Raw, Side::Buffered], |side| {
            let (c, s) = pair(side, t, pki);
            [total as f64 / transfer(c, s, total, size).secs / 1e6]
        });
        line(&format!("writes of {size} B"), raw, "MB/s", true);
        line(
            "  vs StreamOwned + 64 KiB BufReader",
            buffered,
            "MB/s",
            true,
        );
    }
    if only.is_some() {
        return;
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
    let [rate] = compare(|who| {
        let (mut c, mut s) = pair(side(who), t, pki);
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
        [total as f64 / start.elapsed().as_secs_f64() / 1e6]
    });
    line("write_vectored 256 x 64 B", rate, "MB/s", true);
}

/// 64 B round trips: the p50 and p99, in microseconds.
fn echo_round_trips(
    mut c: Box<dyn ReadWrite>,
    mut s: Box<dyn ReadWrite>,
    rounds: usize,
) -> [f64; 2] {
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
    let us = |d: Duration| d.as_secs_f64() * 1e6;
    [
        us(times[times.len() / 2]),
        us(times[times.len() * 99 / 100]),
    ]
}

pub fn echo_latency(pki: &Pki) {
    println!("\n== 64 B echo round trip (microseconds, lower is better)");
    let rounds = scaled(20_000);
    let [p50, p99] = compare(|who| match who {
        Who::Raw => {
            let (rc, rs) = raw_configs(pki, DEFAULT);
            let (c, s) = raw_pair(&rc, &rs);
            echo_round_trips(Box::new(c), Box::new(s), rounds)
        }
        Who::Ours => {
            let (oc, os) = our_contexts(pki, DEFAULT);
            let (c, s) = our_pair(&oc, &os);
            echo_round_trips(Box::new(c), Box::new(s), rounds)
        }
    });
    line("p50", p50, "us", false);
    line("p99", p99, "us", false);
    println!("p50 difference ours - raw: {:+.2} us", p50.ours - p50.base);
}

/// A connected pair: the unbuffered core ("ours" in its groups) or
/// `StreamOwned`, both ends each.
fn unbuffered_or_raw(
    who: Who,
    rc: &Arc<ClientConfig>,
    rs: &Arc<ServerConfig>,
) -> (Box<dyn ReadWrite>, Box<dyn ReadWrite>) {
    match who {
        Who::Raw => {
            let (c, s) = raw_pair(rc, rs);
            (Box::new(c), Box::new(s))
        }
        Who::Ours => {
            let (c, s) = crate::unbuffered::pair(rc, rs);
            (Box::new(c), Box::new(s))
        }
    }
}

/// Issue 15's premise, measured: raw rustls's unbuffered API (the smallest
/// core on it, `unbuffered.rs`) against its buffered `StreamOwned`, both
/// ends each, for bulk. In this group's lines "ours" is the unbuffered
/// core, not securenet.
pub fn unbuffered_bulk(pki: &Pki) {
    println!(
        "\n== bulk, 64 KiB writes: raw rustls unbuffered API (\"ours\" column) vs StreamOwned \
         (\"raw\"), CPU ms per GiB"
    );
    let total = scaled(1 << 30);
    for suite in BULK_SUITES {
        let t = Tuning::suite(suite);
        let (rc, rs) = raw_configs(pki, t);
        let f = compare(|who| {
            let (c, s) = unbuffered_or_raw(who, &rc, &rs);
            bulk_figures(&transfer(c, s, total, 64 * 1024), total)
        });
        bulk_lines(&format!("unbuffered {} MiB {suite}", total >> 20), total, f);
    }
}

/// The unbuffered core against `StreamOwned` on issue 15's other
/// throughput and latency rows: small writes and 64 B round trips.
pub fn unbuffered_small(pki: &Pki) {
    println!(
        "\n== small writes and 64 B echo: raw rustls unbuffered API (\"ours\" column) vs \
         StreamOwned (\"raw\")"
    );
    let (rc, rs) = raw_configs(pki, Tuning::suite("TLS13_AES_128_GCM_SHA256"));
    let boxed = |who: Who| unbuffered_or_raw(who, &rc, &rs);
    for size in [64usize, 1024, 16 * 1024] {
        let total = scaled((size * 100_000).min(256 << 20));
        let [rate] = compare(|who| {
            let (c, s) = boxed(who);
            [total as f64 / transfer(c, s, total, size).secs / 1e6]
        });
        line(
            &format!("unbuffered, writes of {size} B"),
            rate,
            "MB/s",
            true,
        );
    }
    let rounds = scaled(20_000);
    let [p50, p99] = compare(|who| {
        let (c, s) = boxed(who);
        echo_round_trips(c, s, rounds)
    });
    line("unbuffered, 64 B echo p50", p50, "us", false);
    line("unbuffered, 64 B echo p99", p99, "us", false);
}
