//! The JSON API: `GET /api/<command words>?<param>=<value>…` answers what
//! `shoplens --format json <command words> --<param> <value>…` prints. Each endpoint takes its
//! analysis's parameters type (`…Params`: the command's flags, same names and defaults) from the
//! query string, calls the engine on the served workspace, and answers the engine's typed
//! report. Only read-only analyses of the workspace are served.

use std::sync::Arc;
use std::time::Instant;

use axum::extract::{Path, RawQuery, State};
use axum::http::header;
use axum::response::{IntoResponse, Response};
use chrono_tz::Tz;
use serde::Serialize;
use serde::de::DeserializeOwned;
use serde_json::{Map, Value, json};
use shoplens_engine::customers::audiences::{self, ShowParams};
use shoplens_engine::customers::clv::{self, ClvParams};
use shoplens_engine::customers::recommend::{
    EvaluateParams, ExportListsParams, ItemParams, TagParams, UserParams,
};
use shoplens_engine::customers::rfm::{self, RfmParams};
use shoplens_engine::customers::stages::{self, ChurnParams, StagesParams};
use shoplens_engine::goods::baskets::{self, BasketParams};
use shoplens_engine::goods::{self, InventoryParams, ProductParams, ReturnsParams};
use shoplens_engine::people::activity::{self, ActivityParams};
use shoplens_engine::people::cohorts::{self, CohortParams};
use shoplens_engine::people::funnel::{self, FunnelParams};
use shoplens_engine::people::lifecycle::{self, LifecycleParams};
use shoplens_engine::people::paths::{self, PathParams};
use shoplens_engine::people::repurchase::{self, RepurchaseParams};
use shoplens_engine::practice::experiments::{AnalyzeParams, ListParams, PowerParams};
use shoplens_engine::practice::kpis::{self, KpiParams};
use shoplens_engine::query::{self, QuarantineParams, TablesParams};
use shoplens_engine::traffic::{self, CampaignParams, ChannelParams};
use shoplens_engine::{Workspace, calendar};

use crate::{ApiError, ApiErrorCode, App};

/// What every analysis takes beside its own parameters: the workspace and its zone, and the
/// as-of instant (`as_of`; `lang` is accepted and changes nothing, as JSON carries both).
pub(crate) struct Scope {
    pub(crate) ws: Workspace,
    pub(crate) tz: Tz,
    pub(crate) as_of: Option<i64>,
}

/// An analysis the API serves, implemented by its parameters type.
pub(crate) trait Analysis:
    clap::Args + clap::FromArgMatches + Serialize + DeserializeOwned + Default + Send + 'static
{
    /// The command's words, which are the path after /api/.
    const WORDS: &'static [&'static str];
    /// What it answers (`--format json`).
    type Report: Serialize + schemars::JsonSchema;
    /// Parameters that cannot go together (answered 400, as the command line's parser refuses
    /// them).
    fn conflict(&self) -> Option<String> {
        None
    }
    /// Runs the analysis.
    async fn run(self, s: Scope) -> shoplens_engine::Result<Self::Report>;
}

/// One endpoint: its words, its parameters described, and how it runs.
#[derive(Debug, Clone)]
pub struct TypedEndpoint {
    /// The command's words (`["rfm"]`), which are the path after /api/.
    pub words: &'static [&'static str],
    /// The parameters' defaults, as JSON.
    pub defaults: Value,
    /// A query string (without globals) read as the endpoint reads it, back as JSON.
    pub parse: fn(&str) -> Result<Value, String>,
    /// The parameters as flags (names, help, defaults, choices): the OpenAPI parameters.
    pub flags: fn() -> clap::Command,
    /// Reads the endpoint's own query and runs it (on a thread that may block on the runtime).
    run: fn(Scope, &str) -> Result<Vec<u8>, ApiError>,
    /// The report's JSON Schema (a reference into the generator's definitions).
    report: fn(&mut schemars::SchemaGenerator) -> schemars::Schema,
}

fn bad(m: impl ToString) -> ApiError {
    ApiError::new(ApiErrorCode::InvalidParameter, m.to_string())
}

/// An engine error as the API answers it: 422 `analysis_failed` with the engine's message.
pub(crate) fn failed(e: shoplens_engine::Error) -> ApiError {
    ApiError::new(ApiErrorCode::AnalysisFailed, e.to_string())
}

fn run_blocking<A: Analysis>(scope: Scope, own: &str) -> Result<Vec<u8>, ApiError> {
    let p: A = serde_urlencoded::from_str(own).map_err(bad)?;
    let report = run_parsed(scope, p)?;
    serde_json::to_vec(&report).map_err(|e| ApiError::new(ApiErrorCode::Internal, e.to_string()))
}

/// Runs parameters already read, refusing those that cannot go together.
fn run_parsed<A: Analysis>(scope: Scope, p: A) -> Result<A::Report, ApiError> {
    if let Some(c) = p.conflict() {
        return Err(bad(c));
    }
    tokio::runtime::Handle::current()
        .block_on(p.run(scope))
        .map_err(failed)
}

fn endpoint<A: Analysis>() -> TypedEndpoint {
    TypedEndpoint {
        words: A::WORDS,
        defaults: serde_json::to_value(A::default()).unwrap_or_default(),
        parse: |q| {
            let p: A = serde_urlencoded::from_str(q).map_err(|e| e.to_string())?;
            serde_json::to_value(p).map_err(|e| e.to_string())
        },
        flags: || A::augment_args(clap::Command::new(A::WORDS[A::WORDS.len() - 1])),
        run: run_blocking::<A>,
        report: |g| g.subschema_for::<A::Report>(),
    }
}

/// Every endpoint of the API, described once per process (each description builds its
/// parameters' defaults from their flags).
pub fn typed_endpoints() -> &'static [TypedEndpoint] {
    static ENDPOINTS: std::sync::LazyLock<Vec<TypedEndpoint>> = std::sync::LazyLock::new(endpoints);
    &ENDPOINTS
}

fn endpoints() -> Vec<TypedEndpoint> {
    vec![
        endpoint::<TablesParams>(),
        endpoint::<KpiParams>(),
        endpoint::<QuarantineParams>(),
        endpoint::<FunnelParams>(),
        endpoint::<PathParams>(),
        endpoint::<ActivityParams>(),
        endpoint::<RepurchaseParams>(),
        endpoint::<CohortParams>(),
        endpoint::<LifecycleParams>(),
        endpoint::<RfmParams>(),
        endpoint::<ClvParams>(),
        endpoint::<ChurnParams>(),
        endpoint::<StagesParams>(),
        endpoint::<ProductParams>(),
        endpoint::<ReturnsParams>(),
        endpoint::<InventoryParams>(),
        endpoint::<ChannelParams>(),
        endpoint::<CampaignParams>(),
        endpoint::<BasketParams>(),
        endpoint::<EvaluateParams>(),
        endpoint::<UserParams>(),
        endpoint::<ItemParams>(),
        endpoint::<TagParams>(),
        endpoint::<ExportListsParams>(),
        endpoint::<ListParams>(),
        endpoint::<AnalyzeParams>(),
        endpoint::<PowerParams>(),
        endpoint::<Fields>(),
        endpoint::<AudienceList>(),
        endpoint::<ShowParams>(),
        endpoint::<Exports>(),
    ]
}

/// The endpoint of a path's words.
fn find(words: &[&str]) -> Option<&'static TypedEndpoint> {
    typed_endpoints().iter().find(|e| e.words == words)
}

/// The query string split into the scope (global parameters) and the analysis's own query. A
/// key given more than once is one comma-separated list, as the command line's lists are.
fn split_query(ws: &Workspace, query: &str) -> Result<(Scope, String), ApiError> {
    let pairs: Vec<(String, String)> = serde_urlencoded::from_str(query).map_err(bad)?;
    let mut as_of = None;
    let mut own: Vec<(String, String)> = Vec::with_capacity(pairs.len());
    for (k, v) in pairs {
        match k.as_str() {
            "as_of" => as_of = Some(v),
            "lang" => {}
            _ => match own.iter_mut().find(|(x, _)| *x == k) {
                Some((_, list)) => {
                    list.push(',');
                    list.push_str(&v);
                }
                None => own.push((k, v)),
            },
        }
    }
    let own = serde_urlencoded::to_string(&own).map_err(bad)?;
    let tz = calendar::zone(&ws.manifest().map_err(failed)?.settings);
    let as_of = calendar::as_of(as_of.as_deref(), &tz).map_err(failed)?;
    Ok((
        Scope {
            ws: ws.clone(),
            tz,
            as_of,
        },
        own,
    ))
}

/// Runs the endpoint `words` with the query `query` (global parameters included) on `ws`, from
/// a thread that may block on the runtime: the report's JSON.
pub(crate) fn call(ws: &Workspace, words: &[&str], query: &str) -> Result<Vec<u8>, ApiError> {
    let e = find(words).ok_or_else(|| {
        ApiError::new(
            ApiErrorCode::NotFound,
            format!(
                "no endpoint /api/{} (see /api/openapi.json)",
                words.join("/")
            ),
        )
    })?;
    let (scope, own) = split_query(ws, query)?;
    (e.run)(scope, &own)
}

/// Runs the analysis `params` on `ws` as of the day `as_of` (default: the newest data), from a
/// thread that may block on the runtime: its typed report (what its endpoint serialises).
pub(crate) fn call_typed<A: Analysis>(
    ws: &Workspace,
    params: A,
    as_of: Option<&str>,
) -> Result<A::Report, ApiError> {
    let globals = as_of.map_or(String::new(), |d| {
        format!("as_of={}", crate::web::percent(d))
    });
    let (scope, _) = split_query(ws, &globals)?;
    run_parsed(scope, params)
}

/// `GET /api/{*path}`: counted and logged as every API call is. The analysis and its
/// serialisation run on a blocking thread, so a long one never holds up the collector's
/// requests.
pub(crate) async fn api_get(
    State(app): State<Arc<App>>,
    Path(path): Path<String>,
    RawQuery(query): RawQuery,
) -> Response {
    if !app.cfg.api {
        return crate::no_api();
    }
    let started = Instant::now();
    let ws = app.ws.clone();
    let name = path.clone();
    let r = tokio::task::spawn_blocking(move || {
        let words: Vec<&str> = path.split('/').filter(|w| !w.is_empty()).collect();
        call(&ws, &words, query.as_deref().unwrap_or(""))
    })
    .await
    .unwrap_or_else(|e| Err(ApiError::new(ApiErrorCode::Internal, e.to_string())));
    let resp = match r {
        Ok(body) => ([(header::CONTENT_TYPE, "application/json")], body).into_response(),
        Err(e) => e.into_response(),
    };
    let status = resp.status().as_u16();
    app.metrics.request("api", status);
    tracing::info!(endpoint = %name, status, ms = started.elapsed().as_secs_f64() * 1000.0, "api");
    resp
}

/// A parameter's name in the API: the argument's id (snake case, as in the JSON).
fn param_name(a: &clap::Arg) -> String {
    a.get_id().as_str().replace('-', "_")
}

/// The OpenAPI 3 document of every endpoint, its parameters read from the parameters types.
pub(crate) fn openapi() -> Value {
    let mut paths = Map::new();
    let mut schemas = schemars::generate::SchemaSettings::openapi3().into_generator();
    for e in typed_endpoints() {
        let report = (e.report)(&mut schemas);
        let cmd = (e.flags)();
        let mut parameters: Vec<Value> = cmd
            .get_arguments()
            .filter(|a| a.get_id() != "help")
            .map(|a| {
                let name = param_name(a);
                let mut schema = match e.defaults.get(&name) {
                    Some(Value::Bool(_)) => json!({"type": "boolean"}),
                    Some(Value::Number(n)) if n.is_f64() => json!({"type": "number"}),
                    Some(Value::Number(_)) => json!({"type": "integer"}),
                    Some(Value::Array(_)) => {
                        json!({"type": "string", "description": "comma-separated, or the key repeated"})
                    }
                    _ => json!({"type": "string"}),
                };
                let values: Vec<String> = a
                    .get_possible_values()
                    .iter()
                    .map(|p| p.get_name().to_string())
                    .collect();
                if !values.is_empty() && !matches!(e.defaults.get(&name), Some(Value::Bool(_))) {
                    schema["enum"] = json!(values);
                }
                if let Some(d) = e.defaults.get(&name).filter(|d| !d.is_null()) {
                    schema["default"] = d.clone();
                }
                json!({
                    "name": name,
                    "in": "query",
                    "required": a.is_required_set() && a.get_default_values().is_empty(),
                    "description": a.get_help().map(ToString::to_string).unwrap_or_default(),
                    "schema": schema,
                })
            })
            .collect();
        parameters.push(
            json!({"name": "as_of", "in": "query", "required": false, "schema": {"type": "string"},
            "description": "Analyse as of this date or instant (default: the newest data)."}),
        );
        parameters.push(
            json!({"name": "lang", "in": "query", "required": false, "schema": {"type": "string"},
            "description": "en or zh-CN (JSON carries both)."}),
        );
        paths.insert(
            format!("/api/{}", e.words.join("/")),
            json!({"get": {
                "summary": format!("shoplens {}", e.words.join(" ")),
                "description": format!("The JSON of `shoplens --format json {}`; parameters are its flags (snake case) and arguments.", e.words.join(" ")),
                "parameters": parameters,
                "responses": {
                    "200": {"description": "The command's JSON output.", "content": {"application/json": {"schema": report}}},
                    "400": {"$ref": "#/components/responses/Error"},
                    "401": {"$ref": "#/components/responses/Error"},
                    "404": {"$ref": "#/components/responses/Error"},
                    "422": {"$ref": "#/components/responses/Error"}
                }
            }}),
        );
    }
    let codes: Vec<&str> = ApiErrorCode::ALL.iter().map(|c| c.code()).collect();
    let mut schemas = schemas.take_definitions(true);
    schemas.insert(
        "Error".into(),
        json!({"type": "object", "properties": {
            "success": {"type": "boolean"},
            "error": {"type": "string", "enum": codes},
            "message": {"type": "string"}}}),
    );
    json!({
        "openapi": "3.0.3",
        "info": {"title": "shoplens API", "version": env!("CARGO_PKG_VERSION"),
                 "description": "Every read-only analysis of the served workspace, with the command line's parameters and JSON fields. Authenticate with the read token as a bearer token."},
        "security": [{"bearer": []}],
        "paths": paths,
        "components": {
            "securitySchemes": {"bearer": {"type": "http", "scheme": "bearer"}},
            "schemas": schemas,
            "responses": {"Error": {"description": "An error with a stable code.", "content": {"application/json": {"schema": {"$ref": "#/components/schemas/Error"}}}}}
        }
    })
}

// ---------- the analyses ----------

/// `audience fields`: no parameters.
#[derive(Debug, Clone, Default, Serialize, serde::Deserialize, clap::Args)]
#[serde(deny_unknown_fields)]
struct Fields {}

/// `audience list`: no parameters.
#[derive(Debug, Clone, Default, Serialize, serde::Deserialize, clap::Args)]
#[serde(deny_unknown_fields)]
struct AudienceList {}

/// `audience exports`: no parameters.
#[derive(Debug, Clone, Default, Serialize, serde::Deserialize, clap::Args)]
#[serde(deny_unknown_fields)]
struct Exports {}

impl Analysis for TablesParams {
    const WORDS: &'static [&'static str] = &["tables"];
    type Report = query::TablesReport;
    async fn run(self, s: Scope) -> shoplens_engine::Result<Self::Report> {
        query::tables(&s.ws, &s.tz, s.as_of).await
    }
}

impl Analysis for KpiParams {
    const WORDS: &'static [&'static str] = &["kpis"];
    type Report = kpis::KpiReport;
    async fn run(self, s: Scope) -> shoplens_engine::Result<Self::Report> {
        kpis::kpis(&s.ws, &self.spec(s.as_of)).await
    }
}

impl Analysis for QuarantineParams {
    const WORDS: &'static [&'static str] = &["quarantine"];
    type Report = query::Rows;
    async fn run(self, s: Scope) -> shoplens_engine::Result<Self::Report> {
        QuarantineParams::run(&self, &s.ws).await
    }
}

impl Analysis for FunnelParams {
    const WORDS: &'static [&'static str] = &["funnel"];
    type Report = funnel::FunnelReport;
    async fn run(self, s: Scope) -> shoplens_engine::Result<Self::Report> {
        funnel::funnel(&s.ws, &self.spec(&s.tz, s.as_of)?).await
    }
}

impl Analysis for PathParams {
    const WORDS: &'static [&'static str] = &["paths"];
    type Report = paths::PathReport;
    fn conflict(&self) -> Option<String> {
        PathParams::conflict(self)
    }
    async fn run(self, s: Scope) -> shoplens_engine::Result<Self::Report> {
        paths::paths(&s.ws, &self.spec(&s.tz, s.as_of)?).await
    }
}

impl Analysis for ActivityParams {
    const WORDS: &'static [&'static str] = &["activity"];
    type Report = activity::ActivityReport;
    async fn run(self, s: Scope) -> shoplens_engine::Result<Self::Report> {
        activity::activity(&s.ws, &self.spec(&s.tz, s.as_of)?).await
    }
}

impl Analysis for RepurchaseParams {
    const WORDS: &'static [&'static str] = &["repurchase"];
    type Report = repurchase::RepurchaseReport;
    async fn run(self, s: Scope) -> shoplens_engine::Result<Self::Report> {
        repurchase::repurchase(&s.ws, &self.spec(&s.tz, s.as_of)?).await
    }
}

impl Analysis for CohortParams {
    const WORDS: &'static [&'static str] = &["cohorts"];
    type Report = cohorts::CohortReport;
    async fn run(self, s: Scope) -> shoplens_engine::Result<Self::Report> {
        cohorts::cohorts(&s.ws, &self.spec(&s.tz, s.as_of)?).await
    }
}

impl Analysis for LifecycleParams {
    const WORDS: &'static [&'static str] = &["lifecycle"];
    type Report = lifecycle::LifecycleReport;
    async fn run(self, s: Scope) -> shoplens_engine::Result<Self::Report> {
        lifecycle::lifecycle(&s.ws, &self.spec(&s.tz, s.as_of)?).await
    }
}

impl Analysis for RfmParams {
    const WORDS: &'static [&'static str] = &["rfm"];
    type Report = rfm::RfmReport;
    async fn run(self, s: Scope) -> shoplens_engine::Result<Self::Report> {
        rfm::rfm(&s.ws, &self.spec(&s.tz, s.as_of)?).await
    }
}

impl Analysis for ClvParams {
    const WORDS: &'static [&'static str] = &["clv"];
    type Report = clv::ClvReport;
    async fn run(self, s: Scope) -> shoplens_engine::Result<Self::Report> {
        clv::clv(&s.ws, &self.spec(s.as_of)?).await
    }
}

impl Analysis for ChurnParams {
    const WORDS: &'static [&'static str] = &["churn"];
    type Report = stages::ChurnReport;
    async fn run(self, s: Scope) -> shoplens_engine::Result<Self::Report> {
        stages::churn(&s.ws, &self.spec(s.as_of)).await
    }
}

impl Analysis for StagesParams {
    const WORDS: &'static [&'static str] = &["stages"];
    type Report = stages::StagesReport;
    async fn run(self, s: Scope) -> shoplens_engine::Result<Self::Report> {
        stages::stages(&s.ws, &self.spec(&s.tz, s.as_of)?).await
    }
}

impl Analysis for ProductParams {
    const WORDS: &'static [&'static str] = &["products"];
    type Report = goods::MatrixReport;
    async fn run(self, s: Scope) -> shoplens_engine::Result<Self::Report> {
        goods::product_matrix(&s.ws, &self.spec(&s.tz)?).await
    }
}

impl Analysis for ReturnsParams {
    const WORDS: &'static [&'static str] = &["returns"];
    type Report = goods::ReturnsReport;
    async fn run(self, s: Scope) -> shoplens_engine::Result<Self::Report> {
        goods::returns(&s.ws, &self.spec(&s.tz)?).await
    }
}

impl Analysis for InventoryParams {
    const WORDS: &'static [&'static str] = &["inventory"];
    type Report = goods::InventoryReport;
    async fn run(self, s: Scope) -> shoplens_engine::Result<Self::Report> {
        goods::inventory(&s.ws, &self.spec()?).await
    }
}

impl Analysis for ChannelParams {
    const WORDS: &'static [&'static str] = &["channels"];
    type Report = traffic::ChannelReport;
    async fn run(self, s: Scope) -> shoplens_engine::Result<Self::Report> {
        traffic::channels(&s.ws, &self.spec(&s.tz, s.as_of)?).await
    }
}

impl Analysis for CampaignParams {
    const WORDS: &'static [&'static str] = &["campaigns"];
    type Report = traffic::CampaignReport;
    async fn run(self, s: Scope) -> shoplens_engine::Result<Self::Report> {
        traffic::campaigns(&s.ws).await
    }
}

impl Analysis for BasketParams {
    const WORDS: &'static [&'static str] = &["basket"];
    type Report = baskets::BasketReport;
    async fn run(self, s: Scope) -> shoplens_engine::Result<Self::Report> {
        baskets::basket(&s.ws, &self.spec(&s.tz)?).await
    }
}

impl Analysis for EvaluateParams {
    const WORDS: &'static [&'static str] = &["recommend", "evaluate"];
    type Report = shoplens_engine::customers::recommend::EvaluationReport;
    async fn run(self, s: Scope) -> shoplens_engine::Result<Self::Report> {
        EvaluateParams::run(&self, &s.ws, &s.tz).await
    }
}

impl Analysis for UserParams {
    const WORDS: &'static [&'static str] = &["recommend", "user"];
    type Report = shoplens_engine::customers::recommend::UserListsReport;
    async fn run(self, s: Scope) -> shoplens_engine::Result<Self::Report> {
        UserParams::run(&self, &s.ws).await
    }
}

impl Analysis for ItemParams {
    const WORDS: &'static [&'static str] = &["recommend", "item"];
    type Report = shoplens_engine::customers::recommend::SimilarItemsReport;
    async fn run(self, s: Scope) -> shoplens_engine::Result<Self::Report> {
        ItemParams::run(&self, &s.ws).await
    }
}

impl Analysis for TagParams {
    const WORDS: &'static [&'static str] = &["recommend", "tags"];
    type Report = shoplens_engine::customers::recommend::TagsReport;
    async fn run(self, s: Scope) -> shoplens_engine::Result<Self::Report> {
        TagParams::run(&self, &s.ws).await
    }
}

impl Analysis for ExportListsParams {
    const WORDS: &'static [&'static str] = &["recommend", "export"];
    type Report = shoplens_engine::customers::recommend::AudienceListsReport;
    async fn run(self, s: Scope) -> shoplens_engine::Result<Self::Report> {
        ExportListsParams::run(&self, &s.ws, s.as_of).await
    }
}

impl Analysis for ListParams {
    const WORDS: &'static [&'static str] = &["experiment", "list"];
    type Report = shoplens_engine::practice::experiments::ExperimentList;
    async fn run(self, s: Scope) -> shoplens_engine::Result<Self::Report> {
        ListParams::run(&self, &s.ws, &s.tz, s.as_of).await
    }
}

impl Analysis for AnalyzeParams {
    const WORDS: &'static [&'static str] = &["experiment", "analyze"];
    type Report = shoplens_engine::practice::experiments::ExperimentReport;
    async fn run(self, s: Scope) -> shoplens_engine::Result<Self::Report> {
        AnalyzeParams::run(&self, &s.ws).await
    }
}

impl Analysis for PowerParams {
    const WORDS: &'static [&'static str] = &["experiment", "power"];
    type Report = shoplens_engine::practice::experiments::PowerReport;
    fn conflict(&self) -> Option<String> {
        PowerParams::conflict(self)
    }
    async fn run(self, _: Scope) -> shoplens_engine::Result<Self::Report> {
        PowerParams::run(&self)
    }
}

impl Analysis for Fields {
    const WORDS: &'static [&'static str] = &["audience", "fields"];
    type Report = audiences::FieldsReport;
    async fn run(self, _: Scope) -> shoplens_engine::Result<Self::Report> {
        Ok(audiences::fields())
    }
}

impl Analysis for AudienceList {
    const WORDS: &'static [&'static str] = &["audience", "list"];
    type Report = audiences::AudienceList;
    async fn run(self, s: Scope) -> shoplens_engine::Result<Self::Report> {
        audiences::list_sized(&s.ws, s.as_of).await
    }
}

impl Analysis for ShowParams {
    const WORDS: &'static [&'static str] = &["audience", "show"];
    type Report = audiences::AudienceMembers;
    async fn run(self, s: Scope) -> shoplens_engine::Result<Self::Report> {
        ShowParams::run(&self, &s.ws, &s.tz, s.as_of).await
    }
}

impl Analysis for Exports {
    const WORDS: &'static [&'static str] = &["audience", "exports"];
    type Report = audiences::ExportLog;
    async fn run(self, s: Scope) -> shoplens_engine::Result<Self::Report> {
        audiences::export_log(&s.ws)
    }
}
