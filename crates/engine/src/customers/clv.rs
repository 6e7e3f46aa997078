//! Customer lifetime value: BG/NBD and Gamma-Gamma fitted on the paid orders up to a calibration
//! end, per-customer P(alive), expected purchases, expected order value and CLV over a horizon,
//! and a holdout check of the predictions. Definitions: docs/metrics.md, "Lifetime value".

use std::collections::HashMap;

use chrono::NaiveDate;
use futures::StreamExt;
use serde::{Deserialize, Serialize};
use shoplens_models::clv::{self as model, FitError, Rft};

use crate::calendar;
use crate::error::{Error, Result};
use crate::people::cohorts::{date_of, day_number, instant_day};
use crate::query;
use crate::sql::{buyer_orders, floats, ints, local_day, strings};
use crate::storage::workspace::Workspace;

/// The time unit of recency, T and the horizon.
#[derive(
    Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize, clap::ValueEnum, schemars::JsonSchema,
)]
#[serde(rename_all = "lowercase")]
pub enum TimeUnit {
    /// One day.
    Day,
    /// Seven days.
    Week,
    /// A twelfth of 365.25 days.
    Month,
}

impl TimeUnit {
    /// Days in one unit.
    pub fn days(self) -> f64 {
        match self {
            TimeUnit::Day => 1.0,
            TimeUnit::Week => 7.0,
            TimeUnit::Month => 365.25 / 12.0,
        }
    }
}

/// What to compute.
#[derive(Debug, Clone, PartialEq)]
pub struct ClvSpec {
    /// Last day of calibration, inclusive, in the shop's zone (default: the as-of day).
    pub calibration_end: Option<NaiveDate>,
    /// Unit of recency, T and the horizon.
    pub unit: TimeUnit,
    /// Horizon of the predictions, in whole units after the calibration end.
    pub horizon: u32,
    /// Annual discount rate of CLV (0.10 = 10% a year).
    pub discount_rate: f64,
    /// Data up to this instant (default: the newest timestamp in the workspace).
    pub as_of: Option<i64>,
}

/// `shoplens clv` and `GET /api/clv`: the parameters as the command line and the API take them
/// (same names, same defaults).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, clap::Args, schemars::JsonSchema)]
#[serde(default, deny_unknown_fields)]
pub struct ClvParams {
    /// Last day of the calibration period, inclusive (default: the as-of day). Data after it up
    /// to the horizon is the holdout the predictions are checked against.
    #[arg(long)]
    pub calibration_end: Option<String>,
    /// Time unit of recency, T and the horizon.
    #[arg(long, value_enum, default_value_t = TimeUnit::Week)]
    pub time_unit: TimeUnit,
    /// Prediction horizon after the calibration end, in time units.
    #[arg(long, default_value_t = 52)]
    pub horizon: u32,
    /// Annual discount rate of CLV (0.10 = 10% a year).
    #[arg(long, default_value_t = 0.10)]
    pub discount_rate: f64,
    /// Table and CSV: at most this many customers, highest CLV first (0 = all; JSON lists all).
    #[arg(long, default_value_t = 20)]
    pub limit: usize,
}

impl Default for ClvParams {
    fn default() -> ClvParams {
        crate::params::flag_defaults()
    }
}

impl ClvParams {
    /// The spec, as of `as_of`.
    pub fn spec(&self, as_of: Option<i64>) -> Result<ClvSpec> {
        let calibration_end = match self.calibration_end.as_deref() {
            Some(t) => Some(
                NaiveDate::parse_from_str(t.trim(), "%Y-%m-%d").map_err(|_| {
                    Error::Invalid(format!(
                        "--calibration-end `{t}` is not a date (1997-09-30)"
                    ))
                })?,
            ),
            None => None,
        };
        Ok(ClvSpec {
            calibration_end,
            unit: self.time_unit,
            horizon: self.horizon,
            discount_rate: self.discount_rate,
            as_of,
        })
    }
}

impl Default for ClvSpec {
    fn default() -> ClvSpec {
        ClvSpec {
            calibration_end: None,
            unit: TimeUnit::Week,
            horizon: 52,
            discount_rate: 0.10,
            as_of: None,
        }
    }
}

/// Fitted BG/NBD parameters (the `bgnbd` object of the JSON contract).
#[derive(Debug, Clone, PartialEq, Serialize, schemars::JsonSchema)]
pub struct BgNbdOut {
    /// Shape of the purchase-rate gamma.
    pub r: f64,
    /// Scale of the purchase-rate gamma, in time units.
    pub alpha: f64,
    /// Beta a of the drop-out probability.
    pub a: f64,
    /// Beta b of the drop-out probability.
    pub b: f64,
    /// Log-likelihood at the optimum.
    pub log_likelihood: f64,
    /// Standard errors of r, alpha, a, b.
    pub std_errors: Vec<f64>,
    /// Customers fitted.
    pub customers: u64,
}

/// Fitted Gamma-Gamma parameters (the `gamma_gamma` object of the JSON contract).
#[derive(Debug, Clone, PartialEq, Serialize, schemars::JsonSchema)]
pub struct GammaGammaOut {
    /// Shape of a transaction value.
    pub p: f64,
    /// Shape of the customer-level rate.
    pub q: f64,
    /// Scale of the customer-level rate (γ).
    pub v: f64,
    /// Log-likelihood at the optimum.
    pub log_likelihood: f64,
    /// Standard errors of p, q, v.
    pub std_errors: Vec<f64>,
    /// Repeat customers with positive spend fitted.
    pub customers: u64,
    /// Pearson correlation of frequency and mean spend among them: the model assumes none.
    pub frequency_monetary_correlation: Option<f64>,
}

/// One customer's figures.
#[derive(Debug, Clone, PartialEq, Serialize, schemars::JsonSchema)]
pub struct CustomerClv {
    /// Customer id.
    pub user_id: String,
    /// Repeat purchase days in calibration.
    pub frequency: u32,
    /// Time from first to last calibration purchase day, in units.
    pub recency: f64,
    /// Time from the first purchase day to the calibration end, in units.
    pub t: f64,
    /// Mean net value of the repeat purchase days (null without repeats).
    pub monetary: Option<f64>,
    /// P(alive) at the calibration end.
    pub p_alive: f64,
    /// Expected purchase days over the horizon after the calibration end.
    pub expected_purchases: f64,
    /// Expected value of a purchase day (null without a Gamma-Gamma fit).
    pub expected_order_value: Option<f64>,
    /// Discounted value of the expected purchases over the horizon (null without a Gamma-Gamma fit).
    pub clv: Option<f64>,
}

/// Predicted against actual repeat purchases in the holdout, for customers of one frequency.
#[derive(Debug, Clone, PartialEq, Serialize, schemars::JsonSchema)]
pub struct FrequencyBucket {
    /// Calibration frequency (the last bucket holds this many or more).
    pub frequency: u32,
    /// Whether the bucket is "this many or more".
    pub or_more: bool,
    /// Customers.
    pub customers: u64,
    /// Mean purchase days in the holdout.
    pub actual_mean: f64,
    /// Mean predicted purchases in the holdout.
    pub predicted_mean: f64,
}

/// The calibration/holdout check.
#[derive(Debug, Clone, PartialEq, Serialize, schemars::JsonSchema)]
pub struct Holdout {
    /// First holdout day.
    pub from: String,
    /// Last holdout day (inclusive).
    pub to: String,
    /// Holdout length in units.
    pub length: f64,
    /// Purchase days of the calibration customers in the holdout.
    pub actual_purchases: u64,
    /// Their predicted number.
    pub predicted_purchases: f64,
    /// By calibration frequency, 0 … 7+.
    pub by_frequency: Vec<FrequencyBucket>,
}

/// The report.
#[derive(Debug, Clone, PartialEq, Serialize, schemars::JsonSchema)]
pub struct ClvReport {
    /// BG/NBD fit.
    pub bgnbd: BgNbdOut,
    /// Gamma-Gamma fit (null when it could not be fitted; see warnings).
    pub gamma_gamma: Option<GammaGammaOut>,
    /// Customers whose first paid order is on or before the calibration end, by CLV (highest
    /// first), then id.
    pub customers: Vec<CustomerClv>,
    /// Holdout check, when data exist after the calibration end.
    pub holdout: Option<Holdout>,
    /// Calibration end (inclusive).
    pub calibration_end: String,
    /// Time unit.
    pub time_unit: TimeUnit,
    /// Horizon in units.
    pub horizon: u32,
    /// Annual discount rate.
    pub discount_rate: f64,
    /// Discount rate per time unit, (1 + annual)^(unit days / 365.25) − 1.
    pub discount_per_unit: f64,
    /// What the figures could not include, and why.
    pub warnings: Vec<String>,
}

/// One customer's purchase days: calibration (day, value) and holdout count.
struct Days {
    cal: Vec<(i64, f64)>,
    holdout: u64,
}

impl Days {
    /// A customer's sorted purchase days split at the calibration end; None when they first
    /// bought after it.
    fn split(days: &[(i64, f64)], cal_end: i64, holdout_end: i64) -> Option<Days> {
        let k = days.partition_point(|d| d.0 <= cal_end);
        (k > 0).then(|| Days {
            cal: days[..k].to_vec(),
            holdout: days[k..].iter().filter(|d| d.0 <= holdout_end).count() as u64,
        })
    }
}

fn fit_error(model: &str, e: FitError) -> Error {
    Error::Invalid(format!("{model}: {e}"))
}

/// Paid purchase days (shop-local days) per customer with their summed net value, up to `as_of`.
/// Rows arrive sorted by customer and day; `each` sees one customer at a time.
pub(crate) async fn purchase_days(
    ws: &Workspace,
    as_of: Option<i64>,
    mut each: impl FnMut(&str, &[(i64, f64)]),
) -> Result<()> {
    let (ctx, manifest) = query::context(ws).await?;
    let tz = calendar::zone(&manifest.settings);
    let day = local_day("ts", tz.name());
    let q = format!(
        "SELECT user_id, {day} AS d, CAST(sum(coalesce(net_amount, 0)) AS DOUBLE) AS v FROM orders \
         WHERE {} GROUP BY user_id, d ORDER BY user_id, d",
        buyer_orders(as_of)
    );
    let mut stream = ctx.sql(&q).await?.execute_stream().await?;
    let mut current: Option<String> = None;
    let mut days: Vec<(i64, f64)> = Vec::new();
    while let Some(b) = stream.next().await {
        let b = b?;
        let (u, d, v) = (
            strings(b.column(0))?,
            ints(b.column(1))?,
            floats(b.column(2))?,
        );
        for i in 0..b.num_rows() {
            let user = u.value(i);
            if current.as_deref() != Some(user) {
                if let Some(c) = &current {
                    each(c, &days);
                }
                days.clear();
                current = Some(user.to_string());
            }
            days.push((d[i], if v[i].is_nan() { 0.0 } else { v[i] }));
        }
    }
    if let Some(c) = &current {
        each(c, &days);
    }
    Ok(())
}

/// A customer's calibration summary at day `end` (inclusive) from their sorted purchase days
/// (day, value): x, t_x and T in units of `unit` days, and the mean repeat value (None without
/// repeats). None when the first purchase is after `end`.
pub(crate) fn summary_at(days: &[(i64, f64)], end: i64, unit: f64) -> Option<(Rft, Option<f64>)> {
    let k = days.partition_point(|d| d.0 <= end);
    let cal = &days[..k];
    let (first, last) = (cal.first()?.0, cal.last()?.0);
    let x = k - 1;
    let monetary = (x > 0).then(|| cal[1..].iter().map(|c| c.1).sum::<f64>() / x as f64);
    Some((
        Rft::new(
            x as u32,
            (last - first) as f64 / unit,
            (end - first) as f64 / unit,
        ),
        monetary,
    ))
}

fn correlation(xs: &[(u32, f64)]) -> Option<f64> {
    let n = xs.len() as f64;
    if xs.len() < 3 {
        return None;
    }
    let mx = xs.iter().map(|p| f64::from(p.0)).sum::<f64>() / n;
    let mm = xs.iter().map(|p| p.1).sum::<f64>() / n;
    let (mut sxy, mut sxx, mut syy) = (0.0, 0.0, 0.0);
    for &(x, m) in xs {
        let (dx, dm) = (f64::from(x) - mx, m - mm);
        sxy += dx * dm;
        sxx += dx * dx;
        syy += dm * dm;
    }
    (sxx > 0.0 && syy > 0.0).then(|| sxy / (sxx * syy).sqrt())
}

/// Fits the models and scores every customer acquired by the calibration end.
pub async fn clv(ws: &Workspace, spec: &ClvSpec) -> Result<ClvReport> {
    check(spec)?;
    let tz = calendar::zone(&ws.manifest()?.settings);
    let as_of =
        query::as_of_or_newest(ws, spec.as_of, "the workspace holds no orders to fit").await?;
    let as_of_day = instant_day(as_of, &tz);
    let (cal_end, holdout_end) = window(spec, as_of_day);
    let mut users: Vec<(String, Days)> = Vec::new();
    purchase_days(ws, Some(as_of), |user, days| {
        if let Some(d) = Days::split(days, cal_end, holdout_end) {
            users.push((user.to_string(), d));
        }
    })
    .await?;
    score(users, spec, cal_end, holdout_end)
}

/// The calibration end and the last holdout day for the as-of day.
fn window(spec: &ClvSpec, as_of_day: i64) -> (i64, i64) {
    let cal_end = spec.calibration_end.map_or(as_of_day, day_number);
    let horizon_days = (f64::from(spec.horizon) * spec.unit.days()).floor() as i64;
    (cal_end, (cal_end + horizon_days).min(as_of_day))
}

/// As [`clv`], from customers' purchase days (sorted (day, value)) already read up to the as-of
/// day, so a caller holding them does not scan the orders again.
pub(crate) fn clv_of_days<'a>(
    customers: impl IntoIterator<Item = (&'a str, &'a [(i64, f64)])>,
    spec: &ClvSpec,
    as_of_day: i64,
) -> Result<ClvReport> {
    check(spec)?;
    let (cal_end, holdout_end) = window(spec, as_of_day);
    let users = customers
        .into_iter()
        .filter_map(|(u, days)| Days::split(days, cal_end, holdout_end).map(|d| (u.to_string(), d)))
        .collect();
    score(users, spec, cal_end, holdout_end)
}

fn check(spec: &ClvSpec) -> Result<()> {
    if spec.horizon == 0 {
        return Err(Error::Invalid("--horizon must be at least 1".into()));
    }
    if !(spec.discount_rate > -1.0 && spec.discount_rate.is_finite()) {
        return Err(Error::Invalid(
            "--discount-rate must be above -1 (0.10 = 10% a year)".into(),
        ));
    }
    Ok(())
}

/// Fits the models on the customers' calibration days and scores them.
fn score(
    users: Vec<(String, Days)>,
    spec: &ClvSpec,
    cal_end: i64,
    holdout_end: i64,
) -> Result<ClvReport> {
    let unit = spec.unit.days();
    if users.is_empty() {
        return Err(Error::Invalid(format!(
            "no customer has a paid order on or before the calibration end {}",
            date_of(cal_end).map_or_else(|| cal_end.to_string(), |d| d.to_string())
        )));
    }
    let (rft, monetary): (Vec<Rft>, Vec<Option<f64>>) = users
        .iter()
        .filter_map(|(_, d)| summary_at(&d.cal, cal_end, unit))
        .unzip();
    let bg = model::fit_bgnbd(&rft).map_err(|e| fit_error("BG/NBD", e))?;
    let mut warnings = Vec::new();
    let repeat: Vec<(u32, f64)> = rft
        .iter()
        .zip(&monetary)
        .filter_map(|(c, m)| m.filter(|m| *m > 0.0).map(|m| (c.frequency, m)))
        .collect();
    let repeaters = monetary.iter().filter(|m| m.is_some()).count();
    if repeat.len() < repeaters {
        warnings.push(format!(
            "{} repeat customers with zero or negative mean spend are left out of the Gamma-Gamma fit",
            repeaters - repeat.len()
        ));
    }
    let gg = match model::fit_gamma_gamma(&repeat) {
        Ok(f) => Some(f),
        Err(e) => {
            warnings.push(format!(
                "Gamma-Gamma: {e}; expected order value and CLV are left empty"
            ));
            None
        }
    };
    let discount = (1.0 + spec.discount_rate).powf(unit / 365.25) - 1.0;
    let m = bg.params;
    // Predictions depend on (x, t_x, T) only: compute each distinct triple once.
    let mut cache: HashMap<(u32, u64, u64), (f64, f64, f64)> = HashMap::new();
    let horizon = f64::from(spec.horizon);
    let mut customers = Vec::with_capacity(users.len());
    for (((user, _), c), mon) in users.iter().zip(&rft).zip(&monetary) {
        let &mut (p_alive, expected, disc) = cache
            .entry((c.frequency, c.recency.to_bits(), c.t.to_bits()))
            .or_insert_with(|| {
                (
                    m.p_alive(c.frequency, c.recency, c.t),
                    m.expected_purchases(c.frequency, c.recency, c.t, horizon),
                    model::discounted_purchases(&m, *c, spec.horizon, discount),
                )
            });
        let eov = gg.as_ref().and_then(|g| {
            g.params
                .expected_order_value(c.frequency, mon.unwrap_or(0.0).max(0.0))
        });
        customers.push(CustomerClv {
            user_id: user.clone(),
            frequency: c.frequency,
            recency: c.recency,
            t: c.t,
            monetary: *mon,
            p_alive,
            expected_purchases: expected,
            expected_order_value: eov,
            clv: eov.map(|v| v * disc),
        });
    }
    let holdout = (holdout_end > cal_end).then(|| {
        let length = (holdout_end - cal_end) as f64 / unit;
        let mut buckets: Vec<(u64, f64, f64)> = vec![(0, 0.0, 0.0); 8];
        let mut pred_cache: HashMap<(u32, u64, u64), f64> = HashMap::new();
        let (mut actual, mut predicted) = (0u64, 0.0);
        for ((_, d), c) in users.iter().zip(&rft) {
            let p = *pred_cache
                .entry((c.frequency, c.recency.to_bits(), c.t.to_bits()))
                .or_insert_with(|| m.expected_purchases(c.frequency, c.recency, c.t, length));
            let b = &mut buckets[(c.frequency as usize).min(7)];
            b.0 += 1;
            b.1 += d.holdout as f64;
            b.2 += p;
            actual += d.holdout;
            predicted += p;
        }
        Holdout {
            from: date_of(cal_end + 1).map_or_else(String::new, |d| d.to_string()),
            to: date_of(holdout_end).map_or_else(String::new, |d| d.to_string()),
            length,
            actual_purchases: actual,
            predicted_purchases: predicted,
            by_frequency: buckets
                .into_iter()
                .enumerate()
                .filter(|(_, b)| b.0 > 0)
                .map(|(f, (n, a, p))| FrequencyBucket {
                    frequency: f as u32,
                    or_more: f == 7,
                    customers: n,
                    actual_mean: a / n as f64,
                    predicted_mean: p / n as f64,
                })
                .collect(),
        }
    });
    customers.sort_by(|a, b| {
        b.clv
            .unwrap_or(f64::NEG_INFINITY)
            .total_cmp(&a.clv.unwrap_or(f64::NEG_INFINITY))
            .then_with(|| a.user_id.cmp(&b.user_id))
    });
    let p = bg.params;
    Ok(ClvReport {
        bgnbd: BgNbdOut {
            r: p.r,
            alpha: p.alpha,
            a: p.a,
            b: p.b,
            log_likelihood: bg.log_likelihood,
            std_errors: bg.std_errors.clone(),
            customers: bg.customers,
        },
        gamma_gamma: gg.map(|g| GammaGammaOut {
            p: g.params.p,
            q: g.params.q,
            v: g.params.v,
            log_likelihood: g.log_likelihood,
            std_errors: g.std_errors,
            customers: g.customers,
            frequency_monetary_correlation: correlation(&repeat),
        }),
        customers,
        holdout,
        calibration_end: date_of(cal_end).map_or_else(String::new, |d| d.to_string()),
        time_unit: spec.unit,
        horizon: spec.horizon,
        discount_rate: spec.discount_rate,
        discount_per_unit: discount,
        warnings,
    })
}
