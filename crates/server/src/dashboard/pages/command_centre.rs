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
        let _ = write!(
            s,
            r#"<a class="kpi" href="{href}" data-kpi="{key}" data-value="{rv}" data-previous="{rp}"><div class="name">{name}</div><div class="value">{value}</div><div class="chg {class}">{arrow} {shown}</div><div class="prev">{prev_l} {prev}</div></a>"#,
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
    s.push_str(&to_act(ctx)?);
    Ok(s)
}

/// The command centre's list of what needs doing, each item linking to where it is done.
pub(super) fn to_act(ctx: &Ctx<'_>) -> Result<String, ApiError> {
    let mut items: Vec<(String, &'static str, &'static str)> = Vec::new();
    let churn = run(ctx, {
        let mut a = as_of(ctx, &["churn"]);
        a.set("limit", "20");
        a
    })?;
    let at_risk = field_of(&churn, "counts").map_or(f64::NAN, |c| num(c, "at_risk"));
    if at_risk > 0.0 {
        items.push((
            html::count(at_risk),
            "customers are at risk of churning: export the win-back audience",
            "audiences",
        ));
    }
    let returns = run(ctx, dated(ctx, &["returns"]))?;
    let flags = list(&returns, "flags").len();
    if flags > 0 {
        items.push((
            flags.to_string(),
            "items are flagged for quality risk (returns far above their category)",
            "returns",
        ));
    }
    let inv = run(ctx, {
        let mut a = dated(ctx, &["inventory"]);
        a.set("limit", "0");
        a
    })?;
    let stockouts = list(&inv, "stockouts").len();
    if stockouts > 0 {
        items.push((
            stockouts.to_string(),
            "SKUs ran out of stock in the period",
            "inventory",
        ));
    }
    let slow = list(&inv, "slow_movers").len();
    if slow > 0 {
        items.push((
            slow.to_string(),
            "SKUs are slow movers: consider a promotion or a bundle",
            "inventory",
        ));
    }
    if items.is_empty() {
        return Ok(String::new());
    }
    let mut s = String::from("<ul>");
    for (n, what, page) in items {
        let _ = write!(
            s,
            r#"<li><a href="{}"><b>{}</b> {}</a></li>"#,
            ctx.link(page),
            esc(&n),
            esc(ctx.t(what))
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
