//! Market baskets: association rules and bundle suggestions from orders' (or sessions') items,
//! by FP-growth ([`shoplens_models::baskets`]). Definitions: docs/metrics.md, "Market baskets".

use datafusion::arrow::array::Array;
use futures::StreamExt;
use rustc_hash::FxHashMap;
use serde::{Deserialize, Serialize};
use shoplens_models::baskets::{
    Baskets, Itemset, RuleThresholds, Threshold, frequent_itemsets, rules,
};

use crate::error::{Error, Result};
use crate::people::sessions;
use crate::query;
use crate::sql::{floats, in_range, label_order, quote, strings};
use crate::storage::workspace::Workspace;

/// What a basket's elements are.
#[derive(
    Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize, clap::ValueEnum, schemars::JsonSchema,
)]
#[serde(rename_all = "snake_case")]
pub enum Level {
    /// Item ids as written (case-sensitive).
    Item,
    /// The items' product categories (products.category); lines without one are left out and counted.
    Category,
}

/// What a basket is.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, schemars::JsonSchema)]
#[serde(rename_all = "snake_case")]
pub enum Unit {
    /// An order's distinct items with positive quantity.
    Order,
    /// A session's distinct items among events of these names (session_id, else 30 minutes of
    /// inactivity per person).
    Session(Vec<String>),
}

/// What a basket is, as a parameter (session baskets take their events from `events`).
#[derive(
    Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize, clap::ValueEnum, schemars::JsonSchema,
)]
#[serde(rename_all = "snake_case")]
pub enum BasketOf {
    /// An order's items.
    Order,
    /// A session's items.
    Session,
}

/// `shoplens basket` and `GET /api/basket`: the parameters as the command line and the API take
/// them (same names, same defaults).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, clap::Args, schemars::JsonSchema)]
#[serde(default, deny_unknown_fields)]
pub struct BasketParams {
    /// Minimum support: share of baskets holding the rule's items (inclusive, exact decimal).
    #[arg(long, default_value = "0.01")]
    pub min_support: String,
    /// Minimum confidence (inclusive).
    #[arg(long, default_value = "0.5")]
    pub min_confidence: String,
    /// Minimum lift (inclusive; 0 = none).
    #[arg(long, default_value = "0")]
    pub min_lift: String,
    /// Most items in a rule (antecedent + consequent).
    #[arg(long, default_value_t = 10)]
    pub max_len: usize,
    /// Items, or their product categories.
    #[arg(long, value_enum, default_value_t = Level::Item)]
    pub level: Level,
    /// An order's items, or a session's.
    #[arg(long, value_enum, default_value_t = BasketOf::Order)]
    pub basket: BasketOf,
    /// Session baskets: the events whose items count (comma-separated).
    #[arg(long, default_value = "add_to_cart")]
    pub events: String,
    /// Baskets from this day (or instant) on, in the shop's zone.
    #[arg(long)]
    pub from: Option<String>,
    /// Baskets up to this day, inclusive (or an instant, exclusive).
    #[arg(long)]
    pub to: Option<String>,
    /// Bundle suggestions (pairs and triples) to list.
    #[arg(long, default_value_t = 10)]
    pub bundles: usize,
    /// Table and CSV: at most this many rules, highest lift first (0 = all; JSON lists all).
    #[arg(long, default_value_t = 20)]
    pub limit: usize,
}

impl Default for BasketParams {
    fn default() -> BasketParams {
        crate::params::flag_defaults()
    }
}

impl BasketParams {
    /// The spec in the shop's zone `tz`.
    pub fn spec(&self, tz: &chrono_tz::Tz) -> Result<BasketSpec> {
        let threshold = |flag: &str, text: &str| {
            Threshold::parse(text).map_err(|e| Error::Invalid(format!("--{flag}: {e}")))
        };
        let mut spec = BasketSpec::new(
            threshold("min-support", &self.min_support)?,
            threshold("min-confidence", &self.min_confidence)?,
        );
        spec.min_lift = threshold("min-lift", &self.min_lift)?;
        spec.max_len = self.max_len;
        spec.level = self.level;
        spec.unit = match self.basket {
            BasketOf::Order => Unit::Order,
            BasketOf::Session => Unit::Session(
                self.events
                    .split(',')
                    .map(|e| e.trim().to_string())
                    .filter(|e| !e.is_empty())
                    .collect(),
            ),
        };
        (spec.from, spec.to) =
            crate::calendar::period(tz, self.from.as_deref(), self.to.as_deref())?;
        spec.bundles = self.bundles;
        Ok(spec)
    }
}

/// What to compute.
#[derive(Debug, Clone)]
pub struct BasketSpec {
    /// Minimum support (share of baskets), inclusive.
    pub min_support: Threshold,
    /// Minimum confidence, inclusive.
    pub min_confidence: Threshold,
    /// Minimum lift, inclusive (0 = none).
    pub min_lift: Threshold,
    /// Most items in an itemset (antecedent + consequent).
    pub max_len: usize,
    /// Items or categories.
    pub level: Level,
    /// Orders or sessions.
    pub unit: Unit,
    /// Baskets at or after this instant (µs); baskets without a time are then left out.
    pub from: Option<i64>,
    /// Baskets before this instant (µs).
    pub to: Option<i64>,
    /// How many bundle suggestions (pairs and triples) to return.
    pub bundles: usize,
}

impl BasketSpec {
    /// Order baskets of items at the given support and confidence; lift ≥ 0, at most 10 items.
    pub fn new(min_support: Threshold, min_confidence: Threshold) -> BasketSpec {
        BasketSpec {
            min_support,
            min_confidence,
            min_lift: Threshold::ZERO,
            max_len: 10,
            level: Level::Item,
            unit: Unit::Order,
            from: None,
            to: None,
            bundles: 20,
        }
    }
}

/// One association rule, in the contract's field names.
#[derive(Debug, Clone, Serialize, schemars::JsonSchema)]
pub struct RuleRow {
    /// Items on the left (ascending).
    pub antecedent: Vec<String>,
    /// The item on the right (one).
    pub consequent: Vec<String>,
    /// Share of baskets holding antecedent ∪ consequent.
    pub support: f64,
    /// Share of the antecedent's baskets that hold the consequent.
    pub confidence: f64,
    /// Confidence over the consequent's support.
    pub lift: f64,
    /// Support minus support × support expected under independence.
    pub leverage: f64,
    /// (1 − consequent support) / (1 − confidence); null when the confidence is 1.
    pub conviction: Option<f64>,
    /// Baskets holding antecedent ∪ consequent.
    pub count: u64,
    /// Baskets holding the antecedent.
    pub antecedent_count: u64,
    /// Baskets holding the consequent.
    pub consequent_count: u64,
}

/// A suggested bundle: a frequent pair or triple, with the order value of baskets holding it.
#[derive(Debug, Clone, Serialize, schemars::JsonSchema)]
pub struct Bundle {
    /// The items (ascending).
    pub items: Vec<String>,
    /// Baskets holding all of them.
    pub baskets: u64,
    /// Share of baskets holding all of them.
    pub support: f64,
    /// Support over the product of the items' supports (> 1: bought together more than chance).
    pub lift: f64,
    /// Mean order net amount of baskets holding the bundle (order baskets only).
    pub aov_with: Option<f64>,
    /// Mean order net amount of the other baskets.
    pub aov_without: Option<f64>,
    /// aov_with / aov_without − 1.
    pub aov_change: Option<f64>,
}

/// Rules, bundles and the counts behind them.
#[derive(Debug, Clone, Serialize, schemars::JsonSchema)]
pub struct BasketReport {
    /// Baskets (orders or sessions with at least one item).
    pub baskets: u64,
    /// Distinct items (or categories) in them.
    pub items: u64,
    /// Items or categories.
    pub level: Level,
    /// Orders or sessions.
    pub unit: Unit,
    /// The thresholds, as given.
    pub min_support: f64,
    /// Minimum confidence.
    pub min_confidence: f64,
    /// Minimum lift.
    pub min_lift: f64,
    /// Most items in an itemset.
    pub max_len: usize,
    /// The support threshold as a basket count (smallest count whose share reaches it).
    pub min_count: u64,
    /// Frequent itemsets found (all lengths).
    pub frequent_itemsets: u64,
    /// Order lines (or events) left out for having no category (category level only).
    pub lines_without_category: u64,
    /// Single-consequent rules, highest lift first.
    pub rules: Vec<RuleRow>,
    /// Pairs and triples with the highest lift (> 1), with their baskets' order value.
    pub bundles: Vec<Bundle>,
}

/// Baskets read from the workspace with their labels and order values.
pub struct LoadedBaskets {
    /// The baskets over dense item indices.
    pub baskets: Baskets,
    /// Label of each item index.
    pub labels: Vec<String>,
    /// Order net amount of each basket (None for sessions or orders without an amount).
    pub values: Vec<Option<f64>>,
    /// Lines without a category (category level).
    pub without_category: u64,
}

/// Reads the baskets a spec describes, streaming (memory: the distinct ids and one pair per line).
pub async fn load(ws: &Workspace, spec: &BasketSpec) -> Result<LoadedBaskets> {
    let (ctx, _) = query::context(ws).await?;
    let range = in_range("ts", spec.from, spec.to);
    let label = match spec.level {
        Level::Item => "x.item_id",
        Level::Category => "p.category",
    };
    let join = match spec.level {
        Level::Item => "",
        Level::Category => "LEFT JOIN products p ON p.item_id = x.item_id",
    };
    let q = match &spec.unit {
        Unit::Order => format!(
            "SELECT x.order_id AS basket, {label} AS label, CAST(o.net_amount AS DOUBLE) AS v \
             FROM order_items x JOIN (SELECT order_id, net_amount FROM orders WHERE {range}) o \
             ON o.order_id = x.order_id {join} WHERE x.quantity > 0"
        ),
        Unit::Session(events) => {
            if events.is_empty() {
                return Err(Error::Invalid(
                    "session baskets need at least one event name".into(),
                ));
            }
            let names = events
                .iter()
                .map(|e| quote(e))
                .collect::<Vec<_>>()
                .join(", ");
            let inner = format!(
                "SELECT coalesce(user_id, anonymous_id, '') AS person, ts, session_id, event, item_id FROM events WHERE {range}"
            );
            format!(
                "SELECT x.unit AS basket, {label} AS label, CAST(NULL AS DOUBLE) AS v \
                 FROM ({}) x {join} WHERE x.item_id IS NOT NULL AND x.event IN ({names})",
                sessions::with_units(&inner, sessions::need_split(&ctx).await?, sessions::GAP_US)
            )
        }
    };
    let mut basket_ids: FxHashMap<Box<str>, u32> = FxHashMap::default();
    let mut item_ids: FxHashMap<Box<str>, u32> = FxHashMap::default();
    let mut labels: Vec<String> = Vec::new();
    let mut values: Vec<Option<f64>> = Vec::new();
    let mut pairs: Vec<(u32, u32)> = Vec::new();
    let mut without_category = 0u64;
    let mut stream = ctx.sql(&q).await?.execute_stream().await?;
    while let Some(b) = stream.next().await {
        let b = b?;
        let (bk, lb, v) = (
            strings(b.column(0))?,
            strings(b.column(1))?,
            floats(b.column(2))?,
        );
        for (i, &value) in v.iter().enumerate() {
            if lb.is_null(i) {
                without_category += 1;
                continue;
            }
            let key = bk.value(i);
            let basket = match basket_ids.get(key) {
                Some(&k) => k,
                None => {
                    let k = basket_ids.len() as u32;
                    basket_ids.insert(key.into(), k);
                    values.push((!value.is_nan()).then_some(value));
                    k
                }
            };
            let name = lb.value(i);
            let item = match item_ids.get(name) {
                Some(&k) => k,
                None => {
                    let k = item_ids.len() as u32;
                    item_ids.insert(name.into(), k);
                    labels.push(name.to_string());
                    k
                }
            };
            pairs.push((basket, item));
        }
    }
    let rank = label_order(&mut labels);
    for p in &mut pairs {
        p.1 = rank[p.1 as usize];
    }
    let baskets = Baskets::from_pairs(pairs, basket_ids.len() as u32, item_ids.len() as u32);
    Ok(LoadedBaskets {
        baskets,
        labels,
        values,
        without_category,
    })
}

/// Association rules and bundle suggestions for a spec.
pub async fn basket(ws: &Workspace, spec: &BasketSpec) -> Result<BasketReport> {
    if spec.max_len < 2 {
        return Err(Error::Invalid(
            "--max-len must be at least 2 (a rule has two sides)".into(),
        ));
    }
    let loaded = load(ws, spec).await?;
    Ok(analyse(&loaded, spec))
}

/// The rules and bundles of baskets already loaded.
pub fn analyse(loaded: &LoadedBaskets, spec: &BasketSpec) -> BasketReport {
    let b = &loaded.baskets;
    let n = b.len() as u64;
    let min_count = spec.min_support.min_count(n).max(1);
    let sets = frequent_itemsets(b, min_count, spec.max_len);
    let found = rules(
        &sets,
        n,
        RuleThresholds {
            confidence: spec.min_confidence,
            lift: spec.min_lift,
        },
    );
    let names = |items: &[u32]| -> Vec<String> {
        let mut v: Vec<String> = items
            .iter()
            .map(|&i| loaded.labels[i as usize].clone())
            .collect();
        v.sort();
        v
    };
    let rules = found
        .iter()
        .map(|r| RuleRow {
            antecedent: names(&r.antecedent),
            consequent: vec![loaded.labels[r.consequent as usize].clone()],
            support: r.support(n),
            confidence: r.confidence(),
            lift: r.lift(n),
            leverage: r.leverage(n),
            conviction: r.conviction(n),
            count: r.count,
            antecedent_count: r.antecedent_count,
            consequent_count: r.consequent_count,
        })
        .collect();
    BasketReport {
        baskets: n,
        items: u64::from(b.n_items()),
        level: spec.level,
        unit: spec.unit.clone(),
        min_support: spec.min_support.value(),
        min_confidence: spec.min_confidence.value(),
        min_lift: spec.min_lift.value(),
        max_len: spec.max_len,
        min_count,
        frequent_itemsets: sets.len() as u64,
        lines_without_category: loaded.without_category,
        rules,
        bundles: bundles(loaded, &sets, spec.bundles, names),
    }
}

/// Pairs and triples by lift (support over the product of the items' supports), ties by count.
fn bundles(
    loaded: &LoadedBaskets,
    sets: &[Itemset],
    top: usize,
    names: impl Fn(&[u32]) -> Vec<String>,
) -> Vec<Bundle> {
    let b = &loaded.baskets;
    let n = b.len() as f64;
    let single: FxHashMap<u32, u64> = sets
        .iter()
        .filter(|s| s.items.len() == 1)
        .map(|s| (s.items[0], s.count))
        .collect();
    let mut cands: Vec<(f64, &Itemset)> = sets
        .iter()
        .filter(|s| (2..=3).contains(&s.items.len()))
        .filter_map(|s| {
            let mut expected = 1.0;
            for i in &s.items {
                expected *= *single.get(i)? as f64 / n;
            }
            let lift = s.count as f64 / n / expected;
            (lift > 1.0).then_some((lift, s))
        })
        .collect();
    cands.sort_by(|a, b| {
        b.0.total_cmp(&a.0)
            .then(b.1.count.cmp(&a.1.count))
            .then_with(|| a.1.items.cmp(&b.1.items))
    });
    cands.truncate(top);
    cands
        .into_iter()
        .map(|(lift, s)| {
            let (mut with, mut without) = ((0.0, 0u64), (0.0, 0u64));
            for k in 0..b.len() {
                let Some(v) = loaded.values[k] else { continue };
                let items = b.get(k);
                let holds = s.items.iter().all(|i| items.binary_search(i).is_ok());
                let acc = if holds { &mut with } else { &mut without };
                acc.0 += v;
                acc.1 += 1;
            }
            let mean = |(s, c): (f64, u64)| (c > 0).then(|| s / c as f64);
            let (aw, ao) = (mean(with), mean(without));
            Bundle {
                items: names(&s.items),
                baskets: s.count,
                support: s.count as f64 / n,
                lift,
                aov_with: aw,
                aov_without: ao,
                aov_change: match (aw, ao) {
                    (Some(w), Some(o)) if o != 0.0 => Some(w / o - 1.0),
                    _ => None,
                },
            }
        })
        .collect()
}
