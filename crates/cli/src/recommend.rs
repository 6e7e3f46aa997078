//! `shoplens recommend`: offline evaluation, per-user and per-item lists.

use std::io::Write;

use anyhow::{Result, bail};
use clap::{Args, Subcommand};
use serde_json::Value;
use shoplens_engine::calendar;
use shoplens_engine::customers::audiences;
use shoplens_engine::customers::recommend::{
    self, Basis, ColdStart, ModelKind, RecommendSpec, Served, UserList,
};

use crate::Global;
use crate::render::{Format, Frame, fixed, write_json};

#[derive(Debug, Args)]
pub(crate) struct RecommendArgs {
    #[command(subcommand)]
    what: What,
}

/// Model parameters shared by every recommend command.
#[derive(Debug, Args)]
struct ModelArgs {
    /// ALS latent factors.
    #[arg(long, default_value_t = 64)]
    factors: usize,
    /// ALS sweeps.
    #[arg(long, default_value_t = 15)]
    iterations: usize,
    /// ALS regularisation.
    #[arg(long, default_value_t = 0.01)]
    regularization: f32,
    /// ALS confidence: c = 1 + alpha × weight (weights: view 1, favourite 2, cart 3, purchase 5).
    #[arg(long, default_value_t = 1.0)]
    alpha: f32,
    /// Item-item neighbours kept per item.
    #[arg(long, default_value_t = 50)]
    neighbours: usize,
    /// Item-item recency decay: interactions count half every this many days (default: no decay).
    #[arg(long)]
    half_life: Option<f64>,
    /// MMR λ of diversified lists (1 = relevance only, lower = more varied).
    #[arg(long, default_value_t = 0.7)]
    diversity_lambda: f32,
    /// At most this many items of one category in a diversified list (0 = no cap).
    #[arg(long, default_value_t = 0)]
    category_cap: usize,
    /// Seed of ALS's initial factors.
    #[arg(long, default_value_t = 42)]
    seed: u64,
}

impl ModelArgs {
    fn spec(&self) -> RecommendSpec {
        RecommendSpec {
            factors: self.factors,
            iterations: self.iterations,
            regularization: self.regularization,
            alpha: self.alpha,
            neighbours: self.neighbours,
            half_life_days: self.half_life,
            mmr_lambda: self.diversity_lambda,
            category_cap: self.category_cap,
            seed: self.seed,
            ..RecommendSpec::default()
        }
    }
}

#[derive(Debug, Subcommand)]
enum What {
    /// Train before a split instant, score top-k lists against the new items bought after it,
    /// beside the popularity baseline.
    Evaluate {
        /// The split: a day (its midnight in the shop's zone) or an instant.
        #[arg(long)]
        split_at: String,
        /// List length.
        #[arg(long, default_value_t = 10)]
        k: usize,
        #[command(flatten)]
        model: ModelArgs,
    },
    /// Lists for users: items they have not bought; users without history get what is popular
    /// lately (cold start).
    User {
        /// User ids.
        #[arg(required = true)]
        users: Vec<String>,
        #[command(flatten)]
        list: ListArgs,
    },
    /// Items like an item (bought or viewed together); a new item gets its category's popular
    /// items.
    Item {
        /// Item id (as written).
        item: String,
        /// List length.
        #[arg(long, default_value_t = 10)]
        k: usize,
        /// Which interactions make items similar: all, bought (also bought) or viewed (also viewed).
        #[arg(long, value_enum, default_value = "all")]
        basis: BasisArg,
        #[command(flatten)]
        model: ModelArgs,
    },
    /// Interest tags: category and brand affinity with recency decay, derived tags (new_parent …),
    /// the customers table's tags, and tag-based candidate items.
    Tags {
        /// Users (default: every user with interactions).
        users: Vec<String>,
        /// Interaction weights halve every this many days before the newest interaction.
        #[arg(long, default_value_t = 30.0)]
        half_life: f64,
        /// interest:<category> from this share of a user's affinity.
        #[arg(long, default_value_t = 0.3)]
        min_share: f64,
        /// Table and CSV: at most this many users (0 = all; JSON lists all).
        #[arg(long, default_value_t = 20)]
        limit: usize,
    },
    /// Lists for every member of a saved audience (`shoplens audience create …`), as
    /// `user_id,rank,item_id,category,score,reason` rows for the channel that sends them.
    Export {
        /// The audience.
        #[arg(long)]
        audience: String,
        #[command(flatten)]
        list: ListArgs,
    },
}

#[derive(Debug, Clone, Copy, clap::ValueEnum)]
enum BasisArg {
    All,
    Bought,
    Viewed,
}

#[derive(Debug, Clone, Copy, clap::ValueEnum)]
enum ModelArg {
    Als,
    ItemItem,
    Popularity,
}

#[derive(Debug, Args)]
struct ListArgs {
    /// List length.
    #[arg(long, default_value_t = 10)]
    k: usize,
    /// Model.
    #[arg(long, value_enum, default_value = "als")]
    model: ModelArg,
    /// Re-rank by MMR (see --diversity-lambda, --category-cap).
    #[arg(long)]
    diversify: bool,
    /// Users without history: what is popular in this channel (cold start).
    #[arg(long)]
    channel: Option<String>,
    /// Users without history: what is popular in this category (cold start).
    #[arg(long)]
    category: Option<String>,
    #[command(flatten)]
    model_args: ModelArgs,
}

impl ListArgs {
    /// Fits the model once and makes every user's list.
    async fn lists(
        &self,
        ws: &shoplens_engine::Workspace,
        users: &[String],
    ) -> Result<Vec<UserList>> {
        let served = Served::fit(ws, &self.model_args.spec(), self.kind()).await?;
        Ok(users
            .iter()
            .map(|u| served.for_user(u, self.k, self.kind(), self.diversify, &self.cold()))
            .collect())
    }

    fn cold(&self) -> ColdStart {
        ColdStart {
            channel: self.channel.clone(),
            category: self.category.clone(),
        }
    }

    fn kind(&self) -> ModelKind {
        match self.model {
            ModelArg::Als => ModelKind::Als,
            ModelArg::ItemItem => ModelKind::ItemItem,
            ModelArg::Popularity => ModelKind::Popularity,
        }
    }
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
        What::Evaluate { split_at, k, model } => {
            let Some(split) = calendar::parse_instant(&split_at, &tz) else {
                bail!("--split-at `{split_at}` is not a date (2011-11-01) or an instant");
            };
            let r = recommend::evaluate(&ws, &model.spec(), split, k).await?;
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
        What::User { users, list } => {
            let lists = list.lists(&ws, &users).await?;
            if g.format == Format::Json {
                return write_json(out, &serde_json::json!({ "users": lists }));
            }
            lists_frame(&lists, g.format == Format::Csv).write(out, g.output())
        }
        What::Item {
            item,
            k,
            basis,
            model,
        } => {
            let served = Served::fit(&ws, &model.spec(), ModelKind::ItemItem).await?;
            let Some((cold_start, items)) = served.similar(
                &item,
                k,
                match basis {
                    BasisArg::All => Basis::All,
                    BasisArg::Bought => Basis::Bought,
                    BasisArg::Viewed => Basis::Viewed,
                },
            ) else {
                bail!(
                    "item `{item}` has no interactions or product row in the workspace (ids are case-sensitive)"
                );
            };
            if g.format == Format::Json {
                return write_json(
                    out,
                    &serde_json::json!({ "item_id": item, "cold_start": cold_start, "items": items }),
                );
            }
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
        What::Tags {
            users,
            half_life,
            min_share,
            limit,
        } => {
            let spec = recommend::TagSpec {
                half_life_days: half_life,
                min_share,
                ..recommend::TagSpec::default()
            };
            let r = recommend::tags(&ws, &users, &spec).await?;
            if g.format == Format::Json {
                return write_json(out, &serde_json::json!({ "users": r }));
            }
            let csv = g.format == Format::Csv;
            let n = crate::render::shown(limit, r.len());
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
        What::Export { audience, list } => {
            let a = audiences::load(&ws, &audience)?;
            let (_, batches) =
                audiences::members(&ws, &a.rule, crate::people::as_of(g, &tz)).await?;
            let mut users = Vec::new();
            for b in &batches {
                let Some(col) = b.column_by_name("user_id") else {
                    continue;
                };
                users.extend(shoplens_engine::sql::texts(col)?.into_iter().flatten());
            }
            let lists = list.lists(&ws, &users).await?;
            if g.format == Format::Json {
                return write_json(
                    out,
                    &serde_json::json!({ "audience": audience, "users": lists }),
                );
            }
            lists_frame(&lists, g.format == Format::Csv).write(out, g.output())
        }
    }
}
