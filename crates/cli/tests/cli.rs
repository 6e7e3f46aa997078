//! The `shoplens` binary as users and scripts call it.
#![allow(
    clippy::unwrap_used,
    clippy::expect_used,
    reason = "test helpers fail loudly"
)]

use std::path::{Path, PathBuf};
use std::process::{Command, Output, Stdio};
use std::time::Duration;

fn bin() -> Command {
    let mut c = Command::new(env!("CARGO_BIN_EXE_shoplens"));
    c.env_remove("SHOPLENS_WORKSPACE");
    c
}

fn data(rel: &str) -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR"))
        .join("../../../shared/data")
        .join(rel)
}

fn run(args: &[&str]) -> Output {
    bin().args(args).output().unwrap()
}

fn ok(args: &[&str]) -> String {
    let o = run(args);
    assert!(
        o.status.success(),
        "{args:?} failed: {}",
        String::from_utf8_lossy(&o.stderr)
    );
    String::from_utf8(o.stdout).unwrap()
}

fn w(dir: &Path) -> String {
    dir.join("ws").display().to_string()
}

#[test]
fn cdnow_acceptance_tables_json() {
    let dir = tempfile::tempdir().unwrap();
    let ws = w(dir.path());
    let master = data("cdnow/CDNOW_master.txt").display().to_string();
    ok(&["--workspace", &ws, "ingest", "--preset", "cdnow", &master]);
    let out = ok(&["--workspace", &ws, "tables", "--format", "json"]);
    let v: serde_json::Value = serde_json::from_str(&out).unwrap();
    let orders = v["tables"]
        .as_array()
        .unwrap()
        .iter()
        .find(|t| t["name"] == "orders")
        .unwrap();
    assert_eq!(orders["rows"], 69_659);
    assert_eq!(orders["users"], 23_570);
    assert_eq!(orders["min_ts"], "1997-01-01T00:00:00-05:00");
    // As of the newest timestamp in the workspace, never the wall clock.
    assert_eq!(v["as_of"], "1998-06-30T00:00:00-04:00");
    let pinned: serde_json::Value = serde_json::from_str(&ok(&[
        "--workspace",
        &ws,
        "tables",
        "--format",
        "json",
        "--as-of",
        "1997-12-31",
    ]))
    .unwrap();
    assert_eq!(pinned["as_of"], "1997-12-31T23:59:59.999999-05:00");
    // Global flags after the subcommand, and from the environment.
    let after = ok(&["tables", "--format", "json", "--workspace", &ws]);
    assert_eq!(after, out);
    let env = bin()
        .args(["tables", "--format", "json"])
        .env("SHOPLENS_WORKSPACE", &ws)
        .output()
        .unwrap();
    assert_eq!(String::from_utf8(env.stdout).unwrap(), out);
    // The same file again is refused, naming --force.
    let again = run(&["--workspace", &ws, "ingest", "--preset", "cdnow", &master]);
    assert!(!again.status.success());
    assert!(String::from_utf8_lossy(&again.stderr).contains("--force"));
}

#[test]
fn sql_in_three_formats() {
    let dir = tempfile::tempdir().unwrap();
    let ws = w(dir.path());
    ok(&[
        "-q",
        "--workspace",
        &ws,
        "ingest",
        "--preset",
        "groceries",
        &data("groceries/groceries.csv").display().to_string(),
    ]);
    let q = "SELECT item_id, count(*) AS baskets FROM order_items GROUP BY item_id ORDER BY baskets DESC, item_id LIMIT 2";
    let csv = ok(&["--workspace", &ws, "--format", "csv", "sql", q]);
    assert_eq!(
        csv,
        "item_id,baskets\nwhole milk,2513\nother vegetables,1903\n"
    );
    let json: serde_json::Value =
        serde_json::from_str(&ok(&["--workspace", &ws, "sql", q, "--format", "json"])).unwrap();
    assert_eq!(json["rows"][1]["baskets"], 1903);
    assert_eq!(json["columns"][0], "item_id");
    let table = ok(&["--workspace", &ws, "sql", q]);
    assert!(table.contains("whole milk") && table.contains("2513"));
}

/// Text that reaches a CSV (ids from the collector, names, SQL results) never runs as a formula
/// in a spreadsheet: a cell starting with =, +, -, @, tab or CR gets a leading apostrophe, numbers
/// stay as they are, and `--csv-raw` writes everything as it is.
#[test]
fn csv_cells_never_run_as_formulas() {
    let dir = tempfile::tempdir().unwrap();
    let ws = w(dir.path());
    // Online Retail's layout, with a stock code that is a formula, bought by three customers.
    let f = dir.path().join("retail.csv");
    std::fs::write(
        &f,
        "InvoiceNo,StockCode,Description,Quantity,InvoiceDate,UnitPrice,CustomerID,Country\n\
         1,\"=HYPERLINK(\"\"http://x\"\",\"\"y\"\")\",bad,1,2011-01-01 10:00:00,2.5,101.0,United Kingdom\n\
         2,\"=HYPERLINK(\"\"http://x\"\",\"\"y\"\")\",bad,1,2011-01-02 10:00:00,2.5,102.0,United Kingdom\n\
         3,\"=HYPERLINK(\"\"http://x\"\",\"\"y\"\")\",bad,1,2011-01-03 10:00:00,2.5,103.0,United Kingdom\n\
         4,PLAIN,good,1,2011-01-04 10:00:00,2.5,104.0,United Kingdom\n",
    )
    .unwrap();
    let fs = f.display().to_string();
    ok(&[
        "-q",
        "--workspace",
        &ws,
        "ingest",
        "--preset",
        "online-retail",
        &fs,
    ]);

    let q = "SELECT '=HYPERLINK(\"http://x\")' AS v, '@SUM(A1)' AS at, '-12.5' AS n, -3 AS k";
    let csv = ok(&["--workspace", &ws, "--format", "csv", "sql", q]);
    assert_eq!(
        csv,
        "v,at,n,k\n\"'=HYPERLINK(\"\"http://x\"\")\",'@SUM(A1),-12.5,-3\n"
    );
    let raw = ok(&["--workspace", &ws, "--format", "csv", "--csv-raw", "sql", q]);
    assert_eq!(
        raw,
        "v,at,n,k\n\"=HYPERLINK(\"\"http://x\"\")\",@SUM(A1),-12.5,-3\n"
    );

    ok(&[
        "-q",
        "--workspace",
        &ws,
        "audience",
        "create",
        "everyone",
        "--where",
        "user_id IS NOT NULL",
    ]);
    // The audience's members as JSON (rows keyed by column), the formula id among them as data.
    let shown: serde_json::Value = serde_json::from_str(&ok(&[
        "--workspace",
        &ws,
        "--format",
        "json",
        "audience",
        "show",
        "everyone",
    ]))
    .unwrap();
    assert_eq!(shown["customers"], 4);
    assert_eq!(shown["members"]["rows"].as_array().unwrap().len(), 4);
    assert_eq!(shown["members"]["columns"][0], "user_id");
    let args = [
        "--workspace",
        &ws,
        "--format",
        "csv",
        "recommend",
        "export",
        "--audience",
        "everyone",
        "--model",
        "popularity",
    ];
    let lists = ok(&args);
    assert!(lists.contains("'=HYPERLINK"), "{lists}");
    for line in lists.lines() {
        for cell in line.split(',') {
            assert!(!cell.trim_start_matches('"').starts_with('='), "{line}");
        }
    }
    let mut raw_args = args.to_vec();
    raw_args.insert(0, "--csv-raw");
    let raw = ok(&raw_args);
    assert!(raw.contains(",\"=HYPERLINK"), "{raw}");
}

/// The read token is refused at start when it equals a write key (write keys are published in
/// web pages) or is shorter than 24 characters; nothing is served.
#[test]
fn serve_refuses_a_weak_read_token() {
    let dir = tempfile::tempdir().unwrap();
    let ws = w(dir.path());
    let shared = "shared-key-0123456789abcdefghij";
    let cases: [(String, String, &str); 4] = [
        (shared.into(), shared.into(), "equals a write key"),
        (
            "pk_live_1,other-key".into(),
            "pk_live_1".into(),
            "at least 24",
        ),
        (format!("k1,{shared}"), shared.into(), "equals a write key"),
        ("k1".into(), "short-token".into(), "at least 24"),
    ];
    for (keys, token, says) in cases {
        let mut child = bin()
            .args(["--workspace", &ws, "serve", "--addr", "127.0.0.1:0"])
            .args(["--write-key", &keys, "--read-token", &token])
            .env_remove("SHOPLENS_WRITE_KEYS")
            .env_remove("SHOPLENS_READ_TOKEN")
            .stdin(Stdio::null())
            .stdout(Stdio::piped())
            .stderr(Stdio::piped())
            .spawn()
            .unwrap();
        // A server that starts anyway would run until killed: give it 30 s to refuse.
        let started = std::time::Instant::now();
        while child.try_wait().unwrap().is_none() {
            if started.elapsed() > Duration::from_secs(30) {
                let _ = child.kill();
                panic!("serve started with read token {token:?} and write keys {keys:?}");
            }
            std::thread::sleep(Duration::from_millis(50));
        }
        let o = child.wait_with_output().unwrap();
        assert!(!o.status.success(), "{keys} / {token}");
        let err = String::from_utf8_lossy(&o.stderr);
        assert!(err.contains(says), "{err}");
        assert!(!String::from_utf8_lossy(&o.stdout).contains("listening"));
    }
}

#[test]
fn errors_are_sentences_not_panics() {
    let dir = tempfile::tempdir().unwrap();
    let ws = w(dir.path());
    let o = run(&["--workspace", &ws, "tables"]);
    assert!(!o.status.success());
    let err = String::from_utf8_lossy(&o.stderr);
    assert!(err.starts_with("error: no shoplens workspace at"), "{err}");
    let o = run(&["--workspace", &ws, "ingest", "--preset", "nope", "x.csv"]);
    assert!(String::from_utf8_lossy(&o.stderr).contains("unknown preset `nope`; presets: cdnow"));
    let o = run(&[
        "--workspace",
        &ws,
        "ingest",
        "--preset",
        "cdnow",
        "missing.txt",
    ]);
    assert!(String::from_utf8_lossy(&o.stderr).contains("missing.txt: No such file"));
    assert!(!String::from_utf8_lossy(&o.stderr).contains("panicked"));
}

#[test]
fn quarantine_lists_bad_rows() {
    let dir = tempfile::tempdir().unwrap();
    let ws = w(dir.path());
    let f = dir.path().join("UserBehavior.csv");
    std::fs::write(
        &f,
        "1,10,100,pv,1511544070\n2,20,200,like,1511544071\n3,30,300,buy,yesterday\n",
    )
    .unwrap();
    let summary = ok(&[
        "--workspace",
        &ws,
        "ingest",
        "--preset",
        "taobao",
        &f.display().to_string(),
        "--format",
        "json",
    ]);
    let s: serde_json::Value = serde_json::from_str(&summary).unwrap();
    assert_eq!(s["files"][0]["read"], 3);
    assert_eq!(s["files"][0]["stored"], 1);
    assert_eq!(s["files"][0]["quarantined"], 2);
    let q: serde_json::Value =
        serde_json::from_str(&ok(&["--workspace", &ws, "quarantine", "--format", "json"])).unwrap();
    let rows = q["rows"].as_array().unwrap();
    assert_eq!(rows.len(), 2);
    assert_eq!(rows[0]["line"], 2);
    assert_eq!(rows[0]["column"], "behavior_type");
    assert!(
        rows[0]["reason"]
            .as_str()
            .unwrap()
            .starts_with("unmapped value `like`")
    );
    assert_eq!(rows[1]["column"], "timestamp");
}

/// A Taobao-layout file big enough that ingesting it takes a while.
fn big_taobao(path: &Path, rows: u64) {
    use std::io::Write;
    let mut f = std::io::BufWriter::new(std::fs::File::create(path).unwrap());
    for i in 0..rows {
        writeln!(
            f,
            "{},{},{},{},{}",
            i % 50_000,
            i % 90_001,
            i % 977,
            ["pv", "cart", "fav", "buy"][(i % 4) as usize],
            1_511_539_200 + i % 777_600
        )
        .unwrap();
    }
}

#[test]
fn sigkill_during_ingest_leaves_the_workspace_as_it_was() {
    let dir = tempfile::tempdir().unwrap();
    let ws = w(dir.path());
    let small = data("taobao_sample/UserBehavior_head_sample.csv")
        .display()
        .to_string();
    ok(&[
        "-q",
        "--workspace",
        &ws,
        "ingest",
        "--preset",
        "taobao",
        &small,
    ]);
    let before = ok(&["--workspace", &ws, "tables", "--format", "json"]);
    let big = dir.path().join("big.csv");
    big_taobao(&big, 3_000_000);
    let mut killed_mid_way = 0;
    for delay_ms in [150u64, 500, 1200] {
        let mut child = bin()
            .args([
                "-q",
                "--workspace",
                &ws,
                "ingest",
                "--preset",
                "taobao",
                "--force",
                &big.display().to_string(),
            ])
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .spawn()
            .unwrap();
        std::thread::sleep(Duration::from_millis(delay_ms));
        if child.try_wait().unwrap().is_none() {
            killed_mid_way += 1;
            // Child::kill sends SIGKILL on Unix.
            child.kill().unwrap();
        }
        child.wait().unwrap();
        let now = ok(&["--workspace", &ws, "tables", "--format", "json"]);
        assert_eq!(
            now, before,
            "a killed ingest must leave the published state untouched"
        );
    }
    assert!(
        killed_mid_way >= 1,
        "the ingest finished before every kill; make the file larger"
    );
    // The lock died with the process, and the next writer cleans up and succeeds.
    let tiny = dir.path().join("tiny.csv");
    std::fs::write(&tiny, "9,9,9,pv,1511544070\n").unwrap();
    ok(&[
        "-q",
        "--workspace",
        &ws,
        "ingest",
        "--preset",
        "taobao",
        &tiny.display().to_string(),
    ]);
    let staging = dir.path().join("ws/staging");
    assert!(!staging.exists() || std::fs::read_dir(&staging).unwrap().next().is_none());
}

#[test]
fn demo_at_small_scale_then_sql() {
    let dir = tempfile::tempdir().unwrap();
    let ws = w(dir.path());
    let out = ok(&[
        "--workspace",
        &ws,
        "demo",
        "--scale",
        "0.01",
        "--format",
        "json",
    ]);
    let v: serde_json::Value = serde_json::from_str(&out).unwrap();
    assert_eq!(v["demo"]["customers"], 200);
    assert_eq!(v["demo"]["already_present"], false);
    let again: serde_json::Value = serde_json::from_str(&ok(&[
        "--workspace",
        &ws,
        "demo",
        "--scale",
        "0.01",
        "--format",
        "json",
    ]))
    .unwrap();
    assert_eq!(again["demo"]["already_present"], true);
    let csv = ok(&[
        "--workspace",
        &ws,
        "--format",
        "csv",
        "sql",
        "SELECT count(*) AS n FROM customers",
    ]);
    assert_eq!(csv, "n\n200\n");
    let bad = run(&["--workspace", &ws, "--as-of", "yesterday", "tables"]);
    assert!(
        String::from_utf8_lossy(&bad.stderr).contains("--as-of"),
        "{}",
        String::from_utf8_lossy(&bad.stderr)
    );
}

#[test]
fn experiment_assign_matches_growthbook_vectors() {
    let text = std::fs::read_to_string(data("growthbook_hash/assign.csv")).unwrap();
    // Rows of one (seed, weights, coverage) group; ids without commas or quotes, non-empty.
    let mut ids = Vec::new();
    let mut want = Vec::new();
    for line in text.lines().skip(1) {
        if let Some(rest) = line.strip_prefix("checkout-button,")
            && let Some((id, tail)) = rest.split_once(",\"[0.5, 0.5]\",1.0,")
            && !id.is_empty()
            && !id.contains('"')
        {
            ids.push(id.to_string());
            want.push(format!("{id},{tail}"));
        }
    }
    assert!(want.len() > 20, "vectors found: {}", want.len());
    let dir = tempfile::tempdir().unwrap();
    let file = dir.path().join("ids.txt");
    // CRLF, with blank lines that must be skipped.
    std::fs::write(&file, format!("{}\r\n\r\n", ids.join("\r\n\r\n"))).unwrap();
    let out = ok(&[
        "experiment",
        "assign",
        "--seed",
        "checkout-button",
        "--weights",
        "0.5,0.5",
        "--coverage",
        "1.0",
        &file.display().to_string(),
        "--format",
        "csv",
    ]);
    let mut lines = out.lines();
    assert_eq!(lines.next(), Some("user_id,variant"));
    assert_eq!(lines.map(str::to_string).collect::<Vec<_>>(), want);
    // Outside coverage is -1.
    let narrow = ok(&[
        "experiment",
        "assign",
        "--seed",
        "s",
        "--weights",
        "0.2,0.3,0.5",
        "--coverage",
        "0",
        &file.display().to_string(),
        "--format",
        "csv",
    ]);
    assert!(narrow.lines().skip(1).all(|l| l.ends_with(",-1")));
}

#[test]
fn funnel_on_taobao_json_contract_and_sql_agree() {
    let dir = tempfile::tempdir().unwrap();
    let ws = w(dir.path());
    let f = data("taobao_sample/UserBehavior_head_sample.csv")
        .display()
        .to_string();
    ok(&["--workspace", &ws, "-q", "ingest", "--preset", "taobao", &f]);
    let steps = "product_view,add_to_cart,order";
    for mode in ["default", "strict-order", "strict-increase"] {
        let out = ok(&[
            "--workspace",
            &ws,
            "funnel",
            "--steps",
            steps,
            "--window",
            "24h",
            "--mode",
            mode,
            "--format",
            "json",
        ]);
        let v: serde_json::Value = serde_json::from_str(&out).unwrap();
        assert_eq!(v["users_total"], 814, "{mode}");
        let st = v["steps"].as_array().unwrap();
        assert_eq!(st.len(), 3);
        for (s, name) in st.iter().zip(steps.split(',')) {
            assert_eq!(s["step"], name);
            for key in [
                "users",
                "conversion_from_previous",
                "conversion_from_first",
                "median_seconds_to_convert",
                "p90_seconds_to_convert",
                "drop_off",
                "drop_off_rate",
            ] {
                assert!(s.get(key).is_some(), "{mode}: {key} missing");
            }
        }
        // The same levels through the SQL aggregate.
        let sql = format!(
            "SELECT count(*) FILTER (WHERE l >= 1), count(*) FILTER (WHERE l >= 2), count(*) FILTER (WHERE l >= 3) FROM \
             (SELECT user_id, window_funnel(86400, '{mode}', ts, event = 'product_view', event = 'add_to_cart', event = 'order') AS l \
             FROM events GROUP BY user_id)"
        );
        let csv = ok(&["--workspace", &ws, "--format", "csv", "sql", &sql]);
        let counts: Vec<u64> = csv
            .lines()
            .nth(1)
            .unwrap()
            .split(',')
            .map(|x| x.parse().unwrap())
            .collect();
        let users: Vec<u64> = st.iter().map(|s| s["users"].as_u64().unwrap()).collect();
        assert_eq!(counts, users, "{mode}");
    }
    // Level counts checked against ClickHouse (scripts/funnel_vs_chdb.py on this file).
    let out = ok(&[
        "--workspace",
        &ws,
        "funnel",
        "--steps",
        steps,
        "--format",
        "json",
    ]);
    let v: serde_json::Value = serde_json::from_str(&out).unwrap();
    let users: Vec<u64> = v["steps"]
        .as_array()
        .unwrap()
        .iter()
        .map(|s| s["users"].as_u64().unwrap())
        .collect();
    assert_eq!(users, vec![812, 589, 279]);

    // A readable table, and clear errors.
    let table = ok(&["--workspace", &ws, "funnel", "--steps", steps]);
    assert!(table.contains("cart_abandonment"), "{table}");
    for (args, says) in [
        (
            vec!["funnel", "--steps", steps, "--window", "soon"],
            "not a duration",
        ),
        (
            vec!["funnel", "--steps", steps, "--breakdown", "weather"],
            "unknown breakdown",
        ),
        (
            vec!["funnel", "--steps", steps, "--same", "price"],
            "not an event column",
        ),
        (
            vec!["funnel", "--steps", steps, "--step-window", "1:1h"],
            "step must be",
        ),
        (
            vec!["funnel", "--steps", steps, "--from", "yesterday"],
            "not a date",
        ),
    ] {
        let mut a = vec!["--workspace", ws.as_str()];
        a.extend(args);
        let o = run(&a);
        assert!(!o.status.success());
        let err = String::from_utf8_lossy(&o.stderr);
        assert!(err.contains(says) && !err.contains("panicked"), "{err}");
    }
}

fn hillstrom_file() -> String {
    data(
        "hillstrom/Kevin_Hillstrom_MineThatData_E-MailAnalytics_DataMiningChallenge_2008.03.20.csv",
    )
    .display()
    .to_string()
}

/// `experiment analyze-file` on the Hillstrom file (each e-mail arm against "No E-Mail") with
/// these metrics and options, as JSON.
fn hillstrom(metrics: &str, extra: &[&str]) -> serde_json::Value {
    let file = hillstrom_file();
    let mut args = vec![
        "experiment",
        "analyze-file",
        &file,
        "--variant-col",
        "segment",
        "--control",
        "No E-Mail",
        "--metrics",
        metrics,
        "--format",
        "json",
    ];
    args.extend(extra);
    serde_json::from_str(&ok(&args)).unwrap()
}

/// `--sequential` on the Hillstrom file equals GrowthBook's gbstats `SequentialTwoSidedTTest`
/// (scripts/sequential_gbstats.py): absolute and relative intervals and the always-valid p-value,
/// to 1e-9; and every always-valid interval contains the fixed-horizon one.
#[test]
fn sequential_on_hillstrom_equals_gbstats() {
    let metrics = "visit,conversion,spend,spend/visit";
    let seq = hillstrom(metrics, &["--sequential"]);
    let fixed = hillstrom(metrics, &[]);
    assert_eq!(seq["sequential"], true);
    let want: serde_json::Value =
        serde_json::from_str(include_str!("fixtures/hillstrom_gbstats_sequential.json")).unwrap();
    let find = |v: &serde_json::Value, w: &serde_json::Value| -> serde_json::Value {
        v["results"]
            .as_array()
            .unwrap()
            .iter()
            .find(|r| r["variant"] == w["variant"] && r["metric"] == w["metric"])
            .unwrap()
            .clone()
    };
    for w in want["results"].as_array().unwrap() {
        let (g, f) = (find(&seq, w), find(&fixed, w));
        assert_eq!(g["always_valid"], true);
        for k in [
            "ci_low",
            "ci_high",
            "p_value",
            "relative_ci_low",
            "relative_ci_high",
        ] {
            let (a, b) = (g[k].as_f64().unwrap(), w[k].as_f64().unwrap());
            let rel = (a - b).abs() / b.abs().max(1e-300);
            assert!(
                rel < 1e-9,
                "{} {} {k}: {a} vs {b}",
                w["variant"],
                w["metric"]
            );
        }
        assert!(g["ci_low"].as_f64() < f["ci_low"].as_f64());
        assert!(g["ci_high"].as_f64() > f["ci_high"].as_f64());
        assert!(g["p_value"].as_f64() >= f["p_value"].as_f64());
    }
}

#[test]
fn analyze_file_on_hillstrom_equals_scipy_and_statsmodels() {
    let file = hillstrom_file();
    let hill = hillstrom;
    let got = hill("visit,conversion,spend,spend/visit", &[]);
    let want: serde_json::Value =
        serde_json::from_str(include_str!("fixtures/hillstrom_scipy.json")).unwrap();
    let close = |a: f64, b: f64, what: &str| {
        let rel = (a - b).abs() / b.abs().max(1e-300);
        assert!(rel < 1e-9, "{what}: {a} vs {b} ({rel:e})");
    };
    for w in want["results"].as_array().unwrap() {
        let g = got["results"]
            .as_array()
            .unwrap()
            .iter()
            .find(|r| r["variant"] == w["variant"] && r["metric"] == w["metric"])
            .unwrap();
        for k in ["statistic", "p_value", "ci_low", "ci_high", "df"] {
            if let Some(x) = w.get(k) {
                let what = format!("{} {} {k}", w["variant"], w["metric"]);
                close(g[k].as_f64().unwrap(), x.as_f64().unwrap(), &what);
            }
        }
    }
    // The same through the preset and the workspace experiment.
    let dir = tempfile::tempdir().unwrap();
    let ws = w(dir.path());
    ok(&[
        "--workspace",
        &ws,
        "-q",
        "ingest",
        "--preset",
        "hillstrom",
        &file,
    ]);
    let out = ok(&[
        "--workspace",
        &ws,
        "experiment",
        "analyze",
        "hillstrom",
        "--control",
        "No E-Mail",
        "--metrics",
        "visit,conversion,spend",
        "--format",
        "json",
    ]);
    let via: serde_json::Value = serde_json::from_str(&out).unwrap();
    for w in want["results"]
        .as_array()
        .unwrap()
        .iter()
        .filter(|w| w["metric"] != "spend/visit")
    {
        let g = via["results"]
            .as_array()
            .unwrap()
            .iter()
            .find(|r| r["variant"] == w["variant"] && r["metric"] == w["metric"])
            .unwrap();
        for k in ["statistic", "p_value", "ci_low", "ci_high"] {
            let what = format!("preset {} {} {k}", w["variant"], w["metric"]);
            close(g[k].as_f64().unwrap(), w[k].as_f64().unwrap(), &what);
        }
    }
    assert_eq!(via["srm"]["flagged"], false);

    let kinds: Vec<&str> = got["results"].as_array().unwrap()[..4]
        .iter()
        .map(|r| r["kind"].as_str().unwrap())
        .collect();
    assert_eq!(kinds, ["proportion", "proportion", "mean", "ratio"]);
    close(
        got["srm"]["chi2"].as_f64().unwrap(),
        want["srm"]["chi2"].as_f64().unwrap(),
        "chi2",
    );
    close(
        got["srm"]["p_value"].as_f64().unwrap(),
        want["srm"]["p_value"].as_f64().unwrap(),
        "srm p",
    );
    assert_eq!(got["srm"]["flagged"], false);

    // With Holm's correction every adjusted p-value is at least the raw one, and the verdicts say
    // ship for both e-mails on visit (the primary metric).
    let h = hill(
        "visit,conversion,spend,spend/visit",
        &["--correction", "holm"],
    );
    assert_eq!(h["correction"], "holm");
    for r in h["results"].as_array().unwrap() {
        assert!(r["p_value_adjusted"].as_f64().unwrap() >= r["p_value"].as_f64().unwrap());
    }
    let decisions: Vec<&str> = h["verdicts"]
        .as_array()
        .unwrap()
        .iter()
        .map(|v| v["decision"].as_str().unwrap())
        .collect();
    assert_eq!(decisions, ["ship", "ship"]);

    // CUPED by the pre-period spend (history): θ pooled over each comparison's users, Welch t on
    // the adjusted values; expected values from numpy and scipy.stats.ttest_ind.
    let c = hill("spend,visit", &["--covariate", "history"]);
    let cuped = [
        (
            "Mens E-Mail",
            "spend",
            0.0012228965198244426,
            5.284841624064931,
            1.265314467251961e-07,
            0.48281285379578437,
            1.0520641450598198,
        ),
        (
            "Mens E-Mail",
            "visit",
            9.134195036168927e-05,
            22.617819472554338,
            1.439859297028391e-112,
            0.0697894851774067,
            0.08303280974142933,
        ),
        (
            "Womens E-Mail",
            "spend",
            0.001034651293586205,
            3.2438546562089323,
            0.0011802047342596507,
            0.16729379164008568,
            0.6781080546729099,
        ),
        (
            "Womens E-Mail",
            "visit",
            8.353439339856922e-05,
            13.970015231109409,
            2.988530657052129e-44,
            0.038768032801251434,
            0.05142185190315848,
        ),
    ];
    for (v, m, theta, t, pv, lo, hi) in cuped {
        let r = c["results"]
            .as_array()
            .unwrap()
            .iter()
            .find(|r| r["variant"] == v && r["metric"] == m)
            .unwrap();
        for (k, want) in [
            ("cuped_theta", theta),
            ("statistic", t),
            ("p_value", pv),
            ("ci_low", lo),
            ("ci_high", hi),
        ] {
            close(r[k].as_f64().unwrap(), want, &format!("cuped {v} {m} {k}"));
        }
    }

    // Sample size: 10% → 12% at α 0.05 and power 0.8 needs 3,841 users per arm.
    let out = ok(&[
        "experiment",
        "power",
        "--baseline",
        "0.1",
        "--mde",
        "0.2",
        "--relative",
        "--format",
        "json",
    ]);
    let p: serde_json::Value = serde_json::from_str(&out).unwrap();
    assert_eq!(p["users_per_arm"], 3841);

    // A broken split is flagged, and bad input names the file, line and column.
    let dir = tempfile::tempdir().unwrap();
    let f = dir.path().join("ab.csv");
    let mut csv = String::from("user,arm,bought\n");
    for i in 0..10_000 {
        csv.push_str(&format!(
            "u{i},{},{}\n",
            if i % 100 < 53 { "a" } else { "b" },
            i % 7 == 0
        ));
    }
    std::fs::write(&f, &csv).unwrap();
    let fs = f.display().to_string();
    let out = ok(&[
        "experiment",
        "analyze-file",
        &fs,
        "--variant-col",
        "arm",
        "--control",
        "a",
        "--metrics",
        "bought",
        "--format",
        "json",
    ]);
    let v: serde_json::Value = serde_json::from_str(&out).unwrap();
    assert_eq!(v["srm"]["flagged"], true);
    assert_eq!(v["results"][0]["kind"], "proportion");
    csv.push_str("u-bad,a,maybe\n");
    std::fs::write(&f, &csv).unwrap();
    let o = run(&[
        "experiment",
        "analyze-file",
        &fs,
        "--variant-col",
        "arm",
        "--control",
        "a",
        "--metrics",
        "bought",
    ]);
    let err = String::from_utf8_lossy(&o.stderr);
    assert!(
        !o.status.success() && err.contains("line 10002") && err.contains("`bought`"),
        "{err}"
    );
}

/// Issue contract: `clv` on the raw CDNOW sample reproduces Fader, Hardie & Lee's published
/// BG/NBD and Gamma-Gamma estimates, and every customer's P(alive), expected purchases over the
/// 39-week horizon and expected order value equal the Python `lifetimes` package's
/// (fixtures/cdnow_lifetimes.json, written by scripts/clv_lifetimes.py).
#[test]
fn clv_on_cdnow_matches_the_paper_and_lifetimes() {
    let dir = tempfile::tempdir().unwrap();
    let ws = w(dir.path());
    let sample = data("cdnow/CDNOW_sample.txt").display().to_string();
    ok(&["--workspace", &ws, "ingest", "--preset", "cdnow", &sample]);
    let out = ok(&[
        "--workspace",
        &ws,
        "clv",
        "--calibration-end",
        "1997-09-30",
        "--time-unit",
        "week",
        "--horizon",
        "39",
        "--format",
        "json",
    ]);
    let v: serde_json::Value = serde_json::from_str(&out).unwrap();
    let f = |p: &serde_json::Value| p.as_f64().unwrap();
    let published = [("r", 0.243), ("alpha", 4.414), ("a", 0.793), ("b", 2.426)];
    for (k, want) in published {
        assert!(
            (f(&v["bgnbd"][k]) - want).abs() <= 5e-4,
            "{k}: {}",
            v["bgnbd"][k]
        );
    }
    assert!((f(&v["bgnbd"]["log_likelihood"]) + 9582.4).abs() < 0.05);
    for (k, want) in [("p", 6.25), ("q", 3.74), ("v", 15.44)] {
        assert!(
            (f(&v["gamma_gamma"][k]) - want).abs() <= 5e-3,
            "{k}: {}",
            v["gamma_gamma"][k]
        );
    }
    let fixture: serde_json::Value = serde_json::from_str(
        &std::fs::read_to_string(
            PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("tests/fixtures/cdnow_lifetimes.json"),
        )
        .unwrap(),
    )
    .unwrap();
    for k in ["r", "alpha", "a", "b"] {
        assert!(
            (f(&v["bgnbd"][k]) - f(&fixture["bgnbd"][k])).abs() <= 1e-4,
            "{k}"
        );
    }
    for k in ["p", "q", "v"] {
        assert!(
            (f(&v["gamma_gamma"][k]) - f(&fixture["gamma_gamma"][k])).abs() <= 1e-4,
            "{k}"
        );
    }
    let ours: std::collections::HashMap<&str, &serde_json::Value> = v["customers"]
        .as_array()
        .unwrap()
        .iter()
        .map(|c| (c["user_id"].as_str().unwrap(), c))
        .collect();
    let theirs = fixture["customers"].as_array().unwrap();
    assert_eq!(ours.len(), 2357);
    assert_eq!(theirs.len(), 2357);
    for t in theirs {
        let c = ours[t[0].as_str().unwrap()];
        assert_eq!(c["frequency"], t[1]);
        for (field, i) in [
            ("p_alive", 2),
            ("expected_purchases", 3),
            ("expected_order_value", 4),
        ] {
            let (a, b) = (f(&c[field]), f(&t[i]));
            assert!(
                (a - b).abs() <= 1e-6 * b.abs().max(1.0),
                "{} {field}: {a} vs {b}",
                t[0]
            );
        }
        for k in ["recency", "t", "clv"] {
            assert!(c[k].is_number(), "{k}");
        }
    }
    // The holdout check: 39 weeks after the calibration end, predictions close to the actual
    // repeat purchase days in total (FHL 2005 report a close fit on this sample).
    let h = &v["holdout"];
    let (actual, predicted) = (f(&h["actual_purchases"]), f(&h["predicted_purchases"]));
    assert!(
        (predicted / actual - 1.0).abs() < 0.15,
        "{actual} vs {predicted}"
    );
    assert_eq!(h["by_frequency"].as_array().unwrap().len(), 8);
}

/// `experiment assign --namespace ID:START-END` assigns exactly the users GrowthBook's SDK puts in
/// that namespace range (../shared/data/growthbook_hash/namespace.csv) and gives the rest -1.
#[test]
fn assign_respects_growthbook_namespaces() {
    let text = std::fs::read_to_string(data("growthbook_hash/namespace.csv")).unwrap();
    let rows: Vec<Vec<String>> = text
        .lines()
        .skip(1)
        .map(|l| {
            l.trim_end_matches('\r')
                .split(',')
                .map(str::to_string)
                .collect()
        })
        .filter(|r: &Vec<String>| {
            r[0] == "pricing" && r[1] == "0" && r[2] == "0.5" && !r[3].is_empty()
        })
        .collect();
    assert!(rows.len() > 20);
    let dir = tempfile::tempdir().unwrap();
    let ids = dir.path().join("ids.txt");
    std::fs::write(
        &ids,
        rows.iter()
            .map(|r| format!("{}\n", r[3]))
            .collect::<String>(),
    )
    .unwrap();
    let out = ok(&[
        "experiment",
        "assign",
        "--seed",
        "exp",
        "--namespace",
        "pricing:0-0.5",
        "--format",
        "csv",
        &ids.display().to_string(),
    ]);
    let got: Vec<i64> = out
        .lines()
        .skip(1)
        .map(|l| l.rsplit(',').next().unwrap().parse().unwrap())
        .collect();
    assert_eq!(got.len(), rows.len());
    for (r, v) in rows.iter().zip(&got) {
        assert_eq!(*v >= 0, r[4] == "1", "user {:?}", r[3]);
    }
    let bad = run(&[
        "experiment",
        "assign",
        "--seed",
        "x",
        "--namespace",
        "pricing:0.6-0.2",
        &ids.display().to_string(),
    ]);
    assert!(!bad.status.success());
    assert!(String::from_utf8_lossy(&bad.stderr).contains("ID:START-END"));
}

/// The basket contract on groceries: the issue's command line and JSON field names, and the
/// textbook 5,668 rules; `--level category` and thresholds given as decimals are accepted.
#[test]
fn basket_on_groceries_json_contract() {
    let dir = tempfile::tempdir().unwrap();
    let ws = w(dir.path());
    let file = data("groceries/groceries.csv");
    ok(&[
        "--workspace",
        &ws,
        "-q",
        "ingest",
        "--preset",
        "groceries",
        file.to_str().unwrap(),
    ]);
    let out = ok(&[
        "--workspace",
        &ws,
        "basket",
        "--min-support",
        "0.001",
        "--min-confidence",
        "0.5",
        "--format",
        "json",
    ]);
    let v: serde_json::Value = serde_json::from_str(&out).unwrap();
    assert_eq!(v["baskets"], 9835);
    let rules = v["rules"].as_array().unwrap();
    assert_eq!(rules.len(), 5668);
    for key in [
        "antecedent",
        "consequent",
        "support",
        "confidence",
        "lift",
        "leverage",
        "conviction",
    ] {
        assert!(rules[0].get(key).is_some(), "rule field {key}");
    }
    assert!(
        rules
            .iter()
            .all(|r| r["consequent"].as_array().unwrap().len() == 1)
    );
    // Conviction is null exactly where confidence is 1.
    assert!(
        rules
            .iter()
            .all(|r| r["conviction"].is_null() == (r["confidence"].as_f64().unwrap() == 1.0))
    );
    let bad = run(&["--workspace", &ws, "basket", "--min-support", "1e-3"]);
    assert!(!bad.status.success());
    assert!(String::from_utf8_lossy(&bad.stderr).contains("--min-support"));
}

/// Experiment definitions in the workspace: define, refuse a silent redefinition, validate,
/// warn about an overlap on one surface, assign by the stored definition (the same buckets as
/// the explicit flags), and analyse with the defined metrics by default; the other tables are
/// untouched by a definition.
#[test]
fn experiment_definitions_live_in_the_workspace() {
    let dir = tempfile::tempdir().unwrap();
    let ws = w(dir.path());
    ok(&["--workspace", &ws, "-q", "demo", "--scale", "0.01"]);
    let count = |t: &str| {
        ok(&[
            "--workspace",
            &ws,
            "sql",
            &format!("SELECT count(*) AS n FROM {t}"),
            "--format",
            "csv",
        ])
    };
    let events = count("events");
    let list = |ws: &str| -> serde_json::Value {
        serde_json::from_str(&ok(&[
            "--workspace",
            ws,
            "experiment",
            "list",
            "--format",
            "json",
        ]))
        .unwrap()
    };
    let l = list(&ws);
    assert_eq!(l["experiments"].as_array().unwrap().len(), 2);
    assert_eq!(l["experiments"][0]["key"], "checkout-button");
    assert_eq!(l["experiments"][0]["status"], "finished");
    assert_eq!(l["experiments"][0]["primary_metrics"][0], "orders");
    assert!(l["overlaps"].as_array().unwrap().is_empty());

    // A new test on the checkout inside checkout-button's window overlaps it.
    let define = |extra: &[&str]| {
        let mut args = vec![
            "--workspace",
            &ws,
            "experiment",
            "define",
            "search-ranking",
            "--variants",
            "control,ranked",
            "--surface",
            "checkout",
            "--start",
            "2025-06-01",
            "--end",
            "2025-06-30",
            "--primary",
            "conversion",
            "--guardrails",
            "aov,refund:lower",
            "--format",
            "json",
        ];
        args.extend(extra);
        run(&args)
    };
    let o = define(&[]);
    assert!(o.status.success(), "{}", String::from_utf8_lossy(&o.stderr));
    let v: serde_json::Value = serde_json::from_slice(&o.stdout).unwrap();
    assert_eq!(v["defined"]["weights"], serde_json::json!([0.5, 0.5]));
    let warning = v["warnings"][0].as_str().unwrap();
    assert!(
        warning.contains("checkout-button") && warning.contains("`checkout`"),
        "{warning}"
    );
    assert!(String::from_utf8_lossy(&o.stderr).contains("warning:"));
    // Defining the key again needs --replace; bad weights are refused with the reason.
    let again = define(&[]);
    assert!(!again.status.success());
    assert!(String::from_utf8_lossy(&again.stderr).contains("--replace"));
    let bad = define(&["--replace", "--weights", "0.5,0.6"]);
    assert!(String::from_utf8_lossy(&bad.stderr).contains("sum to 1"));
    assert!(
        define(&[
            "--replace",
            "--weights",
            "0.3,0.7",
            "--namespace",
            "co:0-0.5"
        ])
        .status
        .success()
    );
    let l = list(&ws);
    let sr = &l["experiments"][2];
    assert_eq!(
        (sr["key"].as_str(), sr["status"].as_str()),
        (Some("search-ranking"), Some("finished"))
    );
    assert_eq!(sr["namespace"]["end"], 0.5);
    assert_eq!(sr["guardrail_metrics"][1], "refund:lower");
    assert_eq!(l["overlaps"].as_array().unwrap().len(), 1);
    assert_eq!(count("events"), events);

    // Assignment by the stored definition equals the explicit flags.
    let ids = dir.path().join("ids.txt");
    std::fs::write(
        &ids,
        (0..500).map(|i| format!("u{i}\n")).collect::<String>(),
    )
    .unwrap();
    let ids = ids.display().to_string();
    let stored = ok(&[
        "--workspace",
        &ws,
        "experiment",
        "assign",
        "--experiment",
        "search-ranking",
        &ids,
        "--format",
        "csv",
    ]);
    let explicit = ok(&[
        "experiment",
        "assign",
        "--seed",
        "search-ranking",
        "--weights",
        "0.3,0.7",
        "--namespace",
        "co:0-0.5",
        &ids,
        "--format",
        "csv",
    ]);
    assert_eq!(stored, explicit);
    assert!(stored.contains(",-1") && stored.contains(",1\n"));

    // Without --metrics, analyze uses the definition's primary and guardrail metrics.
    let a: serde_json::Value = serde_json::from_str(&ok(&[
        "--workspace",
        &ws,
        "experiment",
        "analyze",
        "checkout-button",
        "--format",
        "json",
    ]))
    .unwrap();
    let metrics: Vec<&str> = a["results"]
        .as_array()
        .unwrap()
        .iter()
        .map(|r| r["metric"].as_str().unwrap())
        .collect();
    assert_eq!(metrics, ["orders", "aov"]);
    assert_eq!(a["status"], "finished");
}
