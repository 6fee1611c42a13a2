//! WebSocket URLs carrying `user:password@`: the password is sent as
//! `Authorization: Basic` and shows in no message or `Debug`, whatever the
//! URL looks like, well-formed or not.

mod common;

use std::io::Write;
use std::io::{self, Read};

use base64ct::{Base64, Encoding};
use common::IO_TIMEOUT;
use common::ws::*;
use securenet::{
    CompressionOptions, ConnectOptions, Error, Rejection, UpgradeResponse, WebSocketOptions,
};

/// The two halves of every password below: neither may show.
const SECRET: [&str; 2] = ["Zq9x", "Wv7y"];

fn assert_hidden(url: &str, text: &str) {
    for part in SECRET {
        assert!(!text.contains(part), "{url:?}: a credential leaked: {text}");
    }
}

fn options() -> WebSocketOptions {
    WebSocketOptions::new()
        .compression(CompressionOptions::disabled())
        .upgrade_timeout(IO_TIMEOUT)
        .connect_options(
            ConnectOptions::new()
                .timeout(IO_TIMEOUT)
                .handshake_timeout(IO_TIMEOUT),
        )
}

/// A stream that takes what is written and reads as closed: the upgrade
/// over it fails after the URL has been used, with no socket.
struct Closed(Vec<u8>);

impl Read for Closed {
    fn read(&mut self, _: &mut [u8]) -> io::Result<usize> {
        Ok(0)
    }
}

impl Write for Closed {
    fn write(&mut self, b: &[u8]) -> io::Result<usize> {
        self.0.extend_from_slice(b);
        Ok(b.len())
    }
    fn flush(&mut self) -> io::Result<()> {
        Ok(())
    }
}

#[test]
fn a_malformed_url_never_shows_its_password() {
    for url in [
        "wss://u:Zq9xWv7y@h#frag",
        "wss://u:Zq9x#Wv7y@h/",
        "ws://u:Zq9x/Wv7y@h/",
        "ws://u:Zq9x?Wv7y@h/",
        "ws://u:Zq9x%zzWv7y@h/",
        "ws://u:Zq9x%ffWv7y@h/",
        "ws://u:Zq9xWv7y@h:99999/",
        "ws://u:Zq9xWv7y@h:0/",
        "ws://u:Zq9xWv7y@h:abc/",
        "ws://u:Zq9xWv7y@/",
        "ws://u:Zq9xWv7y@:80/",
        "ws://u:Zq9xWv7y@h/a b",
        "ws://u:Zq9x Wv7y@h/",
        "wss://u:Zq9x\nWv7y@h/",
        "http://u:Zq9xWv7y@h/",
        "ftp://Zq9x:Wv7y@h/",
        "ws://u:Zq9xWv7y@[::1/",
        "ws://u:Zq9xWv7y@h/?q#",
        // The `@host` forgotten: the password reads as a port.
        "ws://Zq9x:Wv7y",
        "ws://Zq9x:Wv7y/",
        "ws://user:Zq9x:Wv7y@h:abc/",
        "Zq9x:Wv7y@h",
        "ws:/u:Zq9xWv7y@h/",
    ] {
        let errors = [
            options().connect(url).expect_err(url),
            options()
                .connect_over(Closed(Vec::new()), url)
                .expect_err(url),
        ];
        for err in errors {
            assert!(
                matches!(err, Error::InvalidInput { .. }),
                "{url:?}: {err:?}"
            );
            assert_hidden(url, &format!("{err} {err:?}"));
        }
    }
    // A password of digits read as a port is not echoed either.
    let err = options()
        .connect("ws://user:987654")
        .expect_err("port past 65535");
    assert!(
        !format!("{err} {err:?}").contains("987654"),
        "a credential leaked: {err}"
    );
}

#[test]
fn a_well_formed_url_sends_its_password_and_shows_it_nowhere() {
    // `/`, `?`, `#`, `@` and `:` in a password, percent-encoded.
    for (userinfo, expected) in [
        ("u:Zq9xWv7y", "u:Zq9xWv7y"),
        ("us%40er:Zq9x%2F%3F%23%40Wv7y", "us@er:Zq9x/?#@Wv7y"),
        ("Zq9x:Wv7y%3A", "Zq9x:Wv7y:"),
        // A ':' in the user name is sent as is (RFC 7617 has no escape).
        ("Zq9x%3AWv7y", "Zq9x:Wv7y:"),
    ] {
        // Refused with 401: the error names the status, not the URL's user info.
        let (url, server) = fake(|req, s| {
            let _ = s.write_all(b"HTTP/1.1 401 Unauthorized\r\nContent-Length: 6\r\n\r\nno way");
            req
        });
        let url = url.replace("ws://", &format!("ws://{userinfo}@"));
        let err = options().connect(&url).expect_err("401");
        assert!(
            matches!(err, Error::HttpStatus { status: 401, .. }),
            "{err:?}"
        );
        assert_hidden(&url, &format!("{err} {err:?}"));
        let req = server.join().expect("server");
        let basic = format!("Basic {}", Base64::encode_string(expected.as_bytes()));
        assert_eq!(request_header(&req, "authorization"), [basic.as_str()]);

        // Accepted: neither the socket's Debug nor its options' shows it.
        let (url, server) = fake(|req, s| {
            let _ = s.write_all(upgrade(&req, "").as_bytes());
        });
        let url = url.replace("ws://", &format!("ws://{userinfo}@"));
        let options = options();
        let ws = options.connect(&url).expect("connect");
        assert_hidden(&url, &format!("{ws:?} {options:?}"));
        drop(ws);
        server.join().expect("server");

        // Over a stream that closes: the upgrade's error shows nothing.
        let mut sink = Closed(Vec::new());
        let wss = url.replace("ws://", "wss://");
        let err = options.connect_over(&mut sink, &wss).expect_err("closed");
        assert_hidden(&wss, &format!("{err} {err:?}"));
        let sent = String::from_utf8(sink.0).expect("utf-8 request");
        assert_eq!(request_header(&sent, "authorization"), [basic.as_str()]);
        assert!(!request_header(&sent, "host")[0].contains('@'), "{sent}");
    }
}

#[test]
fn credential_headers_show_in_no_debug_or_error() {
    let options = options()
        .header("Authorization", "Bearer Zq9xWv7y")
        .header("Cookie", "session=Zq9xWv7y")
        .header("X-Api-Token", "Zq9xWv7y")
        .header("X-Plain", "visible");
    let text = format!("{options:?}");
    assert_hidden("options", &text);
    assert!(text.contains("visible"), "{text}");
    let response = UpgradeResponse::new().header("Set-Cookie", "session=Zq9xWv7y");
    let rejection = Rejection::new(401).header("X-Session-Token", "Zq9xWv7y");
    assert_hidden("server side", &format!("{response:?} {rejection:?}"));
    // Kubernetes' token subprotocol: hidden, the plain one shown.
    let offered = WebSocketOptions::new().protocols(&[
        "base64.channel.k8s.io",
        "base64url.bearer.authorization.k8s.io.Zq9xWv7y",
    ]);
    let text = format!("{offered:?}");
    assert_hidden("protocols", &text);
    assert!(text.contains("base64.channel.k8s.io"), "{text}");
    // A token read from a file with its line break: refused, not echoed.
    let bad = options.header("Authorization", "Bearer Zq9xWv7y\n");
    let err = bad
        .connect_over(Closed(Vec::new()), "ws://h/")
        .expect_err("line break");
    assert!(matches!(err, Error::InvalidInput { .. }), "{err:?}");
    assert_hidden("header", &format!("{err} {err:?}"));
}
