//! Traffic (场): channel quality from visit to repeat purchase, and campaign and promotion return.
//! Definitions: docs/metrics.md, "Channels" and "Campaigns and promotions".
#![allow(
    clippy::needless_range_loop,
    reason = "several columns of one batch are read side by side by row index"
)]

use std::collections::BTreeMap;

use chrono::TimeZone;
use datafusion::arrow::array::Array;
use rustc_hash::FxHashMap;
use serde::{Deserialize, Serialize};

use crate::calendar;
use crate::error::Result;
use crate::people::repurchase::{self, RepurchaseSpec};
use crate::people::sessions;
use crate::query;
use crate::sql::{PAID, floats, in_range, ints, local_day, strings};
use crate::storage::workspace::Workspace;

mod campaigns;
pub use campaigns::*;

/// `shoplens channels` and `GET /api/channels`: the parameters as the command line and the API
/// take them (same names, same defaults).
#[derive(
    Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize, clap::Args, schemars::JsonSchema,
)]
#[serde(default, deny_unknown_fields)]
pub struct ChannelParams {
    /// From this day (or instant) on, in the shop's zone (default: all data).
    #[arg(long)]
    pub from: Option<String>,
    /// Up to this day, inclusive (or an instant, exclusive).
    #[arg(long)]
    pub to: Option<String>,
    /// Print the daily trend instead of the channel table (JSON always has both).
    #[arg(long)]
    pub daily: bool,
}

impl ChannelParams {
    /// The period in the shop's zone `tz`, as of `as_of`.
    pub fn spec(&self, tz: &chrono_tz::Tz, as_of: Option<i64>) -> Result<Period> {
        let (from, to) = crate::calendar::period(tz, self.from.as_deref(), self.to.as_deref())?;
        Ok(Period { from, to, as_of })
    }
}

/// A period [from, to) in instants (µs); None = open.
#[derive(Debug, Clone, Copy, Default)]
pub struct Period {
    /// Start, inclusive.
    pub from: Option<i64>,
    /// End, exclusive.
    pub to: Option<i64>,
    /// Data up to this instant for LTV (default: the newest in the workspace).
    pub as_of: Option<i64>,
}

fn div(a: f64, b: f64) -> Option<f64> {
    (b != 0.0 && a.is_finite() && b.is_finite()).then(|| a / b)
}

fn nz(x: f64) -> f64 {
    if x.is_nan() { 0.0 } else { x }
}

/// Rows of a query, as batches.
async fn batches(
    ws: &Workspace,
    q: &str,
) -> Result<Vec<datafusion::arrow::record_batch::RecordBatch>> {
    Ok(query::sql(ws, q).await?.1)
}

/// Line revenue, cost and lines without cost of paid orders, grouped by a key expression over
/// `o` (orders) — the margin side of channels and campaigns.
fn margin_sql(key: &str, from: &str, filter: &str) -> String {
    format!(
        "SELECT {key}, CAST(sum(i.quantity * i.unit_price - coalesce(i.discount, 0)) AS DOUBLE), \
           CAST(sum(i.quantity * coalesce(i.unit_cost, p.cost)) AS DOUBLE), \
           CAST(sum(CASE WHEN coalesce(i.unit_cost, p.cost) IS NULL THEN 1 ELSE 0 END) AS BIGINT) \
         FROM {from} JOIN order_items i ON i.order_id = o.order_id LEFT JOIN products p ON p.item_id = i.item_id \
         WHERE o.{PAID} AND i.quantity > 0 AND {filter} GROUP BY 1"
    )
}

/// (line revenue, gross margin or None without costs) per key.
async fn margins(ws: &Workspace, q: &str) -> Result<FxHashMap<String, (f64, Option<f64>)>> {
    let mut m = FxHashMap::default();
    for b in &batches(ws, q).await? {
        let (k, rev, cost, nocost) = (
            strings(b.column(0))?,
            floats(b.column(1))?,
            floats(b.column(2))?,
            ints(b.column(3))?,
        );
        for i in 0..b.num_rows() {
            if k.is_valid(i) {
                let margin = (nocost[i] == 0 && !cost[i].is_nan()).then(|| nz(rev[i]) - cost[i]);
                m.insert(k.value(i).to_string(), (nz(rev[i]), margin));
            }
        }
    }
    Ok(m)
}

// ---------------------------------------------------------------------------------------------
// Channels

/// One channel's quality.
#[derive(Debug, Clone, Default, Serialize, schemars::JsonSchema)]
pub struct ChannelRow {
    /// Channel.
    pub channel: String,
    /// Unique visitors (users or anonymous ids) with an event in the channel.
    pub uv: u64,
    /// Page and product views.
    pub pv: u64,
    /// Sessions (session_id, else 30 minutes of inactivity).
    pub sessions: u64,
    /// Visitors who added to cart.
    pub cart_visitors: u64,
    /// Visitors with an order event.
    pub order_visitors: u64,
    /// Orders placed (orders.channel, else the channel of the order's `order` event).
    pub orders: u64,
    /// Of which paid.
    pub paid_orders: u64,
    /// Orders per session.
    pub conversion: Option<f64>,
    /// Visitors who ordered / visitors.
    pub visitor_conversion: Option<f64>,
    /// cart_visitors / uv.
    pub uv_to_cart: Option<f64>,
    /// order_visitors / cart_visitors.
    pub cart_to_order: Option<f64>,
    /// paid_orders / orders.
    pub order_to_paid: Option<f64>,
    /// Net amount of paid orders.
    pub revenue: f64,
    /// revenue / paid_orders.
    pub aov: Option<f64>,
    /// Line revenue − cost of the paid orders; None without costs.
    pub gross_margin: Option<f64>,
    /// Customers acquired by the channel (registered, else first paid, in the period).
    pub new_customers: u64,
    /// Spend in the period (channel_spend).
    pub spend: f64,
    /// spend / new customers.
    pub cac: Option<f64>,
    /// revenue / spend.
    pub roas: Option<f64>,
    /// Share of the channel's new buyers (first purchase in the period) who bought again within 90 days.
    pub repurchase_90d: Option<f64>,
    /// Paid revenue to the as-of date per new customer.
    pub ltv: Option<f64>,
    /// ltv / cac.
    pub ltv_to_cac: Option<f64>,
}

/// One day of one channel.
#[derive(Debug, Clone, Default, Serialize, schemars::JsonSchema)]
pub struct ChannelDay {
    /// Day (shop time).
    pub date: String,
    /// Channel.
    pub channel: String,
    /// Unique visitors.
    pub uv: u64,
    /// Orders placed.
    pub orders: u64,
    /// Net amount of paid orders.
    pub revenue: f64,
    /// Spend.
    pub spend: f64,
}

/// Channels in a period.
#[derive(Debug, Clone, Serialize, schemars::JsonSchema)]
pub struct ChannelReport {
    /// Per channel, by revenue.
    pub channels: Vec<ChannelRow>,
    /// Daily trend.
    pub daily: Vec<ChannelDay>,
    /// Whether margins could be computed (cost data present).
    pub has_costs: bool,
}

/// Channel quality: traffic, stage conversion, AOV, revenue, margin, new customers, CAC, ROAS,
/// 90-day repurchase and LTV/CAC, with a daily trend.
pub async fn channels(ws: &Workspace, p: &Period) -> Result<ChannelReport> {
    let manifest = ws.manifest()?;
    let tz = calendar::zone(&manifest.settings);
    let z = tz.name();
    let as_of = query::as_of_or_newest(ws, p.as_of, "no data").await.ok();
    let ev_range = in_range("ts", p.from, p.to);
    let inner = format!(
        "SELECT coalesce(user_id, anonymous_id, '') AS person, ts, session_id, event, channel FROM events WHERE {ev_range}"
    );
    let split = {
        let (ctx, _) = query::context(ws).await?;
        sessions::need_split(&ctx).await?
    };
    let mut rows: BTreeMap<String, ChannelRow> = BTreeMap::new();
    let mut daily: BTreeMap<(i64, String), ChannelDay> = BTreeMap::new();
    let ev = format!(
        "SELECT channel, CAST(count(DISTINCT person) AS BIGINT), \
           CAST(sum(CASE WHEN event IN ('page_view', 'product_view') THEN 1 ELSE 0 END) AS BIGINT), \
           CAST(count(DISTINCT unit) AS BIGINT), \
           CAST(count(DISTINCT CASE WHEN event = 'add_to_cart' THEN person END) AS BIGINT), \
           CAST(count(DISTINCT CASE WHEN event = 'order' THEN person END) AS BIGINT) \
         FROM ({}) WHERE channel IS NOT NULL GROUP BY 1",
        sessions::with_units(&inner, split, sessions::GAP_US)
    );
    for b in &batches(ws, &ev).await? {
        let ch = strings(b.column(0))?;
        let v: Vec<Vec<i64>> = (1..6).map(|c| ints(b.column(c))).collect::<Result<_>>()?;
        for i in 0..b.num_rows() {
            let r = rows.entry(ch.value(i).to_string()).or_default();
            r.uv = v[0][i] as u64;
            r.pv = v[1][i] as u64;
            r.sessions = v[2][i] as u64;
            r.cart_visitors = v[3][i] as u64;
            r.order_visitors = v[4][i] as u64;
        }
    }
    let day = local_day("ts", z);
    let dq = format!(
        "SELECT {day}, channel, CAST(count(DISTINCT coalesce(user_id, anonymous_id, '')) AS BIGINT) FROM events \
         WHERE channel IS NOT NULL AND {ev_range} GROUP BY 1, 2"
    );
    for b in &batches(ws, &dq).await? {
        let (d, ch, uv) = (
            ints(b.column(0))?,
            strings(b.column(1))?,
            ints(b.column(2))?,
        );
        for i in 0..b.num_rows() {
            daily.entry((d[i], ch.value(i).to_string())).or_default().uv = uv[i] as u64;
        }
    }
    // Orders by their channel, else their order event's.
    let o_range = in_range("o.ts", p.from, p.to);
    let chan = "coalesce(o.channel, e.channel)";
    let from = "orders o LEFT JOIN (SELECT order_id, max(channel) AS channel FROM events \
                WHERE order_id IS NOT NULL AND channel IS NOT NULL GROUP BY order_id) e ON e.order_id = o.order_id";
    let oday = local_day("o.ts", z);
    let oq = format!(
        "SELECT {oday}, {chan}, CAST(count(*) AS BIGINT), CAST(sum(CASE WHEN o.{PAID} THEN 1 ELSE 0 END) AS BIGINT), \
           CAST(sum(CASE WHEN o.{PAID} THEN o.net_amount END) AS DOUBLE) \
         FROM {from} WHERE {o_range} AND {chan} IS NOT NULL GROUP BY 1, 2"
    );
    for b in &batches(ws, &oq).await? {
        let (d, ch, n, paid, rev) = (
            ints(b.column(0))?,
            strings(b.column(1))?,
            ints(b.column(2))?,
            ints(b.column(3))?,
            floats(b.column(4))?,
        );
        for i in 0..b.num_rows() {
            let c = ch.value(i).to_string();
            let r = rows.entry(c.clone()).or_default();
            r.orders += n[i] as u64;
            r.paid_orders += paid[i] as u64;
            let dd = daily.entry((d[i], c)).or_default();
            dd.orders = n[i] as u64;
            dd.revenue = nz(rev[i]);
        }
    }
    let m = margins(ws, &margin_sql(chan, from, &o_range)).await?;
    let has_costs = m.values().any(|x| x.1.is_some());
    // Spend per local day.
    let day_of = |t: i64| -> i64 {
        tz.timestamp_micros(t)
            .single()
            .map_or(t.div_euclid(86_400_000_000), |d| {
                (d.date_naive() - chrono::NaiveDate::default()).num_days()
            })
    };
    let mut sr = Vec::new();
    if let Some(f) = p.from {
        sr.push(format!("CAST(date AS BIGINT) >= {}", day_of(f)));
    }
    if let Some(t) = p.to {
        // `to` is exclusive: a midnight excludes its day.
        sr.push(format!("CAST(date AS BIGINT) <= {}", day_of(t - 1)));
    }
    let sr = if sr.is_empty() {
        "TRUE".to_string()
    } else {
        sr.join(" AND ")
    };
    let sq = format!(
        "SELECT CAST(date AS BIGINT), channel, CAST(sum(spend) AS DOUBLE) FROM channel_spend WHERE {sr} GROUP BY 1, 2"
    );
    for b in &batches(ws, &sq).await? {
        let (d, ch, s) = (
            ints(b.column(0))?,
            strings(b.column(1))?,
            floats(b.column(2))?,
        );
        for i in 0..b.num_rows() {
            let c = ch.value(i).to_string();
            rows.entry(c.clone()).or_default();
            daily.entry((d[i], c)).or_default().spend = nz(s[i]);
        }
    }
    // Revenue and spend totals from the per-day figures in (day, channel) order: added in the
    // order partitions return their batches, float sums would change in the last digits from
    // one run to the next.
    for ((_, c), dd) in &daily {
        if let Some(r) = rows.get_mut(c) {
            r.revenue += dd.revenue;
            r.spend += dd.spend;
        }
    }
    // New customers and their revenue to the as-of date.
    let asof = as_of.map_or("TRUE".into(), |a| {
        format!("o.ts <= {}", crate::sql::ts_literal(a))
    });
    let acq = in_range("coalesce(c.registered_at, f.first_paid)", p.from, p.to);
    let nq = format!(
        "WITH f AS (SELECT user_id, min(ts) AS first_paid FROM orders WHERE {PAID} AND user_id IS NOT NULL GROUP BY user_id), \
         n AS (SELECT c.user_id, c.acquisition_channel AS ch FROM customers c LEFT JOIN f ON f.user_id = c.user_id \
               WHERE c.acquisition_channel IS NOT NULL AND {acq}) \
         SELECT n.ch, CAST(count(DISTINCT n.user_id) AS BIGINT), CAST(sum(o.net_amount) AS DOUBLE) \
         FROM n LEFT JOIN orders o ON o.user_id = n.user_id AND o.{PAID} AND {asof} GROUP BY 1"
    );
    let mut ltv_rev: FxHashMap<String, f64> = FxHashMap::default();
    for b in &batches(ws, &nq).await? {
        let (ch, n, rev) = (
            strings(b.column(0))?,
            ints(b.column(1))?,
            floats(b.column(2))?,
        );
        for i in 0..b.num_rows() {
            let c = ch.value(i).to_string();
            rows.entry(c.clone()).or_default().new_customers = n[i] as u64;
            ltv_rev.insert(c, nz(rev[i]));
        }
    }
    let mut rp = RepurchaseSpec::new(90);
    (rp.from, rp.to, rp.as_of) = (p.from, p.to, p.as_of);
    let repurchase = repurchase::repurchase(ws, &rp).await.ok();
    let mut channels: Vec<ChannelRow> = rows
        .into_iter()
        .map(|(c, mut r)| {
            r.channel = c.clone();
            let f = |a: u64, b: u64| div(a as f64, b as f64);
            r.conversion = f(r.orders, r.sessions);
            r.visitor_conversion = f(r.order_visitors, r.uv);
            r.uv_to_cart = f(r.cart_visitors, r.uv);
            r.cart_to_order = f(r.order_visitors, r.cart_visitors);
            r.order_to_paid = f(r.paid_orders, r.orders);
            r.aov = div(r.revenue, r.paid_orders as f64);
            r.gross_margin = m.get(&c).and_then(|x| x.1);
            r.cac = if r.spend > 0.0 {
                div(r.spend, r.new_customers as f64)
            } else {
                None
            };
            r.roas = div(r.revenue, r.spend);
            r.repurchase_90d = repurchase.as_ref().and_then(|rep| {
                rep.by_acquisition_channel
                    .iter()
                    .find(|g| g.value.as_deref() == Some(c.as_str()))
                    .and_then(|g| g.rate)
            });
            r.ltv = ltv_rev
                .get(&c)
                .and_then(|v| div(*v, r.new_customers as f64));
            r.ltv_to_cac = match (r.ltv, r.cac) {
                (Some(l), Some(c)) => div(l, c),
                _ => None,
            };
            r
        })
        .collect();
    channels.sort_by(|a, b| {
        b.revenue
            .total_cmp(&a.revenue)
            .then_with(|| a.channel.cmp(&b.channel))
    });
    let day0 = chrono::NaiveDate::default();
    let daily = daily
        .into_iter()
        .map(|((d, c), mut r)| {
            r.date = (day0 + chrono::Days::new(d.max(0) as u64)).to_string();
            r.channel = c;
            r
        })
        .collect();
    Ok(ChannelReport {
        channels,
        daily,
        has_costs,
    })
}
