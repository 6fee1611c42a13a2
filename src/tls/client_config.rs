//! The rustls client configuration for a context and a set of client
//! settings: built once per combination and kept with the context.

use std::sync::Arc;

use rustls::ClientConfig;
use rustls::client::Resumption;
use rustls::sign::SingleCertAndKey;

use crate::error::{Error, Result};
use crate::tls::context::SecurityContext;
use crate::tls::pins::Pins;
use crate::tls::settings::{Common, callback_key};
use crate::tls::verify::{BadCertificateFn, IdentityFn, ServerVerifier};

/// A client configuration and its verifier, cached in the context.
pub(crate) type CachedConfig = (Arc<ClientConfig>, Arc<ServerVerifier>);

/// The client's settings that shape its rustls configuration.
#[derive(Clone)]
pub(crate) struct ClientTls {
    pub(crate) sni: bool,
    pub(crate) reject_unauthorized: bool,
    pub(crate) on_bad_certificate: Option<BadCertificateFn>,
    pub(crate) check_server_identity: Option<IdentityFn>,
    pub(crate) resume_sessions: bool,
    /// `pin_sha256`, as given.
    pub(crate) pins: Vec<String>,
}

impl Default for ClientTls {
    fn default() -> Self {
        ClientTls {
            sni: true,
            reject_unauthorized: true,
            on_bad_certificate: None,
            check_server_identity: None,
            resume_sessions: true,
            pins: Vec::new(),
        }
    }
}

/// What a cached client configuration depends on besides the context.
#[derive(PartialEq)]
struct ConfigKey {
    sni: bool,
    reject_unauthorized: bool,
    on_bad: usize,
    identity: usize,
    key_log: usize,
    resume: bool,
    pins: Vec<String>,
    compression: bool,
}

impl ClientTls {
    /// The rustls configuration for these settings on `ctx`, built once and
    /// kept in the context.
    pub(crate) fn config_for(
        &self,
        ctx: &SecurityContext,
        common: &Common,
    ) -> Result<CachedConfig> {
        let key = ConfigKey {
            sni: self.sni,
            reject_unauthorized: self.reject_unauthorized,
            on_bad: callback_key(&self.on_bad_certificate),
            identity: callback_key(&self.check_server_identity),
            key_log: callback_key(&common.key_log),
            resume: self.resume_sessions,
            pins: self.pins.clone(),
            compression: common.certificate_compression,
        };
        ctx.inner()
            .derived
            .get_or_build(key, || self.build(ctx, common))
    }

    fn build(&self, ctx: &SecurityContext, common: &Common) -> Result<CachedConfig> {
        let inner = ctx.inner();
        let data = &inner.data;
        let verifier = Arc::new(ServerVerifier::new(
            data.roots.clone(),
            &data.revocation,
            self.on_bad_certificate.clone(),
            self.check_server_identity.clone(),
            self.reject_unauthorized,
            Pins::parse(&self.pins)?,
        )?);
        let builder = ClientConfig::builder_with_provider(data.params.provider())
            .with_protocol_versions(data.params.versions())
            .map_err(|e| data.params.builder_error(e))?
            .dangerous()
            .with_custom_certificate_verifier(verifier.clone());
        let mut config = match (&data.certified, &data.chain, &data.key) {
            (Some(ck), _, _) => {
                builder.with_client_cert_resolver(Arc::new(SingleCertAndKey::from(ck.clone())))
            }
            (None, Some((_, label)), None) => {
                return Err(Error::credentials(
                    label,
                    "the context has a certificate chain but no private key: call use_private_key",
                ));
            }
            (None, None, Some((_, label))) => {
                return Err(Error::credentials(
                    label,
                    "the context has a private key but no certificate chain: call \
                     use_certificate_chain",
                ));
            }
            _ => builder.with_no_client_auth(),
        };
        config.enable_sni = self.sni;
        config.resumption = if self.resume_sessions {
            Resumption::store(inner.client_sessions.clone())
        } else {
            Resumption::disabled()
        };
        // The user's key log, if any, behind the one exporters need.
        config.key_log = crate::tls::exporter::capture(common.key_logger());
        (config.cert_compressors, config.cert_decompressors) = common.compression();
        Ok((Arc::new(config), verifier))
    }
}

#[cfg(test)]
mod tests {
    use std::time::Duration;

    use super::*;

    #[test]
    fn one_config_per_context_and_settings() {
        let ctx = SecurityContext::empty();
        let tls = ClientTls::default();
        let common = Common::default();
        let (a, _) = tls.config_for(&ctx, &common).expect("config");
        let slower = Common {
            handshake_timeout: Duration::from_secs(1),
            ..Common::default()
        };
        let (b, _) = tls.config_for(&ctx, &slower).expect("config");
        assert!(Arc::ptr_eq(&a, &b), "built once, shared by every connect");
        let no_sni = ClientTls {
            sni: false,
            ..ClientTls::default()
        };
        let (c, _) = no_sni.config_for(&ctx, &common).expect("config");
        assert!(!Arc::ptr_eq(&a, &c), "different settings, different config");
        let (d, _) = tls.config_for(&ctx.clone(), &common).expect("config");
        assert!(Arc::ptr_eq(&a, &d), "clones of a context share it");
    }
}
