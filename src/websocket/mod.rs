//! A blocking WebSocket client (Dart `WebSocket.connect`) over
//! [`SecureStream`], with permessage-deflate, and a server side for
//! harnesses ([`WebSocket::accept`]).
//!
//! tungstenite provides the frame header codec and the handshake key
//! functions; the message layer above it is ours: reassembly, control frames
//! between fragments, automatic pongs, the close handshake, UTF-8 checks,
//! size caps and compression.

mod accept;
mod deadline;
mod deflate;
mod frames;
mod handshake;
mod key;
mod message;
mod negotiate;
mod options;
mod request;
mod respond;
mod server;
mod split;
mod state;
mod stream;
mod url;

use std::io::{Read, Write};
use std::time::{Duration, Instant};

pub use message::{Message, ReadyState};
pub use options::{
    CompressionOptions, DEFAULT_CLOSE_TIMEOUT, DEFAULT_COMPRESSION_LEVEL, DEFAULT_MAX_FRAME_SIZE,
    DEFAULT_MAX_MESSAGE_SIZE, DEFAULT_UPGRADE_TIMEOUT, WebSocketOptions,
};
pub use request::{MAX_REJECTION_BODY, Rejection, UpgradeRequest, UpgradeResponse};
pub use respond::{Accepted, Answer, HttpResponse};
pub use split::{WsReader, WsWriter};
pub use stream::{WsStream, WsTransport};

use deadline::{Bounded, SetTimeout, deadline_after};
use deflate::{Deflater, Inflater};
use frames::{FrameReader, Op, check_ping, write_frame};
use message::{Incoming, Receiver, check_close_status, close_payload};
use state::{Reply, Status};

use crate::client::Reached;
use crate::error::{Error, Phase, Result, WebSocketErrorKind, is_socket_timeout};

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
pub(crate) struct Hooks<S> {
    set_read_timeout: SetTimeout<S>,
    set_write_timeout: SetTimeout<S>,
    shutdown: fn(&mut S),
}

impl<S> Hooks<S> {
    /// `stream` with every read and write ending by `deadline` (see
    /// [`Bounded`]), the user's `timeouts` put back afterwards.
    fn bound<'a>(
        &self,
        stream: &'a mut S,
        timeouts: (Option<Duration>, Option<Duration>),
        deadline: Option<Instant>,
        first_is_bounded: bool,
    ) -> Bounded<'a, S> {
        Bounded::new(
            stream,
            deadline,
            (self.set_read_timeout, self.set_write_timeout),
            timeouts,
            first_is_bounded,
        )
    }

    /// A transport with no timeouts to set (the caller set its own).
    fn none() -> Self {
        Hooks {
            set_read_timeout: |_, _| Ok(()),
            set_write_timeout: |_, _| Ok(()),
            shutdown: |_| {},
        }
    }
}

/// The ping schedule of `ping_interval`.
struct Pinger {
    interval: Duration,
    next: Instant,
    awaiting_pong: bool,
}

/// A timeout of any layer as [`Error::Timeout`] of `phase`, after `after`.
pub(crate) fn timeout_as(e: Error, phase: Phase, after: Option<Duration>) -> Error {
    if is_socket_timeout(e.io_kind()) {
        Error::Timeout { phase, after }
    } else {
        e
    }
}

/// A WebSocket connection over `S`: a [`WsStream`] for a client made by
/// [`connect`](Self::connect), any `Read + Write` for
/// [`accept`](Self::accept).
///
/// Timeouts are deadlines for the whole call: `read` returns within its
/// read timeout however slowly the peer dribbles a message, a send within
/// its write timeout, and `close` within the close timeout. A send that
/// fails (a write timeout included) may have left a frame half-written, so
/// it ends the connection: later sends fail with [`Error::Closed`] and
/// [`ready_state`](Self::ready_state) is `Closed`.
pub struct WebSocket<S = WsStream> {
    stream: S,
    recv: Receiver,
    send: Sender,
    status: Status,
    protocol: Option<String>,
    extensions: Option<String>,
    ping: Option<Pinger>,
    close_timeout: Duration,
    read_timeout: Option<Duration>,
    write_timeout: Option<Duration>,
    hooks: Hooks<S>,
}

impl<S> std::fmt::Debug for WebSocket<S> {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("WebSocket")
            .field("state", &self.status.state)
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
}

impl<S: WsTransport> WebSocket<S> {
    /// Splits into a reader and a writer for two threads: one blocked in
    /// `read` while the other sends. The reader never waits for the writer:
    /// the pongs and close replies it owes are sent at once when the writer
    /// is idle, and otherwise by the writer right after the frame it is
    /// sending. `ping_interval` does not apply to split halves. Client and
    /// server side, over TLS or plain TCP.
    pub fn split(self) -> Result<(WsReader, WsWriter)> {
        split::split(self)
    }

    /// Bounds each [`read`](Self::read) as a whole (`None` waits forever):
    /// it fails with `TimedOut` when no whole message came in time, however
    /// the bytes trickle in, and the connection stays usable. With
    /// `ping_interval`, pings go out on schedule within the wait.
    pub fn set_read_timeout(&mut self, timeout: Option<Duration>) -> Result<()> {
        self.stream.set_read(timeout)?;
        self.read_timeout = timeout;
        Ok(())
    }

    /// Bounds each send as a whole (`None` waits forever). A send that
    /// times out ends the connection, as any failed send does.
    pub fn set_write_timeout(&mut self, timeout: Option<Duration>) -> Result<()> {
        self.stream.set_write(timeout)?;
        self.write_timeout = timeout;
        Ok(())
    }
}

impl<S> WebSocket<S> {
    /// The underlying stream.
    pub fn get_ref(&self) -> &S {
        &self.stream
    }
}

/// The hooks of a transport that has timeouts.
fn transport_hooks<S: WsTransport>() -> Hooks<S> {
    Hooks {
        set_read_timeout: |s, t| s.set_read(t),
        set_write_timeout: |s, t| s.set_write(t),
        shutdown: |s| s.end_transport(),
    }
}

impl WebSocketOptions {
    /// Connects to a `ws://` or `wss://` URL: TCP (and TLS for `wss`) with
    /// the connect options and their timeouts, then the HTTP upgrade, which
    /// [`upgrade_timeout`](Self::upgrade_timeout) bounds as a whole (a
    /// timeout there is [`Phase::Upgrade`]). The URL is checked before
    /// any I/O; user info in it becomes `Authorization: Basic`.
    pub fn connect(&self, url: &str) -> Result<WebSocket> {
        let parsed = url::WsUrl::parse(url)?;
        let headers = self.checked_headers()?;
        let limit = self.upgrade_timeout;
        let mut stream = if parsed.secure {
            let tls = self
                .connect
                .clone()
                .supported_protocols(&["http/1.1"])
                .connect(&parsed.host, parsed.port)?;
            WsStream::Tls(Box::new(tls))
        } else {
            match self.connect.connect_tcp(&parsed.host, parsed.port)? {
                Reached::Tcp(tcp) => WsStream::Plain(tcp),
                Reached::ProxyTls(_, tls) => WsStream::ProxyTls(tls),
            }
        };
        let hooks = transport_hooks::<WsStream>();
        let upgraded = {
            let mut bounded = hooks.bound(
                &mut stream,
                (None, None),
                deadline_after(Some(limit)),
                false,
            );
            handshake::client(&mut bounded, &parsed, self, &headers)
                .map_err(|e| timeout_as(e, Phase::Upgrade, Some(limit)))?
        };
        Ok(WebSocket::open(stream, upgraded, self, true, hooks))
    }
}

impl WebSocketOptions {
    /// Runs the client's upgrade over an already connected stream (a
    /// `SecureStream` from [`ConnectOptions::secure`], a tunnel through a
    /// proxy...): `url` gives the path, `Host` and credentials; nothing is
    /// connected. Timeouts are the stream's own (each bounds one read or
    /// write of it, not the whole upgrade), and `ping_interval` needs a
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
            Hooks::none(),
        ))
    }
}

impl<S: Read + Write> WebSocket<S> {
    pub(crate) fn open(
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
                control: Vec::new(),
                max: options.max_message_size,
                max_frame: options.max_frame_size.min(options.max_message_size),
            },
            send: Sender {
                deflater: deflate
                    .as_ref()
                    .and_then(|agreed| Deflater::new(agreed, options.compression.level)),
                client,
            },
            status: Status::open(),
            protocol: upgraded.protocol,
            extensions: upgraded.extensions,
            ping: options.ping_interval.and_then(|interval| {
                Some(Pinger {
                    interval,
                    next: Instant::now().checked_add(interval)?,
                    awaiting_pong: false,
                })
            }),
            close_timeout: options.close_timeout,
            read_timeout: None,
            write_timeout: None,
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
        self.status.state
    }

    /// The close code the peer sent (or we sent, if the peer sent none), once closing.
    pub fn close_code(&self) -> Option<u16> {
        self.status.close_code
    }

    /// The close reason that came with [`close_code`](Self::close_code).
    pub fn close_reason(&self) -> Option<&str> {
        self.status.close_reason.as_deref()
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
        check_ping(payload)?;
        self.send_op(Op::Ping, payload)
    }

    fn send_op(&mut self, op: Op, payload: &[u8]) -> Result<()> {
        if self.status.state != ReadyState::Open {
            return Err(Error::Closed);
        }
        self.send_frame(op, payload, deadline_after(self.write_timeout), true)
    }

    /// Sends one frame by `deadline`; a failure ends the connection.
    fn send_frame(
        &mut self,
        op: Op,
        payload: &[u8],
        deadline: Option<Instant>,
        first_is_bounded: bool,
    ) -> Result<()> {
        let mut io = self.hooks.bound(
            &mut self.stream,
            (self.read_timeout, self.write_timeout),
            deadline,
            first_is_bounded,
        );
        let sent = self.send.send(&mut io, op, payload);
        drop(io);
        sent.map_err(|e| {
            let e = timeout_as(e, Phase::Write, self.write_timeout);
            self.fail(e)
        })
    }

    /// Reads the next message. Pings are answered before they are returned;
    /// a close frame is answered and returned as [`Message::Close`], after
    /// which `read` fails with [`Error::Closed`]. A protocol violation by the
    /// peer closes the connection with the fitting code (1002, 1007, 1009)
    /// and is returned as [`Error::WebSocket`]. The read timeout bounds the
    /// whole call; after a timeout, the next `read` goes on where it was.
    pub fn read(&mut self) -> Result<Message> {
        if self.status.state == ReadyState::Closed {
            return Err(Error::Closed);
        }
        let user_deadline = deadline_after(self.read_timeout);
        loop {
            let ping_at = self.ping.as_ref().map(|p| p.next);
            let deadline = match (user_deadline, ping_at) {
                (Some(a), Some(b)) => Some(a.min(b)),
                (a, b) => a.or(b),
            };
            let mut io = self.hooks.bound(
                &mut self.stream,
                (self.read_timeout, self.write_timeout),
                deadline,
                ping_at.is_none(),
            );
            let incoming = self.recv.next(&mut io);
            drop(io);
            let incoming = match incoming {
                Ok(incoming) => incoming,
                Err(e) if e.is_timeout() => {
                    let now = Instant::now();
                    if ping_at.is_some_and(|at| at <= now)
                        && user_deadline.is_none_or(|at| at > now)
                    {
                        self.ping_tick()?;
                        continue;
                    }
                    return Err(Error::Timeout {
                        phase: Phase::Read,
                        after: self.read_timeout,
                    });
                }
                Err(e) => return Err(self.fail(e)),
            };
            if let (Incoming::Pong(_), Some(ping)) = (&incoming, &mut self.ping) {
                ping.awaiting_pong = false;
            }
            let (message, reply) = self.status.received(incoming);
            self.carry_out(reply)?;
            return Ok(message);
        }
    }

    fn ping_tick(&mut self) -> Result<()> {
        let Some(p) = &mut self.ping else {
            return Ok(());
        };
        if p.awaiting_pong {
            let err = Error::websocket(
                WebSocketErrorKind::PeerGone,
                format!("no pong within the ping interval ({:?})", p.interval),
                Some(1001),
            );
            return Err(self.fail(err));
        }
        p.awaiting_pong = true;
        match Instant::now().checked_add(p.interval) {
            Some(next) => p.next = next,
            None => self.ping = None,
        }
        self.send_frame(Op::Ping, b"", deadline_after(self.write_timeout), true)
    }

    /// Sends what the state machine says a frame or a failure calls for.
    /// A pong that cannot be sent fails the read; a close frame is sent on a
    /// best-effort basis (the connection ends either way).
    fn carry_out(&mut self, reply: Reply) -> Result<()> {
        match reply {
            Reply::Nothing => Ok(()),
            Reply::Pong(p) => {
                self.send_frame(Op::Pong, &p, deadline_after(self.write_timeout), true)
            }
            Reply::Close(payload) => {
                let deadline = deadline_after(self.write_timeout.or(Some(self.close_timeout)));
                let _ = self.send_frame(Op::Close, &payload, deadline, false);
                self.end(deadline_after(Some(self.close_timeout)));
                Ok(())
            }
            Reply::End => {
                self.end(deadline_after(Some(self.close_timeout)));
                Ok(())
            }
        }
    }

    /// Ends the transport (TLS `close_notify` within what is left of
    /// `deadline`, then the socket).
    fn end(&mut self, deadline: Option<Instant>) {
        self.status.state = ReadyState::Closed;
        if let Some(at) = deadline {
            let left = at
                .saturating_duration_since(Instant::now())
                .max(Duration::from_millis(1));
            let _ = (self.hooks.set_write_timeout)(&mut self.stream, Some(left));
        }
        (self.hooks.shutdown)(&mut self.stream);
    }

    /// Ends the connection after an error, telling the peer why when the
    /// error has a close code.
    fn fail(&mut self, err: Error) -> Error {
        let reply = self.status.failed(&err);
        let _ = self.carry_out(reply);
        err
    }

    /// Starts the close handshake with `status` (code 1000 or 3000-4999,
    /// reason at most 123 bytes; `None` sends no code), waits for the
    /// peer's close frame (data still arriving is dropped), then closes the
    /// transport. All of it takes at most the close timeout, however the
    /// peer dribbles (with a close timeout of zero, the close frame is sent
    /// within the write timeout and no answer is awaited). Closing twice is
    /// fine.
    pub fn close(&mut self, status: Option<(u16, &str)>) -> Result<()> {
        if let Some((code, reason)) = status {
            check_close_status(code, reason)?;
        }
        let deadline = deadline_after(Some(self.close_timeout));
        match self.status.state {
            ReadyState::Closed => return Ok(()),
            ReadyState::Open | ReadyState::Connecting => {
                let payload = status.map_or_else(Vec::new, |(c, r)| close_payload(c, r));
                let send_by = if self.close_timeout.is_zero() {
                    deadline_after(self.write_timeout)
                } else {
                    deadline
                };
                self.send_frame(Op::Close, &payload, send_by, false)?;
                self.status.closing(status);
            }
            ReadyState::Closing => {}
        }
        let mut io = self.hooks.bound(
            &mut self.stream,
            (self.read_timeout, self.write_timeout),
            deadline,
            false,
        );
        loop {
            match self.recv.next(&mut io) {
                Ok(Incoming::Close(Some(status))) => {
                    self.status.peer_closed(Some(status));
                    break;
                }
                Ok(Incoming::Close(None)) | Err(_) => break,
                Ok(_) => {}
            }
        }
        drop(io);
        self.end(deadline);
        Ok(())
    }

    /// The transport.
    pub fn get_mut(&mut self) -> &mut S {
        &mut self.stream
    }
}
