//! Per-unit funnel results computed in-process from the partitions of one scan, without the
//! aggregate's partial/final exchange.
//!
//! `funnel_detail` runs as a partial aggregation per partition whose state is every row of every
//! group (a funnel cannot be summed), hash-repartitioned by group and merged again: each event is
//! hashed three times and copied twice on the way. On the embedded engine the funnel instead
//! reads the partitions of `SELECT unit[, bkey], ts, event` side by side, gives each run of
//! equal keys (a user's events are usually contiguous: shops export, and Taobao publishes, logs
//! grouped by user) one group lookup, and merges the partitions' groups by key once at the end.
//! Each unit's entries then go through the same sort and scan as the aggregate's, so the results
//! are the aggregate's (tests compare both on every funnel case).

use std::sync::Arc;

use datafusion::arrow::array::builder::make_view;
use datafusion::arrow::array::{
    Array, ArrayRef, AsArray, RecordBatch, StringViewArray, UInt32Array,
};
use datafusion::arrow::compute::{cast, partition, take};
use datafusion::arrow::datatypes::{DataType, Field, Schema, SchemaRef};
use datafusion::logical_expr::EmitTo;
use datafusion::physical_plan::ExecutionPlanProperties;
use datafusion::physical_plan::aggregates::group_values::new_group_values;
use datafusion::physical_plan::aggregates::order::GroupOrdering;
use datafusion::prelude::SessionContext;
use futures::StreamExt;
use rayon::prelude::*;
use shoplens_models::funnel::{Funnel, Mode, scan, sort_entries};

use super::{FunnelSpec, UnitKey, UnitResult, detail_config};
use crate::error::{Error, Result};
use crate::functions::funnel::{condition_bit, detail_funnel, kept, ts_values};
use crate::sql::strings;

/// What one partition read: its groups' keys (unit, breakdown value), the entries (timestamp,
/// step mask) of its kept rows batch by batch, and its runs: `(group, batch, start, len)`, the
/// entries `chunks[batch][start..start + len]` of one group, in read order.
struct Part {
    keys: Vec<ArrayRef>,
    chunks: Vec<Vec<(i64, u32)>>,
    runs: Vec<(u32, u32, u32, u32)>,
}

/// Per (unit, breakdown value) of `funnel_base` (read from `funnel_all`, the same rows with
/// those of no unit): the funnel's result, as `units` returns it.
pub(super) async fn units(
    ctx: &SessionContext,
    spec: &FunnelSpec,
    by_breakdown: bool,
) -> Result<Vec<(UnitKey, UnitResult)>> {
    let funnel =
        detail_funnel(&detail_config(spec)).ok_or_else(|| Error::Internal("funnel mode".into()))?;
    // `funnel_all`: `funnel_base` with the events of no unit, skipped below. The step
    // conditions are event names, matched below too (one pass instead of one per step).
    let keys = if by_breakdown { "unit, bkey" } else { "unit" };
    let q = format!("SELECT {keys}, ts, event FROM funnel_all");
    let plan = ctx.sql(&q).await?.create_physical_plan().await?;
    // The group key: every column before ts and event, nullable.
    let schema = plan.schema();
    let key_schema: SchemaRef = Arc::new(Schema::new(
        schema.fields()[..schema.fields().len() - 2]
            .iter()
            .map(|f| Field::new(f.name(), f.data_type().clone(), true))
            .collect::<Vec<_>>(),
    ));
    let funnel = Arc::new(funnel);
    let names: Arc<Vec<String>> =
        Arc::new(spec.steps.iter().chain(&spec.exclude).cloned().collect());
    let mut tasks = Vec::new();
    for p in 0..plan.output_partitioning().partition_count() {
        let stream = plan.execute(p, ctx.task_ctx())?;
        let (keys, funnel, names) = (
            Arc::clone(&key_schema),
            Arc::clone(&funnel),
            Arc::clone(&names),
        );
        tasks.push(tokio::spawn(async move {
            read_partition(stream, keys, &funnel, &names).await
        }));
    }
    let mut parts = Vec::with_capacity(tasks.len());
    for t in tasks {
        parts.push(
            t.await
                .map_err(|e| Error::Internal(format!("funnel partition: {e}")))??,
        );
    }
    merge(parts, key_schema, &funnel)
}

/// Reads one partition: a group lookup per run of equal keys.
/// Its columns: the key (`key_schema`: the unit, and the breakdown value if any), ts, event.
async fn read_partition(
    mut stream: datafusion::physical_plan::SendableRecordBatchStream,
    key_schema: SchemaRef,
    funnel: &Funnel,
    names: &[String],
) -> Result<Part> {
    let nkeys = key_schema.fields().len();
    let mut groups = new_group_values(key_schema, &GroupOrdering::None)?;
    let keep_unrelated = funnel.mode == Mode::StrictOrder;
    let mut chunks: Vec<Vec<(i64, u32)>> = Vec::new();
    let mut runs: Vec<(u32, u32, u32, u32)> = Vec::new();
    let mut run_groups = Vec::new();
    while let Some(batch) = stream.next().await {
        let batch: RecordBatch = batch?;
        if batch.num_rows() == 0 {
            continue;
        }
        let keys = &batch.columns()[..nkeys];
        let key_runs: Vec<_> = partition(keys)?
            .ranges()
            .into_iter()
            .filter(|r| keys[0].is_valid(r.start))
            .collect();
        let heads = UInt32Array::from_iter_values(key_runs.iter().map(|r| r.start as u32));
        let head_keys = keys
            .iter()
            .map(|k| take(k, &heads, None))
            .collect::<std::result::Result<Vec<_>, _>>()?;
        run_groups.clear();
        groups.intern(&head_keys, &mut run_groups)?;
        let ts = ts_values(batch.column(nkeys))?;
        let masks = event_masks(batch.column(nkeys + 1), names, funnel.steps)?;
        let chunk_no = chunks.len() as u32;
        let mut chunk = Vec::with_capacity(batch.num_rows());
        for (run, &g) in key_runs.iter().zip(&run_groups) {
            let start = chunk.len();
            chunk.extend(
                run.clone()
                    .filter(|&i| kept(masks[i], ts.is_valid(i), keep_unrelated))
                    .map(|i| (ts.value(i), masks[i])),
            );
            if chunk.len() > start {
                runs.push((
                    g as u32,
                    chunk_no,
                    start as u32,
                    (chunk.len() - start) as u32,
                ));
            }
        }
        chunks.push(chunk);
    }
    let keys = if groups.is_empty() {
        Vec::new()
    } else {
        groups.emit(EmitTo::All)?
    };
    Ok(Part { keys, chunks, runs })
}

/// Merges the partitions' groups by key, then scans each unit's entries (in parallel).
fn merge(
    parts: Vec<Part>,
    key_schema: SchemaRef,
    funnel: &Funnel,
) -> Result<Vec<(UnitKey, UnitResult)>> {
    let mut all = new_group_values(key_schema, &GroupOrdering::None)?;
    // Each partition's local group → the merged group.
    let mut to_global: Vec<Vec<usize>> = Vec::with_capacity(parts.len());
    for p in &parts {
        let mut g = Vec::new();
        if !p.keys.is_empty() {
            all.intern(&p.keys, &mut g)?;
        }
        to_global.push(g);
    }
    let n = all.len();
    if n == 0 {
        return Ok(Vec::new());
    }
    // The runs of each merged group (partition, run), in partition then read order.
    let mut starts = vec![0usize; n + 1];
    for (p, map) in parts.iter().zip(&to_global) {
        for r in &p.runs {
            starts[map[r.0 as usize] + 1] += 1;
        }
    }
    for i in 0..n {
        starts[i + 1] += starts[i];
    }
    let mut pos = starts[..n].to_vec();
    let mut pieces = vec![(0u32, 0u32); starts[n]];
    for (pi, (p, map)) in parts.iter().zip(&to_global).enumerate() {
        for (ri, r) in p.runs.iter().enumerate() {
            let g = map[r.0 as usize];
            pieces[pos[g]] = (pi as u32, ri as u32);
            pos[g] += 1;
        }
    }
    let results: Vec<UnitResult> = (0..n)
        .into_par_iter()
        .with_min_len(1024)
        .map_init(Vec::new, |scratch: &mut Vec<(i64, u32)>, g| {
            let slice = |&(p, r): &(u32, u32)| {
                let part = &parts[p as usize];
                let (_, c, start, len) = part.runs[r as usize];
                &part.chunks[c as usize][start as usize..(start + len) as usize]
            };
            let mine = &pieces[starts[g]..starts[g + 1]];
            let r = match mine {
                [one] if slice(one).is_sorted_by_key(|e| e.0) => scan(funnel, slice(one)),
                _ => {
                    scratch.clear();
                    for piece in mine {
                        scratch.extend_from_slice(slice(piece));
                    }
                    sort_entries(scratch);
                    scan(funnel, scratch)
                }
            };
            UnitResult {
                level: r.level,
                times: r.times().collect(),
            }
        })
        .collect();
    let keys = all.emit(EmitTo::All)?;
    let bkeys = keys.get(1).map(strings).transpose()?;
    Ok(results
        .into_iter()
        .enumerate()
        .map(|(g, r)| {
            let b = bkeys
                .as_ref()
                .filter(|b| !b.is_null(g))
                .map(|b| b.value(g).to_string());
            ((None, b), r)
        })
        .collect())
}

/// Each row's step bits from its event name: what `functions::funnel::step_masks` gives for the conditions
/// `event = name` (steps, then exclusions), in one pass over the string views. A name of at
/// most 12 bytes is held inside its view, so one 128-bit comparison decides; a longer one is
/// compared by length and prefix first.
fn event_masks(event: &ArrayRef, names: &[String], steps: usize) -> Result<Vec<u32>> {
    let converted;
    let views: &StringViewArray = match event.as_string_view_opt() {
        Some(v) => v,
        None => {
            converted = cast(event, &DataType::Utf8View)?;
            converted.as_string_view()
        }
    };
    let wanted: Vec<(u128, bool, u32)> = names
        .iter()
        .enumerate()
        .map(|(k, n)| {
            (
                make_view(n.as_bytes(), 0, 0),
                n.len() <= 12,
                condition_bit(k, steps),
            )
        })
        .collect();
    let raw = views.views();
    // Inline names first, without branches: every row against every such name.
    let mut out: Vec<u32> = raw
        .iter()
        .map(|&v| {
            wanted
                .iter()
                .filter(|w| w.1)
                .fold(0u32, |m, &(w, _, bit)| m | (bit * u32::from(v == w)))
        })
        .collect();
    for (k, &(w, inline, bit)) in wanted.iter().enumerate() {
        if inline {
            continue;
        }
        for (i, (m, &v)) in out.iter_mut().zip(raw.iter()).enumerate() {
            if v as u64 == w as u64 && views.value(i) == names[k] {
                *m |= bit;
            }
        }
    }
    // A null's view is not meaningful: no step.
    if let Some(nulls) = views.nulls() {
        for (i, m) in out.iter_mut().enumerate() {
            if nulls.is_null(i) {
                *m = 0;
            }
        }
    }
    Ok(out)
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used, reason = "tests")]

    use std::sync::Arc;

    use datafusion::arrow::array::{ArrayRef, StringArray, StringViewArray};
    use shoplens_models::funnel::EXCLUDED;

    use super::event_masks;

    #[test]
    fn event_masks_match_names_inline_and_long() {
        let names: Vec<String> = ["order", "checkout_start", "order", "refund_requested"]
            .map(String::from)
            .to_vec();
        let rows = [
            Some("order"),
            Some("checkout_start"),
            Some("checkout_stops"),
            Some("orders"),
            None,
            Some("refund_requested"),
            Some("refund_requestex"),
            Some(""),
        ];
        let want = vec![0b101, 0b010, 0, 0, 0, EXCLUDED, 0, 0];
        let views: ArrayRef = Arc::new(StringViewArray::from(rows.to_vec()));
        assert_eq!(event_masks(&views, &names, 3).unwrap(), want);
        let plain: ArrayRef = Arc::new(StringArray::from(rows.to_vec()));
        assert_eq!(event_masks(&plain, &names, 3).unwrap(), want);
    }
}
