//! The rustls client configuration for a `ConnectOptions` on a context:
//! built once per set of settings and kept in the context's cache.

use std::fmt;
use std::sync::Arc;

use rustls::client::Resumption;
use rustls::sign::SingleCertAndKey;
use rustls::{ClientConfig, KeyLog};

use super::{ConnectOptions, KeyLogFn};
use crate::certificate::hex;
use crate::context::{SecurityContext, callback_key};
use crate::error::{Error, Result};
use crate::verify::ServerVerifier;

/// A client configuration and its verifier, cached in the context.
pub(crate) type CachedConfig = (Arc<ClientConfig>, Arc<ServerVerifier>);

/// What a cached client configuration depends on besides the context.
#[derive(PartialEq)]
pub(crate) struct ConfigKey {
    sni: bool,
    reject_unauthorized: bool,
    on_bad: usize,
    identity: usize,
    key_log: usize,
    resume: bool,
}

struct KeyLogger(KeyLogFn);

impl fmt::Debug for KeyLogger {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("KeyLogger")
    }
}

impl KeyLog for KeyLogger {
    fn log(&self, label: &str, client_random: &[u8], secret: &[u8]) {
        (self.0)(&format!("{label} {} {}", hex(client_random), hex(secret)));
    }
}

impl ConnectOptions {
    /// The rustls configuration for these options on `ctx`, built once and
    /// kept in the context.
    pub(super) fn config_for(&self, ctx: &SecurityContext) -> Result<CachedConfig> {
        let key = ConfigKey {
            sni: self.sni,
            reject_unauthorized: self.reject_unauthorized,
            on_bad: callback_key(&self.on_bad_certificate),
            identity: callback_key(&self.check_server_identity),
            key_log: callback_key(&self.key_log),
            resume: self.resume_sessions,
        };
        SecurityContext::cached(&ctx.inner().client_configs, key, || self.build_config(ctx))
    }

    fn build_config(&self, ctx: &SecurityContext) -> Result<CachedConfig> {
        let inner = ctx.inner();
        let data = &inner.data;
        let verifier = Arc::new(ServerVerifier::new(
            data.roots.clone(),
            &data.crls,
            self.on_bad_certificate.clone(),
            self.check_server_identity.clone(),
            self.reject_unauthorized,
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
        if let Some(log) = &self.key_log {
            config.key_log = Arc::new(KeyLogger(log.clone()));
        }
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
        let opts = ConnectOptions::new().context(ctx.clone());
        let (a, _) = opts.config_for(&ctx).expect("config");
        let (b, _) = opts
            .clone()
            .timeout(Duration::from_secs(1))
            .config_for(&ctx)
            .expect("config");
        assert!(Arc::ptr_eq(&a, &b), "built once, shared by every connect");
        let (c, _) = opts.clone().sni(false).config_for(&ctx).expect("config");
        assert!(!Arc::ptr_eq(&a, &c), "different settings, different config");
        let (d, _) = opts.config_for(&ctx.clone()).expect("config");
        assert!(Arc::ptr_eq(&a, &d), "clones of a context share it");
    }
}
