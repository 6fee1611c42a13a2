//! A server as a fleet runs it: `serve` behind a load balancer, restarted
//! without dropping a request, shut down gracefully on SIGTERM.
//!
//! ```text
//! cargo run --example fleet_server -- --cert FILE --key FILE
//!     [--addr 127.0.0.1] [--port 0] [--shared] [--systemd]
//!     [--proxy-protocol v1|v2|any] [--ticket-keys FILE]
//!     [--grace-ms 5000] [--name NAME]
//! ```
//!
//! It answers a line protocol: each line `GET <anything>` gets
//! `OK <anything> from <NAME>`; a client may send several.
//!
//! - `--shared` binds with `SO_REUSEPORT`: start the new process on the
//!   same port, then send the old one SIGTERM (set
//!   `net.ipv4.tcp_migrate_req=1` on Linux so the connections still queued
//!   on the old socket move to the new one).
//! - `--systemd` serves the socket passed by socket activation (or by a
//!   supervisor that keeps it across restarts): the old and the new
//!   process share it, and the old one stops accepting on SIGTERM.
//! - On SIGTERM or SIGINT it stops accepting, lets running connections
//!   finish within `--grace-ms`, closes the rest cleanly, prints what
//!   happened and exits.
//!
//! It prints `listening on ADDR` first; at exit, one line each for the
//! shutdown, the health checks the balancer made, the connections that
//! failed and the requests served.

use std::io::{BufRead, BufReader, Read, Write};
use std::process::ExitCode;
use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::Duration;

use securenet::{
    BindOptions, Error, ProxyProtocol, SecureListener, SecureStream, SecurityContext, StopHandle,
};

const USAGE: &str = "usage: fleet_server --cert FILE --key FILE [--addr IP] [--port N] \
                     [--shared] [--systemd] [--proxy-protocol v1|v2|any] \
                     [--ticket-keys FILE] [--grace-ms N] [--name NAME]";

/// What this process did, printed at exit.
#[derive(Default)]
struct Counts {
    health_checks: AtomicU64,
    failures: AtomicU64,
    connections: AtomicU64,
    resumed: AtomicU64,
    requests: AtomicU64,
}

struct Args {
    cert: String,
    key: String,
    addr: String,
    port: u16,
    shared: bool,
    systemd: bool,
    proxy_protocol: ProxyProtocol,
    ticket_keys: Option<String>,
    grace: Duration,
    name: String,
}

fn parse() -> Result<Args, String> {
    let mut args = std::env::args().skip(1);
    let (mut cert, mut key) = (None, None);
    let mut parsed = Args {
        cert: String::new(),
        key: String::new(),
        addr: "127.0.0.1".to_owned(),
        port: 0,
        shared: false,
        systemd: false,
        proxy_protocol: ProxyProtocol::Off,
        ticket_keys: None,
        grace: Duration::from_secs(5),
        name: format!("pid {}", std::process::id()),
    };
    while let Some(flag) = args.next() {
        let mut value = || args.next().ok_or(format!("{flag} needs a value\n{USAGE}"));
        match flag.as_str() {
            "--cert" => cert = Some(value()?),
            "--key" => key = Some(value()?),
            "--addr" => parsed.addr = value()?,
            "--port" => parsed.port = value()?.parse().map_err(|_| "--port takes 0-65535")?,
            "--shared" => parsed.shared = true,
            "--systemd" => parsed.systemd = true,
            "--ticket-keys" => parsed.ticket_keys = Some(value()?),
            "--name" => parsed.name = value()?,
            "--grace-ms" => {
                let ms = value()?
                    .parse()
                    .map_err(|_| "--grace-ms takes milliseconds")?;
                parsed.grace = Duration::from_millis(ms);
            }
            "--proxy-protocol" => {
                parsed.proxy_protocol = match value()?.as_str() {
                    "v1" => ProxyProtocol::V1,
                    "v2" => ProxyProtocol::V2,
                    "any" => ProxyProtocol::Any,
                    other => {
                        return Err(format!(
                            "--proxy-protocol takes v1, v2 or any, not '{other}'"
                        ));
                    }
                }
            }
            other => return Err(format!("unknown option '{other}'\n{USAGE}")),
        }
    }
    match (cert, key) {
        (Some(c), Some(k)) => {
            parsed.cert = c;
            parsed.key = k;
            Ok(parsed)
        }
        _ => Err(USAGE.to_owned()),
    }
}

fn run() -> Result<(), Box<dyn std::error::Error>> {
    let args = parse()?;
    let mut ctx = SecurityContext::empty();
    ctx.use_certificate_chain(&args.cert)?;
    ctx.use_private_key(&args.key)?;
    let counts = Arc::new(Counts::default());
    let (checks, failures) = (counts.clone(), counts.clone());
    let options = BindOptions::new()
        .shared(args.shared)
        .proxy_protocol(args.proxy_protocol)
        .handshake_timeout(Duration::from_secs(10))
        .on_health_check(move |_balancer| {
            checks.health_checks.fetch_add(1, Ordering::Relaxed);
        })
        .on_client_error_via(move |e, client, via| {
            failures.failures.fetch_add(1, Ordering::Relaxed);
            if client == via {
                eprintln!("{client}: {e}");
            } else {
                eprintln!("{client} (via {via}): {e}");
            }
        });
    let options = match &args.ticket_keys {
        Some(file) => options.ticket_keys_file(file),
        None => options,
    };
    let listener = if args.systemd {
        listen_fd(&options, &ctx)?
    } else {
        options.bind(args.addr.as_str(), args.port, &ctx)?
    };
    // The handler first: a supervisor may send SIGTERM as soon as it
    // reads the line below.
    let stop = listener.stop_handle();
    on_sigterm(stop.clone())?;
    println!("listening on {}", listener.local_addr()?);
    std::io::stdout().flush()?;
    let (name, served) = (Arc::new(args.name), counts.clone());
    listener.serve(move |stream| answer(stream, &name, &served))?;

    // serve returned: a signal began the shutdown; finish it.
    let report = stop.shutdown(args.grace);
    println!(
        "shutdown: open at stop {}, finished {}, closed idle {}, closed {}, cut {}, left open {}, \
         handlers running {}",
        report.open_at_stop,
        report.finished,
        report.closed_idle,
        report.closed,
        report.cut,
        report.left_open,
        report.handlers_running
    );
    let get = |n: &AtomicU64| n.load(Ordering::Relaxed);
    println!("health checks: {}", get(&counts.health_checks));
    println!("failed connections: {}", get(&counts.failures));
    println!(
        "served: {} requests on {} connections ({} resumed)",
        get(&counts.requests),
        get(&counts.connections),
        get(&counts.resumed)
    );
    Ok(())
}

/// Answers each `GET x` line with `OK x from NAME`, until the client closes.
fn answer(stream: SecureStream, name: &str, counts: &Counts) -> securenet::Result<()> {
    let mut stream = stream;
    stream.set_read_timeout(Some(Duration::from_secs(30)))?;
    stream.set_write_timeout(Some(Duration::from_secs(30)))?;
    stream.handshake()?;
    counts.connections.fetch_add(1, Ordering::Relaxed);
    if stream.is_session_reused() {
        counts.resumed.fetch_add(1, Ordering::Relaxed);
    }
    let mut reader = BufReader::new(stream);
    let mut line = String::new();
    let mut answered = false;
    loop {
        // Between requests (none read ahead): a shutdown closes the
        // connection at once instead of after its grace. Not before the
        // first, which may be on its way (as Go leaves new connections).
        if answered && reader.buffer().is_empty() {
            reader.get_ref().set_idle(true);
        }
        line.clear();
        // A line longer than this is not a request of this protocol.
        let n = Read::take(&mut reader, 1024).read_line(&mut line)?;
        if n == 0 {
            break;
        }
        let Some(what) = line.trim_end().strip_prefix("GET ") else {
            return Err(Error::from(std::io::Error::new(
                std::io::ErrorKind::InvalidData,
                "expected a line 'GET <anything>'",
            )));
        };
        let reply = format!("OK {what} from {name}\n");
        reader.get_mut().write_all(reply.as_bytes())?;
        counts.requests.fetch_add(1, Ordering::Relaxed);
        answered = true;
    }
    reader.into_inner().close()
}

/// Stops accepting on the first SIGTERM or SIGINT (what systemd, Kubernetes
/// and a terminal's Ctrl-C send).
#[cfg(unix)]
fn on_sigterm(stop: StopHandle) -> std::io::Result<()> {
    use signal_hook::consts::{SIGINT, SIGTERM};
    let mut signals = signal_hook::iterator::Signals::new([SIGTERM, SIGINT])?;
    std::thread::spawn(move || {
        if signals.forever().next().is_some() {
            println!("stopping");
            let _ = std::io::stdout().flush();
            stop.stop();
        }
    });
    Ok(())
}

#[cfg(not(unix))]
fn on_sigterm(_stop: StopHandle) -> std::io::Result<()> {
    Ok(())
}

/// The first socket passed by socket activation.
#[cfg(unix)]
fn listen_fd(
    options: &BindOptions,
    ctx: &SecurityContext,
) -> Result<SecureListener, Box<dyn std::error::Error>> {
    use std::os::fd::{FromRawFd, OwnedFd};
    let fd = *securenet::listen_fds()?
        .first()
        .ok_or("--systemd: no socket was passed (LISTEN_FDS/LISTEN_PID are not set for us)")?;
    // SAFETY: the service manager passed this descriptor to this process,
    // open and listening, and nothing else in it owns the descriptor.
    let fd = unsafe { OwnedFd::from_raw_fd(fd) };
    Ok(options.from_fd(fd, ctx)?)
}

#[cfg(not(unix))]
fn listen_fd(
    _: &BindOptions,
    _: &SecurityContext,
) -> Result<SecureListener, Box<dyn std::error::Error>> {
    Err("--systemd needs Unix".into())
}

fn main() -> ExitCode {
    match run() {
        Ok(()) => ExitCode::SUCCESS,
        Err(e) => {
            eprintln!("fleet_server: {e}");
            ExitCode::FAILURE
        }
    }
}
