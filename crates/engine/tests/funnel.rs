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
    shoplens_engine::funnel::register(&ctx);
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
