//! The clients: one process holding every connection without a thread of
//! its own (each is idle once open), raw rustls `StreamOwned` (with
//! tungstenite's client on top for the WebSocket rows), the same for every
//! server.

use std::io::{self, Read, Write};
use std::net::{SocketAddr, TcpStream};
use std::sync::Arc;
use std::time::Duration;

use rustls::pki_types::ServerName;
use rustls::{ClientConfig, ClientConnection, StreamOwned};

use crate::setup::{Pki, RawClient, Tuning, raw_configs};

/// One held connection.
pub enum Conn {
    Tls(Box<RawClient>),
    Ws(Box<tungstenite::WebSocket<RawClient>>),
}

impl Conn {
    /// One round trip: an echoed 4-byte write, or a WebSocket ping and its
    /// pong (what a ping every 30 s costs the server: its buffers come
    /// back for a moment).
    pub fn round_trip(&mut self) -> io::Result<()> {
        match self {
            Conn::Tls(tls) => {
                tls.write_all(b"ping")?;
                let mut got = [0u8; 4];
                tls.read_exact(&mut got)?;
                if &got != b"ping" {
                    return Err(io::Error::other("echo: wrong bytes"));
                }
                Ok(())
            }
            Conn::Ws(ws) => {
                ws.send(tungstenite::Message::Ping(b"ping".to_vec().into()))
                    .map_err(ws_error)?;
                loop {
                    if let tungstenite::Message::Pong(_) = ws.read().map_err(ws_error)? {
                        return Ok(());
                    }
                }
            }
        }
    }
}

fn ws_error(e: tungstenite::Error) -> io::Error {
    io::Error::other(format!("websocket: {e}"))
}

pub struct Client {
    config: Arc<ClientConfig>,
    addr: SocketAddr,
    websocket: bool,
}

impl Client {
    /// X25519 only, so that every server (Go 1.19 has no post-quantum
    /// group) does the same key exchange.
    pub fn new(pki: &Pki, port: u16, websocket: bool) -> Client {
        let tuning = Tuning {
            suite: None,
            x25519_only: true,
        };
        Client {
            config: raw_configs(pki, tuning).0,
            addr: SocketAddr::from(([127, 0, 0, 1], port)),
            websocket,
        }
    }

    /// A new connection, handshake done and one message echoed (so the
    /// server's thread is in its read loop), every wait bounded by
    /// `timeout`.
    pub fn open(&self, timeout: Duration) -> io::Result<Conn> {
        let sock = TcpStream::connect_timeout(&self.addr, timeout)?;
        sock.set_nodelay(true)?;
        sock.set_read_timeout(Some(timeout))?;
        sock.set_write_timeout(Some(timeout))?;
        let name = ServerName::try_from("localhost").map_err(io::Error::other)?;
        let conn =
            ClientConnection::new(Arc::clone(&self.config), name).map_err(io::Error::other)?;
        let mut tls = StreamOwned::new(conn, sock);
        while tls.conn.is_handshaking() {
            tls.conn.complete_io(&mut tls.sock)?;
        }
        let mut conn = if self.websocket {
            let (ws, _) = tungstenite::client("wss://localhost/", tls)
                .map_err(|e| io::Error::other(format!("websocket upgrade: {e}")))?;
            Conn::Ws(Box::new(ws))
        } else {
            Conn::Tls(Box::new(tls))
        };
        if let Conn::Ws(ws) = &mut conn {
            ws.send(tungstenite::Message::text("ping"))
                .map_err(ws_error)?;
            ws.read().map_err(ws_error)?;
        } else {
            conn.round_trip()?;
        }
        Ok(conn)
    }
}
