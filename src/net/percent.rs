//! Percent-decoding the user info of a URL (a WebSocket URL's or a
//! proxy's). Written here rather than taken from the `percent-encoding`
//! crate, which nothing in the dependency tree pulls in.

use crate::error::{Error, Result};

/// Decodes `s`; `url` names the input in errors (give it without secrets).
pub(crate) fn percent_decode(s: &str, url: &str) -> Result<String> {
    let bytes = s.as_bytes();
    let mut out = Vec::with_capacity(bytes.len());
    let mut i = 0;
    while i < bytes.len() {
        if bytes[i] == b'%' {
            let hex = bytes
                .get(i + 1..i + 3)
                .and_then(|h| std::str::from_utf8(h).ok())
                .and_then(|h| u8::from_str_radix(h, 16).ok())
                .ok_or_else(|| {
                    Error::invalid_input(
                        url,
                        "a '%' in the user info is not followed by two hex digits",
                    )
                })?;
            out.push(hex);
            i += 3;
        } else {
            out.push(bytes[i]);
            i += 1;
        }
    }
    String::from_utf8(out)
        .map_err(|_| Error::invalid_input(url, "the user info is not UTF-8 once percent-decoded"))
}
