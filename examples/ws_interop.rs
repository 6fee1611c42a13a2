//! Checks the WebSocket client against a peer server written by others
//! (the CI's Python websockets and Node ws servers, .ci/ws_peer.*).
//!
//! ```text
//! cargo run --example ws_interop -- wss://localhost:PORT CA_FILE on|on9|off [PROXY_URL]
//! ```
//!
//! `on` compresses at the default level (1), `on9` at level 9.
//!
//! Prints one line per check; exits non-zero if any fails.

use securenet::{
    CompressionOptions, ConnectOptions, Error, Message, Proxy, SecurityContext, WebSocketOptions,
};

fn main() -> Result<(), Box<dyn std::error::Error>> {
    let args: Vec<String> = std::env::args().skip(1).collect();
    let (base, ca, compression, proxy) = match args.as_slice() {
        [base, ca, compression] => (base, ca, compression, None),
        [base, ca, compression, proxy] => (base, ca, compression, Some(Proxy::new(proxy)?)),
        _ => {
            return Err(
                "usage: ws_interop wss://localhost:PORT CA_FILE on|on9|off [PROXY_URL]".into(),
            );
        }
    };
    let mut ctx = SecurityContext::empty();
    ctx.set_trusted_certificates(ca)?;
    let mut connect = ConnectOptions::new().context(ctx);
    if let Some(proxy) = proxy {
        connect = connect.proxy(proxy);
    }
    let options = WebSocketOptions::new()
        .connect_options(connect)
        .compression(match compression.as_str() {
            "on" => CompressionOptions::default(),
            "on9" => CompressionOptions::default().level(9),
            _ => CompressionOptions::disabled(),
        });
    let compressing = compression.starts_with("on");
    let mut failed = 0;
    let mut check = |ok: bool, what: &str| {
        println!("{}: {what}", if ok { "ok" } else { "FAILED" });
        if !ok {
            failed += 1;
        }
    };

    let url = base.replacen("wss://", "wss://user:pw@", 1) + "/chat";
    let mut ws = options
        .clone()
        .protocols(&["chat.v2", "chat.v1"])
        .header("Origin", "https://example.com")
        .header("X-List", "a")
        .header("X-List", "b")
        .connect(&url)?;
    check(
        ws.protocol() == Some("chat.v1"),
        "the server picked chat.v1 from [chat.v2, chat.v1]",
    );
    check(
        ws.extensions()
            .is_some_and(|e| e.contains("permessage-deflate"))
            == compressing,
        &format!("permessage-deflate {compression}: {:?}", ws.extensions()),
    );
    ws.send_text("headers")?;
    let headers = match ws.read()? {
        Message::Text(t) => t,
        other => format!("{other:?}"),
    };
    check(
        headers.contains("\"a, b\"") || headers.contains("[\"a\", \"b\"]"),
        &format!("repeated headers arrive in order: {headers}"),
    );
    check(
        headers.contains("Basic dXNlcjpwdw=="),
        "user info became Basic auth",
    );
    check(headers.contains("https://example.com"), "Origin arrived");

    let text = "interop ".repeat(20_000);
    ws.send_text(&text)?;
    check(ws.read()? == Message::Text(text), "160 KB text echoed");
    let binary: Vec<u8> = (0..1_000_000u32).map(|i| (i % 7) as u8).collect();
    ws.send_binary(&binary)?;
    check(ws.read()? == Message::Binary(binary), "1 MB binary echoed");
    ws.send_text("")?;
    check(
        ws.read()? == Message::Text(String::new()),
        "empty message echoed",
    );
    ws.send_text("close:4321:done")?;
    let close = ws.read()?;
    check(
        close == Message::Close(Some((4321, "done".into()))),
        &format!("server close code and reason: {close:?}"),
    );
    check(
        ws.close_code() == Some(4321),
        "close_code() is the server's",
    );

    let mut ws = options
        .clone()
        .protocols(&["chat.v1"])
        .connect(&format!("{base}/echo"))?;
    ws.close(Some((4000, "client bye")))?;
    check(
        ws.close_code() == Some(4000),
        "client-initiated close completes",
    );

    match options.connect(&format!("{base}/401")) {
        Err(Error::HttpStatus { status, body, .. }) => check(
            status == 401 && String::from_utf8_lossy(&body).contains("no entry"),
            &format!("401 refused with its body ({status})"),
        ),
        other => check(false, &format!("401 expected, got {other:?}")),
    }
    if failed > 0 {
        return Err(format!("{failed} checks failed").into());
    }
    Ok(())
}
