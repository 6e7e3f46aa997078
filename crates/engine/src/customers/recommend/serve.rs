//! Models fitted on every interaction, serving per-user and per-item lists.

use std::collections::BTreeSet;

use rustc_hash::FxHashMap;
use serde::Serialize;
use shoplens_models::recommend::{Als, Interactions, ItemItem, mmr, popularity, top_items};

use crate::error::Result;
use crate::storage::workspace::Workspace;

use super::*;

/// Which model makes a list.
#[derive(
    Debug,
    Clone,
    Copy,
    PartialEq,
    Eq,
    Serialize,
    serde::Deserialize,
    clap::ValueEnum,
    schemars::JsonSchema,
)]
#[serde(rename_all(serialize = "snake_case", deserialize = "kebab-case"))]
pub enum ModelKind {
    /// Implicit ALS.
    Als,
    /// Item-to-item co-occurrence.
    #[serde(alias = "item_item")]
    ItemItem,
    /// Most users.
    Popularity,
}

/// One recommended item.
#[derive(Debug, Clone, Serialize, schemars::JsonSchema)]
pub struct Recommended {
    /// The item.
    pub item_id: String,
    /// Its category, when known.
    pub category: Option<String>,
    /// The model's score (ALS preference, summed similarity, or users).
    pub score: f64,
    /// Why: "matches the user's history", "with ITEM", "popular", "popular lately" …
    pub reason: String,
}

/// A user's list.
#[derive(Debug, Clone, Serialize, schemars::JsonSchema)]
pub struct UserList {
    /// The user.
    pub user_id: String,
    /// The model used.
    pub model: ModelKind,
    /// True when the user has no interactions and gets the cold-start list.
    pub cold_start: bool,
    /// The list, best first.
    pub items: Vec<Recommended>,
}

/// Which interactions make items similar.
#[derive(
    Debug,
    Clone,
    Copy,
    PartialEq,
    Eq,
    Serialize,
    serde::Deserialize,
    clap::ValueEnum,
    schemars::JsonSchema,
)]
#[serde(rename_all = "snake_case")]
pub enum Basis {
    /// Every interaction ("bought or viewed together").
    All,
    /// Purchases only ("bought this, also bought").
    Bought,
    /// Product views only ("viewed this, also viewed").
    Viewed,
}

/// What a cold-start list is restricted to.
#[derive(Debug, Clone, Default)]
pub struct ColdStart {
    /// Only interactions in this channel (events.channel, orders.channel).
    pub channel: Option<String>,
    /// Only items of this category.
    pub category: Option<String>,
}

/// Why an item is in a list.
type Reason<'a> = Box<dyn Fn(u32) -> String + 'a>;

/// Models fitted on every interaction, for serving lists.
pub struct Served {
    l: Loaded,
    m: Interactions,
    bought: Interactions,
    pop: Vec<u32>,
    ii: Option<ItemItem>,
    als: Option<Als>,
    spec: RecommendSpec,
    user_index: FxHashMap<String, u32>,
    item_index: FxHashMap<String, u32>,
}

impl Served {
    /// Fits the models a kind of list needs on all data.
    pub async fn fit(ws: &Workspace, spec: &RecommendSpec, model: ModelKind) -> Result<Served> {
        let l = load(ws, &spec.weights).await?;
        let m = matrix(&l, |_| true);
        let bought = matrix(&l, |r| r.purchase);
        let pop = popularity(&m);
        // Item-item serves item-item lists and similar items; ALS lists do not need it.
        let ii = (model != ModelKind::Als).then(|| item_item(&l, spec, |_| true));
        let als = (model == ModelKind::Als).then(|| Als::fit(&m, &spec.als()));
        let user_index = l
            .users
            .iter()
            .enumerate()
            .map(|(i, u)| (u.clone(), i as u32))
            .collect();
        let item_index = l
            .items
            .iter()
            .enumerate()
            .map(|(i, u)| (u.clone(), i as u32))
            .collect();
        Ok(Served {
            l,
            m,
            bought,
            pop,
            ii,
            als,
            spec: spec.clone(),
            user_index,
            item_index,
        })
    }

    fn category(&self, i: u32) -> Option<String> {
        let c = self.l.category[i as usize];
        (c != u32::MAX).then(|| self.l.categories[c as usize].clone())
    }

    fn item(&self, i: u32, score: f64, reason: String) -> Recommended {
        Recommended {
            item_id: self.l.items[i as usize].clone(),
            category: self.category(i),
            score,
            reason,
        }
    }

    /// A user's top-k list: items they have not bought, diversified by MMR when asked; users
    /// without interactions get what is popular lately, within `cold`'s channel and category
    /// (cold start).
    pub fn for_user(
        &self,
        user: &str,
        k: usize,
        model: ModelKind,
        diversify: bool,
        cold: &ColdStart,
    ) -> UserList {
        let n_items = self.l.items.len();
        let known = self
            .user_index
            .get(user)
            .copied()
            .filter(|&u| !self.m.user(u as usize).0.is_empty());
        let Some(u) = known else {
            return UserList {
                user_id: user.to_string(),
                model: ModelKind::Popularity,
                cold_start: true,
                items: self.cold_start(cold, k),
            };
        };
        let ex = self.bought.user(u as usize).0;
        let mut buf = vec![0f32; n_items];
        let (cands, reason_of): (Vec<(u32, f32)>, Reason<'_>) = match (model, &self.als, &self.ii) {
            (ModelKind::Als, Some(als), _) => {
                als.scores(u as usize, &mut buf);
                (
                    top_items(&buf, ex, (5 * k).max(50)),
                    Box::new(|_| "matches the user's history".to_string()),
                )
            }
            (ModelKind::ItemItem, _, Some(ii)) => {
                let held = self.m.user(u as usize).0;
                ii.scores(held, &mut buf);
                let c: Vec<(u32, f32)> = top_items(&buf, ex, (5 * k).max(50))
                    .into_iter()
                    .filter(|x| x.1 > 0.0)
                    .collect();
                (
                    c,
                    Box::new(move |j| {
                        let best = held
                            .iter()
                            .max_by(|&&a, &&b| ii.similarity(a, j).total_cmp(&ii.similarity(b, j)));
                        best.map_or("similar items".into(), |&a| {
                            format!("with {}", self.l.items[a as usize])
                        })
                    }),
                )
            }
            _ => {
                let counts = self.m.item_users();
                let c = self
                    .pop
                    .iter()
                    .filter(|i| ex.binary_search(i).is_err())
                    .take((5 * k).max(50))
                    .map(|&i| (i, counts[i as usize] as f32))
                    .collect();
                (c, Box::new(|_| "popular".to_string()))
            }
        };
        let order: Vec<u32> = if diversify {
            let sim = |a: u32, b: u32| match (&self.als, &self.ii) {
                (Some(als), _) => als.item_similarity(a, b).max(0.0),
                (_, Some(ii)) => ii.similarity(a, b).max(ii.similarity(b, a)),
                _ => 0.0,
            };
            mmr(
                &cands,
                k,
                self.spec.mmr_lambda,
                self.spec.category_cap,
                &self.l.category,
                sim,
            )
        } else {
            cands.iter().take(k).map(|c| c.0).collect()
        };
        let score: FxHashMap<u32, f32> = cands.iter().copied().collect();
        let items = order
            .into_iter()
            .map(|i| {
                self.item(
                    i,
                    f64::from(score.get(&i).copied().unwrap_or(0.0)),
                    reason_of(i),
                )
            })
            .collect();
        UserList {
            user_id: user.to_string(),
            model,
            cold_start: false,
            items,
        }
    }

    /// The cold-start list: items with the most users over the last 30 days of data among
    /// interactions in the channel and items of the category asked for, topped up from all time,
    /// then from everything.
    pub fn cold_start(&self, filter: &ColdStart, k: usize) -> Vec<Recommended> {
        // A name's index in its list; an unknown name matches nothing.
        let index = |names: &[String], name: &str| {
            names
                .iter()
                .position(|x| x == name)
                .map_or(u32::MAX - 1, |p| p as u32)
        };
        let chan = filter
            .channel
            .as_deref()
            .map(|c| index(&self.l.channels, c));
        let cat = filter
            .category
            .as_deref()
            .map(|c| index(&self.l.categories, c));
        let newest = self.l.rows.iter().map(|r| r.ts).max().unwrap_or(0);
        let rank = |since: i64| -> Vec<(u32, usize)> {
            let mut pairs: Vec<(u32, u32)> = self
                .l
                .rows
                .iter()
                .filter(|r| {
                    r.ts > since
                        && chan.is_none_or(|c| r.channel == c)
                        && cat.is_none_or(|c| self.l.category[r.item as usize] == c)
                })
                .map(|r| (r.item, r.user))
                .collect();
            pairs.sort_unstable();
            pairs.dedup();
            let mut counts: Vec<(u32, usize)> = Vec::new();
            for (i, _) in pairs {
                match counts.last_mut() {
                    Some(c) if c.0 == i => c.1 += 1,
                    _ => counts.push((i, 1)),
                }
            }
            counts.sort_by(|a, b| b.1.cmp(&a.1).then(a.0.cmp(&b.0)));
            counts
        };
        let what = match (&filter.channel, &filter.category) {
            (Some(c), Some(g)) => format!(" in {c}, {g}"),
            (Some(c), None) => format!(" in {c}"),
            (None, Some(g)) => format!(" in {g}"),
            (None, None) => String::new(),
        };
        let mut seen = BTreeSet::new();
        let mut out = Vec::new();
        for (list, why) in [
            (
                rank(newest - 30 * 86_400_000_000),
                format!("popular lately{what} (cold start): users in the last 30 days"),
            ),
            (
                rank(i64::MIN),
                format!("popular{what} (cold start): users of all time"),
            ),
        ] {
            for (i, n) in list {
                if out.len() >= k {
                    break;
                }
                if seen.insert(i) {
                    out.push(self.item(i, n as f64, why.clone()));
                }
            }
        }
        let counts = self.m.item_users();
        for &i in &self.pop {
            if out.len() >= k {
                break;
            }
            if seen.insert(i) {
                out.push(self.item(
                    i,
                    f64::from(counts[i as usize]),
                    "popular (cold start)".into(),
                ));
            }
        }
        out
    }

    /// Items like `item` (item-to-item neighbours); an item without neighbours gets the popular
    /// items of its category (cold start). None for an item the workspace does not know.
    pub fn similar(&self, item: &str, k: usize, basis: Basis) -> Option<(bool, Vec<Recommended>)> {
        let i = *self.item_index.get(item)?;
        let own;
        let (ii, verb) = match basis {
            Basis::All => (self.ii.as_ref()?, "bought or viewed"),
            Basis::Bought | Basis::Viewed => {
                own = item_item(&self.l, &self.spec, |r| {
                    if basis == Basis::Bought {
                        r.purchase
                    } else {
                        r.view
                    }
                });
                (
                    &own,
                    if basis == Basis::Bought {
                        "bought"
                    } else {
                        "viewed"
                    },
                )
            }
        };
        let nb = &ii.neighbours[i as usize];
        if !nb.is_empty() {
            return Some((
                false,
                nb.iter()
                    .take(k)
                    .map(|&(j, s)| self.item(j, f64::from(s), format!("{verb} with {item}")))
                    .collect(),
            ));
        }
        let cat = self.l.category[i as usize];
        let counts = self.m.item_users();
        let list = self
            .pop
            .iter()
            .copied()
            .filter(|&j| j != i && (cat == u32::MAX || self.l.category[j as usize] == cat))
            .take(k)
            .map(|j| {
                self.item(
                    j,
                    f64::from(counts[j as usize]),
                    "popular in the category (cold start)".into(),
                )
            })
            .collect();
        Some((true, list))
    }
}
