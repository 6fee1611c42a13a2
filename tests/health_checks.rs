//! Behind a load balancer, `serve` tells health checks from failures and
//! names the client, not the balancer: a connection that closes without a
//! byte (HAProxy `check`), or after a PROXY v2 `LOCAL` header
//! (`check-send-proxy`), goes to `on_health_check`, never to
//! `on_client_error`; a failure after a PROXY header is reported with the
//! client's address from it.

mod common;

use std::io::Write;
use std::net::{SocketAddr, TcpStream};
use std::sync::mpsc;
use std::thread;

use common::{IO_TIMEOUT, pki, tcp_timeouts};
use securenet::{BindOptions, ProxyProtocol};

const V2_SIGNATURE: &[u8] = b"\r\n\r\n\0\r\nQUIT\n";

/// What `serve` reported.
#[derive(Debug, PartialEq)]
enum Seen {
    Check(SocketAddr),
    Failure(SocketAddr, String),
}

/// Serves with `bind` and reports into a channel; the listener's port.
fn serving(bind: BindOptions) -> (u16, mpsc::Receiver<Seen>, securenet::StopHandle) {
    let (tx, rx) = mpsc::channel();
    let checks = tx.clone();
    let bind = bind
        .handshake_timeout(IO_TIMEOUT)
        .on_health_check(move |peer| {
            let _ = checks.send(Seen::Check(peer));
        })
        .on_client_error(move |e, peer| {
            let _ = tx.send(Seen::Failure(peer, e.to_string()));
        });
    let listener = bind
        .bind("127.0.0.1", 0, &pki().server_context())
        .expect("bind");
    let port = listener.port();
    let stop = listener.stop_handle();
    thread::spawn(move || listener.serve(|_s| Ok::<(), std::io::Error>(())));
    (port, rx, stop)
}

/// Connects, writes `bytes`, and closes.
fn visit(port: u16, bytes: &[u8]) -> SocketAddr {
    let mut s = TcpStream::connect(("127.0.0.1", port)).expect("connect");
    tcp_timeouts(&s);
    let local = s.local_addr().expect("addr");
    s.write_all(bytes).expect("write");
    drop(s);
    local
}

#[test]
fn a_connection_that_says_nothing_is_a_health_check() {
    let (port, rx, stop) = serving(BindOptions::new());
    let me = visit(port, b"");
    assert_eq!(
        rx.recv_timeout(IO_TIMEOUT).expect("report"),
        Seen::Check(me)
    );
    // Several configurations (the ClientHello is read to choose): the same.
    let (port, rx, stop2) = serving(BindOptions::new().supported_protocols(&["h2", "http/1.1"]));
    let me = visit(port, b"");
    assert_eq!(
        rx.recv_timeout(IO_TIMEOUT).expect("report"),
        Seen::Check(me)
    );
    // A byte that is not TLS is a failure, not a check.
    let me = visit(port, b"GET / HTTP/1.1\r\n\r\n");
    match rx.recv_timeout(IO_TIMEOUT).expect("report") {
        Seen::Failure(peer, _) => assert_eq!(peer, me),
        other => panic!("{other:?}"),
    }
    stop.stop();
    stop2.stop();
}

#[test]
fn behind_a_balancer_checks_are_checks_and_failures_name_the_client() {
    let bind = BindOptions::new()
        .proxy_protocol(ProxyProtocol::Any)
        .proxy_protocol_trusted(&["127.0.0.1"]);
    let (port, rx, stop) = serving(bind);
    // HAProxy `check`: connect and close.
    let me = visit(port, b"");
    assert_eq!(
        rx.recv_timeout(IO_TIMEOUT).expect("report"),
        Seen::Check(me)
    );
    // `check-send-proxy`: a v2 LOCAL header, then nothing.
    let mut local = V2_SIGNATURE.to_vec();
    local.extend_from_slice(&[0x20, 0x00, 0, 0]);
    let me = visit(port, &local);
    assert_eq!(
        rx.recv_timeout(IO_TIMEOUT).expect("report"),
        Seen::Check(me)
    );
    // A client behind the balancer that sends something that is not TLS:
    // reported with the address its PROXY header gave.
    visit(
        port,
        b"PROXY TCP4 192.0.2.9 127.0.0.1 45442 443\r\nnot a tls hello at all",
    );
    match rx.recv_timeout(IO_TIMEOUT).expect("report") {
        Seen::Failure(peer, e) => {
            assert_eq!(peer, "192.0.2.9:45442".parse().expect("addr"), "{e}");
        }
        other => panic!("{other:?}"),
    }
    stop.stop();
}

/// Connects, writes `bytes`, and resets the connection (`SO_LINGER` 0), as
/// HAProxy ends its health checks.
fn visit_and_reset(port: u16, bytes: &[u8]) -> SocketAddr {
    let mut s = TcpStream::connect(("127.0.0.1", port)).expect("connect");
    tcp_timeouts(&s);
    let local = s.local_addr().expect("addr");
    s.write_all(bytes).expect("write");
    socket2::SockRef::from(&s)
        .set_linger(Some(std::time::Duration::ZERO))
        .expect("linger 0");
    drop(s);
    local
}

#[test]
fn a_check_that_ends_with_a_reset_is_a_check_too() {
    // Without PROXY protocol a reset may be a client's or injected on the
    // way: a failure, with one configuration or several.
    let (port, rx, stop) = serving(BindOptions::new());
    let me = visit_and_reset(port, b"");
    match rx.recv_timeout(IO_TIMEOUT).expect("report") {
        Seen::Failure(peer, _) => assert_eq!(peer, me),
        other => panic!("{other:?}"),
    }
    let (port2, rx2, stop2) = serving(BindOptions::new().supported_protocols(&["h2", "http/1.1"]));
    let me = visit_and_reset(port2, b"");
    match rx2.recv_timeout(IO_TIMEOUT).expect("report") {
        Seen::Failure(peer, _) => assert_eq!(peer, me),
        other => panic!("{other:?}"),
    }
    // From the trusted balancer: before its PROXY header (HAProxy
    // `check`), or after a LOCAL one (`check-send-proxy`), a check.
    let (port3, rx3, stop3) = serving(
        BindOptions::new()
            .proxy_protocol(ProxyProtocol::V2)
            .proxy_protocol_trusted(&["127.0.0.1"]),
    );
    let me = visit_and_reset(port3, b"");
    assert_eq!(
        rx3.recv_timeout(IO_TIMEOUT).expect("report"),
        Seen::Check(me)
    );
    let mut local = V2_SIGNATURE.to_vec();
    local.extend_from_slice(&[0x20, 0x00, 0, 0]);
    let me = visit_and_reset(port3, &local);
    assert_eq!(
        rx3.recv_timeout(IO_TIMEOUT).expect("report"),
        Seen::Check(me)
    );
    // A client's reset after a PROXY header naming it is a failure.
    let mut proxied = V2_SIGNATURE.to_vec();
    proxied.extend_from_slice(&[
        0x21, 0x11, 0, 12, 192, 0, 2, 9, 127, 0, 0, 1, 0xb1, 0x02, 1, 187,
    ]);
    visit_and_reset(port3, &proxied);
    match rx3.recv_timeout(IO_TIMEOUT).expect("report") {
        Seen::Failure(peer, _) => assert_eq!(peer, "192.0.2.9:45314".parse().expect("addr")),
        other => panic!("{other:?}"),
    }
    // A reset in the middle of a ClientHello is a failure.
    let hello = common::client_hello_padded(0);
    visit_and_reset(port3, &[&local[..], &hello[..hello.len() / 2]].concat());
    match rx3.recv_timeout(IO_TIMEOUT).expect("report") {
        Seen::Failure(..) => {}
        other => panic!("{other:?}"),
    }
    for s in [stop, stop2, stop3] {
        s.stop();
    }
}

#[test]
fn a_report_can_name_both_the_client_and_the_balancer() {
    let (tx, rx) = mpsc::channel();
    let listener = BindOptions::new()
        .handshake_timeout(IO_TIMEOUT)
        .proxy_protocol(ProxyProtocol::Any)
        .proxy_protocol_trusted(&["127.0.0.1"])
        .on_client_error_via(move |e, client, via| {
            let _ = tx.send((client, via, e.to_string()));
        })
        .bind("127.0.0.1", 0, &pki().server_context())
        .expect("bind");
    let port = listener.port();
    let stop = listener.stop_handle();
    thread::spawn(move || listener.serve(|_s| Ok::<(), std::io::Error>(())));
    let balancer = visit(
        port,
        b"PROXY TCP4 192.0.2.9 127.0.0.1 45442 443\r\nnot a tls hello at all",
    );
    let (client, via, e) = rx.recv_timeout(IO_TIMEOUT).expect("report");
    assert_eq!(client, "192.0.2.9:45442".parse().expect("addr"), "{e}");
    assert_eq!(via, balancer);
    // Without a PROXY header, both are the client's own.
    let me = visit(port, b"PROXY TCP4 nonsense\r\n");
    let (client, via, _) = rx.recv_timeout(IO_TIMEOUT).expect("report");
    assert_eq!((client, via), (me, me));
    stop.stop();
}
