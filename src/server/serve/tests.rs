//! `serve`'s waits and reports: accept errors sorted, no room for a
//! thread, a thread that cannot start.

use super::*;

#[test]
fn running_out_waits_and_a_broken_listener_ends() {
    let kind = |k: io::ErrorKind| classify(&io::Error::from(k));
    assert!(matches!(
        kind(io::ErrorKind::OutOfMemory),
        Failure::Exhausted
    ));
    assert!(matches!(
        kind(io::ErrorKind::ConnectionReset),
        Failure::Transient
    ));
    assert!(matches!(kind(io::ErrorKind::InvalidInput), Failure::Fatal));
}

/// With no room for a thread, `serve` waits before accepting: a client
/// stays in the backlog (not accepted and closed, as before), and
/// `on_accept_error` hears of it once, naming the limit; when the room
/// is read again (a second later) the clients are served.
#[test]
fn no_room_for_a_thread_waits_before_accepting() {
    use std::io::{Read, Write};
    use std::sync::mpsc;
    let pki = crate::testing::TestPki::new(&["localhost"]).expect("pki");
    let (reported, reports) = mpsc::channel();
    let listener = crate::BindOptions::new()
        .on_accept_error(move |e| {
            let _ = reported.send(e.to_string());
        })
        .bind("127.0.0.1", 0, &pki.server_context())
        .expect("bind");
    let port = listener.port();
    let stop = listener.stop_handle();
    let mut waiting = std::net::TcpStream::connect(("127.0.0.1", port)).expect("connect");
    waiting
        .set_read_timeout(Some(Duration::from_millis(200)))
        .expect("timeout");
    let (ended_tx, ended) = mpsc::channel();
    // Stops serve however the scope ends (a failed assertion included),
    // so that the scope's join cannot hang the test.
    struct StopOnDrop(crate::StopHandle);
    impl Drop for StopOnDrop {
        fn drop(&mut self) {
            self.0.stop();
        }
    }
    thread::scope(|s| {
        let _stop = StopOnDrop(stop.clone());
        s.spawn(|| {
            let served = listener.serve_in(|_| Ok::<(), Error>(()), maps::Room::taken(), spawn);
            let _ = ended_tx.send(served.is_ok());
        });
        let report = reports
            .recv_timeout(Duration::from_secs(10))
            .expect("on_accept_error hears of it");
        assert!(report.contains("vm.max_map_count"), "{report}");
        // Bytes that are no ClientHello: a server that had accepted
        // would answer them with an alert or a close.
        waiting.write_all(b"GET / HTTP/1.0\r\n\r\n").expect("write");
        let got = waiting.read(&mut [0u8; 1]).map_err(|e| e.kind());
        assert!(
            matches!(
                got,
                Err(io::ErrorKind::WouldBlock | io::ErrorKind::TimedOut)
            ),
            "the client waits, neither closed nor answered: {got:?}"
        );
        let served = crate::ConnectOptions::new()
            .context(pki.trust_context())
            .server_name("localhost")
            .timeout(Duration::from_secs(10))
            .connect("127.0.0.1", port);
        assert!(served.is_ok(), "served once there is room: {served:?}");
        stop.stop();
        let ended = ended.recv_timeout(Duration::from_secs(10));
        assert_eq!(ended, Ok(true), "serve ends on the stop");
    });
    assert!(reports.try_recv().is_err(), "reported once");
}

#[test]
fn a_thread_that_cannot_start_closes_its_connection_and_waits() {
    use std::sync::atomic::{AtomicUsize, Ordering};
    use std::sync::mpsc;
    static STARTS: AtomicUsize = AtomicUsize::new(0);
    // The first thread cannot start (as at kernel.threads-max, where
    // pthread_create says EAGAIN); later ones can.
    fn first_fails(builder: thread::Builder, job: Job) -> io::Result<()> {
        if STARTS.fetch_add(1, Ordering::SeqCst) == 0 {
            return Err(io::Error::new(
                io::ErrorKind::WouldBlock,
                "Resource temporarily unavailable",
            ));
        }
        spawn(builder, job)
    }
    let pki = crate::testing::TestPki::new(&["localhost"]).expect("pki");
    let (shortage, shortages) = mpsc::channel();
    let (failed, failures) = mpsc::channel();
    let listener = crate::BindOptions::new()
        .on_accept_error(move |e| {
            let _ = shortage.send(e.to_string());
        })
        .on_client_error(move |e, _| {
            let _ = failed.send(e.to_string());
        })
        .bind("127.0.0.1", 0, &pki.server_context())
        .expect("bind");
    let port = listener.port();
    let stop = listener.stop_handle();
    let connect = || {
        crate::ConnectOptions::new()
            .context(pki.trust_context())
            .server_name("localhost")
            .timeout(Duration::from_secs(10))
            .handshake_timeout(Duration::from_secs(10))
            .connect("127.0.0.1", port)
    };
    struct StopOnDrop(crate::StopHandle);
    impl Drop for StopOnDrop {
        fn drop(&mut self) {
            self.0.stop();
        }
    }
    thread::scope(|s| {
        let _stop = StopOnDrop(stop.clone());
        let serving =
            s.spawn(|| listener.serve_in(|_| Ok::<(), Error>(()), maps::Room::new(), first_fails));
        // Its connection is closed before the handshake (reset, as the
        // hello is unread): the client is told, not left waiting.
        let refused = connect().map(drop).map_err(|e| e.to_string());
        let told =
            |e: &String| e.contains("handshake") && (e.contains("reset") || e.contains("closed"));
        assert!(refused.as_ref().is_err_and(told), "{refused:?}");
        let failure = failures.recv_timeout(Duration::from_secs(10));
        assert!(
            failure
                .as_ref()
                .is_ok_and(|e| e.contains("cannot start a thread")),
            "{failure:?}"
        );
        let wait = shortages.recv_timeout(Duration::from_secs(10));
        let on_threads = |e: &String| e.contains("cannot start a thread for a connection");
        assert!(wait.as_ref().is_ok_and(on_threads), "{wait:?}");
        // Then it goes on: the next client is served.
        let served = connect();
        assert!(served.is_ok(), "{served:?}");
        stop.stop();
        assert!(
            serving.join().is_ok_and(|r| r.is_ok()),
            "serve ends on the stop"
        );
    });
    assert!(STARTS.load(Ordering::SeqCst) >= 2);
    // The wait that follows is told as the shortage of threads it is,
    // not as one of memory mappings.
    let later: Vec<String> = shortages.try_iter().collect();
    assert!(
        later.iter().all(|e| !e.contains("max_map_count")),
        "{later:?}"
    );
}

#[cfg(unix)]
#[test]
fn unix_error_codes() {
    let code = |c: i32| classify(&io::Error::from_raw_os_error(c));
    assert!(matches!(code(libc::EMFILE), Failure::Exhausted));
    assert!(matches!(code(libc::ENFILE), Failure::Exhausted));
    assert!(matches!(code(libc::EPROTO), Failure::Transient));
    assert!(matches!(code(libc::EBADF), Failure::Fatal));
}

#[cfg(windows)]
#[test]
fn winsock_error_codes() {
    let code = |c: i32| classify(&io::Error::from_raw_os_error(c));
    assert!(matches!(code(10024), Failure::Exhausted)); // WSAEMFILE
    assert!(matches!(code(10055), Failure::Exhausted)); // WSAENOBUFS
    assert!(matches!(code(10054), Failure::Transient)); // WSAECONNRESET
    assert!(matches!(code(10038), Failure::Fatal)); // WSAENOTSOCK
}
