//! The funnel scan: the deepest ordered step one unit (user or session) reaches within a window,
//! computed exactly as ClickHouse's `windowFunnel` does in each of its modes, plus shoplens's
//! extensions (per-step time limits and exclusion events), which change nothing when unused.
//!
//! Input is one unit's entries `(t, mask)`: bit `k − 1` of `mask` is set when the row satisfies
//! step `k`; a mask of 0 is a row that satisfies no step (kept only in strict-order mode);
//! [`EXCLUDED`] marks an exclusion event. Entries are sorted by `t` with [`sort_entries`]; rows at
//! the same instant are then read as one step-ordered group: unrelated rows and exclusions first,
//! then step 1, step 2, … — so the order rows arrive in never matters.
//!
//! ```
//! use shoplens_models::funnel::{Funnel, Mode, scan, sort_entries};
//! let f = Funnel::new(3, 86_400, Mode::Default);
//! // pv@0, cart@10, buy@86400 (bits 1, 2, 4): the window is inclusive.
//! let mut e = vec![(86_400, 0b100), (0, 0b001), (10, 0b010)];
//! sort_entries(&mut e);
//! assert_eq!(scan(&f, &e).level, 3);
//! ```

/// Mask bit of an exclusion event (so a funnel with exclusions has at most 31 steps).
pub const EXCLUDED: u32 = 1 << 31;

/// Most steps a funnel may have (32 without exclusions, as ClickHouse allows).
pub const MAX_STEPS: usize = 32;

/// ClickHouse `windowFunnel` modes.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum Mode {
    /// No mode: steps in order, equal timestamps allowed, unrelated events ignored.
    #[default]
    Default,
    /// `strict_order`: stop at the first unrelated event, or at a step whose previous step was not
    /// reached, after the first step-1 event.
    StrictOrder,
    /// `strict_increase`: each step strictly later than the previous step's event.
    StrictIncrease,
}

impl Mode {
    /// Parses `default`, `strict-order`/`strict_order`, `strict-increase`/`strict_increase`.
    pub fn parse(s: &str) -> Option<Mode> {
        match s.trim().to_ascii_lowercase().replace('-', "_").as_str() {
            "" | "default" => Some(Mode::Default),
            "strict_order" => Some(Mode::StrictOrder),
            "strict_increase" => Some(Mode::StrictIncrease),
            _ => None,
        }
    }

    /// The mode's name as the CLI spells it.
    pub fn name(self) -> &'static str {
        match self {
            Mode::Default => "default",
            Mode::StrictOrder => "strict-order",
            Mode::StrictIncrease => "strict-increase",
        }
    }
}

/// One funnel's definition.
#[derive(Debug, Clone, PartialEq)]
pub struct Funnel {
    /// Number of ordered steps (1..=32).
    pub steps: usize,
    /// Window from a chain's step-1 timestamp to its last step, inclusive, in the timestamps' unit.
    pub window: i64,
    /// ClickHouse mode.
    pub mode: Mode,
    /// Per-step limits: `step_limits[k − 1]` bounds the time from the event that reached step
    /// k − 1 to step k's event (inclusive); `None` for no limit. Empty means none at all.
    pub step_limits: Vec<Option<i64>>,
}

impl Funnel {
    /// A funnel of `steps` steps within `window`, without step limits.
    pub fn new(steps: usize, window: i64, mode: Mode) -> Funnel {
        Funnel {
            steps,
            window,
            mode,
            step_limits: Vec::new(),
        }
    }

    fn limit(&self, k: usize) -> Option<i64> {
        self.step_limits.get(k - 1).copied().flatten()
    }
}

/// What the scan found for one unit.
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct Reached {
    /// Deepest step reached (0..=steps).
    pub level: usize,
    /// For each reached step k (index k − 1): its chain's step-1 timestamp and the timestamp of the
    /// event that reached step k.
    pub chain: Vec<(i64, i64)>,
}

impl Reached {
    /// Time from the chain's step-1 event to step k's event (k in 1..=level).
    pub fn time_to(&self, k: usize) -> Option<i64> {
        self.chain.get(k.checked_sub(1)?).map(|(s, l)| l - s)
    }

    /// Time to convert to each reached step, in step order ([`Reached::time_to`] of 1..=level).
    pub fn times(&self) -> impl Iterator<Item = i64> + '_ {
        (1..=self.level).filter_map(|k| self.time_to(k))
    }

    /// Timestamp of the event that reached the deepest step.
    pub fn last_ts(&self) -> Option<i64> {
        self.chain.last().map(|c| c.1)
    }
}

/// Sorts one unit's entries by timestamp (the scan reads equal timestamps as one group). Already
/// sorted input (common: files written in time order) costs one pass.
pub fn sort_entries(entries: &mut [(i64, u32)]) {
    if !entries.is_sorted_by_key(|e| e.0) {
        entries.sort_unstable_by_key(|e| e.0);
    }
}

/// Scans one unit's entries, sorted by timestamp (see [`sort_entries`]).
pub fn scan(f: &Funnel, entries: &[(i64, u32)]) -> Reached {
    let n = f.steps.clamp(1, MAX_STEPS);
    let step_bits: u32 = if n == 32 { !0 } else { (1u32 << n) - 1 };
    let strict_order = f.mode == Mode::StrictOrder;
    let strict_increase = f.mode == Mode::StrictIncrease;
    // S[k] for k = 1..=n at index k − 1: (chain start, timestamp that reached k); `set` bit k − 1
    // says S[k] is non-empty. Reached steps are always a prefix, so the level is set's bit length.
    let mut start = [0i64; MAX_STEPS];
    let mut last = [0i64; MAX_STEPS];
    let mut set: u32 = 0;
    let mut seen_first = false;
    let finish = |set: u32, start: &[i64; MAX_STEPS], last: &[i64; MAX_STEPS]| {
        let level = (32 - set.leading_zeros()) as usize;
        Reached {
            level,
            chain: (0..level).map(|i| (start[i], last[i])).collect(),
        }
    };
    let mut i = 0;
    while i < entries.len() {
        let t = entries[i].0;
        let mut steps = 0u32;
        let mut other = false;
        let mut excluded = false;
        while i < entries.len() && entries[i].0 == t {
            let m = entries[i].1;
            if m == 0 {
                other = true;
            } else {
                excluded |= m & EXCLUDED != 0;
                steps |= m;
            }
            i += 1;
        }
        steps &= step_bits & !EXCLUDED;
        // At one instant: unrelated events, then exclusions, then steps 1, 2, … in order.
        if other && strict_order && seen_first {
            return finish(set, &start, &last);
        }
        if excluded {
            // An exclusion voids every partial chain; a new step-1 event starts afresh.
            set = 0;
            seen_first = false;
        }
        while steps != 0 {
            let bit = steps.trailing_zeros() as usize;
            steps &= steps - 1;
            let k = bit + 1;
            if k == 1 {
                start[0] = t;
                last[0] = t;
                set |= 1;
                seen_first = true;
                continue;
            }
            let prev = k - 2;
            let prev_set = set & (1 << prev) != 0;
            if strict_order && seen_first && !prev_set {
                return finish(set, &start, &last);
            }
            if prev_set
                && t <= start[prev].saturating_add(f.window)
                && (!strict_increase || last[prev] < t)
                && f.limit(k).is_none_or(|l| t <= last[prev].saturating_add(l))
            {
                start[bit] = start[prev];
                last[bit] = t;
                set |= 1 << bit;
                if k == n {
                    return finish(set, &start, &last);
                }
            }
        }
    }
    finish(set, &start, &last)
}

#[cfg(test)]
mod tests {
    use super::*;

    const PV: u32 = 1;
    const CART: u32 = 2;
    const BUY: u32 = 4;
    const FAV: u32 = 0;
    const DAY: i64 = 86_400;

    fn level(mode: Mode, rows: &[(i64, u32)]) -> usize {
        let f = Funnel::new(3, DAY, mode);
        let mut e = rows.to_vec();
        if mode != Mode::StrictOrder {
            e.retain(|r| r.1 != 0);
        }
        sort_entries(&mut e);
        let a = scan(&f, &e).level;
        // Row order never matters.
        e.reverse();
        sort_entries(&mut e);
        assert_eq!(scan(&f, &e).level, a, "order-dependent: {rows:?}");
        a
    }

    fn all(rows: &[(i64, u32)]) -> [usize; 3] {
        [
            level(Mode::Default, rows),
            level(Mode::StrictOrder, rows),
            level(Mode::StrictIncrease, rows),
        ]
    }

    #[test]
    fn window_is_inclusive_from_the_chain_start() {
        assert_eq!(all(&[(0, PV), (10, CART), (DAY, BUY)]), [3, 3, 3]);
        assert_eq!(all(&[(0, PV), (10, CART), (DAY + 1, BUY)]), [2, 2, 2]);
        assert_eq!(all(&[(0, PV), (43_200, CART), (129_600, BUY)]), [2, 2, 2]);
    }

    #[test]
    fn equal_timestamps_count_in_step_order() {
        assert_eq!(all(&[(5, BUY), (5, CART), (5, PV)]), [3, 3, 1]);
        assert_eq!(level(Mode::StrictIncrease, &[(0, PV), (0, CART)]), 1);
        assert_eq!(
            level(Mode::StrictIncrease, &[(0, PV), (5, CART), (5, BUY)]),
            2
        );
        // One row satisfying several steps.
        assert_eq!(level(Mode::Default, &[(1, PV | CART | BUY)]), 3);
    }

    #[test]
    fn strict_increase_is_greedy() {
        let r = [(0, PV), (10, PV), (10, CART), (20, BUY)];
        assert_eq!(level(Mode::StrictIncrease, &r), 1);
        let r = [(0, PV), (5, CART), (50, PV), (100, CART), (100, BUY)];
        assert_eq!(level(Mode::StrictIncrease, &r), 2);
    }

    #[test]
    fn repeated_first_step_restarts_only_later_matches() {
        let r = [(0, PV), (86_000, CART), (86_300, PV), (86_500, BUY)];
        assert_eq!(level(Mode::Default, &r), 2);
        let r = [
            (0, PV),
            (100, CART),
            (50_000, PV),
            (60_000, CART),
            (90_000, BUY),
        ];
        assert_eq!(level(Mode::Default, &r), 3);
    }

    #[test]
    fn steps_before_the_first_step_are_ignored() {
        assert_eq!(
            all(&[(0, CART), (10, PV), (20, CART), (30, BUY)]),
            [3, 3, 3]
        );
        assert_eq!(all(&[(0, CART), (10, BUY)]), [0, 0, 0]);
    }

    #[test]
    fn out_of_order_steps() {
        assert_eq!(all(&[(0, PV), (10, BUY), (20, CART)]), [2, 1, 2]);
        assert_eq!(all(&[(0, PV), (10, BUY), (20, CART), (30, BUY)]), [3, 1, 3]);
    }

    #[test]
    fn strict_order_interruptions() {
        let so = |r: &[(i64, u32)]| level(Mode::StrictOrder, r);
        assert_eq!(so(&[(0, PV), (1, FAV), (2, CART), (3, BUY)]), 1);
        assert_eq!(so(&[(0, PV), (1, CART), (2, FAV), (3, BUY)]), 2);
        assert_eq!(so(&[(0, PV), (1, CART), (2, BUY), (3, FAV)]), 3);
        assert_eq!(so(&[(0, FAV), (0, PV), (1, CART), (2, BUY)]), 3);
        assert_eq!(so(&[(0, PV), (7, CART), (7, FAV), (7, BUY)]), 1);
        assert_eq!(so(&[(0, PV), (100_000, CART)]), 1);
        assert_eq!(so(&[(0, PV), (100_000, CART), (100_001, BUY)]), 1);
        assert_eq!(so(&[(0, PV), (1, PV), (2, CART), (3, CART), (4, BUY)]), 3);
    }

    #[test]
    fn duplicates_change_nothing() {
        let r = [(0, PV), (0, PV), (10, CART), (10, CART), (20, BUY)];
        assert_eq!(all(&r), [3, 3, 3]);
    }

    #[test]
    fn default_mode_matches_its_declarative_form() {
        // level = max k with steps 1..k at t1 <= .. <= tk and tk - t1 <= W: brute force over
        // small random logs (a fixed LCG, so the test is deterministic).
        let mut x: u64 = 0x9e37_79b9_7f4a_7c15;
        let mut next = |m: u64| {
            x = x
                .wrapping_mul(6_364_136_223_846_793_005)
                .wrapping_add(1_442_695_040_888_963_407);
            (x >> 33) % m
        };
        for _ in 0..3000 {
            let len = 1 + next(7) as usize;
            let rows: Vec<(i64, u32)> = (0..len)
                .map(|_| (next(6) as i64 * 20, 1 << next(3)))
                .collect();
            let f = Funnel::new(3, 40, Mode::Default);
            let mut e = rows.clone();
            sort_entries(&mut e);
            let got = scan(&f, &e).level;
            let mut want = 0;
            for a in rows.iter().filter(|r| r.1 == PV) {
                want = want.max(1);
                for b in rows
                    .iter()
                    .filter(|r| r.1 == CART && r.0 >= a.0 && r.0 - a.0 <= 40)
                {
                    want = want.max(2);
                    if rows
                        .iter()
                        .any(|c| c.1 == BUY && c.0 >= b.0 && c.0 - a.0 <= 40)
                    {
                        want = 3;
                    }
                }
            }
            assert_eq!(got, want, "{rows:?}");
        }
    }

    #[test]
    fn times_to_convert_come_from_each_steps_chain() {
        let f = Funnel::new(3, DAY, Mode::Default);
        let e = [
            (0, PV),
            (100, CART),
            (50_000, PV),
            (60_000, CART),
            (90_000, BUY),
        ];
        let r = scan(&f, &e);
        assert_eq!(r.level, 3);
        assert_eq!(r.time_to(1), Some(0));
        assert_eq!(r.time_to(2), Some(10_000));
        assert_eq!(r.time_to(3), Some(40_000));
        assert_eq!(r.last_ts(), Some(90_000));
    }

    #[test]
    fn step_limits_bound_each_step_from_the_previous() {
        let mut f = Funnel::new(3, DAY, Mode::Default);
        f.step_limits = vec![None, Some(3_600), None];
        let e = [(0, PV), (3_600, CART), (50_000, BUY)];
        assert_eq!(scan(&f, &e).level, 3);
        let e = [(0, PV), (3_601, CART), (50_000, BUY)];
        assert_eq!(scan(&f, &e).level, 1);
        // Unused limits change nothing.
        let plain = Funnel::new(3, DAY, Mode::Default);
        f.step_limits = vec![None; 3];
        assert_eq!(scan(&f, &e), scan(&plain, &e));
    }

    #[test]
    fn exclusions_void_partial_chains() {
        let f = Funnel::new(3, DAY, Mode::Default);
        let x = EXCLUDED;
        assert_eq!(scan(&f, &[(0, PV), (5, CART), (7, x), (9, BUY)]).level, 0);
        assert_eq!(
            scan(
                &f,
                &[(0, PV), (5, CART), (7, x), (8, PV), (9, CART), (10, BUY)]
            )
            .level,
            3
        );
        // After completion an exclusion changes nothing; before step 1 it voids nothing.
        assert_eq!(scan(&f, &[(0, PV), (5, CART), (6, BUY), (7, x)]).level, 3);
        assert_eq!(scan(&f, &[(0, x), (1, PV), (5, CART), (6, BUY)]).level, 3);
    }
}
