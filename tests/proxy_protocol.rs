//! The PROXY protocol in front of TLS: v1 and v2 headers give the client's
//! address; LOCAL keeps the socket's; a missing, malformed, truncated or
//! untrusted header drops the connection with a clear error, never taken
//! for TLS.

mod common;

use std::io::Write;
use std::net::{SocketAddr, TcpStream};
use std::time::{Duration, Instant};

use common::{IO_TIMEOUT, client, pki, tcp_timeouts};
use securenet::testing::TestPki;
use securenet::{BindOptions, Error, Phase, ProxyProtocol};

const V2_SIGNATURE: &[u8] = b"\r\n\r\n\0\r\nQUIT\n";

fn v2_ipv4(command: u8, src: [u8; 4], dst: [u8; 4], sport: u16, dport: u16) -> Vec<u8> {
    let mut h = V2_SIGNATURE.to_vec();
    h.push(0x20 | command);
    h.push(0x11);
    h.extend_from_slice(&12u16.to_be_bytes());
    h.extend_from_slice(&src);
    h.extend_from_slice(&dst);
    h.extend_from_slice(&sport.to_be_bytes());
    h.extend_from_slice(&dport.to_be_bytes());
    h
}

/// The server's view (peer address, destination) after a TLS client that
/// first wrote `header` through the same socket.
fn served(
    pki: &TestPki,
    bind: BindOptions,
    header: &[u8],
) -> (
    securenet::Result<(SocketAddr, Option<SocketAddr>)>,
    securenet::Result<()>,
) {
    let listener = bind
        .handshake_timeout(IO_TIMEOUT)
        .bind("127.0.0.1", 0, &pki.server_context())
        .expect("bind");
    let port = listener.port();
    let server = std::thread::spawn(move || {
        let (mut s, _) = listener.accept()?;
        common::with_timeouts(&mut s);
        s.handshake()?;
        let seen = (s.peer_addr()?, s.proxied_destination());
        let _ = s.close();
        Ok(seen)
    });
    let mut tcp = TcpStream::connect(("127.0.0.1", port)).expect("connect");
    tcp_timeouts(&tcp);
    tcp.write_all(header).expect("header");
    // The client waits for the server's close, so the socket is still
    // connected while the server looks at its addresses.
    let client = client(pki.trust_context())
        .secure(tcp, "localhost")
        .and_then(|mut c| {
            c.handshake()?;
            let mut rest = Vec::new();
            let _ = std::io::Read::read_to_end(&mut c, &mut rest);
            Ok(())
        });
    (server.join().expect("server"), client)
}

#[test]
fn a_v1_header_names_the_client() {
    let pki = pki();
    let (seen, c) = served(
        &pki,
        BindOptions::new().proxy_protocol(ProxyProtocol::V1),
        b"PROXY TCP4 192.0.2.1 198.51.100.2 56324 443\r\n",
    );
    c.expect("client");
    let (peer, destination) = seen.expect("server");
    assert_eq!(peer, "192.0.2.1:56324".parse().expect("addr"));
    assert_eq!(destination, Some("198.51.100.2:443".parse().expect("addr")));
}

#[test]
fn a_v2_header_names_the_client_and_local_keeps_the_socket() {
    let pki = pki();
    for mode in [ProxyProtocol::V2, ProxyProtocol::Any] {
        let (seen, c) = served(
            &pki,
            BindOptions::new().proxy_protocol(mode),
            &v2_ipv4(1, [203, 0, 113, 7], [198, 51, 100, 2], 40000, 8443),
        );
        c.expect("client");
        let (peer, destination) = seen.expect("server");
        assert_eq!(peer, "203.0.113.7:40000".parse().expect("addr"), "{mode:?}");
        assert_eq!(
            destination,
            Some("198.51.100.2:8443".parse().expect("addr"))
        );
    }
    let (seen, _) = served(
        &pki,
        BindOptions::new().proxy_protocol(ProxyProtocol::V2),
        &v2_ipv4(0, [0; 4], [0; 4], 0, 0),
    );
    let (peer, destination) = seen.expect("LOCAL");
    assert!(peer.ip().is_loopback(), "{peer}");
    assert_eq!(destination, None);
}

#[test]
fn a_missing_or_malformed_header_is_not_taken_for_tls() {
    let pki = pki();
    for (mode, header, says) in [
        (ProxyProtocol::V1, &b""[..], "does not send one"),
        (
            ProxyProtocol::V2,
            b"PROXY TCP4 1.2.3.4 5.6.7.8 1 2\r\n",
            "v2 header",
        ),
        (
            ProxyProtocol::V1,
            b"PROXY TCP4 1.2.3.4 nonsense 1 2\r\n",
            "not an IP address",
        ),
    ] {
        let (seen, c) = served(&pki, BindOptions::new().proxy_protocol(mode), header);
        let e = seen.expect_err("refused");
        assert!(matches!(e, Error::Handshake { .. }), "{e:?}");
        assert!(e.to_string().contains(says), "{mode:?}: {e}");
        assert!(c.is_err(), "the client is not served");
    }
}

#[test]
fn a_header_from_an_untrusted_source_is_refused() {
    let pki = pki();
    let bind = || {
        BindOptions::new()
            .proxy_protocol(ProxyProtocol::V1)
            .proxy_protocol_trusted(&["10.0.0.0/8"])
    };
    let (seen, _) = served(&pki, bind(), b"PROXY TCP4 192.0.2.1 198.51.100.2 1 2\r\n");
    let e = seen.expect_err("untrusted");
    assert!(
        e.to_string().contains("not in proxy_protocol_trusted"),
        "{e}"
    );
    let (seen, c) = served(
        &pki,
        bind().proxy_protocol_trusted(&["127.0.0.0/8", "::1"]),
        b"PROXY TCP4 192.0.2.1 198.51.100.2 1 2\r\n",
    );
    c.expect("client");
    assert_eq!(seen.expect("trusted").0.ip().to_string(), "192.0.2.1");
    let err = bind()
        .proxy_protocol_trusted(&["10.0.0.0/99"])
        .bind("127.0.0.1", 0, &pki.server_context())
        .expect_err("malformed entry");
    assert!(matches!(err, Error::InvalidInput { .. }), "{err:?}");
}

#[test]
fn a_truncated_header_ends_at_the_handshake_timeout() {
    let pki = pki();
    let limit = Duration::from_millis(300);
    let listener = BindOptions::new()
        .proxy_protocol(ProxyProtocol::Any)
        .handshake_timeout(limit)
        .bind("127.0.0.1", 0, &pki.server_context())
        .expect("bind");
    let port = listener.port();
    let server = std::thread::spawn(move || {
        let (mut s, _) = listener.accept().expect("accept");
        let started = Instant::now();
        (s.handshake(), started.elapsed())
    });
    let mut tcp = TcpStream::connect(("127.0.0.1", port)).expect("connect");
    tcp_timeouts(&tcp);
    tcp.write_all(b"PROXY TCP4 192.0.2.1")
        .expect("half a header");
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
    assert!(took < limit * 2, "{took:?}");
}

#[test]
fn a_v1_header_ending_in_a_bare_lf_is_refused_at_once() {
    let pki = pki();
    for mode in [ProxyProtocol::V1, ProxyProtocol::Any] {
        let listener = BindOptions::new()
            .proxy_protocol(mode)
            .handshake_timeout(IO_TIMEOUT)
            .bind("127.0.0.1", 0, &pki.server_context())
            .expect("bind");
        let port = listener.port();
        let server = std::thread::spawn(move || {
            let (mut s, _) = listener.accept()?;
            s.handshake()
        });
        let started = Instant::now();
        let mut tcp = TcpStream::connect(("127.0.0.1", port)).expect("connect");
        tcp_timeouts(&tcp);
        // A whole line, then nothing: the client waits for an answer.
        tcp.write_all(b"PROXY TCP4 127.0.0.1 127.0.0.1 1 2\n")
            .expect("header");
        let result = server.join().expect("server");
        let took = started.elapsed();
        let e = result.expect_err("a bare LF");
        assert!(matches!(e, Error::Handshake { .. }), "{mode:?}: {e:?}");
        assert!(e.to_string().contains("PROXY v1 header"), "{mode:?}: {e}");
        assert!(e.to_string().contains("CRLF"), "{mode:?}: {e}");
        assert!(took < Duration::from_secs(5), "{mode:?}: took {took:?}");
    }
}
