//! permessage-deflate negotiation (RFC 7692 section 7.1) on both sides:
//! the client's offer and its check of the answer, the server's choice.

use super::options::CompressionOptions;
use crate::error::{Error, Result, WebSocketErrorKind};

/// What was agreed, from one endpoint's point of view.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) struct Agreed {
    /// Reset our compressor after each message.
    pub(crate) reset_out: bool,
    /// Reset our decompressor after each message (the peer resets its compressor).
    pub(crate) reset_in: bool,
    /// Our compressor's window bits.
    pub(crate) out_bits: u8,
    /// The peer's compressor's window bits.
    pub(crate) in_bits: u8,
}

type Params = Vec<(String, Option<String>)>;

/// Splits an extension header into offers: (name, params).
fn parse_extensions(header: &str) -> Vec<(String, Params)> {
    header
        .split(',')
        .filter(|o| !o.trim().is_empty())
        .map(|offer| {
            let mut parts = offer.split(';').map(str::trim);
            let name = parts.next().unwrap_or_default().to_ascii_lowercase();
            let params = parts
                .filter(|p| !p.is_empty())
                .map(|p| match p.split_once('=') {
                    Some((k, v)) => (
                        k.trim().to_ascii_lowercase(),
                        Some(v.trim().trim_matches('"').to_owned()),
                    ),
                    None => (p.to_ascii_lowercase(), None),
                })
                .collect();
            (name, params)
        })
        .collect()
}

fn bits(v: &Option<String>) -> Option<u8> {
    v.as_deref()
        .and_then(|s| s.parse::<u8>().ok())
        .filter(|b| (8..=15).contains(b))
}

/// The client's offer, or `None` when compression is off.
pub(crate) fn client_offer(o: &CompressionOptions) -> Option<String> {
    if !o.enabled {
        return None;
    }
    let mut s = "permessage-deflate".to_owned();
    if o.client_no_context_takeover {
        s.push_str("; client_no_context_takeover");
    }
    if o.server_no_context_takeover {
        s.push_str("; server_no_context_takeover");
    }
    match o.client_max_window_bits {
        Some(b) => s.push_str(&format!("; client_max_window_bits={b}")),
        None => s.push_str("; client_max_window_bits"),
    }
    if let Some(b) = o.server_max_window_bits {
        s.push_str(&format!("; server_max_window_bits={b}"));
    }
    Some(s)
}

fn bad(reason: String) -> Error {
    Error::websocket(WebSocketErrorKind::Negotiation, reason, None)
}

/// Checks the server's `Sec-WebSocket-Extensions` against our offer.
pub(crate) fn client_accept(
    o: &CompressionOptions,
    header: Option<&str>,
) -> Result<Option<Agreed>> {
    let Some(header) = header.filter(|h| !h.trim().is_empty()) else {
        return Ok(None);
    };
    let offers = parse_extensions(header);
    let [(name, params)] = offers.as_slice() else {
        return Err(bad(format!(
            "the server accepted several extensions ({header}), but only permessage-deflate was offered"
        )));
    };
    if name != "permessage-deflate" || !o.enabled {
        return Err(bad(format!(
            "the server accepted the extension '{name}', which was not offered"
        )));
    }
    let mut agreed = Agreed {
        reset_out: false,
        reset_in: false,
        out_bits: 15,
        in_bits: 15,
    };
    let mut seen = Vec::new();
    for (k, v) in params {
        if seen.contains(k) {
            return Err(bad(format!("permessage-deflate parameter '{k}' repeated")));
        }
        seen.push(k.clone());
        match k.as_str() {
            "server_no_context_takeover" if v.is_none() => agreed.reset_in = true,
            "client_no_context_takeover" if v.is_none() => agreed.reset_out = true,
            "server_max_window_bits" => {
                let b = bits(v).ok_or_else(|| bad(format!("bad server_max_window_bits {v:?}")))?;
                if o.server_max_window_bits.is_some_and(|ours| b > ours) {
                    return Err(bad(format!(
                        "server_max_window_bits={b} is above our offer"
                    )));
                }
                agreed.in_bits = b;
            }
            "client_max_window_bits" => {
                let b = bits(v).ok_or_else(|| bad(format!("bad client_max_window_bits {v:?}")))?;
                if o.client_max_window_bits.is_some_and(|ours| b > ours) {
                    return Err(bad(format!(
                        "client_max_window_bits={b} is above our offer"
                    )));
                }
                agreed.out_bits = b;
            }
            other => {
                return Err(bad(format!(
                    "the server answered with an unknown permessage-deflate parameter '{other}'"
                )));
            }
        }
    }
    if let Some(ours) = o.client_max_window_bits {
        agreed.out_bits = agreed.out_bits.min(ours);
    }
    agreed.reset_out |= o.client_no_context_takeover;
    Ok(Some(agreed))
}

/// The server's choice among the client's offers: the response value and
/// what it means for the server.
pub(crate) fn server_accept(
    o: &CompressionOptions,
    header: Option<&str>,
) -> Option<(String, Agreed)> {
    if !o.enabled {
        return None;
    }
    'offers: for (name, params) in parse_extensions(header?) {
        if name != "permessage-deflate" {
            continue;
        }
        let mut server_nct = o.server_no_context_takeover;
        let mut client_nct = o.client_no_context_takeover;
        let mut server_bits = o.server_max_window_bits;
        let mut client_bits: Option<u8> = None;
        let mut client_bits_ok = false;
        let mut seen: Vec<String> = Vec::new();
        for (k, v) in &params {
            if seen.contains(k) {
                continue 'offers;
            }
            seen.push(k.clone());
            match k.as_str() {
                "server_no_context_takeover" if v.is_none() => server_nct = true,
                "client_no_context_takeover" if v.is_none() => client_nct = true,
                "server_max_window_bits" => match bits(v) {
                    Some(b) => server_bits = Some(server_bits.map_or(b, |s| s.min(b))),
                    None => continue 'offers,
                },
                "client_max_window_bits" => {
                    client_bits_ok = true;
                    if v.is_some() {
                        match bits(v) {
                            Some(b) => client_bits = Some(b),
                            None => continue 'offers,
                        }
                    }
                }
                _ => continue 'offers,
            }
        }
        let mut response = "permessage-deflate".to_owned();
        if server_nct {
            response.push_str("; server_no_context_takeover");
        }
        if client_nct {
            response.push_str("; client_no_context_takeover");
        }
        if let Some(b) = server_bits {
            response.push_str(&format!("; server_max_window_bits={b}"));
        }
        let mut in_bits = 15;
        if client_bits_ok {
            let b = match (o.client_max_window_bits, client_bits) {
                (Some(ours), Some(theirs)) => Some(ours.min(theirs)),
                (Some(ours), None) => Some(ours),
                (None, theirs) => theirs,
            };
            if let Some(b) = b {
                response.push_str(&format!("; client_max_window_bits={b}"));
                in_bits = b;
            }
        }
        return Some((
            response,
            Agreed {
                reset_out: server_nct,
                reset_in: client_nct,
                out_bits: server_bits.unwrap_or(15),
                in_bits,
            },
        ));
    }
    None
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn negotiation() {
        let o = CompressionOptions::default();
        assert_eq!(
            client_offer(&o).as_deref(),
            Some("permessage-deflate; client_max_window_bits")
        );
        let a = client_accept(
            &o,
            Some("permessage-deflate; server_no_context_takeover; client_max_window_bits=10"),
        )
        .expect("ok")
        .expect("agreed");
        assert_eq!(
            a,
            Agreed {
                reset_out: false,
                reset_in: true,
                out_bits: 10,
                in_bits: 15,
            }
        );
        assert!(client_accept(&o, Some("x-webkit-deflate-frame")).is_err());
        assert!(
            client_accept(&CompressionOptions::disabled(), Some("permessage-deflate")).is_err()
        );
        assert!(client_accept(&o, Some("permessage-deflate; foo")).is_err());
        let (resp, a) = server_accept(
            &o,
            Some("permessage-deflate; client_max_window_bits; server_max_window_bits=12, permessage-deflate"),
        )
        .expect("accepted");
        assert_eq!(resp, "permessage-deflate; server_max_window_bits=12");
        assert_eq!(a.out_bits, 12);
        assert!(server_accept(&o, Some("permessage-deflate; bogus=1")).is_none());
    }
}
