//! X509Certificate parsing from DER, and every accessor on what parses.
#![no_main]

use libfuzzer_sys::fuzz_target;
use securenet::X509Certificate;

fuzz_target!(|data: &[u8]| {
    match X509Certificate::from_der(data) {
        Ok(cert) => {
            let _ = (cert.subject(), cert.issuer());
            let _ = (cert.start_validity(), cert.end_validity());
            let _ = (cert.sha1(), cert.sha256(), cert.is_ca());
            let _ = cert.subject_alt_names();
            let pem = cert.pem();
            assert!(pem.starts_with("-----BEGIN CERTIFICATE-----"));
            assert_eq!(cert.der(), data);
        }
        Err(e) => assert!(!e.to_string().is_empty()),
    }
});
