//! The command centre: the KPIs against the period before, and what to act on.

use super::*;

/// KPIs where a fall is good news.
pub(super) const LOWER_IS_BETTER: &[&str] = &["churn_rate", "return_rate"];

pub(super) fn kpi_value(ctx: &Ctx<'_>, unit: &str, v: f64) -> String {
    if !v.is_finite() {
        return "–".into();
    }
    match unit {
        "money" => ctx.money(v),
        "ratio" => html::pct(v),
        "count" => html::count(v),
        _ => html::grouped(v, 2),
    }
}

pub(super) fn home(ctx: &Ctx<'_>) -> Result<String, ApiError> {
    let mut args = as_of(ctx, &["kpis"]);
    if let Some(d) = ctx.filters.days() {
        args.set("days", d);
    }
    let r = run(ctx, args)?;
    let mut s = format!(
        r#"<p class="sub">{} {} – {} · {} {} – {}</p><div class="kpis">"#,
        esc(ctx.t("Period")),
        esc(&text(&r, "from")),
        esc(&text(&r, "to")),
        esc(ctx.t("compared with")),
        esc(&text(&r, "previous_from")),
        esc(&text(&r, "previous_to")),
    );
    for k in list(&r, "kpis") {
        let key = text(k, "key");
        let unit = text(k, "unit");
        let v = num(k, "value");
        let prev = num(k, "previous");
        let lower = LOWER_IS_BETTER.contains(&key.as_str());
        // Ratios move in percentage points; other figures by their relative change.
        let (delta, shown) = if unit == "ratio" {
            let p = num(k, "change_points");
            (
                p,
                if p.is_finite() {
                    format!("{p:+.2} pp")
                } else {
                    "–".into()
                },
            )
        } else {
            let c = num(k, "change");
            (
                c,
                if c.is_finite() {
                    format!("{:+.1}%", c * 100.0)
                } else {
                    "–".into()
                },
            )
        };
        let class = if !delta.is_finite() || delta.abs() < 1e-12 {
            "flat"
        } else if (delta > 0.0) != lower {
            "up"
        } else {
            "down"
        };
        let arrow = match (class, delta > 0.0) {
            ("flat", _) => "→",
            (_, true) => "▲",
            (_, false) => "▼",
        };
        let raw = |x: &str| k.get(x).map_or("null".to_string(), Value::to_string);
        // An estimate shows its interval; a note says how it was made or why it is missing.
        let ci = list(k, "ci");
        let mut extra = String::new();
        if let [lo, hi] = ci {
            let f = |x: &Value| kpi_value(ctx, &unit, x.as_f64().unwrap_or(f64::NAN));
            let _ = write!(
                extra,
                r#"<div class="prev">95%: {} – {}</div>"#,
                esc(&f(lo)),
                esc(&f(hi))
            );
        }
        let note = cell(&ctx.field(k, "note"), Fmt::Text, "");
        if !v.is_finite() && note != "–" {
            let _ = write!(extra, r#"<div class="prev">{}</div>"#, esc(&note));
        }
        let _ = write!(
            s,
            r#"<a class="kpi" href="{href}" data-kpi="{key}" data-value="{rv}" data-previous="{rp}" title="{title}"><div class="name">{name}</div><div class="value">{value}</div><div class="chg {class}">{arrow} {shown}</div><div class="prev">{prev_l} {prev}</div>{extra}</a>"#,
            title = esc(if note == "–" { "" } else { &note }),
            href = ctx.link(&text(k, "explained_by")),
            key = esc(&key),
            rv = esc(&raw("value")),
            rp = esc(&raw("previous")),
            name = esc(&cell(&ctx.field(k, "name"), Fmt::Text, "")),
            value = esc(&kpi_value(ctx, &unit, v)),
            prev_l = esc(ctx.t("before:")),
            prev = esc(&kpi_value(ctx, &unit, prev)),
        );
    }
    s.push_str("</div>");
    s.push_str(&to_act(ctx, (&text(&r, "from"), &text(&r, "to")))?);
    Ok(s)
}

/// The command centre's list of what needs doing, each item linking to where it is done. Figures
/// over a period (stock-outs) take the KPIs' period, and their link opens that period.
pub(super) fn to_act(ctx: &Ctx<'_>, (from, to): (&str, &str)) -> Result<String, ApiError> {
    let mut items: Vec<(String, String, String)> = Vec::new();
    let churn = run(ctx, {
        let mut a = as_of(ctx, &["churn"]);
        a.set("limit", "20");
        a
    })?;
    let at_risk = field_of(&churn, "counts").map_or(f64::NAN, |c| num(c, "at_risk"));
    if at_risk > 0.0 {
        items.push((
            html::count(at_risk),
            ctx.t("customers are at risk of churning: export the win-back audience")
                .to_string(),
            ctx.link("audiences"),
        ));
    }
    let returns = run(ctx, dated(ctx, &["returns"]))?;
    let flags = list(&returns, "flags").len();
    if flags > 0 {
        items.push((
            flags.to_string(),
            ctx.t("items are flagged for quality risk (returns far above their category)")
                .to_string(),
            ctx.link("returns"),
        ));
    }
    // Stock-outs over the KPIs' period, beside the stock-out rate of the same report: the SKUs
    // out of stock on some snapshot, and the share of SKU snapshots with nothing on hand.
    let mut a = Call::new(&["inventory"]);
    a.set("from", from);
    a.set("to", to);
    a.set("limit", "0");
    let inv = run(ctx, a)?;
    let inventory = ctx.link_in("inventory", from, to);
    let stockouts = list(&inv, "stockouts").len();
    if stockouts > 0 {
        items.push((
            format!("{stockouts} / {}", html::count(num(&inv, "skus"))),
            format!(
                "{} {from} – {to} ({} {})",
                ctx.t("SKUs ran out of stock at least once in"),
                ctx.t("stock-out rate, share of SKU snapshots with nothing on hand:"),
                html::pct(num(&inv, "stockout_rate"))
            ),
            inventory.clone(),
        ));
    }
    let slow = list(&inv, "slow_movers").len();
    if slow > 0 {
        items.push((
            slow.to_string(),
            ctx.t("SKUs are slow movers: consider a promotion or a bundle")
                .to_string(),
            inventory,
        ));
    }
    if items.is_empty() {
        return Ok(String::new());
    }
    let mut s = String::from("<ul>");
    for (n, what, href) in items {
        let _ = write!(
            s,
            r#"<li><a href="{}"><b>{}</b> {}</a></li>"#,
            href,
            esc(&n),
            esc(&what)
        );
    }
    s.push_str("</ul>");
    Ok(section(
        "act",
        ctx.t("Where to act"),
        ctx.t("What the figures ask for now; each line opens the page where it is done."),
        &s,
    ))
}
