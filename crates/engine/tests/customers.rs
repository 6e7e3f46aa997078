//! Customer analyses: RFM scores and segments on a hand-worked example, and on Online Retail
//! reconciled with plain SQL.
#![allow(
    clippy::unwrap_used,
    clippy::expect_used,
    reason = "test helpers fail loudly"
)]

mod common;

use shoplens_engine::customers::rfm::{Clusters, RfmSpec, rfm};
use shoplens_engine::models::rfm::Segment;

/// Orders (user, day of 2025, amount), one order each, as a workspace.
fn orders_ws(orders: &[(&str, u32, u32)]) -> (tempfile::TempDir, shoplens_engine::Workspace) {
    let ids: Vec<String> = (0..orders.len()).map(|i| format!("o{i}")).collect();
    let rows: Vec<(&str, &str, u32, u32)> = orders
        .iter()
        .zip(&ids)
        .map(|((u, d, a), o)| (o.as_str(), *u, *d, *a))
        .collect();
    common::orders_ws(&rows)
}

/// The RFM worked example's orders (user, day of 2025, amount).
const WORKED: [(&str, u32, u32); 12] = [
    ("a", 70, 50),
    ("a", 80, 50),
    ("a", 90, 50),
    ("a", 100, 50),
    ("b", 60, 100),
    ("b", 95, 100),
    ("c", 98, 30),
    ("d", 20, 80),
    ("d", 30, 80),
    ("d", 40, 80),
    ("e", 10, 20),
    ("f", 50, 500),
];

/// docs/metrics.md, RFM worked example: as of day 100,
/// a: days 70, 80, 90, 100 × 50 → R 0, F 4, M 200 → scores 5 5 2 → Champions
/// b: days 60, 95 × 100       → R 5, F 2, M 200 → 3 3 2 → Need attention
/// c: day 98, 30               → R 2, F 1, M 30  → 4 1 1 → Promising
/// d: days 20, 30, 40 × 80     → R 60, F 3, M 240 → 1 4 4 → At risk
/// e: day 10, 20               → R 90, F 1, M 20 → 1 1 1 → Lost
/// f: day 50, 500              → R 50, F 1, M 500 → 2 1 5 → At risk (FM = ⌈6/2⌉ = 3)
#[tokio::test]
async fn rfm_hand_worked_example() {
    let (_d, ws) = orders_ws(&WORKED);
    let r = rfm(
        &ws,
        &RfmSpec {
            clusters: Clusters::None,
            ..RfmSpec::default()
        },
    )
    .await
    .unwrap();
    let got: std::collections::BTreeMap<&str, (i64, u64, f64, &str, Segment)> = r
        .customers
        .iter()
        .map(|c| {
            (
                c.user_id.as_str(),
                (
                    c.recency_days,
                    c.frequency,
                    c.monetary,
                    c.rfm.as_str(),
                    c.segment,
                ),
            )
        })
        .collect();
    assert_eq!(got["a"], (0, 4, 200.0, "552", Segment::Champions));
    assert_eq!(got["b"], (5, 2, 200.0, "332", Segment::NeedAttention));
    assert_eq!(got["c"], (2, 1, 30.0, "411", Segment::Promising));
    assert_eq!(got["d"], (60, 3, 240.0, "144", Segment::AtRisk));
    assert_eq!(got["e"], (90, 1, 20.0, "111", Segment::Lost));
    assert_eq!(got["f"], (50, 1, 500.0, "215", Segment::AtRisk));
    let at_risk = r
        .segments
        .iter()
        .find(|s| s.segment == Segment::AtRisk)
        .unwrap();
    assert_eq!(at_risk.customers, 2);
    assert!((at_risk.revenue_share - 740.0 / 1190.0).abs() < 1e-12);
    assert!(r.clustering.is_none());

    // Movement: as of the end of day 60, b (day 60), d, e and f had bought; a and c had not.
    let r = rfm(
        &ws,
        &RfmSpec {
            clusters: Clusters::None,
            compare_to: Some(1_735_689_600_000_000 + 60 * 86_400_000_000 - 1),
            ..RfmSpec::default()
        },
    )
    .await
    .unwrap();
    let m = r.movement.unwrap();
    let new: u64 = m
        .transitions
        .iter()
        .filter(|t| t.from.is_none())
        .map(|t| t.customers)
        .sum();
    assert_eq!(new, 2, "a and c bought first after day 60");
    assert_eq!(m.transitions.iter().map(|t| t.customers).sum::<u64>(), 6);
}

/// Online Retail end to end: every buyer scored, R/F/M equal to a plain SQL formulation, each
/// score 1–5 follows the tie rule, and clusters cover every customer.
#[tokio::test]
async fn online_retail_rfm_reconciles_with_sql() {
    let (_d, ws, _) = common::ingest_preset(
        "online-retail",
        &[common::data("online_retail/online_retail.csv.gz")],
    );
    let r = rfm(&ws, &RfmSpec::default()).await.unwrap();
    let sql = common::rows(
        &ws,
        "SELECT user_id, count(DISTINCT order_id), CAST(round(sum(net_amount), 2) AS VARCHAR) FROM orders \
         WHERE status IN ('completed', 'paid') AND user_id IS NOT NULL GROUP BY user_id",
    )
    .await;
    assert_eq!(sql.len() as u64, r.total_customers);
    let ours: std::collections::HashMap<&str, &shoplens_engine::customers::rfm::CustomerRfm> = r
        .customers
        .iter()
        .map(|c| (c.user_id.as_str(), c))
        .collect();
    for row in &sql {
        let f: Vec<&str> = row.split('|').collect();
        let c = ours[f[0]];
        assert_eq!(c.frequency.to_string(), f[1], "{}", f[0]);
        assert!(
            (c.monetary - f[2].parse::<f64>().unwrap()).abs() < 0.006,
            "{}",
            f[0]
        );
    }
    // The tie rule: a customer's F score is 1 + ⌊5 · (customers with fewer orders) / n⌋.
    let n = r.customers.len();
    let mut freqs: Vec<u64> = r.customers.iter().map(|c| c.frequency).collect();
    freqs.sort_unstable();
    for c in r.customers.iter().step_by(97) {
        let fewer = freqs.partition_point(|f| *f < c.frequency);
        assert_eq!(usize::from(c.f), (1 + 5 * fewer / n).min(5));
    }
    let cl = r.clustering.unwrap();
    assert!((2..=8).contains(&cl.k));
    assert_eq!(cl.silhouette_by_k.len(), 7);
    assert_eq!(
        cl.clusters.iter().map(|c| c.customers).sum::<u64>(),
        r.total_customers
    );
    // Cluster 0 is the most valuable.
    assert!(cl.clusters[0].mean_monetary >= cl.clusters[cl.k - 1].mean_monetary);
    assert!(r.segments.iter().filter(|s| s.customers > 0).count() >= 9);
}

/// docs/metrics.md, Customer stages, worked example on day 200 of 2025 (P(alive) rule off):
/// p buys every 10 days to day 200 → active; q on days 50, 60, 70 → churned (silence 130);
/// w on days 10 and 150 → won back (gap 140 > 90); n on day 185 → new (15 days);
/// r on days 100, 110, 120 → at risk (silence 80 > 2 × 10); o once on day 140 → at risk
/// (silence 60 > 2 × the shop's median interval, 10 days).
#[tokio::test]
async fn stages_hand_worked_example() {
    use shoplens_engine::customers::stages::{
        ChurnSpec, Stage, StageRules, StagesSpec, churn, stages,
    };
    let mut orders: Vec<(&str, u32, u32)> = (1..=20).map(|i| ("p", i * 10, 10)).collect();
    orders.extend([
        ("q", 50, 10),
        ("q", 60, 10),
        ("q", 70, 10),
        ("w", 10, 10),
        ("w", 150, 10),
        ("n", 185, 10),
        ("r", 100, 10),
        ("r", 110, 10),
        ("r", 120, 10),
        ("o", 140, 500),
    ]);
    let (_d, ws) = orders_ws(&orders);
    let rules = StageRules {
        p_alive_below: 0.0,
        ..StageRules::default()
    };
    let r = churn(
        &ws,
        &ChurnSpec {
            rules: rules.clone(),
            horizon_weeks: 52,
            as_of: None,
        },
    )
    .await
    .unwrap();
    let got: std::collections::BTreeMap<&str, Stage> = r
        .customers
        .iter()
        .map(|c| (c.user_id.as_str(), c.stage))
        .collect();
    assert_eq!(got["p"], Stage::Active);
    assert_eq!(got["q"], Stage::Churned);
    assert_eq!(got["w"], Stage::WonBack);
    assert_eq!(got["n"], Stage::New);
    assert_eq!(got["r"], Stage::AtRisk);
    assert_eq!(got["o"], Stage::AtRisk);
    assert!((r.churn_rate - 1.0 / 6.0).abs() < 1e-12);
    let o = r.customers.iter().find(|c| c.user_id == "o").unwrap();
    assert_eq!(o.expected_interval_days, Some(10.0));
    assert_eq!(o.overdue_ratio, Some(6.0));
    // Win-back candidates are the churned and at-risk buyers.
    let mut wb: Vec<&str> = r.win_back.iter().map(|c| c.user_id.as_str()).collect();
    wb.sort_unstable();
    assert_eq!(wb, ["o", "q", "r"]);

    // Monthly snapshots: the last one agrees with churn, transitions account for everyone.
    let s = stages(
        &ws,
        &StagesSpec {
            period: shoplens_engine::people::cohorts::Period::Month,
            rules,
            from: None,
            as_of: None,
        },
    )
    .await
    .unwrap();
    assert_eq!(s.snapshots.len(), 7, "January to July 19");
    let last = s.snapshots.last().unwrap();
    assert_eq!(last.day, "2025-07-19");
    for (stage, n) in &r.counts {
        assert_eq!(last.counts[stage], *n, "{stage:?}");
    }
    // At the end of January only p and w had bought (days 10, 20, 30 and 10): both active or new.
    let jan = &s.snapshots[0];
    assert_eq!(jan.counts[&Stage::New] + jan.counts[&Stage::Active], 2);
    let july: u64 = s
        .transitions
        .iter()
        .filter(|t| t.day == "2025-07-19")
        .map(|t| t.customers)
        .sum();
    assert_eq!(july, 6);
}

/// Audiences end to end: a rule over the profile, exports to CSV (formula-safe, BOM), XLSX
/// (Chinese text intact, read back with calamine), JSON lines and a webhook on loopback, each
/// export recorded.
#[tokio::test]
async fn audiences_export_everywhere_safely() {
    use shoplens_engine::customers::audiences::{self, Destination};
    let (dir, ws) = orders_ws(&WORKED);
    let csv = "user,region,tier,tags\n\
               a,上海,金卡,\"[\"\"vip\"\"]\"\n\
               d,\"=HYPERLINK(\"\"http://x\"\",\"\"y\"\")\",金卡,[]\n\
               g,北京,,\"[\"\"new_parent\"\"]\"\n";
    let f = dir.path().join("customers.csv");
    std::fs::write(&f, csv).unwrap();
    let m = shoplens_engine::ingest::mapping::MappingFile::parse(
        r#"
name = "hand-customers"
timezone = "UTC"
[source]
header = true
[[table]]
name = "customers"
[table.columns]
user_id = "user"
region = "region"
member_tier = "tier"
tags = "tags"
"#,
        "test",
    )
    .unwrap();
    shoplens_engine::ingest::ingest(&ws, &[f], &m, &Default::default(), &|_| {}).unwrap();

    // A bad rule is refused with the column named; nothing is saved.
    let e = audiences::save(&ws, "x", "segmnt = 'lost'", "", false)
        .await
        .unwrap_err();
    assert!(e.to_string().contains("segmnt"), "{e}");
    assert!(audiences::list(&ws).unwrap().is_empty());

    // Gold members who are not champions (d: at risk) plus the registered-not-purchased (g).
    let rule =
        "(member_tier = '金卡' AND segment <> 'champions') OR stage = 'registered_not_purchased'";
    audiences::save(&ws, "gold-care", rule, "金卡关怀", false)
        .await
        .unwrap();
    assert!(
        audiences::save(&ws, "gold-care", rule, "", false)
            .await
            .is_err(),
        "no silent overwrite"
    );
    let (_, rows) = audiences::members(&ws, rule, None).await.unwrap();
    assert_eq!(rows.iter().map(|b| b.num_rows()).sum::<usize>(), 2);

    let out = dir.path().join("out");
    std::fs::create_dir_all(&out).unwrap();
    let rec = audiences::export(
        &ws,
        "gold-care",
        &Destination::file(out.join("a.csv")).unwrap(),
        None,
    )
    .await
    .unwrap();
    assert_eq!(rec.customers, 2);
    let text = std::fs::read_to_string(out.join("a.csv")).unwrap();
    assert!(text.starts_with('\u{feff}'), "BOM for spreadsheets");
    assert!(text.contains("'=HYPERLINK"), "formula neutralised: {text}");
    assert!(!text.contains(",=HYPERLINK") && !text.contains(",\"=HYPERLINK"));

    audiences::export(
        &ws,
        "gold-care",
        &Destination::file(out.join("a.xlsx")).unwrap(),
        None,
    )
    .await
    .unwrap();
    use calamine::{Reader, Xlsx, open_workbook};
    let mut wb: Xlsx<_> = open_workbook(out.join("a.xlsx")).unwrap();
    let sheet = wb.worksheet_range("gold-care").unwrap();
    let all: Vec<String> = sheet
        .rows()
        .flat_map(|r| r.iter().map(|c| c.to_string()))
        .collect();
    assert!(all.contains(&"金卡".to_string()), "{all:?}");
    assert!(all.contains(&"北京".to_string()));
    assert!(
        all.iter().any(|c| c.starts_with("'=HYPERLINK")),
        "the XLSX text cell is neutralised too: {all:?}"
    );
    assert_eq!(sheet.height(), 3, "header and two members");

    audiences::export(
        &ws,
        "gold-care",
        &Destination::file(out.join("a.jsonl")).unwrap(),
        None,
    )
    .await
    .unwrap();
    let lines: Vec<serde_json::Value> = std::fs::read_to_string(out.join("a.jsonl"))
        .unwrap()
        .lines()
        .map(|l| serde_json::from_str(l).unwrap())
        .collect();
    assert_eq!(lines.len(), 2);
    assert!(
        lines
            .iter()
            .any(|l| l["user_id"] == "g" && l["stage"] == "registered_not_purchased")
    );

    // A webhook on loopback receives one POST with both members.
    let listener = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
    let url = format!("http://{}/hook", listener.local_addr().unwrap());
    let server = std::thread::spawn(move || {
        use std::io::{BufRead, BufReader, Read, Write};
        let (mut s, _) = listener.accept().unwrap();
        let mut r = BufReader::new(s.try_clone().unwrap());
        let mut len = 0usize;
        loop {
            let mut line = String::new();
            r.read_line(&mut line).unwrap();
            if let Some(v) = line.to_ascii_lowercase().strip_prefix("content-length:") {
                len = v.trim().parse().unwrap();
            }
            if line == "\r\n" {
                break;
            }
        }
        let mut body = vec![0; len];
        r.read_exact(&mut body).unwrap();
        s.write_all(b"HTTP/1.1 200 OK\r\ncontent-length: 0\r\nconnection: close\r\n\r\n")
            .unwrap();
        serde_json::from_slice::<serde_json::Value>(&body).unwrap()
    });
    audiences::export(&ws, "gold-care", &Destination::Webhook(url), None)
        .await
        .unwrap();
    let body = server.join().unwrap();
    assert_eq!(body["audience"], "gold-care");
    assert_eq!(body["customers"], 2);
    assert_eq!(body["members"].as_array().unwrap().len(), 2);

    // Every export is in the log, with the same member digest.
    let log = audiences::exports(&ws).unwrap();
    assert_eq!(
        log.iter().map(|r| r.format.as_str()).collect::<Vec<_>>(),
        ["csv", "xlsx", "jsonl", "webhook"]
    );
    assert!(
        log.iter()
            .all(|r| r.customers == 2 && r.members_digest == log[0].members_digest)
    );
    // Deleting the audience keeps its records.
    audiences::delete(&ws, "gold-care").unwrap();
    assert!(audiences::list(&ws).unwrap().is_empty());
    assert_eq!(audiences::exports(&ws).unwrap().len(), 4);
}

/// A cell is neutralised only where a spreadsheet would evaluate it: numbers as written stay.
#[test]
fn formula_cells_are_neutralised_and_numbers_kept() {
    use shoplens_engine::customers::audiences::formula_safe;
    for (cell, want) in [
        ("=1+1", "'=1+1"),
        ("=HYPERLINK(\"http://x\")", "'=HYPERLINK(\"http://x\")"),
        ("+cmd|' /C calc'!A0", "'+cmd|' /C calc'!A0"),
        ("-2+3+cmd|' /C calc'!A0", "'-2+3+cmd|' /C calc'!A0"),
        ("@SUM(A1)", "'@SUM(A1)"),
        ("\t=1", "'\t=1"),
        ("\r=1", "'\r=1"),
        ("-", "'-"),
        ("-1e3e", "'-1e3e"),
        ("-inf", "'-inf"),
        ("-12.5", "-12.5"),
        ("+3", "+3"),
        ("-4%", "-4%"),
        ("-1.5e-3", "-1.5e-3"),
        ("a=b", "a=b"),
        ("上海", "上海"),
        ("", ""),
    ] {
        assert_eq!(formula_safe(cell), want, "{cell:?}");
    }
}

/// Two exports at the same moment get two files; a file already there is never replaced; old
/// exports are removed.
#[test]
fn export_files_are_new_and_old_ones_go() {
    use shoplens_engine::customers::audiences::new_export_file;
    let dir = tempfile::tempdir().unwrap();
    let d = dir.path().join("exports");
    let names: Vec<std::path::PathBuf> = std::thread::scope(|s| {
        let handles: Vec<_> = (0..8)
            .map(|_| s.spawn(|| new_export_file(&d, "vip", "csv", None).unwrap()))
            .collect();
        handles.into_iter().map(|h| h.join().unwrap()).collect()
    });
    let distinct: std::collections::BTreeSet<_> = names.iter().collect();
    assert_eq!(distinct.len(), 8, "{names:?}");
    for n in &names {
        let f = n.file_name().unwrap().to_str().unwrap();
        assert!(f.starts_with("vip-") && f.ends_with(".csv"), "{f}");
        assert!(n.exists());
    }
    // An old export (written two days ago) goes; a fresh one stays.
    let old = d.join("old.csv");
    let f = std::fs::File::create(&old).unwrap();
    let two_days = std::time::Duration::from_secs(2 * 24 * 3600);
    let then = std::fs::metadata(&names[0]).unwrap().modified().unwrap() - two_days;
    f.set_modified(then).unwrap();
    drop(f);
    let next = new_export_file(
        &d,
        "vip",
        "xlsx",
        Some(std::time::Duration::from_secs(24 * 3600)),
    )
    .unwrap();
    assert!(!old.exists(), "older than a day: removed");
    assert!(names.iter().all(|n| n.exists()) && next.exists());
}
