//! One function per subcommand: engine call in, rendering out.

use std::io::{IsTerminal, Write};
use std::path::PathBuf;

use anyhow::{Context, Result, bail};
use clap::Args;
use indicatif::{ProgressBar, ProgressStyle};
use serde_json::Value;
use shoplens_engine::cluster::Engine;
use shoplens_engine::demo::{self, DemoParams};
use shoplens_engine::ingest::mapping::MappingFile;
use shoplens_engine::ingest::{self, IngestOptions, IngestSummary, Progress, presets};
use shoplens_engine::query::QuarantineParams;
use shoplens_engine::{Workspace, calendar, query};

use crate::render::{Format, Frame, Output, batches_frame, write_json};
use crate::{Cli, Command, Global};

#[derive(Debug, Args)]
pub(crate) struct IngestArgs {
    /// A built-in preset (see `shoplens presets`).
    #[arg(long, conflicts_with = "mapping")]
    preset: Option<String>,
    /// A mapping file (TOML; see docs/mapping.md).
    #[arg(long)]
    mapping: Option<PathBuf>,
    /// Ingest files whose content was ingested before.
    #[arg(long)]
    force: bool,
    /// Files to ingest (CSV, baskets, JSON lines or Parquet; gzip-compressed too).
    #[arg(required = true)]
    files: Vec<PathBuf>,
}

/// Runs a parsed command line, writing what it prints to stdout.
pub(crate) fn run(cli: Cli) -> Result<()> {
    let stdout = std::io::stdout();
    let mut out = stdout.lock();
    let g = cli.global;
    // Refused before anything runs (each command reads it again in the shop's zone).
    calendar::as_of(g.as_of.as_deref(), &chrono_tz::UTC)?;
    // Refused before anything runs; each workspace the command opens carries it.
    engine(&g)?;
    let rt = tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()?;
    match cli.command {
        Command::Ingest(a) => ingest_cmd(&g, a, &mut out),
        Command::Tables => rt.block_on(tables_cmd(&g, &mut out)),
        Command::Sql { query } => rt.block_on(sql_cmd(&g, &query, &mut out)),
        Command::Quarantine(a) => rt.block_on(quarantine_cmd(&g, a, &mut out)),
        Command::Presets { show } => presets_cmd(&g, show, &mut out),
        Command::Demo(a) => demo_cmd(&g, a, &rt, &mut out),
        Command::Bench(a) => crate::bench::run(&g, a, &rt, &mut out),
        Command::Experiment(a) => crate::experiment::run(&g, a, &rt, &mut out),
        Command::Serve(a) => crate::serve::run(&g, a, &rt, &mut out),
        Command::Report(a) => crate::report::report_cmd(&g, a, &rt, &mut out),
        #[cfg(feature = "ballista")]
        Command::Scheduler(a) => crate::cluster::scheduler_cmd(&a, &rt, &mut out),
        #[cfg(feature = "ballista")]
        Command::Executor(a) => crate::cluster::executor_cmd(&a, &rt, &mut out),
        Command::Funnel(a) => rt.block_on(crate::funnel::run(&g, a, &mut out)),
        Command::Kpis(a) => rt.block_on(crate::people::kpis_cmd(&g, a, &mut out)),
        Command::Cohorts(a) => rt.block_on(crate::people::cohorts_cmd(&g, a, &mut out)),
        Command::Lifecycle(a) => rt.block_on(crate::people::lifecycle_cmd(&g, a, &mut out)),
        Command::Paths(a) => rt.block_on(crate::people::paths_cmd(&g, a, &mut out)),
        Command::Activity(a) => rt.block_on(crate::people::activity_cmd(&g, a, &mut out)),
        Command::Repurchase(a) => rt.block_on(crate::people::repurchase_cmd(&g, a, &mut out)),
        Command::Clv(a) => rt.block_on(crate::customers::clv_cmd(&g, a, &mut out)),
        Command::Recommend(a) => rt.block_on(crate::recommend::run(&g, a, &mut out)),
        Command::Basket(a) => rt.block_on(crate::goods::basket_cmd(&g, a, &mut out)),
        Command::Products(a) => rt.block_on(crate::goods::products_cmd(&g, a, &mut out)),
        Command::Returns(a) => rt.block_on(crate::goods::returns_cmd(&g, a, &mut out)),
        Command::Inventory(a) => rt.block_on(crate::goods::inventory_cmd(&g, a, &mut out)),
        Command::Channels(a) => rt.block_on(crate::goods::channels_cmd(&g, a, &mut out)),
        Command::Campaigns => rt.block_on(crate::goods::campaigns_cmd(&g, &mut out)),
        Command::Rfm(a) => rt.block_on(crate::customers::rfm_cmd(&g, a, &mut out)),
        Command::Audience(a) => rt.block_on(crate::audience::run(&g, a, &mut out)),
        Command::Churn(a) => rt.block_on(crate::customers::churn_cmd(&g, a, &mut out)),
        Command::Stages(a) => rt.block_on(crate::customers::stages_cmd(&g, a, &mut out)),
    }
}

/// Where the command's queries run (`--engine`).
pub(crate) fn engine(g: &Global) -> Result<Engine> {
    Ok(Engine::parse(g.engine.as_deref())?)
}

pub(crate) fn existing(g: &Global) -> Result<Workspace> {
    Ok(Workspace::open_existing(&g.workspace)?.with_engine(engine(g)?))
}

/// The existing workspace and its shop's time zone.
pub(crate) fn existing_in_zone(g: &Global) -> Result<(Workspace, chrono_tz::Tz)> {
    let ws = existing(g)?;
    let tz = calendar::zone(&ws.manifest()?.settings);
    Ok((ws, tz))
}

fn progress_bar(g: &Global) -> Option<ProgressBar> {
    if g.quiet || !std::io::stderr().is_terminal() {
        return None;
    }
    let pb = ProgressBar::new(0);
    pb.set_style(
        ProgressStyle::with_template("{msg} [{bar:30}] {bytes}/{total_bytes} {bytes_per_sec}")
            .unwrap_or_else(|_| ProgressStyle::default_bar())
            .progress_chars("=> "),
    );
    Some(pb)
}

fn ingest_cmd(g: &Global, a: IngestArgs, out: &mut dyn Write) -> Result<()> {
    let mapping = match (&a.preset, &a.mapping) {
        (Some(p), None) => presets::preset(p)?,
        (None, Some(m)) => {
            let text = std::fs::read_to_string(m)
                .with_context(|| format!("reading mapping {}", m.display()))?;
            let mut mf = MappingFile::parse(&text, &m.display().to_string())?;
            if mf.name.is_none() {
                mf.name = Some(m.display().to_string());
            }
            mf
        }
        _ => bail!("give --preset NAME or --mapping FILE.toml (see `shoplens presets`)"),
    };
    let ws = Workspace::open(&g.workspace)?.with_engine(engine(g)?);
    let pb = progress_bar(g);
    let report = |p: Progress<'_>| {
        if let Some(pb) = &pb {
            match p {
                Progress::File(name, len) => {
                    pb.set_message(name.to_string());
                    pb.set_length(len);
                    pb.set_position(0);
                }
                Progress::Bytes(n) => pb.set_position(n),
            }
        }
    };
    let summary = ingest::ingest(
        &ws,
        &a.files,
        &mapping,
        &IngestOptions { force: a.force },
        &report,
    )?;
    if let Some(pb) = pb {
        pb.finish_and_clear();
    }
    render_ingest(&summary, g.format, out)
}

fn render_ingest(s: &IngestSummary, format: Format, out: &mut dyn Write) -> Result<()> {
    if format == Format::Json {
        return write_json(out, s);
    }
    let mut f = Frame::new(&[
        "file",
        "layout",
        "read",
        "stored",
        "quarantined",
        "excluded",
        "tables",
    ]);
    for file in &s.files {
        let tables: Vec<String> = file
            .tables
            .iter()
            .map(|(t, n)| format!("{t} {n}"))
            .collect();
        f.push(vec![
            Value::from(file.file.clone()),
            Value::from(file.layout.clone()),
            Value::from(file.read),
            Value::from(file.stored),
            Value::from(file.quarantined),
            Value::from(file.excluded),
            Value::from(tables.join(", ")),
        ]);
    }
    f.write(out, format)?;
    if format == Format::Table {
        writeln!(
            out,
            "commit {} with {}; time zone {}",
            s.commit,
            s.mapping,
            s.timezone.as_deref().unwrap_or("unset (UTC)")
        )?;
        for file in &s.files {
            for (reason, n) in &file.excluded_reasons {
                writeln!(out, "  {}: {n} rows excluded: {reason}", file.file)?;
            }
            for (reason, n) in file.quarantine_reasons.iter().take(5) {
                writeln!(out, "  {}: {n} rows quarantined: {reason}", file.file)?;
            }
            if file.quarantined > 0 {
                writeln!(out, "  see them with `shoplens quarantine`")?;
            }
        }
        for n in &s.notes {
            writeln!(out, "note: {n}")?;
        }
    }
    Ok(())
}

async fn tables_cmd(g: &Global, out: &mut dyn Write) -> Result<()> {
    let (ws, tz) = existing_in_zone(g)?;
    let r = query::tables(&ws, &tz, crate::people::as_of(g, &tz)).await?;
    if g.format == Format::Json {
        return write_json(out, &r);
    }
    let (tables, as_of) = (r.tables, r.as_of);
    tables_frame(tables).write(out, g.output())?;
    if g.format == Format::Table {
        writeln!(
            out,
            "as of {} ({})",
            as_of.as_deref().unwrap_or("—"),
            if g.as_of.is_some() {
                "--as-of"
            } else {
                "newest timestamp in the workspace"
            }
        )?;
    }
    Ok(())
}

fn tables_frame(tables: impl IntoIterator<Item = query::TableStats>) -> Frame {
    let mut f = Frame::new(&["name", "rows", "users", "min_ts", "max_ts"]);
    for t in tables {
        f.push(vec![
            Value::from(t.name),
            Value::from(t.rows),
            t.users.map_or(Value::Null, Value::from),
            t.min_ts.into(),
            t.max_ts.into(),
        ]);
    }
    f
}

async fn sql_cmd(g: &Global, q: &str, out: &mut dyn Write) -> Result<()> {
    let ws = existing(g)?;
    let tz = calendar::zone(&ws.manifest()?.settings);
    let (schema, batches) = query::sql(&ws, q).await?;
    let frame = batches_frame(&schema, &batches, &tz)?;
    write_frame(&frame, g.output(), out)
}

/// A frame as JSON `{"columns": [...], "rows": [{...}, ...]}` or as table/CSV.
fn write_frame(frame: &Frame, output: Output, out: &mut dyn Write) -> Result<()> {
    if output.format == Format::Json {
        return write_json(out, &frame.to_json());
    }
    frame.write(out, output)
}

async fn quarantine_cmd(g: &Global, p: QuarantineParams, out: &mut dyn Write) -> Result<()> {
    let ws = existing(g)?;
    let rows = p.run(&ws).await?;
    write_frame(&Frame::from(rows), g.output(), out)
}

fn presets_cmd(g: &Global, show: Option<String>, out: &mut dyn Write) -> Result<()> {
    if let Some(name) = show {
        write!(out, "{}", presets::preset_text(&name)?)?;
        return Ok(());
    }
    let mut f = Frame::new(&["preset", "timezone", "layouts"]);
    for (name, _) in presets::PRESETS {
        let m = presets::preset(name)?;
        let layouts: Vec<String> = m
            .layouts()
            .iter()
            .map(|l| l.source.files.clone().unwrap_or_else(|| "any file".into()))
            .collect();
        f.push(vec![
            Value::from(*name),
            m.timezone.clone().into(),
            Value::from(layouts.join(", ")),
        ]);
    }
    write_frame(&f, g.output(), out)
}

fn demo_cmd(
    g: &Global,
    a: DemoParams,
    rt: &tokio::runtime::Runtime,
    out: &mut dyn Write,
) -> Result<()> {
    let ws = Workspace::open(&g.workspace)?.with_engine(engine(g)?);
    let pb = progress_bar(g);
    if let Some(pb) = &pb {
        pb.set_style(
            ProgressStyle::with_template("simulating shoppers [{bar:30}] {pos}/{len} {per_sec}")
                .unwrap_or_else(|_| ProgressStyle::default_bar())
                .progress_chars("=> "),
        );
    }
    let report = |done: u64, total: u64| {
        if let Some(pb) = &pb {
            pb.set_length(total);
            pb.set_position(done);
        }
    };
    let summary = demo::generate(&ws, &a, &report)?;
    if let Some(pb) = pb {
        pb.finish_and_clear();
    }
    rt.block_on(demo::save_starter_audiences(&ws))?;
    let tables = rt.block_on(query::table_stats(&ws))?;
    if g.format == Format::Json {
        return write_json(
            out,
            &serde_json::json!({ "demo": summary, "tables": tables }),
        );
    }
    if summary.already_present {
        writeln!(
            out,
            "The demo shop (seed {}, scale {}) is already in {}.",
            summary.seed,
            summary.scale,
            g.workspace.display()
        )?;
    } else {
        writeln!(
            out,
            "Demo shop written to {} (commit {}): {} customers and {} anonymous visitors, seed {}.",
            g.workspace.display(),
            summary.commit,
            summary.customers,
            summary.visitors,
            summary.seed
        )?;
    }
    tables_frame(tables.into_iter().filter(|t| t.rows > 0)).write(out, g.output())?;
    if g.format == Format::Table {
        writeln!(
            out,
            "Next: `shoplens --workspace {} sql \"SELECT channel, count(*) FROM orders GROUP BY channel\"`",
            g.workspace.display()
        )?;
    }
    Ok(())
}
