//! Helpers shared by the engine's integration tests.
#![allow(dead_code, unreachable_pub, clippy::unwrap_used, clippy::expect_used)]

use std::path::PathBuf;

use shoplens_engine::Workspace;
use shoplens_engine::datafusion::arrow::util::display::{ArrayFormatter, FormatOptions};
use shoplens_engine::ingest::{self, IngestSummary, presets};

/// A file of ../shared/data (beside the repository).
pub fn data(rel: &str) -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR"))
        .join("../../../shared/data")
        .join(rel)
}

/// Ingests files with a preset into a fresh workspace.
pub fn ingest_preset(
    preset: &str,
    files: &[PathBuf],
) -> (tempfile::TempDir, Workspace, IngestSummary) {
    let dir = tempfile::tempdir().unwrap();
    let ws = Workspace::open(dir.path()).unwrap();
    let m = presets::preset(preset).unwrap();
    let s = ingest::ingest(&ws, files, &m, &Default::default(), &|_| {}).unwrap();
    for f in &s.files {
        assert_eq!(
            f.read,
            f.stored + f.quarantined + f.excluded,
            "{}: counts must add up",
            f.file
        );
    }
    (dir, ws, s)
}

/// The first cell of a query's result, as text.
pub async fn scalar(ws: &Workspace, sql: &str) -> String {
    let (_, batches) = shoplens_engine::query::sql(ws, sql).await.unwrap();
    let b = batches.iter().find(|b| b.num_rows() > 0).expect("a row");
    let f = ArrayFormatter::try_new(b.column(0).as_ref(), &FormatOptions::default()).unwrap();
    f.value(0).to_string()
}

/// All rows of a query, each row's cells joined by `|`.
pub async fn rows(ws: &Workspace, sql: &str) -> Vec<String> {
    let (_, batches) = shoplens_engine::query::sql(ws, sql).await.unwrap();
    let mut out = Vec::new();
    for b in &batches {
        let fs: Vec<_> = b
            .columns()
            .iter()
            .map(|c| ArrayFormatter::try_new(c.as_ref(), &FormatOptions::default()).unwrap())
            .collect();
        for i in 0..b.num_rows() {
            out.push(
                fs.iter()
                    .map(|f| f.value(i).to_string())
                    .collect::<Vec<_>>()
                    .join("|"),
            );
        }
    }
    out
}

/// Ingests CSV text with a mapping (TOML text) into a fresh workspace.
pub fn ingest_text(csv: &str, mapping: &str) -> (tempfile::TempDir, Workspace) {
    let dir = tempfile::tempdir().unwrap();
    let ws = Workspace::open(dir.path().join("ws")).unwrap();
    let f = dir.path().join("source.csv");
    std::fs::write(&f, csv).unwrap();
    let m = ingest::mapping::MappingFile::parse(mapping, "test").unwrap();
    ingest::ingest(&ws, &[f], &m, &Default::default(), &|_| {}).unwrap();
    (dir, ws)
}

/// Paid orders (order id, user, day of 2025, net amount) at noon UTC, as a workspace.
pub fn orders_ws(rows: &[(&str, &str, u32, u32)]) -> (tempfile::TempDir, Workspace) {
    let mut csv = String::from("order,user,day,amount\n");
    for (o, u, d, a) in rows {
        let date = chrono::NaiveDate::from_yo_opt(2025, *d).unwrap();
        csv.push_str(&format!("{o},{u},{date}T12:00:00Z,{a}\n"));
    }
    ingest_text(
        &csv,
        r#"
name = "hand"
timezone = "UTC"
[source]
header = true
[[table]]
name = "orders"
[table.columns]
order_id = "order"
user_id = "user"
ts = "day"
status = { value = "completed" }
net_amount = "amount"
"#,
    )
}
