//! The dashboard end to end on the demo shop: sign-in, the read token in front of every page,
//! CSRF on forms, command-centre numbers equal to the command line's, the standalone report, and
//! a person's walk through every page in both languages in headless Chromium (sign in, filter,
//! export an audience), with a screenshot of each page.
#![allow(
    clippy::unwrap_used,
    clippy::expect_used,
    reason = "test helpers fail loudly"
)]

use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use serde_json::{Value, json};

mod common;
use common::{KEY, Server, TOKEN, basic, bin, json_of, small_demo};

/// An HTTP agent that does not follow redirects (the tests look at them).
fn agent() -> ureq::Agent {
    ureq::Agent::config_builder()
        .http_status_as_error(false)
        .max_redirects(0)
        .timeout_global(Some(Duration::from_secs(120)))
        .build()
        .into()
}

/// Status, Location, Set-Cookie values and body of an answer.
fn parts(mut r: ureq::http::Response<ureq::Body>) -> (u16, String, Vec<String>, Vec<u8>) {
    let loc = r
        .headers()
        .get("location")
        .map(|v| v.to_str().unwrap().to_string())
        .unwrap_or_default();
    let cookies = r
        .headers()
        .get_all("set-cookie")
        .iter()
        .map(|v| v.to_str().unwrap().to_string())
        .collect();
    let status = r.status().as_u16();
    (
        status,
        loc,
        cookies,
        r.body_mut().read_to_vec().unwrap_or_default(),
    )
}

/// (status, Location, Set-Cookie values, body) of a GET.
fn get(a: &ureq::Agent, url: &str, headers: &[(&str, &str)]) -> (u16, String, Vec<String>, String) {
    let mut req = a.get(url);
    for (k, v) in headers {
        req = req.header(*k, *v);
    }
    let (st, loc, cookies, body) = parts(req.call().unwrap());
    (st, loc, cookies, String::from_utf8(body).unwrap())
}

/// The same of a form POST.
fn post_form(
    a: &ureq::Agent,
    url: &str,
    headers: &[(&str, &str)],
    form: &[(&str, &str)],
) -> (u16, String, Vec<String>, Vec<u8>) {
    let body: String = form
        .iter()
        .map(|(k, v)| format!("{k}={}", enc(v)))
        .collect::<Vec<_>>()
        .join("&");
    let mut req = a
        .post(url)
        .header("content-type", "application/x-www-form-urlencoded");
    for (k, v) in headers {
        req = req.header(*k, *v);
    }
    parts(req.send(body.as_bytes()).unwrap())
}

fn enc(s: &str) -> String {
    s.bytes()
        .map(|b| {
            if b.is_ascii_alphanumeric() || b"-_.~".contains(&b) {
                (b as char).to_string()
            } else {
                format!("%{b:02X}")
            }
        })
        .collect()
}

/// The value of `name=` in a Set-Cookie list.
fn cookie_value(cookies: &[String], name: &str) -> Option<String> {
    cookies.iter().find_map(|c| {
        c.split(';')
            .next()?
            .strip_prefix(&format!("{name}="))
            .map(str::to_string)
    })
}

/// The `value` of the first hidden input named `name` in an HTML page.
fn input_value(html: &str, name: &str) -> String {
    let at = html.find(&format!(r#"name="{name}" value=""#)).unwrap();
    let rest = &html[at + name.len() + 15..];
    rest[..rest.find('"').unwrap()].to_string()
}

/// Every attribute `attr="…"` in the page, in order.
fn attrs(html: &str, attr: &str) -> Vec<String> {
    let pat = format!(r#"{attr}=""#);
    html.match_indices(&pat)
        .map(|(i, _)| {
            let rest = &html[i + pat.len()..];
            rest[..rest.find('"').unwrap()].to_string()
        })
        .collect()
}

/// The command-centre cards: (key, raw value, shown value).
fn cards(html: &str) -> Vec<(String, String, String)> {
    html.split(r#"<a class="kpi""#)
        .skip(1)
        .map(|card| {
            let key = attrs(card, "data-kpi")[0].clone();
            let raw = attrs(card, "data-value")[0].clone();
            let shown = card
                .split(r#"<div class="value">"#)
                .nth(1)
                .unwrap()
                .split('<')
                .next()
                .unwrap()
                .to_string();
            (key, raw, shown)
        })
        .collect()
}

/// A shown figure back to a number: "¥2,677,866.80" → 2677866.80, "18.5%" → 0.185.
fn parse_shown(s: &str) -> (f64, f64) {
    let pct = s.ends_with('%');
    let digits: String = s
        .chars()
        .filter(|c| c.is_ascii_digit() || *c == '.' || *c == '-')
        .collect();
    let v: f64 = digits.parse().unwrap();
    let decimals = digits.split('.').nth(1).map_or(0, str::len) as i32;
    let half_unit = 0.5 * 10f64.powi(-decimals);
    if pct {
        (v / 100.0, half_unit / 100.0)
    } else {
        (v, half_unit)
    }
}

/// Without the read token nothing is readable: pages send the browser to sign in, the API and
/// forms answer 401, a write key is not a read token; sign-in sets an HttpOnly session cookie;
/// a form without its CSRF token is refused. Every number on the command centre is the CLI's.
#[test]
fn dashboard_is_behind_the_token_and_shows_the_cli_numbers() {
    let dir = tempfile::tempdir().unwrap();
    let ws = small_demo(dir.path());
    let w = ws.display().to_string();
    let s = Server::start(&ws, &[]);
    let a = agent();
    let u = |p: &str| format!("{}{p}", s.url);
    let bearer = format!("Bearer {TOKEN}");
    let write_key = format!("Bearer {KEY}");
    let basic_key = basic(KEY);

    // Unauthenticated, or with a write key: sign-in redirect for pages, 401 for the API and forms.
    for auth in [None, Some(write_key.as_str()), Some(basic_key.as_str())] {
        let h: Vec<(&str, &str)> = auth.map(|v| ("authorization", v)).into_iter().collect();
        for page in ["/", "/p/funnel", "/p/audiences?from=2025-01-01"] {
            let (st, loc, _, _) = get(&a, &u(page), &h);
            assert_eq!(st, 303, "{page}");
            assert!(loc.starts_with("/login?next=/"), "{page}: {loc}");
        }
        assert_eq!(get(&a, &u("/api/kpis"), &h).0, 401);
        let (st, _, _, _) = post_form(
            &a,
            &u("/p/audiences"),
            &h,
            &[("audience", "vip"), ("format", "csv")],
        );
        assert_eq!(st, 401);
    }

    // Sign in: the form's CSRF cookie must come back; a wrong token is refused.
    let (st, _, cookies, page) = get(&a, &u("/login?next=/p/rfm"), &[]);
    assert_eq!(st, 200);
    let login_cookie = cookie_value(&cookies, "shoplens_login").unwrap();
    assert!(
        cookies
            .iter()
            .any(|c| c.contains("HttpOnly") && c.contains("SameSite=Strict"))
    );
    let csrf = input_value(&page, "csrf");
    assert_eq!(csrf, login_cookie);
    let cookie_h = format!("shoplens_login={login_cookie}");
    let (st, loc, _, _) = post_form(
        &a,
        &u("/login"),
        &[("cookie", &cookie_h)],
        &[("csrf", &csrf), ("token", "wrong"), ("next", "/p/rfm")],
    );
    assert_eq!((st, loc.starts_with("/login?failed")), (303, true));
    let (st, loc, _, _) = post_form(&a, &u("/login"), &[], &[("csrf", &csrf), ("token", TOKEN)]);
    assert_eq!(
        (st, loc.starts_with("/login?failed")),
        (303, true),
        "no CSRF cookie"
    );
    let (st, loc, cookies, _) = post_form(
        &a,
        &u("/login"),
        &[("cookie", &cookie_h)],
        &[("csrf", &csrf), ("token", TOKEN), ("next", "/p/rfm")],
    );
    assert_eq!((st, loc.as_str()), (303, "/p/rfm"));
    let session = cookie_value(&cookies, "shoplens_session").unwrap();
    assert!(
        cookies
            .iter()
            .any(|c| c.starts_with("shoplens_session=") && c.contains("HttpOnly"))
    );
    // An open redirect is not possible through `next`.
    let (_, loc, _, _) = post_form(
        &a,
        &u("/login"),
        &[("cookie", &cookie_h)],
        &[
            ("csrf", &csrf),
            ("token", TOKEN),
            ("next", "//evil.example/"),
        ],
    );
    assert_eq!(loc, "/");
    let session_h = format!("shoplens_session={session}");
    let (st, _, _, page) = get(&a, &u("/p/audiences"), &[("cookie", &session_h)]);
    assert_eq!(st, 200);
    let form_csrf = input_value(&page, "csrf");
    // A state-changing form without, or with another, CSRF token: 403; with it: the file.
    for bad in ["", "0000"] {
        let (st, _, _, _) = post_form(
            &a,
            &u("/p/audiences"),
            &[("cookie", &session_h)],
            &[("csrf", bad), ("audience", "vip"), ("format", "csv")],
        );
        assert_eq!(st, 403);
    }
    let (st, _, _, body) = post_form(
        &a,
        &u("/p/audiences"),
        &[("cookie", &session_h)],
        &[("csrf", &form_csrf), ("audience", "vip"), ("format", "csv")],
    );
    assert_eq!(st, 200);
    let text = String::from_utf8(body).unwrap();
    let members = json_of(bin().args(["--workspace", &w, "--format", "json", "audience", "list"]));
    let vip = members["audiences"]
        .as_array()
        .unwrap()
        .iter()
        .find(|x| x["name"] == "vip")
        .unwrap()["customers"]
        .as_u64()
        .unwrap();
    assert!(vip > 0);
    assert_eq!(
        text.lines().count() as u64,
        vip + 1,
        "a header and one line per member"
    );
    let log = json_of(bin().args(["--workspace", &w, "--format", "json", "audience", "exports"]));
    assert_eq!(log["exports"][0]["audience"], "vip");
    assert_eq!(log["exports"][0]["customers"].as_u64(), Some(vip));
    // Nothing outside the workspace: the export name is checked, paths are not pages.
    let (st, _, _, _) = post_form(
        &a,
        &u("/p/audiences"),
        &[("cookie", &session_h)],
        &[
            ("csrf", &form_csrf),
            ("audience", "../../etc/passwd"),
            ("format", "csv"),
        ],
    );
    assert_eq!(st, 400);
    assert_eq!(
        get(
            &a,
            &u("/p/..%2Fmanifest.json"),
            &[("authorization", &bearer)]
        )
        .0,
        404
    );

    // Every number on the command centre equals the CLI's, with and without the date filter.
    for (query, args) in [
        ("", vec!["kpis"]),
        (
            "?from=2025-06-01&to=2025-06-30",
            vec!["--as-of", "2025-06-30", "kpis", "--days", "30"],
        ),
        (
            "?from=2025-09-01&to=2025-09-07&lang=zh-CN",
            vec!["--as-of", "2025-09-07", "kpis", "--days", "7"],
        ),
    ] {
        let (st, _, _, html) = get(&a, &u(&format!("/{query}")), &[("authorization", &bearer)]);
        assert_eq!(st, 200);
        let cli = json_of(
            bin()
                .args(["--workspace", &w, "--format", "json"])
                .args(&args),
        );
        let kpis = cli["kpis"].as_array().unwrap();
        let shown = cards(&html);
        assert_eq!(shown.len(), kpis.len(), "one card per KPI");
        for (k, (key, raw, text)) in kpis.iter().zip(&shown) {
            assert_eq!(k["key"].as_str().unwrap(), key);
            assert_eq!(raw, &k["value"].to_string(), "{key}");
            if let Some(v) = k["value"].as_f64() {
                let (x, tol) = parse_shown(text);
                assert!(
                    (x - v).abs() <= tol * 1.0001,
                    "{key}: shown {text}, CLI {v}"
                );
            } else {
                assert_eq!(text, "–");
            }
        }
        assert!(html.contains(&format!(
            "{} – {}",
            cli["from"].as_str().unwrap(),
            cli["to"].as_str().unwrap()
        )));
    }

    // The CLV page's summary, recomputed here from the command's customers.
    let (st, _, _, html) = get(&a, &u("/p/clv"), &[("authorization", &bearer)]);
    assert_eq!(st, 200);
    let stat = |label: &str| -> String {
        let end = html
            .find(&format!(r#"<div class="statl">{label}</div>"#))
            .unwrap();
        let start = html[..end].rfind(r#"<div class="statv">"#).unwrap() + 19;
        html[start..end].trim_end_matches("</div>").to_string()
    };
    let clv = json_of(bin().args(["--workspace", &w, "--format", "json", "clv", "--limit", "0"]));
    let mut v: Vec<f64> = clv["customers"]
        .as_array()
        .unwrap()
        .iter()
        .filter_map(|c| c["clv"].as_f64())
        .collect();
    v.sort_by(f64::total_cmp);
    let n = v.len();
    let total: f64 = v.iter().sum();
    let median = if n % 2 == 1 {
        v[n / 2]
    } else {
        (v[n / 2 - 1] + v[n / 2]) / 2.0
    };
    let top: f64 = v[n - n.div_ceil(10)..].iter().sum();
    let (x, tol) = parse_shown(&stat("Median CLV"));
    assert!((x - median).abs() <= tol * 1.0001, "median {x} vs {median}");
    let (x, tol) = parse_shown(&stat("Top 10% hold"));
    assert!(
        (x - top / total).abs() <= tol * 1.0001,
        "top 10% {x} vs {}",
        top / total
    );
    let (x, tol) = parse_shown(&stat("Total expected value"));
    assert!((x - total).abs() <= tol * 1.0001, "total {x} vs {total}");

    // Bad filters are named; the page does not fall over.
    let (st, _, _, html) = get(&a, &u("/p/funnel?from=June"), &[("authorization", &bearer)]);
    assert_eq!(st, 400);
    assert!(html.contains("`from` must be a date"));
    assert!(s.stop().success());
}

/// `shoplens report` writes one file with every page's charts that needs nothing else.
#[test]
fn report_is_one_offline_file_with_every_page() {
    let dir = tempfile::tempdir().unwrap();
    let ws = small_demo(dir.path());
    let out = dir.path().join("report.html");
    let o = bin()
        .args([
            "--workspace",
            &ws.display().to_string(),
            "--lang",
            "zh-CN",
            "report",
            "--out",
        ])
        .arg(&out)
        .output()
        .unwrap();
    assert!(o.status.success(), "{}", String::from_utf8_lossy(&o.stderr));
    let html = std::fs::read_to_string(&out).unwrap();
    assert!(html.contains(r#"<html lang="zh-CN">"#));
    for id in [
        "home",
        "funnel",
        "activity",
        "cohorts",
        "paths",
        "products",
        "returns",
        "basket",
        "channels",
        "rfm",
        "clv",
        "churn",
        "experiments",
        "audiences",
        "recommend",
    ] {
        assert!(html.contains(&format!(r#"id="page-{id}""#)), "{id}");
    }
    assert!(html.matches("<svg").count() >= 15, "charts inline");
    assert!(html.contains("作战指挥舱"));
    // Nothing fetched from elsewhere: no scripts, no external sources or stylesheets.
    assert!(!html.contains("<script"));
    for a in attrs(&html, "src").iter().chain(&attrs(&html, "href")) {
        assert!(a.starts_with('#'), "external reference {a}");
    }
    assert!(!html.contains(r#"class="err""#) || !html.contains("analysis_failed"));
}

// ---------------------------------------------------------------------------------------------
// Headless Chromium through WebDriver (chromedriver).

struct Driver {
    child: Child,
    url: String,
    session: String,
    a: ureq::Agent,
}

const ELEMENT: &str = "element-6066-11e4-a52e-4f735466cecf";

impl Driver {
    fn start(downloads: &Path) -> Option<Driver> {
        let exe = [
            "chromedriver",
            "/usr/bin/chromedriver",
            "/usr/lib/chromium/chromedriver",
        ]
        .into_iter()
        .find(|p| {
            Command::new(p)
                .arg("--version")
                .output()
                .is_ok_and(|o| o.status.success())
        })?;
        let port = std::net::TcpListener::bind("127.0.0.1:0")
            .unwrap()
            .local_addr()
            .unwrap()
            .port();
        let child = Command::new(exe)
            .arg(format!("--port={port}"))
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .spawn()
            .ok()?;
        let a: ureq::Agent = ureq::Agent::config_builder()
            .http_status_as_error(false)
            .timeout_global(Some(Duration::from_secs(120)))
            .build()
            .into();
        let url = format!("http://127.0.0.1:{port}");
        let t = Instant::now();
        while a.get(format!("{url}/status")).call().is_err() {
            assert!(
                t.elapsed() < Duration::from_secs(30),
                "chromedriver did not start"
            );
            std::thread::sleep(Duration::from_millis(100));
        }
        let mut opts = json!({
            "args": ["--headless=new", "--no-sandbox", "--disable-gpu", "--disable-dev-shm-usage", "--window-size=1366,900", "--lang=en-US"],
            "prefs": {"download.default_directory": downloads.display().to_string(), "download.prompt_for_download": false},
        });
        if Path::new("/usr/bin/chromium").exists() {
            opts["binary"] = json!("/usr/bin/chromium");
        }
        let mut d = Driver {
            child,
            url,
            session: String::new(),
            a,
        };
        let r = d.call("POST", "/session", json!({"capabilities": {"alwaysMatch": {"browserName": "chrome", "goog:chromeOptions": opts}}}));
        d.session = r["sessionId"]
            .as_str()
            .unwrap_or_else(|| panic!("no session: {r}"))
            .to_string();
        Some(d)
    }

    fn call(&self, method: &str, path: &str, body: Value) -> Value {
        let url = if path == "/session" {
            format!("{}{path}", self.url)
        } else {
            format!("{}/session/{}{path}", self.url, self.session)
        };
        let mut r = if method == "GET" {
            self.a.get(url).call().unwrap()
        } else {
            self.a
                .post(url)
                .header("content-type", "application/json")
                .send(body.to_string().as_bytes())
                .unwrap()
        };
        let v: Value = serde_json::from_str(&r.body_mut().read_to_string().unwrap()).unwrap();
        v["value"].clone()
    }

    fn go(&self, url: &str) {
        self.call("POST", "/url", json!({"url": url}));
    }

    fn find(&self, css: &str) -> String {
        let v = self.call(
            "POST",
            "/element",
            json!({"using": "css selector", "value": css}),
        );
        v[ELEMENT]
            .as_str()
            .unwrap_or_else(|| panic!("no element {css}: {v}"))
            .to_string()
    }

    fn click(&self, css: &str) {
        let e = self.find(css);
        self.call("POST", &format!("/element/{e}/click"), json!({}));
    }

    fn type_into(&self, css: &str, text: &str) {
        let e = self.find(css);
        self.call(
            "POST",
            &format!("/element/{e}/value"),
            json!({"text": text}),
        );
    }

    fn js(&self, script: &str) -> Value {
        self.call(
            "POST",
            "/execute/sync",
            json!({"script": script, "args": []}),
        )
    }

    fn current(&self) -> String {
        self.call("GET", "/url", Value::Null)
            .as_str()
            .unwrap_or("")
            .to_string()
    }

    /// A PNG of the whole page (beyond the window).
    fn screenshot(&self, path: &Path) {
        let size = self.js(
            "return [document.documentElement.scrollWidth, document.documentElement.scrollHeight]",
        );
        let (w, h) = (size[0].as_f64().unwrap(), size[1].as_f64().unwrap());
        let v = self.call(
            "POST",
            "/goog/cdp/execute",
            json!({"cmd": "Page.captureScreenshot", "params": {"format": "png", "captureBeyondViewport": true,
                "clip": {"x": 0, "y": 0, "width": w, "height": h, "scale": 1}}}),
        );
        use base64::Engine as _;
        let png = base64::engine::general_purpose::STANDARD
            .decode(v["data"].as_str().unwrap())
            .unwrap();
        std::fs::write(path, png).unwrap();
    }

    fn wait_until(&self, what: &str, f: impl Fn(&Driver) -> bool) {
        let t = Instant::now();
        while !f(self) {
            assert!(
                t.elapsed() < Duration::from_secs(60),
                "timed out waiting for {what}"
            );
            std::thread::sleep(Duration::from_millis(100));
        }
    }
}

impl Drop for Driver {
    fn drop(&mut self) {
        if !self.session.is_empty() {
            let _ = self
                .a
                .delete(format!("{}/session/{}", self.url, self.session))
                .call();
        }
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

/// A person's walk: sign in, open every page of the navigation in English and 简体中文 (the
/// language remembered between pages), apply a date filter, export an audience; a screenshot of
/// every page lands in the target directory (`screenshots/`).
#[test]
fn every_page_in_both_languages_in_headless_chromium() {
    let dir = tempfile::tempdir().unwrap();
    let downloads = dir.path().join("downloads");
    std::fs::create_dir_all(&downloads).unwrap();
    let Some(d) = Driver::start(&downloads) else {
        assert!(
            std::env::var_os("SHOPLENS_REQUIRE_CHROMIUM").is_none(),
            "chromedriver is required (SHOPLENS_REQUIRE_CHROMIUM is set) but was not found"
        );
        let _ = std::io::Write::write_all(
            &mut std::io::stderr(),
            b"skipped: no chromedriver (install chromium and chromium-driver)\n",
        );
        return;
    };
    let ws = small_demo(dir.path());
    let s = Server::start(&ws, &[]);
    let shots = PathBuf::from(env!("CARGO_TARGET_TMPDIR")).join("screenshots");
    std::fs::create_dir_all(&shots).unwrap();

    // Sign in through the form.
    d.go(&format!("{}/p/rfm", s.url));
    d.wait_until("the sign-in page", |d| d.current().contains("/login"));
    d.type_into("#token", TOKEN);
    d.click("button[type=submit]");
    // Not just the URL's end: the sign-in page's own URL (`/login?next=/p/rfm`) ends the same.
    d.wait_until("the RFM page after sign-in", |d| {
        let url = d.current();
        url.ends_with("/p/rfm") && !url.contains("/login")
    });
    d.go(&format!("{}/", s.url));
    let links: Vec<String> = serde_json::from_value(d.js(
        "return [...document.querySelectorAll('nav.side a')].map(a => a.getAttribute('href'))",
    ))
    .unwrap();
    if links.len() < 19 {
        let text = d.js("return document.body ? document.body.innerText : ''");
        panic!("{links:?} on {}: {text}", d.current());
    }

    for lang in ["en", "zh-CN"] {
        // Switching language once is remembered by the following pages.
        d.go(&format!("{}/?lang={lang}", s.url));
        for link in &links {
            d.go(&format!("{}{link}", s.url));
            let h1 = d.js("return document.querySelector('main h1') ? document.querySelector('main h1').textContent : ''");
            let h1 = h1.as_str().unwrap().to_string();
            assert!(
                !h1.is_empty() && !h1.starts_with("Error") && !h1.starts_with("错误"),
                "{link} ({lang}): {h1}"
            );
            assert_eq!(
                d.js("return document.documentElement.lang"),
                json!(lang),
                "{link}"
            );
            if lang == "zh-CN" {
                assert!(
                    h1.chars().any(|c| ('\u{4e00}'..='\u{9fff}').contains(&c)),
                    "{link}: {h1}"
                );
            }
            let charts = d
                .js("return document.querySelectorAll('svg.chart').length")
                .as_u64()
                .unwrap();
            let tables = d
                .js("return document.querySelectorAll('table, .kpi').length")
                .as_u64()
                .unwrap();
            assert!(charts + tables > 0, "{link} ({lang}) shows nothing");
            let name = if link == "/" {
                "home".to_string()
            } else {
                link.trim_start_matches("/p/").to_string()
            };
            d.screenshot(&shots.join(format!("{name}-{lang}.png")));
        }
    }

    // Printed, a page drops the navigation, filters and buttons and keeps its charts.
    d.go(&format!("{}/p/cohorts?lang=en", s.url));
    d.call(
        "POST",
        "/goog/cdp/execute",
        json!({"cmd": "Emulation.setEmulatedMedia", "params": {"media": "print"}}),
    );
    assert_eq!(
        d.js("return getComputedStyle(document.querySelector('nav.side')).display"),
        json!("none")
    );
    assert_eq!(
        d.js("return getComputedStyle(document.querySelector('header form.filters')).display"),
        json!("none")
    );
    assert_ne!(
        d.js("return getComputedStyle(document.querySelector('svg.chart')).display"),
        json!("none")
    );
    d.screenshot(&shots.join("cohorts-print-en.png"));
    d.call(
        "POST",
        "/goog/cdp/execute",
        json!({"cmd": "Emulation.setEmulatedMedia", "params": {"media": ""}}),
    );

    // Apply a date filter through the form: the page says so and the cards change period.
    d.go(&format!("{}/?lang=en", s.url));
    d.js("document.querySelector('input[name=from]').value = '2025-06-01'; document.querySelector('input[name=to]').value = '2025-06-30';");
    d.click("header form.filters button[type=submit]");
    d.wait_until("the filtered page", |d| {
        d.current().contains("from=2025-06-01")
    });
    let note = d.js("return document.querySelector('.filters-note').textContent");
    assert!(
        note.as_str().unwrap().contains("2025-06-01 – 2025-06-30"),
        "{note}"
    );
    let body = d.js("return document.body.innerText");
    assert!(
        body.as_str().unwrap().contains("2025-06-01 – 2025-06-30"),
        "the cards' period"
    );
    // The filter follows the navigation.
    d.click("nav.side a[href^='/p/funnel']");
    d.wait_until("the funnel page", |d| {
        d.current().contains("/p/funnel?from=2025-06-01")
    });
    d.screenshot(&shots.join("funnel-filtered-en.png"));

    // Export an audience: the file arrives and the export log lists it.
    d.go(&format!("{}/p/audiences", s.url));
    d.click("button[data-export='win-back.csv']");
    d.wait_until("the downloaded export", |_| {
        std::fs::read_dir(&downloads).unwrap().flatten().any(|e| {
            let n = e.file_name().to_string_lossy().to_string();
            n.starts_with("win-back-") && n.ends_with(".csv")
        })
    });
    d.go(&format!("{}/p/audiences", s.url));
    let log = d.js("return document.querySelector('#exports').innerText");
    assert!(log.as_str().unwrap().contains("win-back"), "{log}");
    d.screenshot(&shots.join("audiences-after-export-en.png"));

    // Sign out: the session is gone.
    d.click("header .lang button[type=submit]");
    d.wait_until("the sign-in page", |d| d.current().contains("/login"));
    d.go(&format!("{}/p/rfm", s.url));
    d.wait_until("a redirect to sign in", |d| d.current().contains("/login"));
    drop(d);
    assert!(s.stop().success());
}

/// Guessing the read token: 20 failed sign-ins a minute per address, then 429 with Retry-After
/// whatever is sent, the right token included; wrong bearer tokens count the same way. After
/// sign-in, `next` leads only to a local path (tab, line end, backslash and `//` refused, as
/// browsers would read them). The CSP forbids every script.
#[test]
fn sign_in_guesses_are_limited_and_redirects_stay_local() {
    let dir = tempfile::tempdir().unwrap();
    let ws = dir.path().join("ws");
    let s = Server::start(&ws, &[]);
    let a = agent();
    let u = |p: &str| format!("{}{p}", s.url);

    let (st, _, cookies, page) = get(&a, &u("/login?next=/%09/evil.example"), &[]);
    assert_eq!(st, 200);
    assert_eq!(
        input_value(&page, "next"),
        "/",
        "the sign-in form carries no outside `next`"
    );
    let csrf = cookie_value(&cookies, "shoplens_login").unwrap();
    let cookie_h = format!("shoplens_login={csrf}");
    let sign_in = |token: &str, next: &str| {
        post_form(
            &a,
            &u("/login"),
            &[("cookie", &cookie_h)],
            &[("csrf", &csrf), ("token", token), ("next", next)],
        )
    };
    for next in [
        "/\t/evil.example",
        "/\n/evil.example",
        "/\r\n/evil.example",
        "/\\evil.example",
        "/\\/evil.example",
        "//evil.example",
        "https://evil.example/",
        "/p/x//evil.example",
    ] {
        let (st, loc, _, _) = sign_in(TOKEN, next);
        assert_eq!((st, loc.as_str()), (303, "/"), "{next:?}");
    }
    let (_, loc, _, _) = sign_in(TOKEN, "/p/rfm?from=2025-01-01");
    assert_eq!(loc, "/p/rfm?from=2025-01-01");

    let r = a.get(u("/login")).call().unwrap();
    let csp = r.headers()["content-security-policy"].to_str().unwrap();
    assert!(csp.contains("script-src 'none'"), "{csp}");
    assert!(csp.contains("default-src 'self'"), "{csp}");

    // Twenty wrong guesses are answered as wrong; from the 21st on, 429 with Retry-After,
    // even for the right token.
    for i in 1..=25 {
        let (st, loc, _, _) = sign_in("wrong-guess", "/");
        if i <= 20 {
            assert_eq!(st, 303, "guess {i}");
            assert!(loc.starts_with("/login?failed=token"), "guess {i}: {loc}");
        } else {
            assert_eq!(st, 429, "guess {i}");
        }
    }
    let r = a
        .post(u("/login"))
        .header("content-type", "application/x-www-form-urlencoded")
        .header("cookie", &cookie_h)
        .send(format!("csrf={csrf}&token={TOKEN}&next=/").as_bytes())
        .unwrap();
    assert_eq!(r.status().as_u16(), 429, "the right token is not confirmed");
    let wait: u64 = r.headers()["retry-after"]
        .to_str()
        .unwrap()
        .parse()
        .unwrap();
    assert!((1..=60).contains(&wait), "{wait}");
    // The address is refused on the bearer path too.
    let bearer = format!("Bearer {TOKEN}");
    assert_eq!(
        get(&a, &u("/api/rfm"), &[("authorization", &bearer)]).0,
        429
    );
    assert!(s.stop().success());

    // Wrong bearer tokens count as failures on their own.
    let s = Server::start(&ws, &["--auth-failures-per-minute", "3"]);
    let u = |p: &str| format!("{}{p}", s.url);
    let wrong = "Bearer not-the-read-token-000000000";
    for path in ["/api/rfm", "/metrics", "/p/rfm"] {
        let st = get(&a, &u(path), &[("authorization", wrong)]).0;
        assert!(st == 401 || st == 303, "{path}: {st}");
    }
    assert_eq!(get(&a, &u("/api/rfm"), &[("authorization", wrong)]).0, 429);
    assert_eq!(
        get(&a, &u("/metrics"), &[("authorization", &bearer)]).0,
        429
    );
    // No credentials at all is not a guess: still 401.
    assert_eq!(get(&a, &u("/api/rfm"), &[]).0, 401);
    assert!(s.stop().success());
}
