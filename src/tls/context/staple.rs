//! A context's OCSP staple: set by the user, or from a listener's OCSP
//! file (judged by `tls::ocsp` before it comes here).

use std::path::Path;

use super::{SecurityContext, certify};
use crate::error::{Error, Result};
use crate::tls::pem::read_file;

/// The largest OCSP response stapled: real ones are a few KiB, and TLS 1.3
/// carries the staple beside the certificate in an extension whose length
/// is 16 bits.
pub(crate) const MAX_STAPLE: usize = 16 * 1024;

impl SecurityContext {
    /// Staples this OCSP response (DER, as `openssl ocsp -respout` writes
    /// it) to our certificate in every handshake, so clients need not ask
    /// the CA (Node's `OCSPRequest` answer, Go's `Certificate.OCSPStaple`).
    /// It must be renewed before its `nextUpdate`: set a fresh one and
    /// [`SecureListener::set_context`](crate::SecureListener::set_context).
    /// Bytes that are not a DER structure are [`Error::Credentials`].
    pub fn set_ocsp_response(&mut self, path: impl AsRef<Path>) -> Result<()> {
        let path = path.as_ref();
        let bytes = read_file(path)?;
        self.staple(bytes, &path.display().to_string())
    }

    /// Like [`set_ocsp_response`](Self::set_ocsp_response), from bytes.
    pub fn set_ocsp_response_bytes(&mut self, der: &[u8]) -> Result<()> {
        self.staple(der.to_vec(), "OCSP response (bytes)")
    }

    fn staple(&mut self, der: Vec<u8>, label: &str) -> Result<()> {
        if der.len() > MAX_STAPLE {
            return Err(Error::credentials(
                label,
                format!(
                    "{} bytes: an OCSP response to staple may be at most {} bytes (TLS 1.3 \
                     carries it beside the certificate in a 64 KiB extension)",
                    der.len(),
                    MAX_STAPLE
                ),
            ));
        }
        if !is_der_sequence(&der) {
            return Err(Error::credentials(
                label,
                "not a DER OCSP response (a SEQUENCE of exactly this length): give the file \
                 `openssl ocsp -respout` writes, not PEM or text",
            ));
        }
        self.update(|d| {
            d.ocsp = Some(der);
            certify(d)
        })
    }

    /// This context stapling `der` (one DER SEQUENCE), or nothing: a
    /// listener's OCSP file, judged by the caller.
    pub(crate) fn with_staple(&self, der: Option<Vec<u8>>, label: &str) -> Result<Self> {
        let mut next = self.clone();
        match der {
            Some(der) => next.staple(der, label)?,
            None => next.update(|d| {
                d.ocsp = None;
                certify(d)
            })?,
        }
        Ok(next)
    }

    /// The OCSP response stapled, if any.
    pub(crate) fn stapled(&self) -> Option<&[u8]> {
        self.inner.data.ocsp.as_deref()
    }
}

/// Whether `der` is one DER SEQUENCE and nothing after it.
fn is_der_sequence(der: &[u8]) -> bool {
    let (Some(&0x30), Some(&first)) = (der.first(), der.get(1)) else {
        return false;
    };
    let (len, header) = if first < 0x80 {
        (usize::from(first), 2)
    } else {
        let n = usize::from(first & 0x7f);
        if n == 0 || n > 4 || der.len() < 2 + n {
            return false;
        }
        let len = der[2..2 + n]
            .iter()
            .fold(0usize, |acc, b| (acc << 8) | usize::from(*b));
        (len, 2 + n)
    };
    header.checked_add(len) == Some(der.len())
}
