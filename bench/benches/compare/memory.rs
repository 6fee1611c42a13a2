//! Resident memory per idle connection, each side measured in a fresh
//! child process so neither reuses heap pages the other freed.

use std::io::{BufRead, BufReader, Read, Write};
use std::net::{SocketAddr, TcpListener};
use std::process::{Command, Stdio};
use std::sync::mpsc;
use std::thread;
use std::time::Duration;

use rustls::{ServerConnection, StreamOwned};
use securenet::SecureListener;

use crate::unbuffered::Unbuffered;

use crate::setup::{
    DEFAULT, KillOnDrop, Pki, RawClient, RawServer, ReadWrite, Who, compare, line, our_contexts,
    our_pair, raw_client, raw_configs, raw_pair, scaled,
};

fn idle_count() -> usize {
    scaled(1000).max(50)
}

fn rss_kib() -> f64 {
    let statm = std::fs::read_to_string("/proc/self/statm").unwrap_or_default();
    let pages: f64 = statm
        .split_whitespace()
        .nth(1)
        .and_then(|p| p.parse().ok())
        .unwrap_or(f64::NAN);
    pages * 4.0
}

fn read_figure(out: &mut dyn BufRead) -> f64 {
    let mut l = String::new();
    out.read_line(&mut l).expect("child output");
    l.trim().parse().unwrap_or(f64::NAN)
}

/// Runs the bench binary as a child: `args`, then "raw" or "ours".
/// `talk` reads the child's stdout and returns the figure.
fn child(mode: &str, who: Who, pki: &Pki, talk: impl FnOnce(&mut dyn BufRead) -> f64) -> f64 {
    let exe = std::env::current_exe().expect("exe");
    let mut cmd = Command::new(exe);
    cmd.arg(mode)
        .arg(match who {
            Who::Raw => "raw",
            Who::Ours => "ours",
        })
        .stdout(Stdio::piped());
    pki.to_env(&mut cmd);
    let mut child = KillOnDrop(cmd.spawn().expect("child"));
    let mut out = BufReader::new(child.0.stdout.take().expect("stdout"));
    let figure = talk(&mut out);
    let _ = child.0.wait();
    figure
}

/// Handles a `--memory-*` child mode; false if `args` names none.
pub fn run_child(args: &[String]) -> bool {
    let Some(i) = args.iter().position(|a| a.starts_with("--memory-")) else {
        return false;
    };
    let who = if args.get(i + 1).map(String::as_str) == Some("raw") {
        Who::Raw
    } else {
        Who::Ours
    };
    match args[i].as_str() {
        "--memory-server" => server_child(who, false),
        "--memory-server-unbuffered" => server_child(who, true),
        "--memory-unbuffered" => pairs_child(who, true),
        _ => pairs_child(who, false),
    }
    true
}

pub fn idle_memory(pki: &Pki) {
    let n = idle_count();
    println!("\n== resident memory per idle connection (KiB, lower is better)");
    let server = |mode: &str| {
        compare(|who| {
            [child(mode, who, pki, |out| {
                let mut port = String::new();
                out.read_line(&mut port).expect("port");
                let addr: SocketAddr = format!("127.0.0.1:{}", port.trim()).parse().expect("port");
                let (rc, _) = raw_configs(pki, DEFAULT);
                // The same clients for both servers, held open until the
                // child has measured; one more than counted, for the
                // warm-up.
                let mut clients = Vec::new();
                for _ in 0..=n {
                    let mut c = raw_client(&rc, addr);
                    c.sock
                        .set_read_timeout(Some(Duration::from_secs(60)))
                        .expect("timeout");
                    c.write_all(b"ping").expect("ping");
                    c.read_exact(&mut [0u8; 4]).expect("pong");
                    clients.push(c);
                }
                read_figure(out)
            })]
        })[0]
    };
    let pairs = |mode: &str| compare(|who| [child(mode, who, pki, |out| read_figure(out))])[0];
    let unbuffered = "rustls unbuffered (\"ours\") vs StreamOwned";
    let rows = [
        (
            format!("server, thread per connection, {n} idle"),
            server("--memory-server"),
        ),
        (
            format!("client + server state only, {n} idle pairs"),
            pairs("--memory-pairs"),
        ),
        (
            format!("{unbuffered}: server, thread per connection"),
            server("--memory-server-unbuffered"),
        ),
        (
            format!("{unbuffered}: {n} idle pairs"),
            pairs("--memory-unbuffered"),
        ),
    ];
    for (name, figure) in rows {
        line(&name, figure, "KiB", false);
    }
}

/// A stream a child holds: what it does once its connection has gone
/// idle.
trait Held: ReadWrite {
    /// Frees what an idle connection need not hold (only the unbuffered
    /// core has anything to free).
    fn idle(&mut self) {}
}

impl Held for RawClient {}
impl Held for RawServer {}
impl Held for securenet::SecureStream {}
impl Held for Unbuffered {
    fn idle(&mut self) {
        Unbuffered::idle(self);
    }
}

/// Child: a thread-per-connection server. Prints its port, serves one
/// warm-up connection, then `n` more that each answer one "ping" and stay
/// open; prints resident KiB per connection once all `n` have answered.
/// With `unbuffered`, "ours" is the smallest core on rustls's unbuffered
/// API instead of securenet.
fn server_child(who: Who, unbuffered: bool) {
    let n = idle_count();
    let pki = Pki::from_env().expect("the parent's PKI");
    let (_, rs) = raw_configs(&pki, DEFAULT);
    let (_, os) = our_contexts(&pki, DEFAULT);
    let (answered, wait) = mpsc::channel::<()>();
    // Each accepted stream gets timeouts, so a lost client fails the run
    // instead of hanging it.
    let limit = Some(Duration::from_secs(60));
    let tcp = |listener: &TcpListener| {
        let (sock, _) = listener.accept().expect("accept");
        // As securenet's listener does; without it a handshake flight
        // waits on a delayed ACK.
        sock.set_nodelay(true).expect("nodelay");
        sock.set_read_timeout(limit).expect("timeout");
        sock.set_write_timeout(limit).expect("timeout");
        sock
    };
    let mut accept: Box<dyn FnMut() -> Box<dyn Held>> = match who {
        Who::Raw => {
            let listener = TcpListener::bind("127.0.0.1:0").expect("bind");
            println!("{}", listener.local_addr().expect("addr").port());
            Box::new(move || {
                let conn = ServerConnection::new(rs.clone()).expect("conn");
                Box::new(StreamOwned::new(conn, tcp(&listener)))
            })
        }
        Who::Ours if unbuffered => {
            let listener = TcpListener::bind("127.0.0.1:0").expect("bind");
            println!("{}", listener.local_addr().expect("addr").port());
            Box::new(move || Box::new(Unbuffered::server(&rs, tcp(&listener))))
        }
        Who::Ours => {
            let listener = SecureListener::bind("127.0.0.1", 0, &os).expect("bind");
            println!("{}", listener.port());
            Box::new(move || {
                let (mut s, _) = listener.accept().expect("accept");
                s.set_read_timeout(limit).expect("timeout");
                s.set_write_timeout(limit).expect("timeout");
                Box::new(s)
            })
        }
    };
    let mut spawn = |answered: mpsc::Sender<()>| {
        let mut s = accept();
        thread::spawn(move || {
            s.read_exact(&mut [0u8; 4]).expect("ping");
            s.write_all(b"pong").expect("pong");
            s.flush().expect("flush");
            s.idle();
            let _ = answered.send(());
            // Idle until the client closes (or the process ends).
            let _ = s.read(&mut [0u8; 1]);
        });
    };
    spawn(answered.clone());
    let limit = Duration::from_secs(120);
    wait.recv_timeout(limit).expect("warm-up");
    let before = rss_kib();
    for _ in 0..n {
        spawn(answered.clone());
    }
    for _ in 0..n {
        wait.recv_timeout(limit).expect("answered");
    }
    println!("{}", (rss_kib() - before) / n as f64);
}

/// Child: `n` connected pairs in one process, no threads: the
/// per-connection state of both ends and nothing else. With `unbuffered`,
/// "ours" is the smallest core on rustls's unbuffered API (its record
/// buffers freed once idle): what an idle connection would hold on that
/// API.
fn pairs_child(who: Who, unbuffered: bool) {
    let pki = Pki::from_env().expect("the parent's PKI");
    let n = idle_count();
    let (rc, rs) = raw_configs(&pki, DEFAULT);
    let (oc, os) = our_contexts(&pki, DEFAULT);
    type Pair = (Box<dyn Held>, Box<dyn Held>);
    let pair = || -> Pair {
        match (who, unbuffered) {
            (Who::Raw, _) => {
                let (c, s) = raw_pair(&rc, &rs);
                (Box::new(c), Box::new(s))
            }
            (Who::Ours, true) => {
                let (c, s) = crate::unbuffered::pair(&rc, &rs);
                (Box::new(c), Box::new(s))
            }
            (Who::Ours, false) => {
                let (c, s) = our_pair(&oc, &os);
                (Box::new(c), Box::new(s))
            }
        }
    };
    // Warm up: one pair, so one-time allocations are not counted.
    drop(pair());
    let before = rss_kib();
    let mut held = Vec::new();
    for _ in 0..n {
        let (mut c, mut s) = pair();
        c.write_all(b"ping").expect("w");
        s.read_exact(&mut [0u8; 4]).expect("r");
        c.idle();
        s.idle();
        held.push((c, s));
    }
    println!("{}", (rss_kib() - before) / n as f64);
}
