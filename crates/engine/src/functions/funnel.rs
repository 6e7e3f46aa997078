//! The funnel aggregates for DataFusion, written as a `GroupsAccumulator`:
//!
//! - `window_funnel(window, [mode,] ts, cond1, …, condN)` → Int64, the level ClickHouse's
//!   `windowFunnel(window, mode)(ts, cond1, …)` gives. `window` is an interval or a number of
//!   seconds when `ts` is a timestamp, and in `ts`'s own unit when `ts` is an integer; `mode` is
//!   `'default'`, `'strict_order'` or `'strict_increase'` (hyphens accepted).
//! - `funnel_detail(config, ts, cond1, …, condN, excl1, …, exclM)` → struct {level, times, last},
//!   what `shoplens funnel` needs: `config` is a JSON literal ([`DetailConfig`]), `times` the
//!   microseconds from each reached step's chain start to that step, `last` the timestamp of the
//!   event that reached the deepest step.
//!
//! Both buffer each group's rows as (timestamp, step mask) and scan them once at the end with
//! [`shoplens_models::funnel::scan`]; the intermediate state is two lists per group, so the
//! functions run in a partial/final plan and on a cluster. Stateless structs: the definition
//! travels in the literal arguments, so an executor only needs the functions registered by name.

use std::sync::Arc;

use datafusion::arrow::array::{
    Array, ArrayRef, AsArray, BooleanArray, Int64Array, Int64Builder, ListArray, StructArray,
    UInt32Array,
};
use datafusion::arrow::buffer::{OffsetBuffer, ScalarBuffer};
use datafusion::arrow::compute::cast;
use datafusion::arrow::datatypes::{
    DataType, Field, FieldRef, Fields, Int64Type, TimeUnit, UInt32Type,
};
use datafusion::common::{DataFusionError, Result as DfResult, ScalarValue, exec_err, plan_err};
use datafusion::logical_expr::function::{AccumulatorArgs, StateFieldsArgs};
use datafusion::logical_expr::{
    Accumulator, AggregateUDF, AggregateUDFImpl, EmitTo, GroupsAccumulator, Signature, Volatility,
};
use datafusion::physical_expr::PhysicalExpr;
use datafusion::physical_expr::expressions::Literal;
use serde::{Deserialize, Serialize};
use shoplens_models::funnel::{EXCLUDED, Funnel, MAX_STEPS, Mode, Reached, scan, sort_entries};

/// The definition `funnel_detail` reads from its first (JSON literal) argument.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct DetailConfig {
    /// Window in microseconds (inclusive).
    pub window_us: i64,
    /// `default`, `strict-order` or `strict-increase`.
    pub mode: String,
    /// Number of step conditions (the arguments after `ts`).
    pub steps: usize,
    /// Per-step limit in microseconds from the event that reached the previous step (index k − 1
    /// for step k).
    #[serde(default)]
    pub step_limits_us: Vec<Option<i64>>,
    /// Number of exclusion conditions (after the step conditions).
    #[serde(default)]
    pub exclusions: usize,
}

/// `window_funnel` as a DataFusion aggregate.
pub fn window_funnel() -> AggregateUDF {
    AggregateUDF::from(FunnelUdaf::new(Output::Level))
}

/// `funnel_detail` as a DataFusion aggregate.
pub fn funnel_detail() -> AggregateUDF {
    AggregateUDF::from(FunnelUdaf::new(Output::Detail))
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
enum Output {
    Level,
    Detail,
}

#[derive(Debug, PartialEq, Eq, Hash)]
struct FunnelUdaf {
    output: Output,
    signature: Signature,
}

impl FunnelUdaf {
    fn new(output: Output) -> FunnelUdaf {
        FunnelUdaf {
            output,
            signature: Signature::variadic_any(Volatility::Immutable),
        }
    }
}

fn detail_type() -> DataType {
    DataType::Struct(detail_fields())
}

fn detail_fields() -> Fields {
    Fields::from(vec![
        Field::new("level", DataType::Int64, false),
        Field::new(
            "times",
            DataType::List(Arc::new(Field::new_list_field(DataType::Int64, false))),
            false,
        ),
        Field::new("last", DataType::Int64, true),
    ])
}

impl AggregateUDFImpl for FunnelUdaf {
    fn name(&self) -> &str {
        match self.output {
            Output::Level => "window_funnel",
            Output::Detail => "funnel_detail",
        }
    }

    fn signature(&self) -> &Signature {
        &self.signature
    }

    fn return_type(&self, args: &[DataType]) -> DfResult<DataType> {
        let first_cond = match self.output {
            Output::Level => {
                if args.len() > 1 && matches!(args[1], DataType::Utf8 | DataType::Utf8View) {
                    3
                } else {
                    2
                }
            }
            Output::Detail => 2,
        };
        if args.len() <= first_cond {
            return plan_err!(
                "{}: expected (window, [mode,] ts, cond1, …) with at least one condition",
                self.name()
            );
        }
        if let Some(t) = args[first_cond..]
            .iter()
            .find(|t| !matches!(t, DataType::Boolean | DataType::Null))
        {
            return plan_err!("{}: step conditions must be boolean, got {t}", self.name());
        }
        Ok(match self.output {
            Output::Level => DataType::Int64,
            Output::Detail => detail_type(),
        })
    }

    fn is_nullable(&self) -> bool {
        false
    }

    fn accumulator(&self, args: AccumulatorArgs) -> DfResult<Box<dyn Accumulator>> {
        Ok(Box::new(Single {
            groups: Groups::new(Arc::new(self.spec(&args)?)),
        }))
    }

    fn state_fields(&self, args: StateFieldsArgs) -> DfResult<Vec<FieldRef>> {
        Ok(vec![
            Arc::new(Field::new(
                format!("{}[ts]", args.name),
                DataType::List(Arc::new(Field::new_list_field(DataType::Int64, false))),
                true,
            )),
            Arc::new(Field::new(
                format!("{}[mask]", args.name),
                DataType::List(Arc::new(Field::new_list_field(DataType::UInt32, false))),
                true,
            )),
        ])
    }

    fn groups_accumulator_supported(&self, _args: AccumulatorArgs) -> bool {
        true
    }

    fn create_groups_accumulator(
        &self,
        args: AccumulatorArgs,
    ) -> DfResult<Box<dyn GroupsAccumulator>> {
        Ok(Box::new(Groups::new(Arc::new(self.spec(&args)?))))
    }
}

/// A parsed call: the funnel, which argument is the timestamp, how many step and exclusion
/// conditions follow it, and what to return.
#[derive(Debug)]
struct Spec {
    funnel: Funnel,
    output: Output,
    ts_arg: usize,
    /// Keep rows that satisfy no condition (strict-order reads them).
    keep_unrelated: bool,
}

fn literal(e: &Arc<dyn PhysicalExpr>) -> Option<&ScalarValue> {
    e.downcast_ref::<Literal>().map(Literal::value)
}

fn int_literal(v: &ScalarValue) -> Option<i64> {
    match v {
        ScalarValue::Int8(Some(x)) => Some(i64::from(*x)),
        ScalarValue::Int16(Some(x)) => Some(i64::from(*x)),
        ScalarValue::Int32(Some(x)) => Some(i64::from(*x)),
        ScalarValue::Int64(Some(x)) => Some(*x),
        ScalarValue::UInt8(Some(x)) => Some(i64::from(*x)),
        ScalarValue::UInt16(Some(x)) => Some(i64::from(*x)),
        ScalarValue::UInt32(Some(x)) => Some(i64::from(*x)),
        ScalarValue::UInt64(Some(x)) => i64::try_from(*x).ok(),
        _ => None,
    }
}

fn interval_us(v: &ScalarValue) -> Option<i64> {
    match v {
        ScalarValue::IntervalMonthDayNano(Some(i)) if i.months == 0 => {
            Some(i64::from(i.days) * 86_400_000_000 + i.nanoseconds / 1_000)
        }
        ScalarValue::IntervalDayTime(Some(i)) => {
            Some(i64::from(i.days) * 86_400_000_000 + i64::from(i.milliseconds) * 1_000)
        }
        _ => None,
    }
}

impl FunnelUdaf {
    fn spec(&self, args: &AccumulatorArgs) -> DfResult<Spec> {
        let name = self.name();
        let (funnel, ts_arg, exclusions) = match self.output {
            Output::Level => {
                let mode_given =
                    args.exprs.get(1).and_then(literal).is_some_and(|v| {
                        matches!(v, ScalarValue::Utf8(_) | ScalarValue::Utf8View(_))
                    });
                let ts_arg = if mode_given { 2 } else { 1 };
                let Some(ts_type) = args.expr_fields.get(ts_arg).map(|f| f.data_type()) else {
                    return plan_err!("{name}: missing ts argument");
                };
                let Some(w) = args.exprs.first().and_then(literal) else {
                    return plan_err!("{name}: the window must be a constant");
                };
                let window = match (int_literal(w), interval_us(w)) {
                    (Some(s), _) if matches!(ts_type, DataType::Timestamp(..)) => {
                        s.saturating_mul(1_000_000)
                    }
                    (Some(x), _) => x,
                    (None, Some(us)) if matches!(ts_type, DataType::Timestamp(..)) => us,
                    _ => {
                        return plan_err!(
                            "{name}: the window must be an integer (seconds for a timestamp) or an interval of days and smaller units, got {w}"
                        );
                    }
                };
                let mode = if mode_given {
                    let m = args.exprs.get(1).and_then(literal).and_then(|v| match v {
                        ScalarValue::Utf8(Some(s)) | ScalarValue::Utf8View(Some(s)) => {
                            Mode::parse(s)
                        }
                        _ => None,
                    });
                    let Some(m) = m else {
                        return plan_err!(
                            "{name}: mode must be 'default', 'strict_order' or 'strict_increase'"
                        );
                    };
                    m
                } else {
                    Mode::Default
                };
                let steps = args.exprs.len() - ts_arg - 1;
                (Funnel::new(steps, window, mode), ts_arg, 0)
            }
            Output::Detail => {
                let cfg = match args.exprs.first().and_then(literal) {
                    Some(ScalarValue::Utf8(Some(s)) | ScalarValue::Utf8View(Some(s))) => {
                        serde_json::from_str::<DetailConfig>(s).map_err(|e| {
                            DataFusionError::Plan(format!("{name}: bad configuration: {e}"))
                        })?
                    }
                    _ => return plan_err!("{name}: the first argument must be a JSON literal"),
                };
                let Some(f) = detail_funnel(&cfg) else {
                    return plan_err!("{name}: unknown mode {}", cfg.mode);
                };
                if args.exprs.len() != 2 + cfg.steps + cfg.exclusions {
                    return plan_err!(
                        "{name}: expected {} conditions after ts, got {}",
                        cfg.steps + cfg.exclusions,
                        args.exprs.len().saturating_sub(2)
                    );
                }
                (f, 1, cfg.exclusions)
            }
        };
        let max = if exclusions > 0 {
            MAX_STEPS - 1
        } else {
            MAX_STEPS
        };
        if funnel.steps == 0 || funnel.steps > max {
            return plan_err!(
                "{name}: a funnel has 1 to {max} steps, got {}",
                funnel.steps
            );
        }
        let ts_type = args.expr_fields[ts_arg].data_type();
        if !matches!(
            ts_type,
            DataType::Timestamp(..)
                | DataType::Int64
                | DataType::Int32
                | DataType::UInt32
                | DataType::Date32
        ) {
            return plan_err!("{name}: ts must be a timestamp or an integer, got {ts_type}");
        }
        Ok(Spec {
            keep_unrelated: funnel.mode == Mode::StrictOrder,
            funnel,
            output: self.output,
            ts_arg,
        })
    }
}

/// The funnel `funnel_detail` computes for `cfg`, if its mode is known.
pub(crate) fn detail_funnel(cfg: &DetailConfig) -> Option<Funnel> {
    let mut f = Funnel::new(cfg.steps, cfg.window_us, Mode::parse(&cfg.mode)?);
    f.step_limits.clone_from(&cfg.step_limits_us);
    Some(f)
}

/// Timestamps as i64 (microseconds for timestamps, the integer itself otherwise).
pub(crate) fn ts_values(a: &ArrayRef) -> DfResult<Int64Array> {
    let a = match a.data_type() {
        DataType::Timestamp(TimeUnit::Microsecond, _) => a.clone(),
        DataType::Timestamp(_, tz) => {
            cast(a, &DataType::Timestamp(TimeUnit::Microsecond, tz.clone()))?
        }
        _ => a.clone(),
    };
    Ok(cast(&a, &DataType::Int64)?
        .as_primitive::<Int64Type>()
        .clone())
}

/// One bit per step condition, `EXCLUDED` for exclusions; null counts as false.
fn masks(spec: &Spec, values: &[ArrayRef], rows: usize) -> DfResult<Vec<u32>> {
    step_masks(spec.funnel.steps, &values[spec.ts_arg + 1..], rows)
}

/// [`masks`] of conditions `conds`: the first `steps` are steps, the rest exclusions.
pub(super) fn step_masks(steps: usize, conds: &[ArrayRef], rows: usize) -> DfResult<Vec<u32>> {
    let mut mask = vec![0u32; rows];
    for (k, a) in conds.iter().enumerate() {
        let bit = condition_bit(k, steps);
        if a.data_type() == &DataType::Null {
            continue;
        }
        let b: &BooleanArray = a.as_boolean_opt().ok_or_else(|| {
            DataFusionError::Execution(format!("funnel condition {} is not boolean", k + 1))
        })?;
        let truth = match b.nulls() {
            Some(n) => b.values() & n.inner(),
            None => b.values().clone(),
        };
        for i in truth.set_indices() {
            mask[i] |= bit;
        }
    }
    Ok(mask)
}

/// The mask bit of condition `k` when the first `steps` conditions are steps and the rest
/// exclusions.
pub(crate) fn condition_bit(k: usize, steps: usize) -> u32 {
    if k < steps { 1u32 << k } else { EXCLUDED }
}

/// Whether a row enters its group's funnel: it has a timestamp, and a step (or an exclusion)
/// unless unrelated rows are kept (strict-order mode reads them).
pub(crate) fn kept(mask: u32, has_ts: bool, keep_unrelated: bool) -> bool {
    has_ts && (mask != 0 || keep_unrelated)
}

/// Group index of a row that is kept out of every funnel (no step in a non-strict mode, null
/// timestamp, filtered out).
const DROPPED: u32 = u32::MAX;

/// Rows of emitted groups: raw rows ordered by group (offsets into `ts`/`mask`), and for each
/// group the merged state runs (`runs[run_offsets[g]..run_offsets[g + 1]]`, each a part and a
/// state row).
struct Taken {
    groups: usize,
    offsets: Vec<usize>,
    ts: Vec<i64>,
    mask: Vec<u32>,
    parts: Vec<Part>,
    run_offsets: Vec<usize>,
    runs: Vec<(u32, u32)>,
}

impl Taken {
    /// Group g's entries into `out` (cleared first).
    fn gather(&self, g: usize, out: &mut Vec<(i64, u32)>) {
        out.clear();
        let (a, b) = (self.offsets[g], self.offsets[g + 1]);
        out.extend(
            self.ts[a..b]
                .iter()
                .copied()
                .zip(self.mask[a..b].iter().copied()),
        );
        for &(p, r) in &self.runs[self.run_offsets[g]..self.run_offsets[g + 1]] {
            let part = &self.parts[p as usize];
            let o = part.offsets.as_ref();
            let (x, y) = (o[r as usize] as usize, o[r as usize + 1] as usize);
            // States never hold unrelated rows in a mode that drops them (`rows` drops them
            // before any state is built).
            out.extend(
                part.ts[x..y]
                    .iter()
                    .copied()
                    .zip(part.mask[x..y].iter().copied()),
            );
        }
    }
}

/// One input batch's rows: the timestamps and masks as Arrow buffers (shared with the input, not
/// copied) and each row's group.
#[derive(Debug, Clone)]
struct Chunk {
    group: Vec<u32>,
    ts: ScalarBuffer<i64>,
    mask: ScalarBuffer<u32>,
}

/// One batch of merged intermediate states, kept as they came (not copied): state row r belongs
/// to `group[r]` and holds entries `offsets[r]..offsets[r + 1]`.
#[derive(Debug, Clone)]
struct Part {
    group: Vec<u32>,
    offsets: OffsetBuffer<i32>,
    ts: ScalarBuffer<i64>,
    mask: ScalarBuffer<u32>,
}

/// Buffered rows (`chunks`, from update) and states (`parts`, from merge) of every group, batch
/// by batch; grouped when emitted.
#[derive(Debug, Clone)]
struct Groups {
    spec: Arc<Spec>,
    chunks: Vec<Chunk>,
    parts: Vec<Part>,
    num_groups: usize,
}

impl Groups {
    fn new(spec: Arc<Spec>) -> Groups {
        Groups {
            spec,
            chunks: Vec::new(),
            parts: Vec::new(),
            num_groups: 0,
        }
    }

    /// Takes the groups `emit_to` asks for: raw rows by a counting sort, state runs by a
    /// counting sort of their rows. Later groups stay, shifted down.
    fn take(&mut self, emit_to: EmitTo) -> Taken {
        let n = match emit_to {
            EmitTo::All => self.num_groups,
            EmitTo::First(n) => n.min(self.num_groups),
        };
        let mut offsets = vec![0usize; n + 1];
        let mut kept = 0usize;
        for c in &self.chunks {
            for &g in &c.group {
                if (g as usize) < n {
                    offsets[g as usize + 1] += 1;
                } else if g != DROPPED {
                    kept += 1;
                }
            }
        }
        for i in 0..n {
            offsets[i + 1] += offsets[i];
        }
        let mut pos = offsets[..n].to_vec();
        let mut ts = vec![0i64; offsets[n]];
        let mut mask = vec![0u32; offsets[n]];
        let mut rest = (
            Vec::with_capacity(kept),
            Vec::with_capacity(kept),
            Vec::with_capacity(kept),
        );
        for c in std::mem::take(&mut self.chunks) {
            for (i, &g) in c.group.iter().enumerate() {
                let g = g as usize;
                if g < n {
                    let p = pos[g];
                    ts[p] = c.ts[i];
                    mask[p] = c.mask[i];
                    pos[g] = p + 1;
                } else if g != DROPPED as usize {
                    rest.0.push((g - n) as u32);
                    rest.1.push(c.ts[i]);
                    rest.2.push(c.mask[i]);
                }
            }
        }
        if kept > 0 {
            self.chunks.push(Chunk {
                group: rest.0,
                ts: ScalarBuffer::from(rest.1),
                mask: ScalarBuffer::from(rest.2),
            });
        }
        // State runs.
        let parts = std::mem::take(&mut self.parts);
        let mut run_offsets = vec![0usize; n + 1];
        for p in &parts {
            for &g in &p.group {
                if (g as usize) < n {
                    run_offsets[g as usize + 1] += 1;
                }
            }
        }
        for i in 0..n {
            run_offsets[i + 1] += run_offsets[i];
        }
        let mut pos = run_offsets[..n].to_vec();
        let mut runs = vec![(0u32, 0u32); run_offsets[n]];
        for (pi, p) in parts.iter().enumerate() {
            let mut later = false;
            for (r, &g) in p.group.iter().enumerate() {
                let g = g as usize;
                if g < n {
                    runs[pos[g]] = (pi as u32, r as u32);
                    pos[g] += 1;
                } else if g != DROPPED as usize {
                    later = true;
                }
            }
            if later {
                // The same buffers serve the groups left behind.
                let group = p
                    .group
                    .iter()
                    .map(|&g| {
                        if g == DROPPED || (g as usize) < n {
                            DROPPED
                        } else {
                            g - n as u32
                        }
                    })
                    .collect();
                self.parts.push(Part { group, ..p.clone() });
            }
        }
        self.num_groups -= n;
        Taken {
            groups: n,
            offsets,
            ts,
            mask,
            parts,
            run_offsets,
            runs,
        }
    }

    fn state_arrays(&mut self, emit_to: EmitTo) -> Vec<ArrayRef> {
        let t = self.take(emit_to);
        if t.runs.is_empty() {
            let offsets = OffsetBuffer::new(t.offsets.iter().map(|&o| o as i32).collect());
            return state_lists(offsets, t.ts.into(), t.mask.into());
        }
        let (mut offsets, mut ts, mut mask) = (vec![0i32], Vec::new(), Vec::new());
        let mut scratch = Vec::new();
        for g in 0..t.groups {
            t.gather(g, &mut scratch);
            ts.extend(scratch.iter().map(|e| e.0));
            mask.extend(scratch.iter().map(|e| e.1));
            offsets.push(ts.len() as i32);
        }
        state_lists(OffsetBuffer::new(offsets.into()), ts.into(), mask.into())
    }

    fn evaluate_groups(&mut self, emit_to: EmitTo) -> ArrayRef {
        let t = self.take(emit_to);
        let mut scratch: Vec<(i64, u32)> = Vec::new();
        let reached = (0..t.groups).map(|g| {
            t.gather(g, &mut scratch);
            sort_entries(&mut scratch);
            scan(&self.spec.funnel, &scratch)
        });
        match self.spec.output {
            Output::Level => Arc::new(Int64Array::from_iter_values(
                reached.map(|r| r.level as i64),
            )),
            Output::Detail => detail_array(reached, t.groups),
        }
    }

    fn merge_lists(
        &mut self,
        values: &[ArrayRef],
        group_indices: &[usize],
        total: usize,
    ) -> DfResult<()> {
        self.num_groups = self.num_groups.max(total);
        let (Some(ts), Some(mask)) = (
            values[0].as_list_opt::<i32>(),
            values[1].as_list_opt::<i32>(),
        ) else {
            return exec_err!("funnel state is not two lists");
        };
        let (Some(tv), Some(mv)) = (
            ts.values().as_primitive_opt::<Int64Type>(),
            mask.values().as_primitive_opt::<UInt32Type>(),
        ) else {
            return exec_err!("funnel state lists hold unexpected types");
        };
        if ts.offsets() != mask.offsets() || ts.len() != group_indices.len() {
            return exec_err!("funnel state lists are not aligned");
        }
        self.parts.push(Part {
            group: group_indices.iter().map(|&g| g as u32).collect(),
            offsets: ts.offsets().clone(),
            ts: tv.values().clone(),
            mask: mv.values().clone(),
        });
        Ok(())
    }

    /// The rows of a batch: each row's group (or DROPPED), timestamps and masks.
    fn rows(
        &self,
        values: &[ArrayRef],
        group_of: impl Fn(usize) -> usize,
        filter: Option<&BooleanArray>,
    ) -> DfResult<Chunk> {
        let ts = ts_values(&values[self.spec.ts_arg])?;
        let masks = masks(&self.spec, values, ts.len())?;
        let keep_unrelated = self.spec.keep_unrelated;
        let group = masks
            .iter()
            .enumerate()
            .map(|(i, &m)| {
                if !kept(m, ts.is_valid(i), keep_unrelated)
                    || filter.is_some_and(|f| !f.is_valid(i) || !f.value(i))
                {
                    DROPPED
                } else {
                    group_of(i) as u32
                }
            })
            .collect();
        Ok(Chunk {
            group,
            ts: ts.values().clone(),
            mask: ScalarBuffer::from(masks),
        })
    }

    fn update(
        &mut self,
        values: &[ArrayRef],
        group_of: impl Fn(usize) -> usize,
        filter: Option<&BooleanArray>,
    ) -> DfResult<()> {
        let c = self.rows(values, group_of, filter)?;
        self.chunks.push(c);
        Ok(())
    }
}

/// The intermediate state: a list of timestamps and a list of masks per group.
fn state_lists(
    offsets: OffsetBuffer<i32>,
    ts: ScalarBuffer<i64>,
    mask: ScalarBuffer<u32>,
) -> Vec<ArrayRef> {
    let list = |t: DataType, offsets, values: ArrayRef| -> ArrayRef {
        Arc::new(ListArray::new(
            Arc::new(Field::new_list_field(t, false)),
            offsets,
            values,
            None,
        ))
    };
    vec![
        list(
            DataType::Int64,
            offsets.clone(),
            Arc::new(Int64Array::new(ts, None)),
        ),
        list(
            DataType::UInt32,
            offsets,
            Arc::new(UInt32Array::new(mask, None)),
        ),
    ]
}

fn detail_array(reached: impl Iterator<Item = Reached>, n: usize) -> ArrayRef {
    let mut level = Int64Builder::with_capacity(n);
    let mut last = Int64Builder::with_capacity(n);
    let mut offsets = Vec::with_capacity(n + 1);
    offsets.push(0i32);
    let mut times = Vec::new();
    for r in reached {
        level.append_value(r.level as i64);
        last.append_option(r.last_ts());
        times.extend(r.times());
        offsets.push(times.len() as i32);
    }
    let times = ListArray::new(
        Arc::new(Field::new_list_field(DataType::Int64, false)),
        OffsetBuffer::new(offsets.into()),
        Arc::new(Int64Array::from(times)),
        None,
    );
    Arc::new(StructArray::new(
        detail_fields(),
        vec![
            Arc::new(level.finish()),
            Arc::new(times),
            Arc::new(last.finish()),
        ],
        None,
    ))
}

impl GroupsAccumulator for Groups {
    fn update_batch(
        &mut self,
        values: &[ArrayRef],
        group_indices: &[usize],
        opt_filter: Option<&BooleanArray>,
        total_num_groups: usize,
    ) -> DfResult<()> {
        self.num_groups = self.num_groups.max(total_num_groups);
        self.update(values, |i| group_indices[i], opt_filter)
    }

    fn evaluate(&mut self, emit_to: EmitTo) -> DfResult<ArrayRef> {
        Ok(self.evaluate_groups(emit_to))
    }

    fn state(&mut self, emit_to: EmitTo) -> DfResult<Vec<ArrayRef>> {
        Ok(self.state_arrays(emit_to))
    }

    fn merge_batch(
        &mut self,
        values: &[ArrayRef],
        group_indices: &[usize],
        total_num_groups: usize,
    ) -> DfResult<()> {
        self.merge_lists(values, group_indices, total_num_groups)
    }

    fn convert_to_state(
        &self,
        values: &[ArrayRef],
        opt_filter: Option<&BooleanArray>,
    ) -> DfResult<Vec<ArrayRef>> {
        // Each row its own group: a one-element list, or an empty one for a dropped row. Without
        // dropped rows the timestamps are the input's buffer, not a copy.
        let c = self.rows(values, |i| i, opt_filter)?;
        let mut offsets = Vec::with_capacity(c.group.len() + 1);
        offsets.push(0i32);
        let mut n = 0i32;
        for &g in &c.group {
            if g != DROPPED {
                n += 1;
            }
            offsets.push(n);
        }
        let offsets = OffsetBuffer::new(offsets.into());
        if n as usize == c.group.len() {
            return Ok(state_lists(offsets, c.ts, c.mask));
        }
        let keep = |i: &usize| c.group[*i] != DROPPED;
        let ts: Vec<i64> = (0..c.group.len()).filter(keep).map(|i| c.ts[i]).collect();
        let mask: Vec<u32> = (0..c.group.len()).filter(keep).map(|i| c.mask[i]).collect();
        Ok(state_lists(offsets, ts.into(), mask.into()))
    }

    fn size(&self) -> usize {
        let chunks: usize = self
            .chunks
            .iter()
            .map(|c| c.group.capacity() * 4 + c.ts.len() * 8 + c.mask.len() * 4)
            .sum();
        let parts: usize = self
            .parts
            .iter()
            .map(|p| p.group.capacity() * 8 + p.ts.len() * 8 + p.mask.len() * 4)
            .sum();
        chunks + parts
    }
}

/// The same buffer as one group: the aggregate without GROUP BY (and in window frames).
#[derive(Debug)]
struct Single {
    groups: Groups,
}

impl Accumulator for Single {
    fn update_batch(&mut self, values: &[ArrayRef]) -> DfResult<()> {
        self.groups.num_groups = 1;
        self.groups.update(values, |_| 0, None)
    }

    fn evaluate(&mut self) -> DfResult<ScalarValue> {
        // Evaluated on a copy: a growing window frame evaluates the same accumulator repeatedly.
        let mut g = self.groups.clone();
        g.num_groups = 1;
        ScalarValue::try_from_array(&g.evaluate_groups(EmitTo::All), 0)
    }

    fn size(&self) -> usize {
        std::mem::size_of_val(self) + self.groups.size()
    }

    fn state(&mut self) -> DfResult<Vec<ScalarValue>> {
        let mut g = self.groups.clone();
        g.num_groups = 1;
        g.state_arrays(EmitTo::All)
            .iter()
            .map(|a| ScalarValue::try_from_array(a, 0))
            .collect()
    }

    fn merge_batch(&mut self, states: &[ArrayRef]) -> DfResult<()> {
        let rows = states.first().map_or(0, |a| a.len());
        self.groups.merge_lists(states, &vec![0; rows], 1)
    }
}
