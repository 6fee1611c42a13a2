//! What hostile connections cost: 50 WebSocket peers (client side and
//! server side) that announce a 60 MiB frame and send nothing must not
//! make us commit memory for it. One test in its own binary, so that no
//! other test's allocations are counted.

mod common;

use std::io::Write;
use std::net::{TcpListener, TcpStream};
use std::thread;
use std::time::Duration;

use common::ws::{client_request, header_announcing, upgrade};
use securenet::{CompressionOptions, DEFAULT_MAX_MESSAGE_SIZE, WebSocket, WebSocketOptions};

const PEERS: usize = 50;
const ANNOUNCED: u64 = 60 << 20;
const WAIT: Duration = Duration::from_millis(100);

/// The process's resident memory in KiB, where `/proc` has it.
fn resident_kib() -> Option<u64> {
    let status = std::fs::read_to_string("/proc/self/status").ok()?;
    let line = status.lines().find(|l| l.starts_with("VmRSS:"))?;
    line.split_whitespace().nth(1)?.parse().ok()
}

/// Caps that let a 60 MiB frame in: only its bytes, as they come, count.
fn options() -> WebSocketOptions {
    WebSocketOptions::new()
        .compression(CompressionOptions::disabled())
        .max_frame_size(DEFAULT_MAX_MESSAGE_SIZE)
}

fn assert_timed_out(r: securenet::Result<securenet::Message>) {
    let err = r.expect_err("nothing but a header was sent");
    assert!(err.is_timeout(), "{err:?}");
}

/// Our clients against a fake server that announces 60 MiB per connection.
fn client_side() -> Vec<WebSocket> {
    let listener = TcpListener::bind("127.0.0.1:0").expect("bind");
    let url = format!(
        "ws://127.0.0.1:{}/",
        listener.local_addr().expect("addr").port()
    );
    let server = thread::spawn(move || {
        let mut held = Vec::new();
        for _ in 0..PEERS {
            let (mut s, _) = listener.accept().expect("accept");
            common::tcp_timeouts(&s);
            let request = common::ws::read_request(&mut s);
            s.write_all(upgrade(&request, "").as_bytes())
                .expect("upgrade");
            s.write_all(&header_announcing(0x82, ANNOUNCED, None))
                .expect("header");
            held.push(s);
        }
        held
    });
    let mut sockets = Vec::new();
    for _ in 0..PEERS {
        let mut ws = options().connect(&url).expect("connect");
        ws.set_read_timeout(Some(WAIT)).expect("timeout");
        assert_timed_out(ws.read());
        sockets.push(ws);
    }
    drop(server.join().expect("server"));
    sockets
}

/// `WebSocket::accept` against raw clients that announce 60 MiB.
fn server_side() -> (Vec<WebSocket<TcpStream>>, Vec<TcpStream>) {
    let listener = TcpListener::bind("127.0.0.1:0").expect("bind");
    let port = listener.local_addr().expect("addr").port();
    let mut clients = Vec::new();
    let mut sockets = Vec::new();
    for _ in 0..PEERS {
        let mut c = TcpStream::connect(("127.0.0.1", port)).expect("connect");
        common::tcp_timeouts(&c);
        let mut hello = client_request("").into_bytes();
        hello.extend(header_announcing(0x82, ANNOUNCED, Some([1, 2, 3, 4])));
        c.write_all(&hello).expect("request");
        clients.push(c);
        let (s, _) = listener.accept().expect("accept");
        s.set_read_timeout(Some(WAIT)).expect("timeout");
        s.set_write_timeout(Some(common::IO_TIMEOUT))
            .expect("timeout");
        let mut ws = WebSocket::accept(s, &options()).expect("accept");
        assert_timed_out(ws.read());
        sockets.push(ws);
    }
    (sockets, clients)
}

#[test]
fn fifty_peers_announcing_60_mib_commit_almost_nothing() {
    let Some(before) = resident_kib() else {
        common::skip(
            "fifty_peers_announcing_60_mib_commit_almost_nothing",
            "no /proc/self/status here to read resident memory from",
        );
        return;
    };
    let clients = client_side();
    let after_clients = resident_kib().expect("rss");
    let servers = server_side();
    let after_servers = resident_kib().expect("rss");
    let (c, s) = (
        after_clients.saturating_sub(before),
        after_servers.saturating_sub(after_clients),
    );
    eprintln!(
        "{PEERS} client-side and {PEERS} server-side connections announcing 60 MiB: \
         +{c} KiB and +{s} KiB resident"
    );
    assert!(c < 10 * 1024, "client side: +{c} KiB");
    assert!(s < 10 * 1024, "server side: +{s} KiB");
    drop((clients, servers));
}
