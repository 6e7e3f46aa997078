//! `shoplens bench scale-out`: engine-backed analyses of the workspace run in this process and on
//! a Ballista cluster (a scheduler and executors started as separate processes on loopback, or an
//! existing cluster), timed side by side, with every answer compared between the two engines.

use std::io::{BufRead, BufReader, Write};
use std::path::PathBuf;
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use anyhow::{Context, Result, bail};
use clap::Args;
use serde_json::{Value, json};

use crate::Global;
use crate::render::{Format, Frame, write_json};

#[derive(Debug, Args)]
pub(crate) struct ScaleOutBench {
    /// Timed runs of each analysis on each engine (the two engines alternate).
    #[arg(long, default_value_t = 3)]
    runs: usize,
    /// Executors to start on loopback.
    #[arg(long, default_value_t = 2)]
    executors: usize,
    /// Tasks each started executor runs at once.
    #[arg(long, default_value_t = 1)]
    concurrent_tasks: usize,
    /// Use this running cluster (`ballista://HOST:PORT`) instead of starting one.
    #[arg(long)]
    cluster: Option<String>,
    /// Only these analyses (names as printed: events, funnel, funnel-strict, activity, cohorts,
    /// channels, rfm, kpis), comma-separated.
    #[arg(long, value_delimiter = ',')]
    only: Vec<String>,
    /// Directory for the started processes' logs and shuffle files (a fresh subdirectory).
    #[arg(long, default_value = "bench-data/scale-out")]
    dir: PathBuf,
}

/// The analyses timed: a name and the command line after the global flags.
fn cases() -> Vec<(&'static str, Vec<&'static str>)> {
    let funnel = vec![
        "funnel",
        "--steps",
        "product_view,add_to_cart,order",
        "--window",
        "24h",
    ];
    let strict = [funnel.as_slice(), &["--mode", "strict-order"]].concat();
    vec![
        (
            "events",
            vec![
                "sql",
                "SELECT event, count(*) AS events, count(DISTINCT user_id) AS users FROM events GROUP BY event ORDER BY event",
            ],
        ),
        ("funnel", funnel),
        ("funnel-strict", strict),
        ("activity", vec!["activity"]),
        ("cohorts", vec!["cohorts"]),
        ("channels", vec!["channels"]),
        ("rfm", vec!["rfm"]),
        ("kpis", vec!["kpis"]),
    ]
}

/// Processes started for the benchmark, stopped when it ends however it ends.
struct Started(Vec<Child>);

impl Drop for Started {
    fn drop(&mut self) {
        for c in &mut self.0 {
            let _ = c.kill();
            let _ = c.wait();
        }
    }
}

fn free_port() -> Result<u16> {
    Ok(std::net::TcpListener::bind("127.0.0.1:0")?
        .local_addr()?
        .port())
}

/// A scheduler and `n` executors of this very binary on loopback; the scheduler's URL.
fn start_cluster(b: &ScaleOutBench, dir: &std::path::Path) -> Result<(String, Started)> {
    let exe = std::env::current_exe()?;
    let log = |name: &str| -> Result<Stdio> {
        Ok(Stdio::from(std::fs::File::create(
            dir.join(format!("{name}.log")),
        )?))
    };
    let port = free_port()?;
    let mut scheduler = Command::new(&exe)
        .args(["scheduler", "--bind", &format!("127.0.0.1:{port}")])
        .stdout(Stdio::piped())
        .stderr(log("scheduler")?)
        .spawn()?;
    let mut started = Started(Vec::new());
    let first = scheduler.stdout.take();
    started.0.push(scheduler);
    let mut line = String::new();
    if let Some(o) = first {
        BufReader::new(o).read_line(&mut line)?;
    }
    if !line.starts_with("scheduler listening") {
        bail!(
            "the scheduler did not start (see {})",
            dir.join("scheduler.log").display()
        );
    }
    for i in 0..b.executors {
        let work = dir.join(format!("executor-{i}"));
        std::fs::create_dir_all(&work)?;
        started.0.push(
            Command::new(&exe)
                .args(["executor", "--scheduler", &format!("127.0.0.1:{port}")])
                .args(["--port", &free_port()?.to_string()])
                .args(["--grpc-port", &free_port()?.to_string()])
                .args(["--concurrent-tasks", &b.concurrent_tasks.to_string()])
                .arg("--work-dir")
                .arg(&work)
                .stdout(Stdio::null())
                .stderr(log(&format!("executor-{i}"))?)
                .spawn()?,
        );
    }
    Ok((format!("ballista://127.0.0.1:{port}"), started))
}

/// One run of a command as a user runs it (this binary, process start to last byte) on an
/// engine: seconds and the JSON it printed.
fn run_once(g: &Global, engine: Option<&str>, args: &[&str]) -> Result<(f64, Value)> {
    let mut cmd = Command::new(std::env::current_exe()?);
    cmd.arg("--workspace")
        .arg(&g.workspace)
        .args(["--format", "json", "--quiet"]);
    if let Some(e) = engine {
        cmd.arg(format!("--engine={e}"));
    }
    cmd.args(args);
    let t = Instant::now();
    let done = cmd.stdin(Stdio::null()).output()?;
    let secs = t.elapsed().as_secs_f64();
    if !done.status.success() {
        bail!("{}", String::from_utf8_lossy(&done.stderr).trim());
    }
    Ok((secs, serde_json::from_slice(done.stdout.trim_ascii())?))
}

/// Where two answers differ (the first place found): integers and text exactly, other numbers to
/// 1e-12 relative (partition order changes the order of float sums).
pub(crate) fn json_difference(a: &Value, b: &Value, path: &str) -> Option<String> {
    match (a, b) {
        (Value::Number(x), Value::Number(y)) => {
            if let (Some(i), Some(j)) = (x.as_i64(), y.as_i64()) {
                return (i != j).then(|| format!("{path}: {i} ≠ {j}"));
            }
            let (x, y) = (x.as_f64()?, y.as_f64()?);
            let tol = (1e-12 * x.abs().max(y.abs())).max(1e-15);
            ((x - y).abs() > tol).then(|| format!("{path}: {x} ≠ {y}"))
        }
        (Value::Array(x), Value::Array(y)) => {
            if x.len() != y.len() {
                return Some(format!("{path}: {} ≠ {} elements", x.len(), y.len()));
            }
            x.iter()
                .zip(y)
                .enumerate()
                .find_map(|(i, (p, q))| json_difference(p, q, &format!("{path}[{i}]")))
        }
        (Value::Object(x), Value::Object(y)) => {
            if x.len() != y.len() {
                return Some(format!("{path}: different fields"));
            }
            x.iter().find_map(|(k, p)| {
                json_difference(p, y.get(k).unwrap_or(&Value::Null), &format!("{path}.{k}"))
            })
        }
        _ => (a != b).then(|| format!("{path}: {a} ≠ {b}")),
    }
}

struct Row {
    name: &'static str,
    embedded: Vec<f64>,
    cluster: Vec<f64>,
    difference: Option<String>,
}

fn best_and_median(mut t: Vec<f64>) -> (f64, f64) {
    t.sort_by(f64::total_cmp);
    (
        t.first().copied().unwrap_or(f64::NAN),
        crate::bench_collector::percentile(&t, 0.5),
    )
}

pub(crate) fn scale_out_bench(g: &Global, b: &ScaleOutBench, out: &mut dyn Write) -> Result<()> {
    if b.runs == 0 || (b.cluster.is_none() && b.executors == 0) {
        bail!("--runs and --executors must be at least 1");
    }
    let all = cases();
    for o in &b.only {
        if !all.iter().any(|(n, _)| n == o) {
            bail!(
                "--only: no analysis `{o}` (one of {})",
                all.iter().map(|c| c.0).collect::<Vec<_>>().join(", ")
            );
        }
    }
    let chosen: Vec<_> = all
        .into_iter()
        .filter(|(n, _)| b.only.is_empty() || b.only.iter().any(|o| o == n))
        .collect();
    let events = run_once(g, None, &["sql", "SELECT count(*) AS n FROM events"])?.1;
    let events = events
        .get("rows")
        .and_then(|r| r.get(0))
        .and_then(|r| r.get("n").or_else(|| r.get(0)))
        .and_then(Value::as_u64)
        .unwrap_or(0);
    let dir = b.dir.join(format!("run-{}", std::process::id()));
    std::fs::create_dir_all(&dir).with_context(|| format!("creating {}", dir.display()))?;
    let (url, _started) = match &b.cluster {
        Some(u) => (u.clone(), Started(Vec::new())),
        None => start_cluster(b, &dir)?,
    };
    // The executors register with the scheduler within a few seconds.
    let t = Instant::now();
    while let Err(e) = run_once(
        g,
        Some(&url),
        &["sql", "SELECT 1 AS one FROM events LIMIT 1"],
    ) {
        if t.elapsed() > Duration::from_secs(90) {
            bail!("the cluster at {url} did not answer within 90 s: {e:#}");
        }
        std::thread::sleep(Duration::from_millis(500));
    }
    let mut rows = Vec::new();
    for (name, args) in &chosen {
        let mut row = Row {
            name,
            embedded: Vec::new(),
            cluster: Vec::new(),
            difference: None,
        };
        for _ in 0..b.runs {
            let (te, a) =
                run_once(g, None, args).with_context(|| format!("{name} in this process"))?;
            let (tc, c) =
                run_once(g, Some(&url), args).with_context(|| format!("{name} on {url}"))?;
            row.embedded.push(te);
            row.cluster.push(tc);
            if row.difference.is_none() {
                row.difference = json_difference(&a, &c, "");
            }
        }
        rows.push(row);
    }
    let _ = std::fs::remove_dir_all(&dir);
    let started = if b.cluster.is_some() { 0 } else { b.executors };
    if g.format == Format::Json {
        let list: Vec<Value> = rows
            .iter()
            .map(|r| {
                let (eb, em) = best_and_median(r.embedded.clone());
                let (cb, cm) = best_and_median(r.cluster.clone());
                json!({"analysis": r.name, "embedded_best_s": eb, "embedded_median_s": em,
                       "cluster_best_s": cb, "cluster_median_s": cm,
                       "identical": r.difference.is_none(), "difference": r.difference})
            })
            .collect();
        return write_json(
            out,
            &json!({"events": events, "runs": b.runs, "cluster": url,
                    "executors_started": started, "concurrent_tasks": b.concurrent_tasks,
                    "analyses": list}),
        );
    }
    let mut f = Frame::new(&[
        "analysis",
        "embedded best s",
        "embedded median s",
        "cluster best s",
        "cluster median s",
        "cluster ÷ embedded",
        "same answer",
    ]);
    for r in &rows {
        let (eb, em) = best_and_median(r.embedded.clone());
        let (cb, cm) = best_and_median(r.cluster.clone());
        f.push(vec![
            Value::from(r.name),
            Value::from(format!("{eb:.2}")),
            Value::from(format!("{em:.2}")),
            Value::from(format!("{cb:.2}")),
            Value::from(format!("{cm:.2}")),
            Value::from(format!("{:.1}×", cb / eb)),
            Value::from(r.difference.clone().unwrap_or_else(|| "yes".into())),
        ]);
    }
    writeln!(
        out,
        "{events} events; cluster {url} ({started} executors started here, {} tasks each); best and median of {} runs",
        b.concurrent_tasks, b.runs
    )?;
    f.write(out, g.output())
}
