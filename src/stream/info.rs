//! What a `SecureStream` negotiated: certificates, protocol, cipher suite,
//! key exchange, ALPN, SNI, resumption, verification outcome, exporters.

use std::io::{Read, Write};

use rustls::HandshakeKind;

use super::SecureStream;
use crate::error::{CertificateProblem, Error, Result};
use crate::tls::certificate::X509Certificate;
use crate::tls::session::TlsSession;

impl<S: Read + Write> SecureStream<S> {
    /// The peer's end-entity certificate, once the handshake is done. `None`
    /// on a server whose client sent no certificate.
    pub fn peer_certificate(&self) -> Option<X509Certificate> {
        let chain = self.conn()?.peer_certificates()?;
        X509Certificate::from_der(chain.first()?).ok()
    }

    /// The peer's whole chain as it sent it, leaf first.
    pub fn peer_certificate_chain(&self) -> Vec<X509Certificate> {
        self.conn()
            .and_then(|c| c.peer_certificates())
            .map(|chain| {
                chain
                    .iter()
                    .filter_map(|c| X509Certificate::from_der(c).ok())
                    .collect()
            })
            .unwrap_or_default()
    }

    /// Client side: the OCSP response the server stapled to its
    /// certificate (DER, as the server sent it, not checked), if any
    /// (Node's `OCSPResponse` event). `None` on a resumed session, where
    /// no certificate is sent.
    pub fn ocsp_response(&self) -> Option<&[u8]> {
        self.ocsp.as_deref()
    }

    /// The application protocol agreed with ALPN, if any.
    pub fn selected_protocol(&self) -> Option<String> {
        let p = self.conn()?.alpn_protocol()?;
        Some(String::from_utf8_lossy(p).into_owned())
    }

    /// The TLS version, as Node names it: `"TLSv1.3"` or `"TLSv1.2"`.
    pub fn protocol_version(&self) -> Option<String> {
        let v = self.conn()?.protocol_version()?;
        Some(match v {
            rustls::ProtocolVersion::TLSv1_3 => "TLSv1.3".to_owned(),
            rustls::ProtocolVersion::TLSv1_2 => "TLSv1.2".to_owned(),
            other => format!("{other:?}"),
        })
    }

    /// The cipher suite's IANA name, e.g. `"TLS13_AES_256_GCM_SHA384"`.
    pub fn cipher_suite(&self) -> Option<String> {
        let s = self.conn()?.negotiated_cipher_suite()?.suite();
        Some(s.as_str().map_or_else(|| format!("{s:?}"), str::to_owned))
    }

    /// The key exchange group, e.g. `"X25519MLKEM768"` (post-quantum hybrid)
    /// or `"X25519"`. `None` before the handshake and on some resumptions.
    pub fn negotiated_group(&self) -> Option<String> {
        let g = self.conn()?.negotiated_key_exchange_group()?.name();
        Some(g.as_str().map_or_else(|| format!("{g:?}"), str::to_owned))
    }

    /// On a server, the name the client sent in SNI; on a client, the name
    /// the server's certificate was checked against.
    pub fn server_name(&self) -> Option<String> {
        let conn = self.conn()?;
        if conn.is_client() {
            self.check.as_ref().map(|(_, n)| n.to_str().into_owned())
        } else {
            conn.sni().map(str::to_owned)
        }
    }

    /// Whether the handshake resumed an earlier session.
    pub fn is_session_reused(&self) -> bool {
        self.conn()
            .is_some_and(|c| c.handshake_kind() == Some(HandshakeKind::Resumed))
    }

    /// Why the server's certificate failed verification, on a connection
    /// that went ahead anyway (`reject_unauthorized(false)`, or an
    /// `on_bad_certificate` that said yes). `None` if it verified. Its
    /// `Display` is the message an error would have had.
    pub fn authorization_error(&self) -> Option<&CertificateProblem> {
        self.authorization_error.as_ref()
    }

    /// On a client, takes this session's newest resumption ticket (or its
    /// TLS 1.2 session) out of the context's cache, to resume later with
    /// [`ConnectOptions::session`](crate::ConnectOptions::session). `None`
    /// on a server, or before the server has sent a ticket (TLS 1.3 tickets
    /// arrive after the handshake: read once first). Node `getSession`.
    pub fn session(&self) -> Option<TlsSession> {
        let (_, name) = self.check.as_ref()?;
        TlsSession::take_from(self.sessions.as_ref()?, name)
    }

    /// Derives keying material from the session (RFC 5705 / RFC 8446 §7.5),
    /// Node's `exportKeyingMaterial`. Fills all of `out`.
    pub fn export_keying_material(
        &self,
        out: &mut [u8],
        label: &[u8],
        context: Option<&[u8]>,
    ) -> Result<()> {
        let conn = self.conn().ok_or_else(|| {
            Error::invalid_input("export_keying_material", "the handshake has not completed")
        })?;
        conn.export_keying_material(out, label, context)
    }
}
