//! Careless or hostile proxy input: URLs whose credentials must never show
//! in a message or a `Debug`, whatever their shape; proxies whose answers
//! are unusual (a valid answer with many headers) or not quite SOCKS5.

mod common;

use std::io::{Read, Write};

use common::proxy::{ProxyRules, http_proxy};
use common::{client, echo_server};
use securenet::testing::TestPki;
use securenet::{ConnectOptions, Error, Proxy};

/// The two halves of every password below: neither may show.
const SECRET: [&str; 2] = ["Zq9x", "Wv7y"];

fn assert_hidden(url: &str, text: &str) {
    for part in SECRET {
        assert!(!text.contains(part), "{url}: a credential leaked: {text}");
    }
}

#[test]
fn a_proxy_password_never_shows_whatever_the_url() {
    // Well-formed: neither the proxy's Debug nor the options' shows it.
    for (url, host) in [
        (
            "http://user:Zq9x%2FWv7y@proxy.example:3128",
            "proxy.example:3128",
        ),
        ("http://user:Zq9x@Wv7y@proxy.example:3128", "proxy.example"),
        ("https://Zq9x:Wv7y@proxy.example", "proxy.example:443"),
        (
            "socks5h://u:Zq9x%23Wv7y@proxy.example:1080",
            "proxy.example",
        ),
        (
            "socks5://Zq9x%40:Wv7y%3F@proxy.example:1080",
            "proxy.example",
        ),
        ("user:Zq9xWv7y@proxy.example:3128", "proxy.example:3128"),
        // Parsed and shown only: nothing listens or connects here.
        ("http://us%40er:Zq9x%3AWv7y@[::1]:3128", "[::1]:3128"),
    ] {
        let proxy = Proxy::new(url).expect(url);
        let options = ConnectOptions::new().proxy(proxy.clone());
        for text in [format!("{proxy:?}"), format!("{options:?}")] {
            assert_hidden(url, &text);
            assert!(text.contains(host), "{url}: {text}");
        }
    }
    // Malformed: the error names the proxy, never the password. A '/',
    // '?' or '#' ends the host part of a URL, so a password holding one
    // unencoded cannot be told from a path: refused, with the way out.
    for (url, host) in [
        (
            "http://user:Zq9x/Wv7y@proxy.example:3128",
            "proxy.example:3128",
        ),
        ("http://user:Zq9x?Wv7y@proxy.example:3128", "proxy.example"),
        ("http://user:Zq9x#Wv7y@proxy.example:3128", "proxy.example"),
        (
            "socks5://user:Zq9x/Wv7y@proxy.example:1080",
            "proxy.example",
        ),
        (
            "socks5h://u:Zq9x%zzWv7y@proxy.example:1080",
            "proxy.example",
        ),
        ("http://user:Zq9xWv7y@proxy.example:0", "proxy.example"),
        ("http://u:Zq9xWv7y@proxy.example:3128/path", "proxy.example"),
        ("gopher://user:Zq9xWv7y@proxy.example:70", "proxy.example"),
        ("user:Zq9x://Wv7y@proxy.example:3128", "proxy.example"),
        ("http://user:Zq9x/Wv7y@bad host:3128", "bad host"),
        ("http://user:Zq9xWv7y@[::1:3128", "[::1:3128"),
        // No host at all: nothing to name, and still nothing shown.
        ("http://Zq9x:Wv7y", ""),
        ("http://Zq9x:Wv7y/", ""),
    ] {
        let err = Proxy::new(url).expect_err(url);
        for text in [format!("{err}"), format!("{err:?}")] {
            assert_hidden(url, &text);
            assert!(text.contains(host), "{url}: {text}");
        }
        if url.contains("Zq9x/") {
            assert!(err.to_string().contains("percent-encode"), "{err}");
        }
        for err in [Proxy::http(url), Proxy::socks5(url)]
            .into_iter()
            .filter_map(Result::err)
        {
            assert_hidden(url, &format!("{err} {err:?}"));
        }
    }
}

/// The error of a connect through `proxy` to a TLS echo server on
/// `localhost`, or what came back through the tunnel.
fn echo_through(pki: &TestPki, proxy: Proxy) -> securenet::Result<Vec<u8>> {
    let (port, server) = echo_server(&pki.server_context());
    let result = (|| {
        let mut s = client(pki.trust_context())
            .proxy(proxy)
            .connect("localhost", port)?;
        common::with_timeouts(&mut s);
        s.write_all(b"ping")?;
        let mut buf = [0u8; 4];
        s.read_exact(&mut buf)?;
        s.close()?;
        Ok(buf.to_vec())
    })();
    if result.is_ok() {
        let _ = server.join();
    }
    result
}

#[test]
fn a_connect_answer_with_many_headers_opens_the_tunnel_and_too_many_say_so() {
    let pki = TestPki::new(&["localhost"]).expect("pki");
    let rules = |headers| ProxyRules {
        headers,
        ..ProxyRules::default()
    };
    let (port, _) = http_proxy(rules(100), 1);
    let url = format!("http://127.0.0.1:{port}");
    let got = echo_through(&pki, Proxy::http(&url).expect("proxy")).expect("100 headers");
    assert_eq!(got, b"ping");
    // Within the 16 KiB an answer may take, but more headers than a
    // proxy sends.
    let (port, _) = http_proxy(rules(1000), 1);
    let url = format!("http://127.0.0.1:{port}");
    let err = echo_through(&pki, Proxy::http(&url).expect("proxy")).expect_err("1000 headers");
    assert!(matches!(err, Error::Proxy { .. }), "{err:?}");
    let text = err.to_string();
    assert!(text.contains("too many headers"), "{text}");
    assert!(!text.contains("not HTTP"), "{text}");
    assert!(text.contains(&url), "{text}");
}

/// A SOCKS5 proxy on loopback for one connection that takes no
/// authentication and answers the CONNECT request with `reply`, then
/// closes.
fn socks5_answering(reply: [u8; 10]) -> (u16, std::thread::JoinHandle<std::io::Result<()>>) {
    let (listener, port) = common::tcp_listener();
    let proxy = std::thread::spawn(move || {
        let (mut s, _) = listener.accept()?;
        common::tcp_timeouts(&s);
        let mut hello = [0u8; 2];
        s.read_exact(&mut hello)?;
        s.read_exact(&mut vec![0u8; usize::from(hello[1])])?;
        s.write_all(&[5, 0])?;
        let mut request = [0u8; 4];
        s.read_exact(&mut request)?;
        let address = match request[3] {
            1 => 4,
            4 => 16,
            _ => {
                let mut len = [0u8; 1];
                s.read_exact(&mut len)?;
                usize::from(len[0])
            }
        };
        s.read_exact(&mut vec![0u8; address + 2])?;
        s.write_all(&reply)
    });
    (port, proxy)
}

#[test]
fn a_socks5_reply_of_another_version_or_with_a_reserved_bit_is_refused() {
    let pki = TestPki::new(&["localhost"]).expect("pki");
    for (reply, says) in [
        ([4, 0, 0, 1, 127, 0, 0, 1, 0, 80], "version 4"),
        ([5, 0, 1, 1, 127, 0, 0, 1, 0, 80], "reserved byte"),
    ] {
        let (port, proxy) = socks5_answering(reply);
        let url = format!("socks5h://127.0.0.1:{port}");
        let err = client(pki.trust_context())
            .proxy(Proxy::socks5(&url).expect("proxy"))
            .connect("localhost", common::unused_port())
            .expect_err("no tunnel");
        proxy.join().expect("proxy").expect("proxy side");
        assert!(matches!(err, Error::Proxy { .. }), "{reply:?}: {err:?}");
        let text = err.to_string();
        assert!(text.contains("SOCKS5 reply"), "{reply:?}: {text}");
        assert!(text.contains(says), "{reply:?}: {text}");
        assert!(text.contains(&url), "{reply:?}: {text}");
    }
}
