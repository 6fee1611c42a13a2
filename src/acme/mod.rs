//! Certificates from an ACME CA (RFC 8555) with TLS-ALPN-01 validation
//! (RFC 8737), obtained, renewed and served by the listener itself, and
//! shared by the servers of a fleet through one cache directory (feature
//! `acme`).
//!
//! Layers, each only using those below it: `jws` (the account key and
//! its signatures), `http` (the CA's directory, nonces, problem
//! documents, over ureq), `challenge` and `cache` (certificates and
//! files), `renewal` (when), `order` (one order), `manager` (the thread
//! that keeps the certificate), `options` (what the user gives).

mod cache;
mod challenge;
mod http;
mod jws;
mod manager;
mod options;
mod order;
mod renewal;

pub(crate) use manager::Shared;
pub use options::{
    AcmeKeyType, AcmeOptions, DEFAULT_ACME_ORDER_TIMEOUT, DEFAULT_ACME_REQUEST_TIMEOUT,
    LETS_ENCRYPT, LETS_ENCRYPT_STAGING,
};
