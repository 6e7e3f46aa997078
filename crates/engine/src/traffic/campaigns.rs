//! Campaigns and promotions: what each campaign caused, by a named estimator with its interval;
//! its one ROI; and the promotion's order value against its margin rate.
//! Definitions: docs/metrics.md, "Campaigns and promotions".

use std::collections::BTreeMap;

use chrono::TimeZone;
use datafusion::arrow::array::Array;
use rustc_hash::FxHashMap;
use serde::{Deserialize, Serialize};
use shoplens_models::abtest::{self, Comparison, Config, RatioSummary, Summary};

use super::{batches, div, margin_sql, margins, nz};

mod matched;
use crate::calendar;
use crate::error::Result;
use crate::sql::{PAID, floats, ints, local_day, quote, strings, texts};
use crate::storage::workspace::Workspace;

/// `shoplens campaigns` and `GET /api/campaigns`: no parameters yet (every campaign, every day).
#[derive(
    Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize, clap::Args, schemars::JsonSchema,
)]
#[serde(deny_unknown_fields)]
pub struct CampaignParams {}

/// How a campaign's effect was estimated.
#[derive(
    Debug, Clone, Copy, Default, PartialEq, Eq, Serialize, Deserialize, schemars::JsonSchema,
)]
#[serde(rename_all = "snake_case")]
pub enum Method {
    /// Treated members against the randomised holdout (campaign_members.holdout), intention to
    /// treat over the campaign window.
    Holdout,
    /// Treated members against matched non-members (observational).
    Matched,
    /// Too little to estimate: raw figures only, no effect and no ROI (see `reason`).
    #[default]
    None,
}

/// One outcome of the treated members against the comparison group, per member.
#[derive(Debug, Clone, PartialEq, Serialize, schemars::JsonSchema)]
pub struct Effect {
    /// `conversion` (share of members with a paid order in the window), `orders`, `revenue` or
    /// `gross_margin` (per member, in the window).
    pub metric: String,
    /// Treated members' mean; with method `matched`, their mean change (campaign window −
    /// the equally long window before).
    pub treated: f64,
    /// The comparison group's mean (the holdout); with `matched`, the matched non-members'
    /// mean change, each matching cell weighted by its treated members.
    pub comparison: f64,
    /// treated − comparison.
    pub difference: f64,
    /// 95% interval of the difference (holdout: Welch t, two-proportion Wald for conversion;
    /// matched: percentile interval of a seeded bootstrap over customers).
    pub ci: [f64; 2],
    /// Two-sided p-value of no difference.
    pub p_value: f64,
}

impl Effect {
    fn matched(metric: &str, e: &shoplens_models::did::Estimate) -> Effect {
        Effect {
            metric: metric.to_string(),
            treated: e.treated,
            comparison: e.comparison,
            difference: e.difference,
            ci: e.ci,
            p_value: e.p_value,
        }
    }

    fn of(metric: &str, c: &Comparison) -> Effect {
        Effect {
            metric: metric.to_string(),
            treated: c.variant_mean,
            comparison: c.control_mean,
            difference: c.variant_mean - c.control_mean,
            ci: [c.ci_low, c.ci_high],
            p_value: c.p_value,
        }
    }
}

/// One campaign's return.
#[derive(Debug, Clone, Default, Serialize, schemars::JsonSchema)]
pub struct CampaignRow {
    /// Campaign id.
    pub campaign_id: String,
    /// Name.
    pub name: Option<String>,
    /// Kind.
    pub kind: Option<String>,
    /// Start of the window (shop time).
    pub starts_at: Option<String>,
    /// End of the window (shop time; a date-only end counts its whole day).
    pub ends_at: Option<String>,
    /// How the effect was estimated: `holdout`, `matched` or `none`.
    pub method: Method,
    /// Treated members: customers in campaign_members and not in its holdout.
    pub members: u64,
    /// Members kept out of the campaign at random (campaign_members.holdout).
    pub holdout_members: u64,
    /// With method `matched`: treated members who had a comparable non-member (the estimate is
    /// theirs, scaled to every treated member).
    pub matched_members: Option<u64>,
    /// With method `matched`: the non-members they were compared with.
    pub comparison_customers: Option<u64>,
    /// With method `matched`: the same estimator one window earlier (revenue per member, the
    /// window before the campaign against the one before that). Near zero when matched
    /// customers moved alike before the campaign; an interval away from zero warns that the
    /// estimate may be biased. None for an acquisition campaign (no history before joining).
    pub pre_trend: Option<Effect>,
    /// Customers who redeemed.
    pub redeemers: u64,
    /// Redemptions.
    pub redemptions: u64,
    /// redeemers / members.
    pub redemption_rate: Option<f64>,
    /// Paid orders attributed: orders.campaign_id, a redemption's order, or a redeemer's order on
    /// the redemption day.
    pub orders: u64,
    /// The treated members' paid revenue in the window; without a member list or a window, the
    /// attributed orders' net amount (see `revenue_basis`).
    pub revenue: f64,
    /// `members` or `attributed`: what `revenue` sums.
    pub revenue_basis: String,
    /// Net amount of the attributed orders.
    pub attributed_revenue: f64,
    /// Coupon part of the attributed orders' line discounts (order_items.coupon_discount), when
    /// the source records it.
    pub coupon_discount: Option<f64>,
    /// Discounts granted: redemptions' discounts, else the attributed orders' coupon discounts,
    /// else their whole discounts.
    pub discount_cost: f64,
    /// Line revenue − cost of the attributed orders; None without costs.
    pub gross_margin: Option<f64>,
    /// campaigns.cost, else discounts + channel spend booked to the campaign.
    pub cost: f64,
    /// The part of `cost` not already inside the gross margin (which is measured after
    /// discounts): cost − discount cost (fees, messages, media), at least 0.
    pub cost_outside_margin: f64,
    /// Per member, treated against the comparison group: conversion, orders, revenue and gross
    /// margin (empty with method `none`).
    pub effects: Vec<Effect>,
    /// Revenue the campaign caused: the per-member revenue difference × treated members.
    pub incremental_revenue: Option<f64>,
    /// Its 95% interval.
    pub incremental_revenue_ci: Option<[f64; 2]>,
    /// Per treated member.
    pub incremental_revenue_per_member: Option<f64>,
    /// Its 95% interval.
    pub incremental_revenue_per_member_ci: Option<[f64; 2]>,
    /// Gross margin the campaign caused, likewise; None without costs.
    pub incremental_margin: Option<f64>,
    /// Its 95% interval.
    pub incremental_margin_ci: Option<[f64; 2]>,
    /// (incremental margin − cost outside the margin) / cost.
    pub roi: Option<f64>,
    /// Its 95% interval (from the incremental margin's).
    pub roi_ci: Option<[f64; 2]>,
    /// Redeemers' paid revenue inside the window (a description, not an effect: redeemers are
    /// selected by buying).
    pub redeemer_revenue_during: f64,
    /// Redeemers' paid revenue in the equally long window just before.
    pub redeemer_revenue_before: f64,
    /// AOV of attributed paid orders.
    pub aov: Option<f64>,
    /// AOV of the window's other paid orders.
    pub aov_others: Option<f64>,
    /// aov / aov_others − 1.
    pub aov_change: Option<f64>,
    /// Margin rate of attributed orders' lines.
    pub margin_rate: Option<f64>,
    /// Margin rate of the window's other orders.
    pub margin_rate_others: Option<f64>,
    /// margin_rate − margin_rate_others, in rate points.
    pub margin_rate_change: Option<f64>,
    /// AOV of the treated members' paid orders in the window / the comparison group's − 1.
    pub aov_change_vs_comparison: Option<f64>,
    /// Its 95% interval (holdout: delta method on per-member revenue and orders).
    pub aov_change_vs_comparison_ci: Option<[f64; 2]>,
    /// Margin rate of the treated members' orders − the comparison group's, in rate points.
    pub margin_rate_change_vs_comparison: Option<f64>,
    /// Its 95% interval (holdout: delta method on per-member margin and line revenue).
    pub margin_rate_change_vs_comparison_ci: Option<[f64; 2]>,
    /// "AOV +5% but margin rate −8.0 pts (…)" in words, against the comparison group when there
    /// is one, else against the window's other orders.
    pub verdict: Option<String>,
    /// The verdict in Chinese.
    pub verdict_zh: Option<String>,
    /// Why the effect or the ROI is missing (None when both are there).
    pub reason: Option<String>,
    /// The reason in Chinese.
    pub reason_zh: Option<String>,
}

/// Campaigns and promotions.
#[derive(Debug, Clone, Serialize, schemars::JsonSchema)]
pub struct CampaignReport {
    /// Per campaign, by revenue.
    pub campaigns: Vec<CampaignRow>,
    /// Whether margins could be computed.
    pub has_costs: bool,
}

/// One arm's per-member outcomes in the window.
#[derive(Debug, Default)]
struct Arm {
    orders: Vec<f64>,
    revenue: Vec<f64>,
    margin: Vec<f64>,
    /// Line revenue (for the margin rate).
    lines: Vec<f64>,
}

impl Arm {
    fn converted(&self) -> u64 {
        self.orders.iter().filter(|o| **o > 0.0).count() as u64
    }

    fn aov(&self) -> Option<f64> {
        div(self.revenue.iter().sum(), self.orders.iter().sum())
    }

    fn margin_rate(&self) -> Option<f64> {
        div(self.margin.iter().sum(), self.lines.iter().sum())
    }
}

/// The members of each campaign in arms, with their outcomes in the campaign's window:
/// campaign → ([treated, holdout], whether every member's margin is known).
async fn member_outcomes(
    ws: &Workspace,
    windows: &str,
) -> Result<FxHashMap<String, ([Arm; 2], bool)>> {
    let members = "(SELECT campaign_id, user_id, bool_and(coalesce(holdout, false)) AS h \
                   FROM campaign_members WHERE user_id IS NOT NULL GROUP BY 1, 2)";
    let in_window = "CAST(o.ts AS BIGINT) >= x.s AND CAST(o.ts AS BIGINT) < x.e";
    let q = format!(
        "SELECT m.campaign_id, m.user_id, CAST(m.h AS BIGINT), CAST(count(o.order_id) AS BIGINT), \
                CAST(sum(o.net_amount) AS DOUBLE) \
         FROM {members} m JOIN {windows} x ON x.campaign_id = m.campaign_id \
         LEFT JOIN orders o ON o.user_id = m.user_id AND o.{PAID} AND {in_window} \
         GROUP BY 1, 2, 3"
    );
    let lines = margins(
        ws,
        &margin_sql(
            "m.campaign_id || '|' || m.user_id",
            &format!(
                "{members} m JOIN {windows} x ON x.campaign_id = m.campaign_id \
                 JOIN orders o ON o.user_id = m.user_id"
            ),
            in_window,
        ),
    )
    .await?;
    // Margins are known for a campaign when its members' lines carry costs: every line of
    // every member, and at least one line.
    let mut known: FxHashMap<String, bool> = FxHashMap::default();
    for (k, (_, m)) in &lines {
        if let Some((c, _)) = k.split_once('|') {
            *known.entry(c.to_string()).or_insert(true) &= m.is_some();
        }
    }
    // (campaign, user, in the holdout, paid orders, revenue), in campaign and user order so
    // every run sums in the same order and gives the same last digits.
    let mut members: Vec<(String, String, bool, f64, f64)> = Vec::new();
    for b in &batches(ws, &q).await? {
        let (c, u, h, n, rev) = (
            strings(b.column(0))?,
            strings(b.column(1))?,
            ints(b.column(2))?,
            ints(b.column(3))?,
            floats(b.column(4))?,
        );
        for i in 0..b.num_rows() {
            members.push((
                c.value(i).to_string(),
                u.value(i).to_string(),
                h[i] == 1,
                n[i] as f64,
                nz(rev[i]),
            ));
        }
    }
    members.sort_unstable_by(|a, b| (&a.0, &a.1).cmp(&(&b.0, &b.1)));
    let mut out: FxHashMap<String, ([Arm; 2], bool)> = FxHashMap::default();
    for (campaign, user, holdout, n, rev) in members {
        let (lrev, m) = lines
            .get(&format!("{campaign}|{user}"))
            .copied()
            .unwrap_or((0.0, Some(0.0)));
        let known = known.get(&campaign).copied().unwrap_or(false);
        let e = out
            .entry(campaign)
            .or_insert_with(|| (Default::default(), known));
        let arm = &mut e.0[usize::from(holdout)];
        arm.orders.push(n);
        arm.revenue.push(rev);
        arm.margin.push(m.unwrap_or(f64::NAN));
        arm.lines.push(lrev);
    }
    Ok(out)
}

/// Fewest members in either arm for an estimate.
const MIN_ARM: usize = 2;

/// Why a campaign has no estimate, in English and Chinese.
fn no_estimate(window: bool, arms: Option<&[Arm; 2]>) -> (&'static str, &'static str) {
    match arms {
        _ if !window => (
            "The campaign has no start and end: there is no window to measure it in.",
            "活动没有起止时间，无法确定衡量窗口。",
        ),
        None => (
            "No member list (campaign_members): nobody to compare.",
            "没有活动成员名单（campaign_members），无从比较。",
        ),
        Some([_, h]) if h.revenue.is_empty() => (
            "No holdout, and no non-member matched any member's behaviour before the campaign: what members would have bought anyway is unknown.",
            "没有保留组，也没有活动前行为与成员相当的非成员可供匹配：无法得知成员本来会买多少。",
        ),
        Some(_) => (
            "Too few members in the treated group or the holdout (fewer than 2).",
            "处理组或保留组成员太少（不足 2 人）。",
        ),
    }
}

/// The verdict sentence in English and Chinese, and which comparison it makes.
fn verdict(
    aov: Option<f64>,
    margin: Option<f64>,
    method: Method,
) -> (Option<String>, Option<String>) {
    let (against, against_zh) = match method {
        Method::Holdout => ("members against the holdout", "成员对比保留组"),
        Method::Matched => (
            "members against matched non-members, observational",
            "成员对比匹配的非成员，观察性估计",
        ),
        Method::None => ("against the window's other orders", "对比同期其他订单"),
    };
    match (aov, margin) {
        (Some(a), Some(m)) => (
            Some(format!(
                "AOV {:+.0}% {} margin rate {:+.1} pts ({against})",
                a * 100.0,
                if (a > 0.0) == (m > 0.0) { "and" } else { "but" },
                m * 100.0
            )),
            Some(format!(
                "客单价 {:+.0}%，{}毛利率 {:+.1} 个百分点（{against_zh}）",
                a * 100.0,
                if (a > 0.0) == (m > 0.0) { "且" } else { "但" },
                m * 100.0
            )),
        ),
        (Some(a), None) => (
            Some(format!(
                "AOV {:+.0}% ({against}; no cost data for the margin)",
                a * 100.0
            )),
            Some(format!(
                "客单价 {:+.0}%（{against_zh}；无成本数据，无法计算毛利）",
                a * 100.0
            )),
        ),
        _ => (None, None),
    }
}

/// Campaign windows (id, start, end; microseconds) as a SQL table: campaign_id, s, e and the
/// length l = e − s.
fn windows_table(windows: &[(String, i64, i64)]) -> String {
    let values = windows
        .iter()
        .map(|(c, s, e)| format!("({}, CAST({s} AS BIGINT), CAST({e} AS BIGINT))", quote(c)))
        .collect::<Vec<_>>()
        .join(", ");
    format!(
        "(SELECT column1 AS campaign_id, column2 AS s, column3 AS e, column3 - column2 AS l \
         FROM (VALUES {values}))"
    )
}

/// An interval whose ends are both finite.
fn finite(ci: [f64; 2]) -> Option<[f64; 2]> {
    ci.iter().all(|x| x.is_finite()).then_some(ci)
}

/// Scales an interval.
fn times(ci: [f64; 2], k: f64) -> [f64; 2] {
    [ci[0] * k, ci[1] * k]
}

/// The holdout estimate of one campaign: effects per member, incremental revenue and margin
/// with their intervals, the ROI, and the treated-versus-holdout AOV and margin rate.
fn holdout_estimate(r: &mut CampaignRow, [treated, holdout]: &[Arm; 2], margin_known: bool) {
    let cfg = Config::default();
    let n = treated.revenue.len() as f64;
    r.method = Method::Holdout;
    let conv = abtest::two_proportion(
        (holdout.converted(), holdout.revenue.len() as u64),
        (treated.converted(), treated.revenue.len() as u64),
        &cfg,
    );
    let welch = |t: &[f64], h: &[f64]| abtest::welch(&Summary::of(h), &Summary::of(t), &cfg);
    let orders = welch(&treated.orders, &holdout.orders);
    let revenue = welch(&treated.revenue, &holdout.revenue);
    r.effects = vec![
        Effect::of("conversion", &conv),
        Effect::of("orders", &orders),
        Effect::of("revenue", &revenue),
    ];
    // Ratio metrics (AOV, margin rate) per arm by the delta method over members.
    let ratio = |num: fn(&Arm) -> &Vec<f64>, den: fn(&Arm) -> &Vec<f64>| {
        let pairs = |a: &Arm| -> Vec<(f64, f64)> {
            num(a).iter().copied().zip(den(a).iter().copied()).collect()
        };
        abtest::ratio(
            &RatioSummary::of(&pairs(holdout)),
            &RatioSummary::of(&pairs(treated)),
            &cfg,
        )
    };
    if let (Some(t), Some(h)) = (treated.aov(), holdout.aov()) {
        r.aov_change_vs_comparison = div(t, h).map(|x| x - 1.0);
        let c = ratio(|a| &a.revenue, |a| &a.orders);
        r.aov_change_vs_comparison_ci = finite([c.relative_ci_low, c.relative_ci_high]);
    }
    let margin = margin_known.then(|| {
        if let (Some(t), Some(h)) = (treated.margin_rate(), holdout.margin_rate()) {
            r.margin_rate_change_vs_comparison = Some(t - h);
            let c = ratio(|a| &a.margin, |a| &a.lines);
            r.margin_rate_change_vs_comparison_ci = finite([c.ci_low, c.ci_high]);
        }
        Effect::of("gross_margin", &welch(&treated.margin, &holdout.margin))
    });
    let per = r.effects[2].clone();
    finish(r, n, &per, margin);
}

/// The matched estimate of one campaign (see [`matched`]).
fn matched_estimate(r: &mut CampaignRow, m: &matched::Matched) {
    use matched::*;
    let Some(d) = &m.did else { return };
    if d.matched_treated < MIN_ARM || d.comparison_units < MIN_ARM {
        return;
    }
    r.method = Method::Matched;
    r.matched_members = Some(d.matched_treated as u64);
    r.comparison_customers = Some(d.comparison_units as u64);
    let e = &d.estimates;
    r.effects = vec![
        Effect::matched("conversion", &e[CONVERSION]),
        Effect::matched("orders", &e[ORDERS]),
        Effect::matched("revenue", &e[REVENUE]),
    ];
    r.pre_trend = (!m.acquisition).then(|| Effect::matched("revenue", &e[PRE_TREND]));
    let ratio = |a: usize, b: usize| {
        let t = div(e[a].treated, e[b].treated)?;
        let c = div(e[a].comparison, e[b].comparison)?;
        Some((t, c))
    };
    r.aov_change_vs_comparison = ratio(REVENUE_DURING, ORDERS_DURING)
        .and_then(|(t, c)| div(t, c))
        .map(|x| x - 1.0);
    let margin = m.margin_known.then(|| {
        r.margin_rate_change_vs_comparison = ratio(MARGIN_DURING, LINES_DURING).map(|(t, c)| t - c);
        Effect::matched("gross_margin", &e[MARGIN])
    });
    let per = r.effects[2].clone();
    finish(r, r.members as f64, &per, margin);
    if let Some(p) = &r.pre_trend
        && (p.ci[0] > 0.0 || p.ci[1] < 0.0)
    {
        let (en, zh) = (
            "Matched non-members' spending already moved differently before the campaign (pre-period check): the estimate may be biased.",
            "活动前匹配的非成员消费走势已与成员不同（事前趋势检验）：估计可能有偏。",
        );
        r.reason = Some(r.reason.take().map_or(en.into(), |x| format!("{x} {en}")));
        r.reason_zh = Some(r.reason_zh.take().map_or(zh.into(), |x| format!("{x}{zh}")));
    }
}

/// What both estimators share: incremental revenue and margin scaled to the `n` treated members,
/// the ROI, and why a figure is missing. `per` is the revenue effect per member; `margin` the
/// margin effect, None without costs.
fn finish(r: &mut CampaignRow, n: f64, per: &Effect, margin: Option<Effect>) {
    r.incremental_revenue_per_member = Some(per.difference);
    r.incremental_revenue_per_member_ci = Some(per.ci);
    r.incremental_revenue = Some(per.difference * n);
    r.incremental_revenue_ci = Some(times(per.ci, n));
    let Some(m) = margin else {
        r.reason = Some(
            "No product costs for the members' order lines: the gross margin, and so the ROI, cannot be computed."
                .into(),
        );
        r.reason_zh = Some("成员订单行缺少商品成本：无法计算毛利，也就无法计算 ROI。".into());
        return;
    };
    r.incremental_margin = Some(m.difference * n);
    r.incremental_margin_ci = Some(times(m.ci, n));
    r.effects.push(m);
    if r.cost > 0.0 {
        let roi = |m: f64| (m - r.cost_outside_margin) / r.cost;
        r.roi = r.incremental_margin.map(roi);
        r.roi_ci = r.incremental_margin_ci.map(|[a, b]| [roi(a), roi(b)]);
    } else {
        r.reason = Some(
            "No campaign cost recorded (campaigns.cost, discounts or spend): ROI needs one.".into(),
        );
        r.reason_zh =
            Some("没有记录活动成本（campaigns.cost、折扣或投放花费），无法计算 ROI。".into());
    }
}

/// Per campaign: the effect on its members by a named estimator (see [`Method`]), incremental
/// revenue and margin with intervals, ROI, attributed orders and discounts, and the promotion's
/// AOV against its margin rate.
pub async fn campaigns(ws: &Workspace) -> Result<CampaignReport> {
    let manifest = ws.manifest()?;
    let tz = calendar::zone(&manifest.settings);
    let z = tz.name();
    let mut rows: BTreeMap<String, CampaignRow> = BTreeMap::new();
    let mut windows: Vec<(String, i64, i64)> = Vec::new();
    let cq = "SELECT campaign_id, name, kind, CAST(starts_at AS BIGINT), CAST(ends_at AS BIGINT), \
              CAST(cost AS DOUBLE), starts_at IS NULL OR ends_at IS NULL FROM campaigns";
    let mut fixed_cost: FxHashMap<String, f64> = FxHashMap::default();
    for b in &batches(ws, cq).await? {
        let (id, name, kind) = (
            strings(b.column(0))?,
            texts(b.column(1))?,
            texts(b.column(2))?,
        );
        let (s, e, cost) = (ints(b.column(3))?, ints(b.column(4))?, floats(b.column(5))?);
        let open = b.column(6).clone();
        let open = open
            .as_any()
            .downcast_ref::<datafusion::arrow::array::BooleanArray>();
        for i in 0..b.num_rows() {
            let c = id.value(i).to_string();
            let r = rows.entry(c.clone()).or_default();
            r.name = name[i].clone();
            r.kind = kind[i].clone();
            if !cost[i].is_nan() {
                fixed_cost.insert(c.clone(), cost[i]);
            }
            if open.is_some_and(|o| !o.value(i)) {
                // A date-only end (local midnight) counts its whole day, up to the next local
                // midnight (25 or 23 hours on a daylight-saving day).
                let next_midnight = tz.timestamp_micros(e[i]).single().and_then(|d| {
                    (d.time() == chrono::NaiveTime::MIN)
                        .then(|| d.date_naive() + chrono::Days::new(1))
                        .and_then(|n| {
                            tz.from_local_datetime(&n.and_time(chrono::NaiveTime::MIN))
                                .earliest()
                        })
                        .map(|n| n.timestamp_micros())
                });
                let end = next_midnight.unwrap_or(e[i] + 1);
                r.starts_at = Some(calendar::format_instant(s[i], &tz));
                r.ends_at = Some(calendar::format_instant(end - 1, &tz));
                windows.push((c, s[i], end));
            }
        }
    }
    let count_q = "SELECT campaign_id, 'r', CAST(count(DISTINCT user_id) AS BIGINT), CAST(sum(discount) AS DOUBLE) FROM redemptions GROUP BY 1 \
                   UNION ALL SELECT campaign_id, 'n', CAST(count(*) AS BIGINT), CAST(NULL AS DOUBLE) FROM redemptions GROUP BY 1 \
                   UNION ALL SELECT campaign_id, 'm', CAST(count(DISTINCT user_id) AS BIGINT), CAST(NULL AS DOUBLE) FROM campaign_members GROUP BY 1";
    let mut redemption_discount: FxHashMap<String, f64> = FxHashMap::default();
    let mut listed: FxHashMap<String, u64> = FxHashMap::default();
    for b in &batches(ws, count_q).await? {
        let (id, what, n, d) = (
            strings(b.column(0))?,
            strings(b.column(1))?,
            ints(b.column(2))?,
            floats(b.column(3))?,
        );
        for i in 0..b.num_rows() {
            let c = id.value(i).to_string();
            let r = rows.entry(c.clone()).or_default();
            match what.value(i) {
                "m" => {
                    listed.insert(c, n[i] as u64);
                }
                "r" => {
                    r.redeemers = n[i] as u64;
                    if !d[i].is_nan() {
                        redemption_discount.insert(c, d[i]);
                    }
                }
                _ => r.redemptions = n[i] as u64,
            }
        }
    }
    // Attributed orders.
    let (oday, rday) = (local_day("o.ts", z), local_day("r.ts", z));
    let att = format!(
        "(SELECT campaign_id, order_id FROM orders WHERE campaign_id IS NOT NULL \
          UNION SELECT campaign_id, order_id FROM redemptions WHERE order_id IS NOT NULL \
          UNION SELECT r.campaign_id, o.order_id FROM redemptions r JOIN orders o ON o.user_id = r.user_id \
                AND {oday} = {rday} WHERE r.order_id IS NULL AND r.ts IS NOT NULL)"
    );
    let aq = format!(
        "SELECT a.campaign_id, CAST(count(*) AS BIGINT), CAST(sum(o.net_amount) AS DOUBLE), CAST(sum(coalesce(o.discount_amount, 0)) AS DOUBLE) \
         FROM {att} a JOIN orders o ON o.order_id = a.order_id WHERE o.{PAID} GROUP BY 1"
    );
    let mut order_discount: FxHashMap<String, f64> = FxHashMap::default();
    for b in &batches(ws, &aq).await? {
        let (id, n, rev, disc) = (
            strings(b.column(0))?,
            ints(b.column(1))?,
            floats(b.column(2))?,
            floats(b.column(3))?,
        );
        for i in 0..b.num_rows() {
            let c = id.value(i).to_string();
            let r = rows.entry(c.clone()).or_default();
            r.orders = n[i] as u64;
            r.attributed_revenue = nz(rev[i]);
            order_discount.insert(c, nz(disc[i]));
        }
    }
    let cq = format!(
        "SELECT a.campaign_id, CAST(sum(i.coupon_discount) AS DOUBLE), CAST(count(i.coupon_discount) AS BIGINT) \
         FROM {att} a JOIN orders o ON o.order_id = a.order_id JOIN order_items i ON i.order_id = o.order_id \
         WHERE o.{PAID} GROUP BY 1"
    );
    let mut coupon: FxHashMap<String, f64> = FxHashMap::default();
    for b in &batches(ws, &cq).await? {
        let (id, v, n) = (
            strings(b.column(0))?,
            floats(b.column(1))?,
            ints(b.column(2))?,
        );
        for i in 0..b.num_rows() {
            if n[i] > 0 {
                coupon.insert(id.value(i).to_string(), nz(v[i]));
            }
        }
    }
    let att_margin = margins(
        ws,
        &margin_sql(
            "a.campaign_id",
            &format!("{att} a JOIN orders o ON o.order_id = a.order_id"),
            "TRUE",
        ),
    )
    .await?;
    let spend_q = "SELECT campaign_id, CAST(sum(spend) AS DOUBLE) FROM channel_spend WHERE campaign_id IS NOT NULL GROUP BY 1";
    let mut spend: FxHashMap<String, f64> = FxHashMap::default();
    for b in &batches(ws, spend_q).await? {
        let (id, s) = (strings(b.column(0))?, floats(b.column(1))?);
        for i in 0..b.num_rows() {
            spend.insert(id.value(i).to_string(), nz(s[i]));
        }
    }
    // Windows as a table: redeemers' revenue during and before; the window's other orders; the
    // members' outcomes.
    let mut during_before: FxHashMap<String, [f64; 2]> = FxHashMap::default();
    /// Paid orders, their revenue, and (line revenue, margin) of a window's other orders.
    type Others = (f64, f64, (f64, Option<f64>));
    let mut others: FxHashMap<String, Others> = FxHashMap::default();
    let mut outcomes = FxHashMap::default();
    let mut matched = FxHashMap::default();
    if !windows.is_empty() {
        let w = windows_table(&windows);
        outcomes = member_outcomes(ws, &w).await?;
        // Campaigns with members and no holdout are matched with non-members.
        let unheld: Vec<(String, i64, i64)> = windows
            .iter()
            .filter(|(c, _, _)| {
                outcomes
                    .get(c)
                    .is_some_and(|(a, _)| a[0].revenue.len() >= MIN_ARM && a[1].revenue.is_empty())
            })
            .cloned()
            .collect();
        matched = matched::estimates(ws, &unheld).await?;
        let t = "CAST(o.ts AS BIGINT)";
        let red = format!(
            "(SELECT DISTINCT w.campaign_id, w.s, w.e, r.user_id FROM {w} w JOIN redemptions r ON r.campaign_id = w.campaign_id)"
        );
        let phase = format!("CASE WHEN {t} >= x.s AND {t} < x.e THEN 'd' ELSE 'b' END");
        let in_phase = format!("{t} >= x.s - (x.e - x.s) AND {t} < x.e");
        let rq = format!(
            "SELECT x.campaign_id || '|' || {phase}, CAST(sum(o.net_amount) AS DOUBLE) FROM {red} x \
             JOIN orders o ON o.user_id = x.user_id WHERE o.{PAID} AND {in_phase} GROUP BY 1"
        );
        for b in &batches(ws, &rq).await? {
            let (k, v) = (strings(b.column(0))?, floats(b.column(1))?);
            for i in 0..b.num_rows() {
                if let Some((c, ph)) = k.value(i).rsplit_once('|') {
                    during_before.entry(c.to_string()).or_default()[usize::from(ph == "b")] =
                        nz(v[i]);
                }
            }
        }
        // The window's paid orders not attributed to the campaign.
        let other = format!(
            "{w} x JOIN orders o ON CAST(o.ts AS BIGINT) >= x.s AND CAST(o.ts AS BIGINT) < x.e \
             LEFT JOIN {att} a ON a.order_id = o.order_id AND a.campaign_id = x.campaign_id"
        );
        let oq = format!(
            "SELECT x.campaign_id, CAST(count(*) AS BIGINT), CAST(sum(o.net_amount) AS DOUBLE) FROM {other} \
             WHERE o.{PAID} AND a.order_id IS NULL GROUP BY 1"
        );
        for b in &batches(ws, &oq).await? {
            let (id, n, rev) = (
                strings(b.column(0))?,
                ints(b.column(1))?,
                floats(b.column(2))?,
            );
            for i in 0..b.num_rows() {
                let e = others
                    .entry(id.value(i).to_string())
                    .or_insert((0.0, 0.0, (0.0, None)));
                e.0 = n[i] as f64;
                e.1 = nz(rev[i]);
            }
        }
        for (c, v) in margins(
            ws,
            &margin_sql("x.campaign_id", &other, "a.order_id IS NULL"),
        )
        .await?
        {
            others.entry(c).or_insert((0.0, 0.0, (0.0, None))).2 = v;
        }
    }
    let mut has_costs = false;
    let mut campaigns = rows
        .into_iter()
        .map(|(c, mut r)| {
            r.campaign_id = c.clone();
            r.coupon_discount = coupon.get(&c).copied();
            r.discount_cost = redemption_discount
                .get(&c)
                .or(r.coupon_discount.as_ref())
                .or_else(|| order_discount.get(&c))
                .copied()
                .unwrap_or(0.0);
            let am = att_margin.get(&c).copied();
            r.gross_margin = am.and_then(|x| x.1);
            has_costs |= r.gross_margin.is_some();
            let spent = spend.get(&c).copied().unwrap_or(0.0);
            r.cost = fixed_cost
                .get(&c)
                .copied()
                .unwrap_or(r.discount_cost + spent);
            r.cost_outside_margin = (r.cost - r.discount_cost).max(0.0);
            let [d, bf] = during_before.get(&c).copied().unwrap_or_default();
            r.redeemer_revenue_during = d;
            r.redeemer_revenue_before = bf;
            let window = r.starts_at.is_some();
            let arms = outcomes.get(&c);
            match arms {
                Some((arms, margin_known)) => {
                    r.members = arms[0].revenue.len() as u64;
                    r.holdout_members = arms[1].revenue.len() as u64;
                    r.revenue = arms[0].revenue.iter().sum();
                    r.revenue_basis = "members".into();
                    has_costs |= *margin_known;
                    if arms.iter().all(|a| a.revenue.len() >= MIN_ARM) {
                        holdout_estimate(&mut r, arms, *margin_known);
                    } else if let Some(m) = matched.get(&c) {
                        has_costs |= m.margin_known;
                        matched_estimate(&mut r, m);
                    }
                }
                None => {
                    r.members = listed.get(&c).copied().unwrap_or(0);
                    r.revenue = r.attributed_revenue;
                    r.revenue_basis = "attributed".into();
                }
            }
            if r.method == Method::None {
                let (en, zh) = no_estimate(window, arms.map(|a| &a.0));
                r.reason = Some(en.into());
                r.reason_zh = Some(zh.into());
            }
            r.redemption_rate = div(r.redeemers as f64, r.members as f64);
            r.aov = div(r.attributed_revenue, r.orders as f64);
            if let Some((n, rev, (lrev, lm))) = others.get(&c).copied() {
                r.aov_others = div(rev, n);
                r.margin_rate_others = lm.and_then(|m| div(m, lrev));
            }
            r.aov_change = match (r.aov, r.aov_others) {
                (Some(a), Some(o)) => div(a, o).map(|x| x - 1.0),
                _ => None,
            };
            r.margin_rate = am.and_then(|(lrev, m)| m.and_then(|m| div(m, lrev)));
            r.margin_rate_change = match (r.margin_rate, r.margin_rate_others) {
                (Some(a), Some(o)) => Some(a - o),
                _ => None,
            };
            (r.verdict, r.verdict_zh) = if r.aov_change_vs_comparison.is_some() {
                verdict(
                    r.aov_change_vs_comparison,
                    r.margin_rate_change_vs_comparison,
                    r.method,
                )
            } else {
                verdict(r.aov_change, r.margin_rate_change, Method::None)
            };
            r
        })
        .collect::<Vec<_>>();
    campaigns.sort_by(|a, b| {
        b.revenue
            .total_cmp(&a.revenue)
            .then_with(|| a.campaign_id.cmp(&b.campaign_id))
    });
    Ok(CampaignReport {
        campaigns,
        has_costs,
    })
}
