//! `#EXT-X-PROGRAM-DATE-TIME` values (X2): µs since the Unix epoch as an
//! ISO 8601 UTC date with milliseconds, without a date library.

/// `2026-12-07T21:42:46.123Z` for `micros` since 1970-01-01T00:00:00Z.
pub fn iso8601_utc(micros: u64) -> String {
    let millis = micros / 1_000;
    let secs = millis / 1_000;
    let days = secs / 86_400;
    let in_day = secs % 86_400;
    let (y, m, d) = civil_from_days(days);
    format!(
        "{y:04}-{m:02}-{d:02}T{:02}:{:02}:{:02}.{:03}Z",
        in_day / 3_600,
        in_day / 60 % 60,
        in_day % 60,
        millis % 1_000
    )
}

/// Year, month, day of `days` since 1970-01-01 (H. Hinnant's algorithm).
fn civil_from_days(days: u64) -> (u64, u64, u64) {
    let z = days + 719_468;
    let era = z / 146_097;
    let doe = z % 146_097;
    let yoe = (doe - doe / 1_460 + doe / 36_524 - doe / 146_096) / 365;
    let doy = doe - (365 * yoe + yoe / 4 - yoe / 100);
    let mp = (5 * doy + 2) / 153;
    let d = doy - (153 * mp + 2) / 5 + 1;
    let m = if mp < 10 { mp + 3 } else { mp - 9 };
    let y = yoe + era * 400 + u64::from(m <= 2);
    (y, m, d)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn known_dates() {
        assert_eq!(iso8601_utc(0), "1970-01-01T00:00:00.000Z");
        assert_eq!(iso8601_utc(951_782_400_000_000), "2000-02-29T00:00:00.000Z");
        assert_eq!(
            iso8601_utc(1_796_679_766_123_456),
            "2026-12-07T21:42:46.123Z"
        );
    }
}
