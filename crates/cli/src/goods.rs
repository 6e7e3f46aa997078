//! Goods and traffic commands: `shoplens basket`, `products`, `returns`, `inventory`, `channels`,
//! `campaigns`.

use std::io::Write;

use anyhow::Result;
use serde_json::Value;
use shoplens_engine::goods::baskets::{self, BasketParams, Level};
use shoplens_engine::goods::{
    self, InventoryParams, MatrixRow, ProductParams, ReturnsParams, ReturnsRow, SalesMeasure,
};
use shoplens_engine::traffic::{self, ChannelParams};

use crate::Global;
use crate::render::{Format, Frame, fixed, shown, write_json};

pub(crate) async fn basket_cmd(g: &Global, p: BasketParams, out: &mut dyn Write) -> Result<()> {
    let (ws, tz) = crate::commands::existing_in_zone(g)?;
    let spec = p.spec(&tz)?;
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
    let n = shown(p.limit, r.rules.len());
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

pub(crate) async fn products_cmd(g: &Global, p: ProductParams, out: &mut dyn Write) -> Result<()> {
    let (ws, tz) = crate::commands::existing_in_zone(g)?;
    let spec = p.spec(&tz)?;
    let r = goods::product_matrix(&ws, &spec).await?;
    if g.format == Format::Json {
        return write_json(out, &r);
    }
    let csv = g.format == Format::Csv;
    let zh = g.lang_zh();
    let n = shown(p.limit, r.items.len());
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

pub(crate) async fn returns_cmd(g: &Global, p: ReturnsParams, out: &mut dyn Write) -> Result<()> {
    let (ws, tz) = crate::commands::existing_in_zone(g)?;
    let spec = p.spec(&tz)?;
    let r = goods::returns(&ws, &spec).await?;
    if g.format == Format::Json {
        return write_json(out, &r);
    }
    let csv = g.format == Format::Csv;
    let n = shown(p.limit, r.rows.len());
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

pub(crate) async fn inventory_cmd(
    g: &Global,
    p: InventoryParams,
    out: &mut dyn Write,
) -> Result<()> {
    let ws = crate::commands::existing(g)?;
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
    let n = shown(p.limit, r.items.len());
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

pub(crate) async fn channels_cmd(g: &Global, a: ChannelParams, out: &mut dyn Write) -> Result<()> {
    let (ws, tz) = crate::commands::existing_in_zone(g)?;
    let p = a.spec(&tz, crate::people::as_of(g, &tz))?;
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
        "method",
        "members",
        "holdout_members",
        "comparison_customers",
        "orders",
        "revenue",
        "discount_cost",
        "cost",
        "incremental_revenue",
        "incremental_revenue_ci",
        "incremental_margin",
        "roi",
        "roi_ci",
        "aov_change",
        "margin_rate_change",
        "verdict",
    ]);
    let ci = |c: Option<[f64; 2]>, digits: usize| match c {
        Some([a, b]) if !csv => Value::from(format!("[{a:.digits$}, {b:.digits$}]")),
        Some([a, b]) => Value::from(format!("{a:.digits$};{b:.digits$}")),
        None => Value::Null,
    };
    for c in &r.campaigns {
        f.push(vec![
            Value::from(c.campaign_id.clone()),
            serde_json::to_value(c.method).unwrap_or_default(),
            Value::from(c.members),
            Value::from(c.holdout_members),
            c.comparison_customers.map_or(Value::Null, Value::from),
            Value::from(c.orders),
            num(Some(c.revenue), 2),
            num(Some(c.discount_cost), 2),
            num(Some(c.cost), 2),
            num(c.incremental_revenue, 2),
            ci(c.incremental_revenue_ci, 2),
            num(c.incremental_margin, 2),
            num(c.roi, 3),
            ci(c.roi_ci, 3),
            num(c.aov_change, 3),
            num(c.margin_rate_change, 3),
            Value::from(c.verdict.clone().unwrap_or_default()),
        ]);
    }
    f.write(out, g.output())?;
    if !csv {
        for c in &r.campaigns {
            if let Some(why) = &c.reason {
                writeln!(out, "{}: {why}", c.campaign_id)?;
            }
        }
    }
    Ok(())
}
