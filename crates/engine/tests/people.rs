//! People analytics against independent computations: plain SQL written another way over the
//! same tables, and hand-checked rows.
#![allow(clippy::unwrap_used, clippy::expect_used, reason = "tests")]

mod common;

use common::{data, ingest_preset, scalar};
use shoplens_engine::Workspace;
use shoplens_engine::people::repurchase::{RepurchaseSpec, repurchase};

/// Customers, repurchasers and the median interval by a second formulation: day numbers from
/// date_trunc in the shop's zone, the next purchase day by a self-join (not a window function),
/// observability from the newest paid order's day.
async fn repurchase_by_sql(ws: &Workspace, tz: &str, n: i64) -> (u64, u64, f64) {
    let po = format!(
        "SELECT DISTINCT user_id, CAST(date_trunc('day', arrow_cast(ts, 'Timestamp(µs, \"{tz}\")')) AS DATE) AS d \
         FROM orders WHERE status IN ('completed', 'paid') AND user_id IS NOT NULL AND ts IS NOT NULL"
    );
    let asof = format!(
        "(SELECT CAST(arrow_cast(max(ts), 'Timestamp(µs, \"{tz}\")') AS DATE) FROM (SELECT ts FROM events UNION ALL SELECT ts FROM orders UNION ALL SELECT ts FROM reviews))"
    );
    let base = format!(
        "WITH po AS ({po}), f AS (SELECT user_id, min(d) AS f FROM po GROUP BY user_id HAVING min(d) + INTERVAL '{n} days' <= {asof}), \
         r AS (SELECT DISTINCT f.user_id FROM f JOIN po ON po.user_id = f.user_id AND po.d > f.f AND po.d <= f.f + INTERVAL '{n} days')"
    );
    let customers: u64 = scalar(ws, &format!("{base} SELECT count(*) FROM f"))
        .await
        .parse()
        .unwrap();
    let reps: u64 = scalar(ws, &format!("{base} SELECT count(*) FROM r"))
        .await
        .parse()
        .unwrap();
    let median: f64 = scalar(
        ws,
        &format!(
            "{base}, nx AS (SELECT a.user_id, a.d, min(b.d) AS nd FROM po a JOIN f ON f.user_id = a.user_id \
             JOIN po b ON b.user_id = a.user_id AND b.d > a.d GROUP BY a.user_id, a.d) \
             SELECT median(CAST(CAST(nd AS INT) - CAST(d AS INT) AS DOUBLE)) FROM nx"
        ),
    )
    .await
    .parse()
    .unwrap();
    (customers, reps, median)
}

#[tokio::test]
async fn online_retail_repurchase_reconciles_with_sql() {
    let (_d, ws, _) = ingest_preset(
        "online-retail",
        &[data("online_retail/online_retail.csv.gz")],
    );
    let r = repurchase(&ws, &RepurchaseSpec::new(30)).await.unwrap();
    let (c, rep, median) = repurchase_by_sql(&ws, "Europe/London", 30).await;
    assert_eq!((r.customers, r.repurchasers), (c, rep));
    assert_eq!(r.median_interval_days, Some(median));
    assert!(r.customers > 3_000 && r.repurchasers > 0);
    let hist: u64 = r.interval_histogram.iter().map(|b| b.count).sum();
    assert_eq!(hist, r.intervals);
    // Every group partitions the same customers.
    let sum: u64 = r.by_acquisition_channel.iter().map(|g| g.customers).sum();
    assert_eq!(sum, r.customers);
}

#[tokio::test]
async fn completejourney_repurchase_reconciles_with_sql() {
    let cj = |f: &str| data(&format!("completejourney/{f}"));
    let (_d, ws, _) = ingest_preset(
        "completejourney",
        &[cj("demographics.csv"), cj("transactions_hh10pct.csv")],
    );
    let zone = ws.manifest().unwrap().settings.timezone.clone().unwrap();
    for n in [7, 30] {
        let r = repurchase(&ws, &RepurchaseSpec::new(n)).await.unwrap();
        let (c, rep, median) = repurchase_by_sql(&ws, &zone, n).await;
        assert_eq!((r.customers, r.repurchasers), (c, rep), "{n} days");
        assert_eq!(r.median_interval_days, Some(median));
    }
}

/// Orders of a few customers on given days of 2025 (UTC), 10 each, as a workspace.
fn orders_ws(rows: &[(&str, &str, u32)]) -> (tempfile::TempDir, Workspace) {
    let rows: Vec<(&str, &str, u32, u32)> = rows.iter().map(|(o, u, d)| (*o, *u, *d, 10)).collect();
    common::orders_ws(&rows)
}

#[tokio::test]
async fn repurchase_hand_worked_example() {
    // c1: days 1, 10, 40 → repurchased (day 10); intervals 9, 30.
    // c2: day 1 twice, day 35 → not within 30 days (34); one interval, 34.
    // c3: day 340 only, data ends day 350 → not observable for 30 days.
    // c4: days 5 and 35 → exactly 30 days: repurchased; interval 30.
    let (_d, ws) = orders_ws(&[
        ("a", "c1", 1),
        ("b", "c1", 10),
        ("c", "c1", 40),
        ("d", "c2", 1),
        ("e", "c2", 1),
        ("f", "c2", 35),
        ("g", "c3", 340),
        ("h", "c4", 5),
        ("i", "c4", 35),
        ("j", "c5", 350),
    ]);
    let r = repurchase(&ws, &RepurchaseSpec::new(30)).await.unwrap();
    assert_eq!((r.customers, r.repurchasers), (3, 2));
    assert_eq!(r.not_yet_observable, 2);
    assert_eq!(r.intervals, 4);
    assert_eq!(r.median_interval_days, Some(30.0));
    assert_eq!(r.interval_quartiles_days, Some([24.75, 30.0, 31.0]));
    let bin = |lo: i64| {
        r.interval_histogram
            .iter()
            .find(|b| b.from_days == lo)
            .unwrap()
            .count
    };
    assert_eq!((bin(8), bin(15), bin(31)), (1, 2, 1));
    // A period selects first purchases: only c4 first bought on day 5.
    let mut spec = RepurchaseSpec::new(30);
    spec.from = Some(1_735_689_600_000_000 + 2 * 86_400_000_000);
    let r = repurchase(&ws, &spec).await.unwrap();
    assert_eq!((r.customers, r.repurchasers), (1, 1));
}

/// Events per (ISO weekday, hour) by SQL with a fixed offset instead of the zone database.
async fn heat_by_sql(ws: &Workspace, offset_h: i64) -> Vec<(i64, i64, u64)> {
    let q = format!(
        "SELECT (CAST(date_part('dow', ts + INTERVAL '{offset_h} hours') AS INT) + 6) % 7 + 1 AS d, \
         CAST(date_part('hour', ts + INTERVAL '{offset_h} hours') AS INT) AS h, count(*) FROM events GROUP BY 1, 2 ORDER BY 1, 2"
    );
    common::rows(ws, &q)
        .await
        .iter()
        .map(|r| {
            let v: Vec<i64> = r.split('|').map(|x| x.parse().unwrap()).collect();
            (v[0], v[1], v[2] as u64)
        })
        .collect()
}

async fn check_activity(ws: &Workspace, offset_h: i64) {
    use shoplens_engine::people::activity::{ActivitySpec, activity};
    let r = activity(ws, &ActivitySpec::default()).await.unwrap();
    let mine: Vec<(i64, i64, u64)> = r
        .heatmap
        .iter()
        .filter(|c| c.events > 0)
        .map(|c| (i64::from(c.weekday), i64::from(c.hour), c.events))
        .collect();
    assert_eq!(mine, heat_by_sql(ws, offset_h).await);
    // Mean DAU by SQL: distinct users per local day, averaged over the days from first to last.
    let q = format!(
        "WITH d AS (SELECT date_trunc('day', ts + INTERVAL '{offset_h} hours') AS day, count(DISTINCT user_id) AS n FROM events GROUP BY 1) \
         SELECT CAST(sum(n) AS DOUBLE) / (CAST(CAST(max(day) AS DATE) AS INT) - CAST(CAST(min(day) AS DATE) AS INT) + 1) FROM d"
    );
    let dau: f64 = scalar(ws, &q).await.parse().unwrap();
    assert!((r.dau.unwrap() - dau).abs() < 1e-9, "{:?} vs {dau}", r.dau);
    // WAU and MAU of the last day by a direct distinct count over the window.
    for (w, got) in [
        (7, r.daily.last().unwrap().wau),
        (30, r.daily.last().unwrap().mau),
    ] {
        let q = format!(
            "WITH e AS (SELECT user_id, CAST(CAST(ts + INTERVAL '{offset_h} hours' AS DATE) AS INT) AS d FROM events) \
             SELECT count(DISTINCT user_id) FROM e WHERE d > (SELECT max(d) FROM e) - {w}"
        );
        let want: u64 = scalar(ws, &q).await.parse().unwrap();
        assert_eq!(got, want, "{w}-day actives");
    }
    // Category totals add up to the events that have a category.
    let with_cat: u64 = scalar(ws, "SELECT count(*) FROM events WHERE category IS NOT NULL")
        .await
        .parse()
        .unwrap();
    assert_eq!(r.categories.iter().map(|c| c.events).sum::<u64>(), with_cat);
}

#[tokio::test]
async fn taobao_and_rees46_activity_reconcile_with_sql() {
    let (_d, ws, _) = ingest_preset(
        "taobao",
        &[data("taobao_sample/UserBehavior_head_sample.csv")],
    );
    check_activity(&ws, 8).await;
    let (_d, ws, _) = ingest_preset("rees46", &[data("rees46_sample/2019-Oct_head.csv")]);
    check_activity(&ws, 0).await;
}

/// (cohort start, k, active) for every cell with activity, by SQL: month numbers from
/// date_trunc in the shop's zone and a join of each customer's order months to their first.
async fn cohort_cells_by_sql(ws: &Workspace, tz: &str) -> Vec<(String, i64, u64)> {
    let m = format!("date_trunc('month', arrow_cast(ts, 'Timestamp(µs, \"{tz}\")'))");
    let q = format!(
        "WITH po AS (SELECT DISTINCT user_id, {m} AS mo FROM orders WHERE status IN ('completed', 'paid') AND user_id IS NOT NULL AND ts IS NOT NULL), \
         f AS (SELECT user_id, min(mo) AS c FROM po GROUP BY user_id) \
         SELECT CAST(CAST(f.c AS DATE) AS VARCHAR), \
         (date_part('year', po.mo) - date_part('year', f.c)) * 12 + date_part('month', po.mo) - date_part('month', f.c) AS k, count(*) \
         FROM f JOIN po ON po.user_id = f.user_id GROUP BY 1, 2 ORDER BY 1, 2"
    );
    common::rows(ws, &q)
        .await
        .iter()
        .map(|r| {
            let v: Vec<&str> = r.split('|').collect();
            (
                v[0].to_string(),
                v[1].parse::<f64>().unwrap() as i64,
                v[2].parse().unwrap(),
            )
        })
        .collect()
}

async fn check_cohorts(ws: &Workspace, tz: &str) -> shoplens_engine::people::cohorts::CohortReport {
    use shoplens_engine::people::cohorts::{CohortSpec, cohorts};
    let r = cohorts(ws, &CohortSpec::default()).await.unwrap();
    let mine: Vec<(String, i64, u64)> = r
        .cohorts
        .iter()
        .flat_map(|row| {
            row.periods
                .iter()
                .filter(|c| c.active > 0)
                .map(|c| (row.cohort.clone(), i64::from(c.k), c.active))
        })
        .collect();
    assert_eq!(mine, cohort_cells_by_sql(ws, tz).await);
    for row in &r.cohorts {
        assert_eq!(
            row.periods[0].active, row.size,
            "first-purchase cohorts are active at k = 0"
        );
        for w in row.periods.windows(2) {
            assert!(w[1].active_or_later <= w[0].active_or_later);
            assert!(w[1].active <= w[1].active_or_later);
        }
    }
    r
}

#[tokio::test]
async fn online_retail_cohorts_reconcile_and_one_row_by_hand() {
    let (_d, ws, _) = ingest_preset(
        "online-retail",
        &[data("online_retail/online_retail.csv.gz")],
    );
    let r = check_cohorts(&ws, "Europe/London").await;
    // December 2010, worked from the raw file (pandas: invoices not C/A, lines with quantity ≥ 0,
    // a customer id): 885 customers; 324, 286, 340 of them bought again in January, February,
    // March 2011; 766, 753, 741 bought in that month or later; revenue £572,713.89 in December
    // and £848,951.58 by the end of January.
    let dec = &r.cohorts[0];
    assert_eq!((dec.cohort.as_str(), dec.size), ("2010-12-01", 885));
    let act: Vec<u64> = dec.periods[..4].iter().map(|c| c.active).collect();
    assert_eq!(act, vec![885, 324, 286, 340]);
    let later: Vec<u64> = dec.periods[..4].iter().map(|c| c.active_or_later).collect();
    assert_eq!(later, vec![885, 766, 753, 741]);
    assert!((dec.periods[0].revenue - 572_713.89).abs() < 1e-6);
    assert!(
        (dec.periods[1].cumulative_revenue_per_member.unwrap() - 848_951.58 / 885.0).abs() < 1e-9
    );
    // Weekly cohorts hold the same customers; per-channel rows partition each cohort.
    use shoplens_engine::people::cohorts::{CohortSpec, Period, cohorts};
    let w = cohorts(
        &ws,
        &CohortSpec {
            period: Period::Week,
            by_channel: true,
            ..Default::default()
        },
    )
    .await
    .unwrap();
    let total = |rows: &[shoplens_engine::people::cohorts::CohortRow]| {
        rows.iter().map(|r| r.size).sum::<u64>()
    };
    assert_eq!(total(&w.cohorts), total(&r.cohorts));
    assert_eq!(total(&w.by_channel), total(&w.cohorts));
    assert_eq!(w.cohorts[0].cohort, "2010-11-29");
    // Data ends 2011-12-09: December 2011 is not complete.
    assert!(dec.periods.last().unwrap().partial);
    assert!(!dec.periods[11].partial);
}

#[tokio::test]
async fn completejourney_cohorts_reconcile_with_sql() {
    let cj = |f: &str| data(&format!("completejourney/{f}"));
    let (_d, ws, _) = ingest_preset(
        "completejourney",
        &[cj("demographics.csv"), cj("transactions_hh10pct.csv")],
    );
    let zone = ws.manifest().unwrap().settings.timezone.clone().unwrap();
    check_cohorts(&ws, &zone).await;
}

#[tokio::test]
async fn taobao_lifecycle_reconciles_with_sql_by_day() {
    use shoplens_engine::people::cohorts::Period;
    use shoplens_engine::people::lifecycle::{LifecycleSpec, lifecycle};
    let (_d, ws, _) = ingest_preset(
        "taobao",
        &[data("taobao_sample/UserBehavior_head_sample.csv")],
    );
    let r = lifecycle(
        &ws,
        &LifecycleSpec {
            period: Period::Day,
            ..Default::default()
        },
    )
    .await
    .unwrap();
    let a = "SELECT DISTINCT user_id AS p, CAST(CAST(ts + INTERVAL '8 hours' AS DATE) AS VARCHAR) AS ds, \
             CAST(CAST(ts + INTERVAL '8 hours' AS DATE) AS INT) AS d FROM events";
    let q = format!(
        "WITH a AS ({a}), f AS (SELECT p, min(d) AS fd FROM a GROUP BY p), \
         dorm AS (SELECT x.d + 1 AS d, count(*) AS n FROM a x LEFT JOIN a nx ON nx.p = x.p AND nx.d = x.d + 1 WHERE nx.p IS NULL GROUP BY 1) \
         SELECT min(a.ds), sum(CASE WHEN a.d = f.fd THEN 1 ELSE 0 END), \
         sum(CASE WHEN a.d <> f.fd AND pr.p IS NOT NULL THEN 1 ELSE 0 END), \
         sum(CASE WHEN a.d <> f.fd AND pr.p IS NULL THEN 1 ELSE 0 END), min(COALESCE(dorm.n, 0)) \
         FROM a JOIN f ON f.p = a.p LEFT JOIN a pr ON pr.p = a.p AND pr.d = a.d - 1 LEFT JOIN dorm ON dorm.d = a.d \
         GROUP BY a.d ORDER BY a.d"
    );
    let want = common::rows(&ws, &q).await;
    // The SQL lists days with activity; the report also lists the idle days between.
    let got: Vec<String> = r
        .periods
        .iter()
        .filter(|p| p.active > 0)
        .map(|p| {
            format!(
                "{}|{}|{}|{}|{}",
                p.period, p.new, p.returning, p.resurrecting, p.dormant
            )
        })
        .collect();
    assert_eq!(got, want);
    // Every person is new exactly once.
    let persons: u64 = scalar(&ws, "SELECT count(DISTINCT user_id) FROM events")
        .await
        .parse()
        .unwrap();
    assert_eq!(r.periods.iter().map(|p| p.new).sum::<u64>(), persons);
}

#[tokio::test]
async fn rees46_paths_reconcile_with_sql() {
    use shoplens_engine::people::paths::{PathSpec, paths};
    let (_d, ws, _) = ingest_preset("rees46", &[data("rees46_sample/2019-Oct_head.csv")]);
    let r = paths(
        &ws,
        &PathSpec {
            start: Some("add_to_cart".into()),
            steps: 1,
            top: 50,
            keep_repeats: true,
            ..Default::default()
        },
    )
    .await
    .unwrap();
    // The event after each session's first cart add (or the session's end), by window functions.
    let q = "WITH e AS (SELECT session_id, event, row_number() OVER (PARTITION BY session_id ORDER BY ts, event_id) AS n FROM events), \
             f AS (SELECT session_id, min(n) AS n FROM e WHERE event = 'add_to_cart' GROUP BY session_id) \
             SELECT COALESCE(nx.event, '(end)') AS next, count(*) FROM f LEFT JOIN e nx ON nx.session_id = f.session_id AND nx.n = f.n + 1 \
             GROUP BY 1 ORDER BY 2 DESC, 1";
    let want = common::rows(&ws, q).await;
    let got: Vec<String> = r
        .links
        .iter()
        .map(|l| format!("{}|{}", l.to, l.sessions))
        .collect();
    assert_eq!(got, want);
    let anchored: u64 = scalar(
        &ws,
        "SELECT count(DISTINCT session_id) FROM events WHERE event = 'add_to_cart'",
    )
    .await
    .parse()
    .unwrap();
    assert_eq!(r.sessions, anchored);
    assert_eq!(r.sessions_total, 5_061);
}

#[tokio::test]
async fn local_time_arithmetic_matches_the_zone_database_across_dst() {
    // CDNOW is in America/New_York: two DST changes a year over 18 months.
    let (_d, ws, _) = ingest_preset("cdnow", &[data("cdnow/CDNOW_master.txt")]);
    let tz = "America/New_York";
    let lt = format!("arrow_cast(ts, 'Timestamp(µs, \"{tz}\")')");
    let q = format!(
        "SELECT count(*) FROM orders WHERE {h} <> CAST(date_part('hour', {lt}) AS INT) \
         OR {w} <> (CAST(date_part('dow', {lt}) AS INT) + 6) % 7 + 1 \
         OR {d} <> CAST(CAST({lt} AS DATE) AS INT)",
        h = shoplens_engine::sql::local_hour("ts", tz),
        w = shoplens_engine::sql::local_weekday("ts", tz),
        d = shoplens_engine::sql::local_day("ts", tz),
    );
    assert_eq!(scalar(&ws, &q).await, "0");
    // Instants either side of a DST change (2025-03-09 07:00 UTC = 03:00 EDT).
    for (utc, hour) in [("2025-03-09T06:59:59Z", 1), ("2025-03-09T07:00:00Z", 3)] {
        let q = format!(
            "SELECT {} FROM (SELECT TIMESTAMP '{utc}' AS ts)",
            shoplens_engine::sql::local_hour("ts", tz)
        );
        assert_eq!(scalar(&ws, &q).await, hour.to_string(), "{utc}");
    }
}

#[tokio::test]
async fn experiment_exposures_from_experiment_viewed_events() {
    use shoplens_engine::practice::experiments::{ExperimentSpec, analyze};
    // Six users see experiment `exp` (a or b); u2 orders before exposure (not counted), u3 and u5
    // after it, u6 was shown both variants (left out).
    let rows = [
        ("u1", 10, "experiment_viewed", "exp", "a"),
        ("u2", 5, "order", "", ""),
        ("u2", 10, "experiment_viewed", "exp", "a"),
        ("u3", 10, "experiment_viewed", "exp", "a"),
        ("u3", 20, "order", "", ""),
        ("u4", 10, "experiment_viewed", "exp", "b"),
        ("u5", 10, "experiment_viewed", "exp", "b"),
        ("u5", 30, "order", "", ""),
        ("u5", 40, "order", "", ""),
        ("u6", 10, "experiment_viewed", "exp", "a"),
        ("u6", 11, "experiment_viewed", "exp", "b"),
        ("u7", 10, "experiment_viewed", "other", "a"),
    ];
    let mut csv = String::from("user,t,event,experiment_id,variant\n");
    for (u, t, e, x, v) in rows {
        csv.push_str(&format!("{u},{},{e},{x},{v}\n", 1_735_689_600 + t));
    }
    let (_d, ws) = common::ingest_text(
        &csv,
        r#"
name = "exp"
timezone = "UTC"
[source]
header = true
[[table]]
name = "events"
[table.columns]
event_id = { synth = "row_id" }
ts = { column = "t", epoch = "s" }
user_id = "user"
event = "event"
properties = { json = ["experiment_id", "variant"] }
"#,
    );
    let r = analyze(
        &ws,
        &ExperimentSpec {
            experiment: "exp".into(),
            control: "a".into(),
            metrics: vec!["conversion".into(), "orders".into()],
            weights: Vec::new(),
            config: shoplens_engine::models::abtest::Config::default(),
            cuped_days: None,
        },
    )
    .await
    .unwrap();
    assert_eq!(r.users_in_several_variants, 1);
    assert_eq!(
        r.analysis.srm.counts,
        vec![("a".to_string(), 3), ("b".to_string(), 2)]
    );
    let conv = &r.analysis.results[0];
    assert_eq!((conv.n_control, conv.n_variant), (3, 2));
    assert!((conv.stats.control_mean - 1.0 / 3.0).abs() < 1e-12);
    assert!((conv.stats.variant_mean - 0.5).abs() < 1e-12);
    let orders = &r.analysis.results[1];
    assert!((orders.stats.variant_mean - 1.0).abs() < 1e-12);
}
