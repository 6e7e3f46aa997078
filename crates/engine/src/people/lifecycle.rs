//! User lifecycle, as PostHog defines it: per period, active persons split into new, returning
//! and resurrecting, and the dormant ones who were active the period before. Not the customer
//! stages of the customers analysis (acquire → activate → retain → win back): a different
//! question, named apart. Definitions: docs/metrics.md, "User lifecycle".

use std::collections::HashMap;

use datafusion::arrow::array::{Array, AsArray};
use serde::{Deserialize, Serialize};

use crate::calendar;
use crate::error::Result;
use crate::people::cohorts::{Period, date_of, day_index, index_start, instant_day};
use crate::people::sessions::PERSON;
use crate::query;
use crate::sql::{ints, local_day, quote};
use crate::storage::workspace::Workspace;

/// `shoplens lifecycle` and `GET /api/lifecycle`: the parameters as the command line and the API
/// take them (same names, same defaults).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, clap::Args, schemars::JsonSchema)]
#[serde(default, deny_unknown_fields)]
pub struct LifecycleParams {
    /// Period.
    #[arg(long, value_enum, default_value_t = Period::Week)]
    pub period: Period,
    /// Only this event counts as activity (default: any event), e.g. order.
    #[arg(long)]
    pub event: Option<String>,
    /// Periods from the one holding this day.
    #[arg(long)]
    pub from: Option<String>,
    /// Periods up to the one holding this day.
    #[arg(long)]
    pub to: Option<String>,
}

impl Default for LifecycleParams {
    fn default() -> LifecycleParams {
        crate::params::flag_defaults()
    }
}

impl LifecycleParams {
    /// The spec in the shop's zone `tz`, as of `as_of`.
    pub fn spec(&self, tz: &chrono_tz::Tz, as_of: Option<i64>) -> Result<LifecycleSpec> {
        let (from, to) =
            calendar::events_period(tz, self.from.as_deref(), self.to.as_deref(), as_of)?;
        Ok(LifecycleSpec {
            period: self.period,
            event: self.event.clone(),
            from,
            to,
        })
    }
}

/// What to compute.
#[derive(Debug, Clone, PartialEq, Default)]
pub struct LifecycleSpec {
    /// Day, week or month.
    pub period: Period,
    /// Only this event counts as activity (default: any event).
    pub event: Option<String>,
    /// Periods from the one holding this instant (µs).
    pub from: Option<i64>,
    /// Periods up to the one holding the instant before this (µs).
    pub to: Option<i64>,
}

/// One period's lifecycle counts.
#[derive(Debug, Clone, PartialEq, Serialize, schemars::JsonSchema)]
pub struct LifecyclePeriod {
    /// First day of the period.
    pub period: String,
    /// Active, first seen in this period.
    pub new: u64,
    /// Active in this period and the previous one.
    pub returning: u64,
    /// Active in this period, not the previous one, seen before.
    pub resurrecting: u64,
    /// Active in the previous period, not this one (PostHog plots it below zero).
    pub dormant: u64,
    /// new + returning + resurrecting.
    pub active: u64,
    /// (new + resurrecting) / dormant: growth over loss (null when nobody went dormant).
    pub quick_ratio: Option<f64>,
}

/// The lifecycle report.
#[derive(Debug, Clone, PartialEq, Serialize, schemars::JsonSchema)]
pub struct LifecycleReport {
    /// Day, week or month.
    pub period: Period,
    /// The activity event, null for any.
    pub event: Option<String>,
    /// Oldest first.
    pub periods: Vec<LifecyclePeriod>,
}

/// Computes the lifecycle report.
pub async fn lifecycle(ws: &Workspace, spec: &LifecycleSpec) -> Result<LifecycleReport> {
    let (ctx, manifest) = query::context(ws).await?;
    let tz = calendar::zone(&manifest.settings);
    let day = local_day("ts", tz.name());
    let filter = spec
        .event
        .as_deref()
        .map_or(String::new(), |e| format!(" AND event = {}", quote(e)));
    // First seen (any event, all data) and active days (the chosen event, all data: the period
    // before the first shown one decides returning and dormant).
    let q = format!(
        "SELECT p, min(d) AS first_d, array_agg(DISTINCT CASE WHEN act THEN d END) AS days FROM \
         (SELECT {PERSON} AS p, {day} AS d, (true{filter}) AS act FROM events WHERE {PERSON} IS NOT NULL AND ts IS NOT NULL) \
         GROUP BY p"
    );
    let pr = spec.period;
    let mut per: HashMap<i64, [u64; 4]> = HashMap::new(); // new, returning, resurrecting, dormant
    let (mut lo, mut hi) = (i64::MAX, i64::MIN);
    for b in ctx.sql(&q).await?.collect().await? {
        let first = ints(b.column(1))?;
        let Some(lists) = b.column(2).as_list_opt::<i32>() else {
            return Err(crate::Error::Internal(
                "lifecycle: days are not a list".into(),
            ));
        };
        for (i, first_d) in first.iter().enumerate() {
            // Period indices: consecutive periods differ by one.
            let first_p = day_index(pr, *first_d);
            let days = lists.value(i);
            let mut ps: Vec<i64> = ints(&days)?
                .into_iter()
                .enumerate()
                .filter(|(j, _)| !days.is_null(*j))
                .map(|(_, d)| day_index(pr, d))
                .collect();
            ps.sort_unstable();
            ps.dedup();
            for (j, &p) in ps.iter().enumerate() {
                lo = lo.min(p);
                hi = hi.max(p);
                let prev_active = j > 0 && ps[j - 1] == p - 1;
                let slot = if p == first_p {
                    0
                } else if prev_active {
                    1
                } else {
                    2
                };
                per.entry(p).or_default()[slot] += 1;
                if ps.get(j + 1) != Some(&(p + 1)) {
                    per.entry(p + 1).or_default()[3] += 1;
                }
            }
        }
    }
    let mut periods = Vec::new();
    if lo <= hi {
        let from = spec.from.map(|f| day_index(pr, instant_day(f, &tz)));
        let to = spec.to.map(|t| day_index(pr, instant_day(t - 1, &tz)));
        for p in lo..=hi {
            if from.is_none_or(|f| p >= f) && to.is_none_or(|t| p <= t) {
                let c = per.get(&p).copied().unwrap_or_default();
                let active = c[0] + c[1] + c[2];
                periods.push(LifecyclePeriod {
                    period: date_of(index_start(pr, p)).map_or_else(String::new, |d| d.to_string()),
                    new: c[0],
                    returning: c[1],
                    resurrecting: c[2],
                    dormant: c[3],
                    active,
                    quick_ratio: (c[3] > 0).then(|| (c[0] + c[2]) as f64 / c[3] as f64),
                });
            }
        }
    }
    Ok(LifecycleReport {
        period: pr,
        event: spec.event.clone(),
        periods,
    })
}
