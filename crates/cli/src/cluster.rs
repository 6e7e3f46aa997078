//! `shoplens scheduler` and `shoplens executor`: a Ballista 55 scheduler and executor with
//! shoplens's SQL functions (the funnel aggregates, the shop-time function) registered, so plans
//! that use them run on the cluster. Built with the cargo feature `ballista` (docs/scale-out.md).

use std::io::Write;
use std::net::SocketAddr;
use std::path::PathBuf;
use std::sync::Arc;

use anyhow::{Context, Result, anyhow};
use clap::Args;
use tokio::runtime::Runtime;

/// Ballista's log records (the `log` crate) as lines on stderr, at `SHOPLENS_LOG`'s level
/// (error, warn, info, debug, trace; default info): task failures, executors joining and
/// leaving, jobs planned.
struct StderrLog;

impl log::Log for StderrLog {
    fn enabled(&self, m: &log::Metadata<'_>) -> bool {
        m.level() <= log::max_level()
    }

    fn log(&self, r: &log::Record<'_>) {
        if self.enabled(r.metadata()) {
            #[expect(clippy::disallowed_methods, reason = "a log line's time stamp")]
            let now = chrono::Utc::now();
            let _ = writeln!(
                std::io::stderr().lock(),
                "{} {:5} {}: {}",
                now.format("%Y-%m-%dT%H:%M:%S%.3fZ"),
                r.level(),
                r.target(),
                r.args()
            );
        }
    }

    fn flush(&self) {}
}

static LOGGER: StderrLog = StderrLog;

/// Routes Ballista's log records to stderr (once per process).
fn log_to_stderr() -> Result<()> {
    let level = match std::env::var("SHOPLENS_LOG") {
        Ok(v) => v
            .parse::<log::LevelFilter>()
            .map_err(|_| anyhow!("SHOPLENS_LOG `{v}`: use error, warn, info, debug or trace"))?,
        Err(_) => log::LevelFilter::Info,
    };
    if log::set_logger(&LOGGER).is_ok() {
        log::set_max_level(level);
    }
    Ok(())
}

#[derive(Debug, Args)]
pub(crate) struct SchedulerArgs {
    /// Address to listen on (gRPC, where clients and executors connect).
    #[arg(long, default_value = "127.0.0.1:50050")]
    bind: SocketAddr,
}

#[derive(Debug, Args)]
pub(crate) struct ExecutorArgs {
    /// The scheduler's HOST:PORT.
    #[arg(long, default_value = "127.0.0.1:50050")]
    scheduler: String,
    /// Host to listen on.
    #[arg(long, default_value = "127.0.0.1")]
    bind_host: String,
    /// Port for shuffle data (Arrow Flight).
    #[arg(long, default_value_t = 50051)]
    port: u16,
    /// Port for the scheduler's calls (gRPC).
    #[arg(long, default_value_t = 50052)]
    grpc_port: u16,
    /// Tasks run at once (default: the cores).
    #[arg(long)]
    concurrent_tasks: Option<usize>,
    /// Directory for shuffle files (default: a temporary directory).
    #[arg(long)]
    work_dir: Option<PathBuf>,
}

/// The scheduler's session for each query: Ballista's defaults plus shoplens's functions.
fn session_state(
    config: datafusion::prelude::SessionConfig,
) -> datafusion::common::Result<datafusion::execution::SessionState> {
    use datafusion::execution::FunctionRegistry as _;
    let mut state = ballista_core::utils::default_session_builder(config)?;
    for f in shoplens_engine::cluster::scalar_functions() {
        state.register_udf(Arc::new(f))?;
    }
    for f in shoplens_engine::cluster::aggregate_functions() {
        state.register_udaf(Arc::new(f))?;
    }
    Ok(state)
}

pub(crate) fn scheduler_cmd(a: &SchedulerArgs, rt: &Runtime, out: &mut dyn Write) -> Result<()> {
    use ballista_scheduler::cluster::BallistaCluster;
    use ballista_scheduler::config::SchedulerConfig;
    log_to_stderr()?;
    let config = SchedulerConfig {
        bind_host: a.bind.ip().to_string(),
        bind_port: a.bind.port(),
        external_host: a.bind.ip().to_string(),
        override_session_builder: Some(Arc::new(session_state)),
        ..SchedulerConfig::default()
    };
    writeln!(out, "scheduler listening on {}", a.bind)?;
    out.flush()?;
    rt.block_on(async {
        let cluster = BallistaCluster::new_from_config(&config)
            .await
            .map_err(|e| anyhow!("{e}"))?;
        ballista_scheduler::scheduler_process::start_server(cluster, a.bind, Arc::new(config))
            .await
            .map_err(|e| anyhow!("{e}"))
    })
}

pub(crate) fn executor_cmd(a: &ExecutorArgs, rt: &Runtime, out: &mut dyn Write) -> Result<()> {
    use ballista_core::registry::BallistaFunctionRegistry;
    use ballista_executor::executor_process::{ExecutorProcessConfig, start_executor_process};
    log_to_stderr()?;
    let (host, port) = a
        .scheduler
        .rsplit_once(':')
        .and_then(|(h, p)| Some((h.to_string(), p.parse::<u16>().ok()?)))
        .context("--scheduler is HOST:PORT")?;
    let mut registry = BallistaFunctionRegistry::default();
    // The client plans with DataFusion's default functions, the array functions among them
    // (`regexp_match(…)[1]` is `array_element`); Ballista's default registry lacks those.
    for f in datafusion::functions_nested::all_default_nested_functions() {
        registry
            .scalar_functions
            .entry(f.name().to_string())
            .or_insert(f);
    }
    for f in shoplens_engine::cluster::scalar_functions() {
        registry
            .scalar_functions
            .insert(f.name().to_string(), Arc::new(f));
    }
    for f in shoplens_engine::cluster::aggregate_functions() {
        registry
            .aggregate_functions
            .insert(f.name().to_string(), Arc::new(f));
    }
    let defaults = ExecutorProcessConfig::default();
    let config = ExecutorProcessConfig {
        bind_host: a.bind_host.clone(),
        external_host: Some(a.bind_host.clone()),
        port: a.port,
        grpc_port: a.grpc_port,
        scheduler_host: host,
        scheduler_port: port,
        vcores: a.concurrent_tasks.unwrap_or(defaults.vcores),
        work_dir: a.work_dir.as_ref().map(|d| d.display().to_string()),
        override_function_registry: Some(Arc::new(registry)),
        ..defaults
    };
    writeln!(
        out,
        "executor on {}:{} (flight) / {} (grpc), scheduler {}",
        a.bind_host, a.port, a.grpc_port, a.scheduler
    )?;
    out.flush()?;
    rt.block_on(start_executor_process(Arc::new(config)))
        .map_err(|e| anyhow!("{e}"))
}
