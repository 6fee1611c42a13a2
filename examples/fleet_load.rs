//! A load of request/response clients for `fleet_server`: each thread
//! connects, sends one `GET` line, reads the answer and closes, again and
//! again, resuming its TLS session where the server allows. It counts every
//! request that failed, for a restart that must drop none.
//!
//! ```text
//! cargo run --example fleet_load -- --port N --ca FILE
//!     [--host localhost] [--threads 20] [--seconds 30] [--late 5]
//! ```
//!
//! Prints, at the end: `requests: N ok, N failed, N resumed`, then the
//! same for the requests begun in the last `--late` seconds (after the
//! restarts a test makes) and the count per server name that answered.
//! Exits with failure if a request failed.

use std::collections::BTreeMap;
use std::io::{BufRead, BufReader, Read, Write};
use std::process::ExitCode;
use std::sync::{Arc, Mutex};
use std::thread;
use std::time::{Duration, Instant};

use securenet::{ConnectOptions, SecurityContext};

const USAGE: &str = "usage: fleet_load --port N --ca FILE [--host NAME] [--threads N] \
                     [--seconds N] [--late N]";

#[derive(Default)]
struct Tally {
    ok: u64,
    failed: u64,
    resumed: u64,
    late_ok: u64,
    late_failed: u64,
    late_resumed: u64,
    by_server: BTreeMap<String, u64>,
    errors: Vec<String>,
}

/// One request on a new connection: the server's name from its answer,
/// and whether the session was resumed.
fn request(
    options: &ConnectOptions,
    host: &str,
    port: u16,
    n: u64,
) -> Result<(String, bool), String> {
    let mut stream = options
        .connect(host, port)
        .map_err(|e| format!("connect: {e}"))?;
    stream
        .set_read_timeout(Some(Duration::from_secs(10)))
        .map_err(|e| format!("read timeout: {e}"))?;
    let resumed = stream.is_session_reused();
    stream
        .write_all(format!("GET {n}\n").as_bytes())
        .map_err(|e| format!("send: {e}"))?;
    let mut reader = BufReader::new(stream);
    let mut line = String::new();
    // An answer longer than this is not one of fleet_server's.
    Read::take(&mut reader, 1024)
        .read_line(&mut line)
        .map_err(|e| format!("receive: {e}"))?;
    let prefix = format!("OK {n} from ");
    let server = line
        .trim_end()
        .strip_prefix(&prefix)
        .ok_or_else(|| format!("unexpected answer {line:?}"))?
        .to_owned();
    reader
        .into_inner()
        .close()
        .map_err(|e| format!("close: {e}"))?;
    Ok((server, resumed))
}

fn run() -> Result<bool, String> {
    let mut args = std::env::args().skip(1);
    let (mut port, mut ca, mut host) = (None::<u16>, None::<String>, "localhost".to_owned());
    let (mut threads, mut seconds, mut late) = (20usize, 30u64, 5u64);
    while let Some(flag) = args.next() {
        let mut value = || args.next().ok_or(format!("{flag} needs a value\n{USAGE}"));
        let number = |v: String| {
            v.parse::<u64>()
                .map_err(|_| format!("{flag} takes a number"))
        };
        match flag.as_str() {
            "--port" => port = Some(value()?.parse().map_err(|_| "--port takes 1-65535")?),
            "--ca" => ca = Some(value()?),
            "--host" => host = value()?,
            "--threads" => threads = usize::try_from(number(value()?)?).unwrap_or(usize::MAX),
            "--seconds" => seconds = number(value()?)?,

            "--late" => late = number(value()?)?,
            other => return Err(format!("unknown option '{other}'\n{USAGE}")),
        }
    }
    let (Some(port), Some(ca)) = (port, ca) else {
        return Err(USAGE.to_owned());
    };
    if !(1..=1000).contains(&threads) {
        return Err(format!("--threads takes 1 to 1000, not {threads}"));
    }
    if !(1..=86_400).contains(&seconds) {
        return Err(format!("--seconds takes 1 to 86400, not {seconds}"));
    }
    let mut ctx = SecurityContext::empty();
    ctx.set_trusted_certificates(&ca)
        .map_err(|e| e.to_string())?;
    // One context for every thread: they share its session cache.
    let options = ConnectOptions::new()
        .context(ctx)
        .timeout(Duration::from_secs(10))
        .handshake_timeout(Duration::from_secs(10));
    let started = Instant::now();
    let end = started + Duration::from_secs(seconds);
    let late_from = end
        .checked_sub(Duration::from_secs(late))
        .unwrap_or(started);
    let tally = Arc::new(Mutex::new(Tally::default()));
    let workers: Vec<_> = (0..threads)
        .map(|t| {
            let (options, host, tally) = (options.clone(), host.clone(), tally.clone());
            thread::spawn(move || {
                let mut n = (t as u64) << 32;
                while Instant::now() < end {
                    n += 1;
                    let begun = Instant::now();
                    let result = request(&options, &host, port, n);
                    let mut tally = tally.lock().unwrap_or_else(|e| e.into_inner());
                    let is_late = begun >= late_from;
                    match result {
                        Ok((server, resumed)) => {
                            tally.ok += 1;
                            tally.resumed += u64::from(resumed);
                            if is_late {
                                tally.late_ok += 1;
                                tally.late_resumed += u64::from(resumed);
                            }
                            *tally.by_server.entry(server).or_default() += 1;
                        }
                        Err(e) => {
                            tally.failed += 1;
                            tally.late_failed += u64::from(is_late);
                            if tally.errors.len() < 10 {
                                let at = begun.duration_since(started).as_secs_f64();
                                tally.errors.push(format!("at {at:.2} s: {e}"));
                            }
                        }
                    }
                }
            })
        })
        .collect();
    for w in workers {
        w.join().map_err(|_| "a client thread panicked")?;
    }
    let tally = tally.lock().unwrap_or_else(|e| e.into_inner());
    for e in &tally.errors {
        println!("error {e}");
    }
    println!(
        "requests: {} ok, {} failed, {} resumed",
        tally.ok, tally.failed, tally.resumed
    );
    println!(
        "last {late} s: {} ok, {} failed, {} resumed",
        tally.late_ok, tally.late_failed, tally.late_resumed
    );
    for (server, n) in &tally.by_server {
        println!("answered by {server}: {n}");
    }
    // No request at all is a failure too: the check must be able to fail.
    Ok(tally.failed == 0 && tally.ok > 0)
}

fn main() -> ExitCode {
    match run() {
        Ok(true) => ExitCode::SUCCESS,
        Ok(false) => ExitCode::FAILURE,
        Err(e) => {
            eprintln!("fleet_load: {e}");
            ExitCode::FAILURE
        }
    }
}
