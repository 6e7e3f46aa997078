//! RFM: quintile scores with a written tie rule, the eleven named segments with their actions,
//! and k-means clustering on standardised log R, F, M with k chosen by silhouette.
//! Definitions: docs/metrics.md, "RFM".
//!
//! ```
//! use shoplens_models::rfm::{scores, Segment};
//! // Higher is better for F and M; for R (days since the last order) lower is better.
//! assert_eq!(scores(&[1.0, 1.0, 2.0, 5.0, 9.0], true), vec![1, 1, 3, 4, 5]);
//! assert_eq!(scores(&[3.0, 40.0, 200.0], false), vec![4, 2, 1]);
//! assert_eq!(Segment::of(5, 5, 5), Segment::Champions);
//! assert_eq!(Segment::of(1, 1, 1).name_zh(), "流失用户");
//! ```

use rayon::prelude::*;
use serde::Serialize;

/// Scores 1–5 by quintile: score = 1 + ⌊5 · (share of values strictly worse)⌋, capped at 5.
/// Equal values get equal scores, the worst value always scores 1, and a score is skipped when
/// ties straddle a quintile. `higher_is_better` is true for F and M, false for R.
pub fn scores(values: &[f64], higher_is_better: bool) -> Vec<u8> {
    let n = values.len();
    let mut sorted: Vec<f64> = values.to_vec();
    sorted.sort_by(f64::total_cmp);
    values
        .iter()
        .map(|v| {
            let worse = if higher_is_better {
                sorted.partition_point(|x| x.total_cmp(v).is_lt())
            } else {
                n - sorted.partition_point(|x| x.total_cmp(v).is_le())
            };
            (1 + (5 * worse) / n).min(5) as u8
        })
        .collect()
}

/// The eleven named RFM segments.
#[derive(
    Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize, schemars::JsonSchema,
)]
#[serde(rename_all = "snake_case")]
pub enum Segment {
    /// Bought recently, often and much.
    Champions,
    /// Buy often and much, not the most recently.
    Loyal,
    /// Recent, with middling frequency and spend.
    PotentialLoyalist,
    /// Bought for the first time very recently.
    New,
    /// Recent one-time buyers of little.
    Promising,
    /// Middling on every score.
    NeedAttention,
    /// Middling recency, low frequency and spend.
    AboutToSleep,
    /// Used to buy often and much, not lately.
    AtRisk,
    /// Were among the best, silent for long.
    CantLoseThem,
    /// Low on everything, silent for a while.
    Hibernating,
    /// Low on everything, silent the longest.
    Lost,
}

impl Segment {
    /// All segments in display order.
    pub const ALL: [Segment; 11] = [
        Segment::Champions,
        Segment::Loyal,
        Segment::PotentialLoyalist,
        Segment::New,
        Segment::Promising,
        Segment::NeedAttention,
        Segment::AboutToSleep,
        Segment::AtRisk,
        Segment::CantLoseThem,
        Segment::Hibernating,
        Segment::Lost,
    ];

    /// The segment of R, F and M scores: the R score against FM = round-half-up((F + M) / 2)
    /// (the grid in docs/metrics.md).
    pub fn of(r: u8, f: u8, m: u8) -> Segment {
        let fm = (f + m).div_ceil(2);
        match (r, fm) {
            (5, 1) => Segment::New,
            (4, 1) => Segment::Promising,
            (4 | 5, 2 | 3) => Segment::PotentialLoyalist,
            (5, _) => Segment::Champions,
            (3 | 4, _) if fm >= 4 => Segment::Loyal,
            (3, 3) => Segment::NeedAttention,
            (3, _) => Segment::AboutToSleep,
            (_, 5) => Segment::CantLoseThem,
            (_, 3 | 4) => Segment::AtRisk,
            (2, _) => Segment::Hibernating,
            _ => Segment::Lost,
        }
    }

    /// Stable key, as in JSON.
    pub fn key(self) -> &'static str {
        match self {
            Segment::Champions => "champions",
            Segment::Loyal => "loyal",
            Segment::PotentialLoyalist => "potential_loyalist",
            Segment::New => "new",
            Segment::Promising => "promising",
            Segment::NeedAttention => "need_attention",
            Segment::AboutToSleep => "about_to_sleep",
            Segment::AtRisk => "at_risk",
            Segment::CantLoseThem => "cant_lose_them",
            Segment::Hibernating => "hibernating",
            Segment::Lost => "lost",
        }
    }

    /// English name.
    pub fn name(self) -> &'static str {
        match self {
            Segment::Champions => "Champions",
            Segment::Loyal => "Loyal",
            Segment::PotentialLoyalist => "Potential loyalist",
            Segment::New => "New",
            Segment::Promising => "Promising",
            Segment::NeedAttention => "Need attention",
            Segment::AboutToSleep => "About to sleep",
            Segment::AtRisk => "At risk",
            Segment::CantLoseThem => "Can't lose them",
            Segment::Hibernating => "Hibernating",
            Segment::Lost => "Lost",
        }
    }

    /// 中文名.
    pub fn name_zh(self) -> &'static str {
        match self {
            Segment::Champions => "高价值用户",
            Segment::Loyal => "忠诚用户",
            Segment::PotentialLoyalist => "潜力用户",
            Segment::New => "新用户",
            Segment::Promising => "有望用户",
            Segment::NeedAttention => "需关注用户",
            Segment::AboutToSleep => "即将沉睡用户",
            Segment::AtRisk => "流失风险用户",
            Segment::CantLoseThem => "重要挽留用户",
            Segment::Hibernating => "沉睡用户",
            Segment::Lost => "流失用户",
        }
    }

    /// The recommended action.
    pub fn action(self) -> &'static str {
        match self {
            Segment::Champions => {
                "Reward them: early access, VIP group, ask for reviews and referrals; no discounts needed."
            }
            Segment::Loyal => {
                "Upsell higher-value items and bundles; invite to the membership programme."
            }
            Segment::PotentialLoyalist => {
                "Offer membership or a loyalty programme; recommend complementary categories."
            }
            Segment::New => {
                "Onboard: welcome series, second-order coupon within 30 days, build the relationship."
            }
            Segment::Promising => {
                "Create brand awareness: content and a small time-limited offer for a second order."
            }
            Segment::NeedAttention => {
                "Reactivate with limited-time offers based on past purchases before they slip."
            }
            Segment::AboutToSleep => {
                "Share popular items and personalised recommendations; a modest discount to re-engage."
            }
            Segment::AtRisk => {
                "Win them back: personalised e-mail or message, renewals, helpful content."
            }
            Segment::CantLoseThem => {
                "Reach out personally: new products, a strong win-back offer, ask what went wrong."
            }
            Segment::Hibernating => {
                "Low-cost reminders of relevant products; special offers at sales peaks."
            }
            Segment::Lost => {
                "Try one win-back campaign at low cost, otherwise stop spending on them."
            }
        }
    }

    /// 推荐动作.
    pub fn action_zh(self) -> &'static str {
        match self {
            Segment::Champions => "给予回馈：新品抢先体验、拉入 VIP 群、邀请评价与推荐，无需折扣。",
            Segment::Loyal => "推荐更高价值商品与组合，邀请加入会员体系。",
            Segment::PotentialLoyalist => "推会员或积分计划，推荐关联品类。",
            Segment::New => "新客培育：欢迎序列、30 天内二单券，建立关系。",
            Segment::Promising => "提升品牌认知：内容触达与限时二单优惠。",
            Segment::NeedAttention => "基于历史购买推送限时优惠，防止流失。",
            Segment::AboutToSleep => "推送热门与个性化推荐，适度折扣唤醒。",
            Segment::AtRisk => "召回：个性化短信/邮件、续费提醒、有用内容。",
            Segment::CantLoseThem => "一对一触达：新品、强力召回优惠，了解流失原因。",
            Segment::Hibernating => "低成本提醒相关商品，大促节点发放专属优惠。",
            Segment::Lost => "低成本尝试一次召回，否则停止投放。",
        }
    }
}

/// A k-means clustering.
#[derive(Debug, Clone, PartialEq)]
pub struct KMeans {
    /// Cluster centres.
    pub centroids: Vec<[f64; 3]>,
    /// Cluster of each point.
    pub labels: Vec<usize>,
    /// Sum of squared distances to the assigned centre.
    pub inertia: f64,
}

fn dist2(a: &[f64; 3], b: &[f64; 3]) -> f64 {
    (a[0] - b[0]).powi(2) + (a[1] - b[1]).powi(2) + (a[2] - b[2]).powi(2)
}

/// SplitMix64: a small seeded generator for initialisation and sampling (deterministic).
struct Mix(u64);

impl Mix {
    fn next(&mut self) -> u64 {
        self.0 = self.0.wrapping_add(0x9E37_79B9_7F4A_7C15);
        let mut z = self.0;
        z = (z ^ (z >> 30)).wrapping_mul(0xBF58_476D_1CE4_E5B9);
        z = (z ^ (z >> 27)).wrapping_mul(0x94D0_49BB_1331_11EB);
        z ^ (z >> 31)
    }
    fn unit(&mut self) -> f64 {
        (self.next() >> 11) as f64 / (1u64 << 53) as f64
    }
}

fn nearest(p: &[f64; 3], c: &[[f64; 3]]) -> (usize, f64) {
    let mut best = (0, f64::INFINITY);
    for (j, c) in c.iter().enumerate() {
        let d = dist2(p, c);
        if d < best.1 {
            best = (j, d);
        }
    }
    best
}

/// k-means++ seeding, then Lloyd iterations until no point changes cluster or the centres move
/// less than 1e-4 of the mean feature variance (at most 300), in parallel over points; `restarts` runs from different seeds, the lowest inertia kept.
pub fn kmeans(points: &[[f64; 3]], k: usize, seed: u64, restarts: usize) -> Option<KMeans> {
    if k == 0 || points.len() < k {
        return None;
    }
    (0..restarts.max(1))
        .map(|run| lloyd(points, k, seed.wrapping_add(run as u64 * 7919)))
        .min_by(|a, b| a.inertia.total_cmp(&b.inertia))
}

fn lloyd(points: &[[f64; 3]], k: usize, seed: u64) -> KMeans {
    let mut rng = Mix(seed);
    let n = points.len();
    let mut centroids = vec![points[(rng.next() % n as u64) as usize]];
    let mut d2: Vec<f64> = points.par_iter().map(|p| dist2(p, &centroids[0])).collect();
    while centroids.len() < k {
        let total: f64 = d2.iter().sum();
        let pick = if total > 0.0 {
            let mut u = rng.unit() * total;
            d2.iter()
                .position(|d| {
                    u -= d;
                    u <= 0.0
                })
                .unwrap_or(n - 1)
        } else {
            (rng.next() % n as u64) as usize
        };
        let c = points[pick];
        centroids.push(c);
        d2.par_iter_mut()
            .zip(points.par_iter())
            .for_each(|(d, p)| *d = d.min(dist2(p, &c)));
    }
    // Tolerance on the total squared centre shift, relative to the mean per-feature variance
    // (scikit-learn's rule, tol = 1e-4).
    let tol = 1e-4 * mean_variance(points);
    let mut labels = vec![usize::MAX; n];
    let zero = || (vec![[0.0; 3]; k], vec![0usize; k], 0usize);
    for _ in 0..300 {
        // One pass: assign each point to its nearest centre and accumulate the new centres.
        // Partial sums over fixed chunks, added in chunk order: the same centres (to the last
        // bit) whatever the thread count or scheduling.
        let partials: Vec<(Vec<[f64; 3]>, Vec<usize>, usize)> = labels
            .par_chunks_mut(4096)
            .zip(points.par_chunks(4096))
            .map(|(ls, ps)| {
                let (mut s, mut c, mut ch) = zero();
                for (l, p) in ls.iter_mut().zip(ps) {
                    let (j, _) = nearest(p, &centroids);
                    if *l != j {
                        ch += 1;
                        *l = j;
                    }
                    for d in 0..3 {
                        s[j][d] += p[d];
                    }
                    c[j] += 1;
                }
                (s, c, ch)
            })
            .collect();
        let (mut sums, mut counts, mut changed) = zero();
        for (s2, c2, ch2) in partials {
            for j in 0..k {
                for d in 0..3 {
                    sums[j][d] += s2[j][d];
                }
                counts[j] += c2[j];
            }
            changed += ch2;
        }
        let mut shift = 0.0;
        for j in 0..k {
            if counts[j] > 0 {
                let c = [
                    sums[j][0] / counts[j] as f64,
                    sums[j][1] / counts[j] as f64,
                    sums[j][2] / counts[j] as f64,
                ];
                shift += dist2(&c, &centroids[j]);
                centroids[j] = c;
            }
        }
        if changed == 0 || shift <= tol {
            break;
        }
    }
    // Labels against the final centres.
    labels
        .par_iter_mut()
        .zip(points.par_iter())
        .for_each(|(l, p)| *l = nearest(p, &centroids).0);
    let inertia = points
        .iter()
        .zip(&labels)
        .map(|(p, &l)| dist2(p, &centroids[l]))
        .sum();
    KMeans {
        centroids,
        labels,
        inertia,
    }
}

/// Silhouettes are computed on at most this many points (the cost is quadratic).
pub const SILHOUETTE_SAMPLE: usize = 4000;

/// k is chosen on at most this many points.
pub const CHOICE_SAMPLE: usize = 50_000;

/// Chooses k among `ks` by the highest mean silhouette: k-means (three starts) on a seeded sample
/// of at most [`CHOICE_SAMPLE`] points, silhouettes on at most [`SILHOUETTE_SAMPLE`] of them.
/// Returns every k's silhouette and the chosen k (None when no k fits).
pub fn choose_k(
    points: &[[f64; 3]],
    ks: &[usize],
    seed: u64,
) -> Option<(Vec<(usize, f64)>, usize)> {
    let sample: Vec<[f64; 3]> = sample_indices(points.len(), CHOICE_SAMPLE, seed)
        .into_iter()
        .map(|i| points[i])
        .collect();
    let mut tried = Vec::new();
    let mut best: Option<(f64, usize)> = None;
    for &k in ks {
        let Some(km) = kmeans(&sample, k, seed, 3) else {
            continue;
        };
        let s = silhouette(&sample, &km.labels, k, SILHOUETTE_SAMPLE, seed);
        tried.push((k, s));
        if best.is_none_or(|b| s > b.0) {
            best = Some((s, k));
        }
    }
    best.map(|(_, k)| (tried, k))
}

fn mean_variance(points: &[[f64; 3]]) -> f64 {
    let n = points.len() as f64;
    (0..3)
        .map(|d| {
            let m = points.iter().map(|p| p[d]).sum::<f64>() / n;
            points.iter().map(|p| (p[d] - m).powi(2)).sum::<f64>() / n
        })
        .sum::<f64>()
        / 3.0
}

/// A seeded sample of at most `size` distinct indices of 0..n (all of them when n ≤ size).
pub fn sample_indices(n: usize, size: usize, seed: u64) -> Vec<usize> {
    if n <= size {
        return (0..n).collect();
    }
    let mut rng = Mix(seed);
    let mut all: Vec<usize> = (0..n).collect();
    for i in 0..size {
        let j = i + (rng.next() % (n - i) as u64) as usize;
        all.swap(i, j);
    }
    all.truncate(size);
    all
}

/// Mean silhouette of a clustering over a seeded sample of at most `sample` points (exact when
/// the sample holds every point). Points in a cluster of one score 0.
pub fn silhouette(
    points: &[[f64; 3]],
    labels: &[usize],
    k: usize,
    sample: usize,
    seed: u64,
) -> f64 {
    let n = points.len();
    let idx = sample_indices(n, sample, seed);
    let s: f64 = idx
        .par_iter()
        .map(|&i| {
            let mut sum = vec![0.0; k];
            let mut cnt = vec![0usize; k];
            for &j in &idx {
                if j != i {
                    sum[labels[j]] += dist2(&points[i], &points[j]).sqrt();
                    cnt[labels[j]] += 1;
                }
            }
            let own = labels[i];
            if cnt[own] == 0 {
                return 0.0;
            }
            let a = sum[own] / cnt[own] as f64;
            let b = (0..k)
                .filter(|&j| j != own && cnt[j] > 0)
                .map(|j| sum[j] / cnt[j] as f64)
                .fold(f64::INFINITY, f64::min);
            if !b.is_finite() {
                return 0.0;
            }
            (b - a) / a.max(b)
        })
        // Collected, then summed in order: a parallel sum's order (and so its last bits) would
        // depend on scheduling.
        .collect::<Vec<f64>>()
        .iter()
        .sum();
    s / idx.len() as f64
}

/// Standardises columns to mean 0 and (population) standard deviation 1; a constant column
/// becomes 0.
pub fn standardise(points: &mut [[f64; 3]]) {
    let n = points.len() as f64;
    for d in 0..3 {
        let mean = points.iter().map(|p| p[d]).sum::<f64>() / n;
        let sd = (points.iter().map(|p| (p[d] - mean).powi(2)).sum::<f64>() / n).sqrt();
        for p in points.iter_mut() {
            p[d] = if sd > 0.0 { (p[d] - mean) / sd } else { 0.0 };
        }
    }
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used, clippy::expect_used, reason = "tests")]
    use super::*;

    #[test]
    fn grid_covers_every_score() {
        let mut seen = std::collections::HashSet::new();
        for r in 1..=5 {
            for f in 1..=5 {
                for m in 1..=5 {
                    seen.insert(Segment::of(r, f, m));
                }
            }
        }
        assert_eq!(seen.len(), 11);
        assert_eq!(Segment::of(5, 1, 1), Segment::New);
        assert_eq!(Segment::of(4, 5, 4), Segment::Loyal);
        assert_eq!(Segment::of(1, 5, 5), Segment::CantLoseThem);
        assert_eq!(Segment::of(2, 2, 1), Segment::Hibernating);
        assert_eq!(Segment::of(3, 3, 3), Segment::NeedAttention);
    }

    #[test]
    fn kmeans_finds_separated_blobs_and_silhouette_prefers_their_number() {
        let mut pts = Vec::new();
        let mut rng = Mix(1);
        for c in [[0.0, 0.0, 0.0], [10.0, 0.0, 0.0], [0.0, 10.0, 5.0]] {
            for _ in 0..200 {
                pts.push([c[0] + rng.unit(), c[1] + rng.unit(), c[2] + rng.unit()]);
            }
        }
        let s: Vec<f64> = (2..=5)
            .map(|k| {
                let km = kmeans(&pts, k, 7, 3).unwrap();
                silhouette(&pts, &km.labels, k, 1000, 1)
            })
            .collect();
        let best = s
            .iter()
            .enumerate()
            .max_by(|a, b| a.1.total_cmp(b.1))
            .unwrap()
            .0
            + 2;
        assert_eq!(best, 3, "{s:?}");
        let km = kmeans(&pts, 3, 7, 1).unwrap();
        // Every blob is one cluster.
        for b in 0..3 {
            let l = km.labels[b * 200];
            assert!(km.labels[b * 200..(b + 1) * 200].iter().all(|x| *x == l));
        }
    }
}
