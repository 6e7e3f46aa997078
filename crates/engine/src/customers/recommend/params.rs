//! `shoplens recommend …` and `GET /api/recommend/…`: each request's parameters as the command
//! line and the API take them (same names, same defaults), and what each answers.

use serde::{Deserialize, Serialize};

use super::{
    Basis, ColdStart, EvaluationReport, ModelKind, RecommendSpec, Recommended, Served, TagSpec,
    UserList, UserTags,
};
use crate::customers::audiences;
use crate::error::{Error, Result};
use crate::storage::workspace::Workspace;

/// Declares a parameters type with the model's parameters every recommend request shares
/// (written out in each type: the API's query has no nesting).
macro_rules! with_model_params {
    ($(#[$meta:meta])* pub struct $name:ident { $($(#[$fmeta:meta])* pub $field:ident: $ty:ty,)* }) => {
        $(#[$meta])*
        pub struct $name {
            $($(#[$fmeta])* pub $field: $ty,)*
            /// ALS latent factors.
            #[arg(long, default_value_t = 64)]
            pub factors: usize,
            /// ALS sweeps.
            #[arg(long, default_value_t = 15)]
            pub iterations: usize,
            /// ALS regularisation.
            #[arg(long, default_value_t = 0.01)]
            pub regularization: f32,
            /// ALS confidence: c = 1 + alpha × weight (weights: view 1, favourite 2, cart 3,
            /// purchase 5).
            #[arg(long, default_value_t = 1.0)]
            pub alpha: f32,
            /// Item-item neighbours kept per item.
            #[arg(long, default_value_t = 50)]
            pub neighbours: usize,
            /// Item-item recency decay: interactions count half every this many days (default:
            /// no decay).
            #[arg(long)]
            pub half_life: Option<f64>,
            /// MMR λ of diversified lists (1 = relevance only, lower = more varied).
            #[arg(long, default_value_t = 0.7)]
            pub diversity_lambda: f32,
            /// At most this many items of one category in a diversified list (0 = no cap).
            #[arg(long, default_value_t = 0)]
            pub category_cap: usize,
            /// Seed of ALS's initial factors.
            #[arg(long, default_value_t = 42)]
            pub seed: u64,
        }

        impl $name {
            /// The models' spec.
            pub fn model_spec(&self) -> RecommendSpec {
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
    };
}

/// Declares a parameters type that makes users' lists: the list's parameters and the model's.
macro_rules! with_list_params {
    ($(#[$meta:meta])* pub struct $name:ident { $($(#[$fmeta:meta])* pub $field:ident: $ty:ty,)* }) => {
        with_model_params! {
            $(#[$meta])*
            pub struct $name {
                $($(#[$fmeta])* pub $field: $ty,)*
                /// List length.
                #[arg(long, default_value_t = 10)]
                pub k: usize,
                /// Model.
                #[arg(long, value_enum, default_value_t = ModelKind::Als)]
                pub model: ModelKind,
                /// Re-rank by MMR (see --diversity-lambda, --category-cap).
                #[arg(long)]
                pub diversify: bool,
                /// Users without history: what is popular in this channel (cold start).
                #[arg(long)]
                pub channel: Option<String>,
                /// Users without history: what is popular in this category (cold start).
                #[arg(long)]
                pub category: Option<String>,
            }
        }

        impl $name {
            /// Fits the model once and makes each user's list.
            async fn lists(&self, ws: &Workspace, users: &[String]) -> Result<Vec<UserList>> {
                let cold = ColdStart {
                    channel: self.channel.clone(),
                    category: self.category.clone(),
                };
                let served = Served::fit(ws, &self.model_spec(), self.model).await?;
                Ok(users
                    .iter()
                    .map(|u| served.for_user(u, self.k, self.model, self.diversify, &cold))
                    .collect())
            }
        }
    };
}

with_model_params! {
    /// `recommend evaluate`: train before a split instant, score top-k lists against the new
    /// items bought after it, beside the popularity baseline.
    #[derive(Debug, Clone, PartialEq, Serialize, Deserialize, clap::Args, schemars::JsonSchema)]
    #[serde(default, deny_unknown_fields)]
    pub struct EvaluateParams {
        /// The split: a day (its midnight in the shop's zone) or an instant.
        #[arg(long)]
        pub split_at: String,
        /// List length.
        #[arg(long, default_value_t = 10)]
        pub k: usize,
    }
}

with_list_params! {
    /// `recommend user`: lists for users.
    #[derive(Debug, Clone, PartialEq, Serialize, Deserialize, clap::Args, schemars::JsonSchema)]
    #[serde(default, deny_unknown_fields)]
    pub struct UserParams {
        /// User ids.
        #[arg(required = true)]
        #[serde(deserialize_with = "crate::params::comma_list")]
        pub users: Vec<String>,
    }
}

with_model_params! {
    /// `recommend item`: items like an item.
    #[derive(Debug, Clone, PartialEq, Serialize, Deserialize, clap::Args, schemars::JsonSchema)]
    #[serde(default, deny_unknown_fields)]
    pub struct ItemParams {
        /// Item id (as written).
        pub item: String,
        /// List length.
        #[arg(long, default_value_t = 10)]
        pub k: usize,
        /// Which interactions make items similar: all, bought (also bought) or viewed (also
        /// viewed).
        #[arg(long, value_enum, default_value_t = Basis::All)]
        pub basis: Basis,
    }
}

with_list_params! {
    /// `recommend export`: lists for every member of a saved audience.
    #[derive(Debug, Clone, PartialEq, Serialize, Deserialize, clap::Args, schemars::JsonSchema)]
    #[serde(default, deny_unknown_fields)]
    pub struct ExportListsParams {
        /// The audience.
        #[arg(long)]
        pub audience: String,
    }
}

/// `recommend tags`: interest tags of users.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, clap::Args, schemars::JsonSchema)]
#[serde(default, deny_unknown_fields)]
pub struct TagParams {
    /// Users (default: every user with interactions).
    #[serde(deserialize_with = "crate::params::comma_list")]
    pub users: Vec<String>,
    /// Interaction weights halve every this many days before the newest interaction.
    #[arg(long, default_value_t = 30.0)]
    pub half_life: f64,
    /// interest:<category> from this share of a user's affinity.
    #[arg(long, default_value_t = 0.3)]
    pub min_share: f64,
    /// Table and CSV: at most this many users (0 = all; JSON lists all).
    #[arg(long, default_value_t = 20)]
    pub limit: usize,
}

impl Default for EvaluateParams {
    fn default() -> EvaluateParams {
        crate::params::flag_defaults()
    }
}

impl Default for UserParams {
    fn default() -> UserParams {
        crate::params::flag_defaults()
    }
}

impl Default for TagParams {
    fn default() -> TagParams {
        crate::params::flag_defaults()
    }
}

impl Default for ItemParams {
    fn default() -> ItemParams {
        crate::params::flag_defaults()
    }
}

impl Default for ExportListsParams {
    fn default() -> ExportListsParams {
        crate::params::flag_defaults()
    }
}

/// What `recommend user` answers: one list per user.
#[derive(Debug, Clone, Serialize, schemars::JsonSchema)]
pub struct UserListsReport {
    /// The lists, in the order the users were given.
    pub users: Vec<UserList>,
}

/// What `recommend item` answers.
#[derive(Debug, Clone, Serialize, schemars::JsonSchema)]
pub struct SimilarItemsReport {
    /// The item asked about.
    pub item_id: String,
    /// True when the item has no interactions and gets its category's popular items.
    pub cold_start: bool,
    /// The similar items, best first.
    pub items: Vec<Recommended>,
}

/// What `recommend tags` answers.
#[derive(Debug, Clone, Serialize, schemars::JsonSchema)]
pub struct TagsReport {
    /// Each user's interests.
    pub users: Vec<UserTags>,
}

/// What `recommend export` answers: the lists of an audience's members.
#[derive(Debug, Clone, Serialize, schemars::JsonSchema)]
pub struct AudienceListsReport {
    /// The audience.
    pub audience: String,
    /// One list per member.
    pub users: Vec<UserList>,
}

impl EvaluateParams {
    /// The offline evaluation, the split read in the shop's zone `tz`.
    pub async fn run(&self, ws: &Workspace, tz: &chrono_tz::Tz) -> Result<EvaluationReport> {
        let Some(split) = crate::calendar::parse_instant(&self.split_at, tz) else {
            return Err(Error::Invalid(format!(
                "--split-at `{}` is not a date (2011-11-01) or an instant",
                self.split_at
            )));
        };
        super::evaluate(ws, &self.model_spec(), split, self.k).await
    }
}

impl UserParams {
    /// The users' lists.
    pub async fn run(&self, ws: &Workspace) -> Result<UserListsReport> {
        if self.users.is_empty() {
            return Err(Error::Invalid("give one or more user ids".into()));
        }
        Ok(UserListsReport {
            users: self.lists(ws, &self.users).await?,
        })
    }
}

impl ItemParams {
    /// The items like the item.
    pub async fn run(&self, ws: &Workspace) -> Result<SimilarItemsReport> {
        let served = Served::fit(ws, &self.model_spec(), ModelKind::ItemItem).await?;
        let Some((cold_start, items)) = served.similar(&self.item, self.k, self.basis) else {
            return Err(Error::Invalid(format!(
                "item `{}` has no interactions or product row in the workspace (ids are case-sensitive)",
                self.item
            )));
        };
        Ok(SimilarItemsReport {
            item_id: self.item.clone(),
            cold_start,
            items,
        })
    }
}

impl TagParams {
    /// The users' interest tags.
    pub async fn run(&self, ws: &Workspace) -> Result<TagsReport> {
        let spec = TagSpec {
            half_life_days: self.half_life,
            min_share: self.min_share,
            ..TagSpec::default()
        };
        Ok(TagsReport {
            users: super::tags(ws, &self.users, &spec).await?,
        })
    }
}

impl ExportListsParams {
    /// The lists of the audience's members as of `as_of`.
    pub async fn run(&self, ws: &Workspace, as_of: Option<i64>) -> Result<AudienceListsReport> {
        let a = audiences::load(ws, &self.audience)?;
        let (_, batches) = audiences::members(ws, &a.rule, as_of).await?;
        let mut users = Vec::new();
        for b in &batches {
            let Some(col) = b.column_by_name("user_id") else {
                continue;
            };
            users.extend(crate::sql::texts(col)?.into_iter().flatten());
        }
        let users = self.lists(ws, &users).await?;
        Ok(AudienceListsReport {
            audience: self.audience.clone(),
            users,
        })
    }
}
