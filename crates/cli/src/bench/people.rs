//! `shoplens bench funnel` and `bench people`: per-person scans beside chDB and DuckDB.

use super::*;

pub(super) fn funnel_bench(
    g: &Global,
    b: &FunnelBench,
    rt: &Runtime,
    out: &mut dyn Write,
) -> Result<()> {
    let Some(mode) = Mode::parse(&b.mode) else {
        bail!("--mode must be default, strict-order or strict-increase");
    };
    let csv = taobao_csv(g, &b.peers.dir, b.rows, b.peers.runs)?;
    let ws_dir = b.peers.dir.join(format!("funnel-ws-{}", b.rows));
    let ws = Workspace::open(&ws_dir)?;
    if ws.manifest()?.rows(Table::Events) != b.rows {
        note(g, &format!("ingesting {} …", csv.display()));
        ingest::ingest(
            &ws,
            std::slice::from_ref(&csv),
            &presets::preset("taobao")?,
            &IngestOptions { force: true },
            &|_| {},
        )?;
    }
    let steps = ["product_view", "add_to_cart", "order"];
    let mut spec = FunnelSpec::new(
        steps.iter().map(|s| (*s).to_string()).collect(),
        86_400_000_000,
    );
    spec.mode = mode;
    let mut ours = Vec::new();
    let mut counts = Vec::new();
    for _ in 0..b.peers.runs {
        let t = Instant::now();
        let r = rt.block_on(funnel::funnel(&ws, &spec))?;
        ours.push(t.elapsed().as_secs_f64());
        counts = std::iter::once(r.users_total)
            .chain(r.steps.iter().map(|s| s.users))
            .collect();
    }
    let mut rows = vec![(
        figure(
            "shoplens",
            "funnel (window_funnel aggregate)",
            b.rows,
            0.0,
            &mut ours,
        ),
        counts.clone(),
    )];
    let files: Vec<String> = ws
        .manifest()?
        .files(Table::Events)
        .iter()
        .map(|f| ws.path_of(f).display().to_string())
        .collect();
    for peer in ["duckdb", "chdb"] {
        if peer == "duckdb" && mode != Mode::Default {
            continue;
        }
        match funnel_peer(&b.peers.python, peer, &files, b.peers.runs, mode) {
            Ok((mut times, c)) => {
                let task = if peer == "duckdb" {
                    "funnel in SQL (ASOF joins)"
                } else {
                    "windowFunnel"
                };
                rows.push((figure(peer, task, b.rows, 0.0, &mut times), c));
            }
            Err(e) => note(g, &format!("{peer} skipped: {e:#}")),
        }
    }
    let agree = rows.iter().all(|r| r.1 == counts);
    if g.format == Format::Json {
        let figures: Vec<Value> = rows
            .iter()
            .map(|(f, c)| serde_json::json!({"figure": f, "counts": c}))
            .collect();
        return write_json(
            out,
            &serde_json::json!({ "bench": "funnel", "mode": mode.name(), "threads": rayon_threads(), "agree": agree, "figures": figures }),
        );
    }
    let mut f = Frame::new(&[
        "tool",
        "task",
        "events",
        "best s",
        "median s",
        "events/s",
        "users total / step 1 / 2 / 3",
    ]);
    for (x, c) in &rows {
        f.push(vec![
            Value::from(x.tool.clone()),
            Value::from(x.task.clone()),
            Value::from(x.rows),
            Value::from(format!("{:.3}", x.best_s)),
            Value::from(format!("{:.3}", x.median_s)),
            Value::from(format!("{:.0}", x.rows_per_s)),
            Value::from(c.iter().map(u64::to_string).collect::<Vec<_>>().join(" / ")),
        ]);
    }
    f.write(out, g.output())?;
    if g.format == Format::Table {
        writeln!(out, "counts {}", if agree { "agree" } else { "DIFFER" })?;
    }
    if !agree {
        bail!("the tools disagree on the funnel counts");
    }
    Ok(())
}

/// Times a peer computing the same funnel from the workspace's Parquet files, in a child Python
/// process (timed inside it); returns the times and (users total, step 1, 2, 3).
pub(super) fn funnel_peer(
    python: &str,
    peer: &str,
    files: &[String],
    runs: usize,
    mode: Mode,
) -> Result<(Vec<f64>, Vec<u64>)> {
    let script = r#"
import sys, time, json
peer, files, runs, mode = sys.argv[1], json.loads(sys.argv[2]), int(sys.argv[3]), sys.argv[4]
W = 86400
if peer == "duckdb":
    import duckdb
    con = duckdb.connect()
    con.execute("SET enable_progress_bar = false")
    q = f"""
    WITH e AS (SELECT user_id, epoch(ts)::BIGINT AS t, event FROM read_parquet({files!r})),
    a AS (SELECT user_id, t FROM e WHERE event = 'product_view'),
    b AS (SELECT b.user_id, b.t, a.t AS s FROM (SELECT user_id, t FROM e WHERE event = 'add_to_cart') b
          ASOF JOIN a ON b.user_id = a.user_id AND b.t >= a.t WHERE b.t - a.t <= {W}),
    bm AS (SELECT user_id, t, max(s) OVER (PARTITION BY user_id ORDER BY t) AS s FROM b),
    c AS (SELECT c.user_id FROM (SELECT user_id, t FROM e WHERE event = 'order') c
          ASOF JOIN bm ON c.user_id = bm.user_id AND c.t >= bm.t WHERE c.t - bm.s <= {W})
    SELECT (SELECT count(DISTINCT user_id) FROM e), (SELECT count(DISTINCT user_id) FROM a),
           (SELECT count(DISTINCT user_id) FROM b), (SELECT count(DISTINCT user_id) FROM c)"""
    run = lambda: con.execute(q).fetchone()
else:
    import chdb
    arg = {"default": "", "strict-order": ", 'strict_order'", "strict-increase": ", 'strict_increase'"}[mode]
    import os
    folder = os.path.dirname(files[0])
    # ClickHouse globs do not span folders: read the table folder, which holds exactly the files.
    assert sorted(os.path.join(folder, f) for f in os.listdir(folder)) == sorted(files), "extra files"
    src = os.path.join(folder, "*.parquet")
    q = f"""SELECT count(), countIf(l >= 1), countIf(l >= 2), countIf(l >= 3) FROM (
        SELECT user_id, windowFunnel({W}{arg})(toDateTime(ts), event = 'product_view', event = 'add_to_cart', event = 'order') AS l
        FROM file('{src}', Parquet) GROUP BY user_id)"""
    run = lambda: [int(x) for x in chdb.query(q, "CSV").data().strip().split(",")]
for _ in range(runs):
    t = time.perf_counter()
    r = run()
    print(json.dumps({"s": time.perf_counter() - t, "counts": [int(x) for x in r]}))
"#;
    let stdout = run_python(
        python,
        script,
        &[
            peer,
            &serde_json::to_string(files)?,
            &runs.to_string(),
            mode.name(),
        ],
    )?;
    let mut times = Vec::new();
    let mut counts = Vec::new();
    for l in stdout.lines() {
        let v: Value = serde_json::from_str(l)?;
        times.push(v["s"].as_f64().unwrap_or(f64::NAN));
        counts = v["counts"]
            .as_array()
            .map(|a| a.iter().filter_map(Value::as_u64).collect())
            .unwrap_or_default();
    }
    if times.is_empty() {
        bail!("no timings from {peer}");
    }
    Ok((times, counts))
}

pub(super) fn people_bench(
    g: &Global,
    b: &PeopleBench,
    rt: &Runtime,
    out: &mut dyn Write,
) -> Result<()> {
    if b.peers.runs == 0 {
        bail!("--runs must be at least 1");
    }
    let ws_dir = b.peers.dir.join(format!("demo-{}", b.scale));
    let ws = Workspace::open(&ws_dir)?;
    if ws.manifest()?.rows(Table::Events) == 0 {
        note(
            g,
            &format!(
                "building the demo shop at scale {} in {} …",
                b.scale,
                ws_dir.display()
            ),
        );
        shoplens_engine::demo::generate(
            &ws,
            &shoplens_engine::demo::DemoParams {
                seed: 42,
                scale: b.scale,
            },
            &|_, _| {},
        )?;
    }
    let events = ws.manifest()?.rows(Table::Events);
    let mut rows = Vec::new();
    let mut act_t = Vec::new();
    let mut act_sum = Vec::new();
    for _ in 0..b.peers.runs {
        let t = Instant::now();
        let r = rt.block_on(activity::activity(&ws, &Default::default()))?;
        act_t.push(t.elapsed().as_secs_f64());
        act_sum = vec![
            r.heatmap.iter().map(|c| c.events).sum::<u64>(),
            r.heatmap.iter().map(|c| c.orders).sum(),
            r.daily.iter().map(|d| d.dau).sum(),
            r.daily.iter().map(|d| d.mau).sum(),
        ];
    }
    rows.push((
        "shoplens",
        "activity",
        figure("shoplens", "activity", events, 0.0, &mut act_t),
        act_sum.clone(),
    ));
    let mut co_t = Vec::new();
    let mut co_sum = Vec::new();
    for _ in 0..b.peers.runs {
        let t = Instant::now();
        let r = rt.block_on(cohorts::cohorts(&ws, &Default::default()))?;
        co_t.push(t.elapsed().as_secs_f64());
        co_sum = vec![
            r.cohorts.iter().map(|c| c.size).sum::<u64>(),
            r.cohorts
                .iter()
                .flat_map(|c| c.periods.iter().map(|p| p.active))
                .sum(),
        ];
    }
    rows.push((
        "shoplens",
        "cohorts",
        figure("shoplens", "cohorts", events, 0.0, &mut co_t),
        co_sum.clone(),
    ));
    let manifest = ws.manifest()?;
    let files: serde_json::Map<String, Value> = [
        Table::Events,
        Table::Orders,
        Table::OrderItems,
        Table::Products,
    ]
    .iter()
    .map(|t| {
        (
            t.name().to_string(),
            Value::from(
                manifest
                    .files(*t)
                    .iter()
                    .map(|f| ws.path_of(f).display().to_string())
                    .collect::<Vec<_>>(),
            ),
        )
    })
    .collect();
    let tz = manifest
        .settings
        .timezone
        .clone()
        .unwrap_or_else(|| "UTC".into());
    match people_peer(&b.peers.python, &Value::Object(files), &tz, b.peers.runs) {
        Ok(peer) => {
            for (task, mut times, sums) in peer {
                rows.push((
                    "duckdb",
                    if task == "activity" {
                        "activity"
                    } else {
                        "cohorts"
                    },
                    figure("duckdb", &task, events, 0.0, &mut times),
                    sums,
                ));
            }
        }
        Err(e) => note(g, &format!("duckdb skipped: {e:#}")),
    }
    let agree = rows.iter().all(|r| {
        r.3 == if r.1 == "activity" {
            act_sum.clone()
        } else {
            co_sum.clone()
        }
    });
    if g.format == Format::Json {
        let figures: Vec<Value> = rows
            .iter()
            .map(|(tool, task, f, sums)| serde_json::json!({"tool": tool, "task": task, "figure": f, "checksums": sums}))
            .collect();
        return write_json(
            out,
            &serde_json::json!({"bench": "people", "scale": b.scale, "events": events, "agree": agree, "figures": figures}),
        );
    }
    let mut f = Frame::new(&["tool", "task", "events", "best s", "median s", "checksums"]);
    for (tool, task, x, sums) in &rows {
        f.push(vec![
            Value::from(*tool),
            Value::from(*task),
            Value::from(events),
            Value::from(format!("{:.3}", x.best_s)),
            Value::from(format!("{:.3}", x.median_s)),
            Value::from(
                sums.iter()
                    .map(u64::to_string)
                    .collect::<Vec<_>>()
                    .join(" / "),
            ),
        ]);
    }
    f.write(out, g.output())?;
    if g.format == Format::Table {
        writeln!(
            out,
            "checksums (activity: events, orders, Σ DAU, Σ MAU; cohorts: members, Σ active cells) {}",
            if agree { "agree" } else { "DIFFER" }
        )?;
    }
    if !agree {
        bail!("the tools disagree");
    }
    Ok(())
}

type PeerFigures = Vec<(String, Vec<f64>, Vec<u64>)>;

/// DuckDB computing the same activity and cohort figures from the workspace's Parquet files.
pub(super) fn people_peer(
    python: &str,
    files: &Value,
    tz: &str,
    runs: usize,
) -> Result<PeerFigures> {
    let script = r#"
import sys, time, json, duckdb
files, tz, runs = json.loads(sys.argv[1]), sys.argv[2], int(sys.argv[3])
con = duckdb.connect()
con.execute("SET enable_progress_bar = false")
con.execute(f"SET TimeZone = '{tz}'")
for t, fs in files.items():
    con.execute(f"CREATE VIEW {t} AS SELECT * FROM read_parquet({fs!r})")
paid = "status IN ('completed', 'paid')"
loc = "(ts AT TIME ZONE '" + tz + "')"
activity = [
  f"SELECT category, isodow({loc}) d, hour({loc}) h, count(*) n FROM events GROUP BY ALL",
  f"SELECT isodow({loc}) d, hour({loc}) h, count(*) n, sum(net_amount::DOUBLE) r FROM orders WHERE {paid} GROUP BY ALL",
  f"SELECT p.category, isodow({loc}) d, hour({loc}) h, count(DISTINCT o.order_id), sum(i.quantity * i.unit_price::DOUBLE - coalesce(i.discount::DOUBLE, 0)) FROM orders o JOIN order_items i USING (order_id) JOIN products p USING (item_id) WHERE {paid} AND p.category IS NOT NULL GROUP BY ALL",
  f"""WITH pd AS (SELECT DISTINCT coalesce(user_id, anonymous_id) p, ({loc})::DATE d FROM events WHERE coalesce(user_id, anonymous_id) IS NOT NULL),
     days AS (SELECT unnest(range((SELECT min(d) FROM pd), (SELECT max(d) FROM pd) + 1, INTERVAL 1 DAY))::DATE d),
     dau AS (SELECT d, count(*) n FROM pd GROUP BY d),
     mau AS (SELECT days.d, count(DISTINCT pd.p) n FROM days JOIN pd ON pd.d BETWEEN days.d - 29 AND days.d GROUP BY days.d)
     SELECT (SELECT sum(n) FROM dau), (SELECT sum(n) FROM mau)""",
]
cohorts = f"""WITH po AS (SELECT user_id, date_trunc('month', {loc}) m, net_amount::DOUBLE r FROM orders WHERE {paid} AND user_id IS NOT NULL AND ts IS NOT NULL),
  f AS (SELECT user_id, min(m) c FROM po GROUP BY user_id),
  cells AS (SELECT f.c, date_diff('month', f.c, po.m) k, count(DISTINCT po.user_id) a, sum(po.r) r FROM f JOIN po USING (user_id) GROUP BY ALL)
  SELECT (SELECT count(*) FROM f), (SELECT sum(a) FROM cells)"""
for task in ["activity", "cohorts"]:
    times = []
    for _ in range(runs):
        t = time.perf_counter()
        if task == "activity":
            ev = con.execute(activity[0]).fetchall()
            od = con.execute(activity[1]).fetchall()
            con.execute(activity[2]).fetchall()
            act = con.execute(activity[3]).fetchone()
            sums = [sum(r[3] for r in ev), sum(r[2] for r in od), int(act[0]), int(act[1])]
        else:
            r = con.execute(cohorts).fetchone()
            sums = [int(r[0]), int(r[1])]
        times.append(time.perf_counter() - t)
    print(json.dumps({"task": task, "times": times, "sums": sums}))
"#;
    let stdout = run_python(python, script, &[&files.to_string(), tz, &runs.to_string()])?;
    let mut outv = Vec::new();
    for l in stdout.lines() {
        let v: Value = serde_json::from_str(l)?;
        outv.push((
            v["task"].as_str().unwrap_or("").to_string(),
            v["times"]
                .as_array()
                .map(|a| a.iter().filter_map(Value::as_f64).collect())
                .unwrap_or_default(),
            v["sums"]
                .as_array()
                .map(|a| a.iter().filter_map(Value::as_u64).collect())
                .unwrap_or_default(),
        ));
    }
    Ok(outv)
}
