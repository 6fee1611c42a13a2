//! What a server's errors say: a rejected client certificate advises the
//! server's own settings (`set_client_authorities`,
//! `BindOptions::on_bad_client_certificate`) and says whose certificate it
//! was; a ClientHello over 64 KiB is named as a ClientHello, not as a
//! certificate chain.

mod common;

use std::io::{Read, Write};
use std::net::TcpStream;

use common::{Ca, client, context_with, handshake_with, pki, serve_one};
use rcgen::ExtendedKeyUsagePurpose;
use securenet::{BindOptions, Error, PeerRole};

#[test]
fn a_rejected_client_certificate_advises_the_servers_settings() {
    let pki = pki();
    let stranger = Ca::new("stranger CA");
    let (cert, key) = stranger.leaf_with_serial("client", 5, ExtendedKeyUsagePurpose::ClientAuth);
    let mut client_ctx = context_with(&cert, &key);
    client_ctx
        .set_trusted_certificates_bytes(pki.ca_pem().as_bytes())
        .expect("trust");
    let mut server_ctx = pki.server_context();
    server_ctx
        .set_client_authorities_bytes(pki.ca_pem().as_bytes())
        .expect("authorities");
    let bind = BindOptions::new().require_client_certificate(true);
    let (_, s) = handshake_with(&server_ctx, bind, client(client_ctx), "localhost");
    let err = s.expect_err("a client certificate from an unknown CA");
    assert!(
        matches!(
            err,
            Error::Certificate {
                peer: PeerRole::Client,
                ..
            }
        ),
        "{err:?}"
    );
    let text = err.to_string();
    assert!(
        text.starts_with("client certificate verification failed"),
        "{text}"
    );
    assert!(text.contains("set_client_authorities"), "{text}");
    assert!(!text.contains("set_trusted_certificates"), "{text}");

    // The client's own failure still advises the client's settings.
    let (c, _) = handshake_with(
        &stranger.server_context(&["localhost"], common::Leaf::Good),
        BindOptions::new(),
        client(pki.trust_context()),
        "localhost",
    );
    let err = c.expect_err("a server certificate from an unknown CA");
    assert!(
        matches!(
            err,
            Error::Certificate {
                peer: PeerRole::Server,
                ..
            }
        ),
        "{err:?}"
    );
    assert!(
        err.to_string().contains("set_trusted_certificates"),
        "{err}"
    );
}

#[test]
fn a_client_hello_over_64_kib_is_named_as_such() {
    // An extension block of 65,535 bytes: the hello is just over 64 KiB.
    let hello = common::client_hello_padded(usize::MAX);
    assert!(hello.len() - 4 > 0xffff, "{}", hello.len());
    let records: Vec<u8> = hello
        .chunks(16_000)
        .flat_map(|c| {
            let len = u16::try_from(c.len()).expect("short").to_be_bytes();
            [&[22, 3, 1, len[0], len[1]][..], c].concat()
        })
        .collect();
    let (port, server) = serve_one(BindOptions::new(), &pki().server_context(), |mut s| {
        s.handshake()
    });
    let mut sock = TcpStream::connect(("127.0.0.1", port)).expect("connect");
    common::tcp_timeouts(&sock);
    // The server may stop reading once it has refused the hello.
    let _ = sock.write_all(&records);
    let mut buf = [0u8; 64];
    let _ = sock.read(&mut buf);
    drop(sock);
    let err = server
        .join()
        .expect("server")
        .expect_err("a hello over 64 KiB");
    let text = err.to_string();
    assert!(
        text.contains("over 64 KiB") && text.contains("ClientHello"),
        "{text}"
    );
    assert!(
        !text.contains("its certificate chain is too large"),
        "{text}"
    );
}
