//! Customer operations: RFM, lifetime value, churn, recommendations, audiences and their exports.

use super::*;

pub(super) fn rfm(ctx: &Ctx<'_>) -> Result<String, ApiError> {
    // One analysis: the segments as of the period's end, and the movement over the 90 days
    // before it.
    let day = match &ctx.filters.to {
        Some(t) => Some(t.clone()),
        None => ctx.source.newest_day(ctx.stamp)?,
    };
    let before = day
        .and_then(|d| chrono::NaiveDate::parse_from_str(&d, "%Y-%m-%d").ok())
        .map(|d| (d - chrono::Duration::days(90)).to_string());
    let mut call = as_of(ctx, &["rfm"]);
    if let Some(b) = &before {
        call.set("compare_to", b);
    }
    let r = run(ctx, call)?;
    let segs = list(&r, "segments");
    let bars: Vec<Bar> = segs
        .iter()
        .map(|g| Bar {
            label: cell(&ctx.field(g, "name"), Fmt::Text, ""),
            value: num(g, "customers"),
            text: format!(
                "{} · {} · {} {}",
                html::count(num(g, "customers")),
                html::pct(num(g, "share")),
                html::pct(num(g, "revenue_share")),
                ctx.t("of revenue")
            ),
            note: None,
        })
        .collect();
    let mut out = section(
        "segments",
        ctx.t("Segments"),
        ctx.t("Customers per RFM segment, their share, and their share of revenue."),
        &charts::hbars(ctx.t("Segments"), &bars),
    );
    out.push_str(&section(
        "actions",
        ctx.t("What to do with each segment"),
        "",
        &table(
            ctx,
            &[
                col(ctx.t("Segment"), "name", Fmt::Text),
                col(ctx.t("Customers"), "customers", Fmt::Count),
                col(ctx.t("Revenue"), "revenue", Fmt::Money),
                col(ctx.t("Mean recency (days)"), "mean_recency_days", Fmt::Num),
                col(ctx.t("Mean frequency"), "mean_frequency", Fmt::Num),
                col(ctx.t("Action"), "action", Fmt::Text),
            ],
            segs,
        ),
    ));
    if let Some(before) = before {
        let m = &r;
        let names: std::collections::HashMap<String, String> = segs
            .iter()
            .map(|g| {
                (
                    text(g, "segment"),
                    cell(&ctx.field(g, "name"), Fmt::Text, ""),
                )
            })
            .collect();
        let label = |k: &Value| match k.as_str() {
            None => ctx.t("(not a customer yet)").to_string(),
            Some(s) => names.get(s).cloned().unwrap_or_else(|| s.to_string()),
        };
        let mut moves: Vec<Value> = field_of(m, "movement")
            .map(|mv| list(mv, "transitions").to_vec())
            .unwrap_or_default()
            .into_iter()
            .filter(|t| field_of(t, "from") != field_of(t, "to"))
            .map(|t| serde_json::json!({"from": label(field_of(&t, "from").unwrap_or(&Value::Null)), "to": label(field_of(&t, "to").unwrap_or(&Value::Null)), "customers": field_of(&t, "customers").cloned().unwrap_or(Value::Null)}))
            .collect();
        moves.sort_by(|a, b| num(b, "customers").total_cmp(&num(a, "customers")));
        moves.truncate(15);
        out.push_str(&section(
            "movement",
            ctx.t("Movement between segments"),
            &format!("{} {before}", ctx.t("The largest moves since")),
            &table(
                ctx,
                &[
                    col(ctx.t("From"), "from", Fmt::Text),
                    col(ctx.t("To"), "to", Fmt::Text),
                    col(ctx.t("Customers"), "customers", Fmt::Count),
                ],
                &moves,
            ),
        ));
    }
    if let Some(c) = field_of(&r, "clustering") {
        out.push_str(&section(
            "clusters",
            ctx.t("k-means clusters"),
            &format!("k = {} ({})", text(c, "k"), ctx.t("chosen by silhouette")),
            &table(
                ctx,
                &[
                    col(ctx.t("Cluster"), "cluster", Fmt::Count),
                    col(ctx.t("Customers"), "customers", Fmt::Count),
                    col(ctx.t("Share of revenue"), "revenue_share", Fmt::Pct),
                    col(ctx.t("Mean recency (days)"), "mean_recency_days", Fmt::Num),
                    col(ctx.t("Mean frequency"), "mean_frequency", Fmt::Num),
                    col(ctx.t("Mean spend"), "mean_monetary", Fmt::Money),
                ],
                list(c, "clusters"),
            ),
        ));
    }
    Ok(out)
}

pub(super) fn clv(ctx: &Ctx<'_>) -> Result<String, ApiError> {
    let mut args = as_of(ctx, &["clv"]);
    args.set("limit", "0");
    let r = run(ctx, args)?;
    let customers = list(&r, "customers");
    let mut vals: Vec<f64> = customers
        .iter()
        .map(|c| num(c, "clv"))
        .filter(|v| v.is_finite())
        .collect();
    vals.sort_by(f64::total_cmp);
    let mut s = String::from(r#"<div class="stats">"#);
    s.push_str(&stat(ctx.t("Customers"), &html::count(vals.len() as f64)));
    let total: f64 = vals.iter().sum();
    s.push_str(&stat(ctx.t("Total expected value"), &ctx.money(total)));
    if !vals.is_empty() {
        s.push_str(&stat(
            ctx.t("Median CLV"),
            &ctx.money(shoplens_engine::models::stats::quantile(&vals, 0.5).unwrap_or(f64::NAN)),
        ));
        s.push_str(&stat(
            ctx.t("Top 10% hold"),
            &html::pct(vals.iter().rev().take(vals.len().div_ceil(10)).sum::<f64>() / total),
        ));
    }
    s.push_str("</div>");
    // Bins by quantile edges of the upper range, so the long tail does not flatten the chart.
    if let (Some(&lo), Some(&hi)) = (
        vals.first(),
        vals.get(vals.len().saturating_sub(1) * 99 / 100),
    ) {
        let n = 12;
        let width = ((hi - lo) / n as f64).max(1e-9);
        let mut bins = vec![0u64; n + 1];
        for v in &vals {
            bins[(((v - lo) / width).floor().max(0.0) as usize).min(n)] += 1;
        }
        let bars: Vec<(String, f64, String)> = bins
            .iter()
            .enumerate()
            .map(|(i, c)| {
                let label = if i == n {
                    format!("≥{}", html::compact(lo + width * n as f64))
                } else {
                    html::compact(lo + width * i as f64)
                };
                (label, *c as f64, html::count(*c as f64))
            })
            .collect();
        s.push_str(&charts::columns(
            ctx.t("Distribution of CLV"),
            &bars,
            ctx.t("Customers"),
        ));
    }
    let mut out = section(
        "clv",
        ctx.t("Distribution of CLV"),
        &format!(
            "{} {} {}",
            ctx.t("Expected revenue over"),
            text(&r, "horizon"),
            ctx.t("weeks, discounted; the last bar holds the top 1%.")
        ),
        &s,
    );
    let top: Vec<Value> = customers.iter().take(20).cloned().collect();
    out.push_str(&section(
        "top",
        ctx.t("Most valuable customers"),
        "",
        &table(
            ctx,
            &[
                col(ctx.t("Customer"), "user_id", Fmt::Text),
                col(ctx.t("Repeat purchases"), "frequency", Fmt::Count),
                col("P(alive)", "p_alive", Fmt::Pct),
                col(ctx.t("Expected purchases"), "expected_purchases", Fmt::Num),
                col(
                    ctx.t("Expected order value"),
                    "expected_order_value",
                    Fmt::Money,
                ),
                col("CLV", "clv", Fmt::Money),
            ],
            &top,
        ),
    ));
    Ok(out)
}

pub(super) const STAGES: &[(&str, &str)] = &[
    ("new", "New"),
    ("active", "Active"),
    ("won_back", "Won back"),
    ("at_risk", "At risk"),
    ("churned", "Churned"),
];

pub(super) fn churn(ctx: &Ctx<'_>) -> Result<String, ApiError> {
    let mut args = as_of(ctx, &["churn"]);
    args.set("limit", "20");
    let r = run(ctx, args)?;
    let counts = field_of(&r, "counts").cloned().unwrap_or(Value::Null);
    let mut s = String::from(r#"<div class="stats">"#);
    s.push_str(&stat(
        ctx.t("Churn rate"),
        &html::pct(num(&r, "churn_rate")),
    ));
    s.push_str(&stat(
        ctx.t("At-risk rate"),
        &html::pct(num(&r, "at_risk_rate")),
    ));
    for (k, l) in STAGES {
        s.push_str(&stat(ctx.t(l), &html::count(num(&counts, k))));
    }
    s.push_str("</div>");
    let st = run(ctx, as_of(ctx, &["stages"]))?;
    let snaps = list(&st, "snapshots");
    let labels: Vec<String> = snaps.iter().map(|x| text(x, "day")).collect();
    let series: Vec<(String, Vec<f64>)> = STAGES
        .iter()
        .map(|(k, l)| {
            (
                ctx.t(l).to_string(),
                snaps
                    .iter()
                    .map(|x| field_of(x, "counts").map_or(0.0, |c| num(c, k)))
                    .collect(),
            )
        })
        .collect();
    s.push_str(&charts::stacked(
        ctx.t("Buyers by stage"),
        &labels,
        &series,
        ctx.t("Customers"),
    ));
    let mut out = section("stages", ctx.t("Buyers by stage"), ctx.t("At the end of each month: new, active, won back, at risk (quiet longer than usual) and churned buyers."), &s);
    let wb: Vec<Value> = list(&r, "win_back").iter().take(20).cloned().collect();
    out.push_str(&section(
        "winback",
        ctx.t("Win-back candidates"),
        ctx.t("At-risk and churned customers by expected value: contact these first."),
        &table(
            ctx,
            &[
                col(ctx.t("Customer"), "user_id", Fmt::Text),
                col(ctx.t("Stage"), "stage", Fmt::Text),
                col(
                    ctx.t("Days since last order"),
                    "days_since_last_order",
                    Fmt::Count,
                ),
                col(
                    ctx.t("Usual interval (days)"),
                    "expected_interval_days",
                    Fmt::Num,
                ),
                col("P(alive)", "p_alive", Fmt::Pct),
                col(ctx.t("Spent so far"), "historical_value", Fmt::Money),
                col(ctx.t("Expected value"), "expected_value", Fmt::Money),
            ],
            &wb,
        ),
    ));
    Ok(out)
}

/// A customer and an item to start from: the best RFM customer and the best-selling item.
pub(super) fn examples(ctx: &Ctx<'_>) -> Result<(String, String), ApiError> {
    let r = sql(
        ctx,
        "SELECT (SELECT user_id FROM orders WHERE user_id IS NOT NULL GROUP BY user_id ORDER BY count(*) DESC, user_id LIMIT 1) AS u, (SELECT item_id FROM order_items GROUP BY item_id ORDER BY sum(quantity) DESC, item_id LIMIT 1) AS i",
    )?;
    let row = list(&r, "rows").first().cloned().unwrap_or(Value::Null);
    Ok((text(&row, "u"), text(&row, "i")))
}

pub(super) fn recommend(ctx: &Ctx<'_>) -> Result<String, ApiError> {
    let (eu, ei) = examples(ctx)?;
    let user = ctx.param("user").map_or(eu, str::to_string);
    let item = ctx.param("item").map_or(ei, str::to_string);
    let mut out = String::new();
    if !ctx.report {
        let _ = write!(
            out,
            r#"<form class="inline noprint card" method="get"><label>{} <input name="user" value="{}"></label><label>{} <input name="item" value="{}"></label>{}<button class="btn" type="submit">{}</button></form>"#,
            esc(ctx.t("Customer")),
            esc(&user),
            esc(ctx.t("Item")),
            esc(&item),
            hidden_filters(ctx),
            esc(ctx.t("Show"))
        );
    }
    let cols = [
        col(ctx.t("Item"), "item_id", Fmt::Text),
        col(ctx.t("Category"), "category", Fmt::Text),
        col(ctx.t("Score"), "score", Fmt::Num),
        col(ctx.t("Why"), "reason", Fmt::Text),
    ];
    if !user.is_empty() {
        let r = run(
            ctx,
            Call::new(&["recommend", "user"])
                .with("k", 10)
                .with("users", &user),
        )?;
        let u = list(&r, "users").first().cloned().unwrap_or(Value::Null);
        let note = if field_of(&u, "cold_start") == Some(&Value::Bool(true)) {
            ctx.t("New or unknown customer: popular items for the context.")
        } else {
            ctx.t("From the customer's own views and purchases.")
        };
        out.push_str(&section(
            "for-user",
            &format!("{} {user}", ctx.t("For customer")),
            note,
            &table(ctx, &cols, list(&u, "items")),
        ));
    }
    if !item.is_empty() {
        let r = run(
            ctx,
            Call::new(&["recommend", "item"])
                .with("k", 10)
                .with("item", &item),
        )?;
        out.push_str(&section(
            "with-item",
            &format!("{} {item}", ctx.t("Goes with item")),
            ctx.t("Items viewed or bought by the same customers."),
            &table(ctx, &cols, list(&r, "items")),
        ));
    }
    Ok(out)
}

pub(super) fn audiences(ctx: &Ctx<'_>) -> Result<String, ApiError> {
    let r = run(ctx, as_of(ctx, &["audience", "list"]))?;
    let list_a = list(&r, "audiences");
    let mut s = String::new();
    if list_a.is_empty() {
        s.push_str(&empty(ctx, "No audience is saved yet. Create one with `shoplens audience create NAME --segment at_risk …`."));
    } else {
        s.push_str(r#"<div class="tablewrap"><table><thead><tr>"#);
        for h in ["Audience", "Customers", "Rule", "Description", "Export"] {
            let _ = write!(s, "<th>{}</th>", esc(ctx.t(h)));
        }
        s.push_str("</tr></thead><tbody>");
        for a in list_a {
            let name = text(a, "name");
            let buttons = if ctx.report {
                String::new()
            } else {
                ["csv", "xlsx", "jsonl"]
                    .iter()
                    .map(|f| format!(
                        r#"<form method="post" action="/p/audiences{q}" style="display:inline"><input type="hidden" name="csrf" value="{c}"><input type="hidden" name="audience" value="{n}"><input type="hidden" name="format" value="{f}"><button class="btn" type="submit" data-export="{n}.{f}">{f}</button></form> "#,
                        q = if ctx.filters.query().is_empty() { String::new() } else { format!("?{}", ctx.filters.query()) },
                        c = esc(&ctx.csrf),
                        n = esc(&name),
                        f = f,
                    ))
                    .collect()
            };
            let _ = write!(
                s,
                r#"<tr><td>{}</td><td class="n">{}</td><td><code>{}</code></td><td>{}</td><td class="noprint">{}</td></tr>"#,
                esc(&name),
                esc(&html::count(num(a, "customers"))),
                esc(&text(a, "rule")),
                esc(&text(a, "description")),
                buttons
            );
        }
        s.push_str("</tbody></table></div>");
    }
    let mut out = section("audiences", ctx.t("Saved audiences"), ctx.t("Sizes are current members as of the period's end; an export downloads the members with their profile and records it in the export log."), &s);
    let ex = run(ctx, Call::new(&["audience", "exports"]))?;
    let mut log: Vec<Value> = list(&ex, "exports").to_vec();
    log.reverse();
    log.truncate(20);
    out.push_str(&section(
        "exports",
        ctx.t("Export log"),
        ctx.t("The latest exports, newest first."),
        &if log.is_empty() {
            empty(ctx, "Nothing exported yet.")
        } else {
            table(
                ctx,
                &[
                    col(ctx.t("Exported at"), "exported_at", Fmt::Text),
                    col(ctx.t("Audience"), "audience", Fmt::Text),
                    col(ctx.t("Customers"), "customers", Fmt::Count),
                    col(ctx.t("Format"), "format", Fmt::Text),
                    col(ctx.t("Data as of"), "data_as_of", Fmt::Text),
                ],
                &log,
            )
        },
    ));
    Ok(out)
}

/// `POST /p/audiences`: exports an audience into the workspace's `exports/` folder (recorded
/// in the export log; a new file each time, and files older than `export_max_age` removed) and
/// sends the file.
pub(crate) fn export_audience(
    ctx: &Ctx<'_>,
    root: &Path,
    export_max_age: std::time::Duration,
    form: &[(String, String)],
) -> Result<PageResponse, ApiError> {
    let get = |k: &str| {
        form.iter()
            .find(|(n, _)| n == k)
            .map(|(_, v)| v.trim().to_string())
            .unwrap_or_default()
    };
    let name = get("audience");
    if name.is_empty()
        || name.len() > 64
        || !name
            .chars()
            .all(|c| c.is_ascii_alphanumeric() || c == '-' || c == '_')
    {
        return Err(ApiError::new(
            ApiErrorCode::InvalidParameter,
            "`audience` must be a saved audience's name",
        ));
    }
    let (ext, content_type) = match get("format").as_str() {
        "csv" => ("csv", "text/csv; charset=utf-8"),
        "xlsx" => (
            "xlsx",
            "application/vnd.openxmlformats-officedocument.spreadsheetml.sheet",
        ),
        "jsonl" => ("jsonl", "application/x-ndjson"),
        other => {
            return Err(ApiError::new(
                ApiErrorCode::InvalidParameter,
                format!("`format` is csv, xlsx or jsonl, not `{other}`"),
            ));
        }
    };
    let path = audiences::new_export_file(&root.join("exports"), &name, ext, Some(export_max_age))
        .map_err(|e| ApiError::new(ApiErrorCode::Internal, e.to_string()))?;
    let file_name = path
        .file_name()
        .map_or_else(String::new, |f| f.to_string_lossy().into_owned());
    let dest = audiences::Destination::file(path.clone())
        .map_err(|e| ApiError::new(ApiErrorCode::Internal, e.to_string()))?;
    ctx.source.export(&name, &dest, ctx.filters.to.as_deref())?;
    let bytes = std::fs::read(&path)
        .map_err(|e| ApiError::new(ApiErrorCode::Internal, format!("{}: {e}", path.display())))?;
    Ok(PageResponse::File {
        name: file_name,
        content_type: content_type.into(),
        bytes,
    })
}
