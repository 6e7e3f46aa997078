//! Activity: events, orders and revenue by hour of day × weekday in the shop's zone, overall and
//! per category; peak hours per category; DAU, WAU, MAU and stickiness.
//! Definitions: docs/metrics.md, "Activity".

use std::collections::BTreeMap;

use datafusion::arrow::array::{Array, AsArray};

use serde::{Deserialize, Serialize};
use shoplens_models::stats::ratio;

use crate::calendar;
use crate::error::Result;
use crate::people::sessions::PERSON;
use crate::query;
use crate::sql::{PAID, floats, ints, local_day, local_hour, local_weekday, texts, ts_literal};
use crate::storage::workspace::Workspace;

/// What to compute.
#[derive(Debug, Clone, PartialEq, Default)]
pub struct ActivitySpec {
    /// Events and orders at or after this instant (µs), if set.
    pub from: Option<i64>,
    /// Before this instant (µs), if set.
    pub to: Option<i64>,
    /// Heat maps for at most this many categories (the most active); 0 = none.
    pub categories: usize,
}

/// `shoplens activity` and `GET /api/activity`: the parameters as the command line and the API
/// take them (same names, same defaults).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, clap::Args, schemars::JsonSchema)]
#[serde(default, deny_unknown_fields)]
pub struct ActivityParams {
    /// First day (or instant) counted, in the shop's zone (default: all data).
    #[arg(long)]
    pub from: Option<String>,
    /// Last day counted, inclusive (or an instant, exclusive; default: the as-of instant).
    #[arg(long)]
    pub to: Option<String>,
    /// Hour × weekday maps for at most this many categories (the most active).
    #[arg(long, default_value_t = 10)]
    pub categories: usize,
}

impl Default for ActivityParams {
    fn default() -> ActivityParams {
        crate::params::flag_defaults()
    }
}

impl ActivityParams {
    /// The spec in the shop's zone `tz`, as of `as_of`.
    pub fn spec(&self, tz: &chrono_tz::Tz, as_of: Option<i64>) -> Result<ActivitySpec> {
        let (from, to) =
            calendar::events_period(tz, self.from.as_deref(), self.to.as_deref(), as_of)?;
        Ok(ActivitySpec {
            from,
            to,
            categories: self.categories,
        })
    }
}

/// One cell of an hour × weekday heat map.
#[derive(Debug, Clone, PartialEq, Serialize, schemars::JsonSchema)]
pub struct Cell {
    /// ISO weekday, 1 = Monday … 7 = Sunday, in the shop's zone.
    pub weekday: u8,
    /// Hour of day 0–23 in the shop's zone.
    pub hour: u8,
    /// Events.
    pub events: u64,
    /// Paid orders (per category: paid orders with a line in it).
    pub orders: u64,
    /// Revenue: net amount of paid orders (per category: line revenue).
    pub revenue: f64,
}

/// A category's activity.
#[derive(Debug, Clone, PartialEq, Serialize, schemars::JsonSchema)]
pub struct CategoryActivity {
    /// The category.
    pub category: String,
    /// Events in it.
    pub events: u64,
    /// Paid orders with a line in it.
    pub orders: u64,
    /// Line revenue (quantity × unit price − line discount) of those lines.
    pub revenue: f64,
    /// The three hours with most orders (by events when the category has no orders), busiest first.
    pub peak_hours: Vec<u8>,
    /// What `peak_hours` counts: `orders` or `events`.
    pub peak_by: &'static str,
    /// 168 cells.
    pub heatmap: Vec<Cell>,
}

/// Active users of one day.
#[derive(Debug, Clone, PartialEq, Serialize, schemars::JsonSchema)]
pub struct DayActive {
    /// The day in the shop's zone.
    pub date: String,
    /// Distinct persons with an event that day.
    pub dau: u64,
    /// … in the 7 days ending that day.
    pub wau: u64,
    /// … in the 30 days ending that day.
    pub mau: u64,
}

/// The activity report.
#[derive(Debug, Clone, PartialEq, Serialize, schemars::JsonSchema)]
pub struct ActivityReport {
    /// 168 cells over all events and paid orders.
    pub heatmap: Vec<Cell>,
    /// The three busiest hours by events, busiest first.
    pub peak_event_hours: Vec<u8>,
    /// The three busiest hours by paid orders.
    pub peak_order_hours: Vec<u8>,
    /// Per category (all of them, most events first); heat maps for the first `categories`.
    pub categories: Vec<CategoryActivity>,
    /// Mean DAU over the days of the period.
    pub dau: Option<f64>,
    /// Mean WAU over days with 7 days of history in the period.
    pub wau: Option<f64>,
    /// Mean MAU over days with 30 days of history in the period.
    pub mau: Option<f64>,
    /// Mean of DAU/MAU over days with 30 days of history.
    pub stickiness: Option<f64>,
    /// Per day.
    pub daily: Vec<DayActive>,
}

fn cells() -> Vec<Cell> {
    (1..=7u8)
        .flat_map(|d| {
            (0..24u8).map(move |h| Cell {
                weekday: d,
                hour: h,
                events: 0,
                orders: 0,
                revenue: 0.0,
            })
        })
        .collect()
}

fn idx(weekday: i64, hour: i64) -> Option<usize> {
    ((1..=7).contains(&weekday) && (0..24).contains(&hour))
        .then(|| (weekday as usize - 1) * 24 + hour as usize)
}

/// Top three hours by a measure over a heat map (ties: earlier hour).
fn peaks(map: &[Cell], measure: impl Fn(&Cell) -> f64) -> Vec<u8> {
    let mut by_hour = [0f64; 24];
    for c in map {
        by_hour[c.hour as usize] += measure(c);
    }
    let mut hours: Vec<u8> = (0..24).collect();
    hours.sort_by(|a, b| {
        by_hour[*b as usize]
            .total_cmp(&by_hour[*a as usize])
            .then(a.cmp(b))
    });
    hours
        .into_iter()
        .filter(|h| by_hour[*h as usize] > 0.0)
        .take(3)
        .collect()
}

/// Computes the activity report.
pub async fn activity(ws: &Workspace, spec: &ActivitySpec) -> Result<ActivityReport> {
    let (ctx, manifest) = query::context(ws).await?;
    let tz = calendar::zone(&manifest.settings);
    let wd = local_weekday("ts", tz.name());
    let hr = local_hour("ts", tz.name());
    let day = local_day("ts", tz.name());
    let mut range = vec!["ts IS NOT NULL".to_string()];
    if let Some(f) = spec.from {
        range.push(format!("ts >= {}", ts_literal(f)));
    }
    if let Some(t) = spec.to {
        range.push(format!("ts < {}", ts_literal(t)));
    }
    let range = range.join(" AND ");

    // Events by category × weekday × hour (null category = the shop-wide remainder).
    let mut heat = cells();
    let mut cat_heat: BTreeMap<String, Vec<Cell>> = BTreeMap::new();
    let q = format!(
        "SELECT category, {wd} AS wd, {hr} AS hr, count(*) AS n FROM events WHERE {range} GROUP BY 1, 2, 3"
    );
    for b in ctx.sql(&q).await?.collect().await? {
        let (c, d, h, n) = (
            texts(b.column(0))?,
            ints(b.column(1))?,
            ints(b.column(2))?,
            ints(b.column(3))?,
        );
        for i in 0..n.len() {
            let Some(k) = idx(d[i], h[i]) else { continue };
            heat[k].events += n[i] as u64;
            if let Some(c) = &c[i] {
                cat_heat.entry(c.clone()).or_insert_with(cells)[k].events += n[i] as u64;
            }
        }
    }
    // Paid orders and their net amount.
    let q = format!(
        "SELECT {wd} AS wd, {hr} AS hr, count(*) AS n, sum(net_amount) AS rev \
         FROM orders WHERE {PAID} AND {range} GROUP BY 1, 2"
    );
    for b in ctx.sql(&q).await?.collect().await? {
        let (d, h, n, r) = (
            ints(b.column(0))?,
            ints(b.column(1))?,
            ints(b.column(2))?,
            floats(b.column(3))?,
        );
        for i in 0..n.len() {
            if let Some(k) = idx(d[i], h[i]) {
                heat[k].orders += n[i] as u64;
                heat[k].revenue += if r[i].is_nan() { 0.0 } else { r[i] };
            }
        }
    }
    // Per category: paid orders with a line in it and line revenue.
    let q = format!(
        "SELECT p.category, {wd} AS wd, {hr} AS hr, count(DISTINCT o.order_id) AS n, \
         sum(CAST(i.quantity AS DECIMAL(18, 0)) * i.unit_price - COALESCE(i.discount, CAST(0 AS DECIMAL(18, 4)))) AS rev \
         FROM (SELECT order_id, ts FROM orders WHERE {PAID} AND {range}) o \
         JOIN order_items i ON i.order_id = o.order_id JOIN products p ON p.item_id = i.item_id \
         WHERE p.category IS NOT NULL GROUP BY 1, 2, 3"
    );
    for b in ctx.sql(&q).await?.collect().await? {
        let (c, d, h, n, r) = (
            texts(b.column(0))?,
            ints(b.column(1))?,
            ints(b.column(2))?,
            ints(b.column(3))?,
            floats(b.column(4))?,
        );
        for i in 0..n.len() {
            let (Some(k), Some(c)) = (idx(d[i], h[i]), &c[i]) else {
                continue;
            };
            let cell = &mut cat_heat.entry(c.clone()).or_insert_with(cells)[k];
            cell.orders += n[i] as u64;
            cell.revenue += if r[i].is_nan() { 0.0 } else { r[i] };
        }
    }
    let mut categories: Vec<CategoryActivity> = cat_heat
        .into_iter()
        .map(|(category, map)| {
            let orders: u64 = map.iter().map(|c| c.orders).sum();
            let (peak_hours, peak_by) = if orders > 0 {
                (peaks(&map, |c| c.orders as f64), "orders")
            } else {
                (peaks(&map, |c| c.events as f64), "events")
            };
            CategoryActivity {
                category,
                events: map.iter().map(|c| c.events).sum(),
                orders,
                revenue: map.iter().map(|c| c.revenue).sum(),
                peak_hours,
                peak_by,
                heatmap: map,
            }
        })
        .collect();
    categories.sort_by(|a, b| {
        b.events
            .cmp(&a.events)
            .then(b.orders.cmp(&a.orders))
            .then_with(|| a.category.cmp(&b.category))
    });
    for c in categories.iter_mut().skip(spec.categories) {
        c.heatmap.clear();
    }

    // Each person's active days (one list per person, not one row per person-day).
    let q = format!(
        "SELECT array_agg(d) FROM (SELECT DISTINCT {PERSON} AS p, {day} AS d \
         FROM events WHERE {range} AND {PERSON} IS NOT NULL) GROUP BY p"
    );
    let mut days: Vec<Vec<i64>> = Vec::new();
    for b in ctx.sql(&q).await?.collect().await? {
        let Some(lists) = b.column(0).as_list_opt::<i32>() else {
            return Err(crate::Error::Internal(
                "activity: days are not lists".into(),
            ));
        };
        for i in 0..lists.len() {
            days.push(ints(&lists.value(i))?);
        }
    }
    let (daily, dau, wau, mau, stickiness) = active_users(days);
    Ok(ActivityReport {
        peak_event_hours: peaks(&heat, |c| c.events as f64),
        peak_order_hours: peaks(&heat, |c| c.orders as f64),
        heatmap: heat,
        categories,
        dau,
        wau,
        mau,
        stickiness,
        daily,
    })
}

type Active = (
    Vec<DayActive>,
    Option<f64>,
    Option<f64>,
    Option<f64>,
    Option<f64>,
);

/// Rolling distinct actives from each person's active day numbers (days since 1970): a person
/// counts on day d of a w-day window when active on some day in [d − w + 1, d].
fn active_users(persons: Vec<Vec<i64>>) -> Active {
    let (Some(lo), Some(hi)) = (
        persons.iter().flatten().min().copied(),
        persons.iter().flatten().max().copied(),
    ) else {
        return (Vec::new(), None, None, None, None);
    };
    let span = (hi - lo + 1) as usize;
    let mut counts = [
        vec![0i64; span + 1],
        vec![0i64; span + 1],
        vec![0i64; span + 1],
    ];
    for mut ds in persons {
        ds.sort_unstable();
        ds.dedup();
        for (w, diff) in [1i64, 7, 30].iter().zip(counts.iter_mut()) {
            // Union of [a, a + w − 1] over active days, clipped to the period.
            let mut cur: Option<(i64, i64)> = None;
            for &a in &ds {
                let (s, e) = (a, (a + w - 1).min(hi));
                match cur {
                    Some((cs, ce)) if s <= ce + 1 => cur = Some((cs, ce.max(e))),
                    _ => {
                        if let Some((cs, ce)) = cur {
                            diff[(cs - lo) as usize] += 1;
                            diff[(ce - lo + 1) as usize] -= 1;
                        }
                        cur = Some((s, e));
                    }
                }
            }
            if let Some((cs, ce)) = cur {
                diff[(cs - lo) as usize] += 1;
                diff[(ce - lo + 1) as usize] -= 1;
            }
        }
    }
    let run = |d: &[i64]| -> Vec<u64> {
        let mut acc = 0i64;
        d[..span]
            .iter()
            .map(|x| {
                acc += x;
                acc as u64
            })
            .collect()
    };
    let (dau, wau, mau) = (run(&counts[0]), run(&counts[1]), run(&counts[2]));
    let mean = |v: &[u64], skip: usize| -> Option<f64> {
        let v = v.get(skip..)?;
        (!v.is_empty()).then(|| v.iter().sum::<u64>() as f64 / v.len() as f64)
    };
    let sticky: Vec<f64> = (29..span).filter_map(|i| ratio(dau[i], mau[i])).collect();
    let stickiness = (!sticky.is_empty()).then(|| sticky.iter().sum::<f64>() / sticky.len() as f64);
    let daily = (0..span)
        .map(|i| DayActive {
            date: chrono::NaiveDate::from_num_days_from_ce_opt((lo + i as i64 + 719_163) as i32)
                .map_or_else(String::new, |d| d.to_string()),
            dau: dau[i],
            wau: wau[i],
            mau: mau[i],
        })
        .collect();
    (
        daily,
        mean(&dau, 0),
        mean(&wau, 6),
        mean(&mau, 29),
        stickiness,
    )
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn rolling_actives_by_hand() {
        // Days 0..=9: p1 active days 0 and 5, p2 day 9.
        let (daily, dau, wau, _, _) = active_users(vec![vec![100, 105], vec![109]]);
        let d: Vec<u64> = daily.iter().map(|x| x.dau).collect();
        assert_eq!(d, vec![1, 0, 0, 0, 0, 1, 0, 0, 0, 1]);
        let w: Vec<u64> = daily.iter().map(|x| x.wau).collect();
        // p1 counts on days 0–11 (clipped to 9), p2 on day 9.
        assert_eq!(w, vec![1, 1, 1, 1, 1, 1, 1, 1, 1, 2]);
        assert_eq!(dau, Some(0.3));
        // WAU averaged over days 6..=9.
        assert_eq!(wau, Some(1.25));
        assert_eq!(daily[0].date, "1970-04-11");
    }
}
