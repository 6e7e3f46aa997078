//! Customer commands: `shoplens clv` (and, as they land, RFM, churn, stages, audiences).

use std::io::Write;

use anyhow::{Result, bail};
use chrono::NaiveDate;
use clap::{Args, ValueEnum};
use serde_json::Value;
use shoplens_engine::calendar;
use shoplens_engine::clv::{self, ClvSpec, TimeUnit};

use crate::Global;
use crate::people::as_of;
use crate::render::{Format, Frame, write_json};

#[derive(Debug, Clone, Copy, ValueEnum)]
enum Unit {
    Day,
    Week,
    Month,
}

#[derive(Debug, Args)]
pub(crate) struct ClvArgs {
    /// Last day of the calibration period, inclusive (default: the as-of day). Data after it up
    /// to the horizon is the holdout the predictions are checked against.
    #[arg(long)]
    calibration_end: Option<String>,
    /// Time unit of recency, T and the horizon.
    #[arg(long, value_enum, default_value = "week")]
    time_unit: Unit,
    /// Prediction horizon after the calibration end, in time units.
    #[arg(long, default_value_t = 52)]
    horizon: u32,
    /// Annual discount rate of CLV (0.10 = 10% a year).
    #[arg(long, default_value_t = 0.10)]
    discount_rate: f64,
    /// Table and CSV: at most this many customers, highest CLV first (0 = all; JSON lists all).
    #[arg(long, default_value_t = 20)]
    limit: usize,
}

pub(crate) async fn clv_cmd(g: &Global, a: ClvArgs, out: &mut dyn Write) -> Result<()> {
    let ws = crate::commands::existing(g)?;
    let tz = calendar::zone(&ws.manifest()?.settings);
    let calibration_end = match a.calibration_end.as_deref() {
        Some(t) => match NaiveDate::parse_from_str(t.trim(), "%Y-%m-%d") {
            Ok(d) => Some(d),
            Err(_) => bail!("--calibration-end `{t}` is not a date (1997-09-30)"),
        },
        None => None,
    };
    let spec = ClvSpec {
        calibration_end,
        unit: match a.time_unit {
            Unit::Day => TimeUnit::Day,
            Unit::Week => TimeUnit::Week,
            Unit::Month => TimeUnit::Month,
        },
        horizon: a.horizon,
        discount_rate: a.discount_rate,
        as_of: as_of(g, &tz),
    };
    let r = clv::clv(&ws, &spec).await?;
    if g.format == Format::Json {
        return write_json(out, &r);
    }
    let csv = g.format == Format::Csv;
    let num = |x: Option<f64>, digits: usize| -> Value {
        match x {
            None => Value::Null,
            Some(v) if csv => Value::from(v),
            Some(v) => Value::from(format!("{v:.digits$}")),
        }
    };
    if !csv {
        let b = &r.bgnbd;
        writeln!(
            out,
            "BG/NBD on {} customers (calibration to {}, unit {:?}): r {:.4}  alpha {:.4}  a {:.4}  b {:.4}  log-likelihood {:.2}",
            b.customers, r.calibration_end, r.time_unit, b.r, b.alpha, b.a, b.b, b.log_likelihood
        )?;
        match &r.gamma_gamma {
            Some(gg) => writeln!(
                out,
                "Gamma-Gamma on {} repeat customers: p {:.4}  q {:.4}  v {:.4}  (frequency–spend correlation {})",
                gg.customers,
                gg.p,
                gg.q,
                gg.v,
                gg.frequency_monetary_correlation
                    .map_or_else(|| "n/a".into(), |c| format!("{c:.3}"))
            )?,
            None => writeln!(out, "Gamma-Gamma: not fitted")?,
        }
        for w in &r.warnings {
            writeln!(out, "warning: {w}")?;
        }
    }
    let mut f = Frame::new(&[
        "user_id",
        "frequency",
        "recency",
        "t",
        "p_alive",
        "expected_purchases",
        "expected_order_value",
        "clv",
    ]);
    let n = if a.limit == 0 {
        r.customers.len()
    } else {
        a.limit
    };
    for c in r.customers.iter().take(n) {
        f.push(vec![
            Value::from(c.user_id.clone()),
            Value::from(c.frequency),
            num(Some(c.recency), 2),
            num(Some(c.t), 2),
            num(Some(c.p_alive), 3),
            num(Some(c.expected_purchases), 3),
            num(c.expected_order_value, 2),
            num(c.clv, 2),
        ]);
    }
    f.write(out, g.format)?;
    if let (Some(h), false) = (&r.holdout, csv) {
        writeln!(
            out,
            "Holdout {} .. {} ({:.1} units): actual {} purchase days, predicted {:.1}",
            h.from, h.to, h.length, h.actual_purchases, h.predicted_purchases
        )?;
        let mut hf = Frame::new(&["frequency", "customers", "actual_mean", "predicted_mean"]);
        for b in &h.by_frequency {
            hf.push(vec![
                Value::from(if b.or_more {
                    format!("{}+", b.frequency)
                } else {
                    b.frequency.to_string()
                }),
                Value::from(b.customers),
                num(Some(b.actual_mean), 3),
                num(Some(b.predicted_mean), 3),
            ]);
        }
        hf.write(out, g.format)?;
    }
    Ok(())
}
