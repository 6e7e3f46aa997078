//! The router in process (no socket): every route's status and error body without and with its
//! credential, the security headers on every answer, and the error shapes pinned as snapshots.

#![allow(clippy::unwrap_used, clippy::expect_used, reason = "tests fail loudly")]

use std::net::SocketAddr;
use std::sync::Arc;

use axum::Router;
use axum::body::Body;
use axum::extract::connect_info::MockConnectInfo;
use axum::http::{Request, StatusCode, header};
use base64::Engine as _;
use serde_json::{Value, json};
use tower::ServiceExt as _;

use super::*;

const KEY: &str = "router-test-write-key";
const TOKEN: &str = "router-test-read-token-0123456789";

/// The app on a fresh workspace (collector only: no API, no dashboard), its router as a peer at
/// `peer` sees it, and what must be closed at the end.
struct TestApp {
    _dir: tempfile::TempDir,
    app: Arc<App>,
    wal_thread: Option<std::thread::JoinHandle<()>>,
}

impl TestApp {
    fn new(cfg: ServeConfig) -> TestApp {
        let dir = tempfile::tempdir().unwrap();
        let ws = Workspace::open(dir.path().join("ws")).unwrap();
        let (app, _writer, wal_thread) = App::start(&ws, cfg).unwrap();
        TestApp {
            _dir: dir,
            app,
            wal_thread: Some(wal_thread),
        }
    }

    fn router(&self, peer: &str) -> Router {
        let addr: SocketAddr = peer.parse().unwrap();
        router(Arc::clone(&self.app)).layer(MockConnectInfo(addr))
    }

    /// Status, headers and body (JSON when it parses, else the text as a JSON string).
    async fn call(&self, req: Request<Body>) -> (StatusCode, header::HeaderMap, Value) {
        let r = self.router("192.0.2.10:5000").oneshot(req).await.unwrap();
        let status = r.status();
        let headers = r.headers().clone();
        let bytes = axum::body::to_bytes(r.into_body(), 1 << 20).await.unwrap();
        let body = serde_json::from_slice(&bytes)
            .unwrap_or_else(|_| Value::String(String::from_utf8_lossy(&bytes).into_owned()));
        (status, headers, body)
    }
}

impl Drop for TestApp {
    fn drop(&mut self) {
        self.app.intake.close();
        if let Some(t) = self.wal_thread.take() {
            let _ = t.join();
        }
    }
}

fn config() -> ServeConfig {
    ServeConfig {
        write_keys: vec![KEY.into()],
        read_token: TOKEN.into(),
        ..ServeConfig::default()
    }
}

fn get(path: &str, auth: Option<&str>) -> Request<Body> {
    let mut b = Request::get(path);
    if let Some(a) = auth {
        b = b.header(header::AUTHORIZATION, a);
    }
    b.body(Body::empty()).unwrap()
}

fn post(path: &str, auth: Option<&str>, body: impl Into<Body>) -> Request<Body> {
    let mut b = Request::post(path).header(header::CONTENT_TYPE, "application/json");
    if let Some(a) = auth {
        b = b.header(header::AUTHORIZATION, a);
    }
    b.body(body.into()).unwrap()
}

fn basic(key: &str) -> String {
    format!(
        "Basic {}",
        base64::engine::general_purpose::STANDARD.encode(format!("{key}:"))
    )
}

fn bearer(token: &str) -> String {
    format!("Bearer {token}")
}

/// Every route: what it answers without its credential, with a wrong one, and with the right
/// one; the error bodies pinned (crates/server/src/snapshots).
#[tokio::test]
async fn every_route_answers_its_status_and_error_body() {
    let t = TestApp::new(config());
    let gz = {
        let mut e = flate2::write::GzEncoder::new(Vec::new(), flate2::Compression::default());
        std::io::Write::write_all(&mut e, br#"{"batch": []}"#).unwrap();
        e.finish().unwrap()
    };
    let track = |extra: Value| {
        let mut m = json!({"type": "track", "event": "Product Viewed", "userId": "u1",
            "messageId": "m-1", "timestamp": "2025-01-01T00:00:00Z",
            "properties": {"product_id": "p1"}});
        if let (Some(a), Some(b)) = (m.as_object_mut(), extra.as_object()) {
            a.extend(b.clone());
        }
        m.to_string()
    };
    let big = format!(
        r#"{{"type": "track", "event": "x", "userId": "u", "pad": "{}"}}"#,
        "x".repeat(40_000)
    );
    let many = json!({"batch": (0..2501).map(|i| json!({"type": "track", "event": "e", "userId": format!("u{i}")})).collect::<Vec<_>>()}).to_string();
    let (bk, bt) = (basic(KEY), bearer(TOKEN));
    let cases: Vec<(&str, Request<Body>, StatusCode)> = vec![
        ("healthz", get("/healthz", None), StatusCode::OK),
        (
            "metrics without token",
            get("/metrics", None),
            StatusCode::UNAUTHORIZED,
        ),
        (
            "metrics with a write key",
            get("/metrics", Some(&bearer(KEY))),
            StatusCode::UNAUTHORIZED,
        ),
        (
            "openapi without token",
            get("/api/openapi.json", None),
            StatusCode::UNAUTHORIZED,
        ),
        (
            "openapi on a collector-only server",
            get("/api/openapi.json", Some(&bt)),
            StatusCode::NOT_FOUND,
        ),
        (
            "api without token",
            get("/api/rfm", None),
            StatusCode::UNAUTHORIZED,
        ),
        (
            "api on a collector-only server",
            get("/api/rfm", Some(&bt)),
            StatusCode::NOT_FOUND,
        ),
        (
            "no such route",
            get("/nope", Some(&bt)),
            StatusCode::NOT_FOUND,
        ),
        (
            "dashboard on a collector-only server",
            get("/", Some(&bt)),
            StatusCode::NOT_FOUND,
        ),
        (
            "sign-in on a collector-only server",
            get("/login", None),
            StatusCode::NOT_FOUND,
        ),
        (
            "track without a write key",
            post("/v1/track", None, track(json!({}))),
            StatusCode::UNAUTHORIZED,
        ),
        (
            "track with an unknown key",
            post("/v1/track", Some(&basic("other")), track(json!({}))),
            StatusCode::UNAUTHORIZED,
        ),
        (
            "track that is not JSON",
            post("/v1/track", Some(&bk), "{not json"),
            StatusCode::BAD_REQUEST,
        ),
        (
            "track over 32 KB",
            post("/v1/track", Some(&bk), big),
            StatusCode::BAD_REQUEST,
        ),
        (
            "batch that is not a batch",
            post("/v1/batch", Some(&bk), r#"{"events": []}"#),
            StatusCode::BAD_REQUEST,
        ),
        (
            "batch of 2501",
            post("/v1/batch", Some(&bk), many),
            StatusCode::BAD_REQUEST,
        ),
        (
            "track without a user",
            post(
                "/v1/track",
                Some(&bk),
                r#"{"type": "track", "event": "e", "messageId": "m-2"}"#,
            ),
            StatusCode::BAD_REQUEST,
        ),
        (
            "track",
            post("/v1/track", Some(&bk), track(json!({}))),
            StatusCode::OK,
        ),
        (
            "the same track again",
            post("/v1/track", Some(&bk), track(json!({}))),
            StatusCode::OK,
        ),
        (
            "track with the key in the body",
            post(
                "/v1/track",
                None,
                track(json!({"writeKey": KEY, "messageId": "m-3"})),
            ),
            StatusCode::OK,
        ),
    ];
    let mut bodies = serde_json::Map::new();
    for (name, req, want) in cases {
        let (status, headers, body) = t.call(req).await;
        assert_eq!(status, want, "{name}: {body}");
        // Security headers on every answer, whatever the route and status.
        let csp = headers[header::CONTENT_SECURITY_POLICY].to_str().unwrap();
        assert_eq!(csp, CONTENT_SECURITY_POLICY, "{name}");
        assert_eq!(headers["x-content-type-options"], "nosniff", "{name}");
        assert_eq!(headers["x-frame-options"], "DENY", "{name}");
        if name != "healthz" {
            bodies.insert(name.into(), body);
        }
    }
    // A corrupt gzip body, sent as gzip.
    let req = Request::post("/v1/batch")
        .header(header::AUTHORIZATION, basic(KEY))
        .header(header::CONTENT_ENCODING, "gzip")
        .body(Body::from(gz[..gz.len() / 2].to_vec()))
        .unwrap();
    let (status, _, body) = t.call(req).await;
    assert_eq!(status, StatusCode::BAD_REQUEST);
    bodies.insert("batch with a corrupt gzip body".into(), body);
    // Every error body has the documented shape and a code of the one list.
    for (name, b) in &bodies {
        if b == &json!({"success": true}) {
            continue;
        }
        if let Some(code) = b.get("error").and_then(Value::as_str) {
            assert!(
                ApiErrorCode::ALL.iter().any(|c| c.code() == code),
                "{name}: {code}"
            );
            assert_eq!(b["success"], false, "{name}");
            assert!(
                b["message"].as_str().is_some_and(|m| !m.is_empty()),
                "{name}"
            );
        } else {
            // /metrics answers Prometheus text with the token.
            assert!(b.is_string(), "{name}: {b}");
        }
    }
    insta::assert_json_snapshot!("error_bodies", bodies);
}

/// Wrong bearer tokens from one address: 401 until the limit, then 429 with Retry-After for
/// everything that address sends with a token, the right one included; another address is not
/// affected, and a request without credentials is still 401.
#[tokio::test]
async fn wrong_tokens_are_limited_per_address() {
    let t = TestApp::new(ServeConfig {
        auth_failures_per_minute: 3,
        ..config()
    });
    let call = |peer: &str, auth: Option<String>| {
        let r = t.router(peer);
        let req = get("/metrics", auth.as_deref());
        async move { r.oneshot(req).await.unwrap() }
    };
    let wrong = || Some(bearer("not-the-read-token-00000000000000"));
    for _ in 0..3 {
        assert_eq!(
            call("198.51.100.1:1", wrong()).await.status(),
            StatusCode::UNAUTHORIZED
        );
    }
    let r = call("198.51.100.1:2", Some(bearer(TOKEN))).await;
    assert_eq!(r.status(), StatusCode::TOO_MANY_REQUESTS);
    let wait: u64 = r.headers()[header::RETRY_AFTER]
        .to_str()
        .unwrap()
        .parse()
        .unwrap();
    assert!((1..=60).contains(&wait));
    let body = axum::body::to_bytes(r.into_body(), 1 << 16).await.unwrap();
    let body: Value = serde_json::from_slice(&body).unwrap();
    assert_eq!(body["error"], "too_many_failures");
    assert_eq!(
        call("198.51.100.1:3", None).await.status(),
        StatusCode::UNAUTHORIZED
    );
    assert_eq!(
        call("198.51.100.2:1", Some(bearer(TOKEN))).await.status(),
        StatusCode::OK
    );
}

/// A report's shape: its fields and their JSON types (an array by its first element), with the
/// values left out, so a renamed or retyped field shows in a snapshot.
fn shape(v: &Value) -> Value {
    match v {
        Value::Null => json!("null"),
        Value::Bool(_) => json!("bool"),
        Value::Number(_) => json!("number"),
        Value::String(_) => json!("string"),
        Value::Array(a) => Value::Array(a.first().map(shape).into_iter().collect()),
        Value::Object(m) => Value::Object(m.iter().map(|(k, v)| (k.clone(), shape(v))).collect()),
    }
}

/// A small demo shop with its starter audiences.
async fn demo_shop() -> (tempfile::TempDir, Workspace) {
    let dir = tempfile::tempdir().unwrap();
    let ws = Workspace::open(dir.path().join("ws")).unwrap();
    shoplens_engine::demo::generate(
        &ws,
        &shoplens_engine::demo::DemoParams {
            seed: 42,
            scale: 0.02,
        },
        &|_, _| {},
    )
    .unwrap();
    shoplens_engine::demo::save_starter_audiences(&ws)
        .await
        .unwrap();
    (dir, ws)
}

/// Every page, in both languages, with and without filters, and the offline report, read only
/// fields their reports have: a renamed report field fails here, not as a blank cell.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn every_page_reads_only_fields_its_reports_have() {
    let (_dir, ws) = demo_shop().await;
    let dash = Dashboard::new(ws);
    let missing = tokio::task::spawn_blocking(move || {
        let filtered: Vec<(String, String)> = vec![
            ("from".into(), "2025-10-01".into()),
            ("to".into(), "2025-12-31".into()),
            ("channel".into(), "search".into()),
        ];
        for params in [Vec::new(), filtered] {
            for slug in crate::dashboard::page_slugs() {
                for lang in ["en", "zh-CN"] {
                    let req = PageRequest {
                        page: slug.into(),
                        params: params.clone(),
                        lang: lang.into(),
                        csrf: String::new(),
                    };
                    dash.page(&req)
                        .unwrap_or_else(|e| panic!("page `{slug}`: {}", e.message));
                }
            }
        }
        dash.report(Vec::new(), "en").unwrap();
        crate::dashboard::missing_fields()
    })
    .await
    .unwrap();
    assert!(
        missing.is_empty(),
        "fields pages read that no report has: {missing:?}"
    );
}

/// Every endpoint answers 200 on the demo shop, and the shape of each report (the fields the
/// dashboard and users' scripts read) is pinned (crates/server/src/snapshots).
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn every_endpoint_answers_its_report() {
    let (dir, ws) = demo_shop().await;
    let cfg = ServeConfig {
        api: true,
        ..config()
    };
    let (app, _writer, wal_thread) = App::start(&ws, cfg).unwrap();
    let t = TestApp {
        _dir: dir,
        app,
        wal_thread: Some(wal_thread),
    };
    let queries = [
        ("tables", ""),
        ("kpis", "days=7"),
        ("quarantine", ""),
        ("funnel", "steps=product_view,add_to_cart,order"),
        ("paths", "start=product_view"),
        ("activity", ""),
        ("repurchase", ""),
        ("cohorts", ""),
        ("lifecycle", ""),
        ("rfm", "compare_to=2025-09-30"),
        ("clv", ""),
        ("churn", ""),
        ("stages", ""),
        ("products", ""),
        ("returns", ""),
        ("inventory", ""),
        ("channels", ""),
        ("campaigns", ""),
        ("basket", "min_support=0.005"),
        (
            "recommend/evaluate",
            "split_at=2025-10-01&factors=4&iterations=2",
        ),
        ("recommend/user", "users=U000000&model=popularity"),
        ("recommend/item", "item=BE-001"),
        ("recommend/tags", "users=U000000"),
        ("recommend/export", "audience=vip&model=popularity&k=2"),
        ("experiment/list", ""),
        ("experiment/analyze", "experiment=checkout-button"),
        ("experiment/power", "baseline=0.1&mde=0.02"),
        ("audience/fields", ""),
        ("audience/list", ""),
        ("audience/show", "name=vip"),
        ("audience/exports", ""),
    ];
    let documented: Vec<String> = typed_endpoints()
        .iter()
        .map(|e| e.words.join("/"))
        .collect();
    let asked: Vec<String> = queries.iter().map(|(p, _)| (*p).to_string()).collect();
    assert_eq!(asked, documented, "every endpoint, in the API's order");
    let mut shapes = serde_json::Map::new();
    for (path, query) in queries {
        let (st, _, body) = t
            .call(get(&format!("/api/{path}?{query}"), Some(&bearer(TOKEN))))
            .await;
        assert_eq!(st, StatusCode::OK, "/api/{path}?{query}: {body}");
        shapes.insert(path.to_string(), shape(&body));
    }
    insta::assert_json_snapshot!("report_shapes", Value::Object(shapes));
}

/// Every `$ref` in a JSON document.
fn refs(v: &Value, out: &mut Vec<String>) {
    match v {
        Value::Object(m) => {
            if let Some(Value::String(r)) = m.get("$ref") {
                out.push(r.clone());
            }
            m.values().for_each(|x| refs(x, out));
        }
        Value::Array(a) => a.iter().for_each(|x| refs(x, out)),
        _ => {}
    }
}

/// The OpenAPI document: every endpoint with its parameters (from the parameters types) and its
/// report's schema (from the report types), and every reference resolves.
#[tokio::test]
async fn openapi_documents_every_endpoint_and_report() {
    let t = TestApp::new(ServeConfig {
        api: true,
        ..config()
    });
    let (st, _, doc) = t.call(get("/api/openapi.json", Some(&bearer(TOKEN)))).await;
    assert_eq!(st, StatusCode::OK);
    assert_eq!(doc["openapi"], "3.0.3");
    let paths = doc["paths"].as_object().unwrap();
    assert_eq!(paths.len(), typed_endpoints().len());
    for (path, item) in paths {
        let ok = &item["get"]["responses"]["200"]["content"]["application/json"]["schema"];
        let r = ok["$ref"]
            .as_str()
            .unwrap_or_else(|| panic!("{path}: {ok}"));
        assert!(r.starts_with("#/components/schemas/"), "{path}: {r}");
    }
    let funnel = paths["/api/funnel"]["get"]["parameters"]
        .as_array()
        .unwrap();
    let window = funnel.iter().find(|p| p["name"] == "window").unwrap();
    assert_eq!(window["schema"]["default"], "24h");
    let mode = funnel.iter().find(|p| p["name"] == "mode").unwrap();
    assert_eq!(
        mode["schema"]["enum"],
        json!(["default", "strict-order", "strict-increase"])
    );
    let mut all = Vec::new();
    refs(&doc, &mut all);
    assert!(all.len() > 31);
    for r in all {
        let name = r.trim_start_matches("#/components/");
        let (kind, name) = name.split_once('/').unwrap();
        assert!(
            !doc["components"][kind][name].is_null(),
            "{r} does not resolve"
        );
    }
    let rfm = &doc["components"]["schemas"]["RfmReport"]["properties"];
    assert!(rfm["segments"].is_object(), "{rfm}");
}
