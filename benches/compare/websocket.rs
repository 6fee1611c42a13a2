//! WebSocket echo over wss: securenet against tungstenite over
//! `StreamOwned`.

use std::thread;
use std::time::Instant;

use securenet::{CompressionOptions, Message, WebSocket, WebSocketOptions};

use crate::setup::{
    DEFAULT, Pki, Who, compare, line, our_contexts, our_pair, raw_configs, raw_pair, scaled,
};

pub fn websocket(pki: &Pki) {
    println!("\n== WebSocket echo over wss, messages per second");
    let rounds = scaled(20_000);
    for size in [64usize, 16 * 1024] {
        let payload = vec![b'a'; size];
        for (label, compression) in [
            ("off", CompressionOptions::disabled()),
            ("on", CompressionOptions::default()),
        ] {
            let [rate] = compare(|who| {
                [match who {
                    Who::Raw => tungstenite_rate(pki, &payload, rounds),
                    Who::Ours => our_rate(pki, &payload, rounds, compression),
                }]
            });
            line(
                &format!("{size} B, ours compression {label} vs tungstenite"),
                rate,
                "msg/s",
                true,
            );
        }
    }
}

/// Echoed messages per second, tungstenite over `StreamOwned` (it has no
/// permessage-deflate).
fn tungstenite_rate(pki: &Pki, payload: &[u8], rounds: usize) -> f64 {
    let (rc, rs) = raw_configs(pki, DEFAULT);
    let (c, s) = raw_pair(&rc, &rs);
    let server = thread::spawn(move || {
        let mut ws = tungstenite::accept(s).expect("accept");
        while let Ok(m) = ws.read() {
            if m.is_close() {
                break;
            }
            if m.is_text() || m.is_binary() {
                ws.send(m).expect("echo");
            }
        }
    });
    let (mut ws, _) = tungstenite::client("wss://localhost/", c).expect("client");
    let start = Instant::now();
    for _ in 0..rounds {
        ws.send(tungstenite::Message::binary(payload.to_vec()))
            .expect("send");
        ws.read().expect("read");
    }
    let rate = rounds as f64 / start.elapsed().as_secs_f64();
    let _ = ws.close(None);
    let _ = ws.flush();
    drop(ws);
    let _ = server.join();
    rate
}

/// Echoed messages per second, securenet's WebSocket on both ends.
fn our_rate(pki: &Pki, payload: &[u8], rounds: usize, compression: CompressionOptions) -> f64 {
    let (oc, os) = our_contexts(pki, DEFAULT);
    let (c, s) = our_pair(&oc, &os);
    let opts = WebSocketOptions::new().compression(compression);
    let server_opts = opts.clone();
    let server = thread::spawn(move || {
        let mut ws = WebSocket::accept(s, &server_opts).expect("accept");
        loop {
            match ws.read() {
                Ok(Message::Binary(b)) => ws.send_binary(&b).expect("echo"),
                Ok(Message::Close(_)) | Err(_) => break,
                Ok(_) => {}
            }
        }
    });
    let mut ws = opts_client(c, &opts);
    let start = Instant::now();
    for _ in 0..rounds {
        ws.send_binary(payload).expect("send");
        ws.read().expect("read");
    }
    let rate = rounds as f64 / start.elapsed().as_secs_f64();
    let _ = ws.close(None);
    let _ = server.join();
    rate
}

/// Our client over an already connected stream (the bench's own pair).
fn opts_client(
    stream: securenet::SecureStream,
    options: &WebSocketOptions,
) -> WebSocket<securenet::SecureStream> {
    options
        .connect_over(stream, "wss://localhost/")
        .expect("ws client")
}
