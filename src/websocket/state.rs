//! The WebSocket message state machine that a whole [`WebSocket`] and a
//! split [`WsReader`] share: what each frame read (or failure) does to the
//! connection's state, and what must be sent back. Each caller only carries
//! the reply out: the whole socket sends it at once, the split reader queues
//! it for whoever holds the writer.
//!
//! [`WebSocket`]: crate::WebSocket
//! [`WsReader`]: crate::WsReader

use super::message::{Incoming, Message, ReadyState, close_payload};
use crate::error::Error;

/// The state both sides see: open, closing or closed, and the close status.
pub(crate) struct Status {
    pub(crate) state: ReadyState,
    pub(crate) close_code: Option<u16>,
    pub(crate) close_reason: Option<String>,
}

/// What must be sent after a frame was read or the connection failed.
pub(crate) enum Reply {
    /// Nothing.
    Nothing,
    /// A pong with this payload.
    Pong(Vec<u8>),
    /// A close frame with this payload, after which the transport ends.
    Close(Vec<u8>),
    /// The transport ends (the close handshake is over, or it failed).
    End,
}

/// The close reason we send with a close code: generic, so the peer learns
/// nothing of our limits (the local error has the details).
pub(crate) fn close_reason_for(code: u16) -> &'static str {
    match code {
        1001 => "going away",
        1002 => "protocol error",
        1007 => "invalid payload data",
        1009 => "message too big",
        _ => "",
    }
}

impl Status {
    pub(crate) fn open() -> Status {
        Status {
            state: ReadyState::Open,
            close_code: None,
            close_reason: None,
        }
    }

    /// A frame came in: the message to return, and the reply it calls for
    /// (a ping is answered while open; a close frame is answered if we had
    /// not sent ours, and ends the connection).
    pub(crate) fn received(&mut self, incoming: Incoming) -> (Message, Reply) {
        match incoming {
            Incoming::Message(m) => (m, Reply::Nothing),
            Incoming::Pong(p) => (Message::Pong(p), Reply::Nothing),
            Incoming::Ping(p) => {
                let reply = if self.state == ReadyState::Open {
                    Reply::Pong(p.clone())
                } else {
                    Reply::Nothing
                };
                (Message::Ping(p), reply)
            }
            Incoming::Close(status) => {
                let reply = if self.state == ReadyState::Open {
                    let code = status.as_ref().map(|(code, _)| *code);
                    Reply::Close(code.map(|c| close_payload(c, "")).unwrap_or_default())
                } else {
                    Reply::End
                };
                self.peer_closed(status.clone());
                self.state = ReadyState::Closed;
                (Message::Close(status), reply)
            }
        }
    }

    /// Records the status of the peer's close frame (1005 if it had none
    /// and no code was known).
    pub(crate) fn peer_closed(&mut self, status: Option<(u16, String)>) {
        if let Some((code, reason)) = status {
            self.close_code = Some(code);
            self.close_reason = Some(reason);
        } else if self.close_code.is_none() {
            self.close_code = Some(1005);
        }
    }

    /// The connection failed with `err`: it is closed, and the peer is told
    /// why when the error has a close code and no close frame was sent yet
    /// (with a generic reason: the error itself has the details).
    pub(crate) fn failed(&mut self, err: &Error) -> Reply {
        let open = self.state == ReadyState::Open;
        self.state = ReadyState::Closed;
        // A listener's shutdown: 1001, "going away".
        let code = match err {
            Error::ShuttingDown => Some(1001),
            _ => err.close_code(),
        };
        match code {
            Some(code) => {
                self.close_code.get_or_insert(code);
                if open {
                    Reply::Close(close_payload(code, close_reason_for(code)))
                } else {
                    Reply::End
                }
            }
            None => Reply::End,
        }
    }

    /// We sent a close frame with `status`: the peer's answer is awaited.
    pub(crate) fn closing(&mut self, status: Option<(u16, &str)>) {
        self.state = ReadyState::Closing;
        if let Some((code, reason)) = status {
            self.close_code = Some(code);
            self.close_reason = Some(reason.to_owned());
        }
    }
}
