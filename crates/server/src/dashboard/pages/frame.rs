//! The frame of every page: top bar with filters and language, navigation, sign-in and error pages, and the offline report.

use super::*;

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

pub(super) fn top_bar(ctx: &Ctx<'_>, page: &Page) -> String {
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
pub(super) fn channel_input(ctx: &Ctx<'_>) -> String {
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

pub(super) fn nav(ctx: &Ctx<'_>, current: &str) -> String {
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
pub(super) fn filters_note(ctx: &Ctx<'_>, page: &Page) -> String {
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
