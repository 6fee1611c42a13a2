//! How a connection ends, seen from the client's and from the server's
//! stream: a close_notify reads as end of stream; a FIN without close_notify,
//! a reset, and a connection cut in the middle of a record are each an error.

mod common;

use std::io::{ErrorKind, Read, Write};
use std::net::{Shutdown, TcpStream};
use std::thread::{self, JoinHandle};
use std::time::Duration;

use common::{IO_TIMEOUT, client, serve_one, with_timeouts};
use securenet::{BindOptions, Error, SecureStream};

/// How the writing side ends the connection.
#[derive(Clone, Copy, Debug)]
enum End {
    /// close(): close_notify, then FIN.
    CloseNotify,
    /// Dropped without close(): FIN only.
    Fin,
    /// SO_LINGER 0 then dropped: RST.
    Reset,
}

/// Writes `data`, then ends the connection as `end` says.
fn finish(mut s: SecureStream, data: &[u8], end: End) {
    s.write_all(data).expect("write");
    s.flush().expect("flush");
    match end {
        End::CloseNotify => s.close().expect("close"),
        End::Fin => drop(s),
        End::Reset => {
            socket2::SockRef::from(s.get_ref())
                .set_linger(Some(Duration::ZERO))
                .expect("linger");
            drop(s);
        }
    }
}

/// Reads to the end and checks what `end` must look like.
fn check(mut s: SecureStream, data: &[u8], end: End, side: &str) {
    let mut got = Vec::new();
    let result = s.read_to_end(&mut got);
    match end {
        End::CloseNotify => {
            result.unwrap_or_else(|e| panic!("{side}: a clean end of stream, got {e}"));
            assert_eq!(got, data, "{side}: every byte before close_notify");
        }
        End::Fin => {
            let err = result.expect_err("truncation is an error");
            assert_eq!(err.kind(), ErrorKind::UnexpectedEof, "{side}: {err}");
            assert!(err.to_string().contains("close_notify"), "{side}: {err}");
            assert!(matches!(Error::from(err), Error::Truncated), "{side}");
            assert_eq!(got, data, "{side}: the bytes before the FIN");
        }
        End::Reset => {
            let err = result.expect_err("a reset is an error");
            // A RST can overtake the data in the receive queue, so only
            // the error is certain, not how much arrived.
            assert!(
                matches!(
                    err.kind(),
                    ErrorKind::ConnectionReset | ErrorKind::UnexpectedEof
                ),
                "{side}: {err:?}"
            );
        }
    }
}

#[test]
fn server_ends_and_the_client_reads() {
    let pki = common::pki();
    for end in [End::CloseNotify, End::Fin, End::Reset] {
        let data = vec![b'd'; 5_000];
        let sent = data.clone();
        let (port, server) = serve_one(BindOptions::new(), &pki.server_context(), move |s| {
            finish(s, &sent, end)
        });
        let mut c = client(pki.trust_context())
            .connect("localhost", port)
            .expect("connect");
        with_timeouts(&mut c);
        server.join().expect("server");
        check(c, &data, end, &format!("client, server {end:?}"));
    }
}

#[test]
fn client_ends_and_the_server_reads() {
    let pki = common::pki();
    for end in [End::CloseNotify, End::Fin, End::Reset] {
        let data = vec![b'c'; 5_000];
        let expected = data.clone();
        let (port, server) = serve_one(BindOptions::new(), &pki.server_context(), move |mut s| {
            s.handshake().expect("handshake");
            s.write_all(b"go").expect("go");
            check(s, &expected, end, &format!("server, client {end:?}"));
        });
        let mut c = client(pki.trust_context())
            .connect("localhost", port)
            .expect("connect");
        with_timeouts(&mut c);
        let mut go = [0u8; 2];
        c.read_exact(&mut go).expect("go");
        finish(c, &data, end);
        server.join().expect("server");
    }
}

/// A proxy that forwards both ways, but in one direction passes only half of
/// the first record longer than 9,000 bytes, then cuts both connections.
fn cutting_proxy(server_port: u16, cut_to_server: bool) -> (u16, JoinHandle<()>) {
    let (listener, port) = common::tcp_listener();
    let handle = thread::spawn(move || {
        let (down, _) = listener.accept().expect("accept");
        let up = TcpStream::connect(("127.0.0.1", server_port)).expect("connect");
        common::tcp_timeouts(&down);
        common::tcp_timeouts(&up);
        let (from, to, other_from, other_to) = if cut_to_server {
            (down.try_clone(), up.try_clone(), up, down)
        } else {
            (up.try_clone(), down.try_clone(), down, up)
        };
        let (mut from, mut to) = (from.expect("clone"), to.expect("clone"));
        let (mut other_from, mut other_to) = (other_from, other_to);
        let other = thread::spawn(move || {
            let _ = std::io::copy(&mut other_from, &mut other_to);
        });
        let mut seen = Vec::new();
        let mut sent = 0usize;
        let mut buf = [0u8; 65536];
        'outer: loop {
            let n = from.read(&mut buf).expect("proxy read");
            assert!(n > 0, "the peer closed before the big record");
            seen.extend_from_slice(&buf[..n]);
            while seen.len() >= sent + 5 {
                let len = usize::from(u16::from_be_bytes([seen[sent + 3], seen[sent + 4]]));
                if len > 9_000 {
                    let cut = (sent + 5 + len / 2).min(seen.len());
                    to.write_all(&seen[sent..cut]).expect("forward half");
                    break 'outer;
                }
                if seen.len() < sent + 5 + len {
                    break;
                }
                to.write_all(&seen[sent..sent + 5 + len]).expect("forward");
                sent += 5 + len;
            }
        }
        let _ = to.shutdown(Shutdown::Both);
        let _ = from.shutdown(Shutdown::Both);
        let _ = other.join();
    });
    (port, handle)
}

fn assert_cut(result: std::io::Result<usize>, got: &[u8], side: &str) {
    let err = result.expect_err("cut mid-record");
    assert_eq!(err.kind(), ErrorKind::UnexpectedEof, "{side}: {err}");
    assert!(got.is_empty(), "{side}: no byte of a partial record");
}

#[test]
fn a_connection_cut_mid_record_is_an_error_on_the_client() {
    let pki = common::pki();
    let (port, server) = serve_one(BindOptions::new(), &pki.server_context(), |mut s| {
        s.write_all(&[b'z'; 10_000])?;
        s.flush()?;
        s.close()
    });
    let (proxy_port, proxy) = cutting_proxy(port, false);
    let mut c = client(pki.trust_context())
        .connect("localhost", proxy_port)
        .expect("connect");
    with_timeouts(&mut c);
    let mut got = Vec::new();
    let result = c.read_to_end(&mut got);
    assert_cut(result, &got, "client");
    proxy.join().expect("proxy");
    let _ = server.join();
}

#[test]
fn a_connection_cut_mid_record_is_an_error_on_the_server() {
    let pki = common::pki();
    let (port, server) = serve_one(BindOptions::new(), &pki.server_context(), |mut s| {
        let mut got = Vec::new();
        let result = s.read_to_end(&mut got);
        assert_cut(result, &got, "server");
    });
    let (proxy_port, proxy) = cutting_proxy(port, true);
    let mut c = client(pki.trust_context())
        .connect("localhost", proxy_port)
        .expect("connect");
    with_timeouts(&mut c);
    c.set_write_timeout(Some(IO_TIMEOUT)).expect("timeout");
    // The proxy cuts while this is in flight; the write itself may or may
    // not see the cut.
    let _ = c.write_all(&[b'y'; 10_000]).and_then(|()| c.flush());
    proxy.join().expect("proxy");
    server.join().expect("server");
}

#[test]
fn a_server_closed_before_its_handshake_sends_nothing() {
    // One configuration (the connection starts at once) and two ALPN
    // protocols (the ClientHello is read first to choose): either way,
    // close() before the handshake ends the connection without running it.
    for options in [
        BindOptions::new(),
        BindOptions::new().supported_protocols(&["h2", "http/1.1"]),
    ] {
        let pki = common::pki();
        let (port, server) = serve_one(options, &pki.server_context(), |mut s| {
            // Nothing was negotiated: the handshake has not run.
            let pending = s.protocol_version().is_none() && s.cipher_suite().is_none();
            (pending, s.close())
        });
        // A raw client that starts a ClientHello (a record header) and
        // reads whatever the server sends back.
        let mut raw = TcpStream::connect(("127.0.0.1", port)).expect("connect");
        common::tcp_timeouts(&raw);
        let _ = raw.write_all(&[0x16, 0x03, 0x01]);
        let mut got = Vec::new();
        let end = raw.read_to_end(&mut got);
        let (pending, closed) = server.join().expect("server");
        assert!(pending, "close() found the handshake already run");
        closed.expect("close");
        assert!(
            got.is_empty(),
            "the server sent {} bytes: {got:?}",
            got.len()
        );
        // The end is a FIN or, if our bytes were still unread, a reset.
        if let Err(e) = end {
            assert_eq!(e.kind(), ErrorKind::ConnectionReset, "{e}");
        }
    }
}

#[test]
fn a_client_that_leaves_before_its_hello_is_a_clear_server_error() {
    // A port check: TCP connect, then close without a byte of TLS.
    let pki = common::pki();
    let (port, server) = serve_one(BindOptions::new(), &pki.server_context(), |mut s| {
        s.handshake()
    });
    drop(TcpStream::connect(("127.0.0.1", port)).expect("connect"));
    let err = server
        .join()
        .expect("server")
        .expect_err("no handshake happened");
    assert!(matches!(err, Error::Handshake { .. }), "{err:?}");
    assert!(
        err.to_string().contains("the client closed the connection"),
        "{err}"
    );
}
