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
    }
}
