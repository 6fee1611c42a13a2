//! A threaded wss:// echo server: SecureListener, one thread per
//! connection, WebSocket::accept_with (it prints each request's path and
//! Origin, and refuses paths other than `/` with 404), permessage-deflate
//! and subprotocols.
//!
//! ```text
//! cargo run --example ws_echo_server -- [--cert FILE --key FILE] [--port N] [--plain]
//! ```
//!
//! Without --cert/--key it makes a test certificate for localhost and writes
//! its CA to ws_echo_ca.pem in the current folder. It prints `listening on
//! wss://127.0.0.1:PORT/` first. A text message "close:CODE:REASON" makes
//! the server close with that code.

use std::net::TcpListener;
use std::thread;

use securenet::{
    BindOptions, Message, Rejection, SecurityContext, UpgradeRequest, UpgradeResponse, WebSocket,
    WebSocketOptions,
};

/// Prints the request, and accepts it if it is for `/`.
fn decide(request: &UpgradeRequest) -> Result<UpgradeResponse, Rejection> {
    let peer = request
        .peer_addr()
        .map_or_else(|| "?".to_owned(), |a| a.to_string());
    println!(
        "{peer}: upgrade for {}{} from origin {}",
        request.path(),
        request.query().map(|q| format!("?{q}")).unwrap_or_default(),
        request.origin().unwrap_or("(none)")
    );
    if request.path() == "/" {
        Ok(UpgradeResponse::new())
    } else {
        Err(Rejection::new(404).body("only / is served here"))
    }
}

fn echo<S: std::io::Read + std::io::Write>(mut ws: WebSocket<S>) -> securenet::Result<()> {
    loop {
        match ws.read()? {
            Message::Text(t) => {
                if let Some(rest) = t.strip_prefix("close:") {
                    let (code, reason) = rest.split_once(':').unwrap_or((rest, ""));
                    let code = code.parse().unwrap_or(1000);
                    return ws.close(Some((code, reason)));
                }
                ws.send_text(&t)?;
            }
            Message::Binary(b) => ws.send_binary(&b)?,
            Message::Close(_) => return Ok(()),
            _ => {}
        }
    }
}

fn main() -> Result<(), Box<dyn std::error::Error>> {
    let mut args = std::env::args().skip(1);
    let (mut cert, mut key, mut port, mut plain) = (None, None, 0u16, false);
    while let Some(a) = args.next() {
        match a.as_str() {
            "--cert" => cert = args.next(),
            "--key" => key = args.next(),
            "--port" => port = args.next().and_then(|p| p.parse().ok()).ok_or("--port N")?,
            "--plain" => plain = true,
            other => return Err(format!("unknown option '{other}'").into()),
        }
    }
    let options = WebSocketOptions::new().protocols(&["chat.v2", "chat.v1"]);
    if plain {
        let listener = TcpListener::bind(("127.0.0.1", port))?;
        println!("listening on ws://{}/", listener.local_addr()?);
        for stream in listener.incoming() {
            let (stream, options) = (stream?, options.clone());
            thread::spawn(move || {
                if let Err(e) = WebSocket::accept_with(stream, &options, decide).and_then(echo) {
                    eprintln!("connection: {e}");
                }
            });
        }
        return Ok(());
    }
    let ctx = match (cert, key) {
        (Some(c), Some(k)) => {
            let mut ctx = SecurityContext::empty();
            ctx.use_certificate_chain(c)?;
            ctx.use_private_key(k)?;
            ctx
        }
        _ => {
            let pki = securenet::testing::TestPki::new(&["localhost", "127.0.0.1"])?;
            std::fs::write("ws_echo_ca.pem", pki.ca_pem())?;
            pki.server_context()
        }
    };
    let listener =
        BindOptions::new()
            .supported_protocols(&["http/1.1"])
            .bind("127.0.0.1", port, &ctx)?;
    println!("listening on wss://{}/", listener.local_addr()?);
    listener
        .serve(move |stream| WebSocket::accept_with(stream, &options, decide).and_then(echo))?;
    Ok(())
}
