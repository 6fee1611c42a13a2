//! [`TicketKeys`]: session ticket keys shared by a fleet of servers, so a
//! session made on one resumes on any, with rotation (a current key that
//! encrypts, previous ones that still decrypt); and the rustls ticketer
//! built on them (AES-256-GCM from the crypto provider, see
//! `crypto::TicketCipher`).

use std::fmt;
use std::path::Path;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, RwLock};
use std::time::{SystemTime, UNIX_EPOCH};

use zeroize::{Zeroize, ZeroizeOnDrop, Zeroizing};

use crate::crypto::{TicketCipher, fill_random};

const NONCE_LEN: usize = TicketCipher::NONCE_LEN;
use crate::error::{Error, Result};
use crate::tls::pem::read_file;

/// The bytes of one key: a 16-byte name, then a 32-byte AES-256 key.
pub const TICKET_KEY_LEN: usize = 48;
/// How many previous keys [`TicketKeys::rotate`] keeps for decryption.
pub const DEFAULT_TICKET_KEY_WINDOW: usize = 2;
/// The lifetime of a ticket, in seconds (12 hours): announced to clients,
/// and enforced by the server, which opens no ticket issued longer ago
/// (the issue time is sealed inside each ticket).
const TICKET_LIFETIME: u32 = 12 * 3600;
/// How far in the future a ticket's issue time may be, in seconds (5
/// minutes): the clocks of a fleet's servers differ a little.
const MAX_CLOCK_SKEW: u64 = 5 * 60;
/// The format of a ticket's sealed text, bound as associated data: 2 is
/// the issue time (seconds since the UNIX epoch, u64 big-endian), then
/// rustls's state. Tickets of the earlier format (1: the state alone,
/// without this byte) fail to open: a full handshake.
const TICKET_FORMAT: u8 = 2;
/// The bytes of the issue time.
const TIME_LEN: usize = 8;
/// How many session tickets one loaded key encrypts: 2^31.
///
/// Tickets are sealed with AES-256-GCM under random 96-bit nonces, and NIST
/// SP 800-38D (section 8.3) allows one key at most 2^32 such encryptions:
/// beyond, two nonces may repeat, which reveals the key's authentication
/// subkey and lets tickets be forged. Half of that bound keeps one server
/// well inside it. A key that reaches it seals no more tickets (clients do
/// full handshakes; a warning is logged once) until
/// [`TicketKeys::rotate`] or [`TicketKeys::load_bytes`] brings a new one.
/// The count belongs to the key as one [`TicketKeys`] loaded it, shared by
/// that `TicketKeys`' clones (every listener given them) and kept by
/// `load_bytes` for a key it still holds. Nothing else shares it: two
/// loads of the same bytes or file (`from_bytes`, `from_file`) count
/// separately, even in one process, and a key that left (by `rotate` or a
/// `load_bytes` without it) starts from zero if loaded again. So load the
/// file once per process and clone the `TicketKeys`; servers of a fleet
/// count separately, so rotate often enough that all of them together
/// stay under 2^32 tickets per key (see [`TicketKeys`]).
pub const MAX_TICKETS_PER_KEY: u64 = 1 << 31;

/// The most keys one load takes (a current key and previous ones).
const MAX_TICKET_KEYS: usize = 16;

struct Key {
    name: [u8; 16],
    /// Boxed, so that moving a key (a rotation shifts the list) leaves no
    /// copy of its bytes behind: the one copy is wiped on drop.
    raw: Box<[u8; 32]>,
    cipher: TicketCipher,
    /// How many tickets it has been asked to encrypt since it was loaded
    /// (see [`MAX_TICKETS_PER_KEY`]).
    used: AtomicU64,
}

impl Key {
    fn from_bytes(bytes: &[u8]) -> Option<Key> {
        let name: [u8; 16] = bytes.get(..16)?.try_into().ok()?;
        let mut key = Key {
            name,
            raw: Box::new([0; 32]),
            cipher: TicketCipher::new(bytes.get(16..48)?)?,
            used: AtomicU64::new(0),
        };
        key.raw.copy_from_slice(bytes.get(16..48)?);
        Some(key)
    }

    /// Counts one more ticket; `false` once the key has encrypted `limit`
    /// (said once, in the log).
    fn take_one(&self, limit: u64) -> bool {
        let used = self.used.fetch_add(1, Ordering::Relaxed);
        if used == limit {
            log::warn!(
                "securenet: a session ticket key has encrypted {limit} tickets, the most one \
                 AES-GCM key may with random nonces: no more tickets (clients do full \
                 handshakes) until TicketKeys::rotate or load_bytes brings a new key"
            );
        }
        used < limit
    }

    fn generate() -> Result<Key> {
        let mut bytes = Zeroizing::new([0u8; TICKET_KEY_LEN]);
        fill_random(&mut *bytes).map_err(|()| {
            Error::credentials("ticket keys", "the system's random number generator failed")
        })?;
        Key::from_bytes(&*bytes)
            .ok_or_else(|| Error::credentials("ticket keys", "cannot make an AES-256 key"))
    }
}

/// The key bytes are wiped when the key goes. aws-lc wipes its own copy
/// (the AES key schedule) when it frees it; ring keeps the schedule inside
/// its key value and does not wipe it (nor can securenet, without unsafe
/// code): with the `ring` provider, a key that rotated out may stay in
/// freed memory until it is reused.
impl Zeroize for Key {
    fn zeroize(&mut self) {
        (*self.raw).zeroize();
    }
}

impl Drop for Key {
    fn drop(&mut self) {
        self.zeroize();
    }
}

impl ZeroizeOnDrop for Key {}

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
/// still resumes for as long as its ticket lives (12 hours at most, see
/// below), and a revocation counts from the listener's `set_context` with
/// the new CRL (a new policy).
///
/// **Lifetime**: a ticket lives 12 hours from when it was issued, for TLS
/// 1.2 and 1.3 alike; the server seals the issue time inside each ticket
/// and answers an older one, or one issued more than 5 minutes in its
/// future (the servers' clocks should agree to that), with a full
/// handshake. Its key leaving the window ends it sooner. Tickets of
/// securenet versions before this check do not open: their clients do one
/// full handshake.
///
/// **Rotation**: one key may seal at most 2^32 tickets across the whole
/// fleet (AES-GCM with random nonces); a `TicketKeys` and its clones stop
/// using a key after [`MAX_TICKETS_PER_KEY`] (2^31) until the next
/// rotation. The count is per loaded key, not per process: load the key
/// file once and clone the `TicketKeys` for every listener, as two loads
/// count apart, and do not load a retired key again (its count starts
/// over). A TLS 1.3 handshake issues two tickets, a TLS 1.2 one at most
/// one. Rotating daily
/// keeps a fleet under the bound up to about 24,000 TLS 1.3 handshakes a
/// second in total; above that, rotate hourly (about 590,000 a second).
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
    /// How many tickets one key may encrypt (counted per loaded key).
    limit: u64,
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
            limit: MAX_TICKETS_PER_KEY,
        })
    }

    /// Keys from bytes: one or more keys of [`TICKET_KEY_LEN`] (48) bytes
    /// each, a 16-byte name then a 32-byte key, the current one first
    /// (`openssl rand 48` makes one). Refused, as guessable or torn: a
    /// name or key whose bytes are all alike (the zeros of a file read
    /// while being written), two keys with one name, more than 16 keys.
    pub fn from_bytes(bytes: &[u8]) -> Result<TicketKeys> {
        Ok(TicketKeys {
            keys: Arc::new(RwLock::new(parse(bytes, "ticket keys (bytes)")?)),
            limit: MAX_TICKETS_PER_KEY,
        })
    }

    /// [`from_bytes`](Self::from_bytes) from a file.
    pub fn from_file(path: impl AsRef<Path>) -> Result<TicketKeys> {
        let path = path.as_ref();
        TicketKeys::from_file_bytes(
            &Zeroizing::new(read_file(path)?),
            &path.display().to_string(),
        )
    }

    /// [`from_bytes`](Self::from_bytes) of what a file held: errors name
    /// `label`, the file.
    pub(crate) fn from_file_bytes(bytes: &[u8], label: &str) -> Result<TicketKeys> {
        Ok(TicketKeys {
            keys: Arc::new(RwLock::new(parse(bytes, label)?)),
            limit: MAX_TICKETS_PER_KEY,
        })
    }

    /// Makes the keys in `bytes` (a new key file, errors naming `label`)
    /// the keys in use, keeping to decrypt up to
    /// [`DEFAULT_TICKET_KEY_WINDOW`] of the keys in use before that the
    /// file does not hold, the newest first: a fleet rotates by writing
    /// the new file on every server, and tickets issued before still
    /// resume. A key the file holds keeps its count of tickets. Malformed
    /// bytes change nothing. Returns how many earlier keys were kept.
    pub(crate) fn rotate_to(&self, bytes: &[u8], label: &str) -> Result<usize> {
        let mut fresh = parse(bytes, label)?;
        let mut keys = crate::sync::write(&self.keys);
        let mut kept = Vec::new();
        for old in keys.drain(..) {
            if let Some(same) = fresh
                .iter()
                .find(|k| k.name == old.name && k.raw == old.raw)
            {
                same.used
                    .store(old.used.load(Ordering::Relaxed), Ordering::Relaxed);
            } else if kept.len() < DEFAULT_TICKET_KEY_WINDOW {
                kept.push(old);
            }
            // Any other old key is dropped here, and wiped.
        }
        let count = kept.len();
        fresh.append(&mut kept);
        *keys = fresh;
        Ok(count)
    }

    /// Replaces every key with those in `bytes` (as
    /// [`from_bytes`](Self::from_bytes) reads them), for every listener
    /// using these keys: how a fleet rotates, each server loading the new
    /// file. Malformed bytes change nothing.
    pub fn load_bytes(&self, bytes: &[u8]) -> Result<()> {
        let keys = parse(bytes, "ticket keys (bytes)")?;
        let mut current = crate::sync::write(&self.keys);
        // A key loaded again keeps its count of tickets.
        for key in &keys {
            if let Some(old) = current
                .iter()
                .find(|k| k.name == key.name && k.raw == key.raw)
            {
                key.used
                    .store(old.used.load(Ordering::Relaxed), Ordering::Relaxed);
            }
        }
        *current = keys;
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
    /// the file the other servers load. Secret: protect it, and wipe it
    /// once written (`zeroize::Zeroizing` does); securenet wipes only its
    /// own copies.
    pub fn to_bytes(&self) -> Vec<u8> {
        let keys = crate::sync::read(&self.keys);
        // Sized once: a growing Vec would leave copies in what it frees.
        let mut out = Vec::with_capacity(keys.len() * TICKET_KEY_LEN);
        for k in keys.iter() {
            out.extend_from_slice(&k.name);
            out.extend_from_slice(&*k.raw);
        }
        out
    }

    /// Keys whose every key encrypts at most `limit` tickets.
    #[cfg(test)]
    fn with_limit(limit: u64) -> TicketKeys {
        TicketKeys {
            limit,
            ..TicketKeys::generate().expect("keys")
        }
    }

    /// A number for the configuration cache: equal for clones.
    pub(crate) fn identity(&self) -> usize {
        Arc::as_ptr(&self.keys) as usize
    }
}

fn parse(bytes: &[u8], label: &str) -> Result<Vec<Key>> {
    if bytes.len() > MAX_TICKET_KEYS * TICKET_KEY_LEN {
        return Err(Error::credentials(
            label,
            format!(
                "{} bytes: at most {MAX_TICKET_KEYS} ticket keys of {TICKET_KEY_LEN} bytes \
                 each are taken (the current one, then the previous ones)",
                bytes.len()
            ),
        ));
    }
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
    let chunks: Vec<&[u8]> = bytes.chunks(TICKET_KEY_LEN).collect();
    for (i, chunk) in chunks.iter().enumerate() {
        let (name, key) = chunk.split_at(16);
        // Bytes all alike are no random key: zeros from a file pre-sized
        // and read while being written, or left by a crash. A key anyone
        // can guess would let them read and forge tickets.
        let alike = |b: &[u8]| b.iter().all(|x| *x == b[0]);
        if alike(name) || alike(key) {
            return Err(Error::credentials(
                label,
                format!(
                    "key {} is not random (its name or key bytes are all the same byte, as \
                     in a file read while being written): write the whole file elsewhere, \
                     then rename it into place; `openssl rand 48` makes a key",
                    i + 1
                ),
            ));
        }
        if chunks[..i].iter().any(|c| c[..16] == *name) {
            return Err(Error::credentials(
                label,
                format!(
                    "key {} has the name of an earlier key: each key needs a name of its own",
                    i + 1
                ),
            ));
        }
    }
    chunks
        .into_iter()
        .map(|c| Key::from_bytes(c).ok_or_else(|| Error::credentials(label, "unusable key")))
        .collect()
}

/// The rustls ticketer of one server configuration on shared keys:
/// `name || nonce || AES-256-GCM(issued || state)`, `issued` the issue time
/// in seconds since the UNIX epoch (u64 big-endian), with the key's name,
/// the configuration's client-certificate policy and [`TICKET_FORMAT`] as
/// associated data. A ticket older than [`TICKET_LIFETIME`] or from more
/// than [`MAX_CLOCK_SKEW`] in the future does not open. rustls
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

    /// The associated data: the key's name, the policy, the format.
    fn aad(&self, name: &[u8; 16]) -> [u8; 49] {
        let mut aad = [0u8; 49];
        aad[..16].copy_from_slice(name);
        aad[16..48].copy_from_slice(&self.policy);
        aad[48] = TICKET_FORMAT;
        aad
    }

    /// Seals `plain` in a ticket issued at `now` (seconds since the UNIX
    /// epoch).
    fn seal_at(&self, plain: &[u8], now: u64) -> Option<Vec<u8>> {
        let keys = crate::sync::read(&self.keys.keys);
        let key = keys.first()?;
        if !key.take_one(self.keys.limit) {
            return None;
        }
        // Sized once, sealed in place: no copy of the state is left behind.
        // The nonce (drawn as it is sealed) goes in its place after.
        let head = 16 + NONCE_LEN;
        let mut out = Vec::with_capacity(head + TIME_LEN + plain.len() + TicketCipher::TAG_LEN);
        out.extend_from_slice(&key.name);
        out.extend_from_slice(&[0; NONCE_LEN]);
        out.extend_from_slice(&now.to_be_bytes());
        out.extend_from_slice(plain);
        match key.cipher.seal(&self.aad(&key.name), &mut out[head..]) {
            Some((nonce, tag)) => {
                out[16..head].copy_from_slice(&nonce);
                out.extend_from_slice(&tag);
                Some(out)
            }
            None => {
                out.zeroize();
                None
            }
        }
    }

    /// The state in `cipher`, if it opens under a key of the window and
    /// this policy, and was issued no more than [`TICKET_LIFETIME`] before
    /// `now` nor more than [`MAX_CLOCK_SKEW`] after it.
    fn open_at(&self, cipher: &[u8], now: u64) -> Option<Vec<u8>> {
        let name = cipher.get(..16)?;
        let nonce: [u8; NONCE_LEN] = cipher.get(16..16 + NONCE_LEN)?.try_into().ok()?;
        let sealed = cipher.get(16 + NONCE_LEN..)?;
        let keys = crate::sync::read(&self.keys.keys);
        let key = keys.iter().find(|k| k.name == name)?;
        // Wiped when it goes: the state is copied out of it.
        let mut buf = Zeroizing::new(sealed.to_vec());
        let opened = key.cipher.open(nonce, &self.aad(&key.name), &mut buf)?;
        let (issued, state) = opened.split_first_chunk::<TIME_LEN>()?;
        let issued = u64::from_be_bytes(*issued);
        let fresh = match now.checked_sub(issued) {
            Some(age) => age <= u64::from(TICKET_LIFETIME),
            None => issued - now <= MAX_CLOCK_SKEW,
        };
        fresh.then(|| state.to_vec())
    }
}

/// Seconds since the UNIX epoch; `None` with a clock set before it.
fn unix_now() -> Option<u64> {
    Some(SystemTime::now().duration_since(UNIX_EPOCH).ok()?.as_secs())
}

impl rustls::server::ProducesTickets for Ticketer {
    fn enabled(&self) -> bool {
        true
    }

    fn lifetime(&self) -> u32 {
        TICKET_LIFETIME
    }

    fn encrypt(&self, plain: &[u8]) -> Option<Vec<u8>> {
        self.seal_at(plain, unix_now()?)
    }

    fn decrypt(&self, cipher: &[u8]) -> Option<Vec<u8>> {
        self.open_at(cipher, unix_now()?)
    }
}

#[cfg(test)]
mod tests;
