//! A/B test statistics: two-proportion z, Welch t, ratio metrics by the delta method, the
//! sample-ratio-mismatch chi-square, and a Bayesian chance to beat control under a normal
//! approximation with a flat prior. Definitions: docs/metrics.md, "Experiments".
//!
//! ```
//! use shoplens_models::abtest::{two_proportion, Config};
//! let r = two_proportion((100, 1000), (130, 1000), &Config::default());
//! assert!(r.p_value < 0.05 && r.ci_low > 0.0);
//! ```

use statrs::distribution::{ChiSquared, ContinuousCDF, Normal, StudentsT};

/// Analysis settings.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct Config {
    /// Two-sided confidence level of the intervals (default 0.95).
    pub confidence: f64,
    /// Always-valid inference for those who look at results while the experiment runs: `Some(τ)`
    /// replaces p-values and intervals by an asymptotic confidence sequence (Waudby-Smith et al.,
    /// the normal-mixture mSPRT) tuned to be tightest near τ users in total; see [`always_valid`].
    pub sequential: Option<f64>,
}

/// GrowthBook's default tuning of the confidence sequence (users in total).
pub const SEQUENTIAL_TUNING: f64 = 5000.0;

impl Default for Config {
    fn default() -> Config {
        Config {
            confidence: 0.95,
            sequential: None,
        }
    }
}

/// Count, mean and sample variance (n − 1 denominator) of one arm's per-user values.
#[derive(Debug, Clone, Copy, PartialEq, Default)]
pub struct Summary {
    /// Users.
    pub n: u64,
    /// Mean per user.
    pub mean: f64,
    /// Sample variance (n − 1 denominator).
    pub var: f64,
}

impl Summary {
    /// Summarises values with a two-pass (compensated) variance.
    pub fn of(values: &[f64]) -> Summary {
        let n = values.len();
        if n == 0 {
            return Summary::default();
        }
        let mean = values.iter().sum::<f64>() / n as f64;
        let (ss, c) = values.iter().fold((0.0, 0.0), |(ss, c), x| {
            let d = x - mean;
            (ss + d * d, c + d)
        });
        let var = if n > 1 {
            (ss - c * c / n as f64) / (n - 1) as f64
        } else {
            0.0
        };
        Summary {
            n: n as u64,
            mean,
            var,
        }
    }

    /// Variance of the mean.
    fn var_mean(&self) -> f64 {
        self.var / self.n as f64
    }
}

/// One comparison of a variant with control.
#[derive(Debug, Clone, Copy, PartialEq, serde::Serialize, schemars::JsonSchema)]
pub struct Comparison {
    /// Control's mean (rate for proportions).
    pub control_mean: f64,
    /// Variant's mean.
    pub variant_mean: f64,
    /// z or t.
    pub statistic: f64,
    /// Degrees of freedom of a t statistic (None for z).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub df: Option<f64>,
    /// Two-sided p-value.
    pub p_value: f64,
    /// Interval for variant − control.
    pub ci_low: f64,
    /// Upper end.
    pub ci_high: f64,
    /// (variant − control) / control.
    pub relative_lift: f64,
    /// Interval for the relative lift (delta method).
    pub relative_ci_low: f64,
    /// Upper end.
    pub relative_ci_high: f64,
    /// P(variant > control) under a normal approximation of the difference with a flat prior.
    pub chance_to_beat_control: f64,
    /// Expected loss of choosing the variant: E[max(0, control − variant)].
    pub expected_loss: f64,
    /// Standard error of variant − control (unpooled).
    pub std_error: f64,
    /// Standard error of the relative lift (delta method).
    pub relative_std_error: f64,
    /// Whether p-value and intervals are always valid (sequential testing).
    pub always_valid: bool,
}

/// Turns a fixed-horizon comparison of `n` users in total into an always-valid one, so it may be
/// looked at any number of times while the experiment runs: the asymptotic confidence sequence
/// of Waudby-Smith et al. (2023, eq. 9) and its e-value (eq. 155), with ρ from eq. 161 for a
/// sequence tightest near `tuning` users. With V = n·SE² and ρ² = (−2 ln α + ln(1 − 2 ln α))/τ:
/// half-width = √V·√(2(nρ² + 1)/(n²ρ²)·ln(√(nρ² + 1)/α)), and p = min(1, 1/E) with
/// E = exp(ρ²·n·d²/SE² / (2(nρ² + 1))) / √(nρ² + 1), d the difference. The relative interval uses
/// the relative standard error the same way. The statistic and the Bayesian numbers are kept.
pub fn always_valid(c: &mut Comparison, n: u64, confidence: f64, tuning: f64) {
    let alpha = 1.0 - confidence;
    let nf = n as f64;
    let rho2 = (-2.0 * alpha.ln() + (1.0 - 2.0 * alpha.ln()).ln()) / tuning;
    let a = nf * rho2 + 1.0;
    let half = |se: f64| -> f64 {
        let v = se * se * nf;
        v.sqrt() * (2.0 * a / (nf * nf * rho2) * (a.sqrt() / alpha).ln()).sqrt()
    };
    let diff = c.variant_mean - c.control_mean;
    let (h, hr) = (half(c.std_error), half(c.relative_std_error));
    c.ci_low = diff - h;
    c.ci_high = diff + h;
    c.relative_ci_low = c.relative_lift - hr;
    c.relative_ci_high = c.relative_lift + hr;
    let st2 = nf * diff * diff / (c.std_error * c.std_error);
    let log_e = rho2 * st2 / (2.0 * a) - 0.5 * a.ln();
    c.p_value = (-log_e).exp().min(1.0);
    c.always_valid = true;
}

fn std_normal() -> Normal {
    // Mean 0 and standard deviation 1 are always valid parameters.
    Normal::standard()
}

/// Two-sided p-value of a standard normal statistic.
fn p_normal(z: f64) -> f64 {
    2.0 * std_normal().sf(z.abs())
}

/// The normal quantile of a two-sided interval.
fn z_crit(confidence: f64) -> f64 {
    std_normal().inverse_cdf(0.5 + confidence / 2.0)
}

/// The shared tail of every comparison: interval from a standard error and critical value,
/// relative lift by the delta method, Bayesian chance and loss.
#[allow(clippy::too_many_arguments)]
fn finish(
    c_mean: f64,
    v_mean: f64,
    c_var_mean: f64,
    v_var_mean: f64,
    statistic: f64,
    df: Option<f64>,
    p_value: f64,
    crit: f64,
    cfg: &Config,
) -> Comparison {
    let diff = v_mean - c_mean;
    let se = (c_var_mean + v_var_mean).sqrt();
    let rel = diff / c_mean;
    // Var(v/c) ≈ var_v / c² + v² var_c / c⁴.
    let rel_se =
        (v_var_mean / (c_mean * c_mean) + v_mean * v_mean * c_var_mean / c_mean.powi(4)).sqrt();
    let zc = z_crit(cfg.confidence);
    let n = std_normal();
    let (chance, loss) = if se > 0.0 {
        let u = diff / se;
        (n.cdf(u), se * pdf(u) - diff * n.cdf(-u))
    } else {
        (if diff > 0.0 { 1.0 } else { 0.0 }, (-diff).max(0.0))
    };
    Comparison {
        control_mean: c_mean,
        variant_mean: v_mean,
        statistic,
        df,
        p_value,
        ci_low: diff - crit * se,
        ci_high: diff + crit * se,
        relative_lift: rel,
        relative_ci_low: rel - zc * rel_se,
        relative_ci_high: rel + zc * rel_se,
        chance_to_beat_control: chance,
        expected_loss: loss,
        std_error: se,
        relative_std_error: rel_se,
        always_valid: false,
    }
}

fn pdf(u: f64) -> f64 {
    (-0.5 * u * u).exp() / (2.0 * std::f64::consts::PI).sqrt()
}

/// Two-proportion z test of (successes, users) in control and variant: the statistic uses the
/// pooled standard error, the interval the unpooled one (statsmodels' `proportions_ztest` and the
/// Wald interval).
pub fn two_proportion(control: (u64, u64), variant: (u64, u64), cfg: &Config) -> Comparison {
    let (c_x, c_n) = (control.0 as f64, control.1 as f64);
    let (v_x, v_n) = (variant.0 as f64, variant.1 as f64);
    let (p1, p2) = (c_x / c_n, v_x / v_n);
    let pool = (c_x + v_x) / (c_n + v_n);
    let se_pool = (pool * (1.0 - pool) * (1.0 / c_n + 1.0 / v_n)).sqrt();
    let z = (p2 - p1) / se_pool;
    finish(
        p1,
        p2,
        p1 * (1.0 - p1) / c_n,
        p2 * (1.0 - p2) / v_n,
        z,
        None,
        p_normal(z),
        z_crit(cfg.confidence),
        cfg,
    )
}

/// Welch's unequal-variance t test of two means (scipy's `ttest_ind(equal_var=False)`), with the
/// Welch–Satterthwaite degrees of freedom for the p-value and the interval.
pub fn welch(control: &Summary, variant: &Summary, cfg: &Config) -> Comparison {
    let (a, b) = (control.var_mean(), variant.var_mean());
    let se = (a + b).sqrt();
    let t = (variant.mean - control.mean) / se;
    let df =
        (a + b).powi(2) / (a * a / (control.n as f64 - 1.0) + b * b / (variant.n as f64 - 1.0));
    let (p, crit) = match StudentsT::new(0.0, 1.0, df) {
        Ok(d) => (
            2.0 * d.sf(t.abs()),
            t_quantile(&d, 0.5 + cfg.confidence / 2.0),
        ),
        Err(_) => (f64::NAN, f64::NAN),
    };
    finish(control.mean, variant.mean, a, b, t, Some(df), p, crit, cfg)
}

/// The t quantile, polished by Newton steps on the CDF (statrs's inverse is an approximation
/// good to about 1e-7; scipy agreement wants 1e-9).
fn t_quantile(d: &StudentsT, p: f64) -> f64 {
    use statrs::distribution::Continuous;
    let mut x = d.inverse_cdf(p);
    for _ in 0..4 {
        let f = d.pdf(x);
        if f <= 0.0 {
            break;
        }
        let step = (d.cdf(x) - p) / f;
        x -= step;
        if step.abs() < 1e-15 * x.abs().max(1.0) {
            break;
        }
    }
    x
}

/// Per-user numerator and denominator sums of a ratio metric (revenue / orders).
#[derive(Debug, Clone, Copy, PartialEq, Default)]
pub struct RatioSummary {
    /// Users.
    pub n: u64,
    /// Mean numerator.
    pub num: f64,
    /// Mean denominator.
    pub den: f64,
    /// Sample variance of the numerator.
    pub var_num: f64,
    /// Sample variance of the denominator.
    pub var_den: f64,
    /// Sample covariance.
    pub cov: f64,
}

impl RatioSummary {
    /// From per-user (numerator, denominator) pairs.
    pub fn of(pairs: &[(f64, f64)]) -> RatioSummary {
        let n = pairs.len();
        if n < 2 {
            return RatioSummary::default();
        }
        let nf = n as f64;
        let num = pairs.iter().map(|p| p.0).sum::<f64>() / nf;
        let den = pairs.iter().map(|p| p.1).sum::<f64>() / nf;
        let (mut vn, mut vd, mut c) = (0.0, 0.0, 0.0);
        for (x, y) in pairs {
            vn += (x - num) * (x - num);
            vd += (y - den) * (y - den);
            c += (x - num) * (y - den);
        }
        RatioSummary {
            n: n as u64,
            num,
            den,
            var_num: vn / (nf - 1.0),
            var_den: vd / (nf - 1.0),
            cov: c / (nf - 1.0),
        }
    }

    fn ratio(&self) -> f64 {
        self.num / self.den
    }

    /// Delta-method variance of the ratio of means.
    fn var_ratio(&self) -> f64 {
        let r = self.ratio();
        (self.var_num - 2.0 * r * self.cov + r * r * self.var_den)
            / (self.den * self.den * self.n as f64)
    }
}

/// A ratio metric compared by the delta method and a z test.
pub fn ratio(control: &RatioSummary, variant: &RatioSummary, cfg: &Config) -> Comparison {
    let (a, b) = (control.var_ratio(), variant.var_ratio());
    let z = (variant.ratio() - control.ratio()) / (a + b).sqrt();
    finish(
        control.ratio(),
        variant.ratio(),
        a,
        b,
        z,
        None,
        p_normal(z),
        z_crit(cfg.confidence),
        cfg,
    )
}

/// Sample-ratio-mismatch test: chi-square goodness of fit of the users per arm to the planned
/// weights (normalised). Returns (chi², p-value).
pub fn srm(counts: &[u64], weights: &[f64]) -> (f64, f64) {
    let total: f64 = counts.iter().map(|&c| c as f64).sum();
    let wsum: f64 = weights.iter().sum();
    if counts.len() < 2 || counts.len() != weights.len() || total == 0.0 || wsum <= 0.0 {
        return (0.0, 1.0);
    }
    let chi2: f64 = counts
        .iter()
        .zip(weights)
        .map(|(&o, w)| {
            let e = total * w / wsum;
            (o as f64 - e).powi(2) / e
        })
        .sum();
    let p = ChiSquared::new((counts.len() - 1) as f64).map_or(f64::NAN, |d| d.sf(chi2));
    (chi2, p)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn srm_of_a_fair_split_is_not_flagged() {
        let (chi2, p) = srm(&[5000, 5000], &[0.5, 0.5]);
        assert_eq!(chi2, 0.0);
        assert!((p - 1.0).abs() < 1e-12);
        let (_, p) = srm(&[5200, 4800], &[1.0, 1.0]);
        assert!(p < 0.001);
    }

    #[test]
    fn corrections_equal_statsmodels_multipletests() {
        // The Hillstrom p-values; expected values from statsmodels.stats.multitest.multipletests.
        let p = [
            5.685165482802317e-112,
            1.5232235005955427e-13,
            1.163814968225482e-07,
            0.0975553100335418,
            3.1824031593349214e-44,
            0.00015710512910668448,
            0.0011293971023632495,
            0.3332174475339271,
        ];
        let holm = [
            4.5481323862418535e-111,
            9.139341003573257e-13,
            5.819074841127411e-07,
            0.1951106200670836,
            2.227682211534445e-43,
            0.0006284205164267379,
            0.003388191307089748,
            0.3332174475339271,
        ];
        let bh = [
            4.5481323862418535e-111,
            4.0619293349214473e-13,
            2.327629936450964e-07,
            0.11149178289547634,
            1.2729612637339686e-43,
            0.0002513682065706952,
            0.0015058628031509992,
            0.3332174475339271,
        ];
        for (got, want) in [
            (adjust_p(&p, Correction::Holm), holm),
            (adjust_p(&p, Correction::BenjaminiHochberg), bh),
        ] {
            for (g, w) in got.iter().zip(want) {
                assert!((g - w).abs() <= 1e-12 * w, "{g} vs {w}");
            }
        }
    }

    #[test]
    fn summary_variance() {
        let s = Summary::of(&[1.0, 2.0, 3.0, 4.0]);
        assert_eq!((s.n, s.mean), (4, 2.5));
        assert!((s.var - 5.0 / 3.0).abs() < 1e-15);
    }
}

/// How a metric is compared.
#[derive(Debug, Clone, PartialEq, Eq, serde::Serialize, schemars::JsonSchema)]
#[serde(rename_all = "snake_case")]
pub enum Kind {
    /// 0/1 per user: two-proportion z.
    Proportion,
    /// A number per user: Welch t.
    Mean,
    /// Σ numerator / Σ denominator: delta method, z.
    Ratio,
}

/// One metric's per-user values, in the same order as the variants.
#[derive(Debug, Clone, PartialEq)]
pub enum MetricValues {
    /// Values of a proportion or mean metric.
    Single(Kind, Vec<f64>),
    /// Numerator and denominator of a ratio metric.
    Ratio(Vec<f64>, Vec<f64>),
    /// A proportion or mean adjusted by a pre-period covariate (CUPED): values, covariate.
    Adjusted(Vec<f64>, Vec<f64>),
}

/// CUPED adjustment over the users of one comparison: θ = Cov(y, x)/Var(x) (pooled, sample
/// moments), y′ = y − θ(x − x̄). Returns the adjusted values (same order) and θ.
pub fn cuped(y: &[f64], x: &[f64]) -> (Vec<f64>, f64) {
    let n = y.len() as f64;
    if y.len() < 2 {
        return (y.to_vec(), 0.0);
    }
    let (my, mx) = (y.iter().sum::<f64>() / n, x.iter().sum::<f64>() / n);
    let (mut c, mut v) = (0.0, 0.0);
    for (a, b) in y.iter().zip(x) {
        c += (a - my) * (b - mx);
        v += (b - mx) * (b - mx);
    }
    let theta = if v > 0.0 { c / v } else { 0.0 };
    (
        y.iter().zip(x).map(|(a, b)| a - theta * (b - mx)).collect(),
        theta,
    )
}

/// The kind a column of values suggests: proportion when every value is 0 or 1, else mean.
pub fn infer_kind(values: &[f64]) -> Kind {
    if values.iter().all(|v| *v == 0.0 || *v == 1.0) {
        Kind::Proportion
    } else {
        Kind::Mean
    }
}

/// One variant × metric result.
#[derive(Debug, Clone, PartialEq, serde::Serialize, schemars::JsonSchema)]
pub struct MetricResult {
    /// The variant compared with control.
    pub variant: String,
    /// The metric.
    pub metric: String,
    /// How it was compared.
    pub kind: Kind,
    /// Control users.
    pub n_control: u64,
    /// Variant users.
    pub n_variant: u64,
    /// The statistics (flattened into the result's fields).
    #[serde(flatten)]
    pub stats: Comparison,
    /// CUPED's θ when the metric was adjusted by a pre-period covariate.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub cuped_theta: Option<f64>,
    /// p-value adjusted for multiple comparisons (with a correction).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub p_value_adjusted: Option<f64>,
}

/// Correction for testing several variants × metrics at once.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, serde::Serialize, schemars::JsonSchema)]
#[serde(rename_all = "snake_case")]
pub enum Correction {
    /// None.
    #[default]
    None,
    /// Holm's step-down (family-wise error).
    Holm,
    /// Benjamini–Hochberg (false discovery rate).
    BenjaminiHochberg,
}

/// Adjusted p-values (same order as `p`), as statsmodels' `multipletests` gives them.
pub fn adjust_p(p: &[f64], c: Correction) -> Vec<f64> {
    let m = p.len();
    let mut order: Vec<usize> = (0..m).collect();
    order.sort_by(|a, b| p[*a].total_cmp(&p[*b]));
    let mut out = vec![0.0; m];
    match c {
        Correction::None => return p.to_vec(),
        Correction::Holm => {
            let mut run = 0.0f64;
            for (j, &i) in order.iter().enumerate() {
                run = run.max(((m - j) as f64 * p[i]).min(1.0));
                out[i] = run;
            }
        }
        Correction::BenjaminiHochberg => {
            let mut run = 1.0f64;
            for (j, &i) in order.iter().enumerate().rev() {
                run = run.min((m as f64 / (j + 1) as f64 * p[i]).min(1.0));
                out[i] = run;
            }
        }
    }
    out
}

/// A plain-language decision for one variant, on the first metric (the primary), with the other
/// metrics as guardrails.
#[derive(Debug, Clone, PartialEq, serde::Serialize, schemars::JsonSchema)]
pub struct Verdict {
    /// The variant.
    pub variant: String,
    /// `ship`, `don't ship`, `keep running` or `fix assignment`.
    pub decision: &'static str,
    /// Why, in one sentence.
    pub reason: String,
    /// What to keep in mind.
    pub caveats: Vec<String>,
}

/// Decides per variant: an SRM means fix assignment; a significant gain on the primary metric with
/// no significantly worse guardrail means ship; a significant loss (or a worse guardrail) means
/// don't ship; otherwise keep running. Significance at 1 − confidence, on adjusted p-values when
/// a correction was applied.
pub fn verdicts(a: &Analysis) -> Vec<Verdict> {
    let alpha = 1.0 - a.confidence;
    let mut variants: Vec<&str> = a.results.iter().map(|r| r.variant.as_str()).collect();
    variants.dedup();
    let Some(primary) = a.results.first().map(|r| r.metric.clone()) else {
        return Vec::new();
    };
    variants
        .into_iter()
        .map(|v| {
            let rs: Vec<&MetricResult> = a.results.iter().filter(|r| r.variant == v).collect();
            let p = |r: &MetricResult| r.p_value_adjusted.unwrap_or(r.stats.p_value);
            let mut caveats = Vec::new();
            if a.results.len() > 1 && a.results.iter().all(|r| r.p_value_adjusted.is_none()) {
                caveats.push(format!(
                    "{} comparisons without a correction: some may be significant by chance (use --correction holm)",
                    a.results.len()
                ));
            }
            // The lift in the good direction: positive is better.
            let gain = |r: &MetricResult| -> f64 {
                if a.lower_is_better.contains(&r.metric) {
                    -r.stats.relative_lift
                } else {
                    r.stats.relative_lift
                }
            };
            let worse: Vec<String> = rs
                .iter()
                .filter(|r| r.metric != primary && p(r) < alpha && gain(r) < 0.0)
                .map(|r| r.metric.clone())
                .collect();
            let (decision, reason) = if a.srm.flagged {
                (
                    "fix assignment",
                    format!(
                        "the split of users differs from the plan (SRM p = {:.2e}); no result can be trusted",
                        a.srm.p_value
                    ),
                )
            } else if let Some(r) = rs.iter().find(|r| r.metric == primary) {
                let lift = format!("{:+.2}%", r.stats.relative_lift * 100.0);
                if p(r) < alpha && gain(r) > 0.0 && worse.is_empty() {
                    ("ship", format!("{primary} {lift}, significant (p = {:.2e})", p(r)))
                } else if p(r) < alpha && gain(r) < 0.0 {
                    ("don't ship", format!("{primary} {lift}, significantly worse (p = {:.2e})", p(r)))
                } else if !worse.is_empty() {
                    (
                        "don't ship",
                        format!("{primary} {lift}, but {} significantly worse", worse.join(", ")),
                    )
                } else {
                    (
                        "keep running",
                        format!(
                            "{primary} {lift} is not significant (p = {:.2e}); the interval still spans {:+.2}% to {:+.2}%",
                            p(r),
                            r.stats.relative_ci_low * 100.0,
                            r.stats.relative_ci_high * 100.0
                        ),
                    )
                }
            } else {
                ("keep running", "no result for the primary metric".to_string())
            };
            if decision == "ship" && rs.iter().any(|r| r.n_variant < 1000 || r.n_control < 1000) {
                caveats.push("fewer than 1,000 users in an arm: effects this early are often overstated".into());
            }
            caveats.extend(a.caveats.iter().cloned());
            Verdict {
                variant: v.to_string(),
                decision,
                reason,
                caveats,
            }
        })
        .collect()
}

/// Applies a correction to every result's p-value and recomputes the verdicts.
pub fn correct(a: &mut Analysis, c: Correction) {
    if c != Correction::None {
        let p: Vec<f64> = a.results.iter().map(|r| r.stats.p_value).collect();
        for (r, q) in a.results.iter_mut().zip(adjust_p(&p, c)) {
            r.p_value_adjusted = Some(q);
        }
        a.correction = c;
    }
    a.verdicts = verdicts(a);
}

/// The sample-ratio-mismatch check.
#[derive(Debug, Clone, PartialEq, serde::Serialize, schemars::JsonSchema)]
pub struct Srm {
    /// Chi-square statistic.
    pub chi2: f64,
    /// Its p-value.
    pub p_value: f64,
    /// p < 0.001.
    pub flagged: bool,
    /// Variants (sorted) and their users.
    pub counts: Vec<(String, u64)>,
    /// Planned weights, in the same order.
    pub weights: Vec<f64>,
}

/// A whole analysis.
#[derive(Debug, Clone, PartialEq, serde::Serialize, schemars::JsonSchema)]
pub struct Analysis {
    /// Sample-ratio mismatch.
    pub srm: Srm,
    /// Every variant × metric.
    pub results: Vec<MetricResult>,
    /// Interval confidence.
    pub confidence: f64,
    /// Multiple-comparison correction applied.
    pub correction: Correction,
    /// One decision per variant.
    pub verdicts: Vec<Verdict>,
    /// Metrics where a decrease is the good direction (refunds, returns), for the verdicts.
    #[serde(skip_serializing_if = "Vec::is_empty")]
    pub lower_is_better: Vec<String>,
    /// Whether p-values and intervals are always valid (sequential testing).
    pub sequential: bool,
    /// Caveats from outside the numbers (overlapping experiments, a test still running) that
    /// every verdict carries.
    #[serde(skip)]
    pub caveats: Vec<String>,
}

/// Analyses per-user rows: `variants[i]` is row i's variant; each metric holds one value per row.
/// `weights` (planned split, sorted-variant order; empty = equal) feed the SRM test.
pub fn analyze(
    variants: &[String],
    control: &str,
    metrics: &[(String, MetricValues)],
    weights: &[f64],
    cfg: &Config,
) -> Result<Analysis, crate::Error> {
    let mut names: Vec<&str> = variants.iter().map(String::as_str).collect();
    names.sort_unstable();
    names.dedup();
    if !names.contains(&control) {
        return Err(crate::Error::UnknownControl {
            control: control.into(),
            variants: names.iter().map(|n| (*n).to_string()).collect(),
        });
    }
    let counts: Vec<(String, u64)> = names
        .iter()
        .map(|n| {
            (
                (*n).to_string(),
                variants.iter().filter(|v| v.as_str() == *n).count() as u64,
            )
        })
        .collect();
    let w: Vec<f64> = if weights.is_empty() {
        vec![1.0; names.len()]
    } else if weights.len() == names.len() {
        weights.to_vec()
    } else {
        return Err(crate::Error::WeightCount {
            weights: weights.len(),
            variants: names.iter().map(|n| (*n).to_string()).collect(),
        });
    };
    let (chi2, p) = srm(&counts.iter().map(|c| c.1).collect::<Vec<_>>(), &w);
    let rows_of = |name: &str| -> Vec<usize> {
        (0..variants.len())
            .filter(|&i| variants[i] == name)
            .collect()
    };
    let control_rows = rows_of(control);
    let mut results = Vec::new();
    for v in names.iter().filter(|n| **n != control) {
        let rows = rows_of(v);
        for (metric, values) in metrics {
            let pick = |x: &[f64], r: &[usize]| -> Vec<f64> { r.iter().map(|&i| x[i]).collect() };
            let mut theta = None;
            let (kind, c) = match values {
                MetricValues::Single(Kind::Proportion, x) => {
                    let succ = |r: &[usize]| r.iter().filter(|&&i| x[i] != 0.0).count() as u64;
                    (
                        Kind::Proportion,
                        two_proportion(
                            (succ(&control_rows), control_rows.len() as u64),
                            (succ(&rows), rows.len() as u64),
                            cfg,
                        ),
                    )
                }
                MetricValues::Single(_, x) => (
                    Kind::Mean,
                    welch(
                        &Summary::of(&pick(x, &control_rows)),
                        &Summary::of(&pick(x, &rows)),
                        cfg,
                    ),
                ),
                MetricValues::Adjusted(y, x) => {
                    let both: Vec<usize> = control_rows.iter().chain(&rows).copied().collect();
                    let (adj, t) = cuped(&pick(y, &both), &pick(x, &both));
                    theta = Some(t);
                    let k = control_rows.len();
                    (
                        Kind::Mean,
                        welch(&Summary::of(&adj[..k]), &Summary::of(&adj[k..]), cfg),
                    )
                }
                MetricValues::Ratio(num, den) => {
                    let pairs = |r: &[usize]| -> Vec<(f64, f64)> {
                        r.iter().map(|&i| (num[i], den[i])).collect()
                    };
                    (
                        Kind::Ratio,
                        ratio(
                            &RatioSummary::of(&pairs(&control_rows)),
                            &RatioSummary::of(&pairs(&rows)),
                            cfg,
                        ),
                    )
                }
            };
            let mut c = c;
            if let Some(tuning) = cfg.sequential {
                always_valid(
                    &mut c,
                    (control_rows.len() + rows.len()) as u64,
                    cfg.confidence,
                    tuning,
                );
            }
            results.push(MetricResult {
                variant: (*v).to_string(),
                metric: metric.clone(),
                kind,
                n_control: control_rows.len() as u64,
                n_variant: rows.len() as u64,
                stats: c,
                cuped_theta: theta,
                p_value_adjusted: None,
            });
        }
    }
    let mut a = Analysis {
        srm: Srm {
            chi2,
            p_value: p,
            flagged: p < 0.001,
            counts,
            weights: w,
        },
        results,
        confidence: cfg.confidence,
        correction: Correction::None,
        verdicts: Vec::new(),
        lower_is_better: Vec::new(),
        sequential: cfg.sequential.is_some(),
        caveats: Vec::new(),
    };
    a.verdicts = verdicts(&a);
    Ok(a)
}

/// Users needed per arm to detect an absolute difference `delta` in a proportion from `baseline`
/// (two-sided, equal arms): n = (z₁₋α/₂·√(2p̄(1 − p̄)) + z₁₋β·√(p₁(1 − p₁) + p₂(1 − p₂)))² / δ²,
/// p̄ the mean of p₁ and p₂ (the normal approximation without continuity correction).
pub fn sample_size_proportion(baseline: f64, delta: f64, alpha: f64, power: f64) -> Option<f64> {
    let (p1, p2) = (baseline, baseline + delta);
    if !(0.0..1.0).contains(&p1) || !(0.0..=1.0).contains(&p2) || delta == 0.0 {
        return None;
    }
    let n = std_normal();
    let (za, zb) = (n.inverse_cdf(1.0 - alpha / 2.0), n.inverse_cdf(power));
    let pbar = (p1 + p2) / 2.0;
    let num =
        za * (2.0 * pbar * (1.0 - pbar)).sqrt() + zb * (p1 * (1.0 - p1) + p2 * (1.0 - p2)).sqrt();
    Some(num * num / (delta * delta))
}

/// Users needed per arm to detect a difference `delta` in a mean with standard deviation `sd`:
/// n = 2(z₁₋α/₂ + z₁₋β)²σ² / δ².
pub fn sample_size_mean(sd: f64, delta: f64, alpha: f64, power: f64) -> Option<f64> {
    if sd <= 0.0 || delta == 0.0 {
        return None;
    }
    let n = std_normal();
    let z = n.inverse_cdf(1.0 - alpha / 2.0) + n.inverse_cdf(power);
    Some(2.0 * z * z * sd * sd / (delta * delta))
}

#[cfg(test)]
mod power_tests {
    use super::*;

    #[test]
    fn sample_sizes_by_hand() {
        // p 0.10 → 0.12, α 0.05, power 0.8: z = 1.959964, 0.841621; p̄ = 0.11;
        // (1.959964·√(2·0.11·0.89) + 0.841621·√(0.09 + 0.1056))² / 0.0004 = 3840.8475 (Python's
        // statistics.NormalDist, computed apart).
        let n = sample_size_proportion(0.10, 0.02, 0.05, 0.8).unwrap();
        assert!((n - 3_840.847_482_436_272).abs() < 1e-6, "{n}");
        // σ 1, δ 0.1: 2·(2.801585)²/0.01 = 1569.7759.
        let n = sample_size_mean(1.0, 0.1, 0.05, 0.8).unwrap();
        assert!((n - 1_569.775_946_869_817).abs() < 1e-6, "{n}");
        assert!(sample_size_mean(1.0, 0.0, 0.05, 0.8).is_none());
    }
}

#[cfg(test)]
mod verdict_tests {
    use super::*;

    /// 2,000 users per arm: the primary converts 10% → 13% (significant); the guardrail `refund`
    /// rises 2% → 4% (significant).
    fn analysis() -> Analysis {
        let arm = |rate: f64, n: usize| -> Vec<f64> {
            (0..n)
                .map(|i| {
                    if (i as f64) < rate * n as f64 {
                        1.0
                    } else {
                        0.0
                    }
                })
                .collect()
        };
        let mut variants = vec!["control".to_string(); 2000];
        variants.extend(vec!["treatment".to_string(); 2000]);
        let cat = |a: Vec<f64>, b: Vec<f64>| -> Vec<f64> { a.into_iter().chain(b).collect() };
        let metrics = vec![
            (
                "conversion".to_string(),
                MetricValues::Single(Kind::Proportion, cat(arm(0.10, 2000), arm(0.13, 2000))),
            ),
            (
                "refund".to_string(),
                MetricValues::Single(Kind::Proportion, cat(arm(0.02, 2000), arm(0.04, 2000))),
            ),
        ];
        analyze(&variants, "control", &metrics, &[], &Config::default()).unwrap()
    }

    #[test]
    fn a_guardrail_that_is_lower_is_better_blocks_a_rise() {
        let mut a = analysis();
        // As a higher-is-better metric, refunds rising looks like a win: ship.
        assert_eq!(a.verdicts[0].decision, "ship");
        a.lower_is_better = vec!["refund".into()];
        a.caveats = vec!["overlaps another experiment".into()];
        a.verdicts = verdicts(&a);
        assert_eq!(a.verdicts[0].decision, "don't ship");
        assert!(
            a.verdicts[0].reason.contains("refund"),
            "{}",
            a.verdicts[0].reason
        );
        assert!(a.verdicts[0].caveats.iter().any(|c| c.contains("overlaps")));
    }

    #[test]
    fn always_valid_intervals_are_wider_and_p_values_larger() {
        let a = analysis();
        let r = &a.results[0];
        let mut c = r.stats;
        always_valid(&mut c, 4000, 0.95, SEQUENTIAL_TUNING);
        assert!(c.ci_low < r.stats.ci_low && c.ci_high > r.stats.ci_high);
        assert!(c.p_value > r.stats.p_value && c.always_valid);
    }
}
