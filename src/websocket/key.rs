//! The opening handshake's nonce and proof (RFC 6455 section 4):
//! `Sec-WebSocket-Key` (16 random bytes, base64) and `Sec-WebSocket-Accept`
//! (the base64 SHA-1 of the key and the protocol's GUID), computed with
//! the crypto provider securenet was built with.

use base64ct::{Base64, Encoding};

use crate::crypto::{digest, fill_random};
use crate::error::{Error, Result, WebSocketErrorKind};

/// The GUID every `Sec-WebSocket-Accept` is derived with (RFC 6455 1.3).
const GUID: &[u8] = b"258EAFA5-E914-47DA-95CA-C5AB0DC85B11";

/// A fresh `Sec-WebSocket-Key`.
pub(crate) fn new_key() -> Result<String> {
    let mut nonce = [0u8; 16];
    fill_random(&mut nonce).map_err(|()| {
        Error::websocket(
            WebSocketErrorKind::Local,
            "no randomness for the Sec-WebSocket-Key: the system's random number generator failed",
            None,
        )
    })?;
    Ok(Base64::encode_string(&nonce))
}

/// The `Sec-WebSocket-Accept` value that answers `key`.
pub(crate) fn accept_key(key: &[u8]) -> String {
    let mut h = digest::Context::new(&digest::SHA1_FOR_LEGACY_USE_ONLY);
    h.update(key);
    h.update(GUID);
    Base64::encode_string(h.finish().as_ref())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_rfc_example() {
        // RFC 6455 section 1.3.
        assert_eq!(
            accept_key(b"dGhlIHNhbXBsZSBub25jZQ=="),
            "s3pPLMBiTxaQ9kYGzzhZRbK+xOo="
        );
    }

    #[test]
    fn keys_are_16_random_bytes_in_base64() {
        let (a, b) = (new_key().expect("key"), new_key().expect("key"));
        assert_eq!(a.len(), 24);
        assert_eq!(Base64::decode_vec(&a).expect("base64").len(), 16);
        assert_ne!(a, b);
    }
}
