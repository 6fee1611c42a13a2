//! Connects to any TLS server and prints what was negotiated, like
//! `openssl s_client`.
//!
//! ```text
//! cargo run --example client -- HOST PORT [--ca FILE] [--alpn h2,http/1.1]
//!     [--servername NAME] [--cert FILE --key FILE] [--keylog FILE]
//!     [--send TEXT] [--insecure] [--system] [--pin sha256//BASE64] [--crl FILE [--crl-required]] [--again]
//!     [--proxy URL [--proxy-ca FILE]]
//! ```
//!
//! `--proxy URL` connects through an `http://`, `https://`, `socks5://` or
//! `socks5h://` proxy (an `https://` proxy's certificate is checked
//! against the same trust, or against `--proxy-ca FILE` alone, curl's
//! `--proxy-cacert`).
//!
//! `--again` connects a second time with the same options once the first
//! connection is closed, and prints whether that one resumed the session.
//!
//! Trust: `--ca FILE` alone, `--system` the operating system's store
//! (`SSL_CERT_FILE`/`SSL_CERT_DIR` when set), else Mozilla's roots.
//!
//! `--send TEXT` writes TEXT, shuts the write side and prints what comes back.

use std::io::{Read, Write};
use std::process::ExitCode;
use std::sync::{Arc, Mutex};
use std::time::{Duration, UNIX_EPOCH};

use securenet::{ConnectOptions, SecurityContext};

struct Args {
    host: String,
    port: u16,
    ca: Option<String>,
    alpn: Vec<String>,
    servername: Option<String>,
    cert: Option<String>,
    key: Option<String>,
    keylog: Option<String>,
    send: Option<String>,
    insecure: bool,
    system: bool,
    pins: Vec<String>,
    again: bool,
    proxy: Option<String>,
    proxy_ca: Option<String>,
    crl: Option<String>,
    crl_required: bool,
}

const USAGE: &str = "usage: client HOST PORT [--ca FILE] [--alpn h2,http/1.1] [--servername NAME] \
                     [--cert FILE --key FILE] [--keylog FILE] [--send TEXT] [--insecure] [--system] [--pin sha256//BASE64] [--crl FILE [--crl-required]] [--again] [--proxy URL [--proxy-ca FILE]]";

fn parse() -> Result<Args, String> {
    let mut it = std::env::args().skip(1);
    let host = it.next().ok_or(USAGE)?;
    let port = it.next().ok_or(USAGE)?;
    let port = port
        .parse()
        .map_err(|_| format!("PORT must be 1-65535, not '{port}'"))?;
    let mut a = Args {
        host,
        port,
        ca: None,
        alpn: Vec::new(),
        servername: None,
        cert: None,
        key: None,
        keylog: None,
        send: None,
        insecure: false,
        system: false,
        pins: Vec::new(),
        again: false,
        proxy: None,
        proxy_ca: None,
        crl: None,
        crl_required: false,
    };
    while let Some(flag) = it.next() {
        let mut value = || it.next().ok_or(format!("{flag} needs a value"));
        match flag.as_str() {
            "--ca" => a.ca = Some(value()?),
            "--alpn" => a.alpn = value()?.split(',').map(str::to_owned).collect(),
            "--servername" => a.servername = Some(value()?),
            "--cert" => a.cert = Some(value()?),
            "--key" => a.key = Some(value()?),
            "--keylog" => a.keylog = Some(value()?),
            "--send" => a.send = Some(value()?),
            "--insecure" => a.insecure = true,
            "--system" => a.system = true,
            "--again" => a.again = true,
            "--proxy" => a.proxy = Some(value()?),
            "--proxy-ca" => a.proxy_ca = Some(value()?),
            "--crl" => a.crl = Some(value()?),
            "--crl-required" => a.crl_required = true,
            "--pin" => a.pins.push(value()?),
            other => return Err(format!("unknown option '{other}'\n{USAGE}")),
        }
    }
    Ok(a)
}

fn run(a: Args) -> Result<(), Box<dyn std::error::Error>> {
    let mut ctx = if a.ca.is_some() {
        SecurityContext::empty()
    } else if a.system {
        SecurityContext::system()?
    } else {
        SecurityContext::new()
    };
    if let Some(ca) = &a.ca {
        ctx.set_trusted_certificates(ca)?;
    }
    if let Some(crl) = &a.crl {
        ctx.set_crls(crl)?;
    }
    ctx.set_crls_required(a.crl_required);
    if let (Some(cert), Some(key)) = (&a.cert, &a.key) {
        ctx.use_certificate_chain(cert)?;
        ctx.use_private_key(key)?;
    }
    let lines = Arc::new(Mutex::new(Vec::<String>::new()));
    let sink = lines.clone();
    let mut options = ConnectOptions::new()
        .context(ctx)
        .supported_protocols(&a.alpn)
        .timeout(Duration::from_secs(10))
        .handshake_timeout(Duration::from_secs(10))
        .reject_unauthorized(!a.insecure)
        .pin_sha256(&a.pins)
        .key_log(move |line| sink.lock().expect("key log").push(line.to_owned()));
    if let Some(name) = &a.servername {
        options = options.server_name(name);
    }
    if let Some(url) = &a.proxy {
        options = options.proxy(securenet::Proxy::new(url)?);
    }
    if let Some(ca) = &a.proxy_ca {
        let mut proxy_ctx = SecurityContext::empty();
        proxy_ctx.set_trusted_certificates(ca)?;
        options = options.proxy_context(proxy_ctx);
    }
    let mut stream = options.connect(&a.host, a.port)?;
    stream.set_read_timeout(Some(Duration::from_secs(10)))?;

    let na = |o: Option<String>| o.unwrap_or_else(|| "-".to_owned());
    println!("connected to {}", stream.peer_addr()?);
    println!("local address: {}", stream.local_addr()?);
    println!("protocol: {}", na(stream.protocol_version()));
    println!("cipher: {}", na(stream.cipher_suite()));
    println!("alpn: {}", na(stream.selected_protocol()));
    println!("key exchange: {}", na(stream.negotiated_group()));
    println!("resumed: {}", stream.is_session_reused());
    match stream.ocsp_response() {
        Some(r) => println!("ocsp: {} bytes stapled", r.len()),
        None => println!("ocsp: none"),
    }
    if let Some(why) = stream.authorization_error() {
        println!("verification: FAILED ({why})");
    } else {
        println!("verification: ok");
    }
    for (i, cert) in stream.peer_certificate_chain().iter().enumerate() {
        let secs =
            |t: std::time::SystemTime| t.duration_since(UNIX_EPOCH).map_or(0, |d| d.as_secs());
        let fp: Vec<String> = cert.sha256().iter().map(|b| format!("{b:02X}")).collect();
        println!("certificate {i}: subject {}", cert.subject());
        println!("  issuer {}", cert.issuer());
        println!(
            "  valid {} .. {} (unix seconds)",
            secs(cert.start_validity()),
            secs(cert.end_validity())
        );
        println!("  names {}", cert.subject_alt_names().join(", "));
        println!("  sha256 {}", fp.join(":"));
    }
    if let Some(text) = &a.send {
        stream.write_all(text.as_bytes())?;
        stream.flush()?;
        let mut reply = vec![0u8; 64 * 1024];
        let n = stream.read(&mut reply)?;
        println!("received: {}", String::from_utf8_lossy(&reply[..n]));
    }
    stream.close()?;
    if a.again {
        let mut second = options.connect(&a.host, a.port)?;
        second.set_read_timeout(Some(Duration::from_secs(10)))?;
        if let Some(text) = &a.send {
            second.write_all(text.as_bytes())?;
            let mut reply = vec![0u8; 64 * 1024];
            let _ = second.read(&mut reply)?;
        }
        println!("again: resumed {}", second.is_session_reused());
        second.close()?;
    }
    if let Some(path) = &a.keylog {
        let lines = lines.lock().map_err(|_| "key log poisoned")?;
        let mut f = std::fs::OpenOptions::new()
            .create(true)
            .append(true)
            .open(path)?;
        for line in lines.iter() {
            writeln!(f, "{line}")?;
        }
    }
    Ok(())
}

fn main() -> ExitCode {
    let args = match parse() {
        Ok(a) => a,
        Err(e) => {
            eprintln!("{e}");
            return ExitCode::from(2);
        }
    };
    match run(args) {
        Ok(()) => ExitCode::SUCCESS,
        Err(e) => {
            eprintln!("error: {e}");
            ExitCode::FAILURE
        }
    }
}
