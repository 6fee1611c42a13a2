//! Drives an Autobahn fuzzingserver (such as `kosoku -m fuzzingserver`) with
//! the securenet WebSocket client: asks for the case count, runs each case
//! by echoing every message back, then asks the server to write its reports.
//!
//! ```text
//! cargo run --release --example autobahn_client -- [ws://127.0.0.1:9001] [--client-no-context-takeover]
//! ```
//!
//! `--client-no-context-takeover` adds that parameter to the
//! permessage-deflate offer: Autobahn's cases 13.2, 13.5 and 13.6 accept only
//! such an offer (there is no way for a client to learn a case's wishes from
//! the server, so the runs are split).

use std::time::Duration;

use securenet::{CompressionOptions, ConnectOptions, Message, WebSocketOptions};

const AGENT: &str = "securenet";

fn options(no_context_takeover: bool) -> WebSocketOptions {
    WebSocketOptions::new()
        .compression(CompressionOptions::default().client_no_context_takeover(no_context_takeover))
        .max_message_size(64 << 20)
        .close_timeout(Duration::from_secs(5))
        .connect_options(ConnectOptions::new().handshake_timeout(Duration::from_secs(10)))
}

fn main() -> Result<(), Box<dyn std::error::Error>> {
    let args: Vec<String> = std::env::args().skip(1).collect();
    let nct = args.iter().any(|a| a == "--client-no-context-takeover");
    let base = args
        .iter()
        .find(|a| a.starts_with("ws"))
        .cloned()
        .unwrap_or_else(|| "ws://127.0.0.1:9001".to_owned());
    let mut ws = options(nct).connect(&format!("{base}/getCaseCount"))?;
    let count: usize = match ws.read()? {
        Message::Text(t) => t.trim().parse()?,
        other => return Err(format!("unexpected case count message {other:?}").into()),
    };
    let _ = ws.close(None);
    println!("running {count} cases");
    for case in 1..=count {
        let url = format!("{base}/runCase?case={case}&agent={AGENT}");
        let mut ws = match options(nct).connect(&url) {
            Ok(ws) => ws,
            Err(e) => {
                eprintln!("case {case}: {e}");
                continue;
            }
        };
        loop {
            let sent = match ws.read() {
                Ok(Message::Text(t)) => ws.send_text(&t),
                Ok(Message::Binary(b)) => ws.send_binary(&b),
                Ok(Message::Close(_)) | Err(_) => break,
                Ok(_) => Ok(()),
            };
            if sent.is_err() {
                break;
            }
        }
    }
    let mut ws = options(nct).connect(&format!("{base}/updateReports?agent={AGENT}"))?;
    let _ = ws.close(None);
    println!("done");
    Ok(())
}
