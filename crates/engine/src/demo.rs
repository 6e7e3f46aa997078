//! The demo shop: a seeded, deterministic synthetic shop with planted truths (docs/demo-shop.md),
//! generated in parallel blocks and streamed into the workspace as one atomic commit.
//!
//! Every identity (customer or anonymous visitor) has its own random stream derived from the seed
//! and its index, so the tables are identical for a seed whatever the number of threads.

mod catalog;
mod shopper;

use std::collections::{BTreeMap, HashMap};

use chrono::{NaiveDate, NaiveTime};
use rand::{Rng, SeedableRng};
use rand_chacha::ChaCha8Rng;
use rand_distr::{Distribution, LogNormal};
use rayon::prelude::*;
use serde::Serialize;

use crate::calendar::{days_since_epoch, local_to_utc_micros};
use crate::demo::catalog::{CAMPAIGNS, CATEGORIES, CHANNELS, Catalog, DAILY_SPEND, EXPERIMENTS};
use crate::demo::shopper::{BlockOut, World, all_hour_weights, simulate};
use crate::error::{Error, Result};
use crate::ingest::build::TableBuilder;
use crate::ingest::value::Val;
use crate::storage::schema::Table;
use crate::storage::workspace::{IngestRecord, Workspace};

/// Parameters of the demo shop (`shoplens demo`).
#[derive(Debug, Clone, Copy, PartialEq, clap::Args)]
pub struct DemoParams {
    /// Seed of every random choice (the same seed gives identical tables).
    #[arg(long, default_value_t = 42)]
    pub seed: u64,
    /// Size: 1 = about 20k customers, 100k visitors and 2M events over a year; 50 ≈ 100M events.
    #[arg(long, default_value_t = 1.0)]
    pub scale: f64,
}

/// Audiences the demo shop starts with: (name, rule, description).
pub const STARTER_AUDIENCES: &[(&str, &str, &str)] = &[
    (
        "win-back",
        "stage IN ('at_risk', 'churned') AND clv >= 100",
        "Buyers gone quiet who are still worth something: a personal offer to win them back.",
    ),
    (
        "vip",
        "segment IN ('champions', 'loyal')",
        "The best customers: early access, VIP service, invitations to review.",
    ),
];

/// Saves the starter audiences, so the dashboard's export has something to act on; never
/// replaces an audience of the same name the user saved.
pub async fn save_starter_audiences(ws: &Workspace) -> Result<()> {
    for (name, rule, description) in STARTER_AUDIENCES {
        if crate::customers::audiences::load(ws, name).is_err() {
            crate::customers::audiences::save(ws, name, rule, description, false).await?;
        }
    }
    Ok(())
}

impl Default for DemoParams {
    fn default() -> DemoParams {
        crate::params::flag_defaults()
    }
}

/// What the demo generated.
#[derive(Debug, Clone, Serialize)]
pub struct DemoSummary {
    /// Commit that published the shop (or that published it earlier, when already present).
    pub commit: String,
    /// Seed used.
    pub seed: u64,
    /// Scale used.
    pub scale: f64,
    /// Registered customers simulated.
    pub customers: u64,
    /// Anonymous visitors simulated.
    pub visitors: u64,
    /// Rows per table.
    pub tables: BTreeMap<String, u64>,
    /// True when the workspace already held this exact demo shop and nothing was written.
    pub already_present: bool,
}

const CUSTOMERS_PER_SCALE: f64 = 20_000.0;
const VISITORS_PER_SCALE: f64 = 100_000.0;
const CUSTOMER_BLOCK: u64 = 5_000;
const VISITOR_BLOCK: u64 = 25_000;
const TIMEZONE: &str = "Asia/Shanghai";

fn fingerprint(p: &DemoParams) -> String {
    format!("demo seed={} scale={}", p.seed, p.scale)
}

/// Generates the demo shop into `ws`. `progress(done, total)` counts identities simulated.
pub fn generate(
    ws: &Workspace,
    p: &DemoParams,
    progress: &(dyn Fn(u64, u64) + Sync),
) -> Result<DemoSummary> {
    if !(p.scale > 0.0 && p.scale <= 1_000.0) {
        return Err(Error::Invalid(format!(
            "--scale must be in (0, 1000], got {}",
            p.scale
        )));
    }
    let customers = ((CUSTOMERS_PER_SCALE * p.scale).round() as u64).max(1);
    let visitors = (VISITORS_PER_SCALE * p.scale).round() as u64;
    let writer = ws.writer()?;
    let mut commit = writer.begin()?;
    let base = commit.base().clone();
    if let Some(prev) = base
        .ingests
        .iter()
        .find(|r| r.content_hash == fingerprint(p))
    {
        let tables = Table::ALL
            .iter()
            .filter(|t| base.rows(**t) > 0)
            .map(|t| (t.name().to_string(), base.rows(*t)))
            .collect();
        return Ok(DemoSummary {
            commit: prev.commit.clone(),
            seed: p.seed,
            scale: p.scale,
            customers,
            visitors,
            tables,
            already_present: true,
        });
    }
    if Table::ALL.iter().any(|t| base.rows(*t) > 0) {
        return Err(Error::Invalid(format!(
            "the workspace {} already holds other data; run the demo in a new one (--workspace DIR)",
            ws.root().display()
        )));
    }
    commit.settings_mut().timezone = Some(TIMEZONE.into());
    commit.settings_mut().currency = Some("CNY".into());
    let tz: chrono_tz::Tz = TIMEZONE
        .parse()
        .map_err(|_| Error::Internal("zone".into()))?;
    let mut rng = ChaCha8Rng::seed_from_u64(p.seed);
    let world = World {
        catalog: Catalog::new(&mut rng),
        start: NaiveDate::from_ymd_opt(2025, 1, 1).ok_or_else(|| Error::Internal("date".into()))?,
        days: 365,
        tz,
        seed: p.seed,
        hours: all_hour_weights(),
    };

    let mut blocks: Vec<(bool, u64, u64)> = Vec::new();
    for (visitor, n, size) in [
        (false, customers, CUSTOMER_BLOCK),
        (true, visitors, VISITOR_BLOCK),
    ] {
        let mut a = 0;
        while a < n {
            blocks.push((visitor, a, (a + size).min(n)));
            a += size;
        }
    }
    let total = customers + visitors;
    let done = std::sync::atomic::AtomicU64::new(0);
    let mut counts: BTreeMap<String, u64> = BTreeMap::new();
    let mut units: HashMap<(usize, i64), i64> = HashMap::new();
    let mut discounts = [0i128; CAMPAIGNS.len()];
    let group = rayon::current_num_threads().max(1);
    for chunk in blocks.chunks(group) {
        let outs: Vec<Result<BlockOut>> = chunk
            .par_iter()
            .map(|(visitor, a, b)| {
                let mut out = BlockOut::new();
                for i in *a..*b {
                    simulate(&world, i, *visitor, &mut out)?;
                }
                let n = done.fetch_add(b - a, std::sync::atomic::Ordering::Relaxed) + (b - a);
                progress(n, total);
                Ok(out)
            })
            .collect();
        for out in outs {
            let out = out?;
            for (k, v) in out.units {
                *units.entry(k).or_default() += v;
            }
            for (d, x) in discounts.iter_mut().zip(out.discounts) {
                *d += x;
            }
            for (t, b) in out.tables {
                let batch = b.finish()?;
                *counts.entry(t.name().to_string()).or_default() += batch.num_rows() as u64;
                commit.stage(Some(t), &[batch])?;
            }
        }
    }
    let mut rng = ChaCha8Rng::seed_from_u64(p.seed ^ 0x5354_4154_4943);
    for (t, b) in [
        (Table::Products, products(&world)?),
        (Table::Inventory, inventory(&world, &units)?),
        (Table::ChannelSpend, channel_spend(&world, &mut rng)?),
        (Table::Campaigns, campaigns(&world, &discounts)?),
        (Table::Experiments, experiments(&world)?),
    ] {
        let batch = b.finish()?;
        *counts.entry(t.name().to_string()).or_default() += batch.num_rows() as u64;
        commit.stage(Some(t), &[batch])?;
    }
    counts.retain(|_, n| *n > 0);
    commit.record_ingest(IngestRecord {
        commit: commit.id().to_string(),
        source: "demo".into(),
        content_hash: fingerprint(p),
        mapping: "demo".into(),
        read: 0,
        stored: 0,
        quarantined: 0,
        excluded: 0,
    });
    let id = commit.id().to_string();
    commit.publish()?;
    Ok(DemoSummary {
        commit: id,
        seed: p.seed,
        scale: p.scale,
        customers,
        visitors,
        tables: counts,
        already_present: false,
    })
}

/// Writes a seeded CSV in the Taobao UserBehavior layout (user, item, category, behaviour, epoch
/// seconds; no header) for benchmarks: users' events are contiguous and time-ordered, behaviours
/// are pv 90%, cart 5%, fav 3%, buy 2%.
pub fn write_taobao_layout(path: &std::path::Path, rows: u64, seed: u64) -> Result<()> {
    use std::io::Write as _;
    let file = std::fs::File::create(path).map_err(|e| Error::io(path, e))?;
    let mut w = std::io::BufWriter::with_capacity(1 << 20, file);
    let mut rng = ChaCha8Rng::seed_from_u64(seed);
    let mut written = 0u64;
    let mut user = 1u64;
    while written < rows {
        let n = rng.random_range(20..200u64).min(rows - written);
        let mut ts: u64 = 1_511_539_200 + rng.random_range(0..86_400);
        for _ in 0..n {
            ts += rng.random_range(1..7_000);
            let item = rng.random_range(1..5_000_000u64);
            let category = item % 9_439 + 1_000;
            let b = match rng.random_range(0..100) {
                0..90 => "pv",
                90..95 => "cart",
                95..98 => "fav",
                _ => "buy",
            };
            writeln!(w, "{user},{item},{category},{b},{ts}").map_err(|e| Error::io(path, e))?;
        }
        written += n;
        user += 1;
    }
    w.flush().map_err(|e| Error::io(path, e))?;
    Ok(())
}

fn text(s: impl Into<String>) -> Val<'static> {
    Val::Text(std::borrow::Cow::Owned(s.into()))
}

fn money(x: f64) -> Val<'static> {
    Val::Money((x * 10_000.0).round() as i128)
}

fn instant(w: &World, day: i64) -> i64 {
    local_to_utc_micros(
        &w.tz,
        (w.start + chrono::Duration::days(day)).and_time(NaiveTime::MIN),
    )
}

fn date(w: &World, day: i64) -> Val<'static> {
    Val::Date(days_since_epoch(w.start + chrono::Duration::days(day)))
}

fn products(w: &World) -> Result<TableBuilder> {
    let mut b = TableBuilder::new(Table::Products, w.catalog.products.len());
    for p in &w.catalog.products {
        b.push(&[
            text(p.id.clone()),
            text(p.name.clone()),
            text(match p.leaf {
                Some(leaf) => format!("{}/{leaf}", CATEGORIES[p.category]),
                None => CATEGORIES[p.category].to_string(),
            }),
            text(p.brand.clone()),
            Val::Money(p.price),
            Val::Money(p.cost),
            text(p.attributes.clone()),
            Val::Null,
            Val::Ts(instant(w, p.launched_day)),
        ])?;
    }
    Ok(b)
}

/// Weekly stock snapshots: each product starts with four weeks of its average sales; when stock
/// falls under three weeks' worth, six weeks' worth is ordered and arrives two weeks later. Sales
/// beyond stock leave it at 0 (a stock-out week).
fn inventory(w: &World, units: &HashMap<(usize, i64), i64>) -> Result<TableBuilder> {
    let weeks = (w.days + 6) / 7;
    let mut b = TableBuilder::new(Table::Inventory, w.catalog.products.len() * weeks as usize);
    for (i, p) in w.catalog.products.iter().enumerate() {
        let sold: Vec<i64> = (0..weeks)
            .map(|k| units.get(&(i, k)).copied().unwrap_or(0))
            .collect();
        let avg = sold.iter().sum::<i64>() as f64 / weeks as f64;
        let mut on_hand = (avg * 4.0).ceil() as i64 + 3;
        let mut pending: Option<(usize, i64)> = None;
        for (k, s) in sold.iter().enumerate() {
            let mut received = 0;
            if let Some((week, qty)) = pending
                && week == k
            {
                received = qty;
                on_hand += qty;
                pending = None;
            }
            on_hand = (on_hand - s).max(0);
            if pending.is_none() && (on_hand as f64) < avg * 3.0 {
                pending = Some((k + 2, (avg * 6.0).ceil() as i64 + 3));
            }
            let day = (k as i64 * 7 + 6).min(w.days - 1);
            b.push(&[
                text(p.id.clone()),
                date(w, day),
                Val::Int(on_hand),
                Val::Int(received),
                Val::Null,
                Val::Null,
                Val::Money(p.cost),
            ])?;
        }
    }
    Ok(b)
}

fn channel_spend(w: &World, rng: &mut ChaCha8Rng) -> Result<TableBuilder> {
    let mut b = TableBuilder::new(Table::ChannelSpend, (w.days as usize) * CHANNELS.len());
    let noise = LogNormal::new(0.0, 0.15).map_err(|e| Error::Internal(e.to_string()))?;
    for day in 0..w.days {
        for (c, ch) in CHANNELS.iter().enumerate() {
            let weekly = 1.0 + 0.2 * ((day % 7) as f64 / 7.0 * std::f64::consts::TAU).sin();
            let boost = match (*ch, day) {
                ("content", 151..=168) => 2.0,
                ("live_stream", 304..=314) => 2.5,
                _ => 1.0,
            };
            let spend = DAILY_SPEND[c] * weekly * boost * noise.sample(rng);
            let impressions = (spend * rng.random_range(20.0..40.0)).round() as i64;
            let clicks = (impressions as f64 * rng.random_range(0.01..0.03)).round() as i64;
            b.push(&[
                date(w, day),
                text(*ch),
                Val::Null,
                money((spend * 100.0).round() / 100.0),
                Val::Int(impressions),
                Val::Int(clicks),
            ])?;
        }
    }
    Ok(b)
}

fn campaigns(w: &World, discounts: &[i128; CAMPAIGNS.len()]) -> Result<TableBuilder> {
    let mut b = TableBuilder::new(Table::Campaigns, CAMPAIGNS.len());
    for (c, d) in CAMPAIGNS.iter().zip(discounts) {
        b.push(&[
            text(c.id),
            text(c.name),
            text(c.channel),
            Val::Ts(instant(w, c.days.0)),
            Val::Ts(instant(w, c.days.1 + 1) - 1),
            text(c.kind),
            Val::Money(d + (c.fee * 10_000.0) as i128),
            text(c.audience),
        ])?;
    }
    Ok(b)
}

fn experiments(w: &World) -> Result<TableBuilder> {
    let mut b = TableBuilder::new(Table::Experiments, EXPERIMENTS.len());
    for x in &EXPERIMENTS {
        b.push(&[
            text(x.key),
            text(x.name),
            text(format!("[\"{}\",\"{}\"]", x.variants[0], x.variants[1])),
            text(format!("[{},{}]", x.planned[0], x.planned[1])),
            Val::Float(1.0),
            text(x.key),
            Val::Ts(instant(w, x.days.0)),
            Val::Ts(instant(w, x.days.1 + 1) - 1),
            Val::Null,
            text(x.surface),
            Val::Null,
            Val::Null,
            text(format!("[\"{}\"]", x.primary)),
            text("[\"aov\"]"),
        ])?;
    }
    Ok(b)
}
