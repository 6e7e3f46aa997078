//! Goods (货): products, returns, baskets, inventory.

use super::*;

pub(super) fn products(ctx: &Ctx<'_>) -> Result<String, ApiError> {
    let mut args = dated(ctx, &["products"]);
    args.set("limit", "0");
    let r = run(ctx, args)?;
    let items = list(&r, "items");
    let sales = text(&r, "sales");
    let sales_field = if sales == "revenue" {
        "revenue"
    } else {
        "units"
    };
    let mut groups: Vec<String> = Vec::new();
    let mut group_keys: Vec<String> = Vec::new();
    let pts: Vec<Point> = items
        .iter()
        .filter(|i| num(i, "margin_rate").is_finite())
        .map(|i| {
            let q = text(i, "quadrant");
            let g = match group_keys.iter().position(|k| *k == q) {
                Some(g) => g,
                None => {
                    group_keys.push(q.clone());
                    groups.push(cell(&ctx.field(i, "quadrant_name"), Fmt::Text, ""));
                    group_keys.len() - 1
                }
            };
            Point {
                x: num(i, sales_field),
                y: num(i, "margin_rate"),
                group: g,
                label: format!("{} {}", text(i, "key"), text(i, "name")),
            }
        })
        .collect();
    let mut out = String::new();
    if field_of(&r, "has_costs") == Some(&Value::Bool(false)) {
        out.push_str(&format!(
            r#"<p class="err">{}</p>"#,
            esc(ctx
                .t("The shop's data has no costs, so margins are unknown; only sales are shown."))
        ));
    }
    out.push_str(&section(
        "quadrants",
        ctx.t("Sales × margin quadrants"),
        ctx.t("Each dot is an item; dashed lines are the thresholds (median sales and margin rate) that split stars, traffic drivers, profit contributors and questions."),
        &charts::scatter(
            ctx.t("Sales × margin quadrants"),
            &pts,
            &groups,
            &html::compact,
            &html::pct,
            ctx.t(if sales_field == "units" { "Units sold" } else { "Revenue" }),
            ctx.t("Margin rate"),
            (Some(num(&r, "sales_threshold")).filter(|x| x.is_finite()), Some(num(&r, "margin_threshold")).filter(|x| x.is_finite())),
        ),
    ));
    let cols = [
        col(ctx.t("Key"), "key", Fmt::Text),
        col(ctx.t("Name"), "name", Fmt::Text),
        col(ctx.t("Units"), "units", Fmt::Count),
        col(ctx.t("Revenue"), "revenue", Fmt::Money),
        col(ctx.t("Gross margin"), "gross_margin", Fmt::Money),
        col(ctx.t("Margin rate"), "margin_rate", Fmt::Pct),
        col(ctx.t("Quadrant"), "quadrant_name", Fmt::Text),
        col(ctx.t("Action"), "action", Fmt::Text),
    ];
    out.push_str(&section(
        "categories",
        ctx.t("Categories"),
        "",
        &table(
            ctx,
            &cols
                .iter()
                .copied()
                .filter(|c| c.field != "name")
                .collect::<Vec<_>>(),
            list(&r, "categories"),
        ),
    ));
    let mut top: Vec<Value> = items.to_vec();
    top.sort_by(|a, b| num(b, "revenue").total_cmp(&num(a, "revenue")));
    top.truncate(25);
    out.push_str(&section(
        "items",
        ctx.t("Top items by revenue"),
        "",
        &table(ctx, &cols, &top),
    ));
    Ok(out)
}

pub(super) fn returns(ctx: &Ctx<'_>) -> Result<String, ApiError> {
    let mut args = dated(ctx, &["returns"]);
    args.set("limit", "0");
    let r = run(ctx, args)?;
    let total = field_of(&r, "total").cloned().unwrap_or(Value::Null);
    let mut s = String::from(r#"<div class="stats">"#);
    s.push_str(&stat(
        ctx.t("Return rate (units)"),
        &html::pct(num(&total, "return_rate_units")),
    ));
    s.push_str(&stat(
        ctx.t("Return rate (orders)"),
        &html::pct(num(&total, "return_rate_orders")),
    ));
    s.push_str(&stat(
        ctx.t("Good-review rate"),
        &html::pct(num(&total, "good_review_rate")),
    ));
    s.push_str(&stat(
        ctx.t("Average rating"),
        &html::grouped(num(&total, "average_rating"), 2),
    ));
    s.push_str("</div>");
    let mut cats: Vec<String> = Vec::new();
    let pts: Vec<Point> = list(&r, "rows")
        .iter()
        .filter(|x| num(x, "reviews") > 0.0 && num(x, "return_rate_units").is_finite())
        .map(|x| {
            let c = text(x, "category");
            let g = cats.iter().position(|k| *k == c).unwrap_or_else(|| {
                cats.push(c.clone());
                cats.len() - 1
            });
            Point {
                x: num(x, "return_rate_units"),
                y: num(x, "good_review_rate"),
                group: g,
                label: format!("{} {}", text(x, "key"), text(x, "name")),
            }
        })
        .collect();
    s.push_str(&charts::scatter(
        ctx.t("Return rate against good-review rate"),
        &pts,
        &cats,
        &html::pct,
        &html::pct,
        ctx.t("Return rate (units)"),
        ctx.t("Good-review rate"),
        (
            Some(num(&total, "return_rate_units")),
            Some(num(&total, "good_review_rate")),
        ),
    ));
    let mut out = section("returns", ctx.t("Return rate against good-review rate"), ctx.t("Each dot is an item with reviews; dashed lines are the shop's overall rates. Bottom right: many returns, few good reviews."), &s);
    let flags = list(&r, "flags");
    out.push_str(&section(
        "flags",
        ctx.t("Quality-risk flags"),
        ctx.t("Items returned far more often than their category, with the evidence."),
        &if flags.is_empty() {
            empty(ctx, "No item is flagged.")
        } else {
            table(
                ctx,
                &[
                    col(ctx.t("Item"), "item_id", Fmt::Text),
                    col(ctx.t("Name"), "name", Fmt::Text),
                    col(ctx.t("Return rate"), "return_rate", Fmt::Pct),
                    col(
                        ctx.t("Category median"),
                        "category_median_return_rate",
                        Fmt::Pct,
                    ),
                    col(ctx.t("Good-review rate"), "good_review_rate", Fmt::Pct),
                    col(ctx.t("Evidence"), "evidence", Fmt::Text),
                ],
                flags,
            )
        },
    ));
    Ok(out)
}

pub(super) fn basket(ctx: &Ctx<'_>) -> Result<String, ApiError> {
    let r = run(ctx, dated(ctx, &["basket"]))?;
    let mut s = String::from(r#"<div class="stats">"#);
    s.push_str(&stat(ctx.t("Baskets"), &html::count(num(&r, "baskets"))));
    s.push_str(&stat(ctx.t("Items"), &html::count(num(&r, "items"))));
    s.push_str(&stat(
        ctx.t("Frequent itemsets"),
        &html::count(num(&r, "frequent_itemsets")),
    ));
    s.push_str(&stat(
        ctx.t("Minimum support"),
        &html::pct(num(&r, "min_support")),
    ));
    s.push_str("</div>");
    let rules: Vec<Value> = list(&r, "rules")
        .iter()
        .map(|x| {
            let mut x = x.clone();
            let join = |k: &str| {
                list(&x, k)
                    .iter()
                    .map(|v| v.as_str().unwrap_or("").to_string())
                    .collect::<Vec<_>>()
                    .join(" + ")
            };
            let (a, c) = (join("antecedent"), join("consequent"));
            if let Some(o) = x.as_object_mut() {
                o.insert("rule".into(), Value::from(format!("{a} → {c}")));
            }
            x
        })
        .collect();
    s.push_str(&if rules.is_empty() {
        empty(ctx, "No rule reaches the thresholds.")
    } else {
        table(
            ctx,
            &[
                col(ctx.t("Rule"), "rule", Fmt::Text),
                col(ctx.t("Support"), "support", Fmt::Pct),
                col(ctx.t("Confidence"), "confidence", Fmt::Pct),
                col(ctx.t("Lift"), "lift", Fmt::Num),
                col(ctx.t("Baskets"), "count", Fmt::Count),
            ],
            &rules,
        )
    });
    let mut out = section("rules", ctx.t("Association rules"), ctx.t("Support: share of baskets with both sides; confidence: share of baskets with the left side that also hold the right; lift above 1: bought together more than by chance."), &s);
    let bundles: Vec<Value> = list(&r, "bundles")
        .iter()
        .map(|b| {
            let mut b = b.clone();
            let items = list(&b, "items")
                .iter()
                .map(|v| v.as_str().unwrap_or("").to_string())
                .collect::<Vec<_>>()
                .join(" + ");
            if let Some(o) = b.as_object_mut() {
                o.insert("bundle".into(), Value::from(items));
            }
            b
        })
        .collect();
    out.push_str(&section(
        "bundles",
        ctx.t("Bundle suggestions"),
        ctx.t("Order value of baskets with the bundle against those without."),
        &if bundles.is_empty() {
            empty(ctx, "No bundle suggestion.")
        } else {
            table(
                ctx,
                &[
                    col(ctx.t("Bundle"), "bundle", Fmt::Text),
                    col(ctx.t("Baskets"), "baskets", Fmt::Count),
                    col(ctx.t("Lift"), "lift", Fmt::Num),
                    col(ctx.t("AOV with"), "aov_with", Fmt::Money),
                    col(ctx.t("AOV without"), "aov_without", Fmt::Money),
                    col(ctx.t("AOV change"), "aov_change", Fmt::Pct),
                ],
                &bundles,
            )
        },
    ));
    Ok(out)
}

pub(super) fn inventory(ctx: &Ctx<'_>) -> Result<String, ApiError> {
    let mut args = dated(ctx, &["inventory"]);
    args.set("limit", "0");
    let r = run(ctx, args)?;
    let mut s = String::from(r#"<div class="stats">"#);
    s.push_str(&stat(
        ctx.t("Sell-through"),
        &html::pct(num(&r, "sell_through")),
    ));
    s.push_str(&stat(
        ctx.t("Share of SKUs sold"),
        &html::pct(num(&r, "sku_sold_share")),
    ));
    s.push_str(&stat(
        ctx.t("Inventory turnover"),
        &html::grouped(num(&r, "turnover"), 2),
    ));
    s.push_str(&stat(
        ctx.t("Days of inventory"),
        &html::grouped(num(&r, "days_of_inventory"), 1),
    ));
    s.push_str(&stat(
        ctx.t("Stock-out rate"),
        &html::pct(num(&r, "stockout_rate")),
    ));
    s.push_str("</div>");
    let all_items: &[Value] = list(&r, "items");
    let mut items: Vec<Value> = all_items.to_vec();
    // Most days of stock first (unsold stock has no end), then the most stock value tied up.
    items.sort_by(|a, b| {
        let k = |x: &Value| {
            let d = num(x, "days_of_inventory");
            if d.is_finite() { d } else { f64::INFINITY }
        };
        k(b).total_cmp(&k(a))
            .then(num(b, "average_inventory_value").total_cmp(&num(a, "average_inventory_value")))
    });
    items.truncate(25);
    let mut outs: Vec<Value> = all_items
        .iter()
        .filter(|x| num(x, "stockout_snapshots") > 0.0)
        .cloned()
        .collect();
    outs.sort_by(|a, b| num(b, "units_sold").total_cmp(&num(a, "units_sold")));
    outs.truncate(25);
    let stockouts = table(
        ctx,
        &[
            col(ctx.t("Item"), "item_id", Fmt::Text),
            col(ctx.t("Name"), "name", Fmt::Text),
            col(ctx.t("Units sold"), "units_sold", Fmt::Count),
            col(
                ctx.t("Snapshots out of stock"),
                "stockout_snapshots",
                Fmt::Count,
            ),
            col(ctx.t("Snapshots"), "snapshots", Fmt::Count),
            col(ctx.t("On hand"), "ending_on_hand", Fmt::Count),
        ],
        &outs,
    );
    s.push_str(&table(
        ctx,
        &[
            col(ctx.t("Item"), "item_id", Fmt::Text),
            col(ctx.t("Name"), "name", Fmt::Text),
            col(ctx.t("Units sold"), "units_sold", Fmt::Count),
            col(ctx.t("On hand"), "ending_on_hand", Fmt::Count),
            col(ctx.t("Sell-through"), "sell_through", Fmt::Pct),
            col(ctx.t("Turnover"), "turnover", Fmt::Num),
            col(ctx.t("Days of inventory"), "days_of_inventory", Fmt::Num),
        ],
        &items,
    ));
    let mut out = section(
        "inventory",
        ctx.t("Slowest-moving items"),
        ctx.t("Items with the most days of inventory at the current rate of sale."),
        &s,
    );
    if !outs.is_empty() {
        out.push_str(&section(
            "stockouts",
            ctx.t("Stock-outs"),
            ctx.t("Best sellers that were out of stock at some inventory snapshots: sales lost."),
            &stockouts,
        ));
    }
    Ok(out)
}
