//! The `shoplens` binary: parses flags, calls the engine, renders results. Computes nothing.

#[cfg(test)]
mod api;
mod audience;
mod bench;
#[cfg(feature = "ballista")]
mod bench_cluster;
mod bench_collector;
mod bench_dashboard;
#[cfg(feature = "ballista")]
mod cluster;
mod commands;
mod customers;
mod experiment;
mod funnel;
mod goods;
mod people;
mod recommend;
mod render;
mod report;
mod serve;

use std::path::PathBuf;
use std::process::ExitCode;

use clap::{Args, Parser, Subcommand};

use crate::render::Format;

// mimalloc keeps freed memory for reuse: large analysis buffers then cost no fresh page faults
// (glibc maps and unmaps each one).
#[global_allocator]
static ALLOCATOR: mimalloc::MiMalloc = mimalloc::MiMalloc;

/// mimalloc's `mi_option_purge_delay` (its position in `mi_option_e`, mimalloc.h); a test checks
/// that this option holds mimalloc's purge-delay default.
const MI_OPTION_PURGE_DELAY: libmimalloc_sys::mi_option_t = 15;

/// How long freed memory stays with a server before mimalloc returns it to the system. Its
/// default (1 s) is shorter than one large analysis: a 100M-event funnel returned and re-touched
/// its decoding buffers over and over, and the kernel spent 30% of the CPU time zeroing pages
/// (4.15 s → 2.78 s with 10 s; docs/benchmarks.md). A server idle for 10 s still gives its memory
/// back.
const SERVER_PURGE_DELAY_MS: i32 = 10_000;

/// Commands that run to completion never return freed memory before they exit (-1: no purge).
/// Some of mimalloc's purges are not delayed: a 10M-row ingest still returned 190 MiB and
/// faulted it in again, zeroing huge pages (median 1.97 s → 1.70 s, CPU 3.64 s → 3.16 s).
const BATCH_PURGE_DELAY_MS: i32 = -1;

/// Sets the purge delay for `command`, unless the user chose one (`MIMALLOC_PURGE_DELAY`).
#[allow(
    unsafe_code,
    reason = "the one foreign call shoplens makes: an allocator option"
)]
fn tune_allocator(command: &Command) {
    if std::env::var_os("MIMALLOC_PURGE_DELAY").is_some() {
        return;
    }
    let delay = if command.serves() {
        SERVER_PURGE_DELAY_MS
    } else {
        BATCH_PURGE_DELAY_MS
    };
    // SAFETY: `mi_option_set` stores an integer in mimalloc's option table (atomically); it has
    // no pointer arguments and no preconditions, and the option index is checked by a test.
    unsafe { libmimalloc_sys::mi_option_set(MI_OPTION_PURGE_DELAY, delay.into()) }
}

/// shoplens: e-commerce analytics and customer operations on your own data.
#[derive(Debug, Parser)]
#[command(name = "shoplens", version, about, propagate_version = true)]
pub(crate) struct Cli {
    #[command(flatten)]
    pub(crate) global: Global,
    #[command(subcommand)]
    pub(crate) command: Command,
}

/// Flags every command takes, before or after the subcommand.
#[derive(Debug, Clone, Args)]
pub(crate) struct Global {
    /// Workspace directory holding the shop's tables.
    #[arg(
        long,
        global = true,
        env = "SHOPLENS_WORKSPACE",
        default_value = "./shoplens-data"
    )]
    pub(crate) workspace: PathBuf,
    /// Output format.
    #[arg(long, global = true, value_enum, default_value_t = Format::Table)]
    pub(crate) format: Format,
    /// CSV cells that start with =, +, -, @, tab or CR are written as they are, for pipelines
    /// that read the CSV as data; by default such a text cell gets a leading apostrophe so a
    /// spreadsheet shows it rather than running it (numbers are left alone either way).
    #[arg(long, global = true, env = "SHOPLENS_CSV_RAW")]
    pub(crate) csv_raw: bool,
    /// No progress bars or notes on stderr.
    #[arg(long, short, global = true)]
    pub(crate) quiet: bool,
    /// Analyse as of this date or instant (default: the newest timestamp in the workspace).
    #[arg(long, global = true)]
    pub(crate) as_of: Option<String>,
    /// Language of names, actions and evidence in tables: en or zh-CN (JSON carries both).
    #[arg(long, global = true, env = "SHOPLENS_LANG", default_value = "en")]
    pub(crate) lang: String,
    /// Where queries run: `embedded` (this process) or `ballista://HOST:PORT` (a Ballista
    /// scheduler; needs a build with `--features ballista`).
    #[arg(long, global = true, env = "SHOPLENS_ENGINE")]
    pub(crate) engine: Option<String>,
}

impl Global {
    /// How frames are written: `--format`, and `--csv-raw` for CSV.
    pub(crate) fn output(&self) -> render::Output {
        render::Output {
            format: self.format,
            csv_raw: self.csv_raw,
        }
    }

    /// Whether tables should speak 简体中文.
    pub(crate) fn lang_zh(&self) -> bool {
        self.lang.to_ascii_lowercase().starts_with("zh")
    }
}

#[derive(Debug, Subcommand)]
pub(crate) enum Command {
    /// Ingest source files into the workspace with a preset or a mapping file.
    Ingest(commands::IngestArgs),
    /// Rows, users and time range of every table.
    Tables,
    /// Run a SQL query over the canonical tables (and `quarantine`).
    Sql {
        /// The query, e.g. "SELECT status, count(*) FROM orders GROUP BY 1".
        query: String,
    },
    /// List rows set aside by ingest, with file, line, column and reason.
    Quarantine(shoplens_engine::query::QuarantineParams),
    /// Build the seeded demo shop in the workspace and report on it.
    Demo(shoplens_engine::demo::DemoParams),
    /// Measure speed beside peers on the same data (figures in docs/benchmarks.md).
    Bench(bench::BenchArgs),
    /// KPIs of the command centre (DAU, orders, GMV, AOV, conversion, repurchase, channel
    /// conversion, campaign ROI, returns, sell-through, turnover, churn, member activity): the
    /// last N days against the N before.
    Kpis(shoplens_engine::practice::kpis::KpiParams),
    /// Funnel: users per step, conversion, drop-off and time to convert (ClickHouse windowFunnel semantics).
    Funnel(shoplens_engine::people::funnel::FunnelParams),
    /// Repurchase: N-day repurchase rate of new customers and intervals between purchase days.
    Repurchase(shoplens_engine::people::repurchase::RepurchaseParams),
    /// Lifetime value: BG/NBD and Gamma-Gamma fits, P(alive), expected purchases and CLV per customer.
    Clv(shoplens_engine::customers::clv::ClvParams),
    /// RFM: scores, the eleven named segments with actions, k-means clusters, movement between dates.
    Rfm(shoplens_engine::customers::rfm::RfmParams),
    /// Churn risk: stages of buyers at the as-of date and win-back candidates by expected value.
    Churn(shoplens_engine::customers::stages::ChurnParams),
    /// Audiences: saved rules over customer profiles (segment, stage, CLV, tier …), exported to
    /// CSV, XLSX, JSON lines or a webhook.
    Audience(audience::AudienceArgs),
    /// Customer stages over time (registered-not-purchased, new, active, at risk, churned, won back).
    Stages(shoplens_engine::customers::stages::StagesParams),
    /// Market baskets: association rules (support, confidence, lift, leverage, conviction) by
    /// FP-growth, and bundle suggestions with their order value.
    Basket(shoplens_engine::goods::baskets::BasketParams),
    /// Product matrix: units, revenue, discounts, cost and margin per item and category, in
    /// sales × margin quadrants (star, traffic driver, profit contributor, question) with actions.
    Products(shoplens_engine::goods::ProductParams),
    /// Returns and reviews: return rates by units and orders, good-review rate and rating per item,
    /// category or attribute (size, colour …), and quality-risk flags with their evidence.
    Returns(shoplens_engine::goods::ReturnsParams),
    /// Inventory: sell-through, 动销率 (share of SKUs sold), turnover, days of inventory, slow
    /// movers and stock-outs.
    Inventory(shoplens_engine::goods::InventoryParams),
    /// Channels: UV, PV, stage conversion, AOV, revenue, margin, new customers, CAC, ROAS, 90-day
    /// repurchase and LTV/CAC per channel, and the daily trend.
    Channels(shoplens_engine::traffic::ChannelParams),
    /// Campaigns and promotions: orders, revenue, discount cost, margin, incremental revenue
    /// against the redeemers' baseline period, ROI, and AOV against margin rate.
    Campaigns,
    /// Recommendations: offline evaluation against popularity, lists per user and per item
    /// (item-to-item, implicit ALS, MMR diversity).
    Recommend(recommend::RecommendArgs),
    /// Activity: events, orders and revenue by hour × weekday and category; DAU/WAU/MAU.
    Activity(shoplens_engine::people::activity::ActivityParams),
    /// Cohorts by first purchase or registration: retention and LTV curves.
    Cohorts(shoplens_engine::people::cohorts::CohortParams),
    /// User lifecycle per period: new, returning, resurrecting, dormant (PostHog's definitions).
    Lifecycle(shoplens_engine::people::lifecycle::LifecycleParams),
    /// Paths: the commonest sequences after (or before) an event within sessions, and Sankey links.
    Paths(shoplens_engine::people::paths::PathParams),
    /// Experiments: definitions, assignment, analysis (frequentist, Bayesian, CUPED,
    /// sequential) and sample sizes.
    Experiment(experiment::ExperimentArgs),
    /// Run the server: the collector (Segment's HTTP tracking API, durable and idempotent), the
    /// JSON API and the dashboard, behind the read token.
    Serve(serve::ServeArgs),
    /// Write the dashboard's pages as one standalone HTML report (opens offline).
    Report(report::ReportArgs),
    /// Run a Ballista scheduler with shoplens's functions (for `--engine ballista://…`).
    #[cfg(feature = "ballista")]
    Scheduler(cluster::SchedulerArgs),
    /// Run a Ballista executor with shoplens's functions, attached to a scheduler.
    #[cfg(feature = "ballista")]
    Executor(cluster::ExecutorArgs),
    /// List the built-in presets, or print one as a mapping file to start from.
    Presets {
        /// Print this preset's mapping (TOML).
        #[arg(long)]
        show: Option<String>,
    },
}

impl Command {
    /// Whether the command runs until stopped (a server, a cluster process) rather than to
    /// completion.
    fn serves(&self) -> bool {
        match self {
            Command::Serve(_) => true,
            #[cfg(feature = "ballista")]
            Command::Scheduler(_) | Command::Executor(_) => true,
            _ => false,
        }
    }
}

fn main() -> ExitCode {
    let cli = Cli::parse();
    tune_allocator(&cli.command);
    match commands::run(cli) {
        Ok(()) => ExitCode::SUCCESS,
        Err(e) => {
            #[expect(clippy::print_stderr, reason = "the binary reports its own errors")]
            {
                eprintln!("error: {e:#}");
            }
            ExitCode::FAILURE
        }
    }
}

#[cfg(test)]
mod tests {
    /// The option index `tune_allocator` sets is mimalloc's purge delay: it holds that option's
    /// default (1000 ms in mimalloc 3), which no neighbouring option has (the test binary does
    /// not call `tune_allocator`).
    #[test]
    #[allow(unsafe_code, reason = "reads an allocator option")]
    fn purge_delay_option_is_mimallocs() {
        if std::env::var_os("MIMALLOC_PURGE_DELAY").is_some() {
            return;
        }
        // SAFETY: `mi_option_get` reads an integer from mimalloc's option table.
        let v = unsafe { libmimalloc_sys::mi_option_get(super::MI_OPTION_PURGE_DELAY) };
        assert_eq!(v, 1000);
    }
}
