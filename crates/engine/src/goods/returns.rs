//! Returns and reviews: return rates by units and orders, good-review rate and rating per item, category or attribute, and quality-risk flags with their evidence.

use std::collections::BTreeMap;

use rustc_hash::{FxHashMap, FxHashSet};
use serde::{Deserialize, Serialize};

use crate::error::{Error, Result};
use crate::query;
use crate::sql::{PAID, in_range, ints, strings, texts};
use crate::storage::workspace::Workspace;

use super::*;

/// How returns and reviews are grouped.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, schemars::JsonSchema)]
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
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, clap::Args, schemars::JsonSchema)]
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
#[derive(Debug, Clone, Default, Serialize, schemars::JsonSchema)]
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
#[derive(Debug, Clone, Serialize, schemars::JsonSchema)]
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
#[derive(Debug, Clone, Serialize, schemars::JsonSchema)]
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
