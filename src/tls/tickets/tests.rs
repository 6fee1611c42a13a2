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

#[test]
fn keys_anyone_could_guess_are_refused() {
    let zeros = [0u8; 48];
    let err = TicketKeys::from_bytes(&zeros).expect_err("all zero");
    assert!(err.to_string().contains("not random"), "{err}");
    let mut zero_key = [7u8; 48];
    zero_key[..16].copy_from_slice(b"a name of sorts!");
    zero_key[16..].fill(0);
    assert!(TicketKeys::from_bytes(&zero_key).is_err());
    // A good key, then a zeroed one (a torn read): the whole load fails,
    // nothing is taken.
    let good = TicketKeys::generate().expect("keys").to_bytes();
    let keys = TicketKeys::from_bytes(&good).expect("good");
    assert!(keys.load_bytes(&[&good[..], &zeros[..]].concat()).is_err());
    assert!(
        keys.rotate_to(&[&good[..], &zeros[..]].concat(), "file")
            .is_err()
    );
    assert_eq!(keys.to_bytes(), good);
}

#[test]
fn names_are_unique_and_files_are_bounded() {
    let a = TicketKeys::generate().expect("keys").to_bytes();
    let mut b = TicketKeys::generate().expect("keys").to_bytes();
    b[..16].copy_from_slice(&a[..16]);
    let err = TicketKeys::from_bytes(&[&a[..], &b[..]].concat()).expect_err("same name");
    assert!(err.to_string().contains("name of an earlier key"), "{err}");
    let many: Vec<u8> = (0..17)
        .flat_map(|_| TicketKeys::generate().expect("keys").to_bytes())
        .collect();
    let err = TicketKeys::from_bytes(&many).expect_err("17 keys");
    assert!(err.to_string().contains("at most 16"), "{err}");
}
