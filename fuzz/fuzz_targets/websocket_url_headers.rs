//! URL and header handling of the WebSocket client: a fuzzed URL, a fuzzed
//! extra request header and subprotocol, and a fuzzed server response to the
//! upgrade. Fields are separated by NUL bytes: url, header name, header
//! value, subprotocol, then the response.
#![no_main]

use std::io::{self, Read, Write};

use libfuzzer_sys::fuzz_target;
use securenet::WebSocketOptions;

/// A server that answers whatever request with `response`.
struct Replies<'a> {
    response: &'a [u8],
}

impl Write for Replies<'_> {
    fn write(&mut self, buf: &[u8]) -> io::Result<usize> {
        Ok(buf.len())
    }

    fn flush(&mut self) -> io::Result<()> {
        Ok(())
    }
}

impl Read for Replies<'_> {
    fn read(&mut self, buf: &mut [u8]) -> io::Result<usize> {
        let n = buf.len().min(self.response.len());
        buf[..n].copy_from_slice(&self.response[..n]);
        self.response = &self.response[n..];
        Ok(n)
    }
}

fuzz_target!(|data: &[u8]| {
    let mut fields = data.splitn(5, |&b| b == 0);
    let mut text = || String::from_utf8_lossy(fields.next().unwrap_or_default()).into_owned();
    let (url, name, value, protocol) = (text(), text(), text(), text());
    let response = fields.next().unwrap_or_default();
    let mut options = WebSocketOptions::new();
    if !name.is_empty() {
        options = options.header(&name, &value);
    }
    if !protocol.is_empty() {
        options = options.protocols(&[protocol.as_str()]);
    }
    match options.connect_over(Replies { response }, &url) {
        Ok(mut ws) => {
            let _ = (ws.protocol(), ws.extensions(), ws.ready_state());
            let _ = ws.read();
        }
        Err(e) => {
            assert!(!e.to_string().is_empty());
            let _ = io::Error::from(e);
        }
    }
});
