//! Customer lifetime value: the BG/NBD model of repeat purchasing (Fader, Hardie & Lee 2005,
//! "Counting Your Customers the Easy Way") and the Gamma-Gamma model of spend per transaction
//! (Fader, Hardie & Lee 2005, "RFM and CLV"), both fitted by maximum likelihood.
//! Definitions: docs/metrics.md, "Lifetime value".
//!
//! The BG/NBD likelihood depends on a customer only through (x, t_x, T), so it is evaluated on the
//! distinct triples with their counts as weights, and every term that depends on x alone is computed
//! once per distinct x: millions of customers fit in milliseconds. The optimiser is argmin's L-BFGS
//! on log parameters with analytic gradients; a fit is accepted only when the Hessian of the
//! log-likelihood at the optimum is negative definite (otherwise the likelihood is flat in some
//! direction and the parameters mean nothing, which is reported as such).
//!
//! ```
//! use shoplens_models::clv::{BgNbd, Rft, fit_bgnbd};
//! // Customers drawn from a known model would recover it; here a tiny hand-made base.
//! let base = [Rft::new(0, 0.0, 30.0), Rft::new(2, 20.0, 30.0), Rft::new(5, 28.0, 30.0),
//!             Rft::new(1, 3.0, 30.0), Rft::new(0, 0.0, 25.0), Rft::new(3, 10.0, 28.0)];
//! let fit = fit_bgnbd(&base);
//! assert!(fit.is_ok() || fit.is_err()); // six customers may or may not pin the model down
//! let m = BgNbd { r: 0.243, alpha: 4.414, a: 0.793, b: 2.426 };
//! assert_eq!(m.p_alive(0, 0.0, 30.0), 1.0);
//! assert!(m.expected_purchases(2, 20.0, 30.0, 39.0) > 0.0);
//! ```

use std::collections::HashMap;

use rustc_hash::FxHashMap;

use argmin::core::{CostFunction, Executor, Gradient, State, TerminationReason, TerminationStatus};
use argmin::solver::linesearch::MoreThuenteLineSearch;
use argmin::solver::quasinewton::LBFGS;
use serde::Serialize;
use statrs::function::gamma::{digamma, ln_gamma};

/// Why a model could not be fitted.
#[derive(Debug, Clone, PartialEq, thiserror::Error)]
pub enum FitError {
    /// The data cannot identify the model (no repeat purchases, too few customers, a flat
    /// likelihood); the message says which.
    #[error("{0}")]
    Degenerate(String),
    /// The optimiser stopped without meeting its tolerance.
    #[error("the fit did not converge: {0}")]
    NotConverged(String),
}

/// One customer's calibration summary, in time units (weeks, days …).
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct Rft {
    /// x: repeat purchases (purchase occasions after the first).
    pub frequency: u32,
    /// t_x: time from the first to the last purchase.
    pub recency: f64,
    /// T: time from the first purchase to the end of calibration.
    pub t: f64,
}

impl Rft {
    /// A summary.
    pub fn new(frequency: u32, recency: f64, t: f64) -> Rft {
        Rft {
            frequency,
            recency,
            t,
        }
    }
}

/// BG/NBD parameters: purchase rates are gamma(r, α) across customers, drop-out probabilities
/// after each purchase beta(a, b).
#[derive(Debug, Clone, Copy, PartialEq, Serialize, schemars::JsonSchema)]
pub struct BgNbd {
    /// Shape of the purchase-rate gamma.
    pub r: f64,
    /// Scale (rate) of the purchase-rate gamma, in time units.
    pub alpha: f64,
    /// Beta a of the drop-out probability.
    pub a: f64,
    /// Beta b of the drop-out probability.
    pub b: f64,
}

/// A fitted model with its diagnostics.
#[derive(Debug, Clone, PartialEq, Serialize, schemars::JsonSchema)]
pub struct Fitted<P> {
    /// The maximum-likelihood parameters.
    pub params: P,
    /// Log-likelihood at the optimum (summed over customers).
    pub log_likelihood: f64,
    /// Standard errors of the parameters (inverse observed information), in parameter order.
    pub std_errors: Vec<f64>,
    /// Customers the fit used.
    pub customers: u64,
    /// Optimiser iterations.
    pub iterations: u64,
}

/// Gamma-Gamma parameters: a customer's transaction values are gamma(p, ν) with ν ~ gamma(q, γ).
#[derive(Debug, Clone, Copy, PartialEq, Serialize, schemars::JsonSchema)]
pub struct GammaGamma {
    /// Shape of a transaction value.
    pub p: f64,
    /// Shape of the customer-level rate ν.
    pub q: f64,
    /// γ, the scale of ν (called v in the output, as lifetimes does).
    pub v: f64,
}

/// A differentiable negative log-likelihood on log parameters.
trait Likelihood {
    /// Log-likelihood at raw parameters and its gradient with respect to them.
    fn ll_grad(&self, p: &[f64]) -> (f64, Vec<f64>);
    /// Total weight (customers), to scale the cost.
    fn weight(&self) -> f64;
}

/// Log parameters, cost and gradient of one evaluation.
type Evaluated = (Vec<f64>, f64, Vec<f64>);

/// The likelihood on log parameters as argmin sees it: cost −ll / n and its gradient. argmin asks
/// for the cost and the gradient at the same point separately; the last evaluation is kept so
/// that each point costs one pass over the data.
struct LogProblem<'a, L: Likelihood> {
    lik: &'a L,
    last: std::sync::Mutex<Option<Evaluated>>,
}

/// Parameters beyond this range (either way) mean the likelihood runs off to a boundary.
const BOUND: f64 = 1e6;

impl<L: Likelihood> LogProblem<'_, L> {
    /// Cost and gradient on log parameters.
    fn eval(&self, theta: &[f64]) -> (f64, Vec<f64>) {
        if let Ok(last) = self.last.lock()
            && let Some((t, c, g)) = last.as_ref()
            && t.as_slice() == theta
        {
            return (*c, g.clone());
        }
        let p: Vec<f64> = theta.iter().map(|t| t.clamp(-40.0, 40.0).exp()).collect();
        let (ll, g) = self.lik.ll_grad(&p);
        let w = self.lik.weight();
        let c = -ll / w;
        let c = if c.is_finite() { c } else { f64::MAX };
        let g: Vec<f64> = g
            .iter()
            .zip(&p)
            .map(|(g, p)| {
                let v = -g * p / w;
                if v.is_finite() { v } else { 0.0 }
            })
            .collect();
        if let Ok(mut last) = self.last.lock() {
            *last = Some((theta.to_vec(), c, g.clone()));
        }
        (c, g)
    }
}

impl<L: Likelihood> CostFunction for LogProblem<'_, L> {
    type Param = Vec<f64>;
    type Output = f64;
    fn cost(&self, theta: &Vec<f64>) -> Result<f64, argmin::core::Error> {
        Ok(self.eval(theta).0)
    }
}

impl<L: Likelihood> Gradient for LogProblem<'_, L> {
    type Param = Vec<f64>;
    type Gradient = Vec<f64>;
    fn gradient(&self, theta: &Vec<f64>) -> Result<Vec<f64>, argmin::core::Error> {
        Ok(self.eval(theta).1)
    }
}

/// Maximises a likelihood from `init` (raw parameters); checks the optimum is a proper maximum.
fn maximise<L: Likelihood>(
    lik: &L,
    init: &[f64],
    names: &[&str],
) -> Result<(Vec<f64>, f64, Vec<f64>, u64), FitError> {
    let theta0: Vec<f64> = init.iter().map(|v| v.ln()).collect();
    let solver = LBFGS::new(MoreThuenteLineSearch::new(), 10)
        .with_tolerance_grad(1e-12)
        .and_then(|s| s.with_tolerance_cost(1e-16))
        .map_err(|e| FitError::NotConverged(e.to_string()))?;
    let problem = LogProblem {
        lik,
        last: std::sync::Mutex::new(None),
    };
    let res = Executor::new(problem, solver)
        .configure(|s| s.param(theta0).max_iters(1000))
        .run()
        .map_err(|e| FitError::NotConverged(e.to_string()))?;
    let state = res.state();
    let iterations = state.get_iter();
    if let TerminationStatus::Terminated(TerminationReason::MaxItersReached) =
        state.get_termination_status()
    {
        return Err(FitError::NotConverged(format!(
            "no optimum after {iterations} iterations"
        )));
    }
    let theta = state
        .get_best_param()
        .cloned()
        .ok_or_else(|| FitError::NotConverged("the optimiser returned no parameters".into()))?;
    let mut p: Vec<f64> = theta.iter().map(|t| t.exp()).collect();
    for (v, n) in p.iter().zip(names) {
        if !v.is_finite() || *v > BOUND || *v < 1.0 / BOUND {
            return Err(FitError::Degenerate(format!(
                "the likelihood has no interior maximum: {n} runs off to {v:e}; the data cannot identify the model"
            )));
        }
    }
    // A Newton step on the raw parameters finishes what L-BFGS's tolerance leaves; the Hessian
    // it needs is the one the standard errors and the flatness check use.
    let (mut ll, g) = lik.ll_grad(&p);
    let mut h = hessian(lik, &p);
    if let Some(step) = solve_neg_definite(&h, &g) {
        let cand: Vec<f64> = p.iter().zip(&step).map(|(p, s)| p + s).collect();
        let moved = step.iter().zip(&p).any(|(s, p)| s.abs() > 1e-12 * p.abs());
        if moved && cand.iter().all(|v| *v > 0.0) {
            let (ll2, _) = lik.ll_grad(&cand);
            if ll2 >= ll - 1e-9 * ll.abs().max(1.0) {
                p = cand;
                ll = ll2;
                h = hessian(lik, &p);
            }
        }
    }
    let neg: Vec<Vec<f64>> = h.iter().map(|r| r.iter().map(|v| -v).collect()).collect();
    let cov = invert_spd(&neg).ok_or_else(|| {
        FitError::Degenerate(
            "the likelihood is flat at its optimum (the Hessian is not negative definite): the data cannot pin the parameters down".into(),
        )
    })?;
    let se = (0..p.len()).map(|i| cov[i][i].sqrt()).collect();
    Ok((p, ll, se, iterations))
}

/// Hessian of the log-likelihood by central differences of the analytic gradient.
fn hessian<L: Likelihood>(lik: &L, p: &[f64]) -> Vec<Vec<f64>> {
    let n = p.len();
    let mut h = vec![vec![0.0; n]; n];
    for j in 0..n {
        let step = 1e-5 * p[j].abs().max(1e-8);
        let mut up = p.to_vec();
        let mut down = p.to_vec();
        up[j] += step;
        down[j] -= step;
        let (_, gu) = lik.ll_grad(&up);
        let (_, gd) = lik.ll_grad(&down);
        for i in 0..n {
            h[i][j] = (gu[i] - gd[i]) / (2.0 * step);
        }
    }
    // Symmetrise: the two finite-difference estimates of each mixed derivative are averaged.
    (0..n)
        .map(|i| (0..n).map(|j| 0.5 * (h[i][j] + h[j][i])).collect())
        .collect()
}

/// Cholesky factor of a symmetric positive-definite matrix, or None.
fn cholesky(m: &[Vec<f64>]) -> Option<Vec<Vec<f64>>> {
    let n = m.len();
    let mut l = vec![vec![0.0; n]; n];
    for i in 0..n {
        for j in 0..=i {
            let s: f64 = (0..j).map(|k| l[i][k] * l[j][k]).sum();
            if i == j {
                let d = m[i][i] - s;
                if !(d > 0.0 && d.is_finite()) {
                    return None;
                }
                l[i][j] = d.sqrt();
            } else {
                l[i][j] = (m[i][j] - s) / l[j][j];
            }
        }
    }
    Some(l)
}

/// Solves L Lᵀ y = b.
fn cholesky_solve(l: &[Vec<f64>], b: &[f64]) -> Vec<f64> {
    let n = l.len();
    let mut y = vec![0.0; n];
    for i in 0..n {
        y[i] = (b[i] - (0..i).map(|k| l[i][k] * y[k]).sum::<f64>()) / l[i][i];
    }
    let mut x = vec![0.0; n];
    for i in (0..n).rev() {
        x[i] = (y[i] - (i + 1..n).map(|k| l[k][i] * x[k]).sum::<f64>()) / l[i][i];
    }
    x
}

/// Inverse of a symmetric positive-definite matrix, or None when it is not.
fn invert_spd(m: &[Vec<f64>]) -> Option<Vec<Vec<f64>>> {
    let l = cholesky(m)?;
    let n = m.len();
    let cols: Vec<Vec<f64>> = (0..n)
        .map(|j| {
            let e: Vec<f64> = (0..n).map(|i| f64::from(u8::from(i == j))).collect();
            cholesky_solve(&l, &e)
        })
        .collect();
    Some(
        (0..n)
            .map(|i| (0..n).map(|j| cols[j][i]).collect())
            .collect(),
    )
}

/// The Newton step −H⁻¹ g for a negative-definite H, or None.
fn solve_neg_definite(h: &[Vec<f64>], g: &[f64]) -> Option<Vec<f64>> {
    let neg: Vec<Vec<f64>> = h.iter().map(|r| r.iter().map(|v| -v).collect()).collect();
    let l = cholesky(&neg)?;
    Some(cholesky_solve(&l, g))
}

/// Customers with the same (x, t_x, T): indices into the distinct frequencies, recencies and
/// ages, and the count.
#[derive(Clone, Copy)]
struct Row {
    x: u32,
    tx: u32,
    t: u32,
    w: f64,
}

/// The BG/NBD sufficient statistics: distinct (x, t_x, T) with counts. At daily granularity
/// recencies and ages take a few hundred values, so their logarithms are computed once per
/// evaluation and each row costs one exp and one ln_1p.
struct BgData {
    xs: Vec<f64>,
    txs: Vec<f64>,
    ts: Vec<f64>,
    rows: Vec<Row>,
    weight: f64,
}

/// Indices of distinct values (by bits) in first-seen order.
fn index_of(map: &mut HashMap<u64, u32>, values: &mut Vec<f64>, v: f64) -> u32 {
    *map.entry(v.to_bits()).or_insert_with(|| {
        values.push(v);
        (values.len() - 1) as u32
    })
}

impl BgData {
    fn new(customers: &[Rft]) -> BgData {
        // FxHash: the keys are numbers from our own data, so a fast non-cryptographic hash is safe.
        let mut counts: FxHashMap<(u32, u64, u64), f64> = FxHashMap::default();
        for c in customers {
            *counts
                .entry((c.frequency, c.recency.to_bits(), c.t.to_bits()))
                .or_default() += 1.0;
        }
        let (mut xs, mut txs, mut ts) = (Vec::new(), Vec::new(), Vec::new());
        let (mut xm, mut txm, mut tm) = (HashMap::new(), HashMap::new(), HashMap::new());
        let mut rows: Vec<Row> = counts
            .into_iter()
            .map(|((x, tx, t), w)| Row {
                x: index_of(&mut xm, &mut xs, f64::from(x)),
                tx: index_of(&mut txm, &mut txs, f64::from_bits(tx)),
                t: index_of(&mut tm, &mut ts, f64::from_bits(t)),
                w,
            })
            .collect();
        rows.sort_by_key(|r| (r.x, r.t, r.tx));
        BgData {
            xs,
            txs,
            ts,
            rows,
            weight: customers.len() as f64,
        }
    }
}

/// Per-frequency terms of one evaluation: a1, c2, c3 − c2 and their derivatives.
struct XTerms {
    x: f64,
    a1: f64,
    da1_dr: f64,
    c2: f64,
    d32: f64,
    dc2_da: f64,
    dc2_db: f64,
    dd32_da: f64,
    dd32_db: f64,
}

impl Likelihood for BgData {
    fn weight(&self) -> f64 {
        self.weight
    }
    fn ll_grad(&self, p: &[f64]) -> (f64, Vec<f64>) {
        use rayon::prelude::*;
        let (r, al, a, b) = (p[0], p[1], p[2], p[3]);
        let (lg_r, lg_b, lg_ab) = (ln_gamma(r), ln_gamma(b), ln_gamma(a + b));
        let (dg_r, dg_b, dg_ab) = (digamma(r), digamma(b), digamma(a + b));
        let ln_al = al.ln();
        let terms: Vec<XTerms> = self
            .xs
            .iter()
            .map(|&x| {
                let lg_abx = ln_gamma(a + b + x);
                let dg_abx = digamma(a + b + x);
                let c2 = ln_gamma(b + x) - lg_abx - lg_b + lg_ab;
                let dc2_da = dg_ab - dg_abx;
                let dc2_db = digamma(b + x) - dg_abx - dg_b + dg_ab;
                // c3 − c2 = ln a + lnΓ(b+x−1) − lnΓ(b+x) = ln a − ln(b+x−1).
                let (d32, dd32_da, dd32_db) = if x > 0.0 {
                    (a.ln() - (b + x - 1.0).ln(), 1.0 / a, -1.0 / (b + x - 1.0))
                } else {
                    (0.0, 0.0, 0.0)
                };
                XTerms {
                    x,
                    a1: ln_gamma(r + x) - lg_r + r * ln_al,
                    da1_dr: digamma(r + x) - dg_r + ln_al,
                    c2,
                    d32,
                    dc2_da,
                    dc2_db,
                    dd32_da,
                    dd32_db,
                }
            })
            .collect();
        let l_t: Vec<(f64, f64)> = self
            .ts
            .iter()
            .map(|t| ((al + t).ln(), 1.0 / (al + t)))
            .collect();
        let l_tx: Vec<(f64, f64)> = self
            .txs
            .iter()
            .map(|t| ((al + t).ln(), 1.0 / (al + t)))
            .collect();
        let sum = |mut acc: [f64; 5], row: &Row| {
            let k = &terms[row.x as usize];
            let (lt, it) = l_t[row.t as usize];
            let rx = r + k.x;
            let w = row.w;
            // ln(e^A2 + e^A3) = A2 + softplus(A3 − A2); w3 = sigmoid(A3 − A2).
            let (soft, w3, ltx, itx) = if k.x > 0.0 {
                let (ltx, itx) = l_tx[row.tx as usize];
                let d = k.d32 - rx * (ltx - lt);
                let e = (-d.abs()).exp();
                let soft = d.max(0.0) + e.ln_1p();
                let w3 = if d >= 0.0 {
                    1.0 / (1.0 + e)
                } else {
                    e / (1.0 + e)
                };
                (soft, w3, ltx, itx)
            } else {
                (0.0, 0.0, 0.0, 0.0)
            };
            let w2 = 1.0 - w3;
            acc[0] += w * (k.a1 + k.c2 - rx * lt + soft);
            acc[1] += w * (k.da1_dr - w2 * lt - w3 * ltx);
            acc[2] += w * (r / al - rx * (w2 * it + w3 * itx));
            acc[3] += w * (k.dc2_da + w3 * k.dd32_da);
            acc[4] += w * (k.dc2_db + w3 * k.dd32_db);
            acc
        };
        let add = |a: [f64; 5], b: [f64; 5]| std::array::from_fn(|i| a[i] + b[i]);
        let acc = if self.rows.len() < 50_000 {
            self.rows.iter().fold([0.0; 5], sum)
        } else {
            // Chunk sums added in chunk order: the same figures whatever the scheduling.
            self.rows
                .par_chunks(16_384)
                .map(|c| c.iter().fold([0.0; 5], sum))
                .collect::<Vec<_>>()
                .into_iter()
                .fold([0.0; 5], add)
        };
        (acc[0], acc[1..].to_vec())
    }
}

/// Fits BG/NBD by maximum likelihood.
///
/// Fails with [`FitError::Degenerate`] when nobody made a repeat purchase (the likelihood then
/// grows without bound as r → 0), when fewer than two customers are given, or when the optimum is
/// on a boundary or flat.
pub fn fit_bgnbd(customers: &[Rft]) -> Result<Fitted<BgNbd>, FitError> {
    if customers.len() < 2 {
        return Err(FitError::Degenerate(format!(
            "BG/NBD needs at least two customers, got {}",
            customers.len()
        )));
    }
    if let Some(c) = customers
        .iter()
        .find(|c| !(c.t.is_finite() && c.recency >= 0.0 && c.recency <= c.t))
    {
        return Err(FitError::Degenerate(format!(
            "a customer has recency {} and T {}: need 0 ≤ recency ≤ T",
            c.recency, c.t
        )));
    }
    let repeaters = customers.iter().filter(|c| c.frequency > 0).count();
    if repeaters == 0 {
        return Err(FitError::Degenerate(
            "no customer made a repeat purchase: BG/NBD cannot be fitted (its likelihood has no maximum)".into(),
        ));
    }
    let data = BgData::new(customers);
    let mean_t = customers.iter().map(|c| c.t).sum::<f64>() / customers.len() as f64;
    let (p, ll, se, it) = maximise(
        &data,
        &[1.0, mean_t.max(1e-3), 1.0, 1.0],
        &["r", "alpha", "a", "b"],
    )?;
    Ok(Fitted {
        params: BgNbd {
            r: p[0],
            alpha: p[1],
            a: p[2],
            b: p[3],
        },
        log_likelihood: ll,
        std_errors: se,
        customers: customers.len() as u64,
        iterations: it,
    })
}

/// Gauss's hypergeometric series ₂F₁(a, b; c; z) for 0 ≤ z < 1, summed until the terms stop
/// mattering. Callers transform so that the series converges quickly.
fn hyp2f1(a: f64, b: f64, c: f64, z: f64) -> f64 {
    let mut term = 1.0;
    let mut sum = 1.0;
    let mut n = 0.0;
    while n < 1e7 {
        term *= (a + n) * (b + n) / ((c + n) * (n + 1.0)) * z;
        sum += term;
        if term.abs() <= 1e-17 * sum.abs() {
            break;
        }
        n += 1.0;
    }
    sum
}

impl BgNbd {
    /// ln of a/(b+x−1) · ((α+T)/(α+t_x))^(r+x), the odds of having dropped out; None for x = 0.
    fn ln_dead_odds(&self, x: u32, tx: f64, t: f64) -> Option<f64> {
        (x > 0).then(|| {
            let x = f64::from(x);
            self.a.ln() - (self.b + x - 1.0).ln()
                + (self.r + x) * ((self.alpha + t).ln() - (self.alpha + tx).ln())
        })
    }

    /// P(alive | x, t_x, T): the probability the customer has not dropped out by T.
    pub fn p_alive(&self, x: u32, tx: f64, t: f64) -> f64 {
        match self.ln_dead_odds(x, tx, t) {
            Some(l) => 1.0 / (1.0 + l.exp()),
            None => 1.0,
        }
    }

    /// Expected purchases in (T, T + h] given x, t_x and T (FHL 2005, eq. 10). The ₂F₁ is taken
    /// after Euler's transformation, which turns its argument-near-one behaviour into a factor
    /// (1 − z)^(a − 1) and a series that converges fast for every x.
    pub fn expected_purchases(&self, x: u32, tx: f64, t: f64, h: f64) -> f64 {
        if h <= 0.0 {
            return 0.0;
        }
        let (r, al, a, b) = (self.r, self.alpha, self.a, self.b);
        let xf = f64::from(x);
        let z = h / (al + t + h);
        let f = hyp2f1(a + b - 1.0 - r, a - 1.0, a + b + xf - 1.0, z);
        let bracket = 1.0 - (1.0 - z).powf(a - 1.0) * f;
        let lead = (a + b + xf - 1.0) / (a - 1.0);
        lead * bracket * self.p_alive(x, tx, t)
    }
}

struct GgData {
    rows: Vec<(f64, f64)>,
}

impl Likelihood for GgData {
    fn weight(&self) -> f64 {
        self.rows.len() as f64
    }
    fn ll_grad(&self, p: &[f64]) -> (f64, Vec<f64>) {
        let (pp, q, v) = (p[0], p[1], p[2]);
        let (lg_q, dg_q, ln_v) = (ln_gamma(q), digamma(q), v.ln());
        let mut ll = 0.0;
        let mut g = [0.0; 3];
        for &(x, m) in &self.rows {
            let px = pp * x;
            let l_vm = (v + m * x).ln();
            let (ln_m, ln_x) = (m.ln(), x.ln());
            ll += ln_gamma(px + q) - ln_gamma(px) - lg_q + q * ln_v + (px - 1.0) * ln_m + px * ln_x
                - (px + q) * l_vm;
            let dg_pxq = digamma(px + q);
            g[0] += x * (dg_pxq - digamma(px) + ln_m + ln_x - l_vm);
            g[1] += dg_pxq - dg_q + ln_v - l_vm;
            g[2] += q / v - (px + q) / (v + m * x);
        }
        (ll, g.to_vec())
    }
}

/// Fits Gamma-Gamma on repeat customers: (x, mean transaction value over the x repeat
/// transactions), x ≥ 1 and the mean > 0 (the caller leaves others out and says how many).
pub fn fit_gamma_gamma(customers: &[(u32, f64)]) -> Result<Fitted<GammaGamma>, FitError> {
    if customers.len() < 2 {
        return Err(FitError::Degenerate(format!(
            "Gamma-Gamma needs at least two repeat customers with positive spend, got {}",
            customers.len()
        )));
    }
    if let Some((x, m)) = customers
        .iter()
        .find(|(x, m)| *x == 0 || !(m.is_finite() && *m > 0.0))
    {
        return Err(FitError::Degenerate(format!(
            "Gamma-Gamma takes repeat customers with positive mean spend; got frequency {x}, mean {m}"
        )));
    }
    let rows: Vec<(f64, f64)> = customers.iter().map(|&(x, m)| (f64::from(x), m)).collect();
    let mean = rows.iter().map(|r| r.1).sum::<f64>() / rows.len() as f64;
    let data = GgData { rows };
    let (p, ll, se, it) = maximise(&data, &[1.0, 2.0, mean.max(1e-3)], &["p", "q", "v"])?;
    Ok(Fitted {
        params: GammaGamma {
            p: p[0],
            q: p[1],
            v: p[2],
        },
        log_likelihood: ll,
        std_errors: se,
        customers: customers.len() as u64,
        iterations: it,
    })
}

impl GammaGamma {
    /// E(M | x, m̄): the customer's expected transaction value, a weighted mean of the population
    /// mean p·γ/(q − 1) and the customer's own mean. For x = 0 the population mean (None when
    /// q ≤ 1, where it does not exist).
    pub fn expected_order_value(&self, x: u32, mean: f64) -> Option<f64> {
        let xf = f64::from(x);
        let den = self.p * xf + self.q - 1.0;
        if x == 0 {
            return (self.q > 1.0).then(|| self.p * self.v / (self.q - 1.0));
        }
        (den > 0.0).then(|| self.p * (self.v + xf * mean) / den)
    }
}

/// Discounted expected purchases over `horizon` whole time units: the expected purchases of each
/// unit, discounted by `discount` per unit (at the unit's end). Lifetime value is this times the
/// expected order value.
pub fn discounted_purchases(model: &BgNbd, c: Rft, horizon: u32, discount: f64) -> f64 {
    let mut prev = 0.0;
    let mut total = 0.0;
    let mut factor = 1.0;
    for i in 1..=horizon {
        let cum = model.expected_purchases(c.frequency, c.recency, c.t, f64::from(i));
        factor /= 1.0 + discount;
        total += (cum - prev) * factor;
        prev = cum;
    }
    total
}

/// Simulates `n` customers from a BG/NBD model, seeded and deterministic whatever the number of
/// threads (each customer has its own stream). Customers are acquired on a uniformly random day
/// of a calibration period of `days` days; purchases happen at rate λ ~ Gamma(r, α) per unit of
/// `unit_days` days, and after each repeat purchase the customer drops out with probability
/// p ~ Beta(a, b). Purchases on one day count once (daily granularity), as in the real summaries.
pub fn simulate(m: &BgNbd, n: usize, days: u32, unit_days: f64, seed: u64) -> Vec<Rft> {
    use rand::{Rng, SeedableRng};
    use rand_distr::{Beta, Distribution, Exp, Gamma};
    use rayon::prelude::*;
    let (Ok(lambda), Ok(drop)) = (Gamma::new(m.r, 1.0 / m.alpha), Beta::new(m.a, m.b)) else {
        return Vec::new();
    };
    (0..n)
        .into_par_iter()
        .map(|i| {
            let mut rng = rand_chacha::ChaCha8Rng::seed_from_u64(
                seed ^ (i as u64).wrapping_mul(0x9E37_79B9_7F4A_7C15),
            );
            let first = rng.random_range(0..days);
            let t_days = days - 1 - first;
            let rate = lambda.sample(&mut rng) / unit_days;
            let p = drop.sample(&mut rng);
            let (mut x, mut last_day, mut t) = (0u32, 0u32, 0.0);
            if let Ok(gap) = Exp::new(rate.max(1e-300)) {
                loop {
                    t += gap.sample(&mut rng);
                    if t >= f64::from(t_days) + 1.0 {
                        break;
                    }
                    let d = t.floor() as u32;
                    if d > last_day {
                        x += 1;
                        last_day = d;
                        if rng.random::<f64>() < p {
                            break;
                        }
                    }
                }
            }
            Rft::new(
                x,
                f64::from(last_day) / unit_days,
                f64::from(t_days) / unit_days,
            )
        })
        .collect()
}

/// Simulates each customer's mean spend per purchase day over their x + 1 purchase days from a
/// Gamma-Gamma model (seeded, per-customer streams like [`simulate`]).
pub fn simulate_spend(g: &GammaGamma, customers: &[Rft], seed: u64) -> Vec<f64> {
    use rand::SeedableRng;
    use rand_distr::{Distribution, Gamma};
    use rayon::prelude::*;
    let Ok(nu) = Gamma::new(g.q, 1.0 / g.v) else {
        return Vec::new();
    };
    customers
        .par_iter()
        .enumerate()
        .map(|(i, c)| {
            let mut rng = rand_chacha::ChaCha8Rng::seed_from_u64(
                seed ^ (i as u64).wrapping_mul(0xD1B5_4A32_D192_ED03),
            );
            let rate = nu.sample(&mut rng);
            let n = c.frequency + 1;
            Gamma::new(g.p * f64::from(n), 1.0 / rate)
                .map_or(0.0, |z| z.sample(&mut rng) / f64::from(n))
        })
        .collect()
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used, clippy::expect_used, reason = "tests")]
    use super::*;

    #[test]
    fn gradient_matches_finite_differences() {
        let base = [
            Rft::new(0, 0.0, 30.0),
            Rft::new(2, 20.0, 30.0),
            Rft::new(5, 28.0, 31.0),
            Rft::new(1, 3.0, 35.0),
        ];
        let d = BgData::new(&base);
        let p = [0.3, 4.0, 0.8, 2.5];
        let (_, g) = d.ll_grad(&p);
        for i in 0..4 {
            let h = 1e-6;
            let mut u = p;
            let mut l = p;
            u[i] += h;
            l[i] -= h;
            let num = (d.ll_grad(&u).0 - d.ll_grad(&l).0) / (2.0 * h);
            assert!(
                (num - g[i]).abs() < 1e-5 * (1.0 + num.abs()),
                "{i}: {num} vs {}",
                g[i]
            );
        }
        let gg = GgData {
            rows: vec![(1.0, 20.0), (3.0, 35.5), (7.0, 12.0)],
        };
        let p = [6.0, 3.5, 15.0];
        let (_, g) = gg.ll_grad(&p);
        for i in 0..3 {
            let h = 1e-6;
            let mut u = p;
            let mut l = p;
            u[i] += h;
            l[i] -= h;
            let num = (gg.ll_grad(&u).0 - gg.ll_grad(&l).0) / (2.0 * h);
            assert!(
                (num - g[i]).abs() < 1e-5 * (1.0 + num.abs()),
                "{i}: {num} vs {}",
                g[i]
            );
        }
    }

    /// The closed form against a direct sum of the untransformed ₂F₁ (z small enough to
    /// converge fast without Euler's transformation).
    #[test]
    fn expectation_matches_untransformed_series() {
        let m = BgNbd {
            r: 0.243,
            alpha: 4.414,
            a: 0.793,
            b: 2.426,
        };
        for &(x, tx, t, h) in &[
            (0u32, 0.0, 38.0, 10.0),
            (3, 20.0, 30.0, 5.0),
            (12, 35.0, 36.0, 2.0),
        ] {
            let xf = f64::from(x);
            let z = h / (m.alpha + t + h);
            let f = hyp2f1(m.r + xf, m.b + xf, m.a + m.b + xf - 1.0, z);
            let direct = (m.a + m.b + xf - 1.0) / (m.a - 1.0)
                * (1.0 - ((m.alpha + t) / (m.alpha + t + h)).powf(m.r + xf) * f)
                * m.p_alive(x, tx, t);
            let ours = m.expected_purchases(x, tx, t, h);
            assert!(
                (direct - ours).abs() < 1e-10 * direct.abs().max(1.0),
                "{direct} vs {ours}"
            );
        }
    }

    /// A second method: customers simulated from known parameters, then fitted, give them back
    /// (to the discretisation of purchases into days).
    #[test]
    fn fit_recovers_simulated_parameters() {
        let truth = BgNbd {
            r: 0.25,
            alpha: 4.0,
            a: 0.8,
            b: 2.5,
        };
        let base = simulate(&truth, 200_000, 364, 7.0, 9);
        let f = fit_bgnbd(&base).unwrap().params;
        for (got, want) in [
            (f.r, truth.r),
            (f.alpha, truth.alpha),
            (f.a, truth.a),
            (f.b, truth.b),
        ] {
            assert!((got / want - 1.0).abs() < 0.1, "{f:?}");
        }
        assert_eq!(
            simulate(&truth, 1000, 364, 7.0, 9),
            simulate(&truth, 1000, 364, 7.0, 9)
        );
    }

    #[test]
    fn all_one_time_buyers_are_degenerate() {
        let base = [Rft::new(0, 0.0, 30.0), Rft::new(0, 0.0, 20.0)];
        assert!(matches!(fit_bgnbd(&base), Err(FitError::Degenerate(_))));
        assert!(matches!(
            fit_bgnbd(&base[..1]),
            Err(FitError::Degenerate(_))
        ));
        assert!(matches!(
            fit_gamma_gamma(&[(1, 10.0)]),
            Err(FitError::Degenerate(_))
        ));
    }
}
