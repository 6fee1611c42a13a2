//! securenet against raw rustls `StreamOwned` (and tungstenite over it),
//! same configuration, same run, over loopback. Each figure is the median
//! of several runs per side, alternating which side goes first, printed
//! with the ratio ours/raw (for times, CPU and memory raw/ours, so above 1
//! is better for us everywhere) and the runs' spread.
//!
//! ```text
//! cargo bench -p securenet-bench --bench compare                  # the full run (1 GiB bulk)
//! SECURENET_BENCH_SCALE=0.05 cargo bench -p securenet-bench --bench compare   # a quick run
//! SECURENET_BENCH_REPEAT=5 cargo bench -p securenet-bench --bench compare     # more runs per figure
//! cargo bench -p securenet-bench --bench compare -- writes        # the groups whose name has it
//!                                              # (bulk, unbuffered, unbuffered-small,
//!                                              # writes, echo, handshakes, memory,
//!                                              # websocket, openssl)
//! cargo bench -p securenet-bench --bench compare --features openssl   # adds OpenSSL rows
//! ```

mod handshakes;
mod json;
mod limit;
mod memory;
#[cfg(feature = "openssl")]
mod openssl_rows;
mod setup;
mod transfer;
mod unbuffered;
mod websocket;

use std::thread;

fn main() {
    let args: Vec<String> = std::env::args().collect();
    if memory::run_child(&args) {
        return;
    }
    println!(
        "securenet vs rustls StreamOwned, scale {}, median of {} runs per side ({} cores)",
        setup::scale(),
        setup::repeats(),
        thread::available_parallelism().map_or(1, |n| n.get())
    );
    // `cargo bench -p securenet-bench --bench compare -- NAME` runs the groups whose name
    // contains NAME (bulk, unbuffered, unbuffered-small, writes, echo,
    // handshakes, memory, websocket).
    let only = args.iter().skip(1).find(|a| !a.starts_with('-'));
    let run = |group: &str| only.is_none_or(|o| group.contains(o.as_str()));
    let ecdsa = setup::pki(false);
    // Made only for the groups that use it: an RSA key's generation takes
    // a varying number of instructions, which would blur callgrind's counts.
    let rsa = std::cell::OnceCell::new();
    let rsa = || rsa.get_or_init(|| setup::pki(true));
    if run("bulk") {
        transfer::bulk(&ecdsa);
    }
    if run("unbuffered") {
        transfer::unbuffered_bulk(&ecdsa);
    }
    if run("unbuffered-small") {
        transfer::unbuffered_small(&ecdsa);
    }
    if run("writes") {
        transfer::write_sizes(&ecdsa);
    }
    if run("echo") {
        transfer::echo_latency(&ecdsa);
    }
    if run("handshakes") {
        handshakes::handshakes(&ecdsa, rsa);
    }
    if run("memory") {
        memory::idle_memory(&ecdsa);
    }
    if run("websocket") {
        websocket::websocket(&ecdsa);
    }
    #[cfg(feature = "openssl")]
    if run("openssl") {
        openssl_rows::bulk(&ecdsa);
        openssl_rows::handshakes(&ecdsa, rsa());
    }
}
