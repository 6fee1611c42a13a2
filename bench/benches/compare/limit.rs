//! The distance to the hardware: what bulk could reach with nothing in its
//! path but the socket and the cipher. Pinned to one core, the sender's
//! seal, the kernel's copies and the receiver's open take turns on it, so
//! the limit is 1 / (1/tcp + 1/seal + 1/open); on two cores it is only a
//! reference. Measured inside every round of the bulk group, beside the
//! rows it bounds (the machine's speed drifts within minutes).

use std::net::TcpStream;
use std::time::Instant;

#[cfg(feature = "aws-lc-rs")]
use aws_lc_rs::aead;
#[cfg(all(feature = "ring", not(feature = "aws-lc-rs")))]
use ring::aead;

use crate::setup::tcp_pair;
use crate::transfer::transfer;

/// TLS's largest record.
const RECORD: usize = 16 * 1024;

/// MB/s: the limit, plain TCP over loopback in 64 KiB writes, and the
/// suite's AEAD sealing and opening 16 KiB records in place on one
/// thread; `total` bytes each; then two NaNs (no CPU rows).
pub fn figures(suite: &str, total: usize) -> [f64; 6] {
    let tcp = tcp_rate(total);
    let (seal, open) = aead_rates(suite, total);
    let limit = 1.0 / (1.0 / tcp + 1.0 / seal + 1.0 / open);
    [limit, tcp, seal, open, f64::NAN, f64::NAN]
}

fn tcp_rate(total: usize) -> f64 {
    let (c, s): (TcpStream, TcpStream) = tcp_pair(|s| s, |c| c);
    let cost = transfer(c, s, total, 64 * 1024);
    total as f64 / cost.secs / 1e6
}

/// Seals and opens `total` bytes in 16 KiB records (each sealed, then
/// opened back in place, timed apart), as a TLS 1.3 record layer does:
/// a 5-byte header as the additional data, a counter in the nonce.
fn aead_rates(suite: &str, total: usize) -> (f64, f64) {
    let algorithm = match suite {
        "TLS13_AES_128_GCM_SHA256" => &aead::AES_128_GCM,
        "TLS13_AES_256_GCM_SHA384" => &aead::AES_256_GCM,
        _ => &aead::CHACHA20_POLY1305,
    };
    let key = aead::LessSafeKey::new(
        aead::UnboundKey::new(algorithm, &vec![7u8; algorithm.key_len()]).expect("key"),
    );
    let tag_len = algorithm.tag_len();
    let mut record = vec![0x5au8; RECORD + tag_len];
    let header = [
        0x17,
        3,
        3,
        ((RECORD + tag_len) >> 8) as u8,
        (RECORD + tag_len) as u8,
    ];
    let (mut seal, mut open) = (0.0, 0.0);
    for seq in 0..(total / RECORD).max(1) as u64 {
        let mut nonce = [0u8; 12];
        nonce[4..].copy_from_slice(&seq.to_be_bytes());
        let start = Instant::now();
        let tag = key
            .seal_in_place_separate_tag(
                aead::Nonce::assume_unique_for_key(nonce),
                aead::Aad::from(header),
                &mut record[..RECORD],
            )
            .expect("seal");
        let sealed = Instant::now();
        record[RECORD..].copy_from_slice(tag.as_ref());
        let opened = Instant::now();
        let plain = key
            .open_in_place(
                aead::Nonce::assume_unique_for_key(nonce),
                aead::Aad::from(header),
                &mut record,
            )
            .expect("open");
        assert_eq!(plain.len(), RECORD);
        let done = Instant::now();
        seal += (sealed - start).as_secs_f64();
        open += (done - opened).as_secs_f64();
    }
    let bytes = ((total / RECORD).max(1) * RECORD) as f64;
    (bytes / seal / 1e6, bytes / open / 1e6)
}
