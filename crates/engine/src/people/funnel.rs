//! Funnels: the `window_funnel` aggregate (ClickHouse `windowFunnel` semantics) and the funnel
//! analysis `shoplens funnel` prints: users per step, conversion, drop-off, time to convert,
//! breakdowns, and the extensions (same property, step limits, exclusions, session unit, where
//! dropped users went). Definitions are in docs/metrics.md ("Funnels").

mod direct;

use std::collections::HashMap;

use datafusion::arrow::array::{Array, AsArray};
use datafusion::arrow::datatypes::Int64Type;
use datafusion::prelude::SessionContext;
use serde::{Deserialize, Serialize};
use shoplens_models::funnel::{MAX_STEPS, Mode};
use shoplens_models::stats::{quantile, ratio};

use crate::error::{Error, Result};
use crate::people::sessions;
use crate::query;
use crate::sql::{quote, strings, ts_literal};
use crate::storage::workspace::Workspace;

pub use crate::functions::funnel::DetailConfig;

/// Event columns a funnel may filter on, break down by, or hold constant.
pub const EVENT_DIMENSIONS: &[&str] =
    &["channel", "device", "category", "brand", "item_id", "page"];

/// What a funnel is broken down by.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Breakdown {
    /// An event column (channel, device, category …): each value is its own funnel over the
    /// events carrying it, so a user can appear under several values.
    Column(String),
    /// The channel of the unit's first event with a channel (all data, not only the range).
    FirstTouchChannel,
    /// The variant of the unit's first exposure to this experiment.
    Variant(String),
}

impl Breakdown {
    /// Parses `channel`, `device`, `category`, `brand`, `first_touch_channel` or
    /// `variant:EXPERIMENT`.
    pub fn parse(s: &str) -> Result<Breakdown> {
        let s = s.trim();
        if let Some(x) = s.strip_prefix("variant:") {
            return Ok(Breakdown::Variant(x.to_string()));
        }
        match s.replace('-', "_").as_str() {
            "first_touch_channel" | "first_touch" => Ok(Breakdown::FirstTouchChannel),
            c if EVENT_DIMENSIONS.contains(&c) => Ok(Breakdown::Column(c.to_string())),
            _ => Err(Error::Invalid(format!(
                "unknown breakdown `{s}`: use one of {}, first_touch_channel, variant:EXPERIMENT",
                EVENT_DIMENSIONS.join(", ")
            ))),
        }
    }

    fn name(&self) -> String {
        match self {
            Breakdown::Column(c) => c.clone(),
            Breakdown::FirstTouchChannel => "first_touch_channel".into(),
            Breakdown::Variant(x) => format!("variant:{x}"),
        }
    }
}

/// The unit a funnel counts.
#[derive(
    Debug,
    Clone,
    Copy,
    PartialEq,
    Eq,
    Default,
    Serialize,
    Deserialize,
    clap::ValueEnum,
    schemars::JsonSchema,
)]
#[serde(rename_all = "snake_case")]
pub enum Unit {
    /// A person: user_id, or anonymous_id for visitors not logged in.
    #[default]
    User,
    /// A session: session_id, or 30 minutes of inactivity when the source has none.
    Session,
}

/// ClickHouse `windowFunnel` mode, as a parameter.
#[derive(
    Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize, clap::ValueEnum, schemars::JsonSchema,
)]
#[serde(rename_all(serialize = "snake_case", deserialize = "kebab-case"))]
pub enum FunnelMode {
    /// Events may repeat and interleave.
    Default,
    /// A chain stops at an event that repeats the step just reached.
    #[serde(alias = "strict_order")]
    StrictOrder,
    /// Steps need strictly increasing timestamps.
    #[serde(alias = "strict_increase")]
    StrictIncrease,
}

/// `shoplens funnel` and `GET /api/funnel`: the parameters as the command line and the API take
/// them (same names, same defaults).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, clap::Args, schemars::JsonSchema)]
#[serde(default, deny_unknown_fields)]
pub struct FunnelParams {
    /// Ordered step events, comma-separated (e.g. product_view,add_to_cart,order).
    #[arg(long, value_delimiter = ',', required = true)]
    #[serde(deserialize_with = "crate::params::comma_list")]
    pub steps: Vec<String>,
    /// Window from a chain's first step to its last, inclusive (24h, 30m, 7d, 1h30m, seconds).
    #[arg(long, default_value = "24h")]
    pub window: String,
    /// ClickHouse windowFunnel mode.
    #[arg(long, value_enum, default_value_t = FunnelMode::Default)]
    pub mode: FunnelMode,
    /// First day (or instant) of events counted, in the shop's time zone (default: all data).
    #[arg(long)]
    pub from: Option<String>,
    /// Last day counted, inclusive (or an instant, exclusive).
    #[arg(long)]
    pub to: Option<String>,
    /// Only events of this channel.
    #[arg(long)]
    pub channel: Option<String>,
    /// Only events of this device class.
    #[arg(long)]
    pub device: Option<String>,
    /// Only events of this category.
    #[arg(long)]
    pub category: Option<String>,
    /// Break down by channel, device, category, brand, first_touch_channel or variant:EXPERIMENT.
    #[arg(long)]
    pub breakdown: Option<String>,
    /// Hold an event column constant across steps (item_id, category, brand, …).
    #[arg(long)]
    pub same: Option<String>,
    /// A per-step limit from the previous step, STEP:DURATION (e.g. 2:1h); repeatable.
    #[arg(
        long = "step-window",
        value_name = "STEP:DURATION",
        value_delimiter = ','
    )]
    #[serde(deserialize_with = "crate::params::comma_list")]
    pub step_window: Vec<String>,
    /// Exclusion events: one after a chain's step k−1 and before its step k voids the chain.
    #[arg(long, value_delimiter = ',')]
    #[serde(deserialize_with = "crate::params::comma_list")]
    pub exclude: Vec<String>,
    /// Count users or sessions.
    #[arg(long, value_enum, default_value_t = Unit::User)]
    pub unit: Unit,
    /// For units that stopped at each step, the N most common next events (0 = off).
    #[arg(long = "dropped-next", value_name = "N", default_value_t = 0)]
    pub dropped_next: usize,
}

impl Default for FunnelParams {
    fn default() -> FunnelParams {
        crate::params::flag_defaults()
    }
}

impl FunnelParams {
    /// The spec in the shop's zone `tz`, as of `as_of`.
    pub fn spec(&self, tz: &chrono_tz::Tz, as_of: Option<i64>) -> Result<FunnelSpec> {
        if self.steps.is_empty() {
            return Err(Error::Invalid(
                "--steps: give the step events, e.g. product_view,add_to_cart,order".into(),
            ));
        }
        let mut spec = FunnelSpec::new(self.steps.clone(), parse_duration(&self.window)?);
        spec.mode = match self.mode {
            FunnelMode::Default => Mode::Default,
            FunnelMode::StrictOrder => Mode::StrictOrder,
            FunnelMode::StrictIncrease => Mode::StrictIncrease,
        };
        spec.unit = self.unit;
        (spec.from, spec.to) =
            crate::calendar::events_period(tz, self.from.as_deref(), self.to.as_deref(), as_of)?;
        for (c, v) in [
            ("channel", &self.channel),
            ("device", &self.device),
            ("category", &self.category),
        ] {
            if let Some(v) = v {
                spec.filters.push((c.to_string(), v.clone()));
            }
        }
        spec.breakdown = self
            .breakdown
            .as_deref()
            .map(Breakdown::parse)
            .transpose()?;
        spec.same = self.same.clone();
        spec.exclude = self.exclude.clone();
        for sw in &self.step_window {
            let Some((k, d)) = sw.split_once(':') else {
                return Err(Error::Invalid(format!(
                    "--step-window `{sw}`: use STEP:DURATION, e.g. 2:1h"
                )));
            };
            let k: usize = match k.trim().parse() {
                Ok(k) if k >= 2 && k <= self.steps.len() => k,
                _ => {
                    return Err(Error::Invalid(format!(
                        "--step-window `{sw}`: the step must be 2..{} (step 1 has no previous step)",
                        self.steps.len()
                    )));
                }
            };
            if spec.step_limits_us.len() < k {
                spec.step_limits_us.resize(k, None);
            }
            spec.step_limits_us[k - 1] = Some(parse_duration(d)?);
        }
        spec.next_events = self.dropped_next;
        Ok(spec)
    }
}

/// A funnel to compute.
#[derive(Debug, Clone, PartialEq)]
pub struct FunnelSpec {
    /// Event names of the ordered steps.
    pub steps: Vec<String>,
    /// Window from step 1 to the last step, inclusive, in microseconds.
    pub window_us: i64,
    /// ClickHouse mode.
    pub mode: Mode,
    /// Events at or after this instant (µs), if set.
    pub from: Option<i64>,
    /// Events before this instant (µs), if set.
    pub to: Option<i64>,
    /// Equality filters on event columns (each row must match all).
    pub filters: Vec<(String, String)>,
    /// Breakdown, if any.
    pub breakdown: Option<Breakdown>,
    /// Hold this event column constant across the steps.
    pub same: Option<String>,
    /// Per-step limits (index k − 1 for step k) from the event that reached step k − 1, µs.
    pub step_limits_us: Vec<Option<i64>>,
    /// Exclusion events: one after a chain's step k − 1 and before its step k voids the chain.
    pub exclude: Vec<String>,
    /// User or session funnels.
    pub unit: Unit,
    /// How many next events to list for each drop point (0 = skip that query).
    pub next_events: usize,
}

impl FunnelSpec {
    /// A funnel of these steps within a window, with every option off.
    pub fn new(steps: Vec<String>, window_us: i64) -> FunnelSpec {
        FunnelSpec {
            steps,
            window_us,
            mode: Mode::Default,
            from: None,
            to: None,
            filters: Vec::new(),
            breakdown: None,
            same: None,
            step_limits_us: Vec::new(),
            exclude: Vec::new(),
            unit: Unit::User,
            next_events: 0,
        }
    }

    fn validate(&self) -> Result<()> {
        let max = if self.exclude.is_empty() {
            MAX_STEPS
        } else {
            MAX_STEPS - 1
        };
        if self.steps.is_empty() || self.steps.len() > max {
            return Err(Error::Invalid(format!(
                "a funnel has 1 to {max} steps, got {}",
                self.steps.len()
            )));
        }
        if self.window_us <= 0 {
            return Err(Error::Invalid("the window must be positive".into()));
        }
        if self.step_limits_us.len() > self.steps.len() {
            return Err(Error::Invalid(format!(
                "a step limit names step {} but the funnel has {} steps",
                self.step_limits_us.len(),
                self.steps.len()
            )));
        }
        for (c, _) in &self.filters {
            dimension(c)?;
        }
        if let Some(s) = &self.same {
            dimension(s)?;
        }
        Ok(())
    }
}

fn dimension(c: &str) -> Result<&str> {
    EVENT_DIMENSIONS
        .iter()
        .find(|d| **d == c)
        .copied()
        .ok_or_else(|| {
            Error::Invalid(format!(
                "`{c}` is not an event column a funnel can use: {}",
                EVENT_DIMENSIONS.join(", ")
            ))
        })
}

/// One step's figures.
#[derive(Debug, Clone, PartialEq, Serialize, schemars::JsonSchema)]
pub struct StepStats {
    /// Event name of the step.
    pub step: String,
    /// Units whose level is this step or deeper.
    pub users: u64,
    /// users / users of the previous step (1 for the first step; null when the previous is 0).
    pub conversion_from_previous: Option<f64>,
    /// users / users of the first step.
    pub conversion_from_first: Option<f64>,
    /// Units that reached the previous step but not this one (0 for the first step).
    pub drop_off: u64,
    /// drop_off / users of the previous step.
    pub drop_off_rate: Option<f64>,
    /// Median seconds from the chain's step-1 event to this step's event, over units reaching it.
    pub median_seconds_to_convert: Option<f64>,
    /// 90th percentile of the same.
    pub p90_seconds_to_convert: Option<f64>,
    /// `cart_abandonment` when the previous step is add_to_cart, `payment_drop_off` when this
    /// step is payment.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub drop_off_name: Option<&'static str>,
}

/// One breakdown value's funnel.
#[derive(Debug, Clone, PartialEq, Serialize, schemars::JsonSchema)]
pub struct BreakdownGroup {
    /// The value (null: units without one).
    pub value: Option<String>,
    /// Units with any event carrying the value in the range.
    pub users_total: u64,
    /// Per step.
    pub steps: Vec<StepStats>,
}

/// Where units that stopped at one step went next.
#[derive(Debug, Clone, PartialEq, Serialize, schemars::JsonSchema)]
pub struct DroppedNext {
    /// The deepest step these units reached.
    pub after_step: String,
    /// How many stopped there.
    pub users: u64,
    /// The most common next events (null event: no later event in the range).
    pub next: Vec<NextEvent>,
}

/// One next event and how many dropped units did it first.
#[derive(Debug, Clone, PartialEq, Serialize, schemars::JsonSchema)]
pub struct NextEvent {
    /// Event name, null when the unit had no later event.
    pub event: Option<String>,
    /// Units.
    pub users: u64,
    /// Share of the units that stopped at the step.
    pub share: f64,
}

/// The funnel's definition as computed (so a JSON result says what it measured).
#[derive(Debug, Clone, PartialEq, Serialize, schemars::JsonSchema)]
pub struct Definition {
    /// Step event names.
    pub steps: Vec<String>,
    /// Window in seconds.
    pub window_seconds: f64,
    /// Mode.
    pub mode: &'static str,
    /// Unit.
    pub unit: Unit,
    /// Held-constant column.
    pub same: Option<String>,
    /// Exclusion events.
    pub exclude: Vec<String>,
    /// Step limits in seconds (index k − 1 for step k).
    pub step_limits_seconds: Vec<Option<f64>>,
    /// Filters.
    pub filters: Vec<(String, String)>,
    /// Breakdown.
    pub breakdown: Option<String>,
}

/// A funnel's result.
#[derive(Debug, Clone, PartialEq, Serialize, schemars::JsonSchema)]
pub struct FunnelReport {
    /// Units with any event in the range (after filters), level 0 included.
    pub users_total: u64,
    /// Per step.
    pub steps: Vec<StepStats>,
    /// Per breakdown value (empty without a breakdown), largest first.
    #[serde(skip_serializing_if = "Vec::is_empty")]
    pub breakdown: Vec<BreakdownGroup>,
    /// Where dropped units went (empty unless asked for).
    #[serde(skip_serializing_if = "Vec::is_empty")]
    pub dropped_next: Vec<DroppedNext>,
    /// What was computed.
    pub definition: Definition,
}

/// Per unit: the level and the times to convert to each step reached.
#[derive(Debug, Clone, Default)]
struct UnitResult {
    level: usize,
    times: Vec<i64>,
}

/// Computes a funnel over the workspace's events.
pub async fn funnel(ws: &Workspace, spec: &FunnelSpec) -> Result<FunnelReport> {
    spec.validate()?;
    let (ctx, _) = query::context(ws).await?;
    // Sessions need the 30-minute split only when some event lacks a session id.
    let split = spec.unit == Unit::Session && sessions::need_split(&ctx).await?;
    let base = base_sql(spec, split, false);
    ctx.register_table("funnel_base", ctx.sql(&base).await?.into_view())?;
    if in_process(&ctx, spec) {
        // The same rows with those of no unit, which the in-process path skips itself: with no
        // other filter the scan then needs no filter step (it copies every row it passes on).
        let all = base_sql(spec, split, true);
        ctx.register_table("funnel_all", ctx.sql(&all).await?.into_view())?;
    }
    let overall = units(&ctx, spec, false).await?;
    let users_total = overall.len() as u64;
    let mut report = FunnelReport {
        users_total,
        steps: step_stats(spec, overall.iter().map(|(_, r)| r)),
        breakdown: Vec::new(),
        dropped_next: Vec::new(),
        definition: definition(spec),
    };
    if spec.breakdown.is_some() {
        let per = units(&ctx, spec, true).await?;
        let mut groups: HashMap<Option<String>, Vec<UnitResult>> = HashMap::new();
        for ((_, b), r) in per {
            groups.entry(b).or_default().push(r);
        }
        let mut out: Vec<BreakdownGroup> = groups
            .into_iter()
            .map(|(value, rs)| BreakdownGroup {
                value,
                users_total: rs.len() as u64,
                steps: step_stats(spec, rs.iter()),
            })
            .collect();
        out.sort_by(|a, b| {
            b.users_total
                .cmp(&a.users_total)
                .then_with(|| a.value.cmp(&b.value))
        });
        report.breakdown = out;
    }
    if spec.next_events > 0 {
        report.dropped_next = dropped_next(&ctx, spec).await?;
    }
    Ok(report)
}

/// Events in the range, after filters, with `unit`, `bkey` and `same` columns; with
/// `null_units`, also the events without a unit.
fn base_sql(spec: &FunnelSpec, split_sessions: bool, null_units: bool) -> String {
    let mut conds = Vec::new();
    if let Some(f) = spec.from {
        conds.push(format!("ts >= {}", ts_literal(f)));
    }
    if let Some(t) = spec.to {
        conds.push(format!("ts < {}", ts_literal(t)));
    }
    let ranged = format!(
        "SELECT *, {} AS person FROM events{}",
        sessions::PERSON,
        if conds.is_empty() {
            String::new()
        } else {
            format!(" WHERE {}", conds.join(" AND "))
        }
    );
    let with_unit = match spec.unit {
        Unit::User => format!("SELECT *, person AS unit FROM ({ranged})"),
        Unit::Session => sessions::with_units(&ranged, split_sessions, sessions::GAP_US),
    };
    let mut joins = String::new();
    let bkey = match &spec.breakdown {
        None => "CAST(NULL AS VARCHAR)".to_string(),
        Some(Breakdown::Column(c)) => format!("e.{c}"),
        Some(Breakdown::FirstTouchChannel) => {
            joins.push_str(&format!(
                " LEFT JOIN (SELECT {p} AS ft_person, first_value(channel ORDER BY ts) AS ft_channel \
                 FROM events WHERE channel IS NOT NULL AND {p} IS NOT NULL GROUP BY {p}) ft \
                 ON ft.ft_person = e.person",
                p = sessions::PERSON
            ));
            "ft.ft_channel".into()
        }
        Some(Breakdown::Variant(x)) => {
            joins.push_str(&format!(
                " LEFT JOIN (SELECT user_id AS vx_user, first_value(variant ORDER BY ts) AS vx_variant \
                 FROM exposures WHERE experiment_id = {} GROUP BY user_id) vx ON vx.vx_user = e.person",
                quote(x)
            ));
            "vx.vx_variant".into()
        }
    };
    let same = match spec.same.as_deref() {
        None => "CAST(NULL AS VARCHAR)".to_string(),
        Some(c @ "item_id") => {
            // An order or payment event without an item holds every item of its order.
            joins.push_str(
                " LEFT JOIN (SELECT order_id AS ol_order, item_id AS ol_item FROM order_items) ol \
                 ON e.item_id IS NULL AND e.order_id IS NOT NULL AND ol.ol_order = e.order_id",
            );
            format!("COALESCE(e.{c}, ol.ol_item)")
        }
        Some(c @ ("category" | "brand")) => {
            joins.push_str(&format!(
                " LEFT JOIN (SELECT oi.order_id AS ol_order, p.{c} AS ol_value FROM order_items oi \
                 JOIN products p ON p.item_id = oi.item_id) ol \
                 ON e.{c} IS NULL AND e.order_id IS NOT NULL AND ol.ol_order = e.order_id"
            ));
            format!("COALESCE(e.{c}, ol.ol_value)")
        }
        Some(c) => format!("e.{c}"),
    };
    let mut where_ = Vec::new();
    if !null_units {
        where_.push("e.unit IS NOT NULL".to_string());
    }
    for (c, v) in &spec.filters {
        where_.push(format!("e.{c} = {}", quote(v)));
    }
    let where_ = if where_.is_empty() {
        String::new()
    } else {
        format!(" WHERE {}", where_.join(" AND "))
    };
    format!(
        "SELECT e.unit AS unit, e.person AS person, e.ts AS ts, e.event AS event, {bkey} AS bkey, {same} AS same \
         FROM ({with_unit}) e{joins}{where_}"
    )
}

fn detail_call(spec: &FunnelSpec) -> Result<String> {
    let cfg =
        serde_json::to_string(&detail_config(spec)).map_err(|e| Error::Internal(e.to_string()))?;
    Ok(format!(
        "funnel_detail({}, ts, {})",
        quote(&cfg),
        conditions(spec).join(", ")
    ))
}

/// The funnel's definition as `funnel_detail` reads it.
fn detail_config(spec: &FunnelSpec) -> DetailConfig {
    DetailConfig {
        window_us: spec.window_us,
        mode: spec.mode.name().to_string(),
        steps: spec.steps.len(),
        step_limits_us: spec.step_limits_us.clone(),
        exclusions: spec.exclude.len(),
    }
}

/// The step conditions, then the exclusion conditions, over `funnel_base`.
fn conditions(spec: &FunnelSpec) -> Vec<String> {
    spec.steps
        .iter()
        .chain(&spec.exclude)
        .map(|s| format!("event = {}", quote(s)))
        .collect()
}

type UnitKey = (Option<String>, Option<String>);

/// One row per (unit, breakdown value) with columns `u` (the unit, or NULL unless `with_unit` or
/// `same` is set), `b` (the breakdown value, or NULL), `no_same` and `d` (`funnel_detail`'s
/// struct). With `same`, the unit's best result over the values of `same`: the deepest level,
/// then the earliest completion (a result without a `same` value counts as level 0).
fn per_unit_sql(spec: &FunnelSpec, by_breakdown: bool, with_unit: bool) -> Result<String> {
    let call = detail_call(spec)?;
    let unit_col = if with_unit || spec.same.is_some() {
        "unit"
    } else {
        "CAST(NULL AS VARCHAR)"
    };
    let bkey_col = if by_breakdown {
        "bkey"
    } else {
        "CAST(NULL AS VARCHAR)"
    };
    let mut group = vec!["unit"];
    if by_breakdown {
        group.push("bkey");
    }
    if spec.same.is_none() {
        return Ok(format!(
            "SELECT {unit_col} AS u, {bkey_col} AS b, false AS no_same, {call} AS d \
             FROM funnel_base GROUP BY {}",
            group.join(", ")
        ));
    }
    group.push("same");
    Ok(format!(
        "SELECT u, b, no_same, d FROM (SELECT u, b, no_same, d, row_number() OVER (PARTITION BY u, b \
         ORDER BY CASE WHEN no_same THEN 0 ELSE get_field(d, 'level') END DESC, \
         CASE WHEN no_same THEN NULL ELSE get_field(d, 'last') END ASC NULLS FIRST) AS rn \
         FROM (SELECT unit AS u, {bkey_col} AS b, min(same) IS NULL AS no_same, {call} AS d \
         FROM funnel_base GROUP BY {})) WHERE rn = 1",
        group.join(", ")
    ))
}

/// Per (unit, breakdown value): the result of [`per_unit_sql`]. The unit itself is returned only
/// with `same` (it is needed to pick the best).
async fn units(
    ctx: &SessionContext,
    spec: &FunnelSpec,
    by_breakdown: bool,
) -> Result<Vec<(UnitKey, UnitResult)>> {
    if in_process(ctx, spec) {
        return direct::units(ctx, spec, by_breakdown).await;
    }
    units_by_sql(ctx, spec, by_breakdown).await
}

/// Whether [`units`] reads the partitions side by side and merges units once (see `direct`):
/// on the embedded engine; a cluster runs the aggregate, and `--same` needs the best result over
/// its values.
fn in_process(ctx: &SessionContext, spec: &FunnelSpec) -> bool {
    spec.same.is_none() && !crate::cluster::is_cluster(ctx)
}

/// [`units`] through the `funnel_detail` aggregate.
async fn units_by_sql(
    ctx: &SessionContext,
    spec: &FunnelSpec,
    by_breakdown: bool,
) -> Result<Vec<(UnitKey, UnitResult)>> {
    let q = per_unit_sql(spec, by_breakdown, false)?;
    let batches = ctx.sql(&q).await?.collect().await?;
    let mut out = Vec::new();
    for b in &batches {
        let u = strings(b.column(0))?;
        let bk = strings(b.column(1))?;
        let (Some(no_same), Some(d)) = (b.column(2).as_boolean_opt(), b.column(3).as_struct_opt())
        else {
            return Err(Error::Internal(
                "funnel query returned unexpected types".into(),
            ));
        };
        let (Some(level), Some(times)) = (
            d.column(0).as_primitive_opt::<Int64Type>(),
            d.column(1).as_list_opt::<i32>(),
        ) else {
            return Err(Error::Internal(
                "funnel_detail returned unexpected types".into(),
            ));
        };
        for i in 0..b.num_rows() {
            let key = (
                (!u.is_null(i)).then(|| u.value(i).to_string()),
                (!bk.is_null(i)).then(|| bk.value(i).to_string()),
            );
            let r = if no_same.value(i) {
                UnitResult::default()
            } else {
                let t = times.value(i);
                UnitResult {
                    level: level.value(i) as usize,
                    times: t
                        .as_primitive_opt::<Int64Type>()
                        .map(|t| t.values().to_vec())
                        .unwrap_or_default(),
                }
            };
            out.push((key, r));
        }
    }
    Ok(out)
}

/// Step figures from per-unit results.
fn step_stats<'a>(
    spec: &FunnelSpec,
    units: impl Iterator<Item = &'a UnitResult>,
) -> Vec<StepStats> {
    let n = spec.steps.len();
    let mut reached = vec![0u64; n];
    let mut times: Vec<Vec<i64>> = vec![Vec::new(); n];
    for r in units {
        for k in 0..r.level.min(n) {
            reached[k] += 1;
            if let Some(t) = r.times.get(k) {
                times[k].push(*t);
            }
        }
    }
    (0..n)
        .map(|k| {
            let prev = if k == 0 { reached[0] } else { reached[k - 1] };
            let drop = prev - reached[k];
            let mut ts: Vec<f64> = times[k].iter().map(|&us| us as f64 / 1e6).collect();
            ts.sort_by(f64::total_cmp);
            let drop_off_name = if k > 0 && spec.steps[k - 1] == "add_to_cart" {
                Some("cart_abandonment")
            } else if k > 0 && spec.steps[k] == "payment" {
                Some("payment_drop_off")
            } else {
                None
            };
            StepStats {
                step: spec.steps[k].clone(),
                users: reached[k],
                conversion_from_previous: ratio(reached[k], prev),
                conversion_from_first: ratio(reached[k], reached[0]),
                drop_off: drop,
                drop_off_rate: ratio(drop, prev),
                median_seconds_to_convert: quantile(&ts, 0.5),
                p90_seconds_to_convert: quantile(&ts, 0.9),
                drop_off_name,
            }
        })
        .collect()
}

/// For units that stopped at step k (0 < k < n): their first event after the event that
/// reached step k, counted per step.
async fn dropped_next(ctx: &SessionContext, spec: &FunnelSpec) -> Result<Vec<DroppedNext>> {
    let n = spec.steps.len();
    // Each unit's result as `units` gives it, computed where the events are, so that the dropped
    // units never travel from this process to a cluster.
    let per_unit = format!(
        "SELECT u AS unit, CASE WHEN no_same THEN 0 ELSE get_field(d, 'level') END AS lvl, \
         CASE WHEN no_same THEN NULL ELSE get_field(d, 'last') END AS last_us FROM ({})",
        per_unit_sql(spec, false, true)?
    );
    let q = format!(
        "SELECT d_level, next, count(*) AS n FROM ( \
         SELECT d.unit AS d_unit, d.lvl AS d_level, first_value(b.event ORDER BY b.ts, b.event) AS next \
         FROM ({per_unit}) d LEFT JOIN (SELECT DISTINCT unit, ts, event FROM funnel_base) b \
         ON b.unit = d.unit AND CAST(b.ts AS BIGINT) > d.last_us \
         WHERE d.lvl > 0 AND d.lvl < {n} AND d.last_us IS NOT NULL GROUP BY d.unit, d.lvl) \
         GROUP BY d_level, next"
    );
    let batches = ctx.sql(&q).await?.collect().await?;
    let mut per: Vec<Vec<(Option<String>, u64)>> = vec![Vec::new(); n];
    for b in &batches {
        let ev = strings(b.column(1))?;
        let (Some(lv), Some(c)) = (
            b.column(0).as_primitive_opt::<Int64Type>(),
            b.column(2).as_primitive_opt::<Int64Type>(),
        ) else {
            return Err(Error::Internal(
                "next-event query returned unexpected types".into(),
            ));
        };
        for i in 0..b.num_rows() {
            let k = lv.value(i) as usize;
            if k < n {
                per[k].push((
                    (!ev.is_null(i)).then(|| ev.value(i).to_string()),
                    c.value(i) as u64,
                ));
            }
        }
    }
    Ok((1..n)
        .map(|k| {
            let mut next = std::mem::take(&mut per[k]);
            let users: u64 = next.iter().map(|x| x.1).sum();
            next.sort_by(|a, b| b.1.cmp(&a.1).then_with(|| a.0.cmp(&b.0)));
            next.truncate(spec.next_events);
            DroppedNext {
                after_step: spec.steps[k - 1].clone(),
                users,
                next: next
                    .into_iter()
                    .map(|(event, c)| NextEvent {
                        event,
                        users: c,
                        share: if users > 0 {
                            c as f64 / users as f64
                        } else {
                            0.0
                        },
                    })
                    .collect(),
            }
        })
        .collect())
}

fn definition(spec: &FunnelSpec) -> Definition {
    Definition {
        steps: spec.steps.clone(),
        window_seconds: spec.window_us as f64 / 1e6,
        mode: spec.mode.name(),
        unit: spec.unit,
        same: spec.same.clone(),
        exclude: spec.exclude.clone(),
        step_limits_seconds: spec
            .step_limits_us
            .iter()
            .map(|l| l.map(|us| us as f64 / 1e6))
            .collect(),
        filters: spec.filters.clone(),
        breakdown: spec.breakdown.as_ref().map(Breakdown::name),
    }
}

/// Parses a duration such as `24h`, `30m`, `90s`, `7d`, `1h30m` or a bare number of seconds,
/// into microseconds.
pub fn parse_duration(s: &str) -> Result<i64> {
    let bad = || {
        Error::Invalid(format!(
            "`{s}` is not a duration: use e.g. 24h, 30m, 90s, 7d or 1h30m"
        ))
    };
    let t = s.trim();
    if let Ok(secs) = t.parse::<i64>() {
        return secs.checked_mul(1_000_000).ok_or_else(bad);
    }
    let mut total: i64 = 0;
    let mut num = String::new();
    for c in t.chars() {
        if c.is_ascii_digit() {
            num.push(c);
            continue;
        }
        let unit: i64 = match c {
            'd' => 86_400,
            'h' => 3_600,
            'm' => 60,
            's' => 1,
            _ => return Err(bad()),
        };
        let v: i64 = num.parse().map_err(|_| bad())?;
        total = v
            .checked_mul(unit)
            .and_then(|x| total.checked_add(x))
            .ok_or_else(bad)?;
        num.clear();
    }
    if !num.is_empty() || total <= 0 {
        return Err(bad());
    }
    total.checked_mul(1_000_000).ok_or_else(bad)
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used, clippy::expect_used, reason = "tests")]

    use std::sync::Arc;

    use datafusion::arrow::array::{RecordBatch, StringArray, TimestampMicrosecondArray};
    use datafusion::arrow::datatypes::{DataType, Field, Schema, TimeUnit};
    use datafusion::datasource::MemTable;
    use rand::{Rng, SeedableRng};
    use rand_chacha::ChaCha8Rng;

    use super::*;

    /// A seeded log in `partitions` partitions of several batches: users' events mostly
    /// contiguous but some users spread over batches and partitions, ties, unrelated events,
    /// events without a unit, null breakdown values.
    fn funnel_base(seed: u64, partitions: usize) -> MemTable {
        let schema = Arc::new(Schema::new(vec![
            Field::new("unit", DataType::Utf8, true),
            Field::new("bkey", DataType::Utf8, true),
            Field::new(
                "ts",
                DataType::Timestamp(TimeUnit::Microsecond, Some("UTC".into())),
                true,
            ),
            Field::new("event", DataType::Utf8, true),
        ]));
        let mut rng = ChaCha8Rng::seed_from_u64(seed);
        let events = [
            "product_view",
            "add_to_cart",
            "order",
            "favorite",
            "refund",
            "checkout_start",
            "checkout_stops",
        ];
        let mut parts: Vec<Vec<RecordBatch>> = vec![Vec::new(); partitions];
        for b in 0..(partitions * 3) {
            let rows = rng.random_range(1..400);
            let (mut u, mut k, mut t, mut e) = (Vec::new(), Vec::new(), Vec::new(), Vec::new());
            let mut user = rng.random_range(0..60);
            for _ in 0..rows {
                if rng.random_range(0..8) == 0 {
                    user = rng.random_range(0..60);
                }
                u.push((user % 11 != 5).then(|| format!("u{user}")));
                k.push((user % 4 != 0).then(|| format!("c{}", user % 3)));
                t.push(Some(rng.random_range(0..40i64) * 3_600_000_000));
                e.push(Some(events[rng.random_range(0..events.len())]));
            }
            let batch = RecordBatch::try_new(
                Arc::clone(&schema),
                vec![
                    Arc::new(StringArray::from(u)),
                    Arc::new(StringArray::from(k)),
                    Arc::new(TimestampMicrosecondArray::from(t).with_timezone("UTC")),
                    Arc::new(StringArray::from(e)),
                ],
            )
            .unwrap();
            parts[b % partitions].push(batch);
        }
        MemTable::try_new(schema, parts).unwrap()
    }

    fn sorted(mut v: Vec<(UnitKey, UnitResult)>) -> Vec<(Option<String>, usize, Vec<i64>)> {
        v.sort_by(|a, b| (&a.0, a.1.level, &a.1.times).cmp(&(&b.0, b.1.level, &b.1.times)));
        v.into_iter()
            .map(|((_, b), r)| (b, r.level, r.times))
            .collect()
    }

    /// The in-process path gives each unit exactly the aggregate's result, in every mode, with
    /// step limits and exclusions, by breakdown, however the units are spread over partitions.
    #[tokio::test]
    async fn direct_path_matches_the_aggregate() {
        for seed in 0..6u64 {
            // Names longer than a string view holds inline, one sharing length and prefix.
            let steps = if seed % 3 == 2 {
                ["product_view", "checkout_start", "order"]
            } else {
                ["product_view", "add_to_cart", "order"]
            }
            .map(String::from)
            .to_vec();
            let ctx = SessionContext::new();
            crate::functions::register(&ctx);
            ctx.register_table(
                "funnel_all",
                Arc::new(funnel_base(seed, 1 + seed as usize % 3)),
            )
            .unwrap();
            let base = ctx
                .sql("SELECT * FROM funnel_all WHERE unit IS NOT NULL")
                .await
                .unwrap();
            ctx.register_table("funnel_base", base.into_view()).unwrap();
            for mode in [Mode::Default, Mode::StrictOrder, Mode::StrictIncrease] {
                let mut spec = FunnelSpec::new(steps.clone(), (4 + seed as i64) * 3_600_000_000);
                spec.mode = mode;
                if seed % 2 == 1 {
                    spec.step_limits_us = vec![Some(2 * 3_600_000_000), None];
                    spec.exclude = vec!["refund".into()];
                }
                for by in [false, true] {
                    let a = sorted(direct::units(&ctx, &spec, by).await.unwrap());
                    let b = sorted(units_by_sql(&ctx, &spec, by).await.unwrap());
                    assert_eq!(a, b, "seed {seed}, {mode:?}, breakdown {by}");
                    assert!(
                        a.iter().any(|r| r.1 >= 2),
                        "seed {seed}: a funnel with depth"
                    );
                }
            }
        }
    }

    #[test]
    fn durations() {
        assert_eq!(parse_duration("24h").unwrap(), 86_400_000_000);
        assert_eq!(parse_duration("1h30m").unwrap(), 5_400_000_000);
        assert_eq!(parse_duration("86400").unwrap(), 86_400_000_000);
        assert!(parse_duration("3x").is_err());
        assert!(parse_duration("0h").is_err());
    }
}
