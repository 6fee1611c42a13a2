//! The crypto provider chosen at build time: aws-lc-rs (the `aws-lc-rs`
//! feature, the default) or ring (the `ring` feature). Everything securenet
//! computes itself goes through here (hashes for fingerprints, pins and
//! policy stamps; AES-256-GCM for session tickets; random numbers for
//! ticket nonces, ticket keys and WebSocket masks), and rustls gets the
//! same provider (handshakes, record protection, the exporter's HKDF and
//! TLS 1.2 PRF, key loading, signature verification). Decrypting
//! password-protected key files (PKCS#8 PBES2, PKCS#12) is the one
//! exception: the RustCrypto crates behind `pkcs8` and `p12-keystore` do
//! it, with either provider; the key they yield is then loaded by the
//! provider.
//!
//! The `fips` feature builds aws-lc-rs's FIPS module (aws-lc-fips-sys)
//! and rustls's `fips`: only FIPS-approved suites and groups are offered.
//!
//! Exactly one provider is compiled in. The two differ in what rustls
//! offers with them: aws-lc-rs has the post-quantum hybrid key exchange
//! X25519MLKEM768 (preferred by default) and MLKEM768/MLKEM1024; ring has
//! X25519, secp256r1 and secp384r1 only. Cipher suites are the same nine.

#[cfg(all(feature = "aws-lc-rs", feature = "ring"))]
compile_error!(
    "securenet: the `aws-lc-rs` and `ring` features cannot be combined: choose one \
     crypto provider. To use ring, turn the default off: \
     securenet = { version = \"...\", default-features = false, features = [\"ring\"] }"
);

#[cfg(not(any(feature = "aws-lc-rs", feature = "ring")))]
compile_error!(
    "securenet: no crypto provider: enable the `aws-lc-rs` feature (the default) \
     or the `ring` feature"
);

#[cfg(feature = "aws-lc-rs")]
pub(crate) use aws_lc_rs::{aead, digest, rand};
#[cfg(all(feature = "acme", feature = "aws-lc-rs"))]
pub(crate) use aws_lc_rs::{hmac, signature};
#[cfg(all(feature = "ring", not(feature = "aws-lc-rs")))]
pub(crate) use ring::{aead, digest, rand};
#[cfg(all(feature = "acme", feature = "ring", not(feature = "aws-lc-rs")))]
pub(crate) use ring::{hmac, signature};

#[cfg(feature = "aws-lc-rs")]
use rustls::crypto::aws_lc_rs as rustls_provider;
#[cfg(all(feature = "ring", not(feature = "aws-lc-rs")))]
use rustls::crypto::ring as rustls_provider;

use rustls::SupportedCipherSuite;
use rustls::crypto::{CryptoProvider, SupportedKxGroup};

/// The provider's name, as the features spell it.
#[cfg(feature = "aws-lc-rs")]
pub(crate) const NAME: &str = "aws-lc-rs";
/// The provider's name, as the features spell it.
#[cfg(all(feature = "ring", not(feature = "aws-lc-rs")))]
pub(crate) const NAME: &str = "ring";

/// Whether this build has the `fips` feature: only FIPS-approved cipher
/// suites and key exchange groups may be chosen.
pub(crate) const FIPS: bool = cfg!(feature = "fips");

/// Why a suite or group that exists is refused in a FIPS build.
pub(crate) const NOT_APPROVED: &str = "not FIPS-approved, and this build has securenet's \
     `fips` feature: choose an approved one (AES-GCM suites; secp256r1, secp384r1, \
     X25519MLKEM768)";

/// rustls's default provider of the chosen backend (with aws-lc-rs it
/// prefers X25519MLKEM768). rustls 0.23.48 deprecates ring's
/// `default_provider` for its lack of post-quantum key exchange: that is
/// what choosing ring means, and the README says so.
#[allow(deprecated)]
pub(crate) fn default_provider() -> CryptoProvider {
    rustls_provider::default_provider()
}

/// Every cipher suite rustls has with the chosen backend.
pub(crate) fn all_cipher_suites() -> &'static [SupportedCipherSuite] {
    rustls_provider::ALL_CIPHER_SUITES
}

/// Every key exchange group rustls has with the chosen backend.
pub(crate) fn all_kx_groups() -> &'static [&'static dyn SupportedKxGroup] {
    rustls_provider::ALL_KX_GROUPS
}

/// Fills `out` from the system's secure random number generator.
pub(crate) fn fill_random(out: &mut [u8]) -> Result<(), ()> {
    use rand::SecureRandom as _;
    rand::SystemRandom::new().fill(out).map_err(|_| ())
}

/// AES-256-GCM for session tickets, with a fresh random 96-bit nonce per
/// seal. With aws-lc-rs the nonce is drawn inside aws-lc
/// (`RandomizedNonceKey`: the FIPS-approved way to seal with AES-GCM, where
/// a nonce the caller supplies is not); with ring securenet draws it from
/// the system's generator. The ticket format is the same.
pub(crate) struct TicketCipher {
    #[cfg(feature = "aws-lc-rs")]
    key: aead::RandomizedNonceKey,
    #[cfg(all(feature = "ring", not(feature = "aws-lc-rs")))]
    key: aead::LessSafeKey,
}

impl TicketCipher {
    /// The bytes of a nonce and of a tag.
    pub(crate) const NONCE_LEN: usize = aead::NONCE_LEN;
    pub(crate) const TAG_LEN: usize = 16;

    /// A cipher with the 32-byte `key`; `None` for another length.
    pub(crate) fn new(key: &[u8]) -> Option<TicketCipher> {
        #[cfg(feature = "aws-lc-rs")]
        let key = aead::RandomizedNonceKey::new(&aead::AES_256_GCM, key).ok()?;
        #[cfg(all(feature = "ring", not(feature = "aws-lc-rs")))]
        let key = aead::LessSafeKey::new(aead::UnboundKey::new(&aead::AES_256_GCM, key).ok()?);
        Some(TicketCipher { key })
    }

    /// Encrypts `in_out` in place under a fresh random nonce bound to
    /// `aad`: the nonce and the tag, or `None` if it failed (no randomness).
    pub(crate) fn seal(
        &self,
        aad: &[u8],
        in_out: &mut [u8],
    ) -> Option<([u8; Self::NONCE_LEN], [u8; Self::TAG_LEN])> {
        #[cfg(feature = "aws-lc-rs")]
        let (nonce, tag) = {
            let (nonce, tag) = self
                .key
                .seal_in_place_separate_tag(aead::Aad::from(aad), in_out)
                .ok()?;
            (*nonce.as_ref(), tag)
        };
        #[cfg(all(feature = "ring", not(feature = "aws-lc-rs")))]
        let (nonce, tag) = {
            let mut nonce = [0u8; Self::NONCE_LEN];
            fill_random(&mut nonce).ok()?;
            let tag = self
                .key
                .seal_in_place_separate_tag(
                    aead::Nonce::assume_unique_for_key(nonce),
                    aead::Aad::from(aad),
                    in_out,
                )
                .ok()?;
            (nonce, tag)
        };
        Some((nonce, tag.as_ref().try_into().ok()?))
    }

    /// Decrypts `in_out` (the text, then the tag) in place: the plain text,
    /// or `None` if it does not open under this key, `nonce` and `aad`.
    pub(crate) fn open<'a>(
        &self,
        nonce: [u8; Self::NONCE_LEN],
        aad: &[u8],
        in_out: &'a mut [u8],
    ) -> Option<&'a mut [u8]> {
        self.key
            .open_in_place(
                aead::Nonce::assume_unique_for_key(nonce),
                aead::Aad::from(aad),
                in_out,
            )
            .ok()
    }
}

/// The SHA-256 digest of `bytes`.
pub(crate) fn sha256(bytes: &[u8]) -> [u8; 32] {
    let d = digest::digest(&digest::SHA256, bytes);
    let mut out = [0u8; 32];
    out.copy_from_slice(d.as_ref());
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn sha256_is_the_standard_one() {
        // FIPS 180-2, appendix B.1: SHA-256("abc").
        let want = "ba7816bf8f01cfea414140de5dae2223b00361a396177a9cb410ff61f20015ad";
        let got: String = sha256(b"abc").iter().map(|b| format!("{b:02x}")).collect();
        assert_eq!(got, want);
    }

    #[test]
    fn random_bytes_differ() {
        let (mut a, mut b) = ([0u8; 32], [0u8; 32]);
        fill_random(&mut a).expect("random");
        fill_random(&mut b).expect("random");
        assert_ne!(a, b);
        assert_ne!(a, [0u8; 32]);
    }

    #[test]
    fn the_provider_is_the_one_built_in() {
        let groups: Vec<&str> = all_kx_groups()
            .iter()
            .filter_map(|g| g.name().as_str())
            .collect();
        assert_eq!(
            groups.contains(&"X25519MLKEM768"),
            NAME == "aws-lc-rs",
            "{groups:?}"
        );
        assert_eq!(all_cipher_suites().len(), 9);
        // FIPS offers no ChaCha20-Poly1305 (one TLS 1.3, two TLS 1.2 suites).
        let offered = default_provider().cipher_suites.len();
        assert_eq!(offered, if FIPS { 6 } else { 9 });
    }

    #[cfg(feature = "fips")]
    #[test]
    fn the_fips_module_is_in_fips_mode() {
        assert!(default_provider().fips(), "the provider is not FIPS");
    }
}
