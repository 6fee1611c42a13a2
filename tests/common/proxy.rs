//! Small proxies on loopback for the tests: an HTTP CONNECT proxy (also
//! behind TLS, as an `https://` proxy) and a SOCKS5 proxy, each relaying
//! bytes both ways once the tunnel is open and recording what the client
//! asked for.

use std::io::{Read, Write};
use std::net::{Shutdown, TcpListener, TcpStream};
use std::sync::{Arc, Mutex};
use std::thread;
use std::time::Duration;

use securenet::{BindOptions, Error, Phase, SecurityContext};

use super::{IO_TIMEOUT, tcp_timeouts, with_timeouts};

/// How a test proxy behaves.
#[derive(Clone, Default)]
pub struct ProxyRules {
    /// Required credentials (user, password).
    pub auth: Option<(String, String)>,
    /// Refuse every tunnel with this HTTP status or SOCKS5 reply code.
    pub refuse: Option<u16>,
    /// Accept the connection and never answer.
    pub silent: bool,
    /// Headers (`X-1: v`...) in the HTTP proxy's `200` answer.
    pub headers: usize,
}

/// What the proxy saw: the CONNECT target (or SOCKS5 target), one per
/// tunnel asked for.
pub type Seen = Arc<Mutex<Vec<String>>>;

/// Relays between a client's two ends and `target` until both sides end;
/// `end_client` ends the client's write side.
fn relay_ends<R: Read + Send + 'static, W: Write>(
    mut from_client: R,
    mut to_client: W,
    end_client: impl FnOnce(&mut W),
    target: &str,
) {
    let Ok(mut server) = TcpStream::connect(target) else {
        return;
    };
    tcp_timeouts(&server);
    let Ok(mut s2) = server.try_clone() else {
        return;
    };
    let up = thread::spawn(move || {
        let _ = std::io::copy(&mut from_client, &mut s2);
        let _ = s2.shutdown(Shutdown::Write);
    });
    let _ = std::io::copy(&mut server, &mut to_client);
    end_client(&mut to_client);
    let _ = up.join();
}

fn relay(client: TcpStream, target: &str) {
    if let Ok(from_client) = client.try_clone() {
        relay_ends(
            from_client,
            client,
            |c| drop(c.shutdown(Shutdown::Write)),
            target,
        );
    }
}

/// Relays between a client reached over TLS and `target`.
fn relay_tls(client: securenet::SecureStream, target: &str) {
    if let Ok((from_client, to_client)) = client.split() {
        relay_ends(from_client, to_client, |w| drop(w.shutdown_write()), target);
    }
}

fn read_head(s: &mut impl Read) -> String {
    let mut head = Vec::new();
    let mut b = [0u8; 1];
    while !head.ends_with(b"\r\n\r\n") && head.len() < 16 * 1024 {
        match s.read(&mut b) {
            Ok(1) => head.push(b[0]),
            _ => break,
        }
    }
    String::from_utf8_lossy(&head).into_owned()
}

/// Listens on 127.0.0.1:0 and runs `session` for each of `connections`
/// connections in its own thread; the port and what the sessions saw.
fn run_proxy(
    rules: ProxyRules,
    connections: usize,
    session: fn(TcpStream, ProxyRules, Seen),
) -> (u16, Seen) {
    let listener = TcpListener::bind("127.0.0.1:0").expect("bind");
    let port = listener.local_addr().expect("addr").port();
    let seen: Seen = Arc::default();
    let record = seen.clone();
    thread::spawn(move || {
        for _ in 0..connections {
            let Ok((s, _)) = listener.accept() else {
                return;
            };
            tcp_timeouts(&s);
            let (rules, record) = (rules.clone(), record.clone());
            thread::spawn(move || session(s, rules, record));
        }
    });
    (port, seen)
}

/// An HTTP CONNECT proxy serving `connections` tunnels; its port and what
/// it saw (`CONNECT` lines, and `auth:ok` / `auth:bad` / `auth:none`).
pub fn http_proxy(rules: ProxyRules, connections: usize) -> (u16, Seen) {
    run_proxy(rules, connections, http_session)
}

fn http_session(mut s: TcpStream, rules: ProxyRules, record: Seen) {
    if let Some(target) = connect_head(&mut s, &rules, &record) {
        relay(s, &target);
    }
}

/// An `https://` proxy: the CONNECT proxy behind TLS with `ctx` (its
/// certificate), serving `connections` tunnels. It also records the SNI
/// and ALPN protocol each client sent (`sni:name`, `alpn:protocol`).
pub fn https_proxy(ctx: &SecurityContext, rules: ProxyRules, connections: usize) -> (u16, Seen) {
    https_proxy_with(BindOptions::new(), ctx, rules, connections)
}

/// [`https_proxy`] bound with `options` (to ask for client certificates:
/// then it records the subject of each one it got, `client:subject`).
pub fn https_proxy_with(
    options: BindOptions,
    ctx: &SecurityContext,
    rules: ProxyRules,
    connections: usize,
) -> (u16, Seen) {
    let listener = options
        .supported_protocols(&["http/1.1"])
        .handshake_timeout(IO_TIMEOUT)
        .bind("127.0.0.1", 0, ctx)
        .expect("bind");
    let port = listener.port();
    let seen: Seen = Arc::default();
    let record = seen.clone();
    thread::spawn(move || {
        for _ in 0..connections {
            let Ok((mut s, _)) = listener.accept() else {
                return;
            };
            with_timeouts(&mut s);
            let (rules, record) = (rules.clone(), record.clone());
            thread::spawn(move || {
                if s.handshake().is_err() {
                    return;
                }
                let mut r = record.lock().expect("seen");
                r.push(format!("sni:{}", s.server_name().unwrap_or_default()));
                r.push(format!(
                    "alpn:{}",
                    s.selected_protocol().unwrap_or_default()
                ));
                if let Some(client) = s.peer_certificate() {
                    r.push(format!("client:{}", client.subject()));
                }
                drop(r);
                if let Some(target) = connect_head(&mut s, &rules, &record) {
                    relay_tls(s, &target);
                }
            });
        }
    });
    (port, seen)
}

/// Reads a CONNECT request and answers it; the target, if the tunnel is
/// to be opened.
fn connect_head(s: &mut (impl Read + Write), rules: &ProxyRules, record: &Seen) -> Option<String> {
    if rules.silent {
        // Hold the connection until the client gives up.
        let _ = std::io::copy(s, &mut std::io::sink());
        return None;
    }
    let head = read_head(s);
    let line = head.lines().next().unwrap_or_default().to_owned();
    record.lock().expect("seen").push(line.clone());
    let target = line.split(' ').nth(1).unwrap_or_default().to_owned();
    let given = head
        .lines()
        .find_map(|l| l.strip_prefix("Proxy-Authorization: Basic "))
        .map(str::to_owned);
    if let Some((user, pass)) = &rules.auth {
        use base64ct::Encoding as _;
        let want = base64ct::Base64::encode_string(format!("{user}:{pass}").as_bytes());
        let verdict = match &given {
            None => "auth:none",
            Some(g) if *g == want => "auth:ok",
            Some(_) => "auth:bad",
        };
        record.lock().expect("seen").push(verdict.to_owned());
        if verdict != "auth:ok" {
            let _ = s.write_all(
                b"HTTP/1.1 407 Proxy Authentication Required\r\n\
                      Proxy-Authenticate: Basic realm=\"test\"\r\nContent-Length: 0\r\n\r\n",
            );
            return None;
        }
    }
    if let Some(status) = rules.refuse {
        let _ = write!(s, "HTTP/1.1 {status} Nope\r\nContent-Length: 0\r\n\r\n");
        return None;
    }
    let mut answer = "HTTP/1.1 200 Connection established\r\n".to_owned();
    for i in 1..=rules.headers {
        answer.push_str(&format!("X-{i}: v\r\n"));
    }
    answer.push_str("\r\n");
    let _ = s.write_all(answer.as_bytes());
    Some(target)
}

/// A SOCKS5 proxy serving `connections` tunnels; what it saw: the target
/// as `ip:port` or `name:port` (`name` when the client sent a domain).
pub fn socks5_proxy(rules: ProxyRules, connections: usize) -> (u16, Seen) {
    run_proxy(rules, connections, |mut s, rules, record| {
        let _ = socks5_session(&mut s, &rules, &record).map(|target| relay(s, &target));
    })
}

fn socks5_session(s: &mut TcpStream, rules: &ProxyRules, seen: &Seen) -> std::io::Result<String> {
    let mut head = [0u8; 2];
    s.read_exact(&mut head)?;
    let mut methods = vec![0u8; usize::from(head[1])];
    s.read_exact(&mut methods)?;
    match &rules.auth {
        None => s.write_all(&[5, 0])?,
        Some(_) if !methods.contains(&2) => {
            s.write_all(&[5, 0xff])?;
            return Err(std::io::ErrorKind::PermissionDenied.into());
        }
        Some((user, pass)) => {
            s.write_all(&[5, 2])?;
            let mut v = [0u8; 2];
            s.read_exact(&mut v)?;
            let mut u = vec![0u8; usize::from(v[1])];
            s.read_exact(&mut u)?;
            let mut pl = [0u8; 1];
            s.read_exact(&mut pl)?;
            let mut p = vec![0u8; usize::from(pl[0])];
            s.read_exact(&mut p)?;
            let ok = u == user.as_bytes() && p == pass.as_bytes();
            seen.lock()
                .expect("seen")
                .push(if ok { "auth:ok" } else { "auth:bad" }.to_owned());
            s.write_all(&[1, if ok { 0 } else { 1 }])?;
            if !ok {
                return Err(std::io::ErrorKind::PermissionDenied.into());
            }
        }
    }
    let mut req = [0u8; 4];
    s.read_exact(&mut req)?;
    let host = match req[3] {
        1 => {
            let mut a = [0u8; 4];
            s.read_exact(&mut a)?;
            std::net::Ipv4Addr::from(a).to_string()
        }
        4 => {
            let mut a = [0u8; 16];
            s.read_exact(&mut a)?;
            format!("[{}]", std::net::Ipv6Addr::from(a))
        }
        _ => {
            let mut len = [0u8; 1];
            s.read_exact(&mut len)?;
            let mut name = vec![0u8; usize::from(len[0])];
            s.read_exact(&mut name)?;
            format!("name {}", String::from_utf8_lossy(&name))
        }
    };
    let mut port = [0u8; 2];
    s.read_exact(&mut port)?;
    let port = u16::from_be_bytes(port);
    seen.lock().expect("seen").push(format!("{host}:{port}"));
    if let Some(code) = rules.refuse {
        s.write_all(&[5, code as u8, 0, 1, 0, 0, 0, 0, 0, 0])?;
        return Err(std::io::ErrorKind::ConnectionRefused.into());
    }
    s.write_all(&[5, 0, 0, 1, 127, 0, 0, 1, 0, 0])?;
    let target = match host.strip_prefix("name ") {
        Some("localhost") => format!("127.0.0.1:{port}"),
        Some(name) => format!("{name}:{port}"),
        None => format!("{host}:{port}"),
    };
    Ok(target)
}

/// Asserts `err` is a timeout of the proxy phase, reached within twice
/// `limit` (`took`: how long the connect ran).
pub fn assert_proxy_timeout(err: &Error, took: Duration, limit: Duration) {
    assert!(
        matches!(
            err,
            Error::Timeout {
                phase: Phase::Proxy,
                ..
            }
        ),
        "{err:?}"
    );
    assert!(took < 2 * limit, "took {took:?}");
}
