use super::*;

/// RFM and CLV recover the simulator's customer segments (customers.attributes.segment).
pub(crate) async fn customers_planted_truths(ws: &Workspace) {
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
