//! Traffic (场): channels and campaigns.

use super::*;

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

pub(super) fn campaigns(ctx: &Ctx<'_>) -> Result<String, ApiError> {
    let r = run(ctx, Call::new(&["campaigns"]))?;
    let mut rows = list(&r, "campaigns").to_vec();
    for c in &mut rows {
        let v = i18n::campaign_verdict(
            ctx.lang,
            field_of(c, "verdict").and_then(Value::as_str),
            field_of(c, "aov_change").and_then(Value::as_f64),
            field_of(c, "margin_rate_change").and_then(Value::as_f64),
        );
        if let Some(o) = c.as_object_mut() {
            o.insert("verdict".into(), v.map_or(Value::Null, Value::from));
        }
    }
    let bars: Vec<Bar> = rows
        .iter()
        .filter(|c| num(c, "roi").is_finite())
        .map(|c| Bar {
            label: text(c, "name"),
            value: num(c, "roi"),
            text: format!("ROI {}", html::pct(num(c, "roi"))),
            note: None,
        })
        .collect();
    let mut s = String::new();
    if !bars.is_empty() {
        s.push_str(&charts::hbars("ROI", &bars));
    }
    s.push_str(&table(
        ctx,
        &[
            col(ctx.t("Campaign"), "name", Fmt::Text),
            col(ctx.t("Kind"), "kind", Fmt::Text),
            col(ctx.t("Orders"), "orders", Fmt::Count),
            col(ctx.t("Revenue"), "revenue", Fmt::Money),
            col(ctx.t("Discount cost"), "discount_cost", Fmt::Money),
            col(
                ctx.t("Incremental revenue"),
                "incremental_revenue",
                Fmt::Money,
            ),
            col("ROI", "roi", Fmt::Pct),
            col(ctx.t("AOV change"), "aov_change", Fmt::Pct),
            col(ctx.t("Margin-rate change"), "margin_rate_change", Fmt::Pct),
            col(ctx.t("Verdict"), "verdict", Fmt::Text),
        ],
        &rows,
    ));
    Ok(section("campaigns", ctx.t("Campaign results"), ctx.t("ROI = (incremental margin − cost) / cost; incremental revenue compares redeemers with their own period before."), &s))
}
