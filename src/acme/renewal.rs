//! When to renew: two thirds into the certificate's lifetime (a third of
//! it left: 30 days of Let's Encrypt's 90), or earlier when the CA says
//! so through ACME Renewal Information (RFC 9773).

use std::time::{Duration, SystemTime};

use serde::Deserialize;
use x509_parser::prelude::{FromDer, ParsedExtension, X509Certificate as Parsed};

use super::http::Client;
use super::jws::b64;
use crate::error::Result;
use crate::tls::certificate::X509Certificate;

/// Two thirds into the certificate's validity.
pub(crate) fn default_renew_at(leaf: &X509Certificate) -> SystemTime {
    let (from, until) = (leaf.start_validity(), leaf.end_validity());
    let life = until.duration_since(from).unwrap_or(Duration::ZERO);
    from + life / 3 * 2
}

/// The certificate's ARI identifier (RFC 9773 section 4.1): base64url of
/// the Authority Key Identifier's keyIdentifier, a dot, base64url of the
/// serial number's DER content bytes. `None` without an AKI.
pub(crate) fn cert_id(der: &[u8]) -> Option<String> {
    let (_, cert) = Parsed::from_der(der).ok()?;
    let aki = cert
        .extensions()
        .iter()
        .find_map(|e| match e.parsed_extension() {
            ParsedExtension::AuthorityKeyIdentifier(aki) => aki.key_identifier.as_ref(),
            _ => None,
        })?;
    Some(format_cert_id(aki.0, cert.tbs_certificate.raw_serial()))
}

fn format_cert_id(key_identifier: &[u8], serial: &[u8]) -> String {
    format!("{}.{}", b64(key_identifier), b64(serial))
}

#[derive(Debug, Deserialize)]
#[serde(rename_all = "camelCase")]
struct RenewalInfo {
    suggested_window: Window,
}

#[derive(Debug, Deserialize)]
struct Window {
    start: String,
    end: String,
}

/// A time in the CA's suggested window for `leaf`, if the CA offers
/// renewal information and the answer is valid.
pub(crate) fn ari_renew_at(
    client: &mut Client,
    leaf: &X509Certificate,
) -> Result<Option<SystemTime>> {
    let (Some(base), Some(id)) = (client.directory.renewal_info.clone(), cert_id(leaf.der()))
    else {
        return Ok(None);
    };
    let url = format!("{}/{id}", base.trim_end_matches('/'));
    let info: RenewalInfo = client
        .get(&url, "renewalInfo")?
        .json("renewal information")?;
    let mut random = [0u8; 8];
    let fraction = match crate::crypto::fill_random(&mut random) {
        Ok(()) => u64::from_be_bytes(random) as f64 / u64::MAX as f64,
        Err(()) => 0.5,
    };
    Ok(pick_in_window(&info.suggested_window, fraction))
}

/// The time `fraction` (0 to 1) of the way through the window; `None` if
/// the window is not two RFC 3339 times in order.
fn pick_in_window(window: &Window, fraction: f64) -> Option<SystemTime> {
    use time::format_description::well_known::Rfc3339;
    // Times before 1970 are refused (SystemTime cannot hold a time before
    // 1601 on Windows).
    let parse = |text: &str| {
        let t = time::OffsetDateTime::parse(text, &Rfc3339).ok()?;
        (t.unix_timestamp() >= 0).then(|| SystemTime::from(t))
    };
    let (start, end) = (parse(&window.start)?, parse(&window.end)?);
    let span = end.duration_since(start).ok()?;
    Some(start + span.mul_f64(fraction.clamp(0.0, 1.0)))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_window_is_two_rfc3339_times_in_order() {
        let w = |s: &str, e: &str| Window {
            start: s.into(),
            end: e.into(),
        };
        let at = pick_in_window(&w("2025-01-02T04:00:00Z", "2025-01-02T08:00:00Z"), 0.5);
        assert_eq!(
            at,
            Some(SystemTime::UNIX_EPOCH + Duration::from_secs(1_735_790_400 + 7200))
        );
        assert!(pick_in_window(&w("2025-01-02T08:00:00Z", "2025-01-02T04:00:00Z"), 0.5).is_none());
        assert!(pick_in_window(&w("yesterday", "2025-01-02T04:00:00Z"), 0.5).is_none());
        assert!(pick_in_window(&w("1500-01-01T00:00:00Z", "1600-01-01T00:00:00Z"), 0.5).is_none());
    }

    #[test]
    fn rfc9773_example_cert_id() {
        // RFC 9773 section 4.1: keyIdentifier 69:88:5B:6B:87:46:40:41:E1:B3:
        // 7B:84:7B:A0:AE:2C:DE:01:C8:D4, serial 0x0087654321.
        let aki = [
            0x69, 0x88, 0x5B, 0x6B, 0x87, 0x46, 0x40, 0x41, 0xE1, 0xB3, 0x7B, 0x84, 0x7B, 0xA0,
            0xAE, 0x2C, 0xDE, 0x01, 0xC8, 0xD4,
        ];
        let serial = [0x00, 0x87, 0x65, 0x43, 0x21];
        assert_eq!(
            format_cert_id(&aki, &serial),
            "aYhba4dGQEHhs3uEe6CuLN4ByNQ.AIdlQyE"
        );
    }

    #[cfg(feature = "testing")]
    #[test]
    fn renewal_is_two_thirds_in_and_the_ari_id_names_issuer_key_and_serial() {
        let pki = crate::testing::TestPki::new(&["a.example"]).expect("pki");
        let leaf = pki.server_context().certificate_chain().remove(0);
        let (from, until) = (leaf.start_validity(), leaf.end_validity());
        let at = default_renew_at(&leaf);
        assert!(at > from && at < until);
        let third = until.duration_since(at).expect("left");
        let life = until.duration_since(from).expect("life");
        assert!(third.as_secs().abs_diff(life.as_secs() / 3) <= 1);
        // The test PKI's leaf has an AKI (the CA's key); the id is
        // keyIdentifier "." serial.
        let id = cert_id(leaf.der()).expect("aki");
        let (aki, serial) = id.split_once('.').expect("dot");
        assert!(!aki.is_empty() && !serial.is_empty() && !id.contains('='));
    }
}
