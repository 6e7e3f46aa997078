//! Goods (货): the product matrix (sales × margin quadrants), returns against reviews with
//! quality-risk flags, and inventory (sell-through, 动销率, turnover, slow movers, stock-outs).
//! Definitions: docs/metrics.md, "Product matrix", "Returns and reviews", "Inventory".

pub mod baskets;

use std::collections::BTreeMap;

use chrono::NaiveDate;
use datafusion::arrow::array::Array;
use rustc_hash::{FxHashMap, FxHashSet};
use serde::{Deserialize, Serialize};
use shoplens_models::stats::quantile;

use crate::calendar;
use crate::error::{Error, Result};
use crate::query;
use crate::sql::{PAID, floats, in_range, ints, local_day, strings, texts};
use crate::storage::workspace::Workspace;

/// Median of values (None for none).
fn median(mut v: Vec<f64>) -> Option<f64> {
    v.retain(|x| x.is_finite());
    v.sort_by(f64::total_cmp);
    quantile(&v, 0.5)
}

fn ratio_f(a: f64, b: f64) -> Option<f64> {
    (b != 0.0 && a.is_finite() && b.is_finite()).then(|| a / b)
}

/// A product's name, category and attributes (JSON).
type ProductInfo = (Option<String>, Option<String>, Option<String>);

/// The catalogue's name, category and attributes per item.
struct Catalogue(FxHashMap<String, ProductInfo>);

impl Catalogue {
    async fn load(ws: &Workspace) -> Result<Catalogue> {
        let (_, batches) = query::sql(
            ws,
            "SELECT item_id, name, category, attributes FROM products",
        )
        .await?;
        let mut m = FxHashMap::default();
        for b in &batches {
            let (id, name, cat, attr) = (
                strings(b.column(0))?,
                texts(b.column(1))?,
                texts(b.column(2))?,
                texts(b.column(3))?,
            );
            for i in 0..b.num_rows() {
                m.entry(id.value(i).to_string()).or_insert((
                    name[i].clone(),
                    cat[i].clone(),
                    attr[i].clone(),
                ));
            }
        }
        Ok(Catalogue(m))
    }

    fn name(&self, item: &str) -> Option<String> {
        self.0.get(item).and_then(|p| p.0.clone())
    }

    fn category(&self, item: &str) -> Option<String> {
        self.0.get(item).and_then(|p| p.1.clone())
    }

    /// The product's attribute `key` (a JSON object's string or number value).
    fn attribute(&self, item: &str, key: &str) -> Option<String> {
        self.0
            .get(item)
            .and_then(|p| p.2.as_deref())
            .and_then(|a| attribute(a, key))
    }
}

/// Attribute `key` of a JSON object as text. The key matches as written, else ignoring case,
/// spaces and punctuation, and a trailing "name" (`division` finds "Division Name").
pub(crate) fn attribute(json: &str, key: &str) -> Option<String> {
    let v: serde_json::Value = serde_json::from_str(json).ok()?;
    let obj = v.as_object()?;
    let norm = |s: &str| -> String {
        s.chars()
            .filter(char::is_ascii_alphanumeric)
            .map(|c| c.to_ascii_lowercase())
            .collect()
    };
    let want = norm(key);
    let found = obj.get(key).or_else(|| {
        obj.iter()
            .find(|(k, _)| {
                let k = norm(k);
                k == want || k.strip_suffix("name") == Some(want.as_str())
            })
            .map(|(_, v)| v)
    })?;
    match found {
        serde_json::Value::String(s) => Some(s.clone()),
        serde_json::Value::Null => None,
        other => Some(other.to_string()),
    }
}

// ---------------------------------------------------------------------------------------------
// Product matrix

/// The sales measure of the quadrants.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize, clap::ValueEnum)]
#[serde(rename_all = "snake_case")]
pub enum SalesMeasure {
    /// Units sold.
    Units,
    /// Revenue (after line discounts).
    Revenue,
}

/// A quadrant of the sales × margin matrix.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
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
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, clap::Args)]
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
#[derive(Debug, Clone, Serialize)]
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
#[derive(Debug, Clone, Serialize)]
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

// ---------------------------------------------------------------------------------------------
// Returns and reviews

/// How returns and reviews are grouped.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum ReturnsBy {
    /// Per item.
    Item,
    /// Per product category.
    Category,
    /// Per value of an attribute (size, colour, department …) within each category: the line's
    /// (or review's) attributes, else the product's.
    Attribute(String),
}

/// What to compute.
#[derive(Debug, Clone)]
pub struct ReturnsSpec {
    /// Orders (and reviews) at or after this instant (µs); reviews without a time are kept.
    pub from: Option<i64>,
    /// Orders (and reviews) before this instant (µs).
    pub to: Option<i64>,
    /// Grouping.
    pub by: ReturnsBy,
    /// A good review has at least this rating.
    pub good_rating: i64,
    /// Flag: return rate at least this multiple of the category's median item return rate …
    pub risk_return_multiple: f64,
    /// … while the good-review rate is below this.
    pub risk_good_review_below: f64,
    /// Flag only items with at least this many units sold …
    pub risk_min_units: i64,
    /// … and this many reviews.
    pub risk_min_reviews: i64,
}

/// `shoplens returns` and `GET /api/returns`: the parameters as the command line and the API take
/// them (same names, same defaults).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, clap::Args)]
#[serde(default, deny_unknown_fields)]
pub struct ReturnsParams {
    /// Group by `item`, `category`, or an attribute (size, colour, division …) within each
    /// category.
    #[arg(long, default_value = "item")]
    pub by: String,
    /// Orders and reviews from this day (or instant) on; reviews without a date are kept.
    #[arg(long)]
    pub from: Option<String>,
    /// Orders and reviews up to this day, inclusive.
    #[arg(long)]
    pub to: Option<String>,
    /// A good review has at least this many stars.
    #[arg(long, default_value_t = 4)]
    pub good_rating: i64,
    /// Quality risk: return rate at least this multiple of the category's median …
    #[arg(long, default_value_t = 2.0)]
    pub risk_multiple: f64,
    /// … while the good-review rate is below this.
    #[arg(long, default_value_t = 0.8)]
    pub risk_good_below: f64,
    /// Quality risk: only items with at least this many units sold …
    #[arg(long, default_value_t = 30)]
    pub min_units: i64,
    /// … and this many reviews.
    #[arg(long, default_value_t = 10)]
    pub min_reviews: i64,
    /// Table and CSV: at most this many groups, most units first (0 = all; JSON lists all).
    #[arg(long, default_value_t = 20)]
    pub limit: usize,
}

impl Default for ReturnsParams {
    fn default() -> ReturnsParams {
        crate::params::flag_defaults()
    }
}

impl ReturnsParams {
    /// The spec in the shop's zone `tz`.
    pub fn spec(&self, tz: &chrono_tz::Tz) -> Result<ReturnsSpec> {
        let by = match self.by.trim() {
            "item" => ReturnsBy::Item,
            "category" => ReturnsBy::Category,
            "" => {
                return Err(Error::Invalid(
                    "--by needs item, category or an attribute name".into(),
                ));
            }
            k => ReturnsBy::Attribute(k.to_string()),
        };
        let (from, to) = crate::calendar::period(tz, self.from.as_deref(), self.to.as_deref())?;
        Ok(ReturnsSpec {
            from,
            to,
            by,
            good_rating: self.good_rating,
            risk_return_multiple: self.risk_multiple,
            risk_good_review_below: self.risk_good_below,
            risk_min_units: self.min_units,
            risk_min_reviews: self.min_reviews,
        })
    }
}

impl Default for ReturnsSpec {
    fn default() -> ReturnsSpec {
        ReturnsSpec {
            from: None,
            to: None,
            by: ReturnsBy::Item,
            good_rating: 4,
            risk_return_multiple: 2.0,
            risk_good_review_below: 0.8,
            risk_min_units: 30,
            risk_min_reviews: 10,
        }
    }
}

/// Returns and reviews of one group.
#[derive(Debug, Clone, Default, Serialize)]
pub struct ReturnsRow {
    /// Item id, category, or attribute value.
    pub key: String,
    /// Category of the group (items and attribute values).
    pub category: Option<String>,
    /// Product name (items).
    pub name: Option<String>,
    /// Units sold on paid orders.
    pub units: i64,
    /// Units returned or cancelled (credit notes included).
    pub returned_units: i64,
    /// returned_units / units.
    pub return_rate_units: Option<f64>,
    /// Paid orders holding it.
    pub orders: i64,
    /// Orders with a returned line of it.
    pub orders_with_return: i64,
    /// orders_with_return / orders.
    pub return_rate_orders: Option<f64>,
    /// Reviews.
    pub reviews: i64,
    /// Reviews rated at least the good rating.
    pub good_reviews: i64,
    /// good_reviews / reviews.
    pub good_review_rate: Option<f64>,
    /// Mean rating.
    pub average_rating: Option<f64>,
    /// Share of reviews recommending it (where the source says).
    pub recommend_rate: Option<f64>,
}

/// A quality-risk flag with its evidence.
#[derive(Debug, Clone, Serialize)]
pub struct RiskFlag {
    /// The item.
    pub item_id: String,
    /// Its name.
    pub name: Option<String>,
    /// Its category.
    pub category: Option<String>,
    /// Its return rate (units).
    pub return_rate: f64,
    /// Units sold and returned.
    pub units: i64,
    /// Units returned.
    pub returned_units: i64,
    /// Median item return rate of its category.
    pub category_median_return_rate: f64,
    /// Its good-review rate.
    pub good_review_rate: f64,
    /// Reviews.
    pub reviews: i64,
    /// Return rate of the other variants of the same style (products.attributes.style), if any.
    pub style_peers_return_rate: Option<f64>,
    /// Good-review rate of the other variants of the same style.
    pub style_peers_good_review_rate: Option<f64>,
    /// Why it is flagged, in English.
    pub evidence: String,
    /// Why it is flagged, in 简体中文.
    pub evidence_zh: String,
}

/// Returns and reviews per group, with quality-risk flags.
#[derive(Debug, Clone, Serialize)]
pub struct ReturnsReport {
    /// Grouping.
    pub by: ReturnsBy,
    /// The good-review rating.
    pub good_rating: i64,
    /// Totals.
    pub total: ReturnsRow,
    /// Per group, by units sold.
    pub rows: Vec<ReturnsRow>,
    /// Items flagged as quality risks (always computed per item), worst return rate first.
    pub flags: Vec<RiskFlag>,
}

/// Per-item tallies of sales, returns and reviews, with the line's or review's attribute value.
#[derive(Default, Clone)]
struct Tally {
    units: i64,
    returned: i64,
    orders: i64,
    orders_ret: i64,
    reviews: i64,
    good: i64,
    rating_sum: i64,
    recommended: i64,
    recommend_known: i64,
}

impl Tally {
    fn add(&mut self, o: &Tally) {
        self.units += o.units;
        self.returned += o.returned;
        self.orders += o.orders;
        self.orders_ret += o.orders_ret;
        self.reviews += o.reviews;
        self.good += o.good;
        self.rating_sum += o.rating_sum;
        self.recommended += o.recommended;
        self.recommend_known += o.recommend_known;
    }

    fn row(&self, key: String, category: Option<String>, name: Option<String>) -> ReturnsRow {
        let r = |a: i64, b: i64| (b > 0).then(|| a as f64 / b as f64);
        ReturnsRow {
            key,
            category,
            name,
            units: self.units,
            returned_units: self.returned,
            return_rate_units: r(self.returned, self.units),
            orders: self.orders,
            orders_with_return: self.orders_ret,
            return_rate_orders: r(self.orders_ret, self.orders),
            reviews: self.reviews,
            good_reviews: self.good,
            good_review_rate: r(self.good, self.reviews),
            average_rating: r(self.rating_sum, self.reviews),
            recommend_rate: r(self.recommended, self.recommend_known),
        }
    }
}

/// Return rates and review scores per item, category or attribute value, and quality-risk flags.
pub async fn returns(ws: &Workspace, spec: &ReturnsSpec) -> Result<ReturnsReport> {
    let range = in_range("o.ts", spec.from, spec.to);
    let review_range = in_range("ts", spec.from, spec.to);
    let review_range = if review_range == "TRUE" {
        review_range
    } else {
        format!("(ts IS NULL OR ({review_range}))")
    };
    // (item, attributes JSON) → tally; the attributes matter only when grouping by one.
    let with_attr = matches!(spec.by, ReturnsBy::Attribute(_));
    let attr_col = |c: &str| {
        if with_attr {
            c.to_string()
        } else {
            "CAST(NULL AS VARCHAR)".into()
        }
    };
    let (la, ra) = (attr_col("i.attributes"), attr_col("attributes"));
    let q = format!(
        "SELECT i.item_id, {la} AS a, \
           CAST(sum(CASE WHEN o.{PAID} AND i.quantity > 0 THEN i.quantity ELSE 0 END) AS BIGINT), \
           CAST(sum(coalesce(i.returned_quantity, 0)) AS BIGINT), \
           CAST(count(DISTINCT CASE WHEN o.{PAID} AND i.quantity > 0 THEN o.order_id END) AS BIGINT), \
           CAST(count(DISTINCT CASE WHEN i.returned_quantity > 0 THEN o.order_id END) AS BIGINT) \
         FROM order_items i JOIN orders o ON o.order_id = i.order_id WHERE {range} GROUP BY 1, 2"
    );
    let good = spec.good_rating;
    let rq = format!(
        "SELECT item_id, {ra} AS a, CAST(count(*) AS BIGINT), \
           CAST(sum(CASE WHEN rating >= {good} THEN 1 ELSE 0 END) AS BIGINT), CAST(sum(rating) AS BIGINT), \
           CAST(sum(CASE WHEN recommended THEN 1 ELSE 0 END) AS BIGINT), CAST(count(recommended) AS BIGINT) \
         FROM reviews WHERE rating IS NOT NULL AND {review_range} GROUP BY 1, 2"
    );
    let cat = Catalogue::load(ws).await?;
    let mut by_line: Vec<(String, Option<String>, Tally)> = Vec::new();
    let (_, batches) = query::sql(ws, &q).await?;
    for b in &batches {
        let (id, a) = (strings(b.column(0))?, texts(b.column(1))?);
        let v: Vec<Vec<i64>> = (2..6).map(|c| ints(b.column(c))).collect::<Result<_>>()?;
        for i in 0..b.num_rows() {
            by_line.push((
                id.value(i).to_string(),
                a[i].clone(),
                Tally {
                    units: v[0][i],
                    returned: v[1][i],
                    orders: v[2][i],
                    orders_ret: v[3][i],
                    ..Tally::default()
                },
            ));
        }
    }
    let (_, batches) = query::sql(ws, &rq).await?;
    for b in &batches {
        let (id, a) = (strings(b.column(0))?, texts(b.column(1))?);
        let v: Vec<Vec<i64>> = (2..7).map(|c| ints(b.column(c))).collect::<Result<_>>()?;
        for i in 0..b.num_rows() {
            by_line.push((
                id.value(i).to_string(),
                a[i].clone(),
                Tally {
                    reviews: v[0][i],
                    good: v[1][i],
                    rating_sum: v[2][i],
                    recommended: v[3][i],
                    recommend_known: v[4][i],
                    ..Tally::default()
                },
            ));
        }
    }
    // Per item (for flags and the item grouping).
    let mut per_item: BTreeMap<String, Tally> = BTreeMap::new();
    for (item, _, t) in &by_line {
        per_item.entry(item.clone()).or_default().add(t);
    }
    let mut total = Tally::default();
    for t in per_item.values() {
        total.add(t);
    }
    let group = |item: &str, attr: Option<&str>| -> (String, Option<String>) {
        let c = cat.category(item);
        match &spec.by {
            ReturnsBy::Item => (item.to_string(), c),
            ReturnsBy::Category => (c.clone().unwrap_or_else(|| "(no category)".into()), None),
            ReturnsBy::Attribute(k) => (
                attr.and_then(|a| attribute(a, k))
                    .or_else(|| cat.attribute(item, k))
                    .unwrap_or_else(|| "(none)".into()),
                c,
            ),
        }
    };
    let mut groups: BTreeMap<(Option<String>, String), Tally> = BTreeMap::new();
    for (item, a, t) in &by_line {
        let (key, c) = group(item, a.as_deref());
        groups.entry((c, key)).or_default().add(t);
    }
    // Orders counted per line group can double-count an order holding two items of a category;
    // per item they are exact (one row per item without attributes).
    let mut rows: Vec<ReturnsRow> = groups
        .into_iter()
        .map(|((c, key), t)| {
            let name = matches!(spec.by, ReturnsBy::Item)
                .then(|| cat.name(&key))
                .flatten();
            t.row(key, c, name)
        })
        .collect();
    // Exact distinct order counts per group, and the shop's, from one scan (per item the line
    // groups are already exact, so the scan groups by category and serves the total only).
    let scan_by = match &spec.by {
        ReturnsBy::Item => &ReturnsBy::Category,
        by => by,
    };
    let counts = group_orders(ws, scan_by, &range, &cat).await?;
    if !matches!(spec.by, ReturnsBy::Item) {
        for r in &mut rows {
            if let Some(&(o, or)) = counts.get(&(r.category.clone(), r.key.clone())) {
                r.orders = o;
                r.orders_with_return = or;
                r.return_rate_orders = (o > 0).then(|| or as f64 / o as f64);
            }
        }
    }
    rows.sort_by(|a, b| b.units.cmp(&a.units).then_with(|| a.key.cmp(&b.key)));
    let mut total_row = total.row("total".into(), None, None);
    if let Some(&(o, or)) = counts.get(&(None, "\u{0}total".into())) {
        total_row.orders = o;
        total_row.orders_with_return = or;
        total_row.return_rate_orders = (o > 0).then(|| or as f64 / o as f64);
    }
    let flags = risk_flags(&per_item, &cat, spec);
    Ok(ReturnsReport {
        by: spec.by.clone(),
        good_rating: spec.good_rating,
        total: total_row,
        rows,
        flags,
    })
}

/// Distinct sale orders and orders with a return per (category, group key) for category and
/// attribute groupings, plus the shop's under (None, "\0total").
async fn group_orders(
    ws: &Workspace,
    by: &ReturnsBy,
    range: &str,
    cat: &Catalogue,
) -> Result<FxHashMap<(Option<String>, String), (i64, i64)>> {
    let attr = if matches!(by, ReturnsBy::Attribute(_)) {
        "i.attributes"
    } else {
        "CAST(NULL AS VARCHAR)"
    };
    let q = format!(
        "SELECT DISTINCT o.order_id, i.item_id, {attr}, \
           CASE WHEN o.{PAID} AND i.quantity > 0 THEN 1 ELSE 0 END, CASE WHEN i.returned_quantity > 0 THEN 1 ELSE 0 END \
         FROM order_items i JOIN orders o ON o.order_id = i.order_id WHERE {range}"
    );
    let (_, batches) = query::sql(ws, &q).await?;
    type OrderSets = (FxHashSet<String>, FxHashSet<String>);
    let mut sets: FxHashMap<(Option<String>, String), OrderSets> = FxHashMap::default();
    for b in &batches {
        let (o, it, a) = (
            strings(b.column(0))?,
            strings(b.column(1))?,
            texts(b.column(2))?,
        );
        let (sale, ret) = (ints(b.column(3))?, ints(b.column(4))?);
        for i in 0..b.num_rows() {
            let item = it.value(i);
            let c = cat.category(item);
            let key = match by {
                ReturnsBy::Attribute(k) => (
                    c,
                    a[i].as_deref()
                        .and_then(|a| attribute(a, k))
                        .or_else(|| cat.attribute(item, k))
                        .unwrap_or_else(|| "(none)".into()),
                ),
                _ => (None, c.unwrap_or_else(|| "(no category)".into())),
            };
            for k in [key, (None, "\u{0}total".to_string())] {
                let e = sets.entry(k).or_default();
                if sale[i] == 1 {
                    e.0.insert(o.value(i).to_string());
                }
                if ret[i] == 1 {
                    e.1.insert(o.value(i).to_string());
                }
            }
        }
    }
    Ok(sets
        .into_iter()
        .map(|(k, (s, r))| (k, (s.len() as i64, r.len() as i64)))
        .collect())
}

fn risk_flags(
    per_item: &BTreeMap<String, Tally>,
    cat: &Catalogue,
    spec: &ReturnsSpec,
) -> Vec<RiskFlag> {
    let rate = |t: &Tally| (t.units > 0).then(|| t.returned as f64 / t.units as f64);
    let good = |t: &Tally| (t.reviews > 0).then(|| t.good as f64 / t.reviews as f64);
    let mut by_cat: FxHashMap<Option<String>, Vec<f64>> = FxHashMap::default();
    for (item, t) in per_item {
        if t.units >= spec.risk_min_units
            && let Some(r) = rate(t)
        {
            by_cat.entry(cat.category(item)).or_default().push(r);
        }
    }
    let medians: FxHashMap<Option<String>, f64> = by_cat
        .into_iter()
        .filter_map(|(c, v)| median(v).map(|m| (c, m)))
        .collect();
    let mut flags = Vec::new();
    for (item, t) in per_item {
        let (Some(r), Some(g)) = (rate(t), good(t)) else {
            continue;
        };
        let c = cat.category(item);
        let Some(&m) = medians.get(&c) else { continue };
        if t.units < spec.risk_min_units
            || t.reviews < spec.risk_min_reviews
            || r < spec.risk_return_multiple * m
            || r == 0.0
            || g >= spec.risk_good_review_below
        {
            continue;
        }
        let mut peers = Tally::default();
        if let Some(style) = cat.attribute(item, "style") {
            for (other, ot) in per_item {
                if other != item && cat.attribute(other, "style").as_deref() == Some(style.as_str())
                {
                    peers.add(ot);
                }
            }
        }
        let (pr, pg) = (rate(&peers), good(&peers));
        let pct = |x: f64| format!("{:.0}%", x * 100.0);
        let mut evidence = format!(
            "returns {} ({} of {} units) vs category median {}; good reviews {} ({} of {}) below {}",
            pct(r),
            t.returned,
            t.units,
            pct(m),
            pct(g),
            t.good,
            t.reviews,
            pct(spec.risk_good_review_below)
        );
        let mut evidence_zh = format!(
            "退货率 {}（{}/{} 件），类目中位数 {}；好评率 {}（{}/{}），低于 {}",
            pct(r),
            t.returned,
            t.units,
            pct(m),
            pct(g),
            t.good,
            t.reviews,
            pct(spec.risk_good_review_below)
        );
        if let (Some(a), Some(b)) = (pr, pg) {
            evidence.push_str(&format!(
                "; other variants of the style: {} returns, {} good reviews",
                pct(a),
                pct(b)
            ));
            evidence_zh.push_str(&format!(
                "；同款其他规格：退货率 {}，好评率 {}",
                pct(a),
                pct(b)
            ));
        }
        flags.push(RiskFlag {
            item_id: item.clone(),
            name: cat.name(item),
            category: c,
            return_rate: r,
            units: t.units,
            returned_units: t.returned,
            category_median_return_rate: m,
            good_review_rate: g,
            reviews: t.reviews,
            style_peers_return_rate: pr,
            style_peers_good_review_rate: pg,
            evidence,
            evidence_zh,
        });
    }
    flags.sort_by(|a, b| {
        b.return_rate
            .total_cmp(&a.return_rate)
            .then_with(|| a.item_id.cmp(&b.item_id))
    });
    flags
}

// ---------------------------------------------------------------------------------------------
// Inventory

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
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, clap::Args)]
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
#[derive(Debug, Clone, Serialize)]
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
#[derive(Debug, Clone, Serialize)]
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
