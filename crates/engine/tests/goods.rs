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
use shoplens_engine::goods::baskets::{BasketSpec, basket};
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

/// Online Retail: the product matrix and returns reconcile with the raw invoice lines — units and
/// revenue of sale invoices, returned units of cancellation (`C…`) invoices — and no margin is
/// invented without costs.
#[tokio::test]
async fn online_retail_products_and_returns_reconcile_with_the_raw_file() {
    use shoplens_engine::goods::{MatrixSpec, ReturnsSpec, product_matrix, returns};
    let path = common::data("online_retail/online_retail.csv.gz");
    let (_d, ws, _) = common::ingest_preset("online-retail", std::slice::from_ref(&path));
    // The raw file, read here with the csv crate.
    let mut rd = csv::Reader::from_reader(flate2::read::GzDecoder::new(
        std::fs::File::open(&path).unwrap(),
    ));
    let (mut sold, mut returned) = (HashMap::<String, i64>::new(), HashMap::<String, i64>::new());
    let mut revenue = 0.0;
    let (mut sale_invoices, mut credit_notes) = (
        std::collections::HashSet::new(),
        std::collections::HashSet::new(),
    );
    for rec in rd.records() {
        let rec = rec.unwrap();
        let (inv, code, qty, price) = (
            &rec[0],
            &rec[1],
            rec[3].parse::<i64>().unwrap(),
            rec[5].parse::<f64>().unwrap(),
        );
        if inv.starts_with('C') {
            *returned.entry(code.into()).or_default() -= qty;
            credit_notes.insert(inv.to_string());
        } else if !inv.starts_with('A') && qty > 0 {
            *sold.entry(code.into()).or_default() += qty;
            revenue += qty as f64 * price;
            sale_invoices.insert(inv.to_string());
        }
    }
    let m = product_matrix(&ws, &MatrixSpec::default()).await.unwrap();
    assert!(!m.has_costs && m.items_without_cost == m.items.len() as u64);
    assert!(
        m.items
            .iter()
            .all(|r| r.margin_rate.is_none() && r.quadrant.is_none())
    );
    assert_eq!(m.total.units, sold.values().sum::<i64>());
    assert!(
        (m.total.revenue - revenue).abs() < 1e-6 * revenue,
        "{} vs {revenue}",
        m.total.revenue
    );
    assert_eq!(m.total.orders as usize, sale_invoices.len());
    assert_eq!(m.items.len(), sold.len());
    for r in &m.items {
        assert_eq!(r.units, sold[&r.key], "{}", r.key);
    }
    let rt = returns(&ws, &ReturnsSpec::default()).await.unwrap();
    assert_eq!(rt.total.returned_units, returned.values().sum::<i64>());
    assert_eq!(rt.total.orders_with_return as usize, credit_notes.len());
    assert_eq!(rt.total.orders as usize, sale_invoices.len());
    for r in &rt.rows {
        assert_eq!(
            r.returned_units,
            returned.get(&r.key).copied().unwrap_or(0),
            "{}",
            r.key
        );
        assert_eq!(r.units, sold.get(&r.key).copied().unwrap_or(0), "{}", r.key);
    }
}

/// Women's clothing reviews: good-review rate (≥ 4 stars) by division, department and class equals
/// a count over the raw file.
#[tokio::test]
async fn clothing_reviews_good_rate_by_division_department_and_class() {
    use shoplens_engine::goods::{ReturnsBy, ReturnsSpec, returns};
    let path = common::data("womens_clothing_reviews/Womens Clothing E-Commerce Reviews.csv");
    let (_d, ws, _) = common::ingest_preset("womens-clothing-reviews", std::slice::from_ref(&path));
    let mut rd = csv::Reader::from_path(&path).unwrap();
    let header: Vec<String> = rd.headers().unwrap().iter().map(str::to_string).collect();
    let col = |name: &str| header.iter().position(|h| h == name).unwrap();
    let (rating, recs) = (
        col("Rating"),
        rd.records().map(Result::unwrap).collect::<Vec<_>>(),
    );
    for (flag, column) in [
        ("division", "Division Name"),
        ("department", "Department Name"),
        ("class", "Class Name"),
    ] {
        let c = col(column);
        let mut want: HashMap<String, (i64, i64)> = HashMap::new();
        for r in &recs {
            let key = if r[c].is_empty() {
                "(none)".to_string()
            } else {
                r[c].to_string()
            };
            let e = want.entry(key).or_default();
            e.0 += 1;
            e.1 += i64::from(r[rating].parse::<i64>().unwrap() >= 4);
        }
        let spec = ReturnsSpec {
            by: ReturnsBy::Attribute(flag.into()),
            ..ReturnsSpec::default()
        };
        let got = returns(&ws, &spec).await.unwrap();
        assert_eq!(got.rows.len(), want.len(), "{column}");
        for r in &got.rows {
            let (n, good) = want[&r.key];
            assert_eq!((r.reviews, r.good_reviews), (n, good), "{column} {}", r.key);
            assert!((r.good_review_rate.unwrap() - good as f64 / n as f64).abs() < 1e-12);
        }
    }
    // General vs Petite: the size-type split the data set is known for.
    let spec = ReturnsSpec {
        by: ReturnsBy::Attribute("Division Name".into()),
        ..ReturnsSpec::default()
    };
    let got = returns(&ws, &spec).await.unwrap();
    assert!(
        got.rows.iter().any(|r| r.key == "General")
            && got.rows.iter().any(|r| r.key == "General Petite")
    );
}

/// Complete Journey: per campaign, the redeeming households, their coupon discounts on the
/// redemption days and their revenue during the campaign vs the equally long window before it
/// equal a computation over the raw files.
#[tokio::test]
async fn completejourney_campaigns_reconcile_with_the_raw_files() {
    use chrono::NaiveDate;
    use std::collections::{BTreeMap, HashSet};
    let dir = common::data("completejourney");
    let files: Vec<_> = [
        "transactions_hh10pct.csv",
        "campaign_descriptions.csv",
        "campaigns.csv",
        "coupon_redemptions.csv",
    ]
    .iter()
    .map(|f| dir.join(f))
    .collect();
    let (_d, ws, _) = common::ingest_preset("completejourney", &files);
    let day = |s: &str| NaiveDate::parse_from_str(&s[..10], "%Y-%m-%d").unwrap();
    // Baskets: household, day of the earliest line, sales, coupon discounts.
    let mut baskets: BTreeMap<String, (String, String, f64, f64)> = BTreeMap::new();
    let mut rd = csv::Reader::from_path(&files[0]).unwrap();
    for r in rd.records() {
        let r = r.unwrap();
        let e = baskets
            .entry(r[2].to_string())
            .or_insert_with(|| (r[0].to_string(), r[10].to_string(), 0.0, 0.0));
        if r[10] < *e.1 {
            e.1 = r[10].to_string();
        }
        e.2 += r[5].parse::<f64>().unwrap();
        e.3 += r[7].parse::<f64>().unwrap() + r[8].parse::<f64>().unwrap();
    }
    // Discounts: the product matrix's line discounts equal the raw lines' retail, coupon and
    // coupon-match discounts (lines with quantity > 0; no costs, so no margin).
    let mut raw_discounts = 0.0;
    for r in csv::Reader::from_path(&files[0]).unwrap().records() {
        let r = r.unwrap();
        if r[4].parse::<i64>().unwrap() > 0 {
            raw_discounts += (6..9).map(|k| r[k].parse::<f64>().unwrap()).sum::<f64>();
        }
    }
    let m = shoplens_engine::goods::product_matrix(&ws, &Default::default())
        .await
        .unwrap();
    assert!(
        (m.total.discounts - raw_discounts).abs() < 1e-6 * raw_discounts.abs().max(1.0),
        "{} vs {raw_discounts}",
        m.total.discounts
    );
    assert!(!m.has_costs);
    let households: HashSet<&str> = baskets.values().map(|b| b.0.as_str()).collect();
    let mut redeemed: BTreeMap<String, HashSet<(String, NaiveDate)>> = BTreeMap::new();
    for r in csv::Reader::from_path(&files[3]).unwrap().records() {
        let r = r.unwrap();
        if households.contains(&r[0]) {
            redeemed
                .entry(r[2].to_string())
                .or_default()
                .insert((r[0].to_string(), day(&r[3])));
        }
    }
    let mut windows: BTreeMap<String, (NaiveDate, NaiveDate)> = BTreeMap::new();
    for r in csv::Reader::from_path(&files[1]).unwrap().records() {
        let r = r.unwrap();
        windows.insert(r[0].to_string(), (day(&r[2]), day(&r[3])));
    }
    let report = shoplens_engine::traffic::campaigns(&ws).await.unwrap();
    assert!(!report.has_costs);
    let mut checked = 0;
    for (c, pairs) in &redeemed {
        let got = report
            .campaigns
            .iter()
            .find(|x| &x.campaign_id == c)
            .unwrap();
        let redeemers: HashSet<&str> = pairs.iter().map(|p| p.0.as_str()).collect();
        assert_eq!(got.redeemers as usize, redeemers.len(), "campaign {c}");
        let (start, end) = windows[c];
        let len = (end - start).num_days() + 1;
        let before_start = start - chrono::Days::new(len as u64);
        let (mut coupon, mut during, mut before, mut orders) = (0.0, 0.0, 0.0, 0);
        for (h, ts, sales, cd) in baskets.values() {
            let d = day(ts);
            if pairs.contains(&(h.clone(), d)) {
                coupon += cd;
                orders += 1;
            }
            if redeemers.contains(h.as_str()) {
                if (start..=end).contains(&d) {
                    during += sales;
                } else if (before_start..start).contains(&d) {
                    before += sales;
                }
            }
        }
        let close = |a: f64, b: f64| (a - b).abs() < 1e-6 * b.abs().max(1.0);
        assert_eq!(got.orders, orders, "campaign {c} orders");
        assert!(
            close(got.coupon_discount.unwrap_or(0.0), coupon),
            "campaign {c} coupon {:?} vs {coupon}",
            got.coupon_discount
        );
        assert!(close(got.discount_cost, coupon), "campaign {c}");
        assert!(
            close(got.redeemer_revenue_during, during),
            "campaign {c} during {} vs {during}",
            got.redeemer_revenue_during
        );
        assert!(
            close(got.redeemer_revenue_before, before),
            "campaign {c} before {} vs {before}",
            got.redeemer_revenue_before
        );
        assert!(got.roi.is_none() && got.gross_margin.is_none());
        checked += 1;
    }
    assert!(checked >= 10, "{checked} campaigns with redemptions");
}
