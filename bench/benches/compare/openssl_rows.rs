//! OpenSSL rows (`--features openssl`): securenet against the
//! `openssl` crate's `SslStream` at both ends, the C library people compare
//! with, in the same run. In these lines the "raw" column is OpenSSL.

use std::net::TcpStream;
use std::sync::Arc;

use openssl::pkey::PKey;
use openssl::ssl::{SslAcceptor, SslConnector, SslMethod, SslStream, SslVersion};
use openssl::x509::X509;
use openssl::x509::store::X509StoreBuilder;

use crate::handshakes::{Side, handshake_rate};
use crate::setup::{
    BULK_SUITES, Pki, Tuning, Who, compare, line, our_contexts, our_pair, scaled, tcp_pair,
};
use crate::transfer::{bulk_figures, bulk_lines, transfer};

/// OpenSSL's name for a rustls TLS 1.3 suite.
fn openssl_suite(rustls_name: &str) -> String {
    rustls_name.replacen("TLS13_", "TLS_", 1)
}

/// A matching OpenSSL client and server: TLS 1.3, the suite if given.
fn configs(pki: &Pki, suite: Option<&str>) -> (Arc<SslConnector>, Arc<SslAcceptor>) {
    let mut acceptor = SslAcceptor::mozilla_modern_v5(SslMethod::tls()).expect("acceptor");
    acceptor
        .set_certificate(&X509::from_pem(pki.cert.as_bytes()).expect("cert"))
        .expect("set cert");
    acceptor
        .set_private_key(&PKey::private_key_from_pem(pki.key.as_bytes()).expect("key"))
        .expect("set key");
    let mut connector = SslConnector::builder(SslMethod::tls()).expect("connector");
    let mut store = X509StoreBuilder::new().expect("store");
    store
        .add_cert(X509::from_pem(pki.ca.as_bytes()).expect("ca"))
        .expect("add ca");
    connector.set_cert_store(store.build());
    connector
        .set_min_proto_version(Some(SslVersion::TLS1_3))
        .expect("version");
    if let Some(s) = suite {
        let name = openssl_suite(s);
        acceptor.set_ciphersuites(&name).expect("suite");
        connector.set_ciphersuites(&name).expect("suite");
    }
    (Arc::new(connector.build()), Arc::new(acceptor.build()))
}

fn openssl_pair(
    connector: &SslConnector,
    acceptor: &Arc<SslAcceptor>,
) -> (SslStream<TcpStream>, SslStream<TcpStream>) {
    let acceptor = acceptor.clone();
    tcp_pair(
        move |sock| acceptor.accept(sock).expect("server handshake"),
        |sock| {
            connector
                .connect("localhost", sock)
                .expect("client handshake")
        },
    )
}

pub fn bulk(pki: &Pki) {
    println!("\n== bulk vs OpenSSL (\"raw\" column: OpenSSL SslStream), 64 KiB writes");
    let total = scaled(1 << 30);
    for suite in BULK_SUITES {
        let t = Tuning::suite(suite);
        let (connector, acceptor) = configs(pki, Some(suite));
        let f = compare(|who| {
            let cost = match who {
                Who::Raw => {
                    let (c, s) = openssl_pair(&connector, &acceptor);
                    transfer(c, s, total, 64 * 1024)
                }
                Who::Ours => {
                    let (oc, os) = our_contexts(pki, t);
                    let (c, s) = our_pair(&oc, &os);
                    transfer(c, s, total, 64 * 1024)
                }
            };
            bulk_figures(&cost, total)
        });
        bulk_lines(&format!("vs OpenSSL {} MiB {suite}", total >> 20), total, f);
    }
}

pub fn handshakes(pki_ecdsa: &Pki, pki_rsa: &Pki) {
    println!("\n== full handshakes per second vs OpenSSL (\"raw\" column: OpenSSL)");
    let count = scaled(2000);
    for (name, pki) in [("ECDSA P-256", pki_ecdsa), ("RSA-2048", pki_rsa)] {
        let (connector, acceptor) = configs(pki, None);
        let (oc, os) = our_contexts(pki, crate::setup::DEFAULT);
        for threads in [1usize, 8] {
            let [rate] = compare(|who| {
                let side = match who {
                    Who::Raw => Side::OpenSsl((connector.clone(), acceptor.clone())),
                    Who::Ours => Side::Ours((oc.clone(), os.clone())),
                };
                [handshake_rate(count, threads, side, false)]
            });
            line(
                &format!("vs OpenSSL {name}, {threads} thread(s)"),
                rate,
                "/s",
                true,
            );
        }
    }
}
