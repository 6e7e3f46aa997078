//! Querying the workspace with DataFusion: every canonical table (and the quarantine) registered
//! from exactly the files the manifest publishes.

mod rows;

pub use rows::Rows;

use std::collections::HashSet;
use std::sync::Arc;

use datafusion::arrow::array::{
    Array, Date32Array, Int64Array, StringArray, TimestampMicrosecondArray,
};
use datafusion::arrow::compute::cast;
use datafusion::arrow::datatypes::{DataType, SchemaRef};
use datafusion::arrow::record_batch::RecordBatch;
use datafusion::catalog::MemTable;
use datafusion::datasource::file_format::parquet::ParquetFormat;
use datafusion::datasource::listing::{
    ListingOptions, ListingTable, ListingTableConfig, ListingTableUrl,
};
use datafusion::parquet::arrow::ProjectionMask;
use datafusion::parquet::arrow::arrow_reader::ParquetRecordBatchReaderBuilder;
use datafusion::prelude::{SessionConfig, SessionContext};
use serde::Serialize;

use crate::calendar;
use crate::error::{Error, Result};
use crate::storage::quarantine::quarantine_schema;
use crate::storage::schema::Table;
use crate::storage::workspace::{DataFile, Manifest, Workspace};

/// A DataFusion session over a published state of the workspace.
pub async fn context(ws: &Workspace) -> Result<(SessionContext, Manifest)> {
    let (ctx, manifest, _) = context_with_tail(ws).await?;
    Ok((ctx, manifest))
}

/// [`context`], and the collector's uncompacted log rows it includes.
async fn context_with_tail(
    ws: &Workspace,
) -> Result<(SessionContext, Manifest, Option<crate::collector::Tail>)> {
    let mut manifest = ws.manifest()?;
    // Events the collector acknowledged but has not compacted yet are read from its log.
    let tail = crate::collector::tail(ws, &mut manifest)?;
    let config = SessionConfig::new()
        .with_information_schema(true)
        .with_target_partitions(num_partitions());
    let ctx = crate::cluster::session(ws.engine(), config).await?;
    if ws.engine().is_cluster()
        && let Some(t) = &tail
    {
        // Executors read files only: the log's rows are not in any file yet.
        return Err(Error::Invalid(format!(
            "the collector's log holds {} messages not yet compacted into the tables, which a \
             Ballista cluster cannot read; wait for the next compaction (every few seconds while \
             `shoplens serve` runs, and at its shutdown) and run again",
            t.messages
        )));
    }
    for t in Table::ALL {
        let extra = tail
            .as_ref()
            .and_then(|x| x.tables.get(&t))
            .map(Vec::as_slice)
            .unwrap_or_default();
        register(&ctx, ws, t.name(), t.schema(), manifest.files(t), extra).await?;
    }
    let q = match &tail {
        Some(t) => t.quarantine_batch()?.into_iter().collect(),
        None => Vec::new(),
    };
    register(
        &ctx,
        ws,
        "quarantine",
        quarantine_schema(),
        &manifest.quarantine,
        &q,
    )
    .await?;
    Ok((ctx, manifest, tail))
}

/// An empty Parquet file with a table's schema, under the workspace's `empty/` folder (written
/// once, atomically; named by the schema so a changed schema gets a new file).
fn empty_file(ws: &Workspace, name: &str, schema: &SchemaRef) -> Result<DataFile> {
    let key = blake3::hash(format!("{schema:?}").as_bytes()).to_hex();
    let rel = format!("empty/{name}-{}.parquet", &key[..16]);
    let path = ws.root().join(&rel);
    if !path.exists() {
        let dir = ws.root().join("empty");
        std::fs::create_dir_all(&dir).map_err(|e| Error::io(&dir, e))?;
        let tmp = path.with_extension(format!("tmp{}", std::process::id()));
        let file = std::fs::File::create(&tmp).map_err(|e| Error::io(&tmp, e))?;
        let mut w =
            datafusion::parquet::arrow::ArrowWriter::try_new(file, Arc::clone(schema), None)
                .map_err(|e| Error::parquet(&tmp, e))?;
        w.write(&RecordBatch::new_empty(Arc::clone(schema)))
            .map_err(|e| Error::parquet(&tmp, e))?;
        w.close().map_err(|e| Error::parquet(&tmp, e))?;
        std::fs::rename(&tmp, &path).map_err(|e| Error::io(&path, e))?;
    }
    Ok(DataFile { path: rel, rows: 0 })
}

fn num_partitions() -> usize {
    std::thread::available_parallelism().map_or(2, |n| n.get())
}

async fn register(
    ctx: &SessionContext,
    ws: &Workspace,
    name: &str,
    schema: SchemaRef,
    files: &[DataFile],
    extra: &[RecordBatch],
) -> Result<()> {
    let empty;
    let files = if files.is_empty() && crate::cluster::is_cluster(ctx) {
        // A cluster plans file scans only: an empty table is one empty Parquet file.
        empty = [empty_file(ws, name, &schema)?];
        &empty[..]
    } else {
        files
    };
    if files.is_empty() {
        let rows = MemTable::try_new(schema, vec![extra.to_vec()])?;
        ctx.register_table(name, Arc::new(rows))?;
        return Ok(());
    }
    let root = std::fs::canonicalize(ws.root()).map_err(|e| Error::Io {
        path: ws.root().to_path_buf(),
        cause: e,
    })?;
    let urls = files
        .iter()
        .map(|f| ListingTableUrl::parse(root.join(&f.path).to_string_lossy()))
        .collect::<std::result::Result<Vec<_>, _>>()?;
    let options =
        ListingOptions::new(Arc::new(ParquetFormat::default())).with_file_extension(".parquet");
    let view = view_schema(&schema);
    let config = ListingTableConfig::new_with_multi_paths(urls)
        .with_listing_options(options)
        .with_schema(Arc::clone(&view));
    let listing = Arc::new(ListingTable::try_new(config)?);
    if extra.is_empty() {
        ctx.register_table(name, listing)?;
        return Ok(());
    }
    // Stored files and the log's rows, as one table.
    let cast_batches = extra
        .iter()
        .map(|b| {
            let cols = b
                .columns()
                .iter()
                .zip(view.fields())
                .map(|(c, f)| cast(c, f.data_type()))
                .collect::<std::result::Result<Vec<_>, _>>()?;
            Ok(RecordBatch::try_new(Arc::clone(&view), cols)?)
        })
        .collect::<Result<Vec<_>>>()?;
    let rows = Arc::new(MemTable::try_new(Arc::clone(&view), vec![cast_batches])?);
    use datafusion::datasource::provider_as_source;
    use datafusion::logical_expr::LogicalPlanBuilder;
    let plan = LogicalPlanBuilder::scan(name, provider_as_source(listing), None)?
        .union(LogicalPlanBuilder::scan(name, provider_as_source(rows), None)?.build()?)?
        .build()?;
    ctx.register_table(
        name,
        Arc::new(datafusion::catalog::view::ViewTable::new(plan, None)),
    )?;
    Ok(())
}

/// Text columns read as string views: Parquet strings decode without copying short values and
/// group and compare faster (DataFusion's own default for Parquet).
fn view_schema(schema: &SchemaRef) -> SchemaRef {
    let fields: Vec<_> = schema
        .fields()
        .iter()
        .map(|f| match f.data_type() {
            DataType::Utf8 => Arc::new(f.as_ref().clone().with_data_type(DataType::Utf8View)),
            _ => Arc::clone(f),
        })
        .collect();
    Arc::new(datafusion::arrow::datatypes::Schema::new_with_metadata(
        fields,
        schema.metadata().clone(),
    ))
}

/// Runs a SQL query over the workspace.
pub async fn sql(ws: &Workspace, query: &str) -> Result<(SchemaRef, Vec<RecordBatch>)> {
    let (ctx, _) = context(ws).await?;
    trace(query);
    let df = ctx.sql(query).await?;
    let schema: SchemaRef = Arc::new(df.schema().as_arrow().clone());
    let batches = df.collect().await?;
    Ok((schema, batches))
}

/// With `SHOPLENS_TRACE_SQL` set, each query goes to stderr before it runs (to see which one
/// is slow, or which one a cluster does not finish).
pub fn trace(query: &str) {
    if std::env::var_os("SHOPLENS_TRACE_SQL").is_some() {
        use std::io::Write as _;
        let _ = writeln!(std::io::stderr().lock(), "sql: {query}");
    }
}

/// The single integer a query returns (0 for no row or null).
pub async fn count(ctx: &SessionContext, q: &str) -> Result<i64> {
    let batches = ctx.sql(q).await?.collect().await?;
    let Some(b) = batches.iter().find(|b| b.num_rows() > 0) else {
        return Ok(0);
    };
    let a = cast(b.column(0), &DataType::Int64)?;
    Ok(a.as_any()
        .downcast_ref::<Int64Array>()
        .filter(|a| !a.is_null(0))
        .map_or(0, |a| a.value(0)))
}

/// Row count, users and time range of one table.
#[derive(Debug, Clone, Serialize, PartialEq, schemars::JsonSchema)]
pub struct TableStats {
    /// Table name.
    pub name: String,
    /// Rows stored.
    pub rows: u64,
    /// Distinct non-null user ids (null when the table has no user_id column).
    pub users: Option<u64>,
    /// Earliest value of the table's time column, in the shop's time zone (ISO 8601 with offset).
    pub min_ts: Option<String>,
    /// Latest value of the table's time column.
    pub max_ts: Option<String>,
}

/// Statistics of every canonical table.
pub async fn table_stats(ws: &Workspace) -> Result<Vec<TableStats>> {
    let (ctx, manifest, tail) = context_with_tail(ws).await?;
    let tz = calendar::zone(&manifest.settings);
    let mut out = Vec::new();
    for t in Table::ALL {
        let rows = manifest.rows(t) + tail.as_ref().map_or(0, |x| x.rows(t));
        let mut stats = TableStats {
            name: t.name().into(),
            rows,
            users: None,
            min_ts: None,
            max_ts: None,
        };
        if t.has_user() {
            stats.users = Some(0);
        }
        if rows > 0 {
            let users = if t.has_user() {
                "count(DISTINCT user_id)"
            } else {
                "CAST(NULL AS BIGINT)"
            };
            let (min, max) = match t.time_column() {
                Some(c) => (format!("min({c})"), format!("max({c})")),
                None => ("NULL".into(), "NULL".into()),
            };
            let q = format!(
                "SELECT {users} AS users, {min} AS min_ts, {max} AS max_ts FROM {}",
                t.name()
            );
            let batches = ctx.sql(&q).await?.collect().await?;
            if let Some(b) = batches.first().filter(|b| b.num_rows() == 1) {
                if t.has_user() {
                    stats.users = b
                        .column(0)
                        .as_any()
                        .downcast_ref::<Int64Array>()
                        .map(|a| a.value(0) as u64);
                }
                stats.min_ts = instant_text(b.column(1).as_ref(), &tz);
                stats.max_ts = instant_text(b.column(2).as_ref(), &tz);
            }
        }
        out.push(stats);
    }
    Ok(out)
}

fn instant_text(a: &dyn Array, tz: &chrono_tz::Tz) -> Option<String> {
    if a.is_null(0) {
        return None;
    }
    if let Some(ts) = a.as_any().downcast_ref::<TimestampMicrosecondArray>() {
        return Some(calendar::format_instant(ts.value(0), tz));
    }
    if let Some(d) = a.as_any().downcast_ref::<Date32Array>() {
        return d.value_as_date(0).map(|d| d.to_string());
    }
    None
}

/// `as_of` when given, else the newest instant in the workspace; `empty` is the error when the
/// workspace has no timestamps at all.
pub async fn as_of_or_newest(ws: &Workspace, as_of: Option<i64>, empty: &str) -> Result<i64> {
    match as_of {
        Some(a) => Ok(a),
        None => newest_instant(ws)
            .await?
            .ok_or_else(|| crate::error::Error::Invalid(empty.into())),
    }
}

/// The newest instant in the workspace (events, orders, reviews, exposures): the default
/// `as_of` of every analysis. None for a workspace without timestamps.
pub async fn newest_instant(ws: &Workspace) -> Result<Option<i64>> {
    let mut manifest = ws.manifest()?;
    let tail = crate::collector::tail(ws, &mut manifest)?;
    // A session only for tables whose files lack statistics (registering every table is not free).
    let mut ctx: Option<SessionContext> = None;
    let mut newest: Option<i64> = tail.as_ref().and_then(crate::collector::Tail::newest);
    for t in [
        Table::Events,
        Table::Orders,
        Table::Reviews,
        Table::Exposures,
        Table::Redemptions,
    ] {
        if manifest.rows(t) == 0 {
            continue;
        }
        // Parquet footers hold each row group's max: no scan when every file has them.
        if let Some(max) = footer_max(ws, manifest.files(t), t, "ts") {
            newest = Some(newest.map_or(max, |n| n.max(max)));
            continue;
        }
        if ctx.is_none() {
            ctx = Some(context(ws).await?.0);
        }
        let Some(ctx) = &ctx else { continue };
        let batches = ctx
            .sql(&format!("SELECT max(ts) FROM {}", t.name()))
            .await?
            .collect()
            .await?;
        if let Some(a) = batches.first().and_then(|b| {
            b.column(0)
                .as_any()
                .downcast_ref::<TimestampMicrosecondArray>()
                .cloned()
        }) && a.len() == 1
            && !a.is_null(0)
        {
            newest = Some(newest.map_or(a.value(0), |n| n.max(a.value(0))));
        }
    }
    Ok(newest)
}

/// The largest value of an INT64-stored column (timestamps) from the files' row-group statistics;
/// None when a file cannot be read or a row group has no maximum (then callers scan).
fn footer_max(ws: &Workspace, files: &[DataFile], table: Table, column: &str) -> Option<i64> {
    use datafusion::parquet::file::statistics::Statistics;
    let idx = table.columns().iter().position(|c| c.name == column)?;
    let mut max: Option<i64> = None;
    for f in files {
        let file = std::fs::File::open(ws.path_of(f)).ok()?;
        let builder = ParquetRecordBatchReaderBuilder::try_new(file).ok()?;
        for rg in builder.metadata().row_groups() {
            if rg.num_rows() == 0 {
                continue;
            }
            let col = rg.column(idx);
            if col.column_descr().name() != column {
                return None;
            }
            match col.statistics() {
                Some(Statistics::Int64(v)) => {
                    // All-null row groups have no maximum and change nothing.
                    if let Some(m) = v.max_opt() {
                        max = Some(max.map_or(*m, |x| x.max(*m)));
                    } else if v.null_count_opt() != Some(rg.num_rows() as u64) {
                        return None;
                    }
                }
                _ => return None,
            }
        }
    }
    max
}

/// Every distinct value of `table.column` stored in the workspace, as text (reference checks).
pub(crate) fn stored_strings(
    ws: &Workspace,
    manifest: &Manifest,
    table: Table,
    column: &str,
) -> Result<HashSet<String>> {
    let mut out = HashSet::new();
    let Some(idx) = table.columns().iter().position(|c| c.name == column) else {
        return Ok(out);
    };
    for f in manifest.files(table) {
        let path = ws.path_of(f);
        let file = std::fs::File::open(&path).map_err(|e| Error::Io {
            path: path.clone(),
            cause: e,
        })?;
        let builder =
            ParquetRecordBatchReaderBuilder::try_new(file).map_err(|e| Error::parquet(&path, e))?;
        let mask = ProjectionMask::roots(builder.parquet_schema(), [idx]);
        let reader = builder
            .with_projection(mask)
            .build()
            .map_err(|e| Error::parquet(&path, e))?;
        for batch in reader {
            let a = cast(batch?.column(0), &DataType::Utf8)?;
            if let Some(s) = a.as_any().downcast_ref::<StringArray>() {
                out.extend(s.iter().flatten().map(str::to_string));
            }
        }
    }
    Ok(out)
}

/// `shoplens tables`: no parameters.
#[derive(
    Debug,
    Clone,
    Default,
    PartialEq,
    Eq,
    Serialize,
    serde::Deserialize,
    clap::Args,
    schemars::JsonSchema,
)]
#[serde(deny_unknown_fields)]
pub struct TablesParams {}

/// What `shoplens tables` answers.
#[derive(Debug, Clone, Serialize, schemars::JsonSchema)]
pub struct TablesReport {
    /// Every table.
    pub tables: Vec<TableStats>,
    /// The instant analyses run as of: `--as-of`, or the newest timestamp in the workspace.
    pub as_of: Option<String>,
}

/// Every table's rows, users and time range, and the as-of instant (`as_of`, else the newest
/// timestamp in the workspace; never the wall clock), in the shop's zone `tz`.
pub async fn tables(
    ws: &Workspace,
    tz: &chrono_tz::Tz,
    as_of: Option<i64>,
) -> Result<TablesReport> {
    let tables = table_stats(ws).await?;
    let at = match as_of {
        Some(t) => Some(t),
        None => newest_instant(ws).await?,
    };
    Ok(TablesReport {
        tables,
        as_of: at.map(|t| calendar::format_instant(t, tz)),
    })
}

/// `shoplens quarantine`: rows set aside by ingest.
#[derive(
    Debug, Clone, PartialEq, Eq, Serialize, serde::Deserialize, clap::Args, schemars::JsonSchema,
)]
#[serde(default, deny_unknown_fields)]
pub struct QuarantineParams {
    /// Show at most this many rows (0 = all).
    #[arg(long, default_value_t = 50)]
    pub limit: usize,
}

impl Default for QuarantineParams {
    fn default() -> QuarantineParams {
        crate::params::flag_defaults()
    }
}

impl QuarantineParams {
    /// The rows set aside, with file, line, column and reason, in the order they were stored.
    pub async fn run(&self, ws: &Workspace) -> Result<Rows> {
        let limit = if self.limit == 0 {
            String::new()
        } else {
            format!(" LIMIT {}", self.limit)
        };
        let q = format!(
            "SELECT \"commit\", file, line, \"column\", reason, raw FROM quarantine ORDER BY \"commit\", file, line{limit}"
        );
        let (schema, batches) = sql(ws, &q).await?;
        Rows::of(&schema, &batches, &chrono_tz::UTC)
    }
}
