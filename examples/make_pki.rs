//! Writes a fresh test PKI (securenet::testing::TestPki) as PEM files, for
//! trying the examples against other TLS tools.
//!
//! ```text
//! cargo run --example make_pki -- DIR [NAME ...]
//! ```
//!
//! Writes DIR/ca.pem, DIR/server.pem, DIR/server.key, DIR/client.pem and
//! DIR/client.key. The names default to localhost and 127.0.0.1.

use std::path::PathBuf;

use securenet::testing::TestPki;

fn main() -> Result<(), Box<dyn std::error::Error>> {
    let mut args = std::env::args().skip(1);
    let dir = PathBuf::from(args.next().ok_or("usage: make_pki DIR [NAME ...]")?);
    let mut names: Vec<String> = args.collect();
    if names.is_empty() {
        names = vec!["localhost".into(), "127.0.0.1".into()];
    }
    let names: Vec<&str> = names.iter().map(String::as_str).collect();
    let pki = TestPki::new(&names)?;
    std::fs::create_dir_all(&dir)?;
    std::fs::write(dir.join("ca.pem"), pki.ca_pem())?;
    std::fs::write(dir.join("server.pem"), pki.server_cert_pem())?;
    std::fs::write(dir.join("server.key"), pki.server_key_pem())?;
    std::fs::write(dir.join("client.pem"), pki.client_cert_pem())?;
    std::fs::write(dir.join("client.key"), pki.client_key_pem())?;
    println!(
        "wrote a test PKI for {} to {}",
        names.join(", "),
        dir.display()
    );
    Ok(())
}
