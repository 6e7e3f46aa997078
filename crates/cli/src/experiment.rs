//! `shoplens experiment …`: experiment assignment (analysis lands with the experiments issue).

use std::io::Write;
use std::path::PathBuf;

use anyhow::{Context, Result, bail};
use clap::{Args, Subcommand};
use shoplens_engine::models::assign::Assigner;

use crate::Global;
use crate::render::Format;

#[derive(Debug, Args)]
pub(crate) struct ExperimentArgs {
    #[command(subcommand)]
    what: ExperimentWhat,
}

#[derive(Debug, Subcommand)]
enum ExperimentWhat {
    /// Assign user ids to variants, bucket-compatible with GrowthBook's SDKs (hash version 2).
    Assign(AssignArgs),
}

#[derive(Debug, Args)]
struct AssignArgs {
    /// Hash seed (GrowthBook: the experiment key unless a seed is set).
    #[arg(long)]
    seed: String,
    /// Variant weights, comma-separated (e.g. 0.2,0.3,0.5).
    #[arg(long, value_delimiter = ',', default_values_t = [0.5, 0.5])]
    weights: Vec<f64>,
    /// Share of users included, 0–1; the others get -1.
    #[arg(long, default_value_t = 1.0)]
    coverage: f64,
    /// File of user ids, one per line (UTF-8, LF or CRLF; blank lines skipped).
    ids: PathBuf,
}

pub(crate) fn run(g: &Global, a: ExperimentArgs, out: &mut dyn Write) -> Result<()> {
    match a.what {
        ExperimentWhat::Assign(x) => assign(g, &x, out),
    }
}

fn assign(g: &Global, a: &AssignArgs, out: &mut dyn Write) -> Result<()> {
    if a.weights.is_empty() || a.weights.iter().any(|w| !w.is_finite() || *w < 0.0) {
        bail!("--weights must be non-negative numbers, e.g. 0.5,0.5");
    }
    if !(0.0..=1.0).contains(&a.coverage) {
        bail!("--coverage must be between 0 and 1");
    }
    let bytes = std::fs::read(&a.ids).with_context(|| format!("reading {}", a.ids.display()))?;
    let text = match std::str::from_utf8(&bytes) {
        Ok(t) => t,
        Err(e) => {
            let line = bytes[..e.valid_up_to()]
                .iter()
                .filter(|b| **b == b'\n')
                .count()
                + 1;
            bail!("{}:{line}: the id is not valid UTF-8", a.ids.display());
        }
    };
    let assigner = Assigner::new(&a.seed, &a.weights, a.coverage);
    let mut w = std::io::BufWriter::with_capacity(1 << 16, out);
    let json = g.format == Format::Json;
    if json {
        write!(w, "{{\"assignments\": [")?;
    } else {
        writeln!(w, "user_id,variant")?;
    }
    let mut first = true;
    for line in text.split('\n') {
        let id = line.strip_suffix('\r').unwrap_or(line);
        if id.trim().is_empty() {
            continue;
        }
        let v = assigner.variant(id).map_or(-1, |v| v as i64);
        if json {
            write!(
                w,
                "{}{{\"user_id\": {}, \"variant\": {v}}}",
                if first { "" } else { ", " },
                serde_json::to_string(id)?
            )?;
        } else if id.contains([',', '"', '\n']) {
            writeln!(w, "\"{}\",{v}", id.replace('"', "\"\""))?;
        } else {
            writeln!(w, "{id},{v}")?;
        }
        first = false;
    }
    if json {
        writeln!(w, "]}}")?;
    }
    w.flush()?;
    Ok(())
}
