//! PEM and DER loading into a SecurityContext: trusted certificates, a
//! certificate chain, a private key, client authorities, CRLs, PKCS#12, and
//! a chain with a key that must match it. The first byte picks the loader.
#![no_main]

use libfuzzer_sys::fuzz_target;
use securenet::SecurityContext;

fuzz_target!(|data: &[u8]| {
    let Some((&which, rest)) = data.split_first() else {
        return;
    };
    let mut ctx = SecurityContext::empty();
    let result = match which % 8 {
        0 => ctx.set_trusted_certificates_bytes(rest),
        1 => ctx.use_certificate_chain_bytes(rest),
        2 => ctx.use_private_key_bytes(rest),
        3 => ctx.set_client_authorities_bytes(rest),
        4 => ctx.set_crls_bytes(rest),
        5 => ctx.use_pkcs12_bytes(rest, "fuzz"),
        6 => ctx.set_trusted_certificates_pkcs12_bytes(rest, "fuzz"),
        _ => {
            // A chain, then a key that must match it, split at the first NUL.
            let cut = rest.iter().position(|&b| b == 0).unwrap_or(rest.len());
            let (chain, key) = rest.split_at(cut);
            ctx.use_certificate_chain_bytes(chain)
                .and_then(|()| ctx.use_private_key_bytes(key.get(1..).unwrap_or_default()))
        }
    };
    if let Err(e) = result {
        // Every error has a message; building it must not panic either.
        assert!(!e.to_string().is_empty());
        let _ = std::io::Error::from(e);
    }
    for cert in ctx.certificate_chain() {
        let _ = (cert.subject(), cert.issuer(), cert.subject_alt_names());
    }
});
