//! What every group shares: the run's scale and repeats, the PKI, matching
//! rustls and securenet configurations, connected pairs, and printing.

use std::io::{BufReader, Read, Write};
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

/// `SECURENET_BENCH_REPEAT` (default 8): how many rounds each figure is
/// measured in (each round measures every side once); medians and the
/// per-round ratio's interval are printed.
pub fn repeats() -> usize {
    std::env::var("SECURENET_BENCH_REPEAT")
        .ok()
        .and_then(|s| s.parse().ok())
        .unwrap_or(8usize)
        .max(1)
}

#[derive(Clone, Copy, PartialEq, Eq, Debug)]
pub enum Who {
    Raw,
    Ours,
}

/// One figure for securenet and one baseline: medians, how far single
/// runs strayed, and the per-round ratio with its interval.
#[derive(Clone, Copy)]
pub struct Figure {
    pub ours: f64,
    /// The baseline's median (raw rustls, unless a group says otherwise).
    pub base: f64,
    /// Half the range of the runs, relative to the median, the larger of
    /// the two sides (0.05 = the runs lay within about ±5 %).
    pub spread: f64,
    /// The median of the rounds' ratios ours / baseline (each round
    /// measures both sides back to back), and a distribution-free
    /// interval for it: the k-th smallest and k-th largest ratio, with
    /// the confidence `coverage` (binomial, k the largest with at least
    /// 90 %; with few rounds, the whole range and less).
    pub ratio: f64,
    pub low: f64,
    pub high: f64,
    pub coverage: f64,
    /// The share of the machine's CPU time stolen by its host while the
    /// figure was measured (`/proc/stat`).
    pub steal: f64,
}

/// `SECURENET_BENCH_SIDE=ours` (or `raw`, or another side's name) measures
/// that side only, to profile it (`perf record`, `strace -c`); the
/// others print NaN.
fn only_side() -> Option<String> {
    std::env::var("SECURENET_BENCH_SIDE").ok()
}

fn side_name(side: impl std::fmt::Debug) -> String {
    format!("{side:?}").to_lowercase()
}

/// Measures both sides `repeats()` times, alternating which side goes
/// first so that drift in the machine's speed hits both alike, and returns
/// the medians. `measure` returns `N` figures from one run.
pub fn compare<const N: usize>(measure: impl FnMut(Who) -> [f64; N]) -> [Figure; N] {
    let [figures] = compare_with(Who::Ours, [Who::Raw], measure);
    figures
}

/// [`compare`] against several baselines in the same rounds: each round
/// measures `ours` and every baseline, in an order that turns by one each
/// round. Returns, for each baseline, the `N` figures of ours against it.
pub fn compare_with<S: Copy + std::fmt::Debug, const N: usize, const B: usize>(
    ours: S,
    baselines: [S; B],
    mut measure: impl FnMut(S) -> [f64; N],
) -> [[Figure; N]; B] {
    let only = only_side();
    let steal_before = steal_ticks();
    let mut sides: Vec<S> = vec![ours];
    sides.extend(baselines);
    // got[side][round]
    let mut got: Vec<Vec<[f64; N]>> = vec![Vec::new(); sides.len()];
    for round in 0..repeats() {
        let mut order: Vec<usize> = (0..sides.len()).collect();
        order.rotate_left(round % sides.len());
        for i in order {
            let measured = if only.as_ref().is_none_or(|o| *o == side_name(sides[i])) {
                measure(sides[i])
            } else {
                [f64::NAN; N]
            };
            got[i].push(measured);
        }
    }
    let steal = steal_share(steal_before, steal_ticks());
    std::array::from_fn(|b| {
        std::array::from_fn(|i| {
            let mut o: Vec<f64> = got[0].iter().map(|r| r[i]).collect();
            let mut r: Vec<f64> = got[b + 1].iter().map(|r| r[i]).collect();
            let ratios: Vec<f64> = o.iter().zip(&r).map(|(o, r)| o / r).collect();
            let (ratio, low, high, coverage) = ratio_interval(ratios);
            let (mo, so) = median_spread(&mut o);
            let (mr, sr) = median_spread(&mut r);
            Figure {
                ours: mo,
                base: mr,
                spread: so.max(sr),
                ratio,
                low,
                high,
                coverage,
                steal,
            }
        })
    })
}

/// The median of the finite `values` and half their range relative to it.
pub fn median_spread(values: &mut Vec<f64>) -> (f64, f64) {
    values.retain(|v| v.is_finite());
    if values.is_empty() {
        return (f64::NAN, 0.0);
    }
    values.sort_by(f64::total_cmp);
    let median = values[values.len() / 2];
    let spread = (values[values.len() - 1] - values[0]) / 2.0 / median;
    (median, spread)
}

/// The median of `ratios` and the interval between its k-th smallest and
/// k-th largest value, with that interval's coverage of the true median:
/// 1 - 2 P(X < k) for X ~ Binomial(n, 1/2), k the largest that keeps it at
/// least 90 % (the smallest, k = 1, below that: 75 % for 3 rounds).
pub fn ratio_interval(mut ratios: Vec<f64>) -> (f64, f64, f64, f64) {
    ratios.retain(|r| r.is_finite());
    let n = ratios.len();
    if n == 0 {
        return (f64::NAN, f64::NAN, f64::NAN, 0.0);
    }
    ratios.sort_by(f64::total_cmp);
    let median = if n % 2 == 1 {
        ratios[n / 2]
    } else {
        (ratios[n / 2 - 1] + ratios[n / 2]) / 2.0
    };
    // P(X <= j) for X ~ Binomial(n, 1/2).
    let cdf = |j: usize| {
        let mut term = 1.0f64; // C(n, 0)
        let mut sum = 0.0;
        for i in 0..=j {
            if i > 0 {
                term = term * (n + 1 - i) as f64 / i as f64;
            }
            sum += term;
        }
        sum / 2f64.powi(n as i32)
    };
    let coverage = |k: usize| 1.0 - 2.0 * cdf(k - 1);
    let mut k = 1;
    while k < n / 2 && coverage(k + 1) >= 0.90 {
        k += 1;
    }
    (median, ratios[k - 1], ratios[n - k], coverage(k).max(0.0))
}

/// Ticks the host stole from this machine's CPUs, and all ticks
/// (`/proc/stat`'s first line).
fn steal_ticks() -> (f64, f64) {
    let stat = std::fs::read_to_string("/proc/stat").unwrap_or_default();
    let fields: Vec<f64> = stat
        .lines()
        .next()
        .unwrap_or("")
        .split_whitespace()
        .skip(1)
        .filter_map(|v| v.parse().ok())
        .collect();
    (
        fields.get(7).copied().unwrap_or(f64::NAN),
        fields.iter().sum(),
    )
}

fn steal_share(before: (f64, f64), after: (f64, f64)) -> f64 {
    (after.0 - before.0) / (after.1 - before.1).max(1.0)
}

/// Prints one figure; the ratio is ours/raw when higher is better and
/// raw/ours otherwise, so above 1 is better for securenet everywhere. The
/// verdict is "better" or "worse" only when the ratio's interval leaves 1
/// out.
pub fn line(what: &str, f: Figure, unit: &str, higher_is_better: bool) {
    line_vs(what, f, unit, higher_is_better, "raw");
}

/// [`line`] with the baseline's name.
pub fn line_vs(what: &str, f: Figure, unit: &str, higher_is_better: bool, base: &str) {
    let (ratio, low, high) = if higher_is_better {
        (f.ratio, f.low, f.high)
    } else {
        (1.0 / f.ratio, 1.0 / f.high, 1.0 / f.low)
    };
    let verdict = if f.coverage < 0.9 {
        "(too few rounds)"
    } else if low > 1.0 {
        "better"
    } else if high < 1.0 {
        "worse"
    } else {
        "tie"
    };
    println!(
        "{what:<46} ours {:>10.1} {unit:<6} {base} {:>10.1} {unit:<6} ratio {ratio:>5.2} [{low:.2}, {high:.2}] {:.0}% {verdict}  runs ±{:.0}%  steal {:.1}%",
        f.ours,
        f.base,
        f.coverage * 100.0,
        f.spread * 100.0,
        f.steal * 100.0
    );
}

/// A child process (a bench's server or measuring side), killed if the
/// bench panics rather than left running.
pub struct KillOnDrop(pub std::process::Child);

impl Drop for KillOnDrop {
    fn drop(&mut self) {
        let _ = self.0.kill();
        let _ = self.0.wait();
    }
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

/// The bulk suites this run measures: `SECURENET_BENCH_SUITE=AES_256`
/// keeps those whose name has it (to profile one, e.g. under callgrind).
pub fn bulk_suites() -> Vec<&'static str> {
    let only = std::env::var("SECURENET_BENCH_SUITE").ok();
    BULK_SUITES
        .into_iter()
        .filter(|s| only.as_ref().is_none_or(|o| s.contains(o.as_str())))
        .collect()
}

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
fn raw_client_on<T: Read + Write>(
    config: &Arc<ClientConfig>,
    sock: T,
) -> StreamOwned<ClientConnection, T> {
    let name = ServerName::try_from("localhost").expect("name");
    StreamOwned::new(
        ClientConnection::new(config.clone(), name).expect("conn"),
        sock,
    )
}

/// A socket read through a 64 KiB `BufReader`, written straight: what a
/// careful user of raw rustls puts under `StreamOwned` so that the socket
/// is read 64 KiB at a time (rustls asks for about one record per read).
pub struct BufSock(BufReader<TcpStream>);

impl BufSock {
    pub fn new(sock: TcpStream) -> BufSock {
        BufSock(BufReader::with_capacity(64 * 1024, sock))
    }
}

impl Read for BufSock {
    fn read(&mut self, buf: &mut [u8]) -> std::io::Result<usize> {
        self.0.read(buf)
    }
}

impl Write for BufSock {
    fn write(&mut self, buf: &[u8]) -> std::io::Result<usize> {
        self.0.get_mut().write(buf)
    }

    fn write_vectored(&mut self, bufs: &[std::io::IoSlice<'_>]) -> std::io::Result<usize> {
        self.0.get_mut().write_vectored(bufs)
    }

    fn flush(&mut self) -> std::io::Result<()> {
        self.0.get_mut().flush()
    }
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
    raw_pair_on(client, server, |sock| sock)
}

/// A raw rustls pair over sockets read through 64 KiB `BufReader`s.
pub fn raw_pair_buffered(
    client: &Arc<ClientConfig>,
    server: &Arc<ServerConfig>,
) -> (
    StreamOwned<ClientConnection, BufSock>,
    StreamOwned<ServerConnection, BufSock>,
) {
    raw_pair_on(client, server, BufSock::new)
}

fn raw_pair_on<T: Read + Write + Send + 'static>(
    client: &Arc<ClientConfig>,
    server: &Arc<ServerConfig>,
    wrap: fn(TcpStream) -> T,
) -> (
    StreamOwned<ClientConnection, T>,
    StreamOwned<ServerConnection, T>,
) {
    let server = server.clone();
    tcp_pair(
        move |sock| {
            let mut s = StreamOwned::new(ServerConnection::new(server).expect("conn"), wrap(sock));
            while s.conn.is_handshaking() {
                s.conn.complete_io(&mut s.sock).expect("server handshake");
            }
            s
        },
        |sock| {
            let mut c = raw_client_on(client, wrap(sock));
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
