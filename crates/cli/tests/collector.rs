//! The collector end to end: `shoplens serve` as a process, Segment's HTTP API (contract,
//! errors, idempotency, e-commerce mapping), events visible to `shoplens sql` beside it before
//! and after compaction, a kill -9 in the middle of 100k events, fuzzed bodies, and Segment's own
//! Node client.
#![allow(
    clippy::unwrap_used,
    clippy::expect_used,
    reason = "test helpers fail loudly"
)]

use std::io::Write;
use std::path::{Path, PathBuf};
use std::process::Command;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use serde_json::{Value, json};

mod common;
use common::{KEY, Server, TOKEN, agent, basic, bin, json_of, small_demo};

/// POSTs `body` with the write key as Basic auth; (status, JSON answer).
fn post(
    agent: &ureq::Agent,
    url: &str,
    path: &str,
    body: &[u8],
    auth: Option<&str>,
) -> (u16, Value) {
    let mut req = agent
        .post(format!("{url}{path}"))
        .header("Content-Type", "application/json");
    if let Some(a) = auth {
        req = req.header("Authorization", a);
    }
    let mut resp = req.send(body).unwrap();
    let status = resp.status().as_u16();
    let text = resp.body_mut().read_to_string().unwrap_or_default();
    (status, serde_json::from_str(&text).unwrap_or(Value::Null))
}

fn sql(ws: &Path, q: &str) -> Vec<Value> {
    let v = json_of(bin().args([
        "--workspace",
        &ws.display().to_string(),
        "sql",
        q,
        "--format",
        "json",
    ]));
    v["rows"].as_array().cloned().unwrap_or_default()
}

fn count(ws: &Path, q: &str) -> i64 {
    sql(ws, q)[0]["n"].as_i64().unwrap()
}

#[test]
fn segment_http_api_contract_mapping_and_visibility() {
    let dir = tempfile::tempdir().unwrap();
    let ws = dir.path().join("ws");
    let s = Server::start(&ws, &["--compact-every", "3600"]);
    let a = agent();
    let auth = basic(KEY);
    let track = |body: Value| {
        post(
            &a,
            &s.url,
            "/v1/track",
            body.to_string().as_bytes(),
            Some(&auth),
        )
    };

    // A track call, then the same messageId again: stored once.
    let m = json!({"userId": "u1", "event": "Product Viewed", "messageId": "m-1",
        "timestamp": "2024-03-01T10:00:00Z", "sentAt": "2024-03-01T10:00:00Z",
        "properties": {"product_id": "sku-9", "price": 12.5, "category": "shoes"},
        "context": {"campaign": {"source": "newsletter"}, "device": {"type": "mobile"}}});
    assert_eq!(track(m.clone()), (200, json!({"success": true})));
    assert_eq!(track(m).0, 200);
    // Wrong or missing write key: 401; the key in the body works too.
    let (st, body) = post(
        &a,
        &s.url,
        "/v1/track",
        br#"{"userId":"u","event":"x"}"#,
        Some(&basic("nope")),
    );
    assert_eq!((st, body["error"].as_str()), (401, Some("unauthorized")));
    assert_eq!(
        post(
            &a,
            &s.url,
            "/v1/track",
            br#"{"userId":"u","event":"x"}"#,
            None
        )
        .0,
        401
    );
    let (st, _) = post(
        &a,
        &s.url,
        "/v1/identify",
        format!(
            r#"{{"writeKey":"{KEY}","userId":"u2","traits":{{"plan":"gold"}},"messageId":"m-2"}}"#
        )
        .as_bytes(),
        None,
    );
    assert_eq!(st, 200);
    // Invalid JSON, an event without any id, an oversize event: 400 with a JSON error.
    let (st, body) = post(&a, &s.url, "/v1/track", b"{not json", Some(&auth));
    assert_eq!((st, body["error"].as_str()), (400, Some("invalid_json")));
    let (st, body) = track(json!({"event": "x", "messageId": "m-noid"}));
    assert_eq!((st, body["error"].as_str()), (400, Some("invalid_events")));
    assert!(
        body["rejected"][0]["reason"]
            .as_str()
            .unwrap()
            .contains("userId")
    );
    let (st, body) =
        track(json!({"userId": "u", "event": "x", "properties": {"pad": "a".repeat(33_000)}}));
    assert_eq!((st, body["error"].as_str()), (400, Some("too_large")));
    // A batch with one bad message: the two good ones are stored, the bad one reported (and
    // set aside in the quarantine).
    let batch = json!({"sentAt": "2024-03-01T12:00:10Z", "batch": [
        {"type": "track", "userId": "u1", "event": "Order Completed", "messageId": "m-3",
         "timestamp": "2024-03-01T11:59:40Z",
         "properties": {"order_id": "o-1", "total": 27.5, "subtotal": 25, "shipping": 5, "discount": 2.5,
            "currency": "USD", "products": [{"product_id": "sku-9", "quantity": 2, "price": 12.5}]}},
        {"type": "track", "event": "Order Completed", "messageId": "m-bad"},
        {"type": "track", "userId": "u1", "event": "Experiment Viewed", "messageId": "m-4",
         "properties": {"experiment_id": "exp-1", "variation_name": "b"}},
        {"type": "page", "anonymousId": "a1", "messageId": "m-5", "properties": {"path": "/shoes"}}
    ]});
    let (st, body) = post(
        &a,
        &s.url,
        "/v1/batch",
        batch.to_string().as_bytes(),
        Some(&auth),
    );
    assert_eq!(st, 400, "{body}");
    assert_eq!(body["accepted"], 3);
    assert_eq!(body["rejected"][0]["index"], 1);
    assert_eq!(body["rejected"][0]["messageId"], "m-bad");
    // Too many messages in one batch: refused whole.
    let many = json!({"batch": (0..2501).map(|i| json!({"type": "track", "userId": "u", "event": "x", "messageId": format!("many-{i}")})).collect::<Vec<_>>()});
    let (st, body) = post(
        &a,
        &s.url,
        "/v1/batch",
        many.to_string().as_bytes(),
        Some(&auth),
    );
    assert_eq!((st, body["error"].as_str()), (400, Some("too_many")));
    // gzip bodies.
    let mut gz = flate2::write::GzEncoder::new(Vec::new(), flate2::Compression::default());
    gz.write_all(json!({"batch": [{"type": "track", "userId": "u3", "event": "Signed Up", "messageId": "m-6"}]}).to_string().as_bytes()).unwrap();
    let resp = a
        .post(format!("{}/v1/batch", s.url))
        .header("Authorization", &auth)
        .header("Content-Encoding", "gzip")
        .send(&gz.finish().unwrap()[..])
        .unwrap();
    assert_eq!(resp.status().as_u16(), 200);

    // Visible to `shoplens sql` beside the server, before any compaction.
    let check = |when: &str| {
        let events = sql(
            &ws,
            "SELECT event_id, event, user_id, anonymous_id, item_id, channel, device, page, CAST(ts AS VARCHAR) AS ts FROM events ORDER BY event_id",
        );
        let ids: Vec<&str> = events
            .iter()
            .map(|e| e["event_id"].as_str().unwrap())
            .collect();
        assert_eq!(ids, ["m-1", "m-2", "m-3", "m-4", "m-5", "m-6"], "{when}");
        let e1 = &events[0];
        assert_eq!(
            (
                e1["event"].as_str(),
                e1["item_id"].as_str(),
                e1["channel"].as_str(),
                e1["device"].as_str()
            ),
            (
                Some("product_view"),
                Some("sku-9"),
                Some("newsletter"),
                Some("mobile")
            ),
            "{when}"
        );
        // Clock skew: the client's clock ran 10 s fast, so 11:59:40 on it is 11:59:30 UTC… plus
        // the real delay between sending and arrival, which the test cannot know: the order is
        // stamped receivedAt − 30 s.
        assert_eq!(events[3]["event"], "experiment_viewed");
        assert_eq!(events[4]["page"], "/shoes");
        assert_eq!(events[1]["event"], "identify");
        let o = sql(
            &ws,
            "SELECT order_id, user_id, status, CAST(net_amount AS VARCHAR) AS net, CAST(gross_amount AS VARCHAR) AS gross FROM orders",
        );
        assert_eq!(o.len(), 1, "{when}");
        assert_eq!(
            (
                o[0]["order_id"].as_str(),
                o[0]["status"].as_str(),
                o[0]["net"].as_str(),
                o[0]["gross"].as_str()
            ),
            (
                Some("o-1"),
                Some("completed"),
                Some("27.5000"),
                Some("25.0000")
            ),
            "{when}"
        );
        assert_eq!(
            count(
                &ws,
                "SELECT sum(quantity) AS n FROM order_items WHERE order_id = 'o-1'"
            ),
            2,
            "{when}"
        );
        assert_eq!(
            count(
                &ws,
                "SELECT count(*) AS n FROM exposures WHERE experiment_id = 'exp-1' AND variant = 'b' AND user_id = 'u1'"
            ),
            1,
            "{when}"
        );
        assert_eq!(
            count(
                &ws,
                "SELECT count(*) AS n FROM quarantine WHERE file = 'collector' AND reason LIKE '%userId%' AND line = 1"
            ),
            1,
            "{when}"
        );
    };
    check("from the log");
    // The order's instant: arrival minus the 30 s between its timestamp and the batch's sentAt.
    let skew = sql(
        &ws,
        "SELECT CAST(to_unixtime(ts) AS BIGINT) AS t FROM events WHERE event_id = 'm-3'",
    )[0]["t"]
        .as_i64()
        .unwrap();
    #[expect(
        clippy::disallowed_methods,
        reason = "the collector stamps arrival with the wall clock"
    )]
    let now = std::time::SystemTime::now();
    let now = now.duration_since(std::time::UNIX_EPOCH).unwrap().as_secs() as i64;
    assert!(
        (now - 40..=now).contains(&skew),
        "skew-corrected instant {skew} vs now {now}"
    );

    // Metrics behind the read token; health open.
    let mut r = a.get(format!("{}/metrics", s.url)).call().unwrap();
    assert_eq!(r.status().as_u16(), 401);
    let _ = r.body_mut().read_to_string();
    let mut r = a
        .get(format!("{}/metrics", s.url))
        .header("Authorization", &format!("Bearer {TOKEN}"))
        .call()
        .unwrap();
    let text = r.body_mut().read_to_string().unwrap();
    assert!(text.contains("shoplens_events_accepted_total 6"), "{text}");
    assert!(text.contains("shoplens_events_duplicate_total 1"), "{text}");
    assert!(text.contains("shoplens_wal_fsync_seconds_count"), "{text}");
    assert!(
        text.contains("shoplens_compaction_lag_messages 6"),
        "{text}"
    );
    let mut r = a.get(format!("{}/healthz", s.url)).call().unwrap();
    assert_eq!(r.status().as_u16(), 200);
    let _ = r.body_mut().read_to_string();

    // SIGTERM: a clean exit that compacts the log into the tables; the same rows, once.
    assert!(s.stop().success());
    check("after compaction");
    let manifest: Value =
        serde_json::from_slice(&std::fs::read(ws.join("manifest.json")).unwrap()).unwrap();
    assert!(manifest["collector"]["offset"].as_u64().unwrap() > 0);
    // A restart keeps deduplicating across runs: m-1 again is not stored twice.
    let s = Server::start(&ws, &[]);
    let (st, _) = post(
        &a,
        &s.url,
        "/v1/track",
        json!({"userId": "u1", "event": "Product Viewed", "messageId": "m-1"})
            .to_string()
            .as_bytes(),
        Some(&auth),
    );
    assert_eq!(st, 200);
    assert_eq!(
        count(
            &ws,
            "SELECT count(*) AS n FROM events WHERE event_id = 'm-1'"
        ),
        1
    );
    drop(s);
}

/// A write key over its rate limit gets 429 with the reset instant Segment's clients wait for;
/// another key is not affected.
#[test]
fn rate_limit_is_per_write_key() {
    let dir = tempfile::tempdir().unwrap();
    let ws = dir.path().join("ws");
    let s = Server::start(&ws, &["--rate-limit", "2", "--write-key", "other-key"]);
    let a = agent();
    let body = br#"{"userId":"u","event":"x"}"#;
    let mut limited = 0;
    for _ in 0..6 {
        let resp = a
            .post(format!("{}/v1/track", s.url))
            .header("Authorization", &basic(KEY))
            .send(&body[..])
            .unwrap();
        if resp.status().as_u16() == 429 {
            limited += 1;
            assert!(resp.headers().get("x-ratelimit-reset").is_some());
        }
    }
    assert!(limited >= 3, "{limited} of 6 limited");
    assert_eq!(
        post(&a, &s.url, "/v1/track", body, Some(&basic("other-key"))).0,
        200
    );
    let text = a
        .get(format!("{}/metrics", s.url))
        .header("Authorization", &format!("Bearer {TOKEN}"))
        .call()
        .unwrap()
        .body_mut()
        .read_to_string()
        .unwrap();
    assert!(
        text.contains("shoplens_requests_rate_limited_total"),
        "{text}"
    );
    assert!(s.stop().success());
}

/// kill -9 while two clients send 100k events in batches of 500 with retries; after a restart
/// every acknowledged event is stored exactly once, and after the clients' retries every event.
#[test]
fn kill_9_loses_no_acknowledged_event() {
    const EVENTS: usize = 100_000;
    const PER: usize = 500;
    let dir = tempfile::tempdir().unwrap();
    let ws = dir.path().join("ws");
    let server = Arc::new(Mutex::new(Some(Server::start(
        &ws,
        &["--compact-every", "1"],
    ))));
    let url = Arc::new(Mutex::new(
        server.lock().unwrap().as_ref().unwrap().url.clone(),
    ));
    let acked = Arc::new(Mutex::new(vec![false; EVENTS / PER]));
    let done = Arc::new(AtomicUsize::new(0));
    let batch_body = |b: usize| -> Vec<u8> {
        let msgs: Vec<Value> = (b * PER..(b + 1) * PER)
            .map(|i| json!({"type": "track", "userId": format!("u{}", i % 977), "event": "Product Viewed",
                "messageId": format!("k-{i}"), "properties": {"product_id": format!("p{}", i % 313)}}))
            .collect();
        json!({"batch": msgs}).to_string().into_bytes()
    };
    let clients: Vec<_> = (0..2)
        .map(|c| {
            let (url, acked, done) = (Arc::clone(&url), Arc::clone(&acked), Arc::clone(&done));
            std::thread::spawn(move || {
                let a = agent();
                let auth = basic(KEY);
                for b in (c..EVENTS / PER).step_by(2) {
                    let body = batch_body(b);
                    loop {
                        let u = url.lock().unwrap().clone();
                        let r = a
                            .post(format!("{u}/v1/batch"))
                            .header("Authorization", &auth)
                            .send(&body[..]);
                        match r {
                            Ok(resp) if resp.status().as_u16() == 200 => break,
                            _ => std::thread::sleep(Duration::from_millis(20)),
                        }
                    }
                    acked.lock().unwrap()[b] = true;
                    done.fetch_add(1, Ordering::SeqCst);
                }
            })
        })
        .collect();
    // Kill -9 once 40% of the batches are acknowledged, then count what was acknowledged.
    let t = Instant::now();
    while done.load(Ordering::SeqCst) < EVENTS / PER * 2 / 5 {
        assert!(t.elapsed() < Duration::from_secs(300), "clients stalled");
        std::thread::sleep(Duration::from_millis(5));
    }
    let mut s = server.lock().unwrap().take().unwrap();
    s.child.kill().unwrap();
    s.child.wait().unwrap();
    let before: Vec<bool> = acked.lock().unwrap().clone();
    let n_acked = before.iter().filter(|x| **x).count();
    // Every batch acknowledged before the kill is there exactly once (read from the log and the
    // tables, with no server running).
    let stored = sql(&ws, "SELECT event_id FROM events");
    let mut ids: Vec<&str> = stored
        .iter()
        .map(|r| r["event_id"].as_str().unwrap())
        .collect();
    let total = ids.len();
    ids.sort_unstable();
    ids.dedup();
    assert_eq!(ids.len(), total, "an event was stored twice");
    let have: std::collections::HashSet<&str> = ids.iter().copied().collect();
    for (b, ok) in before.iter().enumerate() {
        if *ok {
            for i in b * PER..(b + 1) * PER {
                assert!(
                    have.contains(format!("k-{i}").as_str()),
                    "acknowledged k-{i} lost"
                );
            }
        }
    }
    assert!(n_acked >= EVENTS / PER * 2 / 5);
    // Restart; the clients retry what was not acknowledged; resend a few acknowledged batches
    // by hand as well.
    let s2 = Server::start(&ws, &["--compact-every", "1"]);
    *url.lock().unwrap() = s2.url.clone();
    *server.lock().unwrap() = Some(s2);
    for c in clients {
        c.join().unwrap();
    }
    let a = agent();
    for b in [0, 1, 2] {
        let u = url.lock().unwrap().clone();
        assert_eq!(
            post(&a, &u, "/v1/batch", &batch_body(b), Some(&basic(KEY))).0,
            200
        );
    }
    // Every event once, from the log and the tables with the server up, and from the tables
    // after its clean stop.
    let exactly_once = || {
        let r = &sql(
            &ws,
            "SELECT count(*) AS n, count(DISTINCT event_id) AS d FROM events",
        )[0];
        assert_eq!(
            (r["n"].as_i64(), r["d"].as_i64()),
            (Some(EVENTS as i64), Some(EVENTS as i64))
        );
    };
    exactly_once();
    let s = server.lock().unwrap().take().unwrap();
    assert!(s.stop().success());
    exactly_once();
}

/// Random and mangled bodies never crash the server or make it answer 5xx; a good request
/// afterwards still works.
#[test]
fn fuzzed_bodies_never_crash_the_server() {
    use rand_like::Lcg;
    let dir = tempfile::tempdir().unwrap();
    let ws = dir.path().join("ws");
    let s = Server::start(&ws, &[]);
    let a = agent();
    let auth = basic(KEY);
    let valid = json!({"batch": [{"type": "track", "userId": "u", "event": "Order Completed", "messageId": "f-0",
        "timestamp": "2024-03-01T11:59:40Z", "properties": {"order_id": "o", "total": 1.5, "products": [{"product_id": "p", "quantity": 1}]}}]})
        .to_string()
        .into_bytes();
    let mut rng = Lcg(20_261_126);
    let paths = [
        "/v1/batch",
        "/v1/track",
        "/v1/identify",
        "/v1/page",
        "/v1/alias",
        "/v1/group",
        "/v1/screen",
    ];
    for i in 0..600 {
        let body: Vec<u8> = match i % 4 {
            // Random bytes.
            0 => (0..rng.below(300)).map(|_| rng.below(256) as u8).collect(),
            // The valid batch with bytes flipped.
            1 => {
                let mut b = valid.clone();
                for _ in 0..1 + rng.below(4) {
                    let at = rng.below(b.len());
                    b[at] = rng.below(256) as u8;
                }
                b
            }
            // Truncated.
            2 => valid[..rng.below(valid.len())].to_vec(),
            // JSON of the wrong shapes.
            _ => {
                let shapes = [
                    json!({"batch": 5}),
                    json!({"batch": [1, "x", null, []]}),
                    json!([]),
                    json!({"batch": [{"type": "track", "userId": {"a": 1}, "event": 3}]}),
                    json!({"batch": [{"type": "track", "userId": "u", "event": "Order Completed", "properties": {"order_id": "o", "products": [{"product_id": "p", "quantity": "lots"}]}}]}),
                    json!({"batch": [{"type": "track", "userId": "u", "event": "x", "timestamp": "yesterday"}]}),
                    json!({"userId": "u", "event": "x", "properties": {"price": "1e999"}}),
                    json!({"batch": [{"type": "alias", "userId": "u"}]}),
                ];
                shapes[rng.below(shapes.len())].to_string().into_bytes()
            }
        };
        let path = paths[rng.below(paths.len())];
        let (st, _) = post(&a, &s.url, path, &body, Some(&auth));
        assert!(
            st < 500,
            "{path} answered {st} to {:?}",
            String::from_utf8_lossy(&body)
        );
    }
    let (st, _) = post(&a, &s.url, "/v1/batch", &valid, Some(&auth));
    assert_eq!(st, 200);
    assert!(s.stop().success());
    // Whatever was accepted is readable, and rejected messages sit in the quarantine.
    assert!(
        count(
            &ws,
            "SELECT count(*) AS n FROM events WHERE event_id = 'f-0'"
        ) == 1
    );
    assert!(
        count(
            &ws,
            "SELECT count(*) AS n FROM quarantine WHERE file = 'collector'"
        ) > 0
    );
}

mod rand_like {
    /// A small seeded generator for the fuzz cases.
    pub(crate) struct Lcg(pub(crate) u64);
    impl Lcg {
        pub(crate) fn below(&mut self, n: usize) -> usize {
            self.0 = self
                .0
                .wrapping_mul(6_364_136_223_846_793_005)
                .wrapping_add(1_442_695_040_888_963_407);
            ((self.0 >> 33) as usize) % n.max(1)
        }
    }
}

fn e2e_dir() -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("../../e2e/segment")
}

/// Segment's own Node client (`@segment/analytics-node`, pinned in e2e/segment) sends a shop
/// session; every call is then found with `shoplens sql`. Needs node and npm: CI installs them
/// and sets SHOPLENS_REQUIRE_NODE=1, which turns a missing node into a failure.
#[test]
fn segment_node_client_events_are_queryable() {
    let have_node = Command::new("node")
        .arg("--version")
        .output()
        .is_ok_and(|o| o.status.success());
    if !have_node {
        assert!(
            std::env::var_os("SHOPLENS_REQUIRE_NODE").is_none(),
            "node is required (SHOPLENS_REQUIRE_NODE is set)"
        );
        let mut err = std::io::stderr();
        let _ = writeln!(err, "skipped: node is not installed");
        return;
    }
    let e2e = e2e_dir();
    if !e2e.join("node_modules/@segment/analytics-node").exists() {
        let st = Command::new("npm")
            .args(["ci", "--no-audit", "--no-fund"])
            .current_dir(&e2e)
            .status()
            .unwrap();
        assert!(st.success(), "npm ci failed in e2e/segment");
    }
    let dir = tempfile::tempdir().unwrap();
    let ws = dir.path().join("ws");
    let s = Server::start(&ws, &[]);
    let v = json_of(
        Command::new("node")
            .arg("send.mjs")
            .current_dir(&e2e)
            .env("SHOPLENS_URL", &s.url)
            .env("SHOPLENS_WRITE_KEY", KEY),
    );
    assert_eq!(v, json!({"sent": 10, "failed": 0}));
    let events = sql(&ws, "SELECT event FROM events ORDER BY event");
    let names: Vec<&str> = events
        .iter()
        .map(|e| e["event"].as_str().unwrap())
        .collect();
    assert_eq!(
        names,
        [
            "add_to_cart",
            "alias",
            "checkout_start",
            "experiment_viewed",
            "group",
            "identify",
            "order",
            "page_view",
            "product_view",
            "review"
        ]
    );
    assert_eq!(
        count(
            &ws,
            "SELECT count(*) AS n FROM orders WHERE order_id = 'node-o-1' AND user_id = 'node-user-1'"
        ),
        1
    );
    assert_eq!(
        count(
            &ws,
            "SELECT count(*) AS n FROM reviews WHERE item_id = 'sku-1' AND rating = 5"
        ),
        1
    );
    assert_eq!(
        count(
            &ws,
            "SELECT count(*) AS n FROM exposures WHERE experiment_id = 'node-exp'"
        ),
        1
    );
    assert!(s.stop().success());
    assert_eq!(count(&ws, "SELECT count(*) AS n FROM events"), 10);
}

/// The JSON API: every read-only analysis under /api with the command line's parameters and the
/// same JSON as `--format json`; the read token is required (a write key cannot read); unknown
/// endpoints, parameters and commands that write or read files are refused with stable codes.
#[test]
fn api_answers_what_the_command_line_prints() {
    let dir = tempfile::tempdir().unwrap();
    let ws = small_demo(dir.path());
    let w = ws.display().to_string();
    let cli = |args: &[&str]| -> Value {
        json_of(
            bin()
                .args(["--workspace", &w, "--format", "json"])
                .args(args),
        )
    };
    let s = Server::start(&ws, &[]);
    let a = agent();
    let get = |path: &str, token: Option<&str>| -> (u16, Value) {
        let mut req = a.get(format!("{}{path}", s.url));
        if let Some(t) = token {
            req = req.header("Authorization", &format!("Bearer {t}"));
        }
        let mut r = req.call().unwrap();
        let st = r.status().as_u16();
        (
            st,
            serde_json::from_str(&r.body_mut().read_to_string().unwrap()).unwrap_or(Value::Null),
        )
    };
    let api = |path: &str| -> Value {
        let (st, v) = get(path, Some(TOKEN));
        assert_eq!(st, 200, "{path}: {v}");
        v
    };
    // The same JSON as the command line, for a spread of analyses and parameters.
    assert_eq!(
        api("/api/funnel?steps=product_view,add_to_cart,order&window=24h"),
        cli(&[
            "funnel",
            "--steps",
            "product_view,add_to_cart,order",
            "--window",
            "24h"
        ])
    );
    assert_eq!(api("/api/rfm"), cli(&["rfm"]));
    assert_eq!(api("/api/kpis?days=7"), cli(&["kpis", "--days", "7"]));
    assert_eq!(
        api("/api/products?lang=zh-CN"),
        cli(&["--lang", "zh-CN", "products"])
    );
    assert_eq!(
        api("/api/experiment/analyze?experiment=checkout-button&cuped=true"),
        cli(&["experiment", "analyze", "checkout-button", "--cuped"])
    );
    let user = cli(&[
        "sql",
        "SELECT user_id FROM orders WHERE user_id IS NOT NULL ORDER BY user_id LIMIT 1",
    ])["rows"][0]["user_id"]
        .as_str()
        .unwrap()
        .to_string();
    assert_eq!(
        api(&format!("/api/recommend/user?users={user}&k=5")),
        cli(&["recommend", "user", &user, "--k", "5"])
    );
    assert_eq!(
        api("/api/activity?categories=3&from=2025-09-01&as_of=2025-09-30"),
        cli(&[
            "--as-of",
            "2025-09-30",
            "activity",
            "--categories",
            "3",
            "--from",
            "2025-09-01"
        ])
    );
    assert_eq!(
        api("/api/cohorts?period=week&basis=registration&active=events&by_channel=true"),
        cli(&[
            "cohorts",
            "--period",
            "week",
            "--basis",
            "registration",
            "--active",
            "events",
            "--by-channel"
        ])
    );
    assert_eq!(
        api("/api/cohorts?basis=first-purchase&from=2025-03-01"),
        cli(&["cohorts", "--from", "2025-03-01"])
    );
    assert_eq!(
        api("/api/lifecycle?period=month&event=order&as_of=2025-10-31"),
        cli(&[
            "--as-of",
            "2025-10-31",
            "lifecycle",
            "--period",
            "month",
            "--event",
            "order"
        ])
    );
    let (st, v) = get("/api/cohorts?period=fortnight", Some(TOKEN));
    assert_eq!(
        (st, v["error"].as_str()),
        (400, Some("invalid_parameter")),
        "{v}"
    );
    assert_eq!(
        api("/api/clv?time_unit=month&horizon=6&calibration_end=2025-09-30"),
        cli(&[
            "clv",
            "--time-unit",
            "month",
            "--horizon",
            "6",
            "--calibration-end",
            "2025-09-30"
        ])
    );
    assert_eq!(
        api("/api/returns?by=category&from=2025-06-01&min_units=5"),
        cli(&[
            "returns",
            "--by",
            "category",
            "--from",
            "2025-06-01",
            "--min-units",
            "5"
        ])
    );
    assert_eq!(
        api("/api/inventory?slow_days=30&to=2025-11-30"),
        cli(&["inventory", "--slow-days", "30", "--to", "2025-11-30"])
    );
    assert_eq!(
        api("/api/repurchase?days=30&as_of=2025-09-30"),
        cli(&["--as-of", "2025-09-30", "repurchase", "--days", "30"])
    );
    let item = cli(&[
        "sql",
        "SELECT item_id FROM order_items ORDER BY item_id LIMIT 1",
    ])["rows"][0]["item_id"]
        .as_str()
        .unwrap()
        .to_string();
    // Every other endpoint, each with a parameter of its own where it takes one.
    let rest: Vec<(String, Vec<String>)> = [
        ("/api/tables", "tables"),
        ("/api/quarantine?limit=5", "quarantine --limit 5"),
        (
            "/api/paths?start=product_view&steps=3",
            "paths --start product_view --steps 3",
        ),
        (
            "/api/churn?silence=60&limit=5",
            "churn --silence 60 --limit 5",
        ),
        (
            "/api/stages?period=week&from=2025-09-01",
            "stages --period week --from 2025-09-01",
        ),
        (
            "/api/channels?from=2025-06-01&daily=true",
            "channels --from 2025-06-01 --daily",
        ),
        ("/api/campaigns", "campaigns"),
        (
            "/api/basket?min_support=0.005&level=category",
            "basket --min-support 0.005 --level category",
        ),
        (
            "/api/recommend/evaluate?split_at=2025-10-01&k=5&factors=8&iterations=3",
            "recommend evaluate --split-at 2025-10-01 --k 5 --factors 8 --iterations 3",
        ),
        (
            &format!("/api/recommend/item?item={item}&basis=bought"),
            &format!("recommend item {item} --basis bought"),
        ),
        (
            &format!("/api/recommend/tags?users={user}&min_share=0.2"),
            &format!("recommend tags {user} --min-share 0.2"),
        ),
        (
            "/api/recommend/export?audience=vip&model=popularity&k=3",
            "recommend export --audience vip --model popularity --k 3",
        ),
        ("/api/experiment/list", "experiment list"),
        (
            "/api/experiment/power?baseline=0.1&mde=0.02",
            "experiment power --baseline 0.1 --mde 0.02",
        ),
        ("/api/audience/fields", "audience fields"),
        (
            "/api/audience/list?as_of=2025-10-31",
            "--as-of 2025-10-31 audience list",
        ),
        (
            "/api/audience/show?name=vip&limit=3",
            "audience show vip --limit 3",
        ),
        ("/api/audience/exports", "audience exports"),
    ]
    .iter()
    .map(|(p, c)| (p.to_string(), c.split(' ').map(str::to_string).collect()))
    .collect();
    // Timings (the recommenders' fit_seconds) differ from run to run; everything else equals.
    fn untimed(v: &mut Value) {
        match v {
            Value::Object(m) => {
                m.remove("fit_seconds");
                m.values_mut().for_each(untimed);
            }
            Value::Array(a) => a.iter_mut().for_each(untimed),
            _ => {}
        }
    }
    // Integers and text equal exactly; other numbers to 1e-12 relative (the order DataFusion's
    // partitions deliver rows in changes the last digit of a float sum from run to run).
    fn same(a: &Value, b: &Value) -> bool {
        match (a, b) {
            (Value::Number(x), Value::Number(y)) if !(x.is_i64() && y.is_i64()) => {
                let (x, y) = (x.as_f64().unwrap(), y.as_f64().unwrap());
                (x - y).abs() <= 1e-12 * x.abs().max(y.abs())
            }
            (Value::Array(x), Value::Array(y)) => {
                x.len() == y.len() && x.iter().zip(y).all(|(x, y)| same(x, y))
            }
            (Value::Object(x), Value::Object(y)) => {
                x.len() == y.len() && x.iter().all(|(k, v)| y.get(k).is_some_and(|w| same(v, w)))
            }
            _ => a == b,
        }
    }
    for (path, args) in &rest {
        let args: Vec<&str> = args.iter().map(String::as_str).collect();
        let (mut a, mut c) = (api(path), cli(&args));
        untimed(&mut a);
        untimed(&mut c);
        assert!(same(&a, &c), "{path}: {a} against {c}");
    }
    // The two lists above cover every endpoint the API documents.
    let tested: Vec<String> = [
        "funnel",
        "rfm",
        "kpis",
        "products",
        "experiment/analyze",
        "recommend/user",
        "activity",
        "cohorts",
        "lifecycle",
        "clv",
        "returns",
        "inventory",
        "repurchase",
    ]
    .iter()
    .map(|p| format!("/api/{p}"))
    .chain(
        rest.iter()
            .map(|(p, _)| p.split('?').next().unwrap().to_string()),
    )
    .collect();
    let documented = api("/api/openapi.json");
    for path in documented["paths"].as_object().unwrap().keys() {
        assert!(
            tested.contains(path),
            "{path} is not compared with the command line"
        );
    }
    // The OpenAPI document lists every endpoint with its parameters.
    let doc = api("/api/openapi.json");
    assert_eq!(doc["openapi"], "3.0.3");
    let params = doc["paths"]["/api/funnel"]["get"]["parameters"]
        .as_array()
        .unwrap();
    assert!(params.iter().any(|p| p["name"] == "steps"));
    assert!(
        doc["paths"]["/api/recommend/user"]["get"]["parameters"]
            .as_array()
            .unwrap()
            .iter()
            .any(|p| p["name"] == "users")
    );
    // Without the token, or with a write key: 401; every path under /api.
    for path in ["/api/rfm", "/api/openapi.json", "/api/nope"] {
        assert_eq!(get(path, None).0, 401, "{path}");
        assert_eq!(get(path, Some(KEY)).0, 401, "{path}");
    }
    let r = a
        .get(format!("{}/api/rfm", s.url))
        .header("Authorization", &basic(KEY))
        .call()
        .unwrap();
    assert_eq!(r.status().as_u16(), 401);
    // Stable error codes; commands that write or read outside the workspace are not endpoints.
    assert_eq!(
        get("/api/funnel?stepz=a", Some(TOKEN)).1["error"],
        "invalid_parameter"
    );
    assert_eq!(
        get("/api/funnel?steps=a,b&unit=planet", Some(TOKEN)).1["error"],
        "invalid_parameter"
    );
    // The typed endpoints (called in the server, no command line) answer the same codes.
    let (st, v) = get("/api/rfm?clustrs=3", Some(TOKEN));
    assert_eq!(
        (st, v["error"].as_str()),
        (400, Some("invalid_parameter")),
        "{v}"
    );
    assert!(v["message"].as_str().unwrap().contains("clustrs"), "{v}");
    let (st, v) = get("/api/rfm?clusters=many", Some(TOKEN));
    assert_eq!(
        (st, v["error"].as_str()),
        (422, Some("analysis_failed")),
        "{v}"
    );
    assert!(v["message"].as_str().unwrap().contains("many"), "{v}");
    let (st, v) = get("/api/kpis?days=week", Some(TOKEN));
    assert_eq!(
        (st, v["error"].as_str()),
        (400, Some("invalid_parameter")),
        "{v}"
    );
    let (st, v) = get("/api/repurchase?as_of=someday", Some(TOKEN));
    assert_eq!(
        (st, v["error"].as_str()),
        (422, Some("analysis_failed")),
        "{v}"
    );
    // A value the command itself refuses: 422 with the command's own message.
    let (st, v) = get("/api/funnel?window=eternity&steps=a,b", Some(TOKEN));
    assert_eq!((st, v["error"].as_str()), (422, Some("analysis_failed")));
    assert!(v["message"].as_str().unwrap().contains("eternity"), "{v}");
    for path in [
        "/api/sql?query=SELECT%201",
        "/api/ingest",
        "/api/experiment/analyze-file",
        "/api/audience/export",
        "/api/demo",
        "/api/../manifest.json",
    ] {
        let (st, v) = get(path, Some(TOKEN));
        assert!(st == 404 && v["error"] == "not_found", "{path}: {st} {v}");
    }
    assert_eq!(
        get("/api/experiment/analyze?experiment=no-such", Some(TOKEN)).1["error"],
        "analysis_failed"
    );
    // Security headers on every answer.
    let r = a.get(format!("{}/api/rfm", s.url)).call().unwrap();
    assert_eq!(r.headers()["x-content-type-options"], "nosniff");
    assert!(r.headers().contains_key("content-security-policy"));
    assert!(s.stop().success());
}
