//! The pages: each runs its analyses (the same commands and flags as the CLI) and draws their
//! JSON as charts and tables.

use std::fmt::Write as _;
use std::path::Path;

use crate::{ApiError, ApiErrorCode, PageResponse};
use serde_json::Value;
use shoplens_engine::customers::audiences;

use super::charts::{self, Bar, Interval, Link, Point, Series};
use super::html::{self, Fmt, cell, col, esc, section, stat, table};
use super::{AREAS, Call, Ctx, Lang, i18n, urlencode};

/// A page of the dashboard.
pub(crate) struct Page {
    pub(crate) slug: &'static str,
    pub(crate) title: &'static str,
    pub(crate) summary: &'static str,
    /// Whether the date filter narrows this page.
    pub(crate) dates: bool,
    /// Whether the channel filter narrows this page.
    pub(crate) channel: bool,
    pub(crate) render: fn(&Ctx<'_>) -> Result<String, ApiError>,
}

pub(crate) const PAGES: &[Page] = &[
    Page {
        slug: "",
        title: "Command centre",
        summary: "The shop's KPIs over the period against the period before; each card opens the page that explains it.",
        dates: true,
        channel: false,
        render: home,
    },
    Page {
        slug: "funnel",
        title: "Funnel",
        summary: "Users who reach each step within the window, and where they drop.",
        dates: true,
        channel: true,
        render: funnel,
    },
    Page {
        slug: "activity",
        title: "Activity",
        summary: "When customers browse and buy: hour × weekday, by category, and daily actives.",
        dates: true,
        channel: false,
        render: activity,
    },
    Page {
        slug: "cohorts",
        title: "Cohorts",
        summary: "Retention and revenue per member of each first-purchase cohort.",
        dates: true,
        channel: true,
        render: cohorts,
    },
    Page {
        slug: "paths",
        title: "Paths",
        summary: "What sessions do after their first event: the commonest sequences as a flow.",
        dates: true,
        channel: false,
        render: paths,
    },
    Page {
        slug: "repurchase",
        title: "Repurchase",
        summary: "Share of new customers who buy again within 30 days, and the intervals between purchases.",
        dates: true,
        channel: false,
        render: repurchase,
    },
    Page {
        slug: "lifecycle",
        title: "Lifecycle",
        summary: "Active users each week: new, returning, resurrecting, and those gone dormant.",
        dates: true,
        channel: false,
        render: lifecycle,
    },
    Page {
        slug: "products",
        title: "Products",
        summary: "Sales × margin quadrants per item and category, with what to do about each.",
        dates: true,
        channel: false,
        render: products,
    },
    Page {
        slug: "returns",
        title: "Returns and reviews",
        summary: "Return rate against good-review rate per item, and the items flagged for quality risk.",
        dates: true,
        channel: false,
        render: returns,
    },
    Page {
        slug: "basket",
        title: "Market basket",
        summary: "Items bought together: association rules and bundle suggestions.",
        dates: true,
        channel: false,
        render: basket,
    },
    Page {
        slug: "inventory",
        title: "Inventory",
        summary: "Sell-through, share of SKUs sold, turnover and slow movers.",
        dates: true,
        channel: false,
        render: inventory,
    },
    Page {
        slug: "channels",
        title: "Channels",
        summary: "Traffic, conversion, order value, acquisition cost and return on spend per channel.",
        dates: true,
        channel: true,
        render: channels,
    },
    Page {
        slug: "campaigns",
        title: "Campaigns",
        summary: "Revenue, discount cost, incremental revenue and ROI of each campaign.",
        dates: false,
        channel: false,
        render: campaigns,
    },
    Page {
        slug: "rfm",
        title: "RFM segments",
        summary: "Customers by recency, frequency and money: segments with actions, and how they moved.",
        dates: true,
        channel: false,
        render: rfm,
    },
    Page {
        slug: "clv",
        title: "Lifetime value",
        summary: "Expected value of each customer over the next year (BG/NBD and Gamma-Gamma).",
        dates: true,
        channel: false,
        render: clv,
    },
    Page {
        slug: "churn",
        title: "Churn and win-back",
        summary: "Buyers' stages over time and the customers worth winning back.",
        dates: true,
        channel: false,
        render: churn,
    },
    Page {
        slug: "recommend",
        title: "Recommendations",
        summary: "What to show a chosen customer, and what goes with a chosen item.",
        dates: false,
        channel: false,
        render: recommend,
    },
    Page {
        slug: "audiences",
        title: "Audiences",
        summary: "Saved customer audiences, their current sizes, and exports for the channels that act on them.",
        dates: true,
        channel: false,
        render: audiences,
    },
    Page {
        slug: "experiments",
        title: "Experiments",
        summary: "Each experiment's lift per metric with its interval, and the verdict.",
        dates: false,
        channel: false,
        render: experiments,
    },
];

pub(crate) fn find(slug: &str) -> Option<&'static Page> {
    PAGES.iter().find(|p| p.slug == slug)
}

fn page_of(slug: &str) -> &'static Page {
    find(slug).unwrap_or(&PAGES[0])
}

// ---------- JSON helpers ----------

fn num(v: &Value, k: &str) -> f64 {
    v.get(k).and_then(Value::as_f64).unwrap_or(f64::NAN)
}

fn text(v: &Value, k: &str) -> String {
    match v.get(k) {
        Some(Value::String(s)) => s.clone(),
        Some(Value::Null) | None => String::new(),
        Some(other) => other.to_string(),
    }
}

fn list<'a>(v: &'a Value, k: &str) -> &'a [Value] {
    v.get(k)
        .and_then(Value::as_array)
        .map_or(&[], Vec::as_slice)
}

/// An endpoint with the date filter as its `from` and `to`.
fn dated(ctx: &Ctx<'_>, words: &'static [&'static str]) -> Call {
    let mut a = Call::new(words);
    if let Some(f) = &ctx.filters.from {
        a.set("from", f);
    }
    if let Some(t) = &ctx.filters.to {
        a.set("to", t);
    }
    a
}

/// An endpoint with the date filter's end as the as-of date.
fn as_of(ctx: &Ctx<'_>, words: &'static [&'static str]) -> Call {
    let mut a = Call::new(words);
    if let Some(t) = &ctx.filters.to {
        a.set("as_of", t);
    }
    a
}

fn run(ctx: &Ctx<'_>, call: Call) -> Result<std::sync::Arc<Value>, ApiError> {
    ctx.source.run(&call, ctx.stamp)
}

/// The rows of a query over the workspace's tables (`{"columns": …, "rows": […]}`).
fn sql(ctx: &Ctx<'_>, query: &str) -> Result<std::sync::Arc<Value>, ApiError> {
    ctx.source.sql(query, ctx.stamp)
}

fn empty(ctx: &Ctx<'_>, what: &'static str) -> String {
    format!(r#"<p class="help">{}</p>"#, esc(ctx.t(what)))
}

// ---------- layout ----------

/// A page inside the frame: top bar with filters and language, navigation, heading.
pub(crate) fn layout(ctx: &Ctx<'_>, page: &Page, body: &str) -> String {
    let mut s = String::new();
    let title = ctx.t(page.title);
    s.push_str(&top_bar(ctx, page));
    s.push_str(r#"<div class="wrap">"#);
    s.push_str(&nav(ctx, page.slug));
    let _ = write!(
        s,
        r#"<main><h1>{}</h1><p class="sub">{}</p>{}{}</main></div>"#,
        esc(title),
        esc(ctx.t(page.summary)),
        filters_note(ctx, page),
        body
    );
    html::document(ctx.lang, title, &s)
}

fn top_bar(ctx: &Ctx<'_>, page: &Page) -> String {
    let f = &ctx.filters;
    let here = if page.slug.is_empty() {
        "/".to_string()
    } else {
        format!("/p/{}", page.slug)
    };
    let keep: String = ctx
        .params
        .iter()
        .filter(|(k, _)| !["from", "to", "channel"].contains(&k.as_str()))
        .map(|(k, v)| {
            format!(
                r#"<input type="hidden" name="{}" value="{}">"#,
                esc(k),
                esc(v)
            )
        })
        .collect();
    let lang_link = |l: Lang, label: &str| {
        let mut q = ctx.filters.query();
        for (k, v) in ctx
            .params
            .iter()
            .filter(|(k, _)| !["from", "to", "channel"].contains(&k.as_str()))
        {
            if !q.is_empty() {
                q.push('&');
            }
            q.push_str(&format!("{}={}", urlencode(k), urlencode(v)));
        }
        if !q.is_empty() {
            q.push('&');
        }
        format!(
            r#"<a href="{here}?{q}lang={}" class="{}" hreflang="{}">{label}</a>"#,
            l.code(),
            if ctx.lang == l { "on" } else { "" },
            l.code()
        )
    };
    format!(
        r#"<header class="top"><a class="brand" href="{home}">shoplens</a><form method="get" action="{here}" class="filters">{keep}<label>{from_l} <input type="date" name="from" value="{from}"></label><label>{to_l} <input type="date" name="to" value="{to}"></label><label>{ch_l} {channel_input}</label><button type="submit">{apply}</button> <a href="{here}">{reset}</a></form><div class="lang">{en}{zh}<form method="post" action="/logout"><input type="hidden" name="csrf" value="{csrf}"><button type="submit" class="btn secondary">{logout}</button></form></div></header>"#,
        home = ctx.link(""),
        keep = keep,
        from_l = esc(ctx.t("From")),
        to_l = esc(ctx.t("To")),
        ch_l = esc(ctx.t("Channel")),
        from = esc(f.from.as_deref().unwrap_or("")),
        to = esc(f.to.as_deref().unwrap_or("")),
        channel_input = channel_input(ctx),
        apply = esc(ctx.t("Apply")),
        reset = esc(ctx.t("Reset")),
        en = lang_link(Lang::En, "English"),
        zh = lang_link(Lang::Zh, "简体中文"),
        csrf = esc(&ctx.csrf),
        logout = esc(ctx.t("Sign out")),
    )
}

/// The channel filter: a choice of the shop's channels (free text when they cannot be listed).
fn channel_input(ctx: &Ctx<'_>) -> String {
    let current = ctx.filters.channel.as_deref().unwrap_or("");
    // The channels the data names, without computing the channel report on every page.
    let q = "SELECT channel FROM events WHERE channel IS NOT NULL \
             UNION SELECT channel FROM orders WHERE channel IS NOT NULL \
             UNION SELECT channel FROM channel_spend WHERE channel IS NOT NULL \
             UNION SELECT acquisition_channel FROM customers WHERE acquisition_channel IS NOT NULL \
             ORDER BY 1";
    let names: Vec<String> = sql(ctx, q)
        .map(|r| {
            list(&r, "rows")
                .iter()
                .map(|c| text(c, "channel"))
                .collect()
        })
        .unwrap_or_default();
    if names.is_empty() {
        return format!(
            r#"<input type="text" name="channel" value="{}" placeholder="{}" size="12">"#,
            esc(current),
            esc(ctx.t("all channels"))
        );
    }
    let mut s = format!(
        r#"<select name="channel"><option value="">{}</option>"#,
        esc(ctx.t("all channels"))
    );
    for n in names.iter().chain(
        (!current.is_empty() && !names.iter().any(|n| n == current))
            .then(|| current.to_string())
            .iter(),
    ) {
        let _ = write!(
            s,
            r#"<option value="{v}"{sel}>{v}</option>"#,
            v = esc(n),
            sel = if n == current { " selected" } else { "" }
        );
    }
    s.push_str("</select>");
    s
}

fn nav(ctx: &Ctx<'_>, current: &str) -> String {
    let mut s = String::from(r#"<nav class="side">"#);
    for a in AREAS {
        let _ = write!(s, "<h3>{}</h3>", esc(ctx.t(a.title)));
        for slug in a.pages {
            let p = page_of(slug);
            let _ = write!(
                s,
                r#"<a href="{}" class="{}">{}</a>"#,
                ctx.link(slug),
                if *slug == current { "on" } else { "" },
                esc(ctx.t(p.title))
            );
        }
    }
    s.push_str("</nav>");
    s
}

/// Says which filters this page honours, so no one reads an unfiltered figure as filtered.
fn filters_note(ctx: &Ctx<'_>, page: &Page) -> String {
    let f = &ctx.filters;
    let mut parts = Vec::new();
    if f.from.is_some() || f.to.is_some() {
        let range = format!(
            "{} – {}",
            f.from.as_deref().unwrap_or("…"),
            f.to.as_deref().unwrap_or("…")
        );
        parts.push(if page.dates {
            format!("{}: {range}", ctx.t("Period"))
        } else {
            format!(
                "{} ({range})",
                ctx.t("The date filter does not apply to this page")
            )
        });
    }
    if let Some(c) = &f.channel {
        parts.push(if page.channel {
            format!("{}: {c}", ctx.t("Channel"))
        } else {
            format!(
                "{} ({c})",
                ctx.t("The channel filter does not apply to this page")
            )
        });
    }
    if parts.is_empty() {
        return format!(
            r#"<p class="filters-note">{}</p>"#,
            esc(ctx.t("All data; no filter applied."))
        );
    }
    format!(r#"<p class="filters-note">{}</p>"#, esc(&parts.join(" · ")))
}

pub(crate) fn login(lang: Lang, csrf: &str, next: &str, failed: bool) -> String {
    let body = format!(
        r#"<form class="login" method="post" action="/login"><h1>shoplens</h1><p class="sub">{intro}</p>{err}<input type="hidden" name="csrf" value="{csrf}"><input type="hidden" name="next" value="{next}"><label for="token">{label}</label><input id="token" name="token" type="password" autocomplete="current-password" required autofocus><button class="btn" type="submit">{go}</button><p class="help">{hint}</p><p><a href="/login?lang=en">English</a> · <a href="/login?lang=zh-CN">简体中文</a></p></form>"#,
        intro = esc(lang.t("Sign in with the server's read token.")),
        err = if failed {
            format!(r#"<p class="err">{}</p>"#, esc(lang.t("That token is not right. Try again.")))
        } else {
            String::new()
        },
        csrf = esc(csrf),
        next = esc(next),
        label = esc(lang.t("Read token")),
        go = esc(lang.t("Sign in")),
        hint = esc(lang.t("The token was printed when the server first started; it is stored in the workspace under server/read_token.")),
    );
    html::document(lang, lang.t("Sign in"), &body)
}

pub(crate) fn error_page(lang: Lang, status: u16, message: &str) -> String {
    let body = format!(
        r#"<main style="max-width:720px;margin:10vh auto"><h1>{} {status}</h1><div class="err">{}</div><p><a href="/">{}</a></p></main>"#,
        esc(lang.t("Error")),
        esc(message),
        esc(lang.t("Back to the command centre"))
    );
    html::document(lang, lang.t("Error"), &body)
}

/// The standalone report: every page, one after another, with a contents list.
pub(crate) fn report(ctx: &Ctx<'_>) -> Result<String, ApiError> {
    let mut s = String::new();
    let _ = write!(
        s,
        r#"<header class="top"><span class="brand">shoplens</span><span>{}</span></header><main>"#,
        esc(ctx.t("Report"))
    );
    s.push_str(&filters_note(ctx, &PAGES[0]));
    s.push_str(r#"<section class="card noprint"><h2>"#);
    s.push_str(&esc(ctx.t("Contents")));
    s.push_str("</h2><ul>");
    for p in PAGES {
        let _ = write!(
            s,
            r#"<li><a href="{}">{}</a></li>"#,
            ctx.link(p.slug),
            esc(ctx.t(p.title))
        );
    }
    s.push_str("</ul></section>");
    for p in PAGES {
        let body = match (p.render)(ctx) {
            Ok(b) => b,
            Err(e) => format!(r#"<div class="err">{}</div>"#, esc(&e.message)),
        };
        let _ = write!(
            s,
            r#"<div id="page-{}" class="reportpage"><h1>{}</h1><p class="sub">{}</p>{}</div>"#,
            if p.slug.is_empty() { "home" } else { p.slug },
            esc(ctx.t(p.title)),
            esc(ctx.t(p.summary)),
            body
        );
    }
    s.push_str("</main>");
    Ok(html::document(ctx.lang, ctx.t("Report"), &s))
}

// ---------- command centre ----------

/// KPIs where a fall is good news.
const LOWER_IS_BETTER: &[&str] = &["churn_rate", "return_rate"];

fn kpi_value(ctx: &Ctx<'_>, unit: &str, v: f64) -> String {
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

fn home(ctx: &Ctx<'_>) -> Result<String, ApiError> {
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
fn to_act(ctx: &Ctx<'_>) -> Result<String, ApiError> {
    let mut items: Vec<(String, &'static str, &'static str)> = Vec::new();
    let churn = run(ctx, {
        let mut a = as_of(ctx, &["churn"]);
        a.set("limit", "20");
        a
    })?;
    let at_risk = churn.get("counts").map_or(f64::NAN, |c| num(c, "at_risk"));
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

// ---------- people ----------

const FUNNEL_STEPS: &[&str] = &[
    "product_view",
    "add_to_cart",
    "checkout_start",
    "order",
    "payment",
];

fn funnel(ctx: &Ctx<'_>) -> Result<String, ApiError> {
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

fn hidden_filters(ctx: &Ctx<'_>) -> String {
    let f = &ctx.filters;
    [("from", &f.from), ("to", &f.to), ("channel", &f.channel)]
        .iter()
        .filter_map(|(k, v)| {
            v.as_ref()
                .map(|v| format!(r#"<input type="hidden" name="{k}" value="{}">"#, esc(v)))
        })
        .collect()
}

const WEEKDAYS: &[&str] = &["Mon", "Tue", "Wed", "Thu", "Fri", "Sat", "Sun"];

fn hour_weekday(ctx: &Ctx<'_>, cells: &[Value], measure: &str, title: &'static str) -> String {
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

fn activity(ctx: &Ctx<'_>) -> Result<String, ApiError> {
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

fn cohorts(ctx: &Ctx<'_>) -> Result<String, ApiError> {
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
                .take_while(|p| p.get("partial") != Some(&Value::Bool(true)))
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
                .filter(|p| p.get("partial") != Some(&Value::Bool(true)))
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

fn paths(ctx: &Ctx<'_>) -> Result<String, ApiError> {
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
            serde_json::json!({"path": steps.join(" → "), "sessions": p["sessions"], "share": p["share"]})
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

fn repurchase(ctx: &Ctx<'_>) -> Result<String, ApiError> {
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

fn lifecycle(ctx: &Ctx<'_>) -> Result<String, ApiError> {
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

// ---------- goods ----------

fn products(ctx: &Ctx<'_>) -> Result<String, ApiError> {
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
    if r.get("has_costs") == Some(&Value::Bool(false)) {
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

fn returns(ctx: &Ctx<'_>) -> Result<String, ApiError> {
    let mut args = dated(ctx, &["returns"]);
    args.set("limit", "0");
    let r = run(ctx, args)?;
    let total = r.get("total").cloned().unwrap_or(Value::Null);
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

fn basket(ctx: &Ctx<'_>) -> Result<String, ApiError> {
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

fn inventory(ctx: &Ctx<'_>) -> Result<String, ApiError> {
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

// ---------- traffic ----------

fn channels(ctx: &Ctx<'_>) -> Result<String, ApiError> {
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

fn campaigns(ctx: &Ctx<'_>) -> Result<String, ApiError> {
    let r = run(ctx, Call::new(&["campaigns"]))?;
    let mut rows = list(&r, "campaigns").to_vec();
    for c in &mut rows {
        let v = i18n::campaign_verdict(
            ctx.lang,
            c.get("verdict").and_then(Value::as_str),
            c.get("aov_change").and_then(Value::as_f64),
            c.get("margin_rate_change").and_then(Value::as_f64),
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

// ---------- customers ----------

fn rfm(ctx: &Ctx<'_>) -> Result<String, ApiError> {
    let r = run(ctx, as_of(ctx, &["rfm"]))?;
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
    // Movement over the 90 days before the as-of date.
    let as_of_day: String = text(&r, "as_of").chars().take(10).collect();
    if let Ok(d) = chrono::NaiveDate::parse_from_str(&as_of_day, "%Y-%m-%d") {
        let before = (d - chrono::Duration::days(90)).to_string();
        let mut args = as_of(ctx, &["rfm"]);
        args.set("compare_to", &before);
        let m = run(ctx, args)?;
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
        let mut moves: Vec<Value> = m
            .get("movement")
            .map(|mv| list(mv, "transitions").to_vec())
            .unwrap_or_default()
            .into_iter()
            .filter(|t| t.get("from") != t.get("to"))
            .map(|t| serde_json::json!({"from": label(&t["from"]), "to": label(&t["to"]), "customers": t["customers"]}))
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
    if let Some(c) = r.get("clustering") {
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

fn clv(ctx: &Ctx<'_>) -> Result<String, ApiError> {
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

const STAGES: &[(&str, &str)] = &[
    ("new", "New"),
    ("active", "Active"),
    ("won_back", "Won back"),
    ("at_risk", "At risk"),
    ("churned", "Churned"),
];

fn churn(ctx: &Ctx<'_>) -> Result<String, ApiError> {
    let mut args = as_of(ctx, &["churn"]);
    args.set("limit", "20");
    let r = run(ctx, args)?;
    let counts = r.get("counts").cloned().unwrap_or(Value::Null);
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
                    .map(|x| x.get("counts").map_or(0.0, |c| num(c, k)))
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
fn examples(ctx: &Ctx<'_>) -> Result<(String, String), ApiError> {
    let r = sql(
        ctx,
        "SELECT (SELECT user_id FROM orders WHERE user_id IS NOT NULL GROUP BY user_id ORDER BY count(*) DESC, user_id LIMIT 1) AS u, (SELECT item_id FROM order_items GROUP BY item_id ORDER BY sum(quantity) DESC, item_id LIMIT 1) AS i",
    )?;
    let row = list(&r, "rows").first().cloned().unwrap_or(Value::Null);
    Ok((text(&row, "u"), text(&row, "i")))
}

fn recommend(ctx: &Ctx<'_>) -> Result<String, ApiError> {
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
        let note = if u.get("cold_start") == Some(&Value::Bool(true)) {
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

fn audiences(ctx: &Ctx<'_>) -> Result<String, ApiError> {
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

// ---------- practice ----------

fn experiments(ctx: &Ctx<'_>) -> Result<String, ApiError> {
    let r = run(ctx, Call::new(&["experiment", "list"]))?;
    let exps = list(&r, "experiments");
    if exps.is_empty() {
        return Ok(empty(
            ctx,
            "No experiment is defined. Define one with `shoplens experiment define KEY …`.",
        ));
    }
    let mut out = section(
        "list",
        ctx.t("Experiments"),
        "",
        &table(
            ctx,
            &[
                col(ctx.t("Experiment"), "key", Fmt::Text),
                col(ctx.t("Name"), "name", Fmt::Text),
                col(ctx.t("Status"), "status", Fmt::Text),
                col(ctx.t("Surface"), "surface", Fmt::Text),
                col(ctx.t("Variants"), "variants", Fmt::Text),
                col(ctx.t("Starts"), "starts_at", Fmt::Date),
                col(ctx.t("Ends"), "ends_at", Fmt::Date),
            ],
            exps,
        ),
    );
    for e in exps {
        let key = text(e, "key");
        let a = match run(
            ctx,
            Call::new(&["experiment", "analyze"]).with("experiment", &key),
        ) {
            Ok(a) => a,
            Err(err) => {
                out.push_str(&section(
                    &format!("exp-{key}"),
                    &key,
                    "",
                    &format!(r#"<p class="err">{}</p>"#, esc(&err.message)),
                ));
                continue;
            }
        };
        let rows: Vec<Interval> = list(&a, "results")
            .iter()
            .map(|x| Interval {
                label: format!("{} · {}", text(x, "metric"), text(x, "variant")),
                estimate: num(x, "relative_lift"),
                low: num(x, "relative_ci_low"),
                high: num(x, "relative_ci_high"),
                significant: num(x, "relative_ci_low") > 0.0 || num(x, "relative_ci_high") < 0.0,
            })
            .collect();
        let mut s = charts::intervals(&key, &rows, &|v| format!("{:+.1}%", v * 100.0));
        let srm = a.get("srm").cloned().unwrap_or(Value::Null);
        if srm.get("flagged") == Some(&Value::Bool(true)) {
            let _ = write!(s, r#"<p class="err">{} (p = {:.2e})</p>"#, esc(ctx.t("Sample ratio mismatch: the split differs from the weights; do not trust the results until the assignment is fixed.")), num(&srm, "p_value"));
        }
        s.push_str(&table(
            ctx,
            &[
                col(ctx.t("Variant"), "variant", Fmt::Text),
                col(ctx.t("Decision"), "decision", Fmt::Text),
                col(ctx.t("Reason"), "reason", Fmt::Text),
            ],
            list(&a, "verdicts"),
        ));
        let conf = num(&a, "confidence");
        out.push_str(&section(
            &format!("exp-{key}"),
            &format!("{} · {}", key, text(e, "name")),
            &format!(
                "{} {} {}",
                ctx.t("Relative lift against control with"),
                html::pct(conf),
                ctx.t("intervals; coloured when the interval excludes zero.")
            ),
            &s,
        ));
    }
    Ok(out)
}
