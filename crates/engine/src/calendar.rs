//! Time zones and instants: the shop's zone applies to days, hours and weekdays.

use chrono::DateTime;
use chrono_tz::Tz;

use crate::workspace::Settings;

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
    let p = crate::ingest::parse_instant(text, tz)?;
    if text.trim().len() == 10 {
        // A date means "as of the end of that day".
        return Some(p + 86_400_000_000 - 1);
    }
    Some(p)
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
