//! The ACME account key and the JSON Web Signatures made with it (RFC
//! 7515, flattened JSON serialization, ES256), the key's JWK thumbprint
//! (RFC 7638), key authorizations (RFC 8555 section 8.1) and External
//! Account Binding (section 7.3.4, HS256). Signed and hashed by the
//! crypto provider securenet is built with.

use base64ct::{Base64UrlUnpadded, Encoding};
use serde_json::{Value, json};
use zeroize::Zeroizing;

use crate::crypto::{hmac, rand, sha256, signature};
use crate::error::{Error, Result};

/// base64url without padding, as JOSE writes every binary value.
pub(crate) fn b64(bytes: &[u8]) -> String {
    Base64UrlUnpadded::encode_string(bytes)
}

/// An ACME account key: ECDSA P-256, signing ES256.
pub(crate) struct AccountKey {
    pair: signature::EcdsaKeyPair,
    pkcs8: Zeroizing<Vec<u8>>,
}

impl std::fmt::Debug for AccountKey {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("AccountKey")
            .field("thumbprint", &self.thumbprint())
            .finish_non_exhaustive()
    }
}

impl AccountKey {
    /// A new random key.
    pub(crate) fn generate() -> Result<AccountKey> {
        let rng = rand::SystemRandom::new();
        let doc = signature::EcdsaKeyPair::generate_pkcs8(
            &signature::ECDSA_P256_SHA256_FIXED_SIGNING,
            &rng,
        )
        .map_err(|_| {
            Error::credentials(
                "acme account key",
                "the crypto provider could not make a P-256 key (no randomness?)",
            )
        })?;
        AccountKey::from_pkcs8(doc.as_ref(), "new acme account key")
    }

    /// The key in PKCS#8 DER bytes (`label` names them in errors).
    pub(crate) fn from_pkcs8(der: &[u8], label: &str) -> Result<AccountKey> {
        let alg = &signature::ECDSA_P256_SHA256_FIXED_SIGNING;
        #[cfg(feature = "aws-lc-rs")]
        let pair = signature::EcdsaKeyPair::from_pkcs8(alg, der);
        #[cfg(all(feature = "ring", not(feature = "aws-lc-rs")))]
        let pair = signature::EcdsaKeyPair::from_pkcs8(alg, der, &rand::SystemRandom::new());
        let pair = pair.map_err(|e| {
            Error::credentials(
                label,
                format!(
                    "not a P-256 ECDSA key in PKCS#8 ({e}): remove the file to have a new \
                     account made"
                ),
            )
        })?;
        Ok(AccountKey {
            pair,
            pkcs8: Zeroizing::new(der.to_vec()),
        })
    }

    /// The PKCS#8 DER bytes, to keep in the cache.
    pub(crate) fn pkcs8(&self) -> &[u8] {
        &self.pkcs8
    }

    /// The public key's x and y coordinates, base64url.
    fn coordinates(&self) -> (String, String) {
        use signature::KeyPair as _;
        let point = self.pair.public_key().as_ref();
        // An uncompressed point: 0x04, then x and y (32 bytes each).
        let xy = point.get(1..).unwrap_or_default();
        let (x, y) = xy.split_at(xy.len() / 2);
        (b64(x), b64(y))
    }

    /// The public key as a JWK object.
    fn jwk(&self) -> Value {
        let (x, y) = self.coordinates();
        json!({"crv": "P-256", "kty": "EC", "x": x, "y": y})
    }

    /// The JWK as RFC 7638 hashes it: the required members only, in
    /// lexicographic order, no white space (written out, not left to a
    /// JSON map's order).
    pub(crate) fn jwk_json(&self) -> String {
        let (x, y) = self.coordinates();
        format!(r#"{{"crv":"P-256","kty":"EC","x":"{x}","y":"{y}"}}"#)
    }

    /// The JWK thumbprint (RFC 7638): base64url of the SHA-256 of the JWK.
    pub(crate) fn thumbprint(&self) -> String {
        b64(&sha256(self.jwk_json().as_bytes()))
    }

    /// An ES256 signature: r and s, 32 bytes each (RFC 7518 section 3.4).
    fn sign(&self, message: &[u8]) -> Result<Vec<u8>> {
        let rng = rand::SystemRandom::new();
        let sig = self.pair.sign(&rng, message).map_err(|_| {
            Error::credentials("acme account key", "the crypto provider could not sign")
        })?;
        Ok(sig.as_ref().to_vec())
    }

    /// A request body: the flattened JWS of `payload` (`None`: the empty
    /// payload of a POST-as-GET) for `url`, identified by the account URL
    /// `kid` or, before there is an account, by the key itself.
    pub(crate) fn jws(
        &self,
        kid: Option<&str>,
        nonce: &str,
        url: &str,
        payload: Option<&Value>,
    ) -> Result<Vec<u8>> {
        let mut protected = json!({"alg": "ES256", "nonce": nonce, "url": url});
        match kid {
            Some(kid) => protected["kid"] = json!(kid),
            None => protected["jwk"] = self.jwk(),
        }
        let protected = b64(protected.to_string().as_bytes());
        let payload = payload.map_or_else(String::new, |p| b64(p.to_string().as_bytes()));
        let signature = self.sign(format!("{protected}.{payload}").as_bytes())?;
        let body =
            json!({"protected": protected, "payload": payload, "signature": b64(&signature)});
        Ok(body.to_string().into_bytes())
    }

    /// The `externalAccountBinding` member of a newAccount request: this
    /// key's JWK signed with the CA's MAC key (HS256) under the CA's key
    /// identifier (RFC 8555 section 7.3.4).
    pub(crate) fn external_account_binding(
        &self,
        key_id: &str,
        mac_key: &[u8],
        new_account_url: &str,
    ) -> Value {
        let protected = json!({"alg": "HS256", "kid": key_id, "url": new_account_url});
        let protected = b64(protected.to_string().as_bytes());
        let payload = b64(self.jwk_json().as_bytes());
        let signature = hs256(mac_key, format!("{protected}.{payload}").as_bytes());
        json!({"protected": protected, "payload": payload, "signature": b64(&signature)})
    }

    /// The key authorization for a challenge token (RFC 8555 section 8.1).
    pub(crate) fn key_authorization(&self, token: &str) -> String {
        format!("{token}.{}", self.thumbprint())
    }
}

/// HMAC-SHA256 of `message` under `key`.
pub(crate) fn hs256(key: &[u8], message: &[u8]) -> Vec<u8> {
    let key = hmac::Key::new(hmac::HMAC_SHA256, key);
    hmac::sign(&key, message).as_ref().to_vec()
}

#[cfg(test)]
mod tests {
    use super::*;

    fn verify(public: &[u8], message: &[u8], sig: &[u8]) -> bool {
        signature::UnparsedPublicKey::new(&signature::ECDSA_P256_SHA256_FIXED, public)
            .verify(message, sig)
            .is_ok()
    }

    fn unb64(s: &str) -> Vec<u8> {
        Base64UrlUnpadded::decode_vec(s).expect("base64url")
    }

    #[test]
    fn rfc7515_a1_hs256_example() {
        // RFC 7515 appendix A.1: the key, the signing input and the MAC.
        let key = unb64(
            "AyM1SysPpbyDfgZld3umj1qzKObwVMkoqQ-EstJQLr_T-1qS0gZH75aKtMN3Yj0iPS4hcgUuTwjAzZr1Z9CAow",
        );
        let input = "eyJ0eXAiOiJKV1QiLA0KICJhbGciOiJIUzI1NiJ9.\
                     eyJpc3MiOiJqb2UiLA0KICJleHAiOjEzMDA4MTkzODAsDQogImh0dHA6Ly9leGFtcGxlLmNvbS9pc19yb290Ijp0cnVlfQ";
        assert_eq!(
            b64(&hs256(&key, input.as_bytes())),
            "dBjftJeZ4CVP-mB92K27uhbUJU1p1r_wW1gFWFOEjXk"
        );
    }

    #[test]
    fn rfc7515_a3_es256_example_verifies_as_r_then_s() {
        // RFC 7515 appendix A.3: the public key, signing input and the
        // signature (r || s, 64 bytes) that ES256 must produce and check.
        let x = unb64("f83OJ3D2xF1Bg8vub9tLe1gHMzV76e8Tus9uPHvRVEU");
        let y = unb64("x_FEzRu9m36HLN_tue659LNpXW6pCyStikYjKIWI5a0");
        let public = [&[4u8][..], &x, &y].concat();
        let input = "eyJhbGciOiJFUzI1NiJ9.\
                     eyJpc3MiOiJqb2UiLA0KICJleHAiOjEzMDA4MTkzODAsDQogImh0dHA6Ly9leGFtcGxlLmNvbS9pc19yb290Ijp0cnVlfQ";
        let sig = unb64(
            "DtEhU3ljbEg8L38VWAfUAqOyKAM6-Xx-F4GawxaepmXFCgfTjDxw5djxLa8ISlSApmWQxfKTUJqPP3-Kg6NU1Q",
        );
        assert_eq!(sig.len(), 64);
        assert!(verify(&public, input.as_bytes(), &sig));
        assert!(!verify(&public, b"another message", &sig));
    }

    #[test]
    fn a_request_is_a_flattened_jws_the_key_verifies() {
        use signature::KeyPair as _;
        let key = AccountKey::generate().expect("key");
        let payload = json!({"termsOfServiceAgreed": true});
        let body = key
            .jws(
                None,
                "nonce-1",
                "https://ca.example/new-acct",
                Some(&payload),
            )
            .expect("jws");
        let body: Value = serde_json::from_slice(&body).expect("json");
        let (p, l, s) = (
            body["protected"].as_str().expect("protected"),
            body["payload"].as_str().expect("payload"),
            body["signature"].as_str().expect("signature"),
        );
        let header: Value = serde_json::from_slice(&unb64(p)).expect("header");
        assert_eq!(header["alg"], "ES256");
        assert_eq!(header["nonce"], "nonce-1");
        assert_eq!(header["url"], "https://ca.example/new-acct");
        assert_eq!(header["jwk"]["kty"], "EC");
        assert!(header.get("kid").is_none(), "jwk and kid are exclusive");
        assert_eq!(
            serde_json::from_slice::<Value>(&unb64(l)).expect("payload"),
            payload
        );
        let public = key.pair.public_key().as_ref().to_vec();
        assert!(verify(&public, format!("{p}.{l}").as_bytes(), &unb64(s)));

        // POST-as-GET: the empty payload, and the account URL as kid.
        let body = key
            .jws(
                Some("https://ca.example/acct/1"),
                "n2",
                "https://ca.example/order/1",
                None,
            )
            .expect("jws");
        let body: Value = serde_json::from_slice(&body).expect("json");
        assert_eq!(body["payload"], "");
        let header: Value =
            serde_json::from_slice(&unb64(body["protected"].as_str().expect("p"))).expect("h");
        assert_eq!(header["kid"], "https://ca.example/acct/1");
        assert!(header.get("jwk").is_none());
    }

    #[test]
    fn the_thumbprint_hashes_the_sorted_required_members() {
        let key = AccountKey::generate().expect("key");
        let jwk = key.jwk_json();
        assert!(
            jwk.starts_with(r#"{"crv":"P-256","kty":"EC","x":""#),
            "{jwk}"
        );
        assert!(!jwk.contains(' '));
        assert_eq!(key.thumbprint(), b64(&sha256(jwk.as_bytes())));
        assert_eq!(
            key.key_authorization("tok"),
            format!("tok.{}", key.thumbprint())
        );
        // The key survives the cache.
        let again = AccountKey::from_pkcs8(key.pkcs8(), "test").expect("reload");
        assert_eq!(again.thumbprint(), key.thumbprint());
        assert!(AccountKey::from_pkcs8(b"junk", "test").is_err());
    }

    #[test]
    fn external_account_binding_signs_the_jwk_with_the_mac_key() {
        let key = AccountKey::generate().expect("key");
        let eab = key.external_account_binding("kid-1", b"secret", "https://ca/new-acct");
        let p = eab["protected"].as_str().expect("p");
        let l = eab["payload"].as_str().expect("l");
        let header: Value = serde_json::from_slice(&unb64(p)).expect("h");
        assert_eq!(
            header,
            json!({"alg": "HS256", "kid": "kid-1", "url": "https://ca/new-acct"})
        );
        assert_eq!(unb64(l), key.jwk_json().as_bytes());
        assert_eq!(
            unb64(eab["signature"].as_str().expect("s")),
            hs256(b"secret", format!("{p}.{l}").as_bytes())
        );
    }
}
