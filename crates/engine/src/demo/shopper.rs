//! Simulating one customer's (or anonymous visitor's) year: sessions, views, carts, orders,
//! payments, returns, reviews, coupons and experiment exposures.

use std::borrow::Cow;
use std::collections::HashMap;

use chrono::{NaiveDate, NaiveTime};
use chrono_tz::Tz;
use rand::{Rng, SeedableRng};
use rand_chacha::ChaCha8Rng;
use rand_distr::{Distribution, Exp, Poisson};
use shoplens_models::assign::{choose_variant, hash_v2};

use crate::calendar::local_to_utc_micros;
use crate::demo::catalog::{
    ACQUISITION, CAMPAIGNS, CATEGORIES, CATEGORY_PREFERENCE, CHANNELS, CONVERSION, Catalog,
    EXPERIMENTS, FORMULA_WITH_DIAPERS, PRICE_FACTOR, SUMMER, SUMMER_EXTRA_UNIT,
    WELCOME_EXTRA_CONVERSION, WELCOME_EXTRA_VISIT, hour_weights, weighted,
};
use crate::error::Result;
use crate::ingest::build::TableBuilder;
use crate::ingest::value::Val;
use crate::storage::schema::Table;

/// Segments of customers (the heterogeneity analyses should recover).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Segment {
    Heavy,
    Regular,
    Lapsed,
    Never,
    Visitor,
}

impl Segment {
    /// The simulator's name of the segment, kept in customers.properties so tests can check
    /// what analyses recover.
    fn key(self) -> &'static str {
        match self {
            Segment::Heavy => "heavy",
            Segment::Regular => "regular",
            Segment::Lapsed => "lapsed",
            Segment::Never => "never",
            Segment::Visitor => "visitor",
        }
    }
}

/// The fixed world of one generation.
pub(crate) struct World {
    pub(crate) catalog: Catalog,
    pub(crate) start: NaiveDate,
    pub(crate) days: i64,
    pub(crate) tz: Tz,
    pub(crate) seed: u64,
    pub(crate) hours: Vec<[f64; 24]>,
}

/// Rows and aggregates of a block of identities.
pub(crate) struct BlockOut {
    pub(crate) tables: Vec<(Table, TableBuilder)>,
    /// Units sold per (product index, week).
    pub(crate) units: HashMap<(usize, i64), i64>,
    /// Discount granted per campaign, in 10^-4 CNY.
    pub(crate) discounts: [i128; CAMPAIGNS.len()],
}

const OUT_TABLES: [Table; 8] = [
    Table::Events,
    Table::Orders,
    Table::OrderItems,
    Table::Customers,
    Table::Reviews,
    Table::Exposures,
    Table::CampaignMembers,
    Table::Redemptions,
];

impl BlockOut {
    pub(crate) fn new() -> BlockOut {
        BlockOut {
            tables: OUT_TABLES
                .iter()
                .map(|t| (*t, TableBuilder::new(*t, 1024)))
                .collect(),
            units: HashMap::new(),
            discounts: [0; CAMPAIGNS.len()],
        }
    }

    fn push(&mut self, t: Table, vals: &[Val<'_>]) -> Result<()> {
        let i = OUT_TABLES.iter().position(|x| *x == t).unwrap_or(0);
        self.tables[i].1.push(vals)
    }
}

fn text(s: impl Into<String>) -> Val<'static> {
    Val::Text(Cow::Owned(s.into()))
}

fn opt_text(s: Option<&str>) -> Val<'static> {
    s.map_or(Val::Null, text)
}

const MINUTE: i64 = 60_000_000;
const DAY: i64 = 86_400_000_000;
/// Share of product views followed by a quick add of another item of the category.
const QUICK_ADD: f64 = 0.05;

impl World {
    fn instant(&self, day: i64, seconds: i64) -> i64 {
        let date = self.start + chrono::Duration::days(day);
        local_to_utc_micros(&self.tz, date.and_time(NaiveTime::MIN)) + seconds * 1_000_000
    }

    fn day_of(&self, micros: i64) -> i64 {
        let base = local_to_utc_micros(&self.tz, self.start.and_time(NaiveTime::MIN));
        (micros - base).div_euclid(DAY)
    }
}

/// One identity's simulation state.
struct Shopper<'w> {
    w: &'w World,
    rng: ChaCha8Rng,
    user_id: Option<String>,
    anon: String,
    segment: Segment,
    acquisition: usize,
    tier: &'static str,
    favourites: [usize; 2],
    registered_day: i64,
    orders: u32,
    events: u64,
    sessions: u64,
    exposed: [Option<usize>; 2],
    /// The identity's index (seeds its campaigns' own random streams).
    idx: u64,
    /// The campaign whose message brought the session being simulated (its orders carry
    /// `utm_campaign` in their properties, so tests can tell the campaign's effect apart).
    brought_by: Option<usize>,
    /// The summer promotion's own stream for this identity, once it first applies.
    summer_rng: Option<ChaCha8Rng>,
}

/// Simulates identity `idx` (customers first, then visitors) into `out`.
pub(crate) fn simulate(w: &World, idx: u64, visitor: bool, out: &mut BlockOut) -> Result<()> {
    let stream = if visitor {
        0x5649_5349_544f_5253
    } else {
        0x4355_5354_4f4d_4552
    };
    let mut rng =
        ChaCha8Rng::seed_from_u64(w.seed ^ stream ^ idx.wrapping_mul(0x9E37_79B9_7F4A_7C15));
    let acquisition = weighted(&ACQUISITION, &mut rng);
    let community = CHANNELS[acquisition] == "private_community";
    let segment = if visitor {
        Segment::Visitor
    } else {
        let probs = if community {
            [0.35, 0.57, 0.04, 0.04]
        } else {
            [0.08, 0.55, 0.22, 0.15]
        };
        [
            Segment::Heavy,
            Segment::Regular,
            Segment::Lapsed,
            Segment::Never,
        ][weighted(&probs, &mut rng)]
    };
    let tier = match segment {
        Segment::Heavy => ["platinum", "gold"][weighted(&[0.4, 0.6], &mut rng)],
        Segment::Regular => ["gold", "silver", "none"][weighted(&[0.15, 0.45, 0.40], &mut rng)],
        Segment::Lapsed => ["silver", "none"][weighted(&[0.3, 0.7], &mut rng)],
        _ => "none",
    };
    let f1 = weighted(&CATEGORY_PREFERENCE, &mut rng);
    let mut f2 = weighted(&CATEGORY_PREFERENCE, &mut rng);
    if f2 == f1 {
        f2 = (f1 + 1) % CATEGORIES.len();
    }
    let registered_day = if visitor {
        rng.random_range(0..w.days)
    } else {
        rng.random_range(-120..w.days - 7)
    };
    let mut s = Shopper {
        w,
        rng,
        user_id: (!visitor).then(|| format!("U{idx:06}")),
        anon: if visitor {
            format!("V{idx:06}")
        } else {
            format!("A{idx:06}")
        },
        segment,
        acquisition,
        tier,
        favourites: [f1, f2],
        registered_day,
        orders: 0,
        events: 0,
        sessions: 0,
        exposed: [None, None],
        idx,
        brought_by: None,
        summer_rng: None,
    };
    if !visitor {
        s.customer_row(out, community)?;
    }
    s.live(out, community)
}

impl Shopper<'_> {
    /// In the win-back campaign's audience: a lapsed customer silent for 90+ days by its start.
    fn winback_target(&self) -> bool {
        self.segment == Segment::Lapsed && self.registered_day < CAMPAIGNS[0].days.0 - 90
    }

    /// In campaign `ci`'s randomised holdout: kept from its message and coupon.
    fn in_holdout(&self, ci: usize) -> bool {
        let c = &CAMPAIGNS[ci];
        c.holdout > 0.0
            && self
                .user_id
                .as_deref()
                .is_some_and(|u| hash_v2(c.id, u) < c.holdout)
    }

    /// Campaign `ci`'s own random stream for this identity, apart from the identity's stream
    /// so the campaign's effect leaves every other draw as it was.
    fn campaign_rng(&self, ci: usize) -> ChaCha8Rng {
        ChaCha8Rng::seed_from_u64(
            self.w.seed
                ^ 0x4341_4d50_4149_474e
                ^ self.idx.wrapping_mul(0x9E37_79B9_7F4A_7C15)
                ^ (ci as u64 + 1).wrapping_mul(0xBF58_476D_1CE4_E5B9),
        )
    }

    /// A gold or platinum member (the 618 and Double 11 audiences).
    fn top_tier(&self) -> bool {
        matches!(self.tier, "gold" | "platinum")
    }

    /// In the summer promotion's audience: a silver, gold or platinum member by its start.
    fn summer_target(&self) -> bool {
        self.tier != "none" && self.registered_day < CAMPAIGNS[SUMMER].days.0
    }

    fn customer_row(&mut self, out: &mut BlockOut, community: bool) -> Result<()> {
        let regions = [
            "Shanghai",
            "Beijing",
            "Guangdong",
            "Zhejiang",
            "Jiangsu",
            "Sichuan",
            "Hubei",
            "Overseas",
        ];
        let region = regions[weighted(
            &[0.18, 0.14, 0.2, 0.14, 0.12, 0.08, 0.08, 0.06],
            &mut self.rng,
        )];
        let mut tags = Vec::new();
        if self.favourites.contains(&2) {
            tags.push("\"new_parent\"");
        }
        if self.segment == Segment::Heavy {
            tags.push("\"vip\"");
        }
        if community {
            tags.push("\"wechat_group\"");
        }
        let points = match self.tier {
            "platinum" => self.rng.random_range(5_000..20_000),
            "gold" => self.rng.random_range(1_000..5_000),
            "silver" => self.rng.random_range(100..1_000),
            _ => 0,
        };
        let reg = self.w.instant(
            self.registered_day,
            self.rng.random_range(8 * 3600..23 * 3600),
        );
        let user = self.user_id.clone().unwrap_or_default();
        out.push(
            Table::Customers,
            &[
                text(user.clone()),
                Val::Ts(reg),
                text(CHANNELS[self.acquisition]),
                text(self.tier),
                Val::Int(points),
                text(region),
                text(format!("[{}]", tags.join(","))),
                text(format!(
                    "{{\"favourite_category\":\"{}\",\"segment\":\"{}\"}}",
                    CATEGORIES[self.favourites[0]],
                    self.segment.key()
                )),
            ],
        )?;
        let welcome = &CAMPAIGNS[1];
        if self.registered_day >= 0 {
            out.push(
                Table::CampaignMembers,
                &[
                    text(welcome.id),
                    text(user.clone()),
                    Val::Ts(reg),
                    Val::Bool(self.in_holdout(1)),
                ],
            )?;
        }
        for (ci, c) in CAMPAIGNS.iter().enumerate() {
            let member = match ci {
                0 => self.winback_target(),
                2 | 3 => self.top_tier() && self.registered_day < c.days.0,
                SUMMER => self.summer_target(),
                _ => false,
            };
            if member {
                out.push(
                    Table::CampaignMembers,
                    &[
                        text(c.id),
                        text(user.clone()),
                        Val::Ts(self.w.instant(c.days.0 - 3, 10 * 3600)),
                        if c.holdout > 0.0 {
                            Val::Bool(self.in_holdout(ci))
                        } else {
                            Val::Null
                        },
                    ],
                )?;
            }
        }
        Ok(())
    }

    /// Session arrival rates (per day) in phases: (first day, last day exclusive, rate, conversion).
    fn phases(&self, community: bool) -> Vec<(i64, i64, f64, f64)> {
        let start = self.registered_day.max(0);
        let end = self.w.days;
        let boost = if community { 3.0 } else { 1.0 };
        match self.segment {
            Segment::Heavy => vec![(start, end, 0.16 * boost, 0.16)],
            Segment::Regular => vec![(start, end, 0.035 * boost, 0.09)],
            Segment::Lapsed => {
                let lapse = (self.registered_day + 60).clamp(start, end);
                vec![
                    (start, lapse, 0.09 * boost, 0.08),
                    (lapse, end, 0.002, 0.05),
                ]
            }
            Segment::Never => vec![(start, end, 0.012, 0.0)],
            Segment::Visitor => vec![(
                self.registered_day,
                (self.registered_day + 14).min(end),
                0.1,
                0.02,
            )],
        }
    }

    fn live(&mut self, out: &mut BlockOut, community: bool) -> Result<()> {
        // (day, conversion, the campaign that brought the session)
        let mut days: Vec<(i64, f64, Option<usize>)> = Vec::new();
        let mut welcome_rng = None;
        if self.segment == Segment::Visitor {
            let extra = Poisson::new(0.5)
                .map(|p| p.sample(&mut self.rng) as i64)
                .unwrap_or(0);
            days.push((self.registered_day, 0.02, None));
            for _ in 0..extra {
                let d = self.registered_day + self.rng.random_range(0..14);
                if d < self.w.days {
                    days.push((d, 0.02, None));
                }
            }
        } else {
            for (a, b, rate, conv) in self.phases(community) {
                let Ok(exp) = Exp::new(rate) else { continue };
                let mut t = a as f64 + exp.sample(&mut self.rng);
                while t < b as f64 {
                    days.push((t.floor() as i64, conv, None));
                    t += exp.sample(&mut self.rng);
                }
            }
            // The win-back message brings a quarter of the targeted lapsed customers back for a
            // session in September; its holdout gets no message (the draws are made alike).
            let wb = &CAMPAIGNS[0];
            if self.winback_target() && self.rng.random_bool(0.25) {
                let day = self.rng.random_range(wb.days.0..=wb.days.1);
                if !self.in_holdout(0) {
                    days.push((day, 0.5, Some(0)));
                }
            }
            // The welcome message brings a few treated new members back within two weeks,
            // drawn from the campaign's own stream.
            if self.registered_day >= 0 && self.segment != Segment::Never && !self.in_holdout(1) {
                let mut r = self.campaign_rng(1);
                if r.random_bool(WELCOME_EXTRA_VISIT) {
                    let day = self.registered_day + r.random_range(0..14);
                    if day < self.w.days {
                        days.push((day, WELCOME_EXTRA_CONVERSION, Some(1)));
                        welcome_rng = Some(r);
                    }
                }
            }
        }
        days.sort_by_key(|d| d.0);
        for (day, conv, brought_by) in days {
            self.brought_by = brought_by;
            match (brought_by, welcome_rng.as_mut()) {
                // The welcome visit runs on its own stream.
                (Some(1), Some(r)) => {
                    std::mem::swap(&mut self.rng, r);
                    let done = self.session(out, day, conv);
                    std::mem::swap(&mut self.rng, r);
                    done?;
                }
                _ => self.session(out, day, conv)?,
            }
        }
        self.brought_by = None;
        Ok(())
    }

    fn next_event_id(&mut self) -> String {
        self.events += 1;
        format!(
            "E{}-{}",
            self.user_id.as_deref().unwrap_or(&self.anon),
            self.events
        )
    }

    #[allow(clippy::too_many_arguments)]
    fn event(
        &mut self,
        out: &mut BlockOut,
        ts: i64,
        session: &str,
        name: &str,
        item: Option<usize>,
        quantity: Option<i64>,
        order: Option<&str>,
        channel: usize,
        device: &str,
        props: Option<String>,
    ) -> Result<()> {
        let id = self.next_event_id();
        let p = item.map(|i| &self.w.catalog.products[i]);
        let page = match (name, p) {
            (_, Some(p)) => format!("/p/{}", p.id),
            ("page_view", None) => "/".to_string(),
            (n, None) => format!("/{n}"),
        };
        out.push(
            Table::Events,
            &[
                text(id),
                Val::Ts(ts),
                opt_text(self.user_id.as_deref()),
                text(self.anon.clone()),
                text(session),
                text(name),
                opt_text(p.map(|p| p.id.as_str())),
                opt_text(p.map(|p| CATEGORIES[p.category])),
                opt_text(p.map(|p| p.brand.as_str())),
                p.map_or(Val::Null, |p| Val::Money(p.price)),
                quantity.map_or(Val::Null, Val::Int),
                opt_text(order),
                text(CHANNELS[channel]),
                text(device),
                text(page),
                props.map_or(Val::Null, text),
            ],
        )
    }

    fn identity(&self) -> &str {
        self.user_id.as_deref().unwrap_or(&self.anon)
    }

    fn session(&mut self, out: &mut BlockOut, day: i64, conv: f64) -> Result<()> {
        let w = self.w;
        self.sessions += 1;
        let session = format!("S{}-{}", self.identity(), self.sessions);
        let r: f64 = self.rng.random();
        let main = if r < 0.6 {
            self.favourites[0]
        } else if r < 0.85 {
            self.favourites[1]
        } else {
            self.rng.random_range(0..CATEGORIES.len())
        };
        let hour = weighted(&w.hours[main], &mut self.rng) as i64;
        let mut ts = w.instant(day, hour * 3600 + self.rng.random_range(0..3600));
        let channel = if self.rng.random_bool(0.6) {
            self.acquisition
        } else {
            weighted(&ACQUISITION, &mut self.rng)
        };
        let device = ["mobile", "app", "desktop"][weighted(&[0.65, 0.2, 0.15], &mut self.rng)];
        self.event(
            out,
            ts,
            &session,
            "page_view",
            None,
            None,
            None,
            channel,
            device,
            None,
        )?;

        let mut lift = 1.0;
        for (e, x) in EXPERIMENTS.iter().enumerate() {
            if day < x.days.0 || day > x.days.1 {
                continue;
            }
            if self.exposed[e].is_none() {
                let v = choose_variant(x.key, self.identity(), &x.actual, 1.0).unwrap_or(0);
                self.exposed[e] = Some(v);
                let props = format!(
                    "{{\"experiment_id\":\"{}\",\"variant\":\"{}\"}}",
                    x.key, x.variants[v]
                );
                self.event(
                    out,
                    ts,
                    &session,
                    "experiment_viewed",
                    None,
                    None,
                    None,
                    channel,
                    device,
                    Some(props),
                )?;
                out.push(
                    Table::Exposures,
                    &[
                        text(x.key),
                        text(self.identity()),
                        text(x.variants[v]),
                        Val::Ts(ts),
                    ],
                )?;
            }
            if self.exposed[e] == Some(1) {
                lift *= x.lift;
            }
        }

        let views = 1
            + (self.rng.random::<f64>().ln() / 0.7f64.ln())
                .floor()
                .clamp(0.0, 11.0) as usize;
        let mut cart: Vec<(usize, i64)> = Vec::new();
        let mut last = 0;
        for _ in 0..views {
            ts += self.rng.random_range(10..90) * 1_000_000;
            let c = if self.rng.random_bool(0.9) {
                main
            } else {
                self.rng.random_range(0..CATEGORIES.len())
            };
            let item = w.catalog.pick(c, &mut self.rng);
            last = item;
            self.event(
                out,
                ts,
                &session,
                "product_view",
                Some(item),
                None,
                None,
                channel,
                device,
                None,
            )?;
            if self.rng.random_bool(0.3) && !cart.iter().any(|(i, _)| *i == item) {
                let q = [1, 1, 1, 1, 2, 2, 3][self.rng.random_range(0..7)];
                ts += self.rng.random_range(5..30) * 1_000_000;
                self.cart_add(out, ts, &session, (item, q), channel, device, &mut cart)?;
            } else if self.rng.random_bool(QUICK_ADD) {
                // A quick add from a listing or carousel: an item of the category never viewed.
                let other = w.catalog.pick(c, &mut self.rng);
                if other != item && !cart.iter().any(|(i, _)| *i == other) {
                    ts += self.rng.random_range(5..30) * 1_000_000;
                    self.cart_add(out, ts, &session, (other, 1), channel, device, &mut cart)?;
                }
            }
        }
        let p_order = (conv * CONVERSION[channel] * lift).min(0.95);
        if !self.rng.random_bool(p_order) {
            return Ok(());
        }
        if cart.is_empty() {
            cart.push((last, 1));
        }
        self.apply_basket_rule(&mut cart);
        ts += self.rng.random_range(20..120) * 1_000_000;
        self.event(
            out,
            ts,
            &session,
            "checkout_start",
            None,
            None,
            None,
            channel,
            device,
            None,
        )?;
        if !self.rng.random_bool(0.9) {
            return Ok(());
        }
        self.order(out, ts + MINUTE, day, &session, channel, device, &cart)
    }

    /// An add_to_cart event of `line` (item, quantity), and the line in the cart.
    #[allow(clippy::too_many_arguments)]
    fn cart_add(
        &mut self,
        out: &mut BlockOut,
        ts: i64,
        session: &str,
        line: (usize, i64),
        channel: usize,
        device: &str,
        cart: &mut Vec<(usize, i64)>,
    ) -> Result<()> {
        self.event(
            out,
            ts,
            session,
            "add_to_cart",
            Some(line.0),
            Some(line.1),
            None,
            channel,
            device,
            None,
        )?;
        cart.push(line);
        Ok(())
    }

    /// 70% of orders with baby formula also hold diapers; the others hold none.
    fn apply_basket_rule(&mut self, cart: &mut Vec<(usize, i64)>) {
        let cat = &self.w.catalog;
        if !cart.iter().any(|(i, _)| *i == cat.formula) {
            return;
        }
        cart.retain(|(i, _)| *i != cat.diapers);
        if self.rng.random_bool(FORMULA_WITH_DIAPERS) {
            cart.push((cat.diapers, 1));
        }
    }

    #[allow(clippy::too_many_arguments)]
    fn order(
        &mut self,
        out: &mut BlockOut,
        ts: i64,
        day: i64,
        session: &str,
        channel: usize,
        device: &str,
        cart: &[(usize, i64)],
    ) -> Result<()> {
        let w = self.w;
        self.orders += 1;
        let order_id = format!("O{}-{}", self.identity(), self.orders);
        let factor = PRICE_FACTOR[channel];
        let gross_of = |cart: &[(usize, i64)]| -> i128 {
            cart.iter()
                .map(|(i, q)| w.catalog.products[*i].price * i128::from(*q))
                .sum()
        };
        let mut cart = cart.to_vec();
        let mut gross = gross_of(&cart);
        // One coupon per order: the first campaign that applies.
        let mut coupon: Option<usize> = None;
        for (ci, c) in CAMPAIGNS.iter().enumerate() {
            let in_window =
                day >= c.days.0 && day <= c.days.1 && (gross as f64) >= c.min_gross * 10_000.0;
            let eligible = !self.in_holdout(ci)
                && match ci {
                    0 => self.winback_target(),
                    1 => {
                        self.orders == 1
                            && self.user_id.is_some()
                            && self.registered_day >= 0
                            && day - self.registered_day <= 30
                    }
                    SUMMER => self.summer_target(),
                    _ => self.top_tier(),
                };
            if in_window && eligible {
                coupon = Some(ci);
                break;
            }
        }
        // The summer promotion nudges one more unit of the cheapest line, on its own stream.
        let mut extra_item = None;
        if coupon == Some(SUMMER) {
            let seed = self.campaign_rng(SUMMER);
            let r = self.summer_rng.get_or_insert(seed);
            if r.random_bool(SUMMER_EXTRA_UNIT)
                && let Some(line) = cart
                    .iter_mut()
                    .min_by_key(|(i, _)| w.catalog.products[*i].price)
            {
                line.1 += 1;
                extra_item = Some(w.catalog.products[line.0].id.clone());
                gross = gross_of(&cart);
            }
        }
        let channel_discount = ((gross as f64) * (1.0 - factor)).round() as i128;
        let coupon_discount = coupon.map_or(0, |ci| {
            (((gross - channel_discount) as f64) * CAMPAIGNS[ci].off).round() as i128
        });
        let discount = channel_discount + coupon_discount;
        let shipping: i128 = if gross - discount < 990_000 {
            100_000
        } else {
            0
        };
        let net = gross - discount + shipping;
        let paid = self.rng.random_bool(0.94);
        let paid_ts = ts + self.rng.random_range(1..6) * MINUTE;
        let props = match &self.user_id {
            None => Some(format!(
                "{{\"anonymous_id\":\"{}\",\"session_id\":\"{session}\"}}",
                self.anon
            )),
            Some(_) => Some(format!(
                "{{\"session_id\":\"{session}\",\"device\":\"{device}\"{}{}}}",
                self.brought_by.map_or(String::new(), |ci| format!(
                    ",\"utm_campaign\":\"{}\"",
                    CAMPAIGNS[ci].id
                )),
                extra_item
                    .as_ref()
                    .map_or(String::new(), |i| format!(",\"promo_extra_item\":\"{i}\"")),
            )),
        };
        self.event(
            out,
            ts,
            session,
            "order",
            None,
            None,
            Some(&order_id),
            channel,
            device,
            None,
        )?;
        if paid {
            self.event(
                out,
                paid_ts,
                session,
                "payment",
                None,
                None,
                Some(&order_id),
                channel,
                device,
                None,
            )?;
        }
        let campaign = coupon.map(|ci| CAMPAIGNS[ci]);
        out.push(
            Table::Orders,
            &[
                text(order_id.clone()),
                opt_text(self.user_id.as_deref()),
                Val::Ts(ts),
                if paid { Val::Ts(paid_ts) } else { Val::Null },
                text(if paid { "completed" } else { "placed" }),
                text(CHANNELS[channel]),
                opt_text(campaign.map(|c| c.id)),
                opt_text(campaign.map(|c| c.coupon)),
                Val::Null,
                Val::Money(gross),
                Val::Money(discount),
                Val::Money(shipping),
                Val::Money(net),
                text("CNY"),
                Val::Null,
                props.map_or(Val::Null, text),
            ],
        )?;
        if let (Some(ci), Some(user)) = (coupon, &self.user_id) {
            out.discounts[ci] += coupon_discount;
            out.push(
                Table::Redemptions,
                &[
                    text(CAMPAIGNS[ci].id),
                    text(CAMPAIGNS[ci].coupon),
                    text(user.clone()),
                    Val::Ts(ts),
                    text(order_id.clone()),
                    Val::Money(coupon_discount),
                ],
            )?;
        }
        let week = day.div_euclid(7);
        for (line, (i, q)) in cart.iter().enumerate() {
            let p = &w.catalog.products[*i];
            let line_gross = p.price * i128::from(*q);
            let line_discount = if gross > 0 {
                discount * line_gross / gross
            } else {
                0
            };
            let returned = paid && self.rng.random_bool(p.return_rate);
            let reasons = [
                "size did not fit",
                "not as described",
                "changed my mind",
                "damaged in transit",
            ];
            let reason = if p.size == Some("M") {
                reasons[0]
            } else {
                reasons[self.rng.random_range(0..reasons.len())]
            };
            // The variant attributes shared by the line and its review.
            let size = p
                .size
                .map_or(Val::Null, |s| text(format!("{{\"size\":\"{s}\"}}")));
            out.push(
                Table::OrderItems,
                &[
                    text(order_id.clone()),
                    Val::Int(line as i64 + 1),
                    text(p.id.clone()),
                    Val::Int(*q),
                    Val::Money(p.price),
                    Val::Money(p.cost),
                    Val::Money(line_discount),
                    if paid {
                        Val::Int(if returned { *q } else { 0 })
                    } else {
                        Val::Null
                    },
                    if returned { text(reason) } else { Val::Null },
                    size.clone(),
                    // The demo's only discount is the order's coupon.
                    Val::Money(line_discount),
                ],
            )?;
            if paid {
                *out.units.entry((*i, week)).or_default() += *q;
                if self.rng.random_bool(0.25) {
                    let good = self.rng.random_bool(p.good_review);
                    let rating = if good {
                        [4, 5, 5][self.rng.random_range(0..3)]
                    } else {
                        self.rng.random_range(1..4)
                    };
                    let rts = paid_ts + self.rng.random_range(3..11) * DAY;
                    if w.day_of(rts) < w.days {
                        out.push(
                            Table::Reviews,
                            &[
                                text(format!("R{order_id}-{}", line + 1)),
                                text(p.id.clone()),
                                opt_text(self.user_id.as_deref()),
                                text(order_id.clone()),
                                Val::Ts(rts),
                                Val::Int(rating),
                                Val::Bool(rating >= 4),
                                Val::Null,
                                Val::Null,
                                Val::Int(self.rng.random_range(0..5)),
                                size.clone(),
                            ],
                        )?;
                    }
                }
            }
        }
        Ok(())
    }
}

/// Hour-of-day weights of every category.
pub(crate) fn all_hour_weights() -> Vec<[f64; 24]> {
    (0..CATEGORIES.len()).map(hour_weights).collect()
}
