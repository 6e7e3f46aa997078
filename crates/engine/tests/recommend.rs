//! Recommendations on Online Retail with a temporal split: ALS and item-item beat the popularity
//! baseline, and the baseline's figures equal an independent computation from SQL.
#![allow(
    clippy::unwrap_used,
    clippy::expect_used,
    reason = "test helpers fail loudly"
)]

mod common;

use std::collections::{BTreeMap, BTreeSet};

use shoplens_engine::customers::recommend::{RecommendSpec, evaluate};

#[tokio::test]
async fn online_retail_models_beat_popularity_and_the_baseline_reconciles() {
    let (_d, ws, _) = common::ingest_preset(
        "online-retail",
        &[common::data("online_retail/online_retail.csv.gz")],
    );
    // 2011-11-01 00:00 Europe/London (GMT in November).
    let split = chrono::DateTime::parse_from_rfc3339("2011-11-01T00:00:00Z")
        .unwrap()
        .timestamp_micros();
    let spec = RecommendSpec {
        iterations: 10,
        ..RecommendSpec::default()
    };
    let r = evaluate(&ws, &spec, split, 10).await.unwrap();
    let m = |name: &str| r.models.iter().find(|x| x.model == name).unwrap();
    let pop = m("popularity");
    for model in ["als", "item_item"] {
        assert!(
            m(model).recall_at_k > 1.5 * pop.recall_at_k,
            "{model} {} vs popularity {}",
            m(model).recall_at_k,
            pop.recall_at_k
        );
        assert!(m(model).ndcg_at_k > pop.ndcg_at_k);
    }
    // MMR lowers intra-list similarity at a small cost in recall.
    assert!(m("als_mmr").intra_list_similarity < m("als").intra_list_similarity);
    assert!(m("als_mmr").recall_at_k > 0.9 * m("als").recall_at_k);
    // The same seed gives the same figures.
    let again = evaluate(&ws, &spec, split, 10).await.unwrap();
    assert_eq!(again.models[2].recall_at_k, m("als").recall_at_k);

    // Independent: purchases = lines of paid invoices with a customer and quantity > 0.
    let rows = common::rows(&ws, "SELECT o.user_id, i.item_id, CAST(o.ts < TIMESTAMP '2011-11-01T00:00:00Z' AS VARCHAR) \
        FROM order_items i JOIN orders o ON o.order_id = i.order_id WHERE o.status IN ('completed', 'paid') \
        AND o.user_id IS NOT NULL AND i.quantity > 0").await;
    let (mut before, mut after): (
        BTreeMap<String, BTreeSet<String>>,
        BTreeMap<String, BTreeSet<String>>,
    ) = Default::default();
    for row in &rows {
        let f: Vec<&str> = row.split('|').collect();
        let side = if f[2] == "true" {
            &mut before
        } else {
            &mut after
        };
        side.entry(f[0].into()).or_default().insert(f[1].into());
    }
    // Popularity: distinct buyers before the split (no events in this data), ties by item id.
    let mut buyers: BTreeMap<&str, usize> = BTreeMap::new();
    for items in before.values() {
        for i in items {
            *buyers.entry(i.as_str()).or_default() += 1;
        }
    }
    let mut ranked: Vec<(&str, usize)> = buyers.into_iter().collect();
    ranked.sort_by(|a, b| b.1.cmp(&a.1).then(a.0.cmp(b.0)));
    let (mut users, mut recall, mut precision) = (0usize, 0.0, 0.0);
    for (u, items) in &after {
        let Some(b) = before.get(u) else { continue };
        let rel: BTreeSet<&String> = items.iter().filter(|i| !b.contains(*i)).collect();
        if rel.is_empty() {
            continue;
        }
        users += 1;
        let list: Vec<&str> = ranked
            .iter()
            .map(|x| x.0)
            .filter(|i| !b.contains(*i))
            .take(10)
            .collect();
        let hits = list
            .iter()
            .filter(|i| rel.iter().any(|r| r.as_str() == **i))
            .count();
        recall += hits as f64 / rel.len() as f64;
        precision += hits as f64 / 10.0;
    }
    assert_eq!(r.test_users as usize, users);
    assert!(
        (pop.recall_at_k - recall / users as f64).abs() < 1e-12,
        "{} vs {}",
        pop.recall_at_k,
        recall / users as f64
    );
    assert!((pop.precision_at_k - precision / users as f64).abs() < 1e-12);

    // Serving: a known buyer gets items they have not bought; an unknown id gets the cold-start
    // list; similar items come best first.
    use shoplens_engine::customers::recommend::{Basis, ColdStart, ModelKind, Served};
    let served = Served::fit(&ws, &spec, ModelKind::ItemItem).await.unwrap();
    let (buyer, items) = before.iter().next().unwrap();
    let list = served.for_user(buyer, 10, ModelKind::ItemItem, true, &ColdStart::default());
    assert!(!list.cold_start && list.items.len() == 10);
    assert!(list.items.iter().all(|i| !items.contains(&i.item_id)));
    let cold = served.for_user(
        "no-such-user",
        5,
        ModelKind::ItemItem,
        false,
        &ColdStart::default(),
    );
    assert!(cold.cold_start && cold.items.len() == 5);
    let (fresh, similar) = served.similar("85123A", 5, Basis::All).unwrap();
    let (_, bought_with) = served.similar("85123A", 5, Basis::Bought).unwrap();
    assert_eq!(bought_with.len(), 5, "online retail holds purchases only");
    assert!(!fresh && similar.len() == 5);
    assert!(similar.windows(2).all(|w| w[0].score >= w[1].score));
}
