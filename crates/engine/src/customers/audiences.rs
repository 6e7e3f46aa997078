//! Audiences: saved rules over a per-customer profile (RFM segment, cluster, stage, CLV, churn
//! risk, channel, category affinity, member tier, order dates …), exported to CSV, XLSX, JSON lines
//! or a webhook, each export recorded so a campaign can later be measured against it.
//! Definitions: docs/metrics.md, "Audiences".
//!
//! A rule is a SQL boolean expression over the profile's columns (`segment IN ('champions',
//! 'loyal') AND member_tier = 'gold'`), parsed as an expression only, so it can filter and nothing
//! else.

mod params;

pub use params::{
    AudienceList, AudienceMembers, CreateParams, ExportLog, FieldInfo, FieldsReport, ShowParams,
    SizedAudience, export_log, fields, list_sized,
};

use std::io::Write;
use std::path::{Path, PathBuf};
use std::sync::Arc;

use datafusion::arrow::array::{
    Array, ArrayRef, Float64Array, Int64Array, RecordBatch, StringArray,
};
use datafusion::arrow::datatypes::{DataType, Field, Schema, SchemaRef};
use datafusion::catalog::MemTable;
use datafusion::prelude::{SessionContext, col};
use serde::{Deserialize, Serialize};

use crate::calendar;
use crate::customers::rfm::{Clusters, RfmSpec, rfm};
use crate::customers::stages::{ChurnSpec, Stage, StageRules, churn};
use crate::error::{Error, Result};
use crate::people::cohorts::date_of;
use crate::query;
use crate::sql::{PAID, floats, ints, local_day, strings, texts, ts_literal};
use crate::storage::workspace::Workspace;

/// The profile's columns: name, type, meaning (docs/metrics.md lists the same).
pub const FIELDS: [(&str, &str, &str); 24] = [
    ("user_id", "text", "Customer id."),
    (
        "segment",
        "text",
        "RFM segment key (champions, loyal, potential_loyalist, new, promising, need_attention, about_to_sleep, at_risk, cant_lose_them, hibernating, lost); null for non-buyers.",
    ),
    ("rfm", "text", "R, F and M scores as a code, e.g. '552'."),
    ("r", "integer", "R score 1–5."),
    ("f", "integer", "F score 1–5."),
    ("m", "integer", "M score 1–5."),
    (
        "cluster",
        "integer",
        "k-means cluster (0 = highest mean spend).",
    ),
    ("recency_days", "integer", "Days since the last paid order."),
    ("frequency", "integer", "Paid orders (0 for non-buyers)."),
    ("monetary", "number", "Net amount of paid orders."),
    (
        "stage",
        "text",
        "Customer stage: registered_not_purchased, new, active, at_risk, churned, won_back.",
    ),
    (
        "p_alive",
        "number",
        "P(alive) from BG/NBD at the as-of date.",
    ),
    (
        "clv",
        "number",
        "Expected value over the next 52 weeks (BG/NBD × Gamma-Gamma).",
    ),
    (
        "expected_interval_days",
        "number",
        "Own mean interval between purchase days (the shop's median for one-time buyers).",
    ),
    (
        "overdue_ratio",
        "number",
        "Days since the last order / expected interval.",
    ),
    (
        "first_order_date",
        "text",
        "First paid order's day, YYYY-MM-DD (shop zone).",
    ),
    (
        "last_order_date",
        "text",
        "Last paid order's day, YYYY-MM-DD (shop zone).",
    ),
    (
        "registered_date",
        "text",
        "Registration day, YYYY-MM-DD (shop zone).",
    ),
    (
        "acquisition_channel",
        "text",
        "customers.acquisition_channel.",
    ),
    ("member_tier", "text", "customers.member_tier."),
    ("region", "text", "customers.region."),
    (
        "tags",
        "text",
        "customers.tags as stored (e.g. '[vip,new_parent]'; use LIKE '%vip%').",
    ),
    (
        "top_category",
        "text",
        "Category with the most paid spend (order lines × products).",
    ),
    (
        "top_category_share",
        "number",
        "That category's share of the customer's line spend.",
    ),
];

/// A saved audience.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, schemars::JsonSchema)]
pub struct Audience {
    /// Name (letters, digits, - and _).
    pub name: String,
    /// SQL boolean expression over the profile's columns.
    pub rule: String,
    /// What it is for.
    #[serde(default)]
    pub description: String,
    /// When it was saved (UTC, RFC 3339).
    pub created_at: String,
}

/// One export, as recorded in the workspace's export log.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, schemars::JsonSchema)]
pub struct ExportRecord {
    /// Audience name.
    pub audience: String,
    /// The rule at export time.
    pub rule: String,
    /// csv, xlsx, jsonl or webhook.
    pub format: String,
    /// File path or webhook URL.
    pub destination: String,
    /// Customers exported.
    pub customers: u64,
    /// When (UTC, RFC 3339).
    pub exported_at: String,
    /// The data's as-of instant the profile was computed at.
    pub data_as_of: String,
    /// The exported user ids' BLAKE3 digest (sorted, newline-joined), to match a campaign later.
    pub members_digest: String,
}

fn audiences_dir(ws: &Workspace) -> PathBuf {
    ws.root().join("audiences")
}

fn exports_log(ws: &Workspace) -> PathBuf {
    ws.root().join("exports.jsonl")
}

fn io(path: &Path) -> impl FnOnce(std::io::Error) -> Error + '_ {
    move |cause| Error::Io {
        path: path.to_path_buf(),
        cause,
    }
}

fn check_name(name: &str) -> Result<()> {
    if name.is_empty()
        || name.len() > 64
        || !name
            .chars()
            .all(|c| c.is_ascii_alphanumeric() || c == '-' || c == '_')
    {
        return Err(Error::Invalid(format!(
            "audience name `{name}`: use 1–64 letters, digits, - or _"
        )));
    }
    Ok(())
}

/// The wall-clock time, for records of when something was saved or exported (never for analyses).
fn now() -> String {
    #[expect(clippy::disallowed_methods, reason = "records say when they were made")]
    let t = chrono::Utc::now();
    t.to_rfc3339_opts(chrono::SecondsFormat::Secs, true)
}

/// A new, empty file in `dir` for one export, named `{stem}-{UTC time}-{8 random hex}.{ext}` and
/// created with create-new semantics: two exports at the same moment never share a name, and no
/// existing file is replaced. Files in `dir` last written more than `max_age` ago are removed
/// first (None keeps them all).
pub fn new_export_file(
    dir: &Path,
    stem: &str,
    ext: &str,
    max_age: Option<std::time::Duration>,
) -> Result<PathBuf> {
    use rand::TryRngCore as _;
    std::fs::create_dir_all(dir).map_err(io(dir))?;
    if let Some(max_age) = max_age {
        remove_older(dir, max_age);
    }
    #[expect(
        clippy::disallowed_methods,
        reason = "an export's file is named by when it was made"
    )]
    let stamp = chrono::Utc::now().format("%Y%m%dT%H%M%SZ");
    for _ in 0..16 {
        let mut b = [0u8; 4];
        rand::rngs::OsRng
            .try_fill_bytes(&mut b)
            .map_err(|e| Error::Internal(format!("no OS randomness for a file name: {e}")))?;
        let suffix: String = b.iter().map(|x| format!("{x:02x}")).collect();
        let path = dir.join(format!("{stem}-{stamp}-{suffix}.{ext}"));
        match std::fs::OpenOptions::new()
            .write(true)
            .create_new(true)
            .open(&path)
        {
            Ok(_) => return Ok(path),
            Err(e) if e.kind() == std::io::ErrorKind::AlreadyExists => continue,
            Err(e) => return Err(io(&path)(e)),
        }
    }
    Err(Error::Internal(format!(
        "{}: no free export file name",
        dir.display()
    )))
}

/// Removes the files of `dir` last written more than `max_age` ago (what cannot be removed stays).
fn remove_older(dir: &Path, max_age: std::time::Duration) {
    let Ok(entries) = std::fs::read_dir(dir) else {
        return;
    };
    for e in entries.flatten() {
        let old = e
            .metadata()
            .ok()
            .filter(std::fs::Metadata::is_file)
            .and_then(|m| m.modified().ok())
            .and_then(|t| t.elapsed().ok())
            .is_some_and(|age| age > max_age);
        if old {
            let _ = std::fs::remove_file(e.path());
        }
    }
}

/// Writes a file atomically (a temporary file renamed over it).
fn write_atomic(path: &Path, bytes: &[u8]) -> Result<()> {
    let tmp = path.with_extension("tmp");
    let mut f = std::fs::File::create(&tmp).map_err(io(&tmp))?;
    f.write_all(bytes).map_err(io(&tmp))?;
    f.sync_all().map_err(io(&tmp))?;
    std::fs::rename(&tmp, path).map_err(io(path))
}

/// Saves an audience after checking its rule against the profile; refuses to replace one unless
/// `replace`.
pub async fn save(
    ws: &Workspace,
    name: &str,
    rule: &str,
    description: &str,
    replace: bool,
) -> Result<Audience> {
    check_name(name)?;
    // The rule must parse and type-check against the profile's columns.
    let ctx = profile_context(&empty_profile())?;
    filter(&ctx, rule).await?;
    let _lock = ws.writer()?;
    let dir = audiences_dir(ws);
    std::fs::create_dir_all(&dir).map_err(io(&dir))?;
    let path = dir.join(format!("{name}.json"));
    if path.exists() && !replace {
        return Err(Error::Invalid(format!(
            "an audience named `{name}` exists; pass --replace to overwrite it"
        )));
    }
    let a = Audience {
        name: name.into(),
        rule: rule.trim().into(),
        description: description.into(),
        created_at: now(),
    };
    let text = serde_json::to_vec_pretty(&a).map_err(|e| Error::Internal(e.to_string()))?;
    write_atomic(&path, &text)?;
    Ok(a)
}

/// A saved audience.
pub fn load(ws: &Workspace, name: &str) -> Result<Audience> {
    check_name(name)?;
    let path = audiences_dir(ws).join(format!("{name}.json"));
    let text = std::fs::read_to_string(&path).map_err(|e| {
        if e.kind() == std::io::ErrorKind::NotFound {
            Error::Invalid(format!(
                "no audience named `{name}` (see `shoplens audience list`)"
            ))
        } else {
            io(&path)(e)
        }
    })?;
    serde_json::from_str(&text).map_err(|e| Error::Corrupt {
        path: path.clone(),
        reason: e.to_string(),
    })
}

/// Every saved audience, by name.
pub fn list(ws: &Workspace) -> Result<Vec<Audience>> {
    let dir = audiences_dir(ws);
    let mut out = Vec::new();
    let Ok(entries) = std::fs::read_dir(&dir) else {
        return Ok(out);
    };
    for e in entries.flatten() {
        let p = e.path();
        if p.extension().is_some_and(|x| x == "json")
            && let Some(stem) = p.file_stem().and_then(|s| s.to_str())
        {
            out.push(load(ws, stem)?);
        }
    }
    out.sort_by(|a, b| a.name.cmp(&b.name));
    Ok(out)
}

/// Deletes a saved audience (its export records stay).
pub fn delete(ws: &Workspace, name: &str) -> Result<()> {
    load(ws, name)?;
    let _lock = ws.writer()?;
    let path = audiences_dir(ws).join(format!("{name}.json"));
    std::fs::remove_file(&path).map_err(io(&path))
}

/// The export log, oldest first.
pub fn exports(ws: &Workspace) -> Result<Vec<ExportRecord>> {
    let path = exports_log(ws);
    let Ok(text) = std::fs::read_to_string(&path) else {
        return Ok(Vec::new());
    };
    text.lines()
        .filter(|l| !l.trim().is_empty())
        .enumerate()
        .map(|(i, l)| {
            serde_json::from_str(l).map_err(|e| Error::Corrupt {
                path: path.clone(),
                reason: format!("line {}: {e}", i + 1),
            })
        })
        .collect()
}

/// Appends to the export log under the log's own lock (not the tables' writer lock: the log is
/// not a table, and a running `shoplens serve` holds the writer lock while its dashboard exports).
fn record(ws: &Workspace, rec: &ExportRecord) -> Result<()> {
    let lock_path = ws.root().join("exports.lock");
    let lock = std::fs::OpenOptions::new()
        .create(true)
        .truncate(false)
        .write(true)
        .open(&lock_path)
        .map_err(io(&lock_path))?;
    lock.lock().map_err(io(&lock_path))?;
    let path = exports_log(ws);
    let mut f = std::fs::OpenOptions::new()
        .create(true)
        .append(true)
        .open(&path)
        .map_err(io(&path))?;
    let mut line = serde_json::to_vec(rec).map_err(|e| Error::Internal(e.to_string()))?;
    line.push(b'\n');
    f.write_all(&line).map_err(io(&path))?;
    f.sync_all().map_err(io(&path))
}

/// The profile table: one row per customer (registered or buyer).
pub struct Profile {
    /// Rows.
    pub batch: RecordBatch,
    /// The as-of instant it was computed at.
    pub as_of: String,
}

fn schema() -> SchemaRef {
    Arc::new(Schema::new(
        FIELDS
            .iter()
            .map(|(n, t, _)| {
                let dt = match *t {
                    "integer" => DataType::Int64,
                    "number" => DataType::Float64,
                    _ => DataType::Utf8,
                };
                Field::new(*n, dt, *n != "user_id")
            })
            .collect::<Vec<_>>(),
    ))
}

fn empty_profile() -> RecordBatch {
    RecordBatch::new_empty(schema())
}

fn profile_context(batch: &RecordBatch) -> Result<SessionContext> {
    let ctx = SessionContext::new();
    let t = MemTable::try_new(batch.schema(), vec![vec![batch.clone()]])?;
    ctx.register_table("profile", Arc::new(t))?;
    Ok(ctx)
}

/// Rows of the profile matching a rule, highest CLV first, then by id.
async fn filter(ctx: &SessionContext, rule: &str) -> Result<Vec<RecordBatch>> {
    let df = ctx.table("profile").await?;
    let expr = ctx
        .parse_sql_expr(rule, df.schema())
        .map_err(|e| Error::Invalid(format!("rule `{rule}`: {e}")))?;
    let df = df
        .filter(expr)
        .map_err(|e| Error::Invalid(format!("rule `{rule}`: {e}")))?
        .sort(vec![
            col("clv").sort(false, false),
            col("user_id").sort(true, false),
        ])?;
    df.collect()
        .await
        .map_err(|e| Error::Invalid(format!("rule `{rule}`: {e}")))
}

#[derive(Default)]
struct Row {
    segment: Option<&'static str>,
    rfm: Option<String>,
    r: Option<i64>,
    f: Option<i64>,
    m: Option<i64>,
    cluster: Option<i64>,
    recency_days: Option<i64>,
    frequency: i64,
    monetary: f64,
    stage: Option<&'static str>,
    p_alive: Option<f64>,
    clv: Option<f64>,
    expected_interval_days: Option<f64>,
    overdue_ratio: Option<f64>,
    first_order_date: Option<String>,
    last_order_date: Option<String>,
    registered_date: Option<String>,
    acquisition_channel: Option<String>,
    member_tier: Option<String>,
    region: Option<String>,
    tags: Option<String>,
    top_category: Option<String>,
    top_category_share: Option<f64>,
}

/// Computes every customer's profile at the as-of instant.
pub async fn profile(ws: &Workspace, as_of: Option<i64>) -> Result<Profile> {
    let manifest = ws.manifest()?;
    let tz = calendar::zone(&manifest.settings);
    let as_of = query::as_of_or_newest(ws, as_of, "the workspace holds no data").await?;
    let mut rows: std::collections::BTreeMap<String, Row> = std::collections::BTreeMap::new();
    let (ctx, _) = query::context(ws).await?;
    let day = |c: &str| local_day(c, tz.name());
    let date = |d: f64| {
        (!d.is_nan())
            .then(|| date_of(d as i64).map(|x| x.to_string()))
            .flatten()
    };
    if manifest.tables.contains_key("customers") {
        let q = format!(
            "SELECT user_id, min(acquisition_channel), min(member_tier), min(region), min(tags), \
             CAST(min({}) AS DOUBLE) FROM customers WHERE user_id IS NOT NULL \
             AND (registered_at IS NULL OR registered_at <= {}) GROUP BY user_id",
            day("registered_at"),
            ts_literal(as_of)
        );
        for b in ctx.sql(&q).await?.collect().await? {
            let u = texts(b.column(0))?;
            let (ch, tier, reg, tags) = (
                texts(b.column(1))?,
                texts(b.column(2))?,
                texts(b.column(3))?,
                texts(b.column(4))?,
            );
            let rd = floats(b.column(5))?;
            for (i, u) in u.into_iter().enumerate() {
                if let Some(u) = u {
                    let r = rows.entry(u).or_default();
                    r.acquisition_channel = ch[i].clone();
                    r.member_tier = tier[i].clone();
                    r.region = reg[i].clone();
                    r.tags = tags[i].clone();
                    r.registered_date = date(rd[i]);
                    r.stage = Some(Stage::RegisteredNotPurchased.key());
                }
            }
        }
    }
    if ["order_items", "products"]
        .iter()
        .all(|t| manifest.tables.contains_key(*t))
    {
        let q = format!(
            "WITH s AS (SELECT o.user_id, p.category, \
               sum(CAST(i.quantity AS DOUBLE) * CAST(i.unit_price AS DOUBLE) - coalesce(CAST(i.discount AS DOUBLE), 0)) AS v \
               FROM orders o JOIN order_items i ON i.order_id = o.order_id JOIN products p ON p.item_id = i.item_id \
               WHERE o.{PAID} AND o.user_id IS NOT NULL AND o.ts <= {} AND p.category IS NOT NULL GROUP BY o.user_id, p.category), \
             r AS (SELECT user_id, category, v, sum(v) OVER (PARTITION BY user_id) AS total, \
               row_number() OVER (PARTITION BY user_id ORDER BY v DESC, category) AS k FROM s) \
             SELECT user_id, category, CASE WHEN total > 0 THEN v / total END FROM r WHERE k = 1",
            ts_literal(as_of)
        );
        for b in ctx.sql(&q).await?.collect().await? {
            let (u, c, s) = (
                texts(b.column(0))?,
                texts(b.column(1))?,
                floats(b.column(2))?,
            );
            for (i, u) in u.into_iter().enumerate() {
                if let Some(u) = u {
                    let r = rows.entry(u).or_default();
                    r.top_category = c[i].clone();
                    r.top_category_share = (!s[i].is_nan()).then_some(s[i]);
                }
            }
        }
    }
    let scored = rfm(
        ws,
        &RfmSpec {
            as_of: Some(as_of),
            clusters: Clusters::Auto,
            ..RfmSpec::default()
        },
    )
    .await;
    if let Ok(scored) = scored {
        for c in scored.customers {
            let r = rows.entry(c.user_id).or_default();
            r.segment = Some(c.segment.key());
            r.rfm = Some(c.rfm);
            (r.r, r.f, r.m) = (Some(c.r.into()), Some(c.f.into()), Some(c.m.into()));
            r.cluster = c.cluster.map(|k| k as i64);
            r.recency_days = Some(c.recency_days);
            r.frequency = c.frequency as i64;
            r.monetary = c.monetary;
        }
    }
    let risk = churn(
        ws,
        &ChurnSpec {
            rules: StageRules::default(),
            horizon_weeks: 52,
            as_of: Some(as_of),
        },
    )
    .await;
    if let Ok(risk) = risk {
        for c in risk.customers {
            let r = rows.entry(c.user_id).or_default();
            r.stage = Some(c.stage.key());
            r.p_alive = c.p_alive;
            r.clv = c.expected_value;
            r.expected_interval_days = c.expected_interval_days;
            r.overdue_ratio = c.overdue_ratio;
            r.first_order_date = c.first_order_date;
            r.last_order_date = c.last_order_date;
        }
    }
    // Columns in FIELDS order (RecordBatch::try_new checks each against the schema).
    let text = |f: fn(&Row) -> Option<&str>| -> ArrayRef {
        Arc::new(rows.values().map(f).collect::<StringArray>())
    };
    let int = |f: fn(&Row) -> Option<i64>| -> ArrayRef {
        Arc::new(rows.values().map(f).collect::<Int64Array>())
    };
    let num = |f: fn(&Row) -> Option<f64>| -> ArrayRef {
        Arc::new(rows.values().map(f).collect::<Float64Array>())
    };
    let columns: Vec<ArrayRef> = vec![
        Arc::new(StringArray::from_iter_values(rows.keys())),
        text(|r| r.segment),
        text(|r| r.rfm.as_deref()),
        int(|r| r.r),
        int(|r| r.f),
        int(|r| r.m),
        int(|r| r.cluster),
        int(|r| r.recency_days),
        int(|r| Some(r.frequency)),
        num(|r| Some(r.monetary)),
        text(|r| r.stage),
        num(|r| r.p_alive),
        num(|r| r.clv),
        num(|r| r.expected_interval_days),
        num(|r| r.overdue_ratio),
        text(|r| r.first_order_date.as_deref()),
        text(|r| r.last_order_date.as_deref()),
        text(|r| r.registered_date.as_deref()),
        text(|r| r.acquisition_channel.as_deref()),
        text(|r| r.member_tier.as_deref()),
        text(|r| r.region.as_deref()),
        text(|r| r.tags.as_deref()),
        text(|r| r.top_category.as_deref()),
        num(|r| r.top_category_share),
    ];
    let batch = RecordBatch::try_new(schema(), columns)?;
    Ok(Profile {
        batch,
        as_of: calendar::format_instant(as_of, &tz),
    })
}

/// The members of a rule at the as-of instant (every profile column).
pub async fn members(
    ws: &Workspace,
    rule: &str,
    as_of: Option<i64>,
) -> Result<(Profile, Vec<RecordBatch>)> {
    let p = profile(ws, as_of).await?;
    let ctx = profile_context(&p.batch)?;
    let rows = filter(&ctx, rule).await?;
    Ok((p, rows))
}

/// How many members of an already computed profile match a rule.
pub async fn members_of(p: &Profile, rule: &str) -> Result<usize> {
    let ctx = profile_context(&p.batch)?;
    Ok(filter(&ctx, rule).await?.iter().map(|b| b.num_rows()).sum())
}

/// Export formats.
#[derive(Debug, Clone, PartialEq)]
pub enum Destination {
    /// A CSV file (UTF-8 with BOM so spreadsheets read Chinese text; formula-safe).
    Csv(PathBuf),
    /// An Excel workbook (text cells are typed as text, never formulas).
    Xlsx(PathBuf),
    /// JSON lines.
    Jsonl(PathBuf),
    /// POST JSON to a URL, in batches of 10,000 members.
    Webhook(String),
}

impl Destination {
    /// By the file's extension (.csv, .xlsx, .jsonl/.ndjson).
    pub fn file(path: PathBuf) -> Result<Destination> {
        match path
            .extension()
            .and_then(|e| e.to_str())
            .map(str::to_ascii_lowercase)
            .as_deref()
        {
            Some("csv") => Ok(Destination::Csv(path)),
            Some("xlsx") => Ok(Destination::Xlsx(path)),
            Some("jsonl" | "ndjson") => Ok(Destination::Jsonl(path)),
            _ => Err(Error::Invalid(format!(
                "{}: export to a .csv, .xlsx or .jsonl file (or --webhook URL)",
                path.display()
            ))),
        }
    }
}

/// A text cell made safe for spreadsheets (OWASP's CSV injection rule): a value a spreadsheet
/// would read as a formula (starting with =, +, -, @, tab or carriage return) gets a leading
/// apostrophe, unless it is a number as written (`-12.5`, `+3`, `-4%`), which a spreadsheet reads
/// as that number and nothing else. Every CSV shoplens writes and every XLSX text cell pass
/// through here (`--csv-raw` turns it off for the command line's CSV).
pub fn formula_safe(s: &str) -> std::borrow::Cow<'_, str> {
    let risky = s.starts_with(['=', '+', '-', '@', '\t', '\r']);
    if risky && !plain_number(s) {
        std::borrow::Cow::Owned(format!("'{s}"))
    } else {
        std::borrow::Cow::Borrowed(s)
    }
}

/// A decimal number as written, optionally signed and ending in `%`: digits, one point, an
/// exponent; nothing a spreadsheet could evaluate (no letters, parentheses or operators inside).
fn plain_number(s: &str) -> bool {
    let body = s.strip_suffix('%').unwrap_or(s);
    let body = body.strip_prefix(['+', '-']).unwrap_or(body);
    !body.is_empty()
        && body.starts_with(|c: char| c.is_ascii_digit() || c == '.')
        && body
            .chars()
            .all(|c| c.is_ascii_digit() || matches!(c, '.' | 'e' | 'E' | '+' | '-'))
        && body.parse::<f64>().is_ok_and(f64::is_finite)
}

/// Cell values of a batch as JSON values, by column.
fn cells(batches: &[RecordBatch]) -> Result<Vec<Vec<serde_json::Value>>> {
    let mut rows = Vec::new();
    for b in batches {
        let cols: Vec<Vec<serde_json::Value>> = b
            .columns()
            .iter()
            .map(|c| -> Result<Vec<serde_json::Value>> {
                Ok(match c.data_type() {
                    DataType::Int64 => ints(c)?
                        .into_iter()
                        .enumerate()
                        .map(|(i, v)| {
                            if c.is_null(i) {
                                serde_json::Value::Null
                            } else {
                                serde_json::Value::from(v)
                            }
                        })
                        .collect(),
                    DataType::Float64 => floats(c)?
                        .into_iter()
                        .zip(0..)
                        .map(|(v, i)| {
                            if c.is_null(i) {
                                serde_json::Value::Null
                            } else {
                                serde_json::Value::from(v)
                            }
                        })
                        .collect(),
                    _ => {
                        let s = strings(c)?;
                        (0..s.len())
                            .map(|i| {
                                if s.is_null(i) {
                                    serde_json::Value::Null
                                } else {
                                    serde_json::Value::from(s.value(i))
                                }
                            })
                            .collect()
                    }
                })
            })
            .collect::<Result<_>>()?;
        for i in 0..b.num_rows() {
            rows.push(cols.iter().map(|c| c[i].clone()).collect());
        }
    }
    Ok(rows)
}

fn xlsx_error(path: &Path) -> impl Fn(rust_xlsxwriter::XlsxError) -> Error + '_ {
    move |e| Error::Invalid(format!("{}: {e}", path.display()))
}

/// Exports an audience's current members and records the export. Returns the record.
pub async fn export(
    ws: &Workspace,
    name: &str,
    to: &Destination,
    as_of: Option<i64>,
) -> Result<ExportRecord> {
    let a = load(ws, name)?;
    let (p, batches) = members(ws, &a.rule, as_of).await?;
    let names: Vec<&str> = FIELDS.iter().map(|f| f.0).collect();
    let rows = cells(&batches)?;
    let text_cell = |v: &serde_json::Value| match v {
        serde_json::Value::Null => String::new(),
        serde_json::Value::String(s) => formula_safe(s).into_owned(),
        other => other.to_string(),
    };
    let (format, destination) = match to {
        Destination::Csv(path) => {
            let mut buf: Vec<u8> = b"\xEF\xBB\xBF".to_vec();
            {
                let mut w = csv::Writer::from_writer(&mut buf);
                w.write_record(&names)
                    .map_err(|e| Error::Internal(e.to_string()))?;
                for r in &rows {
                    w.write_record(r.iter().map(text_cell))
                        .map_err(|e| Error::Internal(e.to_string()))?;
                }
                w.flush().map_err(io(path))?;
            }
            write_atomic(path, &buf)?;
            ("csv", path.display().to_string())
        }
        Destination::Jsonl(path) => {
            let mut buf = Vec::new();
            for r in &rows {
                let obj: serde_json::Map<String, serde_json::Value> = names
                    .iter()
                    .map(|n| n.to_string())
                    .zip(r.iter().cloned())
                    .collect();
                serde_json::to_writer(&mut buf, &obj)
                    .map_err(|e| Error::Internal(e.to_string()))?;
                buf.push(b'\n');
            }
            write_atomic(path, &buf)?;
            ("jsonl", path.display().to_string())
        }
        Destination::Xlsx(path) => {
            let mut wb = rust_xlsxwriter::Workbook::new();
            let sheet = wb.add_worksheet();
            let e = xlsx_error(path);
            // Excel sheet names hold at most 31 characters.
            let sheet_name: String = name.chars().take(31).collect();
            sheet.set_name(&sheet_name).map_err(&e)?;
            let bold = rust_xlsxwriter::Format::new().set_bold();
            for (j, n) in names.iter().enumerate() {
                sheet
                    .write_string_with_format(0, j as u16, *n, &bold)
                    .map_err(&e)?;
            }
            for (i, r) in rows.iter().enumerate() {
                let row = (i + 1) as u32;
                for (j, v) in r.iter().enumerate() {
                    match v {
                        serde_json::Value::Number(x) => {
                            sheet
                                .write_number(row, j as u16, x.as_f64().unwrap_or(f64::NAN))
                                .map_err(&e)?;
                        }
                        serde_json::Value::String(s) => {
                            sheet
                                .write_string(row, j as u16, formula_safe(s))
                                .map_err(&e)?;
                        }
                        _ => {}
                    }
                }
            }
            let bytes = wb.save_to_buffer().map_err(&e)?;
            write_atomic(path, &bytes)?;
            ("xlsx", path.display().to_string())
        }
        Destination::Webhook(url) => {
            let members: Vec<serde_json::Value> = rows
                .iter()
                .map(|r| {
                    serde_json::Value::Object(
                        names
                            .iter()
                            .map(|n| n.to_string())
                            .zip(r.iter().cloned())
                            .collect(),
                    )
                })
                .collect();
            let batches = members.len().div_ceil(10_000).max(1);
            for (i, chunk) in members
                .chunks(10_000)
                .chain(std::iter::once(&[][..]))
                .take(batches)
                .enumerate()
            {
                let body = serde_json::json!({
                    "audience": name, "rule": a.rule, "data_as_of": p.as_of,
                    "customers": members.len(), "batch": i + 1, "batches": batches, "members": chunk,
                });
                ureq::post(url)
                    .header("content-type", "application/json")
                    .send(body.to_string())
                    .map_err(|e| Error::Invalid(format!("webhook {url}: {e}")))?;
            }
            ("webhook", url.clone())
        }
    };
    let mut ids: Vec<String> = rows
        .iter()
        .filter_map(|r| r.first().and_then(|v| v.as_str()).map(str::to_string))
        .collect();
    ids.sort();
    let rec = ExportRecord {
        audience: name.into(),
        rule: a.rule.clone(),
        format: format.into(),
        destination,
        customers: rows.len() as u64,
        exported_at: now(),
        data_as_of: p.as_of,
        members_digest: blake3::hash(ids.join("\n").as_bytes()).to_hex().to_string(),
    };
    record(ws, &rec)?;
    Ok(rec)
}
