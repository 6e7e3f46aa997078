//! `shoplens audience fields | list | show | exports` and `GET /api/audience/…`: each read-only
//! request's parameters as the command line and the API take them, and what each answers.

use serde::{Deserialize, Serialize};

use super::{Audience, ExportRecord, FIELDS};
use crate::error::{Error, Result};
use crate::query::Rows;
use crate::storage::workspace::Workspace;

/// A profile column a rule can use.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
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
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
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
#[derive(Debug, Clone, PartialEq, Serialize)]
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
#[derive(Debug, Clone, PartialEq, Serialize)]
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
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, clap::Args)]
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
#[derive(Debug, Clone, PartialEq, Serialize)]
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
#[derive(Debug, Clone, PartialEq, Serialize)]
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
