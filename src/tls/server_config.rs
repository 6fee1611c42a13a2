//! The server's rustls configurations: one setup per context and options,
//! with a configuration per ALPN protocol (so the client's preference wins),
//! and routes from SNI names to other contexts' setups.

use std::sync::Arc;

use rustls::ServerConfig;
use rustls::server::{ClientHello, ResolvesServerCert, ServerSessionMemoryCache};
use rustls::sign::{CertifiedKey, SingleCertAndKey};

use crate::crypto::digest;
use crate::error::{Error, Result};
use crate::tls::context::SecurityContext;
use crate::tls::revocation::Revocation;
use crate::tls::settings::{Common, SESSION_CACHE, alpn_wire, callback_key};
use crate::tls::source::{ACME_TLS_ALPN, CertificateSource, Served, Validation, is_validation};
use crate::tls::tickets::{TicketKeys, Ticketer};
use crate::tls::trust::Trust;
use crate::tls::verify::{BadCertificateFn, ClientVerifier};

/// The server's settings that shape its rustls configurations: the shared
/// ones, client certificates and SNI routes.
#[derive(Clone, Default)]
pub(crate) struct ServerTls {
    pub(crate) common: Common,
    pub(crate) request_client_certificate: bool,
    pub(crate) require_client_certificate: bool,
    pub(crate) sni_contexts: Vec<(String, SecurityContext)>,
    pub(crate) on_sni: Option<SniFn>,
    pub(crate) on_bad_client_certificate: Option<BadCertificateFn>,
    /// Which callback that is: a number no other callback of this process
    /// gets, what session tickets are bound to (an address could be
    /// reused by another callback once this one is dropped).
    pub(crate) on_bad_client_certificate_id: u64,
    pub(crate) ticket_keys: Option<TicketKeys>,
    /// Where the listener's own certificate comes from besides its
    /// context (ACME), and the validations it answers. Not for the SNI
    /// routes' contexts, which serve their own.
    pub(crate) source: Option<Arc<dyn CertificateSource>>,
}

impl ServerTls {
    fn requests_client_certificate(&self) -> bool {
        self.request_client_certificate || self.require_client_certificate
    }
}

/// What a cached server setup depends on besides the context.
#[derive(PartialEq)]
struct ConfigKey {
    request: bool,
    require: bool,
    alpn: Vec<String>,
    on_bad_client: usize,
    key_log: usize,
    tickets: usize,
    compression: bool,
    source: usize,
}

/// `on_sni`: the context for a name, or `None` for the default.
pub(crate) type SniFn = Arc<dyn Fn(&str) -> Option<SecurityContext> + Send + Sync>;

/// Where SNI names lead: exact names (or `*.` wildcards) first, then the
/// callback, else the listener's own context.
struct SniRoutes {
    names: Vec<(String, Arc<ServerSetup>)>,
    callback: Option<SniFn>,
    options: ServerTls,
}

/// The server configurations for one context and options.
#[derive(Clone)]
pub(crate) struct ServerSetup {
    base: Arc<ServerConfig>,
    by_alpn: Vec<(Vec<u8>, Arc<ServerConfig>)>,
    sni: Option<Arc<SniRoutes>>,
    /// The configuration that answers TLS-ALPN-01 validations, with a
    /// certificate source.
    validation: Option<Arc<ServerConfig>>,
}

impl ServerSetup {
    /// The setup for a listener: the context's, plus the SNI routes of
    /// `options`.
    pub(crate) fn new(ctx: &SecurityContext, options: &ServerTls) -> Result<Arc<ServerSetup>> {
        let plain = ServerSetup::plain(ctx, options)?;
        let (names, callback) = (&options.sni_contexts, &options.on_sni);
        if names.is_empty() && callback.is_none() {
            return Ok(plain);
        }
        // The routes' contexts serve their own certificates.
        let route_options = ServerTls {
            source: None,
            ..options.clone()
        };
        let mut routes = Vec::with_capacity(names.len());
        for (name, sni_ctx) in names {
            let setup = ServerSetup::plain(sni_ctx, &route_options).map_err(|e| {
                Error::invalid_input(name.clone(), format!("sni_context for this name: {e}"))
            })?;
            routes.push((name.to_ascii_lowercase(), setup));
        }
        let mut setup = (*plain).clone();
        setup.sni = Some(Arc::new(SniRoutes {
            names: routes,
            callback: callback.clone(),
            options: route_options,
        }));
        Ok(Arc::new(setup))
    }

    /// The setup for one context, without SNI routes; built once per
    /// context and options and kept in the context.
    fn plain(ctx: &SecurityContext, options: &ServerTls) -> Result<Arc<ServerSetup>> {
        let wire = alpn_wire(&options.common.alpn)?;
        let key = ConfigKey {
            request: options.requests_client_certificate(),
            require: options.require_client_certificate,
            alpn: options.common.alpn.clone(),
            on_bad_client: callback_key(&options.on_bad_client_certificate),
            key_log: callback_key(&options.common.key_log),
            tickets: options.ticket_keys.as_ref().map_or(0, TicketKeys::identity),
            compression: options.common.certificate_compression,
            source: options
                .source
                .as_ref()
                .map_or(0, |s| Arc::as_ptr(s).cast::<()>() as usize),
        };
        ctx.inner()
            .derived
            .get_or_build(key, || ServerSetup::build(ctx, options, wire))
    }

    fn build(
        ctx: &SecurityContext,
        options: &ServerTls,
        alpn: Vec<Vec<u8>>,
    ) -> Result<Arc<ServerSetup>> {
        let inner = ctx.inner();
        let data = &inner.data;
        // The certificate served: the source's (ACME) when it has one, else
        // the context's.
        let resolver: Arc<dyn ResolvesServerCert> = match (&options.source, &data.certified) {
            (Some(source), fallback) => Arc::new(Served {
                source: Arc::downgrade(source),
                fallback: fallback.clone(),
            }),
            (None, Some(certified)) => Arc::new(SingleCertAndKey::from(certified.clone())),
            (None, None) => {
                let reason = match (&data.chain, &data.key) {
                    (Some(_), None) => {
                        "the context has a certificate chain but no private key: call \
                         use_private_key"
                    }
                    (None, Some(_)) => {
                        "the context has a private key but no certificate chain: call \
                         use_certificate_chain"
                    }
                    _ => {
                        "the context has no certificate: call use_certificate_chain and \
                         use_private_key before bind"
                    }
                };
                return Err(Error::credentials("server context", reason));
            }
        };
        let builder = ServerConfig::builder_with_provider(data.params.provider())
            .with_protocol_versions(data.params.versions())
            .map_err(|e| data.params.builder_error(e))?;
        // The authorities client certificates must chain to, if asked for.
        let client_roots = options.requests_client_certificate().then(|| {
            data.client_authorities
                .clone()
                .unwrap_or_else(|| data.roots.clone())
        });
        let builder = match &client_roots {
            Some(roots) => builder.with_client_cert_verifier(Arc::new(ClientVerifier::new(
                roots.clone(),
                &data.revocation,
                options.require_client_certificate,
                options.on_bad_client_certificate.clone(),
            )?)),
            None => builder.with_no_client_auth(),
        };
        let validation = match &options.source {
            Some(source) => Some(validation_config(ctx, source)?),
            None => None,
        };
        let mut base = builder.with_cert_resolver(report_sni(resolver));
        base.alpn_protocols = alpn.clone();
        // The user's key log, if any, behind the one exporters need.
        base.key_log = crate::tls::exporter::capture(options.common.key_logger());
        (base.cert_compressors, base.cert_decompressors) = options.common.compression();
        // Sessions are kept per setup, never per context: rustls resumes a
        // session without re-checking the client-certificate policy, so a
        // session from a listener that asks for no certificate must not be
        // usable on one that requires one.
        base.session_storage = ServerSessionMemoryCache::new(SESSION_CACHE);
        if let Some(keys) = &options.ticket_keys {
            // Stateless resumption that any server with the keys and the
            // same client-certificate policy accepts.
            let policy = client_auth_policy(options, client_roots.as_deref(), &data.revocation);
            base.ticketer = Arc::new(Ticketer::new(keys.clone(), policy));
        }
        let by_alpn = alpn
            .into_iter()
            .map(|p| {
                let mut c = base.clone();
                c.alpn_protocols = vec![p.clone()];
                (p, Arc::new(c))
            })
            .collect();
        Ok(Arc::new(ServerSetup {
            base: Arc::new(base),
            by_alpn,
            sni: None,
            validation,
        }))
    }

    /// The one configuration every client gets, when nothing in the
    /// ClientHello can change it (no SNI routes, at most one ALPN
    /// protocol): the server can then start without reading the hello
    /// first.
    pub(crate) fn single(&self) -> Option<Arc<ServerConfig>> {
        (self.sni.is_none() && self.by_alpn.len() <= 1 && self.validation.is_none())
            .then(|| self.base.clone())
    }

    /// The configuration for a client: the setup its SNI name leads to, and
    /// in it the configuration whose only ALPN protocol is the client's most
    /// preferred one that we speak (else the base one).
    pub(crate) fn choose(&self, hello: &ClientHello<'_>) -> Result<Arc<ServerConfig>> {
        if let Some(validation) = &self.validation {
            if is_validation(hello) {
                return Ok(validation.clone());
            }
        }
        if let (Some(routes), Some(name)) = (&self.sni, hello.server_name()) {
            if let Some(setup) = routes.route(name)? {
                return Ok(setup.choose_alpn(hello));
            }
        }
        Ok(self.choose_alpn(hello))
    }

    fn choose_alpn(&self, hello: &ClientHello<'_>) -> Arc<ServerConfig> {
        if let Some(offered) = hello.alpn() {
            for p in offered {
                if let Some((_, c)) = self.by_alpn.iter().find(|(q, _)| q.as_slice() == p) {
                    return c.clone();
                }
            }
        }
        self.base.clone()
    }
}

/// The configuration that answers TLS-ALPN-01 validations (RFC 8737):
/// the challenge certificate for the name asked, `acme-tls/1` and nothing
/// else, no client certificates, no sessions to resume (a validation must
/// see the certificate), the context's protocol versions (RFC 8737 needs
/// TLS 1.2 or later, which is all rustls speaks).
fn validation_config(
    ctx: &SecurityContext,
    source: &Arc<dyn CertificateSource>,
) -> Result<Arc<ServerConfig>> {
    let data = &ctx.inner().data;
    let mut config = ServerConfig::builder_with_provider(data.params.provider())
        .with_protocol_versions(data.params.versions())
        .map_err(|e| data.params.builder_error(e))?
        .with_no_client_auth()
        .with_cert_resolver(Arc::new(Validation(Arc::downgrade(source))));
    config.alpn_protocols = vec![ACME_TLS_ALPN.to_vec()];
    config.session_storage = Arc::new(rustls::server::NoServerSessionStorage {});
    config.send_tls13_tickets = 0;
    Ok(Arc::new(config))
}

/// The server's certificate, with the SNI name rustls parsed from the
/// ClientHello reported to the connection (the unbuffered server
/// connection of rustls 0.23 does not expose it): rustls asks for the
/// certificate on every ClientHello, resumed or not.
pub(crate) fn report_sni(resolver: Arc<dyn ResolvesServerCert>) -> Arc<dyn ResolvesServerCert> {
    Arc::new(ReportSni(resolver))
}

#[derive(Debug)]
struct ReportSni(Arc<dyn ResolvesServerCert>);

impl ResolvesServerCert for ReportSni {
    fn resolve(&self, hello: ClientHello<'_>) -> Option<Arc<CertifiedKey>> {
        let sni = hello
            .server_name()
            .map(|name| name.to_ascii_lowercase().into_boxed_str());
        crate::tls::scope::report(|learned| learned.sni = sni);
        self.0.resolve(hello)
    }

    fn only_raw_public_keys(&self) -> bool {
        self.0.only_raw_public_keys()
    }
}

/// A number for a callback that no other callback of this process gets.
pub(crate) fn callback_id() -> u64 {
    use std::sync::atomic::{AtomicU64, Ordering};
    // A counter, not a table: nothing is looked up by it.
    static NEXT: AtomicU64 = AtomicU64::new(1);
    NEXT.fetch_add(1, Ordering::Relaxed)
}

/// The client-certificate policy of a configuration, as the SHA-256 its
/// session tickets are bound to: whether client certificates are asked for
/// or required and, if they are, the authorities they must chain to (every
/// anchor, and the certificates trusted as themselves), the CRLs and
/// whether they are required, and whether `on_bad_client_certificate` may
/// let a failing certificate in. The same on every server of a fleet that
/// loads the same files with the same options.
fn client_auth_policy(
    options: &ServerTls,
    roots: Option<&Trust>,
    revocation: &Revocation,
) -> [u8; 32] {
    let mut h = digest::Context::new(&digest::SHA256);
    // Every field with its length and every list with its count: no two
    // policies hash the same bytes.
    let mut put = |bytes: &[u8]| {
        h.update(&(bytes.len() as u64).to_be_bytes());
        h.update(bytes);
    };
    put(b"securenet client-certificate policy 1");
    let Some(roots) = roots else {
        put(b"none");
        return finish(h);
    };
    put(if options.require_client_certificate {
        b"required"
    } else {
        b"optional"
    });
    put(&(roots.store.roots.len() as u64).to_be_bytes());
    for anchor in &roots.store.roots {
        put(anchor.subject.as_ref());
        put(anchor.subject_public_key_info.as_ref());
        match &anchor.name_constraints {
            Some(nc) => put(&[&[1u8][..], nc.as_ref()].concat()),
            None => put(&[0]),
        }
    }
    put(&(roots.added.len() as u64).to_be_bytes());
    for cert in &roots.added {
        put(cert.as_ref());
    }
    put(&(revocation.digests.len() as u64).to_be_bytes());
    for crl in &revocation.digests {
        put(crl);
    }
    put(&[
        u8::from(revocation.required),
        u8::from(options.on_bad_client_certificate.is_some()),
    ]);
    // Which callback, not only whether there is one: two callbacks may
    // decide differently. Its number is the same for every listener of
    // this process given the same `BindOptions` (or clones); servers in
    // other processes with a callback do not share tickets (a full
    // handshake, which asks the callback again).
    put(&options.on_bad_client_certificate_id.to_be_bytes());
    finish(h)
}

fn finish(h: digest::Context) -> [u8; 32] {
    let mut out = [0u8; 32];
    out.copy_from_slice(h.finish().as_ref());
    out
}

impl SniRoutes {
    fn route(&self, name: &str) -> Result<Option<Arc<ServerSetup>>> {
        let name = name.to_ascii_lowercase();
        if let Some((_, s)) = self.names.iter().find(|(n, _)| *n == name) {
            return Ok(Some(s.clone()));
        }
        let wildcard = name.split_once('.').map(|(_, rest)| format!("*.{rest}"));
        if let Some(w) = wildcard {
            if let Some((_, s)) = self.names.iter().find(|(n, _)| *n == w) {
                return Ok(Some(s.clone()));
            }
        }
        let Some(callback) = &self.callback else {
            return Ok(None);
        };
        match callback(&name) {
            Some(ctx) => ServerSetup::plain(&ctx, &self.options)
                .map(Some)
                .map_err(|e| {
                    Error::handshake(format!("the on_sni context for '{name}' cannot serve: {e}"))
                }),
            None => Ok(None),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_ticket_policy_changes_with_every_part_of_the_client_certificate_policy() {
        let none = ServerTls::default();
        let optional = ServerTls {
            request_client_certificate: true,
            ..ServerTls::default()
        };
        let required = ServerTls {
            require_client_certificate: true,
            ..ServerTls::default()
        };
        let forgiving = ServerTls {
            on_bad_client_certificate: Some(Arc::new(|_| true)),
            on_bad_client_certificate_id: callback_id(),
            ..required.clone()
        };
        let (mozilla, empty) = (Trust::mozilla(), Trust::empty());
        let no_crls = Revocation::default();
        let crls_required = Revocation {
            required: true,
            ..Revocation::default()
        };
        let one_crl = Revocation {
            digests: vec![[1; 32]],
            ..Revocation::default()
        };
        let all = [
            client_auth_policy(&none, None, &no_crls),
            client_auth_policy(&optional, Some(&mozilla), &no_crls),
            client_auth_policy(&required, Some(&mozilla), &no_crls),
            client_auth_policy(&required, Some(&empty), &no_crls),
            client_auth_policy(&required, Some(&mozilla), &crls_required),
            client_auth_policy(&required, Some(&mozilla), &one_crl),
            client_auth_policy(&forgiving, Some(&mozilla), &no_crls),
        ];
        for (i, a) in all.iter().enumerate() {
            for b in &all[i + 1..] {
                assert_ne!(a, b);
            }
        }
        assert_eq!(
            all[2],
            client_auth_policy(&required, Some(&Trust::mozilla()), &Revocation::default()),
            "the same policy, built again (another server of the fleet)"
        );
        assert_eq!(
            all[0],
            client_auth_policy(&none, None, &one_crl),
            "without client certificates, CRLs do not matter"
        );
    }
}
