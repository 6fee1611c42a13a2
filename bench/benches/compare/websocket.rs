//! WebSocket echo over wss: securenet against tungstenite over
//! `StreamOwned`.

use std::thread;
use std::time::Instant;

use securenet::{CompressionOptions, Message, WebSocket, WebSocketOptions};

use crate::json::json;
use crate::setup::{
    DEFAULT, Pki, Who, compare, line, our_contexts, our_pair, raw_configs, raw_pair, scaled,
};

pub fn websocket(pki: &Pki) {
    println!("\n== WebSocket echo over wss, messages per second");
    let rounds = scaled(20_000);
    let on = CompressionOptions::default();
    let mut cases = Vec::new();
    for size in [64usize, 16 * 1024] {
        let payload = vec![vec![b'a'; size]];
        let label = format!("{size} B");
        cases.push((
            label.clone(),
            payload.clone(),
            "off",
            CompressionOptions::disabled(),
        ));
        cases.push((label.clone(), payload.clone(), "on", on));
        cases.push((label, payload, "on, level 6", on.level(6)));
    }
    // Text like most WebSocket traffic (JSON records, each different, in
    // messages that differ, 1 MiB of them in turn, so the 32 KiB window
    // never holds the same message twice): what the compression level
    // costs where deflate has work to do.
    for size in [64usize, 16 * 1024] {
        let payload = json(size, 1 << 20);
        let label = format!("JSON {size} B");
        cases.push((label.clone(), payload.clone(), "on", on));
        cases.push((label, payload, "on, level 6", on.level(6)));
    }
    deflated_sizes();
    for (label, payload, compression_label, compression) in cases {
        let [rate] = compare(|who| {
            [match who {
                Who::Raw => tungstenite_rate(pki, &payload, rounds),
                Who::Ours => our_rate(pki, &payload, rounds, compression),
            }]
        });
        line(
            &format!("{label}, ours compression {compression_label} vs tungstenite"),
            rate,
            "msg/s",
            true,
        );
    }
}

/// What the JSON messages compress to at levels 1, 2 and 6, and the CPU
/// each message costs (zlib-rs, as securenet's permessage-deflate: raw
/// deflate, 15-bit window, context taken over, a sync flush per message).
fn deflated_sizes() {
    for size in [64usize, 1024, 16 * 1024] {
        let messages = json(size, 1 << 20);
        let input: usize = messages.iter().map(Vec::len).sum();
        let rows = [1, 2, 6].map(|level| {
            let mut c =
                flate2::Compress::new_with_window_bits(flate2::Compression::new(level), false, 15);
            let mut out = Vec::with_capacity(2 * size + 64);
            let mut total = 0;
            let start = Instant::now();
            for m in &messages {
                out.clear();
                c.compress_vec(m, &mut out, flate2::FlushCompress::Sync)
                    .expect("compress");
                total += out.len() - 4;
            }
            let micros = start.elapsed().as_secs_f64() * 1e6 / messages.len() as f64;
            format!(
                "level {level} {:.1} % in {micros:.1} µs",
                100.0 * total as f64 / input as f64
            )
        });
        println!("deflating JSON messages of {size} B: {}", rows.join(", "));
    }
}

/// Echoed messages per second, tungstenite over `StreamOwned` (it has no
/// permessage-deflate).
fn tungstenite_rate(pki: &Pki, payloads: &[Vec<u8>], rounds: usize) -> f64 {
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
    for payload in payloads.iter().cycle().take(rounds) {
        ws.send(tungstenite::Message::binary(payload.clone()))
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
fn our_rate(
    pki: &Pki,
    payloads: &[Vec<u8>],
    rounds: usize,
    compression: CompressionOptions,
) -> f64 {
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
    for payload in payloads.iter().cycle().take(rounds) {
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
