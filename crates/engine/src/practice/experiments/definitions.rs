//! Experiment definitions stored in the workspace (the `experiments` table): variants and
//! weights, coverage, hash seed, window, surface and namespace, primary and guardrail metrics;
//! defining one, listing them with their status, and the warning for two running experiments
//! on one surface that no namespace keeps apart.

use datafusion::arrow::array::Array;
use datafusion::arrow::record_batch::RecordBatch;
use serde::Serialize;

use crate::error::{Error, Result};
use crate::ingest::build::TableBuilder;
use crate::ingest::value::Val;
use crate::query;
use crate::sql::{floats, ints, texts};
use crate::storage::schema::Table;
use crate::storage::workspace::Workspace;

/// A namespace range: experiments of one namespace whose ranges do not intersect never share a
/// user (GrowthBook's namespaces: the user's namespace hash decides).
#[derive(Debug, Clone, PartialEq, Serialize, schemars::JsonSchema)]
pub struct Namespace {
    /// Namespace id.
    pub id: String,
    /// Range start, inclusive.
    pub start: f64,
    /// Range end, exclusive.
    pub end: f64,
}

impl Namespace {
    /// Parses `ID:START-END` with 0 ≤ START < END ≤ 1 (e.g. `checkout:0-0.5`).
    pub fn parse(text: &str) -> Result<Namespace> {
        let parsed = text.rsplit_once(':').and_then(|(id, r)| {
            let (a, b) = r.split_once('-')?;
            Some((
                id.to_string(),
                a.trim().parse::<f64>().ok()?,
                b.trim().parse::<f64>().ok()?,
            ))
        });
        match parsed {
            Some((id, start, end))
                if !id.is_empty()
                    && (0.0..=1.0).contains(&start)
                    && (0.0..=1.0).contains(&end)
                    && start < end =>
            {
                Ok(Namespace { id, start, end })
            }
            _ => Err(Error::Invalid(format!(
                "namespace `{text}` is not ID:START-END with 0 ≤ START < END ≤ 1 (e.g. checkout:0-0.5)"
            ))),
        }
    }

    /// Whether two ranges can hold the same user.
    fn intersects(&self, other: &Namespace) -> bool {
        self.id != other.id || (self.start < other.end && other.start < self.end)
    }
}

impl std::fmt::Display for Namespace {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "{}:{}-{}", self.id, self.start, self.end)
    }
}

/// One experiment as defined.
#[derive(Debug, Clone, PartialEq, Serialize, schemars::JsonSchema)]
pub struct Definition {
    /// Experiment key (experiment_id).
    pub key: String,
    /// Name.
    pub name: Option<String>,
    /// Variant names; index i is variant i of `experiment assign`.
    pub variants: Vec<String>,
    /// Weights, summing to 1.
    pub weights: Vec<f64>,
    /// Share of traffic included.
    pub coverage: f64,
    /// Hash seed (the key unless set).
    pub seed: String,
    /// Start (µs since the epoch).
    #[serde(skip)]
    pub starts_at: Option<i64>,
    /// End.
    #[serde(skip)]
    pub ends_at: Option<i64>,
    /// Where it runs.
    pub surface: Option<String>,
    /// Mutual-exclusion namespace.
    pub namespace: Option<Namespace>,
    /// The decision metric first, then other success metrics.
    pub primary_metrics: Vec<String>,
    /// Metrics that must not get worse (`name:lower` when lower is better).
    pub guardrail_metrics: Vec<String>,
}

impl Definition {
    /// A definition with equal weights, full coverage and the key as seed.
    pub fn new(key: &str, variants: Vec<String>) -> Definition {
        let n = variants.len().max(1);
        Definition {
            key: key.to_string(),
            name: None,
            weights: vec![1.0 / n as f64; n],
            variants,
            coverage: 1.0,
            seed: key.to_string(),
            starts_at: None,
            ends_at: None,
            surface: None,
            namespace: None,
            primary_metrics: Vec::new(),
            guardrail_metrics: Vec::new(),
        }
    }

    /// Checks the definition, naming what is wrong.
    pub fn validate(&self) -> Result<()> {
        let bad = |m: String| Err(Error::Invalid(format!("experiment `{}`: {m}", self.key)));
        if self.key.trim().is_empty() {
            return Err(Error::Invalid("an experiment needs a key".into()));
        }
        if self.variants.len() < 2 {
            return bad("needs at least two variants (e.g. control,treatment)".into());
        }
        let mut seen = std::collections::HashSet::new();
        for v in &self.variants {
            if v.trim().is_empty() || !seen.insert(v.as_str()) {
                return bad(format!(
                    "variant names must be non-empty and distinct: `{v}`"
                ));
            }
        }
        if self.weights.len() != self.variants.len() {
            return bad(format!(
                "{} weights for {} variants",
                self.weights.len(),
                self.variants.len()
            ));
        }
        let sum: f64 = self.weights.iter().sum();
        if self.weights.iter().any(|w| !w.is_finite() || *w < 0.0) || (sum - 1.0).abs() > 1e-6 {
            return bad(format!(
                "weights must be non-negative and sum to 1 (they sum to {sum})"
            ));
        }
        if !(0.0..=1.0).contains(&self.coverage) {
            return bad("coverage must be between 0 and 1".into());
        }
        if let (Some(s), Some(e)) = (self.starts_at, self.ends_at)
            && e <= s
        {
            return bad("the end must come after the start".into());
        }
        for m in self.primary_metrics.iter().chain(&self.guardrail_metrics) {
            let name = m.strip_suffix(":lower").unwrap_or(m);
            if name.trim().is_empty() || name.contains([':', ',']) {
                return bad(format!(
                    "metric `{m}` is not a metric name (optionally with `:lower`)"
                ));
            }
        }
        Ok(())
    }

    /// `scheduled`, `running` or `finished` at an instant.
    pub fn status(&self, at: i64) -> &'static str {
        if self.starts_at.is_some_and(|s| s > at) {
            "scheduled"
        } else if self.ends_at.is_some_and(|e| e < at) {
            "finished"
        } else {
            "running"
        }
    }

    /// Primary then guardrail metrics, as `experiment analyze` takes them.
    pub fn metrics(&self) -> Vec<String> {
        self.primary_metrics
            .iter()
            .chain(&self.guardrail_metrics)
            .cloned()
            .collect()
    }

    /// Whether the two run at the same time (an open end runs for ever).
    fn overlaps_in_time(&self, o: &Definition) -> bool {
        let (s1, e1) = (
            self.starts_at.unwrap_or(i64::MIN),
            self.ends_at.unwrap_or(i64::MAX),
        );
        let (s2, e2) = (
            o.starts_at.unwrap_or(i64::MIN),
            o.ends_at.unwrap_or(i64::MAX),
        );
        s1 <= e2 && s2 <= e1
    }
}

/// Two experiments that run at the same time on one surface without a namespace that keeps
/// their users apart: users see both, and each result carries the other's effect.
#[derive(Debug, Clone, PartialEq, Serialize, schemars::JsonSchema)]
pub struct Overlap {
    /// One experiment.
    pub a: String,
    /// The other.
    pub b: String,
    /// Their surface.
    pub surface: String,
    /// Why it matters, in one sentence.
    pub warning: String,
}

/// Every overlapping pair among `defs`.
pub fn overlaps(defs: &[Definition]) -> Vec<Overlap> {
    let mut out = Vec::new();
    for (i, a) in defs.iter().enumerate() {
        for b in &defs[i + 1..] {
            let (Some(sa), Some(sb)) = (&a.surface, &b.surface) else {
                continue;
            };
            let apart = match (&a.namespace, &b.namespace) {
                (Some(x), Some(y)) => !x.intersects(y),
                _ => false,
            };
            if sa == sb && a.overlaps_in_time(b) && !apart {
                out.push(Overlap {
                    a: a.key.clone(),
                    b: b.key.clone(),
                    surface: sa.clone(),
                    warning: format!(
                        "`{}` and `{}` both run on surface `{sa}` at the same time and no namespace keeps their users apart: users see both, so each result carries the other's effect (give both one namespace with disjoint ranges)",
                        a.key, b.key
                    ),
                });
            }
        }
    }
    out
}

fn json_strings(text: Option<&String>) -> Vec<String> {
    text.and_then(|t| serde_json::from_str(t).ok())
        .unwrap_or_default()
}

/// Every definition in the workspace, by key.
pub async fn definitions(ws: &Workspace) -> Result<Vec<Definition>> {
    let (ctx, _) = query::context(ws).await?;
    definitions_in(&ctx).await
}

/// Every definition, read through a session the caller already has.
pub(crate) async fn definitions_in(
    ctx: &datafusion::prelude::SessionContext,
) -> Result<Vec<Definition>> {
    let batches = ctx
        .sql(
            "SELECT experiment_id, name, variants, weights, coverage, seed, \
             CAST(starts_at AS BIGINT), CAST(ends_at AS BIGINT), namespace, surface, \
             namespace_start, namespace_end, primary_metrics, guardrail_metrics \
             FROM experiments ORDER BY experiment_id",
        )
        .await?
        .collect()
        .await?;
    let mut out = Vec::new();
    for b in &batches {
        let t = |i: usize| texts(b.column(i));
        let (key, name, variants, weights, seed) = (t(0)?, t(1)?, t(2)?, t(3)?, t(5)?);
        let (ns, surface, primary, guard) = (t(8)?, t(9)?, t(12)?, t(13)?);
        let (coverage, ns_start, ns_end) = (
            floats(b.column(4))?,
            floats(b.column(10))?,
            floats(b.column(11))?,
        );
        let (starts, ends) = (ints(b.column(6))?, ints(b.column(7))?);
        for r in 0..b.num_rows() {
            let key = key[r].clone().unwrap_or_default();
            let variants = json_strings(variants[r].as_ref());
            let n = variants.len().max(1);
            let weights: Vec<f64> = weights[r]
                .as_ref()
                .and_then(|w| serde_json::from_str(w).ok())
                .unwrap_or_else(|| vec![1.0 / n as f64; n]);
            let namespace = ns[r].as_ref().map(|id| Namespace {
                id: id.clone(),
                start: if ns_start[r].is_nan() {
                    0.0
                } else {
                    ns_start[r]
                },
                end: if ns_end[r].is_nan() { 1.0 } else { ns_end[r] },
            });
            out.push(Definition {
                seed: seed[r].clone().unwrap_or_else(|| key.clone()),
                key,
                name: name[r].clone(),
                variants,
                weights,
                coverage: if coverage[r].is_nan() {
                    1.0
                } else {
                    coverage[r]
                },
                starts_at: (!b.column(6).is_null(r)).then(|| starts[r]),
                ends_at: (!b.column(7).is_null(r)).then(|| ends[r]),
                surface: surface[r].clone(),
                namespace,
                primary_metrics: json_strings(primary[r].as_ref()),
                guardrail_metrics: json_strings(guard[r].as_ref()),
            });
        }
    }
    Ok(out)
}

/// One definition by key.
pub async fn definition(ws: &Workspace, key: &str) -> Result<Option<Definition>> {
    Ok(definitions(ws).await?.into_iter().find(|d| d.key == key))
}

fn to_batch(defs: &[Definition]) -> Result<RecordBatch> {
    let text = |s: &str| Val::Text(std::borrow::Cow::Owned(s.to_string()));
    let opt = |s: &Option<String>| s.as_deref().map_or(Val::Null, text);
    let json = |v: &[String]| -> Result<Val<'static>> {
        Ok(if v.is_empty() {
            Val::Null
        } else {
            text(&serde_json::to_string(v).map_err(|e| Error::Internal(e.to_string()))?)
        })
    };
    let mut b = TableBuilder::new(Table::Experiments, defs.len());
    for d in defs {
        let weights =
            serde_json::to_string(&d.weights).map_err(|e| Error::Internal(e.to_string()))?;
        b.push(&[
            text(&d.key),
            opt(&d.name),
            json(&d.variants)?,
            text(&weights),
            Val::Float(d.coverage),
            text(&d.seed),
            d.starts_at.map_or(Val::Null, Val::Ts),
            d.ends_at.map_or(Val::Null, Val::Ts),
            d.namespace.as_ref().map_or(Val::Null, |n| text(&n.id)),
            opt(&d.surface),
            d.namespace
                .as_ref()
                .map_or(Val::Null, |n| Val::Float(n.start)),
            d.namespace
                .as_ref()
                .map_or(Val::Null, |n| Val::Float(n.end)),
            json(&d.primary_metrics)?,
            json(&d.guardrail_metrics)?,
        ])?;
    }
    b.finish()
}

/// Stores a definition (replacing one with the same key only when `replace`), in one commit
/// under the writer lock. Returns the overlaps that involve it.
pub async fn define(ws: &Workspace, def: &Definition, replace: bool) -> Result<Vec<Overlap>> {
    def.validate()?;
    let writer = ws.writer()?;
    let mut all = definitions(ws).await?;
    match all.iter().position(|d| d.key == def.key) {
        Some(i) if replace => all[i] = def.clone(),
        Some(_) => {
            return Err(Error::Invalid(format!(
                "experiment `{}` is already defined; pass --replace to change it (users already assigned keep their variant only if seed, weights and namespace stay the same)",
                def.key
            )));
        }
        None => all.push(def.clone()),
    }
    all.sort_by(|a, b| a.key.cmp(&b.key));
    let batch = to_batch(&all)?;
    let mut commit = writer.begin()?;
    commit.replace(Table::Experiments, &[batch])?;
    commit.publish()?;
    Ok(overlaps(&all)
        .into_iter()
        .filter(|o| o.a == def.key || o.b == def.key)
        .collect())
}

#[cfg(test)]
mod tests {
    use super::*;

    fn def(key: &str, surface: &str, days: (i64, i64), ns: Option<&str>) -> Definition {
        let mut d = Definition::new(key, vec!["control".into(), "treatment".into()]);
        d.surface = Some(surface.into());
        d.starts_at = Some(days.0 * 86_400_000_000);
        d.ends_at = Some(days.1 * 86_400_000_000);
        d.namespace = ns.map(|n| Namespace::parse(n).unwrap());
        d
    }

    #[test]
    fn overlap_needs_one_surface_one_time_and_no_separating_namespace() {
        let a = def("a", "checkout", (0, 10), None);
        // Same surface, overlapping days: flagged.
        assert_eq!(
            overlaps(&[a.clone(), def("b", "checkout", (5, 20), None)]).len(),
            1
        );
        // Another surface, or days that do not meet: not flagged.
        assert!(overlaps(&[a.clone(), def("b", "search", (5, 20), None)]).is_empty());
        assert!(overlaps(&[a.clone(), def("b", "checkout", (11, 20), None)]).is_empty());
        // Disjoint ranges of one namespace keep users apart; intersecting ones or another
        // namespace do not.
        let x = def("x", "checkout", (0, 10), Some("co:0-0.5"));
        assert!(overlaps(&[x.clone(), def("y", "checkout", (0, 10), Some("co:0.5-1"))]).is_empty());
        assert_eq!(
            overlaps(&[x.clone(), def("y", "checkout", (0, 10), Some("co:0.4-1"))]).len(),
            1
        );
        assert_eq!(
            overlaps(&[x.clone(), def("y", "checkout", (0, 10), Some("pp:0.5-1"))]).len(),
            1
        );
        assert_eq!(overlaps(&[x, def("y", "checkout", (0, 10), None)]).len(), 1);
    }

    #[test]
    fn validation_names_the_problem() {
        let mut d = Definition::new("k", vec!["a".into(), "a".into()]);
        assert!(d.validate().is_err());
        d.variants = vec!["a".into(), "b".into()];
        assert!(d.validate().is_ok());
        d.weights = vec![0.5, 0.6];
        let e = d.validate().unwrap_err().to_string();
        assert!(e.contains("sum to 1"), "{e}");
        assert!(Namespace::parse("co:0.6-0.2").is_err());
        assert_eq!(Namespace::parse("co:0-0.5").unwrap().end, 0.5);
    }
}
