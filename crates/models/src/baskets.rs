//! Market baskets: frequent itemsets by FP-growth and single-consequent association rules.
//!
//! Items are dense indices `0..n_items`; a basket is a set of distinct items. Thresholds are exact
//! decimals ([`Threshold`]) compared on integer counts, so "support ≥ 0.001 of 9,835 baskets"
//! means "in at least 10 baskets", never a float that rounds the wrong way.
//!
//! FP-growth (Han, Pei & Yin 2000): the frequent items of every basket, most frequent first, are
//! inserted into a prefix tree with counts; the itemsets ending in an item are mined from the
//! conditional tree built from that item's prefix paths, recursively. A conditional tree that is a
//! single path yields all its combinations at once. The top-level items are mined in parallel.

use rayon::prelude::*;
use rustc_hash::FxHashMap;

/// An exact non-negative decimal threshold `num / den` (den a power of ten).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Threshold {
    num: u128,
    den: u128,
}

/// Most fractional digits a threshold may have (keeps every comparison inside u128).
const MAX_FRACTION_DIGITS: usize = 12;

impl Threshold {
    /// No threshold: everything reaches 0.
    pub const ZERO: Threshold = Threshold { num: 0, den: 1 };

    /// Parses a decimal such as `0.001`, `1`, `1.5` (no exponent, no sign).
    pub fn parse(text: &str) -> Result<Threshold, crate::Error> {
        let t = text.trim();
        let (int, frac) = t.split_once('.').unwrap_or((t, ""));
        let ok = |s: &str| s.bytes().all(|b| b.is_ascii_digit());
        if (int.is_empty() && frac.is_empty()) || !ok(int) || !ok(frac) {
            return Err(crate::Error::NotADecimal { text: text.into() });
        }
        let frac = frac.trim_end_matches('0');
        if frac.len() > MAX_FRACTION_DIGITS || int.trim_start_matches('0').len() > 9 {
            return Err(crate::Error::TooManyDigits {
                text: text.into(),
                max_fraction: MAX_FRACTION_DIGITS,
            });
        }
        let den = 10u128.pow(frac.len() as u32);
        let whole: u128 = if int.is_empty() {
            0
        } else {
            int.parse()
                .map_err(|_| crate::Error::NotADecimal { text: text.into() })?
        };
        let part: u128 = if frac.is_empty() {
            0
        } else {
            frac.parse()
                .map_err(|_| crate::Error::NotADecimal { text: text.into() })?
        };
        Ok(Threshold {
            num: whole * den + part,
            den,
        })
    }

    /// The threshold a float stands for, read from its shortest decimal form (0.001 is 1/1000).
    pub fn from_f64(x: f64) -> Result<Threshold, crate::Error> {
        if !x.is_finite() || x < 0.0 {
            return Err(crate::Error::NotADecimal {
                text: x.to_string(),
            });
        }
        Threshold::parse(&format!("{x}"))
    }

    /// The threshold as a float (for display).
    pub fn value(self) -> f64 {
        self.num as f64 / self.den as f64
    }

    /// `a / b ≥ self`, exactly. A zero denominator never passes.
    pub fn reached_by(self, a: u128, b: u128) -> bool {
        b > 0 && a * self.den >= self.num * b
    }

    /// The smallest count c with `c / n ≥ self`.
    pub fn min_count(self, n: u64) -> u64 {
        let need = self.num * u128::from(n);
        need.div_ceil(self.den) as u64
    }
}

/// Baskets in compressed rows: basket b holds `items[offsets[b]..offsets[b + 1]]`, sorted, distinct.
#[derive(Debug, Clone, Default)]
pub struct Baskets {
    offsets: Vec<usize>,
    items: Vec<u32>,
    n_items: u32,
}

impl Baskets {
    /// An empty set of baskets over `n_items` items.
    pub fn new(n_items: u32) -> Baskets {
        Baskets {
            offsets: vec![0],
            items: Vec::new(),
            n_items,
        }
    }

    /// Adds a basket (duplicates are removed; items must be below `n_items`).
    pub fn push(&mut self, items: &[u32]) {
        let start = self.items.len();
        self.items
            .extend(items.iter().filter(|&&i| i < self.n_items));
        self.items[start..].sort_unstable();
        let mut w = start;
        for r in start..self.items.len() {
            if w == start || self.items[r] != self.items[w - 1] {
                self.items[w] = self.items[r];
                w += 1;
            }
        }
        self.items.truncate(w);
        self.offsets.push(self.items.len());
    }

    /// Baskets from (basket, item) pairs, in any order and with repeats; basket indices are dense.
    pub fn from_pairs(mut pairs: Vec<(u32, u32)>, n_baskets: u32, n_items: u32) -> Baskets {
        pairs.sort_unstable();
        pairs.dedup();
        let mut offsets = vec![0usize; n_baskets as usize + 1];
        for &(b, _) in &pairs {
            if b < n_baskets {
                offsets[b as usize + 1] += 1;
            }
        }
        for k in 1..offsets.len() {
            offsets[k] += offsets[k - 1];
        }
        let items = pairs
            .into_iter()
            .filter(|&(b, i)| b < n_baskets && i < n_items)
            .map(|(_, i)| i)
            .collect();
        Baskets {
            offsets,
            items,
            n_items,
        }
    }

    /// Number of baskets.
    pub fn len(&self) -> usize {
        self.offsets.len() - 1
    }

    /// Whether there are no baskets.
    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }

    /// Number of distinct item indices.
    pub fn n_items(&self) -> u32 {
        self.n_items
    }

    /// The items of basket `b`, sorted.
    pub fn get(&self, b: usize) -> &[u32] {
        &self.items[self.offsets[b]..self.offsets[b + 1]]
    }

    /// Baskets holding each item.
    pub fn item_counts(&self) -> Vec<u64> {
        let mut c = vec![0u64; self.n_items as usize];
        for &i in &self.items {
            c[i as usize] += 1;
        }
        c
    }

    /// Bytes held (for memory figures).
    pub fn heap_bytes(&self) -> usize {
        self.offsets.capacity() * size_of::<usize>() + self.items.capacity() * size_of::<u32>()
    }
}

/// A frequent itemset: items (sorted item indices) and the number of baskets holding them all.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Itemset {
    /// Item indices, ascending.
    pub items: Vec<u32>,
    /// Baskets holding every item.
    pub count: u64,
}

const NONE: u32 = u32::MAX;

/// An FP-tree over local items `0..global.len()` (0 = most frequent in this tree).
struct Tree {
    item: Vec<u32>,
    count: Vec<u64>,
    parent: Vec<u32>,
    first_child: Vec<u32>,
    next_same: Vec<u32>,
    head: Vec<u32>,
    support: Vec<u64>,
    /// Global rank of each local item.
    global: Vec<u32>,
    branching: bool,
}

impl Tree {
    fn new(global: Vec<u32>, nodes: usize) -> Tree {
        let m = global.len();
        let mut t = Tree {
            item: Vec::with_capacity(nodes + 1),
            count: Vec::with_capacity(nodes + 1),
            parent: Vec::with_capacity(nodes + 1),
            first_child: Vec::with_capacity(nodes + 1),
            next_same: Vec::with_capacity(nodes + 1),
            head: vec![NONE; m],
            support: vec![0; m],
            global,
            branching: false,
        };
        t.add_node(NONE, NONE);
        t
    }

    fn add_node(&mut self, item: u32, parent: u32) -> u32 {
        let id = self.item.len() as u32;
        self.item.push(item);
        self.count.push(0);
        self.parent.push(parent);
        self.first_child.push(NONE);
        if item == NONE {
            self.next_same.push(NONE);
        } else {
            self.next_same.push(self.head[item as usize]);
            self.head[item as usize] = id;
            let p = parent as usize;
            if self.first_child[p] != NONE {
                self.branching = true;
            }
            self.first_child[p] = id;
        }
        id
    }

    /// Builds the tree from weighted paths of local items (each ascending), given as spans of a
    /// flat buffer. The paths are sorted first, so that paths sharing a prefix arrive together and
    /// every node is found on the stack of the previous path: no child lookups at all.
    fn build(global: Vec<u32>, items: &[u32], spans: &mut [(u32, u32, u64)]) -> Tree {
        let path = |s: &(u32, u32, u64)| &items[s.0 as usize..(s.0 + s.1) as usize];
        spans.sort_unstable_by(|a, b| path(a).cmp(path(b)));
        let mut t = Tree::new(global, spans.len() * 2);
        let mut stack: Vec<u32> = Vec::new();
        let mut prev: &[u32] = &[];
        for s in spans.iter() {
            let p = path(s);
            let common = p.iter().zip(prev).take_while(|(a, b)| a == b).count();
            stack.truncate(common);
            for &node in &stack {
                t.count[node as usize] += s.2;
                t.support[t.item[node as usize] as usize] += s.2;
            }
            for &it in &p[common..] {
                let node = t.add_node(it, stack.last().copied().unwrap_or(0));
                t.count[node as usize] += s.2;
                t.support[it as usize] += s.2;
                stack.push(node);
            }
            prev = p;
        }
        t
    }
}

/// Scratch buffers reused down one branch of the recursion.
#[derive(Default)]
struct Scratch {
    counts: Vec<u64>,
    path: Vec<u32>,
    spans: Vec<(u32, u32, u64)>,
}

struct Miner {
    min_count: u64,
    max_len: usize,
}

impl Miner {
    fn emit(out: &mut Vec<Itemset>, prefix: &[u32], count: u64) {
        let mut items = prefix.to_vec();
        items.sort_unstable();
        out.push(Itemset { items, count });
    }

    /// Mines every frequent itemset of `tree` that ends (in tree order) with local item `local`.
    fn mine_item(
        &self,
        tree: &Tree,
        local: usize,
        prefix: &mut Vec<u32>,
        scratch: &mut Scratch,
        out: &mut Vec<Itemset>,
    ) {
        let support = tree.support[local];
        if support < self.min_count {
            return;
        }
        prefix.push(tree.global[local]);
        Self::emit(out, prefix, support);
        if prefix.len() < self.max_len
            && local > 0
            && let Some(cond) = self.conditional(tree, local, scratch)
        {
            self.mine_tree(&cond, prefix, out);
        }
        prefix.pop();
    }

    fn mine_tree(&self, tree: &Tree, prefix: &mut Vec<u32>, out: &mut Vec<Itemset>) {
        if !tree.branching {
            // A single path: every combination of its nodes, the deepest chosen node's count.
            let mut path = Vec::new();
            let mut node = tree.first_child[0];
            while node != NONE {
                path.push(node);
                node = tree.first_child[node as usize];
            }
            self.combinations(tree, &path, 0, prefix, out);
            return;
        }
        let mut scratch = Scratch::default();
        for local in (0..tree.global.len()).rev() {
            self.mine_item(tree, local, prefix, &mut scratch, out);
        }
    }

    fn combinations(
        &self,
        tree: &Tree,
        path: &[u32],
        start: usize,
        prefix: &mut Vec<u32>,
        out: &mut Vec<Itemset>,
    ) {
        for j in start..path.len() {
            let node = path[j] as usize;
            let count = tree.count[node];
            if count < self.min_count {
                break;
            }
            prefix.push(tree.global[tree.item[node] as usize]);
            Self::emit(out, prefix, count);
            if prefix.len() < self.max_len {
                self.combinations(tree, path, j + 1, prefix, out);
            }
            prefix.pop();
        }
    }

    /// The conditional tree of `local`'s prefix paths, restricted to items frequent in them.
    fn conditional(&self, tree: &Tree, local: usize, s: &mut Scratch) -> Option<Tree> {
        s.counts.clear();
        s.counts.resize(local, 0);
        let mut node = tree.head[local];
        while node != NONE {
            let w = tree.count[node as usize];
            let mut p = tree.parent[node as usize];
            while p != 0 {
                s.counts[tree.item[p as usize] as usize] += w;
                p = tree.parent[p as usize];
            }
            node = tree.next_same[node as usize];
        }
        let mut keep: Vec<u32> = (0..local as u32)
            .filter(|&i| s.counts[i as usize] >= self.min_count)
            .collect();
        if keep.is_empty() {
            return None;
        }
        // Most frequent first in the conditional tree; ties by the parent tree's order.
        keep.sort_by(|&a, &b| {
            s.counts[b as usize]
                .cmp(&s.counts[a as usize])
                .then(a.cmp(&b))
        });
        let mut remap = vec![NONE; local];
        for (new, &old) in keep.iter().enumerate() {
            remap[old as usize] = new as u32;
        }
        let global = keep.iter().map(|&o| tree.global[o as usize]).collect();
        s.path.clear();
        s.spans.clear();
        let mut node = tree.head[local];
        while node != NONE {
            let w = tree.count[node as usize];
            let start = s.path.len();
            let mut p = tree.parent[node as usize];
            while p != 0 {
                let r = remap[tree.item[p as usize] as usize];
                if r != NONE {
                    s.path.push(r);
                }
                p = tree.parent[p as usize];
            }
            s.path[start..].sort_unstable();
            if s.path.len() > start {
                s.spans
                    .push((start as u32, (s.path.len() - start) as u32, w));
            }
            node = tree.next_same[node as usize];
        }
        let cond = Tree::build(global, &s.path, &mut s.spans);
        Some(cond)
    }
}

/// Every itemset of at most `max_len` items held by at least `min_count` baskets, by FP-growth.
/// Sorted by descending count, then by items.
pub fn frequent_itemsets(baskets: &Baskets, min_count: u64, max_len: usize) -> Vec<Itemset> {
    let min_count = min_count.max(1);
    if max_len == 0 {
        return Vec::new();
    }
    let counts = baskets.item_counts();
    let mut frequent: Vec<u32> = (0..baskets.n_items())
        .filter(|&i| counts[i as usize] >= min_count)
        .collect();
    frequent.sort_by(|&a, &b| counts[b as usize].cmp(&counts[a as usize]).then(a.cmp(&b)));
    let mut rank = vec![NONE; baskets.n_items() as usize];
    for (r, &i) in frequent.iter().enumerate() {
        rank[i as usize] = r as u32;
    }
    let mut flat: Vec<u32> = Vec::with_capacity(baskets.items.len());
    let mut spans: Vec<(u32, u32, u64)> = Vec::with_capacity(baskets.len());
    for b in 0..baskets.len() {
        let start = flat.len();
        flat.extend(
            baskets
                .get(b)
                .iter()
                .map(|&i| rank[i as usize])
                .filter(|&r| r != NONE),
        );
        flat[start..].sort_unstable();
        if flat.len() > start {
            spans.push((start as u32, (flat.len() - start) as u32, 1));
        }
    }
    let tree = Tree::build(frequent, &flat, &mut spans);
    drop(flat);
    drop(spans);
    let miner = Miner { min_count, max_len };
    let mut out: Vec<Itemset> = (0..tree.global.len())
        .into_par_iter()
        .map(|local| {
            let mut out = Vec::new();
            let mut prefix = Vec::new();
            let mut scratch = Scratch::default();
            miner.mine_item(&tree, local, &mut prefix, &mut scratch, &mut out);
            out
        })
        .flatten()
        .collect();
    out.sort_unstable_by(|a, b| b.count.cmp(&a.count).then_with(|| a.items.cmp(&b.items)));
    out
}

/// An association rule `antecedent → consequent` with one item on the right.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Rule {
    /// Items on the left, ascending.
    pub antecedent: Vec<u32>,
    /// The item on the right.
    pub consequent: u32,
    /// Baskets holding antecedent ∪ consequent.
    pub count: u64,
    /// Baskets holding the antecedent.
    pub antecedent_count: u64,
    /// Baskets holding the consequent.
    pub consequent_count: u64,
}

impl Rule {
    /// Share of baskets holding antecedent ∪ consequent.
    pub fn support(&self, n: u64) -> f64 {
        self.count as f64 / n as f64
    }

    /// Share of the antecedent's baskets that also hold the consequent.
    pub fn confidence(&self) -> f64 {
        self.count as f64 / self.antecedent_count as f64
    }

    /// Confidence over the consequent's support.
    pub fn lift(&self, n: u64) -> f64 {
        self.confidence() / (self.consequent_count as f64 / n as f64)
    }

    /// Support minus the support expected under independence.
    pub fn leverage(&self, n: u64) -> f64 {
        let n = n as f64;
        self.count as f64 / n
            - (self.antecedent_count as f64 / n) * (self.consequent_count as f64 / n)
    }

    /// (1 − support of the consequent) / (1 − confidence); `None` when the confidence is 1.
    pub fn conviction(&self, n: u64) -> Option<f64> {
        if self.count == self.antecedent_count {
            return None;
        }
        Some((1.0 - self.consequent_count as f64 / n as f64) / (1.0 - self.confidence()))
    }
}

/// Thresholds of a rule search; all inclusive.
#[derive(Debug, Clone, Copy)]
pub struct RuleThresholds {
    /// Minimum confidence.
    pub confidence: Threshold,
    /// Minimum lift.
    pub lift: Threshold,
}

/// Every single-consequent rule from the itemsets (of two or more items) whose confidence and lift
/// reach the thresholds. `itemsets` must hold every subset of each itemset (as FP-growth gives).
/// Sorted by descending lift, then confidence, then count, then items.
pub fn rules(itemsets: &[Itemset], n_baskets: u64, t: RuleThresholds) -> Vec<Rule> {
    let index: FxHashMap<&[u32], u64> = itemsets
        .iter()
        .map(|s| (s.items.as_slice(), s.count))
        .collect();
    let mut out: Vec<Rule> = itemsets
        .par_iter()
        .filter(|s| s.items.len() >= 2)
        .flat_map_iter(|s| {
            let mut found = Vec::new();
            let mut ante = Vec::with_capacity(s.items.len() - 1);
            for (k, &c) in s.items.iter().enumerate() {
                ante.clear();
                ante.extend(
                    s.items
                        .iter()
                        .enumerate()
                        .filter(|&(j, _)| j != k)
                        .map(|(_, &i)| i),
                );
                let (Some(&ac), Some(&cc)) = (index.get(ante.as_slice()), index.get(&[c][..]))
                else {
                    continue;
                };
                let conf_ok = t.confidence.reached_by(u128::from(s.count), u128::from(ac));
                let lift_ok = t.lift.reached_by(
                    u128::from(s.count) * u128::from(n_baskets),
                    u128::from(ac) * u128::from(cc),
                );
                if conf_ok && lift_ok {
                    found.push(Rule {
                        antecedent: ante.clone(),
                        consequent: c,
                        count: s.count,
                        antecedent_count: ac,
                        consequent_count: cc,
                    });
                }
            }
            found
        })
        .collect();
    out.sort_unstable_by(|a, b| {
        let l = |r: &Rule| {
            (
                r.count as u128 * n_baskets as u128,
                r.antecedent_count as u128 * r.consequent_count as u128,
            )
        };
        let ((an, ad), (bn, bd)) = (l(a), l(b));
        (bn * ad)
            .cmp(&(an * bd))
            .then_with(|| {
                (b.count as u128 * a.antecedent_count as u128)
                    .cmp(&(a.count as u128 * b.antecedent_count as u128))
            })
            .then_with(|| b.count.cmp(&a.count))
            .then_with(|| a.antecedent.cmp(&b.antecedent))
            .then_with(|| a.consequent.cmp(&b.consequent))
    });
    out
}

/// A seeded synthetic basket set for benchmarks: basket sizes 1 + Poisson(3), items drawn by a
/// Zipf law (exponent 1.1) over `n_items`, and 20 planted groups (pairs and triples of mid-popular
/// items) each added to 1% of baskets, so strong rules exist. Deterministic for a seed.
pub fn generate(n_baskets: usize, n_items: u32, seed: u64) -> Baskets {
    use rand::{Rng, SeedableRng};
    use rand_distr::{Distribution, Poisson, Zipf};
    let n_items = n_items.max(100);
    let mut rng = rand_chacha::ChaCha8Rng::seed_from_u64(seed);
    let mut b = Baskets::new(n_items);
    let (Ok(size), Ok(zipf)) = (Poisson::new(3.0), Zipf::new(f64::from(n_items), 1.1)) else {
        return b;
    };
    let groups: Vec<Vec<u32>> = (0..20u32)
        .map(|g| (0..2 + g % 2).map(|k| 50 + g * 7 + k * 3).collect())
        .collect();
    let mut items = Vec::new();
    for _ in 0..n_baskets {
        items.clear();
        let n = 1 + size.sample(&mut rng) as usize;
        items.extend((0..n).map(|_| zipf.sample(&mut rng) as u32 - 1));
        if rng.random_bool(0.2) {
            items.extend(&groups[rng.random_range(0..groups.len())]);
        }
        b.push(&items);
    }
    b
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used, reason = "tests")]
    use super::*;

    /// Every itemset counted by brute force over all subsets of each basket.
    fn brute(b: &Baskets, min_count: u64, max_len: usize) -> Vec<Itemset> {
        let mut counts: FxHashMap<Vec<u32>, u64> = FxHashMap::default();
        for k in 0..b.len() {
            let items = b.get(k);
            for mask in 1u32..(1 << items.len()) {
                if (mask.count_ones() as usize) <= max_len {
                    let s: Vec<u32> = (0..items.len())
                        .filter(|j| mask & (1 << j) != 0)
                        .map(|j| items[j])
                        .collect();
                    *counts.entry(s).or_default() += 1;
                }
            }
        }
        let mut v: Vec<Itemset> = counts
            .into_iter()
            .filter(|&(_, c)| c >= min_count)
            .map(|(items, count)| Itemset { items, count })
            .collect();
        v.sort_unstable_by(|a, b| b.count.cmp(&a.count).then_with(|| a.items.cmp(&b.items)));
        v
    }

    #[test]
    fn fp_growth_equals_brute_force_on_seeded_baskets() {
        use rand::{Rng, SeedableRng};
        let mut rng = rand_chacha::ChaCha8Rng::seed_from_u64(7);
        for round in 0..20 {
            let n_items = 4 + round % 9;
            let mut b = Baskets::new(n_items);
            for _ in 0..(30 + round * 7) {
                let len = rng.random_range(0..=n_items.min(8));
                let items: Vec<u32> = (0..len)
                    .map(|_| {
                        // Skewed popularity: low indices more often.
                        let x: f64 = rng.random();
                        ((x * x) * f64::from(n_items)) as u32
                    })
                    .collect();
                b.push(&items);
            }
            for min_count in [1, 2, 3, 5] {
                for max_len in [1, 2, 3, 8] {
                    assert_eq!(
                        frequent_itemsets(&b, min_count, max_len),
                        brute(&b, min_count, max_len),
                        "round {round} min {min_count} len {max_len}"
                    );
                }
            }
        }
    }

    #[test]
    fn thresholds_are_exact_decimals() {
        let t = Threshold::parse("0.001").unwrap();
        assert_eq!(t.min_count(9835), 10); // 9.835 → 10
        assert_eq!(t.min_count(10_000), 10); // exactly 10, inclusive
        assert_eq!(Threshold::from_f64(0.1).unwrap().min_count(30), 3); // 0.1 × 30 = 3, not 3.0000000000000004
        assert!(Threshold::parse("0.5").unwrap().reached_by(1, 2));
        assert!(!Threshold::parse("0.5").unwrap().reached_by(49, 99));
        assert!(Threshold::parse("-1").is_err() && Threshold::parse("1e-3").is_err());
        assert_eq!(
            Threshold::parse("1.50").unwrap(),
            Threshold::parse("1.5").unwrap()
        );
    }

    #[test]
    fn rules_by_hand() {
        // 4 baskets: {0,1} ×2, {0} , {1,2}. Rule 0→1: count 2, conf 2/3, lift (2/3)/(3/4) = 8/9.
        let mut b = Baskets::new(3);
        for s in [&[0, 1][..], &[0, 1], &[0], &[1, 2]] {
            b.push(s);
        }
        let sets = frequent_itemsets(&b, 1, 3);
        let t = RuleThresholds {
            confidence: Threshold::parse("0.6").unwrap(),
            lift: Threshold::parse("0").unwrap(),
        };
        let r = rules(&sets, 4, t);
        let r01 = r
            .iter()
            .find(|r| r.antecedent == [0] && r.consequent == 1)
            .unwrap();
        assert!((r01.confidence() - 2.0 / 3.0).abs() < 1e-15);
        assert!((r01.lift(4) - 8.0 / 9.0).abs() < 1e-15);
        assert!((r01.leverage(4) - (0.5 - 0.75 * 0.75)).abs() < 1e-15);
        assert!((r01.conviction(4).unwrap() - 0.25 / (1.0 / 3.0)).abs() < 1e-12);
        // 2 → 1 holds every time: confidence 1, conviction undefined.
        let r21 = r
            .iter()
            .find(|r| r.antecedent == [2] && r.consequent == 1)
            .unwrap();
        assert_eq!(r21.conviction(4), None);
        // 1 → 0: conf 2/3 passes 0.6; 1 → 2: 1/3 does not.
        assert!(!r.iter().any(|r| r.antecedent == [1] && r.consequent == 2));
    }
}
