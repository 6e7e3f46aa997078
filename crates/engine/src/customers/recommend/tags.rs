//! Interest tags: category and brand affinity with recency decay, and derived tags.

use std::collections::BTreeSet;

use rustc_hash::FxHashMap;
use serde::Serialize;
use shoplens_models::recommend::popularity;

use crate::error::Result;
use crate::query;
use crate::sql::strings;
use crate::storage::workspace::Workspace;

use super::*;

/// Derived tags: a tag applies when the user's affinity share of categories whose name contains
/// one of the words reaches the threshold.
pub const DERIVED_TAGS: &[(&str, &[&str], f64)] = &[
    (
        "new_parent",
        &["baby", "infant", "maternity", "母婴", "婴"],
        0.2,
    ),
    ("beauty_lover", &["beauty", "cosmetic", "美妆", "护肤"], 0.4),
    ("home_maker", &["home", "kitchen", "家居"], 0.4),
];

/// How interest tags are computed.
#[derive(Debug, Clone, Copy)]
pub struct TagSpec {
    /// An interaction's weight halves every this many days before the newest interaction.
    pub half_life_days: f64,
    /// `interest:<category>` when a category's share of the user's affinity reaches this.
    pub min_share: f64,
    /// Tag-based candidate items per user.
    pub candidates: usize,
}

impl Default for TagSpec {
    fn default() -> TagSpec {
        TagSpec {
            half_life_days: 30.0,
            min_share: 0.3,
            candidates: 10,
        }
    }
}

/// A user's interests.
#[derive(Debug, Clone, Serialize, schemars::JsonSchema)]
pub struct UserTags {
    /// The user.
    pub user_id: String,
    /// Categories by decayed affinity share (top 5).
    pub categories: Vec<(String, f64)>,
    /// Brands by decayed affinity share (top 5).
    pub brands: Vec<(String, f64)>,
    /// Product attributes (`key=value` from products.attributes) by decayed affinity share (top 5).
    pub attributes: Vec<(String, f64)>,
    /// Derived and stored tags, sorted.
    pub tags: Vec<String>,
    /// Tags derived from behaviour (interest:<category> and DERIVED_TAGS), sorted.
    pub derived: Vec<String>,
    /// Tags stored in customers.tags.
    pub stored: Vec<String>,
    /// Popular items of the user's top categories that they have not bought (tag-based candidates).
    pub candidates: Vec<String>,
}

/// Interest tags of users (all users with interactions when `users` is empty).
pub async fn tags(ws: &Workspace, users: &[String], spec: &TagSpec) -> Result<Vec<UserTags>> {
    let l = load(ws, &EventWeights::default()).await?;
    let newest = l.rows.iter().map(|r| r.ts).max().unwrap_or(0);
    // Brands per item (products.brand, else the events').
    let (_, batches) = query::sql(
        ws,
        "SELECT item_id, max(brand) FROM (SELECT item_id, brand FROM products WHERE brand IS NOT NULL \
         UNION ALL SELECT item_id, brand FROM events WHERE item_id IS NOT NULL AND brand IS NOT NULL) GROUP BY 1",
    )
    .await?;
    let item_index: FxHashMap<&str, u32> = l
        .items
        .iter()
        .enumerate()
        .map(|(i, s)| (s.as_str(), i as u32))
        .collect();
    let mut brand: Vec<Option<String>> = vec![None; l.items.len()];
    for b in &batches {
        let (it, br) = (strings(b.column(0))?, strings(b.column(1))?);
        for i in 0..b.num_rows() {
            if let Some(&k) = item_index.get(it.value(i)) {
                brand[k as usize] = Some(br.value(i).to_string());
            }
        }
    }
    // Product attributes as key=value (text and number values).
    let mut attrs: Vec<Vec<String>> = vec![Vec::new(); l.items.len()];
    let (_, batches) = query::sql(
        ws,
        "SELECT item_id, attributes FROM products WHERE attributes IS NOT NULL",
    )
    .await?;
    for b in &batches {
        let (it, a) = (strings(b.column(0))?, strings(b.column(1))?);
        for i in 0..b.num_rows() {
            let (Some(&k), Ok(serde_json::Value::Object(o))) = (
                item_index.get(it.value(i)),
                serde_json::from_str::<serde_json::Value>(a.value(i)),
            ) else {
                continue;
            };
            attrs[k as usize] = o
                .iter()
                .filter_map(|(key, v)| match v {
                    serde_json::Value::String(x) => Some(format!("{key}={x}")),
                    serde_json::Value::Number(x) => Some(format!("{key}={x}")),
                    _ => None,
                })
                .collect();
        }
    }
    // Stored tags.
    let (_, batches) = query::sql(
        ws,
        "SELECT user_id, tags FROM customers WHERE tags IS NOT NULL",
    )
    .await?;
    let mut stored: FxHashMap<String, Vec<String>> = FxHashMap::default();
    for b in &batches {
        let (u, t) = (strings(b.column(0))?, strings(b.column(1))?);
        for i in 0..b.num_rows() {
            if let Ok(v) = serde_json::from_str::<Vec<String>>(t.value(i)) {
                stored.insert(u.value(i).to_string(), v);
            }
        }
    }
    let m = matrix(&l, |_| true);
    let bought = matrix(&l, |r| r.purchase);
    let pop = popularity(&m);
    let wanted: Option<BTreeSet<u32>> = (!users.is_empty()).then(|| {
        let idx: FxHashMap<&str, u32> = l
            .users
            .iter()
            .enumerate()
            .map(|(i, s)| (s.as_str(), i as u32))
            .collect();
        users
            .iter()
            .filter_map(|u| idx.get(u.as_str()).copied())
            .collect()
    });
    let mut cat_aff: FxHashMap<u32, FxHashMap<u32, f64>> = FxHashMap::default();
    let mut brand_aff: FxHashMap<u32, FxHashMap<String, f64>> = FxHashMap::default();
    let mut attr_aff: FxHashMap<u32, FxHashMap<String, f64>> = FxHashMap::default();
    let day = 86_400_000_000f64;
    for r in &l.rows {
        if wanted.as_ref().is_some_and(|w| !w.contains(&r.user)) {
            continue;
        }
        let decay = 0.5f64.powf((newest - r.ts) as f64 / day / spec.half_life_days);
        let w = f64::from(r.weight) * decay;
        let c = l.category[r.item as usize];
        if c != u32::MAX {
            *cat_aff.entry(r.user).or_default().entry(c).or_default() += w;
        }
        if let Some(b) = &brand[r.item as usize] {
            *brand_aff
                .entry(r.user)
                .or_default()
                .entry(b.clone())
                .or_default() += w;
        }
        for a in &attrs[r.item as usize] {
            *attr_aff
                .entry(r.user)
                .or_default()
                .entry(a.clone())
                .or_default() += w;
        }
    }
    let shares = |m: Vec<(String, f64)>| -> Vec<(String, f64)> {
        let total: f64 = m.iter().map(|x| x.1).sum();
        let mut v: Vec<(String, f64)> = m
            .into_iter()
            .map(|(k, x)| (k, if total > 0.0 { x / total } else { 0.0 }))
            .collect();
        v.sort_by(|a, b| b.1.total_cmp(&a.1).then_with(|| a.0.cmp(&b.0)));
        v
    };
    let mut ids: Vec<u32> = match &wanted {
        Some(w) => w.iter().copied().collect(),
        None => (0..l.users.len() as u32).collect(),
    };
    ids.sort_by(|a, b| l.users[*a as usize].cmp(&l.users[*b as usize]));
    let out = ids
        .into_iter()
        .map(|u| {
            let cats = shares(
                cat_aff
                    .get(&u)
                    .map(|m| {
                        m.iter()
                            .map(|(&c, &x)| (l.categories[c as usize].clone(), x))
                            .collect()
                    })
                    .unwrap_or_default(),
            );
            let brands = shares(
                brand_aff
                    .get(&u)
                    .map(|m| m.iter().map(|(b, &x)| (b.clone(), x)).collect())
                    .unwrap_or_default(),
            );
            let attributes = shares(
                attr_aff
                    .get(&u)
                    .map(|m| m.iter().map(|(b, &x)| (b.clone(), x)).collect())
                    .unwrap_or_default(),
            );
            let kept = stored
                .get(&l.users[u as usize])
                .cloned()
                .unwrap_or_default();
            let mut tags: BTreeSet<String> = BTreeSet::new();
            for (c, s) in &cats {
                if *s >= spec.min_share {
                    tags.insert(format!("interest:{c}"));
                }
            }
            for (tag, words, threshold) in DERIVED_TAGS {
                let share: f64 = cats
                    .iter()
                    .filter(|(c, _)| {
                        let c = c.to_lowercase();
                        words.iter().any(|w| c.contains(w))
                    })
                    .map(|x| x.1)
                    .sum();
                if share >= *threshold {
                    tags.insert((*tag).to_string());
                }
            }
            let top: Vec<u32> = cats
                .iter()
                .take(2)
                .filter_map(|(c, _)| l.categories.iter().position(|x| x == c).map(|p| p as u32))
                .collect();
            let held = bought.user(u as usize).0;
            let candidates = pop
                .iter()
                .copied()
                .filter(|&i| {
                    top.contains(&l.category[i as usize]) && held.binary_search(&i).is_err()
                })
                .take(spec.candidates)
                .map(|i| l.items[i as usize].clone())
                .collect();
            let derived: Vec<String> = tags.iter().cloned().collect();
            tags.extend(kept.iter().cloned());
            UserTags {
                user_id: l.users[u as usize].clone(),
                categories: cats.into_iter().take(5).collect(),
                brands: brands.into_iter().take(5).collect(),
                attributes: attributes.into_iter().take(5).collect(),
                tags: tags.into_iter().collect(),
                derived,
                stored: kept,
                candidates,
            }
        })
        .collect();
    Ok(out)
}
