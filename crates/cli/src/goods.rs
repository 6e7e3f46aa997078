//! Goods and traffic commands: `shoplens basket`, `products`, `returns`, `inventory`, `channels`,
//! `campaigns`.

use std::io::Write;

use anyhow::{Result, anyhow};
use clap::{Args, ValueEnum};
use serde_json::Value;
use shoplens_engine::calendar;
use shoplens_engine::goods::baskets::{self, BasketSpec, Level, Unit};
use shoplens_engine::goods::{
    self, InventoryParams, MatrixRow, MatrixSpec, ReturnsParams, ReturnsRow, SalesMeasure,
};
use shoplens_engine::models::baskets::Threshold;
use shoplens_engine::traffic;

use crate::Global;
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
    (spec.from, spec.to) = calendar::period(&tz, a.from.as_deref(), a.to.as_deref())?;
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
    f.write(out, g.output())?;
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
        f.write(out, g.output())?;
    }
    Ok(())
}

#[derive(Debug, Clone, Copy, ValueEnum)]
enum SalesArg {
    Units,
    Revenue,
}

#[derive(Debug, Args)]
pub(crate) struct ProductsArgs {
    /// Orders from this day (or instant) on, in the shop's zone.
    #[arg(long)]
    from: Option<String>,
    /// Orders up to this day, inclusive (or an instant, exclusive).
    #[arg(long)]
    to: Option<String>,
    /// The sales axis of the quadrants.
    #[arg(long, value_enum, default_value = "units")]
    sales: SalesArg,
    /// High sales at or above this (default: the median over items with costs).
    #[arg(long)]
    sales_threshold: Option<f64>,
    /// High margin rate at or above this, e.g. 0.3 (default: the median).
    #[arg(long)]
    margin_threshold: Option<f64>,
    /// Table and CSV: at most this many items, highest revenue first (0 = all; JSON lists all).
    #[arg(long, default_value_t = 20)]
    limit: usize,
}

fn matrix_frame(rows: &[&MatrixRow], items: bool, csv: bool, zh: bool) -> Frame {
    let num = |x: Option<f64>, digits: usize| fixed(x, digits, csv);
    let mut f = Frame::new(&[
        if items { "item_id" } else { "category" },
        "name",
        "category",
        "units",
        "orders",
        "revenue",
        "discounts",
        "cost",
        "gross_margin",
        "margin_rate",
        "quadrant",
        "action",
    ]);
    for r in rows {
        let mut row = vec![
            Value::from(r.key.clone()),
            Value::from(r.name.clone().unwrap_or_default()),
            Value::from(r.category.clone().unwrap_or_default()),
            Value::from(r.units),
            Value::from(r.orders),
            num(Some(r.revenue), 2),
            num(Some(r.discounts), 2),
            num(r.cost, 2),
            num(r.gross_margin, 2),
            num(r.margin_rate, 3),
            Value::from(
                if zh {
                    r.quadrant_name_zh
                } else {
                    r.quadrant_name
                }
                .unwrap_or("no cost data"),
            ),
            Value::from(if zh { r.action_zh } else { r.action }.unwrap_or("")),
        ];
        if !items {
            row.drain(1..3);
        }
        f.push(row);
    }
    if !items {
        f.columns.drain(1..3);
    }
    f
}

pub(crate) async fn products_cmd(g: &Global, a: ProductsArgs, out: &mut dyn Write) -> Result<()> {
    let (ws, tz) = crate::commands::existing_in_zone(g)?;
    let mut spec = MatrixSpec {
        sales: match a.sales {
            SalesArg::Units => SalesMeasure::Units,
            SalesArg::Revenue => SalesMeasure::Revenue,
        },
        sales_threshold: a.sales_threshold,
        margin_threshold: a.margin_threshold,
        ..MatrixSpec::default()
    };
    (spec.from, spec.to) = calendar::period(&tz, a.from.as_deref(), a.to.as_deref())?;
    let r = goods::product_matrix(&ws, &spec).await?;
    if g.format == Format::Json {
        return write_json(out, &r);
    }
    let csv = g.format == Format::Csv;
    let zh = g.lang_zh();
    let n = shown(a.limit, r.items.len());
    if csv {
        return matrix_frame(&r.items.iter().take(n).collect::<Vec<_>>(), true, true, zh)
            .write(out, g.output());
    }
    writeln!(
        out,
        "{} items sold: {} units, revenue {:.2}, discounts {:.2}{}",
        r.items.len(),
        r.total.units,
        r.total.revenue,
        r.total.discounts,
        match (r.total.gross_margin, r.total.margin_rate) {
            (Some(m), Some(rate)) => format!(", gross margin {m:.2} ({:.1}%)", rate * 100.0),
            _ => String::new(),
        }
    )?;
    if !r.has_costs {
        writeln!(
            out,
            "No cost data: margins and quadrants are not computed (none is invented)."
        )?;
    } else {
        writeln!(
            out,
            "Quadrants at {} ≥ {} and margin rate ≥ {}; {} items without cost data are left out.",
            if spec.sales == SalesMeasure::Units {
                "units"
            } else {
                "revenue"
            },
            r.sales_threshold.map_or("-".into(), |x| format!("{x:.2}")),
            r.margin_threshold.map_or("-".into(), |x| format!("{x:.3}")),
            r.items_without_cost
        )?;
    }
    matrix_frame(&r.items.iter().take(n).collect::<Vec<_>>(), true, false, zh)
        .write(out, g.output())?;
    if n < r.items.len() {
        writeln!(
            out,
            "… {} more items (--limit 0 or --format json for all)",
            r.items.len() - n
        )?;
    }
    writeln!(out, "\nBy category:")?;
    matrix_frame(&r.categories.iter().collect::<Vec<_>>(), false, false, zh).write(out, g.output())
}

#[derive(Debug, Args)]
pub(crate) struct ReturnsArgs {
    /// Group by `item`, `category`, or an attribute (size, colour, division …) within each category.
    #[arg(long, default_value = "item")]
    by: String,
    /// Orders and reviews from this day (or instant) on; reviews without a date are kept.
    #[arg(long)]
    from: Option<String>,
    /// Orders and reviews up to this day, inclusive.
    #[arg(long)]
    to: Option<String>,
    /// A good review has at least this many stars.
    #[arg(long, default_value_t = 4)]
    good_rating: i64,
    /// Quality risk: return rate at least this multiple of the category's median …
    #[arg(long, default_value_t = 2.0)]
    risk_multiple: f64,
    /// … while the good-review rate is below this.
    #[arg(long, default_value_t = 0.8)]
    risk_good_below: f64,
    /// Quality risk: only items with at least this many units sold …
    #[arg(long, default_value_t = 30)]
    min_units: i64,
    /// … and this many reviews.
    #[arg(long, default_value_t = 10)]
    min_reviews: i64,
    /// Table and CSV: at most this many groups, most units first (0 = all; JSON lists all).
    #[arg(long, default_value_t = 20)]
    limit: usize,
}

fn returns_frame(rows: &[ReturnsRow], csv: bool) -> Frame {
    let num = |x: Option<f64>, digits: usize| fixed(x, digits, csv);
    let mut f = Frame::new(&[
        "key",
        "category",
        "units",
        "returned_units",
        "return_rate_units",
        "orders",
        "orders_with_return",
        "return_rate_orders",
        "reviews",
        "good_review_rate",
        "average_rating",
    ]);
    for r in rows {
        f.push(vec![
            Value::from(r.key.clone()),
            Value::from(r.category.clone().unwrap_or_default()),
            Value::from(r.units),
            Value::from(r.returned_units),
            num(r.return_rate_units, 3),
            Value::from(r.orders),
            Value::from(r.orders_with_return),
            num(r.return_rate_orders, 3),
            Value::from(r.reviews),
            num(r.good_review_rate, 3),
            num(r.average_rating, 2),
        ]);
    }
    f
}

pub(crate) async fn returns_cmd(g: &Global, a: ReturnsArgs, out: &mut dyn Write) -> Result<()> {
    let (ws, tz) = crate::commands::existing_in_zone(g)?;
    let p = ReturnsParams {
        by: a.by,
        from: a.from,
        to: a.to,
        good_rating: a.good_rating,
        risk_multiple: a.risk_multiple,
        risk_good_below: a.risk_good_below,
        min_units: a.min_units,
        min_reviews: a.min_reviews,
        limit: a.limit,
    };
    let spec = p.spec(&tz)?;
    let r = goods::returns(&ws, &spec).await?;
    if g.format == Format::Json {
        return write_json(out, &r);
    }
    let csv = g.format == Format::Csv;
    let n = shown(a.limit, r.rows.len());
    if csv {
        return returns_frame(&r.rows[..n], true).write(out, g.output());
    }
    let t = &r.total;
    let pct = |x: Option<f64>| x.map_or("-".into(), |x| format!("{:.1}%", x * 100.0));
    writeln!(
        out,
        "Returns {} of units ({} of {}), {} of orders; {} reviews, {} good (≥ {} stars), average {}",
        pct(t.return_rate_units),
        t.returned_units,
        t.units,
        pct(t.return_rate_orders),
        t.reviews,
        pct(t.good_review_rate),
        r.good_rating,
        t.average_rating.map_or("-".into(), |x| format!("{x:.2}"))
    )?;
    returns_frame(&r.rows[..n], false).write(out, g.output())?;
    if n < r.rows.len() {
        writeln!(
            out,
            "… {} more (--limit 0 or --format json for all)",
            r.rows.len() - n
        )?;
    }
    if r.flags.is_empty() {
        writeln!(out, "\nNo quality-risk flags.")?;
    } else {
        writeln!(out, "\nQuality risks:")?;
        for f in &r.flags {
            writeln!(
                out,
                "  {} {}: {}",
                f.item_id,
                f.name.clone().unwrap_or_default(),
                if g.lang_zh() {
                    &f.evidence_zh
                } else {
                    &f.evidence
                }
            )?;
        }
    }
    Ok(())
}

#[derive(Debug, Args)]
pub(crate) struct InventoryArgs {
    /// First day of the period (default: the first inventory day).
    #[arg(long)]
    from: Option<String>,
    /// Last day of the period, inclusive (default: the last inventory day).
    #[arg(long)]
    to: Option<String>,
    /// Slow movers: stock left and more days of inventory than this (or no sales).
    #[arg(long, default_value_t = 90.0)]
    slow_days: f64,
    /// Table and CSV: at most this many items, most days of inventory first (0 = all).
    #[arg(long, default_value_t = 20)]
    limit: usize,
}

pub(crate) async fn inventory_cmd(g: &Global, a: InventoryArgs, out: &mut dyn Write) -> Result<()> {
    let ws = crate::commands::existing(g)?;
    let p = InventoryParams {
        from: a.from,
        to: a.to,
        slow_days: a.slow_days,
        limit: a.limit,
    };
    let spec = p.spec()?;
    let r = goods::inventory(&ws, &spec).await?;
    if g.format == Format::Json {
        return write_json(out, &r);
    }
    let csv = g.format == Format::Csv;
    let num = |x: Option<f64>, digits: usize| fixed(x, digits, csv);
    let pct = |x: Option<f64>| x.map_or("-".into(), |x| format!("{:.1}%", x * 100.0));
    if !csv {
        writeln!(
            out,
            "{} .. {} ({} days): sell-through {}, 动销率 {} ({} of {} SKUs sold), turnover {} (days of inventory {}), stock-out snapshots {}",
            r.from,
            r.to,
            r.days,
            pct(r.sell_through),
            pct(r.sku_sold_share),
            r.skus_sold,
            r.skus,
            r.turnover.map_or("-".into(), |x| format!("{x:.2}")),
            r.days_of_inventory
                .map_or("-".into(), |x| format!("{x:.0}")),
            pct(r.stockout_rate)
        )?;
        writeln!(
            out,
            "{} slow movers, {} items ran out of stock at least once",
            r.slow_movers.len(),
            r.stockouts.len()
        )?;
    }
    let n = shown(a.limit, r.items.len());
    let mut f = Frame::new(&[
        "item_id",
        "category",
        "units_sold",
        "ending_on_hand",
        "sell_through",
        "cogs",
        "average_inventory_value",
        "turnover",
        "days_of_inventory",
        "stockout_snapshots",
    ]);
    for i in &r.items[..n] {
        f.push(vec![
            Value::from(i.item_id.clone()),
            Value::from(i.category.clone().unwrap_or_default()),
            Value::from(i.units_sold),
            i.ending_on_hand.map_or(Value::Null, Value::from),
            num(i.sell_through, 3),
            num(i.cogs, 2),
            num(i.average_inventory_value, 2),
            num(i.turnover, 2),
            num(i.days_of_inventory, 0),
            Value::from(i.stockout_snapshots),
        ]);
    }
    f.write(out, g.output())
}

#[derive(Debug, Args)]
pub(crate) struct ChannelsArgs {
    /// From this day (or instant) on, in the shop's zone (default: all data).
    #[arg(long)]
    from: Option<String>,
    /// Up to this day, inclusive (or an instant, exclusive).
    #[arg(long)]
    to: Option<String>,
    /// Print the daily trend instead of the channel table (JSON always has both).
    #[arg(long)]
    daily: bool,
}

pub(crate) async fn channels_cmd(g: &Global, a: ChannelsArgs, out: &mut dyn Write) -> Result<()> {
    let (ws, tz) = crate::commands::existing_in_zone(g)?;
    let (from, to) = calendar::period(&tz, a.from.as_deref(), a.to.as_deref())?;
    let p = traffic::Period {
        from,
        to,
        as_of: crate::people::as_of(g, &tz),
    };
    let r = traffic::channels(&ws, &p).await?;
    if g.format == Format::Json {
        return write_json(out, &r);
    }
    let csv = g.format == Format::Csv;
    let num = |x: Option<f64>, digits: usize| fixed(x, digits, csv);
    if a.daily {
        let mut f = Frame::new(&["date", "channel", "uv", "orders", "revenue", "spend"]);
        for d in &r.daily {
            f.push(vec![
                Value::from(d.date.clone()),
                Value::from(d.channel.clone()),
                Value::from(d.uv),
                Value::from(d.orders),
                num(Some(d.revenue), 2),
                num(Some(d.spend), 2),
            ]);
        }
        return f.write(out, g.output());
    }
    let mut f = Frame::new(&[
        "channel",
        "uv",
        "pv",
        "sessions",
        "orders",
        "paid_orders",
        "conversion",
        "uv_to_cart",
        "cart_to_order",
        "order_to_paid",
        "aov",
        "revenue",
        "gross_margin",
        "new_customers",
        "spend",
        "cac",
        "roas",
        "repurchase_90d",
        "ltv",
        "ltv_to_cac",
    ]);
    for c in &r.channels {
        f.push(vec![
            Value::from(c.channel.clone()),
            Value::from(c.uv),
            Value::from(c.pv),
            Value::from(c.sessions),
            Value::from(c.orders),
            Value::from(c.paid_orders),
            num(c.conversion, 4),
            num(c.uv_to_cart, 3),
            num(c.cart_to_order, 3),
            num(c.order_to_paid, 3),
            num(c.aov, 2),
            num(Some(c.revenue), 2),
            num(c.gross_margin, 2),
            Value::from(c.new_customers),
            num(Some(c.spend), 2),
            num(c.cac, 2),
            num(c.roas, 2),
            num(c.repurchase_90d, 3),
            num(c.ltv, 2),
            num(c.ltv_to_cac, 2),
        ]);
    }
    f.write(out, g.output())
}

pub(crate) async fn campaigns_cmd(g: &Global, out: &mut dyn Write) -> Result<()> {
    let ws = crate::commands::existing(g)?;
    let r = traffic::campaigns(&ws).await?;
    if g.format == Format::Json {
        return write_json(out, &r);
    }
    let csv = g.format == Format::Csv;
    let num = |x: Option<f64>, digits: usize| fixed(x, digits, csv);
    let mut f = Frame::new(&[
        "campaign_id",
        "members",
        "redeemers",
        "orders",
        "revenue",
        "discount_cost",
        "gross_margin",
        "cost",
        "revenue_before",
        "revenue_during",
        "incremental_revenue",
        "roi",
        "roi_revenue",
        "aov_change",
        "margin_rate_change",
        "verdict",
    ]);
    for c in &r.campaigns {
        f.push(vec![
            Value::from(c.campaign_id.clone()),
            Value::from(c.members),
            Value::from(c.redeemers),
            Value::from(c.orders),
            num(Some(c.revenue), 2),
            num(Some(c.discount_cost), 2),
            num(c.gross_margin, 2),
            num(Some(c.cost), 2),
            num(Some(c.redeemer_revenue_before), 2),
            num(Some(c.redeemer_revenue_during), 2),
            num(Some(c.incremental_revenue), 2),
            num(c.roi, 2),
            num(c.roi_revenue, 2),
            num(c.aov_change, 3),
            num(c.margin_rate_change, 3),
            Value::from(c.verdict.clone().unwrap_or_default()),
        ]);
    }
    f.write(out, g.output())?;
    if !csv && !r.has_costs {
        writeln!(
            out,
            "No cost data: ROI is given on a revenue basis only (roi_revenue)."
        )?;
    }
    Ok(())
}
