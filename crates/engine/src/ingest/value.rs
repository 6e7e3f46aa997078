//! Parsing source text into typed canonical values.

use std::borrow::Cow;

use chrono::{DateTime, NaiveDate, NaiveDateTime};
use chrono_tz::Tz;

use crate::ingest::mapping::Epoch;
use crate::storage::schema::MONEY_SCALE;

/// A typed cell value; text borrows from the source where it can.
#[derive(Debug, Clone, PartialEq)]
pub(crate) enum Val<'a> {
    Null,
    Text(Cow<'a, str>),
    Int(i64),
    Float(f64),
    /// Money in units of 10^-4.
    Money(i128),
    /// Microseconds since the epoch, UTC.
    Ts(i64),
    /// Days since 1970-01-01.
    Date(i32),
    Bool(bool),
}

impl Val<'_> {
    pub(crate) fn into_owned(self) -> Val<'static> {
        match self {
            Val::Null => Val::Null,
            Val::Text(t) => Val::Text(Cow::Owned(t.into_owned())),
            Val::Int(v) => Val::Int(v),
            Val::Float(v) => Val::Float(v),
            Val::Money(v) => Val::Money(v),
            Val::Ts(v) => Val::Ts(v),
            Val::Date(v) => Val::Date(v),
            Val::Bool(v) => Val::Bool(v),
        }
    }

    pub(crate) fn is_null(&self) -> bool {
        matches!(self, Val::Null)
    }
}

const MONEY_ONE: i128 = 10_i128.pow(MONEY_SCALE as u32);

/// Parses a decimal number into units of 10^-4. More than four decimals round half away from zero.
/// Exponent notation from float exports (`4.440892e-16`, `1.5E3`) is read exactly.
pub(crate) fn parse_money(s: &str) -> Result<i128, String> {
    let t = s.trim();
    if let Some(i) = t.find(['e', 'E']) {
        return parse_money(
            &expand_exponent(&t[..i], &t[i + 1..])
                .ok_or_else(|| format!("`{t}` is not a decimal number"))?,
        );
    }
    let (neg, digits) = match t.as_bytes().first() {
        Some(b'-') => (true, &t[1..]),
        Some(b'+') => (false, &t[1..]),
        _ => (false, t),
    };
    let (int_part, frac_part) = match digits.split_once('.') {
        Some((i, f)) => (i, f),
        None => (digits, ""),
    };
    if (int_part.is_empty() && frac_part.is_empty())
        || !int_part.bytes().all(|b| b.is_ascii_digit())
        || !frac_part.bytes().all(|b| b.is_ascii_digit())
        || int_part.len() > 20
    {
        return Err(format!("`{t}` is not a decimal number"));
    }
    let mut v: i128 = 0;
    for b in int_part.bytes() {
        v = v * 10 + i128::from(b - b'0');
    }
    let mut frac: i128 = 0;
    let scale = MONEY_SCALE as usize;
    for (i, b) in frac_part.bytes().enumerate() {
        if i < scale {
            frac = frac * 10 + i128::from(b - b'0');
        } else {
            if i == scale && b >= b'5' {
                frac += 1;
            }
            break;
        }
    }
    for _ in frac_part.len().min(scale)..scale {
        frac *= 10;
    }
    let v = v * MONEY_ONE + frac;
    Ok(if neg { -v } else { v })
}

/// Rewrites `mantissa`e`exponent` as a plain decimal string, exactly.
fn expand_exponent(mantissa: &str, exponent: &str) -> Option<String> {
    let exp: i32 = exponent.parse().ok().filter(|e: &i32| e.abs() <= 40)?;
    let (sign, m) = match mantissa.as_bytes().first() {
        Some(b'-') => ("-", &mantissa[1..]),
        Some(b'+') => ("", &mantissa[1..]),
        _ => ("", mantissa),
    };
    let (int_part, frac_part) = m.split_once('.').unwrap_or((m, ""));
    if int_part.is_empty() && frac_part.is_empty()
        || !(int_part
            .bytes()
            .chain(frac_part.bytes())
            .all(|b| b.is_ascii_digit()))
    {
        return None;
    }
    let digits = format!("{int_part}{frac_part}");
    let point = int_part.len() as i32 + exp;
    Some(if point <= 0 {
        format!("{sign}0.{}{digits}", "0".repeat((-point) as usize))
    } else if point as usize >= digits.len() {
        format!(
            "{sign}{digits}{}",
            "0".repeat(point as usize - digits.len())
        )
    } else {
        format!(
            "{sign}{}.{}",
            &digits[..point as usize],
            &digits[point as usize..]
        )
    })
}

/// Parses an integer; `6.0` is accepted as 6, `6.5` is not.
pub(crate) fn parse_int(s: &str) -> Result<i64, String> {
    let t = s.trim();
    if let Ok(v) = t.parse::<i64>() {
        return Ok(v);
    }
    if let Some((i, f)) = t.split_once('.')
        && !f.is_empty()
        && f.bytes().all(|b| b == b'0')
        && let Ok(v) = i.parse::<i64>()
    {
        return Ok(v);
    }
    Err(format!("`{t}` is not an integer"))
}

pub(crate) fn parse_float(s: &str) -> Result<f64, String> {
    let t = s.trim();
    t.parse::<f64>()
        .ok()
        .filter(|v| v.is_finite())
        .ok_or_else(|| format!("`{t}` is not a number"))
}

pub(crate) fn parse_bool(s: &str) -> Result<bool, String> {
    match s.trim().to_ascii_lowercase().as_str() {
        "1" | "true" | "t" | "yes" | "y" => Ok(true),
        "0" | "false" | "f" | "no" | "n" => Ok(false),
        other => Err(format!("`{other}` is not true/false (1/0, yes/no)")),
    }
}

/// Reads timestamps of one column: a strftime format or ISO 8601 forms, or epoch numbers; local
/// times are in `tz` (an ambiguous local time takes the earlier instant, a skipped one the
/// instant one hour later on the wall clock).
#[derive(Debug, Clone)]
pub(crate) struct TsParser {
    pub(crate) format: Option<String>,
    pub(crate) epoch: Option<Epoch>,
    pub(crate) tz: Tz,
}

impl TsParser {
    /// Microseconds since the epoch.
    pub(crate) fn parse(&self, s: &str) -> Result<i64, String> {
        let t = s.trim();
        if let Some(unit) = self.epoch {
            let v = parse_int(t).map_err(|_| format!("`{t}` is not an epoch number"))?;
            return v
                .checked_mul(unit.micros())
                .ok_or_else(|| format!("`{t}` is out of range"));
        }
        if let Some(f) = &self.format {
            if let Ok(dt) = DateTime::parse_from_str(t, f) {
                return Ok(dt.timestamp_micros());
            }
            if let Ok(n) = NaiveDateTime::parse_from_str(t, f) {
                return Ok(self.local(n));
            }
            if let Ok(d) = NaiveDate::parse_from_str(t, f) {
                return Ok(self.local(d.and_time(chrono::NaiveTime::MIN)));
            }
            return Err(format!("`{t}` does not match the timestamp format `{f}`"));
        }
        crate::calendar::parse_instant_text(t, &self.tz)
    }

    pub(crate) fn local(&self, n: NaiveDateTime) -> i64 {
        crate::calendar::local_to_utc_micros(&self.tz, n)
    }

    /// Days since the epoch of the value's calendar day in the shop's zone.
    pub(crate) fn parse_date(&self, s: &str) -> Result<i32, String> {
        let t = s.trim();
        if self.format.is_none() && self.epoch.is_none() {
            for f in crate::calendar::DATE_FORMATS {
                if let Ok(d) = NaiveDate::parse_from_str(t, f) {
                    return Ok(crate::calendar::days_since_epoch(d));
                }
            }
        }
        if let Some(f) = &self.format
            && let Ok(d) = NaiveDate::parse_from_str(t, f)
        {
            return Ok(crate::calendar::days_since_epoch(d));
        }
        let micros = self.parse(t)?;
        let utc = DateTime::from_timestamp_micros(micros)
            .ok_or_else(|| format!("`{t}` is out of range"))?;
        Ok(crate::calendar::days_since_epoch(
            utc.with_timezone(&self.tz).date_naive(),
        ))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn money_keeps_four_decimals_exactly() {
        assert_eq!(parse_money("2.55"), Ok(25_500));
        assert_eq!(parse_money("0.001"), Ok(10));
        assert_eq!(parse_money("-11.77"), Ok(-117_700));
        assert_eq!(parse_money("3"), Ok(30_000));
        assert_eq!(parse_money(".5"), Ok(5_000));
        assert_eq!(parse_money("1.00005"), Ok(10_001));
        assert_eq!(parse_money("4.440892e-16"), Ok(0));
        assert_eq!(parse_money("1.5E3"), Ok(15_000_000));
        assert_eq!(parse_money("-2.5e-3"), Ok(-25));
        assert_eq!(parse_money("6.66e-5"), Ok(1));
        assert!(parse_money("1e").is_err());
        assert!(parse_money("e5").is_err());
        assert!(parse_money("abc").is_err());
        assert!(parse_money("1.2.3").is_err());
        assert!(parse_money("").is_err());
        assert!(parse_money("-").is_err());
    }

    #[test]
    fn ints_accept_float_spelling_of_whole_numbers_only() {
        assert_eq!(parse_int("17850.0"), Ok(17850));
        assert_eq!(parse_int(" -6 "), Ok(-6));
        assert!(parse_int("6.5").is_err());
        assert!(parse_int("six").is_err());
    }

    #[test]
    fn timestamps_in_zones_and_forms() {
        let london = TsParser {
            format: None,
            epoch: None,
            tz: chrono_tz::Europe::London,
        };
        // 2010-12-01 08:26 GMT (winter: UTC+0).
        assert_eq!(
            london.parse("2010-12-01 08:26:00"),
            Ok(1_291_191_960_000_000)
        );
        // 2011-06-01 08:26 BST (UTC+1).
        assert_eq!(
            london.parse("2011-06-01 08:26:00"),
            Ok(1_306_913_160_000_000)
        );
        let utc = TsParser {
            format: None,
            epoch: None,
            tz: chrono_tz::Asia::Shanghai,
        };
        assert_eq!(
            utc.parse("2019-10-01 00:00:00 UTC"),
            Ok(1_569_888_000_000_000)
        );
        assert_eq!(
            utc.parse("2019-10-01T08:00:00+08:00"),
            Ok(1_569_888_000_000_000)
        );
        let epoch = TsParser {
            format: None,
            epoch: Some(Epoch::S),
            tz: chrono_tz::UTC,
        };
        assert_eq!(epoch.parse("1511544070"), Ok(1_511_544_070_000_000));
        let ymd = TsParser {
            format: Some("%Y%m%d".into()),
            epoch: None,
            tz: chrono_tz::UTC,
        };
        assert_eq!(ymd.parse("19970101"), Ok(852_076_800_000_000));
        assert!(ymd.parse("1997-13-01").is_err());
        assert_eq!(ymd.parse_date("19970102"), Ok(9_863));
    }

    #[test]
    fn dst_gap_and_overlap_are_resolved() {
        let p = TsParser {
            format: None,
            epoch: None,
            tz: chrono_tz::Europe::London,
        };
        // 2011-03-27 01:30 does not exist in London; read as 02:30 BST = 01:30 UTC.
        assert_eq!(p.parse("2011-03-27 01:30:00"), Ok(1_301_189_400_000_000));
        // 2011-10-30 01:30 happens twice; the earlier is BST = 00:30 UTC.
        assert_eq!(p.parse("2011-10-30 01:30:00"), Ok(1_319_934_600_000_000));
    }
}
