//! An HTTPS hello server that gets its own certificate from an ACME CA
//! (feature `acme`): Let's Encrypt, its staging CA, or a test CA such as
//! Pebble.
//!
//! ```text
//! cargo run --features acme --example acme_server -- \
//!     --domain example.com [--domain www.example.com] --cache DIR \
//!     [--directory URL | --staging] [--ca-file PEM] [--accept-terms] \
//!     [--contact EMAIL] [--eab KID:MACKEY] [--addr 0.0.0.0] [--port 443] \
//!     [--shared] [--name NAME] [--log]
//! ```
//!
//! Let's Encrypt staging: `--staging --accept-terms` on a machine that
//! port 443 of the names reaches. Pebble (Let's Encrypt's test CA):
//! `--directory https://127.0.0.1:14000/dir --ca-file pebble-wfe-ca.pem`,
//! with Pebble's `tlsPort` set to `--port`. Several servers with
//! `--shared` (SO_REUSEPORT) or behind a TCP balancer, with the same
//! `--cache`, share one certificate.
//!
//! Every request is answered `hello from NAME`. It prints `listening on
//! ADDR`, then `certificate for NAMES until TIME` for each certificate it
//! starts serving, and each failure to get one. `--log` prints the ACME
//! client's log (the `log` facade, `debug` and up) to standard error.

use std::io::{BufRead, BufReader, Write};

use securenet::{AcmeOptions, BindOptions, SecurityContext};

const USAGE: &str = "usage: acme_server --domain NAME... --cache DIR [--directory URL | \
                     --staging] [--ca-file PEM] [--accept-terms] [--contact EMAIL] \
                     [--eab KID:MACKEY] [--addr IP] [--port N] [--shared] [--name NAME] [--log]";

/// Prints securenet's log records to standard error.
struct StderrLog;

impl log::Log for StderrLog {
    fn enabled(&self, m: &log::Metadata<'_>) -> bool {
        m.target().starts_with("securenet")
    }
    fn log(&self, r: &log::Record<'_>) {
        if self.enabled(r.metadata()) {
            eprintln!("{} {}", r.level(), r.args());
        }
    }
    fn flush(&self) {}
}

fn main() -> securenet::Result<()> {
    let mut args = std::env::args().skip(1);
    let (mut domains, mut cache, mut name) = (Vec::new(), None, "acme_server".to_owned());
    let (mut addr, mut port, mut shared) = ("0.0.0.0".to_owned(), 443u16, false);
    let mut acme_settings: Vec<Box<dyn FnOnce(AcmeOptions) -> AcmeOptions>> = Vec::new();
    let usage =
        |what: &str| securenet::Error::from(std::io::Error::other(format!("{what}\n{USAGE}")));
    while let Some(flag) = args.next() {
        let mut value = || {
            args.next()
                .ok_or_else(|| usage(&format!("{flag} needs a value")))
        };
        match flag.as_str() {
            "--domain" => domains.push(value()?),
            "--cache" => cache = Some(value()?),
            "--name" => name = value()?,
            "--addr" => addr = value()?,
            "--port" => port = value()?.parse().map_err(|_| usage("--port: a number"))?,
            "--shared" => shared = true,
            "--log" => {
                let _ = log::set_logger(&StderrLog);
                log::set_max_level(log::LevelFilter::Debug);
            }
            "--accept-terms" => acme_settings.push(Box::new(|o| o.accept_terms_of_service(true))),
            "--staging" => {
                acme_settings.push(Box::new(|o| o.directory(securenet::LETS_ENCRYPT_STAGING)))
            }
            "--directory" => {
                let url = value()?;
                acme_settings.push(Box::new(move |o| o.directory(&url)));
            }
            "--contact" => {
                let email = value()?;
                acme_settings.push(Box::new(move |o| o.contact(&email)));
            }
            "--ca-file" => {
                let path = value()?;
                let pem = std::fs::read(&path).map_err(|e| usage(&format!("{path}: {e}")))?;
                acme_settings.push(Box::new(move |o| o.ca_certificates(pem)));
            }
            "--eab" => {
                let v = value()?;
                let (kid, key) = v.split_once(':').ok_or_else(|| usage("--eab KID:MACKEY"))?;
                let (kid, key) = (kid.to_owned(), key.to_owned());
                acme_settings.push(Box::new(move |o| o.external_account_binding(&kid, &key)));
            }
            _ => return Err(usage(&format!("unknown flag {flag}"))),
        }
    }
    let cache = cache.ok_or_else(|| usage("--cache DIR is required"))?;

    // The part that matters: options, bind, serve.
    let mut acme = AcmeOptions::new(&domains, cache)
        .on_certificate(|c| {
            println!(
                "certificate for {:?} until {:?}",
                c.subject_alt_names(),
                c.end_validity()
            )
        })
        .on_error(|e| println!("acme failed: {e}"));
    for setting in acme_settings {
        acme = setting(acme);
    }
    let listener = BindOptions::new().acme(acme).shared(shared).bind(
        addr.as_str(),
        port,
        &SecurityContext::new(),
    )?;
    println!("listening on {}", listener.local_addr()?);
    listener.serve(move |stream| -> std::io::Result<()> {
        let mut reader = BufReader::new(stream);
        let mut line = String::new();
        while reader.read_line(&mut line)? > 2 {
            line.clear(); // the request line and headers, up to the blank line
        }
        let body = format!("hello from {name}\n");
        let stream = reader.get_mut();
        write!(
            stream,
            "HTTP/1.1 200 OK\r\nContent-Length: {}\r\nConnection: close\r\n\r\n{body}",
            body.len()
        )?;
        stream.close().map_err(Into::into)
    })
}
