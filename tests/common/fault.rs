//! A loopback fault proxy for one connection: it forwards each direction in
//! random small pieces with random small delays (so TLS records and
//! WebSocket frames arrive split anywhere, byte by byte at worst), and can
//! pause, cut with FIN or RST at a chosen offset, or go silent.

use std::io::{Read, Write};
use std::net::{Shutdown, TcpStream};
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};
use std::thread::{self, JoinHandle};
use std::time::{Duration, Instant};

use super::{IO_TIMEOUT, tcp_listener, tcp_timeouts};

/// A small deterministic PRNG (xorshift64*), so a failing seed can be rerun.
#[derive(Clone)]
pub struct Rng(u64);

impl Rng {
    pub fn new(seed: u64) -> Rng {
        Rng(seed.max(1))
    }

    pub fn next(&mut self) -> u64 {
        let mut x = self.0;
        x ^= x >> 12;
        x ^= x << 25;
        x ^= x >> 27;
        self.0 = x;
        x.wrapping_mul(0x2545_f491_4f6c_dd1d)
    }

    /// A number in `lo..=hi`.
    pub fn range(&mut self, lo: usize, hi: usize) -> usize {
        lo + (self.next() % (hi - lo + 1) as u64) as usize
    }

    pub fn bytes(&mut self, n: usize) -> Vec<u8> {
        (0..n).map(|_| self.next() as u8).collect()
    }
}

/// How a connection ends at an offset.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Cut {
    /// TCP FIN to both ends.
    Fin,
    /// TCP RST to both ends.
    Rst,
    /// Nothing more is forwarded, and nothing is closed: the peer vanished.
    Silent,
}

/// What one direction suffers.
#[derive(Clone, Debug)]
pub struct Fault {
    /// Bytes per forwarded piece: `(min, max)`.
    pub piece: (usize, usize),
    /// Delay before each piece, in microseconds: `(min, max)`.
    pub delay_us: (usize, usize),
    /// After this many bytes, a pause of this long (once).
    pub pause: Option<(usize, Duration)>,
    /// After this many bytes, the connection is cut.
    pub cut: Option<(usize, Cut)>,
    pub seed: u64,
}

impl Fault {
    /// Forwards as it comes, in pieces of up to 64 KiB.
    pub fn clean() -> Fault {
        Fault {
            piece: (1, 64 * 1024),
            delay_us: (0, 0),
            pause: None,
            cut: None,
            seed: 1,
        }
    }

    /// Pieces of 1 to `max` bytes, each after up to `delay_us` µs.
    pub fn choppy(max: usize, delay_us: usize, seed: u64) -> Fault {
        Fault {
            piece: (1, max),
            delay_us: (0, delay_us),
            pause: None,
            cut: None,
            seed,
        }
    }

    pub fn cut_at(mut self, offset: usize, cut: Cut) -> Fault {
        self.cut = Some((offset, cut));
        self
    }
}

/// The running proxy.
pub struct FaultProxy {
    pub port: u16,
    /// While false, pieces and delays are not applied (cuts and pauses
    /// still are): set it false for a quick handshake, then true.
    pub faulty: Arc<AtomicBool>,
    pub handle: JoinHandle<()>,
}

/// Proxies one connection to `127.0.0.1:target`; `up` is what the
/// client's bytes suffer, `down` the server's.
pub fn fault_proxy(target: u16, up: Fault, down: Fault) -> FaultProxy {
    let (listener, port) = tcp_listener();
    let stop = Arc::new(AtomicBool::new(false));
    let faulty = Arc::new(AtomicBool::new(true));
    let (st, fy) = (stop.clone(), faulty.clone());
    let handle = thread::spawn(move || {
        let (client, _) = listener.accept().expect("proxy accept");
        let server = TcpStream::connect(("127.0.0.1", target)).expect("proxy connect");
        for s in [&client, &server] {
            tcp_timeouts(s);
            s.set_nodelay(true).expect("nodelay");
        }
        let ends = [
            client.try_clone().expect("clone"),
            server.try_clone().expect("clone"),
        ];
        let (c2, s2) = (
            client.try_clone().expect("clone"),
            server.try_clone().expect("clone"),
        );
        let (st2, fy2) = (st.clone(), fy.clone());
        let ends2 = [
            client.try_clone().expect("clone"),
            server.try_clone().expect("clone"),
        ];
        let upward = thread::spawn(move || pump(c2, s2, up, &ends2, (&st2, &fy2)));
        pump(server, client, down, &ends, (&st, &fy));
        let _ = upward.join();
    });
    FaultProxy {
        port,
        faulty,
        handle,
    }
}

fn pump(
    mut from: TcpStream,
    mut to: TcpStream,
    fault: Fault,
    ends: &[TcpStream; 2],
    (stop, faulty): (&AtomicBool, &AtomicBool),
) {
    let mut rng = Rng::new(fault.seed);
    let mut buf = vec![0u8; 64 * 1024];
    let mut done = 0usize;
    let mut paused = false;
    loop {
        let n = match from.read(&mut buf) {
            Ok(0) | Err(_) => {
                if !stop.load(Ordering::Relaxed) {
                    let _ = to.shutdown(Shutdown::Write);
                }
                return;
            }
            Ok(n) => n,
        };
        let mut i = 0;
        while i < n {
            if stop.load(Ordering::Relaxed) {
                return drain(&mut from, &mut buf);
            }
            if let Some((at, cut)) = fault.cut {
                if done >= at {
                    end(cut, ends, stop);
                    return drain(&mut from, &mut buf);
                }
            }
            if let (Some((at, pause)), false) = (fault.pause, paused) {
                if done >= at {
                    paused = true;
                    thread::sleep(pause); // slow peer
                }
            }
            let on = faulty.load(Ordering::Relaxed);
            let mut piece = if on {
                rng.range(fault.piece.0, fault.piece.1).min(n - i)
            } else {
                n - i
            };
            if let Some((at, _)) = fault.cut {
                piece = piece.min(at - done).max(1);
            }
            let delay = if on {
                rng.range(fault.delay_us.0, fault.delay_us.1)
            } else {
                0
            };
            if delay > 0 {
                thread::sleep(Duration::from_micros(delay as u64)); // slow peer
            }
            if to.write_all(&buf[i..i + piece]).is_err() {
                return;
            }
            i += piece;
            done += piece;
        }
    }
}

/// After a cut: reads and drops what comes until the peer closes, so no
/// unread data turns a FIN into a RST.
fn drain(from: &mut TcpStream, buf: &mut [u8]) {
    while let Ok(n) = from.read(buf) {
        if n == 0 {
            return;
        }
    }
}

/// Cuts the connection: nothing more is forwarded either way.
fn end(cut: Cut, ends: &[TcpStream; 2], stop: &AtomicBool) {
    stop.store(true, Ordering::Relaxed);
    match cut {
        Cut::Fin => {
            for s in ends {
                let _ = s.shutdown(Shutdown::Write);
            }
        }
        Cut::Rst => {
            // With a zero linger, the last close of each socket sends RST;
            // shutting the read side wakes the other pump so it lets go.
            for s in ends {
                let _ = socket2::SockRef::from(s).set_linger(Some(Duration::ZERO));
                let _ = s.shutdown(Shutdown::Read);
            }
        }
        Cut::Silent => {
            // Hold both ends open, forwarding nothing, for IO_TIMEOUT.
            let until = Instant::now() + IO_TIMEOUT;
            while Instant::now() < until {
                thread::park_timeout(Duration::from_millis(50));
            }
        }
    }
}
