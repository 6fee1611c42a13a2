use super::*;
use crate::acme::cache::Cache;
use crate::acme::http::{acme_error, parse_retry_after};
use crate::error::AcmeErrorKind;

/// A directory URL on a loopback port nothing listens on (bound on port
/// 0, then closed): no CA answers.
fn no_ca() -> String {
    let port = std::net::TcpListener::bind("127.0.0.1:0")
        .and_then(|l| l.local_addr())
        .expect("a loopback port")
        .port();
    format!("https://127.0.0.1:{port}/d")
}

/// A cache directory of the test's own, empty.
fn temp_dir(tag: &str) -> std::path::PathBuf {
    let dir = std::env::temp_dir().join(format!("securenet-acme-{tag}-{}", std::process::id()));
    let _ = std::fs::remove_dir_all(&dir);
    dir
}

/// A manager's state for a.example in `dir`, at the CA `directory`,
/// without its thread.
fn test_core(dir: &std::path::Path, directory: &str) -> Core {
    let domains = vec!["a.example".to_owned()];
    let options = AcmeOptions::new(&["a.example"], dir).directory(directory);
    Core {
        cache: Cache::open(dir, &domains, &options.directory).expect("open"),
        options,
        domains,
        roots: None,
        mac_key: None,
        current: RwLock::new(None),
        stopped: Mutex::new(false),
        wake: Condvar::new(),
    }
}

/// A certificate for a.example valid from `from` to `until` days from
/// now, with its key, as the cache keeps it.
fn certificate(from: i64, until: i64) -> String {
    let mut params = rcgen::CertificateParams::new(vec!["a.example".to_owned()]).expect("p");
    let now = time::OffsetDateTime::now_utc();
    params.not_before = now + time::Duration::days(from);
    params.not_after = now + time::Duration::days(until);
    let key = rcgen::KeyPair::generate().expect("key");
    let cert = params.self_signed(&key).expect("cert");
    format!("{}{}", key.serialize_pem(), cert.pem())
}

/// Serves `pem` as the manager does after an order.
fn serve(core: &Core, pem: &str) {
    let path = core.cache.certificate_path();
    let new = core.check(pem.as_bytes(), &path).expect("check");
    core.serve(new.expect("covers"));
}

/// The SHA-256 of the file the served certificate came from.
fn served(core: &Core) -> Option<[u8; 32]> {
    sync::read(&core.current).as_ref().map(|i| i.file)
}

#[test]
fn retries_back_off_and_follow_the_ca() {
    let now = SystemTime::UNIX_EPOCH + Duration::from_secs(1_000_000);
    let e = Error::Closed;
    assert_eq!(next_try(1, &e, now), now + FIRST_RETRY);
    assert_eq!(next_try(2, &e, now), now + 2 * FIRST_RETRY);
    assert_eq!(next_try(u32::MAX, &e, now), now + LAST_RETRY);
    let limited = acme_error(
        AcmeErrorKind::RateLimited,
        "x".into(),
        None,
        Some(now + Duration::from_secs(7200)),
    );
    assert_eq!(next_try(1, &limited, now), now + Duration::from_secs(7200));
}

#[test]
fn mac_keys_in_either_base64url_form() {
    assert_eq!(decode_mac_key("AQID").as_deref(), Some(&[1u8, 2, 3][..]));
    assert_eq!(decode_mac_key("AQI=").as_deref(), Some(&[1u8, 2][..]));
    assert_eq!(decode_mac_key("AQI").as_deref(), Some(&[1u8, 2][..]));
    assert!(decode_mac_key("not base64!").is_none());
    assert!(decode_mac_key("").is_none());
}

#[test]
fn a_ca_date_far_off_does_not_stop_renewals() {
    let now = SystemTime::now();
    let far = parse_retry_after("Fri, 31 Dec 9999 23:59:59 GMT", now);
    let e = acme_error(AcmeErrorKind::RateLimited, "x".into(), None, far);
    let at = next_try(1, &e, now);
    assert!(at <= now + MAX_RETRY_AFTER, "{at:?}");
}

#[test]
fn the_cache_file_never_takes_the_served_certificate_back() {
    let dir = temp_dir("rollback");
    let core = test_core(&dir, &no_ca());
    // Two certificates for the name, the second ending later.
    let (old, newer) = (certificate(0, 10), certificate(0, 20));
    core.cache
        .write_certificate(old.as_bytes())
        .expect("old file");
    core.pick_up_cache();
    assert_eq!(served(&core), Some(sha256(old.as_bytes())));
    // A renewal served whose write failed: the old file stays.
    serve(&core, &newer);
    core.pick_up_cache(); // the manager's next loop
    assert_eq!(
        served(&core),
        Some(sha256(newer.as_bytes())),
        "the old one came back"
    );
    // A newer file (another server's renewal) is picked up.
    serve(&core, &old);
    core.cache
        .write_certificate(newer.as_bytes())
        .expect("write");
    core.pick_up_cache();
    assert_eq!(
        served(&core),
        Some(sha256(newer.as_bytes())),
        "another's renewal"
    );
    let _ = std::fs::remove_dir_all(&dir);
}

#[test]
fn the_fleet_backs_off_together_through_the_cache_directory() {
    let dir = temp_dir("fleet");
    let directory = no_ca();
    let (one, two) = (test_core(&dir, &directory), test_core(&dir, &directory));
    let (mut client, mut key) = (None, None);
    // The first server fails (no CA): the fleet is told when to retry.
    one.order_under_lock(&mut client, &mut key)
        .expect("a retry time");
    let (_, failures) = one.cache.read_retry().expect("written");
    assert_eq!(failures, 1);
    // The second server, with no failure of its own, waits as told and
    // asks no CA (the count stays).
    let told = two.order_under_lock(&mut None, &mut None).expect("waits");
    assert!(told > SystemTime::now());
    assert_eq!(two.cache.read_retry().map(|(_, n)| n), Some(1));
    let _ = std::fs::remove_dir_all(&dir);
}

#[test]
fn a_renewal_with_a_shorter_life_is_picked_up_by_the_fleet() {
    let dir = temp_dir("short");
    let core = test_core(&dir, &no_ca());
    // Served: issued 5 days ago for 90 days. Another server renewed
    // early (the CA asked, ARI) and got 45 days from today.
    let (old, renewed) = (certificate(-5, 85), certificate(0, 45));
    serve(&core, &old);
    core.cache
        .write_certificate(renewed.as_bytes())
        .expect("write");
    core.pick_up_cache();
    assert_eq!(
        served(&core),
        Some(sha256(renewed.as_bytes())),
        "still the replaced certificate"
    );
    let _ = std::fs::remove_dir_all(&dir);
}

#[test]
fn a_retry_time_from_a_clock_years_ahead_holds_a_week_at_most() {
    let dir = temp_dir("skew");
    let core = test_core(&dir, &no_ca());
    let ten_years = SystemTime::now() + Duration::from_secs(10 * 365 * 86_400);
    core.cache.write_retry(ten_years, 1).expect("retry");
    let at = core.order_under_lock(&mut None, &mut None).expect("waits");
    assert!(at <= SystemTime::now() + MAX_RETRY_AFTER, "{at:?}");
    let _ = std::fs::remove_dir_all(&dir);
}
