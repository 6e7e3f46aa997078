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
use shoplens_engine::ingest::{self, IngestOptions, presets};

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
}

#[derive(Debug, Args)]
struct IngestBench {
    /// Rows of the generated CSV.
    #[arg(long, default_value_t = 10_000_000)]
    rows: u64,
    /// Folder for the generated CSV and the scratch workspaces.
    #[arg(long, default_value = "bench-data")]
    dir: PathBuf,
    /// Timed runs of each tool (the best and the median are reported).
    #[arg(long, default_value_t = 3)]
    runs: usize,
    /// Python with the `duckdb` package, for the peer figure (skipped when it cannot import duckdb).
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

pub(crate) fn run(g: &Global, a: BenchArgs, out: &mut dyn Write) -> Result<()> {
    match a.what {
        BenchWhat::Ingest(b) => ingest_bench(g, &b, out),
    }
}

fn ingest_bench(g: &Global, b: &IngestBench, out: &mut dyn Write) -> Result<()> {
    if b.runs == 0 {
        bail!("--runs must be at least 1");
    }
    std::fs::create_dir_all(&b.dir).with_context(|| format!("creating {}", b.dir.display()))?;
    let csv = b.dir.join(format!("taobao-{}.csv", b.rows));
    if !csv.exists() {
        note(
            g,
            &format!("writing {} rows to {} …", b.rows, csv.display()),
        );
        shoplens_engine::demo::write_taobao_layout(&csv, b.rows, 42)?;
    }
    let mb = std::fs::metadata(&csv)?.len() as f64 / 1e6;
    let preset = presets::preset("taobao")?;
    let mut ours = Vec::new();
    for run in 0..b.runs {
        let ws_dir = b.dir.join(format!("ws-{run}"));
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
    match duckdb_runs(&b.python, &csv, &b.dir, b.runs) {
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
    f.write(out, g.format)
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
    let o = Command::new(python)
        .args([
            "-c",
            script,
            &csv.display().to_string(),
            &out.display().to_string(),
            &runs.to_string(),
        ])
        .output()
        .with_context(|| format!("running {python}"))?;
    let _ = std::fs::remove_file(&out);
    if !o.status.success() {
        bail!(
            "{}",
            String::from_utf8_lossy(&o.stderr)
                .lines()
                .last()
                .unwrap_or("python failed")
        );
    }
    let times: Vec<f64> = String::from_utf8_lossy(&o.stdout)
        .lines()
        .filter_map(|l| l.trim().parse().ok())
        .collect();
    if times.is_empty() {
        bail!("no timings from duckdb");
    }
    Ok(times)
}

fn note(g: &Global, msg: &str) {
    if !g.quiet {
        #[expect(clippy::print_stderr, reason = "progress notes of a benchmark")]
        {
            eprintln!("{msg}");
        }
    }
}
