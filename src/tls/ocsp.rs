//! What an OCSP response to staple says, read far enough to decide whether
//! to staple it: RFC 6960 section 4.2.1, OCSPResponse -> responseBytes ->
//! BasicOCSPResponse -> tbsResponseData -> responses, and in each
//! SingleResponse the certID's serial number, the status, thisUpdate and
//! nextUpdate. The signature is not checked (clients check it against the
//! issuer) and nothing else is read.
//!
//! Each element is one DER TLV read by asn1-rs (through x509-parser),
//! which checks every length against the bytes it was given: hostile
//! bytes are an error, never a panic or a read beyond them, and at most
//! [`MAX_RESPONSES`] single responses are looked at.

use std::time::{Duration, SystemTime, UNIX_EPOCH};

use x509_parser::asn1_rs::{Any, Class, FromDer, GeneralizedTime};

use crate::time::format_time;
use crate::tls::context::MAX_STAPLE;

/// The most single responses of one OCSP response looked at: a staple
/// answers for one certificate, and responders put it first.
const MAX_RESPONSES: usize = 16;

/// id-pkix-ocsp-basic (1.3.6.1.5.5.7.48.1.1): the content octets of the
/// OID, the only response type RFC 6960 defines.
const ID_PKIX_OCSP_BASIC: &[u8] = &[0x2b, 0x06, 0x01, 0x05, 0x05, 0x07, 0x30, 0x01, 0x01];

/// Universal tags used here.
const ENUMERATED: u32 = 10;
const INTEGER: u32 = 2;
const OCTET_STRING: u32 = 4;
const OID: u32 = 6;
const SEQUENCE: u32 = 16;
const GENERALIZED_TIME: u32 = 24;

/// What a response says of a certificate.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) enum CertStatus {
    Good,
    Revoked,
    Unknown,
}

/// One SingleResponse.
#[derive(Clone, Debug, PartialEq, Eq)]
pub(crate) struct SingleResponse {
    /// The certificate's serial number: the INTEGER's content octets,
    /// leading zero octets left out.
    pub(crate) serial: Vec<u8>,
    pub(crate) status: CertStatus,
    pub(crate) this_update: SystemTime,
    pub(crate) next_update: Option<SystemTime>,
}

/// The single responses (at most [`MAX_RESPONSES`]) of a successful basic
/// OCSP response, or what is wrong with it.
pub(crate) fn single_responses(der: &[u8]) -> Result<Vec<SingleResponse>, String> {
    let response = only(der, Class::Universal, SEQUENCE, "OCSPResponse")?;
    let (status, rest) = element(
        response.data,
        Class::Universal,
        ENUMERATED,
        "responseStatus",
    )?;
    if status.data != [0] {
        let name = match status.data {
            [1] => "malformedRequest",
            [2] => "internalError",
            [3] => "tryLater",
            [5] => "sigRequired",
            [6] => "unauthorized",
            _ => "an unknown status",
        };
        return Err(format!(
            "the responder answered {name}, not a status for the certificate"
        ));
    }
    let bytes = only(rest, Class::ContextSpecific, 0, "responseBytes")?;
    let bytes = only(bytes.data, Class::Universal, SEQUENCE, "ResponseBytes")?;
    let (kind, rest) = element(bytes.data, Class::Universal, OID, "responseType")?;
    if kind.data != ID_PKIX_OCSP_BASIC {
        return Err("not a basic OCSP response (id-pkix-ocsp-basic)".to_owned());
    }
    let basic = only(rest, Class::Universal, OCTET_STRING, "response")?;
    let basic = only(basic.data, Class::Universal, SEQUENCE, "BasicOCSPResponse")?;
    // The signature algorithm, signature and certificates follow: unread.
    let (tbs, _) = element(basic.data, Class::Universal, SEQUENCE, "tbsResponseData")?;
    let mut rest = tbs.data;
    if next_is(rest, Class::ContextSpecific, 0) {
        rest = element(rest, Class::ContextSpecific, 0, "version")?.1;
    }
    let (responder, after) = any(rest, "responderID")?;
    if responder.class() != Class::ContextSpecific || !matches!(responder.tag().0, 1 | 2) {
        return Err("malformed DER at responderID".to_owned());
    }
    let (_, rest) = element(after, Class::Universal, GENERALIZED_TIME, "producedAt")?;
    let (responses, _) = element(rest, Class::Universal, SEQUENCE, "responses")?;
    let mut rest = responses.data;
    let mut out = Vec::new();
    while !rest.is_empty() && out.len() < MAX_RESPONSES {
        let (single, after) = element(rest, Class::Universal, SEQUENCE, "SingleResponse")?;
        out.push(single_response(single.data)?);
        rest = after;
    }
    if out.is_empty() {
        return Err("it holds no response for any certificate".to_owned());
    }
    Ok(out)
}

/// A SingleResponse's fields.
fn single_response(der: &[u8]) -> Result<SingleResponse, String> {
    let (id, rest) = element(der, Class::Universal, SEQUENCE, "certID")?;
    let (_, id_rest) = element(id.data, Class::Universal, SEQUENCE, "hashAlgorithm")?;
    let (_, id_rest) = element(id_rest, Class::Universal, OCTET_STRING, "issuerNameHash")?;
    let (_, id_rest) = element(id_rest, Class::Universal, OCTET_STRING, "issuerKeyHash")?;
    let serial = only(id_rest, Class::Universal, INTEGER, "serialNumber")?;
    let serial = serial.data;
    let serial = serial[serial.iter().take_while(|b| **b == 0).count()..].to_vec();
    let (status, rest) = any(rest, "certStatus")?;
    let status = match (status.class(), status.tag().0) {
        (Class::ContextSpecific, 0) => CertStatus::Good,
        (Class::ContextSpecific, 1) => CertStatus::Revoked,
        (Class::ContextSpecific, 2) => CertStatus::Unknown,
        _ => return Err("malformed DER at certStatus".to_owned()),
    };
    let (this_update, rest) = element(rest, Class::Universal, GENERALIZED_TIME, "thisUpdate")?;
    let this_update = time(&this_update, "thisUpdate")?;
    let next_update = if next_is(rest, Class::ContextSpecific, 0) {
        let (wrapped, _) = element(rest, Class::ContextSpecific, 0, "nextUpdate")?;
        let t = only(
            wrapped.data,
            Class::Universal,
            GENERALIZED_TIME,
            "nextUpdate",
        )?;
        Some(time(&t, "nextUpdate")?)
    } else {
        None
    };
    Ok(SingleResponse {
        serial,
        status,
        this_update,
        next_update,
    })
}

/// The first element of `input`, and the bytes after it.
fn any<'a>(input: &'a [u8], what: &str) -> Result<(Any<'a>, &'a [u8]), String> {
    match Any::from_der(input) {
        Ok((rest, element)) => Ok((element, rest)),
        Err(_) => Err(format!("truncated or malformed DER at {what}")),
    }
}

/// The first element of `input`, which must have this class and tag (and
/// be constructed exactly when it is a SEQUENCE or explicitly tagged), and
/// the bytes after it.
fn element<'a>(
    input: &'a [u8],
    class: Class,
    tag: u32,
    what: &str,
) -> Result<(Any<'a>, &'a [u8]), String> {
    let (found, rest) = any(input, what)?;
    let constructed = class == Class::ContextSpecific || tag == SEQUENCE;
    if found.class() != class || found.tag().0 != tag || found.header.constructed() != constructed {
        return Err(format!("malformed DER at {what}"));
    }
    Ok((found, rest))
}

/// [`element`], which must be all of `input`.
fn only<'a>(input: &'a [u8], class: Class, tag: u32, what: &str) -> Result<Any<'a>, String> {
    let (found, rest) = element(input, class, tag, what)?;
    if !rest.is_empty() {
        return Err(format!("unexpected bytes after {what}"));
    }
    Ok(found)
}

/// Whether the first element of `input` has this class and tag.
fn next_is(input: &[u8], class: Class, tag: u32) -> bool {
    Any::from_der(input).is_ok_and(|(_, a)| a.class() == class && a.tag().0 == tag)
}

/// A GeneralizedTime as a `SystemTime`.
fn time(element: &Any<'_>, what: &str) -> Result<SystemTime, String> {
    let bad = || format!("malformed time at {what}");
    let t = GeneralizedTime::try_from(element).map_err(|_| bad())?;
    let secs = t.utc_datetime().map_err(|_| bad())?.unix_timestamp();
    let span = Duration::from_secs(secs.unsigned_abs());
    match secs >= 0 {
        true => UNIX_EPOCH.checked_add(span),
        false => UNIX_EPOCH.checked_sub(span),
    }
    .ok_or_else(bad)
}

/// Whether a listener staples a response, and what to say about it.
#[derive(Debug)]
pub(crate) struct Verdict {
    /// Staple it.
    pub(crate) staple: bool,
    /// Why it is not stapled, or what is wrong with what is.
    pub(crate) warning: Option<String>,
}

impl Verdict {
    fn refuse(warning: String) -> Verdict {
        Verdict {
            staple: false,
            warning: Some(warning),
        }
    }
}

/// Whether to staple the response `der` to the certificate `leaf` (DER)
/// at `now`: not if it cannot be read, is for another certificate (its
/// serial number differs), says the responder does not know it, or has
/// passed its nextUpdate (RFC 6960 section 3.2: a client must not accept
/// it then); a response that says the certificate is revoked is stapled
/// (it is the truth), with a warning.
pub(crate) fn judge(der: &[u8], leaf: &[u8], now: SystemTime) -> Verdict {
    if der.len() > MAX_STAPLE {
        return Verdict::refuse(format!(
            "the OCSP response is {} bytes, more than the {MAX_STAPLE} a staple may be (TLS 1.3 \
             carries it in a 64 KiB extension with the certificate): nothing is stapled",
            der.len()
        ));
    }
    let responses = match single_responses(der) {
        Ok(r) => r,
        Err(e) => {
            return Verdict::refuse(format!(
                "not an OCSP response that can be stapled ({e}): nothing is stapled; give the \
                 DER file `openssl ocsp -respout` writes for the current certificate"
            ));
        }
    };
    let served = leaf_serial(leaf);
    let Some(response) = responses
        .iter()
        .find(|r| served.as_deref().is_none_or(|s| r.serial == s))
    else {
        return Verdict::refuse(format!(
            "the OCSP response is for the certificate with serial number {}, not the one \
             served ({}): nothing is stapled; fetch the response for the current certificate",
            serial_hex(&responses[0].serial),
            served.as_deref().map_or_else(String::new, serial_hex),
        ));
    };
    let mut verdict = Verdict {
        staple: true,
        warning: served.is_none().then(|| {
            "the serial number of the certificate served cannot be read, so the OCSP response \
             stapled may be for another certificate"
                .to_owned()
        }),
    };
    match response.status {
        CertStatus::Good => {}
        CertStatus::Revoked => {
            verdict.warning = Some(format!(
                "the OCSP response says the certificate served (serial number {}) is revoked: it \
                 is stapled, and clients that read it refuse the connection; replace the \
                 certificate",
                serial_hex(&response.serial)
            ));
        }
        CertStatus::Unknown => {
            return Verdict::refuse(format!(
                "the OCSP responder does not know the certificate served (serial number {}): \
                 nothing is stapled; fetch the response from its issuer's responder",
                serial_hex(&response.serial)
            ));
        }
    }
    if response
        .this_update
        .duration_since(now)
        .is_ok_and(|ahead| ahead > MAX_CLOCK_SKEW)
    {
        return Verdict::refuse(format!(
            "the OCSP response is dated {} (its thisUpdate), in the future: nothing is \
             stapled, as clients refuse it; check the responder's clock or this machine's",
            format_time(response.this_update)
        ));
    }
    if let Some(next) = response.expires().filter(|next| *next < now) {
        return Verdict::refuse(format!(
            "the OCSP response expired at {} (its nextUpdate; a week after its thisUpdate without \
             one): nothing is stapled, as clients \
             refuse an expired staple; fetch a fresh one",
            format_time(next)
        ));
    }
    verdict
}

/// When the response `der` expires (its first single response's
/// nextUpdate), if it can be read and says.
pub(crate) fn next_update(der: &[u8], leaf: &[u8]) -> Option<SystemTime> {
    let served = leaf_serial(leaf)?;
    single_responses(der)
        .ok()?
        .into_iter()
        .find(|r| r.serial == served)?
        .expires()
}

/// How far a response's thisUpdate may be ahead of this machine's clock.
const MAX_CLOCK_SKEW: std::time::Duration = std::time::Duration::from_secs(5 * 60);

/// How long a response without a nextUpdate is stapled after its
/// thisUpdate (clients cap such responses too: Firefox at about 10 days).
const NO_NEXT_UPDATE_LIFETIME: std::time::Duration = std::time::Duration::from_secs(7 * 86_400);

impl SingleResponse {
    /// When it stops being stapled: its nextUpdate, or without one a week
    /// after its thisUpdate.
    fn expires(&self) -> Option<SystemTime> {
        self.next_update
            .or_else(|| self.this_update.checked_add(NO_NEXT_UPDATE_LIFETIME))
    }
}

/// A certificate's serial number as in [`SingleResponse::serial`].
fn leaf_serial(leaf: &[u8]) -> Option<Vec<u8>> {
    use x509_parser::prelude::FromDer as _;
    let (_, cert) = x509_parser::certificate::X509Certificate::from_der(leaf).ok()?;
    let serial = cert.tbs_certificate.raw_serial();
    Some(serial[serial.iter().take_while(|b| **b == 0).count()..].to_vec())
}

/// A serial number in upper-case hex, as `X509Certificate::serial_number`.
fn serial_hex(serial: &[u8]) -> String {
    match serial {
        [] => "00".to_owned(),
        s => s.iter().map(|b| format!("{b:02X}")).collect(),
    }
}

#[cfg(test)]
pub(crate) mod tests {
    use super::*;

    fn tlv(tag: u8, content: &[u8]) -> Vec<u8> {
        let mut out = vec![tag];
        let len = content.len();
        if len < 0x80 {
            out.push(len as u8);
        } else {
            let bytes: Vec<u8> = len
                .to_be_bytes()
                .into_iter()
                .skip_while(|b| *b == 0)
                .collect();
            out.push(0x80 | bytes.len() as u8);
            out.extend(bytes);
        }
        out.extend_from_slice(content);
        out
    }

    fn generalized(t: SystemTime) -> Vec<u8> {
        let secs = t.duration_since(UNIX_EPOCH).expect("after 1970").as_secs();
        let d = time::OffsetDateTime::from_unix_timestamp(secs as i64).expect("time");
        let text = format!(
            "{:04}{:02}{:02}{:02}{:02}{:02}Z",
            d.year(),
            u8::from(d.month()),
            d.day(),
            d.hour(),
            d.minute(),
            d.second()
        );
        tlv(0x18, text.as_bytes())
    }

    /// A basic OCSP response for `serial` (its INTEGER content), with a
    /// meaningless signature.
    pub(crate) fn response(
        serial: &[u8],
        status: CertStatus,
        this_update: SystemTime,
        next_update: Option<SystemTime>,
    ) -> Vec<u8> {
        let sha1 = tlv(
            0x30,
            &[tlv(0x06, &[0x2b, 0x0e, 0x03, 0x02, 0x1a]), vec![5, 0]].concat(),
        );
        let cert_id = tlv(
            0x30,
            &[
                sha1.clone(),
                tlv(0x04, &[1; 20]),
                tlv(0x04, &[2; 20]),
                tlv(0x02, serial),
            ]
            .concat(),
        );
        let status = match status {
            CertStatus::Good => vec![0x80, 0],
            CertStatus::Revoked => tlv(0xa1, &generalized(this_update)),
            CertStatus::Unknown => vec![0x82, 0],
        };
        let mut single = [cert_id, status, generalized(this_update)].concat();
        if let Some(next) = next_update {
            single.extend(tlv(0xa0, &generalized(next)));
        }
        let tbs = tlv(
            0x30,
            &[
                tlv(0xa2, &tlv(0x04, &[3; 20])),
                generalized(this_update),
                tlv(0x30, &tlv(0x30, &single)),
            ]
            .concat(),
        );
        let basic = tlv(
            0x30,
            &[
                tbs,
                tlv(
                    0x30,
                    &tlv(0x06, &[0x2a, 0x86, 0x48, 0xce, 0x3d, 0x04, 0x03, 0x02]),
                ),
                tlv(0x03, &[0, 9, 9, 9]),
            ]
            .concat(),
        );
        let bytes = tlv(
            0x30,
            &[tlv(0x06, ID_PKIX_OCSP_BASIC), tlv(0x04, &basic)].concat(),
        );
        tlv(0x30, &[tlv(0x0a, &[0]), tlv(0xa0, &bytes)].concat())
    }

    fn leaf() -> (Vec<u8>, Vec<u8>) {
        let pki = crate::testing::TestPki::new(&["localhost"]).expect("pki");
        let cert = crate::X509Certificate::from_pem(pki.server_cert_pem().as_bytes())
            .expect("pem")
            .remove(0);
        let der = cert.der().to_vec();
        let serial = leaf_serial(&der).expect("serial");
        (der, serial)
    }

    const DAY: Duration = Duration::from_secs(86_400);

    #[test]
    fn a_response_is_read_to_its_serial_status_and_times() {
        let now = UNIX_EPOCH + Duration::from_secs(1_750_000_000);
        let der = response(&[0, 0x81, 7], CertStatus::Revoked, now, Some(now + DAY));
        let read = single_responses(&der).expect("read");
        assert_eq!(
            read,
            vec![SingleResponse {
                serial: vec![0x81, 7],
                status: CertStatus::Revoked,
                this_update: now,
                next_update: Some(now + DAY),
            }]
        );
        let der = response(&[5], CertStatus::Good, now, None);
        assert_eq!(single_responses(&der).expect("read")[0].next_update, None);
    }

    #[test]
    fn a_staple_for_the_leaf_is_stapled_and_others_are_refused_with_a_reason() {
        let (leaf, serial) = leaf();
        let now = SystemTime::now();
        let good = response(&serial, CertStatus::Good, now - DAY, Some(now + DAY));
        let v = judge(&good, &leaf, now);
        assert!(v.staple && v.warning.is_none(), "{v:?}");
        assert_eq!(next_update(&good, &leaf).map(|t| t > now), Some(true));

        let expired = response(&serial, CertStatus::Good, now - 2 * DAY, Some(now - DAY));
        let v = judge(&expired, &leaf, now);
        assert!(!v.staple, "{v:?}");
        assert!(v.warning.as_deref().is_some_and(|w| w.contains("expired")));

        let other = response(&[0x42], CertStatus::Good, now - DAY, Some(now + DAY));
        let v = judge(&other, &leaf, now);
        assert!(!v.staple, "{v:?}");
        assert!(
            v.warning
                .as_deref()
                .is_some_and(|w| w.contains("serial number 42, not the one served")),
            "{v:?}"
        );

        let revoked = response(&serial, CertStatus::Revoked, now - DAY, Some(now + DAY));
        let v = judge(&revoked, &leaf, now);
        assert!(v.staple, "the truth is stapled");
        assert!(v.warning.as_deref().is_some_and(|w| w.contains("revoked")));

        let unknown = response(&serial, CertStatus::Unknown, now - DAY, Some(now + DAY));
        assert!(!judge(&unknown, &leaf, now).staple);

        let v = judge(&[0x30, 0x03, 0x0a, 0x01, 0x03], &leaf, now);
        assert!(!v.staple);
        assert!(v.warning.as_deref().is_some_and(|w| w.contains("tryLater")));
    }

    #[test]
    fn hostile_bytes_are_an_error_never_a_panic() {
        let now = UNIX_EPOCH + Duration::from_secs(1_750_000_000);
        let der = response(&[1, 2, 3], CertStatus::Good, now, Some(now + DAY));
        assert!(single_responses(&der).is_ok());
        // Every truncation, and every byte after a cut.
        for cut in 0..der.len() {
            assert!(single_responses(&der[..cut]).is_err(), "cut at {cut}");
        }
        let mut longer = der.clone();
        longer.push(0);
        assert!(single_responses(&longer).is_err(), "a byte after it");
        // Every byte changed: read or refused, never a panic.
        for i in 0..der.len() {
            for flip in [0x01, 0x80, 0xff] {
                let mut bad = der.clone();
                bad[i] ^= flip;
                let _ = single_responses(&bad);
            }
        }
        // Lengths that claim more than there is.
        for bad in [
            &[0x30, 0x84, 0xff, 0xff, 0xff, 0xff][..],
            &[0x30, 0x89, 1, 2, 3, 4, 5, 6, 7, 8, 9],
            &[0x30, 0x80, 0x00, 0x00],
            &[0x30],
            &[],
            &[0xff; 64],
        ] {
            assert!(single_responses(bad).is_err(), "{bad:?}");
        }
        // A pseudo-random walk over garbage.
        let mut x: u32 = 0x1234_5678;
        for _ in 0..2000 {
            let len = (x % 200) as usize;
            let bytes: Vec<u8> = (0..len)
                .map(|_| {
                    x ^= x << 13;
                    x ^= x >> 17;
                    x ^= x << 5;
                    x as u8
                })
                .collect();
            let _ = single_responses(&bytes);
            let _ = judge(&bytes, &bytes, now);
        }
        // A leaf whose serial cannot be read: stapled, with a warning.
        let v = judge(&der, b"not a certificate", now);
        assert!(v.staple && v.warning.is_some(), "{v:?}");
    }

    #[test]
    fn future_huge_and_undated_responses_are_bounded() {
        let (leaf, serial) = leaf();
        let now = SystemTime::now();
        // Dated ahead of this clock by more than the skew allowed.
        let ahead = response(&serial, CertStatus::Good, now + DAY, Some(now + 2 * DAY));
        let v = judge(&ahead, &leaf, now);
        assert!(!v.staple && v.warning.as_deref().is_some_and(|w| w.contains("future")));
        // No nextUpdate: stapled for a week after thisUpdate, not forever.
        let recent = response(&serial, CertStatus::Good, now - DAY, None);
        assert!(judge(&recent, &leaf, now).staple);
        let until = next_update(&recent, &leaf).expect("an end");
        let gap = (now + 6 * DAY)
            .duration_since(until)
            .expect("whole seconds");
        assert!(gap < Duration::from_secs(1), "{gap:?}");
        let old = response(&serial, CertStatus::Good, now - 8 * DAY, None);
        assert!(!judge(&old, &leaf, now).staple);
        // Larger than a staple may be: refused before it is parsed.
        let v = judge(&vec![0x30; MAX_STAPLE + 1], &leaf, now);
        assert!(!v.staple && v.warning.as_deref().is_some_and(|w| w.contains("bytes")));
    }
}
