//! The steps on TLS records that `SecureStream` and its split halves
//! share: taking decrypted data, feeding rustls what the transport holds,
//! telling it the stream ended, and moving queued records out (through
//! the tracer, or into the proxy's TLS). The loops around them differ only
//! in what they lock and when they block.

use std::io::{self, Read, Write};

use rustls::Connection;

use crate::error::{Error, Result};
use crate::net::transport::{Layer, Sealer, Transport};
use crate::tls::tls_error::map_tls_error;
use crate::tls::trace::{Tee, Tracer};

/// What the decrypted side of a connection holds.
pub(crate) enum Plain {
    /// This many bytes were copied out.
    Data(usize),
    /// The peer's `close_notify`: the clean end.
    Closed,
    /// Nothing yet: more records are needed.
    Empty,
}

/// Copies decrypted data into `buf`. The end of the stream without a
/// `close_notify` is [`Error::Truncated`].
pub(crate) fn take_plaintext(conn: &mut Connection, buf: &mut [u8]) -> Result<Plain> {
    match conn.reader().read(buf) {
        Ok(0) => Ok(Plain::Closed),
        Ok(n) => Ok(Plain::Data(n)),
        Err(e) if e.kind() == io::ErrorKind::WouldBlock => Ok(Plain::Empty),
        Err(e) if e.kind() == io::ErrorKind::UnexpectedEof => Err(Error::Truncated),
        Err(e) => Err(Error::io("reading tls data failed", e)),
    }
}

/// Hands rustls the bytes the transport has read and not yet given it.
pub(crate) fn feed_pending<S: Read>(conn: &mut Connection, io: &mut Transport<S>) -> Result<()> {
    if io.pending().is_empty() {
        // Nothing yet (part of a record of the proxy's TLS); an empty read
        // would tell rustls the stream ended.
        return Ok(());
    }
    let mut pending = io.pending();
    let n = conn
        .read_tls(&mut pending)
        .map_err(|e| Error::io("reading tls data failed", e))?;
    io.consume(n);
    Ok(())
}

/// Tells rustls the transport ended: it decides between a clean close and
/// truncation.
pub(crate) fn feed_end(conn: &mut Connection) -> Result<()> {
    conn.read_tls(&mut io::empty())
        .map(drop)
        .map_err(|e| Error::io("reading tls data failed", e))
}

/// Decrypts what rustls was fed; an error is the peer's protocol violation
/// (rustls has queued the alert that tells it, for the caller to send).
pub(crate) fn decrypt(conn: &mut Connection) -> Result<()> {
    conn.process_new_packets()
        .map(drop)
        .map_err(|e| map_tls_error(e, false))
}

/// One write of the records rustls queued to `out`, through the tracer.
pub(crate) fn write_records(
    conn: &mut Connection,
    out: &mut impl Write,
    trace: Option<&mut Tracer>,
) -> io::Result<usize> {
    match trace {
        Some(tracer) => conn.write_tls(&mut Tee { inner: out, tracer }),
        None => conn.write_tls(out),
    }
}

/// Moves every queued record into `layer` (memory only).
pub(crate) fn seal_all(
    conn: &mut Connection,
    layer: &dyn Layer,
    mut trace: Option<&mut Tracer>,
) -> io::Result<()> {
    while conn.wants_write() {
        write_records(conn, &mut Sealer(layer), trace.as_deref_mut())?;
    }
    Ok(())
}
