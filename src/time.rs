//! Times as people read them in messages: `2024-02-29 12:34:56 UTC`.

use std::time::SystemTime;

use rustls::pki_types::UnixTime;
use time::OffsetDateTime;

/// A webpki or rustls time as a `SystemTime`.
pub(crate) fn unix_to_system(t: UnixTime) -> SystemTime {
    SystemTime::UNIX_EPOCH + std::time::Duration::from_secs(t.as_secs())
}

/// A `SystemTime` as webpki's `UnixTime` (a time before 1970, which
/// webpki cannot hold, as 1970).
pub(crate) fn system_to_unix(t: SystemTime) -> UnixTime {
    UnixTime::since_unix_epoch(t.duration_since(SystemTime::UNIX_EPOCH).unwrap_or_default())
}

/// Seconds from 1970 (negative before), saturating at the ends of `i64`.
pub(crate) fn unix_secs(t: SystemTime) -> i64 {
    match t.duration_since(SystemTime::UNIX_EPOCH) {
        Ok(d) => i64::try_from(d.as_secs()).unwrap_or(i64::MAX),
        Err(e) => i64::try_from(e.duration().as_secs()).map_or(i64::MIN, |s| -s),
    }
}

/// The calendar date of `t` in UTC, or the seconds from 1970 if the
/// calendar cannot hold it (beyond the year 9999).
fn civil(t: SystemTime) -> std::result::Result<OffsetDateTime, i64> {
    let secs = unix_secs(t);
    OffsetDateTime::from_unix_timestamp(secs).map_err(|_| secs)
}

/// Formats `t` with `sep` between date and time and `zone` after it.
fn format_with(t: SystemTime, sep: &str, zone: &str) -> String {
    match civil(t) {
        Ok(d) => format!(
            "{:04}-{:02}-{:02}{sep}{:02}:{:02}:{:02}{zone}",
            d.year(),
            u8::from(d.month()),
            d.day(),
            d.hour(),
            d.minute(),
            d.second()
        ),
        Err(secs) => format!("{secs} seconds from 1970 (beyond the calendar)"),
    }
}

/// Formats a time as `YYYY-MM-DD HH:MM:SS UTC` for messages.
pub(crate) fn format_time(t: SystemTime) -> String {
    format_with(t, " ", " UTC")
}

/// Formats a time as RFC 3339 in UTC: `2024-02-29T12:34:56Z`.
pub(crate) fn format_rfc3339(t: SystemTime) -> String {
    format_with(t, "T", "Z")
}

/// `t` as an HTTP date (RFC 9110 section 5.6.7, IMF-fixdate):
/// `Sun, 06 Nov 1994 08:49:37 GMT`; `None` outside the years 1970 to 9999
/// (a clock that wrong sends no date: RFC 9110 section 6.6.1).
pub(crate) fn format_http_date(t: SystemTime) -> Option<String> {
    use time::{Month, Weekday};
    let d = civil(t)
        .ok()
        .filter(|d| (1970..=9999).contains(&d.year()))?;
    let day = match d.weekday() {
        Weekday::Monday => "Mon",
        Weekday::Tuesday => "Tue",
        Weekday::Wednesday => "Wed",
        Weekday::Thursday => "Thu",
        Weekday::Friday => "Fri",
        Weekday::Saturday => "Sat",
        Weekday::Sunday => "Sun",
    };
    let month = match d.month() {
        Month::January => "Jan",
        Month::February => "Feb",
        Month::March => "Mar",
        Month::April => "Apr",
        Month::May => "May",
        Month::June => "Jun",
        Month::July => "Jul",
        Month::August => "Aug",
        Month::September => "Sep",
        Month::October => "Oct",
        Month::November => "Nov",
        Month::December => "Dec",
    };
    Some(format!(
        "{day}, {:02} {month} {:04} {:02}:{:02}:{:02} GMT",
        d.day(),
        d.year(),
        d.hour(),
        d.minute(),
        d.second()
    ))
}

/// The `Date` field of an HTTP answer dated `now` (`Date: ...\r\n`),
/// unless one of the answer's header `names` is already `Date` (RFC 9110
/// section 6.6.1: an origin server with a clock sends one).
pub(crate) fn date_field<'a>(
    mut names: impl Iterator<Item = &'a str>,
    now: SystemTime,
) -> Option<String> {
    if names.any(|name| name.eq_ignore_ascii_case("date")) {
        return None;
    }
    format_http_date(now).map(|date| format!("Date: {date}\r\n"))
}

/// Today's year and month (1-12), in UTC.
#[cfg(feature = "testing")]
pub(crate) fn year_and_month() -> (i32, u8) {
    let now = OffsetDateTime::now_utc();
    (now.year(), u8::from(now.month()))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn http_dates_are_imf_fixdate_within_the_calendar() {
        // RFC 9110 section 5.6.7's example.
        let example = UNIX_EPOCH + Duration::from_secs(784_111_777);
        assert_eq!(
            format_http_date(example).as_deref(),
            Some("Sun, 06 Nov 1994 08:49:37 GMT")
        );
        let leap = UNIX_EPOCH + Duration::from_secs(951_782_400);
        assert_eq!(
            format_http_date(leap).as_deref(),
            Some("Tue, 29 Feb 2000 00:00:00 GMT")
        );
        assert_eq!(format_http_date(UNIX_EPOCH - Duration::from_secs(1)), None);
        let far = UNIX_EPOCH + Duration::from_secs(300_000_000_000);
        assert_eq!(format_http_date(far), None);
    }

    #[test]
    fn seconds_from_1970_saturate_and_go_below() {
        let epoch = SystemTime::UNIX_EPOCH;
        assert_eq!(unix_secs(epoch + Duration::from_secs(5)), 5);
        assert_eq!(unix_secs(epoch - Duration::from_secs(5)), -5);
        assert_eq!(system_to_unix(epoch - Duration::from_secs(5)).as_secs(), 0);
        assert_eq!(system_to_unix(epoch + Duration::from_secs(7)).as_secs(), 7);
    }
    use std::time::{Duration, UNIX_EPOCH};

    #[test]
    fn format_time_is_utc_calendar() {
        assert_eq!(format_time(UNIX_EPOCH), "1970-01-01 00:00:00 UTC");
        let t = UNIX_EPOCH + Duration::from_secs(1_709_210_096);
        assert_eq!(format_time(t), "2024-02-29 12:34:56 UTC");
        assert_eq!(format_rfc3339(t), "2024-02-29T12:34:56Z");
    }
}
