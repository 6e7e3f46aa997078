//! `shoplens funnel`: users per step, conversion and drop-off, time to convert, breakdowns.

use std::io::Write;

use anyhow::Result;
use serde_json::Value;
use shoplens_engine::calendar;
use shoplens_engine::people::funnel::{self, FunnelParams, FunnelReport, StepStats, Unit};

use crate::Global;
use crate::render::{Format, Frame, Output, write_json};

pub(crate) async fn run(g: &Global, p: FunnelParams, out: &mut dyn Write) -> Result<()> {
    let ws = crate::commands::existing(g)?;
    let tz = calendar::zone(&ws.manifest()?.settings);
    let spec = p.spec(&tz, crate::people::as_of(g, &tz))?;
    let report = funnel::funnel(&ws, &spec).await?;
    if g.format == Format::Json {
        return write_json(out, &report);
    }
    write_report(&report, g.output(), out)
}

fn pct(x: Option<f64>) -> Value {
    x.map_or(Value::Null, |x| Value::String(format!("{:.1}%", x * 100.0)))
}

fn secs(x: Option<f64>) -> Value {
    x.map_or(Value::Null, |s| Value::String(human_seconds(s)))
}

fn human_seconds(s: f64) -> String {
    if s < 60.0 {
        format!("{s:.0}s")
    } else if s < 3_600.0 {
        format!("{:.1}m", s / 60.0)
    } else if s < 86_400.0 {
        format!("{:.1}h", s / 3_600.0)
    } else {
        format!("{:.1}d", s / 86_400.0)
    }
}

fn step_row(prefix: &[Value], s: &StepStats, csv: bool) -> Vec<Value> {
    let mut row = prefix.to_vec();
    row.push(Value::from(s.step.clone()));
    row.push(Value::from(s.users));
    if csv {
        row.extend([
            s.conversion_from_previous.into(),
            s.conversion_from_first.into(),
            Value::from(s.drop_off),
            s.drop_off_rate.into(),
            s.median_seconds_to_convert.into(),
            s.p90_seconds_to_convert.into(),
        ]);
    } else {
        row.extend([
            pct(s.conversion_from_previous),
            pct(s.conversion_from_first),
            Value::from(s.drop_off),
            pct(s.drop_off_rate),
            secs(s.median_seconds_to_convert),
            secs(s.p90_seconds_to_convert),
        ]);
    }
    row.push(s.drop_off_name.map_or(Value::Null, Value::from));
    row
}

const STEP_COLUMNS: [&str; 9] = [
    "step",
    "users",
    "conversion_from_previous",
    "conversion_from_first",
    "drop_off",
    "drop_off_rate",
    "median_seconds_to_convert",
    "p90_seconds_to_convert",
    "named_drop",
];

/// The same columns, short enough for a terminal.
const STEP_LABELS: [&str; 9] = [
    "step",
    "users",
    "from previous",
    "from first",
    "dropped",
    "drop rate",
    "median time",
    "p90 time",
    "named drop",
];

fn write_report(r: &FunnelReport, output: Output, out: &mut dyn Write) -> Result<()> {
    let format = output.format;
    let csv = format == Format::Csv;
    let by = r.definition.breakdown.clone();
    let mut cols: Vec<&str> = Vec::new();
    if by.is_some() {
        cols.push("breakdown");
    }
    cols.extend(if csv { STEP_COLUMNS } else { STEP_LABELS });
    let mut f = Frame::new(&cols);
    let all = if by.is_some() {
        vec![Value::from("(all)")]
    } else {
        vec![]
    };
    for s in &r.steps {
        f.push(step_row(&all, s, csv));
    }
    for b in &r.breakdown {
        let v = vec![Value::from(
            b.value.clone().unwrap_or_else(|| "(none)".into()),
        )];
        for s in &b.steps {
            f.push(step_row(&v, s, csv));
        }
    }
    f.write(out, output)?;
    if format == Format::Table {
        writeln!(
            out,
            "{} {}s with any event; window {}, mode {}{}",
            r.users_total,
            match r.definition.unit {
                Unit::User => "user",
                Unit::Session => "session",
            },
            human_seconds(r.definition.window_seconds),
            r.definition.mode,
            by.map(|b| format!(", by {b}")).unwrap_or_default()
        )?;
    }
    if !r.dropped_next.is_empty() {
        let mut f = Frame::new(&["after_step", "stopped", "next_event", "users", "share"]);
        for d in &r.dropped_next {
            for n in &d.next {
                f.push(vec![
                    Value::from(d.after_step.clone()),
                    Value::from(d.users),
                    Value::from(n.event.clone().unwrap_or_else(|| "(no later event)".into())),
                    Value::from(n.users),
                    if csv {
                        n.share.into()
                    } else {
                        pct(Some(n.share))
                    },
                ]);
            }
        }
        if format == Format::Table {
            writeln!(out, "\nwhere units that stopped went next:")?;
        }
        f.write(out, output)?;
    }
    Ok(())
}
