//! Inventory: sell-through, 动销率, turnover, days of inventory, slow movers and stock-outs.

use std::collections::BTreeMap;

use chrono::NaiveDate;
use datafusion::arrow::array::Array;
use serde::{Deserialize, Serialize};

use crate::calendar;
use crate::error::{Error, Result};
use crate::query;
use crate::sql::{PAID, floats, ints, local_day, strings};
use crate::storage::workspace::Workspace;

use super::*;

/// What to compute.
#[derive(Debug, Clone, Default)]
pub struct InventorySpec {
    /// First day of the period (default: the first inventory day).
    pub from: Option<NaiveDate>,
    /// Last day of the period, inclusive (default: the last inventory day).
    pub to: Option<NaiveDate>,
    /// A slow mover has stock at the end and more days of inventory than this (or no sales).
    pub slow_days: f64,
}

/// `shoplens inventory` and `GET /api/inventory`: the parameters as the command line and the API
/// take them (same names, same defaults).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, clap::Args, schemars::JsonSchema)]
#[serde(default, deny_unknown_fields)]
pub struct InventoryParams {
    /// First day of the period (default: the first inventory day).
    #[arg(long)]
    pub from: Option<String>,
    /// Last day of the period, inclusive (default: the last inventory day).
    #[arg(long)]
    pub to: Option<String>,
    /// Slow movers: stock left and more days of inventory than this (or no sales).
    #[arg(long, default_value_t = 90.0)]
    pub slow_days: f64,
    /// Table and CSV: at most this many items, most days of inventory first (0 = all).
    #[arg(long, default_value_t = 20)]
    pub limit: usize,
}

impl Default for InventoryParams {
    fn default() -> InventoryParams {
        crate::params::flag_defaults()
    }
}

impl InventoryParams {
    /// The spec.
    pub fn spec(&self) -> Result<InventorySpec> {
        let day = |flag: &str, text: Option<&str>| -> Result<Option<NaiveDate>> {
            text.map(|t| {
                NaiveDate::parse_from_str(t.trim(), "%Y-%m-%d").map_err(|_| {
                    Error::Invalid(format!("--{flag} `{t}` is not a date (2025-05-01)"))
                })
            })
            .transpose()
        };
        Ok(InventorySpec {
            from: day("from", self.from.as_deref())?,
            to: day("to", self.to.as_deref())?,
            slow_days: self.slow_days,
        })
    }
}

/// Inventory figures of one item.
#[derive(Debug, Clone, Serialize, schemars::JsonSchema)]
pub struct InventoryItem {
    /// The item.
    pub item_id: String,
    /// Its name.
    pub name: Option<String>,
    /// Its category.
    pub category: Option<String>,
    /// Units sold on paid orders in the period.
    pub units_sold: i64,
    /// Units on hand at the item's last snapshot on or before the period's last day.
    pub ending_on_hand: Option<i64>,
    /// Units received in the period.
    pub received: i64,
    /// units_sold / (units_sold + ending_on_hand).
    pub sell_through: Option<f64>,
    /// Cost of the units sold (None without cost).
    pub cogs: Option<f64>,
    /// Mean of on_hand × unit cost over the item's snapshots in the period.
    pub average_inventory_value: Option<f64>,
    /// cogs / average_inventory_value.
    pub turnover: Option<f64>,
    /// Period days / turnover.
    pub days_of_inventory: Option<f64>,
    /// Snapshots in the period.
    pub snapshots: i64,
    /// Snapshots with nothing on hand.
    pub stockout_snapshots: i64,
}

/// Inventory for a period.
#[derive(Debug, Clone, Serialize, schemars::JsonSchema)]
pub struct InventoryReport {
    /// First day (YYYY-MM-DD).
    pub from: String,
    /// Last day, inclusive.
    pub to: String,
    /// Days in the period.
    pub days: i64,
    /// SKUs stocked (on hand at some snapshot) or sold in the period.
    pub skus: u64,
    /// Of those, SKUs with a sale.
    pub skus_sold: u64,
    /// 动销率: skus_sold / skus.
    pub sku_sold_share: Option<f64>,
    /// Units sold over units sold plus units on hand at the end, over every item.
    pub sell_through: Option<f64>,
    /// Cost of goods sold (items with costs).
    pub cogs: Option<f64>,
    /// Sum of the items' average inventory values.
    pub average_inventory_value: Option<f64>,
    /// cogs / average inventory value.
    pub turnover: Option<f64>,
    /// Days of inventory = days / turnover.
    pub days_of_inventory: Option<f64>,
    /// Share of item snapshots with nothing on hand.
    pub stockout_rate: Option<f64>,
    /// Items with costs missing (left out of COGS and turnover).
    pub items_without_cost: u64,
    /// Every item, by days of inventory (highest first).
    pub items: Vec<InventoryItem>,
    /// Slow movers: stock at the end and days of inventory above the threshold or no sales.
    pub slow_movers: Vec<String>,
    /// Items that ran out of stock at least once, most stock-out snapshots first.
    pub stockouts: Vec<String>,
}

/// Sell-through, 动销率, turnover, days of inventory, slow movers and stock-outs.
pub async fn inventory(ws: &Workspace, spec: &InventorySpec) -> Result<InventoryReport> {
    let (ctx, manifest) = query::context(ws).await?;
    let tz = calendar::zone(&manifest.settings);
    let epoch = |d: NaiveDate| (d - NaiveDate::default()).num_days();
    let bounds = ctx
        .sql("SELECT count(*), CAST(min(date) AS BIGINT), CAST(max(date) AS BIGINT) FROM inventory")
        .await?
        .collect()
        .await?;
    let first = |c: usize| -> Result<i64> {
        Ok(bounds
            .iter()
            .find(|b| b.num_rows() > 0)
            .map(|b| ints(b.column(c)))
            .transpose()?
            .and_then(|v| v.first().copied())
            .unwrap_or(0))
    };
    let (lo, hi) = match first(0)? {
        n if n > 0 => (first(1)?, first(2)?),
        _ => {
            return Err(Error::Invalid(
                "no inventory rows: ingest inventory snapshots (table `inventory`) first".into(),
            ));
        }
    };
    let day0 = NaiveDate::default();
    let from = spec.from.map_or(lo, epoch);
    let to = spec.to.map_or(hi, epoch);
    if to < from {
        return Err(Error::Invalid("the period ends before it starts".into()));
    }
    let date_of = |d: i64| day0 + chrono::Days::new(d as u64);
    let day = local_day("o.ts", tz.name());
    let sales = format!(
        "SELECT i.item_id, CAST(sum(i.quantity) AS BIGINT), CAST(sum(i.quantity * coalesce(i.unit_cost, p.cost)) AS DOUBLE), \
           CAST(sum(CASE WHEN coalesce(i.unit_cost, p.cost) IS NULL THEN 1 ELSE 0 END) AS BIGINT) \
         FROM order_items i JOIN orders o ON o.order_id = i.order_id LEFT JOIN products p ON p.item_id = i.item_id \
         WHERE o.{PAID} AND i.quantity > 0 AND {day} BETWEEN {from} AND {to} GROUP BY 1"
    );
    let stock = format!(
        "SELECT v.item_id, CAST(v.date AS BIGINT), v.on_hand, coalesce(v.received, 0), \
           CAST(v.on_hand * coalesce(v.unit_cost, p.cost) AS DOUBLE) \
         FROM inventory v LEFT JOIN products p ON p.item_id = v.item_id \
         WHERE CAST(v.date AS BIGINT) <= {to} ORDER BY 1, 2"
    );
    let cat = Catalogue::load(ws).await?;
    #[derive(Default)]
    struct Acc {
        sold: i64,
        cogs: Option<f64>,
        end: Option<i64>,
        received: i64,
        values: Vec<f64>,
        value_missing: bool,
        snaps: i64,
        outs: i64,
        stocked: bool,
    }
    let mut acc: BTreeMap<String, Acc> = BTreeMap::new();
    for b in &ctx.sql(&sales).await?.collect().await? {
        let (id, u, c, nc) = (
            strings(b.column(0))?,
            ints(b.column(1))?,
            floats(b.column(2))?,
            ints(b.column(3))?,
        );
        for i in 0..b.num_rows() {
            let a = acc.entry(id.value(i).to_string()).or_default();
            a.sold = u[i];
            a.cogs = (nc[i] == 0 && !c[i].is_nan()).then_some(c[i]);
        }
    }
    for b in &ctx.sql(&stock).await?.collect().await? {
        let (id, d, oh, rc, val) = (
            strings(b.column(0))?,
            ints(b.column(1))?,
            b.column(2).clone(),
            ints(b.column(3))?,
            floats(b.column(4))?,
        );
        let ohv = ints(&oh)?;
        for i in 0..b.num_rows() {
            if oh.is_null(i) {
                continue;
            }
            let a = acc.entry(id.value(i).to_string()).or_default();
            // Rows arrive by item and date: the last one seen is the period's end.
            a.end = Some(ohv[i]);
            if d[i] >= from {
                a.snaps += 1;
                a.received += rc[i];
                if ohv[i] == 0 {
                    a.outs += 1;
                } else {
                    a.stocked = true;
                }
                if val[i].is_nan() {
                    a.value_missing = true;
                } else {
                    a.values.push(val[i]);
                }
            }
        }
    }
    let days = to - from + 1;
    let mut items = Vec::new();
    let (mut skus, mut skus_sold) = (0u64, 0u64);
    let (mut sold_all, mut end_all) = (0i64, 0i64);
    let (mut cogs_all, mut value_all, mut missing) = (0.0, 0.0, 0u64);
    let (mut snaps_all, mut outs_all) = (0i64, 0i64);
    for (item, a) in acc {
        if !(a.stocked || a.sold > 0) {
            continue;
        }
        skus += 1;
        if a.sold > 0 {
            skus_sold += 1;
        }
        let avg = (!a.value_missing && !a.values.is_empty())
            .then(|| a.values.iter().sum::<f64>() / a.values.len() as f64);
        let cogs = if a.sold == 0 { Some(0.0) } else { a.cogs };
        let turnover = match (cogs, avg) {
            (Some(c), Some(v)) => ratio_f(c, v),
            _ => None,
        };
        match (cogs, avg) {
            (Some(c), Some(v)) => {
                cogs_all += c;
                value_all += v;
            }
            _ => missing += 1,
        }
        sold_all += a.sold;
        end_all += a.end.unwrap_or(0);
        snaps_all += a.snaps;
        outs_all += a.outs;
        let end = a.end;
        items.push(InventoryItem {
            name: cat.name(&item),
            category: cat.category(&item),
            item_id: item,
            units_sold: a.sold,
            ending_on_hand: end,
            received: a.received,
            sell_through: ratio_f(a.sold as f64, (a.sold + end.unwrap_or(0)) as f64),
            cogs,
            average_inventory_value: avg,
            turnover,
            days_of_inventory: turnover.and_then(|t| ratio_f(days as f64, t)),
            snapshots: a.snaps,
            stockout_snapshots: a.outs,
        });
    }
    items.sort_by(|a, b| {
        let d = |x: &InventoryItem| x.days_of_inventory.unwrap_or(f64::INFINITY);
        d(b).total_cmp(&d(a))
            .then_with(|| a.item_id.cmp(&b.item_id))
    });
    let slow_movers = items
        .iter()
        .filter(|i| {
            i.ending_on_hand.unwrap_or(0) > 0
                && (i.units_sold == 0 || i.days_of_inventory.is_some_and(|d| d > spec.slow_days))
        })
        .map(|i| i.item_id.clone())
        .collect();
    let mut outs: Vec<&InventoryItem> = items.iter().filter(|i| i.stockout_snapshots > 0).collect();
    outs.sort_by(|a, b| {
        b.stockout_snapshots
            .cmp(&a.stockout_snapshots)
            .then_with(|| a.item_id.cmp(&b.item_id))
    });
    let stockouts = outs.iter().map(|i| i.item_id.clone()).collect();
    let has_value = value_all > 0.0;
    let turnover = has_value.then(|| cogs_all / value_all);
    Ok(InventoryReport {
        from: date_of(from).to_string(),
        to: date_of(to).to_string(),
        days,
        skus,
        skus_sold,
        sku_sold_share: (skus > 0).then(|| skus_sold as f64 / skus as f64),
        sell_through: ratio_f(sold_all as f64, (sold_all + end_all) as f64),
        cogs: has_value.then_some(cogs_all),
        average_inventory_value: has_value.then_some(value_all),
        turnover,
        days_of_inventory: turnover.and_then(|t| ratio_f(days as f64, t)),
        stockout_rate: (snaps_all > 0).then(|| outs_all as f64 / snaps_all as f64),
        items_without_cost: missing,
        items,
        slow_movers,
        stockouts,
    })
}
