//! Bad input: quarantined rows with their reasons, mis-mapped files that change nothing, zones,
//! duplicates, encodings and the other readers.
#![allow(
    clippy::unwrap_used,
    clippy::expect_used,
    reason = "test helpers fail loudly"
)]

mod common;

use std::path::Path;

use common::{rows, scalar};
use shoplens_engine::ingest::mapping::MappingFile;
use shoplens_engine::ingest::{self, IngestOptions};
use shoplens_engine::{Error, Workspace};

const ORDERS: &str = r#"
name = "test-orders"
timezone = "Asia/Shanghai"
[source]
header = true
[[table]]
name = "orders"
[table.columns]
order_id = "id"
user_id = "user"
ts = "placed"
status = { value = "completed" }
net_amount = "amount"
"#;

fn mapping(text: &str) -> MappingFile {
    MappingFile::parse(text, "test").unwrap()
}

fn write(dir: &Path, name: &str, bytes: &[u8]) -> std::path::PathBuf {
    let p = dir.join(name);
    std::fs::write(&p, bytes).unwrap();
    p
}

fn run(
    ws: &Workspace,
    files: &[std::path::PathBuf],
    m: &MappingFile,
) -> Result<ingest::IngestSummary, Error> {
    ingest::ingest(ws, files, m, &IngestOptions::default(), &|_| {})
}

#[tokio::test]
async fn corrupted_rows_are_quarantined_with_line_column_and_reason() {
    let dir = tempfile::tempdir().unwrap();
    let ws = Workspace::open(dir.path().join("ws")).unwrap();
    let mut csv = b"id,user,placed,amount\n".to_vec();
    csv.extend_from_slice(b"1,u1,2024-05-01 10:00:00,12.50\n");
    csv.extend_from_slice(b"2,u2,2024-13-45 10:00:00,3.00\n"); // bad date
    csv.extend_from_slice(b"3,u3,2024-05-02 11:00:00,twelve\n"); // text in a number
    csv.extend_from_slice(b"4,u4,2024-05-02 12:00:00\n"); // wrong column count
    csv.extend_from_slice(b"5,u\xff\xfe,2024-05-03 09:00:00,1.00\n"); // invalid UTF-8
    csv.extend_from_slice(b"\n6,u6,2024-05-04 09:00:00,0.001\n"); // blank line, then good
    csv.extend_from_slice(b"1,u9,2024-05-05 09:00:00,1.00\n"); // duplicate order id
    csv.extend_from_slice(b",u7,2024-05-05 09:00:00,1.00\n"); // missing required id
    let f = write(dir.path(), "orders.csv", &csv);
    let s = run(&ws, &[f], &mapping(ORDERS)).unwrap();
    let file = &s.files[0];
    assert_eq!((file.read, file.stored, file.quarantined), (8, 2, 6));
    assert_eq!(scalar(&ws, "SELECT string_agg(concat(order_id, '=', net_amount), ' ' ORDER BY order_id) FROM orders").await, "1=12.5000 6=0.0010");
    let q = rows(
        &ws,
        "SELECT line, \"column\", reason FROM quarantine ORDER BY line",
    )
    .await;
    assert_eq!(q.len(), 6);
    assert!(
        q[0].starts_with("3|placed|`2024-13-45 10:00:00` is not a timestamp"),
        "{}",
        q[0]
    );
    assert!(
        q[1].starts_with("4|amount|`twelve` is not a decimal number"),
        "{}",
        q[1]
    );
    assert_eq!(q[2], "5|*|expected 4 fields, found 3");
    assert_eq!(q[3], "6|user|invalid UTF-8 bytes");
    assert_eq!(q[4], "9|id|duplicate key `1` in orders (first on line 2)");
    assert!(
        q[5].starts_with("10|id|missing value for required `orders.order_id`"),
        "{}",
        q[5]
    );
    assert_eq!(
        scalar(&ws, "SELECT raw FROM quarantine WHERE line = 4").await,
        "3,u3,2024-05-02 11:00:00,twelve"
    );
}

#[tokio::test]
async fn mis_mapped_file_fails_listing_columns_and_changes_nothing() {
    let dir = tempfile::tempdir().unwrap();
    let ws = Workspace::open(dir.path().join("ws")).unwrap();
    let good = write(
        dir.path(),
        "a.csv",
        b"id,user,placed,amount\n1,u1,2024-05-01,1.00\n",
    );
    run(&ws, &[good], &mapping(ORDERS)).unwrap();
    let before = ws.manifest().unwrap();
    let other = write(
        dir.path(),
        "b.csv",
        b"order,customer,placed,total\n2,u2,2024-05-02,2.00\n",
    );
    let err = run(&ws, &[other], &mapping(ORDERS))
        .unwrap_err()
        .to_string();
    assert!(err.contains("expected `id`, `user`, `amount`"), "{err}");
    assert!(
        err.contains("found `order`, `customer`, `placed`, `total`"),
        "{err}"
    );
    assert!(err.contains("Nothing was stored"), "{err}");
    assert_eq!(ws.manifest().unwrap(), before);
    assert_eq!(scalar(&ws, "SELECT count(*) FROM orders").await, "1");
}

#[tokio::test]
async fn zone_mismatch_and_repeated_files_are_refused() {
    let dir = tempfile::tempdir().unwrap();
    let ws = Workspace::open(dir.path().join("ws")).unwrap();
    let f = write(
        dir.path(),
        "a.csv",
        b"id,user,placed,amount\n1,u1,2024-05-01 08:00:00,1.00\n",
    );
    run(&ws, std::slice::from_ref(&f), &mapping(ORDERS)).unwrap();
    // 08:00 in Shanghai is 00:00 UTC.
    assert_eq!(
        scalar(&ws, "SELECT to_char(ts, '%H:%M') FROM orders").await,
        "00:00"
    );
    let err = run(&ws, std::slice::from_ref(&f), &mapping(ORDERS))
        .unwrap_err()
        .to_string();
    assert!(
        err.contains("already ingested") && err.contains("--force"),
        "{err}"
    );
    let forced = ingest::ingest(
        &ws,
        std::slice::from_ref(&f),
        &mapping(ORDERS),
        &IngestOptions { force: true },
        &|_| {},
    )
    .unwrap();
    assert_eq!(forced.files[0].stored, 1);
    let london = ORDERS.replace("Asia/Shanghai", "Europe/London");
    let g = write(
        dir.path(),
        "c.csv",
        b"id,user,placed,amount\n9,u9,2024-05-01,1.00\n",
    );
    let err = run(&ws, &[g], &mapping(&london)).unwrap_err().to_string();
    assert!(
        err.contains("Europe/London") && err.contains("Asia/Shanghai"),
        "{err}"
    );
}

#[tokio::test]
async fn gbk_semicolons_crlf_and_gzip() {
    let dir = tempfile::tempdir().unwrap();
    let ws = Workspace::open(dir.path().join("ws")).unwrap();
    let text = "订单号;用户;下单时间;金额\r\n1001;张三;2024-05-01 10:00:00;99.90\r\n1002;李四;2024-05-01 11:00:00;5\r\n";
    let (gbk, _, _) = encoding_rs::GBK.encode(text);
    let mut gz = flate2::write::GzEncoder::new(Vec::new(), flate2::Compression::default());
    std::io::Write::write_all(&mut gz, &gbk).unwrap();
    let f = write(dir.path(), "orders.csv.gz", &gz.finish().unwrap());
    let m = r#"
name = "gbk"
timezone = "Asia/Shanghai"
[source]
delimiter = ";"
encoding = "gbk"
[[table]]
name = "orders"
[table.columns]
order_id = "订单号"
user_id = "用户"
ts = "下单时间"
status = { value = "completed" }
net_amount = "金额"
"#;
    let s = run(&ws, &[f], &mapping(m)).unwrap();
    assert_eq!(s.files[0].stored, 2);
    assert_eq!(
        rows(
            &ws,
            "SELECT user_id, net_amount FROM orders ORDER BY order_id"
        )
        .await,
        vec!["张三|99.9000", "李四|5.0000"]
    );
}

#[tokio::test]
async fn json_lines_and_parquet_sources() {
    let dir = tempfile::tempdir().unwrap();
    let ws = Workspace::open(dir.path().join("ws")).unwrap();
    let jl = "{\"id\":\"e1\",\"at\":1700000000000,\"kind\":\"view\",\"user\":7}\n{broken\n{\"id\":\"e2\",\"at\":1700000001000,\"kind\":\"cart\",\"user\":7,\"extra\":true}\n";
    let f = write(dir.path(), "events.jsonl", jl.as_bytes());
    let m = r#"
name = "jsonl"
[source]
format = "jsonl"
[[table]]
name = "events"
[table.columns]
event_id = "id"
ts = { column = "at", epoch = "ms" }
event = { column = "kind", map = { view = "product_view", cart = "add_to_cart" } }
user_id = "user"
"#;
    let s = run(&ws, &[f], &mapping(m)).unwrap();
    assert_eq!(
        (s.files[0].read, s.files[0].stored, s.files[0].quarantined),
        (3, 2, 1)
    );
    assert_eq!(
        rows(&ws, "SELECT event, user_id FROM events ORDER BY ts").await,
        vec!["product_view|7", "add_to_cart|7"]
    );
    // The workspace's own Parquet file is a Parquet source for another workspace.
    let manifest = ws.manifest().unwrap();
    let parquet = ws.path_of(&manifest.tables["events"][0]);
    let copy = dir.path().join("events.parquet");
    std::fs::copy(parquet, &copy).unwrap();
    let ws2 = Workspace::open(dir.path().join("ws2")).unwrap();
    let m2 = r#"
name = "parquet"
[source]
format = "parquet"
[[table]]
name = "events"
[table.columns]
event_id = "event_id"
ts = "ts"
event = "event"
user_id = "user_id"
"#;
    let s2 = run(&ws2, &[copy], &mapping(m2)).unwrap();
    assert_eq!(s2.files[0].stored, 2);
    assert_eq!(
        rows(
            &ws2,
            "SELECT event_id, to_unixtime(ts) FROM events ORDER BY ts"
        )
        .await,
        vec!["e1|1700000000", "e2|1700000001"]
    );
}

#[test]
fn invalid_mappings_are_explained() {
    let no_required = r#"
[source]
[[table]]
name = "orders"
[table.columns]
order_id = "id"
"#;
    let e = MappingFile::parse(no_required, "m.toml")
        .unwrap_err()
        .to_string();
    assert!(e.contains("needs its required column `status`"), "{e}");
    let unknown = ORDERS.replace("net_amount", "net_amuont");
    let e = MappingFile::parse(&unknown, "m.toml")
        .unwrap_err()
        .to_string();
    assert!(e.contains("has no column `net_amuont`"), "{e}");
}
