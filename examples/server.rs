//! A threaded TLS echo server from PEM files: one thread per connection.
//!
//! ```text
//! cargo run --example server -- (--cert FILE --key FILE | --pfx FILE)
//!     [--password PW] [--addr 127.0.0.1]
//!     [--port 0] [--client-ca FILE] [--require-client-cert] [--alpn h2,http/1.1]
//!     [--max N] [--once] [--systemd] [--ocsp FILE] [--proxy-protocol v1|v2|any]
//! ```
//!
//! `--proxy-protocol` requires a PROXY protocol header first (a load
//! balancer's `send-proxy`); the client's address printed is the header's.
//!
//! `--ocsp FILE` staples that DER OCSP response (`openssl ocsp -respout`)
//! while it is valid for the certificate; `--ticket-keys FILE` encrypts
//! session tickets with the keys in FILE (made with `openssl rand 48`), so
//! servers sharing it resume each other's sessions. Both files are read
//! again when they change (checked at most once a minute, at accept
//! time), so a new response or new keys need no restart.
//!
//! `--systemd` serves the socket passed by systemd socket activation
//! (`systemd-socket-activate -l 127.0.0.1:8443 server --systemd ...`)
//! instead of binding one.
//!
//! It prints `listening on ADDR` first, then one line per connection;
//! `--max N` stops after N connections; `--once` echoes one read per
//! connection and closes it.

use std::io::{Read, Write};
use std::process::ExitCode;
use std::thread;
use std::time::Duration;

use securenet::{BindOptions, ProxyProtocol, SecureListener, SecureStream, SecurityContext};

const USAGE: &str = "usage: server (--cert FILE --key FILE | --pfx FILE) [--password PW] \
                     [--addr IP] [--port N] \
                     [--client-ca FILE] [--require-client-cert] [--alpn h2,http/1.1] [--max N] [--once] [--systemd] [--ocsp FILE] \
                     [--proxy-protocol v1|v2|any] [--ticket-keys FILE]";

fn run() -> Result<(), Box<dyn std::error::Error>> {
    let mut args = std::env::args().skip(1);
    let (mut cert, mut key, mut client_ca) = (None, None, None);
    let (mut pfx, mut password) = (None::<String>, None::<String>);
    let (mut addr, mut port, mut max) = ("127.0.0.1".to_owned(), 0u16, None::<usize>);
    let (mut require, mut once, mut alpn) = (false, false, Vec::<String>::new());
    let (mut systemd, mut ocsp) = (false, None::<String>);
    let mut proxy_protocol = ProxyProtocol::Off;
    let mut ticket_keys = None::<String>;
    while let Some(flag) = args.next() {
        let mut value = || args.next().ok_or(format!("{flag} needs a value\n{USAGE}"));
        match flag.as_str() {
            "--cert" => cert = Some(value()?),
            "--key" => key = Some(value()?),
            "--client-ca" => client_ca = Some(value()?),
            "--pfx" => pfx = Some(value()?),
            "--password" => password = Some(value()?),
            "--addr" => addr = value()?,
            "--port" => port = value()?.parse().map_err(|_| "--port takes 0-65535")?,
            "--max" => max = Some(value()?.parse().map_err(|_| "--max takes a count")?),
            "--require-client-cert" => require = true,
            "--once" => once = true,
            "--systemd" => systemd = true,
            "--ocsp" => ocsp = Some(value()?),
            "--ticket-keys" => ticket_keys = Some(value()?),
            "--proxy-protocol" => {
                proxy_protocol = match value()?.as_str() {
                    "v1" => ProxyProtocol::V1,
                    "v2" => ProxyProtocol::V2,
                    "any" => ProxyProtocol::Any,
                    other => {
                        return Err(
                            format!("--proxy-protocol takes v1, v2 or any, not '{other}'").into(),
                        );
                    }
                }
            }
            "--alpn" => alpn = value()?.split(',').map(str::to_owned).collect(),
            other => return Err(format!("unknown option '{other}'\n{USAGE}").into()),
        }
    }
    let mut ctx = SecurityContext::empty();
    match (cert, key, pfx) {
        (_, _, Some(pfx)) => ctx.use_pkcs12(&pfx, password.as_deref().unwrap_or(""))?,
        (Some(cert), Some(key), None) => {
            ctx.use_certificate_chain(&cert)?;
            match &password {
                Some(pw) => ctx.use_private_key_with_password(&key, pw)?,
                None => ctx.use_private_key(&key)?,
            }
        }
        _ => return Err(USAGE.into()),
    }
    if let Some(ca) = &client_ca {
        ctx.set_client_authorities(ca)?;
    }
    let options = BindOptions::new()
        .request_client_certificate(client_ca.is_some())
        .require_client_certificate(require)
        .supported_protocols(&alpn)
        .handshake_timeout(Duration::from_secs(10))
        .proxy_protocol(proxy_protocol);
    let options = match &ticket_keys {
        Some(file) => options.ticket_keys_file(file),
        None => options,
    };
    let options = match &ocsp {
        Some(file) => options.reload_ocsp_file(file),
        None => options,
    };
    let listener = if systemd {
        listen_fd(&options, &ctx)?
    } else {
        options.bind(addr.as_str(), port, &ctx)?
    };
    println!("listening on {}", listener.local_addr()?);
    std::io::stdout().flush()?;

    let mut workers = Vec::new();
    for (n, stream) in listener.incoming().enumerate() {
        if max.is_some_and(|m| n >= m) {
            break;
        }
        match stream {
            Ok(stream) => workers.push(thread::spawn(move || serve(stream, once))),
            Err(e) => eprintln!("accept failed: {e}"),
        }
        if max.is_some_and(|m| n + 1 >= m) {
            break;
        }
    }
    for w in workers {
        let _ = w.join();
    }
    Ok(())
}

/// The first socket systemd passed.
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

fn serve(mut stream: SecureStream, once: bool) {
    let address = |s: &SecureStream| {
        s.peer_addr()
            .map_or_else(|_| "?".to_owned(), |a| a.to_string())
    };
    // Before the handshake: the socket's peer (a load balancer, if any).
    let mut peer = address(&stream);
    let result = (|| -> securenet::Result<u64> {
        stream.set_read_timeout(Some(Duration::from_secs(30)))?;
        stream.handshake()?;
        // After it: the client's address from a PROXY header, if any.
        peer = address(&stream);
        let client = stream
            .peer_certificate()
            .map_or_else(|| "none".to_owned(), |c| c.subject().to_owned());
        println!(
            "{peer}: {} {} alpn={} client-certificate={client}",
            stream.protocol_version().unwrap_or_default(),
            stream.cipher_suite().unwrap_or_default(),
            stream.selected_protocol().unwrap_or_else(|| "-".into()),
        );
        let mut total = 0u64;
        let mut buf = [0u8; 16 * 1024];
        loop {
            let n = stream.read(&mut buf)?;
            if n == 0 {
                break;
            }
            stream.write_all(&buf[..n])?;
            total += n as u64;
            if once {
                break;
            }
        }
        stream.close()?;
        Ok(total)
    })();
    match result {
        Ok(total) => println!("{peer}: closed after echoing {total} bytes"),
        Err(e) => eprintln!("{peer}: {e}"),
    }
}

fn main() -> ExitCode {
    match run() {
        Ok(()) => ExitCode::SUCCESS,
        Err(e) => {
            eprintln!("error: {e}");
            ExitCode::FAILURE
        }
    }
}
