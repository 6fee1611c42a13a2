//! Read and write timeouts, for any transport whose timeouts securenet can
//! set (a `TcpStream` or `UnixStream`).

use std::io::{Read, Write};
use std::time::Duration;

use super::SecureStream;
use crate::error::{Error, Result};

impl<S: Read + Write> SecureStream<S> {
    /// Bounds each read as a whole (`None` waits forever): however slowly
    /// the peer sends, a `read` returns or fails with kind `TimedOut`
    /// within it, and the stream stays usable. Unlike `std::net`, where a
    /// timeout bounds one system call, this is a deadline for the call: each
    /// socket read within it gets what is left (`SO_RCVTIMEO`).
    /// `Some(Duration::ZERO)` is an error, as in `std`; a duration too large
    /// to add to the clock means no limit.
    pub fn set_read_timeout(&mut self, timeout: Option<Duration>) -> Result<()> {
        (self.io.ops.set_read_timeout)(&self.io.sock, timeout)
            .map_err(|e| Error::bad_timeout("read", timeout, e))?;
        self.read_timeout = timeout;
        Ok(())
    }

    /// Bounds each write or flush as a whole (`None` waits forever), as
    /// [`set_read_timeout`](Self::set_read_timeout) does reads
    /// (`SO_SNDTIMEO`). A write that times out, like any failed write, ends
    /// writing (a record may be half-written): later writes fail with
    /// `BrokenPipe`.
    pub fn set_write_timeout(&mut self, timeout: Option<Duration>) -> Result<()> {
        (self.io.ops.set_write_timeout)(&self.io.sock, timeout)
            .map_err(|e| Error::bad_timeout("write", timeout, e))?;
        self.write_timeout = timeout;
        Ok(())
    }

    /// The read timeout.
    pub fn read_timeout(&self) -> Option<Duration> {
        self.read_timeout
    }

    /// The write timeout.
    pub fn write_timeout(&self) -> Option<Duration> {
        self.write_timeout
    }
}
