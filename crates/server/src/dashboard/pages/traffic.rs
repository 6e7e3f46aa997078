//! Traffic (场): channels and campaigns.

use super::*;
use shoplens_engine::traffic::{CampaignParams, CampaignRow, Method};

pub(super) fn channels(ctx: &Ctx<'_>) -> Result<String, ApiError> {
    let mut args = dated(ctx, &["channels"]);
    args.set("daily", "true");
    let r = run(ctx, args)?;
    let keep = |c: &&Value| {
        ctx.filters
            .channel
            .as_ref()
            .is_none_or(|ch| text(c, "channel") == *ch)
    };
    let rows: Vec<Value> = list(&r, "channels").iter().filter(keep).cloned().collect();
    let mut out = section(
        "channels",
        ctx.t("Channel quality"),
        ctx.t("UV: unique visitors; conversion: visitors who ordered; CAC: spend per new customer; ROAS: revenue per unit of spend."),
        &table(ctx, &[
            col(ctx.t("Channel"), "channel", Fmt::Text),
            col("UV", "uv", Fmt::Count),
            col("PV", "pv", Fmt::Count),
            col(ctx.t("Visitor → cart"), "uv_to_cart", Fmt::Pct),
            col(ctx.t("Cart → order"), "cart_to_order", Fmt::Pct),
            col(ctx.t("Order → paid"), "order_to_paid", Fmt::Pct),
            col(ctx.t("Conversion"), "visitor_conversion", Fmt::Pct),
            col(ctx.t("Revenue"), "revenue", Fmt::Money),
            col("AOV", "aov", Fmt::Money),
            col(ctx.t("Spend"), "spend", Fmt::Money),
            col("CAC", "cac", Fmt::Money),
            col("ROAS", "roas", Fmt::Num),
            col(ctx.t("90-day repurchase"), "repurchase_90d", Fmt::Pct),
            col("LTV/CAC", "ltv_to_cac", Fmt::Num),
        ], &rows),
    );
    // Weekly revenue per channel: daily points are too noisy to read.
    let daily: Vec<&Value> = list(&r, "daily").iter().filter(keep).collect();
    let mut names: Vec<String> = Vec::new();
    let mut weeks: Vec<String> = Vec::new();
    let mut sums: std::collections::BTreeMap<(usize, usize), f64> =
        std::collections::BTreeMap::new();
    let first = daily
        .iter()
        .map(|d| text(d, "date"))
        .min()
        .unwrap_or_default();
    let start = chrono::NaiveDate::parse_from_str(&first, "%Y-%m-%d").ok();
    for d in &daily {
        let (Some(s0), Ok(day)) = (
            start,
            chrono::NaiveDate::parse_from_str(&text(d, "date"), "%Y-%m-%d"),
        ) else {
            continue;
        };
        let w = ((day - s0).num_days() / 7) as usize;
        while weeks.len() <= w {
            weeks.push((s0 + chrono::Duration::days(7 * weeks.len() as i64)).to_string());
        }
        let c = text(d, "channel");
        let ci = names.iter().position(|n| *n == c).unwrap_or_else(|| {
            names.push(c);
            names.len() - 1
        });
        *sums.entry((ci, w)).or_default() += num(d, "revenue");
    }
    let series: Vec<Series> = names
        .iter()
        .enumerate()
        .map(|(ci, n)| Series {
            name: n.clone(),
            points: (0..weeks.len())
                .map(|w| (w as f64, sums.get(&(ci, w)).copied().unwrap_or(0.0)))
                .collect(),
        })
        .collect();
    let fx = |x: f64| weeks.get(x.max(0.0) as usize).cloned().unwrap_or_default();
    out.push_str(&section(
        "trend",
        ctx.t("Weekly revenue by channel"),
        ctx.t("Paid revenue of the orders each channel brought, summed by week."),
        &charts::lines(
            ctx.t("Weekly revenue by channel"),
            &series,
            &fx,
            &html::compact,
            ctx.t("Week"),
            ctx.t("Revenue"),
        ),
    ));
    Ok(out)
}

/// A campaign's method in words.
fn method_label(m: Method) -> &'static str {
    match m {
        Method::Holdout => "Holdout (randomised)",
        Method::Matched => "Matched (observational)",
        Method::None => "Not estimated",
    }
}

/// An optional interval as a cell.
fn interval(ci: Option<[f64; 2]>) -> Value {
    ci.map_or(Value::Null, |[a, b]| Value::from(vec![a, b]))
}

pub(super) fn campaigns(ctx: &Ctx<'_>) -> Result<String, ApiError> {
    let r = ctx
        .source
        .report(CampaignParams::default(), None, ctx.stamp)?;
    let name = |c: &CampaignRow| c.name.clone().unwrap_or_else(|| c.campaign_id.clone());
    let pick = |en: &Option<String>, zh: &Option<String>| match ctx.lang {
        Lang::Zh => zh.clone().or_else(|| en.clone()),
        Lang::En => en.clone(),
    };
    let prefix = html::currency_prefix(&ctx.currency);
    let money = |x: f64| format!("{prefix}{}", html::compact(x));
    let estimated: Vec<Interval> = r
        .campaigns
        .iter()
        .filter_map(|c| {
            let [low, high] = c.incremental_revenue_ci?;
            Some(Interval {
                label: name(c),
                estimate: c.incremental_revenue?,
                low,
                high,
                significant: low > 0.0 || high < 0.0,
            })
        })
        .collect();
    let mut s = String::new();
    if !estimated.is_empty() {
        s.push_str(&charts::intervals(
            ctx.t("Incremental revenue"),
            &estimated,
            &money,
        ));
    }
    s.push_str(&typed_table(
        ctx,
        &[
            typed_col(ctx.t("Campaign"), Fmt::Text, name),
            typed_col(ctx.t("Method"), Fmt::Text, |c: &CampaignRow| {
                ctx.t(method_label(c.method))
            }),
            typed_col(ctx.t("Members"), Fmt::Count, |c: &CampaignRow| c.members),
            typed_col(
                ctx.t("Compared with"),
                Fmt::Count,
                |c: &CampaignRow| match c.method {
                    Method::Matched => c.comparison_customers,
                    _ => Some(c.holdout_members),
                },
            ),
            typed_col(ctx.t("Revenue"), Fmt::Money, |c: &CampaignRow| c.revenue),
            typed_col(
                ctx.t("Incremental revenue"),
                Fmt::Money,
                |c: &CampaignRow| c.incremental_revenue,
            ),
            typed_col(ctx.t("95% interval"), Fmt::Money, |c: &CampaignRow| {
                interval(c.incremental_revenue_ci)
            }),
            typed_col(
                ctx.t("Incremental margin"),
                Fmt::Money,
                |c: &CampaignRow| c.incremental_margin,
            ),
            typed_col(ctx.t("Cost"), Fmt::Money, |c: &CampaignRow| c.cost),
            typed_col("ROI", Fmt::Pct, |c: &CampaignRow| c.roi),
            typed_col(ctx.t("ROI interval"), Fmt::Pct, |c: &CampaignRow| {
                interval(c.roi_ci)
            }),
            typed_col(ctx.t("Pre-period check"), Fmt::Money, |c: &CampaignRow| {
                interval(c.pre_trend.as_ref().map(|p| p.ci))
            }),
            typed_col(ctx.t("Notes"), Fmt::Text, |c: &CampaignRow| {
                pick(&c.reason, &c.reason_zh)
            }),
        ],
        &r.campaigns,
    ));
    s.push_str(&definitions(
        ctx,
        &[
            ("Method", "Holdout: members against those kept out of the campaign at random, over the campaign's window; every member counts, whether or not they redeemed. Matched (observational): without a holdout, members against non-members who behaved alike at the start (recency, orders, spend), change during the campaign against the window before (difference in differences); it holds only if both would have moved alike, which the pre-period check probes. Not estimated: neither is possible, so no effect or ROI is claimed."),
            ("Members", "Customers the campaign was sent to. Compared with: the holdout (kept out at random for measuring), or the matched non-members."),
            ("Revenue", "The members' paid revenue in the campaign's window (attributed orders' revenue when there is no member list)."),
            ("Incremental revenue", "Members' revenue per member minus the comparison group's (for matched: their changes), times members: what the campaign caused, with its 95% interval."),
            ("Pre-period check", "The same estimate one window earlier, before the campaign: its interval should hold zero; if not, the matched groups were already moving apart."),
            ("Incremental margin", "The same on gross margin (after discounts), when products carry costs."),
            ("ROI", "(Incremental margin − costs not already in the margin, such as fees) ÷ total campaign cost, with its 95% interval; discounts are counted once."),
        ],
    ));
    let mut out = section(
        "campaigns",
        ctx.t("Campaign results"),
        ctx.t(
            "What each campaign caused, estimated against its randomised holdout or, without one, against matched non-members (observational), and its return.",
        ),
        &s,
    );
    out.push_str(&section(
        "promotions",
        ctx.t("Promotions: order value against margin"),
        ctx.t("AOV and margin rate of the campaign's orders against the window's other orders (a description: campaign orders are selected, e.g. by a minimum spend), and members against their comparison group where there is one."),
        &typed_table(
            ctx,
            &[
                typed_col(ctx.t("Campaign"), Fmt::Text, name),
                typed_col(ctx.t("Orders"), Fmt::Count, |c: &CampaignRow| c.orders),
                typed_col(ctx.t("Discount cost"), Fmt::Money, |c: &CampaignRow| {
                    c.discount_cost
                }),
                typed_col(ctx.t("AOV change"), Fmt::Pct, |c: &CampaignRow| c.aov_change),
                typed_col(ctx.t("Margin-rate change"), Fmt::Points, |c: &CampaignRow| {
                    c.margin_rate_change
                }),
                typed_col(ctx.t("AOV change vs comparison"), Fmt::Pct, |c: &CampaignRow| {
                    c.aov_change_vs_comparison
                }),
                typed_col(
                    ctx.t("Margin-rate change vs comparison"),
                    Fmt::Points,
                    |c: &CampaignRow| c.margin_rate_change_vs_comparison,
                ),
                typed_col(ctx.t("Verdict"), Fmt::Text, |c: &CampaignRow| {
                    pick(&c.verdict, &c.verdict_zh)
                }),
            ],
            &r.campaigns,
        ),
    ));
    Ok(out)
}
