//! rustls errors as securenet's typed, actionable errors.

use rustls::{AlertDescription, InvalidMessage};

use crate::error::{CertificateProblem, Error, PeerRole};
use crate::tls::verify::problem_for;

/// Maps a rustls error to securenet's, with a reason that says what to do;
/// `kept` is the typed problem a verifier reported to the connection,
/// `peer` the side at the other end.
pub(crate) fn map_tls_error(
    err: rustls::Error,
    handshaking: bool,
    kept: Option<CertificateProblem>,
    peer: PeerRole,
) -> Error {
    use rustls::Error as E;
    let reason = match &err {
        E::InvalidCertificate(ce) => {
            return Error::Certificate {
                problem: problem_for(ce, kept),
                peer,
            };
        }
        E::NoCertificatesPresented => {
            return Error::Certificate {
                problem: CertificateProblem::NotPresented,
                peer,
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
        E::InvalidMessage(InvalidMessage::HandshakePayloadTooLarge) if peer == PeerRole::Client => {
            "the client sent a handshake message over 64 KiB, the most rustls accepts (a \
             ClientHello or a certificate chain this large): it must send a smaller one"
                .to_owned()
        }
        // A compressed certificate chain that inflates past 64 KiB, or a
        // record past TLS's limit.
        E::InvalidMessage(InvalidMessage::MessageTooLarge) => {
            "the peer sent a message too large for TLS: a certificate chain over 64 KiB once \
             decompressed, or a record over TLS's limit; it must send fewer or smaller \
             certificates, or stop sending oversized records"
                .to_owned()
        }
        E::InvalidMessage(
            InvalidMessage::HandshakePayloadTooLarge | InvalidMessage::CertificatePayloadTooLarge,
        ) => "the peer sent a handshake message over 64 KiB, the most rustls accepts: its \
              certificate chain is too large; it must send fewer or smaller certificates"
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
        A::CertificateExpired => "the peer rejected our certificate as expired or not yet \
                                  valid (certificate_expired alert): renew it, or check the \
                                  clocks"
            .to_owned(),
        A::CertificateRevoked => "the peer rejected our certificate as revoked \
                                  (certificate_revoked alert): use a new certificate"
            .to_owned(),
        A::UnknownCA => "the peer does not trust the CA of our certificate (unknown_ca alert): \
                         send the full chain, or have the peer trust our CA"
            .to_owned(),
        A::BadCertificate => "the peer rejected our certificate (bad_certificate alert): \
                              check that it is valid, names the host the peer connected to, and \
                              is a leaf, not a CA"
            .to_owned(),
        A::UnsupportedCertificate => "the peer rejected our certificate as unsupported \
                                      (unsupported_certificate alert): check its extended key \
                                      usage (serverAuth or clientAuth) and its key type and size"
            .to_owned(),
        A::AccessDenied => "the peer refused us after checking our certificate (access_denied \
                            alert): it does not allow this identity or key"
            .to_owned(),
        A::CertificateUnknown | A::DecryptError => {
            let name = if alert == A::DecryptError {
                "decrypt_error"
            } else {
                "certificate_unknown"
            };
            format!(
                "the peer rejected our certificate or handshake signature ({name} alert): check \
                 that the certificate is valid, matches our key and is issued by a CA the peer \
                 trusts"
            )
        }
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
