//! `shoplens serve`: the collector.

use std::io::Write;
use std::net::SocketAddr;
use std::path::PathBuf;
use std::time::Duration;

use anyhow::{Context, Result, bail};
use clap::Args;
use serde::Deserialize;
use shoplens_engine::Workspace;
use shoplens_server::ServeConfig;

use crate::Global;

#[derive(Debug, Args)]
pub(crate) struct ServeArgs {
    /// Address to listen on (port 0 picks a free port, printed on start).
    #[arg(long, env = "SHOPLENS_ADDR")]
    addr: Option<SocketAddr>,
    /// A TOML file with any of: addr, write_keys, read_token, rate_limit, compact_every_secs,
    /// compact_messages, request_timeout_secs, dedup_window_days, dedup_max_ids,
    /// auth_failures_per_minute, trusted_proxies, export_max_age_days. Flags and environment
    /// variables win over it.
    #[arg(long)]
    config: Option<PathBuf>,
    /// A write key the collector accepts (repeatable; also SHOPLENS_WRITE_KEYS, comma-separated).
    #[arg(long = "write-key", env = "SHOPLENS_WRITE_KEYS", value_delimiter = ',')]
    write_keys: Vec<String>,
    /// The read token (bearer) of the API, dashboard and /metrics: at least 24 characters and no
    /// write key; default: the one stored in the workspace, else a new one, stored and printed
    /// once.
    #[arg(long, env = "SHOPLENS_READ_TOKEN", hide_env_values = true)]
    read_token: Option<String>,
    /// Requests per second allowed per write key (0: no limit; default 10000).
    #[arg(long)]
    rate_limit: Option<u32>,
    /// Compact the log into the tables at least every this many seconds (default 10).
    #[arg(long)]
    compact_every: Option<u64>,
    /// …and as soon as this many messages wait (default 500000).
    #[arg(long)]
    compact_messages: Option<u64>,
    /// Drop a retried message whose messageId arrived within this many days (default 7).
    #[arg(long)]
    dedup_window_days: Option<u64>,
    /// …remembering at most this many messageIds, oldest forgotten first (default 5000000).
    #[arg(long)]
    dedup_max_ids: Option<usize>,
    /// Failed sign-ins and wrong bearer tokens allowed per address a minute, then 429 (0: no
    /// limit; default 20).
    #[arg(long)]
    auth_failures_per_minute: Option<u32>,
    /// A reverse proxy whose X-Forwarded-For names the client (repeatable).
    #[arg(long = "trusted-proxy", value_delimiter = ',')]
    trusted_proxies: Vec<std::net::IpAddr>,
    /// Files the dashboard exported are removed after this many days (default 7).
    #[arg(long)]
    export_max_age_days: Option<u64>,
}

#[derive(Debug, Default, Deserialize)]
#[serde(deny_unknown_fields)]
struct FileConfig {
    addr: Option<SocketAddr>,
    #[serde(default)]
    write_keys: Vec<String>,
    read_token: Option<String>,
    rate_limit: Option<u32>,
    compact_every_secs: Option<u64>,
    compact_messages: Option<u64>,
    request_timeout_secs: Option<u64>,
    dedup_window_days: Option<u64>,
    dedup_max_ids: Option<usize>,
    auth_failures_per_minute: Option<u32>,
    #[serde(default)]
    trusted_proxies: Vec<std::net::IpAddr>,
    export_max_age_days: Option<u64>,
}

pub(crate) fn run(
    g: &Global,
    a: ServeArgs,
    rt: &tokio::runtime::Runtime,
    out: &mut dyn Write,
) -> Result<()> {
    let file: FileConfig = match &a.config {
        Some(p) => {
            let text =
                std::fs::read_to_string(p).with_context(|| format!("reading {}", p.display()))?;
            toml::from_str(&text).with_context(|| format!("{}", p.display()))?
        }
        None => FileConfig::default(),
    };
    let defaults = ServeConfig::default();
    let mut write_keys: Vec<String> = a
        .write_keys
        .iter()
        .chain(&file.write_keys)
        .map(|k| k.trim().to_string())
        .filter(|k| !k.is_empty())
        .collect();
    write_keys.dedup();
    if write_keys.is_empty() {
        bail!(
            "no write key: give --write-key KEY (repeatable), SHOPLENS_WRITE_KEYS or write_keys in --config"
        );
    }
    // The collector, the typed API and the analyses the dashboard runs all go to the engine
    // `serve` was started with.
    let engine = crate::commands::engine(g)?;
    let ws = Workspace::open(&g.workspace)?.with_engine(engine.clone());
    let (read_token, generated) =
        shoplens_server::read_token(ws.root(), a.read_token.or(file.read_token))?;
    const DAY: u64 = 24 * 3600;
    let mut dashboard = shoplens_server::Dashboard::new(ws.clone());
    if let Some(days) = a.export_max_age_days.or(file.export_max_age_days) {
        dashboard = dashboard.with_export_max_age(Duration::from_secs(days * DAY));
    }
    let dashboard = std::sync::Arc::new(dashboard);
    let cfg = ServeConfig {
        write_keys,
        read_token: read_token.clone(),
        rate_limit: a
            .rate_limit
            .or(file.rate_limit)
            .unwrap_or(defaults.rate_limit),
        compact_every: a
            .compact_every
            .or(file.compact_every_secs)
            .map_or(defaults.compact_every, Duration::from_secs),
        compact_messages: a
            .compact_messages
            .or(file.compact_messages)
            .unwrap_or(defaults.compact_messages),
        request_timeout: file
            .request_timeout_secs
            .map_or(defaults.request_timeout, Duration::from_secs),
        api: true,
        dashboard: Some(dashboard.clone()),
        dedup: shoplens_server::DedupBounds {
            window: a
                .dedup_window_days
                .or(file.dedup_window_days)
                .map_or(defaults.dedup.window, |d| Duration::from_secs(d * DAY)),
            max_ids: a
                .dedup_max_ids
                .or(file.dedup_max_ids)
                .unwrap_or(defaults.dedup.max_ids),
        },
        auth_failures_per_minute: a
            .auth_failures_per_minute
            .or(file.auth_failures_per_minute)
            .unwrap_or(defaults.auth_failures_per_minute),
        trusted_proxies: a
            .trusted_proxies
            .into_iter()
            .chain(file.trusted_proxies)
            .collect(),
    };
    // Refused before anything is printed or started.
    cfg.check()?;
    // The command centre is computed in the background as the server starts.
    drop(rt.spawn_blocking(move || dashboard.warm_up()));
    let addr = a
        .addr
        .or(file.addr)
        .unwrap_or(SocketAddr::from(([127, 0, 0, 1], 8080)));
    let _ = tracing_subscriber::fmt()
        .json()
        .with_writer(std::io::stderr)
        .with_max_level(if g.quiet {
            tracing_subscriber::filter::LevelFilter::WARN
        } else {
            tracing_subscriber::filter::LevelFilter::INFO
        })
        .try_init();
    rt.block_on(async {
        let listener = shoplens_server::bind(addr).await?;
        let local = listener.local_addr().context("local address")?;
        writeln!(out, "listening on http://{local}")?;
        if generated {
            writeln!(
                out,
                "read token (stored in the workspace; shown once): {read_token}"
            )?;
        }
        out.flush()?;
        shoplens_server::serve(ws, cfg, listener, shutdown_signal()).await?;
        anyhow::Ok(())
    })
}

/// SIGTERM or Ctrl-C.
async fn shutdown_signal() {
    let ctrl_c = async {
        let _ = tokio::signal::ctrl_c().await;
    };
    #[cfg(unix)]
    let term = async {
        match tokio::signal::unix::signal(tokio::signal::unix::SignalKind::terminate()) {
            Ok(mut s) => {
                s.recv().await;
            }
            Err(_) => std::future::pending::<()>().await,
        }
    };
    #[cfg(not(unix))]
    let term = std::future::pending::<()>();
    tokio::select! {
        () = ctrl_c => {},
        () = term => {},
    }
}
