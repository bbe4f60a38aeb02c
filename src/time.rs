//! Civil dates from the system clock, without a date library.
//!
//! The server stores only coarse dates (the UTC day); exact times exist only inside
//! encrypted metadata. See SECURITY.md, "What the server keeps".

use std::time::{Duration, SystemTime, UNIX_EPOCH};

/// Seconds since the Unix epoch (0 if the clock is before 1970).
fn unix_seconds(at: SystemTime) -> u64 {
    at.duration_since(UNIX_EPOCH).map_or(0, |d| d.as_secs())
}

/// (year, month, day) for a count of days since 1970-01-01 (Howard Hinnant's algorithm).
fn civil_from_days(days: i64) -> (i64, u32, u32) {
    let z = days + 719_468;
    let era = z.div_euclid(146_097);
    let doe = z.rem_euclid(146_097);
    let yoe = (doe - doe / 1_460 + doe / 36_524 - doe / 146_096) / 365;
    let doy = doe - (365 * yoe + yoe / 4 - yoe / 100);
    let mp = (5 * doy + 2) / 153;
    let day = (doy - (153 * mp + 2) / 5 + 1) as u32;
    let month = if mp < 10 { mp + 3 } else { mp - 9 } as u32;
    let year = yoe + era * 400 + i64::from(month <= 2);
    (year, month, day)
}

/// Days since 1970-01-01 of a civil date (the inverse of `civil_from_days`).
fn days_from_civil(year: i64, month: u32, day: u32) -> i64 {
    let year = year - i64::from(month <= 2);
    let era = year.div_euclid(400);
    let yoe = year.rem_euclid(400);
    let mp = i64::from((month + 9) % 12);
    let doy = (153 * mp + 2) / 5 + i64::from(day) - 1;
    let doe = yoe * 365 + yoe / 4 - yoe / 100 + doy;
    era * 146_097 + doe - 719_468
}

/// The start of the UTC day `YYYY-MM-DD`; `None` for anything else or a day that
/// does not exist.
pub(crate) fn parse_day(text: &str) -> Option<SystemTime> {
    let bytes = text.as_bytes();
    if bytes.len() != 10 || bytes[4] != b'-' || bytes[7] != b'-' {
        return None;
    }
    let year: i64 = text[..4].parse().ok()?;
    let month: u32 = text[5..7].parse().ok()?;
    let day: u32 = text[8..].parse().ok()?;
    if !(1..=12).contains(&month) || day == 0 || year < 1970 {
        return None;
    }
    let days = days_from_civil(year, month, day);
    if civil_from_days(days) != (year, month, day) {
        return None;
    }
    Some(UNIX_EPOCH + Duration::from_secs(days as u64 * 86_400))
}

/// The UTC day `days` days before the day of `at`.
pub(crate) fn days_before(at: SystemTime, days: u32) -> String {
    day(at - Duration::from_secs(u64::from(days) * 86_400))
}

/// The UTC day of `at` as `YYYY-MM-DD`.
pub(crate) fn day(at: SystemTime) -> String {
    let (y, m, d) = civil_from_days((unix_seconds(at) / 86_400) as i64);
    format!("{y:04}-{m:02}-{d:02}")
}

/// The start (00:00 UTC) of the day that holds `at`: used as the mtime of stored
/// files so the filesystem does not keep exact upload times.
pub(crate) fn start_of_day(at: SystemTime) -> SystemTime {
    let secs = unix_seconds(at);
    UNIX_EPOCH + Duration::from_secs(secs - secs % 86_400)
}

/// `at` as an RFC 3339 UTC timestamp with second precision. Only ever written into
/// encrypted metadata.
pub(crate) fn rfc3339(at: SystemTime) -> String {
    let secs = unix_seconds(at);
    let (y, m, d) = civil_from_days((secs / 86_400) as i64);
    let rem = secs % 86_400;
    format!(
        "{y:04}-{m:02}-{d:02}T{:02}:{:02}:{:02}Z",
        rem / 3_600,
        rem % 3_600 / 60,
        rem % 60
    )
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn known_dates() {
        assert_eq!(day(UNIX_EPOCH), "1970-01-01");
        let t = UNIX_EPOCH + Duration::from_secs(1_709_251_199); // 2024-02-29 23:59:59
        assert_eq!(day(t), "2024-02-29");
        assert_eq!(rfc3339(t), "2024-02-29T23:59:59Z");
        assert_eq!(day(t + Duration::from_secs(1)), "2024-03-01");
        assert_eq!(
            start_of_day(t),
            UNIX_EPOCH + Duration::from_secs(1_709_251_199 - 86_399)
        );
        assert_eq!(parse_day("2024-02-29"), Some(start_of_day(t)));
        assert_eq!(parse_day("2023-02-29"), None);
        assert_eq!(parse_day("2024-13-01"), None);
        assert_eq!(parse_day("24-02-29"), None);
        assert_eq!(days_before(t, 30), "2024-01-30");
        assert_eq!(days_before(t, 0), "2024-02-29");
    }
}
