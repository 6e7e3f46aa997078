//! Query results as rows of JSON values: what `shoplens sql`, `quarantine` and `audience show`
//! answer, as `{"columns": [...], "rows": [{column: value, …}, …]}`.

use chrono_tz::Tz;
use datafusion::arrow::array::{Array, AsArray};
use datafusion::arrow::datatypes::{
    DataType, Float32Type, Float64Type, Int8Type, Int16Type, Int32Type, Int64Type, SchemaRef,
    TimeUnit, TimestampMicrosecondType, UInt8Type, UInt16Type, UInt32Type, UInt64Type,
};
use datafusion::arrow::record_batch::RecordBatch;
use datafusion::arrow::util::display::{ArrayFormatter, FormatOptions};
use serde::ser::{SerializeMap, SerializeStruct};
use serde::{Serialize, Serializer};
use serde_json::Value;

use crate::calendar::format_instant;
use crate::error::Result;

/// Rows with named columns. Integers, floats and booleans are JSON numbers and booleans (a float
/// that is not finite is null), decimals numbers as written, instants text in the shop's zone,
/// everything else text; a null is null.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct Rows {
    /// Column names, in order.
    pub columns: Vec<String>,
    /// Each row's values, in column order.
    pub values: Vec<Vec<Value>>,
}

impl Rows {
    /// The rows of `batches` (of `schema`), instants shown in zone `tz`.
    ///
    /// # Errors
    /// A column arrow cannot display.
    pub fn of(schema: &SchemaRef, batches: &[RecordBatch], tz: &Tz) -> Result<Rows> {
        let mut r = Rows {
            columns: schema.fields().iter().map(|x| x.name().clone()).collect(),
            values: Vec::new(),
        };
        let opts = FormatOptions::default().with_null("");
        for b in batches {
            let formatters = b
                .columns()
                .iter()
                .map(|c| ArrayFormatter::try_new(c.as_ref(), &opts))
                .collect::<std::result::Result<Vec<_>, _>>()
                .map_err(crate::Error::Arrow)?;
            for i in 0..b.num_rows() {
                let mut row = Vec::with_capacity(b.num_columns());
                for (c, fmt) in b.columns().iter().zip(&formatters) {
                    row.push(cell(c.as_ref(), i, tz, &fmt.value(i).to_string()));
                }
                r.values.push(row);
            }
        }
        Ok(r)
    }
}

/// One row as a map from column to value, in column order.
struct Row<'a>(&'a [String], &'a [Value]);

impl Serialize for Row<'_> {
    fn serialize<S: Serializer>(&self, s: S) -> std::result::Result<S::Ok, S::Error> {
        let mut m = s.serialize_map(Some(self.0.len()))?;
        for (k, v) in self.0.iter().zip(self.1) {
            m.serialize_entry(k, v)?;
        }
        m.end()
    }
}

impl Serialize for Rows {
    fn serialize<S: Serializer>(&self, s: S) -> std::result::Result<S::Ok, S::Error> {
        let rows: Vec<Row<'_>> = self.values.iter().map(|v| Row(&self.columns, v)).collect();
        let mut st = s.serialize_struct("Rows", 2)?;
        st.serialize_field("columns", &self.columns)?;
        st.serialize_field("rows", &rows)?;
        st.end()
    }
}

impl schemars::JsonSchema for Rows {
    fn schema_name() -> std::borrow::Cow<'static, str> {
        "Rows".into()
    }

    fn json_schema(_: &mut schemars::SchemaGenerator) -> schemars::Schema {
        schemars::json_schema!({
            "type": "object",
            "description": "Rows with named columns: each row maps a column to its value.",
            "properties": {
                "columns": {"type": "array", "items": {"type": "string"}},
                "rows": {"type": "array", "items": {"type": "object", "additionalProperties": true}}
            },
            "required": ["columns", "rows"]
        })
    }
}

fn cell(a: &dyn Array, i: usize, tz: &Tz, text: &str) -> Value {
    if a.is_null(i) {
        return Value::Null;
    }
    macro_rules! int {
        ($t:ty) => {
            Value::from(a.as_primitive::<$t>().value(i))
        };
    }
    match a.data_type() {
        DataType::Int8 => int!(Int8Type),
        DataType::Int16 => int!(Int16Type),
        DataType::Int32 => int!(Int32Type),
        DataType::Int64 => int!(Int64Type),
        DataType::UInt8 => int!(UInt8Type),
        DataType::UInt16 => int!(UInt16Type),
        DataType::UInt32 => int!(UInt32Type),
        DataType::UInt64 => int!(UInt64Type),
        DataType::Float32 => finite(f64::from(a.as_primitive::<Float32Type>().value(i))),
        DataType::Float64 => finite(a.as_primitive::<Float64Type>().value(i)),
        DataType::Boolean => Value::Bool(a.as_boolean().value(i)),
        DataType::Decimal128(_, _) | DataType::Decimal256(_, _) => text
            .parse::<serde_json::Number>()
            .map(Value::Number)
            .unwrap_or_else(|_| Value::String(text.to_string())),
        DataType::Timestamp(TimeUnit::Microsecond, _) => Value::String(format_instant(
            a.as_primitive::<TimestampMicrosecondType>().value(i),
            tz,
        )),
        _ => Value::String(text.to_string()),
    }
}

fn finite(x: f64) -> Value {
    if x.is_finite() {
        Value::from(x)
    } else {
        Value::Null
    }
}
