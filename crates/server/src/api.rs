//! The JSON API's typed endpoints: each takes its analysis's parameters (`…Params`, the same
//! names and defaults as the command line's flags) from the query string, calls the engine
//! directly on the served workspace, and answers the engine's typed report, which is what
//! `--format json` prints. Endpoints not typed yet still run through the [`crate::Api`] runner.

use std::sync::Arc;
use std::time::Instant;

use axum::Router;
use axum::extract::{RawQuery, State};
use axum::http::header;
use axum::response::{IntoResponse, Response};
use axum::routing::get;
use chrono_tz::Tz;
use serde::Serialize;
use serde::de::DeserializeOwned;
use shoplens_engine::customers::clv::{self, ClvParams};
use shoplens_engine::customers::rfm::{self, RfmParams};
use shoplens_engine::goods::{self, InventoryParams, ReturnsParams};
use shoplens_engine::people::activity::{self, ActivityParams};
use shoplens_engine::people::cohorts::{self, CohortParams};
use shoplens_engine::people::lifecycle::{self, LifecycleParams};
use shoplens_engine::people::repurchase::{self, RepurchaseParams};
use shoplens_engine::practice::kpis::{self, KpiParams};
use shoplens_engine::{Workspace, calendar};

use crate::{ApiError, ApiErrorCode, App};

/// One typed endpoint, described for a test of the binary that checks its parameters are its
/// command's flags: same names, and the flags' defaults read as the API reads a query give the
/// parameters' defaults.
#[derive(Debug, Clone)]
pub struct TypedEndpoint {
    /// The command's words (`["rfm"]`), which are the path after /api/.
    pub words: &'static [&'static str],
    /// The parameters' defaults, as JSON.
    pub defaults: serde_json::Value,
    /// A query string (without globals) read as the endpoint reads it, back as JSON.
    pub parse: fn(&str) -> Result<serde_json::Value, String>,
}

fn described<P: Default + Serialize + DeserializeOwned>(
    words: &'static [&'static str],
) -> TypedEndpoint {
    TypedEndpoint {
        words,
        defaults: serde_json::to_value(P::default()).unwrap_or_default(),
        parse: |q| {
            let p: P = serde_urlencoded::from_str(q).map_err(|e| e.to_string())?;
            serde_json::to_value(p).map_err(|e| e.to_string())
        },
    }
}

/// Every typed endpoint.
pub fn typed_endpoints() -> Vec<TypedEndpoint> {
    vec![
        described::<KpiParams>(&["kpis"]),
        described::<ActivityParams>(&["activity"]),
        described::<CohortParams>(&["cohorts"]),
        described::<LifecycleParams>(&["lifecycle"]),
        described::<RepurchaseParams>(&["repurchase"]),
        described::<RfmParams>(&["rfm"]),
        described::<ClvParams>(&["clv"]),
        described::<ReturnsParams>(&["returns"]),
        described::<InventoryParams>(&["inventory"]),
    ]
}

/// The typed endpoints (behind the read token, like every route under /api).
pub(crate) fn routes() -> Router<Arc<App>> {
    Router::new()
        .route("/api/kpis", get(kpis_endpoint))
        .route("/api/activity", get(activity_endpoint))
        .route("/api/cohorts", get(cohorts_endpoint))
        .route("/api/lifecycle", get(lifecycle_endpoint))
        .route("/api/repurchase", get(repurchase_endpoint))
        .route("/api/rfm", get(rfm_endpoint))
        .route("/api/clv", get(clv_endpoint))
        .route("/api/returns", get(returns_endpoint))
        .route("/api/inventory", get(inventory_endpoint))
}

/// What every analysis takes beside its own parameters: the workspace and its zone, and the
/// as-of instant (`as_of`; `lang` is accepted and changes nothing, as JSON carries both).
pub(crate) struct Scope {
    pub(crate) ws: Workspace,
    pub(crate) tz: Tz,
    pub(crate) as_of: Option<i64>,
}

/// The query string split into the global parameters and the analysis's own.
fn split_query<P: DeserializeOwned>(
    ws: &Workspace,
    query: Option<&str>,
) -> Result<(Scope, P), ApiError> {
    let bad = |m: String| ApiError::new(ApiErrorCode::InvalidParameter, m);
    let pairs: Vec<(String, String)> =
        serde_urlencoded::from_str(query.unwrap_or("")).map_err(|e| bad(e.to_string()))?;
    let mut as_of = None;
    let mut own = Vec::with_capacity(pairs.len());
    for (k, v) in pairs {
        match k.as_str() {
            "as_of" => as_of = Some(v),
            "lang" => {}
            _ => own.push((k, v)),
        }
    }
    let own = serde_urlencoded::to_string(&own).map_err(|e| bad(e.to_string()))?;
    let params: P = serde_urlencoded::from_str(&own).map_err(|e| bad(e.to_string()))?;
    let failed =
        |e: shoplens_engine::Error| ApiError::new(ApiErrorCode::AnalysisFailed, e.to_string());
    let tz = calendar::zone(&ws.manifest().map_err(failed)?.settings);
    let as_of = calendar::as_of(as_of.as_deref(), &tz).map_err(failed)?;
    Ok((
        Scope {
            ws: ws.clone(),
            tz,
            as_of,
        },
        params,
    ))
}

/// Runs one typed endpoint: parameters in, the analysis's report out as JSON; counted and logged
/// as every API call is. The analysis and its serialisation run on a blocking thread, as the
/// command-line runner's do, so a long one never holds up the collector's requests.
async fn answer<P, R, F, Fut>(app: &App, name: &str, query: Option<String>, f: F) -> Response
where
    P: DeserializeOwned + Send + 'static,
    R: Serialize,
    F: FnOnce(Scope, P) -> Fut + Send + 'static,
    Fut: std::future::Future<Output = shoplens_engine::Result<R>>,
{
    let started = Instant::now();
    if app.cfg.api.is_none() {
        return crate::no_api();
    }
    let r = match split_query::<P>(&app.ws, query.as_deref()) {
        Ok((scope, params)) => {
            let rt = tokio::runtime::Handle::current();
            tokio::task::spawn_blocking(move || {
                let report = rt
                    .block_on(f(scope, params))
                    .map_err(|e| ApiError::new(ApiErrorCode::AnalysisFailed, e.to_string()))?;
                serde_json::to_vec(&report)
                    .map_err(|e| ApiError::new(ApiErrorCode::Internal, e.to_string()))
            })
            .await
            .unwrap_or_else(|e| Err(ApiError::new(ApiErrorCode::Internal, e.to_string())))
        }
        Err(e) => Err(e),
    };
    let resp = match r {
        Ok(body) => ([(header::CONTENT_TYPE, "application/json")], body).into_response(),
        Err(e) => e.into_response(),
    };
    let status = resp.status().as_u16();
    app.metrics.request("api", status);
    tracing::info!(endpoint = %name, status, ms = started.elapsed().as_secs_f64() * 1000.0, "api");
    resp
}

async fn kpis_endpoint(State(app): State<Arc<App>>, RawQuery(q): RawQuery) -> Response {
    answer(&app, "kpis", q, |s, p: KpiParams| async move {
        kpis::kpis(&s.ws, &p.spec(s.as_of)).await
    })
    .await
}

async fn repurchase_endpoint(State(app): State<Arc<App>>, RawQuery(q): RawQuery) -> Response {
    answer(&app, "repurchase", q, |s, p: RepurchaseParams| async move {
        repurchase::repurchase(&s.ws, &p.spec(&s.tz, s.as_of)?).await
    })
    .await
}

async fn rfm_endpoint(State(app): State<Arc<App>>, RawQuery(q): RawQuery) -> Response {
    answer(&app, "rfm", q, |s, p: RfmParams| async move {
        rfm::rfm(&s.ws, &p.spec(&s.tz, s.as_of)?).await
    })
    .await
}

async fn activity_endpoint(State(app): State<Arc<App>>, RawQuery(q): RawQuery) -> Response {
    answer(&app, "activity", q, |s, p: ActivityParams| async move {
        activity::activity(&s.ws, &p.spec(&s.tz, s.as_of)?).await
    })
    .await
}

async fn returns_endpoint(State(app): State<Arc<App>>, RawQuery(q): RawQuery) -> Response {
    answer(&app, "returns", q, |s, p: ReturnsParams| async move {
        goods::returns(&s.ws, &p.spec(&s.tz)?).await
    })
    .await
}

async fn inventory_endpoint(State(app): State<Arc<App>>, RawQuery(q): RawQuery) -> Response {
    answer(&app, "inventory", q, |s, p: InventoryParams| async move {
        goods::inventory(&s.ws, &p.spec()?).await
    })
    .await
}

async fn cohorts_endpoint(State(app): State<Arc<App>>, RawQuery(q): RawQuery) -> Response {
    answer(&app, "cohorts", q, |s, p: CohortParams| async move {
        cohorts::cohorts(&s.ws, &p.spec(&s.tz, s.as_of)?).await
    })
    .await
}

async fn lifecycle_endpoint(State(app): State<Arc<App>>, RawQuery(q): RawQuery) -> Response {
    answer(&app, "lifecycle", q, |s, p: LifecycleParams| async move {
        lifecycle::lifecycle(&s.ws, &p.spec(&s.tz, s.as_of)?).await
    })
    .await
}

async fn clv_endpoint(State(app): State<Arc<App>>, RawQuery(q): RawQuery) -> Response {
    answer(&app, "clv", q, |s, p: ClvParams| async move {
        clv::clv(&s.ws, &p.spec(s.as_of)?).await
    })
    .await
}
