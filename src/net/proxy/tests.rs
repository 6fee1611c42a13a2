//! Unit tests of proxy URLs and the environment: parsing, and what messages
//! show of them.

use super::*;

fn vars(list: &'static [(&'static str, &'static str)]) -> impl Fn(&str) -> Option<String> {
    move |name| {
        list.iter()
            .find(|(n, _)| *n == name)
            .map(|(_, v)| (*v).to_owned())
    }
}

#[test]
fn proxy_urls_parse_with_credentials_hidden() {
    let p = Proxy::http("http://us%40er:p%3Ass@proxy.test:3128").expect("parse");
    let Rule::Fixed(e) = &p.rule else { panic!() };
    assert_eq!(e.credentials, Some(("us@er".to_owned(), "p:ss".to_owned())));
    assert_eq!(e.shown(), "http://proxy.test:3128");
    assert!(!format!("{p:?}").contains("p:ss"));
    let e = Proxy::socks5("socks5h://[::1]").expect("parse");
    assert_eq!(
        e.for_target("x", 1, true).map(Endpoint::shown).as_deref(),
        Some("socks5h://[::1]:1080")
    );
    for bad in [
        "ftp://x:1",
        "http://:8080",
        "http://h:99999",
        "http://h:1/path",
    ] {
        assert!(Proxy::http(bad).is_err(), "{bad}");
    }
    let err = Proxy::http("http://user:hunter2@h:0").expect_err("port 0");
    assert!(!err.to_string().contains("hunter2"), "{err}");
    let tls = Proxy::http("https://u:p@h").expect("https proxy");
    let e = tls.for_target("x", 1, true).expect("fixed");
    assert_eq!(
        (e.protocol, e.shown()),
        (Protocol::Https, "https://h:443".to_owned())
    );
    assert!(Proxy::http("socks5://h:1").is_err());
}

#[test]
fn an_https_proxy_from_the_environment_keeps_its_scheme() {
    let p = Proxy::from_vars(vars(&[("HTTPS_PROXY", "https://u:p@tls.test")])).expect("env");
    let e = p.for_target("example.com", 443, true).expect("https_proxy");
    assert_eq!(e.protocol, Protocol::Https);
    assert_eq!(e.shown(), "https://tls.test:443");
    assert_eq!(e.credentials, Some(("u".to_owned(), "p".to_owned())));
}

#[test]
fn the_environment_is_read_as_curl_reads_it() {
    let p = Proxy::from_vars(vars(&[
        ("HTTPS_PROXY", "http://upper:1"),
        ("https_proxy", "http://lower:1"),
        ("HTTP_PROXY", "http://ignored:1"),
        ("ALL_PROXY", "socks5://all:1"),
        (
            "NO_PROXY",
            "internal.test, .corp.test,10.0.0.0/8,::1,*.x:8443",
        ),
    ]))
    .expect("env");
    let via = |host, port, tls| p.for_target(host, port, tls).map(Endpoint::shown);
    assert_eq!(
        via("example.com", 443, true).as_deref(),
        Some("http://lower:1")
    );
    // http_proxy is read in lower case only; ALL_PROXY fills in.
    assert_eq!(
        via("example.com", 80, false).as_deref(),
        Some("socks5://all:1")
    );
    assert_eq!(via("internal.test", 443, true), None);
    assert_eq!(via("a.internal.test", 443, true), None);
    assert!(via("notinternal.test", 443, true).is_some());
    assert_eq!(via("b.corp.test", 443, true), None);
    assert_eq!(via("10.1.2.3", 443, true), None);
    assert!(via("11.1.2.3", 443, true).is_some());
    assert_eq!(via("::1", 443, true), None);
    assert_eq!(via("[::1]", 443, true), None);
    let all = Proxy::from_vars(vars(&[("https_proxy", "h:1"), ("no_proxy", "*")])).expect("env");
    assert_eq!(all.for_target("anything", 1, true), None);
    let ports = Proxy::from_vars(vars(&[
        ("https_proxy", "h:1"),
        ("no_proxy", "svc.test:8443"),
    ]))
    .expect("env");
    assert!(ports.for_target("svc.test", 443, true).is_some());
    assert!(ports.for_target("svc.test", 8443, true).is_none());
    let none = Proxy::from_vars(vars(&[])).expect("env");
    assert_eq!(none.for_target("example.com", 443, true), None);
    let err = Proxy::from_vars(vars(&[("https_proxy", "gopher://u:hunter2@h:1")]))
        .expect_err("bad scheme");
    assert!(err.to_string().contains("https_proxy"), "{err}");
    assert!(!err.to_string().contains("hunter2"), "{err}");
}

#[test]
fn may_use_tls_is_true_only_where_an_https_proxy_can_be_used() {
    let fixed = |url: &str| Proxy::new(url).expect("url").may_use_tls();
    assert!(fixed("https://proxy.test"));
    assert!(!fixed("http://proxy.test"));
    assert!(!fixed("socks5h://proxy.test"));
    let env = |list| Proxy::from_vars(vars(list)).expect("env").may_use_tls();
    assert!(!env(&[
        ("http_proxy", "http://p:1"),
        ("https_proxy", "socks5://p:2")
    ]));
    assert!(env(&[("HTTPS_PROXY", "https://p")]));
    assert!(env(&[("ALL_PROXY", "https://p")]));
    assert!(!env(&[]));
}

#[test]
fn a_malformed_variable_is_an_error_naming_it_never_its_password() {
    for (name, value, host) in [
        ("HTTPS_PROXY", "http://bad host:1", "bad host"),
        ("https_proxy", "http://pro\nxy.test:1", "pro\\nxy.test"),
        (
            "HTTPS_PROXY",
            "http://u:Zq9x/Wv7y@proxy.test:1",
            "proxy.test",
        ),
        ("ALL_PROXY", "socks5://u:Zq9x@Wv7y@bad host:1", "bad host"),
        (
            "all_proxy",
            "http://u:Zq9x%zzWv7y@proxy.test:1",
            "proxy.test",
        ),
        ("http_proxy", "u:Zq9x://Wv7y@proxy.test:1", "proxy.test"),
        ("HTTPS_PROXY", "http://Zq9x:Wv7y", ""),
        ("ALL_PROXY", "http://[Zq9x:Wv7y]:1", ""),
    ] {
        let err = Proxy::from_vars(|n| (n == name).then(|| value.to_owned())).expect_err(value);
        let text = format!("{err} {err:?}");
        assert!(text.contains(name), "{value}: {text}");
        assert!(!text.contains('\n'), "{value}: {text}");
        assert!(text.contains(host), "{value}: {text}");
        for part in ["Zq9x", "Wv7y"] {
            assert!(!text.contains(part), "{value}: a credential leaked: {text}");
        }
    }
}

#[test]
fn a_proxy_host_is_a_name_or_an_ip_address() {
    for good in [
        "http://proxy-1.corp_x.test:1",
        "http://192.0.2.1:1",
        "http://[2001:db8::1]:1",
        "socks5://::1",
    ] {
        assert!(Proxy::new(good).is_ok(), "{good}");
    }
    for bad in [
        "http://bad host:1",
        "http://bad\u{0}host:1",
        "http://ba%64host:1",
        "http://[not-v6]:1",
        "http://a:b:c",
        "http://héte.test:1",
    ] {
        let err = Proxy::new(bad).expect_err(bad);
        assert!(matches!(err, Error::InvalidInput { .. }), "{err:?}");
    }
}
