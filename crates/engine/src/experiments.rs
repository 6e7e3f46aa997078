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
use crate::workspace::Workspace;

/// Built-in per-user metrics of a workspace experiment (`spend` is revenue's alias; any other
/// name is an event: whether the user did it after exposure).
pub const METRICS: &[&str] = &["conversion", "orders", "revenue", "aov"];

/// What to analyse.
#[derive(Debug, Clone, PartialEq)]
pub struct ExperimentSpec {
    /// experiment_id in exposures (and experiments).
    pub experiment: String,
    /// The control variant.
    pub control: String,
    /// Metrics (see [`METRICS`]).
    pub metrics: Vec<String>,
    /// Planned split in sorted-variant order; empty = the experiments table's weights, else equal.
    pub weights: Vec<f64>,
    /// Confidence, and sequential testing.
    pub config: Config,
}

/// The analysis with what it counted.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct ExperimentReport {
    /// The experiment.
    pub experiment: String,
    /// Window start (shop zone), when the experiments table has one.
    pub starts_at: Option<String>,
    /// Window end.
    pub ends_at: Option<String>,
    /// Users exposed to more than one variant, left out.
    pub users_in_several_variants: u64,
    /// SRM and results, as `experiment analyze-file` prints them.
    #[serde(flatten)]
    pub analysis: Analysis,
}

/// Analyses a workspace experiment.
pub async fn analyze(ws: &Workspace, spec: &ExperimentSpec) -> Result<ExperimentReport> {
    if spec.metrics.is_empty() {
        return Err(Error::Invalid(format!(
            "no metrics: use {} or an event name",
            METRICS.join(", ")
        )));
    }
    let (ctx, manifest) = query::context(ws).await?;
    let tz = crate::calendar::zone(&manifest.settings);
    let x = quote(&spec.experiment);
    // The window and planned weights, when the experiment is defined.
    let def = ctx
        .sql(&format!(
            "SELECT CAST(starts_at AS BIGINT), CAST(ends_at AS BIGINT), variants, weights FROM experiments WHERE experiment_id = {x}"
        ))
        .await?
        .collect()
        .await?;
    let (mut start, mut end, mut planned) = (None, None, Vec::new());
    if let Some(b) = def.iter().find(|b| b.num_rows() > 0) {
        let (s, e) = (ints(b.column(0))?, ints(b.column(1))?);
        let (names, weights) = (texts(b.column(2))?, texts(b.column(3))?);
        start = (!b.column(0).is_null(0)).then(|| s[0]);
        end = (!b.column(1).is_null(0)).then(|| e[0]);
        if let (Some(Some(n)), Some(Some(w))) = (names.first(), weights.first()) {
            let n: Vec<String> = serde_json::from_str(n).unwrap_or_default();
            let w: Vec<f64> = serde_json::from_str(w).unwrap_or_default();
            let mut pairs: Vec<(String, f64)> = n.into_iter().zip(w).collect();
            pairs.sort_by(|a, b| a.0.cmp(&b.0));
            planned = pairs.into_iter().map(|p| p.1).collect();
        }
    }
    // Metrics that name an event: did the user do it after exposure (inside the window)?
    let event_metrics: Vec<&String> = spec
        .metrics
        .iter()
        .filter(|m| !METRICS.contains(&m.as_str()) && m.as_str() != "spend")
        .collect();
    let mut event_cols = String::new();
    let mut event_joins = String::new();
    for (i, m) in event_metrics.iter().enumerate() {
        event_cols.push_str(&format!(
            ", max(CASE WHEN ev{i}.p IS NULL THEN 0 ELSE 1 END) AS e{i}"
        ));
        let end_cond = end.map_or(String::new(), |e| format!(" AND e.ts <= {}", ts_literal(e)));
        // One row per user at most, so order counts are not multiplied.
        event_joins.push_str(&format!(
            " LEFT JOIN (SELECT DISTINCT x.user_id AS p FROM ex x JOIN (SELECT COALESCE(user_id, anonymous_id) AS p, ts \
             FROM events WHERE event = {}) e ON e.p = x.user_id AND e.ts >= x.t0{end_cond}) ev{i} ON ev{i}.p = ex.user_id",
            quote(m)
        ));
    }
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
               WHERE eo.order_id IS NULL AND ord.{PAID} AND ord.user_id IS NOT NULL AND ord.ts IS NOT NULL) \
         SELECT ex.v, ex.nv, count(o.ts) AS orders, COALESCE(sum(o.net_amount), 0) AS revenue{event_cols} \
         FROM ex LEFT JOIN o ON o.p = ex.user_id AND o.ts >= ex.t0{window}{event_joins} GROUP BY ex.user_id, ex.v, ex.nv",
        start.map_or(String::new(), |s| format!(
            " AND ts >= {} AND ts <= {}",
            ts_literal(s),
            ts_literal(end.unwrap_or(i64::MAX))
        ))
    );
    let mut variants = Vec::new();
    let (mut orders, mut revenue) = (Vec::new(), Vec::new());
    let mut did: Vec<Vec<f64>> = vec![Vec::new(); event_metrics.len()];
    let mut several = 0u64;
    for b in ctx.sql(&q).await?.collect().await? {
        let (v, nv, o, r) = (
            texts(b.column(0))?,
            ints(b.column(1))?,
            floats(b.column(2))?,
            floats(b.column(3))?,
        );
        let evs = (0..event_metrics.len())
            .map(|j| floats(b.column(4 + j)))
            .collect::<Result<Vec<_>>>()?;
        for i in 0..v.len() {
            if nv[i] > 1 {
                several += 1;
                continue;
            }
            variants.push(v[i].clone().unwrap_or_default());
            for (d, e) in did.iter_mut().zip(&evs) {
                d.push(e[i]);
            }
            orders.push(o[i]);
            revenue.push(if r[i].is_nan() { 0.0 } else { r[i] });
        }
    }
    if variants.is_empty() {
        return Err(Error::Invalid(format!(
            "no exposures of experiment `{}` in the workspace",
            spec.experiment
        )));
    }
    let metrics: Vec<(String, MetricValues)> = spec
        .metrics
        .iter()
        .map(|m| {
            if let Some(j) = event_metrics.iter().position(|e| *e == m) {
                return (
                    m.clone(),
                    MetricValues::Single(Kind::Proportion, did[j].clone()),
                );
            }
            let v = match m.as_str() {
                "conversion" => MetricValues::Single(
                    Kind::Proportion,
                    orders
                        .iter()
                        .map(|&o| if o > 0.0 { 1.0 } else { 0.0 })
                        .collect(),
                ),
                "orders" => MetricValues::Single(Kind::Mean, orders.clone()),
                "revenue" | "spend" => MetricValues::Single(Kind::Mean, revenue.clone()),
                _ => MetricValues::Ratio(revenue.clone(), orders.clone()),
            };
            (m.clone(), v)
        })
        .collect();
    let weights = if spec.weights.is_empty() {
        planned
    } else {
        spec.weights.clone()
    };
    let analysis = abtest::analyze(
        &variants,
        &spec.control,
        &metrics,
        &weights,
        &spec.config,
    )
    .map_err(Error::Invalid)?;
    Ok(ExperimentReport {
        experiment: spec.experiment.clone(),
        starts_at: start.map(|s| crate::calendar::format_instant(s, &tz)),
        ends_at: end.map(|e| crate::calendar::format_instant(e, &tz)),
        users_in_several_variants: several,
        analysis,
    })
}
