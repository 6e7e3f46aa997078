//! Rendering results as a readable table, JSON or CSV. Computes nothing.

use std::io::Write;

use anyhow::Result;
use chrono_tz::Tz;
use clap::ValueEnum;
use comfy_table::{Table as Grid, presets::UTF8_FULL_CONDENSED};
use serde::Serialize;
use serde_json::Value;
use shoplens_engine::datafusion::arrow::datatypes::SchemaRef;
use shoplens_engine::datafusion::arrow::record_batch::RecordBatch;
use shoplens_engine::query::Rows;

/// Output format of every command.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, ValueEnum)]
pub(crate) enum Format {
    /// A readable table.
    #[default]
    Table,
    /// JSON with stable, documented field names.
    Json,
    /// CSV with a header line; nested values flattened (lists joined by `|`).
    Csv,
}

/// How a frame is written: the format, and for CSV whether cells are left as they are.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub(crate) struct Output {
    pub(crate) format: Format,
    /// CSV text cells a spreadsheet would run as a formula are written as they are (`--csv-raw`),
    /// not neutralised with a leading apostrophe.
    pub(crate) csv_raw: bool,
}

impl From<Format> for Output {
    fn from(format: Format) -> Output {
        Output {
            format,
            csv_raw: false,
        }
    }
}

/// Rows with named columns: how table and CSV output see a result.
#[derive(Debug, Clone, Default)]
pub(crate) struct Frame {
    pub(crate) columns: Vec<String>,
    pub(crate) rows: Vec<Vec<Value>>,
}

impl Frame {
    pub(crate) fn new(columns: &[&str]) -> Frame {
        Frame {
            columns: columns.iter().map(|c| (*c).to_string()).collect(),
            rows: Vec::new(),
        }
    }

    pub(crate) fn push(&mut self, row: Vec<Value>) {
        self.rows.push(row);
    }

    /// The frame as JSON: `{"columns": [...], "rows": [{column: value, ...}, ...]}`.
    pub(crate) fn to_json(&self) -> Value {
        let rows: Vec<serde_json::Map<String, Value>> = self
            .rows
            .iter()
            .map(|r| {
                self.columns
                    .iter()
                    .cloned()
                    .zip(r.iter().cloned())
                    .collect()
            })
            .collect();
        serde_json::json!({ "columns": self.columns, "rows": rows })
    }

    /// Writes the frame as a table or CSV (JSON callers serialise their typed result instead).
    /// CSV text cells that a spreadsheet would run as a formula get a leading apostrophe unless
    /// the output is raw.
    pub(crate) fn write(&self, out: &mut dyn Write, output: impl Into<Output>) -> Result<()> {
        let output = output.into();
        match output.format {
            Format::Csv => {
                let cell = |s: &str| {
                    if output.csv_raw {
                        csv_cell(s)
                    } else {
                        csv_cell(&shoplens_engine::customers::audiences::formula_safe(s))
                    }
                };
                let line = |cells: Vec<String>| cells.join(",");
                writeln!(
                    out,
                    "{}",
                    line(self.columns.iter().map(|c| cell(c)).collect())
                )?;
                for r in &self.rows {
                    writeln!(out, "{}", line(r.iter().map(|v| cell(&flat(v))).collect()))?;
                }
            }
            Format::Table | Format::Json => {
                let mut g = Grid::new();
                g.load_preset(UTF8_FULL_CONDENSED);
                g.set_header(self.columns.clone());
                for r in &self.rows {
                    g.add_row(r.iter().map(flat).collect::<Vec<_>>());
                }
                writeln!(out, "{g}")?;
            }
        }
        Ok(())
    }
}

/// A value as one flat cell: lists joined by `|`, null empty.
pub(crate) fn flat(v: &Value) -> String {
    match v {
        Value::Null => String::new(),
        Value::String(s) => s.clone(),
        Value::Array(a) => a.iter().map(flat).collect::<Vec<_>>().join("|"),
        Value::Object(_) => v.to_string(),
        other => other.to_string(),
    }
}

fn csv_cell(s: &str) -> String {
    if s.contains([',', '"', '\n', '\r']) {
        format!("\"{}\"", s.replace('"', "\"\""))
    } else {
        s.to_string()
    }
}

/// Writes a typed result as pretty JSON.
pub(crate) fn write_json<T: Serialize>(out: &mut dyn Write, value: &T) -> Result<()> {
    serde_json::to_writer_pretty(&mut *out, value)?;
    writeln!(out)?;
    Ok(())
}

/// Query results as a frame: instants in the shop's zone, decimals as exact numbers, values
/// JSON cannot hold (NaN, infinity) as null.
pub(crate) fn batches_frame(schema: &SchemaRef, batches: &[RecordBatch], tz: &Tz) -> Result<Frame> {
    Ok(Frame::from(Rows::of(schema, batches, tz)?))
}

impl From<Rows> for Frame {
    fn from(r: Rows) -> Frame {
        Frame {
            columns: r.columns,
            rows: r.values,
        }
    }
}

/// Rows to show of `len` under a `--limit` (0 = all).
pub(crate) fn shown(limit: usize, len: usize) -> usize {
    if limit == 0 { len } else { limit.min(len) }
}

/// A number for a table (fixed `digits` decimals) or, when `raw` (CSV), as it is; null stays null.
pub(crate) fn fixed(x: Option<f64>, digits: usize, raw: bool) -> Value {
    match x {
        None => Value::Null,
        Some(v) if raw => Value::from(v),
        Some(v) => Value::from(format!("{v:.digits$}")),
    }
}
