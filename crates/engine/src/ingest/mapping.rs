//! Mapping files: how a source's columns and values become rows of the canonical tables.
//!
//! A mapping is TOML (see docs/mapping.md); presets are mappings shipped inside shoplens.

use std::collections::BTreeMap;

use serde::Deserialize;

use crate::error::{Error, Result};
use crate::storage::schema::Table;

/// A preset or mapping file: one or more layouts, each reading some files of a source.
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct MappingFile {
    /// Name shown in summaries and stored with each ingest.
    pub name: Option<String>,
    /// The shop's IANA time zone; local timestamps in the source are read in it.
    pub timezone: Option<String>,
    /// Currency of the source's amounts (ISO 4217).
    pub currency: Option<String>,
    /// customers.member_tier values that mean "not a member" (default: empty and `none`);
    /// stored as the workspace's setting.
    pub non_member_tiers: Option<Vec<String>>,
    /// A single layout (the common case) …
    pub source: Option<Source>,
    /// … with its tables.
    #[serde(default, rename = "table")]
    pub tables: Vec<TableMap>,
    /// Or several layouts, chosen per file by `files`.
    #[serde(default, rename = "layout")]
    pub layouts: Vec<Layout>,
    /// Notes shown in the summary (what the source lacks, what was synthesised).
    #[serde(default)]
    pub notes: Vec<String>,
}

/// One file layout of a source and the tables it feeds.
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Layout {
    /// Name of the layout.
    pub name: Option<String>,
    /// How to read the file.
    pub source: Source,
    /// Tables fed by each row.
    #[serde(rename = "table")]
    pub tables: Vec<TableMap>,
}

/// File format.
#[derive(Debug, Clone, Copy, Default, Deserialize, PartialEq, Eq)]
#[serde(rename_all = "lowercase")]
pub enum Format {
    /// Delimited text.
    #[default]
    Csv,
    /// One basket per line, items separated by the delimiter (default `,`), any number of them.
    Baskets,
    /// One JSON object per line.
    Jsonl,
    /// Apache Parquet.
    Parquet,
}

/// Text encoding of a source.
#[derive(Debug, Clone, Copy, Default, Deserialize, PartialEq, Eq)]
#[serde(rename_all = "kebab-case")]
pub enum Encoding {
    /// UTF-8 (a BOM is skipped).
    #[default]
    #[serde(alias = "utf8")]
    Utf8,
    /// GBK (Chinese Windows exports); read as its superset GB18030.
    Gbk,
    /// GB18030.
    Gb18030,
}

/// How to read a source file.
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Source {
    /// File format (default csv).
    #[serde(default)]
    pub format: Format,
    /// Field delimiter: one character, `\t`, or `whitespace` for runs of spaces and tabs.
    pub delimiter: Option<String>,
    /// Whether the first line names the columns (default true for csv).
    pub header: Option<bool>,
    /// Column names for a file without header, in order.
    #[serde(default)]
    pub columns: Vec<String>,
    /// Text encoding (default utf-8).
    #[serde(default)]
    pub encoding: Encoding,
    /// Glob on the file name selecting this layout (presets with several layouts).
    pub files: Option<String>,
}

/// How one canonical table is filled from the rows of a layout.
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct TableMap {
    /// Canonical table name.
    pub name: String,
    /// Only rows meeting this condition feed the table.
    pub when: Option<Cond>,
    /// One output row per distinct value of these (target) columns; the other columns aggregate
    /// with their `agg` (default `first`): a line-level file split into orders.
    #[serde(default)]
    pub group_by: Vec<String>,
    /// Baskets only: one output row per item of the line.
    #[serde(default)]
    pub for_each_item: bool,
    /// Rows whose value in `column` is not a key of `table.key` (stored, or from this ingest's
    /// earlier files) are quarantined (or excluded, when `exclude` is set).
    pub references: Option<Reference>,
    /// Target column → how to compute it.
    pub columns: BTreeMap<String, ColumnSpec>,
}

/// A reference from a source column to another table's keys.
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Reference {
    /// Target column of this table holding the reference.
    pub column: String,
    /// `table.column` referenced.
    pub to: String,
    /// When true, rows without a match are excluded (counted apart, with `reason`) instead of
    /// quarantined: for sources restricted to a sample on purpose.
    #[serde(default)]
    pub exclude: bool,
    /// Reason shown for rows without a match.
    pub reason: Option<String>,
}

impl Reference {
    /// The referenced table and column, when `to` names a column of a canonical table.
    pub fn target(&self) -> Option<(Table, &str)> {
        let (t, c) = self.to.split_once('.')?;
        let t = Table::from_name(t)?;
        t.column(c).is_some().then_some((t, c))
    }
}

/// A column's value: a source column name as a plain string, or a full spec.
#[derive(Debug, Clone, Deserialize)]
#[serde(untagged)]
pub enum ColumnSpec {
    /// The value of this source column.
    From(String),
    /// A full specification.
    Full(Box<ValueSpec>),
}

impl ColumnSpec {
    /// The spec as a full specification.
    pub fn full(&self) -> ValueSpec {
        match self {
            ColumnSpec::From(c) => ValueSpec {
                column: Some(c.clone()),
                ..ValueSpec::default()
            },
            ColumnSpec::Full(v) => (**v).clone(),
        }
    }
}

/// Synthesised values a source lacks.
#[derive(Debug, Clone, Copy, Deserialize, PartialEq, Eq)]
#[serde(rename_all = "snake_case")]
pub enum Synth {
    /// Physical line number in the file (1-based, header included).
    Line,
    /// Data row number (1-based, header excluded).
    Row,
    /// `<first 8 hex of the file's BLAKE3 content hash>-<line>`: unique across files.
    RowId,
    /// Baskets: the item's position in its line (1-based).
    ItemPosition,
    /// Baskets: the item itself (trimmed).
    Item,
    /// The source file's name.
    FileName,
}

/// How per-group values combine when a table has `group_by`.
#[derive(Debug, Clone, Copy, Default, Deserialize, PartialEq, Eq)]
#[serde(rename_all = "snake_case")]
pub enum Agg {
    /// The first non-null value in file order.
    #[default]
    First,
    /// The sum (numbers and money).
    Sum,
    /// The smallest value.
    Min,
    /// The largest value.
    Max,
    /// The number of rows in the group.
    Count,
}

/// Epoch units for numeric timestamps.
#[derive(Debug, Clone, Copy, Deserialize, PartialEq, Eq)]
#[serde(rename_all = "lowercase")]
pub enum Epoch {
    /// Seconds.
    S,
    /// Milliseconds.
    Ms,
    /// Microseconds.
    Us,
}

impl Epoch {
    /// Microseconds in one unit.
    pub fn micros(self) -> i64 {
        match self {
            Epoch::S => 1_000_000,
            Epoch::Ms => 1_000,
            Epoch::Us => 1,
        }
    }
}

/// A timestamp built from a per-user sequence of day gaps (sources without calendar dates).
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Sequence {
    /// Source column grouping the sequence (the user).
    pub group: String,
    /// Source column with days since the previous row of the group (empty on the first).
    pub gap_days: String,
    /// Gaps equal to this value are capped in the source (the true gap is at least that long).
    pub cap: Option<i64>,
    /// Source column with the day of week, 0 = Sunday.
    pub weekday: Option<String>,
    /// Source column with the hour of day.
    pub hour: Option<String>,
    /// Nominal date of the first row of every group (`YYYY-MM-DD`).
    pub start: String,
}

/// A condition on source values.
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Cond {
    /// Source column tested (omit with all/any/not).
    pub column: Option<String>,
    /// Value starts with this text.
    pub starts_with: Option<String>,
    /// Value equals this text.
    pub equals: Option<String>,
    /// Value is one of these.
    #[serde(default, rename = "in")]
    pub one_of: Vec<String>,
    /// Numeric value is less than this.
    pub lt: Option<f64>,
    /// Numeric value is greater than this.
    pub gt: Option<f64>,
    /// Numeric value is at most this.
    pub le: Option<f64>,
    /// Numeric value is at least this.
    pub ge: Option<f64>,
    /// Value is empty (true) or present (false).
    pub empty: Option<bool>,
    /// All of these hold.
    #[serde(default)]
    pub all: Vec<Cond>,
    /// Any of these holds.
    #[serde(default)]
    pub any: Vec<Cond>,
    /// This does not hold.
    pub not: Option<Box<Cond>>,
}

/// One conditional value.
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Case {
    /// Condition.
    pub when: Cond,
    /// Constant value when it holds …
    pub value: Option<String>,
    /// … or this source column's value.
    pub column: Option<String>,
}

/// A full column specification. Exactly one source of the value: `column`, `value`, `synth`,
/// `json`, `sequence` or `cases`; then optional transforms, applied in the order listed here.
#[derive(Debug, Clone, Default, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct ValueSpec {
    /// Source column (name, or 1-based position as `#3`).
    pub column: Option<String>,
    /// A constant (a value the source lacks, stated explicitly).
    pub value: Option<String>,
    /// A synthesised value.
    pub synth: Option<Synth>,
    /// A JSON object of these source columns (numbers stay numbers; empty values are left out).
    pub json: Option<Vec<String>>,
    /// A timestamp from a per-user sequence of day gaps.
    pub sequence: Option<Sequence>,
    /// Conditional values, first match wins; otherwise `column` (when given) or `default`.
    #[serde(default)]
    pub cases: Vec<Case>,
    /// Value when no case matches (or the source value is empty).
    pub default: Option<String>,
    /// Remove this prefix.
    pub strip_prefix: Option<String>,
    /// Remove this suffix (`17850.0` → `17850`).
    pub strip_suffix: Option<String>,
    /// Replace source values (exact match after trimming).
    pub map: Option<BTreeMap<String, String>>,
    /// What an unmapped value becomes: `error` (default: quarantine the row), `keep` or `null`.
    pub unmapped: Option<Unmapped>,
    /// Add these source columns (numbers and money; empty counts as 0).
    #[serde(default)]
    pub plus: Vec<String>,
    /// Multiply by this source column (numbers and money).
    pub times: Option<String>,
    /// Divide by this source column (money and floats; a zero or empty divisor gives null).
    pub divide_by: Option<String>,
    /// Absolute value.
    #[serde(default)]
    pub abs: bool,
    /// Timestamp or date format (chrono strftime); default: ISO 8601 forms.
    pub format: Option<String>,
    /// Numeric timestamps: seconds, milliseconds or microseconds since the epoch.
    pub epoch: Option<Epoch>,
    /// Time zone of this column's local timestamps, when it differs from the mapping's.
    pub timezone: Option<String>,
    /// Aggregation within a `group_by` group.
    #[serde(default)]
    pub agg: Agg,
}

/// What an unmapped value becomes.
#[derive(Debug, Clone, Copy, Default, Deserialize, PartialEq, Eq)]
#[serde(rename_all = "lowercase")]
pub enum Unmapped {
    /// Quarantine the row.
    #[default]
    Error,
    /// Keep the source value.
    Keep,
    /// Null.
    Null,
}

impl MappingFile {
    /// Parses a mapping from TOML text; `origin` names it in errors.
    pub fn parse(text: &str, origin: &str) -> Result<MappingFile> {
        let m: MappingFile = toml::from_str(text).map_err(|e| Error::Mapping {
            origin: origin.to_string(),
            reason: e.to_string(),
        })?;
        m.check(origin)?;
        Ok(m)
    }

    /// The layouts, the single-layout form included.
    pub fn layouts(&self) -> Vec<Layout> {
        let mut out = self.layouts.clone();
        if let Some(source) = &self.source {
            out.insert(
                0,
                Layout {
                    name: None,
                    source: source.clone(),
                    tables: self.tables.clone(),
                },
            );
        }
        out
    }

    fn check(&self, origin: &str) -> Result<()> {
        let bad = |reason: String| Error::Mapping {
            origin: origin.to_string(),
            reason,
        };
        if self.source.is_none() && self.layouts.is_empty() {
            return Err(bad(
                "needs a [source] with [[table]]s, or [[layout]]s".into()
            ));
        }
        if self.source.is_none() && !self.tables.is_empty() {
            return Err(bad("[[table]] needs a [source]".into()));
        }
        if let Some(tz) = &self.timezone {
            tz.parse::<chrono_tz::Tz>()
                .map_err(|_| bad(format!("unknown time zone `{tz}`")))?;
        }
        for layout in self.layouts() {
            if layout.tables.is_empty() {
                return Err(bad("a layout feeds no table".into()));
            }
            for t in &layout.tables {
                let table = Table::from_name(&t.name).ok_or_else(|| {
                    bad(format!(
                        "unknown table `{}` (tables: {})",
                        t.name,
                        Table::ALL.map(Table::name).join(", ")
                    ))
                })?;
                for (col, spec) in &t.columns {
                    if table.column(col).is_none() {
                        return Err(bad(format!(
                            "table `{}` has no column `{col}` (see docs/data-model.md)",
                            t.name
                        )));
                    }
                    let s = spec.full();
                    let sources = [
                        s.column.is_some() && s.cases.is_empty(),
                        s.value.is_some(),
                        s.synth.is_some(),
                        s.json.is_some(),
                        s.sequence.is_some(),
                        !s.cases.is_empty(),
                    ]
                    .iter()
                    .filter(|b| **b)
                    .count();
                    if sources > 1 || (sources == 0 && s.default.is_none()) {
                        return Err(bad(format!(
                            "`{}.{col}` needs exactly one of column, value, synth, json, sequence or cases",
                            t.name
                        )));
                    }
                }
                for required in table.columns().iter().filter(|c| c.required) {
                    if !t.columns.contains_key(required.name) {
                        return Err(bad(format!(
                            "table `{}` needs its required column `{}`",
                            t.name, required.name
                        )));
                    }
                }
                for g in &t.group_by {
                    if !t.columns.contains_key(g) {
                        return Err(bad(format!(
                            "group_by column `{g}` is not mapped in `{}`",
                            t.name
                        )));
                    }
                }
                if let Some(r) = &t.references
                    && (r.target().is_none() || !t.columns.contains_key(&r.column))
                {
                    return Err(bad(format!(
                        "bad reference `{}` → `{}` in `{}`",
                        r.column, r.to, t.name
                    )));
                }
            }
        }
        Ok(())
    }
}
