//! The serving settings that `BindOptions` holds for `serve`: limits,
//! thread stacks and the error callbacks.

use std::fmt;
use std::net::SocketAddr;
use std::sync::Arc;

use crate::error::Error;

/// `on_client_error` / `on_client_error_via`: a connection's handshake or
/// handler failed; the client's address, then the connection's peer (a
/// load balancer, or the client itself).
pub(crate) type ClientErrorFn = Arc<dyn Fn(&Error, SocketAddr, SocketAddr) + Send + Sync>;
/// `on_health_check`: a connection closed without sending anything.
pub(crate) type HealthCheckFn = Arc<dyn Fn(SocketAddr) + Send + Sync>;
/// `on_accept_error`: accepting fails for a while (no descriptors, no memory).
pub(crate) type AcceptErrorFn = Arc<dyn Fn(&Error) + Send + Sync>;

/// The serving settings of `BindOptions`.
#[derive(Clone, Default)]
pub(crate) struct ServeSettings {
    pub(crate) max_connections: Option<usize>,
    pub(crate) stack_size: Option<usize>,
    pub(crate) on_client_error: Option<ClientErrorFn>,
    pub(crate) on_accept_error: Option<AcceptErrorFn>,
    pub(crate) on_health_check: Option<HealthCheckFn>,
    /// `close_on_shutdown(false)`: no second descriptor per connection.
    pub(crate) keep_open_on_shutdown: bool,
}

impl fmt::Debug for ServeSettings {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("ServeSettings")
            .field("max_connections", &self.max_connections)
            .field("thread_stack_size", &self.stack_size)
            .field("on_client_error", &self.on_client_error.is_some())
            .field("on_accept_error", &self.on_accept_error.is_some())
            .field("on_health_check", &self.on_health_check.is_some())
            .field("close_on_shutdown", &!self.keep_open_on_shutdown)
            .finish()
    }
}
