//! People (人): funnel, activity, cohorts, paths, repurchase, lifecycle.

use super::*;

pub(super) const FUNNEL_STEPS: &[&str] = &[
    "product_view",
    "add_to_cart",
    "checkout_start",
    "order",
    "payment",
];

pub(super) fn funnel(ctx: &Ctx<'_>) -> Result<String, ApiError> {
    let steps = match ctx.param("steps") {
        Some(s) => s.to_string(),
        None => {
            let present = sql(ctx, "SELECT DISTINCT event FROM events")?;
            let have: Vec<String> = list(&present, "rows")
                .iter()
                .map(|r| text(r, "event"))
                .collect();
            let steps: Vec<&str> = FUNNEL_STEPS
                .iter()
                .copied()
                .filter(|s| have.iter().any(|h| h == s))
                .collect();
            if steps.len() < 2 {
                return Ok(empty(
                    ctx,
                    "The events table has too few funnel events (product_view, add_to_cart, order …) for a funnel.",
                ));
            }
            steps.join(",")
        }
    };
    let window = ctx.param("window").unwrap_or("24h").to_string();
    let mut args = dated(ctx, &["funnel"]);
    args.set("steps", &steps);
    args.set("window", &window);
    if let Some(c) = &ctx.filters.channel {
        args.set("channel", c);
    }
    let r = run(ctx, args)?;
    let rows = list(&r, "steps");
    let bars: Vec<Bar> = rows
        .iter()
        .enumerate()
        .map(|(i, st)| {
            let users = num(st, "users");
            let next = rows.get(i + 1);
            Bar {
                label: text(st, "step"),
                value: users,
                text: format!(
                    "{} · {}",
                    html::count(users),
                    html::pct(num(st, "conversion_from_first"))
                ),
                note: next.map(|n| {
                    format!(
                        "▼ {} {} ({})",
                        html::count(num(n, "drop_off")),
                        ctx.t("dropped"),
                        html::pct(num(n, "drop_off_rate"))
                    )
                }),
            }
        })
        .collect();
    let mut s = String::new();
    if !ctx.report {
        let _ = write!(
            s,
            r#"<form class="inline noprint" method="get"><label>{} <input name="steps" value="{}" size="48"></label><label>{} <input name="window" value="{}" size="6"></label>{}<button class="btn" type="submit">{}</button></form>"#,
            esc(ctx.t("Steps")),
            esc(&steps),
            esc(ctx.t("Window")),
            esc(&window),
            hidden_filters(ctx),
            esc(ctx.t("Show"))
        );
    }
    s.push_str(&charts::hbars(ctx.t("Funnel"), &bars));
    s.push_str(&table(
        ctx,
        &[
            col(ctx.t("Step"), "step", Fmt::Text),
            col(ctx.t("Users"), "users", Fmt::Count),
            col(ctx.t("From previous"), "conversion_from_previous", Fmt::Pct),
            col(ctx.t("From first"), "conversion_from_first", Fmt::Pct),
            col(ctx.t("Dropped"), "drop_off", Fmt::Count),
            col(ctx.t("Drop-off rate"), "drop_off_rate", Fmt::Pct),
            col(
                ctx.t("Median seconds to convert"),
                "median_seconds_to_convert",
                Fmt::Num,
            ),
        ],
        rows,
    ));
    Ok(section("funnel", ctx.t("Funnel"), ctx.t("Bars are users reaching each step within the window of their first step; red lines are those who dropped before the next."), &s))
}

pub(super) fn hidden_filters(ctx: &Ctx<'_>) -> String {
    let f = &ctx.filters;
    [("from", &f.from), ("to", &f.to), ("channel", &f.channel)]
        .iter()
        .filter_map(|(k, v)| {
            v.as_ref()
                .map(|v| format!(r#"<input type="hidden" name="{k}" value="{}">"#, esc(v)))
        })
        .collect()
}

pub(super) const WEEKDAYS: &[&str] = &["Mon", "Tue", "Wed", "Thu", "Fri", "Sat", "Sun"];

pub(super) fn hour_weekday(
    ctx: &Ctx<'_>,
    cells: &[Value],
    measure: &str,
    title: &'static str,
) -> String {
    let rows: Vec<String> = WEEKDAYS.iter().map(|d| ctx.t(d).to_string()).collect();
    let cols: Vec<String> = (0..24).map(|h| h.to_string()).collect();
    let mut grid: Vec<Vec<Option<(f64, String)>>> = vec![vec![None; 24]; 7];
    for c in cells {
        let (d, h) = (num(c, "weekday") as usize, num(c, "hour") as usize);
        if (1..=7).contains(&d) && h < 24 {
            let v = num(c, measure);
            grid[d - 1][h] = Some((v, html::count(v)));
        }
    }
    charts::heatmap(ctx.t(title), &rows, &cols, &grid, false)
}

pub(super) fn activity(ctx: &Ctx<'_>) -> Result<String, ApiError> {
    let r = run(ctx, dated(ctx, &["activity"]))?;
    let mut s = String::from(r#"<div class="stats">"#);
    for (l, k) in [("DAU", "dau"), ("WAU", "wau"), ("MAU", "mau")] {
        s.push_str(&stat(ctx.t(l), &html::count(num(&r, k))));
    }
    s.push_str(&stat(
        ctx.t("Stickiness (DAU/MAU)"),
        &html::pct(num(&r, "stickiness")),
    ));
    s.push_str("</div>");
    let heat = list(&r, "heatmap");
    let mut out = section("activity", ctx.t("Orders by hour and weekday"), ctx.t("Darker cells are busier; hover a cell for its count. Hours are in the shop's time zone."), &format!("{s}{}", hour_weekday(ctx, heat, "orders", "Orders by hour and weekday")));
    out.push_str(&section(
        "events-heat",
        ctx.t("Events by hour and weekday"),
        ctx.t("All behaviour events: views, carts, orders."),
        &hour_weekday(ctx, heat, "events", "Events by hour and weekday"),
    ));
    let daily = list(&r, "daily");
    let series: Vec<Series> = ["dau", "wau", "mau"]
        .iter()
        .map(|k| Series {
            name: k.to_uppercase(),
            points: daily
                .iter()
                .enumerate()
                .map(|(i, d)| (i as f64, num(d, k)))
                .collect(),
        })
        .collect();
    let dates: Vec<String> = daily.iter().map(|d| text(d, "date")).collect();
    let fx = |x: f64| dates.get(x.max(0.0) as usize).cloned().unwrap_or_default();
    out.push_str(&section(
        "actives",
        ctx.t("Daily, weekly and monthly active users"),
        ctx.t("Users with any event on the day, in the 7 days, in the 30 days up to it."),
        &charts::lines(
            ctx.t("Active users"),
            &series,
            &fx,
            &html::compact,
            ctx.t("Date"),
            ctx.t("Users"),
        ),
    ));
    let cats: Vec<Value> = list(&r, "categories")
        .iter()
        .map(|c| {
            let mut c = c.clone();
            if let Some(o) = c.as_object_mut() {
                o.remove("heatmap");
            }
            c
        })
        .collect();
    out.push_str(&section(
        "categories",
        ctx.t("By category"),
        ctx.t("Peak hours are the three busiest hours of the day for the category."),
        &table(
            ctx,
            &[
                col(ctx.t("Category"), "category", Fmt::Text),
                col(ctx.t("Events"), "events", Fmt::Count),
                col(ctx.t("Orders"), "orders", Fmt::Count),
                col(ctx.t("Revenue"), "revenue", Fmt::Money),
                col(ctx.t("Peak hours"), "peak_hours", Fmt::Count),
            ],
            &cats,
        ),
    ));
    Ok(out)
}

pub(super) fn cohorts(ctx: &Ctx<'_>) -> Result<String, ApiError> {
    let mut args = dated(ctx, &["cohorts"]);
    if ctx.filters.channel.is_some() {
        args.set("by_channel", "true");
    }
    let r = run(ctx, args)?;
    let rows: Vec<&Value> = list(&r, "cohorts")
        .iter()
        .filter(|c| match &ctx.filters.channel {
            Some(ch) => text(c, "channel") == *ch,
            None => true,
        })
        .collect();
    if rows.is_empty() {
        return Ok(empty(ctx, "No cohort has customers for these filters."));
    }
    let k_max = rows
        .iter()
        .map(|c| list(c, "periods").len())
        .max()
        .unwrap_or(0);
    let labels: Vec<String> = rows
        .iter()
        .map(|c| format!("{} ({})", text(c, "cohort"), html::count(num(c, "size"))))
        .collect();
    let cols: Vec<String> = (0..k_max).map(|k| format!("+{k}")).collect();
    let grid: Vec<Vec<Option<(f64, String)>>> = rows
        .iter()
        .map(|c| {
            list(c, "periods")
                .iter()
                // A period still under way is not a rate yet: left blank.
                .take_while(|p| field_of(p, "partial") != Some(&Value::Bool(true)))
                .map(|p| {
                    let v = num(p, "rate");
                    Some((if num(p, "k") == 0.0 { 0.0 } else { v }, html::pct(v)))
                })
                .collect()
        })
        .collect();
    let mut out = section(
        "retention",
        ctx.t("Retention by cohort"),
        ctx.t("Share of each first-purchase cohort that ordered again k months later (the cohort's size in brackets)."),
        &charts::heatmap(ctx.t("Retention by cohort"), &labels, &cols, &grid, true),
    );
    let mut series: Vec<Series> = Vec::new();
    let avg = list(&r, "average");
    if ctx.filters.channel.is_none() && !avg.is_empty() {
        series.push(Series {
            name: ctx.t("Average").to_string(),
            points: avg
                .iter()
                .map(|p| (num(p, "k"), num(p, "cumulative_revenue_per_member")))
                .collect(),
        });
    }
    for c in rows.iter().rev().take(7).rev() {
        series.push(Series {
            name: text(c, "cohort"),
            points: list(c, "periods")
                .iter()
                .filter(|p| field_of(p, "partial") != Some(&Value::Bool(true)))
                .map(|p| (num(p, "k"), num(p, "cumulative_revenue_per_member")))
                .collect(),
        });
    }
    out.push_str(&section(
        "ltv",
        ctx.t("Revenue per member (LTV curves)"),
        ctx.t("Cumulative revenue per cohort member by months since the first purchase; the average and the seven latest cohorts."),
        &charts::lines(ctx.t("LTV curves"), &series, &|x| format!("+{x:.0}"), &html::compact, ctx.t("Months since first purchase"), ctx.t("Revenue per member")),
    ));
    Ok(out)
}

pub(super) fn paths(ctx: &Ctx<'_>) -> Result<String, ApiError> {
    let r = run(ctx, dated(ctx, &["paths"]))?;
    let links: Vec<Link> = list(&r, "links")
        .iter()
        .map(|l| Link {
            step: num(l, "step").max(0.0) as usize,
            from: text(l, "from"),
            to: text(l, "to"),
            value: num(l, "sessions"),
        })
        .collect();
    if links.is_empty() {
        return Ok(empty(ctx, "No sessions with events for these filters."));
    }
    let mut out = section(
        "flow",
        ctx.t("Flow of sessions"),
        ctx.t("Each column is a step of the session; bands are as wide as the sessions that move from one event to the next."),
        &charts::sankey(ctx.t("Flow of sessions"), &links),
    );
    let rows: Vec<Value> = list(&r, "paths")
        .iter()
        .map(|p| {
            let steps: Vec<String> = list(p, "path").iter().map(|x| x.as_str().unwrap_or("").to_string()).collect();
            serde_json::json!({"path": steps.join(" → "), "sessions": field_of(p, "sessions").cloned().unwrap_or(Value::Null), "share": field_of(p, "share").cloned().unwrap_or(Value::Null)})
        })
        .collect();
    out.push_str(&section(
        "top-paths",
        ctx.t("Commonest paths"),
        ctx.t("Share is of all sessions in the period."),
        &table(
            ctx,
            &[
                col(ctx.t("Path"), "path", Fmt::Text),
                col(ctx.t("Sessions"), "sessions", Fmt::Count),
                col(ctx.t("Share"), "share", Fmt::Pct),
            ],
            &rows,
        ),
    ));
    Ok(out)
}

pub(super) fn repurchase(ctx: &Ctx<'_>) -> Result<String, ApiError> {
    let mut args = dated(ctx, &["repurchase"]);
    if let Some(t) = &ctx.filters.to {
        args.set("as_of", t);
    }
    let r = run(ctx, args)?;
    let mut s = String::from(r#"<div class="stats">"#);
    s.push_str(&stat(ctx.t("Repurchase rate"), &html::pct(num(&r, "rate"))));
    s.push_str(&stat(
        ctx.t("New customers"),
        &html::count(num(&r, "customers")),
    ));
    s.push_str(&stat(
        ctx.t("Repurchased"),
        &html::count(num(&r, "repurchasers")),
    ));
    s.push_str(&stat(
        ctx.t("Median days between purchases"),
        &html::count(num(&r, "median_interval_days")),
    ));
    s.push_str("</div>");
    let bars: Vec<(String, f64, String)> = list(&r, "interval_histogram")
        .iter()
        .map(|b| {
            (
                format!("{}–{}", text(b, "from_days"), text(b, "to_days")),
                num(b, "count"),
                format!(
                    "{} ({})",
                    html::count(num(b, "count")),
                    html::pct(num(b, "share"))
                ),
            )
        })
        .collect();
    s.push_str(&charts::columns(
        ctx.t("Days between purchases"),
        &bars,
        ctx.t("Intervals"),
    ));
    let mut out = section("repurchase", ctx.t("Repurchase"), ctx.t("New customers in the period who ordered again within 30 days of their first purchase day; bars are the days between consecutive purchase days."), &s);
    let cols = [
        col(ctx.t("Value"), "value", Fmt::Text),
        col(ctx.t("Customers"), "customers", Fmt::Count),
        col(ctx.t("Repurchased"), "repurchasers", Fmt::Count),
        col(ctx.t("Rate"), "rate", Fmt::Pct),
        col(
            ctx.t("Median days between purchases"),
            "median_interval_days",
            Fmt::Num,
        ),
    ];
    for (key, title) in [
        ("by_acquisition_channel", "By acquisition channel"),
        ("by_member_tier", "By member tier"),
        ("by_first_category", "By first category"),
    ] {
        out.push_str(&section(
            key,
            ctx.t(title),
            "",
            &table(ctx, &cols, list(&r, key)),
        ));
    }
    Ok(out)
}

pub(super) fn lifecycle(ctx: &Ctx<'_>) -> Result<String, ApiError> {
    let r = run(ctx, dated(ctx, &["lifecycle"]))?;
    let periods = list(&r, "periods");
    let labels: Vec<String> = periods.iter().map(|p| text(p, "period")).collect();
    let series: Vec<(String, Vec<f64>)> = [
        ("new", "New"),
        ("returning", "Returning"),
        ("resurrecting", "Resurrecting"),
        ("dormant", "Dormant"),
    ]
    .iter()
    .map(|(k, l)| {
        (
            ctx.t(l).to_string(),
            // Dormant users are drawn below zero: they left the active base.
            periods
                .iter()
                .map(|p| {
                    if *k == "dormant" {
                        -num(p, k).abs()
                    } else {
                        num(p, k)
                    }
                })
                .collect(),
        )
    })
    .collect();
    let mut out = section(
        "lifecycle",
        ctx.t("Lifecycle by week"),
        ctx.t("New: first active; returning: active the week before too; resurrecting: back after a gap; dormant (below zero): active the week before, not this week."),
        &charts::stacked(ctx.t("Lifecycle by week"), &labels, &series, ctx.t("Users")),
    );
    let recent: Vec<Value> = periods.iter().rev().take(8).cloned().collect();
    out.push_str(&section(
        "recent",
        ctx.t("Latest weeks"),
        ctx.t("Quick ratio = (new + resurrecting) / dormant; above 1 the base grows."),
        &table(
            ctx,
            &[
                col(ctx.t("Week"), "period", Fmt::Text),
                col(ctx.t("New"), "new", Fmt::Count),
                col(ctx.t("Returning"), "returning", Fmt::Count),
                col(ctx.t("Resurrecting"), "resurrecting", Fmt::Count),
                col(ctx.t("Dormant"), "dormant", Fmt::Count),
                col(ctx.t("Quick ratio"), "quick_ratio", Fmt::Num),
            ],
            &recent,
        ),
    ));
    Ok(out)
}
