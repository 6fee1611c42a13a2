//! Certificate verification in the handshake: the client's server-certificate
//! verifier (with `on_bad_certificate`, `check_server_identity`,
//! `reject_unauthorized` and pins) and the server's client-certificate
//! verifier, both on [`PathCheck`], and what each failure tells the peer.
//!
//! Whether a peer is trusted is decided in `policy.rs`; here are the
//! rustls traits around it. rustls picks the alert it sends from the kind
//! of `CertificateError` a verifier returns, so a failure goes back to
//! rustls as the kind whose alert fits (`certificate_expired`,
//! `unknown_ca`, …), and its full typed problem is reported to the
//! connection whose handshake call is running (`scope.rs`), where the
//! error mapping finds it ([`problem_for`]).

use std::fmt;
use std::sync::Arc;

use rustls::client::danger::{HandshakeSignatureValid, ServerCertVerified, ServerCertVerifier};
use rustls::pki_types::{CertificateDer, ServerName, UnixTime};
use rustls::server::danger::{ClientCertVerified, ClientCertVerifier};
use rustls::{CertificateError, DigitallySignedStruct, DistinguishedName, SignatureScheme};

use crate::error::{CertificateProblem, Error};
use crate::time::unix_to_system;
use crate::tls::certificate::X509Certificate;
use crate::tls::chain::Chain;
use crate::tls::path::{PathCheck, Usage};
use crate::tls::pins::Pins;
use crate::tls::policy::{self, Assessed, Peer, Settings, Verdict};
use crate::tls::revocation::Revocation;
use crate::tls::scope;
use crate::tls::trust::Trust;

/// `on_bad_certificate`: asked about a certificate that failed verification.
pub(crate) type BadCertificateFn = Arc<dyn Fn(&X509Certificate) -> bool + Send + Sync>;
/// `check_server_identity`: replaces the name check.
pub(crate) type IdentityFn =
    Arc<dyn Fn(&str, &X509Certificate) -> std::result::Result<(), String> + Send + Sync>;

/// Hands a failure to rustls: the kind whose alert fits, with the full
/// problem reported to the connection for [`problem_for`].
fn fail(problem: CertificateProblem) -> rustls::Error {
    let kind = alert_kind(&problem);
    scope::report(|learned| learned.problem = Some(problem));
    rustls::Error::InvalidCertificate(kind)
}

/// The `CertificateError` whose alert fits a problem (RFC 8446 6.2, with
/// OpenSSL's choices where the RFC leaves room).
fn alert_kind(problem: &CertificateProblem) -> CertificateError {
    use CertificateError as C;
    use CertificateProblem as P;
    match problem {
        P::Expired { .. } => C::Expired,
        P::NotYetValid { .. } => C::NotValidYet,
        P::NameMismatch { .. } | P::Rejected { .. } => C::NotValidForName,
        P::SelfSigned { .. }
        | P::UntrustedRoot { .. }
        | P::UnknownIssuer { .. }
        | P::NotCa { .. }
        | P::PathTooLong { .. }
        | P::TooComplex { .. } => C::UnknownIssuer,
        P::RevocationUnchecked { .. } => C::UnknownRevocationStatus,
        P::Revoked { .. } => C::Revoked,
        P::BadSignature { .. } => C::BadSignature,
        // unsupported_certificate.
        P::UnsupportedAlgorithm { .. } | P::InvalidPurpose { .. } => C::InvalidPurpose,
        P::UnsupportedCriticalExtension { .. } => C::UnhandledCriticalExtension,
        P::PinMismatch { .. } => C::ApplicationVerificationFailure,
        // bad_certificate.
        P::NameConstraints { .. }
        | P::Distrusted { .. }
        | P::CaUsedAsLeaf
        | P::BadEncoding { .. }
        | P::NotPresented => C::BadEncoding,
        P::Other(s) => C::Other(rustls::OtherError(Arc::new(Failure(s.clone())))),
    }
}

#[derive(Debug)]
struct Failure(String);

impl fmt::Display for Failure {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.0)
    }
}

impl std::error::Error for Failure {}

/// The typed problem for a certificate error rustls returned: the one a
/// verifier of ours failed with on this connection (`kept`), else what
/// the error itself says.
pub(crate) fn problem_for(
    error: &CertificateError,
    kept: Option<CertificateProblem>,
) -> CertificateProblem {
    match kept {
        Some(p) if std::mem::discriminant(&alert_kind(&p)) == std::mem::discriminant(error) => p,
        _ => classify_rustls(error),
    }
}

/// A rustls certificate error as a problem, when no verifier of ours made
/// it (rustls's own checks: the handshake signature, a missing
/// certificate).
pub(crate) fn classify_rustls(error: &CertificateError) -> CertificateProblem {
    use CertificateError as C;
    use CertificateProblem as P;
    #[allow(deprecated)]
    match error {
        C::BadEncoding => P::BadEncoding {
            certificate: None,
            detail: "it is not valid DER".to_owned(),
        },
        C::Expired => P::Expired {
            certificate: None,
            not_after: None,
        },
        C::ExpiredContext { not_after, .. } => P::Expired {
            certificate: None,
            not_after: Some(unix_to_system(*not_after)),
        },
        C::NotValidYet => P::NotYetValid {
            certificate: None,
            not_before: None,
        },
        C::NotValidYetContext { not_before, .. } => P::NotYetValid {
            certificate: None,
            not_before: Some(unix_to_system(*not_before)),
        },
        C::Revoked => P::Revoked {
            certificate: None,
            revoked_at: None,
            reason: None,
        },
        C::UnhandledCriticalExtension => P::UnsupportedCriticalExtension {
            certificate: None,
            extension: "unknown".to_owned(),
        },
        C::UnknownIssuer => P::UnknownIssuer {
            issuer: "unknown".to_owned(),
        },
        C::UnknownRevocationStatus => P::RevocationUnchecked {
            reason: "no CRL covers a certificate of the chain".to_owned(),
        },
        C::ExpiredRevocationList | C::ExpiredRevocationListContext { .. } => {
            P::RevocationUnchecked {
                reason: "a CRL has passed its nextUpdate time".to_owned(),
            }
        }
        C::BadSignature => P::BadSignature { certificate: None },
        C::UnsupportedSignatureAlgorithm
        | C::UnsupportedSignatureAlgorithmContext { .. }
        | C::UnsupportedSignatureAlgorithmForPublicKeyContext { .. } => P::UnsupportedAlgorithm {
            certificate: None,
            detail: "a signature algorithm the verifier does not accept".to_owned(),
        },
        C::NotValidForName => P::NameMismatch {
            expected: String::new(),
            presented: Vec::new(),
        },
        C::NotValidForNameContext {
            expected,
            presented,
        } => P::NameMismatch {
            expected: expected.to_str().into_owned(),
            presented: presented.clone(),
        },
        C::InvalidPurpose | C::InvalidPurposeContext { .. } => P::InvalidPurpose {
            certificate: None,
            required: String::new(),
            presented: Vec::new(),
        },
        C::InvalidOcspResponse => P::BadEncoding {
            certificate: None,
            detail: "its stapled OCSP response is invalid".to_owned(),
        },
        C::ApplicationVerificationFailure => P::Rejected {
            reason: "the application refused it".to_owned(),
        },
        C::Other(rustls::OtherError(inner)) => match inner.downcast_ref::<webpki::Error>() {
            Some(e) => Chain::unknown().diagnose(e, "", None, UnixTime::now()),
            None => P::Other(format!("the certificate is invalid: {inner}")),
        },
        other => P::Other(format!("the certificate is invalid: {other:?}")),
    }
}

/// The client's verifier of server certificates.
pub(crate) struct ServerVerifier {
    path: PathCheck,
    on_bad: Option<BadCertificateFn>,
    identity: Option<IdentityFn>,
    reject_unauthorized: bool,
    pins: Pins,
}

impl fmt::Debug for ServerVerifier {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("ServerVerifier")
            .field("reject_unauthorized", &self.reject_unauthorized)
            .field("on_bad_certificate", &self.on_bad.is_some())
            .field("check_server_identity", &self.identity.is_some())
            .field("pins", &!self.pins.is_empty())
            .finish()
    }
}

impl ServerVerifier {
    pub(crate) fn new(
        roots: Arc<Trust>,
        revocation: &Revocation,
        on_bad: Option<BadCertificateFn>,
        identity: Option<IdentityFn>,
        reject_unauthorized: bool,
        pins: Pins,
    ) -> Result<ServerVerifier, Error> {
        Ok(ServerVerifier {
            path: PathCheck::new(roots, revocation, Usage::Server)?,
            on_bad,
            identity,
            reject_unauthorized,
            pins,
        })
    }

    /// Whether a failed verification can still let the handshake go on, in
    /// which case the stream computes `authorization_error` afterwards.
    pub(crate) fn may_accept_bad(&self) -> bool {
        !self.reject_unauthorized || self.on_bad.is_some()
    }

    /// The problem with the server's chain or name, with no override:
    /// what `authorization_error` reports for a connection let through.
    pub(crate) fn check(
        &self,
        end_entity: &CertificateDer<'_>,
        intermediates: &[CertificateDer<'_>],
        name: &ServerName<'_>,
        now: UnixTime,
    ) -> Result<(), CertificateProblem> {
        let mut peer = self.presented(end_entity, intermediates, name, now);
        policy::assess(
            self.path.chain(end_entity, intermediates, now, &self.pins),
            self.path.itself(end_entity, now),
            !self.pins.is_empty(),
            &mut peer,
        )
        .map_err(|a| match a {
            Assessed::Pin(p) | Assessed::Bad(p) => p,
        })
    }

    fn presented<'a>(
        &'a self,
        leaf: &'a CertificateDer<'a>,
        intermediates: &'a [CertificateDer<'a>],
        name: &'a ServerName<'a>,
        now: UnixTime,
    ) -> Presented<'a> {
        Presented {
            path: &self.path,
            leaf,
            intermediates,
            name: Some(name),
            identity: self.identity.as_ref(),
            on_bad: self.on_bad.as_ref(),
            pins: &self.pins,
            now,
        }
    }
}

/// The peer's certificates as the policy asks about them.
struct Presented<'a> {
    path: &'a PathCheck,
    leaf: &'a CertificateDer<'a>,
    intermediates: &'a [CertificateDer<'a>],
    /// The server's name; `None` for client certificates.
    name: Option<&'a ServerName<'a>>,
    identity: Option<&'a IdentityFn>,
    on_bad: Option<&'a BadCertificateFn>,
    pins: &'a Pins,
    now: UnixTime,
}

impl Peer for Presented<'_> {
    fn identity(&mut self) -> Result<(), CertificateProblem> {
        let Some(name) = self.name else {
            return Ok(());
        };
        let Some(identity) = self.identity else {
            return self.path.name(self.leaf, name, self.now);
        };
        let cert =
            X509Certificate::from_der(self.leaf).map_err(|_| CertificateProblem::BadEncoding {
                certificate: None,
                detail: "it cannot be parsed".to_owned(),
            })?;
        identity(&name.to_str(), &cert).map_err(|reason| CertificateProblem::Rejected { reason })
    }

    fn on_bad(&mut self) -> Option<bool> {
        let on_bad = self.on_bad?;
        Some(X509Certificate::from_der(self.leaf).is_ok_and(|cert| on_bad(&cert)))
    }

    fn leaf_pinned(&self) -> bool {
        self.pins.match_sent(self.leaf, &[])
    }

    fn pin_mismatch(&self, leaf_only: bool) -> CertificateProblem {
        let sent = if leaf_only { &[] } else { self.intermediates };
        self.pins.mismatch(self.leaf, sent)
    }
}

impl ServerCertVerifier for ServerVerifier {
    fn verify_server_cert(
        &self,
        end_entity: &CertificateDer<'_>,
        intermediates: &[CertificateDer<'_>],
        server_name: &ServerName<'_>,
        ocsp_response: &[u8],
        now: UnixTime,
    ) -> Result<ServerCertVerified, rustls::Error> {
        scope::report(|learned| {
            learned.stapled = (!ocsp_response.is_empty()).then(|| ocsp_response.to_vec());
        });
        let settings = Settings {
            reject_unauthorized: self.reject_unauthorized,
            pinned: !self.pins.is_empty(),
        };
        let verdict = policy::decide(
            self.path.chain(end_entity, intermediates, now, &self.pins),
            self.path.itself(end_entity, now),
            settings,
            &mut self.presented(end_entity, intermediates, server_name, now),
        );
        match verdict {
            Verdict::Trusted => Ok(ServerCertVerified::assertion()),
            Verdict::Unverified(problem) => {
                scope::report(|learned| learned.unverified = Some(problem));
                Ok(ServerCertVerified::assertion())
            }
            Verdict::Refused(problem) => Err(fail(problem)),
        }
    }

    fn verify_tls12_signature(
        &self,
        message: &[u8],
        cert: &CertificateDer<'_>,
        dss: &DigitallySignedStruct,
    ) -> Result<HandshakeSignatureValid, rustls::Error> {
        rustls::crypto::verify_tls12_signature(message, cert, dss, &self.path.algs)
    }

    fn verify_tls13_signature(
        &self,
        message: &[u8],
        cert: &CertificateDer<'_>,
        dss: &DigitallySignedStruct,
    ) -> Result<HandshakeSignatureValid, rustls::Error> {
        rustls::crypto::verify_tls13_signature(message, cert, dss, &self.path.algs)
    }

    fn supported_verify_schemes(&self) -> Vec<SignatureScheme> {
        self.path.algs.supported_schemes()
    }
}

/// The server's verifier of client certificates: failures classified like
/// the client's and offered to `on_bad_client_certificate`.
pub(crate) struct ClientVerifier {
    path: PathCheck,
    hints: Vec<DistinguishedName>,
    mandatory: bool,
    on_bad: Option<BadCertificateFn>,
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
        roots: Arc<Trust>,
        revocation: &Revocation,
        mandatory: bool,
        on_bad: Option<BadCertificateFn>,
    ) -> Result<ClientVerifier, Error> {
        if roots.is_empty() && on_bad.is_none() {
            return Err(Error::credentials(
                "client authorities",
                "cannot verify client certificates (no trust anchors): call \
                 set_client_authorities or set_trusted_certificates with the CA that issues them",
            ));
        }
        Ok(ClientVerifier {
            hints: roots.store.subjects(),
            path: PathCheck::new(roots, revocation, Usage::Client)?,
            mandatory,
            on_bad,
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
        &self.hints
    }

    fn verify_client_cert(
        &self,
        end_entity: &CertificateDer<'_>,
        intermediates: &[CertificateDer<'_>],
        now: UnixTime,
    ) -> Result<ClientCertVerified, rustls::Error> {
        let pins = Pins::default();
        let mut peer = Presented {
            path: &self.path,
            leaf: end_entity,
            intermediates,
            name: None,
            identity: None,
            on_bad: self.on_bad.as_ref(),
            pins: &pins,
            now,
        };
        let settings = Settings {
            reject_unauthorized: true,
            pinned: false,
        };
        let verdict = policy::decide(
            self.path.chain(end_entity, intermediates, now, &pins),
            self.path.itself(end_entity, now),
            settings,
            &mut peer,
        );
        match verdict {
            Verdict::Trusted | Verdict::Unverified(_) => Ok(ClientCertVerified::assertion()),
            Verdict::Refused(problem) => Err(fail(problem)),
        }
    }

    fn verify_tls12_signature(
        &self,
        message: &[u8],
        cert: &CertificateDer<'_>,
        dss: &DigitallySignedStruct,
    ) -> Result<HandshakeSignatureValid, rustls::Error> {
        rustls::crypto::verify_tls12_signature(message, cert, dss, &self.path.algs)
    }

    fn verify_tls13_signature(
        &self,
        message: &[u8],
        cert: &CertificateDer<'_>,
        dss: &DigitallySignedStruct,
    ) -> Result<HandshakeSignatureValid, rustls::Error> {
        rustls::crypto::verify_tls13_signature(message, cert, dss, &self.path.algs)
    }

    fn supported_verify_schemes(&self) -> Vec<SignatureScheme> {
        self.path.algs.supported_schemes()
    }
}
