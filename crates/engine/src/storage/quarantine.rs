//! The quarantine: source rows set aside by ingest, each with file, line, column and reason.

use std::sync::Arc;

use datafusion::arrow::array::{ArrayRef, StringArray, UInt64Array};
use datafusion::arrow::datatypes::{DataType, Field, Schema, SchemaRef};
use datafusion::arrow::record_batch::RecordBatch;
use serde::Serialize;

use crate::error::Result;

/// One quarantined source row, before it is stored.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct QRow {
    pub(crate) line: u64,
    pub(crate) column: String,
    pub(crate) reason: String,
    pub(crate) raw: String,
}

/// One stored quarantine record, as `shoplens quarantine` lists it.
#[derive(Debug, Clone, Serialize, PartialEq, Eq)]
pub struct QuarantineRow {
    /// Commit of the ingest that set it aside.
    pub commit: String,
    /// Source file as given.
    pub file: String,
    /// Physical line (1-based) where the record starts; for Parquet sources, the row number.
    pub line: u64,
    /// Source column at fault (`*` for the whole row).
    pub column: String,
    /// Why the row was set aside.
    pub reason: String,
    /// The raw text of the row (at most 1,000 characters).
    pub raw: String,
}

/// Schema of the quarantine table (`quarantine` in SQL).
pub fn quarantine_schema() -> SchemaRef {
    Arc::new(Schema::new(vec![
        Field::new("commit", DataType::Utf8, false),
        Field::new("file", DataType::Utf8, false),
        Field::new("line", DataType::UInt64, false),
        Field::new("column", DataType::Utf8, false),
        Field::new("reason", DataType::Utf8, false),
        Field::new("raw", DataType::Utf8, false),
    ]))
}

pub(crate) fn quarantine_batch(commit: &str, rows: &[(String, QRow)]) -> Result<RecordBatch> {
    let cols: Vec<ArrayRef> = vec![
        Arc::new(StringArray::from_iter_values(rows.iter().map(|_| commit))),
        Arc::new(StringArray::from_iter_values(
            rows.iter().map(|(f, _)| f.as_str()),
        )),
        Arc::new(UInt64Array::from_iter_values(
            rows.iter().map(|(_, q)| q.line),
        )),
        Arc::new(StringArray::from_iter_values(
            rows.iter().map(|(_, q)| q.column.as_str()),
        )),
        Arc::new(StringArray::from_iter_values(
            rows.iter().map(|(_, q)| q.reason.as_str()),
        )),
        Arc::new(StringArray::from_iter_values(
            rows.iter().map(|(_, q)| q.raw.as_str()),
        )),
    ];
    Ok(RecordBatch::try_new(quarantine_schema(), cols)?)
}
