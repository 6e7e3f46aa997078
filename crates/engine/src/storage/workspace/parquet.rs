//! Writing a table's Parquet files: row groups encoded on the threads that read them and
//! appended in order, with per-column encodings chosen from the data.

use super::*;

/// A row group of one table, encoded (on any thread) ahead of its place in a file.
pub(super) struct EncodedRowGroup {
    pub(super) rows: usize,
    pub(super) chunks: Vec<ArrowColumnChunk>,
}

/// One file of a table written while its source is still being read: each chunk of the source
/// is encoded into a row group on the thread that read it, and groups are appended in source
/// order as soon as those before them are, so writing overlaps reading and finished groups do
/// not wait in memory for the last one.
pub(crate) struct GroupStream {
    pub(super) table: Table,
    /// Its number in the staging folder.
    pub(super) seq: u32,
    pub(super) path: PathBuf,
    pub(super) state: Mutex<StreamState>,
}

#[derive(Default)]
pub(super) struct StreamState {
    /// Opened with the first row group that has rows.
    pub(super) writer: Option<SerializedFileWriter<std::io::BufWriter<File>>>,
    /// Places handed out (see [`GroupStream::reserve`]) and places appended, in order.
    pub(super) issued: usize,
    pub(super) next: usize,
    /// Groups that came before their turn (`None`: a chunk without rows of this table).
    pub(super) pending: BTreeMap<usize, Option<EncodedRowGroup>>,
    pub(super) rows: u64,
    /// Bytes of the file handed to the disk by the last early flush (see [`EARLY_FLUSH`]).
    pub(super) flushed: usize,
    pub(super) flusher: Option<std::thread::JoinHandle<()>>,
}

/// Every this many bytes appended, a stream's file is flushed to disk on a thread of its own
/// while reading goes on: the flush that makes the commit durable then writes only the rest
/// (a 145 MB file kept the ingest waiting 70 ms at its end).
pub(super) const EARLY_FLUSH: usize = 32 << 20;

impl GroupStream {
    /// Reserves `n` consecutive places (one file's chunks, in order): the first one.
    pub(crate) fn reserve(&self, n: usize) -> Result<usize> {
        let mut st = self.lock()?;
        st.issued += n;
        Ok(st.issued - n)
    }

    /// Encodes `batch` (of this stream's table) as the row group of place `at` and appends it,
    /// with any groups waiting on it, once every earlier place is appended.
    pub(crate) fn put(&self, at: usize, batch: &RecordBatch) -> Result<()> {
        let group = if batch.num_rows() == 0 {
            None
        } else {
            Some(encode_row_group(self.table, batch)?)
        };
        let mut st = self.lock()?;
        st.pending.insert(at, group);
        while let Some(group) = {
            let next = st.next;
            st.pending.remove(&next)
        } {
            st.next += 1;
            if let Some(g) = group {
                self.append(&mut st, g)?;
            }
        }
        Ok(())
    }

    fn append(&self, st: &mut StreamState, g: EncodedRowGroup) -> Result<()> {
        let path = &self.path;
        let w = match &mut st.writer {
            Some(w) => w,
            None => {
                let file = File::create(path).map_err(|e| Error::io(path, e))?;
                let out = std::io::BufWriter::with_capacity(1 << 20, file);
                let (w, _) = arrow_writer(out, self.table.schema(), None)
                    .and_then(ArrowWriter::into_serialized_writer)
                    .map_err(|e| Error::parquet(path, e))?;
                st.writer.insert(w)
            }
        };
        let mut rg = w.next_row_group().map_err(|e| Error::parquet(path, e))?;
        for c in g.chunks {
            c.append_to_row_group(&mut rg)
                .map_err(|e| Error::parquet(path, e))?;
        }
        rg.close().map_err(|e| Error::parquet(path, e))?;
        st.rows += g.rows as u64;
        let written = w.bytes_written();
        if written >= st.flushed + EARLY_FLUSH
            && st.flusher.as_ref().is_none_or(|f| f.is_finished())
        {
            // A failed early flush is the final one's to report.
            if let Ok(file) = w.inner().get_ref().try_clone() {
                st.flushed = written;
                st.flusher = Some(std::thread::spawn(move || {
                    let _ = file.sync_data();
                }));
            }
        }
        Ok(())
    }

    fn lock(&self) -> Result<std::sync::MutexGuard<'_, StreamState>> {
        self.state.lock().map_err(|_| {
            Error::Internal(format!(
                "writing {} failed on another thread",
                self.path.display()
            ))
        })
    }
}

/// One row group of `table` holding `batch`, with the workspace's writer settings.
pub(super) fn encode_row_group(table: Table, batch: &RecordBatch) -> Result<EncodedRowGroup> {
    let err = |e: datafusion::parquet::errors::ParquetError| {
        Error::Internal(format!("encoding a row group: {e}"))
    };
    // The factory is all this writer is for: the file it would write goes nowhere. Each group
    // gets its own, as its columns choose their dictionaries by their own values.
    let (_, factory) = arrow_writer(std::io::sink(), table.schema(), Some(batch))
        .and_then(ArrowWriter::into_serialized_writer)
        .map_err(err)?;
    let mut writers = factory.create_column_writers(0).map_err(err)?;
    let mut next = writers.iter_mut();
    for (field, col) in batch.schema().fields().iter().zip(batch.columns()) {
        for leaf in compute_leaves(field, col).map_err(err)? {
            let w = next.next().ok_or_else(|| {
                Error::Internal("row group has more columns than its table".into())
            })?;
            w.write(&leaf).map_err(err)?;
        }
    }
    let chunks = writers
        .into_iter()
        .map(ArrowColumnWriter::close)
        .collect::<std::result::Result<Vec<_>, _>>()
        .map_err(err)?;
    Ok(EncodedRowGroup {
        rows: batch.num_rows(),
        chunks,
    })
}

pub(super) fn write_parquet(
    path: &Path,
    schema: datafusion::arrow::datatypes::SchemaRef,
    batches: &[RecordBatch],
) -> Result<()> {
    let file = File::create(path).map_err(|e| Error::io(path, e))?;
    let mut w = arrow_writer(file, schema, batches.first()).map_err(|e| Error::parquet(path, e))?;
    for b in batches {
        w.write(b).map_err(|e| Error::parquet(path, e))?;
    }
    let file = w.into_inner().map_err(|e| Error::parquet(path, e))?;
    file.sync_all().map_err(|e| Error::io(path, e))?;
    Ok(())
}

/// A Parquet writer of `schema` onto `w` with the settings of every table file; `sample`, when
/// given, is the first batch written, from which columns choose their encoding and statistics.
pub(super) fn arrow_writer<W: Write + Send>(
    w: W,
    schema: datafusion::arrow::datatypes::SchemaRef,
    sample: Option<&RecordBatch>,
) -> datafusion::parquet::errors::Result<ArrowWriter<W>> {
    let choices = sample.map(column_choices).unwrap_or_default();
    let props = writer_props(&schema, &choices);
    ArrowWriter::try_new(w, schema, Some(props))
}

/// How every table file is written: Snappy, row groups of at most 2^20 rows, Parquet's defaults
/// except for unique ids and the `choices`.
pub(super) fn writer_props(
    schema: &datafusion::arrow::datatypes::Schema,
    choices: &[Choice],
) -> WriterProperties {
    let mut props = WriterProperties::builder()
        .set_compression(Compression::SNAPPY)
        .set_max_row_group_row_count(Some(1 << 20));
    // Ids unique per row (event_id …) gain nothing from a dictionary or min/max statistics, which
    // cost a hash insert and comparisons per value. Synthesised ones (`<hash8>-<line>`) share all
    // but their last digits with the previous row, which is what DELTA_BYTE_ARRAY stores: a
    // prefix length and a suffix (5× smaller than plain before compression).
    for unique in UNIQUE_IDS {
        if schema.field_with_name(unique).is_ok() {
            props = props
                .set_column_dictionary_enabled(ColumnPath::from(unique), false)
                .set_column_encoding(ColumnPath::from(unique), Encoding::DELTA_BYTE_ARRAY)
                .set_column_statistics_enabled(ColumnPath::from(unique), EnabledStatistics::None);
        }
    }
    for u in choices {
        let col = ColumnPath::from(u.name.as_str());
        if u.plain {
            props = props.set_column_dictionary_enabled(col.clone(), false);
        }
        if u.plain && u.text && !UNIQUE_IDS.contains(&u.name.as_str()) {
            // Lengths apart from the bytes: bit-packed lengths instead of four bytes each, and
            // text Snappy only sees when its sample showed it worth compressing.
            props = props.set_column_encoding(col.clone(), Encoding::DELTA_LENGTH_BYTE_ARRAY);
            if !u.compresses {
                props = props.set_column_compression(col.clone(), Compression::UNCOMPRESSED);
            }
        }
        if u.rising {
            // Bit-packed differences leave Snappy nothing to find (50 MB in, 50 MB out for 10M
            // times), and readers nothing to undo.
            props = props
                .set_column_encoding(col.clone(), Encoding::DELTA_BINARY_PACKED)
                .set_column_compression(col.clone(), Compression::UNCOMPRESSED);
        }
        if !u.statistics {
            props = props.set_column_statistics_enabled(col, EnabledStatistics::None);
        }
    }
    props.build()
}

/// Ids unique per row, written as DELTA_BYTE_ARRAY (see [`writer_props`]).
pub(super) const UNIQUE_IDS: [&str; 2] = ["event_id", "review_id"];

/// Rows sampled from the start of a batch to judge a column's repetition.
pub(super) const DICTIONARY_SAMPLE: usize = 4096;

/// How one column of a row group is written when it departs from Parquet's defaults, judged
/// from its first values.
#[derive(Debug, Default)]
pub(super) struct Choice {
    pub(super) name: String,
    /// No dictionary: the values are nearly all distinct (more than 90% of the non-null ones
    /// among the first [`DICTIONARY_SAMPLE`] rows: item ids of a large catalogue, timestamps).
    /// Parquet would hash every value into a dictionary that outgrows its page and is then
    /// dropped for plain values. Columns that repeat (event names, categories, a user's run of
    /// events) keep theirs.
    pub(super) plain: bool,
    /// Min/max statistics, which narrow a search only where values are in order: numbers
    /// always keep them (comparing two is cheap); text only when its first values are sorted
    /// (a user id in a log grouped by user). Unordered text (categories, catalogue ids, event
    /// names) spans its whole range in every row group, and each value costs two string
    /// comparisons.
    pub(super) statistics: bool,
    /// Stored as differences from the previous value (DELTA_BINARY_PACKED), a few bits each
    /// rather than 64: nearly-distinct numbers that mostly rise (at least 90% of steps), as
    /// times do in an event log (within each user when it is grouped by user).
    pub(super) rising: bool,
    /// Text (as opposed to numbers and times).
    pub(super) text: bool,
    /// Snappy shrinks the column's first values by at least a fifth. Nearly-distinct
    /// identifiers (catalogue numbers, hashes) do not compress: Snappy finds no repeats in
    /// them, and compressing 10M item ids took a tenth of an ingest's time to save nothing once
    /// their lengths are stored apart. Review text and descriptions do.
    pub(super) compresses: bool,
}

/// The columns of `batch` written otherwise than by Parquet's defaults (see [`Choice`]).
pub(super) fn column_choices(batch: &RecordBatch) -> Vec<Choice> {
    use datafusion::arrow::array::{Array, AsArray};
    use datafusion::arrow::datatypes::{DataType, Int64Type, TimeUnit, TimestampMicrosecondType};
    use std::collections::HashSet;
    use std::hash::Hash;
    /// Whether the present values are nearly all distinct, whether they are in order, and
    /// whether they mostly rise.
    fn judge<T: Hash + Eq + Ord + Copy>(
        values: impl Iterator<Item = Option<T>>,
    ) -> (bool, bool, bool) {
        let mut seen = HashSet::with_capacity(DICTIONARY_SAMPLE);
        let (mut present, mut falls, mut last) = (0usize, 0usize, None);
        for v in values.flatten() {
            present += 1;
            falls += usize::from(last.is_some_and(|l| l > v));
            last = Some(v);
            seen.insert(v);
        }
        (
            present >= 64 && seen.len() * 10 > present * 9,
            falls == 0,
            falls * 10 <= present,
        )
    }
    /// Whether Snappy shrinks the bytes of `values` by at least a fifth.
    fn compresses(values: &datafusion::arrow::array::StringArray) -> bool {
        let offsets = values.value_offsets();
        let (start, end) = (offsets[0] as usize, offsets[offsets.len() - 1] as usize);
        let bytes = &values.values()[start..end];
        match snap::raw::Encoder::new().compress_vec(bytes) {
            Ok(packed) => packed.len() * 5 < bytes.len() * 4,
            Err(_) => true,
        }
    }
    let n = batch.num_rows().min(DICTIONARY_SAMPLE);
    let mut out = Vec::new();
    for (field, col) in batch.schema().fields().iter().zip(batch.columns()) {
        let col = col.slice(0, n);
        let ((distinct, sorted, rising), text) = match col.data_type() {
            DataType::Utf8 => (judge(col.as_string::<i32>().iter()), true),
            DataType::Int64 => (judge(col.as_primitive::<Int64Type>().iter()), false),
            DataType::Timestamp(TimeUnit::Microsecond, _) => (
                judge(col.as_primitive::<TimestampMicrosecondType>().iter()),
                false,
            ),
            _ => continue,
        };
        let choice = Choice {
            name: field.name().clone(),
            plain: distinct,
            statistics: !text || sorted,
            rising: distinct && rising && !text,
            text,
            compresses: text && distinct && compresses(col.as_string::<i32>()),
        };
        if choice.plain || !choice.statistics {
            out.push(choice);
        }
    }
    out
}
