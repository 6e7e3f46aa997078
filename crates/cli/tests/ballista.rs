//! The same analyses on a Ballista cluster as in-process: a scheduler and two executors started
//! as separate processes on loopback (`shoplens scheduler`, `shoplens executor`), every
//! engine-backed analysis run both ways on the demo shop, results compared: counts, levels and
//! decimals exactly, floats to 1e-12 relative. Built with `--features ballista`.
#![allow(
    clippy::unwrap_used,
    clippy::expect_used,
    reason = "test helpers fail loudly"
)]

use std::io::{BufRead, BufReader};
use std::path::Path;
use std::process::{Child, Stdio};
use std::time::{Duration, Instant};

use serde_json::Value;

mod common;
use common::{bin, small_demo};

fn free_port() -> u16 {
    std::net::TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
        .port()
}

/// Child processes killed when the test ends, however it ends.
struct Cluster {
    children: Vec<Child>,
    url: String,
}

impl Drop for Cluster {
    fn drop(&mut self) {
        for c in &mut self.children {
            let _ = c.kill();
            let _ = c.wait();
        }
    }
}

fn start_cluster(dir: &Path) -> Cluster {
    let port = free_port();
    let log =
        |name: &str| Stdio::from(std::fs::File::create(dir.join(format!("{name}.log"))).unwrap());
    let mut scheduler = bin()
        .args(["scheduler", "--bind", &format!("127.0.0.1:{port}")])
        .stdout(Stdio::piped())
        .stderr(log("scheduler"))
        .spawn()
        .unwrap();
    let mut line = String::new();
    BufReader::new(scheduler.stdout.take().unwrap())
        .read_line(&mut line)
        .unwrap();
    assert!(line.starts_with("scheduler listening"), "{line}");
    let mut children = vec![scheduler];
    for i in 0..2 {
        let work = dir.join(format!("executor-{i}"));
        std::fs::create_dir_all(&work).unwrap();
        children.push(
            bin()
                .args(["executor", "--scheduler", &format!("127.0.0.1:{port}")])
                .args(["--port", &free_port().to_string()])
                .args(["--grpc-port", &free_port().to_string()])
                .args(["--concurrent-tasks", "2", "--work-dir"])
                .arg(&work)
                .stdout(Stdio::null())
                .stderr(log(&format!("executor-{i}")))
                .spawn()
                .unwrap(),
        );
    }
    Cluster {
        children,
        url: format!("ballista://127.0.0.1:{port}"),
    }
}

/// Numbers equal to 1e-12 relative (exactly when both are integers), everything else equal.
fn same(a: &Value, b: &Value, path: &str) -> Result<(), String> {
    match (a, b) {
        (Value::Number(x), Value::Number(y)) => {
            if let (Some(i), Some(j)) = (x.as_i64(), y.as_i64()) {
                return if i == j {
                    Ok(())
                } else {
                    Err(format!("{path}: {i} ≠ {j}"))
                };
            }
            let (x, y) = (x.as_f64().unwrap(), y.as_f64().unwrap());
            let tol = 1e-12 * x.abs().max(y.abs()).max(1e-300);
            if (x - y).abs() <= tol || (x - y).abs() < 1e-15 {
                Ok(())
            } else {
                Err(format!("{path}: {x} ≠ {y}"))
            }
        }
        (Value::Array(x), Value::Array(y)) => {
            if x.len() != y.len() {
                return Err(format!("{path}: {} ≠ {} elements", x.len(), y.len()));
            }
            for (i, (p, q)) in x.iter().zip(y).enumerate() {
                same(p, q, &format!("{path}[{i}]"))?;
            }
            Ok(())
        }
        (Value::Object(x), Value::Object(y)) => {
            if x.len() != y.len() {
                return Err(format!("{path}: different fields"));
            }
            for (k, p) in x {
                same(p, y.get(k).unwrap_or(&Value::Null), &format!("{path}.{k}"))?;
            }
            Ok(())
        }
        _ if a == b => Ok(()),
        _ => Err(format!("{path}: {a} ≠ {b}")),
    }
}

/// A command's JSON, or why there is none; a command that runs longer than two minutes is
/// killed and reported (a hang must fail the test, not stall it).
fn run(ws: &Path, engine: Option<&str>, args: &[&str]) -> Result<Value, String> {
    let mut c = bin();
    c.args([
        "--workspace",
        &ws.display().to_string(),
        "--format",
        "json",
        "-q",
    ]);
    if let Some(e) = engine {
        c.args(["--engine", e]);
    }
    let out = tempfile::NamedTempFile::new().unwrap();
    let err = tempfile::NamedTempFile::new().unwrap();
    let mut child = c
        .args(args)
        .stdout(Stdio::from(out.reopen().unwrap()))
        .stderr(Stdio::from(err.reopen().unwrap()))
        .spawn()
        .unwrap();
    let t = Instant::now();
    let status = loop {
        if let Some(s) = child.try_wait().unwrap() {
            break s;
        }
        if t.elapsed() > Duration::from_secs(120) {
            let _ = child.kill();
            let _ = child.wait();
            return Err("no answer within 120 s".into());
        }
        std::thread::sleep(Duration::from_millis(50));
    };
    if !status.success() {
        return Err(std::fs::read_to_string(err.path())
            .unwrap()
            .trim()
            .to_string());
    }
    let text = std::fs::read(out.path()).unwrap();
    serde_json::from_slice(text.trim_ascii()).map_err(|e| e.to_string())
}

/// Runs each case in-process and on the cluster; the differences and failures.
fn compare(ws: &Path, url: &str, cases: &[&[&str]]) -> Vec<String> {
    let mut failures = Vec::new();
    for args in cases {
        let local = run(ws, None, args).unwrap_or_else(|e| panic!("{args:?} in-process: {e}"));
        match run(ws, Some(url), args) {
            Ok(remote) => {
                if let Err(d) = same(&local, &remote, "") {
                    failures.push(format!("{}: {d}", args.join(" ")));
                }
            }
            Err(e) => failures.push(format!("{}: failed on the cluster: {e}", args.join(" "))),
        }
    }
    failures
}

fn demo_and_cluster(dir: &Path) -> (std::path::PathBuf, Cluster) {
    let ws = small_demo(dir);
    let cluster = start_cluster(dir);
    // The executors register with the scheduler within a few seconds.
    let t = Instant::now();
    loop {
        match run(
            &ws,
            Some(&cluster.url),
            &["sql", "SELECT count(*) AS n FROM events"],
        ) {
            Ok(_) => break,
            Err(e) => {
                assert!(
                    t.elapsed() < Duration::from_secs(90),
                    "cluster never answered: {e}"
                );
                std::thread::sleep(Duration::from_millis(500));
            }
        }
    }
    (ws, cluster)
}

/// Every engine-backed analysis gives the same answer on the cluster as in-process.
#[test]
fn analyses_on_a_ballista_cluster_equal_the_embedded_engine() {
    let dir = tempfile::tempdir().unwrap();
    let (ws, cluster) = demo_and_cluster(dir.path());
    // A half-written file beside the published ones (an ingest killed mid-write): neither engine
    // may read it, since a table is the manifest's file list, not a directory listing. Reading
    // it would fail (a truncated Parquet file) or change the counts.
    for table in ["events", "orders"] {
        let folder = ws.join("tables").join(table);
        let published = std::fs::read_dir(&folder)
            .unwrap()
            .map(|e| e.unwrap().path())
            .find(|p| p.extension().is_some_and(|x| x == "parquet"))
            .unwrap();
        let bytes = std::fs::read(&published).unwrap();
        std::fs::write(
            folder.join("999999-0001.parquet"),
            &bytes[..bytes.len() / 2],
        )
        .unwrap();
    }
    let cases: &[&[&str]] = &[
        &[
            "sql",
            "SELECT channel, count(*) AS n, sum(net_amount) AS gmv FROM orders GROUP BY channel ORDER BY channel",
        ],
        &[
            "sql",
            "SELECT window_funnel(86400000000, ts, event = 'product_view', event = 'add_to_cart', event = 'order') AS level, count(*) AS users FROM events GROUP BY user_id ORDER BY 1, 2 LIMIT 50",
        ],
        &[
            "funnel",
            "--steps",
            "product_view,add_to_cart,checkout_start,order,payment",
            "--window",
            "24h",
        ],
        &[
            "funnel",
            "--steps",
            "product_view,add_to_cart,order",
            "--mode",
            "strict-order",
            "--breakdown",
            "channel",
        ],
        &[
            "funnel",
            "--steps",
            "product_view,add_to_cart,order",
            "--unit",
            "session",
            "--dropped-next",
            "3",
        ],
        &["tables"],
        &["activity"],
        &["paths"],
        &["repurchase"],
        &["lifecycle"],
        &["products"],
        &["returns"],
        &["inventory"],
        &["channels"],
        &["campaigns"],
        &["basket"],
        &["rfm"],
        &["clv"],
        &["churn"],
        &["stages"],
        &["cohorts"],
        &["experiment", "analyze", "checkout-button"],
        &["recommend", "item", "BA-FORMULA"],
        &["audience", "list"],
    ];
    let failures = compare(&ws, &cluster.url, cases);
    assert!(failures.is_empty(), "differences:\n{}", failures.join("\n"));
}

/// What once hung on the cluster: a window function over an empty input (the 90-day
/// repurchase inside the channel report of the last month, and so the KPIs).
#[test]
fn kpis_and_an_empty_window_on_the_cluster() {
    let dir = tempfile::tempdir().unwrap();
    let (ws, cluster) = demo_and_cluster(dir.path());
    let cases: &[&[&str]] = &[
        &["channels", "--from", "2025-12-02", "--to", "2025-12-31"],
        &["repurchase", "--days", "90", "--from", "2025-12-02"],
        &["kpis"],
        &["kpis", "--days", "7"],
    ];
    let failures = compare(&ws, &cluster.url, cases);
    assert!(failures.is_empty(), "differences:\n{}", failures.join("\n"));
}
