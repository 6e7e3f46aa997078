//! Paths: what sessions do after (or before) a chosen event, as the most common sequences and as
//! step-by-step transition counts ready for a Sankey diagram. Definitions: docs/metrics.md, "Paths".

use std::collections::HashMap;

use datafusion::arrow::array::Array;
use futures::StreamExt;
use serde::{Deserialize, Serialize};

use crate::error::{Error, Result};
use crate::people::sessions::{self, PERSON};
use crate::query;
use crate::sql::{strings, ts_literal};
use crate::storage::workspace::Workspace;

/// What a path node is.
#[derive(
    Debug,
    Clone,
    Copy,
    PartialEq,
    Eq,
    Default,
    Serialize,
    Deserialize,
    clap::ValueEnum,
    schemars::JsonSchema,
)]
#[serde(rename_all = "snake_case")]
pub enum Node {
    /// The event name.
    #[default]
    Event,
    /// The page (null pages fall back to the event name).
    Page,
}

/// `shoplens paths` and `GET /api/paths`: the parameters as the command line and the API take
/// them (same names, same defaults).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, clap::Args, schemars::JsonSchema)]
#[serde(default, deny_unknown_fields)]
pub struct PathParams {
    /// Paths after the first occurrence of this event in each session.
    #[arg(long, conflicts_with = "end")]
    pub start: Option<String>,
    /// Paths leading to the first occurrence of this event.
    #[arg(long)]
    pub end: Option<String>,
    /// Nodes after (or before) the anchor.
    #[arg(long, default_value_t = 5)]
    pub steps: usize,
    /// Sequences to list.
    #[arg(long, default_value_t = 20)]
    pub top: usize,
    /// Nodes are event names or pages.
    #[arg(long, value_enum, default_value_t = Node::Event)]
    pub node: Node,
    /// Keep consecutive repeats of a node (default: collapsed).
    #[arg(long)]
    pub keep_repeats: bool,
    /// First day (or instant) counted.
    #[arg(long)]
    pub from: Option<String>,
    /// Last day counted, inclusive.
    #[arg(long)]
    pub to: Option<String>,
}

impl Default for PathParams {
    fn default() -> PathParams {
        crate::params::flag_defaults()
    }
}

impl PathParams {
    /// Parameters that cannot go together, as the command line refuses them.
    pub fn conflict(&self) -> Option<String> {
        (self.start.is_some() && self.end.is_some())
            .then(|| "`start` and `end` cannot be used together".to_string())
    }

    /// The spec in the shop's zone `tz`, as of `as_of`.
    pub fn spec(&self, tz: &chrono_tz::Tz, as_of: Option<i64>) -> Result<PathSpec> {
        let (from, to) =
            crate::calendar::events_period(tz, self.from.as_deref(), self.to.as_deref(), as_of)?;
        Ok(PathSpec {
            start: self.start.clone(),
            end: self.end.clone(),
            steps: self.steps,
            top: self.top,
            node: self.node,
            keep_repeats: self.keep_repeats,
            from,
            to,
        })
    }
}

/// What to compute.
#[derive(Debug, Clone, PartialEq, Default)]
pub struct PathSpec {
    /// Paths after the first occurrence of this event in a session…
    pub start: Option<String>,
    /// …or before the first occurrence of this one (one of the two, or neither: from the session's start).
    pub end: Option<String>,
    /// Nodes after (before) the anchor, at most.
    pub steps: usize,
    /// How many sequences to list.
    pub top: usize,
    /// Event names or pages.
    pub node: Node,
    /// Keep consecutive repeats of a node (default: collapsed into one).
    pub keep_repeats: bool,
    /// Events at or after this instant (µs).
    pub from: Option<i64>,
    /// Events before this instant (µs).
    pub to: Option<i64>,
}

/// One transition between consecutive steps.
#[derive(Debug, Clone, PartialEq, Serialize, schemars::JsonSchema)]
pub struct Link {
    /// Step of the source node (0 = the anchor when a start event is given).
    pub step: usize,
    /// Source node.
    pub from: String,
    /// Target node (`(end)` when the session ends).
    pub to: String,
    /// Sessions making this transition.
    pub sessions: u64,
}

/// One full sequence.
#[derive(Debug, Clone, PartialEq, Serialize, schemars::JsonSchema)]
pub struct PathCount {
    /// Nodes in order, ending with `(end)` when the session ended within the steps.
    pub path: Vec<String>,
    /// Sessions following it.
    pub sessions: u64,
    /// Share of the anchored sessions.
    pub share: f64,
}

/// The paths report.
#[derive(Debug, Clone, PartialEq, Serialize, schemars::JsonSchema)]
pub struct PathReport {
    /// Sessions in the period.
    pub sessions_total: u64,
    /// Sessions holding the anchor event (all sessions without one).
    pub sessions: u64,
    /// The most common sequences.
    pub paths: Vec<PathCount>,
    /// Transition counts per step (a Sankey's links; nodes are (step, name)).
    pub links: Vec<Link>,
}

/// The label of a session's end.
pub const END: &str = "(end)";

/// Computes the paths report.
pub async fn paths(ws: &Workspace, spec: &PathSpec) -> Result<PathReport> {
    if spec.start.is_some() && spec.end.is_some() {
        return Err(Error::Invalid("give --start or --end, not both".into()));
    }
    let steps = spec.steps.clamp(1, 20);
    let (ctx, _) = query::context(ws).await?;
    let mut range = vec![format!("{PERSON} IS NOT NULL"), "ts IS NOT NULL".into()];
    if let Some(f) = spec.from {
        range.push(format!("ts >= {}", ts_literal(f)));
    }
    if let Some(t) = spec.to {
        range.push(format!("ts < {}", ts_literal(t)));
    }
    let ranged = format!(
        "SELECT *, {PERSON} AS person FROM events WHERE {}",
        range.join(" AND ")
    );
    let split = sessions::need_split(&ctx).await?;
    let with_unit = sessions::with_units(&ranged, split, sessions::GAP_US);
    let label = match spec.node {
        Node::Event => "event".to_string(),
        Node::Page => "COALESCE(page, event)".to_string(),
    };
    let q = format!("SELECT unit, {label} AS node FROM ({with_unit}) ORDER BY unit, ts, event_id");
    let mut total = 0u64;
    let mut anchored = 0u64;
    let mut seqs: HashMap<Vec<String>, u64> = HashMap::new();
    let mut add = |seq: &mut Vec<String>| {
        if seq.is_empty() {
            return;
        }
        total += 1;
        if !spec.keep_repeats {
            seq.dedup();
        }
        let path = match (&spec.start, &spec.end) {
            (Some(s), _) => seq
                .iter()
                .position(|x| x == s)
                .map(|p| window(&seq[p..], steps + 1, true)),
            (None, Some(e)) => seq
                .iter()
                .position(|x| x == e)
                .map(|p| window(&seq[..=p], steps + 1, false)),
            (None, None) => Some(window(seq, steps, true)),
        };
        if let Some(path) = path {
            anchored += 1;
            *seqs.entry(path).or_default() += 1;
        }
        seq.clear();
    };
    // Rows arrive sorted by session: one session's nodes at a time.
    let mut stream = ctx.sql(&q).await?.execute_stream().await?;
    let mut current: Option<String> = None;
    let mut seq: Vec<String> = Vec::new();
    while let Some(b) = stream.next().await {
        let b = b?;
        let (units, nodes) = (strings(b.column(0))?, strings(b.column(1))?);
        for i in 0..b.num_rows() {
            let unit = units.value(i);
            if current.as_deref() != Some(unit) {
                add(&mut seq);
                current = Some(unit.to_string());
            }
            seq.push(if nodes.is_null(i) {
                String::new()
            } else {
                nodes.value(i).to_string()
            });
        }
    }
    add(&mut seq);
    let mut links: HashMap<(usize, String, String), u64> = HashMap::new();
    for (path, n) in &seqs {
        for (i, w) in path.windows(2).enumerate() {
            *links.entry((i, w[0].clone(), w[1].clone())).or_default() += n;
        }
    }
    let mut links: Vec<Link> = links
        .into_iter()
        .map(|((step, from, to), sessions)| Link {
            step,
            from,
            to,
            sessions,
        })
        .collect();
    links.sort_by(|a, b| {
        a.step
            .cmp(&b.step)
            .then(b.sessions.cmp(&a.sessions))
            .then_with(|| (&a.from, &a.to).cmp(&(&b.from, &b.to)))
    });
    let mut paths: Vec<PathCount> = seqs
        .into_iter()
        .map(|(path, sessions)| PathCount {
            path,
            sessions,
            share: if anchored > 0 {
                sessions as f64 / anchored as f64
            } else {
                0.0
            },
        })
        .collect();
    paths.sort_by(|a, b| {
        b.sessions
            .cmp(&a.sessions)
            .then_with(|| a.path.cmp(&b.path))
    });
    paths.truncate(spec.top.max(1));
    Ok(PathReport {
        sessions_total: total,
        sessions: anchored,
        paths,
        links,
    })
}

/// The first `n` nodes (forward, with `(end)` when the session ends within them) or the last `n`
/// (backward, the anchor last).
fn window(seq: &[String], n: usize, forward: bool) -> Vec<String> {
    if forward {
        let mut v: Vec<String> = seq.iter().take(n).cloned().collect();
        if seq.len() < n {
            v.push(END.to_string());
        }
        v
    } else {
        seq[seq.len().saturating_sub(n)..].to_vec()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn s(v: &[&str]) -> Vec<String> {
        v.iter().map(|x| (*x).to_string()).collect()
    }

    #[test]
    fn windows() {
        let seq = s(&["a", "b", "c"]);
        assert_eq!(window(&seq, 2, true), s(&["a", "b"]));
        assert_eq!(window(&seq, 5, true), s(&["a", "b", "c", END]));
        assert_eq!(window(&seq, 2, false), s(&["b", "c"]));
    }
}
