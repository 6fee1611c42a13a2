//! Client connections through proxies: HTTP CONNECT (with and without
//! Basic auth) and SOCKS5 (`socks5://`, `socks5h://`, user/password), for
//! TLS streams and WebSockets; refusals, unreachable and silent proxies;
//! `Proxy::from_env` in a child process. Verification and SNI are for the
//! target, never the proxy.

mod common;

use std::process::Command;
use std::thread;
use std::time::{Duration, Instant};

use common::proxy::{ProxyRules, assert_proxy_timeout, http_proxy, socks5_proxy};
use common::{IO_TIMEOUT, client, echo_server, serve_one, unused_port};
use securenet::testing::TestPki;
use securenet::{BindOptions, Error, Message, Proxy, UpgradeResponse, WebSocket, WebSocketOptions};

/// The error of a connect through `proxy` to `localhost:target`, which
/// must fail at the proxy.
fn refused_by(pki: &TestPki, target: u16, proxy: Proxy) -> Error {
    client(pki.trust_context())
        .proxy(proxy)
        .connect("localhost", target)
        .expect_err("the proxy must refuse")
}

/// A server whose certificate names only `localhost`: reaching it through
/// a proxy at 127.0.0.1 verifies the target's name, not the proxy's.
fn localhost_only() -> TestPki {
    TestPki::new(&["localhost"]).expect("pki")
}

fn echo_through(pki: &TestPki, proxy: Proxy) -> securenet::Result<Vec<u8>> {
    let (port, server) = echo_server(&pki.server_context());
    let result = (|| {
        let mut s = client(pki.trust_context())
            .proxy(proxy)
            .connect("localhost", port)?;
        common::with_timeouts(&mut s);
        std::io::Write::write_all(&mut s, b"through the tunnel")?;
        let mut buf = [0u8; 18];
        std::io::Read::read_exact(&mut s, &mut buf)?;
        s.close()?;
        Ok(buf.to_vec())
    })();
    if result.is_ok() {
        let _ = server.join();
    }
    result
}

#[test]
fn tls_goes_through_an_http_connect_proxy_verified_for_the_target() {
    let pki = localhost_only();
    let (proxy_port, seen) = http_proxy(ProxyRules::default(), 1);
    let got = echo_through(
        &pki,
        Proxy::http(&format!("http://127.0.0.1:{proxy_port}")).expect("proxy"),
    )
    .expect("echo through the proxy");
    assert_eq!(got, b"through the tunnel");
    let seen = seen.lock().expect("seen");
    assert!(seen[0].starts_with("CONNECT localhost:"), "{seen:?}");
}

#[test]
fn basic_auth_is_sent_and_a_407_says_whether_credentials_were_sent() {
    // The target behind the proxy: never reached, as the proxy refuses.
    let target = unused_port();
    let pki = localhost_only();
    let rules = ProxyRules {
        auth: Some(("ann".into(), "p@ss:word".into())),
        ..ProxyRules::default()
    };
    let (port, seen) = http_proxy(rules.clone(), 1);
    echo_through(
        &pki,
        Proxy::http(&format!("http://ann:p%40ss%3Aword@127.0.0.1:{port}")).expect("proxy"),
    )
    .expect("with the right credentials");
    assert_eq!(seen.lock().expect("seen")[1], "auth:ok");

    for (url, sent) in [
        ("http://127.0.0.1:{}", "none were sent"),
        (
            "http://ann:hunter2@127.0.0.1:{}",
            "refused the user and password",
        ),
    ] {
        let (port, _) = http_proxy(rules.clone(), 1);
        let url = url.replace("{}", &port.to_string());
        let err = refused_by(&pki, target, Proxy::http(&url).expect("proxy"));
        match &err {
            Error::Proxy { proxy, status, .. } => {
                assert_eq!(*status, Some(407));
                assert_eq!(proxy, &format!("http://127.0.0.1:{port}"));
            }
            other => panic!("expected a proxy error, got {other:?}"),
        }
        let text = format!("{err} {err:?}");
        assert!(text.contains(sent), "{text}");
        assert!(!text.contains("hunter2"), "a credential leaked: {text}");
        assert_eq!(err.io_kind(), std::io::ErrorKind::PermissionDenied);
    }
}

#[test]
fn a_refusal_an_unreachable_proxy_and_a_silent_one_say_so() {
    // The target behind the proxy: never reached, as the proxy refuses.
    let target = unused_port();
    let pki = localhost_only();
    let (port, _) = http_proxy(
        ProxyRules {
            refuse: Some(403),
            ..ProxyRules::default()
        },
        1,
    );
    let err = refused_by(
        &pki,
        target,
        Proxy::http(&format!("http://127.0.0.1:{port}")).expect("proxy"),
    );
    assert!(
        matches!(
            err,
            Error::Proxy {
                status: Some(403),
                ..
            }
        ),
        "{err:?}"
    );
    assert!(
        err.to_string()
            .contains(&format!("refused to connect to localhost:{target}: 403")),
        "{err}"
    );

    // Nothing listens there: the error names the proxy, not the target.
    let closed = std::net::TcpListener::bind("127.0.0.1:0").expect("bind");
    let dead = closed.local_addr().expect("addr").port();
    drop(closed);
    let err = refused_by(
        &pki,
        target,
        Proxy::http(&format!("http://127.0.0.1:{dead}")).expect("proxy"),
    );
    assert!(matches!(err, Error::Proxy { .. }), "{err:?}");
    assert!(
        err.to_string()
            .contains(&format!("http://127.0.0.1:{dead}")),
        "{err}"
    );
    assert!(err.to_string().contains("cannot be reached"), "{err}");
    // The system's reason is in the message itself, once.
    let text = err.to_string();
    assert_eq!(
        text.to_lowercase().matches("connection refused").count(),
        1,
        "{text}"
    );
    assert_eq!(err.io_kind(), std::io::ErrorKind::ConnectionRefused);

    let (port, _) = http_proxy(
        ProxyRules {
            silent: true,
            ..ProxyRules::default()
        },
        1,
    );
    let limit = Duration::from_millis(300);
    let started = Instant::now();
    let err = client(pki.trust_context())
        .handshake_timeout(limit)
        .proxy(Proxy::http(&format!("http://127.0.0.1:{port}")).expect("proxy"))
        .connect("localhost", target)
        .expect_err("silent");
    assert_proxy_timeout(&err, started.elapsed(), limit);
}

#[test]
fn socks5_with_local_or_remote_names_and_with_a_password() {
    // The target behind the proxy: never reached, as the proxy refuses.
    let target = unused_port();
    let pki = localhost_only();
    let (port, seen) = socks5_proxy(ProxyRules::default(), 2);
    echo_through(
        &pki,
        Proxy::socks5(&format!("socks5://127.0.0.1:{port}")).expect("proxy"),
    )
    .expect("socks5");
    echo_through(
        &pki,
        Proxy::socks5(&format!("socks5h://127.0.0.1:{port}")).expect("proxy"),
    )
    .expect("socks5h");
    {
        let seen = seen.lock().expect("seen");
        let ip = seen[0].starts_with("127.0.0.1:") || seen[0].starts_with("[::1]:");
        assert!(ip, "socks5:// sends the address it resolved: {seen:?}");
        assert!(
            seen[1].starts_with("name localhost:"),
            "socks5h:// sends the name: {seen:?}"
        );
    }
    let rules = ProxyRules {
        auth: Some(("bob".into(), "s3cret".into())),
        ..ProxyRules::default()
    };
    let (port, seen) = socks5_proxy(rules.clone(), 1);
    echo_through(
        &pki,
        Proxy::socks5(&format!("socks5h://bob:s3cret@127.0.0.1:{port}")).expect("proxy"),
    )
    .expect("with the password");
    assert_eq!(seen.lock().expect("seen")[0], "auth:ok");
    let (port, _) = socks5_proxy(rules, 1);
    let err = refused_by(
        &pki,
        target,
        Proxy::socks5(&format!("socks5h://bob:wrong@127.0.0.1:{port}")).expect("proxy"),
    );
    assert!(
        err.to_string().contains("refused the user and password"),
        "{err}"
    );
    assert!(!format!("{err:?}").contains("wrong"), "{err:?}");
}

#[test]
fn a_socks5_reply_code_is_named() {
    // The target behind the proxy: never reached, as the proxy refuses.
    let target = unused_port();
    let pki = localhost_only();
    let (port, _) = socks5_proxy(
        ProxyRules {
            refuse: Some(5),
            ..ProxyRules::default()
        },
        1,
    );
    let err = refused_by(
        &pki,
        target,
        Proxy::socks5(&format!("socks5h://127.0.0.1:{port}")).expect("proxy"),
    );
    assert!(
        matches!(
            err,
            Error::Proxy {
                status: Some(5),
                ..
            }
        ),
        "{err:?}"
    );
    assert!(
        err.to_string()
            .contains("connection refused (SOCKS5 reply 5)"),
        "{err}"
    );
}

#[test]
fn websockets_go_through_proxies_wss_and_ws() {
    let pki = localhost_only();
    // wss:// through an HTTP proxy.
    let (port, server) = serve_one(BindOptions::new(), &pki.server_context(), |stream| {
        let mut ws = WebSocket::accept_with(stream, &WebSocketOptions::new(), |_| {
            Ok(UpgradeResponse::new())
        })?;
        let m = ws.read()?;
        if let Message::Text(t) = m {
            ws.send_text(&t)?;
        }
        ws.close(None)
    });
    let (proxy_port, seen) = http_proxy(ProxyRules::default(), 1);
    let options = WebSocketOptions::new().connect_options(
        client(pki.trust_context())
            .proxy(Proxy::http(&format!("http://127.0.0.1:{proxy_port}")).expect("proxy")),
    );
    let mut ws = options
        .connect(&format!("wss://localhost:{port}/"))
        .expect("wss through the proxy");
    ws.set_read_timeout(Some(IO_TIMEOUT)).expect("timeout");
    ws.send_text("over wss").expect("send");
    assert_eq!(ws.read().expect("read"), Message::Text("over wss".into()));
    let _ = ws.close(None);
    server.join().expect("server").expect("server side");
    assert!(seen.lock().expect("seen")[0].starts_with("CONNECT localhost:"));

    // ws:// through a SOCKS5 proxy.
    let listener = std::net::TcpListener::bind("127.0.0.1:0").expect("bind");
    let port = listener.local_addr().expect("addr").port();
    let server = thread::spawn(move || -> securenet::Result<()> {
        let (tcp, _) = listener.accept().expect("accept");
        common::tcp_timeouts(&tcp);
        let mut ws = WebSocket::accept(tcp, &WebSocketOptions::new())?;
        ws.send_text("over ws")?;
        let _ = ws.read();
        Ok(())
    });
    let (proxy_port, seen) = socks5_proxy(ProxyRules::default(), 1);
    let options =
        WebSocketOptions::new()
            .connect_options(client(pki.trust_context()).proxy(
                Proxy::socks5(&format!("socks5h://127.0.0.1:{proxy_port}")).expect("proxy"),
            ));
    let mut ws = options
        .connect(&format!("ws://localhost:{port}/"))
        .expect("ws through the proxy");
    ws.set_read_timeout(Some(IO_TIMEOUT)).expect("timeout");
    assert_eq!(ws.read().expect("read"), Message::Text("over ws".into()));
    let _ = ws.close(None);
    let _ = server.join();
    assert!(seen.lock().expect("seen")[0].starts_with("name localhost:"));
}

const CHILD: &str = "SECURENET_PROXY_ENV_CHILD";

#[test]
fn from_env_reads_https_proxy_and_no_proxy() {
    if std::env::var_os(CHILD).is_some() {
        let port: u16 = std::env::var("TARGET_PORT")
            .expect("port")
            .parse()
            .expect("port");
        let pem = std::env::var("CA_PEM").expect("ca");
        let mut ctx = securenet::SecurityContext::empty();
        ctx.set_trusted_certificates_bytes(pem.as_bytes())
            .expect("ca");
        let proxy = Proxy::from_env().expect("env");
        let mut s = client(ctx)
            .proxy(proxy)
            .connect("localhost", port)
            .expect("through HTTPS_PROXY");
        s.close().expect("close");
        println!("CHILD CONNECTED");
        return;
    }
    let pki = localhost_only();
    let (target, server) = serve_one(BindOptions::new(), &pki.server_context(), |mut s| {
        s.handshake()
    });
    let (proxy_port, seen) = http_proxy(ProxyRules::default(), 1);
    let out = Command::new(std::env::current_exe().expect("exe"))
        .args([
            "--exact",
            "from_env_reads_https_proxy_and_no_proxy",
            "--nocapture",
        ])
        .env_clear()
        .env(CHILD, "1")
        .env("HTTPS_PROXY", format!("http://127.0.0.1:{proxy_port}"))
        // Everything else goes direct; localhost does not match these.
        .env("NO_PROXY", "example.test,10.0.0.0/8")
        .env("TARGET_PORT", target.to_string())
        .env("CA_PEM", pki.ca_pem())
        .output()
        .expect("child");
    let stdout = String::from_utf8_lossy(&out.stdout);
    assert!(
        out.status.success() && stdout.contains("CHILD CONNECTED"),
        "{stdout}\n{}",
        String::from_utf8_lossy(&out.stderr)
    );
    server.join().expect("server").expect("handshake");
    assert!(seen.lock().expect("seen")[0].starts_with("CONNECT localhost:"));
}
