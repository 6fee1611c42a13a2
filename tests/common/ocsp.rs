//! OCSP responses made at test time: the DER of RFC 6960 section 4.2.1
//! (OCSPResponse, a basic response, one SingleResponse) with a signature
//! that means nothing: securenet does not check it, and the clients of
//! these tests only compare bytes.

use std::time::{SystemTime, UNIX_EPOCH};

/// A DER TLV.
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

fn generalized_time(t: SystemTime) -> Vec<u8> {
    let secs = t.duration_since(UNIX_EPOCH).expect("after 1970").as_secs();
    let d = time::OffsetDateTime::from_unix_timestamp(secs as i64).expect("a date");
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

/// The serial number of the first certificate in `pem`, as upper-case
/// hex (`X509Certificate::serial_number`).
pub fn serial_of(pem: &str) -> String {
    securenet::X509Certificate::from_pem(pem.as_bytes()).expect("pem")[0]
        .serial_number()
        .to_owned()
}

/// A "good" response for the certificate with this serial number (hex),
/// valid from `this_update` to `next_update`.
pub fn response(serial_hex: &str, this_update: SystemTime, next_update: SystemTime) -> Vec<u8> {
    let serial: Vec<u8> = (0..serial_hex.len())
        .step_by(2)
        .map(|i| u8::from_str_radix(&serial_hex[i..i + 2], 16).expect("hex"))
        .collect();
    let sha1 = tlv(
        0x30,
        &[tlv(0x06, &[0x2b, 0x0e, 0x03, 0x02, 0x1a]), vec![0x05, 0]].concat(),
    );
    let cert_id = tlv(
        0x30,
        &[
            sha1,
            tlv(0x04, &[1; 20]),
            tlv(0x04, &[2; 20]),
            tlv(0x02, &serial),
        ]
        .concat(),
    );
    let single = tlv(
        0x30,
        &[
            cert_id,
            vec![0x80, 0], // good
            generalized_time(this_update),
            tlv(0xa0, &generalized_time(next_update)),
        ]
        .concat(),
    );
    let tbs = tlv(
        0x30,
        &[
            tlv(0xa2, &tlv(0x04, &[3; 20])),
            generalized_time(this_update),
            tlv(0x30, &single),
        ]
        .concat(),
    );
    let ecdsa_sha256 = tlv(0x06, &[0x2a, 0x86, 0x48, 0xce, 0x3d, 0x04, 0x03, 0x02]);
    let basic = tlv(
        0x30,
        &[tbs, tlv(0x30, &ecdsa_sha256), tlv(0x03, &[0, 9, 9, 9])].concat(),
    );
    let ocsp_basic = [0x2b, 0x06, 0x01, 0x05, 0x05, 0x07, 0x30, 0x01, 0x01];
    let bytes = tlv(0x30, &[tlv(0x06, &ocsp_basic), tlv(0x04, &basic)].concat());
    tlv(0x30, &[tlv(0x0a, &[0]), tlv(0xa0, &bytes)].concat())
}
