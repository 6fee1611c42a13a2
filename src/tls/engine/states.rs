//! rustls's unbuffered states, one at a time: what each asks of the
//! engine's buffers, toward what the caller wants of a pass.

use rustls::unbuffered::{ConnectionState, EncodeError, EncryptError, UnbufferedStatus};

use super::{Output, Rest};

/// What a pass over rustls's states is for.
pub(super) enum Goal<'a> {
    /// Handshake messages, replies and alerts: stop at application data.
    Progress,
    /// Also copy application data into `buf`.
    Read { buf: &'a mut [u8], copied: usize },
    /// Encrypt this.
    Encrypt(&'a [u8]),
    /// Queue a `close_notify`.
    CloseNotify,
    /// Move out what rustls queued, keeping any plaintext on the way.
    Stash,
}

/// Where a pass stopped.
#[derive(PartialEq)]
pub(super) enum Stop {
    Again,
    /// rustls needs more bytes.
    NeedInput,
    /// Nothing to do until bytes come in or the caller writes.
    Idle,
    /// A decrypted record waits to be read.
    Data,
    /// Both sides have sent `close_notify`.
    Closed,
    /// The goal (encrypting, `close_notify`) is met.
    Done,
}

/// Handles one state of rustls's: returns the bytes to discard from the
/// front of the input and where the pass stands.
pub(super) fn settle<Data>(
    status: UnbufferedStatus<'_, '_, Data>,
    rest: &mut Rest,
    goal: &mut Goal<'_>,
) -> (usize, std::result::Result<Stop, rustls::Error>) {
    let mut discard = status.discard;
    let step = match status.state {
        Err(e) => Err(e),
        Ok(state) => handle(state, rest, goal, &mut discard),
    };
    (discard, step)
}

fn handle<Data>(
    state: ConnectionState<'_, '_, Data>,
    rest: &mut Rest,
    goal: &mut Goal<'_>,
    discard: &mut usize,
) -> std::result::Result<Stop, rustls::Error> {
    match state {
        ConnectionState::ReadTraffic(mut traffic) => {
            match goal {
                // Left in rustls until it is read.
                Goal::Progress => return Ok(Stop::Data),
                Goal::Read { buf, copied } if *copied == buf.len() => return Ok(Stop::Data),
                _ => {}
            }
            while let Some(record) = traffic.next_record() {
                let record = record?;
                *discard += record.discard;
                let payload = record.payload;
                let n = match goal {
                    Goal::Read { buf, copied } => {
                        let n = (buf.len() - *copied).min(payload.len());
                        buf[*copied..*copied + n].copy_from_slice(&payload[..n]);
                        *copied += n;
                        n
                    }
                    _ => 0,
                };
                // What did not fit (or everything, on the way to writing).
                rest.spare.extend_from_slice(&payload[n..]);
            }
            Ok(Stop::Again)
        }
        ConnectionState::EncodeTlsData(mut encode) => {
            let mut at = rest.output.end;
            // First into the room there is: rustls tells the size it
            // needs, and only that much is added (and zeroed), not a
            // guess per message.
            let mut want = 0;
            loop {
                match encode.encode(rest.output.room(want)) {
                    Ok(n) => {
                        // Where it went (making room may have moved what
                        // was queued).
                        at = rest.output.end;
                        rest.output.end += n;
                        break;
                    }
                    Err(EncodeError::InsufficientSize(s)) => want = s.required_size,
                    Err(EncodeError::AlreadyEncoded) => break,
                }
            }
            // A server's own Hello, for TLS 1.2's exporter.
            if let (false, Some(scan)) = (rest.is_client, &mut rest.server_random) {
                scan.see(&rest.output.buf[at..rest.output.end]);
            }
            Ok(Stop::Again)
        }
        ConnectionState::TransmitTlsData(transmit) => {
            // Sent in order with everything queued after it.
            transmit.done();
            Ok(Stop::Again)
        }
        ConnectionState::BlockedHandshake => Ok(Stop::NeedInput),
        ConnectionState::PeerClosed => {
            rest.peer_closed = true;
            Ok(Stop::Again)
        }
        ConnectionState::Closed => {
            rest.peer_closed = true;
            Ok(Stop::Closed)
        }
        ConnectionState::WriteTraffic(mut traffic) => match goal {
            Goal::Progress | Goal::Read { .. } | Goal::Stash => Ok(Stop::Idle),
            Goal::Encrypt(data) => {
                // The records' overhead, as a first guess.
                let guess = data.len() + 64 * (data.len() / 16_384 + 1);
                put(&mut rest.output, guess, |out| traffic.encrypt(data, out))
            }
            Goal::CloseNotify => put(&mut rest.output, 64, |out| traffic.queue_close_notify(out)),
        },
        // securenet never accepts early data; rustls offers none.
        _ => Err(rustls::Error::General(
            "rustls reached a state securenet does not handle".into(),
        )),
    }
}

/// Runs `write` on room at the end of the output, more room each time
/// rustls says it needs it, until it fits.
fn put(
    output: &mut Output,
    mut want: usize,
    mut write: impl FnMut(&mut [u8]) -> std::result::Result<usize, EncryptError>,
) -> std::result::Result<Stop, rustls::Error> {
    loop {
        match write(output.room(want)) {
            Ok(n) => {
                output.end += n;
                return Ok(Stop::Done);
            }
            Err(EncryptError::InsufficientSize(s)) => want = s.required_size,
            Err(EncryptError::EncryptExhausted) => return Err(rustls::Error::EncryptError),
        }
    }
}
