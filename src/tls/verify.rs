//! Certificate verification: the client's server-certificate verifier (with
//! `on_bad_certificate`, `check_server_identity` and `reject_unauthorized`),
//! the server's client-certificate verifier, and the mapping of rustls errors
//! to securenet's typed, actionable errors.

use std::fmt;
use std::sync::Arc;
use std::time::{Duration, UNIX_EPOCH};

use rustls::client::WebPkiServerVerifier;
use rustls::client::danger::{HandshakeSignatureValid, ServerCertVerified, ServerCertVerifier};
use rustls::crypto::WebPkiSupportedAlgorithms;
use rustls::pki_types::{CertificateDer, CertificateRevocationListDer, ServerName, UnixTime};
use rustls::server::danger::{ClientCertVerified, ClientCertVerifier};
use rustls::{
    AlertDescription, CertificateError, DigitallySignedStruct, DistinguishedName, OtherError,
    RootCertStore, SignatureScheme,
};

use crate::error::{CertificateProblem, Error};
use crate::tls::certificate::X509Certificate;

/// `on_bad_certificate`: asked about a certificate that failed verification.
pub(crate) type BadCertificateFn = Arc<dyn Fn(&X509Certificate) -> bool + Send + Sync>;
/// `check_server_identity`: replaces the name check.
pub(crate) type IdentityFn =
    Arc<dyn Fn(&str, &X509Certificate) -> std::result::Result<(), String> + Send + Sync>;

/// A typed certificate failure carried through rustls inside
/// `CertificateError::Other`, so the error the user sees keeps its detail.
#[derive(Debug)]
struct CertFailure(CertificateProblem);

impl fmt::Display for CertFailure {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        self.0.fmt(f)
    }
}

impl std::error::Error for CertFailure {}

fn to_rustls(problem: CertificateProblem) -> rustls::Error {
    rustls::Error::InvalidCertificate(CertificateError::Other(OtherError(Arc::new(CertFailure(
        problem,
    )))))
}

/// The client's verifier of server certificates.
pub(crate) struct ServerVerifier {
    webpki: Option<Arc<WebPkiServerVerifier>>,
    on_bad: Option<BadCertificateFn>,
    identity: Option<IdentityFn>,
    reject_unauthorized: bool,
    algs: WebPkiSupportedAlgorithms,
}

impl fmt::Debug for ServerVerifier {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("ServerVerifier")
            .field("reject_unauthorized", &self.reject_unauthorized)
            .field("on_bad_certificate", &self.on_bad.is_some())
            .field("check_server_identity", &self.identity.is_some())
            .finish()
    }
}

impl ServerVerifier {
    pub(crate) fn new(
        roots: Arc<RootCertStore>,
        crls: &[CertificateRevocationListDer<'static>],
        on_bad: Option<BadCertificateFn>,
        identity: Option<IdentityFn>,
        reject_unauthorized: bool,
    ) -> Result<ServerVerifier, Error> {
        let provider = crate::tls::params::provider();
        let webpki = if roots.is_empty() {
            None
        } else {
            Some(
                WebPkiServerVerifier::builder_with_provider(roots, provider.clone())
                    .with_crls(crls.iter().cloned())
                    .allow_unknown_revocation_status()
                    .build()
                    .map_err(|e| {
                        Error::credentials("trusted certificates", format!("unusable: {e}"))
                    })?,
            )
        };
        Ok(ServerVerifier {
            webpki,
            on_bad,
            identity,
            reject_unauthorized,
            algs: provider.signature_verification_algorithms,
        })
    }

    /// Whether a failed verification can still let the handshake go on, in
    /// which case the stream computes `authorization_error` afterwards.
    pub(crate) fn may_accept_bad(&self) -> bool {
        !self.reject_unauthorized || self.on_bad.is_some()
    }

    /// Full verification: chain, validity, then the name (or the user's
    /// identity check instead of the name).
    pub(crate) fn check(
        &self,
        end_entity: &CertificateDer<'_>,
        intermediates: &[CertificateDer<'_>],
        name: &ServerName<'_>,
        now: UnixTime,
    ) -> Result<(), CertificateProblem> {
        let Some(webpki) = &self.webpki else {
            // An empty trust store: nothing chains anywhere.
            return Err(classify_unknown_issuer(end_entity, intermediates));
        };
        match webpki.verify_server_cert(end_entity, intermediates, name, &[], now) {
            Ok(_) => self.run_identity(end_entity, name),
            Err(rustls::Error::InvalidCertificate(
                CertificateError::NotValidForName | CertificateError::NotValidForNameContext { .. },
            )) if self.identity.is_some() => {
                // webpki checks the name last, so the chain is valid here.
                self.run_identity(end_entity, name)
            }
            Err(e) => Err(classify(&e, Some((end_entity, intermediates)), Some(name))),
        }
    }

    fn run_identity(
        &self,
        end_entity: &CertificateDer<'_>,
        name: &ServerName<'_>,
    ) -> Result<(), CertificateProblem> {
        let Some(identity) = &self.identity else {
            return Ok(());
        };
        let cert =
            X509Certificate::from_der(end_entity).map_err(|_| CertificateProblem::BadEncoding)?;
        identity(&name.to_str(), &cert).map_err(|reason| CertificateProblem::Rejected { reason })
    }
}

impl ServerCertVerifier for ServerVerifier {
    fn verify_server_cert(
        &self,
        end_entity: &CertificateDer<'_>,
        intermediates: &[CertificateDer<'_>],
        server_name: &ServerName<'_>,
        _ocsp_response: &[u8],
        now: UnixTime,
    ) -> Result<ServerCertVerified, rustls::Error> {
        let Err(problem) = self.check(end_entity, intermediates, server_name, now) else {
            return Ok(ServerCertVerified::assertion());
        };
        if !self.reject_unauthorized {
            return Ok(ServerCertVerified::assertion());
        }
        if let Some(on_bad) = &self.on_bad {
            if let Ok(cert) = X509Certificate::from_der(end_entity) {
                if on_bad(&cert) {
                    return Ok(ServerCertVerified::assertion());
                }
            }
        }
        Err(to_rustls(problem))
    }

    fn verify_tls12_signature(
        &self,
        message: &[u8],
        cert: &CertificateDer<'_>,
        dss: &DigitallySignedStruct,
    ) -> Result<HandshakeSignatureValid, rustls::Error> {
        rustls::crypto::verify_tls12_signature(message, cert, dss, &self.algs)
    }

    fn verify_tls13_signature(
        &self,
        message: &[u8],
        cert: &CertificateDer<'_>,
        dss: &DigitallySignedStruct,
    ) -> Result<HandshakeSignatureValid, rustls::Error> {
        rustls::crypto::verify_tls13_signature(message, cert, dss, &self.algs)
    }

    fn supported_verify_schemes(&self) -> Vec<SignatureScheme> {
        self.algs.supported_schemes()
    }
}

/// The server's verifier of client certificates: rustls's webpki verifier,
/// with failures classified like the client's and offered to
/// `on_bad_client_certificate`.
pub(crate) struct ClientVerifier {
    inner: Option<Arc<dyn ClientCertVerifier>>,
    mandatory: bool,
    on_bad: Option<BadCertificateFn>,
    algs: WebPkiSupportedAlgorithms,
}

impl fmt::Debug for ClientVerifier {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("ClientVerifier")
            .field("mandatory", &self.mandatory)
            .field("on_bad_client_certificate", &self.on_bad.is_some())
            .finish()
    }
}

impl ClientVerifier {
    pub(crate) fn new(
        roots: Arc<RootCertStore>,
        crls: &[CertificateRevocationListDer<'static>],
        mandatory: bool,
        on_bad: Option<BadCertificateFn>,
    ) -> Result<ClientVerifier, Error> {
        let provider = crate::tls::params::provider();
        let inner = if roots.is_empty() && on_bad.is_some() {
            // Every certificate goes to the callback.
            None
        } else {
            let builder = rustls::server::WebPkiClientVerifier::builder_with_provider(
                roots,
                provider.clone(),
            )
            .with_crls(crls.iter().cloned())
            .allow_unknown_revocation_status();
            let builder = if mandatory {
                builder
            } else {
                builder.allow_unauthenticated()
            };
            Some(builder.build().map_err(|e| {
                Error::credentials(
                    "client authorities",
                    format!(
                        "cannot verify client certificates ({e}): call set_client_authorities or \
                         set_trusted_certificates with the CA that issues them"
                    ),
                )
            })?)
        };
        Ok(ClientVerifier {
            inner,
            mandatory,
            on_bad,
            algs: provider.signature_verification_algorithms,
        })
    }
}

impl ClientCertVerifier for ClientVerifier {
    fn offer_client_auth(&self) -> bool {
        true
    }

    fn client_auth_mandatory(&self) -> bool {
        self.mandatory
    }

    fn root_hint_subjects(&self) -> &[DistinguishedName] {
        self.inner.as_ref().map_or(&[], |v| v.root_hint_subjects())
    }

    fn verify_client_cert(
        &self,
        end_entity: &CertificateDer<'_>,
        intermediates: &[CertificateDer<'_>],
        now: UnixTime,
    ) -> Result<ClientCertVerified, rustls::Error> {
        let problem = match &self.inner {
            Some(v) => match v.verify_client_cert(end_entity, intermediates, now) {
                Ok(ok) => return Ok(ok),
                Err(e) => classify(&e, Some((end_entity, intermediates)), None),
            },
            None => classify_unknown_issuer(end_entity, intermediates),
        };
        if let Some(on_bad) = &self.on_bad {
            if let Ok(cert) = X509Certificate::from_der(end_entity) {
                if on_bad(&cert) {
                    return Ok(ClientCertVerified::assertion());
                }
            }
        }
        Err(to_rustls(problem))
    }

    fn verify_tls12_signature(
        &self,
        message: &[u8],
        cert: &CertificateDer<'_>,
        dss: &DigitallySignedStruct,
    ) -> Result<HandshakeSignatureValid, rustls::Error> {
        rustls::crypto::verify_tls12_signature(message, cert, dss, &self.algs)
    }

    fn verify_tls13_signature(
        &self,
        message: &[u8],
        cert: &CertificateDer<'_>,
        dss: &DigitallySignedStruct,
    ) -> Result<HandshakeSignatureValid, rustls::Error> {
        rustls::crypto::verify_tls13_signature(message, cert, dss, &self.algs)
    }

    fn supported_verify_schemes(&self) -> Vec<SignatureScheme> {
        self.algs.supported_schemes()
    }
}

fn unix_to_system(t: UnixTime) -> std::time::SystemTime {
    UNIX_EPOCH + Duration::from_secs(t.as_secs())
}

fn classify_unknown_issuer(
    end_entity: &CertificateDer<'_>,
    intermediates: &[CertificateDer<'_>],
) -> CertificateProblem {
    let leaf = X509Certificate::from_der(end_entity).ok();
    if let Some(leaf) = &leaf {
        if intermediates.is_empty() && leaf.is_self_issued() {
            return CertificateProblem::SelfSigned {
                subject: leaf.subject().to_owned(),
            };
        }
    }
    let last_sent = intermediates
        .last()
        .and_then(|c| X509Certificate::from_der(c).ok());
    if let Some(root) = last_sent.as_ref().filter(|c| c.is_self_issued()) {
        return CertificateProblem::UntrustedRoot {
            root: root.subject().to_owned(),
        };
    }
    let last = last_sent.or(leaf);
    CertificateProblem::UnknownIssuer {
        issuer: last
            .map(|c| c.issuer().to_owned())
            .unwrap_or_else(|| "unknown".to_owned()),
    }
}

/// The leaf's DNS names and IP addresses, in plain text.
fn leaf_names(chain: Option<(&CertificateDer<'_>, &[CertificateDer<'_>])>) -> Option<Vec<String>> {
    let (leaf, _) = chain?;
    X509Certificate::from_der(leaf)
        .ok()
        .map(|c| c.subject_alt_names())
}

/// Turns a rustls verification error into a typed problem, using the chain
/// (when known) to tell a self-signed leaf from an untrusted root.
fn classify(
    err: &rustls::Error,
    chain: Option<(&CertificateDer<'_>, &[CertificateDer<'_>])>,
    name: Option<&ServerName<'_>>,
) -> CertificateProblem {
    use CertificateProblem as P;
    let ce = match err {
        rustls::Error::InvalidCertificate(ce) => ce,
        rustls::Error::NoCertificatesPresented => return P::NotPresented,
        other => return P::Other(other.to_string()),
    };
    #[allow(deprecated)]
    match ce {
        CertificateError::Expired => P::Expired { not_after: None },
        CertificateError::ExpiredContext { not_after, .. } => P::Expired {
            not_after: Some(unix_to_system(*not_after)),
        },
        CertificateError::NotValidYet => P::NotYetValid { not_before: None },
        CertificateError::NotValidYetContext { not_before, .. } => P::NotYetValid {
            not_before: Some(unix_to_system(*not_before)),
        },
        CertificateError::NotValidForNameContext {
            expected,
            presented,
        } => P::NameMismatch {
            expected: expected.to_str().into_owned(),
            presented: leaf_names(chain).unwrap_or_else(|| presented.clone()),
        },
        CertificateError::NotValidForName => P::NameMismatch {
            expected: name.map(|n| n.to_str().into_owned()).unwrap_or_default(),
            presented: leaf_names(chain).unwrap_or_default(),
        },
        CertificateError::UnknownIssuer => match chain {
            Some((ee, inter)) => classify_unknown_issuer(ee, inter),
            None => P::UnknownIssuer {
                issuer: "unknown".to_owned(),
            },
        },
        CertificateError::Revoked => P::Revoked,
        CertificateError::BadSignature => P::BadSignature,
        CertificateError::UnsupportedSignatureAlgorithm
        | CertificateError::UnsupportedSignatureAlgorithmContext { .. }
        | CertificateError::UnsupportedSignatureAlgorithmForPublicKeyContext { .. } => {
            P::UnsupportedAlgorithm
        }
        CertificateError::InvalidPurpose | CertificateError::InvalidPurposeContext { .. } => {
            P::InvalidPurpose
        }
        CertificateError::BadEncoding => P::BadEncoding,
        CertificateError::Other(OtherError(inner)) => {
            if let Some(f) = inner.downcast_ref::<CertFailure>() {
                return f.0.clone();
            }
            match inner.downcast_ref::<webpki::Error>() {
                Some(webpki::Error::CaUsedAsEndEntity) => P::CaUsedAsLeaf,
                Some(
                    webpki::Error::UnsupportedSignatureAlgorithmForPublicKey
                    | webpki::Error::UnsupportedSignatureAlgorithm,
                ) => P::UnsupportedAlgorithm,
                Some(e) => P::Other(format!("the certificate is invalid: {e:?}")),
                None => P::Other(format!("the certificate is invalid: {inner}")),
            }
        }
        other => P::Other(format!("the certificate is invalid: {other:?}")),
    }
}

/// Maps a rustls error to securenet's, with a reason that says what to do.
pub(crate) fn map_tls_error(err: rustls::Error, handshaking: bool) -> Error {
    use rustls::Error as E;
    let reason = match &err {
        E::InvalidCertificate(_) | E::NoCertificatesPresented => {
            return Error::Certificate {
                problem: classify(&err, None, None),
            };
        }
        E::AlertReceived(alert) => alert_reason(*alert),
        E::PeerIncompatible(p) => {
            let what = format!("{p:?}");
            if what.contains("Tls12") || what.contains("Tls13") || what.contains("Version") {
                format!(
                    "the TLS versions of the two sides do not overlap ({what}): check \
                     set_protocol_versions on both sides"
                )
            } else {
                format!(
                    "no cipher suite or key exchange group in common with the peer ({what}): \
                     check set_cipher_suites and set_key_exchange_groups"
                )
            }
        }
        E::NoApplicationProtocol => "no application protocol (ALPN) in common with the peer: \
                                     check supported_protocols on both sides"
            .to_owned(),
        E::InvalidMessage(_) | E::InappropriateMessage { .. } => format!(
            "the peer sent something that is not valid TLS ({err}): is it a TLS peer on that port?"
        ),
        E::InappropriateHandshakeMessage { .. } | E::PeerMisbehaved(_) => {
            format!("the peer violated the TLS protocol ({err})")
        }
        E::DecryptError => "a record failed to decrypt: the data was altered in transit or the \
                            peer is broken"
            .to_owned(),
        _ => err.to_string(),
    };
    let source = Some(Box::new(err) as Box<dyn std::error::Error + Send + Sync>);
    if handshaking {
        Error::Handshake { reason, source }
    } else {
        Error::Protocol { reason, source }
    }
}

fn alert_reason(alert: AlertDescription) -> String {
    use AlertDescription as A;
    match alert {
        A::ProtocolVersion => "the TLS versions of the two sides do not overlap (the peer sent \
                               a protocol_version alert): check set_protocol_versions"
            .to_owned(),
        A::HandshakeFailure | A::InsufficientSecurity => format!(
            "the peer sent a {alert:?} alert: no cipher suite or key exchange group in common"
        ),
        A::CertificateRequired => "the server requires a client certificate: set one with \
                                   use_certificate_chain and use_private_key"
            .to_owned(),
        A::BadCertificate
        | A::UnknownCA
        | A::CertificateUnknown
        | A::CertificateExpired
        | A::CertificateRevoked
        | A::UnsupportedCertificate
        | A::AccessDenied => format!(
            "the peer rejected our certificate ({alert:?} alert): check that it is valid and \
             issued by a CA the peer trusts"
        ),
        A::NoApplicationProtocol => "the peer supports none of the offered application \
                                     protocols (no_application_protocol alert): check \
                                     supported_protocols"
            .to_owned(),
        A::UnrecognisedName => "the server does not serve the name sent in SNI \
                                (unrecognized_name alert): check server_name"
            .to_owned(),
        A::DecodeError | A::IllegalParameter | A::UnexpectedMessage => {
            format!("the peer could not process our messages ({alert:?} alert)")
        }
        other => format!("the peer sent a fatal {other:?} alert"),
    }
}
