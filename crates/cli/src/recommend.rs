//! `shoplens recommend`: offline evaluation, per-user and per-item lists.

use std::io::Write;

use anyhow::Result;
use clap::{Args, Subcommand};
use serde_json::Value;
use shoplens_engine::customers::recommend::{
    EvaluateParams, ExportListsParams, ItemParams, TagParams, UserList, UserParams,
};

use crate::Global;
use crate::render::{Format, Frame, fixed, write_json};

#[derive(Debug, Args)]
pub(crate) struct RecommendArgs {
    #[command(subcommand)]
    what: What,
}

#[derive(Debug, Subcommand)]
enum What {
    /// Train before a split instant, score top-k lists against the new items bought after it,
    /// beside the popularity baseline.
    Evaluate(EvaluateParams),
    /// Lists for users: items they have not bought; users without history get what is popular
    /// lately (cold start).
    User(UserParams),
    /// Items like an item (bought or viewed together); a new item gets its category's popular
    /// items.
    Item(ItemParams),
    /// Interest tags: category and brand affinity with recency decay, derived tags (new_parent …),
    /// the customers table's tags, and tag-based candidate items.
    Tags(TagParams),
    /// Lists for every member of a saved audience (`shoplens audience create …`), as
    /// `user_id,rank,item_id,category,score,reason` rows for the channel that sends them.
    Export(ExportListsParams),
}

fn lists_frame(lists: &[UserList], csv: bool) -> Frame {
    let mut f = Frame::new(&["user_id", "rank", "item_id", "category", "score", "reason"]);
    for l in lists {
        for (r, it) in l.items.iter().enumerate() {
            f.push(vec![
                Value::from(l.user_id.clone()),
                Value::from(r + 1),
                Value::from(it.item_id.clone()),
                Value::from(it.category.clone().unwrap_or_default()),
                fixed(Some(it.score), 4, csv),
                Value::from(it.reason.clone()),
            ]);
        }
    }
    f
}

pub(crate) async fn run(g: &Global, a: RecommendArgs, out: &mut dyn Write) -> Result<()> {
    let (ws, tz) = crate::commands::existing_in_zone(g)?;
    match a.what {
        What::Evaluate(p) => {
            let r = p.run(&ws, &tz).await?;
            if g.format == Format::Json {
                return write_json(out, &r);
            }
            let csv = g.format == Format::Csv;
            if !csv {
                writeln!(
                    out,
                    "Split at {}: {} test users; trained on {} users × {} items ({} pairs); k = {}",
                    r.split_at,
                    r.test_users,
                    r.train_users,
                    r.train_items,
                    r.train_interactions,
                    r.k
                )?;
            }
            let num = |x: f64, d: usize| fixed(Some(x), d, csv);
            let mut f = Frame::new(&[
                "model",
                "recall_at_k",
                "precision_at_k",
                "ndcg_at_k",
                "map_at_k",
                "hit_rate",
                "coverage",
                "intra_list_similarity",
                "novelty",
                "fit_seconds",
            ]);
            for m in &r.models {
                f.push(vec![
                    Value::from(m.model.clone()),
                    num(m.recall_at_k, 4),
                    num(m.precision_at_k, 4),
                    num(m.ndcg_at_k, 4),
                    num(m.map_at_k, 4),
                    num(m.hit_rate, 3),
                    num(m.coverage, 3),
                    num(m.intra_list_similarity, 3),
                    num(m.novelty, 2),
                    num(m.fit_seconds, 2),
                ]);
            }
            f.write(out, g.output())
        }
        What::User(p) => {
            let r = p.run(&ws).await?;
            if g.format == Format::Json {
                return write_json(out, &r);
            }
            lists_frame(&r.users, g.format == Format::Csv).write(out, g.output())
        }
        What::Item(p) => {
            let r = p.run(&ws).await?;
            if g.format == Format::Json {
                return write_json(out, &r);
            }
            let items = r.items;
            let csv = g.format == Format::Csv;
            let mut f = Frame::new(&["rank", "item_id", "category", "similarity", "reason"]);
            for (r, it) in items.iter().enumerate() {
                f.push(vec![
                    Value::from(r + 1),
                    Value::from(it.item_id.clone()),
                    Value::from(it.category.clone().unwrap_or_default()),
                    fixed(Some(it.score), 4, csv),
                    Value::from(it.reason.clone()),
                ]);
            }
            f.write(out, g.output())
        }
        What::Tags(p) => {
            let r = p.run(&ws).await?;
            if g.format == Format::Json {
                return write_json(out, &r);
            }
            let r = r.users;
            let csv = g.format == Format::Csv;
            let n = crate::render::shown(p.limit, r.len());
            let mut f = Frame::new(&[
                "user_id",
                "tags",
                "top_categories",
                "top_brands",
                "candidates",
            ]);
            let pairs = |v: &[(String, f64)]| {
                v.iter()
                    .take(3)
                    .map(|(k, s)| format!("{k} {:.0}%", s * 100.0))
                    .collect::<Vec<_>>()
                    .join(", ")
            };
            for t in &r[..n] {
                f.push(vec![
                    Value::from(t.user_id.clone()),
                    Value::from(t.tags.join(if csv { "|" } else { ", " })),
                    Value::from(pairs(&t.categories)),
                    Value::from(pairs(&t.brands)),
                    Value::from(
                        t.candidates
                            .iter()
                            .take(5)
                            .cloned()
                            .collect::<Vec<_>>()
                            .join(if csv { "|" } else { ", " }),
                    ),
                ]);
            }
            f.write(out, g.output())
        }
        What::Export(p) => {
            let r = p.run(&ws, crate::people::as_of(g, &tz)).await?;
            if g.format == Format::Json {
                return write_json(out, &r);
            }
            let lists = r.users;
            lists_frame(&lists, g.format == Format::Csv).write(out, g.output())
        }
    }
}
