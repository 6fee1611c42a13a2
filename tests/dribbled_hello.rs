//! A client that dribbles its ClientHello (over 12,500 bytes, in 1-byte
//! records) costs the server's handshake thread about what it costs raw
//! rustls to parse the same bytes, not a quadratic amount (securenet once
//! re-joined the buffered prefix for every record: about a second of CPU).
//! CPU time is the thread's own, from /proc/thread-self/schedstat (Linux).

mod common;

use std::io::{Read, Write};
use std::sync::Arc;
use std::time::Duration;

use common::pki;
use securenet::{BindOptions, SecureStream};

/// This thread's CPU time so far, if the kernel says.
fn thread_cpu() -> Option<Duration> {
    let stat = std::fs::read_to_string("/proc/thread-self/schedstat").ok()?;
    let ns = stat.split_whitespace().next()?.parse::<u64>().ok()?;
    Some(Duration::from_nanos(ns))
}

fn records(message: &[u8], size: usize) -> Vec<u8> {
    message
        .chunks(size)
        .flat_map(|c| {
            let len = u16::try_from(c.len()).unwrap().to_be_bytes();
            [&[22, 3, 1, len[0], len[1]][..], c].concat()
        })
        .collect()
}

/// A client that sends `input`, at most `piece` bytes per read (one
/// record each, as a dribbling client's arrive), and swallows what the
/// server writes.
struct Dribbler {
    input: Vec<u8>,
    at: usize,
    piece: usize,
}

impl Read for Dribbler {
    fn read(&mut self, buf: &mut [u8]) -> std::io::Result<usize> {
        let rest = &self.input[self.at..];
        let n = buf.len().min(rest.len()).min(self.piece);
        buf[..n].copy_from_slice(&rest[..n]);
        self.at += n;
        Ok(n)
    }
}

impl Write for Dribbler {
    fn write(&mut self, buf: &[u8]) -> std::io::Result<usize> {
        Ok(buf.len())
    }

    fn flush(&mut self) -> std::io::Result<()> {
        Ok(())
    }
}

/// The server's handshake over `wire`, read `piece` bytes at a time: its
/// thread's CPU and its error. `several` configurations make rustls's
/// `Acceptor` read the ClientHello first; one starts the connection at
/// once.
fn securenet_handshake(wire: &[u8], piece: usize, several: bool) -> (Duration, String) {
    let ctx = pki().server_context();
    let options = if several {
        BindOptions::new().supported_protocols(&["h2", "http/1.1"])
    } else {
        BindOptions::new()
    };
    let wire = wire.to_vec();
    std::thread::spawn(move || {
        let client = Dribbler {
            input: wire,
            at: 0,
            piece,
        };
        let before = thread_cpu();
        let mut server =
            SecureStream::secure_server(client, &ctx, &options, &[]).expect("secure_server");
        // The hello is answered, then the client has nothing more.
        let err = server
            .handshake()
            .expect_err("the client stops mid-handshake");
        let cost = before.zip(thread_cpu()).map(|(b, a)| a - b);
        (cost.expect("schedstat"), err.to_string())
    })
    .join()
    .expect("server thread")
}

/// The CPU of a handshake that answers the hello (and then ends for want
/// of the client's next flight).
fn securenet_cost(wire: &[u8], piece: usize, several: bool) -> Duration {
    let (cost, err) = securenet_handshake(wire, piece, several);
    assert!(!err.contains("not valid TLS"), "{err}");
    cost
}

/// The CPU raw rustls (its unbuffered server, which securenet drives)
/// spends parsing and answering `wire`, all of it given at once.
fn rustls_cost(wire: &[u8]) -> Duration {
    use rustls::unbuffered::ConnectionState;
    let pki = pki();
    let config = Arc::new(common::rustls_server_config(
        &pki,
        &[&rustls::version::TLS13, &rustls::version::TLS12],
    ));
    let mut wire = wire.to_vec();
    std::thread::spawn(move || {
        let before = thread_cpu();
        let mut conn = rustls::server::UnbufferedServerConnection::new(config).expect("server");
        let mut out = vec![0u8; 64 * 1024];
        let mut sent = 0;
        let mut at = 0;
        loop {
            let status = conn.process_tls_records(&mut wire[at..]);
            at += status.discard;
            match status.state.expect("rustls state") {
                ConnectionState::EncodeTlsData(mut e) => {
                    sent += e.encode(&mut out[sent..]).expect("encode");
                }
                ConnectionState::TransmitTlsData(t) => t.done(),
                ConnectionState::BlockedHandshake => break,
                _ => break,
            }
        }
        assert!(sent > 0, "rustls answered the hello");
        before.zip(thread_cpu()).map(|(b, a)| a - b)
    })
    .join()
    .expect("rustls thread")
    .expect("schedstat")
}

#[test]
fn a_dribbled_client_hello_costs_about_what_rustls_pays() {
    if thread_cpu().is_none() {
        common::skip(
            "a_dribbled_client_hello_costs_about_what_rustls_pays",
            "no /proc/thread-self/schedstat",
        );
        return;
    }
    let hello = common::client_hello_padded(12_500);
    assert!(hello.len() > 12_500, "{}", hello.len());
    let dribbled = records(&hello, 1);
    // Warm up (allocator, lazy statics), then measure.
    let _ = (securenet_cost(&dribbled, 6, false), rustls_cost(&dribbled));
    let raw = rustls_cost(&dribbled);
    let ours = securenet_cost(&dribbled, 6, false);
    let whole = securenet_cost(&records(&hello, 16_384), 16_384 + 5, false);
    eprintln!("dribbled hello: securenet {ours:?}, raw rustls {raw:?}; whole: {whole:?}");
    // A small constant factor of rustls's own cost, loosely (CI machines
    // are loaded); the quadratic scan cost about 1,000 times more.
    assert!(
        ours < raw * 5 + whole * 2 + Duration::from_millis(50),
        "securenet {ours:?} against raw rustls {raw:?} (whole {whole:?})"
    );
}

/// With several configurations rustls's `Acceptor` reads the hello first,
/// and its buffer does not take 12,500 one-byte records: that is said as
/// such (it once read "not valid TLS (message buffer full)"), and the same
/// hello in larger records is taken.
#[test]
fn a_hello_the_acceptor_cannot_buffer_is_named_as_such() {
    let hello = common::client_hello_padded(12_500);
    let (_, err) = securenet_handshake(&records(&hello, 1), 6, true);
    assert!(
        err.contains("ClientHello did not fit the buffer rustls reads it into"),
        "{err}"
    );
    assert!(!err.contains("not valid TLS"), "{err}");
    let (_, err) = securenet_handshake(&records(&hello, 4096), 4101, true);
    assert!(
        !err.contains("ClientHello"),
        "taken in 4 KiB records: {err}"
    );
}
