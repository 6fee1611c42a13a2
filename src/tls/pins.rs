//! Public key pinning (`ConnectOptions::pin_sha256`): the SHA-256 of a
//! certificate's SubjectPublicKeyInfo, written `sha256//` and base64 as in
//! curl's `--pinnedpubkey` and HPKP.

use base64ct::{Base64, Encoding};
use rustls::pki_types::CertificateDer;
use webpki::VerifiedPath;

use crate::error::{CertificateProblem, Error, Result};
use crate::tls::certificate::{X509Certificate, pin_text, sha256};

/// A set of pinned keys; empty means no pinning.
#[derive(Clone, Debug, Default)]
pub(crate) struct Pins {
    hashes: Vec<[u8; 32]>,
    /// As the user wrote them, for messages.
    given: Vec<String>,
}

/// The contents of an SPKI wrapped back in its SEQUENCE header (trust
/// anchors keep only the contents).
fn wrap_sequence(contents: &[u8]) -> Vec<u8> {
    let len = contents.len();
    let mut out = vec![0x30];
    if len < 0x80 {
        out.push(len as u8);
    } else {
        let bytes = len.to_be_bytes();
        let skip = bytes.iter().take_while(|b| **b == 0).count();
        out.push(0x80 | (bytes.len() - skip) as u8);
        out.extend_from_slice(&bytes[skip..]);
    }
    out.extend_from_slice(contents);
    out
}

impl Pins {
    /// Reads pins written `sha256//BASE64` (or the bare base64), each
    /// the 32 bytes of a SHA-256.
    pub(crate) fn parse(pins: &[String]) -> Result<Pins> {
        let mut out = Pins::default();
        for pin in pins {
            let b64 = pin.trim().strip_prefix("sha256//").unwrap_or(pin.trim());
            let bytes = Base64::decode_vec(b64).map_err(|_| {
                Error::invalid_input(
                    pin.clone(),
                    "pin_sha256: not base64; a pin is sha256// and the base64 of the SHA-256 of a \
                     SubjectPublicKeyInfo (X509Certificate::spki_sha256, or openssl x509 -pubkey \
                     | openssl pkey -pubin -outform der | openssl dgst -sha256 -binary | base64)",
                )
            })?;
            let hash = <[u8; 32]>::try_from(bytes.as_slice()).map_err(|_| {
                Error::invalid_input(
                    pin.clone(),
                    format!(
                        "pin_sha256: {} bytes, but a SHA-256 pin is 32 bytes (44 base64 \
                         characters)",
                        bytes.len()
                    ),
                )
            })?;
            out.hashes.push(hash);
            out.given.push(pin_text(&hash));
        }
        Ok(out)
    }

    pub(crate) fn is_empty(&self) -> bool {
        self.hashes.is_empty()
    }

    fn matches(&self, spki: &[u8]) -> bool {
        self.hashes.contains(&sha256(spki))
    }

    /// Whether a key of the verified path (leaf, intermediates, anchor) is
    /// pinned.
    pub(crate) fn match_path(&self, path: &VerifiedPath<'_>) -> bool {
        self.matches(path.end_entity().subject_public_key_info().as_ref())
            || path
                .intermediate_certificates()
                .any(|c| self.matches(c.subject_public_key_info().as_ref()))
            || self.matches(&wrap_sequence(
                path.anchor().subject_public_key_info.as_ref(),
            ))
    }

    /// Whether a key of the certificates the peer sent is pinned.
    pub(crate) fn match_sent(
        &self,
        leaf: &CertificateDer<'_>,
        intermediates: &[CertificateDer<'_>],
    ) -> bool {
        self.is_empty()
            || std::iter::once(leaf)
                .chain(intermediates)
                .filter_map(|c| X509Certificate::from_der(c).ok())
                .any(|c| self.hashes.contains(&c.spki_sha256()))
    }

    /// The pin mismatch, listing the keys of what the peer sent.
    pub(crate) fn mismatch(
        &self,
        leaf: &CertificateDer<'_>,
        intermediates: &[CertificateDer<'_>],
    ) -> CertificateProblem {
        CertificateProblem::PinMismatch {
            expected: self.given.clone(),
            presented: std::iter::once(leaf)
                .chain(intermediates)
                .filter_map(|c| X509Certificate::from_der(c).ok())
                .map(|c| c.spki_pin())
                .collect(),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn long_sequences_keep_their_length() {
        let short = wrap_sequence(&[1, 2, 3]);
        assert_eq!(short, [0x30, 3, 1, 2, 3]);
        let long = wrap_sequence(&[0u8; 300]);
        assert_eq!(&long[..4], &[0x30, 0x82, 0x01, 0x2c]);
        assert_eq!(long.len(), 304);
    }

    #[test]
    fn pins_must_be_sha256_in_base64() {
        let good = pin_text(&[7u8; 32]);
        let pins = Pins::parse(std::slice::from_ref(&good)).expect("pin");
        assert_eq!(pins.given, std::slice::from_ref(&good));
        let bare = good.trim_start_matches("sha256//").to_owned();
        assert!(Pins::parse(&[bare]).is_ok(), "the bare base64 is accepted");
        let e = Pins::parse(&["sha256//not base64!".to_owned()]).expect_err("bad");
        assert!(e.to_string().contains("not base64"), "{e}");
        let e = Pins::parse(&["sha256//AAAA".to_owned()]).expect_err("short");
        assert!(e.to_string().contains("3 bytes"), "{e}");
    }
}
