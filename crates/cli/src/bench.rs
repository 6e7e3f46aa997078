//! `shoplens bench`: measured figures beside peers on the same data.

use std::io::Write;
use std::path::{Path, PathBuf};
use std::process::Command;
use std::time::Instant;

use anyhow::{Context, Result, bail};
use clap::{Args, Subcommand};
use serde::Serialize;
use serde_json::Value;
use shoplens_engine::Workspace;
use shoplens_engine::calendar;
use shoplens_engine::ingest::{self, IngestOptions, presets};
use shoplens_engine::models::funnel::Mode;
use shoplens_engine::people::funnel::{self, FunnelSpec};
use shoplens_engine::people::{activity, cohorts};
use shoplens_engine::storage::schema::Table;
use tokio::runtime::Runtime;

use crate::Global;
use crate::render::{Format, Frame, write_json};

mod baskets;
mod customers;
mod people;
mod recommend;

use baskets::*;
use customers::*;
use people::*;
use recommend::*;

#[derive(Debug, Args)]
pub(crate) struct BenchArgs {
    #[command(subcommand)]
    what: BenchWhat,
}

#[derive(Debug, Subcommand)]
enum BenchWhat {
    /// Ingest a Taobao-layout CSV, beside DuckDB converting the same CSV to Parquet.
    Ingest(IngestBench),
    /// A 3-step 24 h funnel over a Taobao-layout log, beside DuckDB SQL and ClickHouse's
    /// windowFunnel (chDB) on the same Parquet files.
    Funnel(FunnelBench),
    /// Hour × weekday activity (with DAU/WAU/MAU) and the monthly cohort matrix on the demo shop,
    /// beside DuckDB SQL on the same Parquet files.
    People(PeopleBench),
    /// BG/NBD fits on the CDNOW sample replicated 1000× and on a synthetic customer base, and
    /// k-means on RFM features, beside the Python `lifetimes` package and scikit-learn's KMeans on
    /// the same inputs.
    Customers(CustomersBench),
    /// FP-growth frequent itemsets on online-retail baskets and a seeded synthetic basket set,
    /// beside pyfim (Borgelt's C implementation) and mlxtend on the same baskets and support.
    Baskets(BasketsBench),
    /// Implicit ALS and item-item neighbours on online retail (with recall@10 on a temporal split)
    /// and on a seeded 1M users × 100k items matrix, beside the Python `implicit` package with the
    /// same factors, iterations, regularisation and confidence.
    Recommend(RecommendBench),
    /// The collector: sustained events/s of batched tracking with durability on, from a load
    /// generator on loopback, with latency, fsync batch sizes and the disk's own fsync rate.
    Collector(crate::bench_collector::CollectorBench),
    /// Dashboard pages over HTTP on the workspace (run `shoplens demo` first): first load and,
    /// after warm-up, p50 and p95 per page.
    Dashboard(crate::bench_dashboard::DashboardBench),
    /// Engine-backed analyses of the workspace in this process and on a Ballista cluster (a
    /// scheduler and executors started on loopback, or `--cluster URL`), side by side, with the
    /// answers compared. Needs a build with `--features ballista`.
    #[cfg(feature = "ballista")]
    ScaleOut(crate::bench_cluster::ScaleOutBench),
}

#[derive(Debug, Args)]
struct RecommendBench {
    /// Users of the synthetic matrix.
    #[arg(long, default_value_t = 1_000_000)]
    users: usize,
    /// Items of the synthetic matrix.
    #[arg(long, default_value_t = 100_000)]
    items: usize,
    /// Interactions per synthetic user.
    #[arg(long, default_value_t = 20)]
    per_user: usize,
    /// Online Retail file (the online-retail preset's input).
    #[arg(
        long,
        default_value = "../shared/data/online_retail/online_retail.csv.gz"
    )]
    online_retail: PathBuf,
    /// The temporal split on online retail.
    #[arg(long, default_value = "2011-11-01")]
    split_at: String,
    /// ALS factors.
    #[arg(long, default_value_t = 64)]
    factors: usize,
    /// ALS sweeps.
    #[arg(long, default_value_t = 15)]
    iterations: usize,
    #[command(flatten)]
    peers: Peers,
}

#[derive(Debug, Args)]
struct BasketsBench {
    /// Synthetic baskets (Zipf item popularity, planted groups).
    #[arg(long, default_value_t = 1_000_000)]
    baskets: usize,
    /// Items of the synthetic set.
    #[arg(long, default_value_t = 10_000)]
    items: u32,
    /// Minimum support of the synthetic set.
    #[arg(long, default_value = "0.0005")]
    support: String,
    /// Online Retail file (the online-retail preset's input).
    #[arg(
        long,
        default_value = "../shared/data/online_retail/online_retail.csv.gz"
    )]
    online_retail: PathBuf,
    /// Minimum support on online retail.
    #[arg(long, default_value = "0.005")]
    online_retail_support: String,
    /// Run mlxtend on sets of at most this many baskets (0 = never); it needs a one-hot frame.
    #[arg(long, default_value_t = 1_000_000)]
    mlxtend_max: usize,
    #[command(flatten)]
    peers: Peers,
}

#[derive(Debug, Args)]
struct CustomersBench {
    /// Customers of the synthetic BG/NBD base.
    #[arg(long, default_value_t = 10_000_000)]
    customers: usize,
    /// Customers clustered by k-means.
    #[arg(long, default_value_t = 1_000_000)]
    kmeans: usize,
    /// Clusters of the timed k-means (3 seeded k-means++ starts each, as scikit-learn's n_init=3).
    #[arg(long, default_value_t = 5)]
    k: usize,
    #[command(flatten)]
    peers: Peers,
    /// Fit lifetimes on at most this many customers of each base (0 = skip lifetimes); the
    /// synthetic 10M base takes lifetimes many minutes.
    #[arg(long, default_value_t = 10_000_000)]
    peer_max: usize,
}

#[derive(Debug, Args)]
struct PeopleBench {
    /// Demo scale (50 ≈ 120M events).
    #[arg(long, default_value_t = 50.0)]
    scale: f64,
    #[command(flatten)]
    peers: Peers,
}

#[derive(Debug, Args)]
struct FunnelBench {
    /// Events in the generated log.
    #[arg(long, default_value_t = 10_000_000)]
    rows: u64,
    #[command(flatten)]
    peers: Peers,
    /// ClickHouse windowFunnel mode for every tool (DuckDB SQL has the default mode only).
    #[arg(long, default_value = "default")]
    mode: String,
}

#[derive(Debug, Args)]
struct IngestBench {
    /// Rows of the generated CSV.
    #[arg(long, default_value_t = 10_000_000)]
    rows: u64,
    #[command(flatten)]
    peers: Peers,
}

/// Where the inputs go, how often each task runs, and the Python that runs the peers.
#[derive(Debug, Args)]
struct Peers {
    /// Folder for generated inputs, the files handed to the peers and workspaces (reused when
    /// present).
    #[arg(long, default_value = "bench-data")]
    dir: PathBuf,
    /// Timed runs of each task (the best and the median are reported).
    #[arg(long, default_value_t = 3)]
    runs: usize,
    /// Python with the peers' packages (each peer is skipped when it cannot import).
    #[arg(long, default_value = "python3")]
    python: String,
}

#[derive(Debug, Serialize)]
struct Figure {
    tool: String,
    task: String,
    rows: u64,
    input_mb: f64,
    best_s: f64,
    median_s: f64,
    rows_per_s: f64,
}

pub(crate) fn run(g: &Global, a: BenchArgs, rt: &Runtime, out: &mut dyn Write) -> Result<()> {
    match a.what {
        BenchWhat::Ingest(b) => ingest_bench(g, &b, out),
        BenchWhat::Funnel(b) => funnel_bench(g, &b, rt, out),
        BenchWhat::People(b) => people_bench(g, &b, rt, out),
        BenchWhat::Customers(b) => customers_bench(g, &b, rt, out),
        BenchWhat::Baskets(b) => baskets_bench(g, &b, rt, out),
        BenchWhat::Recommend(b) => recommend_bench(g, &b, rt, out),
        BenchWhat::Collector(b) => crate::bench_collector::collector_bench(g, &b, rt, out),
        BenchWhat::Dashboard(b) => crate::bench_dashboard::dashboard_bench(g, &b, rt, out),
        #[cfg(feature = "ballista")]
        BenchWhat::ScaleOut(b) => crate::bench_cluster::scale_out_bench(g, &b, out),
    }
}

/// The seeded Taobao-layout CSV of `rows` rows in `dir`, written when absent.
fn taobao_csv(g: &Global, dir: &Path, rows: u64, runs: usize) -> Result<PathBuf> {
    if runs == 0 {
        bail!("--runs must be at least 1");
    }
    std::fs::create_dir_all(dir).with_context(|| format!("creating {}", dir.display()))?;
    let csv = dir.join(format!("taobao-{rows}.csv"));
    if !csv.exists() {
        note(g, &format!("writing {rows} rows to {} …", csv.display()));
        shoplens_engine::demo::write_taobao_layout(&csv, rows, 42)?;
    }
    Ok(csv)
}

fn ingest_bench(g: &Global, b: &IngestBench, out: &mut dyn Write) -> Result<()> {
    let csv = taobao_csv(g, &b.peers.dir, b.rows, b.peers.runs)?;
    let mb = std::fs::metadata(&csv)?.len() as f64 / 1e6;
    let preset = presets::preset("taobao")?;
    let mut ours = Vec::new();
    for run in 0..b.peers.runs {
        let ws_dir = b.peers.dir.join(format!("ws-{run}"));
        let _ = std::fs::remove_dir_all(&ws_dir);
        let ws = Workspace::open(&ws_dir)?;
        let t = Instant::now();
        let s = ingest::ingest(
            &ws,
            std::slice::from_ref(&csv),
            &preset,
            &IngestOptions { force: true },
            &|_| {},
        )?;
        ours.push(t.elapsed().as_secs_f64());
        if s.files[0].stored != b.rows {
            bail!("stored {} of {} rows", s.files[0].stored, b.rows);
        }
        let _ = std::fs::remove_dir_all(&ws_dir);
    }
    let mut figures = vec![figure(
        "shoplens",
        "CSV → workspace (Parquet, typed, mapped)",
        b.rows,
        mb,
        &mut ours,
    )];
    match duckdb_runs(&b.peers.python, &csv, &b.peers.dir, b.peers.runs) {
        Ok(mut times) => figures.push(figure(
            "duckdb",
            "CSV → Parquet (COPY … TO)",
            b.rows,
            mb,
            &mut times,
        )),
        Err(e) => note(g, &format!("duckdb skipped: {e:#}")),
    }
    if g.format == Format::Json {
        return write_json(
            out,
            &serde_json::json!({ "bench": "ingest", "threads": rayon_threads(), "figures": figures }),
        );
    }
    let mut f = Frame::new(&[
        "tool", "task", "rows", "input MB", "best s", "median s", "rows/s",
    ]);
    for x in &figures {
        f.push(vec![
            Value::from(x.tool.clone()),
            Value::from(x.task.clone()),
            Value::from(x.rows),
            Value::from(format!("{:.0}", x.input_mb)),
            Value::from(format!("{:.2}", x.best_s)),
            Value::from(format!("{:.2}", x.median_s)),
            Value::from(format!("{:.0}", x.rows_per_s)),
        ]);
    }
    f.write(out, g.output())
}

fn rayon_threads() -> usize {
    std::thread::available_parallelism().map_or(1, |n| n.get())
}

fn figure(tool: &str, task: &str, rows: u64, mb: f64, times: &mut [f64]) -> Figure {
    times.sort_by(f64::total_cmp);
    let best = times[0];
    let median = times[times.len() / 2];
    Figure {
        tool: tool.into(),
        task: task.into(),
        rows,
        input_mb: mb,
        best_s: best,
        median_s: median,
        rows_per_s: rows as f64 / best,
    }
}

/// Times DuckDB converting the CSV to Parquet, in a child Python process (timed inside it so that
/// interpreter start-up is not counted).
fn duckdb_runs(python: &str, csv: &Path, dir: &Path, runs: usize) -> Result<Vec<f64>> {
    let script = r#"
import sys, time, duckdb
csv, out, runs = sys.argv[1], sys.argv[2], int(sys.argv[3])
for _ in range(runs):
    con = duckdb.connect()
    t = time.perf_counter()
    con.execute(f"COPY (SELECT * FROM read_csv('{csv}', header=false, columns={{'user_id':'BIGINT','item_id':'BIGINT','category_id':'BIGINT','behavior_type':'VARCHAR','ts':'BIGINT'}})) TO '{out}' (FORMAT parquet)")
    print(time.perf_counter() - t)
    con.close()
"#;
    let out = dir.join("duckdb.parquet");
    let stdout = run_python(
        python,
        script,
        &[
            &csv.display().to_string(),
            &out.display().to_string(),
            &runs.to_string(),
        ],
    );
    let _ = std::fs::remove_file(&out);
    let times: Vec<f64> = stdout?
        .lines()
        .filter_map(|l| l.trim().parse().ok())
        .collect();
    if times.is_empty() {
        bail!("no timings from duckdb");
    }
    Ok(times)
}

/// Runs a Python script with arguments; its stdout, or the last line of its stderr as the error.
fn run_python(python: &str, script: &str, args: &[&str]) -> Result<String> {
    let o = Command::new(python)
        .arg("-c")
        .arg(script)
        .args(args)
        .output()
        .with_context(|| format!("running {python}"))?;
    if !o.status.success() {
        bail!(
            "{}",
            String::from_utf8_lossy(&o.stderr)
                .lines()
                .last()
                .unwrap_or("python failed")
        );
    }
    Ok(String::from_utf8_lossy(&o.stdout).into_owned())
}

fn note(g: &Global, msg: &str) {
    if !g.quiet {
        #[expect(clippy::print_stderr, reason = "progress notes of a benchmark")]
        {
            eprintln!("{msg}");
        }
    }
}

/// Writes f64 columns one after another, little-endian, for numpy's `fromfile`.
fn write_columns(path: &Path, cols: &[Vec<f64>]) -> Result<()> {
    let mut buf = Vec::with_capacity(cols.iter().map(|c| c.len() * 8).sum());
    for c in cols {
        for v in c {
            buf.extend_from_slice(&v.to_le_bytes());
        }
    }
    std::fs::write(path, buf).with_context(|| format!("writing {}", path.display()))
}

fn timed<T>(runs: usize, mut f: impl FnMut() -> Result<T>) -> Result<(Vec<f64>, T)> {
    let mut times = Vec::new();
    let mut last = None;
    for _ in 0..runs.max(1) {
        let t = Instant::now();
        last = Some(f()?);
        times.push(t.elapsed().as_secs_f64());
    }
    match last {
        Some(v) => Ok((times, v)),
        None => bail!("no run"),
    }
}

/// Peak resident memory of this process so far, in MB (Linux; None elsewhere).
fn peak_rss_mb() -> Option<f64> {
    status_mb("VmHWM:")
}

/// A memory figure of /proc/self/status in MB.
fn status_mb(key: &str) -> Option<f64> {
    let s = std::fs::read_to_string("/proc/self/status").ok()?;
    let kb: f64 = s
        .lines()
        .find(|l| l.starts_with(key))?
        .split_whitespace()
        .nth(1)?
        .parse()
        .ok()?;
    Some(kb / 1024.0)
}
