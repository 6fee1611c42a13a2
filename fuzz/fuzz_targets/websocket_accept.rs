//! The WebSocket server fed by a hostile client: the fuzzer's bytes are the
//! upgrade request and then the frames (masked or not). The first byte
//! picks the options: permessage-deflate on or off, an Origin allow-list,
//! and (top bit) no size caps. Whatever the bytes, `accept` answers or
//! refuses, and `read` returns messages or an error: never a panic, a hang
//! or unbounded memory.
#![no_main]

use std::io::{self, Read, Write};

use libfuzzer_sys::fuzz_target;
use securenet::{CompressionOptions, WebSocket, WebSocketOptions};

/// A client that sends `input` and swallows what the server writes.
struct HostileClient<'a> {
    input: &'a [u8],
}

impl Read for HostileClient<'_> {
    fn read(&mut self, buf: &mut [u8]) -> io::Result<usize> {
        let n = buf.len().min(self.input.len());
        buf[..n].copy_from_slice(&self.input[..n]);
        self.input = &self.input[n..];
        Ok(n)
    }
}

impl Write for HostileClient<'_> {
    fn write(&mut self, buf: &[u8]) -> io::Result<usize> {
        Ok(buf.len())
    }

    fn flush(&mut self) -> io::Result<()> {
        Ok(())
    }
}

fuzz_target!(|data: &[u8]| {
    let Some((&mode, input)) = data.split_first() else {
        return;
    };
    let mut options = WebSocketOptions::new().protocols(&["chat", "v2"]);
    if mode & 1 == 0 {
        options = options.compression(CompressionOptions::disabled());
    }
    if mode & 2 != 0 {
        options = options.allowed_origins(&["https://app.example"]);
    }
    if mode & 0x80 != 0 {
        options = options.max_message_size(usize::MAX).max_frame_size(usize::MAX);
    }
    let Ok(mut ws) = WebSocket::accept(HostileClient { input }, &options) else {
        return;
    };
    for _ in 0..1000 {
        if ws.read().is_err() {
            break;
        }
    }
});
