//! The log's uncompacted tail as tables every query reads, the data's stamp, and compaction into the workspace.

use super::*;

/// Batches grouped by table.
pub fn group(batches: Vec<(Table, RecordBatch)>) -> HashMap<Table, Vec<RecordBatch>> {
    let mut by: HashMap<Table, Vec<RecordBatch>> = HashMap::new();
    for (t, b) in batches {
        by.entry(t).or_default().push(b);
    }
    by
}

/// The log records not yet compacted into the tables, as rows of the canonical tables.
#[derive(Debug, Default)]
pub struct Tail {
    /// Rows per table.
    pub tables: HashMap<Table, Vec<RecordBatch>>,
    /// Rejected messages as quarantine rows.
    pub(crate) quarantine: QuarantineRows,
    /// Where the valid log ends.
    pub end: WalPosition,
    /// Messages accepted in the tail.
    pub messages: u64,
}

impl Tail {
    /// Rows of a table in the tail.
    pub fn rows(&self, table: Table) -> u64 {
        self.tables
            .get(&table)
            .map_or(0, |b| b.iter().map(|b| b.num_rows() as u64).sum())
    }

    /// The newest `ts` of the tail's events, orders, reviews and exposures.
    pub fn newest(&self) -> Option<i64> {
        use datafusion::arrow::array::TimestampMicrosecondArray;
        let mut max: Option<i64> = None;
        for (t, batches) in &self.tables {
            let Some(i) = t.columns().iter().position(|c| c.name == "ts") else {
                continue;
            };
            for b in batches {
                if let Some(a) = b
                    .column(i)
                    .as_any()
                    .downcast_ref::<TimestampMicrosecondArray>()
                    && let Some(m) = datafusion::arrow::compute::max(a)
                {
                    max = Some(max.map_or(m, |x| x.max(m)));
                }
            }
        }
        max
    }

    /// The quarantine rows of the tail as a batch of the quarantine table.
    pub fn quarantine_batch(&self) -> Result<Option<RecordBatch>> {
        if self.quarantine.is_empty() {
            return Ok(None);
        }
        crate::storage::quarantine::quarantine_batch("wal", &self.quarantine).map(Some)
    }
}

/// Reads the log after `from` (up to `upto`, or its valid end) into table rows, and with
/// `keep_ids` the messageIds read.
pub(super) fn read_tail(
    root: &std::path::Path,
    from: WalPosition,
    upto: Option<WalPosition>,
    keep_ids: bool,
) -> Result<(Tail, Vec<String>)> {
    let mut c = Collected::keeping_ids(keep_ids);
    let mut last = from;
    wal::read_from(&wal::dir(root), from, |pos, payload| {
        if upto.is_some_and(|u| pos > u) {
            return Ok(());
        }
        last = pos;
        c.add_record(payload)
    })?;
    let messages = c.accepted;
    let ids = c.ids.take().unwrap_or_default();
    let (tables, quarantine) = c.finish()?;
    let tail = Tail {
        tables: group(tables),
        quarantine,
        end: last,
        messages,
    };
    Ok((tail, ids))
}

/// The uncompacted tail of the collector's log for a manifest (None when there is no log or
/// nothing after the compacted position). A segment removed by a compaction between reading the
/// manifest and the log makes this re-read the manifest.
pub fn tail(ws: &Workspace, manifest: &mut Manifest) -> Result<Option<Tail>> {
    let dir = wal::dir(ws.root());
    if !dir.exists() {
        return Ok(None);
    }
    for _ in 0..5 {
        let from = manifest.collector.unwrap_or_default();
        match read_tail(ws.root(), from, None, false) {
            Ok((t, _)) if t.messages == 0 && t.quarantine.is_empty() => return Ok(None),
            Ok((t, _)) => return Ok(Some(t)),
            Err(Error::LogMoved { .. }) => *manifest = ws.manifest()?,
            Err(e) => return Err(e),
        }
    }
    Err(Error::Internal(
        "the collector's log kept moving under the reader".into(),
    ))
}

/// What the workspace's data is at this moment, for caches of analysis results: the manifest's
/// version, and the collector log's newest segment and its length. The log only grows at its
/// newest segment and loses segments only in a compaction, which publishes a new manifest, so
/// an unchanged stamp means every query reads the same rows.
pub fn data_stamp(ws: &Workspace) -> Result<(u64, u64, u64)> {
    data_stamp_of(ws, &ws.manifest()?)
}

/// [`data_stamp`] for a manifest already read.
pub fn data_stamp_of(ws: &Workspace, manifest: &Manifest) -> Result<(u64, u64, u64)> {
    let version = manifest.version;
    let dir = wal::dir(ws.root());
    let Some(&newest) = wal::segments(&dir)?.last() else {
        return Ok((version, 0, 0));
    };
    let path = wal::segment_path(&dir, newest);
    let len = match std::fs::metadata(&path) {
        Ok(m) => m.len(),
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => 0,
        Err(e) => return Err(Error::io(&path, e)),
    };
    Ok((version, newest, len))
}

/// A table's small files are merged once it has this many…
pub const MERGE_AT_FILES: usize = 16;
/// …of fewer rows than this each.
pub const MERGE_BELOW_ROWS: u64 = 250_000;

/// The rows of some of a table's files, each batch brought to the table's current schema (files
/// written before a column existed get it as nulls).
pub(super) fn read_conformed(
    ws: &Workspace,
    files: &[DataFile],
    table: Table,
) -> Result<Vec<RecordBatch>> {
    use datafusion::arrow::array::new_null_array;
    use datafusion::arrow::compute::cast;
    use datafusion::parquet::arrow::arrow_reader::ParquetRecordBatchReaderBuilder;
    let schema = table.schema();
    let mut out = Vec::new();
    for f in files {
        let path = ws.path_of(f);
        let file = std::fs::File::open(&path).map_err(|e| Error::io(&path, e))?;
        let reader = ParquetRecordBatchReaderBuilder::try_new(file)
            .and_then(|b| b.build())
            .map_err(|e| Error::parquet(&path, e))?;
        for batch in reader {
            let batch = batch?;
            let cols = schema
                .fields()
                .iter()
                .map(|field| match batch.column_by_name(field.name()) {
                    Some(c) => cast(c, field.data_type()),
                    None => Ok(new_null_array(field.data_type(), batch.num_rows())),
                })
                .collect::<std::result::Result<Vec<_>, _>>()?;
            out.push(RecordBatch::try_new(schema.clone(), cols)?);
        }
    }
    Ok(out)
}

/// What one compaction did.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub struct Compacted {
    /// Messages moved into the tables.
    pub messages: u64,
    /// Rejected messages moved into the quarantine.
    pub rejected: u64,
    /// The new compacted position.
    pub upto: WalPosition,
}

/// Moves the log's records up to `upto` (a position the log has made durable) into the tables
/// in one commit, records the new position in the manifest, then removes fully compacted
/// segments. Readers see each record exactly once throughout: from the log before the commit,
/// from the tables after it. `before_publish` gets the compacted messageIds first (the collector
/// records them, so a crash between the two never forgets a stored message).
pub fn compact(
    writer: &Writer,
    upto: WalPosition,
    before_publish: impl FnOnce(&[String]) -> Result<()>,
) -> Result<Compacted> {
    let mut commit = writer.begin()?;
    let from = commit.base().collector.unwrap_or_default();
    if upto <= from {
        return Ok(Compacted {
            upto: from,
            ..Compacted::default()
        });
    }
    let (t, ids) = read_tail(writer.workspace().root(), from, Some(upto), true)?;
    let rejected = t.quarantine.len() as u64;
    for table in Table::ALL {
        let Some(b) = t.tables.get(&table) else {
            continue;
        };
        // Each compaction writes a file per table; once a table holds many small ones, they are
        // merged with the new rows into one, so a collector running for weeks keeps few files.
        let small: Vec<DataFile> = commit
            .base()
            .files(table)
            .iter()
            .filter(|f| f.rows < MERGE_BELOW_ROWS)
            .cloned()
            .collect();
        if small.len() + 1 >= MERGE_AT_FILES {
            let mut all = read_conformed(writer.workspace(), &small, table)?;
            all.extend(b.iter().cloned());
            commit.replace_files(table, &small, &all)?;
        } else {
            commit.stage(Some(table), b)?;
        }
    }
    if !t.quarantine.is_empty() {
        let q = crate::storage::quarantine::quarantine_batch(commit.id(), &t.quarantine)?;
        commit.stage(None, &[q])?;
    }
    commit.set_collector(upto);
    before_publish(&ids)?;
    commit.publish()?;
    wal::remove_before(&wal::dir(writer.workspace().root()), upto)?;
    Ok(Compacted {
        messages: t.messages,
        rejected,
        upto,
    })
}
