//! SQL fragments and result readers shared by the analyses: literals, the shop's local time, the
//! paid-order rule of docs/metrics.md.

use datafusion::arrow::array::{Array, ArrayRef, AsArray, StringArray};
use datafusion::arrow::compute::cast;
use datafusion::arrow::datatypes::DataType;

use crate::error::{Error, Result};

/// A SQL string literal.
pub fn quote(s: &str) -> String {
    format!("'{}'", s.replace('\'', "''"))
}

/// A UTC instant (µs) as a SQL timestamp literal.
pub fn ts_literal(us: i64) -> String {
    format!("arrow_cast({us}, 'Timestamp(µs, \"UTC\")')")
}

/// Microseconds per day.
const DAY: i64 = 86_400_000_000;

/// The shop-zone day number (days since 1970-01-01 of the wall clock) of a UTC timestamp column,
/// by integer arithmetic on `local_micros`.
pub fn local_day(col: &str, tz: &str) -> String {
    format!(
        "CAST(floor(CAST(local_micros({col}, {}) AS DOUBLE) / {DAY}) AS BIGINT)",
        quote(tz)
    )
}

/// The shop-zone hour of day (0–23) of a UTC timestamp column.
pub fn local_hour(col: &str, tz: &str) -> String {
    format!(
        "CAST(((local_micros({col}, {z}) % {DAY}) + {DAY}) % {DAY} / 3600000000 AS INT)",
        z = quote(tz)
    )
}

/// The shop-zone ISO weekday (1 = Monday … 7 = Sunday) of a UTC timestamp column.
pub fn local_weekday(col: &str, tz: &str) -> String {
    format!(
        "CAST((({} + 3) % 7 + 7) % 7 + 1 AS INT)",
        local_day(col, tz)
    )
}

/// `col` within [from, to) as SQL (TRUE without bounds).
pub fn in_range(col: &str, from: Option<i64>, to: Option<i64>) -> String {
    let mut c = Vec::new();
    if let Some(f) = from {
        c.push(format!("{col} >= {}", ts_literal(f)));
    }
    if let Some(t) = to {
        c.push(format!("{col} < {}", ts_literal(t)));
    }
    if c.is_empty() {
        "TRUE".into()
    } else {
        c.join(" AND ")
    }
}

/// Sorts names and returns, for each old index, its rank in the sorted order: dense ids in label
/// order, so that results never depend on the order rows arrive in.
pub fn label_order(names: &mut [String]) -> Vec<u32> {
    let mut idx: Vec<u32> = (0..names.len() as u32).collect();
    idx.sort_by(|&a, &b| names[a as usize].cmp(&names[b as usize]));
    let mut rank = vec![0u32; names.len()];
    for (r, &i) in idx.iter().enumerate() {
        rank[i as usize] = r as u32;
    }
    names.sort();
    rank
}

/// A paid order: status completed or paid (docs/metrics.md, conventions).
pub const PAID: &str = "status IN ('completed', 'paid')";

/// The condition on `orders` of a buyer's paid order up to an instant (all data without one):
/// paid, with a user and a timestamp.
pub fn buyer_orders(as_of: Option<i64>) -> String {
    let mut c = format!("{PAID} AND user_id IS NOT NULL AND ts IS NOT NULL");
    if let Some(a) = as_of {
        c.push_str(&format!(" AND ts <= {}", ts_literal(a)));
    }
    c
}

/// A text column as a plain string array (DataFusion may hand out views).
pub fn strings(a: &ArrayRef) -> Result<StringArray> {
    let a = cast(a, &DataType::Utf8)?;
    a.as_string_opt::<i32>()
        .cloned()
        .ok_or_else(|| Error::Internal(format!("expected text, got {}", a.data_type())))
}

/// A numeric column as f64 values (null as NaN).
pub fn floats(a: &ArrayRef) -> Result<Vec<f64>> {
    let a = cast(a, &DataType::Float64)?;
    let f = a
        .as_primitive_opt::<datafusion::arrow::datatypes::Float64Type>()
        .ok_or_else(|| Error::Internal(format!("expected numbers, got {}", a.data_type())))?;
    Ok((0..f.len())
        .map(|i| if f.is_null(i) { f64::NAN } else { f.value(i) })
        .collect())
}

/// An integer column as i64 values (null as 0).
pub fn ints(a: &ArrayRef) -> Result<Vec<i64>> {
    let a = cast(a, &DataType::Int64)?;
    let f = a
        .as_primitive_opt::<datafusion::arrow::datatypes::Int64Type>()
        .ok_or_else(|| Error::Internal(format!("expected integers, got {}", a.data_type())))?;
    Ok((0..f.len())
        .map(|i| if f.is_null(i) { 0 } else { f.value(i) })
        .collect())
}

/// A text column as optional strings.
pub fn texts(a: &ArrayRef) -> Result<Vec<Option<String>>> {
    let s = strings(a)?;
    Ok((0..s.len())
        .map(|i| (!s.is_null(i)).then(|| s.value(i).to_string()))
        .collect())
}
