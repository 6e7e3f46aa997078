//! Repurchase: the N-day repurchase rate of new customers and the intervals between a customer's
//! purchase days, overall and by acquisition channel, member tier and first-order category.
//! Definitions: docs/metrics.md, "Repurchase".

use std::collections::{BTreeMap, HashMap};

use serde::{Deserialize, Serialize};
use shoplens_models::stats::{quantile, ratio};

use crate::calendar;
use crate::error::{Error, Result};
use crate::query;
use crate::sql::{buyer_orders, floats, ints, local_day, texts, ts_literal};
use crate::storage::workspace::Workspace;

/// What to compute.
#[derive(Debug, Clone, PartialEq)]
pub struct RepurchaseSpec {
    /// N: the repurchase window in days after the first purchase day.
    pub days: i64,
    /// First purchases at or after this instant (µs), if set.
    pub from: Option<i64>,
    /// First purchases before this instant (µs), if set.
    pub to: Option<i64>,
    /// Data up to this instant (default: the newest timestamp in the workspace).
    pub as_of: Option<i64>,
}

impl RepurchaseSpec {
    /// The N-day rate over all data.
    pub fn new(days: i64) -> RepurchaseSpec {
        RepurchaseSpec {
            days,
            from: None,
            to: None,
            as_of: None,
        }
    }
}

/// `shoplens repurchase` and `GET /api/repurchase`: the parameters as the command line and the
/// API take them (same names, same defaults).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, clap::Args, schemars::JsonSchema)]
#[serde(default, deny_unknown_fields)]
pub struct RepurchaseParams {
    /// The repurchase window N in days after the first purchase day.
    #[arg(long, default_value_t = 30)]
    pub days: i64,
    /// First purchases from this day (or instant) on, in the shop's zone (default: all data).
    #[arg(long)]
    pub from: Option<String>,
    /// First purchases up to this day, inclusive (or an instant, exclusive).
    #[arg(long)]
    pub to: Option<String>,
}

impl Default for RepurchaseParams {
    fn default() -> RepurchaseParams {
        crate::params::flag_defaults()
    }
}

impl RepurchaseParams {
    /// The spec in the shop's zone `tz`, as of `as_of`.
    pub fn spec(&self, tz: &chrono_tz::Tz, as_of: Option<i64>) -> Result<RepurchaseSpec> {
        let (from, to) = calendar::period(tz, self.from.as_deref(), self.to.as_deref())?;
        Ok(RepurchaseSpec {
            days: self.days,
            from,
            to,
            as_of,
        })
    }
}

/// Repurchase figures of one group of customers.
#[derive(Debug, Clone, PartialEq, Serialize, schemars::JsonSchema)]
pub struct RepurchaseGroup {
    /// The group's value (null: unknown).
    pub value: Option<String>,
    /// New customers observable for N days.
    pub customers: u64,
    /// Of those, customers with another paid order on a later day within N days.
    pub repurchasers: u64,
    /// repurchasers / customers.
    pub rate: Option<f64>,
    /// Median interval between consecutive purchase days, days.
    pub median_interval_days: Option<f64>,
    /// Intervals counted.
    pub intervals: u64,
}

/// One bin of the interval histogram.
#[derive(Debug, Clone, PartialEq, Serialize, schemars::JsonSchema)]
pub struct IntervalBin {
    /// Smallest interval in the bin, days.
    pub from_days: i64,
    /// Largest interval in the bin, days (null: no upper bound).
    pub to_days: Option<i64>,
    /// Intervals in the bin.
    pub count: u64,
    /// Share of all intervals.
    pub share: f64,
}

/// The repurchase report.
#[derive(Debug, Clone, PartialEq, Serialize, schemars::JsonSchema)]
pub struct RepurchaseReport {
    /// N.
    pub days: i64,
    /// New customers (first paid order in the period) observable for N days after it.
    pub customers: u64,
    /// Of those, customers with another paid order on a later calendar day within N days.
    pub repurchasers: u64,
    /// repurchasers / customers.
    pub rate: Option<f64>,
    /// Median interval between consecutive purchase days of these customers, days.
    pub median_interval_days: Option<f64>,
    /// First quartile, median and third quartile of the intervals, days.
    pub interval_quartiles_days: Option<[f64; 3]>,
    /// Intervals counted.
    pub intervals: u64,
    /// Histogram of the intervals.
    pub interval_histogram: Vec<IntervalBin>,
    /// By customers.acquisition_channel.
    pub by_acquisition_channel: Vec<RepurchaseGroup>,
    /// By customers.member_tier.
    pub by_member_tier: Vec<RepurchaseGroup>,
    /// By the categories of the first purchase day's order lines (a customer counts in each).
    pub by_first_category: Vec<RepurchaseGroup>,
    /// Customers with a first purchase in the period but fewer than N days observed (left out).
    pub not_yet_observable: u64,
    /// The data's as-of instant, in the shop's zone.
    pub as_of: Option<String>,
}

/// Histogram bins (inclusive lower and upper bounds, days).
const BINS: [(i64, Option<i64>); 10] = [
    (1, Some(1)),
    (2, Some(3)),
    (4, Some(7)),
    (8, Some(14)),
    (15, Some(30)),
    (31, Some(60)),
    (61, Some(90)),
    (91, Some(180)),
    (181, Some(365)),
    (366, None),
];

struct Customer {
    rep: bool,
    channel: Option<String>,
    tier: Option<String>,
}

/// Computes the repurchase report.
pub async fn repurchase(ws: &Workspace, spec: &RepurchaseSpec) -> Result<RepurchaseReport> {
    if spec.days < 1 {
        return Err(Error::Invalid("--days must be at least 1".into()));
    }
    let (ctx, manifest) = query::context(ws).await?;
    let tz = calendar::zone(&manifest.settings);
    let as_of = match spec.as_of {
        Some(a) => Some(a),
        None => query::newest_instant(ws).await?,
    };
    // Calendar days of the shop's zone, as day numbers.
    let day = local_day("ts", tz.name());
    let as_of_day = as_of.map_or(i64::MAX.to_string(), |a| {
        local_day(&ts_literal(a), tz.name())
    });
    let mut period = vec!["true".to_string()];
    if let Some(f) = spec.from {
        period.push(format!("first_ts >= {}", ts_literal(f)));
    }
    if let Some(t) = spec.to {
        period.push(format!("first_ts < {}", ts_literal(t)));
    }
    let n = spec.days;
    let with = format!(
        "WITH po AS (SELECT user_id, order_id, ts, {day} AS d FROM orders WHERE {}), \
         fp AS (SELECT user_id, min(d) AS first_d, min(ts) AS first_ts FROM po GROUP BY user_id), \
         newc AS (SELECT user_id, first_d FROM fp WHERE {}), \
         cohort AS (SELECT user_id, first_d FROM newc WHERE first_d + {n} <= {as_of_day})",
        buyer_orders(as_of),
        period.join(" AND ")
    );
    // Per customer: repurchased within N days, channel, tier.
    let q = format!(
        "{with} SELECT c.user_id, max(CASE WHEN p.d > c.first_d AND p.d <= c.first_d + {n} THEN 1 ELSE 0 END) AS rep, \
         min(cu.acquisition_channel) AS channel, min(cu.member_tier) AS tier \
         FROM cohort c JOIN po p ON p.user_id = c.user_id LEFT JOIN customers cu ON cu.user_id = c.user_id \
         GROUP BY c.user_id"
    );
    let mut customers: HashMap<String, Customer> = HashMap::new();
    for b in ctx.sql(&q).await?.collect().await? {
        let (u, rep, ch, tier) = (
            texts(b.column(0))?,
            ints(b.column(1))?,
            texts(b.column(2))?,
            texts(b.column(3))?,
        );
        for (((u, rep), channel), tier) in u.into_iter().zip(rep).zip(ch).zip(tier) {
            if let Some(u) = u {
                customers.insert(
                    u,
                    Customer {
                        rep: rep > 0,
                        channel,
                        tier,
                    },
                );
            }
        }
    }
    // Intervals between consecutive purchase days of the cohort's customers.
    let q = format!(
        "{with}, days AS (SELECT DISTINCT p.user_id, p.d AS dn FROM po p JOIN cohort c ON c.user_id = p.user_id) \
         SELECT user_id, dn - lag(dn) OVER (PARTITION BY user_id ORDER BY dn) AS gap FROM days"
    );
    let mut gaps: HashMap<String, Vec<f64>> = HashMap::new();
    for b in ctx.sql(&q).await?.collect().await? {
        let (u, g) = (texts(b.column(0))?, floats(b.column(1))?);
        for (u, g) in u.into_iter().zip(g) {
            if let (Some(u), false) = (u, g.is_nan()) {
                gaps.entry(u).or_default().push(g);
            }
        }
    }
    // First-day categories.
    let q = format!(
        "{with} SELECT DISTINCT c.user_id, pr.category FROM cohort c \
         JOIN po p ON p.user_id = c.user_id AND p.d = c.first_d \
         JOIN order_items oi ON oi.order_id = p.order_id LEFT JOIN products pr ON pr.item_id = oi.item_id"
    );
    let mut first_cats: Vec<(String, Option<String>)> = Vec::new();
    for b in ctx.sql(&q).await?.collect().await? {
        let (u, c) = (texts(b.column(0))?, texts(b.column(1))?);
        first_cats.extend(u.into_iter().zip(c).filter_map(|(u, c)| Some((u?, c))));
    }
    let not_yet = ctx
        .sql(&format!(
            "{with} SELECT count(*) - (SELECT count(*) FROM cohort) FROM newc"
        ))
        .await?
        .collect()
        .await?;
    let not_yet_observable = not_yet
        .first()
        .map(|b| ints(b.column(0)))
        .transpose()?
        .and_then(|v| v.first().copied())
        .unwrap_or(0) as u64;

    let all: Vec<&String> = customers.keys().collect();
    let overall = group(None, &all, &customers, &gaps);
    let mut intervals: Vec<f64> = all
        .iter()
        .flat_map(|u| gaps.get(*u).into_iter().flatten().copied())
        .collect();
    intervals.sort_by(f64::total_cmp);
    let total = intervals.len() as u64;
    let histogram = BINS
        .iter()
        .map(|&(lo, hi)| {
            let count = intervals
                .iter()
                .filter(|&&g| g >= lo as f64 && hi.is_none_or(|h| g <= h as f64))
                .count() as u64;
            IntervalBin {
                from_days: lo,
                to_days: hi,
                count,
                share: ratio(count, total).unwrap_or(0.0),
            }
        })
        .collect();
    let quartiles = match (
        quantile(&intervals, 0.25),
        quantile(&intervals, 0.5),
        quantile(&intervals, 0.75),
    ) {
        (Some(a), Some(b), Some(c)) => Some([a, b, c]),
        _ => None,
    };
    let by = |key: &dyn Fn(&Customer) -> Option<String>| {
        let mut m: BTreeMap<Option<String>, Vec<&String>> = BTreeMap::new();
        for (u, c) in &customers {
            m.entry(key(c)).or_default().push(u);
        }
        sorted(
            m.into_iter()
                .map(|(v, us)| group(v, &us, &customers, &gaps))
                .collect(),
        )
    };
    let by_acquisition_channel = by(&|c| c.channel.clone());
    let by_member_tier = by(&|c| c.tier.clone());
    let mut cats: BTreeMap<Option<String>, Vec<&String>> = BTreeMap::new();
    for (u, c) in &first_cats {
        if customers.contains_key(u) {
            cats.entry(c.clone()).or_default().push(u);
        }
    }
    let by_first_category = sorted(
        cats.into_iter()
            .map(|(v, us)| group(v, &us, &customers, &gaps))
            .collect(),
    );
    Ok(RepurchaseReport {
        days: n,
        customers: overall.customers,
        repurchasers: overall.repurchasers,
        rate: overall.rate,
        median_interval_days: overall.median_interval_days,
        interval_quartiles_days: quartiles,
        intervals: total,
        interval_histogram: histogram,
        by_acquisition_channel,
        by_member_tier,
        by_first_category,
        not_yet_observable,
        as_of: as_of.map(|a| calendar::format_instant(a, &tz)),
    })
}

fn sorted(mut v: Vec<RepurchaseGroup>) -> Vec<RepurchaseGroup> {
    v.sort_by(|a, b| {
        b.customers
            .cmp(&a.customers)
            .then_with(|| a.value.cmp(&b.value))
    });
    v
}

fn group(
    value: Option<String>,
    users: &[&String],
    customers: &HashMap<String, Customer>,
    gaps: &HashMap<String, Vec<f64>>,
) -> RepurchaseGroup {
    let n = users.len() as u64;
    let rep = users
        .iter()
        .filter(|u| customers.get(**u).is_some_and(|c| c.rep))
        .count() as u64;
    let mut g: Vec<f64> = users
        .iter()
        .flat_map(|u| gaps.get(*u).into_iter().flatten().copied())
        .collect();
    g.sort_by(f64::total_cmp);
    RepurchaseGroup {
        value,
        customers: n,
        repurchasers: rep,
        rate: ratio(rep, n),
        median_interval_days: quantile(&g, 0.5),
        intervals: g.len() as u64,
    }
}
