//! The product matrix: units, revenue, discounts, cost and margin per item and category, in sales × margin quadrants with actions.

use std::collections::BTreeMap;

use rustc_hash::FxHashMap;
use serde::{Deserialize, Serialize};

use crate::calendar;
use crate::error::Result;
use crate::query;
use crate::sql::{PAID, floats, in_range, ints, strings};
use crate::storage::workspace::Workspace;

use super::*;

/// The sales measure of the quadrants.
#[derive(
    Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize, clap::ValueEnum, schemars::JsonSchema,
)]
#[serde(rename_all = "snake_case")]
pub enum SalesMeasure {
    /// Units sold.
    Units,
    /// Revenue (after line discounts).
    Revenue,
}

/// A quadrant of the sales × margin matrix.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, schemars::JsonSchema)]
#[serde(rename_all = "snake_case")]
pub enum Quadrant {
    /// High sales, high margin rate.
    Star,
    /// High sales, low margin rate (爆款引流款).
    TrafficDriver,
    /// Low sales, high margin rate (利润贡献款).
    ProfitContributor,
    /// Low sales, low margin rate.
    Question,
}

impl Quadrant {
    /// Name in English.
    pub fn name(self) -> &'static str {
        match self {
            Quadrant::Star => "Star",
            Quadrant::TrafficDriver => "Traffic driver",
            Quadrant::ProfitContributor => "Profit contributor",
            Quadrant::Question => "Question",
        }
    }

    /// Name in 简体中文.
    pub fn name_zh(self) -> &'static str {
        match self {
            Quadrant::Star => "明星款",
            Quadrant::TrafficDriver => "爆款引流款",
            Quadrant::ProfitContributor => "利润贡献款",
            Quadrant::Question => "问题款",
        }
    }

    /// Suggested action in English.
    pub fn action(self) -> &'static str {
        match self {
            Quadrant::Star => {
                "Keep it in stock and in sight; hold its price; lead campaigns with it."
            }
            Quadrant::TrafficDriver => {
                "Use it to bring shoppers in; bundle it with high-margin items; cap its discounts."
            }
            Quadrant::ProfitContributor => {
                "Give it more exposure (recommendation slots, content); test a small promotion."
            }
            Quadrant::Question => "Review it: reprice, bundle, or clear the stock and delist.",
        }
    }

    /// Suggested action in 简体中文.
    pub fn action_zh(self) -> &'static str {
        match self {
            Quadrant::Star => "保证库存与曝光，稳住价格，作为活动主推。",
            Quadrant::TrafficDriver => "用于引流，搭配高毛利商品组合销售，控制折扣力度。",
            Quadrant::ProfitContributor => "增加曝光（推荐位、内容种草），小幅促销测试。",
            Quadrant::Question => "复盘：调价、组合销售，或清仓下架。",
        }
    }

    fn of(high_sales: bool, high_margin: bool) -> Quadrant {
        match (high_sales, high_margin) {
            (true, true) => Quadrant::Star,
            (true, false) => Quadrant::TrafficDriver,
            (false, true) => Quadrant::ProfitContributor,
            (false, false) => Quadrant::Question,
        }
    }
}

/// `shoplens products` and `GET /api/products`: the parameters as the command line and the API
/// take them (same names, same defaults).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, clap::Args, schemars::JsonSchema)]
#[serde(default, deny_unknown_fields)]
pub struct ProductParams {
    /// Orders from this day (or instant) on, in the shop's zone.
    #[arg(long)]
    pub from: Option<String>,
    /// Orders up to this day, inclusive (or an instant, exclusive).
    #[arg(long)]
    pub to: Option<String>,
    /// The sales axis of the quadrants.
    #[arg(long, value_enum, default_value_t = SalesMeasure::Units)]
    pub sales: SalesMeasure,
    /// High sales at or above this (default: the median over items with costs).
    #[arg(long)]
    pub sales_threshold: Option<f64>,
    /// High margin rate at or above this, e.g. 0.3 (default: the median).
    #[arg(long)]
    pub margin_threshold: Option<f64>,
    /// Table and CSV: at most this many items, highest revenue first (0 = all; JSON lists all).
    #[arg(long, default_value_t = 20)]
    pub limit: usize,
}

impl Default for ProductParams {
    fn default() -> ProductParams {
        crate::params::flag_defaults()
    }
}

impl ProductParams {
    /// The spec in the shop's zone `tz`.
    pub fn spec(&self, tz: &chrono_tz::Tz) -> Result<MatrixSpec> {
        let (from, to) = calendar::period(tz, self.from.as_deref(), self.to.as_deref())?;
        Ok(MatrixSpec {
            from,
            to,
            sales: self.sales,
            sales_threshold: self.sales_threshold,
            margin_threshold: self.margin_threshold,
        })
    }
}

/// What to compute.
#[derive(Debug, Clone)]
pub struct MatrixSpec {
    /// Orders at or after this instant (µs).
    pub from: Option<i64>,
    /// Orders before this instant (µs).
    pub to: Option<i64>,
    /// Units or revenue.
    pub sales: SalesMeasure,
    /// High sales at or above this value (default: the median over items with a known cost).
    pub sales_threshold: Option<f64>,
    /// High margin rate at or above this value (default: the median).
    pub margin_threshold: Option<f64>,
}

impl Default for MatrixSpec {
    fn default() -> MatrixSpec {
        MatrixSpec {
            from: None,
            to: None,
            sales: SalesMeasure::Units,
            sales_threshold: None,
            margin_threshold: None,
        }
    }
}

/// Sales and margin of one item or category.
#[derive(Debug, Clone, Serialize, schemars::JsonSchema)]
pub struct MatrixRow {
    /// Item id (items) or category (categories).
    pub key: String,
    /// Product name (items).
    pub name: Option<String>,
    /// Category (items: the product's; None when unknown).
    pub category: Option<String>,
    /// Units sold on paid orders.
    pub units: i64,
    /// Paid orders holding it.
    pub orders: i64,
    /// Units × unit price, before discounts.
    pub gross_sales: f64,
    /// Line discounts.
    pub discounts: f64,
    /// Gross sales − discounts.
    pub revenue: f64,
    /// Units × unit cost (line cost, else the product's); None when any line lacks a cost.
    pub cost: Option<f64>,
    /// Revenue − cost.
    pub gross_margin: Option<f64>,
    /// Gross margin / revenue.
    pub margin_rate: Option<f64>,
    /// Discounts / gross sales.
    pub discount_rate: Option<f64>,
    /// Quadrant; None without cost data.
    pub quadrant: Option<Quadrant>,
    /// Quadrant name (English).
    pub quadrant_name: Option<&'static str>,
    /// Quadrant name (简体中文).
    pub quadrant_name_zh: Option<&'static str>,
    /// Suggested action (English).
    pub action: Option<&'static str>,
    /// Suggested action (简体中文).
    pub action_zh: Option<&'static str>,
    /// Lines sold without any cost (line or product).
    pub lines_without_cost: i64,
}

/// The product matrix.
#[derive(Debug, Clone, Serialize, schemars::JsonSchema)]
pub struct MatrixReport {
    /// Units or revenue.
    pub sales: SalesMeasure,
    /// The item quadrants' sales threshold.
    pub sales_threshold: Option<f64>,
    /// The item quadrants' margin-rate threshold.
    pub margin_threshold: Option<f64>,
    /// The category quadrants' thresholds (medians over categories unless configured).
    pub category_sales_threshold: Option<f64>,
    /// The category quadrants' margin-rate threshold.
    pub category_margin_threshold: Option<f64>,
    /// Whether any cost data was found (none of the public data sets has costs).
    pub has_costs: bool,
    /// Items sold without cost data (left out of the quadrants, never given a made-up margin).
    pub items_without_cost: u64,
    /// Totals over every item.
    pub total: MatrixRow,
    /// Per item, by revenue.
    pub items: Vec<MatrixRow>,
    /// Per category, by revenue.
    pub categories: Vec<MatrixRow>,
    /// Items per quadrant.
    pub quadrant_counts: BTreeMap<String, u64>,
}

fn blank_row(key: String) -> MatrixRow {
    MatrixRow {
        key,
        name: None,
        category: None,
        units: 0,
        orders: 0,
        gross_sales: 0.0,
        discounts: 0.0,
        revenue: 0.0,
        cost: Some(0.0),
        gross_margin: None,
        margin_rate: None,
        discount_rate: None,
        quadrant: None,
        quadrant_name: None,
        quadrant_name_zh: None,
        action: None,
        action_zh: None,
        lines_without_cost: 0,
    }
}

fn add_into(acc: &mut MatrixRow, r: &MatrixRow) {
    acc.units += r.units;
    acc.orders += r.orders;
    acc.gross_sales += r.gross_sales;
    acc.discounts += r.discounts;
    acc.revenue += r.revenue;
    acc.lines_without_cost += r.lines_without_cost;
    acc.cost = match (acc.cost, r.cost) {
        (Some(a), Some(b)) => Some(a + b),
        _ => None,
    };
}

fn finish(r: &mut MatrixRow) {
    r.gross_margin = r.cost.map(|c| r.revenue - c);
    r.margin_rate = r.gross_margin.and_then(|m| ratio_f(m, r.revenue));
    r.discount_rate = ratio_f(r.discounts, r.gross_sales);
}

fn place(
    rows: &mut [MatrixRow],
    sales: SalesMeasure,
    st: Option<f64>,
    mt: Option<f64>,
) -> (Option<f64>, Option<f64>) {
    let measure = |r: &MatrixRow| match sales {
        SalesMeasure::Units => r.units as f64,
        SalesMeasure::Revenue => r.revenue,
    };
    let costed: Vec<&MatrixRow> = rows.iter().filter(|r| r.margin_rate.is_some()).collect();
    let st = st.or_else(|| median(costed.iter().map(|r| measure(r)).collect()));
    let mt = mt.or_else(|| median(costed.iter().filter_map(|r| r.margin_rate).collect()));
    if let (Some(s), Some(m)) = (st, mt) {
        for r in rows.iter_mut() {
            if let Some(rate) = r.margin_rate {
                let q = Quadrant::of(measure(r) >= s, rate >= m);
                r.quadrant = Some(q);
                r.quadrant_name = Some(q.name());
                r.quadrant_name_zh = Some(q.name_zh());
                r.action = Some(q.action());
                r.action_zh = Some(q.action_zh());
            }
        }
    }
    (st, mt)
}

/// Units, revenue, discounts, cost and margin per item and category of paid orders, with quadrants.
pub async fn product_matrix(ws: &Workspace, spec: &MatrixSpec) -> Result<MatrixReport> {
    let range = in_range("o.ts", spec.from, spec.to);
    let q = format!(
        "WITH l AS (SELECT i.order_id, i.item_id, i.quantity, i.unit_price, coalesce(i.discount, 0) AS discount, \
           coalesce(i.unit_cost, p.cost) AS unit_cost \
           FROM order_items i JOIN orders o ON o.order_id = i.order_id LEFT JOIN products p ON p.item_id = i.item_id \
           WHERE o.{PAID} AND i.quantity > 0 AND {range}) \
         SELECT item_id, CAST(sum(quantity) AS BIGINT), CAST(count(DISTINCT order_id) AS BIGINT), \
           CAST(sum(quantity * unit_price) AS DOUBLE), CAST(sum(discount) AS DOUBLE), \
           CAST(sum(quantity * unit_cost) AS DOUBLE), CAST(sum(CASE WHEN unit_cost IS NULL THEN 1 ELSE 0 END) AS BIGINT) \
         FROM l GROUP BY item_id"
    );
    let (_, batches) = query::sql(ws, &q).await?;
    let cat = Catalogue::load(ws).await?;
    let mut items = Vec::new();
    for b in &batches {
        let (id, units, orders, gross, disc, cost, nocost) = (
            strings(b.column(0))?,
            ints(b.column(1))?,
            ints(b.column(2))?,
            floats(b.column(3))?,
            floats(b.column(4))?,
            floats(b.column(5))?,
            ints(b.column(6))?,
        );
        for i in 0..b.num_rows() {
            let key = id.value(i).to_string();
            let gross = if gross[i].is_nan() { 0.0 } else { gross[i] };
            let mut r = blank_row(key.clone());
            r.name = cat.name(&key);
            r.category = cat.category(&key);
            r.units = units[i];
            r.orders = orders[i];
            r.gross_sales = gross;
            r.discounts = disc[i];
            r.revenue = gross - disc[i];
            r.lines_without_cost = nocost[i];
            r.cost = (nocost[i] == 0 && !cost[i].is_nan()).then_some(cost[i]);
            finish(&mut r);
            items.push(r);
        }
    }
    items.sort_by(|a, b| {
        b.revenue
            .total_cmp(&a.revenue)
            .then_with(|| a.key.cmp(&b.key))
    });
    let (st, mt) = place(
        &mut items,
        spec.sales,
        spec.sales_threshold,
        spec.margin_threshold,
    );
    let mut cats: BTreeMap<String, MatrixRow> = BTreeMap::new();
    let mut total = blank_row("total".into());
    for r in &items {
        let c = r.category.clone().unwrap_or_else(|| "(no category)".into());
        add_into(cats.entry(c.clone()).or_insert_with(|| blank_row(c)), r);
        add_into(&mut total, r);
    }
    // Orders are distinct per item; a category's or the shop's order count needs its own count.
    let order_counts = category_orders(ws, &range).await?;
    let mut categories: Vec<MatrixRow> = cats
        .into_values()
        .map(|mut r| {
            r.orders = order_counts.get(&r.key).copied().unwrap_or(0);
            finish(&mut r);
            r
        })
        .collect();
    total.orders = order_counts.get("\u{0}total").copied().unwrap_or(0);
    finish(&mut total);
    categories.sort_by(|a, b| {
        b.revenue
            .total_cmp(&a.revenue)
            .then_with(|| a.key.cmp(&b.key))
    });
    let cat_thresholds = place(&mut categories, spec.sales, None, None);
    let mut quadrant_counts = BTreeMap::new();
    for r in &items {
        if let Some(q) = r.quadrant {
            *quadrant_counts
                .entry(
                    serde_json::to_value(q)
                        .ok()
                        .and_then(|v| v.as_str().map(str::to_string))
                        .unwrap_or_default(),
                )
                .or_default() += 1;
        }
    }
    Ok(MatrixReport {
        sales: spec.sales,
        sales_threshold: st,
        margin_threshold: mt,
        category_sales_threshold: cat_thresholds.0,
        category_margin_threshold: cat_thresholds.1,
        has_costs: items.iter().any(|r| r.cost.is_some()),
        items_without_cost: items.iter().filter(|r| r.cost.is_none()).count() as u64,
        total,
        items,
        categories,
        quadrant_counts,
    })
}

/// Paid orders per category (an order counts once in each category it holds), and the total
/// under the key "\0total".
async fn category_orders(ws: &Workspace, range: &str) -> Result<FxHashMap<String, i64>> {
    let q = format!(
        "SELECT coalesce(p.category, '(no category)'), CAST(count(DISTINCT o.order_id) AS BIGINT) \
         FROM order_items i JOIN orders o ON o.order_id = i.order_id LEFT JOIN products p ON p.item_id = i.item_id \
         WHERE o.{PAID} AND i.quantity > 0 AND {range} GROUP BY 1 \
         UNION ALL SELECT '\u{0}total', CAST(count(DISTINCT o.order_id) AS BIGINT) \
         FROM order_items i JOIN orders o ON o.order_id = i.order_id WHERE o.{PAID} AND i.quantity > 0 AND {range}"
    );
    let (_, batches) = query::sql(ws, &q).await?;
    let mut m = FxHashMap::default();
    for b in &batches {
        let (k, n) = (strings(b.column(0))?, ints(b.column(1))?);
        for (i, &n) in n.iter().enumerate() {
            m.insert(k.value(i).to_string(), n);
        }
    }
    Ok(m)
}
