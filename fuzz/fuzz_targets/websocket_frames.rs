//! The WebSocket client fed by a hostile server: a valid upgrade (with or
//! without permessage-deflate, picked by the first byte), then the fuzzer's
//! bytes as frames: fragments, control frames, compressed data, bad UTF-8,
//! bad close codes, oversized lengths. The first byte's top bit lifts the
//! size caps (`max_message_size(usize::MAX)`, `max_frame_size(usize::MAX)`),
//! where only length arithmetic stands between a huge length and a panic.
#![no_main]

use std::io::{self, Read, Write};

use libfuzzer_sys::fuzz_target;
use securenet::{CompressionOptions, Message, WebSocketOptions};

/// A server that answers the upgrade properly, then sends `frames`.
struct HostileServer<'a> {
    extensions: &'static str,
    request: Vec<u8>,
    answered: bool,
    response: Vec<u8>,
    frames: &'a [u8],
}

impl Write for HostileServer<'_> {
    fn write(&mut self, buf: &[u8]) -> io::Result<usize> {
        if !self.answered {
            self.request.extend_from_slice(buf);
            let text = String::from_utf8_lossy(&self.request);
            if text.contains("\r\n\r\n") {
                let key = text
                    .lines()
                    .find_map(|l| l.strip_prefix("Sec-WebSocket-Key: "))
                    .unwrap_or_default()
                    .trim()
                    .to_owned();
                let accept = tungstenite::handshake::derive_accept_key(key.as_bytes());
                self.response = format!(
                    "HTTP/1.1 101 Switching Protocols\r\nUpgrade: websocket\r\n\
                     Connection: Upgrade\r\nSec-WebSocket-Accept: {accept}\r\n{}\r\n",
                    self.extensions
                )
                .into_bytes();
                self.answered = true;
            }
        }
        // After the upgrade, what the client sends (pongs, close) is dropped.
        Ok(buf.len())
    }

    fn flush(&mut self) -> io::Result<()> {
        Ok(())
    }
}

impl Read for HostileServer<'_> {
    fn read(&mut self, buf: &mut [u8]) -> io::Result<usize> {
        let source: &[u8] = if !self.response.is_empty() {
            &self.response
        } else if self.answered {
            self.frames
        } else {
            return Err(io::Error::new(
                io::ErrorKind::UnexpectedEof,
                "read before the request was sent",
            ));
        };
        let n = buf.len().min(source.len());
        buf[..n].copy_from_slice(&source[..n]);
        if self.response.is_empty() {
            self.frames = &self.frames[n..];
        } else {
            self.response.drain(..n);
        }
        Ok(n)
    }
}

const EXTENSIONS: [&str; 4] = [
    "",
    "Sec-WebSocket-Extensions: permessage-deflate\r\n",
    "Sec-WebSocket-Extensions: permessage-deflate; server_no_context_takeover; \
     client_no_context_takeover\r\n",
    "Sec-WebSocket-Extensions: permessage-deflate; server_max_window_bits=9\r\n",
];

fuzz_target!(|data: &[u8]| {
    let Some((&which, frames)) = data.split_first() else {
        return;
    };
    let server = HostileServer {
        extensions: EXTENSIONS[usize::from(which & 0x7f) % EXTENSIONS.len()],
        request: Vec::new(),
        answered: false,
        response: Vec::new(),
        frames,
    };
    let cap = if which & 0x80 != 0 { usize::MAX } else { 1 << 20 };
    let options = WebSocketOptions::new()
        .compression(CompressionOptions::default())
        .max_message_size(cap)
        .max_frame_size(cap);
    let mut ws = match options.connect_over(server, "ws://fuzz.test/chat") {
        Ok(ws) => ws,
        Err(e) => panic!("the valid upgrade was refused: {e}"),
    };
    for _ in 0..1_000 {
        match ws.read() {
            Ok(Message::Close(_)) | Err(_) => break,
            Ok(Message::Text(t)) => assert!(t.len() <= cap),
            Ok(Message::Binary(b)) => assert!(b.len() <= cap),
            Ok(_) => {}
        }
    }
    let _ = ws.send_text("bye");
    let _ = ws.close(Some((1000, "done")));
});
