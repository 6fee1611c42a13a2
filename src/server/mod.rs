//! The server side: `BindOptions`, `SecureListener`, the `serve` loop and
//! `incoming`, and stopping a listener.

#[cfg(unix)]
pub(crate) mod activation;
pub(crate) mod listener;
pub(crate) mod maps;
pub(crate) mod options;
pub(crate) mod reload;
pub(crate) mod serve;
pub(crate) mod settings;
pub(crate) mod stop;
