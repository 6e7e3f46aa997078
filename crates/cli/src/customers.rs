//! Customer commands: `shoplens clv`, `rfm`, `churn` and `stages`.

use std::io::Write;

use anyhow::Result;
use serde_json::Value;
use shoplens_engine::customers::clv::{self, ClvParams};
use shoplens_engine::customers::rfm::{self, RfmParams};
use shoplens_engine::customers::stages::{self, ChurnParams, Stage, StagesParams};
use shoplens_engine::models::rfm::Segment;

use crate::Global;
use crate::people::as_of;
use crate::render::{Format, Frame, fixed, shown, write_json};

pub(crate) async fn clv_cmd(g: &Global, p: ClvParams, out: &mut dyn Write) -> Result<()> {
    let (ws, tz) = crate::commands::existing_in_zone(g)?;
    let spec = p.spec(as_of(g, &tz))?;
    let r = clv::clv(&ws, &spec).await?;
    if g.format == Format::Json {
        return write_json(out, &r);
    }
    let csv = g.format == Format::Csv;
    let num = |x: Option<f64>, digits: usize| fixed(x, digits, csv);
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
    let n = shown(p.limit, r.customers.len());
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
    f.write(out, g.output())?;
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
        hf.write(out, g.output())?;
    }
    Ok(())
}

pub(crate) async fn rfm_cmd(g: &Global, p: RfmParams, out: &mut dyn Write) -> Result<()> {
    let (ws, tz) = crate::commands::existing_in_zone(g)?;
    let spec = p.spec(&tz, as_of(g, &tz))?;
    let r = rfm::rfm(&ws, &spec).await?;
    match g.format {
        Format::Json => write_json(out, &r),
        Format::Csv => {
            let mut f = Frame::new(&[
                "user_id",
                "recency_days",
                "frequency",
                "monetary",
                "r",
                "f",
                "m",
                "rfm",
                "segment",
                "cluster",
            ]);
            for c in &r.customers {
                f.push(vec![
                    Value::from(c.user_id.clone()),
                    Value::from(c.recency_days),
                    Value::from(c.frequency),
                    Value::from(c.monetary),
                    Value::from(c.r),
                    Value::from(c.f),
                    Value::from(c.m),
                    Value::from(c.rfm.clone()),
                    Value::from(c.segment.key()),
                    c.cluster.map_or(Value::Null, Value::from),
                ]);
            }
            f.write(out, g.output())
        }
        Format::Table => {
            writeln!(
                out,
                "RFM of {} customers as of {}",
                r.total_customers, r.as_of
            )?;
            let pct = |v: f64| Value::from(format!("{:.1}%", v * 100.0));
            let mut f = Frame::new(&[
                "segment",
                "中文",
                "customers",
                "share",
                "revenue_share",
                "recency_days",
                "frequency",
                "monetary",
                "action",
            ]);
            for s in r.segments.iter().filter(|s| s.customers > 0) {
                f.push(vec![
                    Value::from(s.name),
                    Value::from(s.name_zh),
                    Value::from(s.customers),
                    pct(s.share),
                    pct(s.revenue_share),
                    Value::from(format!("{:.0}", s.mean_recency_days)),
                    Value::from(format!("{:.1}", s.mean_frequency)),
                    Value::from(format!("{:.2}", s.mean_monetary)),
                    Value::from(s.action),
                ]);
            }
            f.write(out, g.output())?;
            if let Some(c) = &r.clustering {
                let sil = c
                    .silhouette_by_k
                    .iter()
                    .map(|k| format!("k={} {:.3}", k.k, k.silhouette))
                    .collect::<Vec<_>>()
                    .join(", ");
                writeln!(
                    out,
                    "k-means: k = {} ({}; silhouette {sil})",
                    c.k, c.chosen_by
                )?;
                let mut f = Frame::new(&[
                    "cluster",
                    "customers",
                    "share",
                    "revenue_share",
                    "recency_days",
                    "frequency",
                    "monetary",
                    "mostly",
                ]);
                for k in &c.clusters {
                    f.push(vec![
                        Value::from(k.cluster),
                        Value::from(k.customers),
                        pct(k.share),
                        pct(k.revenue_share),
                        Value::from(format!("{:.0}", k.mean_recency_days)),
                        Value::from(format!("{:.1}", k.mean_frequency)),
                        Value::from(format!("{:.2}", k.mean_monetary)),
                        Value::from(
                            k.top_segments
                                .iter()
                                .map(|s| format!("{} {:.0}%", s.segment.name(), s.share * 100.0))
                                .collect::<Vec<_>>()
                                .join(", "),
                        ),
                    ]);
                }
                f.write(out, g.output())?;
            }
            if let Some(m) = &r.movement {
                writeln!(
                    out,
                    "Movement since {} (rows: segment then; columns: now)",
                    m.from_as_of
                )?;
                let to: Vec<Segment> = Segment::ALL
                    .into_iter()
                    .filter(|s| m.transitions.iter().any(|t| t.to == *s))
                    .collect();
                let mut header = vec!["then \\ now"];
                header.extend(to.iter().map(|s| s.name()));
                let mut f = Frame::new(&header);
                let from = std::iter::once(None).chain(Segment::ALL.into_iter().map(Some));
                for fr in from {
                    let row: Vec<u64> = to
                        .iter()
                        .map(|t| {
                            m.transitions
                                .iter()
                                .find(|x| x.from == fr && x.to == *t)
                                .map_or(0, |x| x.customers)
                        })
                        .collect();
                    if row.iter().all(|v| *v == 0) {
                        continue;
                    }
                    let mut cells = vec![Value::from(fr.map_or("(new customer)", |s| s.name()))];
                    cells.extend(row.into_iter().map(Value::from));
                    f.push(cells);
                }
                f.write(out, g.output())?;
            }
            Ok(())
        }
    }
}

pub(crate) async fn stages_cmd(g: &Global, p: StagesParams, out: &mut dyn Write) -> Result<()> {
    let (ws, tz) = crate::commands::existing_in_zone(g)?;
    let spec = p.spec(&tz, as_of(g, &tz))?;
    let r = stages::stages(&ws, &spec).await?;
    if g.format == Format::Json {
        return write_json(out, &r);
    }
    let mut header = vec!["period_start", "day"];
    header.extend(Stage::ALL.iter().map(|s| s.key()));
    let mut f = Frame::new(&header);
    for s in &r.snapshots {
        let mut row = vec![
            Value::from(s.period_start.clone()),
            Value::from(s.day.clone()),
        ];
        row.extend(
            Stage::ALL
                .iter()
                .map(|st| Value::from(s.counts.get(st).copied().unwrap_or(0))),
        );
        f.push(row);
    }
    f.write(out, g.output())?;
    if g.format == Format::Table {
        if let Some(last) = r.transitions.last().map(|t| t.day.clone()) {
            writeln!(out, "Transitions into the snapshot of {last}")?;
            let mut t = Frame::new(&["from", "to", "customers"]);
            for x in r.transitions.iter().filter(|x| x.day == last) {
                t.push(vec![
                    Value::from(x.from.map_or("(new)", Stage::name)),
                    Value::from(x.to.name()),
                    Value::from(x.customers),
                ]);
            }
            t.write(out, g.output())?;
        }
        writeln!(out, "By member tier (stages at the last snapshot)")?;
        let mut t = Frame::new(&[
            "tier",
            "customers",
            "buyers",
            "revenue",
            "per_customer",
            "per_buyer",
            "active",
            "at_risk",
            "churned",
        ]);
        for x in &r.by_member_tier {
            t.push(vec![
                Value::from(x.tier.clone().unwrap_or_else(|| "(none)".into())),
                Value::from(x.customers),
                Value::from(x.buyers),
                Value::from(format!("{:.2}", x.revenue)),
                Value::from(format!("{:.2}", x.revenue_per_customer)),
                Value::from(
                    x.revenue_per_buyer
                        .map_or_else(String::new, |v| format!("{v:.2}")),
                ),
                Value::from(x.stages.get(&Stage::Active).copied().unwrap_or(0)),
                Value::from(x.stages.get(&Stage::AtRisk).copied().unwrap_or(0)),
                Value::from(x.stages.get(&Stage::Churned).copied().unwrap_or(0)),
            ]);
        }
        t.write(out, g.output())?;
    }
    Ok(())
}

pub(crate) async fn churn_cmd(g: &Global, p: ChurnParams, out: &mut dyn Write) -> Result<()> {
    let (ws, tz) = crate::commands::existing_in_zone(g)?;
    let spec = p.spec(as_of(g, &tz));
    let r = stages::churn(&ws, &spec).await?;
    if g.format == Format::Json {
        return write_json(out, &r);
    }
    let csv = g.format == Format::Csv;
    if !csv {
        writeln!(
            out,
            "As of {}: churn rate {:.1}%, at risk {:.1}% of {} buyers",
            r.as_of,
            r.churn_rate * 100.0,
            r.at_risk_rate * 100.0,
            r.customers.len()
        )?;
        let mut f = Frame::new(&["stage", "中文", "buyers"]);
        for (s, n) in &r.counts {
            f.push(vec![
                Value::from(s.name()),
                Value::from(s.name_zh()),
                Value::from(*n),
            ]);
        }
        f.write(out, g.output())?;
        for w in &r.warnings {
            writeln!(out, "warning: {w}")?;
        }
        writeln!(out, "Win-back candidates by expected value")?;
    }
    let num = |x: Option<f64>, d: usize| fixed(x, d, csv);
    let mut f = Frame::new(&[
        "user_id",
        "stage",
        "days_since_last_order",
        "expected_interval_days",
        "p_alive",
        "historical_value",
        "expected_value",
    ]);
    let n = shown(p.limit, r.win_back.len());
    for c in r.win_back.iter().take(n) {
        f.push(vec![
            Value::from(c.user_id.clone()),
            Value::from(c.stage.key()),
            Value::from(c.days_since_last_order),
            num(c.expected_interval_days, 1),
            num(c.p_alive, 3),
            num(Some(c.historical_value), 2),
            num(c.expected_value, 2),
        ]);
    }
    f.write(out, g.output())
}
