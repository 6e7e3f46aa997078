//! Goods (货): the product matrix (sales × margin quadrants), returns against reviews with
//! quality-risk flags, and inventory (sell-through, 动销率, turnover, slow movers, stock-outs).
//! Definitions: docs/metrics.md, "Product matrix", "Returns and reviews", "Inventory".

pub mod baskets;
mod inventory;
mod matrix;
mod returns;

pub use inventory::*;
pub use matrix::*;
pub use returns::*;

use rustc_hash::FxHashMap;
use shoplens_models::stats::quantile;

use crate::error::Result;
use crate::query;
use crate::sql::{strings, texts};
use crate::storage::workspace::Workspace;

/// Median of values (None for none).
fn median(mut v: Vec<f64>) -> Option<f64> {
    v.retain(|x| x.is_finite());
    v.sort_by(f64::total_cmp);
    quantile(&v, 0.5)
}

fn ratio_f(a: f64, b: f64) -> Option<f64> {
    (b != 0.0 && a.is_finite() && b.is_finite()).then(|| a / b)
}

/// A product's name, category and attributes (JSON).
type ProductInfo = (Option<String>, Option<String>, Option<String>);

/// The catalogue's name, category and attributes per item.
struct Catalogue(FxHashMap<String, ProductInfo>);

impl Catalogue {
    async fn load(ws: &Workspace) -> Result<Catalogue> {
        let (_, batches) = query::sql(
            ws,
            "SELECT item_id, name, category, attributes FROM products",
        )
        .await?;
        let mut m = FxHashMap::default();
        for b in &batches {
            let (id, name, cat, attr) = (
                strings(b.column(0))?,
                texts(b.column(1))?,
                texts(b.column(2))?,
                texts(b.column(3))?,
            );
            for i in 0..b.num_rows() {
                m.entry(id.value(i).to_string()).or_insert((
                    name[i].clone(),
                    cat[i].clone(),
                    attr[i].clone(),
                ));
            }
        }
        Ok(Catalogue(m))
    }

    fn name(&self, item: &str) -> Option<String> {
        self.0.get(item).and_then(|p| p.0.clone())
    }

    fn category(&self, item: &str) -> Option<String> {
        self.0.get(item).and_then(|p| p.1.clone())
    }

    /// The product's attribute `key` (a JSON object's string or number value).
    fn attribute(&self, item: &str, key: &str) -> Option<String> {
        self.0
            .get(item)
            .and_then(|p| p.2.as_deref())
            .and_then(|a| attribute(a, key))
    }
}

/// Attribute `key` of a JSON object as text. The key matches as written, else ignoring case,
/// spaces and punctuation, and a trailing "name" (`division` finds "Division Name").
pub(crate) fn attribute(json: &str, key: &str) -> Option<String> {
    let v: serde_json::Value = serde_json::from_str(json).ok()?;
    let obj = v.as_object()?;
    let norm = |s: &str| -> String {
        s.chars()
            .filter(char::is_ascii_alphanumeric)
            .map(|c| c.to_ascii_lowercase())
            .collect()
    };
    let want = norm(key);
    let found = obj.get(key).or_else(|| {
        obj.iter()
            .find(|(k, _)| {
                let k = norm(k);
                k == want || k.strip_suffix("name") == Some(want.as_str())
            })
            .map(|(_, v)| v)
    })?;
    match found {
        serde_json::Value::String(s) => Some(s.clone()),
        serde_json::Value::Null => None,
        other => Some(other.to_string()),
    }
}
