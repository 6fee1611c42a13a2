//! A self-contained loopback demo: a SecureListener on 127.0.0.1 with a
//! certificate made at run time, a SecureStream client with ALPN and a key
//! log, data both ways, and what was negotiated.
//!
//! Run it with `cargo run --example demo`.

use std::io::{BufRead, BufReader, Read, Write};
use std::sync::{Arc, Mutex};
use std::thread;
use std::time::{Duration, UNIX_EPOCH};

use securenet::testing::TestPki;
use securenet::{BindOptions, ConnectOptions, SecureStream, X509Certificate};

fn main() -> Result<(), Box<dyn std::error::Error>> {
    let pki = TestPki::new(&["localhost", "127.0.0.1"])?;
    let listener = BindOptions::new()
        .supported_protocols(&["h2", "http/1.1"])
        .bind("127.0.0.1", 0, &pki.server_context())?;
    let port = listener.port();
    println!("server listening on 127.0.0.1:{port}");

    let server = thread::spawn(move || -> securenet::Result<()> {
        let (mut stream, peer) = listener.accept()?;
        stream.set_read_timeout(Some(Duration::from_secs(10)))?;
        stream.handshake()?;
        println!(
            "server: accepted {peer}, SNI {:?}, ALPN {:?}",
            stream.server_name(),
            stream.selected_protocol()
        );
        // One line is one message: read up to its newline, however the
        // bytes arrive.
        let mut request = String::new();
        BufReader::new(&mut stream).read_line(&mut request)?;
        println!("server: received {:?}", request.trim_end());
        stream.write_all(b"hello from the server")?;
        stream.close()
    });

    let key_log = Arc::new(Mutex::new(Vec::<String>::new()));
    let lines = key_log.clone();
    let mut client = ConnectOptions::new()
        .context(pki.client_context())
        .supported_protocols(&["http/1.1", "h2"])
        .key_log(move |line| lines.lock().expect("key log").push(line.to_owned()))
        .timeout(Duration::from_secs(5))
        .handshake_timeout(Duration::from_secs(5))
        .connect("localhost", port)?;
    client.set_read_timeout(Some(Duration::from_secs(10)))?;
    client.write_all(b"hello from the client\n")?;
    let mut reply = String::new();
    client.read_to_string(&mut reply)?;
    println!("client: received {reply:?}");
    server.join().map_err(|_| "the server thread panicked")??;

    print_session(&client);
    let lines = key_log.lock().map_err(|_| "key log poisoned")?;
    println!("key log:            {} NSS lines", lines.len());
    for line in lines.iter() {
        let label = line.split(' ').next().unwrap_or_default();
        println!("  {label} ...");
    }
    Ok(())
}

fn print_session(s: &SecureStream) {
    let na = |o: Option<String>| o.unwrap_or_else(|| "-".to_owned());
    println!("protocol version:   {}", na(s.protocol_version()));
    println!("cipher suite:       {}", na(s.cipher_suite()));
    println!("ALPN protocol:      {}", na(s.selected_protocol()));
    println!("key exchange:       {}", na(s.negotiated_group()));
    if let Some(cert) = s.peer_certificate() {
        print_certificate(&cert);
    }
}

fn print_certificate(cert: &X509Certificate) {
    let secs = |t: std::time::SystemTime| t.duration_since(UNIX_EPOCH).map_or(0, |d| d.as_secs());
    println!("peer subject:       {}", cert.subject());
    println!("peer issuer:        {}", cert.issuer());
    println!(
        "peer validity:      {} .. {} (unix seconds)",
        secs(cert.start_validity()),
        secs(cert.end_validity())
    );
    println!(
        "peer names:         {}",
        cert.subject_alt_names().join(", ")
    );
    let hex: Vec<String> = cert.sha256().iter().map(|b| format!("{b:02X}")).collect();
    println!("peer SHA-256:       {}", hex.join(":"));
}
