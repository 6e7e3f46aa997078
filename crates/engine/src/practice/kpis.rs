//! The command centre's headline figures for a period of whole shop-local days and for the
//! equally long period before it, with the change. Definitions: docs/metrics.md, "KPIs".

use serde::{Deserialize, Serialize};

use crate::error::{Error, Result};
use crate::query;
use crate::sql::{PAID, floats, in_range, local_day};
use crate::storage::workspace::Workspace;

/// Which period.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct KpiSpec {
    /// The period ends with this instant's shop-local day (default: the newest data).
    pub as_of: Option<i64>,
    /// Whole days in the period (the previous period is as long).
    pub days: u32,
}

impl Default for KpiSpec {
    fn default() -> KpiSpec {
        KpiSpec {
            as_of: None,
            days: 30,
        }
    }
}

/// `shoplens kpis` and `GET /api/kpis`: the parameters as the command line and the API take
/// them (same names, same defaults; a test keeps the two in step).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, clap::Args, schemars::JsonSchema)]
#[serde(default, deny_unknown_fields)]
pub struct KpiParams {
    /// Whole shop-local days in the period, ending with the as-of day; the previous period is
    /// as long.
    #[arg(long, default_value_t = 30)]
    pub days: u32,
}

impl Default for KpiParams {
    fn default() -> KpiParams {
        crate::params::flag_defaults()
    }
}

impl KpiParams {
    /// The spec, as of `as_of` (see [`crate::calendar::as_of`]).
    pub fn spec(&self, as_of: Option<i64>) -> KpiSpec {
        KpiSpec {
            as_of,
            days: self.days,
        }
    }
}

/// One figure in both periods.
#[derive(Debug, Clone, PartialEq, Serialize, schemars::JsonSchema)]
pub struct Kpi {
    /// Stable key.
    pub key: &'static str,
    /// English name.
    pub name: &'static str,
    /// 简体中文 name.
    pub name_zh: &'static str,
    /// `count`, `money`, `ratio` or `number`.
    pub unit: &'static str,
    /// The period's value (None when the data cannot give it, e.g. no events).
    pub value: Option<f64>,
    /// The previous period's value.
    pub previous: Option<f64>,
    /// (value − previous) / previous; None when either is missing or previous is not positive.
    pub change: Option<f64>,
    /// For rates: (value − previous) in percentage points.
    pub change_points: Option<f64>,
    /// The command (and page) that explains it.
    pub explained_by: &'static str,
    /// 95% interval of the period's value, where the figure is an estimate (campaign ROI).
    pub ci: Option<[f64; 2]>,
    /// How an estimated figure was made, or why it is missing.
    pub note: Option<String>,
    /// The note in Chinese.
    pub note_zh: Option<String>,
}

/// The figures and their periods.
#[derive(Debug, Clone, PartialEq, Serialize, schemars::JsonSchema)]
pub struct KpiReport {
    /// First day of the period (shop zone, inclusive).
    pub from: String,
    /// Last day of the period (inclusive).
    pub to: String,
    /// First day of the previous period.
    pub previous_from: String,
    /// Last day of the previous period.
    pub previous_to: String,
    /// Days in each period.
    pub days: u32,
    /// The figures.
    pub kpis: Vec<Kpi>,
}

/// The raw figures of one period: active persons per day (sum over days), active persons,
/// persons who ordered (events), paid orders, revenue, buyers, buyers with two or more orders.
#[derive(Debug, Default, Clone, Copy)]
struct Period {
    person_days: f64,
    active: f64,
    ordering: f64,
    orders: f64,
    gmv: f64,
    buyers: f64,
    repeat_buyers: f64,
    has_events: bool,
}

async fn period(
    ctx: &datafusion::prelude::SessionContext,
    tz: &str,
    from: i64,
    to: i64,
) -> Result<Period> {
    let one = |q: String| async move {
        let b = ctx.sql(&q).await?.collect().await?;
        let mut out = Vec::new();
        if let Some(b) = b.iter().find(|b| b.num_rows() > 0) {
            for c in b.columns() {
                let v = floats(c)?;
                out.push(v.first().copied().filter(|x| !x.is_nan()).unwrap_or(0.0));
            }
        }
        Ok::<Vec<f64>, Error>(out)
    };
    let person = "COALESCE(user_id, anonymous_id)";
    let e = one(format!(
        "SELECT count(*), count(DISTINCT {person}), count(DISTINCT CASE WHEN event = 'order' THEN {person} END) FROM events WHERE {}",
        in_range("ts", Some(from), Some(to))
    ))
    .await?;
    let pd = one(format!(
        "SELECT sum(n) FROM (SELECT {day}, count(DISTINCT {person}) AS n FROM events WHERE {r} GROUP BY 1)",
        day = local_day("ts", tz),
        r = in_range("ts", Some(from), Some(to))
    ))
    .await?;
    let o = one(format!(
        "SELECT count(*) AS n, sum(net_amount) AS gmv, count(DISTINCT user_id) AS buyers, \
         (SELECT count(*) FROM (SELECT user_id FROM orders WHERE {PAID} AND user_id IS NOT NULL AND {r} GROUP BY user_id HAVING count(*) >= 2)) AS repeat \
         FROM orders WHERE {PAID} AND {r}",
        r = in_range("ts", Some(from), Some(to))
    ))
    .await?;
    let at = |v: &Vec<f64>, i: usize| v.get(i).copied().unwrap_or(0.0);
    Ok(Period {
        has_events: at(&e, 0) > 0.0,
        active: at(&e, 1),
        ordering: at(&e, 2),
        person_days: at(&pd, 0),
        orders: at(&o, 0),
        gmv: at(&o, 1),
        buyers: at(&o, 2),
        repeat_buyers: at(&o, 3),
    })
}

/// Visitors who ordered / unique visitors, over the channels with marketing spend in the
/// period (paid traffic); None without spend.
pub fn paid_channel_conversion(rows: &[crate::traffic::ChannelRow]) -> Option<f64> {
    let paid = rows.iter().filter(|c| c.spend > 0.0);
    let (ordered, uv) = paid.fold((0u64, 0u64), |(o, u), c| (o + c.order_visitors, u + c.uv));
    ratio(ordered as f64, uv as f64)
}

/// ROI of the campaigns that ended in [first, last] (shop dates) and have one:
/// Σ (incremental margin − cost outside the margin) / Σ cost, with a 95% interval from the
/// campaigns' margin intervals (independent estimates: standard errors added in quadrature);
/// None without any.
pub fn campaign_roi(
    rows: &[crate::traffic::CampaignRow],
    first: &str,
    last: &str,
) -> Option<(f64, [f64; 2])> {
    // The normal quantile of the campaigns' 95% intervals.
    const Z: f64 = 1.959_963_984_540_054;
    let (mut gain, mut cost, mut var) = (0.0, 0.0, 0.0);
    for c in rows {
        let Some(end) = c.ends_at.as_deref().map(|e| &e[..e.len().min(10)]) else {
            continue;
        };
        if let (Some(m), Some(_), Some([lo, hi])) =
            (c.incremental_margin, c.roi, c.incremental_margin_ci)
            && first <= end
            && end <= last
        {
            gain += m - c.cost_outside_margin;
            cost += c.cost;
            var += ((hi - lo) / (2.0 * Z)).powi(2);
        }
    }
    let roi = ratio(gain, cost)?;
    let half = Z * var.sqrt() / cost;
    Some((roi, [roi - half, roi + half]))
}

fn ratio(a: f64, b: f64) -> Option<f64> {
    (b > 0.0).then(|| a / b)
}

/// The KPIs of the period ending with the as-of day and of the period before it.
pub async fn kpis(ws: &Workspace, spec: &KpiSpec) -> Result<KpiReport> {
    if spec.days == 0 {
        return Err(Error::Invalid("the period needs at least one day".into()));
    }
    let as_of = query::as_of_or_newest(ws, spec.as_of, "the workspace holds no data").await?;
    let (ctx, manifest) = query::context(ws).await?;
    let tz = crate::calendar::zone(&manifest.settings);
    let zone = tz.name().to_string();
    // Shop-local days as numbers (days since 1970-01-01), their dates, and the UTC instants
    // where they start.
    let naive = |day: i64| {
        chrono::NaiveDate::from_num_days_from_ce_opt(719_163 + day as i32).unwrap_or_default()
    };
    let day_of = |t: i64| -> i64 {
        chrono::DateTime::from_timestamp_micros(t).map_or(0, |d| {
            i64::from(crate::calendar::days_since_epoch(
                d.with_timezone(&tz).date_naive(),
            ))
        })
    };
    let start_of = |day: i64| -> i64 {
        crate::calendar::local_to_utc_micros(&tz, naive(day).and_time(chrono::NaiveTime::MIN))
    };
    let last = day_of(as_of);
    let n = i64::from(spec.days);
    let (from, to) = (start_of(last - n + 1), start_of(last + 1));
    let (pfrom, pto) = (start_of(last - 2 * n + 1), from);
    let cur = period(&ctx, &zone, from, to).await?;
    let prev = period(&ctx, &zone, pfrom, pto).await?;
    // Goods figures, as `shoplens returns` and `shoplens inventory` give them for each period
    // (None when the workspace has no returns data or no inventory snapshots).
    let campaigns = crate::traffic::campaigns(ws).await?;
    let mut goods = Vec::new();
    let mut roi_ci = Vec::new();
    for (f, t, first, last) in [
        (from, to, last - n + 1, last),
        (pfrom, pto, last - 2 * n + 1, last - n),
    ] {
        let r = crate::goods::returns(
            ws,
            &crate::goods::ReturnsSpec {
                from: Some(f),
                to: Some(t),
                ..crate::goods::ReturnsSpec::default()
            },
        )
        .await?;
        let inv = match crate::goods::inventory(
            ws,
            &crate::goods::InventorySpec {
                from: Some(naive(first)),
                to: Some(naive(last)),
                slow_days: 90.0,
            },
        )
        .await
        {
            Ok(i) => Some(i),
            Err(Error::Invalid(_)) => None,
            Err(e) => return Err(e),
        };
        // Churn at the period's last instant, with the stage rules `shoplens churn` uses.
        let churn = match crate::customers::stages::churn(
            ws,
            &crate::customers::stages::ChurnSpec {
                rules: crate::customers::stages::StageRules::default(),
                horizon_weeks: 1,
                as_of: Some(t - 1),
            },
        )
        .await
        {
            Ok(c) => Some(c.churn_rate),
            Err(Error::Invalid(_)) => None,
            Err(e) => return Err(e),
        };
        // Members (customers with a member tier, registered before the period ended) active in
        // it; which tier values mean "not a member" is the workspace's setting.
        let m = ctx
            .sql(&format!(
                "SELECT count(*) AS members, count(a.p) AS active FROM customers c \
                 LEFT JOIN (SELECT DISTINCT user_id AS p FROM events WHERE user_id IS NOT NULL AND {}) a ON a.p = c.user_id \
                 WHERE {} AND (c.registered_at IS NULL OR c.registered_at < {})",
                in_range("ts", Some(f), Some(t)),
                manifest.settings.member_condition("c.member_tier"),
                crate::sql::ts_literal(t)
            ))
            .await?
            .collect()
            .await?;
        let member_activity = match m.iter().find(|b| b.num_rows() > 0) {
            Some(b) => {
                let (members, active) = (floats(b.column(0))?[0], floats(b.column(1))?[0]);
                ratio(active, members)
            }
            None => None,
        };
        let ch = crate::traffic::channels(
            ws,
            &crate::traffic::Period {
                from: Some(f),
                to: Some(t),
                as_of: Some(t - 1),
            },
        )
        .await?;
        let channel_conversion = paid_channel_conversion(&ch.channels);
        let roi = campaign_roi(
            &campaigns.campaigns,
            &naive(first).to_string(),
            &naive(last).to_string(),
        );
        roi_ci.push(roi.map(|r| r.1));
        goods.push([
            channel_conversion,
            roi.map(|r| r.0),
            r.total.return_rate_units,
            inv.as_ref().and_then(|i| i.sell_through),
            inv.as_ref().and_then(|i| i.turnover),
            churn,
            member_activity,
        ]);
    }
    let days = n as f64;
    type Figure = fn(&Period, f64) -> Option<f64>;
    let figures: [(&str, &str, &str, &str, &str, Figure); 6] = [
        (
            "dau",
            "Daily active users",
            "日活 (DAU)",
            "count",
            "activity",
            |p, d| p.has_events.then(|| p.person_days / d),
        ),
        (
            "orders",
            "Paid orders",
            "支付订单数",
            "count",
            "channels",
            |p, _| Some(p.orders),
        ),
        (
            "gmv",
            "GMV (paid, net)",
            "成交额 (GMV)",
            "money",
            "channels",
            |p, _| Some(p.gmv),
        ),
        (
            "aov",
            "Average order value",
            "客单价 (AOV)",
            "money",
            "channels",
            |p, _| ratio(p.gmv, p.orders),
        ),
        (
            "conversion",
            "Visitor-to-order conversion",
            "访客下单转化率",
            "ratio",
            "funnel",
            |p, _| {
                if p.has_events {
                    ratio(p.ordering, p.active)
                } else {
                    None
                }
            },
        ),
        (
            "repurchase_rate",
            "Repurchase rate (buyers with 2+ orders)",
            "复购率",
            "ratio",
            "repurchase",
            |p, _| ratio(p.repeat_buyers, p.buyers),
        ),
    ];
    let goods_figures: [(&str, &str, &str, &str, &str, usize); 7] = [
        (
            "channel_conversion",
            "Paid-channel conversion",
            "付费渠道转化率",
            "ratio",
            "channels",
            0,
        ),
        (
            "campaign_roi",
            "Campaign ROI (margin)",
            "活动 ROI",
            "ratio",
            "campaigns",
            1,
        ),
        (
            "return_rate",
            "Return rate (units)",
            "退货率",
            "ratio",
            "returns",
            2,
        ),
        (
            "sell_through",
            "Sell-through",
            "售罄率",
            "ratio",
            "inventory",
            3,
        ),
        (
            "inventory_turnover",
            "Inventory turnover",
            "库存周转次数",
            "number",
            "inventory",
            4,
        ),
        (
            "churn_rate",
            "Churn rate (buyers)",
            "流失率",
            "ratio",
            "churn",
            5,
        ),
        (
            "member_activity",
            "Member activity",
            "会员活跃度",
            "ratio",
            "stages",
            6,
        ),
    ];
    let pick = |g: &[Option<f64>; 7], i: usize| g[i];
    let rows = figures
        .into_iter()
        .map(|(key, name, name_zh, unit, explained_by, f)| {
            (
                key,
                name,
                name_zh,
                unit,
                explained_by,
                f(&cur, days),
                f(&prev, days),
            )
        })
        .chain(
            goods_figures
                .into_iter()
                .map(|(key, name, name_zh, unit, explained_by, i)| {
                    (
                        key,
                        name,
                        name_zh,
                        unit,
                        explained_by,
                        pick(&goods[0], i),
                        pick(&goods[1], i),
                    )
                }),
        );
    let kpis = rows
        .map(
            |(key, name, name_zh, unit, explained_by, value, previous)| {
                // Relative change only from a positive base (from a negative ROI it means
                // nothing); rates also get their change in percentage points.
                let change = match (value, previous) {
                    (Some(v), Some(p)) if p > 0.0 => Some((v - p) / p),
                    _ => None,
                };
                let change_points = match (value, previous) {
                    (Some(v), Some(p)) if unit == "ratio" => Some((v - p) * 100.0),
                    _ => None,
                };
                let (ci, note, note_zh) = if key == "campaign_roi" {
                    let (en, zh) = if value.is_some() {
                        (
                            "Over the campaigns that ended in the period with a measured effect (against a holdout, or matched non-members: observational); 95% interval.",
                            "统计期内结束、且衡量了增量的活动（对比保留组，或匹配的非成员：观察性估计）；区间为 95% 置信区间。",
                        )
                    } else {
                        (
                            "No campaign with a measured effect (holdout or matched comparison) ended in the period: an ROI needs one.",
                            "统计期内没有衡量了增量（保留组或匹配对比）的活动结束：ROI 需要可衡量的增量。",
                        )
                    };
                    (roi_ci[0], Some(en.to_string()), Some(zh.to_string()))
                } else {
                    (None, None, None)
                };
                Kpi {
                    key,
                    name,
                    name_zh,
                    unit,
                    value,
                    previous,
                    change,
                    change_points,
                    explained_by,
                    ci,
                    note,
                    note_zh,
                }
            },
        )
        .collect();
    let date = |t: i64| crate::calendar::format_instant(t, &tz)[..10].to_string();
    Ok(KpiReport {
        from: date(from),
        to: date(to - 1),
        previous_from: date(pfrom),
        previous_to: date(pto - 1),
        days: spec.days,
        kpis,
    })
}
