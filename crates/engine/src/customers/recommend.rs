//! Recommendations from the workspace: interactions weighted by event type, popularity,
//! item-to-item and ALS models, MMR diversity, per-user and per-item lists, and the offline
//! evaluation on a temporal split. Definitions: docs/metrics.md, "Recommendations".

use datafusion::arrow::array::Array;
use futures::StreamExt;
use rayon::prelude::*;
use rustc_hash::FxHashMap;
use serde::Serialize;
use shoplens_models::recommend::{AlsParams, Interactions, ItemItem};

use crate::error::Result;
use crate::query;
use crate::sql::{PAID, ints, label_order, strings};
use crate::storage::workspace::Workspace;

mod evaluate;
mod params;
mod serve;
mod tags;

pub use evaluate::*;
pub use params::*;
pub use serve::*;
pub use tags::*;

/// Weight of each kind of interaction (view < cart < order).
#[derive(Debug, Clone, Copy, Serialize, schemars::JsonSchema)]
pub struct EventWeights {
    /// A product view.
    pub view: f32,
    /// A favourite.
    pub favorite: f32,
    /// An add to cart.
    pub cart: f32,
    /// A purchase (a paid order line, or an `order` event where the source has no order lines).
    pub purchase: f32,
}

impl Default for EventWeights {
    fn default() -> EventWeights {
        EventWeights {
            view: 1.0,
            favorite: 2.0,
            cart: 3.0,
            purchase: 5.0,
        }
    }
}

/// Models and their parameters.
#[derive(Debug, Clone, Serialize, schemars::JsonSchema)]
pub struct RecommendSpec {
    /// Interaction weights.
    pub weights: EventWeights,
    /// ALS factors.
    pub factors: usize,
    /// ALS sweeps.
    pub iterations: usize,
    /// ALS regularisation.
    pub regularization: f32,
    /// ALS confidence c = 1 + alpha · weight.
    pub alpha: f32,
    /// Item-item neighbours kept per item.
    pub neighbours: usize,
    /// Item-item popularity damping (0.5 = cosine).
    pub damping: f32,
    /// Item-item recency decay: an interaction's weight halves every this many days before the
    /// newest training interaction (None = every interaction counts 1).
    pub half_life_days: Option<f64>,
    /// MMR λ of the diversified list (1 = no diversification).
    pub mmr_lambda: f32,
    /// At most this many items of one category in a diversified list (0 = no cap).
    pub category_cap: usize,
    /// Seed of ALS's initial factors.
    pub seed: u64,
}

impl Default for RecommendSpec {
    fn default() -> RecommendSpec {
        RecommendSpec {
            weights: EventWeights::default(),
            factors: 64,
            iterations: 15,
            regularization: 0.01,
            alpha: 1.0,
            neighbours: 50,
            damping: 0.5,
            half_life_days: None,
            mmr_lambda: 0.7,
            category_cap: 0,
            seed: 42,
        }
    }
}

impl RecommendSpec {
    fn als(&self) -> AlsParams {
        AlsParams {
            factors: self.factors,
            iterations: self.iterations,
            regularization: self.regularization,
            alpha: self.alpha,
            cg_steps: 3,
            seed: self.seed,
        }
    }
}

/// One interaction read from the workspace.
struct Row {
    user: u32,
    item: u32,
    ts: i64,
    weight: f32,
    purchase: bool,
    /// A product view.
    view: bool,
    /// Channel index (u32::MAX = none).
    channel: u32,
}

/// Interactions of the workspace with dense ids.
struct Loaded {
    users: Vec<String>,
    items: Vec<String>,
    rows: Vec<Row>,
    category: Vec<u32>,
    categories: Vec<String>,
    channels: Vec<String>,
}

async fn load(ws: &Workspace, w: &EventWeights) -> Result<Loaded> {
    let (ctx, _) = query::context(ws).await?;
    let lines = query::count(&ctx, "SELECT count(*) FROM order_items").await? > 0;
    let purchases = if lines {
        format!(
            "SELECT o.user_id AS u, i.item_id AS it, CAST(o.ts AS BIGINT) AS t, 'p' AS k, o.channel AS ch \
             FROM order_items i JOIN orders o ON o.order_id = i.order_id \
             WHERE o.{PAID} AND o.user_id IS NOT NULL AND o.ts IS NOT NULL AND i.quantity > 0"
        )
    } else {
        "SELECT user_id AS u, item_id AS it, CAST(ts AS BIGINT) AS t, 'p' AS k, channel AS ch FROM events \
         WHERE event = 'order' AND user_id IS NOT NULL AND item_id IS NOT NULL"
            .into()
    };
    let q = format!(
        "{purchases} UNION ALL SELECT coalesce(user_id, anonymous_id) AS u, item_id AS it, CAST(ts AS BIGINT) AS t, \
           CASE event WHEN 'product_view' THEN 'v' WHEN 'favorite' THEN 'f' ELSE 'c' END AS k, channel AS ch FROM events \
         WHERE item_id IS NOT NULL AND coalesce(user_id, anonymous_id) IS NOT NULL \
           AND event IN ('product_view', 'favorite', 'add_to_cart')"
    );
    let mut uid: FxHashMap<Box<str>, u32> = FxHashMap::default();
    let mut iid: FxHashMap<Box<str>, u32> = FxHashMap::default();
    let (mut users, mut items, mut rows) = (Vec::new(), Vec::new(), Vec::new());
    let mut cid_ch: FxHashMap<Box<str>, u32> = FxHashMap::default();
    let mut channels: Vec<String> = Vec::new();
    let mut stream = ctx.sql(&q).await?.execute_stream().await?;
    let intern = |map: &mut FxHashMap<Box<str>, u32>, names: &mut Vec<String>, s: &str| -> u32 {
        if let Some(&k) = map.get(s) {
            return k;
        }
        let k = names.len() as u32;
        map.insert(s.into(), k);
        names.push(s.to_string());
        k
    };
    while let Some(b) = stream.next().await {
        let b = b?;
        let (u, it, t, k, ch) = (
            strings(b.column(0))?,
            strings(b.column(1))?,
            ints(b.column(2))?,
            strings(b.column(3))?,
            strings(b.column(4))?,
        );
        for (i, &ts) in t.iter().enumerate() {
            let (weight, purchase) = match k.value(i) {
                "p" => (w.purchase, true),
                "v" => (w.view, false),
                "f" => (w.favorite, false),
                _ => (w.cart, false),
            };
            let view = k.value(i) == "v";
            rows.push(Row {
                view,
                user: intern(&mut uid, &mut users, u.value(i)),
                item: intern(&mut iid, &mut items, it.value(i)),
                ts,
                weight,
                purchase,
                channel: if ch.is_null(i) {
                    u32::MAX
                } else {
                    intern(&mut cid_ch, &mut channels, ch.value(i))
                },
            });
        }
    }
    let (ur, ir) = (label_order(&mut users), label_order(&mut items));
    for r in &mut rows {
        r.user = ur[r.user as usize];
        r.item = ir[r.item as usize];
    }
    for v in iid.values_mut() {
        *v = ir[*v as usize];
    }
    // Categories of the items (products.category, else the events' category).
    let (_, batches) = query::sql(
        ws,
        "SELECT item_id, max(category) FROM (SELECT item_id, category FROM products WHERE category IS NOT NULL \
         UNION ALL SELECT item_id, category FROM events WHERE item_id IS NOT NULL AND category IS NOT NULL) GROUP BY 1",
    )
    .await?;
    let mut category = vec![u32::MAX; items.len()];
    let mut cid: FxHashMap<Box<str>, u32> = FxHashMap::default();
    let mut categories = Vec::new();
    for b in &batches {
        let (it, c) = (strings(b.column(0))?, strings(b.column(1))?);
        for i in 0..b.num_rows() {
            if let Some(&k) = iid.get(it.value(i)) {
                category[k as usize] = intern(&mut cid, &mut categories, c.value(i));
            }
        }
    }
    Ok(Loaded {
        users,
        items,
        rows,
        category,
        categories,
        channels,
    })
}

/// Item-to-item neighbours from the rows kept, binary or with recency decay.
fn item_item(l: &Loaded, spec: &RecommendSpec, keep: impl Fn(&Row) -> bool) -> ItemItem {
    match spec.half_life_days {
        None => ItemItem::fit(&matrix(l, keep), spec.neighbours, spec.damping),
        Some(h) => {
            let newest = l
                .rows
                .iter()
                .filter(|r| keep(r))
                .map(|r| r.ts)
                .max()
                .unwrap_or(0);
            let m = Interactions::new(
                l.users.len(),
                l.items.len(),
                l.rows
                    .iter()
                    .filter(|r| keep(r))
                    .map(|r| {
                        let age = (newest - r.ts) as f64 / 86_400_000_000.0;
                        (r.user, r.item, 0.5f64.powf(age / h.max(1e-9)) as f32)
                    })
                    .collect(),
            );
            ItemItem::fit_weighted(&m, spec.neighbours, spec.damping)
        }
    }
}

fn matrix(l: &Loaded, keep: impl Fn(&Row) -> bool) -> Interactions {
    Interactions::new(
        l.users.len(),
        l.items.len(),
        l.rows
            .iter()
            .filter(|r| keep(r))
            .map(|r| (r.user, r.item, r.weight))
            .collect(),
    )
}

/// Cosine similarity of two items over their users (binary), from sorted user lists.
fn cosine(m: &Interactions, a: u32, b: u32) -> f64 {
    let (ua, _) = m.item(a as usize);
    let (ub, _) = m.item(b as usize);
    if ua.is_empty() || ub.is_empty() {
        return 0.0;
    }
    let (mut i, mut j, mut co) = (0, 0, 0usize);
    while i < ua.len() && j < ub.len() {
        match ua[i].cmp(&ub[j]) {
            std::cmp::Ordering::Less => i += 1,
            std::cmp::Ordering::Greater => j += 1,
            std::cmp::Ordering::Equal => {
                co += 1;
                i += 1;
                j += 1;
            }
        }
    }
    co as f64 / ((ua.len() * ub.len()) as f64).sqrt()
}
