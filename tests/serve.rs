//! `serve` and `incoming` under pressure: stopped from another thread,
//! waiting (with a bound) for running handlers, clients stalled in their
//! handshake under `max_connections`, and running out of descriptors (in a
//! child process with a lowered `RLIMIT_NOFILE`).

mod common;

use std::io::{BufRead, BufReader, Read, Write};
use std::net::TcpStream;
use std::process::{Command, Stdio};
use std::sync::mpsc;
use std::thread;
use std::time::{Duration, Instant};

use common::{IO_TIMEOUT, client, with_timeouts};
use securenet::{BindOptions, SecureListener, SecureStream};
use std::io::ErrorKind;

/// Echoes what it reads until the client closes.
fn echo(mut s: SecureStream) -> securenet::Result<()> {
    with_timeouts(&mut s);
    let mut buf = [0u8; 1024];
    loop {
        let n = s.read(&mut buf)?;
        if n == 0 {
            return s.close();
        }
        s.write_all(&buf[..n])?;
    }
}

fn echo_once(port: u16, pki: &securenet::testing::TestPki) -> securenet::Result<Duration> {
    let start = Instant::now();
    let mut c = client(pki.trust_context()).connect("localhost", port)?;
    with_timeouts(&mut c);
    c.write_all(b"ping")?;
    let mut b = [0u8; 4];
    c.read_exact(&mut b)?;
    assert_eq!(&b, b"ping");
    let took = start.elapsed();
    c.close()?;
    Ok(took)
}

fn bind(options: BindOptions, pki: &securenet::testing::TestPki) -> SecureListener {
    options
        .handshake_timeout(IO_TIMEOUT)
        .bind("127.0.0.1", 0, &pki.server_context())
        .expect("bind")
}

#[test]
fn stop_ends_serve_and_incoming_promptly() {
    let pki = common::pki();
    let listener = bind(BindOptions::new(), &pki);
    let port = listener.port();
    let stop = listener.stop_handle();
    let serving = thread::spawn(move || {
        let r = listener.serve(echo);
        (r, listener)
    });
    echo_once(port, &pki).expect("served");
    let start = Instant::now();
    stop.stop();
    let (r, listener) = serving.join().expect("serve");
    assert!(
        start.elapsed() < Duration::from_secs(1),
        "{:?}",
        start.elapsed()
    );
    r.expect("serve returns Ok once stopped");
    assert!(stop.is_stopped());
    let err = listener.accept().expect_err("stopped");
    assert_eq!(err.io_kind(), ErrorKind::NotConnected, "{err}");
    assert!(err.to_string().contains("stopped"), "{err}");

    let listener = bind(BindOptions::new(), &pki);
    let stop = listener.stop_handle();
    let iterating = thread::spawn(move || listener.incoming().count());
    stop.stop();
    assert_eq!(iterating.join().expect("incoming"), 0, "incoming ended");
}

#[test]
fn stop_and_wait_waits_for_running_handlers_within_its_bound() {
    let pki = common::pki();
    let listener = bind(BindOptions::new(), &pki);
    let port = listener.port();
    let stop = listener.stop_handle();
    let serving = thread::spawn(move || listener.serve(echo));
    let mut c = client(pki.trust_context())
        .connect("localhost", port)
        .expect("connect");
    with_timeouts(&mut c);
    c.write_all(b"hi").expect("write");
    let mut b = [0u8; 2];
    c.read_exact(&mut b).expect("echo");
    assert_eq!(stop.running(), 1);
    let start = Instant::now();
    assert!(
        !stop.stop_and_wait(Duration::from_millis(200)),
        "the handler still runs"
    );
    let waited = start.elapsed();
    assert!(waited >= Duration::from_millis(200) && waited < Duration::from_secs(2));
    serving.join().expect("serve").expect("stopped");
    c.close().expect("close");
    assert!(stop.stop_and_wait(IO_TIMEOUT), "the handler returned");
    assert_eq!(stop.running(), 0);
}

#[test]
fn clients_stalled_in_their_handshake_do_not_keep_a_real_one_out() {
    const MAX: usize = 50;
    let pki = common::pki();
    let (errors_tx, errors_rx) = mpsc::channel::<String>();
    let errors_tx = std::sync::Mutex::new(errors_tx);
    let listener = bind(
        BindOptions::new()
            .max_connections(MAX)
            .on_client_error(move |e, _| {
                let _ = errors_tx.lock().expect("errors").send(e.to_string());
            }),
        &pki,
    );
    let port = listener.port();
    let stop = listener.stop_handle();
    let serving = thread::spawn(move || listener.serve(echo));
    // Fifty clients that send the start of a ClientHello, then nothing.
    let stalled: Vec<TcpStream> = (0..MAX)
        .map(|_| {
            let mut s = TcpStream::connect(("127.0.0.1", port)).expect("connect");
            common::tcp_timeouts(&s);
            s.write_all(&[22, 3, 1, 0x02, 0x00, 1])
                .expect("half a hello");
            s
        })
        .collect();
    for round in 0..3 {
        let took = echo_once(port, &pki).expect("a real client is served");
        println!("real client {round}: served in {took:?} with {MAX} stalled");
        assert!(took < Duration::from_millis(100), "round {round}: {took:?}");
    }
    // A stalled client dropped to make room is reported as such (how many
    // are depends on when the real clients' places were freed).
    let e = errors_rx
        .recv_timeout(IO_TIMEOUT)
        .expect("an eviction report");
    assert!(e.contains("to make room"), "{e}");
    drop(stalled);
    assert!(stop.stop_and_wait(IO_TIMEOUT));
    serving.join().expect("serve").expect("stopped");
}

const CHILD: &str = "SECURENET_TEST_EMFILE_CHILD";

/// The child's side of the test below: serves with at most 64 descriptors,
/// printing its port and each accept error report.
fn emfile_child() {
    let pki = common::pki();
    let listener = BindOptions::new()
        .handshake_timeout(Duration::from_secs(30))
        .on_client_error(|_, _| {})
        .on_accept_error(|e| println!("ACCEPT ERROR {e}"))
        .bind("127.0.0.1", 0, &pki.server_context())
        .expect("bind");
    std::fs::write(
        std::env::var(CHILD).expect("pki path"),
        format!("{}\n{}", pki.ca_pem(), listener.port()),
    )
    .expect("write pki");
    println!("PORT {}", listener.port());
    let r = listener.serve(echo);
    println!("SERVE RETURNED {r:?}");
}

#[test]
fn serve_survives_running_out_of_descriptors() {
    if let Ok(_path) = std::env::var(CHILD) {
        return emfile_child();
    }
    if !cfg!(target_os = "linux") {
        common::skip(
            "serve_survives_running_out_of_descriptors",
            "the descriptor limit is lowered with the Linux shell's ulimit",
        );
        return;
    }
    let dir = std::env::temp_dir().join(format!("securenet-emfile-{}", std::process::id()));
    let exe = std::env::current_exe().expect("test binary");
    let mut child = Command::new("sh")
        .arg("-c")
        .arg("ulimit -n 64 && exec \"$0\" serve_survives_running_out_of_descriptors --exact --nocapture --test-threads 1")
        .arg(&exe)
        .env(CHILD, &dir)
        .stdout(Stdio::piped())
        .stderr(Stdio::inherit())
        .spawn()
        .expect("child");
    let (lines_tx, lines_rx) = mpsc::channel::<String>();
    let out = child.stdout.take().expect("stdout");
    thread::spawn(move || {
        for line in BufReader::new(out).lines().map_while(Result::ok) {
            let _ = lines_tx.send(line);
        }
    });
    // What follows `marker` on the child's next line that has it (the test
    // harness may print before it on the same line).
    let wait_for = |marker: &str| -> String {
        loop {
            let line = lines_rx.recv_timeout(IO_TIMEOUT).expect("child output");
            if let Some(i) = line.find(marker) {
                return line[i + marker.len()..].to_owned();
            }
        }
    };
    let port: u16 = wait_for("PORT ").trim().parse().expect("port");
    let written = std::fs::read_to_string(&dir).expect("pki");
    let (ca, _) = written.rsplit_once('\n').expect("ca and port");
    let mut trust = securenet::SecurityContext::empty();
    trust
        .set_trusted_certificates_bytes(ca.as_bytes())
        .expect("ca");
    // More connections than the child has descriptors: accept fails.
    let flood: Vec<TcpStream> = (0..120)
        .filter_map(|_| TcpStream::connect(("127.0.0.1", port)).ok())
        .collect();
    let report = wait_for("ACCEPT ERROR");
    assert!(report.contains("Too many open files"), "{report}");
    assert!(
        child.try_wait().expect("child").is_none(),
        "the server is still up"
    );
    drop(flood);
    // Descriptors free up as the flood's handshakes fail; a real client,
    // queued behind the rest of the flood, is then served.
    echo_with(&trust, port).expect("served after the flood");
    let _ = child.kill();
    let _ = child.wait();
    let _ = std::fs::remove_file(&dir);
    let extra: Vec<String> = lines_rx.try_iter().collect();
    assert!(
        !extra.iter().any(|l| l.contains("SERVE RETURNED")),
        "serve gave up: {extra:?}"
    );
}

fn echo_with(trust: &securenet::SecurityContext, port: u16) -> securenet::Result<()> {
    let mut c = client(trust.clone()).connect("localhost", port)?;
    with_timeouts(&mut c);
    c.write_all(b"ping")?;
    let mut b = [0u8; 4];
    c.read_exact(&mut b)?;
    c.close()
}
