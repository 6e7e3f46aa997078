//! Goods analyses: association rules equal pyfim's (Borgelt's implementation) on groceries and
//! online retail at several thresholds.
#![allow(
    clippy::unwrap_used,
    clippy::expect_used,
    reason = "test helpers fail loudly"
)]

mod common;

use std::collections::HashMap;
use std::io::Read;

use serde::Deserialize;
use shoplens_engine::Workspace;
use shoplens_engine::baskets::{BasketSpec, basket};
use shoplens_engine::models::baskets::Threshold;

#[derive(Deserialize)]
struct FimRule {
    antecedent: Vec<String>,
    consequent: Vec<String>,
    support: f64,
    confidence: f64,
    lift: f64,
}

#[derive(Deserialize)]
struct FimSet {
    data: String,
    min_support: f64,
    min_confidence: f64,
    baskets: u64,
    rules: Vec<FimRule>,
}

/// Rule sets computed by pyfim from the raw files (scripts/basket_fim.py).
fn fim_sets() -> Vec<FimSet> {
    let path = concat!(
        env!("CARGO_MANIFEST_DIR"),
        "/tests/fixtures/basket_rules_fim.json.gz"
    );
    let mut text = String::new();
    flate2::read::GzDecoder::new(std::fs::File::open(path).unwrap())
        .read_to_string(&mut text)
        .unwrap();
    serde_json::from_str(&text).unwrap()
}

async fn same_rules_as_fim(ws: &Workspace, set: &FimSet) {
    let spec = BasketSpec::new(
        Threshold::from_f64(set.min_support).unwrap(),
        Threshold::from_f64(set.min_confidence).unwrap(),
    );
    let r = basket(ws, &spec).await.unwrap();
    let what = format!("{} {} {}", set.data, set.min_support, set.min_confidence);
    assert_eq!(r.baskets, set.baskets, "{what}: baskets");
    assert_eq!(r.rules.len(), set.rules.len(), "{what}: rule count");
    let ours: HashMap<(Vec<String>, Vec<String>), _> = r
        .rules
        .iter()
        .map(|x| ((x.antecedent.clone(), x.consequent.clone()), x))
        .collect();
    for f in &set.rules {
        let o = ours
            .get(&(f.antecedent.clone(), f.consequent.clone()))
            .unwrap_or_else(|| panic!("{what}: missing {:?} → {:?}", f.antecedent, f.consequent));
        for (name, a, b) in [
            ("support", o.support, f.support),
            ("confidence", o.confidence, f.confidence),
            ("lift", o.lift, f.lift),
        ] {
            assert!(
                (a - b).abs() <= 1e-9 * b.abs().max(1.0),
                "{what}: {name} of {:?} → {:?}: {a} vs {b}",
                f.antecedent,
                f.consequent
            );
        }
        // The measures pyfim does not report, from their definitions.
        let sc = f.confidence / f.lift;
        assert!((o.leverage - (f.support - f.support / f.confidence * sc)).abs() < 1e-9);
        match o.conviction {
            Some(c) => assert!((c - (1.0 - sc) / (1.0 - f.confidence)).abs() < 1e-6 * c),
            None => assert_eq!(o.count, o.antecedent_count),
        }
    }
}

#[tokio::test]
async fn groceries_rules_equal_pyfim() {
    let (_d, ws, _) =
        common::ingest_preset("groceries", &[common::data("groceries/groceries.csv")]);
    let sets = fim_sets();
    let mut checked = 0;
    for set in sets.iter().filter(|s| s.data == "groceries") {
        same_rules_as_fim(&ws, set).await;
        checked += 1;
    }
    assert_eq!(checked, 3);
    // The textbook figure: 5,668 rules at support 0.001 and confidence 0.5.
    assert_eq!(
        sets.iter()
            .find(|s| s.data == "groceries" && s.min_support == 0.001)
            .unwrap()
            .rules
            .len(),
        5668
    );
}

#[tokio::test]
async fn online_retail_rules_equal_pyfim() {
    let (_d, ws, _) = common::ingest_preset(
        "online-retail",
        &[common::data("online_retail/online_retail.csv.gz")],
    );
    let sets = fim_sets();
    let mut checked = 0;
    for set in sets.iter().filter(|s| s.data == "online_retail") {
        same_rules_as_fim(&ws, set).await;
        checked += 1;
    }
    assert_eq!(checked, 2);
}
