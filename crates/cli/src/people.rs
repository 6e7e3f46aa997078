//! People analytics commands: `shoplens paths`, `activity`, `repurchase`, `cohorts`, `lifecycle`.

use std::io::Write;

use anyhow::Result;
use chrono_tz::Tz;
use serde_json::Value;
use shoplens_engine::calendar;
use shoplens_engine::people::activity::{self, ActivityParams};
use shoplens_engine::people::cohorts::{self, CohortCell, CohortParams};
use shoplens_engine::people::lifecycle::{self, LifecycleParams};
use shoplens_engine::people::paths::{self, PathParams};
use shoplens_engine::people::repurchase::{self, RepurchaseGroup, RepurchaseParams};

use crate::Global;
use crate::render::{Format, Frame, fixed, write_json};

/// `--as-of` in the shop's zone, when given.
pub(crate) fn as_of(g: &Global, tz: &Tz) -> Option<i64> {
    g.as_of
        .as_deref()
        .and_then(|x| calendar::parse_as_of(x, tz))
}

pub(crate) async fn repurchase_cmd(
    g: &Global,
    p: RepurchaseParams,
    out: &mut dyn Write,
) -> Result<()> {
    let ws = crate::commands::existing(g)?;
    let tz = calendar::zone(&ws.manifest()?.settings);
    let r = repurchase::repurchase(&ws, &p.spec(&tz, as_of(g, &tz))?).await?;
    if g.format == Format::Json {
        return write_json(out, &r);
    }
    let csv = g.format == Format::Csv;
    let num = |x: Option<f64>, pct: bool| -> Value {
        match x {
            None => Value::Null,
            Some(v) if csv => Value::from(v),
            Some(v) if pct => Value::from(format!("{:.1}%", v * 100.0)),
            v => fixed(v, 1, false),
        }
    };
    let mut f = Frame::new(&[
        "group",
        "value",
        "customers",
        "repurchasers",
        "rate",
        "median_interval_days",
    ]);
    let mut push = |group: &str, x: &RepurchaseGroup| {
        f.push(vec![
            Value::from(group),
            Value::from(x.value.clone().unwrap_or_else(|| "(unknown)".into())),
            Value::from(x.customers),
            Value::from(x.repurchasers),
            num(x.rate, true),
            num(x.median_interval_days, false),
        ]);
    };
    push(
        "all",
        &RepurchaseGroup {
            value: Some("all".into()),
            customers: r.customers,
            repurchasers: r.repurchasers,
            rate: r.rate,
            median_interval_days: r.median_interval_days,
            intervals: r.intervals,
        },
    );
    for (name, groups) in [
        ("acquisition_channel", &r.by_acquisition_channel),
        ("member_tier", &r.by_member_tier),
        ("first_category", &r.by_first_category),
    ] {
        for x in groups {
            push(name, x);
        }
    }
    f.write(out, g.output())?;
    if g.format == Format::Table {
        if let Some(q) = r.interval_quartiles_days {
            writeln!(
                out,
                "{}-day repurchase of new customers observable for {} days ({} more not yet observable); intervals between purchase days: {} (quartiles {:.1} / {:.1} / {:.1} days)",
                r.days, r.days, r.not_yet_observable, r.intervals, q[0], q[1], q[2]
            )?;
        }
        let mut h = Frame::new(&["interval_days", "count", "share"]);
        for b in &r.interval_histogram {
            h.push(vec![
                Value::from(match b.to_days {
                    Some(t) if t == b.from_days => t.to_string(),
                    Some(t) => format!("{}–{t}", b.from_days),
                    None => format!("{}+", b.from_days),
                }),
                Value::from(b.count),
                Value::from(format!("{:.1}%", b.share * 100.0)),
            ]);
        }
        h.write(out, g.output())?;
    }
    Ok(())
}

pub(crate) async fn activity_cmd(g: &Global, p: ActivityParams, out: &mut dyn Write) -> Result<()> {
    let ws = crate::commands::existing(g)?;
    let tz = calendar::zone(&ws.manifest()?.settings);
    let r = activity::activity(&ws, &p.spec(&tz, as_of(g, &tz))?).await?;
    match g.format {
        Format::Json => write_json(out, &r),
        Format::Csv => {
            let mut f = Frame::new(&["category", "weekday", "hour", "events", "orders", "revenue"]);
            let rows = r.heatmap.iter().map(|c| (None, c)).chain(
                r.categories
                    .iter()
                    .flat_map(|k| k.heatmap.iter().map(move |c| (Some(&k.category), c))),
            );
            for (cat, c) in rows {
                f.push(vec![
                    cat.map_or(Value::from("(all)"), |c| Value::from(c.clone())),
                    Value::from(c.weekday),
                    Value::from(c.hour),
                    Value::from(c.events),
                    Value::from(c.orders),
                    Value::from(c.revenue),
                ]);
            }
            f.write(out, g.output())
        }
        Format::Table => {
            writeln!(out, "events by weekday × hour (shop time):")?;
            let mut cols: Vec<String> = vec!["day".into()];
            cols.extend((0..24).map(|h| format!("{h:02}")));
            let mut f = Frame::new(&cols.iter().map(String::as_str).collect::<Vec<_>>());
            for (d, name) in ["Mon", "Tue", "Wed", "Thu", "Fri", "Sat", "Sun"]
                .iter()
                .enumerate()
            {
                let mut row = vec![Value::from(*name)];
                row.extend(
                    r.heatmap[d * 24..d * 24 + 24]
                        .iter()
                        .map(|c| Value::from(c.events)),
                );
                f.push(row);
            }
            f.write(out, g.output())?;
            let mut f = Frame::new(&["category", "events", "orders", "revenue", "peak hours"]);
            for c in r.categories.iter().take(p.categories.max(10)) {
                f.push(vec![
                    Value::from(c.category.clone()),
                    Value::from(c.events),
                    Value::from(c.orders),
                    Value::from(format!("{:.2}", c.revenue)),
                    Value::from(format!(
                        "{} (by {})",
                        c.peak_hours
                            .iter()
                            .map(|h| format!("{h:02}"))
                            .collect::<Vec<_>>()
                            .join(", "),
                        c.peak_by
                    )),
                ]);
            }
            f.write(out, g.output())?;
            let n = |x: Option<f64>| x.map_or("—".to_string(), |v| format!("{v:.0}"));
            writeln!(
                out,
                "DAU {} · WAU {} · MAU {} · stickiness (DAU/MAU) {}; peak hours: events {:?}, orders {:?}",
                n(r.dau),
                n(r.wau),
                n(r.mau),
                r.stickiness
                    .map_or("—".to_string(), |s| format!("{:.1}%", s * 100.0)),
                r.peak_event_hours,
                r.peak_order_hours
            )?;
            Ok(())
        }
    }
}

pub(crate) async fn cohorts_cmd(g: &Global, p: CohortParams, out: &mut dyn Write) -> Result<()> {
    let ws = crate::commands::existing(g)?;
    let tz = calendar::zone(&ws.manifest()?.settings);
    let spec = p.spec(&tz, as_of(g, &tz))?;
    let r = cohorts::cohorts(&ws, &spec).await?;
    match g.format {
        Format::Json => write_json(out, &r),
        Format::Csv => {
            let mut f = Frame::new(&[
                "cohort",
                "channel",
                "size",
                "k",
                "active",
                "rate",
                "active_or_later",
                "rate_or_later",
                "revenue",
                "revenue_per_member",
                "cumulative_revenue_per_member",
                "partial",
            ]);
            for row in r.cohorts.iter().chain(&r.by_channel) {
                for c in &row.periods {
                    f.push(vec![
                        Value::from(row.cohort.clone()),
                        row.channel.clone().map_or(Value::Null, Value::from),
                        Value::from(row.size),
                        Value::from(c.k),
                        Value::from(c.active),
                        c.rate.into(),
                        Value::from(c.active_or_later),
                        c.rate_or_later.into(),
                        Value::from(c.revenue),
                        c.revenue_per_member.into(),
                        c.cumulative_revenue_per_member.into(),
                        Value::from(c.partial),
                    ]);
                }
            }
            f.write(out, g.output())
        }
        Format::Table => {
            let k = r.average.len().min(13);
            for (title, pick) in [
                (
                    "active in period k (share of the cohort; * = period not complete)",
                    (|c: &CohortCell| c.rate.map(|x| format!("{:.1}%", x * 100.0)))
                        as fn(&CohortCell) -> Option<String>,
                ),
                ("active in period k or later", |c: &CohortCell| {
                    c.rate_or_later.map(|x| format!("{:.1}%", x * 100.0))
                }),
                (
                    "cumulative revenue per member (LTV curve)",
                    |c: &CohortCell| c.cumulative_revenue_per_member.map(|x| format!("{x:.2}")),
                ),
            ] {
                writeln!(out, "{title}:")?;
                let mut cols = vec!["cohort".to_string(), "size".to_string()];
                cols.extend((0..k).map(|i| i.to_string()));
                let mut f = Frame::new(&cols.iter().map(String::as_str).collect::<Vec<_>>());
                for row in r.cohorts.iter().chain(&r.by_channel) {
                    let mut v = vec![
                        Value::from(match &row.channel {
                            Some(ch) => format!("{} {ch}", row.cohort),
                            None => row.cohort.clone(),
                        }),
                        Value::from(row.size),
                    ];
                    v.extend(row.periods.iter().take(k).map(|c| {
                        pick(c).map_or(Value::Null, |s| {
                            Value::from(if c.partial { format!("{s}*") } else { s })
                        })
                    }));
                    f.push(v);
                }
                f.write(out, g.output())?;
            }
            if r.average.len() > k {
                writeln!(
                    out,
                    "(first {k} periods shown; --format csv or json for all)"
                )?;
            }
            Ok(())
        }
    }
}

pub(crate) async fn lifecycle_cmd(
    g: &Global,
    p: LifecycleParams,
    out: &mut dyn Write,
) -> Result<()> {
    let ws = crate::commands::existing(g)?;
    let tz = calendar::zone(&ws.manifest()?.settings);
    let spec = p.spec(&tz, as_of(g, &tz))?;
    let r = lifecycle::lifecycle(&ws, &spec).await?;
    if g.format == Format::Json {
        return write_json(out, &r);
    }
    let mut f = Frame::new(&[
        "period",
        "new",
        "returning",
        "resurrecting",
        "dormant",
        "active",
        "quick_ratio",
    ]);
    for p in &r.periods {
        f.push(vec![
            Value::from(p.period.clone()),
            Value::from(p.new),
            Value::from(p.returning),
            Value::from(p.resurrecting),
            Value::from(if g.format == Format::Table {
                -(p.dormant as i64)
            } else {
                p.dormant as i64
            }),
            Value::from(p.active),
            match (p.quick_ratio, g.format) {
                (None, _) => Value::Null,
                (Some(q), Format::Table) => Value::from(format!("{q:.2}")),
                (Some(q), _) => Value::from(q),
            },
        ]);
    }
    f.write(out, g.output())?;
    if g.format == Format::Table {
        writeln!(
            out,
            "user lifecycle (PostHog's definitions; persons by user_id or anonymous_id; activity: {}); dormant shown negative",
            r.event.as_deref().unwrap_or("any event")
        )?;
    }
    Ok(())
}

pub(crate) async fn paths_cmd(g: &Global, p: PathParams, out: &mut dyn Write) -> Result<()> {
    let ws = crate::commands::existing(g)?;
    let tz = calendar::zone(&ws.manifest()?.settings);
    let spec = p.spec(&tz, as_of(g, &tz))?;
    let r = paths::paths(&ws, &spec).await?;
    if g.format == Format::Json {
        return write_json(out, &r);
    }
    let csv = g.format == Format::Csv;
    let mut f = Frame::new(&["path", "sessions", "share"]);
    for p in &r.paths {
        f.push(vec![
            Value::from(p.path.join(" → ")),
            Value::from(p.sessions),
            if csv {
                Value::from(p.share)
            } else {
                Value::from(format!("{:.1}%", p.share * 100.0))
            },
        ]);
    }
    f.write(out, g.output())?;
    if g.format == Format::Table {
        writeln!(
            out,
            "{} of {} sessions hold the anchor; consecutive repeats {}",
            r.sessions,
            r.sessions_total,
            if p.keep_repeats { "kept" } else { "collapsed" }
        )?;
        let mut f = Frame::new(&["step", "from", "to", "sessions"]);
        for l in r.links.iter().filter(|l| l.sessions * 100 >= r.sessions) {
            f.push(vec![
                Value::from(l.step),
                Value::from(l.from.clone()),
                Value::from(l.to.clone()),
                Value::from(l.sessions),
            ]);
        }
        writeln!(out, "transitions carrying at least 1% of those sessions:")?;
        f.write(out, g.output())?;
    }
    Ok(())
}

pub(crate) async fn kpis_cmd(
    g: &Global,
    p: shoplens_engine::practice::kpis::KpiParams,
    out: &mut dyn Write,
) -> Result<()> {
    let (ws, tz) = crate::commands::existing_in_zone(g)?;
    let r = shoplens_engine::practice::kpis::kpis(&ws, &p.spec(as_of(g, &tz))).await?;
    if g.format == Format::Json {
        return write_json(out, &r);
    }
    let zh = g.lang_zh();
    let csv = g.format == Format::Csv;
    let show = |v: Option<f64>, unit: &str| -> Value {
        match v {
            None => Value::Null,
            Some(x) if csv => Value::from(x),
            Some(x) if unit == "ratio" => Value::from(format!("{:.2}%", x * 100.0)),
            Some(x) if unit == "money" || unit == "number" => Value::from(format!("{x:.2}")),
            Some(x) if x.fract() == 0.0 => Value::from(format!("{x:.0}")),
            Some(x) => Value::from(format!("{x:.1}")),
        }
    };
    let mut f = Frame::new(&["kpi", "value", "previous", "change"]);
    for k in &r.kpis {
        f.push(vec![
            Value::from(if zh { k.name_zh } else { k.name }),
            show(k.value, k.unit),
            show(k.previous, k.unit),
            match (k.change, k.change_points) {
                (Some(c), _) if csv => Value::from(c),
                (_, Some(p)) if !csv => Value::from(format!("{p:+.2} pts")),
                (Some(c), _) => Value::from(format!("{:+.1}%", c * 100.0)),
                _ => Value::Null,
            },
        ]);
    }
    if g.format == Format::Table {
        writeln!(
            out,
            "{} – {} against {} – {} ({} days each)",
            r.from, r.to, r.previous_from, r.previous_to, r.days
        )?;
    }
    f.write(out, g.output())
}
