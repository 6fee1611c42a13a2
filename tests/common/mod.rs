//! The shared test PKI and helpers: certificates made with rcgen at test
//! time, loopback servers on port 0, and timeouts on every socket.
#![allow(dead_code)]

pub mod blocked;
pub mod fault;
pub mod http;
pub mod ocsp;
pub mod proxy;
pub mod ws;

use std::io::{Read, Write};
use std::net::{TcpListener, TcpStream};
use std::sync::{Arc, Mutex};
use std::thread::{self, JoinHandle};
use std::time::Duration;

use rcgen::{
    BasicConstraints, CertificateParams, CertificateRevocationListParams, CertifiedIssuer, DnType,
    ExtendedKeyUsagePurpose, IsCa, KeyIdMethod, KeyPair, KeyUsagePurpose, RevokedCertParams,
    SerialNumber,
};
use securenet::{
    BindOptions, ConnectOptions, SecureListener, SecureStream, SecurityContext, testing::TestPki,
};

/// Every test socket's read/write timeout: a bug fails the test, it does not hang it.
/// The crypto crate of the provider this build uses (`aws-lc-rs` or `ring`):
/// the two have the same `digest`, `aead` and `rand` modules.
#[cfg(feature = "aws-lc-rs")]
#[allow(unused_imports)]
pub use aws_lc_rs as crypto;
#[cfg(all(feature = "ring", not(feature = "aws-lc-rs")))]
#[allow(unused_imports)]
pub use ring as crypto;

/// rustls's default provider for the crypto crate this build uses (ring's
/// is deprecated from rustls 0.23.48 for its lack of post-quantum groups).
#[allow(dead_code, deprecated)]
pub fn rustls_provider() -> rustls::crypto::CryptoProvider {
    #[cfg(feature = "aws-lc-rs")]
    return rustls::crypto::aws_lc_rs::default_provider();
    #[cfg(all(feature = "ring", not(feature = "aws-lc-rs")))]
    return rustls::crypto::ring::default_provider();
}

/// The X25519 key exchange group of the provider this build uses.
#[allow(dead_code)]
pub fn x25519() -> &'static dyn rustls::crypto::SupportedKxGroup {
    #[cfg(feature = "aws-lc-rs")]
    return rustls::crypto::aws_lc_rs::kx_group::X25519;
    #[cfg(all(feature = "ring", not(feature = "aws-lc-rs")))]
    return rustls::crypto::ring::kx_group::X25519;
}

/// A fresh RSA-2048 key for rcgen, signing with PKCS#1 v1.5 and SHA-256.
/// rcgen makes RSA keys only with aws-lc-rs; with ring the `rsa` crate
/// makes it and rcgen (through ring) loads it.
#[allow(dead_code)]
pub fn rsa_key() -> KeyPair {
    #[cfg(feature = "aws-lc-rs")]
    return KeyPair::generate_for(&rcgen::PKCS_RSA_SHA256).expect("rsa key");
    #[cfg(all(feature = "ring", not(feature = "aws-lc-rs")))]
    {
        use rsa::pkcs8::EncodePrivateKey;
        let key = rsa::RsaPrivateKey::new(&mut rand_core::OsRng, 2048).expect("rsa key");
        let der = key.to_pkcs8_der().expect("pkcs8");
        let der = rustls::pki_types::PrivatePkcs8KeyDer::from(der.as_bytes().to_vec());
        KeyPair::from_pkcs8_der_and_sign_algo(&der, &rcgen::PKCS_RSA_SHA256).expect("rsa key pair")
    }
}

pub const IO_TIMEOUT: Duration = Duration::from_secs(10);

pub fn pki() -> TestPki {
    TestPki::new(&["localhost", "127.0.0.1", "::1"]).expect("test pki")
}

/// Client options with short, finite waits.
pub fn client(ctx: SecurityContext) -> ConnectOptions {
    ConnectOptions::new()
        .context(ctx)
        .timeout(IO_TIMEOUT)
        .handshake_timeout(IO_TIMEOUT)
}

pub fn with_timeouts(s: &mut SecureStream) {
    s.set_read_timeout(Some(IO_TIMEOUT)).expect("read timeout");
    s.set_write_timeout(Some(IO_TIMEOUT))
        .expect("write timeout");
}

/// Binds 127.0.0.1:0 with `options`, then serves one connection with
/// `handler` in a thread; returns the port and the thread.
pub fn serve_one<T: Send + 'static>(
    options: BindOptions,
    ctx: &SecurityContext,
    handler: impl FnOnce(SecureStream) -> T + Send + 'static,
) -> (u16, JoinHandle<T>) {
    let listener = options
        .handshake_timeout(IO_TIMEOUT)
        .bind("127.0.0.1", 0, ctx)
        .expect("bind");
    let port = listener.port();
    let handle = thread::spawn(move || {
        let (mut stream, _) = listener.accept().expect("accept");
        with_timeouts(&mut stream);
        handler(stream)
    });
    (port, handle)
}

/// A server that echoes what it reads until the client closes.
pub fn echo_server(ctx: &SecurityContext) -> (u16, JoinHandle<securenet::Result<()>>) {
    serve_one(BindOptions::new(), ctx, |mut s| {
        let mut buf = [0u8; 16 * 1024];
        loop {
            let n = s.read(&mut buf)?;
            if n == 0 {
                return Ok(());
            }
            s.write_all(&buf[..n])?;
        }
    })
}

/// A port nothing listens on (bound, then let go).
pub fn unused_port() -> u16 {
    let l = TcpListener::bind("127.0.0.1:0").expect("bind");
    l.local_addr().expect("addr").port()
}

/// A plain TCP listener on 127.0.0.1:0.
pub fn tcp_listener() -> (TcpListener, u16) {
    let l = TcpListener::bind("127.0.0.1:0").expect("bind");
    let port = l.local_addr().expect("addr").port();
    (l, port)
}

pub fn tcp_timeouts(s: &TcpStream) {
    s.set_read_timeout(Some(IO_TIMEOUT)).expect("read timeout");
    s.set_write_timeout(Some(IO_TIMEOUT))
        .expect("write timeout");
}

/// A TCP proxy for one connection that records what the client sends.
pub fn recording_proxy(server_port: u16) -> (u16, Arc<Mutex<Vec<u8>>>, JoinHandle<()>) {
    let (listener, port) = tcp_listener();
    let recorded = Arc::new(Mutex::new(Vec::new()));
    let rec = recorded.clone();
    let handle = thread::spawn(move || {
        let (down, _) = listener.accept().expect("proxy accept");
        let up = TcpStream::connect(("127.0.0.1", server_port)).expect("proxy connect");
        tcp_timeouts(&down);
        tcp_timeouts(&up);
        let (mut down_r, mut up_w) = (
            down.try_clone().expect("clone"),
            up.try_clone().expect("clone"),
        );
        let forward = thread::spawn(move || {
            let mut buf = [0u8; 65536];
            while let Ok(n) = down_r.read(&mut buf) {
                if n == 0 {
                    break;
                }
                rec.lock().expect("record").extend_from_slice(&buf[..n]);
                if up_w.write_all(&buf[..n]).is_err() {
                    break;
                }
            }
            let _ = up_w.shutdown(std::net::Shutdown::Write);
        });
        let (mut up_r, mut down_w) = (up, down);
        let _ = std::io::copy(&mut up_r, &mut down_w);
        let _ = down_w.shutdown(std::net::Shutdown::Write);
        let _ = forward.join();
    });
    (port, recorded, handle)
}

/// The TLS records in `bytes`: (content type, length) each.
pub fn tls_records(bytes: &[u8]) -> Vec<(u8, usize)> {
    let mut out = Vec::new();
    let mut i = 0;
    while i + 5 <= bytes.len() {
        let len = usize::from(u16::from_be_bytes([bytes[i + 3], bytes[i + 4]]));
        out.push((bytes[i], len));
        i += 5 + len;
    }
    out
}

/// How a test certificate differs from a good one.
#[derive(Clone, Copy, PartialEq, Eq, Debug)]
pub enum Leaf {
    Good,
    Expired,
    NotYetValid,
    IsCa,
    ClientAuthOnly,
    /// No subjectAltName: the name is only in the subject's CN.
    CnOnly,
}

/// A CA of the tests' own, for certificates TestPki does not make.
pub struct Ca {
    pub issuer: CertifiedIssuer<'static, KeyPair>,
}

impl Ca {
    pub fn new(name: &str) -> Ca {
        let mut params = CertificateParams::new(Vec::<String>::new()).expect("params");
        params.distinguished_name.push(DnType::CommonName, name);
        params.is_ca = IsCa::Ca(BasicConstraints::Unconstrained);
        params.key_usages = vec![KeyUsagePurpose::KeyCertSign, KeyUsagePurpose::CrlSign];
        let key = KeyPair::generate().expect("key");
        Ca {
            issuer: CertifiedIssuer::self_signed(params, key).expect("ca"),
        }
    }

    pub fn pem(&self) -> String {
        self.issuer.pem()
    }

    /// A leaf for `names`: (certificate PEM, key PEM).
    pub fn leaf(&self, names: &[&str], kind: Leaf) -> (String, String) {
        let sans = if kind == Leaf::CnOnly {
            Vec::new()
        } else {
            names.iter().map(|s| s.to_string()).collect::<Vec<_>>()
        };
        let mut params = CertificateParams::new(sans).expect("params");
        params
            .distinguished_name
            .push(DnType::CommonName, names.first().copied().unwrap_or("leaf"));
        params.extended_key_usages = vec![ExtendedKeyUsagePurpose::ServerAuth];
        params.use_authority_key_identifier_extension = true;
        match kind {
            Leaf::Good | Leaf::CnOnly => {}
            Leaf::Expired => {
                params.not_before = rcgen::date_time_ymd(2000, 1, 1);
                params.not_after = rcgen::date_time_ymd(2001, 1, 1);
            }
            Leaf::NotYetValid => {
                params.not_before = rcgen::date_time_ymd(2200, 1, 1);
                params.not_after = rcgen::date_time_ymd(2201, 1, 1);
            }
            Leaf::IsCa => params.is_ca = IsCa::Ca(BasicConstraints::Unconstrained),
            Leaf::ClientAuthOnly => {
                params.extended_key_usages = vec![ExtendedKeyUsagePurpose::ClientAuth];
            }
        }
        let key = KeyPair::generate().expect("key");
        let cert = params.signed_by(&key, &self.issuer).expect("sign");
        (cert.pem(), key.serialize_pem())
    }

    /// An intermediate CA signed by this one.
    pub fn intermediate(&self, name: &str) -> Ca {
        self.intermediate_with(name, |_| {})
    }

    /// An intermediate signed by this one, its parameters changed by `edit`
    /// (validity, CA bit, path length, name constraints).
    pub fn intermediate_with(&self, name: &str, edit: impl FnOnce(&mut CertificateParams)) -> Ca {
        let mut params = CertificateParams::new(Vec::<String>::new()).expect("params");
        params.distinguished_name.push(DnType::CommonName, name);
        params.is_ca = IsCa::Ca(BasicConstraints::Unconstrained);
        params.key_usages = vec![KeyUsagePurpose::KeyCertSign, KeyUsagePurpose::CrlSign];
        params.use_authority_key_identifier_extension = true;
        edit(&mut params);
        let key = KeyPair::generate().expect("key");
        Ca {
            issuer: CertifiedIssuer::signed_by(params, key, &self.issuer).expect("intermediate"),
        }
    }

    /// A leaf for `name` with a known serial and `usage`: (certificate PEM, key PEM).
    pub fn leaf_with_serial(
        &self,
        name: &str,
        serial: u64,
        usage: ExtendedKeyUsagePurpose,
    ) -> (String, String) {
        let mut params = CertificateParams::new(vec![name.to_owned()]).expect("params");
        params.distinguished_name.push(DnType::CommonName, name);
        params.serial_number = Some(SerialNumber::from(serial));
        params.extended_key_usages = vec![usage];
        params.use_authority_key_identifier_extension = true;
        let key = KeyPair::generate().expect("key");
        let cert = params.signed_by(&key, &self.issuer).expect("sign");
        (cert.pem(), key.serialize_pem())
    }

    /// A CRL from this CA revoking `serials`, PEM.
    pub fn crl(&self, serials: &[u64]) -> String {
        self.crl_for(serials, None)
    }

    /// A CRL from this CA revoking `serials` for `reason`, PEM.
    pub fn crl_for(&self, serials: &[u64], reason: Option<rcgen::RevocationReason>) -> String {
        self.crl_dated(serials, reason, (2020, 1, 1), (2200, 1, 1))
    }

    /// A CRL revoking `serials` (on 2000-01-01) whose nextUpdate was
    /// 2001-01-01: expired.
    pub fn expired_crl(&self, serials: &[u64]) -> String {
        self.crl_dated(serials, None, (2000, 1, 1), (2001, 1, 1))
    }

    /// A CRL issued (and revoking `serials`) on `this_update`, valid until
    /// `next_update`, each (year, month, day).
    fn crl_dated(
        &self,
        serials: &[u64],
        reason: Option<rcgen::RevocationReason>,
        this_update: (i32, u8, u8),
        next_update: (i32, u8, u8),
    ) -> String {
        let now = rcgen::date_time_ymd(this_update.0, this_update.1, this_update.2);
        let next_update = rcgen::date_time_ymd(next_update.0, next_update.1, next_update.2);
        CertificateRevocationListParams {
            this_update: now,
            next_update,
            crl_number: SerialNumber::from(1u64),
            issuing_distribution_point: None,
            revoked_certs: serials
                .iter()
                .map(|s| RevokedCertParams {
                    serial_number: SerialNumber::from(*s),
                    revocation_time: now,
                    reason_code: reason,
                    invalidity_date: None,
                })
                .collect(),
            key_identifier_method: KeyIdMethod::Sha256,
        }
        .signed_by(&self.issuer)
        .expect("crl")
        .pem()
        .expect("pem")
    }

    /// A server context serving a leaf of this CA.
    pub fn server_context(&self, names: &[&str], kind: Leaf) -> SecurityContext {
        let (cert, key) = self.leaf(names, kind);
        context_with(&cert, &key)
    }

    /// A context that trusts this CA.
    pub fn trust(&self) -> SecurityContext {
        let mut ctx = SecurityContext::empty();
        ctx.set_trusted_certificates_bytes(self.pem().as_bytes())
            .expect("trust");
        ctx
    }
}

pub fn context_with(cert_pem: &str, key_pem: &str) -> SecurityContext {
    let mut ctx = SecurityContext::empty();
    ctx.use_certificate_chain_bytes(cert_pem.as_bytes())
        .expect("chain");
    ctx.use_private_key_bytes(key_pem.as_bytes()).expect("key");
    ctx
}

/// A self-signed certificate for `names`: (certificate PEM, key PEM).
pub fn self_signed(names: &[&str]) -> (String, String) {
    self_signed_with(names, false)
}

/// A self-signed certificate for `names` marked CA:TRUE, as
/// `openssl req -x509` makes them: (certificate PEM, key PEM).
pub fn self_signed_ca(names: &[&str]) -> (String, String) {
    self_signed_with(names, true)
}

fn self_signed_with(names: &[&str], ca: bool) -> (String, String) {
    let key = KeyPair::generate().expect("key");
    let mut params =
        CertificateParams::new(names.iter().map(|s| s.to_string()).collect::<Vec<_>>())
            .expect("params");
    params
        .distinguished_name
        .push(DnType::CommonName, names.first().copied().unwrap_or("self"));
    if ca {
        params.is_ca = IsCa::Ca(BasicConstraints::Unconstrained);
    }
    let cert = params.self_signed(&key).expect("self-signed");
    (cert.pem(), key.serialize_pem())
}

/// Connects to a server that serves `server_ctx` (one connection, handshake
/// then close) with `options`, returning the client's result and the
/// server's handshake result.
pub fn handshake_with(
    server_ctx: &SecurityContext,
    bind: BindOptions,
    options: ConnectOptions,
    host: &str,
) -> (securenet::Result<SecureStream>, securenet::Result<()>) {
    let (port, server) = serve_one(bind, server_ctx, |mut s| {
        let r = s.handshake();
        if r.is_ok() {
            // Wait for the client's close so a TLS 1.3 client sees any alert.
            let mut buf = [0u8; 1];
            let _ = s.read(&mut buf);
        }
        r
    });
    let client = options.connect(host, port);
    let client = client.and_then(|mut c| {
        // In TLS 1.3 a rejected client certificate shows on the first read.
        c.set_read_timeout(Some(IO_TIMEOUT))?;
        c.close().map(|()| c)
    });
    let server = server.join().expect("server thread");
    (client, server)
}

pub fn listener_with(options: BindOptions, ctx: &SecurityContext) -> SecureListener {
    options
        .handshake_timeout(IO_TIMEOUT)
        .bind("127.0.0.1", 0, ctx)
        .expect("bind")
}

/// Says that a test is skipped and why, on the real standard error (the
/// harness captures `eprintln!`, which would make the skip a silent pass).
pub fn skip(test: &str, why: &str) {
    use std::io::Write as _;
    let _ = writeln!(std::io::stderr(), "SKIPPED {test}: {why}");
}

/// Whether this machine has an IPv6 loopback, asked of `std` (not of
/// securenet, so that a securenet bug cannot pass for a missing IPv6).
pub fn has_ipv6_loopback() -> bool {
    TcpListener::bind("[::1]:0").is_ok()
}

/// A raw rustls server configuration (the reference at the other end)
/// with the test PKI's server certificate, for `versions`.
pub fn rustls_server_config(
    pki: &TestPki,
    versions: &[&'static rustls::SupportedProtocolVersion],
) -> rustls::ServerConfig {
    use rustls::pki_types::pem::PemObject;
    use rustls::pki_types::{CertificateDer, PrivateKeyDer};
    let certs = CertificateDer::pem_slice_iter(pki.server_cert_pem().as_bytes())
        .collect::<Result<Vec<_>, _>>()
        .expect("certs");
    let key = PrivateKeyDer::from_pem_slice(pki.server_key_pem().as_bytes()).expect("key");
    rustls::ServerConfig::builder_with_protocol_versions(versions)
        .with_no_client_auth()
        .with_single_cert(certs, key)
        .expect("config")
}

/// A real rustls ClientHello grown by `pad` bytes (an unknown extension,
/// which servers ignore; capped so that the extensions fit their 16-bit
/// length), as one
/// handshake message (header included).
pub fn client_hello_padded(pad: usize) -> Vec<u8> {
    let pki = pki();
    let mut roots = rustls::RootCertStore::empty();
    roots
        .add(
            rustls::pki_types::pem::PemObject::from_pem_slice(pki.ca_pem().as_bytes()).expect("ca"),
        )
        .expect("root");
    let config = rustls::ClientConfig::builder()
        .with_root_certificates(roots)
        .with_no_client_auth();
    let mut conn = rustls::ClientConnection::new(Arc::new(config), "localhost".try_into().unwrap())
        .expect("client");
    let mut wire = Vec::new();
    conn.write_tls(&mut wire).expect("hello");
    // One record holding the whole message.
    let message = wire[5..].to_vec();
    let body = &message[4..];
    // version, random, session id, suites, compressions, then extensions.
    let mut at = 34;
    at += 1 + usize::from(body[at]);
    at += 2 + usize::from(u16::from_be_bytes([body[at], body[at + 1]]));
    at += 1 + usize::from(body[at]);
    let ext_len = usize::from(u16::from_be_bytes([body[at], body[at + 1]]));
    // The extensions' length is 16 bits: at most that much padding.
    let pad = pad.min(65_535 - ext_len - 4);
    let mut out = body[..at].to_vec();
    out.extend_from_slice(&u16::try_from(ext_len + 4 + pad).unwrap().to_be_bytes());
    // The padding first: a pre_shared_key extension must stay last.
    out.extend_from_slice(&[0xfa, 0xfa]);
    out.extend_from_slice(&u16::try_from(pad).unwrap().to_be_bytes());
    out.extend(std::iter::repeat_n(0u8, pad));
    out.extend_from_slice(&body[at + 2..]);
    let len = u32::try_from(out.len()).unwrap().to_be_bytes();
    [&[1, len[1], len[2], len[3]][..], &out].concat()
}
