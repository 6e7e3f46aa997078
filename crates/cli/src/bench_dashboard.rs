//! `shoplens bench dashboard`: every dashboard page of the workspace over HTTP (the server as
//! `shoplens serve` runs it), first load and after warm-up, with per-page p50 and p95.

use std::io::Write;
use std::sync::Arc;
use std::time::Instant;

use anyhow::{Result, bail};
use clap::Args;
use serde_json::{Value, json};
use shoplens_engine::Workspace;
use shoplens_server::ServeConfig;
use tokio::runtime::Runtime;

use crate::Global;
use crate::render::{Format, Frame, write_json};

#[derive(Debug, Args)]
pub(crate) struct DashboardBench {
    /// Timed requests of every page after the warm-up.
    #[arg(long, default_value_t = 20)]
    rounds: usize,
    /// Query string added to every page (e.g. `from=2025-06-01&to=2025-06-30`).
    #[arg(long, default_value = "")]
    query: String,
}

use crate::bench_collector::percentile;

pub(crate) fn dashboard_bench(
    g: &Global,
    b: &DashboardBench,
    rt: &Runtime,
    out: &mut dyn Write,
) -> Result<()> {
    if b.rounds == 0 {
        bail!("--rounds must be at least 1");
    }
    let engine = crate::commands::engine(g)?;
    let ws = Workspace::open_existing(&g.workspace)?.with_engine(engine.clone());
    let token = "bench-read-token-0123456789abcdef".to_string();
    let cfg = ServeConfig {
        read_token: token.clone(),
        api: true,
        dashboard: Some(Arc::new(shoplens_server::Dashboard::new(ws.clone()))),
        ..ServeConfig::default()
    };
    let (url, stop_tx, server) = crate::bench_collector::serve_in_process(rt, ws, cfg)?;
    let agent: ureq::Agent = ureq::Agent::config_builder()
        .http_status_as_error(false)
        .build()
        .into();
    let auth = format!("Bearer {token}");
    let fetch = |path: &str| -> Result<f64> {
        let sep = if b.query.is_empty() { "" } else { "?" };
        let t = Instant::now();
        let mut r = agent
            .get(format!("{url}{path}{sep}{}", b.query))
            .header("Authorization", &auth)
            .call()?;
        let _ = r.body_mut().read_to_string()?;
        if r.status().as_u16() != 200 {
            bail!("{path} answered {}", r.status());
        }
        Ok(t.elapsed().as_secs_f64() * 1000.0)
    };
    let paths: Vec<String> = shoplens_server::dashboard::page_slugs()
        .map(|s| {
            if s.is_empty() {
                "/".to_string()
            } else {
                format!("/p/{s}")
            }
        })
        .collect();
    let result = (|| -> Result<Vec<(String, f64, Vec<f64>)>> {
        let mut rows = Vec::new();
        for p in &paths {
            rows.push((p.clone(), fetch(p)?, Vec::new()));
        }
        for _ in 0..b.rounds {
            for row in &mut rows {
                let ms = fetch(&row.0)?;
                row.2.push(ms);
            }
        }
        Ok(rows)
    })();
    let _ = stop_tx.send(());
    rt.block_on(server)??;
    let mut rows = result?;
    let mut all: Vec<f64> = Vec::new();
    for r in &mut rows {
        r.2.sort_by(f64::total_cmp);
        all.extend(&r.2);
    }
    all.sort_by(f64::total_cmp);
    let pages: Vec<Value> = rows
        .iter()
        .map(|(p, first, t)| {
            json!({"page": p, "first_ms": first, "p50_ms": percentile(t, 0.5), "p95_ms": percentile(t, 0.95)})
        })
        .collect();
    if g.format == Format::Json {
        return write_json(
            out,
            &json!({"rounds": b.rounds, "query": b.query, "pages": pages,
                    "p50_ms": percentile(&all, 0.5), "p95_ms": percentile(&all, 0.95)}),
        );
    }
    let mut f = Frame::new(&["page", "first load ms", "p50 ms", "p95 ms"]);
    for (p, first, t) in &rows {
        f.push(vec![
            Value::from(p.clone()),
            Value::from(format!("{first:.0}")),
            Value::from(format!("{:.1}", percentile(t, 0.5))),
            Value::from(format!("{:.1}", percentile(t, 0.95))),
        ]);
    }
    f.push(vec![
        Value::from("all pages"),
        Value::from(format!("{:.0}", rows.iter().map(|r| r.1).sum::<f64>())),
        Value::from(format!("{:.1}", percentile(&all, 0.5))),
        Value::from(format!("{:.1}", percentile(&all, 0.95))),
    ]);
    f.write(out, g.output())
}
