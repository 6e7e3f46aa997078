//! Difference in differences on matched strata, with an interval from a seeded bootstrap over
//! units. Used where a campaign has no randomised holdout: each treated unit is compared with
//! the non-treated units of its stratum (the cell it was matched on), and the estimate is the
//! average effect on the treated. Definitions: docs/metrics.md, "Campaigns and promotions".
//!
//! ```
//! use shoplens_models::did::{did, Unit};
//! // Stratum 0: treated changes 5 and 7 against 1 and 3; stratum 1: 2 and 2 against 2 and 2.
//! let u = |stratum, treated, x| Unit { stratum, treated, changes: vec![x] };
//! let units = [
//!     u(0, true, 5.0), u(0, true, 7.0), u(0, false, 1.0), u(0, false, 3.0),
//!     u(1, true, 2.0), u(1, true, 2.0), u(1, false, 2.0), u(1, false, 2.0),
//! ];
//! let d = did(&units, 1, 200, 7, 0.95).unwrap();
//! assert_eq!(d.estimates[0].difference, 2.0); // (4 + 0) / 2
//! ```

use rand::{Rng, SeedableRng};
use rand_chacha::ChaCha8Rng;
use rustc_hash::FxHashMap;
use statrs::distribution::{ContinuousCDF, Normal};

/// One unit (a customer): its stratum, whether it was treated, and per metric its change
/// (outcome in the treatment window − outcome in the equally long window before).
#[derive(Debug, Clone, PartialEq)]
pub struct Unit {
    /// The cell it was matched on.
    pub stratum: u64,
    /// In the treated group.
    pub treated: bool,
    /// Per metric: after − before.
    pub changes: Vec<f64>,
}

/// One metric's estimate.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct Estimate {
    /// Mean change of the matched treated units.
    pub treated: f64,
    /// Mean change of their comparison: each stratum's comparison mean, weighted by the
    /// stratum's treated units.
    pub comparison: f64,
    /// treated − comparison: the average effect on the treated.
    pub difference: f64,
    /// Percentile interval of the difference over the bootstrap replicates.
    pub ci: [f64; 2],
    /// Two-sided p-value of no effect, normal with the bootstrap standard error.
    pub p_value: f64,
    /// Bootstrap standard error.
    pub se: f64,
}

/// The estimate for every metric, and how many units it rests on.
#[derive(Debug, Clone, PartialEq)]
pub struct Did {
    /// Per metric, in the order of [`Unit::changes`].
    pub estimates: Vec<Estimate>,
    /// Treated units in a stratum that has comparison units.
    pub matched_treated: usize,
    /// Treated units whose stratum has none (left out of the estimate).
    pub unmatched_treated: usize,
    /// Comparison units in strata with treated units.
    pub comparison_units: usize,
    /// Strata with both.
    pub strata: usize,
}

/// Fewest units of each side in a stratum for it to count: with one unit a side has no spread,
/// and a bootstrap over it would claim a certainty it does not have.
pub const MIN_PER_SIDE: usize = 2;

/// One stratum's units, by arm: indices into the unit list.
struct Stratum {
    treated: Vec<usize>,
    comparison: Vec<usize>,
}

/// Difference in differences on `metrics` metrics: per stratum with at least [`MIN_PER_SIDE`]
/// treated and comparison units, the treated mean change − the comparison mean change, averaged with the stratum's
/// share of the matched treated units. The interval resamples units with replacement within
/// each stratum and arm (`reps` replicates from `seed`), keeping every stratum's size. None
/// without a matched treated unit.
pub fn did(units: &[Unit], metrics: usize, reps: usize, seed: u64, confidence: f64) -> Option<Did> {
    let mut by: FxHashMap<u64, Stratum> = FxHashMap::default();
    for (i, u) in units.iter().enumerate() {
        let s = by.entry(u.stratum).or_insert(Stratum {
            treated: Vec::new(),
            comparison: Vec::new(),
        });
        if u.treated {
            s.treated.push(i);
        } else {
            s.comparison.push(i);
        }
    }
    let mut strata: Vec<(u64, Stratum)> = by.into_iter().collect();
    strata.sort_unstable_by_key(|s| s.0);
    let usable =
        |s: &Stratum| s.treated.len() >= MIN_PER_SIDE && s.comparison.len() >= MIN_PER_SIDE;
    let unmatched_treated = strata
        .iter()
        .filter(|(_, s)| !usable(s))
        .map(|(_, s)| s.treated.len())
        .sum();
    strata.retain(|(_, s)| usable(s));
    let matched: usize = strata.iter().map(|(_, s)| s.treated.len()).sum();
    if matched == 0 {
        return None;
    }
    let n = matched as f64;
    // Σ over an arm's drawn units of each metric's change.
    let sums = |idx: &mut dyn Iterator<Item = usize>, out: &mut [f64]| {
        out.iter_mut().for_each(|x| *x = 0.0);
        for i in idx {
            for (o, c) in out.iter_mut().zip(&units[i].changes) {
                *o += c;
            }
        }
    };
    // (treated mean, comparison mean) per metric from per-stratum arm sums.
    let estimate = |draw: &mut dyn FnMut(&[usize], &mut [f64])| {
        let (mut t, mut c) = (vec![0.0; metrics], vec![0.0; metrics]);
        let mut buf = vec![0.0; metrics];
        for (_, s) in &strata {
            let w = s.treated.len() as f64 / n;
            draw(&s.treated, &mut buf);
            for (t, b) in t.iter_mut().zip(&buf) {
                *t += b / n;
            }
            draw(&s.comparison, &mut buf);
            for (c, b) in c.iter_mut().zip(&buf) {
                *c += w * b / s.comparison.len() as f64;
            }
        }
        (t, c)
    };
    let (t, c) = estimate(&mut |idx, out| sums(&mut idx.iter().copied(), out));
    let mut rng = ChaCha8Rng::seed_from_u64(seed);
    let mut draws: Vec<Vec<f64>> = vec![Vec::with_capacity(reps); metrics];
    for _ in 0..reps {
        let (bt, bc) = estimate(&mut |idx, out| {
            let k = idx.len();
            sums(&mut (0..k).map(|_| idx[rng.random_range(0..k)]), out)
        });
        for (m, d) in draws.iter_mut().enumerate() {
            d.push(bt[m] - bc[m]);
        }
    }
    let alpha = 1.0 - confidence;
    let normal = Normal::standard();
    let estimates = (0..metrics)
        .map(|m| {
            let difference = t[m] - c[m];
            let d = &mut draws[m];
            d.sort_unstable_by(f64::total_cmp);
            let q = |p: f64| quantile(d, p);
            let mean = d.iter().sum::<f64>() / d.len().max(1) as f64;
            let se = (d.iter().map(|x| (x - mean).powi(2)).sum::<f64>()
                / (d.len().max(2) - 1) as f64)
                .sqrt();
            let p_value = if se > 0.0 {
                2.0 * (1.0 - normal.cdf((difference / se).abs()))
            } else if difference == 0.0 {
                1.0
            } else {
                0.0
            };
            Estimate {
                treated: t[m],
                comparison: c[m],
                difference,
                ci: if d.is_empty() {
                    [difference; 2]
                } else {
                    [q(alpha / 2.0), q(1.0 - alpha / 2.0)]
                },
                p_value,
                se,
            }
        })
        .collect();
    Some(Did {
        estimates,
        matched_treated: matched,
        unmatched_treated,
        comparison_units: strata.iter().map(|(_, s)| s.comparison.len()).sum(),
        strata: strata.len(),
    })
}

/// The p-quantile of sorted values, interpolating linearly between order statistics.
fn quantile(sorted: &[f64], p: f64) -> f64 {
    let h = (sorted.len() - 1) as f64 * p;
    let (lo, hi) = (h.floor() as usize, h.ceil() as usize);
    sorted[lo] + (sorted[hi] - sorted[lo]) * (h - lo as f64)
}

#[cfg(test)]
mod tests {
    use super::*;

    /// A hand-worked example: stratum A has treated changes 4 and 6 (mean 5) against comparison
    /// changes 1, 2 and 3 (mean 2); stratum B has treated changes 10, 14 and 15 (mean 13) against
    /// 7 and 9 (mean 8). Effect = (2/5)·(5 − 2) + (3/5)·(13 − 8) = 4.2; treated mean
    /// (4 + 6 + 10 + 14 + 15)/5 = 9.8; comparison (2/5)·2 + (3/5)·8 = 5.6. Stratum C has one
    /// treated unit and one comparison unit (too few to count); stratum D no treated unit.
    #[test]
    fn hand_worked_strata() {
        let u = |stratum, treated, x: f64| Unit {
            stratum,
            treated,
            changes: vec![x, 2.0 * x],
        };
        let units = vec![
            u(1, true, 4.0),
            u(1, true, 6.0),
            u(1, false, 1.0),
            u(1, false, 2.0),
            u(1, false, 3.0),
            u(2, true, 10.0),
            u(2, true, 14.0),
            u(2, true, 15.0),
            u(2, false, 7.0),
            u(2, false, 9.0),
            u(3, true, 100.0),
            u(3, false, 50.0),
            u(4, false, 50.0),
        ];
        let d = did(&units, 2, 500, 1, 0.95).unwrap();
        let e = d.estimates[0];
        assert!((e.difference - 4.2).abs() < 1e-12);
        assert!((e.treated - 9.8).abs() < 1e-12);
        assert!((e.comparison - 5.6).abs() < 1e-12);
        // The second metric is twice the first, in every replicate too.
        assert!((d.estimates[1].difference - 2.0 * e.difference).abs() < 1e-12);
        assert!((d.estimates[1].ci[0] - 2.0 * e.ci[0]).abs() < 1e-9);
        assert!(e.ci[0] <= e.difference && e.difference <= e.ci[1]);
        assert_eq!(
            (
                d.matched_treated,
                d.unmatched_treated,
                d.comparison_units,
                d.strata
            ),
            (5, 1, 5, 2)
        );
        // Seeded: the same seed gives the same interval.
        assert_eq!(did(&units, 2, 500, 1, 0.95).unwrap(), d);
        assert!(did(&[u(1, false, 1.0)], 2, 10, 1, 0.95).is_none());
    }

    /// A second method: on a large sample the bootstrap's standard error equals the analytic
    /// stratified one, sqrt(Σ w² (s²_T/n_T + s²_C/n_C)), within sampling noise; and the interval
    /// holds the effect planted.
    #[test]
    fn bootstrap_error_matches_the_stratified_formula() {
        let mut rng = ChaCha8Rng::seed_from_u64(42);
        let mut units = Vec::new();
        // (stratum, treated units, comparison units, baseline change, effect)
        for (s, nt, nc, base, effect) in [(0, 400, 2000, 1.0, 3.0), (1, 200, 300, 5.0, 3.0)] {
            for i in 0..nt + nc {
                let noise: f64 = (0..12).map(|_| rng.random::<f64>()).sum::<f64>() - 6.0;
                let treated = i < nt;
                let x = base + noise * (1.0 + s as f64) + if treated { effect } else { 0.0 };
                units.push(Unit {
                    stratum: s,
                    treated,
                    changes: vec![x],
                });
            }
        }
        let d = did(&units, 1, 2000, 3, 0.95).unwrap();
        let e = d.estimates[0];
        let n = 600.0;
        let mut var = 0.0;
        for s in 0..2u64 {
            let arm = |t: bool| {
                let v: Vec<f64> = units
                    .iter()
                    .filter(|u| u.stratum == s && u.treated == t)
                    .map(|u| u.changes[0])
                    .collect();
                let m = v.iter().sum::<f64>() / v.len() as f64;
                let s2 = v.iter().map(|x| (x - m).powi(2)).sum::<f64>() / (v.len() - 1) as f64;
                s2 / v.len() as f64
            };
            let w = if s == 0 { 400.0 / n } else { 200.0 / n };
            var += w * w * (arm(true) + arm(false));
        }
        let se = var.sqrt();
        assert!((e.se / se - 1.0).abs() < 0.08, "{} vs {se}", e.se);
        assert!(e.ci[0] < 3.0 && 3.0 < e.ci[1], "{:?}", e.ci);
        assert!(e.p_value < 1e-6);
    }
}
