//! A TLS server fed by a hostile client: the fuzzer's bytes are everything
//! the client sends (its ClientHello and whatever follows). The first
//! byte picks the server: one configuration (the connection starts at
//! once) or several ALPN configurations (rustls's `Acceptor` reads the
//! ClientHello first and the bytes are given to the chosen connection).
//! Whatever the bytes, the handshake fails or succeeds and reads return
//! data or an error: never a panic, a hang or unbounded memory. What this
//! reaches that rustls's own fuzzing does not: securenet's engine and its
//! buffers, the `Acceptor` replay, and the call-scoped reports (SNI from
//! the certificate resolver, the key log's secrets) to the connection.
#![no_main]

use std::io::{self, Read, Write};
use std::sync::OnceLock;

use libfuzzer_sys::fuzz_target;
use securenet::testing::TestPki;
use securenet::{BindOptions, SecureStream, SecurityContext};

/// A client that sends `input`, at most `piece` bytes per read, and
/// swallows what the server writes (owned: `secure_server` takes a
/// `'static` transport).
struct HostileClient {
    input: Vec<u8>,
    at: usize,
    piece: usize,
}

impl Read for HostileClient {
    fn read(&mut self, buf: &mut [u8]) -> io::Result<usize> {
        let rest = &self.input[self.at..];
        let n = buf.len().min(rest.len()).min(self.piece);
        buf[..n].copy_from_slice(&rest[..n]);
        self.at += n;
        Ok(n)
    }
}

impl Write for HostileClient {
    fn write(&mut self, buf: &[u8]) -> io::Result<usize> {
        Ok(buf.len())
    }

    fn flush(&mut self) -> io::Result<()> {
        Ok(())
    }
}

fn context() -> &'static SecurityContext {
    static CONTEXT: OnceLock<SecurityContext> = OnceLock::new();
    CONTEXT.get_or_init(|| {
        TestPki::new(&["localhost"])
            .expect("test pki")
            .server_context()
    })
}

fuzz_target!(|data: &[u8]| {
    let Some((&mode, input)) = data.split_first() else {
        return;
    };
    let options = if mode & 1 == 1 {
        BindOptions::new().supported_protocols(&["h2", "http/1.1"])
    } else {
        BindOptions::new()
    };
    // The hostile client's bytes come in pieces of a size the fuzzer picks.
    let piece = usize::from(mode >> 1).max(1);
    let client = HostileClient {
        input: input.to_vec(),
        at: 0,
        piece,
    };
    let Ok(mut server) = SecureStream::secure_server(client, context(), &options, &[]) else {
        return;
    };
    if server.handshake().is_ok() {
        let _ = server.server_name();
        let mut buf = [0u8; 1024];
        while let Ok(n) = server.read(&mut buf) {
            if n == 0 {
                break;
            }
        }
    }
});
