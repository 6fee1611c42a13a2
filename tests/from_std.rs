//! `SecureListener::from_std`: serving on a socket that is already
//! listening (from a parent process, systemd, socket2), the listener's
//! options applied, a socket that does not listen refused.

mod common;

use std::io::{Read, Write};
use std::net::TcpListener;
use std::time::{Duration, Instant};

use common::{IO_TIMEOUT, client, pki, tcp_timeouts};
use securenet::{BindOptions, Error, Phase, SecureListener};

#[test]
fn a_listening_std_socket_serves_tls() {
    let pki = pki();
    let socket = TcpListener::bind("127.0.0.1:0").expect("bind");
    // Inherited descriptors may be non-blocking: from_std makes it blocking.
    socket.set_nonblocking(true).expect("nonblocking");
    let listener = SecureListener::from_std(socket, &pki.server_context()).expect("from_std");
    let port = listener.port();
    let server = std::thread::spawn(move || -> securenet::Result<String> {
        let (mut s, _) = listener.accept()?;
        common::with_timeouts(&mut s);
        let mut buf = [0u8; 5];
        s.read_exact(&mut buf)?;
        s.write_all(b"hello back")?;
        s.close()?;
        Ok(String::from_utf8_lossy(&buf).into_owned())
    });
    let mut c = client(pki.trust_context())
        .connect("localhost", port)
        .expect("connect");
    common::with_timeouts(&mut c);
    c.write_all(b"hello").expect("write");
    let mut reply = String::new();
    c.read_to_string(&mut reply).expect("read");
    assert_eq!(reply, "hello back");
    assert_eq!(server.join().expect("server").expect("served"), "hello");
}

#[test]
fn the_options_apply_to_a_socket_from_elsewhere() {
    let pki = pki();
    let socket = TcpListener::bind("127.0.0.1:0").expect("bind");
    let limit = Duration::from_millis(300);
    let listener = BindOptions::new()
        .handshake_timeout(limit)
        .from_std(socket, &pki.server_context())
        .expect("from_std");
    let port = listener.port();
    let server = std::thread::spawn(move || {
        let (mut s, _) = listener.accept().expect("accept");
        let started = Instant::now();
        (s.handshake(), started.elapsed())
    });
    // A client that connects and says nothing.
    let silent = std::net::TcpStream::connect(("127.0.0.1", port)).expect("connect");
    tcp_timeouts(&silent);
    let (result, took) = server.join().expect("server");
    assert!(
        matches!(
            result,
            Err(Error::Timeout {
                phase: Phase::Handshake,
                ..
            })
        ),
        "{result:?}"
    );
    assert!(took < limit * 2 && took < IO_TIMEOUT, "{took:?}");
}

#[cfg(any(target_os = "linux", target_os = "android", target_os = "freebsd"))]
#[test]
fn a_socket_that_does_not_listen_is_refused() {
    use socket2::{Domain, Socket, Type};
    let socket = Socket::new(Domain::IPV4, Type::STREAM, None).expect("socket");
    socket
        .bind(
            &"127.0.0.1:0"
                .parse::<std::net::SocketAddr>()
                .expect("addr")
                .into(),
        )
        .expect("bind");
    let bound_only: TcpListener = socket.into();
    let err =
        SecureListener::from_std(bound_only, &pki().server_context()).expect_err("not listening");
    assert!(matches!(err, Error::InvalidInput { .. }), "{err:?}");
    assert!(err.to_string().contains("not listening"), "{err}");
}

#[cfg(unix)]
#[test]
fn a_descriptor_serves_too() {
    let pki = pki();
    let socket = TcpListener::bind("127.0.0.1:0").expect("bind");
    let port = socket.local_addr().expect("addr").port();
    let fd = std::os::fd::OwnedFd::from(socket);
    let listener = SecureListener::from_fd(fd, &pki.server_context()).expect("from_fd");
    assert_eq!(listener.port(), port);
    let server = std::thread::spawn(move || listener.accept().and_then(|(mut s, _)| s.handshake()));
    let mut c = client(pki.trust_context())
        .connect("localhost", port)
        .expect("connect");
    c.close().expect("close");
    server.join().expect("server").expect("handshake");
}

/// A hand-over on an inherited socket: the old process's listener and the
/// new one's are the same socket (here, two descriptors of it in one
/// process). Stopping the old one (a shutdown, as on SIGTERM) must leave
/// the socket listening for the new one, and its serve loop must still end.
#[cfg(unix)]
#[test]
fn stopping_a_listener_on_a_shared_socket_leaves_the_socket_to_the_other() {
    let pki = pki();
    let socket = TcpListener::bind("127.0.0.1:0").expect("bind");
    let port = socket.local_addr().expect("addr").port();
    let successor = socket.try_clone().expect("second descriptor");
    let old = SecureListener::from_fd(socket.into(), &pki.server_context()).expect("from_fd");
    let stop = old.stop_handle();
    let serving = std::thread::spawn(move || old.serve(|_s| Ok::<(), Error>(())));
    let started = Instant::now();
    let report = stop.shutdown(Duration::from_millis(10));
    assert_eq!(report.open_at_stop, 0);
    serving
        .join()
        .expect("serve thread")
        .expect("serve ended without error");
    assert!(started.elapsed() < 2 * IO_TIMEOUT);
    // The successor still accepts on the port.
    let new = SecureListener::from_std(successor, &pki.server_context()).expect("successor");
    let server = std::thread::spawn(move || -> securenet::Result<()> {
        let (mut s, _) = new.accept()?;
        common::with_timeouts(&mut s);
        s.write_all(b"new")?;
        s.close()
    });
    let mut c = client(pki.trust_context())
        .connect("localhost", port)
        .expect("the socket still listens");
    common::with_timeouts(&mut c);
    let mut got = String::new();
    c.read_to_string(&mut got).expect("read");
    assert_eq!(got, "new");
    server.join().expect("server").expect("served");
}

/// A socket given to `from_std` is the listener's own: a stop shuts it, so
/// clients are refused at once (they can go elsewhere) rather than queued
/// with nobody to accept them.
#[test]
fn stopping_a_listener_on_its_own_socket_stops_the_socket_listening() {
    let pki = pki();
    let socket = TcpListener::bind("127.0.0.1:0").expect("bind");
    let port = socket.local_addr().expect("addr").port();
    let listener = SecureListener::from_std(socket, &pki.server_context()).expect("from_std");
    let stop = listener.stop_handle();
    let serving = std::thread::spawn(move || {
        let ended = listener.serve(|_s| Ok::<(), Error>(()));
        // The listener is still alive here: the socket must not queue.
        (ended, listener)
    });
    stop.stop();
    let (ended, _listener) = serving.join().expect("serve thread");
    ended.expect("serve ended without error");
    let refused = client(pki.trust_context())
        .connect("localhost", port)
        .expect_err("nobody listens");
    assert!(
        matches!(
            refused.io_kind(),
            std::io::ErrorKind::ConnectionRefused | std::io::ErrorKind::ConnectionReset
        ),
        "{refused:?}"
    );
}
