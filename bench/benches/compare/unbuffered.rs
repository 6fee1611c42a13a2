//! The question issue 15 rests on, measured: would a stream core on
//! rustls's unbuffered API (`UnbufferedClientConnection`,
//! `process_tls_records`) move bulk data with less CPU, and hold less per
//! idle connection, than its buffered API (`StreamOwned`)? This is the
//! smallest such core: one receive buffer per end (4 KiB, doubling up to
//! 64 KiB while data flows), records processed where they were received
//! (the front is compacted once per read, not once per record),
//! plaintext copied (by us) once into the reader's buffer; every write
//! encrypted into one send buffer and sent with one `write`; both buffers
//! freed by `idle`. It handles only what bulk needs (the handshake, data,
//! close); it is a measuring device, not a stream.

use std::io::{self, Read, Write};
use std::net::TcpStream;
use std::sync::Arc;

use rustls::client::UnbufferedClientConnection;
use rustls::pki_types::ServerName;
use rustls::server::UnbufferedServerConnection;
use rustls::unbuffered::{ConnectionState, EncodeError, EncryptError, UnbufferedStatus};
use rustls::{ClientConfig, ServerConfig};

use crate::setup::tcp_pair;

/// Either end's connection: the two types share the state machine but
/// not a trait.
pub enum Conn {
    Client(UnbufferedClientConnection),
    Server(UnbufferedServerConnection),
}

/// What the caller wants from one drive of the state machine.
enum Want<'a> {
    Handshake,
    Read(&'a mut [u8]),
    Write(&'a [u8]),
}

pub struct Unbuffered {
    conn: Conn,
    sock: TcpStream,
    incoming: Vec<u8>,
    /// `incoming[start..used]` is received and not yet processed; the
    /// front is compacted only when a read needs the room (once per read,
    /// not once per record).
    start: usize,
    used: usize,
    outgoing: Vec<u8>,
    /// Plaintext decrypted but not yet read (a record larger than the
    /// reader's buffer).
    plain: Vec<u8>,
    plain_at: usize,
    eof: bool,
}

/// The receive buffer: it starts at `FIRST` and doubles each time a read
/// fills it, up to `RECEIVE` while bulk data flows (more only for a
/// record that does not fit).
const FIRST: usize = 4096;
const RECEIVE: usize = 64 * 1024;

fn other(e: impl std::fmt::Display) -> io::Error {
    io::Error::other(e.to_string())
}

impl Unbuffered {
    fn new(conn: Conn, sock: TcpStream) -> Self {
        Unbuffered {
            conn,
            sock,
            incoming: Vec::new(),
            start: 0,
            used: 0,
            outgoing: Vec::new(),
            plain: Vec::new(),
            plain_at: 0,
            eof: false,
        }
    }

    /// Frees both record buffers if nothing is pending in them, as an
    /// idle connection of a real core would: what is left is rustls's
    /// unbuffered state alone. They are allocated again when needed.
    pub fn idle(&mut self) {
        if self.start == self.used && self.plain_at == self.plain.len() {
            (self.start, self.used) = (0, 0);
            self.incoming = Vec::new();
            self.outgoing = Vec::new();
            self.plain = Vec::new();
            self.plain_at = 0;
        }
    }

    /// Runs the state machine until `want` is done; returns the bytes read
    /// or written.
    fn drive(&mut self, mut want: Want<'_>) -> io::Result<usize> {
        let mut got = 0usize;
        loop {
            let Unbuffered {
                conn,
                sock,
                incoming,
                start,
                used,
                outgoing,
                plain,
                ..
            } = self;
            let buf = &mut incoming[*start..*used];
            let mut io = Io {
                sock,
                outgoing,
                plain,
                want: &mut want,
                got: &mut got,
            };
            let (discard, outcome) = match conn {
                Conn::Client(c) => {
                    let UnbufferedStatus { discard, state } = c.process_tls_records(buf);
                    (discard, io.handle(state.map_err(other)?)?)
                }
                Conn::Server(s) => {
                    let UnbufferedStatus { discard, state } = s.process_tls_records(buf);
                    (discard, io.handle(state.map_err(other)?)?)
                }
            };
            *start += discard;
            if *start == *used {
                (*start, *used) = (0, 0);
            }
            match outcome {
                Outcome::Done(n) => return Ok(n),
                Outcome::Closed => {
                    self.eof = true;
                    return Ok(0);
                }
                Outcome::Again => {}
                Outcome::NeedRead => {
                    if *used == incoming.len() && *start > 0 {
                        incoming.copy_within(*start..*used, 0);
                        (*start, *used) = (0, *used - *start);
                    }
                    if *used == incoming.len() {
                        let grown = (incoming.len() * 2).clamp(FIRST, RECEIVE);
                        incoming.resize(grown.max(incoming.len() + FIRST), 0);
                    }
                    let n = sock.read(&mut incoming[*used..])?;
                    if n == 0 {
                        return Err(io::ErrorKind::UnexpectedEof.into());
                    }
                    *used += n;
                }
            }
        }
    }
}

enum Outcome {
    Done(usize),
    Closed,
    Again,
    NeedRead,
}

/// The fields one state is handled with.
struct Io<'a, 'w> {
    sock: &'a mut TcpStream,
    outgoing: &'a mut Vec<u8>,
    plain: &'a mut Vec<u8>,
    want: &'a mut Want<'w>,
    got: &'a mut usize,
}

impl Io<'_, '_> {
    fn handle<D>(&mut self, state: ConnectionState<'_, '_, D>) -> io::Result<Outcome> {
        Ok(match state {
            ConnectionState::ReadTraffic(mut rt) => {
                while let Some(rec) = rt.next_record() {
                    let payload = rec.map_err(other)?.payload;
                    match &mut *self.want {
                        Want::Read(out) if *self.got < out.len() => {
                            let n = payload.len().min(out.len() - *self.got);
                            out[*self.got..*self.got + n].copy_from_slice(&payload[..n]);
                            *self.got += n;
                            self.plain.extend_from_slice(&payload[n..]);
                        }
                        _ => self.plain.extend_from_slice(payload),
                    }
                }
                if *self.got > 0 {
                    Outcome::Done(*self.got)
                } else {
                    Outcome::Again
                }
            }
            ConnectionState::EncodeTlsData(mut e) => loop {
                match e.encode(self.outgoing) {
                    Ok(n) => {
                        self.sock.write_all(&self.outgoing[..n])?;
                        break Outcome::Again;
                    }
                    Err(EncodeError::InsufficientSize(s)) => {
                        self.outgoing.resize(s.required_size, 0)
                    }
                    Err(e) => return Err(other(e)),
                }
            },
            ConnectionState::TransmitTlsData(t) => {
                t.done();
                Outcome::Again
            }
            ConnectionState::BlockedHandshake => Outcome::NeedRead,
            ConnectionState::PeerClosed | ConnectionState::Closed => Outcome::Closed,
            ConnectionState::WriteTraffic(mut w) => match &*self.want {
                Want::Handshake => Outcome::Done(0),
                Want::Write(data) => loop {
                    match w.encrypt(data, self.outgoing) {
                        Ok(n) => {
                            self.sock.write_all(&self.outgoing[..n])?;
                            break Outcome::Done(data.len());
                        }
                        Err(EncryptError::InsufficientSize(s)) => {
                            self.outgoing.resize(s.required_size, 0);
                        }
                        Err(e) => return Err(other(e)),
                    }
                },
                Want::Read(_) => Outcome::NeedRead,
            },
            _ => Outcome::NeedRead,
        })
    }
}

impl Read for Unbuffered {
    fn read(&mut self, buf: &mut [u8]) -> io::Result<usize> {
        if self.plain_at < self.plain.len() {
            let n = (self.plain.len() - self.plain_at).min(buf.len());
            buf[..n].copy_from_slice(&self.plain[self.plain_at..self.plain_at + n]);
            self.plain_at += n;
            if self.plain_at == self.plain.len() {
                self.plain.clear();
                self.plain_at = 0;
            }
            return Ok(n);
        }
        if self.eof || buf.is_empty() {
            return Ok(0);
        }
        self.drive(Want::Read(buf))
    }
}

impl Write for Unbuffered {
    fn write(&mut self, buf: &[u8]) -> io::Result<usize> {
        self.drive(Want::Write(buf))
    }

    fn flush(&mut self) -> io::Result<()> {
        Ok(())
    }
}

impl Unbuffered {
    /// The server end of `sock`; the handshake runs on first use, as
    /// `StreamOwned`'s does.
    pub fn server(config: &Arc<ServerConfig>, sock: TcpStream) -> Self {
        let conn = UnbufferedServerConnection::new(config.clone()).expect("conn");
        Unbuffered::new(Conn::Server(conn), sock)
    }
}

/// An unbuffered pair: (client, server), handshake done.
pub fn pair(client: &Arc<ClientConfig>, server: &Arc<ServerConfig>) -> (Unbuffered, Unbuffered) {
    let server = server.clone();
    tcp_pair(
        move |sock| {
            let mut s = Unbuffered::server(&server, sock);
            s.drive(Want::Handshake).expect("server handshake");
            s
        },
        |sock| {
            let name = ServerName::try_from("localhost").expect("name");
            let conn = UnbufferedClientConnection::new(client.clone(), name).expect("conn");
            let mut c = Unbuffered::new(Conn::Client(conn), sock);
            c.drive(Want::Handshake).expect("client handshake");
            c
        },
    )
}
