//! The demo shop: determinism for a seed, and the planted truths of docs/demo-shop.md recovered
//! from the generated tables through the public query interface.
#![allow(
    clippy::unwrap_used,
    clippy::expect_used,
    reason = "test helpers fail loudly"
)]

mod common;

use common::{rows, scalar};
use shoplens_engine::Workspace;
use shoplens_engine::demo::{DemoParams, generate};
use shoplens_engine::people::funnel::{Breakdown, FunnelSpec, Unit, funnel};
use shoplens_engine::people::repurchase::RepurchaseSpec;

fn demo(scale: f64, seed: u64) -> (tempfile::TempDir, Workspace) {
    let dir = tempfile::tempdir().unwrap();
    let ws = Workspace::open(dir.path()).unwrap();
    generate(&ws, &DemoParams { seed, scale }, &|_, _| {}).unwrap();
    (dir, ws)
}

async fn f64_of(ws: &Workspace, sql: &str) -> f64 {
    scalar(ws, sql).await.parse().unwrap()
}

#[tokio::test]
async fn same_seed_gives_identical_tables_and_another_seed_does_not() {
    let (_a, wa) = demo(0.02, 7);
    let (_b, wb) = demo(0.02, 7);
    let (_c, wc) = demo(0.02, 8);
    for table in [
        "events",
        "orders",
        "order_items",
        "customers",
        "reviews",
        "inventory",
        "channel_spend",
        "exposures",
        "redemptions",
    ] {
        let q = format!("SELECT * FROM {table} ORDER BY 1, 2");
        let a = rows(&wa, &q).await;
        assert!(!a.is_empty(), "{table} is empty");
        assert_eq!(a, rows(&wb, &q).await, "{table} differs for the same seed");
        if table != "channel_spend" && table != "inventory" {
            assert_ne!(a, rows(&wc, &q).await, "{table} ignores the seed");
        }
    }
    // Generating again into the same workspace changes nothing.
    let before = wa.manifest().unwrap();
    let again = generate(
        &wa,
        &DemoParams {
            seed: 7,
            scale: 0.02,
        },
        &|_, _| {},
    )
    .unwrap();
    assert!(again.already_present);
    assert_eq!(wa.manifest().unwrap(), before);
    let other = generate(
        &wa,
        &DemoParams {
            seed: 9,
            scale: 0.02,
        },
        &|_, _| {},
    )
    .unwrap_err()
    .to_string();
    assert!(other.contains("already holds other data"), "{other}");
}

/// One default-scale shop, every planted truth checked against it (one generation, many checks).
#[tokio::test]
async fn planted_truths_are_recoverable() {
    let (_d, ws) = demo(1.0, 42);
    let customers = f64_of(&ws, "SELECT count(*) FROM customers").await;
    assert_eq!(customers, 20_000.0);
    let events = f64_of(&ws, "SELECT count(*) FROM events").await;
    assert!(
        (1.5e6..3.0e6).contains(&events),
        "about 2M events, got {events}"
    );

    // Channels: live-stream converts 3.0× content (±10%) at 15% lower AOV (±3 points).
    let conv = "SELECT cast(count(DISTINCT o.order_id) AS double) / count(DISTINCT e.session_id) FROM events e LEFT JOIN orders o ON o.order_id = e.order_id WHERE e.channel = '{}'";
    let live = f64_of(&ws, &conv.replace("{}", "live_stream")).await;
    let content = f64_of(&ws, &conv.replace("{}", "content")).await;
    assert!(
        (2.7..3.3).contains(&(live / content)),
        "conversion ratio {}",
        live / content
    );
    // The same planted ratio through the funnel: session funnels page_view → order by channel.
    let mut spec = FunnelSpec::new(vec!["page_view".into(), "order".into()], 86_400_000_000);
    spec.unit = Unit::Session;
    spec.breakdown = Some(Breakdown::Column("channel".into()));
    let by = funnel(&ws, &spec).await.unwrap();
    let conv_of = |c: &str| {
        by.breakdown
            .iter()
            .find(|g| g.value.as_deref() == Some(c))
            .and_then(|g| g.steps[1].conversion_from_first)
            .unwrap()
    };
    let funnel_ratio = conv_of("live_stream") / conv_of("content");
    assert!(
        (2.7..3.3).contains(&funnel_ratio),
        "funnel ratio {funnel_ratio}"
    );

    // Unit-level breakdowns put every unit under exactly one value.
    for b in [
        Breakdown::FirstTouchChannel,
        Breakdown::Variant("checkout-button".into()),
    ] {
        let mut f = FunnelSpec::new(vec!["product_view".into(), "order".into()], 86_400_000_000);
        f.breakdown = Some(b.clone());
        let r = funnel(&ws, &f).await.unwrap();
        let sum: u64 = r.breakdown.iter().map(|g| g.users_total).sum();
        assert_eq!(sum, r.users_total, "{b:?}");
        let step2: u64 = r.breakdown.iter().map(|g| g.steps[1].users).sum();
        assert_eq!(step2, r.steps[1].users, "{b:?}");
        assert!(r.breakdown.len() >= 2, "{b:?}");
    }

    // Holding the item constant lowers every step after the first (quick adds, mixed baskets).
    let plain = FunnelSpec::new(
        vec!["product_view".into(), "add_to_cart".into(), "order".into()],
        86_400_000_000,
    );
    let same = FunnelSpec {
        same: Some("item_id".into()),
        ..plain.clone()
    };
    let (p, s) = (
        funnel(&ws, &plain).await.unwrap(),
        funnel(&ws, &same).await.unwrap(),
    );
    assert_eq!(p.steps[0].users, s.steps[0].users);
    for k in 1..3 {
        assert!(
            s.steps[k].users < p.steps[k].users,
            "step {k}: same {} vs plain {}",
            s.steps[k].users,
            p.steps[k].users
        );
    }

    let aov = "SELECT avg(CAST(net_amount AS double)) FROM orders WHERE channel = '{}'";
    let ratio = f64_of(&ws, &aov.replace("{}", "live_stream")).await
        / f64_of(&ws, &aov.replace("{}", "content")).await;
    assert!((0.82..0.88).contains(&ratio), "AOV ratio {ratio}");

    // Private community: CAC near zero, 30-day repurchase twice the shop's.
    let spend_share = f64_of(&ws, "SELECT sum(CASE WHEN channel = 'private_community' THEN spend ELSE 0 END) / sum(spend) FROM channel_spend").await;
    assert!(spend_share < 0.005, "community spend share {spend_share}");
    let repurchase = "WITH o AS (SELECT user_id, ts, date_trunc('day', ts + INTERVAL '8 hours') d FROM orders WHERE user_id IS NOT NULL AND status = 'completed'),
        f AS (SELECT user_id, min(ts) first_ts, min(d) first_d FROM o GROUP BY 1),
        r AS (SELECT f.user_id, max(CASE WHEN o.d > f.first_d AND o.d <= f.first_d + INTERVAL '30 days' THEN 1.0 ELSE 0.0 END) rep
              FROM f JOIN o ON f.user_id = o.user_id WHERE f.first_ts <= TIMESTAMP '2025-12-01T00:00:00Z' GROUP BY 1)
        SELECT avg(rep) FROM r JOIN customers c ON c.user_id = r.user_id WHERE {}";
    let community = f64_of(
        &ws,
        &repurchase.replace("{}", "c.acquisition_channel = 'private_community'"),
    )
    .await;
    let shop = f64_of(&ws, &repurchase.replace("{}", "true")).await;
    assert!(
        (1.8..2.2).contains(&(community / shop)),
        "repurchase ratio {}",
        community / shop
    );

    // The same through `shoplens repurchase`: community's 30-day rate about twice the shop's, and
    // heavy buyers (all of platinum) repurchase in a third of the time of tier-less customers.
    let r = shoplens_engine::people::repurchase::repurchase(&ws, &RepurchaseSpec::new(30))
        .await
        .unwrap();
    let group = |gs: &[shoplens_engine::people::repurchase::RepurchaseGroup], v: &str| {
        gs.iter()
            .find(|g| g.value.as_deref() == Some(v))
            .cloned()
            .unwrap()
    };
    let ratio = group(&r.by_acquisition_channel, "private_community")
        .rate
        .unwrap()
        / r.rate.unwrap();
    assert!((1.8..2.2).contains(&ratio), "repurchase ratio {ratio}");
    let heavy = group(&r.by_member_tier, "platinum")
        .median_interval_days
        .unwrap();
    let none = group(&r.by_member_tier, "none")
        .median_interval_days
        .unwrap();
    assert!(
        (7.0..=14.0).contains(&heavy),
        "heavy-buyer interval {heavy}"
    );
    assert!(heavy * 3.0 < none, "heavy {heavy} vs none {none}");

    // The same peaks through `shoplens activity`.
    let act = shoplens_engine::people::activity::activity(&ws, &Default::default())
        .await
        .unwrap();
    let peak = |c: &str| {
        act.categories
            .iter()
            .find(|k| k.category == c)
            .unwrap()
            .peak_hours
            .clone()
    };
    assert!(
        peak("beauty").iter().all(|h| [22, 23, 0].contains(h)),
        "{:?}",
        peak("beauty")
    );
    assert!(
        peak("groceries")[..2].iter().all(|h| [11, 12].contains(h)),
        "{:?}",
        peak("groceries")
    );

    // Experiments: the +5% lift on orders lies inside the 95% interval of the relative lift; the
    // 52/48 split of a planned 50/50 test is a sample-ratio mismatch.
    use shoplens_engine::practice::experiments::{ExperimentSpec, analyze};
    let spec = |x: &str| ExperimentSpec {
        experiment: x.into(),
        control: "control".into(),
        metrics: vec!["conversion".into(), "orders".into(), "aov".into()],
        weights: Vec::new(),
        config: shoplens_engine::models::abtest::Config::default(),
        cuped_days: None,
    };
    let a = analyze(&ws, &spec("checkout-button")).await.unwrap();
    assert!(!a.analysis.srm.flagged);
    let orders = a
        .analysis
        .results
        .iter()
        .find(|r| r.metric == "orders")
        .unwrap();
    assert!(
        orders.stats.relative_ci_low < 0.05 && 0.05 < orders.stats.relative_ci_high,
        "lift interval {} .. {}",
        orders.stats.relative_ci_low,
        orders.stats.relative_ci_high
    );
    // CUPED by the 14 days before each user's first exposure: θ equals Cov(y, x) / Var(x) over
    // per-user order counts taken independently (the exposures table, and order events of paid
    // orders by the person who placed them, signed in or not), and
    // the adjustment narrows the interval.
    let mut cs = spec("checkout-button");
    cs.metrics = vec!["orders".into()];
    cs.cuped_days = Some(14);
    let c = analyze(&ws, &cs).await.unwrap();
    let def = shoplens_engine::practice::experiments::definition(&ws, "checkout-button")
        .await
        .unwrap()
        .unwrap();
    let per_user = rows(
        &ws,
        &format!(
            "WITH ex AS (SELECT user_id, min(ts) t0 FROM exposures WHERE experiment_id = 'checkout-button' GROUP BY user_id)
             SELECT concat(CAST(sum(CASE WHEN o.ts >= ex.t0 AND o.ts <= to_timestamp_micros({}) THEN 1 ELSE 0 END) AS varchar), ' ',
                           CAST(sum(CASE WHEN o.ts < ex.t0 AND o.ts >= ex.t0 - INTERVAL '14 days' THEN 1 ELSE 0 END) AS varchar))
             FROM ex LEFT JOIN (SELECT COALESCE(e.user_id, e.anonymous_id) p, e.ts FROM events e JOIN orders d ON d.order_id = e.order_id
                                WHERE e.event = 'order' AND d.status IN ('completed', 'paid')) o ON o.p = ex.user_id GROUP BY ex.user_id",
            def.ends_at.unwrap()
        ),
    )
    .await;
    let (y, x): (Vec<f64>, Vec<f64>) = per_user
        .iter()
        .map(|r| {
            let (a, b) = r.split_once(' ').unwrap();
            (a.parse::<f64>().unwrap(), b.parse::<f64>().unwrap())
        })
        .unzip();
    let n = y.len() as f64;
    let (my, mx) = (y.iter().sum::<f64>() / n, x.iter().sum::<f64>() / n);
    let cov: f64 = y.iter().zip(&x).map(|(a, b)| (a - my) * (b - mx)).sum();
    let var: f64 = x.iter().map(|b| (b - mx) * (b - mx)).sum();
    let theta = c.analysis.results[0].cuped_theta.unwrap();
    assert!(
        ((theta - cov / var) / theta).abs() < 1e-9,
        "θ {theta} vs {}",
        cov / var
    );
    assert!(theta > 0.0);
    let width =
        |r: &shoplens_engine::models::abtest::MetricResult| r.stats.ci_high - r.stats.ci_low;
    assert!(width(&c.analysis.results[0]) < width(orders));

    let b = analyze(&ws, &spec("free-shipping-banner")).await.unwrap();
    assert!(
        b.analysis.srm.flagged && b.analysis.srm.p_value < 0.001,
        "{:?}",
        b.analysis.srm
    );

    // Hours in shop time: beauty orders peak 22:00–01:00, groceries 11:00–13:00.
    let peak = "SELECT string_agg(CAST(h AS varchar), ',') FROM (SELECT extract(hour FROM o.ts + INTERVAL '8 hours') h, count(*) n FROM orders o
        JOIN order_items i ON o.order_id = i.order_id JOIN products p ON p.item_id = i.item_id WHERE p.category = '{}' GROUP BY 1 ORDER BY n DESC LIMIT {})";
    for h in scalar(
        &ws,
        &peak.replacen("{}", "beauty", 1).replacen("{}", "3", 1),
    )
    .await
    .split(',')
    {
        assert!(["22", "23", "0"].contains(&h), "beauty peak hour {h}");
    }
    for h in scalar(
        &ws,
        &peak.replacen("{}", "groceries", 1).replacen("{}", "2", 1),
    )
    .await
    .split(',')
    {
        assert!(["11", "12"].contains(&h), "groceries peak hour {h}");
    }

    // Baskets: 70% (±3 points) of orders with formula also hold diapers.
    let share = f64_of(&ws, "SELECT avg(d) FROM (SELECT order_id, max(CASE WHEN item_id = 'BA-DIAPERS' THEN 1.0 ELSE 0.0 END) d,
        max(CASE WHEN item_id = 'BA-FORMULA' THEN 1 ELSE 0 END) f FROM order_items GROUP BY 1) WHERE f = 1").await;
    assert!((0.67..0.73).contains(&share), "formula→diapers {share}");

    // Goods: the traffic driver is top-decile units and bottom-decile margin; the profit contributor the reverse.
    let ranks = "WITH s AS (SELECT p.item_id, coalesce(sum(i.quantity), 0) units, (p.price - p.cost) / p.price margin FROM products p
        LEFT JOIN order_items i ON i.item_id = p.item_id GROUP BY p.item_id, p.price, p.cost)
        SELECT concat(CAST(percent_rank() OVER (ORDER BY units) AS varchar), ' ', CAST(percent_rank() OVER (ORDER BY margin) AS varchar), ' ', item_id) FROM s";
    let all = rows(&ws, ranks).await;
    let find = |id: &str| -> (f64, f64) {
        let r = all.iter().find(|r| r.ends_with(id)).unwrap();
        let v: Vec<f64> = r.split(' ').take(2).map(|x| x.parse().unwrap()).collect();
        (v[0], v[1])
    };
    let (u, m) = find("GR-EGGS-30");
    assert!(
        u >= 0.9 && m <= 0.1,
        "traffic driver ranks units {u} margin {m}"
    );
    let (u, m) = find("HO-CANDLE-LUX");
    assert!(
        u <= 0.1 && m >= 0.9,
        "profit contributor ranks units {u} margin {m}"
    );

    // The dress: size M returns 25% with 60% good reviews; S and L 8% and 90%.
    let ret = "SELECT CAST(sum(returned_quantity) AS double) / sum(quantity) FROM order_items WHERE returned_quantity IS NOT NULL AND item_id {}";
    let m_ret = f64_of(&ws, &ret.replace("{}", "= 'AP-DRESS-017-M'")).await;
    let other_ret = f64_of(
        &ws,
        &ret.replace("{}", "IN ('AP-DRESS-017-S', 'AP-DRESS-017-L')"),
    )
    .await;
    assert!(
        (0.21..0.29).contains(&m_ret) && (0.05..0.11).contains(&other_ret),
        "returns M {m_ret} others {other_ret}"
    );
    let good =
        "SELECT avg(CASE WHEN rating >= 4 THEN 1.0 ELSE 0.0 END) FROM reviews WHERE item_id {}";
    let m_good = f64_of(&ws, &good.replace("{}", "= 'AP-DRESS-017-M'")).await;
    let other_good = f64_of(
        &ws,
        &good.replace("{}", "IN ('AP-DRESS-017-S', 'AP-DRESS-017-L')"),
    )
    .await;
    assert!(
        (0.5..0.7).contains(&m_good) && (0.85..0.95).contains(&other_good),
        "good reviews M {m_good} others {other_good}"
    );

    // Customers: heavy buyers and one-time buyers, member tiers, registered but never ordered.
    let heavy = f64_of(&ws, "SELECT count(*) FROM (SELECT user_id FROM orders WHERE user_id IS NOT NULL GROUP BY 1 HAVING count(*) >= 10)").await;
    let once = f64_of(&ws, "SELECT count(*) FROM (SELECT user_id FROM orders WHERE user_id IS NOT NULL GROUP BY 1 HAVING count(*) = 1)").await;
    let never = f64_of(&ws, "SELECT count(*) FROM customers c WHERE NOT EXISTS (SELECT 1 FROM orders o WHERE o.user_id = c.user_id)").await;
    assert!(
        heavy > 500.0 && once > 1_000.0 && never > 1_000.0,
        "heavy {heavy} once {once} never {never}"
    );
    assert_eq!(scalar(&ws, "SELECT string_agg(member_tier, ',' ORDER BY member_tier) FROM (SELECT DISTINCT member_tier FROM customers)").await, "gold,none,platinum,silver");

    // Experiments: ≥ 40,000 users in the checkout test split 50/50; the banner test split 52/48.
    let split = "SELECT CAST(sum(CASE WHEN variant = 'control' THEN 1 ELSE 0 END) AS double) / count(*) FROM exposures WHERE experiment_id = '{}'";
    assert!(
        f64_of(
            &ws,
            "SELECT count(DISTINCT user_id) FROM exposures WHERE experiment_id = 'checkout-button'"
        )
        .await
            >= 40_000.0
    );
    let c = f64_of(&ws, &split.replace("{}", "checkout-button")).await;
    assert!((0.49..0.51).contains(&c), "checkout split {c}");
    let b = f64_of(&ws, &split.replace("{}", "free-shipping-banner")).await;
    assert!((0.51..0.53).contains(&b), "banner split {b}");

    // Spend, campaigns and inventory are there.
    assert_eq!(
        scalar(&ws, "SELECT count(*) FROM channel_spend").await,
        "1825"
    );
    assert!(f64_of(&ws, "SELECT sum(discount) FROM redemptions").await > 0.0);
    assert!(f64_of(&ws, "SELECT count(*) FROM inventory WHERE on_hand = 0").await > 0.0);

    customers_planted_truths(&ws).await;
    goods_planted_truths(&ws).await;
}

/// The goods truths through the public analyses: quadrants, the dress's size M, formula →
/// diapers at category level, and inventory figures against an independent computation.
async fn goods_planted_truths(ws: &Workspace) {
    use shoplens_engine::goods::baskets::{BasketSpec, Level, basket};
    use shoplens_engine::goods::{
        InventorySpec, MatrixSpec, Quadrant, ReturnsSpec, inventory, product_matrix, returns,
    };
    use shoplens_engine::models::baskets::Threshold;

    let m = product_matrix(ws, &MatrixSpec::default()).await.unwrap();
    let quadrant = |id: &str| m.items.iter().find(|r| r.key == id).unwrap().quadrant;
    assert_eq!(quadrant("GR-EGGS-30"), Some(Quadrant::TrafficDriver));
    assert_eq!(quadrant("HO-CANDLE-LUX"), Some(Quadrant::ProfitContributor));
    assert_eq!(m.items_without_cost, 0);
    // Items add up to the shop: revenue = gross − discounts of paid lines.
    let revenue = f64_of(ws, "SELECT CAST(sum(i.quantity * i.unit_price) - sum(coalesce(i.discount, 0)) AS DOUBLE) \
        FROM order_items i JOIN orders o ON o.order_id = i.order_id WHERE o.status IN ('completed', 'paid') AND i.quantity > 0").await;
    assert!((m.total.revenue - revenue).abs() < 1e-6 * revenue);

    // The dress: size M flagged, with its evidence against the other sizes.
    let r = returns(ws, &ReturnsSpec::default()).await.unwrap();
    let dress = r
        .flags
        .iter()
        .find(|f| f.item_id == "AP-DRESS-017-M")
        .expect("size M flagged");
    assert!(
        (0.21..0.29).contains(&dress.return_rate),
        "{}",
        dress.evidence
    );
    assert!(
        (0.5..0.7).contains(&dress.good_review_rate),
        "{}",
        dress.evidence
    );
    let (pr, pg) = (
        dress.style_peers_return_rate.unwrap(),
        dress.style_peers_good_review_rate.unwrap(),
    );
    assert!(
        (0.05..0.11).contains(&pr) && (0.85..0.95).contains(&pg),
        "{}",
        dress.evidence
    );
    assert!(
        !r.flags
            .iter()
            .any(|f| f.item_id == "AP-DRESS-017-S" || f.item_id == "AP-DRESS-017-L")
    );

    // Baby formula → diapers among category baskets, confidence 0.70 ± 0.03.
    let mut spec = BasketSpec::new(
        Threshold::parse("0.001").unwrap(),
        Threshold::parse("0.5").unwrap(),
    );
    spec.level = Level::Category;
    let b = basket(ws, &spec).await.unwrap();
    let rule = b
        .rules
        .iter()
        .find(|r| r.antecedent == ["baby/formula"] && r.consequent == ["baby/diapers"])
        .expect("formula → diapers");
    assert!(
        (0.67..0.73).contains(&rule.confidence),
        "confidence {}",
        rule.confidence
    );

    // Inventory against a computation from the raw rows (Asia/Shanghai is UTC+8 all year).
    let inv = inventory(
        ws,
        &InventorySpec {
            slow_days: 90.0,
            ..Default::default()
        },
    )
    .await
    .unwrap();
    let stock = rows(ws, "SELECT item_id, CAST(CAST(date AS BIGINT) AS VARCHAR), CAST(on_hand AS VARCHAR), CAST(CAST(unit_cost AS DOUBLE) AS VARCHAR) FROM inventory").await;
    let mut snaps: std::collections::BTreeMap<String, Vec<(i64, i64, f64)>> = Default::default();
    for r in &stock {
        let f: Vec<&str> = r.split('|').collect();
        snaps.entry(f[0].into()).or_default().push((
            f[1].parse().unwrap(),
            f[2].parse().unwrap(),
            f[3].parse().unwrap(),
        ));
    }
    let (lo, hi) = snaps
        .values()
        .flatten()
        .fold((i64::MAX, i64::MIN), |(a, b), s| (a.min(s.0), b.max(s.0)));
    let lines = rows(ws, "SELECT i.item_id, CAST(i.quantity AS VARCHAR), CAST(CAST(o.ts AS BIGINT) AS VARCHAR), CAST(CAST(i.unit_cost AS DOUBLE) AS VARCHAR) \
        FROM order_items i JOIN orders o ON o.order_id = i.order_id WHERE o.status IN ('completed', 'paid') AND i.quantity > 0").await;
    let mut sold: std::collections::BTreeMap<String, (i64, f64)> = Default::default();
    for r in &lines {
        let f: Vec<&str> = r.split('|').collect();
        let day = (f[2].parse::<i64>().unwrap() + 8 * 3_600_000_000).div_euclid(86_400_000_000);
        if (lo..=hi).contains(&day) {
            let q: i64 = f[1].parse().unwrap();
            let e = sold.entry(f[0].into()).or_default();
            e.0 += q;
            e.1 += q as f64 * f[3].parse::<f64>().unwrap();
        }
    }
    let (mut units, mut end, mut cogs, mut value, mut skus, mut skus_sold) =
        (0i64, 0i64, 0.0, 0.0, 0u64, 0u64);
    for (item, s) in &mut snaps {
        s.sort_by_key(|x| x.0);
        let (u, c) = sold.get(item).copied().unwrap_or_default();
        if u > 0 || s.iter().any(|x| x.1 > 0) {
            skus += 1;
            skus_sold += u64::from(u > 0);
        }
        units += u;
        end += s.last().unwrap().1;
        cogs += c;
        value += s.iter().map(|x| x.1 as f64 * x.2).sum::<f64>() / s.len() as f64;
    }
    let close = |a: Option<f64>, b: f64| (a.unwrap() - b).abs() <= 1e-9 * b.abs();
    assert!(
        close(inv.sell_through, units as f64 / (units + end) as f64),
        "sell-through {:?}",
        inv.sell_through
    );
    assert_eq!((inv.skus, inv.skus_sold), (skus, skus_sold));
    assert!(
        close(inv.turnover, cogs / value),
        "turnover {:?} vs {}",
        inv.turnover,
        cogs / value
    );
    assert!(close(
        inv.days_of_inventory,
        (hi - lo + 1) as f64 / (cogs / value)
    ));
    assert!(inv.stockout_rate.unwrap() > 0.0 && !inv.stockouts.is_empty());

    // Channels: live-stream converts 3.0× content (orders per session) at 15% lower AOV; the
    // private community's CAC is near zero and its LTV/CAC the highest.
    use shoplens_engine::traffic::{Period, campaigns, channels};
    let ch = channels(ws, &Period::default()).await.unwrap();
    let of = |c: &str| ch.channels.iter().find(|r| r.channel == c).unwrap();
    let (live, content, community) = (of("live_stream"), of("content"), of("private_community"));
    let conv = live.conversion.unwrap() / content.conversion.unwrap();
    assert!((2.7..3.3).contains(&conv), "conversion ratio {conv}");
    let aov = live.aov.unwrap() / content.aov.unwrap();
    assert!((0.82..0.88).contains(&aov), "AOV ratio {aov}");
    let min_other_cac = ch
        .channels
        .iter()
        .filter(|r| r.channel != "private_community")
        .filter_map(|r| r.cac)
        .fold(f64::INFINITY, f64::min);
    assert!(
        community.cac.unwrap() < 0.05 * min_other_cac,
        "community CAC {:?}",
        community.cac
    );
    let best = ch
        .channels
        .iter()
        .max_by(|a, b| {
            a.ltv_to_cac
                .unwrap_or(0.0)
                .total_cmp(&b.ltv_to_cac.unwrap_or(0.0))
        })
        .unwrap();
    assert_eq!(best.channel, "private_community");
    // Channels add up to the shop: paid orders and spend.
    let paid = f64_of(
        ws,
        "SELECT count(*) FROM orders WHERE status IN ('completed', 'paid')",
    )
    .await;
    assert_eq!(
        ch.channels.iter().map(|r| r.paid_orders).sum::<u64>() as f64,
        paid
    );
    let spend = f64_of(ws, "SELECT CAST(sum(spend) AS DOUBLE) FROM channel_spend").await;
    assert!((ch.channels.iter().map(|r| r.spend).sum::<f64>() - spend).abs() < 1e-6 * spend);
    // Sessions per channel: every demo event has a session id, so the report's sessions are the
    // distinct session ids of the channel's events (the 30-minute split never applies).
    for r in &ch.channels {
        let q = format!(
            "SELECT CAST(count(DISTINCT session_id) AS DOUBLE) FROM events WHERE channel = '{}'",
            r.channel
        );
        assert_eq!(r.sessions as f64, f64_of(ws, &q).await, "{}", r.channel);
    }

    // Campaigns: attributed orders and discounts reconcile with the orders and redemptions.
    let cp = campaigns(ws).await.unwrap();
    for c in &cp.campaigns {
        let q = format!(
            "SELECT count(*) FROM orders WHERE campaign_id = '{}' AND status IN ('completed', 'paid')",
            c.campaign_id
        );
        assert_eq!(c.orders as f64, f64_of(ws, &q).await, "{}", c.campaign_id);
        let q = format!(
            "SELECT CAST(sum(discount) AS DOUBLE) FROM redemptions WHERE campaign_id = '{}'",
            c.campaign_id
        );
        assert!((c.discount_cost - f64_of(ws, &q).await).abs() < 1e-6);
        assert!(c.gross_margin.is_some() && c.roi.is_some() && c.verdict.is_some());
    }
    // Interest tags: customers whose favourites include baby (customers.tags new_parent) mostly
    // earn the behaviour-derived new_parent tag; the others rarely do.
    let tags = shoplens_engine::customers::recommend::tags(ws, &[], &Default::default())
        .await
        .unwrap();
    let share = |stored: bool| {
        let g: Vec<_> = tags
            .iter()
            .filter(|t| {
                t.user_id.starts_with('U') && t.stored.iter().any(|x| x == "new_parent") == stored
            })
            .collect();
        g.iter()
            .filter(|t| t.derived.iter().any(|x| x == "new_parent"))
            .count() as f64
            / g.len() as f64
    };
    let (parents, others) = (share(true), share(false));
    assert!(
        parents >= 0.5 && others <= 0.1,
        "new_parent derived for {parents} of tagged, {others} of others"
    );

    // The win-back campaign brings back customers who were silent before it.
    let wb = cp
        .campaigns
        .iter()
        .find(|c| c.campaign_id == "C-WINBACK")
        .unwrap();
    assert!(wb.redeemer_revenue_before < 0.05 * wb.redeemer_revenue_during);
}

/// RFM and CLV recover the simulator's customer segments (customers.attributes.segment).
async fn customers_planted_truths(ws: &Workspace) {
    use shoplens_engine::customers::clv::{ClvSpec, clv};
    use shoplens_engine::customers::rfm::{RfmSpec, rfm};
    use shoplens_engine::models::rfm::Segment;
    let seg_of = rows(
        ws,
        "SELECT user_id, regexp_replace(attributes, '.*\"segment\":\"([a-z]+)\".*', '\\1'), \
         CAST(registered_at < TIMESTAMP '2025-09-01T00:00:00+08:00' AS VARCHAR) FROM customers",
    )
    .await;
    let sim: std::collections::HashMap<String, (String, bool)> = seg_of
        .into_iter()
        .map(|r| {
            let f: Vec<&str> = r.split('|').collect();
            (f[0].to_string(), (f[1].to_string(), f[2] == "true"))
        })
        .collect();
    let r = rfm(ws, &RfmSpec::default()).await.unwrap();
    let share = |pick: &dyn Fn(&shoplens_engine::customers::rfm::CustomerRfm) -> bool,
                 within: &[Segment]| {
        let group: Vec<_> = r.customers.iter().filter(|c| pick(c)).collect();
        let hit = group.iter().filter(|c| within.contains(&c.segment)).count();
        (hit as f64 / group.len() as f64, group.len())
    };
    // Heavy buyers land in Champions or Loyal.
    let (heavy, n) = share(
        &|c| sim[&c.user_id].0 == "heavy",
        &[Segment::Champions, Segment::Loyal],
    );
    assert!(
        heavy >= 0.8 && n > 500,
        "heavy in champions/loyal {heavy} of {n}"
    );
    // Lapsed one-time buyers, silent since the autumn, are Hibernating or Lost; every lapsed
    // customer silent 90+ days is on the sleeping side of the grid (R ≤ 2).
    let (dormant, n) = share(
        &|c| sim[&c.user_id] == ("lapsed".into(), true) && c.frequency == 1,
        &[Segment::Hibernating, Segment::Lost],
    );
    assert!(
        dormant >= 0.75 && n > 300,
        "dormant in hibernating/lost {dormant} of {n}"
    );
    let (asleep, _) = share(
        &|c| sim[&c.user_id].0 == "lapsed" && c.recency_days >= 90,
        &[
            Segment::Hibernating,
            Segment::Lost,
            Segment::AtRisk,
            Segment::CantLoseThem,
        ],
    );
    assert!(
        asleep >= 0.9,
        "lapsed silent 90+ days on the sleeping side {asleep}"
    );
    // Segment sizes add up and revenue shares sum to one.
    assert_eq!(
        r.segments.iter().map(|s| s.customers).sum::<u64>(),
        r.total_customers
    );
    assert!((r.segments.iter().map(|s| s.revenue_share).sum::<f64>() - 1.0).abs() < 1e-9);

    // CLV: calibrated to September, the next 13 weeks' purchase days are predicted within 15%,
    // and heavy buyers are worth several times regular ones.
    let spec = ClvSpec {
        calibration_end: chrono::NaiveDate::from_ymd_opt(2025, 9, 30),
        horizon: 13,
        ..ClvSpec::default()
    };
    let c = clv(ws, &spec).await.unwrap();
    let h = c.holdout.as_ref().unwrap();
    let ratio = h.predicted_purchases / h.actual_purchases as f64;
    assert!(
        (0.85..1.15).contains(&ratio),
        "holdout predicted / actual {ratio}"
    );
    let mean_clv = |seg: &str| {
        let v: Vec<f64> = c
            .customers
            .iter()
            .filter(|x| sim[&x.user_id].0 == seg)
            .filter_map(|x| x.clv)
            .collect();
        v.iter().sum::<f64>() / v.len() as f64
    };
    let (heavy, regular) = (mean_clv("heavy"), mean_clv("regular"));
    assert!(
        heavy > 3.0 * regular,
        "mean CLV heavy {heavy} regular {regular}"
    );

    // Stages: lapsed customers acquired before September have churned; heavy buyers have not.
    use shoplens_engine::customers::stages::{ChurnSpec, Stage, StageRules, churn};
    let c = churn(
        ws,
        &ChurnSpec {
            rules: StageRules::default(),
            horizon_weeks: 52,
            as_of: None,
        },
    )
    .await
    .unwrap();
    let churned = |pick: &dyn Fn(&(String, bool)) -> bool| {
        let g: Vec<_> = c
            .customers
            .iter()
            .filter(|x| pick(&sim[&x.user_id]))
            .collect();
        g.iter().filter(|x| x.stage == Stage::Churned).count() as f64 / g.len() as f64
    };
    let lapsed = churned(&|s| s.0 == "lapsed" && s.1);
    let heavy = churned(&|s| s.0 == "heavy");
    assert!(
        lapsed >= 0.8 && heavy < 0.05,
        "churned: lapsed {lapsed} heavy {heavy}"
    );
}

/// The command centre's KPIs equal a count by hand over the raw rows: each row bucketed into a
/// shop-local date in Rust (chrono-tz), then counted, summed and divided without SQL.
#[tokio::test]
async fn kpis_equal_a_count_by_hand() {
    use chrono::TimeZone as _;
    use std::collections::{BTreeMap, HashMap, HashSet};
    let (_d, ws) = demo(0.02, 42);
    let spec = shoplens_engine::practice::kpis::KpiSpec {
        as_of: None,
        days: 30,
    };
    let r = shoplens_engine::practice::kpis::kpis(&ws, &spec)
        .await
        .unwrap();
    let tz: chrono_tz::Tz = "Asia/Shanghai".parse().unwrap();
    let date = |us: i64| {
        tz.timestamp_micros(us)
            .unwrap()
            .format("%Y-%m-%d")
            .to_string()
    };
    let inside = |d: &str| r.from.as_str() <= d && d <= r.to.as_str();
    // Events: persons per day, persons, persons with an order event.
    let mut per_day: BTreeMap<String, HashSet<String>> = BTreeMap::new();
    let (mut active, mut ordering) = (HashSet::new(), HashSet::new());
    for row in rows(
        &ws,
        "SELECT CAST(ts AS BIGINT), COALESCE(user_id, anonymous_id), event FROM events",
    )
    .await
    {
        let c: Vec<&str> = row.split('|').collect();
        let d = date(c[0].parse().unwrap());
        if inside(&d) {
            per_day.entry(d).or_default().insert(c[1].to_string());
            active.insert(c[1].to_string());
            if c[2] == "order" {
                ordering.insert(c[1].to_string());
            }
        }
    }
    // Orders: paid ones in the period.
    let (mut n, mut gmv) = (0.0, 0.0);
    let mut by_buyer: HashMap<String, u32> = HashMap::new();
    for row in rows(
        &ws,
        "SELECT CAST(ts AS BIGINT), status, CAST(net_amount AS DOUBLE), user_id FROM orders",
    )
    .await
    {
        let c: Vec<&str> = row.split('|').collect();
        if !["completed", "paid"].contains(&c[1]) || !inside(&date(c[0].parse().unwrap())) {
            continue;
        }
        n += 1.0;
        gmv += c[2].parse::<f64>().unwrap();
        if !c[3].is_empty() {
            *by_buyer.entry(c[3].to_string()).or_default() += 1;
        }
    }
    let person_days: usize = per_day.values().map(HashSet::len).sum();
    let repeat = by_buyer.values().filter(|&&k| k >= 2).count() as f64;
    let want = [
        ("dau", person_days as f64 / 30.0),
        ("orders", n),
        ("gmv", gmv),
        ("aov", gmv / n),
        ("conversion", ordering.len() as f64 / active.len() as f64),
        ("repurchase_rate", repeat / by_buyer.len() as f64),
    ];
    assert!(
        n > 10.0 && person_days > 100,
        "too little data to test: {n} orders"
    );
    for (key, v) in want {
        let k = r.kpis.iter().find(|k| k.key == key).unwrap();
        let got = k.value.unwrap();
        assert!(
            (got - v).abs() <= 1e-9 * v.abs().max(1.0),
            "{key}: {got} vs {v}"
        );
        assert!(k.previous.is_some());
    }
    // Goods figures are those of `returns` and `inventory` over the same days.
    let day = |s: &str| chrono::NaiveDate::parse_from_str(s, "%Y-%m-%d").unwrap();
    let start = |d: chrono::NaiveDate| {
        tz.from_local_datetime(&d.and_time(chrono::NaiveTime::MIN))
            .single()
            .unwrap()
            .timestamp_micros()
    };
    let returns = shoplens_engine::goods::returns(
        &ws,
        &shoplens_engine::goods::ReturnsSpec {
            from: Some(start(day(&r.from))),
            to: Some(start(day(&r.to).succ_opt().unwrap())),
            ..Default::default()
        },
    )
    .await
    .unwrap();
    let inv = shoplens_engine::goods::inventory(
        &ws,
        &shoplens_engine::goods::InventorySpec {
            from: Some(day(&r.from)),
            to: Some(day(&r.to)),
            slow_days: 90.0,
        },
    )
    .await
    .unwrap();
    let value = |key: &str| r.kpis.iter().find(|k| k.key == key).unwrap().value;
    assert_eq!(value("return_rate"), returns.total.return_rate_units);
    assert_eq!(value("sell_through"), inv.sell_through);
    assert_eq!(value("inventory_turnover"), inv.turnover);
    assert!(value("sell_through").is_some() && value("return_rate").is_some());
    let end = start(day(&r.to).succ_opt().unwrap());
    let churn = shoplens_engine::customers::stages::churn(
        &ws,
        &shoplens_engine::customers::stages::ChurnSpec {
            rules: Default::default(),
            horizon_weeks: 1,
            as_of: Some(end - 1),
        },
    )
    .await
    .unwrap();
    assert_eq!(value("churn_rate"), Some(churn.churn_rate));
    // Paid-channel conversion by hand over `channels` rows of the period with spend.
    let ch = shoplens_engine::traffic::channels(
        &ws,
        &shoplens_engine::traffic::Period {
            from: Some(start(day(&r.from))),
            to: Some(end),
            as_of: Some(end - 1),
        },
    )
    .await
    .unwrap();
    let (mut ordered, mut uv) = (0u64, 0u64);
    for c in ch.channels.iter().filter(|c| c.spend > 0.0) {
        ordered += c.order_visitors;
        uv += c.uv;
    }
    assert!(uv > 0);
    assert_eq!(
        value("channel_conversion"),
        Some(ordered as f64 / uv as f64)
    );
    // Campaign ROI by hand over the campaigns that ended in each period.
    let camps = shoplens_engine::traffic::campaigns(&ws).await.unwrap();
    let roi = |from: &str, to: &str| {
        let ended: Vec<_> = camps
            .campaigns
            .iter()
            .filter(|c| {
                c.incremental_margin.is_some()
                    && c.ends_at
                        .as_deref()
                        .is_some_and(|e| from <= &e[..10] && &e[..10] <= to)
            })
            .collect();
        let cost: f64 = ended.iter().map(|c| c.cost).sum();
        let margin: f64 = ended.iter().filter_map(|c| c.incremental_margin).sum();
        (cost > 0.0).then(|| (margin - cost) / cost)
    };
    let k = r.kpis.iter().find(|k| k.key == "campaign_roi").unwrap();
    assert_eq!(k.value, roi(&r.from, &r.to));
    assert_eq!(k.previous, roi(&r.previous_from, &r.previous_to));
    // On the whole year every demo campaign has ended: the figure exists.
    let year = shoplens_engine::practice::kpis::kpis(
        &ws,
        &shoplens_engine::practice::kpis::KpiSpec {
            as_of: None,
            days: 365,
        },
    )
    .await
    .unwrap();
    let y = year.kpis.iter().find(|k| k.key == "campaign_roi").unwrap();
    assert!(y.value.is_some());
    assert_eq!(y.value, roi(&year.from, &year.to));
    // Member activity by hand: members with a tier registered before the end, and those of them
    // with an event (as user_id) in the period.
    let members: Vec<String> = rows(&ws, "SELECT user_id, CAST(registered_at AS BIGINT) FROM customers WHERE member_tier IS NOT NULL")
        .await
        .into_iter()
        .filter(|row| {
            let c: Vec<&str> = row.split('|').collect();
            c[1].is_empty() || c[1].parse::<i64>().unwrap() < end
        })
        .map(|row| row.split('|').next().unwrap().to_string())
        .collect();
    let signed_in: HashSet<String> = rows(
        &ws,
        "SELECT CAST(ts AS BIGINT), user_id FROM events WHERE user_id IS NOT NULL",
    )
    .await
    .into_iter()
    .filter_map(|row| {
        let (t, u) = row.split_once('|').unwrap();
        inside(&date(t.parse().unwrap())).then(|| u.to_string())
    })
    .collect();
    let active = members.iter().filter(|m| signed_in.contains(*m)).count();
    assert!(!members.is_empty());
    let want = active as f64 / members.len() as f64;
    let got = value("member_activity").unwrap();
    assert!(
        (got - want).abs() < 1e-12,
        "member activity {got} vs {want}"
    );
    // The periods are 30 whole days each, back to back.
    assert_eq!((day(&r.to) - day(&r.from)).num_days(), 29);
    assert_eq!((day(&r.from) - day(&r.previous_to)).num_days(), 1);
}
