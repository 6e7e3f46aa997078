//! Reading one file with a layout, in parallel chunks: records → evaluated rows → Arrow builders
//! (the row path), or records → columns (see `plan::columns`) → Parquet row groups encoded on
//! the worker when no later check can reject a row.

use std::borrow::Cow;
use std::collections::HashSet;
use std::sync::Mutex;
use std::sync::atomic::{AtomicU64, Ordering};

use chrono_tz::Tz;
use datafusion::arrow::array::{Array, StringArray};
use datafusion::arrow::compute::cast;
use datafusion::arrow::datatypes::DataType;
use datafusion::arrow::record_batch::RecordBatch;
use datafusion::parquet::arrow::arrow_reader::ParquetRecordBatchReaderBuilder;

use crate::error::{Error, Result};
use crate::ingest::Progress;
use crate::ingest::build::TableBuilder;
use crate::ingest::mapping::{Encoding, Format, Layout};
use crate::ingest::plan::{FileCtx, Plan, Records, RowCtx, RowError, SeqState};
use crate::ingest::source::{self, Chunk, Delim, Record, TextSpec};
use crate::ingest::value::Val;
use crate::storage::quarantine::QRow;
use crate::storage::schema::Table;
use crate::storage::workspace::GroupStream;

/// Rows of one table from one file: built batches with each row's source line, (for `group_by`
/// tables) rows still to aggregate, or (when no later check can reject a row) the number of
/// rows already written to the table's [`GroupStream`].
pub(crate) enum TableOut {
    Built(Vec<(RecordBatch, Vec<u64>)>),
    Rows(Vec<(u64, Vec<Val<'static>>)>),
    Streamed(usize),
}

/// The file each table's rows go to when they are written while read.
pub(crate) type Streams = std::collections::HashMap<Table, GroupStream>;

/// Everything read from one file.
pub(crate) struct FileOutput {
    pub(crate) plan: Plan,
    pub(crate) tables: Vec<TableOut>,
    pub(crate) quarantine: Vec<QRow>,
    pub(crate) read: u64,
}

const CHUNK_BYTES: usize = 8 << 20;

/// Per-chunk accumulation.
struct ChunkState<'p> {
    plan: &'p Plan,
    builders: Vec<Option<(TableBuilder, Vec<u64>)>>,
    rows: Vec<Vec<(u64, Vec<Val<'static>>)>>,
    quarantine: Vec<QRow>,
    read: u64,
    seq: SeqState,
    scratch_err: Option<Error>,
}

impl<'p> ChunkState<'p> {
    fn new(plan: &'p Plan, capacity: usize) -> ChunkState<'p> {
        ChunkState {
            plan,
            builders: plan
                .tables
                .iter()
                .map(|t| {
                    let fed: Vec<bool> = t.cols.iter().map(Option::is_some).collect();
                    t.group_by.is_empty().then(|| {
                        (
                            TableBuilder::with_columns(t.table, capacity, &fed),
                            Vec::with_capacity(capacity),
                        )
                    })
                })
                .collect(),
            rows: plan.tables.iter().map(|_| Vec::new()).collect(),
            quarantine: Vec::new(),
            read: 0,
            seq: SeqState::default(),
            scratch_err: None,
        }
    }

    /// Counts a row that never reached evaluation and quarantines it.
    fn reject_unread(&mut self, line: u64, column: String, reason: String, raw: &[u8]) {
        self.read += 1;
        self.reject(line, RowError { column, reason }, raw);
    }

    fn reject(&mut self, line: u64, e: RowError, raw: &[u8]) {
        self.quarantine.push(QRow {
            line,
            column: e.column,
            reason: e.reason,
            raw: source::raw_text(raw),
        });
    }

    /// Evaluates one decoded record and stores its rows, or quarantines it whole.
    fn record<'a>(
        &mut self,
        line: u64,
        fields: &[Cow<'a, str>],
        items: &[Cow<'a, str>],
        raw: &[u8],
        ctx: &FileCtx,
    ) {
        self.read += 1;
        let row = RowCtx {
            fields,
            line,
            row: self.read,
        };
        let mut out = Vec::new();
        if let Err(e) = self.plan.eval(&row, items, ctx, &mut self.seq, &mut out) {
            self.reject(line, e, raw);
            return;
        }
        if out.is_empty() {
            self.reject(line, RowError::no_table(), raw);
            return;
        }
        for (ti, line, vals) in out {
            match &mut self.builders[ti] {
                Some((b, lines)) => {
                    if let Err(e) = b.push(&vals) {
                        self.scratch_err.get_or_insert(e);
                    }
                    lines.push(line);
                }
                None => self.rows[ti].push((line, vals.into_iter().map(Val::into_owned).collect())),
            }
        }
    }

    /// Evaluates a chunk's records a column at a time (see [`Plan::columnar`]); with `streams`
    /// (per table: its stream and this chunk's place in it), its rows are written there.
    fn finish_columns(
        mut self,
        recs: &Records<'_>,
        ctx: &FileCtx,
        streams: Option<Vec<(&GroupStream, usize)>>,
    ) -> Result<ChunkResult> {
        let ev = self.plan.eval_columns(recs, ctx, streams.is_none())?;
        for (r, e) in ev.rejected {
            self.reject(recs.line(r), e, recs.raw(r));
        }
        // Rows set aside while reading come first; keep the quarantine in file order.
        self.quarantine.sort_by_key(|q| q.line);
        let tables = match streams {
            Some(streams) => ev
                .tables
                .iter()
                .zip(streams)
                .map(|((batch, _), (stream, at))| {
                    stream.put(at, batch)?;
                    Ok(TableOut::Streamed(batch.num_rows()))
                })
                .collect::<Result<_>>()?,
            None => ev
                .tables
                .into_iter()
                .map(|t| TableOut::Built(vec![t]))
                .collect(),
        };
        Ok((tables, self.quarantine, self.read))
    }

    fn finish(self) -> Result<ChunkResult> {
        if let Some(e) = self.scratch_err {
            return Err(e);
        }
        let mut tables = Vec::new();
        for (b, rows) in self.builders.into_iter().zip(self.rows) {
            tables.push(match b {
                Some((builder, lines)) => TableOut::Built(vec![(builder.finish()?, lines)]),
                None => TableOut::Rows(rows),
            });
        }
        Ok((tables, self.quarantine, self.read))
    }
}

/// What one chunk produced: per-table rows, quarantined rows, rows read.
type ChunkResult = (Vec<TableOut>, Vec<QRow>, u64);

/// Puts a file's chunk results together, in chunk order; `streamed` when its rows were written.
fn merge(parts: Vec<ChunkResult>, plan: Plan, streamed: bool) -> FileOutput {
    let mut tables: Vec<TableOut> = plan
        .tables
        .iter()
        .map(|t| {
            if streamed {
                TableOut::Streamed(0)
            } else if t.group_by.is_empty() {
                TableOut::Built(Vec::new())
            } else {
                TableOut::Rows(Vec::new())
            }
        })
        .collect();
    let mut quarantine = Vec::new();
    let mut read = 0;
    for (ts, q, r) in parts {
        for (acc, t) in tables.iter_mut().zip(ts) {
            match (acc, t) {
                (TableOut::Built(a), TableOut::Built(b)) => {
                    a.extend(b.into_iter().filter(|(b, _)| b.num_rows() > 0))
                }
                (TableOut::Rows(a), TableOut::Rows(b)) => a.extend(b),
                (TableOut::Streamed(a), TableOut::Streamed(b)) => *a += b,
                _ => {}
            }
        }
        quarantine.extend(q);
        read += r;
    }
    FileOutput {
        plan,
        tables,
        quarantine,
        read,
    }
}

/// Reads a whole file with `layout`.
/// Tables in `referenced` are read by a later reference check, so they stay as batches; rows of
/// other tables may go straight to their file in `streams`.
#[expect(
    clippy::too_many_arguments,
    reason = "one file's whole reading context"
)]
pub(crate) fn read_file(
    bytes: &[u8],
    layout: &Layout,
    tz: Tz,
    file: &str,
    mapping: &str,
    ctx: &FileCtx,
    referenced: &HashSet<Table>,
    streams: &Streams,
    progress: &(dyn Fn(Progress<'_>) + Sync),
) -> Result<FileOutput> {
    match layout.source.format {
        Format::Csv | Format::Baskets => read_text(
            bytes, layout, tz, file, mapping, ctx, referenced, streams, progress,
        ),
        Format::Jsonl => read_jsonl(bytes, layout, tz, file, mapping, ctx),
        Format::Parquet => read_parquet(bytes, layout, tz, file, mapping, ctx),
    }
}

#[expect(
    clippy::too_many_arguments,
    reason = "one file's whole reading context"
)]
fn read_text(
    bytes: &[u8],
    layout: &Layout,
    tz: Tz,
    file: &str,
    mapping: &str,
    ctx: &FileCtx,
    referenced: &HashSet<Table>,
    streams: &Streams,
    progress: &(dyn Fn(Progress<'_>) + Sync),
) -> Result<FileOutput> {
    let src = &layout.source;
    let spec = TextSpec::of(src, mapping)?;
    let body = if spec.encoding == Encoding::Utf8 {
        source::strip_bom(bytes)
    } else {
        bytes
    };
    let baskets = src.format == Format::Baskets;
    let header_on = !baskets && src.header.unwrap_or(src.columns.is_empty());
    let mut header: Vec<String> = Vec::new();
    let mut start = 0usize;
    let mut first_line = 1u64;
    if header_on {
        let first = source::first_record(body, spec.quoting);
        if !first.is_empty() {
            let c = Chunk {
                bytes: first,
                first_line: 1,
                quoted: true,
            };
            let mut got = None;
            source::for_each_record(&c, &spec, |r: Record<'_, '_>| {
                if got.is_none() {
                    got = Some(
                        r.fields
                            .iter()
                            .map(|f| f.trim().to_string())
                            .collect::<Vec<_>>(),
                    );
                }
            });
            header = got.unwrap_or_default();
            start = c.bytes.len();
            first_line = 1 + memchr::memchr_iter(b'\n', c.bytes).count() as u64;
        }
    } else {
        header = src.columns.clone();
    }
    if !header_on && !src.columns.is_empty() {
        header = src.columns.clone();
    }
    let plan = Plan::compile(layout, &header, tz, file, mapping)?;
    let expected = (!baskets && !header.is_empty()).then_some(header.len());
    let body = &body[start..];
    let target = if plan.sequential {
        usize::MAX
    } else {
        CHUNK_BYTES
    };
    let workers = rayon::current_num_threads();
    let chunks = source::chunks(body, first_line, target, workers, spec.quoting);
    let done = AtomicU64::new(0);
    let spare: Mutex<Vec<Records<'_>>> = Mutex::new(Vec::new());
    let columnar = !baskets && plan.columnar();
    // Rows no later check can reject (no key or reference checks, no table another layout
    // refers to) are encoded for their files right where they are read, in parallel, and
    // written in order while later chunks are read. Each table's stream gives this file's
    // chunks consecutive places.
    let targets: Option<Vec<&GroupStream>> = if columnar
        && plan.tables.iter().all(|t| {
            t.checked_key.is_empty() && t.references.is_none() && !referenced.contains(&t.table)
        }) {
        plan.tables.iter().map(|t| streams.get(&t.table)).collect()
    } else {
        None
    };
    let places = match targets {
        Some(ts) => Some(
            ts.into_iter()
                .map(|s| Ok((s, s.reserve(chunks.len())?)))
                .collect::<Result<Vec<_>>>()?,
        ),
        None => None,
    };
    let parts: Vec<Result<ChunkResult>> =
        in_order(&chunks, workers, |ci, chunk| {
            let capacity = chunk.bytes.len() / 64 + 16;
            let mut st = ChunkState::new(&plan, if columnar { 0 } else { capacity });
            // Records' vectors are tens of megabytes: a chunk takes those of an earlier one
            // rather than fault in fresh pages.
            let mut recs = columnar.then(|| {
                let mut r = lock(&spare)
                    .pop()
                    .unwrap_or_else(|| Records::with_capacity(capacity, header.len()));
                r.reset(chunk.bytes);
                r
            });
            // Plain UTF-8 text with nothing quoted is split straight into the records.
            let plain = match (&mut recs, spec.delim) {
                (Some(r), Delim::Byte(d))
                    if spec.encoding == Encoding::Utf8
                        && r.text().is_some()
                        && !matches!(d, b'\n' | b'\r' | b'"')
                        && !chunk.quoted =>
                {
                    let mut wrong = Vec::new();
                    r.split(d, expected, chunk.first_line, &mut st.read, |l, n, raw| {
                        wrong.push((l, n, raw))
                    });
                    for (line, n, raw) in wrong {
                        st.reject(line, wrong_width(expected.unwrap_or_default(), n), raw);
                    }
                    true
                }
                _ => false,
            };
            let mut items: Vec<Cow<'_, str>> = Vec::new();
            if !plain {
                source::for_each_record(chunk, &spec, |rec| {
                    let (line, raw, fields) = (rec.line, rec.raw, rec.fields);
                    if let Some(i) = rec.bad_field {
                        let column = header
                            .get(i)
                            .cloned()
                            .unwrap_or_else(|| format!("#{}", i + 1));
                        let reason = format!("invalid {} bytes", encoding_name(spec.encoding));
                        st.reject_unread(line, column, reason, raw);
                        return;
                    }
                    if let Some(n) = expected
                        && fields.len() != n
                    {
                        st.read += 1;
                        st.reject(line, wrong_width(n, fields.len()), raw);
                        return;
                    }
                    if baskets {
                        items.clear();
                        items.extend(fields.iter().filter(|f| !f.trim().is_empty()).map(
                            |f| match f {
                                Cow::Borrowed(b) => Cow::Borrowed(b.trim()),
                                Cow::Owned(o) => Cow::Owned(o.trim().to_string()),
                            },
                        ));
                        st.record(line, &items, &items, raw, ctx);
                    } else if let Some(recs) = &mut recs {
                        st.read += 1;
                        recs.push(line, st.read, fields, raw);
                    } else {
                        st.record(line, fields, &[], raw, ctx);
                    }
                });
            }
            let n = done.fetch_add(chunk.bytes.len() as u64, Ordering::Relaxed)
                + chunk.bytes.len() as u64;
            progress(Progress::Bytes(n));
            let out = match &recs {
                Some(recs) => st.finish_columns(
                    recs,
                    ctx,
                    places
                        .as_ref()
                        .map(|p| p.iter().map(|(s, first)| (*s, first + ci)).collect()),
                ),
                None => st.finish(),
            };
            if let Some(r) = recs {
                lock(&spare).push(r);
            }
            out
        });
    let parts = parts.into_iter().collect::<Result<Vec<_>>>()?;
    Ok(merge(parts, plan, places.is_some()))
}

/// `f` of every item with its index, on `workers` threads that take the items in order: each
/// worker takes the next item not yet taken. Chunks are read roughly in file order, so the row
/// groups a stream holds back until the ones before them are written stay few (a split in halves
/// holds back half the file), and the last, smallest chunks are read last.
fn in_order<T: Sync, R: Send>(
    items: &[T],
    workers: usize,
    f: impl Fn(usize, &T) -> R + Sync,
) -> Vec<R> {
    let next = std::sync::atomic::AtomicUsize::new(0);
    let slots: Vec<Mutex<Option<R>>> = items.iter().map(|_| Mutex::new(None)).collect();
    let work = || {
        loop {
            let i = next.fetch_add(1, Ordering::Relaxed);
            let Some(item) = items.get(i) else { break };
            *lock(&slots[i]) = Some(f(i, item));
        }
    };
    rayon::scope(|s| {
        for _ in 1..workers.min(items.len()) {
            s.spawn(|_| work());
        }
        work();
    });
    slots
        .into_iter()
        .filter_map(|m| {
            m.into_inner()
                .unwrap_or_else(std::sync::PoisonError::into_inner)
        })
        .collect()
}

/// Why a record whose field count is not the layout's is set aside.
fn wrong_width(expected: usize, found: usize) -> RowError {
    RowError {
        column: "*".into(),
        reason: format!("expected {expected} fields, found {found}"),
    }
}

/// Locks a pool of buffers; a poisoned pool is still a pool of buffers.
fn lock<T>(m: &Mutex<T>) -> std::sync::MutexGuard<'_, T> {
    m.lock().unwrap_or_else(std::sync::PoisonError::into_inner)
}

fn encoding_name(e: Encoding) -> &'static str {
    match e {
        Encoding::Utf8 => "UTF-8",
        Encoding::Gbk => "GBK",
        Encoding::Gb18030 => "GB18030",
    }
}

fn read_jsonl(
    bytes: &[u8],
    layout: &Layout,
    tz: Tz,
    file: &str,
    mapping: &str,
    ctx: &FileCtx,
) -> Result<FileOutput> {
    let text_lines: Vec<(u64, &[u8])> = source::strip_bom(bytes)
        .split(|b| *b == b'\n')
        .enumerate()
        .map(|(i, l)| ((i + 1) as u64, l.strip_suffix(b"\r").unwrap_or(l)))
        .filter(|(_, l)| !l.iter().all(u8::is_ascii_whitespace))
        .collect();
    let mut parsed = Vec::with_capacity(text_lines.len());
    let mut header: Vec<String> = Vec::new();
    let mut known = std::collections::HashSet::new();
    for (line, l) in &text_lines {
        let v: std::result::Result<serde_json::Map<String, serde_json::Value>, String> =
            serde_json::from_slice::<serde_json::Value>(l)
                .map_err(|e| format!("invalid JSON: {e}"))
                .and_then(|v| match v {
                    serde_json::Value::Object(m) => Ok(m),
                    _ => Err("not a JSON object".to_string()),
                });
        if let Ok(m) = &v {
            for k in m.keys() {
                if known.insert(k.clone()) {
                    header.push(k.clone());
                }
            }
        }
        parsed.push((*line, *l, v));
    }
    let plan = Plan::compile(layout, &header, tz, file, mapping)?;
    let mut st = ChunkState::new(&plan, parsed.len());
    for (line, raw, v) in parsed {
        match v {
            Err(reason) => {
                st.reject_unread(line, "*".into(), reason, raw);
            }
            Ok(m) => {
                let fields: Vec<Cow<'_, str>> = header
                    .iter()
                    .map(|h| match m.get(h) {
                        None | Some(serde_json::Value::Null) => Cow::Borrowed(""),
                        Some(serde_json::Value::String(s)) => Cow::Owned(s.clone()),
                        Some(other) => Cow::Owned(other.to_string()),
                    })
                    .collect();
                st.record(line, &fields, &[], raw, ctx);
            }
        }
    }
    Ok(merge(vec![st.finish()?], plan, false))
}

fn read_parquet(
    bytes: &[u8],
    layout: &Layout,
    tz: Tz,
    file: &str,
    mapping: &str,
    ctx: &FileCtx,
) -> Result<FileOutput> {
    let bad = |e: datafusion::parquet::errors::ParquetError| Error::BadFile {
        file: file.to_string(),
        reason: format!("not readable as Parquet: {e}"),
    };
    let builder = ParquetRecordBatchReaderBuilder::try_new(bytes::Bytes::copy_from_slice(bytes))
        .map_err(bad)?;
    let header: Vec<String> = builder
        .schema()
        .fields()
        .iter()
        .map(|f| f.name().clone())
        .collect();
    let reader = builder.build().map_err(bad)?;
    let plan = Plan::compile(layout, &header, tz, file, mapping)?;
    let mut st = ChunkState::new(&plan, 1024);
    let mut line = 0u64;
    for batch in reader {
        let batch = batch?;
        let cols: Vec<StringArray> = batch
            .columns()
            .iter()
            .map(|c| {
                let a = cast(c, &DataType::Utf8)?;
                a.as_any()
                    .downcast_ref::<StringArray>()
                    .cloned()
                    .ok_or_else(|| Error::Internal("cast to text".into()))
            })
            .collect::<Result<_>>()?;
        for i in 0..batch.num_rows() {
            line += 1;
            let fields: Vec<Cow<'_, str>> = cols
                .iter()
                .map(|c| {
                    if c.is_null(i) {
                        Cow::Borrowed("")
                    } else {
                        Cow::Borrowed(c.value(i))
                    }
                })
                .collect();
            let raw = fields.join(",");
            st.record(line, &fields, &[], raw.as_bytes(), ctx);
        }
    }
    Ok(merge(vec![st.finish()?], plan, false))
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used, reason = "tests")]

    use super::in_order;

    #[test]
    fn in_order_maps_every_item_once_and_keeps_their_order() {
        let items: Vec<u64> = (0..200).collect();
        let calls = std::sync::atomic::AtomicUsize::new(0);
        for workers in [1, 2, 7] {
            calls.store(0, std::sync::atomic::Ordering::Relaxed);
            let got = in_order(&items, workers, |i, v| {
                calls.fetch_add(1, std::sync::atomic::Ordering::Relaxed);
                (i, v * v)
            });
            let want: Vec<(usize, u64)> = items.iter().map(|&v| (v as usize, v * v)).collect();
            assert_eq!(got, want);
            assert_eq!(calls.load(std::sync::atomic::Ordering::Relaxed), 200);
        }
        assert!(in_order(&[] as &[u8], 2, |_, v| *v).is_empty());
    }
}
