//! The servers measured, each run as a child process of the bench (so its
//! memory, threads and descriptors are its own): thread-per-connection echo
//! servers on securenet's `serve`, on raw rustls, and Go's (built from
//! bench/go/echo.go). Each prints its port on its first line.

use std::io::{self, BufRead, BufReader, Read, Write};
use std::net::TcpListener;
use std::path::PathBuf;
use std::process::{Command, Stdio};
use std::sync::Arc;
use std::thread;
use std::time::Duration;

use rustls::{ServerConnection, StreamOwned};
use securenet::{BindOptions, Message, WebSocket, WebSocketOptions};

use crate::setup::{DEFAULT, KillOnDrop, Pki, our_contexts, raw_configs};

/// One server under test.
#[derive(Clone, Copy, PartialEq, Eq, Hash, Debug)]
pub enum Kind {
    /// `SecureListener::serve` with the default options (two descriptors
    /// per connection: the socket and the shutdown registry's duplicate).
    Ours,
    /// The same with `close_on_shutdown(false)`: one descriptor each.
    OursOneFd,
    /// The same with `thread_stack_size(256 KiB)`.
    OursSmallStack,
    /// Raw rustls: `StreamOwned` on a `std::thread` per connection.
    Raw,
    /// Go 1.19's crypto/tls, a goroutine per connection.
    Go,
    /// securenet's WebSocket server under `serve`.
    WsOurs,
    /// tungstenite's server over `StreamOwned`, a thread per connection.
    WsTungstenite,
    /// Node's `ws` server (.ci/ws_peer.mjs, permessage-deflate accepted):
    /// one event loop. Not in [`Kind::ALL`] (the scale rows).
    WsNode,
}

impl Kind {
    pub const ALL: [Kind; 7] = [
        Kind::Ours,
        Kind::OursOneFd,
        Kind::OursSmallStack,
        Kind::Raw,
        Kind::Go,
        Kind::WsOurs,
        Kind::WsTungstenite,
    ];

    pub fn name(self) -> &'static str {
        match self {
            Kind::Ours => "securenet",
            Kind::OursOneFd => "securenet-one-fd",
            Kind::OursSmallStack => "securenet-256k-stack",
            Kind::Raw => "rustls",
            Kind::Go => "go",
            Kind::WsOurs => "ws-securenet",
            Kind::WsTungstenite => "ws-tungstenite",
            Kind::WsNode => "ws-node",
        }
    }

    pub fn describe(self) -> &'static str {
        match self {
            Kind::Ours => "securenet serve(), defaults",
            Kind::OursOneFd => "securenet serve(), close_on_shutdown(false)",
            Kind::OursSmallStack => "securenet serve(), 256 KiB stacks",
            Kind::Raw => "rustls StreamOwned, thread each",
            Kind::Go => "Go 1.19 crypto/tls, goroutine each",
            Kind::WsOurs => "WebSocket: securenet accept + serve()",
            Kind::WsTungstenite => "WebSocket: tungstenite over StreamOwned",
            Kind::WsNode => "WebSocket: Node ws",
        }
    }

    pub fn websocket(self) -> bool {
        matches!(self, Kind::WsOurs | Kind::WsTungstenite | Kind::WsNode)
    }

    /// The reserved stack of each connection's thread, where there is one.
    pub fn stack_size(self) -> Option<usize> {
        match self {
            Kind::Go | Kind::WsNode => None,
            Kind::OursSmallStack => Some(SMALL_STACK),
            _ => Some(2 << 20),
        }
    }

    fn from_name(name: &str) -> Option<Kind> {
        Kind::ALL.into_iter().find(|k| k.name() == name)
    }
}

const SMALL_STACK: usize = 256 * 1024;

/// Starts `kind`'s server: the child and the port it announced on its
/// first line.
pub fn start(kind: Kind, pki: &Pki) -> Result<(KillOnDrop, u16), String> {
    let mut cmd = command(kind, pki)?;
    let mut child = KillOnDrop(
        cmd.stdout(Stdio::piped())
            .spawn()
            .map_err(|e| format!("start: {e}"))?,
    );
    let stdout = child.0.stdout.take().ok_or("no stdout")?;
    // Read apart, so that a child that never says its port fails the run
    // instead of hanging it.
    let (said, port_line) = std::sync::mpsc::channel();
    thread::spawn(move || {
        let mut line = String::new();
        let _ = said.send(BufReader::new(stdout).read_line(&mut line).map(|_| line));
    });
    let line = port_line
        .recv_timeout(Duration::from_secs(60))
        .map_err(|_| "no port announced within 60 s".to_owned())?
        .map_err(|e| format!("port: {e}"))?;
    // Node's peer says "listening on PORT".
    let port = line.split_whitespace().last().and_then(|p| p.parse().ok());
    let port = port.ok_or_else(|| format!("no port in {line:?}"))?;
    Ok((child, port))
}

/// The command that starts `kind`'s server, or why there is none.
fn command(kind: Kind, pki: &Pki) -> Result<Command, String> {
    let mut cmd = if kind == Kind::Go {
        Command::new(go_server()?)
    } else if kind == Kind::WsNode {
        node_server(pki)?
    } else {
        let mut cmd = Command::new(std::env::current_exe().map_err(|e| e.to_string())?);
        cmd.arg("--scale-server").arg(kind.name());
        cmd
    };
    pki.to_env(&mut cmd);
    Ok(cmd)
}

/// Node's ws server: .ci/ws_peer.mjs (the interoperability peer, which
/// echoes) copied beside a `node_modules/ws`, in SECURENET_BENCH_NODE_DIR
/// or else target/ci/node (where `.ci/run` installs it), with the
/// certificate written there.
fn node_server(pki: &Pki) -> Result<Command, String> {
    let root = PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("..");
    let dir = std::env::var_os("SECURENET_BENCH_NODE_DIR")
        .map_or_else(|| root.join("target/ci/node"), PathBuf::from);
    if !dir.join("node_modules/ws").is_dir() {
        return Err(format!(
            "Node's ws is not installed in {} (npm install ws@8 there, or set \
             SECURENET_BENCH_NODE_DIR to a directory that has it)",
            dir.display()
        ));
    }
    let write = |name: &str, text: &str| {
        let path = dir.join(name);
        std::fs::write(&path, text).map_err(|e| format!("{}: {e}", path.display()))?;
        Ok::<_, String>(path)
    };
    let script = std::fs::read_to_string(root.join(".ci/ws_peer.mjs"))
        .map_err(|e| format!(".ci/ws_peer.mjs: {e}"))?;
    let script = write("ws_peer.mjs", &script)?;
    let cert = write("bench-cert.pem", &pki.cert)?;
    let key = write("bench-key.pem", &pki.key)?;
    let mut cmd = Command::new("node");
    cmd.arg(script).arg(cert).arg(key).arg("on");
    Ok(cmd)
}

/// Builds bench/go/echo.go once (with the `go` on PATH) into the target
/// directory.
fn go_server() -> Result<PathBuf, String> {
    let source = PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("go/echo.go");
    let exe = std::env::current_exe().map_err(|e| e.to_string())?;
    let out = exe.with_file_name("securenet-scale-go-echo");
    let modified = |p: &PathBuf| std::fs::metadata(p).and_then(|m| m.modified()).ok();
    if modified(&out).is_some_and(|built| modified(&source).is_some_and(|src| built >= src)) {
        return Ok(out);
    }
    let status = Command::new("go")
        .arg("build")
        .arg("-o")
        .arg(&out)
        .arg(&source)
        .status()
        .map_err(|e| format!("go build: {e} (install Go: Debian's golang-go)"))?;
    if !status.success() {
        return Err(format!("go build {} failed: {status}", source.display()));
    }
    Ok(out)
}

/// Runs the `--scale-server KIND` child; false if `args` asks for none.
pub fn run_child(args: &[String]) -> bool {
    let Some(i) = args.iter().position(|a| a == "--scale-server") else {
        return false;
    };
    let kind = args
        .get(i + 1)
        .and_then(|n| Kind::from_name(n))
        .expect("--scale-server KIND");
    let pki = Pki::from_env().expect("the parent hands the PKI over");
    match kind {
        Kind::Raw | Kind::WsTungstenite => raw_server(&pki, kind.websocket()),
        Kind::Go | Kind::WsNode => {
            unreachable!("Go's and Node's servers are programs of their own")
        }
        _ => our_server(&pki, kind),
    }
    true
}

fn announce(port: u16) {
    println!("{port}");
    io::stdout().flush().expect("stdout");
}

/// Echoes what `s` sends until it ends, 4 KiB at a time (the buffer on the
/// stack, as a handler would have it).
fn echo(s: &mut (impl Read + Write)) -> io::Result<()> {
    let mut buf = [0u8; 4096];
    loop {
        let n = s.read(&mut buf)?;
        if n == 0 {
            return Ok(());
        }
        s.write_all(&buf[..n])?;
        s.flush()?;
    }
}

fn our_server(pki: &Pki, kind: Kind) {
    let (_, server) = our_contexts(pki, DEFAULT);
    let mut options = BindOptions::new().close_on_shutdown(kind != Kind::OursOneFd);
    if kind == Kind::OursSmallStack {
        options = options.thread_stack_size(SMALL_STACK);
    }
    let listener = options.bind("127.0.0.1", 0, &server).expect("bind");
    announce(listener.port());
    if kind == Kind::WsOurs {
        let ws_options = WebSocketOptions::new();
        listener
            .serve(move |stream| {
                let mut ws = WebSocket::accept(stream, &ws_options)?;
                loop {
                    match ws.read()? {
                        Message::Text(t) => ws.send_text(&t)?,
                        Message::Binary(b) => ws.send_binary(&b)?,
                        Message::Close(_) => return Ok::<(), securenet::Error>(()),
                        _ => {}
                    }
                }
            })
            .expect("serve");
    } else {
        listener
            .serve(|mut stream| echo(&mut stream))
            .expect("serve");
    }
}

fn raw_server(pki: &Pki, websocket: bool) {
    let (_, config) = raw_configs(pki, DEFAULT);
    let listener = TcpListener::bind("127.0.0.1:0").expect("bind");
    announce(listener.local_addr().expect("addr").port());
    loop {
        let sock = match listener.accept() {
            Ok((sock, _)) => sock,
            Err(e) => {
                // Out of descriptors: wait rather than spin.
                eprintln!("rustls server: accept: {e}");
                thread::sleep(Duration::from_millis(100));
                continue;
            }
        };
        let _ = sock.set_nodelay(true);
        let config = Arc::clone(&config);
        let spawned = thread::Builder::new().spawn(move || {
            let Ok(conn) = ServerConnection::new(config) else {
                return;
            };
            let mut tls = StreamOwned::new(conn, sock);
            if websocket {
                let Ok(mut ws) = tungstenite::accept(tls) else {
                    return;
                };
                while let Ok(m) = ws.read() {
                    if m.is_close() {
                        break;
                    }
                    if (m.is_text() || m.is_binary()) && ws.send(m).is_err() {
                        break;
                    }
                }
            } else {
                let _ = echo(&mut tls);
            }
        });
        if let Err(e) = spawned {
            eprintln!("rustls server: spawn: {e}");
        }
    }
}
