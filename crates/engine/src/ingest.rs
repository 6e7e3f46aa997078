//! Ingest: read source files, map them onto the canonical tables, validate, quarantine bad rows,
//! and commit everything atomically.
//!
//! Every source row ends in exactly one of three places: stored (it fed at least one table),
//! quarantined (with file, line, column and reason), or excluded on purpose by the mapping (a
//! sample restriction, counted with its reason). So read = stored + quarantined + excluded.

pub mod mapping;
pub mod presets;

pub(crate) mod build;
mod plan;
mod reader;
mod source;
pub(crate) mod value;

use std::collections::{BTreeMap, BTreeSet, HashMap, HashSet};
use std::path::{Path, PathBuf};

use datafusion::arrow::array::{Array, StringArray};
use datafusion::arrow::compute::{cast, filter_record_batch};
use datafusion::arrow::datatypes::DataType;
use datafusion::arrow::record_batch::RecordBatch;
use serde::Serialize;

use crate::error::{Error, Result};
use crate::ingest::mapping::{Layout, MappingFile};
use crate::ingest::plan::RefPlan;
use crate::ingest::reader::{FileOutput, TableOut};
use crate::storage::quarantine::{QRow, quarantine_batch};
use crate::storage::schema::Table;
use crate::storage::workspace::{IngestRecord, Workspace};

/// What an ingest was asked to do.
#[derive(Debug, Clone, Default)]
pub struct IngestOptions {
    /// Ingest files whose content was ingested before.
    pub force: bool,
}

/// Counts for one source file.
#[derive(Debug, Clone, Serialize)]
pub struct FileSummary {
    /// The file as given.
    pub file: String,
    /// Layout of the mapping that read it.
    pub layout: String,
    /// Source rows read (records; blank lines are not rows).
    pub read: u64,
    /// Source rows stored in at least one table.
    pub stored: u64,
    /// Source rows set aside in the quarantine.
    pub quarantined: u64,
    /// Source rows left out on purpose by the mapping.
    pub excluded: u64,
    /// Why rows were excluded, with counts.
    pub excluded_reasons: BTreeMap<String, u64>,
    /// Quarantine reasons (column: reason kind) with counts, most frequent first.
    pub quarantine_reasons: Vec<(String, u64)>,
    /// Rows written per table.
    pub tables: BTreeMap<String, u64>,
}

/// The result of an ingest.
#[derive(Debug, Clone, Serialize)]
pub struct IngestSummary {
    /// Commit id (the manifest version) that published the data.
    pub commit: String,
    /// Mapping or preset name.
    pub mapping: String,
    /// The workspace's time zone after the ingest.
    pub timezone: Option<String>,
    /// Per file.
    pub files: Vec<FileSummary>,
    /// Rows written per table, all files together.
    pub tables: BTreeMap<String, u64>,
    /// The mapping's notes (what the source lacks, what was synthesised).
    pub notes: Vec<String>,
}

/// Progress of an ingest, for a progress bar.
#[derive(Debug, Clone, Copy)]
pub enum Progress<'a> {
    /// Starting a file of this many bytes.
    File(&'a str, u64),
    /// Bytes of the current file processed so far.
    Bytes(u64),
}

/// Per-ingest state shared by its files.
struct IngestState {
    produced: Vec<(Table, RecordBatch)>,
    seen_keys: HashMap<Table, HashMap<String, (String, u64)>>,
    /// Keys of `table.column` known so far (stored, plus this ingest's output), and how many of
    /// `produced`'s batches are already folded in.
    known_keys: HashMap<(Table, String), (HashSet<String>, usize)>,
}

/// Ingests `files` with `mapping` into the workspace, as one atomic commit.
pub fn ingest(
    ws: &Workspace,
    files: &[PathBuf],
    mapping: &MappingFile,
    opts: &IngestOptions,
    progress: &(dyn Fn(Progress<'_>) + Sync),
) -> Result<IngestSummary> {
    let name = mapping.name.clone().unwrap_or_else(|| "mapping".into());
    if files.is_empty() {
        return Err(Error::Invalid("no files to ingest".into()));
    }
    let writer = ws.writer()?;
    let mut commit = writer.begin()?;
    let base = commit.base().clone();
    let tz = mapping
        .timezone
        .as_deref()
        .map(str::parse::<chrono_tz::Tz>)
        .transpose()
        .map_err(|_| Error::Mapping {
            origin: name.clone(),
            reason: "unknown time zone".into(),
        })?;
    if let (Some(zone), Some(ws_zone)) = (&mapping.timezone, &base.settings.timezone)
        && zone != ws_zone
    {
        return Err(Error::ZoneMismatch {
            file: files[0].display().to_string(),
            mapping: name,
            source_zone: zone.clone(),
            workspace_zone: ws_zone.clone(),
        });
    }
    if base.settings.timezone.is_none() && mapping.timezone.is_some() {
        commit.settings_mut().timezone = mapping.timezone.clone();
    }
    if base.settings.currency.is_none() && mapping.currency.is_some() {
        commit.settings_mut().currency = mapping.currency.clone();
    }
    if mapping.non_member_tiers.is_some() {
        commit.settings_mut().non_member_tiers = mapping.non_member_tiers.clone();
    }
    let tz = tz
        .or_else(|| {
            base.settings
                .timezone
                .as_deref()
                .and_then(|z| z.parse().ok())
        })
        .unwrap_or(chrono_tz::UTC);

    let layouts = mapping.layouts();
    let referenced: HashSet<Table> = layouts
        .iter()
        .flat_map(|l| &l.tables)
        .filter_map(|t| t.references.as_ref()?.target())
        .map(|(t, _)| t)
        .collect();
    let streams: reader::Streams = layouts
        .iter()
        .flat_map(|l| &l.tables)
        .filter_map(|t| Table::from_name(&t.name))
        .collect::<BTreeSet<Table>>()
        .into_iter()
        .map(|t| (t, commit.stream(t)))
        .collect();
    let mut ordered: Vec<(usize, &PathBuf)> = Vec::new();
    for f in files {
        ordered.push((select_layout(&layouts, f, &name)?, f));
    }
    ordered.sort_by_key(|(i, _)| *i);

    let mut state = IngestState {
        produced: Vec::new(),
        seen_keys: HashMap::new(),
        known_keys: HashMap::new(),
    };
    let mut summaries = Vec::new();
    let mut quarantine = Vec::new();
    let mut hashes: HashSet<String> = HashSet::new();
    for (li, path) in ordered {
        let layout = &layouts[li];
        let shown = path.display().to_string();
        let loaded = source::load(path)?;
        if !opts.force {
            if let Some(prev) = base
                .ingests
                .iter()
                .find(|r| r.content_hash == loaded.content_hash)
            {
                return Err(Error::AlreadyIngested {
                    file: shown,
                    previous: prev.source.clone(),
                    commit: prev.commit.clone(),
                });
            }
            if !hashes.insert(loaded.content_hash.clone()) {
                return Err(Error::AlreadyIngested {
                    file: shown,
                    previous: "another file of this ingest".into(),
                    commit: commit.id().to_string(),
                });
            }
        }
        progress(Progress::File(&shown, loaded.bytes.len() as u64));
        let ctx = plan::FileCtx {
            file_name: path
                .file_name()
                .map(|n| n.to_string_lossy().into_owned())
                .unwrap_or_default(),
            hash8: loaded.content_hash["blake3:".len()..][..8].to_string(),
        };
        let out = reader::read_file(
            &loaded.bytes,
            layout,
            tz,
            &shown,
            &name,
            &ctx,
            &referenced,
            &streams,
            progress,
        )?;
        let (summary, qrows) =
            finish_file(ws, &base, &shown, layout, out, &mut state, &loaded.bytes)?;
        commit.record_ingest(IngestRecord {
            commit: commit.id().to_string(),
            source: shown.clone(),
            content_hash: loaded.content_hash,
            mapping: name.clone(),
            read: summary.read,
            stored: summary.stored,
            quarantined: summary.quarantined,
            excluded: summary.excluded,
        });
        quarantine.extend(qrows.into_iter().map(|q| (shown.clone(), q)));
        summaries.push(summary);
        source::release(loaded.bytes);
    }

    let mut totals: BTreeMap<String, u64> = BTreeMap::new();
    let mut by_table: BTreeMap<Table, Vec<RecordBatch>> = BTreeMap::new();
    for (t, b) in state.produced {
        *totals.entry(t.name().to_string()).or_default() += b.num_rows() as u64;
        by_table.entry(t).or_default().push(b);
    }
    for (t, batches) in &by_table {
        commit.stage(Some(*t), batches)?;
    }
    for (t, stream) in streams {
        let rows = commit.close_stream(stream)?;
        if rows > 0 {
            *totals.entry(t.name().to_string()).or_default() += rows;
        }
    }
    if !quarantine.is_empty() {
        let batch = quarantine_batch(commit.id(), &quarantine)?;
        commit.stage(None, &[batch])?;
    }
    let id = commit.id().to_string();
    let manifest = commit.publish()?;
    Ok(IngestSummary {
        commit: id,
        mapping: name,
        timezone: manifest.settings.timezone,
        files: summaries,
        tables: totals,
        notes: mapping.notes.clone(),
    })
}

fn select_layout(layouts: &[Layout], path: &Path, mapping: &str) -> Result<usize> {
    if layouts.len() == 1 {
        return Ok(0);
    }
    let name = path
        .file_name()
        .map(|n| n.to_string_lossy().into_owned())
        .unwrap_or_default();
    for (i, l) in layouts.iter().enumerate() {
        let Some(pattern) = &l.source.files else {
            continue;
        };
        let p = glob::Pattern::new(pattern).map_err(|e| Error::Mapping {
            origin: mapping.to_string(),
            reason: format!("bad file pattern `{pattern}`: {e}"),
        })?;
        if p.matches(&name) {
            return Ok(i);
        }
    }
    if let Some(i) = layouts.iter().position(|l| l.source.files.is_none()) {
        return Ok(i);
    }
    let patterns: Vec<String> = layouts
        .iter()
        .filter_map(|l| l.source.files.clone())
        .collect();
    Err(Error::BadFile {
        file: path.display().to_string(),
        reason: format!(
            "`{mapping}` has no layout for this file name (it reads files named {})",
            patterns.join(", ")
        ),
    })
}

/// A rejected source line: why, and whether it is excluded on purpose rather than quarantined.
struct Reject {
    column: String,
    reason: String,
    excluded: bool,
}

fn finish_file(
    ws: &Workspace,
    base: &crate::storage::workspace::Manifest,
    file: &str,
    layout: &Layout,
    out: FileOutput,
    state: &mut IngestState,
    body: &[u8],
) -> Result<(FileSummary, Vec<QRow>)> {
    let FileOutput {
        plan,
        tables,
        mut quarantine,
        read,
    } = out;
    let mut rejects: BTreeMap<u64, Reject> = BTreeMap::new();

    for (ti, tp) in plan.tables.iter().enumerate() {
        if !tp.checked_key.is_empty() {
            let seen = state.seen_keys.entry(tp.table).or_default();
            for (line, key) in keys_of(&tables[ti], &tp.checked_key)? {
                if rejects.contains_key(&line) {
                    continue;
                }
                match seen.get(&key) {
                    Some((f, first)) => {
                        let at = if f == file {
                            format!("line {first}")
                        } else {
                            format!("{f} line {first}")
                        };
                        rejects.insert(
                            line,
                            Reject {
                                column: tp
                                    .checked_key
                                    .iter()
                                    .map(|k| tp.label(*k))
                                    .collect::<Vec<_>>()
                                    .join("+"),
                                reason: format!(
                                    "duplicate key `{key}` in {} (first on {at})",
                                    tp.table.name()
                                ),
                                excluded: false,
                            },
                        );
                    }
                    None => {
                        seen.insert(key, (file.to_string(), line));
                    }
                }
            }
        }
        if let Some(rp) = &tp.references {
            let known = known_keys(ws, base, state, rp)?;
            for (line, key) in keys_of(&tables[ti], &[rp.column])? {
                if !known.contains(&key) && !rejects.contains_key(&line) {
                    rejects.insert(
                        line,
                        Reject {
                            column: tp.label(rp.column),
                            reason: rp.reason.clone(),
                            excluded: rp.exclude,
                        },
                    );
                }
            }
        }
    }

    let mut table_rows: BTreeMap<String, u64> = BTreeMap::new();
    for (tp, to) in plan.tables.iter().zip(tables) {
        let batches = match to {
            TableOut::Built(parts) => {
                let mut kept = Vec::new();
                for (batch, lines) in parts {
                    if rejects.is_empty() {
                        kept.push(batch);
                    } else {
                        let mask: datafusion::arrow::array::BooleanArray = lines
                            .iter()
                            .map(|l| Some(!rejects.contains_key(l)))
                            .collect();
                        kept.push(filter_record_batch(&batch, &mask)?);
                    }
                }
                kept
            }
            TableOut::Streamed(n) => {
                // Written only when no check above can reject a row.
                if !rejects.is_empty() {
                    return Err(Error::Internal(
                        "rows were written before a check rejected some".into(),
                    ));
                }
                if n > 0 {
                    *table_rows.entry(tp.table.name().to_string()).or_default() += n as u64;
                }
                continue;
            }
            TableOut::Rows(rows) => {
                let mut g = build::Grouper::new(
                    tp.group_by.clone(),
                    tp.cols
                        .iter()
                        .map(|c| c.as_ref().map(|c| c.agg).unwrap_or_default())
                        .collect(),
                );
                for (line, vals) in rows {
                    if !rejects.contains_key(&line) {
                        g.add(vals)?;
                    }
                }
                let groups = g.into_rows();
                let mut b = build::TableBuilder::new(tp.table, groups.len());
                for vals in &groups {
                    b.push(vals)?;
                }
                vec![b.finish()?]
            }
        };
        for b in batches {
            if b.num_rows() > 0 {
                *table_rows.entry(tp.table.name().to_string()).or_default() += b.num_rows() as u64;
                state.produced.push((tp.table, b));
            }
        }
    }

    let mut excluded_reasons: BTreeMap<String, u64> = BTreeMap::new();
    let wanted: BTreeSet<u64> = rejects
        .iter()
        .filter(|(_, r)| !r.excluded)
        .map(|(l, _)| *l)
        .collect();
    let raws = source::physical_lines(body, &wanted);
    for (line, r) in rejects {
        if r.excluded {
            *excluded_reasons.entry(r.reason).or_default() += 1;
        } else {
            let raw = raws.get(&line).cloned().unwrap_or_default();
            quarantine.push(QRow {
                line,
                column: r.column,
                reason: r.reason,
                raw,
            });
        }
    }
    quarantine.sort_by_key(|q| q.line);
    let excluded: u64 = excluded_reasons.values().sum();
    let quarantined = quarantine.len() as u64;
    let mut reasons: BTreeMap<String, u64> = BTreeMap::new();
    for q in &quarantine {
        *reasons
            .entry(format!("{}: {}", q.column, reason_kind(&q.reason)))
            .or_default() += 1;
    }
    let mut quarantine_reasons: Vec<(String, u64)> = reasons.into_iter().collect();
    quarantine_reasons.sort_by(|a, b| b.1.cmp(&a.1).then_with(|| a.0.cmp(&b.0)));
    let summary = FileSummary {
        file: file.to_string(),
        layout: layout.name.clone().unwrap_or_else(|| "default".into()),
        read,
        stored: read - quarantined - excluded,
        quarantined,
        excluded,
        excluded_reasons,
        quarantine_reasons,
        tables: table_rows,
    };
    Ok((summary, quarantine))
}

/// A reason without its quoted value, for grouping counts.
fn reason_kind(reason: &str) -> String {
    let mut out = String::new();
    let mut in_quote = false;
    for c in reason.chars() {
        if c == '`' {
            in_quote = !in_quote;
            if in_quote {
                out.push('…');
            }
        } else if !in_quote {
            out.push(c);
        }
    }
    out
}

fn keys_of(t: &TableOut, cols: &[usize]) -> Result<Vec<(u64, String)>> {
    let mut out = Vec::new();
    match t {
        TableOut::Built(parts) => {
            for (batch, lines) in parts {
                let arrays: Vec<StringArray> = cols
                    .iter()
                    .map(|c| {
                        let a = cast(batch.column(*c), &DataType::Utf8)?;
                        a.as_any()
                            .downcast_ref::<StringArray>()
                            .cloned()
                            .ok_or_else(|| Error::Internal("key cast".into()))
                    })
                    .collect::<Result<_>>()?;
                for (i, line) in lines.iter().enumerate() {
                    let key: Vec<&str> = arrays
                        .iter()
                        .map(|a| if a.is_null(i) { "" } else { a.value(i) })
                        .collect();
                    out.push((*line, key.join("|")));
                }
            }
        }
        TableOut::Rows(rows) => {
            for (line, vals) in rows {
                let key: Vec<String> = cols.iter().map(|c| plan::key_text(&vals[*c])).collect();
                out.push((*line, key.join("|")));
            }
        }
        TableOut::Streamed(_) => {
            return Err(Error::Internal(
                "a table with key checks was written before them".into(),
            ));
        }
    }
    Ok(out)
}

fn known_keys<'s>(
    ws: &Workspace,
    base: &crate::storage::workspace::Manifest,
    state: &'s mut IngestState,
    rp: &RefPlan,
) -> Result<&'s HashSet<String>> {
    let key = (rp.to_table, rp.to_column.clone());
    if !state.known_keys.contains_key(&key) {
        let stored = crate::query::stored_strings(ws, base, rp.to_table, &rp.to_column)?;
        state.known_keys.insert(key.clone(), (stored, 0));
    }
    let col = rp
        .to_table
        .columns()
        .iter()
        .position(|c| c.name == rp.to_column)
        .unwrap_or(0);
    let IngestState {
        produced,
        known_keys,
        ..
    } = state;
    let (set, folded) = known_keys
        .get_mut(&key)
        .ok_or_else(|| Error::Internal("key set".into()))?;
    // Only batches produced since the last look are new.
    for (t, b) in &produced[*folded..] {
        if *t == rp.to_table {
            let a = cast(b.column(col), &DataType::Utf8)?;
            if let Some(s) = a.as_any().downcast_ref::<StringArray>() {
                set.extend(s.iter().flatten().map(str::to_string));
            }
        }
    }
    *folded = produced.len();
    Ok(set)
}
