//! The steps on TLS records that `SecureStream` and its split halves
//! share: feeding the connection what the transport holds, processing it,
//! and moving queued records out
//! (through the tracer, or into the proxy's TLS). The loops around them
//! differ only in what they lock and when they block.

use std::io::{self, Read, Write};

use crate::error::Result;
use crate::net::transport::{Layer, Sealer, Transport};
use crate::tls::engine::Engine;
pub(crate) use crate::tls::engine::Plain;
use crate::tls::trace::{Tee, Tracer};

/// Hands the connection the bytes the transport has read and not yet
/// given it.
pub(crate) fn feed_pending<S: Read>(conn: &mut Engine, io: &mut Transport<S>) -> Result<()> {
    let n = conn.feed(io.pending())?;
    io.consume(n);
    Ok(())
}

/// Processes what the connection was fed; an error is the peer's protocol
/// violation (the alert that tells it is queued, for the caller to send).
pub(crate) fn decrypt(conn: &mut Engine) -> Result<()> {
    conn.process_new_packets()
        .map_err(|e| conn.map_error(e, false))
}

/// One write of the queued records to `out`, through the tracer.
pub(crate) fn write_records(
    conn: &mut Engine,
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
    conn: &mut Engine,
    layer: &dyn Layer,
    mut trace: Option<&mut Tracer>,
) -> io::Result<()> {
    while conn.wants_write() {
        write_records(conn, &mut Sealer(layer), trace.as_deref_mut())?;
    }
    Ok(())
}
