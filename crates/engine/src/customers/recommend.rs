//! Recommendations from the workspace: interactions weighted by event type, popularity,
//! item-to-item and ALS models, MMR diversity, per-user and per-item lists, and the offline
//! evaluation on a temporal split. Definitions: docs/metrics.md, "Recommendations".

use std::collections::BTreeSet;
use std::time::Instant;

use datafusion::arrow::array::Array;
use futures::StreamExt;
use rayon::prelude::*;
use rustc_hash::FxHashMap;
use serde::Serialize;
use shoplens_models::recommend::{
    Als, AlsParams, Interactions, ItemItem, list_metrics, mmr, popularity, top_items,
};

use crate::error::{Error, Result};
use crate::query;
use crate::sql::{PAID, ints, label_order, strings};
use crate::storage::workspace::Workspace;

/// Weight of each kind of interaction (view < cart < order).
#[derive(Debug, Clone, Copy, Serialize)]
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
#[derive(Debug, Clone, Serialize)]
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

/// One model's offline scores.
#[derive(Debug, Clone, Serialize)]
pub struct ModelReport {
    /// popularity, item_item, als or als_mmr.
    pub model: String,
    /// Mean recall@k over test users.
    pub recall_at_k: f64,
    /// Mean precision@k.
    pub precision_at_k: f64,
    /// Mean NDCG@k.
    pub ndcg_at_k: f64,
    /// Mean average precision@k.
    pub map_at_k: f64,
    /// Share of test users with a hit.
    pub hit_rate: f64,
    /// Distinct items recommended / items in the training data.
    pub coverage: f64,
    /// Mean pairwise co-occurrence cosine within a list (lower = more varied).
    pub intra_list_similarity: f64,
    /// 1 − intra-list similarity.
    pub intra_list_diversity: f64,
    /// Mean −log2(share of training users who interacted with a recommended item).
    pub novelty: f64,
    /// Seconds to fit the model.
    pub fit_seconds: f64,
}

/// The offline evaluation.
#[derive(Debug, Clone, Serialize)]
pub struct EvaluationReport {
    /// Every model, the popularity baseline first.
    pub models: Vec<ModelReport>,
    /// Users evaluated: a purchase before the split and a new item bought after it.
    pub test_users: u64,
    /// List length.
    pub k: usize,
    /// The split instant (µs) as text in UTC.
    pub split_at: String,
    /// Users and items with training interactions, and stored pairs.
    pub train_users: u64,
    /// Items with training interactions.
    pub train_items: u64,
    /// Training (user, item) pairs.
    pub train_interactions: u64,
    /// Parameters used.
    pub params: RecommendSpec,
}

/// A temporal split: training interactions before the split, the purchases among them, and per
/// test user (ascending) the new items bought from the split on.
pub struct SplitData {
    /// Every weighted interaction before the split.
    pub train: Interactions,
    /// Purchases before the split (what lists exclude).
    pub bought: Interactions,
    /// Test users and their relevant items (ascending).
    pub test: Vec<(u32, Vec<u32>)>,
    /// Category index per item (u32::MAX = none).
    pub category: Vec<u32>,
    /// Item-to-item neighbours of the training interactions (binary or decayed, as the spec says).
    pub item_item: ItemItem,
    /// Seconds the item-to-item fit took.
    pub item_item_seconds: f64,
}

/// Splits the workspace's interactions at `split` (µs).
pub async fn split_data(ws: &Workspace, spec: &RecommendSpec, split: i64) -> Result<SplitData> {
    let l = load(ws, &spec.weights).await?;
    let t = Instant::now();
    let ii = item_item(&l, spec, |r| r.ts < split);
    let item_item_seconds = t.elapsed().as_secs_f64();
    let train = matrix(&l, |r| r.ts < split);
    let bought = matrix(&l, |r| r.ts < split && r.purchase);
    let mut after: FxHashMap<u32, BTreeSet<u32>> = FxHashMap::default();
    for r in l.rows.iter().filter(|r| r.ts >= split && r.purchase) {
        after.entry(r.user).or_default().insert(r.item);
    }
    let mut test: Vec<(u32, Vec<u32>)> = after
        .into_iter()
        .filter_map(|(u, items)| {
            let before = bought.user(u as usize).0;
            if before.is_empty() {
                return None;
            }
            let rel: Vec<u32> = items
                .into_iter()
                .filter(|i| before.binary_search(i).is_err())
                .collect();
            (!rel.is_empty()).then_some((u, rel))
        })
        .collect();
    test.sort_by_key(|t| t.0);
    if test.is_empty() {
        return Err(Error::Invalid(
            "no test users: nobody bought something new after the split who had bought before it; move --split-at".into(),
        ));
    }
    Ok(SplitData {
        train,
        bought,
        test,
        category: l.category,
        item_item: ii,
        item_item_seconds,
    })
}

/// Trains on interactions before `split` (µs) and scores top-k lists against the new items each
/// user bought from the split on, beside the popularity baseline.
pub async fn evaluate(
    ws: &Workspace,
    spec: &RecommendSpec,
    split: i64,
    k: usize,
) -> Result<EvaluationReport> {
    if k == 0 {
        return Err(Error::Invalid("--k must be at least 1".into()));
    }
    let SplitData {
        train,
        bought,
        test,
        category,
        item_item: ii,
        item_item_seconds: ii_s,
    } = split_data(ws, spec, split).await?;
    let n_items = train.n_items();
    let train_items = train.item_users();
    let active_items = train_items.iter().filter(|&&n| n > 0).count();
    let train_users = (0..train.n_users())
        .filter(|&u| !train.user(u).0.is_empty())
        .count();
    let mut models = Vec::new();
    // Popularity.
    let t = Instant::now();
    let pop = popularity(&train);
    let pop_s = t.elapsed().as_secs_f64();
    let lists: Vec<Vec<u32>> = test
        .par_iter()
        .map(|(u, _)| {
            let ex = bought.user(*u as usize).0;
            pop.iter()
                .copied()
                .filter(|i| ex.binary_search(i).is_err())
                .take(k)
                .collect()
        })
        .collect();
    models.push(score(
        "popularity",
        &lists,
        &test,
        &train,
        active_items,
        k,
        pop_s,
    ));
    // Item-item.
    let lists: Vec<Vec<u32>> = test
        .par_iter()
        .map_init(
            || vec![0f32; n_items],
            |buf, (u, _)| {
                ii.scores(train.user(*u as usize).0, buf);
                let ex = bought.user(*u as usize).0;
                let mut list: Vec<u32> = top_items(buf, ex, k)
                    .into_iter()
                    .filter(|x| x.1 > 0.0)
                    .map(|x| x.0)
                    .collect();
                fill_with_popular(&mut list, &pop, ex, k);
                list
            },
        )
        .collect();
    models.push(score(
        "item_item",
        &lists,
        &test,
        &train,
        active_items,
        k,
        ii_s,
    ));
    // ALS, and ALS re-ranked by MMR.
    let t = Instant::now();
    let als = Als::fit(&train, &spec.als());
    let als_s = t.elapsed().as_secs_f64();
    let candidates: Vec<Vec<(u32, f32)>> = test
        .par_iter()
        .map_init(
            || vec![0f32; n_items],
            |buf, (u, _)| {
                als.scores(*u as usize, buf);
                top_items(buf, bought.user(*u as usize).0, (5 * k).max(50))
            },
        )
        .collect();
    let lists: Vec<Vec<u32>> = candidates
        .iter()
        .map(|c| c.iter().take(k).map(|x| x.0).collect())
        .collect();
    models.push(score("als", &lists, &test, &train, active_items, k, als_s));
    let lists: Vec<Vec<u32>> = candidates
        .par_iter()
        .map(|c| {
            mmr(
                c,
                k,
                spec.mmr_lambda,
                spec.category_cap,
                &category,
                |a, b| als.item_similarity(a, b).max(0.0),
            )
        })
        .collect();
    models.push(score(
        "als_mmr",
        &lists,
        &test,
        &train,
        active_items,
        k,
        als_s,
    ));
    Ok(EvaluationReport {
        models,
        test_users: test.len() as u64,
        k,
        split_at: chrono::DateTime::from_timestamp_micros(split)
            .map(|d| d.to_rfc3339())
            .unwrap_or_default(),
        train_users: train_users as u64,
        train_items: active_items as u64,
        train_interactions: train.nnz() as u64,
        params: spec.clone(),
    })
}

/// Tops a short list up with popular items the user has not bought.
fn fill_with_popular(list: &mut Vec<u32>, pop: &[u32], exclude: &[u32], k: usize) {
    for &i in pop {
        if list.len() >= k {
            break;
        }
        if exclude.binary_search(&i).is_err() && !list.contains(&i) {
            list.push(i);
        }
    }
}

fn score(
    model: &str,
    lists: &[Vec<u32>],
    test: &[(u32, Vec<u32>)],
    train: &Interactions,
    active_items: usize,
    k: usize,
    fit_seconds: f64,
) -> ModelReport {
    let n = test.len() as f64;
    let users = train.item_users();
    let n_users = (0..train.n_users())
        .filter(|&u| !train.user(u).0.is_empty())
        .count()
        .max(1) as f64;
    let per: Vec<[f64; 7]> = lists
        .par_iter()
        .zip(test)
        .map(|(list, (_, rel))| {
            let m = list_metrics(list, rel, k);
            let mut sim = 0.0;
            let mut pairs = 0usize;
            for a in 0..list.len() {
                for b in a + 1..list.len() {
                    sim += cosine(train, list[a], list[b]);
                    pairs += 1;
                }
            }
            let ils = if pairs > 0 { sim / pairs as f64 } else { 0.0 };
            let novelty = if list.is_empty() {
                0.0
            } else {
                list.iter()
                    .map(|&i| -((f64::from(users[i as usize]).max(1.0)) / n_users).log2())
                    .sum::<f64>()
                    / list.len() as f64
            };
            [
                m.precision,
                m.recall,
                m.ndcg,
                m.ap,
                f64::from(u8::from(m.hit)),
                ils,
                novelty,
            ]
        })
        .collect();
    let mean = |k: usize| per.iter().map(|x| x[k]).sum::<f64>() / n;
    let distinct: BTreeSet<u32> = lists.iter().flatten().copied().collect();
    let ils = mean(5);
    ModelReport {
        model: model.into(),
        recall_at_k: mean(1),
        precision_at_k: mean(0),
        ndcg_at_k: mean(2),
        map_at_k: mean(3),
        hit_rate: mean(4),
        coverage: distinct.len() as f64 / active_items.max(1) as f64,
        intra_list_similarity: ils,
        intra_list_diversity: 1.0 - ils,
        novelty: mean(6),
        fit_seconds,
    }
}

/// Which model makes a list.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum ModelKind {
    /// Implicit ALS.
    Als,
    /// Item-to-item co-occurrence.
    ItemItem,
    /// Most users.
    Popularity,
}

/// One recommended item.
#[derive(Debug, Clone, Serialize)]
pub struct Recommended {
    /// The item.
    pub item_id: String,
    /// Its category, when known.
    pub category: Option<String>,
    /// The model's score (ALS preference, summed similarity, or users).
    pub score: f64,
    /// Why: "matches the user's history", "with ITEM", "popular", "popular lately" …
    pub reason: String,
}

/// A user's list.
#[derive(Debug, Clone, Serialize)]
pub struct UserList {
    /// The user.
    pub user_id: String,
    /// The model used.
    pub model: ModelKind,
    /// True when the user has no interactions and gets the cold-start list.
    pub cold_start: bool,
    /// The list, best first.
    pub items: Vec<Recommended>,
}

/// Which interactions make items similar.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum Basis {
    /// Every interaction ("bought or viewed together").
    All,
    /// Purchases only ("bought this, also bought").
    Bought,
    /// Product views only ("viewed this, also viewed").
    Viewed,
}

/// What a cold-start list is restricted to.
#[derive(Debug, Clone, Default)]
pub struct ColdStart {
    /// Only interactions in this channel (events.channel, orders.channel).
    pub channel: Option<String>,
    /// Only items of this category.
    pub category: Option<String>,
}

/// Why an item is in a list.
type Reason<'a> = Box<dyn Fn(u32) -> String + 'a>;

/// Models fitted on every interaction, for serving lists.
pub struct Served {
    l: Loaded,
    m: Interactions,
    bought: Interactions,
    pop: Vec<u32>,
    ii: Option<ItemItem>,
    als: Option<Als>,
    spec: RecommendSpec,
    user_index: FxHashMap<String, u32>,
    item_index: FxHashMap<String, u32>,
}

impl Served {
    /// Fits the models a kind of list needs on all data.
    pub async fn fit(ws: &Workspace, spec: &RecommendSpec, model: ModelKind) -> Result<Served> {
        let l = load(ws, &spec.weights).await?;
        let m = matrix(&l, |_| true);
        let bought = matrix(&l, |r| r.purchase);
        let pop = popularity(&m);
        // Item-item serves item-item lists and similar items; ALS lists do not need it.
        let ii = (model != ModelKind::Als).then(|| item_item(&l, spec, |_| true));
        let als = (model == ModelKind::Als).then(|| Als::fit(&m, &spec.als()));
        let user_index = l
            .users
            .iter()
            .enumerate()
            .map(|(i, u)| (u.clone(), i as u32))
            .collect();
        let item_index = l
            .items
            .iter()
            .enumerate()
            .map(|(i, u)| (u.clone(), i as u32))
            .collect();
        Ok(Served {
            l,
            m,
            bought,
            pop,
            ii,
            als,
            spec: spec.clone(),
            user_index,
            item_index,
        })
    }

    fn category(&self, i: u32) -> Option<String> {
        let c = self.l.category[i as usize];
        (c != u32::MAX).then(|| self.l.categories[c as usize].clone())
    }

    fn item(&self, i: u32, score: f64, reason: String) -> Recommended {
        Recommended {
            item_id: self.l.items[i as usize].clone(),
            category: self.category(i),
            score,
            reason,
        }
    }

    /// A user's top-k list: items they have not bought, diversified by MMR when asked; users
    /// without interactions get what is popular lately, within `cold`'s channel and category
    /// (cold start).
    pub fn for_user(
        &self,
        user: &str,
        k: usize,
        model: ModelKind,
        diversify: bool,
        cold: &ColdStart,
    ) -> UserList {
        let n_items = self.l.items.len();
        let known = self
            .user_index
            .get(user)
            .copied()
            .filter(|&u| !self.m.user(u as usize).0.is_empty());
        let Some(u) = known else {
            return UserList {
                user_id: user.to_string(),
                model: ModelKind::Popularity,
                cold_start: true,
                items: self.cold_start(cold, k),
            };
        };
        let ex = self.bought.user(u as usize).0;
        let mut buf = vec![0f32; n_items];
        let (cands, reason_of): (Vec<(u32, f32)>, Reason<'_>) = match (model, &self.als, &self.ii) {
            (ModelKind::Als, Some(als), _) => {
                als.scores(u as usize, &mut buf);
                (
                    top_items(&buf, ex, (5 * k).max(50)),
                    Box::new(|_| "matches the user's history".to_string()),
                )
            }
            (ModelKind::ItemItem, _, Some(ii)) => {
                let held = self.m.user(u as usize).0;
                ii.scores(held, &mut buf);
                let c: Vec<(u32, f32)> = top_items(&buf, ex, (5 * k).max(50))
                    .into_iter()
                    .filter(|x| x.1 > 0.0)
                    .collect();
                (
                    c,
                    Box::new(move |j| {
                        let best = held
                            .iter()
                            .max_by(|&&a, &&b| ii.similarity(a, j).total_cmp(&ii.similarity(b, j)));
                        best.map_or("similar items".into(), |&a| {
                            format!("with {}", self.l.items[a as usize])
                        })
                    }),
                )
            }
            _ => {
                let counts = self.m.item_users();
                let c = self
                    .pop
                    .iter()
                    .filter(|i| ex.binary_search(i).is_err())
                    .take((5 * k).max(50))
                    .map(|&i| (i, counts[i as usize] as f32))
                    .collect();
                (c, Box::new(|_| "popular".to_string()))
            }
        };
        let order: Vec<u32> = if diversify {
            let sim = |a: u32, b: u32| match (&self.als, &self.ii) {
                (Some(als), _) => als.item_similarity(a, b).max(0.0),
                (_, Some(ii)) => ii.similarity(a, b).max(ii.similarity(b, a)),
                _ => 0.0,
            };
            mmr(
                &cands,
                k,
                self.spec.mmr_lambda,
                self.spec.category_cap,
                &self.l.category,
                sim,
            )
        } else {
            cands.iter().take(k).map(|c| c.0).collect()
        };
        let score: FxHashMap<u32, f32> = cands.iter().copied().collect();
        let items = order
            .into_iter()
            .map(|i| {
                self.item(
                    i,
                    f64::from(score.get(&i).copied().unwrap_or(0.0)),
                    reason_of(i),
                )
            })
            .collect();
        UserList {
            user_id: user.to_string(),
            model,
            cold_start: false,
            items,
        }
    }

    /// The cold-start list: items with the most users over the last 30 days of data among
    /// interactions in the channel and items of the category asked for, topped up from all time,
    /// then from everything.
    pub fn cold_start(&self, filter: &ColdStart, k: usize) -> Vec<Recommended> {
        // A name's index in its list; an unknown name matches nothing.
        let index = |names: &[String], name: &str| {
            names
                .iter()
                .position(|x| x == name)
                .map_or(u32::MAX - 1, |p| p as u32)
        };
        let chan = filter
            .channel
            .as_deref()
            .map(|c| index(&self.l.channels, c));
        let cat = filter
            .category
            .as_deref()
            .map(|c| index(&self.l.categories, c));
        let newest = self.l.rows.iter().map(|r| r.ts).max().unwrap_or(0);
        let rank = |since: i64| -> Vec<(u32, usize)> {
            let mut pairs: Vec<(u32, u32)> = self
                .l
                .rows
                .iter()
                .filter(|r| {
                    r.ts > since
                        && chan.is_none_or(|c| r.channel == c)
                        && cat.is_none_or(|c| self.l.category[r.item as usize] == c)
                })
                .map(|r| (r.item, r.user))
                .collect();
            pairs.sort_unstable();
            pairs.dedup();
            let mut counts: Vec<(u32, usize)> = Vec::new();
            for (i, _) in pairs {
                match counts.last_mut() {
                    Some(c) if c.0 == i => c.1 += 1,
                    _ => counts.push((i, 1)),
                }
            }
            counts.sort_by(|a, b| b.1.cmp(&a.1).then(a.0.cmp(&b.0)));
            counts
        };
        let what = match (&filter.channel, &filter.category) {
            (Some(c), Some(g)) => format!(" in {c}, {g}"),
            (Some(c), None) => format!(" in {c}"),
            (None, Some(g)) => format!(" in {g}"),
            (None, None) => String::new(),
        };
        let mut seen = BTreeSet::new();
        let mut out = Vec::new();
        for (list, why) in [
            (
                rank(newest - 30 * 86_400_000_000),
                format!("popular lately{what} (cold start): users in the last 30 days"),
            ),
            (
                rank(i64::MIN),
                format!("popular{what} (cold start): users of all time"),
            ),
        ] {
            for (i, n) in list {
                if out.len() >= k {
                    break;
                }
                if seen.insert(i) {
                    out.push(self.item(i, n as f64, why.clone()));
                }
            }
        }
        let counts = self.m.item_users();
        for &i in &self.pop {
            if out.len() >= k {
                break;
            }
            if seen.insert(i) {
                out.push(self.item(
                    i,
                    f64::from(counts[i as usize]),
                    "popular (cold start)".into(),
                ));
            }
        }
        out
    }

    /// Items like `item` (item-to-item neighbours); an item without neighbours gets the popular
    /// items of its category (cold start). None for an item the workspace does not know.
    pub fn similar(&self, item: &str, k: usize, basis: Basis) -> Option<(bool, Vec<Recommended>)> {
        let i = *self.item_index.get(item)?;
        let own;
        let (ii, verb) = match basis {
            Basis::All => (self.ii.as_ref()?, "bought or viewed"),
            Basis::Bought | Basis::Viewed => {
                own = item_item(&self.l, &self.spec, |r| {
                    if basis == Basis::Bought {
                        r.purchase
                    } else {
                        r.view
                    }
                });
                (
                    &own,
                    if basis == Basis::Bought {
                        "bought"
                    } else {
                        "viewed"
                    },
                )
            }
        };
        let nb = &ii.neighbours[i as usize];
        if !nb.is_empty() {
            return Some((
                false,
                nb.iter()
                    .take(k)
                    .map(|&(j, s)| self.item(j, f64::from(s), format!("{verb} with {item}")))
                    .collect(),
            ));
        }
        let cat = self.l.category[i as usize];
        let counts = self.m.item_users();
        let list = self
            .pop
            .iter()
            .copied()
            .filter(|&j| j != i && (cat == u32::MAX || self.l.category[j as usize] == cat))
            .take(k)
            .map(|j| {
                self.item(
                    j,
                    f64::from(counts[j as usize]),
                    "popular in the category (cold start)".into(),
                )
            })
            .collect();
        Some((true, list))
    }
}

/// Derived tags: a tag applies when the user's affinity share of categories whose name contains
/// one of the words reaches the threshold.
pub const DERIVED_TAGS: &[(&str, &[&str], f64)] = &[
    (
        "new_parent",
        &["baby", "infant", "maternity", "母婴", "婴"],
        0.2,
    ),
    ("beauty_lover", &["beauty", "cosmetic", "美妆", "护肤"], 0.4),
    ("home_maker", &["home", "kitchen", "家居"], 0.4),
];

/// How interest tags are computed.
#[derive(Debug, Clone, Copy)]
pub struct TagSpec {
    /// An interaction's weight halves every this many days before the newest interaction.
    pub half_life_days: f64,
    /// `interest:<category>` when a category's share of the user's affinity reaches this.
    pub min_share: f64,
    /// Tag-based candidate items per user.
    pub candidates: usize,
}

impl Default for TagSpec {
    fn default() -> TagSpec {
        TagSpec {
            half_life_days: 30.0,
            min_share: 0.3,
            candidates: 10,
        }
    }
}

/// A user's interests.
#[derive(Debug, Clone, Serialize)]
pub struct UserTags {
    /// The user.
    pub user_id: String,
    /// Categories by decayed affinity share (top 5).
    pub categories: Vec<(String, f64)>,
    /// Brands by decayed affinity share (top 5).
    pub brands: Vec<(String, f64)>,
    /// Product attributes (`key=value` from products.attributes) by decayed affinity share (top 5).
    pub attributes: Vec<(String, f64)>,
    /// Derived and stored tags, sorted.
    pub tags: Vec<String>,
    /// Tags derived from behaviour (interest:<category> and DERIVED_TAGS), sorted.
    pub derived: Vec<String>,
    /// Tags stored in customers.tags.
    pub stored: Vec<String>,
    /// Popular items of the user's top categories that they have not bought (tag-based candidates).
    pub candidates: Vec<String>,
}

/// Interest tags of users (all users with interactions when `users` is empty).
pub async fn tags(ws: &Workspace, users: &[String], spec: &TagSpec) -> Result<Vec<UserTags>> {
    let l = load(ws, &EventWeights::default()).await?;
    let newest = l.rows.iter().map(|r| r.ts).max().unwrap_or(0);
    // Brands per item (products.brand, else the events').
    let (_, batches) = query::sql(
        ws,
        "SELECT item_id, max(brand) FROM (SELECT item_id, brand FROM products WHERE brand IS NOT NULL \
         UNION ALL SELECT item_id, brand FROM events WHERE item_id IS NOT NULL AND brand IS NOT NULL) GROUP BY 1",
    )
    .await?;
    let item_index: FxHashMap<&str, u32> = l
        .items
        .iter()
        .enumerate()
        .map(|(i, s)| (s.as_str(), i as u32))
        .collect();
    let mut brand: Vec<Option<String>> = vec![None; l.items.len()];
    for b in &batches {
        let (it, br) = (strings(b.column(0))?, strings(b.column(1))?);
        for i in 0..b.num_rows() {
            if let Some(&k) = item_index.get(it.value(i)) {
                brand[k as usize] = Some(br.value(i).to_string());
            }
        }
    }
    // Product attributes as key=value (text and number values).
    let mut attrs: Vec<Vec<String>> = vec![Vec::new(); l.items.len()];
    let (_, batches) = query::sql(
        ws,
        "SELECT item_id, attributes FROM products WHERE attributes IS NOT NULL",
    )
    .await?;
    for b in &batches {
        let (it, a) = (strings(b.column(0))?, strings(b.column(1))?);
        for i in 0..b.num_rows() {
            let (Some(&k), Ok(serde_json::Value::Object(o))) = (
                item_index.get(it.value(i)),
                serde_json::from_str::<serde_json::Value>(a.value(i)),
            ) else {
                continue;
            };
            attrs[k as usize] = o
                .iter()
                .filter_map(|(key, v)| match v {
                    serde_json::Value::String(x) => Some(format!("{key}={x}")),
                    serde_json::Value::Number(x) => Some(format!("{key}={x}")),
                    _ => None,
                })
                .collect();
        }
    }
    // Stored tags.
    let (_, batches) = query::sql(
        ws,
        "SELECT user_id, tags FROM customers WHERE tags IS NOT NULL",
    )
    .await?;
    let mut stored: FxHashMap<String, Vec<String>> = FxHashMap::default();
    for b in &batches {
        let (u, t) = (strings(b.column(0))?, strings(b.column(1))?);
        for i in 0..b.num_rows() {
            if let Ok(v) = serde_json::from_str::<Vec<String>>(t.value(i)) {
                stored.insert(u.value(i).to_string(), v);
            }
        }
    }
    let m = matrix(&l, |_| true);
    let bought = matrix(&l, |r| r.purchase);
    let pop = popularity(&m);
    let wanted: Option<BTreeSet<u32>> = (!users.is_empty()).then(|| {
        let idx: FxHashMap<&str, u32> = l
            .users
            .iter()
            .enumerate()
            .map(|(i, s)| (s.as_str(), i as u32))
            .collect();
        users
            .iter()
            .filter_map(|u| idx.get(u.as_str()).copied())
            .collect()
    });
    let mut cat_aff: FxHashMap<u32, FxHashMap<u32, f64>> = FxHashMap::default();
    let mut brand_aff: FxHashMap<u32, FxHashMap<String, f64>> = FxHashMap::default();
    let mut attr_aff: FxHashMap<u32, FxHashMap<String, f64>> = FxHashMap::default();
    let day = 86_400_000_000f64;
    for r in &l.rows {
        if wanted.as_ref().is_some_and(|w| !w.contains(&r.user)) {
            continue;
        }
        let decay = 0.5f64.powf((newest - r.ts) as f64 / day / spec.half_life_days);
        let w = f64::from(r.weight) * decay;
        let c = l.category[r.item as usize];
        if c != u32::MAX {
            *cat_aff.entry(r.user).or_default().entry(c).or_default() += w;
        }
        if let Some(b) = &brand[r.item as usize] {
            *brand_aff
                .entry(r.user)
                .or_default()
                .entry(b.clone())
                .or_default() += w;
        }
        for a in &attrs[r.item as usize] {
            *attr_aff
                .entry(r.user)
                .or_default()
                .entry(a.clone())
                .or_default() += w;
        }
    }
    let shares = |m: Vec<(String, f64)>| -> Vec<(String, f64)> {
        let total: f64 = m.iter().map(|x| x.1).sum();
        let mut v: Vec<(String, f64)> = m
            .into_iter()
            .map(|(k, x)| (k, if total > 0.0 { x / total } else { 0.0 }))
            .collect();
        v.sort_by(|a, b| b.1.total_cmp(&a.1).then_with(|| a.0.cmp(&b.0)));
        v
    };
    let mut ids: Vec<u32> = match &wanted {
        Some(w) => w.iter().copied().collect(),
        None => (0..l.users.len() as u32).collect(),
    };
    ids.sort_by(|a, b| l.users[*a as usize].cmp(&l.users[*b as usize]));
    let out = ids
        .into_iter()
        .map(|u| {
            let cats = shares(
                cat_aff
                    .get(&u)
                    .map(|m| {
                        m.iter()
                            .map(|(&c, &x)| (l.categories[c as usize].clone(), x))
                            .collect()
                    })
                    .unwrap_or_default(),
            );
            let brands = shares(
                brand_aff
                    .get(&u)
                    .map(|m| m.iter().map(|(b, &x)| (b.clone(), x)).collect())
                    .unwrap_or_default(),
            );
            let attributes = shares(
                attr_aff
                    .get(&u)
                    .map(|m| m.iter().map(|(b, &x)| (b.clone(), x)).collect())
                    .unwrap_or_default(),
            );
            let kept = stored
                .get(&l.users[u as usize])
                .cloned()
                .unwrap_or_default();
            let mut tags: BTreeSet<String> = BTreeSet::new();
            for (c, s) in &cats {
                if *s >= spec.min_share {
                    tags.insert(format!("interest:{c}"));
                }
            }
            for (tag, words, threshold) in DERIVED_TAGS {
                let share: f64 = cats
                    .iter()
                    .filter(|(c, _)| {
                        let c = c.to_lowercase();
                        words.iter().any(|w| c.contains(w))
                    })
                    .map(|x| x.1)
                    .sum();
                if share >= *threshold {
                    tags.insert((*tag).to_string());
                }
            }
            let top: Vec<u32> = cats
                .iter()
                .take(2)
                .filter_map(|(c, _)| l.categories.iter().position(|x| x == c).map(|p| p as u32))
                .collect();
            let held = bought.user(u as usize).0;
            let candidates = pop
                .iter()
                .copied()
                .filter(|&i| {
                    top.contains(&l.category[i as usize]) && held.binary_search(&i).is_err()
                })
                .take(spec.candidates)
                .map(|i| l.items[i as usize].clone())
                .collect();
            let derived: Vec<String> = tags.iter().cloned().collect();
            tags.extend(kept.iter().cloned());
            UserTags {
                user_id: l.users[u as usize].clone(),
                categories: cats.into_iter().take(5).collect(),
                brands: brands.into_iter().take(5).collect(),
                attributes: attributes.into_iter().take(5).collect(),
                tags: tags.into_iter().collect(),
                derived,
                stored: kept,
                candidates,
            }
        })
        .collect();
    Ok(out)
}
