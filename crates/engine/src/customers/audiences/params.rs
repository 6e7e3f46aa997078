//! `shoplens audience fields | list | show | exports` and `GET /api/audience/…`: each read-only
//! request's parameters as the command line and the API take them, and what each answers.

use serde::{Deserialize, Serialize};

use super::{Audience, ExportRecord, FIELDS};
use crate::error::{Error, Result};
use crate::query::Rows;
use crate::sql::quote;
use crate::storage::workspace::Workspace;

/// A profile column a rule can use.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, schemars::JsonSchema)]
pub struct FieldInfo {
    /// The column.
    pub column: &'static str,
    /// Its type: text, number, date or list.
    #[serde(rename = "type")]
    pub kind: &'static str,
    /// What it holds.
    pub meaning: &'static str,
}

/// What `audience fields` answers.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, schemars::JsonSchema)]
pub struct FieldsReport {
    /// The profile's columns.
    pub fields: Vec<FieldInfo>,
}

/// The profile columns a rule can use.
pub fn fields() -> FieldsReport {
    FieldsReport {
        fields: FIELDS
            .iter()
            .map(|(column, kind, meaning)| FieldInfo {
                column,
                kind,
                meaning,
            })
            .collect(),
    }
}

/// A saved audience with its size now.
#[derive(Debug, Clone, PartialEq, Serialize, schemars::JsonSchema)]
pub struct SizedAudience {
    /// Name.
    pub name: String,
    /// The rule.
    pub rule: String,
    /// What it is for.
    pub description: String,
    /// When it was saved.
    pub created_at: String,
    /// Customers matching the rule as of the report's instant.
    pub customers: usize,
}

/// What `audience list` answers.
#[derive(Debug, Clone, PartialEq, Serialize, schemars::JsonSchema)]
pub struct AudienceList {
    /// The instant the profiles were computed at.
    pub as_of: String,
    /// Saved audiences.
    pub audiences: Vec<SizedAudience>,
}

/// Saved audiences with their sizes as of `as_of` (default: the newest data).
pub async fn list_sized(ws: &Workspace, as_of: Option<i64>) -> Result<AudienceList> {
    let all = super::list(ws)?;
    let p = super::profile(ws, as_of).await?;
    let mut audiences = Vec::with_capacity(all.len());
    for x in all {
        let customers = super::members_of(&p, &x.rule).await?;
        audiences.push(SizedAudience {
            name: x.name,
            rule: x.rule,
            description: x.description,
            created_at: x.created_at,
            customers,
        });
    }
    Ok(AudienceList {
        as_of: p.as_of,
        audiences,
    })
}

/// `audience show`: an audience's current members.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, clap::Args, schemars::JsonSchema)]
#[serde(default, deny_unknown_fields)]
pub struct ShowParams {
    /// Audience name.
    pub name: String,
    /// Table and CSV: at most this many members (0 = all).
    #[arg(long, default_value_t = 20)]
    pub limit: usize,
}

impl Default for ShowParams {
    fn default() -> ShowParams {
        crate::params::flag_defaults()
    }
}

/// What `audience show` answers.
#[derive(Debug, Clone, PartialEq, Serialize, schemars::JsonSchema)]
pub struct AudienceMembers {
    /// The saved audience.
    pub audience: Audience,
    /// The instant the profiles were computed at.
    pub as_of: String,
    /// Members.
    pub customers: usize,
    /// Every member's profile.
    pub members: Rows,
}

impl ShowParams {
    /// The members as of `as_of`, instants in the shop's zone `tz`.
    pub async fn run(
        &self,
        ws: &Workspace,
        tz: &chrono_tz::Tz,
        as_of: Option<i64>,
    ) -> Result<AudienceMembers> {
        if self.name.trim().is_empty() {
            return Err(Error::Invalid("give the audience's name".into()));
        }
        let audience = super::load(ws, &self.name)?;
        let (p, rows) = super::members(ws, &audience.rule, as_of).await?;
        let members = Rows::of(&p.batch.schema(), &rows, tz)?;
        Ok(AudienceMembers {
            audience,
            as_of: p.as_of,
            customers: members.values.len(),
            members,
        })
    }
}

/// What `audience exports` answers.
#[derive(Debug, Clone, PartialEq, Serialize, schemars::JsonSchema)]
pub struct ExportLog {
    /// Every recorded export, oldest first.
    pub exports: Vec<ExportRecord>,
}

/// The export log.
pub fn export_log(ws: &Workspace) -> Result<ExportLog> {
    Ok(ExportLog {
        exports: super::exports(ws)?,
    })
}

/// `audience create`: a rule saved under a name (flags are combined with AND, and with
/// `--where`).
#[derive(Debug, Clone, PartialEq, clap::Args)]
pub struct CreateParams {
    /// Name: letters, digits, - and _.
    pub name: String,
    /// A SQL condition over the profile's columns (see `shoplens audience fields`), with AND, OR,
    /// NOT, IN, LIKE, comparisons …
    #[arg(long = "where")]
    pub condition: Option<String>,
    /// RFM segments (champions, loyal, …), comma-separated.
    #[arg(long, value_delimiter = ',')]
    pub segment: Vec<String>,
    /// Customer stages (new, active, at_risk, churned, won_back, registered_not_purchased).
    #[arg(long, value_delimiter = ',')]
    pub stage: Vec<String>,
    /// Member tiers.
    #[arg(long, value_delimiter = ',')]
    pub tier: Vec<String>,
    /// Acquisition channels.
    #[arg(long, value_delimiter = ',')]
    pub channel: Vec<String>,
    /// Top categories (category affinity).
    #[arg(long, value_delimiter = ',')]
    pub category: Vec<String>,
    /// k-means clusters.
    #[arg(long, value_delimiter = ',')]
    pub cluster: Vec<i64>,
    /// CLV (52 weeks) at least this.
    #[arg(long)]
    pub min_clv: Option<f64>,
    /// P(alive) at most this.
    #[arg(long)]
    pub max_p_alive: Option<f64>,
    /// Last paid order before this day (YYYY-MM-DD).
    #[arg(long)]
    pub last_order_before: Option<String>,
    /// Last paid order on or after this day (YYYY-MM-DD).
    #[arg(long)]
    pub last_order_after: Option<String>,
    /// What the audience is for.
    #[arg(long, default_value = "")]
    pub description: String,
    /// Replace an audience of the same name.
    #[arg(long)]
    pub replace: bool,
}

impl CreateParams {
    /// The flags as one SQL condition.
    ///
    /// # Errors
    /// A date that is not one, or no rule at all.
    pub fn rule(&self) -> Result<String> {
        let a = self;
        let mut parts: Vec<String> = Vec::new();
        let list = |col: &str, vals: &[String]| -> Option<String> {
            (!vals.is_empty()).then(|| {
                format!(
                    "{col} IN ({})",
                    vals.iter()
                        .map(|v| quote(v.trim()))
                        .collect::<Vec<_>>()
                        .join(", ")
                )
            })
        };
        parts.extend(list("segment", &a.segment));
        parts.extend(list("stage", &a.stage));
        parts.extend(list("member_tier", &a.tier));
        parts.extend(list("acquisition_channel", &a.channel));
        parts.extend(list("top_category", &a.category));
        if !a.cluster.is_empty() {
            parts.push(format!(
                "cluster IN ({})",
                a.cluster
                    .iter()
                    .map(i64::to_string)
                    .collect::<Vec<_>>()
                    .join(", ")
            ));
        }
        if let Some(v) = a.min_clv {
            parts.push(format!("clv >= {v}"));
        }
        if let Some(v) = a.max_p_alive {
            parts.push(format!("p_alive <= {v}"));
        }
        for (flag, op, v) in [
            ("last-order-before", "<", &a.last_order_before),
            ("last-order-after", ">=", &a.last_order_after),
        ] {
            if let Some(d) = v {
                if chrono::NaiveDate::parse_from_str(d, "%Y-%m-%d").is_err() {
                    return Err(Error::Invalid(format!(
                        "--{flag} `{d}` is not a date (2025-10-01)"
                    )));
                }
                parts.push(format!("last_order_date {op} {}", quote(d)));
            }
        }
        if let Some(w) = &a.condition {
            parts.push(format!("({w})"));
        }
        if parts.is_empty() {
            return Err(Error::Invalid(
                "give a rule: --where CONDITION and/or flags such as --segment, --stage, --tier"
                    .into(),
            ));
        }
        Ok(parts.join(" AND "))
    }
}
