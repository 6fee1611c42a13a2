//! Times as people read them in messages: `2024-02-29 12:34:56 UTC`.

use std::time::SystemTime;

use time::OffsetDateTime;

/// Formats a time as `YYYY-MM-DD HH:MM:SS UTC` for messages (a time the
/// calendar cannot hold, beyond the year 9999, says so).
pub(crate) fn format_time(t: SystemTime) -> String {
    let secs = match t.duration_since(SystemTime::UNIX_EPOCH) {
        Ok(d) => i64::try_from(d.as_secs()).unwrap_or(i64::MAX),
        Err(e) => i64::try_from(e.duration().as_secs()).map_or(i64::MIN, |s| -s),
    };
    match OffsetDateTime::from_unix_timestamp(secs) {
        Ok(d) => format!(
            "{:04}-{:02}-{:02} {:02}:{:02}:{:02} UTC",
            d.year(),
            u8::from(d.month()),
            d.day(),
            d.hour(),
            d.minute(),
            d.second()
        ),
        Err(_) => format!("{secs} seconds from 1970 (beyond the calendar)"),
    }
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
    use std::time::{Duration, UNIX_EPOCH};

    #[test]
    fn format_time_is_utc_calendar() {
        assert_eq!(format_time(UNIX_EPOCH), "1970-01-01 00:00:00 UTC");
        let t = UNIX_EPOCH + Duration::from_secs(1_709_210_096);
        assert_eq!(format_time(t), "2024-02-29 12:34:56 UTC");
    }
}
