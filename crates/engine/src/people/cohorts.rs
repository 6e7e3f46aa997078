//! Cohorts: customers grouped by the week or month of their first purchase (or registration);
//! retention by period (active in period k, and active in k or later) and revenue per member by
//! period and cumulative (the LTV curve). Definitions: docs/metrics.md, "Cohorts".

use std::collections::BTreeMap;

use chrono::{Datelike, NaiveDate};
use serde::{Deserialize, Serialize};
use shoplens_models::stats::ratio;

use crate::calendar;
use crate::error::Result;
use crate::query;
use crate::sql::{PAID, floats, ints, texts, ts_literal};
use crate::storage::workspace::Workspace;

/// Cohort and activity period.
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
pub enum Period {
    /// Calendar days in the shop's zone (lifecycle only; cohorts use weeks or months).
    Day,
    /// ISO weeks (Monday to Sunday) in the shop's zone.
    Week,
    /// Calendar months in the shop's zone.
    #[default]
    Month,
}

/// What puts a customer in a cohort. Reports name it in snake case (`first_purchase`); as a
/// parameter it is the command line's `first-purchase` (the snake case is accepted too).
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
#[serde(rename_all(serialize = "snake_case", deserialize = "kebab-case"))]
pub enum Basis {
    /// The period of the first paid order.
    #[default]
    #[serde(alias = "first_purchase")]
    FirstPurchase,
    /// The period of customers.registered_at.
    Registration,
}

/// What makes a member active in a period.
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
pub enum Activity {
    /// A paid order in the period.
    #[default]
    Orders,
    /// Any event in the period.
    Events,
}

/// `shoplens cohorts` and `GET /api/cohorts`: the parameters as the command line and the API
/// take them (same names, same defaults).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, clap::Args, schemars::JsonSchema)]
#[serde(default, deny_unknown_fields)]
pub struct CohortParams {
    /// Cohort and activity period (week or month).
    #[arg(long, value_enum, default_value_t = Period::Month)]
    pub period: Period,
    /// What puts a customer in a cohort.
    #[arg(long, value_enum, default_value_t = Basis::FirstPurchase)]
    pub basis: Basis,
    /// What makes a member active in a period.
    #[arg(long, value_enum, default_value_t = Activity::Orders)]
    pub active: Activity,
    /// Cohorts from this day on (default: all).
    #[arg(long)]
    pub from: Option<String>,
    /// Cohorts up to this day, inclusive.
    #[arg(long)]
    pub to: Option<String>,
    /// Also one matrix per acquisition channel.
    #[arg(long)]
    pub by_channel: bool,
}

impl Default for CohortParams {
    fn default() -> CohortParams {
        crate::params::flag_defaults()
    }
}

impl CohortParams {
    /// The spec in the shop's zone `tz`, as of `as_of`.
    pub fn spec(&self, tz: &chrono_tz::Tz, as_of: Option<i64>) -> Result<CohortSpec> {
        if self.period == Period::Day {
            return Err(crate::Error::Invalid(
                "--period: cohorts are by week or month".into(),
            ));
        }
        let (from, to) = calendar::period(tz, self.from.as_deref(), self.to.as_deref())?;
        Ok(CohortSpec {
            period: self.period,
            basis: self.basis,
            activity: self.active,
            from,
            to,
            as_of,
            by_channel: self.by_channel,
        })
    }
}

/// What to compute.
#[derive(Debug, Clone, PartialEq, Default)]
pub struct CohortSpec {
    /// Week or month.
    pub period: Period,
    /// First purchase or registration.
    pub basis: Basis,
    /// Orders or events.
    pub activity: Activity,
    /// Cohorts starting at or after this instant (µs).
    pub from: Option<i64>,
    /// Cohorts starting before this instant (µs).
    pub to: Option<i64>,
    /// Data up to this instant (default: the newest timestamp in the workspace).
    pub as_of: Option<i64>,
    /// One matrix per acquisition channel as well.
    pub by_channel: bool,
}

/// One cell of a cohort's row.
#[derive(Debug, Clone, PartialEq, Serialize, schemars::JsonSchema)]
pub struct CohortCell {
    /// Periods since the cohort's period (0 = the cohort's own).
    pub k: u32,
    /// Members active in period k.
    pub active: u64,
    /// active / size.
    pub rate: Option<f64>,
    /// Members active in period k or any later observed period.
    pub active_or_later: u64,
    /// active_or_later / size.
    pub rate_or_later: Option<f64>,
    /// Revenue (Σ net_amount of paid orders) of members in period k.
    pub revenue: f64,
    /// revenue / size.
    pub revenue_per_member: Option<f64>,
    /// Σ revenue of periods 0..=k / size: the LTV curve.
    pub cumulative_revenue_per_member: Option<f64>,
    /// The period ends after the as-of instant (not fully observed).
    pub partial: bool,
}

/// One cohort.
#[derive(Debug, Clone, PartialEq, Serialize, schemars::JsonSchema)]
pub struct CohortRow {
    /// First day of the cohort's period.
    pub cohort: String,
    /// Acquisition channel (rows of the channel breakdown; null in the overall rows).
    pub channel: Option<String>,
    /// Members.
    pub size: u64,
    /// Periods 0, 1, … up to the as-of instant.
    pub periods: Vec<CohortCell>,
}

/// The weighted average over cohorts observed at k.
#[derive(Debug, Clone, PartialEq, Serialize, schemars::JsonSchema)]
pub struct AverageCell {
    /// Periods since the cohort's period.
    pub k: u32,
    /// Members of cohorts that reached period k.
    pub members: u64,
    /// Active in k / members.
    pub rate: Option<f64>,
    /// Active in k or later / members.
    pub rate_or_later: Option<f64>,
    /// Cumulative revenue per member up to k.
    pub cumulative_revenue_per_member: Option<f64>,
}

/// The cohort report.
#[derive(Debug, Clone, PartialEq, Serialize, schemars::JsonSchema)]
pub struct CohortReport {
    /// Week or month.
    pub period: Period,
    /// First purchase or registration.
    pub basis: Basis,
    /// Orders or events.
    pub activity: Activity,
    /// Overall cohorts, oldest first.
    pub cohorts: Vec<CohortRow>,
    /// Weighted average curve over the overall cohorts.
    pub average: Vec<AverageCell>,
    /// Per acquisition channel (empty unless asked).
    #[serde(skip_serializing_if = "Vec::is_empty")]
    pub by_channel: Vec<CohortRow>,
    /// The data's as-of instant, in the shop's zone.
    pub as_of: Option<String>,
}

/// Days since 1970-01-01 of a date.
pub(crate) fn day_number(d: NaiveDate) -> i64 {
    i64::from(d.num_days_from_ce()) - 719_163
}

pub(crate) fn date_of(n: i64) -> Option<NaiveDate> {
    NaiveDate::from_num_days_from_ce_opt((n + 719_163) as i32)
}

/// SQL of a UTC timestamp column's period index in the shop's zone: days since 1970 (day),
/// Monday-based weeks since 1969-12-29 (week), or months since year 0 (month).
fn period_index(p: Period, col: &str, tz: &str) -> String {
    let day = crate::sql::local_day(col, tz);
    match p {
        Period::Day => day,
        Period::Week => format!("CAST(floor(CAST({day} + 3 AS DOUBLE) / 7) AS BIGINT)"),
        Period::Month => {
            let t = format!(
                "arrow_cast(local_micros({col}, {}), 'Timestamp(Microsecond, None)')",
                crate::sql::quote(tz)
            );
            format!(
                "(CAST(date_part('year', {t}) AS BIGINT) * 12 + CAST(date_part('month', {t}) AS BIGINT) - 1)"
            )
        }
    }
}

/// Runs a query once and registers its result as an in-memory table.
async fn materialise(ctx: &datafusion::prelude::SessionContext, name: &str, q: &str) -> Result<()> {
    let df = ctx.sql(q).await?;
    if crate::cluster::is_cluster(ctx) {
        // A cluster ships plans, not in-memory rows: the query stays a view there.
        let view = datafusion::catalog::view::ViewTable::new(df.logical_plan().clone(), None);
        ctx.register_table(name, std::sync::Arc::new(view))?;
        return Ok(());
    }
    let schema = std::sync::Arc::new(df.schema().as_arrow().clone());
    let batches = df.collect().await?;
    let t = datafusion::catalog::MemTable::try_new(schema, vec![batches])?;
    ctx.register_table(name, std::sync::Arc::new(t))?;
    Ok(())
}

/// First day (days since 1970) of period index `i`.
pub(crate) fn index_start(p: Period, i: i64) -> i64 {
    match p {
        Period::Day => i,
        Period::Week => 7 * i - 3,
        Period::Month => {
            NaiveDate::from_ymd_opt(i.div_euclid(12) as i32, (i.rem_euclid(12) + 1) as u32, 1)
                .map_or(0, day_number)
        }
    }
}

/// Period index of a day number.
pub(crate) fn day_index(p: Period, d: i64) -> i64 {
    match p {
        Period::Day => d,
        Period::Week => (d + 3).div_euclid(7),
        Period::Month => {
            date_of(d).map_or(0, |x| i64::from(x.year()) * 12 + i64::from(x.month()) - 1)
        }
    }
}

/// Aggregates of one (cohort, channel) group: size, and per k: active, revenue, last-active.
#[derive(Default)]
struct Agg {
    size: u64,
    active: BTreeMap<i64, u64>,
    revenue: BTreeMap<i64, f64>,
    last: BTreeMap<i64, u64>,
}

/// Computes the cohort report. The heavy lifting is SQL (integer period indices, group-bys);
/// only per-cohort aggregates come back.
pub async fn cohorts(ws: &Workspace, spec: &CohortSpec) -> Result<CohortReport> {
    let (ctx, manifest) = query::context(ws).await?;
    let tz = calendar::zone(&manifest.settings);
    let z = tz.name();
    let as_of = match spec.as_of {
        Some(a) => Some(a),
        None => query::newest_instant(ws).await?,
    };
    let cap_on = |col: &str| {
        as_of.map_or(String::new(), |a| {
            format!(" AND {col} <= {}", ts_literal(a))
        })
    };
    let pr = spec.period;
    let po = format!(
        "SELECT user_id, {} AS p, net_amount AS r FROM orders \
         WHERE {PAID} AND user_id IS NOT NULL AND ts IS NOT NULL{}",
        period_index(pr, "ts", z),
        cap_on("ts")
    );
    let members = match spec.basis {
        Basis::FirstPurchase => {
            "SELECT po.user_id, min(po.p) AS c, min(cu.acquisition_channel) AS ch FROM po \
             LEFT JOIN customers cu ON cu.user_id = po.user_id GROUP BY po.user_id"
                .to_string()
        }
        Basis::Registration => format!(
            "SELECT user_id, {} AS c, acquisition_channel AS ch FROM customers WHERE registered_at IS NOT NULL{}",
            period_index(pr, "registered_at", z),
            cap_on("registered_at")
        ),
    };
    let from_i = spec.from.map(|f| day_index(pr, instant_day(f, &tz)));
    let to_i = spec.to.map(|t| day_index(pr, instant_day(t - 1, &tz)));
    let mut bounds = vec!["true".to_string()];
    if let Some(f) = from_i {
        bounds.push(format!("c >= {f}"));
    }
    if let Some(t) = to_i {
        bounds.push(format!("c <= {t}"));
    }
    let act = match spec.activity {
        Activity::Orders => "SELECT DISTINCT user_id, p FROM po".to_string(),
        Activity::Events => format!(
            "SELECT DISTINCT user_id, {} AS p FROM events WHERE user_id IS NOT NULL AND ts IS NOT NULL{}",
            period_index(pr, "ts", z),
            cap_on("ts")
        ),
    };
    // Materialised once: every query below reads them.
    materialise(&ctx, "po", &po).await?;
    materialise(
        &ctx,
        "m",
        &format!("SELECT * FROM ({members}) WHERE {}", bounds.join(" AND ")),
    )
    .await?;
    materialise(&ctx, "act", &act).await?;
    let with = "";
    let mut groups: BTreeMap<(Option<String>, i64), Agg> = BTreeMap::new();
    let queries = [
        "SELECT ch, c, 0 AS k, count(*) AS n FROM m GROUP BY 1, 2".to_string(),
        "SELECT m.ch, m.c, a.p - m.c AS k, count(*) AS n FROM m JOIN act a ON a.user_id = m.user_id AND a.p >= m.c GROUP BY 1, 2, 3".into(),
        "SELECT m.ch, m.c, o.p - m.c AS k, sum(o.r) AS n FROM m JOIN po o ON o.user_id = m.user_id AND o.p >= m.c GROUP BY 1, 2, 3".into(),
        "SELECT ch, c, k, count(*) AS n FROM (SELECT m.ch, m.c, max(a.p - m.c) AS k FROM m JOIN act a ON a.user_id = m.user_id AND a.p >= m.c GROUP BY m.user_id, m.ch, m.c) GROUP BY 1, 2, 3".into(),
    ];
    for (qi, q) in queries.iter().enumerate() {
        for b in ctx.sql(&format!("{with}{q}")).await?.collect().await? {
            let (ch, c, k, n) = (
                texts(b.column(0))?,
                ints(b.column(1))?,
                ints(b.column(2))?,
                floats(b.column(3))?,
            );
            for i in 0..c.len() {
                let g = groups.entry((ch[i].clone(), c[i])).or_default();
                let v = if n[i].is_nan() { 0.0 } else { n[i] };
                match qi {
                    0 => g.size += v as u64,
                    1 => *g.active.entry(k[i]).or_default() += v as u64,
                    2 => *g.revenue.entry(k[i]).or_default() += v,
                    _ => *g.last.entry(k[i]).or_default() += v as u64,
                }
            }
        }
    }
    let last_day = as_of.map(|a| instant_day(a, &tz));
    let last_i = last_day.map(|d| day_index(pr, d));
    // Overall rows merge the channels of a cohort.
    let mut overall: BTreeMap<i64, Agg> = BTreeMap::new();
    for ((_, c), g) in &groups {
        let o = overall.entry(*c).or_default();
        o.size += g.size;
        for (k, v) in &g.active {
            *o.active.entry(*k).or_default() += v;
        }
        for (k, v) in &g.revenue {
            *o.revenue.entry(*k).or_default() += v;
        }
        for (k, v) in &g.last {
            *o.last.entry(*k).or_default() += v;
        }
    }
    let cohorts: Vec<CohortRow> = overall
        .iter()
        .map(|(c, g)| row(pr, *c, g, last_i, last_day, None))
        .collect();
    let average = average(&cohorts);
    let by_channel = if spec.by_channel {
        groups
            .iter()
            .map(|((ch, c), g)| row(pr, *c, g, last_i, last_day, Some(ch.clone())))
            .collect()
    } else {
        Vec::new()
    };
    Ok(CohortReport {
        period: spec.period,
        basis: spec.basis,
        activity: spec.activity,
        cohorts,
        average,
        by_channel,
        as_of: as_of.map(|a| calendar::format_instant(a, &tz)),
    })
}

/// The shop-zone day number of an instant.
pub(crate) fn instant_day(us: i64, tz: &chrono_tz::Tz) -> i64 {
    use chrono::TimeZone;
    let secs = us.div_euclid(1_000_000);
    tz.timestamp_opt(secs, 0)
        .single()
        .map_or(secs.div_euclid(86_400), |t| day_number(t.date_naive()))
}

fn row(
    period: Period,
    c: i64,
    g: &Agg,
    last_i: Option<i64>,
    last_day: Option<i64>,
    channel: Option<Option<String>>,
) -> CohortRow {
    let size = g.size;
    let n = last_i.map_or(0, |l| (l - c).max(0)) as usize + 1;
    let start = index_start(period, c);
    let mut cum = 0.0;
    let periods = (0..n)
        .map(|k| {
            let ki = k as i64;
            let active = g.active.get(&ki).copied().unwrap_or(0);
            let later: u64 = g.last.range(ki..).map(|(_, v)| v).sum();
            let revenue = g.revenue.get(&ki).copied().unwrap_or(0.0);
            cum += revenue;
            let end = index_start(period, c + ki + 1) - 1;
            CohortCell {
                k: k as u32,
                active,
                rate: ratio(active, size),
                active_or_later: later,
                rate_or_later: ratio(later, size),
                revenue,
                revenue_per_member: (size > 0).then(|| revenue / size as f64),
                cumulative_revenue_per_member: (size > 0).then(|| cum / size as f64),
                partial: last_day.is_some_and(|l| end > l),
            }
        })
        .collect();
    CohortRow {
        cohort: date_of(start).map_or_else(String::new, |d| d.to_string()),
        channel: channel.flatten(),
        size,
        periods,
    }
}

fn average(rows: &[CohortRow]) -> Vec<AverageCell> {
    let n = rows.iter().map(|r| r.periods.len()).max().unwrap_or(0);
    (0..n)
        .map(|k| {
            let seen: Vec<(&CohortRow, &CohortCell)> = rows
                .iter()
                .filter_map(|r| r.periods.get(k).map(|c| (r, c)))
                .collect();
            let members: u64 = seen.iter().map(|(r, _)| r.size).sum();
            let a: u64 = seen.iter().map(|(_, c)| c.active).sum();
            let l: u64 = seen.iter().map(|(_, c)| c.active_or_later).sum();
            let cum: f64 = seen
                .iter()
                .map(|(r, c)| c.cumulative_revenue_per_member.unwrap_or(0.0) * r.size as f64)
                .sum();
            AverageCell {
                k: k as u32,
                members,
                rate: ratio(a, members),
                rate_or_later: ratio(l, members),
                cumulative_revenue_per_member: (members > 0).then(|| cum / members as f64),
            }
        })
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn periods() {
        let d = |s: &str| day_number(NaiveDate::parse_from_str(s, "%Y-%m-%d").unwrap());
        let start = |p: Period, day: &str| index_start(p, day_index(p, d(day)));
        // 2025-03-05 is a Wednesday: its week starts Monday 2025-03-03.
        assert_eq!(start(Period::Week, "2025-03-05"), d("2025-03-03"));
        assert_eq!(start(Period::Week, "2025-03-03"), d("2025-03-03"));
        assert_eq!(start(Period::Week, "2025-03-09"), d("2025-03-03"));
        assert_eq!(start(Period::Month, "2025-03-31"), d("2025-03-01"));
        let between = |p: Period, a: &str, b: &str| day_index(p, d(b)) - day_index(p, d(a));
        assert_eq!(between(Period::Month, "2024-11-01", "2025-02-01"), 3);
        assert_eq!(between(Period::Week, "2025-03-03", "2025-03-17"), 2);
        // Every day lies in its period: from the period's start to the next period's.
        for day in ["2025-03-05", "2025-03-03", "2024-12-31", "1970-01-01"] {
            for p in [Period::Day, Period::Week, Period::Month] {
                let i = day_index(p, d(day));
                assert!(
                    index_start(p, i) <= d(day) && d(day) < index_start(p, i + 1),
                    "{day} {p:?}"
                );
            }
        }
    }
}
