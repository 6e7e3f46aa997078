//! HTML pieces of the dashboard: escaping, number formats, tables, cards and the page layout
//! (navigation by area, filters, language switch, print styles), all self-contained.

use std::fmt::Write as _;

use serde_json::Value;

use super::Ctx;
use super::i18n::Lang;

/// Escapes text for HTML content and attribute values.
pub(crate) fn esc(s: &str) -> String {
    let mut o = String::with_capacity(s.len());
    for c in s.chars() {
        match c {
            '&' => o.push_str("&amp;"),
            '<' => o.push_str("&lt;"),
            '>' => o.push_str("&gt;"),
            '"' => o.push_str("&quot;"),
            '\'' => o.push_str("&#39;"),
            _ => o.push(c),
        }
    }
    o
}

/// Digits grouped by thousands with `decimals` places: 2677866.7999 → "2,677,866.80".
pub(crate) fn grouped(v: f64, decimals: usize) -> String {
    if !v.is_finite() {
        return "–".into();
    }
    let text = format!("{:.*}", decimals, v.abs());
    let (int, frac) = text.split_once('.').unwrap_or((&text, ""));
    let mut out = String::new();
    for (i, ch) in int.chars().enumerate() {
        if i > 0 && (int.len() - i) % 3 == 0 {
            out.push(',');
        }
        out.push(ch);
    }
    if !frac.is_empty() {
        out.push('.');
        out.push_str(frac);
    }
    // "-0" is not a value anyone wants to read.
    if v < 0.0 && out.chars().any(|c| c.is_ascii_digit() && c != '0') {
        out.insert(0, '-');
    }
    out
}

/// Short axis labels: 1.2k, 3.4M.
pub(crate) fn compact(v: f64) -> String {
    let a = v.abs();
    if a >= 1e9 {
        format!("{:.1}B", v / 1e9)
    } else if a >= 1e6 {
        format!("{:.1}M", v / 1e6)
    } else if a >= 1e4 {
        format!("{:.0}k", v / 1e3)
    } else if a >= 1e3 {
        format!("{:.1}k", v / 1e3)
    } else if a == a.trunc() {
        format!("{v:.0}")
    } else if a >= 1.0 {
        format!("{v:.1}")
    } else {
        format!("{v:.2}")
    }
}

/// A count: whole numbers without decimals, averages with one.
pub(crate) fn count(v: f64) -> String {
    if v == v.trunc() {
        grouped(v, 0)
    } else {
        grouped(v, 1)
    }
}

/// A share as a percentage with one decimal.
pub(crate) fn pct(v: f64) -> String {
    if v.is_finite() {
        format!("{:.1}%", v * 100.0)
    } else {
        "–".into()
    }
}

/// The symbol of a currency code, or the code and a space.
pub(crate) fn currency_prefix(code: &str) -> String {
    match code.to_ascii_uppercase().as_str() {
        "CNY" | "RMB" | "JPY" => "¥".into(),
        "USD" => "$".into(),
        "EUR" => "€".into(),
        "GBP" => "£".into(),
        "" => String::new(),
        other => format!("{other} "),
    }
}

/// How a JSON number is shown.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Fmt {
    /// Whole numbers or averages.
    Count,
    /// Money with the shop's currency.
    Money,
    /// A 0–1 share as a percentage.
    Pct,
    /// A change of a 0–1 rate, in signed percentage points (`-0.088` → `-8.8 pp`).
    Points,
    /// A plain number, two decimals.
    Num,
    /// Text as it is.
    Text,
    /// The day of an instant (`2025-05-01T00:00:00+08:00` → `2025-05-01`).
    Date,
}

/// A JSON value formatted for a cell.
pub(crate) fn cell(v: &Value, f: Fmt, cur: &str) -> String {
    match v {
        Value::Null => "–".into(),
        Value::Number(n) => {
            let x = n.as_f64().unwrap_or(f64::NAN);
            match f {
                Fmt::Count => count(x),
                Fmt::Money => format!("{}{}", currency_prefix(cur), grouped(x, 2)),
                Fmt::Pct => pct(x),
                Fmt::Points => format!("{:+.1} pp", x * 100.0),
                Fmt::Num | Fmt::Text | Fmt::Date => grouped(x, 2),
            }
        }
        Value::String(s) if f == Fmt::Date => s.chars().take(10).collect(),
        Value::String(s) => s.clone(),
        Value::Array(a) => a
            .iter()
            .map(|x| cell(x, f, cur))
            .collect::<Vec<_>>()
            .join(", "),
        Value::Bool(b) => b.to_string(),
        Value::Object(_) => v.to_string(),
    }
}

/// A column of a data table: heading (already translated), field, format.
#[derive(Clone, Copy)]
pub(crate) struct Col<'a> {
    pub(crate) head: &'a str,
    pub(crate) field: &'a str,
    pub(crate) fmt: Fmt,
}

/// A column.
pub(crate) fn col<'a>(head: &'a str, field: &'a str, fmt: Fmt) -> Col<'a> {
    Col { head, field, fmt }
}

/// A table of JSON objects, numbers right-aligned.
pub(crate) fn table(ctx: &Ctx<'_>, cols: &[Col<'_>], rows: &[Value]) -> String {
    let heads: Vec<(&str, Fmt)> = cols.iter().map(|c| (c.head, c.fmt)).collect();
    grid(
        ctx,
        &heads,
        rows.iter()
            .map(|r| cols.iter().map(|c| ctx.field(r, c.field)).collect()),
    )
}

/// A column of a table of typed rows: heading (already translated), format, and the cell's
/// value read from the row (a renamed field fails to compile, not to show).
pub(crate) struct TypedCol<'a, T> {
    head: &'a str,
    fmt: Fmt,
    get: Box<dyn Fn(&T) -> Value + 'a>,
}

/// A column of typed rows.
pub(crate) fn typed_col<'a, T, V: Into<Value>>(
    head: &'a str,
    fmt: Fmt,
    get: impl Fn(&T) -> V + 'a,
) -> TypedCol<'a, T> {
    TypedCol {
        head,
        fmt,
        get: Box::new(move |r| get(r).into()),
    }
}

/// A table of typed rows, drawn as [`table`] draws JSON objects.
pub(crate) fn typed_table<T>(ctx: &Ctx<'_>, cols: &[TypedCol<'_, T>], rows: &[T]) -> String {
    let heads: Vec<(&str, Fmt)> = cols.iter().map(|c| (c.head, c.fmt)).collect();
    grid(
        ctx,
        &heads,
        rows.iter()
            .map(|r| cols.iter().map(|c| (c.get)(r)).collect()),
    )
}

/// The table of `heads` (heading, format) and rows of cell values.
fn grid(ctx: &Ctx<'_>, heads: &[(&str, Fmt)], rows: impl Iterator<Item = Vec<Value>>) -> String {
    let class = |f: Fmt| {
        if matches!(f, Fmt::Text | Fmt::Date) {
            ""
        } else {
            r#" class="n""#
        }
    };
    let mut s = String::from(r#"<div class="tablewrap"><table><thead><tr>"#);
    for (head, fmt) in heads {
        let _ = write!(s, "<th{}>{}</th>", class(*fmt), esc(head));
    }
    s.push_str("</tr></thead><tbody>");
    for r in rows {
        s.push_str("<tr>");
        for (v, (_, fmt)) in r.iter().zip(heads) {
            let text = cell(v, *fmt, &ctx.currency);
            let text = if *fmt == Fmt::Text {
                super::i18n::value(ctx.lang, &text)
            } else {
                text
            };
            let _ = write!(s, "<td{}>{}</td>", class(*fmt), esc(&text));
        }
        s.push_str("</tr>");
    }
    s.push_str("</tbody></table></div>");
    s
}

/// Terms and what they mean (translated), under a table that uses them.
pub(crate) fn definitions(ctx: &Ctx<'_>, items: &[(&'static str, &'static str)]) -> String {
    let mut s = String::from(r#"<dl class="defs">"#);
    for (term, meaning) in items {
        let _ = write!(
            s,
            "<dt>{}</dt><dd>{}</dd>",
            esc(ctx.t(term)),
            esc(ctx.t(meaning))
        );
    }
    s.push_str("</dl>");
    s
}

/// A small figure with its label.
pub(crate) fn stat(label: &str, value: &str) -> String {
    format!(
        r#"<div class="stat"><div class="statv">{}</div><div class="statl">{}</div></div>"#,
        esc(value),
        esc(label)
    )
}

/// A titled section of a page, with a line saying what it shows.
pub(crate) fn section(id: &str, title: &str, help: &str, body: &str) -> String {
    format!(
        r#"<section class="card" id="{id}"><h2>{}</h2><p class="help">{}</p>{body}</section>"#,
        esc(title),
        esc(help)
    )
}

const CSS: &str = r#"
:root{--fg:#1d2330;--muted:#5b6474;--line:#e3e6ec;--bg:#f5f6f8;--card:#fff;--accent:#0072B2;--good:#007a55;--bad:#c0392b}
*{box-sizing:border-box}body{margin:0;font:14px/1.45 system-ui,-apple-system,"Segoe UI","PingFang SC","Microsoft YaHei","Noto Sans CJK SC",sans-serif;color:var(--fg);background:var(--bg)}
a{color:var(--accent);text-decoration:none}a:hover{text-decoration:underline}
.top{display:flex;flex-wrap:wrap;gap:12px;align-items:center;padding:10px 20px;background:#14213d;color:#fff}
.top a{color:#fff}.brand{font-weight:700;font-size:17px;margin-right:12px}
.top form{display:flex;gap:6px;align-items:center;flex-wrap:wrap;margin:0}
.top label{font-size:12px;opacity:.85}.top input,.top select{font:inherit;padding:3px 6px;border-radius:4px;border:1px solid #8893a8}
.top button,.btn{font:inherit;padding:4px 12px;border-radius:4px;border:1px solid var(--accent);background:var(--accent);color:#fff;cursor:pointer}
.lang{margin-left:auto;display:flex;gap:10px;align-items:center}.lang .on{font-weight:700;text-decoration:underline}
.wrap{display:flex;min-height:calc(100vh - 52px)}
nav.side{width:200px;flex:none;padding:14px 10px;background:#fff;border-right:1px solid var(--line)}
nav.side h3{font-size:12px;text-transform:uppercase;color:var(--muted);margin:14px 8px 4px}
nav.side a{display:block;padding:4px 8px;border-radius:4px;color:var(--fg)}nav.side a.on{background:#e8f1fa;color:var(--accent);font-weight:600}
main{flex:1;padding:18px 24px;min-width:0}
h1{font-size:22px;margin:0 0 4px}.sub{color:var(--muted);margin:0 0 14px}
.card{background:var(--card);border:1px solid var(--line);border-radius:8px;padding:14px 16px;margin:0 0 16px;break-inside:avoid}
.card h2{font-size:16px;margin:0 0 2px}.help{color:var(--muted);margin:0 0 10px;font-size:13px}
.defs{display:grid;grid-template-columns:max-content 1fr;gap:4px 14px;margin:12px 0 0;font-size:13px}.defs dt{font-weight:600}.defs dd{margin:0;color:var(--muted)}
.kpis{display:grid;grid-template-columns:repeat(auto-fill,minmax(210px,1fr));gap:12px;margin-bottom:16px}
.kpi{display:block;background:#fff;border:1px solid var(--line);border-radius:8px;padding:12px 14px;color:var(--fg);break-inside:avoid}
.kpi:hover{border-color:var(--accent);text-decoration:none}.kpi .name{color:var(--muted);font-size:13px}
.kpi .value{font-size:24px;font-weight:650;margin:2px 0}.kpi .chg{font-size:13px}.up{color:var(--good)}.down{color:var(--bad)}.flat{color:var(--muted)}
.kpi .prev{font-size:12px;color:var(--muted)}
.stats{display:flex;flex-wrap:wrap;gap:18px;margin:4px 0 10px}.stat .statv{font-size:20px;font-weight:650}.stat .statl{font-size:12px;color:var(--muted)}
.tablewrap{overflow-x:auto}table{border-collapse:collapse;width:100%;font-size:13px}
th,td{padding:5px 8px;border-bottom:1px solid var(--line);text-align:left;vertical-align:top}th{background:#f0f2f5;font-weight:600}
td.n,th.n{text-align:right;font-variant-numeric:tabular-nums}
svg.chart{width:100%;max-width:900px;height:auto;display:block;margin:6px 0}
svg .lbl{font-size:13px;fill:#1d2330}svg .val{font-size:12px;fill:#1d2330}svg .note{font-size:11px;fill:#c0392b}
svg .axis{font-size:11px;fill:#5b6474}svg .axistitle{font-size:12px;fill:#1d2330}svg .cell{font-size:11px}
svg .grid{stroke:#eceef2}svg .axisline{stroke:#9aa3b2}svg .guide{stroke:#c0392b;stroke-dasharray:4 3}svg .zero{stroke:#1d2330}
.filters-note{font-size:12px;color:var(--muted);margin:0 0 12px}
.err{background:#fdecea;border:1px solid #f5c2bd;color:#7a1f16;border-radius:8px;padding:12px 16px}
.inline{display:flex;gap:8px;flex-wrap:wrap;align-items:end;margin:6px 0 10px}.inline label{display:flex;flex-direction:column;font-size:12px;color:var(--muted)}
.inline input,.inline select{font:inherit;padding:4px 6px;border:1px solid #c3c9d4;border-radius:4px}
.btn.secondary{background:#fff;color:var(--accent)}
.login{max-width:380px;margin:12vh auto;background:#fff;border:1px solid var(--line);border-radius:10px;padding:24px}
.login input{width:100%;font:inherit;padding:6px 8px;margin:6px 0 12px;border:1px solid #c3c9d4;border-radius:4px}
.tag{display:inline-block;padding:1px 6px;border-radius:10px;background:#eef1f6;font-size:12px}
@media print{.top form,.top .lang,nav.side,.noprint{display:none!important}.wrap{display:block}main{padding:0}body{background:#fff}
.card,.kpi{border-color:#bbb}a{color:inherit}.top{background:#fff;color:#000;border-bottom:2px solid #000}.top a{color:#000}}
"#;

/// The HTML document around a page body (or the whole report).
pub(crate) fn document(lang: Lang, title: &str, body: &str) -> String {
    format!(
        r#"<!doctype html><html lang="{}"><head><meta charset="utf-8"><meta name="viewport" content="width=device-width,initial-scale=1"><title>{} · shoplens</title><style>{CSS}</style></head><body>{body}</body></html>"#,
        lang.code(),
        esc(title)
    )
}
