//! The dashboard and the standalone report: every landed analysis as a page of charts and
//! tables, drawn from exactly the report its API endpoint answers (which is what its command
//! prints with `--format json`), so a number on a page is the command line's number. Pages are
//! rendered on the server (no script); the report is the same pages in one offline file.

mod charts;
mod html;
mod i18n;
mod pages;

use std::collections::HashMap;
use std::sync::{Arc, Mutex};

use shoplens_engine::Workspace;
use shoplens_engine::customers::audiences;

use crate::api::failed;
use crate::{ApiError, ApiErrorCode, PageRequest, PageResponse};
use chrono::NaiveDate;
use serde_json::Value;

pub(crate) use i18n::Lang;

/// The filters at the top of every page.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub(crate) struct Filters {
    /// First day (YYYY-MM-DD), inclusive.
    pub(crate) from: Option<String>,
    /// Last day (YYYY-MM-DD), inclusive.
    pub(crate) to: Option<String>,
    /// One acquisition or traffic channel.
    pub(crate) channel: Option<String>,
}

impl Filters {
    /// Reads and checks the filters among a request's parameters.
    pub(crate) fn parse(params: &[(String, String)]) -> Result<Filters, ApiError> {
        let get = |k: &str| {
            params
                .iter()
                .find(|(n, _)| n == k)
                .map(|(_, v)| v.trim().to_string())
                .filter(|v| !v.is_empty())
        };
        let day = |k: &str| -> Result<Option<String>, ApiError> {
            match get(k) {
                None => Ok(None),
                Some(v) => NaiveDate::parse_from_str(&v, "%Y-%m-%d")
                    .map(|_| Some(v.clone()))
                    .map_err(|_| {
                        ApiError::new(
                            ApiErrorCode::InvalidParameter,
                            format!("`{k}` must be a date like 2025-12-31, not `{v}`"),
                        )
                    }),
            }
        };
        let f = Filters {
            from: day("from")?,
            to: day("to")?,
            channel: get("channel"),
        };
        if let (Some(a), Some(b)) = (&f.from, &f.to)
            && a > b
        {
            return Err(ApiError::new(
                ApiErrorCode::InvalidParameter,
                format!("`from` ({a}) is after `to` ({b})"),
            ));
        }
        if let Some(c) = &f.channel
            && (c.len() > 64 || c.chars().any(char::is_control))
        {
            return Err(ApiError::new(
                ApiErrorCode::InvalidParameter,
                "`channel` is not a channel name",
            ));
        }
        Ok(f)
    }

    /// The filters as a query string (`from=…&to=…`), empty when none is set.
    pub(crate) fn query(&self) -> String {
        let mut parts = Vec::new();
        for (k, v) in [
            ("from", &self.from),
            ("to", &self.to),
            ("channel", &self.channel),
        ] {
            if let Some(v) = v {
                parts.push(format!("{k}={}", urlencode(v)));
            }
        }
        parts.join("&")
    }

    /// The period's length in days, when both ends are set.
    pub(crate) fn days(&self) -> Option<i64> {
        let a = NaiveDate::parse_from_str(self.from.as_deref()?, "%Y-%m-%d").ok()?;
        let b = NaiveDate::parse_from_str(self.to.as_deref()?, "%Y-%m-%d").ok()?;
        Some((b - a).num_days() + 1)
    }
}

pub(crate) use crate::web::percent as urlencode;

/// One analysis a page draws: its endpoint's words and query (the API's parameters, and the
/// globals `as_of` and `lang`).
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct Call {
    words: &'static [&'static str],
    query: Vec<(String, String)>,
}

impl Call {
    /// The endpoint `words` with its defaults.
    pub(crate) fn new(words: &'static [&'static str]) -> Call {
        Call {
            words,
            query: Vec::new(),
        }
    }

    /// Sets a parameter.
    pub(crate) fn set(&mut self, name: &str, value: impl ToString) {
        self.query.push((name.to_string(), value.to_string()));
    }

    /// With a parameter set.
    pub(crate) fn with(mut self, name: &str, value: impl ToString) -> Call {
        self.set(name, value);
        self
    }

    /// The query string, as the API reads it.
    fn query_string(&self) -> String {
        serde_urlencoded::to_string(&self.query).unwrap_or_default()
    }
}

/// Runs the analyses pages draw on the served workspace (and its engine), caching each result
/// until the workspace's data changes.
#[derive(Debug)]
pub(crate) struct Source {
    pub(crate) ws: Workspace,
    cache: Mutex<Cache>,
}

/// The data's stamp and that of the saved audiences and the export log, which live beside the
/// tables.
pub(crate) type Stamp = ((u64, u64, u64), u128);

/// When the audiences or the export log last changed (latest modification, ns, plus sizes).
fn side_stamp(root: &std::path::Path) -> u128 {
    let of = |p: &std::path::Path| {
        std::fs::metadata(p).map_or(0u128, |m| {
            let t = m
                .modified()
                .ok()
                .and_then(|t| t.duration_since(std::time::UNIX_EPOCH).ok())
                .map_or(0, |d| d.as_nanos());
            t + u128::from(m.len())
        })
    };
    let mut s = of(&root.join("exports.jsonl")) + of(&root.join("audiences"));
    if let Ok(dir) = std::fs::read_dir(root.join("audiences")) {
        for e in dir.flatten() {
            s = s.wrapping_add(of(&e.path()));
        }
    }
    s
}

/// Results kept at most (a page runs one to four commands).
const MAX_CACHED: usize = 256;

/// How long a result may be shown after the tables changed under it. While the collector takes
/// events the data changes every few seconds; pages then show figures at most this old instead
/// of recomputing on every view. Saved audiences and exports are always current.
pub(crate) const MAX_STALENESS: std::time::Duration = std::time::Duration::from_secs(60);

struct Cached {
    stamp: Stamp,
    at: std::time::Instant,
    /// A report as JSON, or typed (see [`Source::report`]).
    value: Arc<dyn std::any::Any + Send + Sync>,
}

impl std::fmt::Debug for Cached {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Cached")
            .field("stamp", &self.stamp)
            .field("at", &self.at)
            .finish_non_exhaustive()
    }
}

#[derive(Debug, Default)]
struct Cache {
    results: HashMap<String, Cached>,
}

impl Source {
    pub(crate) fn new(ws: Workspace) -> Source {
        Source {
            ws,
            cache: Mutex::new(Cache::default()),
        }
    }

    /// The workspace's state now, read once per page: its stamp and the shop's currency.
    fn snapshot(&self) -> Result<(Stamp, String), ApiError> {
        let manifest = self.ws.manifest().map_err(failed)?;
        let stamp = (
            shoplens_engine::collector::data_stamp_of(&self.ws, &manifest).map_err(failed)?,
            side_stamp(self.ws.root()),
        );
        Ok((stamp, manifest.settings.currency.unwrap_or_default()))
    }

    /// The report of `call` (what its API endpoint answers), from the cache when it was
    /// computed at `stamp` (or recently enough, see [`MAX_STALENESS`]).
    pub(crate) fn run(&self, call: &Call, stamp: Stamp) -> Result<Arc<Value>, ApiError> {
        let q = call.query_string();
        // The cache key is the endpoint's path and query.
        let key = format!("/api/{}?{q}", call.words.join("/"));
        self.cached(key, stamp, || {
            let out = crate::api::call(&self.ws, call.words, &q)?;
            serde_json::from_slice(&out).map_err(|e| {
                ApiError::new(ApiErrorCode::Internal, format!("the report's JSON: {e}"))
            })
        })
    }

    /// The typed report of the analysis `params` as of the day `as_of` (default: the newest
    /// data), cached as [`Source::run`] caches JSON.
    pub(crate) fn report<A>(
        &self,
        params: A,
        as_of: Option<&str>,
        stamp: Stamp,
    ) -> Result<Arc<A::Report>, ApiError>
    where
        A: crate::api::Analysis,
        A::Report: Send + Sync + 'static,
    {
        let q = serde_urlencoded::to_string(&params).unwrap_or_default();
        let key = format!(
            "typed:/api/{}?{q}&as_of={}",
            A::WORDS.join("/"),
            as_of.unwrap_or_default()
        );
        self.cached(key, stamp, || {
            crate::api::call_typed(&self.ws, params, as_of)
        })
    }

    /// The rows of a query over the workspace's tables, as `{"columns": …, "rows": […]}`.
    pub(crate) fn sql(&self, query: &str, stamp: Stamp) -> Result<Arc<Value>, ApiError> {
        self.cached(format!("sql:{query}"), stamp, || {
            let tz = self.zone()?;
            let rows = tokio::runtime::Handle::current().block_on(async {
                let (schema, batches) = shoplens_engine::query::sql(&self.ws, query).await?;
                shoplens_engine::query::Rows::of(&schema, &batches, &tz)
            });
            serde_json::to_value(rows.map_err(failed)?)
                .map_err(|e| ApiError::new(ApiErrorCode::Internal, e.to_string()))
        })
    }

    /// The shop's time zone.
    fn zone(&self) -> Result<chrono_tz::Tz, ApiError> {
        Ok(shoplens_engine::calendar::zone(
            &self.ws.manifest().map_err(failed)?.settings,
        ))
    }

    /// The shop-local day of the newest data (the default as-of day of every analysis), cached
    /// with the page's `stamp` as reports are.
    pub(crate) fn newest_day(&self, stamp: Stamp) -> Result<Option<String>, ApiError> {
        let day = self.cached("newest-day".into(), stamp, || {
            let tz = self.zone()?;
            let newest = tokio::runtime::Handle::current()
                .block_on(shoplens_engine::query::newest_instant(&self.ws))
                .map_err(failed)?;
            Ok(newest.map_or(Value::Null, |t| {
                Value::String(
                    shoplens_engine::calendar::format_instant(t, &tz)
                        .chars()
                        .take(10)
                        .collect(),
                )
            }))
        })?;
        Ok(day.as_str().map(str::to_string))
    }

    /// Exports the audience `name` to `dest` as of the day `as_of` (default: the newest data),
    /// recorded in the export log.
    pub(crate) fn export(
        &self,
        name: &str,
        dest: &audiences::Destination,
        as_of: Option<&str>,
    ) -> Result<audiences::ExportRecord, ApiError> {
        let tz = self.zone()?;
        let at = shoplens_engine::calendar::as_of(as_of, &tz).map_err(failed)?;
        tokio::runtime::Handle::current()
            .block_on(audiences::export(&self.ws, name, dest, at))
            .map_err(failed)
    }

    /// What `compute` gives, from the cache under `key` when it was computed at `stamp` (or
    /// recently enough, see [`MAX_STALENESS`]).
    fn cached<T: Send + Sync + 'static>(
        &self,
        key: String,
        stamp: Stamp,
        compute: impl FnOnce() -> Result<T, ApiError>,
    ) -> Result<Arc<T>, ApiError> {
        if let Ok(c) = self.cache.lock()
            && let Some(hit) = c.results.get(&key)
            && (hit.stamp == stamp || (hit.stamp.1 == stamp.1 && hit.at.elapsed() < MAX_STALENESS))
            && let Ok(v) = Arc::clone(&hit.value).downcast::<T>()
        {
            return Ok(v);
        }
        let v = Arc::new(compute()?);
        if let Ok(mut c) = self.cache.lock() {
            // Many filter combinations must not grow the cache without bound: first drop what
            // is out of date, then everything.
            if c.results.len() >= MAX_CACHED {
                c.results
                    .retain(|_, r| r.stamp == stamp && r.at.elapsed() < MAX_STALENESS);
            }
            if c.results.len() >= MAX_CACHED {
                c.results.clear();
            }
            c.results.insert(
                key,
                Cached {
                    stamp,
                    at: std::time::Instant::now(),
                    value: Arc::clone(&v) as Arc<dyn std::any::Any + Send + Sync>,
                },
            );
        }
        Ok(v)
    }
}

/// A field of a report object. In tests, a field a page asks for that the object lacks is
/// recorded (see [`missing_fields`]): a renamed report field fails a test, not a page.
pub(crate) fn field_of<'a>(v: &'a Value, name: &str) -> Option<&'a Value> {
    let found = v.get(name);
    #[cfg(test)]
    if found.is_none() && v.is_object() {
        MISSING.with(|m| m.borrow_mut().insert(name.to_string()));
    }
    found
}

#[cfg(test)]
thread_local! {
    static MISSING: std::cell::RefCell<std::collections::BTreeSet<String>> =
        const { std::cell::RefCell::new(std::collections::BTreeSet::new()) };
}

/// The fields pages asked report objects for and did not find, on this thread, since the last
/// call (which empties the record).
#[cfg(test)]
pub(crate) fn missing_fields() -> std::collections::BTreeSet<String> {
    MISSING.with(|m| std::mem::take(&mut *m.borrow_mut()))
}

/// What a page is rendered with.
pub(crate) struct Ctx<'a> {
    pub(crate) lang: Lang,
    pub(crate) filters: Filters,
    pub(crate) csrf: String,
    pub(crate) params: &'a [(String, String)],
    /// Rendering the offline report (no forms, links are anchors).
    pub(crate) report: bool,
    pub(crate) currency: String,
    pub(crate) source: &'a Source,
    /// The workspace's state when the page began: every command of the page reads the same.
    pub(crate) stamp: Stamp,
}

impl Ctx<'_> {
    /// A label in the page's language.
    pub(crate) fn t(&self, en: &'static str) -> &'static str {
        self.lang.t(en)
    }

    /// A field of a result row; in Chinese, its `_zh` twin when the JSON carries one.
    pub(crate) fn field(&self, row: &Value, name: &str) -> Value {
        if self.lang == Lang::Zh
            && let Some(v) = row.get(format!("{name}_zh")).filter(|v| !v.is_null())
        {
            return v.clone();
        }
        field_of(row, name).cloned().unwrap_or(Value::Null)
    }

    /// A request parameter.
    pub(crate) fn param(&self, name: &str) -> Option<&str> {
        self.params
            .iter()
            .find(|(k, _)| k == name)
            .map(|(_, v)| v.trim())
            .filter(|v| !v.is_empty())
    }

    /// The link to a page, keeping the filters and language.
    pub(crate) fn link(&self, slug: &str) -> String {
        if self.report {
            return format!("#page-{}", if slug.is_empty() { "home" } else { slug });
        }
        let q = self.filters.query();
        let base = if slug.is_empty() {
            "/".to_string()
        } else {
            format!("/p/{slug}")
        };
        if q.is_empty() {
            base
        } else {
            format!("{base}?{q}")
        }
    }

    /// A link to a page over the period [from, to] (the static report has one period: its
    /// anchor).
    pub(crate) fn link_in(&self, slug: &str, from: &str, to: &str) -> String {
        if self.report {
            return self.link(slug);
        }
        let f = Filters {
            from: Some(from.to_string()),
            to: Some(to.to_string()),
            channel: self.filters.channel.clone(),
        };
        format!("/p/{slug}?{}", f.query())
    }

    /// A money value.
    pub(crate) fn money(&self, v: f64) -> String {
        format!(
            "{}{}",
            html::currency_prefix(&self.currency),
            html::grouped(v, 2)
        )
    }
}

/// An area of the navigation.
#[derive(Debug, Clone, Copy)]
pub(crate) struct Area {
    pub(crate) title: &'static str,
    pub(crate) pages: &'static [&'static str],
}

/// The navigation: areas of the seed's 人 · 货 · 场, customer operations and practice.
pub(crate) const AREAS: &[Area] = &[
    Area {
        title: "Overview",
        pages: &[""],
    },
    Area {
        title: "People",
        pages: &[
            "funnel",
            "activity",
            "cohorts",
            "paths",
            "repurchase",
            "lifecycle",
        ],
    },
    Area {
        title: "Goods",
        pages: &["products", "returns", "basket", "inventory"],
    },
    Area {
        title: "Traffic",
        pages: &["channels", "campaigns"],
    },
    Area {
        title: "Customer operations",
        pages: &["rfm", "clv", "churn", "recommend", "audiences"],
    },
    Area {
        title: "Practice",
        pages: &["experiments"],
    },
];

/// Every page's name (`""` is the command centre).
pub fn page_slugs() -> impl Iterator<Item = &'static str> {
    pages::PAGES.iter().map(|p| p.slug)
}

/// The dashboard of a served workspace (and, as [`Dashboard::report`], its offline report).
#[derive(Debug)]
pub struct Dashboard {
    source: Source,
    /// Exported files older than this are removed (at the next export).
    export_max_age: std::time::Duration,
}

impl Dashboard {
    /// The dashboard of the workspace `ws`, its analyses run on the workspace's engine.
    pub fn new(ws: Workspace) -> Dashboard {
        Dashboard {
            source: Source::new(ws),
            export_max_age: std::time::Duration::from_secs(7 * 24 * 3600),
        }
    }

    /// Removes exported files after `age` instead of 7 days.
    pub fn with_export_max_age(mut self, age: std::time::Duration) -> Dashboard {
        self.export_max_age = age;
        self
    }

    fn ctx<'a>(&'a self, req: &'a PageRequest, report: bool) -> Result<Ctx<'a>, ApiError> {
        let (stamp, currency) = self.source.snapshot()?;
        Ok(Ctx {
            lang: Lang::parse(&req.lang),
            filters: Filters::parse(&req.params)?,
            csrf: req.csrf.clone(),
            params: &req.params,
            report,
            currency,
            source: &self.source,
            stamp,
        })
    }
}

impl Dashboard {
    /// Computes the command centre (both languages share its results) so the first visitor
    /// does not wait for it.
    pub fn warm_up(&self) {
        let req = PageRequest {
            page: String::new(),
            params: Vec::new(),
            lang: "en".into(),
            csrf: String::new(),
        };
        let _ = self.page(&req);
    }
}

impl Dashboard {
    /// Every page (the command centre and each analysis, with the same charts) in one HTML file
    /// with its styles and charts inline, for the filters in `params` (`from`, `to`, `channel`),
    /// in `lang`.
    pub fn report(&self, params: Vec<(String, String)>, lang: &str) -> Result<String, ApiError> {
        let req = PageRequest {
            page: String::new(),
            params,
            lang: lang.to_string(),
            csrf: String::new(),
        };
        pages::report(&self.ctx(&req, true)?)
    }

    /// A page (`GET /` or `GET /p/NAME`).
    pub fn page(&self, req: &PageRequest) -> Result<PageResponse, ApiError> {
        let ctx = self.ctx(req, false)?;
        let page = pages::find(&req.page).ok_or_else(|| {
            ApiError::new(ApiErrorCode::NotFound, format!("no page `{}`", req.page))
        })?;
        let body = (page.render)(&ctx)?;
        Ok(PageResponse::Html(pages::layout(&ctx, page, &body)))
    }

    /// A form's action (`POST /p/NAME`; the server has checked the CSRF token).
    pub fn action(
        &self,
        req: &PageRequest,
        form: &[(String, String)],
    ) -> Result<PageResponse, ApiError> {
        let ctx = self.ctx(req, false)?;
        match req.page.as_str() {
            "audiences" => {
                pages::export_audience(&ctx, self.source.ws.root(), self.export_max_age, form)
            }
            other => Err(ApiError::new(
                ApiErrorCode::NotFound,
                format!("page `{other}` takes no form"),
            )),
        }
    }

    /// The sign-in page; `failed` after a wrong token.
    pub fn login(&self, lang: &str, csrf: &str, next: &str, failed: bool) -> String {
        pages::login(Lang::parse(lang), csrf, next, failed)
    }

    /// An error page.
    pub fn error(&self, lang: &str, status: u16, message: &str) -> String {
        pages::error_page(Lang::parse(lang), status, message)
    }
}
