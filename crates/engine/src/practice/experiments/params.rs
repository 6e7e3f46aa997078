//! `shoplens experiment list | analyze | power` and `GET /api/experiment/…`: each request's
//! parameters as the command line and the API take them (same names, same defaults), and what
//! each answers.

use serde::{Deserialize, Serialize};
use shoplens_models::abtest::{self, Config, Correction};

use super::{Definition, ExperimentReport, ExperimentSpec, Overlap};
use crate::calendar;
use crate::error::{Error, Result};
use crate::query;
use crate::storage::workspace::Workspace;

/// A multiple-comparison correction, as a parameter.
#[derive(
    Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize, clap::ValueEnum, schemars::JsonSchema,
)]
#[serde(rename_all = "snake_case")]
pub enum CorrectionParam {
    /// No correction.
    None,
    /// Holm's step-down (family-wise error).
    Holm,
    /// Benjamini–Hochberg (false discovery rate).
    Bh,
}

impl From<CorrectionParam> for Correction {
    fn from(c: CorrectionParam) -> Correction {
        match c {
            CorrectionParam::None => Correction::None,
            CorrectionParam::Holm => Correction::Holm,
            CorrectionParam::Bh => Correction::BenjaminiHochberg,
        }
    }
}

/// Declares a parameters type with the statistical options every analysis takes (written out
/// in each type: the API's query has no nesting).
macro_rules! with_stat_params {
    ($(#[$meta:meta])* pub struct $name:ident { $($(#[$fmeta:meta])* pub $field:ident: $ty:ty,)* }) => {
        $(#[$meta])*
        pub struct $name {
            $($(#[$fmeta])* pub $field: $ty,)*
            /// Confidence of the intervals.
            #[arg(long, default_value_t = 0.95)]
            pub confidence: f64,
            /// Multiple-comparison correction of the p-values.
            #[arg(long, value_enum, default_value_t = CorrectionParam::None)]
            pub correction: CorrectionParam,
            /// Always-valid p-values and intervals (a confidence sequence), safe to look at
            /// every day while the experiment runs; wider than fixed-horizon ones.
            #[arg(long)]
            pub sequential: bool,
            /// Users in total at which the sequence is tightest (GrowthBook's default 5,000).
            #[arg(long, default_value_t = abtest::SEQUENTIAL_TUNING, requires = "sequential")]
            pub sequential_tuning: f64,
        }

        impl $name {
            /// The statistics' configuration.
            ///
            /// # Errors
            /// A confidence outside [0.5, 1) or a tuning below one user.
            pub fn config(&self) -> Result<Config> {
                if !(0.5..1.0).contains(&self.confidence) {
                    return Err(Error::Invalid(
                        "--confidence must be in [0.5, 1), e.g. 0.95".into(),
                    ));
                }
                if !(self.sequential_tuning.is_finite() && self.sequential_tuning >= 1.0) {
                    return Err(Error::Invalid(
                        "--sequential-tuning must be a number of users ≥ 1, e.g. 5000".into(),
                    ));
                }
                Ok(Config {
                    confidence: self.confidence,
                    sequential: self.sequential.then_some(self.sequential_tuning),
                })
            }
        }
    };
}

with_stat_params! {
    /// The statistical options alone (`experiment analyze-file`).
    #[derive(Debug, Clone, PartialEq, Serialize, Deserialize, clap::Args, schemars::JsonSchema)]
    #[serde(default, deny_unknown_fields)]
    pub struct StatParams {}
}

with_stat_params! {
    /// `experiment analyze`: a workspace experiment, first exposure per user, outcomes after it
    /// in the window.
    #[derive(Debug, Clone, PartialEq, Serialize, Deserialize, clap::Args, schemars::JsonSchema)]
    #[serde(default, deny_unknown_fields)]
    pub struct AnalyzeParams {
        /// The experiment id (exposures.experiment_id).
        pub experiment: String,
        /// The control variant.
        #[arg(long, default_value = "control")]
        pub control: String,
        /// Metrics: conversion, orders, revenue, aov (revenue / orders, delta method) or an
        /// event name; `name:lower` when a decrease is good. Default: the definition's primary
        /// and guardrail metrics, else conversion,orders,revenue,aov.
        #[arg(long, value_delimiter = ',')]
        #[serde(deserialize_with = "crate::params::comma_list")]
        pub metrics: Vec<String>,
        /// Planned split for the SRM test, sorted-variant order (default: the experiment's
        /// weights).
        #[arg(long, value_delimiter = ',')]
        #[serde(deserialize_with = "crate::params::comma_numbers")]
        pub weights: Vec<f64>,
        /// CUPED: adjust each metric by the same metric before the user's first exposure.
        #[arg(long)]
        pub cuped: bool,
        /// Days before exposure that CUPED's covariate covers.
        #[arg(long, default_value_t = 14, requires = "cuped")]
        pub cuped_days: u32,
    }
}

impl Default for StatParams {
    fn default() -> StatParams {
        crate::params::flag_defaults()
    }
}

impl Default for AnalyzeParams {
    fn default() -> AnalyzeParams {
        crate::params::flag_defaults()
    }
}

impl AnalyzeParams {
    /// The analysis, corrected for multiple comparisons as asked.
    pub async fn run(&self, ws: &Workspace) -> Result<ExperimentReport> {
        if self.experiment.trim().is_empty() {
            return Err(Error::Invalid("give the experiment id".into()));
        }
        let mut r = super::analyze(
            ws,
            &ExperimentSpec {
                experiment: self.experiment.clone(),
                control: self.control.clone(),
                metrics: self.metrics.clone(),
                weights: self.weights.clone(),
                config: self.config()?,
                cuped_days: self.cuped.then_some(self.cuped_days),
            },
        )
        .await?;
        abtest::correct(&mut r.analysis, self.correction.into());
        Ok(r)
    }
}

/// `experiment list`: no parameters.
#[derive(
    Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize, clap::Args, schemars::JsonSchema,
)]
#[serde(deny_unknown_fields)]
pub struct ListParams {}

/// One defined experiment with its window in the shop's zone and its status.
#[derive(Debug, Clone, Serialize, schemars::JsonSchema)]
pub struct Listed {
    /// The definition.
    #[serde(flatten)]
    pub def: Definition,
    /// Window start (shop zone).
    pub starts_at: Option<String>,
    /// Window end (shop zone).
    pub ends_at: Option<String>,
    /// `scheduled`, `running` or `finished` as of the as-of instant.
    pub status: &'static str,
}

/// What `experiment list` answers.
#[derive(Debug, Clone, Serialize, schemars::JsonSchema)]
pub struct ExperimentList {
    /// The workspace's experiments.
    pub experiments: Vec<Listed>,
    /// Experiments that can share a user on one surface.
    pub overlaps: Vec<Overlap>,
}

impl ListParams {
    /// The experiments as of `as_of` (default: the newest data) in the shop's zone `tz`.
    pub async fn run(
        &self,
        ws: &Workspace,
        tz: &chrono_tz::Tz,
        as_of: Option<i64>,
    ) -> Result<ExperimentList> {
        let defs = super::definitions(ws).await?;
        let at = match as_of {
            Some(t) => t,
            None => query::newest_instant(ws).await?.unwrap_or(i64::MAX),
        };
        let overlaps = super::overlaps(&defs);
        let fmt = |t: Option<i64>| t.map(|x| calendar::format_instant(x, tz));
        let experiments = defs
            .into_iter()
            .map(|d| Listed {
                starts_at: fmt(d.starts_at),
                ends_at: fmt(d.ends_at),
                status: d.status(at),
                def: d,
            })
            .collect();
        Ok(ExperimentList {
            experiments,
            overlaps,
        })
    }
}

/// `experiment power`: users needed per arm to detect an effect (two-sided, equal arms).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, clap::Args, schemars::JsonSchema)]
#[serde(default, deny_unknown_fields)]
pub struct PowerParams {
    /// Baseline conversion rate (proportions), e.g. 0.10.
    #[arg(long, conflicts_with = "sd")]
    pub baseline: Option<f64>,
    /// Standard deviation per user (means).
    #[arg(long)]
    pub sd: Option<f64>,
    /// The smallest effect worth detecting: absolute (0.02 = two points), or relative with
    /// --relative.
    #[arg(long)]
    pub mde: f64,
    /// --mde is relative to the baseline (0.05 = +5%); proportions only.
    #[arg(long)]
    pub relative: bool,
    /// Two-sided significance level.
    #[arg(long, default_value_t = 0.05)]
    pub alpha: f64,
    /// Power.
    #[arg(long, default_value_t = 0.8)]
    pub power: f64,
}

impl Default for PowerParams {
    /// The flags' defaults; `mde` (which the command line requires) is 0, which `run` refuses.
    fn default() -> PowerParams {
        PowerParams {
            baseline: None,
            sd: None,
            mde: 0.0,
            relative: false,
            alpha: 0.05,
            power: 0.8,
        }
    }
}

/// What `experiment power` answers.
#[derive(Debug, Clone, PartialEq, Serialize, schemars::JsonSchema)]
pub struct PowerReport {
    /// `proportion` or `mean`.
    pub kind: &'static str,
    /// The absolute effect.
    pub delta: f64,
    /// Significance level.
    pub alpha: f64,
    /// Power.
    pub power: f64,
    /// Users per arm, rounded up.
    pub users_per_arm: u64,
    /// Both arms.
    pub users_total: u64,
    /// Users per arm before rounding.
    pub exact: f64,
}

impl PowerParams {
    /// Parameters that cannot go together, as the command line refuses them.
    pub fn conflict(&self) -> Option<String> {
        (self.baseline.is_some() && self.sd.is_some())
            .then(|| "`baseline` and `sd` cannot be used together".to_string())
    }

    /// The sample size.
    ///
    /// # Errors
    /// Levels out of range, both or neither of baseline and sd, or no effect.
    pub fn run(&self) -> Result<PowerReport> {
        if !(0.0..0.5).contains(&self.alpha) || !(0.5..1.0).contains(&self.power) {
            return Err(Error::Invalid(
                "--alpha must be in (0, 0.5) and --power in [0.5, 1)".into(),
            ));
        }
        let (kind, n, delta) = match (self.baseline, self.sd) {
            (Some(p), None) => {
                let delta = if self.relative {
                    p * self.mde
                } else {
                    self.mde
                };
                (
                    "proportion",
                    abtest::sample_size_proportion(p, delta, self.alpha, self.power),
                    delta,
                )
            }
            (None, Some(sd)) if !self.relative => (
                "mean",
                abtest::sample_size_mean(sd, self.mde, self.alpha, self.power),
                self.mde,
            ),
            _ => {
                return Err(Error::Invalid(
                    "give --baseline RATE (proportions) or --sd SD (means, absolute --mde)".into(),
                ));
            }
        };
        let Some(n) = n else {
            return Err(Error::Invalid(
                "no sample size: the effect must be non-zero and the rates within 0..1".into(),
            ));
        };
        let per_arm = n.ceil() as u64;
        Ok(PowerReport {
            kind,
            delta,
            alpha: self.alpha,
            power: self.power,
            users_per_arm: per_arm,
            users_total: per_arm * 2,
            exact: n,
        })
    }
}
