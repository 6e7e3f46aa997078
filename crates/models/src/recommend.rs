//! Recommendations on implicit feedback: popularity, item-to-item co-occurrence (cosine with
//! popularity damping), implicit ALS (Hu, Koren & Volinsky 2008) solved by conjugate gradient
//! (Takács, Pilászy & Tikk 2011), MMR re-ranking, and the offline ranking metrics.
//!
//! Users and items are dense indices. An interaction matrix holds a weight per (user, item)
//! (summed event weights); ALS turns it into confidence 1 + α·w.

use rand::{Rng, SeedableRng};
use rayon::prelude::*;

/// A sparse user × item matrix in compressed rows, with its transpose.
#[derive(Debug, Clone)]
pub struct Interactions {
    n_users: usize,
    n_items: usize,
    /// Row offsets per user.
    u_ptr: Vec<usize>,
    u_item: Vec<u32>,
    u_w: Vec<f32>,
    /// Row offsets per item (the transpose).
    i_ptr: Vec<usize>,
    i_user: Vec<u32>,
    i_w: Vec<f32>,
}

impl Interactions {
    /// From (user, item, weight) triples in any order; repeated pairs add up; weights ≤ 0 and
    /// indices out of range are dropped.
    pub fn new(n_users: usize, n_items: usize, mut triples: Vec<(u32, u32, f32)>) -> Interactions {
        triples.retain(|t| (t.0 as usize) < n_users && (t.1 as usize) < n_items && t.2 > 0.0);
        triples.sort_unstable_by_key(|t| (t.0, t.1));
        let mut merged: Vec<(u32, u32, f32)> = Vec::with_capacity(triples.len());
        for t in triples {
            match merged.last_mut() {
                Some(m) if m.0 == t.0 && m.1 == t.1 => m.2 += t.2,
                _ => merged.push(t),
            }
        }
        let (u_ptr, u_item, u_w) = csr(n_users, merged.iter().map(|t| (t.0, t.1, t.2)));
        merged.sort_unstable_by_key(|t| (t.1, t.0));
        let (i_ptr, i_user, i_w) = csr(n_items, merged.iter().map(|t| (t.1, t.0, t.2)));
        Interactions {
            n_users,
            n_items,
            u_ptr,
            u_item,
            u_w,
            i_ptr,
            i_user,
            i_w,
        }
    }

    /// Users.
    pub fn n_users(&self) -> usize {
        self.n_users
    }

    /// Items.
    pub fn n_items(&self) -> usize {
        self.n_items
    }

    /// Stored (user, item) pairs.
    pub fn nnz(&self) -> usize {
        self.u_item.len()
    }

    /// A user's items (ascending) and weights.
    pub fn user(&self, u: usize) -> (&[u32], &[f32]) {
        let r = self.u_ptr[u]..self.u_ptr[u + 1];
        (&self.u_item[r.clone()], &self.u_w[r])
    }

    /// An item's users (ascending) and weights.
    pub fn item(&self, i: usize) -> (&[u32], &[f32]) {
        let r = self.i_ptr[i]..self.i_ptr[i + 1];
        (&self.i_user[r.clone()], &self.i_w[r])
    }

    /// Distinct users per item.
    pub fn item_users(&self) -> Vec<u32> {
        (0..self.n_items)
            .map(|i| (self.i_ptr[i + 1] - self.i_ptr[i]) as u32)
            .collect()
    }
}

fn csr(
    rows: usize,
    sorted: impl Iterator<Item = (u32, u32, f32)>,
) -> (Vec<usize>, Vec<u32>, Vec<f32>) {
    let mut ptr = vec![0usize; rows + 1];
    let (mut col, mut w) = (Vec::new(), Vec::new());
    for (r, c, x) in sorted {
        ptr[r as usize + 1] += 1;
        col.push(c);
        w.push(x);
    }
    for k in 1..ptr.len() {
        ptr[k] += ptr[k - 1];
    }
    (ptr, col, w)
}

/// A seeded synthetic interaction matrix for benchmarks: each user belongs to one of 50 taste
/// groups and makes `per_user` interactions (weight 1), 70% with items of its group's block of the
/// catalogue and 30% anywhere, both Zipf(1.0)-distributed. Deterministic for a seed.
pub fn generate(n_users: usize, n_items: usize, per_user: usize, seed: u64) -> Interactions {
    use rand_distr::{Distribution, Zipf};
    let n_items = n_items.max(100);
    let groups = 50usize;
    let block = n_items / groups;
    let mut rng = rand_chacha::ChaCha8Rng::seed_from_u64(seed);
    let (Ok(inner), Ok(global)) = (Zipf::new(block as f64, 1.0), Zipf::new(n_items as f64, 1.0))
    else {
        return Interactions::new(0, 0, Vec::new());
    };
    let mut triples = Vec::with_capacity(n_users * per_user);
    for u in 0..n_users {
        let g = rng.random_range(0..groups);
        for _ in 0..per_user {
            let item = if rng.random_bool(0.7) {
                g * block + inner.sample(&mut rng) as usize - 1
            } else {
                global.sample(&mut rng) as usize - 1
            };
            triples.push((u as u32, item as u32, 1.0));
        }
    }
    Interactions::new(n_users, n_items, triples)
}

/// Items ranked by how many users interacted with them (ties by index).
pub fn popularity(m: &Interactions) -> Vec<u32> {
    let counts = m.item_users();
    let mut items: Vec<u32> = (0..m.n_items() as u32).collect();
    items.sort_by(|&a, &b| counts[b as usize].cmp(&counts[a as usize]).then(a.cmp(&b)));
    items
}

/// Top-k neighbours of every item by co-occurrence: sim(i, j) = co(i, j) / (nᵢ · nⱼ)^damping
/// (0.5 = cosine on binary interactions; larger values damp popular items more), where co counts
/// users holding both and n the users of each. Neighbours sorted by similarity, ties by index.
#[derive(Debug, Clone)]
pub struct ItemItem {
    /// Per item: (neighbour, similarity), best first.
    pub neighbours: Vec<Vec<(u32, f32)>>,
}

impl ItemItem {
    /// Fits the neighbour lists on binary interactions (parallel over items).
    pub fn fit(m: &Interactions, k: usize, damping: f32) -> ItemItem {
        Self::fit_with(m, k, damping, |_| 1.0)
    }

    /// Neighbours from weighted co-occurrence: sim(i, j) = Σᵤ wᵤᵢ·wᵤⱼ / (Σᵤ wᵤᵢ² · Σᵤ wᵤⱼ²)^damping,
    /// with the matrix's weights (e.g. recency decay). Binary weights give [`ItemItem::fit`].
    pub fn fit_weighted(m: &Interactions, k: usize, damping: f32) -> ItemItem {
        Self::fit_with(m, k, damping, |w| w)
    }

    fn fit_with(
        m: &Interactions,
        k: usize,
        damping: f32,
        weight: impl Fn(f32) -> f32 + Sync,
    ) -> ItemItem {
        let norms: Vec<f32> = (0..m.n_items())
            .map(|i| m.item(i).1.iter().map(|&w| weight(w) * weight(w)).sum())
            .collect();
        let neighbours = (0..m.n_items())
            .into_par_iter()
            .map_init(
                || (vec![0f32; m.n_items()], Vec::<u32>::new()),
                |(acc, touched), i| {
                    let (users, wi) = m.item(i);
                    for (&u, &a) in users.iter().zip(wi) {
                        let (items, wu) = m.user(u as usize);
                        for (&j, &b) in items.iter().zip(wu) {
                            if j as usize != i {
                                if acc[j as usize] == 0.0 {
                                    touched.push(j);
                                }
                                acc[j as usize] += weight(a) * weight(b);
                            }
                        }
                    }
                    let mut sims: Vec<(u32, f32)> = touched
                        .iter()
                        .map(|&j| {
                            (
                                j,
                                acc[j as usize] / (norms[i] * norms[j as usize]).powf(damping),
                            )
                        })
                        .collect();
                    for &j in touched.iter() {
                        acc[j as usize] = 0.0;
                    }
                    touched.clear();
                    top_k(&mut sims, k);
                    sims
                },
            )
            .collect();
        ItemItem { neighbours }
    }

    /// Scores of every item for a user holding `items`: Σ over held items of the neighbour
    /// similarity.
    pub fn scores(&self, items: &[u32], out: &mut [f32]) {
        self.accumulate(items.iter().map(|&i| (i, 1.0)), out);
    }

    /// Scores with a multiplier per held item: Σ over held items i of c(i)·sim(i, j) (e.g. the
    /// confidence 1 + α·w, which is how the Python `implicit` package scores its neighbours).
    pub fn scores_weighted(&self, items: &[u32], weights: &[f32], out: &mut [f32]) {
        self.accumulate(items.iter().copied().zip(weights.iter().copied()), out);
    }

    fn accumulate(&self, held: impl Iterator<Item = (u32, f32)>, out: &mut [f32]) {
        out.iter_mut().for_each(|x| *x = 0.0);
        for (i, c) in held {
            for &(j, s) in &self.neighbours[i as usize] {
                out[j as usize] += c * s;
            }
        }
    }

    /// The similarity of two items (0 when not neighbours).
    pub fn similarity(&self, a: u32, b: u32) -> f32 {
        self.neighbours[a as usize]
            .iter()
            .find(|n| n.0 == b)
            .map_or(0.0, |n| n.1)
    }
}

/// Keeps the k best (highest score, then lowest index), sorted.
fn top_k(v: &mut Vec<(u32, f32)>, k: usize) {
    let cmp = |a: &(u32, f32), b: &(u32, f32)| b.1.total_cmp(&a.1).then(a.0.cmp(&b.0));
    if v.len() > k && k > 0 {
        v.select_nth_unstable_by(k - 1, cmp);
        v.truncate(k);
    }
    v.sort_by(cmp);
}

/// ALS hyper-parameters.
#[derive(Debug, Clone, Copy)]
pub struct AlsParams {
    /// Latent factors.
    pub factors: usize,
    /// Alternating sweeps (users then items).
    pub iterations: usize,
    /// L2 regularisation λ.
    pub regularization: f32,
    /// Confidence c = 1 + alpha · weight.
    pub alpha: f32,
    /// Conjugate-gradient steps per row and sweep (warm-started).
    pub cg_steps: usize,
    /// Seed of the initial factors.
    pub seed: u64,
}

impl Default for AlsParams {
    fn default() -> AlsParams {
        AlsParams {
            factors: 64,
            iterations: 15,
            regularization: 0.01,
            alpha: 1.0,
            cg_steps: 3,
            seed: 42,
        }
    }
}

/// Fitted user and item factors (row-major, `factors` floats a row).
#[derive(Debug, Clone)]
pub struct Als {
    /// Factors per row.
    pub factors: usize,
    /// User factors.
    pub users: Vec<f32>,
    /// Item factors.
    pub items: Vec<f32>,
}

/// Dot product in eight independent lanes, so the compiler can keep it in SIMD registers (and,
/// inlined into a `pulp` dispatch, in AVX registers where the CPU has them).
#[inline(always)]
fn dot(a: &[f32], b: &[f32]) -> f32 {
    let n = a.len().min(b.len());
    let (a, b) = (&a[..n], &b[..n]);
    let mut acc = [0f32; 8];
    let (ca, cb) = (a.chunks_exact(8), b.chunks_exact(8));
    let (ra, rb) = (ca.remainder(), cb.remainder());
    for (x, y) in ca.zip(cb) {
        for l in 0..8 {
            acc[l] += x[l] * y[l];
        }
    }
    let mut s = acc.iter().sum::<f32>();
    for (x, y) in ra.iter().zip(rb) {
        s += x * y;
    }
    s
}

/// YᵀY + λI of row-major factors (f × f).
fn gram(y: &[f32], f: usize, reg: f32) -> Vec<f32> {
    let rows = y.len() / f.max(1);
    let chunk = 4096;
    let parts: Vec<Vec<f64>> = (0..rows.div_ceil(chunk))
        .into_par_iter()
        .map(|c| {
            let mut g = vec![0f64; f * f];
            for r in c * chunk..((c + 1) * chunk).min(rows) {
                let v = &y[r * f..(r + 1) * f];
                for a in 0..f {
                    let va = f64::from(v[a]);
                    if va == 0.0 {
                        continue;
                    }
                    let row = &mut g[a * f..(a + 1) * f];
                    for (b, x) in row.iter_mut().enumerate() {
                        *x += va * f64::from(v[b]);
                    }
                }
            }
            g
        })
        .collect();
    let mut g = vec![0f32; f * f];
    for (k, x) in g.iter_mut().enumerate() {
        *x = parts.iter().map(|p| p[k]).sum::<f64>() as f32;
    }
    for a in 0..f {
        g[a * f + a] += reg;
    }
    g
}

/// SIMD dot product (two accumulators, fused multiply-add where the CPU has it).
#[inline(always)]
fn sdot<S: pulp::Simd>(simd: S, a: &[f32], b: &[f32]) -> f32 {
    let (ah, at) = S::as_simd_f32s(a);
    let (bh, bt) = S::as_simd_f32s(b);
    let n = ah.len().min(bh.len());
    let (mut acc0, mut acc1) = (simd.splat_f32s(0.0), simd.splat_f32s(0.0));
    let mut k = 0;
    while k + 1 < n {
        acc0 = simd.mul_add_e_f32s(ah[k], bh[k], acc0);
        acc1 = simd.mul_add_e_f32s(ah[k + 1], bh[k + 1], acc1);
        k += 2;
    }
    if k < n {
        acc0 = simd.mul_add_e_f32s(ah[k], bh[k], acc0);
    }
    let mut sum = simd.reduce_sum_f32s(simd.add_f32s(acc0, acc1));
    for t in 0..at.len().min(bt.len()) {
        sum += at[t] * bt[t];
    }
    sum
}

/// SIMD y += a·x.
#[inline(always)]
fn saxpy<S: pulp::Simd>(simd: S, a: f32, x: &[f32], y: &mut [f32]) {
    let (xh, xt) = S::as_simd_f32s(x);
    let (yh, yt) = S::as_mut_simd_f32s(y);
    let av = simd.splat_f32s(a);
    for k in 0..xh.len().min(yh.len()) {
        yh[k] = simd.mul_add_e_f32s(av, xh[k], yh[k]);
    }
    for t in 0..xt.len().min(yt.len()) {
        yt[t] += a * xt[t];
    }
}

/// One row's conjugate-gradient solve, written against `pulp`'s SIMD so that it runs with the
/// widest instructions the CPU has (AVX2/FMA, AVX-512 …) while the crate stays free of `unsafe`.
struct RowSolve<'a> {
    xu: &'a mut [f32],
    r: &'a mut [f32],
    d: &'a mut [f32],
    ad: &'a mut [f32],
    y: &'a [f32],
    yty: &'a [f32],
    cols: &'a [u32],
    ws: &'a [f32],
    p: &'a AlsParams,
}

impl pulp::WithSimd for RowSolve<'_> {
    type Output = ();

    #[inline(always)]
    fn with_simd<S: pulp::Simd>(self, simd: S) {
        let RowSolve {
            xu,
            r,
            d,
            ad,
            y,
            yty,
            cols,
            ws,
            p,
        } = self;
        let f = xu.len();
        // r = b − A·x, b = Σ c·y, A = YᵀY + λI + Σ (c − 1)·y·yᵀ.
        for a in 0..f {
            r[a] = -sdot(simd, &yty[a * f..(a + 1) * f], xu);
        }
        for k in 0..cols.len() {
            let c = 1.0 + p.alpha * ws[k];
            let i = cols[k] as usize;
            let yi = &y[i * f..(i + 1) * f];
            let coef = c - (c - 1.0) * sdot(simd, yi, xu);
            saxpy(simd, coef, yi, r);
        }
        d.copy_from_slice(r);
        let mut rs_old = sdot(simd, r, r);
        for _ in 0..p.cg_steps {
            if rs_old < 1e-20 {
                break;
            }
            for a in 0..f {
                ad[a] = sdot(simd, &yty[a * f..(a + 1) * f], d);
            }
            for k in 0..cols.len() {
                let c = 1.0 + p.alpha * ws[k];
                let i = cols[k] as usize;
                let yi = &y[i * f..(i + 1) * f];
                let coef = (c - 1.0) * sdot(simd, yi, d);
                saxpy(simd, coef, yi, ad);
            }
            let step = rs_old / sdot(simd, d, ad);
            saxpy(simd, step, d, xu);
            saxpy(simd, -step, ad, r);
            let rs_new = sdot(simd, r, r);
            let beta = rs_new / rs_old;
            for a in 0..f {
                d[a] = r[a] + beta * d[a];
            }
            rs_old = rs_new;
        }
    }
}

/// One half-sweep: every row of `x` from its interactions with the rows of `y`.
fn half_sweep(
    x: &mut [f32],
    y: &[f32],
    ptr: &[usize],
    col: &[u32],
    w: &[f32],
    f: usize,
    p: &AlsParams,
) {
    let yty = gram(y, f, p.regularization);
    let arch = pulp::Arch::new();
    x.par_chunks_mut(f).enumerate().for_each_init(
        || (vec![0f32; f], vec![0f32; f], vec![0f32; f]),
        |(r, d, ad), (u, xu)| {
            let (cols, ws) = (&col[ptr[u]..ptr[u + 1]], &w[ptr[u]..ptr[u + 1]]);
            if cols.is_empty() {
                xu.iter_mut().for_each(|v| *v = 0.0);
                return;
            }
            arch.dispatch(RowSolve {
                xu,
                r,
                d,
                ad,
                y,
                yty: &yty,
                cols,
                ws,
                p,
            });
        },
    );
}

impl Als {
    /// Fits user and item factors by alternating conjugate-gradient least squares.
    pub fn fit(m: &Interactions, p: &AlsParams) -> Als {
        let f = p.factors.max(1);
        let mut rng = rand_chacha::ChaCha8Rng::seed_from_u64(p.seed);
        // Small seeded uniform values in ±0.01 / √f.
        let scale = 0.02 / (f as f32).sqrt();
        let mut init = |n: usize| -> Vec<f32> {
            (0..n)
                .map(|_| (rng.random::<f32>() - 0.5) * scale)
                .collect()
        };
        let mut users = init(m.n_users * f);
        let mut items = init(m.n_items * f);
        for _ in 0..p.iterations {
            half_sweep(&mut users, &items, &m.u_ptr, &m.u_item, &m.u_w, f, p);
            half_sweep(&mut items, &users, &m.i_ptr, &m.i_user, &m.i_w, f, p);
        }
        Als {
            factors: f,
            users,
            items,
        }
    }

    /// The predicted preference of every item for user `u`.
    pub fn scores(&self, u: usize, out: &mut [f32]) {
        let f = self.factors;
        let xu = &self.users[u * f..(u + 1) * f];
        for (i, o) in out.iter_mut().enumerate() {
            *o = dot(xu, &self.items[i * f..(i + 1) * f]);
        }
    }

    /// Cosine similarity of two items' factors.
    pub fn item_similarity(&self, a: u32, b: u32) -> f32 {
        let f = self.factors;
        let (x, y) = (
            &self.items[a as usize * f..(a as usize + 1) * f],
            &self.items[b as usize * f..(b as usize + 1) * f],
        );
        let n = (dot(x, x) * dot(y, y)).sqrt();
        if n > 0.0 { dot(x, y) / n } else { 0.0 }
    }
}

/// The top k items by score, skipping `exclude` (sorted ascending); ties by index.
pub fn top_items(scores: &[f32], exclude: &[u32], k: usize) -> Vec<(u32, f32)> {
    let mut v: Vec<(u32, f32)> = scores
        .iter()
        .enumerate()
        .filter(|&(i, s)| s.is_finite() && exclude.binary_search(&(i as u32)).is_err())
        .map(|(i, &s)| (i as u32, s))
        .collect();
    top_k(&mut v, k);
    v
}

/// Maximal marginal relevance: picks k of the candidates (best first), each time the one
/// maximising λ·relevance − (1 − λ)·max similarity to those already picked, with relevance the
/// candidate's score scaled to 0–1 over the candidates; at most `cap` items of one category
/// (`category[i]`, u32::MAX = none) when `cap` > 0. λ = 1 keeps the order (apart from the cap).
pub fn mmr(
    candidates: &[(u32, f32)],
    k: usize,
    lambda: f32,
    cap: usize,
    category: &[u32],
    sim: impl Fn(u32, u32) -> f32,
) -> Vec<u32> {
    let (lo, hi) = candidates
        .iter()
        .fold((f32::INFINITY, f32::NEG_INFINITY), |(l, h), c| {
            (l.min(c.1), h.max(c.1))
        });
    let span = if hi > lo { hi - lo } else { 1.0 };
    let mut left: Vec<(u32, f32)> = candidates
        .iter()
        .map(|&(i, s)| (i, (s - lo) / span))
        .collect();
    let mut picked: Vec<u32> = Vec::with_capacity(k);
    let mut per_cat: std::collections::HashMap<u32, usize> = std::collections::HashMap::new();
    while picked.len() < k && !left.is_empty() {
        let mut best: Option<(usize, f32)> = None;
        for (pos, &(i, rel)) in left.iter().enumerate() {
            let c = category.get(i as usize).copied().unwrap_or(u32::MAX);
            if cap > 0 && c != u32::MAX && per_cat.get(&c).copied().unwrap_or(0) >= cap {
                continue;
            }
            let red = picked.iter().map(|&p| sim(i, p)).fold(0.0f32, f32::max);
            let v = lambda * rel - (1.0 - lambda) * red;
            if best.is_none_or(|b| v > b.1) {
                best = Some((pos, v));
            }
        }
        let Some((pos, _)) = best else { break };
        let (i, _) = left.remove(pos);
        let c = category.get(i as usize).copied().unwrap_or(u32::MAX);
        if c != u32::MAX {
            *per_cat.entry(c).or_default() += 1;
        }
        picked.push(i);
    }
    picked
}

/// Ranking metrics of one list against the relevant items (sorted ascending).
#[derive(Debug, Clone, Copy, Default, PartialEq)]
pub struct ListMetrics {
    /// Relevant items in the list / k.
    pub precision: f64,
    /// Relevant items in the list / relevant items.
    pub recall: f64,
    /// DCG / ideal DCG with binary relevance (log2 discount).
    pub ndcg: f64,
    /// Average precision at k: Σ precision@i over hits / min(relevant, k).
    pub ap: f64,
    /// Whether any relevant item is in the list.
    pub hit: bool,
}

/// Precision, recall, NDCG, average precision and hit of a ranked list at k.
pub fn list_metrics(list: &[u32], relevant: &[u32], k: usize) -> ListMetrics {
    if relevant.is_empty() || k == 0 {
        return ListMetrics::default();
    }
    let (mut hits, mut dcg, mut ap) = (0usize, 0.0, 0.0);
    for (pos, i) in list.iter().take(k).enumerate() {
        if relevant.binary_search(i).is_ok() {
            hits += 1;
            dcg += 1.0 / ((pos + 2) as f64).log2();
            ap += hits as f64 / (pos + 1) as f64;
        }
    }
    let ideal: f64 = (0..relevant.len().min(k))
        .map(|p| 1.0 / ((p + 2) as f64).log2())
        .sum();
    ListMetrics {
        precision: hits as f64 / k as f64,
        recall: hits as f64 / relevant.len() as f64,
        ndcg: dcg / ideal,
        ap: ap / relevant.len().min(k) as f64,
        hit: hits > 0,
    }
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used, reason = "tests")]
    use super::*;

    #[test]
    fn metrics_by_hand() {
        // List [3, 1, 7, 9], relevant {1, 9, 20}, k = 4: hits at ranks 2 and 4.
        let m = list_metrics(&[3, 1, 7, 9], &[1, 9, 20], 4);
        assert!((m.precision - 0.5).abs() < 1e-12);
        assert!((m.recall - 2.0 / 3.0).abs() < 1e-12);
        let dcg = 1.0 / 3f64.log2() + 1.0 / 5f64.log2();
        let idcg = 1.0 + 1.0 / 3f64.log2() + 1.0 / 4f64.log2();
        assert!((m.ndcg - dcg / idcg).abs() < 1e-12);
        assert!((m.ap - (0.5 + 0.5) / 3.0).abs() < 1e-12);
        assert!(m.hit);
    }

    /// Users 0 and 1 hold items {0, 1} with weight 1; user 2 holds {0, 2} with weight `w2`.
    fn three_users(w2: f32) -> Interactions {
        let pairs = vec![
            (0, 0, 1.0),
            (0, 1, 1.0),
            (1, 0, 1.0),
            (1, 1, 1.0),
            (2, 0, w2),
            (2, 2, w2),
        ];
        Interactions::new(3, 3, pairs)
    }

    #[test]
    fn weighted_item_item_reduces_to_cosine_and_follows_weights() {
        let m = three_users(1.0);
        let (a, b) = (
            ItemItem::fit(&m, 10, 0.5),
            ItemItem::fit_weighted(&m, 10, 0.5),
        );
        assert!((a.similarity(0, 1) - b.similarity(0, 1)).abs() < 1e-6);
        // Halve user 2's weights: sim(0, 2) = 0.25 / √((1 + 1 + 0.25) · 0.25) = 1/3.
        let m = three_users(0.5);
        let w = ItemItem::fit_weighted(&m, 10, 0.5);
        assert!((w.similarity(0, 2) - 1.0 / 3.0).abs() < 1e-6);
    }

    #[test]
    fn item_item_cosine_by_hand() {
        // Users: 0 {0,1}, 1 {0,1}, 2 {0,2}. co(0,1) = 2, n0 = 3, n1 = 2 → 2/√6.
        let m = three_users(1.0);
        let ii = ItemItem::fit(&m, 10, 0.5);
        assert!((ii.similarity(0, 1) - 2.0 / 6f32.sqrt()).abs() < 1e-6);
        assert!((ii.similarity(1, 0) - 2.0 / 6f32.sqrt()).abs() < 1e-6);
        assert_eq!(ii.similarity(1, 2), 0.0);
        assert_eq!(ii.neighbours[0][0].0, 1);
    }

    /// ALS by conjugate gradient reaches the exact least-squares solution of each row's normal
    /// equations when given enough steps (checked against a direct solve).
    #[test]
    fn als_rows_solve_the_normal_equations() {
        let m = Interactions::new(
            4,
            5,
            vec![
                (0, 0, 2.0),
                (0, 3, 1.0),
                (1, 1, 1.0),
                (1, 2, 3.0),
                (2, 0, 1.0),
                (2, 4, 1.0),
                (3, 2, 1.0),
                (3, 3, 2.0),
            ],
        );
        let p = AlsParams {
            factors: 3,
            iterations: 3,
            regularization: 0.1,
            alpha: 2.0,
            cg_steps: 3,
            seed: 1,
        };
        let als = Als::fit(&m, &p);
        // One more user half-sweep with many CG steps must equal the direct solution.
        let mut users = als.users.clone();
        let exact = AlsParams { cg_steps: 50, ..p };
        half_sweep(
            &mut users, &als.items, &m.u_ptr, &m.u_item, &m.u_w, 3, &exact,
        );
        for u in 0..4 {
            let f = 3;
            let mut a = gram(&als.items, f, p.regularization)
                .into_iter()
                .map(f64::from)
                .collect::<Vec<_>>();
            let mut b = vec![0f64; f];
            let (cols, ws) = m.user(u);
            for (&i, &w) in cols.iter().zip(ws) {
                let c = 1.0 + f64::from(p.alpha * w);
                let y: Vec<f64> = als.items[i as usize * f..(i as usize + 1) * f]
                    .iter()
                    .map(|&v| f64::from(v))
                    .collect();
                for r in 0..f {
                    b[r] += c * y[r];
                    for s in 0..f {
                        a[r * f + s] += (c - 1.0) * y[r] * y[s];
                    }
                }
            }
            // Gaussian elimination.
            for col in 0..f {
                for row in col + 1..f {
                    let k = a[row * f + col] / a[col * f + col];
                    for s in col..f {
                        a[row * f + s] -= k * a[col * f + s];
                    }
                    b[row] -= k * b[col];
                }
            }
            let mut x = vec![0f64; f];
            for row in (0..f).rev() {
                let s: f64 = (row + 1..f).map(|s| a[row * f + s] * x[s]).sum();
                x[row] = (b[row] - s) / a[row * f + row];
            }
            for r in 0..f {
                assert!(
                    (f64::from(users[u * f + r]) - x[r]).abs() < 1e-3 * x[r].abs().max(1.0),
                    "user {u}: {:?} vs {x:?}",
                    &users[u * f..u * f + f]
                );
            }
        }
    }

    #[test]
    fn mmr_trades_relevance_for_diversity() {
        // Items 0,1 are near-duplicates (sim 0.9), 2 is different.
        let sim = |a: u32, b: u32| {
            if a.min(b) == 0 && a.max(b) == 1 {
                0.9
            } else {
                0.0
            }
        };
        let cands = [(0, 1.0), (1, 0.95), (2, 0.5)];
        assert_eq!(mmr(&cands, 2, 1.0, 0, &[], sim), vec![0, 1]);
        assert_eq!(mmr(&cands, 2, 0.3, 0, &[], sim), vec![0, 2]);
        // A cap of one per category: 0 and 1 share category 7.
        assert_eq!(mmr(&cands, 2, 1.0, 1, &[7, 7, 8], sim), vec![0, 2]);
    }
}
