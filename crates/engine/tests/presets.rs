//! Every preset on its real dataset in ../shared/data: read = stored + quarantined, row counts,
//! and values looked up by hand in the raw files.
#![allow(
    clippy::unwrap_used,
    clippy::expect_used,
    reason = "test helpers fail loudly"
)]

mod common;

use common::{data, ingest_preset, scalar};
use shoplens_engine::Workspace;

#[tokio::test]
async fn cdnow_master_orders_and_users() {
    let (_d, ws, s) = ingest_preset("cdnow", &[data("cdnow/CDNOW_master.txt")]);
    let f = &s.files[0];
    assert_eq!((f.read, f.stored, f.quarantined), (69_659, 69_659, 0));
    assert_eq!(scalar(&ws, "SELECT count(*) FROM orders").await, "69659");
    assert_eq!(
        scalar(&ws, "SELECT count(DISTINCT user_id) FROM orders").await,
        "23570"
    );
    // Sum of dollar_value over the raw file (python Decimal): 2,500,315.63.
    assert_eq!(
        scalar(&ws, "SELECT sum(net_amount) FROM orders").await,
        "2500315.6300"
    );
    // Line 2: " 00001 19970101 1 11.77"; ids stay as written.
    assert_eq!(
        scalar(&ws, "SELECT concat(user_id, ' ', units, ' ', net_amount, ' ', to_char(ts, '%Y-%m-%dT%H:%M')) FROM orders WHERE user_id = '00001'").await,
        "00001 1 11.7700 1997-01-01T05:00"
    );
    assert_eq!(s.timezone.as_deref(), Some("America/New_York"));
}

#[tokio::test]
async fn cdnow_sample_without_header() {
    let (_d, ws, s) = ingest_preset("cdnow", &[data("cdnow/CDNOW_sample.txt")]);
    assert_eq!(s.files[0].layout, "sample");
    assert_eq!((s.files[0].read, s.files[0].stored), (6_919, 6_919));
    assert_eq!(
        scalar(&ws, "SELECT count(DISTINCT user_id) FROM orders").await,
        "2357"
    );
    // First line: " 00004 0001 19970101  2   29.33".
    assert_eq!(
        scalar(&ws, "SELECT concat(user_id, ' ', units, ' ', net_amount) FROM orders ORDER BY ts, user_id LIMIT 1").await,
        "00004 2 29.3300"
    );
}

#[tokio::test]
async fn online_retail_orders_lines_cancellations_and_adjustments() {
    let (_d, ws, s) = ingest_preset(
        "online-retail",
        &[data("online_retail/online_retail.csv.gz")],
    );
    let f = &s.files[0];
    assert_eq!((f.read, f.stored, f.quarantined), (541_909, 541_909, 0));
    // Counted with python csv: invoices with a sale or cancellation line; lines; C-invoices.
    assert_eq!(s.tables["orders"], 24_564);
    assert_eq!(s.tables["order_items"], 540_573);
    assert_eq!(s.tables["inventory"], 1_336);
    assert_eq!(
        scalar(
            &ws,
            "SELECT count(*) FROM orders WHERE status = 'cancelled'"
        )
        .await,
        "3836"
    );
    assert_eq!(
        scalar(&ws, "SELECT count(DISTINCT user_id) FROM orders").await,
        "4372"
    );
    assert_eq!(
        scalar(&ws, "SELECT sum(net_amount) FROM orders").await,
        "9747747.9340"
    );
    // Invoice 536365: 7 lines, 139.12 GBP, customer 17850 (written 17850.0), 08:26 London = UTC in winter.
    assert_eq!(
        scalar(&ws, "SELECT concat(user_id, ' ', net_amount, ' ', to_char(ts, '%Y-%m-%dT%H:%M')) FROM orders WHERE order_id = '536365'").await,
        "17850 139.1200 2010-12-01T08:26"
    );
    assert_eq!(
        scalar(
            &ws,
            "SELECT count(*) FROM order_items WHERE order_id = '536365'"
        )
        .await,
        "7"
    );
    // Line 143: C536379,D,Discount,-1,...,27.5,14527.0 → cancelled order, returned 1, quantity 0.
    assert_eq!(
        scalar(&ws, "SELECT concat(o.status, ' ', o.net_amount, ' ', i.quantity, ' ', i.returned_quantity, ' ', i.line_no) FROM orders o JOIN order_items i ON o.order_id = i.order_id WHERE o.order_id = 'C536379'").await,
        "cancelled -27.5000 0 1 143"
    );
    assert_eq!(
        scalar(
            &ws,
            "SELECT count(*) FROM orders WHERE status = 'adjustment'"
        )
        .await,
        "3"
    );
    // Invoices without any CustomerID (python csv): guest orders with a null user.
    assert_eq!(
        scalar(
            &ws,
            "SELECT count(*) FROM orders WHERE user_id IS NULL AND status = 'completed'"
        )
        .await,
        "2189"
    );
}

#[tokio::test]
async fn groceries_baskets() {
    let (_d, ws, s) = ingest_preset("groceries", &[data("groceries/groceries.csv")]);
    assert_eq!((s.files[0].read, s.files[0].stored), (9_835, 9_835));
    assert_eq!(s.tables["order_items"], 43_367);
    assert_eq!(
        scalar(&ws, "SELECT count(DISTINCT item_id) FROM order_items").await,
        "169"
    );
    assert_eq!(
        scalar(
            &ws,
            "SELECT count(DISTINCT order_id) FROM order_items WHERE item_id = 'whole milk'"
        )
        .await,
        "2513"
    );
    // Line 1: citrus fruit,semi-finished bread,margarine,ready soups.
    assert_eq!(
        scalar(&ws, "SELECT string_agg(item_id, ',' ORDER BY line_no) FROM order_items WHERE order_id LIKE '%-1'").await,
        "citrus fruit,semi-finished bread,margarine,ready soups"
    );
}

#[tokio::test]
async fn taobao_events() {
    let (_d, ws, s) = ingest_preset(
        "taobao",
        &[data("taobao_sample/UserBehavior_head_sample.csv")],
    );
    assert_eq!((s.files[0].read, s.files[0].stored), (84_287, 84_287));
    assert_eq!(
        scalar(&ws, "SELECT count(DISTINCT user_id) FROM events").await,
        "814"
    );
    assert_eq!(
        scalar(&ws, "SELECT string_agg(concat(event, '=', n), ' ' ORDER BY event) FROM (SELECT event, count(*) n FROM events GROUP BY event)").await,
        "add_to_cart=4494 favorite=2351 order=1749 product_view=75693"
    );
    // 35 rows outside the official window are kept.
    assert_eq!(
        scalar(&ws, "SELECT count(*) FROM events WHERE ts < to_timestamp(1511539200) OR ts >= to_timestamp(1512316800)").await,
        "35"
    );
    // Line 1: 1,2268318,2520377,pv,1511544070.
    assert_eq!(
        scalar(&ws, "SELECT concat(user_id, ' ', item_id, ' ', category, ' ', event, ' ', to_unixtime(ts)) FROM events WHERE event_id LIKE '%-1'").await,
        "1 2268318 2520377 product_view 1511544070"
    );
}

#[tokio::test]
async fn rees46_events_with_sessions_and_prices() {
    let (_d, ws, s) = ingest_preset("rees46", &[data("rees46_sample/2019-Oct_head.csv")]);
    assert_eq!((s.files[0].read, s.files[0].stored), (17_424, 17_424));
    assert_eq!(
        scalar(&ws, "SELECT count(DISTINCT user_id) FROM events").await,
        "4501"
    );
    assert_eq!(
        scalar(&ws, "SELECT count(DISTINCT session_id) FROM events").await,
        "5061"
    );
    assert_eq!(
        scalar(&ws, "SELECT count(*) FROM events WHERE event = 'order'").await,
        "214"
    );
    // Line 2: shiseido, 35.79, no category_code → category_id.
    assert_eq!(
        scalar(&ws, "SELECT concat(brand, ' ', price, ' ', category, ' ', user_id) FROM events WHERE event_id LIKE '%-2'").await,
        "shiseido 35.7900 2103807459595387724 541312140"
    );
}

#[tokio::test]
async fn hillstrom_exposures_outcomes_and_covariates() {
    let file = data(
        "hillstrom/Kevin_Hillstrom_MineThatData_E-MailAnalytics_DataMiningChallenge_2008.03.20.csv",
    );
    let (_d, ws, s) = ingest_preset("hillstrom", &[file]);
    assert_eq!((s.files[0].read, s.files[0].stored), (64_000, 64_000));
    assert_eq!(
        scalar(&ws, "SELECT string_agg(concat(variant, '=', n), ' ' ORDER BY variant) FROM (SELECT variant, count(*) n FROM exposures GROUP BY variant)").await,
        "Mens E-Mail=21307 No E-Mail=21306 Womens E-Mail=21387"
    );
    assert_eq!(
        scalar(&ws, "SELECT count(*) FROM events WHERE event = 'visit'").await,
        "9394"
    );
    assert_eq!(scalar(&ws, "SELECT count(*) FROM orders").await, "578");
    assert_eq!(
        scalar(&ws, "SELECT sum(net_amount) FROM orders").await,
        "67258.1300"
    );
    // Row 1: recency 10, 2) $100 - $200, 142.44, Phone, Womens E-Mail.
    assert_eq!(
        scalar(&ws, "SELECT attributes FROM customers WHERE user_id = '1'").await,
        r#"{"channel":"Phone","history":142.44,"history_segment":"2) $100 - $200","mens":1,"newbie":0,"recency":10,"womens":0,"zip_code":"Surburban"}"#
    );
    hillstrom_campaigns_measured_by_their_holdout(&ws, &file_of_hillstrom()).await;
}

fn file_of_hillstrom() -> std::path::PathBuf {
    data(
        "hillstrom/Kevin_Hillstrom_MineThatData_E-MailAnalytics_DataMiningChallenge_2008.03.20.csv",
    )
}

/// The two e-mails are campaigns measured by their randomised holdout (the No E-Mail
/// customers): members, holdout members and the per-member spend difference with its 95% Welch
/// interval equal a computation straight from the CSV, and scipy's
/// `ttest_ind(equal_var=False).confidence_interval(0.95)` (1e-6 relative).
async fn hillstrom_campaigns_measured_by_their_holdout(ws: &Workspace, csv: &std::path::Path) {
    use shoplens_engine::traffic::{Method, campaigns};
    // spend per customer by segment, read with the csv crate (a history_segment such as
    // "6) $750 - $1,000" is quoted).
    let mut rd = csv::Reader::from_path(csv).unwrap();
    let head = rd.headers().unwrap().clone();
    let at = |n: &str| head.iter().position(|h| h == n).unwrap();
    let (seg, spend) = (at("segment"), at("spend"));
    let mut by: std::collections::HashMap<String, Vec<f64>> = Default::default();
    for rec in rd.records() {
        let rec = rec.unwrap();
        by.entry(rec[seg].to_string())
            .or_default()
            .push(rec[spend].parse().unwrap());
    }
    let moments = |v: &[f64]| {
        let n = v.len() as f64;
        let m = v.iter().sum::<f64>() / n;
        (
            n,
            m,
            v.iter().map(|x| (x - m).powi(2)).sum::<f64>() / (n - 1.0),
        )
    };
    let (nc, mc, vc) = moments(&by["No E-Mail"]);
    let r = campaigns(ws).await.unwrap();
    // scipy 1.x: (difference, ci low, ci high, Welch–Satterthwaite df).
    let scipy = [
        (
            "Mens E-Mail",
            0.7698271558945368,
            0.4851397325684076,
            1.0545145792206658,
            36671.15797736051,
        ),
        (
            "Womens E-Mail",
            0.4244122159365967,
            0.1689567898837787,
            0.6798676419894147,
            40064.88440653067,
        ),
    ];
    let close = |a: f64, b: f64| (a - b).abs() <= 1e-6 * b.abs();
    for (id, diff, lo, hi, df) in scipy {
        let c = r.campaigns.iter().find(|c| c.campaign_id == id).unwrap();
        let (nt, mt, vt) = moments(&by[id]);
        assert_eq!(c.method, Method::Holdout, "{id}");
        assert_eq!(
            (c.members as f64, c.holdout_members as f64),
            (nt, nc),
            "{id}"
        );
        let (a, b) = (vt / nt, vc / nc);
        let welch_df = (a + b).powi(2) / (a * a / (nt - 1.0) + b * b / (nc - 1.0));
        assert!(close(welch_df, df), "{id} df {welch_df}");
        let per = c.incremental_revenue_per_member.unwrap();
        assert!(close(per, mt - mc) && close(per, diff), "{id}: {per}");
        let [l, h] = c.incremental_revenue_per_member_ci.unwrap();
        assert!(close(l, lo) && close(h, hi), "{id}: [{l}, {h}]");
        // Half the interval is the t quantile × the standard error, from the CSV's moments.
        let t = (h - l) / 2.0 / (a + b).sqrt();
        assert!((1.9600..1.9601).contains(&t), "{id}: t {t}");
        assert!(close(c.incremental_revenue.unwrap(), diff * nt));
        assert!(close(c.revenue, mt * nt));
        // No costs: no margin and no ROI, and the reason says so.
        assert!(c.roi.is_none() && c.reason.as_deref().unwrap().contains("costs"));
    }
}

#[tokio::test]
async fn instacart_orders_dated_by_gaps_and_unjoined_lines_quarantined() {
    let files = [
        data("instacart/order_products__train_head.csv"),
        data("instacart/orders_head.csv"),
        data("instacart/products.csv"),
    ];
    let (_d, ws, s) = ingest_preset("instacart", &files);
    for f in &s.files {
        assert_eq!(f.read, f.stored + f.quarantined + f.excluded, "{}", f.file);
    }
    assert_eq!(s.tables["orders"], 4_997);
    assert_eq!(s.tables["products"], 49_688);
    // 14 train orders of users 1–308 are in the lines head: their 114 lines join.
    assert_eq!(s.tables["order_items"], 114);
    let lines = s.files.iter().find(|f| f.file.contains("train")).unwrap();
    assert_eq!(lines.quarantined, 107_192 - 114);
    // User 1: first order (dow 2) on Tuesday 2017-01-03 08:00; second 15 days later.
    assert_eq!(
        scalar(&ws, "SELECT string_agg(to_char(ts AT TIME ZONE 'America/Los_Angeles', '%Y-%m-%d %H'), ',' ORDER BY ts) FROM (SELECT ts FROM orders WHERE user_id = '1' ORDER BY ts LIMIT 2)").await,
        "2017-01-03 08,2017-01-18 07"
    );
}

#[tokio::test]
async fn womens_reviews_with_multiline_text() {
    let (_d, ws, s) = ingest_preset(
        "womens-clothing-reviews",
        &[data(
            "womens_clothing_reviews/Womens Clothing E-Commerce Reviews.csv",
        )],
    );
    assert_eq!((s.files[0].read, s.files[0].stored), (23_486, 23_486));
    assert_eq!(
        scalar(&ws, "SELECT count(DISTINCT item_id) FROM reviews").await,
        "1206"
    );
    assert_eq!(
        scalar(&ws, "SELECT count(*) FROM reviews WHERE rating = 5").await,
        "13131"
    );
    assert_eq!(
        scalar(&ws, "SELECT count(*) FROM reviews WHERE recommended").await,
        "19314"
    );
    assert_eq!(
        scalar(
            &ws,
            "SELECT concat(item_id, ' ', rating, ' ', title) FROM reviews WHERE review_id = '2'"
        )
        .await,
        "1077 3 Some major design flaws"
    );
}

#[tokio::test]
async fn completejourney_sample_and_restricted_side_tables() {
    let cj = |f: &str| data(&format!("completejourney/{f}"));
    let files = [
        cj("demographics.csv"),
        cj("campaigns.csv"),
        cj("transactions_hh10pct.csv"),
        cj("coupon_redemptions.csv"),
        cj("campaign_descriptions.csv"),
    ];
    let (_d, ws, s) = ingest_preset("completejourney", &files);
    // Files are read in the preset's layout order: transactions first, so side tables can be
    // restricted to its households.
    assert!(s.files[0].file.contains("transactions"));
    let t = &s.files[0];
    assert_eq!((t.read, t.stored, t.quarantined), (143_400, 143_400, 0));
    assert_eq!(s.tables["orders"], 14_742);
    assert_eq!(s.tables["order_items"], 143_400);
    assert_eq!(
        scalar(&ws, "SELECT count(DISTINCT user_id) FROM orders").await,
        "247"
    );
    // Sums over the raw file (python Decimal, values rounded to 4 places as ingest does).
    assert_eq!(
        scalar(&ws, "SELECT sum(net_amount) FROM orders").await,
        "449923.6200"
    );
    assert_eq!(
        scalar(&ws, "SELECT sum(discount_amount) FROM orders").await,
        "76421.3800"
    );
    // Basket 31198676089 (household 83, store 381): 3 lines, 12.56.
    assert_eq!(
        scalar(&ws, "SELECT concat(user_id, ' ', net_amount, ' ', properties) FROM orders WHERE order_id = '31198676089'").await,
        "83 12.5600 {\"store_id\":381,\"week\":1}"
    );
    // Side tables restricted to the 247 households: counted with python csv.
    let by = |name: &str| {
        s.files
            .iter()
            .find(|f| f.file.contains(name))
            .unwrap()
            .clone()
    };
    let members = by("campaigns.csv");
    assert_eq!(
        (members.read, members.stored, members.excluded),
        (6_589, 659, 5_930)
    );
    assert_eq!(
        members.excluded_reasons["household not in the transactions sample"],
        5_930
    );
    assert_eq!(by("coupon_redemptions").stored, 218);
    assert_eq!(by("demographics").stored, 72);
    assert_eq!(s.tables["campaigns"], 27);
    // Quantity-0 lines have no shelf price.
    assert_eq!(
        scalar(
            &ws,
            "SELECT count(*) FROM order_items WHERE unit_price IS NULL"
        )
        .await,
        "863"
    );
}
