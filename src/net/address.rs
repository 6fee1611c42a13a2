//! [`ListenAddress`]: what `bind` takes as the address to listen on.

use std::net::{IpAddr, Ipv4Addr, Ipv6Addr};

use crate::error::{Error, Result};
use crate::net::connect::{lookup, unbracket};

/// An address to listen on: an [`IpAddr`] (or `Ipv4Addr`/`Ipv6Addr`), or a
/// string holding a numeric address or a name, of which the first lookup
/// result is used (as Dart does).
///
/// The trait is sealed: these are the types it is for, and more may be
/// added without breaking anyone.
pub trait ListenAddress: sealed::Sealed {
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
        let bare = unbracket(self);
        if bare.is_empty() {
            return Err(Error::invalid_input(
                self,
                "the address is empty: use \"127.0.0.1\", \"::1\", \"0.0.0.0\" or \"::\"",
            ));
        }
        if let Ok(ip) = bare.parse::<IpAddr>() {
            return Ok(ip);
        }
        lookup(bare, 0, "the bind address ")?
            .first()
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

mod sealed {
    /// Only this crate's types are listen addresses.
    pub trait Sealed {}
    impl Sealed for std::net::IpAddr {}
    impl Sealed for std::net::Ipv4Addr {}
    impl Sealed for std::net::Ipv6Addr {}
    impl Sealed for str {}
    impl Sealed for &str {}
    impl Sealed for String {}
    impl Sealed for &String {}
}
