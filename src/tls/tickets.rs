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
    /// (`openssl rand 48` makes one).
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

    /// A time for the tests: seconds since the UNIX epoch.
    const NOW: u64 = 1_750_000_000;

    #[test]
    fn a_ticket_opens_only_within_its_lifetime() {
        let t = Ticketer::new(TicketKeys::generate().expect("keys"), POLICY);
        let lifetime = u64::from(TICKET_LIFETIME);
        let at = |issued: u64| t.seal_at(b"state", issued).expect("seal");
        assert_eq!(t.open_at(&at(NOW), NOW).as_deref(), Some(&b"state"[..]));
        assert!(t.open_at(&at(NOW - lifetime), NOW).is_some(), "12 h old");
        assert_eq!(t.open_at(&at(NOW - lifetime - 1), NOW), None, "12 h 1 s");
        assert_eq!(t.open_at(&at(0), NOW), None, "issued at the epoch");
        // Another server's clock a little ahead: within the skew.
        assert!(t.open_at(&at(NOW + MAX_CLOCK_SKEW), NOW).is_some());
        assert_eq!(t.open_at(&at(NOW + 600), NOW), None, "10 min ahead");
        assert_eq!(t.open_at(&at(u64::MAX), NOW), None);
        // The real clock, both ways.
        let fresh = t.encrypt(b"state").expect("seal");
        assert_eq!(t.decrypt(&fresh).as_deref(), Some(&b"state"[..]));
    }

    #[test]
    fn the_issue_time_is_sealed_with_the_state() {
        let t = Ticketer::new(TicketKeys::generate().expect("keys"), POLICY);
        let old = t
            .seal_at(b"state", NOW - u64::from(TICKET_LIFETIME) - 60)
            .expect("seal");
        // The time is the first 8 bytes of the sealed text: whatever a
        // bit flipped there (making the ticket younger, say), it fails to
        // open.
        for byte in 16 + NONCE_LEN..16 + NONCE_LEN + 8 {
            for bit in 0..8 {
                let mut forged = old.clone();
                forged[byte] ^= 1 << bit;
                assert_eq!(t.open_at(&forged, NOW), None, "byte {byte} bit {bit}");
            }
        }
        // A ticket sealed the way tickets were before they carried a time
        // (the same key, name and policy) does not open either.
        let keys = crate::sync::read(&t.keys.keys);
        let key = keys.first().expect("a key");
        let mut aad = [0u8; 48];
        aad[..16].copy_from_slice(&key.name);
        aad[16..].copy_from_slice(&POLICY);
        let mut sealed = [&NOW.to_be_bytes()[..], b"state"].concat();
        let (nonce, tag) = key.cipher.seal(&aad, &mut sealed).expect("seal");
        let legacy = [&key.name[..], &nonce, &sealed, &tag].concat();
        assert_eq!(t.open_at(&legacy, NOW), None);
    }

    #[test]
    fn a_key_stops_issuing_tickets_at_its_limit_until_a_rotation() {
        let keys = TicketKeys::with_limit(3);
        let t = Ticketer::new(keys.clone(), POLICY);
        let issued: Vec<Vec<u8>> = (0..3).map(|_| t.encrypt(b"s").expect("seal")).collect();
        assert_eq!(t.encrypt(b"s"), None, "the key has encrypted its limit");
        assert_eq!(t.encrypt(b"s"), None, "and stays spent");
        let other = Ticketer::new(keys.clone(), [0; 32]);
        assert_eq!(
            other.encrypt(b"s"),
            None,
            "counted per key, not per ticketer"
        );
        for ticket in &issued {
            assert!(t.decrypt(ticket).is_some(), "what it made still opens");
        }
        keys.rotate().expect("rotate");
        let fresh = t.encrypt(b"s").expect("a new key issues again");
        assert!(t.decrypt(&fresh).is_some());
        // Reloading the same key bytes keeps the count of each key.
        keys.load_bytes(&keys.to_bytes()).expect("reload");
        for _ in 0..2 {
            t.encrypt(b"s").expect("within the limit");
        }
        assert_eq!(t.encrypt(b"s"), None, "the count survived the reload");
    }

    #[test]
    fn the_count_is_the_loaded_keys_and_its_clones() {
        let bytes = TicketKeys::generate().expect("keys").to_bytes();
        let load = || TicketKeys {
            limit: 2,
            ..TicketKeys::from_bytes(&bytes).expect("keys")
        };
        let seal = |k: &TicketKeys| Ticketer::new(k.clone(), POLICY).encrypt(b"s").is_some();
        let (a, b) = (load(), load());
        assert!(seal(&a) && seal(&a.clone()));
        assert!(!seal(&a), "clones share the count");
        assert!(seal(&b), "another load of the same bytes counts apart");
        a.load_bytes(&bytes).expect("load");
        assert!(!seal(&a), "a key still held keeps its count");
        a.load_bytes(&TicketKeys::generate().expect("keys").to_bytes())
            .expect("load");
        a.load_bytes(&bytes).expect("load");
        assert!(seal(&a), "a key that left starts from zero");
    }

    #[test]
    fn a_new_key_file_becomes_current_and_the_keys_before_still_open() {
        let keys = TicketKeys::generate().expect("keys");
        let t = Ticketer::new(keys.clone(), POLICY);
        let before = t.encrypt(b"old").expect("seal");
        let next = TicketKeys::generate().expect("keys").to_bytes();
        assert_eq!(keys.rotate_to(&next, "file").expect("rotate"), 1);
        assert!(t.decrypt(&before).is_some(), "the key before still opens");
        let after = t.encrypt(b"new").expect("seal");
        let only_new = Ticketer::new(TicketKeys::from_bytes(&next).expect("keys"), POLICY);
        assert!(
            only_new.decrypt(&after).is_some(),
            "sealed with the file's key"
        );
        assert!(only_new.decrypt(&before).is_none());
        // A file cut short (half a key, or nothing) changes nothing.
        let held = keys.to_bytes();
        for cut in [0, 30, TICKET_KEY_LEN - 1] {
            let e = keys.rotate_to(&next[..cut], "the file");
            assert!(e.is_err_and(|e| e.to_string().starts_with("the file: ")));
        }
        assert_eq!(keys.to_bytes(), held);
        // The same file again: nothing is held twice.
        assert_eq!(keys.rotate_to(&next, "file").expect("again"), 1);
        assert_eq!(keys.to_bytes(), held);
        // Rotation after rotation: the file's keys and the window.
        for _ in 0..4 {
            let fresh = TicketKeys::generate().expect("keys").to_bytes();
            keys.rotate_to(&fresh, "file").expect("rotate");
        }
        assert_eq!(
            keys.to_bytes().len(),
            (1 + DEFAULT_TICKET_KEY_WINDOW) * TICKET_KEY_LEN
        );
        assert_eq!(t.decrypt(&before), None, "its key left the window");
    }

    #[test]
    fn a_key_the_new_file_holds_keeps_its_count() {
        let keys = TicketKeys::with_limit(1);
        let t = Ticketer::new(keys.clone(), POLICY);
        t.encrypt(b"s").expect("seal");
        let bytes = keys.to_bytes();
        assert_eq!(keys.rotate_to(&bytes, "file").expect("rotate"), 0);
        assert_eq!(t.encrypt(b"s"), None, "the count survived");
    }

    #[test]
    fn key_bytes_are_wiped_on_drop() {
        fn wiped_on_drop<T: zeroize::ZeroizeOnDrop>() {}
        wiped_on_drop::<Key>();
        let mut key = Key::generate().expect("key");
        assert_ne!(*key.raw, [0; 32]);
        zeroize::Zeroize::zeroize(&mut key);
        assert_eq!(*key.raw, [0; 32], "what Drop runs wipes the key");
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
