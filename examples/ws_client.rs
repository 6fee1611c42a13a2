//! Connects to a ws:// or wss:// URL, sends each argument as a text message
//! and prints the replies, like a tiny wscat.
//!
//! ```text
//! cargo run --example ws_client -- URL [--ca FILE] [--protocol P]... [--header NAME:VALUE]...
//!     [--no-compression] [MESSAGE]...
//! ```

use std::time::Duration;

use securenet::{CompressionOptions, ConnectOptions, Message, SecurityContext, WebSocketOptions};

fn main() -> Result<(), Box<dyn std::error::Error>> {
    let mut args = std::env::args().skip(1);
    let url = args
        .next()
        .ok_or("usage: ws_client URL [options] [MESSAGE]...")?;
    let mut connect = ConnectOptions::new().timeout(Duration::from_secs(10));
    let mut options = WebSocketOptions::new();
    let (mut protocols, mut messages) = (Vec::new(), Vec::new());
    while let Some(a) = args.next() {
        match a.as_str() {
            "--ca" => {
                let mut ctx = SecurityContext::empty();
                ctx.set_trusted_certificates(args.next().ok_or("--ca FILE")?)?;
                connect = connect.context(ctx);
            }
            "--protocol" => protocols.push(args.next().ok_or("--protocol P")?),
            "--header" => {
                let h = args.next().ok_or("--header NAME:VALUE")?;
                let (n, v) = h.split_once(':').ok_or("--header NAME:VALUE")?;
                options = options.header(n.trim(), v.trim());
            }
            "--no-compression" => options = options.compression(CompressionOptions::disabled()),
            _ => messages.push(a),
        }
    }
    let mut ws = options
        .protocols(&protocols)
        .connect_options(connect)
        .connect(&url)?;
    println!("protocol: {}", ws.protocol().unwrap_or("-"));
    println!("extensions: {}", ws.extensions().unwrap_or("-"));
    for m in &messages {
        ws.send_text(m)?;
        loop {
            match ws.read()? {
                Message::Text(t) => {
                    println!("< {t}");
                    break;
                }
                Message::Binary(b) => {
                    println!("< {} bytes", b.len());
                    break;
                }
                Message::Close(c) => {
                    println!("closed by the server: {c:?}");
                    return Ok(());
                }
                // Pings (already answered), pongs, and kinds added later.
                _ => {}
            }
        }
    }
    ws.close(Some((1000, "bye")))?;
    println!("closed: {:?} {:?}", ws.close_code(), ws.close_reason());
    Ok(())
}
