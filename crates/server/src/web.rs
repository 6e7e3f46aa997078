//! The dashboard's HTTP side: sign-in with the read token (a form that sets an HttpOnly session
//! cookie, or a bearer header), CSRF tokens on every state-changing form, the remembered
//! language, and the routes that hand pages and actions to the [`crate::Dashboard`].

use std::collections::HashMap;
use std::net::SocketAddr;
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use axum::extract::{ConnectInfo, Path, Query, State};
use axum::http::{HeaderMap, HeaderValue, StatusCode, header};
use axum::response::{IntoResponse, Redirect, Response};

use crate::{ApiError, ApiErrorCode, App, Bearer, constant_eq, too_many_failures};

/// One dashboard request as the renderer sees it.
#[derive(Debug, Clone)]
pub struct PageRequest {
    /// The page's name (`""` for the command centre, else the path after `/p/`).
    pub page: String,
    /// Query parameters (filters, the chosen user or item …), `lang` removed.
    pub params: Vec<(String, String)>,
    /// `en` or `zh-CN`.
    pub lang: String,
    /// The session's CSRF token, for the forms the page holds (empty for bearer requests).
    pub csrf: String,
}

/// What the renderer answers.
#[derive(Debug, Clone)]
pub enum PageResponse {
    /// An HTML page.
    Html(String),
    /// A download.
    File {
        /// File name offered to the browser.
        name: String,
        /// MIME type.
        content_type: String,
        /// Contents.
        bytes: Vec<u8>,
    },
}

const SESSION_COOKIE: &str = "shoplens_session";
const LOGIN_COOKIE: &str = "shoplens_login";
const LANG_COOKIE: &str = "shoplens_lang";
/// A session lasts this long after sign-in.
const SESSION_TTL: Duration = Duration::from_secs(12 * 3600);

/// Signed-in browsers: session id → its CSRF token and start.
#[derive(Debug, Default)]
pub(crate) struct Sessions {
    map: Mutex<HashMap<String, (String, Instant)>>,
}

impl Sessions {
    fn create(&self) -> Option<(String, String)> {
        let id = random_token()?;
        let csrf = random_token()?;
        if let Ok(mut m) = self.map.lock() {
            m.retain(|_, (_, t)| t.elapsed() < SESSION_TTL);
            m.insert(id.clone(), (csrf.clone(), Instant::now()));
        }
        Some((id, csrf))
    }

    /// The CSRF token of a live session.
    fn csrf(&self, id: &str) -> Option<String> {
        let m = self.map.lock().ok()?;
        m.get(id)
            .filter(|(_, t)| t.elapsed() < SESSION_TTL)
            .map(|(c, _)| c.clone())
    }

    fn remove(&self, id: &str) {
        if let Ok(mut m) = self.map.lock() {
            m.remove(id);
        }
    }
}

/// 24 random bytes from the OS, hex.
fn random_token() -> Option<String> {
    use rand::TryRngCore as _;
    let mut bytes = [0u8; 24];
    rand::rngs::OsRng.try_fill_bytes(&mut bytes).ok()?;
    Some(bytes.iter().map(|b| format!("{b:02x}")).collect())
}

fn cookie(h: &HeaderMap, name: &str) -> Option<String> {
    h.get_all(header::COOKIE)
        .iter()
        .filter_map(|v| v.to_str().ok())
        .flat_map(|v| v.split(';'))
        .filter_map(|kv| kv.trim().split_once('='))
        .find(|(k, _)| *k == name)
        .map(|(_, v)| v.to_string())
}

/// Cookies are `Secure` when the request reached a TLS-terminating proxy.
fn secure(h: &HeaderMap) -> &'static str {
    if h.get("x-forwarded-proto")
        .and_then(|v| v.to_str().ok())
        .is_some_and(|v| v.eq_ignore_ascii_case("https"))
    {
        "; Secure"
    } else {
        ""
    }
}

/// How the request is authenticated: the session's CSRF token (cookie), or `Some("")` for a
/// bearer token; None when it is not. A peer over its failure limit that sends a bearer token
/// is refused outright: `Err` holds how long it must wait (answered 429).
fn auth(app: &App, h: &HeaderMap, conn: SocketAddr) -> Result<Option<String>, Duration> {
    match app.bearer(h, app.peer(conn, h)) {
        Bearer::Valid => return Ok(Some(String::new())),
        Bearer::Blocked(wait) => return Err(wait),
        Bearer::Absent | Bearer::Wrong => {}
    }
    Ok(cookie(h, SESSION_COOKIE).and_then(|id| app.sessions.csrf(&id)))
}

/// The page language: `?lang=`, else the remembered cookie, else the browser's preference.
fn language(h: &HeaderMap, params: &[(String, String)]) -> (String, bool) {
    let norm = |l: &str| {
        if l.to_ascii_lowercase().starts_with("zh") {
            "zh-CN".to_string()
        } else {
            "en".to_string()
        }
    };
    if let Some((_, l)) = params.iter().find(|(k, _)| k == "lang") {
        return (norm(l), true);
    }
    if let Some(l) = cookie(h, LANG_COOKIE) {
        return (norm(&l), false);
    }
    let accept = h
        .get(header::ACCEPT_LANGUAGE)
        .and_then(|v| v.to_str().ok())
        .unwrap_or("");
    let first = accept.split([',', ';']).next().unwrap_or("").trim();
    (norm(first), false)
}

fn html(status: StatusCode, body: String) -> Response {
    (
        status,
        [(header::CONTENT_TYPE, "text/html; charset=utf-8")],
        body,
    )
        .into_response()
}

fn with_lang_cookie(mut r: Response, lang: &str, set: bool, h: &HeaderMap) -> Response {
    if set
        && let Ok(v) = HeaderValue::from_str(&format!(
            "{LANG_COOKIE}={lang}; Path=/; Max-Age=31536000; SameSite=Lax{}",
            secure(h)
        ))
    {
        r.headers_mut().append(header::SET_COOKIE, v);
    }
    r
}

/// Where to go after sign-in: a local path only. It starts with exactly one `/` and holds no
/// control character, white space, backslash or `//` anywhere (browsers drop tabs and line
/// ends and read `\` as `/`, so `/\t/host` or `/\\host` would leave the site); else `/`.
fn safe_next(next: &str) -> String {
    let local = next.starts_with('/')
        && !next.contains("//")
        && !next
            .chars()
            .any(|c| c.is_control() || c.is_whitespace() || c == '\\');
    if local {
        next.to_string()
    } else {
        "/".to_string()
    }
}

fn to_login(page_path: &str, query: &str) -> Response {
    let next = if query.is_empty() {
        page_path.to_string()
    } else {
        format!("{page_path}?{query}")
    };
    Redirect::to(&format!("/login?next={}", percent(&next))).into_response()
}

fn render(app: &App, lang: &str, r: std::result::Result<PageResponse, ApiError>) -> Response {
    let Some(d) = &app.cfg.dashboard else {
        return no_dashboard();
    };
    match r {
        Ok(PageResponse::Html(body)) => html(StatusCode::OK, body),
        Ok(PageResponse::File {
            name,
            content_type,
            bytes,
        }) => {
            let disposition = format!(
                "attachment; filename=\"{}\"",
                name.replace(['"', '\\', '\r', '\n'], "_")
            );
            let mut r = (StatusCode::OK, bytes).into_response();
            if let (Ok(ct), Ok(cd)) = (
                HeaderValue::from_str(&content_type),
                HeaderValue::from_str(&disposition),
            ) {
                r.headers_mut().insert(header::CONTENT_TYPE, ct);
                r.headers_mut().insert(header::CONTENT_DISPOSITION, cd);
            }
            r
        }
        Err(e) => html(e.status(), d.error(lang, e.status().as_u16(), &e.message)),
    }
}

/// The answer of every dashboard route on a server started without the dashboard.
fn no_dashboard() -> Response {
    ApiError::new(ApiErrorCode::NotFound, "this server has no dashboard").into_response()
}

/// Whether a form carries the session's CSRF token.
fn csrf_sent(form: &[(String, String)], csrf: &str) -> bool {
    let sent = form
        .iter()
        .find(|(k, _)| k == "csrf")
        .map(|(_, v)| v.as_str())
        .unwrap_or("");
    constant_eq(sent.as_bytes(), csrf.as_bytes())
}

/// Renders off the async threads (pages run analyses); a panic becomes a 500.
async fn blocking(
    f: impl FnOnce() -> std::result::Result<PageResponse, ApiError> + Send + 'static,
) -> std::result::Result<PageResponse, ApiError> {
    tokio::task::spawn_blocking(f)
        .await
        .unwrap_or_else(|e| Err(ApiError::new(ApiErrorCode::Internal, e.to_string())))
}

pub(crate) async fn page_get(
    State(app): State<Arc<App>>,
    ConnectInfo(conn): ConnectInfo<SocketAddr>,
    h: HeaderMap,
    path: Option<Path<String>>,
    Query(params): Query<Vec<(String, String)>>,
    uri: axum::http::Uri,
) -> Response {
    let Some(dash) = app.cfg.dashboard.clone() else {
        return no_dashboard();
    };
    let (lang, set_lang) = language(&h, &params);
    let csrf = match auth(&app, &h, conn) {
        Ok(Some(csrf)) => csrf,
        Ok(None) => {
            let query: String = uri.query().unwrap_or("").to_string();
            return to_login(uri.path(), &query);
        }
        Err(wait) => return too_many_failures(wait),
    };
    let started = Instant::now();
    let req = PageRequest {
        page: path.map(|p| p.0).unwrap_or_default(),
        params: params.into_iter().filter(|(k, _)| k != "lang").collect(),
        lang: lang.clone(),
        csrf,
    };
    let name = req.page.clone();
    let r = blocking(move || dash.page(&req)).await;
    let resp = render(&app, &lang, r);
    let status = resp.status().as_u16();
    app.metrics.request("dashboard", status);
    tracing::info!(page = %name, status, ms = started.elapsed().as_secs_f64() * 1000.0, "page");
    with_lang_cookie(resp, &lang, set_lang, &h)
}

pub(crate) async fn page_post(
    State(app): State<Arc<App>>,
    ConnectInfo(conn): ConnectInfo<SocketAddr>,
    h: HeaderMap,
    Path(page): Path<String>,
    Query(params): Query<Vec<(String, String)>>,
    axum::extract::Form(form): axum::extract::Form<Vec<(String, String)>>,
) -> Response {
    let Some(dash) = app.cfg.dashboard.clone() else {
        return no_dashboard();
    };
    let (lang, _) = language(&h, &params);
    let csrf = match auth(&app, &h, conn) {
        Ok(Some(csrf)) => csrf,
        Ok(None) => {
            let e = ApiError::new(ApiErrorCode::Unauthorized, "sign in first");
            return render(&app, &lang, Err(e));
        }
        Err(wait) => return too_many_failures(wait),
    };
    // A browser session must echo its CSRF token; a bearer client has no ambient credential.
    if !csrf.is_empty() && !csrf_sent(&form, &csrf) {
        let e = ApiError::new(
            ApiErrorCode::Forbidden,
            "the form's CSRF token is missing or stale; reload the page",
        );
        return render(&app, &lang, Err(e));
    }
    let req = PageRequest {
        page,
        params: params.into_iter().filter(|(k, _)| k != "lang").collect(),
        lang: lang.clone(),
        csrf,
    };
    let r = blocking(move || dash.action(&req, &form)).await;
    let resp = render(&app, &lang, r);
    app.metrics.request("dashboard", resp.status().as_u16());
    resp
}

pub(crate) async fn login_get(
    State(app): State<Arc<App>>,
    h: HeaderMap,
    Query(params): Query<Vec<(String, String)>>,
) -> Response {
    let Some(dash) = app.cfg.dashboard.clone() else {
        return no_dashboard();
    };
    let (lang, set_lang) = language(&h, &params);
    let next = params
        .iter()
        .find(|(k, _)| k == "next")
        .map_or("/".to_string(), |(_, v)| safe_next(v));
    let failed = params.iter().any(|(k, _)| k == "failed");
    let Some(token) = random_token() else {
        return StatusCode::SERVICE_UNAVAILABLE.into_response();
    };
    let mut r = html(StatusCode::OK, dash.login(&lang, &token, &next, failed));
    if let Ok(v) = HeaderValue::from_str(&format!(
        "{LOGIN_COOKIE}={token}; Path=/login; HttpOnly; SameSite=Strict; Max-Age=3600{}",
        secure(&h)
    )) {
        r.headers_mut().append(header::SET_COOKIE, v);
    }
    with_lang_cookie(r, &lang, set_lang, &h)
}

pub(crate) async fn login_post(
    State(app): State<Arc<App>>,
    ConnectInfo(conn): ConnectInfo<SocketAddr>,
    h: HeaderMap,
    axum::extract::Form(form): axum::extract::Form<Vec<(String, String)>>,
) -> Response {
    let field = |name: &str| {
        form.iter()
            .find(|(k, _)| k == name)
            .map(|(_, v)| v.clone())
            .unwrap_or_default()
    };
    let next = safe_next(&field("next"));
    // Double-submit: the form's token must match the cookie the sign-in page set.
    let expected = cookie(&h, LOGIN_COOKIE).unwrap_or_default();
    let sent = field("csrf");
    if expected.is_empty() || !constant_eq(sent.as_bytes(), expected.as_bytes()) {
        return Redirect::to("/login?failed=csrf").into_response();
    }
    // A peer with too many recent failures is refused before its token is looked at, so a
    // right guess among them is never confirmed.
    let peer = app.peer(conn, &h);
    if let Some(wait) = app.failures.blocked(peer) {
        return too_many_failures(wait);
    }
    let token = field("token");
    let token = token.trim();
    if app.cfg.read_token.is_empty()
        || !constant_eq(token.as_bytes(), app.cfg.read_token.as_bytes())
    {
        app.failures.failed(peer);
        tracing::info!(%peer, "dashboard sign-in refused");
        return Redirect::to(&format!("/login?failed=token&next={}", percent(&next)))
            .into_response();
    }
    let Some((id, _)) = app.sessions.create() else {
        return StatusCode::SERVICE_UNAVAILABLE.into_response();
    };
    let mut r = Redirect::to(&next).into_response();
    if let Ok(v) = HeaderValue::from_str(&format!(
        "{SESSION_COOKIE}={id}; Path=/; HttpOnly; SameSite=Strict; Max-Age={}{}",
        SESSION_TTL.as_secs(),
        secure(&h)
    )) {
        r.headers_mut().append(header::SET_COOKIE, v);
    }
    r
}

/// Percent-encodes a URL query value (unreserved characters and `/` kept).
pub fn percent(s: &str) -> String {
    s.bytes()
        .map(|b| {
            if b.is_ascii_alphanumeric() || b"-_.~/".contains(&b) {
                (b as char).to_string()
            } else {
                format!("%{b:02X}")
            }
        })
        .collect()
}

pub(crate) async fn logout(
    State(app): State<Arc<App>>,
    h: HeaderMap,
    axum::extract::Form(form): axum::extract::Form<Vec<(String, String)>>,
) -> Response {
    if let Some(id) = cookie(&h, SESSION_COOKIE)
        && let Some(csrf) = app.sessions.csrf(&id)
    {
        if !csrf_sent(&form, &csrf) {
            return StatusCode::FORBIDDEN.into_response();
        }
        app.sessions.remove(&id);
    }
    let mut r = Redirect::to("/login").into_response();
    r.headers_mut().append(
        header::SET_COOKIE,
        HeaderValue::from_static("shoplens_session=; Path=/; HttpOnly; SameSite=Strict; Max-Age=0"),
    );
    r
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn next_is_local_only() {
        assert_eq!(
            safe_next("/p/funnel?from=2025-01-01"),
            "/p/funnel?from=2025-01-01"
        );
        assert_eq!(safe_next("/"), "/");
        assert_eq!(safe_next("/p/rfm"), "/p/rfm");
        // Browsers drop tabs and line ends and read a backslash as a slash: each of these
        // would leave the site.
        for bad in [
            "//evil.example/",
            "https://evil.example/",
            "/\\evil",
            "/\\/evil.example",
            "/\t/evil.example",
            "/\n/evil.example",
            "/\r\n/evil.example",
            "/ /evil.example",
            "/p/x//evil",
            "\t//evil.example",
            "evil.example",
            "",
        ] {
            assert_eq!(safe_next(bad), "/", "{bad:?}");
        }
    }

    /// `next` as the browser sends it, percent-encoded, is decoded before it is checked.
    #[test]
    fn next_is_checked_after_decoding() {
        for (query, want) in [
            ("next=/%09/evil.example", "/"),
            ("next=/%0a/evil.example", "/"),
            ("next=/%0A/evil.example", "/"),
            ("next=/%5C/evil.example", "/"),
            ("next=%2F%2Fevil.example", "/"),
            ("next=https%3A%2F%2Fevil.example", "/"),
            (
                "next=/p/funnel%3Ffrom%3D2025-01-01",
                "/p/funnel?from=2025-01-01",
            ),
        ] {
            let uri: axum::http::Uri = format!("/login?{query}").parse().unwrap();
            let Query(params): Query<Vec<(String, String)>> = Query::try_from_uri(&uri).unwrap();
            let next = params
                .iter()
                .find(|(k, _)| k == "next")
                .map_or("/".to_string(), |(_, v)| safe_next(v));
            assert_eq!(next, want, "{query}");
        }
    }

    #[test]
    fn language_prefers_the_query_then_the_cookie_then_the_browser() {
        let mut h = HeaderMap::new();
        h.insert(
            header::ACCEPT_LANGUAGE,
            HeaderValue::from_static("zh-CN,zh;q=0.9"),
        );
        assert_eq!(language(&h, &[]).0, "zh-CN");
        h.insert(
            header::COOKIE,
            HeaderValue::from_static("a=b; shoplens_lang=en"),
        );
        assert_eq!(language(&h, &[]), ("en".to_string(), false));
        let q = vec![("lang".to_string(), "zh-CN".to_string())];
        assert_eq!(language(&h, &q), ("zh-CN".to_string(), true));
    }
}
