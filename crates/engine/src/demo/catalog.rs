//! The demo shop's catalogue, channels, hours and campaigns: the fixed world every simulated
//! customer shops in. Planted truths are named constants (docs/demo-shop.md lists them).

use rand::Rng;
use rand_chacha::ChaCha8Rng;
use rand_distr::{Distribution, LogNormal};

/// Channels, in the order of the arrays below.
pub(crate) const CHANNELS: [&str; 5] = [
    "search",
    "content",
    "live_stream",
    "private_community",
    "social_ads",
];
/// Share of customers each channel acquires.
pub(crate) const ACQUISITION: [f64; 5] = [0.30, 0.25, 0.20, 0.10, 0.15];
/// Order probability of a session relative to `content`: live-stream converts 3.0× content.
pub(crate) const CONVERSION: [f64; 5] = [1.6, 1.0, 3.0, 1.4, 0.8];
/// Price factor of a channel: live-stream sells at 15% off (AOV 15% lower).
pub(crate) const PRICE_FACTOR: [f64; 5] = [1.0, 1.0, 0.85, 1.0, 1.0];
/// Daily spend per channel in CNY before noise; the private community costs next to nothing.
pub(crate) const DAILY_SPEND: [f64; 5] = [3_000.0, 2_000.0, 4_000.0, 20.0, 2_500.0];

pub(crate) const CATEGORIES: [&str; 6] = [
    "beauty",
    "groceries",
    "baby",
    "apparel",
    "electronics",
    "home",
];
const CATEGORY_SIZE: [usize; 6] = [80, 120, 40, 120, 60, 80];
pub(crate) const CATEGORY_PREFERENCE: [f64; 6] = [0.2, 0.25, 0.1, 0.2, 0.1, 0.15];
const PRICE_MEDIAN: [f64; 6] = [129.0, 25.0, 159.0, 199.0, 899.0, 89.0];
/// Return probability of a line by category (the dress's sizes override it).
pub(crate) const RETURN_RATE: [f64; 6] = [0.04, 0.02, 0.02, 0.10, 0.05, 0.03];

/// Probability that an order with baby formula also contains diapers.
pub(crate) const FORMULA_WITH_DIAPERS: f64 = 0.70;
/// The dress of the size-labelling case: size M returns 25% with 60% good reviews; S and L 8%, 90%.
pub(crate) const DRESS_SIZES: [(&str, f64, f64); 3] =
    [("S", 0.08, 0.90), ("M", 0.25, 0.60), ("L", 0.08, 0.90)];
/// Share of good (≥ 4 star) reviews of every other product.
pub(crate) const GOOD_REVIEW: f64 = 0.90;

/// One product.
#[derive(Debug, Clone)]
pub(crate) struct Product {
    pub(crate) id: String,
    pub(crate) name: String,
    pub(crate) category: usize,
    pub(crate) brand: String,
    /// Price in units of 10^-4 CNY.
    pub(crate) price: i128,
    pub(crate) cost: i128,
    pub(crate) attributes: String,
    pub(crate) launched_day: i64,
    pub(crate) return_rate: f64,
    pub(crate) good_review: f64,
    pub(crate) size: Option<&'static str>,
    /// A leaf under the category (products.category `baby/formula`), for category baskets.
    pub(crate) leaf: Option<&'static str>,
}

/// The catalogue with per-category popularity.
#[derive(Debug, Clone)]
pub(crate) struct Catalog {
    pub(crate) products: Vec<Product>,
    /// Per category: product indices and cumulative popularity.
    by_category: Vec<(Vec<usize>, Vec<f64>)>,
    pub(crate) formula: usize,
    pub(crate) diapers: usize,
}

fn money(x: f64) -> i128 {
    (x * 100.0).round() as i128 * 100
}

impl Catalog {
    pub(crate) fn new(rng: &mut ChaCha8Rng) -> Catalog {
        let mut products = Vec::new();
        let mut by_category = Vec::new();
        let brands = [
            "Aurora", "Bamboo", "Cedar", "Dawn", "Ember", "Fjord", "Ginkgo", "Harbor",
        ];
        let mut special = (0, 0);
        for (c, cat) in CATEGORIES.iter().enumerate() {
            let mut idx = Vec::new();
            let mut weights = Vec::new();
            for k in 0..CATEGORY_SIZE[c] {
                let ln = LogNormal::new(PRICE_MEDIAN[c].ln(), 0.5)
                    .unwrap_or_else(|_| unreachable_lognormal());
                let price = ln.sample(rng).clamp(2.0, 20_000.0);
                let margin = rng.random_range(0.20..0.60);
                // Zipf-like popularity within the category.
                let mut pop = 1.0 / (k as f64 + 1.0).powf(0.9);
                let mut p = Product {
                    id: format!("{}-{:03}", &cat[..2].to_uppercase(), k + 1),
                    name: format!("{} {} #{}", brands[k % brands.len()], cat, k + 1),
                    category: c,
                    brand: brands[(k * 7 + c) % brands.len()].to_string(),
                    price: money(price),
                    cost: money(price * (1.0 - margin)),
                    attributes: "{}".into(),
                    launched_day: rng.random_range(-400..300),
                    return_rate: RETURN_RATE[c],
                    good_review: GOOD_REVIEW,
                    size: None,
                    leaf: None,
                };
                match (*cat, k) {
                    ("baby", 0) => {
                        p.name = "Infant formula stage 1 (900 g)".into();
                        p.id = "BA-FORMULA".into();
                        p.leaf = Some("formula");
                        special.0 = products.len();
                    }
                    ("baby", 1) => {
                        p.name = "Diapers size 3 (60 pack)".into();
                        p.id = "BA-DIAPERS".into();
                        p.leaf = Some("diapers");
                        pop = 0.5;
                        special.1 = products.len();
                    }
                    ("apparel", 2..=4) => {
                        let s = k - 2;
                        let (size, ret, good) = DRESS_SIZES[s];
                        p.id = format!("AP-DRESS-017-{size}");
                        p.name = format!("Linen wrap dress, size {size}");
                        p.price = money(299.0);
                        p.cost = money(299.0 * 0.45);
                        p.attributes = format!(
                            "{{\"style\":\"AP-DRESS-017\",\"size\":\"{size}\",\"colour\":\"sand\"}}"
                        );
                        p.return_rate = ret;
                        p.good_review = good;
                        p.size = Some(size);
                        pop = 0.6;
                    }
                    ("groceries", 5) => {
                        // Traffic driver (爆款引流款): very popular, sold at a 3% margin.
                        p.id = "GR-EGGS-30".into();
                        p.name = "Free-range eggs, 30 pack".into();
                        p.price = money(39.9);
                        p.cost = money(39.9 * 0.97);
                        pop = 3.0;
                    }
                    ("home", 60) => {
                        // Profit contributor (利润贡献款): rarely sold, 75% margin.
                        p.id = "HO-CANDLE-LUX".into();
                        p.name = "Hand-poured luxury candle".into();
                        p.price = money(268.0);
                        p.cost = money(268.0 * 0.25);
                        pop = 0.004;
                    }
                    _ => {}
                }
                idx.push(products.len());
                let total = weights.last().copied().unwrap_or(0.0) + pop;
                weights.push(total);
                products.push(p);
            }
            by_category.push((idx, weights));
        }
        Catalog {
            products,
            by_category,
            formula: special.0,
            diapers: special.1,
        }
    }

    /// A product of category `c`, by popularity.
    pub(crate) fn pick(&self, c: usize, rng: &mut ChaCha8Rng) -> usize {
        let (idx, cum) = &self.by_category[c];
        let total = cum.last().copied().unwrap_or(1.0);
        let x = rng.random_range(0.0..total);
        let i = cum.partition_point(|w| *w <= x).min(idx.len() - 1);
        idx[i]
    }
}

fn unreachable_lognormal() -> LogNormal<f64> {
    // LogNormal::new(μ, 0.5) only fails for a non-finite σ; the median constants are finite.
    LogNormal::new(0.0, 1.0).unwrap_or_else(|_| unreachable_lognormal())
}

/// Relative activity by local hour (0–23) of a session whose main category is `c`: beauty peaks
/// 22:00–01:00, groceries 11:00–13:00, everything else in the evening.
pub(crate) fn hour_weights(c: usize) -> [f64; 24] {
    let mut w = [0.0; 24];
    for (h, x) in w.iter_mut().enumerate() {
        *x = match (CATEGORIES[c], h) {
            ("beauty", 22 | 23 | 0) => 7.0,
            ("beauty", 1) => 4.0,
            ("beauty", 20 | 21) => 2.5,
            ("groceries", 11 | 12) => 7.0,
            ("groceries", 13) => 3.0,
            ("groceries", 17..=19) => 2.5,
            (_, 0..=6) => 0.25,
            ("beauty" | "groceries", _) => 1.0,
            (_, 20 | 21) => 4.0,
            (_, 19 | 22) => 3.0,
            (_, 23) => 1.0,
            _ => 1.5,
        };
    }
    w
}

/// Picks an index by (unnormalised) weights.
pub(crate) fn weighted(weights: &[f64], rng: &mut ChaCha8Rng) -> usize {
    let total: f64 = weights.iter().sum();
    let mut x = rng.random_range(0.0..total);
    for (i, w) in weights.iter().enumerate() {
        if x < *w {
            return i;
        }
        x -= w;
    }
    weights.len() - 1
}

/// A coupon campaign.
#[derive(Debug, Clone, Copy)]
pub(crate) struct Campaign {
    pub(crate) id: &'static str,
    pub(crate) name: &'static str,
    pub(crate) coupon: &'static str,
    pub(crate) channel: &'static str,
    /// First and last day (day 0 = the first day of the year simulated).
    pub(crate) days: (i64, i64),
    pub(crate) off: f64,
    pub(crate) min_gross: f64,
    pub(crate) audience: &'static str,
    pub(crate) fee: f64,
    /// Share of the audience kept out at random (GrowthBook hash v2 of the user id, seeded by
    /// the campaign id) and stored as campaign_members.holdout; 0 = no holdout.
    pub(crate) holdout: f64,
    /// campaigns.kind.
    pub(crate) kind: &'static str,
}

/// The summer promotion's own effect: a treated member's order in its window adds one more unit
/// of its cheapest line with this probability (drawn from the campaign's own stream).
pub(crate) const SUMMER_EXTRA_UNIT: f64 = 0.45;
/// The summer promotion's index in [`CAMPAIGNS`].
pub(crate) const SUMMER: usize = 4;

/// The welcome campaign's own effect: a treated new member comes for one more session within
/// two weeks of registering with this probability (drawn from the campaign's own stream) …
pub(crate) const WELCOME_EXTRA_VISIT: f64 = 0.04;
/// … which orders with this conversion (before the channel factor).
pub(crate) const WELCOME_EXTRA_CONVERSION: f64 = 0.3;

pub(crate) const CAMPAIGNS: [Campaign; 5] = [
    Campaign {
        id: "C-WINBACK",
        name: "Win-back: 20% off for lapsed customers",
        coupon: "COMEBACK20",
        channel: "sms",
        days: (243, 272),
        off: 0.20,
        min_gross: 0.0,
        audience: "customers silent for 90+ days",
        fee: 3_000.0,
        holdout: 0.10,
        kind: "coupon",
    },
    Campaign {
        id: "C-WELCOME",
        name: "Welcome coupon for new members",
        coupon: "WELCOME10",
        channel: "app",
        days: (0, 364),
        off: 0.10,
        min_gross: 0.0,
        audience: "new members, first order",
        fee: 0.0,
        holdout: 0.10,
        kind: "coupon",
    },
    Campaign {
        id: "C-1111",
        name: "Double 11 (双十一)",
        coupon: "DOUBLE11",
        channel: "live_stream",
        days: (304, 314),
        off: 0.15,
        min_gross: 299.0,
        audience: "gold and platinum members",
        fee: 20_000.0,
        holdout: 0.0,
        kind: "coupon",
    },
    Campaign {
        id: "C-618",
        name: "618 mid-year sale",
        coupon: "618SALE",
        channel: "content",
        days: (151, 168),
        off: 0.10,
        min_gross: 199.0,
        audience: "gold and platinum members",
        fee: 12_000.0,
        holdout: 0.0,
        kind: "coupon",
    },
    Campaign {
        id: "C-SUMMER",
        name: "Summer multi-buy: 12% off, add one more",
        coupon: "SUMMER12",
        channel: "app",
        days: (190, 217),
        off: 0.12,
        min_gross: 0.0,
        audience: "silver, gold and platinum members (half held out)",
        fee: 5_000.0,
        holdout: 0.5,
        kind: "promotion",
    },
];

/// An experiment run on the demo's traffic.
#[derive(Debug, Clone, Copy)]
pub(crate) struct Experiment {
    pub(crate) key: &'static str,
    pub(crate) name: &'static str,
    pub(crate) variants: [&'static str; 2],
    /// Weights as planned (stored in the experiments table).
    pub(crate) planned: [f64; 2],
    /// Weights actually used by the (broken) assignment.
    pub(crate) actual: [f64; 2],
    pub(crate) days: (i64, i64),
    /// Multiplier of a treatment session's order probability.
    pub(crate) lift: f64,
    /// Where it runs.
    pub(crate) surface: &'static str,
    /// The metric the decision rests on.
    pub(crate) primary: &'static str,
}

pub(crate) const EXPERIMENTS: [Experiment; 2] = [
    Experiment {
        key: "checkout-button",
        name: "One-tap checkout button",
        variants: ["control", "one_tap"],
        planned: [0.5, 0.5],
        actual: [0.5, 0.5],
        days: (120, 242),
        lift: 1.05,
        surface: "checkout",
        primary: "orders",
    },
    Experiment {
        key: "free-shipping-banner",
        name: "Free-shipping banner on product pages",
        variants: ["control", "banner"],
        planned: [0.5, 0.5],
        actual: [0.52, 0.48],
        days: (273, 303),
        lift: 1.0,
        surface: "product_page",
        primary: "conversion",
    },
];
