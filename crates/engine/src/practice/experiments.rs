//! Analysing a workspace experiment: each exposed user's first exposure (variant and instant;
//! from the exposures table and from `experiment_viewed` events whose properties name the
//! experiment and variant),
//! outcomes counted only after it and inside the experiment window, then the statistics of
//! `models::abtest`. Definitions: docs/metrics.md, "Experiments".

use serde::Serialize;
use shoplens_models::abtest::{self, Analysis, Config, Kind, MetricValues};

use crate::error::{Error, Result};
use crate::query;
use crate::sql::{PAID, floats, ints, quote, texts, ts_literal};
use crate::storage::workspace::Workspace;

/// Built-in per-user metrics of a workspace experiment (`spend` is revenue's alias; any other
/// name is an event: whether the user did it after exposure).
pub const METRICS: &[&str] = &["conversion", "orders", "revenue", "aov"];

pub mod definitions;
pub mod params;

pub use definitions::{Definition, Namespace, Overlap, define, definition, definitions, overlaps};
pub use params::{
    AnalyzeParams, CorrectionParam, ExperimentList, ListParams, Listed, PowerParams, PowerReport,
    StatParams,
};

/// What to analyse.
#[derive(Debug, Clone, PartialEq)]
pub struct ExperimentSpec {
    /// experiment_id in exposures (and experiments).
    pub experiment: String,
    /// The control variant.
    pub control: String,
    /// Metrics (see [`METRICS`]; `name:lower` when a decrease is good). Empty: the definition's
    /// primary and guardrail metrics, else conversion, orders, revenue and aov.
    pub metrics: Vec<String>,
    /// Planned split in sorted-variant order; empty = the definition's weights, else equal.
    pub weights: Vec<f64>,
    /// Confidence, and sequential testing.
    pub config: Config,
    /// CUPED: adjust conversion, orders, revenue and event metrics by the same metric over this
    /// many days before each user's first exposure. None: no adjustment.
    pub cuped_days: Option<u32>,
}

/// The analysis with what it counted.
#[derive(Debug, Clone, PartialEq, Serialize, schemars::JsonSchema)]
pub struct ExperimentReport {
    /// The experiment.
    pub experiment: String,
    /// Window start (shop zone), when the experiment is defined with one.
    pub starts_at: Option<String>,
    /// Window end.
    pub ends_at: Option<String>,
    /// `scheduled`, `running` or `finished` as of the newest data (`defined: false` when the
    /// workspace holds no definition).
    pub status: &'static str,
    /// Whether the workspace holds a definition of the experiment.
    pub defined: bool,
    /// Users exposed to more than one variant, left out.
    pub users_in_several_variants: u64,
    /// Pre-period days of the CUPED covariate, when adjusted.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub cuped_days: Option<u32>,
    /// Overlaps with other experiments on the same surface, and other warnings.
    pub warnings: Vec<String>,
    /// SRM and results, as `experiment analyze-file` prints them.
    #[serde(flatten)]
    pub analysis: Analysis,
}

/// Analyses a workspace experiment.
pub async fn analyze(ws: &Workspace, spec: &ExperimentSpec) -> Result<ExperimentReport> {
    let (ctx, manifest) = query::context(ws).await?;
    let tz = crate::calendar::zone(&manifest.settings);
    let x = quote(&spec.experiment);
    let defs = definitions::definitions_in(&ctx).await?;
    let def = defs.iter().find(|d| d.key == spec.experiment);
    let (start, end) = (def.and_then(|d| d.starts_at), def.and_then(|d| d.ends_at));
    let planned: Vec<f64> = def.map_or(Vec::new(), |d| {
        let mut pairs: Vec<(&String, f64)> =
            d.variants.iter().zip(d.weights.iter().copied()).collect();
        pairs.sort_by(|a, b| a.0.cmp(b.0));
        pairs.into_iter().map(|p| p.1).collect()
    });
    let requested: Vec<String> = if !spec.metrics.is_empty() {
        spec.metrics.clone()
    } else if let Some(d) = def.filter(|d| !d.metrics().is_empty()) {
        d.metrics()
    } else {
        METRICS.iter().map(|m| (*m).to_string()).collect()
    };
    let mut lower_is_better = Vec::new();
    let names: Vec<String> = requested
        .iter()
        .map(|m| match m.strip_suffix(":lower") {
            Some(n) => {
                lower_is_better.push(n.to_string());
                n.to_string()
            }
            None => m.clone(),
        })
        .collect();
    if names.iter().any(|m| m.trim().is_empty()) {
        return Err(Error::Invalid(format!(
            "an empty metric name: use {} or an event name",
            METRICS.join(", ")
        )));
    }
    // Metrics that name an event: did the user do it after exposure (inside the window)?
    let event_metrics: Vec<&String> = names
        .iter()
        .filter(|m| !METRICS.contains(&m.as_str()) && m.as_str() != "spend")
        .collect();
    let pre = spec
        .cuped_days
        .map(|d| format!("INTERVAL '{} days'", d.max(1)));
    let mut event_cols = String::new();
    let mut event_joins = String::new();
    for (i, m) in event_metrics.iter().enumerate() {
        let end_cond = end.map_or(String::new(), |e| format!(" AND e.ts <= {}", ts_literal(e)));
        let mut windows = vec![(format!("ev{i}"), format!("e.ts >= x.t0{end_cond}"))];
        if let Some(iv) = &pre {
            windows.push((
                format!("pe{i}"),
                format!("e.ts < x.t0 AND e.ts >= x.t0 - {iv}"),
            ));
        }
        for (alias, cond) in windows {
            event_cols.push_str(&format!(
                ", max(CASE WHEN {alias}.p IS NULL THEN 0 ELSE 1 END) AS {alias}"
            ));
            // One row per user at most, so order counts are not multiplied.
            event_joins.push_str(&format!(
                " LEFT JOIN (SELECT DISTINCT x.user_id AS p FROM ex x JOIN (SELECT COALESCE(user_id, anonymous_id) AS p, ts \
                 FROM events WHERE event = {}) e ON e.p = x.user_id AND {cond}) {alias} ON {alias}.p = ex.user_id",
                quote(m)
            ));
        }
    }
    let (pre_cte, pre_cols, pre_join) = match &pre {
        Some(iv) => (
            format!(
                ", pre AS (SELECT ex.user_id AS p, count(o.ts) AS n, COALESCE(sum(o.net_amount), 0) AS r \
                 FROM ex JOIN o ON o.p = ex.user_id AND o.ts < ex.t0 AND o.ts >= ex.t0 - {iv} GROUP BY ex.user_id)"
            ),
            ", COALESCE(max(pre.n), 0) AS pre_orders, COALESCE(max(pre.r), 0) AS pre_revenue",
            " LEFT JOIN pre ON pre.p = ex.user_id",
        ),
        None => (String::new(), "", ""),
    };
    let mut window = String::new();
    if let Some(e) = end {
        window.push_str(&format!(" AND o.ts <= {}", ts_literal(e)));
    }
    let q = format!(
        "WITH ex AS (SELECT user_id, min(ts) AS t0, min(variant) AS v, count(DISTINCT variant) AS nv \
         FROM (SELECT user_id, ts, variant, experiment_id FROM exposures UNION ALL \
               SELECT COALESCE(user_id, anonymous_id), ts, \
               (regexp_match(properties, '\"variant\"\\s*:\\s*\"([^\"]*)\"'))[1], \
               (regexp_match(properties, '\"experiment_id\"\\s*:\\s*\"([^\"]*)\"'))[1] \
               FROM events WHERE event = 'experiment_viewed' AND properties IS NOT NULL) \
         WHERE experiment_id = {x} AND user_id IS NOT NULL AND variant IS NOT NULL{} GROUP BY user_id), \
         eo AS (SELECT DISTINCT order_id FROM events WHERE event = 'order' AND order_id IS NOT NULL), \
         o AS (SELECT COALESCE(e.user_id, e.anonymous_id) AS p, e.ts, ord.net_amount FROM events e \
               LEFT JOIN orders ord ON ord.order_id = e.order_id WHERE e.event = 'order' \
               AND (ord.order_id IS NULL OR ord.{PAID}) \
               UNION ALL \
               SELECT ord.user_id AS p, ord.ts, ord.net_amount FROM orders ord LEFT JOIN eo ON eo.order_id = ord.order_id \
               WHERE eo.order_id IS NULL AND ord.{PAID} AND ord.user_id IS NOT NULL AND ord.ts IS NOT NULL){pre_cte} \
         SELECT ex.v, ex.nv, count(o.ts) AS orders, COALESCE(sum(o.net_amount), 0) AS revenue{event_cols}{pre_cols} \
         FROM ex LEFT JOIN o ON o.p = ex.user_id AND o.ts >= ex.t0{window}{event_joins}{pre_join} GROUP BY ex.user_id, ex.v, ex.nv ORDER BY ex.user_id",
        start.map_or(String::new(), |s| format!(
            " AND ts >= {} AND ts <= {}",
            ts_literal(s),
            ts_literal(end.unwrap_or(i64::MAX))
        ))
    );
    // Rows come ordered by user, so sums (and so every figure) are the same run after run.
    let per_event = if pre.is_some() { 2 } else { 1 };
    let mut variants = Vec::new();
    // Per user: [orders, revenue, then per event metric did (and did before)], and before
    // exposure [orders, revenue] when CUPED adjusts.
    let width = 2 + per_event * event_metrics.len();
    let mut cols: Vec<Vec<f64>> = vec![Vec::new(); width + if pre.is_some() { 2 } else { 0 }];
    let mut several = 0u64;
    for b in ctx.sql(&q).await?.collect().await? {
        let (v, nv) = (texts(b.column(0))?, ints(b.column(1))?);
        let vals = (2..b.num_columns())
            .map(|j| floats(b.column(j)))
            .collect::<Result<Vec<_>>>()?;
        for i in 0..v.len() {
            if nv[i] > 1 {
                several += 1;
                continue;
            }
            variants.push(v[i].clone().unwrap_or_default());
            for (c, x) in cols.iter_mut().zip(&vals) {
                c.push(if x[i].is_nan() { 0.0 } else { x[i] });
            }
        }
    }
    if variants.is_empty() {
        return Err(Error::Invalid(format!(
            "no exposures of experiment `{}` in the workspace",
            spec.experiment
        )));
    }
    let converted =
        |x: &[f64]| -> Vec<f64> { x.iter().map(|&o| if o > 0.0 { 1.0 } else { 0.0 }).collect() };
    // A value and, with CUPED, its pre-exposure covariate.
    let single = |kind: Kind, y: Vec<f64>, x: Option<Vec<f64>>| match x {
        Some(x) => MetricValues::Adjusted(y, x),
        None => MetricValues::Single(kind, y),
    };
    let (pre_orders, pre_revenue) = match pre {
        Some(_) => (Some(&cols[width]), Some(&cols[width + 1])),
        None => (None, None),
    };
    let metrics: Vec<(String, MetricValues)> = names
        .iter()
        .map(|m| {
            if let Some(j) = event_metrics.iter().position(|e| *e == m) {
                let at = 2 + per_event * j;
                let x = pre.as_ref().map(|_| cols[at + 1].clone());
                return (m.clone(), single(Kind::Proportion, cols[at].clone(), x));
            }
            let v = match m.as_str() {
                "conversion" => single(
                    Kind::Proportion,
                    converted(&cols[0]),
                    pre_orders.map(|x| converted(x)),
                ),
                "orders" => single(Kind::Mean, cols[0].clone(), pre_orders.cloned()),
                "revenue" | "spend" => single(Kind::Mean, cols[1].clone(), pre_revenue.cloned()),
                _ => MetricValues::Ratio(cols[1].clone(), cols[0].clone()),
            };
            (m.clone(), v)
        })
        .collect();
    let weights = if spec.weights.is_empty() {
        planned
    } else {
        spec.weights.clone()
    };
    let mut analysis = abtest::analyze(&variants, &spec.control, &metrics, &weights, &spec.config)?;
    let newest = query::newest_instant(ws).await?.unwrap_or(i64::MAX);
    let status = def.map_or("running", |d| d.status(newest));
    let warnings: Vec<String> = overlaps(&defs)
        .into_iter()
        .filter(|o| o.a == spec.experiment || o.b == spec.experiment)
        .map(|o| o.warning)
        .collect();
    analysis.lower_is_better = lower_is_better;
    analysis.caveats = warnings.clone();
    if status == "running" && spec.config.sequential.is_none() {
        analysis.caveats.push(
            "the experiment is still running: fixed-horizon p-values hold only when read once at the planned size; if you look repeatedly, use --sequential".into(),
        );
    }
    analysis.verdicts = abtest::verdicts(&analysis);
    Ok(ExperimentReport {
        experiment: spec.experiment.clone(),
        starts_at: start.map(|s| crate::calendar::format_instant(s, &tz)),
        ends_at: end.map(|e| crate::calendar::format_instant(e, &tz)),
        status,
        defined: def.is_some(),
        users_in_several_variants: several,
        cuped_days: spec.cuped_days,
        warnings,
        analysis,
    })
}
