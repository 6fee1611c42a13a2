//! A full-duplex client for interop checks: connects with TLS 1.3, splits
//! the stream, prints every line it reads (`received: LINE`) from the read
//! half, and from the write half sends `before`, then `after` once it has
//! read a line `update-now` (a server that sends a KeyUpdate before that
//! line makes the read half owe a KeyUpdate of its own, which must reach the
//! server before `after`).
//!
//! ```text
//! cargo run --example split_client -- HOST PORT --ca FILE
//! ```

use std::io::{BufRead, BufReader, Write};
use std::process::ExitCode;
use std::sync::mpsc;
use std::thread;
use std::time::Duration;

use securenet::{ConnectOptions, SecurityContext, TlsVersion};

fn run() -> Result<(), String> {
    let mut args = std::env::args().skip(1);
    let usage = "usage: split_client HOST PORT --ca FILE";
    let host = args.next().ok_or(usage)?;
    let port: u16 = args
        .next()
        .ok_or(usage)?
        .parse()
        .map_err(|_| "PORT must be 1-65535".to_owned())?;
    let ca = match (args.next().as_deref(), args.next()) {
        (Some("--ca"), Some(file)) => file,
        _ => return Err(usage.to_owned()),
    };
    let mut context = SecurityContext::empty();
    context
        .set_trusted_certificates(&ca)
        .map_err(|e| e.to_string())?;
    context
        .set_protocol_versions(TlsVersion::Tls13, TlsVersion::Tls13)
        .map_err(|e| e.to_string())?;
    let stream = ConnectOptions::new()
        .context(context)
        .handshake_timeout(Duration::from_secs(10))
        .connect(&host, port)
        .map_err(|e| e.to_string())?;
    let (mut reader, mut writer) = stream.split().map_err(|e| e.to_string())?;
    reader
        .set_read_timeout(Some(Duration::from_secs(20)))
        .map_err(|e| e.to_string())?;
    writer
        .set_write_timeout(Some(Duration::from_secs(20)))
        .map_err(|e| e.to_string())?;
    let (seen_tx, seen_rx) = mpsc::channel::<()>();
    let reading = thread::spawn(move || -> Result<(), String> {
        for line in BufReader::new(reader).lines() {
            let line = line.map_err(|e| format!("read: {e}"))?;
            println!("received: {line}");
            if line.trim() == "update-now" {
                let _ = seen_tx.send(());
                return Ok(());
            }
        }
        Err("the server closed before update-now".into())
    });
    writer
        .write_all(b"before\n")
        .map_err(|e| format!("write: {e}"))?;
    seen_rx
        .recv_timeout(Duration::from_secs(20))
        .map_err(|_| "no update-now line from the server".to_owned())?;
    writer
        .write_all(b"after\n")
        .map_err(|e| format!("write after the key update: {e}"))?;
    writer.flush().map_err(|e| format!("flush: {e}"))?;
    println!("sent: after");
    reading.join().map_err(|_| "reader panicked".to_owned())??;
    writer.shutdown_write().map_err(|e| e.to_string())
}

fn main() -> ExitCode {
    match run() {
        Ok(()) => ExitCode::SUCCESS,
        Err(e) => {
            eprintln!("split_client: {e}");
            ExitCode::FAILURE
        }
    }
}
