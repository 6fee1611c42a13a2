//! WebSocket payloads like most traffic: JSON records, each different.

/// Messages of `size` bytes of JSON records, each different, `total`
/// bytes of them.
pub fn json(size: usize, total: usize) -> Vec<Vec<u8>> {
    let mut i = 0u64;
    let mut record = || {
        let k = i.wrapping_mul(6364136223846793005) >> 33;
        i += 1;
        format!(
            r#"{{"type":"tick","symbol":"S{}","price":{}.{:02},"qty":{},"id":{i}}}"#,
            k % 500,
            k % 1000,
            k % 97,
            k % 100
        )
    };
    (0..(total / size).max(1))
        .map(|_| {
            let mut s = String::new();
            while s.len() < size {
                s.push_str(&record());
            }
            s.truncate(size);
            s.into_bytes()
        })
        .collect()
}
