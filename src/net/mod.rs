//! Sockets: name resolution and connecting, listen addresses, the
//! transport a TLS stream runs over (per-call deadlines, buffering), and
//! connection slots for `max_connections`, the live connections a shutdown
//! closes. Nothing here knows TLS.

pub(crate) mod address;
pub(crate) mod connect;
pub(crate) mod limiter;
pub(crate) mod percent;
pub(crate) mod proxy;
pub(crate) mod proxy_protocol;
pub(crate) mod redact;
pub(crate) mod registry;
pub(crate) mod transport;
pub(crate) mod tunnel;
