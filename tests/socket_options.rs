//! Node's socket.connect() options on ConnectOptions: local_address and
//! local_port, family, resolver, keepalive, nodelay.

mod common;

use std::io::Read;
use std::net::{IpAddr, Ipv4Addr, SocketAddr};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use common::client;
use securenet::{BindOptions, Error, IpFamily};

/// Serves one connection and returns the client's address as the server saw it.
fn peer_seen() -> (
    u16,
    std::thread::JoinHandle<SocketAddr>,
    securenet::testing::TestPki,
) {
    let pki = common::pki();
    let (port, server) = common::serve_one(BindOptions::new(), &pki.server_context(), |mut s| {
        let peer = s.peer_addr().expect("peer");
        s.handshake().expect("handshake");
        let _ = s.read(&mut [0u8; 1]);
        peer
    });
    (port, server, pki)
}

#[test]
fn local_address_and_port_bind_the_client_socket() {
    let (port, server, pki) = peer_seen();
    let local_ip = IpAddr::V4(Ipv4Addr::new(127, 0, 0, 2));
    // A port that was free a moment ago.
    let local_port = std::net::TcpListener::bind("127.0.0.2:0")
        .and_then(|l| l.local_addr())
        .map(|a| a.port())
        .expect("probe port");
    let mut c = client(pki.trust_context())
        .local_address(local_ip)
        .local_port(local_port)
        .connect("127.0.0.1", port)
        .expect("connect from 127.0.0.2");
    assert_eq!(
        c.local_addr().expect("local"),
        SocketAddr::new(local_ip, local_port)
    );
    c.close().expect("close");
    assert_eq!(
        server.join().expect("server"),
        SocketAddr::new(local_ip, local_port)
    );
}

#[test]
fn a_resolver_replaces_the_system_lookup_and_family_filters_it() {
    let (port, server, pki) = peer_seen();
    let asked = Arc::new(Mutex::new(Vec::new()));
    let asked2 = asked.clone();
    let mut c = client(pki.trust_context())
        .server_name("localhost")
        .resolver(move |host, port| {
            asked2.lock().expect("asked").push((host.to_owned(), port));
            Ok(vec![
                SocketAddr::new("::1".parse().expect("ip"), port),
                SocketAddr::new(IpAddr::V4(Ipv4Addr::LOCALHOST), port),
            ])
        })
        .family(IpFamily::V4)
        .connect("service.internal", port)
        .expect("resolved by the callback");
    assert!(
        c.peer_addr().expect("peer").is_ipv4(),
        "family(V4) skipped ::1"
    );
    c.close().expect("close");
    server.join().expect("server");
    assert_eq!(
        *asked.lock().expect("asked"),
        [("service.internal".to_owned(), port)]
    );

    let err = client(pki.trust_context())
        .resolver(|_, _| Err(std::io::Error::other("no such service")))
        .connect("missing.internal", port)
        .expect_err("resolver error");
    assert!(err.to_string().contains("no such service"), "{err}");
    let err = client(pki.trust_context())
        .family(IpFamily::V6)
        .connect("127.0.0.1", port)
        .expect_err("an IPv4 literal with family(V6)");
    assert!(matches!(err, Error::InvalidInput { .. }), "{err:?}");
}

#[test]
fn keepalive_and_nodelay_are_set_on_the_socket() {
    let (port, server, pki) = peer_seen();
    let mut c = client(pki.trust_context())
        .keepalive(Some(Duration::from_secs(42)))
        .nodelay(false)
        .connect("localhost", port)
        .expect("connect");
    let sock = socket2::SockRef::from(c.get_ref());
    assert!(sock.keepalive().expect("SO_KEEPALIVE"));
    // Windows sets the idle time but cannot read it back.
    #[cfg(not(windows))]
    assert_eq!(
        sock.tcp_keepalive_time().expect("TCP_KEEPIDLE"),
        Duration::from_secs(42)
    );
    assert!(!c.nodelay().expect("nodelay"));
    c.close().expect("close");
    server.join().expect("server");

    let (port, server, pki) = peer_seen();
    let mut c = client(pki.trust_context())
        .connect("localhost", port)
        .expect("connect");
    assert!(
        !socket2::SockRef::from(c.get_ref())
            .keepalive()
            .expect("SO_KEEPALIVE")
    );
    assert!(c.nodelay().expect("nodelay"), "on by default");
    c.close().expect("close");
    server.join().expect("server");
}
