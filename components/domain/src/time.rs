//! Time as the domain sees it: milliseconds since the epoch, given by the
//! caller; RFC 3339 UTC strings in JSON; the shop's business day.

use chrono::{DateTime, Duration, SecondsFormat, Utc};

pub fn rfc3339(ms: i64) -> String {
    DateTime::<Utc>::from_timestamp_millis(ms).unwrap_or_default().to_rfc3339_opts(SecondsFormat::Millis, true)
}

/// The business day (`YYYY-MM-DD`) a moment belongs to: local time by the
/// shop's UTC offset, with days starting at `day_start_minutes` after midnight.
pub fn business_day(ms: i64, utc_offset_minutes: i32, day_start_minutes: u32) -> String {
    let local = DateTime::<Utc>::from_timestamp_millis(ms).unwrap_or_default()
        + Duration::minutes(utc_offset_minutes as i64 - day_start_minutes as i64);
    local.format("%Y-%m-%d").to_string()
}

/// A business day asked for by name (`YYYY-MM-DD`, a date that exists),
/// or `invalid_day`.
pub fn parse_day(day: &str) -> Result<String, crate::DomainError> {
    match chrono::NaiveDate::parse_from_str(day, "%Y-%m-%d") {
        Ok(date) if date.format("%Y-%m-%d").to_string() == day => Ok(day.to_string()),
        _ => Err(crate::DomainError::invalid(
            "invalid_day",
            format!("`day` must be a date like 2026-11-22, got `{day}`"),
        )),
    }
}

/// The hour of the business day (0 = the hour the day starts) a moment falls in.
pub fn business_hour(ms: i64, utc_offset_minutes: i32, day_start_minutes: u32) -> usize {
    let minutes = ms.div_euclid(60_000) + utc_offset_minutes as i64 - day_start_minutes as i64;
    (minutes.rem_euclid(24 * 60) / 60) as usize
}

#[cfg(test)]
mod tests {
    use super::*;

    fn ms(rfc: &str) -> i64 {
        DateTime::parse_from_rfc3339(rfc).unwrap().timestamp_millis()
    }

    #[test]
    fn timestamps_are_rfc3339_utc() {
        assert_eq!(rfc3339(0), "1970-01-01T00:00:00.000Z");
        assert_eq!(rfc3339(ms("2026-11-22T10:00:00.250Z")), "2026-11-22T10:00:00.250Z");
    }

    #[test]
    fn the_business_day_starts_at_the_shops_local_day_start() {
        // São Paulo (UTC−3), day starts 05:00 local = 08:00 UTC.
        assert_eq!(business_day(ms("2026-11-22T07:59:00Z"), -180, 300), "2026-11-21");
        assert_eq!(business_day(ms("2026-11-22T08:00:00Z"), -180, 300), "2026-11-22");
        assert_eq!(business_day(ms("2026-11-23T02:00:00Z"), -180, 300), "2026-11-22");
        assert_eq!(business_day(ms("2026-11-22T04:59:00Z"), 0, 300), "2026-11-21");
    }

    #[test]
    fn a_day_asked_for_is_a_date_that_exists_written_in_full() {
        for day in ["2026-11-22", "2028-02-29", "1999-12-31"] {
            assert_eq!(parse_day(day).unwrap(), day);
        }
        for bad in ["2026-02-31", "2026-13-01", "2026-11-2", "2026-1-22", "26-11-22", "2026/11/22", "", "2026-11-22x"] {
            assert_eq!(parse_day(bad).unwrap_err().code(), "invalid_day", "{bad:?}");
        }
    }

    #[test]
    fn business_hours_count_from_the_day_start() {
        assert_eq!(business_hour(ms("2026-11-22T08:00:00Z"), -180, 300), 0);
        assert_eq!(business_hour(ms("2026-11-22T10:59:00Z"), -180, 300), 2);
        assert_eq!(business_hour(ms("2026-11-23T07:59:00Z"), -180, 300), 23);
    }
}
