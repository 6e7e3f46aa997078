//! `local_micros(ts, 'Zone')`: instants as the shop's wall clock, for shop-local days, hours
//! and weekdays in SQL.

use chrono::DateTime;
use chrono_tz::Tz;

/// `local_micros(ts, 'Zone')`: a UTC timestamp as microseconds of the zone's wall clock (UTC
/// instant + the zone's offset then), so days, hours and weekdays follow by integer arithmetic.
/// Offsets are looked up once per 15-minute bucket (every zone offset and transition falls on a
/// quarter hour), which makes it far cheaper per row than converting each timestamp.
pub fn local_micros_udf() -> datafusion::logical_expr::ScalarUDF {
    datafusion::logical_expr::ScalarUDF::from(LocalMicros {
        signature: datafusion::logical_expr::Signature::any(
            2,
            datafusion::logical_expr::Volatility::Immutable,
        ),
    })
}

#[derive(Debug, PartialEq, Eq, Hash)]
struct LocalMicros {
    signature: datafusion::logical_expr::Signature,
}

impl datafusion::logical_expr::ScalarUDFImpl for LocalMicros {
    fn name(&self) -> &str {
        "local_micros"
    }

    fn signature(&self) -> &datafusion::logical_expr::Signature {
        &self.signature
    }

    fn return_type(
        &self,
        _args: &[datafusion::arrow::datatypes::DataType],
    ) -> datafusion::common::Result<datafusion::arrow::datatypes::DataType> {
        Ok(datafusion::arrow::datatypes::DataType::Int64)
    }

    fn invoke_with_args(
        &self,
        args: datafusion::logical_expr::ScalarFunctionArgs,
    ) -> datafusion::common::Result<datafusion::logical_expr::ColumnarValue> {
        use datafusion::arrow::array::{AsArray, Int64Array};
        use datafusion::arrow::datatypes::{DataType, Int64Type, TimeUnit};
        use datafusion::common::{ScalarValue, exec_err};
        use datafusion::logical_expr::ColumnarValue;
        let zone = match args.args.get(1) {
            Some(ColumnarValue::Scalar(
                ScalarValue::Utf8(Some(z)) | ScalarValue::Utf8View(Some(z)),
            )) => z.clone(),
            _ => return exec_err!("local_micros(ts, zone): the zone must be a constant text"),
        };
        let Ok(tz) = zone.parse::<Tz>() else {
            return exec_err!("local_micros: unknown time zone {zone}");
        };
        let Some(ts) = args.args.first() else {
            return exec_err!("local_micros(ts, zone): missing ts");
        };
        let arr = ts.to_array(args.number_rows)?;
        let arr = datafusion::arrow::compute::cast(
            &arr,
            &DataType::Timestamp(TimeUnit::Microsecond, None),
        )?;
        let arr = datafusion::arrow::compute::cast(&arr, &DataType::Int64)?;
        let Some(v) = arr.as_primitive_opt::<Int64Type>() else {
            return exec_err!("local_micros: ts is not a timestamp");
        };
        const QUARTER: i64 = 900_000_000;
        let mut cache: (i64, i64) = (i64::MIN, 0);
        let out: Int64Array = v
            .iter()
            .map(|x| {
                x.map(|us| {
                    let bucket = us.div_euclid(QUARTER);
                    if bucket != cache.0 {
                        cache = (bucket, offset_micros(bucket * QUARTER, &tz));
                    }
                    us + cache.1
                })
            })
            .collect();
        Ok(ColumnarValue::Array(std::sync::Arc::new(out)))
    }
}

/// The zone's offset from UTC at an instant, in microseconds.
fn offset_micros(us: i64, tz: &Tz) -> i64 {
    use chrono::{Offset, TimeZone};
    DateTime::from_timestamp_micros(us).map_or(0, |dt| {
        i64::from(
            tz.offset_from_utc_datetime(&dt.naive_utc())
                .fix()
                .local_minus_utc(),
        ) * 1_000_000
    })
}
