//! Two engines joined in memory: the handshake and data in pieces of every
//! size, read through buffers of every size; bytes no TLS peer sends.

use std::sync::Arc;

use rustls::pki_types::pem::PemObject;
use rustls::pki_types::{CertificateDer, PrivateKeyDer};
use rustls::{ClientConfig, RootCertStore, ServerConfig};

use super::{Engine, Plain};
use crate::error::Error;
use crate::testing::TestPki;
use crate::tls::exporter;

fn configs() -> (Arc<ClientConfig>, Arc<ServerConfig>) {
    let pki = TestPki::new(&["localhost"]).expect("pki");
    let certs = CertificateDer::pem_slice_iter(pki.server_cert_pem().as_bytes())
        .collect::<Result<Vec<_>, _>>()
        .expect("certs");
    let key = PrivateKeyDer::from_pem_slice(pki.server_key_pem().as_bytes()).expect("key");
    let mut server = ServerConfig::builder()
        .with_no_client_auth()
        .with_single_cert(certs, key)
        .expect("server config");
    server.key_log = exporter::capture(None);
    server.cert_resolver = crate::tls::server_config::report_sni(server.cert_resolver.clone());
    let mut roots = RootCertStore::empty();
    roots
        .add(CertificateDer::from_pem_slice(pki.ca_pem().as_bytes()).expect("ca"))
        .expect("root");
    let mut client = ClientConfig::builder()
        .with_root_certificates(roots)
        .with_no_client_auth();
    client.key_log = exporter::capture(None);
    (Arc::new(client), Arc::new(server))
}

fn pair() -> (Engine, Engine) {
    let (client, server) = configs();
    let name = "localhost".try_into().expect("name");
    let c = Engine::client(client, name, Vec::new()).expect("client");
    let s = Engine::server(server, &[]).expect("server");
    (c, s)
}

/// What `from` has queued, as sent.
fn wire(from: &mut Engine) -> Vec<u8> {
    let mut wire = Vec::new();
    while from.wants_write() {
        from.write_tls(&mut wire).expect("write_tls");
    }
    wire
}

/// Gives `to` the bytes in pieces of `piece` (fed for even sizes, read
/// from a reader for odd ones), reading what it decrypts through a buffer
/// of `buf` bytes into `got`.
fn deliver(bytes: &[u8], to: &mut Engine, piece: usize, buf: usize, got: &mut Vec<u8>) {
    let mut scratch = vec![0u8; buf];
    for mut chunk in bytes.chunks(piece) {
        while !chunk.is_empty() {
            if piece % 2 == 0 {
                let n = to.feed(chunk).expect("feed");
                chunk = &chunk[n..];
            } else {
                to.read_tls(&mut chunk, 4096).expect("read_tls");
            }
            to.process_new_packets().expect("process");
            while let Plain::Data(n) = to.read(&mut scratch).expect("read") {
                got.extend_from_slice(&scratch[..n]);
            }
        }
    }
}

fn handshake(c: &mut Engine, s: &mut Engine, piece: usize) {
    let mut none = Vec::new();
    while c.is_handshaking() || s.is_handshaking() || c.wants_write() || s.wants_write() {
        deliver(&wire(c), s, piece, 1, &mut none);
        deliver(&wire(s), c, piece, 1, &mut none);
    }
    assert!(none.is_empty());
}

fn pattern(n: usize) -> Vec<u8> {
    (0..n).map(|i| (i * 7 % 251) as u8).collect()
}

/// 100,000 bytes from `from` to `to`: all of them arrive, in order.
fn send(from: &mut Engine, to: &mut Engine, piece: usize, buf: usize) {
    let data = pattern(100_000);
    let mut at = 0;
    while at < data.len() {
        at += from.write(&data[at..]).expect("write");
    }
    let mut got = Vec::new();
    deliver(&wire(from), to, piece, buf, &mut got);
    assert_eq!(got.len(), data.len(), "piece {piece}, buf {buf}");
    assert!(got == data, "piece {piece}, buf {buf}");
}

#[test]
fn data_arrives_whole_however_it_is_cut_and_read() {
    for (piece, buf) in [
        (1, 1),
        (7, 13),
        (100, 4096),
        (5001, 1),
        (5000, 77),
        (70_000, 65_536),
    ] {
        let (mut c, mut s) = pair();
        handshake(&mut c, &mut s, piece);
        assert_eq!(s.sni(), Some("localhost"));
        let mut a = [0u8; 32];
        let mut b = [0u8; 32];
        c.export_keying_material(&mut a, b"EXPORTER-x", None)
            .expect("client export");
        s.export_keying_material(&mut b, b"EXPORTER-x", None)
            .expect("server export");
        assert_eq!(a, b);
        send(&mut c, &mut s, piece, buf);
        send(&mut s, &mut c, piece, buf);
        c.send_close_notify();
        let mut none = Vec::new();
        deliver(&wire(&mut c), &mut s, piece, buf, &mut none);
        assert!(matches!(s.read(&mut [0u8; 8]), Ok(Plain::Closed)));
        // The other way: the transport ends with no close_notify.
        c.end();
        assert!(matches!(c.read(&mut [0u8; 8]), Err(Error::Truncated)));
    }
}

#[test]
fn an_idle_connection_holds_no_buffers() {
    let (mut c, mut s) = pair();
    handshake(&mut c, &mut s, 16_384);
    c.write(b"ping").expect("write");
    let mut got = Vec::new();
    deliver(&wire(&mut c), &mut s, 16_384, 64, &mut got);
    assert_eq!(got, b"ping");
    for e in [&mut c, &mut s] {
        e.release_if_idle(false);
        assert_eq!(e.input.buf.capacity(), 0);
        assert_eq!(e.rest.output.buf.capacity(), 0);
        assert_eq!(e.rest.spare.capacity(), 0);
        assert!(e.rest.server_random.is_none());
    }
}

#[test]
fn bytes_no_tls_peer_sends_fail_without_panicking() {
    let mut seed = 0x9e37_79b9_7f4a_7c15u64;
    let mut next = move || {
        seed ^= seed << 13;
        seed ^= seed >> 7;
        seed ^= seed << 17;
        seed
    };
    for round in 0..200 {
        let (mut c, mut s) = pair();
        if round % 2 == 1 {
            handshake(&mut c, &mut s, 1000);
        }
        let len = (next() % 3000) as usize + 1;
        let mut junk: Vec<u8> = (0..len).map(|_| next() as u8).collect();
        // Half of them start like a record (handshake, alert or data).
        if round % 4 < 2 {
            junk[0] = [22, 21, 23][(next() % 3) as usize];
            junk[1] = 3;
            junk[2] = 3;
        }
        for target in [&mut c, &mut s] {
            for chunk in junk.chunks((next() % 500) as usize + 1) {
                let fed = target.feed(chunk).is_err();
                let processed = target.process_new_packets().is_err();
                let read = target.read(&mut [0u8; 100]).is_err();
                if fed || processed || read {
                    break;
                }
            }
            // Whatever happened, the connection can be asked again.
            let _ = target.process_new_packets();
            let _ = target.read(&mut [0u8; 10]);
            let _ = target.write(b"x");
            let _ = wire(target);
        }
    }
}

#[test]
fn a_record_announced_huge_costs_only_what_arrived() {
    let (mut c, mut s) = pair();
    handshake(&mut c, &mut s, 16_384);
    // An application-data record header announcing 65,535 bytes, then 10.
    let mut bytes = vec![23, 3, 3, 0xff, 0xff];
    bytes.extend([0u8; 10]);
    s.feed(&bytes).expect("feed");
    match s.process_new_packets() {
        // rustls refuses a record over its limit at once.
        Err(_) => {}
        Ok(()) => {
            assert!(matches!(s.read(&mut [0u8; 8]), Ok(Plain::Empty)));
            assert!(s.input.buf.len() < 8 * 1024, "{}", s.input.buf.len());
        }
    }
}

#[test]
fn data_before_a_corrupt_record_is_read_before_the_error() {
    let (mut c, mut s) = pair();
    handshake(&mut c, &mut s, 16_384);
    s.write(b"hello").expect("write");
    let mut bytes = wire(&mut s);
    s.write(b"world").expect("write");
    let mut second = wire(&mut s);
    let last = second.len() - 1;
    second[last] ^= 1;
    bytes.extend(second);
    c.feed(&bytes).expect("feed");
    c.process_new_packets().expect("the first record is whole");
    let mut buf = [0u8; 64];
    match c.read(&mut buf) {
        Ok(Plain::Data(5)) => assert_eq!(&buf[..5], b"hello"),
        other => panic!("{:?}", other.err()),
    }
    match c.read(&mut buf) {
        Err(e @ (Error::Protocol { .. } | Error::Handshake { .. })) => {
            assert!(e.to_string().contains("decrypt"), "{e}");
        }
        Err(e) => panic!("not a TLS error: {e:?}"),
        Ok(_) => panic!("a corrupt record was read"),
    }
    assert!(c.wants_write(), "the alert that says why is queued");
    // And it stays failed.
    assert!(c.read(&mut buf).is_err());
}
