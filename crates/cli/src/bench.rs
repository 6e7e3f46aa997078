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

fn funnel_bench(g: &Global, b: &FunnelBench, rt: &Runtime, out: &mut dyn Write) -> Result<()> {
    let Some(mode) = Mode::parse(&b.mode) else {
        bail!("--mode must be default, strict-order or strict-increase");
    };
    let csv = taobao_csv(g, &b.peers.dir, b.rows, b.peers.runs)?;
    let ws_dir = b.peers.dir.join(format!("funnel-ws-{}", b.rows));
    let ws = Workspace::open(&ws_dir)?;
    if ws.manifest()?.rows(Table::Events) != b.rows {
        note(g, &format!("ingesting {} …", csv.display()));
        ingest::ingest(
            &ws,
            std::slice::from_ref(&csv),
            &presets::preset("taobao")?,
            &IngestOptions { force: true },
            &|_| {},
        )?;
    }
    let steps = ["product_view", "add_to_cart", "order"];
    let mut spec = FunnelSpec::new(
        steps.iter().map(|s| (*s).to_string()).collect(),
        86_400_000_000,
    );
    spec.mode = mode;
    let mut ours = Vec::new();
    let mut counts = Vec::new();
    for _ in 0..b.peers.runs {
        let t = Instant::now();
        let r = rt.block_on(funnel::funnel(&ws, &spec))?;
        ours.push(t.elapsed().as_secs_f64());
        counts = std::iter::once(r.users_total)
            .chain(r.steps.iter().map(|s| s.users))
            .collect();
    }
    let mut rows = vec![(
        figure(
            "shoplens",
            "funnel (window_funnel aggregate)",
            b.rows,
            0.0,
            &mut ours,
        ),
        counts.clone(),
    )];
    let files: Vec<String> = ws
        .manifest()?
        .files(Table::Events)
        .iter()
        .map(|f| ws.path_of(f).display().to_string())
        .collect();
    for peer in ["duckdb", "chdb"] {
        if peer == "duckdb" && mode != Mode::Default {
            continue;
        }
        match funnel_peer(&b.peers.python, peer, &files, b.peers.runs, mode) {
            Ok((mut times, c)) => {
                let task = if peer == "duckdb" {
                    "funnel in SQL (ASOF joins)"
                } else {
                    "windowFunnel"
                };
                rows.push((figure(peer, task, b.rows, 0.0, &mut times), c));
            }
            Err(e) => note(g, &format!("{peer} skipped: {e:#}")),
        }
    }
    let agree = rows.iter().all(|r| r.1 == counts);
    if g.format == Format::Json {
        let figures: Vec<Value> = rows
            .iter()
            .map(|(f, c)| serde_json::json!({"figure": f, "counts": c}))
            .collect();
        return write_json(
            out,
            &serde_json::json!({ "bench": "funnel", "mode": mode.name(), "threads": rayon_threads(), "agree": agree, "figures": figures }),
        );
    }
    let mut f = Frame::new(&[
        "tool",
        "task",
        "events",
        "best s",
        "median s",
        "events/s",
        "users total / step 1 / 2 / 3",
    ]);
    for (x, c) in &rows {
        f.push(vec![
            Value::from(x.tool.clone()),
            Value::from(x.task.clone()),
            Value::from(x.rows),
            Value::from(format!("{:.3}", x.best_s)),
            Value::from(format!("{:.3}", x.median_s)),
            Value::from(format!("{:.0}", x.rows_per_s)),
            Value::from(c.iter().map(u64::to_string).collect::<Vec<_>>().join(" / ")),
        ]);
    }
    f.write(out, g.output())?;
    if g.format == Format::Table {
        writeln!(out, "counts {}", if agree { "agree" } else { "DIFFER" })?;
    }
    if !agree {
        bail!("the tools disagree on the funnel counts");
    }
    Ok(())
}

/// Times a peer computing the same funnel from the workspace's Parquet files, in a child Python
/// process (timed inside it); returns the times and (users total, step 1, 2, 3).
fn funnel_peer(
    python: &str,
    peer: &str,
    files: &[String],
    runs: usize,
    mode: Mode,
) -> Result<(Vec<f64>, Vec<u64>)> {
    let script = r#"
import sys, time, json
peer, files, runs, mode = sys.argv[1], json.loads(sys.argv[2]), int(sys.argv[3]), sys.argv[4]
W = 86400
if peer == "duckdb":
    import duckdb
    con = duckdb.connect()
    con.execute("SET enable_progress_bar = false")
    q = f"""
    WITH e AS (SELECT user_id, epoch(ts)::BIGINT AS t, event FROM read_parquet({files!r})),
    a AS (SELECT user_id, t FROM e WHERE event = 'product_view'),
    b AS (SELECT b.user_id, b.t, a.t AS s FROM (SELECT user_id, t FROM e WHERE event = 'add_to_cart') b
          ASOF JOIN a ON b.user_id = a.user_id AND b.t >= a.t WHERE b.t - a.t <= {W}),
    bm AS (SELECT user_id, t, max(s) OVER (PARTITION BY user_id ORDER BY t) AS s FROM b),
    c AS (SELECT c.user_id FROM (SELECT user_id, t FROM e WHERE event = 'order') c
          ASOF JOIN bm ON c.user_id = bm.user_id AND c.t >= bm.t WHERE c.t - bm.s <= {W})
    SELECT (SELECT count(DISTINCT user_id) FROM e), (SELECT count(DISTINCT user_id) FROM a),
           (SELECT count(DISTINCT user_id) FROM b), (SELECT count(DISTINCT user_id) FROM c)"""
    run = lambda: con.execute(q).fetchone()
else:
    import chdb
    arg = {"default": "", "strict-order": ", 'strict_order'", "strict-increase": ", 'strict_increase'"}[mode]
    import os
    folder = os.path.dirname(files[0])
    # ClickHouse globs do not span folders: read the table folder, which holds exactly the files.
    assert sorted(os.path.join(folder, f) for f in os.listdir(folder)) == sorted(files), "extra files"
    src = os.path.join(folder, "*.parquet")
    q = f"""SELECT count(), countIf(l >= 1), countIf(l >= 2), countIf(l >= 3) FROM (
        SELECT user_id, windowFunnel({W}{arg})(toDateTime(ts), event = 'product_view', event = 'add_to_cart', event = 'order') AS l
        FROM file('{src}', Parquet) GROUP BY user_id)"""
    run = lambda: [int(x) for x in chdb.query(q, "CSV").data().strip().split(",")]
for _ in range(runs):
    t = time.perf_counter()
    r = run()
    print(json.dumps({"s": time.perf_counter() - t, "counts": [int(x) for x in r]}))
"#;
    let stdout = run_python(
        python,
        script,
        &[
            peer,
            &serde_json::to_string(files)?,
            &runs.to_string(),
            mode.name(),
        ],
    )?;
    let mut times = Vec::new();
    let mut counts = Vec::new();
    for l in stdout.lines() {
        let v: Value = serde_json::from_str(l)?;
        times.push(v["s"].as_f64().unwrap_or(f64::NAN));
        counts = v["counts"]
            .as_array()
            .map(|a| a.iter().filter_map(Value::as_u64).collect())
            .unwrap_or_default();
    }
    if times.is_empty() {
        bail!("no timings from {peer}");
    }
    Ok((times, counts))
}

fn people_bench(g: &Global, b: &PeopleBench, rt: &Runtime, out: &mut dyn Write) -> Result<()> {
    if b.peers.runs == 0 {
        bail!("--runs must be at least 1");
    }
    let ws_dir = b.peers.dir.join(format!("demo-{}", b.scale));
    let ws = Workspace::open(&ws_dir)?;
    if ws.manifest()?.rows(Table::Events) == 0 {
        note(
            g,
            &format!(
                "building the demo shop at scale {} in {} …",
                b.scale,
                ws_dir.display()
            ),
        );
        shoplens_engine::demo::generate(
            &ws,
            &shoplens_engine::demo::DemoParams {
                seed: 42,
                scale: b.scale,
            },
            &|_, _| {},
        )?;
    }
    let events = ws.manifest()?.rows(Table::Events);
    let mut rows = Vec::new();
    let mut act_t = Vec::new();
    let mut act_sum = Vec::new();
    for _ in 0..b.peers.runs {
        let t = Instant::now();
        let r = rt.block_on(activity::activity(&ws, &Default::default()))?;
        act_t.push(t.elapsed().as_secs_f64());
        act_sum = vec![
            r.heatmap.iter().map(|c| c.events).sum::<u64>(),
            r.heatmap.iter().map(|c| c.orders).sum(),
            r.daily.iter().map(|d| d.dau).sum(),
            r.daily.iter().map(|d| d.mau).sum(),
        ];
    }
    rows.push((
        "shoplens",
        "activity",
        figure("shoplens", "activity", events, 0.0, &mut act_t),
        act_sum.clone(),
    ));
    let mut co_t = Vec::new();
    let mut co_sum = Vec::new();
    for _ in 0..b.peers.runs {
        let t = Instant::now();
        let r = rt.block_on(cohorts::cohorts(&ws, &Default::default()))?;
        co_t.push(t.elapsed().as_secs_f64());
        co_sum = vec![
            r.cohorts.iter().map(|c| c.size).sum::<u64>(),
            r.cohorts
                .iter()
                .flat_map(|c| c.periods.iter().map(|p| p.active))
                .sum(),
        ];
    }
    rows.push((
        "shoplens",
        "cohorts",
        figure("shoplens", "cohorts", events, 0.0, &mut co_t),
        co_sum.clone(),
    ));
    let manifest = ws.manifest()?;
    let files: serde_json::Map<String, Value> = [
        Table::Events,
        Table::Orders,
        Table::OrderItems,
        Table::Products,
    ]
    .iter()
    .map(|t| {
        (
            t.name().to_string(),
            Value::from(
                manifest
                    .files(*t)
                    .iter()
                    .map(|f| ws.path_of(f).display().to_string())
                    .collect::<Vec<_>>(),
            ),
        )
    })
    .collect();
    let tz = manifest
        .settings
        .timezone
        .clone()
        .unwrap_or_else(|| "UTC".into());
    match people_peer(&b.peers.python, &Value::Object(files), &tz, b.peers.runs) {
        Ok(peer) => {
            for (task, mut times, sums) in peer {
                rows.push((
                    "duckdb",
                    if task == "activity" {
                        "activity"
                    } else {
                        "cohorts"
                    },
                    figure("duckdb", &task, events, 0.0, &mut times),
                    sums,
                ));
            }
        }
        Err(e) => note(g, &format!("duckdb skipped: {e:#}")),
    }
    let agree = rows.iter().all(|r| {
        r.3 == if r.1 == "activity" {
            act_sum.clone()
        } else {
            co_sum.clone()
        }
    });
    if g.format == Format::Json {
        let figures: Vec<Value> = rows
            .iter()
            .map(|(tool, task, f, sums)| serde_json::json!({"tool": tool, "task": task, "figure": f, "checksums": sums}))
            .collect();
        return write_json(
            out,
            &serde_json::json!({"bench": "people", "scale": b.scale, "events": events, "agree": agree, "figures": figures}),
        );
    }
    let mut f = Frame::new(&["tool", "task", "events", "best s", "median s", "checksums"]);
    for (tool, task, x, sums) in &rows {
        f.push(vec![
            Value::from(*tool),
            Value::from(*task),
            Value::from(events),
            Value::from(format!("{:.3}", x.best_s)),
            Value::from(format!("{:.3}", x.median_s)),
            Value::from(
                sums.iter()
                    .map(u64::to_string)
                    .collect::<Vec<_>>()
                    .join(" / "),
            ),
        ]);
    }
    f.write(out, g.output())?;
    if g.format == Format::Table {
        writeln!(
            out,
            "checksums (activity: events, orders, Σ DAU, Σ MAU; cohorts: members, Σ active cells) {}",
            if agree { "agree" } else { "DIFFER" }
        )?;
    }
    if !agree {
        bail!("the tools disagree");
    }
    Ok(())
}

type PeerFigures = Vec<(String, Vec<f64>, Vec<u64>)>;

/// DuckDB computing the same activity and cohort figures from the workspace's Parquet files.
fn people_peer(python: &str, files: &Value, tz: &str, runs: usize) -> Result<PeerFigures> {
    let script = r#"
import sys, time, json, duckdb
files, tz, runs = json.loads(sys.argv[1]), sys.argv[2], int(sys.argv[3])
con = duckdb.connect()
con.execute("SET enable_progress_bar = false")
con.execute(f"SET TimeZone = '{tz}'")
for t, fs in files.items():
    con.execute(f"CREATE VIEW {t} AS SELECT * FROM read_parquet({fs!r})")
paid = "status IN ('completed', 'paid')"
loc = "(ts AT TIME ZONE '" + tz + "')"
activity = [
  f"SELECT category, isodow({loc}) d, hour({loc}) h, count(*) n FROM events GROUP BY ALL",
  f"SELECT isodow({loc}) d, hour({loc}) h, count(*) n, sum(net_amount::DOUBLE) r FROM orders WHERE {paid} GROUP BY ALL",
  f"SELECT p.category, isodow({loc}) d, hour({loc}) h, count(DISTINCT o.order_id), sum(i.quantity * i.unit_price::DOUBLE - coalesce(i.discount::DOUBLE, 0)) FROM orders o JOIN order_items i USING (order_id) JOIN products p USING (item_id) WHERE {paid} AND p.category IS NOT NULL GROUP BY ALL",
  f"""WITH pd AS (SELECT DISTINCT coalesce(user_id, anonymous_id) p, ({loc})::DATE d FROM events WHERE coalesce(user_id, anonymous_id) IS NOT NULL),
     days AS (SELECT unnest(range((SELECT min(d) FROM pd), (SELECT max(d) FROM pd) + 1, INTERVAL 1 DAY))::DATE d),
     dau AS (SELECT d, count(*) n FROM pd GROUP BY d),
     mau AS (SELECT days.d, count(DISTINCT pd.p) n FROM days JOIN pd ON pd.d BETWEEN days.d - 29 AND days.d GROUP BY days.d)
     SELECT (SELECT sum(n) FROM dau), (SELECT sum(n) FROM mau)""",
]
cohorts = f"""WITH po AS (SELECT user_id, date_trunc('month', {loc}) m, net_amount::DOUBLE r FROM orders WHERE {paid} AND user_id IS NOT NULL AND ts IS NOT NULL),
  f AS (SELECT user_id, min(m) c FROM po GROUP BY user_id),
  cells AS (SELECT f.c, date_diff('month', f.c, po.m) k, count(DISTINCT po.user_id) a, sum(po.r) r FROM f JOIN po USING (user_id) GROUP BY ALL)
  SELECT (SELECT count(*) FROM f), (SELECT sum(a) FROM cells)"""
for task in ["activity", "cohorts"]:
    times = []
    for _ in range(runs):
        t = time.perf_counter()
        if task == "activity":
            ev = con.execute(activity[0]).fetchall()
            od = con.execute(activity[1]).fetchall()
            con.execute(activity[2]).fetchall()
            act = con.execute(activity[3]).fetchone()
            sums = [sum(r[3] for r in ev), sum(r[2] for r in od), int(act[0]), int(act[1])]
        else:
            r = con.execute(cohorts).fetchone()
            sums = [int(r[0]), int(r[1])]
        times.append(time.perf_counter() - t)
    print(json.dumps({"task": task, "times": times, "sums": sums}))
"#;
    let stdout = run_python(python, script, &[&files.to_string(), tz, &runs.to_string()])?;
    let mut outv = Vec::new();
    for l in stdout.lines() {
        let v: Value = serde_json::from_str(l)?;
        outv.push((
            v["task"].as_str().unwrap_or("").to_string(),
            v["times"]
                .as_array()
                .map(|a| a.iter().filter_map(Value::as_f64).collect())
                .unwrap_or_default(),
            v["sums"]
                .as_array()
                .map(|a| a.iter().filter_map(Value::as_u64).collect())
                .unwrap_or_default(),
        ));
    }
    Ok(outv)
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

fn customers_bench(
    g: &Global,
    b: &CustomersBench,
    rt: &Runtime,
    out: &mut dyn Write,
) -> Result<()> {
    use shoplens_engine::customers::clv::{ClvSpec, clv};
    use shoplens_engine::models::clv::{self as m, BgNbd, GammaGamma, Rft};
    use shoplens_engine::models::rfm;
    std::fs::create_dir_all(&b.peers.dir)
        .with_context(|| format!("creating {}", b.peers.dir.display()))?;
    // The CDNOW sample's calibration summaries, through the same path as `shoplens clv`.
    let ws_dir = b.peers.dir.join("cdnow-sample-ws");
    if !ws_dir.exists() {
        let ws = Workspace::open(&ws_dir)?;
        let p = presets::preset("cdnow")?;
        let file = PathBuf::from("../shared/data/cdnow/CDNOW_sample.txt");
        ingest::ingest(&ws, &[file], &p, &IngestOptions::default(), &|_| {})?;
    }
    let ws = Workspace::open_existing(&ws_dir)?;
    let spec = ClvSpec {
        calibration_end: chrono::NaiveDate::from_ymd_opt(1997, 9, 30),
        horizon: 39,
        ..ClvSpec::default()
    };
    let report = rt.block_on(clv(&ws, &spec))?;
    let sample: Vec<Rft> = report
        .customers
        .iter()
        .map(|c| Rft::new(c.frequency, c.recency, c.t))
        .collect();
    let cdnow: Vec<Rft> = (0..1000).flat_map(|_| sample.iter().copied()).collect();
    note(g, &format!("simulating {} customers …", b.customers));
    let truth = BgNbd {
        r: 0.25,
        alpha: 4.0,
        a: 0.8,
        b: 2.5,
    };
    let synthetic = m::simulate(&truth, b.customers, 364, 7.0, 42);
    let mut rows: Vec<Value> = Vec::new();
    for (name, base) in [("cdnow ×1000", &cdnow), ("synthetic", &synthetic)] {
        let (mut times, fit) = timed(b.peers.runs, || Ok(m::fit_bgnbd(base)?))?;
        let f = figure("shoplens", "bgnbd fit", base.len() as u64, 0.0, &mut times);
        let p = fit.params;
        rows.push(serde_json::json!({"tool": "shoplens", "task": format!("BG/NBD {name}"), "customers": base.len(),
            "best_s": f.best_s, "median_s": f.median_s, "params": [p.r, p.alpha, p.a, p.b]}));
        if b.peer_max == 0 || base.len() > b.peer_max {
            continue;
        }
        let file = b.peers.dir.join(format!("bgnbd-{}.f64", base.len()));
        write_columns(
            &file,
            &[
                base.iter().map(|c| f64::from(c.frequency)).collect(),
                base.iter().map(|c| c.recency).collect(),
                base.iter().map(|c| c.t).collect(),
            ],
        )?;
        note(g, &format!("lifetimes on {} customers …", base.len()));
        let script = r#"
import sys, time, json
import numpy as np
from lifetimes import BetaGeoFitter
a = np.fromfile(sys.argv[1], dtype="<f8").reshape(3, -1)
t = time.perf_counter()
bg = BetaGeoFitter().fit(a[0], a[1], a[2])
s = time.perf_counter() - t
p = bg.params_
print(json.dumps({"seconds": s, "params": [p["r"], p["alpha"], p["a"], p["b"]]}))
"#;
        match run_python(&b.peers.python, script, &[&file.display().to_string()]) {
            Ok(o) => {
                let v: Value = serde_json::from_str(o.trim())?;
                let theirs: Vec<f64> = v["params"]
                    .as_array()
                    .map(|a| a.iter().filter_map(Value::as_f64).collect())
                    .unwrap_or_default();
                let diff = theirs
                    .iter()
                    .zip([p.r, p.alpha, p.a, p.b])
                    .map(|(a, b)| (a - b).abs())
                    .fold(0.0, f64::max);
                rows.push(serde_json::json!({"tool": "lifetimes", "task": format!("BG/NBD {name}"), "customers": base.len(),
                    "best_s": v["seconds"], "median_s": v["seconds"], "params": theirs, "max_param_diff": diff}));
            }
            Err(e) => note(g, &format!("lifetimes skipped: {e}")),
        }
        let _ = std::fs::remove_file(&file);
    }
    // k-means on standardised log R, F, M of a synthetic base with Gamma-Gamma spend.
    let base = &synthetic[..b.kmeans.min(synthetic.len())];
    let spend = m::simulate_spend(
        &GammaGamma {
            p: 6.25,
            q: 3.74,
            v: 15.44,
        },
        base,
        43,
    );
    let mut pts: Vec<[f64; 3]> = base
        .iter()
        .zip(&spend)
        .map(|(c, s)| {
            [
                ((c.t - c.recency) * 7.0).ln_1p(),
                f64::from(c.frequency + 1).ln(),
                (s * f64::from(c.frequency + 1)).ln_1p(),
            ]
        })
        .collect();
    rfm::standardise(&mut pts);
    let (mut times, km) = timed(b.peers.runs, || {
        rfm::kmeans(&pts, b.k, 42, 3).context("k-means needs more points than clusters")
    })?;
    let f = figure("shoplens", "kmeans", pts.len() as u64, 0.0, &mut times);
    rows.push(serde_json::json!({"tool": "shoplens", "task": format!("k-means k={} n_init=3", b.k), "customers": pts.len(),
        "best_s": f.best_s, "median_s": f.median_s, "inertia": km.inertia}));
    let file = b.peers.dir.join("kmeans.f64");
    write_columns(
        &file,
        &(0..3)
            .map(|d| pts.iter().map(|p| p[d]).collect())
            .collect::<Vec<_>>(),
    )?;
    let script = r#"
import sys, time, json
import numpy as np
from sklearn.cluster import KMeans
x = np.ascontiguousarray(np.fromfile(sys.argv[1], dtype="<f8").reshape(3, -1).T)
k = int(sys.argv[2])
times = []
for _ in range(int(sys.argv[3])):
    t = time.perf_counter()
    km = KMeans(n_clusters=k, n_init=3, init="k-means++", algorithm="lloyd", random_state=0).fit(x)
    times.append(time.perf_counter() - t)
print(json.dumps({"times": times, "inertia": km.inertia_}))
"#;
    match run_python(
        &b.peers.python,
        script,
        &[
            &file.display().to_string(),
            &b.k.to_string(),
            &b.peers.runs.to_string(),
        ],
    ) {
        Ok(o) => {
            let v: Value = serde_json::from_str(o.trim())?;
            let mut t: Vec<f64> = v["times"]
                .as_array()
                .map(|a| a.iter().filter_map(Value::as_f64).collect())
                .unwrap_or_default();
            if !t.is_empty() {
                let f = figure("scikit-learn", "kmeans", pts.len() as u64, 0.0, &mut t);
                rows.push(serde_json::json!({"tool": "scikit-learn", "task": format!("k-means k={} n_init=3", b.k), "customers": pts.len(),
                    "best_s": f.best_s, "median_s": f.median_s, "inertia": v["inertia"]}));
            }
        }
        Err(e) => note(g, &format!("scikit-learn skipped: {e}")),
    }
    let _ = std::fs::remove_file(&file);
    // The whole automatic clustering of `shoplens rfm`: k = 2..8 chosen by silhouette on a
    // sample, then the chosen k fitted on everyone.
    let (mut times, _) = timed(1, || {
        let (_, k) = rfm::choose_k(&pts, &(2..=8).collect::<Vec<_>>(), 42).context("no k")?;
        rfm::kmeans(&pts, k, 42, 3).context("k-means needs more points than clusters")
    })?;
    let f = figure("shoplens", "kmeans auto", pts.len() as u64, 0.0, &mut times);
    rows.push(serde_json::json!({"tool": "shoplens", "task": "rfm clustering (k=2..8 by silhouette)", "customers": pts.len(),
        "best_s": f.best_s, "median_s": f.median_s}));
    if g.format == Format::Json {
        return write_json(
            out,
            &serde_json::json!({"bench": "customers", "figures": rows}),
        );
    }
    let mut t = Frame::new(&["tool", "task", "customers", "best s", "median s", "check"]);
    for r in &rows {
        let check = if let Some(d) = r["max_param_diff"].as_f64() {
            format!("max |Δparam| {d:.1e}")
        } else if let Some(i) = r["inertia"].as_f64() {
            format!("inertia {i:.1}")
        } else if let Some(p) = r["params"].as_array() {
            p.iter()
                .filter_map(Value::as_f64)
                .map(|v| format!("{v:.4}"))
                .collect::<Vec<_>>()
                .join(" ")
        } else {
            String::new()
        };
        t.push(vec![
            r["tool"].clone(),
            r["task"].clone(),
            r["customers"].clone(),
            Value::from(format!("{:.3}", r["best_s"].as_f64().unwrap_or(f64::NAN))),
            Value::from(format!("{:.3}", r["median_s"].as_f64().unwrap_or(f64::NAN))),
            Value::from(check),
        ]);
    }
    t.write(out, g.output())
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

fn baskets_bench(g: &Global, b: &BasketsBench, rt: &Runtime, out: &mut dyn Write) -> Result<()> {
    use shoplens_engine::goods::baskets::{BasketSpec, load};
    use shoplens_engine::models::baskets::{self as mb, Baskets, Threshold};
    std::fs::create_dir_all(&b.peers.dir)
        .with_context(|| format!("creating {}", b.peers.dir.display()))?;
    let mut sets: Vec<(String, Baskets, Threshold)> = Vec::new();
    note(g, &format!("generating {} baskets …", b.baskets));
    sets.push((
        format!("synthetic {}k", b.baskets / 1000),
        mb::generate(b.baskets, b.items, 42),
        Threshold::parse(&b.support).map_err(anyhow::Error::msg)?,
    ));
    let ws = online_retail_ws(&b.peers.dir, &b.online_retail)?;
    let t = Threshold::parse(&b.online_retail_support).map_err(anyhow::Error::msg)?;
    let loaded = rt.block_on(load(&ws, &BasketSpec::new(t, t)))?;
    sets.push(("online retail".into(), loaded.baskets, t));
    let mut rows: Vec<Value> = Vec::new();
    for (name, baskets, t) in &sets {
        let min = t.min_count(baskets.len() as u64);
        // Reset the peak-memory mark (Linux), so the figure is the mining's, not the ingest's.
        let _ = std::fs::write("/proc/self/clear_refs", "5");
        let before = status_mb("VmRSS:");
        let (mut times, found) = timed(b.peers.runs, || {
            Ok(mb::frequent_itemsets(baskets, min, usize::MAX))
        })?;
        let f = figure(
            "shoplens",
            "fp-growth",
            baskets.len() as u64,
            0.0,
            &mut times,
        );
        rows.push(serde_json::json!({"tool": "shoplens", "set": name, "baskets": baskets.len(), "min_count": min,
            "itemsets": found.len(), "best_s": f.best_s, "median_s": f.median_s,
            "peak_rss_mb": peak_rss_mb(), "baskets_mb": baskets.heap_bytes() as f64 / 1e6,
            "mining_mb": peak_rss_mb().zip(before).map(|(p, b)| p - b)}));
        drop(found);
        let file = b.peers.dir.join("baskets.txt");
        let mut text = String::with_capacity(baskets.len() * 24);
        for k in 0..baskets.len() {
            let line: Vec<String> = baskets.get(k).iter().map(u32::to_string).collect();
            text.push_str(&line.join(","));
            text.push('\n');
        }
        std::fs::write(&file, text).with_context(|| format!("writing {}", file.display()))?;
        let script = r#"
import sys, time, json
def status(key):
    for l in open("/proc/self/status"):
        if l.startswith(key):
            return int(l.split()[1]) / 1024
tool, path, min_count, runs = sys.argv[1], sys.argv[2], int(sys.argv[3]), int(sys.argv[4])
tracts = [l.rstrip("\n").split(",") for l in open(path)]
base = status("VmRSS:")
times, n = [], 0
for _ in range(runs):
    if tool == "pyfim":
        from fim import fpgrowth
        t = time.perf_counter()
        n = len(fpgrowth(tracts, target="s", supp=-min_count, zmin=1, report="a"))
    else:
        import pandas as pd
        from mlxtend.preprocessing import TransactionEncoder
        from mlxtend.frequent_patterns import fpgrowth
        te = TransactionEncoder()
        m = te.fit(tracts).transform(tracts, sparse=True)
        df = pd.DataFrame.sparse.from_spmatrix(m, columns=te.columns_)
        t = time.perf_counter()
        n = len(fpgrowth(df, min_support=min_count / len(tracts) - 1e-12, use_colnames=False))
    times.append(time.perf_counter() - t)
peak = status("VmHWM:")
print(json.dumps({"times": times, "itemsets": n, "peak_rss_mb": peak, "input_rss_mb": base}))
"#;
        for tool in ["pyfim", "mlxtend"] {
            if tool == "mlxtend" && (b.mlxtend_max == 0 || baskets.len() > b.mlxtend_max) {
                continue;
            }
            note(g, &format!("{tool} on {name} …"));
            let runs = if tool == "mlxtend" { 1 } else { b.peers.runs };
            match run_python(
                &b.peers.python,
                script,
                &[
                    tool,
                    &file.display().to_string(),
                    &min.to_string(),
                    &runs.to_string(),
                ],
            ) {
                Ok(o) => {
                    let v: Value = serde_json::from_str(o.trim())?;
                    let mut t: Vec<f64> = v["times"]
                        .as_array()
                        .map(|a| a.iter().filter_map(Value::as_f64).collect())
                        .unwrap_or_default();
                    if !t.is_empty() {
                        let f = figure(tool, "fp-growth", baskets.len() as u64, 0.0, &mut t);
                        rows.push(serde_json::json!({"tool": tool, "set": name, "baskets": baskets.len(), "min_count": min,
                            "itemsets": v["itemsets"], "best_s": f.best_s, "median_s": f.median_s,
                            "peak_rss_mb": v["peak_rss_mb"], "baskets_mb": v["input_rss_mb"],
                            "mining_mb": v["peak_rss_mb"].as_f64().zip(v["input_rss_mb"].as_f64()).map(|(p, b)| p - b)}));
                    }
                }
                Err(e) => note(g, &format!("{tool} skipped: {e}")),
            }
        }
        let _ = std::fs::remove_file(&file);
    }
    if g.format == Format::Json {
        return write_json(
            out,
            &serde_json::json!({"bench": "baskets", "figures": rows}),
        );
    }
    let mut t = Frame::new(&[
        "tool",
        "set",
        "baskets",
        "min count",
        "itemsets",
        "best s",
        "median s",
        "peak RSS MB",
        "mining MB",
    ]);
    for r in &rows {
        let mb = |v: &Value| {
            v.as_f64()
                .map_or(Value::Null, |x| Value::from(format!("{x:.0}")))
        };
        t.push(vec![
            r["tool"].clone(),
            r["set"].clone(),
            r["baskets"].clone(),
            r["min_count"].clone(),
            r["itemsets"].clone(),
            Value::from(format!("{:.3}", r["best_s"].as_f64().unwrap_or(f64::NAN))),
            Value::from(format!("{:.3}", r["median_s"].as_f64().unwrap_or(f64::NAN))),
            mb(&r["peak_rss_mb"]),
            mb(&r["mining_mb"]),
        ]);
    }
    t.write(out, g.output())
}

/// The online-retail workspace of the benchmarks (ingested once into the bench folder).
fn online_retail_ws(dir: &Path, file: &Path) -> Result<Workspace> {
    let ws_dir = dir.join("online-retail-ws");
    if !ws_dir.exists() {
        let ws = Workspace::open(&ws_dir)?;
        let p = presets::preset("online-retail")?;
        ingest::ingest(
            &ws,
            &[file.to_path_buf()],
            &p,
            &IngestOptions::default(),
            &|_| {},
        )?;
    }
    Ok(Workspace::open_existing(&ws_dir)?)
}

/// Writes (user, item, value) triples as three little-endian columns (u32, u32, f32).
fn write_triples(path: &Path, t: &[(u32, u32, f32)]) -> Result<()> {
    let mut buf = Vec::with_capacity(t.len() * 12);
    for (u, _, _) in t {
        buf.extend_from_slice(&u.to_le_bytes());
    }
    for (_, i, _) in t {
        buf.extend_from_slice(&i.to_le_bytes());
    }
    for (_, _, w) in t {
        buf.extend_from_slice(&w.to_le_bytes());
    }
    std::fs::write(path, buf).with_context(|| format!("writing {}", path.display()))
}

fn recommend_bench(
    g: &Global,
    b: &RecommendBench,
    rt: &Runtime,
    out: &mut dyn Write,
) -> Result<()> {
    use shoplens_engine::customers::recommend::{RecommendSpec, split_data};
    use shoplens_engine::models::recommend::{
        self as mr, Als, AlsParams, Interactions, ItemItem, list_metrics, top_items,
    };
    std::fs::create_dir_all(&b.peers.dir)
        .with_context(|| format!("creating {}", b.peers.dir.display()))?;
    let ws = online_retail_ws(&b.peers.dir, &b.online_retail)?;
    let tz = shoplens_engine::calendar::zone(&ws.manifest()?.settings);
    let Some(split) = calendar::parse_instant(&b.split_at, &tz) else {
        bail!("--split-at `{}` is not a date", b.split_at);
    };
    let sd = rt.block_on(split_data(&ws, &RecommendSpec::default(), split))?;
    note(
        g,
        &format!("generating {} users × {} items …", b.users, b.items),
    );
    let synthetic = mr::generate(b.users, b.items, b.per_user, 42);
    let params = AlsParams {
        factors: b.factors,
        iterations: b.iterations,
        ..AlsParams::default()
    };
    let triples = |m: &Interactions| -> Vec<(u32, u32, f32)> {
        (0..m.n_users())
            .flat_map(|u| {
                let (items, w) = m.user(u);
                items
                    .iter()
                    .zip(w)
                    .map(move |(&i, &w)| (u as u32, i, 1.0 + params.alpha * w))
                    .collect::<Vec<_>>()
            })
            .collect()
    };
    let mut rows: Vec<Value> = Vec::new();
    let script = r#"
import sys, time, json
import numpy as np, scipy.sparse as sp
import implicit
from implicit.als import AlternatingLeastSquares
from implicit.nearest_neighbours import CosineRecommender
def triples(path, shape):
    a = np.fromfile(path, dtype="<u4")
    n = len(a) // 3
    u, i, w = a[:n], a[n:2 * n], a[2 * n:].view("<f4")
    return sp.csr_matrix((w, (u, i)), shape=shape, dtype=np.float32)
train_path, n_users, n_items, factors, iterations, runs = sys.argv[1], int(sys.argv[2]), int(sys.argv[3]), int(sys.argv[4]), int(sys.argv[5]), int(sys.argv[6])
shape = (n_users, n_items)
conf = triples(train_path, shape)
out = {"als": [], "cosine": []}
for _ in range(runs):
    m = AlternatingLeastSquares(factors=factors, regularization=0.01, alpha=1.0, iterations=iterations, use_cg=True, calculate_training_loss=False, random_state=42)
    t = time.perf_counter(); m.fit(conf, show_progress=False); out["als"].append(time.perf_counter() - t)
    binary = conf.copy(); binary.data[:] = 1
    c = CosineRecommender(K=50)
    t = time.perf_counter(); c.fit(binary, show_progress=False); out["cosine"].append(time.perf_counter() - t)
if len(sys.argv) > 7:
    bought, test = triples(sys.argv[7], shape), triples(sys.argv[8], shape)
    users = np.unique(test.nonzero()[0])
    for name, model in [("als", m), ("cosine", c)]:
        ids, _ = model.recommend(users, bought[users], N=10, filter_already_liked_items=True)
        rec = [len(set(ids[k]) & set(test[u].indices)) / len(test[u].indices) for k, u in enumerate(users)]
        out[name + "_recall"] = float(np.mean(rec))
    out["test_users"] = int(len(users))
print(json.dumps(out))
"#;
    for (name, m, test) in [
        ("online retail", &sd.train, Some(&sd)),
        ("synthetic", &synthetic, None),
    ] {
        note(g, &format!("shoplens on {name} …"));
        let runs = if test.is_some() { b.peers.runs } else { 1 };
        let (mut t_als, als) = timed(runs, || Ok(Als::fit(m, &params)))?;
        let (mut t_ii, ii) = timed(runs, || Ok(ItemItem::fit(m, 50, 0.5)))?;
        let (mut als_recall, mut ii_recall) = (None, None);
        if let Some(sd) = test {
            let mut buf = vec![0f32; m.n_items()];
            let (mut ra, mut ri) = (0.0, 0.0);
            for (u, rel) in &sd.test {
                let ex = sd.bought.user(*u as usize).0;
                als.scores(*u as usize, &mut buf);
                let l: Vec<u32> = top_items(&buf, ex, 10).into_iter().map(|x| x.0).collect();
                ra += list_metrics(&l, rel, 10).recall;
                // Scored as implicit scores: each held item weighted by its confidence.
                let (held, w) = m.user(*u as usize);
                let conf: Vec<f32> = w.iter().map(|&w| 1.0 + params.alpha * w).collect();
                ii.scores_weighted(held, &conf, &mut buf);
                let l: Vec<u32> = top_items(&buf, ex, 10).into_iter().map(|x| x.0).collect();
                ri += list_metrics(&l, rel, 10).recall;
            }
            als_recall = Some(ra / sd.test.len() as f64);
            ii_recall = Some(ri / sd.test.len() as f64);
        }
        let fa = figure("shoplens", "als", m.nnz() as u64, 0.0, &mut t_als);
        let fi = figure("shoplens", "item-item", m.nnz() as u64, 0.0, &mut t_ii);
        rows.push(serde_json::json!({"tool": "shoplens", "set": name, "task": "ALS", "users": m.n_users(), "items": m.n_items(),
            "interactions": m.nnz(), "best_s": fa.best_s, "median_s": fa.median_s, "recall_at_10": als_recall}));
        rows.push(serde_json::json!({"tool": "shoplens", "set": name, "task": "item-item (cosine, K=50)", "users": m.n_users(), "items": m.n_items(),
            "interactions": m.nnz(), "best_s": fi.best_s, "median_s": fi.median_s, "recall_at_10": ii_recall}));
        drop((als, ii));
        let train_file = b.peers.dir.join("train.bin");
        write_triples(&train_file, &triples(m))?;
        let mut args = vec![
            train_file.display().to_string(),
            m.n_users().to_string(),
            m.n_items().to_string(),
            b.factors.to_string(),
            b.iterations.to_string(),
            runs.to_string(),
        ];
        if let Some(sd) = test {
            let (bf, tf) = (b.peers.dir.join("bought.bin"), b.peers.dir.join("test.bin"));
            write_triples(&bf, &triples(&sd.bought))?;
            let t: Vec<(u32, u32, f32)> = sd
                .test
                .iter()
                .flat_map(|(u, rel)| rel.iter().map(move |&i| (*u, i, 1.0)))
                .collect();
            write_triples(&tf, &t)?;
            args.push(bf.display().to_string());
            args.push(tf.display().to_string());
        }
        note(g, &format!("implicit on {name} …"));
        let argv: Vec<&str> = args.iter().map(String::as_str).collect();
        match run_python(&b.peers.python, script, &argv) {
            Ok(o) => {
                let v: Value = serde_json::from_str(o.trim())?;
                for (key, task, recall) in [
                    ("als", "ALS", "als_recall"),
                    ("cosine", "item-item (cosine, K=50)", "cosine_recall"),
                ] {
                    let mut t: Vec<f64> = v[key]
                        .as_array()
                        .map(|a| a.iter().filter_map(Value::as_f64).collect())
                        .unwrap_or_default();
                    if t.is_empty() {
                        continue;
                    }
                    let f = figure("implicit", task, m.nnz() as u64, 0.0, &mut t);
                    rows.push(serde_json::json!({"tool": "implicit", "set": name, "task": task, "users": m.n_users(), "items": m.n_items(),
                        "interactions": m.nnz(), "best_s": f.best_s, "median_s": f.median_s, "recall_at_10": v[recall]}));
                }
            }
            Err(e) => note(g, &format!("implicit skipped: {e}")),
        }
        for f in ["train.bin", "bought.bin", "test.bin"] {
            let _ = std::fs::remove_file(b.peers.dir.join(f));
        }
    }
    if g.format == Format::Json {
        return write_json(
            out,
            &serde_json::json!({"bench": "recommend", "figures": rows}),
        );
    }
    let mut t = Frame::new(&[
        "tool",
        "set",
        "task",
        "interactions",
        "best s",
        "median s",
        "recall@10",
    ]);
    for r in &rows {
        t.push(vec![
            r["tool"].clone(),
            r["set"].clone(),
            r["task"].clone(),
            r["interactions"].clone(),
            Value::from(format!("{:.3}", r["best_s"].as_f64().unwrap_or(f64::NAN))),
            Value::from(format!("{:.3}", r["median_s"].as_f64().unwrap_or(f64::NAN))),
            r["recall_at_10"]
                .as_f64()
                .map_or(Value::Null, |x| Value::from(format!("{x:.4}"))),
        ]);
    }
    t.write(out, g.output())
}
