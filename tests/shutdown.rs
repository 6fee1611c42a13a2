//! `StopHandle::shutdown`, as Go's `Server.Shutdown` then `Close`: handlers
//! see the stop, connections that end within the grace period are
//! counted as finished, the ones left are closed cleanly (the client reads
//! `close_notify`, a clean end, not a truncation; a WebSocket client gets
//! 1001 first), a thread that never touches its stream has its socket shut,
//! and streams from `incoming` are counted as `serve`'s are.

mod common;

use std::io::{Read, Write};
use std::sync::mpsc;
use std::thread;
use std::time::{Duration, Instant};

use common::{IO_TIMEOUT, client, pki, with_timeouts};
use securenet::{
    BindOptions, Error, Message, SHUTDOWN_CLOSE_PERIOD, SecureListener, SecureStream, StopHandle,
    UpgradeResponse, WebSocket, WebSocketOptions, testing::TestPki,
};

fn listener(options: BindOptions) -> (SecureListener, TestPki) {
    let pki = pki();
    let listener = options
        .handshake_timeout(IO_TIMEOUT)
        .bind("127.0.0.1", 0, &pki.server_context())
        .expect("bind");
    (listener, pki)
}

/// A client that has finished its handshake and said hello (so the
/// server's handler is past its handshake too, waiting in a read).
fn connected(pki: &TestPki, port: u16) -> SecureStream {
    let mut s = client(pki.client_context())
        .connect("localhost", port)
        .expect("connect");
    with_timeouts(&mut s);
    s.write_all(b"hi").expect("hello");
    s
}

/// Serves WebSockets (`accept_with`) with `handler`; it is told `tx` once
/// the upgrade is done.
fn serve_websockets<T: Send + 'static>(
    l: SecureListener,
    ready: mpsc::Sender<T>,
    handler: impl Fn(WebSocket<SecureStream>, &mpsc::Sender<T>) -> securenet::Result<()>
    + Send
    + Sync
    + 'static,
) {
    let ready = std::sync::Mutex::new(ready);
    thread::spawn(move || {
        l.serve(move |s: SecureStream| -> securenet::Result<()> {
            let ws =
                WebSocket::accept_with(
                    s,
                    &WebSocketOptions::new(),
                    |_| Ok(UpgradeResponse::new()),
                )?;
            let tx = ready.lock().map(|t| t.clone()).map_err(|_| Error::Closed)?;
            handler(ws, &tx)
        })
    });
}

/// Serves with an echo handler that reports each error it ends with.
fn serve_echo(listener: SecureListener) -> (StopHandle, mpsc::Receiver<String>) {
    let stop = listener.stop_handle();
    let (tx, rx) = mpsc::channel();
    thread::spawn(move || {
        listener.serve(move |mut s: SecureStream| -> securenet::Result<()> {
            let mut buf = [0u8; 64];
            loop {
                match s.read(&mut buf) {
                    Ok(0) => return Ok(()),
                    Ok(n) => s.write_all(&buf[..n])?,
                    Err(e) => {
                        let e = Error::from(e);
                        let _ = tx.send(format!("{e:?}"));
                        return Err(e);
                    }
                }
            }
        })
    });
    (stop, rx)
}

#[test]
fn connections_left_after_the_grace_period_are_closed_with_close_notify() {
    let (l, pki) = listener(BindOptions::new());
    let port = l.port();
    let (stop, errors) = serve_echo(l);
    let mut a = connected(&pki, port);
    let mut b = connected(&pki, port);
    let mut echo = [0u8; 2];
    a.read_exact(&mut echo).expect("echo a");
    b.read_exact(&mut echo).expect("echo b");

    let started = Instant::now();
    let grace = Duration::from_millis(300);
    let report = stop.shutdown(grace);
    let took = started.elapsed();
    assert_eq!(
        (
            report.open_at_stop,
            report.finished,
            report.closed,
            report.cut,
            report.left_open
        ),
        (2, 0, 2, 0, 0),
        "{report:?}"
    );
    assert!(!report.all_finished());
    assert!(took >= grace, "waited the grace period: {took:?}");
    assert!(took < 2 * (grace + SHUTDOWN_CLOSE_PERIOD), "{took:?}");
    // Each client sees a clean TLS end: Ok(0), not UnexpectedEof.
    for s in [&mut a, &mut b] {
        let mut rest = Vec::new();
        assert_eq!(s.read_to_end(&mut rest).expect("clean end"), 0);
    }
    // The handlers were told why.
    for _ in 0..2 {
        let e = errors.recv_timeout(IO_TIMEOUT).expect("handler error");
        assert!(e.starts_with("ShuttingDown"), "{e}");
    }
    // Accepting stopped.
    assert!(
        client(pki.client_context())
            .connect("localhost", port)
            .is_err()
    );
}

#[test]
fn connections_that_end_within_the_grace_period_are_finished() {
    let (l, pki) = listener(BindOptions::new());
    let port = l.port();
    let stop = l.stop_handle();
    let (tx, rx) = mpsc::channel();
    let handler_stop = stop.clone();
    thread::spawn(move || {
        l.serve(move |mut s: SecureStream| -> securenet::Result<()> {
            let mut buf = [0u8; 2];
            s.read_exact(&mut buf)?;
            let _ = tx.send(());
            // The token: a handler with work of its own waits on the stop,
            // then finishes cleanly.
            assert!(handler_stop.wait_for_stop(IO_TIMEOUT));
            s.write_all(b"bye")?;
            s.close()
        })
    });
    let mut c = connected(&pki, port);
    rx.recv_timeout(IO_TIMEOUT).expect("handler running");
    assert!(!stop.is_stopped());
    let report = stop.shutdown(IO_TIMEOUT);
    assert_eq!(report.open_at_stop, 1);
    assert_eq!(report.finished, 1);
    assert_eq!((report.closed, report.cut, report.left_open), (0, 0, 0));
    assert!(report.all_finished(), "{report:?}");
    let mut got = Vec::new();
    c.read_to_end(&mut got).expect("clean end");
    assert_eq!(got, b"bye");
}

#[test]
fn a_thread_that_never_touches_its_stream_has_its_socket_shut() {
    let (l, pki) = listener(BindOptions::new());
    let port = l.port();
    let stop = l.stop_handle();
    let (held_tx, held_rx) = mpsc::channel();
    let (release_tx, release_rx) = mpsc::channel::<()>();
    let release_rx = std::sync::Mutex::new(release_rx);
    thread::spawn(move || {
        l.serve(move |mut s: SecureStream| -> securenet::Result<()> {
            let mut buf = [0u8; 2];
            s.read_exact(&mut buf)?;
            let _ = held_tx.send(());
            // Busy elsewhere, holding the stream, until the test lets go.
            if let Ok(rx) = release_rx.lock() {
                let _ = rx.recv_timeout(IO_TIMEOUT);
            }
            drop(s);
            Ok(())
        })
    });
    let mut c = connected(&pki, port);
    held_rx.recv_timeout(IO_TIMEOUT).expect("handler holding");
    let report = stop.shutdown(Duration::from_millis(100));
    assert_eq!(
        (
            report.open_at_stop,
            report.closed,
            report.cut,
            report.left_open
        ),
        (1, 0, 1, 0),
        "{report:?}"
    );
    assert_eq!(report.handlers_running, 1);
    // The client sees the end, without close_notify.
    let mut rest = Vec::new();
    let e = c.read_to_end(&mut rest).expect_err("cut");
    assert_eq!(e.kind(), std::io::ErrorKind::UnexpectedEof, "{e}");
    let _ = release_tx.send(());
}

#[test]
fn streams_from_incoming_are_counted_and_closed_too() {
    let (l, pki) = listener(BindOptions::new());
    let port = l.port();
    let stop = l.stop_handle();
    let (tx, rx) = mpsc::channel();
    let server = thread::spawn(move || {
        let mut handlers = Vec::new();
        for stream in l.incoming() {
            let mut s = stream.expect("incoming");
            let tx = tx.clone();
            handlers.push(thread::spawn(move || {
                let mut buf = [0u8; 2];
                let _ = s.read_exact(&mut buf);
                let _ = tx.send(());
                let e = s.read(&mut buf).expect_err("shut down");
                Error::from(e)
            }));
        }
        handlers
            .into_iter()
            .map(|h| h.join().expect("handler"))
            .collect::<Vec<_>>()
    });
    let mut c = connected(&pki, port);
    rx.recv_timeout(IO_TIMEOUT).expect("handler reading");
    let report = stop.shutdown(Duration::from_millis(50));
    assert_eq!((report.open_at_stop, report.closed), (1, 1), "{report:?}");
    let errors = server.join().expect("incoming loop");
    assert!(
        matches!(errors.as_slice(), [Error::ShuttingDown]),
        "{errors:?}"
    );
    let mut rest = Vec::new();
    assert_eq!(c.read_to_end(&mut rest).expect("clean end"), 0);
}

#[test]
fn without_a_second_descriptor_a_blocked_reader_is_left_open() {
    let (l, pki) = listener(BindOptions::new().close_on_shutdown(false));
    let port = l.port();
    let (stop, _errors) = serve_echo(l);
    let mut c = connected(&pki, port);
    let mut echo = [0u8; 2];
    c.read_exact(&mut echo).expect("echo");
    let report = stop.shutdown(Duration::from_millis(50));
    assert_eq!(
        (report.open_at_stop, report.cut, report.left_open),
        (1, 0, 1),
        "{report:?}"
    );
    // Its thread sees the shutdown at its next read: the client's bytes
    // wake it, and it closes cleanly.
    c.write_all(b"again").expect("write");
    let mut rest = Vec::new();
    assert_eq!(c.read_to_end(&mut rest).expect("clean end"), 0);
}

#[test]
fn a_websocket_gets_1001_going_away_before_the_tls_close() {
    let (l, pki) = listener(BindOptions::new());
    let port = l.port();
    let stop = l.stop_handle();
    let (tx, rx) = mpsc::channel();
    serve_websockets(l, tx, |mut ws, ready| {
        let _ = ready.send(());
        loop {
            ws.read()?;
        }
    });
    let mut ws = ws_client(&pki, port);
    rx.recv_timeout(IO_TIMEOUT).expect("server reading");
    let report = stop.shutdown(Duration::from_millis(50));
    assert_eq!(report.closed, 1, "{report:?}");
    match ws.read().expect("close frame") {
        Message::Close(Some((code, reason))) => {
            assert_eq!(code, 1001);
            assert_eq!(reason, "going away");
        }
        other => panic!("{other:?}"),
    }
}

fn sum(r: &securenet::ShutdownReport) -> usize {
    r.finished + r.closed_idle + r.closed + r.cut + r.left_open
}

fn ws_client(pki: &TestPki, port: u16) -> WebSocket {
    let mut ctx = securenet::SecurityContext::empty();
    ctx.set_trusted_certificates_bytes(pki.ca_pem().as_bytes())
        .expect("trust");
    let mut ws = WebSocketOptions::new()
        .connect_options(client(ctx))
        .connect(&format!("wss://localhost:{port}/"))
        .expect("connect");
    ws.set_read_timeout(Some(IO_TIMEOUT)).expect("timeout");
    ws
}

// Found by a review (each failed before its fix).

#[test]
fn a_split_server_websocket_gets_1001_too() {
    let (l, pki) = listener(BindOptions::new());
    let port = l.port();
    let stop = l.stop_handle();
    let (tx, rx) = mpsc::channel();
    serve_websockets(l, tx, |ws, ready| {
        let (mut reader, _writer) = ws.split()?;
        let _ = ready.send(());
        loop {
            reader.read()?;
        }
    });
    let mut ws = ws_client(&pki, port);
    rx.recv_timeout(IO_TIMEOUT).expect("server reading");
    let report = stop.shutdown(Duration::from_millis(50));
    assert_eq!(report.closed, 1, "{report:?}");
    match ws.read() {
        Ok(Message::Close(Some((code, _)))) => assert_eq!(code, 1001),
        other => panic!("expected a 1001 close frame, got {other:?}"),
    }
}

#[test]
fn counts_follow_close_notify_not_whether_the_stream_is_dropped() {
    // One handler closes cleanly on the request, then holds its stream
    // past the close period; the other drops its stream without a close
    // once asked. The first is closed, the second cut.
    let (l, pki) = listener(BindOptions::new());
    let port = l.port();
    let stop = l.stop_handle();
    let (reading_tx, reading_rx) = mpsc::channel();
    let (release_tx, release_rx) = mpsc::channel::<()>();
    let release_rx = std::sync::Mutex::new(release_rx);
    thread::spawn(move || {
        l.serve(move |mut s: SecureStream| -> securenet::Result<()> {
            let mut buf = [0u8; 2];
            s.read_exact(&mut buf)?;
            if &buf == b"hi" {
                let _ = reading_tx.send(());
                // Fails with ShuttingDown, close_notify sent; then held.
                let e = s.read(&mut buf).expect_err("shut down");
                if let Ok(rx) = release_rx.lock() {
                    let _ = rx.recv_timeout(IO_TIMEOUT);
                }
                return Err(Error::from(e));
            }
            let _ = reading_tx.send(());
            // Busy, not reading; once asked, it drops the stream unclosed.
            let asked = Instant::now();
            while !s.is_shutting_down() && asked.elapsed() < IO_TIMEOUT {
                thread::yield_now();
            }
            drop(s);
            Ok(())
        })
    });
    let mut clean = connected(&pki, port);
    let mut dropped = client(pki.client_context())
        .connect("localhost", port)
        .expect("connect");
    with_timeouts(&mut dropped);
    dropped.write_all(b"yo").expect("write");
    reading_rx.recv_timeout(IO_TIMEOUT).expect("first handler");
    reading_rx.recv_timeout(IO_TIMEOUT).expect("second handler");
    let report = stop.shutdown(Duration::from_millis(50));
    assert_eq!(
        (report.open_at_stop, report.closed, report.cut),
        (2, 1, 1),
        "{report:?}"
    );
    assert_eq!(sum(&report), report.open_at_stop);
    let mut rest = Vec::new();
    assert_eq!(clean.read_to_end(&mut rest).expect("clean end"), 0);
    let e = dropped.read_to_end(&mut rest).expect_err("no close_notify");
    assert_eq!(e.kind(), std::io::ErrorKind::UnexpectedEof, "{e}");
    let _ = release_tx.send(());
}

#[test]
fn counts_add_up_with_connections_racing_the_stop() {
    for round in 0..10 {
        let (l, pki) = listener(BindOptions::new());
        let port = l.port();
        let stop = l.stop_handle();
        let serving = thread::spawn(move || {
            l.serve(move |mut s: SecureStream| -> securenet::Result<()> {
                let mut buf = [0u8; 16];
                while s.read(&mut buf)? > 0 {}
                Ok(())
            })
        });
        let go = std::sync::Arc::new(std::sync::Barrier::new(5));
        let clients: Vec<_> = (0..4)
            .map(|_| {
                let go = go.clone();
                thread::spawn(move || {
                    go.wait();
                    (0..20)
                        .filter_map(|_| std::net::TcpStream::connect(("127.0.0.1", port)).ok())
                        .collect::<Vec<_>>()
                })
            })
            .collect();
        go.wait();
        let report = stop.shutdown(Duration::ZERO);
        serving.join().expect("serve").expect("served");
        for c in clients {
            drop(c.join().expect("clients"));
        }
        assert_eq!(
            sum(&report),
            report.open_at_stop,
            "round {round}: {report:?}"
        );
        drop(pki);
    }
}

#[test]
fn a_websocket_owner_gets_one_write_after_the_shutdown_its_close_frame() {
    let (l, pki) = listener(BindOptions::new());
    let port = l.port();
    let stop = l.stop_handle();
    let (tx, rx) = mpsc::channel();
    serve_websockets(l, tx, |mut ws, ready| {
        let _ = ready.send(String::new());
        let e = loop {
            if let Err(e) = ws.read() {
                break e;
            }
        };
        // The WebSocket sent its 1001 and closed: nothing more goes out,
        // even written straight to the stream.
        let more = ws.get_mut().write(b"more").map_err(Error::from);
        let _ = ready.send(format!("{more:?}"));
        Err(e)
    });
    let mut ws = ws_client(&pki, port);
    rx.recv_timeout(IO_TIMEOUT).expect("server reading");
    stop.shutdown(Duration::from_millis(50));
    let more = rx.recv_timeout(IO_TIMEOUT).expect("server wrote");
    assert!(more.starts_with("Err(ShuttingDown"), "{more}");
    match ws.read() {
        Ok(Message::Close(Some((1001, _)))) => {}
        other => panic!("{other:?}"),
    }
}
