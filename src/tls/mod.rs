//! The TLS layer below any socket: certificates, PEM and keys, TLS
//! parameters, the trust material a [`SecurityContext`](context::SecurityContext)
//! holds, certificate verifiers, the rustls client and server
//! configurations built from them (cached with their context), and one
//! TLS connection on rustls's unbuffered API with its buffers (`engine`).
//!
//! Arrows point down the list: each file uses only those above it.

pub(crate) mod cache;
pub(crate) mod certificate;
pub(crate) mod chain;
pub(crate) mod client_config;
pub(crate) mod context;
pub(crate) mod engine;
#[cfg(test)]
mod every_error;
pub(crate) mod exporter;
pub(crate) mod keys;
pub(crate) mod ocsp;
pub(crate) mod params;
pub(crate) mod path;
pub(crate) mod pem;
pub(crate) mod pins;
pub(crate) mod policy;
pub(crate) mod resumed;
pub(crate) mod revocation;
pub(crate) mod scope;
pub(crate) mod self_signed;
pub(crate) mod server_config;
pub(crate) mod session;
pub(crate) mod settings;
pub(crate) mod source;
pub(crate) mod tickets;
pub(crate) mod tls_error;
pub(crate) mod trace;
pub(crate) mod trust;
pub(crate) mod verify;
