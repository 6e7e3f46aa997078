//! `shoplens report`: every dashboard page in one HTML file that opens offline (the pages are
//! the server's dashboard, drawn from the same analyses).

use std::path::PathBuf;

use crate::Global;

/// Arguments of `shoplens report`.
#[derive(Debug, clap::Args)]
pub(crate) struct ReportArgs {
    /// The HTML file to write (one file: charts, styles and data inline; opens offline).
    #[arg(long)]
    out: PathBuf,
    /// First day of the period (YYYY-MM-DD; default: all data).
    #[arg(long)]
    from: Option<String>,
    /// Last day of the period (YYYY-MM-DD; default: the newest data).
    #[arg(long)]
    to: Option<String>,
    /// One channel, where an analysis can be narrowed to it.
    #[arg(long)]
    channel: Option<String>,
}

/// `shoplens report --out report.html`: every dashboard page in one standalone file.
pub(crate) fn report_cmd(
    g: &Global,
    a: ReportArgs,
    rt: &tokio::runtime::Runtime,
    out: &mut dyn std::io::Write,
) -> anyhow::Result<()> {
    let mut params = Vec::new();
    for (k, v) in [("from", &a.from), ("to", &a.to), ("channel", &a.channel)] {
        if let Some(v) = v {
            params.push((k.to_string(), v.clone()));
        }
    }
    if let Some(t) = &g.as_of
        && a.to.is_none()
    {
        params.push(("to".into(), t.chars().take(10).collect()));
    }
    let dash = shoplens_server::Dashboard::new(crate::commands::existing(g)?);
    let lang = g.lang.clone();
    // The pages run their analyses on the runtime's blocking threads, as the server's do.
    let text = rt
        .block_on(rt.spawn_blocking(move || dash.report(params, &lang)))?
        .map_err(|e| anyhow::anyhow!("{}", e.message))?;
    std::fs::write(&a.out, text.as_bytes())
        .map_err(|e| anyhow::anyhow!("{}: {e}", a.out.display()))?;
    if g.format == crate::render::Format::Json {
        return crate::render::write_json(
            out,
            &serde_json::json!({"out": a.out.display().to_string(), "bytes": text.len()}),
        );
    }
    if !g.quiet {
        writeln!(out, "wrote {} ({} KB)", a.out.display(), text.len() / 1024)?;
    }
    Ok(())
}
