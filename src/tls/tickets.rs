//! [`TicketKeys`]: session ticket keys shared by a fleet of servers, so a
//! session made on one resumes on any, with rotation (a current key that
//! encrypts, previous ones that still decrypt); and the rustls ticketer
//! built on them (AES-256-GCM from aws-lc-rs).

use std::fmt;
use std::path::Path;
use std::sync::{Arc, RwLock};

use aws_lc_rs::aead::{AES_256_GCM, Aad, LessSafeKey, NONCE_LEN, Nonce, UnboundKey};
use aws_lc_rs::rand::{SecureRandom, SystemRandom};

use crate::error::{Error, Result};
use crate::tls::pem::read_file;

/// The bytes of one key: a 16-byte name, then a 32-byte AES-256 key.
pub const TICKET_KEY_LEN: usize = 48;
/// How many previous keys [`TicketKeys::rotate`] keeps for decryption.
pub const DEFAULT_TICKET_KEY_WINDOW: usize = 2;
/// The lifetime servers announce for their tickets, in seconds (12 hours):
/// a hint to clients; what really ends a ticket is its key leaving the
/// window.
const TICKET_LIFETIME: u32 = 12 * 3600;

struct Key {
    name: [u8; 16],
    raw: [u8; 32],
    aead: LessSafeKey,
}

impl Key {
    fn from_bytes(bytes: &[u8]) -> Option<Key> {
        let name: [u8; 16] = bytes.get(..16)?.try_into().ok()?;
        let raw: [u8; 32] = bytes.get(16..48)?.try_into().ok()?;
        let aead = LessSafeKey::new(UnboundKey::new(&AES_256_GCM, &raw).ok()?);
        Some(Key { name, raw, aead })
    }

    fn generate() -> Result<Key> {
        let mut bytes = [0u8; TICKET_KEY_LEN];
        SystemRandom::new().fill(&mut bytes).map_err(|_| {
            Error::credentials("ticket keys", "the system's random number generator failed")
        })?;
        Key::from_bytes(&bytes)
            .ok_or_else(|| Error::credentials("ticket keys", "cannot make an AES-256 key"))
    }
}

/// Session ticket keys, to share between servers (processes, machines)
/// behind a load balancer so that a session made on one resumes on any
/// (Node's `ticketKeys`/`setTicketKeys`, Go's `SetSessionTicketKeys`,
/// nginx's `ssl_session_ticket_key`).
///
/// The first key encrypts new tickets; the others only decrypt, so tickets
/// made before a rotation still resume until their key leaves. A ticket
/// whose key is unknown (too old, or from another fleet) is a full
/// handshake, never an error. Give the keys to
/// [`BindOptions::ticket_keys`](crate::BindOptions::ticket_keys); clones
/// share the keys, so a rotation reaches every listener using them.
///
/// **Security**: whoever has the keys can decrypt every resumed session
/// made with them, and resumed sessions have forward secrecy only as long
/// as the key that made their ticket is kept. Keep the key file readable by
/// the servers only, rotate it (daily is usual) and keep the window short.
///
/// A ticket resumes only under the client-certificate policy it was made
/// under: whether certificates are requested or required, the client
/// authorities (or trusted certificates) they must chain to, the CRLs and
/// [`set_crls_required`](crate::SecurityContext::set_crls_required), and
/// whether [`on_bad_client_certificate`](crate::BindOptions::on_bad_client_certificate)
/// is set. Listeners that share keys but not that policy, and a listener
/// whose [`set_context`](crate::SecureListener::set_context) changed it,
/// answer older tickets with a full handshake, where the client's
/// certificate is checked again; servers of a fleet that load the same
/// files with the same options share tickets. Under an unchanged policy a
/// resumed session is not checked again (rustls keeps the client's
/// certificate in the ticket): a client certificate that expires meanwhile
/// resumes until its ticket's key leaves the window, and a revocation
/// counts from the listener's `set_context` with the new CRL.
///
/// ```
/// # fn main() -> securenet::Result<()> {
/// let keys = securenet::TicketKeys::generate()?;
/// let file = keys.to_bytes(); // write it where every server can read it
/// let same = securenet::TicketKeys::from_bytes(&file)?;
/// keys.rotate()?; // a new current key; the old one still decrypts
/// # let _ = same; Ok(()) }
/// ```
#[derive(Clone)]
pub struct TicketKeys {
    keys: Arc<RwLock<Vec<Key>>>,
}

impl fmt::Debug for TicketKeys {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("TicketKeys")
            .field("keys", &crate::sync::read(&self.keys).len())
            .finish()
    }
}

impl TicketKeys {
    /// One new random key.
    pub fn generate() -> Result<TicketKeys> {
        Ok(TicketKeys {
            keys: Arc::new(RwLock::new(vec![Key::generate()?])),
        })
    }

    /// Keys from bytes: one or more keys of [`TICKET_KEY_LEN`] (48) bytes
    /// each, a 16-byte name then a 32-byte key, the current one first
    /// (`openssl rand 48` makes one).
    pub fn from_bytes(bytes: &[u8]) -> Result<TicketKeys> {
        Ok(TicketKeys {
            keys: Arc::new(RwLock::new(parse(bytes, "ticket keys (bytes)")?)),
        })
    }

    /// [`from_bytes`](Self::from_bytes) from a file.
    pub fn from_file(path: impl AsRef<Path>) -> Result<TicketKeys> {
        let path = path.as_ref();
        Ok(TicketKeys {
            keys: Arc::new(RwLock::new(parse(
                &read_file(path)?,
                &path.display().to_string(),
            )?)),
        })
    }

    /// Replaces every key with those in `bytes` (as
    /// [`from_bytes`](Self::from_bytes) reads them), for every listener
    /// using these keys: how a fleet rotates, each server loading the new
    /// file. Malformed bytes change nothing.
    pub fn load_bytes(&self, bytes: &[u8]) -> Result<()> {
        let keys = parse(bytes, "ticket keys (bytes)")?;
        *crate::sync::write(&self.keys) = keys;
        Ok(())
    }

    /// Makes a new random current key; the current one and up to
    /// [`DEFAULT_TICKET_KEY_WINDOW`] - 1 older ones are kept to decrypt.
    pub fn rotate(&self) -> Result<()> {
        let key = Key::generate()?;
        let mut keys = crate::sync::write(&self.keys);
        keys.insert(0, key);
        keys.truncate(1 + DEFAULT_TICKET_KEY_WINDOW);
        Ok(())
    }

    /// The keys as [`from_bytes`](Self::from_bytes) reads them: to write
    /// the file the other servers load. Secret: protect it.
    pub fn to_bytes(&self) -> Vec<u8> {
        crate::sync::read(&self.keys)
            .iter()
            .flat_map(|k| k.name.iter().chain(k.raw.iter()).copied())
            .collect()
    }

    /// A number for the configuration cache: equal for clones.
    pub(crate) fn identity(&self) -> usize {
        Arc::as_ptr(&self.keys) as usize
    }
}

fn parse(bytes: &[u8], label: &str) -> Result<Vec<Key>> {
    if bytes.is_empty() || bytes.len() % TICKET_KEY_LEN != 0 {
        return Err(Error::credentials(
            label,
            format!(
                "{} bytes: ticket keys are {TICKET_KEY_LEN} bytes each (a 16-byte name, then a \
                 32-byte key), the current one first; `openssl rand 48` makes one",
                bytes.len()
            ),
        ));
    }
    bytes
        .chunks(TICKET_KEY_LEN)
        .map(|c| Key::from_bytes(c).ok_or_else(|| Error::credentials(label, "unusable key")))
        .collect()
}

/// The rustls ticketer of one server configuration on shared keys:
/// `name || nonce || AES-256-GCM(state)`, with the key's name and the
/// configuration's client-certificate policy as associated data. rustls
/// restores a resumed session's client certificate from the ticket without
/// checking it again, so a ticket must open only under the policy that
/// admitted its client: under another one (no client authentication,
/// other authorities or CRLs) it fails to open and the client gets a full
/// handshake.
#[derive(Debug)]
pub(crate) struct Ticketer {
    keys: TicketKeys,
    /// The SHA-256 of the client-certificate policy in force.
    policy: [u8; 32],
}

impl Ticketer {
    pub(crate) fn new(keys: TicketKeys, policy: [u8; 32]) -> Ticketer {
        Ticketer { keys, policy }
    }

    /// The associated data: the key's name, then the policy.
    fn aad(&self, name: &[u8; 16]) -> Aad<[u8; 48]> {
        let mut aad = [0u8; 48];
        aad[..16].copy_from_slice(name);
        aad[16..].copy_from_slice(&self.policy);
        Aad::from(aad)
    }
}

impl rustls::server::ProducesTickets for Ticketer {
    fn enabled(&self) -> bool {
        true
    }

    fn lifetime(&self) -> u32 {
        TICKET_LIFETIME
    }

    fn encrypt(&self, plain: &[u8]) -> Option<Vec<u8>> {
        let keys = crate::sync::read(&self.keys.keys);
        let key = keys.first()?;
        let mut nonce = [0u8; NONCE_LEN];
        SystemRandom::new().fill(&mut nonce).ok()?;
        let mut sealed = plain.to_vec();
        key.aead
            .seal_in_place_append_tag(
                Nonce::assume_unique_for_key(nonce),
                self.aad(&key.name),
                &mut sealed,
            )
            .ok()?;
        let mut out = Vec::with_capacity(16 + NONCE_LEN + sealed.len());
        out.extend_from_slice(&key.name);
        out.extend_from_slice(&nonce);
        out.extend_from_slice(&sealed);
        Some(out)
    }

    fn decrypt(&self, cipher: &[u8]) -> Option<Vec<u8>> {
        let name = cipher.get(..16)?;
        let nonce: [u8; NONCE_LEN] = cipher.get(16..16 + NONCE_LEN)?.try_into().ok()?;
        let sealed = cipher.get(16 + NONCE_LEN..)?;
        let keys = crate::sync::read(&self.keys.keys);
        let key = keys.iter().find(|k| k.name == name)?;
        let mut buf = sealed.to_vec();
        let plain = key
            .aead
            .open_in_place(
                Nonce::assume_unique_for_key(nonce),
                self.aad(&key.name),
                &mut buf,
            )
            .ok()?;
        Some(plain.to_vec())
    }
}

#[cfg(test)]
mod tests {
    use rustls::server::ProducesTickets;

    use super::*;

    const POLICY: [u8; 32] = [7; 32];

    #[test]
    fn a_ticket_opens_only_under_the_policy_it_was_made_under() {
        let keys = TicketKeys::generate().expect("keys");
        let sealed = Ticketer::new(keys.clone(), POLICY)
            .encrypt(b"state")
            .expect("seal");
        let same = Ticketer::new(keys.clone(), POLICY);
        assert_eq!(same.decrypt(&sealed).as_deref(), Some(&b"state"[..]));
        let mut other = POLICY;
        other[31] ^= 1;
        assert_eq!(Ticketer::new(keys, other).decrypt(&sealed), None);
    }

    #[test]
    fn tickets_open_under_any_key_of_the_window_only() {
        let keys = TicketKeys::generate().expect("keys");
        let t = Ticketer::new(keys.clone(), POLICY);
        let first = t.encrypt(b"session state").expect("seal");
        assert_eq!(t.decrypt(&first).as_deref(), Some(&b"session state"[..]));
        for _ in 0..DEFAULT_TICKET_KEY_WINDOW {
            keys.rotate().expect("rotate");
            assert!(t.decrypt(&first).is_some(), "still in the window");
        }
        keys.rotate().expect("rotate");
        assert_eq!(t.decrypt(&first), None, "its key left the window");
        let mut forged = t.encrypt(b"x").expect("seal");
        let last = forged.len() - 1;
        forged[last] ^= 1;
        assert_eq!(t.decrypt(&forged), None);
        assert_eq!(t.decrypt(b"short"), None);
        assert_eq!(t.decrypt(&[]), None);
    }

    #[test]
    fn keys_round_trip_through_bytes_and_bad_bytes_say_why() {
        let keys = TicketKeys::generate().expect("keys");
        keys.rotate().expect("rotate");
        let bytes = keys.to_bytes();
        assert_eq!(bytes.len(), 2 * TICKET_KEY_LEN);
        let other = Ticketer::new(TicketKeys::from_bytes(&bytes).expect("parse"), POLICY);
        let sealed = Ticketer::new(keys.clone(), POLICY)
            .encrypt(b"hi")
            .expect("seal");
        assert_eq!(other.decrypt(&sealed).as_deref(), Some(&b"hi"[..]));
        let e = TicketKeys::from_bytes(&[0u8; 47]).expect_err("short");
        assert!(e.to_string().contains("48 bytes each"), "{e}");
        assert!(keys.load_bytes(&[]).is_err());
        assert_eq!(keys.to_bytes(), bytes, "a failed load changes nothing");
        assert!(!format!("{keys:?}").contains(&format!("{:?}", &bytes[..4])));
    }
}
