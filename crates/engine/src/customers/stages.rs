//! Customer stages (registered-not-purchased, new, active, at risk, churned, won back) over time
//! with transitions and spend by member tier, and churn risk with win-back candidates ranked by
//! expected value. Named apart from the user lifecycle of event activity (lifecycle.rs).
//! Definitions: docs/metrics.md, "Customer stages and churn".

use std::collections::{BTreeMap, HashMap};

use serde::{Deserialize, Serialize};
use shoplens_models::clv::{BgNbd, fit_bgnbd};
use shoplens_models::stats::quantile;

use crate::calendar;
use crate::customers::clv::{ClvSpec, TimeUnit, clv_of_days, purchase_days, summary_at};
use crate::error::{Error, Result};
use crate::people::cohorts::{Period, date_of, day_index, index_start, instant_day};
use crate::query;
use crate::sql::{ints, local_day, texts, ts_literal};
use crate::storage::workspace::Workspace;

/// A customer's stage on a day.
#[derive(
    Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize, schemars::JsonSchema,
)]
#[serde(rename_all = "snake_case")]
pub enum Stage {
    /// Registered, no paid order yet: an activation target.
    RegisteredNotPurchased,
    /// First paid order within the last `new_days` days.
    New,
    /// Buying as expected.
    Active,
    /// Well past their expected next purchase, or unlikely to be alive.
    AtRisk,
    /// Silent longer than the churn silence.
    Churned,
    /// Bought again after a silence longer than the churn silence, and not silent since.
    WonBack,
}

impl Stage {
    /// All stages in display order.
    pub const ALL: [Stage; 6] = [
        Stage::RegisteredNotPurchased,
        Stage::New,
        Stage::Active,
        Stage::AtRisk,
        Stage::Churned,
        Stage::WonBack,
    ];

    /// Stable key, as in JSON.
    pub fn key(self) -> &'static str {
        match self {
            Stage::RegisteredNotPurchased => "registered_not_purchased",
            Stage::New => "new",
            Stage::Active => "active",
            Stage::AtRisk => "at_risk",
            Stage::Churned => "churned",
            Stage::WonBack => "won_back",
        }
    }

    /// English name.
    pub fn name(self) -> &'static str {
        match self {
            Stage::RegisteredNotPurchased => "Registered, not purchased",
            Stage::New => "New",
            Stage::Active => "Active",
            Stage::AtRisk => "At risk",
            Stage::Churned => "Churned",
            Stage::WonBack => "Won back",
        }
    }

    /// 中文名.
    pub fn name_zh(self) -> &'static str {
        match self {
            Stage::RegisteredNotPurchased => "注册未购",
            Stage::New => "新客",
            Stage::Active => "活跃",
            Stage::AtRisk => "流失预警",
            Stage::Churned => "已流失",
            Stage::WonBack => "已召回",
        }
    }
}

/// The rules.
#[derive(Debug, Clone, PartialEq)]
pub struct StageRules {
    /// Churned after this many days without a paid order.
    pub silence_days: i64,
    /// New while the first paid order is fewer than this many days old.
    pub new_days: i64,
    /// At risk when P(alive) (BG/NBD) falls under this.
    pub p_alive_below: f64,
    /// At risk when the silence exceeds this many times the expected interval.
    pub interval_factor: f64,
}

impl Default for StageRules {
    fn default() -> StageRules {
        StageRules {
            silence_days: 90,
            new_days: 30,
            p_alive_below: 0.3,
            interval_factor: 2.0,
        }
    }
}

/// One customer's history.
struct History {
    user: String,
    registered: Option<i64>,
    tier: Option<String>,
    days: Vec<(i64, f64)>,
}

/// A customer's stage at `day` with the figures that decided it.
#[derive(Debug, Clone, Copy, PartialEq)]
struct Decided {
    stage: Stage,
    silence: Option<i64>,
    expected_interval: Option<f64>,
}

/// The stage at `day`; None when the customer neither registered nor bought by then.
fn classify(
    h: &History,
    day: i64,
    rules: &StageRules,
    shop_interval: Option<f64>,
    p_alive: Option<f64>,
) -> Option<Decided> {
    let k = h.days.partition_point(|d| d.0 <= day);
    if k == 0 {
        return h.registered.filter(|r| *r <= day).map(|_| Decided {
            stage: Stage::RegisteredNotPurchased,
            silence: None,
            expected_interval: None,
        });
    }
    let (first, last) = (h.days[0].0, h.days[k - 1].0);
    let silence = day - last;
    let expected = if k >= 2 {
        Some((last - first) as f64 / (k - 1) as f64)
    } else {
        shop_interval
    };
    let stage = if silence > rules.silence_days {
        Stage::Churned
    } else if k >= 2 && h.days[k - 1].0 - h.days[k - 2].0 > rules.silence_days {
        Stage::WonBack
    } else if day - first < rules.new_days {
        Stage::New
    } else if expected.is_some_and(|e| silence as f64 > rules.interval_factor * e)
        || p_alive.is_some_and(|p| p < rules.p_alive_below)
    {
        Stage::AtRisk
    } else {
        Stage::Active
    };
    Some(Decided {
        stage,
        silence: Some(silence),
        expected_interval: expected,
    })
}

/// The shop's median interval between consecutive purchase days up to `day`.
fn shop_interval(hs: &[History], day: i64) -> Option<f64> {
    let mut gaps: Vec<f64> = Vec::new();
    for h in hs {
        let k = h.days.partition_point(|d| d.0 <= day);
        gaps.extend(h.days[..k].windows(2).map(|w| (w[1].0 - w[0].0) as f64));
    }
    gaps.sort_by(f64::total_cmp);
    quantile(&gaps, 0.5)
}

/// BG/NBD (weeks) fitted at `day`, and P(alive) of each customer (by index) who bought by then.
fn p_alive_at(hs: &[History], day: i64) -> (Option<BgNbd>, Vec<Option<f64>>) {
    let unit = TimeUnit::Week.days();
    let sums: Vec<Option<shoplens_models::clv::Rft>> = hs
        .iter()
        .map(|h| summary_at(&h.days, day, unit).map(|s| s.0))
        .collect();
    let base: Vec<_> = sums.iter().flatten().copied().collect();
    match fit_bgnbd(&base) {
        Ok(f) => {
            let m = f.params;
            let p = sums
                .iter()
                .map(|s| s.map(|c| m.p_alive(c.frequency, c.recency, c.t)))
                .collect();
            (Some(m), p)
        }
        Err(_) => (None, vec![None; hs.len()]),
    }
}

/// Everyone's history up to the as-of instant: registrations and tiers from customers, paid
/// purchase days from orders.
async fn histories(ws: &Workspace, as_of: i64) -> Result<Vec<History>> {
    let (ctx, manifest) = query::context(ws).await?;
    let tz = calendar::zone(&manifest.settings);
    let mut by: HashMap<String, History> = HashMap::new();
    if manifest.tables.contains_key("customers") {
        let q = format!(
            "SELECT user_id, min({}) AS reg, min(member_tier) AS tier FROM customers \
             WHERE user_id IS NOT NULL AND (registered_at IS NULL OR registered_at <= {}) GROUP BY user_id",
            local_day("registered_at", tz.name()),
            ts_literal(as_of)
        );
        for b in ctx.sql(&q).await?.collect().await? {
            let (u, r, t) = (
                texts(b.column(0))?,
                b.column(1).clone(),
                texts(b.column(2))?,
            );
            let reg = ints(&r)?;
            for (i, (u, tier)) in u.into_iter().zip(t).enumerate() {
                if let Some(u) = u {
                    let registered = (!r.is_null(i)).then_some(reg[i]);
                    by.insert(
                        u.clone(),
                        History {
                            user: u,
                            registered,
                            tier,
                            days: Vec::new(),
                        },
                    );
                }
            }
        }
    }
    purchase_days(ws, Some(as_of), |user, days| {
        let h = by.entry(user.to_string()).or_insert_with(|| History {
            user: user.to_string(),
            registered: None,
            tier: None,
            days: Vec::new(),
        });
        h.days = days.to_vec();
    })
    .await?;
    let mut hs: Vec<History> = by.into_values().collect();
    hs.sort_by(|a, b| a.user.cmp(&b.user));
    Ok(hs)
}

/// Declares a parameters type with the stage rules' parameters (written out in each type: the
/// API's query has no nesting).
macro_rules! with_rule_params {
    ($(#[$meta:meta])* pub struct $name:ident { $($(#[$fmeta:meta])* pub $field:ident: $ty:ty,)* }) => {
        $(#[$meta])*
        pub struct $name {
            $($(#[$fmeta])* pub $field: $ty,)*
        /// Churned after this many days without a paid order.
        #[arg(long, default_value_t = 90)]
        pub silence: i64,
        /// New while the first paid order is fewer than this many days old.
        #[arg(long, default_value_t = 30)]
        pub new_days: i64,
        /// At risk when P(alive) falls under this.
        #[arg(long, default_value_t = 0.3)]
        pub p_alive_below: f64,
        /// At risk when the silence exceeds this many times the customer's expected interval.
        #[arg(long, default_value_t = 2.0)]
        pub interval_factor: f64,
        }

        impl $name {
            /// The stage rules.
            pub fn rules(&self) -> StageRules {
                StageRules {
                    silence_days: self.silence,
                    new_days: self.new_days,
                    p_alive_below: self.p_alive_below,
                    interval_factor: self.interval_factor,
                }
            }
        }
    };
}

with_rule_params! {
    /// `shoplens stages` and `GET /api/stages`: the parameters as the command line and the API take
    /// them (same names, same defaults).
    #[derive(Debug, Clone, PartialEq, Serialize, Deserialize, clap::Args, schemars::JsonSchema)]
    #[serde(default, deny_unknown_fields)]
    pub struct StagesParams {
        /// A snapshot at the end of every period (week or month).
        #[arg(long, value_enum, default_value_t = Period::Month)]
        pub period: Period,
        /// First snapshot: the period holding this day (default: the first purchase).
        #[arg(long)]
        pub from: Option<String>,
    }
}

impl Default for StagesParams {
    fn default() -> StagesParams {
        crate::params::flag_defaults()
    }
}

impl StagesParams {
    /// The spec in the shop's zone `tz`, as of `as_of`.
    pub fn spec(&self, tz: &chrono_tz::Tz, as_of: Option<i64>) -> Result<StagesSpec> {
        if self.period == Period::Day {
            return Err(Error::Invalid(
                "--period: stages are snapshot by week or month".into(),
            ));
        }
        let (from, _) = calendar::period(tz, self.from.as_deref(), None)?;
        Ok(StagesSpec {
            period: self.period,
            rules: self.rules(),
            from,
            as_of,
        })
    }
}

with_rule_params! {
    /// `shoplens churn` and `GET /api/churn`: the parameters as the command line and the API take
    /// them (same names, same defaults).
    #[derive(Debug, Clone, PartialEq, Serialize, Deserialize, clap::Args, schemars::JsonSchema)]
    #[serde(default, deny_unknown_fields)]
    pub struct ChurnParams {
        /// Horizon of the expected value (CLV) that ranks win-back candidates, in weeks.
        #[arg(long, default_value_t = 52)]
        pub horizon: u32,
        /// Table and CSV: at most this many win-back candidates (0 = all).
        #[arg(long, default_value_t = 20)]
        pub limit: usize,
    }
}

impl Default for ChurnParams {
    fn default() -> ChurnParams {
        crate::params::flag_defaults()
    }
}

impl ChurnParams {
    /// The spec, as of `as_of`.
    pub fn spec(&self, as_of: Option<i64>) -> ChurnSpec {
        ChurnSpec {
            rules: self.rules(),
            horizon_weeks: self.horizon,
            as_of,
        }
    }
}

/// What `shoplens stages` computes.
#[derive(Debug, Clone, PartialEq)]
pub struct StagesSpec {
    /// Snapshot at the end of each period.
    pub period: Period,
    /// Stage rules.
    pub rules: StageRules,
    /// First snapshot period contains this instant (default: the first purchase).
    pub from: Option<i64>,
    /// Data up to this instant (default: the newest timestamp in the workspace).
    pub as_of: Option<i64>,
}

/// Stage counts on one snapshot day.
#[derive(Debug, Clone, PartialEq, Serialize, schemars::JsonSchema)]
pub struct Snapshot {
    /// First day of the period.
    pub period_start: String,
    /// The snapshot day (the period's last day, or the as-of day).
    pub day: String,
    /// Customers per stage.
    pub counts: BTreeMap<Stage, u64>,
    /// Whether BG/NBD could be fitted for P(alive) on this day.
    pub p_alive_used: bool,
}

/// Customers moving between stages from one snapshot to the next.
#[derive(Debug, Clone, PartialEq, Serialize, schemars::JsonSchema)]
pub struct StageTransition {
    /// The later snapshot's day.
    pub day: String,
    /// Stage at the previous snapshot (null: not yet known).
    pub from: Option<Stage>,
    /// Stage at this snapshot.
    pub to: Stage,
    /// Customers.
    pub customers: u64,
}

/// Spend and stages of one member tier at the last snapshot.
#[derive(Debug, Clone, PartialEq, Serialize, schemars::JsonSchema)]
pub struct TierSpend {
    /// Tier (null: none recorded).
    pub tier: Option<String>,
    /// Customers (registered or buyers).
    pub customers: u64,
    /// Of them, buyers.
    pub buyers: u64,
    /// Net amount of their paid orders.
    pub revenue: f64,
    /// revenue / customers.
    pub revenue_per_customer: f64,
    /// revenue / buyers.
    pub revenue_per_buyer: Option<f64>,
    /// Customers per stage at the last snapshot.
    pub stages: BTreeMap<Stage, u64>,
}

/// The report.
#[derive(Debug, Clone, PartialEq, Serialize, schemars::JsonSchema)]
pub struct StagesReport {
    /// Snapshots, oldest first.
    pub snapshots: Vec<Snapshot>,
    /// Transitions between consecutive snapshots.
    pub transitions: Vec<StageTransition>,
    /// By member tier.
    pub by_member_tier: Vec<TierSpend>,
    /// The rules used.
    pub silence_days: i64,
    /// The rules used.
    pub new_days: i64,
    /// The rules used.
    pub p_alive_below: f64,
    /// The rules used.
    pub interval_factor: f64,
}

fn check(rules: &StageRules) -> Result<()> {
    if rules.silence_days < 1 || rules.new_days < 1 || rules.interval_factor <= 0.0 {
        return Err(Error::Invalid(
            "--silence and --new-days must be at least 1 day and --interval-factor positive".into(),
        ));
    }
    Ok(())
}

/// Stage counts at the end of every period, transitions, and spend by member tier.
pub async fn stages(ws: &Workspace, spec: &StagesSpec) -> Result<StagesReport> {
    check(&spec.rules)?;
    let tz = calendar::zone(&ws.manifest()?.settings);
    let as_of = query::as_of_or_newest(ws, spec.as_of, "the workspace holds no data").await?;
    let as_of_day = instant_day(as_of, &tz);
    let hs = histories(ws, as_of).await?;
    let first = match spec.from {
        Some(f) => instant_day(f, &tz),
        None => hs
            .iter()
            .filter_map(|h| h.days.first().map(|d| d.0))
            .min()
            .ok_or_else(|| Error::Invalid("no customer has a paid order".into()))?,
    };
    let mut snapshots = Vec::new();
    let mut transitions = Vec::new();
    let mut previous: Option<Vec<Option<Stage>>> = None;
    let mut last: Vec<Option<Stage>> = Vec::new();
    for i in day_index(spec.period, first)..=day_index(spec.period, as_of_day) {
        let day = (index_start(spec.period, i + 1) - 1).min(as_of_day);
        let interval = shop_interval(&hs, day);
        let (model, alive) = p_alive_at(&hs, day);
        let now: Vec<Option<Stage>> = hs
            .iter()
            .zip(&alive)
            .map(|(h, p)| classify(h, day, &spec.rules, interval, *p).map(|d| d.stage))
            .collect();
        let mut counts: BTreeMap<Stage, u64> = Stage::ALL.iter().map(|s| (*s, 0)).collect();
        for s in now.iter().flatten() {
            *counts.entry(*s).or_default() += 1;
        }
        let day_text = date_of(day).map_or_else(String::new, |d| d.to_string());
        if let Some(prev) = &previous {
            let mut cells: BTreeMap<(Option<Stage>, Stage), u64> = BTreeMap::new();
            for (p, n) in prev.iter().zip(&now) {
                if let Some(n) = n {
                    *cells.entry((*p, *n)).or_default() += 1;
                }
            }
            transitions.extend(
                cells
                    .into_iter()
                    .map(|((from, to), customers)| StageTransition {
                        day: day_text.clone(),
                        from,
                        to,
                        customers,
                    }),
            );
        }
        snapshots.push(Snapshot {
            period_start: date_of(index_start(spec.period, i))
                .map_or_else(String::new, |d| d.to_string()),
            day: day_text,
            counts,
            p_alive_used: model.is_some(),
        });
        previous = Some(now.clone());
        last = now;
    }
    let mut tiers: BTreeMap<Option<String>, TierSpend> = BTreeMap::new();
    for (h, s) in hs.iter().zip(&last) {
        let t = tiers.entry(h.tier.clone()).or_insert_with(|| TierSpend {
            tier: h.tier.clone(),
            customers: 0,
            buyers: 0,
            revenue: 0.0,
            revenue_per_customer: 0.0,
            revenue_per_buyer: None,
            stages: Stage::ALL.iter().map(|s| (*s, 0)).collect(),
        });
        t.customers += 1;
        if !h.days.is_empty() {
            t.buyers += 1;
        }
        t.revenue += h.days.iter().map(|d| d.1).sum::<f64>();
        if let Some(s) = s {
            *t.stages.entry(*s).or_default() += 1;
        }
    }
    let by_member_tier = tiers
        .into_values()
        .map(|mut t| {
            t.revenue_per_customer = t.revenue / t.customers.max(1) as f64;
            t.revenue_per_buyer = (t.buyers > 0).then(|| t.revenue / t.buyers as f64);
            t
        })
        .collect();
    Ok(StagesReport {
        snapshots,
        transitions,
        by_member_tier,
        silence_days: spec.rules.silence_days,
        new_days: spec.rules.new_days,
        p_alive_below: spec.rules.p_alive_below,
        interval_factor: spec.rules.interval_factor,
    })
}

/// What `shoplens churn` computes.
#[derive(Debug, Clone, PartialEq)]
pub struct ChurnSpec {
    /// Stage rules.
    pub rules: StageRules,
    /// Horizon of the expected value, in weeks.
    pub horizon_weeks: u32,
    /// Data up to this instant (default: the newest timestamp in the workspace).
    pub as_of: Option<i64>,
}

/// One buyer's churn figures.
#[derive(Debug, Clone, PartialEq, Serialize, schemars::JsonSchema)]
pub struct ChurnCustomer {
    /// Customer id.
    pub user_id: String,
    /// Stage at the as-of day.
    pub stage: Stage,
    /// Days since the last paid order.
    pub days_since_last_order: i64,
    /// Their mean interval between purchase days (the shop's median for one-time buyers).
    pub expected_interval_days: Option<f64>,
    /// days_since_last_order / expected_interval_days.
    pub overdue_ratio: Option<f64>,
    /// P(alive) from BG/NBD fitted at the as-of day.
    pub p_alive: Option<f64>,
    /// First paid order's day (YYYY-MM-DD, shop zone).
    pub first_order_date: Option<String>,
    /// Last paid order's day up to the as-of day.
    pub last_order_date: Option<String>,
    /// Net amount of all their paid orders.
    pub historical_value: f64,
    /// Expected value over the horizon: CLV (BG/NBD × Gamma-Gamma), the win-back ranking key.
    pub expected_value: Option<f64>,
}

/// The churn report.
#[derive(Debug, Clone, PartialEq, Serialize, schemars::JsonSchema)]
pub struct ChurnReport {
    /// The as-of day.
    pub as_of: String,
    /// Buyers per stage.
    pub counts: BTreeMap<Stage, u64>,
    /// Churned / buyers.
    pub churn_rate: f64,
    /// At risk / buyers.
    pub at_risk_rate: f64,
    /// Churned and at-risk buyers by expected value (highest first), then historical value.
    pub win_back: Vec<ChurnCustomer>,
    /// Every buyer.
    pub customers: Vec<ChurnCustomer>,
    /// What could not be computed.
    pub warnings: Vec<String>,
}

/// Churn risk of every buyer at the as-of day, and win-back candidates ranked by expected value.
pub async fn churn(ws: &Workspace, spec: &ChurnSpec) -> Result<ChurnReport> {
    check(&spec.rules)?;
    let tz = calendar::zone(&ws.manifest()?.settings);
    let as_of = query::as_of_or_newest(ws, spec.as_of, "the workspace holds no data").await?;
    let day = instant_day(as_of, &tz);
    let hs = histories(ws, as_of).await?;
    let mut warnings = Vec::new();
    // CLV from the purchase days already read, not a second scan of the orders.
    let buyers = hs.iter().map(|h| (h.user.as_str(), h.days.as_slice()));
    let values: HashMap<String, (f64, Option<f64>)> = match clv_of_days(
        buyers,
        &ClvSpec {
            calibration_end: date_of(day),
            unit: TimeUnit::Week,
            horizon: spec.horizon_weeks,
            as_of: Some(as_of),
            ..ClvSpec::default()
        },
        day,
    ) {
        Ok(r) => r
            .customers
            .into_iter()
            .map(|c| (c.user_id, (c.p_alive, c.clv)))
            .collect(),
        Err(e) => {
            warnings.push(format!("no P(alive) or expected value: {e}"));
            HashMap::new()
        }
    };
    let interval = shop_interval(&hs, day);
    let mut customers = Vec::new();
    for h in hs.iter().filter(|h| !h.days.is_empty()) {
        let (p_alive, value) = values
            .get(&h.user)
            .copied()
            .map_or((None, None), |(p, v)| (Some(p), v));
        let Some(d) = classify(h, day, &spec.rules, interval, p_alive) else {
            continue;
        };
        let silence = d.silence.unwrap_or(0);
        customers.push(ChurnCustomer {
            user_id: h.user.clone(),
            stage: d.stage,
            days_since_last_order: silence,
            expected_interval_days: d.expected_interval,
            overdue_ratio: d
                .expected_interval
                .filter(|e| *e > 0.0)
                .map(|e| silence as f64 / e),
            p_alive,
            first_order_date: h
                .days
                .first()
                .and_then(|d| date_of(d.0))
                .map(|d| d.to_string()),
            last_order_date: h
                .days
                .last()
                .and_then(|d| date_of(d.0))
                .map(|d| d.to_string()),
            historical_value: h.days.iter().map(|x| x.1).sum(),
            expected_value: value,
        });
    }
    let mut counts: BTreeMap<Stage, u64> = Stage::ALL
        .iter()
        .filter(|s| **s != Stage::RegisteredNotPurchased)
        .map(|s| (*s, 0))
        .collect();
    for c in &customers {
        *counts.entry(c.stage).or_default() += 1;
    }
    let n = customers.len().max(1) as f64;
    let mut win_back: Vec<ChurnCustomer> = customers
        .iter()
        .filter(|c| matches!(c.stage, Stage::Churned | Stage::AtRisk))
        .cloned()
        .collect();
    win_back.sort_by(|a, b| {
        b.expected_value
            .unwrap_or(f64::NEG_INFINITY)
            .total_cmp(&a.expected_value.unwrap_or(f64::NEG_INFINITY))
            .then(b.historical_value.total_cmp(&a.historical_value))
            .then_with(|| a.user_id.cmp(&b.user_id))
    });
    Ok(ChurnReport {
        as_of: calendar::format_instant(as_of, &tz),
        churn_rate: counts[&Stage::Churned] as f64 / n,
        at_risk_rate: counts[&Stage::AtRisk] as f64 / n,
        counts,
        win_back,
        customers,
        warnings,
    })
}
