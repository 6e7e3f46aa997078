//! Cohorts: customers grouped by the week or month of their first purchase (or registration);
//! retention by period (active in period k, and active in k or later) and revenue per member by
//! period and cumulative (the LTV curve). Definitions: docs/metrics.md, "Cohorts".

use std::collections::{BTreeMap, HashMap, HashSet};

use chrono::{Datelike, NaiveDate};
use serde::Serialize;
use shoplens_models::stats::ratio;

use crate::calendar;
use crate::error::Result;
use crate::query;
use crate::sql::{PAID, floats, ints, local, texts, ts_literal};
use crate::workspace::Workspace;

/// Cohort and activity period.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, Serialize)]
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

/// What puts a customer in a cohort.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum Basis {
    /// The period of the first paid order.
    #[default]
    FirstPurchase,
    /// The period of customers.registered_at.
    Registration,
}

/// What makes a member active in a period.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum Activity {
    /// A paid order in the period.
    #[default]
    Orders,
    /// Any event in the period.
    Events,
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
#[derive(Debug, Clone, PartialEq, Serialize)]
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
#[derive(Debug, Clone, PartialEq, Serialize)]
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
#[derive(Debug, Clone, PartialEq, Serialize)]
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
#[derive(Debug, Clone, PartialEq, Serialize)]
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

/// Start (days since 1970) of the period holding day `d`.
pub(crate) fn period_start(p: Period, d: i64) -> i64 {
    match p {
        Period::Day => d,
        // 1970-01-01 was a Thursday: Monday-based weeks.
        Period::Week => d - (d + 3).rem_euclid(7),
        Period::Month => date_of(d).and_then(|x| x.with_day(1)).map_or(d, day_number),
    }
}

/// Periods between two period starts.
pub(crate) fn periods_between(p: Period, a: i64, b: i64) -> i64 {
    match p {
        Period::Day => b - a,
        Period::Week => (b - a) / 7,
        Period::Month => match (date_of(a), date_of(b)) {
            (Some(x), Some(y)) => {
                i64::from(y.year() - x.year()) * 12 + i64::from(y.month()) - i64::from(x.month())
            }
            _ => 0,
        },
    }
}

/// Start of the period k periods after `start`.
fn nth_period(p: Period, start: i64, k: i64) -> i64 {
    match p {
        Period::Day => start + k,
        Period::Week => start + 7 * k,
        Period::Month => date_of(start)
            .and_then(|x| x.checked_add_months(chrono::Months::new(k as u32)))
            .map_or(start, day_number),
    }
}

struct Member {
    cohort: i64,
    channel: Option<String>,
}

/// Computes the cohort report.
pub async fn cohorts(ws: &Workspace, spec: &CohortSpec) -> Result<CohortReport> {
    let (ctx, manifest) = query::context(ws).await?;
    let tz = calendar::zone(&manifest.settings);
    let as_of = match spec.as_of {
        Some(a) => Some(a),
        None => query::newest_instant(ws).await?,
    };
    let cap_on = |col: &str| {
        as_of.map_or(String::new(), |a| {
            format!(" AND {col} <= {}", ts_literal(a))
        })
    };
    let cap = cap_on("ts");
    let day = |col: &str| format!("CAST(CAST({} AS DATE) AS INT)", local(col, tz.name()));
    // Members and their cohort day.
    let q = match spec.basis {
        Basis::FirstPurchase => format!(
            "SELECT o.user_id, min({}) AS d, min(c.acquisition_channel) AS ch FROM orders o \
             LEFT JOIN customers c ON c.user_id = o.user_id \
             WHERE {PAID} AND o.user_id IS NOT NULL AND o.ts IS NOT NULL{} GROUP BY o.user_id",
            day("o.ts"),
            cap_on("o.ts")
        ),
        Basis::Registration => format!(
            "SELECT user_id, {} AS d, acquisition_channel AS ch FROM customers WHERE registered_at IS NOT NULL{}",
            day("registered_at"),
            cap_on("registered_at")
        ),
    };
    let from_day = spec.from.map(|f| instant_day(f, &tz));
    let to_day = spec.to.map(|t| instant_day(t - 1, &tz));
    let mut members: HashMap<String, Member> = HashMap::new();
    for b in ctx.sql(&q).await?.collect().await? {
        let (u, d, ch) = (texts(b.column(0))?, ints(b.column(1))?, texts(b.column(2))?);
        for ((u, d), ch) in u.into_iter().zip(d).zip(ch) {
            let Some(u) = u else { continue };
            let start = period_start(spec.period, d);
            if from_day.is_some_and(|f| start < period_start(spec.period, f))
                || to_day.is_some_and(|t| start > period_start(spec.period, t))
            {
                continue;
            }
            members.insert(
                u,
                Member {
                    cohort: start,
                    channel: ch,
                },
            );
        }
    }
    // Revenue (and order activity) per member and day.
    let q = format!(
        "SELECT user_id, {} AS d, sum(CAST(net_amount AS DOUBLE)) AS rev FROM orders \
         WHERE {PAID} AND user_id IS NOT NULL AND ts IS NOT NULL{cap} GROUP BY 1, 2",
        day("ts")
    );
    let mut revenue: HashMap<(&str, i64), f64> = HashMap::new();
    let mut active: HashSet<(&str, i64)> = HashSet::new();
    let batches = ctx.sql(&q).await?.collect().await?;
    let mut rows = Vec::new();
    for b in &batches {
        let (u, d, r) = (
            texts(b.column(0))?,
            ints(b.column(1))?,
            floats(b.column(2))?,
        );
        rows.extend(u.into_iter().zip(d).zip(r));
    }
    for ((u, d), r) in &rows {
        let Some(u) = u else { continue };
        let Some((key, m)) = members.get_key_value(u) else {
            continue;
        };
        let k = periods_between(spec.period, m.cohort, period_start(spec.period, *d));
        if k < 0 {
            continue;
        }
        *revenue.entry((key.as_str(), k)).or_default() += if r.is_nan() { 0.0 } else { *r };
        if spec.activity == Activity::Orders {
            active.insert((key.as_str(), k));
        }
    }
    let mut event_days = Vec::new();
    if spec.activity == Activity::Events {
        let q = format!(
            "SELECT DISTINCT user_id, {} AS d FROM events WHERE user_id IS NOT NULL{cap}",
            day("ts")
        );
        for b in ctx.sql(&q).await?.collect().await? {
            let (u, d) = (texts(b.column(0))?, ints(b.column(1))?);
            event_days.extend(u.into_iter().zip(d));
        }
        for (u, d) in &event_days {
            let Some(u) = u else { continue };
            if let Some((key, m)) = members.get_key_value(u) {
                let k = periods_between(spec.period, m.cohort, period_start(spec.period, *d));
                if k >= 0 {
                    active.insert((key.as_str(), k));
                }
            }
        }
    }
    let last_day = as_of.map(|a| instant_day(a, &tz));
    let build = |channel: Option<&Option<String>>| -> Vec<CohortRow> {
        let mut by: BTreeMap<i64, Vec<&str>> = BTreeMap::new();
        for (u, m) in &members {
            if channel.is_none_or(|c| *c == m.channel) {
                by.entry(m.cohort).or_default().push(u.as_str());
            }
        }
        by.into_iter()
            .map(|(start, us)| {
                row(
                    spec.period,
                    start,
                    &us,
                    &active,
                    &revenue,
                    last_day,
                    channel,
                )
            })
            .collect()
    };
    let overall = build(None);
    let average = average(&overall);
    let mut by_channel = Vec::new();
    if spec.by_channel {
        let channels: std::collections::BTreeSet<Option<String>> =
            members.values().map(|m| m.channel.clone()).collect();
        for c in &channels {
            by_channel.extend(build(Some(c)));
        }
    }
    Ok(CohortReport {
        period: spec.period,
        basis: spec.basis,
        activity: spec.activity,
        cohorts: overall,
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

#[allow(clippy::too_many_arguments)]
fn row(
    period: Period,
    start: i64,
    users: &[&str],
    active: &HashSet<(&str, i64)>,
    revenue: &HashMap<(&str, i64), f64>,
    last_day: Option<i64>,
    channel: Option<&Option<String>>,
) -> CohortRow {
    let size = users.len() as u64;
    let last_k = last_day.map_or(0, |l| {
        periods_between(period, start, period_start(period, l)).max(0)
    });
    let n = last_k as usize + 1;
    let mut act = vec![0u64; n];
    let mut later = vec![0u64; n];
    let mut rev = vec![0f64; n];
    for u in users {
        let mut last_active: Option<usize> = None;
        for k in 0..n {
            if active.contains(&(*u, k as i64)) {
                act[k] += 1;
                last_active = Some(k);
            }
            rev[k] += revenue.get(&(*u, k as i64)).copied().unwrap_or(0.0);
        }
        if let Some(l) = last_active {
            for x in later.iter_mut().take(l + 1) {
                *x += 1;
            }
        }
    }
    let mut cum = 0.0;
    let periods = (0..n)
        .map(|k| {
            cum += rev[k];
            let end = nth_period(period, start, k as i64 + 1) - 1;
            CohortCell {
                k: k as u32,
                active: act[k],
                rate: ratio(act[k], size),
                active_or_later: later[k],
                rate_or_later: ratio(later[k], size),
                revenue: rev[k],
                revenue_per_member: (size > 0).then(|| rev[k] / size as f64),
                cumulative_revenue_per_member: (size > 0).then(|| cum / size as f64),
                partial: last_day.is_some_and(|l| end > l),
            }
        })
        .collect();
    CohortRow {
        cohort: date_of(start).map_or_else(String::new, |d| d.to_string()),
        channel: channel.cloned().flatten(),
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
        // 2025-03-05 is a Wednesday: its week starts Monday 2025-03-03.
        assert_eq!(period_start(Period::Week, d("2025-03-05")), d("2025-03-03"));
        assert_eq!(period_start(Period::Week, d("2025-03-03")), d("2025-03-03"));
        assert_eq!(period_start(Period::Week, d("2025-03-09")), d("2025-03-03"));
        assert_eq!(
            period_start(Period::Month, d("2025-03-31")),
            d("2025-03-01")
        );
        assert_eq!(
            periods_between(Period::Month, d("2024-11-01"), d("2025-02-01")),
            3
        );
        assert_eq!(
            periods_between(Period::Week, d("2025-03-03"), d("2025-03-17")),
            2
        );
        assert_eq!(
            nth_period(Period::Month, d("2025-01-01"), 2),
            d("2025-03-01")
        );
    }
}
