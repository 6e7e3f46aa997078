//! `shoplens experiment …`: assignment, and analysis of an experiment held in a CSV file.

use std::io::Write;
use std::path::PathBuf;

use anyhow::{Context, Result, bail};
use clap::{Args, Subcommand};
use serde_json::Value;
use shoplens_engine::models::abtest::{self, Analysis, Kind, MetricValues, analyze, infer_kind};
use shoplens_engine::models::assign::{Assigner, in_namespace};
use shoplens_engine::practice::experiments::{
    self, AnalyzeParams, Definition, ListParams, Namespace, PowerParams, StatParams,
};

use crate::Global;
use crate::render::{Format, Frame, write_json};

#[derive(Debug, Args)]
pub(crate) struct ExperimentArgs {
    #[command(subcommand)]
    what: ExperimentWhat,
}

#[derive(Debug, Subcommand)]
enum ExperimentWhat {
    /// Assign user ids to variants, bucket-compatible with GrowthBook's SDKs (hash version 2).
    Assign(AssignArgs),
    /// Analyse an experiment held as one row per user in a CSV file (no workspace needed).
    AnalyzeFile(AnalyzeFileArgs),
    /// Analyse a workspace experiment: first exposure per user, outcomes after it in the window.
    Analyze(AnalyzeParams),
    /// Users needed per arm to detect an effect (two-sided, equal arms).
    Power(PowerParams),
    /// Define (or with --replace, change) an experiment in the workspace.
    Define(DefineArgs),
    /// The workspace's experiments, their status and any overlap on one surface.
    List,
}

#[derive(Debug, Args)]
struct DefineArgs {
    /// The experiment key (exposures.experiment_id; GrowthBook's experiment key).
    key: String,
    /// Variant names in assignment order (variant 0 is usually control).
    #[arg(long, value_delimiter = ',', required = true)]
    variants: Vec<String>,
    /// Weights in the same order, summing to 1 (default equal).
    #[arg(long, value_delimiter = ',')]
    weights: Vec<f64>,
    /// Share of traffic included, 0–1.
    #[arg(long, default_value_t = 1.0)]
    coverage: f64,
    /// Hash seed (default: the key).
    #[arg(long)]
    seed: Option<String>,
    /// A readable name.
    #[arg(long)]
    name: Option<String>,
    /// Start: a date (its start in the shop's zone) or an instant.
    #[arg(long)]
    start: Option<String>,
    /// End: a date (the end of that day in the shop's zone) or an instant.
    #[arg(long)]
    end: Option<String>,
    /// Where it runs (a page, flow or e-mail), for the overlap warning.
    #[arg(long)]
    surface: Option<String>,
    /// Namespace range `ID:START-END` that keeps it apart from other experiments of the namespace.
    #[arg(long)]
    namespace: Option<String>,
    /// The decision metric first, then other success metrics.
    #[arg(long, value_delimiter = ',')]
    primary: Vec<String>,
    /// Metrics that must not get worse; `name:lower` when a decrease is good (refund:lower).
    #[arg(long, value_delimiter = ',')]
    guardrails: Vec<String>,
    /// Replace an existing definition of the key.
    #[arg(long)]
    replace: bool,
}

#[derive(Debug, Args)]
struct AnalyzeFileArgs {
    /// The CSV file (header line; one row per user).
    file: PathBuf,
    /// Column holding each user's variant.
    #[arg(long)]
    variant_col: String,
    /// The control variant's value.
    #[arg(long)]
    control: String,
    /// Metrics: a column (kind inferred: 0/1 → proportion, else mean), `col:mean`,
    /// `col:proportion`, or `num/den` for a ratio (delta method).
    #[arg(long, value_delimiter = ',', required = true)]
    metrics: Vec<String>,
    /// Planned split for the SRM test, in the sorted order of the variant values (default equal).
    #[arg(long, value_delimiter = ',')]
    weights: Vec<f64>,
    /// A pre-period covariate column: proportion and mean metrics are CUPED-adjusted by it.
    #[arg(long)]
    covariate: Option<String>,
    #[command(flatten)]
    stats: StatParams,
}

#[derive(Debug, Args)]
struct AssignArgs {
    /// Hash seed (GrowthBook: the experiment key unless a seed is set).
    #[arg(long, required_unless_present = "experiment")]
    seed: Option<String>,
    /// Assign by a workspace experiment's definition (seed, weights, coverage, namespace).
    #[arg(long, conflicts_with_all = ["seed", "weights", "coverage", "namespace"])]
    experiment: Option<String>,
    /// Variant weights, comma-separated (e.g. 0.2,0.3,0.5).
    #[arg(long, value_delimiter = ',', default_values_t = [0.5, 0.5])]
    weights: Vec<f64>,
    /// Share of users included, 0–1; the others get -1.
    #[arg(long, default_value_t = 1.0)]
    coverage: f64,
    /// A namespace range `ID:START-END` (e.g. checkout:0-0.5): only users whose GrowthBook
    /// namespace hash falls in [START, END) are assigned; the others get -1. Experiments on one
    /// surface that take disjoint ranges never share a user.
    #[arg(long)]
    namespace: Option<String>,
    /// File of user ids, one per line (UTF-8, LF or CRLF; blank lines skipped).
    ids: PathBuf,
}

pub(crate) fn run(
    g: &Global,
    a: ExperimentArgs,
    rt: &tokio::runtime::Runtime,
    out: &mut dyn Write,
) -> Result<()> {
    match a.what {
        ExperimentWhat::Assign(x) => assign(g, &x, rt, out),
        ExperimentWhat::Define(x) => define(g, x, rt, out),
        ExperimentWhat::List => list(g, rt, out),
        ExperimentWhat::AnalyzeFile(x) => analyze_file(g, &x, out),
        ExperimentWhat::Power(x) => power(g, &x, out),
        ExperimentWhat::Analyze(x) => {
            let ws = crate::commands::existing(g)?;
            let r = rt.block_on(x.run(&ws))?;
            if g.format == Format::Json {
                return write_json(out, &r);
            }
            if g.format == Format::Table {
                writeln!(
                    out,
                    "experiment {} ({} – {}); {} users in several variants left out",
                    r.experiment,
                    r.starts_at.as_deref().unwrap_or("first exposure"),
                    r.ends_at.as_deref().unwrap_or("last data"),
                    r.users_in_several_variants
                )?;
                for w in &r.warnings {
                    writeln!(out, "warning: {w}")?;
                }
            }
            write_analysis(g, &r.analysis, out)
        }
    }
}

fn assign(
    g: &Global,
    a: &AssignArgs,
    rt: &tokio::runtime::Runtime,
    out: &mut dyn Write,
) -> Result<()> {
    let (seed, weights, coverage, namespace) = match &a.experiment {
        Some(key) => {
            let ws = crate::commands::existing(g)?;
            let Some(d) = rt.block_on(experiments::definition(&ws, key))? else {
                bail!("no experiment `{key}` is defined in the workspace (see `experiment list`)");
            };
            (d.seed, d.weights, d.coverage, d.namespace)
        }
        None => (
            a.seed.clone().unwrap_or_default(),
            a.weights.clone(),
            a.coverage,
            a.namespace.as_deref().map(Namespace::parse).transpose()?,
        ),
    };
    if weights.is_empty() || weights.iter().any(|w| !w.is_finite() || *w < 0.0) {
        bail!("--weights must be non-negative numbers, e.g. 0.5,0.5");
    }
    if !(0.0..=1.0).contains(&coverage) {
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
    let assigner = Assigner::new(&seed, &weights, coverage);
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
        let included = namespace
            .as_ref()
            .is_none_or(|n| in_namespace(&n.id, n.start, n.end, id));
        let v = if included {
            assigner.variant(id).map_or(-1, |v| v as i64)
        } else {
            -1
        };
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

fn analyze_file(g: &Global, a: &AnalyzeFileArgs, out: &mut dyn Write) -> Result<()> {
    let cfg = a.stats.config()?;
    let name = a.file.display().to_string();
    let mut rdr = csv::Reader::from_path(&a.file).with_context(|| format!("reading {name}"))?;
    let header: Vec<String> = rdr
        .headers()
        .with_context(|| format!("{name}: no header line"))?
        .iter()
        .map(str::to_string)
        .collect();
    let col = |c: &str| -> Result<usize> {
        match header.iter().position(|h| h == c) {
            Some(i) => Ok(i),
            None => bail!("{name}: no column `{c}`; columns: {}", header.join(", ")),
        }
    };
    let vcol = col(&a.variant_col)?;
    // Metric specs: (label, kind override, columns).
    let mut specs: Vec<(String, Option<Kind>, Vec<usize>)> = Vec::new();
    for m in &a.metrics {
        if let Some((n, d)) = m.split_once('/') {
            specs.push((m.clone(), Some(Kind::Ratio), vec![col(n)?, col(d)?]));
        } else if let Some((c, k)) = m.split_once(':') {
            let kind = match k {
                "mean" => Kind::Mean,
                "proportion" => Kind::Proportion,
                _ => bail!("metric `{m}`: the kind must be mean or proportion"),
            };
            specs.push((c.to_string(), Some(kind), vec![col(c)?]));
        } else {
            specs.push((m.clone(), None, vec![col(m)?]));
        }
    }
    if let Some(c) = &a.covariate {
        specs.push((format!("covariate {c}"), Some(Kind::Mean), vec![col(c)?]));
    }
    let mut variants = Vec::new();
    let mut values: Vec<Vec<Vec<f64>>> =
        specs.iter().map(|s| vec![Vec::new(); s.2.len()]).collect();
    for (i, rec) in rdr.records().enumerate() {
        let line = i + 2;
        let rec = rec.with_context(|| format!("{name}: line {line}"))?;
        variants.push(rec.get(vcol).unwrap_or("").to_string());
        for (si, s) in specs.iter().enumerate() {
            for (ci, &c) in s.2.iter().enumerate() {
                let cell = rec.get(c).unwrap_or("").trim();
                let v = match cell.to_ascii_lowercase().as_str() {
                    "true" => 1.0,
                    "false" => 0.0,
                    t => match t.parse::<f64>() {
                        Ok(x) if x.is_finite() => x,
                        _ => bail!(
                            "{name}: line {line}, column `{}`: `{cell}` is not a number",
                            header[c]
                        ),
                    },
                };
                values[si][ci].push(v);
            }
        }
    }
    let covariate: Option<Vec<f64>> = if a.covariate.is_some() {
        specs.pop();
        values.pop().and_then(|mut v| v.pop())
    } else {
        None
    };
    let metrics: Vec<(String, MetricValues)> = specs
        .into_iter()
        .zip(values)
        .map(|((label, kind, _), mut cols)| {
            let v = match kind {
                Some(Kind::Ratio) => {
                    let den = cols.pop().unwrap_or_default();
                    MetricValues::Ratio(cols.pop().unwrap_or_default(), den)
                }
                k => {
                    let x = cols.pop().unwrap_or_default();
                    match &covariate {
                        Some(cv) => MetricValues::Adjusted(x, cv.clone()),
                        None => {
                            let k = k.unwrap_or_else(|| infer_kind(&x));
                            MetricValues::Single(k, x)
                        }
                    }
                }
            };
            (label, v)
        })
        .collect();
    let mut r = analyze(&variants, &a.control, &metrics, &a.weights, &cfg)
        .map_err(|e| anyhow::anyhow!("{name}: {e}"))?;
    abtest::correct(&mut r, a.stats.correction.into());
    write_analysis(g, &r, out)
}

fn write_analysis(g: &Global, r: &Analysis, out: &mut dyn Write) -> Result<()> {
    if g.format == Format::Json {
        return write_json(out, r);
    }
    let csv = g.format == Format::Csv;
    let num = |x: f64, pct: bool| -> Value {
        if csv {
            Value::from(x)
        } else if pct {
            Value::from(format!("{:+.2}%", x * 100.0))
        } else {
            Value::from(format!("{x:.4}"))
        }
    };
    let mut f = Frame::new(&[
        "variant",
        "metric",
        "kind",
        "n_control",
        "n_variant",
        "control_mean",
        "variant_mean",
        "relative_lift",
        "ci_low",
        "ci_high",
        "p_value",
        "p_adjusted",
        "chance_to_beat_control",
    ]);
    for x in &r.results {
        f.push(vec![
            Value::from(x.variant.clone()),
            Value::from(x.metric.clone()),
            Value::from(format!("{:?}", x.kind).to_lowercase()),
            Value::from(x.n_control),
            Value::from(x.n_variant),
            num(x.stats.control_mean, false),
            num(x.stats.variant_mean, false),
            num(x.stats.relative_lift, true),
            num(x.stats.ci_low, false),
            num(x.stats.ci_high, false),
            if csv {
                Value::from(x.stats.p_value)
            } else {
                Value::from(format!("{:.3e}", x.stats.p_value))
            },
            match x.p_value_adjusted {
                None => Value::Null,
                Some(q) if csv => Value::from(q),
                Some(q) => Value::from(format!("{q:.3e}")),
            },
            num(x.stats.chance_to_beat_control, false),
        ]);
    }
    f.write(out, g.output())?;
    if g.format == Format::Table {
        writeln!(
            out,
            "sample ratio: {} (chi² {:.2}, p {:.3e}){}; intervals {:.0}% for variant − control",
            r.srm
                .counts
                .iter()
                .map(|(v, n)| format!("{v} {n}"))
                .collect::<Vec<_>>()
                .join(", "),
            r.srm.chi2,
            r.srm.p_value,
            if r.srm.flagged {
                " — SAMPLE RATIO MISMATCH: assignment is broken, do not trust these results"
            } else {
                ""
            },
            r.confidence * 100.0
        )?;
        for v in &r.verdicts {
            writeln!(
                out,
                "verdict for {}: {} — {}",
                v.variant,
                v.decision.to_uppercase(),
                v.reason
            )?;
            for c in &v.caveats {
                writeln!(out, "  caveat: {c}")?;
            }
        }
    }
    Ok(())
}

fn power(g: &Global, a: &PowerParams, out: &mut dyn Write) -> Result<()> {
    let v = a.run()?;
    if g.format == Format::Json {
        return write_json(out, &v);
    }
    let mut f = Frame::new(&[
        "kind",
        "delta",
        "alpha",
        "power",
        "users_per_arm",
        "users_total",
    ]);
    f.push(vec![
        Value::from(v.kind),
        Value::from(v.delta),
        Value::from(v.alpha),
        Value::from(v.power),
        Value::from(v.users_per_arm),
        Value::from(v.users_total),
    ]);
    f.write(out, g.output())
}

fn define(
    g: &Global,
    a: DefineArgs,
    rt: &tokio::runtime::Runtime,
    out: &mut dyn Write,
) -> Result<()> {
    let ws = crate::commands::existing(g)?;
    let tz = shoplens_engine::calendar::zone(&ws.manifest()?.settings);
    let instant = |text: &Option<String>, end: bool| -> Result<Option<i64>> {
        let Some(t) = text else { return Ok(None) };
        let parsed = if end {
            shoplens_engine::calendar::parse_as_of(t, &tz)
        } else {
            shoplens_engine::calendar::parse_instant(t, &tz)
        };
        match parsed {
            Some(x) => Ok(Some(x)),
            None => bail!("`{t}` is not a date (2024-06-01) or an instant (2024-06-01T10:00:00)"),
        }
    };
    let mut d = Definition::new(&a.key, a.variants);
    if !a.weights.is_empty() {
        d.weights = a.weights;
    }
    d.coverage = a.coverage;
    if let Some(s) = a.seed {
        d.seed = s;
    }
    d.name = a.name;
    d.starts_at = instant(&a.start, false)?;
    d.ends_at = instant(&a.end, true)?;
    d.surface = a.surface;
    d.namespace = a.namespace.as_deref().map(Namespace::parse).transpose()?;
    d.primary_metrics = a.primary;
    d.guardrail_metrics = a.guardrails;
    let overlaps = rt.block_on(experiments::define(&ws, &d, a.replace))?;
    if !g.quiet {
        let mut err = std::io::stderr().lock();
        for o in &overlaps {
            writeln!(err, "warning: {}", o.warning)?;
        }
    }
    if g.format == Format::Json {
        return write_json(
            out,
            &serde_json::json!({"defined": d, "warnings": overlaps.iter().map(|o| &o.warning).collect::<Vec<_>>()}),
        );
    }
    if !g.quiet {
        writeln!(
            out,
            "defined experiment {} ({}; weights {:?}, coverage {})",
            d.key,
            d.variants.join(", "),
            d.weights,
            d.coverage
        )?;
    }
    Ok(())
}

fn list(g: &Global, rt: &tokio::runtime::Runtime, out: &mut dyn Write) -> Result<()> {
    let (ws, tz) = crate::commands::existing_in_zone(g)?;
    let r = rt.block_on(ListParams {}.run(&ws, &tz, crate::people::as_of(g, &tz)))?;
    if g.format == Format::Json {
        return write_json(out, &r);
    }
    let (listed, overlaps) = (r.experiments, r.overlaps);
    let mut f = Frame::new(&[
        "key",
        "status",
        "variants",
        "weights",
        "coverage",
        "starts_at",
        "ends_at",
        "surface",
        "namespace",
        "primary",
        "guardrails",
    ]);
    for l in &listed {
        let d = &l.def;
        f.push(vec![
            Value::from(d.key.clone()),
            Value::from(l.status),
            Value::from(d.variants.join(",")),
            Value::from(
                d.weights
                    .iter()
                    .map(f64::to_string)
                    .collect::<Vec<_>>()
                    .join(","),
            ),
            Value::from(d.coverage),
            Value::from(l.starts_at.clone()),
            Value::from(l.ends_at.clone()),
            Value::from(d.surface.clone()),
            Value::from(d.namespace.as_ref().map(ToString::to_string)),
            Value::from(d.primary_metrics.join(",")),
            Value::from(d.guardrail_metrics.join(",")),
        ]);
    }
    f.write(out, g.output())?;
    if g.format == Format::Table {
        for o in &overlaps {
            writeln!(out, "warning: {}", o.warning)?;
        }
    }
    Ok(())
}
