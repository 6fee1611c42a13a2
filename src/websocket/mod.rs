//! A blocking WebSocket client (Dart `WebSocket.connect`) over
//! [`SecureStream`], with permessage-deflate, and a server side for
//! harnesses ([`WebSocket::accept`]).
//!
//! tungstenite provides the frame header codec and the handshake key
//! functions; the message layer above it is ours: reassembly, control frames
//! between fragments, automatic pongs, the close handshake, UTF-8 checks,
//! size caps and compression.

mod deflate;
mod frames;
mod handshake;
mod message;
mod options;
mod split;
mod stream;
mod url;

use std::io::{Read, Write};
use std::time::{Duration, Instant};

pub use message::{Message, ReadyState};
pub use options::{
    CompressionOptions, DEFAULT_CLOSE_TIMEOUT, DEFAULT_MAX_MESSAGE_SIZE, WebSocketOptions,
};
pub use split::{WsReader, WsWriter};
pub use stream::WsStream;

use deflate::{Deflater, Inflater};
use frames::{FrameReader, Op, write_frame};
use message::{Incoming, Receiver, check_close_status, close_payload};

use crate::error::{Error, Phase, Result};

/// Sends frames: compresses data messages when permessage-deflate is on,
/// masks when it is the client.
pub(crate) struct Sender {
    deflater: Option<Deflater>,
    client: bool,
}

impl Sender {
    pub(crate) fn send<W: Write>(&mut self, w: &mut W, op: Op, payload: &[u8]) -> Result<()> {
        match (&mut self.deflater, op) {
            (Some(d), Op::Text | Op::Binary) => {
                let compressed = d.compress(payload)?;
                write_frame(w, op, true, &compressed, self.client)
            }
            _ => write_frame(w, op, false, payload, self.client),
        }
    }
}

/// What a transport can do besides `Read + Write`.
struct Hooks<S> {
    set_read_timeout: fn(&mut S, Option<Duration>) -> Result<()>,
    shutdown: fn(&mut S),
}

/// The ping schedule of `ping_interval`.
struct Pinger {
    interval: Duration,
    next: Instant,
    awaiting_pong: bool,
}

/// A WebSocket connection over `S`: a [`WsStream`] for a client made by
/// [`connect`](Self::connect), any `Read + Write` for
/// [`accept`](Self::accept).
pub struct WebSocket<S = WsStream> {
    stream: S,
    recv: Receiver,
    send: Sender,
    state: ReadyState,
    close_code: Option<u16>,
    close_reason: Option<String>,
    protocol: Option<String>,
    extensions: Option<String>,
    ping: Option<Pinger>,
    close_timeout: Duration,
    hooks: Hooks<S>,
}

impl<S> std::fmt::Debug for WebSocket<S> {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("WebSocket")
            .field("state", &self.state)
            .field("protocol", &self.protocol)
            .field("extensions", &self.extensions)
            .finish()
    }
}

impl WebSocket {
    /// Connects to a `ws://` or `wss://` URL with the default options
    /// (Dart `WebSocket.connect(url)`).
    pub fn connect(url: &str) -> Result<WebSocket> {
        WebSocketOptions::new().connect(url)
    }

    /// Splits into a reader and a writer for two threads: one blocked in
    /// `read` while the other sends. The reader answers pings and close
    /// frames through the shared writer; `ping_interval` does not apply to
    /// split halves.
    pub fn split(self) -> Result<(WsReader, WsWriter)> {
        split::split(self)
    }

    /// Bounds each read of a message (`None` waits forever). With
    /// `ping_interval`, the ping schedule decides the waits instead.
    pub fn set_read_timeout(&mut self, timeout: Option<Duration>) -> Result<()> {
        self.stream.set_read_timeout(timeout)
    }

    /// The underlying stream.
    pub fn get_ref(&self) -> &WsStream {
        &self.stream
    }
}

impl WebSocketOptions {
    /// Connects to a `ws://` or `wss://` URL: TCP (and TLS for `wss`) with
    /// the connect options, then the HTTP upgrade, bounded by their
    /// handshake timeout. The URL is checked before any I/O; user info in it
    /// becomes `Authorization: Basic`.
    pub fn connect(&self, url: &str) -> Result<WebSocket> {
        let parsed = url::WsUrl::parse(url)?;
        let headers = self.checked_headers()?;
        let mut stream = if parsed.secure {
            let tls = self
                .connect
                .clone()
                .supported_protocols(&["http/1.1"])
                .connect(&parsed.host, parsed.port)?;
            WsStream::Tls(Box::new(tls))
        } else {
            WsStream::Plain(self.connect.connect_tcp(&parsed.host, parsed.port)?)
        };
        let limit = self.connect.handshake_timeout_value();
        stream.set_read_timeout(Some(limit))?;
        stream.set_write_timeout(Some(limit))?;
        let upgraded = handshake::client(&mut stream, &parsed, self, &headers).map_err(|e| {
            if e.is_timeout() {
                Error::Timeout {
                    phase: Phase::Handshake,
                    after: Some(limit),
                }
            } else {
                e
            }
        })?;
        stream.set_read_timeout(None)?;
        stream.set_write_timeout(None)?;
        Ok(WebSocket::open(
            stream,
            upgraded,
            self,
            true,
            Hooks {
                set_read_timeout: |s, t| s.set_read_timeout(t),
                shutdown: WsStream::shutdown,
            },
        ))
    }
}

impl WebSocketOptions {
    /// Runs the client's upgrade over an already connected stream (a
    /// `SecureStream` from [`ConnectOptions::secure`], a tunnel through a
    /// proxy...): `url` gives the path, `Host` and credentials; nothing is
    /// connected. Timeouts are the stream's own, and `ping_interval` needs a
    /// transport with timeouts, so it is off here.
    ///
    /// [`ConnectOptions::secure`]: crate::ConnectOptions::secure
    pub fn connect_over<S: Read + Write>(&self, mut stream: S, url: &str) -> Result<WebSocket<S>> {
        let parsed = url::WsUrl::parse(url)?;
        let headers = self.checked_headers()?;
        let upgraded = handshake::client(&mut stream, &parsed, self, &headers)?;
        let mut options = self.clone();
        options.ping_interval = None;
        Ok(WebSocket::open(
            stream,
            upgraded,
            &options,
            true,
            Hooks {
                set_read_timeout: |_, _| Ok(()),
                shutdown: |_| {},
            },
        ))
    }
}

impl<S: Read + Write> WebSocket<S> {
    /// The server side of the upgrade over an accepted stream (such as a
    /// [`SecureStream`](crate::SecureStream) from a
    /// [`SecureListener`](crate::SecureListener)): reads the client's
    /// request, picks the client's first subprotocol that `options.protocols`
    /// has, negotiates permessage-deflate, answers 101 (or an error status
    /// on a bad request). For test harnesses and simple servers; set
    /// timeouts on the stream itself, as `ping_interval` and the close
    /// timeout need a transport with timeouts.
    pub fn accept(mut stream: S, options: &WebSocketOptions) -> Result<WebSocket<S>> {
        options.compression.validate()?;
        let upgraded = handshake::server(&mut stream, options)?;
        let mut options = options.clone();
        options.ping_interval = None;
        Ok(WebSocket::open(
            stream,
            upgraded,
            &options,
            false,
            Hooks {
                set_read_timeout: |_, _| Ok(()),
                shutdown: |_| {},
            },
        ))
    }

    fn open(
        stream: S,
        upgraded: handshake::Upgraded,
        options: &WebSocketOptions,
        client: bool,
        hooks: Hooks<S>,
    ) -> WebSocket<S> {
        let deflate = upgraded.deflate;
        WebSocket {
            stream,
            recv: Receiver {
                frames: FrameReader::new(!client, upgraded.leftover),
                inflater: deflate.as_ref().map(Inflater::new),
                partial: None,
                max: options.max_message_size,
            },
            send: Sender {
                deflater: deflate.as_ref().and_then(Deflater::new),
                client,
            },
            state: ReadyState::Open,
            close_code: None,
            close_reason: None,
            protocol: upgraded.protocol,
            extensions: upgraded.extensions,
            ping: options.ping_interval.map(|interval| Pinger {
                interval,
                next: Instant::now() + interval,
                awaiting_pong: false,
            }),
            close_timeout: options.close_timeout,
            hooks,
        }
    }

    /// The subprotocol the server chose, if any.
    pub fn protocol(&self) -> Option<&str> {
        self.protocol.as_deref()
    }

    /// The negotiated extensions as the server sent them (e.g.
    /// `permessage-deflate; client_max_window_bits=15`), if any.
    pub fn extensions(&self) -> Option<&str> {
        self.extensions.as_deref()
    }

    /// Connecting, open, closing or closed.
    pub fn ready_state(&self) -> ReadyState {
        self.state
    }

    /// The close code the peer sent (or we sent, if the peer sent none), once closing.
    pub fn close_code(&self) -> Option<u16> {
        self.close_code
    }

    /// The close reason that came with [`close_code`](Self::close_code).
    pub fn close_reason(&self) -> Option<&str> {
        self.close_reason.as_deref()
    }

    /// Sends a text message.
    pub fn send_text(&mut self, text: &str) -> Result<()> {
        self.send_op(Op::Text, text.as_bytes())
    }

    /// Sends a binary message.
    pub fn send_binary(&mut self, data: &[u8]) -> Result<()> {
        self.send_op(Op::Binary, data)
    }

    /// Sends a ping (at most 125 bytes); its pong comes back from `read`.
    pub fn ping(&mut self, payload: &[u8]) -> Result<()> {
        if payload.len() > 125 {
            return Err(Error::invalid_input(
                format!("{} bytes", payload.len()),
                "a ping carries at most 125 bytes",
            ));
        }
        self.send_op(Op::Ping, payload)
    }

    fn send_op(&mut self, op: Op, payload: &[u8]) -> Result<()> {
        if self.state != ReadyState::Open {
            return Err(Error::Closed);
        }
        let r = self.send.send(&mut self.stream, op, payload);
        r.map_err(|e| self.fail(e))
    }

    /// Reads the next message. Pings are answered before they are returned;
    /// a close frame is answered and returned as [`Message::Close`], after
    /// which `read` fails with [`Error::Closed`]. A protocol violation by the
    /// peer closes the connection with the fitting code (1002, 1007, 1009)
    /// and is returned as [`Error::WebSocket`].
    pub fn read(&mut self) -> Result<Message> {
        if self.state == ReadyState::Closed {
            return Err(Error::Closed);
        }
        loop {
            if let Some(p) = &self.ping {
                let wait = p
                    .next
                    .saturating_duration_since(Instant::now())
                    .max(Duration::from_millis(1));
                (self.hooks.set_read_timeout)(&mut self.stream, Some(wait))?;
            }
            let incoming = match self.recv.next(&mut self.stream) {
                Ok(incoming) => incoming,
                Err(e) if e.is_timeout() && self.ping.is_some() => {
                    self.ping_tick()?;
                    continue;
                }
                Err(e) if e.is_timeout() => return Err(e),
                Err(e) => return Err(self.fail(e)),
            };
            match incoming {
                Incoming::Message(m) => return Ok(m),
                Incoming::Ping(p) => {
                    if self.state == ReadyState::Open {
                        let r = self.send.send(&mut self.stream, Op::Pong, &p);
                        r.map_err(|e| self.fail(e))?;
                    }
                    return Ok(Message::Ping(p));
                }
                Incoming::Pong(p) => {
                    if let Some(ping) = &mut self.ping {
                        ping.awaiting_pong = false;
                    }
                    return Ok(Message::Pong(p));
                }
                Incoming::Close(status) => {
                    self.on_close(status.clone());
                    return Ok(Message::Close(status));
                }
            }
        }
    }

    fn ping_tick(&mut self) -> Result<()> {
        let Some(p) = &mut self.ping else {
            return Ok(());
        };
        if p.awaiting_pong {
            let err = Error::WebSocket {
                reason: format!("no pong within the ping interval ({:?})", p.interval),
                close_code: Some(1001),
            };
            return Err(self.fail(err));
        }
        p.awaiting_pong = true;
        p.next = Instant::now() + p.interval;
        let r = self.send.send(&mut self.stream, Op::Ping, b"");
        r.map_err(|e| self.fail(e))
    }

    /// The peer's close frame: answer it (if we had not sent ours), then
    /// end the connection.
    fn on_close(&mut self, status: Option<(u16, String)>) {
        if self.state == ReadyState::Open {
            let payload = status
                .as_ref()
                .map(|(code, _)| close_payload(*code, ""))
                .unwrap_or_default();
            let _ = self.send.send(&mut self.stream, Op::Close, &payload);
        }
        if let Some((code, reason)) = status {
            self.close_code = Some(code);
            self.close_reason = Some(reason);
        } else if self.close_code.is_none() {
            self.close_code = Some(1005);
        }
        self.state = ReadyState::Closed;
        (self.hooks.shutdown)(&mut self.stream);
    }

    /// Ends the connection after an error, telling the peer why when the
    /// error has a close code.
    fn fail(&mut self, err: Error) -> Error {
        if let Error::WebSocket {
            close_code: Some(code),
            reason,
        } = &err
        {
            if self.state == ReadyState::Open {
                let short: String = reason.chars().take(100).collect();
                let _ = self
                    .send
                    .send(&mut self.stream, Op::Close, &close_payload(*code, &short));
            }
            self.close_code.get_or_insert(*code);
        }
        self.state = ReadyState::Closed;
        (self.hooks.shutdown)(&mut self.stream);
        err
    }

    /// Starts the close handshake with `status` (code 1000 or 3000-4999,
    /// reason at most 123 bytes; `None` sends no code), waits up to the
    /// close timeout for the peer's close frame (data still arriving is
    /// dropped), then closes the transport. Closing twice is fine.
    pub fn close(&mut self, status: Option<(u16, &str)>) -> Result<()> {
        if let Some((code, reason)) = status {
            check_close_status(code, reason)?;
        }
        match self.state {
            ReadyState::Closed => return Ok(()),
            ReadyState::Open | ReadyState::Connecting => {
                let payload = status.map_or_else(Vec::new, |(c, r)| close_payload(c, r));
                let r = self.send.send(&mut self.stream, Op::Close, &payload);
                r.map_err(|e| self.fail(e))?;
                self.state = ReadyState::Closing;
                if let Some((code, reason)) = status {
                    self.close_code = Some(code);
                    self.close_reason = Some(reason.to_owned());
                }
            }
            ReadyState::Closing => {}
        }
        let _ = (self.hooks.set_read_timeout)(&mut self.stream, Some(self.close_timeout));
        let deadline = Instant::now() + self.close_timeout;
        while Instant::now() < deadline {
            match self.recv.next(&mut self.stream) {
                Ok(Incoming::Close(Some((code, reason)))) => {
                    self.close_code = Some(code);
                    self.close_reason = Some(reason);
                    break;
                }
                Ok(Incoming::Close(None)) | Err(_) => break,
                Ok(_) => {}
            }
        }
        self.state = ReadyState::Closed;
        (self.hooks.shutdown)(&mut self.stream);
        Ok(())
    }

    /// The transport.
    pub fn get_mut(&mut self) -> &mut S {
        &mut self.stream
    }
}
