//! Every setter that takes a duration or a size, called with 0, 1 and the
//! type's maximum, then used: it works, or it is an `InvalidInput` error
//! that names the setter (a tiny timeout may also simply time out). Nothing
//! panics.

mod common;

use std::io::{Read, Write};
use std::net::TcpStream;
use std::thread;
use std::time::Duration;

use common::IO_TIMEOUT;
use securenet::{
    BindOptions, CompressionOptions, ConnectOptions, Error, Message, Result, WebSocket,
    WebSocketOptions,
};

const DURATIONS: [Duration; 3] = [Duration::ZERO, Duration::from_nanos(1), Duration::MAX];
const SIZES: [usize; 3] = [0, 1, usize::MAX];

/// The outcome of using a setter's value: fine, refused by name, or (for
/// the smallest values) a timeout or a failure that follows from it.
fn check(setter: &str, value: &str, tiny: bool, outcome: Result<()>) {
    match outcome {
        Ok(()) => println!("{setter}({value}): works"),
        Err(e @ Error::InvalidInput { .. }) => {
            assert!(e.to_string().contains(setter), "{setter}({value}): {e}");
            println!("{setter}({value}): refused: {e}");
        }
        Err(e) if tiny => println!("{setter}({value}): {e}"),
        Err(e) => panic!("{setter}({value}): {e:?}"),
    }
}

/// Connects with `options` to an echo server, calls `set`, then sends and
/// reads back one byte (through split halves if `split`).
fn tls_round_trip(
    options: ConnectOptions,
    split: bool,
    set: impl FnOnce(&mut securenet::SecureStream) -> Result<()>,
    set_halves: impl FnOnce(&mut securenet::ReadHalf, &mut securenet::WriteHalf) -> Result<()>,
) -> Result<()> {
    let pki = common::pki();
    let (port, server) = common::echo_server(&pki.server_context());
    let result = (|| {
        let mut c = options
            .context(pki.trust_context())
            .connect("localhost", port)?;
        common::with_timeouts(&mut c);
        set(&mut c)?;
        let mut b = [0u8; 1];
        if split {
            let (mut r, mut w) = c.split()?;
            set_halves(&mut r, &mut w)?;
            w.write_all(b"x")?;
            r.read_exact(&mut b)?;
            return w.shutdown_write();
        }
        c.write_all(b"x")?;
        c.read_exact(&mut b)?;
        c.close()
    })();
    // A client refused before it connected: release the server's accept.
    let _ = TcpStream::connect(("127.0.0.1", port));
    let _ = server.join();
    result
}

fn stream_only(options: ConnectOptions) -> Result<()> {
    tls_round_trip(options, false, |_| Ok(()), |_, _| Ok(()))
}

#[test]
fn connect_options_and_stream_durations() {
    for d in DURATIONS {
        let tiny = d < Duration::from_millis(1);
        let v = format!("{d:?}");
        let base = || {
            ConnectOptions::new()
                .timeout(IO_TIMEOUT)
                .handshake_timeout(IO_TIMEOUT)
        };
        check("timeout", &v, tiny, stream_only(base().timeout(d)));
        check(
            "handshake_timeout",
            &v,
            tiny,
            stream_only(base().handshake_timeout(d)),
        );
        check(
            "keepalive",
            &v,
            tiny,
            stream_only(base().keepalive(Some(d))),
        );
        let none = |_: &mut securenet::ReadHalf, _: &mut securenet::WriteHalf| Ok(());
        let read = tls_round_trip(base(), false, |s| s.set_read_timeout(Some(d)), none);
        check("read timeout", &v, tiny, read);
        let write = tls_round_trip(base(), false, |s| s.set_write_timeout(Some(d)), none);
        check("write timeout", &v, tiny, write);
        let halves = tls_round_trip(base(), true, |_| Ok(()), |r, _| r.set_read_timeout(Some(d)));
        check("read timeout", &v, tiny, halves);
        let halves = tls_round_trip(
            base(),
            true,
            |_| Ok(()),
            |_, w| w.set_write_timeout(Some(d)),
        );
        check("write timeout", &v, tiny, halves);
    }
}

#[test]
fn bind_options_durations_and_sizes() {
    let pki = common::pki();
    for d in DURATIONS {
        let tiny = d < Duration::from_millis(1);
        let bound =
            BindOptions::new()
                .handshake_timeout(d)
                .bind("127.0.0.1", 0, &pki.server_context());
        let outcome = bound.and_then(|l| {
            let port = l.port();
            let server = thread::spawn(move || -> Result<()> {
                let (mut s, _) = l.accept()?;
                s.handshake()
            });
            let client = common::client(pki.trust_context()).connect("localhost", port);
            let served = server.join().expect("server");
            client.and(served)
        });
        check("handshake_timeout", &format!("{d:?}"), tiny, outcome);
    }
    for n in [0u32, 1, u32::MAX] {
        let outcome = BindOptions::new()
            .backlog(n)
            .bind("127.0.0.1", 0, &pki.server_context())
            .map(drop);
        check("backlog", &n.to_string(), false, outcome);
    }
    for n in SIZES {
        for (setter, options) in [
            ("max_connections", BindOptions::new().max_connections(n)),
            ("thread_stack_size", BindOptions::new().thread_stack_size(n)),
        ] {
            let outcome = options
                .bind("127.0.0.1", 0, &pki.server_context())
                .map(drop);
            check(setter, &n.to_string(), false, outcome);
        }
    }
}

/// A WebSocket echo server for one connection over plain TCP.
fn ws_echo() -> (String, thread::JoinHandle<()>) {
    let (listener, port) = common::tcp_listener();
    let server = thread::spawn(move || {
        let Ok((s, _)) = listener.accept() else {
            return;
        };
        common::tcp_timeouts(&s);
        let Ok(mut ws) = WebSocket::accept(s, &WebSocketOptions::new()) else {
            return;
        };
        while let Ok(m) = ws.read() {
            let sent = match m {
                Message::Text(t) => ws.send_text(&t),
                Message::Binary(b) => ws.send_binary(&b),
                Message::Close(_) => return,
                _ => Ok(()),
            };
            if sent.is_err() {
                return;
            }
        }
    });
    (format!("ws://127.0.0.1:{port}/"), server)
}

fn ws_round_trip(
    options: WebSocketOptions,
    set: impl FnOnce(&mut WebSocket) -> Result<()>,
) -> Result<()> {
    let (url, server) = ws_echo();
    let result = (|| {
        let mut ws = options.connect(&url)?;
        ws.set_read_timeout(Some(IO_TIMEOUT))?;
        ws.set_write_timeout(Some(IO_TIMEOUT))?;
        set(&mut ws)?;
        ws.send_text("x")?;
        match ws.read()? {
            Message::Text(t) if t == "x" => {}
            other => panic!("echo: {other:?}"),
        }
        ws.close(Some((1000, "")))
    })();
    // A refused connect never reaches the server: release its accept.
    let _ = TcpStream::connect(url.trim_start_matches("ws://").trim_end_matches('/'));
    let _ = server.join();
    result
}

#[test]
fn websocket_durations_and_sizes() {
    let base = || {
        WebSocketOptions::new()
            .compression(CompressionOptions::default())
            .connect_options(
                ConnectOptions::new()
                    .timeout(IO_TIMEOUT)
                    .handshake_timeout(IO_TIMEOUT),
            )
    };
    for d in DURATIONS {
        let tiny = d < Duration::from_millis(1);
        let v = format!("{d:?}");
        check(
            "ping_interval",
            &v,
            tiny,
            ws_round_trip(base().ping_interval(d), |_| Ok(())),
        );
        check(
            "close_timeout",
            &v,
            tiny,
            ws_round_trip(base().close_timeout(d), |_| Ok(())),
        );
        check(
            "upgrade_timeout",
            &v,
            tiny,
            ws_round_trip(base().upgrade_timeout(d), |_| Ok(())),
        );
        check(
            "read timeout",
            &v,
            tiny,
            ws_round_trip(base(), |ws| ws.set_read_timeout(Some(d))),
        );
        check(
            "write timeout",
            &v,
            tiny,
            ws_round_trip(base(), |ws| ws.set_write_timeout(Some(d))),
        );
    }
    for n in SIZES {
        let v = n.to_string();
        // One byte is too small for the one-byte echo only when compressed
        // (a refusal with 1009 is the cap at work).
        let small = n == 1;
        check(
            "max_message_size",
            &v,
            small,
            ws_round_trip(base().max_message_size(n), |_| Ok(())),
        );
        check(
            "max_frame_size",
            &v,
            small,
            ws_round_trip(base().max_frame_size(n), |_| Ok(())),
        );
    }
}

#[test]
fn getters_read_back_what_was_set() {
    let connect = ConnectOptions::new()
        .timeout(Duration::from_secs(3))
        .handshake_timeout(Duration::from_secs(4))
        .supported_protocols(&["h2", "http/1.1"])
        .server_name("example.com")
        .sni(false)
        .reject_unauthorized(false);
    assert_eq!(connect.get_timeout(), Duration::from_secs(3));
    assert_eq!(connect.get_handshake_timeout(), Duration::from_secs(4));
    assert_eq!(connect.get_supported_protocols(), ["h2", "http/1.1"]);
    assert_eq!(connect.get_server_name(), Some("example.com"));
    assert!(!connect.get_sni());
    assert!(!connect.get_reject_unauthorized());
    assert!(connect.get_context().is_none());
    let defaults = ConnectOptions::new();
    assert_eq!(
        defaults.get_handshake_timeout(),
        securenet::DEFAULT_HANDSHAKE_TIMEOUT
    );
    assert_eq!(defaults.get_timeout(), securenet::DEFAULT_CONNECT_TIMEOUT);

    let bind = BindOptions::new()
        .backlog(7)
        .max_connections(9)
        .require_client_certificate(true)
        .handshake_timeout(Duration::from_secs(5))
        .supported_protocols(&["echo/1"]);
    assert_eq!(bind.get_backlog(), 7);
    assert_eq!(bind.get_max_connections(), Some(9));
    assert!(bind.get_require_client_certificate());
    assert_eq!(bind.get_handshake_timeout(), Duration::from_secs(5));
    assert_eq!(bind.get_supported_protocols(), ["echo/1"]);

    let ws = WebSocketOptions::new()
        .protocols(&["chat"])
        .compression(CompressionOptions::disabled())
        .ping_interval(Duration::from_secs(6))
        .max_message_size(1000)
        .max_frame_size(100)
        .close_timeout(Duration::from_secs(2))
        .upgrade_timeout(Duration::from_secs(8))
        .connect_options(connect);
    assert_eq!(ws.get_protocols(), ["chat"]);
    assert!(!ws.get_compression().enabled);
    assert_eq!(ws.get_ping_interval(), Some(Duration::from_secs(6)));
    assert_eq!(ws.get_max_message_size(), 1000);
    assert_eq!(ws.get_max_frame_size(), 100);
    assert_eq!(ws.get_close_timeout(), Duration::from_secs(2));
    assert_eq!(ws.get_upgrade_timeout(), Duration::from_secs(8));
    assert_eq!(
        ws.get_connect_options().get_server_name(),
        Some("example.com")
    );
}
