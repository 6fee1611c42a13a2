//! What every group shares: the run's scale and repeats, the PKI, matching
//! rustls and securenet configurations, connected pairs, and printing.

use std::net::{TcpListener, TcpStream};
use std::sync::Arc;
use std::thread;

use rcgen::{CertificateParams, CertifiedIssuer, DnType, IsCa, KeyPair};
use rustls::pki_types::pem::PemObject;
use rustls::pki_types::{CertificateDer, PrivateKeyDer, ServerName};
use rustls::{ClientConfig, ClientConnection, ServerConfig, ServerConnection, StreamOwned};
use securenet::{ConnectOptions, SecureListener, SecurityContext};

/// `SECURENET_BENCH_SCALE` (default 1): multiplies every count and size.
pub fn scale() -> f64 {
    std::env::var("SECURENET_BENCH_SCALE")
        .ok()
        .and_then(|s| s.parse().ok())
        .unwrap_or(1.0)
}

pub fn scaled(n: usize) -> usize {
    ((n as f64 * scale()) as usize).max(1)
}

/// `SECURENET_BENCH_REPEAT` (default 3): how many times each side of each
/// figure is measured; the median is printed.
pub fn repeats() -> usize {
    std::env::var("SECURENET_BENCH_REPEAT")
        .ok()
        .and_then(|s| s.parse().ok())
        .unwrap_or(3usize)
        .max(1)
}

#[derive(Clone, Copy, PartialEq, Eq, Debug)]
pub enum Who {
    Raw,
    Ours,
}

/// One figure for both sides: medians, and how far single runs strayed.
#[derive(Clone, Copy)]
pub struct Figure {
    pub ours: f64,
    pub raw: f64,
    /// Half the range of the runs, relative to the median, the larger of
    /// the two sides (0.05 = the runs lay within about ±5 %).
    pub spread: f64,
}

/// `SECURENET_BENCH_SIDE=ours` (or `raw`) measures one side only, to
/// profile it (`perf record`, `strace -c`); the other side prints NaN.
fn only_side() -> Option<Who> {
    match std::env::var("SECURENET_BENCH_SIDE").ok()?.as_str() {
        "ours" => Some(Who::Ours),
        "raw" => Some(Who::Raw),
        _ => None,
    }
}

/// Measures both sides `repeats()` times, alternating which side goes
/// first so that drift in the machine's speed hits both alike, and returns
/// the medians. `measure` returns `N` figures from one run.
pub fn compare<const N: usize>(mut measure: impl FnMut(Who) -> [f64; N]) -> [Figure; N] {
    let mut ours: Vec<[f64; N]> = Vec::new();
    let mut raw: Vec<[f64; N]> = Vec::new();
    let only = only_side();
    for round in 0..repeats() {
        let order = if round % 2 == 0 {
            [Who::Raw, Who::Ours]
        } else {
            [Who::Ours, Who::Raw]
        };
        for who in order.into_iter().filter(|w| only.is_none_or(|o| o == *w)) {
            let got = measure(who);
            match who {
                Who::Raw => raw.push(got),
                Who::Ours => ours.push(got),
            }
        }
    }
    std::array::from_fn(|i| {
        let mut o: Vec<f64> = ours.iter().map(|r| r[i]).collect();
        let mut r: Vec<f64> = raw.iter().map(|r| r[i]).collect();
        let (mo, so) = median_spread(&mut o);
        let (mr, sr) = median_spread(&mut r);
        Figure {
            ours: mo,
            raw: mr,
            spread: so.max(sr),
        }
    })
}

fn median_spread(values: &mut [f64]) -> (f64, f64) {
    if values.is_empty() {
        return (f64::NAN, 0.0);
    }
    values.sort_by(f64::total_cmp);
    let median = values[values.len() / 2];
    let spread = (values[values.len() - 1] - values[0]) / 2.0 / median;
    (median, spread)
}

/// Prints one figure; the ratio is ours/raw when higher is better and
/// raw/ours otherwise, so above 1 is better for securenet everywhere.
pub fn line(what: &str, f: Figure, unit: &str, higher_is_better: bool) {
    let ratio = if higher_is_better {
        f.ours / f.raw
    } else {
        f.raw / f.ours
    };
    println!(
        "{what:<46} ours {:>10.1} {unit:<6} raw {:>10.1} {unit:<6} ratio {ratio:>6.2}  ±{:.0}%",
        f.ours,
        f.raw,
        f.spread * 100.0
    );
}

/// Either side's stream, boxed so one closure serves both.
pub trait ReadWrite: std::io::Read + std::io::Write + Send {}
impl<T: std::io::Read + std::io::Write + Send> ReadWrite for T {}

/// A CA and a server certificate for localhost, ECDSA P-256 or RSA-2048.
pub struct Pki {
    pub ca: String,
    pub cert: String,
    pub key: String,
}

const PKI_ENV: [&str; 3] = [
    "SECURENET_BENCH_CA",
    "SECURENET_BENCH_CERT",
    "SECURENET_BENCH_KEY",
];

impl Pki {
    /// Hands this PKI to a child process, so its server is trusted here.
    pub fn to_env(&self, cmd: &mut std::process::Command) {
        for (name, value) in PKI_ENV.iter().zip([&self.ca, &self.cert, &self.key]) {
            cmd.env(name, value);
        }
    }

    /// The PKI a parent handed over with [`Pki::to_env`], if any.
    pub fn from_env() -> Option<Pki> {
        let [ca, cert, key] = PKI_ENV.map(|n| std::env::var(n).ok());
        Some(Pki {
            ca: ca?,
            cert: cert?,
            key: key?,
        })
    }
}

/// An RSA-2048 key: rcgen makes it with aws-lc-rs; with ring (which cannot
/// make RSA keys) the `rsa` crate does.
fn rsa_key() -> KeyPair {
    #[cfg(feature = "aws-lc-rs")]
    return KeyPair::generate_rsa_for(&rcgen::PKCS_RSA_SHA256, rcgen::RsaKeySize::_2048)
        .expect("rsa");
    #[cfg(all(feature = "ring", not(feature = "aws-lc-rs")))]
    {
        use rsa::pkcs8::EncodePrivateKey;
        let key = rsa::RsaPrivateKey::new(&mut rand_core::OsRng, 2048).expect("rsa key");
        let der = key.to_pkcs8_der().expect("pkcs8");
        let der = rustls::pki_types::PrivatePkcs8KeyDer::from(der.as_bytes().to_vec());
        KeyPair::from_pkcs8_der_and_sign_algo(&der, &rcgen::PKCS_RSA_SHA256).expect("rsa")
    }
}

pub fn pki(rsa: bool) -> Pki {
    let mut ca_params = CertificateParams::new(Vec::<String>::new()).expect("params");
    ca_params
        .distinguished_name
        .push(DnType::CommonName, "bench CA");
    ca_params.is_ca = IsCa::Ca(rcgen::BasicConstraints::Unconstrained);
    let ca =
        CertifiedIssuer::self_signed(ca_params, KeyPair::generate().expect("key")).expect("ca");
    let key = if rsa {
        rsa_key()
    } else {
        KeyPair::generate().expect("key")
    };
    let params = CertificateParams::new(vec!["localhost".to_owned()]).expect("params");
    let cert = params.signed_by(&key, &ca).expect("cert");
    Pki {
        ca: ca.pem(),
        cert: cert.pem(),
        key: key.serialize_pem(),
    }
}

/// Provider restrictions shared by both sides of a comparison.
#[derive(Clone, Copy)]
pub struct Tuning {
    pub suite: Option<&'static str>,
    pub x25519_only: bool,
}

pub const DEFAULT: Tuning = Tuning {
    suite: None,
    x25519_only: false,
};

/// The TLS 1.3 suites every bulk group runs.
pub const BULK_SUITES: [&str; 3] = [
    "TLS13_AES_128_GCM_SHA256",
    "TLS13_AES_256_GCM_SHA384",
    "TLS13_CHACHA20_POLY1305_SHA256",
];

impl Tuning {
    /// Only `suite`, any key exchange.
    pub fn suite(suite: &'static str) -> Tuning {
        Tuning {
            suite: Some(suite),
            x25519_only: false,
        }
    }
}

/// Accepts `count` connections on `listener`, each served by `serve` on a
/// thread of its own (joined 64 at a time), as a thread-per-connection
/// server does; the returned thread ends when all are served.
pub fn serve_each(
    listener: TcpListener,
    count: usize,
    serve: impl Fn(TcpStream) + Clone + Send + 'static,
) -> thread::JoinHandle<()> {
    thread::spawn(move || {
        let mut workers = Vec::new();
        for _ in 0..count {
            let (sock, _) = listener.accept().expect("accept");
            sock.set_nodelay(true).expect("nodelay");
            let serve = serve.clone();
            workers.push(thread::spawn(move || serve(sock)));
            if workers.len() > 64 {
                for w in workers.drain(..) {
                    let _ = w.join();
                }
            }
        }
        for w in workers {
            let _ = w.join();
        }
    })
}

// ring's default provider is deprecated from rustls 0.23.48 (no
// post-quantum groups): it is still the ring rows' provider.
#[allow(deprecated)]
fn provider(t: Tuning) -> Arc<rustls::crypto::CryptoProvider> {
    // The provider securenet was built with (its `aws-lc-rs` or `ring` feature).
    #[cfg(feature = "aws-lc-rs")]
    use rustls::crypto::aws_lc_rs as backend;
    #[cfg(all(feature = "ring", not(feature = "aws-lc-rs")))]
    use rustls::crypto::ring as backend;
    let mut p = backend::default_provider();
    if let Some(name) = t.suite {
        p.cipher_suites.retain(|s| s.suite().as_str() == Some(name));
    }
    if t.x25519_only {
        p.kx_groups = vec![backend::kx_group::X25519];
    }
    Arc::new(p)
}

pub fn raw_configs(pki: &Pki, t: Tuning) -> (Arc<ClientConfig>, Arc<ServerConfig>) {
    let mut roots = rustls::RootCertStore::empty();
    roots
        .add(CertificateDer::from_pem_slice(pki.ca.as_bytes()).expect("ca"))
        .expect("root");
    let client = ClientConfig::builder_with_provider(provider(t))
        .with_safe_default_protocol_versions()
        .expect("versions")
        .with_root_certificates(roots)
        .with_no_client_auth();
    let server = ServerConfig::builder_with_provider(provider(t))
        .with_safe_default_protocol_versions()
        .expect("versions")
        .with_no_client_auth()
        .with_single_cert(
            vec![CertificateDer::from_pem_slice(pki.cert.as_bytes()).expect("cert")],
            PrivateKeyDer::from_pem_slice(pki.key.as_bytes()).expect("key"),
        )
        .expect("server config");
    (Arc::new(client), Arc::new(server))
}

pub fn our_contexts(pki: &Pki, t: Tuning) -> (SecurityContext, SecurityContext) {
    let mut client = SecurityContext::empty();
    client
        .set_trusted_certificates_bytes(pki.ca.as_bytes())
        .expect("trust");
    let mut server = SecurityContext::empty();
    server
        .use_certificate_chain_bytes(pki.cert.as_bytes())
        .expect("chain");
    server
        .use_private_key_bytes(pki.key.as_bytes())
        .expect("key");
    for ctx in [&mut client, &mut server] {
        if let Some(s) = t.suite {
            ctx.set_cipher_suites(&[s]).expect("suite");
        }
        if t.x25519_only {
            ctx.set_key_exchange_groups(&["X25519"]).expect("group");
        }
    }
    (client, server)
}

pub type RawClient = StreamOwned<ClientConnection, TcpStream>;
pub type RawServer = StreamOwned<ServerConnection, TcpStream>;

/// A raw rustls client over a new connection to `addr`, handshake not run.
pub fn raw_client(config: &Arc<ClientConfig>, addr: std::net::SocketAddr) -> RawClient {
    let sock = TcpStream::connect(addr).expect("connect");
    sock.set_nodelay(true).expect("nodelay");
    raw_client_on(config, sock)
}

/// A raw rustls client over `sock`, handshake not run.
fn raw_client_on(config: &Arc<ClientConfig>, sock: TcpStream) -> RawClient {
    let name = ServerName::try_from("localhost").expect("name");
    StreamOwned::new(
        ClientConnection::new(config.clone(), name).expect("conn"),
        sock,
    )
}

/// A connected loopback pair (TCP_NODELAY on both): `server` runs on the
/// accepted socket in a thread, `client` on the connected one here; both
/// return their end with the handshake done.
pub fn tcp_pair<C, S: Send + 'static>(
    server: impl FnOnce(TcpStream) -> S + Send + 'static,
    client: impl FnOnce(TcpStream) -> C,
) -> (C, S) {
    let listener = TcpListener::bind("127.0.0.1:0").expect("bind");
    let addr = listener.local_addr().expect("addr");
    let accept = thread::spawn(move || {
        let (sock, _) = listener.accept().expect("accept");
        sock.set_nodelay(true).expect("nodelay");
        server(sock)
    });
    let sock = TcpStream::connect(addr).expect("connect");
    sock.set_nodelay(true).expect("nodelay");
    let c = client(sock);
    (c, accept.join().expect("server"))
}

/// A raw rustls pair: (client, server) with the handshake done.
pub fn raw_pair(client: &Arc<ClientConfig>, server: &Arc<ServerConfig>) -> (RawClient, RawServer) {
    let server = server.clone();
    tcp_pair(
        move |sock| {
            let mut s = StreamOwned::new(ServerConnection::new(server).expect("conn"), sock);
            while s.conn.is_handshaking() {
                s.conn.complete_io(&mut s.sock).expect("server handshake");
            }
            s
        },
        |sock| {
            let mut c = raw_client_on(client, sock);
            while c.conn.is_handshaking() {
                c.conn.complete_io(&mut c.sock).expect("client handshake");
            }
            c
        },
    )
}

/// Our client options for the bench's servers: the address is given, as
/// the raw side's is, and "localhost" is the name checked.
pub fn our_client(client: &SecurityContext) -> ConnectOptions {
    ConnectOptions::new()
        .context(client.clone())
        .server_name("localhost")
}

/// A securenet pair: (client, server) with the handshake done.
pub fn our_pair(
    client: &SecurityContext,
    server: &SecurityContext,
) -> (securenet::SecureStream, securenet::SecureStream) {
    let listener = SecureListener::bind("127.0.0.1", 0, server).expect("bind");
    let port = listener.port();
    let accept = thread::spawn(move || {
        let (mut s, _) = listener.accept().expect("accept");
        s.handshake().expect("server handshake");
        s
    });
    let c = our_client(client)
        .connect("127.0.0.1", port)
        .expect("connect");
    (c, accept.join().expect("server"))
}

/// CPU time this thread has spent in user space (not in the kernel), from
/// `/proc/thread-self/stat` (clock ticks, 10 ms here; NaN where there is
/// none). On loopback the kernel's TCP work is charged to whichever thread
/// happens to run it, so the user-space share is what a stream core's own
/// code costs.
pub fn thread_user_secs() -> f64 {
    let stat = std::fs::read_to_string("/proc/thread-self/stat").unwrap_or_default();
    // Fields after the command name (which may hold spaces) start at ')'.
    let ticks = stat
        .rsplit_once(')')
        .and_then(|(_, rest)| rest.split_whitespace().nth(11)?.parse::<f64>().ok());
    ticks.map_or(f64::NAN, |t| t / 100.0)
}

/// CPU time this thread has run, from `/proc/thread-self/schedstat` (NaN
/// where there is none).
pub fn thread_cpu_secs() -> f64 {
    std::fs::read_to_string("/proc/thread-self/schedstat")
        .ok()
        .and_then(|s| s.split_whitespace().next()?.parse::<f64>().ok())
        .map_or(f64::NAN, |ns| ns / 1e9)
}
