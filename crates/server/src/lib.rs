//! shoplens server: the Segment-compatible collector (`shoplens serve`).
//!
//! Endpoints: Segment's HTTP tracking API (`POST /v1/track`, `/v1/identify`, `/v1/page`,
//! `/v1/screen`, `/v1/group`, `/v1/alias`, `/v1/batch`), `GET /healthz` and `GET /metrics`
//! (Prometheus text, behind the read token). A request is answered only once its messages are in
//! the write-ahead log (see [`intake`]); the log is compacted into the workspace's tables in the
//! background, and every query reads what is not compacted yet from the log. Docs:
//! docs/collector.md.

use std::io::Read as _;
use std::net::{IpAddr, SocketAddr};
use std::sync::Arc;
use std::sync::atomic::Ordering;
use std::time::{Duration, Instant};

use axum::Router;
use axum::body::Bytes;
use axum::extract::{ConnectInfo, State};
use axum::http::{HeaderMap, header};
use axum::response::{IntoResponse, Response};
use axum::routing::{get, post};
use base64::Engine as _;
use governor::{DefaultKeyedRateLimiter, Quota, RateLimiter};
use serde::Deserialize;
use serde_json::{Value, json};
use shoplens_engine::collector::{self, MAX_BATCH_BYTES, MAX_BATCH_MESSAGES, MAX_MESSAGE_BYTES};
use shoplens_engine::storage::workspace::{Workspace, Writer};

mod api;
mod api_error;
pub mod dashboard;
mod dedup;
mod guard;
mod intake;
mod metrics;
#[cfg(test)]
mod router_tests;
mod web;

pub use api::{TypedEndpoint, typed_endpoints};
pub use api_error::{ApiError, ApiErrorCode};
pub use dashboard::Dashboard;
pub use dedup::DedupBounds;
pub use web::{PageRequest, PageResponse, percent};

use intake::Intake;
use metrics::Metrics;

/// Errors of the server.
#[derive(Debug, thiserror::Error)]
pub enum Error {
    /// From the engine (workspace, log, tables).
    #[error(transparent)]
    Engine(#[from] shoplens_engine::Error),
    /// An I/O failure on a path or resource.
    #[error("{0}: {1}")]
    Io(String, std::io::Error),
    /// The server cannot take writes now.
    #[error("unavailable: {0}")]
    Unavailable(String),
    /// The configuration is refused (the server does not start).
    #[error("{0}")]
    Config(String),
}

/// Result with the server's error.
pub type Result<T> = std::result::Result<T, Error>;

/// How the server runs.
#[derive(Debug, Clone)]
pub struct ServeConfig {
    /// Write keys accepted by the collector (Basic-auth user name or `writeKey` in the body).
    pub write_keys: Vec<String>,
    /// The read token (bearer) of /metrics and, later, the API and dashboard.
    pub read_token: String,
    /// Requests per second allowed per write key (0: no limit).
    pub rate_limit: u32,
    /// Compact the log into the tables at least this often when it holds messages.
    pub compact_every: Duration,
    /// …and as soon as it holds this many messages.
    pub compact_messages: u64,
    /// Longest a request may take before it is answered 503 (the client retries; messageIds
    /// keep a retried message from being stored twice).
    pub request_timeout: Duration,
    /// Serve the JSON API under /api (false: collector only).
    pub api: bool,
    /// The dashboard at / (None: no dashboard).
    pub dashboard: Option<Arc<Dashboard>>,
    /// How long and how many messageIds are remembered to drop retried messages.
    pub dedup: DedupBounds,
    /// Failed sign-ins and wrong bearer tokens allowed per peer address a minute (0: no limit);
    /// past it the peer is answered 429 with Retry-After.
    pub auth_failures_per_minute: u32,
    /// Proxies whose X-Forwarded-For names the peer (the limit above is per peer).
    pub trusted_proxies: Vec<IpAddr>,
}

/// The shortest read token `serve` accepts (a generated one has 48 characters).
pub const MIN_READ_TOKEN: usize = 24;

impl ServeConfig {
    /// Refuses a read token that is short or equal to a write key: write keys are published in
    /// a shop's web pages, and the read token opens every analysis.
    pub fn check(&self) -> Result<()> {
        if self.read_token.chars().count() < MIN_READ_TOKEN {
            return Err(Error::Config(format!(
                "the read token has {} characters; give one of at least {MIN_READ_TOKEN} (or none, and one is generated)",
                self.read_token.chars().count()
            )));
        }
        if self
            .write_keys
            .iter()
            .any(|k| constant_eq(k.as_bytes(), self.read_token.as_bytes()))
        {
            return Err(Error::Config(
                "the read token equals a write key; write keys are public in a shop's web pages, so the read token must differ".into(),
            ));
        }
        Ok(())
    }
}

impl Default for ServeConfig {
    fn default() -> ServeConfig {
        ServeConfig {
            write_keys: Vec::new(),
            read_token: String::new(),
            rate_limit: 10_000,
            compact_every: Duration::from_secs(10),
            compact_messages: 500_000,
            request_timeout: Duration::from_secs(30),
            api: false,
            dashboard: None,
            dedup: DedupBounds::default(),
            auth_failures_per_minute: 20,
            trusted_proxies: Vec::new(),
        }
    }
}

/// The server's clock, in µs since the epoch: Segment's `receivedAt`.
pub(crate) fn now_micros() -> i64 {
    #[expect(
        clippy::disallowed_methods,
        reason = "the collector stamps arrival with the server's clock, by definition"
    )]
    let now = std::time::SystemTime::now();
    now.duration_since(std::time::UNIX_EPOCH)
        .map_or(0, |d| d.as_micros() as i64)
}

struct App {
    cfg: ServeConfig,
    /// The served workspace, with the engine its queries run on.
    ws: Workspace,
    intake: Arc<Intake>,
    metrics: Arc<Metrics>,
    limiter: Option<DefaultKeyedRateLimiter<String>>,
    last_compaction: std::sync::Mutex<Instant>,
    sessions: web::Sessions,
    failures: guard::Failures,
}

impl App {
    /// Checks the configuration, takes the workspace's writer lock, and opens the log (its
    /// writer thread running): everything the routes need, before any request.
    fn start(
        ws: &Workspace,
        cfg: ServeConfig,
    ) -> Result<(Arc<App>, Arc<Writer>, std::thread::JoinHandle<()>)> {
        cfg.check()?;
        let writer = Arc::new(ws.writer()?);
        let metrics = Arc::new(Metrics::default());
        let (intake, wal_thread) = Intake::start(ws, Arc::clone(&metrics), cfg.dedup)?;
        let limiter = std::num::NonZeroU32::new(cfg.rate_limit)
            .map(|n| RateLimiter::keyed(Quota::per_second(n)));
        let app = Arc::new(App {
            ws: ws.clone(),
            intake,
            metrics,
            limiter,
            last_compaction: std::sync::Mutex::new(Instant::now()),
            sessions: web::Sessions::default(),
            failures: guard::Failures::new(cfg.auth_failures_per_minute),
            cfg,
        });
        Ok((app, writer, wal_thread))
    }

    /// The peer a request came from (see [`guard::peer`]).
    fn peer(&self, conn: SocketAddr, h: &HeaderMap) -> IpAddr {
        guard::peer(conn, h, &self.cfg.trusted_proxies)
    }

    /// How the request's bearer token stands. A wrong one counts as a failure of the peer; a
    /// peer over its failure limit is [`Bearer::Blocked`] whatever it sends.
    fn bearer(&self, h: &HeaderMap, peer: IpAddr) -> Bearer {
        let Some(sent) = h
            .get(header::AUTHORIZATION)
            .and_then(|v| v.to_str().ok())
            .and_then(|v| v.strip_prefix("Bearer "))
        else {
            return Bearer::Absent;
        };
        if let Some(wait) = self.failures.blocked(peer) {
            return Bearer::Blocked(wait);
        }
        if bearer_matches(sent, &self.cfg.read_token) {
            return Bearer::Valid;
        }
        self.failures.failed(peer);
        tracing::info!(%peer, "wrong bearer token");
        Bearer::Wrong
    }

    /// The read token is required: None when the request carries it, else the answer (401, or
    /// 429 for a peer over its failure limit).
    fn require_read(&self, h: &HeaderMap, conn: SocketAddr) -> Option<Response> {
        match self.bearer(h, self.peer(conn, h)) {
            Bearer::Valid => None,
            Bearer::Absent | Bearer::Wrong => Some(unauthorized()),
            Bearer::Blocked(wait) => Some(too_many_failures(wait)),
        }
    }
}

/// A request's bearer token.
enum Bearer {
    /// The read token.
    Valid,
    /// None sent.
    Absent,
    /// Another token (counted as a failure).
    Wrong,
    /// The peer is over its failure limit for this long.
    Blocked(Duration),
}

/// The answer of every /api route on a server started without the API (collector only).
fn no_api() -> Response {
    err(ApiErrorCode::NotFound, "this server has no API")
}

fn unauthorized() -> Response {
    err(ApiErrorCode::Unauthorized, "the read token is required")
}

/// 429 with Retry-After, for a peer over its failure limit.
fn too_many_failures(wait: Duration) -> Response {
    let mut r = err(
        ApiErrorCode::TooManyFailures,
        "too many failed sign-ins or wrong tokens from this address; retry later",
    );
    let secs = wait.as_secs() + u64::from(wait.subsec_nanos() > 0);
    if let Ok(v) = axum::http::HeaderValue::from_str(&secs.max(1).to_string()) {
        r.headers_mut().insert(header::RETRY_AFTER, v);
    }
    r
}

/// Runs the collector on `listener` until `shutdown` resolves, holding the workspace's writer
/// lock throughout; on shutdown it stops taking requests, lets those in flight finish, flushes
/// the log and compacts it.
pub async fn serve(
    ws: Workspace,
    cfg: ServeConfig,
    listener: tokio::net::TcpListener,
    shutdown: impl std::future::Future<Output = ()> + Send + 'static,
) -> Result<()> {
    let (app, writer, wal_thread) = App::start(&ws, cfg)?;
    let intake = Arc::clone(&app.intake);
    // Compact what a previous run left in the log before taking requests.
    {
        let (i, w) = (Arc::clone(&intake), Arc::clone(&writer));
        let done = tokio::task::spawn_blocking(move || i.compact(&w))
            .await
            .map_err(|e| Error::Unavailable(e.to_string()))??;
        if done.messages > 0 {
            tracing::info!(
                messages = done.messages,
                "compacted the log left by the last run"
            );
        }
    }
    let compactor = tokio::spawn(compact_loop(Arc::clone(&app), Arc::clone(&writer)));
    let router = router(Arc::clone(&app));
    let addr = listener.local_addr().ok();
    tracing::info!(addr = ?addr, "collector listening");
    axum::serve(
        listener,
        router.into_make_service_with_connect_info::<SocketAddr>(),
    )
    .with_graceful_shutdown(shutdown)
    .await
    .map_err(|e| Error::Io("server".into(), e))?;
    compactor.abort();
    intake.close();
    tokio::task::spawn_blocking(move || wal_thread.join())
        .await
        .map_err(|e| Error::Unavailable(e.to_string()))?
        .map_err(|_| Error::Unavailable("the log writer panicked".into()))?;
    let done = tokio::task::spawn_blocking(move || intake.compact(&writer))
        .await
        .map_err(|e| Error::Unavailable(e.to_string()))??;
    tracing::info!(messages = done.messages, "flushed and compacted; stopped");
    Ok(())
}

async fn compact_loop(app: Arc<App>, writer: Arc<Writer>) {
    let mut tick = tokio::time::interval(Duration::from_millis(500));
    loop {
        tick.tick().await;
        let pending = app.intake.uncompacted.load(Ordering::Relaxed);
        let since = app
            .last_compaction
            .lock()
            .map_or(Duration::ZERO, |t| t.elapsed());
        if pending == 0 || (pending < app.cfg.compact_messages && since < app.cfg.compact_every) {
            continue;
        }
        let (i, w) = (Arc::clone(&app.intake), Arc::clone(&writer));
        match tokio::task::spawn_blocking(move || i.compact(&w)).await {
            Ok(Ok(done)) => {
                tracing::info!(
                    messages = done.messages,
                    rejected = done.rejected,
                    "compacted"
                );
                if let Ok(mut t) = app.last_compaction.lock() {
                    *t = Instant::now();
                }
            }
            Ok(Err(e)) => {
                tracing::error!(error = %e, "compaction failed; the log keeps the events")
            }
            Err(e) => tracing::error!(error = %e, "compaction task failed"),
        }
    }
}

fn router(app: Arc<App>) -> Router {
    let single = |kind: &'static str| {
        post(
            move |State(a): State<Arc<App>>, h: HeaderMap, b: Bytes| async move {
                ingest(a, h, b, Some(kind)).await
            },
        )
    };
    Router::new()
        .route("/v1/track", single("track"))
        .route("/v1/identify", single("identify"))
        .route("/v1/page", single("page"))
        .route("/v1/screen", single("screen"))
        .route("/v1/group", single("group"))
        .route("/v1/alias", single("alias"))
        .route(
            "/v1/batch",
            post(
                |State(a): State<Arc<App>>, h: HeaderMap, b: Bytes| async move {
                    ingest(a, h, b, None).await
                },
            ),
        )
        .route("/healthz", get(healthz))
        .merge(
            // Behind the read token (bearer): the API and the metrics.
            Router::new()
                .route("/metrics", get(metrics_page))
                .route("/api/openapi.json", get(openapi))
                .route("/api/{*path}", get(api::api_get))
                .route_layer(axum::middleware::from_fn_with_state(
                    Arc::clone(&app),
                    read_token_required,
                )),
        )
        .route("/", get(web::page_get))
        .route("/p/{page}", get(web::page_get).post(web::page_post))
        .route("/login", get(web::login_get).post(web::login_post))
        .route("/logout", post(web::logout))
        .fallback(|| async { err(ApiErrorCode::NotFound, "no such endpoint or page") })
        // Bodies are measured (after gzip) by the handlers, which answer 400 as Segment does;
        // this cap only stops a client from streaming without end.
        .layer(axum::extract::DefaultBodyLimit::max(4 * MAX_BATCH_BYTES))
        .layer(axum::middleware::map_response(security_headers))
        .with_state(app)
}

/// The Content-Security-Policy of every answer: pages are HTML and CSS with inline SVG charts;
/// no script runs at all, nothing loads from elsewhere, and forms post only to this server.
pub const CONTENT_SECURITY_POLICY: &str = "default-src 'self'; script-src 'none'; img-src 'self' data:; style-src 'self' 'unsafe-inline'; frame-ancestors 'none'; form-action 'self'; base-uri 'none'";

/// Headers on every answer: no sniffing, no framing, no referrer, no script, nothing loaded
/// from elsewhere.
async fn security_headers(mut r: Response) -> Response {
    use axum::http::HeaderValue;
    let h = r.headers_mut();
    for (k, v) in [
        ("x-content-type-options", "nosniff"),
        ("x-frame-options", "DENY"),
        ("referrer-policy", "no-referrer"),
        ("content-security-policy", CONTENT_SECURITY_POLICY),
        ("cache-control", "no-store"),
    ] {
        h.insert(k, HeaderValue::from_static(v));
    }
    r
}

/// Lets a request through only with the read token as a bearer token (see [`App::bearer`]).
async fn read_token_required(
    State(app): State<Arc<App>>,
    ConnectInfo(conn): ConnectInfo<SocketAddr>,
    req: axum::extract::Request,
    next: axum::middleware::Next,
) -> Response {
    if let Some(refused) = app.require_read(req.headers(), conn) {
        if req.uri().path().starts_with("/api/") {
            app.metrics.request("api", refused.status().as_u16());
        }
        return refused;
    }
    next.run(req).await
}

async fn openapi(State(app): State<Arc<App>>) -> Response {
    if app.cfg.api {
        axum::Json(api::openapi()).into_response()
    } else {
        no_api()
    }
}

/// The answer of an error (docs/api.md, Errors).
fn err(code: ApiErrorCode, message: impl Into<String>) -> Response {
    ApiError::new(code, message).into_response()
}

async fn healthz(State(app): State<Arc<App>>) -> Response {
    let pos = app.intake.durable_position();
    axum::Json(json!({
        "status": "ok",
        "wal": {"segment": pos.segment, "offset": pos.offset},
        "uncompacted_messages": app.intake.uncompacted.load(Ordering::Relaxed),
    }))
    .into_response()
}

/// Whether a sent bearer token is the read token (never when no read token is set).
fn bearer_matches(sent: &str, token: &str) -> bool {
    !token.is_empty() && constant_eq(sent.trim().as_bytes(), token.as_bytes())
}

/// Compares secrets without an early exit.
fn constant_eq(a: &[u8], b: &[u8]) -> bool {
    a.len() == b.len() && a.iter().zip(b).fold(0u8, |acc, (x, y)| acc | (x ^ y)) == 0
}

async fn metrics_page(State(app): State<Arc<App>>) -> Response {
    let lag = app
        .last_compaction
        .lock()
        .map_or(0.0, |t| t.elapsed().as_secs_f64());
    let text = app
        .metrics
        .render(app.intake.uncompacted.load(Ordering::Relaxed), lag);
    ([(header::CONTENT_TYPE, "text/plain; version=0.0.4")], text).into_response()
}

/// The Basic-auth user name (Segment's write key).
fn basic_user(h: &HeaderMap) -> Option<String> {
    let v = h.get(header::AUTHORIZATION)?.to_str().ok()?;
    let enc = v.strip_prefix("Basic ")?;
    let dec = base64::engine::general_purpose::STANDARD
        .decode(enc.trim())
        .ok()?;
    let s = String::from_utf8(dec).ok()?;
    Some(s.split_once(':').map_or(s.clone(), |(u, _)| u.to_string()))
}

/// The body as text, gunzipped when sent so; refused when it exceeds `limit` bytes.
fn body_text(h: &HeaderMap, body: &Bytes, limit: usize) -> std::result::Result<String, ApiError> {
    let gzip = h
        .get(header::CONTENT_ENCODING)
        .and_then(|v| v.to_str().ok())
        .is_some_and(|v| v.eq_ignore_ascii_case("gzip"));
    let too_large = || {
        ApiError::new(
            ApiErrorCode::TooLarge,
            format!("the body exceeds Segment's {limit}-byte limit"),
        )
    };
    let bytes = if gzip {
        let mut out = Vec::new();
        let mut d = flate2::read::GzDecoder::new(body.as_ref()).take(limit as u64 + 1);
        if d.read_to_end(&mut out).is_err() {
            return Err(ApiError::new(
                ApiErrorCode::InvalidGzip,
                "the gzip body is corrupt",
            ));
        }
        out
    } else {
        body.to_vec()
    };
    if bytes.len() > limit {
        return Err(too_large());
    }
    String::from_utf8(bytes)
        .map_err(|_| ApiError::new(ApiErrorCode::InvalidJson, "the body is not UTF-8"))
}

#[derive(Deserialize)]
struct BatchBody<'a> {
    #[serde(borrow)]
    batch: Vec<&'a serde_json::value::RawValue>,
    #[serde(rename = "sentAt", default)]
    sent_at: Option<String>,
    #[serde(rename = "writeKey", default)]
    write_key: Option<String>,
}

#[derive(Deserialize)]
struct KeyOnly {
    #[serde(rename = "writeKey", default)]
    write_key: Option<String>,
}

async fn ingest(app: Arc<App>, h: HeaderMap, body: Bytes, kind: Option<&'static str>) -> Response {
    let endpoint = kind.unwrap_or("batch");
    let started = Instant::now();
    let r = tokio::time::timeout(app.cfg.request_timeout, handle(&app, &h, &body, kind)).await;
    let r = r.unwrap_or_else(|_| {
        err(
            ApiErrorCode::Timeout,
            "the request was not made durable in time; retry (a retried message is stored once)",
        )
    });
    let status = r.status().as_u16();
    app.metrics.request(endpoint, status);
    tracing::info!(
        endpoint,
        status,
        bytes = body.len(),
        ms = started.elapsed().as_secs_f64() * 1000.0,
        "request"
    );
    r
}

async fn handle(app: &App, h: &HeaderMap, body: &Bytes, kind: Option<&'static str>) -> Response {
    let limit = if kind.is_some() {
        MAX_MESSAGE_BYTES
    } else {
        MAX_BATCH_BYTES
    };
    let text = match body_text(h, body, limit) {
        Ok(t) => t,
        Err(e) => return e.into_response(),
    };
    let (raws, sent_at, body_key): (Vec<&str>, Option<String>, Option<String>) = match kind {
        None => match serde_json::from_str::<BatchBody<'_>>(&text) {
            Ok(b) => (
                b.batch.iter().map(|r| r.get()).collect(),
                b.sent_at,
                b.write_key,
            ),
            Err(e) => {
                return err(
                    ApiErrorCode::InvalidJson,
                    format!("a batch is {{\"batch\": [messages…]}}: {e}"),
                );
            }
        },
        Some(_) => match serde_json::from_str::<KeyOnly>(&text) {
            Ok(k) => (vec![text.as_str()], None, k.write_key),
            Err(e) => {
                return err(ApiErrorCode::InvalidJson, format!("invalid JSON: {e}"));
            }
        },
    };
    let key = basic_user(h).filter(|k| !k.is_empty()).or(body_key);
    let Some(key) = key.filter(|k| {
        app.cfg
            .write_keys
            .iter()
            .any(|w| constant_eq(w.as_bytes(), k.as_bytes()))
    }) else {
        return err(
            ApiErrorCode::Unauthorized,
            "unknown write key (Basic auth user name, or writeKey in the body)",
        );
    };
    if let Some(l) = &app.limiter
        && l.check_key(&key).is_err()
    {
        app.metrics.rate_limited.fetch_add(1, Ordering::Relaxed);
        let mut r = err(
            ApiErrorCode::RateLimited,
            "too many requests for this write key; retry later",
        );
        // Segment's clients wait until X-RateLimit-Reset (ms since the epoch) before retrying.
        let reset = (now_micros() / 1000 + 1000).to_string();
        if let Ok(v) = axum::http::HeaderValue::from_str(&reset) {
            r.headers_mut().insert("x-ratelimit-reset", v);
        }
        r.headers_mut().insert(
            header::RETRY_AFTER,
            axum::http::HeaderValue::from_static("1"),
        );
        return r;
    }
    if raws.len() > MAX_BATCH_MESSAGES {
        return err(
            ApiErrorCode::TooMany,
            format!(
                "{} messages; Segment's limit is {MAX_BATCH_MESSAGES} a batch",
                raws.len()
            ),
        );
    }
    let received = now_micros();
    let mut accepted = Vec::with_capacity(raws.len());
    let mut rejected = Vec::new();
    for (i, raw) in raws.iter().enumerate() {
        match collector::check(raw, kind, sent_at.as_deref(), received, i) {
            Ok(a) => accepted.push(a),
            Err(r) => rejected.push(r),
        }
    }
    let n_accepted = accepted.len();
    let outcome = match app.intake.submit(received, accepted, &rejected).await {
        Ok(o) => o,
        Err(e) => {
            tracing::error!(error = %e, "write refused");
            return err(ApiErrorCode::Unavailable, e.to_string());
        }
    };
    app.metrics
        .accepted
        .fetch_add(outcome.stored as u64, Ordering::Relaxed);
    app.metrics
        .duplicates
        .fetch_add(outcome.duplicates as u64, Ordering::Relaxed);
    app.metrics
        .rejected
        .fetch_add(rejected.len() as u64, Ordering::Relaxed);
    if rejected.is_empty() {
        return axum::Json(json!({"success": true})).into_response();
    }
    let list: Vec<Value> = rejected
        .iter()
        .map(|r| json!({"index": r.index, "messageId": r.message_id, "reason": r.reason}))
        .collect();
    let code = ApiErrorCode::InvalidEvents;
    (
        code.status(),
        axum::Json(json!({
            "success": false,
            "error": code.code(),
            "message": format!("{} of {} messages refused (set aside in the quarantine); the others are stored", rejected.len(), raws.len()),
            "accepted": n_accepted,
            "rejected": list,
        })),
    )
        .into_response()
}

/// Binds `addr` (port 0 picks a free one).
pub async fn bind(addr: SocketAddr) -> Result<tokio::net::TcpListener> {
    tokio::net::TcpListener::bind(addr)
        .await
        .map_err(|e| Error::Io(addr.to_string(), e))
}

/// The read token: `given` when set; else the one stored in the workspace
/// (`server/read_token`); else a new random one, stored there (mode 0600). The flag says
/// whether it was generated now (then the caller prints it, once).
pub fn read_token(root: &std::path::Path, given: Option<String>) -> Result<(String, bool)> {
    use rand::TryRngCore as _;
    if let Some(t) = given.filter(|t| !t.trim().is_empty()) {
        return Ok((t.trim().to_string(), false));
    }
    let path = root.join("server").join("read_token");
    let io = |e| Error::Io(path.display().to_string(), e);
    if let Ok(t) = std::fs::read_to_string(&path)
        && !t.trim().is_empty()
    {
        return Ok((t.trim().to_string(), false));
    }
    let mut bytes = [0u8; 24];
    rand::rngs::OsRng
        .try_fill_bytes(&mut bytes)
        .map_err(|e| Error::Unavailable(format!("no OS randomness for a token: {e}")))?;
    let token: String = bytes.iter().map(|b| format!("{b:02x}")).collect();
    if let Some(parent) = path.parent() {
        std::fs::create_dir_all(parent).map_err(io)?;
    }
    let mut opts = std::fs::OpenOptions::new();
    opts.write(true).create(true).truncate(true);
    #[cfg(unix)]
    std::os::unix::fs::OpenOptionsExt::mode(&mut opts, 0o600);
    let mut f = opts.open(&path).map_err(io)?;
    std::io::Write::write_all(&mut f, token.as_bytes()).map_err(io)?;
    f.sync_all().map_err(io)?;
    Ok((token, true))
}
