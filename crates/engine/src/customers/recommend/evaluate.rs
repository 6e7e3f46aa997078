//! The offline evaluation of the recommenders on a temporal split.

use std::collections::BTreeSet;
use std::time::Instant;

use rustc_hash::FxHashMap;
use serde::Serialize;
use shoplens_models::recommend::{
    Als, Interactions, ItemItem, list_metrics, mmr, popularity, top_items,
};

use crate::error::{Error, Result};
use crate::storage::workspace::Workspace;

use super::*;

/// One model's offline scores.
#[derive(Debug, Clone, Serialize, schemars::JsonSchema)]
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
#[derive(Debug, Clone, Serialize, schemars::JsonSchema)]
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
