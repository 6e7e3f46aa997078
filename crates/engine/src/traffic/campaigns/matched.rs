//! The matched estimator, for a campaign with a member list but no randomised holdout: treated
//! members against non-members matched on their behaviour at the campaign's start, difference
//! in differences over equally long windows before and during the campaign, with an interval
//! from a seeded bootstrap over customers. Observational: it holds only if matched customers
//! would have moved alike without the campaign, which the pre-period trend check probes.

use std::collections::BTreeMap;

use rustc_hash::FxHashMap;
use shoplens_models::did::{self, Did, Unit};

use super::super::{batches, margin_sql, margins, nz};
use crate::error::Result;
use crate::sql::{PAID, floats, ints, strings, texts};
use crate::storage::workspace::Workspace;

/// Bootstrap replicates.
const REPS: usize = 400;
/// One day in microseconds.
const DAY: f64 = 86_400e6;

/// The metrics of each customer, in the order the estimate lists them: changes (during −
/// before) of conversion, orders, revenue and gross margin; the pre-period trend (revenue
/// before − revenue in the window before that); then levels during the campaign, for the
/// AOV and margin rate of each side: revenue, orders, line revenue, gross margin.
pub(super) const CONVERSION: usize = 0;
pub(super) const ORDERS: usize = 1;
pub(super) const REVENUE: usize = 2;
pub(super) const MARGIN: usize = 3;
pub(super) const PRE_TREND: usize = 4;
pub(super) const REVENUE_DURING: usize = 5;
pub(super) const ORDERS_DURING: usize = 6;
pub(super) const LINES_DURING: usize = 7;
pub(super) const MARGIN_DURING: usize = 8;
const METRICS: usize = 9;

/// One campaign's matched estimate.
#[derive(Debug)]
pub(super) struct Matched {
    /// None when no treated member has a comparable non-member.
    pub(super) did: Option<Did>,
    /// Every order line of the windows carries a cost.
    pub(super) margin_known: bool,
    /// Most members joined during the campaign: matched on registration week and acquisition
    /// channel, with no before window (there is no pre-trend to check).
    pub(super) acquisition: bool,
}

/// One customer's figures for one campaign.
#[derive(Debug, Default, Clone)]
struct Customer {
    user: String,
    member: bool,
    registered: Option<f64>,
    channel: Option<String>,
    /// Last paid order before the matching point (two windows before the start).
    last: Option<f64>,
    /// Paid orders before the matching point.
    frequency: i64,
    /// (orders, revenue) in four equally long windows: the one ending at the matching point,
    /// the one before the before window (for the pre-period check), the before window, and the
    /// campaign's window.
    windows: [(f64, f64); 4],
    /// (line revenue, gross margin) before and during.
    lines: [(f64, f64); 2],
}

/// The band of a value among ascending edges: 0 below the first, …, edges.len() above the last.
fn band(x: f64, edges: &[f64]) -> u64 {
    edges.iter().filter(|e| x > **e).count() as u64
}

/// The cell a customer of an existing-customer campaign is matched on, as of the matching point
/// `at` (two windows before the start, so the windows compared are not the ones matched on and
/// the matched groups do not regress to their means between them): days since registering,
/// recency of the last paid order, paid orders, and spend in the window just before (quartiles
/// of the members' positive spends).
fn cell(c: &Customer, at: f64, spend_edges: &[f64]) -> u64 {
    let days = [30.0, 90.0, 180.0, 365.0];
    let tenure = c.registered.map_or(5, |r| band((at - r) / DAY, &days));
    let recency = match c.last {
        None => 0,
        Some(t) => 1 + band((at - t) / DAY, &days),
    };
    let frequency = band(c.frequency as f64, &[0.0, 1.0, 2.0, 4.0, 9.0]);
    let spend = if c.windows[0].1 > 0.0 {
        1 + band(c.windows[0].1, spend_edges)
    } else {
        0
    };
    tenure * 1000 + recency * 100 + frequency * 10 + spend
}

/// Quartile edges of positive values.
fn quartiles(mut v: Vec<f64>) -> Vec<f64> {
    v.retain(|x| *x > 0.0);
    if v.is_empty() {
        return Vec::new();
    }
    v.sort_unstable_by(f64::total_cmp);
    let mut e: Vec<f64> = (1..4).map(|q| v[(v.len() - 1) * q / 4]).collect();
    e.dedup();
    e
}

/// A seed from the campaign id (FNV-1a), so every run draws the same replicates.
fn seed(id: &str) -> u64 {
    id.bytes().fold(0xcbf2_9ce4_8422_2325, |h, b| {
        (h ^ u64::from(b)).wrapping_mul(0x100_0000_01b3)
    })
}

/// Matched estimates for the campaigns in `windows` (id, start, end; microseconds): each with
/// a member list and no holdout.
pub(super) async fn estimates(
    ws: &Workspace,
    windows: &[(String, i64, i64)],
) -> Result<FxHashMap<String, Matched>> {
    let mut out = FxHashMap::default();
    if windows.is_empty() {
        return Ok(out);
    }
    let w = super::windows_table(windows);
    let users = "(SELECT user_id, min(r) AS reg, min(ch) AS ch FROM \
                 (SELECT user_id, CAST(registered_at AS BIGINT) AS r, acquisition_channel AS ch FROM customers \
                  UNION ALL SELECT DISTINCT user_id, CAST(NULL AS BIGINT), CAST(NULL AS VARCHAR) FROM orders) \
                 WHERE user_id IS NOT NULL GROUP BY 1)";
    let members = "(SELECT DISTINCT campaign_id, user_id FROM campaign_members \
                   WHERE user_id IS NOT NULL AND NOT coalesce(holdout, false))";
    let phase = |lo: &str, hi: &str| {
        format!(
            "CAST(count(CASE WHEN o.t >= {lo} AND o.t < {hi} THEN 1 END) AS BIGINT), \
             CAST(sum(CASE WHEN o.t >= {lo} AND o.t < {hi} THEN o.net_amount END) AS DOUBLE)"
        )
    };
    let q = format!(
        "SELECT x.campaign_id, u.user_id, CAST(u.reg AS DOUBLE), u.ch, CAST(m.user_id IS NOT NULL AS BIGINT), \
                CAST(max(CASE WHEN o.t < x.s - 2 * x.l THEN o.t END) AS DOUBLE), \
                CAST(count(CASE WHEN o.t < x.s - 2 * x.l THEN 1 END) AS BIGINT), {}, {}, {}, {} \
         FROM {w} x CROSS JOIN {users} u \
         LEFT JOIN {members} m ON m.campaign_id = x.campaign_id AND m.user_id = u.user_id \
         LEFT JOIN (SELECT user_id, CAST(ts AS BIGINT) AS t, net_amount FROM orders WHERE {PAID}) o \
              ON o.user_id = u.user_id AND o.t < x.e \
         GROUP BY 1, 2, 3, 4, 5",
        phase("x.s - 3 * x.l", "x.s - 2 * x.l"),
        phase("x.s - 2 * x.l", "x.s - x.l"),
        phase("x.s - x.l", "x.s"),
        phase("x.s", "x.e"),
    );
    let t = "CAST(o.ts AS BIGINT)";
    let lines = margins(
        ws,
        &margin_sql(
            &format!(
                "x.campaign_id || '|' || o.user_id || '|' || CASE WHEN {t} >= x.s THEN 'd' ELSE 'b' END"
            ),
            &format!("{w} x JOIN orders o ON {t} >= x.s - x.l AND {t} < x.e"),
            "o.user_id IS NOT NULL",
        ),
    )
    .await?;
    let mut margin_known: FxHashMap<&str, bool> = FxHashMap::default();
    for (k, (_, m)) in &lines {
        if let Some((c, _)) = k.split_once('|')
            && let Some((c, _, _)) = windows.iter().find(|w| w.0 == c)
        {
            *margin_known.entry(c.as_str()).or_insert(true) &= m.is_some();
        }
    }
    let mut customers: BTreeMap<String, Vec<Customer>> = BTreeMap::new();
    for b in &batches(ws, &q).await? {
        let (c, u, reg, ch, member) = (
            strings(b.column(0))?,
            strings(b.column(1))?,
            floats(b.column(2))?,
            texts(b.column(3))?,
            ints(b.column(4))?,
        );
        let (last, freq) = (floats(b.column(5))?, ints(b.column(6))?);
        let mut w = Vec::with_capacity(8);
        for k in 7..15 {
            w.push(floats(b.column(k))?);
        }
        for i in 0..b.num_rows() {
            let campaign = c.value(i);
            let line = |p: &str| {
                lines
                    .get(&format!("{campaign}|{}|{p}", u.value(i)))
                    .map_or((0.0, 0.0), |(r, m)| (*r, m.unwrap_or(0.0)))
            };
            customers
                .entry(campaign.to_string())
                .or_default()
                .push(Customer {
                    user: u.value(i).to_string(),
                    member: member[i] == 1,
                    registered: (!reg[i].is_nan()).then_some(reg[i]),
                    channel: ch[i].clone(),
                    last: (!last[i].is_nan()).then_some(last[i]),
                    frequency: freq[i],
                    windows: [0, 1, 2, 3].map(|p| (nz(w[2 * p][i]), nz(w[2 * p + 1][i]))),
                    lines: [line("b"), line("d")],
                });
        }
    }
    for (campaign, s, e) in windows {
        // In user order, so the bootstrap draws the same customers whatever order the query
        // returned them in.
        let mut list = customers.remove(campaign).unwrap_or_default();
        list.sort_unstable_by(|a, b| a.user.cmp(&b.user));
        let (s, e) = (*s as f64, *e as f64);
        let joined = |c: &Customer| c.registered.is_some_and(|r| r >= s && r < e);
        let members: Vec<&Customer> = list.iter().filter(|c| c.member).collect();
        let acquisition = members.iter().filter(|c| joined(c)).count() * 2 >= members.len();
        let at = s - 2.0 * (e - s);
        let spend_edges = quartiles(members.iter().map(|c| c.windows[0].1).collect());
        let mut channels: BTreeMap<Option<&str>, u64> = BTreeMap::new();
        let units: Vec<Unit> = list
            .iter()
            .filter(|c| {
                if acquisition {
                    joined(c)
                } else {
                    c.registered.is_none_or(|r| r < at)
                }
            })
            .map(|c| {
                let stratum = if acquisition {
                    let week = ((c.registered.unwrap_or(s) - s) / (7.0 * DAY)).floor() as u64;
                    let n = channels.len() as u64;
                    week * 10_000 + *channels.entry(c.channel.as_deref()).or_insert(n)
                } else {
                    cell(c, at, &spend_edges)
                };
                // Before an acquisition campaign its members had not joined: nothing before.
                let [_, (_, r0), (o1, r1), (o2, r2)] = c.windows;
                let (ob, rb) = if acquisition { (0.0, 0.0) } else { (o1, r1) };
                let [lb, ld] = c.lines;
                let mb = if acquisition { 0.0 } else { lb.1 };
                let mut changes = vec![0.0; METRICS];
                changes[CONVERSION] = f64::from(u8::from(o2 > 0.0)) - f64::from(u8::from(ob > 0.0));
                changes[ORDERS] = o2 - ob;
                changes[REVENUE] = r2 - rb;
                changes[MARGIN] = ld.1 - mb;
                changes[PRE_TREND] = if acquisition { 0.0 } else { r1 - r0 };
                changes[REVENUE_DURING] = r2;
                changes[ORDERS_DURING] = o2;
                changes[LINES_DURING] = ld.0;
                changes[MARGIN_DURING] = ld.1;
                Unit {
                    stratum,
                    treated: c.member,
                    changes,
                }
            })
            .collect();
        out.insert(
            campaign.clone(),
            Matched {
                did: did::did(&units, METRICS, REPS, seed(campaign), 0.95),
                margin_known: margin_known
                    .get(campaign.as_str())
                    .copied()
                    .unwrap_or(false),
                acquisition,
            },
        );
    }
    Ok(out)
}
