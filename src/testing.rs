//! A test PKI made at run time (feature `testing`): a CA, a server
//! certificate for the names you give, and a client certificate, as ready
//! [`SecurityContext`]s. For tests and harnesses; never for production.

use rcgen::{
    BasicConstraints, CertificateParams, CertifiedIssuer, DnType, ExtendedKeyUsagePurpose, IsCa,
    KeyPair, KeyUsagePurpose,
};

use crate::error::{Error, Result};
use crate::time::year_and_month;
use crate::tls::certificate::X509Certificate;
use crate::tls::context::SecurityContext;

/// A CA with a server and a client certificate, made with rcgen (ECDSA
/// P-256), valid from the start of last year to the end of next year.
///
/// ```
/// # fn main() -> securenet::Result<()> {
/// let pki = securenet::testing::TestPki::new(&["localhost", "127.0.0.1"])?;
/// let server = pki.server_context(); // serves the server certificate
/// let client = pki.client_context(); // trusts the CA, has a client certificate
/// # let _ = (server, client);
/// # Ok(()) }
/// ```
pub struct TestPki {
    ca: CertifiedIssuer<'static, KeyPair>,
    server_pem: String,
    server_key_pem: String,
    client_pem: String,
    client_key_pem: String,
}

impl std::fmt::Debug for TestPki {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("TestPki").finish_non_exhaustive()
    }
}

fn rcgen_error(e: rcgen::Error) -> Error {
    Error::credentials("test pki", format!("cannot make a certificate: {e}"))
}

/// The CA: valid from last year to the end of next year.
fn ca_validity(params: &mut CertificateParams) {
    let (year, _) = today();
    params.not_before = rcgen::date_time_ymd(year - 1, 1, 1);
    params.not_after = rcgen::date_time_ymd(year + 1, 12, 31);
}

/// A leaf: valid from the first of last month for 11 months (about 334 days),
/// under the 366-day lifetime that browsers and Mozilla's TLS guidelines allow.
fn leaf_validity(params: &mut CertificateParams) {
    let (year, month) = today();
    let (from_year, from_month) = if month == 1 {
        (year - 1, 12)
    } else {
        (year, month - 1)
    };
    let to = from_month + 11;
    let (to_year, to_month) = if to > 12 {
        (from_year + 1, to - 12)
    } else {
        (from_year, to)
    };
    params.not_before = rcgen::date_time_ymd(from_year, from_month, 1);
    params.not_after = rcgen::date_time_ymd(to_year, to_month, 1);
}

/// Today's year and month (UTC).
fn today() -> (i32, u8) {
    year_and_month()
}

impl TestPki {
    /// Makes the CA and certificates. `names` are the server certificate's
    /// subjectAltNames: DNS names, or IP addresses (which become IP SANs).
    /// The first name is also its common name.
    pub fn new(names: &[&str]) -> Result<TestPki> {
        let Some(first) = names.first() else {
            return Err(Error::invalid_input(
                "[]",
                "give at least one name, e.g. [\"localhost\", \"127.0.0.1\"]",
            ));
        };
        let mut ca_params = CertificateParams::new(Vec::<String>::new()).map_err(rcgen_error)?;
        ca_params
            .distinguished_name
            .push(DnType::CommonName, "securenet test CA");
        ca_params.is_ca = IsCa::Ca(BasicConstraints::Unconstrained);
        ca_params.key_usages = vec![
            KeyUsagePurpose::KeyCertSign,
            KeyUsagePurpose::CrlSign,
            KeyUsagePurpose::DigitalSignature,
        ];
        ca_validity(&mut ca_params);
        let ca_key = KeyPair::generate().map_err(rcgen_error)?;
        let ca = CertifiedIssuer::self_signed(ca_params, ca_key).map_err(rcgen_error)?;

        let names: Vec<String> = names.iter().map(|n| (*n).to_owned()).collect();
        let (server_pem, server_key_pem) =
            Self::leaf(&ca, names, first, ExtendedKeyUsagePurpose::ServerAuth)?;
        let (client_pem, client_key_pem) = Self::leaf(
            &ca,
            Vec::new(),
            "securenet test client",
            ExtendedKeyUsagePurpose::ClientAuth,
        )?;
        Ok(TestPki {
            ca,
            server_pem,
            server_key_pem,
            client_pem,
            client_key_pem,
        })
    }

    fn leaf(
        ca: &CertifiedIssuer<'static, KeyPair>,
        names: Vec<String>,
        common_name: &str,
        usage: ExtendedKeyUsagePurpose,
    ) -> Result<(String, String)> {
        let mut params = CertificateParams::new(names).map_err(|e| {
            Error::invalid_input("names", format!("not a DNS name or IP address: {e}"))
        })?;
        params
            .distinguished_name
            .push(DnType::CommonName, common_name);
        params.extended_key_usages = vec![usage];
        params.key_usages = vec![KeyUsagePurpose::DigitalSignature];
        params.use_authority_key_identifier_extension = true;
        leaf_validity(&mut params);
        let key = KeyPair::generate().map_err(rcgen_error)?;
        let cert = params.signed_by(&key, ca).map_err(rcgen_error)?;
        Ok((cert.pem(), key.serialize_pem()))
    }

    /// Another server certificate and key from the same CA, as a renewal
    /// would bring: (certificate PEM, key PEM), for testing certificate
    /// rotation ([`BindOptions::reload_certificate_files`](crate::BindOptions::reload_certificate_files),
    /// [`SecureListener::set_context`](crate::SecureListener::set_context)).
    pub fn renewed_server(&self, names: &[&str]) -> Result<(String, String)> {
        let first = names.first().copied().unwrap_or("localhost");
        let names = names.iter().map(|n| (*n).to_owned()).collect();
        Self::leaf(&self.ca, names, first, ExtendedKeyUsagePurpose::ServerAuth)
    }

    /// The CA certificate, PEM.
    pub fn ca_pem(&self) -> String {
        self.ca.pem()
    }

    /// The CA certificate.
    pub fn ca_certificate(&self) -> X509Certificate {
        X509Certificate::from_der(self.ca.der()).expect("rcgen makes valid certificates")
    }

    /// The server certificate, PEM.
    pub fn server_cert_pem(&self) -> &str {
        &self.server_pem
    }

    /// The server's private key, PKCS#8 PEM.
    pub fn server_key_pem(&self) -> &str {
        &self.server_key_pem
    }

    /// The client certificate, PEM.
    pub fn client_cert_pem(&self) -> &str {
        &self.client_pem
    }

    /// The client's private key, PKCS#8 PEM.
    pub fn client_key_pem(&self) -> &str {
        &self.client_key_pem
    }

    /// A server context: the server certificate and key; client
    /// certificates must chain to the CA.
    pub fn server_context(&self) -> SecurityContext {
        self.context(true, Some((&self.server_pem, &self.server_key_pem)))
    }

    /// A client context: trusts the CA (only), and has the client
    /// certificate and key for servers that ask for one.
    pub fn client_context(&self) -> SecurityContext {
        self.context(false, Some((&self.client_pem, &self.client_key_pem)))
    }

    /// A context that trusts the CA and has no certificate of its own.
    pub fn trust_context(&self) -> SecurityContext {
        self.context(false, None)
    }

    fn context(&self, server: bool, own: Option<(&str, &str)>) -> SecurityContext {
        let ca = self.ca.pem();
        let mut ctx = SecurityContext::empty();
        // The material was made above, so loading it cannot fail.
        let loaded = (|| -> Result<()> {
            ctx.set_trusted_certificates_bytes(ca.as_bytes())?;
            if server {
                ctx.set_client_authorities_bytes(ca.as_bytes())?;
            }
            if let Some((cert, key)) = own {
                ctx.use_certificate_chain_bytes(cert.as_bytes())?;
                ctx.use_private_key_bytes(key.as_bytes())?;
            }
            Ok(())
        })();
        if let Err(e) = loaded {
            panic!("securenet test pki: loading its own certificates failed: {e}");
        }
        ctx
    }
}
