//! The `window_funnel` aggregate against hand-checked cases whose levels ClickHouse's
//! `windowFunnel` gives (tests/fixtures/window_funnel_cases.json; scripts/funnel_vs_chdb.py
//! checks the same file against chDB).
#![allow(clippy::unwrap_used, clippy::expect_used, reason = "tests")]

use std::collections::BTreeMap;
use std::sync::Arc;

use serde_json::Value;
use shoplens_engine::datafusion::arrow::array::{
    Array, AsArray, Int64Array, RecordBatch, StringArray, TimestampMicrosecondArray,
};
use shoplens_engine::datafusion::arrow::datatypes::{DataType, Field, Schema, TimeUnit};
use shoplens_engine::datafusion::catalog::MemTable;
use shoplens_engine::datafusion::prelude::SessionContext;

fn fixture() -> Value {
    let text = include_str!("fixtures/window_funnel_cases.json");
    serde_json::from_str(text).unwrap()
}

/// All cases as one table (user = case name), spread over `parts` partitions in an order that
/// differs from the fixture's, so merging partial states and row order are exercised.
fn context(parts: usize) -> SessionContext {
    let f = fixture();
    let mut rows: Vec<(String, i64, String)> = Vec::new();
    for c in f["cases"].as_array().unwrap() {
        for r in c["rows"].as_array().unwrap() {
            rows.push((
                c["name"].as_str().unwrap().to_string(),
                r[0].as_i64().unwrap() * 1_000_000,
                r[1].as_str().unwrap().to_string(),
            ));
        }
    }
    rows.reverse();
    let schema = Arc::new(Schema::new(vec![
        Field::new("u", DataType::Utf8, false),
        Field::new(
            "ts",
            DataType::Timestamp(TimeUnit::Microsecond, Some("UTC".into())),
            false,
        ),
        Field::new("e", DataType::Utf8, false),
    ]));
    let mut partitions = vec![Vec::new(); parts];
    for (i, chunk) in rows.chunks(3).enumerate() {
        let b = RecordBatch::try_new(
            schema.clone(),
            vec![
                Arc::new(StringArray::from_iter_values(chunk.iter().map(|r| &r.0))),
                Arc::new(
                    TimestampMicrosecondArray::from_iter_values(chunk.iter().map(|r| r.1))
                        .with_timezone("UTC"),
                ),
                Arc::new(StringArray::from_iter_values(chunk.iter().map(|r| &r.2))),
            ],
        )
        .unwrap();
        partitions[i % parts].push(b);
    }
    let ctx = SessionContext::new();
    shoplens_engine::functions::register(&ctx);
    ctx.register_table(
        "t",
        Arc::new(MemTable::try_new(schema, partitions).unwrap()),
    )
    .unwrap();
    ctx
}

async fn levels(ctx: &SessionContext, call: &str) -> BTreeMap<String, i64> {
    let q = format!("SELECT u, {call} FROM t GROUP BY u");
    let batches = ctx.sql(&q).await.unwrap().collect().await.unwrap();
    let mut out = BTreeMap::new();
    for b in batches {
        let u = b.column(0).as_string::<i32>();
        let l = b.column(1).as_any().downcast_ref::<Int64Array>().unwrap();
        for i in 0..b.num_rows() {
            out.insert(u.value(i).to_string(), l.value(i));
        }
    }
    out
}

fn expected(mode: &str) -> BTreeMap<String, i64> {
    fixture()["cases"]
        .as_array()
        .unwrap()
        .iter()
        .map(|c| {
            (
                c["name"].as_str().unwrap().to_string(),
                c[mode].as_i64().unwrap(),
            )
        })
        .collect()
}

const STEPS: &str = "ts, e = 'pv', e = 'cart', e = 'buy'";

#[tokio::test]
async fn levels_equal_clickhouse_in_every_mode() {
    for parts in [1, 3] {
        let ctx = context(parts);
        for (mode, arg) in [
            ("default", "'default', "),
            ("strict_order", "'strict_order', "),
            ("strict_increase", "'strict-increase', "),
        ] {
            let got = levels(&ctx, &format!("window_funnel(86400, {arg}{STEPS})")).await;
            assert_eq!(got, expected(mode), "mode {mode}, {parts} partitions");
        }
    }
}

#[tokio::test]
async fn window_as_interval_and_mode_omitted() {
    let ctx = context(2);
    let a = levels(&ctx, &format!("window_funnel(INTERVAL '1 day', {STEPS})")).await;
    let b = levels(&ctx, &format!("window_funnel(86400, {STEPS})")).await;
    assert_eq!(a, expected("default"));
    assert_eq!(b, expected("default"));
}

#[tokio::test]
async fn without_group_by_it_is_one_funnel() {
    let ctx = context(1);
    let q =
        format!("SELECT window_funnel(86400, {STEPS}) FROM t WHERE u = 'repeat-first-new-chain'");
    let b = ctx.sql(&q).await.unwrap().collect().await.unwrap();
    let l = b[0]
        .column(0)
        .as_any()
        .downcast_ref::<Int64Array>()
        .unwrap();
    assert_eq!(l.value(0), 3);
    assert!(!l.is_null(0));
}

#[tokio::test]
async fn bad_calls_are_plan_errors() {
    let ctx = context(1);
    for (call, says) in [
        ("window_funnel(86400, 'sideways', ts, e = 'pv')", "mode"),
        ("window_funnel(86400, ts, e)", "boolean"),
        ("window_funnel(86400, ts)", "at least one"),
        ("window_funnel(INTERVAL '1 month', ts, e = 'pv')", "window"),
    ] {
        let err = match ctx
            .sql(&format!(
                "SELECT window_funnel_probe FROM (SELECT {call} AS window_funnel_probe FROM t)"
            ))
            .await
        {
            Ok(df) => df.collect().await.unwrap_err().to_string(),
            Err(e) => e.to_string(),
        };
        assert!(err.contains(says), "{call}: {err}");
    }
}

mod common;

use shoplens_engine::Workspace;
use shoplens_engine::people::funnel::{self as fun, Breakdown, FunnelReport, FunnelSpec, Unit};

const DAY_US: i64 = 86_400_000_000;

fn steps(s: &[&str]) -> Vec<String> {
    s.iter().map(|x| (*x).to_string()).collect()
}

/// Users per step of a default-mode funnel by plain SQL, from the declarative form: a unit
/// reaches step k when it has events of steps 1..k at t1 <= … <= tk with tk − t1 <= W.
async fn plain_sql_counts(ws: &Workspace, unit: &str, s: &[&str; 3], window_s: i64) -> Vec<u64> {
    let w = format!("INTERVAL '{window_s} seconds'");
    let ev = |name: &str| {
        format!(
            "(SELECT {unit} AS p, ts FROM events WHERE event = '{name}' AND {unit} IS NOT NULL)"
        )
    };
    let total = format!("SELECT count(DISTINCT {unit}) FROM events");
    let s1 = format!("SELECT count(DISTINCT p) FROM {}", ev(s[0]));
    let s2 = format!(
        "SELECT count(DISTINCT a.p) FROM {} a JOIN {} b ON a.p = b.p AND b.ts >= a.ts AND b.ts <= a.ts + {w}",
        ev(s[0]),
        ev(s[1])
    );
    let s3 = format!(
        "SELECT count(DISTINCT a.p) FROM {} a JOIN {} b ON a.p = b.p AND b.ts >= a.ts AND b.ts <= a.ts + {w} \
         JOIN {} c ON c.p = a.p AND c.ts >= b.ts AND c.ts <= a.ts + {w}",
        ev(s[0]),
        ev(s[1]),
        ev(s[2])
    );
    let mut out = Vec::new();
    for q in [total, s1, s2, s3] {
        out.push(common::scalar(ws, &q).await.parse().unwrap());
    }
    out
}

fn counts(r: &FunnelReport) -> Vec<u64> {
    std::iter::once(r.users_total)
        .chain(r.steps.iter().map(|s| s.users))
        .collect()
}

#[tokio::test]
async fn taobao_counts_reconcile_with_plain_sql() {
    let (_d, ws, _) = common::ingest_preset(
        "taobao",
        &[common::data("taobao_sample/UserBehavior_head_sample.csv")],
    );
    let s = ["product_view", "add_to_cart", "order"];
    let r = fun::funnel(&ws, &FunnelSpec::new(steps(&s), DAY_US))
        .await
        .unwrap();
    let want = plain_sql_counts(&ws, "user_id", &s, 86_400).await;
    assert_eq!(counts(&r), want);
    assert_eq!(want[0], 814);
    assert!(want[3] > 0 && want[3] < want[2] && want[2] < want[1]);
    // Conversion and drop-off follow from the counts.
    let st = &r.steps;
    assert_eq!(st[1].drop_off, st[0].users - st[1].users);
    assert!(
        (st[2].conversion_from_first.unwrap() - st[2].users as f64 / st[0].users as f64).abs()
            < 1e-15
    );
    assert_eq!(st[2].drop_off_name, Some("cart_abandonment"));
}

#[tokio::test]
async fn rees46_counts_reconcile_by_user_and_by_session() {
    let (_d, ws, _) =
        common::ingest_preset("rees46", &[common::data("rees46_sample/2019-Oct_head.csv")]);
    let s = ["product_view", "add_to_cart", "order"];
    let mut spec = FunnelSpec::new(steps(&s), 3_600_000_000);
    let r = fun::funnel(&ws, &spec).await.unwrap();
    assert_eq!(
        counts(&r),
        plain_sql_counts(&ws, "user_id", &s, 3_600).await
    );
    spec.unit = Unit::Session;
    let r = fun::funnel(&ws, &spec).await.unwrap();
    assert_eq!(
        counts(&r),
        plain_sql_counts(&ws, "session_id", &s, 3_600).await
    );
    assert_eq!(r.users_total, 5_061);

    // A breakdown value's funnel is the funnel filtered to that value.
    spec.unit = Unit::User;
    spec.breakdown = Some(Breakdown::Column("category".into()));
    let by = fun::funnel(&ws, &spec).await.unwrap();
    assert_eq!(
        counts(&by),
        counts(
            &fun::funnel(
                &ws,
                &FunnelSpec {
                    breakdown: None,
                    ..spec.clone()
                }
            )
            .await
            .unwrap()
        )
    );
    for g in by.breakdown.iter().take(3) {
        let value = g.value.clone().unwrap();
        let mut f = spec.clone();
        f.breakdown = None;
        f.filters = vec![("category".into(), value.clone())];
        let alone = fun::funnel(&ws, &f).await.unwrap();
        assert_eq!(
            std::iter::once(g.users_total)
                .chain(g.steps.iter().map(|s| s.users))
                .collect::<Vec<_>>(),
            counts(&alone),
            "{value}"
        );
    }
}

/// A small log (seconds since 2025-01-01 UTC) for the extensions' worked examples.
fn tiny() -> (tempfile::TempDir, Workspace) {
    let csv = "user,t,event,item\n\
        u1,0,product_view,A\nu1,10,add_to_cart,B\nu1,20,order,B\n\
        u2,0,product_view,A\nu2,10,add_to_cart,A\nu2,20,order,A\n\
        u3,0,product_view,A\nu3,10,add_to_cart,A\nu3,15,remove_from_cart,A\nu3,20,order,A\n\
        u4,0,product_view,A\nu4,50,search,\nu4,60,page_view,\n\
        u5,0,product_view,A\nu5,100,add_to_cart,A\nu5,1901,order,A\n\
        u6,5,search,\n";
    // Seconds after 2025-01-01T00:00:00Z.
    let csv: String = csv
        .lines()
        .enumerate()
        .map(|(i, l)| {
            let mut c: Vec<String> = l.split(',').map(str::to_string).collect();
            if i > 0 {
                c[1] = (1_735_689_600 + c[1].parse::<i64>().unwrap()).to_string();
            }
            c.join(",") + "\n"
        })
        .collect();
    common::ingest_text(
        &csv,
        r#"
name = "tiny"
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
item_id = "item"
"#,
    )
}

async fn per_step(ws: &Workspace, spec: &FunnelSpec) -> Vec<u64> {
    counts(&fun::funnel(ws, spec).await.unwrap())
}

#[tokio::test]
async fn extensions_worked_examples() {
    let (_d, ws) = tiny();
    let base = FunnelSpec::new(steps(&["product_view", "add_to_cart", "order"]), DAY_US);
    // Plain: u1 u2 u3 u5 complete; u4 views only; u6 has no step (level 0, still counted).
    assert_eq!(per_step(&ws, &base).await, vec![6, 5, 4, 4]);

    // Same item: u1 carted and bought B but viewed A.
    let same = FunnelSpec {
        same: Some("item_id".into()),
        ..base.clone()
    };
    assert_eq!(per_step(&ws, &same).await, vec![6, 5, 3, 3]);

    // Step 2 within 60 s of step 1: u5's cart came after 100 s.
    let mut limit = base.clone();
    limit.step_limits_us = vec![None, Some(60_000_000)];
    assert_eq!(per_step(&ws, &limit).await, vec![6, 5, 3, 3]);

    // remove_from_cart after the cart voids u3's chain.
    let excl = FunnelSpec {
        exclude: vec!["remove_from_cart".into()],
        ..base.clone()
    };
    assert_eq!(per_step(&ws, &excl).await, vec![6, 4, 3, 3]);

    // Sessions (30 minutes of inactivity): u5's order opens a second session.
    let sess = FunnelSpec {
        unit: Unit::Session,
        ..base.clone()
    };
    assert_eq!(per_step(&ws, &sess).await, vec![7, 5, 4, 3]);

    // Where u4 (stopped after product_view) went next.
    let next = FunnelSpec {
        next_events: 3,
        ..base.clone()
    };
    let r = fun::funnel(&ws, &next).await.unwrap();
    assert_eq!(r.dropped_next[0].after_step, "product_view");
    assert_eq!(r.dropped_next[0].users, 1);
    assert_eq!(r.dropped_next[0].next[0].event.as_deref(), Some("search"));
    assert_eq!(r.dropped_next[1].users, 0);

    // The same with `same = item_id`: u1's best chain is item A, which stops at its view (its
    // cart and order are of B), so u1 joins u4. Their next events after the view: u1's
    // add_to_cart of B (10 s), u4's search (50 s); ties are listed by event name.
    let next_same = FunnelSpec {
        next_events: 3,
        same: Some("item_id".into()),
        ..base.clone()
    };
    let r = fun::funnel(&ws, &next_same).await.unwrap();
    assert_eq!(r.dropped_next[0].users, 2);
    let got: Vec<(Option<&str>, u64)> = r.dropped_next[0]
        .next
        .iter()
        .map(|x| (x.event.as_deref(), x.users))
        .collect();
    assert_eq!(got, vec![(Some("add_to_cart"), 1), (Some("search"), 1)]);
    assert_eq!(r.dropped_next[1].users, 0);

    // Times to convert: order 20 s after the view for u1..u3, 1901 s for u5.
    let r = fun::funnel(&ws, &base).await.unwrap();
    assert_eq!(r.steps[2].median_seconds_to_convert, Some(20.0));
    assert!((r.steps[2].p90_seconds_to_convert.unwrap() - (20.0 + 0.7 * 1881.0)).abs() < 1e-9);
}
