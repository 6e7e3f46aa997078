//! RFM: per-customer recency, frequency and monetary at an as-of date, quintile scores, the named
//! segments with their actions, k-means clusters described in segment terms, and movement between
//! two as-of dates. Definitions: docs/metrics.md, "RFM".

use std::collections::{BTreeMap, HashMap};

use serde::{Deserialize, Serialize};
use shoplens_models::rfm::{self as model, Segment};

use crate::calendar;
use crate::error::{Error, Result};
use crate::people::cohorts::instant_day;
use crate::query;
use crate::sql::{buyer_orders, floats, ints, local_day, texts};
use crate::storage::workspace::Workspace;

/// How many clusters.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Clusters {
    /// The k in 2..=8 with the highest silhouette.
    Auto,
    /// A fixed k.
    Fixed(usize),
    /// No clustering.
    None,
}

/// What to compute.
#[derive(Debug, Clone, PartialEq)]
pub struct RfmSpec {
    /// Data up to this instant (default: the newest timestamp in the workspace).
    pub as_of: Option<i64>,
    /// A second, earlier as-of instant: segment movement from it to `as_of`.
    pub compare_to: Option<i64>,
    /// Clustering.
    pub clusters: Clusters,
    /// Seed of the clustering.
    pub seed: u64,
}

impl Default for RfmSpec {
    fn default() -> RfmSpec {
        RfmSpec {
            as_of: None,
            compare_to: None,
            clusters: Clusters::Auto,
            seed: 42,
        }
    }
}

/// `shoplens rfm` and `GET /api/rfm`: the parameters as the command line and the API take them
/// (same names, same defaults).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, clap::Args, schemars::JsonSchema)]
#[serde(default, deny_unknown_fields)]
pub struct RfmParams {
    /// An earlier as-of date (or instant): how customers moved between segments since then.
    #[arg(long)]
    pub compare_to: Option<String>,
    /// Clusters: `auto` (k from 2 to 8 by silhouette), `none`, or a number.
    #[arg(long, default_value = "auto")]
    pub clusters: String,
    /// Seed of the clustering.
    #[arg(long, default_value_t = 42)]
    pub seed: u64,
}

impl Default for RfmParams {
    fn default() -> RfmParams {
        crate::params::flag_defaults()
    }
}

impl RfmParams {
    /// The spec in the shop's zone `tz`, as of `as_of`.
    pub fn spec(&self, tz: &chrono_tz::Tz, as_of: Option<i64>) -> Result<RfmSpec> {
        let clusters = match self.clusters.trim() {
            "auto" => Clusters::Auto,
            "none" => Clusters::None,
            k => Clusters::Fixed(k.parse::<usize>().map_err(|_| {
                Error::Invalid(format!("--clusters `{k}` is not auto, none or a number"))
            })?),
        };
        let compare_to = match self.compare_to.as_deref() {
            Some(t) => Some(calendar::parse_as_of(t, tz).ok_or_else(|| {
                Error::Invalid(format!(
                    "--compare-to `{t}` is not a date (2025-06-30) or an instant"
                ))
            })?),
            None => None,
        };
        Ok(RfmSpec {
            as_of,
            compare_to,
            clusters,
            seed: self.seed,
        })
    }
}

/// One customer.
#[derive(Debug, Clone, PartialEq, Serialize, schemars::JsonSchema)]
pub struct CustomerRfm {
    /// Customer id.
    pub user_id: String,
    /// Days from the last paid order's day to the as-of day.
    pub recency_days: i64,
    /// Paid orders.
    pub frequency: u64,
    /// Net amount of the paid orders.
    pub monetary: f64,
    /// R score 1–5.
    pub r: u8,
    /// F score 1–5.
    pub f: u8,
    /// M score 1–5.
    pub m: u8,
    /// The scores as one code, e.g. "545".
    pub rfm: String,
    /// Segment key.
    pub segment: Segment,
    /// Cluster (null without clustering).
    pub cluster: Option<usize>,
}

/// One segment's size and value.
#[derive(Debug, Clone, PartialEq, Serialize, schemars::JsonSchema)]
pub struct SegmentSummary {
    /// Segment key.
    pub segment: Segment,
    /// English name.
    pub name: &'static str,
    /// 中文名.
    pub name_zh: &'static str,
    /// Customers.
    pub customers: u64,
    /// Share of customers.
    pub share: f64,
    /// Net amount of their paid orders.
    pub revenue: f64,
    /// Share of all customers' revenue.
    pub revenue_share: f64,
    /// Mean recency, days.
    pub mean_recency_days: f64,
    /// Mean frequency.
    pub mean_frequency: f64,
    /// Mean monetary.
    pub mean_monetary: f64,
    /// Recommended action.
    pub action: &'static str,
    /// 推荐动作.
    pub action_zh: &'static str,
}

/// A segment's share of a cluster.
#[derive(Debug, Clone, PartialEq, Serialize, schemars::JsonSchema)]
pub struct SegmentShare {
    /// Segment key.
    pub segment: Segment,
    /// Share of the cluster's customers.
    pub share: f64,
}

/// One cluster, described in segment terms.
#[derive(Debug, Clone, PartialEq, Serialize, schemars::JsonSchema)]
pub struct ClusterSummary {
    /// Cluster number (0 = highest mean monetary).
    pub cluster: usize,
    /// Customers.
    pub customers: u64,
    /// Share of customers.
    pub share: f64,
    /// Share of revenue.
    pub revenue_share: f64,
    /// Mean recency, days.
    pub mean_recency_days: f64,
    /// Mean frequency.
    pub mean_frequency: f64,
    /// Mean monetary.
    pub mean_monetary: f64,
    /// The segments of its customers, largest first (at most three).
    pub top_segments: Vec<SegmentShare>,
}

/// Silhouette of one k tried.
#[derive(Debug, Clone, PartialEq, Serialize, schemars::JsonSchema)]
pub struct KScore {
    /// k.
    pub k: usize,
    /// Mean silhouette.
    pub silhouette: f64,
}

/// The clustering.
#[derive(Debug, Clone, PartialEq, Serialize, schemars::JsonSchema)]
pub struct Clustering {
    /// The k used.
    pub k: usize,
    /// How it was chosen ("silhouette" or "fixed").
    pub chosen_by: &'static str,
    /// The silhouette of each k tried.
    pub silhouette_by_k: Vec<KScore>,
    /// Points the silhouette was computed on (a seeded sample of large bases).
    pub silhouette_sample: usize,
    /// Customers k was chosen on (a seeded sample of large bases; the chosen k is then fitted on
    /// everyone).
    pub choice_sample: usize,
    /// The clusters.
    pub clusters: Vec<ClusterSummary>,
}

/// Customers moving from one segment to another between the two as-of dates.
#[derive(Debug, Clone, PartialEq, Serialize, schemars::JsonSchema)]
pub struct Transition {
    /// Segment at the earlier date (null: not yet a customer).
    pub from: Option<Segment>,
    /// Segment at the later date.
    pub to: Segment,
    /// Customers.
    pub customers: u64,
}

/// Movement between two as-of dates.
#[derive(Debug, Clone, PartialEq, Serialize, schemars::JsonSchema)]
pub struct Movement {
    /// The earlier as-of instant.
    pub from_as_of: String,
    /// Every non-empty cell of the from × to matrix.
    pub transitions: Vec<Transition>,
}

/// The report.
#[derive(Debug, Clone, PartialEq, Serialize, schemars::JsonSchema)]
pub struct RfmReport {
    /// The as-of instant.
    pub as_of: String,
    /// Customers scored.
    pub total_customers: u64,
    /// Segments in display order (empty ones included).
    pub segments: Vec<SegmentSummary>,
    /// Clusters (null when not asked for or too few customers).
    pub clustering: Option<Clustering>,
    /// Segment movement (with `compare_to`).
    pub movement: Option<Movement>,
    /// Every customer.
    pub customers: Vec<CustomerRfm>,
}

/// Recency, frequency and monetary of every buyer up to an instant, scored and segmented.
async fn score(ws: &Workspace, as_of: i64) -> Result<Vec<CustomerRfm>> {
    let (ctx, manifest) = query::context(ws).await?;
    let tz = calendar::zone(&manifest.settings);
    let day = local_day("ts", tz.name());
    let as_of_day = instant_day(as_of, &tz);
    let q = format!(
        "SELECT user_id, {as_of_day} - max({day}) AS rec, count(DISTINCT order_id) AS freq, \
         CAST(sum(coalesce(net_amount, 0)) AS DOUBLE) AS mon FROM orders \
         WHERE {} GROUP BY user_id ORDER BY user_id",
        buyer_orders(Some(as_of))
    );
    let mut rows: Vec<(String, i64, u64, f64)> = Vec::new();
    for b in ctx.sql(&q).await?.collect().await? {
        let (u, r, f, m) = (
            texts(b.column(0))?,
            ints(b.column(1))?,
            ints(b.column(2))?,
            floats(b.column(3))?,
        );
        for (((u, r), f), m) in u.into_iter().zip(r).zip(f).zip(m) {
            if let Some(u) = u {
                rows.push((u, r, f.max(0) as u64, if m.is_nan() { 0.0 } else { m }));
            }
        }
    }
    let rs = model::scores(&rows.iter().map(|r| r.1 as f64).collect::<Vec<_>>(), false);
    let fs = model::scores(&rows.iter().map(|r| r.2 as f64).collect::<Vec<_>>(), true);
    let ms = model::scores(&rows.iter().map(|r| r.3).collect::<Vec<_>>(), true);
    Ok(rows
        .into_iter()
        .enumerate()
        .map(|(i, (user_id, rec, freq, mon))| CustomerRfm {
            user_id,
            recency_days: rec,
            frequency: freq,
            monetary: mon,
            r: rs[i],
            f: fs[i],
            m: ms[i],
            rfm: format!("{}{}{}", rs[i], fs[i], ms[i]),
            segment: Segment::of(rs[i], fs[i], ms[i]),
            cluster: None,
        })
        .collect())
}

/// Mean of a field over some customers.
fn mean(cs: &[&CustomerRfm], f: impl Fn(&CustomerRfm) -> f64) -> f64 {
    if cs.is_empty() {
        0.0
    } else {
        cs.iter().map(|c| f(c)).sum::<f64>() / cs.len() as f64
    }
}

/// Clusters customers on standardised ln(1 + recency), ln(frequency), ln(1 + max(monetary, 0)).
fn cluster(customers: &mut [CustomerRfm], how: Clusters, seed: u64) -> Option<Clustering> {
    let mut pts: Vec<[f64; 3]> = customers
        .iter()
        .map(|c| {
            [
                (c.recency_days.max(0) as f64).ln_1p(),
                (c.frequency.max(1) as f64).ln(),
                c.monetary.max(0.0).ln_1p(),
            ]
        })
        .collect();
    model::standardise(&mut pts);
    let ks: Vec<usize> = match how {
        Clusters::None => return None,
        Clusters::Fixed(k) => vec![k],
        Clusters::Auto => (2..=8).collect(),
    };
    let (scores, k) = model::choose_k(&pts, &ks, seed)?;
    let tried: Vec<KScore> = scores
        .into_iter()
        .map(|(k, silhouette)| KScore { k, silhouette })
        .collect();
    let km = model::kmeans(&pts, k, seed, 3)?;
    // Number clusters by mean monetary, highest first, so cluster 0 is the most valuable.
    let mut order: Vec<(usize, f64)> = (0..k)
        .map(|j| {
            let members: Vec<&CustomerRfm> = customers
                .iter()
                .zip(&km.labels)
                .filter(|(_, l)| **l == j)
                .map(|(c, _)| c)
                .collect();
            (j, mean(&members, |c| c.monetary))
        })
        .collect();
    order.sort_by(|a, b| b.1.total_cmp(&a.1).then(a.0.cmp(&b.0)));
    let rank: HashMap<usize, usize> = order
        .iter()
        .enumerate()
        .map(|(i, (j, _))| (*j, i))
        .collect();
    for (c, l) in customers.iter_mut().zip(&km.labels) {
        c.cluster = rank.get(l).copied();
    }
    let total = customers.len() as f64;
    let revenue: f64 = customers.iter().map(|c| c.monetary).sum();
    let clusters = (0..k)
        .map(|j| {
            let members: Vec<&CustomerRfm> =
                customers.iter().filter(|c| c.cluster == Some(j)).collect();
            let mut counts: BTreeMap<Segment, u64> = BTreeMap::new();
            for c in &members {
                *counts.entry(c.segment).or_default() += 1;
            }
            let mut top: Vec<(Segment, u64)> = counts.into_iter().collect();
            top.sort_by(|a, b| b.1.cmp(&a.1).then(a.0.cmp(&b.0)));
            let n = members.len() as f64;
            ClusterSummary {
                cluster: j,
                customers: members.len() as u64,
                share: n / total,
                revenue_share: if revenue != 0.0 {
                    members.iter().map(|c| c.monetary).sum::<f64>() / revenue
                } else {
                    0.0
                },
                mean_recency_days: mean(&members, |c| c.recency_days as f64),
                mean_frequency: mean(&members, |c| c.frequency as f64),
                mean_monetary: mean(&members, |c| c.monetary),
                top_segments: top
                    .into_iter()
                    .take(3)
                    .map(|(segment, c)| SegmentShare {
                        segment,
                        share: c as f64 / n,
                    })
                    .collect(),
            }
        })
        .collect();
    Some(Clustering {
        k,
        chosen_by: if matches!(how, Clusters::Auto) {
            "silhouette"
        } else {
            "fixed"
        },
        silhouette_by_k: tried,
        silhouette_sample: customers.len().min(model::SILHOUETTE_SAMPLE),
        choice_sample: customers.len().min(model::CHOICE_SAMPLE),
        clusters,
    })
}

/// Computes the RFM report.
pub async fn rfm(ws: &Workspace, spec: &RfmSpec) -> Result<RfmReport> {
    let manifest = ws.manifest()?;
    let tz = calendar::zone(&manifest.settings);
    let as_of =
        query::as_of_or_newest(ws, spec.as_of, "the workspace holds no orders to score").await?;
    if let Clusters::Fixed(k) = spec.clusters
        && !(2..=50).contains(&k)
    {
        return Err(Error::Invalid(
            "--clusters must be auto, none or a number from 2 to 50".into(),
        ));
    }
    let mut customers = score(ws, as_of).await?;
    if customers.is_empty() {
        return Err(Error::Invalid(
            "no customer has a paid order up to the as-of date".into(),
        ));
    }
    let clustering = if customers.len() >= 10 {
        cluster(&mut customers, spec.clusters, spec.seed)
    } else {
        None
    };
    let total = customers.len() as f64;
    let revenue: f64 = customers.iter().map(|c| c.monetary).sum();
    let segments = Segment::ALL
        .iter()
        .map(|&s| {
            let members: Vec<&CustomerRfm> = customers.iter().filter(|c| c.segment == s).collect();
            let rev: f64 = members.iter().map(|c| c.monetary).sum();
            SegmentSummary {
                segment: s,
                name: s.name(),
                name_zh: s.name_zh(),
                customers: members.len() as u64,
                share: members.len() as f64 / total,
                revenue: rev,
                revenue_share: if revenue != 0.0 { rev / revenue } else { 0.0 },
                mean_recency_days: mean(&members, |c| c.recency_days as f64),
                mean_frequency: mean(&members, |c| c.frequency as f64),
                mean_monetary: mean(&members, |c| c.monetary),
                action: s.action(),
                action_zh: s.action_zh(),
            }
        })
        .collect();
    let movement = match spec.compare_to {
        Some(from) if from < as_of => {
            let before: HashMap<String, Segment> = score(ws, from)
                .await?
                .into_iter()
                .map(|c| (c.user_id, c.segment))
                .collect();
            let mut cells: BTreeMap<(Option<Segment>, Segment), u64> = BTreeMap::new();
            for c in &customers {
                *cells
                    .entry((before.get(&c.user_id).copied(), c.segment))
                    .or_default() += 1;
            }
            Some(Movement {
                from_as_of: calendar::format_instant(from, &tz),
                transitions: cells
                    .into_iter()
                    .map(|((from, to), customers)| Transition {
                        from,
                        to,
                        customers,
                    })
                    .collect(),
            })
        }
        Some(_) => {
            return Err(Error::Invalid(
                "--compare-to must be earlier than the as-of date".into(),
            ));
        }
        None => None,
    };
    customers.sort_by(|a, b| {
        a.segment
            .cmp(&b.segment)
            .then(b.monetary.total_cmp(&a.monetary))
            .then_with(|| a.user_id.cmp(&b.user_id))
    });
    Ok(RfmReport {
        as_of: calendar::format_instant(as_of, &tz),
        total_customers: customers.len() as u64,
        segments,
        clustering,
        movement,
        customers,
    })
}
