//! Time zones and instants: the shop's zone applies to days, hours and weekdays.

use chrono::{DateTime, NaiveDate, NaiveDateTime, TimeZone};
use chrono_tz::Tz;

use crate::storage::workspace::Settings;

/// The shop's time zone (UTC when the workspace has none).
pub fn zone(settings: &Settings) -> Tz {
    settings
        .timezone
        .as_deref()
        .and_then(|z| z.parse().ok())
        .unwrap_or(chrono_tz::UTC)
}

/// An instant (µs since the epoch) as ISO 8601 in `tz`, with its offset: `1997-01-01T00:00:00-05:00`.
pub fn format_instant(micros: i64, tz: &Tz) -> String {
    match DateTime::from_timestamp_micros(micros) {
        Some(dt) => {
            let local = dt.with_timezone(tz);
            if micros % 1_000_000 == 0 {
                local.format("%Y-%m-%dT%H:%M:%S%:z").to_string()
            } else {
                local.format("%Y-%m-%dT%H:%M:%S%.6f%:z").to_string()
            }
        }
        None => micros.to_string(),
    }
}

/// Parses an `--as-of` value: a date (end of that day in the shop's zone) or a timestamp.
pub fn parse_as_of(text: &str, tz: &Tz) -> Option<i64> {
    let p = parse_instant(text, tz)?;
    if text.trim().len() == 10 {
        // A date means "as of the end of that day".
        return Some(p + 86_400_000_000 - 1);
    }
    Some(p)
}

/// `--as-of` (or the API's `as_of`) in the shop's zone: a date means the end of that day.
pub fn as_of(text: Option<&str>, tz: &Tz) -> crate::Result<Option<i64>> {
    text.map(|t| {
        parse_as_of(t, tz).ok_or_else(|| {
            crate::Error::Invalid(format!(
                "--as-of `{t}` is not a date (2024-05-31) or an instant (2024-05-31T23:00:00+08:00)"
            ))
        })
    })
    .transpose()
}

/// `--from DAY --to DAY` as a half-open interval of instants: a date means its midnight in the
/// shop's zone, and `--to` a date includes that day.
pub fn period(
    tz: &Tz,
    from: Option<&str>,
    to: Option<&str>,
) -> crate::Result<(Option<i64>, Option<i64>)> {
    let instant = |flag: &str, text: &str| -> crate::Result<i64> {
        parse_instant(text, tz).ok_or_else(|| {
            crate::Error::Invalid(format!(
                "--{flag} `{text}` is not a date (2025-05-01) or an instant"
            ))
        })
    };
    let from = from.map(|f| instant("from", f)).transpose()?;
    let to = match to {
        Some(t) => {
            let v = instant("to", t)?;
            Some(if t.trim().len() == 10 {
                v + 86_400_000_000
            } else {
                v
            })
        }
        None => None,
    };
    Ok((from, to))
}

/// The period of an event analysis: as [`period`], and without `to`, the as-of instant ends it.
pub fn events_period(
    tz: &Tz,
    from: Option<&str>,
    to: Option<&str>,
    as_of: Option<i64>,
) -> crate::Result<(Option<i64>, Option<i64>)> {
    let (from, to) = period(tz, from, to)?;
    Ok((from, to.or_else(|| as_of.map(|a| a + 1))))
}

/// Date-time layouts read without a format, in the shop's zone unless they name one.
pub(crate) const NAIVE_FORMATS: [&str; 7] = [
    "%Y-%m-%d %H:%M:%S%.f",
    "%Y-%m-%dT%H:%M:%S%.f",
    "%Y-%m-%d %H:%M",
    "%Y-%m-%dT%H:%M",
    "%Y/%m/%d %H:%M:%S",
    "%Y/%m/%d %H:%M",
    "%m/%d/%Y %H:%M",
];
/// Date layouts read without a format (a date is its midnight in the shop's zone).
pub(crate) const DATE_FORMATS: [&str; 4] = ["%Y-%m-%d", "%Y/%m/%d", "%Y%m%d", "%m/%d/%Y"];

/// Parses an instant the way mappings read timestamps without a format (ISO 8601 forms, a date
/// meaning its midnight in `tz`).
pub fn parse_instant(text: &str, tz: &Tz) -> Option<i64> {
    parse_instant_text(text.trim(), tz).ok()
}

/// [`parse_instant`] with the reason it fails, in µs since the epoch.
pub(crate) fn parse_instant_text(t: &str, tz: &Tz) -> Result<i64, String> {
    if let Ok(dt) = DateTime::parse_from_rfc3339(t) {
        return Ok(dt.timestamp_micros());
    }
    for suffix in [" UTC", "Z", " GMT"] {
        if let Some(rest) = t.strip_suffix(suffix) {
            for f in NAIVE_FORMATS {
                if let Ok(n) = NaiveDateTime::parse_from_str(rest, f) {
                    return Ok(n.and_utc().timestamp_micros());
                }
            }
        }
    }
    for f in NAIVE_FORMATS {
        if let Ok(n) = NaiveDateTime::parse_from_str(t, f) {
            return Ok(local_to_utc_micros(tz, n));
        }
    }
    for f in DATE_FORMATS {
        if let Ok(d) = NaiveDate::parse_from_str(t, f) {
            return Ok(local_to_utc_micros(tz, d.and_time(chrono::NaiveTime::MIN)));
        }
    }
    Err(format!(
        "`{t}` is not a timestamp (give `format` in the mapping)"
    ))
}

/// Converts a wall-clock time in `tz` to UTC microseconds (earlier instant when ambiguous; a
/// skipped wall-clock time is read one hour later).
pub(crate) fn local_to_utc_micros(tz: &Tz, n: NaiveDateTime) -> i64 {
    match tz.from_local_datetime(&n).earliest() {
        Some(dt) => dt.timestamp_micros(),
        None => {
            let later = n + chrono::Duration::hours(1);
            tz.from_local_datetime(&later).earliest().map_or_else(
                || n.and_utc().timestamp_micros(),
                |dt| dt.timestamp_micros(),
            )
        }
    }
}

/// Days since 1970-01-01.
pub(crate) fn days_since_epoch(d: NaiveDate) -> i32 {
    let epoch = NaiveDate::from_ymd_opt(1970, 1, 1).unwrap_or_default();
    i32::try_from((d - epoch).num_days()).unwrap_or(i32::MAX)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn instants_print_in_shop_time_with_offset() {
        let ny: Tz = "America/New_York".parse().unwrap();
        assert_eq!(
            format_instant(852_094_800_000_000, &ny),
            "1997-01-01T00:00:00-05:00"
        );
        assert_eq!(
            format_instant(0, &chrono_tz::UTC),
            "1970-01-01T00:00:00+00:00"
        );
    }

    #[test]
    fn as_of_date_is_end_of_day() {
        let t = parse_as_of("1998-06-30", &chrono_tz::UTC).unwrap();
        assert_eq!(
            format_instant(t, &chrono_tz::UTC),
            "1998-06-30T23:59:59.999999+00:00"
        );
    }
}
