//! Careless or hostile proxy input: URLs whose credentials must never show
//! in a message or a `Debug`, whatever their shape; proxies whose answers
//! are unusual (a valid answer with many headers) or not quite SOCKS5.

mod common;

use securenet::{ConnectOptions, Proxy};

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
