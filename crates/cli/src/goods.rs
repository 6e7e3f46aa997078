//! Goods and traffic commands: `shoplens basket` (more to come: products, returns, inventory,
//! channels, campaigns).

use std::io::Write;

use anyhow::{Result, anyhow};
use clap::{Args, ValueEnum};
use serde_json::Value;
use shoplens_engine::baskets::{self, BasketSpec, Level, Unit};
use shoplens_engine::models::baskets::Threshold;

use crate::Global;
use crate::people::period;
use crate::render::{Format, Frame, fixed, shown, write_json};

#[derive(Debug, Clone, Copy, ValueEnum)]
enum LevelArg {
    Item,
    Category,
}

#[derive(Debug, Clone, Copy, ValueEnum)]
enum BasketArg {
    Order,
    Session,
}

#[derive(Debug, Args)]
pub(crate) struct BasketArgs {
    /// Minimum support: share of baskets holding the rule's items (inclusive, exact decimal).
    #[arg(long, default_value = "0.01")]
    min_support: String,
    /// Minimum confidence (inclusive).
    #[arg(long, default_value = "0.5")]
    min_confidence: String,
    /// Minimum lift (inclusive; 0 = none).
    #[arg(long, default_value = "0")]
    min_lift: String,
    /// Most items in a rule (antecedent + consequent).
    #[arg(long, default_value_t = 10)]
    max_len: usize,
    /// Items, or their product categories.
    #[arg(long, value_enum, default_value = "item")]
    level: LevelArg,
    /// An order's items, or a session's.
    #[arg(long, value_enum, default_value = "order")]
    basket: BasketArg,
    /// Session baskets: the events whose items count (comma-separated).
    #[arg(long, default_value = "add_to_cart")]
    events: String,
    /// Baskets from this day (or instant) on, in the shop's zone.
    #[arg(long)]
    from: Option<String>,
    /// Baskets up to this day, inclusive (or an instant, exclusive).
    #[arg(long)]
    to: Option<String>,
    /// Bundle suggestions (pairs and triples) to list.
    #[arg(long, default_value_t = 10)]
    bundles: usize,
    /// Table and CSV: at most this many rules, highest lift first (0 = all; JSON lists all).
    #[arg(long, default_value_t = 20)]
    limit: usize,
}

fn threshold(flag: &str, text: &str) -> Result<Threshold> {
    Threshold::parse(text).map_err(|e| anyhow!("--{flag}: {e}"))
}

pub(crate) async fn basket_cmd(g: &Global, a: BasketArgs, out: &mut dyn Write) -> Result<()> {
    let (ws, tz) = crate::commands::existing_in_zone(g)?;
    let mut spec = BasketSpec::new(
        threshold("min-support", &a.min_support)?,
        threshold("min-confidence", &a.min_confidence)?,
    );
    spec.min_lift = threshold("min-lift", &a.min_lift)?;
    spec.max_len = a.max_len;
    spec.level = match a.level {
        LevelArg::Item => Level::Item,
        LevelArg::Category => Level::Category,
    };
    spec.unit = match a.basket {
        BasketArg::Order => Unit::Order,
        BasketArg::Session => Unit::Session(
            a.events
                .split(',')
                .map(|e| e.trim().to_string())
                .filter(|e| !e.is_empty())
                .collect(),
        ),
    };
    (spec.from, spec.to) = period(&tz, a.from.as_deref(), a.to.as_deref())?;
    spec.bundles = a.bundles;
    let r = baskets::basket(&ws, &spec).await?;
    if g.format == Format::Json {
        return write_json(out, &r);
    }
    let csv = g.format == Format::Csv;
    let num = |x: Option<f64>, digits: usize| fixed(x, digits, csv);
    if !csv {
        writeln!(
            out,
            "{} baskets, {} {}s; support ≥ {} (≥ {} baskets), confidence ≥ {}, lift ≥ {}: {} frequent itemsets, {} rules",
            r.baskets,
            r.items,
            if r.level == Level::Item {
                "item"
            } else {
                "categor"
            },
            r.min_support,
            r.min_count,
            r.min_confidence,
            r.min_lift,
            r.frequent_itemsets,
            r.rules.len()
        )?;
        if r.lines_without_category > 0 {
            writeln!(
                out,
                "{} lines have no product category and are left out",
                r.lines_without_category
            )?;
        }
    }
    let n = shown(a.limit, r.rules.len());
    let mut f = Frame::new(&[
        "antecedent",
        "consequent",
        "support",
        "confidence",
        "lift",
        "leverage",
        "conviction",
        "count",
    ]);
    for rule in &r.rules[..n] {
        f.push(vec![
            Value::from(rule.antecedent.join(" + ")),
            Value::from(rule.consequent.join(" + ")),
            num(Some(rule.support), 5),
            num(Some(rule.confidence), 3),
            num(Some(rule.lift), 2),
            num(Some(rule.leverage), 5),
            num(rule.conviction, 2),
            Value::from(rule.count),
        ]);
    }
    f.write(out, g.format)?;
    if csv {
        return Ok(());
    }
    if n < r.rules.len() {
        writeln!(
            out,
            "… {} more rules (--limit 0 or --format json for all)",
            r.rules.len() - n
        )?;
    }
    if !r.bundles.is_empty() {
        writeln!(out, "\nBundle suggestions (pairs and triples by lift):")?;
        let mut f = Frame::new(&[
            "bundle",
            "baskets",
            "support",
            "lift",
            "aov_with",
            "aov_without",
            "aov_change",
        ]);
        for b in &r.bundles {
            f.push(vec![
                Value::from(b.items.join(" + ")),
                Value::from(b.baskets),
                num(Some(b.support), 5),
                num(Some(b.lift), 2),
                num(b.aov_with, 2),
                num(b.aov_without, 2),
                num(b.aov_change, 3),
            ]);
        }
        f.write(out, g.format)?;
    }
    Ok(())
}
