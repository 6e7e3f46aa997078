//! `shoplens audience …`: saved rules over customer profiles, their members, and exports.

use std::io::Write;
use std::path::PathBuf;

use anyhow::{Result, bail};
use clap::{Args, Subcommand};
use serde_json::Value;
use shoplens_engine::customers::audiences::{self, CreateParams, Destination, ShowParams};

use crate::Global;
use crate::people::as_of;
use crate::render::{Format, Frame, shown, write_json};

#[derive(Debug, Args)]
pub(crate) struct AudienceArgs {
    #[command(subcommand)]
    what: AudienceCmd,
}

#[derive(Debug, Subcommand)]
enum AudienceCmd {
    /// The profile columns a rule can use.
    Fields,
    /// Save a rule under a name (flags are combined with AND, and with --where).
    Create(Box<CreateParams>),
    /// Saved audiences with their current sizes.
    List,
    /// An audience's current members.
    Show(ShowParams),
    /// Export an audience's current members to a file (.csv, .xlsx, .jsonl) or a webhook, and
    /// record the export.
    Export {
        /// Audience name.
        name: String,
        /// Output file; the extension chooses the format.
        #[arg(long, conflicts_with = "webhook", required_unless_present = "webhook")]
        to: Option<PathBuf>,
        /// POST the members as JSON to this URL (batches of 10,000).
        #[arg(long)]
        webhook: Option<String>,
    },
    /// The export log: what was exported, when, how many.
    Exports,
    /// Delete a saved audience (its export records stay).
    Delete {
        /// Audience name.
        name: String,
    },
}

pub(crate) async fn run(g: &Global, a: AudienceArgs, out: &mut dyn Write) -> Result<()> {
    let (ws, tz) = crate::commands::existing_in_zone(g)?;
    let at = as_of(g, &tz);
    match a.what {
        AudienceCmd::Fields => {
            let r = audiences::fields();
            if g.format == Format::Json {
                return write_json(out, &r);
            }
            let mut f = Frame::new(&["column", "type", "meaning"]);
            for x in r.fields {
                f.push(vec![
                    Value::from(x.column),
                    Value::from(x.kind),
                    Value::from(x.meaning),
                ]);
            }
            f.write(out, g.output())
        }
        AudienceCmd::Create(c) => {
            let rule = c.rule()?;
            let saved = audiences::save(&ws, &c.name, &rule, &c.description, c.replace).await?;
            let (_, rows) = audiences::members(&ws, &saved.rule, at).await?;
            let n: usize = rows.iter().map(|b| b.num_rows()).sum();
            if g.format == Format::Json {
                return write_json(out, &serde_json::json!({"audience": saved, "customers": n}));
            }
            writeln!(
                out,
                "saved audience `{}`: {} customers now\nrule: {}",
                saved.name, n, saved.rule
            )?;
            Ok(())
        }
        AudienceCmd::List => {
            let r = audiences::list_sized(&ws, at).await?;
            if g.format == Format::Json {
                return write_json(out, &r);
            }
            let mut f = Frame::new(&["name", "customers", "rule", "description"]);
            for x in r.audiences {
                f.push(vec![
                    Value::from(x.name),
                    Value::from(x.customers),
                    Value::from(x.rule),
                    Value::from(x.description),
                ]);
            }
            f.write(out, g.output())
        }
        AudienceCmd::Show(p) => {
            let r = p.run(&ws, &tz, at).await?;
            if g.format == Format::Json {
                return write_json(out, &r);
            }
            let n = r.customers;
            let keep = shown(p.limit, n);
            let mut f = Frame::from(r.members);
            f.rows.truncate(keep);
            f.write(out, g.output())?;
            if g.format == Format::Table {
                writeln!(
                    out,
                    "{n} customers (showing {keep}); rule: {}",
                    r.audience.rule
                )?;
            }
            Ok(())
        }
        AudienceCmd::Export { name, to, webhook } => {
            let dest = match (to, webhook) {
                (Some(p), None) => Destination::file(p)?,
                (None, Some(u)) => Destination::Webhook(u),
                _ => bail!("give --to FILE or --webhook URL"),
            };
            let rec = audiences::export(&ws, &name, &dest, at).await?;
            if g.format == Format::Json {
                return write_json(out, &rec);
            }
            writeln!(
                out,
                "exported {} customers of `{}` to {} ({}); recorded at {}",
                rec.customers, rec.audience, rec.destination, rec.format, rec.exported_at
            )?;
            Ok(())
        }
        AudienceCmd::Exports => {
            let log = audiences::export_log(&ws)?;
            if g.format == Format::Json {
                return write_json(out, &log);
            }
            let log = log.exports;
            let mut f = Frame::new(&[
                "exported_at",
                "audience",
                "customers",
                "format",
                "destination",
                "data_as_of",
            ]);
            for r in log {
                f.push(vec![
                    Value::from(r.exported_at),
                    Value::from(r.audience),
                    Value::from(r.customers),
                    Value::from(r.format),
                    Value::from(r.destination),
                    Value::from(r.data_as_of),
                ]);
            }
            f.write(out, g.output())
        }
        AudienceCmd::Delete { name } => {
            audiences::delete(&ws, &name)?;
            writeln!(out, "deleted audience `{name}`")?;
            Ok(())
        }
    }
}
