//! The workspace on disk: Parquet tables published by an atomically replaced manifest.
//!
//! Layout of a workspace directory:
//!
//! ```text
//! manifest.json              the published state: settings, tables' files, ingest history
//! tables/<table>/<id>.parquet one file per commit and table
//! quarantine/<id>.parquet     rows set aside by an ingest, with file, line, column and reason
//! staging/                    files of a commit in progress (never read)
//! writer.lock                 held by the one writer
//! ```
//!
//! A commit writes its files under `staging/`, fsyncs them, moves them into place and then
//! publishes them by renaming a new `manifest.json` over the old one. Readers only read the files
//! the manifest lists, so an ingest that fails or is killed half-way leaves the previous state
//! intact; the next writer removes what it left behind.

use std::collections::BTreeMap;
use std::fs::{self, File, OpenOptions};
use std::io::{Read, Write};
use std::path::{Path, PathBuf};
use std::sync::Mutex;

use datafusion::arrow::record_batch::RecordBatch;
use datafusion::parquet::arrow::ArrowWriter;
use datafusion::parquet::arrow::arrow_writer::{
    ArrowColumnChunk, ArrowColumnWriter, compute_leaves,
};
use datafusion::parquet::basic::{Compression, Encoding};
use datafusion::parquet::file::properties::{EnabledStatistics, WriterProperties};
use datafusion::parquet::file::writer::SerializedFileWriter;
use datafusion::parquet::schema::types::ColumnPath;
use rayon::prelude::*;
use serde::{Deserialize, Serialize};

use crate::error::{Error, Result};
use crate::storage::schema::Table;

mod parquet;

pub(crate) use parquet::GroupStream;
use parquet::*;

const MANIFEST: &str = "manifest.json";
const LOCK: &str = "writer.lock";
const FORMAT_VERSION: u32 = 1;
const MIN_ROWS_PER_PARALLEL_FILE: usize = 2_000_000;

/// Settings of a workspace, stored in its manifest.
#[derive(Debug, Clone, Default, Serialize, Deserialize, PartialEq, Eq)]
pub struct Settings {
    /// The shop's IANA time zone (e.g. `Asia/Shanghai`); days, hours and weekdays are bucketed in
    /// it. Unset until the first ingest that names one; analyses treat unset as UTC.
    pub timezone: Option<String>,
    /// The shop's currency (ISO 4217), when a source names one.
    pub currency: Option<String>,
    /// customers.member_tier values that mean "not a member" (compared trimmed and without
    /// case; a missing tier never counts). Unset: [`DEFAULT_NON_MEMBER_TIERS`].
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub non_member_tiers: Option<Vec<String>>,
}

/// Tier values that mean "not a member" unless a mapping says otherwise: empty and `none`.
pub const DEFAULT_NON_MEMBER_TIERS: [&str; 2] = ["", "none"];

impl Settings {
    /// The SQL condition on a member_tier column that holds for members: a tier is set and is
    /// none of the non-member values.
    pub fn member_condition(&self, col: &str) -> String {
        let values: Vec<String> = match &self.non_member_tiers {
            Some(v) => v.iter().map(|t| t.trim().to_lowercase()).collect(),
            None => DEFAULT_NON_MEMBER_TIERS.map(String::from).to_vec(),
        };
        if values.is_empty() {
            return format!("{col} IS NOT NULL");
        }
        let list: Vec<String> = values.iter().map(|v| crate::sql::quote(v)).collect();
        format!(
            "{col} IS NOT NULL AND lower(trim({col})) NOT IN ({})",
            list.join(", ")
        )
    }
}

/// One published Parquet file.
#[derive(Debug, Clone, Serialize, Deserialize, PartialEq, Eq)]
pub struct DataFile {
    /// Path relative to the workspace root, `/`-separated.
    pub path: String,
    /// Rows in the file.
    pub rows: u64,
}

/// One ingested source file, for duplicate detection and history.
#[derive(Debug, Clone, Serialize, Deserialize, PartialEq, Eq)]
pub struct IngestRecord {
    /// Id of the commit that stored it.
    pub commit: String,
    /// The file name as given.
    pub source: String,
    /// Hash of the file's bytes (`blake3:<hex>`), for duplicate detection.
    pub content_hash: String,
    /// Preset or mapping used.
    pub mapping: String,
    /// Source rows read.
    pub read: u64,
    /// Source rows stored in at least one table.
    pub stored: u64,
    /// Source rows set aside in the quarantine.
    pub quarantined: u64,
    /// Source rows left out on purpose by the mapping (e.g. outside a sample), with the reason in
    /// the summary.
    #[serde(default)]
    pub excluded: u64,
}

/// The published state of a workspace.
#[derive(Debug, Clone, Default, Serialize, Deserialize, PartialEq, Eq)]
pub struct Manifest {
    /// Layout version of the workspace.
    pub format_version: u32,
    /// Increases by one with every commit.
    pub version: u64,
    /// Workspace settings.
    pub settings: Settings,
    /// Files of each canonical table, by table name.
    pub tables: BTreeMap<String, Vec<DataFile>>,
    /// Files of the quarantine.
    pub quarantine: Vec<DataFile>,
    /// Every ingested source file.
    pub ingests: Vec<IngestRecord>,
    /// How far the collector's write-ahead log is compacted into the tables (records after it
    /// are read from the log); None before the first compaction.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub collector: Option<crate::storage::wal::WalPosition>,
}

impl Manifest {
    /// The files of a table (empty when it has none).
    pub fn files(&self, table: Table) -> &[DataFile] {
        self.tables
            .get(table.name())
            .map(Vec::as_slice)
            .unwrap_or_default()
    }

    /// Rows stored in a table.
    pub fn rows(&self, table: Table) -> u64 {
        self.files(table).iter().map(|f| f.rows).sum()
    }
}

/// Where a workspace's queries run. A [`Workspace`] carries one, and so does every
/// DataFusion context made for it (as a config extension; see `cluster::is_cluster`), so code holding either knows.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub enum Engine {
    /// In this process.
    #[default]
    Embedded,
    /// On the Ballista scheduler at `host:port`.
    Ballista {
        /// The scheduler's `host:port`.
        scheduler: String,
    },
}

impl Engine {
    /// `embedded` (or nothing) or `ballista://HOST:PORT`, as `--engine` takes it. Refused when
    /// this build has no Ballista support.
    pub fn parse(url: Option<&str>) -> Result<Engine> {
        let u = match url.map(str::trim).filter(|u| !u.is_empty()) {
            None | Some("embedded") => return Ok(Engine::Embedded),
            Some(u) => u,
        };
        let rest = u
            .strip_prefix("ballista://")
            .or_else(|| u.strip_prefix("df://"))
            .ok_or_else(|| {
                Error::Invalid(format!(
                    "--engine `{u}`: use `embedded` or `ballista://HOST:PORT`"
                ))
            })?;
        let (host, port) = rest.rsplit_once(':').ok_or_else(|| {
            Error::Invalid(format!("--engine `{u}`: the scheduler's port is missing"))
        })?;
        if host.is_empty() || port.parse::<u16>().is_err() {
            return Err(Error::Invalid(format!(
                "--engine `{u}`: expected ballista://HOST:PORT"
            )));
        }
        if !cfg!(feature = "ballista") {
            return Err(Error::Invalid(
                "this shoplens was built without Ballista support: build it with \
                 `cargo build --release --features ballista`"
                    .into(),
            ));
        }
        Ok(Engine::Ballista {
            scheduler: format!("{host}:{port}"),
        })
    }

    /// Whether queries run on a cluster.
    pub fn is_cluster(&self) -> bool {
        matches!(self, Engine::Ballista { .. })
    }

    /// The `--engine` value that names this engine (None for the embedded one).
    pub fn flag(&self) -> Option<String> {
        match self {
            Engine::Embedded => None,
            Engine::Ballista { scheduler } => Some(format!("ballista://{scheduler}")),
        }
    }
}

/// A workspace directory. Reading needs no lock; writing goes through [`Workspace::writer`].
#[derive(Debug, Clone)]
pub struct Workspace {
    root: PathBuf,
    /// Where its queries run.
    engine: Engine,
}

impl Workspace {
    /// Opens (and creates, if missing) the workspace at `root`.
    pub fn open(root: impl Into<PathBuf>) -> Result<Workspace> {
        let root = root.into();
        fs::create_dir_all(&root).map_err(|e| Error::io(&root, e))?;
        Ok(Workspace {
            root,
            engine: Default::default(),
        })
    }

    /// Opens an existing workspace; fails clearly when `root` holds none.
    pub fn open_existing(root: impl Into<PathBuf>) -> Result<Workspace> {
        let root = root.into();
        if !root.join(MANIFEST).is_file() {
            return Err(Error::NoWorkspace { path: root });
        }
        Ok(Workspace {
            root,
            engine: Default::default(),
        })
    }

    /// The same workspace with its queries run on `engine` (embedded by default).
    pub fn with_engine(mut self, engine: Engine) -> Workspace {
        self.engine = engine;
        self
    }

    /// Where the workspace's queries run.
    pub fn engine(&self) -> &Engine {
        &self.engine
    }

    /// The workspace directory.
    pub fn root(&self) -> &Path {
        &self.root
    }

    /// The published manifest (an empty one for a new workspace).
    pub fn manifest(&self) -> Result<Manifest> {
        let path = self.root.join(MANIFEST);
        match fs::read(&path) {
            Ok(bytes) => {
                let m: Manifest = serde_json::from_slice(&bytes).map_err(|e| Error::Corrupt {
                    path: path.clone(),
                    reason: e.to_string(),
                })?;
                if m.format_version > FORMAT_VERSION {
                    return Err(Error::Corrupt {
                        path,
                        reason: format!(
                            "written by a newer shoplens (format {})",
                            m.format_version
                        ),
                    });
                }
                Ok(m)
            }
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => Ok(Manifest {
                format_version: FORMAT_VERSION,
                ..Manifest::default()
            }),
            Err(e) => Err(Error::io(&path, e)),
        }
    }

    /// Absolute path of a published file.
    pub fn path_of(&self, file: &DataFile) -> PathBuf {
        self.root.join(&file.path)
    }

    /// Takes the single-writer lock; fails at once, naming the holder, when another process writes.
    pub fn writer(&self) -> Result<Writer> {
        let path = self.root.join(LOCK);
        let mut file = OpenOptions::new()
            .read(true)
            .write(true)
            .create(true)
            .truncate(false)
            .open(&path)
            .map_err(|e| Error::io(&path, e))?;
        match file.try_lock() {
            Ok(()) => {}
            Err(fs::TryLockError::WouldBlock) => {
                let mut holder = String::new();
                let _ = file.read_to_string(&mut holder);
                return Err(Error::Locked {
                    path: self.root.clone(),
                    holder: holder.trim().to_string(),
                });
            }
            Err(fs::TryLockError::Error(e)) => return Err(Error::io(&path, e)),
        }
        file.set_len(0).map_err(|e| Error::io(&path, e))?;
        let _ = write!(file, "pid {}", std::process::id());
        let _ = file.sync_data();
        let writer = Writer {
            ws: self.clone(),
            _lock: file,
        };
        writer.remove_leftovers()?;
        Ok(writer)
    }
}

/// The one writer of a workspace, holding its lock until dropped.
#[derive(Debug)]
pub struct Writer {
    ws: Workspace,
    _lock: File,
}

impl Writer {
    /// The workspace written.
    pub fn workspace(&self) -> &Workspace {
        &self.ws
    }

    /// Starts a commit with a fresh id.
    pub fn begin(&self) -> Result<Commit<'_>> {
        let manifest = self.ws.manifest()?;
        let id = format!("{:06}", manifest.version + 1);
        let staging = self.ws.root.join("staging").join(&id);
        fs::create_dir_all(&staging).map_err(|e| Error::io(&staging, e))?;
        Ok(Commit {
            writer: self,
            id,
            staging,
            manifest,
            staged: Vec::new(),
            seq: 0,
        })
    }

    /// Removes files no published manifest names any more (those a commit replaced, or a killed
    /// writer left). A long-lived writer (the collector) calls it between commits; a reader
    /// still running on a manifest from before the last replacement may then miss a file.
    pub fn sweep(&self) -> Result<()> {
        self.remove_leftovers()
    }

    /// Removes files a killed writer left: the staging area and any table file the manifest does
    /// not publish.
    fn remove_leftovers(&self) -> Result<()> {
        let staging = self.ws.root.join("staging");
        if staging.exists() {
            fs::remove_dir_all(&staging).map_err(|e| Error::io(&staging, e))?;
        }
        let manifest = self.ws.manifest()?;
        let mut published: std::collections::HashSet<&str> = std::collections::HashSet::new();
        for files in manifest.tables.values() {
            published.extend(files.iter().map(|f| f.path.as_str()));
        }
        published.extend(manifest.quarantine.iter().map(|f| f.path.as_str()));
        for dir in ["tables", "quarantine"] {
            let base = self.ws.root.join(dir);
            for path in walk_files(&base)? {
                let rel = relative(&self.ws.root, &path);
                if !published.contains(rel.as_str()) {
                    fs::remove_file(&path).map_err(|e| Error::io(&path, e))?;
                }
            }
        }
        Ok(())
    }
}

/// A commit in progress: files are staged, then published together by [`Commit::publish`].
#[derive(Debug)]
pub struct Commit<'w> {
    writer: &'w Writer,
    id: String,
    staging: PathBuf,
    manifest: Manifest,
    /// Files staged so far: table (none for the quarantine), path in the workspace, rows, and
    /// number in the staging folder.
    staged: Vec<(Option<Table>, String, u64, u32)>,
    seq: u32,
}

impl Commit<'_> {
    /// The commit's id.
    pub fn id(&self) -> &str {
        &self.id
    }

    /// The manifest this commit starts from.
    pub fn base(&self) -> &Manifest {
        &self.manifest
    }

    /// Mutable settings; saved when the commit is published.
    pub fn settings_mut(&mut self) -> &mut Settings {
        &mut self.manifest.settings
    }

    /// Records that the collector's log is compacted up to `upto` by this commit.
    pub fn set_collector(&mut self, upto: crate::storage::wal::WalPosition) {
        self.manifest.collector = Some(upto);
    }

    /// Records an ingested source file.
    pub fn record_ingest(&mut self, record: IngestRecord) {
        self.manifest.ingests.push(record);
    }

    /// Stages batches as Parquet files of `table` (or of the quarantine when `None`): one file,
    /// or, for large inputs, one file per core written in parallel (at least 2M rows each).
    pub fn stage(&mut self, table: Option<Table>, batches: &[RecordBatch]) -> Result<()> {
        let rows: usize = batches.iter().map(RecordBatch::num_rows).sum();
        if rows == 0 {
            return Ok(());
        }
        let parts =
            (rows / MIN_ROWS_PER_PARALLEL_FILE).clamp(1, rayon::current_num_threads().max(1));
        let per = rows.div_ceil(parts);
        let mut groups: Vec<Vec<RecordBatch>> = vec![Vec::new(); parts];
        let (mut g, mut in_group) = (0, 0);
        for b in batches.iter().filter(|b| b.num_rows() > 0) {
            if in_group >= per && g + 1 < parts {
                g += 1;
                in_group = 0;
            }
            in_group += b.num_rows();
            groups[g].push(b.clone());
        }
        let mut jobs = Vec::new();
        for group in groups.into_iter().filter(|g| !g.is_empty()) {
            let n: usize = group.iter().map(RecordBatch::num_rows).sum();
            jobs.push((self.next_file(table, n as u64), group));
        }
        jobs.par_iter()
            .map(|(tmp, group)| write_parquet(tmp, group[0].schema(), group))
            .collect::<Result<Vec<()>>>()?;
        Ok(())
    }

    /// Opens a file of `table` that row groups are appended to while they are still being
    /// read (see [`GroupStream`]); [`Commit::close_stream`] finishes it.
    pub(crate) fn stream(&mut self, table: Table) -> GroupStream {
        let path = self.next_file(Some(table), 0);
        GroupStream {
            table,
            seq: self.seq,
            path,
            state: Mutex::new(StreamState::default()),
        }
    }

    /// Finishes a stream's file and stages it with its row count (or unstages it when no row
    /// came): the number of rows.
    pub(crate) fn close_stream(&mut self, stream: GroupStream) -> Result<u64> {
        let GroupStream {
            seq, path, state, ..
        } = stream;
        let mut st = state
            .into_inner()
            .map_err(|_| Error::Internal(format!("{} was left half-written", path.display())))?;
        if st.next != st.issued || !st.pending.is_empty() {
            return Err(Error::Internal(format!(
                "{} misses row groups ({} of {} appended)",
                path.display(),
                st.next,
                st.issued
            )));
        }
        if let Some(f) = st.flusher.take() {
            let _ = f.join();
        }
        let Some(w) = st.writer else {
            self.staged.retain(|s| s.3 != seq);
            return Ok(0);
        };
        let file = w
            .into_inner()
            .map_err(|e| Error::parquet(&path, e))?
            .into_inner()
            .map_err(|e| Error::io(&path, e.into_error()))?;
        file.sync_all().map_err(|e| Error::io(&path, e))?;
        if let Some(s) = self.staged.iter_mut().find(|s| s.3 == seq) {
            s.2 = st.rows;
        }
        Ok(st.rows)
    }

    /// Reserves the next staged file of `table` (or of the quarantine) holding `rows` rows: its
    /// path in the staging folder.
    fn next_file(&mut self, table: Option<Table>, rows: u64) -> PathBuf {
        let dir = match table {
            Some(t) => format!("tables/{}", t.name()),
            None => "quarantine".to_string(),
        };
        self.seq += 1;
        let rel = format!("{dir}/{}-{:04}.parquet", self.id, self.seq);
        self.staged.push((table, rel, rows, self.seq));
        self.staging.join(format!("{:04}.parquet", self.seq))
    }

    /// Replaces a table's contents (a small table such as `experiments`): its files leave the new
    /// manifest and `batches` are staged in their place. The old files stay on disk until the next
    /// writer removes them, so a reader of the previous manifest is never cut off mid-query.
    pub fn replace(&mut self, table: Table, batches: &[RecordBatch]) -> Result<()> {
        self.manifest.tables.remove(table.name());
        self.stage(Some(table), batches)
    }

    /// Replaces some of a table's files by `batches` (their rows, merged, plus any new ones): the
    /// files leave the new manifest and stay on disk until [`Writer::sweep`].
    pub fn replace_files(
        &mut self,
        table: Table,
        old: &[DataFile],
        batches: &[RecordBatch],
    ) -> Result<()> {
        if let Some(files) = self.manifest.tables.get_mut(table.name()) {
            files.retain(|f| !old.contains(f));
        }
        self.stage(Some(table), batches)
    }

    /// Moves staged files into place and atomically publishes the new manifest.
    pub fn publish(mut self) -> Result<Manifest> {
        let root = self.writer.ws.root.clone();
        for (table, rel, rows, seq) in &self.staged {
            let from = self.staging.join(format!("{seq:04}.parquet"));
            let to = root.join(rel);
            if let Some(parent) = to.parent() {
                fs::create_dir_all(parent).map_err(|e| Error::io(parent, e))?;
            }
            fs::rename(&from, &to).map_err(|e| Error::io(&to, e))?;
            if let Some(parent) = to.parent() {
                sync_dir(parent)?;
            }
            let entry = DataFile {
                path: rel.clone(),
                rows: *rows,
            };
            match table {
                Some(t) => self
                    .manifest
                    .tables
                    .entry(t.name().to_string())
                    .or_default()
                    .push(entry),
                None => self.manifest.quarantine.push(entry),
            }
        }
        self.manifest.version += 1;
        self.manifest.format_version = FORMAT_VERSION;
        let bytes = serde_json::to_vec_pretty(&self.manifest)
            .map_err(|e| Error::Internal(format!("manifest serialisation: {e}")))?;
        let tmp = root.join(format!("{MANIFEST}.tmp"));
        {
            let mut f = File::create(&tmp).map_err(|e| Error::io(&tmp, e))?;
            f.write_all(&bytes).map_err(|e| Error::io(&tmp, e))?;
            f.sync_all().map_err(|e| Error::io(&tmp, e))?;
        }
        fs::rename(&tmp, root.join(MANIFEST)).map_err(|e| Error::io(&root, e))?;
        sync_dir(&root)?;
        let _ = fs::remove_dir_all(&self.staging);
        Ok(std::mem::take(&mut self.manifest))
    }
}

fn sync_dir(dir: &Path) -> Result<()> {
    File::open(dir)
        .and_then(|d| d.sync_all())
        .map_err(|e| Error::io(dir, e))
}

fn walk_files(base: &Path) -> Result<Vec<PathBuf>> {
    let mut out = Vec::new();
    if !base.exists() {
        return Ok(out);
    }
    let mut stack = vec![base.to_path_buf()];
    while let Some(dir) = stack.pop() {
        for entry in fs::read_dir(&dir).map_err(|e| Error::io(&dir, e))? {
            let entry = entry.map_err(|e| Error::io(&dir, e))?;
            let path = entry.path();
            if path.is_dir() {
                stack.push(path);
            } else {
                out.push(path);
            }
        }
    }
    Ok(out)
}

fn relative(root: &Path, path: &Path) -> String {
    path.strip_prefix(root)
        .unwrap_or(path)
        .components()
        .map(|c| c.as_os_str().to_string_lossy())
        .collect::<Vec<_>>()
        .join("/")
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn second_writer_fails_clearly_and_readers_are_not_blocked() {
        let dir = tempfile::tempdir().unwrap();
        let ws = Workspace::open(dir.path()).unwrap();
        let w = ws.writer().unwrap();
        let err = ws.writer().unwrap_err().to_string();
        assert!(err.contains("another shoplens process"), "{err}");
        assert!(ws.manifest().is_ok());
        drop(w);
        assert!(ws.writer().is_ok());
    }

    /// `n` events numbered from `first`: event_id `e<i>`, ts `i` µs, event `product_view`.
    fn events(first: usize, n: usize) -> RecordBatch {
        use datafusion::arrow::array::{ArrayRef, StringArray, TimestampMicrosecondArray};
        let schema = Table::Events.schema();
        let ids: Vec<String> = (first..first + n).map(|i| format!("e{i}")).collect();
        let cols: Vec<ArrayRef> = schema
            .fields()
            .iter()
            .map(|f| -> ArrayRef {
                match f.name().as_str() {
                    "event_id" => std::sync::Arc::new(StringArray::from(ids.clone())),
                    "event" => std::sync::Arc::new(StringArray::from(vec!["product_view"; n])),
                    "ts" => std::sync::Arc::new(
                        TimestampMicrosecondArray::from_iter_values(
                            (first..first + n).map(|i| i as i64),
                        )
                        .with_timezone("UTC"),
                    ),
                    _ => datafusion::arrow::array::new_null_array(f.data_type(), n),
                }
            })
            .collect();
        RecordBatch::try_new(schema, cols).unwrap()
    }

    fn event_ids(ws: &Workspace) -> Vec<String> {
        let m = ws.manifest().unwrap();
        let files = m.tables.get("events").into_iter().flatten();
        files
            .flat_map(|f| read_column(&ws.root.join(&f.path), "event_id"))
            .collect()
    }

    #[test]
    fn a_stream_appends_row_groups_in_place_order_whatever_order_they_come_in() {
        let dir = tempfile::tempdir().unwrap();
        let ws = Workspace::open(dir.path()).unwrap();
        let w = ws.writer().unwrap();
        let mut c = w.begin().unwrap();
        let s = c.stream(Table::Events);
        let unused = c.stream(Table::Orders);
        // Two files of four and two chunks; chunk 1 of the first has no rows.
        assert_eq!(s.reserve(4).unwrap(), 0);
        assert_eq!(s.reserve(2).unwrap(), 4);
        s.put(5, &events(80, 3)).unwrap();
        s.put(2, &events(20, 2)).unwrap();
        s.put(1, &events(0, 0)).unwrap();
        s.put(0, &events(0, 5)).unwrap();
        s.put(4, &events(50, 1)).unwrap();
        s.put(3, &events(30, 4)).unwrap();
        assert_eq!(c.close_stream(s).unwrap(), 15);
        assert_eq!(c.close_stream(unused).unwrap(), 0);
        let m = c.publish().unwrap();
        drop(w);
        assert_eq!(m.tables["events"].len(), 1);
        assert_eq!(m.tables["events"][0].rows, 15);
        assert!(!m.tables.contains_key("orders"), "{:?}", m.tables);
        let want: Vec<String> = [(0, 5), (20, 2), (30, 4), (50, 1), (80, 3)]
            .iter()
            .flat_map(|&(f, n)| (f..f + n).map(|i| format!("e{i}")))
            .collect();
        assert_eq!(event_ids(&ws), want);
    }

    #[test]
    fn nearly_distinct_columns_go_without_dictionary_and_unordered_text_without_statistics() {
        use datafusion::arrow::array::StringArray;
        let n = 1000;
        let mut b = events(0, n);
        // event_id is ordered as made (e0, e1, …, e10 sorts before e2: not in order); user_id
        // repeats in order; category repeats out of order; item_id is distinct and unordered;
        // event is one value.
        let users: Vec<String> = (0..n).map(|i| format!("u{}", i / 100)).collect();
        let categories: Vec<String> = (0..n).map(|i| format!("c{}", (i * 37) % 11)).collect();
        let items: Vec<String> = (0..n)
            .map(|i| format!("{}", (i * 7919) % 100_003))
            .collect();
        let schema = b.schema();
        let mut cols = b.columns().to_vec();
        cols[schema.index_of("user_id").unwrap()] = std::sync::Arc::new(StringArray::from(users));
        cols[schema.index_of("item_id").unwrap()] = std::sync::Arc::new(StringArray::from(items));
        cols[schema.index_of("category").unwrap()] =
            std::sync::Arc::new(StringArray::from(categories));
        b = RecordBatch::try_new(schema, cols).unwrap();
        let got: Vec<(String, bool, bool, bool)> = column_choices(&b)
            .into_iter()
            .map(|u| (u.name, u.plain, u.statistics, u.rising))
            .collect();
        // Name, no dictionary, statistics, stored as differences.
        let want = [
            ("event_id", true, false, false),
            ("ts", true, true, true),
            ("item_id", true, false, false),
            ("category", false, false, false),
        ];
        assert_eq!(
            got,
            want.map(|(n, p, s, r)| (n.to_string(), p, s, r)).to_vec(),
            "user_id, event and the null columns keep Parquet's defaults"
        );
    }

    #[test]
    fn nearly_distinct_text_is_compressed_only_where_its_first_values_compress() {
        use datafusion::arrow::array::StringArray;
        use datafusion::parquet::file::reader::{FileReader, SerializedFileReader};
        let n = 5000;
        let mut b = events(0, n);
        let schema = b.schema();
        let mut cols = b.columns().to_vec();
        // Catalogue numbers (no repeats for Snappy to find) and sentences (words repeat).
        let items: Vec<String> = (0..n)
            .map(|i| format!("{}", (i * 7919) % 1_000_003 + 1_000_000))
            .collect();
        let words = [
            "soft", "fabric", "runs", "small", "love", "the", "colour", "return",
        ];
        let pages: Vec<String> = (0..n)
            .map(|i| {
                let w = |k: usize| words[(i * k + k) % words.len()];
                format!(
                    "review {i}: {} {} {} {}, {} {}",
                    w(3),
                    w(5),
                    w(7),
                    w(11),
                    w(13),
                    w(1)
                )
            })
            .collect();
        cols[schema.index_of("item_id").unwrap()] =
            std::sync::Arc::new(StringArray::from(items.clone()));
        cols[schema.index_of("page").unwrap()] =
            std::sync::Arc::new(StringArray::from(pages.clone()));
        b = RecordBatch::try_new(schema.clone(), cols).unwrap();
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("t.parquet");
        write_parquet(&path, schema, std::slice::from_ref(&b)).unwrap();
        let reader = SerializedFileReader::new(File::open(&path).unwrap()).unwrap();
        let group = reader.metadata().row_group(0);
        let column = |name: &str| {
            (0..group.num_columns())
                .map(|i| group.column(i))
                .find(|c| c.column_path().string() == name)
                .unwrap()
        };
        let (item, page) = (column("item_id"), column("page"));
        assert_eq!(item.compression(), Compression::UNCOMPRESSED);
        assert!(matches!(page.compression(), Compression::SNAPPY));
        for c in [item, page] {
            assert!(
                c.encodings()
                    .any(|e| e == Encoding::DELTA_LENGTH_BYTE_ARRAY),
                "{:?}",
                c.encodings().collect::<Vec<_>>()
            );
        }
        assert!(page.compressed_size() * 2 < page.uncompressed_size());
        // The values read back as written.
        let back = read_column(&path, "item_id");
        assert_eq!(back, items);
        assert_eq!(read_column(&path, "page"), pages);
    }

    fn read_column(path: &Path, name: &str) -> Vec<String> {
        use datafusion::arrow::array::AsArray;
        use datafusion::parquet::arrow::arrow_reader::ParquetRecordBatchReaderBuilder;
        let file = File::open(path).unwrap();
        let reader = ParquetRecordBatchReaderBuilder::try_new(file)
            .unwrap()
            .build()
            .unwrap();
        let mut out = Vec::new();
        for batch in reader {
            let batch = batch.unwrap();
            let col = batch.column_by_name(name).unwrap().as_string::<i32>();
            out.extend(col.iter().map(|v| v.unwrap().to_string()));
        }
        out
    }

    #[test]
    fn a_stream_missing_a_place_fails_to_close() {
        let dir = tempfile::tempdir().unwrap();
        let ws = Workspace::open(dir.path()).unwrap();
        let w = ws.writer().unwrap();
        let mut c = w.begin().unwrap();
        let s = c.stream(Table::Events);
        s.reserve(2).unwrap();
        s.put(1, &events(0, 2)).unwrap();
        let err = c.close_stream(s).unwrap_err().to_string();
        assert!(err.contains("misses row groups"), "{err}");
    }

    #[test]
    fn unpublished_files_are_removed_by_the_next_writer() {
        let dir = tempfile::tempdir().unwrap();
        let ws = Workspace::open(dir.path()).unwrap();
        let stray = dir.path().join("tables/orders/999999-0001.parquet");
        fs::create_dir_all(stray.parent().unwrap()).unwrap();
        fs::write(&stray, b"half").unwrap();
        let _w = ws.writer().unwrap();
        assert!(!stray.exists());
    }
}
