//! [`ListenAddress`]: what `bind` takes as the address to listen on.

use std::net::{IpAddr, Ipv4Addr, Ipv6Addr, ToSocketAddrs};

use crate::error::{Error, Result};

/// An address to listen on: an [`IpAddr`] (or `Ipv4Addr`/`Ipv6Addr`), or a
/// string holding a numeric address or a name, of which the first lookup
/// result is used (as Dart does).
pub trait ListenAddress {
    /// The IP address to bind.
    fn to_ip_addr(&self) -> Result<IpAddr>;
}

impl ListenAddress for IpAddr {
    fn to_ip_addr(&self) -> Result<IpAddr> {
        Ok(*self)
    }
}

impl ListenAddress for Ipv4Addr {
    fn to_ip_addr(&self) -> Result<IpAddr> {
        Ok(IpAddr::V4(*self))
    }
}

impl ListenAddress for Ipv6Addr {
    fn to_ip_addr(&self) -> Result<IpAddr> {
        Ok(IpAddr::V6(*self))
    }
}

impl ListenAddress for str {
    fn to_ip_addr(&self) -> Result<IpAddr> {
        let bare = self
            .strip_prefix('[')
            .and_then(|h| h.strip_suffix(']'))
            .unwrap_or(self);
        if bare.is_empty() {
            return Err(Error::invalid_input(
                self,
                "the address is empty: use \"127.0.0.1\", \"::1\", \"0.0.0.0\" or \"::\"",
            ));
        }
        if let Ok(ip) = bare.parse::<IpAddr>() {
            return Ok(ip);
        }
        let mut addrs = (bare, 0)
            .to_socket_addrs()
            .map_err(|e| Error::io(format!("cannot resolve the bind address '{bare}'"), e))?;
        addrs
            .next()
            .map(|a| a.ip())
            .ok_or_else(|| Error::invalid_input(self, "the name resolved to no address"))
    }
}

impl ListenAddress for &str {
    fn to_ip_addr(&self) -> Result<IpAddr> {
        (**self).to_ip_addr()
    }
}

impl ListenAddress for String {
    fn to_ip_addr(&self) -> Result<IpAddr> {
        self.as_str().to_ip_addr()
    }
}

impl ListenAddress for &String {
    fn to_ip_addr(&self) -> Result<IpAddr> {
        self.as_str().to_ip_addr()
    }
}
